//! Queues between processes, after CPython's `_TestQueue` (test_multiprocessing): producers
//! and consumers in several processes, `maxsize`, time-outs, `JoinableQueue`, and what Python
//! cannot promise — processes killed inside `put` and `get`.

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use proc_core::Error;
use proc_ipc::{Connection, GetError, JoinableQueue, Pipe, PutError, Queue, SimpleQueue, Waitable};
use procs_testkit::{PATIENCE, builder, each_method, eventually};
use serde_bytes::ByteBuf;

/// A consumer: takes items until `None` and returns them in the order it got them.
fn consume(q: Queue<Option<u32>>) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(n) = q.get().unwrap() {
        got.push(n);
    }
    got
}

/// A producer: puts `0..n`, then one `None` per consumer.
fn produce((q, n, consumers): (Queue<Option<u32>>, u32, u32)) {
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    for _ in 0..consumers {
        q.put(None).unwrap();
    }
}

#[test]
fn one_producer_two_consumers_see_every_item_exactly_once() {
    each_method(|method| {
        const N: u32 = 20_000;
        let q = Queue::new().unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| builder(method).spawn(consume, q.clone()).unwrap())
            .collect();
        let mut producer = builder(method).spawn(produce, (q.clone(), N, 2)).unwrap();
        producer.join().unwrap();
        let mut seen = BTreeSet::new();
        for mut c in consumers {
            let got = c.join().unwrap();
            // Each consumer sees its share in the order it was put.
            assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
            for n in got {
                assert!(seen.insert(n), "{n} was delivered twice");
            }
        }
        assert_eq!(seen.len(), N as usize, "items were lost");
        assert!(q.empty());
        assert_eq!(q.qsize(), 0);
    });
}

fn work(q: JoinableQueue<u32>) -> u32 {
    let mut sum = 0;
    loop {
        let n = q.get().unwrap();
        if n == 0 {
            q.task_done().unwrap();
            return sum;
        }
        sum += n;
        thread::sleep(Duration::from_micros(200));
        q.task_done().unwrap();
    }
}

#[test]
fn joinable_queue_join_waits_for_every_task_done() {
    each_method(|method| {
        let q = JoinableQueue::new().unwrap();
        let workers: Vec<_> = (0..2)
            .map(|_| builder(method).spawn(work, q.clone()).unwrap())
            .collect();
        for n in 1..=100 {
            q.put(n).unwrap();
        }
        q.join().unwrap();
        assert_eq!(q.unfinished_tasks(), 0);
        assert!(q.empty());
        q.put(0).unwrap();
        q.put(0).unwrap();
        let total: u32 = workers.into_iter().map(|mut w| w.join().unwrap()).sum();
        assert_eq!(total, 5050);
        q.join_timeout(PATIENCE).unwrap();
        assert!(matches!(q.task_done(), Err(Error::InvalidState(_))));
    });
}

fn take_one_later(q: Queue<u32>) -> u32 {
    thread::sleep(Duration::from_millis(100));
    q.get().unwrap()
}

#[test]
fn maxsize_blocks_puts_and_times_out() {
    each_method(|method| {
        let q = Queue::with_maxsize(2).unwrap();
        q.put(1).unwrap();
        q.put_nowait(2).unwrap();
        assert!(q.full());
        assert!(matches!(q.put_nowait(3), Err(PutError::Full(3))));
        assert!(matches!(
            q.put_timeout(3, Duration::from_millis(50)),
            Err(PutError::Timeout(3))
        ));
        assert_eq!(q.qsize(), 2);
        // A consumer in another process makes room; the blocked put then goes through.
        let mut child = builder(method).spawn(take_one_later, q.clone()).unwrap();
        q.put(3).unwrap();
        assert_eq!(child.join().unwrap(), 1);
        assert_eq!(q.get().unwrap(), 2);
        assert_eq!(q.get().unwrap(), 3);
        assert!(!q.full());
    });
}

