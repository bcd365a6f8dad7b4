//! A process's feeder thread for one queue: what an unbounded `put` could not write at once,
//! written into the ring as consumers make room (Python's queue feeder thread).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use proc_core::{Error, Result};

use crate::ring::Ring;

/// How long an idle feeder thread waits for more before it ends (a new one starts on
/// demand): a process is single-threaded again soon after a burst, which `Fork` needs.
const FEEDER_IDLE: Duration = Duration::from_millis(100);

/// How many items the feeder writes in one turn at the put lock, at most: enough that the
/// feeder keeps up with a producer that puts small items as fast as it can (so that its
/// backlog empties and its puts go straight into the ring again), few enough that other
/// processes' producers wait for the lock only a moment.
const BATCH: usize = 64;

/// How long `shutdown` waits for this process's feeder to put what it holds.
pub(super) const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// How long a flush waits between two warnings that it still waits.
const FLUSH_WARNING: Duration = Duration::from_secs(5);

/// This process's feeder thread for one queue, and the items it has not written yet.
#[derive(Debug, Default)]
pub(super) struct Feed {
    state: Mutex<FeedState>,
    /// Items handed to the feeder and not yet in the ring; changed under the state's lock,
    /// read without it by every `put`, which goes straight to the ring only when it is 0.
    pending: AtomicUsize,
    /// Signalled when `pending` drops to zero.
    drained: Condvar,
}

#[derive(Debug, Default)]
struct FeedState {
    /// Those of `pending` that the ring's backlog table does not count (it had no slot left
    /// for this process): only this process knows of them.
    uncounted: usize,
    /// The way to the running feeder; `None` while none runs. Items are sent, and the feeder
    /// decides to end, under the state's lock, so no item is ever left behind in a channel.
    items: Option<Sender<Fed>>,
    thread: Option<JoinHandle<()>>,
}

/// An item on its way through the feeder, and whether the ring's backlog table counts it.
#[derive(Debug)]
pub(super) struct Fed {
    pub(super) payload: Vec<u8>,
    pub(super) counted: bool,
}

impl Feed {
    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    pub(super) fn uncounted(&self) -> usize {
        self.state().uncounted
    }

    /// Hands `item` to the feeder thread, starting one if none runs.
    pub(super) fn send(
        &self,
        item: Fed,
        start: impl FnOnce(Receiver<Fed>) -> Result<JoinHandle<()>>,
    ) -> Result<()> {
        let mut state = self.state();
        if state.items.is_none() {
            // The last feeder said it ends (under this lock): let it finish.
            if let Some(old) = state.thread.take() {
                let _ = old.join();
            }
            let (items, receiver) = crossbeam_channel::unbounded();
            state.thread = Some(start(receiver)?);
            state.items = Some(items);
        }
        let counted = item.counted;
        let sent = state.items.as_ref().map(|items| items.send(item));
        if !matches!(sent, Some(Ok(()))) {
            return Err(Error::InvalidState("the queue's feeder thread has ended"));
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        state.uncounted += usize::from(!counted);
        Ok(())
    }

    /// The feeder's loop: writes what it receives until it is idle or told to end, up to
    /// [`BATCH`] items in one turn at the put lock.
    pub(super) fn run(&self, receiver: Receiver<Fed>, ring: &Ring, joinable: bool) {
        loop {
            let first = match receiver.recv_timeout(FEEDER_IDLE) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    let mut state = self.state();
                    if self.pending() == 0 {
                        state.items = None;
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let (mut written, mut counted) = (0usize, 0u32);
            let turn = ring.lock_put(None).expect("no deadline");
            for Fed {
                payload,
                counted: in_table,
            } in std::iter::once(first).chain(receiver.try_iter().take(BATCH - 1))
            {
                match ring.put(&turn, &payload, None, joinable) {
                    Ok(_) => {}
                    Err(Error::Closed) => {
                        tracing::debug!("the queue was shut down before its feeder put an item");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the queue's feeder thread lost an item")
                    }
                }
                written += 1;
                counted += u32::from(in_table);
            }
            drop(turn);
            // After the puts: an item counted twice for a moment is safer than one that
            // nobody counts.
            ring.backlog_shrank(counted);
            let mut state = self.state();
            state.uncounted -= written - counted as usize;
            if self.pending.fetch_sub(written, Ordering::AcqRel) == written {
                self.drained.notify_all();
            }
        }
    }

    /// Waits until the feeder has written everything, at most until `deadline`; `false` on
    /// time-out. Without a deadline it warns now and then that it still waits.
    pub(super) fn wait_drained(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.state();
        while self.pending() > 0 {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            let slice = deadline.map_or(FLUSH_WARNING, |d| d - now);
            let (next, waited) = self
                .drained
                .wait_timeout(state, slice)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if deadline.is_none() && waited.timed_out() && self.pending() > 0 {
                tracing::warn!(
                    pending = self.pending(),
                    "a queue waits for consumers to make room for the items this process put; \
                     cancel_join_thread lets the process go on without them"
                );
            }
        }
        true
    }

    /// Writes everything and ends the feeder thread.
    pub(super) fn flush(&self) {
        self.wait_drained(None);
        let thread = {
            let mut state = self.state();
            state.items = None;
            state.thread.take()
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Lets the feeder thread end on its own once it has written everything.
    pub(super) fn detach(&self) {
        let mut state = self.state();
        state.items = None;
        state.thread = None;
    }
}
