//! The executor API of `procs` over MPI ranks: mpi4py's `mpi4py.futures.MPIPoolExecutor`.
//!
//! When a job outgrows one machine, the same `submit`/`map` code runs on a cluster through
//! MPI. Every rank runs the same executable, so functions are named exactly as for local
//! worker processes (fn items and non-capturing closures), and each task carries the build
//! fingerprint so that a rank running another build refuses it ([`Error::BuildMismatch`]).
//!
//! | item | Python |
//! |---|---|
//! | [`init`], [`Mpi`] | `python -m mpi4py.futures` (the workers' loop) |
//! | [`MpiPoolExecutor`] | `mpi4py.futures.MPIPoolExecutor` |
//! | [`MpiPoolExecutorBuilder::max_workers`] | `MPIPoolExecutor(max_workers)`, spawning them |
//! | [`Ranks`] | the worker ranks behind proc-pool's [`Executor`](proc_pool::Executor) |
//! | [`comm_executor`] | `mpi4py.futures.MPICommExecutor(comm, root)` |
//! | [`Map`] | its `map(..., unordered)` |
//!
//! # Running
//!
//! - Static launch, `mpirun -n N ./app` (on a cluster, `mpirun -n N --hostfile hosts
//!   ./app`): rank 0 runs `main`; [`init`], called right after `procs::init()`, never returns
//!   on the other ranks: they serve tasks until rank 0's [`Mpi`] session ends, then exit.
//! - Dynamic launch, `mpirun -n 1 ./app` or `./app` alone (a singleton):
//!   [`MpiPoolExecutorBuilder::max_workers`] spawns the workers with `MPI_Comm_spawn`, copies
//!   of the program that serve from inside [`init`] and exit when the session ends. Without
//!   workers, [`MpiPoolExecutor::new`] says how to get some.
//! - Inside a program that starts MPI itself: [`comm_executor`] on every rank of a
//!   communicator gives its root an executor while the other ranks serve, then go on.
//!
//! ```no_run
//! use proc_mpi::MpiPoolExecutor;
//! use proc_pool::{ProcessPoolExecutor, ReturnWhen, wait};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() {
//!     proc_mpi::core::init(); // `procs::init()` through the facade
//!     let mpi = proc_mpi::init().unwrap(); // worker ranks never return from here
//!     let executor = MpiPoolExecutor::new(&mpi).unwrap();
//!     let local = ProcessPoolExecutor::new(1).unwrap();
//!     let futures = vec![executor.submit(square, 3).unwrap(), local.submit(square, 4).unwrap()];
//!     let (done, _) = wait(&futures, None, ReturnWhen::AllCompleted);
//!     assert_eq!(done.len(), 2);
//!     assert_eq!(futures[0].result().unwrap() + futures[1].result().unwrap(), 25);
//! }
//! ```
//!
//! # Failures
//!
//! A task that panics fails its own future with [`Error::Panicked`]. A rank that dies ends
//! the whole MPI job (see [`MpiPoolExecutor`]). Build needs an MPI implementation and libclang
//! (Debian: `libopenmpi-dev`, `openmpi-bin`, `libclang-dev`); this crate is optional in the
//! `procs` facade (feature `mpi`, off by default). The `mpi` crate (rsmpi) is re-exported
//! as [`mpi`], for the communicators of [`comm_executor`].
//!
//! [`Error::BuildMismatch`]: proc_core::Error::BuildMismatch
//! [`Error::Panicked`]: proc_core::Error::Panicked
#![warn(missing_docs)]

mod backoff;
mod comm;
mod engine;
mod executor;
mod peers;
mod session;
mod wire;
mod worker;

pub use mpi;
pub use proc_core as core;

pub use comm::comm_executor;
pub use executor::{Map, MpiPoolExecutor, MpiPoolExecutorBuilder, Ranks};
pub use session::{Mpi, init};
