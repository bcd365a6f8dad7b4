//! Spreading work over cores, after Python's `multiprocessing.Pool` and `concurrent.futures`:
//! `Pool`, `ThreadPool`, `AsyncResult`, `ThreadPoolExecutor`, `ProcessPoolExecutor`, `Future`,
//! `wait` and `as_completed`.
//!
//! This crate is being built; today it re-exports the process layer it stands on, so that
//! `proc_pool::core` always names the `proc-core` it was built with.
//!
//! # Examples
//!
//! ```
//! assert!(proc_pool::core::cpu_count() >= 1);
//! ```
#![warn(missing_docs)]

pub use proc_core as core;
