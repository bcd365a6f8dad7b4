//! `Future<R>` and `AsyncResult<R>`: the result of a task that a pool or an executor runs.

use std::cell::UnsafeCell;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proc_core::internal::{Deadline, unwind};
use proc_core::{Error, Result};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Finished,
    Cancelled,
}

type Callback<R> = Box<dyn FnOnce(&Future<R>) + Send>;
type Hook<R> = Box<dyn FnOnce(Result<&R, &Error>) + Send>;

/// Kills a running task on request; returns whether it could.
pub(crate) type Canceller = Box<dyn Fn() -> bool + Send + Sync>;

struct Inner<R> {
    status: Status,
    /// The error boxed: an `Error` is 48 bytes, most tasks give a value, and every byte
    /// of a future is one the executor's submitter writes to fresh memory (a page fault for
    /// every 4 KiB of futures alive at once).
    outcome: Option<std::result::Result<R, Box<Error>>>,
    /// What only some futures need, allocated when first asked for: most tasks of a busy
    /// executor have none of it, and a small future costs less to make and to free.
    extras: Option<Box<Extras<R>>>,
    /// Threads blocked in `wait_until`: without any, finishing makes no system call. (A
    /// `u32` packs beside `status`: a future small enough for the allocator's fast bins is
    /// freed much more cheaply, and a busy executor frees one per task.)
    sleepers: u32,
}

/// What a future keeps beside its outcome: nothing, or the work of its task.
trait Slot: Send {}

impl Slot for () {}

/// Who hears of a future's end, and who can stop its task.
struct Extras<R> {
    callbacks: Vec<Callback<R>>,
    before_ready: Vec<Hook<R>>,
    waiters: Vec<(Arc<Waiter>, usize)>,
    wakers: Vec<Waker>,
    canceller: Option<Arc<Canceller>>,
}

impl<R> Inner<R> {
    fn extras(&mut self) -> &mut Extras<R> {
        self.extras.get_or_insert_with(|| {
            Box::new(Extras {
                callbacks: Vec::new(),
                before_ready: Vec::new(),
                waiters: Vec::new(),
                wakers: Vec::new(),
                canceller: None,
            })
        })
    }
}

/// A future's state, and its slot last, so that a `Shared` with any slot is seen by every
/// handle as a `Shared<R, dyn Slot>`.
struct Shared<R, S: ?Sized = dyn Slot> {
    inner: Mutex<Inner<R>>,
    finished: Condvar,
    /// The work of a thread pool's task, in its future's allocation until a thread takes it
    /// (a [`Work`]), or nothing (`()`).
    slot: TaskSlot<S>,
}

/// The cell of a future's [`Slot`]. Only the one [`Task`] of the future reaches into it
/// (once, as it runs or is cancelled), so it needs no lock: a task costs one lock less, and
/// its future is smaller.
struct TaskSlot<S: ?Sized>(UnsafeCell<S>);

// SAFETY: the slot's value is reached only by the future's one `Task` (see `take_work`),
// which one thread at a time owns, or dropped with the last handle: as with a `Mutex<S>`,
// sharing the cell between threads only ever moves an `S` to one of them, so `S: Send` is
// enough.
unsafe impl<S: ?Sized + Send> Sync for TaskSlot<S> {}

fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The work of a thread pool's task and the task's `procs.pool.task` span (made where the
/// task was submitted, so that it is a child of the submitter's span). The span is boxed,
/// and only when it is enabled: a disabled one would still take 40 bytes of every future.
struct Work<W> {
    work: Option<W>,
    span: Option<Box<tracing::Span>>,
}

impl<W: Send> Slot for Work<W> {}

/// A task for a thread of a pool: run it, or cancel it if it never runs. Its work lives in
/// its future's allocation, so a task costs one allocation, made and freed by the
/// submitter's thread (a thread that frees what another made contends for the allocator).
pub(crate) struct Task(Arc<dyn Run>);

trait Run: Send + Sync {
    fn run(self: Arc<Self>);
    fn cancel(self: Arc<Self>, error: Error);
}

impl<R, W> Run for Shared<R, Work<W>>
where
    R: Send + 'static,
    W: FnOnce() -> R + Send + 'static,
{
    fn run(self: Arc<Self>) {
        let (work, span) = self.take_work();
        let future: Future<R> = Future { shared: self };
        let _entered = span.enter();
        // `None` once taken; and a task cancelled before a thread took it is finished.
        if let Some(work) = work
            && future.set_running()
        {
            tracing::trace!("procs.pool.task.start");
            future.finish(unwind::catch(work).map_err(Error::from));
            tracing::trace!("procs.pool.task.finish");
        }
    }

    fn cancel(self: Arc<Self>, error: Error) {
        let (work, span) = self.take_work();
        drop(work);
        span.in_scope(|| tracing::trace!(error = %error, "procs.pool.task.cancel"));
        let future: Future<R> = Future { shared: self };
        future.finish(Err(error));
    }
}

impl<R, W> Shared<R, Work<W>> {
    /// Takes the work and the span out of the slot: called only by the future's one
    /// [`Task`], which `run` and `cancel` consume.
    fn take_work(&self) -> (Option<W>, tracing::Span) {
        // SAFETY: only `Run::run` and `Run::cancel` call this, each on the `Arc` that the
        // future's one `Task` (neither `Clone` nor `Copy`) gives up to it, so no other thread
        // reaches into the slot meanwhile, and none ever again (the work is taken).
        let slot = unsafe { &mut *self.slot.0.get() };
        let span = slot
            .span
            .take()
            .map_or_else(tracing::Span::none, |span| *span);
        (slot.work.take(), span)
    }
}

impl Task {
    /// Runs the work (unless its future was cancelled first); the future gets its value or
    /// its panic.
    pub(crate) fn run(self) {
        self.0.run();
    }

    /// Finishes the future with `error` instead of running the work.
    pub(crate) fn cancel(self, error: Error) {
        self.0.cancel(error);
    }
}

/// What closing a pool or executor does with the tasks that no worker has taken yet.
///
/// # Examples
///
/// ```
/// use proc_pool::internal::QueuedTasks;
///
/// assert_eq!(QueuedTasks::cancelled_if(true), QueuedTasks::Cancel);
/// assert_eq!(QueuedTasks::cancelled_if(false), QueuedTasks::Run);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedTasks {
    /// They still run (`close`, `shutdown(cancel_futures = false)`).
    Run,
    /// Their futures are cancelled (`shutdown(cancel_futures = true)`, `terminate`).
    Cancel,
}

impl QueuedTasks {
    /// `Cancel` when `cancel` (Python's `cancel_futures`) is true.
    pub const fn cancelled_if(cancel: bool) -> QueuedTasks {
        if cancel {
            QueuedTasks::Cancel
        } else {
            QueuedTasks::Run
        }
    }
}

/// The result of a task submitted to an executor: Python's `concurrent.futures.Future`.
///
/// A future is pending until a worker takes its task, then running, then finished (with the
/// task's value or its error) or cancelled. Clones are the same future. It is also a
/// [`std::future::Future`], so async code can `.await` it without blocking a runtime thread
/// (the task's value goes to the first `.await` or [`into_result`](Future::into_result)).
///
/// # Examples
///
/// ```
/// use proc_pool::ThreadPoolExecutor;
///
/// let executor = ThreadPoolExecutor::new(2).unwrap();
/// let future = executor.submit(|x: u32| x * 2, 21).unwrap();
/// assert_eq!(future.result().unwrap(), 42);
/// assert!(future.done());
/// assert!(future.exception().is_none());
/// ```
#[must_use = "a future does nothing unless its result is asked for"]
pub struct Future<R> {
    shared: Arc<Shared<R>>,
}

impl<R, S> Shared<R, S> {
    fn new(slot: S) -> Shared<R, S> {
        Shared {
            inner: Mutex::new(Inner {
                status: Status::Pending,
                outcome: None,
                extras: None,
                sleepers: 0,
            }),
            finished: Condvar::new(),
            slot: TaskSlot(UnsafeCell::new(slot)),
        }
    }
}

impl<R: Send + 'static> Future<R> {
    /// A pending future and the task that runs `work` for it, in one allocation; `span` is
    /// the task's span.
    pub(crate) fn with_work<W>(work: W, span: tracing::Span) -> (Future<R>, Task)
    where
        W: FnOnce() -> R + Send + 'static,
    {
        let span = (!span.is_none()).then(|| Box::new(span));
        let shared = Arc::new(Shared::new(Work {
            work: Some(work),
            span,
        }));
        let task = Task(shared.clone());
        (Future { shared }, task)
    }
}

