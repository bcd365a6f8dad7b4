//! Unix: shared memory from `memfd_create` (Linux) or `shm_open` (elsewhere), futexes for
//! sleeping (`futex` on Linux, `_umtx_op` on FreeBSD, `__ulock_wait` on macOS).

use std::ffi::CString;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use proc_core::Handle;
use serde::{Deserialize, Serialize};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A mapping of shared memory and the descriptor that can send it to another process.
pub(crate) struct Segment {
    handle: Handle,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with other processes anyway; `Segment` never
// hands out references to it, only the pointer, whose users synchronize on their own.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`: `&Segment` only gives the pointer and the length.
unsafe impl Sync for Segment {}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("handle", &self.handle)
            .field("len", &self.len)
            .finish()
    }
}

impl Segment {
    /// Memory that no name reaches: the kernel frees it when its last descriptor and mapping
    /// are gone, however the processes that held them ended.
    pub(crate) fn anonymous(len: usize) -> io::Result<Segment> {
        let fd = anonymous_fd()?;
        // SAFETY: `fd` is a fresh descriptor of ours; ftruncate only sizes the object.
        cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), to_off(len)?) })?;
        seal_size(&fd)?;
        Segment::map(fd, len)
    }

    /// A new segment under `name`; fails if the name exists.
    pub(crate) fn create_named(name: &str, len: usize) -> io::Result<Segment> {
        let path = shm_path(name)?;
        let fd = shm_open(&path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL)?;
        // SAFETY: `fd` is the object we just created; ftruncate only sizes it.
        if let Err(e) = cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), to_off(len)?) }) {
            // SAFETY: `path` is a valid C string naming the object we created.
            unsafe { libc::shm_unlink(path.as_ptr()) };
            return Err(e);
        }
        Segment::map(fd, len)
    }

    /// The existing segment under `name`, all of it.
    pub(crate) fn open_named(name: &str) -> io::Result<Segment> {
        let fd = shm_open(&shm_path(name)?, libc::O_RDWR)?;
        let len = fd_size(fd.as_raw_fd())?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared memory segment is empty",
            ));
        }
        Segment::map(fd, len)
    }

    /// Maps a segment whose descriptor came from another process.
    pub(crate) fn from_handle(handle: Handle, len: usize) -> io::Result<Segment> {
        let fd = OwnedFd::from(handle);
        // A length larger than the object would fault on first touch: refuse it here.
        if len == 0 || fd_size(fd.as_raw_fd())? < len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared memory segment is smaller than its announced length",
            ));
        }
        Segment::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Segment> {
        // SAFETY: a fresh shared mapping of `len` bytes of an object at least that long;
        // the kernel picks the address, so nothing of ours is overwritten.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Segment {
            handle: Handle::from(fd),
            ptr: NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?,
            len,
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this address and length, and the users
        // of the pointer are gone with the last reference to this segment.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn to_off(len: usize) -> io::Result<libc::off_t> {
    libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))
}

fn fd_size(fd: RawFd) -> io::Result<usize> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the duration of the call and `st` is writable.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(usize::try_from(st.st_size).unwrap_or(0))
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

#[cfg(any(target_os = "linux", target_os = "android"))]
fn anonymous_fd() -> io::Result<OwnedFd> {
    // SAFETY: the name is a valid C string; the descriptor returned is ours alone.
    let fd = cvt(unsafe {
        libc::memfd_create(
            c"procs-shm".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    })?;
    // SAFETY: memfd_create just created this descriptor for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Fixes the size of a sized anonymous segment for good: every process maps all of it, so
/// a holder that shrank it (by mistake, or a peer that means harm) would make the others'
/// next touch of the lost pages a SIGBUS, and the kernel refuses that once sealed.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn seal_size(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS on a memfd of ours, created with MFD_ALLOW_SEALING; it takes an int.
    cvt(unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
        )
    })
    .map(drop)
}

