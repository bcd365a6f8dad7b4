//! Synchronization across processes, after Python's `multiprocessing`: `Lock`, `RLock`,
//! `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array` and
//! `SharedMemory`, plus the thread queues of Python's `queue` module.
//!
//! Every primitive lives in a small anonymous shared memory segment and works the same
//! between threads of one process and between processes: it is `Clone` (clones are the same
//! lock, event...) and `Serialize`, so a clone passed to
//! [`Process::spawn`](proc_core::Process::spawn) as (part of) the argument is shared with the
//! child. Blocking calls come in three forms — `acquire`, `try_acquire`,
//! `acquire_timeout(d)` — and `acquire` returns a guard that releases on drop.
//!
//! | item | Python |
//! |---|---|
//! | [`Lock`], [`RLock`] | `multiprocessing.Lock`, `RLock`; robust: a holder's death does not block the others ([`LockGuard::owner_died`]) |
//! | [`Semaphore`], [`BoundedSemaphore`] | `multiprocessing.Semaphore`, `BoundedSemaphore`; robust: the places a process held when it died come back ([`SemaphoreGuard::owner_died`]) |
//! | [`Event`], [`Condition`], [`Barrier`] | `multiprocessing.Event`, `Condition`, `Barrier`; a party that dies inside `Barrier::wait` breaks the barrier for the others ([`Barrier::dead_party`]) |
//! | [`Value`], [`Array`], [`RawValue`], [`RawArray`] | `multiprocessing.Value`, `Array` (with `lock=False` for the raw ones), for [`Pod`] types |
//! | [`SharedMemory`] | `multiprocessing.shared_memory.SharedMemory`; nothing leaks in `/dev/shm` |
//! | [`queue`], [`Timer`] | `queue.Queue`, `LifoQueue`, `PriorityQueue`; `threading.Timer` |
//!
//! Waiting never burns a core: a waiter spins a few times, then sleeps on a futex (Linux,
//! FreeBSD, macOS) or a kernel semaphore (Windows).
//!
//! # Examples
//!
//! The ticket office of Python's tutorials: ten processes try to buy the last ticket.
//!
//! ```
//! use proc_core::Process;
//! use proc_sync::Value;
//!
//! fn buy(tickets: Value<u32>) -> bool {
//!     tickets.with_lock(|left| {
//!         if *left > 0 {
//!             *left -= 1;
//!             true
//!         } else {
//!             false
//!         }
//!     })
//! }
//!
//! fn main() {
//!     proc_core::init();
//!     let tickets = Value::new(1u32).unwrap();
//!     let buyers = (0..10)
//!         .map(|_| Process::spawn(buy, tickets.clone()).unwrap())
//!         .collect::<Vec<_>>();
//!     let bought = buyers.into_iter().map(|mut p| p.join().unwrap()).filter(|won| *won).count();
//!     assert_eq!(bought, 1);
//!     assert_eq!(tickets.get(), 0);
//! }
//! ```
#![warn(missing_docs)]

pub use bytemuck::{self, Pod, Zeroable};
pub use proc_core as core;

mod barrier;
mod condition;
mod event;
mod holders;
mod lock;
mod semaphore;
mod shared;
mod shm;
mod sys;
mod value;
mod wire;

pub mod queue;
mod timer;

pub use timer::Timer;

pub use barrier::{Barrier, BarrierBuilder};
pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock, RLockGuard, SharedLock};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
pub use shm::{MAX_NAME_LEN, SharedMemory};
pub use value::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
