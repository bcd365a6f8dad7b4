//! `Lock` and `RLock`: mutual exclusion between processes and threads (Python's
//! `multiprocessing.Lock` and `multiprocessing.RLock`).
//!
//! A lock is one futex word in shared memory that holds the identity of the process that owns
//! it (0 when free): its pid and a hash of its start time
//! ([`identity`](proc_core::shared::identity)). Acquiring is one compare-and-swap when the lock is free; a waiter spins a
//! little, then sleeps on the word. Because the word names its owner, a waiter can tell that
//! the owner died: it looks every tenth of a second while it sleeps, and takes the lock of a
//! dead owner over, which its guard reports with `owner_died()` — the `EOWNERDEAD` of robust
//! POSIX mutexes.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_core::shared::{Acquired, Blocking, identity};
use proc_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::shared::{Shared, State, Word, deadline};

use crate::wire::Kind;
pub use sealed_lock::SharedLock;

/// The state of a `Lock` (and of the lock of a `Value` or `Array`).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct LockState {
    word: Word,
}

// SAFETY: `#[repr(C)]`, atomics only, and zero means "free".
unsafe impl State for LockState {
    const KIND: Kind = Kind::Lock;
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.word
    }
}

/// A lock shared by processes and threads: Python's `multiprocessing.Lock`.
///
/// [`acquire`](Lock::acquire) returns a guard that releases the lock when it drops. Clones
/// are the same lock; pass one to [`Process::spawn`](proc_core::Process::spawn) as (part of)
/// the argument and the child shares it.
///
/// # Robustness
///
/// A process that dies holding the lock — killed by a signal, or exiting without dropping
/// the guard — does not block the others forever: the next acquirer notices within
/// about a tenth of a second that the owner is gone, takes the lock over and its guard says
/// so with [`LockGuard::owner_died`]. The data the lock protected may be half-updated then;
/// that acquirer decides what to do about it. Acquiring never fails because of it.
///
/// Ownership is per process: any thread of the owning process may drop the guard, and a
/// thread that acquires a lock its own process holds waits (use [`RLock`] to re-enter).
///
/// # Without a guard
///
/// Python's tutorials write `lock.acquire()` … `lock.release()`; the same works here with
/// [`LockGuard::forget`], which keeps the lock held without a guard, and
/// [`release`](Lock::release), which any process may call, as Python's
/// `multiprocessing.Lock` allows:
///
/// ```
/// let lock = proc_sync::Lock::new().unwrap();
/// lock.acquire().forget();
/// assert!(lock.is_locked());
/// lock.release().unwrap();
/// assert!(!lock.is_locked());
/// ```
///
/// A guard that is not bound to a name drops, and releases, at once. The compiler warns
/// about a guard left unused:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let lock = proc_sync::Lock::new().unwrap();
/// lock.acquire(); // released again on this very line
/// ```
///
/// `let _ = lock.acquire();` is Rust's way of saying "drop this now" and passes silently;
/// the allowed-by-default lint `let_underscore_drop` catches it, and binding the guard to a
/// name (`let _guard = lock.acquire();`) holds the lock until the end of the scope:
///
/// ```compile_fail
/// #![deny(let_underscore_drop)]
/// let lock = proc_sync::Lock::new().unwrap();
/// let _ = lock.acquire();
/// ```
///
/// # Platform-specific behavior
///
/// The owner is recognised by its pid and a hash of its start time, so that an owner whose
/// pid the system gave to another process before the waiters looked is still seen dead —
/// unless that process's start time has the same hash (one chance in 1,023 on Linux, in
/// 32,767 on macOS and FreeBSD), and then the lock stays taken until it ends too. On
/// Windows, whose pids may use all 32 bits of the lock's word, the pid alone recognises the
/// owner, and a recycled pid hides the death so. Processes in different pid namespaces must
/// not share locks.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::Lock;
///
/// fn work(lock: Lock) -> bool {
///     let guard = lock.acquire();
///     guard.owner_died()
/// }
///
/// fn main() {
///     proc_core::init();
///     let lock = Lock::new().unwrap();
///     let mut child = Process::spawn(work, lock.clone()).unwrap();
///     assert!(!child.join().unwrap());
///     assert!(lock.try_acquire().is_some());
/// }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lock {
    shared: Shared<LockState>,
}

