//! The worker's side: a child process that runs the tasks its pool sends, one after another,
//! and answers each before it takes the next.
//!
//! A task frame is a header — kind (`u8`), its place on the [`Board`] (`u8`), task id
//! (`u64`), and the offset of the runner function in this build (`i64`), little-endian —
//! then the task's items as a serde value with the handles inside them. An answer is a kind
//! and the task id, then its payload. Both go through the board's rings when they are small
//! and hold no handles, by the link otherwise (see `board`). Because a worker answers a task
//! before it starts the next, and marks on the board each task it starts, the pool knows
//! which task a worker that dies was running and which it had not started.

use std::any::Any;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proc_core::internal::{Incoming, encodes, fn_at, resident_memory, unwind};
use proc_core::{Error, Link};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::board::{Board, PLACES, Taken};
use crate::call::{Call, InitOutput, conjure};

/// Run the items of a task.
pub(crate) const JOB: u8 = 0;
/// Run the initializer.
pub(crate) const INIT: u8 = 1;
/// End: the pool lets the worker go. (End of file on the link would say the same, but a
/// forked worker holds a copy of the pool's end of its own link, so it never sees one.)
pub(crate) const EXIT: u8 = 2;
/// Nothing but a wake-up: tasks wait on the board.
pub(crate) const TASK_WAKE: u8 = 3;
/// Stands at a mark in the task ring whose task could not be sent after all: nothing to do.
pub(crate) const NOTHING: u8 = 4;
/// The length of a task frame's header.
pub(crate) const HEADER: usize = 18;
/// Where a task frame's place on the board is.
pub(crate) const PLACE: usize = 1;

/// The task's items ran; a `Vec<Result<R, Remote>>` follows.
pub(crate) const OK: u8 = 0;
/// The task could not run at all; a `Remote` follows.
pub(crate) const FAILED: u8 = 1;
/// The initializer ran.
pub(crate) const INIT_OK: u8 = 2;
/// The initializer failed; a `Remote` follows, and the worker ends.
pub(crate) const INIT_FAILED: u8 = 3;
/// The worker passed its memory limit and ends; it takes no more tasks.
pub(crate) const RETIRE: u8 = 4;
/// The task was cancelled before the worker started it.
pub(crate) const SKIPPED: u8 = 5;
/// Nothing but a wake-up: answers wait on the board (its id is 0).
pub(crate) const WAKE: u8 = 6;
/// The length of an answer's header.
pub(crate) const REPLY_HEADER: usize = 9;

/// How long a worker that runs out of tasks looks for the next one before it sleeps: long
/// enough that a steady stream of tasks reaches it without a system call on either side.
const SPIN: Duration = Duration::from_micros(5);

/// What runs a frame in the worker: returns whether the worker goes on.
pub(crate) type Runner = fn(u64, Frame<'_>, &Replies<'_>) -> bool;

/// A frame as the worker (a task) or the manager (an answer) got it: the bytes of a record
/// of a board's ring (in the reader's buffer, kept from one record to the next), or a frame
/// of the link with the handles that came with it.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// From the ring: plain bytes, so what it holds has no handles.
    Ring(&'a mut Vec<u8>),
    /// From the link.
    Link(Incoming),
}

impl Frame<'_> {
    /// The frame as an [`Incoming`] of its own, for a reader that keeps it: a record takes
    /// the reader's buffer with it (the next record grows a new one).
    pub(super) fn into_incoming(self) -> Incoming {
        match self {
            Frame::Ring(bytes) => Incoming::from_bytes(std::mem::take(bytes)),
            Frame::Link(frame) => frame,
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Frame::Ring(bytes) => bytes,
            Frame::Link(frame) => frame.bytes(),
        }
    }

    /// Decodes the value that starts at `offset`, as [`Incoming::decode`] does (a frame
    /// of the ring has no handles to give it).
    pub(super) fn decode<T: DeserializeOwned>(self, offset: usize) -> Result<T, Error> {
        match self {
            Frame::Ring(bytes) => match bytes.get(offset..) {
                Some(rest) => proc_core::codec::decode(rest),
                None => Err(Error::Protocol(format!(
                    "a frame of {} bytes is shorter than its header of {offset}",
                    bytes.len()
                ))),
            },
            Frame::Link(frame) => frame.decode(offset),
        }
    }

    /// Decodes the value that starts at `offset` with `seed`, as [`Frame::decode`] does.
    pub(super) fn decode_seed<'a, S: serde::de::DeserializeSeed<'a>>(
        &'a mut self,
        offset: usize,
        seed: S,
    ) -> Result<S::Value, Error> {
        match self {
            Frame::Ring(bytes) => match bytes.get(offset..) {
                Some(rest) => proc_core::codec::decode_seed(rest, seed),
                None => Err(Error::Protocol(format!(
                    "a frame of {} bytes is shorter than its header of {offset}",
                    bytes.len()
                ))),
            },
            Frame::Link(frame) => frame.decode_seed(offset, seed),
        }
    }
}

