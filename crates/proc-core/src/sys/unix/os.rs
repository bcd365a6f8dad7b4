//! Facts about processes and this process's place among them: pids, start times, threads,
//! memory, signals' names, exit and fork handlers, and the static the loader calls before
//! `main`.

use std::io::{self, Read, Write};

/// Leaves the process at once, without running exit handlers or destructors.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// How many threads this process has, when the platform can tell.
pub(crate) fn thread_count() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // The answer that every fork wants, one, comes from a system call that does nothing:
        // `unshare` of the address space succeeds only while no other thread (or process)
        // shares it, and then has nothing to unshare. It fails with EINVAL otherwise, and with
        // EPERM under a seccomp filter that forbids it; then procfs counts. (The `stat` of
        // procfs costs ~8 µs here, this ~0.3 µs, and it runs before every fork.)
        // SAFETY: unshare takes flags only; with CLONE_VM alone it changes nothing when it
        // succeeds (the kernel has no address space to copy for a process that shares none).
        if unsafe { libc::unshare(libc::CLONE_VM) } == 0 {
            return Some(1);
        }
        // procfs gives the task directory two links plus one per thread: one `stat` where
        // listing the directory takes five system calls.
        use std::os::unix::fs::MetadataExt;
        let links = std::fs::metadata("/proc/self/task").ok()?.nlink();
        usize::try_from(links.checked_sub(2)?).ok()
    }
    #[cfg(target_vendor = "apple")]
    {
        let mut info: libc::proc_taskinfo = unsafe_zeroed();
        let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
        // SAFETY: `info` is a writable proc_taskinfo of exactly `size` bytes.
        let got = unsafe {
            libc::proc_pidinfo(
                libc::getpid(),
                libc::PROC_PIDTASKINFO,
                0,
                (&mut info as *mut libc::proc_taskinfo).cast(),
                size,
            )
        };
        (got == size).then_some(info.pti_threadnum as usize)
    }
    #[cfg(target_os = "freebsd")]
    {
        // SAFETY: getpid has no preconditions.
        let info = kinfo_proc(unsafe { libc::getpid() })?;
        Some(info.ki_numthreads as usize)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    )))]
    {
        None
    }
}

#[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs of integers, for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Flushes what the standard streams buffer, so that a forked child does not write it twice.
///
/// Only stdout: Rust's stderr buffers nothing, and locking it to flush nothing would write to
/// its page, which a forked child then has to copy.
pub(crate) fn flush_std_streams() {
    let _ = io::stdout().flush();
}

/// How many low bits of a 32-bit lock word a pid needs: every pid that the kernel gives out
/// fits in them, which leaves the other bits to tell processes of one pid apart. Linux and
/// Android give pids below `PID_MAX_LIMIT`, 2^22; macOS and FreeBSD at most `PID_MAX`, 99999,
/// below 2^17. The other Unixes tell no start times, so their pids keep all 32 bits.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const PID_BITS: u32 = 22;

#[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
pub(crate) const PID_BITS: u32 = 17;

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
)))]
pub(crate) const PID_BITS: u32 = 32;

pub(crate) fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// The resident memory of this process in bytes: the current size on Linux, the peak size
/// elsewhere (`getrusage` is all they offer without extra privileges).
pub(crate) fn resident_memory() -> Option<u64> {
    if cfg!(target_os = "linux") {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: `sysconf` only reads a configuration value.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        return u64::try_from(page).ok().map(|page| pages * page);
    }
    // SAFETY: `rusage` is plain data, and `getrusage` fills it for this process.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // macOS counts bytes, the BSDs kibibytes.
    Some(if cfg!(target_os = "macos") {
        max
    } else {
        max * 1024
    })
}

