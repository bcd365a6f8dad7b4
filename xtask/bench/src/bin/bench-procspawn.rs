//! The Rust crate `procspawn` measured by `cargo xtask bench`, as the peer of our `Spawn`.
//!
//! Benchmarks:
//!
//! - `process-start`: `procspawn::spawn` of an empty closure, then `join`.

use std::error::Error;
use std::process::ExitCode;

use procs_bench::{Args, measure};

fn main() -> ExitCode {
    procspawn::init();
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match args.benchmark.as_str() {
        "process-start" => {
            measure("process_start/procspawn/spawn", &args, || {
                procspawn::spawn((), |()| ()).join()
            })?;
            Ok(())
        }
        other => Err(format!("unknown benchmark {other:?}; known: process-start").into()),
    }
}
