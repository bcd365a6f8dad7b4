//! `Listener` and `Client`: Python's `multiprocessing.connection.Listener` and `Client`, over
//! local sockets and TCP, with the HMAC challenge of `deliver_challenge`/`answer_challenge`.
//!
//! # The handshake
//!
//! When both sides have an authkey, each proves to the other that it knows it before the
//! connection is handed out, the listener first (as in CPython):
//!
//! 1. the challenger sends `#CHALLENGE#` and 32 fresh random bytes;
//! 2. the other side answers with HMAC-SHA256(authkey, purpose ‖ bytes), where the purpose
//!    names the direction, so that an answer cannot be replayed the other way;
//! 3. the challenger compares in constant time and answers `#WELCOME#` or `#FAILURE#`.
//!
//! Every message has a fixed size, so a peer cannot make the other side allocate anything,
//! and the listener's side runs under a deadline, so a peer that stalls cannot hold `accept`.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use interprocess::local_socket::traits::{Listener as _, Stream as _};
use interprocess::local_socket::{
    GenericFilePath, GenericNamespaced, ListenerNonblockingMode, ListenerOptions, Name,
    Stream as LocalStream, ToFsName, ToNsName,
};
use proc_core::{Error, Link, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connection::{Connection, Direction};
use crate::sys;

/// How long [`Listener::accept`] gives a new peer to authenticate, unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a [`Listener`] listens and a [`Client`] connects: Python's address families.
///
/// A string parses as [`Address::Tcp`] when it is a socket address (`127.0.0.1:6000`,
/// `[::1]:6000`) or `tcp://host:port` (the host is resolved), and as [`Address::Local`]
/// otherwise.
///
/// # Examples
///
/// ```
/// use proc_ipc::Address;
///
/// let tcp: Address = "127.0.0.1:0".parse().unwrap();
/// assert!(matches!(tcp, Address::Tcp(a) if a.ip().is_loopback()));
/// let local: Address = "my-service".parse().unwrap();
/// assert_eq!(local, Address::Local("my-service".into()));
/// assert_eq!(local.to_string(), "my-service");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A local socket: a Unix domain socket on Unix, a named pipe on Windows.
    ///
    /// A plain name (no `/` or `\`) lives in the system's namespace for local sockets (the
    /// abstract namespace on Linux, a special folder on other Unixes, `\\.\pipe\` on
    /// Windows); anything else is a path (`/tmp/app.sock`, `\\.\pipe\app`).
    Local(String),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl Address {
    /// A local address that no other listener uses: Python's `arbitrary_address`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = proc_ipc::Address::unique_local();
    /// assert_ne!(a, proc_ipc::Address::unique_local());
    /// ```
    pub fn unique_local() -> Address {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let salt = RandomState::new().hash_one(n) as u32;
        Address::Local(format!("procs-{}-{n}-{salt:08x}", std::process::id()))
    }

    fn local_name(name: &str) -> io::Result<Name<'_>> {
        if name.contains(['/', '\\']) {
            name.to_fs_name::<GenericFilePath>()
        } else {
            name.to_ns_name::<GenericNamespaced>()
        }
    }
}

impl FromStr for Address {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::InvalidState`] for an empty string, [`Error::Io`] when a `tcp://` host does
    /// not resolve.
    fn from_str(s: &str) -> Result<Address> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Address::Tcp(addr));
        }
        if let Some(host) = s.strip_prefix("tcp://") {
            return host
                .to_socket_addrs()?
                .next()
                .map(Address::Tcp)
                .ok_or(Error::InvalidState("the tcp host has no address"));
        }
        if s.is_empty() {
            return Err(Error::InvalidState(
                "an empty address; give a name, a path or host:port",
            ));
        }
        Ok(Address::Local(s.to_string()))
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Tcp(addr)
    }
}

