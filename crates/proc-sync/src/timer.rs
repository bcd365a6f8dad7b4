//! `Timer`, after Python's `threading.Timer`: a function run on its own thread after a delay,
//! unless cancelled first.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use proc_core::Error;

/// Runs a function on a new thread after a delay, unless [`cancel`](Timer::cancel)led first;
/// Python's `threading.Timer`.
///
/// The timer's thread sleeps on a condition variable, so `cancel` wakes it at once and the
/// thread ends without running the function. Dropping a `Timer` does not cancel it: the function
/// still runs when its time comes, as a Python timer does when nothing refers to it any more.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// use proc_sync::Timer;
///
/// let (tx, rx) = mpsc::channel();
/// let timer = Timer::start(Duration::from_millis(10), move || tx.send("ring").unwrap()).unwrap();
/// timer.join().unwrap();
/// assert_eq!(rx.recv().unwrap(), "ring");
///
/// // A cancelled timer never runs its function.
/// let timer = Timer::start(Duration::from_secs(3600), || unreachable!()).unwrap();
/// assert!(timer.cancel());
/// timer.join().unwrap();
/// ```
pub struct Timer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

enum State {
    /// Waiting for the delay to pass.
    Pending,
    /// Cancelled before the function started; it never will.
    Cancelled,
    /// The function is running.
    Running,
    /// The function returned, or panicked with this message.
    Done(Option<String>),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock, so a poisoned lock still guards a valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The body of the timer's thread.
    fn run(&self, delay: Duration, f: impl FnOnce()) {
        // A deadline too far to represent means waiting until cancelled.
        let deadline = proc_core::internal::Deadline::after(delay).instant();
        let mut state = self.lock();
        loop {
            if matches!(*state, State::Cancelled) {
                return;
            }
            match wait(&self.changed, state, deadline) {
                Some(next) => state = next,
                None => break,
            }
        }
        let mut state = self.lock();
        if matches!(*state, State::Cancelled) {
            return;
        }
        *state = State::Running;
        drop(state);

        let outcome = panic::catch_unwind(AssertUnwindSafe(f));

        *self.lock() = State::Done(outcome.err().map(panic_message));
        self.changed.notify_all();
    }
}

/// Waits on `cv` until notified or until `deadline` (none: no deadline); `None`, with the lock
/// released, once the deadline has passed.
fn wait<'a>(
    cv: &Condvar,
    guard: MutexGuard<'a, State>,
    deadline: Option<Instant>,
) -> Option<MutexGuard<'a, State>> {
    let Some(deadline) = deadline else {
        return Some(cv.wait(guard).unwrap_or_else(PoisonError::into_inner));
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    match cv.wait_timeout(guard, left) {
        Ok((guard, _)) => Some(guard),
        Err(poisoned) => Some(poisoned.into_inner().0),
    }
}

/// The message of a panic payload, as the default panic hook prints it.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "Box<dyn Any>".to_owned(),
        },
    }
}

impl Timer {
    /// Starts a timer that runs `f` on a new thread once `delay` has passed.
    ///
    /// Python creates the timer and then calls `start()`; here both happen at once. The
    /// function runs no earlier than `delay` after this call.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the operating system cannot start a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let fired = Arc::new(AtomicBool::new(false));
    /// let flag = Arc::clone(&fired);
    /// let timer = proc_sync::Timer::start(Duration::ZERO, move || flag.store(true, Ordering::SeqCst))
    ///     .unwrap();
    /// timer.join().unwrap();
    /// assert!(fired.load(Ordering::SeqCst));
    /// ```
    #[doc(alias = "Timer")]
    pub fn start<F>(delay: Duration, f: F) -> Result<Timer, Error>
    where
        F: FnOnce() + Send + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Pending),
            changed: Condvar::new(),
        });
        let thread = thread::Builder::new().name("timer".to_owned()).spawn({
            let shared = Arc::clone(&shared);
            move || shared.run(delay, f)
        })?;
        Ok(Timer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the timer if its function has not started yet; returns whether it had not, that
    /// is whether this call kept the function from running.
    ///
    /// The timer's thread wakes at once and ends. Cancelling a timer whose function already
    /// started (or that was cancelled before) does nothing and returns `false`; Python's
    /// `cancel()` behaves the same but returns nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = proc_sync::Timer::start(Duration::from_secs(3600), || {}).unwrap();
    /// assert!(timer.cancel());
    /// assert!(!timer.cancel());
    ///
    /// let timer = proc_sync::Timer::start(Duration::ZERO, || {}).unwrap();
    /// timer.join().unwrap();
    /// assert!(!timer.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        let mut state = self.shared.lock();
        if !matches!(*state, State::Pending) {
            return false;
        }
        *state = State::Cancelled;
        drop(state);
        self.shared.changed.notify_all();
        true
    }

    /// Whether the timer is over: its function has returned (or panicked), or it was cancelled
    /// before the function started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = proc_sync::Timer::start(Duration::from_secs(3600), || {}).unwrap();
    /// assert!(!timer.is_finished());
    /// timer.cancel();
    /// assert!(timer.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        matches!(*self.shared.lock(), State::Cancelled | State::Done(_))
    }

    /// Waits until the timer is over: its function has returned, or the timer was cancelled
    /// before the function started. Any number of threads may join the same timer.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] with the panic message when the function panicked (the location is
    /// not recorded).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = proc_sync::Timer::start(Duration::ZERO, || panic!("boom")).unwrap();
    /// match timer.join() {
    ///     Err(proc_core::Error::Panicked { message, .. }) => assert_eq!(message, "boom"),
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        let finished = self.wait(None);
        debug_assert!(finished);
        self.outcome()
    }

    /// Waits at most `timeout` until the timer is over; returns `Ok(true)` if it is,
    /// `Ok(false)` if the timeout passed first.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] with the panic message when the function panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = proc_sync::Timer::start(Duration::from_secs(3600), || {}).unwrap();
    /// assert!(!timer.join_timeout(Duration::from_millis(10)).unwrap());
    /// timer.cancel();
    /// assert!(timer.join_timeout(Duration::from_secs(60)).unwrap());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        if !self.wait(proc_core::internal::Deadline::after(timeout).instant()) {
            return Ok(false);
        }
        self.outcome().map(|()| true)
    }

    /// Waits until the timer is over or the deadline (if any) passes; returns whether it is
    /// over. Once it is, also reaps its thread, which is then about to end.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.shared.lock();
        while matches!(*state, State::Pending | State::Running) {
            match wait(&self.shared.changed, state, deadline) {
                Some(next) => state = next,
                None => return false,
            }
        }
        drop(state);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // The function's panic was caught on the thread, so joining cannot fail.
            let _ = thread.join();
        }
        true
    }

    fn outcome(&self) -> Result<(), Error> {
        match &*self.shared.lock() {
            State::Done(Some(message)) => Err(Error::Panicked {
                message: message.clone(),
                location: None,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.shared.lock() {
            State::Pending => "pending",
            State::Cancelled => "cancelled",
            State::Running => "running",
            State::Done(None) => "done",
            State::Done(Some(_)) => "panicked",
        };
        f.debug_struct("Timer").field("state", &state).finish()
    }
}
