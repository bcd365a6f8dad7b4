//! `Queue`, `JoinableQueue` and `SimpleQueue`: Python's `multiprocessing` queues, on a ring
//! of shared memory (see `ring.rs` for how it survives killed processes).
//!
//! The three types share one core. A `Queue` or `JoinableQueue` without a `maxsize` never
//! blocks in `put`, as in Python: when the ring has no room for an item (or the item is
//! larger than a quarter of the ring), the item joins a backlog that a feeder thread of the
//! putting process writes into the ring as consumers make room; `close`, `join_thread` and
//! `cancel_join_thread` are about that thread. A queue with a `maxsize`, and a
//! `SimpleQueue`, write in `put` itself and wait there for room.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use proc_core::shared::Parkers;
use proc_core::{Error, Handle, Result, codec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ring::{DEFAULT_CAPACITY, MAX_ITEM, Ring, SPIN};

/// How long an unbounded `put` waits for another producer to finish before it hands its item
/// to the feeder thread instead.
const LOCK_PATIENCE: Duration = Duration::from_micros(200);

/// The scratch buffer a thread keeps between calls, unless it grew beyond this.
const SCRATCH_KEEP: usize = 1 << 20;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer, emptied.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = SCRATCH.with(Cell::take);
    buf.clear();
    let result = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEEP {
        SCRATCH.with(|s| s.set(buf));
    }
    result
}

pub use proc_core::{GetError, PutError};

/// Which of the three queues a ring belongs to; it travels with the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Joinable,
    Simple,
}

/// How long an idle feeder thread waits for more before it ends (a new one starts on
/// demand): a process is single-threaded again soon after a burst, which `Fork` needs.
const FEEDER_IDLE: Duration = Duration::from_millis(100);

/// How long `shutdown` waits for this process's feeder to put what it holds.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// How long a flush waits between two warnings that it still waits.
const FLUSH_WARNING: Duration = Duration::from_secs(5);

/// This process's feeder thread for one queue, and the items it has not written yet.
#[derive(Debug, Default)]
struct Feed {
    state: Mutex<FeedState>,
    /// Signalled when `pending` drops to zero.
    drained: Condvar,
}

#[derive(Debug, Default)]
struct FeedState {
    /// Items handed to the feeder and not yet in the ring.
    pending: usize,
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
struct Fed {
    payload: Vec<u8>,
    counted: bool,
}

impl Feed {
    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> usize {
        self.state().pending
    }

    fn uncounted(&self) -> usize {
        self.state().uncounted
    }

    /// Hands `item` to the feeder thread, starting one if none runs.
    fn send(
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
        state.pending += 1;
        state.uncounted += usize::from(!counted);
        Ok(())
    }

