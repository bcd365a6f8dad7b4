//! `SharedMemory`: a block of memory that several processes map (Python's
//! `multiprocessing.shared_memory.SharedMemory`).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proc_core::internal;
use proc_core::shared::Segment;
use proc_core::{Error, Handle, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys;
use crate::wire::{Header, Kind};

/// The longest name [`SharedMemory::create_named`] takes: macOS allows 31 bytes, slash
/// included.
pub const MAX_NAME_LEN: usize = 30;

/// A block of memory shared between processes.
///
/// An anonymous segment ([`create`](SharedMemory::create)) has no name: it reaches other
/// processes as a [`Process`](proc_core::Process) argument (or inside any value `procs`
/// sends), and the kernel frees it when the last process that maps it ends, however it ends.
/// Nothing is ever left in `/dev/shm`.
///
/// A named segment ([`create_named`](SharedMemory::create_named)) can also be reached with
/// [`attach`](SharedMemory::attach) by a process that only knows the name.
///
/// Clones share the same mapping; the memory is unmapped when the last clone in a process
/// drops. The contents start zeroed.
///
/// # Platform-specific behavior
///
/// Anonymous segments are `memfd_create` memory on Linux, `shm_open` objects unlinked at once
/// on the other Unixes and unnamed file mappings on Windows. On Linux their size is sealed
/// (`F_SEAL_SHRINK | F_SEAL_GROW`): no process they reach can truncate them under the others,
/// whose next touch of the lost pages would be a `SIGBUS`. A Windows mapping cannot
/// shrink. The other Unixes have no seals.
///
/// Named segments, and when their names go away:
///
/// - **Linux**: [`create_named`](SharedMemory::create_named) starts a small watcher process
///   (a shell, in its own process group) that removes the name from `/dev/shm` once every
///   holder of the segment has dropped it or ended — the creator and every process it was
///   sent to, killed or not. Processes that only [`attach`](SharedMemory::attach)ed by name
///   do not keep the name alive (their mapping stays valid after the name is gone), as with
///   Python's resource tracker.
/// - **macOS, FreeBSD**: the name is removed when the creator's last clone drops, or by
///   [`unlink`](SharedMemory::unlink). A creator killed by a signal leaves the name behind
///   (a narrower guarantee than Linux's): unlink it by hand, as with Python.
/// - **Windows**: the kernel removes a named mapping with its last handle; `unlink` does
///   nothing.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_sync::SharedMemory;
///
/// fn fill(shm: SharedMemory) {
///     // SAFETY: the parent does not touch the memory until this process ends.
///     unsafe { shm.as_mut_slice() }.fill(7);
/// }
///
/// fn main() {
///     proc_core::init();
///     let shm = SharedMemory::create(4096).unwrap();
///     Process::spawn(fill, shm.clone()).unwrap().join().unwrap();
///     // SAFETY: the child has ended, nobody else writes.
///     assert!(unsafe { shm.as_slice() }.iter().all(|b| *b == 7));
/// }
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    inner: Arc<Inner>,
}

struct Inner {
    segment: Segment,
    name: Option<String>,
    /// The size asked for; the mapping may be larger (a whole number of pages).
    size: usize,
    /// Keeps a named segment's name alive while this process holds it (Linux).
    tracker: Option<Handle>,
    /// Whether this process created the segment under its name.
    origin: Origin,
    unlinked: AtomicBool,
}

/// How this process came to hold a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// It created it (and, where names outlive their holders, removes the name).
    Created,
    /// It attached to one that another made or sent, or made an anonymous one.
    Attached,
}

impl SharedMemory {
    /// A new anonymous segment of `size` bytes, zeroed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `InvalidInput` for a size of 0, or when the system refuses the
    /// memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = proc_sync::SharedMemory::create(100).unwrap();
    /// assert_eq!(shm.size(), 100);
    /// assert_eq!(shm.name(), None);
    /// ```
    pub fn create(size: usize) -> Result<SharedMemory> {
        check_size(size)?;
        Ok(SharedMemory::from_parts(
            Segment::anonymous(size)?,
            None,
            size,
            None,
            Origin::Attached,
        ))
    }

