//! The floor the operating system sets, measured by `cargo xtask bench`: what starting a
//! process costs with nothing of ours (or anyone's) on top.
//!
//! Benchmarks:
//!
//! - `process-start fork`: `fork()`, `_exit(0)` in the child, `waitpid` in the parent.
//! - `process-start posix_spawn`: `posix_spawn` of `/bin/true`, then `waitpid`.

use std::error::Error;
use std::ffi::{CStr, c_char};
use std::io;
use std::process::ExitCode;
use std::ptr;

use procs_bench::{Args, measure};

fn main() -> ExitCode {
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match (args.benchmark.as_str(), args.parameter.as_str()) {
        ("process-start", "fork") => {
            measure("process_start/os/fork", &args, fork_exit_wait)?;
        }
        ("process-start", "posix_spawn") => {
            measure("process_start/os/posix_spawn", &args, posix_spawn_wait)?;
        }
        (benchmark, parameter) => {
            return Err(format!(
                "unknown benchmark {benchmark:?} {parameter:?}; \
                 known: process-start fork, process-start posix_spawn"
            )
            .into());
        }
    }
    Ok(())
}

fn fork_exit_wait() -> io::Result<()> {
    // SAFETY: this program has one thread, and the child calls only the async-signal-safe
    // `_exit`.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: `_exit` ends the child at once, without running the parent's atexit
            // handlers or flushing its copied stdio buffers.
            unsafe { libc::_exit(0) }
        }
        pid => wait(pid),
    }
}

fn posix_spawn_wait() -> io::Result<()> {
    const TRUE: &CStr = c"/bin/true";
    let argv: [*mut c_char; 2] = [TRUE.as_ptr().cast_mut(), ptr::null_mut()];
    let envp: [*mut c_char; 1] = [ptr::null_mut()];
    let mut pid: libc::pid_t = 0;
    // SAFETY: the path is a NUL-terminated string, `argv` and `envp` are null-terminated
    // arrays of such strings that outlive the call, and null file actions and attributes ask
    // for the defaults.
    let error = unsafe {
        libc::posix_spawn(
            &mut pid,
            TRUE.as_ptr(),
            ptr::null(),
            ptr::null(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    if error != 0 {
        return Err(io::Error::from_raw_os_error(error));
    }
    wait(pid)
}

fn wait(pid: libc::pid_t) -> io::Result<()> {
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our own child and `status` is a valid place for its status.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "child {pid} ended with status {status:#x}"
        )))
    }
}
