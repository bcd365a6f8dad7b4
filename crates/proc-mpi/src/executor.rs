//! `MpiPoolExecutor`: the executor surface of proc-pool over MPI ranks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proc_core::{Error, Result};
use proc_pool::internal::{Answer, Completer, QueuedTasks, Runs, Submit, pending};
use proc_pool::{Backend, Executor, Future, Imap, TaskFn, Wire};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::{Engine, Job, Ownership, Queue, Task};
use crate::peers::Peers;
use crate::session::{LIVE, Mpi};
use crate::wire::{self, Runner};

/// Worker ranks that run functions and give back [`Future`]s: mpi4py's
/// `mpi4py.futures.MPIPoolExecutor`. It is proc-pool's [`Executor`] over [`Ranks`], so its
/// methods are those of [`ProcessPoolExecutor`](proc_pool::ProcessPoolExecutor):
/// [`new`](Executor::new)`(&mpi)`, [`builder`](Executor::builder) (for `max_workers`),
/// [`submit`](Executor::submit), [`map`](Executor::map), [`map_with`](Executor::map_with),
/// [`map_unordered`](Executor::map_unordered), [`shutdown`](Executor::shutdown).
///
/// Functions are fn items or non-capturing closures (a capture is a compile-time error), as
/// for the local process executor: each rank runs the same build, so a function travels as
/// its offset in that build. Arguments and results travel as postcard bytes in MPI byte
/// messages. The futures are proc-pool's own, so [`wait`](proc_pool::wait) and
/// [`as_completed`](proc_pool::as_completed) take MPI and local futures together.
///
/// # Failures
///
/// - A task that panics fails its own future with
///   [`Error::Panicked`](proc_core::Error::Panicked); the worker rank goes on.
/// - A worker rank that dies (killed, `abort`, a segfault): MPI does not survive the loss of
///   a rank, and Open MPI's `mpirun` then ends the whole job — rank 0 included — with a
///   message that names the rank that died and a non-zero exit status. Rank 0 does not hang,
///   and no future learns of it. This holds for static launches, for workers spawned under
///   `mpirun -n 1`, and for [`comm_executor`](crate::comm_executor). (`MPI_ERRORS_RETURN`
///   would not help: the runtime, not an error handler, ends the job.)
/// - A singleton (`./app` without `mpirun`) whose spawned worker dies is not ended by
///   anything outside: its engine watches the spawned workers' processes while tasks run
///   (about every tenth of a second), fails every pending future with
///   [`Error::BrokenPool`](proc_core::Error::BrokenPool) naming the worker, refuses new
///   tasks, and the [`Mpi`] session's end then calls `MPI_Abort` (exit status 1), since MPI
///   cannot disconnect from or finalize with a lost process. Workers spawned on another host
///   are not watched.
/// - Use a local [`ProcessPoolExecutor`](proc_pool::ProcessPoolExecutor) where tasks may
///   crash their process: it replaces the worker and fails only that task.
/// - A task sent to a worker rank cannot be cancelled ([`Future::cancel`] is `false`); one
///   still queued at rank 0 can. A task of `submit` waits at rank 0 until a worker rank is
///   free, and the chunks of a map are sent one ahead (a worker holds the chunk it runs and
///   the next), so that a worker does not wait a round trip to rank 0 between chunks — until
///   a rank's tasks are seen to be short (under a millisecond each): then it holds up to 16
///   tasks of either kind (of a map's chunks, about a millisecond of them, up to 256), sent
///   several in one MPI message and answered several in one reply. Once a map's answers show
///   its items to be tiny, its next tasks carry several chunks each (about 10 µs of items,
///   up to 64), each item still with its own outcome; every map starts at one chunk per task.
///   A task that runs long does not hold back the answers of those before it: they leave the
///   worker within about a millisecond of being done.
///
/// Dropping the executor is `shutdown(wait = true)`. One executor uses the worker ranks at a
/// time.
///
/// # Examples
///
/// ```no_run
/// // Run as `mpirun -n 3 ./app`.
/// use proc_mpi::MpiPoolExecutor;
///
/// fn main() {
///     proc_mpi::core::init();
///     let mpi = proc_mpi::init().unwrap();
///     let executor = MpiPoolExecutor::new(&mpi).unwrap();
///     let future = executor.submit(|x: u64| x * x, 12).unwrap();
///     assert_eq!(future.result().unwrap(), 144);
/// }
/// ```
pub type MpiPoolExecutor = Executor<Ranks>;

