//! A table of processes and how many of something each holds (the places of a semaphore, the
//! parties of a barrier), in shared memory, whose dead holders can be told from live ones
//! even when their pid went to another process.
//!
//! # A holder is a pid and a start time
//!
//! A pid alone does not name a process for long: once the process is dead, the system may
//! give its pid to another, and a record that names only the pid would then take that
//! stranger for the holder and keep its places for as long as the stranger lives. So a slot
//! names its holder by the pid and by the process's start time
//! ([`start_time`](proc_core::shared::start_time), read once per process and cached), and a
//! holder counts as alive only when its pid runs *and* the process that has it started then
//! ([`Instance::alive`]). Only the look for dead holders asks the system about other
//! processes; recording a hold makes no system call.
//!
//! # The slot protocol
//!
//! A slot is two words: `hold`, the pid in the high half and the count in the low half (0
//! when the slot is free), and `start`, the start time of the process that `hold` names,
//! which means something only while `hold` is not 0. The two cannot change in one atomic
//! step, so the table relies on two rules:
//!
//! 1. **Every change of a slot is made under the robust lock of the structure that holds the
//!    table** (the semaphore's internal lock, the barrier's condition lock), never while
//!    sleeping. Two processes never write a slot at once, and one that is killed while it
//!    writes leaves the lock to a dead owner, whose next owner repairs the structure
//!    ([`reap`](Holders::reap), and the count that goes with the table) before anything
//!    else reads the table.
//! 2. **The writes come in an order that leaves a whole slot at every instruction:**
//!    - a claim of a free slot writes `start` first, then `hold`: killed between the two, the
//!      slot is still free (its `hold` is 0), and the `start` left behind is never read;
//!      killed after, the slot is whole;
//!    - one more or one less hold of the slot's own process changes `hold` alone (the
//!      process, hence its start, is the same); the last hold given up frees the slot by
//!      setting `hold` to 0, which a reaper does as well.
//!
//! So a slot is free, or names one process by pid and start time with a count of at least
//! one; never a pid with another process's start time (a half-written claim), which the look
//! for the dead would take for a recycled pid. A hold that a death left half-recorded (the
//! count of the structure changed, the slot not yet, or the other way round) is the repair's
//! business: it trusts the slots and recomputes the count from them.
//!
//! Readers without the lock ([`any_dead`](Holders::any_dead), which decides whether taking
//! the lock to look is worth it) may see a slot while its owner changes it: they read
//! `hold`, `start` and `hold` again, and pass over a slot whose `hold` moved meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};

use proc_core::shared::Instance;

/// How many processes a [`Holders`] table records at once. A process beyond them holds its
/// places unrecorded, as every holder did before the table: they are lost if it dies.
pub(crate) const HOLDER_SLOTS: usize = 128;

/// A process, as a slot names it: its pid, and when it started (0 where the platform cannot
/// tell, which leaves the pid alone to judge).
pub(crate) type Holder = Instance;

/// One holder's record (see the module docs for the order of its writes).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Slot {
    /// The pid in the high half, the count in the low half; 0 when free.
    hold: AtomicU64,
    /// The start time of the process that `hold` names; meaningless while `hold` is 0.
    start: AtomicU64,
}

impl Slot {
    /// The holder and its count, read without the lock: `None` when the slot is free or
    /// changed while it was read.
    fn read(&self) -> Option<(Holder, u32)> {
        let hold = self.hold.load(Ordering::Acquire);
        if hold == 0 {
            return None;
        }
        let start = self.start.load(Ordering::Acquire);
        (self.hold.load(Ordering::Acquire) == hold).then_some((
            Holder {
                pid: hold_pid(hold),
                start,
            },
            hold_count(hold),
        ))
    }

    /// Writes a whole slot for `holder` with `count` holds, as a claim does: `start` first,
    /// `hold` next. The caller holds the table's lock.
    pub(crate) fn write(&self, holder: Holder, count: u32) {
        self.start.store(holder.start, Ordering::Release);
        self.hold
            .store(pack_hold(holder.pid, count), Ordering::Release);
    }

