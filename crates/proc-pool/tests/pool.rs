//! `Pool` and `ThreadPool` with real worker processes and threads, after CPython's `_TestPool`,
//! `_TestPoolWorkerErrors` and `_TestPoolWorkerLifetime` (test_multiprocessing), which run
//! the same tests against process and thread pools. Then what a pool does under every start
//! method, and tasks whose arguments carry queues, locks and shared values.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use proc_core::{Error, getpid};
use proc_ipc::Queue;
use proc_pool::{AsyncResult, Pool, ThreadPool};
use proc_sync::{Barrier, Event, Lock, Value};
#[cfg(unix)]
use procs_testkit::alive;
use procs_testkit::{PATIENCE, assert_send_sync, each_method, eventually};
use serde::{Deserialize, Serialize, Serializer};

/// Defines a module `$name` of two tests that run `$body` with `$pool` bound to a pool of
/// `$workers` workers: `process_pool` with a `Pool`, `thread_pool` with a `ThreadPool`, as
/// CPython runs `_TestPool` once per pool type. The body may only give the pool functions
/// that capture nothing, since a `Pool` sends them to other processes.
macro_rules! on_both_pools {
    (fn $name:ident($pool:ident: $workers:literal) $body:block) => {
        mod $name {
            use super::*;

            #[test]
            fn process_pool() {
                let $pool = Pool::new($workers).unwrap();
                $body
            }

            #[test]
            fn thread_pool() {
                let $pool = ThreadPool::new($workers).unwrap();
                $body
            }
        }
    };
}

fn sqr(x: u64) -> u64 {
    x * x
}

fn mul(a: u64, b: u64) -> u64 {
    a * b
}

fn slow_sqr((x, wait): (u64, Duration)) -> u64 {
    thread::sleep(wait);
    x * x
}

fn pid((): ()) -> u32 {
    getpid()
}

fn sqr_and_pid(x: u64) -> (u64, u32) {
    (x * x, getpid())
}

/// Squares `x` once `go` is set: a task that stays unfinished exactly as long as the test
/// wants, in a thread or in a process.
fn sqr_when_told((x, go): (u64, Event)) -> u64 {
    assert!(go.wait_timeout(PATIENCE), "nobody said go");
    x * x
}

/// CPython's `int`, which fails on a string that is not a number.
fn parse(s: String) -> u32 {
    s.parse().expect("not a number")
}

fn unlucky(x: u64) -> u64 {
    assert_ne!(x, 3, "three is unlucky");
    x
}

/// The input of CPython's `exception_throwing_generator`: `0..total`, except that asking
/// for item `at` panics — in the caller's process, before any worker sees it.
#[derive(Debug)]
struct Exploding {
    next: u64,
    total: u64,
    at: u64,
}

fn exploding(total: u64, at: u64) -> Exploding {
    Exploding { next: 0, total, at }
}

impl Iterator for Exploding {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.next == self.at {
            panic!("somebody said when");
        }
        if self.next == self.total {
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }
}

/// A value that refuses to be encoded (CPython's unpicklable lambda), but decodes.
#[derive(Debug, Clone, Deserialize)]
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("an Unencodable never travels"))
    }
}

fn unencodable((): ()) -> Unencodable {
    Unencodable
}

/// The outcomes a `callback`/`error_callback` pair was called with, in order.
type Calls<T> = Arc<Mutex<Vec<Result<T, Error>>>>;

/// A callback pair that records each call into the returned list.
fn recorder<T: Clone + Send + 'static>() -> (
    Calls<T>,
    impl FnOnce(&T) + Send + 'static,
    impl FnOnce(&Error) + Send + 'static,
) {
    let calls: Calls<T> = Arc::default();
    let (values, errors) = (calls.clone(), calls.clone());
    let callback = move |value: &T| values.lock().unwrap().push(Ok(value.clone()));
    let error_callback = move |e: &Error| errors.lock().unwrap().push(Err(e.clone()));
    (calls, callback, error_callback)
}

fn meet(barrier: Barrier) -> u32 {
    barrier.wait_timeout(PATIENCE).unwrap();
    getpid()
}

