//! Managers between real processes: the seed's shared dict and list, queue proxies with a
//! producer and two consumers, remote managers on loopback, wrong keys, clients and
//! servers killed mid-call. After CPython's `_TestManagerRestart`, `_TestRemoteManager` and
//! the `SyncManager` proxy tests of `_test_multiprocessing.py` (named at each test).

use std::time::{Duration, Instant};

use proc_core::{Error, Process};
use proc_ipc::{
    Address, BarrierProxy, DictProxy, EventProxy, ListProxy, LockProxy, Manager, QueueProxy,
    SemaphoreProxy,
};
use procs_testkit::{builder, each_method, eventually};

fn record((d, l): (DictProxy<u32, String>, ListProxy<u32>)) {
    let pid = proc_core::getpid();
    d.insert(pid, format!("worker {pid}")).unwrap();
    l.push(pid).unwrap();
}

/// The seed scenario: 10 processes write their pid into a shared dict and a shared list.
#[test]
fn ten_processes_fill_a_shared_dict_and_list() {
    each_method(|method| {
        let manager = Manager::start().unwrap();
        let d = manager.dict::<u32, String>().unwrap();
        let l = manager.list::<u32>().unwrap();
        let mut pids = Vec::new();
        let children: Vec<_> = (0..10)
            .map(|_| {
                builder(method)
                    .spawn(record, (d.clone(), l.clone()))
                    .unwrap()
            })
            .collect();
        for mut child in children {
            pids.push(child.pid().unwrap());
            child.join().unwrap();
        }
        let mut listed = l.to_vec().unwrap();
        listed.sort_unstable();
        pids.sort_unstable();
        assert_eq!(listed, pids);
        let map = d.to_map().unwrap();
        assert_eq!(map.len(), 10);
        for pid in &pids {
            assert_eq!(map[pid], format!("worker {pid}"));
        }
    });
}

fn produce((q, n): (QueueProxy<u32>, u32)) {
    for i in 0..n {
        q.put(i).unwrap();
    }
}

fn consume((q, got): (QueueProxy<u32>, ListProxy<u32>)) -> u32 {
    let mut count = 0;
    loop {
        match q.get().unwrap() {
            u32::MAX => return count,
            item => {
                got.push(item).unwrap();
                count += 1;
            }
        }
    }
}

/// A queue proxy used by a producer and two consumers: every item arrives once.
#[test]
fn one_producer_two_consumers_share_a_queue_proxy() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>().unwrap();
    let got = manager.list::<u32>().unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| Process::spawn(consume, (q.clone(), got.clone())).unwrap())
        .collect();
    Process::spawn(produce, (q.clone(), 200))
        .unwrap()
        .join()
        .unwrap();
    q.put(u32::MAX).unwrap();
    q.put(u32::MAX).unwrap();
    let counted: u32 = consumers.into_iter().map(|mut c| c.join().unwrap()).sum();
    assert_eq!(counted, 200);
    let mut items = got.to_vec().unwrap();
    items.sort_unstable();
    assert_eq!(items, (0..200).collect::<Vec<_>>());
}

/// CPython's `_TestContainers.test_dict` / `test_list` (SyncManager proxies): the
/// container methods, insertion order, Python's indexes.
#[test]
fn containers_behave_like_python_containers() {
    let manager = Manager::start().unwrap();
    let l = manager.list::<i32>().unwrap();
    l.extend(0..10).unwrap();
    assert_eq!(l.len().unwrap(), 10);
    assert_eq!(l.get(-1).unwrap(), Some(9));
    l.set(0, 100).unwrap();
    l.insert(-1, 55).unwrap();
    assert_eq!(l.pop().unwrap(), Some(9));
    assert_eq!(l.pop_at(-1).unwrap(), 55);
    assert!(l.remove(&100).unwrap());
    assert_eq!(l.to_vec().unwrap(), (1..9).collect::<Vec<_>>());
    assert!(l.set(50, 1).is_err());

    let d = manager.dict::<String, Vec<u8>>().unwrap();
    for (i, k) in ["z", "a", "m"].into_iter().enumerate() {
        d.insert(k.into(), vec![i as u8]).unwrap();
    }
    d.insert("z".into(), vec![9]).unwrap();
    assert_eq!(d.keys().unwrap(), ["z", "a", "m"]);
    assert_eq!(d.values().unwrap(), [vec![9], vec![1], vec![2]]);
    assert_eq!(
        d.setdefault("new".into(), vec![]).unwrap(),
        Vec::<u8>::new()
    );
    assert_eq!(d.pop("a").unwrap(), Some(vec![1]));
    assert!(!d.contains_key("a").unwrap());
    d.update([("x".into(), vec![1]), ("y".into(), vec![2])])
        .unwrap();
    assert_eq!(d.len().unwrap(), 5);
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
}

