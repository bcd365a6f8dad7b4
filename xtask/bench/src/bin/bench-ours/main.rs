//! procs measured by `cargo xtask bench`: every benchmark of ours, through the `procs` facade.
//!
//! Benchmarks:
//!
//! - `process-start <method>`: start and join a process that runs an empty function, with the
//!   start method `spawn`, `fork` or `forkserver`.
//! - `process-start-load <method>`: the same while three busy-loop processes of this program
//!   (`busy-loop`, see `procs_bench::Load`) keep the CPUs busy.
//! - `process-start-10mb <method>`, `process-start-1gb <method>`: the same from a parent whose
//!   heap holds 10 MiB (1 GiB) of written memory.
//! - `lock-uncontended`: acquire and release a `procs::sync::Lock` in one thread.
//! - `mutex-uncontended`: the same with `std::sync::Mutex`, the floor.
//! - `lock-contended`: two processes acquire and release one `Lock` in a loop; the time is
//!   per acquire/release of either.
//! - `event-roundtrip`: a ping-pong of two `Event`s between two processes; the time is one
//!   round trip.
//! - `value-increments`: two processes add 1 to a `Value<i64>` under its lock; the time is
//!   per increment of either.
//! - `value-uncontended`: the same increment in one thread of one process.
//! - `codec`: the `(u32, String)` of `pipe-roundtrip object` through `procs::codec::encode`
//!   and `decode`, in one process; the time is per encode+decode.
//! - `pipe-roundtrip object`: a `(u32, String)` through a `Pipe` to a child and back; the time
//!   is one round trip.
//! - `pipe-roundtrip bytes`: 64 bytes with `send_bytes`/`recv_bytes`, there and back.
//! - `pipe-bandwidth`: 1 MB messages one way with `send_bytes`; the time is per message, until
//!   the child has received them all.
//! - `queue-small [queue|simple]`: a producer process puts `u64` counters into a `Queue` (or a
//!   `SimpleQueue`), this process gets them; the time is per item, from the producer's go to
//!   the last item taken.
//! - `queue-100kb [queue|simple]`: the same with items of 100 KB, as `serde_bytes::ByteBuf`
//!   (which serde encodes in one copy; a `Vec<u8>` goes byte by byte). `put` takes its item,
//!   so the producer makes a new one for each, as a program would.
//! - `queue-producers <P>to<C>`: P producer processes put `--iterations` `u64`s in all into
//!   one `Queue`, and C consumers (this process and C - 1 children) get them; the time is per
//!   item, from the go (a barrier of all of them) until every consumer is done.
//! - `thread-queue`: a thread puts `--iterations` `u64`s into a `procs::queue::Queue` (the
//!   thread queue), this thread gets them; the time is per item.
//!
//! - `pool-map default|chunk1`: `Pool(2).map` over `--iterations` tiny tasks, with Python's
//!   default chunks or one item per chunk; the time is per task.
//! - `pool-apply-async`: `Pool(2).apply_async` of `--iterations` tiny tasks, then every `get`.
//! - `executor-submit`: `ProcessPoolExecutor(2).submit` of tiny tasks, then every `result`.
//! - `executor-map 1|1000`: `ProcessPoolExecutor(2).map_with` with that chunk size.
//! - `thread-executor-submit`: `ThreadPoolExecutor(4).submit` of no-op closures, then every
//!   `result`.
//! - `cpu-scaling 1|2`: 16 tasks of about 50 ms of arithmetic on a `Pool` of 1 or 2
//!   workers; the time is per task.
//! - `manager-dict`: a child process sets and gets keys of a `Manager`'s dict (`insert`,
//!   then `get`), `--iterations` times each; the time is per call, one round trip to the
//!   manager's server each.
//! - `manager-queue`: `queue-small` through a `Manager`'s queue: a producer process puts
//!   `u64` counters, this process gets them; the time is per item.
//! - `manager-update`, `manager-extend`: `--iterations` calls of `DictProxy::update` (or
//!   `ListProxy::extend`, on a list cleared between calls, untimed) of 100,000 `u64`s; the
//!   time is per item.
//!
//! The synchronization, queue and pool benchmarks take `--iterations` as the number of operations
//! and time them in one stretch (a clock read per operation would cost more than the
//! operation).

