//! The executors of `concurrent.futures` — `ThreadPoolExecutor` and `ProcessPoolExecutor` —
//! with their `Future`s, `wait` and `as_completed`: ports of CPython's
//! `Lib/test/test_concurrent_futures/` (each test names the one it comes from), run with real
//! worker processes; and what Python's executors cannot do: outlive a worker that dies, cancel
//! a running task, give a task a time limit.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use proc_ipc::Queue;
use proc_pool::core::{Error, Result, codec};
use proc_pool::{
    Future, Imap, Pool, ProcessPoolExecutor, ReturnWhen, ThreadPoolExecutor, as_completed, wait,
};
use proc_sync::Event;
use procs_testkit::{PATIENCE, assert_send_sync, each_method, eventually};
#[cfg(unix)]
use procs_testkit::{alive, thread_states};
use serde::de::DeserializeOwned;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

// ---------------------------------------------------------------------------------------------
// One interface over both executors (CPython's `create_executor_tests` mixins).

/// What crosses to a worker process and back.
trait Wire: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// The calls that both executors share, so that one scenario runs on each of them.
trait Executor: Sized {
    /// An executor of `workers` threads or processes.
    fn start(workers: usize) -> Self;

    /// CPython's `submit(fn, *args)`.
    fn submit<F, A, R>(&self, f: F, args: A) -> Result<Future<R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Wire,
        R: Wire;

    /// CPython's `map(fn, *iterables, timeout, chunksize)`.
    fn map_with<F, I, A, R>(
        &self,
        f: F,
        items: I,
        chunksize: usize,
        timeout: Option<Duration>,
    ) -> Result<Imap<I::IntoIter, R>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = A>,
        A: Wire,
        R: Wire;

    /// CPython's `shutdown(wait, cancel_futures)`.
    fn shutdown(&self, wait: bool, cancel_futures: bool);
}

macro_rules! impl_executor {
    ($($executor:ident),*) => {$(
        impl Executor for $executor {
            fn start(workers: usize) -> Self {
                $executor::new(workers).unwrap()
            }

            fn submit<F, A, R>(&self, f: F, args: A) -> Result<Future<R>>
            where
                F: Fn(A) -> R + Copy + Send + Sync + 'static,
                A: Wire,
                R: Wire,
            {
                $executor::submit(self, f, args)
            }

            fn map_with<F, I, A, R>(
                &self,
                f: F,
                items: I,
                chunksize: usize,
                timeout: Option<Duration>,
            ) -> Result<Imap<I::IntoIter, R>>
            where
                F: Fn(A) -> R + Copy + Send + Sync + 'static,
                I: IntoIterator<Item = A>,
                A: Wire,
                R: Wire,
            {
                $executor::map_with(self, f, items, chunksize, timeout)
            }

            fn shutdown(&self, wait: bool, cancel_futures: bool) {
                $executor::shutdown(self, wait, cancel_futures)
            }
        }
    )*};
}

impl_executor!(ThreadPoolExecutor, ProcessPoolExecutor);

// ---------------------------------------------------------------------------------------------
// Tasks. Process tasks are `fn`s: a worker process gets only what the arguments carry.

fn mul((x, y): (u64, u64)) -> u64 {
    x * y
}

/// CPython's `divmod(x, 0)`: panics on a zero divisor.
fn divide((x, y): (u64, u64)) -> u64 {
    x / y
}

fn square(x: u64) -> u64 {
    x * x
}

fn nap(ms: u64) -> u64 {
    thread::sleep(Duration::from_millis(ms));
    ms
}

/// CPython's `event.wait`, then a value that tells the task apart.
fn gated((gate, value): (Event, u64)) -> u64 {
    gate.wait();
    value
}

/// CPython's `wait_and_raise`.
fn gated_panic(gate: Event) -> u64 {
    gate.wait();
    panic!("this is an exception")
}

fn pass_gate(gate: Option<Event>) -> u64 {
    if let Some(gate) = gate {
        gate.wait();
    }
    1
}

/// CPython's `os.getpid`.
fn worker_pid((): ()) -> u32 {
    std::process::id()
}

#[cfg(unix)]
fn signal_then_nap((started, ms): (Queue<()>, u64)) -> u64 {
    started.put(()).unwrap();
    nap(ms)
}

#[cfg(unix)]
fn report_pid_and_wait((pids, gate): (Queue<u32>, Event)) -> u64 {
    pids.put(std::process::id()).unwrap();
    gate.wait();
    0
}

/// CPython's `_crash`, with `abort` for a segfault.
#[cfg(unix)]
fn crash((): ()) -> u64 {
    std::process::abort()
}

#[cfg(unix)]
fn crash_after(ms: u64) -> u64 {
    thread::sleep(Duration::from_millis(ms));
    std::process::abort()
}

/// CPython's `_crash_with_data`.
#[cfg(unix)]
fn crash_with_data(_data: ByteBuf) -> u64 {
    std::process::abort()
}

/// CPython's `_exit`, with a code of 3.
#[cfg(unix)]
fn exit_3((): ()) -> u64 {
    std::process::exit(3)
}

#[cfg(unix)]
/// CPython's `_raise_error`.
fn raise_error((): ()) -> u64 {
    panic!("this is an error")
}

fn length(data: ByteBuf) -> usize {
    data.len()
}

fn big_result(len: usize) -> ByteBuf {
    ByteBuf::from(vec![b'a'; len])
}

#[cfg(unix)]
fn report_pid_then_big_result((pids, len): (Queue<u32>, usize)) -> ByteBuf {
    pids.put(std::process::id()).unwrap();
    big_result(len)
}

/// How a [`Bad`] value misbehaves on the wire: CPython's `ErrorAtPickle`, `ExitAtUnpickle`,
/// `CrashAtUnpickle` and the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Misbehaviour {
    ErrorAtPickle,
    ExitAtPickle,
    CrashAtPickle,
    ErrorAtUnpickle,
    ExitAtUnpickle,
    CrashAtUnpickle,
}

/// A value whose `Serialize` or `Deserialize` fails, exits the process or aborts it. Those that
/// exit or abort must only be encoded or decoded in a worker: here they would end the test run.
#[derive(Debug, Clone)]
struct Bad(Misbehaviour);