/// Bulk calls, as Python's `dict.update` and `list.extend` behave: an update of a key that
/// is there keeps its place, a key removed and set again goes to the end, entries of any
/// length come back as they went. One call refuses more than it carries, before it sends
/// anything, and leaves the container as it was.
#[test]
fn bulk_calls_keep_python_order_and_refuse_more_than_a_call_carries() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, String>().unwrap();
    d.update((0..1000).map(|i| (i, i.to_string()))).unwrap();
    assert_eq!(d.remove(&10).unwrap().as_deref(), Some("10"));
    d.update([(5, "five".repeat(40)), (10, "ten".into())])
        .unwrap();
    let mut order: Vec<u32> = (0..1000).filter(|&i| i != 10).collect();
    order.push(10);
    assert_eq!(d.keys().unwrap(), order);
    let items = d.items().unwrap();
    assert_eq!(items.len(), 1000);
    assert_eq!(items[5], (5, "five".repeat(40)));
    assert_eq!(items[999], (10, "ten".to_string()));
    assert_eq!(d.values().unwrap()[998], "999");

    let l = manager.list::<String>().unwrap();
    let strings = [
        "a".repeat(300),
        String::new(),
        "b".into(),
        "c".repeat(100_000),
    ];
    l.extend(strings.clone()).unwrap();
    assert_eq!(l.to_vec().unwrap(), strings);

    let err = l
        .extend(std::iter::repeat_n(String::new(), (1 << 24) + 1))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("split")),
        "{err}"
    );
    assert_eq!(l.len().unwrap(), strings.len());
    let err = d
        .update((0..(1 << 23) + 1).map(|i| (i, String::new())))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("split")),
        "{err}"
    );
    assert_eq!(d.len().unwrap(), 1000);
}

/// The value of key `i` in the bulk tests: strings of 0 to 40 bytes, on both sides of the
/// encoder's path for short slices.
fn bulk_value(i: u32, round: u32) -> String {
    let len = ((i + round) % 41) as usize;
    format!("{round}:{i}:{}", "x".repeat(len))
}

const BULK: u32 = 1_000_000;

/// Python's `d.update(mapping)` and `l.extend(iterable)` with a million items each, into
/// a fresh dict (whose table the server sizes at once) and over keys it has: every item
/// arrives, in order, with its value.
#[test]
fn a_million_item_update_and_extend_arrive_whole() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, String>().unwrap();
    d.update((0..BULK).map(|i| (i, bulk_value(i, 0)))).unwrap();
    assert_eq!(d.len().unwrap(), BULK as usize);
    // Every other key set again, and as many new keys after the old ones.
    d.update((0..2 * BULK).step_by(2).map(|i| (i, bulk_value(i, 1))))
        .unwrap();
    let items = d.items().unwrap();
    assert_eq!(items.len(), (BULK + BULK / 2) as usize);
    for (at, (key, value)) in items.iter().enumerate() {
        let want = at as u32
            + if at < BULK as usize {
                0
            } else {
                at as u32 - BULK
            };
        let round = u32::from(want.is_multiple_of(2));
        assert_eq!((*key, value.as_str()), (want, &*bulk_value(want, round)));
    }

    let l = manager.list::<String>().unwrap();
    l.extend((0..BULK).map(|i| bulk_value(i, 2))).unwrap();
    l.extend((0..3).map(|i| bulk_value(i, 3))).unwrap();
    let all = l.to_vec().unwrap();
    assert_eq!(all.len(), BULK as usize + 3);
    assert!(all.iter().zip(0..BULK).all(|(v, i)| *v == bulk_value(i, 2)));
    assert_eq!(all[BULK as usize..], [0, 1, 2].map(|i| bulk_value(i, 3)));
}

fn bulk_writer((d, l): (DictProxy<u32, String>, ListProxy<String>)) {
    d.update((0..BULK).map(|i| (i, bulk_value(i, 0)))).unwrap();
    l.extend((0..BULK).map(|i| bulk_value(i, 1))).unwrap();
}

