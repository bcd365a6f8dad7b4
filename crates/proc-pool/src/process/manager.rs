//! The manager thread: hands tasks to workers, reads their answers, finishes futures (and so
//! runs the callbacks: this is the pool's one result thread), and replaces workers that die,
//! retire or run past `task_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proc_core::internal::{Incoming, Outgoing, unwind};
use proc_core::{Error, Link, Process, StartMethod};

use super::worker::{self, FAILED, INIT_FAILED, INIT_OK, OK, RETIRE, Remote, Setup};
use super::{Job, Mode, Settings, Shared, Sink};

/// How long the manager sleeps at most between two looks at its workers' lives and
/// deadlines.
const TICK: Duration = Duration::from_millis(100);

/// A task frame at most this long is sent while the worker still runs its task before it:
/// it fits the link's buffer, so sending never waits for the worker.
const SEND_AHEAD: usize = 4096;

/// How many small tasks a worker may have been sent and not answered: enough that it finds
/// its next task waiting while the manager is busy elsewhere.
const AHEAD: usize = 8;

/// How many answers are read from one worker before the others get a look.
const READ_BURST: usize = 64;

/// A task sent to a worker and not answered yet.
struct Flight {
    id: u64,
    /// Kept so that a task the worker had not started can go to another worker.
    frame: Outgoing,
    /// `None` once the task was cancelled: its answer is dropped.
    sink: Option<Box<dyn Sink>>,
}

/// One worker process and what it was sent.
pub(super) struct Slot {
    process: Process<()>,
    link: Link,
    flights: VecDeque<Flight>,
    /// Tasks sent in its life, for `max_tasks`.
    sent: usize,
    /// When its first unanswered task started.
    since: Instant,
    /// Whether its initializer has answered.
    ready: bool,
    /// It takes no more tasks (memory limit passed, or `max_tasks` reached).
    retiring: bool,
    number: usize,
}

/// Why a worker leaves.
enum Exit {
    /// It ended by itself (crashed, or was killed from outside).
    Died,
    /// Its task ran past `task_timeout`.
    TimedOut,
    /// Its task was cancelled.
    Cancelled,
    /// It sent something that is not an answer.
    Broke(Error),
    /// It retired or was let go; nothing it ran is lost.
    Retired,
}

impl Slot {
    /// Starts worker number `number` and sends it the initializer.
    pub(super) fn start(
        settings: &Settings,
        method: StartMethod,
        number: usize,
    ) -> proc_core::Result<Slot> {
        let (ours, theirs) = Link::pair()?;
        let process = Process::builder()
            .name(format!("{}-{number}", settings.name))
            .daemon(true)
            .start_method(method)
            .spawn(
                worker::serve,
                Setup {
                    link: theirs,
                    max_memory: settings.max_memory,
                },
            )?;
        if let Some(pid) = process.pid() {
            ours.set_peer(pid);
        }
        tracing::debug!(
            worker = number,
            pid = process.pid(),
            "procs.pool.worker.start"
        );
        let slot = Slot {
            process,
            link: ours,
            flights: VecDeque::new(),
            sent: 0,
            since: Instant::now(),
            ready: settings.init.is_none(),
            retiring: false,
            number,
        };
        if let Some(init) = &settings.init {
            let frame = init()?;
            slot.link.send_outgoing(&frame)?;
        }
        Ok(slot)
    }

