//! The messages between rank 0 and the worker ranks, and what a worker runs.
//!
//! A task is one MPI byte message with tag [`TASK`]: a header — the sender's build
//! fingerprint (`u64`), the task id (`u64`) and the offset of the runner function in this
//! build (`i64`), little-endian — then the task's items, `Vec<A>` in postcard. The answer,
//! tag [`REPLY`], is the task id then a [`Reply`] in postcard. [`EXIT`] (empty) lets a worker
//! go. A worker answers its tasks in the order they came; rank 0 sends a worker at most two
//! at a time (the one it runs and the next), so it knows which worker has room. A spawned worker first says who it is, tag [`HELLO`]: a [`Hello`] in postcard.

use proc_core::Error;
use proc_core::internal::{fingerprint, fn_at, fn_offset};
use proc_pool::internal::{conjure, run_chunk};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Tag of a task, rank 0 to a worker.
pub(crate) const TASK: i32 = 1;
/// Tag of an answer, a worker to rank 0.
pub(crate) const REPLY: i32 = 2;
/// Tag of the message that ends a worker.
pub(crate) const EXIT: i32 = 3;
/// Tag of a spawned worker's first message, which says who it is.
pub(crate) const HELLO: i32 = 4;
/// The length of a task's header.
pub(crate) const HEADER: usize = 24;
/// The longest message: MPI counts elements in a C `int`.
pub(crate) const MAX_MESSAGE: usize = i32::MAX as usize;

/// What runs a task's items in the worker: the encoded items in, the encoded [`Reply`] out.
pub(crate) type Runner = fn(&[u8]) -> Vec<u8>;

pub(crate) use proc_core::internal::unwind::Remote;

/// A worker's answer to a task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply<R> {
    /// Every item's value: none failed.
    Values(Vec<R>),
    /// Each item's outcome, once one failed.
    Mixed(Vec<Result<R, Remote>>),
    /// The task did not run at all.
    Failed(Remote),
}

/// Who a spawned worker is: its process, so that its parent can tell when it dies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The worker's pid.
    pub(crate) pid: u32,
    /// When it started, as `proc_core::shared::start_time` gives it.
    pub(crate) start_time: u64,
    /// Its host (`MPI_Get_processor_name`): a pid means something on that host only.
    pub(crate) host: String,
}

