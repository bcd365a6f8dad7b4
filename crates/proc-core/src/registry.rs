//! The children of this process: their shared state, `active_children()`, and what happens to
//! them when this process exits (daemonic ones are terminated, the others joined).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crate::codec;
use crate::error::{Error, Result};
use crate::internal::Deadline;
use crate::start::{Outcome, Request};
use crate::sys::{self, Channel, Child};

/// How often a wait for a child's outcome also checks whether the child still lives.
const LIFE_CHECK: Duration = Duration::from_millis(50);

fn min(a: Option<Duration>, b: Duration) -> Option<Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// What a child sent: its outcome and the handles that came with it.
type Received = (Outcome, Vec<sys::OwnedHandle>);

/// The state of one started child, shared by its `Process` handle and the registry.
#[derive(Debug)]
pub(crate) struct ChildState {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) child: Child,
    channel: Channel,
    /// The child's one message and the handles that came with it, once it has been read:
    /// `Err` when the channel closed or broke before a whole `Outcome` arrived.
    outcome: Mutex<Option<Result<Received>>>,
}

impl ChildState {
    pub(crate) fn new(name: String, daemon: bool, child: Child, channel: Channel) -> ChildState {
        ChildState {
            name,
            daemon,
            child,
            channel,
            outcome: Mutex::new(None),
        }
    }

    /// Sends the child its request (the first frame on the channel) and the handles that its
    /// arguments hold.
    pub(crate) fn send_request(&self, request: &Request, handles: &[sys::RawHandle]) -> Result<()> {
        self.channel.set_peer(self.pid());
        Ok(self.channel.send_frame(&codec::encode(request)?, handles)?)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The exit code if the child has ended, without blocking.
    pub(crate) fn exitcode(&self) -> Option<i32> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until the child has sent its outcome (or closed the channel) and ended, at most
    /// until `deadline`. Returns the exit code, or `None` on time-out.
    ///
    /// Reading the outcome first matters: a child blocked writing a large result would never
    /// exit while nobody reads.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<Option<i32>> {
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // The channel is not the only sign of life: a process the child started may hold a
        // copy of its end, so the child's exit is looked at too, a slice at a time. The lock
        // is taken only to read, never to wait, so that every waiter keeps its own deadline.
        while !self.outcome_arrived() {
            let mut slice = min(remaining(), LIFE_CHECK);
            let mut readable = self.channel.wait_readable(slice)?;
            // Only a look that found nothing asks after the exit: a child that sent its
            // outcome or died (closing the channel) is readable first, and the common join
            // saves the system call.
            let mut exited = false;
            if !readable {
                exited = self.child.try_wait()?.is_some();
                if exited {
                    // What the child wrote before it exited is all buffered by now.
                    slice = Some(Duration::ZERO);
                    readable = self.channel.wait_readable(slice)?;
                }
            }
            if readable || exited {
                let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
                if outcome.is_none() {
                    // A child that exited has everything it wrote buffered already; one that
                    // exited without a word left nothing to read. A live child that stops
                    // in the middle of its frame holds this wait only for the slice: what
                    // arrived stays in the channel for the next look.
                    let read = if readable {
                        self.channel
                            .recv_frame_until(
                                codec::DEFAULT_MAX_FRAME,
                                Deadline::from_timeout(slice),
                            )
                            .transpose()
                    } else {
                        Some(Err(Error::Closed))
                    };
                    if let Some(read) = read {
                        *outcome =
                            Some(read.and_then(|(bytes, handles)| {
                                Ok((codec::decode(&bytes)?, handles))
                            }));
                    } else if remaining().is_some_and(|r| r.is_zero()) {
                        return Ok(None);
                    }
                }
            } else if remaining().is_some_and(|r| r.is_zero()) {
                return Ok(None);
            }
        }
        let code = self.child.wait(remaining())?;
        if let Some(exitcode) = code {
            tracing::debug!(pid = self.pid(), name = %self.name, exitcode, "process exited");
        }
        Ok(code)
    }

    /// Whether the child has ended or sent its outcome (or closed the channel), without
    /// blocking: a join then waits for nothing but the exit that follows.
    pub(crate) fn finished(&self) -> bool {
        self.outcome_arrived()
            || self.exitcode().is_some()
            // A channel that cannot be polled fails the join too, which then returns at once.
            || self.channel.wait_readable(Some(Duration::ZERO)).unwrap_or(true)
    }

    fn outcome_arrived(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The descriptor of the parent's end of the channel, for a forked child to close. A
    /// channel to a child is always one that `Channel::pair` made, which has one.
    pub(crate) fn channel_handle(&self) -> Option<sys::RawHandle> {
        self.channel.raw_handle().ok()
    }

    /// Takes the outcome read by `wait`; the child must have ended with `exitcode`.
    pub(crate) fn take_outcome(&self, exitcode: i32) -> Result<Received> {
        match self
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(Error::Closed)) => Err(Error::Died { exitcode }),
            Some(Err(Error::Protocol(msg))) if exitcode != 0 => {
                tracing::debug!(%msg, "the child died while it sent its result");
                Err(Error::Died { exitcode })
            }
            Some(Err(other)) => Err(other),
            None => Err(Error::InvalidState(
                "the result was already taken by an earlier join",
            )),
        }
    }
}

