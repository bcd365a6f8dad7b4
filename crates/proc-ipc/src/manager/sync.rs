//! Proxies of a manager's queues and synchronization objects: the methods of the local
//! ones, each a call to the server.
//!
//! A lock, permit or condition held through a proxy belongs to the process (and thread)
//! that took it; when that process ends or is killed, the server gives it back.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use proc_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::client::{Token, encode, unexpected};
use super::proxy::proxy_traits;
use super::wire::{Op, Owner, Reply};
use crate::{GetError, PutError};

/// A queue that lives in a manager: Python's `Manager().Queue()` (a `queue.Queue` on the
/// server, so it has `task_done` and `join` as well). The same type serves
/// [`joinable_queue`](crate::Manager::joinable_queue).
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::{Manager, QueueProxy};
///
/// fn produce(q: QueueProxy<u32>) {
///     for i in 0..3 {
///         q.put(i).unwrap();
///     }
/// }
///
/// fn main() {
///     proc_core::init();
///     let m = Manager::start().unwrap();
///     let q = m.queue::<u32>().unwrap();
///     Process::spawn(produce, q.clone()).unwrap().join().unwrap();
///     assert_eq!((q.get().unwrap(), q.get().unwrap(), q.get().unwrap()), (0, 1, 2));
/// }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct QueueProxy<T> {
    token: Token,
    #[serde(skip)]
    types: PhantomData<fn() -> T>,
}

proxy_traits!(QueueProxy<T>);

/// Python's `Manager().JoinableQueue()`: the same as a [`QueueProxy`].
pub type JoinableQueueProxy<T> = QueueProxy<T>;

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    pub(crate) fn new(token: Token) -> Self {
        QueueProxy {
            token,
            types: PhantomData,
        }
    }

    fn put_within(&self, item: T, timeout: Option<Duration>) -> Result<(), PutError<T>> {
        let bytes = match encode(&item) {
            Ok(bytes) => bytes,
            Err(err) => return Err(PutError::Failed(item, err)),
        };
        match self.token.call(Op::Put {
            item: bytes,
            timeout,
        }) {
            Ok(Reply::Unit) => Ok(()),
            Ok(_) => Err(PutError::Failed(item, unexpected())),
            Err(Error::Full) => Err(PutError::Full(item)),
            Err(Error::Timeout) => Err(PutError::Timeout(item)),
            Err(Error::Closed) => Err(PutError::Closed(item)),
            Err(err) => Err(PutError::Failed(item, err)),
        }
    }

    /// Puts an item at the back, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] with the item when the manager is gone or the queue was shut
    /// down, [`PutError::Failed`] when the item does not encode.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue::<String>().unwrap();
    /// q.put("job".into()).unwrap();
    /// assert_eq!(q.qsize().unwrap(), 1);
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_within(item, None)
    }

    /// Puts an item, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] with the item when the queue stayed full; otherwise as
    /// [`put`](QueueProxy::put).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use std::time::Duration;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue_with_maxsize(1).unwrap();
    /// q.put(1).unwrap();
    /// let err = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(err, proc_ipc::PutError::Timeout(2)));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_within(item, Some(timeout))
    }

    /// Puts an item if there is room now.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item when there is none; otherwise as
    /// [`put`](QueueProxy::put).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue_with_maxsize(1).unwrap();
    /// q.put_nowait('a').unwrap();
    /// assert!(matches!(q.put_nowait('b'), Err(proc_ipc::PutError::Full('b'))));
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.put_within(item, Some(Duration::ZERO))
    }

    fn get_within(&self, timeout: Option<Duration>) -> Result<T, GetError> {
        self.token
            .item(Op::Take { timeout })?
            .ok_or_else(|| GetError::Failed(unexpected()))
    }

    /// Takes the item at the front, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] when the manager is gone (at once, also while waiting),
    /// [`GetError::Failed`] when the item is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue().unwrap();
    /// q.put(vec![1, 2]).unwrap();
    /// assert_eq!(q.get().unwrap(), [1, 2]);
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_within(None)
    }

    /// Takes the item at the front, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] when none came; otherwise as [`get`](QueueProxy::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use std::time::Duration;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue::<u8>().unwrap();
    /// assert!(q.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_within(Some(timeout))
    }

    /// Takes the item at the front if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when there is none; otherwise as [`get`](QueueProxy::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue::<u8>().unwrap();
    /// assert_eq!(q.get_nowait(), Err(proc_ipc::GetError::Empty));
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_within(Some(Duration::ZERO))
    }

    /// How many items the queue holds.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue().unwrap();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.qsize().unwrap(), 2);
    /// ```
    pub fn qsize(&self) -> Result<usize> {
        self.token.count(Op::Len).map(|n| n as usize)
    }

    /// Whether the queue holds no item.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(m.queue::<u8>().unwrap().empty().unwrap());
    /// ```
    pub fn empty(&self) -> Result<bool> {
        Ok(self.qsize()? == 0)
    }

    /// Whether the queue is at its `maxsize`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue_with_maxsize(1).unwrap();
    /// q.put(0).unwrap();
    /// assert!(q.full().unwrap());
    /// ```
    pub fn full(&self) -> Result<bool> {
        self.token.flag(Op::Full)
    }

    /// Says that an item taken with `get` is dealt with (Python's `task_done`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when called more often than items were put,
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.joinable_queue().unwrap();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<()> {
        self.token.unit(Op::TaskDone)
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](QueueProxy::task_done).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.joinable_queue::<u8>().unwrap();
    /// q.join().unwrap(); // nothing was put
    /// ```
    pub fn join(&self) -> Result<()> {
        self.token.unit(Op::Join { timeout: None })
    }

    /// As [`join`](QueueProxy::join), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when tasks are still unfinished then.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use std::time::Duration;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.joinable_queue().unwrap();
    /// q.put(1).unwrap();
    /// assert!(q.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.token.unit(Op::Join {
            timeout: Some(timeout),
        })
    }

    /// Shuts the queue down for every client (Python 3.13's `Queue.shutdown`): later puts
    /// fail with [`PutError::Closed`], gets take what is left and then fail with
    /// [`GetError::Closed`] — at once when `immediate`, which also releases
    /// [`join`](QueueProxy::join) — and callers blocked in any process wake.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use proc_ipc::GetError;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue().unwrap();
    /// q.put(1u8).unwrap();
    /// q.shutdown(false).unwrap();
    /// assert!(q.is_shutdown().unwrap());
    /// assert!(q.put(2).unwrap_err().is_closed());
    /// assert_eq!(q.get(), Ok(1));
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// ```
    #[doc(alias = "ShutDown")]
    pub fn shutdown(&self, immediate: bool) -> Result<()> {
        self.token.unit(Op::Shutdown { immediate })
    }

    /// Whether the queue was shut down.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(!m.queue::<u8>().unwrap().is_shutdown().unwrap());
    /// ```
    pub fn is_shutdown(&self) -> Result<bool> {
        self.token.flag(Op::IsSet)
    }

    /// How many items were put and not yet marked done.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.joinable_queue().unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.unfinished_tasks().unwrap(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> Result<usize> {
        self.token.count(Op::Count).map(|n| n as usize)
    }
}

