//! The ring of shared memory under every process queue.
//!
//! A queue is one anonymous shared memory segment: a control block (positions, locks and
//! wake-up words, each side on its own cache line) followed by a ring of bytes that holds
//! records. A record is a 16-byte header — payload length, flags, and the whole item's
//! length on an item's first record — and the payload, padded to 16 bytes. An item that fits
//! in one record travels as one (`FIRST | LAST`); a larger one as a run of chunks that the
//! producer writes while consumers free room.
//!
//! Producers take turns on `put_lock`, consumers on `get_lock`; both are robust lock words
//! ([`Word::lock`]), so a process that dies holding one stops nobody. What keeps the data
//! whole when a process is killed at any instruction (mechanism 7 of the design):
//!
//! - a producer writes a record in the free part of the ring and then publishes it with one
//!   atomic store of `head`: killed before that store it leaves nothing, after it the whole
//!   record;
//! - a consumer copies a record out and then releases its room with one atomic store of
//!   `tail`: killed before that store it leaves the record to the next consumer, after it the
//!   record was its own (no item is ever delivered twice);
//! - `head` and `tail` pack a byte position with a count of whole items, so that the item
//!   count (`qsize`, `maxsize`, unfinished tasks) moves in the same store as the bytes;
//! - a consumer that meets chunks without their first record (its predecessor died inside
//!   the item) skips them; one that holds part of an item drops it when a new item starts, or
//!   when the put lock is free or its owner dead and no chunk came for a while (the producer
//!   gave up or died inside the item).
//!
//! Every number read from the shared block is checked before use: a peer that scribbles on
//! the memory makes calls fail with [`Error::Protocol`], never read or write outside the
//! ring, and never allocate more than the limit a consumer set.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_core::shared::{Blocking, Parkers, Segment, Word, identity_alive};
use proc_core::{Error, Handle, Result};

use crate::owner::{self, Owner};

/// The number of each word for its `Parkers`.
const PUT_LOCK: usize = 0;
const GET_LOCK: usize = 1;
const NOT_EMPTY: usize = 2;
const NOT_FULL: usize = 3;
const DONE: usize = 4;
const WORDS: usize = 5;

/// Marks a segment as a queue's, so that another kind of segment is refused on arrival.
const MAGIC: u64 = u64::from_le_bytes(*b"procsQ05");

/// How many processes at once can have the items their feeder threads hold counted by every
/// process (see [`Backlogs`]).
const BACKLOG_SLOTS: usize = 64;

/// A position packs a count of whole items above a byte offset that grows without end (both
/// wrap, and only their differences matter).
const BYTE_BITS: u32 = 36;
const BYTE_MASK: u64 = (1 << BYTE_BITS) - 1;
const COUNT_MASK: u64 = (1 << (64 - BYTE_BITS)) - 1;

/// The size of a record header, and the alignment of records.
const REC: u64 = 16;
const FIRST: u32 = 1;
const LAST: u32 = 2;

/// The ring's size unless asked otherwise: a mebibyte, touched only as far as it is used.
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 20;
const MIN_CAPACITY: u64 = 4096;
const MAX_CAPACITY: u64 = 1 << 30;

/// The most items a queue counts at once: put but not gotten, or (for a `JoinableQueue`) put
/// but not marked done. Half the count's range, so that differences never wrap.
pub(crate) const MAX_ITEMS: u64 = COUNT_MASK / 2;

/// The largest item a queue carries.
pub(crate) const MAX_ITEM: usize = 1 << 30;

/// How long a waiter spins before it sleeps: long enough that a steady stream of items
/// passes without a system call on either side.
pub(crate) const SPIN: Duration = Duration::from_micros(30);

/// How long a consumer holding part of an item waits for the next chunk before it checks
/// that the producer still lives.
const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// The longest one sleep lasts before the sleeper looks again by itself. A process killed
/// between publishing a position and bumping its word leaves a sleeper unwoken: it finds the
/// change at its next look.
const RECHECK: Duration = Duration::from_millis(100);

fn pack(count: u64, bytes: u64) -> u64 {
    ((count & COUNT_MASK) << BYTE_BITS) | (bytes & BYTE_MASK)
}

fn bytes_of(pos: u64) -> u64 {
    pos & BYTE_MASK
}

fn count_of(pos: u64) -> u64 {
    pos >> BYTE_BITS
}

/// The bytes between `tail` and `head`.
fn used(head: u64, tail: u64) -> u64 {
    bytes_of(head).wrapping_sub(bytes_of(tail)) & BYTE_MASK
}

/// The whole items between `tail` and `head`.
fn items(head: u64, tail: u64) -> u64 {
    count_of(head).wrapping_sub(count_of(tail)) & COUNT_MASK
}

/// The room a record with `len` bytes of payload takes.
fn record_len(len: u64) -> u64 {
    REC + len.next_multiple_of(REC)
}

/// A position and the word that is bumped whenever it moves.
#[repr(C, align(64))]
struct Side {
    pos: AtomicU64,
    moved: Word,
    /// On the head's side only: a `tail` that a producer read, kept under the put lock, so
    /// that a put that finds room by it does not read the consumers' cache line (a miss on
    /// every item while a consumer keeps up). Consumers only move `tail` forward and a
    /// producer moves `head` only within the room this leaves, so it stays within the
    /// capacity behind `head` and never says there is more room than there is.
    seen: AtomicU64,
}

