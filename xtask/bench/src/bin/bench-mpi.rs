//! `MpiPoolExecutor` measured by `cargo xtask bench`, run under `mpirun -n N` (rank 0
//! measures, the other ranks are the workers). Built only with the package's `mpi` feature,
//! which needs an MPI implementation; the xtask runs it where `mpirun` is found.
//!
//! Benchmarks (the time printed is per task):
//!
//! - `executor-submit`: `submit` of tiny tasks to the executor over every worker rank, then
//!   every `result`.
//! - `executor-map 1|1000`: `map_with` of tiny tasks with that chunk size.
//! - `cpu-scaling <workers>`: 16 tasks of about 50 ms of arithmetic with `map` (chunk size 1);
//!   `<workers>` must be the number of worker ranks (N − 1).

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use procs::mpi::{Mpi, MpiPoolExecutor};
use procs_bench::{Args, busy, report, rounds_for_50ms, time_tiny, tiny};

fn main() -> ExitCode {
    procs::init();
    // Worker ranks never come back from `init`.
    let mpi = match procs::mpi::init() {
        Ok(mpi) => mpi,
        Err(error) => return procs_bench::exit(Err(error.into())),
    };
    procs_bench::exit(run(&mpi))
}

fn run(mpi: &Mpi) -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    let executor = MpiPoolExecutor::new(mpi)?;
    match args.benchmark.as_str() {
        "executor-submit" => time_tiny("mpi_submit/ours", &args, |n| {
            let futures: Vec<_> = (0..n)
                .map(|i| executor.submit(tiny, i))
                .collect::<Result<_, _>>()?;
            futures.iter().map(|f| f.result()).collect()
        }),
        "executor-map" => {
            let chunksize: usize = args.parameter.parse()?;
            time_tiny(&format!("mpi_map_{chunksize}/ours"), &args, |n| {
                executor.map_with(tiny, 0..n, chunksize, None)?.collect()
            })
        }
        "cpu-scaling" => {
            let workers: usize = args.parameter.parse()?;
            if workers != executor.max_workers() {
                return Err(format!(
                    "cpu-scaling {workers} needs {workers} worker ranks (mpirun -n {}), not {}",
                    workers + 1,
                    executor.max_workers()
                )
                .into());
            }
            let rounds = rounds_for_50ms();
            executor
                .map(busy, vec![rounds; workers])?
                .collect::<Result<Vec<_>, _>>()?;
            let tasks = 16;
            let start = Instant::now();
            executor
                .map(busy, vec![rounds; tasks])?
                .collect::<Result<Vec<_>, _>>()?;
            report(
                &format!("mpi_cpu/ours/{workers}"),
                start.elapsed(),
                tasks as u64,
            );
            Ok(())
        }
        other => Err(format!(
            "unknown benchmark {other:?}; known: executor-submit, executor-map, cpu-scaling"
        )
        .into()),
    }
}
