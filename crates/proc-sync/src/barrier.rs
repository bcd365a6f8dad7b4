//! `Barrier`: a meeting point for a fixed number of processes (Python's
//! `multiprocessing.Barrier`).
//!
//! The algorithm is CPython's `threading.Barrier`, on a shared [`Condition`]: the barrier is
//! filling while parties arrive, draining while the released parties leave (newcomers wait for
//! the next round meanwhile), resetting while the waiters of a reset leave, or broken.
//!
//! Beyond CPython, the barrier records which processes wait in it (a table of [`Holders`]),
//! and every waiter sleeps in slices of a tenth of a second: after a slice without news it
//! looks for parties that died inside `wait`. A dead party of a filling round breaks the
//! barrier; one of a draining or resetting round (released or reset, but not gone yet) just
//! leaves it, so that the next round can start.
//!
//! A party changes the record and the count under the condition's lock, the record first
//! both on its way in and on its way out, so that a party killed between the two (holding
//! the lock) leaves a count that the next owner of the lock, which is told that the owner
//! died, recomputes from the record (`repair`): the record is what counts.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proc_core::{Error, FnRef, Result};
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::holders::Holders;
use crate::lock::{Lock, LockGuard};
use crate::semaphore::LIVENESS_SLICE;
use crate::shared::{Shared, State, Word, deadline, expired};
use crate::wire::Kind;

const FILLING: i32 = 0;
const DRAINING: i32 = 1;
const RESETTING: i32 = -1;
const BROKEN: i32 = -2;

/// The error of every wait on a broken barrier.
const BROKEN_MESSAGE: &str = "the barrier is broken (aborted, reset or timed out): reset it";

/// The error of every wait on a barrier that a party's death broke.
const DIED_MESSAGE: &str = "the barrier is broken because a party died while it waited (Barrier::dead_party names it): reset it";

/// The shared state of a barrier, read and written under the condition's lock.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BarrierState {
    unused: Word,
    phase: AtomicI32,
    count: AtomicU32,
    parties: AtomicU32,
    /// The pid of the party whose death broke the barrier; 0 when none did, since the last
    /// reset.
    dead: AtomicU32,
    /// The parties counted in `count` that `waiting` had no room for.
    unrecorded: AtomicU32,
    /// The processes counted in `count`, and how many parties each.
    waiting: Holders,
}

// SAFETY: `#[repr(C)]`, atomics only (an array of them included); `new` sets `parties`
// before anyone sees the state, and zero is a free table of waiters.
unsafe impl State for BarrierState {
    const KIND: Kind = Kind::Barrier;
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.unused
    }
}

/// A meeting point for `parties` processes or threads: Python's `multiprocessing.Barrier`.
///
/// Each party calls [`wait`](Barrier::wait); the call returns once `parties` of them are
/// there, with each party's arrival index (`0..parties`), and the barrier is ready for the
/// next round. [`abort`](Barrier::abort) breaks it: every waiter, now and until
/// [`reset`](Barrier::reset), gets an error. A wait that times out breaks it too.
///
/// # Process death
///
/// Unlike Python's, a barrier notices a party that dies while it waits in
/// [`wait`](Barrier::wait) — killed, say: within about a tenth of a second the barrier
/// breaks for the others, whose waits fail with an [`Error::InvalidState`] that says a party
/// died, and [`dead_party`](Barrier::dead_party) names its pid (Python's
/// `BrokenBarrierError`). [`reset`](Barrier::reset) makes the barrier usable again; it does
/// not wait for the dead. A party that dies after its round was released (before it left),
/// or while a reset lets the waiters go, only leaves: the next round starts without it.
///
/// A party that dies before it arrives is simply missing, as in Python, and the others wait
/// for it as long as their timeout says — for ever with [`wait`](Barrier::wait) on a barrier
/// without a timeout. Where a party may die before it comes, give the waits a timeout: the
/// first timeout breaks the barrier and every other waiter gets an error at once. A process
/// that dies while it holds the barrier's internal lock (a few instructions of every call)
/// does not block the others: the lock is a [`Lock`](crate::Lock), taken over from a dead
/// owner.
///
/// The barrier records up to 128 waiting processes at once; the parties of processes beyond
/// those are not watched. A party is recognised by its pid and its start time, so that a
/// party whose pid went to another process before the others looked is still seen dead
/// ([`dead_party`](Barrier::dead_party) names the pid); where the platform cannot tell start
/// times, the pid alone judges. The internal lock names its owner as a
/// [`Lock`](crate::Lock) does, by its pid and a hash of its start time.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::Barrier;
///
/// fn meet(barrier: Barrier) -> u32 {
///     barrier.wait().unwrap()
/// }
///
/// fn main() {
///     proc_core::init();
///     let barrier = Barrier::new(2).unwrap();
///     let mut child = Process::spawn(meet, barrier.clone()).unwrap();
///     let mine = barrier.wait().unwrap();
///     let theirs = child.join().unwrap();
///     assert_eq!(mine + theirs, 1);
/// }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Barrier {
    /// With a plain `Lock`: the barrier never re-enters it, and its guard may be `Send`.
    cond: Condition<Lock>,
    shared: Shared<BarrierState>,
    /// Travels as a [`FnRef`], which a process of another build refuses.
    action: Option<FnRef>,
    /// How long [`wait`](Barrier::wait) waits; `None` for ever (Python's `timeout=None`).
    timeout: Option<Duration>,
}

