//! `Semaphore` and `BoundedSemaphore`: counters that limit how many hold something at once
//! (Python's `multiprocessing.Semaphore` and `multiprocessing.BoundedSemaphore`).
//!
//! The count of free places is a futex word. Beside it, a table of [`Holders`] (each holder a
//! pid and a start time; see [`crate::holders`] for its slot protocol) records which
//! process holds how many places through a guard, so that the places of a process that died
//! come back: a waiter that slept a whole slice (a tenth of a second) without a place coming
//! free looks for dead holders and gives their places back, as a failed `try_acquire` and a
//! wait that reaches its deadline do once. Places taken back that way are marked, and as many
//! acquirers as there were such places learn it from their guard's
//! [`owner_died`](SemaphoreGuard::owner_died).
//!
//! # Two words, one change
//!
//! Taking a place through a guard changes two words, the count and the taker's slot, and so
//! does giving it back. A process killed between the two would leave them disagreeing, and
//! the place would be lost for good (the kill -9 soak lost about one in 700 trials that way).
//! So every change of the count, of a slot of this table, or of `total` is made under a
//! robust lock, a second word of the state ([`Word::lock`], as a [`Lock`](crate::Lock) is),
//! held for those few instructions and never while sleeping; and the state keeps one more
//! number, `total`, the places that exist outside the hands of callers (the initial value,
//! plus releases, minus places kept with `forget`), so that whenever the lock is free
//!
//! ```text
//! count + (the sum of the slots) == total
//! ```
//!
//! Whoever takes the lock over from a dead owner cannot tell which of its two words the owner
//! changed, and need not: it empties the slots of dead processes and sets the count to
//! `total` minus the sum of the slots that are left (never past the bound). The steps of each
//! change come in the order that makes that repair right wherever the owner died:
//!
//! - an acquire lowers the count, then adds to its slot: dead between, the place was not
//!   taken and is free again;
//! - a guard's drop takes from its slot, then raises the count: dead between, the place is
//!   given back;
//! - a `release` raises `total`, then the count: dead between, the release counts;
//! - a `forget` takes from its slot, then lowers `total`: dead between, the place comes back,
//!   as if the process had died before `forget`;
//! - the look for dead holders empties their slots, then recomputes the count.
//!
//! The repair thus never lowers the count, and what it adds comes from a process that died
//! holding places or changing them: acquirers are told, as for the places of dead holders.
//! (Should the repairer die too, between telling and raising the count, some acquirer is told
//! once more than it should; no place is lost.)
//!
//! A guard that found the table full holds its place outside the record, the way a forgotten
//! place is held: its acquire lowers `total` with the count, and its drop raises both. Such a
//! place is lost if its process dies, as documented on [`Semaphore`].
//!
//! Waiters sleep on the count, without the lock. The lock of a dead owner is taken over by
//! the next process that needs it (after a slice, as [`Word::lock`] does), and by a waiter's
//! look for dead holders, which looks at the lock's owner too: a waiter that sleeps because
//! the dead owner lowered the count goes on within about a tenth of a second.
//!
//! # One locked instruction per call
//!
//! An uncontended acquire, and a guard's drop, make one locked instruction each: the
//! compare-and-swap that takes the lock. Everything else is plain loads and stores, which
//! the lock orders:
//!
//! - only the owner of the lock writes the count and the lock's word (waiters compare and
//!   sleep on them, they do not change them), so both are written with plain stores, the
//!   unlock included;
//! - a waiter for a place counts itself in `waiting` under the lock, after it found no
//!   place, and before it sleeps on the count; whoever raises the count reads `waiting` under
//!   the lock too, so that with none counted no one sleeps, or will sleep, on the count as
//!   it was, and no wake is owed. With some counted, the raiser fences before it looks at the
//!   count's sleepers, as a wake must;
//! - a waiter for the lock cannot count itself under the lock, so the unlock's look at
//!   `lock_waiting` may miss one that counts itself at that instant: such a waiter sleeps
//!   [`LOCK_POLL`] at most before it looks again. The lock is held for a few instructions,
//!   and a waiter spins through them before it sleeps, so that happens only when the owner
//!   was stopped in between.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use proc_core::shared::{Acquired, Blocking, identity};
use proc_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::holders::Holders;
use crate::shared::{Shared, State, Word, deadline, expired};
use crate::wire::Kind;

