//! `Value` and `Array`: plain-old-data in shared memory, with a lock or without (Python's
//! `multiprocessing.Value` and `multiprocessing.Array`, and their `lock=False` forms).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use proc_core::shared::Blocking;
use proc_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::lock::{RLock, SharedLock, thread_id};
use crate::shared::{OVER_ALIGNED, check_align, deadline};
use crate::shm::SharedMemory;
use crate::wire::{Header, Kind};

fn index_error() -> Error {
    Error::InvalidState("array index out of range")
}

/// Reads a `T` at `src` with atomic loads: whole when `T` is 1, 2, 4 or 8 bytes and `src` is
/// aligned for that, byte by byte (and so possibly torn, but always a valid `T`) otherwise.
///
/// # Safety
///
/// `src` must be valid for reads of `size_of::<T>()` bytes, with every access to them atomic.
unsafe fn atomic_read<T: Pod>(src: *const u8) -> T {
    let size = std::mem::size_of::<T>();
    if (src as usize).is_multiple_of(size.max(1)) {
        // SAFETY: `src` is valid for `size` bytes (the caller's promise) and aligned for the
        // atomic of that size; every access is atomic, so there is no data race.
        let whole = unsafe {
            match size {
                2 => Some(bytemuck::cast::<u16, T>(
                    (*src.cast::<AtomicU16>()).load(Ordering::Acquire),
                )),
                4 => Some(bytemuck::cast::<u32, T>(
                    (*src.cast::<AtomicU32>()).load(Ordering::Acquire),
                )),
                8 => Some(bytemuck::cast::<u64, T>(
                    (*src.cast::<AtomicU64>()).load(Ordering::Acquire),
                )),
                _ => None,
            }
        };
        if let Some(value) = whole {
            return value;
        }
    }
    let mut out = T::zeroed();
    for (i, byte) in bytemuck::bytes_of_mut(&mut out).iter_mut().enumerate() {
        // SAFETY: byte `i < size` of the caller's valid range, read atomically; any bytes
        // make a valid `T` (`Pod`).
        *byte = unsafe { (*src.add(i).cast::<AtomicU8>()).load(Ordering::Acquire) };
    }
    out
}

/// Writes `value` at `dst` with atomic stores, as [`atomic_read`] reads.
///
/// # Safety
///
/// `dst` must be valid for writes of `size_of::<T>()` bytes, with every access to them
/// atomic.
unsafe fn atomic_write<T: Pod>(dst: *mut u8, value: T) {
    let size = std::mem::size_of::<T>();
    let bytes = bytemuck::bytes_of(&value);
    if (dst as usize).is_multiple_of(size.max(1)) && matches!(size, 2 | 4 | 8) {
        // SAFETY: `dst` is valid for `size` bytes (the caller's promise) and aligned for the
        // atomic of that size; every access is atomic, so there is no data race.
        unsafe {
            match size {
                2 => (*dst.cast::<AtomicU16>())
                    .store(bytemuck::pod_read_unaligned(bytes), Ordering::Release),
                4 => (*dst.cast::<AtomicU32>())
                    .store(bytemuck::pod_read_unaligned(bytes), Ordering::Release),
                _ => (*dst.cast::<AtomicU64>())
                    .store(bytemuck::pod_read_unaligned(bytes), Ordering::Release),
            }
        }
        return;
    }
    for (i, byte) in bytes.iter().enumerate() {
        // SAFETY: byte `i < size` of the caller's valid range, written atomically.
        unsafe { (*dst.add(i).cast::<AtomicU8>()).store(*byte, Ordering::Release) };
    }
}

/// Where the elements of a `Value` or `Array` live, after the word that names the thread
/// whose guard gives them out.
///
/// The word is what lets the lock be re-entered safely: a thread that holds the lock may
/// read and write the elements again ([`Value::get`] under `get_lock().acquire()`, as Python's
/// `with v.get_lock(): v.value += 1` does), but must not reach them while one of its own
/// guards hands out references to them, which would alias a `&mut`.
#[derive(Debug, Clone)]
struct Place<L> {
    lock: L,
    /// `None`: in the tail of the lock's own segment (a lock made for the value);
    /// `Some`: in a segment of their own (a lock given by the caller).
    own: Option<SharedMemory>,
}

/// The offset of the elements after the borrow word, for elements aligned to `align`.
fn elements_offset(align: usize) -> usize {
    align.max(std::mem::align_of::<AtomicU64>())
}

/// The alignment of a place for elements aligned to `align`.
fn place_align(align: usize) -> usize {
    elements_offset(align)
}

impl<L: SharedLock> Place<L> {
    /// A place for `bytes` bytes aligned to `align`, with a lock of its own.
    fn new(bytes: usize, align: usize) -> Result<Place<L>> {
        let len = Self::len_for(bytes, align)?;
        Ok(Place {
            lock: L::with_tail(len, place_align(align))?,
            own: None,
        })
    }

