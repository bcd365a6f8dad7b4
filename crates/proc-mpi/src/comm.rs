//! An executor inside an existing MPI program: a communicator, and a root that submits while
//! the other ranks serve (mpi4py's `mpi4py.futures.MPICommExecutor`).

use std::sync::Arc;

use mpi::environment::{Threading, threading_support};
use mpi::topology::{Communicator, Rank};
use proc_core::{Error, Result};

use crate::executor::{MpiPoolExecutor, Ranks};
use crate::peers::Peers;
use crate::worker::serve;

/// Makes an executor of `comm`'s ranks for its rank `root` (mpi4py's
/// `MPICommExecutor(comm, root)`): every rank of `comm` calls it; on `root` it returns
/// `Some(executor)` at once, on the other ranks it serves the root's tasks and returns `None`
/// when the root shuts the executor down (or drops it).
///
/// For programs that start MPI themselves (rsmpi's `mpi::initialize_with_threading`) and use
/// an executor for a stretch of their work, as Python's
///
/// ```python
/// with MPICommExecutor(comm, root) as executor:
///     if executor is not None:
///         ...
/// ```
///
/// It is collective over `comm`: it duplicates it (`MPI_Comm_dup`), so that the executor's
/// messages never meet the program's own on `comm`, and every rank must call it, in the same
/// order as the other collective calls on `comm`. The root's executor is one
/// [`MpiPoolExecutor`] with `comm`'s size − 1 workers; once it is shut down the other ranks go
/// back to the program, and another `comm_executor` (again on every rank) makes a new one.
/// Programs started by [`init`](crate::init) have their session instead (its worker ranks
/// never return from `init`).
///
/// Drop the executor before ending MPI (before dropping rsmpi's `Universe`). Its engine
/// thread makes the root's MPI calls on the duplicate while it runs: under
/// `MPI_THREAD_MULTIPLE` the root may go on with MPI calls of its own meanwhile; under
/// `MPI_THREAD_SERIALIZED` it must make none until the executor is shut down.
///
/// # Errors
///
/// The same on every rank, before anything collective: [`Error::InvalidState`] when `root`
/// is not a rank of `comm`, when `comm` has a single rank (no worker), or when MPI was
/// initialized below `MPI_THREAD_SERIALIZED`.
///
/// # Examples
///
/// ```no_run
/// // Run as `mpirun -n 3 ./app`: rank 1 submits, ranks 0 and 2 serve.
/// use proc_mpi::mpi::traits::{Communicator, CommunicatorCollectives};
///
/// fn main() {
///     proc_mpi::core::init();
///     let (universe, _) = proc_mpi::mpi::initialize_with_threading(
///         proc_mpi::mpi::Threading::Multiple,
///     )
///     .unwrap();
///     let world = universe.world();
///     if let Some(executor) = proc_mpi::comm_executor(&world, 1).unwrap() {
///         let squares: Vec<u32> = executor.map(|x: u32| x * x, 0..4).unwrap()
///             .map(Result::unwrap).collect();
///         assert_eq!(squares, [0, 1, 4, 9]);
///     } // dropping the executor lets ranks 0 and 2 return from `comm_executor`
///     world.barrier();
/// }
/// ```
pub fn comm_executor<C>(comm: &C, root: Rank) -> Result<Option<MpiPoolExecutor>>
where
    C: Communicator + ?Sized,
{
    let size = comm.size();
    if !(0..size).contains(&root) {
        return Err(Error::InvalidState(
            "the root is not a rank of the communicator",
        ));
    }
    if size < 2 {
        return Err(Error::InvalidState(
            "a communicator of one rank has no worker: run under `mpirun -n N` with N of at \
             least 2",
        ));
    }
    if threading_support() < Threading::Serialized {
        return Err(Error::InvalidState(
            "MPI was initialized below MPI_THREAD_SERIALIZED: start it with \
             mpi::initialize_with_threading(Threading::Serialized) or Multiple",
        ));
    }
    let duplicate = comm.duplicate();
    if duplicate.rank() != root {
        serve(&duplicate, root);
        return Ok(None);
    }
    let ranks = (0..size).filter(|&rank| rank != root).collect();
    let peers = Arc::new(Peers::new(Box::new(duplicate), ranks));
    Ranks::owning(peers).map(Some)
}