impl Serialize for Bad {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Misbehaviour::ErrorAtPickle => Err(S::Error::custom("error in pickle")),
            Misbehaviour::ExitAtPickle => std::process::exit(3),
            Misbehaviour::CrashAtPickle => std::process::abort(),
            other => other.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Bad {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bad, D::Error> {
        match Misbehaviour::deserialize(deserializer)? {
            Misbehaviour::ErrorAtUnpickle => Err(codec::de_error("error in unpickle")),
            Misbehaviour::ExitAtUnpickle => std::process::exit(3),
            Misbehaviour::CrashAtUnpickle => std::process::abort(),
            other => Ok(Bad(other)),
        }
    }
}

/// CPython's `id`, as the task that `test_*_at_task_*` submit.
fn take(_: Bad) -> u64 {
    0
}

/// CPython's `_return_instance`.
fn return_instance(misbehaviour: Misbehaviour) -> Bad {
    Bad(misbehaviour)
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// An event for tasks to wait on, and a guard that sets it when dropped, so that a failing test
/// leaves no task waiting for ever (CPython's `try: ... finally: event.set()`).
fn gate_and_release() -> (Event, Release) {
    let event = Event::new().unwrap();
    (event.clone(), Release(event))
}

struct Release(Event);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// The value of a task, which must come within `PATIENCE`.
fn value<R: Clone>(future: &Future<R>) -> R {
    match future.result_timeout(PATIENCE) {
        Ok(value) => value,
        Err(e) => panic!("the task did not give its value: {e}"),
    }
}

/// The error a task ends with. As in CPython's `_check_error`, a future that does not finish
/// within `PATIENCE` is a deadlock.
fn error_of<R>(future: &Future<R>) -> Error {
    match future.exception_timeout(PATIENCE) {
        Ok(Some(error)) => error,
        Ok(None) => panic!("the task succeeded"),
        Err(_) => panic!("deadlock: the future did not finish within {PATIENCE:?}"),
    }
}

/// Python's executors break after a crash; ours run the next task.
fn assert_runs_tasks<E: Executor>(executor: &E) {
    assert_eq!(value(&executor.submit(mul, (6, 7)).unwrap()), 42);
}

/// Runs `f` on a thread and fails the test when it has not returned within `PATIENCE`
/// (CPython's `_fail_on_deadlock`).
fn within_patience<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("deadlock: {what} took over {PATIENCE:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

#[cfg(unix)]
fn kill(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(sent, 0, "kill worker {pid}");
}

/// What a future holds, without waiting: its value, `cancelled`, `panicked`, or `unfinished`.
fn state(future: &Future<u64>) -> String {
    if !future.done() {
        return "unfinished".to_string();
    }
    match future.result() {
        Ok(value) => value.to_string(),
        Err(e) if e.is_cancelled() => "cancelled".to_string(),
        Err(e) if e.is_panic() => "panicked".to_string(),
        Err(e) => e.to_string(),
    }
}

/// The states of `futures`, sorted: `wait` returns sets, as Python's does.
fn states(futures: &[Future<u64>]) -> Vec<String> {
    let mut states: Vec<String> = futures.iter().map(state).collect();
    states.sort();
    states
}

/// Futures that are over already: CPython's `SUCCESSFUL_FUTURE` (here with 5),
/// `EXCEPTION_FUTURE` and `CANCELLED_AND_NOTIFIED_FUTURE`.
struct Over {
    successful: Future<u64>,
    failed: Future<u64>,
    cancelled: Future<u64>,
}

fn over() -> Over {
    let executor = ThreadPoolExecutor::new(1).unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let successful = executor
        .submit(
            move |()| {
                let _ = rx.recv();
                5
            },
            (),
        )
        .unwrap();
    // The one thread is held by `successful` until this one is cancelled.
    let cancelled = executor.submit(|()| 0, ()).unwrap();
    assert!(cancelled.cancel());
    tx.send(()).unwrap();
    let failed = executor.submit(|()| -> u64 { panic!("test") }, ()).unwrap();
    executor.shutdown(true, false);
    Over {
        successful,
        failed,
        cancelled,
    }
}

// ---------------------------------------------------------------------------------------------
// test_deadlock: failures in a worker end the one future, never in a hang.

// Ports of CPython test_deadlock.ExecutorDeadlockTest.test_crash_during_func_exec_on_worker,
// test_exit_during_func_exec_on_worker and test_error_during_func_exec_on_worker.
#[cfg(unix)]
#[test]
fn a_crash_an_exit_or_a_panic_in_a_task_fails_only_that_task() {
    each_method(|method| {
        let executor = ProcessPoolExecutor::builder()
            .max_workers(2)
            .start_method(method)
            .build()
            .unwrap();

        let error = error_of(&executor.submit(crash, ()).unwrap());
        assert!(
            matches!(error, Error::WorkerDied { exitcode: -6 }),
            "{method}: {error}"
        );
        assert_runs_tasks(&executor);

        // Python gets `SystemExit` back; a Rust `exit` ends the worker.
        let error = error_of(&executor.submit(exit_3, ()).unwrap());
        assert!(
            matches!(error, Error::WorkerDied { exitcode: 3 }),
            "{method}: {error}"
        );
        assert_eq!(error.exitcode(), Some(3));
        assert_runs_tasks(&executor);

        let error = error_of(&executor.submit(raise_error, ()).unwrap());
        assert!(
            matches!(&error, Error::Panicked { message, .. } if message.contains("this is an error")),
            "{method}: {error}"
        );
        assert_runs_tasks(&executor);
    });
}

/// `n * 2`, but item 13 kills its worker and item 7 panics.
#[cfg(unix)]
fn double_but_13_dies_and_7_panics(n: u64) -> u64 {
    match n {
        13 => std::process::abort(),
        7 => panic!("seven"),
        n => n * 2,
    }
}

// `map_unordered`, which proc-mpi's executor shares with this one (one `Executor` front):
// every item's outcome comes exactly once, in completion order, and a worker that dies or a
// task that panics fails only its own chunk's items.
#[cfg(unix)]
#[test]
fn map_unordered_gives_every_outcome_once_when_a_worker_dies() {
    each_method(|method| {
        let executor = ProcessPoolExecutor::builder()
            .max_workers(2)
            .start_method(method)
            .build()
            .unwrap();
        let mut ok = Vec::new();
        let mut died = 0;
        let mut panicked = 0;
        for outcome in executor
            .map_unordered(double_but_13_dies_and_7_panics, 0..40u64, 1)
            .unwrap()
        {
            match outcome {
                Ok(v) => ok.push(v),
                Err(Error::WorkerDied { exitcode: -6 }) => died += 1,
                Err(Error::Panicked { message, .. }) if message.contains("seven") => panicked += 1,
                Err(other) => panic!("{method}: {other}"),
            }
        }
        ok.sort_unstable();
        let expected: Vec<u64> = (0..40u64)
            .filter(|&n| n != 13 && n != 7)
            .map(|n| n * 2)
            .collect();
        assert_eq!(ok, expected, "{method}");
        assert_eq!((died, panicked), (1, 1), "{method}");
        assert_runs_tasks(&executor);
    });
}

// Ports of CPython test_deadlock.ExecutorDeadlockTest.test_error_at_task_pickle,
// test_error_at_task_unpickle, test_exit_at_task_unpickle and test_crash_at_task_unpickle.
#[test]
fn arguments_that_fail_on_the_wire_fail_only_their_task() {
    let executor = ProcessPoolExecutor::new(2).unwrap();

    // The arguments are encoded in `submit`, so it is `submit` that fails.
    let refused = executor.submit(take, Bad(Misbehaviour::ErrorAtPickle));
    assert!(matches!(refused, Err(Error::Decode(_))));

    let error = error_of(
        &executor
            .submit(take, Bad(Misbehaviour::ErrorAtUnpickle))
            .unwrap(),
    );
    assert!(
        matches!(&error, Error::Decode(message) if message.contains("error in unpickle")),
        "{error}"
    );
    assert_runs_tasks(&executor);

    let error = error_of(
        &executor
            .submit(take, Bad(Misbehaviour::ExitAtUnpickle))
            .unwrap(),
    );
    assert!(
        matches!(error, Error::WorkerDied { exitcode: 3 }),
        "{error}"
    );
    assert_runs_tasks(&executor);

    if cfg!(unix) {
        let error = error_of(
            &executor
                .submit(take, Bad(Misbehaviour::CrashAtUnpickle))
                .unwrap(),
        );
        assert!(
            matches!(error, Error::WorkerDied { exitcode: -6 }),
            "{error}"
        );
        assert_runs_tasks(&executor);
    }
}

// Ports of CPython test_deadlock.ExecutorDeadlockTest.test_error_during_result_pickle_on_worker,
// test_exit_during_result_pickle_on_worker, test_crash_during_result_pickle_on_worker and
// test_error_during_result_unpickle_in_result_handler.
#[test]
fn results_that_fail_on_the_wire_fail_only_their_task() {
    let executor = ProcessPoolExecutor::new(2).unwrap();

    let error = error_of(
        &executor
            .submit(return_instance, Misbehaviour::ErrorAtPickle)
            .unwrap(),
    );
    assert!(
        matches!(&error, Error::Decode(message) if message.contains("cannot encode the result")),
        "{error}"
    );
    assert_runs_tasks(&executor);

    let error = error_of(
        &executor
            .submit(return_instance, Misbehaviour::ExitAtPickle)
            .unwrap(),
    );
    assert!(
        matches!(error, Error::WorkerDied { exitcode: 3 }),
        "{error}"
    );
    assert_runs_tasks(&executor);

    if cfg!(unix) {
        let error = error_of(
            &executor
                .submit(return_instance, Misbehaviour::CrashAtPickle)
                .unwrap(),
        );
        assert!(
            matches!(error, Error::WorkerDied { exitcode: -6 }),
            "{error}"
        );
        assert_runs_tasks(&executor);
    }

    // The worker sends the result whole; it is the parent that cannot decode it.
    let error = error_of(
        &executor
            .submit(return_instance, Misbehaviour::ErrorAtUnpickle)
            .unwrap(),
    );
    assert!(
        matches!(&error, Error::Decode(message) if message.contains("error in unpickle")),
        "{error}"
    );
    assert_runs_tasks(&executor);
}

// Port of CPython test_process_pool.ProcessPoolExecutorTest.test_killed_child: Python's
// executor breaks; ours fails the task with SIGKILL's exit code and replaces the worker.
#[cfg(unix)]
#[test]
fn a_killed_worker_fails_only_its_task_and_is_replaced() {
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let victim = value(&executor.submit(worker_pid, ()).unwrap());
    let started = Queue::new().unwrap();
    let slow = executor
        .submit(signal_then_nap, (started.clone(), 30_000))
        .unwrap();
    started.get_timeout(PATIENCE).unwrap();
    kill(victim);

    let error = error_of(&slow);
    assert!(
        matches!(error, Error::WorkerDied { exitcode: -9 }),
        "{error}"
    );
    assert_eq!(error.exitcode(), Some(-9));
    assert_eq!(error.signal(), Some(libc::SIGKILL));
    assert_runs_tasks(&executor);
    assert_ne!(value(&executor.submit(worker_pid, ()).unwrap()), victim);
    eventually("the killed worker is reaped", || !alive(victim));
}

// Ports of CPython test_process_pool.ProcessPoolExecutorTest.test_killed_child and
// test_broken_process_pool_traceback, with Python's behaviour asked for.
#[cfg(unix)]
#[test]
fn broken_on_crash_breaks_the_executor_as_python_does() {
    let executor = ProcessPoolExecutor::builder()
        .max_workers(2)
        .broken_on_crash(true)
        .build()
        .unwrap();
    let (gate, _release) = gate_and_release();
    let pids = Queue::new().unwrap();
    let running = executor
        .submit(report_pid_and_wait, (pids.clone(), gate.clone()))
        .unwrap();
    let others: Vec<_> = (0..3)
        .map(|_| executor.submit(gated, (gate.clone(), 1)).unwrap())
        .collect();
    kill(pids.get_timeout(PATIENCE).unwrap());

    let error = error_of(&running);
    assert!(
        matches!(
            error,
            Error::WorkerDied { exitcode: -9 } | Error::BrokenPool(_)
        ),
        "{error}"
    );
    for future in &others {
        let error = error_of(future);
        assert!(matches!(error, Error::BrokenPool(_)), "{error}");
    }
    assert!(matches!(
        executor.submit(mul, (2, 8)),
        Err(Error::BrokenPool(_))
    ));
}

// The start of CPython test_deadlock.ExecutorDeadlockTest.test_crash_big_data: data far larger
// than a pipe's buffer crosses to a worker and back whole.
#[test]
fn fifty_megabytes_cross_to_a_worker_and_back() {
    const BIG: usize = 50 << 20;
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let data = ByteBuf::from(vec![b'a'; BIG]);
    assert_eq!(value(&executor.submit(length, data).unwrap()), BIG);
    let back = executor
        .submit(big_result, BIG)
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(back.len(), BIG);
    assert_eq!((back[0], back[BIG - 1]), (b'a', b'a'));
}

// Port of CPython test_deadlock.ExecutorDeadlockTest.test_crash_big_data (gh-94777).
#[cfg(unix)]
#[test]
fn a_crash_with_big_data_in_flight_fails_each_task() {
    // CPython's `support.PIPE_MAX_SIZE`: more than any pipe buffers.
    const PIPE_MAX_SIZE: usize = (4 << 20) + 1;
    let executor = ProcessPoolExecutor::new(2).unwrap();
    let data = ByteBuf::from(vec![b'a'; PIPE_MAX_SIZE]);
    let results: Vec<_> = executor
        .map_with(
            crash_with_data,
            std::iter::repeat_n(data, 6),
            1,
            Some(PATIENCE),
        )
        .unwrap()
        .collect();
    assert_eq!(results.len(), 6);
    for result in results {
        let error = result.expect_err("the task crashed");
        assert!(
            matches!(error, Error::WorkerDied { exitcode: -6 }),
            "{error}"
        );
    }

    let fifty_megabytes = ByteBuf::from(vec![b'a'; 50 << 20]);
    let error = error_of(&executor.submit(crash_with_data, fifty_megabytes).unwrap());
    assert!(
        matches!(error, Error::WorkerDied { exitcode: -6 }),
        "{error}"
    );
    assert_runs_tasks(&executor);
}

// CPython test_deadlock.ExecutorDeadlockTest.test_crash_big_data the other way round: the
// worker dies half-way through writing a big result.
#[cfg(unix)]
#[test]

fn a_worker_killed_while_it_sends_a_big_result_fails_only_that_task() {
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let (gate, _release) = gate_and_release();
    let pids = Queue::new().unwrap();
    // The done-callback of `first` runs on the executor's result thread and holds it, so that
    // nobody reads the big result while the worker writes it.
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (unblock, blocked) = mpsc::channel::<()>();
    let first = executor.submit(gated, (gate.clone(), 1)).unwrap();
    first.add_done_callback(move |_| {
        entered_tx.send(()).unwrap();
        let _ = blocked.recv();
    });
    let big = executor
        .submit(report_pid_then_big_result, (pids.clone(), 50 << 20))
        .unwrap();
    gate.set();
    entered.recv_timeout(PATIENCE).unwrap();
    let pid = pids.get_timeout(PATIENCE).unwrap();
    eventually("the worker blocks writing its result", || {
        thread_states(pid).is_none_or(|states| states.iter().all(|s| *s == 'S'))
    });
    kill(pid);
    unblock.send(()).unwrap();

    let error = error_of(&big);
    assert!(
        matches!(error, Error::WorkerDied { exitcode: -9 }),
        "{error}"
    );
    assert_eq!(value(&first), 1);
    assert_runs_tasks(&executor);
}

// Port of CPython test_deadlock.ExecutorDeadlockTest.test_shutdown_deadlock.
#[cfg(unix)]
#[test]
fn shutdown_while_a_worker_crashes_does_not_deadlock() {
    let executor = ProcessPoolExecutor::new(2).unwrap();
    let future = executor.submit(crash_after, 100).unwrap();
    within_patience("shutdown", move || executor.shutdown(true, false));
    let error = error_of(&future);
    assert!(
        matches!(error, Error::WorkerDied { exitcode: -6 }),
        "{error}"
    );
}

// Not in CPython, whose workers cannot be given a time limit (billiard's hard time limit).
#[test]
fn a_task_past_task_timeout_fails_and_the_executor_goes_on() {
    let executor = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let slow = executor.submit(nap, 30_000).unwrap();
    let error = error_of(&slow);
    assert!(matches!(error, Error::Timeout), "{error}");
    assert_runs_tasks(&executor);
}

// ---------------------------------------------------------------------------------------------
// test_shutdown

// Port of CPython test_shutdown.ExecutorShutdownTest.test_run_after_shutdown.
fn run_after_shutdown<E: Executor>() {
    let executor = E::start(2);
    executor.shutdown(true, false);
    assert!(matches!(
        executor.submit(mul, (2, 5)),
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        executor.map_with(square, 0..3, 1, None),
        Err(Error::InvalidState(_))
    ));
}

#[test]
fn submit_after_shutdown_is_refused() {
    run_after_shutdown::<ThreadPoolExecutor>();
    run_after_shutdown::<ProcessPoolExecutor>();
}

// Ports of CPython test_shutdown.ExecutorShutdownTest.test_hang_issue12364 and
// test_shutdown_no_wait.
fn shutdown_lets_queued_tasks_finish<E: Executor + Send + 'static>() {
    let executor = E::start(2);
    let naps: Vec<_> = (0..50).map(|_| executor.submit(nap, 5).unwrap()).collect();
    let executor = within_patience("shutdown", move || {
        executor.shutdown(true, false);
        executor
    });
    for future in &naps {
        assert!(future.done());
        assert_eq!(value(future), 5);
    }
    drop(executor);

    let executor = E::start(2);
    let squares: Vec<_> = (0..10)
        .map(|i| executor.submit(square, i).unwrap())
        .collect();
    executor.shutdown(false, false);
    for (i, future) in (0..10).zip(&squares) {
        assert_eq!(value(future), i * i);
    }
}

#[test]
fn shutdown_lets_queued_tasks_finish_and_does_not_hang() {
    shutdown_lets_queued_tasks_finish::<ThreadPoolExecutor>();
    shutdown_lets_queued_tasks_finish::<ProcessPoolExecutor>();
}

// Port of CPython test_shutdown.ExecutorShutdownTest.test_cancel_futures.
fn cancel_futures<E: Executor>() {
    let executor = E::start(2);
    let futures: Vec<_> = (0..50)
        .map(|_| executor.submit(nap, 100).unwrap())
        .collect();
    eventually("a worker has taken the first task", || {
        futures[0].running() || futures[0].done()
    });
    executor.shutdown(true, true);

    let cancelled = futures.iter().filter(|f| f.cancelled()).count();
    assert!(cancelled > 20, "only {cancelled} of 50 were cancelled");
    let others: Vec<_> = futures.iter().filter(|f| !f.cancelled()).collect();
    assert!(!others.is_empty(), "the running tasks were cancelled too");
    for future in others {
        assert!(future.done(), "{future:?} is left unfinished");
        assert!(future.exception().is_none());
    }
}

#[test]
fn shutdown_with_cancel_futures_cancels_the_tasks_not_started() {
    cancel_futures::<ThreadPoolExecutor>();
    cancel_futures::<ProcessPoolExecutor>();
}

// Port of CPython test_shutdown.ExecutorShutdownTest.test_hang_gh94440.
fn cancel_then_shutdown<E: Executor + Send + 'static>() {
    let executor = E::start(1);
    assert_eq!(value(&executor.submit(mul, (1, 1)).unwrap()), 1);
    let _ = executor.submit(mul, (2, 2)).unwrap().cancel();
    within_patience("shutdown", move || executor.shutdown(true, false));
}

#[test]
fn shutdown_right_after_a_cancel_does_not_hang() {
    cancel_then_shutdown::<ThreadPoolExecutor>();
    cancel_then_shutdown::<ProcessPoolExecutor>();
}

// Ports of CPython test_shutdown.ThreadPoolShutdownTest.test_context_manager_shutdown and
// test_del_shutdown (and their ProcessPoolShutdownTest twins): dropping an executor is leaving
// Python's `with` block.
fn drop_waits<E: Executor>() {
    let futures: Vec<_> = {
        let executor = E::start(2);
        (0..6).map(|_| executor.submit(nap, 20).unwrap()).collect()
    };
    for future in &futures {
        assert!(future.done());
        assert_eq!(value(future), 20);
    }
}

#[test]
fn dropping_an_executor_waits_for_its_tasks() {
    drop_waits::<ThreadPoolExecutor>();
    drop_waits::<ProcessPoolExecutor>();
}

// Port of CPython test_shutdown.ProcessPoolShutdownTest.test_processes_terminate.
#[cfg(unix)]
#[test]
fn dropping_a_process_executor_ends_its_workers() {
    let pids: BTreeSet<u32> = {
        let executor = ProcessPoolExecutor::new(2).unwrap();
        let (gate, _release) = gate_and_release();
        let pids = Queue::new().unwrap();
        // Both hold their worker until both have reported, so both workers are seen.
        let futures: Vec<_> = (0..2)
            .map(|_| {
                executor
                    .submit(report_pid_and_wait, (pids.clone(), gate.clone()))
                    .unwrap()
            })
            .collect();
        let seen = (0..2)
            .map(|_| pids.get_timeout(PATIENCE).unwrap())
            .collect();
        gate.set();
        for future in &futures {
            assert_eq!(value(future), 0);
        }
        seen
    };
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(!alive(pid), "worker {pid} outlived its executor");
    }
}

