//! Unix: shared memory from `memfd_create` (Linux) or `shm_open` (elsewhere), futexes for
//! sleeping (`futex` on Linux, `_umtx_op` on FreeBSD, `__ulock_wait` on macOS).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cvt;

/// A new anonymous object of `len` bytes, zeroed: memory that no name reaches, which the
/// kernel frees when its last descriptor and mapping are gone, however the processes that
/// held them ended.
pub(crate) fn anonymous_segment(len: usize) -> io::Result<OwnedFd> {
    let fd = anonymous_fd()?;
    // SAFETY: `fd` is a fresh descriptor of ours; ftruncate only sizes the object.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), to_off(len)?) })?;
    seal_size(&fd)?;
    Ok(fd)
}

/// Maps the first `len` bytes of the object behind `fd`, read-write and shared.
///
/// A length larger than the object would fault on first touch, so it is refused here, with
/// `InvalidData`.
pub(crate) fn map_segment(fd: &OwnedFd, len: usize) -> io::Result<NonNull<u8>> {
    if fd_size(fd)? < len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the shared memory segment is smaller than its announced length",
        ));
    }
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
    NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)
}

/// Removes a mapping that [`map_segment`] made.
///
/// # Safety
///
/// `ptr` and `len` must be what one call of [`map_segment`] returned and was given, and
/// nothing may use the memory through `ptr` afterwards.
pub(crate) unsafe fn unmap_segment(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller vouches that this is one whole mapping of ours, no longer used.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

fn to_off(len: usize) -> io::Result<libc::off_t> {
    libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))
}

fn fd_size(fd: &OwnedFd) -> io::Result<usize> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the duration of the call and `st` is writable.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(usize::try_from(st.st_size).unwrap_or(0))
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
/// next touch of the lost pages a SIGBUS, and the kernel refuses that once sealed. The seals
/// are sealed too: nobody can add `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE` later, which would
/// make the next process's writable mapping fail.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn seal_size(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS on a memfd of ours, created with MFD_ALLOW_SEALING; it takes an int.
    cvt(unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
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

/// Why a segment that arrived from another process must not be mapped, if it must not.
///
/// An object that no name reaches (a memfd, or a `shm_open` object whose name is gone) must
/// be sealed against shrinking, as [`anonymous_segment`] seals ours: otherwise the peer that
/// sent it may keep a descriptor, truncate the object, and turn this process's next touch of
/// the lost pages into a SIGBUS. An object that still has a name (a named segment, a file) is
/// trusted as its name is: whoever may open it may resize it, as with any shared file.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn refuse_arrived_segment(fd: &OwnedFd) -> io::Result<Option<&'static str>> {
    // SAFETY: F_GET_SEALS only reads the seals of an open descriptor; it fails with EINVAL
    // on objects that cannot have seals.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_SHRINK != 0 {
        return Ok(None);
    }
    // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the duration of the call and `st` is writable.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok((st.st_nlink == 0).then_some(
        "the shared memory segment that arrived is not sealed against shrinking \
         (F_SEAL_SHRINK), so its sender could truncate it under this process; \
         send a segment made by Segment::anonymous, or a named one",
    ))
}

/// The other Unixes have no seals on `shm_open` objects: a segment that arrives is trusted
/// not to be truncated by the processes that hold it.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn refuse_arrived_segment(_fd: &OwnedFd) -> io::Result<Option<&'static str>> {
    Ok(None)
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

/// A new `shm_open` object of `len` bytes under `name` (a leading slash is added where it is
/// missing); fails with `AlreadyExists` if the name is taken. The caller removes the name
/// should the new object not map.
pub(crate) fn create_named_segment(name: &str, len: usize) -> io::Result<OwnedFd> {
    let path = shm_path(name)?;
    let file = File::from(shm_open(
        &path,
        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
    )?);
    // The name is ours from here on: a failure to size the object must not leave it behind.
    if let Err(e) = file.set_len(len as u64) {
        // SAFETY: `path` is a valid C string naming the object we created.
        unsafe { libc::shm_unlink(path.as_ptr()) };
        return Err(e);
    }
    Ok(OwnedFd::from(file))
}

/// The existing `shm_open` object under `name`, and its length.
pub(crate) fn open_named_segment(name: &str) -> io::Result<(OwnedFd, usize)> {
    let file = File::from(shm_open(&shm_path(name)?, libc::O_RDWR)?);
    let len = usize::try_from(file.metadata()?.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the shared memory segment is too large to map",
        )
    })?;
    Ok((OwnedFd::from(file), len))
}

/// Removes the name of a segment.
pub(crate) fn unlink_named_segment(name: &str) -> io::Result<()> {
    let path = shm_path(name)?;
    // SAFETY: `path` is a valid C string.
    cvt(unsafe { libc::shm_unlink(path.as_ptr()) }).map(drop)
}

/// The POSIX name of a segment: a leading slash, then the user's name.
fn shm_path(name: &str) -> io::Result<CString> {
    CString::new(format!("/{}", name.trim_start_matches('/')))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

/// `shm_open` of `path` with `flags` (and close-on-exec), readable and writable by this user
/// only when it creates the object.
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
