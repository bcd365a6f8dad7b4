//! `Manager`: Python's `multiprocessing.Manager()` / `SyncManager` / `BaseManager`.
//!
//! A server process keeps dicts, lists, queues, locks and user objects; other processes —
//! children, pool workers, programs on other machines — use them through proxies. A proxy
//! is plain data (the server's address, its key and an object id), so it travels as an
//! argument of `Process::spawn`, inside a pool task, over a connection or inside another
//! proxy's value, and connects from wherever it lands.
//!
//! The server authenticates every client with the manager's key (HMAC, as
//! [`Listener`](crate::Listener)), serves each connection on a thread of its own, and stores
//! keys and values encoded, so that it serves clients of any build; only
//! [`DictProxy::update_with`] and [`Manager::register`], which name functions, need the
//! client to run the server's build.
//!
//! # What happens when a process dies
//!
//! - A client killed in the middle of a call leaves the server and the other clients
//!   working; the locks, reentrant locks, conditions and semaphore permits it held are given
//!   back once its last connection closes, and a barrier it waited at breaks.
//! - A server that dies turns every call, including those waiting, into
//!   [`Error::Closed`] at once.
//! - The server of [`Manager::start`] is a daemonic child: it ends when the manager is
//!   dropped or [shut down](Manager::shutdown), and when its parent dies.
//! - A request that does not decode is answered with an error; a frame that breaks the
//!   protocol closes that connection only.
//!
//! What the server cannot know: an item that a queue's `get` took for a client killed after
//! the answer left the server, but before the client read it, is lost with the client.
//! Objects live as long as their server (Python's managers count references instead).

mod client;
mod objects;
mod proxy;
mod server;
mod sync;
mod wire;

#[cfg(test)]
mod fuzz;

use std::fmt;
use std::time::Duration;

