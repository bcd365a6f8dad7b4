//! `Lock` and `RLock` between real processes, under every start method: the ticket office
//! of Python's tutorials, mutual exclusion under load, re-entry, and a holder killed while it
//! holds the lock (the robust-mutex guarantee of issue 4).

use std::time::Duration;

use proc_sync::{Event, Lock, LockGuard, RLock, RLockGuard, RawValue};
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method};
#[test]
fn locks_are_send_and_sync() {
    assert_send_sync::<Lock>();
    assert_send_sync::<RLock>();
    assert_send_sync::<LockGuard<'static>>();
    fn assert_sync<T: Sync>() {}
    assert_sync::<RLockGuard<'static>>();
}

/// One buyer: takes the last ticket if there is one.
fn buy((lock, tickets): (Lock, RawValue<u32>)) -> bool {
    let _guard = lock.acquire();
    let left = tickets.get();
    if left == 0 {
        return false;
    }
    // Give the other buyers every chance to cut in, were the lock broken.
    std::thread::yield_now();
    tickets.set(left - 1);
    true
}

#[test]
fn ten_buyers_one_ticket_exactly_one_wins() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let tickets = RawValue::new(1u32).unwrap();
        let buyers: Vec<_> = (0..10)
            .map(|_| {
                builder(method)
                    .spawn(buy, (lock.clone(), tickets.clone()))
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

/// Adds `n` to the counter, one unlocked read-modify-write at a time, under the lock.
fn add_under_lock((lock, counter, n): (Lock, RawValue<u64>, u64)) {
    for _ in 0..n {
        let _guard = lock.acquire();
        counter.set(counter.get() + 1);
    }
}

#[test]
fn processes_and_threads_exclude_each_other() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let counter = RawValue::new(0u64).unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                builder(method)
                    .spawn(add_under_lock, (lock.clone(), counter.clone(), 2000))
                    .unwrap()
            })
            .collect();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| add_under_lock((lock.clone(), counter.clone(), 2000)));
            }
        });
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(counter.get(), 6 * 2000);
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

#[test]
fn a_holder_killed_does_not_block_the_next_acquirer() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let holding = Event::new().unwrap();
        let mut holder = builder(method)
            .spawn(hold_forever, (lock.clone(), holding.clone()))
            .unwrap();
        assert!(
            holding.wait_timeout(PATIENCE),
            "the holder never took the lock"
        );
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

#[test]
fn a_waiter_blocked_on_a_killed_holder_takes_over() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let holding = Event::new().unwrap();
        let mut holder = builder(method)
            .spawn(hold_forever, (lock.clone(), holding.clone()))
            .unwrap();
        assert!(holding.wait_timeout(PATIENCE));
        let died = std::thread::scope(|s| {
            let waiter = s.spawn(|| lock.acquire_timeout(PATIENCE).map(|g| g.owner_died()));
            holder.kill().unwrap();
            waiter.join().unwrap()
        });
        assert!(died.unwrap());
        let _ = holder.join();
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

#[test]
fn rlock_of_a_killed_holder_is_taken_over() {
    each_method(|method| {
        let rlock = RLock::new().unwrap();
        let holding = Event::new().unwrap();
        let mut holder = builder(method)
            .spawn(hold_rlock_forever, (rlock.clone(), holding.clone()))
            .unwrap();
        assert!(holding.wait_timeout(PATIENCE));
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
