//! The floor the operating system sets, measured by `cargo xtask bench`: what starting a
//! process, or moving bytes between two processes, costs with nothing of ours (or anyone's)
//! on top.
//!
//! Benchmarks:
//!
//! - `process-start fork`: `fork()`, `_exit(0)` in the child, `waitpid` in the parent.
//! - `process-start posix_spawn`: `posix_spawn` of `/bin/true`, then `waitpid`.
//! - `pipe-roundtrip object|bytes`: a message through a bare `socketpair` to a forked child
//!   and back, one `write` and one `read` each way. The message has the size of the frame our
//!   pipe puts on the wire for the same transfer: 11 bytes for `(1u32, "hello")` (4 of length,
//!   7 of postcard), 68 for 64 bytes.
//! - `pipe-bandwidth`: 1 MB (and a 4-byte header) messages one way; the time is per message,
//!   until the child has read them all.
//! - `queue-small`: the floor of a queue's transfer of small items: a forked child writes 8
//!   bytes per item (one `write`) into a bare `socketpair`, this process reads 8 bytes per
//!   item; the time is per item, from the child's go to the last item read.
//! - `queue-100kb`: the same with one 100,000-byte `write` per item, read back as exactly
//!   100,000 bytes.

use std::error::Error;
use std::ffi::{CStr, c_char};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::ptr;
use std::time::Instant;

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
        ("pipe-roundtrip", "object") => roundtrip("pipe_rt_object/socketpair", &args, 11)?,
        ("pipe-roundtrip", "bytes") => roundtrip("pipe_rt_bytes/socketpair", &args, 68)?,
        ("pipe-bandwidth", _) => bandwidth(&args)?,
        ("queue-small", _) => stream("queue_small/socketpair", &args, 8)?,
        ("queue-100kb", _) => stream("queue_100kb/socketpair", &args, 100_000)?,
        (benchmark, parameter) => {
            return Err(format!(
                "unknown benchmark {benchmark:?} {parameter:?}; \
                 known: process-start fork, process-start posix_spawn, pipe-roundtrip object, \
                 pipe-roundtrip bytes, pipe-bandwidth, queue-small, queue-100kb"
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

/// A connected pair of Unix stream sockets.
fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks a child that runs `child` on its end of a socketpair, then `_exit`s; returns the
/// child's pid and the parent's end.
fn fork_partner(
    child: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<(libc::pid_t, File)> {
    let (ours, theirs) = socketpair()?;
    // SAFETY: this program has one thread; the child only does I/O on its socket and leaves
    // with `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(ours);
            let code = i32::from(child(&mut File::from(theirs)).is_err());
            // SAFETY: as in `fork_exit_wait`.
            unsafe { libc::_exit(code) }
        }
        pid => Ok((pid, File::from(ours))),
    }
}

/// Echoes every message of the round trip (one read, one write) until end-of-file.
fn echo(socket: &mut File) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf)? {
            0 => return Ok(()),
            n => socket.write_all(&buf[..n])?,
        }
    }
}

fn roundtrip(name: &str, args: &Args, size: usize) -> io::Result<()> {
    let (pid, mut socket) = fork_partner(echo)?;
    let message = vec![7u8; size];
    let mut buf = vec![0u8; size];
    measure(name, args, || {
        socket.write_all(&message)?;
        socket.read_exact(&mut buf)
    })?;
    drop(socket);
    wait(pid)
}

const LARGE: usize = (1 << 20) + 4;

/// Reads everything until end-of-file, then answers one byte.
fn drain(socket: &mut File) -> io::Result<()> {
    let mut buf = vec![0u8; LARGE];
    while socket.read(&mut buf)? != 0 {}
    socket.write_all(b"!")
}

fn bandwidth(args: &Args) -> io::Result<()> {
    let (pid, mut socket) = fork_partner(drain)?;
    let message = vec![7u8; LARGE];
    for _ in 0..args.warmup {
        socket.write_all(&message)?;
    }
    let start = Instant::now();
    for _ in 0..args.iterations {
        socket.write_all(&message)?;
    }
    // SAFETY: shutdown only ends the sending direction of our own socket.
    if unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_WR) } != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.read_exact(&mut [0u8; 1])?;
    let elapsed = start.elapsed();
    println!(
        "RESULT pipe_1mb/socketpair {:.12} {}",
        elapsed.as_secs_f64() / f64::from(args.iterations),
        args.iterations
    );
    drop(socket);
    wait(pid)
}

/// The queue benchmarks' floor: a forked child writes `warm` items of `size` bytes, waits for
/// a go byte, then writes `--iterations` more, one `write` each; this process reads them
/// `size` bytes at a time. The time is from the go to the last item read.
fn stream(name: &str, args: &Args, size: usize) -> io::Result<()> {
    // At least one item goes before timing, as in `bench-ours`: it shows that the child runs.
    let warm = args.warmup.max(1);
    let n = args.iterations;
    let (pid, mut socket) = fork_partner(|socket| {
        let item = vec![7u8; size];
        for _ in 0..warm {
            socket.write_all(&item)?;
        }
        socket.read_exact(&mut [0u8; 1])?;
        for _ in 0..n {
            socket.write_all(&item)?;
        }
        Ok(())
    })?;
    let mut item = vec![0u8; size];
    for _ in 0..warm {
        socket.read_exact(&mut item)?;
    }
    let start = Instant::now();
    socket.write_all(b"!")?;
    for _ in 0..n {
        socket.read_exact(&mut item)?;
    }
    let elapsed = start.elapsed();
    println!(
        "RESULT {name} {:.12} {n}",
        elapsed.as_secs_f64() / f64::from(n)
    );
    drop(socket);
    wait(pid)
}
