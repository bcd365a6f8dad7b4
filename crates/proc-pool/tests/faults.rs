//! Pools under failure, with real processes: workers killed mid-task, tasks past their time
//! limit, workers that write garbage, memory limits, failing initializers, a million queued
//! tasks, and parents that drop their pool or die.
//!
//! Unix only: the faults are made with signals and counted in `/proc`. The failures that
//! need neither (panics, time limits, failing initializers, dropped executors) run on
//! Windows too, in `pool.rs` and `executor.rs`.
#![cfg(unix)]

use std::time::Duration;

use proc_core::{Error, Process, StartMethod};
use proc_ipc::Queue;
use proc_pool::Pool;
#[cfg(target_os = "linux")]
use proc_sync::Event;
use procs_testkit::{PATIENCE, each_method, eventually};

/// Reports this worker's pid on `pids`, then sleeps for `secs` seconds.
fn report_and_sleep((pids, secs): (Queue<u32>, u64)) -> u32 {
    pids.put(std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(secs));
    std::process::id()
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

/// Whether `pid` is gone for good: ended and reaped (no zombie left).
fn reaped(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

// Mechanism 6 and CPython gh-66587 (Pool hangs forever when a worker is killed): a worker
// killed mid-task fails only that task, with the signal in the error; a new worker takes its
// place and every other task completes.
fn a_killed_worker_fails_only_its_task(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .start_method(method)
        .build()
        .unwrap();
    let pids = Queue::new().unwrap();
    let doomed = pool
        .apply_async(report_and_sleep, (pids.clone(), 60))
        .unwrap();
    let victim = pids.get_timeout(PATIENCE).unwrap();
    let others: Vec<_> = (0..10u64)
        .map(|i| pool.apply_async(|x: u64| x * 2, i).unwrap())
        .collect();
    kill(victim, libc::SIGKILL);
    let err = doomed.get_timeout(PATIENCE).unwrap_err();
    assert!(matches!(err, Error::WorkerDied { exitcode: -9 }), "{err}");
    assert_eq!(err.exitcode(), Some(-9));
    assert!(err.to_string().contains("SIGKILL"), "{err}");
    for (i, r) in others.iter().enumerate() {
        assert_eq!(r.get_timeout(PATIENCE).unwrap(), i as u64 * 2);
    }
    let after: Vec<u32> = pool.map(|(): ()| std::process::id(), vec![(); 8]).unwrap();
    assert!(!after.contains(&victim));
    pool.close();
    pool.join().unwrap();
}

#[test]
fn killed_worker() {
    each_method(a_killed_worker_fails_only_its_task);
}

// Tasks that end their worker in other ways: abort (SIGABRT), exit with a code, a segfault.
#[test]
fn tasks_that_end_their_worker() {
    let pool = Pool::new(2).unwrap();
    let abort = pool.apply(|(): ()| -> u8 { std::process::abort() }, ());
    assert_eq!(abort.unwrap_err().exitcode(), Some(-6));
    let exit = pool.apply(|code: i32| -> u8 { std::process::exit(code) }, 3);
    assert!(matches!(exit, Err(Error::WorkerDied { exitcode: 3 })));
    let segv = pool.apply(
        |(): ()| -> u8 {
            // SAFETY: not safe at all, on purpose: the worker dies of SIGSEGV.
            unsafe { libc::raise(libc::SIGSEGV) };
            0
        },
        (),
    );
    assert_eq!(segv.unwrap_err().signal(), Some(libc::SIGSEGV));
    assert_eq!(pool.apply(|x: u8| x + 1, 1).unwrap(), 2);
}

// billiard's hard time limit: the task fails with Timeout, its worker is killed and
// replaced, and the pool goes on.
#[test]
fn task_timeout_kills_and_replaces_the_worker() {
    let pool = Pool::builder()
        .processes(1)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let before = pool.apply(|(): ()| std::process::id(), ()).unwrap();
    let slow = pool.apply(std::thread::sleep, Duration::from_secs(60));
    assert!(matches!(slow, Err(Error::Timeout)), "{slow:?}");
    let after = pool.apply(|(): ()| std::process::id(), ()).unwrap();
    assert_ne!(before, after);
    #[cfg(unix)]
    eventually("the timed-out worker is reaped", || reaped(before));
}

/// Writes a frame header claiming 4 GiB, then junk, into every socket of this process: the
/// worker's link to its pool among them.
#[cfg(target_os = "linux")]
fn write_garbage((): ()) -> u8 {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        if target.to_string_lossy().starts_with("socket:") {
            let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
            let junk = [0xffu8; 64];
            // SAFETY: writes bytes from a live buffer to a descriptor; a failed write is fine.
            unsafe { libc::write(fd, junk.as_ptr().cast(), junk.len()) };
        }
    }
    std::thread::sleep(Duration::from_secs(60));
    0
}

// A worker that writes garbage on its result channel fails its task with an error, never a
// panic or a hang in the parent; the pool replaces it.
#[test]
#[cfg(target_os = "linux")]
fn a_worker_writing_garbage_fails_its_task() {
    let pool = Pool::new(1).unwrap();
    let err = pool.apply(write_garbage, ()).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert_eq!(pool.apply(|x: u8| x, 9).unwrap(), 9);
}

fn grow_and_report(mb: usize) -> u32 {
    let block = vec![1u8; mb << 20];
    std::hint::black_box(&block);
    std::mem::forget(block);
    std::process::id()
}

// loky's leak check, billiard's max_memory_per_child: a worker past the limit after a task
// is replaced.
#[test]
fn a_worker_past_its_memory_limit_is_recycled() {
    let pool = Pool::builder()
        .processes(1)
        .max_memory_per_child(150 << 20)
        .build()
        .unwrap();
    let small = pool.apply(grow_and_report, 1).unwrap();
    assert_eq!(pool.apply(grow_and_report, 1).unwrap(), small);
    let big = pool.apply(grow_and_report, 200).unwrap();
    assert_eq!(big, small, "the task ran in the same worker");
    let next = pool.apply(grow_and_report, 1).unwrap();
    assert_ne!(next, small, "the grown worker was replaced");
}

fn failing_init(ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err("the database is down".into())
    }
}

