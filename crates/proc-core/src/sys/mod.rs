//! The one internal interface to the operating system.
//!
//! Everything that differs between platforms lives behind the items listed below, which
//! `unix` and `windows` both provide (each split by concern into `channel.rs`, `child.rs`,
//! `exec.rs`, `os.rs` and `shm.rs`), so that the rest of the crate has no `cfg` of its own.
//! The list is the interface: an item missing on one platform fails that platform's build
//! here. Methods cannot be listed in a `use`; those of the two types are:
//!
//! - `Channel`: `pair`, `from_env` (the end that the parent handed to this new process),
//!   `from_handle` and `from_tcp` (a stream someone else connected; a TCP channel carries no
//!   handles: `send_frame` refuses them, and its frames are bare `codec` frames on every
//!   platform), `raw_handle` (the handle that sends a channel to
//!   another process, an error where the channel cannot travel: a socket on Windows),
//!   `set_peer`, `send_frame`, `send_frames`, `recv_frame`, `recv_frame_until` (a frame
//!   begun stays for the next call where the platform can keep it: Unix), `set_read_timeout`,
//!   `wait_readable`, `peer_closed`, and `Read`/`Write` for `&Channel`.
//! - `Child`: `pid`, `try_wait`, `wait`, `terminate`, `kill`, `interrupt`.
//! - `Parkers`, what shared words sleep on: `new(n)` for `n` words, `wait(i, word, expected,
//!   timeout)` (returns at once unless `word` holds `expected`; may return spuriously) and
//!   `wake(i, word, n)`. Futexes where the kernel has them; kernel semaphores, whose handles
//!   travel with the value, on Windows. `Clone`, `Debug`, `Serialize` and `Deserialize`.
//! - `ShortSlice`, a guard: `take` (the calling thread runs with the shortest time slice until
//!   the guard drops, where Linux allows; nothing elsewhere).
//!
//! `sys` calls nothing above it but `codec` and `error` (for frames) and `internal::Deadline`:
//! where it needs the rest of the crate, it takes a callback (`serve_forkserver`, `fork`,
//! `before_main!`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

// Channels and handles (`channel.rs`).
pub(crate) use imp::{
    // A bidirectional byte stream to one other process (methods above).
    Channel,
    // A handle this process owns, and one as a number (a file descriptor on Unix).
    OwnedHandle,
    RawHandle,
    // A new handle of this process for the same object.
    duplicate_handle,
    // The number of an owned handle.
    raw_handle,
    // Waits until one of several channels has something to read.
    wait_any,
};

// Started children (`child.rs`).
pub(crate) use imp::Child;

// Starting a process (`exec.rs`, and Unix's `forkserver.rs`).
pub(crate) use imp::{
    // The program that children re-execute: the very file this process runs.
    default_executable,
    // Forks and runs a callback in the child (Unix; `Unsupported` elsewhere).
    fork,
    // The pid of this process's fork server while it has one.
    forkserver_pid,
    // Asks the fork server, started on first use, for a child (Unix; `Unsupported` elsewhere).
    forkserver_spawn,
    // Tells the platform about a new child's channel to its parent, and whether it is daemonic.
    remember_parent_channel,
    // The zygote's loop, with the function each of its children serves its parent with.
    serve_forkserver,
    // Starts the program anew with a role and its end of a channel.
    spawn,
};

/// Whether a new child is daemonic (ends when its parent does), for
/// `remember_parent_channel`: on Windows a daemonic child joins its parent's kill-on-close job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Daemonic {
    Yes,
    No,
}

impl Daemonic {
    /// The kind of a child whose identity says `daemon`.
    pub(crate) fn of(daemon: bool) -> Daemonic {
        if daemon { Daemonic::Yes } else { Daemonic::No }
    }
}

// Facts about processes (`os.rs`).
pub(crate) use imp::{
    // How many low bits of a lock word every pid fits in (32: no room for anything else).
    PID_BITS,
    // Runs a handler when the process exits through `exit`.
    at_exit,
    // Runs a handler in the child of every fork (a no-op where there is no fork).
    at_fork_child,
    // Declares the static that the loader calls before `main`.
    before_main,
    // Leaves at once, with no exit handlers or destructors.
    exit_now,
    // Flushes what stdout buffers, so that a forked child does not write it twice.
    flush_std_streams,
    getpid,
    getppid,
    // Whether an error writing to a child means only that the child is gone.
    is_peer_gone,
    // Whether a process still runs (a zombie counts as ended).
    pid_alive,
    // Sets up a child before user code runs, as Rust's runtime sets up `main`.
    prepare_child,
    random_bytes,
    // The resident memory of this process, where the platform tells it.
    resident_memory,
    // The conventional name of a signal number.
    signal_name,
    // What tells a process from a later one with its pid (`None` if unknown).
    start_time,
    // How many threads this process has, where the platform tells it.
    thread_count,
};

// The scheduler (Unix's `sched.rs`, Windows's `os.rs`).
pub(crate) use imp::{
    // Shortens the calling thread's time slice while it lives (methods above).
    ShortSlice,
    // Puts the default slice back in a new child that inherited the short one.
    leave_inherited,
};

// Shared memory (`shm.rs`), for `crate::shared`.
pub(crate) use imp::{
    // What shared words sleep on (methods above).
    Parkers,
    // A new zeroed object of `len` bytes that no name reaches.
    anonymous_segment,
    // A new zeroed object of `len` bytes under a name; `AlreadyExists` if the name is taken.
    create_named_segment,
    // Maps an object; refuses one shorter than `len`.
    map_segment,
    // The existing object under a name, and its length.
    open_named_segment,
    // Why a segment from another process must not be mapped (Linux: an unnamed object not
    // sealed against shrinking), if it must not.
    refuse_arrived_segment,
    // Removes a name (nothing to do on Windows, where the last handle takes it).
    unlink_named_segment,
    // Unmaps what `map_segment` mapped (`unsafe`).
    unmap_segment,
};

/// The environment variable that tells a new process which role it plays and where its
/// channel to the parent is. It is removed as soon as the child has read it.
pub(crate) const CHILD_ENV: &str = "PROCS_CHILD";
