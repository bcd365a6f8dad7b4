//! `comm_executor` inside a program that starts MPI itself, under `mpirun
//! --allow-run-as-root --oversubscribe -n 3` (run by `cargo xtask mpi`): mpi4py's
//! `MPICommExecutor(comm, root)` semantics — the root gets an executor, the other ranks
//! serve until the root shuts it down and then go back to the program. Every rank exits 0
//! when every check passed; a failed assertion ends the job with a non-zero exit.

use std::collections::BTreeSet;

use proc_core::Error;
use proc_mpi::comm_executor;
use proc_mpi::mpi::Threading;
use proc_mpi::mpi::point_to_point::{Destination, Source};
use proc_mpi::mpi::topology::{Color, SimpleCommunicator};
use proc_mpi::mpi::traits::{Communicator, CommunicatorCollectives};

/// The world rank of the process that runs the task.
fn world_rank((): ()) -> i32 {
    SimpleCommunicator::world().rank()
}

/// The world ranks that ran a few slow tasks.
fn ranks_of(executor: &proc_mpi::MpiPoolExecutor) -> BTreeSet<i32> {
    let futures: Vec<_> = (0..6)
        .map(|_| {
            executor
                .submit(
                    |(): ()| {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        world_rank(())
                    },
                    (),
                )
                .unwrap()
        })
        .collect();
    futures.iter().map(|f| f.result().unwrap()).collect()
}

fn main() {
    proc_core::init();
    let (universe, threading) =
        proc_mpi::mpi::initialize_with_threading(Threading::Multiple).unwrap();
    let world = universe.world();
    let rank = world.rank();
    assert_eq!(world.size(), 3, "run under `mpirun -n 3`");

    // Bad roots are refused on every rank, before anything collective.
    for root in [-1, 3] {
        assert!(matches!(
            comm_executor(&world, root),
            Err(Error::InvalidState(_))
        ));
    }

    // Root 1: ranks 0 and 2 serve. A message of the program on the world communicator,
    // with the executor's own task tag, does not reach the executor (it has a duplicate).
    let user_tag = 1;
    match comm_executor(&world, 1).unwrap() {
        Some(executor) => {
            assert_eq!(rank, 1);
            assert_eq!(executor.max_workers(), 2);
            if threading >= Threading::Multiple {
                world
                    .process_at_rank(0)
                    .send_with_tag(&[7u8, 7, 7][..], user_tag);
            }
            assert_eq!(ranks_of(&executor), BTreeSet::from([0, 2]));
            let bad = executor
                .submit(|x: u32| -> u32 { panic!("task {x} refuses") }, 3)
                .unwrap();
            assert!(bad.result().unwrap_err().is_panic());
            let v: Vec<u64> = executor
                .map_with(|x: u64| x * x, 0..500, 7, None)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(v, (0..500).map(|x| x * x).collect::<Vec<_>>());
            executor.shutdown(true, false);
            assert!(executor.submit(world_rank, ()).is_err());
        }
        None => assert_ne!(rank, 1),
    }
    if threading >= Threading::Multiple && rank == 0 {
        let (message, status) = world.process_at_rank(1).receive_vec::<u8>();
        assert_eq!((message, status.tag()), (vec![7, 7, 7], user_tag));
    }
    world.barrier();

    // Again, rooted at 0, and dropped rather than shut down.
    if let Some(executor) = comm_executor(&world, 0).unwrap() {
        assert_eq!(rank, 0);
        assert_eq!(ranks_of(&executor), BTreeSet::from([1, 2]));
    }
    world.barrier();

    // A communicator of ranks 0 and 1; rank 2 is alone in its own, which has no worker.
    let part = world
        .split_by_color(Color::with_value(rank / 2))
        .expect("every rank has a color");
    if rank == 2 {
        assert!(matches!(
            comm_executor(&part, 0),
            Err(Error::InvalidState(_))
        ));
    } else if let Some(executor) = comm_executor(&part, 0).unwrap() {
        assert_eq!(rank, 0);
        assert_eq!(ranks_of(&executor), BTreeSet::from([1]));
    }
    world.barrier();
    if rank == 0 {
        println!("mpi_comm: every check passed (threading {threading:?})");
    }
}