pub(crate) fn getppid() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// Whether process `pid` still runs (it may belong to another user). A zombie (ended, not
/// yet reaped) counts as ended.
///
/// A recycled pid makes a dead process look alive; pids are reused only after the whole
/// range has been gone through, so this stays theoretical.
pub(crate) fn pid_alive(pid: u32) -> bool {
    // A pid beyond `pid_t` names no process; cast, it would name a process group.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let ret = unsafe { libc::kill(pid, 0) };
    let exists = ret == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_zombie(pid: libc::pid_t) -> bool {
    // The state follows the command name, which may hold spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X']))
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_zombie(_pid: libc::pid_t) -> bool {
    false
}

/// When process `pid` started, in a unit of the platform's (Linux: clock ticks since boot,
/// field 22 of `/proc/<pid>/stat`; macOS and FreeBSD: microseconds since the epoch): the
/// same each time for one process, different for a later process that got the same pid.
/// `None` when no such process can be seen, or the platform cannot tell.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count fields after its last `)`,
    // from the state, which is field 3.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(target_vendor = "apple")]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let mut info: libc::proc_bsdinfo = unsafe_zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a writable proc_bsdinfo of exactly `size` bytes.
    let got = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (got == size).then(|| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

#[cfg(target_os = "freebsd")]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let info = kinfo_proc(libc::pid_t::try_from(pid).ok()?)?;
    let secs = u64::try_from(info.ki_start.tv_sec).ok()?;
    let micros = u64::try_from(info.ki_start.tv_usec).ok()?;
    Some(secs * 1_000_000 + micros)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
)))]
pub(crate) fn start_time(_pid: u32) -> Option<u64> {
    None
}

/// The kernel's record of process `pid`.
#[cfg(target_os = "freebsd")]
fn kinfo_proc(pid: libc::pid_t) -> Option<libc::kinfo_proc> {
    let mut info: libc::kinfo_proc = unsafe_zeroed();
    let mut len = std::mem::size_of::<libc::kinfo_proc>();
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    // SAFETY: `info` is writable for `len` bytes and `mib` names four integers.
    let ret = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            (&mut info as *mut libc::kinfo_proc).cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    // A pid that names no process gives no record, with success.
    (ret == 0 && len == std::mem::size_of::<libc::kinfo_proc>()).then_some(info)
}

/// Fills `buf` from the kernel's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "an unnamed signal",
    }
}

/// Runs `handler` when the process leaves through `exit` (or returns from `main`).
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function that lives as long as the program.
    unsafe {
        libc::atexit(handler);
    }
}

/// Runs `handler` in the child of every `fork` of this process, before `fork` returns there.
/// The handler must be async-signal-safe, as everything a forked child runs before `exec`.
pub(crate) fn at_fork_child(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function that lives as long as the program; the caller
    // gives one that is async-signal-safe.
    unsafe {
        libc::pthread_atfork(None, None, Some(handler));
    }
}

/// Whether SIGPIPE was ignored when this process last forked (see [`note_before_fork`]).
static SIGPIPE_IGNORED_AT_FORK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Notes, in a parent about to fork, whether it ignores SIGPIPE, so that the forked child,
/// which inherits the disposition, can skip setting it: a system call in the parent instead
/// of one in the child plus the pages of libc it would touch (each a fault in a new child).
pub(super) fn note_before_fork() {
    // SAFETY: a null new action only reads the disposition into `old`, a zeroed sigaction.
    let ignored = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    };
    // Stored only when it changed: every page the parent writes after a fork (the previous
    // child's) is a page fault, and this flag shares its page with nothing else it writes.
    if SIGPIPE_IGNORED_AT_FORK.load(std::sync::atomic::Ordering::Relaxed) != ignored {
        SIGPIPE_IGNORED_AT_FORK.store(ignored, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sets up a child before it runs user code the way Rust's runtime sets up `main`:
/// writing to a closed pipe is an error, not a fatal signal.
pub(crate) fn prepare_child() {
    // A forked child whose parent ignored SIGPIPE ignores it already. In a child that was
    // not forked by `fork` (spawned, or forked by the fork server) the flag is false.
    if SIGPIPE_IGNORED_AT_FORK.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Blocks `sig` for the calling thread: one sent to it waits, pending, until unblocked.
pub(super) fn block_signal(sig: libc::c_int) -> io::Result<()> {
    change_signal_mask(libc::SIG_BLOCK, sig)
}

/// Unblocks `sig` for the calling thread; one pending is delivered now.
pub(super) fn unblock_signal(sig: libc::c_int) -> io::Result<()> {
    change_signal_mask(libc::SIG_UNBLOCK, sig)
}

fn change_signal_mask(how: libc::c_int, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: the set is initialised by sigemptyset before use, and the old mask is not
    // asked for.
    let ret = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// Whether an error from writing to a child means only that the child is gone.
pub(crate) fn is_peer_gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EPIPE) | Some(libc::ECONNRESET)
    )
}

/// Declares `static $name: extern "C" fn() = $f;` where the loader finds it and calls it
/// before `main`, so that children of test binaries (whose `main` is libtest's) and of programs
/// that forgot `procs::init()` still serve their parent. The caller keeps the static reachable
/// (`black_box`), so that the linker keeps the object that holds it.
macro_rules! before_main {
    ($(#[$attr:meta])* static $name:ident = $f:path;) => {
        $(#[$attr])*
        #[used]
        #[cfg_attr(
            any(target_os = "linux", target_os = "android", target_os = "freebsd"),
            unsafe(link_section = ".init_array")
        )]
        #[cfg_attr(
            target_vendor = "apple",
            unsafe(link_section = "__DATA,__mod_init_func")
        )]
        pub(crate) static $name: extern "C" fn() = $f;
    };
}
pub(crate) use before_main;