/// A lock, permit or condition held through a proxy; dropping it releases it.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let lock = m.lock().unwrap();
/// {
///     let _guard = lock.acquire().unwrap();
///     assert!(lock.try_acquire().unwrap().is_none());
/// }
/// assert!(lock.try_acquire().unwrap().is_some());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped; `let _ = ` drops it at once"]
pub struct ProxyGuard<'a> {
    token: &'a Token,
    owner: Owner,
    held: bool,
}

impl ProxyGuard<'_> {
    /// Keeps the lock (or permit) held past the guard: release it with the proxy's
    /// `release`, from this or any process (Python's explicit `acquire()` ... `release()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let lock = m.lock().unwrap();
    /// lock.acquire().unwrap().forget();
    /// assert!(lock.is_locked().unwrap());
    /// lock.release().unwrap();
    /// assert!(!lock.is_locked().unwrap());
    /// ```
    pub fn forget(mut self) {
        self.held = false;
    }
}

impl Drop for ProxyGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            // A manager that is gone has given the lock up with its own life.
            let _ = self.token.unit(Op::Release { owner: self.owner });
        }
    }
}

impl fmt::Debug for ProxyGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyGuard")
            .field("id", &self.token.id)
            .finish_non_exhaustive()
    }
}

/// The acquiring half that locks, semaphores and conditions share.
fn acquire_within(token: &Token, timeout: Option<Duration>) -> Result<Option<ProxyGuard<'_>>> {
    let owner = token.remote.owner();
    if token.flag(Op::Acquire { owner, timeout })? {
        Ok(Some(ProxyGuard {
            token,
            owner,
            held: true,
        }))
    } else {
        Ok(None)
    }
}