    /// Whether the worker process has ended, looking for a moment: a worker killed while
    /// writing ends the frame before the kernel has reaped it.
    fn has_ended(&self) -> bool {
        for _ in 0..20 {
            if self.process.exitcode().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Whether the worker may be sent another task of `len` bytes now.
    fn can_take(&self, settings: &Settings, len: usize) -> bool {
        self.can_take_more(settings, len, 0)
    }

    /// Whether the worker may be sent another task of `len` bytes after `more` that are
    /// about to be sent.
    fn can_take_more(&self, settings: &Settings, len: usize, more: usize) -> bool {
        self.ready
            && !self.retiring
            && settings.max_tasks.is_none_or(|max| self.sent + more < max)
            && match self.flights.len() + more {
                0 => true,
                n => n < AHEAD && len <= SEND_AHEAD,
            }
    }
}

struct Manager {
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    woken: Link,
    /// Workers started so far, for names.
    started: usize,
}

/// The manager thread's body.
pub(super) fn run(shared: Arc<Shared>, slots: Vec<Slot>, woken: Link) {
    let started = slots.len();
    let mut manager = Manager {
        shared,
        slots,
        woken,
        started,
    };
    if let Err(panic) = unwind::catch(|| manager.serve()) {
        // A bug of ours must not leave futures waiting forever: the pool breaks instead.
        let error = Error::BrokenPool(format!(
            "the pool's manager thread panicked: {}",
            panic.message
        ));
        manager.break_pool(error.clone());
        let _ = unwind::catch(|| manager.stop(error));
    }
    manager.shared.lock().ended = true;
}

impl Manager {
    fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    fn serve(&mut self) {
        loop {
            let (mode, cancels) = {
                let mut state = self.shared.lock();
                if state.broken.is_some() {
                    break;
                }
                (state.mode, std::mem::take(&mut state.cancels))
            };
            if mode == Mode::Terminating {
                self.stop(Error::Cancelled);
                return;
            }
            for id in cancels {
                self.cancel(id);
            }
            self.let_go_of_spent_workers();
            if let Err(e) = self.replace_workers(mode) {
                self.break_pool(e);
                break;
            }
            self.dispatch();
            if mode == Mode::Closing && self.finished() {
                self.stop(Error::Cancelled);
                return;
            }
            self.wait_and_read();
            self.enforce_timeouts();
        }
        let broken = self
            .shared
            .lock()
            .broken
            .clone()
            .unwrap_or(Error::Cancelled);
        self.stop(broken);
    }

    /// Whether every queued and sent task is done.
    fn finished(&self) -> bool {
        self.shared.lock().jobs.is_empty() && self.slots.iter().all(|s| s.flights.is_empty())
    }

    /// Keeps the pool at its size while there is or may be work.
    fn replace_workers(&mut self, mode: Mode) -> proc_core::Result<()> {
        let wanted = match mode {
            Mode::Open => self.settings().workers,
            Mode::Closing if !self.shared.lock().jobs.is_empty() => self.settings().workers,
            _ => return Ok(()),
        };
        while self.slots.len() < wanted {
            // `Fork` needs a single-threaded parent, which a running pool is not: its
            // replacement workers come from the fork server, a clean copy of the program.
            let method = match self.settings().method {
                StartMethod::Fork => StartMethod::ForkServer,
                method => method,
            };
            self.started += 1;
            let slot = Slot::start(self.settings(), method, self.started)?;
            tracing::info!(
                worker = slot.number,
                pid = slot.process.pid(),
                "procs.pool.worker.respawn"
            );
            self.slots.push(slot);
        }
        Ok(())
    }

    /// Closes the links of workers that ran their `max_tasks` and answered them all, so that
    /// they end; they are reaped and replaced.
    fn let_go_of_spent_workers(&mut self) {
        let max = self.settings().max_tasks;
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &self.slots[i];
            let spent = max.is_some_and(|m| slot.sent >= m) || slot.retiring;
            if spent && slot.flights.is_empty() {
                self.bury(i, Exit::Retired);
            } else {
                i += 1;
            }
        }
    }

    /// Hands queued tasks to workers that can take them: first one to each idle worker,
    /// then tops the busy ones up to `AHEAD`, each worker's tasks in one write.
    fn dispatch(&mut self) {
        for idle_only in [true, false] {
            let mut i = 0;
            while i < self.slots.len() {
                if idle_only && !self.slots[i].flights.is_empty() {
                    i += 1;
                    continue;
                }
                let jobs = self.next_jobs(i, if idle_only { 1 } else { AHEAD });
                if !jobs.is_empty() && !self.send(i, jobs) {
                    // Worker `i` died and another took its index: look at it again.
                    continue;
                }
                i += 1;
            }
        }
    }

    /// Up to `max` queued tasks that worker `i` can take now, skipping cancelled ones.
    fn next_jobs(&self, i: usize, max: usize) -> Vec<Job> {
        let mut state = self.shared.lock();
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some(front) = state.jobs.front() else {
                break;
            };
            if !self.slots[i].can_take_more(self.settings(), front.frame.len(), jobs.len()) {
                break;
            }
            let Some(job) = state.jobs.pop_front() else {
                break;
            };
            if job.sink.set_running() {
                jobs.push(job);
            }
        }
        jobs
    }

    /// Sends `jobs` to worker `i`; `false` when the worker turned out dead (it is buried and
    /// the jobs are queued again).
    fn send(&mut self, i: usize, jobs: Vec<Job>) -> bool {
        let slot = &mut self.slots[i];
        let frames: Vec<&Outgoing> = jobs.iter().map(|job| &job.frame).collect();
        match slot.link.send_outgoing_all(&frames) {
            Ok(()) => {
                if slot.flights.is_empty() {
                    slot.since = Instant::now();
                }
                slot.sent += jobs.len();
                for job in jobs {
                    tracing::trace!(task = job.id, worker = slot.number, "procs.pool.task.start");
                    slot.flights.push_back(Flight {
                        id: job.id,
                        frame: job.frame,
                        sink: Some(job.sink),
                    });
                }
                true
            }
            Err(Error::Decode(message)) if jobs.len() == 1 => {
                // The arguments encoded when submitted but not now (a handle went away).
                for job in jobs {
                    job.sink.fail(Error::Decode(message.clone()));
                }
                true
            }
            Err(_) => {
                // Some of them may have gone out; the worker is buried either way, and none
                // of them ran to an answer, so all go back to the queue.
                let mut state = self.shared.lock();
                for job in jobs.into_iter().rev() {
                    state.jobs.push_front(job);
                }
                drop(state);
                self.bury(i, Exit::Died);
                false
            }
        }
    }

