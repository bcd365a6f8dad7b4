//! `Condition`: waiting for a change made under a lock (Python's
//! `multiprocessing.Condition`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proc_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::lock::{Lock, LockGuard};
use crate::shared::{Shared, State, Word, deadline, expired};

/// The state of a condition.
///
/// `seq` is the futex word: every notify moves it on, so that a waiter that saw the old
/// value before it let the lock go cannot sleep through the notify. `waiters` counts the
/// waiters and `tokens` the wakeups handed out and not yet taken: a notify of `n` hands out at
/// most `n` tokens, and a waiter leaves only with a token (or on its timeout), so that
/// `notify(1)` wakes one waiter, not every waiter that happens to look. A waiter takes a token
/// only from a notify that came after it registered (`seq` moved on), so that a newcomer
/// cannot take the wakeup of a waiter that was there before.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ConditionState {
    seq: Word,
    waiters: AtomicU32,
    tokens: AtomicU32,
}

// SAFETY: `#[repr(C)]`, atomics only; zero is a condition nobody waits on.
unsafe impl State for ConditionState {
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.seq
    }
}

/// A condition variable shared by processes and threads: Python's
/// `multiprocessing.Condition`.
///
/// It goes with a [`Lock`]: take it with [`acquire`](Condition::acquire), then
/// [`wait`](Condition::wait) lets the lock go, sleeps until a [`notify`](Condition::notify),
/// and takes the lock again before it returns. As with every condition variable, a wait may
/// also return without a notify: check the condition in a loop, or use
/// [`wait_for`](Condition::wait_for).
///
/// Python's `Condition()` uses an `RLock` by default; this one uses a [`Lock`].
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::{Condition, Value};
///
/// fn produce((cond, ready): (Condition, Value<u32>)) {
///     let _guard = cond.acquire();
///     ready.set(1);
///     cond.notify_all();
/// }
///
/// fn main() {
///     proc_core::init();
///     let cond = Condition::new().unwrap();
///     let ready = Value::new(0u32).unwrap();
///     let mut child = Process::spawn(produce, (cond.clone(), ready.clone())).unwrap();
///     let mut guard = cond.acquire();
///     cond.wait_for(&mut guard, || ready.get() == 1).unwrap();
///     drop(guard);
///     child.join().unwrap();
/// }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Condition {
    lock: Lock,
    shared: Shared<ConditionState>,
}

impl Condition {
    /// A condition with a lock of its own.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// assert!(!cond.get_lock().is_locked());
    /// ```
    pub fn new() -> Result<Condition> {
        Condition::with_lock(Lock::new()?)
    }

    /// A condition that goes with `lock`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// let cond = proc_sync::Condition::with_lock(lock.clone()).unwrap();
    /// let _guard = lock.acquire();
    /// assert!(cond.get_lock().is_locked());
    /// ```
    pub fn with_lock(lock: Lock) -> Result<Condition> {
        Ok(Condition {
            lock,
            shared: Shared::new()?,
        })
    }

