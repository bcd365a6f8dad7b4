//! A worker rank's life: it takes bundles of tasks from its root, runs their tasks one after
//! another, in order, and answers several tasks in one reply.
//!
//! The answers of a bundle go back together once its last task is done, so that tiny tasks
//! cost one message each way per bundle rather than per task. A task that runs long must not
//! hold back the answers of the tasks before it in its bundle, whatever it waits for (rank 0
//! may be waiting for those answers before it lets the long task finish): a mailer thread
//! sends the answers that have waited [`REPLY_AGE`] while a task still runs.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, Process, Rank};
use proc_core::internal::Deadline;

use crate::backoff::Backoff;
use crate::wire;

/// How long a finished task's answer may wait for the rest of its bundle.
const REPLY_AGE: Duration = Duration::from_millis(1);

/// Answers whose tasks ran this long together go at once, without waiting for the rest of
/// their bundle: a reply costs rank 0 a few microseconds, and meanwhile it can hand their
/// results out and send the next tasks, instead of the worker and rank 0 taking turns.
const REPLY_WORK: Duration = Duration::from_micros(20);

/// What the worker's two threads share: the root, and the answers not sent yet.
struct Post<'a> {
    root: Process<'a>,
    /// The answers not sent yet, framed (`wire::push_answer`).
    answers: Vec<u8>,
    /// How long their tasks ran.
    busy: Duration,
    /// When the oldest of them is due: [`REPLY_AGE`] after it was made.
    due: Option<Deadline>,
    /// Whether the main thread runs a bundle.
    running: bool,
    /// Whether the mailer sleeps until a bundle starts.
    parked: bool,
    /// Whether the worker ends: the mailer returns.
    closed: bool,
}

// SAFETY: `Post` is not `Send` only because of the communicator handle in `root`. MPI was
// initialized with at least `MPI_THREAD_SERIALIZED` (`init` and `comm_executor` check it), at
// which any thread may make MPI calls as long as no two overlap; `Post` lives in the mutex of
// an `Outbox`, and every MPI call of the worker goes through `root` with that mutex held, so
// the main thread's and the mailer's calls never overlap.
unsafe impl Send for Post<'_> {}

impl Post<'_> {
    /// Sends the answers not sent yet, if any, in one reply.
    fn send(&mut self) {
        if self.answers.is_empty() {
            return;
        }
        let reply = wire::reply(self.busy, &self.answers);
        self.root.send_with_tag(&reply[..], wire::REPLY);
        self.answers.clear();
        self.busy = Duration::ZERO;
        self.due = None;
    }
}

/// The shared [`Post`] and the condition variable that wakes the mailer.
struct Outbox<'a> {
    post: Mutex<Post<'a>>,
    wake: Condvar,
}

impl<'a> Outbox<'a> {
    fn lock(&self) -> MutexGuard<'_, Post<'a>> {
        self.post.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker rank's life: runs the tasks of `root`, in the order they come, until told to end.
pub(crate) fn serve(comm: &dyn Communicator, root: Rank) {
    let outbox = Outbox {
        post: Mutex::new(Post {
            root: comm.process_at_rank(root),
            answers: Vec::new(),
            busy: Duration::ZERO,
            due: None,
            running: false,
            parked: false,
            closed: false,
        }),
        wake: Condvar::new(),
    };
    std::thread::scope(|scope| {
        let mailer = std::thread::Builder::new()
            .name("proc-mpi mailer".into())
            .spawn_scoped(scope, || mail(&outbox));
        if let Err(error) = mailer {
            // Without it the answers still go, each bundle's once it is done.
            tracing::warn!(%error, "a worker rank could not start its mailer thread");
        }
        receive(&outbox);
        outbox.lock().closed = true;
        outbox.wake.notify_all();
    });
}

/// The main thread's loop: takes the root's messages and runs their bundles, until the root
/// says to end.
fn receive(outbox: &Outbox<'_>) {
    let mut backoff = Backoff::default();
    loop {
        let message = {
            let post = outbox.lock();
            post.root
                .immediate_matched_probe()
                .map(MatchedReceiveVec::matched_receive_vec::<u8>)
        };
        let Some((message, status)) = message else {
            backoff.wait();
            continue;
        };
        backoff.reset();
        match status.tag() {
            wire::TASK => run(outbox, &message),
            wire::EXIT => return,
            tag => tracing::warn!(tag, "a worker rank ignored a message with an unknown tag"),
        }
    }
}

/// Runs the tasks of a bundle in order, then sends the answers that the mailer did not.
fn run(outbox: &Outbox<'_>, bundle: &[u8]) {
    {
        let mut post = outbox.lock();
        post.running = true;
        if post.parked {
            outbox.wake.notify_one();
        }
    }
    for frame in wire::frames(bundle) {
        // A frame cut short names no task: its answer says so, and rank 0 drops it.
        let start = Instant::now();
        let answer = wire::serve_task(frame.unwrap_or_default());
        let took = start.elapsed();
        let mut post = outbox.lock();
        if wire::reply_len(&post.answers, answer.len()) > wire::MAX_MESSAGE {
            post.send();
        }
        wire::push_answer(&mut post.answers, &answer);
        post.busy += took;
        if post.busy >= REPLY_WORK {
            post.send();
        } else if post.due.is_none() {
            post.due = Some(Deadline::after(REPLY_AGE));
        }
    }
    let mut post = outbox.lock();
    post.send();
    post.running = false;
}

/// The mailer's loop: while a bundle runs, every [`REPLY_AGE`] it sends the answers that
/// are due; between bundles it sleeps.
fn mail(outbox: &Outbox<'_>) {
    let mut post = outbox.lock();
    while !post.closed {
        if post.due.is_some_and(Deadline::passed) {
            post.send();
        }
        if post.running || post.due.is_some() {
            post = match outbox.wake.wait_timeout(post, REPLY_AGE) {
                Ok((post, _)) => post,
                Err(poisoned) => poisoned.into_inner().0,
            };
        } else {
            post.parked = true;
            post = outbox.wake.wait(post).unwrap_or_else(|e| e.into_inner());
            post.parked = false;
        }
    }
}