#[cfg(test)]
mod tests {
    /// Whether `sig` is in the calling thread's signal mask.
    fn is_blocked(sig: libc::c_int) -> bool {
        // SAFETY: `mask` is a writable sigset_t, and no signal is changed (the set is null).
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask),
                0
            );
            libc::sigismember(&mask, sig) == 1
        }
    }

    #[test]
    fn a_signal_is_blocked_and_unblocked_for_the_calling_thread() {
        // On a thread of its own: the mask is per thread (and inherited by threads started
        // meanwhile), so the test harness's threads keep theirs.
        std::thread::spawn(|| {
            assert!(!is_blocked(libc::SIGUSR2));
            super::block_signal(libc::SIGUSR2).unwrap();
            assert!(is_blocked(libc::SIGUSR2));
            super::unblock_signal(libc::SIGUSR2).unwrap();
            assert!(!is_blocked(libc::SIGUSR2));
        })
        .join()
        .unwrap();
    }

    // A forked child of the (multi-threaded) test harness has one thread: the count of a
    // single-threaded process, where `unshare` answers. The child only calls unshare and
    // _exit, which are async-signal-safe: where unshare is refused (a seccomp filter) it
    // leaves with 2 before `thread_count`'s procfs fallback, which allocates, and could wait
    // forever for an allocator lock that a harness thread held at the fork.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_forked_child_counts_one_thread() {
        // SAFETY: the child runs only async-signal-safe calls (unshare, the return of
        // `thread_count` on its success, _exit) before it leaves; the locks of the harness's
        // threads that it lacks are never taken.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as in `thread_count`: with CLONE_VM alone it changes nothing.
            if unsafe { libc::unshare(libc::CLONE_VM) } != 0 {
                super::exit_now(2);
            }
            let code = match super::thread_count() {
                Some(1) => 0,
                _ => 1,
            };
            super::exit_now(code);
        }
        assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: `status` is a writable c_int, and `pid` is our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        match libc::WEXITSTATUS(status) {
            0 => {}
            2 => eprintln!("SKIPPED: unshare(CLONE_VM) is refused here; procfs counts threads"),
            _ => panic!("the child did not count one thread"),
        }
    }

    #[test]
    fn thread_count_sees_a_new_thread() {
        let before = super::thread_count().expect("this platform can count threads");
        assert!(before >= 1);
        let (started, wait) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            started.send(()).unwrap();
            let _ = stopped.recv();
        });
        wait.recv().unwrap();
        // Other tests run on threads of their own, so only a lower bound is certain.
        assert!(super::thread_count().unwrap() >= 2);
        stop.send(()).unwrap();
        thread.join().unwrap();
    }
}