    /// Sleeps until a worker answers, a submitter wakes us, or the next deadline; then reads
    /// what arrived.
    fn wait_and_read(&mut self) {
        let now = Instant::now();
        let mut timeout = TICK;
        if let Some(limit) = self.settings().task_timeout {
            for slot in self.slots.iter().filter(|s| !s.flights.is_empty()) {
                let left = (slot.since + limit).saturating_duration_since(now);
                timeout = timeout.min(left);
            }
        }
        self.shared.sleeping.store(true, Ordering::SeqCst);
        let pending = {
            let state = self.shared.lock();
            !state.cancels.is_empty()
                || state.mode == Mode::Terminating
                || state.jobs.front().is_some_and(|job| {
                    self.slots
                        .iter()
                        .any(|s| s.can_take(self.settings(), job.frame.len()))
                })
        };
        if pending {
            timeout = Duration::ZERO;
        }
        let ready = {
            let mut links: Vec<&Link> = self.slots.iter().map(|s| &s.link).collect();
            links.push(&self.woken);
            Link::wait_any(&links, Some(timeout)).unwrap_or_default()
        };
        self.shared.sleeping.store(false, Ordering::SeqCst);
        let mut exits = Vec::new();
        for i in ready {
            if i == self.slots.len() {
                while matches!(self.woken.poll(Some(Duration::ZERO)), Ok(true)) {
                    if self.woken.recv_bytes().is_err() {
                        break;
                    }
                }
                continue;
            }
            if let Some(exit) = self.read(i) {
                exits.push((i, exit));
            }
        }
        // From the highest index down: burying swaps the last worker into the hole.
        exits.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (i, exit) in exits {
            self.bury(i, exit);
        }
    }

    /// Reads the answers waiting from worker `i`; returns why it leaves, if it does.
    fn read(&mut self, i: usize) -> Option<Exit> {
        for _ in 0..READ_BURST {
            let frame = match self.slots[i].link.recv_incoming() {
                Ok(frame) => frame,
                Err(Error::Protocol(message)) => {
                    // A frame cut short is what a worker killed while writing leaves: that
                    // is a death, not a broken protocol.
                    if self.slots[i].has_ended() {
                        return Some(Exit::Died);
                    }
                    return Some(Exit::Broke(Error::Protocol(message)));
                }
                Err(_) => return Some(Exit::Died),
            };
            if let Some(exit) = self.answer(i, frame) {
                return Some(exit);
            }
            if !matches!(self.slots[i].link.poll(Some(Duration::ZERO)), Ok(true)) {
                break;
            }
        }
        None
    }

    /// Handles one answer of worker `i`.
    fn answer(&mut self, i: usize, frame: Incoming) -> Option<Exit> {
        let Some((kind, id)) = worker::parse_reply(frame.bytes()) else {
            return Some(Exit::Broke(Error::Protocol(
                "a worker sent a frame too short to be an answer".into(),
            )));
        };
        let slot = &mut self.slots[i];
        match kind {
            INIT_OK if !slot.ready => {
                slot.ready = true;
                None
            }
            INIT_FAILED => {
                let why = match frame.decode::<Remote>(worker::REPLY_HEADER) {
                    Ok(Remote::Failed(message)) => message,
                    Ok(remote) => Error::from(remote).to_string(),
                    Err(e) => e.to_string(),
                };
                self.break_pool(Error::BrokenPool(format!("the initializer failed: {why}")));
                None
            }
            RETIRE => {
                slot.retiring = true;
                Some(Exit::Retired)
            }
            OK | FAILED if slot.flights.front().is_some_and(|f| f.id == id) => {
                let flight = slot.flights.pop_front()?;
                slot.since = Instant::now();
                tracing::trace!(task = id, worker = slot.number, "procs.pool.task.finish");
                if let Some(sink) = flight.sink {
                    if kind == OK {
                        sink.deliver(frame);
                    } else {
                        let error = frame
                            .decode::<Remote>(worker::REPLY_HEADER)
                            .map_or_else(|e| e, Error::from);
                        sink.fail(error);
                    }
                }
                None
            }
            _ => Some(Exit::Broke(Error::Protocol(format!(
                "a worker sent an answer of kind {kind} for task {id}, which it was not running"
            )))),
        }
    }

