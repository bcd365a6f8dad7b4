//! Rank 0's engine: one thread that makes every MPI call of an executor, hands tasks to the
//! worker ranks — several in one message when several go to one rank — and finishes futures
//! with their answers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::request::{Request, StaticScope};
use mpi::topology::{Communicator, Rank};
use proc_core::{Error, Result};
use proc_pool::internal::QueuedTasks;

use crate::backoff::Backoff;
use crate::peers::Peers;
use crate::wire;

/// A task on its way: the message, and what to do with its answer.
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) message: Vec<u8>,
    pub(crate) job: Box<dyn Job>,
    pub(crate) queue: Queue,
    /// How many items it carries.
    pub(crate) items: usize,
    /// For a map's task: where the engine says how many items the map's next tasks may
    /// carry, by how long this one's took (see [`run_items`]).
    pub(crate) run: Option<Arc<AtomicUsize>>,
}

/// A task sent and not answered.
struct Running {
    job: Box<dyn Job>,
    items: usize,
    run: Option<Arc<AtomicUsize>>,
}

/// Where a task waits for a worker rank while that rank's tasks are not known to be short
/// (see [`Places`]); behind short tasks, either kind waits at the rank, in a window of a few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// At rank 0, until a worker rank is free (a task of `submit`, which may be cancelled
    /// until then).
    AtRoot,
    /// At a worker rank, behind the task that runs there (a chunk of a map), so that the
    /// worker does not wait a round trip to rank 0 between chunks.
    AtWorker,
}

/// Who owns the worker ranks of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The [`Mpi`](crate::Mpi) session: they keep serving after the engine, for the next.
    Session,
    /// The engine (an executor on a user's communicator): it lets them go when it ends.
    Engine,
}

/// The future side of a task.
///
/// A job dropped without `done` (the engine thread died, say) must fail its future rather
/// than leave it pending forever: the implementations do that in their `Drop`.
pub(crate) trait Job: Send {
    /// Whether the task may be sent: `false` when it was cancelled (the future is marked
    /// running otherwise).
    fn start(&self) -> bool;
    /// Finishes the future with the answer's payload, or an error.
    fn done(self: Box<Self>, answer: Result<&[u8]>);
}

enum Command {
    Task(Task),
    Close { queued: QueuedTasks },
}

/// What the executor and the session share with the engine thread.
pub(crate) struct Engine {
    commands: Mutex<Option<Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    next_id: AtomicU64,
    workers: usize,
    peers: Arc<Peers>,
}

impl Engine {
    /// Starts the engine thread over the `workers` ranks of `peers`, which it lets go when it
    /// ends if it owns them.
    pub(crate) fn start(
        peers: Arc<Peers>,
        workers: Vec<Rank>,
        ownership: Ownership,
    ) -> Result<Arc<Engine>> {
        let (tx, rx) = channel();
        let count = workers.len();
        let engine = Arc::new(Engine {
            commands: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            workers: count,
            peers: peers.clone(),
        });
        let thread = std::thread::Builder::new()
            .name("proc-mpi engine".into())
            .spawn(move || {
                run(rx, &peers, workers);
                if ownership == Ownership::Engine && peers.lost().is_none() {
                    peers.release();
                }
            })
            .map_err(Error::Io)?;
        *engine.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(engine)
    }

    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the executor was shut down: the engine takes no more tasks.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if let Some(why) = self.peers.lost() {
            return Err(Error::BrokenPool(why));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidState(
                "cannot schedule new futures after shutdown",
            ));
        }
        Ok(())
    }

    pub(crate) fn submit(&self, task: Task) -> Result<()> {
        self.check_open()?;
        let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        let sent = commands
            .as_ref()
            .is_some_and(|tx| tx.send(Command::Task(task)).is_ok());
        if !sent {
            return Err(Error::InvalidState(
                "cannot schedule new futures after shutdown",
            ));
        }
        Ok(())
    }

    /// Takes no more tasks; the tasks not sent to a worker run or are cancelled, as `queued`
    /// says.
    pub(crate) fn close(&self, queued: QueuedTasks) {
        self.closed.store(true, Ordering::Release);
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = commands.take() {
            let _ = tx.send(Command::Close { queued });
        }
    }

    /// Waits until the engine thread has ended: every task sent was answered. On the engine
    /// thread itself (a done-callback that shuts the executor down) it returns at once: the
    /// thread ends after the callback, once its tasks are answered.
    pub(crate) fn join(&self) {
        let mut slot = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id())
        {
            return;
        }
        let thread = slot.take();
        drop(slot);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The tasks a worker rank may hold (the one it runs and those waiting behind it) once its
