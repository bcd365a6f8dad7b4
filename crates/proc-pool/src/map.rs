//! What `map`, `imap` and their kin share across thread and process pools: the chunk rule,
//! the eager `map`, and the lazy iterators that keep a bounded number of chunks in flight.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proc_core::internal::{Deadline, Incoming, unwind};
use proc_core::{Error, Result};

use crate::future::{Future, Waiter};

/// What one chunk of items gave: the outcome of a [`ChunkFuture`].
///
/// # Examples
///
/// ```
/// use proc_pool::internal::{Answer, pending};
///
/// let (chunk, completer) = pending::<Answer<u8>>();
/// completer.finish(Ok(Answer::Mixed(vec![Ok(1), Err(proc_pool::core::Error::Cancelled)])));
/// assert!(matches!(chunk.into_result(), Ok(Answer::Mixed(outcomes)) if outcomes.len() == 2));
/// ```
#[derive(Debug)]
pub enum Answer<R> {
    /// Every item's value: no item failed.
    Values(Vec<R>),
    /// Each item's outcome: one failed, or the answer does not tell.
    Mixed(Vec<Result<R>>),
    /// A worker process's answer, decoded by whoever takes it: the caller of `map` (who
    /// would only wait otherwise), not the pool's one result thread.
    Encoded {
        /// The worker's reply frame.
        frame: Incoming,
        /// How many items the chunk had.
        count: usize,
        /// Decodes `frame`, a chunk of `count` items: their values at the end of the vector
        /// when all are values (`None`), each one's outcome otherwise; on an error the
        /// vector is as it was.
        decode: DecodeInto<R>,
    },
}

/// How an [`Answer::Encoded`] is decoded: the frame of a chunk of so many items, onto the
/// end of a vector.
pub(crate) type DecodeInto<R> = fn(Incoming, usize, &mut Vec<R>) -> Result<Option<Vec<Result<R>>>>;

impl<R> Answer<R> {
    /// The answer with its values decoded.
    fn decoded(self) -> Result<Answer<R>> {
        match self {
            Answer::Encoded {
                frame,
                count,
                decode,
            } => {
                let mut values = Vec::new();
                Ok(match decode(frame, count, &mut values)? {
                    None => Answer::Values(values),
                    Some(outcomes) => Answer::Mixed(outcomes),
                })
            }
            other => Ok(other),
        }
    }

    /// Each item's outcome, in order.
    fn into_outcomes(self) -> Result<Outcomes<R>> {
        Ok(match self.decoded()? {
            Answer::Values(values) => Outcomes::Values(values.into_iter()),
            Answer::Mixed(outcomes) => Outcomes::Mixed(outcomes.into_iter()),
            Answer::Encoded { .. } => Outcomes::Mixed(Vec::new().into_iter()),
        })
    }
}

/// The outcomes of a chunk, handed out one by one.
enum Outcomes<R> {
    Values(std::vec::IntoIter<R>),
    Mixed(std::vec::IntoIter<Result<R>>),
}