#[repr(C, align(64))]
struct Lone {
    word: Word,
}

#[repr(C, align(64))]
struct Fixed {
    magic: AtomicU64,
    capacity: AtomicU64,
    maxsize: AtomicU64,
    /// [`OPEN`], [`SHUT`] or [`SHUT_NOW`]; it only grows.
    shutdown: AtomicU64,
}

/// The states of a ring's `shutdown` (Python 3.13's `Queue.shutdown`): puts fail once it is
/// shut, gets once it is also empty, or at once when shut immediately.
const OPEN: u64 = 0;
const SHUT: u64 = 1;
const SHUT_NOW: u64 = 2;

/// The items that producers' feeder threads hold and have not written into the ring yet,
/// one slot per producing process, so that `qsize`, `unfinished_tasks` and `join` in every
/// process count them from the moment of `put`, as Python's do.
///
/// A slot is an owner (a pid and a start time, see [`owner`]) and a count,
/// claimed by a process on its first backlog and kept. The count of a dead process is not
/// counted (its backlog died with it, and a `join` must not wait for it), even when its pid
/// went to another process, and its slot goes to the next process that needs one.
#[repr(C, align(64))]
struct Backlogs {
    slots: [Backlog; BACKLOG_SLOTS],
}

#[repr(C)]
struct Backlog {
    owner: Owner,
    items: AtomicU32,
}

/// The control block at the start of the segment; all zeros is a valid (empty) state.
#[repr(C)]
struct Control {
    fixed: Fixed,
    head: Side,
    tail: Side,
    put_lock: Lone,
    get_lock: Lone,
    done: Lone,
    backlogs: Backlogs,
}

const CONTROL: u64 = std::mem::size_of::<Control>() as u64;

/// What a wait saw.
enum Waited<R> {
    Ready(R),
    /// The deadline passed.
    Expired,
    /// A slice passed with nothing ready.
    Slice,
}

/// The process-local view of one queue's shared memory.
pub(crate) struct Ring {
    segment: Segment,
    parkers: Parkers,
    /// Read once from the control block: later changes by a peer do not move the bounds.
    capacity: u64,
    maxsize: u64,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("maxsize", &self.maxsize)
            .field("items", &self.items())
            .finish()
    }
}

impl Ring {
    /// A new empty ring of `capacity` bytes (rounded to what rings can be) for at most
    /// `maxsize` items (0: no limit but [`MAX_ITEMS`]).
    pub(crate) fn new(capacity: usize, maxsize: usize) -> Result<Ring> {
        let capacity = (capacity as u64)
            .next_multiple_of(REC)
            .clamp(MIN_CAPACITY, MAX_CAPACITY);
        let maxsize = maxsize as u64;
        if maxsize > MAX_ITEMS {
            return Err(Error::InvalidState(
                "a queue's maxsize may be at most 2^27 items",
            ));
        }
        let len = usize::try_from(CONTROL + capacity)
            .map_err(|_| Error::InvalidState("queue too large for this platform"))?;
        let ring = Ring {
            segment: Segment::anonymous(len)?,
            parkers: Parkers::new(WORDS)?,
            capacity,
            maxsize,
        };
        let fixed = &ring.control().fixed;
        fixed.capacity.store(capacity, Ordering::Relaxed);
        fixed.maxsize.store(maxsize, Ordering::Relaxed);
        fixed.magic.store(MAGIC, Ordering::Release);
        Ok(ring)
    }

    /// The ring whose segment and parkers arrived from another process, checked.
    pub(crate) fn from_parts(handle: Handle, len: u64, parkers: Parkers) -> Result<Ring> {
        let corrupt = |what: &str| Error::Decode(format!("not a queue: {what}"));
        if !(CONTROL + MIN_CAPACITY..=CONTROL + MAX_CAPACITY).contains(&len) {
            return Err(corrupt("its shared memory has the wrong size"));
        }
        let len = usize::try_from(len).map_err(|_| corrupt("too large for this platform"))?;
        let segment = Segment::from_handle(handle, len)?;
        let mut ring = Ring {
            segment,
            parkers,
            capacity: 0,
            maxsize: 0,
        };
        let fixed = &ring.control().fixed;
        let (magic, capacity, maxsize) = (
            fixed.magic.load(Ordering::Acquire),
            fixed.capacity.load(Ordering::Relaxed),
            fixed.maxsize.load(Ordering::Relaxed),
        );
        if magic != MAGIC {
            return Err(corrupt("its shared memory lacks the queue mark"));
        }
        if capacity != len as u64 - CONTROL || capacity % REC != 0 || maxsize > MAX_ITEMS {
            return Err(corrupt("its control block is inconsistent"));
        }
        ring.capacity = capacity;
        ring.maxsize = maxsize;
        Ok(ring)
    }

    /// The segment's handle and length, and the parkers: what travels to other processes.
    pub(crate) fn parts(&self) -> (&Handle, u64, &Parkers) {
        (
            self.segment.handle(),
            self.segment.len() as u64,
            &self.parkers,
        )
    }

    fn control(&self) -> &Control {
        // SAFETY: the segment is page-aligned and at least `CONTROL` bytes long (checked in
        // `new` and `from_parts`); `Control` is `repr(C)`, made of atomics only and valid
        // when zeroed, so a shared reference is fine while other processes change it; the
        // mapping lives as long as `self`.
        unsafe { &*self.segment.as_ptr().cast::<Control>() }
    }

