//! `Event`: a flag that processes wait for (Python's `multiprocessing.Event`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proc_core::Result;
use serde::{Deserialize, Serialize};

use crate::shared::{Shared, State, Word, deadline, expired};
use crate::wire::Kind;

/// The state of an event: the flag is the futex word.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct EventState {
    flag: Word,
}

// SAFETY: `#[repr(C)]`, atomics only; zero is a clear event.
unsafe impl State for EventState {
    const KIND: Kind = Kind::Event;
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.flag
    }
}

/// A flag shared by processes and threads, which they can wait for: Python's
/// `multiprocessing.Event`.
///
/// It starts clear; [`set`](Event::set) sets it and wakes every waiter,
/// [`clear`](Event::clear) clears it, [`wait`](Event::wait) returns once it is set.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::Event;
///
/// fn go(event: Event) {
///     event.set();
/// }
///
/// fn main() {
///     proc_core::init();
///     let event = Event::new().unwrap();
///     let mut child = Process::spawn(go, event.clone()).unwrap();
///     event.wait();
///     assert!(event.is_set());
///     child.join().unwrap();
/// }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    shared: Shared<EventState>,
}

impl Event {
    /// A new, clear event.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](proc_core::Error::Io) when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!proc_sync::Event::new().unwrap().is_set());
    /// ```
    pub fn new() -> Result<Event> {
        Ok(Event {
            shared: Shared::new()?,
        })
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = proc_sync::Event::new().unwrap();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.shared.state().flag.value().load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes everyone who waits for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = proc_sync::Event::new().unwrap();
    /// event.set();
    /// event.wait();
    /// ```
    pub fn set(&self) {
        self.shared.state().flag.value().swap(1, Ordering::SeqCst);
        self.shared.wake(0, u32::MAX);
    }

    /// Clears the flag: waiters from now on wait until it is set again.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = proc_sync::Event::new().unwrap();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.shared.state().flag.value().store(0, Ordering::SeqCst);
    }

    /// Waits until the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = proc_sync::Event::new().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| event.set());
    ///     event.wait();
    /// });
    /// assert!(event.is_set());
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` until the flag is set; returns whether it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = proc_sync::Event::new().unwrap();
    /// assert!(!event.wait_timeout(Duration::from_millis(10)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(10)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline(Some(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            if expired(deadline) {
                return false;
            }
            self.shared.sleep(0, 0, deadline);
        }
    }
}