/// How long a waiter sleeps before it looks for dead holders: the time a dead holder's
/// places may stay lost while others wait for them.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// How many times a process that finds the lock taken looks again before it sleeps: the
/// lock is held for a few instructions, so one of these looks nearly always finds it free.
const SPINS: u32 = 100;

/// The longest a process waiting for the lock sleeps before it looks again. The unlock makes
/// no locked instruction, so it may miss a waiter that announces itself at that very moment
/// (see [`Locked`]'s drop); such a waiter finds the lock free this much later, not never.
const LOCK_POLL: Duration = Duration::from_millis(1);

/// The number of the count's word, which waiters sleep on.
const COUNT: usize = 0;

/// The number of the lock's word, which guards every change of the count, `total` and the
/// holders.
const LOCK: usize = 1;

/// The state of a semaphore: the count is the futex word; the lock guards every change (see
/// the module docs).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SemaphoreState {
    count: Word,
    lock: Word,
    /// The most the count may reach; 0 for no bound.
    bound: AtomicU32,
    /// Places given back from dead holders that no acquirer has been told about yet.
    orphans: AtomicU32,
    /// The places that exist outside callers' hands: the count plus the holds of the table,
    /// whenever the lock is free.
    total: AtomicU64,
    /// Who holds places through a guard.
    holders: Holders,
    /// The waiters for a place that are about to sleep on the count or sleep there: raised
    /// under the lock, read under the lock by whoever raises the count, so that a raise
    /// without waiters needs no fence to know there are none.
    waiting: AtomicU32,
    /// The processes about to sleep on the lock or sleeping there.
    lock_waiting: AtomicU32,
}

// SAFETY: `#[repr(C)]`, atomics only (an array of them included); zero is a valid (empty,
// unbounded) semaphore with no holders, a free lock and a total of 0.
unsafe impl State for SemaphoreState {
    const KIND: Kind = Kind::Semaphore;
    const WORDS: usize = 2;

    fn word(&self, i: usize) -> &Word {
        match i {
            COUNT => &self.count,
            _ => &self.lock,
        }
    }
}

impl SemaphoreState {
    /// The most the count may reach.
    fn limit(&self) -> u32 {
        match self.bound.load(Ordering::Relaxed) {
            0 => u32::MAX,
            bound => bound,
        }
    }

    /// Whether the place just taken is one that a dead holder's death gave back; tells one
    /// acquirer per such place.
    fn take_orphan(&self) -> bool {
        let orphans = &self.orphans;
        let mut current = orphans.load(Ordering::Relaxed);
        while current > 0 {
            match orphans.compare_exchange_weak(
                current,
                current - 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
        false
    }
}

/// The counter behind both semaphores.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Counter {
    shared: Shared<SemaphoreState>,
}

/// The semaphore's lock, held: it unlocks when it drops, then wakes as many waiters of the
/// count as places came free meanwhile.
struct Locked<'a> {
    counter: &'a Counter,
    wake: u32,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let state = self.state();
        // Read under the lock, where waiters for a place announce themselves: none announced
        // means none sleeps or will sleep on the count as it was before this raise.
        let waiting = if self.wake > 0 {
            state.waiting.load(Ordering::Relaxed)
        } else {
            0
        };
        // A plain store: only the owner writes the word while it is taken (waiters compare
        // and sleep on it, they do not change it), so the uncontended path has no locked
        // instruction here. The price: the look at `lock_waiting` below may run before the
        // store shows and miss a waiter that announces itself at that instant; that waiter
        // sleeps at most `LOCK_POLL` before it looks again.
        state.lock.value().store(0, Ordering::Release);
        let lock_waiting = state.lock_waiting.load(Ordering::Relaxed);
        if waiting == 0 && lock_waiting == 0 {
            return;
        }
        // Orders the stores of the count and of the lock before the looks at the words'
        // sleepers, against a sleeper's count of itself before its look at the word (the
        // `SeqCst` of `Word::sleep`): one of the two sees the other.
        fence(Ordering::SeqCst);
        if lock_waiting > 0 {
            self.counter.shared.wake(LOCK, 1);
        }
        if waiting > 0 {
            self.counter.shared.wake(COUNT, self.wake);
        }
    }
}

