//! How a process is set up before it starts: [`Builder`] (Python's `Process(...)` keyword
//! arguments), [`Context`] (Python's `get_context(method)`, a builder's start method) and
//! [`Task`] (Python's subclass-and-`run()`).

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Process, State};
use crate::child;
use crate::current;
use crate::error::Result;
use crate::method::StartMethod;
use crate::spawn;

/// A function and its arguments, to run in a child process: Python's "subclass `Process` and
/// override `run()`".
///
/// The value itself travels to the child (it is the argument), and `run` is called there.
///
/// # Examples
///
/// ```
/// use proc_core::{Process, Task};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Count {
///     to: u32,
/// }
///
/// impl Task for Count {
///     type Output = u32;
///
///     fn run(self) -> u32 {
///         (1..=self.to).sum()
///     }
/// }
///
/// fn main() {
///     proc_core::init();
///     let mut p = Process::spawn_task(Count { to: 10 }).unwrap();
///     assert_eq!(p.join().unwrap(), 55);
/// }
/// ```
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// What `run` returns to the parent.
    type Output: Serialize + DeserializeOwned + 'static;

    /// The work of the child process.
    fn run(self) -> Self::Output;
}

fn run_task<T: Task>(task: T) -> T::Output {
    task.run()
}

/// Settings for a new process: name, daemon flag, start method, authentication key and
/// executable. Setters take `&mut self`, like `std::process::Command`.
///
/// # Examples
///
/// ```
/// use proc_core::{Process, StartMethod};
///
/// fn greet(who: String) -> String {
///     format!("hello {who} from {}", proc_core::current_process().name())
/// }
///
/// fn main() {
///     proc_core::init();
///     let mut p = Process::builder()
///         .name("greeter")
///         .start_method(StartMethod::Spawn)
///         .spawn(greet, "parent".to_string())
///         .unwrap();
///     assert_eq!(p.join().unwrap(), "hello parent from greeter");
/// }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until it starts a process"]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    start_method: Option<StartMethod>,
    authkey: Option<Vec<u8>>,
    executable: Option<PathBuf>,
}

impl Builder {
    /// A builder with Python's defaults: `Process-N`, not daemonic, the program's start
    /// method, the parent's authentication key.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = proc_core::Builder::new();
    /// # let _ = builder;
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the process (Python's `name`; default `Process-N`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::builder().name("worker").process(|(): ()| (), ());
    /// assert_eq!(p.name(), "worker");
    /// ```
    pub fn name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.name = Some(name.into());
        self
    }

    /// Makes the process daemonic: it is terminated when its parent exits, dies with its
    /// parent even when the parent is killed, and may not start children of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::builder().daemon(true).process(|(): ()| (), ());
    /// assert!(p.daemon());
    /// ```
    pub fn daemon(&mut self, daemon: bool) -> &mut Builder {
        self.daemon = daemon;
        self
    }

    /// Chooses how the child is started (default: [`get_start_method`](crate::get_start_method)).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::StartMethod;
    ///
    /// let p = proc_core::Process::builder().start_method(StartMethod::Spawn).process(|(): ()| (), ());
    /// assert_eq!(p.start_method(), StartMethod::Spawn);
    /// ```
    pub fn start_method(&mut self, method: StartMethod) -> &mut Builder {
        self.start_method = Some(method);
        self
    }

    /// Gives the child its own authentication key instead of the parent's.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::builder().authkey(b"secret".to_vec()).process(|(): ()| (), ());
    /// assert_eq!(p.authkey(), b"secret");
    /// ```
    pub fn authkey(&mut self, key: impl Into<Vec<u8>>) -> &mut Builder {
        self.authkey = Some(key.into());
        self
    }

    /// Runs the child from another copy of this program (Python's `set_executable`). Used
    /// by `Spawn` only. The copy must be the same build, or the child refuses to run with
    /// [`Error::BuildMismatch`](crate::Error::BuildMismatch).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = proc_core::Process::builder();
    /// builder.executable(std::env::current_exe().unwrap());
    /// ```
    #[doc(alias = "set_executable")]
    pub fn executable(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.executable = Some(path.into());
        self
    }

