//! `Condition` between real processes, under every start method, after CPython's
//! `_TestCondition`: notify and notify_all across processes, `wait_for`, timeouts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_sync::{Condition, Lock, RLock, Value};
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method};

#[test]
fn condition_is_send_and_sync() {
    assert_send_sync::<Condition>();
}

/// Waits until the shared value reaches `target`, counting itself among the sleepers first.
fn wait_until_reached(
    (cond, value, sleepers, target): (Condition, Value<u32>, Value<u32>, u32),
) -> bool {
    let mut guard = cond.acquire();
    sleepers.with_lock(|n| *n += 1);
    cond.wait_for_timeout(&mut guard, || value.get() >= target, PATIENCE)
        .unwrap()
}

#[test]
fn notify_all_wakes_waiters_in_other_processes() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let value = Value::new(0u32).unwrap();
        let sleepers = Value::new(0u32).unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(
                        wait_until_reached,
                        (cond.clone(), value.clone(), sleepers.clone(), 5),
                    )
                    .unwrap()
            })
            .collect();
        // Raise the value step by step, each step under the lock and notified.
        for _ in 0..5 {
            let _guard = cond.acquire();
            value.with_lock(|v| *v += 1);
            cond.notify_all().unwrap();
        }
        for mut waiter in waiters {
            assert!(waiter.join().unwrap());
        }
        assert_eq!(sleepers.get(), 3);
    });
}

fn wait_once((cond, woken): (Condition, Value<u32>)) {
    let mut guard = cond.acquire();
    while woken.get() == 0 {
        assert!(
            cond.wait_timeout(&mut guard, PATIENCE).unwrap(),
            "never notified"
        );
    }
    woken.with_lock(|w| *w -= 1);
}

#[test]
fn notify_one_at_a_time_releases_every_waiter_in_turn() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        // Wakeups handed out and not yet used: a waiter leaves only with one.
        let woken = Value::new(0u32).unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(wait_once, (cond.clone(), woken.clone()))
                    .unwrap()
            })
            .collect();
        for _ in 0..3 {
            let _guard = cond.acquire();
            woken.with_lock(|w| *w += 1);
            cond.notify(1).unwrap();
        }
        for mut waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(woken.get(), 0);
    });
}

#[test]
fn wait_timeout_returns_false_and_holds_the_lock_again() {
    let cond = Condition::new().unwrap();
    let mut guard = cond.acquire();
    assert!(
        !cond
            .wait_timeout(&mut guard, Duration::from_millis(20))
            .unwrap()
    );
    assert!(cond.get_lock().is_locked());
    let other = std::thread::scope(|s| s.spawn(|| cond.try_acquire().is_none()).join().unwrap());
    assert!(
        other,
        "another thread took the lock of a waiter that timed out"
    );
    drop(guard);
    assert!(!cond.get_lock().is_locked());
}

#[test]
fn waiting_with_the_guard_of_another_lock_is_an_error() {
    let cond = Condition::new().unwrap();
    let other = RLock::new().unwrap();
    let mut guard = other.acquire();
    assert!(
        cond.wait_timeout(&mut guard, Duration::from_millis(1))
            .is_err()
    );
    let cond = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let other = Lock::new().unwrap();
    let mut guard = other.acquire();
    assert!(
        cond.wait_timeout(&mut guard, Duration::from_millis(1))
            .is_err()
    );
}

#[test]
fn a_condition_uses_an_rlock_as_python_does() {
    let cond = Condition::new().unwrap();
    let _: &RLock = cond.get_lock();
    let outer = cond.acquire();
    let inner = cond.acquire();
    assert_eq!(cond.get_lock().count(), 2);
    drop((inner, outer));
    assert!(!cond.get_lock().is_locked());
}

/// Takes the condition's lock, sets the value and notifies.
fn set_and_notify((cond, value): (Condition, Value<u32>)) {
    let _guard = cond.acquire_timeout(PATIENCE).unwrap();
    value.set(1);
    cond.notify_all().unwrap();
}

// After CPython's `test.lock_tests.ConditionTests` with an RLock: a wait lets go of every
// hold of the re-entered lock, so that another process can take it and notify, and takes
// them all back.
#[test]
fn a_wait_lets_go_of_every_hold_of_a_reentered_rlock() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let value = Value::new(0u32).unwrap();
        let outer = cond.acquire();
        let mut inner = cond.acquire();
        let mut child = builder(method)
            .spawn(set_and_notify, (cond.clone(), value.clone()))
            .unwrap();
        assert!(
            cond.wait_for_timeout(&mut inner, || value.get() == 1, PATIENCE)
                .unwrap()
        );
        assert_eq!(cond.get_lock().count(), 2);
        drop(inner);
        assert_eq!(cond.get_lock().count(), 1);
        drop(outer);
        assert!(!cond.get_lock().is_locked());
        child.join().unwrap();
    });
}

