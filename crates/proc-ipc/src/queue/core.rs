//! The core that `Queue`, `JoinableQueue` and `SimpleQueue` share: this process's view of
//! one ring, its feeder, and the encoding of items.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proc_core::shared::Parkers;
use proc_core::{Error, Handle, Result, codec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ring::{DEFAULT_CAPACITY, MAX_ITEM, Ring, SPIN};

use super::feeder::{Fed, Feed, SHUTDOWN_FLUSH};
use super::{GetError, PutError};

/// How long an unbounded `put` waits for another producer to finish before it hands its item
/// to the feeder thread instead.
const LOCK_PATIENCE: Duration = Duration::from_micros(200);

/// The scratch buffer a thread keeps between calls, unless it grew beyond this.
const SCRATCH_KEEP: usize = 1 << 20;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer, emptied.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = SCRATCH.with(Cell::take);
    buf.clear();
    let result = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEEP {
        SCRATCH.with(|s| s.set(buf));
    }
    result
}

/// How a put that finds no room fails: at once with `Full` (`put_nowait`), or with
/// `Timeout` once its deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    NoWait,
    Wait,
}

/// Which of the three queues a ring belongs to; it travels with the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Kind {
    Plain,
    Joinable,
    Simple,
}

/// One queue as this process sees it; its clones in this process share it.
#[derive(Debug)]
pub(super) struct Local {
    pub(super) ring: Arc<Ring>,
    pub(super) kind: Kind,
    pub(super) closed: AtomicBool,
    pub(super) cancel_join: AtomicBool,
    pub(super) feed: Arc<Feed>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // Python's queues flush at exit too, unless cancel_join_thread was called.
        if self.cancel_join.load(Ordering::Acquire) {
            self.feed.detach();
        } else {
            self.feed.flush();
        }
    }
}

