//! The model of `Lock`, `RLock`, `Value`, `Semaphore` and `Barrier`.
//!
//! Three or four processes loop on the primitive; one is killed at a random point, most
//! likely inside the section that the primitive guards (the loops spin there, without
//! system calls).
//!
//! - `Lock`, `RLock` (taken twice, re-entrantly), `Value` (through its guard): the guarded
//!   data is a pair `[a, b]` of a shared `Value<[u64; 2]>`, always equal outside the
//!   section. A holder checks `a == b` on entry (unless it took the lock over from a dead
//!   owner, `owner_died()`, when it repairs `b = a`), sets `a + 1`, spins, sets `b`, and
//!   reports the increment after the release. At the end this process takes the lock within
//!   [`HELD_BOUND`] and finds `a` between the increments reported and that plus one per
//!   kill (the victim's last increment may be unreported); an unequal pair seen on entry
//!   without `owner_died()` is a failure of mutual exclusion.
//! - `Semaphore` (2 permits, 4 processes): at the end this process takes both permits
//!   within [`HELD_BOUND`], each; a permit that the dead held and that never came back is a
//!   leak. An acquirer told `owner_died()` (by a survivor, or this process at the end)
//!   counts as a kill inside; more of them than kills is a failure (one is told per place
//!   that came back).
//! - `Barrier` (3 parties, 100 to 300 rounds of `wait`, with Python's default timeout of
//!   [`BARRIER_TIMEOUT`]; party 0 lags [`LAG`] before every [`LAG_EVERY`]th round, so that
//!   most kills land while the others wait): every survivor ends, having finished its
//!   rounds or seen the barrier broken — by the death of a party inside `wait`, which the
//!   barrier notices within [`DEAD_PARTY_BOUND`] and names (`dead_party()` must be the
//!   victim; such a kill counts as inside), or by the timeout when the party died between
//!   two rounds or its round filled with it counted (no barrier can tell a party that never
//!   comes back from a slow one). The survivors' bound is that, plus [`SLACK`], from the
//!   kill. Without a kill every party finishes every round: a lagging party is not taken
//!   for a dead one. At the end `reset` returns within [`HELD_BOUND`] and three threads of
//!   this process meet at the barrier.

use std::error::Error;
use std::time::{Duration, Instant};

use procs::ipc::{Connection, Pipe};
use procs::{Barrier, Lock, RLock, Semaphore, Value};
use serde::{Deserialize, Serialize};

use crate::{Child, Kill, Reports, Rng, SLACK, Trial, spawn, spin};

/// How long, once every survivor ended, this process may wait to take the lock, every
/// permit, or to reset the barrier: nobody else holds them then, so any wait is for the
/// library to notice the dead.
pub(crate) const HELD_BOUND: Duration = Duration::from_secs(5);

/// The barrier's default timeout (Python's `Barrier(parties, timeout=...)`): how long the
/// survivors wait for a party that died between two rounds (or before its first), which no
/// barrier can tell from a slow one. A round takes tens of microseconds, so two seconds
/// without one is thousands of rounds late even on a loaded machine.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(2);

/// How soon a barrier notices a party that died inside `wait`: its waiters look for dead
/// parties after every tenth of a second without news (`proc_sync`'s liveness slice).
const DEAD_PARTY_BOUND: Duration = Duration::from_millis(100);

/// Party 0 of a barrier lags: it sleeps [`LAG`] before every [`LAG_EVERY`]th round, longer
/// than [`DEAD_PARTY_BOUND`], so that the kills land mostly while the others wait for it
/// and the barrier has the time to see a party die inside `wait` (a round that fills
/// quickly is complete with its dead party counted, and its survivors then wait for it in
/// the next round until the timeout).
const LAG: Duration = Duration::from_millis(150);
const LAG_EVERY: u32 = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Lock,
    RLock,
    Value,
    Semaphore,
    Barrier,
}