    /// A place for `bytes` bytes aligned to `align`, that `lock` guards.
    fn with_lock(bytes: usize, align: usize, lock: L) -> Result<Place<L>> {
        check_align(align)?;
        let len = Self::len_for(bytes, align)?;
        Ok(Place {
            lock,
            own: Some(SharedMemory::create(len)?),
        })
    }

    fn len_for(bytes: usize, align: usize) -> Result<usize> {
        elements_offset(align)
            .checked_add(bytes)
            .ok_or(Error::InvalidState("shared value too large"))
    }

    fn base(&self, align: usize) -> *mut u8 {
        match &self.own {
            Some(shm) => shm.as_ptr(),
            None => self.lock.tail(place_align(align)),
        }
    }

    /// How many bytes of elements the place holds.
    fn capacity(&self, align: usize) -> usize {
        let len = match &self.own {
            Some(shm) => shm.size(),
            None => self.lock.tail_len(place_align(align)),
        };
        len.saturating_sub(elements_offset(align))
    }

    fn borrower(&self, align: usize) -> &AtomicU64 {
        // SAFETY: the place starts aligned to at least 8 (a page, or a tail aligned to
        // `place_align`) and holds the word before the elements; the word is only accessed
        // atomically, and it lives as long as `self`.
        unsafe { &*self.base(align).cast::<AtomicU64>() }
    }

    fn elements(&self, align: usize) -> *mut u8 {
        // SAFETY: the elements start `elements_offset` bytes into the place, which holds them.
        unsafe { self.base(align).add(elements_offset(align)) }
    }

    /// Takes the lock for a guard that gives out the elements; `None` when `deadline`
    /// passed first.
    ///
    /// # Panics
    ///
    /// When this thread holds a guard of this place already (the lock is re-entered).
    fn enter(&self, align: usize, deadline: Option<Instant>) -> Option<Borrow<'_, L>> {
        let guard = self.lock.enter(Blocking::Block, deadline)?;
        let borrower = self.borrower(align);
        let me = thread_id();
        // A fresh hold has no guard of this thread alive; a word that still names this thread
        // then was left by a guard that was leaked with `mem::forget`.
        if !L::guard_fresh(&guard) && borrower.load(Ordering::Relaxed) == me {
            drop(guard);
            panic!(
                "this thread already holds a guard of this value: use that guard instead of \
                 get, set or lock, or drop it first"
            );
        }
        borrower.store(me, Ordering::Relaxed);
        Some(Borrow { guard, borrower })
    }
}

impl<L: Serialize> Serialize for Place<L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (&self.lock, &self.own).serialize(serializer)
    }
}

impl<'de, L: SharedLock> Deserialize<'de> for Place<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (lock, own) = <(L, Option<SharedMemory>)>::deserialize(deserializer)?;
        Ok(Place { lock, own })
    }
}

/// A hold of a place's lock with the place's borrow word naming this thread; dropping it
/// clears the word, then releases the hold.
struct Borrow<'a, L: SharedLock> {
    guard: L::Guard<'a>,
    borrower: &'a AtomicU64,
}

impl<L: SharedLock> Borrow<'_, L> {
    /// Keeps the hold of the lock and gives up the elements.
    fn forget(self) {
        let this = std::mem::ManuallyDrop::new(self);
        this.borrower.store(0, Ordering::Relaxed);
    }
}

impl<L: SharedLock> Drop for Borrow<'_, L> {
    fn drop(&mut self) {
        self.borrower.store(0, Ordering::Relaxed);
    }
}

/// Checks what a peer sent: the alignment of `T`, and room for `len` elements.
fn check_arrival<L: SharedLock, E: serde::de::Error>(
    place: &Place<L>,
    len: usize,
    size: usize,
    align: usize,
    message: &'static str,
) -> std::result::Result<(), E> {
    check_align(align).map_err(|_| E::custom(OVER_ALIGNED))?;
    let fits = len
        .checked_mul(size)
        .is_some_and(|bytes| bytes <= place.capacity(align));
    if fits {
        Ok(())
    } else {
        Err(E::custom(message))
    }
}