impl Hello {
    /// This process's hello.
    pub(crate) fn here() -> Hello {
        Hello {
            pid: proc_core::shared::pid(),
            start_time: proc_core::shared::start_time(),
            host: host(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // A struct of two integers and a string always encodes.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Hello> {
        postcard::from_bytes(bytes).ok()
    }

    /// Whether the worker is known to have died, seen from `host`: it ran there and its
    /// process is gone. On another host nothing is known, and it is taken for alive.
    pub(crate) fn dead(&self, host: &str) -> bool {
        self.host == host && !proc_core::shared::pid_alive_since(self.pid, self.start_time)
    }
}

/// This host's name as MPI gives it (after `MPI_Init` only).
pub(crate) fn host() -> String {
    mpi::environment::processor_name().unwrap_or_default()
}

/// A task message for `items`, to be run by `runner` in a worker of this build.
pub(crate) fn task<A: Serialize>(id: u64, runner: Runner, items: &[A]) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::with_capacity(HEADER + 16);
    bytes.extend_from_slice(&fingerprint().to_le_bytes());
    bytes.extend_from_slice(&id.to_le_bytes());
    // SAFETY: `Runner` is a function pointer type.
    let offset = unsafe { fn_offset(runner) };
    bytes.extend_from_slice(&offset.to_le_bytes());
    postcard::to_io(items, &mut bytes)
        .map_err(|e| Error::Decode(format!("cannot encode the task's arguments: {e}")))?;
    if bytes.len() > MAX_MESSAGE {
        return Err(Error::InvalidState(
            "the task's arguments encode to more than 2 GiB, the most one MPI message holds: \
             split them into several tasks",
        ));
    }
    Ok(bytes)
}

/// Runs a task message in a worker: the answer to send back (id first).
///
/// A message from another build (its fingerprint is not ours) is never run: its function
/// offset would mean nothing here, so the answer is a build mismatch.
pub(crate) fn serve_task(message: &[u8]) -> Vec<u8> {
    let word = |at: usize| -> Option<[u8; 8]> { message.get(at..at + 8)?.try_into().ok() };
    let (Some(print), Some(id), Some(offset)) = (word(0), word(8), word(16)) else {
        // Without an id the answer cannot name its task: rank 0 drops it.
        return u64::MAX.to_le_bytes().to_vec();
    };
    let mut reply = id.to_vec();
    if u64::from_le_bytes(print) != fingerprint() {
        let mismatch: Reply<()> = Reply::Failed(Remote::BuildMismatch);
        return encode_after(reply, &mismatch);
    }
    // SAFETY: the message comes from rank 0 of this MPI job, and its fingerprint is ours, so
    // it runs this very build; rank 0 made `offset` with `fn_offset` from a `Runner` (in
    // `task`), and only this crate sends messages with the task tag on this communicator.
    let runner: Runner = unsafe { fn_at(i64::from_le_bytes(offset)) };
    reply.extend_from_slice(&runner(&message[HEADER..]));
    if reply.len() > MAX_MESSAGE {
        reply.truncate(8);
        let failed: Reply<()> = Reply::Failed(Remote::Failed(
            "the task's results encode to more than 2 GiB, the most one MPI message holds".into(),
        ));
        return encode_after(reply, &failed);
    }
    reply
}

/// Decodes an answer: the task id and its payload.
pub(crate) fn parse_reply(message: &[u8]) -> Option<(u64, &[u8])> {
    let id = u64::from_le_bytes(message.get(..8)?.try_into().ok()?);
    Some((id, &message[8..]))
}

fn encode_after<T: Serialize>(mut bytes: Vec<u8>, value: &T) -> Vec<u8> {
    let start = bytes.len();
    if postcard::to_io(value, &mut bytes).is_err() {
        bytes.truncate(start);
        let failed: Reply<()> = Reply::Failed(Remote::Failed("cannot encode the result".into()));
        // A reply of unit values always encodes.
        let _ = postcard::to_io(&failed, &mut bytes);
    }
    bytes
}

/// Runs each item of a task with `F` and encodes the [`Reply`].
pub(crate) fn run_items<F, A, R>(payload: &[u8]) -> Vec<u8>
where
    F: Fn(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize,
{
    let items: Vec<A> = match postcard::from_bytes(payload) {
        Ok(items) => items,
        Err(e) => {
            let failed: Reply<R> = Reply::Failed(Remote::Failed(format!(
                "cannot decode the task's arguments: {e}"
            )));
            return encode_after(Vec::new(), &failed);
        }
    };
    // SAFETY: `F` is the type of the function given to `MpiPoolExecutor::submit` or `map`,
    // whose `Fn(A) -> R + Copy` bound and `no_captures` check make it a fn item or a closure
    // that captures nothing (the same reasoning as proc-pool's process workers).
    let f: F = unsafe { conjure() };
    let reply = match run_chunk::<_, _, Remote>(items, f) {
        (values, None) => Reply::Values(values),
        (_, Some(outcomes)) => Reply::Mixed(outcomes),
    };
    let mut bytes = Vec::new();
    if postcard::to_io(&reply, &mut bytes).is_ok() {
        return bytes;
    }
    // Some value does not encode: that item fails, the others are kept.
    let outcomes = match reply {
        Reply::Values(values) => values.into_iter().map(Ok).collect(),
        Reply::Mixed(outcomes) => outcomes,
        Reply::Failed(remote) => vec![Err(remote)],
    };
    let outcomes: Vec<Result<R, Remote>> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(value) => match postcard::to_allocvec(&value) {
                Ok(_) => Ok(value),
                Err(e) => Err(Remote::Failed(format!("cannot encode the result: {e}"))),
            },
            Err(e) => Err(e),
        })
        .collect();
    encode_after(Vec::new(), &Reply::Mixed(outcomes))
}