/// Where a worker's answers go: the board's ring when one is small and holds no handles,
/// the link otherwise (see `board`).
pub(crate) struct Replies<'a> {
    link: &'a Link,
    board: &'a Board,
    /// A mark is in the ring whose answer did not go out (sending it failed): the next
    /// answer goes by the link in its place.
    owed: std::cell::Cell<bool>,
    /// The buffer answers are encoded into, kept from one answer to the next: a chunk's
    /// answer is encoded into room that is already there (and mapped) instead of a vector
    /// that grows, copying itself, for each chunk.
    buffer: std::cell::RefCell<Vec<u8>>,
    /// The values vector of the last chunk, emptied, for the next chunk of the same result
    /// type (see [`Replies::spare`]).
    spare: std::cell::RefCell<Option<Box<dyn Any>>>,
}

/// The largest answer buffer a worker keeps between answers.
const KEEP_BUFFER: usize = 16 << 20;

impl Replies<'_> {
    fn new<'a>(link: &'a Link, board: &'a Board) -> Replies<'a> {
        Replies {
            link,
            board,
            owed: std::cell::Cell::new(false),
            buffer: std::cell::RefCell::new(Vec::new()),
            spare: std::cell::RefCell::new(None),
        }
    }

    /// The values vector that the last chunk with results of type `R` left (empty), or a
    /// new one. The worker writes a chunk's results into room it touched for the chunk
    /// before; freeing it after every chunk would let the allocator give the pages back to
    /// the kernel, and the next chunk would fault them in afresh (a tenth of a worker's time
    /// on a `map` of tiny tasks).
    fn spare<R: 'static>(&self) -> Vec<R> {
        match self.spare.take().map(|spare| spare.downcast::<Vec<R>>()) {
            Some(Ok(values)) => *values,
            _ => Vec::new(),
        }
    }

    /// Keeps `values` (emptied) for the next chunk, unless it is larger than the answer
    /// buffer may be: one huge chunk must not hold its memory for the worker's life.
    fn keep<R: 'static>(&self, mut values: Vec<R>) {
        values.clear();
        if values.capacity().saturating_mul(size_of::<R>()) <= KEEP_BUFFER {
            *self.spare.borrow_mut() = Some(Box::new(values));
        }
    }

    /// Sends the answer `header` + `value`.
    fn send<T: Serialize + ?Sized>(&self, header: &[u8], value: &T) -> Result<(), Error> {
        let mut bytes = self.buffer.take();
        bytes.clear();
        bytes.extend_from_slice(header);
        let sent = self.send_in(&mut bytes, value);
        if bytes.capacity() <= KEEP_BUFFER {
            *self.buffer.borrow_mut() = bytes;
        }
        sent
    }

    /// Sends `bytes` (the answer's header) + `value`, encoding the value after the header.
    fn send_in<T: Serialize + ?Sized>(&self, bytes: &mut Vec<u8>, value: &T) -> Result<(), Error> {
        let header_len = bytes.len();
        // Without procs's handle scope a value that holds handles does not encode: it goes
        // the way that carries them.
        let plain = proc_core::codec::encode_into(value, bytes).is_ok();
        if !self.owed.get() {
            if plain && self.board.answers().put(bytes) {
                if self.board.answers().wake_reader() {
                    self.link.send_bytes(&reply_header(WAKE, 0))?;
                }
                return Ok(());
            }
            if !plain {
                // A value that cannot go at all fails before anything is marked or sent.
                proc_core::internal::encodes(value)?;
            }
            // By the link, its place marked in the ring first.
            self.mark()?;
            self.owed.set(true);
        }
        let sent = if plain {
            self.link.send_bytes(bytes)
        } else {
            self.link.send_after(&bytes[..header_len], value)
        };
        if sent.is_ok() {
            self.owed.set(false);
        }
        sent
    }

    /// Marks in the ring that the next answer goes by the link. The ring has room for every
    /// answer a worker can owe, so this waits only for a pool that fell behind; a pool that
    /// is gone takes its (daemonic) workers with it.
    fn mark(&self) -> Result<(), Error> {
        let mut woke = false;
        while !self.board.answers().put_mark() {
            if !woke && self.board.answers().wake_reader() {
                self.link.send_bytes(&reply_header(WAKE, 0))?;
                woke = true;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        Ok(())
    }
}

/// The header of a task frame: an array, which the caller copies into the frame's buffer
/// (made once, with room for the items), so that a task costs no allocation for it.
pub(crate) fn header(kind: u8, id: u64, runner: Runner) -> [u8; HEADER] {
    let mut header = [0; HEADER];
    header[0] = kind;
    // The place (`header[PLACE]`) is set when the task is sent.
    header[2..10].copy_from_slice(&id.to_le_bytes());
    // SAFETY: `Runner` is a function pointer type.
    let offset = unsafe { proc_core::internal::fn_offset(runner) };
    header[10..].copy_from_slice(&offset.to_le_bytes());
    header
}

/// The header of an answer.
pub(crate) fn reply_header(kind: u8, id: u64) -> [u8; REPLY_HEADER] {
    let mut header = [0; REPLY_HEADER];
    header[0] = kind;
    header[1..].copy_from_slice(&id.to_le_bytes());
    header
}

/// Kind and id of an answer, if the frame is long enough to have them.
pub(crate) fn parse_reply(bytes: &[u8]) -> Option<(u8, u64)> {
    let id = bytes.get(1..REPLY_HEADER)?.try_into().ok()?;
    Some((bytes[0], u64::from_le_bytes(id)))
}

pub(crate) use proc_core::internal::unwind::Remote;

/// What a worker is started with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub(crate) link: Link,
    pub(crate) max_memory: Option<u64>,
    /// The board it shares with its pool.
    pub(crate) board: proc_core::Handle,
}

