//! `Semaphore` and `BoundedSemaphore` between real processes, under every start method,
//! after CPython's `_TestSemaphore`: a bound of 5 is never exceeded, measured by a shared
//! count of holders; releases past the bound are refused. Beyond CPython: the places of a
//! holder killed with SIGKILL come back, to waiters already asleep too.

use std::sync::mpsc;
use std::time::Duration;

use proc_core::{Process, StartMethod};
use proc_sync::{BoundedSemaphore, Event, Semaphore, SemaphoreGuard, Value};
use procs_testkit::{PATIENCE, StateMap, assert_send_sync, builder, each_method, eventually};
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
        // Hold the place until five holders were seen at once: contention is forced, not
        // left to the scheduler, so a semaphore that lets a sixth in shows it (`most` > 5)
        // and one that stops at four never gets here (the wait gives up and fails the test).
        eventually("five holders at once", || holders.get()[1] >= 5);
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
        assert_eq!(most, 5, "{most} holders at once");
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

/// Takes `n` places with guards, says so, and waits to be killed.
fn hold_places((sem, n, holding): (BoundedSemaphore, u32, Event)) {
    let places: Vec<_> = (0..n)
        .map(|_| sem.acquire_timeout(PATIENCE).unwrap())
        .collect();
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let _ = &places;
    }
}

/// Starts a child that holds `n` places of `sem` and returns once it holds them.
fn holder_of(method: StartMethod, sem: &BoundedSemaphore, n: u32) -> Process<()> {
    let holding = Event::new().unwrap();
    let holder = builder(method)
        .spawn(hold_places, (sem.clone(), n, holding.clone()))
        .unwrap();
    assert!(
        holding.wait_timeout(PATIENCE),
        "the holder never took its places"
    );
    holder
}

// Beyond CPython, whose semaphores lose what a killed process held: the places of a holder
// killed with SIGKILL come back, and each acquirer that gets one of them is told.
#[test]
fn the_places_of_a_killed_holder_come_back_and_the_acquirers_are_told() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(3).unwrap();
        let mut holder = holder_of(method, &sem, 2);
        assert_eq!(sem.get_value(), 1);
        holder.kill().unwrap();
        // Not joined yet: the dead holder is a zombie, which must count as dead.
        let places: Vec<_> = (0..3)
            .map(|_| sem.acquire_timeout(PATIENCE).unwrap())
            .collect();
        let told = places.iter().filter(|p| p.owner_died()).count();
        assert_eq!(told, 2, "one acquirer is told per place that came back");
        drop(places);
        assert_eq!(sem.get_value(), 3);
        assert!(
            sem.release().is_err(),
            "the dead holder's places came back twice"
        );
        assert!(holder.join().unwrap_err().signal().is_some());
        assert!(!sem.acquire_timeout(PATIENCE).unwrap().owner_died());
    });
}

/// Says that it is about to wait, waits for a place without a timeout (its parent bounds
/// the wait) and reports whether it was told that the place came from a dead holder.
fn wait_for_a_place((sem, waiting): (BoundedSemaphore, Event)) -> bool {
    waiting.set();
    sem.acquire().owner_died()
}

/// Whether every thread of process `pid` sleeps, where `/proc` tells (elsewhere: a guess
/// after a while).
fn asleep(pid: u32) -> bool {
    #[cfg(unix)]
    if let Some(states) = procs_testkit::thread_states(pid) {
        return states.iter().all(|s| *s == 'S');
    }
    let _ = pid;
    std::thread::sleep(Duration::from_millis(200));
    true
}