    /// A new segment of `size` bytes, zeroed, under `name`.
    ///
    /// See the type's documentation for when the name is removed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `AlreadyExists` when the name is taken, with `InvalidInput` for a
    /// size of 0 or a name that is empty, longer than [`MAX_NAME_LEN`] or holds a `/` or a
    /// NUL; or when the system refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::SharedMemory;
    ///
    /// let name = format!("procs-doc-{}", std::process::id());
    /// let shm = SharedMemory::create_named(&name, 64).unwrap();
    /// assert_eq!(shm.name(), Some(name.as_str()));
    /// let err = SharedMemory::create_named(&name, 64).unwrap_err();
    /// assert!(matches!(err, proc_core::Error::Io(e) if e.kind() == std::io::ErrorKind::AlreadyExists));
    /// shm.unlink().unwrap();
    /// ```
    #[doc(alias = "SharedMemory")]
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory> {
        check_size(size)?;
        check_name(name)?;
        let segment = internal::create_named_segment(name, size)?;
        let tracker = match sys::track(name) {
            Ok(tracker) => tracker,
            Err(e) => {
                let _ = internal::unlink_named_segment(name);
                return Err(e.into());
            }
        };
        Ok(SharedMemory::from_parts(
            segment,
            Some(name.to_string()),
            size,
            tracker,
            Origin::Created,
        ))
    }

    /// The existing segment under `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` when no segment has that name, with `InvalidInput` for
    /// a name that [`create_named`](SharedMemory::create_named) would refuse.
    ///
    /// # Platform-specific behavior
    ///
    /// [`size`](SharedMemory::size) is the size of the whole mapping, which macOS and
    /// Windows round up to a whole number of pages.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_sync::SharedMemory;
    ///
    /// let name = format!("procs-attach-{}", std::process::id());
    /// let shm = SharedMemory::create_named(&name, 16).unwrap();
    /// // SAFETY: this thread is the only user of the memory.
    /// unsafe { shm.as_mut_slice()[0] = 42 };
    /// let other = SharedMemory::attach(&name).unwrap();
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { other.as_slice()[0] }, 42);
    /// shm.unlink().unwrap();
    /// // Windows keeps the name while a handle is open, as Python's SharedMemory does there.
    /// assert!(SharedMemory::attach(&name).is_err() || cfg!(windows));
    /// ```
    #[doc(alias = "SharedMemory")]
    pub fn attach(name: &str) -> Result<SharedMemory> {
        check_name(name)?;
        let segment = internal::open_named_segment(name)?;
        let size = segment.len();
        Ok(SharedMemory::from_parts(
            segment,
            Some(name.to_string()),
            size,
            None,
            Origin::Attached,
        ))
    }

    fn from_parts(
        segment: Segment,
        name: Option<String>,
        size: usize,
        tracker: Option<Handle>,
        origin: Origin,
    ) -> SharedMemory {
        SharedMemory {
            inner: Arc::new(Inner {
                segment,
                name,
                size,
                tracker,
                origin,
                unlinked: AtomicBool::new(false),
            }),
        }
    }

    /// Removes the segment's name, so that no new process can attach to it. Processes that
    /// mapped it keep their mapping; the memory goes with the last of them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` when the name is gone already;
    /// [`Error::InvalidState`] for an anonymous segment.
    ///
    /// # Platform-specific behavior
    ///
    /// Does nothing on Windows, where the kernel removes the name with the last handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("procs-unlink-{}", std::process::id());
    /// let shm = proc_sync::SharedMemory::create_named(&name, 8).unwrap();
    /// shm.unlink().unwrap();
    /// assert!(proc_sync::SharedMemory::create(8).unwrap().unlink().is_err());
    /// ```
    pub fn unlink(&self) -> Result<()> {
        let name = self.inner.name.as_deref().ok_or(Error::InvalidState(
            "an anonymous shared memory segment has no name to unlink",
        ))?;
        internal::unlink_named_segment(name)?;
        self.inner.unlinked.store(true, Ordering::Relaxed);
        if let Some(tracker) = &self.inner.tracker {
            sys::untrack(tracker);
        }
        Ok(())
    }

    /// The segment's name; `None` for an anonymous segment.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::SharedMemory::create(1).unwrap().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The size of the segment in bytes: the size it was created with, or the size of the
    /// whole mapping for an attached one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_sync::SharedMemory::create(10).unwrap().size(), 10);
    /// ```
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The first byte of the mapping. It stays valid while a clone of `self` lives.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = proc_sync::SharedMemory::create(8).unwrap();
    /// let p = shm.as_ptr();
    /// // SAFETY: the pointer is valid for 8 bytes and nothing else uses the memory.
    /// unsafe { p.write(1) };
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { shm.as_slice()[0] }, 1);
    /// ```
    #[doc(alias = "buf")]
    pub fn as_ptr(&self) -> *mut u8 {
        self.inner.segment.as_ptr()
    }

    /// The memory as bytes.
    ///
    /// # Safety
    ///
    /// Nothing may write to the memory while the slice lives: no thread of this process and
    /// no other process (through its own mapping or a `&mut` slice). Rust cannot check other
    /// processes, so this is the caller's promise; share data that changes through atomics,
    /// [`Value`](crate::Value) or [`Array`](crate::Array) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = proc_sync::SharedMemory::create(4).unwrap();
    /// // SAFETY: nothing writes to this new segment.
    /// assert_eq!(unsafe { shm.as_slice() }, [0, 0, 0, 0]);
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is valid for `size` bytes while `self` lives; the caller
        // promises that nothing writes to it meanwhile.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.inner.size) }
    }

    /// The memory as mutable bytes.
    ///
    /// # Safety
    ///
    /// Nothing else may read or write the memory while the slice lives: no other slice
    /// from this or another clone, no other thread, no other process.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = proc_sync::SharedMemory::create(4).unwrap();
    /// // SAFETY: this is the only user of the segment.
    /// unsafe { shm.as_mut_slice() }.copy_from_slice(b"abcd");
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { shm.as_slice() }, b"abcd");
    /// ```
    #[allow(clippy::mut_from_ref)] // The memory is shared by design; the caller vouches.
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: the mapping is valid for `size` bytes while `self` lives; the caller
        // promises exclusive access meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.inner.size) }
    }

    /// Whether `self` and `other` are clones of one mapping.
    pub(crate) fn same(&self, other: &SharedMemory) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

