//! [`Executor`]: the one `concurrent.futures` executor front over worker processes
//! ([`ProcessPoolExecutor`](crate::ProcessPoolExecutor)) and, in proc-mpi, over MPI ranks
//! (`MpiPoolExecutor`), so that both have the same methods because they are the same methods.

use std::fmt;
use std::time::Duration;

use proc_core::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::future::{Future, QueuedTasks};
use crate::map::{self, Imap, Order, Runs, Submit};
use crate::pool::no_captures;

/// A function an [`Executor`] runs in another process: an fn item or a closure that
/// captures nothing (checked at compile time), called on one argument.
///
/// Implemented for every such `Fn`; there is nothing to implement by hand.
///
/// # Examples
///
/// ```
/// fn runs_elsewhere<F: proc_pool::TaskFn<u8, u8>>(f: F) -> u8 {
///     f(20)
/// }
/// assert_eq!(runs_elsewhere(|x: u8| x + 1), 21);
/// ```
pub trait TaskFn<A, R>: Fn(A) -> R + Copy + Send + Sync + 'static {}

impl<F, A, R> TaskFn<A, R> for F where F: Fn(A) -> R + Copy + Send + Sync + 'static {}

/// A value that travels to or from another process: an argument or a result of an
/// [`Executor`]'s task.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type.
///
/// # Examples
///
/// ```
/// fn travels<T: proc_pool::Wire>(value: T) -> T {
///     value
/// }
/// assert_eq!(travels(vec![1u8, 2]), [1, 2]);
/// ```
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}

impl<T> Wire for T where T: Serialize + DeserializeOwned + Send + 'static {}

/// Where an [`Executor`] runs its tasks: [`Processes`](crate::Processes) (the worker
/// processes of a [`ProcessPoolExecutor`](crate::ProcessPoolExecutor)), or proc-mpi's
/// `Ranks` (the worker ranks of an `MpiPoolExecutor`).
///
/// Its methods are the procs crates' own plumbing, hidden from these docs and without a
/// semver promise: it is public so that proc-mpi can implement it, not for other crates.
///
/// # Examples
///
/// ```
/// fn workers<B: proc_pool::Backend>(executor: &proc_pool::Executor<B>) -> usize {
///     executor.max_workers()
/// }
///
/// fn main() {
///     proc_pool::core::init();
///     assert_eq!(workers(&proc_pool::ProcessPoolExecutor::new(1).unwrap()), 1);
/// }
/// ```
pub trait Backend: Sized + Send + Sync + 'static {
    /// What [`Executor::new`] takes: the number of workers for processes, the MPI session
    /// for ranks.
    type New<'a>;
    /// What [`Executor::builder`] returns.
    type Builder: Default;
    /// The executor's name, for `Debug` and messages.
    #[doc(hidden)]
    const NAME: &'static str;
    /// Starts the workers.
    #[doc(hidden)]
    fn start(with: Self::New<'_>) -> Result<Self>;
    /// The number of workers.
    #[doc(hidden)]
    fn workers(&self) -> usize;
    /// `Ok` while the executor takes tasks; its error once shut down or broken.
    #[doc(hidden)]
    fn check_open(&self) -> Result<()>;
    /// Queues `F` on `args` as one task.
    #[doc(hidden)]
    fn submit<F: TaskFn<A, R>, A: Wire, R: Wire>(&self, args: A) -> Result<Future<R>>;
    /// The [`Submit`] of a map: queues `F` on each chunk of items it is given.
    #[doc(hidden)]
    fn chunks<F: TaskFn<A, R>, A: Wire, R: Wire>(&self) -> Submit<A, R>;
    /// The [`Submit`] of a lazy map and, for a backend that sends several of its chunks as
    /// one task when they are tiny, the [`Runs`] that says how many items a task may carry
    /// ([`imap_runs`](crate::internal::imap_runs)): [`chunks`](Backend::chunks) alone unless
    /// overridden.
    #[doc(hidden)]
    fn map_chunks<F: TaskFn<A, R>, A: Wire, R: Wire>(&self) -> (Submit<A, R>, Option<Runs>) {
        (self.chunks::<F, A, R>(), None)
    }
    /// Takes no more tasks; `queued` says what becomes of those no worker took.
    #[doc(hidden)]
    fn close(&self, queued: QueuedTasks);
    /// Waits until every task taken is done and the workers are let go.
    #[doc(hidden)]
    fn join(&self);
}

