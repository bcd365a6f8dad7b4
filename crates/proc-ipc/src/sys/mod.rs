//! What differs between platforms for listeners and clients, behind one internal interface:
//!
//! - `local_link`: a connected local socket (interprocess's `Stream`) becomes a `Link`;
//! - `tcp_link`: a connected TCP stream becomes a `Link`;
//! - `tcp_supported`: whether TCP listeners and clients exist here.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
