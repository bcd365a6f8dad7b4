//! A short scheduler time slice around the start of a child, where the kernel offers one.
//!
//! Linux's EEVDF scheduler (6.6 and later; a custom slice since 6.12) lets any thread ask for a
//! shorter time slice with `sched_setattr` (`SCHED_OTHER`, `sched_runtime` in nanoseconds, no
//! privilege needed). A task with a short slice gets an earlier virtual deadline, so when it
//! wakes it is picked (and preempts the running task) sooner, instead of waiting until a busy
//! process has used up its slice. On a loaded machine a start and join is a chain of such
//! wake-ups (the parent's, the child's, the fork server's), each of which could otherwise wait
//! a slice of a busy loop. The setting is inherited across `fork` and `exec`, so the new child
//! runs its start-up with it too, and puts the default back before user code runs
//! ([`leave_inherited`]).
//!
//! Where the kernel refuses (older kernels, a seccomp filter, another system), nothing is done:
//! the first refusal is remembered, and no system call is made for it afterwards.

/// The shortest slice the kernel grants (0.1 ms), which is what a start asks for.
#[cfg(target_os = "linux")]
const SHORT_SLICE_NS: u64 = 100_000;

/// Whether the kernel refused a call, or showed that it has no slice to set: then no start
/// asks again.
#[cfg(target_os = "linux")]
static REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The kernel's `struct sched_attr` up to `sched_period` (`SCHED_ATTR_SIZE_VER0`, 48 bytes),
/// without the utilisation clamps of version 1: a call that does not set
/// `SCHED_FLAG_UTIL_CLAMP` leaves them as they are.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    /// For the fair policies, the slice in nanoseconds (0 asks for the default).
    runtime: u64,
    deadline: u64,
    period: u64,
}

#[cfg(target_os = "linux")]
const _: () = assert!(std::mem::size_of::<SchedAttr>() == 48);

/// `SCHED_FLAG_RESET_ON_FORK`, the one flag that `sched_getattr` reports for a fair policy.
#[cfg(target_os = "linux")]
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

#[cfg(target_os = "linux")]
impl SchedAttr {
    /// The calling thread's scheduling attributes.
    fn of_this_thread() -> std::io::Result<SchedAttr> {
        let mut attr = SchedAttr::default();
        // SAFETY: `attr` is a writable `struct sched_attr` of version 0, whose size is passed:
        // the kernel writes at most that many bytes (and sets `size` to what it wrote). Pid 0
        // is the calling thread, and the flags must be 0.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                &mut attr as *mut SchedAttr,
                std::mem::size_of::<SchedAttr>() as libc::c_uint,
                0 as libc::c_uint,
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(attr)
    }

    /// Sets the calling thread's scheduling attributes to these.
    fn apply(&self) -> std::io::Result<()> {
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            ..*self
        };
        // SAFETY: `attr` is a whole `struct sched_attr` of version 0 whose `size` says so; the
        // kernel only reads it. Pid 0 is the calling thread, and the flags must be 0.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_sched_setattr,
                0,
                &attr as *const SchedAttr,
                0 as libc::c_uint,
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether this is a fair policy, whose slice `runtime` sets: `SCHED_OTHER` or
    /// `SCHED_BATCH` (real-time and idle threads are left alone).
    fn is_fair(&self) -> bool {
        self.policy == libc::SCHED_OTHER as u32 || self.policy == libc::SCHED_BATCH as u32
    }

    /// The same policy, nice value and reset-on-fork flag with a slice of `runtime`.
    fn with_runtime(&self, runtime: u64) -> SchedAttr {
        SchedAttr {
            flags: self.flags & SCHED_FLAG_RESET_ON_FORK,
            priority: 0,
            runtime,
            deadline: 0,
            period: 0,
            ..*self
        }
    }
}

/// The calling thread's attributes when a short slice may be asked for, and `None` without
/// a system call once the kernel refused.
#[cfg(target_os = "linux")]
fn usable() -> Option<SchedAttr> {
    if REFUSED.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    match SchedAttr::of_this_thread() {
        // A kernel before 6.12 reports no slice for a fair policy, and ignores one it is given.
        Ok(attr) if attr.is_fair() && attr.runtime == 0 => {
            refused(&std::io::Error::from(std::io::ErrorKind::Unsupported));
            None
        }
        Ok(attr) => Some(attr),
        Err(e) => {
            refused(&e);
            None
        }
    }
}

/// Remembers that the kernel refused, so that no later start asks again.
#[cfg(target_os = "linux")]
fn refused(e: &std::io::Error) {
    if !REFUSED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::debug!(error = %e, "no short time slice for starts: sched_setattr refused");
    }
}

