//! `Condition` between real processes, under every start method, after CPython's
//! `_TestCondition`: notify and notify_all across processes, `wait_for`, timeouts. Beyond
//! CPython: a waiter or a notifier killed with SIGKILL leaves nobody blocked past their
//! timeout, and no notify goes to the dead.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_core::{Process, StartMethod};
use proc_sync::{Condition, Event, Lock, RLock, Value};
use procs_testkit::{PATIENCE, StateMap, assert_send_sync, builder, each_method, eventually};

#[test]
fn condition_is_send_and_sync() {
    assert_send_sync::<Condition>();
}

/// Waits until the shared value reaches `target`, counting itself among the sleepers under
/// the lock first; returns the value it saw. Its time runs out only after the parent's
/// patience: only notifies wake it before the parent gives up on it.
fn wait_until_reached(
    (cond, value, sleepers, target): (Condition, Value<u32>, Value<u32>, u32),
) -> u32 {
    let mut guard = cond.acquire();
    sleepers.with_lock(|n| *n += 1);
    cond.wait_for_timeout(&mut guard, || value.get() >= target, 2 * PATIENCE)
        .unwrap();
    value.get()
}

// After CPython `_TestCondition.test_waitfor`: the waiters sleep before the first notify, so
// only the notifies can wake them in time (were a notify to do nothing, they would sleep on
// and the bounded join fail the test).
#[test]
fn notify_all_wakes_waiters_in_other_processes() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let value = Value::new(0u32).unwrap();
        let sleepers = Value::new(0u32).unwrap();
        let mut waiters: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(
                        wait_until_reached,
                        (cond.clone(), value.clone(), sleepers.clone(), 5),
                    )
                    .unwrap()
            })
            .collect();
        until_asleep(&cond, &sleepers, 3, &waiters);
        // Raise the value step by step, each step under the lock and notified.
        for _ in 0..5 {
            let _guard = cond.acquire();
            value.with_lock(|v| *v += 1);
            cond.notify_all().unwrap();
        }
        for waiter in &mut waiters {
            assert_eq!(join_soon(waiter, "a waiter"), 5);
        }
    });
}

/// CPython's `_TestCondition.f`: counts itself among the sleeping under the lock right
/// before its one wait, among the woken after it, and reports whether the wait was
/// notified (`false`: its time ran out).
fn sleep_and_count(
    (cond, sleeping, woken, timeout_ms): (Condition, Value<u32>, Value<u32>, u64),
) -> bool {
    let mut guard = cond.acquire();
    sleeping.with_lock(|n| *n += 1);
    let notified = cond
        .wait_timeout(&mut guard, Duration::from_millis(timeout_ms))
        .unwrap();
    woken.with_lock(|n| *n += 1);
    notified
}

/// How long a sleeper that a notify must wake waits: past the parent's patience, so that a
/// notify that did nothing fails the parent's bounded wait for it, and the message says so.
const LONG: Duration = Duration::from_secs(2 * PATIENCE.as_secs());

/// Starts `n` processes of [`sleep_and_count`], each waiting at most `timeout`.
fn start_sleepers(
    method: StartMethod,
    (cond, sleeping, woken): (&Condition, &Value<u32>, &Value<u32>),
    n: usize,
    timeout: Duration,
) -> Vec<Process<bool>> {
    let args = (
        cond.clone(),
        sleeping.clone(),
        woken.clone(),
        timeout.as_millis() as u64,
    );
    (0..n)
        .map(|_| {
            builder(method)
                .spawn(sleep_and_count, args.clone())
                .unwrap()
        })
        .collect()
}

/// Returns once `waiters` sleep inside `wait`. Each counted itself under the condition's lock
/// right before its wait, which registers before it lets the lock go: once this thread takes
/// the lock after the count reached `total`, every one of those waits is registered. Where
/// `/proc` tells, every thread of the waiters is seen asleep too.
fn until_asleep<R>(cond: &Condition, sleeping: &Value<u32>, total: u32, waiters: &[Process<R>]) {
    eventually("the waiters count themselves asleep", || {
        sleeping.get() == total
    });
    drop(cond.acquire_timeout(PATIENCE).unwrap());
    for waiter in waiters {
        procs_testkit::wait_until_asleep("a waiter sleeps in wait", waiter.pid().unwrap());
    }
}

