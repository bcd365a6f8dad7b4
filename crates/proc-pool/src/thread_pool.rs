//! `ThreadPool`: the `Pool` surface on threads (Python's `multiprocessing.pool.ThreadPool`).

use std::fmt;
use std::sync::Arc;

use proc_core::{Error, Result};

use crate::call::{Call, Direct, Star, StarFn};
use crate::future::{AsyncResult, Future, QueuedTasks};
use crate::map::{self, Imap, Order, Submit};
use crate::pool::with_callbacks;
use crate::thread::{Start, Threads};

/// Threads that run closures, with the surface of [`Pool`](crate::Pool): Python's
/// `multiprocessing.pool.ThreadPool`.
///
/// Closures may capture (they stay in this process); arguments and results need only be
/// `Send`. A task that panics fails only its own result.
///
/// # Examples
///
/// ```
/// use proc_pool::ThreadPool;
///
/// let offset = 100;
/// let pool = ThreadPool::new(4).unwrap();
/// assert_eq!(pool.map(move |x: u32| x + offset, vec![1, 2]).unwrap(), [101, 102]);
/// pool.close();
/// pool.join().unwrap();
/// ```
pub struct ThreadPool {
    threads: Arc<Threads>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads.workers())
            .field("closed", &self.threads.is_closed())
            .finish()
    }
}

impl ThreadPool {
    /// A pool of `threads` threads, started now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for zero threads, [`Error::Io`] when a thread cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_pool::ThreadPool::new(0).is_err());
    /// ```
    pub fn new(threads: usize) -> Result<ThreadPool> {
        Ok(ThreadPool {
            threads: Arc::new(Threads::new(threads, Start::Now, "ThreadPool", None)?),
        })
    }

    /// The number of threads.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_pool::ThreadPool::new(3).unwrap().processes(), 3);
    /// ```
    pub fn processes(&self) -> usize {
        self.threads.workers()
    }

