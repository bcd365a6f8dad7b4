//! Shared memory, and words in it that processes sleep on and lock: the layer under the
//! primitives of `proc-sync` and the queues of `proc-ipc`.
//!
//! | item | what it is |
//! |---|---|
//! | [`Segment`] | anonymous shared memory that owns its [`Handle`]; the handle and the length travel, [`Segment::from_handle`] maps them again |
//! | [`Word`] | a futex word and the count of its sleepers, made to sit in a segment: [`sleep`](Word::sleep) and [`wake`](Word::wake), and a robust lock ([`lock`](Word::lock), [`unlock`](Word::unlock)) that holds its owner's [`identity`] |
//! | [`Blocking`], [`Acquired`] | whether a lock call waits, and how it took the lock |
//! | [`Parkers`] | what the words of one structure sleep on; it travels along with the segment |
//! | [`identity`], [`identity_alive`] | the owner a lock stores (its pid, and a mark of its start time), and whether that owner still runs |
//! | [`pid`], [`pid_alive`] | this process's id, cheaply, and whether a pid runs |
//! | [`start_time`], [`pid_alive_since`], [`Instance`] | what tells a process from a later one with the same pid, for records that hold it beside the pid |
//!
//! A structure in shared memory is a `#[repr(C)]` type made of atomics (so that shared
//! references to it are fine while other processes change it) and valid when all its bytes are
//! zero (fresh segments are), placed at the start of a [`Segment`]. Waiting on a word costs no
//! system call while nobody sleeps: a waiter counts itself among the sleepers, and a waker
//! calls the kernel only when it sees one.
//!
//! # Examples
//!
//! A counter that children increment under a lock; the segment goes to them as its handle and
//! length, with the parkers its words sleep on.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
//!
//! use proc_core::shared::{Blocking, Parkers, Segment, Word};
//! use proc_core::{Handle, Process};
//!
//! /// Valid when zeroed, and made of atomics only.
//! #[repr(C)]
//! struct Counter {
//!     lock: Word,
//!     count: AtomicU32,
//! }
//!
//! fn counter(segment: &Segment) -> &Counter {
//!     // SAFETY: the segment is page-aligned and long enough, `Counter` is made of atomics
//!     // and valid when zeroed, and the reference does not outlive the segment.
//!     unsafe { &*segment.as_ptr().cast::<Counter>() }
//! }
//!
//! fn add_one((handle, len, parkers): (Handle, usize, Parkers)) {
//!     let segment = Segment::from_handle(handle, len).unwrap();
//!     let c = counter(&segment);
//!     c.lock.lock(&parkers, 0, Blocking::Block, None).unwrap();
//!     // A read and a write, not one atomic add: only the lock keeps other adders out.
//!     let seen = c.count.load(Ordering::Relaxed);
//!     c.count.store(seen + 1, Ordering::Relaxed);
//!     c.lock.unlock(&parkers, 0);
//! }
//!
//! fn main() {
//!     proc_core::init();
//!     let segment = Segment::anonymous(size_of::<Counter>()).unwrap();
//!     let parkers = Parkers::new(1).unwrap();
//!     let children: Vec<_> = (0..4)
//!         .map(|_| {
//!             let handle = segment.handle().try_clone().unwrap();
//!             Process::spawn(add_one, (handle, segment.len(), parkers.clone())).unwrap()
//!         })
//!         .collect();
//!     for mut child in children {
//!         child.join().unwrap();
//!     }
//!     assert_eq!(counter(&segment).count.load(Ordering::Relaxed), 4);
//!     assert!(!counter(&segment).lock.is_locked());
//! }
//! ```

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::sys;

/// How long a waiter for a lock sleeps before it checks that the lock's owner still lives.
const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// How many times a waiter looks at a taken lock before it sleeps.
const SPINS: u32 = 100;

