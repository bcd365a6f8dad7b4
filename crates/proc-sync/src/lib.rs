//! Synchronization across processes, after Python's `multiprocessing`: `Lock`, `RLock`,
//! `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array` and
//! `SharedMemory`, plus the thread queues of Python's `queue` module.
//!
//! This crate is being built; today it re-exports the process layer it stands on, so that
//! `proc_sync::core` always names the `proc-core` it was built with.
//!
//! # Examples
//!
//! ```
//! assert!(proc_sync::core::cpu_count() >= 1);
//! ```
#![warn(missing_docs)]

pub use proc_core as core;
