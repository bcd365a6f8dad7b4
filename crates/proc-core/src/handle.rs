//! Operating-system handles inside serde values: how pipes, queues, locks and shared memory
//! cross into other processes.
//!
//! A [`Handle`] owns a file descriptor (Unix) or a `HANDLE` (Windows). It serializes only
//! while `procs` sends a value to another process — as the argument or result of a
//! [`Process`](crate::Process), or through a [`Link`] — and the receiving process gets its own
//! handle to the same object: passed with `SCM_RIGHTS` on Unix, duplicated into the receiver on
//! Windows, inherited by a forked child. Anywhere else (`codec::encode`, a file) serializing a
//! `Handle` is an error, because a bare number would mean nothing in another process.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeOwned, DeserializeSeed};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec;
use crate::error::Result;
// Only the docs name the error variants.
#[cfg(doc)]
use crate::error::Error;
use crate::sys;

thread_local! {
    /// While a value is encoded for another process: the handles met so far.
    static OUTGOING: RefCell<Option<Vec<sys::RawHandle>>> = const { RefCell::new(None) };
    /// Set when a handle is encoded for another process: [`encode_items_with_handles_into`]
    /// looks at it after each item, where looking into `OUTGOING` would cost a borrow.
    static MET: Cell<bool> = const { Cell::new(false) };
    /// While a value from another process is decoded: the table of the handles that came
    /// with it, owned by [`decode_with_handles`]'s frame (null outside of one). A plain
    /// pointer needs no destructor, so a thread's first decode registers none: a forked
    /// child's decode of its arguments would otherwise lock the dynamic loader and write to
    /// its pages, each one a copy of the parent's.
    static INCOMING: Cell<*mut Vec<Option<sys::OwnedHandle>>> = const { Cell::new(std::ptr::null_mut()) };
}

/// Sets a thread-local for the span of one encoding or decoding, and puts the outer value
/// back when it ends — also when a `Serialize` impl panics, so that no later encoding outside
/// of procs finds a table to write handle numbers into.
struct Scope<T: 'static> {
    key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    outer: Option<Option<T>>,
}

impl<T: 'static> Scope<T> {
    fn enter(
        key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
        value: Option<T>,
    ) -> Scope<T> {
        let outer = key.with(|cell| cell.replace(value));
        Scope {
            key,
            outer: Some(outer),
        }
    }

    /// The value set for this scope, as it is now.
    fn take(&mut self) -> Option<T> {
        self.key.with(|cell| cell.borrow_mut().take())
    }
}

impl<T: 'static> Drop for Scope<T> {
    fn drop(&mut self) {
        let outer = self.outer.take().flatten();
        self.key.with(|cell| *cell.borrow_mut() = outer);
    }
}

/// Encodes `value` for another process and collects the handles inside it. The handles stay
/// owned by `value`, which must live until they are sent.
pub(crate) fn encode_with_handles<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(Vec<u8>, Vec<sys::RawHandle>)> {
    let mut scope = Scope::enter(&OUTGOING, Some(Vec::new()));
    let bytes = codec::encode(value);
    let handles = scope.take().unwrap_or_default();
    Ok((bytes?, handles))
}

/// Like [`encode_with_handles`], appending the bytes to `buf` (no copy of them).
pub(crate) fn encode_with_handles_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<Vec<sys::RawHandle>> {
    let mut scope = Scope::enter(&OUTGOING, Some(Vec::new()));
    let encoded = codec::encode_into(value, buf);
    let handles = scope.take().unwrap_or_default();
    encoded.map(|()| handles)
}

/// What [`encode_items_with_handles_into`] did: how many items it encoded, and the items
/// from the first one that holds a handle on, with where that one's bytes start.
pub(crate) struct EncodedItems<T> {
    pub(crate) count: usize,
    pub(crate) kept: Option<(usize, Vec<T>)>,
}

