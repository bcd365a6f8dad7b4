//! `Condition`: waiting for a change made under a lock (Python's
//! `multiprocessing.Condition`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_core::shared::Blocking;
use proc_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::lock::{RLock, SharedLock};
use crate::shared::{Shared, State, Word, deadline, expired};
use crate::wire::Kind;

/// The state of a condition.
///
/// `seq` is the futex word: every notify moves it on, so that a waiter that saw the old
/// value before it let the lock go cannot sleep through the notify. `counts` holds the
/// waiters (high half) and the tokens, the wakeups handed out and not yet taken (low half): a
/// notify of `n` hands out at most `n` tokens, and a waiter leaves only with a token (or on
/// its timeout), so that `notify(1)` wakes one waiter, not every waiter that happens to look.
/// A waiter takes a token only from a notify that came after it registered (`seq` moved on),
/// so that a newcomer cannot take the wakeup of a waiter that was there before.
///
/// Waiters register and notifiers hand out tokens under the condition's lock, so that no
/// waiter registers between a notify's tokens and its move of `seq`: such a waiter would
/// count as there before the notify and could take the token of one that was, whom the
/// wakeup then missed. Taking a token and leaving on a timeout happen without the lock, each
/// as one change of `counts`, so that the tokens never outnumber the waiters.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ConditionState {
    seq: Word,
    counts: AtomicU64,
}

/// One waiter in `ConditionState::counts`.
const ONE_WAITER: u64 = 1 << 32;

/// The waiters and the tokens in `counts`.
fn split(counts: u64) -> (u32, u32) {
    ((counts >> 32) as u32, counts as u32)
}

fn pack(waiters: u32, tokens: u32) -> u64 {
    (u64::from(waiters) << 32) | u64::from(tokens)
}

impl ConditionState {
    /// Changes `counts` with `f`, which says `None` to leave it be; returns the new counts.
    fn update(&self, mut f: impl FnMut(u32, u32) -> Option<(u32, u32)>) -> Option<(u32, u32)> {
        let mut current = self.counts.load(Ordering::SeqCst);
        loop {
            let (waiters, tokens) = split(current);
            let (w, t) = f(waiters, tokens)?;
            match self.counts.compare_exchange(
                current,
                pack(w, t),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some((w, t)),
                Err(now) => current = now,
            }
        }
    }

    /// Takes a token, if there is one, and stops counting as a waiter with it.
    fn take_token(&self) -> bool {
        self.update(|w, t| (t > 0).then(|| (w - 1, t - 1)))
            .is_some()
    }

    /// Stops counting as a waiter without a token; a token beyond the waiters left would let
    /// a later waiter through at once, so it goes too.
    fn leave(&self) {
        self.update(|w, t| Some((w - 1, t.min(w - 1))));
    }
}

// SAFETY: `#[repr(C)]`, atomics only; zero is a condition nobody waits on.
unsafe impl State for ConditionState {
    const KIND: Kind = Kind::Condition;
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.seq
    }
}

/// A condition variable shared by processes and threads: Python's
/// `multiprocessing.Condition`.
///
/// It goes with a lock: take it with [`acquire`](Condition::acquire), then
/// [`wait`](Condition::wait) lets the lock go, sleeps until a [`notify`](Condition::notify),
/// and takes the lock again before it returns. As with every condition variable, a wait may
/// also return without a notify: check the condition in a loop, or use
/// [`wait_for`](Condition::wait_for).
///
/// As in Python, [`Condition::new`] makes an [`RLock`] of its own, which the thread that
/// holds it may acquire again, and a wait lets go of every hold of it at once and takes them
/// all back; [`with_lock`](Condition::with_lock) takes the caller's [`Lock`](crate::Lock) or [`RLock`]
/// (Python's `Condition(lock)`). As in Python, [`notify`](Condition::notify) and
/// [`notify_all`](Condition::notify_all) need the lock held.
///
/// # Process death
///
/// A waiter waits for a notify, not for a process: if the process that was to notify dies
/// first, the waiters sleep on forever, as in Python. Wait with a timeout
/// ([`wait_timeout`](Condition::wait_timeout), [`wait_for_timeout`](Condition::wait_for_timeout))
/// where a notifier may die. The lock itself is robust, so a process that dies holding it
/// blocks nobody, and the waiter that takes it over sees it in the guard's
/// `owner_died` ([`RLockGuard::owner_died`](crate::RLockGuard::owner_died),
/// [`LockGuard::owner_died`](crate::LockGuard::owner_died)). A waiter that dies inside a wait stays counted
/// among the waiters, and the wakeup that a notify hands it then goes to a live waiter later,
/// on top of the ones that notify asked for: a spurious wakeup, which the loop around every
/// wait absorbs.
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
///     cond.notify_all().unwrap();
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
#[serde(bound = "")]
pub struct Condition<L: SharedLock = RLock> {
    lock: L,
    shared: Shared<ConditionState>,
}

impl Condition {
    /// A condition with an [`RLock`] of its own, as Python's `Condition()`.
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
    /// let outer = cond.acquire();
    /// let inner = cond.acquire(); // an RLock: its holder may enter again
    /// assert_eq!(cond.get_lock().count(), 2);
    /// # drop((inner, outer));
    /// ```
    pub fn new() -> Result<Condition> {
        Condition::with_lock(RLock::new()?)
    }
}

