//! procs measured by `cargo xtask bench`: every benchmark of ours, through the `procs` facade.
//!
//! Benchmarks:
//!
//! - `process-start <method>`: start and join a process that runs an empty function, with the
//!   start method `spawn`, `fork` or `forkserver`.
//! - `lock-uncontended`: acquire and release a `procs::sync::Lock` in one thread.
//! - `mutex-uncontended`: the same with `std::sync::Mutex`, the floor.
//! - `lock-contended`: two processes acquire and release one `Lock` in a loop; the time is
//!   per acquire/release of either.
//! - `event-roundtrip`: a ping-pong of two `Event`s between two processes; the time is one
//!   round trip.
//! - `value-increments`: two processes add 1 to a `Value<i64>` under its lock; the time is
//!   per increment of either.
//!
//! The synchronization benchmarks take `--iterations` as the number of operations and time
//! them in one stretch (a clock read per operation would cost more than the operation).

use std::error::Error;
use std::process::ExitCode;

use std::time::{Duration, Instant};

use procs::sync::{Event, Lock, Value};
use procs::{Process, StartMethod};
use procs_bench::{Args, measure};

fn main() -> ExitCode {
    procs::init();
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match args.benchmark.as_str() {
        "process-start" => process_start(&args),
        "lock-uncontended" => lock_uncontended(&args),
        "mutex-uncontended" => mutex_uncontended(&args),
        "lock-contended" => lock_contended(&args),
        "event-roundtrip" => event_roundtrip(&args),
        "value-increments" => value_increments(&args),
        other => Err(format!(
            "unknown benchmark {other:?}; known: process-start, lock-uncontended, \
             mutex-uncontended, lock-contended, event-roundtrip, value-increments"
        )
        .into()),
    }
}

/// The child's work: nothing, so that only starting and joining the process is measured.
fn empty((): ()) {}

fn process_start(args: &Args) -> Result<(), Box<dyn Error>> {
    let method: StartMethod = args.parameter.parse()?;
    let name = format!("process_start/ours/{method}");
    measure(&name, args, || {
        Process::builder()
            .start_method(method)
            .spawn(empty, ())?
            .join()
    })?;
    Ok(())
}

/// Prints the `RESULT` line for `ops` operations that took `elapsed` in all.
fn report(name: &str, elapsed: Duration, ops: u64) {
    println!(
        "RESULT {name} {:.12} {ops}",
        elapsed.as_secs_f64() / ops.max(1) as f64
    );
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