/// The pids of every worker of an idle pool: one task per worker, each waiting for all the
/// others, can only finish when each of them runs in a worker of its own (an idle worker
/// takes a task before a busy one, as `an_idle_worker_takes_the_next_task` checks).
fn worker_pids(pool: &Pool) -> BTreeSet<u32> {
    let barrier = Barrier::new(pool.processes() as u32).unwrap();
    let meetings: Vec<_> = (0..pool.processes())
        .map(|_| pool.apply_async(meet, barrier.clone()).unwrap())
        .collect();
    let pids: BTreeSet<u32> = meetings.iter().map(|m| m.get().unwrap()).collect();
    assert_eq!(pids.len(), pool.processes());
    pids
}

#[test]
fn pools_and_results_are_send_and_sync() {
    assert_send_sync::<Pool>();
    assert_send_sync::<ThreadPool>();
    assert_send_sync::<AsyncResult<Vec<u64>>>();
}

// Port of CPython _TestPool.test_apply.
on_both_pools! {
    fn apply(pool: 2) {
        assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
        assert_eq!(pool.apply(|(a, b): (u64, u64)| a * b, (6, 7)).unwrap(), 42);
    }
}

// Port of CPython _TestPool.test_map.
on_both_pools! {
    fn map(pool: 2) {
        let expected: Vec<u64> = (0..10).map(sqr).collect();
        assert_eq!(pool.map(sqr, 0..10).unwrap(), expected);
        let expected: Vec<u64> = (0..100).map(sqr).collect();
        assert_eq!(pool.map_chunked(sqr, 0..100, 20).unwrap(), expected);
        assert!(pool.map_chunked(sqr, 0..10, 0).is_err(), "a chunk size of 0 is refused");
    }
}

// Port of CPython _TestPool.test_starmap.
on_both_pools! {
    fn starmap(pool: 2) {
        let tuples: Vec<(u64, u64)> = (0..10).zip((0..10).rev()).collect();
        let expected: Vec<u64> = tuples.iter().map(|&(a, b)| a * b).collect();
        assert_eq!(pool.starmap(mul, tuples.clone()).unwrap(), expected);
        assert_eq!(pool.starmap(|a: u64, b: u64| a * b, tuples).unwrap(), expected);

        let tuples: Vec<(u64, u64)> = (0..100).zip((0..100).rev()).collect();
        let expected: Vec<u64> = tuples.iter().map(|&(a, b)| a * b).collect();
        assert_eq!(pool.starmap_chunked(mul, tuples, 20).unwrap(), expected);

        let triples: Vec<(u64, u64, u64)> = (0..30).map(|i| (i, i + 1, 7)).collect();
        let expected: Vec<u64> = triples.iter().map(|&(a, b, c)| a * b + c).collect();
        let got = pool.starmap(|a: u64, b: u64, c: u64| a * b + c, triples).unwrap();
        assert_eq!(got, expected);
    }
}

// Port of CPython _TestPool.test_starmap_async.
on_both_pools! {
    fn starmap_async(pool: 2) {
        let tuples: Vec<(u64, u64)> = (0..100).zip((0..100).rev()).collect();
        let expected: Vec<u64> = tuples.iter().map(|&(a, b)| a * b).collect();
        assert_eq!(pool.starmap_async(mul, tuples).unwrap().get().unwrap(), expected);
    }
}

// Port of CPython _TestPool.test_map_async.
on_both_pools! {
    fn map_async(pool: 2) {
        let expected: Vec<u64> = (0..10).map(sqr).collect();
        assert_eq!(pool.map_async(sqr, 0..10).unwrap().get().unwrap(), expected);
    }
}

// Port of CPython _TestPool.test_map_async_callbacks.
on_both_pools! {
    fn map_async_callbacks(pool: 2) {
        let (calls, callback, error_callback) = recorder::<Vec<u32>>();
        let result = pool
            .map_async_with(parse, vec!["1".to_string()], callback, error_callback)
            .unwrap();
        assert_eq!(result.get().unwrap(), [1]);
        // The callback ran before the result was ready, and only once.
        assert!(matches!(&calls.lock().unwrap()[..], [Ok(v)] if v == &[1]));

        let (calls, callback, error_callback) = recorder::<Vec<u32>>();
        let result = pool
            .map_async_with(parse, vec!["a".to_string()], callback, error_callback)
            .unwrap();
        assert!(result.get().unwrap_err().is_panic());
        assert!(matches!(&calls.lock().unwrap()[..], [Err(e)] if e.is_panic()));
    }
}

