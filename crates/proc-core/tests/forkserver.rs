//! The fork server's children: on Linux with glibc they are the requesting process's own
//! (`getppid()` names it, their exit codes survive the server); elsewhere a server that dies
//! under its children leaves them seen to end with exit code 255, as in Python (CPython's
//! `popen_forkserver` reads 255 when the server's status pipe ends empty). Either way the next
//! start brings up a new server.
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

/// The operating system's parent of this process: for a child of the fork server, the process
/// that asked for it where the server can fork for it (Linux with glibc), else the server
/// (`proc_core::getppid` names the process that asked for the child everywhere).
fn os_parent() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// Names its OS parent in `started`, waits until `release` exists, returns 42.
fn hold((started, release): (PathBuf, PathBuf)) -> u32 {
    write_whole(&started, &os_parent().to_string());
    eventually("the test releases the child", || release.exists());
    42
}

fn nothing((): ()) {}

/// The two parents of a fork server's child: the logical one and the operating system's.
fn both_parents((): ()) -> (u32, u32) {
    (proc_core::getppid(), os_parent())
}

/// Whether the fork server's children are this process's own here.
const ADOPTED: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

// The seed tutorials print `os.getppid()` in a child to show the process that started it;
// under the fork server that is the process that asked for the child, not the server — for
// `proc_core::getppid()` everywhere, and for the operating system too on Linux with glibc.
#[test]
fn getppid_in_a_fork_server_child_names_the_process_that_asked_for_it() {
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..3 {
        let mut p = builder(StartMethod::ForkServer)
            .spawn(both_parents, ())
            .unwrap();
        let (logical, os) = p.join_timeout(PATIENCE).unwrap();
        assert_eq!(logical, std::process::id());
        let server = proc_core::internal::fork_server_pid().unwrap();
        assert_ne!(server, std::process::id());
        if ADOPTED {
            assert_eq!(
                os,
                std::process::id(),
                "the child is ours, not the server's"
            );
        } else {
            assert_eq!(os, server);
        }
        assert_eq!(p.exitcode(), Some(0));
    }
}

/// Starts `hold` under the fork server; returns the process and the server's pid once the
/// child runs.
fn start_holding(name: &str, release: &Path) -> (Process<u32>, u32) {
    let started = temp_path(&format!("{name}.started"));
    let p = builder(StartMethod::ForkServer)
        .spawn(hold, (started.clone(), release.to_path_buf()))
        .unwrap();
    eventually("the child runs", || started.exists());
    let os_parent: u32 = std::fs::read_to_string(&started).unwrap().parse().unwrap();
    let server = proc_core::internal::fork_server_pid().unwrap();
    let expected = if ADOPTED { std::process::id() } else { server };
    assert_eq!(os_parent, expected);
    (p, server)
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
    // Its exit code is known where it is ours; else it was lost with the server.
    let (ended, killed_code) = if ADOPTED {
        (0, -libc::SIGKILL)
    } else {
        (255, 255)
    };
    std::fs::write(&release, b"").unwrap();
    eventually("the released child is seen to end", || !returns.is_alive());
    assert_eq!(returns.exitcode(), Some(ended));
    assert!(!listed(&returns));
    assert_eq!(returns.join_timeout(PATIENCE).unwrap(), 42);
    assert_eq!(returns.exitcode(), Some(ended));

    // A child killed through its handle dies without a result: `Died` with its code.
    killed.kill().unwrap();
    match killed.join_timeout(PATIENCE) {
        Err(Error::Died { exitcode }) if exitcode == killed_code => {}
        other => panic!("expected Died with {killed_code}, got {other:?}"),
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
    let mut next = builder(StartMethod::ForkServer).spawn(nothing, ()).unwrap();
    next.join_timeout(PATIENCE).unwrap();
    let new_server = proc_core::internal::fork_server_pid().unwrap();
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

/// What the C library believes about the child's main thread, checked from inside it: its
/// CPU-time clock found through its own descriptor (glibc builds the clock from the tid the
/// descriptor holds, and the kernel refuses a thread of another process), the kernel's
/// robust-list registration, a thread and a forked grandchild.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn c_library_state((): ()) -> (bool, bool, u64, i32) {
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: pthread_self names this thread; both out-pointers are valid for writes.
    let own_clock = unsafe {
        libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) == 0
            && libc::clock_gettime(clock, &mut now) == 0
    };
    let mut head: *mut libc::c_void = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: get_robust_list(0, …) writes this thread's list head and length to the two places.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0,
            &mut head as *mut *mut libc::c_void,
            &mut len as *mut libc::size_t,
        )
    };
    let robust = ret == 0 && !head.is_null() && len > 0;
    let from_thread = std::thread::spawn(|| 7u64).join().unwrap();
    let mut grandchild = builder(StartMethod::Fork)
        .spawn(|x: i32| x + 1, 41)
        .unwrap();
    let forked = grandchild.join_timeout(PATIENCE).unwrap();
    (own_clock, robust, from_thread, forked)
}

// A child forked by a raw clone3 must look to the C library like one forked by fork(): the
// thread descriptor's tid and the robust-mutex list are set as glibc's fork sets them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn an_adopted_child_is_a_whole_process_for_the_c_library() {
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = builder(StartMethod::ForkServer)
        .spawn(c_library_state, ())
        .unwrap();
    assert_eq!(p.join_timeout(PATIENCE).unwrap(), (true, true, 7, 42));
}