// A waiter already asleep in `acquire` (without a timeout, whose end would look once)
// notices by itself that the holder died: nobody comes after it to look.
#[test]
fn a_waiter_blocked_on_a_killed_holder_gets_its_place() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(1).unwrap();
        let mut holder = holder_of(method, &sem, 1);
        let waiting = Event::new().unwrap();
        let mut waiter = builder(method)
            .spawn(wait_for_a_place, (sem.clone(), waiting.clone()))
            .unwrap();
        assert!(waiting.wait_timeout(PATIENCE));
        let pid = waiter.pid().unwrap();
        eventually("the waiter sleeps in acquire", || asleep(pid));
        assert_eq!(sem.get_value(), 0);
        holder.kill().unwrap();
        match waiter.join_timeout(PATIENCE) {
            Ok(told) => assert!(told, "the waiter was not told that the holder died"),
            Err(err) => {
                let _ = waiter.kill();
                panic!("the waiter never got the dead holder's place: {err}");
            }
        }
        assert_eq!(sem.get_value(), 1);
        let _ = holder.join();
    });
}

/// Takes `n` places and keeps them without guards, says so, and waits to be killed.
fn keep_places((sem, n, holding): (BoundedSemaphore, u32, Event)) {
    for _ in 0..n {
        sem.acquire_timeout(PATIENCE).unwrap().forget();
    }
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

// `forget` hands the place to the caller: it stays taken when the process dies, so that the
// process that was to release it (any process may) does not count it twice.
#[test]
fn forgotten_places_of_a_killed_process_stay_taken_until_released() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(2).unwrap();
        let holding = Event::new().unwrap();
        let mut keeper = builder(method)
            .spawn(keep_places, (sem.clone(), 2, holding.clone()))
            .unwrap();
        assert!(holding.wait_timeout(PATIENCE));
        keeper.kill().unwrap();
        assert!(keeper.join().unwrap_err().signal().is_some());
        // Longer than the slice after which a waiter looks for dead holders.
        let err = sem.acquire_timeout(Duration::from_millis(300)).unwrap_err();
        assert!(err.is_timeout());
        assert!(sem.try_acquire().is_none());
        sem.release().unwrap();
        sem.release().unwrap();
        assert!(sem.release().is_err());
        assert!(!sem.acquire_timeout(PATIENCE).unwrap().owner_died());
    });
}

