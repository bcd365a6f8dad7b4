//! A process's side of its managers: one pool of connections per server, shared by every
//! proxy of that server in the process, so that proxies are plain data (address, key, id)
//! that travel anywhere and connect where they land.
//!
//! A call takes an idle connection (or opens one), sends one request and reads its answer.
//! Two threads calling at once use two connections, so a blocking call (a queue's `get`)
//! never holds up another thread's calls. A child made by `fork` starts with an empty pool:
//! the parent's connections are the parent's.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use proc_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::wire::{
    Batch, Bytes, Kind, MAX_BATCH, Op, Owner, Pairs, Reply, Request, Response, too_many,
};
use crate::{Address, Client, Connection};

/// How long a new connection to a server may take, handshake included.
const CONNECT: Duration = Duration::from_secs(30);

/// The connections of this process to one server.
struct Endpoint {
    address: Address,
    authkey: Vec<u8>,
    client: u64,
    idle: Mutex<Vec<Connection>>,
    server_fingerprint: OnceLock<u64>,
    /// Where the server says it listens, which may not be where this process reaches it.
    server_address: OnceLock<Address>,
}

/// Every endpoint of this process, with the pid they belong to.
struct Endpoints {
    pid: u32,
    client: u64,
    all: HashMap<(Address, Vec<u8>), Arc<Endpoint>>,
}

static ENDPOINTS: Mutex<Option<Endpoints>> = Mutex::new(None);

fn endpoint(address: &Address, authkey: &[u8]) -> Arc<Endpoint> {
    let pid = proc_core::shared::pid();
    let mut endpoints = ENDPOINTS.lock().unwrap_or_else(PoisonError::into_inner);
    if endpoints.as_ref().is_none_or(|e| e.pid != pid) {
        // A forked child: the parent's connections stay the parent's. They are forgotten,
        // not closed, since closing would not touch the parent's copies anyway.
        if let Some(old) = endpoints.take() {
            std::mem::forget(old);
        }
        *endpoints = Some(Endpoints {
            pid,
            client: RandomState::new().hash_one((pid, std::time::SystemTime::now())),
            all: HashMap::new(),
        });
    }
    let endpoints = endpoints.as_mut().expect("set above");
    let client = endpoints.client;
    Arc::clone(
        endpoints
            .all
            .entry((address.clone(), authkey.to_vec()))
            .or_insert_with(|| {
                Arc::new(Endpoint {
                    address: address.clone(),
                    authkey: authkey.to_vec(),
                    client,
                    idle: Mutex::new(Vec::new()),
                    server_fingerprint: OnceLock::new(),
                    server_address: OnceLock::new(),
                })
            }),
    )
}

/// A server's silence or absence, as callers see it: the manager is gone.
fn gone(err: Error) -> Error {
    match err {
        Error::Io(_) | Error::Protocol(_) => Error::Closed,
        other => other,
    }
}

impl Endpoint {
    fn connect(&self) -> Result<Connection> {
        let conn =
            Client::connect_timeout(&self.address, Some(&self.authkey), CONNECT).map_err(gone)?;
        let hello = Request::Hello {
            client: self.client,
            fingerprint: proc_core::internal::fingerprint(),
        };
        conn.send(&hello).map_err(gone)?;
        match conn.recv::<Response>().map_err(gone)? {
            Ok(Reply::Hello {
                fingerprint,
                address,
            }) => {
                let _ = self.server_fingerprint.set(fingerprint);
                let _ = self.server_address.set(address);
                Ok(conn)
            }
            Ok(_) => Err(Error::Protocol("the manager did not answer hello".into())),
            Err(failure) => Err(failure.into()),
        }
    }