/// CPython's `_wait()`: time for a waiter that a notify woke by mistake to count itself
/// woken. Not a synchronization, and nothing is asserted about how long anything took.
fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

/// `notify(n)` under the condition's lock.
fn notify_under_lock(cond: &Condition, n: u32) {
    let _guard = cond.acquire_timeout(PATIENCE).unwrap();
    cond.notify(n).unwrap();
}

// Port of CPython `_TestCondition.test_notify`: the waiters sleep before the parent notifies,
// and each `notify(1)` wakes one of them, not none and not more.
#[test]
fn notify_one_at_a_time_releases_every_waiter_in_turn() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let (sleeping, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
        let mut waiters = start_sleepers(method, (&cond, &sleeping, &woken), 3, LONG);
        until_asleep(&cond, &sleeping, 3, &waiters);
        settle();
        assert_eq!(woken.get(), 0, "a waiter woke before any notify");
        for k in 1..=3 {
            notify_under_lock(&cond, 1);
            eventually("the notify wakes a waiter", || woken.get() >= k);
            settle();
            assert_eq!(woken.get(), k, "one notify(1) woke more than one waiter");
        }
        for waiter in &mut waiters {
            assert!(
                join_soon(waiter, "a waiter"),
                "a waiter timed out unnotified"
            );
        }
    });
}

// Port of CPython `_TestCondition.test_notify_all`: waiters whose time runs out leave
// without a notify; then `notify_all` wakes every waiter that sleeps, and nobody before it.
#[test]
fn notify_all_wakes_every_sleeper_and_timed_out_waiters_leave_unnotified() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let (sleeping, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
        let shared = (&cond, &sleeping, &woken);
        let mut brief = start_sleepers(method, shared, 3, Duration::from_millis(100));
        for waiter in &mut brief {
            assert!(
                !join_soon(waiter, "a waiter with a timeout"),
                "notified by nobody"
            );
        }
        assert_eq!((sleeping.get(), woken.get()), (3, 3));

        let mut waiters = start_sleepers(method, shared, 3, LONG);
        until_asleep(&cond, &sleeping, 6, &waiters);
        settle();
        assert_eq!(woken.get(), 3, "a waiter woke before the notify");
        notify_under_lock(&cond, u32::MAX);
        eventually("notify_all wakes every waiter", || woken.get() == 6);
        for waiter in &mut waiters {
            assert!(
                join_soon(waiter, "a waiter"),
                "a waiter timed out unnotified"
            );
        }
    });
}

// Port of CPython `_TestCondition.test_notify_n`: `notify(n)` wakes `n` of the sleepers, or
// all that are left when fewer sleep.
#[test]
fn notify_n_wakes_n_sleepers_or_all_that_are_left() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let (sleeping, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
        let mut waiters = start_sleepers(method, (&cond, &sleeping, &woken), 4, LONG);
        until_asleep(&cond, &sleeping, 4, &waiters);
        notify_under_lock(&cond, 2);
        eventually("notify(2) wakes two waiters", || woken.get() >= 2);
        settle();
        assert_eq!(woken.get(), 2, "notify(2) woke more than two waiters");
        notify_under_lock(&cond, 4);
        eventually("notify(4) wakes the two left", || woken.get() == 4);
        // Nobody waits: nothing happens, and nothing is kept for a later waiter.
        notify_under_lock(&cond, 3);
        for waiter in &mut waiters {
            assert!(
                join_soon(waiter, "a waiter"),
                "a waiter timed out unnotified"
            );
        }
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

/// Joins `child`, giving up after `PATIENCE`: a wait that hangs fails the test.
fn join_soon<R: serde::Serialize + serde::de::DeserializeOwned + 'static>(
    child: &mut Process<R>,
    what: &str,
) -> R {
    match child.join_timeout(PATIENCE) {
        Ok(result) => result,
        Err(err) => {
            let _ = child.kill();
            panic!("{what} still waited after {PATIENCE:?}: {err}");
        }
    }
}