/// A `T` in shared memory with a lock: Python's `multiprocessing.Value`.
///
/// `T` is plain old data ([`bytemuck::Pod`]: integers, floats, arrays and `#[repr(C)]`
/// structs of them), so any bytes another process leaves are a valid `T`. Every access
/// takes the value's lock: [`get`](Value::get) and [`set`](Value::set) for one step,
/// [`lock`](Value::lock) or [`with_lock`](Value::with_lock) for a read-modify-write, such as
/// `+= 1`, that other processes must not cut into.
///
/// # The lock
///
/// The lock is an [`RLock`] by default, as in Python, so that a thread holding it may call
/// `get` and `set` again: Python's `with v.get_lock(): v.value += 1` works as written.
/// [`new_with_lock`](Value::new_with_lock) takes a lock of the caller's (Python's `lock=`),
/// which several values may share; with a plain [`Lock`](crate::Lock), which is not re-entrant, `get` and
/// `set` under `get_lock().acquire()` wait for themselves forever, as they do in Python.
///
/// ```
/// let v = proc_sync::Value::new(0u32).unwrap();
/// {
///     let _held = v.get_lock().acquire(); // with v.get_lock():
///     v.set(v.get() + 1); //                     v.value += 1
/// }
/// assert_eq!(v.get(), 1);
/// ```
///
/// What a thread may not do is reach the value while one of its own [`ValueGuard`]s hands
/// out references to it: `get`, `set` and `lock` then panic rather than alias the guard's
/// `&mut T`.
///
/// # Robustness
///
/// A process killed while holding the lock does not block the others, and the next
/// [`ValueGuard::owner_died`] says so.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::Value;
///
/// fn add(counter: Value<u64>) {
///     for _ in 0..100 {
///         counter.with_lock(|n| *n += 1);
///     }
/// }
///
/// fn main() {
///     proc_core::init();
///     let counter = Value::new(0u64).unwrap();
///     let children: Vec<_> = (0..3)
///         .map(|_| Process::spawn(add, counter.clone()).unwrap())
///         .collect();
///     for mut child in children {
///         child.join().unwrap();
///     }
///     assert_eq!(counter.get(), 300);
/// }
/// ```
pub struct Value<T, L: SharedLock = RLock> {
    place: Place<L>,
    value: PhantomData<T>,
}

impl<T: Pod> Value<T> {
    /// A new value in shared memory, with an [`RLock`] of its own.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give;
    /// [`Error::Unsupported`] when `T` is aligned to more than 4096 bytes (a page), more than
    /// shared memory can promise.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new(1.5f64).unwrap();
    /// assert_eq!(v.get(), 1.5);
    /// ```
    pub fn new(value: T) -> Result<Value<T>> {
        Value::init(Place::new(size_of::<T>(), align_of::<T>())?, value)
    }
}

impl<T: Pod, L: SharedLock> Value<T, L> {
    /// A new value in shared memory that `lock` guards: Python's `Value(..., lock=lock)`.
    ///
    /// The lock may guard other values too, and other work; taking it keeps every one of
    /// them from changing.
    ///
    /// # Errors
    ///
    /// As [`new`](Value::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::{Lock, Value};
    ///
    /// let lock = Lock::new().unwrap();
    /// let x = Value::new_with_lock(1u32, lock.clone()).unwrap();
    /// let y = Value::new_with_lock(2u32, lock.clone()).unwrap();
    /// let both = lock.acquire();
    /// assert!(x.lock_timeout(std::time::Duration::ZERO).is_err());
    /// assert!(y.get_lock().is_locked());
    /// drop(both);
    /// assert_eq!(x.get() + y.get(), 3);
    /// ```
    #[doc(alias = "lock")]
    pub fn new_with_lock(value: T, lock: L) -> Result<Value<T, L>> {
        Value::init(
            Place::with_lock(size_of::<T>(), align_of::<T>(), lock)?,
            value,
        )
    }

    fn init(place: Place<L>, value: T) -> Result<Value<T, L>> {
        let v: Value<T, L> = Value {
            place,
            value: PhantomData,
        };
        // SAFETY: the place is new and ours alone; it holds a `T`, aligned.
        unsafe { v.ptr().write(value) };
        Ok(v)
    }

    fn ptr(&self) -> *mut T {
        self.place.elements(align_of::<T>()).cast()
    }

    /// The value, read under the lock.
    ///
    /// # Panics
    ///
    /// When this thread holds a [`ValueGuard`] of this value: read it through the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Value::new(7u8).unwrap().get(), 7);
    /// ```
    #[doc(alias = "value")]
    pub fn get(&self) -> T {
        *self.lock()
    }

    /// Replaces the value, under the lock.
    ///
    /// # Panics
    ///
    /// When this thread holds a [`ValueGuard`] of this value: write through the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new(0i32).unwrap();
    /// v.set(-3);
    /// assert_eq!(v.get(), -3);
    /// ```
    #[doc(alias = "value")]
    pub fn set(&self, value: T) {
        *self.lock() = value;
    }

