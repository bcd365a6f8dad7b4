//! Hostile bytes in a queue's shared memory: a seeded fuzz of the ring's record parser and
//! its control block, as a peer that maps the same segment would scribble on them — random
//! record headers, lengths past the end of the ring, positions out of range, garbage over
//! lock words, counters and the backlog table, and a segment that is no queue at all.
//!
//! Every call on the queue must return (a value or a typed error) within its timeout, never
//! panic, and never allocate beyond the queue's item limit; once the garbage is confined to
//! the records or the positions, the queue must carry new items intact again after a few
//! failed calls. The hostile peer maps the queue's segment a second time: in this process for
//! the bulk of the cases (fast, and the same shared pages), and in a real child process that
//! scribbles while the parent reads for the last test.
//!
//! The layout of the control block is mirrored here and checked against a live queue first,
//! so that a change to it fails this file with a clear message instead of fuzzing nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proc_core::shared::{Parkers, Segment};
use proc_core::{Error, Handle, Link, Process};
use proc_ipc::{GetError, JoinableQueue, PutError, Queue};
use procs_testkit::{PATIENCE, Rng, within};

/// How long one fuzz run may take before it counts as hung: a guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(240);

/// The offsets of the ring's control block (`ring::Control`: each part on its own 64-byte
/// line), and where the records start.
const MAGIC: usize = 0;
const CAPACITY: usize = 8;
const HEAD: usize = 64;
const TAIL: usize = 128;
const PUT_LOCK: usize = 192;
const CONTROL: usize = 1920;
/// A position packs a count of items above a 36-bit byte offset.
const BYTE_BITS: u32 = 36;
/// Records are a 16-byte header (length, flags, the item's length on its first record) and
/// the payload padded to 16 bytes.
const REC: u64 = 16;

/// What a queue is on the wire: its kind, its segment, the segment's length, its parkers.
type Parts = (u32, Handle, u64, Parkers);

/// A second mapping of a queue's shared memory: what a hostile peer holding the queue sees.
struct Scribbler {
    segment: Segment,
}

impl Scribbler {
    fn of<Q: serde::Serialize>(queue: &Q) -> Scribbler {
        let (a, b) = Link::pair().unwrap();
        a.send(queue).unwrap();
        let (_, handle, len, _): Parts = b.recv().unwrap();
        Scribbler::from_parts(handle, len)
    }

    fn from_parts(handle: Handle, len: u64) -> Scribbler {
        let segment = Segment::from_handle(handle, len as usize).unwrap();
        Scribbler { segment }
    }

    fn len(&self) -> usize {
        self.segment.len()
    }

    fn capacity(&self) -> u64 {
        (self.len() - CONTROL) as u64
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= CONTROL);
        // SAFETY: the segment is page-aligned and longer than the control block, so the
        // offset is an aligned `u64` inside it; the control block is made of atomics that
        // every process sharing the segment reads and writes atomically.
        unsafe { &*self.segment.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// Writes `bytes` at `offset` of the segment, as a peer's plain stores would.
    fn write(&self, offset: usize, bytes: &[u8]) {
        let n = bytes.len().min(self.len() - offset);
        // SAFETY: `offset + n` is within the segment; the segment is shared memory that the
        // queue reads with atomics or copies out of, so concurrent plain stores by a peer are
        // garbage for it to check, not undefined behaviour in this process's Rust objects.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.segment.as_ptr().add(offset), n)
        };
    }

    /// The offset in the segment of ring byte position `pos`.
    fn at(&self, pos: u64) -> usize {
        CONTROL + (pos % self.capacity()) as usize
    }

    fn tail_bytes(&self) -> u64 {
        self.word(TAIL).load(Ordering::Acquire) & ((1 << BYTE_BITS) - 1)
    }
}

fn pack(count: u64, bytes: u64) -> u64 {
    (count << BYTE_BITS) | (bytes & ((1 << BYTE_BITS) - 1))
}

