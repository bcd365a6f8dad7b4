//! Windows: `CreateProcessW` re-execution that hands the child exactly one end of a named pipe,
//! waits on process handles, `TerminateProcess` with Python's exit code, handles duplicated
//! into the peer process, and a job object that ends daemonic children with their parent.
//!
//! Windows cannot fork, so `StartMethod::available()` offers only `Spawn` here; `fork` and
//! `forkserver_spawn` answer `Unsupported` should they ever be reached.

mod shared;
mod socket;

use std::cell::OnceCell;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::mem::{size_of, size_of_val};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedSocket};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::codec;

pub(crate) use shared::{
    Parkers, anonymous_segment, map_segment, refuse_arrived_segment, unmap_segment,
};

use windows_sys::Win32::Foundation::{
    DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_ACCESS_DENIED,
    ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_NO_DATA, ERROR_PIPE_BUSY, ERROR_PIPE_NOT_CONNECTED,
    GENERIC_READ, GENERIC_WRITE, GetHandleInformation, HANDLE, HANDLE_FLAG_INHERIT,
    INVALID_HANDLE_VALUE, SetHandleInformation, WAIT_OBJECT_0, WAIT_TIMEOUT, WIN32_ERROR,
};
use windows_sys::Win32::Security::Cryptography::{
    BCRYPT_USE_SYSTEM_PREFERRED_RNG, BCryptGenRandom,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FILE_TYPE_PIPE, GetFileType,
    OPEN_EXISTING, PIPE_ACCESS_DUPLEX, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
    WriteFile,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
    PeekNamedPipe,
};
use windows_sys::Win32::System::Threading::{
    CREATE_UNICODE_ENVIRONMENT, CreateEventW, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, ExitProcess, GetCurrentProcess, GetExitCodeProcess,
    GetProcessTimes, INFINITE, InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST,
    OpenProcess, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_DUP_HANDLE, PROCESS_INFORMATION,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, STARTF_USESTDHANDLES, STARTUPINFOEXW,
    TerminateProcess, UpdateProcThreadAttribute, WaitForSingleObject,
};

/// The exit code that `terminate` and `kill` give a child: CPython's `TERMINATE` (in
/// `multiprocessing.popen_spawn_win32`), which `exitcode` reports as `-SIGTERM`. Windows has no
/// signals, so both end the child at once with `TerminateProcess`, and the code cannot say
/// which of the two was used; Python's `kill` is its `terminate` on Windows too.
const TERMINATE_EXIT_CODE: u32 = 0x10000;

/// The number that `exitcode` negates for a terminated child, as on Unix.
const SIGTERM: i32 = 15;

/// The most handles one frame may carry (the same limit as on Unix).
pub(crate) const MAX_HANDLES: usize = 64;

/// The buffer that each direction of a channel has in the kernel; a larger write waits for the
/// reader.
const PIPE_BUFFER: u32 = 64 * 1024;

/// How often `Channel::pair` tries a new pipe name when the last one was taken.
const PIPE_NAME_ATTEMPTS: usize = 16;

/// The longest pause between two checks of a channel that has nothing to read yet.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// Converts the `BOOL` result of a Win32 call into an `io::Result`.
fn cvt(ok: i32) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether `err` is one of the Win32 error `codes`.
fn is_os_error(err: &io::Error, codes: &[WIN32_ERROR]) -> bool {
    err.raw_os_error()
        .is_some_and(|code| codes.contains(&(code as WIN32_ERROR)))
}

/// Whether an error from reading or peeking a pipe means that the other end is closed, which
/// a reader sees as end-of-file.
fn is_closed(err: &io::Error) -> bool {
    is_os_error(err, &[ERROR_BROKEN_PIPE, ERROR_PIPE_NOT_CONNECTED])
}