    /// Takes the lock and gives the value to read and change until the guard drops.
    ///
    /// # Panics
    ///
    /// When this thread holds another [`ValueGuard`] of this value, whose references the
    /// new one would alias.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new([0u8; 4]).unwrap();
    /// {
    ///     let mut guard = v.lock();
    ///     guard[2] = 9;
    /// }
    /// assert_eq!(v.get(), [0, 0, 9, 0]);
    /// ```
    pub fn lock(&self) -> ValueGuard<'_, T, L> {
        self.lock_until(None)
            .expect("a wait without a deadline ends with the lock")
    }

    /// Waits at most `timeout` for the lock, like [`lock`](Value::lock).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the lock is still taken after `timeout`.
    ///
    /// # Panics
    ///
    /// As [`lock`](Value::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let v = proc_sync::Value::new(1u32).unwrap();
    /// let held = v.lock();
    /// let taken = std::thread::scope(|s| {
    ///     s.spawn(|| v.lock_timeout(Duration::from_millis(10)).is_err()).join().unwrap()
    /// });
    /// assert!(taken);
    /// drop(held);
    /// assert_eq!(*v.lock_timeout(Duration::from_secs(1)).unwrap(), 1);
    /// ```
    #[must_use = "the lock is released as soon as the guard drops"]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ValueGuard<'_, T, L>> {
        self.lock_until(deadline(Some(timeout)))
            .ok_or(Error::Timeout)
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Option<ValueGuard<'_, T, L>> {
        Some(ValueGuard {
            borrow: self.place.enter(align_of::<T>(), deadline)?,
            ptr: self.ptr(),
            value: PhantomData,
        })
    }

    /// Runs `f` on the value under the lock (Python's `with v.get_lock(): ...`).
    ///
    /// # Panics
    ///
    /// As [`lock`](Value::lock), and when `f` reaches the value other than through its
    /// argument.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new(1u32).unwrap();
    /// let old = v.with_lock(|n| std::mem::replace(n, 5));
    /// assert_eq!((old, v.get()), (1, 5));
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }

    /// The value's lock, to hold it across other work (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u8).unwrap();
    /// let _held = v.get_lock().acquire();
    /// assert!(v.get_lock().is_locked());
    /// assert_eq!(v.get(), 0); // this thread holds the RLock: it may read again
    /// ```
    pub fn get_lock(&self) -> &L {
        &self.place.lock
    }

    /// The value itself, without the lock: Python's `get_obj()`.
    ///
    /// The pointer stays valid while this `Value` (or a clone) lives. Reading or writing
    /// through it is up to the caller, who must hold the lock (so that no other process or
    /// thread writes meanwhile) and must not hold a [`ValueGuard`] that could alias it.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new(41u64).unwrap();
    /// let held = v.get_lock().acquire();
    /// let raw = v.get_obj();
    /// // SAFETY: this thread holds the lock and no guard of the value, so nothing else reads
    /// // or writes the value meanwhile; the pointer is aligned and `v` is alive.
    /// unsafe { *raw += 1 };
    /// drop(held);
    /// assert_eq!(v.get(), 42);
    /// ```
    pub fn get_obj(&self) -> *mut T {
        self.ptr()
    }
}

impl<T, L: SharedLock> Clone for Value<T, L> {
    fn clone(&self) -> Self {
        Value {
            place: self.place.clone(),
            value: PhantomData,
        }
    }
}

impl<T, L: SharedLock> fmt::Debug for Value<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("lock", &self.place.lock)
            .finish_non_exhaustive()
    }
}

/// A `Value` travels with the size and alignment of `T`, so that a peer that takes it for
/// a `Value` of another type, or for another primitive, gets a decode error.
impl<T, L: SharedLock> Serialize for Value<T, L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (Header::of::<T>(Kind::Value), &self.place).serialize(serializer)
    }
}

impl<'de, T: Pod, L: SharedLock> Deserialize<'de> for Value<T, L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (header, place) = <(Header, Place<L>)>::deserialize(deserializer)?;
        header.expect(Header::of::<T>(Kind::Value))?;
        check_arrival(
            &place,
            1,
            size_of::<T>(),
            align_of::<T>(),
            "shared value is smaller than its type",
        )?;
        Ok(Value {
            place,
            value: PhantomData,
        })
    }
}

/// The value of a [`Value`], with its lock held; dropping it releases the lock.
///
/// # Examples
///
/// ```
/// let v = proc_sync::Value::new(2u16).unwrap();
/// let mut guard = v.lock();
/// *guard *= 21;
/// assert_eq!(*guard, 42);
/// assert!(!guard.owner_died());
/// ```
#[must_use = "the lock is released as soon as the guard drops: bind it with `let mut guard = ...`"]
pub struct ValueGuard<'a, T, L: SharedLock = RLock> {
    borrow: Borrow<'a, L>,
    ptr: *mut T,
    value: PhantomData<&'a mut T>,
}

// SAFETY: a shared guard only gives `&T` (like `MutexGuard`), fine to share when `T` is; the
// lock guard inside is `Sync` (`SharedLock::Guard` requires it).
unsafe impl<T: Sync, L: SharedLock> Sync for ValueGuard<'_, T, L> {}

