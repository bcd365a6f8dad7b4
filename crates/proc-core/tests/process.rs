//! Behaviour of `Process`, after CPython's `_TestProcess` (test_multiprocessing), with real
//! child processes under every start method the platform has.

use std::time::{Duration, Instant};

use proc_core::{Error, Process, StartMethod, Task};
use procs_testkit::{builder, each_method, temp_path};
use serde::{Deserialize, Serialize};

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u32,
    tags: Vec<String>,
    score: Option<f64>,
}

fn echo_record(r: Record) -> (Record, usize) {
    let n = r.tags.len();
    (r, n)
}

#[test]
fn join_returns_the_functions_result() {
    each_method(|method| {
        let mut p = builder(method).spawn(square, 12).unwrap();
        assert!(p.pid().is_some());
        assert_eq!(p.join().unwrap(), 144);
        assert_eq!(p.exitcode(), Some(0));
        assert!(!p.is_alive());
    });
}

#[test]
fn structured_arguments_and_results_travel_both_ways() {
    each_method(|method| {
        let record = Record {
            id: 7,
            tags: vec!["a".into(), "bc".into()],
            score: Some(0.5),
        };
        let mut p = builder(method).spawn(echo_record, record.clone()).unwrap();
        assert_eq!(p.join().unwrap(), (record, 2));
    });
}

#[test]
fn a_large_result_is_read_while_the_child_writes_it() {
    each_method(|method| {
        let mut p = builder(method)
            .spawn(|n: usize| vec![7u8; n], 8 << 20)
            .unwrap();
        let bytes = p.join().unwrap();
        assert_eq!(bytes.len(), 8 << 20);
        assert!(bytes.iter().all(|b| *b == 7));
    });
}

fn explode(_: ()) -> u32 {
    panic!("kaboom {}", 42)
}

