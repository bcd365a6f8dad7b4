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