use proc_core::{Error, Process, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use proxy::{
    ArrayProxy, DictProxy, ListProxy, NamespaceProxy, Proxy, SharedObject, ValueProxy,
};
pub use sync::{
    BarrierProxy, ConditionProxy, EventProxy, JoinableQueueProxy, LockProxy, ProxyGuard,
    QueueProxy, RLockProxy, SemaphoreProxy,
};

use crate::{Address, Connection, Pipe};
use client::{Remote, encode, encode_all};
use wire::{Kind, Request};

/// How long [`Manager::shutdown`] waits for its server to exit before killing it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A handle on a manager's server, which keeps shared objects for other processes:
/// Python's `multiprocessing.Manager()`.
///
/// [`Manager::start`] starts a server in a child process (stopped when the manager is
/// dropped, like Python's `with Manager() as m:`); [`Manager::start_at`] does the same on an
/// address of your choosing, such as a TCP port that other machines reach;
/// [`Manager::connect`] joins a server that runs elsewhere; [`Manager::serve`] makes this
/// process a server. The methods [`dict`](Manager::dict), [`list`](Manager::list),
/// [`queue`](Manager::queue), [`lock`](Manager::lock)... make objects on the server and
/// return their proxies.
///
/// # Examples
///
/// The seed's scenario: ten processes write their pid into a shared dict and list.
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::{DictProxy, ListProxy, Manager};
///
/// fn record((d, l): (DictProxy<u32, u32>, ListProxy<u32>)) {
///     let pid = proc_core::getpid();
///     d.insert(pid, pid * 2).unwrap();
///     l.push(pid).unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let manager = Manager::start().unwrap();
///     let d = manager.dict().unwrap();
///     let l = manager.list().unwrap();
///     let children: Vec<_> = (0..10)
///         .map(|_| Process::spawn(record, (d.clone(), l.clone())).unwrap())
///         .collect();
///     for mut child in children {
///         child.join().unwrap();
///     }
///     assert_eq!(d.len().unwrap(), 10);
///     assert_eq!(l.len().unwrap(), 10);
/// }
/// ```
#[doc(alias = "SyncManager")]
#[doc(alias = "BaseManager")]
pub struct Manager {
    remote: Remote,
    server: Option<Process<()>>,
    /// Whether this manager started its server (which `server` holds until shut down).
    owns: bool,
}

/// What the server child is started with.
type Start = (Address, Vec<u8>, Connection);

/// The server child: binds, says where, serves until shut down.
fn run_server((address, authkey, ready): Start) {
    match server::Server::bind(address, &authkey) {
        Ok(server) => {
            if ready
                .send(&Ok::<_, String>(server.address().clone()))
                .is_ok()
            {
                drop(ready);
                let _ = server.run();
            }
        }
        Err(err) => {
            let _ = ready.send(&Err::<Address, _>(err.to_string()));
        }
    }
}

impl Manager {
    /// Starts a manager's server in a child process, on a fresh local address with a
    /// random key: Python's `Manager()`.
    ///
    /// # Errors
    ///
    /// The errors of [`Process::spawn`] (say, `procs::init()` missing from `main`), and
    /// [`Error::Io`] when the server cannot listen.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let manager = proc_ipc::Manager::start().unwrap();
    /// let ns = manager.namespace().unwrap();
    /// ns.set("ready", &true).unwrap();
    /// assert_eq!(ns.get::<bool>("ready").unwrap(), Some(true));
    /// ```
    pub fn start() -> Result<Manager> {
        let key: [u8; 32] = std::array::from_fn(|i| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(i) as u8
        });
        Manager::start_at(Address::unique_local(), &key)
    }

    /// Starts a manager's server in a child process listening on `address` with `authkey`
    /// (Python's `BaseManager(address, authkey).start()`): a TCP address such as
    /// `0.0.0.0:50000` makes it reachable from other machines through
    /// [`Manager::connect`]; port 0 picks a free port, which [`address`](Manager::address)
    /// tells.
    ///
    /// # Errors
    ///
    /// As [`start`](Manager::start); [`Error::Io`] when the address is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use proc_ipc::{Address, Manager};
    ///
    /// let server = Manager::start_at("127.0.0.1:0".parse::<Address>().unwrap(), b"key").unwrap();
    /// let client = Manager::connect(server.address(), b"key").unwrap();
    /// client.list::<u8>().unwrap().push(1).unwrap();
    /// ```
    pub fn start_at(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager> {
        let (here, there) = Pipe::duplex()?;
        let mut server = Process::builder()
            .name("SyncManager")
            .daemon(true)
            .spawn(run_server, (address.into(), authkey.to_vec(), there))?;
        let bound = match here.recv::<std::result::Result<Address, String>>() {
            Ok(Ok(bound)) => bound,
            Ok(Err(message)) => {
                let _ = server.join_timeout(SHUTDOWN_GRACE);
                return Err(Error::Io(std::io::Error::other(format!(
                    "the manager's server could not listen: {message}"
                ))));
            }
            Err(err) => {
                let _ = server.kill();
                let _ = server.join_timeout(SHUTDOWN_GRACE);
                return Err(match server.exitcode() {
                    Some(exitcode) => Error::Died { exitcode },
                    None => err,
                });
            }
        };
        Ok(Manager {
            remote: Remote::new(bound, authkey.to_vec()),
            server: Some(server),
            owns: true,
        })
    }

    /// Connects to a manager's server that runs elsewhere (Python's
    /// `BaseManager(address, authkey).connect()`). Dropping the result leaves the server
    /// running.
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] when the key is wrong, [`Error::Closed`] when no
    /// server answers at `address`.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use proc_ipc::Manager;
    ///
    /// let owner = Manager::start().unwrap();
    /// let err = Manager::connect(owner.address(), b"not the key").unwrap_err();
    /// assert!(matches!(err, proc_core::Error::AuthenticationFailed));
    /// ```
    pub fn connect(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager> {
        let remote = Remote::new(address.into(), authkey.to_vec());
        // One call proves that the server is there and knows the key.
        remote.check_same_build().or_else(|err| match err {
            Error::BuildMismatch => Ok(()),
            err => Err(err),
        })?;
        Ok(Manager {
            remote,
            server: None,
            owns: false,
        })
    }

    /// Makes this process a manager's server on `address` with `authkey`, serving until a
    /// client calls [`shutdown`](Manager::shutdown) (Python's
    /// `manager.get_server().serve_forever()`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the address cannot be bound.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use proc_ipc::{Address, Manager};
    ///
    /// let address = Address::unique_local();
    /// let server = std::thread::spawn({
    ///     let address = address.clone();
    ///     move || Manager::serve(address, b"key")
    /// });
    /// let mut client = loop {
    ///     match Manager::connect(&address, b"key") {
    ///         Ok(client) => break client,
    ///         Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
    ///     }
    /// };
    /// client.shutdown().unwrap();
    /// server.join().unwrap().unwrap();
    /// ```
    pub fn serve(address: impl Into<Address>, authkey: &[u8]) -> Result<()> {
        Manager::server(address, authkey)?.serve_forever()
    }

    /// Binds a server on `address` without serving yet, so that the caller can learn the
    /// address (a TCP port 0 picks a free port) before [`Server::serve_forever`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the address cannot be bound.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use proc_ipc::{Address, Manager};
    ///
    /// let server = Manager::server("127.0.0.1:0".parse::<Address>().unwrap(), b"k").unwrap();
    /// assert!(matches!(server.address(), Address::Tcp(a) if a.port() != 0));
    /// ```
    pub fn server(address: impl Into<Address>, authkey: &[u8]) -> Result<Server> {
        Ok(Server {
            inner: server::Server::bind(address.into(), authkey)?,
        })
    }

    /// Where the server listens.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(matches!(m.address(), proc_ipc::Address::Local(_)));
    /// ```
    pub fn address(&self) -> &Address {
        &self.remote.address
    }

    /// The process id of the server, when this manager started it.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(m.pid().is_some());
    /// let other = proc_ipc::Manager::connect(m.address(), m.authkey()).unwrap();
    /// assert_eq!(other.pid(), None);
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(Process::pid)
    }

    /// The key that clients must know.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start_at(proc_ipc::Address::unique_local(), b"k").unwrap();
    /// assert_eq!(m.authkey(), b"k");
    /// ```
    pub fn authkey(&self) -> &[u8] {
        &self.remote.authkey
    }

    /// Stops the server: every proxy's later call fails with
    /// [`Error::Closed`]. For a server this manager started, waits
    /// for its process to exit (killing it if it does not); calling twice is fine.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when a server this manager did not start is gone already.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let mut m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// m.shutdown().unwrap();
    /// assert!(matches!(l.push(1), Err(proc_core::Error::Closed)));
    /// m.shutdown().unwrap();
    /// ```
    pub fn shutdown(&mut self) -> Result<()> {
        if !self.owns {
            return self.remote.request(Request::Shutdown).map(drop);
        }
        if let Some(mut server) = self.server.take() {
            {
                if server.is_alive() {
                    let _ = self.remote.request(Request::Shutdown);
                    if server.join_timeout(SHUTDOWN_GRACE).is_err() && server.is_alive() {
                        let _ = server.kill();
                        let _ = server.join_timeout(SHUTDOWN_GRACE);
                    }
                }
            }
        }
        Ok(())
    }

    /// Publishes `proxy` under `name` on the server, so that a process that has only the
    /// address and the key can [`lookup`](Manager::lookup) it: Python's
    /// `BaseManager.register('get_queue', callable=lambda: queue)` on the serving side.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value does not encode, [`Error::Closed`] when the server
    /// is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// use proc_ipc::{Manager, QueueProxy};
    ///
    /// let owner = Manager::start().unwrap();
    /// owner.publish("jobs", &owner.queue::<u32>().unwrap()).unwrap();
    ///
    /// // Elsewhere, with only the address and the key:
    /// let other = Manager::connect(owner.address(), owner.authkey()).unwrap();
    /// let jobs: QueueProxy<u32> = other.lookup("jobs").unwrap().unwrap();
    /// jobs.put(7).unwrap();
    /// ```
    #[doc(alias = "register")]
    pub fn publish<P: Serialize + ?Sized>(&self, name: &str, proxy: &P) -> Result<()> {
        self.root().set(name, proxy)
    }

    /// The proxy (or any value) [published](Manager::publish) under `name`, `None` when
    /// there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when it is not a `P`, [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(m.lookup::<proc_ipc::LockProxy>("nothing").unwrap().is_none());
    /// ```
    pub fn lookup<P: DeserializeOwned>(&self, name: &str) -> Result<Option<P>> {
        self.root().get(name)
    }

    fn root(&self) -> NamespaceProxy {
        NamespaceProxy::new(client::Token {
            remote: self.remote.clone(),
            id: server::ROOT,
        })
    }

    fn create(&self, kind: Kind) -> Result<client::Token> {
        self.remote.create(kind)
    }

    /// A new shared dict (Python's `manager.dict()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<String, Vec<u8>>().unwrap();
    /// d.insert("k".into(), vec![1]).unwrap();
    /// assert_eq!(d.get("k").unwrap(), Some(vec![1]));
    /// ```
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.create(Kind::Dict).map(DictProxy::new)
    }

    /// A new shared dict holding `entries` (Python's `manager.dict(mapping)`): the entries
    /// go in one bulk call, as [`DictProxy::update`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone; an entry that cannot be encoded fails the
    /// call, and the new dict is let go.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict_from([("a".to_string(), 1), ("b".to_string(), 2)]).unwrap();
    /// assert_eq!(d.len().unwrap(), 2);
    /// assert_eq!(d.get("b").unwrap(), Some(2));
    /// ```
    #[doc(alias = "dict")]
    pub fn dict_from<K, V>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let dict = self.dict()?;
        dict.update(entries)?;
        Ok(dict)
    }

    /// A new shared list (Python's `manager.list()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<String>().unwrap();
    /// l.push("a".into()).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), ["a"]);
    /// ```
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>> {
        self.create(Kind::List).map(ListProxy::new)
    }

    /// A new shared list holding `items` (Python's `manager.list(iterable)`): the items go in
    /// one bulk call, as [`ListProxy::extend`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone; an item that cannot be encoded fails the
    /// call, and the new list is let go.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list_from(0..5u32).unwrap();
    /// l.push(5).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), [0, 1, 2, 3, 4, 5]);
    /// ```
    #[doc(alias = "list")]
    pub fn list_from<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ListProxy<T>> {
        let list = self.list()?;
        list.extend(items)?;
        Ok(list)
    }

    /// A new namespace (Python's `manager.Namespace()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("x", &1).unwrap();
    /// assert_eq!(ns.get::<i32>("x").unwrap(), Some(1));
    /// ```
    #[doc(alias = "Namespace")]
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        self.create(Kind::Namespace).map(NamespaceProxy::new)
    }

    /// A new queue without a size limit (Python's `manager.Queue()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue().unwrap();
    /// q.put(1u8).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    #[doc(alias = "Queue")]
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        self.queue_with_maxsize(0)
    }

    /// A new queue that holds at most `maxsize` items (0: no limit), as Python's
    /// `manager.Queue(maxsize)`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.queue_with_maxsize(1).unwrap();
    /// q.put(1u8).unwrap();
    /// assert!(q.full().unwrap());
    /// ```
    pub fn queue_with_maxsize<T: Serialize + DeserializeOwned>(
        &self,
        maxsize: usize,
    ) -> Result<QueueProxy<T>> {
        let maxsize = if maxsize == 0 {
            u64::MAX
        } else {
            maxsize as u64
        };
        self.create(Kind::Queue { maxsize }).map(QueueProxy::new)
    }

    /// A new joinable queue (Python's `manager.JoinableQueue()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let q = m.joinable_queue().unwrap();
    /// q.put("task".to_string()).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// q.join().unwrap();
    /// ```
    #[doc(alias = "JoinableQueue")]
    pub fn joinable_queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        self.queue()
    }

    /// A new lock (Python's `manager.Lock()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let lock = m.lock().unwrap();
    /// let _guard = lock.acquire().unwrap();
    /// assert!(lock.is_locked().unwrap());
    /// ```
    #[doc(alias = "Lock")]
    pub fn lock(&self) -> Result<LockProxy> {
        self.create(Kind::Lock).map(LockProxy::new)
    }

    /// A new reentrant lock (Python's `manager.RLock()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let lock = m.rlock().unwrap();
    /// let _a = lock.acquire().unwrap();
    /// let _b = lock.acquire().unwrap();
    /// ```
    #[doc(alias = "RLock")]
    pub fn rlock(&self) -> Result<RLockProxy> {
        self.create(Kind::RLock).map(RLockProxy::new)
    }

    /// A new semaphore with `value` permits (Python's `manager.Semaphore(value)`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let sem = m.semaphore(1).unwrap();
    /// let _permit = sem.acquire().unwrap();
    /// assert_eq!(sem.get_value().unwrap(), 0);
    /// ```
    #[doc(alias = "Semaphore")]
    pub fn semaphore(&self, value: u32) -> Result<SemaphoreProxy> {
        self.create(Kind::Semaphore { value, bound: None })
            .map(SemaphoreProxy::new)
    }

    /// A new semaphore that refuses to be released above `value` (Python's
    /// `manager.BoundedSemaphore(value)`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let sem = m.bounded_semaphore(1).unwrap();
    /// assert!(sem.release().is_err());
    /// ```
    #[doc(alias = "BoundedSemaphore")]
    pub fn bounded_semaphore(&self, value: u32) -> Result<SemaphoreProxy> {
        self.create(Kind::Semaphore {
            value,
            bound: Some(value),
        })
        .map(SemaphoreProxy::new)
    }

    /// A new event (Python's `manager.Event()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// assert!(e.is_set().unwrap());
    /// ```
    #[doc(alias = "Event")]
    pub fn event(&self) -> Result<EventProxy> {
        self.create(Kind::Event).map(EventProxy::new)
    }

    /// A new condition variable over a reentrant lock (Python's `manager.Condition()`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// let _g = c.acquire().unwrap();
    /// c.notify_all().unwrap();
    /// ```
    #[doc(alias = "Condition")]
    pub fn condition(&self) -> Result<ConditionProxy> {
        self.create(Kind::Condition).map(ConditionProxy::new)
    }

    /// A new barrier for `parties` parties (Python's `manager.Barrier(parties)`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for 0 parties, [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.barrier(1).unwrap().wait().unwrap(), 0);
    /// assert!(m.barrier(0).is_err());
    /// ```
    #[doc(alias = "Barrier")]
    pub fn barrier(&self, parties: u32) -> Result<BarrierProxy> {
        self.create(Kind::Barrier { parties })
            .map(BarrierProxy::new)
    }

    /// A new shared value (Python's `manager.Value(typecode, value)`).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value does not encode, [`Error::Closed`] when the server
    /// is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.value(3i64).unwrap().get().unwrap(), 3);
    /// ```
    #[doc(alias = "Value")]
    pub fn value<T: Serialize + DeserializeOwned>(&self, value: T) -> Result<ValueProxy<T>> {
        self.create(Kind::Value(encode(&value)?))
            .map(ValueProxy::new)
    }

    /// A new shared fixed-length array (Python's `manager.Array(typecode, sequence)`) of at
    /// most 16,777,216 (2²⁴) items.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when an item does not encode, [`Error::Protocol`] when there are
    /// more items than that, [`Error::Closed`] when the server is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.array(vec![1u16, 2]).unwrap().len().unwrap(), 2);
    /// ```
    #[doc(alias = "Array")]
    pub fn array<T: Serialize + DeserializeOwned>(&self, items: Vec<T>) -> Result<ArrayProxy<T>> {
        self.create(Kind::Array(encode_all(&items)?))
            .map(ArrayProxy::new)
    }

    /// Moves `object` into the server and returns its proxy (Python's
    /// `BaseManager.register(typeid, callable)` followed by `manager.typeid()`).
    ///
    /// # Errors
    ///
    /// [`Error::BuildMismatch`] when the server runs another build than this process,
    /// [`Error::Decode`] when the object does not encode, [`Error::Closed`] when the server
    /// is gone.
    ///
    /// # Examples
    ///
    /// See [`SharedObject`].
    ///
    /// ```
    /// # use proc_ipc::SharedObject;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Stack(Vec<u8>);
    /// # impl SharedObject for Stack {
    /// #     type Request = Option<u8>;
    /// #     type Response = Option<u8>;
    /// #     fn handle(&mut self, r: Option<u8>) -> Option<u8> {
    /// #         match r { Some(x) => { self.0.push(x); None } None => self.0.pop() }
    /// #     }
    /// # }
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let stack = m.register(Stack(vec![])).unwrap();
    /// stack.call(Some(7)).unwrap();
    /// assert_eq!(stack.call(None).unwrap(), Some(7));
    /// ```
    #[doc(alias = "typeid")]
    pub fn register<T>(&self, object: T) -> Result<Proxy<T>>
    where
        T: SharedObject + Serialize + DeserializeOwned,
    {
        self.remote.check_same_build()?;
        self.create(Kind::Custom {
            make: proxy::maker::<T>(),
            state: encode(&object)?,
        })
        .map(Proxy::new)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.server.is_some() {
            let _ = self.shutdown();
        }
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: say only where the server is.
        f.debug_struct("Manager")
            .field("address", &self.remote.address)
            .field("owns_server", &self.server.is_some())
            .finish()
    }
}

