//! Windows: shared memory from pagefile-backed file mappings, sleeping on kernel semaphores
//! (Windows has no futex that crosses processes: `WaitOnAddress` is for one process only).

use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use proc_core::Handle;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, GetLastError, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_ALL_ACCESS, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS,
    MapViewOfFile, OpenFileMappingW, PAGE_READWRITE, UnmapViewOfFile, VirtualQuery,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    ReleaseSemaphore, WaitForSingleObject,
};

/// Takes ownership of a handle a Windows call returned, or its error.
fn owned(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call just returned this handle to us, and nothing else owns it.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

fn wide(name: &str) -> Vec<u16> {
    name.encode_utf16().chain(Some(0)).collect()
}

/// A view of a file mapping and the handle that can send it to another process.
pub(crate) struct Segment {
    handle: Handle,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the view is plain memory shared with other processes anyway; `Segment` never hands
// out references to it, only the pointer, whose users synchronize on their own.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`: `&Segment` only gives the pointer and the length.
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
    /// A mapping backed by the paging file and named by nothing: freed with its last handle.
    pub(crate) fn anonymous(len: usize) -> io::Result<Segment> {
        Segment::create(None, len)
    }

    /// A new mapping under `name`; fails if the name exists.
    pub(crate) fn create_named(name: &str, len: usize) -> io::Result<Segment> {
        Segment::create(Some(name), len)
    }

    fn create(name: Option<&str>, len: usize) -> io::Result<Segment> {
        let name = name.map(wide);
        let size = len as u64;
        // SAFETY: a pagefile-backed mapping (INVALID_HANDLE_VALUE) with default security and
        // an optional NUL-terminated wide name.
        let raw = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                (size >> 32) as u32,
                size as u32,
                name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            )
        };
        // SAFETY: GetLastError only reads this thread's last error.
        let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        let handle = owned(raw)?;
        if existed {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        Segment::map(handle, len)
    }

    /// The existing mapping under `name`, all of it.
    pub(crate) fn open_named(name: &str) -> io::Result<Segment> {
        let name = wide(name);
        // SAFETY: a NUL-terminated wide name; the handle returned is ours alone.
        let handle = owned(unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, name.as_ptr()) })?;
        let mut segment = Segment::map(handle, 0)?;
        // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is a valid value to be overwritten.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: the address is the start of our own view, `info` is writable.
        let got = unsafe {
            VirtualQuery(
                segment.ptr.as_ptr().cast(),
                &mut info,
                std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
            )
        };
        if got == 0 {
            return Err(io::Error::last_os_error());
        }
        segment.len = info.RegionSize;
        Ok(segment)
    }

    /// Maps a mapping whose handle came from another process.
    pub(crate) fn from_handle(handle: Handle, len: usize) -> io::Result<Segment> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared memory segment is empty",
            ));
        }
        Segment::map(OwnedHandle::from(handle), len)
    }

    fn map(handle: OwnedHandle, len: usize) -> io::Result<Segment> {
        // SAFETY: a read-write view of a mapping handle we own; Windows picks the address and
        // fails when the mapping is shorter than `len` (0 maps all of it).
        let view = unsafe { MapViewOfFile(handle.as_raw_handle(), FILE_MAP_ALL_ACCESS, 0, 0, len) };
        let ptr = NonNull::new(view.Value.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Segment {
            handle: Handle::from(handle),
            ptr,
            len,
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the view was made by `map` at this address, and the users of the pointer
        // are gone with the last reference to this segment.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                Value: self.ptr.as_ptr().cast(),
            })
        };
    }
}

/// Windows names no mapping after its last handle closes: there is nothing to remove.
pub(crate) fn unlink_named(_name: &str) -> io::Result<()> {
    Ok(())
}

/// The kernel frees a named mapping with its last handle.
pub(crate) const UNLINK_ON_DROP: bool = false;

/// Nothing to watch: the kernel frees a named mapping with its last handle.
pub(crate) fn track(_name: &str) -> io::Result<Option<Handle>> {
    Ok(None)
}

pub(crate) fn untrack(_tracker: &Handle) {}

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
                owned(raw).map(|h| Semaphore::new(Handle::from(h)))
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

/// Whether process `pid` still runs.
pub(crate) fn pid_alive(pid: u32) -> bool {
    // SAFETY: OpenProcess only returns a handle (or null) that we own.
    let raw = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    let Ok(process) = owned(raw) else {
        // No such process, or one we may not look at (which therefore exists).
        return io::Error::last_os_error().raw_os_error() == Some(5);
    };
    let mut code = 0u32;
    // SAFETY: a query on a process handle we own, into a local.
    let ok = unsafe { GetExitCodeProcess(process.as_raw_handle(), &mut code) };
    ok == 0 || code == STILL_ACTIVE as u32
}

/// This process's id (Windows has no fork, and asking is cheap).
pub(crate) fn pid() -> u32 {
    std::process::id()
}
