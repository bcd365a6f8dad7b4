//! Unix: `posix_spawn` re-execution, `fork`, a fork server, `poll`-based waits.

mod forkserver;
mod shared;

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) use forkserver::{forkserver_spawn, serve_forkserver};
pub(crate) use shared::{
    Parkers, anonymous_segment, map_segment, refuse_arrived_segment, unmap_segment,
};

/// Converts the return value of a libc call that reports failure with -1.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries a libc call interrupted by a signal.
fn cvt_retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Milliseconds for `poll`, rounded up so that a short wait never becomes a busy loop.
fn poll_millis(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// Waits until `fd` has one of `events`, or `timeout` passes. Returns whether it became ready.
pub(crate) fn poll_fd(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let deadline = crate::internal::Deadline::from_timeout(timeout).instant();
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid, initialised pollfd and the count passed is 1.
        let ret = unsafe { libc::poll(&mut pfd, 1, poll_millis(remaining)) };
        match ret {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            0 if remaining.is_some_and(|r| r.is_zero()) => return Ok(false),
            0 => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            _ => return Ok(true),
        }
    }
}

/// Waits until at least one of `channels` has something to read (or end-of-file), or
/// `timeout` passes; returns the indexes of the ready ones.
pub(crate) fn wait_any(channels: &[&Channel], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let deadline = crate::internal::Deadline::from_timeout(timeout).instant();
    let mut fds: Vec<libc::pollfd> = channels
        .iter()
        .map(|c| libc::pollfd {
            fd: c.raw(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // SAFETY: `fds` is a vector of initialised pollfds and its length is passed with it.
        let ret = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                poll_millis(remaining),
            )
        };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if ret > 0
            || remaining.is_some_and(|r| r.is_zero())
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            return Ok(fds
                .iter()
                .enumerate()
                .filter(|(_, p)| p.revents != 0)
                .map(|(i, _)| i)
                .collect());
        }
    }
}

