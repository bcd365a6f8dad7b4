//! The fork server: a clean, single-threaded copy of the program that forks children on request.
//!
//! The parent starts it lazily by re-executing itself with the `forkserver` role. The server
//! never runs `main`: it waits on its channel for requests, each a byte that carries two
//! descriptors (the new child's channel to the parent, and the write end of a pipe for the
//! child's exit code), forks, answers with the child's pid, and when the child ends writes its
//! exit code to that pipe. When the parent goes away the channel reads end-of-file and the
//! server leaves.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::channel::{Channel, set_cloexec};
use super::child::{Child, decode_status};
use super::exec::{default_executable, spawn};
use super::os::{block_signal, exit_now, unblock_signal};
use super::{cvt, cvt_retry};

/// The parent's connection to its fork server.
#[derive(Debug)]
struct Server {
    channel: Channel,
    process: Child,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// Whether this process ever started a fork server: a forked child of one that did not has
/// nothing to forget, and need not lock (write to) `SERVER`'s page, which it would have to copy.
static SERVER_STARTED: AtomicBool = AtomicBool::new(false);

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a writable array of two descriptors.
    cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: pipe succeeded; both descriptors are new and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    set_cloexec(r.as_raw_fd())?;
    set_cloexec(w.as_raw_fd())?;
    Ok((r, w))
}

fn start_server() -> io::Result<Server> {
    let (ours, theirs) = Channel::pair()?;
    let process = spawn(&default_executable()?, "forkserver", &theirs)?;
    drop(theirs);
    tracing::debug!(pid = process.pid(), "fork server started");
    Ok(Server {
        channel: ours,
        process,
    })
}

/// Asks the fork server (started on first use) for a child that will talk on `child_end`.
pub(crate) fn forkserver_spawn(child_end: &Channel) -> io::Result<Child> {
    let mut guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    // One retry: a server that died since the last request is replaced once.
    for attempt in 0..2 {
        if guard.is_none() {
            *guard = Some(start_server()?);
            SERVER_STARTED.store(true, Ordering::Relaxed);
        }
        let server = guard.as_ref().expect("the server was just started");
        match request(server, child_end) {
            Ok(child) => return Ok(child),
            Err(err) if attempt == 0 => {
                tracing::warn!(error = %err, "fork server lost, starting a new one");
                if let Some(dead) = guard.take() {
                    let _ = dead.process.kill();
                    let _ = dead.process.wait(None);
                }
            }
            Err(err) => return Err(err),
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// Drops a forked child's copy of its parent's fork-server connection: the child starts its own
/// server if it needs one, instead of interleaving requests with its parent.
pub(crate) fn forget_after_fork() {
    // Fork happens with one thread only, so no other thread can be starting a server now.
    if !SERVER_STARTED.load(Ordering::Relaxed) {
        return;
    }
    drop(SERVER.lock().unwrap_or_else(|e| e.into_inner()).take());
}

fn request(server: &Server, child_end: &Channel) -> io::Result<Child> {
    let (status_r, status_w) = pipe()?;
    server
        .channel
        .send_with_fds(&[1], &[child_end.raw(), status_w.as_raw_fd()])?;
    drop(status_w);
    let mut pid = [0u8; 4];
    (&server.channel).read_exact(&mut pid).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::other("the fork server ended before it answered")
        } else {
            e
        }
    })?;
    let pid = i32::from_le_bytes(pid);
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(-pid));
    }
    Ok(Child::served(pid, status_r))
}

/// The write end of the pipe that the SIGCHLD handler pokes to wake the server's loop.
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = WAKE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 0u8;
        // SAFETY: write is async-signal-safe; the pipe is non-blocking, so a full pipe (which
        // already holds a wake-up) only makes the write fail, which is fine. errno is saved
        // and restored so that the interrupted code sees its own.
        unsafe {
            let saved = *errno();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *errno() = saved;
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno() -> *mut libc::c_int {
    // SAFETY: __errno_location has no preconditions and returns this thread's errno.
    unsafe { libc::__errno_location() }
}

#[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
fn errno() -> *mut libc::c_int {
    // SAFETY: __error has no preconditions and returns this thread's errno.
    unsafe { libc::__error() }
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero sigaction with an empty mask is valid; `handler` is SIG_DFL, SIG_IGN
    // or an async-signal-safe extern "C" function.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        cvt(libc::sigaction(sig, &action, std::ptr::null_mut()))?;
    }
    Ok(())
}

