//! The one internal interface to the operating system.
//!
//! Everything that differs between platforms lives behind the items that `unix` and `windows`
//! both define, so that the rest of the crate has no `cfg` of its own:
//!
//! - `Segment`: a mapping of shared memory that owns its handle — `anonymous(len)` (freed by
//!   the kernel with its last user), `create_named(name, len)`, `open_named(name)`,
//!   `from_handle(handle, len)` (a segment that arrived from another process), `handle()`,
//!   `as_ptr()`, `len()`.
//! - `unlink_named(name)`: removes a segment's name.
//! - `track(name)`: starts whatever removes a named segment's name once every process that
//!   holds the returned `Handle` has ended; `untrack(&Handle)` stops it after an explicit
//!   unlink. `UNLINK_ON_DROP` says whether the creator must unlink on drop instead, where the
//!   platform has no tracker.
//! - `Parkers`: sleeping on 32-bit words in shared memory — `new(n)` for `n` words,
//!   `wait(i, word, expected, timeout)` (returns at once unless `word` holds `expected`; may
//!   return spuriously) and `wake(i, word, n)`. Futexes where the kernel has them; kernel
//!   semaphores, whose handles travel with the value, on Windows. `Clone`, `Serialize` and
//!   `Deserialize`.
//! - `pid()`: this process's id, cheap enough for every acquire (cached, forgotten on fork).
//! - `pid_alive(pid)`: whether a process still runs (a zombie does not).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
