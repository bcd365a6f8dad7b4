//! The thread queues of Python's `queue` module: [`Queue`] (first in, first out), [`LifoQueue`]
//! (last in, first out), [`PriorityQueue`] (smallest first) and [`SimpleQueue`].
//!
//! The three main queues share one interface, named after Python's: `put`, `put_timeout`,
//! `put_nowait`, `get`, `get_timeout`, `get_nowait`, `qsize`, `empty`, `full`, `maxsize`,
//! `task_done`, `join` and `shutdown` (Python 3.13). A queue is a handle: cloning it gives
//! another handle on the same queue, and it is [`Send`] and [`Sync`] when its items are
//! [`Send`], so threads share it by cloning or by reference.
//!
//! [`Queue`] and [`SimpleQueue`] stand on a crossbeam channel, whose blocking calls spin a
//! little before they sleep (so that a producer and a consumer do not take turns at one
//! lock, or wake each other through the kernel, at every item); [`LifoQueue`] and
//! [`PriorityQueue`] sleep on a condition variable. A call that cannot go on
//! returns an error instead of raising: [`GetError`] for the `get` family and [`PutError`] for
//! the `put` family, which gives the rejected item back (as crossbeam-channel's
//! `TrySendError` does). Both convert into [`proc_core::Error`] for use with `?`.
//!
//! These queues connect the threads of one process. To connect processes, use the queues of
//! `proc-ipc`.
//!
//! # Examples
//!
//! A pool of workers fed through a queue, with `task_done`/`join` telling the producer when all
//! the work is done (the example of Python's `queue` documentation):
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use std::thread;
//!
//! use proc_sync::queue::Queue;
//!
//! let q = Queue::new();
//! let total = Arc::new(AtomicU64::new(0));
//! for _ in 0..4 {
//!     let (q, total) = (q.clone(), Arc::clone(&total));
//!     thread::spawn(move || {
//!         while let Ok(n) = q.get() {
//!             total.fetch_add(n, Ordering::Relaxed);
//!             q.task_done().unwrap();
//!         }
//!     });
//! }
//! for n in 1..=100 {
//!     q.put(n).unwrap();
//! }
//! q.join();
//! assert_eq!(total.load(Ordering::Relaxed), 5050);
//! // Let the workers' `get` return an error, so that they end.
//! q.shutdown(false);
//! ```
//!
//! Items that cannot be sent to another thread cannot go through a queue shared with one:
//!
//! ```compile_fail
//! use std::rc::Rc;
//!
//! let q = proc_sync::queue::Queue::new();
//! q.put(Rc::new(1)).unwrap();
//! std::thread::spawn(move || q.get());
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use proc_core::{GetError, PutError};

use crossbeam_channel::{Receiver, Sender};

mod fifo;

use fifo::Channel;

/// `task_done` was called more times than there were items put in the queue; Python raises
/// `ValueError`.
///
/// # Examples
///
/// ```
/// let q = proc_sync::queue::Queue::<u8>::new();
/// let err = q.task_done().unwrap_err();
/// assert_eq!(err.to_string(), "task_done was called more times than items were put in the queue");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskDoneError(());

const TASK_DONE_MESSAGE: &str = "task_done was called more times than items were put in the queue";

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TASK_DONE_MESSAGE)
    }
}

impl StdError for TaskDoneError {}

/// Converts into [`proc_core::Error::InvalidState`], since it reports a misuse.
///
/// # Examples
///
/// ```
/// let q = proc_sync::queue::Queue::<u8>::new();
/// let err = proc_core::Error::from(q.task_done().unwrap_err());
/// assert!(matches!(err, proc_core::Error::InvalidState(_)));
/// ```
impl From<TaskDoneError> for proc_core::Error {
    fn from(_: TaskDoneError) -> Self {
        proc_core::Error::InvalidState(TASK_DONE_MESSAGE)
    }
}

/// How long a call may wait.
#[derive(Clone, Copy)]
enum Block {
    No,
    Forever,
    Until(Instant),
}

impl Block {
    fn timeout(timeout: Duration) -> Self {
        // A deadline too far to represent is as good as no deadline.
        Instant::now()
            .checked_add(timeout)
            .map_or(Block::Forever, Block::Until)
    }
}

