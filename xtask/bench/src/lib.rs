//! The timing loop and command line shared by the benchmark programs that `cargo xtask bench`
//! runs.
//!
//! Each program is called as
//!
//! ```text
//! <program> <benchmark> [<parameter>] [--iterations N] [--warmup N] [--budget-secs S]
//! ```
//!
//! runs the operation `warmup` times untimed, then up to `iterations` times (or until
//! `budget-secs` have passed, whichever comes first), and prints one line that the xtask reads:
//!
//! ```text
//! RESULT <name> <mean seconds per operation> <iterations timed>
//! ```
//!
//! The Python peers in `python/` follow the same command line and print the same line.

use std::error::Error;
use std::fmt;
use std::io;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// What a benchmark program was asked to measure, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// The benchmark, for example `process-start`.
    pub benchmark: String,
    /// The benchmark's parameter, for example a start method; empty when none was given.
    pub parameter: String,
    /// The most operations to time.
    pub iterations: u32,
    /// Operations run before timing starts, to fill caches and start servers.
    pub warmup: u32,
    /// Timing stops after the operation that crosses this budget, even before `iterations`.
    pub budget: Duration,
}

/// A command line that [`Args::parse`] could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; usage: <benchmark> [<parameter>] [--iterations N] [--warmup N] [--budget-secs S]",
            self.0
        )
    }
}

impl std::error::Error for UsageError {}

impl Args {
    /// Reads the arguments that follow the program name.
    ///
    /// # Errors
    ///
    /// [`UsageError`] when the benchmark is missing, a flag is unknown or a number does not
    /// parse.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, UsageError> {
        let mut positional = Vec::new();
        let mut parsed = Args {
            benchmark: String::new(),
            parameter: String::new(),
            iterations: 100,
            warmup: 5,
            budget: Duration::from_secs(5),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .ok_or_else(|| UsageError(format!("{flag} needs a value")))
            };
            match arg.as_str() {
                "--iterations" => parsed.iterations = number(&value("--iterations")?)?,
                "--warmup" => parsed.warmup = number(&value("--warmup")?)?,
                "--budget-secs" => {
                    let secs: f64 = number(&value("--budget-secs")?)?;
                    parsed.budget = Duration::try_from_secs_f64(secs)
                        .map_err(|_| UsageError(format!("bad budget {secs}")))?;
                }
                flag if flag.starts_with("--") => {
                    return Err(UsageError(format!("unknown flag {flag}")));
                }
                _ => positional.push(arg),
            }
        }
        let mut positional = positional.into_iter();
        parsed.benchmark = positional
            .next()
            .ok_or_else(|| UsageError("no benchmark given".to_string()))?;
        parsed.parameter = positional.next().unwrap_or_default();
        if let Some(extra) = positional.next() {
            return Err(UsageError(format!("unexpected argument {extra}")));
        }
        if parsed.iterations == 0 {
            return Err(UsageError("--iterations must be at least 1".to_string()));
        }
        Ok(parsed)
    }

    /// Reads the program's own command line.
    ///
    /// # Errors
    ///
    /// As [`Args::parse`].
    pub fn from_env() -> Result<Args, UsageError> {
        Args::parse(std::env::args().skip(1))
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, UsageError> {
    text.parse()
        .map_err(|_| UsageError(format!("{text:?} is not a valid number")))
}

/// The mean time of one operation, as measured by [`measure`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Mean seconds per operation.
    pub seconds_per_op: f64,
    /// How many operations were timed.
    pub iterations: u32,
}

/// Times `op` as `args` asks and prints the `RESULT` line under `name`.
///
/// `op` reports failure with `Err`; the first failure stops the benchmark, because a number
/// measured over failing operations would mean nothing.
///
/// # Errors
///
/// The first error `op` returns.
pub fn measure<E>(
    name: &str,
    args: &Args,
    mut op: impl FnMut() -> Result<(), E>,
) -> Result<Measurement, E> {
    for _ in 0..args.warmup {
        op()?;
    }
    let start = Instant::now();
    let mut iterations = 0;
    while iterations < args.iterations {
        op()?;
        iterations += 1;
        if start.elapsed() >= args.budget {
            break;
        }
    }
    let measurement = Measurement {
        seconds_per_op: start.elapsed().as_secs_f64() / f64::from(iterations),
        iterations,
    };
    println!(
        "RESULT {name} {:.9} {}",
        measurement.seconds_per_op, measurement.iterations
    );
    Ok(measurement)
}

