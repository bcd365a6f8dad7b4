//! `Lock` and `RLock` between real processes, under every start method: the ticket office
//! of Python's tutorials, mutual exclusion under load, re-entry, and a holder killed while it
//! holds the lock (the robust-mutex guarantee of issue 4).
//!
//! Contention is forced, not left to the scheduler: the contenders start together on a
//! `Barrier` and sleep inside the section, between reading the shared state and writing it
//! back, so a lock that let two in at once would lose an update or sell a ticket twice.

use std::time::Duration;

use proc_core::{Process, StartMethod};
use proc_sync::{Barrier, Event, Lock, LockGuard, RLock, RLockGuard, RawValue};
use procs_testkit::{PATIENCE, StateMap, assert_send_sync, builder, each_method};

/// How long a contender stays inside the section between its read and its write: long
/// enough that the others, started on the same barrier, would be inside too were the lock
/// broken.
const INSIDE: Duration = Duration::from_millis(2);

/// Waits for the other contenders, so that all of them go for the lock at once.
fn start_together(barrier: &Barrier) {
    barrier
        .wait_timeout(PATIENCE)
        .expect("the other contenders came");
}
#[test]
fn locks_are_send_and_sync() {
    assert_send_sync::<Lock>();
    assert_send_sync::<RLock>();
    assert_send_sync::<LockGuard<'static>>();
    fn assert_sync<T: Sync>() {}
    assert_sync::<RLockGuard<'static>>();
}

/// One buyer: takes the last ticket if there is one.
fn buy((lock, tickets, start): (Lock, RawValue<u32>, Barrier)) -> bool {
    start_together(&start);
    let _guard = lock.acquire();
    let left = tickets.get();
    if left == 0 {
        return false;
    }
    // The other buyers, who started at the same time, would read the same ticket meanwhile
    // were the lock broken.
    std::thread::sleep(INSIDE);
    tickets.set(left - 1);
    true
}

#[test]
fn ten_buyers_one_ticket_exactly_one_wins() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let tickets = RawValue::new(1u32).unwrap();
        let start = Barrier::new(10).unwrap();
        let buyers: Vec<_> = (0..10)
            .map(|_| {
                builder(method)
                    .spawn(buy, (lock.clone(), tickets.clone(), start.clone()))
                    .unwrap()
            })
            .collect();
        let winners = buyers
            .into_iter()
            .map(|mut p| p.join().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(winners, 1);
        assert_eq!(tickets.get(), 0);
        assert!(!lock.is_locked());
    });
}

/// Adds `n` to the counter, one unlocked read-modify-write at a time, under the lock, after
/// the other contenders came.
fn add_under_lock((lock, counter, n, start): (Lock, RawValue<u64>, u64, Barrier)) {
    start_together(&start);
    for _ in 0..n {
        let _guard = lock.acquire();
        let seen = counter.get();
        // A contender that got in meanwhile would write its own `seen + 1` over this one.
        std::thread::sleep(Duration::from_micros(100));
        counter.set(seen + 1);
    }
}

#[test]
fn processes_and_threads_exclude_each_other() {
    each_method(|method| {
        const N: u64 = 200;
        let lock = Lock::new().unwrap();
        let counter = RawValue::new(0u64).unwrap();
        // Four processes and two threads of this one, all started at once.
        let start = Barrier::new(6).unwrap();
        let args = || (lock.clone(), counter.clone(), N, start.clone());
        let children: Vec<_> = (0..4)
            .map(|_| builder(method).spawn(add_under_lock, args()).unwrap())
            .collect();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| add_under_lock(args()));
            }
        });
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(counter.get(), 6 * N);
    });
}

/// Takes the lock, says so, and waits to be killed.
fn hold_forever((lock, holding): (Lock, Event)) {
    let guard = lock.acquire();
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let _ = &guard;
    }
}

/// Starts a child that takes `lock` and holds it until killed; returns once it holds it.
fn holder_of(method: StartMethod, lock: &Lock) -> Process<()> {
    let holding = Event::new().unwrap();
    let holder = builder(method)
        .spawn(hold_forever, (lock.clone(), holding.clone()))
        .unwrap();
    assert!(
        holding.wait_timeout(PATIENCE),
        "the holder never took the lock"
    );
    holder
}