/// The order in which a queue gives its items back.
trait Store: Default {
    type Item;
    fn len(&self) -> usize;
    fn push(&mut self, item: Self::Item);
    fn pop(&mut self) -> Option<Self::Item>;
    fn take_all(&mut self) -> Vec<Self::Item>;
}

/// Last in, first out.
struct Lifo<T>(Vec<T>);

/// Smallest first.
struct Heap<T>(BinaryHeap<Reverse<T>>);

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T: Ord> Default for Heap<T> {
    fn default() -> Self {
        Heap(BinaryHeap::new())
    }
}

impl<T> Store for Lifo<T> {
    type Item = T;
    fn len(&self) -> usize {
        self.0.len()
    }
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn take_all(&mut self) -> Vec<T> {
        std::mem::take(&mut self.0)
    }
}

impl<T: Ord> Store for Heap<T> {
    type Item = T;
    fn len(&self) -> usize {
        self.0.len()
    }
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(item)| item)
    }
    fn take_all(&mut self) -> Vec<T> {
        self.0.drain().map(|Reverse(item)| item).collect()
    }
}

struct State<S> {
    items: S,
    unfinished_tasks: usize,
    shut_down: bool,
    /// Threads asleep in `get` and in `put`: a notify with nobody asleep would still be a
    /// system call (std's condition variable always wakes the futex).
    getters: usize,
    putters: usize,
}

/// What every handle on one queue points to; the logic of Python's `queue.Queue`.
struct Shared<S> {
    state: Mutex<State<S>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_tasks_done: Condvar,
    /// Zero means unbounded, as in Python.
    maxsize: usize,
}

/// Waits on `cv` until notified or until the deadline of `block`; the guard again, and
/// `false` when it did not wait because the deadline has passed (at once for [`Block::No`]).
fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>, block: Block) -> (MutexGuard<'a, T>, bool) {
    match block {
        Block::No => (guard, false),
        Block::Forever => (cv.wait(guard).unwrap_or_else(PoisonError::into_inner), true),
        Block::Until(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (guard, false);
            }
            let (guard, _) = cv
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner);
            (guard, true)
        }
    }
}