impl<T, L: SharedLock> ValueGuard<'_, T, L> {
    /// Whether the lock was taken over from a process that died holding it: the value may
    /// be half-updated.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!proc_sync::Value::new(0u8).unwrap().lock().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        L::guard_owner_died(&self.borrow.guard)
    }

    /// Keeps the lock held and lets the guard go: release it later with the lock's
    /// `release` ([`Lock::release`](crate::Lock::release),
    /// [`RLock::release`](crate::RLock::release)).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u8).unwrap();
    /// *v.lock() = 1;
    /// let mut guard = v.lock();
    /// *guard = 2;
    /// guard.forget();
    /// assert_eq!(v.get_lock().count(), 1);
    /// assert_eq!(v.get(), 2); // the same thread may read again: it holds the RLock
    /// v.get_lock().release().unwrap();
    /// assert!(!v.get_lock().is_locked());
    /// ```
    pub fn forget(self) {
        self.borrow.forget();
    }
}

impl<T, L: SharedLock> Deref for ValueGuard<'_, T, L> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held and the borrow word names this thread, so no one else
        // accesses the value (every access to a `Value` takes the lock, and this thread's own
        // re-entries refuse while the word names it); the pointer is aligned and valid while
        // the guard lives.
        unsafe { &*self.ptr }
    }
}

impl<T, L: SharedLock> DerefMut for ValueGuard<'_, T, L> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.ptr }
    }
}

impl<T: fmt::Debug, L: SharedLock> fmt::Debug for ValueGuard<'_, T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

/// An array of `T` in shared memory with a lock: Python's `multiprocessing.Array`.
///
/// As [`Value`], for a fixed number of elements: an [`RLock`] by default, or the caller's
/// lock with [`new_with_lock`](Array::new_with_lock).
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::Array;
///
/// fn square_all(a: Array<f64>) {
///     a.with_lock(|xs| xs.iter_mut().for_each(|x| *x *= *x));
/// }
///
/// fn main() {
///     proc_core::init();
///     let a = Array::from_slice(&[1.0, 2.0, 3.0]).unwrap();
///     Process::spawn(square_all, a.clone()).unwrap().join().unwrap();
///     assert_eq!(a.to_vec(), [1.0, 4.0, 9.0]);
/// }
/// ```
pub struct Array<T, L: SharedLock = RLock> {
    place: Place<L>,
    len: usize,
    elements: PhantomData<T>,
}

fn array_bytes<T>(len: usize) -> Result<usize> {
    len.checked_mul(size_of::<T>())
        .ok_or(Error::InvalidState("shared array too large"))
}

impl<T: Pod> Array<T> {
    /// `len` zeroed elements in shared memory, with an [`RLock`] of their own.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give;
    /// [`Error::InvalidState`] when the size overflows; [`Error::Unsupported`] when `T` is
    /// aligned to more than 4096 bytes (a page).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::<i32>::new(3).unwrap();
    /// assert_eq!(a.to_vec(), [0, 0, 0]);
    /// ```
    pub fn new(len: usize) -> Result<Array<T>> {
        Ok(Array {
            place: Place::new(array_bytes::<T>(len)?, align_of::<T>())?,
            len,
            elements: PhantomData,
        })
    }

    /// The elements of `values`, copied into shared memory, with an [`RLock`] of their own.
    ///
    /// # Errors
    ///
    /// As [`new`](Array::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(b"hi").unwrap();
    /// assert_eq!(a.to_vec(), b"hi");
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>> {
        let array = Array::new(values.len())?;
        array.lock().copy_from_slice(values);
        Ok(array)
    }
}

impl<T: Pod, L: SharedLock> Array<T, L> {
    /// `len` zeroed elements in shared memory that `lock` guards: Python's
    /// `Array(..., lock=lock)`.
    ///
    /// # Errors
    ///
    /// As [`new`](Array::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = proc_sync::Lock::new().unwrap();
    /// let a = proc_sync::Array::<u8, _>::new_with_lock(2, lock.clone()).unwrap();
    /// let _held = lock.acquire();
    /// assert!(a.get_lock().is_locked());
    /// ```
    #[doc(alias = "lock")]
    pub fn new_with_lock(len: usize, lock: L) -> Result<Array<T, L>> {
        Ok(Array {
            place: Place::with_lock(array_bytes::<T>(len)?, align_of::<T>(), lock)?,
            len,
            elements: PhantomData,
        })
    }

    fn ptr(&self) -> *mut T {
        self.place.elements(align_of::<T>()).cast()
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Array::<u8>::new(5).unwrap().len(), 5);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_sync::Array::<u8>::new(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `index`, read under the lock; `None` past the end.
    ///
    /// # Panics
    ///
    /// When this thread holds an [`ArrayGuard`] of this array: read through the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(&[5u32, 6]).unwrap();
    /// assert_eq!(a.get(1), Some(6));
    /// assert_eq!(a.get(2), None);
    /// ```
    pub fn get(&self, index: usize) -> Option<T> {
        self.lock().get(index).copied()
    }

    /// Replaces element `index`, under the lock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `index` is past the end.
    ///
    /// # Panics
    ///
    /// As [`get`](Array::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::<u32>::new(2).unwrap();
    /// a.set(0, 8).unwrap();
    /// assert!(a.set(2, 8).is_err());
    /// assert_eq!(a.to_vec(), [8, 0]);
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        *self.lock().get_mut(index).ok_or_else(index_error)? = value;
        Ok(())
    }

