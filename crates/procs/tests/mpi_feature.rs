//! The `mpi` feature re-exports proc-mpi as `procs::mpi` (run by `cargo xtask mpi`, which
//! builds the facade with the feature; a default build has no `procs::mpi`).
#![cfg(feature = "mpi")]

use procs::mpi::{Map, Mpi, MpiPoolExecutor, MpiPoolExecutorBuilder};

#[test]
fn the_mpi_items_are_reexported() {
    // Naming the items is the test: a re-export that disappears fails to compile. Nothing
    // here starts MPI, so the test needs no `mpirun`.
    let init: fn() -> procs::Result<Mpi> = procs::mpi::init;
    let new = |mpi: &Mpi| -> procs::Result<MpiPoolExecutor> { MpiPoolExecutor::new(mpi) };
    let spawn = |mpi: &Mpi, n: usize| -> procs::Result<MpiPoolExecutor> {
        MpiPoolExecutor::builder().max_workers(n).build(mpi)
    };
    let _: fn(MpiPoolExecutorBuilder, &Mpi) -> procs::Result<MpiPoolExecutor> =
        MpiPoolExecutorBuilder::build;
    let comm: fn(
        &procs::mpi::mpi::topology::SimpleCommunicator,
        procs::mpi::mpi::Rank,
    ) -> procs::Result<Option<MpiPoolExecutor>> = procs::mpi::comm_executor;
    let _ = (init, new, spawn, comm);
    let no_map: Option<Map<std::vec::IntoIter<u8>, u8>> = None;
    assert!(no_map.is_none());
    // The futures are the pool's own.
    let (future, completer) = procs::pool::internal::pending::<u8>();
    let future: procs::Future<u8> = future;
    assert!(completer.finish(Ok(1)));
    assert_eq!(future.result().unwrap(), 1);
}
