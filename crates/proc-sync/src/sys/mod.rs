//! The one internal interface to the operating system, for what is `proc-sync`'s own: the
//! lifetime of a named segment's name. Segments themselves (named or not), the words that
//! primitives sleep and lock on, and the owner pids of locks are `proc-core`'s
//! (`proc_core::shared`, `proc_core::internal::create_named_segment`).
//!
//! What each platform provides, so that the rest of the crate has no `cfg` of its own:

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub(crate) use imp::{
    // Whether the creator must remove the name when its last handle drops, where the
    // platform has no tracker.
    UNLINK_ON_DROP,
    // Starts whatever removes a named segment's name once every process that holds the
    // returned `Handle` has ended (`None` where nothing needs to).
    track,
    // Stops the tracker after an explicit unlink.
    untrack,
};