    /// Creates a process that will run `f(args)` once started; see [`Process::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = proc_core::Process::builder().name("later").process(|x: u8| x, 1);
    /// assert!(!p.is_alive());
    /// ```
    pub fn process<F, A, R>(&self, _f: F, args: A) -> Process<R>
    where
        F: Fn(A) -> R + Copy + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        // `_f` itself is not stored: it has no bytes, and its type names the function.
        const {
            assert!(
                size_of::<F>() == 0,
                "the function must not capture anything: pass what it needs as its argument"
            )
        };
        Process {
            start_method: self.start_method,
            launch: spawn::Settings {
                trampoline: child::trampoline::<F, A, R>,
                executable: self.executable.clone(),
            },
            args: Mutex::new(Some(Box::new(args))),
            identity: current::next_child(self.name.clone(), self.daemon, self.authkey.clone()),
            state: State::New,
            _result: PhantomData,
        }
    }

    /// Creates and starts a process that runs `f(args)`.
    ///
    /// # Errors
    ///
    /// As [`Process::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::builder().name("adder").spawn(|(a, b): (i32, i32)| a + b, (2, 3)).unwrap();
    ///     assert_eq!(p.join().unwrap(), 5);
    /// }
    /// ```
    pub fn spawn<F, A, R>(&self, f: F, args: A) -> Result<Process<R>>
    where
        F: Fn(A) -> R + Copy + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let mut process = self.process(f, args);
        process.start()?;
        Ok(process)
    }

    /// Creates and starts a process that runs `task.run()`.
    ///
    /// # Errors
    ///
    /// As [`Process::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Shout(String);
    ///
    /// impl proc_core::Task for Shout {
    ///     type Output = String;
    ///     fn run(self) -> String {
    ///         self.0.to_uppercase()
    ///     }
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let mut p = proc_core::Process::builder().name("shouter").spawn_task(Shout("hi".into())).unwrap();
    ///     assert_eq!(p.join().unwrap(), "HI");
    /// }
    /// ```
    #[doc(alias = "run")]
    pub fn spawn_task<T: Task>(&self, task: T) -> Result<Process<T::Output>> {
        self.spawn(run_task::<T>, task)
    }
}

/// A start method to create processes with: Python's `get_context(method)`.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() {
///     proc_core::init();
///     let ctx = proc_core::context(proc_core::StartMethod::Spawn).unwrap();
///     assert_eq!(ctx.spawn(square, 12).unwrap().join().unwrap(), 144);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

/// The context of a start method.
///
/// # Errors
///
/// [`Error::Unsupported`](crate::Error::Unsupported) when the platform lacks the method.
///
/// # Examples
///
/// ```
/// let ctx = proc_core::context(proc_core::StartMethod::Spawn).unwrap();
/// assert_eq!(ctx.start_method(), proc_core::StartMethod::Spawn);
/// ```
#[doc(alias = "get_context")]
pub fn context(method: StartMethod) -> Result<Context> {
    method.check_available()?;
    Ok(Context { method })
}

impl Context {
    /// The context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = proc_core::context(proc_core::StartMethod::Spawn).unwrap();
    /// assert_eq!(ctx.start_method().name(), "spawn");
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A process builder that uses this context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = proc_core::context(proc_core::StartMethod::Spawn).unwrap();
    /// let mut builder = ctx.builder();
    /// builder.name("worker");
    /// ```
    pub fn builder(&self) -> Builder {
        let mut builder = Builder::new();
        builder.start_method(self.method);
        builder
    }

    /// Creates (without starting) a process that will run `f(args)`; see [`Process::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn double(x: i32) -> i32 {
    ///     x * 2
    /// }
    ///
    /// fn main() {
    ///     proc_core::init();
    ///     let ctx = proc_core::context(proc_core::StartMethod::Spawn).unwrap();
    ///     let mut p = ctx.process(double, 21);
    ///     p.start().unwrap();
    ///     assert_eq!(p.join().unwrap(), 42);
    /// }
    /// ```
    pub fn process<F, A, R>(&self, f: F, args: A) -> Process<R>
    where
        F: Fn(A) -> R + Copy + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.builder().process(f, args)
    }

    /// Creates and starts a process that runs `f(args)`; see [`Process::spawn`].
    ///
    /// # Errors
    ///
    /// As [`Process::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn main() {
    ///     proc_core::init();
    ///     let ctx = proc_core::context(proc_core::StartMethod::Spawn).unwrap();
    ///     let mut p = ctx.spawn(|s: String| s.len(), "four".to_string()).unwrap();
    ///     assert_eq!(p.join().unwrap(), 4);
    /// }
    /// ```
    pub fn spawn<F, A, R>(&self, f: F, args: A) -> Result<Process<R>>
    where
        F: Fn(A) -> R + Copy + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.builder().spawn(f, args)
    }
}
