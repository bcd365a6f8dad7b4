//! `Semaphore` and `BoundedSemaphore`: counters that limit how many hold something at once
//! (Python's `multiprocessing.Semaphore` and `multiprocessing.BoundedSemaphore`).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proc_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::shared::{Shared, State, Word, deadline, expired};
use crate::wire::Kind;

/// The state of a semaphore: the count is the futex word.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SemaphoreState {
    count: Word,
    /// The most the count may reach; 0 for no bound.
    bound: AtomicU32,
}

// SAFETY: `#[repr(C)]`, atomics only; zero is a valid (empty, unbounded) semaphore.
unsafe impl State for SemaphoreState {
    const KIND: Kind = Kind::Semaphore;
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.count
    }
}

/// The counter behind both semaphores.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Counter {
    shared: Shared<SemaphoreState>,
}

impl Counter {
    fn new(value: u32, bound: u32) -> Result<Counter> {
        let shared = Shared::<SemaphoreState>::new()?;
        shared.state().count.value().store(value, Ordering::SeqCst);
        shared.state().bound.store(bound, Ordering::SeqCst);
        Ok(Counter { shared })
    }

    fn count(&self) -> &AtomicU32 {
        self.shared.state().count.value()
    }

    fn try_take(&self) -> bool {
        let mut current = self.count().load(Ordering::Relaxed);
        while current > 0 {
            match self.count().compare_exchange_weak(
                current,
                current - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
        false
    }

    fn take(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            if expired(deadline) {
                return false;
            }
            self.shared.sleep(0, 0, deadline);
        }
    }

    fn give(&self) -> Result<()> {
        let bound = self.shared.state().bound.load(Ordering::Relaxed);
        let limit = if bound == 0 { u32::MAX } else { bound };
        let mut current = self.count().load(Ordering::Relaxed);
        loop {
            if current >= limit {
                return Err(Error::InvalidState(
                    "semaphore released too many times: release only what was acquired",
                ));
            }
            match self.count().compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        self.shared.wake(0, 1);
        Ok(())
    }

    fn value(&self) -> u32 {
        self.count().load(Ordering::Relaxed)
    }

    // What `Semaphore` and `BoundedSemaphore` share: they differ only in `release`.

    fn acquire(&self) -> SemaphoreGuard<'_> {
        self.take(None);
        SemaphoreGuard { counter: self }
    }

    fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        // Lazily: a guard made and dropped would give back a place never taken.
        self.try_take().then(|| SemaphoreGuard { counter: self })
    }

    fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        if self.take(deadline(Some(timeout))) {
            Ok(SemaphoreGuard { counter: self })
        } else {
            Err(Error::Timeout)
        }
    }
}

/// A counter of free places shared by processes and threads: Python's
/// `multiprocessing.Semaphore`.
///
/// [`acquire`](Semaphore::acquire) takes a place (waiting while there is none) and returns a
/// guard that gives it back when it drops. [`release`](Semaphore::release) adds a place
/// without a guard, as Python's `release()` does.
///
/// # Process death
///
/// A semaphore has no owner, as in Python: nothing records who holds a place, so a process
/// that dies holding one — killed, or exiting without dropping its guard — never gives it
/// back, and once every place is lost that way, [`acquire`](Semaphore::acquire) waits
/// forever. Where a holder may die, wait with [`acquire_timeout`](Semaphore::acquire_timeout)
/// and decide what a timeout means, or use a [`Lock`](crate::Lock), which notices a dead
/// owner.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::Semaphore;
///
/// fn signal(sem: Semaphore) {
///     sem.release().unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let sem = Semaphore::new(0).unwrap();
///     let mut child = Process::spawn(signal, sem.clone()).unwrap();
///     let _place = sem.acquire();
///     child.join().unwrap();
/// }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Semaphore {
    counter: Counter,
}

impl Semaphore {
    /// A semaphore with `value` free places.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(3).unwrap();
    /// assert_eq!(sem.get_value(), 3);
    /// ```
    pub fn new(value: u32) -> Result<Semaphore> {
        Ok(Semaphore {
            counter: Counter::new(value, 0)?,
        })
    }

