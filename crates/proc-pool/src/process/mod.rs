//! The engine under `Pool` and `ProcessPoolExecutor`: worker processes, the queue of tasks,
//! and the manager thread that hands tasks out, reads answers, and replaces workers that die.
//!
//! Each worker has its own link, and runs what it is sent in order, answering each task
//! before it starts the next; the manager keeps, per worker, the tasks sent and not yet
//! answered. So when a worker dies the manager knows exactly which task it was running (the
//! first unanswered one, which fails with `WorkerDied` if the worker marked it started on
//! the board) and which it had not started yet (sent again to another worker). Tasks and
//! answers that hold no handles go through shared memory (the rings of each worker's
//! `board`: small ones always, a large chunk of `map` or its answer when the ring has room),
//! and each worker is sent many tasks ahead, so that a worker finds its next task waiting
//! when it finishes one and neither side makes a system call for it while both are busy.

mod board;
mod manager;
pub(crate) mod worker;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use proc_core::internal::{Incoming, Outgoing, unwind};
use proc_core::{Error, Link, Result, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::call::{Call, InitOutput};
use crate::future::{Future, QueuedTasks};
use crate::map::{Answer, ChunkFuture, SendChunks, Submit};
use worker::{AppendResults, Frame, OneResult, REPLY_HEADER, Single};

/// Makes the frame that runs the initializer in a new worker.
pub(crate) type MakeInit = Arc<dyn Fn() -> Result<Outgoing> + Send + Sync>;

/// How an engine's workers are started and kept.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) method: StartMethod,
    pub(crate) init: Option<MakeInit>,
    pub(crate) max_tasks: Option<usize>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) broken_on_crash: bool,
    /// The workers' names start with this.
    pub(crate) name: &'static str,
}

/// Where a task's answer goes.
pub(crate) trait Sink: Send {
    /// Marks the task running; `false` when it was cancelled and must not be sent.
    fn set_running(&self) -> bool;
    /// Decodes an `OK` answer and finishes the task with it.
    fn deliver(self: Box<Self>, frame: Frame<'_>);
    /// Finishes the task with an error.
    fn fail(self: Box<Self>, error: Error);
}

/// A task waiting for a worker.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) frame: Outgoing,
    pub(crate) sink: Box<dyn Sink>,
    /// How often sending it failed: a task that every worker fails to take is failed
    /// itself, instead of going round for ever.
    pub(crate) attempts: u8,
    /// The task's `procs.pool.task` span, made where it was submitted (a child of the
    /// submitter's span): its submit, start and finish events are recorded in it.
    pub(crate) span: tracing::Span,
}

impl Job {
    fn new(id: u64, frame: Outgoing, sink: Box<dyn Sink>) -> Job {
        Job {
            id,
            frame,
            sink,
            attempts: 0,
            span: tracing::trace_span!("procs.pool.task", pool = "process", task = id),
        }
    }
}

/// The manager's answer to a request to cancel a running task.
#[derive(Default)]
pub(crate) struct CancelReply {
    answer: Mutex<Option<bool>>,
    answered: Condvar,
}

impl CancelReply {
    pub(crate) fn answer(&self, cancelled: bool) {
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancelled);
        self.answered.notify_all();
    }

    /// Waits for the answer; `false` if the manager ends without one.
    fn wait(&self, shared: &Shared) -> bool {
        let mut answer = self.answer.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(cancelled) = *answer {
                return cancelled;
            }
            if shared.lock().ended {
                return false;
            }
            answer = self
                .answered
                .wait_timeout(answer, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Takes tasks.
    Open,
    /// Takes no more tasks, runs those it has, then the workers end.
    Closing,
    /// Stops at once: the workers are killed, unfinished tasks are cancelled.
    Terminating,
}

struct State {
    jobs: VecDeque<Job>,
    cancels: Vec<(u64, Arc<CancelReply>)>,
    /// A request to cancel every task sent ahead to a worker that has not started it.
    cancel_ahead: Option<Arc<CancelReply>>,
    mode: Mode,
    /// Set once the pool is broken; later submissions get a copy.
    broken: Option<Error>,
    /// Whether the manager thread has ended.
    ended: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The manager sleeps on the other end when it has nothing to do.
    wake: Link,
    sleeping: AtomicBool,
    next_id: AtomicU64,
    settings: Settings,
    /// The manager thread, which must never wait for itself.
    manager: OnceLock<ThreadId>,
    /// Signalled when the manager thread has ended.
    ended: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_manager_thread(&self) -> bool {
        self.manager.get() == Some(&std::thread::current().id())
    }

    /// Wakes the manager if it sleeps.
    fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.wake.send_bytes(&[]);
        }
    }
}