/// The mirrored layout matches a live queue: the mark, the capacity, and the head after one
/// item of 3 payload bytes (one record of 16 + 16 bytes).
#[test]
fn the_mirrored_layout_is_the_queues() {
    let queue = Queue::<u8>::with_maxsize(10).unwrap();
    let s = Scribbler::of(&queue);
    assert_eq!(
        s.word(MAGIC).load(Ordering::Relaxed).to_le_bytes(),
        *b"procsQ05"
    );
    assert_eq!(s.word(CAPACITY).load(Ordering::Relaxed), s.capacity());
    queue.put(7).unwrap();
    // postcard's `u8` is one byte.
    assert_eq!(s.word(HEAD).load(Ordering::Acquire), pack(1, REC + REC));
    assert_eq!(s.word(TAIL).load(Ordering::Acquire), 0);
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 7);
    assert_eq!(s.word(TAIL).load(Ordering::Acquire), pack(1, REC + REC));
}

/// What a scribble may hit: the records only, the positions, or anything.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Records,
    Positions,
    Anything,
}

/// One hostile change to the queue's memory.
fn scribble(rng: &mut Rng, s: &Scribbler) -> Target {
    match rng.below(6) {
        // Random bytes over the records around the tail.
        0 => {
            let at = s.at(s.tail_bytes() + rng.below(4096));
            s.write(at, &rng.bytes(256));
            Target::Records
        }
        // A forged record header where the consumer reads next.
        1 | 2 => {
            let len = match rng.below(4) {
                0 => u32::MAX,
                1 => (s.capacity() + rng.below(64)) as u32,
                2 => rng.below(64) as u32,
                _ => rng.next_u64() as u32,
            };
            let flags = match rng.below(3) {
                0 => rng.next_u64() as u32,
                _ => rng.below(4) as u32,
            };
            // Often the record's own length, so that the header looks whole and only the
            // bounds of the ring can tell it is a lie.
            let announced = match rng.below(4) {
                0 => u64::MAX,
                1 => rng.below(4096),
                2 => u64::from(len),
                _ => rng.next_u64(),
            };
            let mut header = [0u8; REC as usize];
            header[..4].copy_from_slice(&len.to_le_bytes());
            header[4..8].copy_from_slice(&flags.to_le_bytes());
            header[8..].copy_from_slice(&announced.to_le_bytes());
            s.write(s.at(s.tail_bytes()), &header);
            Target::Records
        }
        // Positions out of range: random, or a head or tail a little off.
        3 => {
            let (word, other) = if rng.one_in(2) {
                (HEAD, TAIL)
            } else {
                (TAIL, HEAD)
            };
            let value = if rng.one_in(2) {
                rng.next_u64()
            } else {
                let near = s.word(other).load(Ordering::Acquire);
                near.wrapping_add(pack(rng.below(3), rng.below(1 << 21)))
            };
            s.word(word).store(value, Ordering::Release);
            Target::Positions
        }
        // Garbage anywhere in the control block: marks, locks, counters, backlogs.
        4 => {
            let at = rng.below(CONTROL as u64) as usize;
            s.write(at, &rng.bytes(64));
            Target::Anything
        }
        // Garbage over the first records and the whole control block.
        _ => {
            let garbage: Vec<u8> = (0..CONTROL + 4096).map(|_| rng.byte()).collect();
            s.write(0, &garbage);
            Target::Anything
        }
    }
}

fn timeout(rng: &mut Rng) -> Duration {
    Duration::from_millis(rng.below(3))
}

/// A get: an item (perhaps garbage that happened to decode), or a typed error.
fn get_checked<T: std::fmt::Debug>(seed: u64, got: Result<T, GetError>) -> Option<T> {
    match got {
        Ok(item) => Some(item),
        Err(GetError::Empty | GetError::Timeout | GetError::Closed) => None,
        Err(GetError::Failed(Error::Protocol(_) | Error::Decode(_))) => None,
        Err(other) => panic!("seed {seed}: get gave {other:?}"),
    }
}

fn put_checked<T: std::fmt::Debug>(seed: u64, put: Result<(), PutError<T>>) {
    match put {
        Ok(()) => {}
        Err(PutError::Full(_) | PutError::Timeout(_) | PutError::Closed(_)) => {}
        Err(PutError::Failed(_, Error::Protocol(_))) => {}
        Err(other) => panic!("seed {seed}: put gave {other:?}"),
    }
}

