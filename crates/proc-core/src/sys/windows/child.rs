//! A started child, watched through its process handle, and `TerminateProcess` with
//! Python's exit code.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cvt;
use windows_sys::Win32::Foundation::{WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, INFINITE, TerminateProcess, WaitForSingleObject,
};

/// The exit code that `terminate` and `kill` give a child: CPython's `TERMINATE` (in
/// `multiprocessing.popen_spawn_win32`), which `exitcode` reports as `-SIGTERM`. Windows has no
/// signals, so both end the child at once with `TerminateProcess`, and the code cannot say
/// which of the two was used; Python's `kill` is its `terminate` on Windows too.
const TERMINATE_EXIT_CODE: u32 = 0x10000;

/// The number that `exitcode` negates for a terminated child, as on Unix.
pub(super) const SIGTERM: i32 = 15;

/// A started child process, watched through its process handle.
#[derive(Debug)]
pub(crate) struct Child {
    pub(super) pid: u32,
    pub(super) process: OwnedHandle,
    pub(super) exitcode: Mutex<Option<i32>>,
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
