//! The board a pool and one worker share.
//!
//! - A word per place in the worker's line of tasks, so that a task sent ahead can still be
//!   cancelled, or given to another worker when this one dies: whoever changes its word
//!   first wins, the worker starting it or the pool taking it back.
//! - Two rings of records, one per direction: tasks from the pool to the worker, answers
//!   from the worker to the pool. A record without handles is written into the ring instead
//!   of the link, so that while both sides are busy neither makes a system call for it: a
//!   small one always, a large one (a chunk of `map`, or its answer) when the ring has room
//!   for it and still for every small record the other side may be owed. A reader about to sleep on the link says so in its ring; a writer that puts a
//!   record while the reader sleeps wakes it with an empty frame on the link. A record that
//!   goes by the link instead (too large, or holding handles) leaves a mark in the ring
//!   first, and the reader takes records in ring order, reading the link at each mark: so
//!   records keep their order whichever way each one went. An answer in the ring outlives a
//!   worker that dies after writing it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use proc_core::shared::Segment;
use proc_core::{Error, Handle, Result};

/// Places on the board; more than a worker is ever sent ahead, so a place is used again
/// only after its task was answered.
pub(crate) const PLACES: usize = 64;

const QUEUED: u32 = 1;
const STARTED: u32 = 2;
const CANCELLED: u32 = 3;

/// Where the words of one ring are from its start, each on a cache line of its own: its
/// reader's "I sleep" flag, its read position (the reader's) and its write position (the
/// writer's); its bytes follow.
const SLEEPING: usize = 0;
const HEAD: usize = 64;
const TAIL: usize = 128;
const DATA: usize = 256;
/// How many bytes a ring holds: room for a large record or two (a `map` chunk of a few
/// hundred thousand small items) besides the reserve of small ones.
pub(crate) const RING: usize = 1024 * 1024;
/// Where the rings are: after the places' words, the tasks (whose positions are then in the
/// board's first page with the words), then the answers.
const TASKS: usize = 256;
const ANSWERS: usize = TASKS + DATA + RING;
const SIZE: usize = ANSWERS + DATA + RING;

/// The largest small record (with its length, it takes 4 more bytes). A worker has at most
/// a handful of tasks unanswered (the pool sends few ahead), so their tasks, and their
/// answers, always fit a ring together.
pub(crate) const MAX_RECORD: usize = 4 * 1024;

/// The room a large record must leave free in its ring: every small record (or mark) the
/// ring may have to take besides, so that putting one always succeeds as before.
pub(crate) const RESERVE: usize = (PLACES + 2) * (4 + MAX_RECORD);

// A worker owes at most one answer per place, plus its initializer's and a retiring note,
// and is sent at most a task per place, plus its initializer and the word to end: all of
// them at their largest fit a ring together.
const _: () = assert!(RESERVE < RING / 2);
const _: () = assert!(PLACES * 4 <= TASKS);

/// What a reader takes from a ring: a record (its bytes, or `()` when they went into the
/// reader's buffer, see [`Ring::take_into`]), or a mark.
#[derive(Debug, PartialEq)]
pub(crate) enum Taken<B = Vec<u8>> {
    /// A record.
    Record(B),
    /// The next record is on the link.
    OnLink,
}

/// The shared memory of a pool and one of its workers.
#[derive(Debug)]
pub(crate) struct Board {
    segment: Segment,
}

/// One direction's ring on a board. One process writes it and the other reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring<'a> {
    segment: &'a Segment,
    /// Where the ring starts in the segment.
    at: usize,
    /// What it carries, for error messages.
    what: &'static str,
}

impl Board {
    /// A new board, every place free and both rings empty.
    ///
    /// The pages the pool writes (the places' words and the task ring) are touched here,
    /// one by one, while the pool starts: otherwise the first tasks through the ring would
    /// fault each page in (a page allocated, zeroed and mapped), hundreds of faults in the
    /// first `map` of a new pool that every later one is spared. The pages the pool only
    /// reads (the answers' ring) the worker touches (see [`Board::from_handle`]): a page
    /// that exists is mapped for a reader sixteen at a time.
    pub(crate) fn new() -> Result<Board> {
        let board = Board {
            segment: Segment::anonymous(SIZE)?,
        };
        // SAFETY: no other process has the board yet, and it is all zeros, as written.
        unsafe { board.zero(0, ANSWERS) };
        Ok(board)
    }

