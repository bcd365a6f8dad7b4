//! What every shared type sends first: its kind and the layout it expects.
//!
//! Underneath, a `Lock`, a `Value`, a `RawValue` and a `SharedMemory` are all one segment, so
//! the handles alone do not say what the memory holds. Were they all that travelled, a peer
//! that sent one where the receiver expects another would have it accepted, and the two
//! processes would use the same bytes as different things — one with atomics, the other with
//! plain reads and writes. A [`Header`] names the kind and the size and alignment of what the
//! memory holds, and the receiver refuses a mismatch with a decode error.

use std::fmt;

use serde::de::Error;
use serde::{Deserialize, Serialize};

/// What a serialized segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    SharedMemory,
    Lock,
    RLock,
    Semaphore,
    Event,
    Condition,
    Barrier,
    Value,
    Array,
    RawValue,
    RawArray,
}

/// The kind of a segment and the size and alignment of the type it holds (the state of a
/// primitive, the `T` of a `Value` or the element of an `Array`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    kind: Kind,
    size: u64,
    align: u64,
}

impl Header {
    /// The header of a `kind` that holds a `T`.
    pub(crate) fn of<T>(kind: Kind) -> Header {
        Header {
            kind,
            size: std::mem::size_of::<T>() as u64,
            align: std::mem::align_of::<T>() as u64,
        }
    }

    /// Refuses a header that is not `expected`.
    pub(crate) fn expect<E: Error>(self, expected: Header) -> Result<(), E> {
        if self == expected {
            Ok(())
        } else {
            Err(proc_core::codec::de_error(format_args!(
                "received {self} where {expected} was expected"
            )))
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {:?} of {} bytes aligned to {}",
            self.kind, self.size, self.align
        )
    }
}