#[test]
fn get_nowait_on_an_empty_queue_is_empty_and_get_timeout_times_out() {
    let q = Queue::<String>::new().unwrap();
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
    assert!(matches!(
        q.get_timeout(Duration::from_millis(20)),
        Err(GetError::Timeout)
    ));
    q.put("now".into()).unwrap();
    assert_eq!(q.get_nowait().unwrap(), "now");
}

/// Says it starts, then puts an item that cannot fit until someone reads.
fn put_forever((q, ready): (Queue<ByteBuf>, Connection)) {
    ready.send(&"putting").unwrap();
    q.put(ByteBuf::from(vec![7u8; 5 << 20])).unwrap();
}

#[test]
fn a_putter_killed_inside_put_leaves_the_queue_usable() {
    each_method(|method| {
        // A bounded queue writes in `put` itself: the child stops inside it, holding the put
        // lock, with part of its item in the ring and no room for the rest.
        let q = Queue::with_maxsize(10).unwrap();
        let (ready, ready_there) = Pipe::duplex().unwrap();
        let mut child = builder(method)
            .spawn(put_forever, (q.clone(), ready_there))
            .unwrap();
        assert_eq!(ready.recv::<String>().unwrap(), "putting");
        // Past its marker and asleep: inside `put`, waiting for room.
        procs_testkit::wait_until_asleep("the putter sleeps in put", child.pid().unwrap());
        // The child holds the put lock: it is inside `put`.
        assert!(matches!(
            q.put_nowait(ByteBuf::from(b"x".to_vec())),
            Err(PutError::Full(_))
        ));
        child.kill().unwrap();
        assert!(child.join().is_err());
        // A consumer takes (and drops) the half-written item; the next put takes the lock
        // over from the dead child.
        let reader = {
            let q = q.clone();
            thread::spawn(move || q.get_timeout(PATIENCE))
        };
        q.put(ByteBuf::from(b"after".to_vec())).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), b"after"[..]);
        assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
        q.put(ByteBuf::from(b"again".to_vec())).unwrap();
        assert_eq!(q.get().unwrap(), b"again"[..]);
    });
}