fn panicking_init((): ()) {
    panic!("initializer panic");
}

// CPython test_init.FailingInitializerMixin for Pool: a failing initializer breaks the pool
// with an error that says why; nothing respawns workers forever.
#[test]
fn a_failing_initializer_breaks_the_pool() {
    let pool = Pool::builder()
        .processes(2)
        .initializer(failing_init, false)
        .build()
        .unwrap();
    let err = pool.apply(|x: u8| x, 1).unwrap_err();
    assert!(
        matches!(&err, Error::BrokenPool(why) if why.contains("the database is down")),
        "{err}"
    );
    let later = pool.apply_async(|x: u8| x, 1);
    assert!(matches!(later, Err(Error::BrokenPool(_))));

    let pool = Pool::builder()
        .processes(1)
        .initializer(panicking_init, ())
        .build()
        .unwrap();
    let err = pool.map(|x: u8| x, vec![1, 2, 3]).unwrap_err();
    assert!(err.to_string().contains("initializer panic"), "{err}");

    let pool = Pool::builder()
        .processes(1)
        .initializer(failing_init, true)
        .build()
        .unwrap();
    assert_eq!(pool.apply(|x: u8| x, 1).unwrap(), 1);
}

// Python's BrokenProcessPool, on request: a worker that dies breaks the pool.
#[test]
fn broken_on_crash_gives_pythons_behaviour() {
    let pool = Pool::builder()
        .processes(2)
        .broken_on_crash(true)
        .build()
        .unwrap();
    let err = pool
        .apply(|(): ()| -> u8 { std::process::abort() }, ())
        .unwrap_err();
    assert!(
        matches!(err, Error::BrokenPool(_) | Error::WorkerDied { .. }),
        "{err}"
    );
    let later = pool.apply(|x: u8| x, 1).unwrap_err();
    assert!(matches!(later, Error::BrokenPool(_)), "{later}");
}

#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[cfg(target_os = "linux")]
fn wait_for(event: Event) {
    event.wait();
}

#[cfg(target_os = "linux")]
/// Queues a million tasks behind a blocked one; returns the descriptors open before, with
/// them queued, and after they ran.
fn count_fds_around_a_million_tasks((): ()) -> (usize, usize, usize) {
    let pool = Pool::new(1).unwrap();
    let gate = Event::new().unwrap();
    let blocker = pool.apply_async(wait_for, gate.clone()).unwrap();
    let before = open_fds();
    let queued: Vec<_> = (0..1_000_000u32)
        .map(|i| pool.apply_async(|x: u32| x, i).unwrap())
        .collect();
    let with_queue = open_fds();
    gate.set();
    blocker.get_timeout(PATIENCE).unwrap();
    let last = queued[999_999]
        .get_timeout(Duration::from_secs(600))
        .unwrap();
    assert_eq!(last, 999_999);
    (before, with_queue, open_fds())
}

// procspawn's pool fails with EMFILE at ~6.6k queued tasks: here a million queued tasks cost
// memory, not descriptors. The count runs in a child of its own, so that the other tests of
// this binary do not open descriptors beside it.
#[test]
#[cfg(target_os = "linux")]
fn a_million_queued_tasks_open_no_descriptors() {
    let mut counter = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(count_fds_around_a_million_tasks, ())
        .unwrap();
    let (before, with_queue, after) = counter.join().unwrap();
    assert_eq!(with_queue, before);
    assert_eq!(after, before);
}