/// tasks are short: enough that it never waits a round trip to rank 0 for the next ones.
const WINDOW: usize = 16;

/// The most chunks of a map that a worker rank may hold once its tasks are tiny: a map's
/// chunks go ahead anyway, and a round trip between ranks on a loaded node can take as long
/// as hundreds of tiny tasks.
const MAP_WINDOW: usize = 256;

/// How much work a worker rank may hold of a map's short chunks, judged by how long its
/// last ones took: at most this is stuck behind a chunk that turns out long, while another
/// rank may be idle.
const HOLD: Duration = Duration::from_millis(1);

/// The fewest tasks in one bundle: half the window, so that a rank whose tasks are short
/// holds two bundles, and runs one while the answers of the other travel and the next comes.
const BUNDLE: usize = WINDOW / 2;

/// The most bytes in a bundle of several tasks: a larger task goes alone (and is not copied).
const BUNDLE_BYTES: usize = 1 << 20;

/// Tasks that take less than this on average are short: a round trip between the ranks
/// (tens of microseconds) would cost a large part of their time.
const SHORT: Duration = Duration::from_millis(1);

/// How much work a map's task of several chunks carries: tiny items go many in one task (one
/// future, one frame each way), so that rank 0's costs per task — which are its limit on
/// tiny items — are spread over them, while the runs stay far shorter than anything that
/// could unbalance the ranks.
const RUN_WORK: Duration = Duration::from_micros(10);

/// The most items in a map's task of several chunks: the map's window (about a thousand
/// items) is then shared by several tasks per worker rank.
const MAX_RUN: usize = 64;

/// How many items a map's task may carry when its items take `each` at a worker rank: about
/// [`RUN_WORK`] of them, at least one and at most [`MAX_RUN`]. A map starts at one, and
/// each answer to one of its tasks sets it anew.
fn run_items(each: Duration) -> usize {
    let fit = RUN_WORK.as_nanos() / each.as_nanos().max(1);
    usize::try_from(fit).unwrap_or(MAX_RUN).clamp(1, MAX_RUN)
}

/// A worker rank as the engine sees it.
#[derive(Debug)]
struct Place {
    rank: Rank,
    /// How many tasks it holds: sent, not answered.
    held: usize,
    /// How long each of its last answered tasks took on average: `None` until it answers.
    each: Option<Duration>,
}

impl Place {
    /// The time of each of its tasks, when they are known to be short (the window is open).
    fn short(&self) -> Option<Duration> {
        self.each.filter(|&each| each < SHORT)
    }

    /// How many chunks of a map it may hold once its tasks are short: about [`HOLD`] of
    /// them, at least [`WINDOW`] and at most [`MAP_WINDOW`].
    fn map_window(each: Duration) -> usize {
        let fit = HOLD.as_nanos() / each.as_nanos().max(1);
        usize::try_from(fit)
            .unwrap_or(MAP_WINDOW)
            .clamp(WINDOW, MAP_WINDOW)
    }

    /// The most tasks in a bundle to it: half its largest window, so that it holds two
    /// bundles.
    fn bundle(&self) -> usize {
        self.short()
            .map_or(BUNDLE, |each| Place::map_window(each) / 2)
    }
}

