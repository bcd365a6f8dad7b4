//! Who this process is: Python's `current_process()`, `parent_process()`, `os.getpid()`...

use std::sync::Mutex;

use crate::method::StartMethod;
use crate::start::Identity;
use crate::sys;

#[derive(Debug)]
struct State {
    me: Identity,
    /// The parent's pid, start time and name.
    parent: Option<(u32, u64, String)>,
    method: Option<StartMethod>,
    children_started: u32,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = guard.get_or_insert_with(|| State {
        me: Identity {
            name: "MainProcess".into(),
            path: Vec::new(),
            daemon: false,
            authkey: new_authkey(),
        },
        parent: None,
        method: None,
        children_started: 0,
    });
    f(state)
}

fn new_authkey() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    if sys::random_bytes(&mut key).is_err() {
        // std's RandomState is seeded from the operating system's randomness as well.
        use std::hash::{BuildHasher, RandomState};
        let state = RandomState::new();
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&state.hash_one(i).to_le_bytes());
        }
    }
    key
}

/// Makes this process the child described by the parent's request.
pub(crate) fn become_child(me: Identity, parent: (u32, u64, String), method: StartMethod) {
    let inherited = STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(State {
            me,
            parent: Some(parent),
            method: Some(method),
            children_started: 0,
        });
    // A forked child's copy of its parent's state: freeing it would write to heap pages that
    // the child then has to copy, for a few bytes.
    std::mem::forget(inherited);
}

/// The identity of the next child of this process.
pub(crate) fn next_child(name: Option<String>, daemon: bool, authkey: Option<Vec<u8>>) -> Identity {
    with_state(|state| {
        state.children_started += 1;
        let mut path = state.me.path.clone();
        path.push(state.children_started);
        let name = name.unwrap_or_else(|| {
            let numbers: Vec<String> = path.iter().map(u32::to_string).collect();
            format!("Process-{}", numbers.join(":"))
        });
        Identity {
            name,
            path,
            daemon,
            authkey: authkey.unwrap_or_else(|| state.me.authkey.clone()),
        }
    })
}

/// This process's pid, start time and name, as a parent tells its children.
pub(crate) fn as_parent() -> (u32, u64, String) {
    // The cached pid (`start_time` caches it): `getpid` is a system call on every start.
    let start = crate::shared::start_time();
    with_state(|state| (crate::shared::pid(), start, state.me.name.clone()))
}

/// What Python's `current_process()` tells: this process's name, pid, daemon flag and key.
///
/// # Examples
///
/// ```
/// let me = proc_core::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.daemon());
/// assert_eq!(me.authkey().len(), 32);
/// ```
#[derive(Debug, Clone)]
pub struct CurrentProcess {
    identity: Identity,
    pid: u32,
    method: Option<StartMethod>,
}

impl CurrentProcess {
    /// The name: `MainProcess`, `Process-N` (`Process-N:M` for a grandchild) or the one given.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// The operating system's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::current_process().pid(), proc_core::getpid());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether this process is daemonic (ends with its parent, may not have children).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!proc_core::current_process().daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.identity.daemon
    }

    /// The authentication key, inherited from the parent unless one was given.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!proc_core::current_process().authkey().is_empty());
    /// ```
    pub fn authkey(&self) -> &[u8] {
        &self.identity.authkey
    }

    /// The place in the process tree: empty for the main process, `[2, 1]` for the first
    /// child of the main process's second child.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(proc_core::current_process().identity().is_empty());
    /// ```
    #[doc(alias = "_identity")]
    pub fn identity(&self) -> &[u32] {
        &self.identity.path
    }

    /// How this process was started, or `None` for the main process.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(proc_core::current_process().start_method(), None);
    /// ```
    pub fn start_method(&self) -> Option<StartMethod> {
        self.method
    }
}

/// This process: Python's `multiprocessing.current_process()`.
///
/// # Examples
///
/// ```
/// assert_eq!(proc_core::current_process().name(), "MainProcess");
/// ```
pub fn current_process() -> CurrentProcess {
    with_state(|state| CurrentProcess {
        identity: state.me.clone(),
        pid: crate::shared::pid(),
        method: state.method,
    })
}