/// Where a worker's tasks come from: the board's task ring, and the link at each mark there.
struct Tasks<'a> {
    link: &'a Link,
    board: &'a Board,
    /// Frames read from the link while the worker slept, before the ring's mark of their
    /// place was.
    early: VecDeque<Incoming>,
    /// The buffer the records of the ring are taken into (see [`Ring::take_into`](super::board::Ring::take_into)).
    record: Vec<u8>,
}

impl Tasks<'_> {
    /// The next task frame; `None` when the worker ends: the pool is gone, or broke the
    /// ring.
    fn next(&mut self) -> Option<Frame<'_>> {
        let ring = self.board.tasks();
        loop {
            match ring.take_into(&mut self.record) {
                Ok(Some(Taken::Record(()))) => return Some(Frame::Ring(&mut self.record)),
                Ok(Some(Taken::OnLink)) => return self.on_link().map(Frame::Link),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "procs.pool.worker.broken_ring");
                    return None;
                }
            }
            if self.spin() {
                continue;
            }
            // About to sleep: the pool wakes us through the link if it puts a task from now
            // on, or we see it here.
            ring.set_reader_sleeping(true);
            if !ring.has_records() {
                let frame = self.link.recv_incoming().ok()?;
                if !is_wake(&frame) {
                    self.early.push_back(frame);
                    // The pool marks every task it sends by the link, and sends few ahead.
                    if self.early.len() > PLACES + 2 {
                        return None;
                    }
                }
            }
            ring.set_reader_sleeping(false);
        }
    }

    /// Looks for a task in the ring for a while; `true` when one came.
    fn spin(&self) -> bool {
        let ring = self.board.tasks();
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if ring.has_records() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN {
                return false;
            }
        }
    }

    /// The frame at a mark in the ring: read early, or the next frame on the link (the pool
    /// sends it right after the mark).
    fn on_link(&mut self) -> Option<Incoming> {
        if let Some(frame) = self.early.pop_front() {
            return Some(frame);
        }
        loop {
            let frame = self.link.recv_incoming().ok()?;
            if !is_wake(&frame) {
                return Some(frame);
            }
        }
    }
}

