//! Windows: shared memory from pagefile-backed file mappings, sleeping on kernel semaphores
//! (Windows has no futex that crosses processes: `WaitOnAddress` is for one process only).

use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_ALL_ACCESS, FILE_MAP_READ, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile, OpenFileMappingW, PAGE_READWRITE, UnmapViewOfFile,
    VirtualQuery,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, ReleaseSemaphore, WaitForSingleObject,
};

use super::owned_or_last_error;
use crate::Handle;

/// A new mapping of `len` bytes backed by the paging file and named by nothing, zeroed: the
/// kernel frees it with its last handle and view.
pub(crate) fn anonymous_segment(len: usize) -> io::Result<OwnedHandle> {
    new_mapping(None, len)
}

/// A new mapping of `len` bytes backed by the paging file under `name`, zeroed; fails with
/// `AlreadyExists` if the name is taken. The kernel frees it, and its name, with its last
/// handle and view.
pub(crate) fn create_named_segment(name: &str, len: usize) -> io::Result<OwnedHandle> {
    new_mapping(Some(name), len)
}

/// The one constructor of a mapping, under a name or none.
fn new_mapping(name: Option<&str>, len: usize) -> io::Result<OwnedHandle> {
    let name: Option<Vec<u16>> = name.map(|name| name.encode_utf16().chain(Some(0)).collect());
    let size = len as u64;
    // SAFETY: a pagefile-backed mapping (INVALID_HANDLE_VALUE) with default security, and no
    // name or a NUL-terminated wide one; the handle returned is ours alone.
    let raw = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            (size >> 32) as u32,
            size as u32,
            name.as_ref().map_or(std::ptr::null(), |name| name.as_ptr()),
        )
    };
    // A name that exists already gives its mapping, with this error.
    // SAFETY: GetLastError only reads this thread's last error.
    let existed = name.is_some() && unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
    let handle = owned_or_last_error(raw)?;
    if existed {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    Ok(handle)
}

/// The existing mapping under `name`, and its length: all of it.
pub(crate) fn open_named_segment(name: &str) -> io::Result<(OwnedHandle, usize)> {
    let name: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated wide name; the handle returned is ours alone.
    let handle =
        owned_or_last_error(unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, name.as_ptr()) })?;
    let len = mapping_len(&handle)?;
    Ok((handle, len))
}

/// The length of the whole mapping behind `handle`, a whole number of pages.
///
/// Windows tells it only of a view: this maps all of it for a moment and asks the view's
/// size, as CPython's `SharedMemory` does on attach.
fn mapping_len(handle: &OwnedHandle) -> io::Result<usize> {
    // SAFETY: a read-only view of all of a mapping handle we own; Windows picks the address.
    let view = unsafe { MapViewOfFile(handle.as_raw_handle(), FILE_MAP_READ, 0, 0, 0) };
    if view.Value.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is a valid value to be overwritten.
    let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the address is the start of our own view, `info` is writable.
    let got = unsafe {
        VirtualQuery(
            view.Value,
            &mut info,
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: the view was mapped above, and nothing of it outlives this call.
    unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: view.Value }) };
    if got == 0 {
        return Err(error);
    }
    Ok(info.RegionSize)
}

/// Windows names no mapping after its last handle closes: there is nothing to remove.
pub(crate) fn unlink_named_segment(_name: &str) -> io::Result<()> {
    Ok(())
}

/// Maps the first `len` bytes of the mapping behind `handle`, read-write. Windows refuses a
/// view longer than the mapping, so a peer cannot announce more than there is.
pub(crate) fn map_segment(handle: &OwnedHandle, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a read-write view of a mapping handle we own; Windows picks the address and
    // fails when the mapping is shorter than `len`.
    let view = unsafe { MapViewOfFile(handle.as_raw_handle(), FILE_MAP_ALL_ACCESS, 0, 0, len) };
    NonNull::new(view.Value.cast::<u8>()).ok_or_else(io::Error::last_os_error)
}

/// A file mapping's size is fixed when it is created, and a view beyond it is refused: no
/// holder can shrink a segment under the others, so every one that arrives may be mapped.
pub(crate) fn refuse_arrived_segment(_handle: &OwnedHandle) -> io::Result<Option<&'static str>> {
    Ok(None)
}

/// Removes a view that [`map_segment`] made.
///
/// # Safety
///
/// `ptr` must be what one call of [`map_segment`] returned, and nothing may use the memory
/// through it afterwards.
pub(crate) unsafe fn unmap_segment(ptr: NonNull<u8>, _len: usize) {
    // SAFETY: the caller vouches that this is the start of one view of ours, no longer used.
    unsafe {
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
            Value: ptr.as_ptr().cast(),
        })
    };
}

/// One kernel semaphore per word, as its sleeping place. A wake releases one permit per
/// sleeper to wake; a permit released before its sleeper sleeps stays in the semaphore, so no
/// wakeup is lost, and a surplus one only makes a later sleeper look at its word again.
#[derive(Clone)]
pub(crate) struct Parkers {
    semaphores: Arc<Vec<Semaphore>>,
}

struct Semaphore {
    handle: Handle,
    /// The raw value of `handle`, owned by it.
    raw: usize,
}

impl Semaphore {
    fn new(handle: Handle) -> Semaphore {
        let owned = OwnedHandle::from(handle);
        let raw = owned.as_raw_handle() as usize;
        Semaphore {
            handle: Handle::from(owned),
            raw,
        }
    }
}

impl fmt::Debug for Parkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.semaphores.iter().map(|s| &s.handle))
            .finish()
    }
}

impl Parkers {
    pub(crate) fn new(words: usize) -> io::Result<Parkers> {
        let semaphores = (0..words)
            .map(|_| {
                // SAFETY: an unnamed semaphore with default security; the handle is ours.
                let raw =
                    unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, std::ptr::null()) };
                owned_or_last_error(raw).map(|h| Semaphore::new(Handle::from(h)))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Parkers {
            semaphores: Arc::new(semaphores),
        })
    }

    /// Sleeps until woken or `timeout`; the caller registered as a sleeper and checked that
    /// `word` holds `expected` before calling, so a wake in between left a permit behind.
    pub(crate) fn wait(
        &self,
        index: usize,
        _word: &AtomicU32,
        _expected: u32,
        timeout: Option<Duration>,
    ) {
        let Some(semaphore) = self.semaphores.get(index) else {
            return;
        };
        let millis = timeout.map_or(u32::MAX, |t| {
            u32::try_from(t.as_millis()).unwrap_or(u32::MAX - 1).max(1)
        });
        // SAFETY: a wait on a semaphore handle that `self` owns.
        unsafe { WaitForSingleObject(semaphore.raw as HANDLE, millis) };
    }

    /// Releases `n` permits (the caller clamps `n` to the sleepers it counted).
    pub(crate) fn wake(&self, index: usize, _word: &AtomicU32, n: u32) {
        let Some(semaphore) = self.semaphores.get(index) else {
            return;
        };
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        // SAFETY: a release on a semaphore handle that `self` owns; an overflow only fails.
        unsafe { ReleaseSemaphore(semaphore.raw as HANDLE, n, std::ptr::null_mut()) };
    }
}

impl Serialize for Parkers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let handles: Vec<&Handle> = self.semaphores.iter().map(|s| &s.handle).collect();
        handles.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Parkers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let handles = Vec::<Handle>::deserialize(deserializer)?;
        Ok(Parkers {
            semaphores: Arc::new(handles.into_iter().map(Semaphore::new).collect()),
        })
    }
}