macro_rules! acquiring {
    ($name:ident, $what:literal, $make:literal) => {
        impl $name {
            pub(crate) fn new(token: Token) -> Self {
                $name { token }
            }

            #[doc = concat!("Takes the ", $what, ", waiting as long as it takes.")]
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] when the manager is gone (at once, also while waiting).
            ///
            /// # Examples
            ///
            /// ```
            /// # proc_core::init();
            /// let m = proc_ipc::Manager::start().unwrap();
            #[doc = concat!("let x = m.", $make, ".unwrap();")]
            /// let guard = x.acquire().unwrap();
            /// drop(guard);
            /// ```
            pub fn acquire(&self) -> Result<ProxyGuard<'_>> {
                acquire_within(&self.token, None)?.ok_or_else(unexpected)
            }

            #[doc = concat!("Takes the ", $what, " if it is free now.")]
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] when the manager is gone.
            ///
            /// # Examples
            ///
            /// ```
            /// # proc_core::init();
            /// let m = proc_ipc::Manager::start().unwrap();
            #[doc = concat!("let x = m.", $make, ".unwrap();")]
            /// assert!(x.try_acquire().unwrap().is_some());
            /// ```
            pub fn try_acquire(&self) -> Result<Option<ProxyGuard<'_>>> {
                acquire_within(&self.token, Some(Duration::ZERO))
            }

            #[doc = concat!("Takes the ", $what, ", waiting at most `timeout`.")]
            ///
            /// # Errors
            ///
            /// [`Error::Timeout`] when it did not come free in time, [`Error::Closed`] when
            /// the manager is gone.
            ///
            /// # Examples
            ///
            /// ```
            /// # proc_core::init();
            /// use std::time::Duration;
            ///
            /// let m = proc_ipc::Manager::start().unwrap();
            #[doc = concat!("let x = m.", $make, ".unwrap();")]
            /// assert!(x.acquire_timeout(Duration::from_secs(1)).is_ok());
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<ProxyGuard<'_>> {
                acquire_within(&self.token, Some(timeout))?.ok_or(Error::Timeout)
            }

            #[doc = concat!("Gives back the ", $what, " taken with a guard that was [forgotten](ProxyGuard::forget).")]
            ///
            /// # Errors
            ///
            /// [`Error::InvalidState`] when it is not held (or, for a reentrant lock or a
            /// condition, held by another thread), [`Error::Closed`] when the manager is
            /// gone.
            ///
            /// # Examples
            ///
            /// ```
            /// # proc_core::init();
            /// let m = proc_ipc::Manager::start().unwrap();
            #[doc = concat!("let x = m.", $make, ".unwrap();")]
            /// x.acquire().unwrap().forget();
            /// x.release().unwrap();
            /// ```
            pub fn release(&self) -> Result<()> {
                let owner = self.token.remote.owner();
                self.token.unit(Op::Release { owner })
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("manager", &self.token.remote.address)
                    .field("id", &self.token.id)
                    .finish()
            }
        }
    };
}

/// A lock that lives in a manager: Python's `Manager().Lock()`.
///
/// Any process may [`release`](LockProxy::release) it, as Python's allows; a process that
/// dies holding it gives it up.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let lock = m.lock().unwrap();
/// let guard = lock.acquire().unwrap();
/// assert!(lock.is_locked().unwrap());
/// drop(guard);
/// assert!(!lock.is_locked().unwrap());
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockProxy {
    token: Token,
}

acquiring!(LockProxy, "lock", "lock()");

impl LockProxy {
    /// Whether someone holds the lock (Python's `locked()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(!m.lock().unwrap().is_locked().unwrap());
    /// ```
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> Result<bool> {
        self.token.flag(Op::IsSet)
    }
}

/// A reentrant lock that lives in a manager: Python's `Manager().RLock()`. The thread that
/// holds it may take it again; it is free once every guard is dropped.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let lock = m.rlock().unwrap();
/// let outer = lock.acquire().unwrap();
/// let inner = lock.acquire().unwrap();
/// assert_eq!(lock.count().unwrap(), 2);
/// drop((inner, outer));
/// assert_eq!(lock.count().unwrap(), 0);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RLockProxy {
    token: Token,
}

acquiring!(RLockProxy, "lock", "rlock()");

impl RLockProxy {
    /// How many times the holder has taken the lock (0 when free).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.rlock().unwrap().count().unwrap(), 0);
    /// ```
    pub fn count(&self) -> Result<u32> {
        self.token.count(Op::IsSet).map(|n| n as u32)
    }
}