/// A bidirectional byte stream to one other process: a Unix stream socket.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair; both ends close on exec.
    pub(crate) fn pair() -> io::Result<(Channel, Channel)> {
        let mut fds = [0 as RawFd; 2];
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            // SAFETY: `fds` is a writable array of two descriptors, as socketpair requires.
            cvt(unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                )
            })?;
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        {
            // SAFETY: `fds` is a writable array of two descriptors, as socketpair requires.
            cvt(unsafe {
                libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr())
            })?;
            for fd in fds {
                set_cloexec(fd, true)?;
                set_nosigpipe(fd)?;
            }
        }
        // SAFETY: socketpair succeeded, so both descriptors are open and owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Wraps a descriptor this process owns.
    pub(crate) fn from_owned(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    /// The raw descriptor, for poll sets and descriptor passing.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits until the channel has bytes or end-of-file to read, or `timeout` passes.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        poll_fd(self.raw(), libc::POLLIN, timeout)
    }

    /// Whether the peer has closed its end (and sent nothing more), without blocking.
    pub(crate) fn peer_closed(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: one writable byte is passed with length 1; MSG_PEEK leaves the stream as is.
        let n = unsafe {
            libc::recv(
                self.raw(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n == 0
    }

    /// Takes the channel named by the child environment variable's value (`role:fd`), and
    /// marks it close-on-exec so that programs this child runs do not inherit it.
    pub(crate) fn from_env(value: &str) -> Option<(String, Channel)> {
        let (role, fd) = value.split_once(':')?;
        let fd: RawFd = fd.parse().ok()?;
        // Only a socket can be the channel: a stray variable naming stdout, say, is ignored
        // rather than read from.
        // SAFETY: an all-zero `stat` is a valid buffer; fstat fails cleanly on a closed fd.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `stat` is a writable `struct stat`.
        if unsafe { libc::fstat(fd, &mut stat) } == -1
            || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK
        {
            return None;
        }
        // SAFETY: the parent placed this descriptor here for us alone (dup2 in posix_spawn);
        // nothing else in this process knows it, so taking ownership is sound.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        set_cloexec(fd, true).ok()?;
        #[cfg(target_vendor = "apple")]
        set_nosigpipe(fd).ok()?;
        Some((role.to_string(), Channel { fd: owned }))
    }
}

impl Channel {
    /// Fails unless descriptors can travel over this channel: only a Unix domain socket
    /// carries them (a channel made by `Link::from_stream` may be a TCP socket, where
    /// `SCM_RIGHTS` is refused or, on some systems, silently dropped).
    fn check_carries_fds(&self) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_storage is a valid value to be overwritten.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `addr` is writable for `len` bytes, and `len` is updated by the call.
        cvt(unsafe {
            libc::getsockname(
                self.raw(),
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        })?;
        if libc::c_int::from(addr.ss_family) == libc::AF_UNIX {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "handles cannot be sent over a network connection; \
                 use a local address or a pipe to pass them",
            ))
        }
    }

    /// Sends `data` (at least one byte) together with copies of the descriptors `fds`.
    pub(crate) fn send_with_fds(&self, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
        assert!(!data.is_empty() && !fds.is_empty());
        let payload = std::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
        // u64 elements keep the control buffer aligned for cmsghdr.
        let mut control = vec![0u64; space.div_ceil(8)];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: an all-zero msghdr is a valid empty message; every pointer set below points
        // into `iov`, `control` or `fds`, which outlive the sendmsg call, and the control
        // buffer has room for exactly one SCM_RIGHTS message of `fds.len()` descriptors.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                fds.len(),
            );
            #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
            let flags = libc::MSG_NOSIGNAL;
            #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
            let flags = 0;
            let sent = loop {
                let sent = libc::sendmsg(self.raw(), &msg, flags);
                if sent >= 0 {
                    break sent as usize;
                }
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            };
            // The descriptors went with the first bytes; the rest is plain stream data.
            let mut this = self;
            this.write_all(&data[sent..])?;
        }
        Ok(())
    }

    /// Receives up to `buf.len()` bytes and the descriptors that came with them.
    /// Returns 0 bytes at end-of-file.
    pub(crate) fn recv_with_fds(&self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        const MAX_FDS: usize = MAX_HANDLES;
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        let flags = libc::MSG_CMSG_CLOEXEC;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        let flags = 0;
        // SAFETY: as in `send_with_fds`; the kernel writes at most `msg_controllen` bytes of
        // control data, and every SCM_RIGHTS descriptor it reports is new and ours to own.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let n = loop {
                let n = libc::recvmsg(self.raw(), &mut msg, flags);
                if n >= 0 {
                    break n as usize;
                }
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            };
            let mut fds = Vec::new();
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..bytes / size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            for fd in &fds {
                set_cloexec(fd.as_raw_fd(), true)?;
            }
            if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                // More descriptors came than a frame may carry; the kernel dropped the rest,
                // so the frame cannot be trusted. The ones that arrived close with `fds`.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a frame arrived with more than {MAX_HANDLES} handles"),
                ));
            }
            Ok((n, fds))
        }
    }
}

/// The most handles one frame may carry.
pub(crate) const MAX_HANDLES: usize = 64;

/// Frames with a payload up to this size are sent from a buffer on the stack.
const SMALL_FRAME: usize = 252;

/// A handle this process owns: a file descriptor.
pub(crate) type OwnedHandle = OwnedFd;
/// A handle as a number: a file descriptor.
pub(crate) type RawHandle = RawFd;

pub(crate) fn raw_handle(handle: &OwnedHandle) -> RawHandle {
    handle.as_raw_fd()
}