/// Says it starts, then waits in `get` (holding the get lock) for as long as it takes.
fn get_forever((q, ready): (Queue<ByteBuf>, Connection)) {
    ready.send(&"getting").unwrap();
    let _ = q.get();
    ready.send(&"got").unwrap();
    thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_getter_killed_inside_get_leaves_the_queue_usable() {
    each_method(|method| {
        let q = Queue::with_maxsize(10).unwrap();
        let (ready, ready_there) = Pipe::duplex().unwrap();
        let mut child = builder(method)
            .spawn(get_forever, (q.clone(), ready_there))
            .unwrap();
        assert_eq!(ready.recv::<String>().unwrap(), "getting");
        // Past its marker and asleep: inside `get`, waiting for an item.
        procs_testkit::wait_until_asleep("the getter sleeps in get", child.pid().unwrap());
        child.kill().unwrap();
        assert!(child.join().is_err());
        q.put(ByteBuf::from(b"one".to_vec())).unwrap();
        // Even a call that does not wait takes the dead consumer's lock over.
        assert_eq!(q.get_nowait().unwrap(), b"one"[..]);
        q.put(ByteBuf::from(b"two".to_vec())).unwrap();
        assert_eq!(q.get_timeout(PATIENCE).unwrap(), b"two"[..]);
        assert!(q.empty());
    });
}

// Unix only: the getter is held inside `get` with SIGSTOP, which Windows has not.
#[cfg(unix)]
#[test]
fn a_getter_killed_while_it_reads_a_large_item_loses_that_item_only() {
    each_method(|method| {
        let q = Queue::with_maxsize(10).unwrap();
        // The item is eight times the ring: its put returns only once the getter has taken
        // all but the last ring's worth of it.
        let big = vec![3u8; 8 << 20];
        // The getter may finish the item before the stop reaches it, and then it got the
        // item whole; only a round that stops it inside `get` counts.
        for _round in 0..10 {
            let (ready, ready_there) = Pipe::duplex().unwrap();
            let mut child = builder(method)
                .spawn(get_forever, (q.clone(), ready_there))
                .unwrap();
            assert_eq!(ready.recv::<String>().unwrap(), "getting");
            let pid = child.pid().unwrap();
            procs_testkit::wait_until_asleep("the getter sleeps in get", pid);
            let writer = {
                let (q, big) = (q.clone(), big.clone());
                thread::spawn(move || {
                    q.put(ByteBuf::from(big)).unwrap();
                    procs_testkit::stop(pid);
                })
            };
            writer.join().unwrap();
            // Stopped, and it has not said "got": it is inside `get`, with most of the item
            // taken from the ring.
            let inside = !ready.poll(Some(Duration::ZERO)).unwrap();
            child.kill().unwrap();
            assert!(child.join().is_err());
            if !inside {
                continue;
            }
            // The item went with the getter: the next item arrives whole, and nothing else.
            q.put(ByteBuf::from(b"next".to_vec())).unwrap();
            assert_eq!(q.get_timeout(PATIENCE).unwrap(), b"next"[..], "a torn item");
            assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
            return;
        }
        panic!("the getter always finished the large item before it was stopped");
    });
}

/// Puts one item of `len` bytes, says that the put returned (its feeder writes it on), and
/// waits to be told to end.
#[cfg(target_os = "linux")]
fn put_big((q, talk, len): (Queue<ByteBuf>, Connection, usize)) {
    q.put(ByteBuf::from(vec![7u8; len])).unwrap();
    talk.send(&"put").unwrap();
    let _ = talk.recv::<String>();
}

// Beyond CPython: a getter halfway through a large item looks every tenth of a second
// whether the item's producer, which holds the ring's put lock, died. A producer that is only
// slow (here frozen with SIGSTOP, mid-item, for several of those looks) must be waited for:
// the item arrives whole once it goes on. The lock's word names the producer by its identity
// (pid and start time's hash), which the look must read as such.
#[cfg(target_os = "linux")]
#[test]
fn a_getter_waits_for_a_live_producer_frozen_inside_a_large_item() {
    use procs_testkit::{resume, stop, thread_states};
    each_method(|method| {
        // Eight times the ring: the producer's feeder waits for room with most of it unwritten.
        const LEN: usize = 8 << 20;
        let q = Queue::new().unwrap();
        let (talk, talk_there) = Pipe::duplex().unwrap();
        let mut child = builder(method)
            .spawn(put_big, (q.clone(), talk_there, LEN))
            .unwrap();
        assert_eq!(talk.recv::<String>().unwrap(), "put");
        let pid = child.pid().unwrap();
        eventually("the producer's feeder waits for room", || {
            thread_states(pid).is_some_and(|states| states.iter().all(|&s| s == 'S'))
        });
        stop(pid);
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get_timeout(PATIENCE))
        };
        // Long enough for the getter to take what the ring holds and look at the frozen
        // producer's life a few times.
        thread::sleep(Duration::from_millis(500));
        assert!(
            !getter.is_finished(),
            "the getter finished an item whose producer is frozen"
        );
        resume(pid);
        let item = getter.join().unwrap().expect("the item arrived");
        assert_eq!(item.len(), LEN, "a torn item");
        assert!(item.iter().all(|&b| b == 7), "a torn item");
        talk.send(&"done").unwrap();
        child.join_timeout(PATIENCE).unwrap();
    });
}

/// Puts numbers as fast as it can until it is killed.
fn put_numbers(q: Queue<u64>) {
    for n in 0.. {
        q.put(n).unwrap();
    }
}

/// Takes numbers and reports each on `report` until it is killed.
fn get_numbers((q, report): (Queue<u64>, Connection)) {
    loop {
        let n = q.get().unwrap();
        report.send(&n).unwrap();
    }
}

/// Takes every item `get_nowait` has now; panics on anything but `Empty` at the end, which
/// is what a torn item would cause.
fn drain(q: &Queue<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match q.get_nowait() {
            Ok(n) => got.push(n),
            Err(GetError::Empty) => return got,
            Err(e) => panic!("a damaged queue: {e}"),
        }
    }
}