/// A pool of worker processes with its manager thread.
pub(crate) struct Engine {
    shared: Arc<Shared>,
    manager: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Starts the workers (here, before any thread of the engine exists, so that `Fork`
    /// works from a single-threaded program), then the manager thread.
    pub(crate) fn start(settings: Settings) -> Result<Engine> {
        if settings.workers == 0 {
            return Err(Error::InvalidState(
                "a pool needs at least one worker process",
            ));
        }
        if settings.max_memory.is_some() && proc_core::internal::resident_memory().is_none() {
            return Err(Error::Unsupported(
                "this platform does not report a process's memory, so max_memory_per_child \
                 cannot be checked",
            ));
        }
        let mut slots = Vec::with_capacity(settings.workers);
        for number in 1..=settings.workers {
            slots.push(manager::Slot::start(&settings, settings.method, number)?);
        }
        // After the workers: a forked worker would hold copies of it.
        let (wake, woken) = Link::pair()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                cancels: Vec::new(),
                cancel_ahead: None,
                mode: Mode::Open,
                broken: None,
                ended: false,
            }),
            wake,
            sleeping: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            settings,
            manager: OnceLock::new(),
            ended: Condvar::new(),
        });
        let for_manager = shared.clone();
        let manager = std::thread::Builder::new()
            .name(format!("{}-manager", shared.settings.name))
            .spawn(move || manager::run(for_manager, slots, woken))?;
        Ok(Engine {
            shared,
            manager: Mutex::new(Some(manager)),
        })
    }

    /// The number of worker processes the engine keeps.
    pub(crate) fn workers(&self) -> usize {
        self.shared.settings.workers
    }

    /// A fresh task id.
    pub(crate) fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a task.
    ///
    /// # Errors
    ///
    /// `InvalidState` after `close`/`terminate`, or the pool's error once it is broken; the
    /// task's sink is dropped unfinished then.
    pub(crate) fn submit(&self, job: Job) -> Result<()> {
        if job.frame.len() > proc_core::codec::DEFAULT_MAX_FRAME {
            return Err(Error::Decode(format!(
                "the task's arguments take {} bytes, more than the {} a frame may hold",
                job.frame.len(),
                proc_core::codec::DEFAULT_MAX_FRAME
            )));
        }
        let mut state = self.shared.lock();
        check_open(&state)?;
        tracing::trace!(parent: &job.span, task = job.id, "procs.pool.submit");
        state.jobs.push_back(job);
        drop(state);
        self.shared.wake();
        Ok(())
    }

    /// Fails with the pool's error when it takes no tasks.
    pub(crate) fn check_open(&self) -> Result<()> {
        check_open(&self.shared.lock())
    }

    /// A handle that asks the manager to stop a running task, for `Future::cancel`.
    pub(crate) fn canceller(&self, id: u64) -> Box<dyn Fn() -> bool + Send + Sync> {
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        Box::new(move || {
            let Some(shared) = shared.upgrade() else {
                return false;
            };
            // A done-callback runs on the manager thread, which cannot wait for its own
            // answer: there a running task is not cancelled, as a thread's is not.
            if shared.on_manager_thread() {
                return false;
            }
            let reply = Arc::new(CancelReply::default());
            {
                let mut state = shared.lock();
                if state.ended {
                    return false;
                }
                state.cancels.push((id, reply.clone()));
            }
            shared.wake();
            reply.wait(&shared)
        })
    }

    /// Takes no more tasks; those queued that no worker has taken run or are cancelled, as
    /// `queued` says. Cancelled are those queued here, and (unless this is the manager
    /// thread, which cannot wait for itself) those sent ahead to a worker behind the one it
    /// runs, if it has not started them.
    pub(crate) fn close(&self, queued: QueuedTasks) {
        let mut state = self.shared.lock();
        if state.mode == Mode::Open {
            state.mode = Mode::Closing;
        }
        let mut ahead = None;
        let cancelled: Vec<Job> = if queued == QueuedTasks::Cancel {
            if !state.ended && !self.shared.on_manager_thread() {
                let reply = Arc::new(CancelReply::default());
                state.cancel_ahead = Some(reply.clone());
                ahead = Some(reply);
            }
            state.jobs.drain(..).collect()
        } else {
            Vec::new()
        };
        drop(state);
        for job in cancelled {
            job.sink.fail(Error::Cancelled);
        }
        self.shared.wake();
        if let Some(reply) = ahead {
            reply.wait(&self.shared);
        }
    }

    /// Kills the workers at once; unfinished tasks fail with `Cancelled`.
    pub(crate) fn terminate(&self) {
        self.shared.lock().mode = Mode::Terminating;
        self.shared.wake();
        self.join_manager();
    }

    /// Whether `close` or `terminate` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().mode != Mode::Open
    }

    /// Waits until the manager has ended: every task ran and every worker was reaped.
    ///
    /// On the manager thread itself (a done-callback) this returns at once: the thread
    /// cannot wait for its own end.
    pub(crate) fn join_manager(&self) {
        if self.shared.on_manager_thread() {
            return;
        }
        let handle = self
            .manager
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
            return;
        }
        // Another caller joins the thread; wait with it.
        let mut state = self.shared.lock();
        while !state.ended {
            state = self
                .shared
                .ended
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn check_open(state: &State) -> Result<()> {
    if let Some(broken) = &state.broken {
        return Err(broken.clone());
    }
    match state.mode {
        Mode::Open => Ok(()),
        Mode::Closing => Err(Error::InvalidState(
            "the pool is closed and takes no more tasks",
        )),
        Mode::Terminating => Err(Error::InvalidState(
            "the pool was terminated and takes no more tasks",
        )),
    }
}

/// Decodes the results of an `OK` answer to a task of `count` items: the values at the end
/// of `values` when all are values (`None`), each item's outcome otherwise (see
/// `Answer::Encoded`). On an error `values` is as it was; a `Deserialize` impl that panics
/// is that task's error, not the end of the thread that decodes.
fn decode_answer<R: DeserializeOwned>(
    mut frame: Incoming,
    count: usize,
    values: &mut Vec<R>,
) -> Result<Option<Vec<Result<R>>>> {
    let before = values.len();
    let seed = AppendResults {
        values: &mut *values,
    };
    let decoded = proc_core::internal::unwind::catch(|| frame.decode_seed(REPLY_HEADER, seed))
        .map_err(Error::from)
        .and_then(|decoded| decoded);
    let len = match &decoded {
        Ok(None) => values.len() - before,
        Ok(Some(outcomes)) => outcomes.len(),
        Err(_) => 0,
    };
    let outcome = match decoded {
        Ok(_) if len != count => Err(miscount(count, len)),
        Ok(mixed) => Ok(mixed.map(|outcomes| {
            outcomes
                .into_iter()
                .map(|r| r.map_err(Error::from))
                .collect()
        })),
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        // Values of a miscounted answer, or read before its error or panic.
        values.truncate(before);
    }
    outcome
}

/// The outcome of a one-item task from its `OK` answer, as [`decode_answer`] with a count
/// of 1 gives it, without the vector.
fn decode_one<R: DeserializeOwned>(frame: Frame<'_>) -> Result<R> {
    let results: OneResult<R> = proc_core::internal::unwind::catch(|| frame.decode(REPLY_HEADER))
        .map_err(Error::from)??;
    let (first, len) = match results {
        OneResult::AllOk(Single { first, len }) => (first.map(Ok), len),
        OneResult::Mixed(Single { first, len }) => (first.map(|r| r.map_err(Error::from)), len),
    };
    match first {
        Some(outcome) if len == 1 => outcome,
        _ => Err(miscount(1, len)),
    }
}

/// The error of an answer with `len` results to a task of `count` items.
fn miscount(count: usize, len: usize) -> Error {
    Error::Protocol(format!(
        "a worker answered a task of {count} items with {len} results"
    ))
}

/// One task's argument, encoded as the one-item sequence that `run_items` reads (the bytes
/// of `vec![arg]`) without a vector for it.
struct OneItem<A>(A);

impl<A: Serialize> Serialize for OneItem<A> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(1))?;
        seq.serialize_element(&self.0)?;
        seq.end()
    }
}

