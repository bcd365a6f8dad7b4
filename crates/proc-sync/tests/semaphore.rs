//! `Semaphore` and `BoundedSemaphore` between real processes, under every start method,
//! after CPython's `_TestSemaphore`: a bound of 5 is never exceeded, measured by a shared
//! count of holders; releases past the bound are refused.

use std::time::Duration;

use proc_sync::{BoundedSemaphore, Semaphore, SemaphoreGuard, Value};
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method};
#[test]
fn semaphores_are_send_and_sync() {
    assert_send_sync::<Semaphore>();
    assert_send_sync::<BoundedSemaphore>();
    assert_send_sync::<SemaphoreGuard<'static>>();
}

/// Counts of holders now and at most: `[now, most]`.
type Holders = Value<[u32; 2]>;

fn hold_a_place((sem, holders, rounds): (BoundedSemaphore, Holders, u32)) {
    for _ in 0..rounds {
        let _place = sem.acquire_timeout(PATIENCE).unwrap();
        holders.with_lock(|[now, most]| {
            *now += 1;
            *most = (*most).max(*now);
        });
        std::thread::yield_now();
        holders.with_lock(|[now, _]| *now -= 1);
    }
}

#[test]
fn bounded_semaphore_of_five_never_has_more_than_five_holders() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(5).unwrap();
        let holders = Value::new([0u32; 2]).unwrap();
        let children: Vec<_> = (0..12)
            .map(|_| {
                builder(method)
                    .spawn(hold_a_place, (sem.clone(), holders.clone(), 50))
                    .unwrap()
            })
            .collect();
        for mut child in children {
            child.join().unwrap();
        }
        let [now, most] = holders.get();
        assert_eq!(now, 0);
        assert!(most <= 5, "{most} holders at once");
        assert!(most >= 1);
        assert_eq!(sem.get_value(), 5);
        assert!(sem.release().is_err(), "released past the bound");
    });
}

fn release_once(sem: Semaphore) {
    sem.release().unwrap();
}

#[test]
fn a_release_in_another_process_wakes_a_waiter() {
    each_method(|method| {
        let sem = Semaphore::new(0).unwrap();
        assert!(sem.try_acquire().is_none());
        let mut child = builder(method).spawn(release_once, sem.clone()).unwrap();
        sem.acquire_timeout(PATIENCE).unwrap().forget();
        child.join().unwrap();
        assert_eq!(sem.get_value(), 0);
    });
}

fn take_and_keep((sem, n): (BoundedSemaphore, u32)) {
    for _ in 0..n {
        sem.acquire_timeout(PATIENCE).unwrap().forget();
    }
}

#[test]
fn places_taken_in_one_process_are_given_back_in_another() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(3).unwrap();
        builder(method)
            .spawn(take_and_keep, (sem.clone(), 3))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(sem.get_value(), 0);
        assert!(
            sem.acquire_timeout(Duration::from_millis(10))
                .unwrap_err()
                .is_timeout()
        );
        for _ in 0..3 {
            sem.release().unwrap();
        }
        assert!(sem.release().is_err());
    });
}

#[test]
fn many_threads_share_the_places() {
    let sem = Semaphore::new(2).unwrap();
    let holders = Value::new([0u32; 2]).unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..200 {
                    let _place = sem.acquire();
                    holders.with_lock(|[now, most]| {
                        *now += 1;
                        *most = (*most).max(*now);
                    });
                    holders.with_lock(|[now, _]| *now -= 1);
                }
            });
        }
    });
    assert!(holders.get()[1] <= 2);
    assert_eq!(sem.get_value(), 2);
}

/// Takes a place without a guard, as Python's `sem.acquire()` does.
fn take_a_place(sem: Semaphore) -> bool {
    sem.acquire_timeout(PATIENCE)
        .map(SemaphoreGuard::forget)
        .is_ok()
}

// After CPython `_TestSemaphore.test_semaphore`: acquire and release without `with`, the
// place taken in one process and given back in another.
#[test]
fn a_place_taken_in_one_process_is_given_back_in_another() {
    each_method(|method| {
        let sem = Semaphore::new(2).unwrap();
        assert!(
            builder(method)
                .spawn(take_a_place, sem.clone())
                .unwrap()
                .join()
                .unwrap()
        );
        sem.acquire().forget();
        assert_eq!(sem.get_value(), 0);
        assert!(sem.try_acquire().is_none());
        builder(method)
            .spawn(release_once, sem.clone())
            .unwrap()
            .join()
            .unwrap();
        sem.release().unwrap();
        assert_eq!(sem.get_value(), 2);
    });
}
