//! The seed's pool scenario on MPI ranks: three workers run five tasks of random length, and
//! callbacks on rank 0 collect the results (Python: `MPIPoolExecutor`, `submit`,
//! `add_done_callback`, `shutdown`). `cargo xtask demo` runs it, when MPI is installed, as
//! `mpirun --allow-run-as-root --oversubscribe -n 4 mpi_pool_tasks`: rank 0 runs `main`,
//! ranks 1 to 3 serve.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_mpi::MpiPoolExecutor;
use proc_mpi::mpi::topology::SimpleCommunicator;
use proc_mpi::mpi::traits::Communicator;

/// Sleeps for a length of time that depends on the task, like the seed's `random()`, and
/// says which rank ran it.
fn task(number: u32) -> (u32, i32, u32, f64) {
    let rank = SimpleCommunicator::world().rank();
    let seconds = f64::from((number * 37 + 11) % 10) / 10.0 + 0.2;
    println!(
        "Task {number} runs {seconds:.2} seconds on rank {rank} (pid {})",
        std::process::id()
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    (number, rank, std::process::id(), seconds)
}

fn main() -> proc_mpi::core::Result<()> {
    proc_mpi::core::init();
    let mpi = proc_mpi::init()?; // ranks 1 to 3 serve from here and never return
    println!(
        "Rank 0 (pid {}) of {} ranks: {} worker ranks",
        std::process::id(),
        mpi.size(),
        mpi.workers()
    );
    let executor = MpiPoolExecutor::new(&mpi)?;
    let done = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let futures = (1..=5)
        .map(|number| {
            let future = executor.submit(task, number)?;
            let done = done.clone();
            future.add_done_callback(move |f| match f.result() {
                Ok((n, rank, pid, secs)) => {
                    println!(
                        "Callback: task {n} done on rank {rank} (pid {pid}) after {secs:.2} s"
                    );
                    done.lock().unwrap().push(n);
                }
                Err(e) => println!("Callback: a task failed: {e}"),
            });
            Ok(future)
        })
        .collect::<proc_mpi::core::Result<Vec<_>>>()?;
    println!("Waiting for all tasks done...");
    executor.shutdown(true, false);
    println!("All tasks done in {:.2} s.", start.elapsed().as_secs_f64());
    let ranks: BTreeSet<i32> = futures
        .iter()
        .map(|f| f.result().map(|(_, rank, _, _)| rank))
        .collect::<proc_mpi::core::Result<_>>()?;
    println!(
        "{} distinct worker ranks ran the 5 tasks: {ranks:?}",
        ranks.len()
    );
    assert!(ranks.iter().all(|&r| (1..=3).contains(&r)));
    assert_eq!(done.lock().unwrap().len(), 5);
    Ok(())
}
