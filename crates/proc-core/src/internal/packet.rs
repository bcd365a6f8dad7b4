//! Frames of a caller's protocol: a header of plain bytes, then a serde value with the OS
//! handles inside it; and functions named to a peer of the same build.

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::codec;
use crate::error::{Error, Result};
use crate::fingerprint;
use crate::handle::{self, Link};
use crate::sys;

/// The arguments of a frame, whatever their type, kept while they hold handles: encoded
/// again after the first `from` bytes of the frame (which they leave as they are) when the
/// frame is sent.
trait Reencode: Send {
    fn encode_after(&self, frame: &[u8], from: usize) -> Result<(Vec<u8>, Vec<sys::RawHandle>)>;
}

impl<T: Serialize + Send> Reencode for T {
    fn encode_after(&self, frame: &[u8], from: usize) -> Result<(Vec<u8>, Vec<sys::RawHandle>)> {
        let (value, handles) = handle::encode_with_handles(self)?;
        let before = &frame[..from.min(frame.len())];
        let mut bytes = Vec::with_capacity(before.len() + value.len());
        bytes.extend_from_slice(before);
        bytes.extend_from_slice(&value);
        Ok((bytes, handles))
    }
}

/// The items of a sequence, one after the other without the sequence's length: the tail of
/// a sequence that [`Outgoing::encode_seq`] kept, from its first item with handles on.
struct Tail<T>(Vec<T>);

impl<T: Serialize> Serialize for Tail<T> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        // A tuple's elements follow one another with nothing before them.
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for item in &self.0 {
            tuple.serialize_element(item)?;
        }
        tuple.end()
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
    /// Where the bytes that `keep` encodes again start (the header's end for a whole value).
    kept_from: usize,
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
            kept_from: header_len,
        })
    }

    /// `header` followed by the items of `items` as a sequence (the bytes of a `Vec` of
    /// them), each taken from the iterator as it is encoded: a large batch of small items
    /// makes no vector of them first, which would be written once and read once in memory
    /// often fresh from the kernel. Also the frame's number of items.
    ///
    /// Items are kept only from the first that holds handles on (they own the handles until
    /// the frame is sent, and are encoded again then); the others are dropped once encoded.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when an item does not serialize (the items taken so far are
    /// dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_core::internal::Outgoing;
    ///
    /// let (frame, count) = Outgoing::encode_seq(vec![7], (1..=3u16).map(|x| x * 100)).unwrap();
    /// assert_eq!(count, 3);
    /// let same = Outgoing::encode(vec![7], vec![100u16, 200, 300]).unwrap();
    /// assert_eq!(frame.plain_bytes(), same.plain_bytes());
    /// ```
    pub fn encode_seq<T: Serialize + Send + 'static>(
        header: Vec<u8>,
        items: impl Iterator<Item = T>,
    ) -> Result<(Outgoing, usize)> {
        let header_len = header.len();
        let mut bytes = header;
        // The length goes first: the iterator's word for it, written again (and the items
        // moved, if it takes another number of bytes) when the iterator yields another
        // number of items.
        let guess = items.size_hint().0;
        codec::encode_into(&guess, &mut bytes)?;
        let guess_end = bytes.len();
        let encoded = handle::encode_items_with_handles_into(items, &mut bytes)?;
        let mut shift = 0isize;
        if encoded.count != guess {
            let mut len = Vec::new();
            codec::encode_into(&encoded.count, &mut len)?;
            shift = len.len() as isize - (guess_end - header_len) as isize;
            bytes.splice(header_len..guess_end, len);
        }
        let (keep, kept_from) = match encoded.kept {
            Some((from, items)) => (
                Some(Box::new(Tail(items)) as Box<dyn Reencode>),
                from.saturating_add_signed(shift),
            ),
            None => (None, header_len),
        };
        let frame = Outgoing {
            bytes,
            header_len,
            keep,
            kept_from,
        };
        Ok((frame, encoded.count))
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
                let (bytes, handles) = value.encode_after(&self.bytes, self.kept_from)?;
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

#[cfg(test)]
mod tests {
    use super::Outgoing;
    use crate::Link;

    /// `0..yields` of `make`'s items, from an iterator that claims `claims` of them.
    struct Claiming<F> {
        next: usize,
        yields: usize,
        claims: usize,
        make: F,
    }

    impl<T, F: FnMut(usize) -> T> Iterator for Claiming<F> {
        type Item = T;

        fn next(&mut self) -> Option<T> {
            (self.next < self.yields).then(|| {
                self.next += 1;
                (self.make)(self.next - 1)
            })
        }

        fn size_hint(&self) -> (usize, Option<usize>) {
            (self.claims, Some(self.claims))
        }
    }

    // A sequence encoded as it is taken from its iterator sends what the vector of its items
    // sends, the same bytes and as many handles: with no handles, with handles from the first
    // item or from the middle on, and whatever length the iterator claims (a length of
    // another width moves the bytes of the items kept for their handles).
    #[test]
    fn a_sequence_taken_from_an_iterator_sends_what_its_vector_sends() {
        let links = |first: Option<usize>| {
            move |i: usize| {
                let with = first.is_some_and(|first| i >= first && i % 3 == first % 3);
                (i as u32 * 1000, with.then(|| Link::pair().unwrap().0))
            }
        };
        for first in [None, Some(0), Some(150)] {
            for (yields, claims) in [(200, 200), (200, 0), (200, 100_000), (0, 5), (3, 1)] {
                let mut make = links(first);
                let whole: Vec<_> = (0..yields).map(&mut make).collect();
                let whole = Outgoing::encode(vec![9; 3], whole).unwrap();
                let items = Claiming {
                    next: 0,
                    yields,
                    claims,
                    make: links(first),
                };
                let (seq, count) = Outgoing::encode_seq(vec![9; 3], items).unwrap();
                assert_eq!(count, yields);
                assert_eq!(seq.has_handles(), whole.has_handles() && yields > 0);
                let (seq_bytes, seq_handles) = seq.frame().unwrap();
                let (whole_bytes, whole_handles) = whole.frame().unwrap();
                assert_eq!(seq_bytes, whole_bytes, "{first:?} {yields} {claims}");
                assert_eq!(seq_handles.len(), whole_handles.len());
            }
        }
    }

    // An item that does not encode fails the sequence, and a later encoding of handles is
    // not confused by the one that failed.
    #[test]
    fn a_sequence_with_an_item_that_does_not_encode_fails() {
        struct Refuses;
        impl serde::Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let items = (0..10).map(|i| (i == 5).then_some(Refuses));
        assert!(Outgoing::encode_seq(Vec::new(), items).is_err());
        let items = (0..4).map(|i| (i == 2).then(|| Link::pair().unwrap().0));
        let (frame, count) = Outgoing::encode_seq(Vec::new(), items).unwrap();
        assert_eq!((count, frame.has_handles()), (4, true));
        let items = (0..4).map(|_| None::<Link>);
        let (frame, _) = Outgoing::encode_seq(Vec::new(), items).unwrap();
        assert!(!frame.has_handles());
    }
}
