//! The crate's tests under `mpirun` (run by `cargo xtask mpi`): rank 0 runs each check, the
//! worker ranks serve. It exits 0 when every check passed; an assertion that fails panics
//! rank 0, which ends the job with a non-zero exit.
//!
//! - `mpirun --allow-run-as-root --oversubscribe -n 3 mpi_suite`: the static launch, ranks 1
//!   and 2 serve.
//! - `mpirun --allow-run-as-root --oversubscribe -n 1 mpi_suite --spawn`, or `mpi_suite
//!   --spawn` alone (a singleton) with `OMPI_MCA_rmaps_base_oversubscribe=1`: the dynamic
//!   launch, the first executor spawns two workers.
//! - `mpi_suite --no-workers`, without mpirun: a singleton world has no workers, and says so.
//! - `mpi_suite --too-many`, without mpirun and without oversubscription: spawning more
//!   workers than there are slots is a clear error, not a hang.

use std::time::Duration;

use proc_core::Error;
use proc_core::internal::Deadline;
use proc_mpi::MpiPoolExecutor;
use proc_pool::{ProcessPoolExecutor, ReturnWhen, as_completed, wait};

fn square(x: u64) -> u64 {
    x * x
}

/// Sleeps a little so that the other worker takes the next task, and says where it ran.
fn where_am_i(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

/// Waits until the file `path` exists (rank 0 makes it when it wants the task to end), at
/// most a minute; says whether it saw the file. The ranks of these runs share one machine.
fn gate(path: String) -> bool {
    let deadline = Deadline::after(Duration::from_secs(60));
    while !deadline.passed() {
        if std::path::Path::new(&path).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Opens the gate `mine`, then waits at most a minute for `theirs` ([`gate`]): two such
/// tasks end at once only when they run at the same time.
fn meet((mine, theirs): (String, String)) -> bool {
    std::fs::write(&mine, b"").is_ok() && gate(theirs)
}

/// The file of a [`gate`] task, removed when dropped.
struct Gate(std::path::PathBuf);

impl Gate {
    fn new(name: &str) -> Gate {
        let path =
            std::env::temp_dir().join(format!("proc-mpi-suite-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Gate(path)
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    fn open(&self) {
        std::fs::write(&self.0, b"").unwrap();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A map of `n` tiny tasks, one item each: every result right and in order.
fn squares_in_order(executor: &MpiPoolExecutor, n: u64) {
    let v: Vec<u64> = executor
        .map(square, 0..n)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(v, (0..n).map(|x| x * x).collect::<Vec<_>>());
}

/// The checks of tasks sent several in one message (bundles): short tasks open a window of
/// tasks at each rank.
fn bundles(executor: &MpiPoolExecutor) {
    // A map of 10,000 tiny tasks, one item each.
    squares_in_order(executor, 10_000);

    // The next map does not inherit the tiny map's runs of items (one task of many items, on
    // one rank): its first items go one per task, so that these two, which each wait for
    // the other, run on the two ranks at once.
    let (one, two) = (Gate::new("meet-1"), Gate::new("meet-2"));
    let pairs = vec![(one.path(), two.path()), (two.path(), one.path())];
    let met: Vec<bool> = executor
        .map(meet, pairs)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        met,
        [true, true],
        "two items of a map ran one after the other"
    );

    // One task of a bundle panics: only its future fails (CPython's test_concurrent_futures
    // `test_map_exception`, per task).
    let futures: Vec<_> = (0..40u32)
        .map(|x| {
            executor
                .submit(
                    |x: u32| {
                        assert!(x != 17, "seventeen refuses");
                        x * 3
                    },
                    x,
                )
                .unwrap()
        })
        .collect();
    for (x, future) in (0..40u32).zip(&futures) {
        match future.result() {
            Ok(value) => assert_eq!((x, value), (x, x * 3)),
            Err(Error::Panicked { message, .. }) => {
                assert_eq!(x, 17);
                assert!(message.contains("seventeen refuses"), "{message}");
            }
            Err(other) => panic!("task {x} failed: {other:?}"),
        }
    }
    assert_eq!(futures.iter().filter(|f| f.result().is_err()).count(), 1);
    let outcomes: Vec<_> = executor
        .map(
            |x: u32| {
                assert!(x != 777, "777 refuses");
                x
            },
            0..2000,
        )
        .unwrap()
        .collect();
    assert_eq!(outcomes.len(), 2000);
    for (x, outcome) in (0..2000u32).zip(&outcomes) {
        match outcome {
            Ok(value) => assert_eq!(*value, x),
            Err(e) => assert!(x == 777 && e.is_panic(), "item {x}: {e:?}"),
        }
    }

    // Cancelling queued tasks while bundles are in flight: each rank runs a task that waits
    // for rank 0, with tasks sent behind it; those still at rank 0 are cancelled, those sent
    // run (CPython's `test_cancel` on futures that are pending and running).
    let release = Gate::new("cancel");
    let held: Vec<_> = (0..2)
        .map(|_| executor.submit(gate, release.path()).unwrap())
        .collect();
    let queued: Vec<_> = (0..100u64)
        .map(|x| executor.submit(square, x).unwrap())
        .collect();
    let cancelled: Vec<bool> = queued.iter().map(|f| f.cancel()).collect();
    release.open();
    for f in &held {
        assert!(f.result().unwrap(), "a gate task never saw its file");
    }
    for (x, (f, cancelled)) in (0..100u64).zip(queued.iter().zip(&cancelled)) {
        if *cancelled {
            assert!(f.cancelled() && f.result().unwrap_err().is_cancelled());
        } else {
            assert_eq!(f.result().unwrap(), x * x);
        }
    }
    // A rank holds a window of at most 16 tasks, the waiting one among them: the rest were
    // still at rank 0.
    let sent = cancelled.iter().filter(|c| !**c).count();
    assert!(
        sent <= 2 * 15,
        "{sent} tasks were sent behind the waiting ones"
    );
    // The ranks go on serving, their windows right.
    squares_in_order(executor, 1000);
}

/// `as_completed` over fast tasks that share a bundle with a slow one behind them, on one
/// worker rank: the fast ones' answers come while the slow one still runs (it waits for rank
/// 0, which lets it end only once it has them). Were the answers held until the bundle is
/// done, this would never end; `as_completed` gives up after a minute instead.
fn fast_answers_are_not_held_back(executor: &MpiPoolExecutor) {
    assert_eq!(executor.max_workers(), 1);
    // Short tasks first, so that the rank takes several tasks at a time.
    assert_eq!(executor.map(square, 0..100).unwrap().count(), 100);
    let hold = Gate::new("hold");
    let slow = Gate::new("slow");
    // While the rank waits on `hold`, the fast tasks and the slow one queue up together.
    let first = executor.submit(gate, hold.path()).unwrap();
    let fast: Vec<_> = (0..6u64)
        .map(|x| executor.submit(square, x).unwrap())
        .collect();
    let last = executor.submit(gate, slow.path()).unwrap();
    hold.open();
    let mut values: Vec<u64> = as_completed(&fast, Some(Duration::from_secs(60)))
        .map(|f| {
            f.expect("the fast tasks' answers were held back behind the slow task")
                .result()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    assert_eq!(values, [0, 1, 4, 9, 16, 25]);
    assert!(!last.done());
    slow.open();
    assert!(first.result().unwrap() && last.result().unwrap());
}

fn checks(mpi: &proc_mpi::Mpi, executor: MpiPoolExecutor) {
    assert_eq!(executor.max_workers(), 2);
    assert_eq!(mpi.workers(), 2);

    // Two worker processes, neither of them this one.
    let here = executor.submit(where_am_i, 300).unwrap();
    let there = executor.submit(where_am_i, 300).unwrap();
    let (here, there) = (here.result().unwrap(), there.result().unwrap());
    assert_ne!(here, there);
    assert!(here != std::process::id() && there != std::process::id());

    // submit: values, and a task on each rank.
    let f = executor.submit(square, 12).unwrap();
    assert_eq!(f.result().unwrap(), 144);
    let s = executor
        .submit(|s: String| s.to_uppercase(), "mpi".to_string())
        .unwrap();
    assert_eq!(s.result().unwrap(), "MPI");

    // A second executor while one runs is refused.
    assert!(matches!(
        MpiPoolExecutor::new(mpi),
        Err(Error::InvalidState(_))
    ));

    // A panicking task fails only its own future.
    let bad = executor
        .submit(|x: u32| -> u32 { panic!("task {x} refuses") }, 7)
        .unwrap();
    let good = executor.submit(|x: u32| x + 1, 1).unwrap();
    match bad.result() {
        Err(Error::Panicked { message, location }) => {
            assert!(message.contains("task 7 refuses"), "{message}");
            assert!(location.is_some());
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(good.result().unwrap(), 2);

    // map, in order, with chunksize 1 and 7, and unordered.
    let v: Vec<u64> = executor
        .map(square, 0..20)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(v, (0..20).map(|x| x * x).collect::<Vec<_>>());
    let v: Vec<u64> = executor
        .map_with(square, 0..1000, 7, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(v, (0..1000).map(|x| x * x).collect::<Vec<_>>());
    let mut v: Vec<u64> = executor
        .map_unordered(square, 0..100, 3)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    v.sort_unstable();
    assert_eq!(v, (0..100).map(|x| x * x).collect::<Vec<_>>());
    // A panicking item of a chunk fails in its place only.
    let outcomes: Vec<_> = executor
        .map_with(
            |x: u32| {
                assert!(x != 5, "five");
                x
            },
            0..10,
            4,
            None,
        )
        .unwrap()
        .collect();
    assert_eq!(outcomes.len(), 10);
    assert!(outcomes[5].as_ref().unwrap_err().is_panic());
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 9);
    // A map with a time limit gives up.
    let mut slow = executor
        .map_with(
            std::thread::sleep,
            vec![Duration::from_secs(2); 4],
            1,
            Some(Duration::from_millis(100)),
        )
        .unwrap();
    assert!(slow.next().unwrap().unwrap_err().is_timeout());
    assert!(slow.next().is_none());
    drop(slow);

    bundles(&executor);

    // wait and as_completed over MPI futures, mixed with local ones.
    let local = ProcessPoolExecutor::new(1).unwrap();
    let mut futures: Vec<_> = (1..=6)
        .map(|x| executor.submit(square, x).unwrap())
        .collect();
    futures.push(local.submit(square, 10).unwrap());
    let (done, not_done) = wait(&futures, None, ReturnWhen::AllCompleted);
    assert_eq!((done.len(), not_done.len()), (7, 0));
    let total: u64 = as_completed(&futures, Some(Duration::from_secs(60)))
        .map(|f| f.unwrap().result().unwrap())
        .sum();
    assert_eq!(total, 91 + 100);
    let first = vec![
        executor
            .submit(std::thread::sleep, Duration::from_millis(1500))
            .unwrap(),
        executor
            .submit(std::thread::sleep, Duration::from_millis(1))
            .unwrap(),
    ];
    let (done, not_done) = wait(&first, None, ReturnWhen::FirstCompleted);
    assert!(!done.is_empty() && !not_done.is_empty());
    for f in &first {
        f.result().unwrap();
    }

    // shutdown: cancel what no rank took, wait for the rest, then refuse new tasks. The last
    // tasks took a millisecond or more, so each rank takes one task of `submit` at a time.
    let running: Vec<_> = (0..4)
        .map(|_| {
            executor
                .submit(std::thread::sleep, Duration::from_millis(300))
                .unwrap()
        })
        .collect();
    let queued: Vec<_> = (0..4)
        .map(|_| {
            executor
                .submit(std::thread::sleep, Duration::from_millis(300))
                .unwrap()
        })
        .collect();
    // The first four are at the ranks once they run (or are next in line there).
    let deadline = Deadline::after(Duration::from_secs(60));
    while !running.iter().all(|f| f.running() || f.done()) && !deadline.passed() {
        std::thread::sleep(Duration::from_millis(1));
    }
    executor.shutdown(true, true);
    for f in &running {
        assert!(f.result().is_ok());
    }
    assert!(queued.iter().all(|f| f.cancelled()), "{queued:?}");
    assert!(matches!(
        executor.submit(square, 1),
        Err(Error::InvalidState(_))
    ));
    drop(executor);

    // After a shutdown the ranks serve a new executor; a pending future can be cancelled.
    let executor = MpiPoolExecutor::new(mpi).unwrap();
    let busy: Vec<_> = (0..4)
        .map(|_| {
            executor
                .submit(std::thread::sleep, Duration::from_millis(300))
                .unwrap()
        })
        .collect();
    let waiting = executor.submit(square, 3).unwrap();
    assert!(waiting.cancel());
    assert!(waiting.result().unwrap_err().is_cancelled());
    for f in busy {
        f.result().unwrap();
    }
    assert_eq!(executor.submit(square, 5).unwrap().result().unwrap(), 25);
    // Drop is shutdown(wait = true): the future is finished afterwards.
    let last = executor.submit(square, 6).unwrap();
    drop(executor);
    assert!(last.done());
    assert_eq!(last.result().unwrap(), 36);

    // A done-callback (on the engine thread) may shut the executor down without a deadlock.
    let executor = std::sync::Arc::new(MpiPoolExecutor::new(mpi).unwrap());
    let inner = executor.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    executor
        .submit(square, 2)
        .unwrap()
        .add_done_callback(move |f| {
            inner.shutdown(true, false);
            tx.send(f.result().unwrap()).unwrap();
        });
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), 4);
    assert!(matches!(
        executor.submit(square, 1),
        Err(Error::InvalidState(_))
    ));
    drop(executor);
}

fn main() {
    proc_core::init();
    let mpi = proc_mpi::init().unwrap();
    let flag = |name: &str| std::env::args().any(|a| a == name);
    if flag("--no-workers") {
        // Started without mpirun: a singleton world, and a clear error.
        assert_eq!(mpi.size(), 1);
        let error = MpiPoolExecutor::new(&mpi).unwrap_err();
        assert!(error.to_string().contains("mpirun"), "{error}");
        println!("mpi_suite: no worker ranks, as expected: {error}");
        return;
    }
    if flag("--too-many") {
        // More workers than any machine here has slots, and no oversubscription.
        assert_eq!(mpi.size(), 1);
        let error = MpiPoolExecutor::builder()
            .max_workers(512)
            .build(&mpi)
            .unwrap_err();
        assert!(matches!(error, Error::Io(_)), "{error:?}");
        assert!(error.to_string().contains("oversubscribe"), "{error}");
        assert_eq!(mpi.workers(), 0);
        println!("mpi_suite: too many workers to spawn, as expected: {error}");
        return;
    }
    let executor = if flag("--spawn") {
        assert_eq!(mpi.size(), 1, "run under `mpirun -n 1`, or alone");
        assert_eq!(mpi.workers(), 0);
        assert!(matches!(
            MpiPoolExecutor::builder().max_workers(0).build(&mpi),
            Err(Error::InvalidState(_))
        ));
        MpiPoolExecutor::builder()
            .max_workers(2)
            .build(&mpi)
            .unwrap()
    } else {
        assert_eq!(mpi.size(), 3, "run under `mpirun -n 3`");
        MpiPoolExecutor::new(&mpi).unwrap()
    };
    checks(&mpi, executor);
    // The session's workers, spawned or not, serve a smaller executor, but no larger one.
    assert!(matches!(
        MpiPoolExecutor::builder().max_workers(3).build(&mpi),
        Err(Error::InvalidState(_))
    ));
    let one = MpiPoolExecutor::builder()
        .max_workers(1)
        .build(&mpi)
        .unwrap();
    assert_eq!(one.max_workers(), 1);
    let pids: std::collections::HashSet<u32> = one
        .map(|(): ()| std::process::id(), vec![(); 8])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pids.len(), 1);
    fast_answers_are_not_held_back(&one);
    drop(one);
    println!("mpi_suite: every check passed");
}