impl Barrier {
    /// A barrier for `parties` parties.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for 0 parties; [`Error::Io`] when the system has no shared
    /// memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = proc_sync::Barrier::new(3).unwrap();
    /// assert_eq!(barrier.parties(), 3);
    /// assert!(proc_sync::Barrier::new(0).is_err());
    /// ```
    pub fn new(parties: u32) -> Result<Barrier> {
        Barrier::builder(parties).build()
    }

    /// A barrier for `parties` parties whose [`wait`](Barrier::wait) waits at most `timeout`:
    /// Python's `Barrier(parties, timeout=timeout)`. Running out of time breaks the barrier,
    /// as with [`wait_timeout`](Barrier::wait_timeout), which still sets its own limit.
    ///
    /// # Errors
    ///
    /// As [`new`](Barrier::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = proc_sync::Barrier::with_timeout(2, Duration::from_millis(10)).unwrap();
    /// assert_eq!(barrier.timeout(), Some(Duration::from_millis(10)));
    /// assert!(barrier.wait().unwrap_err().is_timeout());
    /// assert!(barrier.broken());
    /// ```
    pub fn with_timeout(parties: u32, timeout: Duration) -> Result<Barrier> {
        Barrier::builder(parties).timeout(timeout).build()
    }

    /// A builder for a barrier of `parties` parties with an action, a default timeout or
    /// both: Python's `Barrier(parties, action, timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn noop() {}
    ///
    /// let barrier = proc_sync::Barrier::builder(1)
    ///     .action(noop)
    ///     .timeout(Duration::from_secs(20))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(barrier.wait().unwrap(), 0);
    /// ```
    pub fn builder(parties: u32) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    /// A barrier that runs `action` once per round, in the last party to arrive, before any
    /// party is released. A panic in `action` breaks the barrier and goes on in that party.
    ///
    /// The action is a plain function, which works in every process of the same program; it
    /// travels as a [`FnRef`], so a process of another build refuses the barrier with a decode
    /// error instead of running whatever lies at the same address.
    ///
    /// # Errors
    ///
    /// As [`new`](Barrier::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// static ROUNDS: AtomicU32 = AtomicU32::new(0);
    ///
    /// fn count_round() {
    ///     ROUNDS.fetch_add(1, Ordering::Relaxed);
    /// }
    ///
    /// let barrier = proc_sync::Barrier::with_action(1, count_round).unwrap();
    /// barrier.wait().unwrap();
    /// assert_eq!(ROUNDS.load(Ordering::Relaxed), 1);
    /// ```
    pub fn with_action(parties: u32, action: fn()) -> Result<Barrier> {
        Barrier::builder(parties).action(action).build()
    }

    /// How long [`wait`](Barrier::wait) waits before it breaks the barrier; `None` for ever.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Barrier::new(2).unwrap().timeout(), None);
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn state(&self) -> &BarrierState {
        self.shared.state()
    }

