//! A fork server that dies under its children: they are still seen to end, with exit code 255
//! as in Python (CPython's `popen_forkserver` reads 255 when the server's status pipe ends
//! empty), and the next start brings up a new server.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use proc_core::{Error, Process, StartMethod, active_children};
use procs_testkit::{PATIENCE, alive, builder, eventually, temp_path};

/// The tests of this file kill the one fork server of this process: one at a time.
static SERVER: Mutex<()> = Mutex::new(());

/// Writes `path` whole, so that a reader never sees half of it.
fn write_whole(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The operating system's parent of this process: for a child of the fork server, the server
/// (`proc_core::getppid` names the process that asked for the child).
fn os_parent() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// Names its parent (the fork server) in `server`, waits until `release` exists, returns 42.
fn hold((server, release): (PathBuf, PathBuf)) -> u32 {
    write_whole(&server, &os_parent().to_string());
    eventually("the test releases the child", || release.exists());
    42
}

fn parent_pid((): ()) -> u32 {
    os_parent()
}

/// The two parents of a fork server's child: the logical one and the operating system's.
fn both_parents((): ()) -> (u32, u32) {
    (proc_core::getppid(), os_parent())
}

// The seed tutorials print `os.getppid()` in a child to show the process that started it;
// under the fork server that is the process that asked for the child, not the server.
#[test]
fn getppid_in_a_fork_server_child_names_the_process_that_asked_for_it() {
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = builder(StartMethod::ForkServer)
        .spawn(both_parents, ())
        .unwrap();
    let (logical, server) = p.join_timeout(PATIENCE).unwrap();
    assert_eq!(logical, std::process::id());
    assert_ne!(server, std::process::id());
}

/// Starts `hold` under the fork server; returns the process and the server's pid.
fn start_holding(name: &str, release: &Path) -> (Process<u32>, u32) {
    let server = temp_path(&format!("{name}.server"));
    let p = builder(StartMethod::ForkServer)
        .spawn(hold, (server.clone(), release.to_path_buf()))
        .unwrap();
    eventually("the child names its fork server", || server.exists());
    let pid = std::fs::read_to_string(&server).unwrap().parse().unwrap();
    (p, pid)
}

fn kill_server(server: u32) {
    assert_ne!(server, std::process::id(), "the child is the fork server's");
    // SAFETY: kill has no memory-safety preconditions.
    let sent = unsafe { libc::kill(server as libc::pid_t, libc::SIGKILL) };
    assert_eq!(sent, 0);
    eventually("the fork server is dead", || !alive(server));
}

fn listed(p: &Process<u32>) -> bool {
    active_children().iter().any(|c| Some(c.pid()) == p.pid())
}

#[test]
fn children_of_a_killed_fork_server_are_seen_to_end() {
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let release = temp_path("release-returns");
    let (mut returns, server) = start_holding("returns", &release);
    let (mut killed, same) = start_holding("killed", &temp_path("never"));
    assert_eq!(server, same);
    kill_server(server);

    // The server's death is not the end of its children.
    for p in [&returns, &killed] {
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        assert!(listed(p));
    }
    assert!(
        returns
            .join_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );

    // A child that ends on its own is seen to end without a join, and its result arrives.
    std::fs::write(&release, b"").unwrap();
    eventually("the released child is seen to end", || !returns.is_alive());
    assert_eq!(returns.exitcode(), Some(255));
    assert!(!listed(&returns));
    assert_eq!(returns.join_timeout(PATIENCE).unwrap(), 42);
    assert_eq!(returns.exitcode(), Some(255));

    // A child killed through its handle dies without a result: `Died` with 255.
    killed.kill().unwrap();
    match killed.join_timeout(PATIENCE) {
        Err(Error::Died { exitcode: 255 }) => {}
        other => panic!("expected Died with 255, got {other:?}"),
    }
    assert!(!killed.is_alive());
    assert!(!listed(&killed));
}

#[test]
fn the_next_start_brings_up_a_new_fork_server() {
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let release = temp_path("release-next");
    let (mut first, server) = start_holding("next", &release);
    kill_server(server);
    let mut next = builder(StartMethod::ForkServer)
        .spawn(parent_pid, ())
        .unwrap();
    let new_server = next.join_timeout(PATIENCE).unwrap();
    assert_ne!(new_server, server);
    assert_ne!(new_server, std::process::id());
    assert_eq!(next.exitcode(), Some(0));
    std::fs::write(&release, b"").unwrap();
    assert_eq!(first.join_timeout(PATIENCE).unwrap(), 42);
}

fn sleep_long((): ()) {
    std::thread::sleep(Duration::from_secs(60));
}

// The server ignores SIGINT (Ctrl-C reaches the whole process group); a child it forks
// restores the default, and a SIGINT sent before it did must wait for it, not be lost.
#[test]
fn an_interrupt_right_after_the_start_is_not_lost() {
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..50 {
        let mut p = builder(StartMethod::ForkServer)
            .spawn(sleep_long, ())
            .unwrap();
        p.interrupt().unwrap();
        match p.join_timeout(PATIENCE) {
            Err(e) if e.signal() == Some(libc::SIGINT) => {}
            other => {
                let _ = p.kill();
                panic!("expected death by SIGINT, got {other:?}");
            }
        }
    }
}