#[test]
fn random_kills_neither_tear_nor_duplicate_items() {
    each_method(|method| {
        // Producers killed while they put as fast as they can.
        let q = Queue::new().unwrap();
        for round in 0..5u64 {
            let mut producer = builder(method).spawn(put_numbers, q.clone()).unwrap();
            // (A producer that follows a killed one first takes the put lock over, which
            // takes a tenth of a second.)
            eventually("the producer puts", || !q.empty());
            thread::sleep(Duration::from_millis(7 * round));
            producer.kill().unwrap();
            let _ = producer.join();
            // What arrived is a whole prefix of what was put, in order.
            let got = drain(&q);
            let expected: Vec<u64> = (0..got.len() as u64).collect();
            assert_eq!(got, expected, "an item was lost, torn or duplicated");
        }

        // A consumer killed while it takes items as fast as it can (and reports each).
        const N: u64 = 20_000;
        let q = Queue::new().unwrap();
        for n in 0..N {
            q.put(n).unwrap();
        }
        let (report, report_there) = Pipe::simplex().unwrap();
        let mut consumer = builder(method)
            .spawn(get_numbers, (q.clone(), report_there))
            .unwrap();
        // Reports are read while the consumer runs, so that it is busy in `get`, not blocked
        // on a full report pipe.
        let reports = thread::spawn(move || {
            let mut seen = Vec::new();
            while let Ok(n) = report.recv::<u64>() {
                seen.push(n);
            }
            seen
        });
        eventually("the consumer takes items", || q.qsize() < N as usize / 2);
        consumer.kill().unwrap();
        let _ = consumer.join();
        let reported = reports.join().unwrap();
        let mut seen = BTreeSet::new();
        for n in reported.iter().copied().chain(drain(&q)) {
            assert!(seen.insert(n), "{n} was delivered twice");
        }
        // At most the item the consumer held when it died is missing.
        assert!(
            seen.len() as u64 >= N - 1,
            "lost {} items",
            N - seen.len() as u64
        );
        assert!(!reported.is_empty(), "the consumer took nothing");
    });
}

/// Receives a queue through a connection, then puts into it.
fn receive_a_queue(control: Connection) -> usize {
    let q: Queue<String> = control.recv().unwrap();
    q.put("through the handed-over queue".into()).unwrap();
    let jq: JoinableQueue<u8> = control.recv().unwrap();
    let sq: SimpleQueue<u8> = control.recv().unwrap();
    jq.put(1).unwrap();
    sq.put(2).unwrap();
    // A JoinableQueue is not a Queue: the mix-up is a decode error, not a crash.
    match control.recv::<Queue<u8>>() {
        Err(Error::Decode(_)) => 1,
        other => panic!("{other:?}"),
    }
}

#[test]
fn queues_travel_to_a_running_process() {
    each_method(|method| {
        let (control, control_there) = Pipe::duplex().unwrap();
        let mut child = builder(method)
            .spawn(receive_a_queue, control_there)
            .unwrap();
        let q = Queue::<String>::new().unwrap();
        let jq = JoinableQueue::<u8>::new().unwrap();
        let sq = SimpleQueue::<u8>::new().unwrap();
        control.send(&q).unwrap();
        control.send(&jq).unwrap();
        control.send(&sq).unwrap();
        control.send(&jq).unwrap();
        assert_eq!(q.get().unwrap(), "through the handed-over queue");
        assert_eq!(jq.get().unwrap(), 1);
        assert_eq!(sq.get().unwrap(), 2);
        assert_eq!(child.join().unwrap(), 1);
    });
}

#[test]
fn an_item_of_another_type_is_a_decode_error_for_that_get() {
    let texts = Queue::<String>::new().unwrap();
    // The same queue seen as a queue of numbers, through a pipe to ourselves.
    let (a, b) = Pipe::duplex().unwrap();
    a.send(&texts).unwrap();
    let numbers: Queue<u64> = b.recv().unwrap();
    texts
        .put("\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}".into())
        .unwrap();
    numbers.put(5).unwrap();
    assert!(matches!(
        numbers.get(),
        Err(GetError::Failed(Error::Decode(_)))
    ));
    assert_eq!(numbers.get().unwrap(), 5);
}