    /// The limit on items, 0 for none.
    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize as usize
    }

    /// The most payload one record carries: a quarter of the ring, so that a producer can
    /// write the next chunk while a consumer copies the last ones out.
    fn chunk_max(&self) -> u64 {
        (self.capacity / 4 - REC) / REC * REC
    }

    /// The room an item of `total` bytes takes in the ring, at most all of it.
    fn item_room(&self, total: u64) -> u64 {
        self.whole_room(total).min(self.capacity)
    }

    /// The room all the records of an item of `total` bytes take together.
    fn whole_room(&self, total: u64) -> u64 {
        let chunk = self.chunk_max();
        let (whole, rest) = (total / chunk, total % chunk);
        let tail = if rest > 0 || total == 0 {
            record_len(rest)
        } else {
            0
        };
        whole * record_len(chunk) + tail
    }

    /// Whether an item of `len` bytes fits in one record.
    pub(crate) fn fits_whole(&self, len: usize) -> bool {
        len as u64 <= self.chunk_max()
    }

    /// The whole items in the ring now.
    pub(crate) fn items(&self) -> usize {
        let c = self.control();
        let tail = c.tail.pos.load(Ordering::Acquire);
        let head = c.head.pos.load(Ordering::Acquire);
        items(head, tail) as usize
    }

    /// Copies `src` into the ring from byte position `at` on, wrapping at the end.
    fn write_at(&self, at: u64, src: &[u8]) {
        debug_assert!(src.len() as u64 <= self.capacity);
        let off = (at % self.capacity) as usize;
        let first = src.len().min(self.capacity as usize - off);
        let data = self.data();
        // SAFETY: `off + first` and `src.len() - first` are within the ring's `capacity`
        // bytes after the control block; the ring is plain bytes, and by the queue's protocol
        // no other process touches the free part that a producer holding the put lock writes.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
        }
    }

    /// Copies bytes out of the ring from byte position `at` on into `dst`, wrapping.
    fn read_at(&self, at: u64, dst: &mut [u8]) {
        // SAFETY: `dst` is valid for writes of its length.
        unsafe { self.copy_out(at, dst.as_mut_ptr(), dst.len()) }
    }

    /// Appends `len` bytes of the ring from byte position `at` on to `out`, without zeroing
    /// the room first.
    fn append_from(&self, at: u64, len: usize, out: &mut Vec<u8>) {
        out.reserve(len);
        let had = out.len();
        // SAFETY: `reserve` made room for `len` more bytes after `had`; `copy_out` writes
        // every one of them, so they are initialized when the length takes them in.
        unsafe {
            self.copy_out(at, out.as_mut_ptr().add(had), len);
            out.set_len(had + len);
        }
    }

    /// Copies `len` bytes of the ring from byte position `at` on to `dst`, wrapping.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` bytes, and `len` at most the capacity.
    unsafe fn copy_out(&self, at: u64, dst: *mut u8, len: usize) {
        debug_assert!(len as u64 <= self.capacity);
        let off = (at % self.capacity) as usize;
        let first = len.min(self.capacity as usize - off);
        let data = self.data();
        // SAFETY: the source is in bounds as in `write_at`, the destination is the caller's
        // promise; the bytes were published by a producer before the `head` this consumer
        // loaded with `Acquire`, and nobody writes them before the consumer moves `tail` past
        // them. Any byte pattern is a valid `u8`.
        unsafe {
            std::ptr::copy_nonoverlapping(data.add(off), dst, first);
            std::ptr::copy_nonoverlapping(data, dst.add(first), len - first);
        }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the segment is `CONTROL + capacity` bytes long.
        unsafe { self.segment.as_ptr().add(CONTROL as usize) }
    }

    /// Waits until `ready` gives a value: spinning for [`SPIN`], then sleeping on word
    /// `index` (bumped by whoever can make `ready` change its mind) until `deadline`, or
    /// until `slice` has passed when one is given.
    fn wait_for<R>(
        &self,
        word: &Word,
        index: usize,
        deadline: Option<Instant>,
        slice: Option<Duration>,
        mut ready: impl FnMut() -> Result<Option<R>>,
    ) -> Result<Waited<R>> {
        if let Some(r) = ready()? {
            return Ok(Waited::Ready(r));
        }
        let start = Instant::now();
        if deadline.is_some_and(|d| start >= d) {
            return Ok(Waited::Expired);
        }
        let spin_end = start + SPIN;
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if let Some(r) = ready()? {
                return Ok(Waited::Ready(r));
            }
            let now = Instant::now();
            if now >= spin_end || deadline.is_some_and(|d| now >= d) {
                break;
            }
        }
        let slice_end = slice.map(|s| start + s);
        loop {
            // The word is read before `ready` looks, so that a change after the look bumps
            // it away from `seen` and the sleep returns at once.
            let seen = word.value().load(Ordering::SeqCst);
            if let Some(r) = ready()? {
                return Ok(Waited::Ready(r));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(Waited::Expired);
            }
            if slice_end.is_some_and(|s| now >= s) {
                return Ok(Waited::Slice);
            }
            let until = [deadline, slice_end, Some(now + RECHECK)]
                .into_iter()
                .flatten()
                .min();
            word.sleep(&self.parkers, index, seen, until);
        }
    }

    /// Takes the put lock, waiting for it: `None` when `deadline` passed first.
    pub(crate) fn lock_put(&self, deadline: Option<Instant>) -> Option<Turn<'_>> {
        self.take_turn(PUT_LOCK, deadline)
    }

    /// Takes the get lock, as [`Ring::lock_put`].
    pub(crate) fn lock_get(&self, deadline: Option<Instant>) -> Option<Turn<'_>> {
        self.take_turn(GET_LOCK, deadline)
    }

    fn take_turn(&self, index: usize, deadline: Option<Instant>) -> Option<Turn<'_>> {
        self.turn_word(index)
            .lock(&self.parkers, index, Blocking::Block, deadline)
            .map(|_| Turn { ring: self, index })
    }

    /// The lock word of the put (`PUT_LOCK`) or get side.
    fn turn_word(&self, index: usize) -> &Word {
        let c = self.control();
        if index == PUT_LOCK {
            &c.put_lock.word
        } else {
            &c.get_lock.word
        }
    }

    /// Gives up: the positions make no sense, so every published byte is dropped and the
    /// queue starts over from `head`.
    fn corrupt(&self, what: &str) -> Error {
        let c = self.control();
        let head = c.head.pos.load(Ordering::Acquire);
        let tail = c.tail.pos.load(Ordering::Relaxed);
        c.tail.pos.store(
            pack(
                count_of(tail).wrapping_add(items(head, tail)),
                bytes_of(head),
            ),
            Ordering::Release,
        );
        self.bump(&c.tail.moved, NOT_FULL);
        self.dropped(items(head, tail));
        tracing::warn!(what, "queue memory corrupt; its contents were dropped");
        Error::Protocol(format!(
            "the queue's shared memory is corrupt ({what}); its contents were dropped"
        ))
    }

    fn bump(&self, word: &Word, index: usize) {
        word.value().fetch_add(1, Ordering::SeqCst);
        word.wake(&self.parkers, index, 1);
    }

    /// Writes one item, in chunks if it is large; the caller holds the put lock (`turn`).
    /// Returns `false` when `deadline` passed first: nothing of the item is then counted, and
    /// consumers drop the chunks already written.
    ///
    /// `unfinished` adds the joinable queue's rule: at most [`MAX_ITEMS`] items not done.
    pub(crate) fn put(
        &self,
        turn: &Turn<'_>,
        payload: &[u8],
        deadline: Option<Instant>,
        joinable: bool,
    ) -> Result<bool> {
        debug_assert_eq!(turn.index, PUT_LOCK);
        if payload.len() > MAX_ITEM {
            return Err(Error::Protocol(format!(
                "an item of {} bytes exceeds the queue's limit of {MAX_ITEM} bytes",
                payload.len()
            )));
        }
        let c = self.control();
        let total = payload.len() as u64;
        if self.item_room(total) >= self.capacity
            && self.whole_room(total) > self.capacity
            && deadline.is_some_and(|d| Instant::now() >= d)
        {
            // Larger than the ring: it cannot go in without a wait for consumers.
            return Ok(false);
        }
        let mut sent = 0u64;
        loop {
            let first = sent == 0;
            let n = (total - sent).min(self.chunk_max());
            let last = sent + n == total;
            let rec = record_len(n);
            // Acquire: the lock may have been taken over from a dead producer, whose last
            // store no unlock published.
            let head = c.head.pos.load(Ordering::Acquire);
            let waited = self.wait_for(&c.tail.moved, NOT_FULL, deadline, None, || {
                if self.shut() != OPEN {
                    // Consumers drop the chunks of an item cut short, as when its
                    // producer gives up.
                    return Err(Error::Closed);
                }
                // An item starts only when all of it fits (or, larger than the ring, when the
                // ring is empty), so that a producer with a deadline does not give up halfway
                // for want of room.
                let room = if first { self.item_room(total) } else { rec };
                let fits = |tail: u64| {
                    let used = used(head, tail);
                    let counted = !first
                        || ((self.maxsize == 0 || items(head, tail) < self.maxsize)
                            && (!joinable || self.unfinished_at(head) < MAX_ITEMS));
                    counted && used <= self.capacity && self.capacity - used >= room
                };
                // The tail seen last is behind the real one, so room by it is room.
                let seen = c.head.seen.load(Ordering::Acquire);
                if items(head, seen) <= MAX_ITEMS && fits(seen) {
                    return Ok(Some(()));
                }
                let tail = c.tail.pos.load(Ordering::Acquire);
                if used(head, tail) > self.capacity || items(head, tail) > MAX_ITEMS {
                    // Consumers start the queue over when they meet this; a producer only
                    // says so.
                    return Err(Error::Protocol(
                        "the queue's shared memory is corrupt (positions out of range)".into(),
                    ));
                }
                c.head.seen.store(tail, Ordering::Release);
                Ok(fits(tail).then_some(()))
            })?;
            match waited {
                Waited::Ready(()) => {}
                Waited::Expired | Waited::Slice => return Ok(false),
            }
            let flags = if first { FIRST } else { 0 } | if last { LAST } else { 0 };
            let mut header = [0u8; REC as usize];
            header[..4].copy_from_slice(&(n as u32).to_le_bytes());
            header[4..8].copy_from_slice(&flags.to_le_bytes());
            header[8..].copy_from_slice(&(if first { total } else { 0 }).to_le_bytes());
            self.write_at(bytes_of(head), &header);
            self.write_at(
                bytes_of(head) + REC,
                &payload[sent as usize..(sent + n) as usize],
            );
            c.head.pos.store(
                pack(count_of(head) + u64::from(last), bytes_of(head) + rec),
                Ordering::Release,
            );
            self.bump(&c.head.moved, NOT_EMPTY);
            sent += n;
            if last {
                return Ok(true);
            }
        }
    }

    /// Reads one item into `out` (cleared first); the caller holds the get lock (`turn`).
    /// Returns `false` when `deadline` passed before an item began to arrive; once one has,
    /// it is read to its end whatever the deadline (as a pipe read is), unless its producer
    /// dies or gives up inside it.
    pub(crate) fn get(
        &self,
        turn: &Turn<'_>,
        out: &mut Vec<u8>,
        deadline: Option<Instant>,
        max: usize,
    ) -> Result<bool> {
        debug_assert_eq!(turn.index, GET_LOCK);
        /// Where a consumer is within an item.
        enum At {
            Between,
            Inside { total: u64 },
            Skipping { total: u64 },
        }
        let c = self.control();
        out.clear();
        let mut at = At::Between;
        loop {
            // Acquire, as for `head` in `put`.
            let tail = c.tail.pos.load(Ordering::Acquire);
            let between = matches!(at, At::Between);
            let waited = self.wait_for(
                &c.head.moved,
                NOT_EMPTY,
                if between { deadline } else { None },
                (!between).then_some(LIVENESS_SLICE),
                || {
                    let head = c.head.pos.load(Ordering::Acquire);
                    let used = used(head, tail);
                    if used > self.capacity || items(head, tail) > MAX_ITEMS {
                        return Err(self.corrupt("positions out of range"));
                    }
                    if between {
                        match self.shut() {
                            SHUT_NOW => return Err(Error::Closed),
                            SHUT if used < REC => return Err(Error::Closed),
                            _ => {}
                        }
                    }
                    Ok((used >= REC).then_some(used))
                },
            )?;
            let used = match waited {
                Waited::Ready(used) => used,
                Waited::Expired => return Ok(false),
                Waited::Slice => {
                    if self.producer_gone() {
                        out.clear();
                        at = At::Between;
                    }
                    continue;
                }
            };
            let mut header = [0u8; REC as usize];
            self.read_at(bytes_of(tail), &mut header);
            let len = u64::from(u32::from_le_bytes(header[..4].try_into().expect("4 bytes")));
            let flags = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
            let announced = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
            let rec = record_len(len);
            if flags > (FIRST | LAST) || rec > used {
                return Err(self.corrupt("a record header makes no sense"));
            }
            let last = flags & LAST != 0;
            if flags & FIRST != 0 {
                if len > announced || (last && len != announced) {
                    return Err(self.corrupt("a record is longer than its item"));
                }
                out.clear();
                at = if announced > max as u64 {
                    At::Skipping { total: announced }
                } else {
                    out.reserve(announced.min(self.capacity) as usize);
                    At::Inside { total: announced }
                };
            }
            let mut finished = None;
            match at {
                // Chunks whose first record went to a consumer that died: skip them. Nobody
                // will mark that item done.
                At::Between => {
                    if last {
                        self.dropped(1);
                    }
                }
                At::Inside { total } => {
                    let had = out.len();
                    if had as u64 + len > total {
                        return Err(self.corrupt("an item is longer than announced"));
                    }
                    self.append_from(bytes_of(tail) + REC, len as usize, out);
                    if last {
                        finished = Some(if out.len() as u64 == total {
                            Ok(true)
                        } else {
                            Err(Error::Protocol(format!(
                                "a queued item ended after {} of its {total} bytes",
                                out.len()
                            )))
                        });
                    }
                }
                At::Skipping { total } => {
                    if last {
                        self.dropped(1);
                        finished = Some(Err(Error::Protocol(format!(
                            "a queued item of {total} bytes exceeds the limit of {max} bytes"
                        ))));
                    }
                }
            }
            c.tail.pos.store(
                pack(count_of(tail) + u64::from(last), bytes_of(tail) + rec),
                Ordering::Release,
            );
            self.bump(&c.tail.moved, NOT_FULL);
            if let Some(result) = finished {
                return result;
            }
            if last {
                at = At::Between;
            }
        }
    }

    /// How far the ring is shut down.
    fn shut(&self) -> u64 {
        self.control().fixed.shutdown.load(Ordering::Acquire)
    }

    /// Whether the ring was shut down (by any process).
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shut() != OPEN
    }

    /// Shuts the ring down for every process: later puts fail, gets drain what is left
    /// (none when `immediate`), and every process blocked in a put, get or join wakes.
    pub(crate) fn shutdown(&self, immediate: bool) {
        let c = self.control();
        c.fixed
            .shutdown
            .fetch_max(if immediate { SHUT_NOW } else { SHUT }, Ordering::AcqRel);
        for (word, index) in [
            (&c.head.moved, NOT_EMPTY),
            (&c.tail.moved, NOT_FULL),
            (&c.done.word, DONE),
        ] {
            word.value().fetch_add(1, Ordering::SeqCst);
            word.wake(&self.parkers, index, u32::MAX);
        }
    }

    /// Whether the producer of a half-read item is gone: the put lock is free (it gave up)
    /// or held by a process that died.
    fn producer_gone(&self) -> bool {
        let owner = self.control().put_lock.word.value().load(Ordering::SeqCst);
        owner == 0 || !identity_alive(owner)
    }

    /// Counts one more item in this process's backlog; `false` when every slot belongs to
    /// another live process, and the item is not counted (nor must be uncounted later).
    pub(crate) fn backlog_grew(&self) -> bool {
        match self.claim_backlog_slot() {
            Some(slot) => {
                slot.items.fetch_add(1, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }

    /// Counts `items` fewer in this process's backlog (items that [`Ring::backlog_grew`]
    /// counted): they are in the ring now, or lost. A `join` that waits for a lost one only
    /// sees it at its next look by itself.
    pub(crate) fn backlog_shrank(&self, items: u32) {
        if items > 0
            && let Some(slot) = self.own_backlog_slot()
        {
            slot.items.fetch_sub(items, Ordering::AcqRel);
        }
    }

    /// This process's backlog slot, if it has one.
    fn own_backlog_slot(&self) -> Option<&Backlog> {
        owner::mine(&self.control().backlogs.slots, |slot| &slot.owner)
    }

    /// This process's backlog slot; when it has none, a free one (or a dead process's, whose
    /// count is dropped) becomes ours.
    fn claim_backlog_slot(&self) -> Option<&Backlog> {
        owner::claim(
            &self.control().backlogs.slots,
            |slot| &slot.owner,
            |slot| slot.items.store(0, Ordering::Release),
        )
    }

    /// The items that the feeder threads of live processes hold, this one's included.
    pub(crate) fn backlog(&self) -> usize {
        let mut total: u64 = 0;
        for slot in &self.control().backlogs.slots {
            let items = slot.items.load(Ordering::Acquire);
            // A count beyond `i32::MAX` is garbage from a peer: none.
            if items != 0
                && items <= i32::MAX as u32
                && (slot.owner.is_mine() || slot.owner.alive())
            {
                total += u64::from(items);
            }
        }
        total.min(MAX_ITEMS) as usize
    }

    /// The items put but not marked done, seen from `head`.
    fn unfinished_at(&self, head: u64) -> u64 {
        let done = u64::from(self.control().done.word.value().load(Ordering::Acquire));
        count_of(head).wrapping_sub(done) & COUNT_MASK
    }

    /// The items put but not marked done.
    pub(crate) fn unfinished(&self) -> usize {
        // `done` first: it never passes the count in `head`, so a later `head` cannot make
        // the difference negative.
        let done = u64::from(self.control().done.word.value().load(Ordering::Acquire));
        let head = self.control().head.pos.load(Ordering::Acquire);
        (count_of(head).wrapping_sub(done) & COUNT_MASK) as usize
    }

    /// Counts `n` items as done that no consumer will mark: the queue dropped them, or gave
    /// them to a consumer as an error.
    pub(crate) fn dropped(&self, n: u64) {
        let done = &self.control().done.word;
        let _ = done
            .value()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                Some(((u64::from(d) + n) & COUNT_MASK) as u32)
            });
        done.wake(&self.parkers, DONE, u32::MAX);
    }

    /// Marks one item done; `false` when none is unfinished.
    pub(crate) fn task_done(&self) -> bool {
        let c = self.control();
        let done = c.done.word.value();
        let mut seen = done.load(Ordering::Acquire);
        loop {
            let head = c.head.pos.load(Ordering::Acquire);
            if count_of(head).wrapping_sub(u64::from(seen)) & COUNT_MASK == 0 {
                return false;
            }
            let next = ((u64::from(seen) + 1) & COUNT_MASK) as u32;
            match done.compare_exchange(seen, next, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => {
                    if u64::from(next) == count_of(head) {
                        c.done.word.wake(&self.parkers, DONE, u32::MAX);
                    }
                    return true;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// Waits until every item put has been marked done, at most until `deadline`; `false`
    /// on time-out.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> Result<bool> {
        let c = self.control();
        let waited = self.wait_for(&c.done.word, DONE, deadline, None, || {
            if self.shut() == SHUT_NOW {
                // What is left will never be taken: nobody waits for it.
                return Ok(Some(()));
            }
            let head = c.head.pos.load(Ordering::Acquire);
            Ok((self.unfinished_at(head) == 0 && self.backlog() == 0).then_some(()))
        })?;
        Ok(matches!(waited, Waited::Ready(())))
    }
}

/// A held put or get lock; dropping it lets the next producer or consumer in.
#[must_use = "the lock is released as soon as the turn drops"]
pub(crate) struct Turn<'a> {
    ring: &'a Ring,
    index: usize,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.ring
            .turn_word(self.index)
            .unlock(&self.ring.parkers, self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(ring: &Ring, payload: &[u8]) {
        let turn = ring.lock_put(None).unwrap();
        assert!(ring.put(&turn, payload, None, false).unwrap());
    }

    /// A thread that waits for one whole item and returns it.
    fn read_one_in_a_thread(ring: &std::sync::Arc<Ring>) -> std::thread::JoinHandle<Vec<u8>> {
        let ring = ring.clone();
        std::thread::spawn(move || {
            let turn = ring.lock_get(None).unwrap();
            let mut out = Vec::new();
            assert!(ring.get(&turn, &mut out, None, MAX_ITEM).unwrap());
            out
        })
    }

    fn get(ring: &Ring, max: usize) -> Result<Option<Vec<u8>>> {
        let turn = ring.lock_get(None).unwrap();
        let mut out = Vec::new();
        let soon = Some(Instant::now() + Duration::from_millis(20));
        Ok(ring.get(&turn, &mut out, soon, max)?.then_some(out))
    }

    #[test]
    fn records_wrap_around_the_end_of_the_ring() {
        let ring = Ring::new(4096, 0).unwrap();
        for round in 0..100u32 {
            let item = vec![round as u8; 700 + round as usize];
            put(&ring, &item);
            assert_eq!(ring.items(), 1);
            assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), item);
        }
        assert!(get(&ring, MAX_ITEM).unwrap().is_none());
    }

    #[test]
    fn an_item_larger_than_the_ring_streams_through_it() {
        let ring = std::sync::Arc::new(Ring::new(4096, 0).unwrap());
        let item: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let reader = read_one_in_a_thread(&ring);
        put(&ring, &item);
        assert_eq!(reader.join().unwrap(), item);
        assert_eq!(ring.items(), 0);
    }

    /// Unix: a dead pid comes from `true`, a live one that is not ours is init's.
    #[cfg(unix)]
    #[test]
    fn backlogs_count_live_processes_only() {
        use proc_core::shared::{Instance, start_time_of};
        let ring = Ring::new(4096, 0).unwrap();
        assert_eq!(ring.backlog(), 0);
        assert!(ring.backlog_grew());
        assert!(ring.backlog_grew());
        assert_eq!(ring.backlog(), 2);
        ring.backlog_shrank(1);
        assert_eq!(ring.backlog(), 1);
        // A process that died with three items in its feeder: they are not counted, and its
        // slot goes to the next process without them.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead = Instance {
            pid: gone.id(),
            start: start_time_of(gone.id()).unwrap_or(0),
        };
        gone.wait().unwrap();
        let slots = &ring.control().backlogs.slots;
        slots[1].owner.set(dead);
        slots[1].items.store(3, Ordering::SeqCst);
        assert_eq!(ring.backlog(), 1);
        slots[0].owner.set(dead);
        slots[0].items.store(5, Ordering::SeqCst);
        assert_eq!(ring.backlog(), 0);
        assert!(ring.backlog_grew());
        assert!(slots[0].owner.is_mine());
        assert_eq!(ring.backlog(), 1);
        ring.backlog_shrank(1);
        assert_eq!(ring.backlog(), 0);
        // With every slot held by another live process (init), an item goes uncounted.
        let init = Instance {
            pid: 1,
            start: start_time_of(1).unwrap_or(0),
        };
        for slot in slots {
            slot.owner.set(init);
            slot.items.store(0, Ordering::SeqCst);
        }
        assert!(!ring.backlog_grew());
        assert_eq!(ring.backlog(), 0);
    }

    #[test]
    fn a_put_finds_room_that_consumers_made_since_the_tail_was_last_read() {
        let ring = Ring::new(4096, 0).unwrap();
        let c = ring.control();
        let item = [5u8; 100];
        let mut fitted = 0;
        loop {
            let turn = ring.lock_put(None).unwrap();
            if !ring.put(&turn, &item, Some(Instant::now()), false).unwrap() {
                break;
            }
            fitted += 1;
        }
        // The failed put read the tail of a full ring; later puts must look again.
        for round in 0..3 * fitted {
            assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), item);
            let turn = ring.lock_put(None).unwrap();
            assert!(
                ring.put(&turn, &item, Some(Instant::now()), false).unwrap(),
                "round {round}: the room one get made was not found"
            );
            let head = c.head.pos.load(Ordering::Acquire);
            let tail = c.tail.pos.load(Ordering::Acquire);
            let seen = c.head.seen.load(Ordering::Acquire);
            assert!(used(head, seen) <= ring.capacity);
            assert!(used(head, tail) <= used(head, seen));
        }
        assert_eq!(ring.items(), fitted);
    }

    #[test]
    fn maxsize_counts_whole_items() {
        let ring = Ring::new(4096, 2).unwrap();
        put(&ring, b"a");
        put(&ring, b"b");
        let turn = ring.lock_put(None).unwrap();
        assert!(!ring.put(&turn, b"c", Some(Instant::now()), false).unwrap());
        drop(turn);
        assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), b"a");
        put(&ring, b"c");
        assert_eq!(ring.items(), 2);
    }

    #[test]
    fn an_item_over_the_consumers_limit_is_skipped_without_its_allocation() {
        let ring = std::sync::Arc::new(Ring::new(4096, 0).unwrap());
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || put(&ring, &[7u8; 10_000]))
        };
        let err = {
            let turn = ring.lock_get(None).unwrap();
            let mut out = Vec::new();
            ring.get(&turn, &mut out, None, 100).unwrap_err()
        };
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("exceeds the limit")),
            "{err}"
        );
        writer.join().unwrap();
        put(&ring, b"next");
        assert_eq!(get(&ring, 100).unwrap().unwrap(), b"next");
    }

    #[test]
    fn garbage_in_the_ring_is_an_error_and_the_queue_starts_over() {
        let ring = Ring::new(4096, 0).unwrap();
        put(&ring, b"fine");
        // A hostile peer rewrites the header: a length beyond what was published.
        let mut header = [0u8; REC as usize];
        header[..4].copy_from_slice(&4000u32.to_le_bytes());
        header[4..8].copy_from_slice(&(FIRST | LAST).to_le_bytes());
        header[8..].copy_from_slice(&4000u64.to_le_bytes());
        ring.write_at(0, &header);
        let err = get(&ring, MAX_ITEM).unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err}");
        assert_eq!(ring.items(), 0);
        // The dropped item counts as done: nobody could mark it.
        assert_eq!(ring.unfinished(), 0);
        put(&ring, b"again");
        assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), b"again");

        // Positions that cannot be: the tail ahead of the head.
        ring.control()
            .tail
            .pos
            .store(pack(0, 1 << 20), Ordering::Release);
        assert!(matches!(get(&ring, MAX_ITEM), Err(Error::Protocol(_))));
        put(&ring, b"and again");
        assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), b"and again");
    }

    #[test]
    fn a_half_written_item_whose_producer_gave_up_is_dropped() {
        let ring = std::sync::Arc::new(Ring::new(4096, 0).unwrap());
        let big = vec![1u8; 3 * 4096];
        let turn = ring.lock_put(None).unwrap();
        // Nobody reads: the producer writes what fits and gives up at its deadline.
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert!(!ring.put(&turn, &big, soon, false).unwrap());
        drop(turn);
        assert_eq!(ring.items(), 0);
        // The reader takes the chunks, sees that nobody is writing the rest, and drops them.
        let reader = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let turn = ring.lock_get(None).unwrap();
                let mut out = Vec::new();
                let later = Some(Instant::now() + Duration::from_millis(300));
                ring.get(&turn, &mut out, later, MAX_ITEM).unwrap();
                out
            })
        };
        assert!(reader.join().unwrap().is_empty());
        put(&ring, b"whole");
        assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), b"whole");
        // A new item also ends a half-written one that a reader is inside of.
        let turn = ring.lock_put(None).unwrap();
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert!(!ring.put(&turn, &big, soon, false).unwrap());
        drop(turn);
        let reader = read_one_in_a_thread(&ring);
        put(&ring, b"next");
        assert_eq!(reader.join().unwrap(), b"next");
    }

    #[test]
    fn a_producer_with_a_deadline_starts_an_item_only_when_all_of_it_fits() {
        let ring = Ring::new(4096, 0).unwrap();
        let now = || Some(Instant::now());
        let turn = ring.lock_put(None).unwrap();
        // Larger than the ring: not now, and nothing written.
        assert!(!ring.put(&turn, &[1u8; 5000], now(), false).unwrap());
        // Three chunks' worth fits in the empty ring, as one piece.
        assert!(ring.put(&turn, &[2u8; 2500], now(), false).unwrap());
        // Another does not fit beside it: refused whole, not begun.
        assert!(!ring.put(&turn, &[3u8; 2500], now(), false).unwrap());
        drop(turn);
        assert_eq!(get(&ring, MAX_ITEM).unwrap().unwrap(), [2u8; 2500]);
        assert!(get(&ring, MAX_ITEM).unwrap().is_none());
    }

    #[test]
    fn task_done_counts_against_items_put() {
        let ring = Ring::new(4096, 0).unwrap();
        assert!(!ring.task_done());
        put(&ring, b"x");
        put(&ring, b"y");
        assert_eq!(ring.unfinished(), 2);
        assert!(!ring.join(Some(Instant::now())).unwrap());
        assert!(ring.task_done());
        assert!(ring.task_done());
        assert!(!ring.task_done());
        assert!(ring.join(None).unwrap());
    }

    #[test]
    fn a_segment_that_is_not_a_queue_is_refused() {
        let other = Segment::anonymous((CONTROL + MIN_CAPACITY) as usize).unwrap();
        let handle = other.handle().try_clone().unwrap();
        let err = Ring::from_parts(handle, CONTROL + MIN_CAPACITY, Parkers::new(WORDS).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
    }
}