impl<'a> Locked<'a> {
    fn state(&self) -> &'a SemaphoreState {
        self.counter.state()
    }

    fn count(&self) -> u32 {
        self.state().count.value().load(Ordering::Relaxed)
    }

    fn total(&self) -> u64 {
        self.state().total.load(Ordering::Relaxed)
    }

    fn set_total(&self, total: u64) {
        self.state().total.store(total, Ordering::Relaxed);
    }

    /// Raises the count by `n`, which the caller checked against the bound.
    fn raise(&mut self, n: u32) {
        // A plain store: only the owner of the lock writes the count, and the drop of `self`
        // fences before it looks at the sleepers when some waiter announced itself.
        self.state()
            .count
            .value()
            .store(self.count() + n, Ordering::Relaxed);
        self.wake = self.wake.saturating_add(n);
    }

    /// Whether one more place fits under the bound.
    fn room(&self) -> bool {
        self.count() < self.state().limit()
    }

    /// Takes a free place for a guard of this process: the count first, the record next
    /// (see the module docs); `None` when no place is free.
    fn take(&self) -> Option<SemaphoreGuard<'a>> {
        let free = self.count();
        if free == 0 {
            return None;
        }
        self.state()
            .count
            .value()
            .store(free - 1, Ordering::Relaxed);
        let slot = self.state().holders.add();
        if slot.is_none() {
            // Held outside the record, as a forgotten place is.
            self.set_total(self.total().saturating_sub(1));
        }
        Some(SemaphoreGuard {
            counter: self.counter,
            slot,
            owner_died: self.state().take_orphan(),
        })
    }

    /// Gives a place back through `total` then the count: `false`, changing nothing, when
    /// it would pass the bound.
    fn give(&mut self) -> bool {
        if !self.room() {
            return false;
        }
        self.set_total(self.total() + 1);
        self.raise(1);
        true
    }

    /// Empties the slots of dead holders and makes the count agree with `total` and the
    /// slots left (never past the bound), after a death or with the lock taken over from a
    /// dead owner; returns how many places came back, and marks them for acquirers.
    // Cold: only a death leads here, and the uncontended acquire stays small without it.
    #[cold]
    #[inline(never)]
    fn repair(&mut self) -> u32 {
        let state = self.state();
        state.holders.reap(|_, _| {});
        let held = state.holders.sum();
        let limit = state.limit();
        let count = self.count();
        let fixed = self.total().saturating_sub(held).min(u64::from(limit)) as u32;
        // Told before they show (acquirers take them under this lock anyway); a repair never
        // lowers the count unless `total` says it must, as the module docs explain.
        let back = fixed.saturating_sub(count);
        if back > 0 {
            state.orphans.fetch_add(back, Ordering::SeqCst);
        }
        if fixed >= count {
            self.raise(back);
        } else {
            state.count.value().store(fixed, Ordering::Relaxed);
        }
        self.set_total(u64::from(fixed) + held);
        back
    }
}

impl Counter {
    fn new(value: u32, bound: u32) -> Result<Counter> {
        let shared = Shared::<SemaphoreState>::new()?;
        shared.state().count.value().store(value, Ordering::SeqCst);
        shared.state().bound.store(bound, Ordering::SeqCst);
        shared
            .state()
            .total
            .store(u64::from(value), Ordering::SeqCst);
        Ok(Counter { shared })
    }

    fn state(&self) -> &SemaphoreState {
        self.shared.state()
    }

    fn value(&self) -> u32 {
        self.state().count.value().load(Ordering::Relaxed)
    }

