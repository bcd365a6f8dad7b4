//! Communication between processes, after Python's `multiprocessing`.
//!
//! | item | Python |
//! |---|---|
//! | [`Pipe`], [`Connection`] | `multiprocessing.Pipe`, `Connection` |
//! | [`Queue`], [`JoinableQueue`], [`SimpleQueue`] | `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue` |
//! | [`Listener`], [`Client`], [`Address`] | `multiprocessing.connection.Listener`, `Client` (with an authkey, over local sockets and TCP) |
//! | [`Manager`], [`DictProxy`], [`ListProxy`], [`QueueProxy`]... | `multiprocessing.Manager()`, `BaseManager`, their proxies (local and remote) |
//! | [`channel`], [`bounded`], [`Sender`], [`Receiver`] | crossbeam-channel's shape between processes: ends that disconnect when the other side is dropped or dies |
//! | [`wait`] | `multiprocessing.connection.wait`, for connections and queues |
//!
//! Pipes and listeners are sockets (named pipes on Windows) carrying length-prefixed postcard
//! frames. Queues are a ring in shared memory: producers and consumers take turns on two
//! robust locks, and an item becomes visible, or leaves, with one atomic store — so a
//! process killed inside `put` or `get` never leaves a torn item, a duplicate, or a lock held
//! (Python warns that its queues may be corrupted then). A waiter spins for a few
//! microseconds and then sleeps on a futex (a kernel semaphore on Windows).
//!
//! Everything here crosses into child processes as an ordinary argument of
//! [`Process::spawn`](proc_core::Process::spawn), and can be sent to a running process through
//! a [`Connection`].
//!
//! # Examples
//!
//! ```
//! use proc_core::Process;
//! use proc_ipc::{Connection, Pipe};
//!
//! fn echo(conn: Connection) {
//!     while let Ok(text) = conn.recv::<String>() {
//!         conn.send(&text.to_uppercase()).unwrap();
//!     }
//! }
//!
//! fn main() {
//!     proc_core::init();
//!     let (here, there) = Pipe::duplex().unwrap();
//!     let mut child = Process::spawn(echo, there).unwrap();
//!     here.send("hello").unwrap();
//!     assert_eq!(here.recv::<String>().unwrap(), "HELLO");
//!     drop(here); // the child's recv now reports Closed, and it returns
//!     child.join().unwrap();
//! }
//! ```
#![warn(missing_docs)]

mod channel;
mod connection;
mod listener;
pub mod manager;
mod owner;
mod queue;
mod ring;
mod sys;
mod wait;

pub use channel::{Iter, Receiver, Sender, TRANSIT, bounded, channel};
pub use connection::{Connection, Pipe};
pub use listener::{Address, Client, DEFAULT_HANDSHAKE_TIMEOUT, Listener};
pub use manager::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy,
    LockProxy, Manager, NamespaceProxy, Proxy, ProxyGuard, QueueProxy, RLockProxy, SemaphoreProxy,
    SharedObject, ValueProxy,
};
pub use proc_core as core;
pub use queue::{GetError, JoinableQueue, PutError, Queue, SimpleQueue};
pub use wait::{Waitable, wait};
