//! The engine under `ThreadPool` and `ThreadPoolExecutor`: threads taking tasks from one
//! queue, kept under the lock that every submission takes anyway.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use proc_core::internal::unwind;
use proc_core::{Error, Result};

use crate::call::Call;
use crate::future::{Future, QueuedTasks, Task};
use crate::map::{Answer, ChunkFuture, run_chunk};

/// A task of `work` and its future, with the task's `procs.pool.task` span made here (on
/// the submitter's thread, so that it is a child of the submitter's span; the work runs
/// inside it, and so do the work's own events).
fn task<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> (Future<R>, Task) {
    let span = tracing::trace_span!("procs.pool.task", pool = "thread");
    span.in_scope(|| tracing::trace!("procs.pool.submit"));
    Future::with_work(work, span)
}

/// Runs once in each new thread before it takes tasks.
pub(crate) type Init = Arc<dyn Fn() -> std::result::Result<(), Error> + Send + Sync>;

/// What submitters and threads share, under one lock: a submission locks it once to check
/// the pool, count its threads and queue the task, so the queue costs no lock of its own
/// (a channel would cost a second one, and an allocation a block of tasks that the thread
/// taking the last of them frees, contending for the submitter's arena).
struct State {
    queue: VecDeque<Task>,
    /// No more tasks are taken: the threads end once the queue is empty.
    closed: bool,
    threads: Vec<JoinHandle<()>>,
    /// The initializer's error, once it failed: the pool is broken.
    broken: Option<Error>,
    /// Tasks finished that no submission has counted on yet (Python's `_idle_semaphore`),
    /// counted only while threads are still to be started.
    idle: usize,
    /// Threads waiting on `Shared::ready` for a task.
    sleeping: usize,
    /// Threads that found the queue empty and look again before they sleep: a task queued
    /// while there are as many of them as tasks needs no wake-up.
    looking: usize,
    /// Sleeping threads woken and not yet back: a submission wakes another thread only when
    /// every woken one has come back, so a burst of submissions to threads that are awake
    /// anyway makes no system call.
    waking: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a task is queued for a sleeping thread, and when the pool closes.
    ready: Condvar,
    /// The length of the queue, written under the lock, for threads that look for a task
    /// without it.
    queued: AtomicUsize,
}

