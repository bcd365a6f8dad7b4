//! A task that calls `std::process::abort` on a worker rank: the MPI job must end (Open MPI
//! reports the dead rank and the job exits non-zero), never hang. `cargo xtask mpi` runs it
//! under `timeout` and checks both, after a static launch (`mpirun -n 3 mpi_abort`) and
//! after a dynamic one (`mpirun -n 1 mpi_abort --spawn`, the workers spawned), and in a
//! singleton that spawned its workers (`mpi_abort --spawn` alone), where no `mpirun` ends
//! the job: there the future fails with `BrokenPool` and the session's end aborts the job.

use proc_mpi::MpiPoolExecutor;

fn main() {
    proc_core::init();
    let mpi = proc_mpi::init().unwrap();
    let executor = if std::env::args().any(|a| a == "--spawn") {
        MpiPoolExecutor::builder()
            .max_workers(2)
            .build(&mpi)
            .unwrap()
    } else {
        MpiPoolExecutor::new(&mpi).unwrap()
    };
    assert_eq!(executor.submit(|x: u8| x, 1).unwrap().result().unwrap(), 1);
    let doomed = executor
        .submit(|(): ()| -> u8 { std::process::abort() }, ())
        .unwrap();
    // Under mpirun the job ends here, from outside, and this never returns; a singleton's
    // future fails, and dropping the session ends the job with MPI_Abort.
    let outcome = doomed.result();
    println!("mpi_abort: the task's outcome: {outcome:?}");
    assert!(matches!(outcome, Err(proc_core::Error::BrokenPool(_))));
    assert!(executor.submit(|x: u8| x, 1).is_err());
}