fn check_size(size: usize) -> Result<()> {
    if size == 0 {
        return Err(invalid(
            "the size of a shared memory segment must be positive",
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(['/', '\\', '\0']) {
        return Err(invalid(
            "a shared memory name must be 1 to 30 bytes without '/', '\\' or NUL",
        ));
    }
    Ok(())
}

fn invalid(message: &'static str) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, message))
}

impl Drop for Inner {
    fn drop(&mut self) {
        if sys::UNLINK_ON_DROP
            && self.origin == Origin::Created
            && !self.unlinked.load(Ordering::Relaxed)
            && let Some(name) = &self.name
        {
            let _ = internal::unlink_named_segment(name);
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("segment", &self.inner.segment)
            .finish()
    }
}

/// What travels: a header that says it is a bare segment, the segment's handle, its length,
/// and the tracker's handle.
#[derive(Serialize)]
struct WireRef<'a> {
    header: Header,
    handle: &'a Handle,
    len: usize,
    size: usize,
    name: Option<&'a str>,
    tracker: Option<&'a Handle>,
}

#[derive(Deserialize)]
struct Wire {
    header: Header,
    handle: Handle,
    len: usize,
    size: usize,
    name: Option<String>,
    tracker: Option<Handle>,
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        WireRef {
            header: Header::of::<u8>(Kind::SharedMemory),
            handle: self.inner.segment.handle(),
            len: self.inner.segment.len(),
            size: self.inner.size,
            name: self.inner.name.as_deref(),
            tracker: self.inner.tracker.as_ref(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        wire.header.expect(Header::of::<u8>(Kind::SharedMemory))?;
        if wire.size > wire.len {
            return Err(proc_core::codec::de_error(
                "shared memory size exceeds its mapping",
            ));
        }
        let segment = Segment::from_handle(wire.handle, wire.len)
            .map_err(|e| proc_core::codec::de_error(format!("cannot map shared memory: {e}")))?;
        Ok(SharedMemory::from_parts(
            segment,
            wire.name,
            wire.size,
            wire.tracker,
            Origin::Attached,
        ))
    }
}
