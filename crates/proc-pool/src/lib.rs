//! Spreading work over cores, after Python's `multiprocessing.Pool` and `concurrent.futures`.
//!
//! | item | Python |
//! |---|---|
//! | [`Pool`], [`PoolBuilder`] | `multiprocessing.Pool` |
//! | [`ThreadPool`] | `multiprocessing.pool.ThreadPool` |
//! | [`AsyncResult`] | `multiprocessing.pool.AsyncResult` |
//! | [`ProcessPoolExecutor`], [`ThreadPoolExecutor`] | `concurrent.futures` executors |
//! | [`Executor`] | `concurrent.futures.Executor` (processes here, MPI ranks in proc-mpi) |
//! | [`Future`], [`wait`], [`as_completed`], [`ReturnWhen`] | `concurrent.futures` |
//!
//! Process pools keep going when a task panics or a worker is killed: only that task fails
//! ([`Error::Panicked`](proc_core::Error::Panicked),
//! [`Error::WorkerDied`](proc_core::Error::WorkerDied)) and a new worker takes the dead one's
//! place. Futures and async results are also [`std::future::Future`]s.
//!
//! # Examples
//!
//! ```
//! use proc_pool::{Pool, ProcessPoolExecutor, as_completed};
//!
//! fn cube(x: u64) -> u64 {
//!     x * x * x
//! }
//!
//! fn main() {
//!     proc_pool::core::init();
//!     let pool = Pool::new(2).unwrap();
//!     assert_eq!(pool.map(cube, 1..=3).unwrap(), [1, 8, 27]);
//!
//!     let executor = ProcessPoolExecutor::new(2).unwrap();
//!     let futures: Vec<_> = (1..=3).map(|x| executor.submit(cube, x).unwrap()).collect();
//!     let total: u64 = as_completed(&futures, None).map(|f| f.unwrap().result().unwrap()).sum();
//!     assert_eq!(total, 36);
//! }
//! ```
#![warn(missing_docs)]

mod backend;
mod call;
mod completer;
mod executor;
mod future;
#[doc(hidden)]
pub mod internal;
mod map;
mod pool;
mod process;
mod thread;
mod thread_pool;
mod wait;

pub use proc_core as core;

pub use backend::{Backend, Executor, TaskFn, Wire};
pub use call::{InitOutput, StarFn};
pub use executor::{
    ProcessPoolExecutor, ProcessPoolExecutorBuilder, Processes, ThreadPoolExecutor,
    ThreadPoolExecutorBuilder,
};
pub use future::{AsyncResult, Future};
pub use map::Imap;
pub use pool::{Pool, PoolBuilder};
pub use thread_pool::ThreadPool;
pub use wait::{AsCompleted, ReturnWhen, as_completed, wait};
