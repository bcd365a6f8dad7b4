//! The engine of [`Queue`](super::Queue): a crossbeam channel, so that putters and getters
//! do not take turns at one lock (a mutex that every put and every get takes makes the two
//! threads of a producer and a consumer pass its cache line back and forth at every item).
//!
//! What Python's `queue.Queue` adds to a channel is kept beside it in atomics:
//!
//! - **`maxsize`.** The channel is unbounded (a bounded one would allocate all its places at
//!   once, and `maxsize` may be large); a bounded queue counts its items in `count`, a put
//!   reserves a place there before it sends, a get frees one after it receives, and a put that
//!   finds no place sleeps on `room` until a get makes one.
//! - **`shutdown`.** `state` holds the flags and counts the puts let in: a put enters (one
//!   more let in) unless the shutdown flag is up, in one compare-and-swap, then sends. The
//!   getters count what they take out in `received`, on their own cache line. A shutdown
//!   raises the flag, which fixes the number let in, and waits until every item let in is
//!   in the channel or taken out (`received` + the channel's length), so a put under way
//!   costs the shutdown a moment's wait and the put nothing more: a read-modify-write
//!   after the send, to say that it left, cost a put as much as the send itself, waiting
//!   for the send's stores. Then it drains the channel if `immediate`, marks the queue
//!   closed, and drops `shutdown_tx`, which wakes every getter waiting on `shutdown_rx`
//!   beside the channel. Once the queue is closed no item can come any more, so a getter
//!   that then finds the channel empty fails with `Closed`.
//! - **`task_done`/`join`.** The items let in and not yet marked done (`done` counts those)
//!   are unfinished; a put is let in before it sends, so that a `task_done` for its item can
//!   never come first.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crossbeam_channel::{Receiver, Select, Sender};

use super::{Block, GetError, PutError, TaskDoneError, wait};

/// `state`: a shutdown was asked for; puts fail from now on.
const SHUT: u64 = 1;
/// `state`: the shutdown was immediate; gets fail from now on.
const IMMEDIATE: u64 = 2;
/// `state`: the shutdown is complete: no put is under way, none will come.
const CLOSED: u64 = 4;
/// `state`: one put let in (the bits above the flags count them).
const PUT: u64 = 1 << 3;

/// The puts let in, in `state`.
fn let_in(state: u64) -> u64 {
    state / PUT
}

pub(super) struct Channel<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    /// Zero means unbounded, as in Python.
    pub(super) maxsize: usize,
    /// The flags and the puts let in, above; on a cache line of its own (every put writes
    /// it), so that a getter reading the fields around does not pull the line away from the
    /// putter at every item.
    state: Apart<AtomicU64>,
    /// Items taken out of the channel, by getters or by an immediate shutdown.
    received: Apart<AtomicU64>,
    /// Items marked done (or dropped by an immediate shutdown, which counts as done).
    done: Apart<AtomicU64>,
    /// Dropped by the shutdown, which wakes the getters that wait on `shutdown_rx`.
    shutdown_tx: Mutex<Option<Sender<()>>>,
    shutdown_rx: Receiver<()>,
    /// `join` sleeps on `all_done` under `done_lock` until no item is unfinished.
    done_lock: Mutex<()>,
    all_done: Condvar,
    /// A bounded queue's items, and the places that puts have reserved.
    count: Apart<AtomicUsize>,
    /// Puts asleep on `room` under `room_lock`, waiting for a place.
    putters: AtomicUsize,
    room_lock: Mutex<()>,
    room: Condvar,
}

/// A value on cache lines of its own (128 bytes: two lines, for the prefetchers of x86 that
/// fetch lines in pairs, as crossbeam's `CachePadded`).
#[repr(align(128))]
struct Apart<T>(T);