/// Workers that run functions and give back [`Future`]s: Python's
/// `concurrent.futures.Executor`, over worker processes
/// ([`ProcessPoolExecutor`](crate::ProcessPoolExecutor)) or MPI ranks (proc-mpi's
/// `MpiPoolExecutor`).
///
/// Functions are fn items or closures that capture nothing ([`TaskFn`]; a capture is a
/// compile-time error): the worker gets the function from its type alone. Arguments and
/// results travel encoded ([`Wire`]). The futures of every executor are the same
/// [`Future`], so [`wait`](crate::wait) and [`as_completed`](crate::as_completed) take them
/// mixed. Dropping an executor is `shutdown(wait = true)`, as Python's `with` block.
///
/// # Examples
///
/// ```
/// use proc_pool::{ProcessPoolExecutor, as_completed};
///
/// fn main() {
///     proc_pool::core::init();
///     let executor = ProcessPoolExecutor::new(2).unwrap();
///     let futures: Vec<_> = (1..=3u64).map(|x| executor.submit(|x: u64| x * 10, x).unwrap()).collect();
///     let total: u64 = as_completed(&futures, None).map(|f| f.unwrap().result().unwrap()).sum();
///     assert_eq!(total, 60);
/// }
/// ```
pub struct Executor<B: Backend> {
    backend: B,
}

impl<B: Backend> fmt::Debug for Executor<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(B::NAME)
            .field("max_workers", &self.max_workers())
            .finish()
    }
}

impl<B: Backend> Executor<B> {
    /// An executor and its workers: `ProcessPoolExecutor::new(max_workers)` starts that many
    /// worker processes; `MpiPoolExecutor::new(&mpi)` uses the session's worker ranks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`](proc_core::Error::InvalidState) for 0 workers; for processes as
    /// [`ProcessPoolExecutorBuilder::build`](crate::ProcessPoolExecutorBuilder::build), for
    /// ranks as proc-mpi says.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::new(1).unwrap();
    ///     assert_eq!(executor.submit(|x: u8| x * 3, 3).unwrap().result().unwrap(), 9);
    /// }
    /// ```
    pub fn new(with: B::New<'_>) -> Result<Executor<B>> {
        B::start(with).map(Executor::from_backend)
    }

    /// A builder for an executor with settings (for processes
    /// [`ProcessPoolExecutorBuilder`](crate::ProcessPoolExecutorBuilder), for ranks
    /// proc-mpi's `MpiPoolExecutorBuilder`).
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().max_workers(2);
    /// ```
    pub fn builder() -> B::Builder {
        B::Builder::default()
    }

    /// The executor over workers already started (what the builders end with).
    #[doc(hidden)]
    pub fn from_backend(backend: B) -> Executor<B> {
        Executor { backend }
    }

    /// The number of workers.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     assert_eq!(proc_pool::ProcessPoolExecutor::new(2).unwrap().max_workers(), 2);
    /// }
    /// ```
    pub fn max_workers(&self) -> usize {
        self.backend.workers()
    }

    /// Runs `f(args)` on a worker (Python's `submit(fn, *args)`; several arguments travel
    /// as one tuple).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`](proc_core::Error::InvalidState) after
    /// [`shutdown`](Executor::shutdown), the executor's error once it is broken,
    /// [`Error::Decode`](proc_core::Error::Decode) for arguments that do not encode.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::new(1).unwrap();
    ///     let future = executor.submit(|(a, b): (u64, u32)| a.pow(b), (2, 10)).unwrap();
    ///     assert_eq!(future.result().unwrap(), 1024);
    /// }
    /// ```
    ///
    /// A closure that captures something does not compile: a worker could not get what it
    /// captured.
    ///
    /// ```compile_fail
    /// let executor = proc_pool::ProcessPoolExecutor::new(1).unwrap();
    /// let offset = 1u64;
    /// let _ = executor.submit(move |x: u64| x + offset, 1);
    /// ```
    pub fn submit<F: TaskFn<A, R>, A: Wire, R: Wire>(&self, f: F, args: A) -> Result<Future<R>> {
        const { no_captures::<F>() };
        let _ = f;
        self.backend.submit::<F, A, R>(args)
    }