#[test]
fn an_item_that_carries_a_handle_is_refused_with_the_item() {
    let q = Queue::<Connection>::new().unwrap();
    let (a, _b) = Pipe::duplex().unwrap();
    match q.put(a) {
        Err(PutError::Failed(conn, Error::Decode(msg))) => {
            assert!(msg.contains("handle"), "{msg}");
            conn.send(&"still mine").unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert!(q.empty());
}

#[test]
fn an_unbounded_put_never_waits_and_close_then_join_thread_flushes() {
    let q = Queue::<ByteBuf>::new().unwrap();
    // Three items larger than the ring: they wait in this process's feeder thread.
    for fill in 0..3u8 {
        q.put(ByteBuf::from(vec![fill; 3 << 20])).unwrap();
    }
    assert_eq!(q.qsize(), 3);
    assert!(matches!(q.join_thread(), Err(Error::InvalidState(_))));
    let reader = {
        let q = q.clone();
        // A handle of its own, as another process would have: the writer's close does not
        // reach it. (Clones in one process share their state, as in Python.)
        let (a, b) = Pipe::duplex().unwrap();
        a.send(&q).unwrap();
        let theirs: Queue<ByteBuf> = b.recv().unwrap();
        drop(q);
        thread::spawn(move || {
            (0..3)
                .map(|_| theirs.get_timeout(PATIENCE).unwrap())
                .collect::<Vec<_>>()
        })
    };
    q.close();
    assert!(matches!(
        q.put(ByteBuf::new()),
        Err(PutError::Failed(_, Error::InvalidState(_)))
    ));
    q.join_thread().unwrap();
    let got = reader.join().unwrap();
    for (fill, item) in got.iter().enumerate() {
        assert_eq!(item.len(), 3 << 20);
        assert!(item.iter().all(|&b| b == fill as u8));
    }
}

#[test]
fn wait_watches_queues_and_connections_together() {
    let (a, b) = Pipe::duplex().unwrap();
    let q = Queue::<u8>::new().unwrap();
    let sq = SimpleQueue::<u8>::new().unwrap();
    let objects: [&dyn Waitable; 3] = [&b, &q, &sq];
    assert!(
        proc_ipc::wait(&objects, Some(Duration::from_millis(10)))
            .unwrap()
            .is_empty()
    );
    sq.put(1).unwrap();
    assert_eq!(proc_ipc::wait(&objects, Some(PATIENCE)).unwrap(), [2]);
    a.send(&1).unwrap();
    q.put(1).unwrap();
    assert_eq!(proc_ipc::wait(&objects, None).unwrap(), [0, 1, 2]);
    let late = {
        let q = q.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            q.put(2).unwrap();
        })
    };
    q.get().unwrap();
    sq.get().unwrap();
    b.recv::<u8>().unwrap();
    assert_eq!(proc_ipc::wait(&objects, Some(PATIENCE)).unwrap(), [1]);
    late.join().unwrap();
}

/// Puts more than the ring holds (so a feeder thread starts), lets a thread take it all, and
/// then starts a child with `Fork` — which needs this process single-threaded again.
#[cfg(target_os = "linux")]
fn burst_then_fork((): ()) -> u32 {
    fn threads() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
        line["Threads:".len()..].trim().parse().unwrap()
    }
    let q = Queue::<ByteBuf>::new().unwrap();
    let reader = {
        let q = q.clone();
        thread::spawn(move || (0..3).map(|_| q.get().unwrap().len()).sum::<usize>())
    };
    for _ in 0..3 {
        q.put(ByteBuf::from(vec![0u8; 2 << 20])).unwrap();
    }
    assert_eq!(reader.join().unwrap(), 3 * (2 << 20));
    eventually("the idle feeder thread ends", || threads() == 1);
    let mut child = proc_core::Process::builder()
        .start_method(proc_core::StartMethod::Fork)
        .spawn(|n: u32| n + 1, 41)
        .unwrap();
    child.join().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn an_idle_feeder_thread_ends_so_that_fork_works_again() {
    let mut child = proc_core::Process::spawn(burst_then_fork, ()).unwrap();
    assert_eq!(child.join().unwrap(), 42);
}

