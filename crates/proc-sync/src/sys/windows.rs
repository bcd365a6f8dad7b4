//! Windows: named segments are named file mappings backed by the paging file, mapped by
//! `proc_core::shared::Segment`.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use proc_core::shared::Segment;
use proc_core::{Handle, Result};
use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_ALL_ACCESS, FILE_MAP_READ, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile, OpenFileMappingW, PAGE_READWRITE, UnmapViewOfFile,
    VirtualQuery,
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

/// A new mapping of `len` bytes under `name`; fails if the name exists.
pub(crate) fn create_named(name: &str, len: usize) -> Result<Segment> {
    let name = wide(name);
    let size = len as u64;
    // SAFETY: a pagefile-backed mapping (INVALID_HANDLE_VALUE) with default security and a
    // NUL-terminated wide name.
    let raw = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            (size >> 32) as u32,
            size as u32,
            name.as_ptr(),
        )
    };
    // SAFETY: GetLastError only reads this thread's last error.
    let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
    let handle = owned(raw)?;
    if existed {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists).into());
    }
    Segment::from_handle(Handle::from(handle), len)
}

/// The existing mapping under `name`, all of it.
pub(crate) fn open_named(name: &str) -> Result<Segment> {
    let name = wide(name);
    // SAFETY: a NUL-terminated wide name; the handle returned is ours alone.
    let handle = owned(unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, name.as_ptr()) })?;
    let len = mapping_len(&handle)?;
    Segment::from_handle(Handle::from(handle), len)
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