// ---------------------------------------------------------------------------------------------
// test_process_pool: max_tasks_per_child

// Port of CPython test_process_pool.ProcessPoolExecutorTest.test_max_tasks_per_child.
#[test]
fn a_worker_is_replaced_after_max_tasks_per_child() {
    let executor = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..4)
        .map(|_| value(&executor.submit(worker_pid, ()).unwrap()))
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[0], pids[3]);
}

// Port of CPython test_process_pool.ProcessPoolExecutorTest.test_max_tasks_per_child with a
// limit of 1 (which Python refuses under fork; ours replaces forked workers from the fork
// server).
#[test]
fn max_tasks_per_child_of_one_gives_every_task_a_fresh_worker() {
    each_method(|method| {
        let executor = ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_tasks_per_child(1)
            .start_method(method)
            .build()
            .unwrap();
        let mut pids: Vec<u32> = (0..3)
            .map(|_| value(&executor.submit(worker_pid, ()).unwrap()))
            .collect();
        let at_once: Vec<_> = (0..3)
            .map(|_| executor.submit(worker_pid, ()).unwrap())
            .collect();
        pids.extend(at_once.iter().map(value));
        let distinct: BTreeSet<u32> = pids.iter().copied().collect();
        assert_eq!(distinct.len(), 6, "{method}: {pids:?}");
    });
}