impl Lock {
    /// A new, free lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    pub fn new() -> Result<Lock> {
        Ok(Lock {
            shared: Shared::new()?,
        })
    }

    /// A free lock whose segment also holds `len` bytes aligned to `align`: the lock and
    /// data of a `Value` or `Array`.
    pub(crate) fn with_tail(len: usize, align: usize) -> Result<Lock> {
        Ok(Lock {
            shared: Shared::with_tail(len, align)?,
        })
    }

    /// Waits until the lock is free and takes it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// let guard = lock.acquire();
    /// assert!(lock.is_locked());
    /// drop(guard);
    /// assert!(!lock.is_locked());
    /// ```
    pub fn acquire(&self) -> LockGuard<'_> {
        self.acquire_until(None)
            .expect("a wait without a deadline ends with the lock")
    }

    /// Takes the lock if it is free (or its owner died), without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// let guard = lock.try_acquire().unwrap();
    /// assert!(lock.try_acquire().is_none());
    /// # drop(guard);
    /// ```
    #[must_use = "the lock is released as soon as the guard drops: bind it with `let _guard = ...` (`let _ = ...` drops it at once), or call `forget()` on it and `release()` later"]
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.shared
            .lock(0, Blocking::NonBlocking, None)
            .map(|acquired| LockGuard::new(self, acquired))
    }

    /// Waits at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the lock is still taken after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = proc_sync::Lock::new().unwrap();
    /// let _held = lock.acquire();
    /// let err = lock.acquire_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    #[must_use = "the lock is released as soon as the guard drops: bind it with `let _guard = ...` (`let _ = ...` drops it at once), or call `forget()` on it and `release()` later"]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.acquire_until(deadline(Some(timeout)))
            .ok_or(Error::Timeout)
    }

    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Option<LockGuard<'_>> {
        self.shared
            .lock(0, Blocking::Block, deadline)
            .map(|acquired| LockGuard::new(self, acquired))
    }

    /// Whether some process or thread holds the lock now (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.shared.state().word.is_locked()
    }

    pub(crate) fn same(&self, other: &Lock) -> bool {
        self.shared.same(&other.shared)
    }

    /// Whether this process holds the lock.
    pub(crate) fn is_mine(&self) -> bool {
        self.shared.state().word.is_mine()
    }

    /// Frees the lock, whoever holds it: Python's `release()`, for a lock taken with
    /// [`acquire`](Lock::acquire) and kept with [`LockGuard::forget`].
    ///
    /// Any process and any thread may release the lock, as with Python's
    /// `multiprocessing.Lock`, not only the one that acquired it: a lock can be handed over
    /// that way. A guard that still lives when its lock is released this way does nothing
    /// when it drops, unless its process holds the lock again by then (ownership is per
    /// process): release only locks whose guard was forgotten.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the lock is not held (Python's `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::Process;
    /// use proc_sync::Lock;
    ///
    /// fn unlock(lock: Lock) {
    ///     lock.release().unwrap();
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let lock = Lock::new().unwrap();
    ///     lock.acquire().forget();
    ///     Process::spawn(unlock, lock.clone()).unwrap().join().unwrap();
    ///     assert!(!lock.is_locked());
    ///     assert!(lock.release().is_err());
    /// }
    /// ```
    pub fn release(&self) -> Result<()> {
        let word = self.shared.state().word.value();
        if word.swap(0, Ordering::SeqCst) == 0 {
            return Err(Error::InvalidState(
                "cannot release a lock that is not held: release once per acquire",
            ));
        }
        self.shared.wake(0, 1);
        Ok(())
    }

    /// Frees the lock if this process holds it: a guard's drop, which must not free a lock
    /// that was released without it and taken by another process since.
    fn release_mine(&self) {
        let word = self.shared.state().word.value();
        if word
            .compare_exchange(identity(), 0, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            self.shared.wake(0, 1);
        }
    }

    /// Frees the lock for a waiting `Condition`, which holds it.
    pub(crate) fn unlock(&self) {
        self.shared.unlock(0);
    }
}