impl From<&Address> for Address {
    fn from(addr: &Address) -> Self {
        addr.clone()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Local(name) => f.write_str(name),
            Address::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// Accepts connections from other processes: Python's `multiprocessing.connection.Listener`.
///
/// Each accepted connection is a [`Connection`] with the same `send`/`recv`/`poll` as a pipe
/// end. With an authkey, a peer is only accepted once both sides have proved that they know
/// it (see below); a peer that fails, sends garbage, leaves or stalls makes
/// that `accept` fail, and the next `accept` works as usual.
///
/// A local listener bound to a path removes its socket file when it is dropped or closed.
///
/// # Authentication
///
/// When both sides have an authkey, each proves to the other that it knows it, the listener
/// first (as in CPython's `deliver_challenge`/`answer_challenge`): the challenger sends
/// `#CHALLENGE#` and 32 fresh random bytes, the other side answers with HMAC-SHA256 of them
/// under the key (mixed with the direction, so that an answer cannot be replayed the other
/// way), and the challenger compares in constant time and answers `#WELCOME#` or
/// `#FAILURE#`. Every message has a fixed size, and the listener's side runs under the
/// [handshake timeout](Listener::set_handshake_timeout). Without an authkey on either side
/// there is no handshake; the two sides must agree on that, as in Python.
///
/// # Platform-specific behavior
///
/// Handles (and values that hold them, such as pipe ends) travel over local connections only;
/// sending one over TCP is an error that sends nothing, on every platform. A connection over
/// TCP can itself be sent to another process over a local connection on Unix, but not on
/// Windows, where serializing it is an error.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::{Address, Client, Listener};
///
/// fn call_home(address: Address) {
///     let conn = Client::connect(address, Some(b"secret")).unwrap();
///     conn.send("hello from the child").unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let listener = Listener::bind(Address::unique_local(), Some(b"secret")).unwrap();
///     let mut child = Process::spawn(call_home, listener.address().clone()).unwrap();
///     let conn = listener.accept().unwrap();
///     assert_eq!(conn.recv::<String>().unwrap(), "hello from the child");
///     child.join().unwrap();
/// }
/// ```
pub struct Listener {
    socket: Option<Socket>,
    address: Address,
    authkey: Option<Vec<u8>>,
    handshake_timeout: Duration,
}

enum Socket {
    Local(interprocess::local_socket::Listener),
    Tcp(TcpListener),
}

/// Whether `accept` on a socket waits for a peer (as it does but in `accept_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    Blocking,
    Nonblocking,
}

impl Listener {
    /// Listens on `address`; with `authkey`, every peer must prove it knows the key (and the
    /// listener proves it too).
    ///
    /// TCP port 0 picks a free port: [`address`](Listener::address) tells which.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the address is taken or cannot be bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::{Address, Listener};
    ///
    /// let listener = Listener::bind("127.0.0.1:0".parse::<Address>().unwrap(), None).unwrap();
    /// assert!(matches!(listener.address(), Address::Tcp(a) if a.port() != 0));
    /// ```
    #[doc(alias = "Listener")]
    pub fn bind(address: impl Into<Address>, authkey: Option<&[u8]>) -> Result<Listener> {
        let address = address.into();
        let (socket, address) = match &address {
            Address::Local(name) => {
                let listener = ListenerOptions::new()
                    .name(Address::local_name(name)?)
                    .create_sync()?;
                (Socket::Local(listener), address)
            }
            Address::Tcp(addr) => {
                let listener = TcpListener::bind(addr)?;
                let bound = listener.local_addr()?;
                (Socket::Tcp(listener), Address::Tcp(bound))
            }
        };
        Ok(Listener {
            socket: Some(socket),
            address,
            authkey: authkey.map(<[u8]>::to_vec),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Waits for a peer and returns the connection to it, once authenticated.
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] when the peer does not know the authkey (or proves a
    /// different one), [`Error::Protocol`] when it sends something else than the handshake or
    /// leaves during it, [`Error::Timeout`] when it takes longer than the
    /// [handshake timeout](Listener::set_handshake_timeout), [`Error::InvalidState`] after
    /// [`close`](Listener::close), [`Error::Io`] when the system fails. None of these
    /// affect the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::{Address, Client, Listener};
    ///
    /// let listener = Listener::bind(Address::unique_local(), Some(b"key")).unwrap();
    /// let address = listener.address().clone();
    /// let client = std::thread::spawn(move || Client::connect(address, Some(b"key")).unwrap());
    /// let here = listener.accept().unwrap();
    /// let there = client.join().unwrap();
    /// there.send(&7u8).unwrap();
    /// assert_eq!(here.recv::<u8>().unwrap(), 7);
    /// ```
    pub fn accept(&self) -> Result<Connection> {
        self.accept_pending()?.authenticate()
    }

    /// Takes the next peer without authenticating it yet, so that a server can run the
    /// handshake on another thread and keep accepting meanwhile.
    pub(crate) fn accept_pending(&self) -> Result<Pending> {
        let stream = self.accept_stream(self.socket()?)?;
        Ok(self.pending(stream))
    }

    fn socket(&self) -> Result<&Socket> {
        self.socket
            .as_ref()
            .ok_or(Error::InvalidState("the listener is closed"))
    }

    fn accept_stream(&self, socket: &Socket) -> io::Result<PendingStream> {
        Ok(match socket {
            Socket::Local(listener) => PendingStream::Local(listener.accept()?),
            Socket::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                // Where accepted sockets inherit the listener's mode (Windows, the BSDs),
                // a non-blocking `accept_timeout` must not leave its stream non-blocking.
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                PendingStream::Tcp(stream)
            }
        })
    }

    fn pending(&self, stream: PendingStream) -> Pending {
        Pending {
            stream,
            authkey: self.authkey.clone(),
            limit: self.handshake_timeout,
        }
    }

    fn set_accept_mode(socket: &Socket, mode: Accept) -> io::Result<()> {
        match (socket, mode) {
            (Socket::Local(listener), Accept::Blocking) => {
                listener.set_nonblocking(ListenerNonblockingMode::Neither)
            }
            (Socket::Local(listener), Accept::Nonblocking) => {
                listener.set_nonblocking(ListenerNonblockingMode::Accept)
            }
            (Socket::Tcp(listener), mode) => listener.set_nonblocking(mode == Accept::Nonblocking),
        }
    }

    /// As [`accept`](Listener::accept), but gives up when no peer has connected within
    /// `timeout`; a peer that has connected then has the
    /// [handshake timeout](Listener::set_handshake_timeout) to authenticate.
    ///
    /// The listener looks for a peer every few milliseconds meanwhile (20 at most), and is
    /// non-blocking for that time: an `accept` on another thread at once fails with
    /// [`Error::Io`] (`WouldBlock`) rather than waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no peer came in time, and the errors of
    /// [`accept`](Listener::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use proc_ipc::{Address, Client, Listener};
    ///
    /// let listener = Listener::bind(Address::unique_local(), None).unwrap();
    /// let err = listener.accept_timeout(Duration::from_millis(20)).unwrap_err();
    /// assert!(err.is_timeout());
    /// let address = listener.address().clone();
    /// let client = std::thread::spawn(move || Client::connect(address, None).unwrap());
    /// let conn = listener.accept_timeout(Duration::from_secs(30)).unwrap();
    /// client.join().unwrap().send(&1u8).unwrap();
    /// assert_eq!(conn.recv::<u8>().unwrap(), 1);
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection> {
        let socket = self.socket()?;
        let deadline = proc_core::internal::Deadline::after(timeout);
        Listener::set_accept_mode(socket, Accept::Nonblocking)?;
        let mut pause = Duration::from_millis(1);
        let accepted = loop {
            match self.accept_stream(socket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if deadline.passed() {
                        break Err(Error::Timeout);
                    }
                    std::thread::sleep(deadline.slice(pause));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                other => break other.map_err(Error::from),
            }
        };
        Listener::set_accept_mode(socket, Accept::Blocking)?;
        self.pending(accepted?).authenticate()
    }

    /// The address that peers connect to; for TCP port 0, the port that was picked.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::{Address, Listener};
    ///
    /// let address = Address::unique_local();
    /// let listener = Listener::bind(&address, None).unwrap();
    /// assert_eq!(listener.address(), &address);
    /// ```
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Sets how long a new peer has to complete the authentication handshake in
    /// [`accept`](Listener::accept) (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut listener = proc_ipc::Listener::bind(proc_ipc::Address::unique_local(), Some(b"k")).unwrap();
    /// listener.set_handshake_timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// Stops listening and frees the address; closing twice is fine. Connections already
    /// accepted stay open.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut listener = proc_ipc::Listener::bind(proc_ipc::Address::unique_local(), None).unwrap();
    /// listener.close();
    /// assert!(listener.closed());
    /// assert!(listener.accept().is_err());
    /// ```
    pub fn close(&mut self) {
        self.socket = None;
    }

    /// Whether [`close`](Listener::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = proc_ipc::Listener::bind(proc_ipc::Address::unique_local(), None).unwrap();
    /// assert!(!listener.closed());
    /// ```
    pub fn closed(&self) -> bool {
        self.socket.is_none()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authkey is a secret: say only whether there is one.
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("closed", &self.closed())
            .field("authenticates", &self.authkey.is_some())
            .finish()
    }
}

/// A peer taken by [`Listener::accept_pending`], not authenticated yet.
pub(crate) struct Pending {
    stream: PendingStream,
    authkey: Option<Vec<u8>>,
    limit: Duration,
}

enum PendingStream {
    Local(LocalStream),
    Tcp(TcpStream),
}

impl Pending {
    /// Runs the listener's side of the handshake, within the listener's handshake timeout.
    pub(crate) fn authenticate(self) -> Result<Connection> {
        let key = self.authkey.as_deref();
        let limit = Some(self.limit);
        let link = match self.stream {
            PendingStream::Local(stream) => {
                sys::local_link(authenticate(stream, key, Side::Listener, limit)?)?
            }
            PendingStream::Tcp(stream) => {
                Link::from_tcp(authenticate(stream, key, Side::Listener, limit)?)
            }
        };
        Ok(Connection::new(link, Direction::Duplex))
    }
}

/// Opens and drops a bare connection to `address`, so that a thread blocked in `accept` on
/// it returns (a server that was told to stop then sees its flag).
pub(crate) fn wake(address: &Address) {
    match address {
        Address::Local(name) => {
            if let Ok(name) = Address::local_name(name) {
                let _ = LocalStream::connect(name);
            }
        }
        Address::Tcp(addr) => {
            let mut addr = *addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
    }
}

/// Connects to a [`Listener`]: Python's `multiprocessing.connection.Client`.
///
/// # Examples
///
/// ```
/// use proc_ipc::{Address, Client, Listener};
///
/// let listener = Listener::bind(Address::unique_local(), Some(b"secret")).unwrap();
/// let address = listener.address().clone();
/// let server = std::thread::spawn(move || listener.accept().unwrap().recv::<String>().unwrap());
/// Client::connect(address, Some(b"secret")).unwrap().send("over a local socket").unwrap();
/// assert_eq!(server.join().unwrap(), "over a local socket");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Client;

impl Client {
    /// Connects to the listener at `address`; with `authkey`, both sides prove that they know
    /// it before this returns.
    ///
    /// The listener may take its time to call `accept`; once its challenge starts to arrive,
    /// the rest of the handshake must complete within [`DEFAULT_HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] when the keys differ, [`Error::Protocol`] when the
    /// listener speaks something else or leaves during the handshake, [`Error::Timeout`] when
    /// it stalls in the middle of it, [`Error::Io`] when nothing listens there.
    ///
    /// # Platform-specific behavior
    ///
    /// On Windows, named pipes (local addresses) have no read time-outs, and a listener that
    /// stalls in the middle of the handshake keeps `connect` waiting; use
    /// [`connect_timeout`](Client::connect_timeout) to bound it. Over TCP the time-out applies
    /// on every platform.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = proc_ipc::Client::connect(proc_ipc::Address::unique_local(), None).unwrap_err();
    /// assert!(matches!(err, proc_core::Error::Io(_)));
    /// ```
    #[doc(alias = "Client")]
    pub fn connect(address: impl Into<Address>, authkey: Option<&[u8]>) -> Result<Connection> {
        Client::connect_within(&address.into(), authkey, None)
    }

    /// As [`connect`](Client::connect), but gives up when the listener has not completed the
    /// handshake within `timeout` (counted from the call).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the time runs out, and the errors of
    /// [`connect`](Client::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use proc_ipc::{Address, Client, Listener};
    ///
    /// // Nobody calls accept: the challenge never comes.
    /// let listener = Listener::bind(Address::unique_local(), Some(b"key")).unwrap();
    /// let err = Client::connect_timeout(listener.address(), Some(b"key"), Duration::from_millis(50));
    /// assert!(err.unwrap_err().is_timeout());
    /// ```
    pub fn connect_timeout(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Connection> {
        Client::connect_within(&address.into(), authkey, Some(timeout))
    }

    fn connect_within(
        address: &Address,
        authkey: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Connection> {
        let link = match address {
            Address::Local(name) => {
                let stream = LocalStream::connect(Address::local_name(name)?)?;
                sys::local_link(authenticate(stream, authkey, Side::Client, timeout)?)?
            }
            Address::Tcp(addr) => {
                let stream = match timeout {
                    Some(t) => TcpStream::connect_timeout(addr, t)?,
                    None => TcpStream::connect(addr)?,
                };
                stream.set_nodelay(true)?;
                Link::from_tcp(authenticate(stream, authkey, Side::Client, timeout)?)
            }
        };
        Ok(Connection::new(link, Direction::Duplex))
    }
}

/// Which end of the handshake this process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Listener,
    Client,
}

/// A stream the handshake runs over: a local socket or a TCP stream.
pub(crate) trait HandshakeStream: Read + Write + Send + 'static {
    /// Sets the read and write time-outs; fails with `Unsupported` where there are none.
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl HandshakeStream for LocalStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_recv_timeout(timeout)?;
        self.set_send_timeout(timeout)
    }
}

impl HandshakeStream for TcpStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

/// Runs the handshake of `side` over `stream` when there is an authkey, and gives the stream
/// back once both sides are authenticated.
///
/// The listener's deadline (`limit`) starts at once. A client without a `limit` waits as
/// long as it takes for the first byte of the challenge (the listener may not have called
/// `accept` yet), then gives the rest [`DEFAULT_HANDSHAKE_TIMEOUT`].
pub(crate) fn authenticate<S: HandshakeStream>(
    stream: S,
    authkey: Option<&[u8]>,
    side: Side,
    limit: Option<Duration>,
) -> Result<S> {
    let Some(key) = authkey else {
        return Ok(stream);
    };
    if stream.set_timeouts(limit).is_ok() {
        let mut timed = Timed {
            stream,
            deadline: proc_core::internal::Deadline::from_timeout(limit).instant(),
        };
        handshake(&mut timed, key, side)?;
        timed.stream.set_timeouts(None)?;
        return Ok(timed.stream);
    }
    // No time-outs on this kind of stream (Windows named pipes): run the handshake on a
    // helper thread and stop waiting for it at the deadline. The thread then ends, with the
    // stream, when the peer sends or leaves.
    let Some(limit) = limit else {
        let mut plain = Timed {
            stream,
            deadline: None,
        };
        handshake(&mut plain, key, side)?;
        return Ok(plain.stream);
    };
    let key = key.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("procs-handshake".into())
        .spawn(move || {
            let mut plain = Timed {
                stream,
                deadline: None,
            };
            let result = handshake(&mut plain, &key, side).map(|()| plain.stream);
            let _ = tx.send(result);
        })?;
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout),
    }
}

/// A stream whose every read and write may only take until the deadline; `None` until the
/// first byte arrives (a client waiting for the listener to accept).
struct Timed<S> {
    stream: S,
    deadline: Option<Instant>,
}

impl<S: HandshakeStream> Timed<S> {
    /// Arms the time-out for the next operation with what is left until the deadline.
    fn arm(&self) -> io::Result<()> {
        match self.deadline {
            None => Ok(()),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                // Where time-outs do not exist the helper thread bounds the whole handshake.
                match self.stream.set_timeouts(Some(left)) {
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
                    other => other,
                }
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            self.arm().map_err(handshake_error)?;
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => return Err(handshake_error(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(handshake_error(e)),
            }
        }
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.arm().map_err(handshake_error)?;
        self.stream.write_all(buf).map_err(handshake_error)
    }
}

/// What an I/O error in the middle of the handshake means to the caller.
fn handshake_error(err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Error::Protocol(
            "the peer left during the authentication handshake; does it use the same authkey \
             setting (both sides with a key, or neither)?"
                .into(),
        ),
        _ => Error::Io(err),
    }
}

const CHALLENGE: &[u8; 11] = b"#CHALLENGE#";
const WELCOME: &[u8; 9] = b"#WELCOME#";
const FAILURE: &[u8; 9] = b"#FAILURE#";
const NONCE_LEN: usize = 32;
const DIGEST_LEN: usize = 32;
/// What the answer to each direction's challenge is about, mixed into its HMAC.
const LISTENER_CHALLENGE: &[u8] = b"procs listener challenge";
const CLIENT_CHALLENGE: &[u8] = b"procs client challenge";

fn handshake<S: HandshakeStream>(stream: &mut Timed<S>, key: &[u8], side: Side) -> Result<()> {
    match side {
        Side::Listener => {
            deliver_challenge(stream, key, LISTENER_CHALLENGE)?;
            answer_challenge(stream, key, CLIENT_CHALLENGE)
        }
        Side::Client => {
            answer_challenge(stream, key, LISTENER_CHALLENGE)?;
            deliver_challenge(stream, key, CLIENT_CHALLENGE)
        }
    }
}

fn mac(key: &[u8], purpose: &[u8], nonce: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes keys of any size");
    mac.update(purpose);
    mac.update(nonce);
    mac
}

/// Sends a fresh challenge and checks the answer (CPython's `deliver_challenge`).
fn deliver_challenge<S: HandshakeStream>(
    stream: &mut Timed<S>,
    key: &[u8],
    purpose: &[u8],
) -> Result<()> {
    let nonce = nonce();
    let mut message = [0u8; CHALLENGE.len() + NONCE_LEN];
    message[..CHALLENGE.len()].copy_from_slice(CHALLENGE);
    message[CHALLENGE.len()..].copy_from_slice(&nonce);
    stream.write_all(&message)?;
    let mut answer = [0u8; DIGEST_LEN];
    stream.read_exact(&mut answer)?;
    // `verify_slice` compares in constant time.
    if mac(key, purpose, &nonce).verify_slice(&answer).is_ok() {
        stream.write_all(WELCOME)
    } else {
        // The peer learns the verdict if it still listens; the error is ours either way.
        let _ = stream.write_all(FAILURE);
        Err(Error::AuthenticationFailed)
    }
}

/// Answers the peer's challenge and reads its verdict (CPython's `answer_challenge`).
fn answer_challenge<S: HandshakeStream>(
    stream: &mut Timed<S>,
    key: &[u8],
    purpose: &[u8],
) -> Result<()> {
    let mut message = [0u8; CHALLENGE.len() + NONCE_LEN];
    // The first byte may take as long as the listener takes to accept; the rest may not.
    stream.read_exact(&mut message[..1])?;
    if stream.deadline.is_none() {
        stream.deadline = Some(Instant::now() + DEFAULT_HANDSHAKE_TIMEOUT);
    }
    stream.read_exact(&mut message[1..])?;
    let (magic, nonce) = message.split_at(CHALLENGE.len());
    if magic != CHALLENGE {
        return Err(Error::Protocol(
            "the peer did not start the authentication handshake; is it a procs listener \
             with an authkey?"
                .into(),
        ));
    }
    let digest = mac(key, purpose, nonce).finalize().into_bytes();
    stream.write_all(&digest)?;
    let mut verdict = [0u8; WELCOME.len()];
    stream.read_exact(&mut verdict)?;
    match &verdict {
        WELCOME => Ok(()),
        FAILURE => Err(Error::AuthenticationFailed),
        _ => Err(Error::Protocol(
            "the peer answered the authentication handshake with garbage".into(),
        )),
    }
}

/// 32 bytes that no one can guess or has seen before.
///
/// They hash this process's authkey (32 bytes from the operating system's random source,
/// secret to this process and its children), keys of std's `RandomState` (seeded from the
/// operating system as well, new for each call), the pid, the time and a counter: SHA-256 of
/// secret, unrepeated input.
fn nonce() -> [u8; NONCE_LEN] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hash = Sha256::new();
    hash.update(proc_core::current_process().authkey());
    for i in 0..4u64 {
        hash.update(RandomState::new().hash_one((n, i)).to_le_bytes());
    }
    hash.update(std::process::id().to_le_bytes());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    hash.update(now.as_nanos().to_le_bytes());
    hash.update(n.to_le_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }

    #[test]
    fn the_two_directions_do_not_share_answers() {
        let n = nonce();
        let a = mac(b"k", LISTENER_CHALLENGE, &n).finalize().into_bytes();
        let b = mac(b"k", CLIENT_CHALLENGE, &n).finalize().into_bytes();
        assert_ne!(a, b);
    }
}