    /// Writes only the first step of a claim, `start`, as a process killed between the two
    /// steps leaves the slot.
    #[cfg(test)]
    pub(crate) fn write_start_only(&self, start: u64) {
        self.start.store(start, Ordering::Release);
    }
}

fn hold_pid(hold: u64) -> u32 {
    (hold >> 32) as u32
}

fn hold_count(hold: u64) -> u32 {
    hold as u32
}

fn pack_hold(pid: u32, count: u32) -> u64 {
    if count == 0 {
        0
    } else {
        (u64::from(pid) << 32) | u64::from(count)
    }
}

/// The table (see the module docs). A process may have several slots (an earlier one freed
/// and claimed again further on); its holds are the sum.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Holders {
    slots: [Slot; HOLDER_SLOTS],
}

impl Holders {
    /// Records one more hold of this process; returns its slot, or `None` when the table is
    /// full (the hold goes unrecorded). The caller holds the table's lock.
    ///
    /// The search starts at a slot chosen by the pid and stops at the first slot that is
    /// this process's or free, so that an acquire costs a load and a store or two rather
    /// than a walk through the table. A slot with this pid and another start time is a dead
    /// process's whose pid this one got: it is not this one's, and the next look for the
    /// dead takes it back.
    pub(crate) fn add(&self) -> Option<usize> {
        let me = Holder::me();
        let home = me.pid as usize % HOLDER_SLOTS;
        // The same walk as `(home..HOLDER_SLOTS).chain(0..home)`, in fewer instructions.
        for i in (0..HOLDER_SLOTS).map(|k| (home + k) % HOLDER_SLOTS) {
            let slot = &self.slots[i];
            let hold = slot.hold.load(Ordering::Relaxed);
            if hold == 0 {
                slot.write(me, 1);
                return Some(i);
            }
            if hold_pid(hold) == me.pid
                && hold_count(hold) < u32::MAX
                && slot.start.load(Ordering::Relaxed) == me.start
            {
                slot.hold.store(hold + 1, Ordering::Release);
                return Some(i);
            }
        }
        None
    }

    /// Takes one hold of this process off slot `i`; `false` when the slot holds none of this
    /// process's (taken back, or recorded by the process this one was forked from). The
    /// caller holds the table's lock.
    pub(crate) fn remove(&self, i: usize) -> bool {
        let Some(slot) = self.slots.get(i) else {
            return false;
        };
        let me = Holder::me();
        let hold = slot.hold.load(Ordering::Relaxed);
        if hold == 0 || hold_pid(hold) != me.pid || slot.start.load(Ordering::Relaxed) != me.start {
            return false;
        }
        slot.hold
            .store(pack_hold(me.pid, hold_count(hold) - 1), Ordering::Release);
        true
    }

    /// Empties every slot of a dead process and calls `taken(pid, count)` for each. The
    /// caller holds the table's lock, so a slot goes to one caller only.
    pub(crate) fn reap(&self, mut taken: impl FnMut(u32, u32)) {
        let me = Holder::me();
        for slot in &self.slots {
            // Under the lock nobody else writes: the read is whole.
            let Some((holder, count)) = slot.read() else {
                continue;
            };
            if holder == me || holder.alive() {
                continue;
            }
            slot.hold.store(0, Ordering::Release);
            taken(holder.pid, count);
        }
    }

    /// Whether some slot names a process that is dead, without changing any; a hint for
    /// whether to take the lock and [`reap`](Holders::reap), read without the lock.
    pub(crate) fn any_dead(&self) -> bool {
        let me = Holder::me();
        self.slots.iter().any(|slot| {
            slot.read()
                .is_some_and(|(holder, _)| holder != me && !holder.alive())
        })
    }