// Port of CPython _TestPoolWorkerErrors.test_async_error_callback.
on_both_pools! {
    fn async_error_callback(pool: 2) {
        let (calls, callback, error_callback) = recorder::<u32>();
        let result = pool
            .apply_async_with(parse, "key".to_string(), callback, error_callback)
            .unwrap();
        assert!(result.get().unwrap_err().is_panic());
        assert!(matches!(&calls.lock().unwrap()[..], [Err(e)] if e.is_panic()));

        let (calls, callback, error_callback) = recorder::<u32>();
        let result = pool
            .apply_async_with(parse, "12".to_string(), callback, error_callback)
            .unwrap();
        assert_eq!(result.get().unwrap(), 12);
        assert!(matches!(&calls.lock().unwrap()[..], [Ok(12)]));
    }
}

// Port of CPython _TestPool.test_map_chunksize and test_empty_iterable (Issue 12157): an
// empty input never stalls.
on_both_pools! {
    fn empty_iterable(pool: 1) {
        assert!(pool.map(sqr, Vec::new()).unwrap().is_empty());
        assert!(pool.map_chunked(sqr, Vec::new(), 1).unwrap().is_empty());
        assert_eq!(pool.imap(sqr, Vec::new()).unwrap().count(), 0);
        assert_eq!(pool.imap_unordered(sqr, Vec::new()).unwrap().count(), 0);
        let result = pool.map_async(sqr, Vec::new()).unwrap();
        assert!(result.get_timeout(PATIENCE).unwrap().is_empty());
        let result = pool.starmap_async(mul, Vec::new()).unwrap();
        assert!(result.get_timeout(PATIENCE).unwrap().is_empty());
        pool.close();
        pool.join().unwrap();
    }
}

// Port of CPython _TestPool.test_map_handle_iterable_exception.
on_both_pools! {
    fn map_handle_iterable_exception(pool: 2) {
        // The input panics at its very first item; twice, to see that the pool recovers.
        assert!(pool.map(sqr, exploding(1, 0)).unwrap_err().is_panic());
        assert!(pool.map_chunked(sqr, exploding(1, 0), 1).unwrap_err().is_panic());
        // ... and midway.
        assert!(pool.map_chunked(sqr, exploding(10, 3), 1).unwrap_err().is_panic());
        assert!(pool.map_async(sqr, exploding(10, 3)).unwrap_err().is_panic());
        assert!(pool.starmap(mul, exploding(10, 3).map(|i| (i, i))).unwrap_err().is_panic());
        assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
    }
}

/// `0..yields`, whose iterator claims to know it has exactly `claims` items: a `map` takes an
/// input that gives its length without collecting it, and a length that lies must change
/// nothing but the chunks.
#[derive(Debug)]
struct Claiming {
    next: u64,
    yields: u64,
    claims: usize,
}

impl Iterator for Claiming {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.yields).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claims, Some(self.claims))
    }
}

fn claiming(yields: u64, claims: usize) -> Claiming {
    Claiming {
        next: 0,
        yields,
        claims,
    }
}

on_both_pools! {
    fn map_takes_what_an_input_yields_whatever_length_it_claims(pool: 2) {
        for (yields, claims) in [(100, 3), (3, 100), (0, 10), (10, 0), (1_000, 1 << 60)] {
            let expected: Vec<u64> = (0..yields).map(sqr).collect();
            assert_eq!(pool.map(sqr, claiming(yields, claims)).unwrap(), expected);
            let result = pool.map_async(sqr, claiming(yields, claims)).unwrap();
            assert_eq!(result.get_timeout(PATIENCE).unwrap(), expected);
            let pairs = claiming(yields, claims).map(|i| (i, 2));
            let expected: Vec<u64> = (0..yields).map(|i| mul(i, 2)).collect();
            assert_eq!(pool.starmap(mul, pairs).unwrap(), expected);
        }
    }
}

on_both_pools! {
    fn map_of_an_input_of_known_length_that_panics_midway(pool: 2) {
        // `Map` keeps the range's exact length, so the chunks are cut as they are sent: the
        // panic comes after some went out, and is still the error of the call.
        let input = || (0..1_000u64).map(|i| if i == 700 { panic!("not this one") } else { i });
        assert!(pool.map(sqr, input()).unwrap_err().is_panic());
        assert!(pool.map_chunked(sqr, input(), 10).unwrap_err().is_panic());
        assert!(pool.map_async(sqr, input()).unwrap_err().is_panic());
        assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
    }
}