/// Every length of the dict and the list that `bulk_reader` saw, until `done` was set.
fn bulk_reader(
    (d, l, done): (DictProxy<u32, String>, ListProxy<String>, EventProxy),
) -> Vec<(usize, usize)> {
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let finished = done.is_set().unwrap();
        seen.insert((d.len().unwrap(), l.len().unwrap()));
        if finished {
            return seen.into_iter().collect();
        }
    }
}

/// A bulk call from one process is seen whole by another that reads meanwhile: never a
/// part of the items (the server applies a batch under the object's lock), and all of them
/// once the call returned.
#[test]
fn a_bulk_call_from_a_child_is_seen_whole_by_another_process() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, String>().unwrap();
    let l = manager.list::<String>().unwrap();
    let done = manager.event().unwrap();
    let mut reader = Process::spawn(bulk_reader, (d.clone(), l.clone(), done.clone())).unwrap();
    Process::spawn(bulk_writer, (d.clone(), l.clone()))
        .unwrap()
        .join()
        .unwrap();
    done.set().unwrap();
    let seen = reader.join().unwrap();
    let n = BULK as usize;
    assert!(
        seen.iter()
            .all(|&(dict, list)| [0, n].contains(&dict) && [0, n].contains(&list)),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&(n, n)));
    let map = d.to_map().unwrap();
    assert_eq!(map.len(), n);
    assert!((0..BULK).all(|i| map[&i] == bulk_value(i, 0)));
    assert_eq!(l.get(-1).unwrap(), Some(bulk_value(BULK - 1, 1)));
}

/// CPython's `test_nested_queue`-style nested proxies (Python 3.6+): a list stored in a
/// dict stays a live proxy when read back, in another process too.
#[test]
fn a_list_inside_a_dict_stays_live() {
    fn append_through_the_dict(d: DictProxy<String, ListProxy<u8>>) {
        d.get("inner").unwrap().unwrap().push(2).unwrap();
    }
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, ListProxy<u8>>().unwrap();
    let inner = manager.list::<u8>().unwrap();
    inner.push(1).unwrap();
    d.insert("inner".into(), inner.clone()).unwrap();
    Process::spawn(append_through_the_dict, d.clone())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(inner.to_vec().unwrap(), [1, 2]);
    assert_eq!(d.get("inner").unwrap().unwrap(), inner);
}

fn count_to((hits, n): (DictProxy<String, u64>, u64)) {
    for _ in 0..n {
        hits.update_with("total".into(), |v| *v += 1).unwrap();
    }
}

/// The classic `d[k] += 1` race has a one-call answer: four processes, an exact total.
#[test]
fn update_with_is_atomic_across_processes() {
    let manager = Manager::start().unwrap();
    let hits = manager.dict::<String, u64>().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| Process::spawn(count_to, (hits.clone(), 250)).unwrap())
        .collect();
    for mut child in children {
        child.join().unwrap();
    }
    assert_eq!(hits.get("total").unwrap(), Some(1000));
}

/// A panic in an update function is the caller's error and leaves the value as it was.
#[test]
fn a_panicking_update_fails_alone() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    d.insert(1, 255).unwrap();
    let err = d
        .update_with(1, |v| *v = v.checked_add(1).expect("overflow"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { message, .. } if message.contains("overflow")),
        "{err}"
    );
    assert_eq!(d.get(&1).unwrap(), Some(255));
    assert_eq!(d.update_with(2, |v| *v += 1).unwrap(), 1);
}

fn serve_remote((address, key, ready): (Address, Vec<u8>, proc_ipc::Connection)) {
    let server = Manager::server(address, &key).unwrap();
    ready.send(server.address()).unwrap();
    server.serve_forever().unwrap();
}

fn remote_client((address, key): (Address, Vec<u8>)) -> Vec<u32> {
    let manager = Manager::connect(address, &key).unwrap();
    let q: QueueProxy<u32> = manager.lookup("jobs").unwrap().expect("published");
    let results = manager.list::<u32>().unwrap();
    while let Ok(job) = q.get_timeout(Duration::from_secs(5)) {
        if job == 0 {
            break;
        }
        results.push(job * 10).unwrap();
    }
    manager.publish("results", &results).unwrap();
    results.to_vec().unwrap()
}

