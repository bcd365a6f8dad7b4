//! The manager thread: hands tasks to workers, reads their answers, finishes futures (and so
//! runs the callbacks: this is the pool's one result thread), and replaces workers that die,
//! retire or run past `task_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proc_core::internal::{Incoming, Outgoing, unwind};
use proc_core::{Error, Link, Process, StartMethod};

use super::board::{Board, MAX_RECORD, PLACES, RING, Taken};
use super::worker::{
    self, FAILED, Frame, INIT_FAILED, INIT_OK, OK, RETIRE, Remote, SKIPPED, Setup, WAKE,
};
use super::{Job, Mode, Settings, Shared, Sink};

/// How long the manager sleeps at most between two looks at its workers' lives and
/// deadlines.
const TICK: Duration = Duration::from_millis(100);

/// The most bytes of tasks sent by the link to a worker while it still runs the task before
/// them: they fit the link's buffer, so sending never waits for the worker. (Tasks in the
/// board's ring need no such bound: it holds `PLACES` of the largest small ones, and a large
/// one is sent ahead only when the ring has room for it.)
const SEND_AHEAD: usize = 4096;

/// How many tasks a worker may have been sent and not answered: enough that it finds its
/// next task on its board while the manager is busy elsewhere, and that either side sleeps
/// and wakes the other once for many tasks, not for each.
const AHEAD: usize = PLACES - 4;

/// How long the manager waits for the rest of an answer that a worker has begun.
const STALL: Duration = Duration::from_secs(5);

/// How often a task may fail to go out to a worker before it fails.
const MAX_ATTEMPTS: u8 = 3;

/// How many answers are read from one worker before the others get a look.
const READ_BURST: usize = 64;

/// A task sent to a worker and not answered yet.
struct Flight {
    id: u64,
    attempts: u8,
    /// Its place on the worker's board.
    place: usize,
    /// Kept so that a task the worker had not started can go to another worker (`None` once
    /// another worker took it).
    frame: Option<Outgoing>,
    /// It went by the link, not the board's ring.
    by_link: bool,
    /// `None` once the task was cancelled: its answer is dropped.
    sink: Option<Box<dyn Sink>>,
    /// The task's span (see `Job::span`).
    span: tracing::Span,
}

