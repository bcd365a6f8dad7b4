//! Unix: what removes the name of a named segment (a `shm_open` object, made by
//! `proc_core::internal::create_named_segment`) once every process that used it has ended.

use std::io::{self, Write};

use proc_core::Handle;

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