/// Anonymous shared memory: a mapping that owns the handle which sends it to other processes.
///
/// [`anonymous`](Segment::anonymous) makes memory that no name reaches: the kernel frees it
/// when the last process that holds its handle or maps it ends, however it ends. To share it,
/// send a copy of its [`handle`](Segment::handle) and its [`len`](Segment::len) to another
/// process (as a [`Process`](crate::Process) argument, or through a [`Link`](crate::Link)),
/// which maps them with [`from_handle`](Segment::from_handle). The memory starts zeroed and
/// the mapping starts on a page; it is unmapped when the `Segment` drops.
///
/// `Segment` hands out a raw pointer only: what lives in the memory, and how the processes
/// that share it synchronize, is up to its users (atomics, [`Word`]s).
///
/// # Platform-specific behavior
///
/// The memory is a `memfd_create` object on Linux, whose size is sealed
/// (`F_SEAL_SHRINK | F_SEAL_GROW`, and `F_SEAL_SEAL` so that no other seal can be added), so
/// that no process it reaches can truncate it under the others, whose next touch of the lost
/// pages would be a `SIGBUS`; [`from_handle`](Segment::from_handle) refuses an unnamed
/// object without that seal. The other Unixes use a
/// `shm_open` object whose name is removed at once, and which has no seals. Windows uses an
/// unnamed file mapping backed by the paging file, which cannot shrink.
///
/// # Examples
///
/// A child fills a segment that it received as its handle:
///
/// ```
/// use proc_core::shared::Segment;
/// use proc_core::{Handle, Process};
///
/// fn fill((handle, len): (Handle, usize)) {
///     let segment = Segment::from_handle(handle, len).unwrap();
///     // SAFETY: the parent does not touch the memory until this process ends.
///     unsafe { std::ptr::write_bytes(segment.as_ptr(), 7, segment.len()) };
/// }
///
/// fn main() {
///     proc_core::init();
///     let segment = Segment::anonymous(100).unwrap();
///     let handle = segment.handle().try_clone().unwrap();
///     Process::spawn(fill, (handle, segment.len())).unwrap().join().unwrap();
///     // SAFETY: the child has ended; nothing else writes to the memory.
///     let bytes = unsafe { std::slice::from_raw_parts(segment.as_ptr(), segment.len()) };
///     assert!(bytes.iter().all(|b| *b == 7));
/// }
/// ```
pub struct Segment {
    handle: Handle,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with other processes anyway; `Segment` never
// hands out references to it, only the pointer, whose users synchronize on their own.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`: `&Segment` only gives the pointer, the length and the handle.
unsafe impl Sync for Segment {}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("handle", &self.handle)
            .field("len", &self.len)
            .finish()
    }
}

impl Segment {
    /// A new segment of `len` bytes, zeroed, that no name reaches.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `InvalidInput` when `len` is 0 or too large for the platform, or
    /// when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// let segment = proc_core::shared::Segment::anonymous(16).unwrap();
    /// assert_eq!(segment.len(), 16);
    /// // SAFETY: the mapping is 16 bytes long, and nothing else uses this fresh segment.
    /// assert_eq!(unsafe { segment.as_ptr().add(15).read() }, 0);
    /// assert!(proc_core::shared::Segment::anonymous(0).is_err());
    /// ```
    pub fn anonymous(len: usize) -> Result<Segment> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a shared memory segment cannot be empty",
            )
            .into());
        }
        Segment::map(sys::anonymous_segment(len)?, len)
    }

    /// Maps the first `len` bytes of the shared memory object behind `handle`: a segment's
    /// handle that came from another process, or any other such object (a named one, say).
    ///
    /// The object is checked before it is mapped, so that the process that sent it cannot
    /// make this one fault later by shrinking it (see below).
    ///
    /// # Errors
    ///
    /// - [`Error::Io`] with `InvalidData` when `len` is 0 or the object is smaller than `len`
    ///   (a length larger than the object would fault on first touch), or when the system
    ///   refuses the mapping.
    /// - [`Error::Decode`] on Linux when the object has no name and is not sealed against
    ///   shrinking (`F_SEAL_SHRINK`), as [`anonymous`](Segment::anonymous) seals its own.
    ///
    /// # Platform-specific behavior
    ///
    /// What is trusted differs. On Linux, an object that no name reaches (a memfd, or a
    /// `shm_open` object whose name was removed) must carry `F_SEAL_SHRINK`: its sender
    /// could otherwise truncate it under this process, whose next touch of the lost pages
    /// would be a `SIGBUS`. An object that still has a name is trusted as its name is:
    /// whoever may open the name may resize the object, as with any shared file. The other
    /// Unixes cannot seal `shm_open` objects, so there every segment that arrives is trusted
    /// not to be truncated by the processes that hold it. On Windows the size of a mapping
    /// is fixed at its creation, so there is nothing to trust; Windows cannot tell that size
    /// in advance either, so an object smaller than `len` fails with the error of
    /// `MapViewOfFile`.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::Segment;
    ///
    /// let segment = Segment::anonymous(8).unwrap();
    /// // SAFETY: the mapping is 8 bytes long, and nothing else uses it yet.
    /// unsafe { segment.as_ptr().write(42) };
    /// let again = Segment::from_handle(segment.handle().try_clone().unwrap(), 8).unwrap();
    /// // SAFETY: as above; the write is done.
    /// assert_eq!(unsafe { again.as_ptr().read() }, 42);
    /// assert!(Segment::from_handle(segment.handle().try_clone().unwrap(), 0).is_err());
    /// ```
    pub fn from_handle(handle: Handle, len: usize) -> Result<Segment> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared memory segment is empty",
            )
            .into());
        }
        let handle = sys::OwnedHandle::from(handle);
        if let Some(why) = sys::refuse_arrived_segment(&handle)? {
            return Err(Error::Decode(why.to_string()));
        }
        Segment::map(handle, len)
    }

    fn map(handle: sys::OwnedHandle, len: usize) -> Result<Segment> {
        let ptr = sys::map_segment(&handle, len)?;
        Ok(Segment {
            handle: Handle::from(handle),
            ptr,
            len,
        })
    }

    /// The handle of the memory, to send a copy of ([`Handle::try_clone`]) to another process.
    ///
    /// # Examples
    ///
    /// ```
    /// let segment = proc_core::shared::Segment::anonymous(8).unwrap();
    /// let copy = segment.handle().try_clone().unwrap();
    /// let again = proc_core::shared::Segment::from_handle(copy, segment.len()).unwrap();
    /// assert_eq!(again.len(), 8);
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The first byte of the mapping, page-aligned. It is valid for [`len`](Segment::len)
    /// bytes while `self` lives.
    ///
    /// # Examples
    ///
    /// ```
    /// let segment = proc_core::shared::Segment::anonymous(8).unwrap();
    /// assert!(segment.as_ptr().addr().is_multiple_of(4096));
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length of the mapping in bytes, as asked of [`anonymous`](Segment::anonymous) or
    /// [`from_handle`](Segment::from_handle).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::shared::Segment::anonymous(10).unwrap().len(), 10);
    /// ```
    #[allow(clippy::len_without_is_empty)] // A segment is never empty.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map_segment` with this address and length, and the
        // users of the pointer are gone with the last reference to this segment.
        unsafe { sys::unmap_segment(self.ptr, self.len) };
    }
}