// Port of CPython _TestPool.test_async.
on_both_pools! {
    fn apply_async(pool: 2) {
        let result = pool.apply_async(slow_sqr, (7, Duration::from_millis(100))).unwrap();
        assert_eq!(result.get().unwrap(), 49);
        assert!(result.ready());
        assert!(result.successful().unwrap());
    }
}

// Port of CPython _TestPool.test_async_timeout.
on_both_pools! {
    fn async_timeout(pool: 2) {
        let go = Event::new().unwrap();
        let result = pool.apply_async(sqr_when_told, (6, go.clone())).unwrap();
        // The task cannot finish before `go` is set.
        let err = result.get_timeout(Duration::from_millis(100)).unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(!result.ready());
        assert!(result.successful().is_err(), "not ready yet");
        go.set();
        assert_eq!(result.get_timeout(PATIENCE).unwrap(), 36);
    }
}

// What CPython's shared task queue gives: a task goes to an idle worker, never behind a busy
// one — so that tasks waiting for each other, one per worker, all finish.
on_both_pools! {
    fn an_idle_worker_takes_the_next_task(pool: 2) {
        let go = Event::new().unwrap();
        let blocked = pool.apply_async(sqr_when_told, (5, go.clone())).unwrap();
        eventually("the first task is handed to a worker", || {
            blocked.future().running()
        });
        let quick = pool.apply_async(sqr, 3).unwrap();
        let got = quick.get_timeout(PATIENCE);
        go.set();
        assert_eq!(got.unwrap(), 9, "the second task waited behind the first");
        assert_eq!(blocked.get().unwrap(), 25);
    }
}

/// `sqr` for `u32`, whose ranges (unlike those of `u64`) are exact-size iterators.
fn sqr32(x: u32) -> u32 {
    x * x
}

// Port of CPython _TestPool.test_imap, and `Imap` knows how many results are left.
on_both_pools! {
    fn imap(pool: 2) {
        let expected: Vec<u64> = (0..10).map(sqr).collect();
        let all: Vec<u64> = pool.imap(sqr, 0..10).unwrap().map(Result::unwrap).collect();
        assert_eq!(all, expected);

        let mut it = pool.imap(sqr32, 0..10).unwrap();
        assert_eq!(it.len(), 10);
        for i in 0..10 {
            assert_eq!(it.next().unwrap().unwrap(), i * i);
            assert_eq!(it.len(), 9 - i as usize);
        }
        assert!(it.next().is_none());
        assert!(it.next().is_none(), "an ended Imap stays ended");

        let mut it = pool.imap_chunked(sqr32, 0..1000, 100).unwrap();
        assert_eq!(it.len(), 1000);
        for i in 0..1000 {
            assert_eq!(it.next().unwrap().unwrap(), i * i);
        }
        assert_eq!(it.len(), 0);
        assert!(it.next().is_none());
    }
}

// Port of CPython _TestPool.test_imap_handle_iterable_exception.
on_both_pools! {
    fn imap_handle_iterable_exception(pool: 2) {
        // The input panics at its very first item; twice, to see that the pool recovers.
        for _ in 0..2 {
            let mut it = pool.imap(sqr, exploding(1, 0)).unwrap();
            assert!(it.next().unwrap().unwrap_err().is_panic());
            assert!(it.next().is_none());
        }

        // The results before the panic come first, then the panic, then nothing.
        let mut it = pool.imap(sqr, exploding(10, 3)).unwrap();
        for i in 0..3 {
            assert_eq!(it.next().unwrap().unwrap(), i * i);
        }
        assert!(it.next().unwrap().unwrap_err().is_panic());
        assert!(it.next().is_none());

        // The chunk the panic broke is lost whole: items 6 and 7 with chunks of 2, items 4
        // to 7 with chunks of 4, as in CPython.
        for (chunksize, before) in [(2, 6), (4, 4)] {
            let mut it = pool.imap_chunked(sqr, exploding(20, 7), chunksize).unwrap();
            for i in 0..before {
                assert_eq!(it.next().unwrap().unwrap(), i * i, "chunks of {chunksize}");
            }
            assert!(it.next().unwrap().unwrap_err().is_panic(), "chunks of {chunksize}");
            assert!(it.next().is_none());
        }
        assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
    }
}