/// The calling thread runs with the shortest time slice while this lives, and with the slice
/// it had before when it drops (see the module's documentation). Where the kernel has no
/// such slice, or refuses it, or the thread is not under a fair policy or has a slice as short
/// already, it does nothing.
#[must_use = "the slice is put back when the guard drops"]
#[derive(Debug)]
pub(crate) struct ShortSlice {
    /// The thread's attributes before, when the slice was changed.
    #[cfg(target_os = "linux")]
    before: Option<SchedAttr>,
}

impl ShortSlice {
    /// Shortens the calling thread's time slice until the guard drops.
    pub(crate) fn take() -> ShortSlice {
        #[cfg(target_os = "linux")]
        {
            let before = usable().filter(|attr| attr.is_fair() && attr.runtime > SHORT_SLICE_NS);
            let before = before.filter(|attr| match attr.with_runtime(SHORT_SLICE_NS).apply() {
                Ok(()) => true,
                Err(e) => {
                    refused(&e);
                    false
                }
            });
            ShortSlice { before }
        }
        #[cfg(not(target_os = "linux"))]
        {
            ShortSlice {}
        }
    }

    /// Keeps the short slice for the life of the thread: for the fork server, which runs only
    /// our own code, and whose children put the default back before user code.
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for ShortSlice {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(before) = self.before {
            // The slice that `sched_getattr` read, written back as it was (a default slice comes
            // back as an explicit one of the same length: the kernel reports both alike). A
            // failure now (the kernel took the same call a moment ago) leaves the short slice,
            // which only makes this thread's wake-ups quicker.
            if let Err(e) = before.apply() {
                tracing::debug!(error = %e, "could not put the time slice back");
            }
        }
    }
}

/// Puts the default time slice back in a new child that inherited the short one of a start,
/// before user code runs: user code never runs with a slice that procs changed.
///
/// A child that finds another slice (its parent's own, set by the program) keeps it, as it
/// would have without procs. A slice of exactly the shortest one is taken for ours.
pub(crate) fn leave_inherited() {
    #[cfg(target_os = "linux")]
    if let Some(attr) = usable().filter(|attr| attr.is_fair() && attr.runtime == SHORT_SLICE_NS) {
        // A `runtime` of 0 asks for the kernel's default slice.
        if let Err(e) = attr.with_runtime(0).apply() {
            refused(&e);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    // The guard shortens the slice of the thread that takes it and puts back exactly the
    // attributes it read. On a thread of its own, so that the harness's threads keep theirs.
    #[test]
    fn the_guard_shortens_the_slice_and_puts_it_back() {
        std::thread::spawn(|| {
            let before = match SchedAttr::of_this_thread() {
                Ok(attr) => attr,
                Err(e) => return eprintln!("SKIPPED: sched_getattr is refused here: {e}"),
            };
            assert!(before.is_fair(), "a test thread runs under SCHED_OTHER");
            let guard = ShortSlice::take();
            if guard.before.is_none() {
                return eprintln!("SKIPPED: sched_setattr is refused here");
            }
            let during = SchedAttr::of_this_thread().unwrap();
            assert_eq!(during.runtime, SHORT_SLICE_NS);
            assert_eq!(during.nice, before.nice);
            assert_eq!(during.policy, before.policy);
            drop(guard);
            assert_eq!(SchedAttr::of_this_thread().unwrap(), before);
        })
        .join()
        .unwrap();
    }

    // A child that inherited the short slice puts the default back; one with a slice of
    // its own keeps it.
    #[test]
    fn an_inherited_short_slice_is_left_and_another_kept() {
        std::thread::spawn(|| {
            let Ok(default) = SchedAttr::of_this_thread() else {
                return eprintln!("SKIPPED: sched_getattr is refused here");
            };
            assert!(default.is_fair(), "a test thread runs under SCHED_OTHER");
            let shortened = default.with_runtime(SHORT_SLICE_NS).apply().is_ok()
                && SchedAttr::of_this_thread().is_ok_and(|attr| attr.runtime == SHORT_SLICE_NS);
            if !shortened {
                return eprintln!(
                    "SKIPPED: this kernel sets no time slice (before 6.12, or refused)"
                );
            }
            leave_inherited();
            assert_eq!(
                SchedAttr::of_this_thread().unwrap().runtime,
                default.runtime
            );
            let own = default.with_runtime(3 * SHORT_SLICE_NS);
            own.apply().unwrap();
            leave_inherited();
            assert_eq!(SchedAttr::of_this_thread().unwrap().runtime, own.runtime);
            default.with_runtime(0).apply().unwrap();
        })
        .join()
        .unwrap();
    }
}
