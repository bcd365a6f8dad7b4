//! The errors of every queue of `procs` — thread queues, process queues, channels and the
//! manager's queue proxies — so that code moves from one family to the other by changing
//! a constructor (crossbeam-channel keeps its errors in one place the same way).

use std::error::Error as StdError;
use std::fmt;

use crate::error::Error;

/// Why a `put` (or `send`) did not add its item; the item comes back inside.
///
/// # Examples
///
/// ```
/// use proc_core::{Error, PutError};
///
/// let err = PutError::Full("job");
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), "job");
/// assert!(matches!(Error::from(PutError::Closed(1)), Error::Closed));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue was full and the call does not wait (`put_nowait`); Python raises `Full`.
    Full(T),
    /// The queue stayed full for the whole timeout (`put_timeout`); Python raises `Full`.
    Timeout(T),
    /// The queue takes no more items: it was shut down (Python raises `ShutDown`), or every
    /// receiver of a channel, or the manager that kept it, is gone.
    Closed(T),
    /// The item cannot go: it does not encode, is larger than the queue carries, or the
    /// system failed.
    Failed(T, Error),
}

impl<T> PutError<T> {
    /// Gives back the item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::PutError::Timeout(vec![1, 2]).into_inner(), [1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item)
            | PutError::Timeout(item)
            | PutError::Closed(item)
            | PutError::Failed(item, _) => item,
        }
    }

    /// The error, without the item.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::{Error, PutError};
    ///
    /// assert!(matches!(PutError::Full(1).error(), Error::Full));
    /// ```
    pub fn error(self) -> Error {
        match self {
            PutError::Full(_) => Error::Full,
            PutError::Timeout(_) => Error::Timeout,
            PutError::Closed(_) => Error::Closed,
            PutError::Failed(_, e) => e,
        }
    }

    /// Whether this is [`PutError::Full`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::PutError::Full(1).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// Whether this is [`PutError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::PutError::Timeout(1).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutError::Timeout(_))
    }

    /// Whether this is [`PutError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::PutError::Closed(1).is_closed());
    /// ```
    #[doc(alias = "ShutDown")]
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }

    /// The same as [`is_closed`](PutError::is_closed): Python's `queue.ShutDown`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::PutError::Closed(1).is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.is_closed()
    }
}

impl<T: PartialEq> PartialEq for PutError<T> {
    /// Two errors are equal when they are the same variant with equal items (and, for
    /// `Failed`, errors that read the same).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PutError::Full(a), PutError::Full(b))
            | (PutError::Timeout(a), PutError::Timeout(b))
            | (PutError::Closed(a), PutError::Closed(b)) => a == b,
            (PutError::Failed(a, e), PutError::Failed(b, f)) => {
                a == b && e.to_string() == f.to_string()
            }
            _ => false,
        }
    }
}

// Like crossbeam-channel's errors, the item is not printed, so that `unwrap` works for any `T`.
impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Failed(_, e) => f.debug_tuple("Failed").field(&"..").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full; use put or put_timeout to wait"),
            PutError::Timeout(_) => f.write_str("the queue stayed full until the time-out"),
            PutError::Closed(_) => {
                f.write_str("the queue takes no more items (shut down, or its receivers are gone)")
            }
            PutError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> StdError for PutError<T> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            PutError::Failed(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Drops the item: [`Full`](PutError::Full) becomes [`Error::Full`],
/// [`Timeout`](PutError::Timeout) [`Error::Timeout`], [`Closed`](PutError::Closed)
/// [`Error::Closed`]. Match on the [`PutError`] itself to get the item back.
impl<T> From<PutError<T>> for Error {
    fn from(err: PutError<T>) -> Error {
        err.error()
    }
}

/// Why a `get` (or `recv`) returned without an item.
///
/// Python raises `queue.Empty` both for a `get_nowait` on an empty queue and for a `get`
/// whose timeout ran out; [`is_empty`](GetError::is_empty) is true for both, so that code
/// that matches on "empty" does not miss a timed-out get.
///
/// # Examples
///
/// ```
/// use proc_core::{Error, GetError};
///
/// assert!(GetError::Timeout.is_empty());
/// assert!(GetError::Timeout.is_timeout());
/// assert!(matches!(Error::from(GetError::Closed), Error::Closed));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum GetError {
    /// The queue was empty and the call does not wait (`get_nowait`); Python raises `Empty`.
    Empty,
    /// The queue stayed empty for the whole timeout (`get_timeout`); Python raises `Empty`.
    Timeout,
    /// The queue will hold no more items: it was shut down and drained (Python raises
    /// `ShutDown`), or every sender of a channel, or the manager that kept it, is gone.
    Closed,
    /// An item arrived but could not be taken: it did not decode as the queue's type, or the
    /// shared memory was corrupt, or the system failed.
    Failed(Error),
}

impl GetError {
    /// Whether no item came because there was none: [`Empty`](GetError::Empty) or
    /// [`Timeout`](GetError::Timeout), as Python's `queue.Empty` covers both.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::GetError;
    ///
    /// assert!(GetError::Empty.is_empty() && GetError::Timeout.is_empty());
    /// assert!(!GetError::Closed.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty | GetError::Timeout)
    }

    /// Whether this is [`GetError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::GetError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetError::Timeout)
    }

    /// Whether this is [`GetError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::GetError::Closed.is_closed());
    /// ```
    #[doc(alias = "ShutDown")]
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }

    /// The same as [`is_closed`](GetError::is_closed): Python's `queue.ShutDown`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::GetError::Closed.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.is_closed()
    }

    /// The error as an [`Error`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(matches!(proc_core::GetError::Empty.error(), proc_core::Error::Empty));
    /// ```
    pub fn error(self) -> Error {
        match self {
            GetError::Empty => Error::Empty,
            GetError::Timeout => Error::Timeout,
            GetError::Closed => Error::Closed,
            GetError::Failed(e) => e,
        }
    }
}

impl PartialEq for GetError {
    /// Two errors are equal when they are the same variant (and, for `Failed`, errors that
    /// read the same).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (GetError::Empty, GetError::Empty)
            | (GetError::Timeout, GetError::Timeout)
            | (GetError::Closed, GetError::Closed) => true,
            (GetError::Failed(e), GetError::Failed(f)) => e.to_string() == f.to_string(),
            _ => false,
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => {
                f.write_str("the queue is empty; use get or get_timeout to wait for an item")
            }
            GetError::Timeout => f.write_str("timed out waiting for an item"),
            GetError::Closed => {
                f.write_str("the queue holds no more items (shut down, or its senders are gone)")
            }
            GetError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl StdError for GetError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            GetError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// [`Empty`](GetError::Empty) becomes [`Error::Empty`], [`Timeout`](GetError::Timeout)
/// [`Error::Timeout`], [`Closed`](GetError::Closed) [`Error::Closed`].
impl From<GetError> for Error {
    fn from(err: GetError) -> Error {
        err.error()
    }
}

/// The other way: the queue variants of [`Error`] become theirs, anything else `Failed`.
impl From<Error> for GetError {
    fn from(err: Error) -> GetError {
        match err {
            Error::Empty => GetError::Empty,
            Error::Timeout => GetError::Timeout,
            Error::Closed => GetError::Closed,
            other => GetError::Failed(other),
        }
    }
}