#[test]
fn a_holder_killed_does_not_block_the_next_acquirer() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let mut holder = holder_of(method, &lock);
        assert!(lock.try_acquire().is_none());
        holder.kill().unwrap();
        // Not joined yet: the dead holder is a zombie, which must count as dead.
        let guard = lock.acquire_timeout(PATIENCE).unwrap();
        assert!(guard.owner_died());
        drop(guard);
        assert!(holder.join().unwrap_err().signal().is_some());
        // The lock works as before.
        let guard = lock.acquire_timeout(PATIENCE).unwrap();
        assert!(!guard.owner_died());
    });
}

/// Where the word of a `Lock` or an `RLock` sits in its state: first. It holds its owner's
/// identity, its pid and a hash of its start time.
const WORD_AT: usize = 0;

// Beyond CPython, whose locks are POSIX semaphores that no death gives back: the lock's word
// names its owner by pid and a hash of its start time. A holder killed with the lock, whose
// pid the system gave to another process before anyone looked, must not pass for that
// process: the next acquirer takes the lock over and is told, while the new owner of the pid
// lives on. The word is written as it reads once the pid went to the stranger (a test cannot
// make the system recycle a pid); with the pid alone, the acquirer would time out.
#[test]
fn a_holder_killed_whose_pid_went_to_a_live_process_is_still_seen_dead() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let mut holder = holder_of(method, &lock);
        let state = StateMap::of(&lock);
        let Some(stranger) = state.give_lock_away_and_kill(&mut holder, WORD_AT, method) else {
            return; // The lock's word cannot tell processes of one pid apart: nothing to test.
        };
        let guard = lock
            .acquire_timeout(PATIENCE)
            .expect("the stranger passed for the dead holder");
        assert!(guard.owner_died());
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
        drop(guard);
        let guard = lock.acquire_timeout(PATIENCE).unwrap();
        assert!(!guard.owner_died());
    });
}

/// Says that it is about to wait for the lock, waits, and reports whether it took the lock
/// over from a dead holder.
fn wait_for_the_lock((lock, waiting): (Lock, Event)) -> bool {
    waiting.set();
    let guard = lock.acquire_timeout(PATIENCE).expect("the lock came free");
    guard.owner_died()
}

#[test]
fn a_waiter_blocked_on_a_killed_holder_takes_over() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let mut holder = holder_of(method, &lock);
        let waiting = Event::new().unwrap();
        let mut waiter = builder(method)
            .spawn(wait_for_the_lock, (lock.clone(), waiting.clone()))
            .unwrap();
        assert!(waiting.wait_timeout(PATIENCE), "the waiter never came");
        // Past its marker and asleep: blocked inside `acquire_timeout` on the held lock.
        procs_testkit::wait_until_asleep("the waiter sleeps on the lock", waiter.pid().unwrap());
        holder.kill().unwrap();
        assert!(
            waiter.join_timeout(PATIENCE).unwrap(),
            "the waiter did not see that the holder died"
        );
        assert!(holder.join().unwrap_err().signal().is_some());
        assert!(!lock.is_locked(), "the waiter's guard let the lock go");
    });
}

/// Re-enters the lock three times, then reports the count it saw.
fn reenter(rlock: RLock) -> u32 {
    let a = rlock.acquire();
    let b = rlock.acquire();
    let c = rlock.acquire_timeout(PATIENCE).unwrap();
    let count = rlock.count();
    drop((a, b, c));
    count
}

fn try_rlock(rlock: RLock) -> bool {
    rlock.try_acquire().is_some()
}