/// What the [`Word`]s of one structure sleep on, numbered from 0.
///
/// Make one with as many places as the structure has words, send it wherever the segment
/// goes, and pass it with the word's number to every [`Word`] call that may sleep or wake.
///
/// # Platform-specific behavior
///
/// Futex platforms (Linux, FreeBSD, macOS) sleep on the word's address and need nothing
/// here: `Parkers` is empty and the number is ignored. Windows has no futex that crosses
/// processes, so `Parkers` holds one kernel semaphore per word, whose handles travel with
/// it; a number beyond those it was made for makes sleeps return at once there.
///
/// # Examples
///
/// A child sleeps on a word until its parent changes it; the parkers travel with the segment:
///
/// ```
/// use std::sync::atomic::Ordering;
///
/// use proc_core::shared::{Parkers, Segment, Word};
/// use proc_core::{Handle, Process};
///
/// fn word(segment: &Segment) -> &Word {
///     // SAFETY: the segment is page-aligned and holds a `Word`, which is valid when zeroed;
///     // the reference does not outlive the segment.
///     unsafe { &*segment.as_ptr().cast::<Word>() }
/// }
///
/// fn wait_for_go((handle, parkers): (Handle, Parkers)) -> u32 {
///     let segment = Segment::from_handle(handle, size_of::<Word>()).unwrap();
///     let go = word(&segment);
///     while go.value().load(Ordering::SeqCst) == 0 {
///         go.sleep(&parkers, 0, 0, None);
///     }
///     go.value().load(Ordering::SeqCst)
/// }
///
/// fn main() {
///     proc_core::init();
///     let segment = Segment::anonymous(size_of::<Word>()).unwrap();
///     let parkers = Parkers::new(1).unwrap();
///     let handle = segment.handle().try_clone().unwrap();
///     let mut child = Process::spawn(wait_for_go, (handle, parkers.clone())).unwrap();
///     word(&segment).value().store(5, Ordering::SeqCst);
///     word(&segment).wake(&parkers, 0, u32::MAX);
///     assert_eq!(child.join().unwrap(), 5);
/// }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Parkers {
    inner: sys::Parkers,
}

impl Parkers {
    /// Places to sleep for `words` words, numbered `0..words`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no semaphore to give (Windows).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::{Acquired, Blocking, Parkers, Word};
    ///
    /// let parkers = Parkers::new(1).unwrap();
    /// let word = Word::new();
    /// assert_eq!(word.lock(&parkers, 0, Blocking::NonBlocking, None), Some(Acquired::Free));
    /// ```
    pub fn new(words: usize) -> Result<Parkers> {
        Ok(Parkers {
            inner: sys::Parkers::new(words)?,
        })
    }
}

