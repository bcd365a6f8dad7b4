//! The messages between rank 0 and the worker ranks, and what a worker runs.
//!
//! Rank 0 sends tasks in bundles: one MPI byte message with tag [`TASK`] that holds one or
//! more task frames back to back. A frame is its length (`u32`, little-endian) then the task:
//! a header — the sender's build fingerprint (`u64`), the task id (`u64`) and the offset of
//! the runner function in this build (`i64`), little-endian — then the task's items, `Vec<A>`
//! in postcard. [`task`] makes one frame, which is also a bundle of one, so a bundle is the
//! first task's buffer with the others appended (a lone task, a large one say, is sent with no
//! copy). A reply, tag [`REPLY`], holds several answers: the time the worker spent running
//! them (`u64` nanoseconds), then answer frames, each its length (`u32`), the task id (`u64`)
//! and a [`Reply`] in postcard. A worker runs and answers its tasks in the order they came,
//! every frame of a bundle once. [`EXIT`] (empty) lets a worker go. A spawned worker first
//! says who it is, tag [`HELLO`]: a [`Hello`] in postcard.

use std::time::Duration;

use proc_core::Error;
use proc_core::internal::{fingerprint, fn_at, fn_offset};
use proc_pool::internal::{self, conjure, run_chunk};
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
/// The length of a task's header, after its frame's length.
pub(crate) const HEADER: usize = 24;
/// The length of a frame's length.
const LEN: usize = 4;
/// The length of a reply's header (the worker's busy time).
pub(crate) const REPLY_HEADER: usize = 8;
/// The longest message: MPI counts elements in a C `int`.
pub(crate) const MAX_MESSAGE: usize = i32::MAX as usize;
/// The longest answer (its id and its [`Reply`]), so that a reply of one fits a message.
const MAX_ANSWER: usize = MAX_MESSAGE - REPLY_HEADER - LEN;

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
///
/// The message is one frame (its length first): a bundle of one, to which [`bundle`] appends
/// other tasks' messages.
pub(crate) fn task<A: Serialize>(id: u64, runner: Runner, items: &[A]) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::with_capacity(LEN + HEADER + 16);
    bytes.extend_from_slice(&[0; LEN]);
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
    let len = frame_len(bytes.len() - LEN);
    bytes[..LEN].copy_from_slice(&len);
    Ok(bytes)
}

/// A frame's length as its prefix: every frame is shorter than [`MAX_MESSAGE`], which fits.
fn frame_len(len: usize) -> [u8; LEN] {
    u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes()
}

/// Appends the task message `task` (from [`task`]) to the bundle `bundle`, when the bundle
/// stays within `limit` bytes; `false` (and nothing appended) otherwise.
pub(crate) fn bundle(bundle: &mut Vec<u8>, task: &[u8], limit: usize) -> bool {
    if bundle.len() + task.len() > limit.min(MAX_MESSAGE) {
        return false;
    }
    bundle.extend_from_slice(task);
    true
}

/// The frames of a bundle or of a reply's answers, in order; a frame cut short (a message
/// that no sender here makes) ends them with `None`.
pub(crate) fn frames(mut bytes: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let frame = bytes
            .get(..LEN)
            .and_then(|len| Some(u32::from_le_bytes(len.try_into().ok()?) as usize))
            .and_then(|len| bytes.get(LEN..LEN + len));
        match frame {
            Some(frame) => {
                bytes = &bytes[LEN + frame.len()..];
                Some(Some(frame))
            }
            None => {
                bytes = &[];
                Some(None)
            }
        }
    })
}

/// Appends an answer (from [`serve_task`]) to the answers of a reply.
pub(crate) fn push_answer(answers: &mut Vec<u8>, answer: &[u8]) {
    answers.extend_from_slice(&frame_len(answer.len()));
    answers.extend_from_slice(answer);
}

/// The length that a reply holding `answers` (as [`push_answer`] made them) and one more
/// answer of `answer` bytes would have.
pub(crate) fn reply_len(answers: &[u8], answer: usize) -> usize {
    REPLY_HEADER + answers.len() + LEN + answer
}

