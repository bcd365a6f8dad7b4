//! Facts about processes and this process: pids, start times, threads, memory, randomness,
//! exit handlers, and the static the C runtime calls before `main`.

use std::io::{self, Write};
use std::mem::size_of;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null_mut;
use std::sync::OnceLock;

use super::child::SIGTERM;
use super::{is_os_error, owned_or_last_error};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::Cryptography::{
    BCRYPT_USE_SYSTEM_PREFERRED_RNG, BCryptGenRandom,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::Threading::{
    ExitProcess, GetCurrentProcess, GetProcessTimes, OpenProcess,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, TerminateProcess, WaitForSingleObject,
};

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

/// How many low bits of a 32-bit lock word a pid needs: all of them, since Windows makes no
/// promise that its process ids stay small, which leaves no room to tell processes of one
/// pid apart.
pub(crate) const PID_BITS: u32 = 32;

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

/// Would shorten the calling thread's time slice around a start, as on Linux: Windows has no
/// such setting for a thread, so the guard does nothing.
#[must_use = "the slice is put back when the guard drops"]
#[derive(Debug)]
pub(crate) struct ShortSlice {}

impl ShortSlice {
    /// Does nothing (see the type).
    pub(crate) fn take() -> ShortSlice {
        ShortSlice {}
    }
}

/// Would put back the default slice that a start changed: there is none to put back here.
pub(crate) fn leave_inherited() {}

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
