//! The build fingerprint: how a child knows that it runs the same program as its parent.
//!
//! Children find the function to run by its offset from an anchor function, which is only
//! meaningful within one build. The fingerprint mixes the size and modification time of the
//! executable file with the distance between two functions in memory and the crate version, so
//! a different build (recompiled, replaced on disk, another program named by
//! `Builder::executable`) yields another value and the child refuses the call.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

static FINGERPRINT: OnceLock<u64> = OnceLock::new();

/// The anchor that function offsets are measured from.
#[inline(never)]
pub(crate) fn anchor() -> usize {
    anchor as *const () as usize
}

/// This process's fingerprint, computed once, as early as the process can (at start-up).
pub(crate) fn fingerprint() -> u64 {
    *FINGERPRINT.get_or_init(compute)
}

fn compute() -> u64 {
    // `DefaultHasher::new` uses fixed keys, so the same inputs hash alike in every process of
    // one build; a different build may hash differently, which only strengthens the check.
    let mut hasher = DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    (compute as *const () as usize)
        .wrapping_sub(anchor())
        .hash(&mut hasher);
    match crate::sys::default_executable().and_then(std::fs::metadata) {
        Ok(meta) => {
            meta.len().hash(&mut hasher);
            if let Ok(modified) = meta.modified() {
                let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
                since.as_nanos().hash(&mut hasher);
            }
        }
        // Without the file two programs could look alike: fail closed with a value of this
        // process alone, so that no child ever matches it.
        Err(_) => (crate::sys::getpid(), std::time::SystemTime::now()).hash(&mut hasher),
    }
    hasher.finish()
}