/// Waits once for `timeout_ms`, after saying so under the lock; says that the wait is over
/// before it lets the lock go, and reports whether it was notified and whether it took the
/// lock back from a dead holder.
fn wait_and_report(
    (cond, waiting, done, timeout_ms): (Condition, Event, Event, u64),
) -> (bool, bool) {
    let mut guard = cond.acquire();
    waiting.set();
    let notified = cond
        .wait_timeout(&mut guard, Duration::from_millis(timeout_ms))
        .unwrap();
    done.set();
    (notified, guard.owner_died())
}

/// Starts a waiter and returns once it provably waits: it registered under the lock, which
/// the parent then took, so it let the lock go inside `wait`.
/// It sets `done` when its wait is over, before it lets the lock go.
fn waiter_in_wait(
    method: StartMethod,
    cond: &Condition,
    done: &Event,
    timeout: Duration,
) -> Process<(bool, bool)> {
    let waiting = Event::new().unwrap();
    let timeout_ms = timeout.as_millis() as u64;
    let args = (cond.clone(), waiting.clone(), done.clone(), timeout_ms);
    let waiter = builder(method).spawn(wait_and_report, args).unwrap();
    assert!(waiting.wait_timeout(PATIENCE), "the waiter never came");
    drop(cond.acquire_timeout(PATIENCE).unwrap());
    waiter
}

/// Takes the condition's lock, says so, and waits to be killed before it notifies.
fn hold_and_never_notify((cond, holding): (Condition, Event)) {
    let _guard = cond.acquire();
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

// A notifier that dies holding the lock, before its notify: the waiter's time runs out as
// it would have, and it takes the lock back from the dead (the lock is robust) instead of
// waiting for it for ever.
#[test]
fn a_notifier_killed_holding_the_lock_leaves_the_waiter_its_timeout() {
    each_method(|method| {
        // The notifier must take the lock while the waiter still waits; a machine too slow
        // for that gets a longer wait.
        for timeout in [1, 4, 16].map(Duration::from_secs) {
            let cond = Condition::new().unwrap();
            let done = Event::new().unwrap();
            let mut waiter = waiter_in_wait(method, &cond, &done, timeout);
            let holding = Event::new().unwrap();
            let mut notifier = builder(method)
                .spawn(hold_and_never_notify, (cond.clone(), holding.clone()))
                .unwrap();
            assert!(holding.wait_timeout(PATIENCE));
            // The waiter's wait was over before the notifier took the lock: no takeover.
            let late = done.is_set();
            notifier.kill().unwrap();
            let (notified, owner_died) = join_soon(&mut waiter, "the waiter");
            assert!(!notified, "notified by a notifier that never notified");
            let _ = notifier.join();
            if late {
                continue;
            }
            assert!(
                owner_died,
                "the waiter did not take the lock over from the dead"
            );
            let guard = cond.acquire_timeout(PATIENCE).unwrap();
            assert!(!guard.owner_died());
            return;
        }
        panic!("the notifier never took the lock while the waiter waited");
    });
}

/// Takes the condition's lock, notifies, says so, and waits to be killed before it lets
/// the lock go.
fn notify_and_hold((cond, holding): (Condition, Event)) {
    let _guard = cond.acquire();
    cond.notify_all().unwrap();
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

// A notifier killed holding the lock after its notify, whose pid the system gave to another
// process before the waiter looked: the woken waiter, which must take the lock back before
// its wait returns, sees through the stranger (the lock's word holds a hash of its owner's
// start time beside the pid) and takes the lock over from the dead instead of waiting for
// it for ever. The word is written as it reads once the pid went to the stranger.
#[test]
fn a_waiter_takes_the_lock_back_from_a_killed_notifier_whose_pid_went_to_a_live_process() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let done = Event::new().unwrap();
        let mut waiter = waiter_in_wait(method, &cond, &done, 2 * PATIENCE);
        let holding = Event::new().unwrap();
        let mut notifier = builder(method)
            .spawn(notify_and_hold, (cond.clone(), holding.clone()))
            .unwrap();
        assert!(
            holding.wait_timeout(PATIENCE),
            "the notifier never notified"
        );
        let state = StateMap::of(cond.get_lock());
        let Some(stranger) = state.give_lock_away_and_kill(&mut notifier, 0, method) else {
            let _ = waiter.kill();
            return; // The lock's word cannot tell processes of one pid apart: nothing to test.
        };
        let (notified, owner_died) = join_soon(&mut waiter, "the waiter");
        assert!(notified, "the notify was lost");
        assert!(
            owner_died,
            "the waiter did not take the lock over from the dead"
        );
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
        let guard = cond.acquire_timeout(PATIENCE).unwrap();
        assert!(!guard.owner_died());
    });
}