    /// The feeder's loop: writes what it receives until it is idle or told to end.
    fn run(&self, receiver: Receiver<Fed>, ring: &Ring, joinable: bool) {
        loop {
            match receiver.recv_timeout(FEEDER_IDLE) {
                Ok(Fed { payload, counted }) => {
                    let turn = ring.lock_put(true, None).expect("no deadline");
                    match ring.put(&turn, &payload, None, joinable) {
                        Ok(_) => {}
                        Err(Error::Closed) => {
                            tracing::debug!(
                                "the queue was shut down before its feeder put an item"
                            );
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the queue's feeder thread lost an item")
                        }
                    }
                    drop(turn);
                    // After the put: an item counted twice for a moment is safer than one
                    // that nobody counts.
                    if counted {
                        ring.backlog_shrank();
                    }
                    let mut state = self.state();
                    state.pending -= 1;
                    state.uncounted -= usize::from(!counted);
                    if state.pending == 0 {
                        self.drained.notify_all();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let mut state = self.state();
                    if state.pending == 0 {
                        state.items = None;
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Waits until the feeder has written everything, at most until `deadline`; `false` on
    /// time-out. Without a deadline it warns now and then that it still waits.
    fn wait_drained(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.state();
        while state.pending > 0 {
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
            if deadline.is_none() && waited.timed_out() && state.pending > 0 {
                tracing::warn!(
                    pending = state.pending,
                    "a queue waits for consumers to make room for the items this process put; \
                     cancel_join_thread lets the process go on without them"
                );
            }
        }
        true
    }

    /// Writes everything and ends the feeder thread.
    fn flush(&self) {
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
    fn detach(&self) {
        let mut state = self.state();
        state.items = None;
        state.thread = None;
    }
}

/// One queue as this process sees it; its clones in this process share it.
#[derive(Debug)]
struct Local {
    ring: Arc<Ring>,
    kind: Kind,
    closed: AtomicBool,
    cancel_join: AtomicBool,
    feed: Arc<Feed>,
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
struct Core<T> {
    local: Arc<Local>,
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
    fn new(kind: Kind, maxsize: usize) -> Result<Core<T>> {
        Ok(Core::from_ring(Ring::new(DEFAULT_CAPACITY, maxsize)?, kind))
    }

    fn from_ring(ring: Ring, kind: Kind) -> Core<T> {
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

    fn ring(&self) -> &Ring {
        &self.local.ring
    }

    fn check_open(&self) -> Result<()> {
        if self.local.closed.load(Ordering::Acquire) {
            Err(Error::InvalidState("the queue was closed in this process"))
        } else {
            Ok(())
        }
    }

    /// Shuts the queue down for every process; without `immediate`, what this process's
    /// feeder holds goes in first (for a second at most: a full queue nobody reads must not
    /// hold the call).
    fn shutdown(&self, immediate: bool) {
        if !immediate {
            let soon = proc_core::internal::Deadline::after(SHUTDOWN_FLUSH).instant();
            self.local.feed.wait_drained(soon);
        }
        self.ring().shutdown(immediate);
    }

    /// Whether this queue's puts may go to the feeder thread instead of waiting.
    fn feeds(&self) -> bool {
        self.local.kind != Kind::Simple && self.ring().maxsize() == 0
    }

    /// Puts `item`; `nowait` says what a `false` from the ring means (full or timed out).
    fn put(&self, item: T, deadline: Option<Instant>, nowait: bool) -> Result<(), PutError<T>>
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
            Ok(false) if nowait => Err(PutError::Full(item)),
            Ok(false) => Err(PutError::Timeout(item)),
            Err(Error::Closed) => Err(PutError::Closed(item)),
            Err(e) => Err(PutError::Failed(item, e)),
        }
    }

    /// Writes `payload` into the ring, waiting for the put lock and for room until `deadline`.
    fn put_now(&self, payload: &[u8], deadline: Option<Instant>) -> Result<bool> {
        let ring = self.ring();
        let Some(turn) = ring.lock_put(true, deadline) else {
            return Ok(false);
        };
        ring.put(&turn, payload, deadline, self.local.kind == Kind::Joinable)
    }

    /// Writes `payload` into the ring if that needs no more than a moment's wait, else hands
    /// it to the feeder thread (always, once the feeder has a backlog, to keep this process's
    /// items in order).
    fn put_or_feed(&self, payload: &mut Vec<u8>) -> Result<()> {
        let ring = self.ring();
        if self.local.feed.pending() == 0 && ring.fits_whole(payload.len()) {
            let now = Instant::now();
            // A ring that a busy consumer keeps emptying has room again within microseconds:
            // waiting that long spares the item the trip through the feeder.
            if let Some(turn) = ring.lock_put(true, Some(now + LOCK_PATIENCE))
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

    fn feed(&self, payload: Vec<u8>) -> Result<()> {
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
            ring.backlog_shrank();
        }
        sent
    }

    /// Takes the next item, waiting until `deadline`: `None` when none came.
    fn get(&self, deadline: Option<Instant>) -> Result<Option<T>>
    where
        T: DeserializeOwned,
    {
        self.check_open()?;
        let ring = self.ring();
        let Some(turn) = ring.lock_get(true, deadline) else {
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
    fn qsize(&self) -> usize {
        self.ring().items() + self.backlog()
    }

    /// The items that feeder threads hold and every process counts (see `Ring::backlog`),
    /// and those of this process's that only it counts.
    fn backlog(&self) -> usize {
        self.ring().backlog() + self.local.feed.uncounted()
    }

    fn empty(&self) -> bool {
        self.ring().items() == 0
    }

    fn full(&self) -> bool {
        let maxsize = self.ring().maxsize();
        maxsize > 0 && self.ring().items() >= maxsize
    }

    fn close(&self) {
        self.local.closed.store(true, Ordering::Release);
    }

    fn join_thread(&self) -> Result<()> {
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

    fn cancel_join_thread(&self) {
        self.local.cancel_join.store(true, Ordering::Release);
    }

    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let (handle, len, parkers) = self.ring().parts();
        (self.local.kind, handle, len, parkers).serialize(serializer)
    }

    fn deserialize<'de, D: Deserializer<'de>>(
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
fn deadline(timeout: Duration) -> Option<Instant> {
    proc_core::internal::Deadline::after(timeout).instant()
}

/// The three ways to get, as results: `None` from the ring means the time ran out.
fn got<T>(item: Result<Option<T>>, missing: GetError) -> Result<T, GetError> {
    item?.ok_or(missing)
}

/// The impls that `Queue` and `SimpleQueue` share: clones are the same queue, and the wire
/// form names the kind, so that one kind is not taken for another.
macro_rules! queue_impls {
    ($($queue:ident: $kind:expr),*) => {$(
        impl<T> Clone for $queue<T> {
            fn clone(&self) -> Self {
                $queue {
                    core: self.core.clone(),
                }
            }
        }

        impl<T> fmt::Debug for $queue<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.core.fmt(f)
            }
        }

        impl<T> Serialize for $queue<T> {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                self.core.serialize(serializer)
            }
        }

        impl<'de, T> Deserialize<'de> for $queue<T> {
            fn deserialize<D: Deserializer<'de>>(
                deserializer: D,
            ) -> std::result::Result<Self, D::Error> {
                Core::deserialize(deserializer, $kind).map(|core| $queue { core })
            }
        }
    )*};
}

queue_impls!(Queue: Kind::Plain, SimpleQueue: Kind::Simple);

/// A queue between processes and threads: Python's `multiprocessing.Queue`.
///
/// Many producers and many consumers, in any processes and threads, each item delivered to
/// exactly one `get`. Clones are the same queue; pass one to
/// [`Process::spawn`](proc_core::Process::spawn) as (part of) the argument, or send it over
/// a [`Connection`](crate::Connection) to a process that is already running.
///
/// Items are any `Serialize + DeserializeOwned` type, encoded with postcard. For large byte
/// strings, `serde_bytes::ByteBuf` encodes in one copy where a `Vec<u8>` goes byte by byte.
/// Items cannot carry OS handles (a `Connection`, another queue, a lock): a queue is shared
/// memory, which descriptors cannot cross, so such a `put` fails with
/// [`PutError::Failed`]; send those over a [`Connection`](crate::Connection) or as
/// process arguments.
///
/// Without a `maxsize`, [`put`](Queue::put) never blocks: what does not fit in the queue's
/// shared buffer (1 MiB) waits in a feeder thread of the putting process. As in Python, the
/// process's last handle of the queue waits on drop until the feeder has written everything,
/// so that a child's items are not lost when it returns — and, as in Python, a process that
/// puts more than fits and is joined before anyone gets the items waits for ever (it logs a
/// warning every few seconds; see [`Queue::cancel_join_thread`]). A process that ends with
/// `std::process::exit`, or keeps the queue in a `static`, loses what its feeder holds. The
/// feeder ends when idle, so a burst of puts does not keep the process multi-threaded (which
/// the `Fork` start method refuses).
///
/// With a `maxsize`, `put` itself writes the item, waiting while the queue holds `maxsize`
/// items or the buffer has no room for the whole item; an item larger than the buffer is
/// written while consumers read it.
///
/// # Robustness
///
/// A process killed inside `put` or `get` leaves the queue working for the others: no item
/// is torn or delivered twice, and no lock stays held (the item a killed process was taking
/// is lost with it, as is what its feeder had not written yet). See the crate docs.
///
/// Any holder may put, so a queue never tells a consumer that its producers are gone: a
/// `get` after the last producer crashed waits for ever, as in Python. Where that matters,
/// a [`channel`](crate::channel) disconnects when its senders are dropped or die.
///
/// # Examples
///
/// One producer and two consumers, which stop at the `None` each gets.
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::Queue;
///
/// fn consume(q: Queue<Option<u32>>) -> u32 {
///     let mut sum = 0;
///     while let Some(n) = q.get().unwrap() {
///         sum += n;
///     }
///     sum
/// }
///
/// fn main() {
///     proc_core::init();
///     let q = Queue::new().unwrap();
///     let consumers = [Process::spawn(consume, q.clone()).unwrap(), Process::spawn(consume, q.clone()).unwrap()];
///     for n in 1..=100 {
///         q.put(Some(n)).unwrap();
///     }
///     q.put(None).unwrap();
///     q.put(None).unwrap();
///     let total: u32 = consumers.into_iter().map(|mut c| c.join().unwrap()).sum();
///     assert_eq!(total, 5050);
/// }
/// ```
pub struct Queue<T> {
    core: Core<T>,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A new, empty queue without a limit.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::<u8>::new().unwrap();
    /// assert!(q.empty());
    /// ```
    pub fn new() -> Result<Queue<T>> {
        Core::new(Kind::Plain, 0).map(|core| Queue { core })
    }

    /// A new, empty queue that holds at most `maxsize` items (0: no limit).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `maxsize` exceeds 2^27, [`Error::Io`] when the system
    /// has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::with_maxsize(2).unwrap();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>> {
        Core::new(Kind::Plain, maxsize).map(|core| Queue { core })
    }

    /// Puts `item` at the end of the queue, waiting for room if the queue has a `maxsize`.
    ///
    /// # Errors
    ///
    /// [`PutError::Failed`] when the queue was closed in this process, the item does not
    /// encode, or it is larger than 1 GiB.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::new().unwrap();
    /// q.put("hello".to_string()).unwrap();
    /// assert_eq!(q.get().unwrap(), "hello");
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, None, false)
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] when the queue stayed full; otherwise as [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::Queue::with_maxsize(1).unwrap();
    /// q.put(1).unwrap();
    /// let err = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(err, proc_ipc::PutError::Timeout(2)));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.core.put(item, deadline(timeout), false)
    }

    /// Puts `item` if there is room now.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`], with the item, when the queue is full; otherwise as
    /// [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::with_maxsize(1).unwrap();
    /// q.put_nowait('a').unwrap();
    /// assert_eq!(q.put_nowait('b').unwrap_err().into_inner(), 'b');
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, Some(Instant::now()), true)
    }

    /// Takes the item at the front of the queue, waiting for one as long as it takes.
    ///
    /// # Errors
    ///
    /// [`GetError::Failed`] with [`Error::Decode`] when the item is not a `T` (the item is
    /// consumed), with [`Error::Protocol`] when a peer corrupted the queue's memory, with
    /// [`Error::InvalidState`] when the queue was closed in this process.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::new().unwrap();
    /// q.put(vec![1, 2]).unwrap();
    /// assert_eq!(q.get().unwrap(), [1, 2]);
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        got(self.core.get(None), GetError::Timeout)
    }

    /// Takes the item at the front, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] when none came (which [`GetError::is_empty`] also reports, as
    /// Python raises `queue.Empty`); otherwise as [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::Queue::<u8>::new().unwrap();
    /// let err = q.get_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout() && err.is_empty());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        got(self.core.get(deadline(timeout)), GetError::Timeout)
    }

    /// Takes the item at the front if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when there is none; otherwise as [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::GetError;
    ///
    /// let q = proc_ipc::Queue::<u8>::new().unwrap();
    /// assert_eq!(q.get_nowait(), Err(GetError::Empty));
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetError> {
        got(self.core.get(Some(Instant::now())), GetError::Empty)
    }
}

impl<T> Queue<T> {
    /// Shuts the queue down in every process (Python 3.13's `Queue.shutdown`): later puts
    /// fail with [`PutError::Closed`], gets take what is left and then fail with
    /// [`GetError::Closed`] — at once when `immediate` — and every process blocked in a put,
    /// get or `join` wakes. Without `immediate`, what this process's feeder thread holds goes
    /// in first (for a second at most); other processes' feeders lose what they hold.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::{GetError, PutError};
    ///
    /// let q = proc_ipc::Queue::new().unwrap();
    /// q.put(1).unwrap();
    /// q.shutdown(false);
    /// assert!(q.is_shutdown());
    /// assert_eq!(q.put(2), Err(PutError::Closed(2)));
    /// assert_eq!(q.get(), Ok(1)); // what was put is still taken
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// ```
    #[doc(alias = "ShutDown")]
    pub fn shutdown(&self, immediate: bool) {
        self.core.shutdown(immediate);
    }