/// Elsewhere anonymous segments are `shm_open` objects, which have no seals; the name is gone
/// before anyone else could open them, so only the processes they are sent to can resize them.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn seal_size(_fd: &OwnedFd) -> io::Result<()> {
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn anonymous_fd() -> io::Result<OwnedFd> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        // Short enough for macOS's 31-byte limit; unique enough with O_EXCL as the judge.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "/procs.{:x}.{:x}.{:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            nanos & 0xfffff
        );
        let path = CString::new(name).expect("no NUL in a formatted name");
        match shm_open(&path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) {
            Ok(fd) => {
                // The name is gone at once: only descriptors and mappings keep the memory.
                // SAFETY: `path` is a valid C string naming the object we created.
                unsafe { libc::shm_unlink(path.as_ptr()) };
                return Ok(fd);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
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

/// Sleeping on words in shared memory. Futexes need nothing but the address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Parkers;

impl Parkers {
    pub(crate) fn new(_words: usize) -> io::Result<Parkers> {
        Ok(Parkers)
    }

    /// Sleeps while `word` holds `expected`, at most `timeout`; may return spuriously.
    pub(crate) fn wait(
        &self,
        _index: usize,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
    ) {
        futex_wait(word, expected, timeout);
    }

    /// Wakes at most `n` sleepers of `word` (all with `u32::MAX`).
    pub(crate) fn wake(&self, _index: usize, word: &AtomicU32, n: u32) {
        futex_wake(word, n);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: a shared (not private) futex wait on a live atomic word; the kernel reads the
    // word and the timeout only. EINTR, EAGAIN and ETIMEDOUT all mean "look again".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn futex_wake(word: &AtomicU32, n: u32) {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    // SAFETY: a shared futex wake on a live atomic word; it touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

#[cfg(target_os = "freebsd")]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let mut ts = timeout.map(timespec);
    let (size, ts_ptr) = match ts.as_mut() {
        Some(ts) => (
            std::mem::size_of::<libc::timespec>() as *mut libc::c_void,
            (ts as *mut libc::timespec).cast(),
        ),
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    // SAFETY: UMTX_OP_WAIT_UINT (the shared variant) on a live atomic word, with a relative
    // timeout whose size is passed as `uaddr`, as _umtx_op(2) asks.
    unsafe {
        libc::_umtx_op(
            word.as_ptr().cast(),
            libc::UMTX_OP_WAIT_UINT,
            libc::c_ulong::from(expected),
            size,
            ts_ptr,
        )
    };
}

#[cfg(target_os = "freebsd")]
fn futex_wake(word: &AtomicU32, n: u32) {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    // SAFETY: UMTX_OP_WAKE (the shared variant) on a live atomic word.
    unsafe {
        libc::_umtx_op(
            word.as_ptr().cast(),
            libc::UMTX_OP_WAKE,
            n as libc::c_ulong,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

#[cfg(target_vendor = "apple")]
mod ulock {
    //! Darwin's futex, which libc does not declare: the same calls that the standard library
    //! and libc++ use, in their shared (cross-process) form.
    pub(super) const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;
    pub(super) const ULF_WAKE_ALL: u32 = 0x100;
    unsafe extern "C" {
        pub(super) fn __ulock_wait(
            operation: u32,
            addr: *mut libc::c_void,
            value: u64,
            timeout_us: u32,
        ) -> libc::c_int;
        pub(super) fn __ulock_wake(
            operation: u32,
            addr: *mut libc::c_void,
            wake_value: u64,
        ) -> libc::c_int;
    }
}

#[cfg(target_vendor = "apple")]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    // Zero means "forever" to __ulock_wait: a bounded wait is at least a microsecond.
    let micros = timeout.map_or(0, |t| {
        u32::try_from(t.as_micros()).unwrap_or(u32::MAX).max(1)
    });
    // SAFETY: a shared compare-and-wait on a live atomic word.
    unsafe {
        ulock::__ulock_wait(
            ulock::UL_COMPARE_AND_WAIT_SHARED,
            word.as_ptr().cast(),
            u64::from(expected),
            micros,
        )
    };
}

#[cfg(target_vendor = "apple")]
fn futex_wake(word: &AtomicU32, n: u32) {
    let op = if n > 1 {
        ulock::UL_COMPARE_AND_WAIT_SHARED | ulock::ULF_WAKE_ALL
    } else {
        ulock::UL_COMPARE_AND_WAIT_SHARED
    };
    // SAFETY: a shared wake on a live atomic word.
    unsafe { ulock::__ulock_wake(op, word.as_ptr().cast(), 0) };
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_vendor = "apple"
)))]
fn futex_wait(_word: &AtomicU32, _expected: u32, timeout: Option<Duration>) {
    // Without a futex, sleep briefly and let the caller look again.
    std::thread::sleep(timeout.map_or(Duration::from_millis(1), |t| {
        t.min(Duration::from_millis(1))
    }));
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_vendor = "apple"
)))]
fn futex_wake(_word: &AtomicU32, _n: u32) {}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// Whether process `pid` still runs. A zombie (killed, not yet reaped) counts as ended.
///
/// A recycled pid makes a dead process look alive; pids are reused only after the whole
/// range has been gone through, so this stays theoretical.
pub(crate) fn pid_alive(pid: u32) -> bool {
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

/// The cached pid of this process; 0 until first asked and again in a forked child.
static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn forget_pid() {
    PID.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// This process's id, cheaply: locks store it as their owner on every acquire, and
/// `getpid` is a system call. A fork handler forgets it in the child.
pub(crate) fn pid() -> u32 {
    use std::sync::atomic::Ordering;
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe, as a
        // handler that runs in a forked child must be.
        unsafe { libc::pthread_atfork(None, None, Some(forget_pid)) };
    });
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}