#[test]
fn a_panic_becomes_an_error_with_message_and_location() {
    each_method(|method| {
        let mut p = builder(method).spawn(explode, ()).unwrap();
        match p.join() {
            Err(Error::Panicked { message, location }) => {
                assert_eq!(message, "kaboom 42");
                assert!(location.unwrap().contains("process.rs"));
            }
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(p.exitcode(), Some(1));
    });
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

#[test]
fn exit_codes_follow_python() {
    each_method(|method| {
        let mut p = builder(method).spawn(exit_with, 3).unwrap();
        let err = p.join().unwrap_err();
        assert!(matches!(err, Error::Died { exitcode: 3 }), "{err}");
        assert_eq!(p.exitcode(), Some(3));
        assert!(err.to_string().contains("exited with code 3"));
    });
}

#[cfg(unix)]
#[test]
fn a_killed_child_reports_its_signal() {
    each_method(|method| {
        let mut p = builder(method).spawn(sleep_ms, 60_000).unwrap();
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        p.kill().unwrap();
        let err = p.join().unwrap_err();
        assert_eq!(err.signal(), Some(libc::SIGKILL), "{method}: {err:?}");
        assert!(err.to_string().contains("SIGKILL"), "{err}");
        assert_eq!(p.exitcode(), Some(-libc::SIGKILL));

        let mut p = builder(method).spawn(sleep_ms, 60_000).unwrap();
        p.terminate().unwrap();
        assert_eq!(p.join().unwrap_err().signal(), Some(libc::SIGTERM));
        // Signalling a process that has ended does nothing.
        p.terminate().unwrap();
        p.kill().unwrap();
    });
}

#[test]
fn join_timeout_gives_up_and_can_be_retried() {
    each_method(|method| {
        let mut p = builder(method).spawn(sleep_ms, 300).unwrap();
        let started = Instant::now();
        assert!(
            p.join_timeout(Duration::from_millis(20))
                .unwrap_err()
                .is_timeout()
        );
        assert!(started.elapsed() >= Duration::from_millis(20));
        p.join_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(p.exitcode(), Some(0));
    });
}

#[test]
fn misuse_is_an_invalid_state() {
    each_method(|method| {
        let mut p = builder(method).process(square, 2);
        assert!(matches!(p.join(), Err(Error::InvalidState(_))));
        assert!(matches!(p.terminate(), Err(Error::InvalidState(_))));
        p.start().unwrap();
        assert!(matches!(p.start(), Err(Error::InvalidState(_))));
        assert!(p.set_name("late").is_err());
        assert!(p.set_daemon(true).is_err());
        assert_eq!(p.join().unwrap(), 4);
        assert!(matches!(p.join(), Err(Error::InvalidState(_))));
        p.close().unwrap();
        assert!(matches!(p.kill(), Err(Error::InvalidState(_))));
    });
}

#[test]
fn close_refuses_a_running_child() {
    let mut p = Process::spawn(sleep_ms, 60_000).unwrap();
    assert!(p.close().is_err());
    p.kill().unwrap();
    let _ = p.join();
    p.close().unwrap();
}

#[derive(Debug, Serialize, Deserialize)]
struct Fib(u32);

impl Task for Fib {
    type Output = u64;

    fn run(self) -> u64 {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..self.0 {
            (a, b) = (b, a + b);
        }
        a
    }
}

#[test]
fn a_task_is_the_subclass_of_python() {
    each_method(|method| {
        let mut p = builder(method).spawn_task(Fib(50)).unwrap();
        assert_eq!(p.join().unwrap(), 12_586_269_025);
    });
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Seen {
    name: String,
    pid: u32,
    daemon: bool,
    parent: Option<(u32, String)>,
    authkey: Vec<u8>,
    method: Option<StartMethod>,
}

fn who_am_i(_: ()) -> Seen {
    let me = proc_core::current_process();
    Seen {
        name: me.name().to_string(),
        pid: me.pid(),
        daemon: me.daemon(),
        parent: proc_core::parent_process().map(|p| (p.pid(), p.name().to_string())),
        authkey: me.authkey().to_vec(),
        method: me.start_method(),
    }
}

#[test]
fn children_know_themselves_and_their_parent() {
    each_method(|method| {
        let me = proc_core::current_process();
        let mut p = builder(method).name("curious").spawn(who_am_i, ()).unwrap();
        let pid = p.pid().unwrap();
        let seen = p.join().unwrap();
        assert_eq!(seen.name, "curious");
        assert_eq!(seen.pid, pid);
        assert!(!seen.daemon);
        assert_eq!(
            seen.parent,
            Some((proc_core::getpid(), me.name().to_string()))
        );
        assert_eq!(seen.authkey, me.authkey());
        assert_eq!(seen.method, Some(method));

        let mut p = builder(method)
            .daemon(true)
            .authkey(b"k".to_vec())
            .spawn(who_am_i, ())
            .unwrap();
        let seen = p.join().unwrap();
        assert!(seen.daemon);
        assert_eq!(seen.authkey, b"k");
    });
}

fn names_of_grandchild(_: ()) -> (String, String, Vec<u32>) {
    let mut p =
        Process::spawn(|_: ()| proc_core::current_process().identity().to_vec(), ()).unwrap();
    let name = p.name().to_string();
    (
        proc_core::current_process().name().to_string(),
        name,
        p.join().unwrap(),
    )
}

#[test]
fn default_names_count_like_python() {
    each_method(|method| {
        let p = builder(method).process(square, 1);
        let n: u32 = p.name().rsplit(['-', ':']).next().unwrap().parse().unwrap();
        drop(p);
        let mut p = builder(method).spawn(names_of_grandchild, ()).unwrap();
        let own = p.name().to_string();
        assert!(own.ends_with(&format!("{}", n + 1)));
        let (child, grandchild, identity) = p.join().unwrap();
        assert_eq!(child, own);
        assert_eq!(grandchild, format!("{own}:1"));
        assert_eq!(*identity.last().unwrap(), 1);
    });
}

fn try_to_have_children(_: ()) -> String {
    match Process::spawn(square, 1) {
        Err(Error::InvalidState(msg)) => msg.to_string(),
        other => format!("unexpected: {other:?}"),
    }
}

#[test]
fn daemonic_processes_may_not_have_children() {
    each_method(|method| {
        let mut p = builder(method)
            .daemon(true)
            .spawn(try_to_have_children, ())
            .unwrap();
        assert_eq!(
            p.join().unwrap(),
            "daemonic processes are not allowed to have children"
        );
    });
}

#[cfg(unix)]
#[test]
fn fork_refuses_a_multithreaded_parent() {
    // The test harness itself runs this test on a thread of its own.
    let err = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(square, 2)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)));
    assert!(err.to_string().contains("single-threaded"));
}