    /// Runs `f(args)` on a thread of the pool and waits for its result.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] when `f` panics; [`Error::InvalidState`] after `close`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// assert_eq!(pool.apply(|s: String| s.len(), "four".into()).unwrap(), 4);
    /// ```
    pub fn apply<F, A, R>(&self, f: F, args: A) -> Result<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.apply_async(f, args)?.into_result()
    }

    /// Runs `f(args)` on a thread of the pool; the [`AsyncResult`] gets its result.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after `close`/`terminate`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// let result = pool.apply_async(|x: u8| x * 2, 4).unwrap();
    /// assert_eq!(result.get().unwrap(), 8);
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
    {
        let future = self.threads.submit(move || Direct(f).call(args))?;
        Ok(AsyncResult::new(future))
    }

    /// Like [`apply_async`](ThreadPool::apply_async), calling `callback` with the value or
    /// `error_callback` with the error before the result is ready.
    ///
    /// # Errors
    ///
    /// As [`apply_async`](ThreadPool::apply_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let result = pool.apply_async_with(|x: u8| x, 7, move |v: &u8| tx.send(*v).unwrap(), |_| {}).unwrap();
    /// result.wait();
    /// assert_eq!(rx.recv().unwrap(), 7);
    /// ```
    pub fn apply_async_with<F, A, R, C, E>(
        &self,
        f: F,
        args: A,
        callback: C,
        error_callback: E,
    ) -> Result<AsyncResult<R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        C: FnOnce(&R) + Send + 'static,
        E: FnOnce(&Error) + Send + 'static,
    {
        let future = self.threads.submit_prepared(
            move || Direct(f).call(args),
            |future| with_callbacks(future, callback, error_callback),
        )?;
        Ok(AsyncResult::new(future))
    }

    fn chunks<C, A>(&self, f: C) -> Submit<A, C::Output>
    where
        C: Call<A>,
        A: Send + 'static,
        C::Output: Send + 'static,
    {
        let threads = self.threads.clone();
        let f = Arc::new(f);
        Box::new(move |items| threads.submit_chunk(f.clone(), items))
    }

    /// Runs `f` on every item and returns the results in order, in Python's default chunks.
    ///
    /// # Errors
    ///
    /// The first error (in input order), once no chunk is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.map(|x: i32| x * x, 0..4).unwrap(), [0, 1, 4, 9]);
    /// ```
    pub fn map<F, I, A, R>(&self, f: F, iterable: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        self.map_chunked(f, items, chunksize)
    }

    /// Like [`map`](ThreadPool::map), in chunks of `chunksize` items.
    ///
    /// # Errors
    ///
    /// As [`map`](ThreadPool::map), and [`Error::InvalidState`] for a `chunksize` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.map_chunked(|x: u8| x + 1, vec![1, 2, 3], 20).unwrap(), [2, 3, 4]);
    /// ```
    pub fn map_chunked<F, I, A, R>(&self, f: F, iterable: I, chunksize: usize) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        let chunksize = map::check_chunksize(chunksize)?;
        self.threads.check_open()?;
        let items = map::items(iterable)?;
        map::map_all(items, chunksize, &mut self.chunks(Direct(f)))
    }

    /// Like [`map`](ThreadPool::map), without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after `close`/`terminate`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.map_async(|x: u8| x * 2, vec![1, 2]).unwrap().get().unwrap(), [2, 4]);
    /// ```
    pub fn map_async<F, I, A, R>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.map_async_with(f, iterable, |_| {}, |_| {})
    }

    /// Like [`map_async`](ThreadPool::map_async), calling exactly one of `callback` (with
    /// every value) or `error_callback` (with the first error) before the result is ready.
    ///
    /// # Errors
    ///
    /// As [`map_async`](ThreadPool::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let result = pool.map_async_with(|x: u8| x, vec![1, 2], |_| {}, move |e| tx.send(e.to_string()).unwrap()).unwrap();
    /// result.wait();
    /// assert!(rx.try_recv().is_err());
    /// ```
    pub fn map_async_with<F, I, A, R, C, E>(
        &self,
        f: F,
        iterable: I,
        callback: C,
        error_callback: E,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
        C: FnOnce(&Vec<R>) + Send + 'static,
        E: FnOnce(&Error) + Send + 'static,
    {
        self.threads.check_open()?;
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        let out = Future::pending();
        with_callbacks(&out, callback, error_callback);
        let out = map::map_async(items, chunksize, &mut self.chunks(Direct(f)), out)?;
        Ok(AsyncResult::new(out))
    }

    /// Runs `f` on every item, yielding results in order as they come; lazy, one item per
    /// task.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after `close`/`terminate`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// let v: Vec<u32> = pool.imap(|x: u32| x + 1, 0..3).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, [1, 2, 3]);
    /// ```
    pub fn imap<F, I, A, R>(&self, f: F, iterable: I) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.imap_chunked(f, iterable, 1)
    }

    /// Like [`imap`](ThreadPool::imap), `chunksize` items per task.
    ///
    /// # Errors
    ///
    /// As [`imap`](ThreadPool::imap), and [`Error::InvalidState`] for a `chunksize` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.imap_chunked(|x: u32| x, 0..10, 3).unwrap().count(), 10);
    /// ```
    pub fn imap_chunked<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.lazy(iterable, chunksize, Order::Input, self.chunks(Direct(f)))
    }

    /// Like [`imap`](ThreadPool::imap), in the order the results are ready.
    ///
    /// # Errors
    ///
    /// As [`imap`](ThreadPool::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// let mut v: Vec<u32> = pool.imap_unordered(|x: u32| x, 0..3).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, [0, 1, 2]);
    /// ```
    pub fn imap_unordered<F, I, A, R>(&self, f: F, iterable: I) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.imap_unordered_chunked(f, iterable, 1)
    }

    /// Like [`imap_unordered`](ThreadPool::imap_unordered), `chunksize` items per task.
    ///
    /// # Errors
    ///
    /// As [`imap_chunked`](ThreadPool::imap_chunked).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.imap_unordered_chunked(|x: u32| x, 0..10, 4).unwrap().count(), 10);
    /// ```
    pub fn imap_unordered_chunked<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.lazy(
            iterable,
            chunksize,
            Order::Completion,
            self.chunks(Direct(f)),
        )
    }

    fn lazy<I: IntoIterator, R>(
        &self,
        iterable: I,
        chunksize: usize,
        order: Order,
        submit: Submit<I::Item, R>,
    ) -> Result<Imap<I::IntoIter, R>> {
        self.threads.check_open()?;
        let input = iterable.into_iter();
        map::imap(input, chunksize, None, self.processes(), order, submit)
    }

    /// Runs `f(a, b, …)` for every tuple and returns the results in order; `f` takes 2 to
    /// 6 arguments.
    ///
    /// # Errors
    ///
    /// As [`map`](ThreadPool::map).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.starmap(|a: u8, b: u8| a * b, vec![(2, 3), (4, 5)]).unwrap(), [6, 20]);
    /// ```
    pub fn starmap<F, I, T>(&self, f: F, iterable: I) -> Result<Vec<F::Output>>
    where
        F: StarFn<T>,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        F::Output: Send + 'static,
    {
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        self.starmap_chunked(f, items, chunksize)
    }

    /// Like [`starmap`](ThreadPool::starmap), in chunks of `chunksize` tuples.
    ///
    /// # Errors
    ///
    /// As [`map_chunked`](ThreadPool::map_chunked).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.starmap_chunked(|a: u8, b: u8| a + b, vec![(1, 1); 3], 20).unwrap(), [2, 2, 2]);
    /// ```
    pub fn starmap_chunked<F, I, T>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Vec<F::Output>>
    where
        F: StarFn<T>,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        F::Output: Send + 'static,
    {
        let chunksize = map::check_chunksize(chunksize)?;
        self.threads.check_open()?;
        let items = map::items(iterable)?;
        map::map_all(items, chunksize, &mut self.chunks(Star(f)))
    }

    /// Like [`starmap`](ThreadPool::starmap), without waiting.
    ///
    /// # Errors
    ///
    /// As [`map_async`](ThreadPool::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(2).unwrap();
    /// let r = pool.starmap_async(|a: i8, b: i8| a - b, vec![(3, 1)]).unwrap();
    /// assert_eq!(r.get().unwrap(), [2]);
    /// ```
    pub fn starmap_async<F, I, T>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: StarFn<T>,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        F::Output: Send + 'static,
    {
        self.threads.check_open()?;
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        let out = map::map_async(
            items,
            chunksize,
            &mut self.chunks(Star(f)),
            Future::pending(),
        )?;
        Ok(AsyncResult::new(out))
    }

    /// Takes no more tasks; those submitted still run.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// pool.close();
    /// assert!(pool.apply(|x: u8| x, 1).is_err());
    /// ```
    pub fn close(&self) {
        self.threads.close(QueuedTasks::Run);
    }

    /// Takes no more tasks and cancels those no thread has started; tasks already running
    /// finish on their own (a thread cannot be killed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// pool.terminate();
    /// assert!(pool.apply(|x: u8| x, 1).is_err());
    /// ```
    pub fn terminate(&self) {
        self.threads.close(QueuedTasks::Cancel);
    }

    /// Waits until every thread has ended.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when neither `close` nor `terminate` was called first.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// assert!(pool.join().is_err());
    /// pool.close();
    /// pool.join().unwrap();
    /// ```
    pub fn join(&self) -> Result<()> {
        if !self.threads.is_closed() {
            return Err(Error::InvalidState(
                "call close() or terminate() before join()",
            ));
        }
        self.threads.join();
        Ok(())
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.threads.close(QueuedTasks::Cancel);
    }
}
