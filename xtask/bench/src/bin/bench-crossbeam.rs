//! crossbeam-channel measured by `cargo xtask bench`: the floor of our thread queue.
//!
//! Benchmarks:
//!
//! - `thread-queue`: a thread sends `--iterations` `u64`s on an unbounded channel, this
//!   thread receives them; the time is per item, as `bench-ours thread-queue` times our
//!   `procs::queue::Queue`.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::Instant;

use procs_bench::{Args, report};

fn main() -> ExitCode {
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match args.benchmark.as_str() {
        "thread-queue" => thread_queue(&args),
        other => Err(format!("unknown benchmark {other:?}; known: thread-queue").into()),
    }
}

fn thread_queue(args: &Args) -> Result<(), Box<dyn Error>> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let warm = u64::from(args.warmup.max(1));
    let n = u64::from(args.iterations);
    let go = Barrier::new(2);
    std::thread::scope(|scope| -> Result<(), Box<dyn Error>> {
        let producer = scope.spawn(|| -> Result<(), crossbeam_channel::SendError<u64>> {
            for i in 0..warm {
                tx.send(i)?;
            }
            go.wait();
            for i in warm..warm + n {
                tx.send(i)?;
            }
            Ok(())
        });
        for i in 0..warm {
            if rx.recv()? != i {
                return Err(format!("item {i} came out of order").into());
            }
        }
        go.wait();
        let start = Instant::now();
        for i in warm..warm + n {
            if rx.recv()? != i {
                return Err(format!("item {i} came out of order").into());
            }
        }
        let elapsed = start.elapsed();
        producer.join().map_err(|_| "the producer panicked")??;
        report("thread_queue/crossbeam-channel", elapsed, n);
        Ok(())
    })
}