/// The server's loop; runs in the zygote process and never returns. Each child it forks
/// runs `serve_child` on its channel to the parent and exits with the code it returns.
pub(crate) fn serve_forkserver(channel: Channel, serve_child: fn(Channel) -> i32) -> ! {
    match serve(&channel, serve_child) {
        Ok(()) => exit_now(0),
        Err(err) => {
            tracing::error!(error = %err, "fork server failed");
            exit_now(1)
        }
    }
}

fn serve(channel: &Channel, serve_child: fn(Channel) -> i32) -> io::Result<()> {
    let (wake_r, wake_w) = pipe()?;
    for fd in [wake_r.as_raw_fd(), wake_w.as_raw_fd()] {
        // SAFETY: F_GETFL/F_SETFL only change the status flags of our own pipe.
        unsafe {
            let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
            cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
        }
    }
    WAKE.store(wake_w.as_raw_fd(), Ordering::Relaxed);
    set_handler(libc::SIGCHLD, on_sigchld as *const () as libc::sighandler_t)?;
    // Ctrl-C reaches the whole process group; the parent decides what its children do.
    // SIGINT is blocked too, so that one sent to a new child before it restores the default
    // (`Process::interrupt` right after the start) waits for it instead of being ignored.
    set_handler(libc::SIGINT, libc::SIG_IGN)?;
    block_signal(libc::SIGINT)?;

    let mut children: HashMap<libc::pid_t, OwnedFd> = HashMap::new();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: channel.raw(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake_r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of two initialised pollfds.
        if let Err(e) = cvt(unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) }) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents != 0 {
            let mut sink = [0u8; 64];
            // SAFETY: `sink` is writable for its length; the pipe is non-blocking.
            while unsafe { libc::read(wake_r.as_raw_fd(), sink.as_mut_ptr().cast(), sink.len()) }
                > 0
            {}
            reap(&mut children);
        }
        if fds[0].revents != 0 {
            let mut byte = [0u8; 1];
            let (n, received) = channel.recv_with_fds(&mut byte)?;
            if n == 0 {
                // The parent is gone. Children that are still running keep going, as they
                // would had their parent started them itself.
                return Ok(());
            }
            let [child_end, status]: [OwnedFd; 2] = received
                .try_into()
                .map_err(|_| io::Error::other("a fork request without its two descriptors"))?;
            // SAFETY: the server is single-threaded (it runs before `main` and starts no
            // threads), so forking cannot leave a lock held in the child.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                WAKE.store(-1, Ordering::Relaxed);
                let _ = set_handler(libc::SIGCHLD, libc::SIG_DFL);
                let _ = set_handler(libc::SIGINT, libc::SIG_DFL);
                let _ = unblock_signal(libc::SIGINT);
                drop(children);
                drop(wake_r);
                drop(wake_w);
                drop(status);
                // SAFETY: the descriptor is the server's end of its channel to the parent;
                // the child closes its copy and never uses it again.
                unsafe { libc::close(channel.raw()) };
                let code = serve_child(Channel::from_owned(child_end));
                exit_now(code);
            }
            let answer = if pid < 0 {
                -io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EAGAIN)
            } else {
                pid
            };
            if pid > 0 {
                children.insert(pid, status);
            }
            drop(child_end);
            let mut this = channel;
            this.write_all(&answer.to_le_bytes())?;
        }
    }
}

fn reap(children: &mut HashMap<libc::pid_t, OwnedFd>) {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a writable c_int; WNOHANG keeps the call from blocking.
        let pid = match cvt_retry(|| unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) }) {
            Ok(pid) if pid > 0 => pid,
            _ => return,
        };
        if let Some(fd) = children.remove(&pid) {
            let mut pipe = std::fs::File::from(fd);
            let _ = pipe.write_all(&decode_status(status).to_le_bytes());
        }
    }
}
