//! `proc_core::shared` between real processes, under every start method: segments that travel
//! as their handles, words that processes sleep on and lock, a lock holder that dies (the
//! robust-mutex guarantee that `proc-sync`'s `Lock` and `proc-ipc`'s queues build on), and
//! the identity (pid and start time's hash) that locks store.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proc_core::shared::{
    Acquired, Blocking, Parkers, Segment, Word, identity, identity_alive, identity_of,
    identity_pid, pid, pid_alive, pid_alive_since, start_time, start_time_of,
};
use proc_core::{Error, Handle};
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method, eventually};

/// What the tests put in a segment: valid when zeroed, made of atomics only.
#[repr(C)]
#[derive(Debug)]
struct Block {
    lock: Word,
    /// Set by a child that holds the lock; also what a sleeper waits on.
    flag: Word,
    count: AtomicU32,
}

/// The word numbers of `Block` within its `Parkers`.
const LOCK: usize = 0;
const FLAG: usize = 1;
const WORDS: usize = 2;

/// What travels to a child: the segment's handle, its length and the parkers.
type Parts = (Handle, usize, Parkers);

struct Shared {
    segment: Segment,
    parkers: Parkers,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            segment: Segment::anonymous(size_of::<Block>()).unwrap(),
            parkers: Parkers::new(WORDS).unwrap(),
        }
    }

    fn from_parts((handle, len, parkers): Parts) -> Shared {
        Shared {
            segment: Segment::from_handle(handle, len).unwrap(),
            parkers,
        }
    }

    fn parts(&self) -> Parts {
        (
            self.segment.handle().try_clone().unwrap(),
            self.segment.len(),
            self.parkers.clone(),
        )
    }

    fn block(&self) -> &Block {
        assert!(self.segment.len() >= size_of::<Block>());
        // SAFETY: the segment is page-aligned and long enough (checked above), `Block` is made
        // of atomics and valid when zeroed, and the reference lives no longer than `self`.
        unsafe { &*self.segment.as_ptr().cast::<Block>() }
    }
}

#[test]
fn the_shared_types_are_send_and_sync() {
    assert_send_sync::<Segment>();
    assert_send_sync::<Parkers>();
    assert_send_sync::<Word>();
}

#[test]
fn a_new_segment_is_zeroed_and_bad_lengths_are_refused() {
    let segment = Segment::anonymous(1 << 20).unwrap();
    // SAFETY: the mapping is `len` bytes long and nothing else uses it.
    let bytes = unsafe { std::slice::from_raw_parts(segment.as_ptr(), segment.len()) };
    assert!(bytes.iter().all(|b| *b == 0));
    assert!(format!("{segment:?}").contains("len: 1048576"));

    let err = Segment::anonymous(0).unwrap_err();
    assert!(matches!(err, Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput));
    let copy = || segment.handle().try_clone().unwrap();
    let err = Segment::from_handle(copy(), 0).unwrap_err();
    assert!(matches!(err, Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData));
    // More than the object holds would fault on first touch.
    assert!(Segment::from_handle(copy(), 4 << 20).is_err());
    // Less is fine: the start of the same memory.
    let start = Segment::from_handle(copy(), 16).unwrap();
    // SAFETY: both mappings are at least 16 bytes long; only this thread uses them.
    unsafe { segment.as_ptr().add(15).write(9) };
    // SAFETY: as above.
    assert_eq!(unsafe { start.as_ptr().add(15).read() }, 9);
}