    /// Takes the lock, waiting at most until `deadline`; repairs the state when the lock
    /// was taken over from a dead owner.
    ///
    /// The word holds its owner's identity as [`Word::lock`]'s does, and a dead owner's lock
    /// is taken over by [`Word::lock`] itself; but the wait is this semaphore's own, because
    /// its unlock (the drop of [`Locked`]) makes no locked instruction and a waiter must
    /// not count on being woken.
    #[inline]
    fn lock(&self, deadline: Option<Instant>) -> Option<Locked<'_>> {
        let free = self
            .state()
            .lock
            .value()
            .compare_exchange(0, identity(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        let acquired = if free {
            Acquired::Free
        } else {
            self.lock_contended(deadline)?
        };
        let mut locked = Locked {
            counter: self,
            wake: 0,
        };
        if acquired.owner_died() {
            locked.repair();
        }
        Some(locked)
    }

    /// The wait of [`lock`](Counter::lock) for a lock that another holds: a spin, then
    /// sleeps of at most [`LOCK_POLL`]; a dead owner's lock is taken over once the owner
    /// held it a whole [`LIVENESS_SLICE`], or when `deadline` passes (so that a caller that
    /// only ever waits briefly is not kept out by a dead owner forever).
    #[cold]
    #[inline(never)]
    fn lock_contended(&self, deadline: Option<Instant>) -> Option<Acquired> {
        let state = self.state();
        let word = state.lock.value();
        let me = identity();
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if word.load(Ordering::Relaxed) == 0
                && word
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(Acquired::Free);
            }
        }
        // The owner last seen, and since when: only an owner that held the lock a whole
        // slice is worth the system calls of a look at its life.
        let mut seen = (word.load(Ordering::Relaxed), Instant::now());
        loop {
            let owner = word.load(Ordering::Relaxed);
            if owner == 0 {
                if word
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(Acquired::Free);
                }
                continue;
            }
            let now = Instant::now();
            if owner != seen.0 {
                seen = (owner, now);
            }
            let out_of_time = expired(deadline);
            if out_of_time || now.saturating_duration_since(seen.1) >= LIVENESS_SLICE {
                // Takes the lock if it came free or its owner is dead, at once.
                if let Some(acquired) = self.shared.lock(LOCK, Blocking::NonBlocking, None) {
                    return Some(acquired);
                }
                if out_of_time {
                    return None;
                }
                seen.1 = now;
            }
            let poll = crate::shared::deadline(Some(LOCK_POLL));
            let until = match (deadline, poll) {
                (Some(d), Some(p)) => Some(d.min(p)),
                (d, p) => d.or(p),
            };
            state.lock_waiting.fetch_add(1, Ordering::SeqCst);
            self.shared.sleep(LOCK, owner, until);
            state.lock_waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Takes a free place for a guard if there is one; `None` when there is none, or when
    /// `deadline` passed while another process held the lock.
    #[inline]
    fn take(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
        // Read without the lock, so that a waiter that finds no place does not take it.
        if self.value() == 0 {
            return None;
        }
        self.lock(deadline)?.take()
    }

    /// Takes a place, waiting until `deadline`; looks for the dead after every slice it
    /// slept through without a place coming free, and once more when the deadline passed.
    fn take_until(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
        loop {
            if let Some(guard) = self.take(deadline) {
                return Some(guard);
            }
            if expired(deadline) {
                return if self.reap(deadline) > 0 {
                    self.take(deadline)
                } else {
                    None
                };
            }
            let slice_end = crate::shared::deadline(Some(LIVENESS_SLICE));
            let until = match (deadline, slice_end) {
                (Some(d), Some(s)) => Some(d.min(s)),
                (d, s) => d.or(s),
            };
            // The waiter announces itself under the lock, where whoever raises the count
            // looks for waiters (see `Locked`'s drop); `None` means the deadline passed
            // while another held the lock, which the next turn handles.
            let Some(locked) = self.lock(deadline) else {
                continue;
            };
            if let Some(guard) = locked.take() {
                return Some(guard);
            }
            self.state().waiting.fetch_add(1, Ordering::SeqCst);
            drop(locked);
            self.shared.sleep(COUNT, 0, until);
            self.state().waiting.fetch_sub(1, Ordering::SeqCst);
            if !expired(deadline) && expired(slice_end) && self.value() == 0 {
                self.reap(deadline);
            }
        }
    }

    /// Gives back the places of holders that died, and repairs what a process that died
    /// holding the lock left; returns how many places came back.
    ///
    /// It looks without the lock first, so that the lock is never held through the system
    /// calls that tell whether a process lives unless someone died.
    fn reap(&self, deadline: Option<Instant>) -> u32 {
        if !self.state().lock.held_by_dead() && !self.state().holders.any_dead() {
            return 0;
        }
        // At once from a dead owner (the blocking lock would sleep a slice first), and the
        // one repair below covers whatever it left.
        let taken = self
            .shared
            .lock(LOCK, Blocking::NonBlocking, None)
            .or_else(|| self.lock_contended(deadline));
        if taken.is_none() {
            return 0;
        }
        Locked {
            counter: self,
            wake: 0,
        }
        .repair()
    }

    fn give(&self) -> Result<()> {
        let given = self.lock(None).is_some_and(|mut locked| locked.give());
        if given {
            Ok(())
        } else {
            Err(Error::InvalidState(
                "semaphore released too many times: release only what was acquired",
            ))
        }
    }

    // What `Semaphore` and `BoundedSemaphore` share: they differ only in `release`.

