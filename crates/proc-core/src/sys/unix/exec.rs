//! How a new process starts: `posix_spawn` of the program with its channel, or `fork`.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::channel::{Channel, RawHandle};
use super::child::Child;
use super::cvt;
use super::forkserver;
use super::os::exit_now;
use crate::sys::Daemonic;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a nul byte in an argument"))
}

/// The program that children re-execute: the very file this process runs.
pub(crate) fn default_executable() -> io::Result<PathBuf> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // `/proc/self/exe` names the running file even after it was replaced on disk.
        Ok(PathBuf::from("/proc/self/exe"))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        std::env::current_exe()
    }
}

/// Starts `exe` with `role` in the child environment variable and `child_end` as its channel.
pub(crate) fn spawn(exe: &Path, role: &str, child_end: &Channel) -> io::Result<Child> {
    let source = child_end.raw();
    let target: RawFd = if source == 3 { 4 } else { 3 };

    let path = cstring(exe.as_os_str().as_bytes())?;
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| exe.as_os_str().to_owned());
    let argv0 = cstring(argv0.as_bytes())?;
    let argv = [argv0.as_ptr(), std::ptr::null()];

    let mut env: Vec<CString> = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == crate::sys::CHILD_ENV {
            continue;
        }
        let mut entry = key.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        if let Ok(entry) = CString::new(entry) {
            env.push(entry);
        }
    }
    env.push(cstring(
        format!("{}={role}:{target}", crate::sys::CHILD_ENV).as_bytes(),
    )?);
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    // SAFETY: the file actions and attributes are initialised before use and destroyed on
    // every path; all pointers passed to posix_spawn point at nul-terminated strings and
    // null-terminated arrays that outlive the call.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check_spawn(libc::posix_spawn_file_actions_init(&mut actions))?;
        if let Err(e) = check_spawn(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let result = (|| {
            // dup2 onto another number clears close-on-exec on the copy only.
            check_spawn(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                source,
                target,
            ))?;
            // Start the child with no blocked signals, whatever the calling thread blocks,
            // so that terminate() always reaches it.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check_spawn(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
            check_spawn(libc::posix_spawnattr_setflags(
                &mut attr,
                libc::POSIX_SPAWN_SETSIGMASK as _,
            ))?;
            let mut pid: libc::pid_t = 0;
            check_spawn(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            ))?;
            Ok(pid)
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result.map(Child::direct)
    }
}

fn check_spawn(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The descriptor of this process's own channel to its parent, once it is a child.
static PARENT_CHANNEL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Notes this child's channel to its parent, so that a forked child of ours closes its copy
/// (otherwise our parent would not see our channel close when we die).
pub(crate) fn remember_parent_channel(channel: &Channel, _daemonic: Daemonic) {
    PARENT_CHANNEL.store(channel.raw(), std::sync::atomic::Ordering::Relaxed);
}

/// Forks; the child runs `child` and leaves with its return value as exit code.
///
/// In the child, the descriptors that belong to the parent's role are closed first: the
/// parent's end of the new child's channel (`parent_end`) and of its other children's
/// (`inherited_links`), the parent's own channel to its parent, and its connection to the
/// fork server. Everything else is inherited, as with any
/// fork. The caller makes sure that this process has a single thread.
pub(crate) fn fork(
    parent_end: &Channel,
    inherited_links: &[RawHandle],
    child: impl FnOnce() -> i32,
) -> io::Result<Child> {
    super::os::note_before_fork();
    // SAFETY: the caller checked that no other thread exists, so no lock can be held by a
    // thread that is missing in the child; the child only runs `child` and then _exit.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        // Read first: a write would copy the page (each page a forked child writes costs it
        // ~2 µs here), and a top-level parent has no channel to forget.
        let inherited = match PARENT_CHANNEL.load(std::sync::atomic::Ordering::Relaxed) {
            -1 => -1,
            _ => PARENT_CHANNEL.swap(-1, std::sync::atomic::Ordering::Relaxed),
        };
        // SAFETY: both descriptors are this forked child's copies of the parent's links; the
        // objects that own them in the parent's memory are never used or dropped here, because
        // the child leaves through _exit.
        unsafe {
            libc::close(parent_end.raw());
            if inherited >= 0 {
                libc::close(inherited);
            }
            for &fd in inherited_links {
                libc::close(fd);
            }
        }
        forkserver::forget_after_fork();
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(1);
        exit_now(code);
    }
    Ok(Child::direct(pid))
}
