//! The one internal interface to the operating system, for what is `proc-sync`'s own: named
//! shared memory. Anonymous segments, the words that primitives sleep and lock on, and the
//! owner pids of locks are `proc_core::shared`'s.
//!
//! Everything that differs between platforms lives behind the items that `unix` and `windows`
//! both define, so that the rest of the crate has no `cfg` of its own:
//!
//! - `create_named(name, len)`: a new `Segment` under `name` (fails if the name exists);
//!   `open_named(name)`: the existing one, all of it. Both open the named object and hand its
//!   handle to `Segment::from_handle`.
//! - `unlink_named(name)`: removes a segment's name.
//! - `track(name)`: starts whatever removes a named segment's name once every process that
//!   holds the returned `Handle` has ended; `untrack(&Handle)` stops it after an explicit
//!   unlink. `UNLINK_ON_DROP` says whether the creator must unlink on drop instead, where the
//!   platform has no tracker.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
