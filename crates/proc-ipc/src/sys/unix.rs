//! Unix: local sockets are Unix domain sockets and TCP sockets are descriptors too, so both
//! become a `Link` as they are.

use std::net::TcpStream;
use std::os::fd::OwnedFd;

use interprocess::local_socket::Stream;
use proc_core::{Handle, Link, Result};

/// A link over an accepted or connected local socket; handles travel over it.
pub(crate) fn local_link(stream: Stream) -> Result<Link> {
    let Stream::UdSocket(stream) = stream;
    Ok(Link::from_stream(Handle::from(OwnedFd::from(stream))))
}

/// A link over an accepted or connected TCP stream; handles do not travel over it.
pub(crate) fn tcp_link(stream: TcpStream) -> Result<Link> {
    Ok(Link::from_stream(Handle::from(OwnedFd::from(stream))))
}

/// Whether TCP listeners and clients are available.
pub(crate) fn tcp_supported() -> Result<()> {
    Ok(())
}