// Port of CPython _TestPool.test_imap_unordered.
on_both_pools! {
    fn imap_unordered(pool: 2) {
        for (n, chunksize) in [(10, 1), (1000, 100)] {
            let it = pool.imap_unordered_chunked(sqr32, 0..n, chunksize).unwrap();
            assert_eq!(it.len(), n as usize);
            let mut all: Vec<u32> = it.map(Result::unwrap).collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).map(sqr32).collect::<Vec<_>>(), "chunks of {chunksize}");
        }
        let it = pool.imap_unordered(sqr, 0..10).unwrap();
        let mut all: Vec<u64> = it.map(Result::unwrap).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).map(sqr).collect::<Vec<_>>());
    }
}

// Port of CPython _TestPool.test_imap_unordered_handle_iterable_exception.
on_both_pools! {
    fn imap_unordered_handle_iterable_exception(pool: 2) {
        for _ in 0..2 {
            let mut it = pool.imap_unordered(sqr, exploding(1, 0)).unwrap();
            assert!(it.next().unwrap().unwrap_err().is_panic());
            assert!(it.next().is_none());
        }
        for (total, at, chunksize) in [(10, 3, 1), (20, 7, 2)] {
            let mut expected: Vec<u64> = (0..total).map(sqr).collect();
            let input = exploding(total, at);
            let mut it = pool.imap_unordered_chunked(sqr, input, chunksize).unwrap();
            let error = loop {
                match it.next().expect("the panic of the input comes before the end") {
                    Ok(value) => {
                        let place = expected.iter().position(|&e| e == value);
                        expected.remove(place.expect("each value comes once"));
                    }
                    Err(e) => break e,
                }
            };
            assert!(error.is_panic(), "{error}");
            assert!(it.next().is_none());
        }
    }
}

// Port of CPython _TestPool.test_make_pool and
// _TestPoolWorkerLifetime.test_pool_maxtasksperchild_invalid.
#[test]
fn make_pool() {
    assert!(matches!(Pool::new(0).unwrap_err(), Error::InvalidState(_)));
    assert!(matches!(
        ThreadPool::new(0).unwrap_err(),
        Error::InvalidState(_)
    ));
    let refused = Pool::builder().processes(0).build().unwrap_err();
    assert!(matches!(refused, Error::InvalidState(_)), "{refused}");
    let refused = Pool::builder()
        .processes(1)
        .maxtasksperchild(0)
        .build()
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidState(_)), "{refused}");

    let pool = Pool::new(3).unwrap();
    assert_eq!(pool.processes(), 3);
    assert_eq!(worker_pids(&pool).len(), 3);
    pool.close();
    pool.join().unwrap();
    assert_eq!(ThreadPool::new(3).unwrap().processes(), 3);
}

// Port of CPython _TestPool.test_terminate: many slow tasks, most never started.
on_both_pools! {
    fn terminate(pool: 2) {
        let results: Vec<_> = (0..10_000)
            .map(|_| pool.apply_async(thread::sleep, Duration::from_secs(1)).unwrap())
            .collect();
        eventually("a task has started", || {
            results[0].future().running() || results[0].ready()
        });
        pool.terminate();
        pool.join().unwrap();
        // A process pool kills the running tasks; a thread pool lets them finish.
        for result in &results {
            assert!(result.ready());
            match result.get() {
                Ok(()) => {}
                Err(e) => assert!(e.is_cancelled(), "{e}"),
            }
        }
        assert!(results.last().unwrap().get().unwrap_err().is_cancelled());
        assert!(matches!(pool.apply(sqr, 1).unwrap_err(), Error::InvalidState(_)));
    }
}

// Port of CPython _TestPool.test_context: after the pool is terminated (leaving Python's
// `with` block), it takes no more work.
on_both_pools! {
    fn context(pool: 2) {
        let expected: Vec<u64> = (0..10).map(sqr).collect();
        assert_eq!(pool.map_async(sqr, 0..10).unwrap().get().unwrap(), expected);
        pool.terminate();
        pool.join().unwrap();
        let refused = pool.map_async(sqr, 0..10).unwrap_err();
        assert!(matches!(refused, Error::InvalidState(_)), "{refused}");
    }
}