/// Whether `frame` is the pool's wake-up (not a task).
fn is_wake(frame: &Incoming) -> bool {
    frame.bytes().first() == Some(&TASK_WAKE)
}

/// The worker's life: runs the tasks it is sent until the pool lets it go (or goes away),
/// the initializer fails, or the memory limit is passed.
pub(crate) fn serve(setup: Setup) {
    let Setup {
        link,
        max_memory,
        board,
    } = setup;
    let Ok(board) = Board::from_handle(board) else {
        return;
    };
    let replies = Replies::new(&link, &board);
    let mut tasks = Tasks {
        link: &link,
        board: &board,
        early: VecDeque::new(),
        record: Vec::new(),
    };
    while let Some(frame) = tasks.next() {
        match frame.bytes().first() {
            Some(&EXIT) => return,
            Some(&NOTHING) => continue,
            _ => {}
        }
        let Some((id, offset)) = parse_header(frame.bytes()) else {
            return;
        };
        let place = usize::from(frame.bytes()[PLACE]);
        if frame.bytes()[0] == JOB && !board.start(place) {
            if replies.send(&reply_header(SKIPPED, id), &()).is_err() {
                return;
            }
            continue;
        }
        // SAFETY: this worker was started by a pool of a parent that runs this very build (the
        // process layer checked the build fingerprint before `serve` ran), and the pool made
        // `offset` with `fn_offset` from a `Runner`, over a board and a link that only the
        // two share.
        let runner: Runner = unsafe { fn_at(offset) };
        if !runner(id, frame, &replies) {
            return;
        }
        if max_memory.is_some_and(|limit| resident_memory().is_some_and(|used| used > limit)) {
            let _ = replies.send(&reply_header(RETIRE, id), &());
            return;
        }
    }
}

fn parse_header(bytes: &[u8]) -> Option<(u64, i64)> {
    let id = u64::from_le_bytes(bytes.get(2..10)?.try_into().ok()?);
    let offset = i64::from_le_bytes(bytes.get(10..HEADER)?.try_into().ok()?);
    Some((id, offset))
}

/// Runs each item of a task with `C` and answers with all the results.
pub(crate) fn run_items<C, A>(id: u64, frame: Frame<'_>, link: &Replies<'_>) -> bool
where
    C: Call<A>,
    A: DeserializeOwned,
    C::Output: Serialize + 'static,
{
    // SAFETY: the pool only names callables built from a type `F: Fn(..)` that passed
    // `no_captures` — the `Direct`/`Star` wrappers of one (`StarFn` is sealed to the `Fn`
    // impls); on stable Rust a zero-sized one is a fn item or a closure with no captures.
    let f: C = unsafe { conjure() };
    let mut values = link.spare();
    values.clear();
    let seed = RunEach {
        call: |item| f.call(item),
        values: &mut values,
        items: std::marker::PhantomData,
    };
    let mut frame = frame;
    let mixed = match frame.decode_seed(HEADER, seed) {
        Ok(mixed) => mixed,
        Err(e) => {
            let failed = Remote::Failed(format!("cannot decode the task's arguments: {e}"));
            return link.send(&reply_header(FAILED, id), &failed).is_ok();
        }
    };
    let header = reply_header(OK, id);
    let Some(outcomes) = mixed else {
        let all = Results::AllOk(values);
        return match link.send(&header, &all) {
            Ok(()) => {
                if let Results::AllOk(values) = all {
                    link.keep(values);
                }
                true
            }
            // Some value does not encode: find which, item by item.
            Err(Error::Decode(_)) => match all {
                Results::AllOk(values) => {
                    send_mixed(link, &header, values.into_iter().map(Ok).collect())
                }
                Results::Mixed(_) => false,
            },
            Err(e) => on_send_error(link, id, e),
        };
    };
    send_mixed(link, &header, outcomes)
}