/// CPython's `_TestRemoteManager.test_remote`: a server on TCP loopback, used by a
/// process that got only the address and the key; proxies published by one client are
/// found by another.
#[test]
fn a_remote_manager_serves_a_process_that_has_only_the_address() {
    const KEY: &[u8] = b"remote key";
    let (here, there) = proc_ipc::Pipe::duplex().unwrap();
    let address: Address = "127.0.0.1:0".parse().unwrap();
    let mut server = Process::spawn(serve_remote, (address, KEY.to_vec(), there)).unwrap();
    let address: Address = here.recv().unwrap();
    let mut manager = Manager::connect(&address, KEY).unwrap();
    let jobs = manager.queue::<u32>().unwrap();
    manager.publish("jobs", &jobs).unwrap();
    for job in [1, 2, 3, 0] {
        jobs.put(job).unwrap();
    }
    let mut client = Process::spawn(remote_client, (address.clone(), KEY.to_vec())).unwrap();
    assert_eq!(client.join().unwrap(), [10, 20, 30]);
    let results: ListProxy<u32> = manager.lookup("results").unwrap().unwrap();
    assert_eq!(results.len().unwrap(), 3);
    manager.shutdown().unwrap();
    server.join_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(results.len(), Err(Error::Closed)));
}

/// A server bound to every interface hands out proxies that a client reaches by the
/// address it used.
#[test]
fn proxies_from_a_wildcard_server_point_at_the_address_the_client_used() {
    let owner = Manager::start_at("0.0.0.0:0".parse::<Address>().unwrap(), b"k").unwrap();
    let Address::Tcp(bound) = owner.address().clone() else {
        panic!("tcp")
    };
    owner.publish("l", &owner.list::<u8>().unwrap()).unwrap();
    let loopback: Address = format!("127.0.0.1:{}", bound.port()).parse().unwrap();
    let client = Manager::connect(&loopback, b"k").unwrap();
    let l: ListProxy<u8> = client.lookup("l").unwrap().unwrap();
    assert!(format!("{l:?}").contains("127.0.0.1"), "{l:?}");
    l.push(1).unwrap();
}

/// CPython's `test_wrong_authkey`-style check on a manager: a wrong key is refused and the
/// server keeps serving.
#[test]
fn a_wrong_key_is_refused_and_the_server_keeps_serving() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    for _ in 0..3 {
        let err = Manager::connect(manager.address(), b"wrong").unwrap_err();
        assert!(matches!(err, Error::AuthenticationFailed), "{err}");
    }
    d.insert(1, 1).unwrap();
    let again = Manager::connect(manager.address(), manager.authkey()).unwrap();
    assert_eq!(again.list::<u8>().unwrap().len().unwrap(), 0);
}

fn hold_and_hang((lock, sem, q, held): (LockProxy, SemaphoreProxy, QueueProxy<u8>, EventProxy)) {
    lock.acquire().unwrap().forget();
    sem.acquire().unwrap().forget();
    held.set().unwrap();
    // Waits in the middle of a call until it is killed.
    let _ = q.get();
}

/// A client killed in the middle of a call: its lock and permit come back, the item put
/// afterwards is not lost to it, and the server serves everyone else.
#[test]
fn a_client_killed_mid_call_releases_what_it_held() {
    each_method(|method| {
        let manager = Manager::start().unwrap();
        let lock = manager.lock().unwrap();
        let sem = manager.semaphore(1).unwrap();
        let q = manager.queue::<u8>().unwrap();
        let held = manager.event().unwrap();
        let child = builder(method)
            .spawn(
                hold_and_hang,
                (lock.clone(), sem.clone(), q.clone(), held.clone()),
            )
            .unwrap();
        assert!(held.wait_timeout(Duration::from_secs(30)).unwrap());
        assert!(lock.try_acquire().unwrap().is_none());
        std::thread::sleep(Duration::from_millis(100));
        child.kill().unwrap();
        let guard = lock.acquire_timeout(Duration::from_secs(30)).unwrap();
        drop(guard);
        let permit = sem.acquire_timeout(Duration::from_secs(30)).unwrap();
        drop(permit);
        // Give the server time to notice the waiting get's client is gone.
        std::thread::sleep(Duration::from_millis(300));
        q.put(7).unwrap();
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 7);
    });
}

fn push_forever(l: ListProxy<Vec<u8>>) {
    loop {
        l.extend((0..64).map(|_| vec![0u8; 1024])).unwrap();
    }
}

