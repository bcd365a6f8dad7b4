//! Channels: a Unix stream socket to one other process, its frames with descriptors
//! (`SCM_RIGHTS`), and `poll`-based waits on one descriptor or several.

use std::io::{self, Read, Write};
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::{cvt, inbox};

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
    // Bytes read ahead are ready now; the others are looked at without waiting.
    let timeout = if channels.iter().any(|c| c.buffered() > 0) {
        Some(Duration::ZERO)
    } else {
        timeout
    };
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
                .filter(|(i, p)| p.revents != 0 || channels[*i].buffered() > 0)
                .map(|(i, _)| i)
                .collect());
        }
    }
}

/// A bidirectional byte stream to one other process: a Unix stream socket.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
    /// What was read ahead of the frames taken so far (see `inbox`).
    inbox: Mutex<inbox::Inbox>,
    /// Whether receives that must wait spin first (see `recv_spinning`).
    spin: SpinGauge,
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
                set_cloexec(fd)?;
                set_nosigpipe(fd)?;
            }
        }
        // SAFETY: socketpair succeeded, so both descriptors are open and owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Channel::from_owned(a), Channel::from_owned(b)))
    }

    /// Wraps a descriptor this process owns.
    pub(crate) fn from_owned(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            inbox: Mutex::default(),
            spin: SpinGauge::default(),
        }
    }

    /// Bytes read ahead and not taken yet; 0 while another thread is reading.
    pub(super) fn buffered(&self) -> usize {
        match self.inbox.try_lock() {
            Ok(inbox) => inbox.buffered(),
            Err(std::sync::TryLockError::Poisoned(inbox)) => inbox.into_inner().buffered(),
            Err(std::sync::TryLockError::WouldBlock) => 0,
        }
    }

    fn lock_inbox(&self) -> std::sync::MutexGuard<'_, inbox::Inbox> {
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The raw descriptor, for poll sets and descriptor passing.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits until the channel has bytes or end-of-file to read, or `timeout` passes.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        if self.buffered() > 0 {
            return Ok(true);
        }
        poll_fd(self.raw(), libc::POLLIN, timeout)
    }

    /// Whether the peer has closed its end (and sent nothing more), without blocking.
    pub(crate) fn peer_closed(&self) -> bool {
        if self.buffered() > 0 {
            return false;
        }
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
        set_cloexec(fd).ok()?;
        #[cfg(target_vendor = "apple")]
        set_nosigpipe(fd).ok()?;
        Some((role.to_string(), Channel::from_owned(owned)))
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
        self.recv_with_flags(inbox::as_room(buf), 0)
    }

    /// [`recv_with_fds`](Channel::recv_with_fds) without blocking, tried again and again for
    /// at most `spin` while nothing has come; `None` when nothing came in that time, or at
    /// once when spinning does not pay on this channel now. A reset connection is the end of
    /// the stream, as in [`reset_is_eof`].
    ///
    /// A peer that answers a request writes its answer within microseconds, and a receiver
    /// that sleeps in the kernel meanwhile pays a cross-core wake-up (about 25 µs on an idle
    /// machine) to get it: looking again for a moment first saves that on every round trip,
    /// as a futex spins before it sleeps. The spin is bounded (see [`RECV_SPIN`]), and it
    /// stops while it finds nothing (see [`SpinGauge`]).
    fn recv_spinning(
        &self,
        buf: &mut [MaybeUninit<u8>],
        spin: Duration,
    ) -> io::Result<Option<(usize, Vec<OwnedFd>)>> {
        // Where spinning does not pay, the receive sleeps at once: the system calls are
        // those of a receive that never spins.
        let budget = if spin.is_zero() {
            Duration::ZERO
        } else {
            match self.spin.budget(spin) {
                budget if budget.is_zero() => return Ok(None),
                budget => budget,
            }
        };
        let mut until = None;
        loop {
            match self.recv_with_flags(buf, libc::MSG_DONTWAIT) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => {
                    if until.is_some() {
                        self.spin.record(false);
                    }
                    return other.or_else(reset_is_eof).map(Some);
                }
            }
            if budget.is_zero() {
                // A look without waiting (a deadline that has passed) says nothing about
                // whether spinning pays.
                return Ok(None);
            }
            // The clock is read only once the first look found nothing: a frame that is
            // there already costs one system call, as before.
            let until = *until.get_or_insert_with(|| crate::internal::Deadline::after(budget));
            if until.passed() {
                self.spin.record(true);
                return Ok(None);
            }
            for _ in 0..SPIN_PAUSES {
                std::hint::spin_loop();
            }
        }
    }

    /// [`recv_with_fds`](Channel::recv_with_fds) with `extra` `MSG_*` flags, into room that
    /// may never have been written (see `inbox::ReadFn`).
    fn recv_with_flags(
        &self,
        buf: &mut [MaybeUninit<u8>],
        extra: libc::c_int,
    ) -> io::Result<(usize, Vec<OwnedFd>)> {
        const MAX_FDS: usize = MAX_HANDLES;
        // On the stack (a read per frame should not allocate); u64s keep it aligned for
        // cmsghdr, and 1 KiB is more than CMSG_SPACE of MAX_FDS descriptors anywhere.
        let mut control = [0u64; 128];
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) } as usize;
        let space = space.min(size_of_val(&control));
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        let flags = libc::MSG_CMSG_CLOEXEC | extra;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        let flags = extra;
        // SAFETY: as in `send_with_fds`; the kernel writes at most `msg_controllen` bytes of
        // control data, and every SCM_RIGHTS descriptor it reports is new and ours to own.
        // `buf` may be memory never written: the kernel only writes bytes into it, the `n`
        // it reports, from its start.
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
                set_cloexec(fd.as_raw_fd())?;
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