    fn call(&self, request: &Request) -> Result<Reply> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let fresh = reused.is_none();
        let conn = match reused {
            Some(conn) => conn,
            None => self.connect()?,
        };
        match Self::exchange(&conn, request) {
            Ok(response) => {
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                response.map_err(Error::from)
            }
            // An idle connection may have outlived its server (a manager restarted at the
            // same address): try once more on a new one.
            Err(Error::Closed) if !fresh => {
                drop(conn);
                let conn = self.connect()?;
                let response = Self::exchange(&conn, request)?;
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                response.map_err(Error::from)
            }
            Err(err) => Err(err),
        }
    }

    fn exchange(conn: &Connection, request: &Request) -> Result<Response> {
        conn.send(request).map_err(gone)?;
        conn.recv::<Response>().map_err(gone)
    }

    fn same_build(&self) -> Result<bool> {
        if self.server_fingerprint.get().is_none() {
            let conn = self.connect()?;
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
        Ok(self.server_fingerprint.get() == Some(&proc_core::internal::fingerprint()))
    }
}

/// Where a manager is and how to prove it is ours: what every proxy carries.
///
/// A proxy read from a manager (a value of a dict, a published proxy) carries the address
/// its maker used, which may not reach the server from here: a server bound to `0.0.0.0`,
/// or reached through another name. While a value of a server is decoded, a proxy that
/// carries the address the server gives for itself is pointed at the address this process
/// reaches it by.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Remote {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    #[serde(skip)]
    pub(crate) cached: Cached,
}

/// A remote's endpoint in this process, once looked up (with the pid it belongs to, so that
/// a forked child looks again).
#[derive(Default)]
pub(crate) struct Cached(OnceLock<(u32, Arc<Endpoint>)>);

impl Clone for Cached {
    fn clone(&self) -> Self {
        let copy = OnceLock::new();
        if let Some(found) = self.0.get() {
            let _ = copy.set(found.clone());
        }
        Cached(copy)
    }
}

impl PartialEq for Cached {
    fn eq(&self, _: &Cached) -> bool {
        true
    }
}

impl Eq for Cached {}

thread_local! {
    /// While a server's value is decoded: the server's own address, and ours for it.
    static REBASE: std::cell::RefCell<Option<(Address, Address)>> =
        const { std::cell::RefCell::new(None) };
}

impl<'de> Deserialize<'de> for Remote {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            address: Address,
            authkey: Vec<u8>,
        }
        let mut wire = Wire::deserialize(deserializer)?;
        REBASE.with(|rebase| {
            if let Some((theirs, ours)) = &*rebase.borrow()
                && wire.address == *theirs
            {
                wire.address = ours.clone();
            }
        });
        Ok(Remote {
            address: wire.address,
            authkey: wire.authkey,
            cached: Cached::default(),
        })
    }
}

impl Remote {
    pub(crate) fn new(address: Address, authkey: Vec<u8>) -> Remote {
        Remote {
            address,
            authkey,
            cached: Cached::default(),
        }
    }

    fn endpoint(&self) -> Arc<Endpoint> {
        let pid = proc_core::shared::pid();
        match self.cached.0.get() {
            Some((at, found)) if *at == pid => found.clone(),
            Some(_) => endpoint(&self.address, &self.authkey),
            None => {
                let found = endpoint(&self.address, &self.authkey);
                let _ = self.cached.0.set((pid, found.clone()));
                found
            }
        }
    }

    pub(crate) fn request(&self, request: &Request) -> Result<Reply> {
        self.endpoint().call(request)
    }

    pub(crate) fn create(&self, kind: Kind) -> Result<Token> {
        match self.request(&Request::Create(kind))? {
            Reply::Count(id) => Ok(Token {
                remote: self.clone(),
                id,
            }),
            _ => Err(unexpected()),
        }
    }

    /// Whether the server runs this build, so that functions may be named to it.
    pub(crate) fn check_same_build(&self) -> Result<()> {
        if self.endpoint().same_build()? {
            Ok(())
        } else {
            Err(Error::BuildMismatch)
        }
    }

    /// Runs `decode` on values of this server, with proxies inside them pointed at the
    /// address this process reaches the server by.
    fn decoding<R>(&self, decode: impl FnOnce() -> R) -> R {
        let theirs = self
            .endpoint()
            .server_address
            .get()
            .filter(|theirs| **theirs != self.address)
            .cloned();
        let Some(theirs) = theirs else {
            return decode();
        };
        let before = REBASE.with(|r| r.replace(Some((theirs, self.address.clone()))));
        let result = decode();
        REBASE.with(|r| r.replace(before));
        result
    }

