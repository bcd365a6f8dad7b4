//! Windows: `CreateProcessW` re-execution that hands the child exactly one end of a named pipe,
//! waits on process handles, `TerminateProcess` with Python's exit code, handles duplicated
//! into the peer process, and a job object that ends daemonic children with their parent.
//!
//! Windows cannot fork, so `StartMethod::available()` offers only `Spawn` here; `fork` and
//! `forkserver_spawn` answer `Unsupported` should they ever be reached.

use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::mem::{size_of, size_of_val};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_NO_DATA,
    ERROR_PIPE_BUSY, ERROR_PIPE_NOT_CONNECTED, GENERIC_READ, GENERIC_WRITE, HANDLE,
    HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, SetHandleInformation, WAIT_OBJECT_0, WAIT_TIMEOUT,
    WIN32_ERROR,
};
use windows_sys::Win32::Security::Cryptography::{
    BCRYPT_USE_SYSTEM_PREFERRED_RNG, BCryptGenRandom,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_TYPE_PIPE, GetFileType, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT, WriteFile,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
    PeekNamedPipe,
};
use windows_sys::Win32::System::Threading::{
    CREATE_UNICODE_ENVIRONMENT, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, ExitProcess, GetCurrentProcess, GetExitCodeProcess, INFINITE,
    InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST, OpenProcess,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_INFORMATION, PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SYNCHRONIZE, STARTF_USESTDHANDLES, STARTUPINFOEXW, TerminateProcess,
    UpdateProcThreadAttribute, WaitForSingleObject,
};

/// The exit code that `terminate` and `kill` give a child. Windows has no signals, so both
/// end the child at once with `TerminateProcess`, and the code cannot say which was used.
const TERMINATED_EXIT_CODE: u32 = 1;

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
    let deadline = timeout.map(|d| Instant::now() + d);
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

/// A bidirectional byte stream to one other process: both ends of a byte-mode named pipe.
///
/// The handles are synchronous, so Windows runs the calls on one handle one at a time: a
/// thread blocked reading would hold up a write from another thread. The crate never does
/// that (a child reads its request before it writes, and waits through `wait_readable`, which
/// only peeks), and keeping the handles synchronous lets a child use them without any
/// `OVERLAPPED` bookkeeping.
#[derive(Debug)]
pub(crate) struct Channel {
    handle: OwnedHandle,
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
                PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
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
                SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                null_mut(),
            )
        })?;
        // With only one instance allowed, the client that just connected is the only one the
        // server will ever have: the pair is private from here on.
        Ok((Channel { handle: server }, Channel { handle: client }))
    }

    fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }

    /// How many bytes wait to be read, or `None` when the peer has closed its end.
    fn available(&self) -> io::Result<Option<u32>> {
        let mut available = 0u32;
        // SAFETY: with a null buffer of size 0 PeekNamedPipe reads nothing; it only writes the
        // count to `available`, and the other out pointers may be null.
        let ok = unsafe {
            PeekNamedPipe(
                self.raw(),
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

    /// Waits until the channel has bytes or end-of-file to read, or `timeout` passes.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        poll_until(timeout, || {
            Ok(self.available()?.is_none_or(|available| available > 0))
        })
    }

    /// Whether the peer has closed its end (and sent nothing more), without blocking.
    pub(crate) fn peer_closed(&self) -> bool {
        matches!(self.available(), Ok(None))
    }

    /// Takes the channel named by the child environment variable's value (`role:handle`),
    /// and makes it non-inheritable so that programs this child starts do not get it.
    pub(crate) fn from_env(value: &str) -> Option<(String, Channel)> {
        let (role, handle) = value.split_once(':')?;
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
        Some((role.to_string(), Channel { handle: owned }))
    }
}