    /// Whether the queue was shut down, by any process.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::<u8>::new().unwrap();
    /// assert!(!q.is_shutdown());
    /// q.shutdown(true);
    /// assert!(q.is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.core.ring().is_shutdown()
    }
    /// How many items the queue holds: those in its shared buffer, and those that the feeder
    /// threads of live processes have not written yet (as Python counts an item from its
    /// `put`). Other processes may change it at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::new().unwrap();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.core.qsize()
    }

    /// Whether the queue's shared buffer holds no item (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::new().unwrap();
    /// assert!(q.empty());
    /// q.put(()).unwrap();
    /// assert!(!q.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.core.empty()
    }

    /// Whether the queue holds `maxsize` items (never, without a `maxsize`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::with_maxsize(1).unwrap();
    /// assert!(!q.full());
    /// q.put(0).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn full(&self) -> bool {
        self.core.full()
    }

    /// The queue's `maxsize`, 0 when it has none.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_ipc::Queue::<u8>::with_maxsize(3).unwrap().maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.core.ring().maxsize()
    }

    /// Says that this process puts and gets no more: later calls here fail with
    /// [`Error::InvalidState`]; what the feeder thread holds is still written. Other
    /// processes are not affected. Python's `Queue.close`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::new().unwrap();
    /// q.close();
    /// assert!(q.put(1).is_err());
    /// ```
    pub fn close(&self) {
        self.core.close()
    }

    /// Waits until this process's feeder thread has written every item it holds, after
    /// [`close`](Queue::close). Python's `Queue.join_thread`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the queue is not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::new().unwrap();
    /// assert!(q.join_thread().is_err());
    /// q.put(1).unwrap();
    /// q.close();
    /// q.join_thread().unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn join_thread(&self) -> Result<()> {
        self.core.join_thread()
    }

    /// Lets this process go on without waiting for its feeder thread: when the last handle
    /// drops, the feeder goes on writing in the background, and what it has not written when
    /// the process ends is lost. Python's `Queue.cancel_join_thread`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::Queue::<u8>::new().unwrap();
    /// q.cancel_join_thread();
    /// drop(q); // returns at once, whatever is left unwritten
    /// ```
    pub fn cancel_join_thread(&self) {
        self.core.cancel_join_thread()
    }

    pub(crate) fn ring(&self) -> &Ring {
        self.core.ring()
    }
}

