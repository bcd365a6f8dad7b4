//! `wait` and `as_completed` over futures of any pool or executor.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use proc_core::internal::Deadline;
use proc_core::{Error, Result};

use crate::future::{Future, Waiter};

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
///
/// # Examples
///
/// ```
/// assert_ne!(proc_pool::ReturnWhen::FirstCompleted, proc_pool::ReturnWhen::AllCompleted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future finishes or is cancelled.
    FirstCompleted,
    /// As soon as any future finishes with an error; when none does, once all are done.
    FirstException,
    /// Once every future is finished or cancelled.
    AllCompleted,
}

/// The futures without repeats, in their first order.
fn unique<'a, R: 'a>(futures: impl IntoIterator<Item = &'a Future<R>>) -> Vec<Future<R>> {
    let mut seen = HashSet::new();
    futures
        .into_iter()
        .filter(|f| seen.insert(f.identity()))
        .cloned()
        .collect()
}

/// Waits for futures — of one executor or of several, mixed — until `return_when` holds or
/// `timeout` passes (`None`: no limit), and returns `(done, not_done)`: Python's
/// `concurrent.futures.wait`. `futures` is anything that yields `&Future`s: a slice, a
/// `Vec`, the keys of a map (futures compare and hash by identity, as Python's do). A future
/// given twice is counted once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use proc_pool::{ReturnWhen, ThreadPoolExecutor, wait};
///
/// let executor = ThreadPoolExecutor::new(2).unwrap();
/// let quick = executor.submit(|(): ()| 1, ()).unwrap();
/// let slow = executor.submit(|(): ()| { std::thread::sleep(Duration::from_secs(1)); 2 }, ()).unwrap();
/// let (done, not_done) = wait(&[quick.clone(), slow.clone()], None, ReturnWhen::FirstCompleted);
/// assert_eq!(done.len(), 1);
/// assert_eq!(not_done.len(), 1);
/// let (done, not_done) = wait(&[quick, slow], Some(Duration::from_secs(20)), ReturnWhen::AllCompleted);
/// assert_eq!((done.len(), not_done.len()), (2, 0));
/// ```
pub fn wait<'a, R: 'a>(
    futures: impl IntoIterator<Item = &'a Future<R>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<Future<R>>, Vec<Future<R>>) {
    let futures = unique(futures);
    let deadline = Deadline::from_timeout(timeout);
    let waiter = Waiter::new();
    let mut done = vec![false; futures.len()];
    let (mut finished, mut failed) = (0, false);
    for (i, f) in futures.iter().enumerate() {
        if !f.add_waiter(&waiter, i) {
            done[i] = true;
            finished += 1;
            failed |= f.failed();
        }
    }
    loop {
        // Every condition holds once all are done — also for no futures at all.
        let holds = finished == futures.len()
            || match return_when {
                ReturnWhen::AllCompleted => false,
                ReturnWhen::FirstCompleted => finished > 0,
                ReturnWhen::FirstException => failed,
            };
        if holds {
            break;
        }
        let now_done = waiter.take(deadline);
        if now_done.is_empty() {
            break;
        }
        for i in now_done {
            if !std::mem::replace(&mut done[i], true) {
                finished += 1;
                failed |= futures[i].failed();
            }
        }
    }
    for f in &futures {
        f.remove_waiter(&waiter);
    }
    let (done, not_done): (Vec<_>, Vec<_>) = futures
        .into_iter()
        .zip(done)
        .partition(|(f, d)| *d || f.done());
    (
        done.into_iter().map(|(f, _)| f).collect(),
        not_done.into_iter().map(|(f, _)| f).collect(),
    )
}

/// Yields futures as they finish (Python's `concurrent.futures.as_completed`): those done
/// already first, then each as it finishes. Once `timeout` has passed (counted from the
/// call) it yields one [`Error::FuturesUnfinished`] ("2 (of 4) futures unfinished") and
/// ends. `futures` is anything that yields `&Future`s, as for [`wait`]. A future given
/// twice is yielded once.
///
/// # Examples
///
/// ```
/// use proc_pool::{ThreadPoolExecutor, as_completed};
///
/// let executor = ThreadPoolExecutor::new(4).unwrap();
/// let futures: Vec<_> = (1..=4u64).map(|n| executor.submit(|n: u64| n * 10, n).unwrap()).collect();
/// let mut total = 0;
/// for future in as_completed(&futures, None) {
///     total += future.unwrap().result().unwrap();
/// }
/// assert_eq!(total, 100);
/// ```
///
/// The example of Python's documentation, which maps each future to what it works on:
///
/// ```
/// use std::collections::HashMap;
///
/// use proc_pool::{ThreadPoolExecutor, as_completed};
///
/// fn load(url: &'static str) -> usize {
///     url.len()
/// }
///
/// let executor = ThreadPoolExecutor::new(5).unwrap();
/// let urls = ["http://www.foxnews.com/", "http://www.cnn.com/", "http://europe.wsj.com/"];
/// let future_to_url: HashMap<_, _> =
///     urls.iter().map(|&url| (executor.submit(load, url).unwrap(), url)).collect();
/// for future in as_completed(future_to_url.keys(), None) {
///     let future = future.unwrap();
///     let url = future_to_url[&future];
///     assert_eq!(future.result().unwrap(), url.len());
/// }
/// ```
pub fn as_completed<'a, R: 'a>(
    futures: impl IntoIterator<Item = &'a Future<R>>,
    timeout: Option<Duration>,
) -> AsCompleted<R> {
    let futures = unique(futures);
    let waiter = Waiter::new();
    let mut ready = Vec::new();
    for (i, f) in futures.iter().enumerate() {
        if !f.add_waiter(&waiter, i) {
            ready.push(i);
        }
    }
    ready.reverse();
    AsCompleted {
        total: futures.len(),
        futures: futures.into_iter().map(Some).collect(),
        ready,
        waiter,
        deadline: Deadline::from_timeout(timeout),
        yielded: 0,
        timed_out: false,
    }
}

/// The iterator of [`as_completed`].
#[must_use = "iterators are lazy"]
pub struct AsCompleted<R> {
    futures: Vec<Option<Future<R>>>,
    ready: Vec<usize>,
    waiter: Arc<Waiter>,
    deadline: Deadline,
    total: usize,
    yielded: usize,
    timed_out: bool,
}

impl<R> Iterator for AsCompleted<R> {
    type Item = Result<Future<R>>;

    fn next(&mut self) -> Option<Result<Future<R>>> {
        loop {
            if let Some(i) = self.ready.pop() {
                if let Some(f) = self.futures[i].take() {
                    self.yielded += 1;
                    return Some(Ok(f));
                }
                continue;
            }
            if self.yielded == self.total || self.timed_out {
                return None;
            }
            let finished = self.waiter.take(self.deadline);
            if finished.is_empty() {
                self.timed_out = true;
                return Some(Err(Error::FuturesUnfinished {
                    unfinished: self.total - self.yielded,
                    total: self.total,
                }));
            }
            self.ready.extend(finished);
        }
    }
}

impl<R> Drop for AsCompleted<R> {
    fn drop(&mut self) {
        for f in self.futures.iter().flatten() {
            f.remove_waiter(&self.waiter);
        }
    }
}

impl<R> std::fmt::Debug for AsCompleted<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("total", &self.total)
            .field("yielded", &self.yielded)
            .finish()
    }
}
