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
//! - **`task_done`/`join`.** `unfinished` counts the items put and not yet marked done; a put
//!   counts its item before sending it, so that a `task_done` for it can never come first.
//! - **`shutdown`.** `state` holds the flags and the number of puts under way: a put enters
//!   (one more under way) and fails if the shutdown flag is up, else sends and leaves. A
//!   shutdown raises the flag, waits for the puts under way to leave, drains the channel if
//!   `immediate`, marks the queue closed, and drops `shutdown_tx`, which wakes every getter
//!   waiting on `shutdown_rx` beside the channel. Once the queue is closed no item can come
//!   any more, so a getter that then finds the channel empty fails with `Closed`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crossbeam_channel::{Receiver, Select, Sender};

use super::{Block, GetError, PutError, TaskDoneError, wait};

/// `state`: a shutdown was asked for; puts fail from now on.
const SHUT: usize = 1;
/// `state`: the shutdown was immediate; gets fail from now on.
const IMMEDIATE: usize = 2;
/// `state`: the shutdown is complete: no put is under way, none will come.
const CLOSED: usize = 4;
/// `state`: one put under way (the count is kept above the flags).
const PUT: usize = 8;

pub(super) struct Channel<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    /// Zero means unbounded, as in Python.
    pub(super) maxsize: usize,
    /// The flags and puts under way, above.
    state: AtomicUsize,
    /// Dropped by the shutdown, which wakes the getters that wait on `shutdown_rx`.
    shutdown_tx: Mutex<Option<Sender<()>>>,
    shutdown_rx: Receiver<()>,
    /// Items put and not yet marked done.
    unfinished: AtomicUsize,
    /// `join` sleeps on `all_done` under `done_lock` until `unfinished` is zero.
    done_lock: Mutex<()>,
    all_done: Condvar,
    /// A bounded queue's items, and the places that puts have reserved.
    count: AtomicUsize,
    /// Puts asleep on `room` under `room_lock`, waiting for a place.
    putters: AtomicUsize,
    room_lock: Mutex<()>,
    room: Condvar,
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
            state: AtomicUsize::new(0),
            shutdown_tx: Mutex::new(Some(shutdown_tx)),
            shutdown_rx,
            unfinished: AtomicUsize::new(0),
            done_lock: Mutex::new(()),
            all_done: Condvar::new(),
            count: AtomicUsize::new(0),
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
        if self.state.fetch_add(PUT, SeqCst) & SHUT != 0 {
            self.state.fetch_sub(PUT, SeqCst);
            self.release();
            return Err(PutError::Closed(item));
        }
        self.unfinished.fetch_add(1, SeqCst);
        // Never fails: this queue holds the receiver.
        let _ = self.tx.send(item);
        self.state.fetch_sub(PUT, SeqCst);
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
                self.release();
                return Ok(item);
            }
            let state = self.state.load(SeqCst);
            if state & IMMEDIATE != 0 {
                return Err(GetError::Closed);
            }
            if state & CLOSED != 0 {
                // No put is under way and none will come: what the channel holds is all.
                let item = self.rx.try_recv().map_err(|_| GetError::Closed)?;
                self.release();
                return Ok(item);
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
                    self.release();
                    return Ok(item);
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
        let before = self
            .unfinished
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .map_err(|_| TaskDoneError(()))?;
        if before == 1 {
            let _guard = lock(&self.done_lock);
            self.all_done.notify_all();
        }
        Ok(())
    }

    pub(super) fn join(&self, block: Block) -> bool {
        let mut guard = lock(&self.done_lock);
        while self.unfinished.load(SeqCst) > 0 {
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
        self.state.fetch_or(flags, SeqCst);
        // A put under way sends without waiting (the channel is unbounded), so this waits
        // only while a putting thread is between its look at the flag and its send.
        while self.state.load(SeqCst) >= PUT {
            std::thread::yield_now();
        }
        if immediate {
            // As in Python, every removed item counts as done, so that `join` returns once
            // the items already taken out are done too. Their destructors run here, outside
            // every lock.
            let removed: Vec<T> = self.rx.try_iter().collect();
            for _ in &removed {
                self.release();
            }
            let _ = self
                .unfinished
                .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(removed.len())));
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
            self.unfinished.load(SeqCst),
            self.is_shutdown(),
        )
    }
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