    /// A copy of every element, read under the lock.
    ///
    /// # Panics
    ///
    /// As [`get`](Array::get).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::Array::from_slice(&[1u8, 2]).unwrap().to_vec(), [1, 2]);
    /// ```
    #[doc(alias = "__getitem__")]
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().to_vec()
    }

    /// Takes the lock and gives the elements to read and change until the guard drops.
    ///
    /// # Panics
    ///
    /// When this thread holds another [`ArrayGuard`] of this array.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::<u8>::new(3).unwrap();
    /// a.lock().fill(1);
    /// assert_eq!(a.to_vec(), [1, 1, 1]);
    /// ```
    pub fn lock(&self) -> ArrayGuard<'_, T, L> {
        ArrayGuard {
            borrow: self
                .place
                .enter(align_of::<T>(), None)
                .expect("a wait without a deadline ends with the lock"),
            ptr: self.ptr(),
            len: self.len,
            elements: PhantomData,
        }
    }

    /// Runs `f` on the elements under the lock.
    ///
    /// # Panics
    ///
    /// As [`lock`](Array::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(&[3u8, 1, 2]).unwrap();
    /// a.with_lock(|xs| xs.sort());
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        f(&mut self.lock())
    }

    /// The array's lock (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::<u8>::new(2).unwrap();
    /// let _held = a.get_lock().acquire();
    /// a.set(0, a.get(1).unwrap() + 1).unwrap(); // the holder may re-enter the RLock
    /// assert_eq!(a.to_vec(), [1, 0]);
    /// ```
    pub fn get_lock(&self) -> &L {
        &self.place.lock
    }

    /// The elements themselves, without the lock: Python's `get_obj()`.
    ///
    /// As [`Value::get_obj`]: reading or writing through the pointer is up to the caller,
    /// who must hold the lock and no [`ArrayGuard`] of this array.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(&[1u16, 2, 3]).unwrap();
    /// let held = a.get_lock().acquire();
    /// let raw = a.get_obj();
    /// // SAFETY: this thread holds the lock and no guard of the array, so nothing else reads
    /// // or writes the elements meanwhile; the slice is aligned, `a` is alive.
    /// let sum: u16 = unsafe { (*raw).iter().sum() };
    /// drop(held);
    /// assert_eq!(sum, 6);
    /// ```
    pub fn get_obj(&self) -> *mut [T] {
        std::ptr::slice_from_raw_parts_mut(self.ptr(), self.len)
    }
}

impl<T, L: SharedLock> Clone for Array<T, L> {
    fn clone(&self) -> Self {
        Array {
            place: self.place.clone(),
            len: self.len,
            elements: PhantomData,
        }
    }
}

impl<T, L: SharedLock> fmt::Debug for Array<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len)
            .field("lock", &self.place.lock)
            .finish_non_exhaustive()
    }
}

/// As a [`Value`], with the length.
impl<T, L: SharedLock> Serialize for Array<T, L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (Header::of::<T>(Kind::Array), &self.place, self.len as u64).serialize(serializer)
    }
}

impl<'de, T: Pod, L: SharedLock> Deserialize<'de> for Array<T, L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (header, place, len) = <(Header, Place<L>, u64)>::deserialize(deserializer)?;
        header.expect(Header::of::<T>(Kind::Array))?;
        let len = usize::try_from(len).map_err(proc_core::codec::de_error)?;
        check_arrival(
            &place,
            len,
            size_of::<T>(),
            align_of::<T>(),
            "shared array is smaller than its length",
        )?;
        Ok(Array {
            place,
            len,
            elements: PhantomData,
        })
    }
}

/// The elements of an [`Array`], with its lock held; dropping it releases the lock.
///
/// # Examples
///
/// ```
/// let a = proc_sync::Array::from_slice(&[1u8, 2, 3]).unwrap();
/// let guard = a.lock();
/// assert_eq!(guard.iter().sum::<u8>(), 6);
/// assert!(!guard.owner_died());
/// ```
#[must_use = "the lock is released as soon as the guard drops: bind it with `let mut guard = ...`"]
pub struct ArrayGuard<'a, T, L: SharedLock = RLock> {
    borrow: Borrow<'a, L>,
    ptr: *mut T,
    len: usize,
    elements: PhantomData<&'a mut [T]>,
}

// SAFETY: a shared guard only gives `&[T]` (like `MutexGuard`), fine to share when `T` is;
// the lock guard inside is `Sync`.
unsafe impl<T: Sync, L: SharedLock> Sync for ArrayGuard<'_, T, L> {}