/// Encodes the items of `items` for another process one after the other at the end of
/// `buf` (the elements of a sequence, without its length), taking each from the iterator as
/// it goes. An item without handles is dropped once it is encoded: its bytes are all there
/// is to send. The items from the first that holds a handle on are kept, for they own the
/// handles until they are sent, and are encoded again then (see
/// [`Outgoing`](crate::internal::Outgoing)); the bytes before that first one are the same in
/// every encoding, as they hold no handle numbers.
pub(crate) fn encode_items_with_handles_into<T: Serialize>(
    mut items: impl Iterator<Item = T>,
    buf: &mut Vec<u8>,
) -> Result<EncodedItems<T>> {
    let _scope = Scope::enter(&OUTGOING, Some(Vec::new()));
    // An item's `Serialize` may encode a sequence of its own: the flag it leaves is put
    // back together with this one's.
    let outer = MET.replace(false);
    let mut encoder = codec::EachEncoder::new(buf);
    let mut count = 0usize;
    let mut kept = None;
    let encoded = (|| {
        // Until an item holds a handle, nothing but a flag is looked at after each.
        for item in items.by_ref() {
            let start = encoder.len();
            encoder.encode(&item)?;
            count += 1;
            if MET.get() {
                kept = Some((start, vec![item]));
                break;
            }
        }
        if let Some((_, kept)) = &mut kept {
            for item in items {
                encoder.encode(&item)?;
                count += 1;
                kept.push(item);
            }
        }
        Ok(())
    })();
    MET.set(outer || MET.get());
    encoded.map(|()| EncodedItems { count, kept })
}

/// Decodes a value from another process, giving it the handles that came with it. Handles
/// the value does not take are closed.
pub(crate) fn decode_with_handles<T: DeserializeOwned>(
    bytes: &[u8],
    handles: Vec<sys::OwnedHandle>,
) -> Result<T> {
    decode_seed_with_handles(bytes, handles, std::marker::PhantomData::<T>)
}

/// [`decode_with_handles`] with a seed (see [`codec::decode_seed`]).
pub(crate) fn decode_seed_with_handles<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    handles: Vec<sys::OwnedHandle>,
    seed: S,
) -> Result<S::Value> {
    /// Puts the outer decode's table back, also when a `Deserialize` impl panics.
    struct Restore(*mut Vec<Option<sys::OwnedHandle>>);

    impl Drop for Restore {
        fn drop(&mut self) {
            INCOMING.set(self.0);
        }
    }

    let mut table: Vec<Option<sys::OwnedHandle>> = handles.into_iter().map(Some).collect();
    let _restore = Restore(INCOMING.replace(&mut table));
    codec::decode_seed(bytes, seed)
    // `_restore` drops before `table`: no pointer to it outlives this frame.
}

/// An operating-system handle that can travel to another process inside a serde value.
///
/// # Errors
///
/// Serializing a `Handle` outside of `procs`'s own sending (for example with
/// [`codec::encode`]) fails: postcard reports it as a serde error.
///
/// # Examples
///
/// A pipe's write end goes to a child, which writes through it:
///
/// ```
/// use std::io::{Read, Write};
///
/// use proc_core::{Handle, Process};
///
/// fn write_hello(handle: Handle) {
///     let mut pipe = std::io::PipeWriter::from(handle);
///     pipe.write_all(b"hello").unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let (mut reader, writer) = std::io::pipe().unwrap();
///     let mut p = Process::spawn(write_hello, Handle::from(writer)).unwrap();
///     p.join().unwrap();
///     let mut text = String::new();
///     reader.read_to_string(&mut text).unwrap();
///     assert_eq!(text, "hello");
/// }
/// ```
pub struct Handle {
    inner: sys::OwnedHandle,
}

impl Handle {
    /// Another handle to the same object.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no handle to spare.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_reader, writer) = std::io::pipe().unwrap();
    /// let handle = proc_core::Handle::from(writer);
    /// let copy = handle.try_clone().unwrap();
    /// # drop((handle, copy));
    /// ```
    pub fn try_clone(&self) -> Result<Handle> {
        Ok(Handle {
            inner: sys::duplicate_handle(sys::raw_handle(&self.inner))?,
        })
    }

    pub(crate) fn from_sys(inner: sys::OwnedHandle) -> Handle {
        Handle { inner }
    }

    pub(crate) fn into_sys(self) -> sys::OwnedHandle {
        self.inner
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handle").field(&self.inner).finish()
    }
}

/// Serializes a handle as its index among the handles that travel with the value.
fn serialize_raw<S: Serializer>(
    raw: sys::RawHandle,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let index = OUTGOING.with(|o| {
        o.borrow_mut().as_mut().map(|handles| {
            handles.push(raw);
            handles.len() - 1
        })
    });
    if index.is_some() {
        MET.set(true);
    }
    match index {
        Some(index) => serializer.serialize_u32(index as u32),
        None => Err(crate::codec::ser_error(
            "a handle can only be sent by procs (as a Process argument or result, or through a Link)",
        )),
    }
}