/// Takes ownership of a handle from a call that reports failure with `INVALID_HANDLE_VALUE`
/// (or null, for the calls that use that instead).
fn owned_or_last_error(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle == INVALID_HANDLE_VALUE || handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call that returned `handle` succeeded, so it is a new handle that nothing
    // else in this process owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

/// A nul-terminated UTF-16 copy of `s`, for the `W` functions.
fn wide(s: &OsStr) -> io::Result<Vec<u16>> {
    let mut wide: Vec<u16> = s.encode_wide().collect();
    if wide.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a nul character in a path or argument",
        ));
    }
    wide.push(0);
    Ok(wide)
}

/// A copy of `handle` that this process owns, inherited by children or not as asked.
fn duplicate(handle: HANDLE, inheritable: bool) -> io::Result<OwnedHandle> {
    let mut copy: HANDLE = null_mut();
    // SAFETY: `handle` is open in this process (the caller borrows it), the current-process
    // pseudo handle is always valid, and `copy` is a writable HANDLE.
    cvt(unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            handle,
            GetCurrentProcess(),
            &mut copy,
            0,
            i32::from(inheritable),
            DUPLICATE_SAME_ACCESS,
        )
    })?;
    // SAFETY: DuplicateHandle succeeded, so `copy` is a new handle that only we own.
    Ok(unsafe { OwnedHandle::from_raw_handle(copy) })
}

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
    /// On the wire a frame is a handle table, a `u32` count and then, per handle, the `u32`
    /// pid of the process that holds the copy and the `u64` value of the copy there, followed
    /// by the payload as a [`codec`](crate::codec) frame.
    pub(crate) fn send_frame(&self, payload: &[u8], handles: &[RawHandle]) -> io::Result<()> {
        if !handles.is_empty() && matches!(self.end, End::Socket(_)) {
            // The message of Unix's refusal (`check_carries_fds`), so that a program sees the
            // same error on every platform.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "handles cannot be sent over a network connection; \
                 use a local address or a pipe to pass them",
            ));
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
        match written {
            Ok(()) => {
                copies.delivered();
                Ok(())
            }
            Err(crate::Error::Io(e)) => Err(e),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
        }
    }

    /// A read time-out: not kept on Windows, where reads wait until bytes come (the pool
    /// then relies on its other checks of a worker's life).
    pub(crate) fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Sends several frames without handles in one write: what `send_frame` would send for
    /// each, back to back.
    pub(crate) fn send_frames(&self, payloads: &[&[u8]]) -> io::Result<()> {
        let mut joined = Vec::with_capacity(payloads.iter().map(|p| 8 + p.len()).sum());
        for payload in payloads {
            let len = u32::try_from(payload.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a frame of 4 GiB or more")
            })?;
            // An empty handle table, then the frame.
            joined.extend_from_slice(&0u32.to_le_bytes());
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
    duplicate(raw, false)
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

/// A started child process, watched through its process handle.
#[derive(Debug)]
pub(crate) struct Child {
    pid: u32,
    process: OwnedHandle,
    exitcode: Mutex<Option<i32>>,
}

impl Child {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    fn known(&self) -> Option<i32> {
        *self.exitcode.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, code: i32) -> i32 {
        *self.exitcode.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
        code
    }

    /// Waits at most `millis` (or forever with `INFINITE`) for the process handle to signal.
    fn wait_millis(&self, millis: u32) -> io::Result<Option<i32>> {
        if let Some(code) = self.known() {
            return Ok(Some(code));
        }
        let process = self.process.as_raw_handle();
        // SAFETY: `process` is our open process handle, which has SYNCHRONIZE access.
        match unsafe { WaitForSingleObject(process, millis) } {
            WAIT_OBJECT_0 => {
                let mut code = 0u32;
                // SAFETY: the process has ended and `code` is a writable u32.
                cvt(unsafe { GetExitCodeProcess(process, &mut code) })?;
                Ok(Some(self.record(exitcode(code))))
            }
            WAIT_TIMEOUT => Ok(None),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// The exit code if the child has ended, without blocking.
    pub(crate) fn try_wait(&self) -> io::Result<Option<i32>> {
        self.wait_millis(0)
    }

    /// Waits for the child to end, at most `timeout`; returns its exit code if it ended.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        let deadline = crate::internal::Deadline::from_timeout(timeout).instant();
        loop {
            let millis = match deadline {
                None => INFINITE,
                Some(d) => {
                    // Rounded up, so that a short wait never becomes a busy loop; and below
                    // INFINITE, which would wait forever.
                    let nanos = d.saturating_duration_since(Instant::now()).as_nanos();
                    nanos.div_ceil(1_000_000).min(u128::from(INFINITE - 1)) as u32
                }
            };
            if let Some(code) = self.wait_millis(millis)? {
                return Ok(Some(code));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Ends the child with `TerminateProcess`. Windows has no signals, so there is nothing
    /// gentler to ask with: `terminate` and `kill` both come here.
    fn end(&self) -> io::Result<()> {
        // The handle keeps the process object alive, so its pid cannot have been reused, but a
        // child known to have ended needs nothing.
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: `process` is our open process handle, which has PROCESS_TERMINATE access.
        let ok = unsafe { TerminateProcess(self.process.as_raw_handle(), TERMINATE_EXIT_CODE) };
        match cvt(ok) {
            Ok(()) => Ok(()),
            // A child that ended between the check and the call refuses with access denied.
            Err(e) => match self.try_wait()? {
                Some(_) => Ok(()),
                None => Err(e),
            },
        }
    }

    /// Asks the child to end. Windows has no SIGTERM: this ends it at once, and its exit code
    /// reads as `-15` (-SIGTERM), as in Python.
    pub(crate) fn terminate(&self) -> io::Result<()> {
        self.end()
    }

    /// Ends the child at once. Windows has no SIGKILL either: as in Python, this is
    /// `terminate`, and the exit code reads as `-15` (-SIGTERM), not `-9`.
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.end()
    }

    /// Interrupts the child. `GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT)` reaches a whole
    /// process group, and children share their parent's group (they are not started with
    /// `CREATE_NEW_PROCESS_GROUP`, which would also cut them off from the console's Ctrl-C),
    /// so it would interrupt the parent too: this ends the child as `terminate` does.
    pub(crate) fn interrupt(&self) -> io::Result<()> {
        self.end()
    }
}

/// The Python-style exit code of a process whose Windows exit code is `code`.
///
/// Windows has no signals, so an exit code is negative only where a Unix process would have
/// died of a signal:
///
/// - [`TERMINATE_EXIT_CODE`], which `terminate` and `kill` give, is `-SIGTERM`, as in CPython.
/// - An exception that nothing handled ends a process with its NTSTATUS code (0xC0000005 for
///   an access violation, 0xC0000409 for Rust's `abort`). These become minus the signal that
///   the same fault raises on Unix, the way Cygwin maps them: a crash then reads the same on
///   every platform ("killed by signal 11 (SIGSEGV)").
/// - Every other code is the process's own exit code, unchanged: codes below 2^31 stay
///   positive. The rest (another NTSTATUS error) cannot be positive in an `i32` and keep
///   their C `int` value, which is also what `std::process::ExitStatus::code` answers.
fn exitcode(code: u32) -> i32 {
    let signal = match code {
        TERMINATE_EXIT_CODE => SIGTERM,
        // STATUS_CONTROL_C_EXIT
        0xC000_013A => 2,
        // STATUS_ILLEGAL_INSTRUCTION, STATUS_PRIVILEGED_INSTRUCTION
        0xC000_001D | 0xC000_0096 => 4,
        // STATUS_BREAKPOINT, STATUS_SINGLE_STEP
        0x8000_0003 | 0x8000_0004 => 5,
        // STATUS_STACK_BUFFER_OVERRUN: `__fastfail`, which `std::process::abort` uses.
        0xC000_0409 => 6,
        // STATUS_DATATYPE_MISALIGNMENT, STATUS_IN_PAGE_ERROR
        0x8000_0002 | 0xC000_0006 => 7,
        // STATUS_FLOAT_DENORMAL_OPERAND ..= STATUS_FLOAT_UNDERFLOW, then
        // STATUS_INTEGER_DIVIDE_BY_ZERO and STATUS_INTEGER_OVERFLOW
        0xC000_008D..=0xC000_0095 => 8,
        // STATUS_ACCESS_VIOLATION, STATUS_ARRAY_BOUNDS_EXCEEDED, STATUS_STACK_OVERFLOW
        0xC000_0005 | 0xC000_008C | 0xC000_00FD => 11,
        _ => return code as i32,
    };
    -signal
}

/// A `PROC_THREAD_ATTRIBUTE_LIST` that names the only handles a new process inherits.
///
/// The list points into `handles` instead of copying it, so it borrows the slice for as long as
/// it lives.
struct HandleList<'a> {
    buffer: Vec<usize>,
    _handles: PhantomData<&'a [HANDLE]>,
}

impl<'a> HandleList<'a> {
    fn new(handles: &'a [HANDLE]) -> io::Result<HandleList<'a>> {
        let mut size = 0usize;
        // SAFETY: with a null list the call only writes the size it needs to `size`; it fails
        // with ERROR_INSUFFICIENT_BUFFER by design, so its result is not checked.
        unsafe { InitializeProcThreadAttributeList(null_mut(), 1, 0, &mut size) };
        // Whole `usize`s keep the buffer aligned for the pointers the list holds.
        let mut buffer = vec![0usize; size.div_ceil(size_of::<usize>())];
        // SAFETY: `buffer` is writable for at least `size` bytes, as asked for just above.
        cvt(unsafe {
            InitializeProcThreadAttributeList(buffer.as_mut_ptr().cast(), 1, 0, &mut size)
        })?;
        let mut list = HandleList {
            buffer,
            _handles: PhantomData,
        };
        // SAFETY: the list was initialised for one attribute; `handles` holds
        // `size_of_val(handles)` bytes of handle values and outlives the list (its lifetime
        // says so), as the attribute only keeps a pointer to it.
        cvt(unsafe {
            UpdateProcThreadAttribute(
                list.as_mut_ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                handles.as_ptr().cast(),
                size_of_val(handles),
                null_mut(),
                null(),
            )
        })?;
        Ok(list)
    }

    fn as_mut_ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buffer.as_mut_ptr().cast()
    }
}

impl Drop for HandleList<'_> {
    fn drop(&mut self) {
        // SAFETY: the list was initialised in `new` (a `HandleList` exists only after that
        // succeeded) and is deleted once, here.
        unsafe { DeleteProcThreadAttributeList(self.as_mut_ptr()) };
    }
}

/// An inheritable copy of one of this process's standard handles, for a child to use as its
/// own; `None` when there is none (a program without a console) or it cannot be copied, and
/// the child then goes without.
fn inheritable_std_handle(which: STD_HANDLE) -> Option<OwnedHandle> {
    // SAFETY: GetStdHandle only reads this process's parameters.
    let handle = unsafe { GetStdHandle(which) };
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return None;
    }
    duplicate(handle, true).ok()
}

/// The command line of a child: the parent's `argv[0]` (quoted), so that the child looks like
/// the parent in process lists, or the executable's path where that cannot be quoted.
fn command_line(exe: &Path) -> io::Result<Vec<u16>> {
    let quote = u16::from(b'"');
    let argv0 = std::env::args_os()
        .next()
        .filter(|arg| !arg.is_empty() && !arg.encode_wide().any(|c| c == quote))
        .unwrap_or_else(|| exe.as_os_str().to_owned());
    // `argv[0]` is read up to the closing quote, with no backslash escapes, so plain quotes
    // around it are enough.
    let mut line = vec![quote];
    line.extend(wide(&argv0)?.into_iter().take_while(|&c| c != 0));
    line.push(quote);
    line.push(0);
    Ok(line)
}

/// This process's environment without any inherited child variable, plus the child variable
/// for `role`, the inherited channel `handle` and, if there is one, the inherited `job`, as a
/// sorted `CreateProcessW` block.
fn environment_block(role: &str, handle: HANDLE, job: Option<HANDLE>) -> Vec<u16> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(key, _)| !key.eq_ignore_ascii_case(super::CHILD_ENV))
        .collect();
    let mut value = format!("{role}:{}", handle as usize);
    if let Some(job) = job {
        value.push_str(&format!(":{}", job as usize));
    }
    vars.push((super::CHILD_ENV.into(), value.into()));
    // Windows expects the block sorted by name, without regard to case.
    vars.sort_by_cached_key(|(key, _)| key.to_string_lossy().to_uppercase());
    let mut block = Vec::new();
    for (key, value) in vars {
        block.extend(key.encode_wide());
        block.push(u16::from(b'='));
        block.extend(value.encode_wide());
        block.push(0);
    }
    block.push(0);
    block
}

