//! `wait` on connections, queues and process sentinels together, after CPython's
//! `_TestWait` (test_multiprocessing): `multiprocessing.connection.wait` on a mix of
//! connections and `Process.sentinel`s returns the ready ones.

use std::time::Duration;

use proc_core::StartMethod;
use proc_ipc::{Connection, Pipe, Queue, Waitable};
use procs_testkit::{PATIENCE, builder, each_method};

/// Waits until told to end, then ends.
fn wait_for_word(conn: Connection) {
    let _ = conn.recv::<()>();
}

/// Puts one item and ends.
fn put_one(q: Queue<u32>) {
    q.put(7).unwrap();
}

fn sentinel_among_connections_and_queues(method: StartMethod) {
    let (ours, theirs) = Pipe::duplex().unwrap();
    let (_quiet, listening) = Pipe::duplex().unwrap();
    let queue = Queue::<u32>::new().unwrap();
    let mut waiting = builder(method).spawn(wait_for_word, theirs).unwrap();
    let mut putting = builder(method).spawn(put_one, queue.clone()).unwrap();
    let waiting_sentinel = waiting.sentinel().unwrap();
    let putting_sentinel = putting.sentinel().unwrap();

    // Nothing is ready but the queue's item and the sentinel of the process that put it.
    let objects: [&dyn Waitable; 4] = [&listening, &waiting_sentinel, &queue, &putting_sentinel];
    let mut seen = Vec::new();
    while seen != [2, 3] {
        let ready = proc_ipc::wait(&objects, Some(PATIENCE)).unwrap();
        assert!(!ready.is_empty(), "nothing became ready");
        assert!(ready.iter().all(|i| [2, 3].contains(i)), "{ready:?}");
        seen.extend(ready);
        seen.sort_unstable();
        seen.dedup();
    }
    putting.join().unwrap();
    assert_eq!(queue.get().unwrap(), 7);

    // The queue is empty again; the waiting process still runs until it is told to end.
    let objects: [&dyn Waitable; 3] = [&listening, &waiting_sentinel, &queue];
    assert!(
        proc_ipc::wait(&objects, Some(Duration::ZERO))
            .unwrap()
            .is_empty()
    );
    ours.send(&()).unwrap();
    assert_eq!(proc_ipc::wait(&objects, Some(PATIENCE)).unwrap(), [1]);
    waiting.join().unwrap();
    assert_eq!(proc_ipc::wait(&objects, Some(Duration::MAX)).unwrap(), [1]);
}

#[test]
fn wait_mixes_process_sentinels_with_connections_and_queues() {
    each_method(sentinel_among_connections_and_queues);
}

/// Sleeps a little, then ends.
fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn wait_on_sentinels_alone_returns_each_finished_process() {
    each_method(|method| {
        let mut children: Vec<_> = [0u64, 60_000]
            .into_iter()
            .map(|ms| builder(method).spawn(nap, ms).unwrap())
            .collect();
        let sentinels: Vec<_> = children.iter().map(|p| p.sentinel().unwrap()).collect();
        let watched: Vec<_> = sentinels.iter().collect();
        assert_eq!(proc_ipc::wait(&watched, Some(PATIENCE)).unwrap(), [0]);
        children[1].kill().unwrap();
        assert_eq!(proc_ipc::wait(&watched[1..], None).unwrap(), [0]);
        assert_eq!(proc_ipc::wait(&watched, None).unwrap(), [0, 1]);
        for child in &mut children {
            let _ = child.join();
        }
    });
}
