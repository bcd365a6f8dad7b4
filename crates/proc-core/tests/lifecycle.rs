//! How children end: daemonic children die with their parent (also when it is killed), and at
//! a normal exit the parent terminates daemonic children and joins the others, as Python does
//! (CPython's `test_daemon_argument`, `test_terminate`, and `util._exit_function`).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proc_core::{Process, StartMethod};

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proc-core-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Whether `pid` names a live process (a zombie counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) if Path::new("/proc/self/stat").exists() => false,
        // SAFETY: signal 0 only checks that the process exists.
        Err(_) => (unsafe { libc::kill(pid as libc::pid_t, 0) }) == 0,
    }
}

/// Waits up to 20 s for `condition`; machines are slow, but not that slow.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Starts a daemonic child with `method`, writes its pid to `pidfile`, then waits to be killed.
fn parent_of_daemon((method, pidfile): (StartMethod, PathBuf)) {
    let daemon = Process::builder()
        .start_method(method)
        .daemon(true)
        .spawn(sleep_ms, 120_000)
        .unwrap();
    let tmp = pidfile.with_extension("tmp");
    std::fs::write(&tmp, daemon.pid().unwrap().to_string()).unwrap();
    std::fs::rename(&tmp, &pidfile).unwrap();
    sleep_ms(120_000);
}

#[test]
fn a_daemonic_child_dies_with_a_killed_parent() {
    for &method in StartMethod::available() {
        let pidfile = temp_path(&format!("daemon-{method}.pid"));
        // The parent is spawned: it is single-threaded, so it may also fork.
        let mut parent = Process::builder()
            .start_method(StartMethod::Spawn)
            .spawn(parent_of_daemon, (method, pidfile.clone()))
            .unwrap();
        eventually("the daemon's pid is written", || pidfile.exists());
        let daemon: u32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
        assert!(alive(daemon));
        parent.kill().unwrap();
        assert_eq!(parent.join().unwrap_err().signal(), Some(libc::SIGKILL));
        eventually(
            &format!("the daemon ({method}) ends with its parent"),
            || !alive(daemon),
        );
    }
}

/// Starts a daemonic child that would sleep for two minutes and a non-daemonic one that writes
/// `marker` after a while, then returns at once: the exit handling has to finish the job.
fn leave_children_behind((method, marker): (StartMethod, PathBuf)) -> u32 {
    let daemon = Process::builder()
        .start_method(method)
        .daemon(true)
        .spawn(sleep_ms, 120_000)
        .unwrap();
    let _worker = Process::builder()
        .start_method(method)
        .spawn(write_later, marker)
        .unwrap();
    daemon.pid().unwrap()
}

fn write_later(marker: PathBuf) {
    sleep_ms(200);
    std::fs::write(marker, b"done").unwrap();
}

#[test]
fn at_exit_daemons_are_terminated_and_others_joined() {
    for &method in StartMethod::available() {
        let marker = temp_path(&format!("marker-{method}"));
        let mut parent = Process::builder()
            .start_method(StartMethod::Spawn)
            .spawn(leave_children_behind, (method, marker.clone()))
            .unwrap();
        let daemon = parent.join().unwrap();
        assert!(
            marker.exists(),
            "{method}: the parent exited before its non-daemonic child"
        );
        eventually(&format!("the daemon ({method}) is terminated"), || {
            !alive(daemon)
        });
    }
}
