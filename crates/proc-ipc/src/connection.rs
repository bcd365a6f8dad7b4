//! `Pipe` and `Connection`: Python's `multiprocessing.Pipe()` and its connection objects.

use std::fmt;
use std::time::Duration;

use proc_core::{Error, Link, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One end of a pipe: sends and receives serde values and byte messages.
///
/// A `Connection` is an ordinary argument of [`Process::spawn`](proc_core::Process::spawn):
/// the child gets a working end. It can also be sent through another `Connection` to a process
/// that is already running (Python refuses that and points to managers). Values may hold
/// [`Handle`](proc_core::Handle)s, queues and other connections. On Linux an end reads small
/// messages ahead (one system call brings several); an end that holds messages it has not
/// returned yet refuses to be sent (an error), since they would stay behind: receive them
/// first.
///
/// A receiver sees end-of-file ([`Error::Closed`]) once every copy of the other end is closed.
/// A child started with [`StartMethod::Fork`](proc_core::StartMethod::Fork) inherits copies of
/// all the parent's ends, as in Python, so under `Fork` tell a child to stop with a message
/// rather than by closing the parent's end.
///
/// # Examples
///
/// ```
/// use proc_ipc::Pipe;
///
/// let (left, right) = Pipe::duplex().unwrap();
/// left.send(&("ping", 1)).unwrap();
/// let (word, n): (String, i32) = right.recv().unwrap();
/// assert_eq!((word.as_str(), n), ("ping", 1));
/// ```
#[derive(Serialize, Deserialize)]
pub struct Connection {
    link: Option<Link>,
    readable: bool,
    writable: bool,
}

/// Makes connected pairs: Python's `Pipe(duplex)`.
///
/// # Examples
///
/// ```
/// let (reader, writer) = proc_ipc::Pipe::simplex().unwrap();
/// writer.send_bytes(b"one way").unwrap();
/// assert_eq!(reader.recv_bytes().unwrap(), b"one way");
/// assert!(reader.send_bytes(b"back").is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Pipe;

impl Pipe {
    /// Two ends that both send and receive (Python's `Pipe()`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no descriptors left.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// a.send(&1u8).unwrap();
    /// b.send(&2u8).unwrap();
    /// assert_eq!(b.recv::<u8>().unwrap() + a.recv::<u8>().unwrap(), 3);
    /// ```
    #[doc(alias = "Pipe")]
    pub fn duplex() -> Result<(Connection, Connection)> {
        let (a, b) = Link::pair()?;
        Ok((
            Connection::new(a, Direction::Duplex),
            Connection::new(b, Direction::Duplex),
        ))
    }

    /// A reader and a writer (Python's `Pipe(duplex=False)`), in that order.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the system has no descriptors left.
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, writer) = proc_ipc::Pipe::simplex().unwrap();
    /// assert!(reader.readable() && !reader.writable());
    /// assert!(writer.writable() && !writer.readable());
    /// ```
    #[doc(alias = "Pipe")]
    pub fn simplex() -> Result<(Connection, Connection)> {
        let (a, b) = Link::pair()?;
        Ok((
            Connection::new(a, Direction::ReadOnly),
            Connection::new(b, Direction::WriteOnly),
        ))
    }
}

/// Which ways a new connection carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Both ways.
    Duplex,
    /// It only receives.
    ReadOnly,
    /// It only sends.
    WriteOnly,
}

impl Connection {
    pub(crate) fn new(link: Link, direction: Direction) -> Connection {
        Connection {
            link: Some(link),
            readable: direction != Direction::WriteOnly,
            writable: direction != Direction::ReadOnly,
        }
    }

    fn link(&self) -> Result<&Link> {
        self.link
            .as_ref()
            .ok_or(Error::InvalidState("the connection is closed"))
    }

    fn reading(&self) -> Result<&Link> {
        let link = self.link()?;
        if self.readable {
            Ok(link)
        } else {
            Err(Error::InvalidState("the connection is write-only"))
        }
    }

    fn writing(&self) -> Result<&Link> {
        let link = self.link()?;
        if self.writable {
            Ok(link)
        } else {
            Err(Error::InvalidState("the connection is read-only"))
        }
    }

