//! Communication between processes, after Python's `multiprocessing`: [`Pipe`] and
//! [`Connection`], [`Listener`] and [`Client`] (with an authkey, over local sockets and TCP),
//! and [`wait`]; `Queue`, `JoinableQueue`, `SimpleQueue` and `Manager` are to come.
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

mod connection;
mod listener;
mod sys;

pub use connection::{Connection, Pipe, wait};
pub use listener::{Address, Client, DEFAULT_HANDSHAKE_TIMEOUT, Listener};
pub use proc_core as core;