/// Takes the handle that a serialized index names.
fn deserialize_owned<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<sys::OwnedHandle, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    let table = INCOMING.get();
    let taken = if table.is_null() {
        None
    } else {
        // SAFETY: a non-null table is the one that `decode_with_handles`, still running
        // further up this thread's stack, owns and lent for its decode; nothing else refers
        // to it while this call runs (a nested decode lends its own table and puts this one
        // back before it returns), and the borrow ends within this statement.
        unsafe { (&mut *table).get_mut(index).and_then(Option::take) }
    };
    taken.ok_or_else(|| {
        crate::codec::de_error(format!(
            "handle {index} did not arrive with the value, or was used twice"
        ))
    })
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_raw(sys::raw_handle(&self.inner), serializer)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserialize_owned(deserializer).map(Handle::from_sys)
    }
}

/// A `Link` travels like a [`Handle`]: the receiving process gets its own end of the same
/// link (the frame limit is not carried along). On Windows a link over TCP does not travel:
/// serializing it is an error. On Linux a link reads small frames ahead of the one asked for
/// (one system call for several); while it holds frames it has not returned, it refuses to
/// travel, since they would stay behind: receive them first.
impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let raw = self.channel.raw_handle().map_err(crate::codec::ser_error)?;
        serialize_raw(raw, serializer)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserialize_owned(deserializer).map(|h| Link::from_channel(sys::Channel::from_handle(h)))
    }
}

/// A two-way link between two processes that carries frames of bytes and serde values with
/// [`Handle`]s in them: the transport under `procs`'s pipes and the channel between a parent
/// and each child.
///
/// # Examples
///
/// ```
/// let (a, b) = proc_core::Link::pair().unwrap();
/// a.send(&("ping", 1u8)).unwrap();
/// assert_eq!(b.recv::<(String, u8)>().unwrap(), ("ping".to_string(), 1));
/// b.send_bytes(b"pong").unwrap();
/// assert!(a.poll(Some(std::time::Duration::from_secs(5))).unwrap());
/// assert_eq!(a.recv_bytes().unwrap(), b"pong");
/// ```
#[derive(Debug)]
pub struct Link {
    pub(crate) channel: sys::Channel,
    pub(crate) max_frame: usize,
    /// One frame at a time in each direction: a frame (and the handles sent with it) must
    /// not interleave with another thread's.
    pub(crate) sending: std::sync::Mutex<()>,
    pub(crate) receiving: std::sync::Mutex<()>,
}

impl Link {
    /// Two connected ends.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system refuses to create the pair.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// drop(a);
    /// assert!(matches!(b.recv_bytes(), Err(proc_core::Error::Closed)));
    /// ```
    pub fn pair() -> Result<(Link, Link)> {
        let (a, b) = sys::Channel::pair()?;
        Ok((Link::from_channel(a), Link::from_channel(b)))
    }

    /// A link over a stream that is already connected to another process, such as one that a
    /// listener accepted.
    ///
    /// Both ends must speak `Link` frames: the other end is a `Link` too.
    ///
    /// # Platform-specific behavior
    ///
    /// On Unix `stream` is a connected stream socket. Over a Unix domain socket, values may
    /// carry [`Handle`]s (`SCM_RIGHTS`); over TCP they cannot, and sending one is an
    /// [`Error::Io`](crate::Error::Io) of kind `InvalidInput` that sends nothing. On Windows
    /// `stream` is a byte-mode named pipe; call [`set_peer`](Link::set_peer) with the other
    /// process's pid before sending handles through it. For TCP on every platform, use
    /// [`from_tcp`](Link::from_tcp).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::os::fd::OwnedFd;
    /// use std::os::unix::net::UnixStream;
    ///
    /// use proc_core::{Handle, Link};
    ///
    /// let (a, b) = UnixStream::pair().unwrap();
    /// let a = Link::from_stream(Handle::from(OwnedFd::from(a)));
    /// let b = Link::from_stream(Handle::from(OwnedFd::from(b)));
    /// a.send("over a socket").unwrap();
    /// assert_eq!(b.recv::<String>().unwrap(), "over a socket");
    /// # }
    /// ```
    pub fn from_stream(stream: Handle) -> Link {
        Link::from_channel(sys::Channel::from_handle(stream.into_sys()))
    }