/// Takes a place with a guard in each of `threads` threads, says so, and waits to be killed.
fn hold_in_threads((sem, threads, holding): (Semaphore, u32, Event)) {
    let (taken, told) = mpsc::channel();
    for _ in 0..threads {
        let (sem, taken) = (sem.clone(), taken.clone());
        std::thread::spawn(move || {
            let _place = sem.acquire_timeout(PATIENCE).unwrap();
            taken.send(()).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    for _ in 0..threads {
        told.recv_timeout(PATIENCE).unwrap();
    }
    holding.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

// The places of a process are recorded together, whichever of its threads holds them: all
// come back when it dies.
#[test]
fn the_places_of_every_thread_of_a_killed_process_come_back() {
    each_method(|method| {
        let sem = Semaphore::new(3).unwrap();
        let holding = Event::new().unwrap();
        let mut holder = builder(method)
            .spawn(hold_in_threads, (sem.clone(), 3, holding.clone()))
            .unwrap();
        assert!(holding.wait_timeout(PATIENCE));
        assert_eq!(sem.get_value(), 0);
        holder.kill().unwrap();
        let places: Vec<_> = (0..3)
            .map(|_| sem.acquire_timeout(PATIENCE).unwrap())
            .collect();
        assert!(places.iter().all(SemaphoreGuard::owner_died));
        drop(places);
        assert_eq!(sem.get_value(), 3);
        let _ = holder.join();
    });
}

/// Gives back one place without a guard.
fn release_bounded(sem: BoundedSemaphore) -> bool {
    sem.release().is_ok()
}

// A release from another process only adds a place: it leaves the record of holders alone,
// so a holder that dies afterwards still gets its own place back, and the bound still holds.
#[test]
fn a_release_from_another_process_leaves_the_holders_alone() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(2).unwrap();
        sem.acquire().forget();
        let mut holder = holder_of(method, &sem, 1);
        assert_eq!(sem.get_value(), 0);
        let released = builder(method)
            .spawn(release_bounded, sem.clone())
            .unwrap()
            .join_timeout(PATIENCE)
            .unwrap();
        assert!(released, "the forgotten place was not given back");
        assert_eq!(sem.get_value(), 1);
        holder.kill().unwrap();
        let places: Vec<_> = (0..2)
            .map(|_| sem.acquire_timeout(PATIENCE).unwrap())
            .collect();
        assert_eq!(places.iter().filter(|p| p.owner_died()).count(), 1);
        drop(places);
        assert_eq!(sem.get_value(), 2);
        assert!(sem.release().is_err());
        let _ = holder.join();
    });
}

#[test]
fn any_timeout_is_fine_even_the_longest() {
    let sem = BoundedSemaphore::new(1).unwrap();
    let place = sem.acquire_timeout(Duration::MAX).unwrap();
    assert!(!place.owner_died());
    assert!(
        sem.acquire_timeout(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );
    drop(place);
    let sem = Semaphore::new(1).unwrap();
    drop(sem.acquire_timeout(Duration::MAX).unwrap());
    assert_eq!(sem.get_value(), 1);
}

/// Takes and gives back places in two threads, every way there is, until killed.
fn churn((sem, started): (BoundedSemaphore, Event)) {
    let other = sem.clone();
    std::thread::spawn(move || {
        loop {
            if let Some(place) = other.try_acquire() {
                drop(place);
            }
            drop(other.acquire_timeout(PATIENCE));
        }
    });
    started.set();
    loop {
        drop(sem.acquire());
    }
}

/// Takes every one of the `places` of `sem` and gives them back: none was lost, and none
/// came back twice (a release past the bound is refused).
fn every_place_comes_back_once(sem: &BoundedSemaphore, places: u32, round: u64) {
    let taken: Vec<_> = (0..places)
        .map(|i| {
            sem.acquire_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("round {round}: place {} of {places} was lost", i + 1))
        })
        .collect();
    drop(taken);
    assert_eq!(sem.get_value(), places);
    assert!(
        sem.release().is_err(),
        "round {round}: a place came back twice"
    );
}

// The kill -9 soak's finding: a process killed inside a call (between taking a place and
// recording it, or between unrecording it and giving it back) lost the place for good. Here
// the kill lands at varied points of a tight loop; every place must come back, once.
#[test]
fn a_holder_killed_anywhere_in_its_calls_loses_no_place() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(2).unwrap();
        for round in 0..10u64 {
            let started = Event::new().unwrap();
            let mut churner = builder(method)
                .spawn(churn, (sem.clone(), started.clone()))
                .unwrap();
            assert!(started.wait_timeout(PATIENCE), "the churner never started");
            std::thread::sleep(Duration::from_micros(150 * round));
            churner.kill().unwrap();
            assert!(churner.join().unwrap_err().signal().is_some());
            every_place_comes_back_once(&sem, 2, round);
        }
    });
}

/// A second mapping of a semaphore's shared state, as a peer holding it could write it.
fn state_of(sem: &BoundedSemaphore) -> StateMap {
    StateMap::of(sem)
}

