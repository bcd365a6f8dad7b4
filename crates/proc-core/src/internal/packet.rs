//! Frames of a caller's protocol: a header of plain bytes, then a serde value with the OS
//! handles inside it; and functions named to a peer of the same build.

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::error::{Error, Result};
use crate::fingerprint;
use crate::handle::{self, Link};
use crate::sys;

/// The arguments of a frame, whatever their type, kept while they hold handles.
trait Reencode: Send {
    fn encode_into(&self, header: &[u8]) -> Result<(Vec<u8>, Vec<sys::RawHandle>)>;
}

impl<T: Serialize + Send> Reencode for T {
    fn encode_into(&self, header: &[u8]) -> Result<(Vec<u8>, Vec<sys::RawHandle>)> {
        let (value, handles) = handle::encode_with_handles(self)?;
        let mut bytes = Vec::with_capacity(header.len() + value.len());
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&value);
        Ok((bytes, handles))
    }
}

/// A frame to send: `header` followed by a value, encoded once when it is made.
///
/// A value that holds handles is kept (and encoded again when sent, which collects the
/// handles while they are open); any other value is dropped at once.
///
/// # Examples
///
/// ```
/// use proc_core::Link;
/// use proc_core::internal::Outgoing;
///
/// let (a, b) = Link::pair().unwrap();
/// let frame = Outgoing::encode(vec![7], (1u8, "two".to_string())).unwrap();
/// a.send_outgoing(&frame).unwrap();
/// let got = b.recv_incoming().unwrap();
/// assert_eq!(got.bytes()[0], 7);
/// assert_eq!(got.decode::<(u8, String)>(1).unwrap(), (1, "two".to_string()));
/// ```
pub struct Outgoing {
    pub(crate) bytes: Vec<u8>,
    header_len: usize,
    keep: Option<Box<dyn Reencode>>,
}

impl Outgoing {
    /// `header` followed by `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value does not serialize.
    pub fn encode<T: Serialize + Send + 'static>(header: Vec<u8>, value: T) -> Result<Outgoing> {
        let header_len = header.len();
        let mut bytes = header;
        let handles = handle::encode_with_handles_into(&value, &mut bytes)?;
        let keep = (!handles.is_empty()).then(|| Box::new(value) as Box<dyn Reencode>);
        Ok(Outgoing {
            bytes,
            header_len,
            keep,
        })
    }

    /// The length of the frame in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame's value holds handles (and so is encoded again when sent).
    pub fn has_handles(&self) -> bool {
        self.keep.is_some()
    }

    /// The whole frame's bytes, when its value holds no handles (a frame with handles is
    /// encoded again when sent, and can only go by a link).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::internal::Outgoing;
    ///
    /// let frame = Outgoing::encode(vec![7], 300u16).unwrap();
    /// assert_eq!(frame.plain_bytes(), Some(&[7, 0xac, 0x02][..]));
    /// ```
    pub fn plain_bytes(&self) -> Option<&[u8]> {
        self.keep.is_none().then_some(&self.bytes[..])
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Rewrites the header in place; `header` must be as long as the one the frame was made
    /// with.
    ///
    /// # Panics
    ///
    /// When the lengths differ: a caller's bug.
    pub fn set_header(&mut self, header: &[u8]) {
        assert_eq!(header.len(), self.header_len, "headers keep their length");
        self.bytes[..header.len()].copy_from_slice(header);
    }

    /// The header, to change in place.
    pub fn header_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.header_len]
    }

    /// The frame's buffer, for a caller that is done with the frame and would otherwise
    /// allocate another of about its size: memory that was written once is mapped already,
    /// where a new allocation of many pages is faulted in page by page. The value a frame
    /// with handles keeps is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::internal::Outgoing;
    ///
    /// let frame = Outgoing::encode(vec![7], 300u16).unwrap();
    /// let bytes = frame.into_bytes();
    /// assert_eq!(bytes, [7, 0xac, 0x02]);
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn frame(&self) -> Result<(std::borrow::Cow<'_, [u8]>, Vec<sys::RawHandle>)> {
        match &self.keep {
            None => Ok((std::borrow::Cow::Borrowed(&self.bytes), Vec::new())),
            Some(value) => {
                let (bytes, handles) = value.encode_into(&self.bytes[..self.header_len])?;
                Ok((std::borrow::Cow::Owned(bytes), handles))
            }
        }
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("len", &self.bytes.len())
            .field("handles", &self.keep.is_some())
            .finish()
    }
}

/// A frame received with [`Link::recv_incoming`](crate::Link::recv_incoming): bytes, and
/// the handles that came with them.
#[derive(Debug)]
pub struct Incoming {
    pub(crate) bytes: Vec<u8>,
    pub(crate) handles: Vec<sys::OwnedHandle>,
}

impl Incoming {
    /// A frame that came by another way than a link (shared memory, say): bytes alone, so
    /// a value decoded from it can hold no handles.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = proc_core::codec::encode(&(7u8, "seven")).unwrap();
    /// let frame = proc_core::internal::Incoming::from_bytes(bytes);
    /// assert_eq!(frame.decode::<(u8, String)>(0).unwrap(), (7, "seven".to_string()));
    /// ```
    pub fn from_bytes(bytes: Vec<u8>) -> Incoming {
        Incoming {
            bytes,
            handles: Vec::new(),
        }
    }

    /// The bytes of the frame.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes the value that starts at `offset`, giving it the handles of the frame.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when the frame is shorter than `offset`, [`Error::Decode`] when
    /// the bytes are not a `T`.
    pub fn decode<T: DeserializeOwned>(self, offset: usize) -> Result<T> {
        handle::decode_with_handles(after_header(&self.bytes, offset)?, self.handles)
    }