    /// Runs `f` on every item; the iterator yields the results in input order (Python's
    /// `map`, one item per task). The input is pulled lazily, a few tasks per worker ahead.
    ///
    /// # Errors
    ///
    /// As [`submit`](Executor::submit); each item's error comes in its place.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::new(2).unwrap();
    ///     let v: Vec<u32> = executor.map(|x: u32| x * x, 1..=3).unwrap().map(Result::unwrap).collect();
    ///     assert_eq!(v, [1, 4, 9]);
    /// }
    /// ```
    pub fn map<F, I, A, R>(&self, f: F, iterable: I) -> Result<Imap<I::IntoIter, R>>
    where
        F: TaskFn<A, R>,
        I: IntoIterator<Item = A>,
        A: Wire,
        R: Wire,
    {
        self.map_with(f, iterable, 1, None)
    }

    /// Like [`map`](Executor::map), `chunksize` items per task (one message each way), and
    /// at most `timeout` from this call until the last result (Python's `map(timeout,
    /// chunksize)`): when it passes, the iterator yields
    /// [`Error::Timeout`](proc_core::Error::Timeout), cancels what it has not sent, and ends.
    ///
    /// # Errors
    ///
    /// As [`map`](Executor::map), and [`Error::InvalidState`](proc_core::Error::InvalidState)
    /// for a `chunksize` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::new(2).unwrap();
    ///     let n = executor.map_with(|x: u32| x, 0..1000, 100, None).unwrap().count();
    ///     assert_eq!(n, 1000);
    /// }
    /// ```
    pub fn map_with<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: TaskFn<A, R>,
        I: IntoIterator<Item = A>,
        A: Wire,
        R: Wire,
    {
        self.lazy(f, iterable.into_iter(), chunksize, timeout, Order::Input)
    }

    /// Like [`map_with`](Executor::map_with) without a time limit, yielding the results as
    /// they come (mpi4py's `map(..., unordered=True)`, `Pool.imap_unordered`).
    ///
    /// # Errors
    ///
    /// As [`map_with`](Executor::map_with).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::new(2).unwrap();
    ///     let mut v: Vec<u32> = executor.map_unordered(|x: u32| x + 1, 0..10, 3).unwrap().map(Result::unwrap).collect();
    ///     v.sort();
    ///     assert_eq!(v, (1..=10).collect::<Vec<_>>());
    /// }
    /// ```
    pub fn map_unordered<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: TaskFn<A, R>,
        I: IntoIterator<Item = A>,
        A: Wire,
        R: Wire,
    {
        self.lazy(f, iterable.into_iter(), chunksize, None, Order::Completion)
    }

    /// The lazy map of `f` over `input`.
    fn lazy<F: TaskFn<A, R>, I: Iterator<Item = A>, A: Wire, R: Wire>(
        &self,
        f: F,
        input: I,
        chunksize: usize,
        timeout: Option<Duration>,
        order: Order,
    ) -> Result<Imap<I, R>> {
        const { no_captures::<F>() };
        let _ = f;
        self.backend.check_open()?;
        let (submit, runs) = self.backend.map_chunks::<F, A, R>();
        let workers = self.max_workers();
        map::imap_runs(input, chunksize, timeout, workers, order, submit, runs)
    }

    /// Takes no more tasks (Python's `shutdown(wait, cancel_futures)`): with
    /// `cancel_futures`, the tasks no worker has taken are cancelled; with `wait`, waits
    /// until the others are done and the workers are let go.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::new(1).unwrap();
    ///     let future = executor.submit(|x: u8| x, 5).unwrap();
    ///     executor.shutdown(true, false);
    ///     assert_eq!(future.result().unwrap(), 5);
    ///     assert!(executor.submit(|x: u8| x, 1).is_err());
    /// }
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.backend
            .close(QueuedTasks::cancelled_if(cancel_futures));
        if wait {
            self.backend.join();
        }
    }

    /// The workers, for the backend's own methods (proc-mpi's tests).
    #[doc(hidden)]
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B: Backend> Drop for Executor<B> {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