/// The sink of a task of one item: its future gets the item's result.
pub(crate) struct One<R>(pub(crate) Future<R>);

impl<R: DeserializeOwned + Send + 'static> Sink for One<R> {
    fn set_running(&self) -> bool {
        self.0.set_running()
    }

    fn deliver(self: Box<Self>, frame: Frame<'_>) {
        self.0.finish(decode_one::<R>(frame));
    }

    fn fail(self: Box<Self>, error: Error) {
        self.0.finish(Err(error));
    }
}

/// A task that the pool drops without an answer (a bug of ours) must still end its future.
/// Only then is the error made: a sink is dropped after every answer, and the error's
/// message is an allocation (and a free) per task that no one would see.
impl<R> Drop for One<R> {
    fn drop(&mut self) {
        if !self.0.done() {
            self.0.finish(Err(lost()));
        }
    }
}

fn lost() -> Error {
    Error::BrokenPool("the pool lost the task without an answer".into())
}

/// The sink of a chunk of items: its future gets every item's result.
pub(crate) struct Chunk<R> {
    pub(crate) future: ChunkFuture<R>,
    pub(crate) count: usize,
}

/// As for [`One`]: the error only for a chunk dropped without an answer.
impl<R> Drop for Chunk<R> {
    fn drop(&mut self) {
        if !self.future.done() {
            self.future.finish(Err(lost()));
        }
    }
}