/// Decodes a task's answer into each item's outcome.
pub(crate) fn decode_reply<R: DeserializeOwned>(
    payload: &[u8],
    count: usize,
) -> Result<Vec<proc_core::Result<R>>, Error> {
    let reply: Reply<R> = postcard::from_bytes(payload)
        .map_err(|e| Error::Decode(format!("cannot decode the task's result: {e}")))?;
    let outcomes: Vec<proc_core::Result<R>> = match reply {
        Reply::Values(values) => values.into_iter().map(Ok).collect(),
        Reply::Mixed(outcomes) => outcomes
            .into_iter()
            .map(|o| o.map_err(Error::from))
            .collect(),
        Reply::Failed(remote) => return Err(remote.into()),
    };
    if outcomes.len() != count {
        return Err(Error::Protocol(format!(
            "a worker rank answered {} results for {count} items",
            outcomes.len()
        )));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        x * 2
    }

    fn run<F, A, R>(_: F, items: &[A]) -> Result<Vec<proc_core::Result<R>>, Error>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let message = task(9, run_items::<F, A, R> as Runner, items).unwrap();
        let answer = serve_task(&message);
        let (id, payload) = parse_reply(&answer).unwrap();
        assert_eq!(id, 9);
        decode_reply(payload, items.len())
    }

    // These run the worker's side in this process: `fn_at` on an offset made by `task`, and
    // `conjure` of a fn item and of a closure.
    #[test]
    fn a_task_runs_its_items_through_the_offset() {
        let values = run(double, &[1u32, 2, 3]).unwrap();
        let values: Vec<u32> = values.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, [2, 4, 6]);
    }

    #[test]
    fn a_panicking_item_fails_alone() {
        let outcomes = run(
            |x: u32| {
                assert!(x != 2, "two is refused");
                x
            },
            &[1u32, 2, 3],
        )
        .unwrap();
        assert_eq!(outcomes[0].as_ref().unwrap(), &1);
        match &outcomes[1] {
            Err(Error::Panicked { message, .. }) => assert!(message.contains("two is refused")),
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(outcomes[2].as_ref().unwrap(), &3);
    }

    #[test]
    fn another_build_is_refused_before_anything_runs() {
        fn runner_of<F: Fn(u32) -> u32 + Copy>(_: F) -> Runner {
            run_items::<F, u32, u32>
        }
        let mut message = task(4, runner_of(double), &[1u32]).unwrap();
        // Another fingerprint, as from another build: the (here bogus) offset is not used.
        message[0] ^= 0xff;
        message[16..24].copy_from_slice(&i64::MAX.to_le_bytes());
        let answer = serve_task(&message);
        let (id, payload) = parse_reply(&answer).unwrap();
        assert_eq!(id, 4);
        let error = decode_reply::<u32>(payload, 1).unwrap_err();
        assert!(matches!(error, Error::BuildMismatch), "{error:?}");
    }

    #[test]
    fn a_hello_says_whether_its_worker_lives() {
        // `Hello::here` needs MPI started (for the host's name): this builds one by hand.
        let host = "node-1";
        let here = Hello {
            pid: proc_core::shared::pid(),
            start_time: proc_core::shared::start_time(),
            host: host.into(),
        };
        assert_eq!(Hello::decode(&here.encode()), Some(here.clone()));
        assert!(Hello::decode(&[0xff]).is_none());
        assert!(!here.dead(host));
        // A real child that has exited and been reaped is dead.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Hello {
            pid,
            start_time: 0,
            ..here.clone()
        };
        assert!(gone.dead(host));
        // Seen from another host, a pid tells nothing.
        assert!(!gone.dead("node-2"));
    }

    #[test]
    fn a_truncated_message_is_not_run() {
        let answer = serve_task(&[1, 2, 3]);
        assert_eq!(parse_reply(&answer).unwrap().0, u64::MAX);
        assert!(decode_reply::<u32>(&[0xff, 0xff], 1).is_err());
    }
}