    /// The condition's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.get_lock().acquire();
    /// ```
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// Takes the condition's lock; see [`Lock::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let guard = cond.acquire();
    /// assert!(cond.get_lock().is_locked());
    /// # drop(guard);
    /// ```
    pub fn acquire(&self) -> LockGuard<'_> {
        self.lock.acquire()
    }

    /// Takes the condition's lock if it is free; see [`Lock::try_acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.try_acquire().unwrap();
    /// assert!(cond.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.lock.try_acquire()
    }

    /// Waits at most `timeout` for the condition's lock; see [`Lock::acquire_timeout`].
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the lock is still taken after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.acquire_timeout(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.lock.acquire_timeout(timeout)
    }

    /// Lets the lock go, sleeps until notified, and takes the lock again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `guard` holds another lock than the condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let done = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     let mut guard = cond.acquire();
    ///     s.spawn(|| {
    ///         let _guard = cond.acquire();
    ///         done.store(true, Ordering::Relaxed);
    ///         cond.notify(1);
    ///     });
    ///     while !done.load(Ordering::Relaxed) {
    ///         cond.wait(&mut guard).unwrap();
    ///     }
    /// });
    /// ```
    pub fn wait(&self, guard: &mut LockGuard<'_>) -> Result<()> {
        self.wait_until(guard, None).map(drop)
    }

    /// Like [`wait`](Condition::wait), for at most `timeout`; returns `false` when the time
    /// ran out (the lock is held again either way).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `guard` holds another lock than the condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let mut guard = cond.acquire();
    /// assert!(!cond.wait_timeout(&mut guard, std::time::Duration::from_millis(10)).unwrap());
    /// assert!(cond.get_lock().is_locked());
    /// ```
    pub fn wait_timeout(&self, guard: &mut LockGuard<'_>, timeout: Duration) -> Result<bool> {
        self.wait_until(guard, deadline(Some(timeout)))
    }

    /// Waits until `predicate` holds, checking it under the lock before each wait.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `guard` holds another lock than the condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let mut guard = cond.acquire();
    /// cond.wait_for(&mut guard, || true).unwrap();
    /// ```
    pub fn wait_for(
        &self,
        guard: &mut LockGuard<'_>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<()> {
        while !predicate() {
            self.wait_until(guard, None)?;
        }
        Ok(())
    }

    /// Waits at most `timeout` until `predicate` holds; returns its last value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `guard` holds another lock than the condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let mut guard = cond.acquire();
    /// assert!(!cond.wait_for_timeout(&mut guard, || false, Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_for_timeout(
        &self,
        guard: &mut LockGuard<'_>,
        mut predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = deadline(Some(timeout));
        loop {
            if predicate() {
                return Ok(true);
            }
            if !self.wait_until(guard, deadline)? {
                return Ok(predicate());
            }
        }
    }

    pub(crate) fn wait_until(
        &self,
        guard: &mut LockGuard<'_>,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        if !guard.lock().same(&self.lock) {
            return Err(Error::InvalidState(
                "the guard holds another lock than the condition's",
            ));
        }
        let state = self.shared.state();
        state.waiters.fetch_add(1, Ordering::SeqCst);
        let registered = state.seq.value.load(Ordering::SeqCst);
        let mut seen = registered;
        guard.lock().release();
        let notified = loop {
            // Only a notify after this waiter registered is for it: the tokens of an earlier
            // one belong to the waiters it counted.
            if seen != registered && take_token(&state.tokens) {
                break true;
            }
            if expired(deadline) {
                break false;
            }
            self.shared.sleep(0, seen, deadline);
            seen = state.seq.value.load(Ordering::SeqCst);
        };
        state.waiters.fetch_sub(1, Ordering::SeqCst);
        if !notified {
            // Tokens beyond the waiters left would let a later waiter through at once.
            clamp_tokens(state);
        }
        if relock(&self.lock) {
            guard.set_owner_died();
        }
        Ok(notified)
    }

    /// Wakes at most `n` waiters. Call it holding the lock, as Python requires (it also works
    /// without, but a waiter about to wait may then miss it).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.acquire();
    /// cond.notify(1); // Nobody waits: nothing happens.
    /// ```
    pub fn notify(&self, n: u32) {
        let state = self.shared.state();
        let mut tokens = state.tokens.load(Ordering::SeqCst);
        let given = loop {
            let waiting = state.waiters.load(Ordering::SeqCst);
            let give = n.min(waiting.saturating_sub(tokens));
            if give == 0 {
                return;
            }
            match state.tokens.compare_exchange(
                tokens,
                tokens + give,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break give,
                Err(now) => tokens = now,
            }
        };
        state.seq.value.fetch_add(1, Ordering::SeqCst);
        self.shared.wake(0, given);
    }

    /// Wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.acquire();
    /// cond.notify_all();
    /// ```
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }
}

/// Takes `lock` back for a condition's waiter, whose guard already stands for this hold;
/// returns whether the previous owner died holding it.
fn relock(lock: &Lock) -> bool {
    let guard = lock.acquire();
    let owner_died = guard.owner_died();
    std::mem::forget(guard);
    owner_died
}

fn take_token(tokens: &AtomicU32) -> bool {
    let mut current = tokens.load(Ordering::SeqCst);
    while current > 0 {
        match tokens.compare_exchange(current, current - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}

fn clamp_tokens(state: &ConditionState) {
    let mut tokens = state.tokens.load(Ordering::SeqCst);
    loop {
        let waiting = state.waiters.load(Ordering::SeqCst);
        if tokens <= waiting {
            return;
        }
        match state
            .tokens
            .compare_exchange(tokens, waiting, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return,
            Err(now) => tokens = now,
        }
    }
}