impl<R: DeserializeOwned + Send + 'static> Sink for Chunk<R> {
    fn set_running(&self) -> bool {
        self.future.set_running()
    }

    fn deliver(self: Box<Self>, frame: Frame<'_>) {
        self.future.finish(Ok(Answer::Encoded {
            frame: frame.into_incoming(),
            count: self.count,
            decode: decode_answer::<R>,
        }));
    }

    fn fail(self: Box<Self>, error: Error) {
        self.future.finish(Err(error));
    }
}

/// What `Future::cancel` does to a task of a process pool that a worker runs already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCancel {
    /// Kills the worker, and a new one takes its place (the executor's `submit`).
    KillWorker,
    /// Nothing: the task runs to its end (`Pool::apply_async`, whose result Python cannot
    /// cancel).
    LetRun,
}

impl Engine {
    /// Queues `C` on one item; the future gets its result, and `on_cancel` says what
    /// `cancel` does once the task runs.
    pub(crate) fn submit_one<C, A, R>(
        &self,
        args: A,
        future: Future<R>,
        on_cancel: OnCancel,
    ) -> Result<()>
    where
        C: Call<A, Output = R>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let id = self.next_id();
        let mut bytes = Vec::with_capacity(ONE_ITEM_FRAME);
        bytes.extend_from_slice(&worker::header(worker::JOB, id, worker::run_items::<C, A>));
        let frame = Outgoing::encode(bytes, OneItem(args))?;
        if on_cancel == OnCancel::KillWorker {
            future.set_canceller(self.canceller(id));
        }
        self.submit(Job::new(id, frame, Box::new(One(future))))
    }

    /// The [`Submit`] of `map` and `imap`: queues `C` on each chunk of items it is given, as
    /// one task per chunk.
    pub(crate) fn chunks<C, A, R>(self: &Arc<Engine>) -> Submit<A, R>
    where
        C: Call<A, Output = R>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let engine = self.clone();
        let mut size = FrameSize::default();
        Box::new(move |items| engine.submit_chunk::<C, A, R>(items, &mut size))
    }

    /// The [`SendChunks`] of `map` and `map_async`: queues `C` on each chunk of items as
    /// one task, encoding the items as it takes them from the input.
    pub(crate) fn chunk_encoder<C, A, R>(self: &Arc<Engine>) -> ChunkEncoder<C, A, R>
    where
        C: Call<A, Output = R>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ChunkEncoder {
            engine: self.clone(),
            size: FrameSize::default(),
            call: std::marker::PhantomData,
        }
    }

    /// Queues `C` on each of `items` as one task, its frame sized by `size`.
    fn submit_chunk<C, A, R>(&self, items: Vec<A>, size: &mut FrameSize) -> Result<ChunkFuture<R>>
    where
        C: Call<A, Output = R>,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let id = self.next_id();
        let count = items.len();
        let mut header = Vec::with_capacity(size.guess(count));
        header.extend_from_slice(&worker::header(worker::JOB, id, worker::run_items::<C, A>));
        let frame = Outgoing::encode(header, items)?;
        size.learn(count, frame.len());
        self.submit_frame(id, frame, count)
    }

    /// Queues the task `id` of `frame`, a chunk of `count` items.
    fn submit_frame<R>(&self, id: u64, frame: Outgoing, count: usize) -> Result<ChunkFuture<R>>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let future = Future::pending();
        self.submit(Job::new(
            id,
            frame,
            Box::new(Chunk {
                future: future.clone(),
                count,
            }),
        ))?;
        Ok(future)
    }
}