/// The room at the worker ranks: how many tasks each holds.
///
/// Until a rank's tasks are known to be short, it holds one task of `submit` (it gets one
/// only when it is free, so that a long task never holds back one that an idle rank could
/// run) or two chunks of a map (the one it runs and the next, so that it does not wait a
/// round trip for rank 0 between two chunks). Once its answers show short tasks, it holds up
/// to [`WINDOW`] tasks of either kind, sent in bundles — and more of a map's chunks, about
/// [`HOLD`] of them by their recent time, up to [`MAP_WINDOW`]; once they show long ones, it
/// is back to one or two.
struct Places {
    places: Vec<Place>,
    /// Where the next search starts, so that the work goes round the ranks.
    cursor: usize,
}

impl Places {
    fn new(workers: Vec<Rank>) -> Places {
        Places {
            places: workers
                .into_iter()
                .map(|rank| Place {
                    rank,
                    held: 0,
                    each: None,
                })
                .collect(),
            cursor: 0,
        }
    }

    /// How many tasks `place` may hold while a task of `queue` is next.
    fn limit(place: &Place, queue: Queue) -> usize {
        match (place.short(), queue) {
            (Some(each), Queue::AtWorker) => Place::map_window(each),
            (Some(_), Queue::AtRoot) => WINDOW,
            (None, Queue::AtRoot) => 1,
            (None, Queue::AtWorker) => 2,
        }
    }

    /// The place for a task that waits in `queue`: of those with room, the one that holds
    /// fewest tasks (the first from the cursor among equals), so that idle ranks get work
    /// first. `None` when there is no room.
    fn take(&mut self, queue: Queue) -> Option<usize> {
        let len = self.places.len();
        let found = (0..len)
            .map(|i| (self.cursor + i) % len)
            .filter(|&i| self.places[i].held < Places::limit(&self.places[i], queue))
            .min_by_key(|&i| self.places[i].held)?;
        self.places[found].held += 1;
        self.cursor = (found + 1) % len;
        Some(found)
    }

    /// A task of the place `index` was not sent after all (it was cancelled).
    fn give_back(&mut self, index: usize) {
        let place = &mut self.places[index];
        place.held = place.held.saturating_sub(1);
    }

    /// `rank` answered `count` tasks, which ran `busy` together.
    fn answered(&mut self, rank: Rank, count: usize, busy: Duration) {
        if let Some(place) = self.places.iter_mut().find(|p| p.rank == rank) {
            place.held = place.held.saturating_sub(count);
            if let Some(each) = u32::try_from(count).ok().and_then(|n| busy.checked_div(n)) {
                place.each = Some(each);
            }
        }
    }

    fn rank(&self, index: usize) -> Rank {
        self.places[index].rank
    }
}

/// The bundles being filled for the ranks in one round of the engine, one at most per rank.
struct Bundles {
    /// For each place: the bundle's bytes and its number of tasks.
    open: Vec<Option<(Vec<u8>, usize)>>,
}

impl Bundles {
    fn new(places: usize) -> Bundles {
        Bundles {
            open: (0..places).map(|_| None).collect(),
        }
    }

    /// Adds a task to the bundle of the place `index`, first sending that bundle when it
    /// is full or the task does not fit.
    fn add(&mut self, sends: &mut Sends<'_>, places: &Places, index: usize, message: Vec<u8>) {
        let slot = &mut self.open[index];
        if let Some((bundle, count)) = slot
            && *count < places.places[index].bundle()
            && wire::bundle(bundle, &message, BUNDLE_BYTES)
        {
            *count += 1;
            return;
        }
        if let Some((bundle, _)) = slot.replace((message, 1)) {
            sends.start(places.rank(index), bundle);
        }
    }