    /// The board behind `handle`, sent by the pool.
    ///
    /// The worker touches the bytes of its answers' ring here, before it writes any answer,
    /// so that its first answers do not fault each page in (see [`Board::new`]).
    pub(crate) fn from_handle(handle: Handle) -> Result<Board> {
        let board = Board {
            segment: Segment::from_handle(handle, SIZE)?,
        };
        // SAFETY: the answers' ring has no record yet (the worker is its only writer and has
        // written none), so the pool reads none of its bytes; they are zeros, as written.
        unsafe { board.zero(ANSWERS + DATA, RING) };
        Ok(board)
    }

    /// Writes zeros over `len` bytes from `at`, one per page, so that the pages are mapped
    /// in this process from now on.
    ///
    /// # Safety
    ///
    /// `at + len` is at most `SIZE`, and no other process reads or writes these bytes now
    /// (their value stays zero: this only maps them).
    unsafe fn zero(&self, at: usize, len: usize) {
        // The smallest page of any platform: touching more often than the pages are large
        // costs only the extra writes.
        const PAGE: usize = 4096;
        for offset in (at..at + len).step_by(PAGE) {
            // SAFETY: `offset` is inside the mapping (`at + len <= SIZE`, as promised), and
            // no one else touches the byte now.
            unsafe { self.segment.as_ptr().add(offset).write_volatile(0) };
        }
    }

    /// A handle to send the board to a worker.
    pub(crate) fn handle(&self) -> Result<Handle> {
        self.segment.handle().try_clone()
    }