/// Puts more 100 KB items than the 1 MiB ring holds, so that the rest waits in this
/// process's feeder thread; says so, then stays until told to go.
#[cfg(target_os = "linux")]
fn put_more_than_fits((q, talk): (JoinableQueue<ByteBuf>, Connection)) {
    for _ in 0..BACKLOGGED_ROUND {
        q.put(ByteBuf::from(vec![1u8; 100_000])).unwrap();
    }
    talk.send(&"queued").unwrap();
    let _ = talk.recv::<String>();
}

/// Items `put_more_than_fits` puts: ten fit in the ring, four wait in the feeder.
#[cfg(target_os = "linux")]
const BACKLOGGED_ROUND: usize = 14;

/// Takes `n` items and marks each done.
#[cfg(target_os = "linux")]
fn take_and_finish(q: &JoinableQueue<ByteBuf>, n: usize) {
    for _ in 0..n {
        assert_eq!(q.get_timeout(PATIENCE).unwrap().len(), 100_000);
        q.task_done().unwrap();
    }
}

/// A child started with `method` that put [`BACKLOGGED_ROUND`] items into a new queue, more
/// than its ring holds, frozen (`SIGSTOP`) while its feeder waits for room with the rest;
/// the pipe tells it to go once resumed.
#[cfg(target_os = "linux")]
fn frozen_producer(
    method: proc_core::StartMethod,
) -> (JoinableQueue<ByteBuf>, Connection, proc_core::Process<()>) {
    use procs_testkit::{stop, thread_states};
    let q = JoinableQueue::new().unwrap();
    let (talk, talk_there) = Pipe::duplex().unwrap();
    let child = builder(method)
        .spawn(put_more_than_fits, (q.clone(), talk_there))
        .unwrap();
    assert_eq!(talk.recv::<String>().unwrap(), "queued");
    let pid = child.pid().unwrap();
    // Every item is counted once it is put: in the ring, or in the feeder's backlog. Once
    // every thread of the child sleeps, its feeder waits for room (it does not sleep between
    // writing an item and uncounting it), and is stopped there.
    eventually("the child's feeder waits for room", || {
        thread_states(pid).is_some_and(|states| states.iter().all(|&s| s == 'S'))
            && q.qsize() == BACKLOGGED_ROUND
    });
    stop(pid);
    (q, talk, child)
}

/// A producer is frozen with items in its feeder and none in the ring: the other processes
/// still count them, as Python counts an item from its `put`, until they arrive or their
/// producer dies.
#[cfg(target_os = "linux")]
#[test]
fn join_and_qsize_count_what_another_process_feeder_holds() {
    use procs_testkit::resume;
    each_method(|method| {
        for then_kill in [false, true] {
            let (q, talk, mut child) = frozen_producer(method);
            let pid = child.pid().unwrap();
            // Whatever reached the ring is taken; the rest is in the frozen feeder.
            let mut taken = 0;
            while let Ok(item) = q.get_timeout(Duration::from_millis(200)) {
                assert_eq!(item.len(), 100_000);
                q.task_done().unwrap();
                taken += 1;
            }
            let held = BACKLOGGED_ROUND - taken;
            assert!(
                held > 0,
                "the ring took every item: nothing waits in the feeder"
            );
            assert_eq!(q.qsize(), held);
            assert_eq!(q.unfinished_tasks(), held);
            assert!(
                q.join_timeout(Duration::from_millis(100))
                    .unwrap_err()
                    .is_timeout()
            );
            if then_kill {
                // The backlog died with its process: nothing is left to wait for.
                child.kill().unwrap();
                assert!(child.join().is_err());
                eventually("the dead producer's items are not counted", || {
                    q.qsize() == 0
                });
                assert_eq!(q.unfinished_tasks(), 0);
                q.join_timeout(PATIENCE).unwrap();
            } else {
                resume(pid);
                take_and_finish(&q, held);
                q.join_timeout(PATIENCE).unwrap();
                assert_eq!(q.qsize(), 0);
                talk.send(&"done").unwrap();
                child.join().unwrap();
            }
        }
    });
}

