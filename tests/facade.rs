//! Every re-export of the `procs` facade, touched once, so that none disappears silently.

use std::time::Duration;

use procs::{
    ActiveChild, Builder, Context, CurrentProcess, Error, ParentProcess, Process, Result, Sentinel,
    StartMethod, Task, active_children, codec, context, cpu_count, current_process,
    get_start_method, getpid, getppid, init, parent_process, set_start_method,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Echo(String);

impl Task for Echo {
    type Output = String;
    fn run(self) -> String {
        self.0
    }
}

fn parent_of_child(_: ()) -> Option<u32> {
    let parent: Option<ParentProcess> = parent_process();
    parent.map(|p| p.pid())
}

#[test]
fn every_root_item_is_reachable() {
    init();
    let me: CurrentProcess = current_process();
    assert_eq!(me.pid(), getpid());
    assert_ne!(getppid(), 0);
    assert!(cpu_count() >= 1);
    assert!(parent_process().is_none());

    let ctx: Context = context(StartMethod::Spawn).unwrap();
    let builder: Builder = ctx.builder();
    let mut p: Process<Option<u32>> = builder.spawn(parent_of_child, ()).unwrap();
    let sentinel: Sentinel = p.sentinel().unwrap();
    let listed: Vec<ActiveChild> = active_children();
    assert!(listed.iter().any(|c| Some(c.pid()) == p.pid()) || !p.is_alive());
    assert_eq!(p.join().unwrap(), Some(getpid()));
    assert!(sentinel.is_ready());

    let mut t = Process::spawn_task(Echo("echo".into())).unwrap();
    assert_eq!(t.join().unwrap(), "echo");

    // `set_start_method` fixes the method once; `get_start_method` already fixed it here.
    let method = get_start_method();
    assert!(matches!(
        set_start_method(method),
        Err(Error::InvalidState(_))
    ));

    let bytes = codec::encode(&(1u8, 2u16)).unwrap();
    let back: Result<(u8, u16)> = codec::decode(&bytes);
    assert_eq!(back.unwrap(), (1, 2));

    let mut slow = Process::spawn(std::thread::sleep, Duration::from_secs(30)).unwrap();
    assert!(
        slow.join_timeout(Duration::from_millis(1))
            .unwrap_err()
            .is_timeout()
    );
    slow.kill().unwrap();
    assert!(slow.join().is_err());
}

#[test]
fn every_crate_is_a_module() {
    assert!(procs::core::cpu_count() >= 1);
    assert!(procs::ipc::core::cpu_count() >= 1);
    assert!(procs::sync::core::cpu_count() >= 1);
    assert!(procs::pool::core::cpu_count() >= 1);
}

fn add_under_lock((total, done): (procs::Value<u64>, procs::Event)) {
    total.with_lock(|t| *t += 1);
    done.set();
}

#[test]
fn every_ipc_and_sync_root_item_is_reachable() {
    let (a, b): (procs::Connection, procs::Connection) = procs::Pipe::duplex().unwrap();
    a.send(&"hi").unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "hi");
    let address: procs::Address = procs::Address::unique_local();
    let listener = procs::Listener::bind(address, Some(b"key")).unwrap();
    let to = listener.address().clone();
    let client = std::thread::spawn(move || {
        procs::Client::connect(to, Some(b"key"))
            .unwrap()
            .recv::<u8>()
            .unwrap()
    });
    listener.accept().unwrap().send(&7u8).unwrap();
    assert_eq!(client.join().unwrap(), 7);

    let q: procs::Queue<u8> = procs::Queue::new().unwrap();
    let jq: procs::JoinableQueue<u8> = procs::JoinableQueue::new().unwrap();
    let sq: procs::SimpleQueue<u8> = procs::SimpleQueue::new().unwrap();
    q.put(1).unwrap();
    jq.put(2).unwrap();
    sq.put(3).unwrap();
    let objects: [&dyn procs::Waitable; 3] = [&q, &jq, &sq];
    assert_eq!(procs::wait(&objects, None).unwrap(), [0, 1, 2]);
    let full = procs::Queue::with_maxsize(1).unwrap();
    full.put(0u8).unwrap();
    let refused: procs::PutError<u8> = full.put_nowait(1).unwrap_err();
    assert_eq!(refused.into_inner(), 1);

    let total = procs::Value::new(0u64).unwrap();
    let done = procs::Event::new().unwrap();
    let mut p = Process::spawn(add_under_lock, (total.clone(), done.clone())).unwrap();
    p.join().unwrap();
    assert!(done.is_set());
    assert_eq!(total.get(), 1);

    let lock = procs::Lock::new().unwrap();
    drop(lock.acquire());
    let rlock = procs::RLock::new().unwrap();
    let outer = rlock.acquire();
    drop(rlock.acquire());
    drop(outer);
    assert!(procs::Semaphore::new(1).unwrap().try_acquire().is_some());
    assert!(procs::BoundedSemaphore::new(1).unwrap().release().is_err());
    let _ = procs::Condition::new().unwrap();
    assert_eq!(procs::Barrier::new(1).unwrap().wait().unwrap(), 0);
    let barrier: procs::BarrierBuilder = procs::Barrier::builder(1);
    assert_eq!(barrier.build().unwrap().wait().unwrap(), 0);
    fn lock_of<L: procs::SharedLock>(v: &procs::Value<u8, L>) -> &L {
        v.get_lock()
    }
    assert!(!lock_of(&procs::Value::new(0u8).unwrap()).is_locked());
    assert_eq!(procs::Array::<u8>::from_slice(&[1, 2]).unwrap().len(), 2);
    assert_eq!(procs::SharedMemory::create(64).unwrap().size(), 64);
    let timer = procs::Timer::start(Duration::ZERO, || ()).unwrap();
    timer.join().unwrap();
}

