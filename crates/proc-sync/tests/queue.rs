//! The thread queues of `proc_sync::queue`, after CPython's `Lib/test/test_queue.py`
//! (`BlockingTestMixin`, `BaseQueueTestMixin`, the shutdown tests of Python 3.13 and
//! `BaseSimpleQueueTest`), plus many producers and consumers seeing every item exactly once.
//!
//! No test asserts how long a call took beyond "at least its timeout".

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proc_sync::queue::{
    GetError, LifoQueue, PriorityQueue, PutError, Queue, SimpleQueue, TaskDoneError,
};
use procs_testkit::assert_send_sync;

/// `QUEUE_SIZE` of CPython's test_queue.py.
const QUEUE_SIZE: usize = 5;

/// Long enough that a call which should block is very likely blocking when the trigger comes;
/// only ever slept, never asserted on.
const TRIGGER_DELAY: Duration = Duration::from_millis(20);
#[test]
fn handles_and_errors_are_send_and_sync() {
    assert_send_sync::<Queue<String>>();
    assert_send_sync::<LifoQueue<String>>();
    assert_send_sync::<PriorityQueue<String>>();
    assert_send_sync::<SimpleQueue<String>>();
    assert_send_sync::<GetError>();
    assert_send_sync::<PutError<String>>();
    assert_send_sync::<TaskDoneError>();
    // A `Cell` is `Send` but not `Sync`; the queue owns its items, so it is still both.
    assert_send_sync::<Queue<std::cell::Cell<u8>>>();
}

/// Behaviour of CPython's `BlockingTestMixin.do_blocking_test`: `block` must not return before
/// another thread, after a pause, has called `trigger`.
fn do_blocking_test<R>(block: impl FnOnce() -> R, trigger: impl FnOnce() + Send) -> R {
    let started = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(TRIGGER_DELAY);
            started.store(true, Ordering::SeqCst);
            trigger();
        });
        let result = block();
        assert!(
            started.load(Ordering::SeqCst),
            "the blocking call returned before it was triggered"
        );
        result
    })
}

/// The interface shared by the three queues, so that the CPython tests run on each.
trait TestQueue: Clone + Send + Sync + 'static {
    fn make(maxsize: usize) -> Self;
    fn put(&self, item: u64) -> Result<(), PutError<u64>>;
    fn put_timeout(&self, item: u64, d: Duration) -> Result<(), PutError<u64>>;
    fn put_nowait(&self, item: u64) -> Result<(), PutError<u64>>;
    fn get(&self) -> Result<u64, GetError>;
    fn get_timeout(&self, d: Duration) -> Result<u64, GetError>;
    fn get_nowait(&self) -> Result<u64, GetError>;
    fn qsize(&self) -> usize;
    fn empty(&self) -> bool;
    fn full(&self) -> bool;
    fn maxsize(&self) -> usize;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn join(&self);
    fn join_timeout(&self, d: Duration) -> bool;
    fn shutdown(&self, immediate: bool);
    fn is_shutdown(&self) -> bool;
    /// The order in which 111, 333, 222 come back (`target_order` of `basic_queue_test`).
    const ORDER: [u64; 3];
}

macro_rules! impl_test_queue {
    ($name:ident, $order:expr) => {
        impl TestQueue for $name<u64> {
            fn make(maxsize: usize) -> Self {
                $name::with_maxsize(maxsize)
            }
            fn put(&self, item: u64) -> Result<(), PutError<u64>> {
                $name::put(self, item)
            }
            fn put_timeout(&self, item: u64, d: Duration) -> Result<(), PutError<u64>> {
                $name::put_timeout(self, item, d)
            }
            fn put_nowait(&self, item: u64) -> Result<(), PutError<u64>> {
                $name::put_nowait(self, item)
            }
            fn get(&self) -> Result<u64, GetError> {
                $name::get(self)
            }
            fn get_timeout(&self, d: Duration) -> Result<u64, GetError> {
                $name::get_timeout(self, d)
            }
            fn get_nowait(&self) -> Result<u64, GetError> {
                $name::get_nowait(self)
            }
            fn qsize(&self) -> usize {
                $name::qsize(self)
            }
            fn empty(&self) -> bool {
                $name::empty(self)
            }
            fn full(&self) -> bool {
                $name::full(self)
            }
            fn maxsize(&self) -> usize {
                $name::maxsize(self)
            }
            fn task_done(&self) -> Result<(), TaskDoneError> {
                $name::task_done(self)
            }
            fn join(&self) {
                $name::join(self)
            }
            fn join_timeout(&self, d: Duration) -> bool {
                $name::join_timeout(self, d)
            }
            fn shutdown(&self, immediate: bool) {
                $name::shutdown(self, immediate)
            }
            fn is_shutdown(&self) -> bool {
                $name::is_shutdown(self)
            }
            const ORDER: [u64; 3] = $order;
        }
    };
}