// Python's `with Pool() as p:` leaves through terminate: dropping a busy pool kills its
// workers and reaps them (no zombie, no orphan), and returns.
#[test]
#[cfg(target_os = "linux")]
fn dropping_a_busy_pool_leaves_nothing_behind() {
    let pool = Pool::new(2).unwrap();
    let pids = Queue::new().unwrap();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            pool.apply_async(report_and_sleep, (pids.clone(), 60))
                .unwrap()
        })
        .collect();
    let workers = [
        pids.get_timeout(PATIENCE).unwrap(),
        pids.get_timeout(PATIENCE).unwrap(),
    ];
    drop(pool);
    for pid in workers {
        assert!(reaped(pid), "worker {pid} is still there");
    }
    for r in busy {
        assert!(r.get().unwrap_err().is_cancelled());
    }
}

/// A parent that starts a pool, tells the test its workers' pids, and waits to be killed.
fn pool_parent(pids: Queue<u32>) {
    let pool = Pool::new(2).unwrap();
    let inner = Queue::new().unwrap();
    let _busy: Vec<_> = (0..2)
        .map(|_| {
            pool.apply_async(report_and_sleep, (inner.clone(), 600))
                .unwrap()
        })
        .collect();
    for _ in 0..2 {
        pids.put(inner.get().unwrap()).unwrap();
    }
    std::thread::sleep(Duration::from_secs(600));
}

fn workers_die_with_their_parent(signal: i32) {
    let pids = Queue::new().unwrap();
    let mut parent = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(pool_parent, pids.clone())
        .unwrap();
    let workers = [
        pids.get_timeout(PATIENCE).unwrap(),
        pids.get_timeout(PATIENCE).unwrap(),
    ];
    kill(parent.pid().unwrap(), signal);
    assert!(parent.join().is_err());
    for pid in workers {
        eventually("the worker ends with its parent", || {
            !procs_testkit::alive(pid)
        });
    }
}

// The parent killed with SIGKILL takes every worker with it: no orphan keeps running.
#[test]
fn workers_die_with_a_killed_parent() {
    workers_die_with_their_parent(libc::SIGKILL);
}

// Ctrl-C on a pool is a classic hang in Python; here SIGINT ends the parent and its workers.
#[test]
fn workers_die_with_an_interrupted_parent() {
    workers_die_with_their_parent(libc::SIGINT);
}

// The review's findings, each pinned by a test.

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

// A done-callback runs on the pool's result thread; cancelling a running task from there
// must not wait for that same thread (it used to hang the pool for good).
#[test]
fn cancel_from_a_done_callback_does_not_hang_the_pool() {
    let executor = proc_pool::ProcessPoolExecutor::new(1).unwrap();
    let first = executor.submit(sleep_ms, 300).unwrap();
    let second = executor.submit(sleep_ms, 300).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let other = second.clone();
    first.add_done_callback(move |_| tx.send(other.cancel()).unwrap());
    assert_eq!(first.result_timeout(PATIENCE).unwrap(), 300);
    let cancelled = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(second.result_timeout(PATIENCE).is_err(), cancelled);
    assert_eq!(
        executor
            .submit(sleep_ms, 1)
            .unwrap()
            .result_timeout(PATIENCE)
            .unwrap(),
        1
    );
}

fn count_links(links: Vec<proc_core::Link>) -> usize {
    links.len()
}

// A task that cannot be sent (more handles than a frame carries) fails alone; it used to be
// sent again and again, each time killing a healthy worker.
#[test]
fn a_task_that_cannot_be_sent_fails_alone() {
    let pool = Pool::new(1).unwrap();
    let links: Vec<proc_core::Link> = (0..65)
        .map(|_| proc_core::Link::pair().unwrap().0)
        .collect();
    let err = pool.apply(count_links, links).unwrap_err();
    assert!(err.to_string().contains("handles"), "{err}");
    assert_eq!(pool.apply(sleep_ms, 1).unwrap(), 1);
    pool.close();
    pool.join().unwrap();
}

/// Writes the first bytes of a frame into every socket of this process, then sleeps.
#[cfg(target_os = "linux")]
fn write_half_a_frame((): ()) -> u8 {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        if target.to_string_lossy().starts_with("socket:") {
            let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
            let half = [100u8, 0, 0, 0, 1, 2, 3];
            // SAFETY: writes bytes from a live buffer to a descriptor; a failed write is fine.
            unsafe { libc::write(fd, half.as_ptr().cast(), half.len()) };
        }
    }
    std::thread::sleep(Duration::from_secs(120));
    0
}