/// Futures are equal when they are the same future (a clone is): Python's futures compare
/// and hash by identity, so that they can be the keys of a map. (Clippy's
/// `mutable_key_type` lint warns of such a map, as it cannot tell that the hash does not
/// depend on the state inside; it is safe to allow it.)
///
/// # Examples
///
/// ```
/// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
/// let a = executor.submit(|x: u8| x, 1).unwrap();
/// let b = executor.submit(|x: u8| x, 1).unwrap();
/// assert_eq!(a, a.clone());
/// assert_ne!(a, b);
/// ```
impl<R> PartialEq for Future<R> {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl<R> Eq for Future<R> {}

/// Hashes the future's identity, as [`PartialEq`] compares it.
///
/// # Examples
///
/// ```
/// use std::collections::HashSet;
///
/// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
/// let a = executor.submit(|x: u8| x, 1).unwrap();
/// let set: HashSet<_> = [a.clone(), a.clone()].into_iter().collect();
/// assert_eq!(set.len(), 1);
/// assert!(set.contains(&a));
/// ```
impl<R> std::hash::Hash for Future<R> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl<R> Clone for Future<R> {
    fn clone(&self) -> Self {
        Future {
            shared: self.shared.clone(),
        }
    }
}

impl<R> Future<R> {
    /// A pending future, for the pool that will finish it.
    pub(crate) fn pending() -> Future<R> {
        let shared: Arc<Shared<R, ()>> = Arc::new(Shared::new(()));
        Future { shared }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        lock(&self.shared.inner)
    }

    /// What tells this future from every other while it lives: the address of its state.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.shared).cast::<()>() as usize
    }