/// The program that children re-execute: the very file this process runs.
pub(crate) fn default_executable() -> io::Result<PathBuf> {
    std::env::current_exe()
}

/// The job that daemonic children of this process join, so that they die with it (DESIGN.md,
/// mechanism 4): `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` ends every process in the job when its
/// last handle closes, and the only lasting handle is this one, which closes when this
/// process ends, however it ends (even by `TerminateProcess`). Made at the first spawn;
/// `None` when the system refuses, and then daemonic children rely on their watchdog alone.
fn daemon_job() -> Option<HANDLE> {
    static JOB: OnceLock<Option<OwnedHandle>> = OnceLock::new();
    JOB.get_or_init(|| match new_kill_on_close_job() {
        Ok(job) => Some(job),
        Err(e) => {
            tracing::debug!(error = %e, "no job object for daemonic children");
            None
        }
    })
    .as_ref()
    .map(|job| job.as_raw_handle())
}

fn new_kill_on_close_job() -> io::Result<OwnedHandle> {
    // SAFETY: null attributes make a handle that children do not inherit, and a null name an
    // anonymous job.
    let job = owned_or_last_error(unsafe { CreateJobObjectW(null(), null()) })?;
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `limits` is the structure that JobObjectExtendedLimitInformation names, and the
    // size passed is its size.
    cvt(unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    })?;
    Ok(job)
}