/// Proof that a [`Lock`] is held; dropping it releases the lock.
///
/// # Examples
///
/// ```
/// let lock = proc_sync::Lock::new().unwrap();
/// {
///     let guard = lock.acquire();
///     assert!(!guard.owner_died());
/// }
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard drops: bind it with `let _guard = ...` (`let _ = ...` drops it at once), or call `forget()` on it and `release()` later"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    owner_died: bool,
}

impl<'a> LockGuard<'a> {
    fn new(lock: &'a Lock, acquired: Acquired) -> LockGuard<'a> {
        LockGuard {
            lock,
            owner_died: acquired.owner_died(),
        }
    }

    /// Whether this process took the lock over from a process that died holding it (the
    /// `EOWNERDEAD` of robust mutexes): what the lock protects may be half-updated.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// assert!(!lock.acquire().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Keeps the lock held and lets the guard go without releasing it: Python's
    /// `acquire()` without a `with`. Release it later with [`Lock::release`], maybe from
    /// another process.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// lock.acquire().forget();
    /// assert!(lock.try_acquire().is_none());
    /// lock.release().unwrap();
    /// assert!(lock.try_acquire().is_some());
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }

    /// The lock this guard holds.
    pub(crate) fn lock(&self) -> &'a Lock {
        self.lock
    }

    /// Records a takeover that happened while a `Condition` re-acquired the lock.
    pub(crate) fn set_owner_died(&mut self) {
        self.owner_died = true;
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release_mine();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("owner_died", &self.owner_died)
            .finish_non_exhaustive()
    }
}

/// The state of an `RLock`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RLockState {
    word: Word,
    /// The owning thread, as [`thread_id`] names it; 0 when free.
    thread: AtomicU64,
    /// How many times the owner holds it.
    count: AtomicU32,
}

// SAFETY: `#[repr(C)]`, atomics only, and zero means "free".
unsafe impl State for RLockState {
    const KIND: Kind = Kind::RLock;
    const WORDS: usize = 1;

    fn word(&self, _i: usize) -> &Word {
        &self.word
    }
}

/// A number for the current thread, unique among the threads of every process: the process's
/// identity (what the lock's word names it by) in the high half, a number unique within the
/// process in the low half.
///
/// The identity makes it unique beyond the process, even beyond a dead process whose pid
/// this one was given. A taker of a dead process's lock stores its own number only after it
/// took the word, so until then the dead owner's number is still there, and a thread of the
/// taker's process with the same number within its process would otherwise pass for the
/// owner and enter. The identity is read on every call rather than cached with the rest, so
/// that a forked child's threads, which keep their parent's thread-locals, get numbers of
/// their own.
pub(crate) fn thread_id() -> u64 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static ID: Cell<u32> = const { Cell::new(0) };
    }
    let local = ID
        .try_with(|id| {
            if id.get() == 0 {
                // Zero stays "unnumbered". Numbers repeat only after 2^32 threads.
                id.set(NEXT.fetch_add(1, Ordering::Relaxed).max(1));
            }
            id.get()
        })
        .unwrap_or(u32::MAX);
    (u64::from(identity()) << 32) | u64::from(local)
}

/// A lock that the thread holding it may acquire again: Python's `multiprocessing.RLock`.
///
/// The owner is a thread of a process; each [`acquire`](RLock::acquire) by the owner returns
/// another guard, and the lock is free when all of them have dropped. Guards cannot move to
/// another thread.
///
/// # Robustness
///
/// As for [`Lock`]: a process that dies holding it does not block the others forever, and
/// [`RLockGuard::owner_died`] tells the next owner.
///
/// # Examples
///
/// ```
/// let rlock = proc_sync::RLock::new().unwrap();
/// let outer = rlock.acquire();
/// let inner = rlock.acquire();
/// assert_eq!(rlock.count(), 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(rlock.count(), 0);
/// ```
///
/// Python's `rlock.acquire()` … `rlock.release()` is [`RLockGuard::forget`] and
/// [`release`](RLock::release), on the owning thread:
///
/// ```
/// let rlock = proc_sync::RLock::new().unwrap();
/// rlock.acquire().forget();
/// rlock.acquire().forget();
/// rlock.release().unwrap();
/// assert_eq!(rlock.count(), 1);
/// rlock.release().unwrap();
/// assert!(!rlock.is_locked());
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RLock {
    shared: Shared<RLockState>,
}

