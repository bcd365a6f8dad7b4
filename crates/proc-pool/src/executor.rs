//! `ThreadPoolExecutor` and `ProcessPoolExecutor`: Python's `concurrent.futures` executors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use proc_core::{Error, Result, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Backend, Executor, TaskFn, Wire};
use crate::call::{Direct, InitOutput};
use crate::future::{Future, QueuedTasks};
use crate::map::{self, Imap, Order, Submit};
use crate::pool::PoolBuilder;
use crate::process::{Engine, OnCancel};
use crate::thread::{Init, Start, Threads};

/// Settings for a [`ThreadPoolExecutor`].
///
/// # Examples
///
/// ```
/// let executor = proc_pool::ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
/// assert_eq!(executor.submit(|x: u8| x, 1).unwrap().result().unwrap(), 1);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone, Default)]
pub struct ThreadPoolExecutorBuilder {
    max_workers: Option<usize>,
    init: Option<Init>,
}

impl fmt::Debug for ThreadPoolExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutorBuilder")
            .field("max_workers", &self.max_workers)
            .field("initializer", &self.init.is_some())
            .finish()
    }
}

impl ThreadPoolExecutorBuilder {
    /// At most `n` threads (default `min(32, cpu_count() + 4)`, as Python's).
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ThreadPoolExecutor::builder().max_workers(8);
    /// ```
    pub fn max_workers(mut self, n: usize) -> ThreadPoolExecutorBuilder {
        self.max_workers = Some(n);
        self
    }

    /// Runs `f()` in each new thread before its first task. An initializer that panics or
    /// returns an `Err` breaks the executor: unfinished and later tasks fail with
    /// [`Error::BrokenPool`].
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::builder().initializer(|| Err::<(), _>("no")).build().unwrap();
    /// let failed = executor.submit(|x: u8| x, 1).unwrap();
    /// assert!(matches!(failed.result(), Err(proc_pool::core::Error::BrokenPool(_))));
    /// ```
    pub fn initializer<F, O>(mut self, f: F) -> ThreadPoolExecutorBuilder
    where
        F: Fn() -> O + Send + Sync + 'static,
        O: InitOutput,
    {
        self.init = Some(Arc::new(move || {
            f().into_outcome().map_err(Error::BrokenPool)
        }));
        self
    }

    /// Makes the executor; its threads start as tasks arrive.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for `max_workers(0)`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_pool::ThreadPoolExecutor::builder().max_workers(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<ThreadPoolExecutor> {
        let max = self
            .max_workers
            .unwrap_or_else(|| 32.min(proc_core::cpu_count() + 4));
        Ok(ThreadPoolExecutor {
            threads: Arc::new(Threads::new(
                max,
                Start::OnDemand,
                "ThreadPoolExecutor",
                self.init,
            )?),
        })
    }
}

/// Threads that run closures and give back [`Future`]s: Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Threads are started as tasks arrive while none is idle, up to `max_workers`, so a task
/// that blocks (on I/O, say) does not hold up the others while there is room. Dropping the
/// executor is `shutdown(wait = true)`, as leaving Python's `with` block.
///
/// # Examples
///
/// ```
/// use proc_pool::{ThreadPoolExecutor, ReturnWhen, wait};
///
/// let executor = ThreadPoolExecutor::new(4).unwrap();
/// let name = String::from("world");
/// let greeting = executor.submit(move |punct: char| format!("hello {name}{punct}"), '!').unwrap();
/// assert_eq!(greeting.result().unwrap(), "hello world!");
/// let squares: Vec<u64> = executor.map(|x: u64| x * x, 1..=3).unwrap().map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9]);
/// ```
pub struct ThreadPoolExecutor {
    threads: Arc<Threads>,
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.threads.workers())
            .finish()
    }
}

impl ThreadPoolExecutor {
    /// An executor of at most `max_workers` threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for zero workers.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_pool::ThreadPoolExecutor::new(0).is_err());
    /// ```
    pub fn new(max_workers: usize) -> Result<ThreadPoolExecutor> {
        ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    /// A builder, for the default size or an initializer.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::builder().build().unwrap();
    /// assert!(executor.max_workers() >= 5);
    /// ```
    pub fn builder() -> ThreadPoolExecutorBuilder {
        ThreadPoolExecutorBuilder::default()
    }

    /// The most threads the executor runs.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_pool::ThreadPoolExecutor::new(3).unwrap().max_workers(), 3);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.threads.workers()
    }