// Beyond CPython: a holder is its pid and its start time. A holder that was killed and whose
// pid the system gave to another process before anyone looked must not pass for that
// process: its places come back while the new owner of the pid lives on. The record is
// written as it reads once the pid went to the stranger (the test cannot make the system
// recycle a pid), from the slot the real holder left.
#[test]
fn the_places_of_a_killed_holder_come_back_though_its_pid_went_to_a_live_process() {
    each_method(|method| {
        let sem = BoundedSemaphore::new(3).unwrap();
        let state = state_of(&sem);
        let mut holder = holder_of(method, &sem, 2);
        let Some(stranger) = state.kill_and_give_pid_away(&mut holder, 2, method) else {
            return; // The platform cannot tell processes of one pid apart: nothing to test.
        };
        assert_eq!(sem.get_value(), 1);
        let places: Vec<_> = (0..3)
            .map(|i| {
                sem.acquire_timeout(PATIENCE).unwrap_or_else(|_| {
                    panic!(
                        "place {} of 3 never came back: the stranger passed for the holder",
                        i + 1
                    )
                })
            })
            .collect();
        assert_eq!(places.iter().filter(|p| p.owner_died()).count(), 2);
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
        drop(places);
        assert_eq!(sem.get_value(), 3);
        assert!(sem.release().is_err(), "a place came back twice");
    });
}

/// The size of a semaphore's state, as this file mirrors it: the count's word and the
/// lock's word (a value and a count of sleepers each), the bound, the orphans, the total,
/// 128 holder slots of two words, then the counts of waiters for a place and for the lock.
#[cfg(target_os = "linux")]
const SEMAPHORE_STATE: usize = 8 + 8 + 4 + 4 + 8 + 128 * 16 + 4 + 4;

/// Where the internal lock's word sits in the state: it holds its owner's identity.
#[cfg(target_os = "linux")]
const LOCK_AT: usize = 8;

/// Whether the count and the record disagree with the total: a call stopped between its
/// two steps.
#[cfg(target_os = "linux")]
fn mid_change(state: &StateMap) -> bool {
    use std::sync::atomic::Ordering;
    let words = state.words();
    let count = words[0].load(Ordering::SeqCst) & u64::from(u32::MAX);
    let total = words[3].load(Ordering::SeqCst);
    let held: u64 = words[4..4 + 128 * 2]
        .iter()
        .step_by(2)
        .map(|w| w.load(Ordering::SeqCst) & u64::from(u32::MAX))
        .sum();
    count + held != total
}

// The kill -9 soak's finding, at provable points: the churner is stopped (SIGSTOP) at
// random moments until it is caught holding the semaphore's internal lock — inside an
// acquire, a guard's drop or a release, between the two words of a change or around them —
// and killed right there. Every place must come back, once.
#[cfg(target_os = "linux")]
#[test]
fn a_holder_killed_inside_a_call_loses_no_place_and_none_comes_back_twice() {
    use proc_core::shared::{identity_of, start_time_of};

    let sem = BoundedSemaphore::new(2).unwrap();
    let state = state_of(&sem);
    assert_eq!(
        state.size(),
        SEMAPHORE_STATE,
        "the semaphore's state changed: update this test's mirror of it"
    );
    let mut rng = procs_testkit::Rng::new(0x5eed_0015);
    let (mut inside, mut between) = (0, 0);
    for round in 0..400u64 {
        if inside >= 12 && between >= 2 {
            break;
        }
        let started = Event::new().unwrap();
        let mut churner = Process::builder()
            .spawn(churn, (sem.clone(), started.clone()))
            .unwrap();
        assert!(started.wait_timeout(PATIENCE), "the churner never started");
        let pid = churner.pid().unwrap();
        let owner = identity_of(pid, start_time_of(pid).unwrap_or(0));
        for _ in 0..200 {
            std::thread::sleep(Duration::from_micros(rng.next_u64() % 300));
            procs_testkit::stop(pid);
            if state
                .word32(LOCK_AT)
                .load(std::sync::atomic::Ordering::SeqCst)
                == owner
            {
                inside += 1;
                between += usize::from(mid_change(&state));
                break;
            }
            procs_testkit::resume(pid);
        }
        churner.kill().unwrap();
        assert!(churner.join().unwrap_err().signal().is_some());
        every_place_comes_back_once(&sem, 2, round);
    }
    eprintln!("killed inside the lock {inside} times, {between} of them between two words");
    assert!(
        inside >= 12,
        "caught the churner inside a call only {inside} times"
    );
}