    #[inline]
    fn acquire(&self) -> SemaphoreGuard<'_> {
        match self.take(None) {
            Some(guard) => guard,
            None => self.wait_for_a_place(),
        }
    }

    /// The wait of [`acquire`](Counter::acquire) when no place was free: out of line, so
    /// that the uncontended acquire is the few instructions of `take`.
    #[inline(never)]
    fn wait_for_a_place(&self) -> SemaphoreGuard<'_> {
        self.take_until(None)
            .expect("a wait without a deadline ends with a place")
    }

    fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        match self.take(None) {
            Some(guard) => Some(guard),
            None if self.reap(None) > 0 => self.take(None),
            None => None,
        }
    }

    fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        self.take_until(deadline(Some(timeout)))
            .ok_or(Error::Timeout)
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
/// Unlike Python's, a place held through a guard by a process that dies — killed, or
/// exiting without dropping the guard — comes back. The semaphore records which process
/// holds how many places through guards; a waiter that sleeps a tenth of a second without a
/// place coming free looks for holders that died and gives their places back (as a failed
/// [`try_acquire`](Semaphore::try_acquire) does at once), so that waiters, blocked ones
/// included, go on within about a tenth of a second. As many acquirers as places came back
/// that way are told by their guard's [`owner_died`](SemaphoreGuard::owner_died): what the
/// dead holder did with its place may be half done. [`get_value`](Semaphore::get_value)
/// counts a dead holder's places only once a waiter has looked.
///
/// A process that dies inside a call — between taking a place and recording it, say — loses
/// nothing either: every call changes the count and the record under an internal lock that
/// is taken over from a dead owner, and whoever takes it over puts the count right (the
/// acquirer that gets a place back that way is told too). Every call may therefore wait a
/// few instructions for another process's call, or a tenth of a second after a process died
/// inside one; [`try_acquire`](Semaphore::try_acquire) included.
///
/// What is not recorded does not come back:
///
/// - a place kept with [`SemaphoreGuard::forget`] is the caller's to give back with
///   [`release`](Semaphore::release), from any process; it stays taken when the process
///   that took it dies, since another process may be about to release it;
/// - the record has room for 128 holding processes at once; places taken by more processes
///   than that go unrecorded while the room is full.
///
/// # Platform-specific behavior
///
/// A holder is recognised by its pid and its start time, so that a holder whose pid the
/// system gave to another process before the waiters looked is still seen dead (where the
/// platform cannot tell start times, the pid alone judges; on Linux they are clock ticks,
/// 10 ms, well within the time the system takes to give a pid out again). The internal lock
/// of the few instructions of each call is a futex word that names its owner as a
/// [`Lock`](crate::Lock)'s does, by its pid and a hash of its start time (the pid alone on
/// Windows). Processes in
/// different pid namespaces must not share semaphores. A guard that a forked child inherits
/// names its parent's hold, and gives nothing back when it drops in the child.
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

    /// Adds a free place, waking a waiter: Python's `release()`, for a place kept with
    /// [`SemaphoreGuard::forget`] (in this process or another), or one never acquired.
    ///
    /// It does not touch the record of holders: a place that a live guard holds is given
    /// back when that guard drops, so releasing it as well counts it twice. (Crediting a
    /// guard of the releasing process instead would lose a place whenever that process also
    /// kept one with `forget` — the place that this `release` was meant for.)
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
/// As for [`Semaphore`]: a place held through a guard by a process that dies comes back
/// within about a tenth of a second to whoever waits (never past the bound), and the guard
/// of an acquirer that gets it says [`owner_died`](SemaphoreGuard::owner_died); a place kept
/// with [`SemaphoreGuard::forget`] stays taken until [`release`](BoundedSemaphore::release).
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

    /// Gives a place back without a guard (after [`SemaphoreGuard::forget`]), from any
    /// process; as [`Semaphore::release`], it does not touch the record of holders.
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
/// It knows where the semaphore recorded its process as the holder, so that the place comes
/// back if the process dies before the guard drops.
///
/// # Examples
///
/// ```
/// let sem = proc_sync::Semaphore::new(1).unwrap();
/// {
///     let place = sem.acquire();
///     assert!(!place.owner_died());
///     assert_eq!(sem.get_value(), 0);
/// }
/// assert_eq!(sem.get_value(), 1);
/// ```
#[must_use = "the place is given back as soon as the guard drops: bind it with `let _place = ...` (`let _ = ...` gives it back at once), or call `forget()` on it and `release()` later"]
pub struct SemaphoreGuard<'a> {
    counter: &'a Counter,
    /// The holder slot that records this place; `None` when the record was full.
    slot: Option<usize>,
    owner_died: bool,
}

