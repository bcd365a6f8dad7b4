//! Every `_timeout` and `Option<Duration>` of every crate takes any `Duration`: zero answers
//! at once, `Duration::MAX` means forever and never overflows an `Instant` (the shape issue's
//! verified bug: `join_timeout(Duration::MAX)` and `poll(Some(Duration::MAX))` panicked).

use std::time::Duration;

use procs::{
    Barrier, Condition, Event, JoinableQueue, Lock, Pipe, Pool, Process, ProcessPoolExecutor,
    Queue, RLock, Semaphore, ThreadPoolExecutor, Timer, Value,
};

const EXTREMES: [Duration; 2] = [Duration::ZERO, Duration::MAX];

#[test]
fn every_timeout_takes_zero_and_max() {
    let mut p = Process::spawn(|x: u8| x, 7).unwrap();
    assert_eq!(p.join_timeout(Duration::MAX).unwrap(), 7);

    let (a, b) = Pipe::duplex().unwrap();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    a.send(&1u8).unwrap();
    assert!(b.poll(Some(Duration::MAX)).unwrap());
    assert_eq!(b.recv_timeout::<u8>(Duration::MAX).unwrap(), 1);
    assert!(
        b.recv_timeout::<u8>(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );

    let q = Queue::new().unwrap();
    for d in EXTREMES {
        q.put_timeout(1u8, d).unwrap();
        assert_eq!(q.get_timeout(d).unwrap(), 1);
    }
    let jq = JoinableQueue::<u8>::new().unwrap();
    for d in EXTREMES {
        jq.join_timeout(d).unwrap();
    }
    let local = procs::sync::queue::Queue::<u8>::new();
    for d in EXTREMES {
        local.put_timeout(2, d).unwrap();
        assert_eq!(local.get_timeout(d).unwrap(), 2);
        local.task_done().unwrap();
        assert!(local.join_timeout(d));
    }

    let lock = Lock::new().unwrap();
    let rlock = RLock::new().unwrap();
    let sem = Semaphore::new(1).unwrap();
    let event = Event::new().unwrap();
    let value = Value::new(0u32).unwrap();
    for d in EXTREMES {
        drop(lock.acquire_timeout(d).unwrap());
        drop(rlock.acquire_timeout(d).unwrap());
        drop(sem.acquire_timeout(d).unwrap());
        drop(value.lock_timeout(d).unwrap());
        assert!(!event.wait_timeout(Duration::ZERO));
    }
    event.set();
    assert!(event.wait_timeout(Duration::MAX));
    assert_eq!(
        Barrier::new(1)
            .unwrap()
            .wait_timeout(Duration::MAX)
            .unwrap(),
        0
    );
    let cond = Condition::new().unwrap();
    let mut guard = cond.acquire_timeout(Duration::MAX).unwrap();
    assert!(!cond.wait_timeout(&mut guard, Duration::ZERO).unwrap());
    drop(guard);
    let timer = Timer::start(Duration::ZERO, || ()).unwrap();
    assert!(timer.join_timeout(Duration::MAX).unwrap());

    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(|x: u8| x, 3).unwrap();
    assert_eq!(r.get_timeout(Duration::MAX).unwrap(), 3);
    assert!(r.wait_timeout(Duration::ZERO));
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let f = executor.submit(|x: u8| x, 4).unwrap();
    assert_eq!(f.result_timeout(Duration::MAX).unwrap(), 4);
    assert!(f.exception_timeout(Duration::ZERO).unwrap().is_none());
    let threads = ThreadPoolExecutor::new(1).unwrap();
    let f = threads.submit(|x: u8| x, 5).unwrap();
    let (done, _) = procs::pool::wait(
        std::slice::from_ref(&f),
        Some(Duration::MAX),
        procs::ReturnWhen::AllCompleted,
    );
    assert_eq!(done.len(), 1);
    assert_eq!(procs::as_completed(&[f], Some(Duration::MAX)).count(), 1);
    let mapped: Vec<u8> = executor
        .map_with(|x: u8| x, vec![1, 2], 1, Some(Duration::MAX))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(mapped, [1, 2]);
}

/// The waits that came with the manager, the channels and the listener's `accept_timeout`.
#[test]
fn the_newer_timeouts_take_zero_and_max() {
    let sq = procs::SimpleQueue::<u8>::new().unwrap();
    assert!(sq.get_timeout(Duration::ZERO).unwrap_err().is_empty());
    sq.put(1).unwrap();
    assert_eq!(sq.get_timeout(Duration::MAX).unwrap(), 1);

    let (tx, rx) = procs::ipc::bounded::<u8>(1).unwrap();
    for d in EXTREMES {
        tx.send_timeout(1, d).unwrap();
        assert_eq!(rx.recv_timeout(d).unwrap(), 1);
    }

    let listener = procs::Listener::bind(procs::Address::unique_local(), None).unwrap();
    assert!(
        listener
            .accept_timeout(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );
    let address = listener.address().clone();
    let client = std::thread::spawn(move || procs::Client::connect(address, None).unwrap());
    let _conn = listener.accept_timeout(Duration::MAX).unwrap();
    drop(client.join().unwrap());

    let manager = procs::Manager::start().unwrap();
    let q = manager.queue::<u8>().unwrap();
    for d in EXTREMES {
        q.put_timeout(1, d).unwrap();
        assert_eq!(q.get_timeout(d).unwrap(), 1);
    }
    let lock = manager.lock().unwrap();
    for d in EXTREMES {
        drop(lock.acquire_timeout(d).unwrap());
    }
    let event = manager.event().unwrap();
    assert!(!event.wait_timeout(Duration::ZERO).unwrap());
    event.set().unwrap();
    assert!(event.wait_timeout(Duration::MAX).unwrap());
    let barrier = manager.barrier(1).unwrap();
    assert_eq!(barrier.wait_timeout(Duration::MAX).unwrap(), 0);
    let cond = manager.condition().unwrap();
    let mut guard = cond.acquire_timeout(Duration::MAX).unwrap();
    assert!(!cond.wait_timeout(&mut guard, Duration::ZERO).unwrap());
    let jq = manager.joinable_queue::<u8>().unwrap();
    for d in EXTREMES {
        jq.join_timeout(d).unwrap();
    }
}
