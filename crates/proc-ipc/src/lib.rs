//! Communication between processes, after Python's `multiprocessing`: `Pipe`/`Connection`,
//! `Queue`, `JoinableQueue`, `SimpleQueue`, `Listener`/`Client` and `Manager`.
//!
//! This crate is being built; today it re-exports the process layer it stands on, so that
//! `proc_ipc::core` always names the `proc-core` it was built with.
//!
//! # Examples
//!
//! ```
//! assert!(proc_ipc::core::cpu_count() >= 1);
//! ```
#![warn(missing_docs)]

pub use proc_core as core;
