//! Panics caught with their message and location.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::error::Error;

/// A caught panic: what `Error::Panicked` carries across threads and processes.
///
/// # Examples
///
/// ```
/// let panic = proc_core::internal::unwind::catch(|| panic!("boom")).unwrap_err();
/// assert_eq!(panic.message, "boom");
/// assert!(panic.location.unwrap().contains(".rs:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The panic message (`Box<dyn Any>` when it was not a string).
    pub message: String,
    /// `file:line:column` of the panic, when known.
    pub location: Option<String>,
}

impl From<Panic> for Error {
    fn from(panic: Panic) -> Error {
        Error::Panicked {
            message: panic.message,
            location: panic.location,
        }
    }
}

/// An error that happened in another process (a pool worker, an MPI rank), as it travels
/// back to the one that asked: a panic, or a failure told in words.
///
/// # Examples
///
/// ```
/// use proc_core::internal::unwind::{Remote, catch};
///
/// let remote = Remote::from(catch(|| panic!("in the worker")).unwrap_err());
/// let bytes = proc_core::codec::encode(&remote).unwrap();
/// let back: Remote = proc_core::codec::decode(&bytes).unwrap();
/// assert!(matches!(proc_core::Error::from(back), proc_core::Error::Panicked { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Remote {
    /// The task panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The task could not run or answer (its arguments or result did not encode, say);
    /// arrives as [`Error::Decode`].
    Failed(String),
    /// The other process runs another build and refused to run the task.
    BuildMismatch,
}

impl From<Panic> for Remote {
    fn from(panic: Panic) -> Remote {
        Remote::Panicked {
            message: panic.message,
            location: panic.location,
        }
    }
}

impl From<Remote> for Error {
    fn from(remote: Remote) -> Error {
        match remote {
            Remote::Panicked { message, location } => Error::Panicked { message, location },
            Remote::Failed(message) => Error::Decode(message),
            Remote::BuildMismatch => Error::BuildMismatch,
        }
    }
}

/// Runs `f`, turning a panic into a [`Panic`]. The location is known once the hook that
/// records it is installed, which this does on its first call.
///
/// # Examples
///
/// ```
/// assert_eq!(proc_core::internal::unwind::catch(|| 2 + 2), Ok(4));
/// ```
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    install_hook();
    // Taken before the call, so that a panic caught inside `f` is not reported as ours.
    take_location();
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Panic {
        message: message(&*payload),
        location: take_location(),
    })
}

/// Takes the location the hook recorded on this thread, if it recorded one since the last
/// take. The flag keeps a thread that never panicked from touching `LAST_LOCATION`, whose
/// first use registers a destructor: in a forked child that locks the dynamic loader and
/// writes to its pages, each one a copy of the parent's.
fn take_location() -> Option<String> {
    if !RECORDED.get() {
        return None;
    }
    RECORDED.set(false);
    LAST_LOCATION.with(|l| l.borrow_mut().take())
}

/// The text of a panic payload.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

thread_local! {
    /// Where the last panic on this thread happened: a caught panic is always this thread's.
    static LAST_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether `LAST_LOCATION` holds a location not taken yet (a `Cell<bool>` needs no
    /// destructor, so reading it registers none).
    static RECORDED: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Records where panics happen and still prints them as usual.
///
/// Installed once per program: a parent that forks installs it before the fork, so that the
/// forked child does not have to (every page a forked child writes is a copy).
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                let place = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
                // `try_with`: a panic while thread-locals are torn down has nowhere to go.
                if LAST_LOCATION
                    .try_with(|l| *l.borrow_mut() = Some(place))
                    .is_ok()
                {
                    RECORDED.set(true);
                }
            }
            previous(info);
        }));
    });
}
