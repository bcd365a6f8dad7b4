//! Unix: named segments are `shm_open` objects, mapped by `proc_core::shared::Segment`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use proc_core::Handle;
use proc_core::Result;
use proc_core::shared::Segment;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new segment of `len` bytes under `name`; fails if the name exists.
pub(crate) fn create_named(name: &str, len: usize) -> Result<Segment> {
    let path = shm_path(name)?;
    let file = File::from(shm_open(
        &path,
        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
    )?);
    // The name is ours from here on: a failure to size or map the object must not leave it
    // behind.
    let segment = file
        .set_len(len as u64)
        .map_err(proc_core::Error::from)
        .and_then(|()| Segment::from_handle(Handle::from(file), len));
    if segment.is_err() {
        // SAFETY: `path` is a valid C string naming the object we created.
        unsafe { libc::shm_unlink(path.as_ptr()) };
    }
    segment
}

/// The existing segment under `name`, all of it.
pub(crate) fn open_named(name: &str) -> Result<Segment> {
    let file = File::from(shm_open(&shm_path(name)?, libc::O_RDWR)?);
    let len = usize::try_from(file.metadata()?.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the shared memory segment is too large to map",
        )
    })?;
    // An empty object (one that its creator has not sized yet) is refused there.
    Segment::from_handle(Handle::from(file), len)
}

/// The POSIX name of a segment: a leading slash, then the user's name.
fn shm_path(name: &str) -> io::Result<CString> {
    CString::new(format!("/{}", name.trim_start_matches('/')))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

fn shm_open(path: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(target_vendor = "apple")]
    let mode = 0o600 as libc::c_uint;
    #[cfg(not(target_vendor = "apple"))]
    let mode = 0o600 as libc::mode_t;
    // SAFETY: `path` is a valid C string; the descriptor returned is ours alone.
    let fd = cvt(unsafe { libc::shm_open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: shm_open just created this descriptor for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes the name of a segment.
pub(crate) fn unlink_named(name: &str) -> io::Result<()> {
    let path = shm_path(name)?;
    // SAFETY: `path` is a valid C string.
    cvt(unsafe { libc::shm_unlink(path.as_ptr()) }).map(drop)
}

/// Whether the creator removes a named segment when its last handle in the creating process
/// drops: where no tracker watches for the end of every user.
pub(crate) const UNLINK_ON_DROP: bool = !cfg!(any(target_os = "linux", target_os = "android"));

/// Starts a watcher that removes `name` once every copy of the returned handle is closed —
/// by its holders dropping it, or by the kernel when they end, killed or not.
///
/// The watcher is a small shell started in its own process group, so that a Ctrl-C meant
/// for the program does not end it first; it reads its end of a pipe until end of file and
/// then removes the segment's file in `/dev/shm`. A line on the pipe (from `untrack`) means
/// that the segment was unlinked already, and the watcher leaves without touching the name.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn track(name: &str) -> io::Result<Option<Handle>> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    const WATCHER: &str = "exec 3<&0 </dev/null; \
        ( if ! read -r _ <&3; then rm -f -- \"$1\"; fi ) >/dev/null 2>&1 & exit 0";
    let (reader, writer) = std::io::pipe()?;
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    let status = Command::new("/bin/sh")
        .args(["-c", WATCHER, "procs-shm-tracker", &path])
        .stdin(Stdio::from(reader))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "the shared memory tracker did not start ({status})"
        )));
    }
    Ok(Some(Handle::from(writer)))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn track(_name: &str) -> io::Result<Option<Handle>> {
    Ok(None)
}

/// Tells the watcher of `track` that the name is gone already.
pub(crate) fn untrack(tracker: &Handle) {
    let Ok(copy) = tracker.try_clone() else {
        return;
    };
    let mut pipe = std::io::PipeWriter::from(copy);
    // A watcher that left already closed the pipe: nothing to tell it then.
    let _ = pipe.write_all(b"\n");
}
