//! Thousands of children leave nothing behind: no descriptors, no zombies. One test in its own
//! binary, so that no other test's children or descriptors blur the counts.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

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

#[test]
fn many_children_leak_no_descriptors_and_no_zombies() {
    // Start the fork server first: it is one connection for the life of the program.
    let mut warm = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn(add_one, 0)
        .unwrap();
    warm.join().unwrap();
    let before = open_fds();

    for &method in StartMethod::available() {
        if method == StartMethod::Fork {
            continue; // The test harness is multi-threaded; fork is covered in tests/process.rs.
        }
        let rounds = if method == StartMethod::Spawn {
            300
        } else {
            1000
        };
        for i in 0..rounds {
            let mut p = Process::builder()
                .start_method(method)
                .spawn(add_one, i)
                .unwrap();
            assert_eq!(p.join().unwrap(), i + 1);
        }
        // Children dropped without a join are reaped as later children start, or by
        // `active_children`.
        for i in 0..50 {
            drop(
                Process::builder()
                    .start_method(method)
                    .spawn(add_one, i)
                    .unwrap(),
            );
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !proc_core::active_children().is_empty() {
            assert!(
                Instant::now() < deadline,
                "dropped children were never reaped"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
    assert_eq!(zombies(), Vec::<u32>::new(), "children left unreaped");
}