    /// Whether two handles are the same future.
    pub(crate) fn same(&self, other: &Future<R>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Lets `cancel` stop the task while it runs (process tasks: the worker is killed).
    pub(crate) fn set_canceller(&self, canceller: Canceller) {
        self.lock().extras().canceller = Some(Arc::new(canceller));
    }

    /// Marks the task as taken by a worker: `false` when it was cancelled first, in which
    /// case it must not run (Python's `set_running_or_notify_cancel`).
    pub(crate) fn set_running(&self) -> bool {
        let mut inner = self.lock();
        match inner.status {
            Status::Pending => {
                inner.status = Status::Running;
                true
            }
            Status::Running => true,
            Status::Finished | Status::Cancelled => false,
        }
    }

    /// Finishes the future with the task's outcome (an `Error::Cancelled` outcome marks it
    /// cancelled), wakes every waiter and runs the done-callbacks on this thread. Returns
    /// `false` when it was finished already (the outcome is dropped).
    pub(crate) fn finish(&self, outcome: Result<R>) -> bool {
        let mut inner = self.lock();
        if matches!(inner.status, Status::Finished | Status::Cancelled) {
            return false;
        }
        let hooks = inner
            .extras
            .as_mut()
            .map(|extras| std::mem::take(&mut extras.before_ready))
            .unwrap_or_default();
        if !hooks.is_empty() {
            // Python's `AsyncResult` runs its callbacks before `get()` returns: they see the
            // outcome first, and the future is ready only after them.
            drop(inner);
            for hook in hooks {
                if let Err(panic) = unwind::catch(|| hook(outcome.as_ref())) {
                    tracing::error!(message = %panic.message, "a result callback panicked");
                }
            }
            inner = self.lock();
            if matches!(inner.status, Status::Finished | Status::Cancelled) {
                return false;
            }
        }
        self.settle(inner, outcome);
        true
    }

    /// Runs `hook` with the outcome before the future becomes ready (the callbacks of
    /// `apply_async_with`); on this thread at once if it is ready already.
    pub(crate) fn before_ready(&self, hook: impl FnOnce(Result<&R, &Error>) + Send + 'static) {
        let mut inner = self.lock();
        if matches!(inner.status, Status::Pending | Status::Running) {
            inner.extras().before_ready.push(Box::new(hook));
            return;
        }
        if let Some(outcome) = &inner.outcome {
            hook(outcome.as_ref().map_err(|e| &**e));
        }
    }

    /// Waits until the future is finished; `false` when `deadline` came first.
    pub(crate) fn wait_deadline(&self, deadline: Deadline) -> bool {
        self.wait_until(deadline).is_some()
    }

    /// Stores the outcome of a future that was not finished, then (without the lock) wakes
    /// its waiters and runs its callbacks.
    fn settle(&self, mut inner: MutexGuard<'_, Inner<R>>, outcome: Result<R>) {
        inner.status = if matches!(outcome, Err(Error::Cancelled)) {
            Status::Cancelled
        } else {
            Status::Finished
        };
        inner.outcome = Some(outcome.map_err(Box::new));
        let extras = inner.extras.take();
        let sleepers = inner.sleepers;
        drop(inner);
        if sleepers > 0 {
            self.shared.finished.notify_all();
        }
        let Some(extras) = extras else {
            return;
        };
        let Extras {
            callbacks,
            waiters,
            wakers,
            ..
        } = *extras;
        for (waiter, index) in waiters {
            waiter.notify(index);
        }
        for waker in wakers {
            waker.wake();
        }
        for callback in callbacks {
            self.run_callback(callback);
        }
    }

    fn run_callback(&self, callback: Callback<R>) {
        if let Err(panic) = unwind::catch(|| callback(self)) {
            tracing::error!(message = %panic.message, "a done-callback of a future panicked");
        }
    }

    /// Waits until the future is finished or cancelled, at most until `deadline`; returns the
    /// lock when it is.
    fn wait_until(&self, deadline: Deadline) -> Option<MutexGuard<'_, Inner<R>>> {
        let mut inner = self.lock();
        while matches!(inner.status, Status::Pending | Status::Running) {
            let left = deadline.remaining();
            if left.is_some_and(|left| left.is_zero()) {
                return None;
            }
            inner.sleepers += 1;
            inner = match left {
                None => self
                    .shared
                    .finished
                    .wait(inner)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    self.shared
                        .finished
                        .wait_timeout(inner, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            inner.sleepers -= 1;
        }
        Some(inner)
    }

    /// Like [`wait_until`](Future::wait_until), with [`Error::Timeout`] when `deadline`
    /// came first. The error is made only then: `ok_or(Error::Timeout)` would make one and
    /// drop it on every call (a third of the instructions of `result()` on a finished
    /// future).
    fn wait_or_timeout(&self, deadline: Deadline) -> Result<MutexGuard<'_, Inner<R>>> {
        match self.wait_until(deadline) {
            Some(inner) => Ok(inner),
            None => Err(Error::Timeout),
        }
    }

    /// Registers `waiter` to hear (as `index`) when the future finishes; `false` when it has
    /// finished already, and the waiter is not registered.
    pub(crate) fn add_waiter(&self, waiter: &Arc<Waiter>, index: usize) -> bool {
        let mut inner = self.lock();
        if matches!(inner.status, Status::Finished | Status::Cancelled) {
            return false;
        }
        inner.extras().waiters.push((waiter.clone(), index));
        true
    }

    /// Forgets `waiter`, registered with [`add_waiter`](Future::add_waiter).
    pub(crate) fn remove_waiter(&self, waiter: &Arc<Waiter>) {
        if let Some(extras) = self.lock().extras.as_mut() {
            extras.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
        }
    }

    /// Whether the future is finished with an error (not by cancellation); never waits.
    pub(crate) fn failed(&self) -> bool {
        let inner = self.lock();
        inner.status == Status::Finished && matches!(inner.outcome, Some(Err(_)))
    }

    /// Takes the outcome out of a finished future; `InvalidState` when another caller did.
    pub(crate) fn take_outcome(&self) -> Result<R> {
        take(&mut self.lock())
    }

    /// Whether the task has finished or was cancelled (Python's `done()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|(): ()| 1, ()).unwrap();
    /// future.result().unwrap();
    /// assert!(future.done());
    /// ```
    pub fn done(&self) -> bool {
        matches!(self.lock().status, Status::Finished | Status::Cancelled)
    }

    /// Whether a worker runs the task now (Python's `running()`).
    ///
    /// A process task counts as running from the moment it is handed to a worker, which may
    /// still be finishing the task before it.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|(): ()| 1, ()).unwrap();
    /// future.result().unwrap();
    /// assert!(!future.running());
    /// ```
    pub fn running(&self) -> bool {
        self.lock().status == Status::Running
    }

    /// Whether the task was cancelled (Python's `cancelled()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|(): ()| 1, ()).unwrap();
    /// future.result().unwrap();
    /// assert!(!future.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.lock().status == Status::Cancelled
    }

