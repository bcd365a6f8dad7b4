//! `Pool`: worker processes running functions (Python's `multiprocessing.Pool`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use proc_core::{Error, Result, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::call::{Direct, InitOutput, Star, StarFn};
use crate::future::{AsyncResult, Future, QueuedTasks};
use crate::map::{self, Imap, Order, Submit};
use crate::process::{ChunkEncoder, Engine, MakeInit, OnCancel, Settings, make_init};

/// Fails to compile for a closure that captures something: a worker process could not get
/// the captured values. Call it as `const { no_captures::<F>() }`.
///
/// # Examples
///
/// ```
/// fn check<F: Fn(u8) -> u8>(_f: F) {
///     const { proc_pool::internal::no_captures::<F>() };
/// }
/// check(|x: u8| x + 1);
/// ```
///
/// ```compile_fail
/// fn check<F: Fn(u8) -> u8>(_f: F) {
///     const { proc_pool::internal::no_captures::<F>() };
/// }
/// let y = 1;
/// check(move |x: u8| x + y);
/// ```
pub const fn no_captures<F>() {
    assert!(
        size_of::<F>() == 0,
        "the function must not capture anything: pass what it needs as its argument"
    );
}

/// Settings for a [`Pool`]: a consuming builder, like rayon's `ThreadPoolBuilder`.
///
/// # Examples
///
/// ```
/// use proc_pool::Pool;
///
/// fn main() {
///     proc_pool::core::init();
///     let pool = Pool::builder().processes(2).maxtasksperchild(10).build().unwrap();
///     assert_eq!(pool.map(|x: u32| x + 1, vec![1, 2, 3]).unwrap(), [2, 3, 4]);
/// }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct PoolBuilder {
    processes: Option<usize>,
    init: Option<MakeInit>,
    maxtasksperchild: Option<usize>,
    start_method: Option<StartMethod>,
    task_timeout: Option<Duration>,
    max_memory_per_child: Option<u64>,
    broken_on_crash: bool,
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("initializer", &self.init.is_some())
            .field("maxtasksperchild", &self.maxtasksperchild)
            .field("start_method", &self.start_method)
            .field("task_timeout", &self.task_timeout)
            .field("max_memory_per_child", &self.max_memory_per_child)
            .field("broken_on_crash", &self.broken_on_crash)
            .finish()
    }
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder::new()
    }
}