/// The primitive, as a child holds it.
#[derive(Serialize, Deserialize)]
enum Subject {
    Lock(Value<[u64; 2], Lock>),
    RLock(Value<[u64; 2], RLock>),
    Value(Value<[u64; 2]>),
    Semaphore(Semaphore),
    Barrier(Barrier),
}

/// Reports: an increment done (after the release), the same after taking the lock over
/// from a dead owner, or a pair found unequal on entry.
const DONE: u8 = 0;
const UNEQUAL: u8 = 1;
const TAKEN_OVER: u8 = 2;

/// The guarded section on the pair at `pair`: checks it, increments it with a spin between
/// the halves, and says what to report.
///
/// # Safety
///
/// `pair` points to the shared pair, and the caller holds the lock that guards it.
unsafe fn section(pair: *mut [u64; 2], owner_died: bool, rng: &mut Rng) -> u8 {
    let a_ptr = pair.cast::<u64>();
    // SAFETY: the pair is two `u64`s; the caller holds its lock, so nobody else writes it.
    unsafe {
        let b_ptr = a_ptr.add(1);
        let a = a_ptr.read_volatile();
        let report = if owner_died {
            // The dead holder may have set `a` only: its increment counts.
            b_ptr.write_volatile(a);
            TAKEN_OVER
        } else if a == b_ptr.read_volatile() {
            DONE
        } else {
            UNEQUAL
        };
        a_ptr.write_volatile(a + 1);
        spin(rng.below(30));
        b_ptr.write_volatile(a + 1);
        report
    }
}

/// A child: `iters` rounds on the primitive, each reported on `reports`. Returns the rounds
/// it finished; a barrier party stops early when the barrier breaks.
fn hold((subject, iters, seed, reports, laggard): (Subject, u32, u64, Connection, bool)) -> u32 {
    let mut rng = Rng::new(seed);
    for round in 0..iters {
        let report = match &subject {
            Subject::Lock(v) => {
                let guard = v.get_lock().acquire();
                // SAFETY: the guard holds the pair's lock.
                unsafe { section(v.get_obj(), guard.owner_died(), &mut rng) }
            }
            Subject::RLock(v) => {
                let outer = v.get_lock().acquire();
                let inner = v.get_lock().acquire();
                // SAFETY: the guards hold the pair's lock.
                let report = unsafe { section(v.get_obj(), outer.owner_died(), &mut rng) };
                drop(inner);
                assert_eq!(
                    v.get_lock().count(),
                    1,
                    "one hold left after the inner release"
                );
                report
            }
            Subject::Value(v) => {
                let mut guard = v.lock();
                let died = guard.owner_died();
                let pair: *mut [u64; 2] = &mut *guard;
                // SAFETY: the guard holds the value's lock and points to its pair.
                unsafe { section(pair, died, &mut rng) }
            }
            Subject::Semaphore(s) => {
                let permit = s.acquire();
                spin(rng.below(30));
                if permit.owner_died() {
                    TAKEN_OVER
                } else {
                    DONE
                }
            }
            Subject::Barrier(b) => {
                if laggard && round % LAG_EVERY == LAG_EVERY - 1 {
                    std::thread::sleep(LAG);
                }
                if b.wait().is_err() {
                    return round;
                }
                spin(rng.below(20));
                DONE
            }
        };
        let _ = reports.send_bytes(&[report]);
    }
    iters
}