#[test]
fn rlock_is_reentered_by_its_owner_only() {
    each_method(|method| {
        let rlock = RLock::new().unwrap();
        assert_eq!(
            builder(method)
                .spawn(reenter, rlock.clone())
                .unwrap()
                .join()
                .unwrap(),
            3
        );
        assert_eq!(rlock.count(), 0);

        let outer = rlock.acquire();
        let inner = rlock.acquire();
        assert_eq!(rlock.count(), 2);
        // Another process cannot enter while this thread holds it...
        assert!(
            !builder(method)
                .spawn(try_rlock, rlock.clone())
                .unwrap()
                .join()
                .unwrap()
        );
        // ...nor another thread of this process.
        std::thread::scope(|s| assert!(!s.spawn(|| rlock.try_acquire().is_some()).join().unwrap()));
        drop(inner);
        assert!(
            !builder(method)
                .spawn(try_rlock, rlock.clone())
                .unwrap()
                .join()
                .unwrap()
        );
        drop(outer);
        assert!(
            builder(method)
                .spawn(try_rlock, rlock.clone())
                .unwrap()
                .join()
                .unwrap()
        );
    });
}

/// Takes the re-entrant lock twice, says so, and waits to be killed.
fn hold_rlock_forever((rlock, holding): (RLock, Event)) {
    let a = rlock.acquire();
    let b = rlock.acquire();
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let _ = (&a, &b);
    }
}

/// Starts a child that takes `rlock` twice and holds it until killed; returns once it holds
/// it.
fn rlock_holder_of(method: StartMethod, rlock: &RLock) -> Process<()> {
    let holding = Event::new().unwrap();
    let holder = builder(method)
        .spawn(hold_rlock_forever, (rlock.clone(), holding.clone()))
        .unwrap();
    assert!(
        holding.wait_timeout(PATIENCE),
        "the holder never took the lock"
    );
    holder
}

#[test]
fn rlock_of_a_killed_holder_is_taken_over() {
    each_method(|method| {
        let rlock = RLock::new().unwrap();
        let mut holder = rlock_holder_of(method, &rlock);
        holder.kill().unwrap();
        let guard = rlock.acquire_timeout(PATIENCE).unwrap();
        assert!(guard.owner_died());
        assert_eq!(rlock.count(), 1);
        // The new owner is this thread alone: none of this process's other threads, whose
        // numbers within the process may equal the dead holder's, gets in.
        std::thread::scope(|s| {
            let others: Vec<_> = (0..8)
                .map(|_| s.spawn(|| rlock.try_acquire().is_some()))
                .collect();
            for other in others {
                assert!(!other.join().unwrap(), "another thread entered");
            }
        });
        assert_eq!(rlock.count(), 1);
        drop(guard);
        assert_eq!(rlock.count(), 0);
        let _ = holder.join();
    });
}

// The same for an `RLock`, held twice by the killed process: the next owner gets it once,
// and none of this process's other threads passes for it.
#[test]
fn rlock_of_a_killed_holder_whose_pid_went_to_a_live_process_is_taken_over() {
    each_method(|method| {
        let rlock = RLock::new().unwrap();
        let mut holder = rlock_holder_of(method, &rlock);
        let state = StateMap::of(&rlock);
        let Some(stranger) = state.give_lock_away_and_kill(&mut holder, WORD_AT, method) else {
            return; // The lock's word cannot tell processes of one pid apart: nothing to test.
        };
        let guard = rlock
            .acquire_timeout(PATIENCE)
            .expect("the stranger passed for the dead holder");
        assert!(guard.owner_died());
        assert_eq!(rlock.count(), 1);
        std::thread::scope(|s| {
            assert!(
                !s.spawn(|| rlock.try_acquire().is_some()).join().unwrap(),
                "another thread entered"
            );
        });
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
        drop(guard);
        assert!(!rlock.is_locked());
    });
}