/// Writes a pattern into the segment it receives, and reports the pid that locks would store.
fn fill((handle, len): (Handle, usize)) -> u32 {
    let segment = Segment::from_handle(handle, len).unwrap();
    // SAFETY: the parent does not touch the memory until this process ends.
    let bytes = unsafe { std::slice::from_raw_parts_mut(segment.as_ptr(), len) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    pid()
}

#[test]
fn a_segment_sent_as_its_handle_is_the_same_memory() {
    each_method(|method| {
        // The parent's pid is cached before any child starts: a forked child must not keep it.
        assert_eq!(pid(), std::process::id());
        let segment = Segment::anonymous(100_000).unwrap();
        let handle = segment.handle().try_clone().unwrap();
        let mut child = builder(method).spawn(fill, (handle, 100_000)).unwrap();
        let child_pid = child.pid().unwrap();
        assert_eq!(child.join().unwrap(), child_pid, "under {method:?}");
        // SAFETY: the child has ended; nothing else writes.
        let bytes = unsafe { std::slice::from_raw_parts(segment.as_ptr(), segment.len()) };
        assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    });
}

/// Adds `n` to the count, one unlocked read and write at a time, under the lock.
fn add_under_lock((parts, n): (Parts, u32)) {
    let shared = Shared::from_parts(parts);
    let block = shared.block();
    for _ in 0..n {
        assert_eq!(
            block
                .lock
                .lock(&shared.parkers, LOCK, Blocking::Block, None),
            Some(Acquired::Free)
        );
        let seen = block.count.load(Ordering::Relaxed);
        // Give the others every chance to cut in, were the lock broken.
        std::thread::yield_now();
        block.count.store(seen + 1, Ordering::Relaxed);
        block.lock.unlock(&shared.parkers, LOCK);
    }
}

#[test]
fn a_word_lock_excludes_processes_and_threads() {
    each_method(|method| {
        let shared = Shared::new();
        let children: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(add_under_lock, (shared.parts(), 500))
                    .unwrap()
            })
            .collect();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| add_under_lock((shared.parts(), 500)));
            }
        });
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(shared.block().count.load(Ordering::Relaxed), 5 * 500);
        assert!(!shared.block().lock.is_locked());
    });
}

#[test]
fn a_held_lock_times_out_and_is_this_process_own() {
    let shared = Shared::new();
    let (word, parkers) = (&shared.block().lock, &shared.parkers);
    assert_eq!(
        word.lock(parkers, LOCK, Blocking::NonBlocking, None),
        Some(Acquired::Free)
    );
    assert!(word.is_locked() && word.is_mine());
    assert_eq!(word.value().load(Ordering::SeqCst), identity());
    assert_eq!(identity_pid(identity()), pid());
    // Ownership is per process: another thread of it waits too.
    std::thread::scope(|s| {
        let waited = s.spawn(|| {
            let start = Instant::now();
            let got = word.lock(
                parkers,
                LOCK,
                Blocking::Block,
                Some(start + Duration::from_millis(50)),
            );
            (got, start.elapsed())
        });
        let (got, elapsed) = waited.join().unwrap();
        assert_eq!(got, None);
        assert!(
            elapsed >= Duration::from_millis(50),
            "gave up after {elapsed:?}"
        );
    });
    assert_eq!(
        word.lock(parkers, LOCK, Blocking::Block, Some(Instant::now())),
        None
    );
    word.unlock(parkers, LOCK);
    assert!(!word.is_locked() && !word.is_mine());
}

#[test]
fn a_lock_whose_owner_is_no_process_is_taken_over_at_once() {
    let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    // No process has this pid: it is beyond what any system gives out.
    word.value().store(u32::MAX, Ordering::SeqCst);
    assert!(word.is_locked() && !word.is_mine());
    assert_eq!(
        word.lock(&parkers, 0, Blocking::NonBlocking, None),
        Some(Acquired::OwnerDied)
    );
    assert!(word.is_mine());
    word.unlock(&parkers, 0);
}

/// Takes the lock, says so through the flag, and waits to be killed.
fn hold_forever(parts: Parts) {
    let shared = Shared::from_parts(parts);
    let block = shared.block();
    assert_eq!(
        block
            .lock
            .lock(&shared.parkers, LOCK, Blocking::Block, None),
        Some(Acquired::Free)
    );
    block.flag.value().store(1, Ordering::SeqCst);
    block.flag.wake(&shared.parkers, FLAG, u32::MAX);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Waits until a child set the flag.
fn wait_for_flag(shared: &Shared) {
    let deadline = Instant::now() + PATIENCE;
    let flag = &shared.block().flag;
    while flag.value().load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the child never set the flag");
        flag.sleep(&shared.parkers, FLAG, 0, Some(deadline));
    }
}

