//! Thousands of children leave nothing behind: no descriptors, no zombies. One test in its own
//! binary, so that no other test's children or descriptors blur the counts.
#![cfg(target_os = "linux")]

use proc_core::{Process, StartMethod};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The pids of this process's children that have ended but were not reaped.
fn zombies() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) {
            found.push(entry.file_name().to_string_lossy().parse().unwrap());
        }
    }
    found
}

fn add_one(x: u32) -> u32 {
    x + 1
}

/// Starts many children with `method` (after one to warm up whatever the method opens once
/// for the life of the program) and drops 50 more without a join; returns the descriptors
/// open before and after, and the zombies left.
fn leave_nothing(method: StartMethod) -> (usize, usize, Vec<u32>) {
    let spawn = |i: u32| {
        Process::builder()
            .start_method(method)
            .spawn(add_one, i)
            .unwrap()
    };
    assert_eq!(spawn(0).join().unwrap(), 1);
    let before = open_fds();
    let rounds = if method == StartMethod::Spawn {
        300
    } else {
        1000
    };
    for i in 0..rounds {
        assert_eq!(spawn(i).join().unwrap(), i + 1);
    }
    // Children dropped without a join are reaped as later children start, or by
    // `active_children`.
    for i in 0..50 {
        drop(spawn(i));
    }
    procs_testkit::eventually("the dropped children are reaped", || {
        proc_core::active_children().is_empty()
    });
    (before, open_fds(), zombies())
}

#[test]
fn many_children_leak_no_descriptors_and_no_zombies() {
    for &method in StartMethod::available() {
        let (before, after, zombies) = if method == StartMethod::Fork {
            // Fork refuses a multi-threaded process, and the test harness runs tests on
            // threads: the round runs in a single-threaded child started with Spawn, which
            // counts its own descriptors and zombies.
            Process::builder()
                .start_method(StartMethod::Spawn)
                .spawn(leave_nothing, method)
                .unwrap()
                .join_timeout(procs_testkit::ROUND_LIMIT)
                .unwrap()
        } else {
            leave_nothing(method)
        };
        assert_eq!(after, before, "{method:?}: descriptors leaked");
        assert_eq!(
            zombies,
            Vec::<u32>::new(),
            "{method:?}: children left unreaped"
        );
    }
}