// Port of CPython _TestPool.test_enter: a pool's life runs one way, and `join` needs `close`
// or `terminate` first.
on_both_pools! {
    fn enter(pool: 1) {
        assert!(matches!(pool.join().unwrap_err(), Error::InvalidState(_)));
        assert_eq!(pool.apply(sqr, 3).unwrap(), 9);
        pool.close();
        assert!(matches!(pool.apply(sqr, 3).unwrap_err(), Error::InvalidState(_)));
        assert!(matches!(pool.map(sqr, 0..3).unwrap_err(), Error::InvalidState(_)));
        assert!(matches!(pool.imap(sqr, 0..3).unwrap_err(), Error::InvalidState(_)));
        pool.join().unwrap();
        pool.close();
        pool.terminate();
        pool.join().unwrap();
    }
}

// Port of CPython _TestPool.test_traceback and test_wrapped_exception: a task's panic comes
// back with its message and where it happened.
on_both_pools! {
    fn traceback(pool: 1) {
        match pool.apply(unlucky, 3).unwrap_err() {
            Error::Panicked { message, location } => {
                assert!(message.contains("three is unlucky"), "{message}");
                let location = location.expect("the panic's location");
                assert!(location.contains("pool.rs"), "{location}");
            }
            other => panic!("expected a panic, got {other}"),
        }
    }
}

/// Item 0 fails at once; item 1 sets `finished` after a while.
fn fail_first((i, finished): (u32, Event)) {
    assert_ne!(i, 0, "the first item fails at once");
    thread::sleep(Duration::from_millis(200));
    finished.set();
}

// Port of CPython _TestPool.test_map_no_failfast (Issue #23992): `map` reports the error
// only once every chunk is done.
on_both_pools! {
    fn map_no_failfast(pool: 2) {
        let finished = Event::new().unwrap();
        let items = vec![(0, finished.clone()), (1, finished.clone())];
        assert!(pool.map_chunked(fail_first, items, 1).unwrap_err().is_panic());
        assert!(finished.is_set(), "map returned before its other chunk was done");
        pool.close();
        pool.join().unwrap();
    }
}

// Port of CPython _TestPool.test_map_unplicklable (Issue #19425): an argument that cannot be
// sent fails the call instead of hanging it.
#[test]
fn map_unencodable_argument() {
    let pool = Pool::new(2).unwrap();
    let refused = pool
        .map(|u: Unencodable| u, vec![Unencodable; 10])
        .unwrap_err();
    assert!(matches!(refused, Error::Decode(_)), "{refused}");
    let refused = pool
        .apply_async(|u: Unencodable| u, Unencodable)
        .unwrap_err();
    assert!(matches!(refused, Error::Decode(_)), "{refused}");
    assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
}

// Port of CPython _TestPoolWorkerErrors.test_unpickleable_result: a result that cannot be
// sent back fails its own task only, and loses no worker.
#[test]
fn unencodable_result() {
    let pool = Pool::new(2).unwrap();
    let before = worker_pids(&pool);
    for _ in 0..20 {
        let (calls, callback, error_callback) = recorder::<Unencodable>();
        let result = pool
            .apply_async_with(unencodable, (), callback, error_callback)
            .unwrap();
        let err = result.get().unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
        assert!(matches!(
            &calls.lock().unwrap()[..],
            [Err(Error::Decode(_))]
        ));
    }
    let values = pool.map(|x: u64| (x, Unencodable), 0..4).unwrap_err();
    assert!(matches!(values, Error::Decode(_)), "{values}");
    assert_eq!(worker_pids(&pool), before, "a worker was replaced");
    #[cfg(unix)]
    assert!(before.iter().all(|&pid| alive(pid)));
    assert_eq!(pool.apply(sqr, 9).unwrap(), 81);
}

// Port of CPython _TestPoolWorkerLifetime.test_pool_worker_lifetime.
#[test]
fn pool_worker_lifetime() {
    let pool = Pool::builder()
        .processes(3)
        .maxtasksperchild(10)
        .build()
        .unwrap();
    let before = worker_pids(&pool);
    let results: Vec<_> = (0..100)
        .map(|i| pool.apply_async(sqr_and_pid, i).unwrap())
        .collect();
    let mut pids = BTreeSet::new();
    for (i, result) in (0..).zip(&results) {
        let (value, pid) = result.get().unwrap();
        assert_eq!(value, i * i);
        pids.insert(pid);
    }
    // No worker runs more than 10 tasks, so the first ones ran at most 27 of these.
    let workers = pids.len();
    assert!(workers >= 10, "only {workers} workers ran 100 tasks");
    assert!(!pids.is_subset(&before), "the workers were never replaced");
    pool.close();
    pool.join().unwrap();
}