#[test]
fn a_holder_killed_does_not_block_the_next_locker() {
    each_method(|method| {
        let shared = Shared::new();
        let (word, parkers) = (&shared.block().lock, &shared.parkers);
        let mut holder = builder(method).spawn(hold_forever, shared.parts()).unwrap();
        wait_for_flag(&shared);
        let holder_pid = holder.pid().unwrap();
        // Under `Fork` too the holder is named as itself, not as its parent.
        let holder_id = identity_of(holder_pid, start_time_of(holder_pid).unwrap_or(0));
        assert_eq!(word.value().load(Ordering::SeqCst), holder_id);
        assert!(pid_alive(holder_pid) && identity_alive(holder_id));
        assert_eq!(word.lock(parkers, LOCK, Blocking::NonBlocking, None), None);
        // A waiter that sleeps when the holder dies wakes to its death within a slice.
        let died = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                word.lock(
                    parkers,
                    LOCK,
                    Blocking::Block,
                    Some(Instant::now() + PATIENCE),
                )
            });
            std::thread::sleep(Duration::from_millis(50));
            holder.kill().unwrap();
            waiter.join().unwrap()
        });
        assert_eq!(died, Some(Acquired::OwnerDied));
        assert!(word.is_mine());
        word.unlock(parkers, LOCK);
        // The lock works as before.
        assert_eq!(
            word.lock(parkers, LOCK, Blocking::NonBlocking, None),
            Some(Acquired::Free)
        );
        word.unlock(parkers, LOCK);
        assert!(holder.join().unwrap_err().signal().is_some() || cfg!(windows));
        assert!(!pid_alive(holder_pid) && !identity_alive(holder_id));
    });
}

// The pid reuse that a lock's word must see through: a holder killed with the lock, whose pid
// the system gave to another process before anyone looked. The word is written as it reads
// then (a test cannot make the system recycle a pid): the pid of a live stranger, with the
// hash of the dead holder's start time. A waiter takes the lock over instead of waiting for
// the stranger to end; with the pid alone in the word it would time out.
#[test]
fn a_killed_holder_whose_pid_went_to_a_live_process_does_not_block_the_next_locker() {
    each_method(|method| {
        let shared = Shared::new();
        let (word, parkers) = (&shared.block().lock, &shared.parkers);
        let mut holder = builder(method).spawn(hold_forever, shared.parts()).unwrap();
        wait_for_flag(&shared);
        let holder_pid = holder.pid().unwrap();
        let start = start_time_of(holder_pid).unwrap_or(0);
        holder.kill().unwrap();
        assert!(holder.join_timeout(PATIENCE).is_err());
        if identity_of(holder_pid, start) == holder_pid {
            return; // The word cannot tell processes of one pid apart: nothing to test.
        }
        let stranger = procs_testkit::Stranger::unlike(method, |p, s| {
            identity_of(p, s) != identity_of(p, start)
        });
        let recycled = identity_of(stranger.pid(), start);
        word.value().store(recycled, Ordering::SeqCst);
        assert_eq!(
            word.lock(
                parkers,
                LOCK,
                Blocking::Block,
                Some(Instant::now() + PATIENCE)
            ),
            Some(Acquired::OwnerDied),
            "the stranger passed for the dead holder"
        );
        assert!(word.is_mine());
        assert!(!identity_alive(recycled));
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
        word.unlock(parkers, LOCK);
    });
}

#[test]
fn a_killed_process_is_not_alive_before_it_is_reaped() {
    // Under fork as under spawn: the pid of a killed child that nobody has waited for yet.
    each_method(|method| {
        let shared = Shared::new();
        let mut holder = builder(method).spawn(hold_forever, shared.parts()).unwrap();
        wait_for_flag(&shared);
        let holder_pid = holder.pid().unwrap();
        assert!(pid_alive(holder_pid));
        holder.kill().unwrap();
        // Not joined yet: on Linux the dead holder stays a zombie, which counts as dead.
        eventually("the killed child counts as dead", || !pid_alive(holder_pid));
        // A wait shorter than a liveness slice takes the dead owner's lock over at its end.
        let word = &shared.block().lock;
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(
            word.lock(&shared.parkers, LOCK, Blocking::Block, Some(soon)),
            Some(Acquired::OwnerDied)
        );
        word.unlock(&shared.parkers, LOCK);
        let _ = holder.join();
    });
}

