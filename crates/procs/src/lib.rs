//! Python's `multiprocessing`, `queue` and `concurrent.futures`, for Rust.
//!
//! `procs` is a facade over small crates that can also be used alone:
//!
//! | module | crate | holds |
//! |---|---|---|
//! | [`core`] | `proc-core` | [`Process`], start methods, [`current_process`], [`Error`], the wire codec |
//! | `ipc` (feature `ipc`) | `proc-ipc` | pipes, queues, listeners, managers |
//! | `sync` (feature `sync`) | `proc-sync` | locks, events, semaphores, shared memory |
//! | `pool` (feature `pool`) | `proc-pool` | pools, executors, futures |
//! | `mpi` (feature `mpi`, off by default) | `proc-mpi` | `MpiPoolExecutor`: the executor over MPI ranks (`mpirun -n N ./app`); needs an MPI implementation to build |
//!
//! The everyday items are re-exported at the root: the process API of `proc-core`, and, with
//! their features, the pipes, queues, listeners, managers and `wait` of `proc-ipc` and the locks, events,
//! values and shared memory of `proc-sync`, and the pools, executors and futures of
//! `proc-pool` (its `wait` is `procs::pool::wait`; `procs::wait` is the one of connections
//! and queues).
//!
//! # Examples
//!
//! ```
//! use procs::Process;
//!
//! fn hello(name: String) -> String {
//!     format!("hello {name} from pid {}", procs::getpid())
//! }
//!
//! fn main() {
//!     procs::init();
//!     let mut p = Process::spawn(hello, "world".to_string()).unwrap();
//!     let greeting = p.join().unwrap();
//!     assert!(greeting.starts_with("hello world from pid "));
//!     assert_eq!(p.exitcode(), Some(0));
//! }
//! ```
#![warn(missing_docs)]

pub use proc_core as core;
#[cfg(feature = "ipc")]
pub use proc_ipc as ipc;
/// The executor over MPI ranks: call `procs::mpi::init()` right after [`init`] (worker ranks
/// serve inside it and exit), then make a `procs::mpi::MpiPoolExecutor`.
#[cfg(feature = "mpi")]
pub use proc_mpi as mpi;
#[cfg(feature = "pool")]
pub use proc_pool as pool;
#[cfg(feature = "sync")]
pub use proc_sync as sync;

pub use proc_core::codec;
pub use proc_core::{
    ActiveChild, Builder, Context, CurrentProcess, Error, GetError, ParentProcess, Process,
    PutError, Result, Sentinel, StartMethod, Task, active_children, context, cpu_count,
    current_process, get_start_method, getpid, getppid, init, parent_process, set_start_method,
};
#[cfg(feature = "ipc")]
pub use proc_ipc::{
    Address, ArrayProxy, BarrierProxy, Client, ConditionProxy, Connection, DictProxy, EventProxy,
    JoinableQueue, JoinableQueueProxy, ListProxy, Listener, LockProxy, Manager, NamespaceProxy,
    Pipe, Proxy, ProxyGuard, Queue, QueueProxy, RLockProxy, SemaphoreProxy, SharedObject,
    SimpleQueue, ValueProxy, Waitable, wait,
};
#[cfg(feature = "pool")]
pub use proc_pool::{
    AsCompleted, AsyncResult, Executor, Future, Imap, Pool, PoolBuilder, ProcessPoolExecutor,
    ProcessPoolExecutorBuilder, ReturnWhen, StarFn, ThreadPool, ThreadPoolExecutor,
    ThreadPoolExecutorBuilder, as_completed,
};
/// Python's `queue` module: the thread queues (`Queue`, `LifoQueue`, `PriorityQueue`,
/// `SimpleQueue`), with the same errors as the process queues.
#[cfg(feature = "sync")]
pub use proc_sync::queue;
#[cfg(feature = "sync")]
pub use proc_sync::{
    Array, Barrier, BarrierBuilder, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore,
    SharedLock, SharedMemory, Timer, Value,
};