/// The reply message of `answers` that took the worker `busy` to run.
pub(crate) fn reply(busy: Duration, answers: &[u8]) -> Vec<u8> {
    let busy = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
    let mut bytes = Vec::with_capacity(REPLY_HEADER + answers.len());
    bytes.extend_from_slice(&busy.to_le_bytes());
    bytes.extend_from_slice(answers);
    bytes
}

/// Runs a task frame (a task message without its length) in a worker: the answer to send
/// back (id first).
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
    if reply.len() > MAX_ANSWER {
        reply.truncate(8);
        let failed: Reply<()> = Reply::Failed(Remote::Failed(
            "the task's results encode to more than 2 GiB, the most one MPI message holds".into(),
        ));
        return encode_after(reply, &failed);
    }
    reply
}

/// An answer of a reply: the task id, and the payload for its job.
pub(crate) type Answer<'a> = (u64, &'a [u8]);

/// Decodes a reply: the time the worker spent running its tasks, and each answer (`None` for
/// a malformed answer, which names no task).
pub(crate) fn parse_reply(
    message: &[u8],
) -> Option<(Duration, impl Iterator<Item = Option<Answer<'_>>>)> {
    let busy = u64::from_le_bytes(message.get(..REPLY_HEADER)?.try_into().ok()?);
    let answers = frames(&message[REPLY_HEADER..]).map(|frame| {
        let frame = frame?;
        let id = u64::from_le_bytes(frame.get(..8)?.try_into().ok()?);
        Some((id, &frame[8..]))
    });
    Some((Duration::from_nanos(busy), answers))
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
    Ok(match decode(payload, count)? {
        Ok(values) => values.into_iter().map(Ok).collect(),
        Err(outcomes) => outcomes,
    })
}

/// Decodes a map task's answer: every item's value as it came when none failed (with no
/// pass over them), each item's outcome otherwise.
pub(crate) fn decode_answer<R: DeserializeOwned>(
    payload: &[u8],
    count: usize,
) -> Result<internal::Answer<R>, Error> {
    Ok(match decode(payload, count)? {
        Ok(values) => internal::Answer::Values(values),
        Err(outcomes) => internal::Answer::Mixed(outcomes),
    })
}