/// The parent's daemon job as inherited by this child, until `remember_parent_channel` has
/// used it.
static INHERITED_JOB: Mutex<Option<OwnedHandle>> = Mutex::new(None);

/// Keeps the inherited daemon job `job` of a new child for `remember_parent_channel`.
fn adopt_parent_job(job: HANDLE) {
    let mut flags = 0u32;
    // SAFETY: GetHandleInformation only queries the handle table; it fails cleanly on a value
    // that is no open handle.
    if unsafe { GetHandleInformation(job, &mut flags) } == 0 {
        return;
    }
    // SAFETY: the parent let this child inherit this job handle (see `spawn`), beside the
    // channel that `from_env` just checked; nothing else in this process knows its value.
    let job = unsafe { OwnedHandle::from_raw_handle(job) };
    *INHERITED_JOB.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
}

/// Starts `exe` with `role` in the child environment variable and `child_end` as its channel.
///
/// The child inherits an inheritable copy of `child_end`, one of this process's daemon job
/// (see below) and copies of the standard handles, and nothing else:
/// `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` restricts inheritance to them, so
/// children started at the same time from other threads never get each other's channels
/// (which would keep a dead child's channel open and hide its end from its parent). The
/// copies are closed in the parent as soon as the child exists.
///
/// The copies are inheritable for the few microseconds that this call takes. A program that
/// starts other processes with plain handle inheritance at that very moment (as
/// `std::process::Command` does) could pass one of them on too; the interface of `spawn`
/// offers no way around that, because the child must know its handle's value from birth.
///
/// Daemonic children die with their parent through a job object: every child gets a handle
/// to this process's [daemon job](daemon_job); a daemonic one joins the job before it runs
/// any user code, and every child then closes its copy (`remember_parent_channel`). `spawn`
/// does not know whether the child is daemonic (the request says so), hence the join in the
/// child, which has no race with the parent's death: while the child holds its copy the job
/// stays open, and if the parent died meanwhile, closing that copy ends the daemonic child at
/// once. The watchdog thread of `entry` (the parent's end of the channel closing) stays as a
/// second line, for systems that refuse the job. A child that is not a `procs` program keeps
/// the copy until it exits, which only keeps daemonic siblings alive that long.
pub(crate) fn spawn(exe: &Path, role: &str, child_end: &Channel) -> io::Result<Child> {
    let channel = duplicate(child_end.raw_handle()?, true)?;
    let job = daemon_job().and_then(|job| duplicate(job, true).ok());
    let stdio = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE].map(inheritable_std_handle);
    let raw_or_null =
        |h: &Option<OwnedHandle>| h.as_ref().map_or(null_mut(), |h| h.as_raw_handle());

    let mut inherited: Vec<HANDLE> = vec![channel.as_raw_handle()];
    inherited.extend(job.iter().map(|h| h.as_raw_handle()));
    inherited.extend(stdio.iter().flatten().map(|h| h.as_raw_handle()));
    let mut handle_list = HandleList::new(&inherited)?;

    let application = wide(exe.as_os_str())?;
    // CreateProcessW may write to the command line, so it gets a buffer of its own.
    let mut command = command_line(exe)?;
    let environment = environment_block(
        role,
        channel.as_raw_handle(),
        job.as_ref().map(|h| h.as_raw_handle()),
    );

    let mut startup = STARTUPINFOEXW::default();
    startup.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    startup.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    startup.StartupInfo.hStdInput = raw_or_null(&stdio[0]);
    startup.StartupInfo.hStdOutput = raw_or_null(&stdio[1]);
    startup.StartupInfo.hStdError = raw_or_null(&stdio[2]);
    startup.lpAttributeList = handle_list.as_mut_ptr();
    let mut info = PROCESS_INFORMATION::default();
    // SAFETY: the application name and command line are nul-terminated UTF-16 buffers, the
    // environment is a UTF-16 block ending in two nuls (CREATE_UNICODE_ENVIRONMENT says so),
    // `startup` is a STARTUPINFOEXW whose `cb` says so (EXTENDED_STARTUPINFO_PRESENT) and
    // whose attribute list and handles stay alive until after the call, and `info` is
    // writable.
    cvt(unsafe {
        CreateProcessW(
            application.as_ptr(),
            command.as_mut_ptr(),
            null(),
            null(),
            1,
            EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT,
            environment.as_ptr().cast(),
            null(),
            &startup.StartupInfo,
            &mut info,
        )
    })?;
    // SAFETY: CreateProcessW succeeded, so both handles are new and only we own them.
    let (process, thread) = unsafe {
        (
            OwnedHandle::from_raw_handle(info.hProcess),
            OwnedHandle::from_raw_handle(info.hThread),
        )
    };
    drop(thread);
    drop(handle_list);
    drop(channel);
    drop(job);
    drop(stdio);
    Ok(Child {
        pid: info.dwProcessId,
        process,
        exitcode: Mutex::new(None),
    })
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not available on Windows, which cannot fork; use StartMethod::Spawn"),
    )
}