/// A [`Queue`] that counts finished tasks: Python's `multiprocessing.JoinableQueue`.
///
/// Every item put is a task; a consumer calls [`task_done`](JoinableQueue::task_done) once
/// per item it finished, and [`join`](JoinableQueue::join) waits until every task is done.
/// At most 2^27 tasks may be unfinished at once; `put` waits beyond that.
///
/// A task counts from its `put`, as in Python: `join` in any process also waits for the
/// items that feeder threads of live processes hold. What a killed process's feeder held dies
/// with it and is not waited for, and so are items the queue itself drops — parts of an item
/// whose consumer was killed, an item that arrives as an error: they count as done.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::JoinableQueue;
///
/// fn work(q: JoinableQueue<u32>) {
///     loop {
///         let _job = q.get().unwrap();
///         q.task_done().unwrap();
///     }
/// }
///
/// fn main() {
///     proc_core::init();
///     let q = JoinableQueue::new().unwrap();
///     let mut worker = Process::builder().daemon(true).spawn(work, q.clone()).unwrap();
///     for job in 0..10 {
///         q.put(job).unwrap();
///     }
///     q.join().unwrap();
///     assert_eq!(q.qsize(), 0);
///     worker.terminate().unwrap();
/// }
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished", &self.queue.ring().unfinished())
            .finish()
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.queue.core.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Core::deserialize(deserializer, Kind::Joinable).map(|core| JoinableQueue {
            queue: Queue { core },
        })
    }
}