impl RLock {
    /// A new, free re-entrant lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// assert_eq!(rlock.count(), 0);
    /// ```
    pub fn new() -> Result<RLock> {
        Ok(RLock {
            shared: Shared::new()?,
        })
    }

    fn state(&self) -> &RLockState {
        self.shared.state()
    }

    /// A free lock whose segment also holds `len` bytes aligned to `align`: the lock and
    /// data of a `Value` or `Array`.
    pub(crate) fn with_tail(len: usize, align: usize) -> Result<RLock> {
        Ok(RLock {
            shared: Shared::with_tail(len, align)?,
        })
    }

    /// Whether this thread owns the lock. The thread number names the process too, so a
    /// number left behind by a dead owner never matches a thread of this process.
    fn is_mine(&self) -> bool {
        let state = self.state();
        state.word.is_mine() && state.thread.load(Ordering::Relaxed) == thread_id()
    }

    fn enter(&self, blocking: Blocking, deadline: Option<Instant>) -> Option<RLockGuard<'_>> {
        if self.is_mine() {
            self.state().count.fetch_add(1, Ordering::Relaxed);
            return Some(RLockGuard::new(self, Hold::Again));
        }
        let acquired = self.shared.lock(0, blocking, deadline)?;
        self.state().thread.store(thread_id(), Ordering::Relaxed);
        self.state().count.store(1, Ordering::Relaxed);
        Some(RLockGuard::new(self, Hold::Fresh(acquired)))
    }

    /// Waits until the lock is free or this thread's, and takes it (once more).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// let a = rlock.acquire();
    /// let b = rlock.acquire();
    /// assert_eq!(rlock.count(), 2);
    /// # drop((a, b));
    /// ```
    pub fn acquire(&self) -> RLockGuard<'_> {
        self.enter(Blocking::Block, None)
            .expect("a wait without a deadline ends with the lock")
    }

    /// Takes the lock if it is free, this thread's or its owner died, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// let a = rlock.try_acquire().unwrap();
    /// let b = rlock.try_acquire().unwrap();
    /// let other = std::thread::scope(|s| s.spawn(|| rlock.try_acquire().is_some()).join().unwrap());
    /// assert!(!other);
    /// # drop((a, b));
    /// ```
    #[must_use = "the lock is released as soon as the guard drops: bind it with `let _guard = ...` (`let _ = ...` drops it at once), or call `forget()` on it and `release()` later"]
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        self.enter(Blocking::NonBlocking, None)
    }

    /// Waits at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when another thread or process still holds it after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// let _held = rlock.acquire();
    /// let timed_out = std::thread::scope(|s| {
    ///     s.spawn(|| rlock.acquire_timeout(Duration::from_millis(10)).is_err()).join().unwrap()
    /// });
    /// assert!(timed_out);
    /// ```
    #[must_use = "the lock is released as soon as the guard drops: bind it with `let _guard = ...` (`let _ = ...` drops it at once), or call `forget()` on it and `release()` later"]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>> {
        self.enter(Blocking::Block, deadline(Some(timeout)))
            .ok_or(Error::Timeout)
    }

    /// How many times the owner holds the lock; 0 when it is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// let _g = rlock.acquire();
    /// assert_eq!(rlock.count(), 1);
    /// ```
    pub fn count(&self) -> u32 {
        if !self.state().word.is_locked() {
            0
        } else {
            self.state().count.load(Ordering::Relaxed)
        }
    }

    /// Whether some thread of some process holds the lock now (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// let guard = rlock.acquire();
    /// assert!(rlock.is_locked());
    /// drop(guard);
    /// assert!(!rlock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state().word.is_locked()
    }

    /// Gives up one hold of this thread: Python's `release()`, for a hold kept with
    /// [`RLockGuard::forget`]. The lock is free once every hold is given up.
    ///
    /// Only the owning thread may release an `RLock`, as in Python. A guard that still
    /// lives when its hold is released this way counts for nothing when it drops.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when this thread does not hold the lock (Python's
    /// `RuntimeError`), whether it is free or held by another thread or process.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// assert!(rlock.release().is_err());
    /// rlock.acquire().forget();
    /// let other = std::thread::scope(|s| s.spawn(|| rlock.release().is_err()).join().unwrap());
    /// assert!(other, "another thread released this thread's hold");
    /// rlock.release().unwrap();
    /// assert!(!rlock.is_locked());
    /// ```
    pub fn release(&self) -> Result<()> {
        if !self.is_mine() {
            return Err(Error::InvalidState(
                "cannot release an RLock that this thread does not hold",
            ));
        }
        self.leave();
        Ok(())
    }

    /// Gives up one hold; the caller holds the lock.
    fn leave(&self) {
        let state = self.state();
        if state.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            state.thread.store(0, Ordering::Relaxed);
            self.shared.unlock(0);
        }
    }

    /// Gives up every hold at once, for a waiting `Condition`; returns how many there were.
    /// The caller holds the lock.
    pub(crate) fn leave_all(&self) -> u32 {
        let state = self.state();
        let count = state.count.swap(0, Ordering::Relaxed);
        state.thread.store(0, Ordering::Relaxed);
        self.shared.unlock(0);
        count
    }

    /// Takes the lock back with `count` holds after [`leave_all`](RLock::leave_all); returns
    /// whether it was taken over from a process that died holding it.
    pub(crate) fn enter_all(&self, count: u32) -> bool {
        let guard = self.acquire();
        let owner_died = guard.owner_died();
        guard.forget();
        self.state().count.store(count, Ordering::Relaxed);
        owner_died
    }

    pub(crate) fn same(&self, other: &RLock) -> bool {
        self.shared.same(&other.shared)
    }

    /// Whether this thread holds the lock, for a `Condition`'s notify.
    pub(crate) fn is_owned(&self) -> bool {
        self.is_mine()
    }
}

