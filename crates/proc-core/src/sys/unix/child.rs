//! A started child: its exit seen by `waitpid` and pidfd (our own children) or through the
//! fork server's status pipe (the server's), and the signals that end it.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::channel::poll_fd;
use super::os::{pid_alive, start_time};
use super::{cvt, cvt_retry};

/// Python's exit code from a `waitpid` status: the code, or minus the signal number.
pub(super) fn decode_status(status: libc::c_int) -> i32 {
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
        /// Where there is no pidfd: the child's start time, read while its server still
        /// holds it unreaped, so that a recycled pid is not taken for the child.
        start: Option<u64>,
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
    pub(super) fn direct(pid: libc::pid_t) -> Child {
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
    pub(super) fn served(pid: libc::pid_t, status: OwnedFd) -> Child {
        let pidfd = pidfd_open(pid);
        let start = match pidfd {
            Some(_) => None,
            None => start_time(pid as u32),
        };
        Child {
            pid,
            watch: Watch::Server {
                status,
                pidfd,
                start,
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
                start,
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
                    None => !alive_since(self.pid as u32, *start),
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
        // on the common path of every join. A spin, not `yield_now`: on a loaded machine a
        // yield hands whole time slices to busy processes (7.8 ms a join instead of 0.2 ms
        // with three busy loops on two cores). (A spin that turned itself off after a wait
        // the spin would have missed measured no better under load and worse idle.)
        let spin_until = Instant::now() + SPIN.min(timeout.unwrap_or(SPIN));
        while Instant::now() < spin_until {
            std::hint::spin_loop();
            if let Some(code) = self.try_wait()? {
                return Ok(Some(code));
            }
        }
        self.sleep_until_end(remaining)
    }

    /// The sleeping part of [`wait`](Child::wait): on the status pipe or pidfd, or by
    /// looking again and again where there is neither.
    fn sleep_until_end(&self, remaining: impl Fn() -> Option<Duration>) -> io::Result<Option<i32>> {
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
                    // lock and notes the code under it: a pid with no code noted names our
                    // child (ended or not: a pidfd of a child that has ended is readable).
                    let known = self.exitcode.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(code) = *known {
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

/// Whether `pid` runs and, when `start` is known, is the process that started then (not a
/// later one that was given the same pid).
fn alive_since(pid: u32, start: Option<u64>) -> bool {
    pid_alive(pid) && start.is_none_or(|start| start_time(pid).is_none_or(|now| now == start))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A wait for our own child that outlasts the spin sleeps on its pidfd (or looks again)
    // and ends with the child's exit code, which `try_wait` then keeps.
    #[test]
    fn a_wait_past_the_spin_gives_the_exit_code() {
        // SAFETY: the child only sleeps and calls _exit, which are async-signal-safe, so the
        // test harness's threads that it lacks (and their locks) cannot matter.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above; usleep and _exit touch no memory of the parent's.
            unsafe {
                libc::usleep(2_000);
                libc::_exit(7);
            }
        }
        assert!(pid > 0, "fork failed: {}", io::Error::last_os_error());
        let child = Child::direct(pid);
        assert_eq!(child.wait(None).unwrap(), Some(7));
        assert_eq!(child.try_wait().unwrap(), Some(7));
    }

    // What a served child's end is judged by where there is no pidfd: a live pid whose start
    // time is another than the child's is a recycled pid, not the child.
    #[test]
    fn a_live_pid_with_another_start_time_is_not_the_child() {
        let me = std::process::id();
        assert!(alive_since(me, None));
        let Some(start) = start_time(me) else {
            return; // A platform that cannot tell judges by the pid alone.
        };
        assert!(alive_since(me, Some(start)));
        assert!(!alive_since(me, Some(start + 1)));
    }
}