mod manager;

use std::error::Error;
use std::process::ExitCode;

use std::time::{Duration, Instant};

use procs::ipc::{Connection, Pipe, Queue, SimpleQueue};
use procs::sync::{Barrier, BoundedSemaphore, Event, Lock, Value};
use procs::{Pool, Process, ProcessPoolExecutor, StartMethod, ThreadPoolExecutor};
use procs_bench::{
    Args, Load, busy, measure, report, rounds_for_50ms, time_tiny, tiny, touched_heap,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

fn main() -> ExitCode {
    procs::init();
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match args.benchmark.as_str() {
        "process-start" | "process-start-load" | "process-start-10mb" | "process-start-1gb" => {
            process_start(&args)
        }
        procs_bench::BUSY_LOOP => procs_bench::busy_loop(),
        "lock-uncontended" => lock_uncontended(&args),
        "mutex-uncontended" => mutex_uncontended(&args),
        "semaphore-uncontended" => semaphore_uncontended(&args),
        "lock-contended" => lock_contended(&args),
        "event-roundtrip" => event_roundtrip(&args),
        "value-increments" => value_increments(&args),
        "value-uncontended" => value_uncontended(&args),
        "codec" => codec(&args),
        "pipe-roundtrip" => pipe_roundtrip(&args),
        "pipe-bandwidth" => pipe_bandwidth(&args),
        "queue-small" | "queue-100kb" => queue(&args),
        "queue-producers" => queue_producers(&args),
        "thread-queue" => thread_queue(&args),
        "pool-map" => pool_map(&args),
        "pool-apply-async" => pool_apply_async(&args),
        "executor-submit" => executor_submit(&args),
        "executor-map" => executor_map(&args),
        "thread-executor-submit" => thread_executor_submit(&args),
        "cpu-scaling" => cpu_scaling(&args),
        "manager-dict" | "manager-queue" | "manager-update" | "manager-extend" => {
            manager::run(&args)
        }
        other => Err(format!(
            "unknown benchmark {other:?}; known: process-start, process-start-load, \
             process-start-10mb, process-start-1gb, lock-uncontended, mutex-uncontended, \
             semaphore-uncontended, \
             lock-contended, event-roundtrip, value-increments, value-uncontended, codec, \
             pipe-roundtrip, pipe-bandwidth, queue-small, queue-100kb, queue-producers, \
             thread-queue, pool-map, pool-apply-async, executor-submit, executor-map, thread-executor-submit, \
             cpu-scaling, manager-dict, manager-queue, manager-update, manager-extend"
        )
        .into()),
    }
}

/// The child's work: nothing, so that only starting and joining the process is measured.
fn empty((): ()) {}

fn process_start(args: &Args) -> Result<(), Box<dyn Error>> {
    let method: StartMethod = args.parameter.parse()?;
    // What the parent holds while it starts and joins: busy processes, or a heap. Both live
    // until the end of the measurement (the load is killed when it drops, on errors too).
    let (kind, _load, _heap) = match args.benchmark.as_str() {
        "process-start-load" => (
            "process_start_load",
            Some(Load::start(procs_bench::LOAD_PROCESSES)?),
            Vec::new(),
        ),
        "process-start-10mb" => ("process_start_10mb", None, touched_heap(10 << 20)),
        "process-start-1gb" => ("process_start_1gb", None, touched_heap(1 << 30)),
        _ => ("process_start", None, Vec::new()),
    };
    let name = format!("{kind}/ours/{method}");
    measure(&name, args, || {
        Process::builder()
            .start_method(method)
            .spawn(empty, ())?
            .join()
    })?;
    Ok(())
}

/// Runs `op` `warmup` times, then `iterations` times in one timed stretch.
fn time_loop(args: &Args, mut op: impl FnMut()) -> Duration {
    for _ in 0..args.warmup {
        op();
    }
    let start = Instant::now();
    for _ in 0..args.iterations {
        op();
    }
    start.elapsed()
}

fn lock_uncontended(args: &Args) -> Result<(), Box<dyn Error>> {
    let lock = Lock::new()?;
    let elapsed = time_loop(args, || drop(std::hint::black_box(lock.acquire())));
    report("lock_uncontended/ours", elapsed, args.iterations.into());
    Ok(())
}

fn semaphore_uncontended(args: &Args) -> Result<(), Box<dyn Error>> {
    let sem = BoundedSemaphore::new(2)?;
    let elapsed = time_loop(args, || drop(std::hint::black_box(sem.acquire())));
    if sem.get_value() != 2 {
        return Err(format!("the semaphore lost places: {} of 2 free", sem.get_value()).into());
    }
    report(
        "semaphore_uncontended/ours",
        elapsed,
        args.iterations.into(),
    );
    Ok(())
}

fn mutex_uncontended(args: &Args) -> Result<(), Box<dyn Error>> {
    let mutex = std::sync::Mutex::new(());
    let elapsed = time_loop(args, || drop(std::hint::black_box(mutex.lock())));
    report("lock_uncontended/std", elapsed, args.iterations.into());
    Ok(())
}

/// The other process of a two-process benchmark: waits for `go`, runs `n` operations of
/// `kind`, and sets `done`.
fn partner((kind, lock, value, go, done, n): (String, Lock, Value<i64>, Event, Event, u32)) {
    go.wait();
    for _ in 0..n {
        match kind.as_str() {
            "lock" => drop(std::hint::black_box(lock.acquire())),
            _ => value.with_lock(|v| *v += 1),
        }
    }
    done.set();
}

/// Two processes run `n` operations each; the time is per operation of either.
fn two_processes(args: &Args, kind: &str, name: &str) -> Result<(), Box<dyn Error>> {
    let lock = Lock::new()?;
    let value = Value::new(0i64)?;
    let (go, done) = (Event::new()?, Event::new()?);
    let n = args.iterations;
    let mut child = Process::builder().start_method(StartMethod::Spawn).spawn(
        partner,
        (
            kind.to_string(),
            lock.clone(),
            value.clone(),
            go.clone(),
            done.clone(),
            n,
        ),
    )?;
    let start = Instant::now();
    go.set();
    for _ in 0..n {
        match kind {
            "lock" => drop(std::hint::black_box(lock.acquire())),
            _ => value.with_lock(|v| *v += 1),
        }
    }
    done.wait();
    let elapsed = start.elapsed();
    child.join()?;
    if kind == "value" && value.get() != 2 * i64::from(n) {
        return Err(format!("lost increments: {} of {}", value.get(), 2 * n).into());
    }
    report(name, elapsed, 2 * u64::from(n));
    Ok(())
}

fn lock_contended(args: &Args) -> Result<(), Box<dyn Error>> {
    two_processes(args, "lock", "lock_contended/ours")
}

fn value_increments(args: &Args) -> Result<(), Box<dyn Error>> {
    two_processes(args, "value", "value_increments/ours")
}

fn value_uncontended(args: &Args) -> Result<(), Box<dyn Error>> {
    let value = Value::new(0i64)?;
    let elapsed = time_loop(args, || value.with_lock(|v| *v += 1));
    let expected = i64::from(args.warmup) + i64::from(args.iterations);
    if value.get() != expected {
        return Err(format!("lost increments: {} of {expected}", value.get()).into());
    }
    report("value_uncontended/ours", elapsed, args.iterations.into());
    Ok(())
}

fn codec(args: &Args) -> Result<(), Box<dyn Error>> {
    let value = (1u32, String::from("hello"));
    let round = || -> procs::Result<()> {
        let bytes = procs::codec::encode(std::hint::black_box(&value))?;
        let back: (u32, String) = procs::codec::decode(std::hint::black_box(&bytes))?;
        std::hint::black_box(back);
        Ok(())
    };
    for _ in 0..args.warmup {
        round()?;
    }
    let start = Instant::now();
    for _ in 0..args.iterations {
        round()?;
    }
    report("codec/ours", start.elapsed(), args.iterations.into());
    Ok(())
}

/// The echo side of the round trip: waits for ping, clears it, sets pong; `n` times.
fn pong((ping, pong, n): (Event, Event, u32)) {
    for _ in 0..n {
        ping.wait();
        ping.clear();
        pong.set();
    }
}

fn event_roundtrip(args: &Args) -> Result<(), Box<dyn Error>> {
    let (ping, pong_event) = (Event::new()?, Event::new()?);
    let n = args.warmup + args.iterations;
    let mut child = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(pong, (ping.clone(), pong_event.clone(), n))?;
    let round = || {
        ping.set();
        pong_event.wait();
        pong_event.clear();
    };
    let elapsed = time_loop(args, round);
    child.join()?;
    report("event_roundtrip/ours", elapsed, args.iterations.into());
    Ok(())
}

/// The bytes of a `pipe-roundtrip bytes` message and of a `pipe-bandwidth` message.
const SMALL: usize = 64;
const LARGE: usize = 1 << 20;

/// The partner of the pipe benchmarks: echoes objects (`"object"`) or bytes (`"bytes"`) until
/// an empty message, or (`"bandwidth"`) takes messages until an empty one and then says so.
fn pipe_partner((mode, conn): (String, Connection)) {
    match mode.as_str() {
        "object" => {
            while let Ok((n, text)) = conn.recv::<(u32, String)>() {
                if text.is_empty() {
                    return;
                }
                conn.send(&(n, text)).unwrap();
            }
        }
        "bytes" => {
            while let Ok(message) = conn.recv_bytes() {
                if message.is_empty() {
                    return;
                }
                conn.send_bytes(&message).unwrap();
            }
        }
        _ => {
            while conn.recv_bytes().is_ok_and(|m| !m.is_empty()) {}
            conn.send_bytes(b"done").unwrap();
        }
    }
}

fn start_partner(mode: &str) -> Result<(Process<()>, Connection), Box<dyn Error>> {
    let (here, there) = Pipe::duplex()?;
    let child = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(pipe_partner, (mode.to_string(), there))?;
    Ok((child, here))
}

fn pipe_roundtrip(args: &Args) -> Result<(), Box<dyn Error>> {
    match args.parameter.as_str() {
        "object" => {
            let (mut child, conn) = start_partner("object")?;
            measure("pipe_rt_object/ours", args, || {
                conn.send(&(1u32, "hello"))?;
                conn.recv::<(u32, String)>().map(drop)
            })?;
            conn.send(&(0u32, ""))?;
            child.join()?;
        }
        "bytes" => {
            let (mut child, conn) = start_partner("bytes")?;
            let message = [7u8; SMALL];
            let mut buf = [0u8; SMALL];
            measure("pipe_rt_bytes/ours", args, || {
                conn.send_bytes(&message)?;
                conn.recv_bytes_into(&mut buf).map(drop)
            })?;
            conn.send_bytes(&[])?;
            child.join()?;
        }
        other => return Err(format!("pipe-roundtrip takes object or bytes, not {other:?}").into()),
    }
    Ok(())
}

fn pipe_bandwidth(args: &Args) -> Result<(), Box<dyn Error>> {
    let (mut child, conn) = start_partner("bandwidth")?;
    let message = vec![7u8; LARGE];
    for _ in 0..args.warmup {
        conn.send_bytes(&message)?;
    }
    let start = Instant::now();
    for _ in 0..args.iterations {
        conn.send_bytes(&message)?;
    }
    conn.send_bytes(&[])?;
    // Timed until the partner has taken every message, not only until they are written.
    conn.recv_bytes()?;
    let elapsed = start.elapsed();
    child.join()?;
    report("pipe_1mb/ours", elapsed, args.iterations.into());
    Ok(())
}

/// The bytes of a `queue-100kb` item.
const QUEUE_ITEM: usize = 100_000;

/// What the queue benchmarks move: `u64` counters, or `QUEUE_ITEM` bytes as a `ByteBuf`.
trait Item: Serialize + DeserializeOwned + Send + 'static {
    /// The `i`th item the producer puts, made new.
    fn nth(i: u64) -> Self;
    /// Whether this is the `i`th item, so that a lost or reordered item fails the benchmark.
    fn is_nth(&self, i: u64) -> bool;
}

