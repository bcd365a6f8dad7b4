//! The MPI session of a program: `init`, the worker ranks' loop, and finalization.

use std::cell::RefCell;
use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpi::environment::{Threading, Universe};
use mpi::ffi;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, InterCommunicator, Rank, SimpleCommunicator};
use mpi::traits::{AsRaw, FromRaw};
use proc_core::internal::Deadline;
use proc_core::{Error, Result};

use crate::engine::Engine;
use crate::peers::Peers;
use crate::wire::{self, Hello};
use crate::worker::serve;
use proc_pool::internal::QueuedTasks;

/// The executor's engine that runs now, if any: [`Mpi`]'s drop shuts it down before MPI
/// ends, whatever order the program dropped things in.
pub(crate) static LIVE: Mutex<Option<Arc<Engine>>> = Mutex::new(None);

/// The MPI session on rank 0, from [`init`]: makes [`MpiPoolExecutor`](crate::MpiPoolExecutor)s,
/// and ends MPI when dropped.
///
/// Dropping it shuts down a running executor (waiting for its tasks), lets the worker ranks
/// go (they exit; spawned ones are disconnected first) and calls `MPI_Finalize`. Keep it
/// until the end of `main`: an MPI program that ends without finalizing is reported by
/// `mpirun` as a failed job.
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
    /// The worker ranks: the world's other ranks (static launch), the spawned children
    /// (dynamic launch, once spawned), or none yet.
    peers: RefCell<Option<Arc<Peers>>>,
    /// Not `Send` nor `Sync`: see above.
    _main_thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("size", &self.size)
            .field("workers", &self.workers())
            .finish()
    }
}

/// Starts MPI: on rank 0 returns the session; on every other rank serves tasks until rank 0
/// lets it go, then ends the process — so nothing after this call runs on a worker rank.
///
/// Call it right after `procs::init()` on the first lines of `main`. Two launches:
///
/// - Static, `mpirun -n N ./app` (or `mpiexec`, `srun`, with a hostfile for a cluster):
///   rank 0 runs `main`, ranks 1 to N − 1 are the workers of
///   [`MpiPoolExecutor`](crate::MpiPoolExecutor).
/// - Dynamic, `mpirun -n 1 ./app` or plain `./app` (a singleton): the world has one rank,
///   and [`MpiPoolExecutorBuilder::max_workers`](crate::MpiPoolExecutorBuilder::max_workers)
///   starts workers with `MPI_Comm_spawn`: copies of this executable, with the same
///   arguments, in which `init` serves the tasks and never returns.
///
/// Every rank must run the same build (each task carries the build fingerprint, and a worker
/// of another build answers [`Error::BuildMismatch`] without running anything; the
/// fingerprint includes the executable's size and modification time, so copy it to the nodes
/// with its time stamp, e.g. `rsync -t`, or run it from a shared file system).
///
/// # Errors
///
/// [`Error::InvalidState`] when MPI was started already (by another `init`, or by rsmpi
/// directly: then use [`comm_executor`](crate::comm_executor)), or when the MPI library
/// cannot serialize calls from several threads (`MPI_THREAD_SERIALIZED`), which the
/// executor's engine thread needs.
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
    if let Some(parent) = world.parent() {
        // A worker spawned by a single-rank start: rank 0 of the parent's group sends the
        // tasks. Dropping the parent communicator disconnects from it (`MPI_Comm_disconnect`,
        // which the parent's session makes too), before `MPI_Finalize`.
        parent
            .process_at_rank(0)
            .send_with_tag(&Hello::here().encode()[..], wire::HELLO);
        serve(&parent, 0);
        drop(parent);
        drop(world);
        drop(universe);
        std::process::exit(0);
    }
    let size = world.size();
    if world.rank() != 0 {
        serve(&world, 0);
        drop(world);
        drop(universe);
        std::process::exit(0);
    }
    let peers = (size > 1).then(|| Arc::new(Peers::new(Box::new(world), (1..size).collect())));
    Ok(Mpi {
        universe: Some(universe),
        size: usize::try_from(size).unwrap_or(1),
        peers: RefCell::new(peers),
        _main_thread: PhantomData,
    })
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

    /// The number of ranks in the world, rank 0 included (spawned workers are not in it).
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

    /// The number of worker ranks: the world's size less rank 0 after a static launch; the
    /// spawned workers after a dynamic one (0 until an executor spawned them).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// assert_eq!(mpi.workers() + 1, mpi.size());
    /// ```
    pub fn workers(&self) -> usize {
        self.peers.borrow().as_ref().map_or(0, |p| p.ranks().len())
    }

    /// The worker ranks, spawning `count` of them first when the world has one rank and none
    /// were spawned yet. Called with [`LIVE`] held and no engine running.
    pub(crate) fn peers_for(&self, count: Option<usize>) -> Result<Arc<Peers>> {
        if let Some(peers) = self.peers.borrow().as_ref() {
            return Ok(peers.clone());
        }
        let Some(count) = count else {
            return Err(Error::InvalidState(
                "there are no worker ranks: start the program as `mpirun -n N ./app` with N of \
                 at least 2, or spawn workers with MpiPoolExecutor::builder().max_workers(n)",
            ));
        };
        let comm = spawn(count)?;
        let ranks: Vec<Rank> = (0..comm.remote_size()).collect();
        let hellos = match hellos(&comm, ranks.len()) {
            Ok(hellos) => hellos,
            Err(e) => {
                // Without knowing the workers the parent could not tell their death: send
                // them off.
                Peers::new(Box::new(comm), ranks).release();
                return Err(e);
            }
        };
        let peers = Arc::new(Peers::watched(Box::new(comm), ranks, hellos));
        *self.peers.borrow_mut() = Some(peers.clone());
        Ok(peers)
    }
}