/// A second mapping of a queue's backlog table, as a process holding the queue maps it, laid
/// out as `ring::Backlogs` is: after six 64-byte lines of the control block, 64 slots of 24
/// bytes (the owner, then the items its feeder holds).
#[cfg(target_os = "linux")]
fn backlog_table(q: &JoinableQueue<ByteBuf>) -> procs_testkit::OwnerTable {
    use proc_core::Handle;
    use proc_core::shared::Parkers;
    let (a, b) = proc_core::Link::pair().unwrap();
    a.send(q).unwrap();
    let (_, handle, len, _): (u32, Handle, u64, Parkers) = b.recv().unwrap();
    procs_testkit::OwnerTable::new(handle, len as usize, 6 * 64, 64, 24)
}

/// Where a backlog slot counts its items.
#[cfg(target_os = "linux")]
const BACKLOG_ITEMS: usize = 16;

// Beyond CPython: a backlog's owner is its pid and its start time. A producer killed with
// items in its feeder, whose pid the system gave to another process before anyone looked,
// must not pass for that process: its items stop counting while the new owner of the pid
// lives on. The slot is written as it reads once the pid went to the stranger (a test cannot
// make the system recycle a pid), before the kill, so that it never names a dead pid; with
// the pid alone, `qsize` would still count them and `join` wait for them.
#[cfg(target_os = "linux")]
#[test]
fn a_killed_producers_backlog_is_dropped_though_its_pid_went_to_a_live_process() {
    each_method(|method| {
        let (q, _talk, mut child) = frozen_producer(method);
        let stranger = backlog_table(&q).give_away_and_kill(&mut child, BACKLOG_ITEMS, method);
        // What reached the ring arrives; what its feeder held died with it.
        let mut taken = 0;
        while let Ok(item) = q.get_timeout(Duration::from_millis(200)) {
            assert_eq!(item.len(), 100_000);
            q.task_done().unwrap();
            taken += 1;
        }
        assert!(taken < BACKLOGGED_ROUND, "nothing waited in the feeder");
        assert_eq!(
            q.qsize(),
            0,
            "the dead producer's backlog passed for the stranger's"
        );
        assert_eq!(q.unfinished_tasks(), 0);
        q.join_timeout(PATIENCE).unwrap();
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
    });
}

/// Creates and drops 10,000 queues and pipes; returns the open descriptors before and after.
#[cfg(target_os = "linux")]
fn churn((): ()) -> (usize, usize) {
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }
    // Whatever opens descriptors once per process does it now.
    drop(Queue::<u8>::new().unwrap());
    drop(Pipe::duplex().unwrap());
    let before = open_fds();
    for i in 0..10_000u32 {
        let q = Queue::<u32>::new().unwrap();
        q.put(i).unwrap();
        assert_eq!(q.get().unwrap(), i);
        let (a, b) = Pipe::duplex().unwrap();
        a.send(&i).unwrap();
        assert_eq!(b.recv::<u32>().unwrap(), i);
    }
    (before, open_fds())
}

#[cfg(target_os = "linux")]
#[test]
fn thousands_of_queues_and_pipes_leave_no_descriptor_behind() {
    // In a process of its own: the other tests open descriptors in this one meanwhile.
    let mut child = proc_core::Process::spawn(churn, ()).unwrap();
    let (before, after) = child.join().unwrap();
    assert_eq!(after, before);
}

#[test]
fn public_types_are_send_and_sync() {
    procs_testkit::assert_send_sync::<Queue<String>>();
    procs_testkit::assert_send_sync::<JoinableQueue<String>>();
    procs_testkit::assert_send_sync::<SimpleQueue<String>>();
    procs_testkit::assert_send_sync::<PutError<String>>();
}