    /// [`decode`](Incoming::decode) with a seed: the value that `seed` makes of the bytes
    /// from `offset` (a seed may put what it reads into memory its caller has, say). The
    /// frame gives its handles to the value and keeps its bytes.
    ///
    /// # Errors
    ///
    /// As [`decode`](Incoming::decode).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::marker::PhantomData;
    ///
    /// let mut frame = vec![9];
    /// proc_core::codec::encode_into(&(7u8, "seven"), &mut frame).unwrap();
    /// let mut frame = proc_core::internal::Incoming::from_bytes(frame);
    /// let value = frame.decode_seed(1, PhantomData::<(u8, String)>).unwrap();
    /// assert_eq!(value, (7, "seven".to_string()));
    /// assert!(frame.decode_seed(100, PhantomData::<u8>).is_err());
    /// ```
    pub fn decode_seed<'a, S: DeserializeSeed<'a>>(
        &'a mut self,
        offset: usize,
        seed: S,
    ) -> Result<S::Value> {
        let rest = after_header(&self.bytes, offset)?;
        handle::decode_seed_with_handles(rest, std::mem::take(&mut self.handles), seed)
    }
}

/// The bytes of `frame` after a header of `offset` bytes.
fn after_header(frame: &[u8], offset: usize) -> Result<&[u8]> {
    frame.get(offset..).ok_or_else(|| {
        Error::Protocol(format!(
            "a frame of {} bytes is shorter than its header of {offset}",
            frame.len()
        ))
    })
}

/// Where function `f` is in this build, as a distance from an anchor that a peer running the
/// same build can turn back into `f` with [`fn_at`].
///
/// # Safety
///
/// `F` must be a function pointer type.
///
/// # Examples
///
/// ```
/// use proc_core::internal::{fn_at, fn_offset};
///
/// fn double(x: u32) -> u32 {
///     x * 2
/// }
///
/// // SAFETY: `fn(u32) -> u32` is a function pointer type, and the offset comes from this
/// // very build, made from a function of that type.
/// let f: fn(u32) -> u32 = unsafe { fn_at(fn_offset(double as fn(u32) -> u32)) };
/// assert_eq!(f(21), 42);
/// ```
pub unsafe fn fn_offset<F: Copy>(f: F) -> i64 {
    const { assert!(size_of::<F>() == size_of::<usize>()) };
    // SAFETY: the caller promises a function pointer, which is an address the size of a
    // `usize` (checked above) without padding.
    let address: usize = unsafe { std::mem::transmute_copy(&f) };
    address.wrapping_sub(fingerprint::anchor()) as i64
}

/// The function at `offset` (from [`fn_offset`]).
///
/// # Safety
///
/// `offset` must come from `fn_offset::<F>` in a process running this same build (the
/// processes of `procs` check the build fingerprint when they start), for a function of type
/// `F`.
pub unsafe fn fn_at<F: Copy>(offset: i64) -> F {
    const { assert!(size_of::<F>() == size_of::<usize>()) };
    let address = fingerprint::anchor().wrapping_add(offset as usize);
    // SAFETY: by the caller's promise this is the address of a function of type `F` in this
    // build: the same distance from the same anchor as in the sender.
    unsafe { std::mem::transmute_copy(&address) }
}

/// Whether `value` encodes for another process (handles included): for finding which of
/// several values made an encoding fail.
///
/// # Errors
///
/// The encoding's error.
///
/// # Examples
///
/// ```
/// assert!(proc_core::internal::encodes(&(1u8, "ok")).is_ok());
/// ```
pub fn encodes<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    handle::encode_with_handles(value).map(drop)
}

/// The frames of this module on a [`Link`], here rather than beside `Link`'s own methods so
/// that `handle` does not depend on `internal`.
impl Link {
    /// Sends a frame made with [`Outgoing::encode`], with
    /// the handles inside its value. Internal: for protocols of the `procs` crates.
    ///
    /// # Errors
    ///
    /// As [`send`](crate::Link::send).
    #[doc(hidden)]
    pub fn send_outgoing(&self, frame: &Outgoing) -> Result<()> {
        let (bytes, handles) = frame.frame()?;
        let _turn = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.send_frame(&bytes, &handles)?)
    }

    /// Sends several frames made with
    /// [`Outgoing::encode`], in one write when none holds
    /// handles. Internal: for protocols of the `procs` crates.
    ///
    /// # Errors
    ///
    /// As [`send`](crate::Link::send); frames before a failing one may have been sent.
    #[doc(hidden)]
    pub fn send_outgoing_all(&self, frames: &[&Outgoing]) -> Result<()> {
        if frames.iter().any(|f| f.has_handles()) {
            for frame in frames {
                self.send_outgoing(frame)?;
            }
            return Ok(());
        }
        let payloads: Vec<&[u8]> = frames.iter().map(|f| f.bytes.as_slice()).collect();
        let _turn = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.channel.send_frames(&payloads)?)
    }

    /// Receives one frame with its handles, undecoded. Internal: for protocols of the
    /// `procs` crates.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](crate::Link::recv_bytes).
    #[doc(hidden)]
    pub fn recv_incoming(&self) -> Result<Incoming> {
        let _turn = self.receiving.lock().unwrap_or_else(|e| e.into_inner());
        let (bytes, handles) = self.channel.recv_frame(self.max_frame)?;
        Ok(Incoming { bytes, handles })
    }
}
