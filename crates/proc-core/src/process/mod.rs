//! `Process`: a Rust function running in a child process (Python's `multiprocessing.Process`).

mod builder;

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::{Builder, Context, Task, context};

use crate::child;
use crate::current;
use crate::error::{Error, Result};
use crate::fingerprint;
use crate::handle;
use crate::internal::Deadline;
use crate::method::{StartMethod, get_start_method};
use crate::registry::{self, ChildState};
use crate::spawn;
use crate::start::{self, Identity, Outcome, Request};
use crate::sys;

/// The arguments of a process, whatever their type, until they are sent.
trait EncodeArgs: Send {
    fn encode(&self) -> Result<(Vec<u8>, Vec<sys::RawHandle>)>;
}

impl<A: Serialize + Send> EncodeArgs for A {
    fn encode(&self) -> Result<(Vec<u8>, Vec<sys::RawHandle>)> {
        handle::encode_with_handles(self)
    }
}

enum State {
    New,
    Started(Arc<ChildState>),
    /// Joined, with the error of that join if it failed: a later join returns it again.
    Joined(Arc<ChildState>, Option<Error>),
    Closed,
}

/// A function running (or to run) in a child process: Python's `multiprocessing.Process`.
///
/// The function is a `fn` or a closure that captures nothing; it takes one argument (a tuple
/// for several) and returns a value, both of which travel through serde. [`join`] hands the
/// returned value back to the parent — more than Python gives.
///
/// Dropping a `Process` does not stop the child; like Python, the parent waits for its
/// non-daemonic children when it exits, and terminates the daemonic ones.
///
/// [`join`]: Process::join
///
/// # Examples
///
/// ```
/// use proc_core::Process;
///
/// fn work((name, n): (String, u64)) -> String {
///     format!("{name}: {}", (1..=n).product::<u64>())
/// }
///
/// fn main() {
///     proc_core::init(); // first line of main: a child runs its function here and exits
///     let mut p = Process::spawn(work, ("5!".to_string(), 5)).unwrap();
///     assert_eq!(p.join().unwrap(), "5!: 120");
///     assert_eq!(p.exitcode(), Some(0));
/// }
/// ```
///
/// A closure that captures its environment does not compile. The check is a constant that
/// `cargo build` evaluates once the function's type is known, after type checking: `cargo
/// check` (and so an editor's live errors) does not show it.
///
/// ```compile_fail,E0080
/// fn main() {
///     let base = 10;
///     let _p = proc_core::Process::new(move |x: i32| x + base, 1);
/// }
/// ```
#[must_use = "a process does nothing until it is started"]
pub struct Process<R = ()> {
    /// The builder's start method, if it chose one.
    start_method: Option<StartMethod>,
    /// The function's trampoline and the executable, for the start.
    launch: spawn::Settings,
    /// The arguments, kept until `start` so that the handles inside them are still open
    /// when they are sent.
    args: Mutex<Option<Box<dyn EncodeArgs>>>,
    identity: Identity,
    state: State,
    _result: PhantomData<fn() -> R>,
}

impl Process {
    /// A builder for a process with a name, a daemon flag or a start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::builder().name("named").process(|(): ()| (), ());
    /// assert_eq!(p.name(), "named");
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Creates and starts a process that runs `task.run()`: Python's subclass-and-`run()`.
    ///
    /// # Errors
    ///
    /// As [`Process::start`].
    ///
    /// # Examples
    ///
    /// See [`Task`].
    #[doc(alias = "run")]
    pub fn spawn_task<T: Task>(task: T) -> Result<Process<T::Output>> {
        Builder::new().spawn_task(task)
    }
}