    /// Waits until every party has arrived; returns this party's arrival index.
    ///
    /// A barrier made with a timeout ([`with_timeout`](Barrier::with_timeout),
    /// [`BarrierBuilder::timeout`]) waits that long at most, as
    /// [`wait_timeout`](Barrier::wait_timeout) does; others wait for ever, unless a party
    /// dies while it waits (see [Process death](Barrier#process-death)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the barrier is or becomes broken (see
    /// [`broken`](Barrier::broken)), a party's death included; [`Error::Timeout`] when the
    /// barrier's timeout ran out for this party, which breaks it.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = proc_sync::Barrier::new(2).unwrap();
    /// let indexes = std::thread::scope(|s| {
    ///     let other = s.spawn(|| barrier.wait().unwrap());
    ///     barrier.wait().unwrap() + other.join().unwrap()
    /// });
    /// assert_eq!(indexes, 1);
    /// ```
    pub fn wait(&self) -> Result<u32> {
        self.wait_until(deadline(self.timeout))
    }

    /// Like [`wait`](Barrier::wait), for at most `timeout` (any `Duration`:
    /// `Duration::MAX` is for ever); running out of time breaks the barrier for everyone.
    ///
    /// No part of the wait outlives `timeout`, the wait for the parties of a previous round
    /// to leave included.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] for the party whose time ran out, [`Error::InvalidState`] when the
    /// barrier is or becomes broken otherwise. A time that runs out before this party could
    /// join a round (the previous one had not let all its parties go yet) does not break
    /// the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = proc_sync::Barrier::new(2).unwrap();
    /// assert!(barrier.wait_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// assert!(barrier.broken());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32> {
        self.wait_until(deadline(Some(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<u32> {
        let mut guard = self.cond.acquire();
        if guard.owner_died() {
            self.repair();
        }
        let state = self.state();
        // A round that is still draining or resetting finishes before this one starts; a
        // party that died before it left is taken out of it after a slice.
        while matches!(state.phase.load(Ordering::Relaxed), DRAINING | RESETTING) {
            if expired(deadline) {
                return Err(Error::Timeout);
            }
            if self.nap(&mut guard, deadline)? {
                self.reap();
            }
        }
        if state.phase.load(Ordering::Relaxed) == BROKEN {
            return Err(self.broken_error());
        }
        // The record first, the count next, on the way in as on the way out: a party killed
        // between the two (holding the lock) leaves the count off by one, which the next
        // owner of the lock recomputes from the record (`repair`).
        let slot = state.waiting.add();
        if slot.is_none() {
            state.unrecorded.fetch_add(1, Ordering::Relaxed);
        }
        let index = state.count.fetch_add(1, Ordering::Relaxed);
        let parties = state.parties.load(Ordering::Relaxed);
        let mut panicked = None;
        let result = if index + 1 == parties {
            match self.release(&guard) {
                Ok(()) => Ok(index),
                Err(payload) => {
                    panicked = Some(payload);
                    Err(Error::InvalidState(BROKEN_MESSAGE))
                }
            }
        } else {
            self.wait_release(&mut guard, deadline).map(|()| index)
        };
        match slot {
            Some(slot) => {
                state.waiting.remove(slot);
            }
            None => {
                state.unrecorded.fetch_sub(1, Ordering::Relaxed);
            }
        }
        state.count.fetch_sub(1, Ordering::Relaxed);
        self.leave();
        drop(guard);
        if let Some(payload) = panicked {
            panic::resume_unwind(payload);
        }
        result
    }

    /// The last party: runs the action and releases the others.
    fn release(
        &self,
        _guard: &LockGuard<'_>,
    ) -> std::result::Result<(), Box<dyn std::any::Any + Send>> {
        if let Some(action) = self.action
            && let Err(payload) = panic::catch_unwind(AssertUnwindSafe(action.get()))
        {
            self.break_barrier();
            return Err(payload);
        }
        self.state().phase.store(DRAINING, Ordering::Relaxed);
        self.cond.notify_locked(u32::MAX);
        Ok(())
    }

    /// Any other party: waits for the release, a reset, an abort or a party's death.
    fn wait_release(&self, guard: &mut LockGuard<'_>, deadline: Option<Instant>) -> Result<()> {
        let state = self.state();
        loop {
            let phase = state.phase.load(Ordering::Relaxed);
            if phase == DRAINING {
                return Ok(());
            }
            if phase != FILLING {
                return Err(self.broken_error());
            }
            if self.nap(guard, deadline)? && state.phase.load(Ordering::Relaxed) == FILLING {
                if expired(deadline) {
                    self.break_barrier();
                    return Err(Error::Timeout);
                }
                self.reap();
            }
        }
    }

    /// Waits for a notify until `deadline`, but a slice at most; returns whether the time
    /// ran out first. The lock is held again either way, and repaired if it was taken over
    /// from a process that died holding it.
    fn nap(&self, guard: &mut LockGuard<'_>, deadline: Option<Instant>) -> Result<bool> {
        let slice_end = crate::shared::deadline(Some(LIVENESS_SLICE));
        let until = match (deadline, slice_end) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        let died_before = guard.owner_died();
        let notified = self.cond.wait_until(guard, until)?;
        if guard.owner_died() && !died_before {
            self.repair();
        }
        Ok(!notified)
    }

    /// Puts right what a process that died holding the lock left (under the lock, taken
    /// over): the count is recomputed from the record, which every arrival and departure
    /// changes first, then the dead are taken out of the round, and a drained round whose
    /// last party died on its way out opens the next.
    fn repair(&self) {
        let state = self.state();
        let counted = state
            .waiting
            .sum()
            .saturating_add(u64::from(state.unrecorded.load(Ordering::Relaxed)));
        state.count.store(
            u32::try_from(counted).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
        self.reap();
        self.leave();
    }

    /// Takes the parties of processes that died out of the round (under the lock): a filling
    /// round breaks, since it can never fill; a draining or resetting one may be over.
    fn reap(&self) {
        let state = self.state();
        let mut died = None;
        state.waiting.reap(|pid, parties| {
            let count = state.count.load(Ordering::Relaxed);
            state
                .count
                .store(count.saturating_sub(parties), Ordering::Relaxed);
            died.get_or_insert(pid);
        });
        let Some(pid) = died else {
            return;
        };
        match state.phase.load(Ordering::Relaxed) {
            FILLING => {
                state.dead.store(pid, Ordering::Relaxed);
                self.break_barrier();
            }
            _ => self.leave(),
        }
    }

    /// The error of a wait on a broken barrier, which says whether a death broke it.
    fn broken_error(&self) -> Error {
        if self.state().dead.load(Ordering::Relaxed) != 0 {
            Error::InvalidState(DIED_MESSAGE)
        } else {
            Error::InvalidState(BROKEN_MESSAGE)
        }
    }

    /// The last party to leave a drained or reset round opens the next one.
    fn leave(&self) {
        let state = self.state();
        if state.count.load(Ordering::Relaxed) == 0
            && matches!(state.phase.load(Ordering::Relaxed), DRAINING | RESETTING)
        {
            state.phase.store(FILLING, Ordering::Relaxed);
            self.cond.notify_locked(u32::MAX);
        }
    }

    fn break_barrier(&self) {
        self.state().phase.store(BROKEN, Ordering::Relaxed);
        self.cond.notify_locked(u32::MAX);
    }

    /// Puts the barrier back to its empty state. Parties waiting now get an error; later
    /// waits work again.
    ///
    /// It does not wait for parties that died inside [`wait`](Barrier::wait): they are
    /// taken out of the round at once, and [`dead_party`](Barrier::dead_party) is forgotten.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = proc_sync::Barrier::new(1).unwrap();
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// barrier.reset();
    /// assert_eq!(barrier.wait().unwrap(), 0);
    /// ```
    pub fn reset(&self) {
        let guard = self.cond.acquire();
        if guard.owner_died() {
            self.repair();
        } else {
            self.reap();
        }
        let state = self.state();
        state.dead.store(0, Ordering::Relaxed);
        if state.count.load(Ordering::Relaxed) > 0 {
            let phase = state.phase.load(Ordering::Relaxed);
            if phase == FILLING || phase == BROKEN {
                state.phase.store(RESETTING, Ordering::Relaxed);
            }
        } else {
            state.phase.store(FILLING, Ordering::Relaxed);
        }
        self.cond.notify_locked(u32::MAX);
    }

    /// The pid of the party whose death while it waited broke the barrier, until the next
    /// [`reset`](Barrier::reset); `None` when no death did.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = proc_sync::Barrier::new(2).unwrap();
    /// barrier.abort();
    /// assert_eq!(barrier.dead_party(), None);
    /// ```
    pub fn dead_party(&self) -> Option<u32> {
        match self.state().dead.load(Ordering::Relaxed) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Breaks the barrier: every wait, now and until [`reset`](Barrier::reset), fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = proc_sync::Barrier::new(2).unwrap();
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// ```
    pub fn abort(&self) {
        let guard = self.cond.acquire();
        if guard.owner_died() {
            self.repair();
        }
        self.break_barrier();
    }

    /// The number of parties the barrier waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Barrier::new(4).unwrap().parties(), 4);
    /// ```
    pub fn parties(&self) -> u32 {
        self.state().parties.load(Ordering::Relaxed)
    }

    /// How many parties wait in the current round.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Barrier::new(4).unwrap().n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> u32 {
        let guard = self.cond.acquire();
        if guard.owner_died() {
            self.repair();
        }
        let state = self.state();
        if state.phase.load(Ordering::Relaxed) == FILLING {
            state.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!proc_sync::Barrier::new(4).unwrap().broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.state().phase.load(Ordering::Relaxed) == BROKEN
    }
}

/// Settings for a [`Barrier`]: an action, a default timeout. Made by [`Barrier::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let barrier = proc_sync::Barrier::builder(3).timeout(Duration::from_secs(5)).build().unwrap();
/// assert_eq!((barrier.parties(), barrier.timeout()), (3, Some(Duration::from_secs(5))));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BarrierBuilder {
    parties: u32,
    action: Option<FnRef>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` once per round, in the last party to arrive; see
    /// [`Barrier::with_action`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn noop() {}
    ///
    /// let barrier = proc_sync::Barrier::builder(1).action(noop).build().unwrap();
    /// assert_eq!(barrier.wait().unwrap(), 0);
    /// ```
    pub fn action(mut self, action: fn()) -> BarrierBuilder {
        self.action = Some(FnRef::new(action));
        self
    }

    /// Makes [`Barrier::wait`] wait at most `timeout` (any `Duration`: `Duration::MAX` is for
    /// ever); see [`Barrier::with_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = proc_sync::Barrier::builder(1).timeout(std::time::Duration::MAX).build().unwrap();
    /// assert_eq!(barrier.wait().unwrap(), 0);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> BarrierBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// The barrier.
    ///
    /// # Errors
    ///
    /// As [`Barrier::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_sync::Barrier::builder(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<Barrier> {
        if self.parties == 0 {
            return Err(Error::InvalidState("a barrier needs at least one party"));
        }
        let shared = Shared::<BarrierState>::new()?;
        shared.state().parties.store(self.parties, Ordering::SeqCst);
        Ok(Barrier {
            cond: Condition::with_lock(Lock::new()?)?,
            shared,
            action: self.action,
            timeout: self.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use proc_core::{Link, codec};

    use super::*;

    /// A barrier's wire form with the action in pieces, as a peer could forge it.
    #[derive(Serialize)]
    struct Forged<'a> {
        cond: &'a Condition<Lock>,
        shared: &'a Shared<BarrierState>,
        action: Option<(u64, i64)>,
        timeout: Option<Duration>,
    }

    fn action() {}

    #[test]
    fn an_action_from_another_build_is_refused() {
        let barrier = Barrier::with_action(2, action).unwrap();
        let sent = codec::encode(&barrier.action.unwrap()).unwrap();
        let (print, offset) = codec::decode::<(u64, i64)>(&sent).unwrap();
        let forge = |print| Forged {
            cond: &barrier.cond,
            shared: &barrier.shared,
            action: Some((print, offset)),
            timeout: None,
        };
        let (a, b) = Link::pair().unwrap();
        // The forgery has the real form: with the right fingerprint it is the real barrier.
        a.send(&forge(print)).unwrap();
        let back = b.recv::<Barrier>().unwrap();
        assert_eq!(back.action.unwrap().get() as usize, action as fn() as usize);
        a.send(&forge(print ^ 1)).unwrap();
        let err = b.recv::<Barrier>().unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
    }
}