// Port of CPython test_process_pool.ProcessPoolExecutorTest
// .test_max_tasks_per_child_pending_tasks_gh115634.
#[test]
fn workers_retiring_at_max_tasks_per_child_leave_no_task_behind() {
    for (max_workers, max_tasks, tasks) in [(1, 2, 6), (2, 2, 8)] {
        let executor = ProcessPoolExecutor::builder()
            .max_workers(max_workers)
            .max_tasks_per_child(max_tasks)
            .build()
            .unwrap();
        let futures: Vec<_> = (0..tasks)
            .map(|i| executor.submit(mul, (i, 2)).unwrap())
            .collect();
        let results: Vec<u64> = futures.iter().map(value).collect();
        assert_eq!(results, (0..tasks).map(|i| i * 2).collect::<Vec<_>>());
        executor.shutdown(true, true);
    }
}

// ---------------------------------------------------------------------------------------------
// test_init

thread_local! {
    static THREAD_STATUS: Cell<&'static str> = const { Cell::new("uninitialized") };
}

static PROCESS_STATUS: OnceLock<String> = OnceLock::new();

fn set_status(status: String) {
    PROCESS_STATUS.set(status).unwrap();
}

fn init_status((): ()) -> String {
    PROCESS_STATUS
        .get()
        .cloned()
        .unwrap_or_else(|| "uninitialized".into())
}

// Port of CPython test_init.InitializerMixin.test_initializer.
#[test]
fn the_initializer_runs_in_every_worker_before_its_tasks() {
    let threads = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(|| THREAD_STATUS.set("initialized"))
        .build()
        .unwrap();
    let statuses: Vec<_> = (0..2)
        .map(|_| threads.submit(|()| THREAD_STATUS.get(), ()).unwrap())
        .collect();
    for status in &statuses {
        assert_eq!(value(status), "initialized");
    }

    let processes = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(set_status, "initialized".to_string())
        .build()
        .unwrap();
    let statuses: Vec<_> = (0..2)
        .map(|_| processes.submit(init_status, ()).unwrap())
        .collect();
    for status in &statuses {
        assert_eq!(value(status), "initialized");
    }
}

fn assert_initializer_error(error: &Error) {
    assert!(
        matches!(error, Error::BrokenPool(why) if why.contains("error in initializer")),
        "{error}"
    );
}

/// CPython's `FailingInitializerMixin.test_initializer`: the first task fails (or cannot be
/// submitted) with the initializer's error, and from some point on every submission does.
fn assert_broken_by_initializer(submit: impl Fn() -> Result<Future<u64>>) {
    match submit() {
        Ok(future) => assert_initializer_error(&error_of(&future)),
        Err(error) => assert_initializer_error(&error),
    }
    eventually("the executor is broken", || submit().is_err());
    assert_initializer_error(&submit().err().unwrap());
}

fn init_returns_err() -> std::result::Result<(), String> {
    Err("error in initializer".into())
}

fn init_panics() {
    panic!("error in initializer")
}

// Port of CPython test_init.FailingInitializerMixin.test_initializer, for threads.
#[test]
fn a_failing_thread_initializer_breaks_the_executor() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let executor = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            init_returns_err()
        })
        .build()
        .unwrap();
    assert_broken_by_initializer(|| executor.submit(|()| 1, ()));
    drop(executor);
    let calls = calls.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&calls),
        "the initializer ran {calls} times"
    );

    let executor = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(init_panics)
        .build()
        .unwrap();
    assert_broken_by_initializer(|| executor.submit(|()| 1, ()));
}