impl<R> Process<R>
where
    R: Serialize + DeserializeOwned + 'static,
{
    /// Creates (without starting) a process that will run `f(args)`.
    ///
    /// `f` must capture nothing: the child runs the same program and finds `f` by its type, so
    /// captured values could not come along. Pass them in `args` instead.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::new(|v: Vec<u32>| v.iter().sum::<u32>(), vec![1, 2, 3]);
    ///     assert!(!p.is_alive());
    ///     p.start().unwrap();
    ///     assert_eq!(p.join().unwrap(), 6);
    /// }
    /// ```
    pub fn new<F, A>(f: F, args: A) -> Process<R>
    where
        F: Fn(A) -> R + Copy + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        Builder::new().process(f, args)
    }

    /// Creates and starts a process that runs `f(args)`: `Process::new(f, args)` + `start()`.
    ///
    /// # Errors
    ///
    /// As [`Process::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(|x: f64| x.sqrt(), 81.0).unwrap();
    ///     assert_eq!(p.join().unwrap(), 9.0);
    /// }
    /// ```
    pub fn spawn<F, A>(f: F, args: A) -> Result<Process<R>>
    where
        F: Fn(A) -> R + Copy + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        Builder::new().spawn(f, args)
    }

    /// Starts the child.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidState`] when the process was started before, or when this process is
    ///   daemonic ("daemonic processes are not allowed to have children").
    /// - [`Error::Unsupported`] for a start method the platform lacks, and for `Fork` while
    ///   this process has more than one thread (a fork would copy locks held by threads that do
    ///   not exist in the child; use `ForkServer` or `Spawn`).
    /// - [`Error::Decode`] when the arguments could not be encoded.
    /// - [`Error::Io`] when the operating system refuses to create the process.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::new(|(): ()| 1, ());
    ///     p.start().unwrap();
    ///     assert!(p.start().is_err());
    ///     assert_eq!(p.join().unwrap(), 1);
    /// }
    /// ```
    pub fn start(&mut self) -> Result<()> {
        if !matches!(self.state, State::New) {
            return Err(Error::InvalidState("cannot start a process twice"));
        }
        if current::current_process().daemon() {
            return Err(Error::InvalidState(
                "daemonic processes are not allowed to have children",
            ));
        }
        let method = self.start_method();
        method.check_available()?;
        let mut args = self.args.lock().unwrap_or_else(|e| e.into_inner());
        let (payload, handles) = args
            .as_ref()
            .ok_or(Error::InvalidState("cannot start a process twice"))?
            .encode()?;
        registry::cleanup();
        // Make sure the constructor that serves children is linked into this program.
        std::hint::black_box(&child::CONSTRUCTOR);

        let identity = self.identity.clone();
        let span = tracing::debug_span!("procs.spawn", name = %identity.name, method = %method);
        let _entered = span.enter();
        let request = Request {
            fingerprint: fingerprint::fingerprint(),
            entry: start::entry_offset(self.launch.trampoline),
            payload,
            identity,
            parent: current::as_parent(),
            method,
        };
        let state = spawn::launch(method, &request, &handles, &self.launch)?;
        registry::register(state.clone());
        self.state = State::Started(state);
        // Python also lets go of the arguments once the child has them.
        *args = None;
        Ok(())
    }

    /// Waits for the child to end and returns what its function returned.
    ///
    /// # Errors
    ///
    /// - [`Error::Panicked`] when the function panicked (the exit code is then 1).
    /// - [`Error::Died`] when the child ended without a result: killed by a signal (the
    ///   message names it), or left with `std::process::exit`; with exit code 255 when its
    ///   fork server died before it (see [`StartMethod::ForkServer`]).
    /// - [`Error::BuildMismatch`] when the child is another build of the program.
    /// - [`Error::Decode`] when the result did not decode as `R`.
    /// - [`Error::InvalidState`] before `start`, after `close`, or when an earlier `join`
    ///   already took the result.
    ///
    /// # Joining again
    ///
    /// As in Python, `join` may be called again once the process has ended, and returns at
    /// once: the same error when the first join failed (a panic, a death...), and
    /// [`Error::InvalidState`] ("the result was already taken") when it returned the value.
    /// The value is not kept for a second join: it need not be `Clone`, it may be large, and
    /// it may hold handles (a queue, a pipe end) that must close when its owner drops it.
    /// [`exitcode`](Process::exitcode) keeps telling how the process ended.
    ///
    /// # Examples
    ///
    /// ```
    /// fn fail(_: ()) -> u8 {
    ///     panic!("no luck")
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(fail, ()).unwrap();
    ///     match p.join() {
    ///         Err(proc_core::Error::Panicked { message, .. }) => assert_eq!(message, "no luck"),
    ///         other => panic!("unexpected {other:?}"),
    ///     }
    ///     assert_eq!(p.exitcode(), Some(1));
    ///     // Joining again returns at once, with the same error.
    ///     assert!(matches!(p.join(), Err(proc_core::Error::Panicked { .. })));
    ///
    ///     let mut q = proc_core::Process::spawn(|x: u8| x, 7).unwrap();
    ///     assert_eq!(q.join().unwrap(), 7);
    ///     assert!(matches!(q.join(), Err(proc_core::Error::InvalidState(_))));
    ///     assert_eq!(q.exitcode(), Some(0));
    /// }
    /// ```
    pub fn join(&mut self) -> Result<R> {
        self.join_until(None)
    }

    /// Like [`join`](Process::join), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the child still runs after `timeout` (join again later), and
    /// the errors of [`join`](Process::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(std::thread::sleep, Duration::from_secs(5)).unwrap();
    ///     assert!(p.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    ///     p.kill().unwrap();
    ///     assert!(p.join().is_err());
    /// }
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R> {
        self.join_until(Deadline::after(timeout).instant())
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<R> {
        let state = match &self.state {
            State::Started(state) => state.clone(),
            State::New => {
                return Err(Error::InvalidState(
                    "cannot join a process that was not started",
                ));
            }
            State::Joined(_, Some(error)) => return Err(error.clone()),
            State::Joined(_, None) => {
                return Err(Error::InvalidState(
                    "the result was already taken by an earlier join; exitcode() tells how \
                     the process ended",
                ));
            }
            State::Closed => return Err(Error::InvalidState("the process object is closed")),
        };
        let exitcode = state.wait(deadline)?.ok_or(Error::Timeout)?;
        registry::cleanup();
        let result = match state.take_outcome(exitcode) {
            Ok((Outcome::Returned(bytes), handles)) => handle::decode_with_handles(&bytes, handles),
            Ok((Outcome::Panicked { message, location }, _)) => {
                Err(Error::Panicked { message, location })
            }
            Ok((Outcome::BuildMismatch, _)) => Err(Error::BuildMismatch),
            Ok((Outcome::Failed(message), _)) => Err(Error::Decode(message)),
            Err(e) => Err(e),
        };
        self.state = State::Joined(state, result.as_ref().err().cloned());
        result
    }
}

