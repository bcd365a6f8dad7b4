//! Start methods: Python's `get_all_start_methods`, `set_start_method` and
//! `get_start_method`. (A context, Python's `get_context`, is a process builder's; it lives
//! beside [`Builder`](crate::Builder).)

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a child process comes to life.
///
/// # Platform-specific behavior
///
/// `Spawn` works everywhere. `Fork` and `ForkServer` exist on Unix only; asking for them
/// elsewhere is [`Error::Unsupported`].
///
/// # Examples
///
/// ```
/// use proc_core::StartMethod;
///
/// assert_eq!("forkserver".parse::<StartMethod>().unwrap(), StartMethod::ForkServer);
/// assert_eq!(StartMethod::Spawn.to_string(), "spawn");
/// assert!(StartMethod::available().contains(&StartMethod::Spawn));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StartMethod {
    /// Start the program anew and run only the requested function (every platform).
    Spawn,
    /// `fork()` the calling process (Unix). Allowed only while the process has one thread,
    /// because a fork copies locks held by threads that do not exist in the child.
    Fork,
    /// Ask a clean, single-threaded copy of the program, started on first use, to fork the
    /// child (Unix): as safe as `Spawn`, nearly as fast as `Fork`.
    ///
    /// On Linux with glibc the server forks each child as this process's own
    /// (`clone3(CLONE_PARENT)`): `os.getppid()` — [`getppid`](crate::getppid) and
    /// `libc::getppid()` alike — in the child names this process, which reaps it, so its
    /// exit code is known even if the server dies. Elsewhere (or where the kernel refuses
    /// `clone3`) the server is the children's parent for the operating system and reports
    /// their exit codes; [`getppid`](crate::getppid) and
    /// [`parent_process`](crate::parent_process) in a child still name this process. If such
    /// a server dies (killed, say), its running children go on and are still seen to end
    /// (watched by pidfd on Linux, by pid elsewhere), but their exit codes are lost with it:
    /// they read 255, as in Python, and a `join` returns the child's result if it arrived,
    /// else [`Error::Died`] with 255. Either way the next start brings up a new server.
    ForkServer,
}

impl StartMethod {
    /// The start methods this platform offers, the default first.
    ///
    /// # Examples
    ///
    /// ```
    /// let methods = proc_core::StartMethod::available();
    /// assert_eq!(methods[0], proc_core::StartMethod::default_for_platform());
    /// ```
    #[doc(alias = "get_all_start_methods")]
    pub fn available() -> &'static [StartMethod] {
        if cfg!(unix) {
            &[
                StartMethod::ForkServer,
                StartMethod::Spawn,
                StartMethod::Fork,
            ]
        } else {
            &[StartMethod::Spawn]
        }
    }

    /// The method used when nothing else was asked for: `ForkServer` on Unix, `Spawn`
    /// elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::StartMethod;
    ///
    /// let method = StartMethod::default_for_platform();
    /// assert_eq!(method, if cfg!(unix) { StartMethod::ForkServer } else { StartMethod::Spawn });
    /// ```
    pub fn default_for_platform() -> StartMethod {
        StartMethod::available()[0]
    }

    /// Whether this platform offers the method.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::StartMethod::Spawn.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        StartMethod::available().contains(&self)
    }

    /// Python's name of the method: `"spawn"`, `"fork"` or `"forkserver"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::StartMethod::Fork.name(), "fork");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Spawn => "spawn",
            StartMethod::Fork => "fork",
            StartMethod::ForkServer => "forkserver",
        }
    }

    pub(crate) fn check_available(self) -> Result<()> {
        if self.is_available() {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "this start method is not available on this platform; use StartMethod::Spawn",
            ))
        }
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StartMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "spawn" => Ok(StartMethod::Spawn),
            "fork" => Ok(StartMethod::Fork),
            "forkserver" => Ok(StartMethod::ForkServer),
            _ => Err(Error::Unsupported(
                "unknown start method; use \"spawn\", \"fork\" or \"forkserver\"",
            )),
        }
    }
}

/// The start method of processes started without one: 0 while not fixed, else a method's
/// code. An atomic, not a `OnceLock`, so that a child can overwrite the copy a fork gave it
/// (a store is async-signal-safe, too).
static START_METHOD: AtomicU8 = AtomicU8::new(UNSET);

const UNSET: u8 = 0;

impl StartMethod {
    fn code(self) -> u8 {
        match self {
            StartMethod::Spawn => 1,
            StartMethod::Fork => 2,
            StartMethod::ForkServer => 3,
        }
    }

    fn from_code(code: u8) -> Option<StartMethod> {
        match code {
            1 => Some(StartMethod::Spawn),
            2 => Some(StartMethod::Fork),
            3 => Some(StartMethod::ForkServer),
            _ => None,
        }
    }
}

/// Fixes the start method of this child to the one it was started with, whatever it
/// inherited: CPython's `_force_start_method` in `Process._bootstrap`.
pub(crate) fn force_start_method(method: StartMethod) {
    START_METHOD.store(method.code(), Ordering::SeqCst);
}

/// Sets the start method of every process started without one, once per program.
///
/// A child process starts with the method it was started with already set, as in Python:
/// what the parent chose reaches its children's children, and a child that calls this gets
/// [`Error::InvalidState`]; it chooses per process with
/// [`Builder::start_method`](crate::Builder::start_method) or [`context`](crate::context).
///
/// # Errors
///
/// [`Error::InvalidState`] when the method was already set (or already used, which fixes it),
/// and [`Error::Unsupported`] when the platform lacks the method.
///
/// # Examples
///
/// ```
/// use proc_core::{StartMethod, get_start_method, set_start_method};
///
/// set_start_method(StartMethod::Spawn).unwrap();
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// assert!(set_start_method(StartMethod::Spawn).is_err());
/// ```
pub fn set_start_method(method: StartMethod) -> Result<()> {
    method.check_available()?;
    START_METHOD
        .compare_exchange(UNSET, method.code(), Ordering::SeqCst, Ordering::SeqCst)
        .map(drop)
        .map_err(|_| Error::InvalidState("the start method has already been set"))
}

/// The start method of processes started without one; fixes it if it was not set yet.
///
/// In a child process, it is the method that started the child (see
/// [`set_start_method`]).
///
/// # Examples
///
/// ```
/// assert!(proc_core::get_start_method().is_available());
/// ```
pub fn get_start_method() -> StartMethod {
    let default = StartMethod::default_for_platform().code();
    let code =
        match START_METHOD.compare_exchange(UNSET, default, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => default,
            Err(set) => set,
        };
    StartMethod::from_code(code).unwrap_or_else(StartMethod::default_for_platform)
}
