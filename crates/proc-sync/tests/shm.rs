//! `SharedMemory` between real processes, under every start method, after CPython's
//! `_TestSharedMemory`: anonymous segments as arguments, named segments attached by name, and
//! no segment left behind in `/dev/shm` — not even by a creator killed with SIGKILL.

use proc_core::Error;
use proc_sync::SharedMemory;
use procs_testkit::{assert_send_sync, builder, each_method};

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "pt-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn shared_memory_is_send_and_sync() {
    assert_send_sync::<SharedMemory>();
}

fn write_pattern(shm: SharedMemory) -> usize {
    // SAFETY: the parent waits for this process before it reads.
    let bytes = unsafe { shm.as_mut_slice() };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    shm.size()
}

#[test]
fn an_anonymous_segment_is_shared_with_a_child() {
    each_method(|method| {
        let shm = SharedMemory::create(100_000).unwrap();
        assert_eq!(shm.name(), None);
        let size = builder(method)
            .spawn(write_pattern, shm.clone())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(size, 100_000);
        // SAFETY: the child has ended; nothing else writes.
        let bytes = unsafe { shm.as_slice() };
        assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    });
}

fn attach_and_write(name: String) -> usize {
    let shm = SharedMemory::attach(&name).unwrap();
    // SAFETY: the parent waits for this process before it reads.
    unsafe { shm.as_mut_slice()[..5].copy_from_slice(b"hello") };
    shm.size()
}