    /// Cancels the task; returns whether it is cancelled.
    ///
    /// A pending task is cancelled at once, as in Python. A finished task cannot be
    /// (`false`). A running task can be only where the pool can stop it: a process pool
    /// kills the worker that runs it (and starts another), then the future is cancelled —
    /// Python cannot do that; a task already handed to a worker busy with the one before is
    /// cancelled before the worker starts it (Python's call queue cannot be). A thread cannot
    /// be stopped, nor can a running process task be from a done-callback (which runs on the
    /// pool's own thread): there `cancel` returns `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use proc_pool::ThreadPoolExecutor;
    ///
    /// let executor = ThreadPoolExecutor::new(1).unwrap();
    /// let busy = executor.submit(std::thread::sleep, Duration::from_millis(200)).unwrap();
    /// let waiting = executor.submit(|(): ()| 1, ()).unwrap();
    /// assert!(waiting.cancel());
    /// assert!(waiting.cancelled());
    /// assert!(waiting.result().unwrap_err().is_cancelled());
    /// busy.result().unwrap();
    /// ```
    pub fn cancel(&self) -> bool {
        let inner = self.lock();
        let canceller = match inner.status {
            Status::Cancelled => return true,
            Status::Finished => return false,
            Status::Pending => {
                self.settle(inner, Err(Error::Cancelled));
                return true;
            }
            Status::Running => match inner.extras.as_ref().and_then(|e| e.canceller.as_ref()) {
                Some(canceller) => canceller.clone(),
                None => return false,
            },
        };
        drop(inner);
        // The pool answers once it has stopped the worker and finished the future as
        // cancelled, or found that it could not (the task ended first, or was only sent
        // ahead to a busy worker).
        canceller() && self.cancelled()
    }

    /// Calls `callback` with the future once it is finished or cancelled — at once, on this
    /// thread, if it is already. Otherwise it runs on the thread that finishes the future (a
    /// process pool's result thread). A callback that panics is logged, and the callbacks
    /// after it still run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|x: u8| x + 1, 1).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// future.add_done_callback(move |f| tx.send(f.result().unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 2);
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<R>) + Send + 'static) {
        let mut inner = self.lock();
        if matches!(inner.status, Status::Pending | Status::Running) {
            inner.extras().callbacks.push(Box::new(callback));
            return;
        }
        drop(inner);
        self.run_callback(Box::new(callback));
    }

    /// The task's error, waiting for it to finish: `None` when the task returned a value,
    /// `Some(Error::Cancelled)` for a cancelled one (Python's `exception()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|(): ()| -> u8 { panic!("no") }, ()).unwrap();
    /// assert!(future.exception().unwrap().is_panic());
    /// ```
    pub fn exception(&self) -> Option<Error> {
        let inner = self.wait_until(Deadline::never())?;
        error_of(&inner)
    }

    /// Like [`exception`](Future::exception), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the task has not finished in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|(): ()| 5, ()).unwrap();
    /// assert!(future.exception_timeout(Duration::from_secs(20)).unwrap().is_none());
    /// ```
    pub fn exception_timeout(&self, timeout: Duration) -> Result<Option<Error>> {
        let inner = self.wait_or_timeout(Deadline::after(timeout))?;
        Ok(error_of(&inner))
    }

    /// The task's value, taken out of the future: waits until it is finished. Needs no
    /// `Clone`; a second caller (or `.await`) gets [`Error::InvalidState`].
    ///
    /// # Errors
    ///
    /// The task's error, [`Error::Cancelled`], or `InvalidState` when the value was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// struct NotClone(u8);
    ///
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|x: u8| NotClone(x), 3).unwrap();
    /// assert_eq!(future.into_result().unwrap().0, 3);
    /// ```
    pub fn into_result(self) -> Result<R> {
        let mut inner = self.wait_or_timeout(Deadline::never())?;
        take(&mut inner)
    }
}