impl Read for &Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut read = 0u32;
        // SAFETY: `buf` is valid for writes of `len` bytes, `read` is a writable u32, and the
        // handle is synchronous, so no OVERLAPPED is needed.
        let ok = unsafe { ReadFile(self.raw(), buf.as_mut_ptr(), len, &mut read, null_mut()) };
        match cvt(ok) {
            Ok(()) => Ok(read as usize),
            Err(e) if is_closed(&e) => Ok(0),
            Err(e) => Err(e),
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
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut written = 0u32;
        // SAFETY: `buf` is valid for reads of `len` bytes, `written` is a writable u32, and the
        // handle is synchronous, so no OVERLAPPED is needed.
        let ok = unsafe { WriteFile(self.raw(), buf.as_ptr(), len, &mut written, null_mut()) };
        cvt(ok).map(|()| written as usize)
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
                // Exit codes are DWORDs; NTSTATUS crash codes such as 0xC0000005 become
                // negative, as they do in C's `int` view of them.
                Ok(Some(self.record(code as i32)))
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
        let deadline = timeout.map(|d| Instant::now() + d);
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
        let ok = unsafe { TerminateProcess(self.process.as_raw_handle(), TERMINATED_EXIT_CODE) };
        match cvt(ok) {
            Ok(()) => Ok(()),
            // A child that ended between the check and the call refuses with access denied.
            Err(e) => match self.try_wait()? {
                Some(_) => Ok(()),
                None => Err(e),
            },
        }
    }

    /// Asks the child to end. Windows has no SIGTERM: this ends it at once, with exit code 1.
    pub(crate) fn terminate(&self) -> io::Result<()> {
        self.end()
    }

    /// Ends the child at once, with exit code 1 (Windows has no SIGKILL either).
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.end()
    }
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
/// for `role` and the inherited channel `handle`, as a sorted `CreateProcessW` block.
fn environment_block(role: &str, handle: HANDLE) -> Vec<u16> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(key, _)| !key.eq_ignore_ascii_case(super::CHILD_ENV))
        .collect();
    vars.push((
        super::CHILD_ENV.into(),
        format!("{role}:{}", handle as usize).into(),
    ));
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

/// Starts `exe` with `role` in the child environment variable and `child_end` as its channel.
///
/// The child inherits an inheritable copy of `child_end` and copies of the standard handles,
/// and nothing else: `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` restricts inheritance to them, so
/// children started at the same time from other threads never get each other's channels
/// (which would keep a dead child's channel open and hide its end from its parent). The
/// copies are closed in the parent as soon as the child exists.
///
/// The copies are inheritable for the few microseconds that this call takes. A program that
/// starts other processes with plain handle inheritance at that very moment (as
/// `std::process::Command` does) could pass one of them on too; the interface of `spawn`
/// offers no way around that, because the child must know its handle's value from birth.
pub(crate) fn spawn(exe: &Path, role: &str, child_end: &Channel) -> io::Result<Child> {
    let channel = duplicate(child_end.raw(), true)?;
    let stdio = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE].map(inheritable_std_handle);
    let raw_or_null =
        |h: &Option<OwnedHandle>| h.as_ref().map_or(null_mut(), |h| h.as_raw_handle());

    let mut inherited: Vec<HANDLE> = vec![channel.as_raw_handle()];
    inherited.extend(stdio.iter().flatten().map(|h| h.as_raw_handle()));
    let mut handle_list = HandleList::new(&inherited)?;

    let application = wide(exe.as_os_str())?;
    // CreateProcessW may write to the command line, so it gets a buffer of its own.
    let mut command = command_line(exe)?;
    let environment = environment_block(role, channel.as_raw_handle());

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

/// Notes this child's channel to its parent. Nothing to do on Windows: without fork, a
/// process of ours only ever gets the handles that `spawn` lists for it, so our own link to
/// our parent never reaches our children.
pub(crate) fn remember_parent_channel(_channel: &Channel) {}

/// Windows cannot fork: always `Unsupported` (`StartMethod::Fork` is not offered here).
pub(crate) fn fork(_parent_end: &Channel, _child: impl FnOnce() -> i32) -> io::Result<Child> {
    Err(unsupported("the fork start method"))
}

/// Windows cannot fork: always `Unsupported` (`StartMethod::ForkServer` is not offered here).
pub(crate) fn forkserver_spawn(_child_end: &Channel) -> io::Result<Child> {
    Err(unsupported("the fork server"))
}

/// Never started on Windows; a process told to be a fork server leaves with an error code.
pub(crate) fn serve_forkserver(_channel: Channel) -> ! {
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

/// Windows has no signals; an exit code that looks like one came from `TerminateProcess` or a
/// crash.
pub(crate) fn signal_name(_sig: i32) -> &'static str {
    "terminated"
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

extern "C" fn constructor() {
    crate::entry::from_constructor();
}

/// Runs the child entry before `main`, so that children of test binaries (whose `main` is
/// libtest's) and of programs that forgot `procs::init()` still serve their parent. The C
/// runtime calls every pointer in the `.CRT$XC*` sections (in name order) before `main`.
#[used]
#[unsafe(link_section = ".CRT$XCU")]
pub(crate) static CONSTRUCTOR: extern "C" fn() = constructor;
