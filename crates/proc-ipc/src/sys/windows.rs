//! Windows: local sockets are named pipes, which `Link` reads and writes as they are. TCP
//! sockets are `SOCKET`s, which `Link`'s named-pipe transport cannot wait on, so TCP is not
//! offered here.

use std::net::TcpStream;
use std::os::windows::io::OwnedHandle;

use interprocess::local_socket::Stream;
use proc_core::{Error, Handle, Link, Result};

/// A link over an accepted or connected named pipe, told the pid of the process at the other
/// end (the system names it, not the peer), so that handles sent through it are duplicated
/// straight into that process.
pub(crate) fn local_link(stream: Stream) -> Result<Link> {
    let Stream::NamedPipe(stream) = stream;
    let peer = stream.inner().peer_process_id().ok();
    let link = Link::from_stream(Handle::from(OwnedHandle::from(stream)));
    if let Some(pid) = peer {
        link.set_peer(pid);
    }
    Ok(link)
}

/// Refuses, as [`tcp_supported`] does (which is asked first).
pub(crate) fn tcp_link(_stream: TcpStream) -> Result<Link> {
    Err(no_tcp())
}

/// Whether TCP listeners and clients are available: not on Windows.
pub(crate) fn tcp_supported() -> Result<()> {
    Err(no_tcp())
}

fn no_tcp() -> Error {
    Error::Unsupported(
        "tcp listeners and clients are not available on windows yet; use a local address",
    )
}