impl_test_queue!(Queue, [111, 333, 222]);
impl_test_queue!(LifoQueue, [222, 333, 111]);
impl_test_queue!(PriorityQueue, [111, 222, 333]);

/// Behaviour of CPython's `BaseQueueTestMixin.basic_queue_test`.
fn basic_queue_test<Q: TestQueue>(q: &Q) {
    assert_eq!(q.qsize(), 0, "call this function with an empty queue");
    assert!(q.empty());
    assert!(!q.full());
    // "I guess we better check things actually queue correctly a little :)"
    for n in [111, 333, 222] {
        q.put(n).unwrap();
    }
    let actual = [q.get().unwrap(), q.get().unwrap(), q.get().unwrap()];
    assert_eq!(actual, Q::ORDER, "didn't seem to queue the correct data");
    for i in 0..QUEUE_SIZE as u64 - 1 {
        q.put(i).unwrap();
        assert!(q.qsize() > 0, "queue should not be empty");
    }
    assert!(!q.full(), "queue should not be full");
    let last = 2 * QUEUE_SIZE as u64;
    let full = 3 * 2 * QUEUE_SIZE as u64;
    q.put(last).unwrap();
    assert!(q.full(), "queue should be full");
    assert!(!q.empty());
    assert_eq!(q.put_nowait(full), Err(PutError::Full(full)));
    assert_eq!(
        q.put_timeout(full, Duration::from_millis(10)),
        Err(PutError::Timeout(full))
    );
    // Test a blocking put.
    let q2 = q.clone();
    do_blocking_test(
        || q.put(full).unwrap(),
        move || {
            q2.get().unwrap();
        },
    );
    let q2 = q.clone();
    do_blocking_test(
        || q.put_timeout(full, Duration::from_secs(10)).unwrap(),
        move || {
            q2.get().unwrap();
        },
    );
    // Empty it.
    for _ in 0..QUEUE_SIZE {
        q.get().unwrap();
    }
    assert_eq!(q.qsize(), 0, "queue should be empty");
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    assert_eq!(
        q.get_timeout(Duration::from_millis(10)),
        Err(GetError::Timeout)
    );
    // Test a blocking get.
    let q2 = q.clone();
    let got = do_blocking_test(|| q.get().unwrap(), move || q2.put(42).unwrap());
    assert_eq!(got, 42);
    let q2 = q.clone();
    let got = do_blocking_test(
        || q.get_timeout(Duration::from_secs(10)).unwrap(),
        move || q2.put(43).unwrap(),
    );
    assert_eq!(got, 43);
}