fn drain_until_shut_down(q: Queue<u32>) -> (Vec<u32>, bool) {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(item) => got.push(item),
            Err(GetError::Closed) => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

fn put_into_full(q: Queue<u32>) -> bool {
    q.put(1).unwrap(); // fills the queue of one
    matches!(q.put(2), Err(PutError::Closed(2)))
}

/// Python 3.13's `Queue.shutdown` across processes: consumers blocked in `get` in other
/// processes take what is left and then wake with `Closed`; a producer blocked on a full
/// queue wakes with its item back; later puts fail (after CPython's
/// `test_queue.BaseQueueTestMixin.test_shutdown_*`).
#[test]
fn shutdown_wakes_blocked_callers_in_every_process() {
    each_method(|method| {
        let q = Queue::<u32>::new().unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                builder(method)
                    .spawn(drain_until_shut_down, q.clone())
                    .unwrap()
            })
            .collect();
        for i in 0..10 {
            q.put(i).unwrap();
        }
        // Let the consumers block on the empty queue, then shut it down.
        std::thread::sleep(Duration::from_millis(200));
        q.shutdown(false);
        let mut all = Vec::new();
        for mut c in consumers {
            let (got, closed) = c.join_timeout(Duration::from_secs(30)).unwrap();
            assert!(closed, "a consumer did not see Closed");
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(q.put(11), Err(PutError::Closed(11)));

        let full = Queue::<u32>::with_maxsize(1).unwrap();
        let mut producer = builder(method).spawn(put_into_full, full.clone()).unwrap();
        procs_testkit::eventually("the producer filled the queue", || full.qsize() == 1);
        std::thread::sleep(Duration::from_millis(100));
        full.shutdown(true);
        assert!(producer.join_timeout(Duration::from_secs(30)).unwrap());
        // Immediate: what is left is not handed out.
        assert_eq!(full.get_nowait(), Err(GetError::Closed));
    });
}

/// An immediate shutdown releases a `join` that waits for tasks nobody will do.
#[test]
fn an_immediate_shutdown_releases_join() {
    let q = JoinableQueue::<u8>::new().unwrap();
    q.put(1).unwrap();
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || q.join_timeout(Duration::from_secs(30)))
    };
    std::thread::sleep(Duration::from_millis(50));
    q.shutdown(true);
    waiter.join().unwrap().unwrap();
}

/// A joinable consumer: takes `n` items, marks each done, returns them in the order it got
/// them.
fn consume_joinable((q, n): (JoinableQueue<ByteBuf>, usize)) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let item = q.get().unwrap();
            q.task_done().unwrap();
            u32::from_le_bytes(item[..4].try_into().unwrap())
        })
        .collect()
}

/// Many more small items than the ring holds, put with no consumer yet: they wait in the
/// feeder, which writes them in batches once a consumer in another process makes room. They
/// come out in order, each once, `qsize` and `join` count them all the way, and the
/// feeder's backlog is empty at the end.
#[test]
fn a_backlog_of_small_items_comes_out_whole_and_in_order() {
    const N: u32 = 20_000;
    let q = JoinableQueue::<ByteBuf>::new().unwrap();
    for i in 0..N {
        let mut item = i.to_le_bytes().to_vec();
        item.resize(200, 7);
        q.put(ByteBuf::from(item)).unwrap();
    }
    // Every item is counted once it is put, whether in the ring or still in the feeder.
    assert_eq!(q.qsize(), N as usize);
    assert_eq!(q.unfinished_tasks(), N as usize);
    assert!(q.join_timeout(Duration::ZERO).unwrap_err().is_timeout());
    let mut child = proc_core::Process::spawn(consume_joinable, (q.clone(), N as usize)).unwrap();
    assert_eq!(child.join().unwrap(), (0..N).collect::<Vec<_>>());
    q.join_timeout(PATIENCE).unwrap();
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.unfinished_tasks(), 0);
}