impl PoolBuilder {
    /// A builder with Python's defaults: `cpu_count()` workers, no initializer, workers
    /// that live as long as the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::PoolBuilder::new();
    /// ```
    pub fn new() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            init: None,
            maxtasksperchild: None,
            start_method: None,
            task_timeout: None,
            max_memory_per_child: None,
            broken_on_crash: false,
        }
    }

    /// The number of worker processes (default [`cpu_count`](proc_core::cpu_count)).
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().processes(3);
    /// ```
    pub fn processes(mut self, processes: usize) -> PoolBuilder {
        self.processes = Some(processes);
        self
    }

    /// Runs `f(args)` in each worker before its first task (Python's `initializer` and
    /// `initargs`). An initializer that panics or returns an `Err` breaks the pool: its tasks
    /// and later submissions fail with [`Error::BrokenPool`] saying why, instead of
    /// workers being started again and again.
    ///
    /// # Examples
    ///
    /// ```
    /// fn setup(level: u8) {
    ///     assert!(level < 10);
    /// }
    ///
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::builder().processes(1).initializer(setup, 3).build().unwrap();
    ///     assert_eq!(pool.apply(|x: u8| x * 2, 4).unwrap(), 8);
    /// }
    /// ```
    pub fn initializer<F, A, O>(mut self, f: F, args: A) -> PoolBuilder
    where
        F: Fn(A) -> O + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        O: InitOutput + 'static,
    {
        const { no_captures::<F>() };
        let _ = f;
        self.init = Some(make_init::<Direct<F>, A>(args));
        self
    }

    /// Replaces each worker after it has run `n` tasks (Python's `maxtasksperchild`); a
    /// chunk of `map` counts as one task.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().maxtasksperchild(100);
    /// ```
    pub fn maxtasksperchild(mut self, n: usize) -> PoolBuilder {
        self.maxtasksperchild = Some(n);
        self
    }

    /// How the workers are started (default [`get_start_method`](proc_core::get_start_method)).
    ///
    /// With [`StartMethod::Fork`] the program must be single-threaded when the pool is built
    /// (as for any forked process); workers started later to replace others come from the
    /// fork server, because a running pool has threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().start_method(proc_pool::core::StartMethod::Spawn);
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> PoolBuilder {
        self.start_method = Some(method);
        self
    }

    /// Fails a task that runs longer than `timeout` with [`Error::Timeout`], and kills and
    /// replaces its worker (billiard's hard time limit; Python's pools cannot stop a task).
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().task_timeout(std::time::Duration::from_secs(60));
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> PoolBuilder {
        self.task_timeout = Some(timeout);
        self
    }

    /// Replaces a worker whose resident memory is above `bytes` after a task (loky's leak
    /// check, billiard's `max_memory_per_child`).
    ///
    /// # Platform-specific behavior
    ///
    /// Linux checks the current resident size, other Unix systems the peak one; on Windows
    /// `build` returns [`Error::Unsupported`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().max_memory_per_child(512 << 20);
    /// ```
    pub fn max_memory_per_child(mut self, bytes: u64) -> PoolBuilder {
        self.max_memory_per_child = Some(bytes);
        self
    }

    /// With `true`, a worker that dies breaks the whole pool, as Python's
    /// `BrokenProcessPool` does: every unfinished task and later submission fails with
    /// [`Error::BrokenPool`]. By default only the task the worker ran fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().broken_on_crash(true);
    /// ```
    pub fn broken_on_crash(mut self, broken: bool) -> PoolBuilder {
        self.broken_on_crash = broken;
        self
    }

    pub(crate) fn settings(&self, name: &'static str) -> Result<Settings> {
        let workers = self.processes.unwrap_or_else(proc_core::cpu_count);
        if workers == 0 {
            return Err(Error::InvalidState(
                "the number of processes must be at least 1",
            ));
        }
        if self.maxtasksperchild == Some(0) {
            return Err(Error::InvalidState(
                "maxtasksperchild must be at least 1 (or not set)",
            ));
        }
        Ok(Settings {
            workers,
            method: self
                .start_method
                .unwrap_or_else(proc_core::get_start_method),
            init: self.init.clone(),
            max_tasks: self.maxtasksperchild,
            task_timeout: self.task_timeout,
            max_memory: self.max_memory_per_child,
            broken_on_crash: self.broken_on_crash,
            name,
        })
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for zero processes or `maxtasksperchild(0)`, and the errors of
    /// starting a process ([`Process::start`](proc_core::Process::start)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_pool::Pool::builder().processes(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<Pool> {
        Ok(Pool {
            engine: Arc::new(Engine::start(self.settings("PoolWorker")?)?),
        })
    }
}