/// Proof that an [`RLock`] is held (once); dropping it releases that hold.
///
/// It stays on the thread that acquired it: the lock belongs to that thread.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let rlock = proc_sync::RLock::new().unwrap();
/// send(rlock.acquire());
/// ```
///
/// # Examples
///
/// ```
/// let rlock = proc_sync::RLock::new().unwrap();
/// let guard = rlock.acquire();
/// assert!(!guard.owner_died());
/// ```
#[must_use = "the lock is released as soon as the guard drops: bind it with `let _guard = ...` (`let _ = ...` drops it at once), or call `forget()` on it and `release()` later"]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
    owner_died: bool,
    /// Whether this acquire took a lock that this thread did not hold (not a re-entry).
    fresh: bool,
    // Like `MutexGuard`: shareable, but it stays on the thread that owns the lock.
    not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

/// How a thread holds an `RLock` after an acquire.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// It held the lock already and holds it once more.
    Again,
    /// It took the lock, as the shared word says how.
    Fresh(Acquired),
}

impl<'a> RLockGuard<'a> {
    fn new(rlock: &'a RLock, hold: Hold) -> RLockGuard<'a> {
        RLockGuard {
            rlock,
            owner_died: matches!(hold, Hold::Fresh(Acquired::OwnerDied)),
            fresh: matches!(hold, Hold::Fresh(_)),
            not_send: PhantomData,
        }
    }

    /// Whether this acquire took the lock over from a process that died holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// assert!(!rlock.acquire().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Keeps this hold and lets the guard go without giving it up: Python's `acquire()`
    /// without a `with`. Give it up later with [`RLock::release`], on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = proc_sync::RLock::new().unwrap();
    /// rlock.acquire().forget();
    /// assert_eq!(rlock.count(), 1);
    /// rlock.release().unwrap();
    /// assert_eq!(rlock.count(), 0);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }

    /// The lock this guard holds.
    pub(crate) fn rlock(&self) -> &'a RLock {
        self.rlock
    }

