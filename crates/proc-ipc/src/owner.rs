//! Which process a slot of a shared table belongs to, told apart from a later process that
//! the system gave the same pid: the slots of a ring's backlogs and of a channel's ends.
//!
//! # An owner is a pid and a start time
//!
//! Once a process is dead, the system may give its pid to another. A slot that named its
//! owner by the pid alone would then take that stranger for the owner: a dead producer's
//! backlog would be counted for as long as the stranger lives (a `join` waits for items that
//! died with it), and a dead sender would keep its channel open. So a slot names its owner
//! by the pid and the start time ([`start_time`], cached per process), and an owner counts as
//! alive only when its pid runs and the process that has it started then
//! ([`pid_alive_since`]).
//!
//! # The claim protocol
//!
//! An [`Owner`] is two words: `word`, the pid in the low half and the low 31 bits of the
//! start time above it (0 when free), and `start`, the whole start time. The two cannot
//! change in one atomic step, and the tables are claimed without a lock between processes,
//! so a claim goes in three steps:
//!
//! 1. a compare-and-swap of `word` from what the claimer saw (free, or a dead owner's) to
//!    [`CLAIMING`] with the claimer's pid and low start bits: the slot is its own from then
//!    on, and nobody reads its counts;
//! 2. the start time, and the counts reset by the table;
//! 3. `word` without the mark: the slot is settled.
//!
//! A settled slot is judged by its pid and whole start time. A claim under way carries no
//! whole start time yet: it is judged by the pid and the start time's low bits in the word
//! itself, so a claimer killed in the middle of its claim frees the slot even when its pid
//! went to another process at once (unless that process started a multiple of 2^31 ticks or
//! microseconds later, to the tick: 248 days on Linux, 36 minutes to the microsecond on
//! macOS and FreeBSD). Readers read `word`, `start` and `word` again, and pass over a slot
//! whose `word` moved meanwhile.
//!
//! Threads of one process claim one at a time (a lock in the process), so that a process
//! has one slot per table and a second thread finds the slot that the first one claimed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use proc_core::shared::{Instance, pid_alive, start_time_of};

/// The mark of a slot whose claim is under way.
const CLAIMING: u64 = 1 << 63;

/// The bits of the start time that the word holds above the pid.
const LOW_START: u64 = (1 << 31) - 1;

/// The settled word that names `who`.
fn settled(who: Instance) -> u64 {
    u64::from(who.pid) | ((who.start & LOW_START) << 32)
}

/// Whether the claimer that `word` (marked [`CLAIMING`]) names still runs, as far as the
/// low bits of its start time in the word tell.
fn claimer_alive(word: u64) -> bool {
    let pid = word as u32;
    let low = (word >> 32) & LOW_START;
    pid_alive(pid) && (low == 0 || start_time_of(pid).is_none_or(|s| s & LOW_START == low))
}

/// The owner of one slot (see the module docs); all zeros is a free slot.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Owner {
    /// The pid and the start time's low bits; [`CLAIMING`] while a claim is under way; 0 free.
    word: AtomicU64,
    /// The whole start time of the process that `word` names, once the claim is settled.
    start: AtomicU64,
}

impl Owner {
    /// The settled owner, if any: `None` when the slot is free, being claimed, or changed
    /// while it was read.
    pub(crate) fn get(&self) -> Option<Instance> {
        let word = self.word.load(Ordering::Acquire);
        if word == 0 || word & CLAIMING != 0 {
            return None;
        }
        let start = self.start.load(Ordering::Acquire);
        (self.word.load(Ordering::Acquire) == word).then_some(Instance {
            pid: word as u32,
            start,
        })
    }

    /// Whether the slot is this process's.
    pub(crate) fn is_mine(&self) -> bool {
        self.get() == Some(Instance::me())
    }

    /// Whether the slot is settled and its owner still runs.
    pub(crate) fn alive(&self) -> bool {
        self.get().is_some_and(Instance::alive)
    }

    /// What `word` holds when the slot may be claimed: free, settled with a dead owner, or
    /// claimed by a process that died in the middle. `None` when a live process has it.
    fn claimable(&self) -> Option<u64> {
        let word = self.word.load(Ordering::Acquire);
        let free = if word == 0 {
            true
        } else if word & CLAIMING != 0 {
            !claimer_alive(word)
        } else {
            let start = self.start.load(Ordering::Acquire);
            self.word.load(Ordering::Acquire) == word
                && !Instance {
                    pid: word as u32,
                    start,
                }
                .alive()
        };
        free.then_some(word)
    }