/// A client killed while it sends large requests leaves the server working.
#[test]
fn a_client_killed_while_sending_leaves_the_server_working() {
    let manager = Manager::start().unwrap();
    let l = manager.list::<Vec<u8>>().unwrap();
    let mut child = Process::spawn(push_forever, l.clone()).unwrap();
    eventually("the child has pushed", || l.len().unwrap() > 0);
    child.kill().unwrap();
    let _ = child.join();
    let n = l.len().unwrap();
    assert_eq!(n % 64, 0, "a torn extend: {n} items");
    l.clear().unwrap();
    assert!(l.is_empty().unwrap());
}

fn wait_at(barrier: BarrierProxy) {
    let _ = barrier.wait();
}

/// A party killed while it waits breaks the barrier for the others, and `reset` makes it
/// usable again.
#[test]
fn a_party_killed_at_a_barrier_breaks_it() {
    let manager = Manager::start().unwrap();
    let barrier = manager.barrier(3).unwrap();
    let child = Process::spawn(wait_at, barrier.clone()).unwrap();
    eventually("the child waits", || barrier.n_waiting().unwrap() == 1);
    let other = barrier.clone();
    let waiter = std::thread::spawn(move || other.wait());
    eventually("two wait", || barrier.n_waiting().unwrap() == 2);
    child.kill().unwrap();
    let err = waiter.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
    assert!(barrier.broken().unwrap());
    barrier.reset().unwrap();
    assert!(!barrier.broken().unwrap());
}

/// A server killed while clients wait: every waiting call and every later one fails with
/// `Closed`, at once.
#[test]
fn a_killed_server_fails_every_call_with_closed() {
    let manager = Manager::start_at(Address::unique_local(), b"key").unwrap();
    let q = manager.queue::<u8>().unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || q.get())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    kill9(manager.pid().unwrap());
    let started = Instant::now();
    for waiter in waiters {
        assert!(matches!(
            waiter.join().unwrap(),
            Err(proc_ipc::GetError::Closed)
        ));
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(matches!(q.put(1), Err(proc_ipc::PutError::Closed(1))));
    assert!(matches!(q.qsize(), Err(Error::Closed)));
}

/// SIGKILL (`TerminateProcess` on Windows) to a child of this process.
fn kill9(pid: u32) {
    proc_core::active_children()
        .into_iter()
        .find(|c| c.pid() == pid)
        .expect("a child of this process")
        .kill()
        .unwrap();
}

/// CPython's `_TestManagerRestart.test_rapid_restart`: a manager on a fixed address,
/// shut down and started again on the same address, serves the same client code.
#[test]
fn a_manager_restarts_on_the_same_address() {
    let address: Address = "127.0.0.1:0".parse().unwrap();
    let mut first = Manager::start_at(address, b"k").unwrap();
    let address = first.address().clone();
    let l = first.list::<u8>().unwrap();
    l.push(1).unwrap();
    first.shutdown().unwrap();
    let second = Manager::start_at(address.clone(), b"k").unwrap();
    let client = Manager::connect(&address, b"k").unwrap();
    let l2 = client.list::<u8>().unwrap();
    l2.push(2).unwrap();
    assert_eq!(l2.to_vec().unwrap(), [2]);
    // The old proxy names an object the new server never had.
    assert!(l.len().is_err());
    drop(second);
}

/// The `SyncManager` proxy tests for the primitives (`_TestLock`, `_TestSemaphore`,
/// `_TestEvent`, `_TestCondition`, `_TestBarrier` run with `TYPE = 'manager'`).
#[test]
fn sync_proxies_behave_like_the_local_primitives() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let g = lock.acquire().unwrap();
    assert!(
        lock.acquire_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    drop(g);
    lock.acquire().unwrap().forget();
    // Any process may release a manager's Lock, as in Python.
    fn release(lock: LockProxy) {
        lock.release().unwrap();
    }
    Process::spawn(release, lock.clone())
        .unwrap()
        .join()
        .unwrap();
    assert!(!lock.is_locked().unwrap());
    assert!(lock.release().is_err());

    let rlock = manager.rlock().unwrap();
    let a = rlock.acquire().unwrap();
    let b = rlock.acquire().unwrap();
    let other = rlock.clone();
    let t = std::thread::spawn(move || other.try_acquire().unwrap().is_some());
    assert!(!t.join().unwrap());
    drop((b, a));
    assert_eq!(rlock.count().unwrap(), 0);

    let bounded = manager.bounded_semaphore(2).unwrap();
    let p = bounded.acquire().unwrap();
    assert_eq!(bounded.get_value().unwrap(), 1);
    drop(p);
    assert!(bounded.release().is_err());

    let event = manager.event().unwrap();
    let setter = event.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        setter.set().unwrap();
    });
    assert!(event.wait_timeout(Duration::from_secs(30)).unwrap());
    t.join().unwrap();

    let cond = manager.condition().unwrap();
    let flag = manager.value(false).unwrap();
    let (c2, f2) = (cond.clone(), flag.clone());
    let t = std::thread::spawn(move || {
        let _g = c2.acquire().unwrap();
        f2.set(true).unwrap();
        c2.notify(1).unwrap();
    });
    let mut g = cond.acquire().unwrap();
    while !flag.get().unwrap() {
        cond.wait_timeout(&mut g, Duration::from_secs(1)).unwrap();
    }
    drop(g);
    t.join().unwrap();

    let barrier = manager.barrier(2).unwrap();
    let b2 = barrier.clone();
    let t = std::thread::spawn(move || b2.wait().unwrap());
    let mine = barrier.wait().unwrap();
    assert_eq!(mine + t.join().unwrap(), 1);
    assert_eq!(barrier.parties().unwrap(), 2);

    let array = manager.array(vec![0u32; 4]).unwrap();
    array.set(-1, 4).unwrap();
    assert_eq!(array.to_vec().unwrap(), [0, 0, 0, 4]);
}

