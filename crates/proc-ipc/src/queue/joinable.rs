//! `JoinableQueue`: a [`Queue`] that counts finished tasks.

use std::fmt;
use std::time::Duration;

use proc_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{Core, Kind, deadline};
use super::{GetError, PutError, Queue};
use crate::ring::Ring;

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
