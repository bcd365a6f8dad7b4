//! [`StartMethod::Fork`](crate::StartMethod::Fork): this process forks, and the copy runs the
//! request it already holds in memory (`child::run`).

use super::{Settings, started};
use crate::child;
use crate::error::{Error, Result};
use crate::internal::unwind;
use crate::registry;
use crate::start::Request;
use crate::sys::{self, Channel, Child};

/// How long a fork waits for threads that are ending to be gone.
const THREADS_ENDING: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether this process has one thread, or has it within [`THREADS_ENDING`]: a thread that
/// was joined a moment ago is still counted until the kernel has taken it down (glibc's
/// join returns when the thread's exit clears its tid, before the thread leaves its group).
fn single_threaded() -> bool {
    let deadline = std::time::Instant::now() + THREADS_ENDING;
    loop {
        match sys::thread_count() {
            Some(1) => return true,
            None => return false,
            Some(_) if std::time::Instant::now() >= deadline => return false,
            Some(_) => std::thread::sleep(std::time::Duration::from_micros(200)),
        }
    }
}

/// Forks a child that runs `request` on `theirs`, with its own copies of `handles`.
///
/// # Errors
///
/// [`Error::Unsupported`] while this process has more than one thread (or cannot tell): a
/// fork would copy locks held by threads that do not exist in the child.
pub(super) fn start(
    ours: &Channel,
    theirs: Channel,
    request: &Request,
    handles: &[sys::RawHandle],
    settings: &Settings,
) -> Result<Child> {
    if !single_threaded() {
        return Err(Error::Unsupported(
            "fork needs a single-threaded process and this one has other threads \
             (or cannot tell); use StartMethod::ForkServer or StartMethod::Spawn",
        ));
    }
    sys::flush_std_streams();
    unwind::install_hook();
    let trampoline = settings.trampoline;
    // The closure runs only in the forked child, which owns its copy of `theirs` and
    // inherited every handle of the arguments; in the parent it is dropped, closing the
    // parent's copy of `theirs`.
    let links = registry::channel_handles();
    started(sys::fork(ours, &links, move || {
        // SAFETY: this runs in the forked child, in its own copy of the parent's memory,
        // which leaves through `_exit` when the closure returns: the `Request` that
        // `request` points at is never used or dropped in this process, so the bitwise copy
        // is its only owner here. The parent neither clones it nor frees the clone after
        // the fork, where every write of its heap would copy a page the child shares.
        let request = unsafe { std::ptr::read(request) };
        // Arguments without handles (most) skip the collecting loop, and its code page.
        let copies: std::io::Result<Vec<_>> = if handles.is_empty() {
            Ok(Vec::new())
        } else {
            handles.iter().map(|h| sys::duplicate_handle(*h)).collect()
        };
        match copies {
            Ok(copies) => child::run(theirs, request, copies, trampoline),
            Err(_) => 2,
        }
    }))
}