/// A futex word and the number of its sleepers, made to sit in shared memory.
///
/// It is `#[repr(C)]`, made of atomics only and valid when all its bytes are zero, so that a
/// structure of words (and other atomics) can be placed in a fresh [`Segment`] and used
/// through shared references by every process that maps it.
///
/// A word is used one of two ways:
///
/// - as a value to wait on: change [`value`](Word::value) with a `SeqCst` write, then
///   [`wake`](Word::wake); a waiter reads the value, decides, and [`sleep`](Word::sleep)s while
///   it still holds what it read;
/// - as a robust lock: [`lock`](Word::lock) and [`unlock`](Word::unlock), with the owner's
///   [`identity`] as the value (0 when free).
///
/// # Examples
///
/// A word in a segment, locked and unlocked:
///
/// ```
/// use proc_core::shared::{Acquired, Blocking, Parkers, Segment, Word, identity};
///
/// let segment = Segment::anonymous(size_of::<Word>()).unwrap();
/// let parkers = Parkers::new(1).unwrap();
/// // SAFETY: the segment is page-aligned and holds a `Word`, which is valid when zeroed; the
/// // reference does not outlive the segment.
/// let word = unsafe { &*segment.as_ptr().cast::<Word>() };
/// assert_eq!(word.lock(&parkers, 0, Blocking::Block, None), Some(Acquired::Free));
/// assert_eq!(word.value().load(std::sync::atomic::Ordering::Relaxed), identity());
/// word.unlock(&parkers, 0);
/// assert!(!word.is_locked());
/// ```
#[repr(C)]
#[derive(Debug, Default)]
pub struct Word {
    value: AtomicU32,
    sleepers: AtomicU32,
}

impl Word {
    /// A word that holds 0 and has no sleepers: a free lock.
    ///
    /// # Examples
    ///
    /// ```
    /// static WORD: proc_core::shared::Word = proc_core::shared::Word::new();
    /// assert!(!WORD.is_locked());
    /// ```
    pub const fn new() -> Word {
        Word {
            value: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The value, which sleepers compare with what they expect, and which a lock sets to its
    /// owner's [`identity`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    ///
    /// let word = proc_core::shared::Word::new();
    /// word.value().store(3, Ordering::SeqCst);
    /// assert_eq!(word.value().load(Ordering::SeqCst), 3);
    /// ```
    pub fn value(&self) -> &AtomicU32 {
        &self.value
    }

    /// Sleeps while the value is `expected`, until woken, until `deadline`, or spuriously.
    /// Callers look at the value again when it returns.
    ///
    /// It returns at once when the value is not `expected` or `deadline` has passed.
    /// `index` is the word's number within `parkers`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use std::time::{Duration, Instant};
    ///
    /// use proc_core::shared::{Parkers, Word};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         std::thread::sleep(Duration::from_millis(10));
    ///         word.value().store(1, Ordering::SeqCst);
    ///         word.wake(&parkers, 0, 1);
    ///     });
    ///     let deadline = Instant::now() + Duration::from_secs(20);
    ///     while word.value().load(Ordering::SeqCst) == 0 {
    ///         word.sleep(&parkers, 0, 0, Some(deadline));
    ///     }
    /// });
    /// assert_eq!(word.value().load(Ordering::SeqCst), 1);
    /// ```
    pub fn sleep(&self, parkers: &Parkers, index: usize, expected: u32, deadline: Option<Instant>) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if self.value.load(Ordering::SeqCst) == expected {
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if timeout != Some(Duration::ZERO) {
                parkers.inner.wait(index, &self.value, expected, timeout);
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes at most `n` sleepers (all of them with `u32::MAX`), after the caller changed the
    /// value with a `SeqCst` write, which orders it before the look at the sleepers. Without
    /// sleepers it makes no system call.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::{Parkers, Word};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// word.value().store(1, std::sync::atomic::Ordering::SeqCst);
    /// word.wake(&parkers, 0, u32::MAX);
    /// assert_eq!(word.value().load(std::sync::atomic::Ordering::SeqCst), 1);
    /// ```
    pub fn wake(&self, parkers: &Parkers, index: usize, n: u32) {
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers > 0 {
            parkers.inner.wake(index, &self.value, n.min(sleepers));
        }
    }

    /// Takes the lock that this word is: `Some` once taken, saying how, `None` when
    /// `deadline` passed first (at once with [`Blocking::NonBlocking`]).
    ///
    /// Taking a free lock is one compare-and-swap. A waiter spins a little, then sleeps; every
    /// tenth of a second it looks whether the owner still lives, and takes the lock of a dead
    /// owner over (as a non-blocking call does at once, and a wait that reaches its deadline
    /// before its first slice does at the end), which [`Acquired::OwnerDied`] reports: the
    /// `EOWNERDEAD` of robust POSIX mutexes. What the lock protects may be half-updated then.
    ///
    /// Ownership is per process: a thread that locks a word that its own process holds waits.
    ///
    /// # Platform-specific behavior
    ///
    /// The word is one futex word of 32 bits, which the kernel compares as a whole; it holds
    /// the owner's [`identity`]: its pid in the low bits and a hash of its start time in the
    /// others. A waiter counts the owner dead when that pid does not run, or runs with a
    /// start time of another hash ([`identity_alive`]), so a pid that the system gives to a
    /// new process between the owner's death and a waiter's look does not hide the death —
    /// unless the new process's start time has the same hash, one chance in 1,023 on Linux
    /// and one in 32,767 on macOS and FreeBSD, and then the lock stays taken until that
    /// process ends too. Windows pids may use all 32 bits, so there, and on the Unixes that
    /// cannot tell start times, the word holds the pid alone and a recycled pid hides the
    /// death as above. Processes in different pid namespaces must not share locks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use proc_core::shared::{Acquired, Blocking, Parkers, Word};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// assert_eq!(word.lock(&parkers, 0, Blocking::NonBlocking, None), Some(Acquired::Free));
    /// assert_eq!(word.lock(&parkers, 0, Blocking::NonBlocking, None), None);
    /// let soon = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(word.lock(&parkers, 0, Blocking::Block, Some(soon)), None);
    /// word.unlock(&parkers, 0);
    /// ```
    pub fn lock(
        &self,
        parkers: &Parkers,
        index: usize,
        blocking: Blocking,
        deadline: Option<Instant>,
    ) -> Option<Acquired> {
        let word = &self.value;
        let me = identity();
        if word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Some(Acquired::Free);
        }
        if blocking == Blocking::NonBlocking {
            let owner = word.load(Ordering::Relaxed);
            return take_from_dead(word, owner, me).then_some(Acquired::OwnerDied);
        }
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if word.load(Ordering::Relaxed) == 0
                && word
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(Acquired::Free);
            }
        }
        loop {
            let owner = word.load(Ordering::SeqCst);
            if owner == 0 {
                if word
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(Acquired::Free);
                }
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // A wait shorter than a slice still looks at the owner's life once, so that a
                // caller that only ever waits briefly is not kept out by a dead owner forever.
                return take_from_dead(word, owner, me).then_some(Acquired::OwnerDied);
            }
            let slice_end = Instant::now() + LIVENESS_SLICE;
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            self.sleep(parkers, index, owner, Some(until));
            // Only a sleep that lasted its whole slice with the same owner is worth the look
            // at the owner's life: a wakeup means that the lock moved.
            if Instant::now() >= slice_end
                && word.load(Ordering::Relaxed) == owner
                && take_from_dead(word, owner, me)
            {
                return Some(Acquired::OwnerDied);
            }
        }
    }