/// Worker processes that run functions for the parent: Python's `multiprocessing.Pool`.
///
/// Functions are `fn`s or closures that capture nothing, as for
/// [`Process`](proc_core::Process); arguments and results travel through serde, and may
/// carry queues, pipes, locks and shared memory of `procs`.
///
/// What Python's pool does not do: a task that panics fails only its own result; a worker
/// that is killed fails only the task it ran ([`Error::WorkerDied`]) and is replaced;
/// `imap` pulls its input lazily; a task can be given a time limit. Dropping the pool
/// terminates it (Python's `with Pool() as p:`); [`close`](Pool::close) then
/// [`join`](Pool::join) lets its tasks finish first.
///
/// # Examples
///
/// ```
/// use proc_pool::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() {
///     proc_pool::core::init();
///     let pool = Pool::new(2).unwrap();
///     assert_eq!(pool.map(square, 1..=5).unwrap(), [1, 4, 9, 16, 25]);
///     assert_eq!(pool.starmap(|a: u64, b: u64| a * b, vec![(2, 3), (4, 5)]).unwrap(), [6, 20]);
///     let pid = pool.apply(|(): ()| proc_pool::core::getpid(), ()).unwrap();
///     assert_ne!(pid, proc_pool::core::getpid());
///     pool.close();
///     pool.join().unwrap();
/// }
/// ```
///
/// The worker makes the function's value from nothing (it has no bytes), which is why it may
/// capture nothing. The compile-time check sees sizes only: a closure that captures nothing
/// but zero-sized values passes it, and the worker then makes those values from nothing too
/// — do not capture a zero-sized token whose constructor checks something.
///
/// A closure that captures its environment does not compile. The check is a constant that
/// `cargo build` evaluates once the function's type is known, after type checking: `cargo
/// check` (and so an editor's live errors) does not show it.
///
/// ```compile_fail,E0080
/// fn main() {
///     let pool = proc_pool::Pool::new(1).unwrap();
///     let base = 10;
///     let _ = pool.apply(move |x: i32| x + base, 1);
/// }
/// ```
pub struct Pool {
    engine: Arc<Engine>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.engine.workers())
            .field("closed", &self.engine.is_closed())
            .finish()
    }
}

impl Pool {
    /// A pool of `processes` workers (Python's `Pool(processes)`).
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(1).unwrap();
    ///     assert_eq!(pool.apply(|x: i8| -x, 5).unwrap(), -5);
    /// }
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for a pool with settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::Pool::builder().processes(2);
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// The number of worker processes.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     assert_eq!(proc_pool::Pool::new(2).unwrap().processes(), 2);
    /// }
    /// ```
    pub fn processes(&self) -> usize {
        self.engine.workers()
    }