pub(crate) fn trial(t: &mut Trial, kind: Kind) -> Result<(), Box<dyn Error>> {
    let parties: u32 = match kind {
        Kind::Semaphore => 4,
        _ => 3,
    };
    let iters = match kind {
        Kind::Barrier => 100 + t.rng.below(200) as u32,
        _ => 200 + t.rng.below(300) as u32,
    };
    let subject = || -> procs::Result<Subject> {
        Ok(match kind {
            Kind::Lock => Subject::Lock(Value::new_with_lock([0; 2], Lock::new()?)?),
            Kind::RLock => Subject::RLock(Value::new_with_lock([0; 2], RLock::new()?)?),
            Kind::Value => Subject::Value(Value::new([0; 2])?),
            Kind::Semaphore => Subject::Semaphore(Semaphore::new(2)?),
            Kind::Barrier => Subject::Barrier(Barrier::with_timeout(parties, BARRIER_TIMEOUT)?),
        })
    };
    let shared = subject()?;
    let copy = || -> Subject {
        match &shared {
            Subject::Lock(v) => Subject::Lock(v.clone()),
            Subject::RLock(v) => Subject::RLock(v.clone()),
            Subject::Value(v) => Subject::Value(v.clone()),
            Subject::Semaphore(s) => Subject::Semaphore(s.clone()),
            Subject::Barrier(b) => Subject::Barrier(b.clone()),
        }
    };

    let started = Instant::now();
    let mut pipes = Vec::new();
    let mut children: Vec<Child<u32>> = Vec::new();
    for i in 0..parties {
        let (reader, writer) = Pipe::simplex()?;
        children.push(spawn(
            format!("party {i}"),
            hold,
            (
                copy(),
                iters,
                t.rng.next(),
                writer,
                kind == Kind::Barrier && i == 0,
            ),
        )?);
        pipes.push(Reports::<1>::read(reader));
    }
    let mut killed_at = None;
    let victim = t.kill_at.and_then(|at| {
        if let Some(left) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(left);
        }
        let v = t.rng.below(children.len() as u64) as usize;
        let killed = children[v].process.kill_alive();
        killed.then(|| {
            killed_at = Some(Instant::now());
            v
        })
    });
    // The survivors of a barrier whose party was killed have the barrier's own bound (its
    // timeout, the longest way it has to notice) plus the slack, from the kill; any other
    // child has the trial's bound.
    let bound = match (kind, killed_at) {
        (Kind::Barrier, Some(at)) => (at, BARRIER_TIMEOUT + SLACK),
        _ => (started, t.hang),
    };
    let rounds = t.join_all(bound, &mut children, victim);
    let survivors_ended = killed_at.map(|at| at.elapsed());
    let killed = t.kills > 0;

    let mut reported = 0u64;
    for pipe in pipes {
        for [flag] in pipe.take(t) {
            match flag {
                DONE => reported += 1,
                TAKEN_OVER => {
                    reported += 1;
                    t.inside += 1;
                }
                _ => {
                    t.bad += 1;
                    t.fail("a holder found the guarded pair half-updated: no mutual exclusion");
                }
            }
        }
    }

    match &shared {
        Subject::Lock(v) => match v.get_lock().acquire_timeout(HELD_BOUND) {
            // SAFETY: the guard holds the pair's lock.
            Ok(g) => unsafe { check_pair(t, v.get_obj(), g.owner_died(), reported) },
            Err(_) => held(t, "the lock"),
        },
        Subject::RLock(v) => match v.get_lock().acquire_timeout(HELD_BOUND) {
            Ok(g) => {
                if v.get_lock().count() != 1 {
                    t.leaked += 1;
                    t.fail(&format!(
                        "the rlock, taken once, counts {} holds",
                        v.get_lock().count()
                    ));
                }
                // SAFETY: the guard holds the pair's lock.
                unsafe { check_pair(t, v.get_obj(), g.owner_died(), reported) }
            }
            Err(_) => held(t, "the rlock"),
        },
        Subject::Value(v) => match v.lock_timeout(HELD_BOUND) {
            Ok(mut g) => {
                let died = g.owner_died();
                let pair: *mut [u64; 2] = &mut *g;
                // SAFETY: the guard holds the value's lock and points to its pair.
                unsafe { check_pair(t, pair, died, reported) }
            }
            Err(_) => held(t, "the value's lock"),
        },
        Subject::Semaphore(s) => {
            let mut permits = Vec::new();
            for _ in 0..2 {
                match s.acquire_timeout(HELD_BOUND) {
                    Ok(permit) => permits.push(permit),
                    Err(_) => {
                        held(t, &format!("permit {} of 2", permits.len() + 1));
                        break;
                    }
                }
            }
            t.inside += permits.iter().filter(|p| p.owner_died()).count() as u64;
            // One acquirer is told per place that came back from the dead.
            if t.inside > t.kills {
                t.bad += 1;
                t.fail(&format!(
                    "{} acquirer(s) were told that a dead process held their place, and {} \
                     process(es) died",
                    t.inside, t.kills
                ));
            }
        }
        Subject::Barrier(b) => {
            if let Some(dead) = b.dead_party() {
                // The victim died inside `wait` and the barrier saw it: its survivors had
                // the liveness bound, not the timeout, to notice.
                t.inside += 1;
                if victim.and_then(|v| children[v].process.pid()) != Some(dead) {
                    t.bad += 1;
                    t.fail(&format!(
                        "the barrier names pid {dead} as the dead party, not the victim"
                    ));
                }
                let bound = LAG + DEAD_PARTY_BOUND + SLACK;
                if let Some(took) = survivors_ended.filter(|took| *took > bound) {
                    t.hangs += 1;
                    t.fail(&format!(
                        "hang: the survivors took {took:?} after the kill to end, though the \
                         barrier saw the party die inside wait (bound: the laggard's {LAG:?}, \
                         the barrier's {DEAD_PARTY_BOUND:?}, and {SLACK:?} of slack)"
                    ));
                }
            }
            if !killed && rounds.iter().any(|r| *r != Some(iters)) {
                t.bad += 1;
                t.fail(&format!(
                    "without a kill, parties stopped early: rounds {rounds:?} of {iters}"
                ));
            }
            check_barrier(t, b, parties);
        }
    }
    Ok(())
}

