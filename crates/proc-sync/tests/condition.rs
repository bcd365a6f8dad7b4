//! `Condition` between real processes, under every start method, after CPython's
//! `_TestCondition`: notify and notify_all across processes, `wait_for`, timeouts.

use std::time::Duration;

use proc_sync::{Condition, Lock, Value};
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
            cond.notify_all();
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
            cond.notify(1);
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
    assert!(cond.try_acquire().is_none());
    drop(guard);
    assert!(!cond.get_lock().is_locked());
}

#[test]
fn waiting_with_the_guard_of_another_lock_is_an_error() {
    let cond = Condition::new().unwrap();
    let other = Lock::new().unwrap();
    let mut guard = other.acquire();
    assert!(
        cond.wait_timeout(&mut guard, Duration::from_millis(1))
            .is_err()
    );
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
            cond.notify(1);
        }
        assert!(waiter.join().unwrap());
    });
}