impl<S: Store> Shared<S> {
    fn new(maxsize: usize) -> Self {
        Shared {
            state: Mutex::new(State {
                items: S::default(),
                unfinished_tasks: 0,
                shut_down: false,
                getters: 0,
                putters: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_tasks_done: Condvar::new(),
            maxsize,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // No user code runs under the lock except `Ord` of a priority queue's items, and a
        // binary heap stays valid when a comparison panics, so a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn has_room(&self, state: &State<S>) -> bool {
        self.maxsize == 0 || state.items.len() < self.maxsize
    }

    fn put(&self, item: S::Item, block: Block) -> Result<(), PutError<S::Item>> {
        let mut state = self.lock();
        loop {
            if state.shut_down {
                return Err(PutError::Closed(item));
            }
            if self.has_room(&state) {
                break;
            }
            state.putters += 1;
            let (again, waited) = wait(&self.not_full, state, block);
            state = again;
            state.putters -= 1;
            if !waited {
                return Err(if matches!(block, Block::No) {
                    PutError::Full(item)
                } else {
                    PutError::Timeout(item)
                });
            }
        }
        state.items.push(item);
        state.unfinished_tasks += 1;
        let wake = state.getters > 0;
        drop(state);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    fn get(&self, block: Block) -> Result<S::Item, GetError> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop() {
                let wake = state.putters > 0;
                drop(state);
                if wake {
                    self.not_full.notify_one();
                }
                return Ok(item);
            }
            if state.shut_down {
                return Err(GetError::Closed);
            }
            state.getters += 1;
            let (again, waited) = wait(&self.not_empty, state, block);
            state = again;
            state.getters -= 1;
            if !waited {
                return Err(if matches!(block, Block::No) {
                    GetError::Empty
                } else {
                    GetError::Timeout
                });
            }
        }
    }

    fn qsize(&self) -> usize {
        self.lock().items.len()
    }

    fn full(&self) -> bool {
        !self.has_room(&self.lock())
    }

    fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut state = self.lock();
        state.unfinished_tasks = state
            .unfinished_tasks
            .checked_sub(1)
            .ok_or(TaskDoneError(()))?;
        if state.unfinished_tasks == 0 {
            self.all_tasks_done.notify_all();
        }
        Ok(())
    }

    fn join(&self, block: Block) -> bool {
        let mut state = self.lock();
        while state.unfinished_tasks > 0 {
            let (again, waited) = wait(&self.all_tasks_done, state, block);
            if !waited {
                return false;
            }
            state = again;
        }
        true
    }

    fn shutdown(&self, immediate: bool) {
        let mut state = self.lock();
        state.shut_down = true;
        let removed = if immediate {
            let removed = state.items.take_all();
            // As in Python, every removed item counts as done, so that `join` returns once the
            // items already taken out are done too.
            state.unfinished_tasks = state.unfinished_tasks.saturating_sub(removed.len());
            self.all_tasks_done.notify_all();
            removed
        } else {
            Vec::new()
        };
        drop(state);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        // The items' destructors run outside the lock.
        drop(removed);
    }

    fn is_shutdown(&self) -> bool {
        self.lock().shut_down
    }

    /// The queue's size, unfinished tasks and whether it is shut down, for `Debug`.
    fn status(&self) -> (usize, usize, bool) {
        let state = self.lock();
        (state.items.len(), state.unfinished_tasks, state.shut_down)
    }
}

/// Declares one of the three queues of Python's `queue` module over a [`Store`]; the interface
/// and its documentation are the same for all three, only the order differs.
macro_rules! queue_type {
    (
        $(#[$attr:meta])*
        $name:ident<T $(: $bound:ident)?>, $engine:ty, $first:literal
    ) => {
        $(#[$attr])*
        pub struct $name<T> {
            shared: Arc<$engine>,
        }

        impl<T> Clone for $name<T> {
            /// Another handle on the same queue.
            fn clone(&self) -> Self {
                $name { shared: Arc::clone(&self.shared) }
            }
        }

        impl<T $(: $bound)?> Default for $name<T> {
            /// An unbounded queue, as [`new`](Self::new).
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T $(: $bound)?> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (qsize, unfinished_tasks, is_shutdown) = self.shared.status();
                f.debug_struct(stringify!($name))
                    .field("qsize", &qsize)
                    .field("maxsize", &self.shared.maxsize)
                    .field("unfinished_tasks", &unfinished_tasks)
                    .field("is_shutdown", &is_shutdown)
                    .finish()
            }
        }

        impl<T $(: $bound)?> $name<T> {
            /// Creates an unbounded queue, Python's `maxsize=0`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// assert_eq!(q.maxsize(), 0);
            /// assert!(!q.full());
            /// ```
            pub fn new() -> Self {
                Self::with_maxsize(0)
            }

            /// Creates a queue that holds at most `maxsize` items; `put` waits while it is
            /// full. A `maxsize` of zero means unbounded, as in Python.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(2);")]
            /// q.put(1).unwrap();
            /// q.put(2).unwrap();
            /// assert!(q.full());
            /// assert!(q.put_nowait(3).unwrap_err().is_full());
            /// ```
            pub fn with_maxsize(maxsize: usize) -> Self {
                $name { shared: Arc::new(<$engine>::new(maxsize)) }
            }

            /// Puts an item in the queue, waiting for room while the queue is full.
            ///
            /// # Errors
            ///
            /// [`PutError::Closed`] with the item when the queue was shut down, before or
            /// during the wait.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.put(1).unwrap();
            /// let q2 = q.clone();
            /// let putter = std::thread::spawn(move || q2.put(2));
            /// assert_eq!(q.get(), Ok(1)); // Makes room for the waiting put.
            /// putter.join().unwrap().unwrap();
            /// assert_eq!(q.get(), Ok(2));
            /// ```
            pub fn put(&self, item: T) -> Result<(), PutError<T>> {
                self.shared.put(item, Block::Forever)
            }

            /// Puts an item in the queue, waiting at most `timeout` for room while the queue is
            /// full; Python's `put(item, timeout=t)`.
            ///
            /// # Errors
            ///
            /// [`PutError::Timeout`] with the item when the queue stayed full for the whole
            /// timeout; [`PutError::Closed`] with the item when the queue was shut down.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("use proc_sync::queue::{", stringify!($name), ", PutError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.put_timeout(1, Duration::from_millis(10)).unwrap();
            /// let err = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
            /// assert_eq!(err, PutError::Timeout(2));
            /// ```
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
                self.shared.put(item, Block::timeout(timeout))
            }

            /// Puts an item in the queue only if there is room now; Python's
            /// `put(item, block=False)`.
            ///
            /// # Errors
            ///
            /// [`PutError::Full`] with the item when the queue is full;
            /// [`PutError::Closed`] with the item when the queue was shut down.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::{", stringify!($name), ", PutError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// q.put_nowait('a').unwrap();
            /// assert_eq!(q.put_nowait('b'), Err(PutError::Full('b')));
            /// ```
            pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
                self.shared.put(item, Block::No)
            }

            #[doc = concat!("Removes and returns the ", $first, " item, waiting while the queue is empty.")]
            ///
            /// # Errors
            ///
            /// [`GetError::Closed`] when the queue was shut down and holds no more items,
            /// before or during the wait. Items put before a `shutdown(false)` are still
            /// given out.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// let q2 = q.clone();
            /// let getter = std::thread::spawn(move || q2.get());
            /// q.put("hello").unwrap();
            /// assert_eq!(getter.join().unwrap(), Ok("hello"));
            /// ```
            pub fn get(&self) -> Result<T, GetError> {
                self.shared.get(Block::Forever)
            }

            #[doc = concat!("Removes and returns the ", $first, " item, waiting at most `timeout` while the")]
            /// queue is empty; Python's `get(timeout=t)`.
            ///
            /// # Errors
            ///
            /// [`GetError::Timeout`] when the queue stayed empty for the whole timeout;
            /// [`GetError::Closed`] when the queue was shut down and holds no more items.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("use proc_sync::queue::{", stringify!($name), ", GetError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(7).unwrap();
            /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Ok(7));
            /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Err(GetError::Timeout));
            /// ```
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
                self.shared.get(Block::timeout(timeout))
            }

            #[doc = concat!("Removes and returns the ", $first, " item only if there is one now; Python's")]
            /// `get(block=False)`.
            ///
            /// # Errors
            ///
            /// [`GetError::Empty`] when the queue is empty; [`GetError::Closed`] when the
            /// queue was shut down and holds no more items.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::{", stringify!($name), ", GetError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(7).unwrap();
            /// assert_eq!(q.get_nowait(), Ok(7));
            /// assert_eq!(q.get_nowait(), Err(GetError::Empty));
            /// ```
            pub fn get_nowait(&self) -> Result<T, GetError> {
                self.shared.get(Block::No)
            }

            /// The number of items in the queue.
            ///
            /// Other threads may change it at any time: the answer is a snapshot, as in Python.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.put(2).unwrap();
            /// assert_eq!(q.qsize(), 2);
            /// ```
            pub fn qsize(&self) -> usize {
                self.shared.qsize()
            }

            /// Whether the queue holds no items (a snapshot, like [`qsize`](Self::qsize)).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// assert!(q.empty());
            /// q.put(1).unwrap();
            /// assert!(!q.empty());
            /// ```
            pub fn empty(&self) -> bool {
                self.qsize() == 0
            }

            /// Whether the queue holds `maxsize` items (a snapshot, like
            /// [`qsize`](Self::qsize)); never true for an unbounded queue.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::with_maxsize(1);")]
            /// assert!(!q.full());
            /// q.put(1).unwrap();
            /// assert!(q.full());
            /// ```
            pub fn full(&self) -> bool {
                self.shared.full()
            }

            /// The most items the queue holds; zero means unbounded, as in Python.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($name), "::<u8>::with_maxsize(5).maxsize(), 5);")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::<u8>::new().maxsize(), 0);")]
            /// ```
            pub fn maxsize(&self) -> usize {
                self.shared.maxsize
            }

            /// Tells the queue that an item taken out earlier has been dealt with.
            ///
            /// Every successful `put` adds one unfinished task and every `task_done` removes
            /// one; [`join`](Self::join) returns when none are left.
            ///
            /// # Errors
            ///
            /// [`TaskDoneError`] when there are no unfinished tasks, that is when called more
            /// times than items were put (Python raises `ValueError`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.get().unwrap();
            /// q.task_done().unwrap();
            /// assert!(q.task_done().is_err());
            /// ```
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.shared.task_done()
            }

            /// Waits until every item put in the queue has been marked done with
            /// [`task_done`](Self::task_done).
            ///
            /// Returns at once when there are no unfinished tasks.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// let q2 = q.clone();
            /// let worker = std::thread::spawn(move || {
            ///     let item = q2.get().unwrap();
            ///     q2.task_done().unwrap();
            ///     item
            /// });
            /// q.join();
            /// assert_eq!(worker.join().unwrap(), 1);
            /// ```
            pub fn join(&self) {
                self.shared.join(Block::Forever);
            }

            /// Waits at most `timeout` until every item put in the queue has been marked done;
            /// returns whether they all were.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// assert!(!q.join_timeout(Duration::from_millis(10)));
            /// q.get().unwrap();
            /// q.task_done().unwrap();
            /// assert!(q.join_timeout(Duration::from_millis(10)));
            /// ```
            pub fn join_timeout(&self, timeout: Duration) -> bool {
                self.shared.join(Block::timeout(timeout))
            }

            /// Shuts the queue down, as Python 3.13's `Queue.shutdown(immediate)`.
            ///
            /// From now on every `put` fails with [`PutError::Closed`], and `get` fails with
            /// [`GetError::Closed`] once the queue is empty; blocked callers wake up and
            /// fail the same way. With `immediate`, the items still in the queue are dropped
            /// and counted as done, so `get` fails at once and [`join`](Self::join) waits only
            /// for the items already taken out. Shutting down again is allowed, and
            /// `shutdown(true)` after `shutdown(false)` drops the remaining items.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::{", stringify!($name), ", GetError};")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.shutdown(false);
            /// assert!(q.put(2).unwrap_err().is_shut_down());
            /// assert_eq!(q.get(), Ok(1));
            /// assert_eq!(q.get(), Err(GetError::Closed));
            /// ```
            pub fn shutdown(&self, immediate: bool) {
                self.shared.shutdown(immediate);
            }

            /// Whether [`shutdown`](Self::shutdown) was called; Python's `is_shutdown`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use proc_sync::queue::", stringify!($name), ";")]
            ///
            #[doc = concat!("let q = ", stringify!($name), "::<u8>::new();")]
            /// assert!(!q.is_shutdown());
            /// q.shutdown(true);
            /// assert!(q.is_shutdown());
            /// ```
            pub fn is_shutdown(&self) -> bool {
                self.shared.is_shutdown()
            }
        }
    };
}