/// Sleeps until the flag is set, then reports its value.
fn sleep_until_flag(parts: Parts) -> u32 {
    let shared = Shared::from_parts(parts);
    let flag = &shared.block().flag;
    let count = &shared.block().count;
    // Counted before the first sleep, so that the parent knows when to change the flag.
    count.fetch_add(1, Ordering::SeqCst);
    while flag.value().load(Ordering::SeqCst) == 0 {
        flag.sleep(&shared.parkers, FLAG, 0, None);
    }
    flag.value().load(Ordering::SeqCst)
}

#[test]
fn sleepers_in_other_processes_and_threads_are_woken() {
    each_method(|method| {
        let shared = Shared::new();
        let children: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(sleep_until_flag, shared.parts())
                    .unwrap()
            })
            .collect();
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..2)
                .map(|_| s.spawn(|| sleep_until_flag(shared.parts())))
                .collect();
            let count = &shared.block().count;
            eventually("every sleeper started", || {
                count.load(Ordering::SeqCst) == 5
            });
            // Let them fall asleep, though a wake that comes first must not be lost either.
            std::thread::sleep(Duration::from_millis(50));
            let flag = &shared.block().flag;
            flag.value().store(7, Ordering::SeqCst);
            flag.wake(&shared.parkers, FLAG, u32::MAX);
            for thread in threads {
                assert_eq!(thread.join().unwrap(), 7);
            }
        });
        for mut child in children {
            assert_eq!(child.join_timeout(PATIENCE).unwrap(), 7);
        }
    });
}

#[test]
fn a_sleep_returns_at_its_deadline_or_at_once() {
    let (word, parkers) = (Word::new(), Parkers::new(1).unwrap());
    // Not the expected value: no sleep at all.
    let start = Instant::now();
    word.sleep(&parkers, 0, 1, None);
    // A deadline that has passed: no sleep either.
    word.sleep(&parkers, 0, 0, Some(start));
    assert!(start.elapsed() < PATIENCE);
    // Spurious wakeups are allowed, so the sleep goes on until the deadline.
    let deadline = Instant::now() + Duration::from_millis(30);
    while Instant::now() < deadline {
        word.sleep(&parkers, 0, 0, Some(deadline));
    }
    assert!(start.elapsed() >= Duration::from_millis(30));
    // Without sleepers, a wake is only a look at their count.
    word.wake(&parkers, 0, 1);
}

#[test]
fn the_cached_pid_is_this_process_and_alive() {
    assert_eq!(pid(), std::process::id());
    assert_eq!(pid(), proc_core::getpid());
    assert!(pid_alive(pid()));
    assert!(!pid_alive(u32::MAX));
}

/// A child's own start time, the one that the system tells for its pid, and its identity.
fn own_start((): ()) -> (u32, u64, Option<u64>, u32) {
    (pid(), start_time(), start_time_of(pid()), identity())
}

fn sleep_long(_: ()) {
    std::thread::sleep(Duration::from_secs(60));
}

/// Whether this platform tells when a process started.
const START_TIME_KNOWN: bool = cfg!(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
));

#[test]
fn a_live_pid_with_another_start_time_is_a_recycled_one() {
    let known = START_TIME_KNOWN;
    assert_eq!(start_time_of(pid()).unwrap_or(0), start_time());
    assert_eq!(start_time() != 0, known);
    assert!(pid_alive_since(pid(), start_time()));
    // An unknown start time is judged by the pid alone.
    assert!(pid_alive_since(pid(), 0));
    if known {
        // What a record holds once its process died and the pid went to this one.
        assert!(!pid_alive_since(pid(), start_time() + 1));
    }
    assert!(!pid_alive_since(u32::MAX, 1));
    each_method(|method| {
        // Under `Fork` the child must not keep its parent's cached start time.
        let me = identity();
        let mut p = builder(method).spawn(own_start, ()).unwrap();
        let (child, start, seen, id) = p.join_timeout(PATIENCE).unwrap();
        assert_eq!(seen.unwrap_or(0), start);
        // Nor its identity, which a lock stores.
        assert_eq!(id, identity_of(child, start));
        assert_ne!(id, me);
        assert!(!pid_alive_since(child, start));

        let mut p = builder(method).spawn(sleep_long, ()).unwrap();
        let child = p.pid().unwrap();
        let start = start_time_of(child);
        assert_eq!(start.is_some(), START_TIME_KNOWN);
        if let Some(start) = start {
            assert!(pid_alive_since(child, start));
            assert!(!pid_alive_since(child, start + 1));
        }
        p.kill().unwrap();
        assert!(p.join_timeout(PATIENCE).is_err());
        assert!(!pid_alive_since(child, start.unwrap_or(0)));
    });
}