    /// The holds recorded, over every slot.
    pub(crate) fn sum(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| u64::from(hold_count(s.hold.load(Ordering::Relaxed))))
            .sum()
    }

    /// Slot `i`, for tests that write what a process left in it.
    #[cfg(test)]
    pub(crate) fn slot(&self, i: usize) -> &Slot {
        &self.slots[i]
    }

    /// The holds recorded for process `pid` (whatever its start time), over all its slots.
    #[cfg(test)]
    pub(crate) fn held_by(&self, pid: u32) -> u32 {
        self.slots
            .iter()
            .map(|s| s.hold.load(Ordering::Relaxed))
            .filter(|h| *h != 0 && hold_pid(*h) == pid)
            .map(hold_count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_core::shared::pid;

    /// A table as a fresh segment holds it: zeroed.
    fn table() -> Box<Holders> {
        Box::new(Holders {
            slots: std::array::from_fn(|_| Slot {
                hold: AtomicU64::new(0),
                start: AtomicU64::new(0),
            }),
        })
    }

    /// A live process that is not this one: the parent of this test process.
    #[cfg(unix)]
    fn live_stranger() -> Holder {
        let pid = std::os::unix::process::parent_id();
        Holder {
            pid,
            start: proc_core::shared::start_time_of(pid).unwrap_or(0),
        }
    }

    #[test]
    fn holds_of_this_process_share_a_slot_and_come_off_it() {
        let holders = table();
        let first = holders.add().unwrap();
        assert_eq!(holders.add(), Some(first));
        assert_eq!(holders.held_by(pid()), 2);
        assert!(holders.remove(first));
        assert!(holders.remove(first));
        assert!(!holders.remove(first), "gave up a hold it no longer had");
        assert_eq!(holders.sum(), 0);
    }

    #[test]
    fn a_half_written_claim_is_a_free_slot() {
        let holders = table();
        // Killed between the two steps of a claim, by a process that started at another
        // time than this one: only `start` was written.
        let me = Holder::me();
        let home = me.pid as usize % HOLDER_SLOTS;
        holders
            .slot(home)
            .write_start_only(me.start.wrapping_add(7));
        assert_eq!(holders.sum(), 0);
        assert!(!holders.any_dead());
        let mut taken = 0;
        holders.reap(|_, _| taken += 1);
        assert_eq!(taken, 0, "a free slot was reaped");
        // The next claim takes it whole, with this process's start time.
        assert_eq!(holders.add(), Some(home));
        assert!(holders.remove(home));
    }

    #[test]
    fn a_slot_of_this_pid_with_another_start_is_a_dead_predecessors() {
        let holders = table();
        let me = Holder::me();
        if me.start == 0 {
            return; // The platform cannot tell processes of one pid apart.
        }
        let home = me.pid as usize % HOLDER_SLOTS;
        let predecessor = Holder {
            pid: me.pid,
            start: me.start + 1,
        };
        holders.slot(home).write(predecessor, 3);
        // Not this process's: its holds go elsewhere, and it gives none of the other's up.
        let mine = holders.add().unwrap();
        assert_ne!(mine, home);
        assert!(!holders.remove(home));
        assert!(holders.any_dead());
        let mut taken = Vec::new();
        holders.reap(|pid, count| taken.push((pid, count)));
        assert_eq!(taken, [(me.pid, 3)]);
        assert_eq!(
            holders.held_by(me.pid),
            1,
            "this process's own hold was reaped"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_live_pid_with_another_start_time_is_reaped_and_the_right_one_is_not() {
        let holders = table();
        let stranger = live_stranger();
        if stranger.start == 0 {
            return; // The platform cannot tell processes of one pid apart.
        }
        holders.slot(0).write(stranger, 1);
        holders.slot(1).write(
            Holder {
                pid: stranger.pid,
                start: stranger.start + 1,
            },
            2,
        );
        let mut taken = Vec::new();
        holders.reap(|pid, count| taken.push((pid, count)));
        assert_eq!(taken, [(stranger.pid, 2)], "only the recycled pid's slot");
        assert_eq!(holders.held_by(stranger.pid), 1);
        assert!(!holders.any_dead());
    }
}
