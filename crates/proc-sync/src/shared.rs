//! The state of a synchronization primitive in shared memory, and sleeping on its words.
//!
//! Every primitive is a small anonymous [`SharedMemory`] segment that holds a `State` — a
//! `#[repr(C)]` struct of atomics, valid when all its bytes are zero (fresh segments are) —
//! followed by an optional tail (the data of a `Value` or `Array`). Its `Word`s are
//! `proc_core::shared::Word`s, futex words: a waiter counts itself among the word's sleepers
//! and sleeps while the word holds what it saw; a waker changes the word and wakes only when
//! someone sleeps, so that the uncontended paths make no system call. The `Parkers` that the
//! words sleep on travel with the segment.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

pub(crate) use proc_core::shared::Word;
use proc_core::shared::{Acquired, Blocking, Parkers};
use proc_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::SharedMemory;
use crate::wire::{Header, Kind};

/// The shared state of a primitive.
///
/// # Safety
///
/// The type must be `#[repr(C)]`, made of atomics only (so that shared references to it are
/// fine while other processes change it), and valid when all its bytes are zero.
pub(crate) unsafe trait State: Sync {
    /// The kind its serialized form names.
    const KIND: Kind;

    /// How many `Word`s it has, numbered from 0.
    const WORDS: usize;

    /// Its word number `i`.
    fn word(&self, i: usize) -> &Word;
}

/// The alignment the tail of a segment starts at, beyond that of the state.
const LINE: usize = 64;

/// The largest alignment a tail can have: the smallest page of every supported platform.
/// Segments start on a page, so a tail offset that is a multiple of an alignment up to this
/// one is aligned in memory too; beyond it, the offset alone proves nothing.
pub(crate) const MAX_ALIGN: usize = 4096;

/// Why a type aligned beyond [`MAX_ALIGN`] cannot live in shared memory.
pub(crate) const OVER_ALIGNED: &str =
    "a shared value's type may be aligned to at most 4096 bytes (a page)";

/// Refuses a tail alignment that the page alignment of segments cannot guarantee.
pub(crate) fn check_align(align: usize) -> Result<()> {
    if align.is_power_of_two() && align <= MAX_ALIGN {
        Ok(())
    } else {
        Err(Error::Unsupported(OVER_ALIGNED))
    }
}

/// A primitive's state in shared memory, with what its words sleep on.
pub(crate) struct Shared<S> {
    shm: SharedMemory,
    parkers: Parkers,
    state: PhantomData<fn() -> S>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            shm: self.shm.clone(),
            parkers: self.parkers.clone(),
            state: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("shm", &self.shm)
            .field("parkers", &self.parkers)
            .finish()
    }
}

impl<S: State> Shared<S> {
    /// A zeroed state with no tail.
    pub(crate) fn new() -> Result<Shared<S>> {
        Shared::with_tail(0, 1)
    }

    /// A zeroed state followed by `len` bytes aligned to `align`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `align` exceeds [`MAX_ALIGN`].
    pub(crate) fn with_tail(len: usize, align: usize) -> Result<Shared<S>> {
        check_align(align)?;
        let total = Self::tail_offset(align)
            .checked_add(len)
            .ok_or(Error::InvalidState("shared value too large"))?;
        Ok(Shared {
            shm: SharedMemory::create(total)?,
            parkers: Parkers::new(S::WORDS)?,
            state: PhantomData,
        })
    }

    fn tail_offset(align: usize) -> usize {
        std::mem::size_of::<S>().next_multiple_of(align.max(LINE))
    }

    pub(crate) fn state(&self) -> &S {
        // SAFETY: the segment is page-aligned and at least `size_of::<S>()` long (checked in
        // `with_tail` and on arrival from another process); `S` is made of atomics and valid
        // when zeroed (`State`'s contract), so a shared reference is fine while other
        // processes change it; the mapping lives as long as `self`.
        unsafe { &*self.shm.as_ptr().cast::<S>() }
    }

    /// The start of the tail, aligned to `align` (at most [`MAX_ALIGN`], which `with_tail`
    /// and the deserializers of its users check); valid for the length asked of `with_tail`.
    pub(crate) fn tail(&self, align: usize) -> *mut u8 {
        // SAFETY: the offset is within the segment, which `with_tail` sized to hold it.
        let tail = unsafe { self.shm.as_ptr().add(Self::tail_offset(align)) };
        debug_assert!(tail.addr().is_multiple_of(align), "misaligned tail");
        tail
    }

    /// The length of the tail, for `align`.
    pub(crate) fn tail_len(&self, align: usize) -> usize {
        self.shm.size().saturating_sub(Self::tail_offset(align))
    }

    /// Whether `self` and `other` are clones of one primitive.
    pub(crate) fn same(&self, other: &Shared<S>) -> bool {
        self.shm.same(&other.shm)
    }

    /// Sleeps while word `i` holds `expected`, until woken, until `deadline`, or spuriously.
    /// Callers look at the word again when it returns.
    pub(crate) fn sleep(&self, i: usize, expected: u32, deadline: Option<Instant>) {
        self.state()
            .word(i)
            .sleep(&self.parkers, i, expected, deadline);
    }

    /// Wakes at most `n` sleepers of word `i`, after the caller changed it (with a `SeqCst`
    /// write, which orders it before the look at the sleepers).
    pub(crate) fn wake(&self, i: usize, n: u32) {
        self.state().word(i).wake(&self.parkers, i, n);
    }

    /// Takes the robust lock in word `i`: `Some` once taken, saying how, `None` when
    /// `deadline` passed first (at once with `Blocking::NonBlocking`).
    pub(crate) fn lock(
        &self,
        i: usize,
        blocking: Blocking,
        deadline: Option<Instant>,
    ) -> Option<Acquired> {
        self.state()
            .word(i)
            .lock(&self.parkers, i, blocking, deadline)
    }

    /// Frees the lock in word `i` and wakes one waiter.
    pub(crate) fn unlock(&self, i: usize) {
        self.state().word(i).unlock(&self.parkers, i);
    }
}

/// A state travels behind a header that names its kind and size, so that a peer that sends
/// another primitive (or a bare segment) gets a decode error instead of mixed accesses.
impl<S: State> Serialize for Shared<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> std::result::Result<Z::Ok, Z::Error> {
        (Header::of::<S>(S::KIND), &self.shm, &self.parkers).serialize(serializer)
    }
}

impl<'de, S: State> Deserialize<'de> for Shared<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (header, shm, parkers) = <(Header, SharedMemory, Parkers)>::deserialize(deserializer)?;
        header.expect(Header::of::<S>(S::KIND))?;
        if shm.size() < std::mem::size_of::<S>() {
            return Err(proc_core::codec::de_error(
                "shared state is smaller than its type",
            ));
        }
        Ok(Shared {
            shm,
            parkers,
            state: PhantomData,
        })
    }
}

/// When a wait of `timeout` started now ends; `None` for a wait that never ends (or one so
/// long that the clock cannot say when).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    proc_core::internal::Deadline::from_timeout(timeout).instant()
}

/// Whether `deadline` has passed.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}