/// The worker ranks of an [`MpiPoolExecutor`]: its [`Backend`]. `MpiPoolExecutor::new(&mpi)`
/// takes every worker rank of the session: the world's ranks 1 to N − 1 after `mpirun -n N`,
/// or the workers an earlier executor spawned.
///
/// # Errors
///
/// `new` fails with [`Error::InvalidState`] when the session has no worker rank (the program
/// was not started by `mpirun -n N` with N ≥ 2, and no executor spawned workers: see
/// [`MpiPoolExecutorBuilder::max_workers`]), or when another executor was not shut down (one
/// shut down is waited for until its last task is answered).
///
/// # Examples
///
/// ```no_run
/// let mpi = proc_mpi::init().unwrap();
/// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
/// assert_eq!(executor.max_workers(), mpi.workers());
/// ```
pub struct Ranks {
    engine: Arc<Engine>,
}

impl fmt::Debug for Ranks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ranks")
            .field("workers", &self.engine.workers())
            .finish()
    }
}

impl Ranks {
    fn start(mpi: &Mpi, count: Option<usize>) -> Result<Ranks> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = live.as_ref() {
            // An executor shut down without waiting (or from its own done-callback) may still
            // be answering its last tasks: this waits for them.
            if !engine.finished() && !engine.is_closed() {
                return Err(Error::InvalidState(
                    "another MpiPoolExecutor uses the worker ranks: shut it down first",
                ));
            }
            engine.join();
        }
        let peers = mpi.peers_for(count)?;
        let ranks = peers.ranks();
        let count = count.unwrap_or(ranks.len());
        if count > ranks.len() {
            return Err(Error::InvalidState(
                "more workers than the session has: a static launch has N − 1 (mpirun -n N), \
                 and workers are spawned once per session, by its first executor",
            ));
        }
        let workers = ranks[..count].to_vec();
        let engine = Engine::start(peers, workers, Ownership::Session)?;
        *live = Some(engine.clone());
        Ok(Ranks { engine })
    }

    /// An executor over an engine that lets its ranks go when it ends.
    pub(crate) fn owning(peers: Arc<Peers>) -> Result<MpiPoolExecutor> {
        let workers = peers.ranks().to_vec();
        let engine = Engine::start(peers, workers, Ownership::Engine)?;
        Ok(Executor::from_backend(Ranks { engine }))
    }
}

impl Backend for Ranks {
    type New<'a> = &'a Mpi;
    type Builder = MpiPoolExecutorBuilder;
    const NAME: &'static str = "MpiPoolExecutor";

    fn start(mpi: &Mpi) -> Result<Ranks> {
        Ranks::start(mpi, None)
    }

    fn workers(&self) -> usize {
        self.engine.workers()
    }

    fn check_open(&self) -> Result<()> {
        self.engine.check_open()
    }

    fn submit<F: TaskFn<A, R>, A: Wire, R: Wire>(&self, args: A) -> Result<Future<R>> {
        self.engine.check_open()?;
        let runner: Runner = wire::run_items::<F, A, R>;
        send(
            &self.engine,
            runner,
            &[args],
            decode_one::<R>,
            Queue::AtRoot,
            None,
        )
    }

    fn chunks<F: TaskFn<A, R>, A: Wire, R: Wire>(&self) -> Submit<A, R> {
        self.map_chunks::<F, A, R>().0
    }