    /// Whether this acquire took the lock afresh rather than re-entering a hold of this
    /// thread.
    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    /// Records a takeover that happened while a `Condition` re-acquired the lock.
    pub(crate) fn set_owner_died(&mut self) {
        self.owner_died = true;
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // A hold given up with `release` already leaves nothing for the guard to give up,
        // and a lock that another thread or process holds since is not this guard's.
        if self.rlock.is_mine() {
            self.rlock.leave();
        }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("owner_died", &self.owner_died)
            .finish_non_exhaustive()
    }
}

mod sealed_lock {
    use std::fmt;
    use std::time::Instant;

    use proc_core::Result;
    use proc_core::shared::Blocking;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::{Lock, LockGuard, RLock, RLockGuard};

    /// Keeps [`SharedLock`] to the locks of this crate.
    pub trait Sealed {}

    impl Sealed for Lock {}
    impl Sealed for RLock {}

    /// A lock that a [`Value`](crate::Value), an [`Array`](crate::Array) or a
    /// [`Condition`](crate::Condition) can go with: [`Lock`] or [`RLock`] (Python's `lock=`
    /// argument takes either).
    ///
    /// The trait is sealed: only these two implement it. Its methods are the crate's own.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::{Lock, RLock, SharedLock, Value};
    ///
    /// fn locked<L: SharedLock>(v: &Value<u8, L>) -> u8 {
    ///     v.get()
    /// }
    ///
    /// assert_eq!(locked(&Value::new(1u8).unwrap()), 1);
    /// assert_eq!(locked(&Value::new_with_lock(2u8, Lock::new().unwrap()).unwrap()), 2);
    /// assert_eq!(locked(&Value::new_with_lock(3u8, RLock::new().unwrap()).unwrap()), 3);
    /// ```
    pub trait SharedLock:
        Sealed + Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
    {
        /// What an acquire returns: [`LockGuard`] or [`RLockGuard`].
        type Guard<'a>: Sync + fmt::Debug;

        #[doc(hidden)]
        fn with_tail(len: usize, align: usize) -> Result<Self>;
        #[doc(hidden)]
        fn tail(&self, align: usize) -> *mut u8;
        #[doc(hidden)]
        fn tail_len(&self, align: usize) -> usize;
        /// `Some(guard)` once taken, `None` when `deadline` passed first (at once with
        /// `Blocking::NonBlocking`).
        #[doc(hidden)]
        fn enter(&self, blocking: Blocking, deadline: Option<Instant>) -> Option<Self::Guard<'_>>;
        #[doc(hidden)]
        fn guard_owner_died(guard: &Self::Guard<'_>) -> bool;
        /// Whether the acquire that made `guard` took a lock that this thread did not hold.
        #[doc(hidden)]
        fn guard_fresh(guard: &Self::Guard<'_>) -> bool;
        /// Whether `guard` holds `lock`.
        #[doc(hidden)]
        fn guard_holds(guard: &Self::Guard<'_>, lock: &Self) -> bool;
        #[doc(hidden)]
        fn guard_set_owner_died(guard: &mut Self::Guard<'_>);
        #[doc(hidden)]
        fn same(&self, other: &Self) -> bool;
        /// Whether the caller holds the lock: this process for a `Lock`, this thread for an
        /// `RLock`.
        #[doc(hidden)]
        fn is_owned(&self) -> bool;
        /// Gives up every hold of the caller, for a `Condition`'s wait; returns how many.
        #[doc(hidden)]
        fn leave_all(&self) -> u32;
        /// Takes the lock back with `count` holds; returns whether its owner had died.
        #[doc(hidden)]
        fn enter_all(&self, count: u32) -> bool;
    }

    impl SharedLock for Lock {
        type Guard<'a> = LockGuard<'a>;

        fn with_tail(len: usize, align: usize) -> Result<Lock> {
            Lock::with_tail(len, align)
        }

        fn tail(&self, align: usize) -> *mut u8 {
            self.shared.tail(align)
        }

        fn tail_len(&self, align: usize) -> usize {
            self.shared.tail_len(align)
        }

        fn enter(&self, blocking: Blocking, deadline: Option<Instant>) -> Option<LockGuard<'_>> {
            self.shared
                .lock(0, blocking, deadline)
                .map(|acquired| LockGuard::new(self, acquired))
        }

        fn guard_owner_died(guard: &LockGuard<'_>) -> bool {
            guard.owner_died()
        }

        fn guard_fresh(_: &LockGuard<'_>) -> bool {
            // A lock is never re-entered: its acquire waits for the lock to be free.
            true
        }

        fn guard_holds(guard: &LockGuard<'_>, lock: &Lock) -> bool {
            guard.lock().same(lock)
        }

        fn guard_set_owner_died(guard: &mut LockGuard<'_>) {
            guard.set_owner_died();
        }

        fn same(&self, other: &Lock) -> bool {
            Lock::same(self, other)
        }

        fn is_owned(&self) -> bool {
            self.is_mine()
        }

        fn leave_all(&self) -> u32 {
            self.unlock();
            1
        }

        fn enter_all(&self, _count: u32) -> bool {
            let guard = self.acquire();
            let owner_died = guard.owner_died();
            guard.forget();
            owner_died
        }
    }

    impl SharedLock for RLock {
        type Guard<'a> = RLockGuard<'a>;

        fn with_tail(len: usize, align: usize) -> Result<RLock> {
            RLock::with_tail(len, align)
        }

        fn tail(&self, align: usize) -> *mut u8 {
            self.shared.tail(align)
        }

        fn tail_len(&self, align: usize) -> usize {
            self.shared.tail_len(align)
        }

        fn enter(&self, blocking: Blocking, deadline: Option<Instant>) -> Option<RLockGuard<'_>> {
            RLock::enter(self, blocking, deadline)
        }

        fn guard_owner_died(guard: &RLockGuard<'_>) -> bool {
            guard.owner_died()
        }

        fn guard_fresh(guard: &RLockGuard<'_>) -> bool {
            guard.fresh()
        }

        fn guard_holds(guard: &RLockGuard<'_>, lock: &RLock) -> bool {
            guard.rlock().same(lock)
        }

        fn guard_set_owner_died(guard: &mut RLockGuard<'_>) {
            guard.set_owner_died();
        }

        fn same(&self, other: &RLock) -> bool {
            RLock::same(self, other)
        }

        fn is_owned(&self) -> bool {
            RLock::is_owned(self)
        }

        fn leave_all(&self) -> u32 {
            RLock::leave_all(self)
        }

        fn enter_all(&self, count: u32) -> bool {
            RLock::enter_all(self, count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_owners_thread_number_never_matches_a_thread_here() {
        use proc_core::shared::{identity_of, pid, start_time};

        let me = identity();
        // A dead owner of another pid and, where identities tell start times apart, one whose
        // pid the system gave to this process later.
        let other = identity_of(pid().wrapping_add(1), start_time());
        let recycled = (1..100)
            .map(|s| identity_of(pid(), s))
            .find(|&dead| dead != me);
        for dead in std::iter::once(other).chain(recycled) {
            let rlock = RLock::new().unwrap();
            let state = rlock.state();
            // What a takeover leaves for a moment: the word names this process, the taker,
            // while the thread number is still the dead owner's, whose thread had the same
            // number within its process as this thread has within this one.
            let local = thread_id() & u64::from(u32::MAX);
            state.word.value().store(me, Ordering::SeqCst);
            state
                .thread
                .store((u64::from(dead) << 32) | local, Ordering::SeqCst);
            state.count.store(1, Ordering::SeqCst);
            assert!(!rlock.is_mine(), "{dead:#x} passed for {me:#x}");
            assert!(rlock.try_acquire().is_none(), "entered another's hold");
            assert_eq!(rlock.count(), 1);
        }
    }

    #[test]
    fn thread_numbers_name_the_process_and_differ_between_threads() {
        let mine = thread_id();
        assert_eq!(mine >> 32, u64::from(identity()));
        assert_eq!(thread_id(), mine);
        let other = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(other, mine);
        assert_eq!(other >> 32, u64::from(identity()));
    }
}