// Port of CPython _TestPoolWorkerLifetime.test_pool_worker_lifetime_early_close (Issue
// #10332): closing a pool whose workers have limited lives still runs every task.
#[test]
fn pool_worker_lifetime_early_close() {
    let pool = Pool::builder()
        .processes(3)
        .maxtasksperchild(1)
        .build()
        .unwrap();
    let results: Vec<_> = (0..6)
        .map(|i| {
            pool.apply_async(slow_sqr, (i, Duration::from_millis(100)))
                .unwrap()
        })
        .collect();
    pool.close();
    pool.join().unwrap();
    for (i, result) in (0..).zip(&results) {
        assert!(result.ready());
        assert_eq!(result.get().unwrap(), i * i);
    }
}

fn report_then_sleep(pids: Queue<u32>) {
    pids.put(getpid()).unwrap();
    thread::sleep(Duration::from_secs(60));
}

// Python's `with Pool() as p:` terminates the pool on the way out; dropping a `Pool` does.
#[test]
fn dropping_a_pool_terminates_it() {
    let pool = Pool::new(1).unwrap();
    let pids = Queue::new().unwrap();
    let sleeper = pool.apply_async(report_then_sleep, pids.clone()).unwrap();
    let worker = pids.get_timeout(PATIENCE).unwrap();
    drop(pool);
    assert!(sleeper.get_timeout(PATIENCE).unwrap_err().is_cancelled());
    #[cfg(unix)]
    eventually("the worker is gone", || !alive(worker));
    #[cfg(not(unix))]
    let _ = worker;
}

/// Sleeps a while that depends on `i` (no two neighbours alike), then says where it ran.
fn nap_then_pid(i: u64) -> u32 {
    thread::sleep(Duration::from_millis(i * 37 % 5 * 20));
    getpid()
}

// The seed scenarios, under every start method: a pool's few workers run many tasks, and
// `close` then `join` waits for all of them.
#[test]
fn tasks_share_the_pools_workers() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(3)
            .start_method(method)
            .build()
            .unwrap();
        let results: Vec<_> = (0..5)
            .map(|i| pool.apply_async(nap_then_pid, i).unwrap())
            .collect();
        pool.close();
        pool.join().unwrap();
        assert!(results.iter().all(AsyncResult::ready), "under {method:?}");
        let pids: BTreeSet<u32> = results.iter().map(|r| r.get().unwrap()).collect();
        assert!(pids.len() <= 3, "{} workers under {method:?}", pids.len());
        assert!(!pids.contains(&getpid()));
    });
}

// Each task calls its callback exactly once, in the parent, before `join` returns.
#[test]
fn callbacks_get_the_results_in_the_parent() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let parent = getpid();
        let (tx, rx) = mpsc::channel();
        let results: Vec<_> = (0..5)
            .map(|i| {
                let (ok, failed) = (tx.clone(), tx.clone());
                pool.apply_async_with(
                    sqr,
                    i,
                    move |v: &u64| ok.send(Ok((*v, getpid()))).unwrap(),
                    move |e: &Error| failed.send(Err(e.clone())).unwrap(),
                )
                .unwrap()
            })
            .collect();
        drop(tx);
        pool.close();
        pool.join().unwrap();
        assert!(results.iter().all(AsyncResult::ready));
        let mut seen: Vec<u64> = rx
            .iter()
            .map(|call| {
                let (value, pid) = call.unwrap();
                assert_eq!(pid, parent, "under {method:?}");
                value
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 4, 9, 16], "under {method:?}");
    });
}

#[test]
fn map_and_starmap_under_every_start_method() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let squares = pool.map(|x: u64| x * x, 0..20).unwrap();
        assert_eq!(squares, (0..20).map(sqr).collect::<Vec<_>>());
        let products = pool
            .starmap(|a: u64, b: u64| a * b, vec![(2, 3), (4, 5), (6, 7)])
            .unwrap();
        assert_eq!(products, [6, 20, 42]);
    });
}

#[test]
fn a_task_that_panics_in_map_leaves_the_pool_usable() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let err = pool.map(unlucky, 0..10).unwrap_err();
        assert!(err.is_panic(), "{err} under {method:?}");
        assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
        assert_eq!(pool.apply(unlucky, 4).unwrap(), 4);
    });
}