// A worker that stops in the middle of an answer must not hold up the others.
#[test]
#[cfg(target_os = "linux")]
fn a_worker_stalling_mid_answer_does_not_stall_the_pool() {
    let pool = Pool::new(2).unwrap();
    let stalled = pool.apply_async(write_half_a_frame, ()).unwrap();
    // Gives the stalling task a head start; the assertions hold either way.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pool.apply(sleep_ms, 1).unwrap(), 1);
    let err = stalled.get_timeout(PATIENCE).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert_eq!(pool.apply(sleep_ms, 2).unwrap(), 2);
}

/// Forks a child that keeps the worker's sockets open, then aborts.
fn fork_then_abort((): ()) -> u8 {
    // SAFETY: the child only sleeps and exits, which is safe after fork.
    if unsafe { libc::fork() } == 0 {
        std::thread::sleep(Duration::from_secs(15));
        // SAFETY: leaves the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    std::process::abort()
}

// A worker whose link stays open in a grandchild is still seen to die.
#[test]
fn a_dead_worker_is_seen_while_a_grandchild_holds_its_link() {
    let pool = Pool::new(1).unwrap();
    let err = pool
        .apply_async(fork_then_abort, ())
        .unwrap()
        .get_timeout(PATIENCE)
        .unwrap_err();
    assert_eq!(err.exitcode(), Some(-6), "{err}");
    assert_eq!(pool.apply(sleep_ms, 1).unwrap(), 1);
}

/// A result whose `Deserialize` panics in the parent.
#[derive(Debug, Clone, serde::Serialize)]
struct PanicsWhenRead(u8);

impl<'de> serde::Deserialize<'de> for PanicsWhenRead {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("boom in deserialize")
    }
}

// A result that panics while it is decoded fails its own task; the pool is not broken.
#[test]
fn a_result_that_panics_when_decoded_fails_only_its_task() {
    let pool = Pool::new(1).unwrap();
    let err = pool
        .apply_async(PanicsWhenRead, 1)
        .unwrap()
        .get_timeout(PATIENCE)
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(pool.apply(sleep_ms, 1).unwrap(), 1);
}

// A worker that retires for memory after a task never costs a task that it did not run.
#[test]
fn retiring_workers_lose_no_task() {
    let pool = Pool::builder()
        .processes(2)
        .max_memory_per_child(1)
        .build()
        .unwrap();
    for round in 0..5u64 {
        let results: Vec<_> = (0..4)
            .map(|i| pool.apply_async(sleep_ms, round * 10 + i).unwrap())
            .collect();
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.get_timeout(PATIENCE).unwrap(), round * 10 + i as u64);
        }
    }
}

// Any Duration is a task time limit, Duration::MAX too.
#[test]
fn a_task_timeout_of_duration_max_never_fires() {
    let pool = Pool::builder()
        .processes(1)
        .task_timeout(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(pool.apply(sleep_ms, 5).unwrap(), 5);
}

// Shutting an executor down from its own done-callback does not panic or wait for itself.
#[test]
fn shutdown_from_a_done_callback_returns() {
    let executor = std::sync::Arc::new(proc_pool::ProcessPoolExecutor::new(1).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let inside = executor.clone();
    let first = executor.submit(sleep_ms, 1).unwrap();
    first.add_done_callback(move |_| {
        inside.shutdown(true, false);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(PATIENCE).unwrap();
    assert!(executor.submit(sleep_ms, 1).is_err());
    executor.shutdown(true, false);
}

#[cfg(target_os = "linux")]
fn touch(path: std::path::PathBuf) {
    std::fs::write(path, b"ran").unwrap();
}

#[cfg(target_os = "linux")]
fn wait_for_gate(gate: Event) -> u8 {
    gate.wait();
    1
}

// A task handed to a worker behind the one it runs can still be cancelled, and then it does
// not run (the review found it ran anyway).
#[test]
#[cfg(target_os = "linux")]
fn a_task_sent_ahead_is_cancelled_before_it_runs() {
    let executor = proc_pool::ProcessPoolExecutor::new(1).unwrap();
    let gate = Event::new().unwrap();
    let busy = executor.submit(wait_for_gate, gate.clone()).unwrap();
    let path = procs_testkit::temp_path("sent-ahead");
    let _ = std::fs::remove_file(&path);
    let ahead = executor.submit(touch, path.clone()).unwrap();
    eventually("both tasks were handed to the worker", || ahead.running());
    assert!(ahead.cancel());
    assert!(ahead.cancelled());
    gate.set();
    assert_eq!(busy.result_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(
        executor
            .submit(sleep_ms, 1)
            .unwrap()
            .result_timeout(PATIENCE)
            .unwrap(),
        1
    );
    assert!(!path.exists(), "the cancelled task ran");
}
