//! Rank 0 and worker ranks of different builds: `cargo xtask mpi` starts this program as
//! rank 0 and a copy of it with a newer modification time (so another build fingerprint) as
//! ranks 1 and 2, `mpirun -n 1 ./mpi_mismatch : -n 2 ./mpi_mismatch_copy`. Every task must
//! fail with `Error::BuildMismatch`, and nothing may run on the workers.

use proc_core::Error;
use proc_mpi::MpiPoolExecutor;

fn main() {
    proc_core::init();
    let mpi = proc_mpi::init().unwrap();
    let executor = MpiPoolExecutor::new(&mpi).unwrap();
    let refused = executor
        .submit(
            |(): ()| -> u8 { panic!("a task ran on a rank of another build") },
            (),
        )
        .unwrap();
    assert!(
        matches!(refused.result(), Err(Error::BuildMismatch)),
        "{:?}",
        refused.result()
    );
    let outcomes: Vec<_> = executor
        .map_with(|x: u8| x, 0..10, 3, None)
        .unwrap()
        .collect();
    assert_eq!(outcomes.len(), 10);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Err(Error::BuildMismatch)))
    );
    println!("mpi_mismatch: every task was refused as another build");
}