impl Item for u64 {
    fn nth(i: u64) -> u64 {
        i
    }

    fn is_nth(&self, i: u64) -> bool {
        *self == i
    }
}

/// The bytes of the `i`th item are the low byte of `i`, a mark that the consumer checks.
impl Item for ByteBuf {
    fn nth(i: u64) -> ByteBuf {
        ByteBuf::from(vec![i as u8; QUEUE_ITEM])
    }

    fn is_nth(&self, i: u64) -> bool {
        self.len() == QUEUE_ITEM && self[0] == i as u8
    }
}

/// Our queues (and the manager's, in `manager.rs`), behind one interface so that one
/// producer and one consumer serve them all.
trait BenchQueue<T>: Clone + Serialize + DeserializeOwned + Send + 'static {
    /// `put`, without the item on failure.
    fn put_item(&self, item: T) -> procs::Result<()>;
    fn get_item(&self) -> procs::Result<T>;
}

impl<T: Item> BenchQueue<T> for Queue<T> {
    fn put_item(&self, item: T) -> procs::Result<()> {
        self.put(item).map_err(procs::Error::from)
    }

    fn get_item(&self) -> procs::Result<T> {
        self.get().map_err(procs::Error::from)
    }
}

impl<T: Item> BenchQueue<T> for SimpleQueue<T> {
    fn put_item(&self, item: T) -> procs::Result<()> {
        self.put(item).map_err(procs::Error::from)
    }

