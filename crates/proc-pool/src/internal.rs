//! What proc-pool lends executors outside this crate (proc-mpi's `MpiPoolExecutor`), so that
//! they stand on the pool's pieces instead of copies: hidden from the docs, with no semver
//! promise.
//!
//! - [`pending`] / [`Completer`]: a pending [`Future`](crate::Future) and the handle that
//!   finishes it, held by an engine while its task runs somewhere.
//! - [`imap`] over a [`Submit`] ("send a chunk of items, get a [`ChunkFuture`] of their
//!   [`Answer`]"): the lazy windowed map of every pool and executor — the chunking, the
//!   window, the time limit, the cancelling of what is left — in input or completion
//!   [`Order`]; [`imap_runs`] sends runs of several chunks at once, as [`Runs`] says.
//! - [`QueuedTasks`]: what closing an engine does with the tasks not taken yet.
//! - [`no_captures`]: the compile-time refusal of a closure that captures something, for
//!   functions that run in another process, and [`conjure`], which makes the function there
//!   from its type alone.
//! - [`run_chunk`]: a worker's run of one function over a chunk of items, each panic caught
//!   in its item's place.

pub use crate::call::conjure;
pub use crate::completer::{Completer, pending};
pub use crate::future::QueuedTasks;
pub use crate::map::{Answer, ChunkFuture, Order, Runs, Submit, imap, imap_runs, run_chunk};
pub use crate::pool::no_captures;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use proc_core::Error;

    use super::*;

    // A chunk that no one answers: the map's time limit passes, it yields `Timeout`, and the
    // chunks it still held are cancelled (their engine would not start them).
    #[test]
    fn a_timed_out_map_cancels_its_chunks() {
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        let mut map = imap(
            0..10u8,
            1,
            Some(Duration::from_millis(10)),
            1,
            Order::Completion,
            Box::new(move |_items: Vec<u8>| {
                let (chunk, completer) = pending::<Answer<u8>>();
                keep.lock().unwrap().push(completer);
                Ok(chunk)
            }),
        )
        .unwrap();
        assert!(matches!(map.next(), Some(Err(Error::Timeout))));
        assert!(map.next().is_none());
        let held = held.lock().unwrap();
        assert!(!held.is_empty());
        assert!(held.iter().all(|c| !c.set_running()));
    }

    #[test]
    fn a_chunk_that_fails_fails_each_of_its_items() {
        let map = imap(
            0..3u8,
            3,
            None,
            1,
            Order::Input,
            Box::new(|_items: Vec<u8>| {
                let (chunk, completer) = pending::<Answer<u8>>();
                completer.finish(Err(Error::BrokenPool("gone".into())));
                Ok(chunk)
            }),
        )
        .unwrap();
        let outcomes: Vec<_> = map.collect();
        assert_eq!(outcomes.len(), 3);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Err(Error::BrokenPool(_))))
        );
    }

    #[test]
    fn a_chunksize_of_zero_is_refused() {
        let submit: Submit<u8, u8> = Box::new(|_| Err(Error::Closed));
        let refused = imap(0..1u8, 0, None, 1, Order::Input, submit);
        assert!(matches!(refused, Err(Error::InvalidState(_))));
    }
}
