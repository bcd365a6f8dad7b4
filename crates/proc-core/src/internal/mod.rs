//! What the `procs` crates share and users should not lean on: no semver promise, hidden
//! from the docs (the models are crossbeam-utils and rayon-core's `unwind`).
//!
//! - [`Deadline`]: every `_timeout` of every crate turns its `Duration` into one, so that
//!   `Duration::MAX` means "forever" and never overflows an `Instant`.
//! - [`unwind`]: one `catch_unwind` that keeps a panic's message and location.
//! - [`Outgoing`] / [`Incoming`]: frames with a header of the caller's and a serde value with
//!   the OS handles inside it, for protocols built on a [`Link`](crate::Link) (the pool's
//!   workers), and [`fn_offset`] / [`fn_at`] to name a function of this build to a peer.
//! - [`create_named_segment`], [`open_named_segment`], [`unlink_named_segment`]: shared
//!   memory under a name, for `proc-sync`'s `SharedMemory`.
//! - [`fingerprint`]: this build's fingerprint, for peers that are not our children.
//! - [`resident_memory`]: the resident set size of this process.
//! - [`fork_server_pid`]: the fork server's pid, for tests that kill it.

mod deadline;
mod named;
mod packet;
pub mod unwind;

pub use deadline::Deadline;
pub use named::{create_named_segment, open_named_segment, unlink_named_segment};
pub use packet::{Incoming, Outgoing, encodes, fn_at, fn_offset};

/// This build's fingerprint: equal in two processes only when they run the same build, so
/// that a peer may be sent function offsets ([`fn_offset`]) only when its fingerprint is ours.
///
/// # Examples
///
/// ```
/// assert_eq!(proc_core::internal::fingerprint(), proc_core::internal::fingerprint());
/// ```
pub fn fingerprint() -> u64 {
    crate::fingerprint::fingerprint()
}

/// The pid of this process's fork server ([`StartMethod::ForkServer`](crate::StartMethod)),
/// while it runs one: for tests that kill it.
///
/// # Examples
///
/// ```
/// // No child was started with the fork server in this process.
/// assert_eq!(proc_core::internal::fork_server_pid(), None);
/// ```
pub fn fork_server_pid() -> Option<u32> {
    crate::sys::forkserver_pid()
}

/// The resident memory of this process in bytes, where the platform tells it.
///
/// # Platform-specific behavior
///
/// Linux reads `/proc/self/statm`; other Unix systems report the peak resident size
/// (`getrusage`); Windows reports the working set.
///
/// # Examples
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert!(proc_core::internal::resident_memory().unwrap() > 0);
/// ```
pub fn resident_memory() -> Option<u64> {
    crate::sys::resident_memory()
}