/// How long a receive looks again for bytes (without blocking) before it sleeps in the
/// kernel: long enough for a peer's answer to a request, short against a time slice.
const RECV_SPIN: Duration = Duration::from_micros(30);

/// The share of spins that found nothing (of [`ALL`], averaged over about the last eight)
/// above which a channel stops spinning but to probe.
const MISS_LIMIT: u32 = ALL / 4;

/// The fixed-point one of a [`SpinGauge`]'s share.
const ALL: u32 = 1 << 10;

/// A channel that stopped spinning spins again at every `PROBE`th receive, to see whether
/// spinning pays again.
const PROBE: u32 = 64;

/// Whether a channel's receives that must wait spin before they sleep, from how their
/// spins went: they do while at most a quarter of the recent spins found nothing (three
/// misses in a row are too many), and otherwise only every [`PROBE`]th receive does, until
/// those find something often enough again.
///
/// Where the peer is slow to answer, or cannot run because busy processes hold the cores
/// (the spinner's too), a spin only burns the time slice the peer needs: one that always
/// spun made round trips 2–3× slower with three busy loops on two cores, this one about 5%
/// (within the noise there). A spin that finds something saves a wake-up of 10–25 µs and
/// one that does not costs [`RECV_SPIN`], so spinning pays only where most spins find
/// something. (Counting a find in the second half of the spin as a miss turned spinning off
/// where it paid, under a lighter load: 7 µs round trips became 18–26 µs, as without it.)
#[derive(Debug, Default)]
struct SpinGauge {
    /// The recent share of misses, of [`ALL`]: an average that weighs each new spin 1/8.
    misses: AtomicU32,
    /// Receives since spinning stopped, for the probes.
    skipped: AtomicU32,
}

impl SpinGauge {
    /// How long the next receive spins if it must wait: `spin`, or nothing.
    fn budget(&self, spin: Duration) -> Duration {
        if self.misses.load(Relaxed) <= MISS_LIMIT {
            return spin;
        }
        let skipped = self.skipped.load(Relaxed).wrapping_add(1);
        self.skipped.store(skipped, Relaxed);
        if skipped.is_multiple_of(PROBE) {
            spin
        } else {
            Duration::ZERO
        }
    }

    /// How a spin went: whether it missed (found nothing).
    fn record(&self, missed: bool) {
        let miss = if missed { ALL } else { 0 };
        // Relaxed, and a load then a store: one thread receives at a time (under the
        // inbox's lock), and the share is only a hint.
        let misses = self.misses.load(Relaxed);
        self.misses.store(misses - misses / 8 + miss / 8, Relaxed);
    }
}

