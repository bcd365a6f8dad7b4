//! Windows: `CreateProcessW` re-execution that hands the child exactly one end of a named pipe,
//! waits on process handles, `TerminateProcess` with Python's exit code, handles duplicated
//! into the peer process, and a job object that ends daemonic children with their parent.
//!
//! Windows cannot fork, so `StartMethod::available()` offers only `Spawn` here; `fork` and
//! `forkserver_spawn` answer `Unsupported` should they ever be reached.

mod channel;
mod child;
mod exec;
mod os;
mod shm;
mod socket;

pub(crate) use channel::{Channel, OwnedHandle, RawHandle, duplicate_handle, raw_handle, wait_any};
pub(crate) use child::Child;
pub(crate) use exec::{
    default_executable, fork, forkserver_pid, forkserver_spawn, remember_parent_channel,
    serve_forkserver, spawn,
};
pub(crate) use os::{
    PID_BITS, ShortSlice, at_exit, at_fork_child, before_main, exit_now, flush_std_streams, getpid,
    getppid, is_peer_gone, leave_inherited, pid_alive, prepare_child, random_bytes,
    resident_memory, signal_name, start_time, thread_count,
};
pub(crate) use shm::{
    Parkers, anonymous_segment, create_named_segment, map_segment, open_named_segment,
    refuse_arrived_segment, unlink_named_segment, unmap_segment,
};

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::FromRawHandle;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_BROKEN_PIPE, ERROR_PIPE_NOT_CONNECTED, HANDLE,
    INVALID_HANDLE_VALUE, WIN32_ERROR,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

/// Converts the `BOOL` result of a Win32 call into an `io::Result`.
fn cvt(ok: i32) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether `err` is one of the Win32 error `codes`.
fn is_os_error(err: &io::Error, codes: &[WIN32_ERROR]) -> bool {
    err.raw_os_error()
        .is_some_and(|code| codes.contains(&(code as WIN32_ERROR)))
}

/// Whether an error from reading or peeking a pipe means that the other end is closed, which
/// a reader sees as end-of-file.
fn is_closed(err: &io::Error) -> bool {
    is_os_error(err, &[ERROR_BROKEN_PIPE, ERROR_PIPE_NOT_CONNECTED])
}

/// Takes ownership of a handle from a call that reports failure with `INVALID_HANDLE_VALUE`
/// (or null, for the calls that use that instead).
fn owned_or_last_error(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle == INVALID_HANDLE_VALUE || handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call that returned `handle` succeeded, so it is a new handle that nothing
    // else in this process owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

/// A nul-terminated UTF-16 copy of `s`, for the `W` functions.
fn wide(s: &OsStr) -> io::Result<Vec<u16>> {
    let mut wide: Vec<u16> = s.encode_wide().collect();
    if wide.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a nul character in a path or argument",
        ));
    }
    wide.push(0);
    Ok(wide)
}

/// Whether a handle is inherited by the children this process creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inheritance {
    Inherited,
    Private,
}

/// A copy of `handle` that this process owns, inherited by children or not as asked.
fn duplicate(handle: HANDLE, inheritance: Inheritance) -> io::Result<OwnedHandle> {
    let mut copy: HANDLE = null_mut();
    // SAFETY: `handle` is open in this process (the caller borrows it), the current-process
    // pseudo handle is always valid, and `copy` is a writable HANDLE.
    cvt(unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            handle,
            GetCurrentProcess(),
            &mut copy,
            0,
            i32::from(inheritance == Inheritance::Inherited),
            DUPLICATE_SAME_ACCESS,
        )
    })?;
    // SAFETY: DuplicateHandle succeeded, so `copy` is a new handle that only we own.
    Ok(unsafe { OwnedHandle::from_raw_handle(copy) })
}