    /// Sends a value (with the handles, queues or connections inside it).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the other end is gone, [`Error::Decode`] when the value does not
    /// serialize, [`Error::InvalidState`] on a closed or read-only connection.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// a.send(&vec!["x".to_string()]).unwrap();
    /// assert_eq!(b.recv::<Vec<String>>().unwrap(), ["x"]);
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.writing()?.send(value)
    }

    /// Receives a value, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the other end is closed (Python's `EOFError`),
    /// [`Error::Decode`] when the message is not a `T`, [`Error::Protocol`] when it is longer
    /// than the limit or cut short; the connection stays usable after a `Decode` error.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// drop(a);
    /// assert!(matches!(b.recv::<u8>(), Err(proc_core::Error::Closed)));
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        self.reading()?.recv()
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when nothing arrived in time, and the errors of
    /// [`recv`](Connection::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// assert!(b.recv_timeout::<u8>(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// # drop(a);
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        let link = self.reading()?;
        if !link.poll(Some(timeout))? {
            return Err(Error::Timeout);
        }
        link.recv()
    }

    /// Sends a byte message.
    ///
    /// # Errors
    ///
    /// As [`send`](Connection::send).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// a.send_bytes(&[0, 1, 2]).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), [0, 1, 2]);
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.writing()?.send_bytes(bytes)
    }

    /// Sends `parts`, one after the other, as one byte message, from where they lie (see
    /// [`Link::send_bytes_parts`]).
    pub(crate) fn send_bytes_parts(&self, parts: &[&[u8]]) -> Result<()> {
        self.writing()?.send_bytes_parts(parts)
    }

    /// Receives a byte message.
    ///
    /// # Errors
    ///
    /// As [`recv`](Connection::recv), without the decoding.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// a.send_bytes(b"").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"");
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.reading()?.recv_bytes()
    }

    /// Receives a byte message into `buf` and returns its length.
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooShort`] with the whole message when it does not fit (Python's
    /// `BufferTooShort`), and the errors of [`recv_bytes`](Connection::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// a.send_bytes(b"abc").unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 3);
    /// assert_eq!(&buf[..3], b"abc");
    /// a.send_bytes(b"much too long").unwrap();
    /// assert!(matches!(b.recv_bytes_into(&mut buf), Err(proc_core::Error::BufferTooShort(m)) if m == b"much too long"));
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize> {
        let message = self.recv_bytes()?;
        match buf.get_mut(..message.len()) {
            Some(place) => {
                place.copy_from_slice(&message);
                Ok(message.len())
            }
            None => Err(Error::BufferTooShort(message)),
        }
    }

    /// Whether there is something to receive, waiting at most `timeout` (forever with
    /// `None`; Python's default of not waiting is `Some(Duration::ZERO)`). End-of-file counts
    /// as something: `recv` then reports [`Error::Closed`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] on a closed or write-only connection, [`Error::Io`] when the
    /// system fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    /// a.send(&()).unwrap();
    /// assert!(b.poll(None).unwrap());
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.reading()?.poll(timeout)
    }

    /// Sets the longest message this end accepts (default 1 GiB); a longer one is an
    /// [`Error::Protocol`] and is never read into memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, mut b) = proc_ipc::Pipe::duplex().unwrap();
    /// b.set_max_message_size(2);
    /// a.send_bytes(b"abc").unwrap();
    /// assert!(matches!(b.recv_bytes(), Err(proc_core::Error::Protocol(_))));
    /// ```
    pub fn set_max_message_size(&mut self, max: usize) {
        if let Some(link) = &mut self.link {
            link.set_max_frame(max);
        }
    }

    /// Closes this end; the other end then reads end-of-file. Closing twice is fine.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, b) = proc_ipc::Pipe::duplex().unwrap();
    /// a.close();
    /// assert!(a.closed());
    /// assert!(b.recv_bytes().is_err());
    /// ```
    pub fn close(&mut self) {
        self.link = None;
    }

    /// Whether [`close`](Connection::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = proc_ipc::Pipe::duplex().unwrap();
    /// assert!(!a.closed());
    /// ```
    pub fn closed(&self) -> bool {
        self.link.is_none()
    }

    /// Whether this end may receive.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = proc_ipc::Pipe::duplex().unwrap();
    /// assert!(a.readable());
    /// ```
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end may send.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = proc_ipc::Pipe::duplex().unwrap();
    /// assert!(a.writable());
    /// ```
    pub fn writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn readable_link(&self) -> Result<&Link> {
        self.reading()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.closed())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}
