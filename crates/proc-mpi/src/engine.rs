//! Rank 0's engine: one thread that makes every MPI call of an executor, hands tasks to idle
//! worker ranks and finishes futures with their answers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::Rank;
use proc_core::{Error, Result};
use proc_pool::internal::QueuedTasks;

use crate::peers::Peers;
use crate::wire;

/// A task on its way: the message, and what to do with its answer.
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) message: Vec<u8>,
    pub(crate) job: Box<dyn Job>,
    pub(crate) queue: Queue,
}

/// Where a task waits for a worker rank.
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

/// The room at the worker ranks: how many tasks each holds, the one it runs and at most one
/// sent ahead. Sending the next chunk of a map ahead means a worker never waits a round trip
/// for rank 0 between two chunks; a task of `submit` is sent only to a free worker, so that
/// a long task never holds back one that an idle worker could run.
struct Places {
    /// Each worker rank and how many tasks it holds (0 to 2).
    held: Vec<(Rank, u8)>,
    /// Where the next search starts, so that the work goes round the ranks.
    cursor: usize,
}

impl Places {
    fn new(workers: Vec<Rank>) -> Places {
        Places {
            held: workers.into_iter().map(|rank| (rank, 0)).collect(),
            cursor: 0,
        }
    }

    /// A rank for a task: a free one, or, for a task that may wait at a worker, one that
    /// runs a single task. `None` when there is no room.
    fn take(&mut self, queue: Queue) -> Option<Rank> {
        let len = self.held.len();
        let limits: &[u8] = match queue {
            Queue::AtRoot => &[0],
            Queue::AtWorker => &[0, 1],
        };
        for &limit in limits {
            let found = (0..len)
                .map(|i| (self.cursor + i) % len)
                .find(|&i| self.held[i].1 == limit);
            if let Some(i) = found {
                self.held[i].1 += 1;
                self.cursor = (i + 1) % len;
                return Some(self.held[i].0);
            }
        }
        None
    }

    /// A task of `rank` was answered.
    fn answered(&mut self, rank: Rank) {
        if let Some(place) = self.held.iter_mut().find(|(r, _)| *r == rank) {
            place.1 = place.1.saturating_sub(1);
        }
    }
}

/// How many quiet rounds of the engine (up to half a millisecond each) pass between two
/// looks at the life of spawned workers while tasks run: about a tenth of a second.
const WATCH_EVERY: u32 = 200;

/// The engine thread.
fn run(commands: Receiver<Command>, peers: &Peers, workers: Vec<Rank>) {
    let comm = peers.comm();
    let mut places = Places::new(workers);
    let mut queue: VecDeque<Task> = VecDeque::new();
    let mut running: HashMap<u64, Box<dyn Job>> = HashMap::new();
    let mut closed = false;
    let mut quiet = 0u32;
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
            let Some(rank) = places.take(wait) else {
                break;
            };
            let Some(task) = queue.pop_front() else {
                break;
            };
            // Marked running only now that it goes: until then it can be cancelled.
            if !task.job.start() {
                places.answered(rank);
                task.job.done(Err(Error::Cancelled));
                continue;
            }
            tracing::trace!(id = task.id, rank, "task sent to a worker rank");
            comm.process_at_rank(rank)
                .send_with_tag(&task.message[..], wire::TASK);
            running.insert(task.id, task.job);
            busy = true;
        }
        while let Some(probed) = comm
            .any_process()
            .immediate_matched_probe_with_tag(wire::REPLY)
        {
            let (bytes, status) = probed.matched_receive_vec::<u8>();
            places.answered(status.source_rank());
            busy = true;
            let Some((id, payload)) = wire::parse_reply(&bytes) else {
                continue;
            };
            if let Some(job) = running.remove(&id) {
                job.done(Ok(payload));
            }
        }
        if closed && queue.is_empty() && running.is_empty() {
            return;
        }
        if busy {
            quiet = 0;
        } else {
            since_watch += 1;
            if since_watch >= WATCH_EVERY && peers.is_watched() && !running.is_empty() {
                since_watch = 0;
                if let Some(why) = peers.check() {
                    // A spawned worker died (nothing outside ends a singleton's job): every
                    // task fails, and the engine stops.
                    for (_, job) in running.drain() {
                        job.done(Err(Error::BrokenPool(why.clone())));
                    }
                    for task in queue.drain(..) {
                        task.job.done(Err(Error::BrokenPool(why.clone())));
                    }
                    return;
                }
            }
            // Answers come as MPI messages, which nothing can wait on together with the
            // command channel: poll, yielding first, then sleeping up to half a millisecond.
            quiet = quiet.saturating_add(1);
            if quiet < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(u64::from(quiet.min(500))));
            }
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

    #[test]
    fn submitted_tasks_wait_for_a_free_rank_and_chunks_go_ahead() {
        let mut places = Places::new(vec![1, 2]);
        assert_eq!(places.take(Queue::AtRoot), Some(1));
        assert_eq!(places.take(Queue::AtRoot), Some(2));
        // Both run a task: a submitted task waits, a chunk goes behind one.
        assert_eq!(places.take(Queue::AtRoot), None);
        assert_eq!(places.take(Queue::AtWorker), Some(1));
        assert_eq!(places.take(Queue::AtWorker), Some(2));
        assert_eq!(places.take(Queue::AtWorker), None);
        // Rank 2 answers: it runs its second task and has room for one more chunk only.
        places.answered(2);
        assert_eq!(places.take(Queue::AtRoot), None);
        assert_eq!(places.take(Queue::AtWorker), Some(2));
        places.answered(1);
        places.answered(1);
        assert_eq!(places.take(Queue::AtRoot), Some(1));
        // An answer from a rank that is not a worker changes nothing.
        places.answered(7);
        assert_eq!(places.take(Queue::AtWorker), Some(1));
        assert_eq!(places.take(Queue::AtWorker), None);
    }
}