/// Called in a new child once it knows who it is, before user code runs: a daemonic child
/// joins its parent's daemon job (see [`spawn`]), and every child closes its copy of that job.
///
/// A daemonic child whose parent has already gone (its end of `channel` is closed) ends at
/// once instead, as its watchdog would: its copy may then be the job's last handle, and wine
/// 8.0's server crashes when a member of a kill-on-close job closes the last handle of it
/// (Windows just ends the job). The check leaves wine a window of one system call.
///
/// The channel needs nothing else: without fork, a process of ours only ever gets the handles
/// that `spawn` lists for it, so our own link to our parent never reaches our children.
pub(crate) fn remember_parent_channel(channel: &Channel, daemon: bool) {
    let Some(job) = INHERITED_JOB
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    if daemon {
        // SAFETY: `job` is our open job handle (with JOB_OBJECT_ASSIGN_PROCESS, as it was
        // duplicated with the creator's full access), and the current-process pseudo handle is
        // always valid.
        let joined = unsafe { AssignProcessToJobObject(job.as_raw_handle(), GetCurrentProcess()) };
        if let Err(e) = cvt(joined) {
            tracing::debug!(error = %e, "could not join the parent's job; the watchdog remains");
        }
        if channel.peer_closed() {
            exit_now(1);
        }
    }
    // The parent's handle is now the job's only one.
    drop(job);
}