impl<R> Outcomes<R> {
    fn next(&mut self) -> Option<Result<R>> {
        match self {
            Outcomes::Values(values) => values.next().map(Ok),
            Outcomes::Mixed(outcomes) => outcomes.next(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Outcomes::Values(values) => values.len(),
            Outcomes::Mixed(outcomes) => outcomes.len(),
        }
    }
}

/// Runs `call` on each item: all the values, or (once one panicked) each item's outcome.
/// The items run under one `catch_unwind` until one panics, the rest one by one.
///
/// # Examples
///
/// ```
/// use proc_pool::core::internal::unwind::Remote;
///
/// let (values, mixed) = proc_pool::internal::run_chunk::<_, _, Remote>(vec![1, 2], |x: u8| x * 2);
/// assert_eq!((values, mixed.is_none()), (vec![2, 4], true));
/// let (_, mixed) = proc_pool::internal::run_chunk::<_, _, Remote>(vec![1, 0, 2], |x: u8| 2 / x);
/// let mixed = mixed.unwrap();
/// assert!(mixed[0].is_ok() && mixed[1].is_err() && mixed[2].is_ok());
/// ```
pub fn run_chunk<A, R, E: From<unwind::Panic>>(
    items: Vec<A>,
    call: impl FnMut(A) -> R,
) -> (Vec<R>, Option<Vec<std::result::Result<R, E>>>) {
    run_chunk_into(items, Vec::new(), call)
}

/// Like [`run_chunk`], pushing the values into `values` (emptied first): a worker that
/// hands it the vector of its last chunk writes into memory it has already touched, instead
/// of a fresh allocation that the kernel must fault in page by page.
pub(crate) fn run_chunk_into<A, R, E: From<unwind::Panic>>(
    items: Vec<A>,
    mut values: Vec<R>,
    mut call: impl FnMut(A) -> R,
) -> (Vec<R>, Option<Vec<std::result::Result<R, E>>>) {
    let mut items = items.into_iter();
    values.clear();
    values.reserve(items.len());
    let panic = match unwind::catch(|| {
        for item in items.by_ref() {
            values.push(call(item));
        }
    }) {
        Ok(()) => return (values, None),
        Err(panic) => panic,
    };
    // The item that panicked was taken from `items` and not pushed.
    let mut outcomes: Vec<std::result::Result<R, E>> = values.drain(..).map(Ok).collect();
    outcomes.push(Err(E::from(panic)));
    outcomes.extend(items.map(|item| unwind::catch(|| call(item)).map_err(E::from)));
    (values, Some(outcomes))
}

/// The results of one chunk of items.
pub type ChunkFuture<R> = Future<Answer<R>>;

/// Sends a chunk of items to the pool: the future of their results, or why it could not.
pub type Submit<A, R> = Box<dyn FnMut(Vec<A>) -> Result<ChunkFuture<R>> + Send>;

/// How many items one submission of a lazy map may carry, asked before each (see
/// [`imap_runs`]): a whole number of chunks is sent, at least one.
pub type Runs = Box<dyn Fn() -> usize + Send>;

/// The order in which a lazy map yields its results.
///
/// # Examples
///
/// ```
/// let order = proc_pool::internal::Order::Input;
/// assert_ne!(order, proc_pool::internal::Order::Completion);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// In input order (`imap`, the executors' `map`).
    Input,
    /// As the chunks finish (`imap_unordered`).
    Completion,
}

/// Python's `Pool.map` rule: about four chunks per worker.
pub(crate) fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(workers.max(1) * 4).max(1)
}

/// Refuses a chunk size of zero, as Python does.
pub(crate) fn check_chunksize(chunksize: usize) -> Result<usize> {
    if chunksize == 0 {
        return Err(Error::InvalidState("chunksize must be at least 1"));
    }
    Ok(chunksize)
}

/// The items of an eager map, and how many there are.
///
/// An iterator that says exactly how many items it has (a range, a vector's, a `map` of
/// either) is taken as it is, and its items are pulled a chunk at a time as the chunks are
/// sent: a map of many small items then makes no copy of them all first (for 200,000 `u64`s,
/// 1.6 MB written and read again, and hundreds of fresh pages faulted in). Python's `map`
/// likewise takes an input with a length as it is. Any other input is collected first, as
/// its length decides the chunk size.
pub(crate) enum Items<I: Iterator> {
    /// The iterator, and the length it gave. A length that is wrong only makes the chunks
    /// another size: the chunks take what the iterator yields.
    Exact { iter: I, len: usize },
    /// The items, collected.
    Collected(std::vec::IntoIter<I::Item>),
}

/// The [`Items`] of `iterable`, or the panic of its iterator.
pub(crate) fn items<I: IntoIterator>(iterable: I) -> Result<Items<I::IntoIter>> {
    unwind::catch(|| {
        let iter = iterable.into_iter();
        match iter.size_hint() {
            (low, Some(high)) if low == high => Items::Exact { iter, len: low },
            _ => Items::Collected(iter.collect::<Vec<_>>().into_iter()),
        }
    })
    .map_err(Error::from)
}

impl<I: Iterator> Items<I> {
    /// How many items there are (as the iterator said, for an exact one).
    pub(crate) fn len(&self) -> usize {
        match self {
            Items::Exact { len, .. } => *len,
            Items::Collected(items) => items.len(),
        }
    }
}