    /// Frees the lock and wakes one waiter. It does not check who holds the lock: callers
    /// unlock only what they locked.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::{Blocking, Parkers, Word};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// word.lock(&parkers, 0, Blocking::Block, None).unwrap();
    /// word.unlock(&parkers, 0);
    /// assert!(!word.is_locked());
    /// ```
    pub fn unlock(&self, parkers: &Parkers, index: usize) {
        self.value.swap(0, Ordering::SeqCst);
        self.wake(parkers, index, 1);
    }

    /// Whether some process holds the lock now (it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::{Blocking, Parkers, Word};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// assert!(!word.is_locked());
    /// word.lock(&parkers, 0, Blocking::Block, None).unwrap();
    /// assert!(word.is_locked());
    /// # word.unlock(&parkers, 0);
    /// ```
    pub fn is_locked(&self) -> bool {
        self.value.load(Ordering::Relaxed) != 0
    }

    /// Whether this process holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::{Blocking, Parkers, Word};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// word.lock(&parkers, 0, Blocking::Block, None).unwrap();
    /// assert!(word.is_mine());
    /// word.unlock(&parkers, 0);
    /// assert!(!word.is_mine());
    /// ```
    pub fn is_mine(&self) -> bool {
        self.value.load(Ordering::Relaxed) == identity()
    }

    /// Whether the lock is held by another process that has died: what [`lock`](Word::lock)
    /// would take over. A look at the owner's life, so a system call or two when the lock
    /// is held by another process.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    ///
    /// use proc_core::shared::{Blocking, Parkers, Word, identity, identity_of, pid};
    ///
    /// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    /// assert!(!word.held_by_dead());
    /// word.lock(&parkers, 0, Blocking::Block, None).unwrap();
    /// assert!(!word.held_by_dead(), "this process lives");
    /// // What the word says once its owner died and the system gave the owner's pid to this
    /// // process, where identities tell start times apart: this pid, another start time.
    /// if let Some(dead) = (1..100).map(|s| identity_of(pid(), s)).find(|&i| i != identity()) {
    ///     word.value().store(dead, Ordering::SeqCst);
    ///     assert!(word.held_by_dead());
    /// }
    /// ```
    pub fn held_by_dead(&self) -> bool {
        dead_other(self.value.load(Ordering::Relaxed), identity())
    }
}