#[test]
fn timeouts_and_try_acquire_report_a_held_lock() {
    let lock = Lock::new().unwrap();
    let guard = lock.acquire();
    assert!(lock.try_acquire().is_none());
    assert!(
        lock.acquire_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    drop(guard);
    assert!(lock.acquire_timeout(Duration::ZERO).is_ok());
}

// Port of CPython `_TestLock.test_lock`: acquire, a non-blocking acquire that fails, release,
// and a second release that is an error.
#[test]
fn explicit_acquire_and_release_as_python_writes_them() {
    let lock = Lock::new().unwrap();
    lock.acquire().forget();
    assert!(lock.try_acquire().is_none());
    lock.release().unwrap();
    assert!(lock.release().unwrap_err().to_string().contains("not held"));
    assert!(!lock.is_locked());
}

// Port of CPython `_TestLock.test_rlock`: three acquires, three releases, and a fourth
// release that is an error.
#[test]
fn explicit_rlock_acquire_and_release_as_python_writes_them() {
    let rlock = RLock::new().unwrap();
    for _ in 0..3 {
        rlock.acquire().forget();
    }
    assert_eq!(rlock.count(), 3);
    for left in (0..3).rev() {
        rlock.release().unwrap();
        assert_eq!(rlock.count(), left);
    }
    assert!(rlock.release().is_err());
    assert!(!rlock.is_locked());
}

/// Releases a lock that another process acquired.
fn release_it(lock: Lock) {
    lock.release().unwrap();
}

/// Acquires the lock without a guard and reports that the acquire went through.
fn acquire_and_keep(lock: Lock) -> bool {
    lock.acquire_timeout(PATIENCE)
        .map(LockGuard::forget)
        .is_ok()
}

#[test]
fn a_lock_is_released_by_another_process_than_its_owner() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        lock.acquire().forget();
        builder(method)
            .spawn(release_it, lock.clone())
            .unwrap()
            .join()
            .unwrap();
        assert!(!lock.is_locked());
        // And the other way round: a child acquires, the parent releases.
        assert!(
            builder(method)
                .spawn(acquire_and_keep, lock.clone())
                .unwrap()
                .join()
                .unwrap()
        );
        assert!(lock.is_locked());
        lock.release().unwrap();
        assert!(lock.try_acquire().is_some());
    });
}

/// The seed tutorial's ticket office, written as Python writes it: `acquire()`, work,
/// `release()`.
fn buy_explicitly((lock, tickets, start): (Lock, RawValue<u32>, Barrier)) -> bool {
    start_together(&start);
    lock.acquire().forget();
    let left = tickets.get();
    let won = left > 0;
    if won {
        std::thread::sleep(INSIDE);
        tickets.set(left - 1);
    }
    lock.release().unwrap();
    won
}

#[test]
fn ten_buyers_with_explicit_release_one_ticket_exactly_one_wins() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let tickets = RawValue::new(1u32).unwrap();
        let start = Barrier::new(10).unwrap();
        let buyers: Vec<_> = (0..10)
            .map(|_| {
                builder(method)
                    .spawn(
                        buy_explicitly,
                        (lock.clone(), tickets.clone(), start.clone()),
                    )
                    .unwrap()
            })
            .collect();
        let winners = buyers
            .into_iter()
            .map(|mut p| p.join().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(winners, 1);
        assert_eq!(tickets.get(), 0);
        assert!(!lock.is_locked());
    });
}

/// Takes the lock, keeps it, says so and waits to be killed.
fn take_and_hold((lock, holding): (Lock, Event)) {
    lock.acquire().forget();
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_guard_whose_lock_was_released_and_retaken_elsewhere_frees_nothing() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let holding = Event::new().unwrap();
        let guard = lock.acquire();
        // Another process hands the lock on, and a third takes it.
        builder(method)
            .spawn(release_it, lock.clone())
            .unwrap()
            .join()
            .unwrap();
        let mut holder = builder(method)
            .spawn(take_and_hold, (lock.clone(), holding.clone()))
            .unwrap();
        assert!(holding.wait_timeout(PATIENCE));
        drop(guard);
        assert!(lock.is_locked(), "the stale guard freed the holder's lock");
        assert!(lock.try_acquire().is_none());
        holder.kill().unwrap();
        let _ = holder.join();
        assert!(lock.acquire_timeout(PATIENCE).unwrap().owner_died());
    });
}

#[test]
fn an_rlock_guard_after_an_explicit_release_gives_up_nothing() {
    let rlock = RLock::new().unwrap();
    let guard = rlock.acquire();
    rlock.release().unwrap();
    // Another thread takes the lock; the stale guard must not give up that thread's hold.
    let (taken, dropped) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            let held = rlock.acquire();
            taken.wait();
            dropped.wait();
            assert_eq!(rlock.count(), 1);
            drop(held);
        });
        taken.wait();
        drop(guard);
        assert!(rlock.is_locked());
        dropped.wait();
    });
    assert!(!rlock.is_locked());
}