    fn get_item(&self) -> procs::Result<T> {
        self.get().map_err(procs::Error::from)
    }
}

/// The producer of the queue benchmarks: puts `warm` items, waits for `go`, then puts `n`
/// more.
fn queue_producer<Q: BenchQueue<T>, T: Item>((queue, go, warm, n): (Q, Event, u64, u64)) {
    for i in 0..warm {
        queue.put_item(T::nth(i)).unwrap();
    }
    go.wait();
    for i in warm..warm + n {
        queue.put_item(T::nth(i)).unwrap();
    }
}

fn queue(args: &Args) -> Result<(), Box<dyn Error>> {
    match (args.benchmark.as_str(), args.parameter.as_str()) {
        ("queue-small", "" | "queue") => {
            queue_transfer::<_, u64>("queue_small/ours/queue", args, Queue::new()?)
        }
        ("queue-small", "simple") => {
            queue_transfer::<_, u64>("queue_small/ours/simple", args, SimpleQueue::new()?)
        }
        ("queue-100kb", "" | "queue") => {
            queue_transfer::<_, ByteBuf>("queue_100kb/ours/queue", args, Queue::new()?)
        }
        ("queue-100kb", "simple") => {
            queue_transfer::<_, ByteBuf>("queue_100kb/ours/simple", args, SimpleQueue::new()?)
        }
        (benchmark, other) => {
            Err(format!("{benchmark} takes queue or simple, not {other:?}").into())
        }
    }
}

