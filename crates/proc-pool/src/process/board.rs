//! The board a pool and one worker share.
//!
//! - A word per place in the worker's line of tasks, so that a task sent ahead can still be
//!   cancelled: whoever changes its word first wins, the worker starting it or the pool
//!   cancelling it.
//! - A ring of answers from the worker to the pool: a small answer without handles is
//!   written here instead of to the link, so that while the pool is busy reading answers
//!   neither side makes a system call for one. The pool says when it goes to sleep on the
//!   link; a worker that puts an answer while it sleeps wakes it with an empty frame. An
//!   answer in the ring outlives a worker that dies after writing it. An answer that goes
//!   by the link instead (too large, or holding handles) leaves a mark in the ring first, and
//!   the pool takes answers in ring order, reading the link at each mark: so answers keep
//!   their order whichever way each one went.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use proc_core::shared::Segment;
use proc_core::{Error, Handle, Result};

/// Places on the board; more than a worker is ever sent ahead, so a place is used again
/// only after its task was answered.
pub(crate) const PLACES: usize = 16;

const QUEUED: u32 = 1;
const STARTED: u32 = 2;
const CANCELLED: u32 = 3;

/// Where the words are, each on a cache line of its own: the pool's "I sleep" flag, the
/// ring's read position (the pool's) and its write position (the worker's).
const SLEEPING: usize = 64;
const HEAD: usize = 128;
const TAIL: usize = 192;
/// Where the ring's bytes begin, and how many there are.
const DATA: usize = 256;
const RING: usize = 128 * 1024;
/// The largest answer that goes through the ring (with its length, it takes 4 more bytes).
/// A worker has at most a handful of tasks unanswered (the pool sends few ahead), so their
/// answers always fit the ring together.
pub(crate) const MAX_RING_ANSWER: usize = 4 * 1024;

const SIZE: usize = DATA + RING;

// A worker owes at most one answer per place, plus its initializer's and a retiring note:
// all of them at their largest fit the ring together.
const _: () = assert!((PLACES + 2) * (4 + MAX_RING_ANSWER) <= RING);

/// What the pool takes from the ring.
#[derive(Debug, PartialEq)]
pub(crate) enum Taken {
    /// An answer.
    Answer(Vec<u8>),
    /// The next answer is on the link.
    OnLink,
}

/// The shared words.
#[derive(Debug)]
pub(crate) struct Board {
    segment: Segment,
}

impl Board {
    /// A new board, every place free and the ring empty.
    pub(crate) fn new() -> Result<Board> {
        Ok(Board {
            segment: Segment::anonymous(SIZE)?,
        })
    }

    /// The board behind `handle`, sent by the pool.
    pub(crate) fn from_handle(handle: Handle) -> Result<Board> {
        Ok(Board {
            segment: Segment::from_handle(handle, SIZE)?,
        })
    }

    /// A handle to send the board to a worker.
    pub(crate) fn handle(&self) -> Result<Handle> {
        self.segment.handle().try_clone()
    }

    fn word(&self, place: usize) -> &AtomicU32 {
        let place = place % PLACES;
        // SAFETY: the mapping holds `SIZE` bytes (checked when it was mapped), more than
        // `PLACES` words; it is page-aligned and lives as long as `self`; an `AtomicU32` is
        // valid for any bits, and every process touches these words only atomically.
        unsafe { &*self.segment.as_ptr().cast::<AtomicU32>().add(place) }
    }

    fn sleeping(&self) -> &AtomicU32 {
        // SAFETY: as in `word`: `SLEEPING` is a 4-aligned offset inside the mapping.
        unsafe { &*self.segment.as_ptr().add(SLEEPING).cast::<AtomicU32>() }
    }

    fn position(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at == HEAD || at == TAIL);
        // SAFETY: as in `word`: `HEAD` and `TAIL` are 8-aligned offsets inside the mapping,
        // and the positions are only touched atomically.
        unsafe { &*self.segment.as_ptr().add(at).cast::<AtomicU64>() }
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

    /// The worker: puts `answer` in the ring; `false` when it is too large or there is no
    /// room (then it goes by the link). Afterwards, see [`Board::pool_sleeps`].
    pub(crate) fn put_answer(&self, answer: &[u8]) -> bool {
        // Every answer has a header; an empty record is the mark of `put_mark`.
        if answer.is_empty() || answer.len() > MAX_RING_ANSWER {
            return false;
        }
        self.put(answer)
    }

    /// The worker: marks the place of an answer that goes by the link; `false` when the
    /// ring is full (the pool has not read it for a while).
    pub(crate) fn put_mark(&self) -> bool {
        self.put(&[])
    }

    fn put(&self, answer: &[u8]) -> bool {
        let head = self.position(HEAD).load(Ordering::Acquire);
        let tail = self.position(TAIL).load(Ordering::Relaxed);
        let used = tail.wrapping_sub(head);
        let need = (4 + answer.len()) as u64;
        // A pool that wrote nonsense into `HEAD` makes `used` huge: the link then.
        if used > RING as u64 || RING as u64 - used < need {
            return false;
        }
        let len = (answer.len() as u32).to_le_bytes();
        self.write_at(tail, &len);
        self.write_at(tail + 4, answer);
        self.position(TAIL).store(tail + need, Ordering::Release);
        true
    }

    /// The worker, after [`Board::put_answer`]: whether the pool sleeps on the link and must
    /// be woken through it. Either the pool sees the answer before it sleeps, or this sees it
    /// sleeping (both sides store, fence, then load).
    pub(crate) fn pool_sleeps(&self) -> bool {
        fence(Ordering::SeqCst);
        self.sleeping().load(Ordering::SeqCst) != 0
    }

