//! Run Rust functions in child processes: the process layer of `procs`, after Python's
//! `multiprocessing.Process`.
//!
//! A child is the same program, started anew ([`StartMethod::Spawn`]), forked
//! ([`StartMethod::Fork`]) or forked by a clean fork server ([`StartMethod::ForkServer`]). It
//! runs one function — a `fn` or a closure that captures nothing — with serde arguments, and
//! [`Process::join`] returns the function's result. A panic in the child comes back as
//! [`Error::Panicked`], a child killed by a signal as [`Error::Died`] naming the signal; no
//! wait on a child hangs when the child dies.
//!
//! Call [`init`] on the first line of `main`. On Linux, macOS, FreeBSD and Windows the child
//! also finds its function before `main` runs, so test binaries (whose `main` is libtest's)
//! need no ceremony at all.
//!
//! This crate also holds what the other `procs` crates share: the [`Error`] type, the wire
//! format ([`codec`]), and shared memory with the words that processes sleep and lock on
//! ([`shared`]).
//!
//! # Examples
//!
//! ```
//! use proc_core::{Process, StartMethod};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() {
//!     proc_core::init();
//!     for &method in StartMethod::available() {
//!         let mut p = Process::builder().start_method(method).spawn(square, 7).unwrap();
//!         assert_eq!(p.join().unwrap(), 49);
//!     }
//! }
//! ```
#![warn(missing_docs)]

// The modules form layers, and every `use crate::` points down this list. Top first:
//
// - `process` (`Process`, `Sentinel`; `process/builder.rs`: `Builder`, `Context`, `Task`)
// - `spawn` (`launch`, and one file per start method: `exec`, `fork`, `forkserver`)
// - `child` (the child runtime: the entry before `main`, `run`, the trampolines)
// - `registry` (the children of this process and their shared state)
// - `current` (who this process is)
// - `start` (the wire types of a start: `Request`, `Identity`, `Outcome`, `Trampoline`)
// - `method` (`StartMethod`), `queue_error`
// - `internal` (`packet` over `handle`, `named` over `shared`; `unwind`)
// - `shared` (segments, words, pids)
// - `handle` (`Handle`, `Link`), `fnref`
// - `fingerprint`
// - `sys` (the platform, behind the list in `sys/mod.rs`), which takes callbacks where it
//   needs what is above it: `serve_forkserver` gets the function that a forked child serves
//   its parent with, `fork` the child's work, `before_main!` the function the loader calls
// - `codec`, `error`, `internal/deadline.rs`
//
// The bottom of the list is a layer of files rather than of modules: `sys`'s channels
// (`sys/*/channel.rs`) frame with `codec` and fail with `error`; `error` names signals with
// the `signal_name` of `sys/*/os.rs`, which uses neither; every wait takes the `Deadline` of
// `internal/deadline.rs`, which uses nothing; and Windows' parkers (`sys/windows/shm.rs`)
// travel as `Handle`s.

mod child;
pub mod codec;
mod current;
mod error;
mod fingerprint;
mod fnref;
mod handle;
#[doc(hidden)]
pub mod internal;
mod method;
mod process;
mod queue_error;
mod registry;
pub mod shared;
mod spawn;
mod start;
mod sys;

pub use current::{
    CurrentProcess, ParentProcess, cpu_count, current_process, getpid, getppid, parent_process,
};
pub use error::{Error, Result};
pub use fnref::FnRef;
pub use handle::{Handle, Link};
pub use method::{StartMethod, get_start_method, set_start_method};
pub use process::{Builder, Context, Process, Sentinel, Task, context};
pub use queue_error::{GetError, PutError};
pub use registry::{ActiveChild, active_children};

/// Serves the parent when this process is a child; returns at once otherwise.
///
/// Call it on the first line of `main`: in a child it runs the requested function and exits,
/// so nothing after it runs twice. On the platforms where `proc-core` installs a start-up
/// constructor (Linux, Android, FreeBSD, macOS, Windows) this already happened before `main`,
/// and the call is a cheap no-op; it stays the portable way to write a program.
///
/// # Examples
///
/// ```
/// fn main() {
///     proc_core::init();
///     // The parent's work starts here.
///     assert_eq!(proc_core::current_process().name(), "MainProcess");
/// }
/// ```
#[doc(alias = "freeze_support")]
pub fn init() {
    child::from_constructor();
}
