//! procs measured by `cargo xtask bench`: every benchmark of ours, through the `procs` facade.
//!
//! Benchmarks:
//!
//! - `process-start <method>`: start and join a process that runs an empty function, with the
//!   start method `spawn`, `fork` or `forkserver`.

use std::error::Error;
use std::process::ExitCode;

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
        other => Err(format!("unknown benchmark {other:?}; known: process-start").into()),
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