    /// Runs `f(args)` on a thread (Python's `submit(fn, *args)`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after [`shutdown`](ThreadPoolExecutor::shutdown) (Python's
    /// "cannot schedule new futures after shutdown"), [`Error::BrokenPool`] after a failed
    /// initializer.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let data = vec![1, 2, 3];
    /// let sum = executor.submit(move |extra: i32| data.into_iter().sum::<i32>() + extra, 4).unwrap();
    /// assert_eq!(sum.result().unwrap(), 10);
    /// ```
    pub fn submit<F, A, R>(&self, f: F, args: A) -> Result<Future<R>>
    where
        F: FnOnce(A) -> R + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.threads.submit(move || f(args))
    }

    /// Runs `f` on every item; the iterator yields the results in input order (Python's
    /// `map`). The input is pulled lazily, a few tasks per thread ahead.
    ///
    /// # Errors
    ///
    /// As [`submit`](ThreadPoolExecutor::submit); each item's error comes in its place.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(2).unwrap();
    /// let v: Vec<u8> = executor.map(|x: u8| x + 1, vec![1, 2]).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, [2, 3]);
    /// ```
    pub fn map<F, I, A, R>(&self, f: F, iterable: I) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.map_with(f, iterable, 1, None)
    }

    /// Like [`map`](ThreadPoolExecutor::map), `chunksize` items per task, and at most
    /// `timeout` from this call until the last result (Python's `map(timeout, chunksize)`):
    /// when it passes, the iterator yields [`Error::Timeout`], cancels what has not started,
    /// and ends.
    ///
    /// # Errors
    ///
    /// As [`map`](ThreadPoolExecutor::map), and [`Error::InvalidState`] for a `chunksize`
    /// of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let executor = proc_pool::ThreadPoolExecutor::new(2).unwrap();
    /// let mut results = executor
    ///     .map_with(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), vec![0, 2000], 1, Some(Duration::from_millis(100)))
    ///     .unwrap();
    /// assert!(results.next().unwrap().is_ok());
    /// assert!(results.next().unwrap().unwrap_err().is_timeout());
    /// ```
    pub fn map_with<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.threads.check_open()?;
        let threads = self.threads.clone();
        let f = Arc::new(Direct(f));
        let submit: Submit<A, R> = Box::new(move |items| threads.submit_chunk(f.clone(), items));
        let input = iterable.into_iter();
        map::imap(
            input,
            chunksize,
            timeout,
            self.max_workers(),
            Order::Input,
            submit,
        )
    }

    /// Takes no more tasks (Python's `shutdown(wait, cancel_futures)`): with
    /// `cancel_futures`, the tasks no thread has started are cancelled; with `wait`, waits
    /// until the running ones are done and the threads have ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|x: u8| x, 1).unwrap();
    /// executor.shutdown(true, false);
    /// assert_eq!(future.result().unwrap(), 1);
    /// assert!(executor.submit(|x: u8| x, 1).is_err());
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.threads
            .close(QueuedTasks::cancelled_if(cancel_futures));
        if wait {
            self.threads.join();
        }
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// Settings for a [`ProcessPoolExecutor`]: a consuming builder.
///
/// # Examples
///
/// ```
/// fn main() {
///     proc_pool::core::init();
///     let executor = proc_pool::ProcessPoolExecutor::builder().max_workers(1).max_tasks_per_child(1).build().unwrap();
///     let a = executor.submit(|(): ()| proc_pool::core::getpid(), ()).unwrap().result().unwrap();
///     let b = executor.submit(|(): ()| proc_pool::core::getpid(), ()).unwrap().result().unwrap();
///     assert_ne!(a, b);
/// }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug, Clone, Default)]
pub struct ProcessPoolExecutorBuilder {
    pool: PoolBuilder,
}

impl ProcessPoolExecutorBuilder {
    /// The number of worker processes (default [`cpu_count`](proc_core::cpu_count)).
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().max_workers(2);
    /// ```
    pub fn max_workers(mut self, n: usize) -> ProcessPoolExecutorBuilder {
        self.pool = self.pool.processes(n);
        self
    }

    /// Runs `f(args)` in each worker before its first task; see
    /// [`PoolBuilder::initializer`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_pool::core::init();
    ///     let executor = proc_pool::ProcessPoolExecutor::builder()
    ///         .max_workers(1)
    ///         .initializer(|(): ()| -> Result<(), String> { Err("no config".into()) }, ())
    ///         .build()
    ///         .unwrap();
    ///     let failed = executor.submit(|x: u8| x, 1).and_then(|f| f.result());
    ///     assert!(failed.unwrap_err().to_string().contains("no config"));
    /// }
    /// ```
    pub fn initializer<F, A, O>(mut self, f: F, args: A) -> ProcessPoolExecutorBuilder
    where
        F: Fn(A) -> O + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        O: InitOutput + 'static,
    {
        self.pool = self.pool.initializer(f, args);
        self
    }

    /// Replaces each worker after `n` tasks (Python's `max_tasks_per_child`).
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().max_tasks_per_child(5);
    /// ```
    pub fn max_tasks_per_child(mut self, n: usize) -> ProcessPoolExecutorBuilder {
        self.pool = self.pool.maxtasksperchild(n);
        self
    }