impl<R> Process<R> {
    fn child(&self) -> Option<&Arc<ChildState>> {
        match &self.state {
            State::Started(state) | State::Joined(state, _) => Some(state),
            State::New | State::Closed => None,
        }
    }

    fn started(&self) -> Result<&Arc<ChildState>> {
        match &self.state {
            State::Closed => Err(Error::InvalidState("the process object is closed")),
            _ => self
                .child()
                .ok_or(Error::InvalidState("the process was not started")),
        }
    }

    /// Whether the child has been started and has not ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::new(|(): ()| (), ());
    /// assert!(!p.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.child().is_some_and(|c| c.exitcode().is_none())
    }

    /// The exit code: `None` while the child runs (or before it starts), then 0, the code it
    /// exited with, or minus the signal that killed it (Python's convention). A child of a
    /// fork server that died before it ends with 255 whatever it exited with, as in Python:
    /// the server took the real code with it ([`StartMethod::ForkServer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// fn exit_with(code: i32) {
    ///     std::process::exit(code)
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(exit_with, 7).unwrap();
    ///     assert_eq!(p.join().unwrap_err().exitcode(), Some(7));
    ///     assert_eq!(p.exitcode(), Some(7));
    /// }
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.child().and_then(|c| c.exitcode())
    }

    /// The child's process id, once started.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::new(|(): ()| (), ());
    /// assert_eq!(p.pid(), None);
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.child().map(|c| c.pid())
    }

    /// The process name (Python's default: `Process-N`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::new(|(): ()| (), ());
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// Renames the process; only before it starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] once the process has started.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|(): ()| (), ());
    /// p.set_name("renamed").unwrap();
    /// assert_eq!(p.name(), "renamed");
    /// ```
    #[doc(alias = "name")]
    pub fn set_name(&mut self, name: impl Into<String>) -> Result<()> {
        if !matches!(self.state, State::New) {
            return Err(Error::InvalidState(
                "cannot rename a process that has started",
            ));
        }
        self.identity.name = name.into();
        Ok(())
    }

    /// Whether the process is daemonic.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::new(|(): ()| (), ());
    /// assert!(!p.daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.identity.daemon
    }

    /// Sets the daemon flag; only before the process starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] once the process has started.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|(): ()| (), ());
    /// p.set_daemon(true).unwrap();
    /// assert!(p.daemon());
    /// ```
    #[doc(alias = "daemon")]
    pub fn set_daemon(&mut self, daemon: bool) -> Result<()> {
        if !matches!(self.state, State::New) {
            return Err(Error::InvalidState(
                "cannot change the daemon flag of a process that has started",
            ));
        }
        self.identity.daemon = daemon;
        Ok(())
    }

    /// The start method the process uses (or will use).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::new(|(): ()| (), ());
    /// assert_eq!(p.start_method(), proc_core::get_start_method());
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.start_method.unwrap_or_else(get_start_method)
    }

    /// The authentication key the child gets (by default the parent's).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::new(|(): ()| (), ());
    /// assert_eq!(p.authkey(), proc_core::current_process().authkey());
    /// ```
    pub fn authkey(&self) -> &[u8] {
        &self.identity.authkey
    }

    /// Asks the child to end: SIGTERM on Unix. Does nothing if it has ended.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] before `start` or after `close`; [`Error::Io`] if the signal
    /// cannot be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(std::thread::sleep, std::time::Duration::from_secs(10)).unwrap();
    ///     p.terminate().unwrap();
    ///     let err = p.join().unwrap_err();
    ///     if cfg!(unix) {
    ///         assert_eq!(err.signal(), Some(15));
    ///     }
    /// }
    /// ```
    pub fn terminate(&self) -> Result<()> {
        Ok(self.started()?.child.terminate()?)
    }

    /// Ends the child at once: SIGKILL on Unix. Does nothing if it has ended.
    ///
    /// # Errors
    ///
    /// As [`terminate`](Process::terminate).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(std::thread::sleep, std::time::Duration::from_secs(10)).unwrap();
    ///     p.kill().unwrap();
    ///     assert!(matches!(p.join(), Err(proc_core::Error::Died { .. })));
    /// }
    /// ```
    pub fn kill(&self) -> Result<()> {
        Ok(self.started()?.child.kill()?)
    }

    /// Interrupts the child, as Ctrl-C in a terminal would: SIGINT on Unix (Python 3.14's
    /// `interrupt()`). Does nothing if it has ended.
    ///
    /// A child that does not handle SIGINT dies of it, and [`join`](Process::join) reports
    /// [`Error::Died`] with signal 2; one that handles it (to finish its work first, say)
    /// goes on as it chooses.
    ///
    /// # Platform-specific behavior
    ///
    /// Windows has no SIGINT for one process: its console event `CTRL_BREAK` reaches every
    /// process of a console group, the parent included, since children share their parent's
    /// group. As Python leaves `interrupt` undefined there, this one ends the child as
    /// [`terminate`](Process::terminate) does.
    ///
    /// # Errors
    ///
    /// As [`terminate`](Process::terminate).
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(std::thread::sleep, std::time::Duration::from_secs(10)).unwrap();
    ///     p.interrupt().unwrap();
    ///     let err = p.join().unwrap_err();
    ///     if cfg!(unix) {
    ///         assert_eq!(err.signal(), Some(2));
    ///     }
    /// }
    /// ```
    pub fn interrupt(&self) -> Result<()> {
        Ok(self.started()?.child.interrupt()?)
    }

    /// What tells that the process has finished, for waits on several things at once:
    /// Python's `sentinel`, which `multiprocessing.connection.wait` mixes with connections.
    ///
    /// The sentinel is ready once the child has ended or sent its function's result (it then
    /// only exits): [`join`](Process::join) returns without waiting for the function.
    /// `proc_ipc::wait` takes it among connections and queues.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] before `start` or after `close`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(|(): ()| (), ()).unwrap();
    ///     let sentinel = p.sentinel().unwrap();
    ///     assert!(sentinel.wait_timeout(Duration::from_secs(20)));
    ///     assert!(sentinel.is_ready());
    ///     p.join().unwrap();
    /// }
    /// ```
    pub fn sentinel(&self) -> Result<Sentinel> {
        Ok(Sentinel {
            state: self.started()?.clone(),
        })
    }

    /// Releases the process's resources; the object is unusable afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] while the child still runs ("join or terminate it first").
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(|(): ()| (), ()).unwrap();
    ///     p.join().unwrap();
    ///     p.close().unwrap();
    ///     assert!(p.join().is_err());
    /// }
    /// ```
    pub fn close(&mut self) -> Result<()> {
        if self.is_alive() {
            return Err(Error::InvalidState(
                "cannot close a process that still runs; join or terminate it first",
            ));
        }
        self.state = State::Closed;
        registry::cleanup();
        Ok(())
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match &self.state {
            State::New => "initial",
            State::Started(_) if self.is_alive() => "started",
            State::Started(_) | State::Joined(..) => "stopped",
            State::Closed => "closed",
        };
        f.debug_struct("Process")
            .field("name", &self.name())
            .field("pid", &self.pid())
            .field("status", &status)
            .field("exitcode", &self.exitcode())
            .field("daemon", &self.daemon())
            .finish()
    }
}

