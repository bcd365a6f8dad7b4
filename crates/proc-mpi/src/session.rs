//! The MPI session of a program: `init`, the worker ranks' loop, and finalization.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use mpi::environment::{Threading, Universe};
use mpi::point_to_point::{Destination, Source};
use mpi::topology::{Communicator, SimpleCommunicator};
use proc_core::{Error, Result};

use crate::engine::Engine;
use crate::wire;

/// The executor's engine that runs now, if any: [`Mpi`]'s drop shuts it down before MPI
/// ends, whatever order the program dropped things in.
pub(crate) static LIVE: Mutex<Option<Arc<Engine>>> = Mutex::new(None);

/// The MPI session on rank 0, from [`init`]: makes [`MpiPoolExecutor`](crate::MpiPoolExecutor)s,
/// and ends MPI when dropped.
///
/// Dropping it shuts down a running executor (waiting for its tasks), lets the worker ranks
/// go (they exit) and calls `MPI_Finalize`. Keep it until the end of `main`: an MPI program
/// that ends without finalizing is reported by `mpirun` as a failed job.
///
/// # Examples
///
/// ```no_run
/// // Under `mpirun -n 3 ./app`; see the crate docs for a whole program.
/// fn main() {
///     proc_mpi::core::init();
///     let mpi = proc_mpi::init().unwrap();
///     assert_eq!(mpi.rank(), 0);
///     assert_eq!(mpi.workers(), mpi.size() - 1);
/// }
/// ```
///
/// It stays on the thread that started MPI, which must also end it (`MPI_Finalize` belongs
/// to the thread that called `MPI_Init_thread`):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// send(proc_mpi::init().unwrap());
/// ```
pub struct Mpi {
    universe: Option<Universe>,
    size: usize,
    /// Not `Send` nor `Sync`: see above.
    _main_thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi").field("size", &self.size).finish()
    }
}

/// Starts MPI: on rank 0 returns the session; on every other rank serves tasks until rank 0
/// lets it go, then ends the process — so nothing after this call runs on a worker rank.
///
/// Call it right after `procs::init()` on the first lines of `main`, and run the program as
/// `mpirun -n N ./app` (or `mpiexec`, `srun`, with a hostfile for a cluster): rank 0 runs
/// `main`, ranks 1 to N − 1 are the workers of [`MpiPoolExecutor`](crate::MpiPoolExecutor).
/// Every rank must run the same build (each task carries the build fingerprint, and a worker
/// of another build answers [`Error::BuildMismatch`] without running anything; the
/// fingerprint includes the executable's size and modification time, so copy it to the nodes
/// with its time stamp, e.g. `rsync -t`, or run it from a shared file system).
///
/// Started without `mpirun`, Open MPI makes a singleton world of one rank: `init` returns a
/// session with no workers, and making an executor then fails with a clear error.
///
/// # Errors
///
/// [`Error::InvalidState`] when MPI was started already (by another `init`, or by rsmpi
/// directly), or when the MPI library cannot serialize calls from several threads
/// (`MPI_THREAD_SERIALIZED`), which the executor's engine thread needs.
///
/// # Platform-specific behavior
///
/// Needs an MPI implementation at build time and at run time (Debian: `libopenmpi-dev`,
/// `openmpi-bin`). Under Open MPI as root, `mpirun` needs `--allow-run-as-root`.
///
/// # Examples
///
/// ```no_run
/// // Run as `mpirun -n 3 ./app`: ranks 1 and 2 never come back from `init`.
/// fn main() {
///     proc_mpi::core::init();
///     let mpi = proc_mpi::init().unwrap();
///     assert_eq!(mpi.rank(), 0);
/// }
/// ```
pub fn init() -> Result<Mpi> {
    let Some((universe, threading)) = mpi::initialize_with_threading(Threading::Serialized) else {
        return Err(Error::InvalidState(
            "MPI was initialized already: call proc_mpi::init once, before any other MPI call",
        ));
    };
    if threading < Threading::Serialized {
        return Err(Error::InvalidState(
            "the MPI library does not support MPI_THREAD_SERIALIZED: use a thread-safe build of MPI",
        ));
    }
    let world = universe.world();
    let size = usize::try_from(world.size()).unwrap_or(1);
    if world.rank() != 0 {
        serve(&world);
        drop(world);
        drop(universe);
        std::process::exit(0);
    }
    Ok(Mpi {
        universe: Some(universe),
        size,
        _main_thread: PhantomData,
    })
}

/// A worker rank's life: runs the tasks of rank 0, one after another, until told to end.
fn serve(world: &SimpleCommunicator) {
    let root = world.process_at_rank(0);
    loop {
        let (message, status) = root.receive_vec::<u8>();
        match status.tag() {
            wire::TASK => {
                let reply = wire::serve_task(&message);
                root.send_with_tag(&reply[..], wire::REPLY);
            }
            wire::EXIT => return,
            tag => tracing::warn!(tag, "a worker rank ignored a message with an unknown tag"),
        }
    }
}

impl Mpi {
    /// This process's rank in the world communicator: always 0, since other ranks never get
    /// a session.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// assert_eq!(mpi.rank(), 0);
    /// ```
    pub fn rank(&self) -> usize {
        0
    }

    /// The number of ranks in the world, rank 0 included.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// assert!(mpi.size() >= 1);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The number of worker ranks: the world's size less rank 0.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// assert_eq!(mpi.workers() + 1, mpi.size());
    /// ```
    pub fn workers(&self) -> usize {
        self.size.saturating_sub(1)
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(engine) = live {
            engine.close(false);
            engine.join();
        }
        let world = SimpleCommunicator::world();
        for rank in 1..world.size() {
            world
                .process_at_rank(rank)
                .send_with_tag(&[0u8; 0][..], wire::EXIT);
        }
        drop(world);
        // Dropping the universe calls `MPI_Finalize`.
        drop(self.universe.take());
    }
}
