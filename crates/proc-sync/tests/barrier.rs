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

/// Waits with the barrier's own timeout, as Python's `barrier.wait()` does; an error says
/// whether it was this party's time that ran out.
fn wait_with_default(barrier: Barrier) -> Result<u32, bool> {
    barrier.wait().map_err(|e| e.is_timeout())
}

// After CPython `_TestBarrier.test_default_timeout`, without its sleep: a barrier of three
// that only two parties reach times out with its default timeout in one of them, which breaks
// it for the other. The timeout travels to the child with the barrier.
#[test]
fn the_default_timeout_breaks_a_barrier_whose_last_party_never_comes() {
    each_method(|method| {
        let barrier = Barrier::with_timeout(3, Duration::from_millis(200)).unwrap();
        let mut child = builder(method)
            .spawn(wait_with_default, barrier.clone())
            .unwrap();
        let mine = wait_with_default(barrier.clone());
        let theirs = child.join().unwrap();
        assert!(barrier.broken());
        // Both fail: at least one because its time ran out (the first to give up), the other
        // because that broke the barrier, or because its own time ran out as well.
        assert!(
            matches!((mine, theirs), (Err(a), Err(b)) if a || b),
            "{mine:?} {theirs:?}"
        );
        barrier.reset();
        assert!(!barrier.broken());
    });
}

/// Waits with a timeout of its own, which overrides the barrier's.
fn wait_patiently(barrier: Barrier) -> u32 {
    barrier.wait_timeout(PATIENCE).unwrap()
}

#[test]
fn wait_timeout_overrides_the_default_timeout() {
    each_method(|method| {
        // A default that no party could meet: the parties' own limits rule.
        let barrier = Barrier::builder(2)
            .timeout(Duration::ZERO)
            .action(count_action)
            .build()
            .unwrap();
        assert_eq!(barrier.timeout(), Some(Duration::ZERO));
        let mut child = builder(method)
            .spawn(wait_patiently, barrier.clone())
            .unwrap();
        let mine = barrier.wait_timeout(PATIENCE).unwrap();
        assert_eq!(mine + child.join().unwrap(), 1);
        assert!(!barrier.broken());
    });
}