/// Writes `JoinableQueue` methods that do what the `Queue` method of the same name does.
macro_rules! as_queue {
    ($(
        $(#[$meta:meta])*
        fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?;
    )*) => {$(
        $(#[$meta])*
        pub fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            self.queue.$name($($arg),*)
        }
    )*};
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    as_queue! {
        /// As [`Queue::put`]; the item is a task until [`task_done`](JoinableQueue::task_done).
        ///
        /// # Errors
        ///
        /// As [`Queue::put`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::new().unwrap();
        /// q.put(1).unwrap();
        /// assert_eq!(q.unfinished_tasks(), 1);
        /// ```
        fn put(&self, item: T) -> Result<(), PutError<T>>;

        /// As [`Queue::put_timeout`].
        ///
        /// # Errors
        ///
        /// As [`Queue::put_timeout`].
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// let q = proc_ipc::JoinableQueue::with_maxsize(1).unwrap();
        /// q.put_timeout(1, Duration::from_secs(1)).unwrap();
        /// assert!(q.put_timeout(2, Duration::ZERO).unwrap_err().is_timeout());
        /// ```
        fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>>;

        /// As [`Queue::put_nowait`].
        ///
        /// # Errors
        ///
        /// As [`Queue::put_nowait`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::with_maxsize(1).unwrap();
        /// q.put_nowait('a').unwrap();
        /// assert!(q.put_nowait('b').unwrap_err().is_full());
        /// ```
        fn put_nowait(&self, item: T) -> Result<(), PutError<T>>;

        /// As [`Queue::get`].
        ///
        /// # Errors
        ///
        /// As [`Queue::get`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::new().unwrap();
        /// q.put(7).unwrap();
        /// assert_eq!(q.get().unwrap(), 7);
        /// ```
        fn get(&self) -> Result<T, GetError>;

        /// As [`Queue::get_timeout`].
        ///
        /// # Errors
        ///
        /// As [`Queue::get_timeout`].
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// let q = proc_ipc::JoinableQueue::<u8>::new().unwrap();
        /// assert!(q.get_timeout(Duration::from_millis(5)).unwrap_err().is_empty());
        /// ```
        fn get_timeout(&self, timeout: Duration) -> Result<T, GetError>;

        /// As [`Queue::get_nowait`].
        ///
        /// # Errors
        ///
        /// As [`Queue::get_nowait`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::<u8>::new().unwrap();
        /// assert_eq!(q.get_nowait(), Err(proc_ipc::GetError::Empty));
        /// ```
        fn get_nowait(&self) -> Result<T, GetError>;
    }
}

impl<T> JoinableQueue<T> {
    as_queue! {
        /// As [`Queue::qsize`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::new().unwrap();
        /// q.put(1).unwrap();
        /// assert_eq!(q.qsize(), 1);
        /// ```
        fn qsize(&self) -> usize;

        /// As [`Queue::empty`].
        ///
        /// # Examples
        ///
        /// ```
        /// assert!(proc_ipc::JoinableQueue::<u8>::new().unwrap().empty());
        /// ```
        fn empty(&self) -> bool;

        /// As [`Queue::full`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::with_maxsize(1).unwrap();
        /// q.put(1).unwrap();
        /// assert!(q.full());
        /// ```
        fn full(&self) -> bool;

        /// As [`Queue::maxsize`].
        ///
        /// # Examples
        ///
        /// ```
        /// assert_eq!(proc_ipc::JoinableQueue::<u8>::with_maxsize(3).unwrap().maxsize(), 3);
        /// ```
        fn maxsize(&self) -> usize;

        /// As [`Queue::close`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::new().unwrap();
        /// q.close();
        /// assert!(q.put(1).is_err());
        /// ```
        fn close(&self);

        /// As [`Queue::join_thread`].
        ///
        /// # Errors
        ///
        /// As [`Queue::join_thread`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::new().unwrap();
        /// q.put(1).unwrap();
        /// q.close();
        /// q.join_thread().unwrap();
        /// ```
        fn join_thread(&self) -> Result<()>;

        /// As [`Queue::cancel_join_thread`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::<u8>::new().unwrap();
        /// q.cancel_join_thread();
        /// ```
        fn cancel_join_thread(&self);

        /// As [`Queue::shutdown`]; an immediate shutdown also releases [`join`](JoinableQueue::join).
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::new().unwrap();
        /// q.put(1).unwrap();
        /// q.shutdown(true);
        /// q.join().unwrap(); // the task will never be done: nobody waits for it
        /// ```
        fn shutdown(&self, immediate: bool);

        /// As [`Queue::is_shutdown`].
        ///
        /// # Examples
        ///
        /// ```
        /// let q = proc_ipc::JoinableQueue::<u8>::new().unwrap();
        /// q.shutdown(false);
        /// assert!(q.is_shutdown());
        /// ```
        fn is_shutdown(&self) -> bool;
    }

    pub(crate) fn ring(&self) -> &Ring {
        self.queue.ring()
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A new, empty joinable queue without a limit.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::JoinableQueue::<u8>::new().unwrap();
    /// q.join().unwrap(); // nothing to wait for
    /// ```
    pub fn new() -> Result<JoinableQueue<T>> {
        JoinableQueue::with_maxsize(0)
    }

    /// A new, empty joinable queue that holds at most `maxsize` items (0: no limit).
    ///
    /// # Errors
    ///
    /// As [`Queue::with_maxsize`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::JoinableQueue::with_maxsize(1).unwrap();
    /// q.put(1).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>> {
        Core::new(Kind::Joinable, maxsize).map(|core| JoinableQueue {
            queue: Queue { core },
        })
    }
}

impl<T> JoinableQueue<T> {
    /// Says that one item taken from the queue has been dealt with.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when called more times than items were put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::JoinableQueue::new().unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// q.task_done().unwrap();
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<()> {
        if self.queue.ring().task_done() {
            Ok(())
        } else {
            Err(Error::InvalidState(
                "task_done was called more times than items were put",
            ))
        }
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](JoinableQueue::task_done) — first those this process's feeder thread
    /// still holds, then those in the queue and in other live processes' feeders.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when a peer corrupted the queue's memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::JoinableQueue::new().unwrap();
    /// q.put("job".to_string()).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// q.join().unwrap();
    /// ```
    pub fn join(&self) -> Result<()> {
        self.queue.core.local.feed.wait_drained(None);
        self.queue.ring().join(None).map(drop)
    }

    /// Waits at most `timeout` for every task to be done.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when some are still unfinished; otherwise as
    /// [`JoinableQueue::join`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::JoinableQueue::new().unwrap();
    /// q.put(1).unwrap();
    /// assert!(q.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        let deadline = deadline(timeout);
        // Items still in this process's backlog are unfinished: they go first.
        if !self.queue.core.local.feed.wait_drained(deadline) {
            return Err(Error::Timeout);
        }
        if self.queue.ring().join(deadline)? {
            Ok(())
        } else {
            Err(Error::Timeout)
        }
    }

    /// How many items were put and not yet marked done.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::JoinableQueue::new().unwrap();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        self.queue.ring().unfinished() + self.queue.core.backlog()
    }
}