/// Windows cannot fork: always `Unsupported` (`StartMethod::Fork` is not offered here).
pub(crate) fn fork(
    _parent_end: &Channel,
    _inherited_links: &[RawHandle],
    _child: impl FnOnce() -> i32,
) -> io::Result<Child> {
    Err(unsupported("the fork start method"))
}

/// Windows cannot fork: always `Unsupported` (`StartMethod::ForkServer` is not offered here).
pub(crate) fn forkserver_spawn(_child_end: &Channel) -> io::Result<Child> {
    Err(unsupported("the fork server"))
}

/// Never started on Windows; a process told to be a fork server leaves with an error code.
pub(crate) fn serve_forkserver(_channel: Channel, _serve: fn(Channel) -> i32) -> ! {
    tracing::error!("this process was started as a fork server, but Windows cannot fork");
    exit_now(1)
}

/// Leaves the process at once, without running exit handlers or destructors.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: terminating the current process (through its always-valid pseudo handle) ends
    // every thread at once and runs no exit handlers or DLL detach code, like `_exit` on Unix.
    unsafe { TerminateProcess(GetCurrentProcess(), code as u32) };
    // SAFETY: ExitProcess has no preconditions; it is reached only if the call above failed.
    unsafe { ExitProcess(code as u32) }
}