/// One worker process and what it was sent.
pub(super) struct Slot {
    process: Process<()>,
    link: Link,
    /// Where a task sent ahead is started or cancelled, and where small answers come.
    board: Board,
    /// The place on the board of the next task sent.
    next_place: usize,
    flights: VecDeque<Flight>,
    /// Answers read from the link before the ring's mark of their place was.
    early: VecDeque<Incoming>,
    /// Tasks sent in its life, for `max_tasks`.
    sent: usize,
    /// When its first unanswered task started.
    since: Instant,
    /// Whether its initializer has answered.
    ready: bool,
    /// It takes no more tasks (memory limit passed, or `max_tasks` reached).
    retiring: bool,
    number: usize,
    /// The worker's `procs.pool.worker` span, for its life: start, retirement, death.
    span: tracing::Span,
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
        let board = Board::new()?;
        let process = Process::builder()
            .name(format!("{}-{number}", settings.name))
            .daemon(true)
            .start_method(method)
            .spawn(
                worker::serve,
                Setup {
                    link: theirs,
                    max_memory: settings.max_memory,
                    board: board.handle()?,
                },
            )?;
        if let Some(pid) = process.pid() {
            ours.set_peer(pid);
        }
        // A worker that stops in the middle of an answer must not hold up the manager.
        ours.set_read_timeout(Some(STALL))?;
        let span = tracing::debug_span!("procs.pool.worker", worker = number, pid = process.pid());
        tracing::debug!(parent: &span, "procs.pool.worker.start");
        let slot = Slot {
            process,
            link: ours,
            board,
            next_place: 0,
            flights: VecDeque::new(),
            early: VecDeque::new(),
            sent: 0,
            since: Instant::now(),
            ready: settings.init.is_none(),
            retiring: false,
            number,
            span,
        };
        if let Some(init) = &settings.init {
            let frame = init()?;
            slot.post(&frame)?;
            slot.wake_worker()?;
        }
        Ok(slot)
    }

    /// Puts a task frame on the worker's board, or marks its place there and sends it by
    /// the link when it holds handles or the ring has no room for it: whether it went by
    /// the link. Afterwards, see [`Slot::wake_worker`].
    ///
    /// # Errors
    ///
    /// The link's error; [`Error::Protocol`] when the task ring has no room even for a mark,
    /// which the few tasks sent ahead never fill: the worker broke it.
    fn post(&self, frame: &Outgoing) -> proc_core::Result<bool> {
        let ring = self.board.tasks();
        if frame.plain_bytes().is_some_and(|bytes| ring.put(bytes)) {
            return Ok(false);
        }
        if !ring.put_mark() {
            return Err(Error::Protocol(
                "a worker's task ring is full: the worker broke it".into(),
            ));
        }
        // Encoding again runs the arguments' `Serialize`, which may panic.
        let sent = unwind::catch(|| self.link.send_outgoing(frame))
            .unwrap_or_else(|panic| Err(panic.into()));
        if let Err(e) = sent {
            if is_local(&e) {
                // The mark is in the ring: something must stand in the task's place.
                self.link.send_bytes(&[worker::NOTHING])?;
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Wakes the worker if it sleeps waiting for tasks.
    fn wake_worker(&self) -> proc_core::Result<()> {
        if self.board.tasks().wake_reader() {
            self.link.send_bytes(&[worker::TASK_WAKE])?;
        }
        Ok(())
    }

    /// Tells an idle worker to end.
    fn let_go(&self) {
        let _ = Outgoing::encode(vec![worker::EXIT], ())
            .and_then(|frame| self.post(&frame))
            .and_then(|_| self.wake_worker());
    }

    /// The bytes of the tasks sent by the link behind the one the worker runs: together they
    /// must fit the link's buffer (8 KiB on some systems), so that sending never waits.
    fn link_bytes_ahead(&self) -> usize {
        self.flights
            .iter()
            .skip(1)
            .filter(|f| f.by_link)
            .filter_map(|f| f.frame.as_ref())
            .map(Outgoing::len)
            .sum()
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

    /// Whether the worker may be sent `job` now.
    fn can_take(&self, settings: &Settings, job: &Job) -> bool {
        self.can_take_more(settings, job, &[])
    }

    /// Whether the worker may be sent `job` after `more`, which are about to be sent.
    fn can_take_more(&self, settings: &Settings, job: &Job, more: &[Job]) -> bool {
        let link_bytes = |jobs: &[Job]| -> usize {
            jobs.iter()
                .filter(|j| goes_by_link(&j.frame))
                .map(|j| j.frame.len())
                .sum()
        };
        // What `more` takes of the task ring at most: each job whole, or its mark.
        let ring_bytes = |jobs: &[Job]| -> usize {
            jobs.iter()
                .map(|j| 4 + j.frame.plain_bytes().map_or(0, <[u8]>::len))
                .sum()
        };
        self.ready
            && !self.retiring
            && settings
                .max_tasks
                .is_none_or(|max| self.sent + more.len() < max)
            && match self.flights.len() + more.len() {
                0 => true,
                n => {
                    n < AHEAD
                        && (!goes_by_link(&job.frame)
                            || self.link_bytes_ahead() + link_bytes(more) + job.frame.len()
                                <= SEND_AHEAD
                            // A large chunk waits in the ring while the worker runs the task
                            // before it (the ring only gains room until the manager puts
                            // `more` and then it).
                            || job.frame.plain_bytes().is_some_and(|bytes| {
                                self.board
                                    .tasks()
                                    .has_room_for(ring_bytes(more) + bytes.len())
                            }))
                }
            }
    }
}

struct Manager {
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    woken: Link,
    /// Workers started so far, for names.
    started: usize,
    /// The buffer the answers of the workers' rings are read into, kept from one to the
    /// next: an answer decoded here (of a one-item task) leaves it for the next, and only
    /// one that goes to its caller whole (a chunk's) takes it along.
    record: Vec<u8>,
    /// The frame of the task answered last, which nothing needs any more: the buffer that
    /// the next record is read into when the last one went to its caller with its answer.
    /// A chunk's answer is about as long as its task, and memory written once is mapped
    /// already, where a fresh buffer of a large answer is faulted in page by page (about a
    /// fifth of a `map`'s page faults on the pool's side, before this).
    spare: Vec<u8>,
}

/// The manager thread's body.
pub(super) fn run(shared: Arc<Shared>, slots: Vec<Slot>, woken: Link) {
    let _ = shared.manager.set(std::thread::current().id());
    let started = slots.len();
    let mut manager = Manager {
        shared,
        slots,
        woken,
        started,
        record: Vec::new(),
        spare: Vec::new(),
    };
    if let Err(panic) = unwind::catch(|| manager.serve()) {
        // A bug of ours must not leave futures waiting forever: the pool breaks instead.
        let error = Error::BrokenPool(format!(
            "the pool's manager thread panicked: {}",
            panic.message
        ));
        manager.break_pool(error.clone());
        let _ = unwind::catch(|| manager.stop(error, Idle::Kill));
    }
    let (cancels, ahead) = {
        let mut state = manager.shared.lock();
        state.ended = true;
        (
            std::mem::take(&mut state.cancels),
            state.cancel_ahead.take(),
        )
    };
    for (_, reply) in cancels.into_iter().chain(ahead.map(|reply| (0, reply))) {
        reply.answer(false);
    }
    manager.shared.ended.notify_all();
}

/// What ending the pool does with an idle worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idle {
    /// Kills it (`terminate`, a broken pool).
    Kill,
    /// Tells it to end, and waits (a closed pool whose tasks are done).
    LetGo,
}

impl Manager {
    fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    fn serve(&mut self) {
        loop {
            let (mode, cancels, ahead) = {
                let mut state = self.shared.lock();
                if state.broken.is_some() {
                    break;
                }
                (
                    state.mode,
                    std::mem::take(&mut state.cancels),
                    state.cancel_ahead.take(),
                )
            };
            if mode == Mode::Terminating {
                self.stop(Error::Cancelled, Idle::Kill);
                return;
            }
            for (id, reply) in cancels {
                let cancelled = self.cancel(id);
                reply.answer(cancelled);
            }
            if let Some(reply) = ahead {
                self.cancel_ahead();
                reply.answer(true);
            }
            self.let_go_of_spent_workers();
            if let Err(e) = self.replace_workers(mode) {
                self.break_pool(e);
                break;
            }
            self.dispatch();
            if mode == Mode::Closing && self.finished() {
                self.stop(Error::Cancelled, Idle::LetGo);
                return;
            }
            self.wait_and_read();
            self.check_workers();
        }
        let broken = self
            .shared
            .lock()
            .broken
            .clone()
            .unwrap_or(Error::Cancelled);
        self.stop(broken, Idle::Kill);
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
                parent: &slot.span,
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
        self.steal_for_idle_workers();
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

    /// With nothing queued, an idle worker takes a task sent ahead to a busy one, if that
    /// one has not started it (the board decides): a long task must not hold up the tasks
    /// behind it while a worker idles, as Python's shared queue never does.
    fn steal_for_idle_workers(&mut self) {
        if !self.shared.lock().jobs.is_empty() {
            return;
        }
        for thief in 0..self.slots.len() {
            let slot = &self.slots[thief];
            if !slot.flights.is_empty() || !slot.ready || slot.retiring {
                continue;
            }
            let Some(job) = self.take_one_ahead(thief) else {
                return;
            };
            self.shared.lock().jobs.push_back(job);
        }
    }

    /// Takes back the last task sent ahead to the busiest worker other than `thief`.
    fn take_one_ahead(&mut self, thief: usize) -> Option<Job> {
        let waiting = |slot: &Slot| {
            slot.flights
                .iter()
                .skip(1)
                .filter(|f| f.sink.is_some())
                .count()
        };
        let victim = (0..self.slots.len())
            .filter(|&v| v != thief && waiting(&self.slots[v]) > 0)
            .max_by_key(|&v| waiting(&self.slots[v]))?;
        let slot = &mut self.slots[victim];
        // The oldest one that is still to run (not the one the worker runs now), so that
        // tasks start in the order they were submitted, as from Python's shared queue.
        let flight = slot
            .flights
            .iter_mut()
            .skip(1)
            .find(|f| f.sink.is_some() && f.frame.is_some())?;
        if !slot.board.cancel(flight.place) {
            return None;
        }
        // The victim will skip it and say so; its flight stays until then, empty.
        Some(Job {
            id: flight.id,
            frame: flight.frame.take()?,
            sink: flight.sink.take()?,
            attempts: flight.attempts,
            span: flight.span.clone(),
        })
    }

    /// Up to `max` queued tasks that worker `i` can take now, skipping cancelled ones.
    fn next_jobs(&self, i: usize, max: usize) -> Vec<Job> {
        let mut state = self.shared.lock();
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some(front) = state.jobs.front() else {
                break;
            };
            if !self.slots[i].can_take_more(self.settings(), front, &jobs) {
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
    /// the jobs it did not get are queued again). A task that cannot be sent for a reason
    /// of its own (an argument that no longer encodes, too many handles) fails alone.
    fn send(&mut self, i: usize, mut jobs: Vec<Job>) -> bool {
        let slot = &mut self.slots[i];
        for job in &mut jobs {
            let place = slot.next_place % PLACES;
            slot.next_place = slot.next_place.wrapping_add(1);
            job.frame.header_mut()[worker::PLACE] = place as u8;
            slot.board.queue(place);
        }
        let mut jobs = jobs.into_iter();
        let mut sent = Vec::new();
        let mut dead = None;
        for job in jobs.by_ref() {
            match self.slots[i].post(&job.frame) {
                Ok(by_link) => sent.push((job, by_link)),
                Err(e) if is_local(&e) => job.sink.fail(e),
                Err(e) => {
                    dead = Some((vec![job], e));
                    break;
                }
            }
        }
        if dead.is_none()
            && !sent.is_empty()
            && let Err(e) = self.slots[i].wake_worker()
        {
            dead = Some((Vec::new(), e));
        }
        let slot = &mut self.slots[i];
        if !sent.is_empty() && slot.flights.is_empty() {
            slot.since = Instant::now();
        }
        slot.sent += sent.len();
        for (mut job, by_link) in sent {
            tracing::trace!(
                parent: &job.span,
                task = job.id,
                worker = slot.number,
                "procs.pool.task.start"
            );
            let place = usize::from(job.frame.header_mut()[worker::PLACE]);
            slot.flights.push_back(Flight {
                id: job.id,
                frame: Some(job.frame),
                by_link,
                sink: Some(job.sink),
                attempts: job.attempts,
                place,
                span: job.span,
            });
        }
        let Some((unsent, error)) = dead else {
            return true;
        };
        // The worker is gone (or going): what was not sent goes back to the front of the
        // queue, unless it has failed to go out too often.
        let mut state = self.shared.lock();
        for mut job in unsent.into_iter().chain(jobs).rev() {
            job.attempts += 1;
            if job.attempts > MAX_ATTEMPTS {
                job.sink.fail(error.clone());
            } else {
                state.jobs.push_front(job);
            }
        }
        drop(state);
        let exit = self.drain(i).unwrap_or(match error {
            Error::Protocol(message) => Exit::Broke(Error::Protocol(message)),
            _ => Exit::Died,
        });
        self.bury(i, exit);
        false
    }

    /// Sleeps until a worker answers, a submitter wakes us, or the next deadline; then reads
    /// what arrived.
    fn wait_and_read(&mut self) {
        let now = Instant::now();
        let mut timeout = TICK;
        if let Some(limit) = self.settings().task_timeout {
            for slot in self.slots.iter().filter(|s| !s.flights.is_empty()) {
                if let Some(at) = slot.since.checked_add(limit) {
                    timeout = timeout.min(at.saturating_duration_since(now));
                }
            }
        }
        // Answers the workers put on their boards first; then, the pool about to sleep, a
        // look at the boards once more (an answer put from now on comes with a wake-up).
        let mut exits = Vec::new();
        let mut answered = false;
        for i in 0..self.slots.len() {
            let (any, exit) = self.read_ring(i);
            answered |= any;
            if let Some(exit) = exit {
                exits.push((i, exit));
            }
        }
        for slot in &self.slots {
            slot.board.answers().set_reader_sleeping(true);
        }
        if answered
            || !exits.is_empty()
            || self.slots.iter().any(|s| s.board.answers().has_records())
        {
            timeout = Duration::ZERO;
        }
        self.shared.sleeping.store(true, Ordering::SeqCst);
        let pending = {
            let state = self.shared.lock();
            !state.cancels.is_empty()
                || state.cancel_ahead.is_some()
                || state.mode == Mode::Terminating
                || state
                    .jobs
                    .front()
                    .is_some_and(|job| self.slots.iter().any(|s| s.can_take(self.settings(), job)))
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
        for slot in &self.slots {
            slot.board.answers().set_reader_sleeping(false);
        }
        for i in ready {
            if exits.iter().any(|(j, _)| *j == i) {
                continue;
            }
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
            if let (_, Some(exit)) = self.read_ring(i) {
                return Some(exit);
            }
            if !matches!(self.slots[i].link.poll(Some(Duration::ZERO)), Ok(true)) {
                return None;
            }
            // A wake-up, or an answer whose mark is in the ring by now (the worker marks
            // before it writes): it is taken in its place there.
            match self.slots[i].link.recv_incoming() {
                Ok(frame) if is_wake(&frame) => {}
                Ok(frame) => {
                    let slot = &mut self.slots[i];
                    slot.early.push_back(frame);
                    if slot.early.len() > PLACES + 2 {
                        return Some(Exit::Broke(Error::Protocol(
                            "a worker sent answers by its link without marking them".into(),
                        )));
                    }
                }
                Err(e) => return Some(self.link_failed(i, e)),
            }
        }
        self.read_ring(i).1
    }

    /// Why worker `i` leaves when reading its link failed with `error`.
    fn link_failed(&self, i: usize, error: Error) -> Exit {
        match error {
            // A frame cut short is what a worker killed while writing leaves: that is a
            // death, not a broken protocol.
            Error::Protocol(_) if self.slots[i].has_ended() => Exit::Died,
            Error::Protocol(message) => Exit::Broke(Error::Protocol(message)),
            Error::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock => Exit::Broke(
                Error::Protocol("a worker stopped in the middle of an answer".into()),
            ),
            _ => Exit::Died,
        }
    }

    /// The answer at a mark in worker `i`'s ring: read early, or the next answer frame on
    /// its link (the worker writes it right after the mark).
    fn link_answer(&mut self, i: usize) -> Result<Incoming, Exit> {
        if let Some(frame) = self.slots[i].early.pop_front() {
            return Ok(frame);
        }
        loop {
            match self.slots[i].link.recv_incoming() {
                Ok(frame) if is_wake(&frame) => {}
                Ok(frame) => return Ok(frame),
                Err(e) => return Err(self.link_failed(i, e)),
            }
        }
    }

    /// Reads the answers worker `i` put on its board: whether there were any, and why the
    /// worker leaves, if one says so (or the ring holds garbage).
    fn read_ring(&mut self, i: usize) -> (bool, Option<Exit>) {
        let mut record = std::mem::take(&mut self.record);
        let read = self.read_ring_into(i, &mut record);
        self.record = record;
        read
    }

    /// [`Manager::read_ring`], each record read into `record`.
    fn read_ring_into(&mut self, i: usize, record: &mut Vec<u8>) -> (bool, Option<Exit>) {
        let mut any = false;
        loop {
            let frame = match self.slots[i].board.answers().take_into(record) {
                Ok(Some(Taken::Record(()))) => Frame::Ring(record),
                Ok(Some(Taken::OnLink)) => match self.link_answer(i) {
                    Ok(frame) => Frame::Link(frame),
                    Err(exit) => return (any, Some(exit)),
                },
                Ok(None) => return (any, None),
                Err(e) => return (any, Some(Exit::Broke(e))),
            };
            any = true;
            let exit = self.answer(i, frame);
            if record.capacity() == 0 {
                std::mem::swap(record, &mut self.spare);
            }
            if let Some(exit) = exit {
                return (true, Some(exit));
            }
        }
    }

    /// Handles one answer of worker `i`.
    fn answer(&mut self, i: usize, frame: Frame<'_>) -> Option<Exit> {
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
            // Wake-ups are dropped as they are read; one here came in a mark's place.
            WAKE => Some(Exit::Broke(Error::Protocol(
                "a worker marked a wake-up as an answer".into(),
            ))),
            SKIPPED if slot.flights.front().is_some_and(|f| f.id == id) => {
                let mut flight = slot.flights.pop_front()?;
                slot.since = Instant::now();
                self.spare = spare_buffer(flight.frame.take());
                // It did not run here: it does not count towards `maxtasksperchild`.
                slot.sent = slot.sent.saturating_sub(1);
                if let Some(sink) = flight.sink {
                    sink.fail(Error::Cancelled);
                }
                None
            }
            OK | FAILED if slot.flights.front().is_some_and(|f| f.id == id) => {
                let mut flight = slot.flights.pop_front()?;
                slot.since = Instant::now();
                self.spare = spare_buffer(flight.frame.take());
                tracing::trace!(
                    parent: &flight.span,
                    task = id,
                    worker = slot.number,
                    "procs.pool.task.finish"
                );
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

    /// Reads what worker `i` has written and not been read; returns why it leaves, if that
    /// says so. Done before a worker is buried, so that an answer it gave is not lost.
    fn drain(&mut self, i: usize) -> Option<Exit> {
        if let (_, Some(exit)) = self.read_ring(i) {
            return Some(exit);
        }
        while matches!(self.slots[i].link.poll(Some(Duration::ZERO)), Ok(true)) {
            if let Some(exit) = self.read(i) {
                return Some(exit);
            }
        }
        None
    }

    /// Kills the workers whose task ran past `task_timeout`, and buries those that ended
    /// without their link saying so (something else holds its other end).
    fn check_workers(&mut self) {
        let limit = self.settings().task_timeout;
        let mut i = self.slots.len();
        while i > 0 {
            i -= 1;
            let slot = &self.slots[i];
            if slot.flights.is_empty() {
                continue;
            }
            let late = limit.is_some_and(|limit| slot.since.elapsed() >= limit);
            let ended = slot.process.exitcode().is_some();
            if !late && !ended {
                continue;
            }
            if let Some(exit) = self.drain(i) {
                self.bury(i, exit);
                continue;
            }
            let slot = &self.slots[i];
            if ended {
                self.bury(i, Exit::Died);
            } else if !slot.flights.is_empty()
                && limit.is_some_and(|limit| slot.since.elapsed() >= limit)
            {
                self.bury(i, Exit::TimedOut);
            }
        }
    }

    /// Stops the task `id`, and says whether it did: kills the worker running it, marks a
    /// task sent ahead as cancelled on the worker's board before the worker starts it, or
    /// takes it out of the queue.
    fn cancel(&mut self, id: u64) -> bool {
        for i in 0..self.slots.len() {
            if !self.slots[i].flights.iter().any(|f| f.id == id) {
                continue;
            }
            // Twice at most: a worker that started the task has answered the one before.
            for _ in 0..2 {
                if let Some(exit) = self.drain(i) {
                    self.bury(i, exit);
                    return false;
                }
                let slot = &mut self.slots[i];
                let Some(pos) = slot.flights.iter().position(|f| f.id == id) else {
                    return false;
                };
                let flight = &mut slot.flights[pos];
                if slot.board.cancel(flight.place) {
                    // Not started (even the first one sent may not be yet): the worker will
                    // skip it and say so; the future is settled now.
                    if let Some(sink) = flight.sink.take() {
                        sink.fail(Error::Cancelled);
                    }
                    return true;
                }
                if pos == 0 {
                    self.bury(i, Exit::Cancelled);
                    return true;
                }
            }
            return false;
        }
        let job = {
            let mut state = self.shared.lock();
            let pos = state.jobs.iter().position(|j| j.id == id);
            pos.and_then(|pos| state.jobs.remove(pos))
        };
        match job {
            Some(job) => {
                job.sink.fail(Error::Cancelled);
                true
            }
            None => false,
        }
    }

    /// Cancels every task sent ahead to a worker behind the one it runs, if the worker has
    /// not started it (it skips it and says so), for `shutdown(cancel_futures = true)`. The
    /// first task a worker was sent is left to run, started or about to be, as Python leaves
    /// the tasks its workers have taken.
    fn cancel_ahead(&mut self) {
        for slot in &mut self.slots {
            for flight in slot.flights.iter_mut().skip(1) {
                if flight.sink.is_some()
                    && flight.frame.is_some()
                    && slot.board.cancel(flight.place)
                    && let Some(sink) = flight.sink.take()
                {
                    sink.fail(Error::Cancelled);
                }
            }
        }
    }

    /// Removes worker `i`: stops and reaps its process, fails the task it was running (if
    /// `exit` says it died with one) and queues again the tasks it had not started.
    fn bury(&mut self, i: usize, exit: Exit) {
        let mut slot = self.slots.swap_remove(i);
        match exit {
            Exit::Retired => slot.let_go(),
            Exit::Died => {}
            _ => {
                let _ = slot.process.kill();
            }
        }
        drop(slot.link);
        let (worker_span, number) = (slot.span, slot.number);
        let exitcode = reap(&mut slot.process);
        let mut running = match exit {
            Exit::Retired => None,
            _ => slot.flights.pop_front(),
        };
        // A worker that died (or broke) before it started the first task it was sent did not
        // run it: that task goes to another worker too. The worker is gone, so taking the
        // task back on the board cannot race with it starting the task.
        if matches!(exit, Exit::Died | Exit::Broke(_))
            && running
                .as_ref()
                .is_some_and(|f| f.frame.is_some() && slot.board.cancel(f.place))
            && let Some(flight) = running.take()
        {
            slot.flights.push_front(flight);
        }
        // What the worker had not started goes back to the front of the queue, in order.
        {
            let mut state = self.shared.lock();
            while let Some(flight) = slot.flights.pop_back() {
                if let (Some(sink), Some(frame)) = (flight.sink, flight.frame) {
                    state.jobs.push_front(Job {
                        id: flight.id,
                        frame,
                        sink,
                        attempts: flight.attempts,
                        span: flight.span,
                    });
                }
            }
        }
        let died = matches!(exit, Exit::Died);
        let error = match exit {
            Exit::Retired => {
                tracing::debug!(parent: &worker_span, worker = number, "procs.pool.worker.retire");
                return;
            }
            Exit::Died => Error::WorkerDied { exitcode },
            Exit::TimedOut => Error::Timeout,
            Exit::Cancelled => Error::Cancelled,
            Exit::Broke(e) => e,
        };
        tracing::warn!(
            parent: &worker_span,
            worker = number,
            exitcode,
            error = %error,
            "procs.pool.worker.death"
        );
        if let Some(task) = running.as_ref() {
            tracing::debug!(parent: &task.span, task = task.id, error = %error, "procs.pool.task.failed");
        }
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

    /// Ends the pool: lets idle workers go or kills them, as `idle` says (a busy worker is
    /// killed), reaps them, and fails every unfinished task with `error`.
    fn stop(&mut self, error: Error, idle: Idle) {
        for slot in &self.slots {
            if idle == Idle::Kill || !slot.ready || !slot.flights.is_empty() {
                let _ = slot.process.kill();
            } else {
                slot.let_go();
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
            state.jobs.drain(..).collect()
        };
        sinks.extend(jobs.into_iter().map(|j| j.sink));
        for sink in sinks {
            sink.fail(error.clone());
        }
    }
}

/// Whether the task `frame` may go by the link (with a mark in the ring) rather than in the
/// board's ring: it holds handles, or is too large to be sure of the ring's room.
fn goes_by_link(frame: &Outgoing) -> bool {
    frame
        .plain_bytes()
        .is_none_or(|bytes| bytes.len() > MAX_RECORD)
}

/// The buffer of a task's frame once the task is answered, to read a later record into (see
/// `Manager::spare`): none for a frame larger than any record (a ring holds them all), which
/// would only hold memory.
fn spare_buffer(frame: Option<Outgoing>) -> Vec<u8> {
    let bytes = frame.map(Outgoing::into_bytes).unwrap_or_default();
    if bytes.capacity() <= RING {
        bytes
    } else {
        Vec::new()
    }
}

/// Whether `frame` is a worker's wake-up (not an answer).
fn is_wake(frame: &Incoming) -> bool {
    worker::parse_reply(frame.bytes()).is_some_and(|(kind, _)| kind == WAKE)
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

/// Whether a failure to send a task is the task's own (its arguments), not the worker's.
fn is_local(error: &Error) -> bool {
    match error {
        Error::Decode(_) | Error::Panicked { .. } => true,
        Error::Io(e) => e.kind() == std::io::ErrorKind::InvalidInput,
        _ => false,
    }
}