/// Whether [`Word::lock`] waits for a lock that another process holds.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{Blocking, Parkers, Word};
///
/// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
/// assert!(word.lock(&parkers, 0, Blocking::Block, None).is_some());
/// assert!(word.lock(&parkers, 0, Blocking::NonBlocking, None).is_none());
/// word.unlock(&parkers, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// Wait until the lock is free or its owner is dead, at most until the deadline.
    Block,
    /// Return at once: take the lock if it is free or its owner is dead, else nothing.
    NonBlocking,
}

/// How [`Word::lock`] took the lock.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{Acquired, Blocking, Parkers, Word};
///
/// let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
/// let taken = word.lock(&parkers, 0, Blocking::Block, None).unwrap();
/// assert_eq!(taken, Acquired::Free);
/// assert!(!taken.owner_died());
/// word.unlock(&parkers, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The lock was free, or its owner freed it.
    Free,
    /// Taken over from a process that died holding it (the `EOWNERDEAD` of robust POSIX
    /// mutexes): what the lock protects may be half-updated.
    OwnerDied,
}

impl Acquired {
    /// Whether the lock was taken over from a dead owner.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::Acquired;
    ///
    /// assert!(Acquired::OwnerDied.owner_died());
    /// assert!(!Acquired::Free.owner_died());
    /// ```
    pub fn owner_died(self) -> bool {
        self == Acquired::OwnerDied
    }
}