    /// Kills the workers whose task ran past `task_timeout`.
    fn enforce_timeouts(&mut self) {
        let Some(limit) = self.settings().task_timeout else {
            return;
        };
        let mut i = self.slots.len();
        while i > 0 {
            i -= 1;
            let slot = &self.slots[i];
            if !slot.flights.is_empty() && slot.since.elapsed() >= limit {
                self.bury(i, Exit::TimedOut);
            }
        }
    }

    /// Stops the task `id`: kills the worker running it, or drops the answer of a task a
    /// worker has not started, or takes it out of the queue.
    fn cancel(&mut self, id: u64) {
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(pos) = slot.flights.iter().position(|f| f.id == id) else {
                continue;
            };
            if pos == 0 {
                self.bury(i, Exit::Cancelled);
            } else if let Some(sink) = slot.flights[pos].sink.take() {
                sink.fail(Error::Cancelled);
            }
            return;
        }
        let job = {
            let mut state = self.shared.lock();
            let pos = state.jobs.iter().position(|j| j.id == id);
            pos.and_then(|pos| state.jobs.remove(pos))
        };
        if let Some(job) = job {
            job.sink.fail(Error::Cancelled);
        }
    }

    /// Removes worker `i`: stops and reaps its process, fails the task it was running (if
    /// `exit` says it died with one) and queues again the tasks it had not started.
    fn bury(&mut self, i: usize, exit: Exit) {
        let mut slot = self.slots.swap_remove(i);
        match exit {
            Exit::Retired => let_go(&slot.link),
            Exit::Died => {}
            _ => {
                let _ = slot.process.kill();
            }
        }
        drop(slot.link);
        let exitcode = reap(&mut slot.process);
        let running = match exit {
            Exit::Retired => None,
            _ => slot.flights.pop_front(),
        };
        // What the worker had not started goes back to the front of the queue, in order.
        {
            let mut state = self.shared.lock();
            while let Some(flight) = slot.flights.pop_back() {
                if let Some(sink) = flight.sink {
                    state.jobs.push_front(Job {
                        id: flight.id,
                        frame: flight.frame,
                        sink,
                    });
                }
            }
        }
        let died = matches!(exit, Exit::Died);
        let error = match exit {
            Exit::Retired => {
                tracing::debug!(worker = slot.number, "procs.pool.worker.retire");
                return;
            }
            Exit::Died => Error::WorkerDied { exitcode },
            Exit::TimedOut => Error::Timeout,
            Exit::Cancelled => Error::Cancelled,
            Exit::Broke(e) => e,
        };
        tracing::warn!(worker = slot.number, exitcode, error = %error, "procs.pool.worker.death");
        if !slot.ready {
            self.break_pool(Error::BrokenPool(format!(
                "a worker process ended while it ran the initializer ({})",
                Error::Died { exitcode }
            )));
        } else if self.settings().broken_on_crash && died {
            self.break_pool(Error::BrokenPool(format!(
                "a worker process ended abruptly ({error})"
            )));
        }
        if let Some(sink) = running.and_then(|f| f.sink) {
            sink.fail(error);
        }
    }

    /// Marks the pool broken: later submissions get `error`, and `serve` stops.
    fn break_pool(&mut self, error: Error) {
        let mut state = self.shared.lock();
        if state.broken.is_none() {
            tracing::error!(error = %error, "procs.pool.broken");
            state.broken = Some(error);
        }
    }

    /// Ends the pool: kills and reaps every worker, and fails every unfinished task with
    /// `error`.
    fn stop(&mut self, error: Error) {
        for slot in &self.slots {
            if slot.flights.is_empty() {
                let_go(&slot.link);
            } else {
                let _ = slot.process.kill();
            }
        }
        let mut sinks = Vec::new();
        for mut slot in self.slots.drain(..) {
            drop(slot.link);
            reap(&mut slot.process);
            sinks.extend(slot.flights.into_iter().filter_map(|f| f.sink));
        }
        let jobs: Vec<Job> = {
            let mut state = self.shared.lock();
            state.ended = true;
            state.jobs.drain(..).collect()
        };
        sinks.extend(jobs.into_iter().map(|j| j.sink));
        for sink in sinks {
            sink.fail(error.clone());
        }
    }
}

/// Tells an idle worker to end.
fn let_go(link: &Link) {
    let _ = link.send_bytes(&[worker::EXIT]);
}

/// Waits for a worker to end (killing it if it does not soon) and returns its exit code.
fn reap(process: &mut Process<()>) -> i32 {
    let outcome = match process.join_timeout(Duration::from_secs(2)) {
        Err(e) if e.is_timeout() => {
            let _ = process.kill();
            process.join_timeout(Duration::from_secs(5))
        }
        other => other,
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => e.exitcode().or(process.exitcode()).unwrap_or(-1),
    }
}