/// The small queue: Python's `multiprocessing.SimpleQueue`.
///
/// No limit, no feeder thread and no time-outs: [`put`](SimpleQueue::put) writes the item
/// into the shared buffer itself, waiting for room when the buffer is full, and
/// [`get`](SimpleQueue::get) waits for an item. As robust as [`Queue`].
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::SimpleQueue;
///
/// fn shout(q: SimpleQueue<String>) {
///     q.put("hello".to_string()).unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let q = SimpleQueue::new().unwrap();
///     let mut child = Process::spawn(shout, q.clone()).unwrap();
///     assert_eq!(q.get().unwrap(), "hello");
///     child.join().unwrap();
/// }
/// ```
pub struct SimpleQueue<T> {
    core: Core<T>,
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty simple queue.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_ipc::SimpleQueue::<u8>::new().unwrap().empty());
    /// ```
    pub fn new() -> Result<SimpleQueue<T>> {
        Core::new(Kind::Simple, 0).map(|core| SimpleQueue { core })
    }

    /// Puts `item` at the end of the queue, waiting for room in its buffer.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::new().unwrap();
    /// q.put(3.5).unwrap();
    /// assert_eq!(q.get().unwrap(), 3.5);
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, None, false)
    }

    /// Takes the item at the front, waiting for one as long as it takes.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::new().unwrap();
    /// q.put(Some("x".to_string())).unwrap();
    /// assert_eq!(q.get().unwrap().as_deref(), Some("x"));
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        got(self.core.get(None), GetError::Timeout)
    }

    /// Takes the item at the front, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] when none came; otherwise as [`SimpleQueue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::SimpleQueue::<u8>::new().unwrap();
    /// assert!(q.get_timeout(Duration::from_millis(5)).unwrap_err().is_empty());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        got(self.core.get(deadline(timeout)), GetError::Timeout)
    }
}

