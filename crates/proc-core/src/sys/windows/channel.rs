//! Channels: one end of a byte-mode named pipe (or a TCP socket), its frames with handles
//! duplicated into the peer process, and waits on one channel or several.

use std::cell::OnceCell;
use std::ffi::OsStr;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedSocket};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::exec::adopt_parent_job;
use super::os::{getpid, random_bytes};
use super::socket;
use super::{Inheritance, cvt, duplicate, is_closed, is_os_error, owned_or_last_error, wide};
use crate::codec;
use windows_sys::Win32::Foundation::{
    DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_ACCESS_DENIED,
    ERROR_IO_PENDING, ERROR_PIPE_BUSY, GENERIC_READ, GENERIC_WRITE, GetHandleInformation, HANDLE,
    HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, SetHandleInformation,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FILE_TYPE_PIPE, GetFileType,
    OPEN_EXISTING, PIPE_ACCESS_DUPLEX, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
    WriteFile,
};
use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
    PeekNamedPipe,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, OpenProcess, PROCESS_DUP_HANDLE,
};

/// The most handles one frame may carry (the same limit as on Unix).
pub(crate) const MAX_HANDLES: usize = 64;

/// The buffer that each direction of a channel has in the kernel; a larger write waits for the
/// reader.
const PIPE_BUFFER: u32 = 64 * 1024;

/// How often `Channel::pair` tries a new pipe name when the last one was taken.
const PIPE_NAME_ATTEMPTS: usize = 16;

