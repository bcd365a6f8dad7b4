//! What differs between platforms for listeners and clients, behind one internal interface:
//!
//! - `local_link`: a connected local socket (interprocess's `Stream`) becomes a `Link`.
//!
//! TCP is the same everywhere: a connected `TcpStream` becomes a `Link` with
//! `Link::from_tcp`, whose platform code lives in `proc-core`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub(crate) use imp::local_link;