/// This process's entry in a snapshot of all processes, which holds its parent's pid and its
/// thread count.
fn own_process_entry() -> Option<PROCESSENTRY32W> {
    // SAFETY: CreateToolhelp32Snapshot takes plain values and returns a new handle or
    // INVALID_HANDLE_VALUE.
    let snapshot =
        owned_or_last_error(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) }).ok()?;
    let me = getpid();
    let mut entry = PROCESSENTRY32W {
        dwSize: size_of::<PROCESSENTRY32W>() as u32,
        ..Default::default()
    };
    // SAFETY: `entry` is writable and its `dwSize` says how large it is, as the call requires.
    let mut found = unsafe { Process32FirstW(snapshot.as_raw_handle(), &mut entry) };
    while found != 0 {
        if entry.th32ProcessID == me {
            return Some(entry);
        }
        // SAFETY: as for Process32FirstW.
        found = unsafe { Process32NextW(snapshot.as_raw_handle(), &mut entry) };
    }
    None
}

/// How many threads this process has, from the process snapshot.
pub(crate) fn thread_count() -> Option<usize> {
    own_process_entry().map(|entry| entry.cntThreads as usize)
}

/// Flushes what the standard streams buffer.
pub(crate) fn flush_std_streams() {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}

/// The resident memory of this process: not measured on Windows (it would need the
/// process-status API), so pools cannot recycle workers by memory there.
pub(crate) fn resident_memory() -> Option<u64> {
    None
}

pub(crate) fn getpid() -> u32 {
    std::process::id()
}

/// The pid of the process that created this one, or 0 when it cannot be found.
///
/// Windows never gives a process another parent, so the answer is looked up once: a snapshot
/// of every process in the system is not cheap.
pub(crate) fn getppid() -> u32 {
    static PARENT: OnceLock<u32> = OnceLock::new();
    if let Some(&pid) = PARENT.get() {
        return pid;
    }
    match own_process_entry() {
        Some(entry) => *PARENT.get_or_init(|| entry.th32ParentProcessID),
        None => 0,
    }
}

/// Whether a process with this pid still runs (it may belong to another user).
pub(crate) fn pid_alive(pid: u32) -> bool {
    // SAFETY: OpenProcess takes plain values and returns a new handle or null.
    let handle = unsafe {
        OpenProcess(
            PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
            0,
            pid,
        )
    };
    if handle.is_null() {
        // A process that exists but that we may not open refuses access; a pid that names no
        // process is an invalid parameter.
        return is_os_error(&io::Error::last_os_error(), &[ERROR_ACCESS_DENIED]);
    }
    // SAFETY: OpenProcess succeeded, so the handle is new and only we own it.
    let handle = unsafe { OwnedHandle::from_raw_handle(handle) };
    // The process handle signals when the process ends. Unlike an exit code of STILL_ACTIVE,
    // this cannot mistake a process that exited with code 259 for a running one.
    // SAFETY: a zero timeout only reads the state of our open handle.
    unsafe { WaitForSingleObject(handle.as_raw_handle(), 0) == WAIT_TIMEOUT }
}