impl<T, L: SharedLock> ArrayGuard<'_, T, L> {
    /// Whether the lock was taken over from a process that died holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!proc_sync::Array::<u8>::new(1).unwrap().lock().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        L::guard_owner_died(&self.borrow.guard)
    }

    /// Keeps the lock held and lets the guard go, as [`ValueGuard::forget`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::Array::<u8>::new(1).unwrap();
    /// a.lock().forget();
    /// assert!(a.get_lock().is_locked());
    /// a.get_lock().release().unwrap();
    /// assert!(!a.get_lock().is_locked());
    /// ```
    pub fn forget(self) {
        self.borrow.forget();
    }
}

impl<T, L: SharedLock> Deref for ArrayGuard<'_, T, L> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: as for `ValueGuard`: the lock is held and the borrow word names this
        // thread, so no one else accesses the elements; the pointer is aligned and valid for
        // `len` elements while the guard lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T, L: SharedLock> DerefMut for ArrayGuard<'_, T, L> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: fmt::Debug, L: SharedLock> fmt::Debug for ArrayGuard<'_, T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

/// A `T` in shared memory without a lock: Python's `Value(..., lock=False)`.
///
/// Reads and writes are atomic when `T` is 1, 2, 4 or 8 bytes (and aligned for it, which a
/// `RawValue` always is); a larger `T` is copied byte by byte, so a read that races a write
/// may see a mix of both — still a valid `T`, since `T` is plain old data, but not one that
/// anybody wrote. It never hands out references, which keeps it free of data races.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::RawValue;
///
/// fn publish(v: RawValue<u64>) {
///     v.set(42);
/// }
///
/// fn main() {
///     proc_core::init();
///     let v = RawValue::new(0u64).unwrap();
///     Process::spawn(publish, v.clone()).unwrap().join().unwrap();
///     assert_eq!(v.get(), 42);
/// }
/// ```
pub struct RawValue<T> {
    shm: SharedMemory,
    value: PhantomData<T>,
}

impl<T: Pod> RawValue<T> {
    /// A new value in shared memory, without a lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::RawValue::new(3i16).unwrap().get(), 3);
    /// ```
    pub fn new(value: T) -> Result<RawValue<T>> {
        let v = RawValue {
            shm: SharedMemory::create(std::mem::size_of::<T>().max(1))?,
            value: PhantomData,
        };
        v.set(value);
        Ok(v)
    }

    /// The value now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::RawValue::new([1u8, 2]).unwrap().get(), [1, 2]);
    /// ```
    pub fn get(&self) -> T {
        // SAFETY: the segment holds a `T` at its (page-aligned) start, and every access to
        // it is atomic.
        unsafe { atomic_read(self.shm.as_ptr()) }
    }

    /// Replaces the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = proc_sync::RawValue::new(0u32).unwrap();
    /// v.set(9);
    /// assert_eq!(v.get(), 9);
    /// ```
    pub fn set(&self, value: T) {
        // SAFETY: as in `get`.
        unsafe { atomic_write(self.shm.as_ptr(), value) }
    }
}

impl<T> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            shm: self.shm.clone(),
            value: PhantomData,
        }
    }
}

impl<T> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue").field("shm", &self.shm).finish()
    }
}

/// As a [`Value`]: the size and alignment of `T` travel along.
impl<T> Serialize for RawValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (Header::of::<T>(Kind::RawValue), &self.shm).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (header, shm) = <(Header, SharedMemory)>::deserialize(deserializer)?;
        header.expect(Header::of::<T>(Kind::RawValue))?;
        if shm.size() < std::mem::size_of::<T>() {
            return Err(proc_core::codec::de_error(
                "shared value is smaller than its type",
            ));
        }
        Ok(RawValue {
            shm,
            value: PhantomData,
        })
    }
}

/// An array of `T` in shared memory without a lock: Python's `Array(..., lock=False)`.
///
/// Each element is read and written as a [`RawValue`] is (atomic for 1, 2, 4 and 8-byte
/// elements); nothing makes several elements change together.
///
/// # Examples
///
/// ```
/// let a = proc_sync::RawArray::from_slice(&[1u32, 2, 3]).unwrap();
/// a.set(1, 20).unwrap();
/// assert_eq!(a.to_vec(), [1, 20, 3]);
/// ```
pub struct RawArray<T> {
    shm: SharedMemory,
    len: usize,
    elements: PhantomData<T>,
}

