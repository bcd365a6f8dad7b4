//! The one error type of the workspace.

use std::fmt;
use std::io;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a call of `procs`.
///
/// Every fallible call of every `procs` crate returns this error (queues add value-returning
/// errors of their own that convert into it). Messages are lowercase and say what to do.
///
/// # Examples
///
/// ```
/// use proc_core::Error;
///
/// let err = Error::Died { exitcode: -9 };
/// assert_eq!(err.exitcode(), Some(-9));
/// assert_eq!(err.to_string(), "process was killed by signal 9 (SIGKILL) before it returned a result");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A blocking call ran out of time.
    Timeout,
    /// A queue had no item for a call that would not wait (Python's `queue.Empty`).
    Empty,
    /// A queue had no room for a call that would not wait (Python's `queue.Full`). The
    /// queue's own error gives the item back; this one only says what happened.
    Full,
    /// The other end is gone or the object was closed.
    Closed,
    /// The function panicked in the child process.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The process ended without returning a result.
    ///
    /// `exitcode` follows Python: the exit code, or minus the number of the signal that killed
    /// the process.
    Died {
        /// The exit code, or minus the signal number.
        exitcode: i32,
    },
    /// A pool's worker process ended while it ran the task; the pool started another.
    ///
    /// `exitcode` follows Python, as for [`Error::Died`].
    WorkerDied {
        /// The worker's exit code, or minus the signal number.
        exitcode: i32,
    },
    /// The pool is broken and runs no more tasks (Python's `BrokenProcessPool`): a worker
    /// died under `broken_on_crash`, or the initializer failed. The text says why.
    BrokenPool(String),
    /// Futures were still unfinished when the time given to wait for them ran out.
    FuturesUnfinished {
        /// How many had not finished.
        unfinished: usize,
        /// How many were waited for.
        total: usize,
    },
    /// The operation was cancelled.
    Cancelled,
    /// Bytes arrived whole but did not decode as the expected type.
    Decode(String),
    /// The bytes on the wire broke the protocol (bad length, truncated frame, wrong message).
    Protocol(String),
    /// The peer did not prove that it knows the authentication key.
    AuthenticationFailed,
    /// The child runs a different build of the program than its parent.
    BuildMismatch,
    /// The operation is not available on this platform or in this state of the process.
    Unsupported(&'static str),
    /// The object is not in a state that allows the call (start twice, join before start...).
    InvalidState(&'static str),
    /// A received message did not fit the caller's buffer; the error holds the whole message.
    BufferTooShort(Vec<u8>),
    /// An operating-system call failed.
    Io(io::Error),
}

impl Error {
    /// The Python-style exit code carried by [`Error::Died`] or [`Error::WorkerDied`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::Error::Died { exitcode: 3 }.exitcode(), Some(3));
    /// assert_eq!(proc_core::Error::Timeout.exitcode(), None);
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        match self {
            Error::Died { exitcode } | Error::WorkerDied { exitcode } => Some(*exitcode),
            _ => None,
        }
    }

    /// The signal that killed the process, for an [`Error::Died`] caused by a signal.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::Error::Died { exitcode: -15 }.signal(), Some(15));
    /// assert_eq!(proc_core::Error::Died { exitcode: 1 }.signal(), None);
    /// ```
    pub fn signal(&self) -> Option<i32> {
        self.exitcode().filter(|c| *c < 0).map(|c| -c)
    }

    /// Whether this error reports a panic of the child's function.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = proc_core::Error::Panicked { message: "boom".into(), location: None };
    /// assert!(err.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked { .. })
    }

    /// Whether this error says that time ran out: [`Error::Timeout`], or
    /// [`Error::FuturesUnfinished`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::Error::Timeout.is_timeout());
    /// assert!(proc_core::Error::FuturesUnfinished { unfinished: 2, total: 4 }.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout | Error::FuturesUnfinished { .. })
    }

    /// Whether this error reports a cancelled operation.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::Error::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("timed out"),
            Error::Empty => f.write_str("the queue is empty"),
            Error::Full => f.write_str("the queue is full"),
            Error::Closed => f.write_str("the other end is closed"),
            Error::Panicked { message, location } => match location {
                Some(loc) => write!(f, "child panicked at {loc}: {message}"),
                None => write!(f, "child panicked: {message}"),
            },
            Error::Died { exitcode } if *exitcode < 0 => write!(
                f,
                "process was killed by signal {} ({}) before it returned a result",
                -exitcode,
                crate::sys::signal_name(-exitcode)
            ),
            Error::Died { exitcode } => write!(
                f,
                "process exited with code {exitcode} before it returned a result"
            ),
            Error::WorkerDied { exitcode } if *exitcode < 0 => write!(
                f,
                "the worker process running the task was killed by signal {} ({}); \
                 the pool replaced it",
                -exitcode,
                crate::sys::signal_name(-exitcode)
            ),
            Error::WorkerDied { exitcode } => write!(
                f,
                "the worker process running the task exited with code {exitcode}; \
                 the pool replaced it"
            ),
            Error::BrokenPool(why) => write!(f, "the pool is broken and runs no more tasks: {why}"),
            Error::FuturesUnfinished { unfinished, total } => {
                write!(f, "{unfinished} (of {total}) futures unfinished")
            }
            Error::Cancelled => f.write_str("cancelled"),
            Error::Decode(msg) => write!(f, "could not decode the value: {msg}"),
            Error::Protocol(msg) => write!(f, "protocol error: {msg}"),
            Error::AuthenticationFailed => {
                f.write_str("authentication failed: the peer does not know the authkey")
            }
            Error::BuildMismatch => f.write_str(
                "the child runs a different build of the program than its parent; \
                 rebuild and start the parent again",
            ),
            Error::Unsupported(msg) => write!(f, "unsupported: {msg}"),
            Error::InvalidState(msg) => f.write_str(msg),
            Error::BufferTooShort(message) => write!(
                f,
                "the message of {} bytes does not fit the buffer; the error holds it",
                message.len()
            ),
            Error::Io(err) => write!(f, "i/o error: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// A copy of the error, for results that several callers read (a pool's futures). An
/// [`Error::Io`] is copied with its kind, OS code and message; its `source` is not.
impl Clone for Error {
    fn clone(&self) -> Error {
        match self {
            Error::Timeout => Error::Timeout,
            Error::Empty => Error::Empty,
            Error::Full => Error::Full,
            Error::Closed => Error::Closed,
            Error::Panicked { message, location } => Error::Panicked {
                message: message.clone(),
                location: location.clone(),
            },
            Error::Died { exitcode } => Error::Died {
                exitcode: *exitcode,
            },
            Error::WorkerDied { exitcode } => Error::WorkerDied {
                exitcode: *exitcode,
            },
            Error::BrokenPool(why) => Error::BrokenPool(why.clone()),
            Error::FuturesUnfinished { unfinished, total } => Error::FuturesUnfinished {
                unfinished: *unfinished,
                total: *total,
            },
            Error::Cancelled => Error::Cancelled,
            Error::Decode(msg) => Error::Decode(msg.clone()),
            Error::Protocol(msg) => Error::Protocol(msg.clone()),
            Error::AuthenticationFailed => Error::AuthenticationFailed,
            Error::BuildMismatch => Error::BuildMismatch,
            Error::Unsupported(msg) => Error::Unsupported(msg),
            Error::InvalidState(msg) => Error::InvalidState(msg),
            Error::BufferTooShort(message) => Error::BufferTooShort(message.clone()),
            Error::Io(err) => Error::Io(match err.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(err.kind(), err.to_string()),
            }),
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}