/// Takes the lock in `word` from `owner` if that process is dead.
fn take_from_dead(word: &AtomicU32, owner: u32, me: u32) -> bool {
    dead_other(owner, me)
        && word
            .compare_exchange(owner, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
}

/// Whether the lock word `owner` names a process other than `me` (this one's identity) that
/// has died.
fn dead_other(owner: u32, me: u32) -> bool {
    owner != 0 && owner != me && !identity_alive(owner)
}

/// The bits of an identity that hold the pid.
const PID_MASK: u32 = match 1u32.checked_shl(sys::PID_BITS) {
    Some(bit) => bit - 1,
    None => u32::MAX,
};

/// This process's identity, as a lock word stores its owner: [`pid`] in the low bits, a hash
/// of [`start_time`] in the others (see [`identity_of`]). Never 0, which means "free"; it is
/// cached, and forgotten in a forked child, which is another process.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{identity, identity_alive, identity_of, identity_pid, pid, start_time};
///
/// assert_eq!(identity(), identity_of(pid(), start_time()));
/// assert_eq!(identity_pid(identity()), pid());
/// assert!(identity_alive(identity()));
/// ```
// Inline: locks store it on every acquire and compare it on every release, and the cached
// value is one load away; the first call's look at the system stays out of line.
#[inline]
pub fn identity() -> u32 {
    let cached = IDENTITY.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    cache_identity()
}

#[cold]
fn cache_identity() -> u32 {
    // `pid` and `start_time` make the forked child forget this cache too.
    let me = identity_of(pid(), start_time());
    IDENTITY.store(me, Ordering::Relaxed);
    me
}

/// The identity of the process `pid` that started at `start_time` (its [`start_time`], or 0
/// when unknown): the pid in the low bits, and in the others a hash of the start time that
/// is never 0 when the start time is known, and 0 when it is not.
///
/// # Platform-specific behavior
///
/// Linux and Android keep 22 bits for the pid (the kernel gives none beyond
/// `PID_MAX_LIMIT`, 2^22) and 10 for the hash; macOS and FreeBSD 17 for the pid (at most
/// `PID_MAX`, 99999) and 15 for the hash. Windows pids may use all 32 bits, and the other
/// Unixes tell no start times: there the identity is the pid.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{identity_of, identity_pid};
///
/// let id = identity_of(4321, 98765);
/// assert_ne!(id, 0);
/// assert_eq!(identity_pid(id), 4321);
/// // An unknown start time leaves the pid alone.
/// assert_eq!(identity_of(4321, 0), 4321);
/// ```
pub fn identity_of(pid: u32, start_time: u64) -> u32 {
    (pid & PID_MASK)
        | start_mark(start_time)
            .checked_shl(sys::PID_BITS)
            .unwrap_or(0)
}

/// The pid that `identity` names, for whoever reports an owner.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{identity, identity_pid, pid};
///
/// assert_eq!(identity_pid(identity()), pid());
/// ```
pub fn identity_pid(identity: u32) -> u32 {
    identity & PID_MASK
}

/// Whether the process that `identity` names still runs: its pid does ([`pid_alive`]), and
/// the process that now has the pid started at a time of the same hash, so that a dead
/// owner whose pid went to another process is seen as dead.
///
/// An identity without a start time's hash (the platform cannot tell), or a process whose
/// start cannot be read (`/proc` mounted with `hidepid`, say), is judged by the pid alone,
/// as [`pid_alive_since`] does: an error here takes a live process for alive, never for
/// dead. Two start times of one hash pass for each other (see [`Word::lock`]).
///
/// # Examples
///
/// A live pid with another start time is a recycled one:
///
/// ```
/// use proc_core::shared::{identity, identity_alive, identity_of, pid, start_time};
///
/// assert!(identity_alive(identity()));
/// assert!(identity_alive(identity_of(pid(), 0)));
/// if identity_of(pid(), 1) != identity_of(pid(), 0) {
///     // Start times whose hashes differ: the one of this process, and one of another.
///     let other = (1..).find(|&s| identity_of(pid(), s) != identity()).unwrap();
///     assert!(!identity_alive(identity_of(pid(), other)));
/// }
/// ```
pub fn identity_alive(identity: u32) -> bool {
    let pid = identity_pid(identity);
    let mark = identity.checked_shr(sys::PID_BITS).unwrap_or(0);
    sys::pid_alive(pid)
        && (mark == 0 || sys::start_time(pid).is_none_or(|start| start_mark(start) == mark))
}

/// The hash of a start time that an identity holds beside the pid, in the bits the pid
/// leaves: never 0 for a known start time, 0 for an unknown one (0) or where there are no
/// bits to hold it.
fn start_mark(start_time: u64) -> u32 {
    let bits = 32 - sys::PID_BITS;
    if bits == 0 || start_time == 0 {
        return 0;
    }
    // The finalizer of splitmix64: start times that differ in their low bits alone (clock
    // ticks a few apart) still land far apart. The modulus keeps 0 out.
    let mut x = start_time;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let marks = (1u64 << bits) - 1;
    // Below 2^bits, so it fits in the bits the pid leaves.
    (x % marks + 1) as u32
}

/// The cached pid of this process; 0 until first asked and again in a forked child.
static PID: AtomicU32 = AtomicU32::new(0);

/// The cached identity of this process; 0 until first asked and again in a forked child.
static IDENTITY: AtomicU32 = AtomicU32::new(0);

/// The cached start time of this process, plus one; 0 until first asked and again in a
/// forked child (1 when the platform cannot tell).
static START: AtomicU64 = AtomicU64::new(0);

/// Forgets the cached pid, start time and identity; it runs in a forked child, where it must
/// be async-signal-safe, as a store to an atomic is.
extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
    START.store(0, Ordering::Relaxed);
    IDENTITY.store(0, Ordering::Relaxed);
}

/// Forgets what [`pid`], [`start_time`] and [`identity`] cached, in a new child before it
/// runs anything of its parent's: the fork server's children are made by a `clone3` that runs
/// no atfork handler, so a cache the server had filled would reach them (three atomic stores,
/// on a page that a forked child has written already).
pub(crate) fn forget_inherited_identity() {
    forget_pid();
}

/// Makes a forked child forget what [`pid`], [`start_time`] and [`identity`] cached.
fn forget_at_fork() {
    static AT_FORK: Once = Once::new();
    AT_FORK.call_once(|| sys::at_fork_child(forget_pid));
}

/// This process's id, cheaply: records of holders store it on every acquire, and asking the
/// system is a system call on Unix. The cached value is forgotten in a forked child.
///
/// # Examples
///
/// ```
/// assert_eq!(proc_core::shared::pid(), std::process::id());
/// ```
#[inline]
pub fn pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    cache_pid()
}

