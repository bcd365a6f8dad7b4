//! `MpiPoolExecutor`: the executor surface of proc-pool over MPI ranks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proc_core::{Error, Result};
use proc_pool::internal::{
    Answer, Completer, Order, QueuedTasks, Runs, Submit, imap_runs, no_captures, pending,
};
use proc_pool::{Future, Imap};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::{Engine, Job, Ownership, Queue, Task};
use crate::peers::Peers;
use crate::session::{LIVE, Mpi};
use crate::wire::{self, Runner};

/// Worker ranks that run functions and give back [`Future`]s: mpi4py's
/// `mpi4py.futures.MPIPoolExecutor`, with the surface of
/// [`ProcessPoolExecutor`](proc_pool::ProcessPoolExecutor).
///
/// Functions are fn items or non-capturing closures (a capture is a compile-time error), as
/// for the local process executor: each rank runs the same build, so a function travels as
/// its offset in that build. Arguments and results travel as postcard bytes in MPI byte
/// messages. The futures are proc-pool's own, so [`wait`](proc_pool::wait) and
/// [`as_completed`](proc_pool::as_completed) take MPI and local futures together.
///
/// # Failures
///
/// - A task that panics fails its own future with [`Error::Panicked`]; the worker rank goes on.
/// - A worker rank that dies (killed, `abort`, a segfault): MPI does not survive the loss of
///   a rank, and Open MPI's `mpirun` then ends the whole job — rank 0 included — with a
///   message that names the rank that died and a non-zero exit status. Rank 0 does not hang,
///   and no future learns of it. This holds for static launches, for workers spawned under
///   `mpirun -n 1`, and for [`comm_executor`](crate::comm_executor). (`MPI_ERRORS_RETURN`
///   would not help: the runtime, not an error handler, ends the job.)
/// - A singleton (`./app` without `mpirun`) whose spawned worker dies is not ended by
///   anything outside: its engine watches the spawned workers' processes while tasks run
///   (about every tenth of a second), fails every pending future with [`Error::BrokenPool`]
///   naming the worker, refuses new tasks, and the [`Mpi`] session's end then calls
///   `MPI_Abort` (exit status 1), since MPI cannot disconnect from or finalize with a lost
///   process. Workers spawned on another host are not watched.
/// - Use a local [`ProcessPoolExecutor`](proc_pool::ProcessPoolExecutor) where tasks may
///   crash their process: it replaces the worker and fails only that task.
/// - A task sent to a worker rank cannot be cancelled ([`Future::cancel`] is `false`); one
///   still queued at rank 0 can. A task of `submit` waits at rank 0 until a worker rank is
///   free, and the chunks of a map are sent one ahead (a worker holds the chunk it runs and
///   the next), so that a worker does not wait a round trip to rank 0 between chunks — until
///   a rank's tasks are seen to be short (under a millisecond each): then it holds up to 16
///   tasks of either kind, sent several in one MPI message and answered several in one
///   reply. A task that runs long does not hold back the answers of those before it: they
///   leave the worker within about a millisecond of being done.
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
pub struct MpiPoolExecutor {
    engine: Arc<Engine>,
}

impl fmt::Debug for MpiPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiPoolExecutor")
            .field("max_workers", &self.engine.workers())
            .finish()
    }
}

impl MpiPoolExecutor {
    /// An executor over every worker rank of the session: the world's ranks 1 to N − 1 after
    /// `mpirun -n N`, or the workers an earlier executor spawned.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the session has no worker rank (the program was not
    /// started by `mpirun -n N` with N ≥ 2, and no executor spawned workers: see
    /// [`with_max_workers`](MpiPoolExecutor::with_max_workers)), or when another executor
    /// was not shut down (one shut down is waited for until its last task is answered).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// assert_eq!(executor.max_workers(), mpi.workers());
    /// ```
    pub fn new(mpi: &Mpi) -> Result<MpiPoolExecutor> {
        MpiPoolExecutor::start(mpi, None)
    }