    /// A lazy map's chunks, several in one task once the engine has seen that the map's
    /// items are tiny.
    fn map_chunks<F: TaskFn<A, R>, A: Wire, R: Wire>(&self) -> (Submit<A, R>, Option<Runs>) {
        let engine = self.engine.clone();
        let runner: Runner = wire::run_items::<F, A, R>;
        // How many items this map's next task may carry: one at first, then as the engine
        // sets it from the answers to the map's tasks.
        let run = Arc::new(AtomicUsize::new(1));
        let told = run.clone();
        let submit: Submit<A, R> = Box::new(move |items| {
            let run = Some(told.clone());
            send(
                &engine,
                runner,
                &items,
                decode_chunk::<R>,
                Queue::AtWorker,
                run,
            )
        });
        let runs: Runs = Box::new(move || run.load(Ordering::Relaxed));
        (submit, Some(runs))
    }

    fn close(&self, queued: QueuedTasks) {
        self.engine.close(queued);
    }

    fn join(&self) {
        self.engine.join();
    }
}

/// Settings for an [`MpiPoolExecutor`]: `MpiPoolExecutor::builder().max_workers(n)
/// .build(&mpi)` is mpi4py's `MPIPoolExecutor(max_workers)`.
///
/// # Examples
///
/// ```no_run
/// // Run as `mpirun --oversubscribe -n 1 ./app`: two workers are spawned.
/// let mpi = proc_mpi::init().unwrap();
/// let executor = proc_mpi::MpiPoolExecutor::builder().max_workers(2).build(&mpi).unwrap();
/// assert_eq!(executor.max_workers(), 2);
/// assert_eq!(executor.submit(|x: u32| x + 1, 1).unwrap().result().unwrap(), 2);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug, Clone, Default)]
pub struct MpiPoolExecutorBuilder {
    max_workers: Option<usize>,
}

impl MpiPoolExecutorBuilder {
    /// The number of worker ranks (default: every worker rank of the session). In a world
    /// of one rank (`mpirun -n 1 ./app`, or `./app` alone) the first executor spawns them
    /// with `MPI_Comm_spawn` — copies of this executable, in which [`init`](crate::init)
    /// serves tasks — and they stay until the [`Mpi`] session ends, for this executor and
    /// the next ones; after `mpirun -n N`, the executor uses the first `max_workers` of the
    /// N − 1 worker ranks.
    ///
    /// # Platform-specific behavior
    ///
    /// Spawning needs an MPI with dynamic processes (Open MPI has them, also from a singleton:
    /// it starts its runtime daemon then). Open MPI gives a program as many slots as the
    /// machine has cores; more workers than free slots need `mpirun --oversubscribe -n 1`,
    /// or `OMPI_MCA_rmaps_base_oversubscribe=1` in the environment of a singleton.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = proc_mpi::MpiPoolExecutor::builder().max_workers(2);
    /// ```
    pub fn max_workers(mut self, n: usize) -> MpiPoolExecutorBuilder {
        self.max_workers = Some(n);
        self
    }

    /// The executor over the session's worker ranks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for 0 workers, for more than the session has (after a static
    /// launch, or once workers were spawned), or when another executor was not shut down;
    /// [`Error::Io`] when MPI could not spawn the workers (too few slots: the message says
    /// how to oversubscribe; a singleton without the MPI runtime's launcher).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// assert!(proc_mpi::MpiPoolExecutor::builder().max_workers(0).build(&mpi).is_err());
    /// ```
    pub fn build(self, mpi: &Mpi) -> Result<MpiPoolExecutor> {
        if self.max_workers == Some(0) {
            return Err(Error::InvalidState("max_workers must be at least 1"));
        }
        Ranks::start(mpi, self.max_workers).map(Executor::from_backend)
    }
}

/// Sends `runner` (a `wire::run_items`) over `items` as one task; `decode` makes the
/// future's value of the answer's payload and the number of items; a map's task may have
/// `run`, where the engine says how many items the map's next tasks may carry.
fn send<A: Serialize, T: Send + 'static>(
    engine: &Engine,
    runner: Runner,
    items: &[A],
    decode: fn(&[u8], usize) -> Result<T>,
    queue: Queue,
    run: Option<Arc<AtomicUsize>>,
) -> Result<Future<T>> {
    let id = engine.next_id();
    let message = wire::task(id, runner, items)?;
    let (future, completer) = pending();
    let job = Box::new(Reply {
        completer,
        count: items.len(),
        decode,
    });
    engine.submit(Task {
        id,
        message,
        job,
        queue,
        items: items.len(),
        run,
    })?;
    Ok(future)
}