/// Rounds of looking for a task before sleeping: spins of 1, 2, 4, ... 64 pauses, then
/// yields of the processor (a few microseconds in all).
const SPIN_ROUNDS: u32 = 7;
const LOOK_ROUNDS: u32 = SPIN_ROUNDS + 4;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next task for a thread, waiting for one; `None` once the pool is closed and the
    /// queue is empty. `ran` says that the thread just finished a task.
    ///
    /// A thread that finds the queue empty looks again for a little while before it
    /// sleeps, without the lock: tasks that come meanwhile (a submitter in a loop) cost no
    /// wake-up, no system call on either side.
    fn next(&self, ran: bool, max: usize) -> Option<Task> {
        let mut state = self.lock();
        if ran && state.threads.len() < max {
            state.idle += 1;
        }
        let mut looked = false;
        loop {
            if let Some(task) = state.queue.pop_front() {
                self.queued.store(state.queue.len(), Ordering::Relaxed);
                return Some(task);
            }
            if state.closed {
                return None;
            }
            if !looked {
                state.looking += 1;
                drop(state);
                self.look();
                state = self.lock();
                state.looking -= 1;
                looked = true;
                continue;
            }
            state.sleeping += 1;
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            state.sleeping -= 1;
            // A spurious wake-up may take the count of a thread really woken: that one then
            // finds it at 0, and a later submission wakes one more thread than needed (the
            // count never exceeds the sleepers really woken, so no wake-up is lost).
            state.waking = state.waking.saturating_sub(1);
            looked = false;
        }
    }

    /// Waits a little (spinning, then yielding the processor) until the queue may have a
    /// task; a hint only, the caller looks again under the lock.
    fn look(&self) {
        for round in 0..LOOK_ROUNDS {
            if self.queued.load(Ordering::Relaxed) > 0 {
                return;
            }
            if round < SPIN_ROUNDS {
                for _ in 0..1u32 << round {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// The loop of a thread: the initializer, then tasks until the pool closes.
    fn work(&self, init: Option<Init>, max: usize) {
        if let Some(init) = init {
            let outcome = unwind::catch(|| init())
                .map_err(Error::from)
                .and_then(|r| r);
            if let Err(e) = outcome {
                let error = Error::BrokenPool(format!("the initializer failed: {e}"));
                let mut state = self.lock();
                state.broken.get_or_insert(error.clone());
                state.closed = true;
                let queued = std::mem::take(&mut state.queue);
                self.queued.store(0, Ordering::Relaxed);
                drop(state);
                self.ready.notify_all();
                // Every task queued gets the error; submissions from now on fail with it.
                for task in queued {
                    task.cancel(error.clone());
                }
                return;
            }
        }
        let mut ran = false;
        while let Some(task) = self.next(ran, max) {
            task.run();
            ran = true;
        }
    }
}

/// Threads and the queue they take tasks from.
pub(crate) struct Threads {
    shared: Arc<Shared>,
    max: usize,
    name: &'static str,
    init: Option<Init>,
}

/// When the threads of a pool start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// All of them, now (`ThreadPool`).
    Now,
    /// One per submission while none is idle (Python's `ThreadPoolExecutor`).
    OnDemand,
}

/// The error of a pool that takes no tasks, if it does not.
fn refusal(state: &State) -> Result<()> {
    if let Some(e) = &state.broken {
        return Err(e.clone());
    }
    if state.closed {
        return Err(Error::InvalidState(
            "the pool is shut down and takes no more tasks",
        ));
    }
    Ok(())
}

impl Threads {
    /// `max` threads, started as `start` says.
    pub(crate) fn new(
        max: usize,
        start: Start,
        name: &'static str,
        init: Option<Init>,
    ) -> Result<Threads> {
        if max == 0 {
            return Err(Error::InvalidState("a pool needs at least one thread"));
        }
        let threads = Threads {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    closed: false,
                    threads: Vec::new(),
                    broken: None,
                    idle: 0,
                    sleeping: 0,
                    looking: 0,
                    waking: 0,
                }),
                ready: Condvar::new(),
                queued: AtomicUsize::new(0),
            }),
            max,
            name,
            init,
        };
        if start == Start::Now {
            let mut state = threads.shared.lock();
            for _ in 0..max {
                threads.start_thread(&mut state)?;
            }
        }
        Ok(threads)
    }

    pub(crate) fn workers(&self) -> usize {
        self.max
    }

    fn start_thread(&self, state: &mut State) -> Result<()> {
        let shared = self.shared.clone();
        let init = self.init.clone();
        let max = self.max;
        let number = state.threads.len() + 1;
        let handle = std::thread::Builder::new()
            .name(format!("{}-{number}", self.name))
            .spawn(move || shared.work(init, max))?;
        state.threads.push(handle);
        Ok(())
    }

    /// Fails with the pool's error when it takes no tasks.
    pub(crate) fn check_open(&self) -> Result<()> {
        refusal(&self.shared.lock())
    }

    fn execute(&self, task: Task) -> Result<()> {
        let mut state = self.shared.lock();
        refusal(&state)?;
        // An idle thread takes it, or a new one is started while there is room.
        if state.threads.len() < self.max {
            if state.idle > 0 {
                state.idle -= 1;
            } else {
                self.start_thread(&mut state)?;
            }
        }
        state.queue.push_back(task);
        let queued = state.queue.len();
        self.shared.queued.store(queued, Ordering::Relaxed);
        // Every task queued has a thread that will look at it, or a sleeping one is woken.
        if queued > state.looking + state.waking && state.sleeping > state.waking {
            state.waking += 1;
            self.shared.ready.notify_one();
        }
        Ok(())
    }

    /// Runs `f()` once on a thread; the future gets its value or its panic.
    pub(crate) fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<Future<R>> {
        let (future, task) = task(f);
        self.execute(task)?;
        Ok(future)
    }

    /// Like [`submit`](Threads::submit), with `prepare` called on the future before the
    /// task can run (to add callbacks that must not miss the outcome).
    pub(crate) fn submit_prepared<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
        prepare: impl FnOnce(&Future<R>),
    ) -> Result<Future<R>> {
        let (future, task) = task(f);
        prepare(&future);
        self.execute(task)?;
        Ok(future)
    }

    /// Runs `f` on each item of `items` on one thread, for `map`.
    pub(crate) fn submit_chunk<C, A, R>(&self, f: Arc<C>, items: Vec<A>) -> Result<ChunkFuture<R>>
    where
        C: Call<A, Output = R>,
        A: Send + 'static,
        R: Send + 'static,
    {
        // `run_chunk` catches each item's panic: the whole chunk gives values.
        self.submit(move || {
            let (values, mixed) = run_chunk::<_, _, Error>(items, |item| f.call(item));
            match mixed {
                None => Answer::Values(values),
                Some(outcomes) => Answer::Mixed(outcomes),
            }
        })
    }

    /// Takes no more tasks; the queued ones run or are cancelled, as `queued` says.
    pub(crate) fn close(&self, queued: QueuedTasks) {
        let mut state = self.shared.lock();
        state.closed = true;
        let cancelled = match queued {
            QueuedTasks::Cancel => {
                self.shared.queued.store(0, Ordering::Relaxed);
                std::mem::take(&mut state.queue)
            }
            QueuedTasks::Run => VecDeque::new(),
        };
        drop(state);
        self.shared.ready.notify_all();
        for task in cancelled {
            task.cancel(Error::Cancelled);
        }
    }

    /// Whether the pool was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Waits for every thread to end (after `close`).
    pub(crate) fn join(&self) {
        let threads = std::mem::take(&mut self.shared.lock().threads);
        let me = std::thread::current().id();
        for thread in threads {
            // A task that joins its own pool would wait for itself.
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}