/// One producer process puts `--iterations` items into `queue`, this process gets them; the
/// time is from the producer's go to the last item taken.
fn queue_transfer<Q: BenchQueue<T>, T: Item>(
    name: &str,
    args: &Args,
    queue: Q,
) -> Result<(), Box<dyn Error>> {
    let go = Event::new()?;
    // At least one item goes before timing: it shows that the producer runs.
    let warm = u64::from(args.warmup.max(1));
    let n = u64::from(args.iterations);
    let mut child = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(queue_producer::<Q, T>, (queue.clone(), go.clone(), warm, n))?;
    let take = |i: u64| -> Result<(), Box<dyn Error>> {
        if queue.get_item()?.is_nth(i) {
            Ok(())
        } else {
            Err(format!("item {i} came out of order").into())
        }
    };
    for i in 0..warm {
        take(i)?;
    }
    let start = Instant::now();
    go.set();
    for i in warm..warm + n {
        take(i)?;
    }
    let elapsed = start.elapsed();
    child.join()?;
    report(name, elapsed, n);
    Ok(())
}

/// The producers and consumers of `queue-producers`, from its parameter `<P>to<C>`.
fn producers_consumers(parameter: &str) -> Result<(u32, u32), Box<dyn Error>> {
    let parsed = parameter
        .split_once("to")
        .and_then(|(p, c)| Some((p.parse::<u32>().ok()?, c.parse::<u32>().ok()?)));
    match parsed {
        Some((p, c)) if p >= 1 && c >= 1 => Ok((p, c)),
        _ => Err(format!("queue-producers takes <P>to<C>, such as 2to1, not {parameter:?}").into()),
    }
}

