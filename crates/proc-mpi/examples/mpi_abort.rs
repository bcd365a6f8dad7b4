//! A task that calls `std::process::abort` on a worker rank: the MPI job must end (Open MPI's
//! `mpirun` reports the dead rank and exits non-zero), never hang. `cargo xtask mpi` runs it
//! under `timeout` and checks both.

use proc_mpi::MpiPoolExecutor;

fn main() {
    proc_core::init();
    let mpi = proc_mpi::init().unwrap();
    let executor = MpiPoolExecutor::new(&mpi).unwrap();
    assert_eq!(executor.submit(|x: u8| x, 1).unwrap().result().unwrap(), 1);
    let doomed = executor
        .submit(|(): ()| -> u8 { std::process::abort() }, ())
        .unwrap();
    // The job ends here, from outside: this never returns.
    let outcome = doomed.result();
    println!("mpi_abort: unexpected outcome {outcome:?}");
}
