//! Windows: named segments (named file mappings, made by
//! `proc_core::internal::create_named_segment`) need no tracker: the kernel frees one, name
//! and all, with its last handle.

use std::io;

use proc_core::Handle;

/// The kernel frees a named mapping with its last handle.
pub(crate) const UNLINK_ON_DROP: bool = false;

/// Nothing to watch: the kernel frees a named mapping with its last handle.
pub(crate) fn track(_name: &str) -> io::Result<Option<Handle>> {
    Ok(None)
}

pub(crate) fn untrack(_tracker: &Handle) {}