/// How long the processes of `queue-producers` wait at their barrier for the others to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The mark a producer puts after its items, once per consumer: a consumer stops at its
/// `P`th. Every producer's items come before its marks, so that once every mark is taken,
/// every item is.
const END: u64 = u64::MAX;

/// A producer of `queue-producers`: waits at the barrier, puts `items`, then one [`END`] for
/// each of the `consumers`.
fn fan_producer((queue, go, items, consumers): (Queue<u64>, Barrier, std::ops::Range<u64>, u32)) {
    go.wait().unwrap();
    for i in items {
        queue.put(i).unwrap();
    }
    for _ in 0..consumers {
        queue.put(END).unwrap();
    }
}

/// A consumer of `queue-producers`: gets until it has taken `producers` [`END`]s; the count
/// and sum of the items it took.
fn fan_consume(queue: &Queue<u64>, producers: u32) -> procs::Result<(u64, u64)> {
    let (mut ends, mut count, mut sum) = (0, 0u64, 0u64);
    while ends < producers {
        match queue.get()? {
            END => ends += 1,
            item => {
                count += 1;
                sum = sum.wrapping_add(item);
            }
        }
    }
    Ok((count, sum))
}

/// A consumer in a child process: waits at the barrier, consumes, sets `done`.
fn fan_consumer((queue, go, done, producers): (Queue<u64>, Barrier, Event, u32)) -> (u64, u64) {
    go.wait().unwrap();
    let taken = fan_consume(&queue, producers).unwrap();
    done.set();
    taken
}