#[test]
fn notify_and_wait_need_this_thread_to_hold_the_rlock() {
    let cond = Condition::new().unwrap();
    let mut guard = cond.acquire();
    std::thread::scope(|s| {
        s.spawn(|| assert!(cond.notify(1).is_err(), "another thread notified"))
            .join()
            .unwrap();
    });
    cond.notify(1).unwrap();
    // A hold given up with `release` leaves the guard with nothing to wait with.
    cond.get_lock().release().unwrap();
    assert!(cond.wait_timeout(&mut guard, Duration::ZERO).is_err());
}

#[test]
fn threads_wait_and_notify_too() {
    let cond = Condition::new().unwrap();
    let value = Value::new(0u32).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut guard = cond.acquire();
            cond.wait_for_timeout(&mut guard, || value.get() == 1, PATIENCE)
                .unwrap()
        });
        {
            let _guard = cond.acquire();
            value.set(1);
            cond.notify(1).unwrap();
        }
        assert!(waiter.join().unwrap());
    });
}

/// Notifies without the lock, then with it; what each returned.
fn notify_without_then_with_the_lock(cond: Condition) -> (bool, bool) {
    let without = cond.notify(1).is_err() && cond.notify_all().is_err();
    let _guard = cond.acquire();
    let with = cond.notify(1).is_ok() && cond.notify_all().is_ok();
    (without, with)
}

#[test]
fn notify_needs_the_lock_in_every_process() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        assert!(matches!(
            cond.notify(1),
            Err(proc_core::Error::InvalidState(_))
        ));
        assert_eq!(
            builder(method)
                .spawn(notify_without_then_with_the_lock, cond.clone())
                .unwrap()
                .join()
                .unwrap(),
            (true, true)
        );
        // Held by this process, the lock does not count as the child's.
        let _guard = cond.acquire();
        cond.notify(1).unwrap();
        assert!(
            builder(method)
                .spawn(|cond: Condition| cond.notify(1).is_err(), cond.clone())
                .unwrap()
                .join()
                .unwrap()
        );
    });
}

/// Notifies and waits a few microseconds, over and over, until `stop` is set: wakeups handed
/// out to waiters that time out as they arrive. Stays out of the condition while `quiet`.
fn churn(cond: &Condition, quiet: &AtomicBool, stop: &AtomicBool) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut guard = cond.acquire();
        if quiet.load(Ordering::Relaxed) {
            drop(guard);
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        cond.notify(1).unwrap();
        let _ = cond.wait_timeout(&mut guard, Duration::from_micros(1 + i % 50));
        i += 1;
    }
}

/// Waiters that time out while a notify hands them wakeups must not leave wakeups behind that
/// block a later notify: a `notify_all` reaches every waiter that waits at the time, however
/// many came and went before.
#[test]
fn waiters_that_time_out_never_strand_a_later_waiter() {
    let cond = Condition::new().unwrap();
    let quiet = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let notified = AtomicU64::new(0);
    let mut slept_through = None;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| churn(&cond, &quiet, &stop));
        }
        for round in 1..=100 {
            quiet.store(false, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
            let mut guard = cond.acquire();
            // Under the lock: from here on the churners notify no more and leave, so that this
            // waiter is soon the only one, and the helper's `notify_all` its only wakeup.
            quiet.store(true, Ordering::Relaxed);
            let (cond, notified) = (&cond, &notified);
            let helper = s.spawn(move || {
                std::thread::sleep(Duration::from_millis(1));
                let _guard = cond.acquire();
                notified.store(round, Ordering::Relaxed);
                cond.notify_all().unwrap();
            });
            let started = Instant::now();
            cond.wait_for_timeout(
                &mut guard,
                || notified.load(Ordering::Relaxed) == round,
                Duration::from_secs(5),
            )
            .unwrap();
            let waited = started.elapsed();
            drop(guard);
            helper.join().unwrap();
            if waited >= Duration::from_secs(4) {
                slept_through = Some(round);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(slept_through, None, "the waiter slept through a notify_all");
}