fn take<R>(inner: &mut Inner<R>) -> Result<R> {
    match inner.outcome.take() {
        Some(Err(e)) => {
            let error = Error::clone(&e);
            inner.outcome = Some(Err(e));
            Err(error)
        }
        Some(Ok(value)) => Ok(value),
        None => Err(Error::InvalidState(
            "the result was already taken out of the future",
        )),
    }
}

fn error_of<R>(inner: &Inner<R>) -> Option<Error> {
    match &inner.outcome {
        Some(Err(e)) => Some(Error::clone(e)),
        _ => None,
    }
}

impl<R: Clone> Future<R> {
    /// The task's value, waiting until it is finished (Python's `result()`); callable any
    /// number of times.
    ///
    /// # Errors
    ///
    /// The task's error ([`Error::Panicked`], [`Error::WorkerDied`], …), or
    /// [`Error::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let future = executor.submit(|s: &'static str| s.len(), "four").unwrap();
    /// assert_eq!(future.result().unwrap(), 4);
    /// assert_eq!(future.result().unwrap(), 4);
    /// ```
    pub fn result(&self) -> Result<R> {
        let inner = self.wait_or_timeout(Deadline::never())?;
        value_of(&inner)
    }

    /// Like [`result`](Future::result), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the task has not finished in time (it keeps running), and
    /// the errors of `result`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let executor = proc_pool::ThreadPoolExecutor::new(1).unwrap();
    /// let slow = executor.submit(std::thread::sleep, Duration::from_millis(300)).unwrap();
    /// assert!(slow.result_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// slow.result_timeout(Duration::MAX).unwrap();
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<R> {
        let inner = self.wait_or_timeout(Deadline::after(timeout))?;
        value_of(&inner)
    }
}

fn value_of<R: Clone>(inner: &Inner<R>) -> Result<R> {
    match &inner.outcome {
        Some(Ok(value)) => Ok(value.clone()),
        Some(Err(e)) => Err(Error::clone(e)),
        None => Err(Error::InvalidState(
            "the result was already taken out of the future",
        )),
    }
}

impl<R> std::future::Future for Future<R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        let mut inner = self.lock();
        if matches!(inner.status, Status::Finished | Status::Cancelled) {
            return Poll::Ready(take(&mut inner));
        }
        let wakers = &mut inner.extras().wakers;
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<R> fmt::Debug for Future<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.lock().status;
        f.debug_struct("Future").field("status", &status).finish()
    }
}

/// Hears which futures of a set finished: what `wait` and `as_completed` sleep on.
pub(crate) struct Waiter {
    finished: Mutex<Vec<usize>>,
    cond: Condvar,
}