/// Runs `call` on each item of a task's sequence as it is decoded, its value pushed onto
/// `values` (empty at first): the items make no vector of their own, which for a chunk of
/// tiny items would be written once and read once, in memory often fresh from the kernel.
/// The value is `None` when every item gave a value, each item's outcome once one panicked
/// (the items run under one `catch_unwind` until then, the rest one by one, as
/// [`run_chunk`](crate::map::run_chunk) runs them).
///
/// An item that does not decode fails the whole task, as before any ran; the items before
/// it have run by then (an encoding the pool made always decodes, unless an item's
/// `Serialize` and `Deserialize` disagree). So does a `Deserialize` that panics.
struct RunEach<'v, A, R, F> {
    call: F,
    values: &'v mut Vec<R>,
    items: std::marker::PhantomData<fn() -> A>,
}

impl<'de, A, R, F> serde::de::DeserializeSeed<'de> for RunEach<'_, A, R, F>
where
    A: Deserialize<'de>,
    F: FnMut(A) -> R,
{
    type Value = Option<Vec<Result<R, Remote>>>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, A, R, F> serde::de::Visitor<'de> for RunEach<'_, A, R, F>
where
    A: Deserialize<'de>,
    F: FnMut(A) -> R,
{
    type Value = Option<Vec<Result<R, Remote>>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence of a task's items")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let RunEach {
            mut call, values, ..
        } = self;
        // The items decoded whole: one more than the values when a panic is the call's,
        // and then the sequence can go on.
        let mut decoded = 0usize;
        let caught = unwind::catch(|| {
            while let Some(item) = seq.next_element::<A>()? {
                decoded += 1;
                values.push(call(item));
            }
            Ok(())
        });
        let panic = match caught {
            Ok(result) => return result.map(|()| None),
            Err(panic) if decoded > values.len() => panic,
            Err(panic) => {
                return Err(proc_core::codec::de_error(format_args!(
                    "an item's Deserialize panicked: {}",
                    panic.message
                )));
            }
        };
        // The item that panicked was taken from the sequence and not pushed.
        let mut outcomes: Vec<Result<R, Remote>> = values.drain(..).map(Ok).collect();
        outcomes.push(Err(Remote::from(panic)));
        while let Some(item) = seq.next_element::<A>()? {
            outcomes.push(unwind::catch(|| call(item)).map_err(Remote::from));
        }
        Ok(Some(outcomes))
    }
}

/// The results of a task's items, as they travel: all values when none failed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Results<R> {
    AllOk(Vec<R>),
    Mixed(Vec<Result<R, Remote>>),
}

/// Reads [`Results`] with the values of `AllOk` put at the end of a vector the caller has
/// (the output of `map`, sized for every item), and the outcomes of `Mixed` given back.
pub(crate) struct AppendResults<'v, R> {
    pub(crate) values: &'v mut Vec<R>,
}

impl<'de, R: Deserialize<'de>> serde::de::DeserializeSeed<'de> for AppendResults<'_, R> {
    type Value = Option<Vec<Result<R, Remote>>>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_enum("Results", &["AllOk", "Mixed"], self)
    }
}

impl<'de, R: Deserialize<'de>> serde::de::Visitor<'de> for AppendResults<'_, R> {
    type Value = Option<Vec<Result<R, Remote>>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a task's results")
    }

    fn visit_enum<E: serde::de::EnumAccess<'de>>(self, data: E) -> Result<Self::Value, E::Error> {
        use serde::de::VariantAccess;
        let (variant, access): (u32, _) = data.variant()?;
        match variant {
            0 => access
                .newtype_variant_seed(Append(self.values))
                .map(|()| None),
            1 => access.newtype_variant().map(Some),
            other => Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Unsigned(other.into()),
                &"the variant 0 or 1 of a task's results",
            )),
        }
    }
}

