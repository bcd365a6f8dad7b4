//! crossbeam-channel measured by `cargo xtask bench`: the floor of our thread queue.
//!
//! Benchmarks:
//!
//! - `thread-queue`: a thread sends `--iterations` `u64`s on an unbounded channel, this
//!   thread receives them; the time is per item, as `bench-ours thread-queue` times our
//!   `procs::queue::Queue`.

use std::error::Error;
use std::process::ExitCode;

use procs_bench::Args;

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
    procs_bench::time_thread_queue(
        "thread_queue/crossbeam-channel",
        args,
        |i| Ok(tx.send(i)?),
        || Ok(rx.recv()?),
    )
}
