//! Unix: local sockets are Unix domain sockets, which become a `Link` as they are.

use std::os::fd::OwnedFd;

use interprocess::local_socket::Stream;
use proc_core::{Handle, Link, Result};

/// A link over an accepted or connected local socket; handles travel over it.
pub(crate) fn local_link(stream: Stream) -> Result<Link> {
    let Stream::UdSocket(stream) = stream;
    Ok(Link::from_stream(Handle::from(OwnedFd::from(stream))))
}