/// Ends a benchmark program: success, or the error on stderr and a failing exit code.
pub fn exit(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the `RESULT` line for `ops` operations that took `elapsed` in all.
pub fn report(name: &str, elapsed: Duration, ops: u64) {
    println!(
        "RESULT {name} {:.12} {ops}",
        elapsed.as_secs_f64() / ops.max(1) as f64
    );
}

/// The tiny task of the pool benchmarks.
pub fn tiny(x: u64) -> u64 {
    x.wrapping_mul(3)
}

/// Checks the results of the tiny tasks over `0..n`.
fn check_tiny(results: impl IntoIterator<Item = u64>, n: u64) -> Result<(), Box<dyn Error>> {
    let mut count = 0;
    for (i, r) in results.into_iter().enumerate() {
        if r != tiny(i as u64) {
            return Err(format!("task {i} gave {r}").into());
        }
        count += 1;
    }
    if count != n {
        return Err(format!("{count} results for {n} tasks").into());
    }
    Ok(())
}

/// Times `run` over `--iterations` tiny tasks, after a warm-up of ten per `--warmup`, and
/// checks every result of both.
pub fn time_tiny(
    name: &str,
    args: &Args,
    run: impl Fn(u64) -> Result<Vec<u64>, procs::Error>,
) -> Result<(), Box<dyn Error>> {
    let warm = u64::from(args.warmup.max(1)) * 10;
    check_tiny(run(warm)?, warm)?;
    let n = u64::from(args.iterations);
    let start = Instant::now();
    let results = run(n)?;
    let elapsed = start.elapsed();
    check_tiny(results, n)?;
    report(name, elapsed, n);
    Ok(())
}

/// About 50 ms of arithmetic on one core.
pub fn busy(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

/// Rounds of `busy` that take about 50 ms here: measured, so that the task is the same
/// length on a fast machine and a slow one.
pub fn rounds_for_50ms() -> u64 {
    let probe = 1_000_000;
    let start = Instant::now();
    std::hint::black_box(busy(probe));
    let per_round = start.elapsed().as_secs_f64() / probe as f64;
    (0.05 / per_round.max(1e-12)) as u64
}

/// The busy-loop processes of the `under load` benchmarks: three, for the two cores of the
/// machine the targets were set on, so that a child being started has to win its CPU.
pub const LOAD_PROCESSES: usize = 3;

/// The benchmark name that [`Load::start`] runs its busy processes with: a program that
/// starts a [`Load`] calls [`busy_loop`] when it is given it.
pub const BUSY_LOOP: &str = "busy-loop";

/// Processes that keep the CPUs busy while a benchmark runs; dropping the `Load` kills and
/// reaps them, on the error paths too.
///
/// Each is the benchmark program itself, run with [`BUSY_LOOP`], and ends by itself when its
/// parent is gone (see [`busy_loop`]), so that a benchmark program that is killed (by the
/// xtask, on a timeout) or aborts leaves no spinning process behind.
#[derive(Debug)]
pub struct Load {
    children: Vec<Child>,
}

impl Load {
    /// Starts `processes` busy loops.
    ///
    /// # Errors
    ///
    /// When the program cannot find itself or a process cannot start; those already started
    /// are killed.
    pub fn start(processes: usize) -> io::Result<Load> {
        let program = std::env::current_exe()?;
        let mut load = Load {
            children: Vec::with_capacity(processes),
        };
        for _ in 0..processes {
            // Not the benchmark's stdout: the xtask reads that to its end.
            let child = Command::new(&program)
                .arg(BUSY_LOOP)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()?;
            load.children.push(child);
        }
        Ok(load)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.children {
            // The kill can only fail if the loop has already ended, which is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The body of a [`Load`]'s process: spins until its parent is gone (it is then the child of
/// another process), looking every few milliseconds.
pub fn busy_loop() -> Result<(), Box<dyn Error>> {
    let parent = std::os::unix::process::parent_id();
    while std::os::unix::process::parent_id() == parent {
        std::hint::black_box(busy(1_000_000));
    }
    Ok(())
}

/// A heap block of `bytes`, every page of it written, as a parent's data would be.
pub fn touched_heap(bytes: usize) -> Vec<u8> {
    // `vec![0; n]` would map zero pages that nothing has touched yet.
    std::hint::black_box(vec![1u8; bytes])
}

/// An error that a producer thread can hand back.
pub type SendError = Box<dyn Error + Send + Sync>;

/// Times a thread queue: another thread `put`s `--warmup` `u64`s, then (after a barrier)
/// `--iterations` more, which this thread `get`s, checking their order; prints the `RESULT`
/// line under `name` with the time per item of the timed stretch.
///
/// # Errors
///
/// The first failing `put` or `get`, or an item out of order.
pub fn time_thread_queue(
    name: &str,
    args: &Args,
    put: impl Fn(u64) -> Result<(), SendError> + Sync,
    mut get: impl FnMut() -> Result<u64, Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    let warm = u64::from(args.warmup.max(1));
    let n = u64::from(args.iterations);
    let go = std::sync::Barrier::new(2);
    let mut take = |items: std::ops::Range<u64>| -> Result<(), Box<dyn Error>> {
        for i in items {
            if get()? != i {
                return Err(format!("item {i} came out of order").into());
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| -> Result<(), SendError> {
            (0..warm).try_for_each(&put)?;
            go.wait();
            (warm..warm + n).try_for_each(&put)
        });
        let warmed = take(0..warm);
        // The producer waits at the barrier whatever came of the warm-up, so that an error
        // here cannot leave it, and the scope, waiting forever.
        go.wait();
        warmed?;
        let start = Instant::now();
        take(warm..warm + n)?;
        let elapsed = start.elapsed();
        let produced = producer.join().map_err(|_| "the producer panicked")?;
        produced.map_err(|error| -> Box<dyn Error> { error })?;
        report(name, elapsed, n);
        Ok(())
    })
}
