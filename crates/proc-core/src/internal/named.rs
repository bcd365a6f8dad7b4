//! Shared memory under a name that other processes open by it (`proc-sync`'s
//! `SharedMemory`, Python's `SharedMemory(name, create=True)`): the one constructor of a
//! segment that both crates use, over the platform's (`sys`'s `create_named_segment`).

use std::io;

use crate::error::Result;
use crate::handle::Handle;
use crate::shared::Segment;
use crate::sys;

/// A new segment of `len` bytes under `name`, zeroed and mapped.
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) of kind `AlreadyExists` when the name is taken, and when
/// the system refuses the object; the name is not left behind by a segment that could not
/// be made.
///
/// # Platform-specific behavior
///
/// A `shm_open` object on Unix (a leading `/` is added where it is missing); a named file
/// mapping backed by the paging file on Windows, which the kernel frees, name and all, with
/// its last handle.
///
/// # Examples
///
/// ```
/// use proc_core::internal::{create_named_segment, open_named_segment, unlink_named_segment};
///
/// let name = format!("procs-doc-create-{}", std::process::id());
/// let ours = create_named_segment(&name, 64).unwrap();
/// assert_eq!(ours.len(), 64);
/// assert!(create_named_segment(&name, 64).is_err());
/// let theirs = open_named_segment(&name).unwrap();
/// assert!(theirs.len() >= 64);
/// unlink_named_segment(&name).unwrap();
/// ```
pub fn create_named_segment(name: &str, len: usize) -> Result<Segment> {
    let handle = sys::create_named_segment(name, len)?;
    let segment = Segment::from_handle(Handle::from_sys(handle), len);
    if segment.is_err() {
        // The name is ours: a segment that could not be mapped must not leave it behind.
        let _ = sys::unlink_named_segment(name);
    }
    segment
}

/// The existing segment under `name`, all of it, mapped.
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) of kind `NotFound` when no segment has the name, and an
/// error for an empty one (whose creator has not sized it yet).
///
/// # Examples
///
/// ```
/// use proc_core::internal::{create_named_segment, open_named_segment, unlink_named_segment};
///
/// let name = format!("procs-doc-open-{}", std::process::id());
/// assert!(open_named_segment(&name).is_err());
/// let ours = create_named_segment(&name, 8).unwrap();
/// // SAFETY: the segment is at least 8 bytes long and nothing else uses it.
/// unsafe { ours.as_ptr().write(7) };
/// let theirs = open_named_segment(&name).unwrap();
/// // SAFETY: as above; the write is done.
/// assert_eq!(unsafe { theirs.as_ptr().read() }, 7);
/// unlink_named_segment(&name).unwrap();
/// ```
pub fn open_named_segment(name: &str) -> Result<Segment> {
    let (handle, len) = sys::open_named_segment(name)?;
    // An empty object (one that its creator has not sized yet) is refused there.
    Segment::from_handle(Handle::from_sys(handle), len)
}

/// Removes the name of a segment; the memory stays for those that have it mapped.
///
/// # Errors
///
/// The system's error, `NotFound` when no segment has the name.
///
/// # Platform-specific behavior
///
/// Windows names no mapping after its last handle closes, so there is nothing to remove:
/// this always succeeds there.
///
/// # Examples
///
/// ```
/// use proc_core::internal::{create_named_segment, open_named_segment, unlink_named_segment};
///
/// let name = format!("procs-doc-unlink-{}", std::process::id());
/// let ours = create_named_segment(&name, 8).unwrap();
/// unlink_named_segment(&name).unwrap();
/// if cfg!(unix) {
///     assert!(open_named_segment(&name).is_err());
/// }
/// assert_eq!(ours.len(), 8);
/// ```
pub fn unlink_named_segment(name: &str) -> io::Result<()> {
    sys::unlink_named_segment(name)
}