// Out of line, so that the cached read above inlines into the callers' fast paths (every
// acquire of a semaphore reads the pid twice).
#[cold]
fn cache_pid() -> u32 {
    forget_at_fork();
    let pid = sys::getpid();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// Whether process `pid` still runs, whoever it belongs to. A process that ended counts as
/// ended even before its parent reaped it (a zombie).
///
/// # Platform-specific behavior
///
/// A recycled pid makes a dead process look alive: a record that can hold the start time
/// beside the pid should use [`pid_alive_since`], and a lock word [`identity_alive`], which
/// see through that. Linux and Android
/// tell a zombie by `/proc`, because `kill` still finds it there; on the other Unixes `kill`
/// alone judges.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{pid, pid_alive};
///
/// assert!(pid_alive(pid()));
/// assert!(!pid_alive(u32::MAX));
/// ```
pub fn pid_alive(pid: u32) -> bool {
    sys::pid_alive(pid)
}

/// When this process started, to store beside its [`pid`] in a record that others judge with
/// [`pid_alive_since`]; 0 where the platform cannot tell. It is cached (and forgotten in a
/// forked child, which started later).
///
/// The value is opaque: equal for one process however often it is asked, different for a
/// later process that was given the same pid (see [`start_time_of`] for the units).
///
/// # Examples
///
/// ```
/// use proc_core::shared::{pid, start_time, start_time_of};
///
/// assert_eq!(start_time_of(pid()).unwrap_or(0), start_time());
/// ```
// Inline: the holders of a semaphore compare it on every acquire and release, and the cached
// value is one load away; the first call's look at the system stays out of line.
#[inline]
pub fn start_time() -> u64 {
    let cached = START.load(Ordering::Relaxed);
    if cached != 0 {
        return cached - 1;
    }
    cache_start_time()
}

#[cold]
fn cache_start_time() -> u64 {
    forget_at_fork();
    let start = start_time_of(pid()).unwrap_or(0);
    START.store(start.saturating_add(1), Ordering::Relaxed);
    start
}

/// When process `pid` started, or `None` when no such process can be seen or the platform
/// cannot tell: what [`start_time`] gives in that process.
///
/// # Platform-specific behavior
///
/// Linux and Android: clock ticks since boot (usually 10 ms), field 22 of
/// `/proc/<pid>/stat`, so a pid given again within the tick of its first start would pass
/// for it. macOS and FreeBSD: microseconds since the epoch, from the kernel's process
/// record. Windows: the creation time (`GetProcessTimes`), in 100 ns units. Elsewhere:
/// `None`.
///
/// # Examples
///
/// ```
/// use proc_core::shared::{start_time_of, pid};
///
/// assert!(start_time_of(pid()).is_some() || cfg!(not(any(unix, windows))));
/// assert_eq!(start_time_of(u32::MAX), None);
/// ```
pub fn start_time_of(pid: u32) -> Option<u64> {
    sys::start_time(pid)
}

/// Whether the process that had pid `pid` and started at `start_time` (its [`start_time`])
/// still runs: [`pid_alive`], and the process that now has the pid started then, so that a
/// dead process whose pid went to another one is seen as dead.
///
/// A `start_time` of 0 (a platform that cannot tell), or a process whose start cannot be
/// read (`/proc` mounted with `hidepid`, say), is judged by the pid alone: an error here
/// takes a live process for alive, never for dead.
///
/// # Examples
///
/// A live pid with another start time is a recycled one:
///
/// ```
/// use proc_core::shared::{pid, pid_alive_since, start_time};
///
/// assert!(pid_alive_since(pid(), start_time()));
/// if start_time() != 0 {
///     assert!(!pid_alive_since(pid(), start_time() + 1));
/// }
/// ```
pub fn pid_alive_since(pid: u32, start_time: u64) -> bool {
    sys::pid_alive(pid)
        && (start_time == 0 || sys::start_time(pid).is_none_or(|now| now == start_time))
}

/// One process, as a record in shared memory names it: its pid and its [`start_time`], so
/// that a later process that the system gave the same pid is not taken for it (the holders
/// of a semaphore's places, the owners of a queue's backlogs and of a channel's ends).
///
/// # Examples
///
/// ```
/// use proc_core::shared::{Instance, pid, start_time};
///
/// let me = Instance::me();
/// assert_eq!((me.pid, me.start), (pid(), start_time()));
/// assert!(me.alive());
/// if me.start != 0 {
///     // This pid, started at another time: a process that is gone.
///     assert!(!Instance { start: me.start + 1, ..me }.alive());
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instance {
    /// Its pid.
    pub pid: u32,
    /// When it started (its [`start_time`]); 0 where the platform cannot tell, which leaves
    /// the pid alone to judge.
    pub start: u64,
}

impl Instance {
    /// This process: both halves cached, no system call.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::shared::Instance::me().pid, std::process::id());
    /// ```
    #[inline]
    pub fn me() -> Instance {
        Instance {
            pid: pid(),
            start: start_time(),
        }
    }

    /// Whether the process still runs: its pid does, and was given to it, not to a later
    /// one ([`pid_alive_since`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::shared::Instance;
    ///
    /// assert!(Instance::me().alive());
    /// assert!(!Instance { pid: u32::MAX, start: 0 }.alive());
    /// ```
    pub fn alive(self) -> bool {
        pid_alive_since(self.pid, self.start)
    }
}