/// Pauses between two looks of a spinning receive, so that the spin is not all system
/// calls.
const SPIN_PAUSES: u32 = 32;

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
    /// Bytes this end has read ahead stay in this process, so an end holding some cannot
    /// travel (they would be lost to the receiver).
    pub(crate) fn raw_handle(&self) -> io::Result<RawHandle> {
        let held = match self.inbox.try_lock() {
            Ok(inbox) => inbox.holds(),
            Err(std::sync::TryLockError::Poisoned(inbox)) => inbox.into_inner().holds(),
            Err(std::sync::TryLockError::WouldBlock) => 0,
        };
        match held {
            0 => Ok(self.raw()),
            n => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "this end has {n} bytes of frames received ahead that it has not returned \
                     yet; receive them before sending the end to another process"
                ),
            )),
        }
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

    /// Sends one frame without handles whose payload is `parts` one after the other, from
    /// where they lie (`sendmsg` with an iovec per part): the bytes `send_frame` sends for
    /// their concatenation, without making it.
    pub(crate) fn send_frame_parts(&self, parts: &[&[u8]]) -> io::Result<()> {
        let total = parts.iter().map(|part| part.len()).sum::<usize>();
        let len = u32::try_from(total)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame of 4 GiB or more"))?;
        let len = len.to_le_bytes();
        let mut slices: Vec<io::IoSlice<'_>> = std::iter::once(&len[..])
            .chain(parts.iter().copied())
            .map(io::IoSlice::new)
            .collect();
        let mut rest = &mut slices[..];
        // A stream socket may take part of the frame: go on from where it stopped.
        while !rest.is_empty() {
            match (&mut &*self).write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
        let mut read = |buf: &mut [MaybeUninit<u8>]| match self.recv_spinning(buf, RECV_SPIN)? {
            Some(read) => Ok(read),
            None => self.recv_with_flags(buf, 0).or_else(reset_is_eof),
        };
        match self.lock_inbox().frame(max, &mut read) {
            Ok(frame) => Ok(frame),
            Err(inbox::FrameError::Closed) => Err(Error::Closed),
            Err(inbox::FrameError::Protocol(message)) => Err(Error::Protocol(message)),
            Err(inbox::FrameError::Io(e)) => Err(e.into()),
        }
    }

    /// Like `recv_frame`, waiting for bytes only until `deadline`: `None` when it passed
    /// first. What arrived of a frame stays, and the next call goes on with it.
    pub(crate) fn recv_frame_until(
        &self,
        max: usize,
        deadline: crate::internal::Deadline,
    ) -> crate::error::Result<Option<(Vec<u8>, Vec<OwnedHandle>)>> {
        use crate::error::Error;
        let mut read = |buf: &mut [MaybeUninit<u8>]| {
            // Most reads follow a wait that saw the channel readable (a join's): a read that
            // does not block comes first (in the spin), and the poll only when it finds
            // nothing, which saves a system call per frame.
            if let Some(read) = self.recv_spinning(buf, deadline.slice(RECV_SPIN))? {
                return Ok(read);
            }
            if !poll_fd(self.raw(), libc::POLLIN, deadline.remaining())? {
                return Err(io::Error::from(io::ErrorKind::TimedOut));
            }
            self.recv_with_flags(buf, 0).or_else(reset_is_eof)
        };
        match self.lock_inbox().frame(max, &mut read) {
            Ok(frame) => Ok(Some(frame)),
            Err(inbox::FrameError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(inbox::FrameError::Closed) => Err(Error::Closed),
            Err(inbox::FrameError::Protocol(message)) => Err(Error::Protocol(message)),
            Err(inbox::FrameError::Io(e)) => Err(e.into()),
        }
    }
}

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
        if self.buffered() > 0 {
            let taken = self.lock_inbox().take_bytes(buf);
            if taken > 0 {
                return Ok(taken);
            }
        }
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

    /// All of `bufs` that fits, in one `sendmsg` (the default writes only the first).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        let flags = libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        let flags = 0;
        // SAFETY: an all-zero msghdr is a valid empty message. `IoSlice` is ABI-compatible
        // with `iovec` (std guarantees it on Unix), and `bufs` outlives the call; sendmsg
        // only reads through the pointers, at most `bufs.len()` entries (a few, far under
        // IOV_MAX, for the frames sent here).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len() as _;
        loop {
            // SAFETY: `msg` is a valid message whose buffers stay borrowed for the call.
            let n = unsafe { libc::sendmsg(self.raw(), &msg, flags) };
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

/// Marks `fd` close-on-exec, so that a program started by `exec` does not inherit it.
pub(super) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only touch the descriptor flags of `fd`.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFD))?;
        cvt(libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether each of the next receives that must wait spins, when each that spins finds
    /// something as `finds` says.
    fn spins(gauge: &SpinGauge, finds: impl IntoIterator<Item = bool>) -> Vec<bool> {
        finds
            .into_iter()
            .map(|found| {
                let spins = !gauge.budget(RECV_SPIN).is_zero();
                if spins {
                    gauge.record(!found);
                }
                spins
            })
            .collect()
    }

    fn spun(spins: &[bool]) -> Vec<usize> {
        (0..spins.len()).filter(|&i| spins[i]).collect()
    }

    #[test]
    fn a_gauge_stops_spinning_after_misses_and_probes_until_hits() {
        let gauge = SpinGauge::default();
        let probe = PROBE as usize;
        let never = spins(&gauge, vec![false; 2 * probe + 3]);
        assert_eq!(
            spun(&never),
            [0, 1, 2, 2 + probe, 2 + 2 * probe],
            "three spins, then only the probes"
        );
        // Probes that find something turn spinning back on.
        let found = spins(&gauge, vec![true; 20 * probe]);
        assert!(!found[..probe].iter().all(|&s| s));
        assert!(found[found.len() - 10..].iter().all(|&s| s));
        // Spins that find something one time in two are not worth it; nine in ten are.
        let gauge = SpinGauge::default();
        let half = spins(&gauge, (0..64).map(|i| i % 2 == 0));
        assert!(spun(&half).len() < 16, "{half:?}");
        let gauge = SpinGauge::default();
        let most = spins(&gauge, (0..64).map(|i| i % 10 != 0));
        assert!(most.iter().all(|&s| s), "{most:?}");
    }

    #[test]
    fn a_receive_that_finds_nothing_in_its_spin_sleeps_until_bytes_or_the_end_come() {
        let (a, b) = Channel::pair().unwrap();
        let a = std::sync::Arc::new(a);
        // Frames that come after the spin, through the receives that spin and those that do
        // not, then a peer that closes its end after the spin: each receive ends with the
        // frame or with the end of the stream.
        for n in 0..2 * PROBE {
            let writer = std::thread::spawn({
                let a = std::sync::Arc::clone(&a);
                move || {
                    std::thread::sleep(Duration::from_millis(1));
                    a.send_frame(&n.to_le_bytes(), &[]).unwrap();
                }
            });
            assert_eq!(b.recv_frame(64).unwrap().0, n.to_le_bytes());
            writer.join().unwrap();
        }
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            drop(a);
        });
        assert!(matches!(b.recv_frame(64), Err(crate::error::Error::Closed)));
        closer.join().unwrap();
        // The same through a receive with a deadline, which spins within it.
        let deadline = crate::internal::Deadline::after(Duration::from_millis(2));
        assert!(matches!(
            b.recv_frame_until(64, deadline),
            Err(crate::error::Error::Closed)
        ));
    }

    #[test]
    fn a_receive_with_a_deadline_spins_no_longer_than_it() {
        let (_a, b) = Channel::pair().unwrap();
        for wait in [
            Duration::ZERO,
            Duration::from_micros(5),
            Duration::from_millis(2),
        ] {
            let deadline = crate::internal::Deadline::after(wait);
            assert!(b.recv_frame_until(64, deadline).unwrap().is_none());
            assert!(deadline.passed());
        }
        // A look without waiting does not count as a spin that found nothing.
        let misses = b.spin.misses.load(Relaxed);
        let passed = crate::internal::Deadline::after(Duration::ZERO);
        assert!(b.recv_frame_until(64, passed).unwrap().is_none());
        assert_eq!(b.spin.misses.load(Relaxed), misses);
    }
}
