//! `Barrier` between real processes, under every start method, after CPython's
//! `_TestBarrier`: arrival indexes, several rounds, the action, abort and reset.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proc_sync::Barrier;
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method, eventually};

#[test]
fn barrier_is_send_and_sync() {
    assert_send_sync::<Barrier>();
}

/// Rounds whose action ran in this process.
static ACTIONS: AtomicU32 = AtomicU32::new(0);

fn count_action() {
    ACTIONS.fetch_add(1, Ordering::SeqCst);
}

/// Goes through `rounds` rounds; returns the indexes it got and the actions it ran.
fn party((barrier, rounds): (Barrier, u32)) -> (Vec<u32>, u32) {
    let indexes = (0..rounds)
        .map(|_| barrier.wait_timeout(PATIENCE).unwrap())
        .collect();
    (indexes, ACTIONS.load(Ordering::SeqCst))
}

#[test]
fn parties_get_distinct_indexes_every_round_and_one_action_runs() {
    each_method(|method| {
        ACTIONS.store(0, Ordering::SeqCst);
        let rounds = 5;
        let barrier = Barrier::with_action(4, count_action).unwrap();
        let children: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(party, (barrier.clone(), rounds))
                    .unwrap()
            })
            .collect();
        let mut all = vec![party((barrier.clone(), rounds))];
        all.extend(children.into_iter().map(|mut c| c.join().unwrap()));
        for round in 0..rounds as usize {
            let mut indexes: Vec<u32> = all.iter().map(|(ix, _)| ix[round]).collect();
            indexes.sort();
            assert_eq!(indexes, [0, 1, 2, 3], "round {round}");
        }
        // The action ran once per round, each time in the last party to arrive.
        let actions: u32 = all.iter().map(|(_, a)| a).sum();
        assert_eq!(actions, rounds);
        assert!(!barrier.broken());
    });
}

fn wait_expecting_error(barrier: Barrier) -> bool {
    barrier.wait_timeout(PATIENCE).is_err()
}

#[test]
fn abort_breaks_waiters_and_reset_repairs() {
    each_method(|method| {
        let barrier = Barrier::new(3).unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                builder(method)
                    .spawn(wait_expecting_error, barrier.clone())
                    .unwrap()
            })
            .collect();
        eventually("both parties wait", || barrier.n_waiting() == 2);
        barrier.abort();
        assert!(barrier.broken());
        for mut waiter in waiters {
            assert!(
                waiter.join().unwrap(),
                "a waiter got through an aborted barrier"
            );
        }
        assert!(
            barrier.wait_timeout(PATIENCE).is_err(),
            "broken until reset"
        );
        barrier.reset();
        assert!(!barrier.broken());
        let children: Vec<_> = (0..2)
            .map(|_| builder(method).spawn(party, (barrier.clone(), 1)).unwrap())
            .collect();
        barrier.wait_timeout(PATIENCE).unwrap();
        for mut child in children {
            child.join().unwrap();
        }
    });
}

#[test]
fn reset_releases_waiters_with_an_error() {
    each_method(|method| {
        let barrier = Barrier::new(2).unwrap();
        let mut waiter = builder(method)
            .spawn(wait_expecting_error, barrier.clone())
            .unwrap();
        eventually("the party waits", || barrier.n_waiting() == 1);
        barrier.reset();
        assert!(waiter.join().unwrap());
        // Usable again at once.
        let mut other = builder(method).spawn(party, (barrier.clone(), 1)).unwrap();
        barrier.wait_timeout(PATIENCE).unwrap();
        other.join().unwrap();
    });
}

#[test]
fn a_timeout_breaks_the_barrier() {
    let barrier = Barrier::new(2).unwrap();
    assert!(
        barrier
            .wait_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    assert!(barrier.broken());
    assert!(barrier.wait().is_err());
    barrier.reset();
    std::thread::scope(|s| {
        let other = s.spawn(|| barrier.wait().unwrap());
        let mine = barrier.wait().unwrap();
        assert_eq!(mine + other.join().unwrap(), 1);
    });
}