    /// The worker's answers to the pool.
    pub(crate) fn answers(&self) -> Ring<'_> {
        Ring {
            segment: &self.segment,
            at: ANSWERS,
            what: "answer",
        }
    }

    /// The pool's tasks for the worker.
    pub(crate) fn tasks(&self) -> Ring<'_> {
        Ring {
            segment: &self.segment,
            at: TASKS,
            what: "task",
        }
    }

    fn word(&self, place: usize) -> &AtomicU32 {
        let place = place % PLACES;
        // SAFETY: the mapping holds `SIZE` bytes (checked when it was mapped), more than
        // `PLACES` words; it is page-aligned and lives as long as `self`; an `AtomicU32` is
        // valid for any bits, and every process touches these words only atomically.
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

    /// The pool: takes back the task on `place` if the worker has not started it (to cancel
    /// it, or to give it to another worker).
    pub(crate) fn cancel(&self, place: usize) -> bool {
        self.word(place)
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Ring<'_> {
    fn sleeping(&self) -> &AtomicU32 {
        // SAFETY: as in `Board::word`: `at + SLEEPING` is a 4-aligned offset inside the
        // mapping.
        unsafe {
            &*self
                .segment
                .as_ptr()
                .add(self.at + SLEEPING)
                .cast::<AtomicU32>()
        }
    }

    fn position(&self, which: usize) -> &AtomicU64 {
        debug_assert!(which == HEAD || which == TAIL);
        // SAFETY: as in `Board::word`: `at + HEAD` and `at + TAIL` are 8-aligned offsets
        // inside the mapping, and the positions are only touched atomically.
        unsafe {
            &*self
                .segment
                .as_ptr()
                .add(self.at + which)
                .cast::<AtomicU64>()
        }
    }

    /// The writer: puts `record` in the ring; `false` when it is empty or there is no room
    /// (then it goes by the link). A record larger than [`MAX_RECORD`] must leave
    /// [`RESERVE`] bytes free. Afterwards, see [`Ring::wake_reader`].
    pub(crate) fn put(&self, record: &[u8]) -> bool {
        // An empty record is the mark of `put_mark`.
        if record.is_empty() || (record.len() > MAX_RECORD && !self.has_room_for(record.len())) {
            return false;
        }
        self.put_bytes(record)
    }

    /// The writer: whether a large record of `len` bytes would go into the ring now, leaving
    /// [`RESERVE`] free. The reader only ever makes more room, so the answer holds until the
    /// writer puts something.
    pub(crate) fn has_room_for(&self, len: usize) -> bool {
        self.room() >= RESERVE.saturating_add(4).saturating_add(len)
    }

    /// The writer: the bytes free in the ring (0 when the reader broke its position).
    pub(crate) fn room(&self) -> usize {
        let head = self.position(HEAD).load(Ordering::Acquire);
        let tail = self.position(TAIL).load(Ordering::Relaxed);
        let used = tail.wrapping_sub(head);
        (RING as u64).saturating_sub(used) as usize
    }

    /// The writer: marks the place of a record that goes by the link; `false` when the
    /// ring is full (its reader has not read it for a while, or broke it).
    pub(crate) fn put_mark(&self) -> bool {
        self.put_bytes(&[])
    }

    fn put_bytes(&self, record: &[u8]) -> bool {
        let head = self.position(HEAD).load(Ordering::Acquire);
        let tail = self.position(TAIL).load(Ordering::Relaxed);
        let used = tail.wrapping_sub(head);
        let need = (4 + record.len()) as u64;
        // A reader that wrote nonsense into `HEAD` makes `used` huge: the link then.
        if used > RING as u64 || RING as u64 - used < need {
            return false;
        }
        let len = (record.len() as u32).to_le_bytes();
        self.write_at(tail, &len);
        // The positions grow without end and only their difference counts: wrapping, so
        // that a peer's nonsense in them cannot overflow.
        self.write_at(tail.wrapping_add(4), record);
        self.position(TAIL)
            .store(tail.wrapping_add(need), Ordering::Release);
        true
    }

    /// The writer, after [`Ring::put`]: whether the reader sleeps on the link and must be
    /// woken through it, which the caller then does. Either the reader sees the record
    /// before it sleeps, or this sees it sleeping (both sides store, fence, then load). The
    /// flag is taken down here: one wake-up for one sleep, however many records follow
    /// before the reader runs again.
    pub(crate) fn wake_reader(&self) -> bool {
        fence(Ordering::SeqCst);
        self.sleeping().load(Ordering::SeqCst) != 0
            && self.sleeping().swap(0, Ordering::SeqCst) != 0
    }

    /// The reader: whether it is about to sleep on the link (`true`) or awake again.
    pub(crate) fn set_reader_sleeping(&self, sleeping: bool) {
        self.sleeping().store(u32::from(sleeping), Ordering::SeqCst);
    }

    /// The reader: whether records wait in the ring. After `set_reader_sleeping(true)`, a
    /// record put since is seen here or wakes the reader through the link.
    pub(crate) fn has_records(&self) -> bool {
        fence(Ordering::SeqCst);
        self.position(TAIL).load(Ordering::SeqCst) != self.position(HEAD).load(Ordering::Relaxed)
    }

    /// The reader: takes the oldest record in the ring.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when the writer's positions or lengths are out of range: a
    /// writer that puts garbage there is treated as broken.
    #[cfg(test)]
    pub(crate) fn take(&self) -> Result<Option<Taken>> {
        let mut record = Vec::new();
        Ok(self.take_into(&mut record)?.map(|taken| match taken {
            Taken::Record(()) => Taken::Record(record),
            Taken::OnLink => Taken::OnLink,
        }))
    }

    /// Like [`take`](Ring::take), with the record's bytes put in `record` (emptied first)
    /// instead of a new vector: a reader that takes one large record after another writes
    /// each into memory it touched for the one before, instead of memory that the kernel
    /// must fault in page by page. `record` is left as it was unless a record is taken.
    ///
    /// # Errors
    ///
    /// As [`take`](Ring::take).
    pub(crate) fn take_into(&self, record: &mut Vec<u8>) -> Result<Option<Taken<()>>> {
        let head = self.position(HEAD).load(Ordering::Relaxed);
        let tail = self.position(TAIL).load(Ordering::Acquire);
        if tail == head {
            return Ok(None);
        }
        let used = tail.wrapping_sub(head);
        if used < 4 || used > RING as u64 {
            return Err(Error::Protocol(format!(
                "a worker's {} ring holds {used} bytes, out of range",
                self.what
            )));
        }
        let mut len = [0u8; 4];
        self.read_at(head, &mut len);
        let len = u32::from_le_bytes(len) as usize;
        if 4 + len as u64 > used {
            return Err(Error::Protocol(format!(
                "a worker's {} ring holds a record of {len} bytes in {used}",
                self.what
            )));
        }
        if len == 0 {
            self.position(HEAD)
                .store(head.wrapping_add(4), Ordering::Release);
            return Ok(Some(Taken::OnLink));
        }
        // Straight into the buffer, not zeroed first (a buffer that left with the record
        // before it is new here, and zeroing it cost an allocator's `calloc` per record).
        record.clear();
        record.reserve(len);
        // SAFETY: `record` has room for `len` bytes (reserved above), which `copy_out`
        // writes all of (`len` is at most `RING`: it fits `used`, checked above); they are
        // plain bytes, so once written they are `len` initialized elements.
        unsafe {
            self.copy_out(head.wrapping_add(4), record.as_mut_ptr(), len);
            record.set_len(len);
        }
        self.position(HEAD)
            .store(head.wrapping_add(4 + len as u64), Ordering::Release);
        Ok(Some(Taken::Record(())))
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: `at + DATA` is inside the mapping (its `RING` bytes end at or before
        // `SIZE`).
        unsafe { self.segment.as_ptr().add(self.at + DATA) }
    }

    /// Copies `src` (at most `RING` bytes) into the ring from position `at` on, wrapping.
    fn write_at(&self, at: u64, src: &[u8]) {
        let off = (at % RING as u64) as usize;
        let first = src.len().min(RING - off);
        // SAFETY: `off + first` and `src.len() - first` are within the ring's `RING` bytes;
        // the ring is plain bytes, and by its protocol the reader reads none of the free
        // part that the writer (its only writer) fills here.
        unsafe {
            let data = self.data();
            std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
        }
    }

    /// Copies ring bytes from position `at` on into `dst` (at most `RING` bytes), wrapping.
    fn read_at(&self, at: u64, dst: &mut [u8]) {
        // SAFETY: `dst` is valid for writes of its own length.
        unsafe { self.copy_out(at, dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `len` ring bytes (at most `RING`) from position `at` on to `dst`, wrapping.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` bytes, and not overlap the ring.
    unsafe fn copy_out(&self, at: u64, dst: *mut u8, len: usize) {
        let off = (at % RING as u64) as usize;
        let first = len.min(RING - off);
        // SAFETY: in bounds as in `write_at` (and `dst` as the caller promises); the bytes
        // were published before the `TAIL` the reader loaded with `Acquire`, and the writer
        // writes none of them again before the reader moves `HEAD` past them. A writer that
        // breaks that protocol can only make the bytes wrong (any byte pattern is a valid
        // `u8`), which decoding then refuses.
        unsafe {
            let data = self.data();
            std::ptr::copy_nonoverlapping(data.add(off), dst, first);
            std::ptr::copy_nonoverlapping(data, dst.add(first), len - first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_out_in_order_across_the_wrap_and_a_full_ring_refuses() {
        let pool = Board::new().unwrap();
        let worker = Board::from_handle(pool.handle().unwrap()).unwrap();
        // Each direction: the writer's view of the board, then the reader's.
        for (writer, reader) in [
            (worker.answers(), pool.answers()),
            (pool.tasks(), worker.tasks()),
        ] {
            let mut next = 0u32;
            let mut expect = 0u32;
            for round in 0..50 {
                // Fill until the ring refuses, then take everything: positions wrap many
                // times.
                let size = 100 + round * 37;
                loop {
                    let record = vec![next as u8; size];
                    if !writer.put(&record) {
                        break;
                    }
                    next += 1;
                }
                assert!(reader.has_records());
                while let Some(record) = reader.take().unwrap() {
                    assert_eq!(record, Taken::Record(vec![expect as u8; size]));
                    expect += 1;
                }
                assert_eq!(expect, next);
                assert!(!reader.has_records());
            }
            // A large record goes in while it leaves the reserve free, and not past that.
            let large = RING - RESERVE - 4;
            assert!(!writer.put(&vec![0; large + 1]));
            assert!(writer.has_room_for(large));
            assert!(writer.put(&vec![2; large]));
            assert!(!writer.has_room_for(1));
            assert!(!writer.put(&vec![0; MAX_RECORD + 1]));
            assert_eq!(reader.take().unwrap(), Some(Taken::Record(vec![2; large])));
            assert!(writer.put(&vec![1; MAX_RECORD]));
            assert!(!writer.put(&[]));
            assert!(writer.put_mark());
            assert_eq!(
                reader.take().unwrap(),
                Some(Taken::Record(vec![1; MAX_RECORD]))
            );
            assert_eq!(reader.take().unwrap(), Some(Taken::OnLink));
            assert_eq!(reader.take().unwrap(), None);
        }
    }

    #[test]
    fn the_two_rings_do_not_share_bytes() {
        let board = Board::new().unwrap();
        assert!(board.tasks().put(b"task"));
        assert!(!board.answers().has_records());
        assert!(board.answers().put(b"answer"));
        board.tasks().set_reader_sleeping(true);
        assert!(!board.answers().wake_reader());
        assert_eq!(
            board.answers().take().unwrap(),
            Some(Taken::Record(b"answer".to_vec()))
        );
        assert_eq!(
            board.tasks().take().unwrap(),
            Some(Taken::Record(b"task".to_vec()))
        );
    }

    // A reader's buffer takes a large record, then a smaller one into the same memory; a
    // mark or an empty ring leaves it as it was.
    #[test]
    fn take_into_reuses_the_readers_buffer() {
        let board = Board::new().unwrap();
        let ring = board.tasks();
        assert!(ring.put(&[7; 3000]));
        assert!(ring.put(b"short"));
        assert!(ring.put_mark());
        let mut record = Vec::new();
        assert_eq!(
            ring.take_into(&mut record).unwrap(),
            Some(Taken::Record(()))
        );
        assert_eq!(record, [7; 3000]);
        let memory = record.as_ptr();
        assert_eq!(
            ring.take_into(&mut record).unwrap(),
            Some(Taken::Record(()))
        );
        assert_eq!((&record[..], record.as_ptr()), (&b"short"[..], memory));
        assert_eq!(ring.take_into(&mut record).unwrap(), Some(Taken::OnLink));
        assert_eq!(ring.take_into(&mut record).unwrap(), None);
        assert_eq!(record, b"short");
    }

    #[test]
    fn a_sleeping_reader_is_woken_once() {
        let board = Board::new().unwrap();
        let ring = board.answers();
        assert!(!ring.wake_reader());
        ring.set_reader_sleeping(true);
        assert!(ring.wake_reader());
        assert!(!ring.wake_reader());
        ring.set_reader_sleeping(true);
        ring.set_reader_sleeping(false);
        assert!(!ring.wake_reader());
    }

    #[test]
    fn a_place_is_started_or_taken_back_never_both() {
        let board = Board::new().unwrap();
        board.queue(3);
        assert!(board.start(3));
        assert!(!board.cancel(3));
        board.queue(4);
        assert!(board.cancel(4));
        assert!(!board.start(4));
    }

    #[test]
    fn positions_near_the_end_of_their_range_wrap() {
        let board = Board::new().unwrap();
        let ring = board.tasks();
        ring.position(HEAD).store(u64::MAX - 2, Ordering::SeqCst);
        ring.position(TAIL).store(u64::MAX - 2, Ordering::SeqCst);
        for round in 0..3u8 {
            assert!(ring.put(&[round; 10]));
            assert_eq!(ring.take().unwrap(), Some(Taken::Record(vec![round; 10])));
        }
        assert!(!ring.has_records());
    }

    #[test]
    fn garbage_positions_and_lengths_are_errors() {
        for ring in [Board::tasks, Board::answers] {
            let board = Board::new().unwrap();
            ring(&board)
                .position(TAIL)
                .store(u64::MAX / 2, Ordering::SeqCst);
            assert!(matches!(ring(&board).take(), Err(Error::Protocol(_))));
            assert!(!ring(&board).put(b"x"));

            let board = Board::new().unwrap();
            ring(&board).write_at(0, &u32::MAX.to_le_bytes());
            ring(&board).position(TAIL).store(8, Ordering::SeqCst);
            assert!(matches!(ring(&board).take(), Err(Error::Protocol(_))));

            let board = Board::new().unwrap();
            ring(&board).write_at(0, &100u32.to_le_bytes());
            ring(&board).position(TAIL).store(50, Ordering::SeqCst);
            assert!(matches!(ring(&board).take(), Err(Error::Protocol(_))));
        }
    }
}
