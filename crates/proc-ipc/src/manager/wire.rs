//! What a manager's clients and server say to each other: one request, one response, each a
//! postcard frame on a [`Connection`](crate::Connection).
//!
//! Keys, values and items travel as postcard bytes that only the clients decode, so the
//! server stores them without knowing their types and serves programs of any build. Only
//! the requests that carry a function ([`Op::UpdateWith`], [`Kind::Custom`]) need the
//! client and the server to run the same build, which the [`Request::Hello`] exchange tells.

use std::time::Duration;

use proc_core::Error;

use crate::Address;
use serde::{Deserialize, Serialize};

/// An encoded key, value or item: written as one byte string (serde would write a
/// `Vec<u8>` byte by byte).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Bytes {
        Bytes(bytes)
    }
}

impl FromIterator<u8> for Bytes {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Bytes {
        Bytes(iter.into_iter().collect())
    }
}

impl std::borrow::Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
    }
}

/// Who holds a lock: the client process and the thread in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub(crate) client: u64,
    pub(crate) thread: u64,
}

/// One request of a client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first request on every connection: who the client is and which build it runs.
    Hello { client: u64, fingerprint: u64 },
    /// Makes a new object and answers its id.
    Create(Kind),
    /// Calls an operation on object `id`.
    Call { id: u64, op: Op },
    /// Stops the server once it has answered.
    Shutdown,
}

/// The kinds of object a server keeps.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Queue {
        maxsize: u64,
    },
    Lock,
    RLock,
    Semaphore {
        value: u32,
        bound: Option<u32>,
    },
    Event,
    Condition,
    Barrier {
        parties: u32,
    },
    Value(Bytes),
    Array(Vec<Bytes>),
    /// A user type: `make` is the offset of the function that builds it from `state`.
    Custom {
        make: i64,
        state: Bytes,
    },
}

/// An operation on an object. `timeout: None` waits as long as it takes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    Len,
    Clear,
    // dict and namespace
    Insert(Bytes, Bytes),
    Get(Bytes),
    Remove(Bytes),
    Contains(Bytes),
    Keys,
    Values,
    Items,
    Update(Vec<(Bytes, Bytes)>),
    SetDefault(Bytes, Bytes),
    /// Runs the function at offset `f` through the runner at offset `runner` on the value of
    /// `key` (or on `default` when there is none) and stores the result.
    UpdateWith {
        key: Bytes,
        default: Bytes,
        runner: i64,
        f: i64,
    },
    // list and array
    Push(Bytes),
    Pop(Option<i64>),
    At(i64),
    SetAt(i64, Bytes),
    InsertAt(i64, Bytes),
    RemoveValue(Bytes),
    Extend(Vec<Bytes>),
    ToVec,
    // value
    Load,
    Store(Bytes),
    // queue
    Put {
        item: Bytes,
        timeout: Option<Duration>,
    },
    Take {
        timeout: Option<Duration>,
    },
    Full,
    /// A joinable queue's unfinished tasks.
    Count,
    TaskDone,
    Join {
        timeout: Option<Duration>,
    },
    // lock, rlock, semaphore, condition
    Acquire {
        owner: Owner,
        timeout: Option<Duration>,
    },
    Release {
        owner: Owner,
    },
    // event
    Set,
    Unset,
    IsSet,
    Wait {
        timeout: Option<Duration>,
    },
    // condition
    CondWait {
        owner: Owner,
        timeout: Option<Duration>,
    },
    Notify {
        owner: Owner,
        n: u32,
    },
    // barrier
    BarrierWait {
        timeout: Option<Duration>,
    },
    Reset,
    Abort,
    // user type
    Handle(Bytes),
    // queue, again: Python 3.13's `Queue.shutdown`
    Shutdown {
        immediate: bool,
    },
}

/// A successful answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Unit,
    Bool(bool),
    Count(u64),
    Item(Option<Bytes>),
    Items(Vec<Bytes>),
    Pairs(Vec<(Bytes, Bytes)>),
    /// The answer to `Hello`.
    Hello {
        fingerprint: u64,
        /// The address the server listens on, as it knows it (see `client::Remote`).
        address: Address,
    },
    /// A barrier's state: parties, waiting, broken.
    Barrier(u32, u32, bool),
}

/// Why a request failed, as the server tells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Failure {
    Timeout,
    Empty,
    Full,
    Closed,
    BuildMismatch,
    Panicked {
        message: String,
        location: Option<String>,
    },
    Decode(String),
    Protocol(String),
    Invalid(Invalid),
}

/// The states a call may find an object in that refuse it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Invalid {
    UnknownObject,
    WrongKind,
    NotOwner,
    Unlocked,
    OverReleased,
    IndexOutOfRange,
    Broken,
    NoParties,
    TooManyTaskDone,
}

impl Invalid {
    fn message(self) -> &'static str {
        match self {
            Invalid::UnknownObject => "the manager has no object with this id",
            Invalid::WrongKind => "the manager's object is of another kind than this proxy",
            Invalid::NotOwner => "the lock is held by another thread or process",
            Invalid::Unlocked => "release of a lock that is not held",
            Invalid::OverReleased => "a bounded semaphore was released more often than acquired",
            Invalid::IndexOutOfRange => "the index is out of range",
            Invalid::Broken => "the barrier is broken; call reset to use it again",
            Invalid::NoParties => "a barrier needs at least one party",
            Invalid::TooManyTaskDone => "task_done was called more often than items were put",
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        match failure {
            Failure::Timeout => Error::Timeout,
            Failure::Empty => Error::Empty,
            Failure::Full => Error::Full,
            Failure::Closed => Error::Closed,
            Failure::BuildMismatch => Error::BuildMismatch,
            Failure::Panicked { message, location } => Error::Panicked { message, location },
            Failure::Decode(message) => Error::Decode(message),
            Failure::Protocol(message) => Error::Protocol(message),
            Failure::Invalid(invalid) => Error::InvalidState(invalid.message()),
        }
    }
}

/// What the server answers to one request.
pub(crate) type Response = Result<Reply, Failure>;