/// The ring's index arithmetic alone, without shared memory or system calls, so that Miri
/// can check it (`cargo xtask ci` runs `cargo miri test -p proc-ipc --lib ring::arith`).
#[cfg(test)]
mod arith {
    use super::*;

    #[test]
    fn positions_pack_a_count_above_a_byte_offset() {
        for (count, bytes) in [(0, 0), (1, 16), (COUNT_MASK, BYTE_MASK), (12345, 1 << 35)] {
            let pos = pack(count, bytes);
            assert_eq!((count_of(pos), bytes_of(pos)), (count, bytes));
        }
        // Both parts wrap on their own, without spilling into each other.
        assert_eq!(pack(COUNT_MASK + 1, BYTE_MASK + 1), 0);
    }

    #[test]
    fn differences_survive_wrapping() {
        let tail = pack(COUNT_MASK, BYTE_MASK - 15);
        let head = pack(2, 48);
        // Three items and 64 bytes were added across both wrap points.
        assert_eq!(items(head, tail), 3);
        assert_eq!(used(head, tail), 64);
        assert_eq!(items(tail, tail), 0);
        assert_eq!(used(tail, tail), 0);
    }

    #[test]
    fn records_are_a_header_and_a_padded_payload() {
        assert_eq!(record_len(0), REC);
        assert_eq!(record_len(1), 2 * REC);
        assert_eq!(record_len(16), 2 * REC);
        assert_eq!(record_len(17), 3 * REC);
        const { assert!(MAX_ITEMS < COUNT_MASK) };
        assert_eq!(MAX_ITEMS * 2, COUNT_MASK - 1);
    }
}
