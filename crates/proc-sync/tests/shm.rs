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

// Linux only: `/dev/shm`, `/proc/self/fd` and the watcher processes that keep names alive
// are Linux's; the other systems' names follow other rules (see `SharedMemory`).
#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    use proc_sync::Event;
    use procs_testkit::{PATIENCE, alive, blocked_in_read, eventually};

    fn in_dev_shm(name: &str) -> bool {
        std::path::Path::new("/dev/shm").join(name).exists()
    }

    fn dev_shm() -> BTreeSet<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The anonymous segments this process holds: its descriptors of `procs-shm` memfds.
    fn memfds() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.to_string_lossy().starts_with("/memfd:procs-shm"))
            })
            .count()
    }

    /// Makes 20 anonymous segments in a process where nothing else runs; returns how many
    /// memfds they added, the entries of `/dev/shm` that this process made meanwhile (named
    /// after its pid, as the library names what it puts there), and the memfds left once
    /// they dropped.
    fn make_twenty(_: ()) -> (usize, Vec<String>, usize) {
        let pid = std::process::id();
        let ours =
            |name: &String| name.contains(&pid.to_string()) || name.contains(&format!("{pid:x}"));
        let (before, fds_before) = (dev_shm(), memfds());
        let segments: Vec<_> = (0..20)
            .map(|_| SharedMemory::create(4096).unwrap())
            .collect();
        let added = memfds() - fds_before;
        let made = dev_shm()
            .difference(&before)
            .filter(|name| ours(name))
            .cloned()
            .collect();
        drop(segments);
        (added, made, memfds() - fds_before)
    }

    #[test]
    fn anonymous_segments_leave_nothing_in_dev_shm() {
        // In a process of its own: this one's other tests make segments all the time.
        let (added, made, left) = builder(proc_core::StartMethod::Spawn)
            .spawn(make_twenty, ())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(added, 20, "the segments are not memfds");
        assert_eq!(made, Vec::<String>::new(), "anonymous segments in /dev/shm");
        assert_eq!(left, 0, "dropped segments left their memfds open");
    }

    /// The watcher that removes `name` once every holder is gone: the one shell whose
    /// command line ends with the segment's file.
    fn the_watcher(name: &str) -> u32 {
        let file = format!("/dev/shm/{name}");
        let watchers: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                    args.contains(&&b"procs-shm-tracker"[..]) && args.contains(&file.as_bytes())
                })
            })
            .collect();
        assert_eq!(watchers.len(), 1, "watchers of {name}: {watchers:?}");
        watchers[0]
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

    /// Says that it holds the segment, and holds it until told to let go.
    fn hold_until_told((shm, holding, let_go): (SharedMemory, Event, Event)) -> usize {
        holding.set();
        assert!(let_go.wait_timeout(PATIENCE), "never told to let go");
        shm.size()
    }

    #[test]
    fn a_child_that_was_given_the_segment_keeps_the_name_alive() {
        each_method(|method| {
            let name = unique("child");
            let shm = SharedMemory::create_named(&name, 16).unwrap();
            let watcher = the_watcher(&name);
            eventually("the watcher reads its pipe", || blocked_in_read(watcher));
            let (holding, let_go) = (Event::new().unwrap(), Event::new().unwrap());
            let mut child = builder(method)
                .spawn(
                    hold_until_told,
                    (shm.clone(), holding.clone(), let_go.clone()),
                )
                .unwrap();
            assert!(holding.wait_timeout(PATIENCE));
            drop(shm);
            // This process holds the segment no more; the child does. Had the child no hold
            // on the watcher's pipe, the pipe would be at its end, which wakes the watcher at
            // once: that it still sleeps in its read proves the child's hold.
            assert!(
                blocked_in_read(watcher),
                "the watcher saw every holder gone"
            );
            assert!(in_dev_shm(&name), "the name went while the child held it");
            let_go.set();
            assert_eq!(child.join_timeout(PATIENCE).unwrap(), 16);
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
        let first = the_watcher(&name);
        shm.unlink().unwrap();
        assert!(!in_dev_shm(&name));
        // A new segment under the same name is not removed by the first one's tracker.
        let again = SharedMemory::create_named(&name, 16).unwrap();
        drop(shm);
        // Once the first watcher is gone, it can remove nothing any more.
        eventually("the first watcher leaves", || !alive(first));
        assert!(
            in_dev_shm(&name),
            "the first watcher removed the new segment"
        );
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