    /// An executor over `max_workers` worker ranks (mpi4py's
    /// `MPIPoolExecutor(max_workers)`): in a world of one rank (`mpirun -n 1 ./app`, or
    /// `./app` alone) the first call spawns them with `MPI_Comm_spawn` — copies of this
    /// executable, in which [`init`](crate::init) serves tasks — and they stay until the
    /// [`Mpi`] session ends, for this executor and the next ones; after `mpirun -n N`, the
    /// executor uses the first `max_workers` of the N − 1 worker ranks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for 0 workers, for more than the session has (after a static
    /// launch, or once workers were spawned), or when another executor was not shut down;
    /// [`Error::Io`] when MPI could not spawn the workers (too few slots: the message says
    /// how to oversubscribe; a singleton without the MPI runtime's launcher).
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
    /// ```no_run
    /// // Run as `mpirun --oversubscribe -n 1 ./app`: two workers are spawned.
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::with_max_workers(&mpi, 2).unwrap();
    /// assert_eq!(executor.max_workers(), 2);
    /// assert_eq!(executor.submit(|x: u32| x + 1, 1).unwrap().result().unwrap(), 2);
    /// ```
    pub fn with_max_workers(mpi: &Mpi, max_workers: usize) -> Result<MpiPoolExecutor> {
        if max_workers == 0 {
            return Err(Error::InvalidState("max_workers must be at least 1"));
        }
        MpiPoolExecutor::start(mpi, Some(max_workers))
    }

    fn start(mpi: &Mpi, count: Option<usize>) -> Result<MpiPoolExecutor> {
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
        Ok(MpiPoolExecutor { engine })
    }

    /// An executor over an engine that lets its ranks go when it ends.
    pub(crate) fn owning(peers: Arc<Peers>) -> Result<MpiPoolExecutor> {
        let workers = peers.ranks().to_vec();
        let engine = Engine::start(peers, workers, Ownership::Engine)?;
        Ok(MpiPoolExecutor { engine })
    }