/// Behaviour of CPython's `BaseQueueTestMixin.worker` and `queue_join_test`.
fn queue_join_test<Q: TestQueue>(q: &Q) {
    let cum = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (q, cum) = (q.clone(), Arc::clone(&cum));
            thread::spawn(move || {
                loop {
                    let x = q.get().unwrap();
                    if x == u64::MAX {
                        q.task_done().unwrap();
                        return;
                    }
                    cum.fetch_add(x, Ordering::SeqCst);
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    for i in 0..100 {
        q.put(i).unwrap();
    }
    q.join();
    assert_eq!(
        cum.load(Ordering::SeqCst),
        (0..100).sum::<u64>(),
        "q.join() doesn't appear to work"
    );
    for _ in 0..2 {
        // Instruct the threads to close.
        q.put(u64::MAX).unwrap();
    }
    // Verify that you can join twice.
    q.join();
    for worker in workers {
        worker.join().unwrap();
    }
}

/// Defines one test per queue type that runs `$body::<Q>()`.
macro_rules! for_each_queue {
    ($($test:ident => $body:ident;)*) => {
        mod fifo {
            $(#[test] fn $test() { super::$body::<proc_sync::queue::Queue<u64>>(); })*
        }
        mod lifo {
            $(#[test] fn $test() { super::$body::<proc_sync::queue::LifoQueue<u64>>(); })*
        }
        mod priority {
            $(#[test] fn $test() { super::$body::<proc_sync::queue::PriorityQueue<u64>>(); })*
        }
    };
}

for_each_queue! {
    simple_queue => simple_queue;
    queue_task_done => queue_task_done;
    queue_join => queue_join;
    nowait => nowait;
    timeouts_return_timeout => timeouts_return_timeout;
    unbounded_is_never_full => unbounded_is_never_full;
    clones_share_one_queue => clones_share_one_queue;
    join_timeout_reports_unfinished_tasks => join_timeout_reports_unfinished_tasks;
    shutdown_empty => shutdown_empty;
    shutdown_nonempty => shutdown_nonempty;
    shutdown_immediate => shutdown_immediate;
    shutdown_allowed_transitions => shutdown_allowed_transitions;
    shutdown_all_methods_in_one_thread => shutdown_all_methods_in_one_thread;
    shutdown_immediate_all_methods_in_one_thread => shutdown_immediate_all_methods_in_one_thread;
    shutdown_pending_get => shutdown_pending_get;
    shutdown_pending_put => shutdown_pending_put;
    shutdown_immediate_releases_join => shutdown_immediate_releases_join;
    many_producers_and_consumers => many_producers_and_consumers;
    many_producers_and_consumers_with_timeouts => many_producers_and_consumers_with_timeouts;
    shutdown_while_producers_put => shutdown_while_producers_put;
    immediate_shutdown_while_producers_put => immediate_shutdown_while_producers_put;
    shutdown_wakes_every_blocked_putter => shutdown_wakes_every_blocked_putter;
}

/// CPython's `test_simple_queue`: done twice to make sure the same instance can be reused.
fn simple_queue<Q: TestQueue>() {
    let q = Q::make(QUEUE_SIZE);
    basic_queue_test(&q);
    basic_queue_test(&q);
}

/// CPython's `test_queue_task_done`.
fn queue_task_done<Q: TestQueue>() {
    let q = Q::make(0);
    assert!(
        q.task_done().is_err(),
        "did not detect task count going negative"
    );
}

/// CPython's `test_queue_join`: a queue joins successfully, and before anything else (done
/// twice for insurance).
fn queue_join<Q: TestQueue>() {
    let q = Q::make(0);
    queue_join_test(&q);
    queue_join_test(&q);
    assert!(
        q.task_done().is_err(),
        "did not detect task count going negative"
    );
}

/// CPython's `test_nowait`.
fn nowait<Q: TestQueue>() {
    let q = Q::make(QUEUE_SIZE);
    for _ in 0..QUEUE_SIZE {
        q.put_nowait(1).unwrap();
    }
    assert_eq!(q.put_nowait(1), Err(PutError::Full(1)));
    for _ in 0..QUEUE_SIZE {
        q.get_nowait().unwrap();
    }
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
}

fn timeouts_return_timeout<Q: TestQueue>() {
    let timeout = Duration::from_millis(30);
    let q = Q::make(1);
    let start = Instant::now();
    assert_eq!(q.get_timeout(timeout), Err(GetError::Timeout));
    assert!(start.elapsed() >= timeout);
    q.put(1).unwrap();
    let start = Instant::now();
    assert_eq!(q.put_timeout(2, timeout), Err(PutError::Timeout(2)));
    assert!(start.elapsed() >= timeout);
    // A zero timeout does not wait, and an unrepresentable one waits as long as needed.
    assert_eq!(q.put_timeout(3, Duration::ZERO), Err(PutError::Timeout(3)));
    assert_eq!(q.get_timeout(Duration::MAX), Ok(1));
    assert_eq!(q.put_timeout(4, Duration::MAX), Ok(()));
}

fn unbounded_is_never_full<Q: TestQueue>() {
    let q = Q::make(0);
    assert_eq!(q.maxsize(), 0);
    for i in 0..10_000 {
        q.put_nowait(i).unwrap();
    }
    assert!(!q.full());
    assert_eq!(q.qsize(), 10_000);
}

fn clones_share_one_queue<Q: TestQueue>() {
    let q = Q::make(3);
    let other = q.clone();
    q.put(1).unwrap();
    assert_eq!(other.qsize(), 1);
    assert_eq!(other.maxsize(), 3);
    assert_eq!(other.get(), Ok(1));
    assert!(q.empty());
    other.task_done().unwrap();
    assert!(q.task_done().is_err());
    other.shutdown(false);
    assert!(q.is_shutdown());
}

fn join_timeout_reports_unfinished_tasks<Q: TestQueue>() {
    let q = Q::make(0);
    assert!(q.join_timeout(Duration::ZERO));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(!q.join_timeout(Duration::from_millis(10)));
    q.get().unwrap();
    q.task_done().unwrap();
    assert!(!q.join_timeout(Duration::ZERO));
    let q2 = q.clone();
    let done = do_blocking_test(
        || q.join_timeout(Duration::from_secs(60)),
        move || {
            q2.get().unwrap();
            q2.task_done().unwrap();
        },
    );
    assert!(done);
}

/// CPython's `test_shutdown_empty`.
fn shutdown_empty<Q: TestQueue>() {
    let q = Q::make(0);
    q.shutdown(false);
    assert_eq!(q.put(1), Err(PutError::Closed(1)));
    assert_eq!(q.get(), Err(GetError::Closed));
}

/// CPython's `test_shutdown_nonempty`.
fn shutdown_nonempty<Q: TestQueue>() {
    let q = Q::make(0);
    q.put(1).unwrap();
    q.shutdown(false);
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(GetError::Closed));
}

/// CPython's `test_shutdown_immediate`.
fn shutdown_immediate<Q: TestQueue>() {
    let q = Q::make(0);
    q.put(1).unwrap();
    q.shutdown(true);
    assert_eq!(q.get(), Err(GetError::Closed));
}

/// CPython's `test_shutdown_allowed_transitions`.
fn shutdown_allowed_transitions<Q: TestQueue>() {
    let q = Q::make(0);
    assert!(!q.is_shutdown());
    q.shutdown(false);
    assert!(q.is_shutdown());
    q.shutdown(true);
    assert!(q.is_shutdown());
    q.shutdown(false);
    assert!(q.is_shutdown());
}

/// CPython's `_shutdown_all_methods_in_one_thread(immediate=False)`.
fn shutdown_all_methods_in_one_thread<Q: TestQueue>() {
    let q = Q::make(2);
    q.put(1).unwrap();
    q.put_nowait(2).unwrap();
    q.shutdown(false);
    assert_eq!(q.put(3), Err(PutError::Closed(3)));
    assert_eq!(q.put_nowait(4), Err(PutError::Closed(4)));
    assert_eq!(
        q.put_timeout(5, Duration::from_secs(1)),
        Err(PutError::Closed(5))
    );
    let mut got = [q.get().unwrap(), 0];
    q.task_done().unwrap();
    got[1] = q.get().unwrap();
    q.task_done().unwrap();
    got.sort();
    assert_eq!(got, [1, 2]);
    q.join();
    // Once the queue is empty after `shutdown(false)`, every get fails with ShutDown.
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.get_nowait(), Err(GetError::Closed));
    assert_eq!(q.get_timeout(Duration::from_secs(1)), Err(GetError::Closed));
}

/// CPython's `_shutdown_all_methods_in_one_thread(immediate=True)`.
fn shutdown_immediate_all_methods_in_one_thread<Q: TestQueue>() {
    let q = Q::make(2);
    q.put(1).unwrap();
    q.put_nowait(2).unwrap();
    q.shutdown(true);
    assert_eq!(q.put(3), Err(PutError::Closed(3)));
    assert_eq!(q.put_nowait(4), Err(PutError::Closed(4)));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.get_nowait(), Err(GetError::Closed));
    assert!(q.task_done().is_err());
    q.join();
    assert!(q.empty());
}

/// CPython's `test_shutdown_pending_get`: a getter blocked on an empty queue wakes up.
fn shutdown_pending_get<Q: TestQueue>() {
    for immediate in [false, true] {
        let q = Q::make(0);
        let q2 = q.clone();
        let result = do_blocking_test(|| q.get(), move || q2.shutdown(immediate));
        assert_eq!(result, Err(GetError::Closed));
        let q = Q::make(0);
        let q2 = q.clone();
        let result = do_blocking_test(
            || q.get_timeout(Duration::from_secs(3600)),
            move || q2.shutdown(immediate),
        );
        assert_eq!(result, Err(GetError::Closed));
    }
}

/// A putter blocked on a full queue wakes up and gets its item back (CPython's shutdown tests
/// with blocked `put` calls).
fn shutdown_pending_put<Q: TestQueue>() {
    for immediate in [false, true] {
        let q = Q::make(1);
        q.put(1).unwrap();
        let q2 = q.clone();
        let result = do_blocking_test(|| q.put(2), move || q2.shutdown(immediate));
        assert_eq!(result, Err(PutError::Closed(2)));
        assert_eq!(result.unwrap_err().into_inner(), 2);
        let result = q.put_timeout(3, Duration::from_secs(3600));
        assert_eq!(result, Err(PutError::Closed(3)));
        assert_eq!(q.qsize(), usize::from(!immediate));
    }
}

/// After `shutdown(true)`, `join` waits only for the items already taken out (CPython's
/// `test_shutdown_immediate_get_task_done_join`, in one scenario).
fn shutdown_immediate_releases_join<Q: TestQueue>() {
    let q = Q::make(0);
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let taken = q.get().unwrap();
    assert!(taken < 10);
    let q2 = q.clone();
    do_blocking_test(
        || q.join(),
        move || {
            q2.shutdown(true);
            // The shutdown dropped nine items; `join` still waits for the one taken out.
            assert!(!q2.join_timeout(Duration::ZERO));
            q2.task_done().unwrap();
        },
    );
    assert!(q.empty());
    assert!(q.task_done().is_err());

    // Nothing taken out: an immediate shutdown releases `join` at once.
    let q = Q::make(0);
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let q2 = q.clone();
    do_blocking_test(|| q.join(), move || q2.shutdown(true));
}

/// Many producers and consumers on a small bounded queue; every item comes out exactly once,
/// and `shutdown(false)` ends the consumers once the producers are done and the queue is empty.
fn many_producers_and_consumers<Q: TestQueue>() {
    const PRODUCERS: u64 = 8;
    const CONSUMERS: usize = 8;
    const PER_PRODUCER: u64 = 2_000;
    let q = Q::make(16);
    let seen = Mutex::new(Vec::new());
    thread::scope(|s| {
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while let Ok(item) = q.get() {
                        mine.push(item);
                        q.task_done().unwrap();
                    }
                    seen.lock().unwrap().extend(mine);
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    for i in 0..PER_PRODUCER {
                        q.put(p * PER_PRODUCER + i).unwrap();
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        q.join();
        q.shutdown(false);
        for consumer in consumers {
            consumer.join().unwrap();
        }
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..PRODUCERS * PER_PRODUCER).collect::<Vec<_>>());
}

/// The same with the non-blocking and timeout forms only (like CPython's
/// `test_many_threads_nonblock` and `test_many_threads_timeout`), the consumers stopping at a
/// sentinel each.
fn many_producers_and_consumers_with_timeouts<Q: TestQueue>() {
    const PRODUCERS: u64 = 6;
    const CONSUMERS: usize = 6;
    const PER_PRODUCER: u64 = 1_000;
    const SENTINEL: u64 = u64::MAX;
    let q = Q::make(4);
    let seen = Mutex::new(HashSet::new());
    thread::scope(|s| {
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|c| {
                let (q, seen) = (&q, &seen);
                s.spawn(move || {
                    loop {
                        let got = if c % 2 == 0 {
                            q.get_nowait()
                        } else {
                            q.get_timeout(Duration::from_micros(50))
                        };
                        match got {
                            Ok(SENTINEL) => return,
                            Ok(item) => assert!(seen.lock().unwrap().insert(item), "{item} twice"),
                            Err(GetError::Empty | GetError::Timeout) => thread::yield_now(),
                            Err(err) => panic!("unexpected {err}"),
                        }
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    for i in 0..PER_PRODUCER {
                        let mut item = p * PER_PRODUCER + i;
                        loop {
                            let put = if p % 2 == 0 {
                                q.put_nowait(item)
                            } else {
                                q.put_timeout(item, Duration::from_micros(50))
                            };
                            match put {
                                Ok(()) => break,
                                Err(PutError::Full(back) | PutError::Timeout(back)) => {
                                    item = back;
                                    thread::yield_now();
                                }
                                Err(err) => panic!("unexpected {err}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        for _ in 0..CONSUMERS {
            q.put(SENTINEL).unwrap();
        }
        for consumer in consumers {
            consumer.join().unwrap();
        }
    });
    // A LIFO queue gives the sentinels before the items still queued; take what is left.
    let mut seen = seen.into_inner().unwrap();
    while let Ok(item) = q.get_nowait() {
        if item != SENTINEL {
            assert!(seen.insert(item), "{item} twice");
        }
    }
    assert_eq!(seen.len() as u64, PRODUCERS * PER_PRODUCER);
    assert!((0..PRODUCERS * PER_PRODUCER).all(|i| seen.contains(&i)));
}

/// Puts `PER_PRODUCER` items from each of 4 threads until the queue is shut down in the
/// middle; the items whose `put` succeeded, as the producers saw them.
fn put_until_shut_down<Q: TestQueue>(q: &Q, immediate: bool) -> Vec<u64> {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 20_000;
    let accepted = Mutex::new(Vec::new());
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let (q, accepted) = (q, &accepted);
            s.spawn(move || {
                let mut mine = Vec::new();
                for i in 0..PER_PRODUCER {
                    match q.put(p * PER_PRODUCER + i) {
                        Ok(()) => mine.push(p * PER_PRODUCER + i),
                        Err(PutError::Closed(_)) => break,
                        Err(err) => panic!("unexpected {err}"),
                    }
                }
                accepted.lock().unwrap().extend(mine);
            });
        }
        // Shut down once some items are in, while the producers still put.
        while q.qsize() < 1_000 {
            thread::yield_now();
        }
        q.shutdown(immediate);
    });
    accepted.into_inner().unwrap()
}

/// A shutdown that races with puts: every put either fails with `Closed` or its item comes
/// out afterwards, exactly once, and then the queue says `Closed`.
fn shutdown_while_producers_put<Q: TestQueue>() {
    let q = Q::make(0);
    let mut accepted = put_until_shut_down(&q, false);
    let mut got = Vec::new();
    loop {
        match q.get_timeout(Duration::from_secs(10)) {
            Ok(item) => {
                got.push(item);
                q.task_done().unwrap();
            }
            Err(GetError::Closed) => break,
            Err(err) => panic!("unexpected {err}"),
        }
    }
    accepted.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, accepted);
    assert!(q.join_timeout(Duration::from_secs(10)));
    assert_eq!(q.put(1), Err(PutError::Closed(1)));
}

/// An immediate shutdown that races with puts drops every item that got in, so `join` returns
/// at once and nothing is left to get.
fn immediate_shutdown_while_producers_put<Q: TestQueue>() {
    let q = Q::make(0);
    let accepted = put_until_shut_down(&q, true);
    assert!(accepted.len() >= 1_000);
    assert!(q.join_timeout(Duration::from_secs(10)));
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.get_nowait(), Err(GetError::Closed));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert!(q.task_done().is_err());
}

/// Putters asleep on a full bounded queue all wake with `Closed` when it is shut down, and
/// the items that were in still come out.
fn shutdown_wakes_every_blocked_putter<Q: TestQueue>() {
    let q = Q::make(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    thread::scope(|s| {
        let putters: Vec<_> = (0..4)
            .map(|i| {
                s.spawn({
                    let q = &q;
                    move || q.put(10 + i)
                })
            })
            .collect();
        // No timing assumption: the shutdown comes whether or not they sleep already.
        thread::sleep(Duration::from_millis(20));
        q.shutdown(false);
        for putter in putters {
            assert!(matches!(putter.join().unwrap(), Err(PutError::Closed(_))));
        }
    });
    let mut left = vec![q.get().unwrap(), q.get().unwrap()];
    left.sort_unstable();
    assert_eq!(left, [1, 2]);
    assert_eq!(q.get(), Err(GetError::Closed));
}

/// A small deterministic pseudo-random sequence (a linear congruential generator).
fn shuffled(n: u64) -> Vec<u64> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut items: Vec<u64> = (0..n).collect();
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
    items
}

#[test]
fn fifo_gives_items_in_put_order() {
    let q = Queue::new();
    let items = shuffled(1_000);
    for &item in &items {
        q.put(item).unwrap();
    }
    let out: Vec<_> = (0..items.len()).map(|_| q.get().unwrap()).collect();
    assert_eq!(out, items);
}

#[test]
fn lifo_gives_items_in_reverse_put_order() {
    let q = LifoQueue::new();
    let items = shuffled(1_000);
    for &item in &items {
        q.put(item).unwrap();
    }
    let out: Vec<_> = (0..items.len()).map(|_| q.get().unwrap()).collect();
    assert_eq!(out, items.into_iter().rev().collect::<Vec<_>>());
}

/// Smallest first, like `heapq`, also when puts and gets interleave.
#[test]
fn priority_gives_smallest_first() {
    let q = PriorityQueue::new();
    for item in shuffled(1_000) {
        q.put(item).unwrap();
    }
    let out: Vec<_> = (0..1_000).map(|_| q.get().unwrap()).collect();
    assert_eq!(out, (0..1_000).collect::<Vec<_>>());

    q.put(5).unwrap();
    q.put(3).unwrap();
    assert_eq!(q.get(), Ok(3));
    q.put(1).unwrap();
    q.put(4).unwrap();
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Ok(4));
    assert_eq!(q.get(), Ok(5));
}

/// The pattern of Python's documentation: `(priority, sequence, item)` keeps insertion order
/// among equal priorities, and the item need not be `Ord` on its own terms.
#[test]
fn priority_with_tuples() {
    let q = PriorityQueue::new();
    let jobs = [(2, "b"), (1, "a"), (2, "c"), (0, "z"), (1, "d")];
    for (seq, (priority, name)) in jobs.into_iter().enumerate() {
        q.put((priority, seq, name)).unwrap();
    }
    let names: Vec<_> = (0..jobs.len()).map(|_| q.get().unwrap().2).collect();
    assert_eq!(names, ["z", "a", "d", "b", "c"]);
}

#[test]
fn priority_with_reverse_gives_largest_first() {
    let q = PriorityQueue::new();
    for n in [3, 9, 1] {
        q.put(std::cmp::Reverse(n)).unwrap();
    }
    assert_eq!(q.get().unwrap().0, 9);
}

#[test]
fn immediate_shutdown_drops_the_items() {
    let item = Arc::new(());
    let q = Queue::new();
    for _ in 0..3 {
        q.put(Arc::clone(&item)).unwrap();
    }
    assert_eq!(Arc::strong_count(&item), 4);
    q.shutdown(true);
    assert_eq!(Arc::strong_count(&item), 1);
}

#[test]
fn put_error_gives_the_item_back() {
    let q = Queue::with_maxsize(1);
    q.put(String::from("kept")).unwrap();
    let err = q.put_nowait(String::from("back")).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.into_inner(), "back");
    let err = q
        .put_timeout(String::from("late"), Duration::ZERO)
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.into_inner(), "late");
    q.shutdown(false);
    let err = q.put(String::from("closed")).unwrap_err();
    assert!(err.is_shut_down());
    assert_eq!(err.into_inner(), "closed");
}

#[test]
fn errors_print_lowercase_messages_without_period() {
    let messages = [
        GetError::Empty.to_string(),
        GetError::Timeout.to_string(),
        GetError::Closed.to_string(),
        PutError::Full(()).to_string(),
        PutError::Timeout(()).to_string(),
        PutError::Closed(()).to_string(),
        Queue::<u8>::new().task_done().unwrap_err().to_string(),
    ];
    for message in messages {
        let first = message.chars().next().unwrap();
        assert!(first.is_lowercase(), "{message:?}");
        assert!(!message.ends_with('.'), "{message:?}");
    }
    // The item is not printed, so that `unwrap` works whatever the item's type.
    struct Opaque;
    assert_eq!(format!("{:?}", PutError::Full(Opaque)), "Full(..)");
}

#[test]
fn errors_convert_into_proc_core_error() {
    use proc_core::Error;
    assert!(matches!(Error::from(GetError::Timeout), Error::Timeout));
    assert!(matches!(Error::from(GetError::Empty), Error::Empty));
    assert!(matches!(Error::from(GetError::Closed), Error::Closed));
    assert!(matches!(Error::from(PutError::Timeout(1)), Error::Timeout));
    assert!(matches!(Error::from(PutError::Full(1)), Error::Full));
    assert!(matches!(Error::from(PutError::Closed(1)), Error::Closed));
    let err = Error::from(Queue::<u8>::new().task_done().unwrap_err());
    assert!(matches!(err, Error::InvalidState(_)));

    fn pass_on(q: &Queue<u8>) -> proc_core::Result<u8> {
        q.put(1)?;
        Ok(q.get_timeout(Duration::ZERO)?)
    }
    assert_eq!(pass_on(&Queue::new()).unwrap(), 1);
    let closed = Queue::new();
    closed.shutdown(false);
    assert!(matches!(pass_on(&closed), Err(Error::Closed)));
}

#[test]
fn debug_shows_the_state() {
    let q = PriorityQueue::with_maxsize(4);
    q.put(1).unwrap();
    assert_eq!(
        format!("{q:?}"),
        "PriorityQueue { qsize: 1, maxsize: 4, unfinished_tasks: 1, is_shutdown: false }"
    );
}

/// Many getters blocked at once are all woken, one item each.
#[test]
fn blocked_getters_each_get_one_item() {
    const GETTERS: u64 = 16;
    let q = Queue::new();
    let ready = Barrier::new(GETTERS as usize + 1);
    thread::scope(|s| {
        let getters: Vec<_> = (0..GETTERS)
            .map(|_| {
                s.spawn(|| {
                    ready.wait();
                    q.get().unwrap()
                })
            })
            .collect();
        ready.wait();
        thread::sleep(TRIGGER_DELAY);
        for i in 0..GETTERS {
            q.put(i).unwrap();
        }
        let mut got: Vec<_> = getters.into_iter().map(|g| g.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..GETTERS).collect::<Vec<_>>());
    });
}

/// CPython's `BaseSimpleQueueTest.test_basic`.
#[test]
fn simple_queue_basic() {
    let q = SimpleQueue::new();
    assert!(q.empty());
    assert_eq!(q.qsize(), 0);
    q.put(1);
    assert!(!q.empty());
    assert_eq!(q.qsize(), 1);
    q.put(2);
    q.put(3);
    assert_eq!(q.get(), 1);
    assert_eq!(q.get_nowait(), Ok(2));
    assert_eq!(q.get_timeout(Duration::from_millis(10)), Ok(3));
    assert!(q.empty());
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    let start = Instant::now();
    let timeout = Duration::from_millis(20);
    assert_eq!(q.get_timeout(timeout), Err(GetError::Timeout));
    assert!(start.elapsed() >= timeout);
    let q2 = q.clone();
    assert_eq!(do_blocking_test(|| q.get(), move || q2.put(4)), 4);
    let q2 = q.clone();
    let got = do_blocking_test(|| q.get_timeout(Duration::from_secs(10)), move || q2.put(5));
    assert_eq!(got, Ok(5));
}

/// CPython's `BaseSimpleQueueTest.test_many_threads`: 50 threads, half feeding and half
/// consuming, see every one of 10,000 items exactly once.
#[test]
fn simple_queue_many_threads() {
    const N: usize = 50;
    const ITEMS: u64 = 10_000;
    let q = SimpleQueue::new();
    let next = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    thread::scope(|s| {
        let producers: Vec<_> = (0..N / 2)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let item = next.fetch_add(1, Ordering::Relaxed);
                        if item >= ITEMS {
                            return;
                        }
                        q.put(Some(item));
                    }
                })
            })
            .collect();
        for _ in 0..N / 2 {
            s.spawn(|| {
                let mut mine = Vec::new();
                while let Some(item) = q.get() {
                    mine.push(item);
                }
                results.lock().unwrap().extend(mine);
            });
        }
        for producer in producers {
            producer.join().unwrap();
        }
        // First in, first out: the sentinels come after every item, one per consumer.
        for _ in 0..N / 2 {
            q.put(None);
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_unstable();
    assert_eq!(results, (0..ITEMS).collect::<Vec<_>>());
    assert!(q.empty());
}

#[test]
fn simple_queue_one_producer_one_consumer_keeps_order() {
    let q = SimpleQueue::new();
    let q2 = q.clone();
    let producer = thread::spawn(move || {
        for i in 0..10_000 {
            q2.put(i);
        }
    });
    let out: Vec<_> = (0..10_000).map(|_| q.get()).collect();
    producer.join().unwrap();
    assert_eq!(out, (0..10_000).collect::<Vec<_>>());
}