/// A proxy travels over a connection to a running process, and a manager's queue proxy is
/// fine with several threads of one process blocking at once.
#[test]
fn proxies_cross_connections_and_threads_block_independently() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u8>().unwrap();
    let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    a.send(&q).unwrap();
    let q2: QueueProxy<u8> = b.recv().unwrap();
    let blocked = {
        let q = q.clone();
        std::thread::spawn(move || q.get())
    };
    // While one thread blocks in `get`, the others still get answers.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(q2.qsize().unwrap(), 0);
    q2.put(5).unwrap();
    assert_eq!(blocked.join().unwrap().unwrap(), 5);
}

/// Under `Fork`, a child inherits none of the parent's connections to the manager.
#[test]
fn a_forked_child_opens_its_own_connections() {
    fn use_it(l: ListProxy<u32>) {
        for i in 0..20 {
            l.push(i).unwrap();
        }
    }
    each_method(|method| {
        let manager = Manager::start().unwrap();
        let l = manager.list::<u32>().unwrap();
        l.push(0).unwrap(); // the parent now has a connection
        let children: Vec<_> = (0..3)
            .map(|_| builder(method).spawn(use_it, l.clone()).unwrap())
            .collect();
        for _ in 0..20 {
            l.len().unwrap();
        }
        for mut c in children {
            c.join().unwrap();
        }
        assert_eq!(l.len().unwrap(), 61);
    });
}

/// Dropping a manager stops its server process: no orphan is left.
#[test]
fn dropping_a_manager_stops_its_server() {
    let manager = Manager::start().unwrap();
    let l = manager.list::<u8>().unwrap();
    l.push(1).unwrap();
    let pid = manager.pid().unwrap();
    drop(manager);
    assert!(proc_core::active_children().iter().all(|c| c.pid() != pid));
    assert!(matches!(l.push(2), Err(Error::Closed)));
}

#[cfg(unix)]
fn start_and_wait(report: proc_ipc::Sender<u32>) {
    let manager = Manager::start().unwrap();
    report.send(manager.pid().unwrap()).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A manager whose parent is killed stops: no orphan server is left behind (the server is
/// a daemonic child).
#[cfg(unix)]
#[test]
fn a_manager_whose_parent_is_killed_stops() {
    let (tx, rx) = proc_ipc::channel::<u32>().unwrap();
    let parent = Process::spawn(start_and_wait, tx).unwrap();
    let server = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(procs_testkit::alive(server));
    parent.kill().unwrap();
    eventually("the orphaned server ends", || !procs_testkit::alive(server));
}

fn get_until_closed(q: QueueProxy<u8>) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(item) => got.push(item),
            Err(err) => return (got, err.is_closed()),
        }
    }
}

/// A queue proxy shut down by one process wakes the consumers blocked in others, after
/// they took what was left (Python 3.13's `Queue.shutdown` on a manager's queue).
#[test]
fn a_shut_down_queue_proxy_wakes_blocked_consumers() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u8>().unwrap();
    let consumer = Process::spawn(get_until_closed, q.clone()).unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    q.shutdown(false).unwrap();
    let (got, closed) = { consumer }.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(closed);
    assert!(q.put(9).unwrap_err().is_closed());
}