    /// Waits for a free place and takes it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(1).unwrap();
    /// let place = sem.acquire();
    /// assert_eq!(sem.get_value(), 0);
    /// drop(place);
    /// assert_eq!(sem.get_value(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.counter.acquire()
    }

    /// Takes a free place if there is one, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(1).unwrap();
    /// let place = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// # drop(place);
    /// ```
    #[must_use = "the place is given back as soon as the guard drops: bind it with `let _place = ...` (`let _ = ...` gives it back at once), or call `forget()` on it and `release()` later"]
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.counter.try_acquire()
    }

    /// Waits at most `timeout` for a free place.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no place came free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(0).unwrap();
    /// let err = sem.acquire_timeout(std::time::Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    #[must_use = "the place is given back as soon as the guard drops: bind it with `let _place = ...` (`let _ = ...` gives it back at once), or call `forget()` on it and `release()` later"]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        self.counter.acquire_timeout(timeout)
    }

    /// Adds a free place, waking a waiter.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the count would overflow `u32`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(0).unwrap();
    /// sem.release().unwrap();
    /// assert_eq!(sem.get_value(), 1);
    /// ```
    pub fn release(&self) -> Result<()> {
        self.counter.give()
    }

    /// The number of free places now (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Semaphore::new(2).unwrap().get_value(), 2);
    /// ```
    pub fn get_value(&self) -> u32 {
        self.counter.value()
    }
}

/// A semaphore that refuses to be released past its initial value: Python's
/// `multiprocessing.BoundedSemaphore`.
///
/// # Process death
///
/// As for [`Semaphore`]: a place held by a process that dies is lost for good, and waits for
/// it hang unless they have a timeout.
///
/// # Examples
///
/// ```
/// let sem = proc_sync::BoundedSemaphore::new(2).unwrap();
/// assert!(sem.release().is_err());
/// let place = sem.acquire();
/// assert_eq!(sem.get_value(), 1);
/// drop(place);
/// assert_eq!(sem.get_value(), 2);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoundedSemaphore {
    counter: Counter,
}

impl BoundedSemaphore {
    /// A semaphore with `value` free places, never more.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give;
    /// [`Error::InvalidState`] for a bound of 0, which could never be acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_sync::BoundedSemaphore::new(0).is_err());
    /// assert_eq!(proc_sync::BoundedSemaphore::new(5).unwrap().get_value(), 5);
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        if value == 0 {
            return Err(Error::InvalidState(
                "a bounded semaphore needs a bound of at least 1",
            ));
        }
        Ok(BoundedSemaphore {
            counter: Counter::new(value, value)?,
        })
    }

    /// Waits for a free place and takes it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::BoundedSemaphore::new(1).unwrap();
    /// let _place = sem.acquire();
    /// assert_eq!(sem.get_value(), 0);
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.counter.acquire()
    }

    /// Takes a free place if there is one, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::BoundedSemaphore::new(1).unwrap();
    /// let _place = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// ```
    #[must_use = "the place is given back as soon as the guard drops: bind it with `let _place = ...` (`let _ = ...` gives it back at once), or call `forget()` on it and `release()` later"]
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.counter.try_acquire()
    }

    /// Waits at most `timeout` for a free place.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no place came free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::BoundedSemaphore::new(1).unwrap();
    /// let _place = sem.acquire();
    /// assert!(sem.acquire_timeout(std::time::Duration::from_millis(10)).is_err());
    /// ```
    #[must_use = "the place is given back as soon as the guard drops: bind it with `let _place = ...` (`let _ = ...` gives it back at once), or call `forget()` on it and `release()` later"]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        self.counter.acquire_timeout(timeout)
    }

    /// Gives a place back without a guard (after [`SemaphoreGuard::forget`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when every place is free already: the semaphore was released
    /// more often than acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::BoundedSemaphore::new(1).unwrap();
    /// sem.acquire().forget();
    /// sem.release().unwrap();
    /// assert!(sem.release().is_err());
    /// ```
    pub fn release(&self) -> Result<()> {
        self.counter.give()
    }

    /// The number of free places now (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::BoundedSemaphore::new(4).unwrap().get_value(), 4);
    /// ```
    pub fn get_value(&self) -> u32 {
        self.counter.value()
    }
}

/// A place taken from a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives it back.
///
/// # Examples
///
/// ```
/// let sem = proc_sync::Semaphore::new(1).unwrap();
/// {
///     let _place = sem.acquire();
///     assert_eq!(sem.get_value(), 0);
/// }
/// assert_eq!(sem.get_value(), 1);
/// ```
#[must_use = "the place is given back as soon as the guard drops: bind it with `let _place = ...` (`let _ = ...` gives it back at once), or call `forget()` on it and `release()` later"]
pub struct SemaphoreGuard<'a> {
    counter: &'a Counter,
}

impl SemaphoreGuard<'_> {
    /// Keeps the place taken: the guard goes without giving it back (Python's `acquire()`
    /// without a `with`). Give it back with `release`, maybe from another process.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(1).unwrap();
    /// sem.acquire().forget();
    /// assert_eq!(sem.get_value(), 0);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Only a release past the bound fails, which a guard's own place cannot be unless
        // someone released it without acquiring: then the bound stands and nothing is lost.
        let _ = self.counter.give();
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
