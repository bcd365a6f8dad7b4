//! Unix: `posix_spawn` re-execution, `fork`, a fork server, `poll`-based waits.

mod channel;
mod child;
mod exec;
mod forkserver;
mod inbox;
mod os;
mod sched;
mod shm;

use std::io;

pub(crate) use channel::{Channel, OwnedHandle, RawHandle, duplicate_handle, raw_handle, wait_any};
pub(crate) use child::Child;
pub(crate) use exec::{default_executable, fork, remember_parent_channel, spawn};
pub(crate) use forkserver::{forkserver_pid, forkserver_spawn, serve_forkserver};
pub(crate) use os::{
    PID_BITS, at_exit, at_fork_child, before_main, exit_now, flush_std_streams, getpid, getppid,
    is_peer_gone, pid_alive, prepare_child, random_bytes, resident_memory, signal_name, start_time,
    thread_count,
};
pub(crate) use sched::{ShortSlice, leave_inherited};
pub(crate) use shm::{
    Parkers, anonymous_segment, create_named_segment, map_segment, open_named_segment,
    refuse_arrived_segment, unlink_named_segment, unmap_segment,
};

/// Converts the return value of a libc call that reports failure with -1.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries a libc call interrupted by a signal.
fn cvt_retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
