//! `Semaphore` and `BoundedSemaphore`: counters that limit how many hold something at once
//! (Python's `multiprocessing.Semaphore` and `multiprocessing.BoundedSemaphore`).
//!
//! The count of free places is a futex word. Beside it, a table of [`Holders`] records which
//! process holds how many places through a guard, so that the places of a process that died
//! come back: a waiter that slept a whole slice (a tenth of a second) without a place coming
//! free looks for dead holders and gives their places back, as a failed `try_acquire` and a
//! wait that reaches its deadline do once. Places taken back that way are marked, and as many
//! acquirers as there were such places learn it from their guard's
//! [`owner_died`](SemaphoreGuard::owner_died).

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_core::shared::{pid, pid_alive};
use proc_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::shared::{Shared, State, Word, deadline, expired};
use crate::wire::Kind;

/// How long a waiter sleeps before it looks for dead holders: the time a dead holder's
/// places may stay lost while others wait for them.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// How many processes a [`Holders`] table records at once. A process beyond them holds its
/// places unrecorded, as every holder did before the table: they are lost if it dies.
pub(crate) const HOLDER_SLOTS: usize = 128;

/// A table of processes and how many of something each holds (the places of a semaphore,
/// the parties of a barrier), in shared memory.
///
/// A slot is one `u64`, the pid in the high half and the count in the low half, 0 when free,
/// so that every change is one compare-and-swap and a process that dies between two changes
/// leaves a slot that is whole. A process may have several slots (two of its threads can
/// claim a free slot at once); its holds are the sum. A slot that names a dead process is
/// taken back by whoever looks ([`reap`](Holders::reap)).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Holders {
    slots: [AtomicU64; HOLDER_SLOTS],
}

fn slot_pid(slot: u64) -> u32 {
    (slot >> 32) as u32
}

fn slot_count(slot: u64) -> u32 {
    slot as u32
}

fn pack_slot(pid: u32, count: u32) -> u64 {
    if count == 0 {
        0
    } else {
        (u64::from(pid) << 32) | u64::from(count)
    }
}

impl Holders {
    /// Records one more hold of process `me`; returns its slot, or `None` when the table is
    /// full (the hold goes unrecorded).
    ///
    /// The search starts at a slot chosen by the pid and stops at the first slot that is
    /// `me`'s or free, so that an acquire costs a compare-and-swap or two rather than a walk
    /// through the table. (A slot of `me` further on, left behind when an earlier one was
    /// freed, is fine: holds are summed over a process's slots.)
    pub(crate) fn add(&self, me: u32) -> Option<usize> {
        let home = me as usize % HOLDER_SLOTS;
        for i in (home..HOLDER_SLOTS).chain(0..home) {
            let slot = &self.slots[i];
            let mut current = slot.load(Ordering::Relaxed);
            loop {
                let next = if current == 0 {
                    pack_slot(me, 1)
                } else if slot_pid(current) == me && slot_count(current) < u32::MAX {
                    current + 1
                } else {
                    break;
                };
                match slot.compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::Relaxed)
                {
                    Ok(_) => return Some(i),
                    Err(now) => current = now,
                }
            }
        }
        None
    }

    /// Takes one hold of process `me` off slot `i`; `false` when the slot holds none of
    /// `me`'s (taken back, or recorded by the process this one was forked from).
    pub(crate) fn remove(&self, i: usize, me: u32) -> bool {
        let Some(slot) = self.slots.get(i) else {
            return false;
        };
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            if current == 0 || slot_pid(current) != me {
                return false;
            }
            let next = pack_slot(me, slot_count(current) - 1);
            match slot.compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Empties every slot of a dead process and calls `taken(pid, count)` for each; a slot
    /// goes to one caller only, however many look at once.
    pub(crate) fn reap(&self, mut taken: impl FnMut(u32, u32)) {
        let me = pid();
        for slot in &self.slots {
            let current = slot.load(Ordering::Relaxed);
            if current == 0 || slot_pid(current) == me || pid_alive(slot_pid(current)) {
                continue;
            }
            // A slot that changed meanwhile belongs to a live process again (only its owner
            // changes a slot with a count), or to another reaper.
            if slot
                .compare_exchange(current, 0, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                taken(slot_pid(current), slot_count(current));
            }
        }
    }

    /// The holds recorded for process `pid`, over all its slots.
    #[cfg(test)]
    pub(crate) fn held_by(&self, pid: u32) -> u32 {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|s| *s != 0 && slot_pid(*s) == pid)
            .map(slot_count)
            .sum()
    }
}