impl<T> SimpleQueue<T> {
    /// Shuts the queue down in every process (Python 3.13's `Queue.shutdown`): later puts
    /// fail with [`PutError::Closed`], gets take what is left and then fail with
    /// [`GetError::Closed`] — at once when `immediate` — and every process blocked in a put,
    /// or get wakes.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::{GetError, PutError};
    ///
    /// let q = proc_ipc::SimpleQueue::new().unwrap();
    /// q.put(1).unwrap();
    /// q.shutdown(false);
    /// assert!(q.is_shutdown());
    /// assert_eq!(q.put(2), Err(PutError::Closed(2)));
    /// assert_eq!(q.get(), Ok(1)); // what was put is still taken
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// ```
    #[doc(alias = "ShutDown")]
    pub fn shutdown(&self, immediate: bool) {
        self.core.shutdown(immediate);
    }

    /// Whether the queue was shut down, by any process.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::<u8>::new().unwrap();
    /// assert!(!q.is_shutdown());
    /// q.shutdown(true);
    /// assert!(q.is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.core.ring().is_shutdown()
    }
    /// Whether the queue holds no item (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::new().unwrap();
    /// q.put(1).unwrap();
    /// assert!(!q.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.core.empty()
    }

    /// Says that this process puts and gets no more: later calls here fail with
    /// [`Error::InvalidState`]. Python's `SimpleQueue.close`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::<u8>::new().unwrap();
    /// q.close();
    /// assert!(q.get().is_err());
    /// ```
    pub fn close(&self) {
        self.core.close()
    }

    pub(crate) fn ring(&self) -> &Ring {
        self.core.ring()
    }
}