queue_type! {
    /// A first-in, first-out queue between threads; Python's `queue.Queue`.
    ///
    /// Items come out in the order they were put. A clone is another handle on the same queue.
    /// See the [module documentation](self) for the whole interface.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::queue::Queue;
    ///
    /// let q = Queue::new();
    /// for n in [111, 333, 222] {
    ///     q.put(n).unwrap();
    /// }
    /// assert_eq!([q.get(), q.get(), q.get()], [Ok(111), Ok(333), Ok(222)]);
    /// ```
    Queue<T>, Channel<T>, "oldest"
}

queue_type! {
    /// A last-in, first-out queue (a stack) between threads; Python's `queue.LifoQueue`.
    ///
    /// The item put last comes out first. A clone is another handle on the same queue.
    /// See the [module documentation](self) for the whole interface.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::queue::LifoQueue;
    ///
    /// let q = LifoQueue::new();
    /// for n in [111, 333, 222] {
    ///     q.put(n).unwrap();
    /// }
    /// assert_eq!([q.get(), q.get(), q.get()], [Ok(222), Ok(333), Ok(111)]);
    /// ```
    LifoQueue<T>, Shared<Lifo<T>>, "newest"
}

queue_type! {
    /// A queue between threads that gives back its smallest item first; Python's
    /// `queue.PriorityQueue`.
    ///
    /// Items are ordered by [`Ord`], smallest first, as with Python's `heapq`. Equal items come
    /// out in no particular order: to keep insertion order among equal priorities, put
    /// `(priority, sequence_number, item)` tuples, as Python's documentation suggests. A
    /// clone is another handle on the same queue. See the [module documentation](self) for the
    /// whole interface.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::queue::PriorityQueue;
    ///
    /// let q = PriorityQueue::new();
    /// q.put((2, "code")).unwrap();
    /// q.put((1, "eat")).unwrap();
    /// q.put((3, "sleep")).unwrap();
    /// assert_eq!(q.get(), Ok((1, "eat")));
    /// assert_eq!(q.get(), Ok((2, "code")));
    /// assert_eq!(q.get(), Ok((3, "sleep")));
    /// ```
    PriorityQueue<T: Ord>, Shared<Heap<T>>, "smallest"
}

