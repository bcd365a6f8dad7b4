//! `wait`: several connections and queues at once, Python's `multiprocessing.connection.wait`.

use std::time::{Duration, Instant};

use proc_core::{Link, Result, Sentinel};

use crate::{Connection, JoinableQueue, Queue, SimpleQueue};

/// What [`wait`] can wait on: [`Connection`]s, the three queues, and the [`Sentinel`] of a
/// process.
///
/// The trait is sealed: only the types of this crate implement it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use proc_ipc::{Pipe, Queue, Waitable};
///
/// let (_a, b) = Pipe::duplex().unwrap();
/// let q = Queue::new().unwrap();
/// q.put(1).unwrap();
/// let objects: [&dyn Waitable; 2] = [&b, &q];
/// assert_eq!(proc_ipc::wait(&objects, Some(Duration::from_secs(5))).unwrap(), [1]);
/// ```
pub trait Waitable: private::Sealed {}

mod private {
    use proc_core::{Link, Result};

    /// How [`wait`](super::wait) watches an object: by polling its link, or by looking
    /// whether it is ready now (a queue that holds an item, a process that finished).
    pub trait Sealed {
        fn link(&self) -> Result<Option<&Link>>;
        fn ready_now(&self) -> bool;
    }
}

impl Waitable for Connection {}
impl private::Sealed for Connection {
    fn link(&self) -> Result<Option<&Link>> {
        self.readable_link().map(Some)
    }

    fn ready_now(&self) -> bool {
        false
    }
}

/// The queues hold no link; `wait` looks at their item count.
macro_rules! waitable_queue {
    ($($queue:ident),*) => {$(
        impl<T> Waitable for $queue<T> {}
        impl<T> private::Sealed for $queue<T> {
            fn link(&self) -> Result<Option<&Link>> {
                Ok(None)
            }

            fn ready_now(&self) -> bool {
                self.ring().items() > 0
            }
        }
    )*};
}

waitable_queue!(Queue, JoinableQueue, SimpleQueue);

/// A process is looked at like a queue: whether it has finished.
impl Waitable for Sentinel {}
impl private::Sealed for Sentinel {
    fn link(&self) -> Result<Option<&Link>> {
        Ok(None)
    }

    fn ready_now(&self) -> bool {
        self.is_ready()
    }
}

/// The longest a wait that includes queues sleeps between two looks at them.
const LOOK_MAX: Duration = Duration::from_millis(2);

/// Waits until at least one of `objects` has something to receive, at most `timeout`
/// (forever with `None`): Python's `multiprocessing.connection.wait`, for connections,
/// queues and process sentinels. Returns the indexes of the ready ones, empty on time-out.
///
/// The objects are all of one type, or `&dyn Waitable` to mix them. A queue is ready when it
/// holds a whole item (another consumer may still take it first); a
/// [`Sentinel`] when its process has finished ([`Sentinel::is_ready`]). Connections alone
/// are watched by the system (`poll`); with queues or sentinels among them the wait looks
/// again after a pause that grows to 2 ms.
///
/// # Errors
///
/// [`Error::InvalidState`](proc_core::Error::InvalidState) when a connection is closed or
/// write-only, [`Error::Io`](proc_core::Error::Io) when the system fails.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
/// let (c, d) = proc_ipc::Pipe::duplex().unwrap();
/// c.send(&42).unwrap();
/// assert_eq!(proc_ipc::wait(&[&b, &d], Some(Duration::from_secs(5))).unwrap(), [1]);
/// # drop(a);
/// ```
///
/// A process among connections, as Python's `wait([conn, p.sentinel])`:
///
/// ```
/// use std::time::Duration;
///
/// use proc_core::Process;
/// use proc_ipc::{Pipe, Waitable};
///
/// fn main() {
///     proc_core::init();
///     let (_quiet, listening) = Pipe::duplex().unwrap();
///     let mut p = Process::spawn(|(): ()| (), ()).unwrap();
///     let sentinel = p.sentinel().unwrap();
///     let objects: [&dyn Waitable; 2] = [&listening, &sentinel];
///     assert_eq!(proc_ipc::wait(&objects, Some(Duration::from_secs(20))).unwrap(), [1]);
///     p.join().unwrap();
/// }
/// ```
pub fn wait<W: Waitable + ?Sized>(objects: &[&W], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let mut links = Vec::new();
    let mut queues = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        match object.link()? {
            Some(link) => links.push((i, link)),
            None => queues.push((i, &**object)),
        }
    }
    let poll = |timeout| -> Result<Vec<usize>> {
        let watched: Vec<&Link> = links.iter().map(|(_, l)| *l).collect();
        let ready = Link::wait_any(&watched, timeout)?;
        Ok(ready.into_iter().map(|k| links[k].0).collect())
    };
    if queues.is_empty() {
        return poll(timeout);
    }
    let deadline = proc_core::internal::Deadline::from_timeout(timeout).instant();
    let mut pause = Duration::from_micros(20);
    loop {
        let full: Vec<usize> = queues
            .iter()
            .filter(|(_, queue)| queue.ready_now())
            .map(|(i, _)| *i)
            .collect();
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let slice = if full.is_empty() {
            left.map_or(pause, |l| l.min(pause))
        } else {
            Duration::ZERO
        };
        let mut ready = if links.is_empty() {
            std::thread::sleep(slice);
            Vec::new()
        } else {
            poll(Some(slice))?
        };
        ready.extend(full);
        if !ready.is_empty() {
            ready.sort_unstable();
            return Ok(ready);
        }
        if left == Some(Duration::ZERO) {
            return Ok(ready);
        }
        pause = (pause * 2).min(LOOK_MAX);
    }
}
