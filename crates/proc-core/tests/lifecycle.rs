//! How children end: daemonic children die with their parent (also when it is killed), and at
//! a normal exit the parent terminates daemonic children and joins the others, as Python does
//! (CPython's `test_daemon_argument`, `test_terminate`, and `util._exit_function`).
#![cfg(unix)]

use std::path::PathBuf;
use std::time::Duration;

use proc_core::{Process, StartMethod};
use procs_testkit::{alive, eventually, temp_path};

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
    // A sibling started after the daemon: under `Fork` it inherits the parent's end of the
    // daemon's channel, which must not keep the daemon alive once the parent is gone.
    let sibling = Process::builder()
        .start_method(method)
        .spawn(sleep_ms, 120_000)
        .unwrap();
    let tmp = pidfile.with_extension("tmp");
    let pids = format!("{} {}", daemon.pid().unwrap(), sibling.pid().unwrap());
    std::fs::write(&tmp, pids).unwrap();
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
        let pids: Vec<u32> = std::fs::read_to_string(&pidfile)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let (daemon, sibling) = (pids[0], pids[1]);
        assert!(alive(daemon));
        parent.kill().unwrap();
        assert_eq!(parent.join().unwrap_err().signal(), Some(libc::SIGKILL));
        eventually(
            &format!("the daemon ({method}) ends with its parent"),
            || !alive(daemon),
        );
        // The non-daemonic sibling outlives its parent, as in Python; end it here.
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(sibling as libc::pid_t, libc::SIGKILL) };
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