/// An unbounded first-in, first-out queue with nothing but `put` and `get`; Python's
/// `queue.SimpleQueue`.
///
/// It has no `maxsize`, no `task_done`/`join` and no `shutdown`, so `put` never fails and
/// `get` only waits. A clone is another handle on the same queue.
///
/// # Examples
///
/// ```
/// use proc_sync::queue::SimpleQueue;
///
/// let q = SimpleQueue::new();
/// let q2 = q.clone();
/// let producer = std::thread::spawn(move || {
///     for n in 0..3 {
///         q2.put(n);
///     }
/// });
/// assert_eq!([q.get(), q.get(), q.get()], [0, 1, 2]);
/// producer.join().unwrap();
/// ```
pub struct SimpleQueue<T> {
    shared: Arc<SimpleShared<T>>,
}

/// An unbounded crossbeam channel; the queue holds both ends, so that neither end ever
/// finds the other gone.
struct SimpleShared<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
}

impl<T> Clone for SimpleQueue<T> {
    /// Another handle on the same queue.
    fn clone(&self) -> Self {
        SimpleQueue {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Default for SimpleQueue<T> {
    /// An empty queue, as [`new`](Self::new).
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.qsize())
            .finish()
    }
}

impl<T> SimpleQueue<T> {
    /// Creates an empty queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_sync::queue::SimpleQueue::<u8>::new();
    /// assert!(q.empty());
    /// ```
    pub fn new() -> Self {
        SimpleQueue {
            shared: Arc::new({
                let (tx, rx) = crossbeam_channel::unbounded();
                SimpleShared { tx, rx }
            }),
        }
    }

