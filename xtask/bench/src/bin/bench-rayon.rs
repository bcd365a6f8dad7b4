//! rayon measured by `cargo xtask bench`: the in-process floor of our thread executor.
//!
//! Benchmarks:
//!
//! - `thread-executor-submit`: a `rayon::ThreadPool` of 4 threads, `spawn` of `--iterations`
//!   tiny closures that each send their result on a channel, then every result received;
//!   the time is per task.

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use procs_bench::Args;

fn main() -> ExitCode {
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match args.benchmark.as_str() {
        "thread-executor-submit" => spawn(&args),
        other => Err(format!("unknown benchmark {other:?}; known: thread-executor-submit").into()),
    }
}

fn spawn(args: &Args) -> Result<(), Box<dyn Error>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build()?;
    let n = u64::from(args.iterations);
    let run = |n: u64| -> Result<(), Box<dyn Error>> {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..n {
            let tx = tx.clone();
            pool.spawn(move || {
                let _ = tx.send((i, i.wrapping_mul(3)));
            });
        }
        drop(tx);
        let mut sum = 0u64;
        for _ in 0..n {
            let (i, r) = rx.recv()?;
            if r != i.wrapping_mul(3) {
                return Err(format!("task {i} gave {r}").into());
            }
            sum = sum.wrapping_add(r);
        }
        std::hint::black_box(sum);
        Ok(())
    };
    run(u64::from(args.warmup.max(1)) * 10)?;
    let start = Instant::now();
    run(n)?;
    let elapsed = start.elapsed();
    println!(
        "RESULT thread_executor_submit/rayon {:.12} {n}",
        elapsed.as_secs_f64() / n.max(1) as f64
    );
    Ok(())
}