/// Segments that another process hands over are checked before they are mapped: on Linux an
/// object without a name must be sealed against shrinking, or its sender could truncate it
/// and make the receiver's next touch a SIGBUS.
#[cfg(target_os = "linux")]
mod seals {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;

    const LEN: usize = 4096;

    /// A memfd of `LEN` bytes that can be sealed, with `seals` added.
    fn memfd(seals: libc::c_int) -> Handle {
        // SAFETY: the name is a valid C string; the descriptor returned is ours alone.
        let fd = unsafe { libc::memfd_create(c"test".as_ptr(), libc::MFD_ALLOW_SEALING) };
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: memfd_create just created this descriptor for us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::File::from(fd.try_clone().unwrap())
            .set_len(LEN as u64)
            .unwrap();
        if seals != 0 {
            // SAFETY: F_ADD_SEALS on our own memfd, which allows sealing; it takes an int.
            let added = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
            assert_eq!(added, 0, "{}", std::io::Error::last_os_error());
        }
        Handle::from(std::fs::File::from(fd))
    }

    /// Maps a segment that arrived; the message of a refusal, which must be `Decode`.
    fn map_arrived(handle: Handle) -> std::result::Result<(), String> {
        match Segment::from_handle(handle, LEN) {
            Ok(segment) => {
                // SAFETY: the mapping is LEN bytes long, and nothing else writes to it now.
                unsafe { segment.as_ptr().add(LEN - 1).write(1) };
                Ok(())
            }
            Err(Error::Decode(message)) => Err(message),
            Err(other) => panic!("a refusal is Decode, not {other:?}"),
        }
    }

    fn seals_of(handle: &Handle) -> libc::c_int {
        let fd = OwnedFd::from(handle.try_clone().unwrap());
        // SAFETY: F_GET_SEALS only reads the seals of our open descriptor.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) }
    }

    #[test]
    fn an_unsealed_memfd_sent_as_a_segment_is_refused() {
        each_method(|method| {
            for seals in [0, libc::F_SEAL_GROW, libc::F_SEAL_SEAL] {
                let mut p = builder(method).spawn(map_arrived, memfd(seals)).unwrap();
                let refusal = p.join_timeout(PATIENCE).unwrap().unwrap_err();
                assert!(refusal.contains("F_SEAL_SHRINK"), "{refusal}");
            }
            for seals in [
                libc::F_SEAL_SHRINK,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
            ] {
                let mut p = builder(method).spawn(map_arrived, memfd(seals)).unwrap();
                p.join_timeout(PATIENCE).unwrap().unwrap();
            }
        });
    }

    #[test]
    fn a_new_segment_is_sealed_for_good() {
        let segment = Segment::anonymous(LEN).unwrap();
        let all = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        assert_eq!(seals_of(segment.handle()) & all, all);
        let file = std::fs::File::from(segment.handle().try_clone().unwrap());
        let err = file.set_len(1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        map_arrived(segment.handle().try_clone().unwrap()).unwrap();
    }

    #[test]
    fn a_named_object_is_trusted_and_an_unlinked_one_is_not() {
        let dir = std::path::Path::new("/dev/shm");
        if !dir.is_dir() {
            return;
        }
        let path = dir.join(format!("procs-seal-test-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(LEN as u64).unwrap();
        let named = map_arrived(Handle::from(file.try_clone().unwrap()));
        std::fs::remove_file(&path).unwrap();
        named.unwrap();
        let refusal = map_arrived(Handle::from(file)).unwrap_err();
        assert!(refusal.contains("F_SEAL_SHRINK"), "{refusal}");
    }
}