    /// The number of worker ranks.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// assert!(proc_mpi::MpiPoolExecutor::new(&mpi).unwrap().max_workers() >= 1);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.engine.workers()
    }

    /// Runs `f(args)` on a worker rank (Python's `submit(fn, *args)`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] after [`shutdown`](MpiPoolExecutor::shutdown),
    /// [`Error::Decode`] for arguments that do not encode.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// let future = executor.submit(|(a, b): (u64, u32)| a.pow(b), (2, 10)).unwrap();
    /// assert_eq!(future.result().unwrap(), 1024);
    /// ```
    ///
    /// A closure that captures something does not compile: a worker rank could not get what
    /// it captured.
    ///
    /// ```compile_fail
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// let offset = 1u64;
    /// let _ = executor.submit(move |x: u64| x + offset, 1);
    /// ```
    pub fn submit<F, A, R>(&self, f: F, args: A) -> Result<Future<R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.engine.check_open()?;
        send(
            &self.engine,
            runner(f),
            &[args],
            decode_one::<R>,
            Queue::AtRoot,
            None,
        )
    }

    /// Runs `f` on every item; the iterator yields the results in input order (Python's
    /// `map`, one item per task). The input is pulled lazily, a few tasks per rank ahead.
    ///
    /// # Errors
    ///
    /// As [`submit`](MpiPoolExecutor::submit); each item's error comes in its place.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// let v: Vec<u32> = executor.map(|x: u32| x * x, 1..=3).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, [1, 4, 9]);
    /// ```
    pub fn map<F, I, A, R>(&self, f: F, iterable: I) -> Result<Map<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_with(f, iterable, 1, None)
    }

    /// Like [`map`](MpiPoolExecutor::map), `chunksize` items per task (one MPI message each
    /// way), and at most `timeout` from this call until the last result: when it passes, the
    /// iterator yields [`Error::Timeout`], cancels what it has not sent, and ends.
    ///
    /// # Errors
    ///
    /// As [`map`](MpiPoolExecutor::map), and [`Error::InvalidState`] for a `chunksize` of 0.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// assert_eq!(executor.map_with(|x: u32| x, 0..1000, 100, None).unwrap().count(), 1000);
    /// ```
    pub fn map_with<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<Map<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let input = iterable.into_iter();
        self.lazy(input, runner(f), chunksize, timeout, Order::Input)
    }

    /// Like [`map_with`](MpiPoolExecutor::map_with) without a time limit, yielding the
    /// results as they come (mpi4py's `map(..., unordered=True)`).
    ///
    /// # Errors
    ///
    /// As [`map_with`](MpiPoolExecutor::map_with).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// let mut v: Vec<u32> = executor.map_unordered(|x: u32| x + 1, 0..10, 3).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, (1..=10).collect::<Vec<_>>());
    /// ```
    pub fn map_unordered<F, I, A, R>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<Map<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let input = iterable.into_iter();
        self.lazy(input, runner(f), chunksize, None, Order::Completion)
    }

    /// The lazy map of `runner` (a `wire::run_items`) over `input`: proc-pool's, with
    /// chunks that wait at the worker ranks, several chunks in one task once the engine has
    /// seen that the items are tiny.
    fn lazy<I, R>(
        &self,
        input: I,
        runner: Runner,
        chunksize: usize,
        timeout: Option<Duration>,
        order: Order,
    ) -> Result<Map<I, R>>
    where
        I: Iterator<Item: Serialize + Send + 'static>,
        R: DeserializeOwned + Send + 'static,
    {
        self.engine.check_open()?;
        let engine = self.engine.clone();
        // How many items this map's next task may carry: one at first, then as the engine
        // sets it from the answers to the map's tasks.
        let run = Arc::new(AtomicUsize::new(1));
        let told = run.clone();
        let submit: Submit<I::Item, R> = Box::new(move |items| {
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
        let workers = self.max_workers();
        imap_runs(
            input,
            chunksize,
            timeout,
            workers,
            order,
            submit,
            Some(runs),
        )
    }

    /// Takes no more tasks (Python's `shutdown(wait, cancel_futures)`): with
    /// `cancel_futures`, the tasks no worker rank has taken are cancelled; with `wait`,
    /// waits until the others are done.
    ///
    /// The worker ranks of a session keep serving until the [`Mpi`] session ends, so another
    /// executor may be made after this one. Those of a [`comm_executor`](crate::comm_executor)
    /// are let go once the last task is answered: they return from their `comm_executor`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mpi = proc_mpi::init().unwrap();
    /// let executor = proc_mpi::MpiPoolExecutor::new(&mpi).unwrap();
    /// let future = executor.submit(|x: u8| x, 5).unwrap();
    /// executor.shutdown(true, false);
    /// assert_eq!(future.result().unwrap(), 5);
    /// assert!(executor.submit(|x: u8| x, 1).is_err());
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.engine.close(QueuedTasks::cancelled_if(cancel_futures));
        if wait {
            self.engine.join();
        }
    }
}

impl Drop for MpiPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// What a worker rank runs for the function `f`, which must capture nothing (a compile-time
/// check): `wire::run_items` of its type.
fn runner<F, A, R>(f: F) -> Runner
where
    F: Fn(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize,
{
    const { no_captures::<F>() };
    let _ = f;
    wire::run_items::<F, A, R>
}

/// Sends `runner` (a `wire::run_items`) over `items` as one task; `decode` makes the
/// future's value of the answer's payload and the number of items; a map's task has `run`,
/// where the engine says how many items the map's next tasks may carry.
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

/// The value of a map chunk's answer: each item's outcome.
fn decode_chunk<R: DeserializeOwned>(payload: &[u8], count: usize) -> Result<Answer<R>> {
    wire::decode_reply::<R>(payload, count).map(Answer::Mixed)
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