/// A semaphore that lives in a manager: Python's `Manager().Semaphore(n)` (and
/// `BoundedSemaphore(n)` from [`bounded_semaphore`](crate::Manager::bounded_semaphore)).
/// Permits held by a process that dies come back.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let sem = m.semaphore(2).unwrap();
/// let a = sem.acquire().unwrap();
/// let b = sem.acquire().unwrap();
/// assert!(sem.try_acquire().unwrap().is_none());
/// drop((a, b));
/// assert_eq!(sem.get_value().unwrap(), 2);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemaphoreProxy {
    token: Token,
}

acquiring!(SemaphoreProxy, "permit", "semaphore(1)");

impl SemaphoreProxy {
    /// How many permits are free.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.semaphore(3).unwrap().get_value().unwrap(), 3);
    /// ```
    pub fn get_value(&self) -> Result<u32> {
        self.token.count(Op::Len).map(|n| n as u32)
    }
}

/// A condition variable that lives in a manager: Python's `Manager().Condition()`, over a
/// reentrant lock of its own.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::{ConditionProxy, ListProxy, Manager};
///
/// fn announce((cond, items): (ConditionProxy, ListProxy<u8>)) {
///     let _guard = cond.acquire().unwrap();
///     items.push(1).unwrap();
///     cond.notify_all().unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let m = Manager::start().unwrap();
///     let (cond, items) = (m.condition().unwrap(), m.list().unwrap());
///     let mut guard = cond.acquire().unwrap();
///     let mut child = Process::spawn(announce, (cond.clone(), items.clone())).unwrap();
///     while items.is_empty().unwrap() {
///         cond.wait(&mut guard).unwrap();
///     }
///     drop(guard);
///     child.join().unwrap();
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionProxy {
    token: Token,
}

acquiring!(ConditionProxy, "condition's lock", "condition()");

impl ConditionProxy {
    /// Releases the lock held by `guard`, waits for a notification and takes the lock back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `guard` does not hold this condition's lock,
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// See [`ConditionProxy`].
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let (cond, other) = (m.condition().unwrap(), m.condition().unwrap());
    /// let mut guard = other.acquire().unwrap();
    /// assert!(cond.wait(&mut guard).is_err()); // not this condition's lock
    /// ```
    pub fn wait(&self, guard: &mut ProxyGuard<'_>) -> Result<()> {
        self.wait_within(guard, None).map(drop)
    }

    /// As [`wait`](ConditionProxy::wait), waiting at most `timeout`; `false` when no
    /// notification came in time (the lock is held again either way).
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionProxy::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use std::time::Duration;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let cond = m.condition().unwrap();
    /// let mut guard = cond.acquire().unwrap();
    /// assert!(!cond.wait_timeout(&mut guard, Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_timeout(&self, guard: &mut ProxyGuard<'_>, timeout: Duration) -> Result<bool> {
        self.wait_within(guard, Some(timeout))
    }

    fn wait_within(&self, guard: &mut ProxyGuard<'_>, timeout: Option<Duration>) -> Result<bool> {
        if *guard.token != self.token || !guard.held {
            return Err(Error::InvalidState(
                "the guard does not hold this condition's lock",
            ));
        }
        self.token.flag(Op::CondWait {
            owner: guard.owner,
            timeout,
        })
    }

    /// Wakes up to `n` waiters; the caller must hold the lock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when this thread does not hold the lock, [`Error::Closed`]
    /// when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let cond = m.condition().unwrap();
    /// assert!(cond.notify(1).is_err()); // not held
    /// let _guard = cond.acquire().unwrap();
    /// cond.notify(1).unwrap();
    /// ```
    pub fn notify(&self, n: u32) -> Result<()> {
        let owner = self.token.remote.owner();
        self.token.unit(Op::Notify { owner, n })
    }

    /// Wakes every waiter; the caller must hold the lock.
    ///
    /// # Errors
    ///
    /// As [`notify`](ConditionProxy::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let cond = m.condition().unwrap();
    /// let _guard = cond.acquire().unwrap();
    /// cond.notify_all().unwrap();
    /// ```
    pub fn notify_all(&self) -> Result<()> {
        self.notify(u32::MAX)
    }
}

/// An event that lives in a manager: Python's `Manager().Event()`.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let event = m.event().unwrap();
/// assert!(!event.is_set().unwrap());
/// event.set().unwrap();
/// event.wait().unwrap();
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProxy {
    token: Token,
}

impl fmt::Debug for EventProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventProxy")
            .field("manager", &self.token.remote.address)
            .field("id", &self.token.id)
            .finish()
    }
}

impl EventProxy {
    pub(crate) fn new(token: Token) -> Self {
        EventProxy { token }
    }

