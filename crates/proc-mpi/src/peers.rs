//! The worker ranks as the engine sees them: a communicator and the ranks in it that serve
//! (the loop those ranks run is in [`worker`](crate::worker)).
//!
//! Three kinds of worker ranks share this: the world's ranks 1 to N − 1 of a static launch
//! (`mpirun -n N`), the children that a single-rank start spawned (the ranks of the remote
//! group of an inter-communicator), and the ranks of a user's communicator other than its
//! root (a duplicate of it, so that the executor's messages never meet the program's own).

use std::sync::Mutex;

use mpi::point_to_point::Destination;
use mpi::topology::{Communicator, Rank};

use crate::wire::{self, Hello};

/// A communicator and the ranks in it that serve tasks.
pub(crate) struct Peers {
    comm: Box<dyn Communicator>,
    ranks: Vec<Rank>,
    /// Who each rank is, for the spawned workers (same order as `ranks`): nothing outside
    /// kills a singleton whose spawned workers died, so its engine watches them.
    watched: Vec<Hello>,
    /// Why the worker ranks are lost, once one died.
    lost: Mutex<Option<String>>,
}

// SAFETY: a communicator is a process-wide MPI handle, not tied to the thread that made it;
// MPI (at `MPI_THREAD_SERIALIZED`, which every constructor of an engine checks) lets any
// thread use it as long as no two calls overlap. The calls do not overlap: while an engine
// runs, only its thread uses the peers (the session and the executor touch them only before
// the engine starts and after it was joined), and an engine starts only when none runs.
unsafe impl Send for Peers {}
// SAFETY: as for `Send`: shared references are only used by one thread at a time.
unsafe impl Sync for Peers {}

impl Peers {
    /// The `ranks` of `comm` (for an inter-communicator, ranks of its remote group).
    pub(crate) fn new(comm: Box<dyn Communicator>, ranks: Vec<Rank>) -> Peers {
        Peers::watched(comm, ranks, Vec::new())
    }

    /// As [`new`](Peers::new), with each rank's [`Hello`] to watch its life.
    pub(crate) fn watched(
        comm: Box<dyn Communicator>,
        ranks: Vec<Rank>,
        watched: Vec<Hello>,
    ) -> Peers {
        Peers {
            comm,
            ranks,
            watched,
            lost: Mutex::new(None),
        }
    }

    /// Whether some ranks are watched (spawned workers).
    pub(crate) fn is_watched(&self) -> bool {
        !self.watched.is_empty()
    }

    /// Looks for a dead watched worker; the first found marks the peers lost, and the
    /// reason is returned (then and afterwards).
    pub(crate) fn check(&self) -> Option<String> {
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if lost.is_none() {
            let host = wire::host();
            let dead = self
                .ranks
                .iter()
                .zip(&self.watched)
                .find(|(_, hello)| hello.dead(&host));
            *lost = dead.map(|(rank, hello)| {
                format!(
                    "spawned worker rank {rank} (pid {}) died; MPI cannot go on without it, \
                     so the session aborts the MPI job when it ends",
                    hello.pid
                )
            });
        }
        lost.clone()
    }

    /// Why the workers are lost, if one died.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn comm(&self) -> &dyn Communicator {
        &*self.comm
    }

    pub(crate) fn ranks(&self) -> &[Rank] {
        &self.ranks
    }

    /// Lets every worker rank go: they leave their loop.
    pub(crate) fn release(&self) {
        for &rank in &self.ranks {
            self.comm
                .process_at_rank(rank)
                .send_with_tag(&[0u8; 0][..], wire::EXIT);
        }
    }
}