// A waiter killed inside `wait` stays counted among the waiters, but a notify never goes to
// it alone: the live waiter that a `notify(1)` is for wakes.
#[test]
fn a_waiter_killed_inside_wait_does_not_take_a_notify_from_the_living() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let mut victim = waiter_in_wait(method, &cond, &Event::new().unwrap(), PATIENCE);
        let pid = victim.pid().unwrap();
        procs_testkit::wait_until_asleep("the victim sleeps in wait", pid);
        victim.kill().unwrap();
        assert!(victim.join().unwrap_err().signal().is_some());
        let mut survivor = waiter_in_wait(method, &cond, &Event::new().unwrap(), PATIENCE);
        {
            let guard = cond.acquire_timeout(PATIENCE).unwrap();
            assert!(!guard.owner_died(), "the dead waiter held the lock");
            cond.notify(1).unwrap();
        }
        let (notified, _) = join_soon(&mut survivor, "the survivor");
        assert!(notified, "the notify went to the dead waiter");
    });
}

/// Waits twice, counting each wait in `registered` under the lock right before it, and
/// returns how often it was notified.
fn wait_twice((cond, registered): (Condition, Value<u32>)) -> u32 {
    let mut guard = cond.acquire();
    let mut notified = 0;
    for _ in 0..2 {
        registered.with_lock(|n| *n += 1);
        if cond.wait_timeout(&mut guard, PATIENCE).unwrap() {
            notified += 1;
        }
    }
    notified
}

// After CPython `_TestCondition.test_notify_all`, with a waiter killed halfway: notify_all
// still wakes every live waiter, and later notifies too.
#[test]
fn notify_all_wakes_every_live_waiter_after_one_was_killed() {
    each_method(|method| {
        let cond = Condition::new().unwrap();
        let mut victim = waiter_in_wait(method, &cond, &Event::new().unwrap(), PATIENCE);
        let registered = Value::new(0u32).unwrap();
        let mut survivors: Vec<_> = (0..2)
            .map(|_| {
                builder(method)
                    .spawn(wait_twice, (cond.clone(), registered.clone()))
                    .unwrap()
            })
            .collect();
        // Counted under the lock, right before the wait registers under the same hold: once
        // the parent holds the lock after the count, those waits are registered.
        eventually("both survivors wait", || registered.get() == 2);
        victim.kill().unwrap();
        let _ = victim.join();
        {
            let _guard = cond.acquire_timeout(PATIENCE).unwrap();
            cond.notify_all().unwrap();
        }
        eventually("both survivors wait again", || registered.get() == 4);
        {
            let _guard = cond.acquire_timeout(PATIENCE).unwrap();
            cond.notify_all().unwrap();
        }
        for survivor in &mut survivors {
            assert_eq!(join_soon(survivor, "a survivor"), 2);
        }
    });
}