/// Reads a sequence onto the end of a vector.
struct Append<'v, R>(&'v mut Vec<R>);

impl<'de, R: Deserialize<'de>> serde::de::DeserializeSeed<'de> for Append<'_, R> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, R: Deserialize<'de>> serde::de::Visitor<'de> for Append<'_, R> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence of results")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(value) = seq.next_element()? {
            self.0.push(value);
        }
        Ok(())
    }
}

/// The [`Results`] of a one-item task, read from the same bytes without a vector for the
/// one result (a task of `apply_async` or `submit` is answered this way many times over).
#[derive(Debug, Deserialize)]
#[serde(bound = "R: Deserialize<'de>")]
pub(crate) enum OneResult<R> {
    AllOk(Single<R>),
    Mixed(Single<Result<R, Remote>>),
}

/// The first item of a sequence, and how many items it held (the others are read and
/// dropped), so that a worker that answers with the wrong count is still caught.
#[derive(Debug)]
pub(crate) struct Single<T> {
    pub(crate) first: Option<T>,
    pub(crate) len: usize,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Single<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Single<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of results")
            }

            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<Single<T>, S::Error> {
                let first = seq.next_element()?;
                let mut len = usize::from(first.is_some());
                while seq.next_element::<T>()?.is_some() {
                    len += 1;
                }
                Ok(Single { first, len })
            }
        }
        deserializer.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

fn send_mixed<R: Serialize>(
    link: &Replies<'_>,
    header: &[u8],
    outcomes: Vec<Result<R, Remote>>,
) -> bool {
    let id = u64::from_le_bytes(header[1..REPLY_HEADER].try_into().unwrap_or_default());
    let results = Results::Mixed(outcomes);
    match link.send(header, &results) {
        Ok(()) => true,
        Err(Error::Decode(_)) => {
            // Some result does not encode: that item fails, the others are kept.
            let Results::Mixed(outcomes) = results else {
                return false;
            };
            let outcomes: Vec<Result<R, Remote>> = outcomes
                .into_iter()
                .map(|r| match r {
                    Ok(value) => match encodes(&value) {
                        Ok(()) => Ok(value),
                        Err(e) => Err(Remote::Failed(format!("cannot encode the result: {e}"))),
                    },
                    Err(e) => Err(e),
                })
                .collect();
            match link.send(header, &Results::Mixed(outcomes)) {
                Ok(()) => true,
                Err(e) => on_send_error(link, id, e),
            }
        }
        Err(e) => on_send_error(link, id, e),
    }
}

/// After an answer failed to go out: a failure of the task's own (too many handles, too
/// large) fails the task and the worker goes on; a gone pool ends the worker.
fn on_send_error(link: &Replies<'_>, id: u64, error: Error) -> bool {
    match error {
        Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            let failed = Remote::Failed(format!("cannot send the result: {e}"));
            link.send(&reply_header(FAILED, id), &failed).is_ok()
        }
        _ => false,
    }
}

/// Runs the initializer; the worker goes on only when it succeeded.
pub(crate) fn run_init<C, A>(id: u64, frame: Frame<'_>, link: &Replies<'_>) -> bool
where
    C: Call<A>,
    A: DeserializeOwned,
    C::Output: InitOutput,
{
    let outcome = match frame.decode::<A>(HEADER) {
        Ok(args) => {
            // SAFETY: as in `run_items`: an initializer is a `Direct` of an `F: Fn(A) -> O`
            // that passed `no_captures`.
            let f: C = unsafe { conjure() };
            match unwind::catch(|| f.call(args).into_outcome()) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(Remote::Failed(message)),
                Err(panic) => Err(Remote::from(panic)),
            }
        }
        Err(e) => Err(Remote::Failed(format!(
            "cannot decode the initializer's arguments: {e}"
        ))),
    };
    match outcome {
        Ok(()) => link.send(&reply_header(INIT_OK, id), &()).is_ok(),
        Err(remote) => {
            let _ = link.send(&reply_header(INIT_FAILED, id), &remote);
            false
        }
    }
}