impl SemaphoreGuard<'_> {
    /// Whether this place came back from a process that died holding it: whatever that
    /// process did with it may be half done. One acquirer is told per place that came back.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::BoundedSemaphore::new(1).unwrap();
    /// assert!(!sem.acquire().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Keeps the place taken: the guard goes without giving it back (Python's `acquire()`
    /// without a `with`). Give it back with `release`, maybe from another process.
    ///
    /// The place leaves the record of holders: it is the caller's now, and stays taken even
    /// when this process dies, until some process releases it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = proc_sync::Semaphore::new(1).unwrap();
    /// sem.acquire().forget();
    /// assert_eq!(sem.get_value(), 0);
    /// sem.release().unwrap();
    /// assert_eq!(sem.get_value(), 1);
    /// ```
    pub fn forget(self) {
        if let Some(slot) = self.slot {
            // The record first, `total` next: a death between the two gives the place back,
            // as a death before `forget` would. (A place held outside the record is out of
            // `total` already.)
            if let Some(locked) = self.counter.lock(None)
                && locked.state().holders.remove(slot)
            {
                locked.set_total(locked.total().saturating_sub(1));
            }
        }
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let Some(mut locked) = self.counter.lock(None) else {
            return;
        };
        match self.slot {
            // The record first, the count next: a death between the two leaves the count
            // short of `total`, which the next owner of the lock repairs. A slot that holds
            // nothing of this process (a guard inherited by a forked child) gives nothing
            // back.
            Some(slot) => {
                if locked.state().holders.remove(slot) {
                    if locked.room() {
                        locked.raise(1);
                    } else {
                        // Released past the bound by someone who never acquired: the bound
                        // stands, and the place leaves `total` with the record.
                        locked.set_total(locked.total().saturating_sub(1));
                    }
                }
            }
            // Held outside the record: back into `total` and the count, as a release.
            None => {
                locked.give();
            }
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("owner_died", &self.owner_died)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holders::{HOLDER_SLOTS, Holder};
    use proc_core::shared::{pid, pid_alive};

    /// A pid that no process has: beyond every system's range.
    const DEAD: u32 = u32::MAX - 1;

    /// Bounds every wait of these tests: far longer than the slice after which the dead
    /// are noticed.
    const PATIENCE: Duration = Duration::from_secs(20);

    fn set_count(counter: &Counter, count: u32) {
        counter.state().count.value().store(count, Ordering::SeqCst);
    }

    fn total(counter: &Counter) -> u64 {
        counter.state().total.load(Ordering::SeqCst)
    }

    /// Records `count` places of `holder` as if it had taken them.
    fn pretend_held(counter: &Counter, holder: u32, count: u32) {
        set_count(counter, counter.value() - count);
        // Start time 0: a process judged by its pid alone, as where the platform cannot tell.
        let holder = Holder {
            pid: holder,
            start: 0,
        };
        counter
            .state()
            .holders
            .slot(HOLDER_SLOTS - 1)
            .write(holder, count);
    }

    /// Leaves the lock as a process that died holding it leaves it.
    fn die_holding_the_lock(counter: &Counter) {
        counter.state().lock.value().store(DEAD, Ordering::SeqCst);
    }

    /// Whether the count and the record agree with `total`, as they must whenever the lock
    /// is free.
    fn consistent(counter: &Counter) -> bool {
        !counter.state().lock.is_locked()
            && u64::from(counter.value()) + counter.state().holders.sum() == total(counter)
    }

    #[test]
    fn a_dead_holders_places_come_back_once_and_say_so() {
        assert!(!pid_alive(DEAD));
        let sem = BoundedSemaphore::new(3).unwrap();
        pretend_held(&sem.counter, DEAD, 3);
        assert_eq!(sem.get_value(), 0);
        let guards: Vec<_> = (0..3).map(|_| sem.try_acquire().unwrap()).collect();
        assert!(guards.iter().all(SemaphoreGuard::owner_died));
        assert_eq!(sem.counter.state().holders.held_by(DEAD), 0);
        assert_eq!(sem.counter.state().holders.held_by(pid()), 3);
        drop(guards);
        assert_eq!(sem.get_value(), 3);
        assert_eq!(sem.counter.reap(None), 0);
        assert!(!sem.acquire().owner_died());
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_waiter_takes_a_dead_holders_place_when_its_time_runs_out() {
        let sem = Semaphore::new(1).unwrap();
        pretend_held(&sem.counter, DEAD, 1);
        // Shorter than a slice: the look at the end of the wait finds the dead holder.
        let guard = sem.acquire_timeout(Duration::from_millis(1)).unwrap();
        assert!(guard.owner_died());
    }

    #[test]
    fn places_of_the_dead_never_raise_the_count_past_the_bound() {
        let sem = BoundedSemaphore::new(2).unwrap();
        pretend_held(&sem.counter, DEAD, 2);
        // Released without having acquired: the count is at the bound already.
        sem.release().unwrap();
        sem.release().unwrap();
        assert_eq!(sem.counter.reap(None), 0);
        assert_eq!(sem.get_value(), 2);
        assert!(
            !sem.acquire().owner_died(),
            "told of a place that never came back"
        );
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn forget_takes_the_place_out_of_the_record() {
        let sem = Semaphore::new(2).unwrap();
        let kept = sem.acquire();
        sem.acquire().forget();
        assert_eq!(sem.counter.state().holders.held_by(pid()), 1);
        assert_eq!(total(&sem.counter), 1, "the kept place left the total");
        drop(kept);
        assert_eq!(sem.counter.state().holders.held_by(pid()), 0);
        assert_eq!(sem.get_value(), 1);
        sem.release().unwrap();
        assert_eq!(total(&sem.counter), 2);
        assert!(consistent(&sem.counter));
    }

    #[cfg(unix)]
    #[test]
    fn a_full_record_leaves_places_unrecorded_but_working() {
        let sem = Semaphore::new(1).unwrap();
        // Every slot held by a live process that is not this one.
        let parent = std::os::unix::process::parent_id();
        let stranger = Holder {
            pid: parent,
            start: proc_core::shared::start_time_of(parent).unwrap_or(0),
        };
        for i in 0..HOLDER_SLOTS {
            sem.counter.state().holders.slot(i).write(stranger, 1);
        }
        sem.counter
            .state()
            .total
            .store(1 + HOLDER_SLOTS as u64, Ordering::SeqCst);
        let guard = sem.acquire_timeout(PATIENCE).unwrap();
        assert_eq!(guard.slot, None);
        assert!(consistent(&sem.counter), "held outside the total");
        assert!(sem.try_acquire().is_none());
        drop(guard);
        assert_eq!(sem.get_value(), 1);
        assert_eq!(
            sem.counter.state().holders.held_by(parent),
            HOLDER_SLOTS as u32
        );
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_slot_of_another_process_gives_nothing_back() {
        let sem = Semaphore::new(1).unwrap();
        let guard = sem.acquire();
        let slot = guard.slot.unwrap();
        // What a forked child sees: the record names another process, its parent.
        let holders = &sem.counter.state().holders;
        let me = Holder::me();
        let parent = Holder {
            pid: me.pid.wrapping_add(1),
            ..me
        };
        holders.slot(slot).write(parent, 1);
        assert!(!holders.remove(slot));
        assert_eq!(holders.held_by(parent.pid), 1);
        holders.slot(slot).write(me, 1);
        drop(guard);
        assert_eq!(sem.get_value(), 1);
    }

    // The states below are those that a process killed inside a call leaves: the lock still
    // names it, and one of the call's two steps is done.

    #[test]
    fn a_death_between_taking_a_place_and_recording_it_loses_nothing() {
        let sem = Semaphore::new(2).unwrap();
        die_holding_the_lock(&sem.counter);
        set_count(&sem.counter, 1);
        // A place is free: the acquirer waits for the lock, takes it over and repairs.
        let first = sem.acquire_timeout(PATIENCE).unwrap();
        let second = sem.acquire_timeout(PATIENCE).unwrap();
        assert_eq!(
            u32::from(first.owner_died()) + u32::from(second.owner_died()),
            1,
            "one acquirer is told per place that came back"
        );
        drop((first, second));
        assert_eq!(sem.get_value(), 2);
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_death_after_recording_a_place_before_unlocking_loses_nothing() {
        let sem = BoundedSemaphore::new(1).unwrap();
        pretend_held(&sem.counter, DEAD, 1);
        die_holding_the_lock(&sem.counter);
        // No place is free: the failed try looks for the dead, and takes the lock over.
        let guard = sem.try_acquire().unwrap();
        assert!(guard.owner_died());
        assert_eq!(sem.counter.state().holders.held_by(DEAD), 0);
        drop(guard);
        assert_eq!(sem.get_value(), 1);
        assert!(sem.release().is_err(), "the place came back twice");
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_death_between_unrecording_a_place_and_giving_it_back_loses_nothing() {
        let sem = BoundedSemaphore::new(1).unwrap();
        // The dead holder's slot is empty already, and the count still 0.
        set_count(&sem.counter, 0);
        die_holding_the_lock(&sem.counter);
        // A waiter asleep on the count notices the dead owner of the lock by itself.
        let guard = sem.acquire_timeout(PATIENCE).unwrap();
        assert!(guard.owner_died());
        drop(guard);
        assert_eq!(sem.get_value(), 1);
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_death_inside_a_release_counts_the_release() {
        let sem = Semaphore::new(0).unwrap();
        // `total` raised, the count not yet.
        sem.counter.state().total.store(1, Ordering::SeqCst);
        die_holding_the_lock(&sem.counter);
        let guard = sem.try_acquire().unwrap();
        drop(guard);
        assert_eq!(sem.get_value(), 1);
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_death_inside_forget_gives_the_place_back() {
        let sem = Semaphore::new(1).unwrap();
        pretend_held(&sem.counter, DEAD, 1);
        // The slot emptied, `total` not lowered yet.
        let dead = Holder {
            pid: DEAD,
            start: 0,
        };
        sem.counter
            .state()
            .holders
            .slot(HOLDER_SLOTS - 1)
            .write(dead, 0);
        die_holding_the_lock(&sem.counter);
        let guard = sem.try_acquire().unwrap();
        assert!(guard.owner_died());
        drop(guard);
        assert_eq!(sem.get_value(), 1);
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_repair_never_raises_the_count_past_the_bound() {
        let sem = BoundedSemaphore::new(2).unwrap();
        // More than the bound, as releases without acquires (refused now) could never make.
        sem.counter.state().total.store(5, Ordering::SeqCst);
        die_holding_the_lock(&sem.counter);
        let guard = sem.acquire_timeout(PATIENCE).unwrap();
        assert_eq!(sem.get_value(), 1);
        drop(guard);
        assert_eq!(sem.get_value(), 2);
        assert!(sem.release().is_err());
        assert!(consistent(&sem.counter));
    }

    /// Yields until `ready` holds, failing the test after [`PATIENCE`].
    fn until(ready: impl Fn() -> bool) {
        let give_up = Instant::now() + PATIENCE;
        while !ready() {
            assert!(Instant::now() < give_up, "the waiter never counted itself");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_counted_waiter_for_a_place_is_woken_by_the_drop_and_uncounted() {
        let sem = Semaphore::new(1).unwrap();
        let place = sem.acquire();
        let state = sem.counter.state();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| sem.acquire_timeout(PATIENCE).map(|g| g.owner_died()));
            // Counted under the lock: the drop below must see it, and wake it.
            until(|| state.waiting.load(Ordering::SeqCst) == 1);
            drop(place);
            assert_eq!(waiter.join().unwrap().ok(), Some(false));
        });
        assert_eq!(state.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(sem.get_value(), 1);
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_waiter_for_the_lock_sleeps_counted_and_gets_it_once_free() {
        let sem = Semaphore::new(1).unwrap();
        let state = sem.counter.state();
        let locked = sem.counter.lock(None).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| sem.acquire_timeout(PATIENCE).map(|g| g.owner_died()));
            // Past its spin: asleep on the lock, or about to be.
            until(|| state.lock_waiting.load(Ordering::SeqCst) == 1);
            drop(locked);
            assert_eq!(waiter.join().unwrap().ok(), Some(false));
        });
        assert_eq!(state.lock_waiting.load(Ordering::SeqCst), 0);
        assert!(consistent(&sem.counter));
    }

    #[test]
    fn a_live_owner_of_the_lock_is_waited_for_not_repaired() {
        let sem = Semaphore::new(1).unwrap();
        let locked = sem.counter.lock(None).unwrap();
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                // Another thread of this process waits: the lock is per process.
                sem.acquire_timeout(PATIENCE).map(|g| g.owner_died())
            });
            // The owner is alive: looking for the dead changes nothing.
            assert!(!sem.counter.state().holders.any_dead());
            drop(locked);
            assert_eq!(other.join().unwrap().ok(), Some(false));
        });
        assert_eq!(sem.get_value(), 1);
        assert!(consistent(&sem.counter));
    }
}