impl<I: Iterator> Iterator for Items<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        match self {
            Items::Exact { iter, .. } => iter.next(),
            Items::Collected(items) => items.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Items::Exact { iter, .. } => iter.size_hint(),
            Items::Collected(items) => items.size_hint(),
        }
    }
}

/// How an eager map ([`map_all`], [`map_async`]) sends its chunks as it cuts them from its
/// items: a [`Submit`] takes each chunk as a vector, and a process pool encodes each item as
/// it takes it, into the chunk's frame, without a vector of them.
pub(crate) trait SendChunks<A, R> {
    /// Sends the next chunk, the next `chunksize` items of `items` (fewer at its end): its
    /// future, or `None` when `items` has no more.
    ///
    /// # Errors
    ///
    /// The submission's error, and [`Error::Panicked`] for a panic of the iterator (the
    /// items it gave before are dropped, unsent).
    fn send_chunk<I: Iterator<Item = A>>(
        &mut self,
        items: &mut I,
        chunksize: usize,
    ) -> Result<Option<ChunkFuture<R>>>;
}

impl<A, R> SendChunks<A, R> for Submit<A, R> {
    fn send_chunk<I: Iterator<Item = A>>(
        &mut self,
        items: &mut I,
        chunksize: usize,
    ) -> Result<Option<ChunkFuture<R>>> {
        // A chunk is pushed item by item: collecting it would make room for as many items as
        // the iterator's lower bound says, which an exact one that lies could make huge.
        let room = chunksize
            .min(items.size_hint().0)
            .min(CHUNK_ROOM / size_of::<A>().max(1));
        let chunk = unwind::catch(|| {
            let mut chunk = Vec::with_capacity(room);
            for item in items.by_ref().take(chunksize) {
                chunk.push(item);
            }
            chunk
        })?;
        if chunk.is_empty() {
            return Ok(None);
        }
        self(chunk).map(Some)
    }
}

/// Sends every chunk of `items`, then waits for all of them: the values in input order, or
/// the first error (in input order) once no chunk is still running — Python's no-failfast
/// rule.
///
/// A panic of the input's iterator while the chunks are cut (see [`Items`]) is the error,
/// as a failed submission is; the chunks sent before it still run.
pub(crate) fn map_all<I: Iterator, R>(
    items: Items<I>,
    chunksize: usize,
    send: &mut impl SendChunks<I::Item, R>,
) -> Result<Vec<R>> {
    let len = items.len();
    let chunks = submit_all(items, chunksize, send)?;
    // Each chunk in input order as soon as it is done: this thread decodes a worker's answer
    // (see `Answer::Encoded`) while the workers run the chunks after it, instead of
    // decoding them all once the last is done.
    gather(chunks.into_iter().map(|c| c.into_result()), len)
}

fn submit_all<I: Iterator, R>(
    items: Items<I>,
    chunksize: usize,
    send: &mut impl SendChunks<I::Item, R>,
) -> Result<Vec<ChunkFuture<R>>> {
    // As many chunks as the length says, and no room made past that for a length that
    // lies: the vector grows if there are more.
    let mut chunks = Vec::with_capacity(items.len().div_ceil(chunksize.max(1)).min(1024));
    // Each kind of input on its own, so that taking an item is not a match of the kind.
    match items {
        Items::Exact { mut iter, .. } => {
            while let Some(chunk) = send.send_chunk(&mut iter, chunksize)? {
                chunks.push(chunk);
            }
        }
        Items::Collected(mut iter) => {
            while let Some(chunk) = send.send_chunk(&mut iter, chunksize)? {
                chunks.push(chunk);
            }
        }
    }
    Ok(chunks)
}

/// The most bytes a chunk's vector is given at once (it grows past them as it must).
const CHUNK_ROOM: usize = 16 << 20;