/// After garbage in the records or the positions, a few failed calls later new items go
/// through intact.
fn recovers(seed: u64, queue: &Queue<Vec<u8>>) {
    let marker = format!("marker {seed}").into_bytes();
    for _ in 0..200 {
        match queue.put_timeout(marker.clone(), Duration::from_millis(1)) {
            Ok(()) => {
                for _ in 0..200 {
                    match queue.get_timeout(Duration::from_millis(1)) {
                        Ok(item) if item == marker => return,
                        Ok(_) | Err(GetError::Failed(_)) => {}
                        Err(GetError::Empty | GetError::Timeout) => break,
                        Err(other) => panic!("seed {seed}: {other:?}"),
                    }
                }
            }
            Err(PutError::Failed(_, Error::Protocol(_)) | PutError::Full(_)) => {
                // A producer only reports the corruption; a consumer starts the queue over.
                let _ = queue.get_nowait();
            }
            Err(other) => panic!("seed {seed}: {other:?}"),
        }
    }
    panic!("seed {seed}: the queue never carried an item again");
}

/// Queues whose memory a peer scribbled on: every call returns a value or a typed error
/// within its timeout, and garbage in the records or the positions is recovered from.
#[test]
fn a_queue_with_garbage_in_its_memory_fails_calls_but_never_panics_or_hangs() {
    within("ring fuzz", HANG, || {
        let before = proc_core::internal::resident_memory();
        for seed in procs_testkit::fuzz_seeds(1500) {
            let mut rng = Rng::new(seed);
            // A bound keeps `put` in the caller (no feeder thread that would race the
            // scribbles with its own retries).
            let queue = Queue::<Vec<u8>>::with_maxsize(64).unwrap();
            let s = Scribbler::of(&queue);
            for _ in 0..rng.below(4) {
                let size = if rng.one_in(8) {
                    300_000
                } else {
                    rng.below(200) as usize
                };
                queue.put(vec![rng.byte(); size]).unwrap();
            }
            let mut targets = Vec::new();
            for _ in 0..1 + rng.below(3) {
                targets.push(scribble(&mut rng, &s));
                for _ in 0..rng.below(4) {
                    match rng.below(6) {
                        0 => {
                            get_checked(seed, queue.get_nowait());
                        }
                        1 | 2 => {
                            get_checked(seed, queue.get_timeout(timeout(&mut rng)));
                        }
                        3 => {
                            put_checked(seed, queue.put_timeout(rng.bytes(100), timeout(&mut rng)))
                        }
                        4 => {
                            let _ = (queue.qsize(), queue.empty(), queue.full());
                        }
                        _ => put_checked(seed, queue.put_nowait(rng.bytes(40))),
                    }
                }
            }
            if !targets.contains(&Target::Anything) {
                recovers(seed, &queue);
            }
        }
        if let (Some(before), Some(after)) = (before, proc_core::internal::resident_memory()) {
            assert!(
                after.saturating_sub(before) < 512 << 20,
                "resident memory grew from {before} to {after} bytes"
            );
        }
    });
}

/// The same for a joinable queue, whose counters (`unfinished_tasks`, `join`) read the item
/// counts in the positions and the done word that a peer may have scribbled on.
#[test]
fn a_joinable_queue_with_garbage_in_its_memory_never_panics_or_hangs() {
    within("joinable ring fuzz", HANG, || {
        for seed in procs_testkit::fuzz_seeds(600) {
            let mut rng = Rng::new(seed);
            let queue = JoinableQueue::<Vec<u8>>::with_maxsize(64).unwrap();
            let s = Scribbler::of(&queue);
            for _ in 0..rng.below(4) {
                queue.put(rng.bytes(100)).unwrap();
            }
            for _ in 0..1 + rng.below(3) {
                scribble(&mut rng, &s);
                for _ in 0..rng.below(5) {
                    match rng.below(6) {
                        0 => {
                            get_checked(seed, queue.get_timeout(timeout(&mut rng)));
                        }
                        1 => {
                            put_checked(seed, queue.put_timeout(rng.bytes(100), timeout(&mut rng)))
                        }
                        2 => match queue.task_done() {
                            Ok(()) | Err(Error::InvalidState(_)) => {}
                            Err(other) => panic!("seed {seed}: task_done gave {other:?}"),
                        },
                        3 => match queue.join_timeout(timeout(&mut rng)) {
                            Ok(()) | Err(Error::Timeout) => {}
                            Err(other) => panic!("seed {seed}: join gave {other:?}"),
                        },
                        4 => {
                            let _ = (queue.unfinished_tasks(), queue.qsize());
                        }
                        _ => {
                            get_checked(seed, queue.get_nowait());
                        }
                    }
                }
            }
        }
    });
}