/// The core the three queue types share.
pub(super) struct Core<T> {
    pub(super) local: Arc<Local>,
    item: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Core<T> {
    fn clone(&self) -> Self {
        Core {
            local: self.local.clone(),
            item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("kind", &self.local.kind)
            .field("ring", &self.local.ring)
            .field("backlog", &self.local.feed.pending())
            .field("closed", &self.local.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T> Core<T> {
    pub(super) fn new(kind: Kind, maxsize: usize) -> Result<Core<T>> {
        Ok(Core::from_ring(Ring::new(DEFAULT_CAPACITY, maxsize)?, kind))
    }

    pub(super) fn from_ring(ring: Ring, kind: Kind) -> Core<T> {
        Core {
            local: Arc::new(Local {
                ring: Arc::new(ring),
                kind,
                closed: AtomicBool::new(false),
                cancel_join: AtomicBool::new(false),
                feed: Arc::default(),
            }),
            item: PhantomData,
        }
    }

    pub(super) fn ring(&self) -> &Ring {
        &self.local.ring
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.local.closed.load(Ordering::Acquire) {
            Err(Error::InvalidState("the queue was closed in this process"))
        } else {
            Ok(())
        }
    }

    /// Shuts the queue down for every process; without `immediate`, what this process's
    /// feeder holds goes in first (for a second at most: a full queue nobody reads must not
    /// hold the call).
    pub(super) fn shutdown(&self, immediate: bool) {
        if !immediate {
            let soon = proc_core::internal::Deadline::after(SHUTDOWN_FLUSH).instant();
            self.local.feed.wait_drained(soon);
        }
        self.ring().shutdown(immediate);
    }

    /// Whether this queue's puts may go to the feeder thread instead of waiting.
    pub(super) fn feeds(&self) -> bool {
        self.local.kind != Kind::Simple && self.ring().maxsize() == 0
    }

    /// Puts `item`; `put` says what a `false` from the ring means (full or timed out).
    pub(super) fn put(
        &self,
        item: T,
        deadline: Option<Instant>,
        put: Put,
    ) -> Result<(), PutError<T>>
    where
        T: Serialize,
    {
        if let Err(e) = self.check_open() {
            return Err(PutError::Failed(item, e));
        }
        let outcome = with_scratch(|buf| {
            codec::encode_into(&item, buf)?;
            if buf.len() > MAX_ITEM {
                return Err(Error::Protocol(format!(
                    "an item of {} bytes exceeds the queue's limit of {MAX_ITEM} bytes",
                    buf.len()
                )));
            }
            if self.feeds() {
                self.put_or_feed(buf).map(|()| true)
            } else {
                self.put_now(buf, deadline)
            }
        });
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) if put == Put::NoWait => Err(PutError::Full(item)),
            Ok(false) => Err(PutError::Timeout(item)),
            Err(Error::Closed) => Err(PutError::Closed(item)),
            Err(e) => Err(PutError::Failed(item, e)),
        }
    }

    /// Writes `payload` into the ring, waiting for the put lock and for room until `deadline`.
    pub(super) fn put_now(&self, payload: &[u8], deadline: Option<Instant>) -> Result<bool> {
        let ring = self.ring();
        let Some(turn) = ring.lock_put(deadline) else {
            return Ok(false);
        };
        ring.put(&turn, payload, deadline, self.local.kind == Kind::Joinable)
    }

    /// Writes `payload` into the ring if that needs no more than a moment's wait, else hands
    /// it to the feeder thread (always, once the feeder has a backlog, to keep this process's
    /// items in order).
    pub(super) fn put_or_feed(&self, payload: &mut Vec<u8>) -> Result<()> {
        let ring = self.ring();
        if self.local.feed.pending() == 0 && ring.fits_whole(payload.len()) {
            let now = Instant::now();
            // A ring that a busy consumer keeps emptying has room again within microseconds:
            // waiting that long spares the item the trip through the feeder.
            if let Some(turn) = ring.lock_put(Some(now + LOCK_PATIENCE))
                && ring.put(
                    &turn,
                    payload,
                    Some(now + SPIN),
                    self.local.kind == Kind::Joinable,
                )?
            {
                return Ok(());
            }
        }
        self.feed(std::mem::take(payload))
    }

    pub(super) fn feed(&self, payload: Vec<u8>) -> Result<()> {
        let ring = self.local.ring.clone();
        let feed = self.local.feed.clone();
        let joinable = self.local.kind == Kind::Joinable;
        // Counted before it is handed over, so that no process ever misses it.
        let counted = ring.backlog_grew();
        let sent = self.local.feed.send(Fed { payload, counted }, |receiver| {
            let ring = ring.clone();
            let thread = std::thread::Builder::new()
                .name("procs-queue-feeder".into())
                .spawn(move || feed.run(receiver, &ring, joinable))?;
            tracing::debug!("queue feeder thread started");
            Ok(thread)
        });
        if sent.is_err() && counted {
            ring.backlog_shrank(1);
        }
        sent
    }

    /// Takes the next item, waiting until `deadline`: `None` when none came.
    pub(super) fn get(&self, deadline: Option<Instant>) -> Result<Option<T>>
    where
        T: DeserializeOwned,
    {
        self.check_open()?;
        let ring = self.ring();
        let Some(turn) = ring.lock_get(deadline) else {
            return Ok(None);
        };
        with_scratch(|buf| {
            if !ring.get(&turn, buf, deadline, MAX_ITEM)? {
                return Ok(None);
            }
            // The next consumer may go on while this one decodes.
            drop(turn);
            let item = codec::decode(buf);
            if item.is_err() {
                // The consumer gets an error, not a task: the item counts as done.
                ring.dropped(1);
            }
            item.map(Some)
        })
    }

    /// The items in the ring, and those that feeder threads hold: of every live process, and
    /// the ones of this process that no other can count.
    pub(super) fn qsize(&self) -> usize {
        self.ring().items() + self.backlog()
    }

    /// The items that feeder threads hold and every process counts (see `Ring::backlog`),
    /// and those of this process's that only it counts.
    pub(super) fn backlog(&self) -> usize {
        self.ring().backlog() + self.local.feed.uncounted()
    }

    pub(super) fn empty(&self) -> bool {
        self.ring().items() == 0
    }

    pub(super) fn full(&self) -> bool {
        let maxsize = self.ring().maxsize();
        maxsize > 0 && self.ring().items() >= maxsize
    }

    pub(super) fn close(&self) {
        self.local.closed.store(true, Ordering::Release);
    }

    pub(super) fn join_thread(&self) -> Result<()> {
        if !self.local.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidState(
                "join_thread needs close first: call close, then join_thread",
            ));
        }
        if !self.local.cancel_join.load(Ordering::Acquire) {
            self.local.feed.flush();
        }
        Ok(())
    }

    pub(super) fn cancel_join_thread(&self) {
        self.local.cancel_join.store(true, Ordering::Release);
    }

    pub(super) fn serialize<S: Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let (handle, len, parkers) = self.ring().parts();
        (self.local.kind, handle, len, parkers).serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
        kind: Kind,
    ) -> std::result::Result<Core<T>, D::Error> {
        let (sent, handle, len, parkers) =
            <(Kind, Handle, u64, Parkers)>::deserialize(deserializer)?;
        if sent != kind {
            return Err(codec::de_error(format!(
                "expected a {kind:?} queue, got a {sent:?} queue"
            )));
        }
        let ring = Ring::from_parts(handle, len, parkers).map_err(codec::de_error)?;
        Ok(Core::from_ring(ring, kind))
    }
}

/// When a wait of `timeout` started now ends (`None`: too far to say, so never).
pub(super) fn deadline(timeout: Duration) -> Option<Instant> {
    proc_core::internal::Deadline::after(timeout).instant()
}

/// The three ways to get, as results: `None` from the ring means the time ran out.
pub(super) fn got<T>(item: Result<Option<T>>, missing: GetError) -> Result<T, GetError> {
    item?.ok_or(missing)
}
