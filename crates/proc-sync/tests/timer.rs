//! `proc_sync::Timer`, after the `TimerTests` of CPython's `Lib/test/test_threading.py` and the
//! documented behaviour of `threading.Timer` (runs once after its interval; `cancel` stops it
//! while it is still waiting).
//!
//! No test asserts how long something took beyond "at least the delay"; waits that would hang
//! on a bug are bounded by generous timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proc_sync::Timer;
use procs_testkit::assert_send_sync;

/// Bounds waits that only a bug would make long.
const GENEROUS: Duration = Duration::from_secs(60);

/// A delay long enough that the timer is still pending when the test acts on it.
const FOREVER: Duration = Duration::from_secs(3600);
#[test]
fn timer_is_send_and_sync() {
    assert_send_sync::<Timer>();
}

/// CPython's `TimerTests.test_init_immutable_default_args`: two timers do not share state;
/// each runs its own function once.
#[test]
fn timers_do_not_share_state() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let spy = |name: &'static str| {
        let (calls, tx) = (Arc::clone(&calls), tx.clone());
        move || {
            calls.lock().unwrap().push(name);
            tx.send(()).unwrap();
        }
    };
    let timer1 = Timer::start(Duration::from_millis(10), spy("first")).unwrap();
    rx.recv_timeout(GENEROUS).unwrap();
    let timer2 = Timer::start(Duration::from_millis(10), spy("second")).unwrap();
    rx.recv_timeout(GENEROUS).unwrap();
    timer1.join().unwrap();
    timer2.join().unwrap();
    assert_eq!(*calls.lock().unwrap(), ["first", "second"]);
}

#[test]
fn runs_once_no_earlier_than_the_delay() {
    let delay = Duration::from_millis(50);
    let runs = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let timer = Timer::start(delay, {
        let runs = Arc::clone(&runs);
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
            tx.send(Instant::now()).unwrap();
        }
    })
    .unwrap();
    let ran_at = rx.recv_timeout(GENEROUS).unwrap();
    assert!(ran_at.duration_since(start) >= delay);
    timer.join().unwrap();
    assert!(timer.is_finished());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(
        !timer.cancel(),
        "cancel after the function ran must report false"
    );
}

#[test]
fn zero_delay_runs_at_once() {
    let (tx, rx) = mpsc::channel();
    let timer = Timer::start(Duration::ZERO, move || tx.send(7).unwrap()).unwrap();
    assert_eq!(rx.recv_timeout(GENEROUS), Ok(7));
    timer.join().unwrap();
}

/// `threading.Timer.cancel`: "Stop the timer, and cancel the execution of the timer's action.
/// This will only work if the timer is still in its waiting stage."
#[test]
fn cancel_before_the_delay_prevents_the_run() {
    let runs = Arc::new(AtomicUsize::new(0));
    let timer = Timer::start(FOREVER, {
        let runs = Arc::clone(&runs);
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    assert!(!timer.is_finished());
    assert!(timer.cancel());
    assert!(timer.is_finished());
    assert!(!timer.cancel(), "a second cancel must report false");
    // The condition variable wakes the timer's thread: joining does not wait for the delay.
    assert!(timer.join_timeout(GENEROUS).unwrap());
    timer.join().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn cancel_a_short_timer_races_cleanly() {
    // Whichever wins, the function runs exactly when cancel reports false.
    for _ in 0..200 {
        let runs = Arc::new(AtomicUsize::new(0));
        let timer = Timer::start(Duration::from_micros(50), {
            let runs = Arc::clone(&runs);
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        thread::sleep(Duration::from_micros(50));
        let cancelled = timer.cancel();
        timer.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), usize::from(!cancelled));
    }
}

#[test]
fn cancel_while_running_lets_the_function_finish() {
    let entered = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let timer = Timer::start(Duration::ZERO, {
        let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
        move || {
            entered.wait();
            release.wait();
        }
    })
    .unwrap();
    entered.wait();
    assert!(!timer.cancel(), "the function already started");
    assert!(!timer.is_finished());
    assert!(!timer.join_timeout(Duration::from_millis(10)).unwrap());
    release.wait();
    timer.join().unwrap();
    assert!(timer.is_finished());
}

#[test]
fn join_timeout_while_pending_times_out() {
    let timeout = Duration::from_millis(20);
    let timer = Timer::start(FOREVER, || {}).unwrap();
    let start = Instant::now();
    assert!(!timer.join_timeout(timeout).unwrap());
    assert!(start.elapsed() >= timeout);
    assert!(timer.cancel());
    assert!(timer.join_timeout(GENEROUS).unwrap());
}

#[test]
fn a_panicking_function_is_reported_by_join() {
    let timer = Timer::start(Duration::ZERO, || panic!("timer went off")).unwrap();
    for _ in 0..2 {
        match timer.join() {
            Err(proc_core::Error::Panicked { message, .. }) => {
                assert_eq!(message, "timer went off")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(timer.is_finished());
    assert!(timer.join_timeout(GENEROUS).is_err());

    let timer = Timer::start(Duration::ZERO, || std::panic::panic_any(5_u8)).unwrap();
    assert!(timer.join().unwrap_err().is_panic());
}

#[test]
fn many_threads_join_one_timer() {
    let timer = Timer::start(Duration::from_millis(20), || {}).unwrap();
    thread::scope(|s| {
        let joiners: Vec<_> = (0..8).map(|_| s.spawn(|| timer.join())).collect();
        for joiner in joiners {
            joiner.join().unwrap().unwrap();
        }
    });
    assert!(timer.is_finished());
}

#[test]
fn many_threads_cancel_one_timer_exactly_one_wins() {
    let timer = Timer::start(FOREVER, || unreachable!()).unwrap();
    let wins = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                if timer.cancel() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(wins.load(Ordering::SeqCst), 1);
    timer.join().unwrap();
}

#[test]
fn dropping_the_timer_does_not_cancel_it() {
    let (tx, rx) = mpsc::channel();
    drop(
        Timer::start(Duration::from_millis(10), move || {
            tx.send("still rang").unwrap()
        })
        .unwrap(),
    );
    assert_eq!(rx.recv_timeout(GENEROUS), Ok("still rang"));
}

#[test]
fn cancelling_drops_the_function() {
    let captured = Arc::new(());
    let timer = Timer::start(FOREVER, {
        let captured = Arc::clone(&captured);
        move || drop(captured)
    })
    .unwrap();
    assert_eq!(Arc::strong_count(&captured), 2);
    timer.cancel();
    timer.join().unwrap();
    assert_eq!(Arc::strong_count(&captured), 1);
}

#[test]
fn debug_shows_the_state() {
    let timer = Timer::start(FOREVER, || {}).unwrap();
    assert_eq!(format!("{timer:?}"), r#"Timer { state: "pending" }"#);
    timer.cancel();
    assert_eq!(format!("{timer:?}"), r#"Timer { state: "cancelled" }"#);
    let timer = Timer::start(Duration::ZERO, || {}).unwrap();
    timer.join().unwrap();
    assert_eq!(format!("{timer:?}"), r#"Timer { state: "done" }"#);
}