    /// Puts an item in the queue; never waits and never fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_sync::queue::SimpleQueue::new();
    /// q.put("x");
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn put(&self, item: T) {
        // Never fails: the queue holds the receiver.
        let _ = self.shared.tx.send(item);
    }

    /// Removes and returns the oldest item, waiting while the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_sync::queue::SimpleQueue::new();
    /// let q2 = q.clone();
    /// std::thread::spawn(move || q2.put(42));
    /// assert_eq!(q.get(), 42);
    /// ```
    pub fn get(&self) -> T {
        self.shared
            .rx
            .recv()
            .expect("the queue holds a sender, so its channel is never disconnected")
    }

    fn get_until(&self, block: Block) -> Result<T, GetError> {
        // The queue holds a sender, so its channel is never disconnected: a failure is the
        // empty queue or the deadline.
        match block {
            Block::No => self.shared.rx.try_recv().map_err(|_| GetError::Empty),
            Block::Forever => Ok(self.get()),
            Block::Until(deadline) => self
                .shared
                .rx
                .recv_deadline(deadline)
                .map_err(|_| GetError::Timeout),
        }
    }

    /// Removes and returns the oldest item, waiting at most `timeout` while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] when the queue stayed empty for the whole timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use proc_sync::queue::{GetError, SimpleQueue};
    ///
    /// let q = SimpleQueue::new();
    /// q.put(1);
    /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Ok(1));
    /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Err(GetError::Timeout));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Block::timeout(timeout))
    }

    /// Removes and returns the oldest item only if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::queue::{GetError, SimpleQueue};
    ///
    /// let q = SimpleQueue::new();
    /// q.put(1);
    /// assert_eq!(q.get_nowait(), Ok(1));
    /// assert_eq!(q.get_nowait(), Err(GetError::Empty));
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_until(Block::No)
    }

    /// The number of items in the queue (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_sync::queue::SimpleQueue::new();
    /// q.put(1);
    /// q.put(2);
    /// assert_eq!(q.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.shared.rx.len()
    }

    /// Whether the queue holds no items (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = proc_sync::queue::SimpleQueue::new();
    /// assert!(q.empty());
    /// q.put(1);
    /// assert!(!q.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.shared.rx.is_empty()
    }
}
