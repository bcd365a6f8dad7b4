//! Windows: local sockets are named pipes, which `Link` reads and writes as they are, and
//! which carry handles once the link knows the pid of the process at the other end.

use std::os::windows::io::OwnedHandle;

use interprocess::local_socket::Stream;
use proc_core::{Handle, Link, Result};

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