/// When process `pid` was created, in 100 ns units since 1601 (`GetProcessTimes`): the same
/// each time for one process, different for a later process that got the same pid. `None`
/// when no such process can be opened.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    // SAFETY: OpenProcess takes plain values and returns a new handle or null.
    let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if handle.is_null() {
        return None;
    }
    // SAFETY: OpenProcess succeeded, so the handle is new and only we own it.
    let handle = unsafe { OwnedHandle::from_raw_handle(handle) };
    let zero = windows_sys::Win32::Foundation::FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the handle is open with the access GetProcessTimes needs, and the four
    // FILETIMEs are writable.
    let ok = unsafe {
        GetProcessTimes(
            handle.as_raw_handle(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// Fills `buf` from the system's preferred random number generator.
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    for chunk in buf.chunks_mut(u32::MAX as usize) {
        // SAFETY: `chunk` is writable for its length, which fits in a u32; a null algorithm
        // handle is what BCRYPT_USE_SYSTEM_PREFERRED_RNG asks for.
        let status = unsafe {
            BCryptGenRandom(
                null_mut(),
                chunk.as_mut_ptr(),
                chunk.len() as u32,
                BCRYPT_USE_SYSTEM_PREFERRED_RNG,
            )
        };
        if status < 0 {
            return Err(io::Error::other(format!(
                "the system's random number generator failed with status {status:#010x}"
            )));
        }
    }
    Ok(())
}

/// The Unix name of the signal that [`exitcode`] reports a Windows exit code as.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        2 => "SIGINT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        SIGTERM => "SIGTERM",
        // The C `int` value of an NTSTATUS code that maps to no signal.
        _ => "an unnamed signal",
    }
}

unsafe extern "C" {
    /// The C runtime's exit handler registration (mingw's and the MSVC runtime's alike).
    fn atexit(callback: extern "C" fn()) -> i32;
}

/// Runs `handler` when the process leaves through the C runtime's `exit`, which is how `main`
/// returns.
///
/// `std::process::exit` calls `ExitProcess` directly on Windows, and that skips the C
/// runtime's handlers: a parent that leaves that way does not wait for its children. Its
/// daemonic children still end, because their watchdog sees the parent's end of the channel
/// close.
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function that lives as long as the program; atexit only
    // stores it.
    unsafe {
        atexit(handler);
    }
}

/// Would run `handler` in a forked child: Windows has no fork, so it never runs.
pub(crate) fn at_fork_child(_handler: extern "C" fn()) {}

/// Sets up a child before it runs user code. Windows has no SIGPIPE to ignore: a write to a
/// closed pipe already fails with an error.
pub(crate) fn prepare_child() {}

/// Whether an error from writing to a child means only that the child is gone.
pub(crate) fn is_peer_gone(err: &io::Error) -> bool {
    is_os_error(
        err,
        &[ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED],
    )
}

/// Declares `static $name: extern "C" fn() = $f;` where the C runtime finds it and calls it
/// before `main`, so that children of test binaries (whose `main` is libtest's) and of programs
/// that forgot `procs::init()` still serve their parent. The C runtime calls every pointer in
/// the `.CRT$XC*` sections (in name order) before `main`. The caller keeps the static reachable
/// (`black_box`), so that the linker keeps the object that holds it.
macro_rules! before_main {
    ($(#[$attr:meta])* static $name:ident = $f:path;) => {
        $(#[$attr])*
        #[used]
        #[unsafe(link_section = ".CRT$XCU")]
        pub(crate) static $name: extern "C" fn() = $f;
    };
}
pub(crate) use before_main;