    /// The pool: whether it is about to sleep on the link (`true`) or awake again.
    pub(crate) fn set_pool_sleeping(&self, sleeping: bool) {
        self.sleeping().store(u32::from(sleeping), Ordering::SeqCst);
    }

    /// The pool: whether answers wait in the ring. After `set_pool_sleeping(true)`, an answer
    /// put since is seen here or wakes the pool through the link.
    pub(crate) fn has_answers(&self) -> bool {
        fence(Ordering::SeqCst);
        self.position(TAIL).load(Ordering::SeqCst) != self.position(HEAD).load(Ordering::Relaxed)
    }

    /// The pool: takes the oldest answer in the ring.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when the worker's positions or lengths are out of range: a
    /// worker that writes garbage there is treated as broken.
    pub(crate) fn take_answer(&self) -> Result<Option<Taken>> {
        let head = self.position(HEAD).load(Ordering::Relaxed);
        let tail = self.position(TAIL).load(Ordering::Acquire);
        if tail == head {
            return Ok(None);
        }
        let used = tail.wrapping_sub(head);
        if used < 4 || used > RING as u64 {
            return Err(Error::Protocol(format!(
                "a worker's answer ring holds {used} bytes, out of range"
            )));
        }
        let mut len = [0u8; 4];
        self.read_at(head, &mut len);
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RING_ANSWER || (4 + len) as u64 > used {
            return Err(Error::Protocol(format!(
                "a worker's answer ring holds an answer of {len} bytes in {used}"
            )));
        }
        let mut answer = vec![0u8; len];
        self.read_at(head + 4, &mut answer);
        self.position(HEAD)
            .store(head + 4 + len as u64, Ordering::Release);
        Ok(Some(if len == 0 {
            Taken::OnLink
        } else {
            Taken::Answer(answer)
        }))
    }

    /// Copies `src` (at most `RING` bytes) into the ring from position `at` on, wrapping.
    fn write_at(&self, at: u64, src: &[u8]) {
        let off = (at % RING as u64) as usize;
        let first = src.len().min(RING - off);
        // SAFETY: `DATA + off + first` and `DATA + src.len() - first` are within the
        // mapping's `SIZE` bytes; the ring is plain bytes, and by its protocol the pool
        // reads none of the free part that the worker (its only writer) fills here.
        unsafe {
            let data = self.segment.as_ptr().add(DATA);
            std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
        }
    }

    /// Copies ring bytes from position `at` on into `dst` (at most `RING` bytes), wrapping.
    fn read_at(&self, at: u64, dst: &mut [u8]) {
        let off = (at % RING as u64) as usize;
        let first = dst.len().min(RING - off);
        // SAFETY: in bounds as in `write_at`; the bytes were published before the `TAIL`
        // the pool loaded with `Acquire`, and the worker writes none of them again before
        // the pool moves `HEAD` past them. A worker that breaks that protocol can only make
        // the bytes wrong (any byte pattern is a valid `u8`), which decoding then refuses.
        unsafe {
            let data = self.segment.as_ptr().add(DATA);
            std::ptr::copy_nonoverlapping(data.add(off), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_out_in_order_across_the_wrap_and_a_full_ring_refuses() {
        let board = Board::new().unwrap();
        let worker = Board::from_handle(board.handle().unwrap()).unwrap();
        let mut next = 0u32;
        let mut expect = 0u32;
        for round in 0..50 {
            // Fill until the ring refuses, then take everything: positions wrap many times.
            let size = 100 + round * 37;
            loop {
                let answer = vec![next as u8; size];
                if !worker.put_answer(&answer) {
                    break;
                }
                next += 1;
            }
            assert!(board.has_answers());
            while let Some(answer) = board.take_answer().unwrap() {
                assert_eq!(answer, Taken::Answer(vec![expect as u8; size]));
                expect += 1;
            }
            assert_eq!(expect, next);
            assert!(!board.has_answers());
        }
        assert!(!worker.put_answer(&vec![0; MAX_RING_ANSWER + 1]));
        assert!(worker.put_answer(&vec![1; MAX_RING_ANSWER]));
        assert!(!worker.put_answer(&[]));
        assert!(worker.put_mark());
        assert_eq!(
            board.take_answer().unwrap(),
            Some(Taken::Answer(vec![1; MAX_RING_ANSWER]))
        );
        assert_eq!(board.take_answer().unwrap(), Some(Taken::OnLink));
        assert_eq!(board.take_answer().unwrap(), None);
    }

    #[test]
    fn the_sleeping_flag_is_seen_by_the_worker() {
        let board = Board::new().unwrap();
        assert!(!board.pool_sleeps());
        board.set_pool_sleeping(true);
        assert!(board.pool_sleeps());
        board.set_pool_sleeping(false);
        assert!(!board.pool_sleeps());
    }

    #[test]
    fn garbage_positions_and_lengths_are_errors() {
        let board = Board::new().unwrap();
        board.position(TAIL).store(u64::MAX / 2, Ordering::SeqCst);
        assert!(matches!(board.take_answer(), Err(Error::Protocol(_))));
        assert!(!board.put_answer(b"x"));

        let board = Board::new().unwrap();
        board.write_at(0, &u32::MAX.to_le_bytes());
        board.position(TAIL).store(8, Ordering::SeqCst);
        assert!(matches!(board.take_answer(), Err(Error::Protocol(_))));

        let board = Board::new().unwrap();
        board.write_at(0, &100u32.to_le_bytes());
        board.position(TAIL).store(50, Ordering::SeqCst);
        assert!(matches!(board.take_answer(), Err(Error::Protocol(_))));
    }
}