impl<T: Pod> RawArray<T> {
    /// `len` zeroed elements in shared memory, without a lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no shared memory to give;
    /// [`Error::InvalidState`] when the size overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::RawArray::<u8>::new(2).unwrap().to_vec(), [0, 0]);
    /// ```
    pub fn new(len: usize) -> Result<RawArray<T>> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(Error::InvalidState("shared array too large"))?;
        Ok(RawArray {
            shm: SharedMemory::create(bytes.max(1))?,
            len,
            elements: PhantomData,
        })
    }

    /// The elements of `values`, copied into shared memory, without a lock.
    ///
    /// # Errors
    ///
    /// As [`new`](RawArray::new).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::RawArray::from_slice(&[7i64]).unwrap().get(0), Some(7));
    /// ```
    pub fn from_slice(values: &[T]) -> Result<RawArray<T>> {
        let array = RawArray::new(values.len())?;
        for (i, value) in values.iter().enumerate() {
            array.set(i, *value)?;
        }
        Ok(array)
    }

    fn element(&self, index: usize) -> Option<*mut u8> {
        (index < self.len).then(|| {
            // SAFETY: `index < len`, and the segment holds `len` elements.
            unsafe { self.shm.as_ptr().add(index * std::mem::size_of::<T>()) }
        })
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::RawArray::<u16>::new(4).unwrap().len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_sync::RawArray::<u16>::new(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `index`; `None` past the end.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::RawArray::from_slice(&[1u8]).unwrap();
    /// assert_eq!((a.get(0), a.get(1)), (Some(1), None));
    /// ```
    pub fn get(&self, index: usize) -> Option<T> {
        // SAFETY: the element is within the segment, and every access to it is atomic.
        self.element(index).map(|p| unsafe { atomic_read(p) })
    }

    /// Replaces element `index`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `index` is past the end.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_sync::RawArray::<u8>::new(1).unwrap();
    /// assert!(a.set(0, 1).is_ok());
    /// assert!(a.set(1, 1).is_err());
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        let p = self.element(index).ok_or_else(index_error)?;
        // SAFETY: as in `get`.
        unsafe { atomic_write(p, value) };
        Ok(())
    }

    /// A copy of every element (each read on its own).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::RawArray::from_slice(&[4u8, 5]).unwrap().to_vec(), [4, 5]);
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len).filter_map(|i| self.get(i)).collect()
    }
}

impl<T> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            shm: self.shm.clone(),
            len: self.len,
            elements: PhantomData,
        }
    }
}

impl<T> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("len", &self.len)
            .field("shm", &self.shm)
            .finish()
    }
}

/// As a [`Value`]: the size and alignment of the elements travel along.
impl<T> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (Header::of::<T>(Kind::RawArray), &self.shm, self.len as u64).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (header, shm, len) = <(Header, SharedMemory, u64)>::deserialize(deserializer)?;
        header.expect(Header::of::<T>(Kind::RawArray))?;
        let len = usize::try_from(len).map_err(proc_core::codec::de_error)?;
        let fits = len
            .checked_mul(std::mem::size_of::<T>())
            .is_some_and(|bytes| bytes <= shm.size());
        if !fits {
            return Err(proc_core::codec::de_error(
                "shared array is smaller than its length",
            ));
        }
        Ok(RawArray {
            shm,
            len,
            elements: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use proc_core::Link;

    use super::*;

    /// Aligned beyond what shared memory promises.
    #[repr(C, align(8192))]
    #[derive(Clone, Copy)]
    struct Huge([u8; 8192]);

    /// As large, aligned as much as shared memory promises.
    #[repr(C, align(4096))]
    #[derive(Clone, Copy)]
    struct Paged([u8; 8192]);

    // SAFETY: bytes only, no padding (the size is a multiple of the alignment), and any bytes
    // are valid.
    unsafe impl bytemuck::Zeroable for Huge {}
    // SAFETY: as above.
    unsafe impl Pod for Huge {}
    // SAFETY: as above.
    unsafe impl bytemuck::Zeroable for Paged {}
    // SAFETY: as above.
    unsafe impl Pod for Paged {}

    /// A peer that lies about what it sends cannot get an over-aligned type past the check.
    #[test]
    fn a_forged_over_aligned_value_or_array_is_refused() {
        let lock = RLock::with_tail(3 * 8192, 4096).unwrap();
        let place = (&lock, None::<&SharedMemory>);
        let (a, b) = Link::pair().unwrap();
        // The same segment passes for a type of the same size that shared memory can align.
        a.send(&(Header::of::<Paged>(Kind::Value), place)).unwrap();
        let paged = b.recv::<Value<Paged>>().unwrap();
        assert!(paged.ptr().addr().is_multiple_of(4096));
        a.send(&(Header::of::<Huge>(Kind::Value), place)).unwrap();
        let err = b.recv::<Value<Huge>>().unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
        a.send(&(Header::of::<Huge>(Kind::Array), place, 1u64))
            .unwrap();
        let err = b.recv::<Array<Huge>>().unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
    }

    /// A value whose segment is too small for its type, as a peer could forge it.
    #[test]
    fn a_forged_value_smaller_than_its_type_is_refused() {
        let lock = RLock::new().unwrap();
        let tiny = SharedMemory::create(8).unwrap();
        let (a, b) = Link::pair().unwrap();
        a.send(&(Header::of::<u64>(Kind::Value), (&lock, Some(&tiny))))
            .unwrap();
        let err = b.recv::<Value<u64>>().unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
    }
}