    /// Sends every bundle not sent yet.
    fn send_all(&mut self, sends: &mut Sends<'_>, places: &Places) {
        for (index, slot) in self.open.iter_mut().enumerate() {
            if let Some((bundle, _)) = slot.take() {
                sends.start(places.rank(index), bundle);
            }
        }
    }
}

/// The engine's sends under way. They are MPI's non-blocking sends (`MPI_Isend`): a
/// blocking send of a bundle larger than MPI's eager limit (4 KiB for Open MPI on one node)
/// waits until the worker receives it, which it does only between two bundles; meanwhile the
/// worker may itself be sending a large reply that only this thread receives — each would
/// wait for the other for ever. With non-blocking sends the engine goes on receiving.
struct Sends<'c> {
    comm: &'c dyn Communicator,
    pending: Vec<Sending>,
}

/// One send under way: its request, and the buffer that MPI reads until it completes.
struct Sending {
    request: Request<'static, [u8]>,
    /// The bundle, from `Box::into_raw`: freed once the request has completed.
    buffer: *mut [u8],
}

impl<'c> Sends<'c> {
    fn new(comm: &'c dyn Communicator) -> Sends<'c> {
        Sends {
            comm,
            pending: Vec::new(),
        }
    }

    /// Starts sending `bundle` to `rank`.
    fn start(&mut self, rank: Rank, bundle: Vec<u8>) {
        let buffer = Box::into_raw(bundle.into_boxed_slice());
        // SAFETY: `buffer` comes from `Box::into_raw`, so it is valid and nothing else refers
        // to it; it is freed only in `free`, after MPI has completed the send that reads it
        // (or never, in `abandon`), so the `'static` borrow that the request holds never
        // outlives it.
        let bytes: &'static [u8] = unsafe { &*buffer };
        let request =
            self.comm
                .process_at_rank(rank)
                .immediate_send_with_tag(StaticScope, bytes, wire::TASK);
        self.pending.push(Sending { request, buffer });
    }

    /// Completes the sends that MPI has finished with, and frees their buffers.
    fn progress(&mut self) {
        self.pending = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|Sending { request, buffer }| match request.test() {
                Ok(_) => {
                    free(buffer);
                    None
                }
                Err(request) => Some(Sending { request, buffer }),
            })
            .collect();
    }

    /// Waits until every send is complete (the engine ends after all its tasks were
    /// answered, so each was received already).
    fn finish(&mut self) {
        for Sending { request, buffer } in self.pending.drain(..) {
            request.wait();
            free(buffer);
        }
    }

    /// Leaves the sends to a lost worker as they are: they never complete, and waiting for
    /// them would hang. Their buffers stay with MPI until the session aborts the job.
    fn abandon(&mut self) {
        for sending in self.pending.drain(..) {
            // A request dropped before it completes panics (rsmpi's rule).
            std::mem::forget(sending.request);
        }
    }
}

/// Frees the buffer of a completed send.
fn free(buffer: *mut [u8]) {
    // SAFETY: `buffer` comes from `Box::into_raw` in `Sends::start`, and its send has
    // completed, so MPI no longer reads it; each buffer is freed once, when its request is
    // taken out of `Sends::pending` for good.
    drop(unsafe { Box::from_raw(buffer) });
}

/// How many quiet rounds of the engine (up to half a millisecond each) pass between two
/// looks at the life of spawned workers while tasks run: about a tenth of a second.
const WATCH_EVERY: u32 = 200;