fn queue_producers(args: &Args) -> Result<(), Box<dyn Error>> {
    let (producers, consumers) = producers_consumers(&args.parameter)?;
    let n = u64::from(args.iterations) / u64::from(producers) * u64::from(producers);
    let share = n / u64::from(producers);
    let queue = Queue::new()?;
    // A child that cannot start leaves the others at the barrier: they give up after a while.
    let go = Barrier::with_timeout(producers + consumers, START_TIMEOUT)?;
    let mut spawn = Process::builder();
    spawn.start_method(StartMethod::Spawn);
    let mut producing = Vec::new();
    for p in 0..u64::from(producers) {
        let items = p * share..(p + 1) * share;
        producing.push(spawn.spawn(fan_producer, (queue.clone(), go.clone(), items, consumers))?);
    }
    let mut consuming = Vec::new();
    for _ in 1..consumers {
        let done = Event::new()?;
        let child = spawn.spawn(
            fan_consumer,
            (queue.clone(), go.clone(), done.clone(), producers),
        )?;
        consuming.push((child, done));
    }
    go.wait()?;
    let start = Instant::now();
    let mine = fan_consume(&queue, producers)?;
    for (_, done) in &consuming {
        done.wait();
    }
    let elapsed = start.elapsed();
    for mut child in producing {
        child.join()?;
    }
    let (mut count, mut sum) = mine;
    for (mut child, _) in consuming {
        let (c, s) = child.join()?;
        count += c;
        sum = sum.wrapping_add(s);
    }
    // 0 + 1 + ... + (n - 1), each item once.
    let expected = (n * n.saturating_sub(1) / 2, n);
    if (sum, count) != expected {
        return Err(format!(
            "took {count} items summing to {sum}, not {n} summing to {}",
            expected.0
        )
        .into());
    }
    report(
        &format!("queue_producers/ours/{}", args.parameter),
        elapsed,
        n,
    );
    Ok(())
}

fn thread_queue(args: &Args) -> Result<(), Box<dyn Error>> {
    let queue = procs::queue::Queue::new();
    procs_bench::time_thread_queue(
        "thread_queue/ours",
        args,
        |i| Ok(queue.put(i)?),
        || Ok(queue.get()?),
    )
}

fn pool_map(args: &Args) -> Result<(), Box<dyn Error>> {
    let pool = Pool::new(2)?;
    match args.parameter.as_str() {
        "chunk1" => time_tiny("pool_map_chunk1/ours", args, |n| {
            pool.map_chunked(tiny, 0..n, 1)
        }),
        _ => time_tiny("pool_map_default/ours", args, |n| pool.map(tiny, 0..n)),
    }
}

fn pool_apply_async(args: &Args) -> Result<(), Box<dyn Error>> {
    let pool = Pool::new(2)?;
    time_tiny("pool_apply_async/ours", args, |n| {
        let pending: Vec<_> = (0..n)
            .map(|i| pool.apply_async(tiny, i))
            .collect::<Result<_, _>>()?;
        pending.into_iter().map(|r| r.get()).collect()
    })
}

fn executor_submit(args: &Args) -> Result<(), Box<dyn Error>> {
    let executor = ProcessPoolExecutor::new(2)?;
    time_tiny("executor_submit/ours", args, |n| {
        let futures: Vec<_> = (0..n)
            .map(|i| executor.submit(tiny, i))
            .collect::<Result<_, _>>()?;
        futures.iter().map(|f| f.result()).collect()
    })
}

fn executor_map(args: &Args) -> Result<(), Box<dyn Error>> {
    let chunksize: usize = args.parameter.parse()?;
    let executor = ProcessPoolExecutor::new(2)?;
    time_tiny(&format!("executor_map_{chunksize}/ours"), args, |n| {
        executor.map_with(tiny, 0..n, chunksize, None)?.collect()
    })
}

fn thread_executor_submit(args: &Args) -> Result<(), Box<dyn Error>> {
    let executor = ThreadPoolExecutor::new(4)?;
    time_tiny("thread_executor_submit/ours", args, |n| {
        let futures: Vec<_> = (0..n)
            .map(|i| executor.submit(tiny, i))
            .collect::<Result<_, _>>()?;
        futures.iter().map(|f| f.result()).collect()
    })
}

fn cpu_scaling(args: &Args) -> Result<(), Box<dyn Error>> {
    let workers: usize = args.parameter.parse()?;
    let pool = Pool::new(workers)?;
    let rounds = rounds_for_50ms();
    pool.map_chunked(busy, vec![rounds; workers], 1)?;
    let tasks = 16;
    let start = Instant::now();
    pool.map_chunked(busy, vec![rounds; tasks], 1)?;
    report(
        &format!("cpu_scaling/ours/{workers}"),
        start.elapsed(),
        tasks as u64,
    );
    Ok(())
}