impl<L: SharedLock> Condition<L> {
    /// A condition that goes with `lock`, a [`Lock`](crate::Lock) or an [`RLock`]: Python's
    /// `Condition(lock)`.
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
    pub fn with_lock(lock: L) -> Result<Condition<L>> {
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
    pub fn get_lock(&self) -> &L {
        &self.lock
    }

    /// Takes the condition's lock; see [`RLock::acquire`] and [`Lock::acquire`](crate::Lock::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let guard = cond.acquire();
    /// assert!(cond.get_lock().is_locked());
    /// # drop(guard);
    /// ```
    pub fn acquire(&self) -> L::Guard<'_> {
        self.lock
            .enter(Blocking::Block, None)
            .expect("a wait without a deadline ends with the lock")
    }

    /// Takes the condition's lock if it is free (or this thread's, for an [`RLock`]);
    /// see [`RLock::try_acquire`] and [`Lock::try_acquire`](crate::Lock::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.try_acquire().unwrap();
    /// let other = std::thread::scope(|s| s.spawn(|| cond.try_acquire().is_none()).join().unwrap());
    /// assert!(other);
    /// ```
    #[must_use = "the lock is released as soon as the guard drops"]
    pub fn try_acquire(&self) -> Option<L::Guard<'_>> {
        self.lock.enter(Blocking::NonBlocking, None)
    }

    /// Waits at most `timeout` for the condition's lock; see [`RLock::acquire_timeout`] and
    /// [`Lock::acquire_timeout`](crate::Lock::acquire_timeout).
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
    #[must_use = "the lock is released as soon as the guard drops"]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<L::Guard<'_>> {
        self.lock
            .enter(Blocking::Block, deadline(Some(timeout)))
            .ok_or(Error::Timeout)
    }

    /// Lets the lock go, sleeps until notified, and takes the lock again. With an
    /// [`RLock`], every hold of this thread is let go and taken back, as in Python.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `guard` holds another lock than the condition's, or a
    /// hold that was released since.
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
    ///         cond.notify(1).unwrap();
    ///     });
    ///     while !done.load(Ordering::Relaxed) {
    ///         cond.wait(&mut guard).unwrap();
    ///     }
    /// });
    /// ```
    pub fn wait(&self, guard: &mut L::Guard<'_>) -> Result<()> {
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
    pub fn wait_timeout(&self, guard: &mut L::Guard<'_>, timeout: Duration) -> Result<bool> {
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
        guard: &mut L::Guard<'_>,
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
        guard: &mut L::Guard<'_>,
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
        guard: &mut L::Guard<'_>,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        if !L::guard_holds(guard, &self.lock) {
            return Err(Error::InvalidState(
                "the guard holds another lock than the condition's",
            ));
        }
        if !self.lock.is_owned() {
            return Err(Error::InvalidState("cannot wait on an un-acquired lock"));
        }
        let state = self.shared.state();
        // Under the lock, so that no notify runs between these two steps.
        state.counts.fetch_add(ONE_WAITER, Ordering::SeqCst);
        let registered = state.seq.value().load(Ordering::SeqCst);
        let mut seen = registered;
        let holds = self.lock.leave_all();
        let notified = loop {
            // Only a notify after this waiter registered is for it: the tokens of an earlier
            // one belong to the waiters it counted.
            if seen != registered && state.take_token() {
                break true;
            }
            if expired(deadline) {
                state.leave();
                break false;
            }
            self.shared.sleep(0, seen, deadline);
            seen = state.seq.value().load(Ordering::SeqCst);
        };
        if self.lock.enter_all(holds) {
            L::guard_set_owner_died(guard);
        }
        Ok(notified)
    }

    /// Wakes at most `n` of the waiters that wait now.
    ///
    /// The caller must hold the condition's lock, as Python requires: waiters count
    /// themselves under it, which is what makes "the waiters that wait now" a set that no
    /// newcomer can join halfway through the notify.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the caller does not hold the lock (Python's
    /// `RuntimeError`): this thread, for an [`RLock`]; this process, for a [`Lock`](crate::Lock), whose
    /// ownership is per process, so that the check cannot tell a thread that holds the guard
    /// from another thread of the same process, which must not notify without it either.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// assert!(cond.notify(1).is_err());
    /// let _guard = cond.acquire();
    /// cond.notify(1).unwrap(); // Nobody waits: nothing happens.
    /// ```
    pub fn notify(&self, n: u32) -> Result<()> {
        if !self.lock.is_owned() {
            return Err(Error::InvalidState("cannot notify on an un-acquired lock"));
        }
        self.notify_locked(n);
        Ok(())
    }

    /// Wakes every waiter that waits now; the caller must hold the lock, as for
    /// [`notify`](Condition::notify).
    ///
    /// # Errors
    ///
    /// As [`notify`](Condition::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = proc_sync::Condition::new().unwrap();
    /// let _guard = cond.acquire();
    /// cond.notify_all().unwrap();
    /// ```
    pub fn notify_all(&self) -> Result<()> {
        self.notify(u32::MAX)
    }

    /// [`notify`](Condition::notify) for a caller that holds the lock.
    pub(crate) fn notify_locked(&self, n: u32) {
        let state = self.shared.state();
        let granted = state.update(|waiters, tokens| {
            (waiters > 0).then(|| (waiters, tokens + n.min(waiters - tokens)))
        });
        let Some((_, tokens)) = granted else {
            return;
        };
        // Every waiter counted now registered before this move of `seq` and may take any
        // token, older ones included: a token left by a waiter that timed out while a newer
        // one waited (which the newer one could not take yet) reaches it now.
        state.seq.value().fetch_add(1, Ordering::SeqCst);
        self.shared.wake(0, tokens);
    }
}