/// The process that started this one: Python's `multiprocessing.parent_process()`.
///
/// # Examples
///
/// ```
/// assert!(proc_core::parent_process().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ParentProcess {
    pid: u32,
    /// When the parent started (0 if unknown), so that its pid given to another process
    /// after its death does not make it look alive.
    start: u64,
    name: String,
}

impl ParentProcess {
    /// The parent's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// fn parent_pid(_: ()) -> Option<u32> {
    ///     proc_core::parent_process().map(|p| p.pid())
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(parent_pid, ()).unwrap();
    ///     assert_eq!(p.join().unwrap(), Some(std::process::id()));
    /// }
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The parent's name.
    ///
    /// # Examples
    ///
    /// ```
    /// fn parent_name(_: ()) -> Option<String> {
    ///     proc_core::parent_process().map(|p| p.name().to_string())
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::spawn(parent_name, ()).unwrap();
    ///     assert_eq!(p.join().unwrap().as_deref(), Some("MainProcess"));
    /// }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent still runs.
    ///
    /// The parent is known by its pid and its start time
    /// ([`pid_alive_since`](crate::shared::pid_alive_since)), so a parent that died is not
    /// taken for alive once its pid went to another process.
    ///
    /// # Examples
    ///
    /// ```
    /// fn parent_alive(_: ()) -> bool {
    ///     proc_core::parent_process().is_some_and(|p| p.is_alive())
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     assert!(proc_core::Process::spawn(parent_alive, ()).unwrap().join().unwrap());
    /// }
    /// ```
    pub fn is_alive(&self) -> bool {
        crate::shared::pid_alive_since(self.pid, self.start)
    }
}

/// The process that started this one, or `None` in the main process.
///
/// # Examples
///
/// ```
/// assert!(proc_core::parent_process().is_none());
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    with_state(|state| {
        state
            .parent
            .clone()
            .map(|(pid, start, name)| ParentProcess { pid, start, name })
    })
}

/// How many CPUs this process may use (affinity and cgroup quotas included): Python's
/// `os.process_cpu_count()`, the right size for a pool.
///
/// # Examples
///
/// ```
/// assert!(proc_core::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// This process's id: Python's `os.getpid()`.
///
/// # Examples
///
/// ```
/// assert_eq!(proc_core::getpid(), std::process::id());
/// ```
pub fn getpid() -> u32 {
    sys::getpid()
}

/// The id of the process that started this one: Python's `os.getppid()`, as its tutorials
/// use it in a child.
///
/// For a child started with [`StartMethod::ForkServer`] this is the process that asked for
/// the child (the pid of [`parent_process`]), although the fork server forked it. On Linux
/// with glibc the operating system agrees (the server forks the child as the asking
/// process's own); elsewhere it names the server as the parent, and `libc::getppid()` tells
/// that. For every other process it is the operating system's parent.
///
/// # Platform-specific behavior
///
/// The operating system's parent of a process whose parent died is another process (init or
/// a subreaper on Unix); the logical parent of a fork server's child stays the one that
/// asked for it, as [`parent_process`] does. On Windows this is the pid of the creating
/// process, looked up in the process snapshot.
///
/// # Examples
///
/// ```
/// use proc_core::StartMethod;
///
/// fn parent(_: ()) -> u32 {
///     proc_core::getppid()
/// }
///
/// fn main() {
///     proc_core::init();
///     assert_ne!(proc_core::getppid(), proc_core::getpid());
///     for &method in StartMethod::available() {
///         let mut p = proc_core::Process::builder().start_method(method).spawn(parent, ()).unwrap();
///         assert_eq!(p.join().unwrap(), proc_core::getpid());
///     }
/// }
/// ```
pub fn getppid() -> u32 {
    let logical = with_state(|state| match (state.method, &state.parent) {
        (Some(StartMethod::ForkServer), Some((pid, _, _))) => Some(*pid),
        _ => None,
    });
    logical.unwrap_or_else(sys::getppid)
}