#[test]
fn every_pool_root_item_is_reachable() {
    let builder: procs::PoolBuilder = procs::Pool::builder().processes(1);
    let pool: procs::Pool = builder.build().unwrap();
    let squares: procs::Imap<std::vec::IntoIter<u32>, u32> =
        pool.imap(|x: u32| x * x, vec![2, 3]).unwrap();
    assert_eq!(squares.map(Result::unwrap).collect::<Vec<_>>(), [4, 9]);
    let result: procs::AsyncResult<u8> = pool.apply_async(|x: u8| x + 1, 1).unwrap();
    assert_eq!(result.get().unwrap(), 2);
    let star = |a: u8, b: u8| a * b;
    assert_eq!(procs::StarFn::call_star(&star, (2, 3)), 6);

    let threads = procs::ThreadPool::new(1).unwrap();
    assert_eq!(threads.apply(|x: u8| x, 5).unwrap(), 5);

    let executor_builder: procs::ThreadPoolExecutorBuilder =
        procs::ThreadPoolExecutor::builder().max_workers(2);
    let threads: procs::ThreadPoolExecutor = executor_builder.build().unwrap();
    let process_builder: procs::ProcessPoolExecutorBuilder =
        procs::ProcessPoolExecutor::builder().max_workers(1);
    let processes: procs::ProcessPoolExecutor = process_builder.build().unwrap();
    let futures: Vec<procs::Future<u8>> = vec![
        threads.submit(|x: u8| x, 1).unwrap(),
        processes.submit(|x: u8| x, 2).unwrap(),
    ];
    let (done, not_done) = procs::pool::wait(&futures, None, procs::ReturnWhen::AllCompleted);
    assert_eq!((done.len(), not_done.len()), (2, 0));
    let completed: procs::AsCompleted<u8> = procs::as_completed(&futures, None);
    assert_eq!(
        completed.map(|f| f.unwrap().result().unwrap()).sum::<u8>(),
        3
    );
}

fn bump(
    (d, l, q): (
        procs::DictProxy<u8, u8>,
        procs::ListProxy<u8>,
        procs::QueueProxy<u8>,
    ),
) {
    d.insert(1, 1).unwrap();
    l.push(2).unwrap();
    q.put(3).unwrap();
}

#[test]
fn every_manager_item_is_reachable() {
    init();
    let manager: procs::Manager = procs::Manager::start().unwrap();
    let d: procs::DictProxy<u8, u8> = manager.dict().unwrap();
    let l: procs::ListProxy<u8> = manager.list().unwrap();
    let q: procs::JoinableQueueProxy<u8> = manager.joinable_queue().unwrap();
    Process::spawn(bump, (d.clone(), l.clone(), q.clone()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        (d.get(&1).unwrap(), l.get(0).unwrap(), q.get().unwrap()),
        (Some(1), Some(2), 3)
    );
    let ns: procs::NamespaceProxy = manager.namespace().unwrap();
    ns.set("x", &1).unwrap();
    let lock: procs::LockProxy = manager.lock().unwrap();
    let guard: procs::ProxyGuard<'_> = lock.acquire().unwrap();
    drop(guard);
    let _: procs::RLockProxy = manager.rlock().unwrap();
    let _: procs::SemaphoreProxy = manager.semaphore(1).unwrap();
    let _: procs::EventProxy = manager.event().unwrap();
    let _: procs::ConditionProxy = manager.condition().unwrap();
    let _: procs::BarrierProxy = manager.barrier(1).unwrap();
    let _: procs::ValueProxy<u8> = manager.value(1).unwrap();
    let _: procs::ArrayProxy<u8> = manager.array(vec![1]).unwrap();
    let _: procs::QueueProxy<u8> = manager.queue().unwrap();
    let _: Option<procs::Proxy<Counter>> = None;
}

#[derive(Serialize, Deserialize)]
struct Counter(u8);

impl procs::SharedObject for Counter {
    type Request = ();
    type Response = u8;
    fn handle(&mut self, (): ()) -> u8 {
        self.0
    }
}

#[test]
fn one_error_model_serves_both_queue_families() {
    let threads: procs::queue::Queue<u8> = procs::queue::Queue::new();
    let processes: procs::Queue<u8> = procs::Queue::new().unwrap();
    let a: procs::GetError = threads.get_nowait().unwrap_err();
    let b: procs::GetError = processes.get_nowait().unwrap_err();
    assert_eq!(a, b);
    assert!(a.is_empty());
    let full = procs::queue::Queue::with_maxsize(1);
    full.put(1).unwrap();
    let refused: procs::PutError<u8> = full.put_nowait(2).unwrap_err();
    assert!(refused.is_full());
}