/// Decodes a task's answer of `count` items: all their values (`Ok`), or each item's
/// outcome once one failed (`Err`).
fn decode<R: DeserializeOwned>(
    payload: &[u8],
    count: usize,
) -> Result<Result<Vec<R>, Vec<proc_core::Result<R>>>, Error> {
    let reply: Reply<R> = postcard::from_bytes(payload)
        .map_err(|e| Error::Decode(format!("cannot decode the task's result: {e}")))?;
    let (outcomes, len) = match reply {
        Reply::Values(values) => {
            let len = values.len();
            (Ok(values), len)
        }
        Reply::Mixed(outcomes) => {
            let len = outcomes.len();
            let outcomes = outcomes.into_iter().map(|o| o.map_err(Error::from));
            (Err(outcomes.collect()), len)
        }
        Reply::Failed(remote) => return Err(remote.into()),
    };
    if len != count {
        return Err(Error::Protocol(format!(
            "a worker rank answered {len} results for {count} items"
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
        let answer = serve(&message);
        let (_, mut answers) = parse_reply(&answer).unwrap();
        let (id, payload) = answers.next().unwrap().unwrap();
        assert_eq!(id, 9);
        assert!(answers.next().is_none());
        decode_reply(payload, items.len())
    }

    /// The runner of a function from `u32` to `u32` (a fn item or a closure without captures).
    fn runner_of<F: Fn(u32) -> u32 + Copy>(_: F) -> Runner {
        run_items::<F, u32, u32>
    }

    /// What a worker makes of a bundle: a reply with an answer to each of its frames.
    fn serve(bundle: &[u8]) -> Vec<u8> {
        let mut answers = Vec::new();
        for frame in frames(bundle) {
            push_answer(&mut answers, &serve_task(frame.unwrap_or_default()));
        }
        reply(Duration::from_micros(3), &answers)
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
        let mut message = task(4, runner_of(double), &[1u32]).unwrap();
        // Another fingerprint, as from another build: the (here bogus) offset is not used.
        message[LEN] ^= 0xff;
        message[LEN + 16..LEN + 24].copy_from_slice(&i64::MAX.to_le_bytes());
        let answer = serve(&message);
        let (_, mut answers) = parse_reply(&answer).unwrap();
        let (id, payload) = answers.next().unwrap().unwrap();
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
    fn a_map_answer_keeps_its_values_whole_unless_one_failed() {
        let answer = |items: &[u32]| {
            let message = task(3, runner_of(|x: u32| 12 / x), items).unwrap();
            let answer = serve(&message);
            let (_, mut answers) = parse_reply(&answer).unwrap();
            let (_, payload) = answers.next().unwrap().unwrap();
            (decode_answer::<u32>(payload, items.len()), payload.to_vec())
        };
        let (values, _) = answer(&[1, 2, 3]);
        assert!(matches!(values, Ok(internal::Answer::Values(v)) if v == [12, 6, 4]));
        let (mixed, payload) = answer(&[1, 0, 3]);
        match mixed {
            Ok(internal::Answer::Mixed(outcomes)) => {
                assert_eq!(outcomes.len(), 3);
                assert!(outcomes[1].as_ref().unwrap_err().is_panic());
                assert_eq!(outcomes[2].as_ref().unwrap(), &4);
            }
            other => panic!("expected each item's outcome, got {other:?}"),
        }
        // An answer of another length than the task's is refused.
        let error = decode_answer::<u32>(&payload, 2).unwrap_err();
        assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    }

    #[test]
    fn a_truncated_message_is_not_run() {
        let answer = serve_task(&[1, 2, 3]);
        assert_eq!(&answer[..], &u64::MAX.to_le_bytes());
        assert!(decode_reply::<u32>(&[0xff, 0xff], 1).is_err());
        // A bundle whose last frame is cut short: the whole frames run, the rest is
        // answered once, with no task's id.
        let mut bundle = task(1, runner_of(double), &[5u32]).unwrap();
        let second = task(2, runner_of(double), &[6u32]).unwrap();
        bundle.extend_from_slice(&second[..second.len() - 1]);
        let answer = serve(&bundle);
        let (_, answers) = parse_reply(&answer).unwrap();
        let answers: Vec<_> = answers.map(Option::unwrap).collect();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0].0, 1);
        assert_eq!(answers[1].0, u64::MAX);
        assert!(parse_reply(&[0; 3]).is_none());
    }

    // A bundle is its tasks' messages back to back; the reply answers them in order, with
    // the worker's busy time.
    #[test]
    fn a_bundle_is_answered_in_one_reply_in_order() {
        let refuse = |x: u32| {
            assert!(x != 20, "twenty is refused");
            x
        };
        let mut bundle = task(1, runner_of(double), &[1u32, 2]).unwrap();
        for (id, items) in [(2, vec![10u32]), (3, vec![20]), (4, vec![30, 40])] {
            let message = task(id, runner_of(refuse), &items).unwrap();
            assert!(super::bundle(&mut bundle, &message, 1 << 20));
        }
        // A limit that the bundle would pass refuses the task.
        let more = task(5, runner_of(double), &[1u32]).unwrap();
        assert!(!super::bundle(&mut bundle.clone(), &more, bundle.len()));
        let answer = serve(&bundle);
        let (busy, answers) = parse_reply(&answer).unwrap();
        assert_eq!(busy, Duration::from_micros(3));
        let answers: Vec<(u64, &[u8])> = answers.map(Option::unwrap).collect();
        assert_eq!(
            answers.iter().map(|a| a.0).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let values = |payload, count| -> Vec<proc_core::Result<u32>> {
            decode_reply(payload, count).unwrap()
        };
        let first: Vec<u32> = values(answers[0].1, 2)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(first, [2, 4]);
        assert_eq!(values(answers[1].1, 1)[0].as_ref().unwrap(), &10);
        // Only the task that panicked failed.
        assert!(values(answers[2].1, 1)[0].as_ref().unwrap_err().is_panic());
        let last: Vec<u32> = values(answers[3].1, 2)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(last, [30, 40]);
    }
}