    /// Who this thread is to the server, for locks.
    pub(crate) fn owner(&self) -> Owner {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static THREAD: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        Owner {
            client: self.endpoint().client,
            thread: THREAD.with(|t| *t),
        }
    }
}

/// One object on one server: what a proxy is.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) remote: Remote,
    pub(crate) id: u64,
}

impl Token {
    pub(crate) fn call(&self, op: Op) -> Result<Reply> {
        self.remote.request(&Request::Call { id: self.id, op })
    }

    pub(crate) fn unit(&self, op: Op) -> Result<()> {
        match self.call(op)? {
            Reply::Unit => Ok(()),
            _ => Err(unexpected()),
        }
    }

    pub(crate) fn flag(&self, op: Op) -> Result<bool> {
        match self.call(op)? {
            Reply::Bool(b) => Ok(b),
            _ => Err(unexpected()),
        }
    }

    pub(crate) fn count(&self, op: Op) -> Result<u64> {
        match self.call(op)? {
            Reply::Count(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }

    pub(crate) fn item<T: DeserializeOwned>(&self, op: Op) -> Result<Option<T>> {
        match self.call(op)? {
            Reply::Item(item) => self
                .remote
                .decoding(|| item.as_deref().map(decode).transpose()),
            _ => Err(unexpected()),
        }
    }

    pub(crate) fn items<T: DeserializeOwned>(&self, op: Op) -> Result<Vec<T>> {
        match self.call(op)? {
            Reply::Items(items) => self.remote.decoding(|| items.iter().map(decode).collect()),
            _ => Err(unexpected()),
        }
    }

    pub(crate) fn pairs<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        op: Op,
    ) -> Result<Vec<(K, V)>> {
        match self.call(op)? {
            Reply::Pairs(pairs) => self.remote.decoding(|| {
                pairs
                    .iter()
                    .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
                    .collect()
            }),
            _ => Err(unexpected()),
        }
    }
}

pub(crate) fn unexpected() -> Error {
    Error::Protocol("the manager answered something else than was asked".into())
}

/// Encodes a key, value or item for the server (no OS handles: a manager keeps bytes).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes> {
    proc_core::codec::encode(value).map(Bytes::from)
}

/// The room to make for a bulk call of `hint` entries, as an iterator says: no more than a
/// call may carry, whatever it says.
fn room(hint: (usize, Option<usize>)) -> usize {
    hint.0.min(MAX_BATCH)
}

/// The bytes to make room for per entry of a `T`: its size in memory, which is about as
/// long as postcard encodes a small value (an integer's varint is shorter, and room that
/// is never written costs no memory), at most 16.
fn entry_size<T>() -> usize {
    size_of::<T>().clamp(1, 16)
}

/// Encodes the items of a bulk call into one batch.
///
/// # Errors
///
/// [`Error::Decode`] when an item does not encode, [`Error::Protocol`] when there are more
/// than [`MAX_BATCH`] (checked before they are sent, as the server checks again).
pub(crate) fn encode_all<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<Batch> {
    let items = items.into_iter();
    let mut batch = Batch::with_capacity(room(items.size_hint()), entry_size::<T>());
    for item in items {
        if batch.len() == MAX_BATCH {
            return Err(Error::Protocol(too_many()));
        }
        batch.push_with(|buf| proc_core::codec::encode_into(&item, buf))?;
    }
    Ok(batch)
}

/// Encodes the entries of a bulk update into one batch, as [`encode_all`] does items.
pub(crate) fn encode_pairs<K: Serialize, V: Serialize>(
    entries: impl IntoIterator<Item = (K, V)>,
) -> Result<Pairs> {
    let entries = entries.into_iter();
    let mut pairs = Pairs::with_capacity(
        room(entries.size_hint()),
        entry_size::<K>() + entry_size::<V>(),
    );
    for (key, value) in entries {
        if pairs.len() == MAX_BATCH / 2 {
            return Err(Error::Protocol(too_many()));
        }
        pairs.push_with(
            |buf| proc_core::codec::encode_into(&key, buf),
            |buf| proc_core::codec::encode_into(&value, buf),
        )?;
    }
    Ok(pairs)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    proc_core::codec::decode(bytes)
}