#[test]
fn a_named_segment_is_attached_by_name() {
    each_method(|method| {
        let name = unique("attach");
        let shm = SharedMemory::create_named(&name, 64).unwrap();
        let size = builder(method)
            .spawn(attach_and_write, name.clone())
            .unwrap()
            .join()
            .unwrap();
        assert!(size >= 64);
        // SAFETY: the child has ended; nothing else writes.
        assert_eq!(unsafe { &shm.as_slice()[..5] }, b"hello");
        shm.unlink().unwrap();
        // On Windows a mapping's name lives as long as a handle to it does, and `unlink` does
        // nothing (as in Python); elsewhere the name is gone at once.
        if cfg!(not(windows)) {
            let err = SharedMemory::attach(&name).unwrap_err();
            assert!(matches!(err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
        }
    });
}

#[test]
fn bad_sizes_and_names_are_refused() {
    assert!(SharedMemory::create(0).is_err());
    assert!(SharedMemory::create_named("", 8).is_err());
    assert!(SharedMemory::create_named("a/b", 8).is_err());
    assert!(SharedMemory::create_named(&"x".repeat(31), 8).is_err());
    assert!(SharedMemory::attach(&unique("missing")).is_err());
    assert!(SharedMemory::create(8).unwrap().unlink().is_err());
}

#[test]
fn a_named_segment_that_cannot_be_made_leaves_its_name_free() {
    let name = unique("too-large");
    // No system sizes an object to this many bytes: the creation fails after the name was
    // taken (on Unix), and the name must go with it.
    assert!(SharedMemory::create_named(&name, usize::MAX).is_err());
    let shm = SharedMemory::create_named(&name, 8).unwrap();
    assert_eq!(shm.size(), 8);
    shm.unlink().unwrap();
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::time::Duration;

    use proc_sync::Event;
    use procs_testkit::eventually;

    fn in_dev_shm(name: &str) -> bool {
        std::path::Path::new("/dev/shm").join(name).exists()
    }

    #[test]
    fn anonymous_segments_leave_nothing_in_dev_shm() {
        let before: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
        let segments: Vec<_> = (0..20)
            .map(|_| SharedMemory::create(4096).unwrap())
            .collect();
        let during: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
        // Other tests may add their own named segments meanwhile; none is ours.
        assert!(
            during.len() <= before.len() + 16,
            "anonymous segments showed up in /dev/shm"
        );
        drop(segments);
    }

    #[test]
    fn the_name_goes_with_the_last_holder() {
        let name = unique("drop");
        let shm = SharedMemory::create_named(&name, 16).unwrap();
        assert!(in_dev_shm(&name));
        let copy = shm.clone();
        drop(shm);
        assert!(in_dev_shm(&name), "a clone still holds it");
        drop(copy);
        eventually("the tracker removes the name", || !in_dev_shm(&name));
    }

    fn hold_and_report((shm, ready): (SharedMemory, Event)) -> usize {
        ready.set();
        shm.size()
    }

    #[test]
    fn a_child_that_was_given_the_segment_keeps_the_name_alive() {
        each_method(|method| {
            let name = unique("child");
            let shm = SharedMemory::create_named(&name, 16).unwrap();
            let ready = Event::new().unwrap();
            let mut child = builder(method)
                .spawn(hold_and_report, (shm.clone(), ready.clone()))
                .unwrap();
            drop(shm);
            assert_eq!(child.join().unwrap(), 16);
            eventually("the tracker removes the name", || !in_dev_shm(&name));
        });
    }

    fn create_and_hang((name, created): (String, Event)) {
        let shm = SharedMemory::create_named(&name, 4096).unwrap();
        created.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let _ = &shm;
        }
    }

    #[test]
    fn a_creator_killed_by_sigkill_leaves_nothing_behind() {
        each_method(|method| {
            let name = unique("kill");
            let created = Event::new().unwrap();
            let mut creator = builder(method)
                .spawn(create_and_hang, (name.clone(), created.clone()))
                .unwrap();
            assert!(created.wait_timeout(procs_testkit::PATIENCE));
            assert!(in_dev_shm(&name));
            creator.kill().unwrap();
            assert!(creator.join().is_err());
            eventually("the tracker removes the killed creator's segment", || {
                !in_dev_shm(&name)
            });
        });
    }

    #[test]
    fn an_explicit_unlink_stops_the_tracker() {
        let name = unique("unlink");
        let shm = SharedMemory::create_named(&name, 16).unwrap();
        shm.unlink().unwrap();
        assert!(!in_dev_shm(&name));
        // A new segment under the same name is not removed by the first one's tracker.
        let again = SharedMemory::create_named(&name, 16).unwrap();
        drop(shm);
        // Not a synchronization: time for a tracker that would wrongly remove the name to do it.
        std::thread::sleep(Duration::from_millis(50));
        assert!(in_dev_shm(&name));
        again.unlink().unwrap();
    }

    /// Tries to resize every anonymous segment this process holds, as a careless or hostile
    /// holder could; returns how many it found and how many refused both shrinking and growing.
    fn try_to_resize(shm: SharedMemory) -> (usize, usize) {
        let mut found = 0;
        let mut refused = 0;
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if !target.to_string_lossy().starts_with("/memfd:procs-shm") {
                continue;
            }
            found += 1;
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(entry.path())
            else {
                continue;
            };
            let shrink = file.set_len(0);
            let grow = file.set_len(shm.size() as u64 * 4);
            let denied = |r: std::io::Result<()>| {
                r.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
            };
            if denied(shrink) && denied(grow) {
                refused += 1;
            }
        }
        // SAFETY: the parent does not touch the memory until this process ends.
        unsafe { shm.as_mut_slice() }.fill(3);
        (found, refused)
    }

    /// A process that receives an anonymous segment cannot truncate it under the others (which
    /// would make their next touch a SIGBUS). Only under `Spawn`: a forked child would also hold
    /// the segments of the other tests of this process, which are not this test's to resize.
    #[test]
    fn an_anonymous_segment_cannot_be_resized_by_a_holder() {
        let shm = SharedMemory::create(8192).unwrap();
        let (found, refused) = builder(proc_core::StartMethod::Spawn)
            .spawn(try_to_resize, shm.clone())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(found, 1);
        assert_eq!(refused, 1);
        // SAFETY: the child has ended; nobody else writes.
        assert!(unsafe { shm.as_slice() }.iter().all(|b| *b == 3));
    }
}