/// Flattens the chunks' outcomes (`len` of them in all, when none is missing); the first
/// error wins, after all were looked at.
fn gather<R>(chunks: impl Iterator<Item = Result<Answer<R>>>, len: usize) -> Result<Vec<R>> {
    // The room for every value at once: growing the vector chunk by chunk would copy the
    // values over and over. Only tried: `len` may be an iterator's word (see `Items`),
    // and one that lies must not abort the program; the vector grows as it goes then.
    let mut values = Vec::new();
    let _ = values.try_reserve_exact(len);
    let mut first_error = None;
    for chunk in chunks {
        let chunk = match chunk {
            // Straight into the output: no vector of the chunk's own, nor copying from it.
            Ok(Answer::Encoded {
                frame,
                count,
                decode,
            }) if first_error.is_none() => decode(frame, count, &mut values)
                .map(|mixed| mixed.map_or(Answer::Values(Vec::new()), Answer::Mixed)),
            chunk => chunk.and_then(Answer::decoded),
        };
        match chunk {
            Ok(Answer::Values(chunk)) if first_error.is_none() => values.extend(chunk),
            Ok(Answer::Values(_) | Answer::Encoded { .. }) => {}
            Ok(Answer::Mixed(outcomes)) => {
                for outcome in outcomes {
                    match outcome {
                        Ok(value) if first_error.is_none() => values.push(value),
                        Ok(_) => {}
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

/// Sends every chunk of `items` and returns a future of all their values, finished (on the
/// thread that finishes the last chunk) once every chunk is done.
pub(crate) fn map_async<I: Iterator, R: Send + 'static>(
    items: Items<I>,
    chunksize: usize,
    send: &mut impl SendChunks<I::Item, R>,
    out: Future<Vec<R>>,
) -> Result<Future<Vec<R>>> {
    let len = items.len();
    let chunks = submit_all(items, chunksize, send)?;
    if chunks.is_empty() {
        out.finish(Ok(Vec::new()));
        return Ok(out);
    }
    out.set_running();
    let remaining = Arc::new(Mutex::new((chunks.len(), chunks.clone())));
    for chunk in &chunks {
        let remaining = remaining.clone();
        let out = out.clone();
        chunk.add_done_callback(move |_| {
            let mut left = remaining.lock().unwrap_or_else(|e| e.into_inner());
            left.0 -= 1;
            if left.0 == 0 {
                let chunks = std::mem::take(&mut left.1);
                drop(left);
                out.finish(gather(chunks.iter().map(|c| c.take_outcome()), len));
            }
        });
    }
    Ok(out)
}

/// The lazy iterator of `imap` and `imap_unordered` (and of the executors' `map`): it pulls
/// from the input only as results are taken, with at most a few chunks per worker in flight,
/// so an endless input runs in flat memory.
///
/// It is an [`ExactSizeIterator`] when the input is one, so that progress bars (indicatif's
/// `ProgressIterator`, say) know the total.
///
/// # Examples
///
/// ```
/// let pool = proc_pool::ThreadPool::new(2).unwrap();
/// let squares = pool.imap(|x: u64| x * x, vec![1, 2, 3, 4]).unwrap();
/// assert_eq!(squares.len(), 4);
/// let squares: Vec<u64> = squares.map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
#[must_use = "iterators are lazy"]
pub struct Imap<I: Iterator, R> {
    input: Option<I>,
    submit: Submit<I::Item, R>,
    chunksize: usize,
    /// How many items a submission may carry, when several chunks may go as one.
    runs: Option<Runs>,
    window: usize,
    order: Order,
    deadline: Deadline,
    /// Ordered: chunks in input order.
    queue: VecDeque<(ChunkFuture<R>, usize)>,
    /// Unordered: chunks by number, and the waiter that hears them finish.
    flying: BTreeMap<usize, (ChunkFuture<R>, usize)>,
    finished: Vec<usize>,
    waiter: Arc<Waiter>,
    numbered: usize,
    /// Results of the chunk being handed out.
    current: Outcomes<R>,
    in_flight_items: usize,
    /// An error of the input or of a submission, yielded after the results before it.
    error: Option<Error>,
    done: bool,
}

/// The lazy map of `input`: `submit` gets `chunksize` items at a time, with a window of
/// chunks in flight sized for `workers`; the iterator yields each item's outcome in `order`,
/// and [`Error::Timeout`](proc_core::Error::Timeout) once `timeout` (from this call) passes,
/// cancelling the chunks still in flight. Dropping it cancels them too.
///
/// The one constructor of [`Imap`], for every pool and executor (proc-mpi's through
/// [`internal`](crate::internal)).
///
/// # Errors
///
/// [`Error::InvalidState`](proc_core::Error::InvalidState) for a `chunksize` of 0. An error
/// of `submit` comes after the results before it, and ends the iteration.
///
/// # Examples
///
/// ```
/// use proc_pool::internal::{Answer, Order, imap, pending};
///
/// // An "engine" that answers each chunk at once.
/// let squares = imap(1..=5u32, 2, None, 1, Order::Input, Box::new(|items: Vec<u32>| {
///     let (chunk, completer) = pending();
///     completer.finish(Ok(Answer::Values(items.iter().map(|x| x * x).collect())));
///     Ok(chunk)
/// }))
/// .unwrap();
/// assert_eq!(squares.map(Result::unwrap).collect::<Vec<_>>(), [1, 4, 9, 16, 25]);
/// ```
pub fn imap<I: Iterator, R>(
    input: I,
    chunksize: usize,
    timeout: Option<Duration>,
    workers: usize,
    order: Order,
    submit: Submit<I::Item, R>,
) -> Result<Imap<I, R>> {
    imap_runs(input, chunksize, timeout, workers, order, submit, None)
}

/// [`imap`], whose submissions may carry runs of several chunks: before each, `runs` says how
/// many items it may carry (rounded down to whole chunks, at least one). An engine that sees
/// its tasks are tiny can so make one task, one message and one future of many chunks,
/// where each item still gets its own outcome. The window still holds as many items as
/// [`imap`]'s, in fewer submissions.
///
/// # Errors
///
/// As [`imap`].
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use proc_pool::internal::{Answer, Order, imap_runs, pending};
///
/// // An "engine" that answers each submission at once, and takes up to 4 items in one.
/// let sizes = Arc::new(Mutex::new(Vec::new()));
/// let seen = sizes.clone();
/// let submit = Box::new(move |items: Vec<u32>| {
///     seen.lock().unwrap().push(items.len());
///     let (chunk, completer) = pending();
///     completer.finish(Ok(Answer::Values(items.iter().map(|x| x * x).collect())));
///     Ok(chunk)
/// });
/// let squares = imap_runs(1..=10u32, 2, None, 1, Order::Input, submit, Some(Box::new(|| 5)))
///     .unwrap();
/// assert_eq!(squares.map(Result::unwrap).collect::<Vec<_>>(), [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
/// // Two chunks of 2 in each submission (5 items round down to 4), the last one short.
/// assert_eq!(*sizes.lock().unwrap(), [4, 4, 2]);
/// ```
pub fn imap_runs<I: Iterator, R>(
    input: I,
    chunksize: usize,
    timeout: Option<Duration>,
    workers: usize,
    order: Order,
    submit: Submit<I::Item, R>,
    runs: Option<Runs>,
) -> Result<Imap<I, R>> {
    let deadline = Deadline::from_timeout(timeout);
    let chunksize = check_chunksize(chunksize)?;
    Ok(Imap {
        input: Some(input),
        submit,
        chunksize,
        runs,
        // Enough chunks in flight that the workers never wait for the next (a thousand
        // items, or four chunks per worker), few enough that memory stays flat.
        window: (workers.max(1) * 4).max(1024 / chunksize),
        order,
        deadline,
        queue: VecDeque::new(),
        flying: BTreeMap::new(),
        finished: Vec::new(),
        waiter: Waiter::new(),
        numbered: 0,
        current: Outcomes::Mixed(Vec::new().into_iter()),
        in_flight_items: 0,
        error: None,
        done: false,
    })
}

impl<I: Iterator, R> Imap<I, R> {
    fn flying_chunks(&self) -> usize {
        self.queue.len() + self.flying.len()
    }

    /// Sends chunks until the window is full or the input ends: `window` submissions, and
    /// no more items than `window` chunks hold (which only runs of chunks could pass).
    fn fill(&mut self) {
        let most_items = self.window.saturating_mul(self.chunksize);
        while self.error.is_none()
            && self.flying_chunks() < self.window
            && self.in_flight_items < most_items
        {
            let Some(input) = self.input.as_mut() else {
                return;
            };
            let chunks = self
                .runs
                .as_ref()
                .map_or(1, |runs| (runs() / self.chunksize).max(1));
            let chunksize = self.chunksize.saturating_mul(chunks);
            let chunk = match unwind::catch(|| input.by_ref().take(chunksize).collect::<Vec<_>>()) {
                Ok(chunk) => chunk,
                Err(panic) => {
                    self.input = None;
                    self.error = Some(panic.into());
                    return;
                }
            };
            if chunk.len() < chunksize {
                self.input = None;
            }
            if chunk.is_empty() {
                return;
            }
            let count = chunk.len();
            match (self.submit)(chunk) {
                Ok(future) => {
                    self.in_flight_items += count;
                    if self.order == Order::Input {
                        self.queue.push_back((future, count));
                    } else {
                        let number = self.numbered;
                        self.numbered += 1;
                        if !future.add_waiter(&self.waiter, number) {
                            self.finished.push(number);
                        }
                        self.flying.insert(number, (future, count));
                    }
                }
                Err(e) => {
                    self.input = None;
                    self.error = Some(e);
                }
            }
        }
    }

    /// The next finished chunk: the oldest (ordered) or any (unordered); `None` when none
    /// is in flight; `Some(Err(Timeout))` when the deadline passed first.
    fn next_chunk(&mut self) -> Option<(Result<Answer<R>>, usize)> {
        if self.order == Order::Input {
            let (front, _) = self.queue.front()?;
            if !front.wait_deadline(self.deadline) {
                return Some((Err(Error::Timeout), 0));
            }
            let (chunk, count) = self.queue.pop_front()?;
            return Some((chunk.into_result(), count));
        }
        if self.flying.is_empty() {
            return None;
        }
        while self.finished.is_empty() {
            let finished = self.waiter.take(self.deadline);
            if finished.is_empty() {
                return Some((Err(Error::Timeout), 0));
            }
            self.finished.extend(finished);
        }
        let number = self.finished.remove(0);
        let (chunk, count) = self.flying.remove(&number)?;
        Some((chunk.into_result(), count))
    }

    /// Cancels what is still in flight: after a time-out, or when the iterator is dropped.
    fn cancel_rest(&mut self) {
        let flying = std::mem::take(&mut self.flying).into_values();
        for (future, _) in self.queue.drain(..).chain(flying) {
            future.cancel();
        }
        self.input = None;
    }
}

impl<I: Iterator, R> Iterator for Imap<I, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(result) = self.current.next() {
                return Some(result);
            }
            if self.done {
                return None;
            }
            self.fill();
            match self.next_chunk() {
                Some((Err(Error::Timeout), 0)) => {
                    self.done = true;
                    self.cancel_rest();
                    return Some(Err(Error::Timeout));
                }
                Some((outcome, count)) => {
                    self.in_flight_items -= count.min(self.in_flight_items);
                    self.current = match outcome.and_then(Answer::into_outcomes) {
                        Ok(outcomes) => outcomes,
                        // The whole chunk failed (its worker died, say): each item says so.
                        Err(e) => Outcomes::Mixed(
                            (0..count)
                                .map(|_| Err(e.clone()))
                                .collect::<Vec<_>>()
                                .into_iter(),
                        ),
                    };
                }
                None => {
                    self.done = true;
                    return self.error.take().map(Err);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.current.len() + self.in_flight_items;
        match &self.input {
            None => (known, Some(known)),
            Some(input) => {
                let (low, high) = input.size_hint();
                (
                    known.saturating_add(low),
                    high.and_then(|h| h.checked_add(known)),
                )
            }
        }
    }
}

impl<I: ExactSizeIterator, R> ExactSizeIterator for Imap<I, R> {}

impl<I: Iterator, R> Drop for Imap<I, R> {
    fn drop(&mut self) {
        self.cancel_rest();
    }
}

impl<I: Iterator, R> std::fmt::Debug for Imap<I, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("order", &self.order)
            .field("chunksize", &self.chunksize)
            .field("in_flight_items", &self.in_flight_items)
            .finish()
    }
}