/// The engine thread.
fn run(commands: Receiver<Command>, peers: &Peers, workers: Vec<Rank>) {
    let comm = peers.comm();
    let mut places = Places::new(workers);
    let mut bundles = Bundles::new(places.places.len());
    let mut sends = Sends::new(comm);
    let mut queue: VecDeque<Task> = VecDeque::new();
    let mut running: HashMap<u64, Running> = HashMap::new();
    // The maps whose tasks a reply answered, told how many items their next tasks carry.
    let mut runs: Vec<Arc<AtomicUsize>> = Vec::new();
    let mut closed = false;
    let mut backoff = Backoff::default();
    let mut since_watch = 0u32;
    loop {
        let mut busy = false;
        loop {
            let command = if !closed && queue.is_empty() && running.is_empty() {
                // Nothing to watch: sleep until there is.
                commands.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                commands.try_recv()
            };
            match command {
                Ok(Command::Task(task)) => queue.push_back(task),
                Ok(Command::Close { queued }) => {
                    closed = true;
                    if queued == QueuedTasks::Cancel {
                        for task in queue.drain(..) {
                            task.job.done(Err(Error::Cancelled));
                        }
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        while let Some(wait) = queue.front().map(|task| task.queue) {
            let Some(index) = places.take(wait) else {
                break;
            };
            let Some(task) = queue.pop_front() else {
                break;
            };
            // Marked running only now that it goes: until then it can be cancelled.
            if !task.job.start() {
                places.give_back(index);
                task.job.done(Err(Error::Cancelled));
                continue;
            }
            tracing::trace!(
                id = task.id,
                rank = places.rank(index),
                "task sent to a worker rank"
            );
            let sent = Running {
                job: task.job,
                items: task.items,
                run: task.run,
            };
            running.insert(task.id, sent);
            bundles.add(&mut sends, &places, index, task.message);
            busy = true;
        }
        bundles.send_all(&mut sends, &places);
        sends.progress();
        while let Some(probed) = comm
            .any_process()
            .immediate_matched_probe_with_tag(wire::REPLY)
        {
            let (bytes, status) = probed.matched_receive_vec::<u8>();
            busy = true;
            let Some((ran, answers)) = wire::parse_reply(&bytes) else {
                continue;
            };
            let (mut count, mut items) = (0, 0);
            for (id, payload) in answers.flatten() {
                count += 1;
                if let Some(task) = running.remove(&id) {
                    items += task.items;
                    runs.extend(task.run);
                    task.job.done(Ok(payload));
                }
            }
            places.answered(status.source_rank(), count, ran);
            let each = u32::try_from(items).ok().and_then(|n| ran.checked_div(n));
            for run in runs.drain(..) {
                if let Some(each) = each {
                    run.store(run_items(each), Ordering::Relaxed);
                }
            }
        }
        if closed && queue.is_empty() && running.is_empty() {
            sends.finish();
            return;
        }
        if busy {
            backoff.reset();
        } else {
            since_watch += 1;
            if since_watch >= WATCH_EVERY && peers.is_watched() && !running.is_empty() {
                since_watch = 0;
                if let Some(why) = peers.check() {
                    // A spawned worker died (nothing outside ends a singleton's job): every
                    // task fails, and the engine stops.
                    for (_, task) in running.drain() {
                        task.job.done(Err(Error::BrokenPool(why.clone())));
                    }
                    for task in queue.drain(..) {
                        task.job.done(Err(Error::BrokenPool(why.clone())));
                    }
                    sends.abandon();
                    return;
                }
            }
            backoff.wait();
        }
    }
}

impl Engine {
    /// Whether the engine thread has ended (or was joined).
    pub(crate) fn finished(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank_of(places: &mut Places, queue: Queue) -> Option<Rank> {
        places.take(queue).map(|i| places.rank(i))
    }

    #[test]
    fn submitted_tasks_wait_for_a_free_rank_and_chunks_go_ahead() {
        let mut places = Places::new(vec![1, 2]);
        assert_eq!(rank_of(&mut places, Queue::AtRoot), Some(1));
        assert_eq!(rank_of(&mut places, Queue::AtRoot), Some(2));
        // Both run a task: a submitted task waits, a chunk goes behind one.
        assert_eq!(rank_of(&mut places, Queue::AtRoot), None);
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(1));
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(2));
        assert_eq!(rank_of(&mut places, Queue::AtWorker), None);
        // Rank 2 answers a long task: it runs its second task and has room for one more
        // chunk only.
        places.answered(2, 1, SHORT * 50);
        assert_eq!(rank_of(&mut places, Queue::AtRoot), None);
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(2));
        places.answered(1, 2, SHORT * 100);
        assert_eq!(rank_of(&mut places, Queue::AtRoot), Some(1));
        // An answer from a rank that is not a worker changes nothing.
        places.answered(7, 1, Duration::ZERO);
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(1));
        assert_eq!(rank_of(&mut places, Queue::AtWorker), None);
    }

    #[test]
    fn short_tasks_open_the_window_and_long_ones_close_it() {
        let mut places = Places::new(vec![1, 2]);
        assert_eq!(rank_of(&mut places, Queue::AtRoot), Some(1));
        assert_eq!(rank_of(&mut places, Queue::AtRoot), Some(2));
        // Both answer short tasks: each now holds up to a window of tasks of either kind,
        // the work shared between them.
        places.answered(1, 1, Duration::from_micros(3));
        places.answered(2, 1, Duration::from_micros(3));
        let mut got = Vec::new();
        while let Some(rank) = rank_of(&mut places, Queue::AtRoot) {
            got.push(rank);
        }
        assert_eq!(got.len(), 2 * WINDOW);
        assert_eq!(got.iter().filter(|&&r| r == 1).count(), WINDOW);
        assert_eq!(&got[..4], &[1, 2, 1, 2]);
        // A cancelled task gives its room back.
        places.give_back(1);
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(2));
        // Rank 1 answers a bundle whose tasks took 2 ms each on average: long, so it is back
        // to one task of `submit`, which it holds already.
        places.answered(1, 2, Duration::from_millis(4));
        assert_eq!(places.places[0].held, WINDOW - 2);
        places.answered(1, WINDOW - 2, Duration::from_secs(1));
        assert_eq!(rank_of(&mut places, Queue::AtRoot), Some(1));
        assert_eq!(rank_of(&mut places, Queue::AtRoot), None);
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(1));
        // An empty reply says nothing of the tasks' length.
        places.answered(2, 0, Duration::ZERO);
        assert!(places.places[1].short().is_some());
    }

    #[test]
    fn tiny_chunks_of_a_map_open_a_wider_window() {
        let mut places = Places::new(vec![1]);
        assert_eq!(rank_of(&mut places, Queue::AtWorker), Some(1));
        // Tasks of 2 µs: about a millisecond of them, 500, is more than the widest window.
        places.answered(1, 1, Duration::from_micros(2));
        let mut held = 0;
        while rank_of(&mut places, Queue::AtWorker).is_some() {
            held += 1;
        }
        assert_eq!(held, MAP_WINDOW);
        assert_eq!(places.places[0].bundle(), MAP_WINDOW / 2);
        // Tasks of submit still wait at rank 0 beyond the usual window.
        assert_eq!(rank_of(&mut places, Queue::AtRoot), None);
        // Tasks of 200 µs: five make a millisecond, fewer than the usual window.
        places.answered(1, MAP_WINDOW, Duration::from_micros(200) * 256);
        let mut held = 0;
        while rank_of(&mut places, Queue::AtWorker).is_some() {
            held += 1;
        }
        assert_eq!(held, WINDOW);
        assert_eq!(places.places[0].bundle(), BUNDLE);
        // A rank not heard from yet takes bundles of the usual size.
        assert_eq!(Places::new(vec![2]).places[0].bundle(), BUNDLE);
    }

    #[test]
    fn a_map_carries_more_items_per_task_the_tinier_they_are() {
        assert_eq!(run_items(Duration::from_nanos(30)), MAX_RUN);
        assert_eq!(run_items(Duration::ZERO), MAX_RUN);
        assert_eq!(run_items(Duration::from_micros(1)), 10);
        assert_eq!(run_items(RUN_WORK), 1);
        assert_eq!(run_items(Duration::from_millis(50)), 1);
    }
}