#[test]
fn maxtasksperchild_1_gives_each_task_a_new_worker() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .maxtasksperchild(1)
            .start_method(method)
            .build()
            .unwrap();
        let pids: Vec<u32> = (0..4).map(|_| pool.apply(pid, ()).unwrap()).collect();
        let distinct: BTreeSet<u32> = pids.iter().copied().collect();
        assert_eq!(distinct.len(), 4, "{pids:?} under {method:?}");
        pool.close();
        pool.join().unwrap();
    });
}

fn put_pid(pids: Queue<u32>) -> u32 {
    pids.put(getpid()).unwrap();
    getpid()
}

// Handles travel inside task arguments: the worker uses the very queue the parent reads.
#[test]
fn a_queue_passed_to_a_task_carries_items_back() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let pids = Queue::new().unwrap();
        let result = pool.apply_async(put_pid, pids.clone()).unwrap();
        let put = pids.get_timeout(PATIENCE).unwrap();
        assert_eq!(result.get().unwrap(), put);
        assert_ne!(put, getpid(), "under {method:?}");
    });
}

fn count_up((counter, n): (Value<u64>, u64)) {
    for _ in 0..n {
        counter.with_lock(|c| *c += 1);
    }
}

fn is_taken(lock: Lock) -> bool {
    lock.try_acquire().is_none()
}

// A shared value and a lock given to tasks are the parent's, not copies.
#[test]
fn values_and_locks_passed_to_tasks_are_shared_with_the_parent() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let counter = Value::new(0u64).unwrap();
        let items: Vec<_> = (0..8).map(|_| (counter.clone(), 250)).collect();
        pool.map_chunked(count_up, items, 1).unwrap();
        assert_eq!(counter.get(), 2000, "under {method:?}");

        let lock = Lock::new().unwrap();
        let held = lock.acquire();
        assert!(
            pool.apply(is_taken, lock.clone()).unwrap(),
            "under {method:?}"
        );
        drop(held);
        assert!(
            !pool.apply(is_taken, lock.clone()).unwrap(),
            "under {method:?}"
        );
        assert!(!lock.is_locked(), "the worker let go of the lock");
    });
}

fn add_if_given((counter, n): (Option<Value<u64>>, u64)) -> u64 {
    if let Some(counter) = counter {
        counter.with_lock(|c| *c += n);
    }
    n * 2
}

// A `map` encodes a chunk's items as it takes them from an input of known length; items
// with handles among items without (here from the middle of each chunk on) still reach the
// worker as the parent's own handles.
#[test]
fn handles_among_plain_items_of_a_map_are_shared_with_the_parent() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let counter = Value::new(0u64).unwrap();
        let items = || (0..100u64).map(|i| ((i % 10 >= 5).then(|| counter.clone()), i));
        let expected: Vec<u64> = (0..100).map(|i| i * 2).collect();
        assert_eq!(
            pool.map_chunked(add_if_given, items(), 10).unwrap(),
            expected
        );
        let given: u64 = (0..100).filter(|i| i % 10 >= 5).sum();
        assert_eq!(counter.get(), given, "under {method:?}");
        assert_eq!(pool.map(add_if_given, items()).unwrap(), expected);
        assert_eq!(counter.get(), 2 * given, "under {method:?}");
    });
}

fn wait_then_pid(gate: Event) -> u32 {
    gate.wait();
    getpid()
}

// Python's workers take tasks from one shared queue, so a task never waits behind a long
// one while another worker idles. Ours are handed a few tasks ahead; an idle worker takes
// back the ones a busy worker has not started.
#[test]
fn an_idle_worker_takes_tasks_sent_ahead_to_a_busy_one() {
    let pool = Pool::new(2).unwrap();
    let gate = Event::new().unwrap();
    let long = pool.apply_async(wait_then_pid, gate.clone()).unwrap();
    let quick: Vec<_> = (0..6)
        .map(|_| pool.apply_async(|(): ()| getpid(), ()).unwrap())
        .collect();
    for q in &quick {
        q.get_timeout(PATIENCE).unwrap();
    }
    assert!(!long.ready(), "the long task is still waiting for its gate");
    gate.set();
    let long_pid = long.get_timeout(PATIENCE).unwrap();
    assert!(quick.iter().all(|q| q.get().unwrap() != long_pid));
}