/// The value of a `submit`'s answer: its one item's outcome.
fn decode_one<R: DeserializeOwned>(payload: &[u8], count: usize) -> Result<R> {
    wire::decode_reply::<R>(payload, count)?
        .into_iter()
        .next()
        .unwrap_or(Err(Error::Protocol("an empty answer".into())))
}

/// The value of a map chunk's answer: its values, or each item's outcome once one failed.
fn decode_chunk<R: DeserializeOwned>(payload: &[u8], count: usize) -> Result<Answer<R>> {
    wire::decode_answer::<R>(payload, count)
}

/// What a future that was never answered gets: its job was dropped unanswered.
fn lost() -> Error {
    Error::BrokenPool(
        "the MPI engine thread of the executor ended before the task was answered".into(),
    )
}

/// The job of a task: the future that its answer finishes.
struct Reply<T> {
    completer: Completer<T>,
    /// The number of items the task carries.
    count: usize,
    decode: fn(&[u8], usize) -> Result<T>,
}

impl<T: Send> Job for Reply<T> {
    fn start(&self) -> bool {
        self.completer.set_running()
    }

    fn done(self: Box<Self>, answer: Result<&[u8]>) {
        let outcome = answer.and_then(|payload| (self.decode)(payload, self.count));
        self.completer.finish(outcome);
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        // A no-op once `done` finished the future.
        self.completer.finish(Err(lost()));
    }
}

/// The lazy iterator of [`MpiPoolExecutor::map`] and its kin: proc-pool's [`Imap`], which
/// pulls from the input only as results are taken, with a bounded number of chunks in
/// flight.
///
/// Dropping it cancels the chunks not yet sent to a worker rank.
///
/// # Examples
///
/// ```no_run
/// let mpi = proc_mpi::init().unwrap();
/// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
/// let map: proc_mpi::Map<_, u8> = executor.map(|x: u8| x, vec![1, 2]).unwrap();
/// assert_eq!(map.count(), 2);
/// ```
pub type Map<I, R> = Imap<I, R>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executor_and_its_iterator_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<MpiPoolExecutor>();
        send::<Map<std::vec::IntoIter<u8>, u8>>();
    }

    // A job that the engine drops unanswered (its thread died) fails its future, or its
    // chunk of a map, instead of leaving it pending forever.
    #[test]
    fn a_dropped_job_fails_its_future() {
        let (future, completer) = pending::<u8>();
        let job: Box<dyn Job> = Box::new(Reply {
            completer,
            count: 1,
            decode: decode_one::<u8>,
        });
        assert!(job.start());
        drop(job);
        assert!(matches!(future.result(), Err(Error::BrokenPool(_))));
    }

    #[test]
    fn a_finished_job_keeps_its_outcome_when_dropped() {
        let (future, completer) = pending::<u8>();
        let job: Box<dyn Job> = Box::new(Reply {
            completer,
            count: 1,
            decode: decode_one::<u8>,
        });
        job.done(Err(Error::Cancelled));
        assert!(future.cancelled());
    }

    #[test]
    fn a_dropped_chunk_fails_and_a_cancelled_one_is_not_sent() {
        let (chunk, completer) = pending::<Answer<u8>>();
        let job: Box<dyn Job> = Box::new(Reply {
            completer,
            count: 2,
            decode: decode_chunk::<u8>,
        });
        drop(job);
        assert!(matches!(chunk.into_result(), Err(Error::BrokenPool(_))));

        let (chunk, completer) = pending::<Answer<u8>>();
        let job: Box<dyn Job> = Box::new(Reply {
            completer,
            count: 2,
            decode: decode_chunk::<u8>,
        });
        assert!(chunk.cancel());
        assert!(!job.start());
    }
}