    /// How the workers are started (Python's `mp_context`); see
    /// [`PoolBuilder::start_method`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().start_method(proc_pool::core::StartMethod::Spawn);
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> ProcessPoolExecutorBuilder {
        self.pool = self.pool.start_method(method);
        self
    }

    /// Fails a task that runs longer than `timeout` with [`Error::Timeout`] and replaces
    /// its worker; see [`PoolBuilder::task_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().task_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> ProcessPoolExecutorBuilder {
        self.pool = self.pool.task_timeout(timeout);
        self
    }

    /// Recycles a worker whose memory passes `bytes`; see
    /// [`PoolBuilder::max_memory_per_child`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().max_memory_per_child(1 << 30);
    /// ```
    pub fn max_memory_per_child(mut self, bytes: u64) -> ProcessPoolExecutorBuilder {
        self.pool = self.pool.max_memory_per_child(bytes);
        self
    }

    /// Python's `BrokenProcessPool` behaviour: a worker that dies breaks the executor; see
    /// [`PoolBuilder::broken_on_crash`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_pool::ProcessPoolExecutor::builder().broken_on_crash(true);
    /// ```
    pub fn broken_on_crash(mut self, broken: bool) -> ProcessPoolExecutorBuilder {
        self.pool = self.pool.broken_on_crash(broken);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_pool::ProcessPoolExecutor::builder().max_workers(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<ProcessPoolExecutor> {
        self.start().map(Executor::from_backend)
    }

    /// The worker processes of these settings.
    fn start(self) -> Result<Processes> {
        let settings = self.pool.settings("ProcessPoolExecutor")?;
        let engine = Arc::new(Engine::start(settings)?);
        Ok(Processes { engine })
    }
}

/// Worker processes that run functions and give back [`Future`]s: Python's
/// `concurrent.futures.ProcessPoolExecutor`. It is the [`Executor`] over [`Processes`]:
/// [`new`](Executor::new), [`builder`](Executor::builder), [`submit`](Executor::submit),
/// [`map`](Executor::map), [`map_with`](Executor::map_with),
/// [`map_unordered`](Executor::map_unordered), [`shutdown`](Executor::shutdown).
///
/// Unlike Python's, it does not break when a worker dies: the task that worker ran fails
/// with [`Error::WorkerDied`](proc_core::Error::WorkerDied) and a new worker takes its place (ask for
/// [`broken_on_crash`](ProcessPoolExecutorBuilder::broken_on_crash) to get Python's
/// behaviour). [`Future::cancel`] stops a running task by killing its worker. Dropping the
/// executor is `shutdown(wait = true)`.
///
/// # Examples
///
/// ```
/// use proc_pool::{ProcessPoolExecutor, ReturnWhen, wait};
///
/// fn main() {
///     proc_pool::core::init();
///     let executor = ProcessPoolExecutor::new(2).unwrap();
///     let futures: Vec<_> = (0..4u32).map(|i| executor.submit(|x: u32| x + 1, i).unwrap()).collect();
///     let (done, not_done) = wait(&futures, None, ReturnWhen::AllCompleted);
///     assert_eq!((done.len(), not_done.len()), (4, 0));
///     assert_eq!(futures[3].result().unwrap(), 4);
/// }
/// ```
pub type ProcessPoolExecutor = Executor<Processes>;

/// The worker processes of a [`ProcessPoolExecutor`]: its [`Backend`].
///
/// # Examples
///
/// ```
/// fn main() {
///     proc_pool::core::init();
///     let executor: proc_pool::Executor<proc_pool::Processes> = proc_pool::ProcessPoolExecutor::new(1).unwrap();
///     assert_eq!(executor.max_workers(), 1);
/// }
/// ```
pub struct Processes {
    engine: Arc<Engine>,
}

impl fmt::Debug for Processes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processes")
            .field("workers", &self.engine.workers())
            .finish()
    }
}

impl Backend for Processes {
    type New<'a> = usize;
    type Builder = ProcessPoolExecutorBuilder;
    const NAME: &'static str = "ProcessPoolExecutor";

    fn start(max_workers: usize) -> Result<Processes> {
        ProcessPoolExecutorBuilder::default()
            .max_workers(max_workers)
            .start()
    }

    fn workers(&self) -> usize {
        self.engine.workers()
    }

    fn check_open(&self) -> Result<()> {
        self.engine.check_open()
    }

    fn submit<F: TaskFn<A, R>, A: Wire, R: Wire>(&self, args: A) -> Result<Future<R>> {
        let future = Future::pending();
        self.engine
            .submit_one::<Direct<F>, A, R>(args, future.clone(), OnCancel::KillWorker)?;
        Ok(future)
    }

    fn chunks<F: TaskFn<A, R>, A: Wire, R: Wire>(&self) -> Submit<A, R> {
        self.engine.chunks::<Direct<F>, A, R>()
    }

    fn close(&self, queued: QueuedTasks) {
        self.engine.close(queued);
    }

    fn join(&self) {
        self.engine.join_manager();
    }
}