/// Sends the chunks of an eager map to an engine: `C` on each chunk, its items encoded as
/// they are taken from the input (see [`Engine::chunk_encoder`]).
pub(crate) struct ChunkEncoder<C, A, R> {
    engine: Arc<Engine>,
    size: FrameSize,
    call: std::marker::PhantomData<Calls<C, A, R>>,
}

/// What a [`ChunkEncoder`] sends: `C` on items of `A`, giving `R` (a function type, so that
/// the encoder is `Send` whatever they are).
type Calls<C, A, R> = fn() -> (C, A, R);

impl<C, A, R> SendChunks<A, R> for ChunkEncoder<C, A, R>
where
    C: Call<A, Output = R>,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn send_chunk<I: Iterator<Item = A>>(
        &mut self,
        items: &mut I,
        chunksize: usize,
    ) -> Result<Option<ChunkFuture<R>>> {
        let id = self.engine.next_id();
        let mut header = Vec::with_capacity(self.size.guess(chunksize.min(items.size_hint().0)));
        header.extend_from_slice(&worker::header(worker::JOB, id, worker::run_items::<C, A>));
        // The iterator runs here: its panic is the map's error, as while a `Submit`'s chunk
        // is collected (and so is one of an item's `Serialize`).
        let (frame, count) =
            unwind::catch(|| Outgoing::encode_seq(header, items.by_ref().take(chunksize)))??;
        if count == 0 {
            return Ok(None);
        }
        self.size.learn(count, frame.len());
        self.engine.submit_frame(id, frame, count).map(Some)
    }
}

/// The room made at once for the frame of a task of one item: the header and small
/// arguments fit, so encoding them grows no buffer (larger ones grow it as they go).
const ONE_ITEM_FRAME: usize = 64;

/// What the last chunk's frame of a `map` took, so that the next one is encoded into a
/// buffer of about its size at once rather than one that grows (and copies itself) a dozen
/// times on the way.
#[derive(Debug, Default)]
pub(crate) struct FrameSize {
    /// The last frame's length in bytes, and how many items it held.
    last: Option<(usize, usize)>,
}

impl FrameSize {
    /// The room to make for a frame of `count` items: the last frame's bytes per item, a
    /// little more for items that encode longer, and never more than twice the last frame
    /// (one large item before many small ones must not make a huge buffer).
    fn guess(&self, count: usize) -> usize {
        let Some((len, items)) = self.last else {
            return worker::HEADER;
        };
        let per_item = len.div_ceil(items.max(1));
        let room = per_item.saturating_mul(count).saturating_add(per_item);
        room.saturating_add(room / 16).min(len.saturating_mul(2))
    }

    fn learn(&mut self, count: usize, len: usize) {
        self.last = Some((len, count));
    }
}

/// The frame maker of an initializer `C(args)`, sent to every new worker.
pub(crate) fn make_init<C, A>(args: A) -> MakeInit
where
    C: Call<A>,
    C::Output: InitOutput,
    A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    Arc::new(move || {
        let header = worker::header(worker::INIT, 0, worker::run_init::<C, A>);
        Outgoing::encode(header.to_vec(), args.clone())
    })
}

#[cfg(test)]
mod tests {
    use proc_core::Error;
    use proc_core::internal::Incoming;

    use super::worker::{HEADER, OK, Remote, Results, reply_header};
    use super::{Frame, FrameSize, OneItem, decode_one};

    /// An `OK` answer with `results`, as a worker sends it.
    fn answer(results: &Results<String>) -> Vec<u8> {
        let mut bytes = reply_header(OK, 7).to_vec();
        proc_core::codec::encode_into(results, &mut bytes).unwrap();
        bytes
    }

