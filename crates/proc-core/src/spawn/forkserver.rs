//! [`StartMethod::ForkServer`](crate::StartMethod::ForkServer): the fork server (started on
//! first use, `sys`'s `forkserver_spawn`) forks the child, which finds its request on its
//! channel (`child::serve_forked`).

use super::started;
use crate::error::Result;
use crate::sys::{self, Channel, Child};

/// Asks the fork server for a child on its end of the channel.
pub(super) fn start(theirs: &Channel) -> Result<Child> {
    started(sys::forkserver_spawn(theirs))
}