/// How long spawned workers may take to say who they are: they do it first thing after
/// `MPI_Init`, which the spawn has waited for already.
const HELLO_LIMIT: Duration = Duration::from_secs(60);

/// The [`Hello`] of each of the `count` spawned workers, in rank order.
fn hellos(comm: &InterCommunicator, count: usize) -> Result<Vec<Hello>> {
    let mut hellos: Vec<Option<Hello>> = vec![None; count];
    let deadline = Deadline::after(HELLO_LIMIT);
    let mut missing = count;
    while missing > 0 {
        let Some(probed) = comm
            .any_process()
            .immediate_matched_probe_with_tag(wire::HELLO)
        else {
            if deadline.passed() {
                return Err(Error::Io(std::io::Error::other(format!(
                    "{missing} of the {count} spawned worker ranks did not report within {}s",
                    HELLO_LIMIT.as_secs()
                ))));
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let (bytes, status) = probed.matched_receive_vec::<u8>();
        let slot = usize::try_from(status.source_rank())
            .ok()
            .and_then(|rank| hellos.get_mut(rank));
        let (Some(slot), Some(hello)) = (slot, Hello::decode(&bytes)) else {
            return Err(Error::Protocol(
                "a spawned worker rank sent a malformed hello".into(),
            ));
        };
        if slot.replace(hello).is_none() {
            missing -= 1;
        }
    }
    Ok(hellos.into_iter().flatten().collect())
}

/// Starts `count` copies of this executable, with its arguments, as MPI processes connected
/// to this one (`MPI_Comm_spawn` from the world of one rank): the inter-communicator whose
/// remote group they are.
fn spawn(count: usize) -> Result<InterCommunicator> {
    let failed = |why: String| Error::Io(std::io::Error::other(why));
    let maxprocs = Rank::try_from(count)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            failed(format!(
                "cannot spawn {count} worker ranks: ask for 1 to {}",
                Rank::MAX
            ))
        })?;
    let c_string = |text: &std::ffi::OsStr| {
        CString::new(text.to_string_lossy().into_owned())
            .map_err(|_| failed("a NUL byte in the program's path or arguments".into()))
    };
    let program = c_string(std::env::current_exe()?.as_os_str())?;
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|arg| c_string(&arg))
        .collect::<Result<_>>()?;
    let mut argv: Vec<*mut std::os::raw::c_char> = args
        .iter()
        .map(|arg| arg.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let world = SimpleCommunicator::world();
    let mut errcodes: Vec<std::os::raw::c_int> = vec![0; count];
    // SAFETY: every pointer is valid for the call: `program` and each of `args` are live
    // C strings that `argv` (NULL-terminated, as MPI wants it) points into, `errcodes` has
    // room for `maxprocs` codes, and `comm` is written by the call. The world and the
    // predefined info and error handler objects live until `MPI_Finalize`. The error
    // handler is `MPI_ERRORS_RETURN` only around the spawn, so that a failed spawn (too few
    // slots, a missing program) is an error code here rather than the abort of the job; it
    // is set back to MPI's default right after.
    let (code, comm) = unsafe {
        let mut comm = ffi::RSMPI_COMM_NULL;
        ffi::MPI_Comm_set_errhandler(world.as_raw(), ffi::RSMPI_ERRORS_RETURN);
        let code = ffi::MPI_Comm_spawn(
            program.as_ptr(),
            argv.as_mut_ptr(),
            maxprocs,
            ffi::RSMPI_INFO_NULL,
            0,
            world.as_raw(),
            &mut comm,
            errcodes.as_mut_ptr(),
        );
        ffi::MPI_Comm_set_errhandler(world.as_raw(), ffi::RSMPI_ERRORS_ARE_FATAL);
        (code, comm)
    };
    let started = errcodes
        .iter()
        .filter(|&&c| c == ffi::MPI_SUCCESS as i32)
        .count();
    // SAFETY: the handle is read only to compare it with the null communicator.
    let null = comm == unsafe { ffi::RSMPI_COMM_NULL };
    let spawned = code == ffi::MPI_SUCCESS as i32 && !null;
    if !spawned || started != count {
        // After a failed call the handle means nothing (Open MPI leaves an invalid one).
        if spawned {
            // SAFETY: as below: a live inter-communicator that nothing else owns.
            let partial = unsafe { InterCommunicator::from_raw(comm) };
            let ranks = (0..partial.remote_size()).collect();
            // Let the children that did start go, then disconnect from them.
            Peers::new(Box::new(partial), ranks).release();
        }
        return Err(failed(format!(
            "MPI_Comm_spawn could not start {count} worker ranks (error {code}, {started} \
             started; the MPI library printed why): with more workers than free slots, run \
             `mpirun --oversubscribe -n 1 ./app`, or set OMPI_MCA_rmaps_base_oversubscribe=1 \
             for a program started without mpirun"
        )));
    }
    // SAFETY: the spawn succeeded, so `comm` is a live inter-communicator (its remote group
    // the children), not the parent communicator, and nothing else owns it: the value
    // disconnects it when dropped.
    Ok(unsafe { InterCommunicator::from_raw(comm) })
}

impl Drop for Mpi {
    fn drop(&mut self) {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(engine) = live {
            engine.close(QueuedTasks::Run);
            engine.join();
        }
        if let Some(peers) = self.peers.get_mut().take() {
            if let Some(why) = peers.check() {
                // A lost worker would hang the disconnect and `MPI_Finalize`: end the job,
                // as mpirun does when a rank dies.
                eprintln!("proc-mpi: {why}: calling MPI_Abort");
                SimpleCommunicator::world().abort(1);
            }
            peers.release();
            // The last reference (the engine thread that held another has ended): spawned
            // workers are disconnected here, as they disconnect from their side.
            drop(peers);
        }
        // Dropping the universe calls `MPI_Finalize`.
        drop(self.universe.take());
    }
}