impl<T> std::ops::Deref for Apart<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    // The locks guard no data, so a poisoned one is as good as any.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Channel<T> {
    pub(super) fn new(maxsize: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded(0);
        Channel {
            tx,
            rx,
            maxsize,
            state: Apart(AtomicU64::new(0)),
            received: Apart(AtomicU64::new(0)),
            done: Apart(AtomicU64::new(0)),
            shutdown_tx: Mutex::new(Some(shutdown_tx)),
            shutdown_rx,
            done_lock: Mutex::new(()),
            all_done: Condvar::new(),
            count: Apart(AtomicUsize::new(0)),
            putters: AtomicUsize::new(0),
            room_lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    pub(super) fn put(&self, item: T, block: Block) -> Result<(), PutError<T>> {
        if self.maxsize > 0
            && let Err(full) = self.reserve(block)
        {
            return Err(full.with(item));
        }
        let entered = self
            .state
            .fetch_update(SeqCst, SeqCst, |s| (s & SHUT == 0).then_some(s + PUT));
        if entered.is_err() {
            self.release();
            return Err(PutError::Closed(item));
        }
        // Never fails: this queue holds the receiver.
        let _ = self.tx.send(item);
        Ok(())
    }

    /// Reserves a place in a bounded queue, waiting as `block` says while there is none.
    fn reserve(&self, block: Block) -> Result<(), NoPlace> {
        loop {
            let taken = self
                .count
                .fetch_update(SeqCst, SeqCst, |n| (n < self.maxsize).then_some(n + 1));
            if taken.is_ok() {
                return Ok(());
            }
            if self.state.load(SeqCst) & SHUT != 0 {
                return Err(NoPlace::Closed);
            }
            let guard = lock(&self.room_lock);
            self.putters.fetch_add(1, SeqCst);
            // Looked at again under the lock: a get that frees a place, or a shutdown, after
            // this look takes the lock to wake the sleepers, so its wake-up cannot be missed.
            let stays =
                self.count.load(SeqCst) >= self.maxsize && self.state.load(SeqCst) & SHUT == 0;
            let waited = !stays || wait(&self.room, guard, block).1;
            self.putters.fetch_sub(1, SeqCst);
            if !waited {
                return Err(match block {
                    Block::No => NoPlace::Full,
                    _ => NoPlace::Timeout,
                });
            }
        }
    }

    /// Counts an item taken out of the channel, and frees its place.
    fn took(&self, item: T) -> T {
        self.received.fetch_add(1, SeqCst);
        self.release();
        item
    }

    /// The items let in and not yet marked done.
    fn unfinished(&self) -> u64 {
        // `done` first: it never passes the puts let in, which only grow.
        let done = self.done.load(SeqCst);
        let_in(self.state.load(SeqCst)).saturating_sub(done)
    }

    /// Frees a place of a bounded queue, waking a put that waits for one.
    fn release(&self) {
        if self.maxsize == 0 {
            return;
        }
        self.count.fetch_sub(1, SeqCst);
        if self.putters.load(SeqCst) > 0 {
            let _guard = lock(&self.room_lock);
            self.room.notify_one();
        }
    }

    pub(super) fn get(&self, block: Block) -> Result<T, GetError> {
        loop {
            if let Ok(item) = self.rx.try_recv() {
                return Ok(self.took(item));
            }
            // A producer that puts as fast as it can has the next item in within a moment:
            // looking again for that moment spares building a select and sleeping in it. It
            // looks at the channel only: the state is on the putters' cache line, which a
            // getter that read it at every empty look would pull away from them each time.
            if !matches!(block, Block::No) && spin_until_ready(&self.rx) {
                continue;
            }
            let state = self.state.load(SeqCst);
            if state & IMMEDIATE != 0 {
                return Err(GetError::Closed);
            }
            if state & CLOSED != 0 {
                // No put is under way and none will come: what the channel holds is all.
                let item = self.rx.try_recv().map_err(|_| GetError::Closed)?;
                return Ok(self.took(item));
            }
            if matches!(block, Block::No) {
                return Err(GetError::Empty);
            }
            let mut select = Select::new();
            let items = select.recv(&self.rx);
            select.recv(&self.shutdown_rx);
            let ready = match block {
                Block::No => return Err(GetError::Empty),
                Block::Forever => select.select(),
                Block::Until(deadline) => match select.select_deadline(deadline) {
                    Ok(ready) => ready,
                    Err(_) => return Err(GetError::Timeout),
                },
            };
            if ready.index() == items {
                if let Ok(item) = ready.recv(&self.rx) {
                    return Ok(self.took(item));
                }
            } else {
                // The shutdown: the loop looks at the state again.
                let _ = ready.recv(&self.shutdown_rx);
            }
        }
    }

    pub(super) fn qsize(&self) -> usize {
        self.rx.len()
    }

    pub(super) fn full(&self) -> bool {
        self.maxsize > 0 && self.count.load(SeqCst) >= self.maxsize
    }

    pub(super) fn task_done(&self) -> Result<(), TaskDoneError> {
        // One more done, as long as that does not pass the puts let in.
        self.done
            .fetch_update(SeqCst, SeqCst, |d| {
                (d < let_in(self.state.load(SeqCst))).then_some(d + 1)
            })
            .map_err(|_| TaskDoneError(()))?;
        if self.unfinished() == 0 {
            let _guard = lock(&self.done_lock);
            self.all_done.notify_all();
        }
        Ok(())
    }

    pub(super) fn join(&self, block: Block) -> bool {
        let mut guard = lock(&self.done_lock);
        while self.unfinished() > 0 {
            let (again, waited) = wait(&self.all_done, guard, block);
            if !waited {
                return false;
            }
            guard = again;
        }
        true
    }

    pub(super) fn shutdown(&self, immediate: bool) {
        let flags = if immediate { SHUT | IMMEDIATE } else { SHUT };
        // No put is let in after this: their number is final.
        let let_in = let_in(self.state.fetch_or(flags, SeqCst));
        // A put let in sends without waiting (the channel is unbounded), so this waits only
        // while a putting thread is between its entry and its send. `received` is read
        // first: an item taken out between the two reads is then counted by neither, and
        // the loop looks again, where the other order could count it twice.
        loop {
            let received = self.received.load(SeqCst);
            let in_channel = u64::try_from(self.rx.len()).unwrap_or(u64::MAX);
            if received.saturating_add(in_channel) >= let_in {
                break;
            }
            std::thread::yield_now();
        }
        if immediate {
            // As in Python, every removed item counts as done, so that `join` returns once
            // the items already taken out are done too. Their destructors run here, outside
            // every lock.
            let removed: Vec<T> = self.rx.try_iter().map(|item| self.took(item)).collect();
            let removed_tasks = u64::try_from(removed.len()).unwrap_or(u64::MAX);
            let _ = self.done.fetch_update(SeqCst, SeqCst, |d| {
                Some(d.saturating_add(removed_tasks).min(let_in))
            });
            let _guard = lock(&self.done_lock);
            self.all_done.notify_all();
        }
        self.state.fetch_or(CLOSED, SeqCst);
        lock_sender(&self.shutdown_tx).take();
        let _guard = lock(&self.room_lock);
        self.room.notify_all();
    }

    pub(super) fn is_shutdown(&self) -> bool {
        self.state.load(SeqCst) & SHUT != 0
    }

    /// The queue's size, unfinished tasks and whether it is shut down, for `Debug`.
    pub(super) fn status(&self) -> (usize, usize, bool) {
        (
            self.qsize(),
            usize::try_from(self.unfinished()).unwrap_or(usize::MAX),
            self.is_shutdown(),
        )
    }
}

/// Spins a few hundred pauses (growing), looking for an item; whether one came.
fn spin_until_ready<T>(rx: &Receiver<T>) -> bool {
    for round in 0..7 {
        for _ in 0..1u32 << round {
            std::hint::spin_loop();
        }
        if !rx.is_empty() {
            return true;
        }
    }
    false
}

fn lock_sender(mutex: &Mutex<Option<Sender<()>>>) -> MutexGuard<'_, Option<Sender<()>>> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a put found no place in a bounded queue.
enum NoPlace {
    Full,
    Timeout,
    Closed,
}

impl NoPlace {
    fn with<T>(self, item: T) -> PutError<T> {
        match self {
            NoPlace::Full => PutError::Full(item),
            NoPlace::Timeout => PutError::Timeout(item),
            NoPlace::Closed => PutError::Closed(item),
        }
    }
}