    /// Makes the slot this process's if it still holds `seen`: the mark, then the start time
    /// and `reset` (the table's counts), then the settled word.
    fn claim(&self, seen: u64, reset: impl FnOnce()) -> bool {
        let me = Instance::me();
        if self
            .word
            .compare_exchange(
                seen,
                CLAIMING | settled(me),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return false;
        }
        self.start.store(me.start, Ordering::Release);
        reset();
        self.word.store(settled(me), Ordering::Release);
        true
    }

    /// Writes the owner as a settled claim by `who` would, for tests that stand in for
    /// another process or a recycled pid.
    #[cfg(test)]
    pub(crate) fn set(&self, who: Instance) {
        self.start.store(who.start, Ordering::Release);
        self.word.store(settled(who), Ordering::Release);
    }

    /// Writes the owner as a claim by `who` left it when `who` stopped after the mark.
    #[cfg(test)]
    pub(crate) fn set_claiming(&self, who: Instance) {
        self.word.store(CLAIMING | settled(who), Ordering::Release);
    }

    /// Whether the slot is marked as being claimed.
    #[cfg(test)]
    pub(crate) fn is_claiming(&self) -> bool {
        self.word.load(Ordering::Acquire) & CLAIMING != 0
    }
}

/// The slot among `slots` that is this process's, if any; `owner` gives a slot's [`Owner`].
pub(crate) fn mine<S>(slots: &[S], owner: impl Fn(&S) -> &Owner) -> Option<&S> {
    slots.iter().find(|s| owner(s).is_mine())
}

/// This process's slot among `slots`, claimed if it has none: a free one, or one whose
/// owner died (`reset` then clears the table's counts in it before it is settled). `None`
/// when live processes hold every slot.
pub(crate) fn claim<S>(
    slots: &[S],
    owner: impl Fn(&S) -> &Owner,
    reset: impl Fn(&S),
) -> Option<&S> {
    // Threads of this process claim one at a time, so that none claims a second slot while
    // another thread settles the first.
    static CLAIM: Mutex<()> = Mutex::new(());
    if let Some(slot) = mine(slots, &owner) {
        return Some(slot);
    }
    let _claim = CLAIM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(slot) = mine(slots, &owner) {
        return Some(slot);
    }
    slots.iter().find(|slot| {
        let owner = owner(slot);
        owner
            .claimable()
            .is_some_and(|seen| owner.claim(seen, || reset(slot)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_core::shared::{pid, start_time};

    fn claim_one(owners: &[Owner]) -> Option<usize> {
        let got = claim(owners, |o| o, |_| {})?;
        owners.iter().position(|o| std::ptr::eq(o, got))
    }

    fn table() -> Vec<Owner> {
        (0..4)
            .map(|_| Owner {
                word: AtomicU64::new(0),
                start: AtomicU64::new(0),
            })
            .collect()
    }

    #[test]
    fn a_process_claims_one_slot_and_finds_it_again() {
        let owners = table();
        assert_eq!(claim_one(&owners), Some(0));
        assert_eq!(claim_one(&owners), Some(0));
        assert!(owners[0].is_mine() && owners[0].alive());
        assert_eq!(owners[0].get(), Some(Instance::me()));
        assert!(mine(&owners, |o| o).is_some_and(|o| std::ptr::eq(o, &owners[0])));
    }

    /// This process's pid with another start time is what a recycled pid looks like: a live
    /// pid, and a dead owner.
    #[test]
    fn a_live_pid_with_another_start_time_is_a_dead_owner() {
        if start_time() == 0 {
            return; // The platform cannot tell processes of one pid apart.
        }
        let owners = table();
        let earlier = Instance {
            pid: pid(),
            start: start_time() + 1,
        };
        owners[0].set(earlier);
        assert!(!owners[0].alive() && !owners[0].is_mine());
        assert_eq!(
            claim_one(&owners),
            Some(0),
            "the dead owner's slot is taken over"
        );
        assert!(owners[0].is_mine());
        // A claim under way by that process, stopped after its mark, is free too: the low
        // bits of the start time in the mark tell it from this one.
        let owners = table();
        owners[0].set_claiming(earlier);
        if earlier.start & LOW_START != 0 {
            assert_eq!(
                claim_one(&owners),
                Some(0),
                "the dead claimer's slot is free"
            );
            assert!(owners[0].is_mine());
        }
    }

    #[test]
    fn a_live_claimers_mark_is_left_alone() {
        let owners = table();
        owners[0].set_claiming(Instance::me());
        assert_eq!(owners[0].get(), None, "a claim under way has no owner yet");
        assert_eq!(claim_one(&owners), Some(1));
        assert!(owners[0].is_claiming());
    }

    #[test]
    fn a_dead_claimers_mark_is_a_free_slot() {
        let owners = table();
        owners[0].set_claiming(Instance {
            pid: i32::MAX as u32 - 1,
            start: 7,
        });
        assert_eq!(claim_one(&owners), Some(0));
        assert!(owners[0].is_mine());
    }
}
