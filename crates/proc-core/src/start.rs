//! What a parent and its new child say to each other when the child starts: the request,
//! who the child is, the function it runs, and the one outcome it sends back.
//!
//! These are plain data: the parent's side (`spawn`, `registry`) and the child's
//! (`child`) both stand on them, and they know nothing of either.

use serde::{Deserialize, Serialize};

use crate::fingerprint;
use crate::method::StartMethod;
use crate::sys;

/// A process's name, place in the process tree, daemon flag and authentication key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) name: String,
    /// Python's `_identity`: `[]` for the main process, `[2]` for its second child, `[2, 1]`
    /// for that child's first child.
    pub(crate) path: Vec<u32>,
    pub(crate) daemon: bool,
    pub(crate) authkey: Vec<u8>,
}

/// What a parent asks of a new child, sent as the first frame on their channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    /// The parent's build fingerprint; the child refuses to run under another build.
    pub(crate) fingerprint: u64,
    /// Where the trampoline is, as an offset from `fingerprint::anchor`.
    pub(crate) entry: isize,
    /// The encoded arguments.
    pub(crate) payload: Vec<u8>,
    /// Who the child is.
    pub(crate) identity: Identity,
    /// The parent's pid, start time and name.
    pub(crate) parent: (u32, u64, String),
    /// How the child was started.
    pub(crate) method: StartMethod,
}

/// What a child tells its parent about the function it ran, as the one frame it sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The function returned; the encoded result.
    Returned(Vec<u8>),
    /// The function panicked.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The child is another build than the parent.
    BuildMismatch,
    /// The arguments did not decode or the result did not encode.
    Failed(String),
}

/// Sends the outcome to the parent, with the handles inside the result.
pub(crate) type Reply<'a> = &'a mut dyn FnMut(&Outcome, &[sys::RawHandle]);

/// A monomorphised function that decodes the arguments (with the handles that came with
/// them), runs the user's function, and replies with its encoded result while the result —
/// and so its handles — is still alive. Returns the exit code: 0 when the function returned.
/// `child::trampoline` makes one for each function type.
pub(crate) type Trampoline = fn(&[u8], Vec<sys::OwnedHandle>, Reply<'_>) -> i32;

/// The offset of a trampoline from the anchor, as sent to spawned children.
pub(crate) fn entry_offset(t: Trampoline) -> isize {
    (t as usize).wrapping_sub(fingerprint::anchor()) as isize
}
