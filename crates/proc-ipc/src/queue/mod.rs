//! `Queue`, `JoinableQueue` and `SimpleQueue`: Python's `multiprocessing` queues, on a ring
//! of shared memory (see `ring.rs` for how it survives killed processes).
//!
//! The three types share one core. A `Queue` or `JoinableQueue` without a `maxsize` never
//! blocks in `put`, as in Python: when the ring has no room for an item (or the item is
//! larger than a quarter of the ring), the item joins a backlog that a feeder thread of the
//! putting process writes into the ring as consumers make room; `close`, `join_thread` and
//! `cancel_join_thread` are about that thread. A queue with a `maxsize`, and a
//! `SimpleQueue`, write in `put` itself and wait there for room.

mod core;
mod feeder;
mod joinable;

use std::fmt;
use std::time::{Duration, Instant};

#[cfg(doc)]
use proc_core::Error;
use proc_core::Result;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ring::Ring;

pub(crate) use self::core::Put;
use self::core::{Core, Kind, deadline, got};
pub use joinable::JoinableQueue;
pub use proc_core::{GetError, PutError};

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
        self.core.put(item, None, Put::Wait)
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
        self.core.put(item, deadline(timeout), Put::Wait)
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
        self.core.put(item, Some(Instant::now()), Put::NoWait)
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
        self.core.put(item, None, Put::Wait)
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