/// A bound manager's server in this process (from [`Manager::server`]).
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let server = proc_ipc::Manager::server(proc_ipc::Address::unique_local(), b"k").unwrap();
/// let address = server.address().clone();
/// let t = std::thread::spawn(move || server.serve_forever());
/// let mut client = proc_ipc::Manager::connect(&address, b"k").unwrap();
/// client.dict::<u8, u8>().unwrap().insert(1, 1).unwrap();
/// client.shutdown().unwrap();
/// t.join().unwrap().unwrap();
/// ```
pub struct Server {
    inner: server::Server,
}

impl Server {
    /// Where the server listens.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let a = proc_ipc::Address::unique_local();
    /// let server = proc_ipc::Manager::server(&a, b"k").unwrap();
    /// assert_eq!(server.address(), &a);
    /// ```
    pub fn address(&self) -> &Address {
        self.inner.address()
    }

    /// Serves clients until one calls [`Manager::shutdown`]. Connections already open are
    /// closed at their next request.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for listener failures.
    ///
    /// # Examples
    ///
    /// See [`Server`].
    ///
    /// ```
    /// # proc_core::init();
    /// let server = proc_ipc::Manager::server(proc_ipc::Address::unique_local(), b"k").unwrap();
    /// let address = server.address().clone();
    /// let t = std::thread::spawn(move || server.serve_forever());
    /// proc_ipc::Manager::connect(&address, b"k").unwrap().shutdown().unwrap();
    /// assert!(t.join().unwrap().is_ok());
    /// ```
    pub fn serve_forever(self) -> Result<()> {
        self.inner.run()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("address", self.address())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::wire::{Failure, Response};

    #[test]
    fn a_failure_crosses_as_the_error_it_names() {
        let answer: Response = Err(Failure::Timeout);
        let bytes = proc_core::codec::encode(&answer).unwrap();
        let back: Response = proc_core::codec::decode(&bytes).unwrap();
        assert!(proc_core::Error::from(back.unwrap_err()).is_timeout());
    }
}