/// A segment that a peer sends as a queue but that is none: a typed error on arrival, for a
/// segment of garbage, one with the mark and a capacity that does not match, or a length out
/// of range.
#[test]
fn a_segment_that_is_no_queue_is_refused_on_arrival() {
    within("hostile segments", HANG, || {
        for seed in procs_testkit::fuzz_seeds(200) {
            let mut rng = Rng::new(seed);
            let len = CONTROL + 4096 * (1 + rng.below(4) as usize);
            let segment = Segment::anonymous(len).unwrap();
            let s = Scribbler::from_parts(segment.handle().try_clone().unwrap(), len as u64);
            s.write(0, &rng.bytes(CONTROL));
            if rng.one_in(2) {
                s.word(MAGIC)
                    .store(u64::from_le_bytes(*b"procsQ05"), Ordering::Relaxed);
            }
            let claimed = match rng.below(3) {
                0 => len as u64,
                1 => rng.next_u64(),
                _ => rng.below(CONTROL as u64 + 4096),
            };
            let parts: Parts = (
                rng.below(4) as u32,
                segment.handle().try_clone().unwrap(),
                claimed,
                Parkers::new(5).unwrap(),
            );
            let (a, b) = Link::pair().unwrap();
            a.send(&parts).unwrap();
            match b.recv::<Queue<u8>>() {
                Ok(_) => panic!("seed {seed}: a segment of garbage passed for a queue"),
                Err(Error::Decode(_) | Error::Io(_)) => {}
                Err(other) => panic!("seed {seed}: {other:?}"),
            }
        }
    });
}

/// Scribbles on a queue's memory from another process: forged headers and garbage records
/// at the tail, positions nudged, `rounds` times.
fn scribble_from_a_child((parts, seed, rounds): (Parts, u64, u32)) -> u32 {
    let (_, handle, len, _) = parts;
    let s = Scribbler::from_parts(handle, len);
    let mut rng = Rng::new(seed);
    let mut done = 0;
    for _ in 0..rounds {
        if scribble(&mut rng, &s) != Target::Anything {
            done += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    done
}

/// A real child process scribbles on the queue while this process puts and gets: the calls
/// return values or typed errors throughout, and once the child is done the queue carries
/// items again.
#[test]
fn a_child_scribbling_on_the_queue_while_it_is_used_fails_calls_only() {
    within("scribbling child", HANG, || {
        for seed in procs_testkit::fuzz_seeds(4) {
            let queue = Queue::<Vec<u8>>::with_maxsize(64).unwrap();
            let (a, b) = Link::pair().unwrap();
            a.send(&queue).unwrap();
            let parts: Parts = b.recv().unwrap();
            let mut child = Process::spawn(scribble_from_a_child, (parts, seed, 300)).unwrap();
            let mut rng = Rng::new(seed);
            while child.is_alive() {
                put_checked(
                    seed,
                    queue.put_timeout(rng.bytes(300), Duration::from_millis(1)),
                );
                get_checked(seed, queue.get_timeout(Duration::from_millis(1)));
            }
            child.join_timeout(PATIENCE).unwrap();
            // The child may have left garbage in the control block too (its last scribble):
            // only the records and positions are promised to recover, so it is cleaned here.
            let s = Scribbler::of(&queue);
            let head = s.word(HEAD).load(Ordering::Acquire);
            for word in [PUT_LOCK, PUT_LOCK + 64, PUT_LOCK + 128] {
                s.word(word).store(0, Ordering::Release);
            }
            s.word(24).store(0, Ordering::Release);
            s.word(TAIL).store(head, Ordering::Release);
            recovers(seed, &queue);
        }
    });
}