    /// The outcome read from `results` as a record of the ring, and as a frame of the link
    /// (both the same).
    fn outcome(results: &Results<String>) -> proc_core::Result<String> {
        let mut record = answer(results);
        let from_ring = decode_one::<String>(Frame::Ring(&mut record));
        let from_link = decode_one::<String>(Frame::Link(Incoming::from_bytes(answer(results))));
        assert_eq!(format!("{from_ring:?}"), format!("{from_link:?}"));
        // The record stays in the manager's buffer.
        assert_eq!(record, answer(results));
        from_ring
    }

    #[test]
    fn one_items_argument_has_the_bytes_of_a_vector_of_it() {
        let arg = (3u8, "three".to_string());
        assert_eq!(
            proc_core::codec::encode(&OneItem(arg.clone())).unwrap(),
            proc_core::codec::encode(&vec![arg]).unwrap()
        );
    }

    #[test]
    fn a_chunks_values_go_to_the_end_of_the_output_and_a_bad_answer_leaves_it_as_it_was() {
        let decode = |results: &Results<String>, count: usize, values: &mut Vec<String>| {
            super::decode_answer(Incoming::from_bytes(answer(results)), count, values)
        };
        let mut values = vec!["a".to_string()];
        let all = Results::AllOk(vec!["b".into(), "c".into()]);
        assert!(decode(&all, 2, &mut values).unwrap().is_none());
        assert_eq!(values, ["a", "b", "c"]);
        let mixed = Results::Mixed(vec![Ok("d".into()), Err(Remote::Failed("e".into()))]);
        let outcomes = decode(&mixed, 2, &mut values).unwrap().unwrap();
        assert_eq!(outcomes[0].as_ref().unwrap(), "d");
        assert!(matches!(&outcomes[1], Err(Error::Decode(m)) if m == "e"));
        assert_eq!(values, ["a", "b", "c"]);
        for (results, count) in [(&all, 3), (&all, 1), (&mixed, 3)] {
            let e = decode(results, count, &mut values).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{e:?}");
            assert_eq!(values, ["a", "b", "c"]);
        }
        // Values, then bytes cut short: the values read before the error are taken back.
        let mut cut = answer(&all);
        cut.pop();
        let e = super::decode_answer(Incoming::from_bytes(cut), 2, &mut values).unwrap_err();
        assert!(matches!(e, Error::Decode(_)), "{e:?}");
        assert_eq!(values, ["a", "b", "c"]);
    }

    #[test]
    fn a_one_item_answer_reads_as_its_one_outcome_and_a_miscount_fails() {
        let value = outcome(&Results::AllOk(vec!["x".into()]));
        assert_eq!(value.unwrap(), "x");
        let failed = Results::Mixed(vec![Err(Remote::Failed("no".into()))]);
        let failed = outcome(&failed).unwrap_err();
        assert!(
            matches!(&failed, Error::Decode(m) if m == "no"),
            "{failed:?}"
        );
        let ok = outcome(&Results::Mixed(vec![Ok("y".into())]));
        assert_eq!(ok.unwrap(), "y");
        for results in [
            Results::AllOk(Vec::new()),
            Results::AllOk(vec!["a".into(), "b".into()]),
            Results::Mixed(vec![Ok("a".into()), Err(Remote::Failed("b".into()))]),
        ] {
            let e = outcome(&results).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{e:?}");
        }
        // Bytes that are no answer at all.
        let e = decode_one::<String>(Frame::Ring(&mut vec![0; 12])).unwrap_err();
        assert!(matches!(e, Error::Decode(_) | Error::Protocol(_)), "{e:?}");
    }

    #[test]
    fn a_chunks_frame_is_sized_by_the_last_one_and_never_past_twice_it() {
        let mut size = FrameSize::default();
        assert_eq!(size.guess(1_000), HEADER);
        // 1,000 items of 3 bytes: room for 1,000 more, with a little to spare.
        size.learn(1_000, 3_000);
        let guess = size.guess(1_000);
        assert!((3_000..3_400).contains(&guess), "{guess}");
        // One huge item, then a million small ones: no more than twice the last frame.
        size.learn(1, 50 << 20);
        assert_eq!(size.guess(1_000_000), 100 << 20);
        size.learn(usize::MAX, usize::MAX);
        assert_eq!(size.guess(usize::MAX), usize::MAX);
    }
}
