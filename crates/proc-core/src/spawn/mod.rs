//! How a child comes to life: one file per start method (the shape of crossbeam-channel's
//! `flavors/`), behind the one [`launch`] that `Process::start` calls.
//!
//! - [`exec`]: [`StartMethod::Spawn`], the program started anew.
//! - [`fork`]: [`StartMethod::Fork`], this process forked.
//! - [`forkserver`]: [`StartMethod::ForkServer`], the fork server's fork.
//!
//! Each flavour makes the `sys::Child` on the channel pair that `launch` creates; `launch`
//! then hands the child its request (a forked child has it in memory already) and returns
//! the state that the `Process` handle and the registry share.

mod exec;
mod fork;
mod forkserver;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::method::StartMethod;
use crate::registry::ChildState;
use crate::start::{Request, Trampoline};
use crate::sys::{self, Channel, Child};

/// What a start needs besides the request on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The function's trampoline, which a forked child calls directly (the others find it
    /// from the request's `entry`).
    pub(crate) trampoline: Trampoline,
    /// The program a spawned child runs (Python's `set_executable`); this one's by default.
    pub(crate) executable: Option<PathBuf>,
}

/// Starts a child with `method` and gives it `request` with copies of `handles` (the
/// handles inside its arguments).
///
/// A child that died before it read its request is not an error here: `join` reports it.
pub(crate) fn launch(
    method: StartMethod,
    request: &Request,
    handles: &[sys::RawHandle],
    settings: &Settings,
) -> Result<Arc<ChildState>> {
    // `theirs` stays open here until the request went out, whatever the flavour did with
    // its copy.
    let (ours, theirs) = Channel::pair()?;
    // A short time slice until the request is out: on a loaded machine each wake-up of the
    // start (this thread's, the fork server's) is then picked before a busy process's slice
    // runs out, and the child inherits it for its own start-up (it puts the default back
    // before user code, `child::run`).
    let slice = sys::ShortSlice::take();
    let child = match method {
        StartMethod::Spawn => exec::start(settings, &theirs)?,
        StartMethod::ForkServer => forkserver::start(&theirs)?,
        StartMethod::Fork => fork::start(&ours, theirs, request, handles, settings)?,
    };
    tracing::debug!(pid = child.pid(), "process started");
    let state = Arc::new(ChildState::new(
        request.identity.name.clone(),
        request.identity.daemon,
        child,
        ours,
    ));
    // A forked child has its request in memory already.
    let sent = if method == StartMethod::Fork {
        Ok(())
    } else {
        state.send_request(request, handles)
    };
    match sent {
        // A child that died before it read its request is reported by join.
        Err(Error::Io(e)) if sys::is_peer_gone(&e) => {}
        Err(e) => {
            let _ = state.child.kill();
            let _ = state.wait(None);
            return Err(e);
        }
        Ok(()) => {}
    }
    drop(slice);
    Ok(state)
}

/// The error of a start that the operating system refused.
fn started(child: io::Result<Child>) -> Result<Child> {
    child.map_err(|e| {
        tracing::debug!(error = %e, "could not start the process");
        Error::Io(e)
    })
}