/// The longest pause between two checks of a channel that has nothing to read yet.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// Checks `ready` until it answers true or `timeout` passes; returns whether it became ready.
///
/// A pipe gives nothing to sleep on that also wakes at a deadline without overlapped I/O, so
/// the checks back off from 50 µs to 10 ms: short waits stay short and long ones stay idle.
fn poll_until(
    timeout: Option<Duration>,
    mut ready: impl FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    let deadline = crate::internal::Deadline::from_timeout(timeout).instant();
    let mut pause = Duration::from_micros(50);
    loop {
        if ready()? {
            return Ok(true);
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => pause,
        };
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// A name for a new pipe that no other pipe has: this process's id, a counter and a random
/// part, so that another process can neither collide with it nor guess it in advance.
fn pipe_name() -> io::Result<Vec<u16>> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut salt = [0u8; 8];
    if random_bytes(&mut salt).is_err() {
        // std's RandomState is seeded from the operating system's randomness as well.
        salt = RandomState::new().hash_one(count).to_le_bytes();
    }
    let name = format!(
        r"\\.\pipe\procs-{}-{count}-{:016x}",
        getpid(),
        u64::from_le_bytes(salt)
    );
    wide(OsStr::new(&name))
}

/// A bidirectional byte stream to one other process: one end of a byte-mode named pipe, or a
/// connected TCP socket.
///
/// The pipe handles that `pair` makes are opened for overlapped I/O, and every read and write
/// waits for its own `OVERLAPPED` to complete. Windows runs the calls on a synchronous handle
/// one at a time, so there a thread blocked reading would hold up a write from another thread
/// (and a link whose two directions are used by two threads would deadlock); with overlapped
/// handles the two directions are independent, as on a Unix socket. (wine does not serialize
/// synchronous handles, so only real Windows would show the difference.)
///
/// Frames carry handles as well as bytes (see [`Channel::send_frame`]), except over a socket.
#[derive(Debug)]
pub(crate) struct Channel {
    end: End,
    /// The process at the other end, as named by `set_peer`: its pid, and a handle to it
    /// opened for `DuplicateHandle`.
    peer: OnceLock<Option<(u32, OwnedHandle)>>,
}

impl Channel {
    /// A connected pair, neither end inheritable: the server end of a new pipe first, its
    /// client end second.
    ///
    /// The parent keeps the first and gives the second to the child: when a client closes,
    /// the server still reads what was written before, then end-of-file.
    pub(crate) fn pair() -> io::Result<(Channel, Channel)> {
        let mut attempt = 1;
        loop {
            match Channel::try_pair() {
                // The name exists already (ACCESS_DENIED, thanks to FIRST_PIPE_INSTANCE), or
                // another process connected to our pipe before we did (PIPE_BUSY): both are
                // answered by a new name.
                Err(e)
                    if attempt < PIPE_NAME_ATTEMPTS
                        && is_os_error(&e, &[ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY]) =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn try_pair() -> io::Result<(Channel, Channel)> {
        let name = pipe_name()?;
        // SAFETY: `name` is a nul-terminated UTF-16 string that outlives the call; the null
        // security attributes make a handle that children do not inherit.
        let server = owned_or_last_error(unsafe {
            CreateNamedPipeW(
                name.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                1,
                PIPE_BUFFER,
                PIPE_BUFFER,
                0,
                null(),
            )
        })?;
        // SAFETY: as above; the flags keep the server from impersonating this process beyond
        // identifying it, and a null template handle is allowed.
        let client = owned_or_last_error(unsafe {
            CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                null_mut(),
            )
        })?;
        // With only one instance allowed, the client that just connected is the only one the
        // server will ever have: the pair is private from here on.
        Ok((Channel::new(server), Channel::new(client)))
    }

    fn new(handle: OwnedHandle) -> Channel {
        Channel {
            end: End::Pipe(handle),
            peer: OnceLock::new(),
        }
    }

    /// The channel's handle, to send it to another process: a channel over a socket cannot
    /// be sent (a `SOCKET` is no handle that `DuplicateHandle` may copy).
    pub(crate) fn raw_handle(&self) -> io::Result<RawHandle> {
        match &self.end {
            End::Pipe(handle) => Ok(handle.as_raw_handle()),
            End::Socket(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a link over a network connection cannot be sent to another process on windows",
            )),
        }
    }

    /// A channel end that arrived from another process, or a named pipe that
    /// `Link::from_stream` was given. Its peer is unknown until `set_peer`.
    pub(crate) fn from_handle(handle: OwnedHandle) -> Channel {
        Channel::new(handle)
    }

    /// A channel over a connected TCP stream, which carries bytes but no handles.
    pub(crate) fn from_tcp(stream: std::net::TcpStream) -> Channel {
        Channel {
            end: End::Socket(OwnedSocket::from(stream)),
            peer: OnceLock::new(),
        }
    }

    /// Whether the channel has bytes or end-of-file to read now.
    fn ready(&self) -> io::Result<bool> {
        match &self.end {
            End::Pipe(handle) => Ok(pipe_available(handle)?.is_none_or(|n| n > 0)),
            End::Socket(socket) => {
                Ok(!socket::wait_readable(&[socket], Some(Duration::ZERO))?.is_empty())
            }
        }
    }

    /// Waits until the channel has bytes or end-of-file to read, or `timeout` passes.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        Ok(!wait_any(&[self], timeout)?.is_empty())
    }

    /// Whether the peer has closed its end (and sent nothing more), without blocking.
    pub(crate) fn peer_closed(&self) -> bool {
        match &self.end {
            End::Pipe(handle) => matches!(pipe_available(handle), Ok(None)),
            End::Socket(socket) => socket::peer_closed(socket),
        }
    }

    /// Takes the channel named by the child environment variable's value
    /// (`role:channel[:job]`), and makes it non-inheritable so that programs this child
    /// starts do not get it. The job, when there is one, is the parent's job for daemonic
    /// children (see [`spawn`]); it is kept for `remember_parent_channel`.
    pub(crate) fn from_env(value: &str) -> Option<(String, Channel)> {
        let (role, handles) = value.split_once(':')?;
        let (handle, job) = match handles.split_once(':') {
            Some((handle, job)) => (handle, Some(job)),
            None => (handles, None),
        };
        let handle = handle.parse::<usize>().ok()? as HANDLE;
        // SAFETY: GetFileType only queries the handle; on a value that names no open handle it
        // fails cleanly and answers FILE_TYPE_UNKNOWN.
        if unsafe { GetFileType(handle) } != FILE_TYPE_PIPE {
            return None;
        }
        // SAFETY: the parent let this child, and no other, inherit this pipe handle (see
        // `spawn`); nothing else in this process knows its value, so taking ownership is sound.
        let owned = unsafe { OwnedHandle::from_raw_handle(handle) };
        // SAFETY: clearing the inherit flag only changes how the handle is passed on.
        cvt(unsafe { SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0) }).ok()?;
        if let Some(job) = job.and_then(|job| job.parse::<usize>().ok()) {
            adopt_parent_job(job as HANDLE);
        }
        Some((role.to_string(), Channel::new(owned)))
    }

    /// Records the pid of the process at the other end, which `send_frame` duplicates handles
    /// into, and opens that process at once: later, the pid could name another process.
    ///
    /// Only the first call counts. A pid that cannot be opened (or is this process) leaves
    /// the peer unknown, which `send_frame` copes with.
    pub(crate) fn set_peer(&self, pid: u32) {
        self.peer.get_or_init(|| {
            if pid == getpid() {
                return None;
            }
            // SAFETY: OpenProcess takes plain values and returns a new handle or null.
            match owned_or_last_error(unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) }) {
                Ok(process) => Some((pid, process)),
                Err(e) => {
                    tracing::debug!(pid, error = %e, "cannot open the peer to pass it handles");
                    None
                }
            }
        });
    }

    /// Sends one frame: `payload`, and for the receiver, copies of `handles`.
    ///
    /// Handles travel the way CPython's `reduction.DupHandle` moves them. When the peer is
    /// known (`set_peer`), the copies are made in the peer process itself, so the frame stays
    /// good after this process exits (a child's result). Otherwise they are made in this
    /// process, and the receiver takes them out of it (`DUPLICATE_CLOSE_SOURCE`) while this
    /// process lives; that also serves a channel end that has moved on to a third process,
    /// and a channel between two threads of this process. Either way, a frame that does not
    /// go out whole closes the copies again.
    ///
    /// On a pipe a frame is a handle table, a `u32` count and then, per handle, the `u32`
    /// pid of the process that holds the copy and the `u64` value of the copy there, followed
    /// by the payload as a [`codec`](crate::codec) frame. A socket carries no handles, so
    /// there a frame is the codec frame alone, as on Unix: the two ends of a TCP connection
    /// may run on different systems.
    pub(crate) fn send_frame(&self, payload: &[u8], handles: &[RawHandle]) -> io::Result<()> {
        if matches!(self.end, End::Socket(_)) {
            if !handles.is_empty() {
                // The message of Unix's refusal (`check_carries_fds`), so that a program sees
                // the same error on every platform.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "handles cannot be sent over a network connection; \
                     use a local address or a pipe to pass them",
                ));
            }
            return codec::write_frame(&mut &*self, payload).map_err(frame_error);
        }
        if handles.len() > MAX_HANDLES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame carries at most {MAX_HANDLES} handles, not {}",
                    handles.len()
                ),
            ));
        }
        let copies = match self.peer.get() {
            _ if handles.is_empty() => Copies::none(),
            Some(Some((pid, process))) => Copies::make(*pid, process.as_raw_handle(), handles)?,
            // SAFETY: GetCurrentProcess has no preconditions; its pseudo handle needs no
            // closing.
            _ => Copies::make(getpid(), unsafe { GetCurrentProcess() }, handles)?,
        };
        let mut head = Vec::with_capacity(TABLE_HEADER + TABLE_ENTRY * handles.len() + 4);
        head.extend_from_slice(&(copies.values.len() as u32).to_le_bytes());
        for &value in &copies.values {
            head.extend_from_slice(&copies.pid.to_le_bytes());
            head.extend_from_slice(&(value as usize as u64).to_le_bytes());
        }
        let written = if payload.len() <= SMALL_FRAME {
            // One write for the whole frame: a reader never waits on half of a small one.
            codec::write_frame(&mut head, payload).and_then(|()| Ok((&*self).write_all(&head)?))
        } else {
            (&*self)
                .write_all(&head)
                .map_err(crate::Error::from)
                .and_then(|()| codec::write_frame(&mut &*self, payload))
        };
        written.map_err(frame_error)?;
        copies.delivered();
        Ok(())
    }

    /// A read time-out: not kept on Windows, where reads wait until bytes come (the pool
    /// then relies on its other checks of a worker's life).
    pub(crate) fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Sends one frame without handles whose payload is `parts` one after the other: the
    /// bytes `send_frame` sends for their concatenation. Windows has no gathering write for
    /// both pipes and sockets here, so the parts are joined first.
    pub(crate) fn send_frame_parts(&self, parts: &[&[u8]]) -> io::Result<()> {
        self.send_frame(&parts.concat(), &[])
    }

    /// Sends several frames without handles in one write: what `send_frame` would send for
    /// each, back to back.
    pub(crate) fn send_frames(&self, payloads: &[&[u8]]) -> io::Result<()> {
        let pipe = matches!(self.end, End::Pipe(_));
        let mut joined = Vec::with_capacity(payloads.iter().map(|p| 8 + p.len()).sum());
        for payload in payloads {
            let len = u32::try_from(payload.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a frame of 4 GiB or more")
            })?;
            // On a pipe an empty handle table, then the frame.
            if pipe {
                joined.extend_from_slice(&0u32.to_le_bytes());
            }
            joined.extend_from_slice(&len.to_le_bytes());
            joined.extend_from_slice(payload);
        }
        (&*self).write_all(&joined)
    }

    /// Receives one frame of at most `max` payload bytes, with the handles that came with it,
    /// made this process's own.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`](crate::Error::Closed) at a clean end of the stream before a frame;
    /// [`Error::Protocol`](crate::Error::Protocol) for a frame that is cut short, too long,
    /// or has more than [`MAX_HANDLES`] handles or a handle that cannot be ours; and
    /// [`Error::Io`](crate::Error::Io) when reading fails or a handle can no longer be taken
    /// from its sender (which has exited). The frame is read whole before its handles are
    /// taken, so the stream stays at a frame boundary after a handle that cannot be had.
    pub(crate) fn recv_frame(
        &self,
        max: usize,
    ) -> crate::error::Result<(Vec<u8>, Vec<OwnedHandle>)> {
        use crate::error::Error;
        if matches!(self.end, End::Socket(_)) {
            return Ok((codec::read_frame(&mut &*self, max)?, Vec::new()));
        }
        let mut count = [0u8; TABLE_HEADER];
        match read_full(self, &mut count)? {
            0 => return Err(Error::Closed),
            TABLE_HEADER => {}
            _ => return Err(Error::Protocol("truncated handle table".into())),
        }
        let count = u32::from_le_bytes(count) as usize;
        if count > MAX_HANDLES {
            return Err(Error::Protocol(format!(
                "a frame with {count} handles (at most {MAX_HANDLES} are allowed)"
            )));
        }
        let mut table = vec![0u8; TABLE_ENTRY * count];
        if read_full(self, &mut table)? != table.len() {
            return Err(Error::Protocol("truncated handle table".into()));
        }
        let payload = match codec::read_frame(&mut &*self, max) {
            Ok(payload) => payload,
            Err(Error::Closed) => {
                return Err(Error::Protocol(
                    "the stream ended after a handle table, before its frame".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let mut handles = Vec::with_capacity(count);
        let mut source: Option<(u32, OwnedHandle)> = None;
        for entry in table.chunks_exact(TABLE_ENTRY) {
            let (pid, value) = entry.split_at(4);
            let pid = u32::from_le_bytes(pid.try_into().expect("4 bytes"));
            let value = u64::from_le_bytes(value.try_into().expect("8 bytes"));
            // Every way out of here drops `handles`, which closes those taken so far.
            handles.push(receive_handle(pid, value, &handles, &mut source)?);
        }
        Ok((payload, handles))
    }

    /// Like `recv_frame`, waiting for a frame to begin only until `deadline`: `None` when it
    /// passed first. A frame, once begun, is read whole (this end keeps no part of one
    /// between calls, unlike Unix's).
    pub(crate) fn recv_frame_until(
        &self,
        max: usize,
        deadline: crate::internal::Deadline,
    ) -> crate::error::Result<Option<(Vec<u8>, Vec<OwnedHandle>)>> {
        if !self.wait_readable(deadline.remaining())? {
            return Ok(None);
        }
        self.recv_frame(max).map(Some)
    }
}

/// What a failure to write a frame is to the caller of `send_frame`: the I/O error itself, or
/// one of kind `InvalidInput` for a payload that no frame can hold.
fn frame_error(err: crate::Error) -> io::Error {
    match err {
        crate::Error::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    }
}

/// The size of a frame's handle count, and of one entry of its handle table.
const TABLE_HEADER: usize = 4;
const TABLE_ENTRY: usize = 12;

/// Payloads up to this size go out with their headers in one write (as `codec::write_frame`
/// does).
const SMALL_FRAME: usize = 64 * 1024;

/// Reads until `buf` is full or the stream ends; returns how many bytes arrived.
fn read_full(channel: &Channel, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match (&*channel).read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Makes one handle of a received frame ours: the copy at `value` in process `pid`.
///
/// A copy in this very process was made for us by a sender that knew us as its peer; it is
/// taken over after the checks that can be made (an open handle, not one of `earlier`, the
/// frame's handles so far), so that a corrupt frame cannot make two owners of one handle. Its
/// sender is this very program (a child checks the build before anything else is sent), at
/// the other end of a private pipe pair. A copy in another process is taken out of it, which
/// makes a new handle here and closes the copy there; `source` keeps that process open for
/// the rest of the frame.
fn receive_handle(
    pid: u32,
    value: u64,
    earlier: &[OwnedHandle],
    source: &mut Option<(u32, OwnedHandle)>,
) -> crate::error::Result<OwnedHandle> {
    let bogus = || {
        crate::Error::Protocol(format!(
            "handle {value:#x} of process {pid} is not ours to take"
        ))
    };
    let handle = usize::try_from(value).map_err(|_| bogus())? as HANDLE;
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return Err(bogus());
    }
    if pid != getpid() {
        if source.as_ref().is_none_or(|(open, _)| *open != pid) {
            // SAFETY: OpenProcess takes plain values and returns a new handle or null.
            let process = owned_or_last_error(unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) })
                .map_err(|e| gone(pid, e))?;
            *source = Some((pid, process));
        }
        let process = source.as_ref().map(|(_, p)| p.as_raw_handle());
        let process = process.expect("opened above");
        let mut copy: HANDLE = null_mut();
        // SAFETY: `process` is open with PROCESS_DUP_HANDLE, and `copy` is a writable HANDLE;
        // a value that names no handle there fails cleanly.
        cvt(unsafe {
            DuplicateHandle(
                process,
                handle,
                GetCurrentProcess(),
                &mut copy,
                0,
                0,
                DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE,
            )
        })
        .map_err(|e| gone(pid, e))?;
        // SAFETY: DuplicateHandle succeeded, so `copy` is a new handle that only we own.
        return Ok(unsafe { OwnedHandle::from_raw_handle(copy) });
    }
    if earlier.iter().any(|h| h.as_raw_handle() == handle) {
        return Err(bogus());
    }
    let mut flags = 0u32;
    // SAFETY: GetHandleInformation only queries the handle table; it fails cleanly on a value
    // that is no open handle.
    cvt(unsafe { GetHandleInformation(handle, &mut flags) }).map_err(|_| bogus())?;
    // SAFETY: the sender made this handle in this process for the receiver of this frame,
    // which is us, and nothing else here knows its value (see above).
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

fn gone(pid: u32, e: io::Error) -> crate::Error {
    crate::Error::Io(io::Error::new(
        e.kind(),
        format!("cannot take a handle from process {pid}, which sent it (has it exited?): {e}"),
    ))
}

/// The copies of a frame's handles, made in the process that is to hold them until the
/// receiver has them; closed again unless the frame was delivered.
struct Copies {
    pid: u32,
    process: HANDLE,
    values: Vec<HANDLE>,
}

impl Copies {
    fn none() -> Copies {
        Copies {
            pid: 0,
            process: null_mut(),
            values: Vec::new(),
        }
    }

    /// Copies of `handles` in `process` (pid `pid`, opened with PROCESS_DUP_HANDLE, or this
    /// process), not inheritable there, with the access that ours have.
    fn make(pid: u32, process: HANDLE, handles: &[RawHandle]) -> io::Result<Copies> {
        let mut copies = Copies {
            pid,
            process,
            values: Vec::with_capacity(handles.len()),
        };
        for &handle in handles {
            let mut copy: HANDLE = null_mut();
            // SAFETY: `handle` is open in this process (the caller's value owns it until the
            // frame is sent), `process` may receive handles, and `copy` is a writable HANDLE.
            // On failure `copies` closes what was made so far.
            cvt(unsafe {
                DuplicateHandle(
                    GetCurrentProcess(),
                    handle,
                    process,
                    &mut copy,
                    0,
                    0,
                    DUPLICATE_SAME_ACCESS,
                )
            })?;
            copies.values.push(copy);
        }
        Ok(copies)
    }

    /// The frame went out: the copies belong to its receiver now.
    fn delivered(mut self) {
        self.values.clear();
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        for &value in &self.values {
            // SAFETY: `value` is a copy that we made in `process` and that nobody there knows
            // of, since its frame was not delivered; DUPLICATE_CLOSE_SOURCE with no target
            // only closes it.
            unsafe {
                DuplicateHandle(
                    self.process,
                    value,
                    null_mut(),
                    null_mut(),
                    0,
                    0,
                    DUPLICATE_CLOSE_SOURCE,
                )
            };
        }
    }
}

/// What a [`Channel`] reads and writes.
#[derive(Debug)]
enum End {
    /// A byte-mode named pipe: overlapped `ReadFile`/`WriteFile`, `PeekNamedPipe`.
    Pipe(OwnedHandle),
    /// A connected stream socket: Winsock's `recv`/`send`, `WSAPoll` (see `socket`).
    Socket(OwnedSocket),
}

/// How many bytes wait to be read in the pipe `handle`, or `None` when the peer has closed
/// its end.
fn pipe_available(handle: &OwnedHandle) -> io::Result<Option<u32>> {
    let mut available = 0u32;
    // SAFETY: with a null buffer of size 0 PeekNamedPipe reads nothing; it only writes the
    // count to `available`, and the other out pointers may be null.
    let ok = unsafe {
        PeekNamedPipe(
            handle.as_raw_handle(),
            null_mut(),
            0,
            null_mut(),
            &mut available,
            null_mut(),
        )
    };
    match cvt(ok) {
        Ok(()) => Ok(Some(available)),
        Err(e) if is_closed(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits until at least one of `channels` has something to read (or end-of-file), or
/// `timeout` passes; returns the indexes of the ready ones.
///
/// Sockets alone wait in one `WSAPoll`. A pipe gives nothing to wait on together with
/// anything else, so a set with a pipe in it is checked again and again (see `poll_until`).
pub(crate) fn wait_any(channels: &[&Channel], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let sockets: Option<Vec<&OwnedSocket>> = channels
        .iter()
        .map(|channel| match &channel.end {
            End::Socket(socket) => Some(socket),
            End::Pipe(_) => None,
        })
        .collect();
    if let Some(sockets) = sockets.filter(|sockets| !sockets.is_empty()) {
        return socket::wait_readable(&sockets, timeout);
    }
    let mut ready = Vec::new();
    poll_until(timeout, || {
        ready.clear();
        for (i, channel) in channels.iter().enumerate() {
            if channel.ready()? {
                ready.push(i);
            }
        }
        Ok(!ready.is_empty())
    })?;
    Ok(ready)
}

/// A handle this process owns.
pub(crate) type OwnedHandle = std::os::windows::io::OwnedHandle;
/// A handle as a value, owned by someone else.
pub(crate) type RawHandle = std::os::windows::io::RawHandle;

pub(crate) fn raw_handle(handle: &OwnedHandle) -> RawHandle {
    handle.as_raw_handle()
}

/// A new handle to the same object, in this process, with the same access and not inherited
/// by children.
pub(crate) fn duplicate_handle(raw: RawHandle) -> io::Result<OwnedHandle> {
    duplicate(raw, Inheritance::Private)
}

/// Runs one read or write on the pipe `handle` (`start`, given the `OVERLAPPED` to use) and
/// waits for it to complete; returns how many bytes it moved.
///
/// Each thread has an event of its own for this, so concurrent calls on one channel from
/// two threads never wait on each other's completion. The call also works on a handle
/// that was not opened for overlapped I/O (a stream given to `from_handle`): it then
/// completes before `start` returns.
fn overlapped(handle: HANDLE, start: impl FnOnce(*mut OVERLAPPED) -> i32) -> io::Result<usize> {
    thread_local! {
        static EVENT: OnceCell<io::Result<OwnedHandle>> = const { OnceCell::new() };
    }
    let event = EVENT.with(|event| {
        match event.get_or_init(|| {
            // SAFETY: null attributes and name make an anonymous event; a manual-reset one
            // is what overlapped I/O asks for (each read or write resets it as it starts).
            owned_or_last_error(unsafe { CreateEventW(null(), 1, 0, null()) })
        }) {
            Ok(event) => Ok(event.as_raw_handle()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    })?;
    let mut overlapped = OVERLAPPED {
        hEvent: event,
        ..Default::default()
    };
    if start(&mut overlapped) == 0 {
        let err = io::Error::last_os_error();
        if !is_os_error(&err, &[ERROR_IO_PENDING]) {
            return Err(err);
        }
    }
    let mut moved = 0u32;
    // SAFETY: `overlapped` is the one the operation was started with, and it stays in
    // place (as do the caller's buffer and `moved`) until this waiting call returns,
    // which is when the operation has completed.
    cvt(unsafe { GetOverlappedResult(handle, &overlapped, &mut moved, 1) })?;
    Ok(moved as usize)
}

impl Read for &Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let handle = match &self.end {
            End::Pipe(handle) => handle.as_raw_handle(),
            End::Socket(socket) => return socket::read(socket, buf),
        };
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let read = overlapped(handle, |overlapped| {
            // SAFETY: `buf` is valid for writes of `len` bytes until `overlapped` completes
            // (which `overlapped` waits for), and with an OVERLAPPED the count comes from
            // GetOverlappedResult, so the out pointer may be null.
            unsafe { ReadFile(handle, buf.as_mut_ptr(), len, null_mut(), overlapped) }
        });
        match read {
            Err(e) if is_closed(&e) => Ok(0),
            other => other,
        }
    }
}

impl Write for &Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A zero-length write would reach the reader as a zero-length read, that is as
        // end-of-file; there is nothing to send anyway.
        if buf.is_empty() {
            return Ok(0);
        }
        let handle = match &self.end {
            End::Pipe(handle) => handle.as_raw_handle(),
            End::Socket(socket) => return socket::write(socket, buf),
        };
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        overlapped(handle, |overlapped| {
            // SAFETY: `buf` is valid for reads of `len` bytes until `overlapped` completes
            // (which `overlapped` waits for), and with an OVERLAPPED the count comes from
            // GetOverlappedResult, so the out pointer may be null.
            unsafe { WriteFile(handle, buf.as_ptr(), len, null_mut(), overlapped) }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