    /// Whether the event is set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(!m.event().unwrap().is_set().unwrap());
    /// ```
    pub fn is_set(&self) -> Result<bool> {
        self.token.flag(Op::IsSet)
    }

    /// Sets the event and wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let event = m.event().unwrap();
    /// event.set().unwrap();
    /// assert!(event.is_set().unwrap());
    /// ```
    pub fn set(&self) -> Result<()> {
        self.token.unit(Op::Set)
    }

    /// Clears the event.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let event = m.event().unwrap();
    /// event.set().unwrap();
    /// event.clear().unwrap();
    /// assert!(!event.is_set().unwrap());
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.token.unit(Op::Unset)
    }

    /// Waits until the event is set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone (at once, also while waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let event = m.event().unwrap();
    /// let setter = event.clone();
    /// std::thread::spawn(move || setter.set().unwrap());
    /// event.wait().unwrap();
    /// ```
    pub fn wait(&self) -> Result<()> {
        self.token.flag(Op::Wait { timeout: None }).map(drop)
    }

    /// Waits at most `timeout` for the event; whether it is set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use std::time::Duration;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(!m.event().unwrap().wait_timeout(Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.token.flag(Op::Wait {
            timeout: Some(timeout),
        })
    }
}

/// A barrier that lives in a manager: Python's `Manager().Barrier(parties)`. A party that
/// times out, or whose process dies while it waits, breaks the barrier for the others.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let barrier = m.barrier(2).unwrap();
/// let other = barrier.clone();
/// let t = std::thread::spawn(move || other.wait().unwrap());
/// let mine = barrier.wait().unwrap();
/// let theirs = t.join().unwrap();
/// assert_eq!(mine + theirs, 1); // indexes 0 and 1
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarrierProxy {
    token: Token,
}

impl fmt::Debug for BarrierProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierProxy")
            .field("manager", &self.token.remote.address)
            .field("id", &self.token.id)
            .finish()
    }
}

impl BarrierProxy {
    pub(crate) fn new(token: Token) -> Self {
        BarrierProxy { token }
    }

    /// Waits until every party has called `wait`; returns this party's index, from 0 to
    /// `parties - 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the barrier is or becomes broken (Python's
    /// `BrokenBarrierError`), [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.barrier(1).unwrap().wait().unwrap(), 0);
    /// ```
    pub fn wait(&self) -> Result<u32> {
        self.token
            .count(Op::BarrierWait { timeout: None })
            .map(|n| n as u32)
    }

    /// As [`wait`](BarrierProxy::wait), waiting at most `timeout`; running out of time
    /// breaks the barrier.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] for the party whose time ran out; otherwise as
    /// [`wait`](BarrierProxy::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use std::time::Duration;
    ///
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let barrier = m.barrier(2).unwrap();
    /// assert!(barrier.wait_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// assert!(barrier.broken().unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32> {
        self.token
            .count(Op::BarrierWait {
                timeout: Some(timeout),
            })
            .map(|n| n as u32)
    }

    /// Makes a broken barrier usable again; parties waiting now fail as broken.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let barrier = m.barrier(2).unwrap();
    /// barrier.abort().unwrap();
    /// barrier.reset().unwrap();
    /// assert!(!barrier.broken().unwrap());
    /// ```
    pub fn reset(&self) -> Result<()> {
        self.token.unit(Op::Reset)
    }

    /// Breaks the barrier: every waiter, and every later `wait`, fails.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let barrier = m.barrier(2).unwrap();
    /// barrier.abort().unwrap();
    /// assert!(barrier.wait().is_err());
    /// ```
    pub fn abort(&self) -> Result<()> {
        self.token.unit(Op::Abort)
    }

    fn state(&self) -> Result<(u32, u32, bool)> {
        match self.token.call(Op::Len)? {
            Reply::Barrier(parties, waiting, broken) => Ok((parties, waiting, broken)),
            _ => Err(unexpected()),
        }
    }

    /// How many parties the barrier needs.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.barrier(3).unwrap().parties().unwrap(), 3);
    /// ```
    pub fn parties(&self) -> Result<u32> {
        Ok(self.state()?.0)
    }

    /// How many parties are waiting now.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.barrier(3).unwrap().n_waiting().unwrap(), 0);
    /// ```
    pub fn n_waiting(&self) -> Result<u32> {
        Ok(self.state()?.1)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(!m.barrier(3).unwrap().broken().unwrap());
    /// ```
    pub fn broken(&self) -> Result<bool> {
        Ok(self.state()?.2)
    }
}