fn init_reports_then_fails(pids: Queue<u32>) -> std::result::Result<(), String> {
    pids.put(std::process::id()).unwrap();
    init_returns_err()
}

fn init_reports_then_panics(pids: Queue<u32>) {
    pids.put(std::process::id()).unwrap();
    init_panics();
}

/// The pids the initializers reported, once the executor is shut down.
fn reported(pids: &Queue<u32>) -> Vec<u32> {
    std::iter::from_fn(|| pids.get_nowait().ok()).collect()
}

// Port of CPython test_init.FailingInitializerMixin.test_initializer, for processes: the
// executor breaks instead of starting workers again and again.
#[test]
fn a_failing_process_initializer_breaks_the_executor_without_respawning() {
    let pids = Queue::new().unwrap();
    let executor = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(init_reports_then_fails, pids.clone())
        .build()
        .unwrap();
    assert_broken_by_initializer(|| executor.submit(mul, (1, 1)));
    executor.shutdown(true, false);
    let started = reported(&pids);
    assert!((1..=2).contains(&started.len()), "{started:?}");

    let executor = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(init_reports_then_panics, pids.clone())
        .build()
        .unwrap();
    assert_broken_by_initializer(|| executor.submit(mul, (1, 1)));
    executor.shutdown(true, false);
    let started = reported(&pids);
    assert!((1..=2).contains(&started.len()), "{started:?}");
}

// ---------------------------------------------------------------------------------------------
// test_wait

// Port of CPython test_wait.WaitTests.test_20369.
fn wait_counts_a_duplicate_once<E: Executor>(executor: &E) {
    let future = executor.submit(mul, (1, 2)).unwrap();
    let (done, not_done) = wait(&[future.clone(), future], None, ReturnWhen::AllCompleted);
    assert_eq!(states(&done), ["2"]);
    assert!(not_done.is_empty());
}

// Port of CPython test_wait.WaitTests.test_first_completed.
fn first_completed<E: Executor>(executor: &E) {
    let (gate, _release) = gate_and_release();
    let future1 = executor.submit(mul, (21, 2)).unwrap();
    let future2 = executor.submit(gated, (gate.clone(), 7)).unwrap();
    let (done, not_done) = wait(&[future1, future2], None, ReturnWhen::FirstCompleted);
    assert_eq!(states(&done), ["42"]);
    assert_eq!(states(&not_done), ["unfinished"]);
    gate.set();
    assert_eq!(value(&not_done[0]), 7);
}