/// In a child: `rounds` times, a thread started and joined, then a `Fork` child at once.
#[cfg(unix)]
fn fork_right_after_a_join(rounds: u32) -> u32 {
    let mut forked = 0;
    for i in 0..rounds {
        std::thread::spawn(move || i).join().unwrap();
        let mut p = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(square, 2)
            .unwrap();
        forked += u32::from(p.join().unwrap() == 4);
    }
    forked
}

/// What a forked child saw: its name, and the length and sum of its argument.
#[cfg(unix)]
fn weigh(bytes: Vec<u8>) -> (String, usize, u64) {
    let sum = bytes.iter().map(|&b| u64::from(b)).sum();
    (
        proc_core::current_process().name().to_string(),
        bytes.len(),
        sum,
    )
}

/// In a child: two named `Fork` children, each given a 1 MiB argument. A forked child takes
/// over its parent's request in its own copy of the memory, while the parent goes on using
/// it (the name of the handle comes from it after the fork).
#[cfg(unix)]
fn fork_twice_with_a_large_argument(_: ()) -> Vec<(String, usize, u64)> {
    let bytes: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    (0..2)
        .map(|i| {
            let mut p = Process::builder()
                .name(format!("forked-{i}"))
                .start_method(StartMethod::Fork)
                .spawn(weigh, bytes.clone())
                .unwrap();
            assert_eq!(p.name(), format!("forked-{i}"));
            p.join().unwrap()
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn a_forked_child_owns_its_request_and_the_parent_keeps_its_own() {
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(fork_twice_with_a_large_argument, ())
        .unwrap();
    let sum: u64 = (0..1u32 << 20).map(|i| u64::from((i % 251) as u8)).sum();
    assert_eq!(
        p.join_timeout(Duration::from_secs(60)).unwrap(),
        vec![
            ("forked-0".to_string(), 1 << 20, sum),
            ("forked-1".to_string(), 1 << 20, sum),
        ]
    );
}

// A joined thread is counted for a moment after `join` returns (until the kernel has taken
// it down): a `Fork` right then must wait for it to be gone, not refuse.
#[cfg(unix)]
#[test]
fn fork_right_after_joining_a_thread_is_single_threaded() {
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(fork_right_after_a_join, 200)
        .unwrap();
    assert_eq!(p.join().unwrap(), 200);
}

#[test]
fn active_children_lists_running_children_only() {
    let mut p = Process::spawn(sleep_ms, 60_000).unwrap();
    let pid = p.pid().unwrap();
    let active = proc_core::active_children();
    let child = active.iter().find(|c| c.pid() == pid).expect("listed");
    assert_eq!(child.name(), p.name());
    assert!(child.is_alive());
    assert_eq!(child.join(Some(Duration::from_millis(1))).unwrap(), None);
    child.kill().unwrap();
    assert!(child.join(None).unwrap().is_some());
    assert!(p.join().is_err());
    assert!(proc_core::active_children().iter().all(|c| c.pid() != pid));
}

#[test]
fn start_methods_and_contexts() {
    for &method in StartMethod::available() {
        assert_eq!(method.name().parse::<StartMethod>().unwrap(), method);
        let ctx = proc_core::context(method).unwrap();
        assert_eq!(ctx.start_method(), method);
    }
    assert!("threads".parse::<StartMethod>().is_err());
    if cfg!(windows) {
        assert!(proc_core::context(StartMethod::Fork).is_err());
    }
    let mut p = proc_core::context(StartMethod::Spawn)
        .unwrap()
        .spawn(square, 3)
        .unwrap();
    assert_eq!(p.join().unwrap(), 9);
}

// ---- Children that die early, lie, or are another build. These replace the executable of a
// ---- `Spawn` child, so they run under `Spawn` only.

#[cfg(unix)]
fn script(name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_path(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Starts a `Spawn` child whose executable is a shell script with `body`, in place of this
/// program: a child that knows nothing of the protocol.
#[cfg(unix)]
fn script_child(name: &str, body: &str) -> Process<u64> {
    let exe = script(name, body);
    Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(&exe)
        .spawn(square, 1)
        .unwrap()
}

#[cfg(unix)]
#[test]
fn a_child_that_dies_before_the_handshake_does_not_hang_the_parent() {
    // Every join is bounded: a regression fails with a timeout instead of stalling the suite.
    for (body, code) in [("exit 0", 0), ("exit 4", 4), ("kill -9 $$", -9)] {
        let err = script_child(&format!("early-{code}"), body)
            .join_timeout(procs_testkit::PATIENCE)
            .unwrap_err();
        assert!(
            matches!(err, Error::Died { exitcode } if exitcode == code),
            "{body}: {err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn garbage_from_a_child_is_an_error_not_a_panic() {
    // A header claiming 2 GiB: refused before anything is allocated for it.
    let bogus = r#"fd=${PROCS_CHILD#*:}; printf '\377\377\377\177garbage' >&$fd"#;
    assert!(matches!(
        script_child("bogus-length", bogus).join_timeout(procs_testkit::PATIENCE),
        Err(Error::Protocol(_))
    ));
    // A well-formed frame whose bytes are no outcome.
    let undecodable = r#"fd=${PROCS_CHILD#*:}; printf '\002\000\000\000\377\377' >&$fd"#;
    assert!(matches!(
        script_child("bad-outcome", undecodable).join_timeout(procs_testkit::PATIENCE),
        Err(Error::Decode(_))
    ));
    // A frame cut short by a child that exits with an error.
    let truncated = r#"fd=${PROCS_CHILD#*:}; printf '\100\000\000\000abc' >&$fd; exit 5"#;
    let err = script_child("truncated", truncated)
        .join_timeout(procs_testkit::PATIENCE)
        .unwrap_err();
    assert!(matches!(err, Error::Died { exitcode: 5 }), "{err:?}");
}

#[test]
fn another_build_is_refused() {
    // A copy of this very program with one byte more is, by its fingerprint, another build.
    let copy = temp_path(&format!("other-build{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&copy)
            .unwrap();
        file.write_all(b"\0").unwrap();
    }
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(&copy)
        .spawn(square, 2)
        .unwrap();
    assert!(matches!(p.join(), Err(Error::BuildMismatch)));
    assert_eq!(p.exitcode(), Some(1));
}

#[test]
fn a_missing_executable_fails_to_start() {
    let err = Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(temp_path("does-not-exist"))
        .spawn(square, 1)
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
}

#[test]
fn public_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Process<u64>>();
    both::<proc_core::Builder>();
    both::<proc_core::ActiveChild>();
    both::<proc_core::CurrentProcess>();
    both::<proc_core::ParentProcess>();
    both::<proc_core::Context>();
    both::<Error>();
}

fn init_again(x: u64) -> u64 {
    // A child's function may call `init()` like any `main`: it returns at once.
    proc_core::init();
    x * 2
}

#[test]
fn init_inside_a_child_returns_at_once() {
    each_method(|method| {
        let mut p = builder(method).spawn(init_again, 21).unwrap();
        assert_eq!(p.join_timeout(procs_testkit::PATIENCE).unwrap(), 42);
    });
}

#[test]
fn a_timed_join_keeps_its_deadline_while_another_thread_joins() {
    let mut p = Process::spawn(sleep_ms, 60_000).unwrap();
    let child = proc_core::active_children()
        .into_iter()
        .find(|c| Some(c.pid()) == p.pid())
        .unwrap();
    let pid = p.pid();
    let joiner = std::thread::spawn(move || p.join());
    // Give the joiner a moment to start waiting; the assertion holds either way.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(child.join(Some(Duration::from_millis(100))).unwrap(), None);
    child.kill().unwrap();
    assert!(joiner.join().unwrap().is_err());
    assert!(pid.is_some());
}

/// Forks a grandchild behind the library's back (it inherits every descriptor, the channel
/// to the parent included), writes its pid to `pidfile`, and waits to be killed.
#[cfg(unix)]
fn fork_behind_the_back(pidfile: std::path::PathBuf) {
    // SAFETY: the grandchild only sleeps and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        std::thread::sleep(Duration::from_secs(60));
        // SAFETY: _exit has no preconditions.
        unsafe { libc::_exit(0) };
    }
    std::fs::write(&pidfile, pid.to_string()).unwrap();
    sleep_ms(60_000);
}

#[cfg(unix)]
#[test]
fn join_notices_a_dead_child_whose_channel_lives_on_in_a_grandchild() {
    let pidfile = temp_path("grandchild.pid");
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(fork_behind_the_back, pidfile.clone())
        .unwrap();
    procs_testkit::eventually("the grandchild's pid is written", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.is_empty())
    });
    let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    p.kill().unwrap();
    let err = p.join_timeout(procs_testkit::PATIENCE).unwrap_err();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert_eq!(err.signal(), Some(libc::SIGKILL), "{err}");
}

#[test]
fn a_stray_child_variable_is_ignored() {
    // Descriptor 1 is no channel: the program must run as itself, not read its stdout.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("PROCS_CHILD", "spawn:1")
        .args(["--list", "--exact", "no-such-test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn panics(_: ()) -> u8 {
    panic!("on purpose")
}

// After CPython `_TestProcess.test_process`: `join()` may be called again once the process
// has ended, and returns at once.
#[test]
fn join_again_after_the_end_returns_at_once() {
    each_method(|method| {
        let mut ok = builder(method).spawn(square, 3).unwrap();
        assert_eq!(ok.join().unwrap(), 9);
        for _ in 0..3 {
            let again = ok.join().unwrap_err();
            assert!(matches!(again, Error::InvalidState(_)), "{again}");
            assert!(again.to_string().contains("already taken"), "{again}");
        }
        assert!(ok.join_timeout(Duration::MAX).is_err());
        assert_eq!(ok.exitcode(), Some(0));

        let mut failed = builder(method).spawn(panics, ()).unwrap();
        let first = failed.join().unwrap_err();
        assert!(matches!(first, Error::Panicked { .. }), "{first}");
        let second = failed.join().unwrap_err();
        assert_eq!(second.to_string(), first.to_string());
        assert_eq!(failed.exitcode(), Some(1));

        let mut killed = builder(method).spawn(sleep_ms, 60_000).unwrap();
        killed.kill().unwrap();
        let first = killed.join().unwrap_err();
        assert_eq!(killed.join().unwrap_err().exitcode(), first.exitcode());
    });
}

/// Sleeps until interrupted.
fn sleep_long(_: ()) {
    std::thread::sleep(Duration::from_secs(60));
}

// After CPython `_TestProcess.test_interrupt` (3.14): `interrupt()` sends SIGINT, which ends a
// child that does not handle it.
#[test]
fn interrupt_ends_a_child_that_does_not_handle_it() {
    each_method(|method| {
        let mut p = builder(method).spawn(sleep_long, ()).unwrap();
        p.interrupt().unwrap();
        let err = p.join().unwrap_err();
        if cfg!(unix) {
            assert_eq!(err.signal(), Some(2), "{err}");
            assert_eq!(p.exitcode(), Some(-2));
        } else {
            assert!(matches!(err, Error::Died { .. }), "{err}");
        }
        // An ended process is interrupted without error, as it is terminated.
        p.interrupt().unwrap();
        let unstarted = Process::new(sleep_long, ());
        assert!(matches!(unstarted.interrupt(), Err(Error::InvalidState(_))));
    });
}

// After CPython `_TestProcess.test_sentinel`: the sentinel is not ready while the child runs
// and ready once it ended, before and after the join.
#[test]
fn the_sentinel_is_ready_once_the_child_has_finished() {
    each_method(|method| {
        let mut p = builder(method).spawn(sleep_long, ()).unwrap();
        let sentinel = p.sentinel().unwrap();
        assert_eq!(sentinel.pid(), p.pid().unwrap());
        assert!(!sentinel.is_ready());
        assert!(!sentinel.wait_timeout(Duration::ZERO));
        p.kill().unwrap();
        assert!(sentinel.wait_timeout(Duration::MAX));
        assert!(p.join().is_err());
        assert!(sentinel.is_ready());

        let mut quick = builder(method).spawn(square, 4).unwrap();
        let sentinel = quick.sentinel().unwrap();
        assert!(sentinel.wait_timeout(procs_testkit::PATIENCE));
        assert_eq!(quick.join().unwrap(), 16);
        assert!(Process::new(square, 1).sentinel().is_err());
    });
}

#[test]
fn sentinels_are_send_and_sync() {
    procs_testkit::assert_send_sync::<proc_core::Sentinel>();
}

/// The start method a child sees, and the one its own child was started with.
fn methods_of_two_generations(_: ()) -> (StartMethod, Option<StartMethod>) {
    let mut grandchild =
        Process::spawn(|_: ()| proc_core::current_process().start_method(), ()).unwrap();
    (proc_core::get_start_method(), grandchild.join().unwrap())
}

// After CPython's `Process._bootstrap`, which forces a child's context to its own start
// method: a child's default start method is the one that started it, and its children start
// that way too.
#[test]
fn a_child_inherits_the_start_method_it_was_started_with() {
    each_method(|method| {
        let mut p = builder(method)
            .spawn(methods_of_two_generations, ())
            .unwrap();
        assert_eq!(p.join().unwrap(), (method, Some(method)));
    });
}

/// Tries to change the start method of a child, which has one already.
fn set_in_child(_: ()) -> bool {
    proc_core::set_start_method(StartMethod::Spawn).is_err()
}

#[test]
fn a_child_cannot_set_its_start_method_again() {
    each_method(|method| {
        assert!(
            builder(method)
                .spawn(set_in_child, ())
                .unwrap()
                .join()
                .unwrap()
        );
    });
}

/// The calling thread's scheduler time slice in nanoseconds, from procfs (`None` where the
/// kernel does not show it).
#[cfg(target_os = "linux")]
fn time_slice((): ()) -> Option<u64> {
    let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let line = sched.lines().find(|line| line.starts_with("se.slice"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

// A start shortens the parent's time slice while it starts the child (where Linux allows),
// and the child inherits it: the parent has its own back when the start returns, and the
// child runs user code with the one it would have had without procs, its parent's.
#[cfg(target_os = "linux")]
#[test]
fn the_child_runs_user_code_with_the_parents_time_slice() {
    each_method(|method| {
        let Some(before) = time_slice(()) else {
            return eprintln!("SKIPPED: /proc/thread-self/sched shows no time slice here");
        };
        let mut p = builder(method).spawn(time_slice, ()).unwrap();
        assert_eq!(time_slice(()), Some(before), "under {method}");
        assert_eq!(p.join().unwrap(), Some(before), "under {method}");
    });
}