    /// A link over a TCP connection to another process, such as one that a
    /// [`TcpListener`](std::net::TcpListener) accepted.
    ///
    /// Both ends must speak `Link` frames: the other end is a `Link` too, or a program that
    /// writes and reads [`codec`] frames (a `u32` length, then the payload), which is all a
    /// frame over TCP is on every platform, so that the two ends may run on different
    /// systems. Frames carry bytes and serde values, but no [`Handle`]s: sending a value that
    /// holds one is an [`Error::Io`] of kind `InvalidInput` that sends nothing. For
    /// request–response traffic, turn off Nagle's algorithm first
    /// ([`set_nodelay(true)`](std::net::TcpStream::set_nodelay)), or a small frame may wait
    /// for the acknowledgement of the one before. The stream must be in blocking mode, without
    /// read or write time-outs.
    ///
    /// # Platform-specific behavior
    ///
    /// On Unix this is [`from_stream`](Link::from_stream) with the socket's descriptor. On
    /// Windows the link reads and writes the socket with Winsock and waits on it with
    /// `WSAPoll`; such a link cannot itself be sent to another process (serializing it is an
    /// error), where on Unix it can, over a local connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// use proc_core::Link;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let (server, _) = listener.accept().unwrap();
    /// let (a, b) = (Link::from_tcp(client), Link::from_tcp(server));
    /// a.send(&("over tcp", 2u8)).unwrap();
    /// assert_eq!(b.recv::<(String, u8)>().unwrap(), ("over tcp".to_string(), 2));
    /// drop(a);
    /// assert!(matches!(b.recv_bytes(), Err(proc_core::Error::Closed)));
    /// ```
    pub fn from_tcp(stream: std::net::TcpStream) -> Link {
        Link::from_channel(sys::Channel::from_tcp(stream))
    }

    pub(crate) fn from_channel(channel: sys::Channel) -> Link {
        Link {
            channel,
            max_frame: codec::DEFAULT_MAX_FRAME,
            sending: std::sync::Mutex::new(()),
            receiving: std::sync::Mutex::new(()),
        }
    }

    /// Sets the largest frame `recv` accepts (default [`codec::DEFAULT_MAX_FRAME`]); a longer
    /// one is an [`Error::Protocol`] and is not read into memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, mut b) = proc_core::Link::pair().unwrap();
    /// b.set_max_frame(4);
    /// a.send_bytes(b"too long").unwrap();
    /// assert!(matches!(b.recv_bytes(), Err(proc_core::Error::Protocol(_))));
    /// ```
    pub fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    /// Tells the link the pid of the process at the other end.
    ///
    /// # Platform-specific behavior
    ///
    /// Windows needs it to send [`Handle`]s (they are duplicated into that process); Unix
    /// ignores it.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = proc_core::Link::pair().unwrap();
    /// a.set_peer(proc_core::getpid());
    /// ```
    pub fn set_peer(&self, pid: u32) {
        self.channel.set_peer(pid);
    }