/// The state of a semaphore: the count is the futex word.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SemaphoreState {
    count: Word,
    /// The most the count may reach; 0 for no bound.
    bound: AtomicU32,
    /// Places given back from dead holders that no acquirer has been told about yet.
    orphans: AtomicU32,
    /// Who holds places through a guard.
    holders: Holders,
}

// SAFETY: `#[repr(C)]`, atomics only (an array of them included); zero is a valid (empty,
// unbounded) semaphore with no holders.
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

    fn state(&self) -> &SemaphoreState {
        self.shared.state()
    }

    fn count(&self) -> &AtomicU32 {
        self.state().count.value()
    }

    fn limit(&self) -> u32 {
        match self.state().bound.load(Ordering::Relaxed) {
            0 => u32::MAX,
            bound => bound,
        }
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

    /// Takes a place, waiting until `deadline`; looks for dead holders after every slice it
    /// slept through without a place coming free, and once more when the deadline passed.
    fn take(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            if expired(deadline) {
                return self.reap() > 0 && self.try_take();
            }
            let slice_end = crate::shared::deadline(Some(LIVENESS_SLICE));
            let until = match (deadline, slice_end) {
                (Some(d), Some(s)) => Some(d.min(s)),
                (d, s) => d.or(s),
            };
            self.shared.sleep(0, 0, until);
            if !expired(deadline) && expired(slice_end) && self.value() == 0 {
                self.reap();
            }
        }
    }

    /// Gives back the places of holders that died; returns how many came back.
    fn reap(&self) -> u32 {
        let mut dead = 0u32;
        self.state()
            .holders
            .reap(|_, count| dead = dead.saturating_add(count));
        if dead == 0 {
            return 0;
        }
        // Marked before they show, so that an acquirer that takes one is told.
        self.state().orphans.fetch_add(dead, Ordering::SeqCst);
        let added = self.add(dead);
        if added < dead {
            // Released past the bound meanwhile: the bound stands, and no acquirer is told
            // about places that did not come back.
            let _ =
                self.state()
                    .orphans
                    .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |orphans| {
                        Some(orphans.saturating_sub(dead - added))
                    });
        }
        added
    }

    /// Adds up to `n` places, as many as the bound allows; returns how many, and wakes as
    /// many waiters.
    fn add(&self, n: u32) -> u32 {
        let limit = self.limit();
        let mut current = self.count().load(Ordering::Relaxed);
        loop {
            let added = n.min(limit.saturating_sub(current));
            if added == 0 {
                return 0;
            }
            match self.count().compare_exchange_weak(
                current,
                current + added,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.shared.wake(0, added);
                    return added;
                }
                Err(now) => current = now,
            }
        }
    }

    /// Whether the place just taken is one that a dead holder's death gave back; tells one
    /// acquirer per such place.
    fn take_orphan(&self) -> bool {
        let orphans = &self.state().orphans;
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

    fn give(&self) -> Result<()> {
        if self.add(1) == 1 {
            Ok(())
        } else {
            Err(Error::InvalidState(
                "semaphore released too many times: release only what was acquired",
            ))
        }
    }

    fn value(&self) -> u32 {
        self.count().load(Ordering::Relaxed)
    }

    // What `Semaphore` and `BoundedSemaphore` share: they differ only in `release`.

    /// The guard of a place just taken: records this process as its holder.
    fn guard(&self) -> SemaphoreGuard<'_> {
        // Taken first, recorded next: a death between the two loses the place, as before the
        // table; the other order would give back a place never taken.
        let slot = self.state().holders.add(pid());
        SemaphoreGuard {
            counter: self,
            slot,
            owner_died: self.take_orphan(),
        }
    }

    fn acquire(&self) -> SemaphoreGuard<'_> {
        self.take(None);
        self.guard()
    }

    fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        // Lazily: a guard made and dropped would give back a place never taken.
        (self.try_take() || (self.reap() > 0 && self.try_take())).then(|| self.guard())
    }

    fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        if self.take(deadline(Some(timeout))) {
            Ok(self.guard())
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
/// What is not recorded does not come back:
///
/// - a place kept with [`SemaphoreGuard::forget`] is the caller's to give back with
///   [`release`](Semaphore::release), from any process; it stays taken when the process
///   that took it dies, since another process may be about to release it;
/// - a process that dies in the few instructions between taking a place and recording it
///   (or between unrecording it and giving it back) loses it;
/// - the record has room for 128 holding processes at once; places taken by more processes
///   than that go unrecorded while the room is full.
///
/// # Platform-specific behavior
///
/// A holder is recognised by its pid, as a [`Lock`](crate::Lock)'s owner is: a pid recycled
/// before the waiters look would hide the death; processes in different pid namespaces must
/// not share semaphores. A guard that a forked child inherits names its parent's hold, and
/// gives nothing back when it drops in the child.
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
            self.counter.state().holders.remove(slot, pid());
        }
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Unrecorded first, given back next: a death between the two loses the place, where
        // the other order would give it back twice (once here, once by a waiter that finds
        // the dead holder). A slot that holds nothing of this process (a guard inherited by a
        // forked child) gives nothing back.
        let mine = match self.slot {
            Some(slot) => self.counter.state().holders.remove(slot, pid()),
            None => true,
        };
        if mine {
            // Only a release past the bound fails, which a guard's own place cannot be
            // unless someone released it without acquiring: then the bound stands and
            // nothing is lost.
            let _ = self.counter.give();
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

    /// A pid that no process has: beyond every system's range.
    const DEAD: u32 = u32::MAX - 1;

    /// Records `count` places of `holder` as if it had taken them.
    fn pretend_held(counter: &Counter, holder: u32, count: u32) {
        for _ in 0..count {
            assert!(counter.try_take());
        }
        let slot = &counter.state().holders.slots[HOLDER_SLOTS - 1];
        slot.store(pack_slot(holder, count), Ordering::SeqCst);
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
        assert_eq!(sem.counter.reap(), 0);
        assert!(!sem.acquire().owner_died());
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
        assert_eq!(sem.counter.reap(), 0);
        assert_eq!(sem.get_value(), 2);
        assert!(
            !sem.acquire().owner_died(),
            "told of a place that never came back"
        );
    }

    #[test]
    fn forget_takes_the_place_out_of_the_record() {
        let sem = Semaphore::new(2).unwrap();
        let kept = sem.acquire();
        sem.acquire().forget();
        assert_eq!(sem.counter.state().holders.held_by(pid()), 1);
        drop(kept);
        assert_eq!(sem.counter.state().holders.held_by(pid()), 0);
        assert_eq!(sem.get_value(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_full_record_leaves_places_unrecorded_but_working() {
        let sem = Semaphore::new(1).unwrap();
        // Every slot held by a live process that is not this one.
        let parent = std::os::unix::process::parent_id();
        for slot in &sem.counter.state().holders.slots {
            slot.store(pack_slot(parent, 1), Ordering::SeqCst);
        }
        let guard = sem.acquire_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(guard.slot, None);
        assert!(sem.try_acquire().is_none());
        drop(guard);
        assert_eq!(sem.get_value(), 1);
        assert_eq!(
            sem.counter.state().holders.held_by(parent),
            HOLDER_SLOTS as u32
        );
    }

    #[test]
    fn a_slot_of_another_process_gives_nothing_back() {
        let sem = Semaphore::new(1).unwrap();
        let guard = sem.acquire();
        let slot = guard.slot.unwrap();
        // What a forked child sees: the record names its parent.
        assert!(
            !sem.counter
                .state()
                .holders
                .remove(slot, pid().wrapping_add(1))
        );
        drop(guard);
        assert_eq!(sem.get_value(), 1);
    }
}