impl Waiter {
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            finished: Mutex::new(Vec::new()),
            cond: Condvar::new(),
        })
    }

    fn notify(&self, index: usize) {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(index);
        self.cond.notify_all();
    }

    /// The indexes finished since the last call, waiting until there is one or `deadline`
    /// passes (then the list is empty).
    pub(crate) fn take(&self, deadline: Deadline) -> Vec<usize> {
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        while finished.is_empty() {
            match deadline.remaining() {
                None => finished = self.cond.wait(finished).unwrap_or_else(|e| e.into_inner()),
                Some(left) if left.is_zero() => break,
                Some(left) => {
                    finished = self
                        .cond
                        .wait_timeout(finished, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        std::mem::take(&mut *finished)
    }
}

/// The result of a `Pool` call made with `apply_async`, `map_async` or `starmap_async`:
/// Python's `multiprocessing.pool.AsyncResult`.
///
/// Also a [`std::future::Future`].
///
/// # Examples
///
/// ```
/// use proc_pool::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let result = pool.apply_async(|x: u64| x * x, 12).unwrap();
/// assert_eq!(result.get().unwrap(), 144);
/// assert!(result.ready());
/// assert!(result.successful().unwrap());
/// ```
#[must_use = "an AsyncResult does nothing unless its result is asked for"]
pub struct AsyncResult<R> {
    future: Future<R>,
}

impl<R> Clone for AsyncResult<R> {
    fn clone(&self) -> Self {
        AsyncResult {
            future: self.future.clone(),
        }
    }
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(future: Future<R>) -> AsyncResult<R> {
        AsyncResult { future }
    }

    /// Waits until the result is ready (Python's `wait()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|(): ()| 1, ()).unwrap();
    /// result.wait();
    /// assert!(result.ready());
    /// ```
    pub fn wait(&self) {
        let _ = self.future.wait_until(Deadline::never());
    }

    /// Waits at most `timeout` until the result is ready; returns whether it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|(): ()| 1, ()).unwrap();
    /// assert!(result.wait_timeout(Duration::MAX));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.future.wait_until(Deadline::after(timeout)).is_some()
    }

    /// Whether the call has completed (Python's `ready()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|(): ()| 1, ()).unwrap();
    /// result.wait();
    /// assert!(result.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.future.done()
    }

    /// Whether the call completed without an error (Python's `successful()`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the result is not ready yet, as Python's `ValueError`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|(): ()| -> u8 { panic!("no") }, ()).unwrap();
    /// result.wait();
    /// assert!(!result.successful().unwrap());
    /// ```
    pub fn successful(&self) -> Result<bool> {
        let inner = self.future.lock();
        match (&inner.status, &inner.outcome) {
            (Status::Pending | Status::Running, _) => {
                Err(Error::InvalidState("the result is not ready yet"))
            }
            (_, Some(Err(_))) => Ok(false),
            _ => Ok(true),
        }
    }

    /// The value, taken out without `Clone`; see [`Future::into_result`].
    ///
    /// # Errors
    ///
    /// The call's error, or [`Error::InvalidState`] when the value was taken already.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|n: usize| vec![0u8; n], 3).unwrap();
    /// assert_eq!(result.into_result().unwrap().len(), 3);
    /// ```
    pub fn into_result(self) -> Result<R> {
        self.future.into_result()
    }

    /// The future behind this result, for [`wait`](crate::wait) and
    /// [`as_completed`](crate::as_completed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|(): ()| 7, ()).unwrap();
    /// assert_eq!(result.future().result().unwrap(), 7);
    /// ```
    pub fn future(&self) -> &Future<R> {
        &self.future
    }
}

impl<R: Clone> AsyncResult<R> {
    /// The value, waiting until it is ready (Python's `get()`).
    ///
    /// # Errors
    ///
    /// The call's error: [`Error::Panicked`] for a task that panicked,
    /// [`Error::WorkerDied`] for one whose worker died, and so on.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(|(a, b): (u8, u8)| a + b, (2, 3)).unwrap();
    /// assert_eq!(result.get().unwrap(), 5);
    /// ```
    pub fn get(&self) -> Result<R> {
        self.future.result()
    }

    /// Like [`get`](AsyncResult::get), waiting at most `timeout` (Python's `get(timeout)`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the result is not ready in time, and the errors of `get`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = proc_pool::ThreadPool::new(1).unwrap();
    /// let result = pool.apply_async(std::thread::sleep, Duration::from_millis(300)).unwrap();
    /// assert!(result.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        self.future.result_timeout(timeout)
    }
}

impl<R> std::future::Future for AsyncResult<R> {
    type Output = Result<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        Pin::new(&mut self.future).poll(cx)
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncResult").field(&self.future).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Future;

    // The task's slot has no lock: its one `Task` takes the work, on another thread, while
    // the future's handles look at the state; a task cancelled instead drops the work
    // unrun, and the span goes with the work either way.
    #[test]
    fn a_tasks_work_is_taken_once_by_the_task_that_runs_or_cancels_it() {
        let span = tracing::trace_span!("test");
        let (ran, task) = Future::with_work(|| 7u32, span);
        let runner = std::thread::spawn(move || task.run());
        assert_eq!(ran.result().unwrap(), 7);
        runner.join().unwrap();

        let dropped = std::sync::Arc::new(());
        let held = dropped.clone();
        let (cancelled, task) = Future::with_work(move || drop(held), tracing::Span::none());
        std::thread::spawn(move || task.cancel(proc_core::Error::Cancelled))
            .join()
            .unwrap();
        assert!(cancelled.cancelled());
        assert_eq!(std::sync::Arc::strong_count(&dropped), 1);
    }
}
