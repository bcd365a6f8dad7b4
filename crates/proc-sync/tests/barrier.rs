//! `Barrier` between real processes, under every start method, after CPython's
//! `_TestBarrier`: arrival indexes, several rounds, the action, abort and reset. Beyond
//! CPython: a party killed with SIGKILL while it waits breaks the barrier for the others,
//! and no wait outlives its timeout, not even while a reset waits for a party to leave.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proc_core::{Link, Process, StartMethod};
use proc_sync::{Barrier, Event};
use procs_testkit::{
    PATIENCE, StateMap, StateWire, Stranger, assert_send_sync, builder, each_method, eventually,
};

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

/// How a wait ended: the index, or whether the error was a timeout and its message.
type Outcome = Result<u32, (bool, String)>;

fn outcome(result: proc_core::Result<u32>) -> Outcome {
    result.map_err(|e| (e.is_timeout(), e.to_string()))
}

/// Says that it is about to wait, then waits at most `PATIENCE` for the round.
fn wait_after_saying_so((barrier, waiting): (Barrier, Event)) -> Outcome {
    waiting.set();
    outcome(barrier.wait_timeout(PATIENCE))
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

/// Starts a party that waits on `barrier`, and returns once it provably waits in it: it said
/// so, it is counted, and its threads sleep.
fn waiting_party(method: StartMethod, barrier: &Barrier, counted: u32) -> Process<Outcome> {
    let waiting = Event::new().unwrap();
    let party = builder(method)
        .spawn(wait_after_saying_so, (barrier.clone(), waiting.clone()))
        .unwrap();
    assert!(waiting.wait_timeout(PATIENCE), "the party never came");
    eventually("the party is counted", || barrier.n_waiting() == counted);
    let pid = party.pid().unwrap();
    eventually("the party sleeps in wait", || asleep(pid));
    party
}

/// A party stopped with SIGSTOP, killed when the test ends, so that a failing test does not
/// leave behind a stopped process that the harness would wait for.
#[cfg(unix)]
struct Stopped(Process<Outcome>);

#[cfg(unix)]
impl Stopped {
    fn new(party: Process<Outcome>) -> Stopped {
        procs_testkit::stop(party.pid().unwrap());
        Stopped(party)
    }

    /// Lets the party go on and waits for its outcome.
    fn resume(mut self) -> Outcome {
        procs_testkit::resume(self.0.pid().unwrap());
        self.0.join_timeout(PATIENCE).unwrap()
    }

    /// Kills the party and waits for its end.
    fn kill(mut self) {
        self.0.kill().unwrap();
        assert!(self.0.join().unwrap_err().signal().is_some());
    }
}

#[cfg(unix)]
impl Drop for Stopped {
    fn drop(&mut self) {
        if self.0.is_alive() {
            let _ = self.0.kill();
            let _ = self.0.join();
        }
    }
}

/// Waits a fifth of a second on `barrier`.
fn wait_briefly(barrier: Barrier) -> Outcome {
    outcome(barrier.wait_timeout(Duration::from_millis(200)))
}

/// [`wait_briefly`] in a child, given up on after `PATIENCE`: a wait that outlives its
/// timeout fails the test instead of hanging it (in a child rather than on a thread, so
/// that the `Fork` round stays single-threaded).
fn wait_briefly_elsewhere(method: StartMethod, barrier: &Barrier) -> Outcome {
    let mut waiter = builder(method)
        .spawn(wait_briefly, barrier.clone())
        .unwrap();
    match waiter.join_timeout(PATIENCE) {
        Ok(outcome) => outcome,
        Err(err) => {
            let _ = waiter.kill();
            panic!("a wait of 200 ms was still waiting after {PATIENCE:?}: {err}");
        }
    }
}

/// Meets the others at `barrier` once, in a fresh process, and checks the round went well.
fn full_round(method: StartMethod, barrier: &Barrier) {
    let parties = barrier.parties();
    let others: Vec<_> = (1..parties)
        .map(|_| builder(method).spawn(party, (barrier.clone(), 1)).unwrap())
        .collect();
    let mine = barrier.wait_timeout(PATIENCE).unwrap();
    let theirs: u32 = others
        .into_iter()
        .map(|mut p| p.join_timeout(PATIENCE).unwrap().0[0])
        .sum();
    assert_eq!(mine + theirs, (0..parties).sum::<u32>());
}

// After CPython `_TestBarrier.test_abort_and_reset`, with a party killed with SIGKILL in
// place of the abort: the others' waits fail soon, with an error that says a party died
// (not with their timeout), the barrier names the dead party, and reset makes it usable.
#[test]
fn a_party_killed_while_waiting_breaks_the_barrier_for_the_others() {
    each_method(|method| {
        let barrier = Barrier::new(3).unwrap();
        let mut survivor = waiting_party(method, &barrier, 1);
        let mut victim = waiting_party(method, &barrier, 2);
        let victim_pid = victim.pid().unwrap();
        victim.kill().unwrap();
        let (timed_out, message) = survivor
            .join_timeout(PATIENCE)
            .unwrap()
            .expect_err("a round with a dead party went through");
        assert!(!timed_out, "the survivor waited out its timeout: {message}");
        assert!(message.contains("a party died"), "{message}");
        assert!(barrier.broken());
        assert_eq!(barrier.dead_party(), Some(victim_pid));
        let err = barrier.wait_timeout(PATIENCE).unwrap_err();
        assert!(err.to_string().contains("a party died"), "{err}");
        assert!(victim.join().unwrap_err().signal().is_some());
        barrier.reset();
        assert!(!barrier.broken());
        assert_eq!(barrier.dead_party(), None);
        full_round(method, &barrier);
    });
}

// The bug of issue 15: a reset while a party that died inside `wait` was still counted
// waited for it to leave, for ever, and held up every later wait whatever its timeout.
#[test]
fn reset_does_not_wait_for_a_party_that_died_inside_wait() {
    each_method(|method| {
        let barrier = Barrier::new(2).unwrap();
        let mut victim = waiting_party(method, &barrier, 1);
        victim.kill().unwrap();
        assert!(victim.join().unwrap_err().signal().is_some());
        // Nobody has waited since the death, so nobody has noticed it: the reset does.
        barrier.reset();
        assert!(!barrier.broken());
        let (timed_out, message) = wait_briefly_elsewhere(method, &barrier).unwrap_err();
        assert!(timed_out, "{message}");
        barrier.reset();
        full_round(method, &barrier);
    });
}

// No wait outlives its timeout: a reset lets a party go that is too slow to leave (here,
// stopped inside `wait`), and a wait that comes meanwhile gives up at its timeout instead of
// waiting for the reset to finish.
#[cfg(unix)]
#[test]
fn a_wait_gives_up_at_its_timeout_while_a_reset_waits_for_a_stopped_party() {
    each_method(|method| {
        let barrier = Barrier::new(2).unwrap();
        let slow = Stopped::new(waiting_party(method, &barrier, 1));
        barrier.reset();
        let (timed_out, message) = wait_briefly_elsewhere(method, &barrier).unwrap_err();
        assert!(timed_out, "{message}");
        assert!(
            !barrier.broken(),
            "a wait that never joined the round broke it"
        );
        let (timed_out, message) = slow.resume().unwrap_err();
        assert!(!timed_out, "{message}");
        full_round(method, &barrier);
    });
}

// A party that dies after its round was released, before it left, does not hold up the
// next round: the round drains without it. The party is stopped inside `wait` so that it
// cannot leave before it is killed.
#[cfg(unix)]
#[test]
fn a_party_that_dies_before_leaving_a_released_round_does_not_hold_up_the_next() {
    each_method(|method| {
        let barrier = Barrier::new(2).unwrap();
        let slow = Stopped::new(waiting_party(method, &barrier, 1));
        // The last party: the round is released, and drains until the stopped one leaves.
        let mine = barrier.wait_timeout(PATIENCE).unwrap();
        assert_eq!(mine, 1);
        slow.kill();
        full_round(method, &barrier);
        assert!(!barrier.broken());
    });
}

#[test]
fn any_timeout_is_fine_even_the_longest() {
    let barrier = Barrier::new(1).unwrap();
    assert_eq!(barrier.wait_timeout(Duration::MAX).unwrap(), 0);
    let barrier = Barrier::with_timeout(1, Duration::MAX).unwrap();
    assert_eq!(barrier.wait().unwrap(), 0);
    let barrier = Barrier::new(2).unwrap();
    assert!(
        barrier
            .wait_timeout(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );
    assert!(barrier.broken());
}

/// An action that ends its process, as a crash would, holding the barrier's lock.
fn die() {
    std::process::exit(7);
}

/// Waits as the last party, whose action ends the process.
fn arrive_last(barrier: Barrier) -> Outcome {
    outcome(barrier.wait_timeout(PATIENCE))
}

// The last party dies in the action, holding the barrier's lock, before it released the
// round: the lock is taken over from the dead, and the barrier breaks for the others.
#[test]
fn a_party_that_dies_in_the_action_breaks_the_barrier() {
    each_method(|method| {
        let barrier = Barrier::with_action(2, die).unwrap();
        let mut first = waiting_party(method, &barrier, 1);
        let mut last = builder(method).spawn(arrive_last, barrier.clone()).unwrap();
        assert_eq!(last.join_timeout(PATIENCE).unwrap_err().exitcode(), Some(7));
        let (timed_out, message) = first.join_timeout(PATIENCE).unwrap().unwrap_err();
        assert!(
            !timed_out,
            "the first party waited out its timeout: {message}"
        );
        assert!(message.contains("a party died"), "{message}");
        assert!(barrier.broken());
        barrier.reset();
        assert!(!barrier.broken());
    });
}

/// What a barrier is on the wire: its condition (lock, state), its state, its action and
/// its timeout.
type BarrierWire = (
    (StateWire, StateWire),
    StateWire,
    Option<(u64, i64)>,
    Option<Duration>,
);

/// Second mappings of a barrier's lock and of its state, as a peer holding it could write
/// them.
fn maps_of(barrier: &Barrier) -> (StateMap, StateMap) {
    let (a, b) = Link::pair().unwrap();
    a.send(barrier).unwrap();
    let ((lock, _), state, _, _) = b.recv::<BarrierWire>().unwrap();
    (StateMap::new(lock), StateMap::new(state))
}

// Beyond CPython: a party is its pid and its start time. A party killed while it waits,
// whose pid the system gave to another process before anyone looked, is still seen dead:
// the barrier breaks for the others and names the pid. The record is written as it reads
// once the pid went to the stranger (the test cannot make the system recycle a pid), from
// the slot the real party left.
#[test]
fn a_party_whose_pid_went_to_a_live_process_is_still_seen_dead() {
    each_method(|method| {
        let barrier = Barrier::new(3).unwrap();
        let (_, state) = maps_of(&barrier);
        let mut victim = waiting_party(method, &barrier, 1);
        // Nobody else waits, so nobody looks at the dead before the pid has gone over.
        let Some(stranger) = state.kill_and_give_pid_away(&mut victim, 1, method) else {
            return; // The platform cannot tell processes of one pid apart: nothing to test.
        };
        let err = barrier.wait_timeout(PATIENCE).unwrap_err();
        assert!(
            !err.is_timeout(),
            "the dead party passed for the stranger until the timeout"
        );
        assert!(err.to_string().contains("a party died"), "{err}");
        assert_eq!(barrier.dead_party(), Some(stranger.pid()));
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
        barrier.reset();
        full_round(method, &barrier);
    });
}

/// Goes through rounds of a barrier of one party until killed.
#[cfg(target_os = "linux")]
fn churn(barrier: Barrier) {
    loop {
        let _ = barrier.wait_timeout(PATIENCE);
    }
}

// A party killed at provable points inside `wait`: the churner, alone at a barrier of one
// party, is stopped (SIGSTOP) at random moments until it is caught holding the barrier's
// lock — arriving, releasing its round or leaving it — and killed there. The barrier must
// not keep counting it: the next wait goes through, or fails because a party died, and
// after a reset every wait goes through.
#[cfg(target_os = "linux")]
#[test]
fn a_party_killed_inside_wait_is_never_counted_for_ever() {
    use proc_core::shared::{identity_of, start_time_of};

    let barrier = Barrier::new(1).unwrap();
    let (lock, _) = maps_of(&barrier);
    let mut rng = procs_testkit::Rng::new(0xba77_1e15);
    let mut inside = 0;
    for round in 0..200 {
        if inside >= 12 {
            break;
        }
        let mut churner = Process::builder().spawn(churn, barrier.clone()).unwrap();
        let pid = churner.pid().unwrap();
        let owner = identity_of(pid, start_time_of(pid).unwrap_or(0));
        for _ in 0..200 {
            std::thread::sleep(Duration::from_micros(rng.next_u64() % 300));
            procs_testkit::stop(pid);
            // The lock's word holds its owner's identity.
            if lock.word32(0).load(Ordering::SeqCst) == owner {
                inside += 1;
                break;
            }
            procs_testkit::resume(pid);
        }
        churner.kill().unwrap();
        assert!(churner.join().unwrap_err().signal().is_some());
        match barrier.wait_timeout(PATIENCE) {
            Ok(index) => assert_eq!(index, 0),
            Err(err) => {
                assert!(
                    !err.is_timeout(),
                    "round {round}: the dead party still counts"
                );
                assert_eq!(barrier.dead_party(), Some(pid), "round {round}: {err}");
                barrier.reset();
            }
        }
        assert_eq!(barrier.wait_timeout(PATIENCE).unwrap(), 0, "round {round}");
        assert_eq!(barrier.n_waiting(), 0);
    }
    assert!(
        inside >= 12,
        "caught the churner inside wait only {inside} times"
    );
}

/// The size of a barrier's state, as this file mirrors it: an unused word (a value and a
/// count of sleepers), the phase, the count, the parties, the dead party, the unrecorded
/// parties, padding, then 128 holder slots of two words.
const BARRIER_STATE: usize = 8 + 4 + 4 + 4 + 4 + 4 + 4 + 128 * 16;

// The point of a party's exit that random kills rarely hit: it took itself off the record
// but not yet off the count when it was killed, holding the lock, in a released round. The
// count must be recomputed from the record by the next owner of the lock, or the round
// drains for ever and no later wait goes through. The state is written as that process
// left it, with the pid of a real process that was killed.
#[test]
fn a_party_killed_between_the_record_and_the_count_does_not_hold_up_the_next_round() {
    let barrier = Barrier::new(1).unwrap();
    let (lock, state) = maps_of(&barrier);
    assert_eq!(
        state.size(),
        BARRIER_STATE,
        "the barrier's state changed: update this test's mirror of it"
    );
    let dead = Stranger::new(StartMethod::Spawn, 0);
    let pid = dead.pid();
    drop(dead);
    // Draining, one party counted that the record no longer has, the lock held by the dead.
    state.word32(8).store(1, Ordering::SeqCst);
    state.word32(12).store(1, Ordering::SeqCst);
    lock.word32(0).store(pid, Ordering::SeqCst);
    let index = barrier
        .wait_timeout(PATIENCE)
        .expect("the dead party still counted in a drained round");
    assert_eq!(index, 0);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
    assert_eq!(barrier.wait_timeout(PATIENCE).unwrap(), 0);
}
