//! The engine under `ThreadPool` and `ThreadPoolExecutor`: threads taking tasks from one
//! channel.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
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

struct State {
    sender: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
    /// The initializer's error, once it failed: the pool is broken.
    broken: Option<Error>,
}

/// Threads and the channel they take tasks from.
pub(crate) struct Threads {
    state: Arc<Mutex<State>>,
    receiver: Receiver<Task>,
    /// Threads waiting for a task that no submission has claimed yet, counted only while
    /// threads are still to be started (`all_started` false).
    idle: Arc<AtomicUsize>,
    /// Every thread is started: submissions no longer count idle threads.
    all_started: Arc<AtomicBool>,
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
        let (sender, receiver) = crossbeam_channel::unbounded();
        let threads = Threads {
            state: Arc::new(Mutex::new(State {
                sender: Some(sender),
                threads: Vec::new(),
                broken: None,
            })),
            receiver,
            idle: Arc::new(AtomicUsize::new(0)),
            all_started: Arc::new(AtomicBool::new(false)),
            max,
            name,
            init,
        };
        if start == Start::Now {
            let mut state = threads.lock();
            for _ in 0..max {
                threads.start_thread(&mut state)?;
            }
        }
        Ok(threads)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn workers(&self) -> usize {
        self.max
    }

    fn start_thread(&self, state: &mut State) -> Result<()> {
        let receiver = self.receiver.clone();
        let idle = self.idle.clone();
        let all_started = self.all_started.clone();
        let init = self.init.clone();
        let shared = self.state.clone();
        let number = state.threads.len() + 1;
        let handle = std::thread::Builder::new()
            .name(format!("{}-{number}", self.name))
            .spawn(move || {
                if let Some(init) = init {
                    let outcome = unwind::catch(|| init())
                        .map_err(Error::from)
                        .and_then(|r| r);
                    if let Err(e) = outcome {
                        let error = Error::BrokenPool(format!("the initializer failed: {e}"));
                        let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
                        state.broken.get_or_insert(error.clone());
                        state.sender = None;
                        drop(state);
                        // Until the last submitter's sender is gone, every task that comes
                        // gets the error.
                        for task in receiver.iter() {
                            task.cancel(error.clone());
                        }
                        return;
                    }
                }
                for task in receiver.iter() {
                    task.run();
                    if !all_started.load(Ordering::Relaxed) {
                        idle.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })?;
        state.threads.push(handle);
        if state.threads.len() == self.max {
            self.all_started.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Fails with the pool's error when it takes no tasks.
    pub(crate) fn check_open(&self) -> Result<()> {
        let state = self.lock();
        if let Some(e) = &state.broken {
            return Err(e.clone());
        }
        if state.sender.is_none() {
            return Err(Error::InvalidState(
                "the pool is shut down and takes no more tasks",
            ));
        }
        Ok(())
    }

    fn execute(&self, task: Task) -> Result<()> {
        let mut state = self.lock();
        if let Some(e) = &state.broken {
            return Err(e.clone());
        }
        if state.sender.is_none() {
            return Err(Error::InvalidState(
                "the pool is shut down and takes no more tasks",
            ));
        }
        // An idle thread takes it, or a new one is started while there is room.
        if state.threads.len() < self.max {
            let claimed = self
                .idle
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if !claimed {
                self.start_thread(&mut state)?;
            }
        }
        // Sent under the lock (a send on an unbounded channel never blocks, and no thread of
        // the pool takes this lock but to break it), which saves a clone of the sender.
        let sender = state.sender.as_ref().expect("checked above");
        sender
            .send(task)
            .map_err(|_| Error::InvalidState("the pool is shut down and takes no more tasks"))
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
        self.lock().sender = None;
        if queued == QueuedTasks::Cancel {
            for task in self.receiver.try_iter() {
                task.cancel(Error::Cancelled);
            }
        }
    }

    /// Whether the pool was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().sender.is_none()
    }

    /// Waits for every thread to end (after `close`).
    pub(crate) fn join(&self) {
        let threads = std::mem::take(&mut self.lock().threads);
        let me = std::thread::current().id();
        for thread in threads {
            // A task that joins its own pool would wait for itself.
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}