    /// Runs `f(args)` in a worker and waits for its result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// The task's error ([`Error::Panicked`], [`Error::WorkerDied`], [`Error::Timeout`]
    /// under `task_timeout`, [`Error::Decode`] for arguments or results that do not travel),
    /// or [`Error::InvalidState`] after `close`/`terminate`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(1).unwrap();
    ///     assert_eq!(pool.apply(|(a, b): (u32, u32)| a + b, (2, 3)).unwrap(), 5);
    /// }
    /// ```
    pub fn apply<F, A, R>(&self, f: F, args: A) -> Result<R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args)?.into_result()
    }

    /// Runs `f(args)` in a worker; the [`AsyncResult`] gets its result (Python's
    /// `apply_async`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after `close`/`terminate`, the pool's error once it is
    /// broken, [`Error::Decode`] when the arguments do not encode.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let results: Vec<_> = (0..4u64).map(|i| pool.apply_async(|x: u64| x * 10, i).unwrap()).collect();
    ///     let values: Vec<u64> = results.iter().map(|r| r.get().unwrap()).collect();
    ///     assert_eq!(values, [0, 10, 20, 30]);
    /// }
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        const { no_captures::<F>() };
        let _ = f;
        let future = Future::pending();
        self.engine
            .submit_one::<Direct<F>, A, R>(args, future.clone(), OnCancel::LetRun)?;
        Ok(AsyncResult::new(future))
    }

    /// Like [`apply_async`](Pool::apply_async), calling `callback` with the value or
    /// `error_callback` with the error in the parent, on the pool's result thread, before
    /// the result is ready (Python's `callback` and `error_callback`).
    ///
    /// # Errors
    ///
    /// As [`apply_async`](Pool::apply_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(1).unwrap();
    ///     let seen = Arc::new(Mutex::new(Vec::new()));
    ///     let sink = seen.clone();
    ///     let result = pool
    ///         .apply_async_with(|x: u8| x + 1, 1, move |v: &u8| sink.lock().unwrap().push(*v), |_| {})
    ///         .unwrap();
    ///     assert_eq!(result.get().unwrap(), 2);
    ///     assert_eq!(*seen.lock().unwrap(), [2]);
    /// }
    /// ```
    pub fn apply_async_with<F, A, R, C, E>(
        &self,
        f: F,
        args: A,
        callback: C,
        error_callback: E,
    ) -> Result<AsyncResult<R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        C: FnOnce(&R) + Send + 'static,
        E: FnOnce(&Error) + Send + 'static,
    {
        const { no_captures::<F>() };
        let _ = f;
        let future = Future::pending();
        with_callbacks(&future, callback, error_callback);
        self.engine
            .submit_one::<Direct<F>, A, R>(args, future.clone(), OnCancel::LetRun)?;
        Ok(AsyncResult::new(future))
    }

    fn chunks<F, A, R>(&self) -> Submit<A, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        const { no_captures::<F>() };
        self.engine.chunks::<Direct<F>, A, R>()
    }

    fn chunk_encoder<F, A, R>(&self) -> ChunkEncoder<Direct<F>, A, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        const { no_captures::<F>() };
        self.engine.chunk_encoder::<Direct<F>, A, R>()
    }

    fn star_chunk_encoder<F, T>(&self) -> ChunkEncoder<Star<F>, T, F::Output>
    where
        F: StarFn<T> + Copy,
        T: Serialize + DeserializeOwned + Send + 'static,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        const { no_captures::<F>() };
        self.engine.chunk_encoder::<Star<F>, T, F::Output>()
    }

    /// Runs `f` on every item in the workers and returns the results in order (Python's
    /// `map`), in chunks of Python's size: about four per worker.
    ///
    /// # Errors
    ///
    /// The first error of an item (in input order), returned once no chunk of the call is
    /// still running (Python's no-failfast rule); the pool stays usable. A panic of the
    /// input iterator is [`Error::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     assert_eq!(pool.map(|x: i32| x * x, 0..5).unwrap(), [0, 1, 4, 9, 16]);
    ///     assert!(pool.map(|x: i32| x, Vec::new()).unwrap().is_empty());
    /// }
    /// ```
    pub fn map<F, I, A, R>(&self, f: F, iterable: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        self.map_chunked(f, items, chunksize)
    }

    /// Like [`map`](Pool::map), in chunks of `chunksize` items (Python's `chunksize`).
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map), and [`Error::InvalidState`] for a `chunksize` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     assert_eq!(pool.map_chunked(|x: u8| x + 1, vec![1, 2, 3], 2).unwrap(), [2, 3, 4]);
    /// }
    /// ```
    pub fn map_chunked<F, I, A, R>(&self, f: F, iterable: I, chunksize: usize) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        let chunksize = map::check_chunksize(chunksize)?;
        self.engine.check_open()?;
        let items = map::items(iterable)?;
        map::map_all(items, chunksize, &mut self.chunk_encoder::<F, A, R>())
    }

    /// Like [`map`](Pool::map), without waiting: the [`AsyncResult`] gets every value, or
    /// the first error (Python's `map_async`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after `close`/`terminate`; a panic of the input iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let result = pool.map_async(|x: u32| x * 2, vec![1, 2, 3]).unwrap();
    ///     assert_eq!(result.get().unwrap(), [2, 4, 6]);
    /// }
    /// ```
    pub fn map_async<F, I, A, R>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_with(f, iterable, |_| {}, |_| {})
    }

    /// Like [`map_async`](Pool::map_async), calling `callback` with all the values or
    /// `error_callback` with the error — exactly one of them, once — before the result is
    /// ready.
    ///
    /// # Errors
    ///
    /// As [`map_async`](Pool::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let (tx, rx) = mpsc::channel();
    ///     let result = pool
    ///         .map_async_with(|x: u32| x + 1, vec![1, 2], move |v: &Vec<u32>| tx.send(v.clone()).unwrap(), |_| {})
    ///         .unwrap();
    ///     result.wait();
    ///     assert_eq!(rx.recv().unwrap(), [2, 3]);
    /// }
    /// ```
    pub fn map_async_with<F, I, A, R, C, E>(
        &self,
        f: F,
        iterable: I,
        callback: C,
        error_callback: E,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        C: FnOnce(&Vec<R>) + Send + 'static,
        E: FnOnce(&Error) + Send + 'static,
    {
        let _ = f;
        self.engine.check_open()?;
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        let out = Future::pending();
        with_callbacks(&out, callback, error_callback);
        let out = map::map_async(items, chunksize, &mut self.chunk_encoder::<F, A, R>(), out)?;
        Ok(AsyncResult::new(out))
    }

    /// Runs `f` on every item, yielding the results in order as they come (Python's
    /// `imap`, one item per task). Lazy where Python is eager: the input is pulled as
    /// results are taken, with a few tasks per worker in flight, so an endless input works.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after `close`/`terminate`. Each item's error comes in its
    /// place in the iteration; a panic of the input iterator comes after the results before
    /// it, and ends the iteration.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let first: Vec<u64> = pool.imap(|x: u64| x * 2, 0..).unwrap().take(3).map(Result::unwrap).collect();
    ///     assert_eq!(first, [0, 2, 4]);
    /// }
    /// ```
    pub fn imap<F, I, A, R>(&self, f: F, iterable: I) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_chunked(f, iterable, 1)
    }

    /// Like [`imap`](Pool::imap), `chunksize` items per task.
    ///
    /// # Errors
    ///
    /// As [`imap`](Pool::imap), and [`Error::InvalidState`] for a `chunksize` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let all: Vec<u32> = pool.imap_chunked(|x: u32| x + 1, 0..10, 4).unwrap().map(Result::unwrap).collect();
    ///     assert_eq!(all, (1..=10).collect::<Vec<_>>());
    /// }
    /// ```
    pub fn imap_chunked<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        self.lazy(iterable, chunksize, Order::Input, self.chunks::<F, A, R>())
    }

    /// Like [`imap`](Pool::imap), yielding each result as soon as it is ready, in any order
    /// (Python's `imap_unordered`).
    ///
    /// # Errors
    ///
    /// As [`imap`](Pool::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let mut all: Vec<u32> = pool.imap_unordered(|x: u32| x * 3, 0..5).unwrap().map(Result::unwrap).collect();
    ///     all.sort();
    ///     assert_eq!(all, [0, 3, 6, 9, 12]);
    /// }
    /// ```
    pub fn imap_unordered<F, I, A, R>(&self, f: F, iterable: I) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_unordered_chunked(f, iterable, 1)
    }

    /// Like [`imap_unordered`](Pool::imap_unordered), `chunksize` items per task.
    ///
    /// # Errors
    ///
    /// As [`imap_chunked`](Pool::imap_chunked).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let count = pool.imap_unordered_chunked(|x: u32| x, 0..100, 10).unwrap().count();
    ///     assert_eq!(count, 100);
    /// }
    /// ```
    pub fn imap_unordered_chunked<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        self.lazy(
            iterable,
            chunksize,
            Order::Completion,
            self.chunks::<F, A, R>(),
        )
    }

    fn lazy<I: IntoIterator, R>(
        &self,
        iterable: I,
        chunksize: usize,
        order: Order,
        submit: Submit<I::Item, R>,
    ) -> Result<Imap<I::IntoIter, R>> {
        self.engine.check_open()?;
        let input = iterable.into_iter();
        map::imap(input, chunksize, None, self.processes(), order, submit)
    }

    /// Runs `f(a, b, …)` for every tuple `(a, b, …)` and returns the results in order
    /// (Python's `starmap`); `f` takes 2 to 6 arguments.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let products = pool.starmap(|a: u64, b: u64| a * b, vec![(1, 2), (3, 4)]).unwrap();
    ///     assert_eq!(products, [2, 12]);
    /// }
    /// ```
    pub fn starmap<F, I, T>(&self, f: F, iterable: I) -> Result<Vec<F::Output>>
    where
        F: StarFn<T> + Copy,
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send + 'static,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        self.starmap_chunked(f, items, chunksize)
    }

    /// Like [`starmap`](Pool::starmap), in chunks of `chunksize` tuples.
    ///
    /// # Errors
    ///
    /// As [`map_chunked`](Pool::map_chunked).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let sums = pool.starmap_chunked(|a: u8, b: u8, c: u8| a + b + c, vec![(1, 2, 3); 5], 2).unwrap();
    ///     assert_eq!(sums, [6; 5]);
    /// }
    /// ```
    pub fn starmap_chunked<F, I, T>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Vec<F::Output>>
    where
        F: StarFn<T> + Copy,
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send + 'static,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        let chunksize = map::check_chunksize(chunksize)?;
        self.engine.check_open()?;
        let items = map::items(iterable)?;
        map::map_all(items, chunksize, &mut self.star_chunk_encoder::<F, T>())
    }

    /// Like [`starmap`](Pool::starmap), without waiting (Python's `starmap_async`).
    ///
    /// # Errors
    ///
    /// As [`map_async`](Pool::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(2).unwrap();
    ///     let result = pool.starmap_async(|a: i32, b: i32| a - b, vec![(5, 3), (1, 1)]).unwrap();
    ///     assert_eq!(result.get().unwrap(), [2, 0]);
    /// }
    /// ```
    pub fn starmap_async<F, I, T>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: StarFn<T> + Copy,
        I: IntoIterator<Item = T>,
        T: Serialize + DeserializeOwned + Send + 'static,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        self.engine.check_open()?;
        let items = map::items(iterable)?;
        let chunksize = map::default_chunksize(items.len(), self.processes());
        let out = map::map_async(
            items,
            chunksize,
            &mut self.star_chunk_encoder::<F, T>(),
            Future::pending(),
        )?;
        Ok(AsyncResult::new(out))
    }

    /// Takes no more tasks; those submitted still run, then the workers end (Python's
    /// `close`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(1).unwrap();
    ///     pool.close();
    ///     assert!(pool.apply(|x: u8| x, 1).is_err());
    ///     pool.join().unwrap();
    /// }
    /// ```
    pub fn close(&self) {
        self.engine.close(QueuedTasks::Run);
    }

    /// Stops at once: the workers are killed and every unfinished task fails with
    /// [`Error::Cancelled`] (Python's `terminate`). Dropping the pool does this too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(1).unwrap();
    ///     let slow = pool.apply_async(std::thread::sleep, Duration::from_secs(60)).unwrap();
    ///     pool.terminate();
    ///     assert!(slow.get().unwrap_err().is_cancelled());
    /// }
    /// ```
    pub fn terminate(&self) {
        self.engine.terminate();
    }

    /// Waits until every task has run and every worker has ended (Python's `join`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when neither [`close`](Pool::close) nor
    /// [`terminate`](Pool::terminate) was called first, as Python's `ValueError`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let pool = proc_pool::Pool::new(1).unwrap();
    ///     assert!(pool.join().is_err());
    ///     pool.close();
    ///     pool.join().unwrap();
    /// }
    /// ```
    pub fn join(&self) -> Result<()> {
        if !self.engine.is_closed() {
            return Err(Error::InvalidState(
                "call close() or terminate() before join()",
            ));
        }
        self.engine.join_manager();
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.engine.terminate();
    }
}

/// Registers Python's `callback`/`error_callback` pair on a future.
pub(crate) fn with_callbacks<R, C, E>(future: &Future<R>, callback: C, error_callback: E)
where
    R: Send + 'static,
    C: FnOnce(&R) + Send + 'static,
    E: FnOnce(&Error) + Send + 'static,
{
    future.before_ready(move |outcome| match outcome {
        Ok(value) => callback(value),
        Err(e) => error_callback(e),
    });
}
