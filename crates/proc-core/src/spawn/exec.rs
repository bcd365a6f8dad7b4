//! [`StartMethod::Spawn`](crate::StartMethod::Spawn): the program started anew, which finds
//! its request on its channel (`child::serve_forked`).

use super::{Settings, started};
use crate::error::Result;
use crate::sys::{self, Channel, Child};

/// Starts the executable with its end of the channel.
pub(super) fn start(settings: &Settings, theirs: &Channel) -> Result<Child> {
    let exe = match &settings.executable {
        Some(path) => path.clone(),
        None => sys::default_executable()?,
    };
    started(sys::spawn(&exe, "spawn", theirs))
}