fn held(t: &mut Trial, what: &str) {
    t.leaked += 1;
    t.fail(&format!(
        "leaked: this process could not take {what} within {}s after every survivor ended",
        HELD_BOUND.as_secs()
    ));
}

/// Checks the pair against the increments reported, as the module docs say.
///
/// # Safety
///
/// As [`section`].
unsafe fn check_pair(t: &mut Trial, pair: *mut [u64; 2], owner_died: bool, reported: u64) {
    let a_ptr = pair.cast::<u64>();
    // SAFETY: as `section`.
    let (a, b) = unsafe { (a_ptr.read_volatile(), a_ptr.add(1).read_volatile()) };
    if a != b && !owner_died {
        t.bad += 1;
        t.fail(&format!(
            "the pair is [{a}, {b}] with no holder dead inside the section"
        ));
    }
    if a < reported {
        t.lost += reported - a;
        t.fail(&format!(
            "{reported} increments reported, the pair counts {a}"
        ));
    } else if a > reported + t.kills {
        t.bad += a - reported - t.kills;
        t.fail(&format!(
            "the pair counts {a}, more than the {reported} reported plus {} killed",
            t.kills
        ));
    }
}

/// The barrier is usable again: `reset` returns, and `parties` threads meet at it.
fn check_barrier(t: &mut Trial, barrier: &Barrier, parties: u32) {
    let (tx, rx) = std::sync::mpsc::channel();
    let b = barrier.clone();
    std::thread::spawn(move || {
        b.reset();
        let meet: Vec<_> = (0..parties)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.wait_timeout(HELD_BOUND))
            })
            .collect();
        let met = meet.into_iter().all(|h| h.join().is_ok_and(|r| r.is_ok()));
        let _ = tx.send(met);
    });
    match rx.recv_timeout(HELD_BOUND * 2) {
        Ok(true) => {}
        Ok(false) => {
            t.leaked += 1;
            t.fail("after a reset, three threads could not meet at the barrier");
        }
        Err(_) => {
            t.leaked += 1;
            t.stuck = true;
            t.fail(&format!(
                "leaked: Barrier::reset (or the meeting after it) did not return within {}s",
                (HELD_BOUND * 2).as_secs()
            ));
        }
    }
}