    /// Sends `value`, with the handles inside it, as one frame.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value does not serialize, [`Error::Io`] when the peer is
    /// gone or the system fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// a.send(&vec![1u32, 2, 3]).unwrap();
    /// assert_eq!(b.recv::<Vec<u32>>().unwrap(), [1, 2, 3]);
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let (bytes, handles) = encode_with_handles(value)?;
        let _turn = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.send_frame(&bytes, &handles)?)
    }

    /// Receives one value, with the handles that came with it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the peer closed its end, [`Error::Protocol`] for a frame that
    /// is too long or cut short, [`Error::Decode`] when the bytes are not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// a.send("text").unwrap();
    /// assert!(matches!(b.recv::<u64>(), Err(proc_core::Error::Decode(_))));
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        let (bytes, handles) = {
            let _turn = self.receiving.lock().unwrap_or_else(|e| e.into_inner());
            self.channel.recv_frame(self.max_frame)?
        };
        decode_with_handles(&bytes, handles)
    }

    /// Sends raw bytes as one frame.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the peer is gone or the system fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// a.send_bytes(&[1, 2, 3]).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), [1, 2, 3]);
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        let _turn = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.send_frame(bytes, &[])?)
    }

    /// Sends `parts`, one after the other, as one frame of raw bytes: what
    /// [`send_bytes`](Link::send_bytes) sends for their concatenation, written from where
    /// the parts lie (one gathering write on Unix) rather than copied together first.
    ///
    /// # Errors
    ///
    /// As [`send_bytes`](Link::send_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// a.send_bytes_parts(&[b"head ", b"", b"tail"]).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"head tail");
    /// ```
    pub fn send_bytes_parts(&self, parts: &[&[u8]]) -> Result<()> {
        let _turn = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.send_frame_parts(parts)?)
    }

    /// Receives one frame of raw bytes; handles sent with it are closed.
    ///
    /// # Errors
    ///
    /// As [`recv`](Link::recv), without the decoding.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// a.send_bytes(b"").unwrap();
    /// assert!(b.recv_bytes().unwrap().is_empty());
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        let _turn = self.receiving.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.recv_frame(self.max_frame)?.0)
    }

    /// Waits at most `timeout` (forever with `None`) until there is something to receive —
    /// a frame, or the end of the stream. Returns whether there is.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// assert!(!b.poll(Some(Duration::from_millis(1))).unwrap());
    /// a.send_bytes(b"x").unwrap();
    /// assert!(b.poll(Some(Duration::ZERO)).unwrap());
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        Ok(self.channel.wait_readable(timeout)?)
    }

    /// Waits at most `timeout` (forever with `None`) until at least one of `links` has
    /// something to receive; returns the indexes of those that do (empty on time-out).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) when the system fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = proc_core::Link::pair().unwrap();
    /// let (c, d) = proc_core::Link::pair().unwrap();
    /// c.send_bytes(b"!").unwrap();
    /// assert_eq!(proc_core::Link::wait_any(&[&b, &d], Some(Duration::from_secs(5))).unwrap(), [1]);
    /// assert!(proc_core::Link::wait_any(&[&b], Some(Duration::ZERO)).unwrap().is_empty());
    /// # drop(a);
    /// ```
    pub fn wait_any(links: &[&Link], timeout: Option<Duration>) -> Result<Vec<usize>> {
        let channels: Vec<&sys::Channel> = links.iter().map(|l| &l.channel).collect();
        Ok(sys::wait_any(&channels, timeout)?)
    }

    /// Makes a receive that waits longer than `timeout` for the next bytes of a frame fail
    /// with an [`Error::Io`] of kind `WouldBlock` (the stream is then out of step: drop the
    /// link). Internal: lets the pool give up on a worker that stalls in the middle of an
    /// answer.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix only; on Windows this does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system refuses the setting.
    #[doc(hidden)]
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.channel.set_read_timeout(timeout)?)
    }

    /// Sends `header` followed by `value` as one frame, with the handles inside `value`.
    /// Internal: for protocols of the `procs` crates.
    ///
    /// # Errors
    ///
    /// As [`send`](Link::send).
    #[doc(hidden)]
    pub fn send_after<T: Serialize + ?Sized>(&self, header: &[u8], value: &T) -> Result<()> {
        let mut scope = Scope::enter(&OUTGOING, Some(Vec::new()));
        let mut bytes = header.to_vec();
        let encoded = codec::encode_into(value, &mut bytes);
        let handles = scope.take().unwrap_or_default();
        drop(scope);
        encoded?;
        let _turn = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.send_frame(&bytes, &handles)?)
    }
}

impl From<Handle> for sys::OwnedHandle {
    fn from(handle: Handle) -> Self {
        handle.into_sys()
    }
}

impl From<sys::OwnedHandle> for Handle {
    fn from(inner: sys::OwnedHandle) -> Self {
        Handle::from_sys(inner)
    }
}

/// Conversions from and to the standard library's handle types, whatever the platform calls
/// them (`OwnedFd` on Unix, `OwnedHandle` on Windows).
macro_rules! std_conversions {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Handle {
            fn from(value: $ty) -> Self {
                Handle::from_sys(sys::OwnedHandle::from(value))
            }
        }

        impl From<Handle> for $ty {
            fn from(handle: Handle) -> Self {
                <$ty>::from(handle.into_sys())
            }
        }
    )*};
}

// Sockets are left out: on Windows they are SOCKETs, which travel another way.
std_conversions!(std::fs::File, std::io::PipeReader, std::io::PipeWriter);
