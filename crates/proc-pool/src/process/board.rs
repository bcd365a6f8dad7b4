//! The board a pool and one worker share: a word per place in the worker's line of tasks,
//! so that a task sent ahead can still be cancelled — whoever changes its word first wins,
//! the worker starting it or the pool cancelling it.

use std::sync::atomic::{AtomicU32, Ordering};

use proc_core::shared::Segment;
use proc_core::{Handle, Result};

/// Places on the board; more than a worker is ever sent ahead, so a place is used again
/// only after its task was answered.
pub(crate) const PLACES: usize = 16;

const QUEUED: u32 = 1;
const STARTED: u32 = 2;
const CANCELLED: u32 = 3;

/// The shared words.
#[derive(Debug)]
pub(crate) struct Board {
    segment: Segment,
}

impl Board {
    /// A new board, every place free.
    pub(crate) fn new() -> Result<Board> {
        Ok(Board {
            segment: Segment::anonymous(PLACES * size_of::<AtomicU32>())?,
        })
    }

    /// The board behind `handle`, sent by the pool.
    pub(crate) fn from_handle(handle: Handle) -> Result<Board> {
        Ok(Board {
            segment: Segment::from_handle(handle, PLACES * size_of::<AtomicU32>())?,
        })
    }

    /// A handle to send the board to a worker.
    pub(crate) fn handle(&self) -> Result<Handle> {
        self.segment.handle().try_clone()
    }

    fn word(&self, place: usize) -> &AtomicU32 {
        let place = place % PLACES;
        // SAFETY: the mapping holds `PLACES` words (checked when it was mapped), is
        // page-aligned and lives as long as `self`; an `AtomicU32` is valid for any bits, and
        // every process touches these words only atomically.
        unsafe { &*self.segment.as_ptr().cast::<AtomicU32>().add(place) }
    }

    /// The pool: a task goes out on `place`.
    pub(crate) fn queue(&self, place: usize) {
        self.word(place).store(QUEUED, Ordering::Release);
    }

    /// The worker: takes the task on `place`; `false` when it was cancelled (skip it).
    pub(crate) fn start(&self, place: usize) -> bool {
        match self.word(place).compare_exchange(
            QUEUED,
            STARTED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(found) => found != CANCELLED,
        }
    }

    /// The pool: cancels the task on `place` if the worker has not started it.
    pub(crate) fn cancel(&self, place: usize) -> bool {
        self.word(place)
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}
