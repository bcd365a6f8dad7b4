//! A manager's server: accepts clients, one thread each, and runs their requests on the
//! objects it keeps.
//!
//! A client is a process (it says which in its `Hello`); it may hold several connections.
//! When the last one closes — the process ended, or was killed in the middle of a call — the
//! locks and permits it held are given back. A request that does not decode is answered with
//! an error and the connection stays usable; a frame that breaks the protocol (too long, cut
//! short) closes that connection only. Nothing a client sends stops the server but
//! `Shutdown`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proc_core::{Error, Result};

use super::objects::{Caller, Object};
use super::wire::{Failure, Invalid, Kind, Op, Reply, Request, Response, decode_request};
use crate::listener::{Pending, wake};
use crate::{Address, Connection, Listener};

/// How long a peer has to authenticate before its connection is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The id of the namespace that holds published proxies.
pub(crate) const ROOT: u64 = 0;

fn first_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    // Far from 0 (the root) and from wrapping around.
    (random >> 2) | 1 << 32
}

/// The caller of what the server makes for itself.
struct NoCaller;

impl Caller for NoCaller {
    fn gone(&self) -> bool {
        false
    }

    fn same_build(&self) -> bool {
        false
    }
}

/// A bound server that has not started serving yet.
pub(crate) struct Server {
    listener: Listener,
    shared: Arc<Shared>,
}

struct Shared {
    objects: Mutex<HashMap<u64, Arc<Object>>>,
    next_id: AtomicU64,
    /// How many open connections each client process has.
    clients: Mutex<HashMap<u64, usize>>,
    stop: AtomicBool,
    address: Address,
    fingerprint: u64,
}

impl Shared {
    fn object(&self, id: u64) -> Result<Arc<Object>, Failure> {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or(Failure::Invalid(Invalid::UnknownObject))
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        wake(&self.address);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn client_joined(&self, client: u64) {
        *self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(client)
            .or_insert(0) += 1;
    }

    fn client_left(&self, client: u64) {
        let last = {
            let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
            let count = clients.entry(client).or_insert(1);
            *count -= 1;
            let last = *count == 0;
            if last {
                clients.remove(&client);
            }
            last
        };
        if last {
            let objects: Vec<_> = self
                .objects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned()
                .collect();
            for object in objects {
                object.release_client(client);
            }
        }
    }
}

impl Server {
    /// Listens on `address` with `authkey`.
    pub(crate) fn bind(address: Address, authkey: &[u8]) -> Result<Server> {
        let mut listener = Listener::bind(address, Some(authkey))?;
        listener.set_handshake_timeout(HANDSHAKE);
        // Object 0 is the namespace of published proxies (`Manager::publish`).
        let root = Object::new(Kind::Namespace, &NoCaller)
            .map_err(|_| Error::InvalidState("the manager's namespace"))?;
        let shared = Arc::new(Shared {
            objects: Mutex::new(HashMap::from([(ROOT, Arc::new(root))])),
            // Ids start at a random place, so that a proxy of an earlier server on the same
            // address names nothing here rather than another object.
            next_id: AtomicU64::new(first_id()),
            clients: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            address: listener.address().clone(),
            fingerprint: proc_core::internal::fingerprint(),
        });
        Ok(Server { listener, shared })
    }

    pub(crate) fn address(&self) -> &Address {
        self.listener.address()
    }

    /// Serves until a client asks the server to stop.
    pub(crate) fn run(self) -> Result<()> {
        let mut failures = 0u32;
        while !self.shared.stopping() {
            let pending = match self.listener.accept_pending() {
                Ok(pending) => pending,
                Err(Error::InvalidState(_)) => break,
                Err(err) => {
                    // Out of descriptors or a peer that left at once: wait a little, so that
                    // a persistent failure does not spin, and go on.
                    failures += 1;
                    tracing::warn!(%err, "manager: accept failed");
                    std::thread::sleep(Duration::from_millis(u64::from(failures.min(100))));
                    continue;
                }
            };
            failures = 0;
            if self.shared.stopping() {
                break;
            }
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("procs-manager-client".into())
                .spawn(move || serve_client(&shared, pending));
            if let Err(err) = spawned {
                tracing::warn!(%err, "manager: no thread for a client");
            }
        }
        Ok(())
    }
}

/// The connection of one client, as blocked operations see it.
struct Client<'a> {
    conn: &'a Connection,
    shared: &'a Shared,
    same_build: bool,
}

impl Caller for Client<'_> {
    fn gone(&self) -> bool {
        // A client sends nothing while it waits for an answer: something to read is its
        // end-of-file.
        self.shared.stopping() || self.conn.poll(Some(Duration::ZERO)).unwrap_or(true)
    }

    fn same_build(&self) -> bool {
        self.same_build
    }
}

fn serve_client(shared: &Shared, pending: Pending) {
    let conn = match pending.authenticate() {
        Ok(conn) => conn,
        Err(err) => {
            tracing::debug!(%err, "manager: a peer failed the handshake");
            return;
        }
    };
    let (client, fingerprint) = match conn.recv::<Request>() {
        Ok(Request::Hello {
            client,
            fingerprint,
        }) => (client, fingerprint),
        Ok(_) | Err(Error::Decode(_)) => {
            let answer: Response = Err(Failure::Protocol(
                "a manager's client must say hello first".into(),
            ));
            let _ = conn.send(&answer);
            return;
        }
        Err(_) => return,
    };
    let hello: Response = Ok(Reply::Hello {
        fingerprint: shared.fingerprint,
        address: shared.address.clone(),
    });
    if conn.send(&hello).is_err() {
        return;
    }
    shared.client_joined(client);
    let caller = Client {
        conn: &conn,
        shared,
        same_build: fingerprint == shared.fingerprint,
    };
    while !shared.stopping() {
        let request = match conn.recv_bytes().and_then(decode_request) {
            Ok(request) => request,
            Err(Error::Decode(message)) => {
                let answer: Response = Err(Failure::Decode(message));
                if conn.send(&answer).is_err() {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        // A request that arrives once the server stopped is not served: the connection
        // closes instead, so that a proxy fails with `Closed` however its process goes on.
        if shared.stopping() {
            break;
        }
        match request {
            Request::Shutdown => {
                // Stopping before the answer, so that no connection serves a request that a
                // client sends once it has it; waking the accept loop after it, so that a
                // process that ends when the server returns does not end before the answer
                // is out.
                shared.stop.store(true, Ordering::SeqCst);
                let _ = conn.send(&Ok::<_, Failure>(Reply::Unit));
                shared.stop();
                break;
            }
            Request::Hello { .. } => {
                let answer: Response = Err(Failure::Protocol("hello twice".into()));
                if conn.send(&answer).is_err() {
                    break;
                }
            }
            Request::Create(kind) => {
                let answer = Object::new(kind, &caller).map(|object| {
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    shared
                        .objects
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id, Arc::new(object));
                    Reply::Count(id)
                });
                if conn.send(&answer).is_err() {
                    break;
                }
            }
            Request::Call { id, op } => {
                let object = match shared.object(id) {
                    Ok(object) => object,
                    Err(failure) => {
                        if conn.send(&Err::<Reply, _>(failure)).is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let taking = matches!(op, Op::Take { .. });
                let answer = object.call(op, &caller);
                if let Err(err) = conn.send(&answer) {
                    tracing::debug!(%err, "manager: a client left before its answer");
                    // An item taken for a client that is gone goes back to the queue.
                    if taking && let Ok(Reply::Item(Some(item))) = answer {
                        object.requeue(item);
                    }
                    break;
                }
            }
        }
    }
    shared.client_left(client);
}