static CHILDREN: Mutex<Vec<Arc<ChildState>>> = Mutex::new(Vec::new());
/// How many children `CHILDREN` holds, written under its lock: a new child, which holds its
/// parent's list, reads it to skip the lock when the list is empty (the common case), since
/// taking the lock writes its page, a copy of the parent's in a forked child (a page fault).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// The list of children, locked, for a change that `REGISTERED` follows.
fn children() -> ChildrenGuard {
    ChildrenGuard(CHILDREN.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The locked list of children, which notes its length in `REGISTERED` when it is let go.
struct ChildrenGuard(std::sync::MutexGuard<'static, Vec<Arc<ChildState>>>);

impl std::ops::Deref for ChildrenGuard {
    type Target = Vec<Arc<ChildState>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildrenGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildrenGuard {
    fn drop(&mut self) {
        REGISTERED.store(self.0.len(), Ordering::Release);
    }
}
static AT_EXIT: Once = Once::new();

/// Adds a started child; the first one also installs the exit handler.
pub(crate) fn register(state: Arc<ChildState>) {
    AT_EXIT.call_once(|| crate::sys::at_exit(on_exit));
    children().push(state);
}

/// Forgets children that have ended, reaping them (Python's `_cleanup()`).
pub(crate) fn cleanup() {
    children().retain(|c| c.exitcode().is_none());
}

/// The children that still run.
pub(crate) fn active() -> Vec<Arc<ChildState>> {
    cleanup();
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The parent's ends of the channels to every child, which a forked child must close so that
/// those children still see their parent go away.
pub(crate) fn channel_handles() -> Vec<sys::RawHandle> {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|c| c.channel_handle())
        .collect()
}

/// Forgets the parent's children in a freshly forked child. Their descriptors were closed by
/// number before (see `channel_handles`), and the parent's `Process` values in this copy of
/// its memory still point at the same states, so nothing may be dropped here.
pub(crate) fn forget_inherited() {
    // A new child is single-threaded here: the count its parent left is the list's length.
    if REGISTERED.load(Ordering::Acquire) == 0 {
        return;
    }
    std::mem::forget(std::mem::take(&mut *children()));
}

/// Terminates daemonic children, then waits for all children: what Python does at exit.
pub(crate) fn shutdown() {
    // No lock (no write) when there is nothing to wait for: the end of every child that
    // started none.
    if REGISTERED.load(Ordering::Acquire) == 0 {
        return;
    }
    let children = std::mem::take(&mut *children());
    for child in children.iter().filter(|c| c.daemon) {
        let _ = child.child.terminate();
    }
    for child in &children {
        if child.daemon {
            // A daemonic child that ignores SIGTERM is killed after a grace period.
            if let Ok(None) = child.wait(Some(Instant::now() + Duration::from_secs(1))) {
                let _ = child.child.kill();
            }
        }
        let _ = child.wait(None);
    }
}

extern "C" fn on_exit() {
    // Unwinding out of an exit handler would abort; a failure here only loses the wait.
    let _ = std::panic::catch_unwind(shutdown);
}

/// A child that still runs, as [`active_children`] lists it.
///
/// # Examples
///
/// ```
/// fn nap(ms: u64) {
///     std::thread::sleep(std::time::Duration::from_millis(ms));
/// }
///
/// fn main() {
///     proc_core::init();
///     let mut p = proc_core::Process::spawn(nap, 5_000).unwrap();
///     let active = proc_core::active_children();
///     let child = active.iter().find(|c| Some(c.pid()) == p.pid()).unwrap();
///     assert_eq!(child.name(), p.name());
///     child.terminate().unwrap();
///     assert!(p.join().unwrap_err().signal().is_some() || cfg!(windows));
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ActiveChild {
    state: Arc<ChildState>,
}

impl ActiveChild {
    /// The child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::active_children().iter().all(|c| c.pid() != 0));
    /// ```
    pub fn pid(&self) -> u32 {
        self.state.pid()
    }

    /// The child's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::active_children().iter().all(|c| !c.name().is_empty()));
    /// ```
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Whether the child is daemonic.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::active_children().iter().all(|c| !c.daemon()));
    /// ```
    pub fn daemon(&self) -> bool {
        self.state.daemon
    }

    /// Whether the child still runs.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::active_children().iter().all(|c| c.is_alive() || c.exitcode().is_some()));
    /// ```
    pub fn is_alive(&self) -> bool {
        self.state.exitcode().is_none()
    }

    /// The exit code once the child has ended (Python's convention).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::active_children().iter().all(|c| c.exitcode().is_none() || !c.is_alive()));
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.state.exitcode()
    }

    /// Asks the child to end (SIGTERM on Unix).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the signal cannot be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// for child in proc_core::active_children() {
    ///     child.terminate().unwrap();
    /// }
    /// ```
    pub fn terminate(&self) -> Result<()> {
        Ok(self.state.child.terminate()?)
    }

    /// Ends the child at once (SIGKILL on Unix).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the signal cannot be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// for child in proc_core::active_children() {
    ///     child.kill().unwrap();
    /// }
    /// ```
    pub fn kill(&self) -> Result<()> {
        Ok(self.state.child.kill()?)
    }

    /// Waits at most `timeout` (forever with `None`) for the child to end; returns its exit
    /// code, or `None` if it still runs. The result of the function stays for the owner of the
    /// `Process` handle.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when waiting fails.
    ///
    /// # Examples
    ///
    /// ```
    /// for child in proc_core::active_children() {
    ///     let _ = child.join(Some(std::time::Duration::from_millis(1))).unwrap();
    /// }
    /// ```
    pub fn join(&self, timeout: Option<Duration>) -> Result<Option<i32>> {
        self.state
            .wait(crate::internal::Deadline::from_timeout(timeout).instant())
    }
}

/// The children of this process that still run: Python's `active_children()`.
///
/// Like Python's, it reaps children that have ended as a side effect.
///
/// # Examples
///
/// ```
/// assert!(proc_core::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<ActiveChild> {
    active()
        .into_iter()
        .map(|state| ActiveChild { state })
        .collect()
}