/// A sign that a process has finished, from [`Process::sentinel`]: Python's
/// `Process.sentinel`.
///
/// Clones watch the same process. It holds no OS handle of its own, so it can be kept
/// anywhere; it cannot be sent to another process.
///
/// # Examples
///
/// ```
/// fn main() {
///     proc_core::init();
///     let mut p = proc_core::Process::spawn(std::thread::sleep, std::time::Duration::from_secs(10)).unwrap();
///     let sentinel = p.sentinel().unwrap();
///     assert!(!sentinel.is_ready());
///     p.kill().unwrap();
///     assert!(sentinel.wait_timeout(std::time::Duration::from_secs(20)));
///     assert!(p.join().is_err());
/// }
/// ```
#[derive(Clone)]
pub struct Sentinel {
    state: Arc<ChildState>,
}

impl Sentinel {
    /// Whether the process has ended or sent its result, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(|(): ()| (), ()).unwrap();
    ///     let sentinel = p.sentinel().unwrap();
    ///     p.join().unwrap();
    ///     assert!(sentinel.is_ready());
    /// }
    /// ```
    pub fn is_ready(&self) -> bool {
        self.state.finished()
    }

    /// Waits at most `timeout` (any `Duration`; `Duration::MAX` is forever) until
    /// [`is_ready`](Sentinel::is_ready); returns whether it is.
    ///
    /// It looks again after a pause that grows to 2 ms: this is for waits with other
    /// things; [`Process::join_timeout`] sleeps until the exit itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(std::thread::sleep, Duration::from_secs(10)).unwrap();
    ///     let sentinel = p.sentinel().unwrap();
    ///     assert!(!sentinel.wait_timeout(Duration::ZERO));
    ///     p.kill().unwrap();
    ///     assert!(sentinel.wait_timeout(Duration::MAX));
    ///     let _ = p.join();
    /// }
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Deadline::after(timeout);
        let mut pause = Duration::from_micros(20);
        loop {
            if self.is_ready() {
                return true;
            }
            if deadline.passed() {
                return false;
            }
            std::thread::sleep(deadline.slice(pause));
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    /// The pid of the process it watches.
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(|(): ()| (), ()).unwrap();
    ///     assert_eq!(Some(p.sentinel().unwrap().pid()), p.pid());
    ///     p.join().unwrap();
    /// }
    /// ```
    pub fn pid(&self) -> u32 {
        self.state.pid()
    }
}

impl fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinel")
            .field("pid", &self.pid())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<R> fmt::Debug for Process<R>
where
    R: 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug(f)
    }
}