/// A new descriptor for the same open file, in this process.
pub(crate) fn duplicate_handle(raw: RawHandle) -> io::Result<OwnedHandle> {
    // SAFETY: F_DUPFD_CLOEXEC only creates a new descriptor; it fails cleanly on a bad one.
    let fd = cvt(unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: the descriptor was just created for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Channel {
    /// The channel's descriptor, to send it to another process: any channel can be sent on
    /// Unix (the interface is fallible for Windows, whose sockets cannot).
    pub(crate) fn raw_handle(&self) -> io::Result<RawHandle> {
        Ok(self.raw())
    }

    /// A channel end that arrived from another process.
    pub(crate) fn from_handle(handle: OwnedHandle) -> Channel {
        Channel::from_owned(handle)
    }

    /// A channel over a connected TCP stream: a socket like any other here, except that
    /// `send_frame` refuses handles on it (see `check_carries_fds`).
    pub(crate) fn from_tcp(stream: std::net::TcpStream) -> Channel {
        Channel::from_owned(OwnedFd::from(stream))
    }

    /// Records the peer's pid; Unix passes descriptors without it.
    pub(crate) fn set_peer(&self, _pid: u32) {}

    /// Sends one frame (`codec`'s length-prefixed format) with copies of `handles`
    /// attached to its first bytes (`SCM_RIGHTS`).
    pub(crate) fn send_frame(&self, payload: &[u8], handles: &[RawHandle]) -> io::Result<()> {
        if handles.len() > MAX_HANDLES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame carries at most {MAX_HANDLES} handles, not {}",
                    handles.len()
                ),
            ));
        }
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame of 4 GiB or more"))?;
        // Header and payload go out in one write up to 64 KiB: from the stack when small (no
        // allocation, so that a forked child that reports its result writes to no heap page it
        // would have to copy), else from a buffer. Larger payloads follow their header.
        let mut small = [0u8; 4 + SMALL_FRAME];
        let joined;
        let (head, rest): (&[u8], &[u8]) = if payload.len() <= SMALL_FRAME {
            small[..4].copy_from_slice(&len.to_le_bytes());
            small[4..4 + payload.len()].copy_from_slice(payload);
            (&small[..4 + payload.len()], &[])
        } else if payload.len() <= 64 * 1024 {
            joined = [&len.to_le_bytes()[..], payload].concat();
            (&joined, &[])
        } else {
            small[..4].copy_from_slice(&len.to_le_bytes());
            (&small[..4], payload)
        };
        if handles.is_empty() {
            (&mut &*self).write_all(head)?;
        } else {
            self.check_carries_fds()?;
            self.send_with_fds(head, handles)?;
        }
        (&mut &*self).write_all(rest)
    }

    /// Makes a read that waits longer than `timeout` for bytes fail with `WouldBlock`
    /// (`SO_RCVTIMEO`); `None` waits forever again.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = timeout.unwrap_or(Duration::ZERO);
        let tv = libc::timeval {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below a million: fits every platform's `suseconds_t`.
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` is a valid `timeval` for the length given, and the descriptor is ours.
        let done = unsafe {
            libc::setsockopt(
                self.raw(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Sends several frames without handles in one write: what `send_frame` would send for
    /// each, back to back.
    pub(crate) fn send_frames(&self, payloads: &[&[u8]]) -> io::Result<()> {
        let mut joined = Vec::with_capacity(payloads.iter().map(|p| 4 + p.len()).sum());
        for payload in payloads {
            let len = u32::try_from(payload.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a frame of 4 GiB or more")
            })?;
            joined.extend_from_slice(&len.to_le_bytes());
            joined.extend_from_slice(payload);
        }
        (&mut &*self).write_all(&joined)
    }

    /// Receives one frame of at most `max` payload bytes and the descriptors that came with it.
    pub(crate) fn recv_frame(
        &self,
        max: usize,
    ) -> crate::error::Result<(Vec<u8>, Vec<OwnedHandle>)> {
        use crate::error::Error;
        let mut fds = Vec::new();
        let mut header = [0u8; 4];
        let mut filled = 0;
        while filled < header.len() {
            let (n, mut got) = self
                .recv_with_fds(&mut header[filled..])
                .or_else(reset_is_eof)?;
            fds.append(&mut got);
            match n {
                0 if filled == 0 => return Err(Error::Closed),
                0 => return Err(Error::Protocol("truncated frame header".into())),
                n => filled += n,
            }
        }
        let len = u32::from_le_bytes(header) as usize;
        if len > max {
            return Err(Error::Protocol(format!(
                "frame of {len} bytes exceeds the limit of {max} bytes"
            )));
        }
        // Grow with what arrives, not with what the header claims: the buffer at most doubles
        // ahead of the bytes received, and the kernel copies straight into it.
        let mut payload = Vec::new();
        let mut filled = 0;
        while filled < len {
            if filled == payload.len() {
                payload.resize(len.min((2 * filled).max(FIRST_READ)), 0);
            }
            let (n, mut got) = self
                .recv_with_fds(&mut payload[filled..])
                .or_else(reset_is_eof)?;
            fds.append(&mut got);
            if n == 0 {
                return Err(Error::Protocol(format!(
                    "truncated frame: {filled} of {len} bytes arrived"
                )));
            }
            filled += n;
        }
        Ok((payload, fds))
    }
}

/// How much of a frame's payload is allocated before its bytes arrive: the whole of any
/// frame up to this size (one allocation, no copy as it grows), never more for a header
/// that claims more than it sends.
const FIRST_READ: usize = 4 << 20;

/// A peer that died with bytes of ours unread resets the connection: for the reader that is
/// the end of the stream, like any other death of the peer.
fn reset_is_eof(err: io::Error) -> io::Result<(usize, Vec<OwnedFd>)> {
    if err.raw_os_error() == Some(libc::ECONNRESET) {
        Ok((0, Vec::new()))
    } else {
        Err(err)
    }
}

impl Read for &Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => {}
                // A peer that died with bytes of ours unread resets the connection: for the
                // reader that is the end of the stream, like any other death of the peer.
                Some(libc::ECONNRESET) => return Ok(0),
                _ => return Err(err),
            }
        }
    }
}

impl Write for &Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        let flags = libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        let flags = 0;
        loop {
            // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
            let n = unsafe { libc::send(self.raw(), buf.as_ptr().cast(), buf.len(), flags) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only touch the descriptor flags of `fd`.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFD))?;
        let flags = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        cvt(libc::fcntl(fd, libc::F_SETFD, flags))?;
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn set_nosigpipe(fd: RawFd) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    {
        let one: libc::c_int = 1;
        // SAFETY: the option value points at a live c_int and its size is passed with it.
        cvt(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
    }
    let _ = fd;
    Ok(())
}

/// Python's exit code from a `waitpid` status: the code, or minus the signal number.
fn decode_status(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// How the exit of a child becomes known.
#[derive(Debug)]
enum Watch {
    /// Our own child: `waitpid`, helped by a pidfd where the kernel has them. The pidfd is
    /// opened by the first wait that sleeps: most joins find the child ended while they spin,
    /// and skip the two system calls.
    Direct {
        pidfd: std::sync::OnceLock<Option<OwnedFd>>,
    },
    /// A child of the fork server: it writes the exit code to `status` and closes it.
    ///
    /// A server that dies first closes `status` without a word (`orphaned` then); the child
    /// is not ours to `waitpid`, so its end is watched on `pidfd`, opened as soon as the
    /// server named the child (Linux ≥ 5.3), or else by asking after its pid. Its exit code is
    /// lost with the server: it counts as 255, as in Python.
    Server {
        status: OwnedFd,
        pidfd: Option<OwnedFd>,
        orphaned: std::sync::atomic::AtomicBool,
    },
}

/// The exit code of a fork server's child whose server died before it could tell: Python's
/// (`popen_forkserver` reads 255 when the status pipe ends empty).
pub(crate) const LOST_EXITCODE: i32 = 255;

/// How long a wait looks again before it sleeps.
const SPIN: Duration = Duration::from_micros(60);

/// A started child process.
#[derive(Debug)]
pub(crate) struct Child {
    pid: libc::pid_t,
    watch: Watch,
    exitcode: Mutex<Option<i32>>,
}

impl Child {
    fn direct(pid: libc::pid_t) -> Child {
        Child {
            pid,
            watch: Watch::Direct {
                pidfd: std::sync::OnceLock::new(),
            },
            exitcode: Mutex::new(None),
        }
    }

    /// A child of the fork server, which reports its exit code on `status`.
    ///
    /// The pidfd is opened now, not when the server turns out to be dead: the server reaps
    /// the child and writes its code before this process could see the pid recycled, so the
    /// pidfd is only ever consulted for a child that the server did not reap, whose pid
    /// named it still when the pidfd was opened.
    fn served(pid: libc::pid_t, status: OwnedFd) -> Child {
        Child {
            pid,
            watch: Watch::Server {
                status,
                pidfd: pidfd_open(pid),
                orphaned: std::sync::atomic::AtomicBool::new(false),
            },
            exitcode: Mutex::new(None),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Whether this is a fork server's child whose server died before the child's end.
    fn orphaned(&self) -> bool {
        matches!(&self.watch, Watch::Server { orphaned, .. }
            if orphaned.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The exit code if the child has ended, without blocking; reaps it.
    ///
    /// The lock is held across the non-blocking reap, so that two threads asking at once
    /// never see one of them reap the child while the other finds it gone.
    pub(crate) fn try_wait(&self) -> io::Result<Option<i32>> {
        let mut known = self.exitcode.lock().unwrap_or_else(|e| e.into_inner());
        self.try_wait_locked(&mut known)
    }

    /// `try_wait` for a caller that holds the lock on the exit code.
    fn try_wait_locked(&self, known: &mut Option<i32>) -> io::Result<Option<i32>> {
        if let Some(code) = *known {
            return Ok(Some(code));
        }
        let code = match &self.watch {
            Watch::Direct { .. } => {
                let mut status = 0;
                // SAFETY: `status` is a writable c_int; WNOHANG makes the call non-blocking.
                let ret =
                    cvt_retry(|| unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) })?;
                if ret == 0 {
                    return Ok(None);
                }
                decode_status(status)
            }
            Watch::Server {
                status,
                pidfd,
                orphaned,
            } => {
                use std::sync::atomic::Ordering::Relaxed;
                if !orphaned.load(Relaxed) {
                    if !poll_fd(status.as_raw_fd(), libc::POLLIN, Some(Duration::ZERO))? {
                        return Ok(None);
                    }
                    let mut buf = [0u8; 4];
                    let mut file = std::fs::File::from(status.try_clone()?);
                    match file.read_exact(&mut buf) {
                        Ok(()) => {
                            *known = Some(i32::from_le_bytes(buf));
                            return Ok(*known);
                        }
                        // A write of 4 bytes to a pipe is atomic: end-of-file means that the
                        // server died without a word for this child.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            tracing::debug!(
                                pid = self.pid,
                                "the fork server died before its child"
                            );
                            orphaned.store(true, Relaxed);
                        }
                        Err(e) => return Err(e),
                    }
                }
                let ended = match pidfd {
                    Some(pidfd) => poll_fd(pidfd.as_raw_fd(), libc::POLLIN, Some(Duration::ZERO))?,
                    None => !pid_alive(self.pid as u32),
                };
                if !ended {
                    return Ok(None);
                }
                LOST_EXITCODE
            }
        };
        *known = Some(code);
        Ok(Some(code))
    }

    /// Waits for the child to end, at most `timeout`; returns its exit code if it ended.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        if let Some(code) = self.try_wait()? {
            return Ok(Some(code));
        }
        let deadline = crate::internal::Deadline::from_timeout(timeout).instant();
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // A child that has just sent its result is about to exit: look again for a few
        // microseconds before going to sleep, which saves a cross-core wake-up (~25 µs here)
        // on the common path of every join.
        let spin_until = Instant::now() + SPIN.min(timeout.unwrap_or(SPIN));
        while Instant::now() < spin_until {
            std::thread::yield_now();
            if let Some(code) = self.try_wait()? {
                return Ok(Some(code));
            }
        }
        match &self.watch {
            Watch::Server { status, pidfd, .. } => {
                if !self.orphaned() {
                    poll_fd(status.as_raw_fd(), libc::POLLIN, remaining())?;
                    let code = self.try_wait()?;
                    if code.is_some() || !self.orphaned() {
                        return Ok(code);
                    }
                }
                // The server died and the child still runs: its end is watched directly.
                match pidfd {
                    Some(pidfd) => {
                        poll_fd(pidfd.as_raw_fd(), libc::POLLIN, remaining())?;
                        self.try_wait()
                    }
                    None => self.wait_by_looking(remaining),
                }
            }
            Watch::Direct { pidfd } => {
                let pidfd = {
                    // Our child's pid cannot be reused before we reap it, and reaping takes this
                    // lock: a pid that is not reaped under it names our child.
                    let mut known = self.exitcode.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(code) = self.try_wait_locked(&mut known)? {
                        return Ok(Some(code));
                    }
                    pidfd.get_or_init(|| pidfd_open(self.pid)).as_ref()
                };
                if let Some(pidfd) = pidfd {
                    poll_fd(pidfd.as_raw_fd(), libc::POLLIN, remaining())?;
                    return self.try_wait();
                }
                self.wait_by_looking(remaining)
            }
        }
    }

    /// Waits for the end by looking again and again, where there is no descriptor to sleep
    /// on: the pause between looks grows from 50 µs to 10 ms, so that short waits stay short
    /// and long ones stay idle.
    fn wait_by_looking(&self, remaining: impl Fn() -> Option<Duration>) -> io::Result<Option<i32>> {
        let mut pause = Duration::from_micros(50);
        loop {
            if let Some(code) = self.try_wait()? {
                return Ok(Some(code));
            }
            let left = remaining().unwrap_or(pause);
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        // A child that has ended may have had its pid reused: never signal it. The lock stays
        // held across `kill`, so no other thread can reap our own child in between.
        let mut known = self.exitcode.lock().unwrap_or_else(|e| e.into_inner());
        if self.try_wait_locked(&mut known)?.is_some() {
            return Ok(());
        }
        // A fork server's child is reaped by the server, which may recycle its pid before
        // this process learns of the end: its pidfd, where there is one, names it for sure.
        if let Watch::Server {
            pidfd: Some(pidfd), ..
        } = &self.watch
        {
            return match pidfd_send_signal(pidfd, sig) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                other => other,
            };
        }
        // SAFETY: kill has no memory-safety preconditions.
        match cvt(unsafe { libc::kill(self.pid, sig) }) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Asks the child to end (SIGTERM).
    pub(crate) fn terminate(&self) -> io::Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Ends the child at once (SIGKILL).
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Interrupts the child (SIGINT), as Ctrl-C in a terminal would.
    pub(crate) fn interrupt(&self) -> io::Result<()> {
        self.signal(libc::SIGINT)
    }
}

#[cfg(target_os = "linux")]
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this descriptor (always close-on-exec) to us alone.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: libc::pid_t) -> Option<OwnedFd> {
    None
}

#[cfg(target_os = "linux")]
fn pidfd_send_signal(pidfd: &OwnedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes a descriptor of ours, a signal number, a null siginfo
    // (which makes it act as kill) and no flags; it touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Never called: `pidfd_open` gives no pidfd here.
#[cfg(not(target_os = "linux"))]
fn pidfd_send_signal(_pidfd: &OwnedFd, _sig: libc::c_int) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a nul byte in an argument"))
}

/// The program that children re-execute: the very file this process runs.
pub(crate) fn default_executable() -> io::Result<PathBuf> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // `/proc/self/exe` names the running file even after it was replaced on disk.
        Ok(PathBuf::from("/proc/self/exe"))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        std::env::current_exe()
    }
}

/// Starts `exe` with `role` in the child environment variable and `child_end` as its channel.
pub(crate) fn spawn(exe: &Path, role: &str, child_end: &Channel) -> io::Result<Child> {
    let source = child_end.raw();
    let target: RawFd = if source == 3 { 4 } else { 3 };

    let path = cstring(exe.as_os_str().as_bytes())?;
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| exe.as_os_str().to_owned());
    let argv0 = cstring(argv0.as_bytes())?;
    let argv = [argv0.as_ptr(), std::ptr::null()];

    let mut env: Vec<CString> = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == super::CHILD_ENV {
            continue;
        }
        let mut entry = key.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        if let Ok(entry) = CString::new(entry) {
            env.push(entry);
        }
    }
    env.push(cstring(
        format!("{}={role}:{target}", super::CHILD_ENV).as_bytes(),
    )?);
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    // SAFETY: the file actions and attributes are initialised before use and destroyed on
    // every path; all pointers passed to posix_spawn point at nul-terminated strings and
    // null-terminated arrays that outlive the call.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check_spawn(libc::posix_spawn_file_actions_init(&mut actions))?;
        if let Err(e) = check_spawn(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let result = (|| {
            // dup2 onto another number clears close-on-exec on the copy only.
            check_spawn(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                source,
                target,
            ))?;
            // Start the child with no blocked signals, whatever the calling thread blocks,
            // so that terminate() always reaches it.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check_spawn(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
            check_spawn(libc::posix_spawnattr_setflags(
                &mut attr,
                libc::POSIX_SPAWN_SETSIGMASK as _,
            ))?;
            let mut pid: libc::pid_t = 0;
            check_spawn(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            ))?;
            Ok(pid)
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result.map(Child::direct)
    }
}

fn check_spawn(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The descriptor of this process's own channel to its parent, once it is a child.
static PARENT_CHANNEL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Notes this child's channel to its parent, so that a forked child of ours closes its copy
/// (otherwise our parent would not see our channel close when we die).
pub(crate) fn remember_parent_channel(channel: &Channel, _daemon: bool) {
    PARENT_CHANNEL.store(channel.raw(), std::sync::atomic::Ordering::Relaxed);
}

/// Forks; the child runs `child` and leaves with its return value as exit code.
///
/// In the child, the descriptors that belong to the parent's role are closed first: the
/// parent's end of the new child's channel (`parent_end`) and of its other children's
/// (`inherited_links`), the parent's own channel to its parent, and its connection to the
/// fork server. Everything else is inherited, as with any
/// fork. The caller makes sure that this process has a single thread.
pub(crate) fn fork(
    parent_end: &Channel,
    inherited_links: &[RawHandle],
    child: impl FnOnce() -> i32,
) -> io::Result<Child> {
    // SAFETY: the caller checked that no other thread exists, so no lock can be held by a
    // thread that is missing in the child; the child only runs `child` and then _exit.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        // Read first: a write would copy the page (each page a forked child writes costs it
        // ~2 µs here), and a top-level parent has no channel to forget.
        let inherited = match PARENT_CHANNEL.load(std::sync::atomic::Ordering::Relaxed) {
            -1 => -1,
            _ => PARENT_CHANNEL.swap(-1, std::sync::atomic::Ordering::Relaxed),
        };
        // SAFETY: both descriptors are this forked child's copies of the parent's links; the
        // objects that own them in the parent's memory are never used or dropped here, because
        // the child leaves through _exit.
        unsafe {
            libc::close(parent_end.raw());
            if inherited >= 0 {
                libc::close(inherited);
            }
            for &fd in inherited_links {
                libc::close(fd);
            }
        }
        forkserver::forget_after_fork();
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(1);
        exit_now(code);
    }
    Ok(Child::direct(pid))
}

/// Leaves the process at once, without running exit handlers or destructors.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// How many threads this process has, when the platform can tell.
pub(crate) fn thread_count() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // procfs gives the task directory two links plus one per thread: one `stat` where
        // listing the directory takes five system calls (this runs before every fork).
        use std::os::unix::fs::MetadataExt;
        let links = std::fs::metadata("/proc/self/task").ok()?.nlink();
        usize::try_from(links.checked_sub(2)?).ok()
    }
    #[cfg(target_vendor = "apple")]
    {
        let mut info: libc::proc_taskinfo = unsafe_zeroed();
        let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
        // SAFETY: `info` is a writable proc_taskinfo of exactly `size` bytes.
        let got = unsafe {
            libc::proc_pidinfo(
                libc::getpid(),
                libc::PROC_PIDTASKINFO,
                0,
                (&mut info as *mut libc::proc_taskinfo).cast(),
                size,
            )
        };
        (got == size).then_some(info.pti_threadnum as usize)
    }
    #[cfg(target_os = "freebsd")]
    {
        // SAFETY: getpid has no preconditions.
        let info = kinfo_proc(unsafe { libc::getpid() })?;
        Some(info.ki_numthreads as usize)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    )))]
    {
        None
    }
}

#[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs of integers, for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Flushes what the standard streams buffer, so that a forked child does not write it twice.
///
/// Only stdout: Rust's stderr buffers nothing, and locking it to flush nothing would write to
/// its page, which a forked child then has to copy.
pub(crate) fn flush_std_streams() {
    let _ = io::stdout().flush();
}

pub(crate) fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// The resident memory of this process in bytes: the current size on Linux, the peak size
/// elsewhere (`getrusage` is all they offer without extra privileges).
pub(crate) fn resident_memory() -> Option<u64> {
    if cfg!(target_os = "linux") {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: `sysconf` only reads a configuration value.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        return u64::try_from(page).ok().map(|page| pages * page);
    }
    // SAFETY: `rusage` is plain data, and `getrusage` fills it for this process.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // macOS counts bytes, the BSDs kibibytes.
    Some(if cfg!(target_os = "macos") {
        max
    } else {
        max * 1024
    })
}

pub(crate) fn getppid() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// Whether process `pid` still runs (it may belong to another user). A zombie (ended, not
/// yet reaped) counts as ended.
///
/// A recycled pid makes a dead process look alive; pids are reused only after the whole
/// range has been gone through, so this stays theoretical.
pub(crate) fn pid_alive(pid: u32) -> bool {
    // A pid beyond `pid_t` names no process; cast, it would name a process group.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let ret = unsafe { libc::kill(pid, 0) };
    let exists = ret == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_zombie(pid: libc::pid_t) -> bool {
    // The state follows the command name, which may hold spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X']))
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_zombie(_pid: libc::pid_t) -> bool {
    false
}

/// When process `pid` started, in a unit of the platform's (Linux: clock ticks since boot,
/// field 22 of `/proc/<pid>/stat`; macOS and FreeBSD: microseconds since the epoch): the
/// same each time for one process, different for a later process that got the same pid.
/// `None` when no such process can be seen, or the platform cannot tell.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count fields after its last `)`,
    // from the state, which is field 3.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(target_vendor = "apple")]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let mut info: libc::proc_bsdinfo = unsafe_zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a writable proc_bsdinfo of exactly `size` bytes.
    let got = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (got == size).then(|| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

#[cfg(target_os = "freebsd")]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let info = kinfo_proc(libc::pid_t::try_from(pid).ok()?)?;
    let secs = u64::try_from(info.ki_start.tv_sec).ok()?;
    let micros = u64::try_from(info.ki_start.tv_usec).ok()?;
    Some(secs * 1_000_000 + micros)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
)))]
pub(crate) fn start_time(_pid: u32) -> Option<u64> {
    None
}

/// The kernel's record of process `pid`.
#[cfg(target_os = "freebsd")]
fn kinfo_proc(pid: libc::pid_t) -> Option<libc::kinfo_proc> {
    let mut info: libc::kinfo_proc = unsafe_zeroed();
    let mut len = std::mem::size_of::<libc::kinfo_proc>();
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    // SAFETY: `info` is writable for `len` bytes and `mib` names four integers.
    let ret = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            (&mut info as *mut libc::kinfo_proc).cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    // A pid that names no process gives no record, with success.
    (ret == 0 && len == std::mem::size_of::<libc::kinfo_proc>()).then_some(info)
}

/// Fills `buf` from the kernel's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "an unnamed signal",
    }
}

/// Runs `handler` when the process leaves through `exit` (or returns from `main`).
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function that lives as long as the program.
    unsafe {
        libc::atexit(handler);
    }
}

/// Runs `handler` in the child of every `fork` of this process, before `fork` returns there.
/// The handler must be async-signal-safe, as everything a forked child runs before `exec`.
pub(crate) fn at_fork_child(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function that lives as long as the program; the caller
    // gives one that is async-signal-safe.
    unsafe {
        libc::pthread_atfork(None, None, Some(handler));
    }
}

/// Sets up a child before it runs user code the way Rust's runtime sets up `main`:
/// writing to a closed pipe is an error, not a fatal signal.
pub(crate) fn prepare_child() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Whether an error from writing to a child means only that the child is gone.
pub(crate) fn is_peer_gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EPIPE) | Some(libc::ECONNRESET)
    )
}

/// Declares `static $name: extern "C" fn() = $f;` where the loader finds it and calls it
/// before `main`, so that children of test binaries (whose `main` is libtest's) and of programs
/// that forgot `procs::init()` still serve their parent. The caller keeps the static reachable
/// (`black_box`), so that the linker keeps the object that holds it.
macro_rules! before_main {
    ($(#[$attr:meta])* static $name:ident = $f:path;) => {
        $(#[$attr])*
        #[used]
        #[cfg_attr(
            any(target_os = "linux", target_os = "android", target_os = "freebsd"),
            unsafe(link_section = ".init_array")
        )]
        #[cfg_attr(
            target_vendor = "apple",
            unsafe(link_section = "__DATA,__mod_init_func")
        )]
        pub(crate) static $name: extern "C" fn() = $f;
    };
}
pub(crate) use before_main;

#[cfg(test)]
mod tests {
    #[test]
    fn thread_count_sees_a_new_thread() {
        let before = super::thread_count().expect("this platform can count threads");
        assert!(before >= 1);
        let (started, wait) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            started.send(()).unwrap();
            let _ = stopped.recv();
        });
        wait.recv().unwrap();
        // Other tests run on threads of their own, so only a lower bound is certain.
        assert!(super::thread_count().unwrap() >= 2);
        stop.send(()).unwrap();
        thread.join().unwrap();
    }
}