// Port of CPython test_wait.WaitTests.test_first_completed_some_already_completed.
fn first_completed_some_already_completed<E: Executor>(executor: &E) {
    let over = over();
    let (gate, _release) = gate_and_release();
    let future1 = executor.submit(gated, (gate.clone(), 7)).unwrap();
    let (done, not_done) = wait(
        &[over.cancelled, over.successful, future1],
        None,
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(states(&done), ["5", "cancelled"]);
    assert_eq!(states(&not_done), ["unfinished"]);
}

// Port of CPython test_wait.WaitTests.test_first_exception.
fn first_exception<E: Executor>(executor: &E) {
    let (gate1, _release1) = gate_and_release();
    let (gate2, _release2) = gate_and_release();
    let future1 = executor.submit(mul, (2, 21)).unwrap();
    let future2 = executor.submit(gated_panic, gate1.clone()).unwrap();
    let future3 = executor.submit(gated, (gate2.clone(), 7)).unwrap();
    // `future1` finishes before `future2` fails.
    let first = future1.clone();
    let setter = thread::spawn(move || {
        let _ = first.result();
        gate1.set();
    });
    let (done, not_done) = wait(
        &[future1, future2, future3],
        None,
        ReturnWhen::FirstException,
    );
    setter.join().unwrap();
    assert_eq!(states(&done), ["42", "panicked"]);
    assert_eq!(states(&not_done), ["unfinished"]);
}

// Port of CPython test_wait.WaitTests.test_first_exception_some_already_complete. A cancelled
// future is done here (Python leaves one that was not notified pending), but not an exception.
fn first_exception_some_already_complete<E: Executor>(executor: &E) {
    let over = over();
    let (gate, _release) = gate_and_release();
    let future1 = executor.submit(divide, (21, 0)).unwrap();
    let future2 = executor.submit(gated, (gate.clone(), 7)).unwrap();
    let (done, not_done) = wait(
        &[over.successful, over.cancelled, future1, future2],
        None,
        ReturnWhen::FirstException,
    );
    assert_eq!(states(&done), ["5", "cancelled", "panicked"]);
    assert_eq!(states(&not_done), ["unfinished"]);
}

// Port of CPython test_wait.WaitTests.test_first_exception_one_already_failed.
fn first_exception_one_already_failed<E: Executor>(executor: &E) {
    let over = over();
    let (gate, _release) = gate_and_release();
    let future1 = executor.submit(gated, (gate.clone(), 7)).unwrap();
    let (done, not_done) = wait(&[over.failed, future1], None, ReturnWhen::FirstException);
    assert_eq!(states(&done), ["panicked"]);
    assert_eq!(states(&not_done), ["unfinished"]);
}

// Port of CPython test_wait.WaitTests.test_all_completed.
fn all_completed<E: Executor>(executor: &E) {
    let over = over();
    let future1 = executor.submit(divide, (2, 0)).unwrap();
    let future2 = executor.submit(mul, (2, 21)).unwrap();
    let (done, not_done) = wait(
        &[
            over.successful,
            over.cancelled,
            over.failed,
            future1,
            future2,
        ],
        None,
        ReturnWhen::AllCompleted,
    );
    assert_eq!(
        states(&done),
        ["42", "5", "cancelled", "panicked", "panicked"]
    );
    assert!(not_done.is_empty());
}

// Port of CPython test_wait.WaitTests.test_timeout.
fn wait_timeout<E: Executor>(executor: &E) {
    let over = over();
    let (gate, _release) = gate_and_release();
    let future = executor.submit(gated, (gate.clone(), 7)).unwrap();
    let (done, not_done) = wait(
        &[over.cancelled, over.failed, over.successful, future],
        Some(Duration::from_millis(50)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(states(&done), ["5", "cancelled", "panicked"]);
    assert_eq!(states(&not_done), ["unfinished"]);
}

#[test]
fn wait_returns_as_return_when_asks_on_threads() {
    let executor = ThreadPoolExecutor::start(3);
    wait_counts_a_duplicate_once(&executor);
    first_completed(&executor);
    first_completed_some_already_completed(&executor);
    first_exception(&executor);
    first_exception_some_already_complete(&executor);
    first_exception_one_already_failed(&executor);
    all_completed(&executor);
    wait_timeout(&executor);
}

#[test]
fn wait_returns_as_return_when_asks_on_processes() {
    let executor = ProcessPoolExecutor::start(3);
    wait_counts_a_duplicate_once(&executor);
    first_completed(&executor);
    first_completed_some_already_completed(&executor);
    first_exception(&executor);
    first_exception_some_already_complete(&executor);
    first_exception_one_already_failed(&executor);
    all_completed(&executor);
    wait_timeout(&executor);
}

// Behaviour of CPython's `concurrent.futures.wait`, which returns at once when every future
// given is done — also when none is given, whatever `return_when` says.
#[test]

fn wait_on_no_futures_returns_at_once() {
    for return_when in [
        ReturnWhen::AllCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::FirstCompleted,
    ] {
        let (done, not_done) = within_patience("wait on no futures", move || {
            wait::<u64>(&[], None, return_when)
        });
        assert!(done.is_empty() && not_done.is_empty(), "{return_when:?}");
    }
    assert_eq!(as_completed::<u64>(&[], None).count(), 0);
}

// Port of CPython test_wait.ThreadPoolWaitTests.test_pending_calls_race.
#[test]
fn waiting_for_all_of_many_futures_finished_together_returns() {
    let executor = ThreadPoolExecutor::new(4).unwrap();
    let (gate, _release) = gate_and_release();
    let futures: Vec<_> = (0..100)
        .map(|_| executor.submit(gated, (gate.clone(), 1)).unwrap())
        .collect();
    gate.set();
    let (done, not_done) = wait(&futures, Some(PATIENCE), ReturnWhen::AllCompleted);
    assert_eq!((done.len(), not_done.len()), (100, 0));
}

// ---------------------------------------------------------------------------------------------
// test_as_completed

// Port of CPython test_as_completed.AsCompletedTests.test_no_timeout.
fn as_completed_without_timeout<E: Executor>(executor: &E) {
    let over = over();
    let future1 = executor.submit(mul, (2, 21)).unwrap();
    let future2 = executor.submit(mul, (7, 6)).unwrap();
    let completed: Vec<_> = as_completed(
        &[
            over.cancelled,
            over.failed,
            over.successful,
            future1,
            future2,
        ],
        None,
    )
    .map(Result::unwrap)
    .collect();
    assert_eq!(
        states(&completed),
        ["42", "42", "5", "cancelled", "panicked"]
    );
}

// Not in CPython: the futures come in the order they finish, whatever the order given.
fn as_completed_in_completion_order<E: Executor>(executor: &E) {
    let gates: Vec<_> = (0..3).map(|_| gate_and_release()).collect();
    let futures: Vec<_> = (0..3)
        .map(|i| {
            executor
                .submit(gated, (gates[i].0.clone(), i as u64))
                .unwrap()
        })
        .collect();
    let mut completed = as_completed(&futures, Some(PATIENCE));
    // The third task may wait for a worker until one of the first two is done.
    for i in [1, 0, 2] {
        gates[i].0.set();
        let future = completed.next().unwrap().unwrap();
        assert_eq!(value(&future), i as u64);
    }
    assert!(completed.next().is_none());
}

// Port of CPython test_as_completed.AsCompletedTests.test_future_times_out.
fn as_completed_times_out<E: Executor>(executor: &E) {
    let over = over();
    for timeout in [Duration::ZERO, Duration::from_millis(100)] {
        let (gate, _release) = gate_and_release();
        let future = executor.submit(gated, (gate.clone(), 7)).unwrap();
        let mut items: Vec<_> = as_completed(
            &[
                over.cancelled.clone(),
                over.failed.clone(),
                over.successful.clone(),
                future,
            ],
            Some(timeout),
        )
        .collect();
        let error = items.pop().unwrap().expect_err("as_completed timed out");
        assert!(error.is_timeout());
        assert!(matches!(
            error,
            Error::FuturesUnfinished {
                unfinished: 1,
                total: 4
            }
        ));
        let completed: Vec<_> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(states(&completed), ["5", "cancelled", "panicked"]);
    }
}

// Port of CPython test_as_completed.AsCompletedTests.test_duplicate_futures.
fn as_completed_yields_a_duplicate_once<E: Executor>(executor: &E) {
    let future = executor.submit(nap, 20).unwrap();
    let completed = as_completed(&[future.clone(), future.clone(), future], None).count();
    assert_eq!(completed, 1);
}

/// The pattern of Python's `ThreadPoolExecutor` example: a map from each future to what it
/// works on, `as_completed` over the map's keys, the key looked up again; and `wait` over a
/// set, whose `done` says `contains` for the futures that finished. (Clippy cannot tell that
/// a future hashes by identity only.)
#[allow(clippy::mutable_key_type)]
fn futures_are_keys_of_maps_and_sets<E: Executor>(executor: &E) {
    let future_to_input: HashMap<Future<u64>, u64> = (1..=8u64)
        .map(|ms| (executor.submit(nap, ms).unwrap(), ms))
        .collect();
    let mut seen = BTreeSet::new();
    for future in as_completed(future_to_input.keys(), Some(PATIENCE)) {
        let future = future.unwrap();
        let input = future_to_input[&future];
        assert_eq!(future.result().unwrap(), input);
        assert!(seen.insert(input));
    }
    assert_eq!(seen, (1..=8).collect());

    let first = executor.submit(nap, 1).unwrap();
    let set: HashSet<Future<u64>> = [
        first.clone(),
        first.clone(),
        executor.submit(nap, 2).unwrap(),
    ]
    .into_iter()
    .collect();
    assert_eq!(set.len(), 2);
    let (done, not_done) = wait(&set, Some(PATIENCE), ReturnWhen::AllCompleted);
    assert_eq!((done.len(), not_done.len()), (2, 0));
    assert!(done.contains(&first));
}

/// `wait` and `as_completed` over tens of thousands of futures, duplicates among them, end
/// (they once compared every future with every other).
fn wait_and_as_completed_take_many_futures<E: Executor>(executor: &E, n: u64) {
    let mut futures: Vec<_> = (0..n)
        .map(|i| executor.submit(nap, u64::from(i % 1000 == 0)).unwrap())
        .collect();
    futures.extend(futures[..100].to_vec());
    let (done, not_done) = wait(&futures, Some(PATIENCE * 4), ReturnWhen::AllCompleted);
    assert_eq!((done.len(), not_done.len()), (n as usize, 0));
    let (done, _) = wait(&futures, None, ReturnWhen::FirstException);
    assert_eq!(done.len(), n as usize);
    assert_eq!(
        as_completed(&futures, Some(PATIENCE))
            .map(Result::unwrap)
            .count(),
        n as usize
    );
}

#[test]
fn as_completed_yields_futures_as_they_finish_on_threads() {
    let executor = ThreadPoolExecutor::start(2);
    as_completed_without_timeout(&executor);
    as_completed_in_completion_order(&executor);
    as_completed_times_out(&executor);
    as_completed_yields_a_duplicate_once(&executor);
    futures_are_keys_of_maps_and_sets(&executor);
    wait_and_as_completed_take_many_futures(&executor, 50_000);
}

#[test]
fn as_completed_yields_futures_as_they_finish_on_processes() {
    let executor = ProcessPoolExecutor::start(2);
    as_completed_without_timeout(&executor);
    as_completed_in_completion_order(&executor);
    as_completed_times_out(&executor);
    as_completed_yields_a_duplicate_once(&executor);
    futures_are_keys_of_maps_and_sets(&executor);
    wait_and_as_completed_take_many_futures(&executor, 5_000);
}

// Port of CPython test_as_completed.AsCompletedTests.test_correct_timeout_exception_msg.
#[test]
fn as_completed_says_how_many_futures_were_unfinished() {
    let over = over();
    let executor = ThreadPoolExecutor::new(1).unwrap();
    let (gate, _release) = gate_and_release();
    let running = executor.submit(gated, (gate.clone(), 1)).unwrap();
    let pending = executor.submit(gated, (gate.clone(), 2)).unwrap();
    let items: Vec<_> = as_completed(
        &[over.cancelled, pending, running, over.successful],
        Some(Duration::ZERO),
    )
    .collect();
    let error = items.last().unwrap().as_ref().err().unwrap();
    assert_eq!(error.to_string(), "2 (of 4) futures unfinished");
    assert_eq!(items.len(), 3);
}

// Not in CPython, whose futures belong to one executor each in practice: `wait` and
// `as_completed` take futures of both executors at once.
#[test]
fn wait_and_as_completed_take_futures_of_both_executors_at_once() {
    let threads = ThreadPoolExecutor::new(1).unwrap();
    let processes = ProcessPoolExecutor::new(1).unwrap();
    let (gate, _release) = gate_and_release();
    let from_thread = threads.submit(mul, (2, 3)).unwrap();
    let from_process = processes.submit(gated, (gate.clone(), 7)).unwrap();
    let both = [from_process.clone(), from_thread.clone()];
    let (done, not_done) = wait(&both, None, ReturnWhen::FirstCompleted);
    assert_eq!(states(&done), ["6"]);
    assert_eq!(states(&not_done), ["unfinished"]);

    let mut completed = as_completed(&both, Some(PATIENCE));
    assert_eq!(value(&completed.next().unwrap().unwrap()), 6);
    gate.set();
    assert_eq!(value(&completed.next().unwrap().unwrap()), 7);
    assert!(completed.next().is_none());
    let (done, _) = wait(&both, None, ReturnWhen::AllCompleted);
    assert_eq!(states(&done), ["6", "7"]);
}

// ---------------------------------------------------------------------------------------------
// test_future

// Ports of CPython test_future.FutureTests.test_cancel, test_cancelled, test_done,
// test_result_with_timeout, test_exception_with_timeout, test_done_callback_with_cancel,
// test_done_callback_already_cancelled and test_result_with_cancel.
fn cancel_rules<E: Executor>() {
    let executor = E::start(1);
    let (gate, _release) = gate_and_release();
    let busy = executor.submit(gated, (gate.clone(), 1)).unwrap();
    // A process worker may be handed these ahead of the one it runs; pending or handed
    // ahead, neither has started.
    let ahead = executor.submit(mul, (2, 2)).unwrap();
    let pending = executor.submit(mul, (3, 3)).unwrap();
    assert!(!pending.done());
    assert!(!pending.cancelled());
    assert!(
        pending
            .result_timeout(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );
    assert!(matches!(
        pending.exception_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));

    let (tx, rx) = mpsc::channel();
    let notified = tx.clone();
    pending.add_done_callback(move |f| notified.send(f.cancelled()).unwrap());
    assert!(pending.cancel());
    assert!(rx.recv_timeout(PATIENCE).unwrap());
    assert!(pending.cancelled());
    assert!(pending.done());
    assert!(!pending.running());
    assert!(pending.cancel(), "a cancelled future stays cancelled");
    assert!(pending.result().unwrap_err().is_cancelled());
    assert!(pending.exception().unwrap().is_cancelled());
    pending.add_done_callback(move |f| tx.send(f.cancelled()).unwrap());
    assert!(rx.try_recv().unwrap(), "the callback did not run at once");

    // Cancelled by another thread while this one waits for it.
    let later = executor.submit(mul, (4, 4)).unwrap();
    let cancelled = later.clone();
    let canceller = thread::spawn(move || cancelled.cancel());
    assert!(later.result().unwrap_err().is_cancelled());
    assert!(canceller.join().unwrap());
    // A process worker was handed `ahead` behind the task it runs (Python's call queue holds
    // one task more than its workers run), so it can no longer be cancelled; a thread
    // executor's `ahead` still waits in its queue.
    let ahead_cancelled = ahead.cancel();

    gate.set();
    if ahead_cancelled {
        assert!(ahead.cancelled());
    } else {
        assert_eq!(value(&ahead), 4);
    }
    assert_eq!(value(&busy), 1);
    assert!(!busy.cancel());
    assert!(!busy.cancelled());
    assert_eq!(value(&busy), 1);
    assert_runs_tasks(&executor);
}

#[test]
fn cancel_stops_a_pending_future_but_not_a_finished_one() {
    cancel_rules::<ThreadPoolExecutor>();
    cancel_rules::<ProcessPoolExecutor>();
}

// Port of CPython test_future.FutureTests.test_cancel for a RUNNING future: Python cannot
// cancel it; a process executor kills the worker that runs it.
#[cfg(unix)]
#[test]
fn cancel_stops_a_running_process_task_by_killing_its_worker() {
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let (gate, _release) = gate_and_release();
    let pids = Queue::new().unwrap();
    let running = executor
        .submit(report_pid_and_wait, (pids.clone(), gate.clone()))
        .unwrap();
    let pid = pids.get_timeout(PATIENCE).unwrap();
    assert!(running.running());
    assert!(running.cancel());
    assert!(running.cancelled());
    assert!(running.done());
    assert!(running.result().unwrap_err().is_cancelled());
    eventually("the worker of the cancelled task is gone", || !alive(pid));
    assert_runs_tasks(&executor);
    assert_ne!(value(&executor.submit(worker_pid, ()).unwrap()), pid);
}

// Port of CPython test_future.FutureTests.test_cancel for a RUNNING future of a thread, which
// cannot be stopped, as in Python.
#[test]
fn cancel_leaves_a_running_thread_task_alone() {
    let executor = ThreadPoolExecutor::new(1).unwrap();
    let (gate, _release) = gate_and_release();
    let (started_tx, started) = mpsc::channel();
    let running = executor
        .submit(
            move |gate: Event| {
                started_tx.send(()).unwrap();
                gate.wait();
                1
            },
            gate.clone(),
        )
        .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    assert!(running.running());
    assert!(!running.cancel());
    assert!(!running.cancelled());
    gate.set();
    assert_eq!(value(&running), 1);
}

// Ports of CPython test_future.FutureTests.test_done_callback_with_result,
// test_done_callback_raises, test_done_callback_already_successful,
// test_done_callback_already_failed and test_done_callback_raises_already_succeeded.
fn done_callbacks<E: Executor>(executor: &E) {
    let (gate, _release) = gate_and_release();
    let future = executor.submit(gated, (gate.clone(), 5)).unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let raising = tx.clone();
    future.add_done_callback(move |_| {
        raising.send("raising".into()).unwrap();
        panic!("doh!");
    });
    let after = tx.clone();
    future.add_done_callback(move |f| after.send(state(f)).unwrap());
    gate.set();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "raising");
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "5");

    // On a finished future the callback runs at once, on this thread.
    let here = thread::current().id();
    let ran = Arc::new(Mutex::new(None));
    let record = ran.clone();
    future.add_done_callback(move |f| {
        *record.lock().unwrap() = Some((thread::current().id(), state(f)));
    });
    assert_eq!(ran.lock().unwrap().take(), Some((here, "5".to_string())));
    // A panicking callback is logged, not raised into the caller.
    future.add_done_callback(|_| panic!("doh!"));

    let failed = executor.submit(divide, (1, 0)).unwrap();
    let _ = failed.exception();
    failed.add_done_callback(move |f| tx.send(state(f)).unwrap());
    assert_eq!(rx.try_recv().unwrap(), "panicked");
}

#[test]
fn done_callbacks_run_once_the_future_is_done_even_after_one_panics() {
    done_callbacks(&ThreadPoolExecutor::start(1));
    done_callbacks(&ProcessPoolExecutor::start(1));
}

// Ports of CPython test_future.FutureTests.test_exception_with_success and
// test_result_with_success, and of test_process_pool.ProcessPoolExecutorTest.test_traceback:
// the panic's message and place come back from the worker.
fn exceptions<E: Executor>(executor: &E) {
    let (gate, _release) = gate_and_release();
    let failing = executor.submit(gated_panic, gate.clone()).unwrap();
    assert!(matches!(
        failing.exception_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    gate.set();
    match failing.exception().unwrap() {
        Error::Panicked { message, location } => {
            assert!(message.contains("this is an exception"), "{message}");
            let location = location.expect("the panic's location");
            assert!(location.contains("executor.rs"), "{location}");
        }
        other => panic!("not a panic: {other}"),
    }
    assert!(failing.result().unwrap_err().is_panic());

    let (gate, _release) = gate_and_release();
    let succeeding = executor.submit(gated, (gate.clone(), 42)).unwrap();
    assert!(
        succeeding
            .result_timeout(Duration::from_millis(10))
            .unwrap_err()
            .is_timeout()
    );
    gate.set();
    assert_eq!(succeeding.result_timeout(PATIENCE).unwrap(), 42);
    assert!(succeeding.exception().is_none());
    assert!(succeeding.exception_timeout(PATIENCE).unwrap().is_none());
}

#[test]
fn exception_and_result_timeout_report_the_task_s_outcome() {
    exceptions(&ThreadPoolExecutor::start(1));
    exceptions(&ProcessPoolExecutor::start(1));
}

/// Runs `future` to completion on this thread: the smallest async executor there is, parking
/// between polls until the waker unparks it.
fn block_on<F: StdFuture>(future: F) -> F::Output {
    struct Unpark(thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let started = Instant::now();
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the future was not woken within {PATIENCE:?}"
        );
        thread::park_timeout(PATIENCE);
    }
}

// Not in CPython, whose futures are not awaitable (`asyncio.wrap_future` bridges them): ours
// and `AsyncResult` are `std::future::Future`s.
#[test]
fn futures_and_async_results_can_be_awaited() {
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let (gate, _release) = gate_and_release();
    let mut waiting = executor.submit(gated, (gate.clone(), 7)).unwrap();
    // The first poll finds the task waiting for the gate, so only the waker ends the wait.
    let mut first_poll = true;
    let seven = block_on(std::future::poll_fn(|cx| {
        let poll = Pin::new(&mut waiting).poll(cx);
        if first_poll {
            first_poll = false;
            assert!(poll.is_pending());
            gate.set();
        }
        poll
    }));
    assert_eq!(seven.unwrap(), 7);

    let pool = Pool::new(1).unwrap();
    let total = block_on(async {
        let a = executor.submit(mul, (6, 7)).unwrap().await.unwrap();
        let b = pool.apply_async(mul, (2, 3)).unwrap().await.unwrap();
        a + b
    });
    assert_eq!(total, 48);

    // The value goes to the `.await`; a clone asked afterwards is told it was taken.
    let future = executor.submit(mul, (1, 9)).unwrap();
    let clone = future.clone();
    assert_eq!(block_on(future).unwrap(), 9);
    assert!(matches!(clone.result(), Err(Error::InvalidState(_))));
}

#[test]
fn executors_and_futures_are_send_and_sync() {
    assert_send_sync::<ThreadPoolExecutor>();
    assert_send_sync::<ProcessPoolExecutor>();
    assert_send_sync::<Future<u64>>();
}

// ---------------------------------------------------------------------------------------------
// Executor basics: test_thread_pool, executor.ExecutorTest

// Ports of CPython executor.ExecutorTest.test_max_workers_negative and
// test_thread_pool.ThreadPoolExecutorTest.test_default_workers.
#[test]
fn executors_need_a_worker_and_threads_default_to_cpus_plus_four() {
    assert!(matches!(
        ThreadPoolExecutor::new(0),
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        ProcessPoolExecutor::new(0),
        Err(Error::InvalidState(_))
    ));
    let default = ThreadPoolExecutor::builder().build().unwrap();
    assert_eq!(
        default.max_workers(),
        32.min(proc_pool::core::cpu_count() + 4)
    );
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("unnamed").to_string()
}

// Port of CPython test_thread_pool.ThreadPoolExecutorTest.test_saturation, with the lazy start
// that test_idle_thread_reuse relies on.
#[test]
fn thread_executor_starts_threads_as_tasks_arrive_up_to_max_workers() {
    let executor = ThreadPoolExecutor::new(4).unwrap();
    // One task needs one thread: the first one started.
    let first = value(&executor.submit(|()| thread_name(), ()).unwrap());
    assert_eq!(first, "ThreadPoolExecutor-1");

    // Four tasks that each wait until all four run at once need four threads.
    let arrived = Arc::new(AtomicUsize::new(0));
    let (all_in, _release) = gate_and_release();
    let together: Vec<_> = (0..4)
        .map(|_| {
            let arrived = arrived.clone();
            let all_in = all_in.clone();
            executor
                .submit(
                    move |()| {
                        if arrived.fetch_add(1, Ordering::SeqCst) + 1 == 4 {
                            all_in.set();
                        }
                        assert!(all_in.wait_timeout(PATIENCE), "fewer than 4 threads");
                        thread_name()
                    },
                    (),
                )
                .unwrap()
        })
        .collect();
    let mut names: BTreeSet<String> = together.iter().map(value).collect();
    assert_eq!(names.len(), 4, "{names:?}");

    // Many more blocked tasks start no fifth thread.
    let (gate, _release) = gate_and_release();
    let saturating: Vec<_> = (0..15 * 4)
        .map(|_| {
            executor
                .submit(
                    |gate: Event| {
                        gate.wait();
                        thread_name()
                    },
                    gate.clone(),
                )
                .unwrap()
        })
        .collect();
    gate.set();
    names.extend(saturating.iter().map(value));
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("ThreadPoolExecutor")));
}

// Behaviour of CPython's ThreadPoolExecutor (`_adjust_thread_count`): a task that blocks does
// not hold up the others while there is room for another thread.
#[test]
fn a_blocking_thread_task_does_not_stall_the_others() {
    let executor = ThreadPoolExecutor::new(2).unwrap();
    let (tx, rx) = mpsc::channel::<u64>();
    let waiting = executor
        .submit(move |()| rx.recv_timeout(PATIENCE).unwrap(), ())
        .unwrap();
    let filling = executor
        .submit(move |v: u64| tx.send(v).unwrap(), 5)
        .unwrap();
    assert_eq!(value(&waiting), 5);
    filling.result().unwrap();
}

// A thread that finds the queue empty sleeps, and a task queued then must wake one: a task
// alone, and bursts from several submitters at once, each after the threads fell asleep,
// must lose no wake-up (the pool wakes a thread only for tasks that no awake one covers).
#[test]
fn bursts_from_many_submitters_to_sleeping_threads_all_run() {
    within_patience("bursts from four submitters", || {
        let executor = Arc::new(ThreadPoolExecutor::new(3).unwrap());
        for round in 0..20u64 {
            // Long enough for the threads to stop looking for tasks and sleep: then one task
            // alone, and bursts.
            thread::sleep(Duration::from_millis(5));
            assert_eq!(
                value(&executor.submit(|x: u64| x + 1, round).unwrap()),
                round + 1
            );
            thread::sleep(Duration::from_millis(5));
            let submitters: Vec<_> = (0..4u64)
                .map(|s| {
                    let executor = executor.clone();
                    thread::spawn(move || {
                        (0..50u64)
                            .map(|i| executor.submit(|x: u64| x * 2, round * 1000 + s * 100 + i))
                            .collect::<Result<Vec<_>>>()
                            .unwrap()
                    })
                })
                .collect();
            for (s, submitter) in (0..4u64).zip(submitters) {
                for (i, future) in (0..50u64).zip(submitter.join().unwrap()) {
                    assert_eq!(value(&future), 2 * (round * 1000 + s * 100 + i));
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// map

// Ports of CPython executor.ExecutorTest.test_map and
// test_process_pool.ProcessPoolExecutorTest.test_map_chunksize.
fn map_in_order<E: Executor>(executor: &E) {
    let expected: Vec<u64> = (0..500).map(|x| x * x).collect();
    for chunksize in [1, 6, 1000] {
        let got: Vec<u64> = executor
            .map_with(square, 0..500, chunksize, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected, "chunksize {chunksize}");
    }
    assert!(matches!(
        executor.map_with(square, 0..3, 0, None),
        Err(Error::InvalidState(_))
    ));
}

// Port of CPython executor.ExecutorTest.test_map_exception.
fn map_exception<E: Executor>(executor: &E) {
    let mut results = executor
        .map_with(divide, vec![(1, 2), (1, 3), (1, 0), (1, 5)], 1, None)
        .unwrap();
    assert_eq!(results.next().unwrap().unwrap(), 0);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    assert!(results.next().unwrap().unwrap_err().is_panic());
}

// Port of CPython executor.ExecutorTest.test_map_timeout.
fn map_timeout<E: Executor>(executor: &E) {
    let (gate, _release) = gate_and_release();
    let mut results = executor
        .map_with(
            pass_gate,
            vec![None, None, Some(gate.clone())],
            1,
            Some(Duration::from_secs(2)),
        )
        .unwrap();
    assert_eq!(results.next().unwrap().unwrap(), 1);
    assert_eq!(results.next().unwrap().unwrap(), 1);
    assert!(results.next().unwrap().unwrap_err().is_timeout());
    assert!(results.next().is_none());
}

// Port of CPython executor.ExecutorTest.test_shutdown_race_issue12456.
fn shutdown_with_an_unread_map<E: Executor + Send + 'static>() {
    within_patience("shutdown with an unread map", || {
        let executor = E::start(2);
        let results = executor.map_with(square, vec![2; 3], 1, None).unwrap();
        executor.shutdown(true, false);
        drop(results);
    });
}

#[test]
fn map_yields_results_in_input_order_on_threads() {
    let executor = ThreadPoolExecutor::start(2);
    map_in_order(&executor);
    map_exception(&executor);
    map_timeout(&executor);
    shutdown_with_an_unread_map::<ThreadPoolExecutor>();
}

#[test]
fn map_yields_results_in_input_order_on_processes() {
    let executor = ProcessPoolExecutor::start(2);
    map_in_order(&executor);
    map_exception(&executor);
    map_timeout(&executor);
    shutdown_with_an_unread_map::<ProcessPoolExecutor>();
}
