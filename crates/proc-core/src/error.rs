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
    /// The Python-style exit code carried by [`Error::Died`], if this is one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::Error::Died { exitcode: 3 }.exitcode(), Some(3));
    /// assert_eq!(proc_core::Error::Timeout.exitcode(), None);
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        match self {
            Error::Died { exitcode } => Some(*exitcode),
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

    /// Whether this error is a [`Error::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::Error::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
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

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}
