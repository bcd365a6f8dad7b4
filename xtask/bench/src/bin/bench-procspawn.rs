//! The Rust crate `procspawn` measured by `cargo xtask bench`, as the peer of our `Spawn`.
//!
//! Benchmarks:
//!
//! - `process-start`: `procspawn::spawn` of an empty closure, then `join`.
//! - `pool-apply-async`: `procspawn::Pool::new(2)`, `spawn` of `--iterations` tiny tasks,
//!   then every `join`; the time is per task.

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
        "pool-apply-async" => pool_apply_async(&args),
        other => Err(format!(
            "unknown benchmark {other:?}; known: process-start, pool-apply-async"
        )
        .into()),
    }
}

fn pool_apply_async(args: &Args) -> Result<(), Box<dyn Error>> {
    let pool = procspawn::Pool::new(2)?;
    let n = u64::from(args.iterations);
    // procspawn opens descriptors for every task it holds, and fails with EMFILE at a few
    // thousand: at most `WINDOW` tasks are outstanding, the oldest joined first.
    const WINDOW: usize = 1000;
    let run = |n: u64| -> Result<(), Box<dyn Error>> {
        let mut handles = std::collections::VecDeque::new();
        let join = |(i, handle): (u64, procspawn::JoinHandle<u64>)| -> Result<(), Box<dyn Error>> {
            let r = handle.join()?;
            if r != i.wrapping_mul(3) {
                return Err(format!("task {i} gave {r}").into());
            }
            Ok(())
        };
        for i in 0..n {
            if handles.len() == WINDOW {
                join(handles.pop_front().expect("the window is full"))?;
            }
            handles.push_back((i, pool.spawn(i, |x: u64| x.wrapping_mul(3))));
        }
        for item in handles {
            join(item)?;
        }
        Ok(())
    };
    run(u64::from(args.warmup.max(1)) * 10)?;
    let start = std::time::Instant::now();
    run(n)?;
    let elapsed = start.elapsed();
    println!(
        "RESULT pool_apply_async/procspawn {:.12} {n}",
        elapsed.as_secs_f64() / n.max(1) as f64
    );
    Ok(())
}
