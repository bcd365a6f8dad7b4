//! The one internal interface to the operating system.
//!
//! Everything that differs between platforms lives behind the items that `unix` and `windows`
//! both define, so that the rest of the crate has no `cfg` of its own:
//!
//! - `Channel`: a bidirectional byte stream between a parent and one child, with `pair`,
//!   `wait_readable`, `Read`/`Write` for `&Channel`, and the `to_child`/`from_env` pair that
//!   hands one end to a new process. `from_handle` and `from_tcp` make one from a stream
//!   someone else connected (a TCP channel carries no handles: `send_frame` refuses them);
//!   `raw_handle` is the handle that sends a channel to another process, an error where the
//!   channel cannot travel (a socket on Windows). `wait_any` waits on several.
//! - `Child`: a started process (`pid`, `try_wait`, `wait`, `terminate`, `kill`,
//!   `interrupt`).
//! - `spawn` (re-execute the program), `fork` and `forkserver_spawn` (Unix only; elsewhere
//!   they answer `Unsupported`), `serve_forkserver` (the zygote's loop).
//! - Process facts: `getpid`, `getppid`, `pid_alive` (a zombie counts as ended),
//!   `start_time` (what tells a process from a later one with its pid; `None` if unknown),
//!   `thread_count`, `random_bytes`, `signal_name`, `at_exit`, `at_fork_child` (a no-op where
//!   there is no fork), `prepare_child`, `exit_now`, `default_executable`.
//! - Shared memory (`unix/shared.rs`, `windows/shared.rs`), for `crate::shared`:
//!   `anonymous_segment(len)` (a new zeroed object that no name reaches, as an `OwnedHandle`),
//!   `map_segment(&handle, len)` (refuses an object shorter than `len`),
//!   `refuse_arrived_segment(&handle)` (why a segment from another process must not be mapped:
//!   on Linux, an unnamed object not sealed against shrinking) and the `unsafe`
//!   `unmap_segment(ptr, len)`; `Parkers`, what words sleep on — `new(n)` for `n` words,
//!   `wait(i, word, expected, timeout)` (returns at once unless `word` holds `expected`; may
//!   return spuriously) and `wake(i, word, n)`. Futexes where the kernel has them; kernel
//!   semaphores, whose handles travel with the value, on Windows. `Clone`, `Debug`,
//!   `Serialize` and `Deserialize`.
//! - `before_main!`, which declares the static that the loader calls before `main` (the child
//!   runtime puts its entry there).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// The environment variable that tells a new process which role it plays and where its
/// channel to the parent is. It is removed as soon as the child has read it.
pub(crate) const CHILD_ENV: &str = "PROCS_CHILD";
