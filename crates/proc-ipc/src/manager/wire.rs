//! What a manager's clients and server say to each other: one request, one response, each a
//! postcard frame on a [`Connection`](crate::Connection).
//!
//! Keys, values and items travel as postcard bytes that only the clients decode, so the
//! server stores them without knowing their types and serves programs of any build. Only
//! the requests that carry a function ([`Op::UpdateWith`], [`Kind::Custom`]) need the
//! client and the server to run the same build, which the [`Request::Hello`] exchange tells.
//! Bulk requests and answers carry their entries in one [`Batch`].

use std::time::Duration;

use proc_core::Error;
use proc_core::codec::de_error;

use crate::Address;
use serde::{Deserialize, Serialize};

/// The longest entry that a [`Bytes`] keeps inline, without an allocation of its own: a
/// `Bytes` is then as large as a `Vec` (24 bytes), and most keys and values (integers,
/// short strings, small tuples) fit.
const INLINE: usize = 22;

/// An encoded key, value or item, as the server stores it: inline when it is short, so that
/// a dict or list of small entries costs no allocation per entry. Written as one byte
/// string (serde would write a `Vec<u8>` byte by byte).
#[derive(Clone)]
pub(crate) struct Bytes(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Default for Bytes {
    fn default() -> Bytes {
        Bytes(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        **self == **other
    }
}

impl Eq for Bytes {}

impl From<&[u8]> for Bytes {
    fn from(slice: &[u8]) -> Bytes {
        if slice.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..slice.len()].copy_from_slice(slice);
            Bytes(Repr::Inline {
                len: slice.len() as u8,
                bytes,
            })
        } else {
            Bytes(Repr::Heap(slice.into()))
        }
    }
}

impl Bytes {
    /// `bytes[..len]` as a `Bytes`. `bytes` may go on past the entry (in a batch, with the
    /// entries after it), which lets a short entry be copied as a block of fixed size: a
    /// copy of a length only known at run time is a call to `memcpy`, which costs more than
    /// the rest of storing a short entry. What is copied past `len` is never read.
    #[inline(always)]
    fn from_prefix(bytes: &[u8], len: usize) -> Bytes {
        match bytes.first_chunk::<INLINE>() {
            Some(window) if len <= INLINE => Bytes(Repr::Inline {
                len: len as u8,
                bytes: *window,
            }),
            _ => Bytes::from(&bytes[..len]),
        }
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(vec: Vec<u8>) -> Bytes {
        if vec.len() <= INLINE {
            Bytes::from(&vec[..])
        } else {
            Bytes(Repr::Heap(vec.into_boxed_slice()))
        }
    }
}

impl FromIterator<u8> for Bytes {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Bytes {
        Bytes::from(iter.into_iter().collect::<Vec<u8>>())
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(ByteVisitor(std::marker::PhantomData))
    }
}

/// Reads a byte string into a `T`, from the reader's buffer when it lends one.
struct ByteVisitor<T>(std::marker::PhantomData<T>);

impl<T: for<'a> From<&'a [u8]> + From<Vec<u8>>> serde::de::Visitor<'_> for ByteVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<T, E> {
        Ok(T::from(v))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<T, E> {
        Ok(T::from(v))
    }
}

/// The most entries one bulk request may carry: [`Op::Extend`] and [`Kind::Array`] items,
/// [`Op::Update`] keys and values. Each costs the server a [`Bytes`] (24 bytes) or more
/// for one byte on the wire at least, so without a bound a frame of 1 GiB of empty items
/// would make the server allocate 24 GiB; with it, a request costs at most a few hundred
/// MiB beside its frame.
pub(crate) const MAX_BATCH: usize = 1 << 24;

/// The words of the error for a bulk request over [`MAX_BATCH`].
pub(crate) fn too_many() -> String {
    format!(
        "a bulk call carries at most {MAX_BATCH} items or {} pairs; split it into several calls",
        MAX_BATCH / 2
    )
}

/// Many encoded entries in two buffers: their lengths (each LEB128), and their bytes back
/// to back. How bulk requests and answers travel, without a vector per entry on either
/// side. Decoding checks that the lengths add up to the bytes, so that reading the entries
/// cannot fail.
///
/// The lengths are apart from the bytes so that this check is a sum over a buffer (which
/// the compiler turns into vector instructions) rather than a walk from entry to entry,
/// where each step waits for the length read before it: the walk cost the server more
/// than storing a batch of small items.
///
/// A batch that a server decoded keeps its bytes in the request's frame, where they end
/// it: `bytes[skip..]` are the entries', and what comes before them is the rest of the
/// request, never read again. Moving the entries to the front of the frame instead was a
/// copy of nearly all of it (the server's largest cost after the socket for a bulk call);
/// what is kept is at most the frame that came in.
#[derive(Debug, Default, Clone)]
pub(crate) struct Batch {
    count: usize,
    lens: Vec<u8>,
    bytes: Vec<u8>,
    skip: usize,
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        self.count == other.count && self.lens == other.lens && self.data() == other.data()
    }
}

impl Eq for Batch {}

impl Batch {
    /// An empty batch with room for about `entries` entries of `size` bytes (an estimate:
    /// the room for the bytes is at most 64 MiB, past which they grow as they come).
    pub(crate) fn with_capacity(entries: usize, size: usize) -> Batch {
        Batch {
            count: 0,
            lens: Vec::with_capacity(entries),
            bytes: Vec::with_capacity(entries.saturating_mul(size).min(1 << 26)),
            skip: 0,
        }
    }

    /// The entries' bytes, back to back.
    #[inline]
    fn data(&self) -> &[u8] {
        self.bytes.get(self.skip..).unwrap_or_default()
    }

    /// How many entries the batch holds.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Appends the length of an entry.
    #[inline(always)]
    fn push_len(&mut self, len: usize) {
        push_leb128(&mut self.lens, len);
        self.count += 1;
    }

    /// Appends `entry`.
    pub(crate) fn push(&mut self, entry: &[u8]) {
        self.push_len(entry.len());
        self.bytes.extend_from_slice(entry);
    }

    /// Appends an entry the server stores; a short one as a block of fixed size, for the
    /// reason [`Bytes::from_prefix`] gives.
    pub(crate) fn push_stored(&mut self, entry: &Bytes) {
        match &entry.0 {
            Repr::Inline { len, bytes } => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(bytes);
                self.bytes.truncate(start + usize::from(*len));
                self.push_len(usize::from(*len));
            }
            Repr::Heap(bytes) => self.push(bytes),
        }
    }

    /// Appends the entry that `write` appends to the buffer it is given (an encoder's
    /// output); when `write` fails, the batch is as it was.
    // Always inlined, as the encoder it runs: a bulk call runs it once per item, and its
    // call cost a fifth of encoding a small integer.
    #[inline(always)]
    pub(crate) fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.bytes.len();
        if let Err(err) = write(&mut self.bytes) {
            self.bytes.truncate(start);
            return Err(err);
        }
        self.push_len(self.bytes.len() - start);
        Ok(())
    }

    /// Appends the encodings of `items`, an entry each, while the batch holds at most
    /// [`MAX_BATCH`] entries; when an item does not encode, the batch ends with the items
    /// before it.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when an item does not encode, [`Error::Protocol`] when there are
    /// more than [`MAX_BATCH`].
    #[inline]
    pub(crate) fn extend_encoded<T: Serialize>(
        &mut self,
        items: impl IntoIterator<Item = T>,
    ) -> proc_core::Result<()> {
        // The lengths and the count go into variables of this function's own, never lent
        // out (`push_leb128` grows the lengths by value), for the reason
        // `codec::encode_each` keeps its buffer so: the compiler keeps them in registers
        // through the loop rather than reading them back from memory after each byte
        // written. The batch gets them back at the end.
        let mut lens = std::mem::take(&mut self.lens);
        let mut count = self.count;
        let done = proc_core::codec::encode_each(items, &mut self.bytes, |len| {
            if count == MAX_BATCH {
                return Err(Error::Protocol(too_many()));
            }
            push_leb128(&mut lens, len);
            count += 1;
            Ok(())
        });
        self.lens = lens;
        self.count = count;
        done
    }

    /// Appends the entries of `other`, taking its buffers when this batch is empty.
    pub(crate) fn append(&mut self, other: Batch) {
        if self.count == 0 {
            *self = other;
        } else {
            self.append_copy(&other);
        }
    }

    /// Appends a copy of the entries of `other`.
    pub(crate) fn append_copy(&mut self, other: &Batch) {
        self.lens.extend_from_slice(&other.lens);
        self.bytes.extend_from_slice(other.data());
        self.count += other.count;
    }

    /// The entries, in order.
    pub(crate) fn iter(&self) -> Entries<'_> {
        Entries {
            lens: &self.lens,
            rest: self.data(),
            left: self.count,
        }
    }

    /// The batch of `count` entries of `lens` in `bytes[skip..]`, if the lengths are
    /// `count` LEB128 numbers that add up to the length of `bytes[skip..]`.
    fn from_parts(count: u64, lens: Vec<u8>, bytes: Vec<u8>, skip: usize) -> Option<Batch> {
        let count = usize::try_from(count).ok()?;
        let data = bytes.len().checked_sub(skip)?;
        // The common case, every entry under 128 bytes: a length per byte, and a sum.
        let total = if let Some(total) = sum_short(&lens) {
            (lens.len() == count).then_some(())?;
            total
        } else {
            // Every length takes one byte at least, so that this loop ends soon whatever
            // the count claims.
            let mut rest = &lens[..];
            let mut total = 0u64;
            for _ in 0..count {
                let (len, tail) = split_len(rest)?;
                total = total.checked_add(len as u64)?;
                rest = tail;
            }
            rest.is_empty().then_some(())?;
            total
        };
        (total == data as u64).then_some(Batch {
            count,
            lens,
            bytes,
            skip,
        })
    }
}

/// The sum of `lens` when each is one byte of LEB128 (under 128), else `None`: one pass
/// that sums a block of 256 at a time in 16 bits (which cannot overflow: 256 × 127 <
/// 2¹⁶), where a sum in 64 bits widened every byte to a lane of its own. The compiler turns
/// both loops into vector instructions; the pass took a third of the time of a check of
/// the high bits followed by a 64-bit sum (5 µs against 15 for a batch of 100k entries).
fn sum_short(lens: &[u8]) -> Option<u64> {
    let mut total = 0u64;
    let mut high = 0u8;
    for block in lens.chunks(256) {
        let mut sum = 0u16;
        for &len in block {
            high |= len;
            sum += u16::from(len & 0x7f);
        }
        total += u64::from(sum);
    }
    (high < 0x80).then_some(total)
}

/// Appends `len` as LEB128 to `lens`. The common case, a length of one byte within the
/// room there is, is written in place; the others go out of line with the `Vec` by value,
/// never lent to a call, so that a caller's loop keeps it in registers (see
/// [`Batch::extend_encoded`]).
#[inline(always)]
fn push_leb128(lens: &mut Vec<u8>, len: usize) {
    let at = lens.len();
    match lens.spare_capacity_mut().first_mut() {
        Some(slot) if len < 0x80 => {
            slot.write(len as u8);
            // SAFETY: the byte at `at`, within the capacity, was written just above.
            unsafe { lens.set_len(at + 1) };
        }
        _ => *lens = push_leb128_slow(std::mem::take(lens), len),
    }
}

#[cold]
#[inline(never)]
fn push_leb128_slow(mut lens: Vec<u8>, len: usize) -> Vec<u8> {
    let mut head = [0; 10];
    let n = leb128(len, &mut head);
    lens.extend_from_slice(&head[..n]);
    lens
}

/// Writes `n` as LEB128 into `out` and returns how many bytes it took.
fn leb128(mut n: usize, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Reads the first length of `lens`: the length, and the lengths after it; `None` when it
/// is cut short or longer than LEB128 allows.
#[inline]
fn split_len(lens: &[u8]) -> Option<(usize, &[u8])> {
    match lens {
        // The common case: an entry under 128 bytes.
        [head, tail @ ..] if *head < 0x80 => Some((usize::from(*head), tail)),
        _ => long_len(lens),
    }
}

fn long_len(lens: &[u8]) -> Option<(usize, &[u8])> {
    let mut len = 0u64;
    for (i, &byte) in lens.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(len).ok()?, &lens[i + 1..]));
        }
    }
    None
}

/// The entries of a [`Batch`].
#[derive(Debug)]
pub(crate) struct Entries<'a> {
    lens: &'a [u8],
    rest: &'a [u8],
    left: usize,
}

impl<'a> Entries<'a> {
    // Inlined into the server's loops over a bulk call's entries, as the compiler chose
    // to do until the batch's bytes began past the start of their buffer: a call for
    // each entry cost a bulk update a sixth more.
    #[inline(always)]
    fn next_entry(&mut self) -> Option<Entry<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Never `None`: the batch was checked when it was made.
        let (len, lens) = split_len(self.lens)?;
        let tail = self.rest;
        self.lens = lens;
        self.rest = tail.get(len..)?;
        Some(Entry { tail, len })
    }

    /// The entries as the server stores them.
    pub(crate) fn stored(mut self) -> impl ExactSizeIterator<Item = Bytes> + 'a {
        // A range's map, so that a vector extended with it grows once and then writes.
        (0..self.left).map(move |_| self.next_entry().map(Bytes::from).unwrap_or_default())
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let entry = self.next_entry()?;
        Some(&entry.tail[..entry.len])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// An entry of a batch, read in place: its bytes start `tail`, which goes on with the
/// entries after it. It becomes a [`Bytes`] only when the server keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    tail: &'a [u8],
    len: usize,
}

impl AsRef<[u8]> for Entry<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.tail[..self.len]
    }
}

impl From<Entry<'_>> for Bytes {
    #[inline(always)]
    fn from(entry: Entry<'_>) -> Bytes {
        Bytes::from_prefix(entry.tail, entry.len)
    }
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Raw<'a>(&'a [u8]);
        impl Serialize for Raw<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&(self.count as u64))?;
        tuple.serialize_element(&Raw(&self.lens))?;
        tuple.serialize_element(&Raw(self.data()))?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Raw(Vec<u8>);
        impl<'de> Deserialize<'de> for Raw {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_byte_buf(ByteVisitor(std::marker::PhantomData))
                    .map(Raw)
            }
        }
        let (count, Raw(lens), Tail(bytes)) = <(u64, Raw, Tail)>::deserialize(deserializer)?;
        let Some(bytes) = bytes else {
            // The bytes are the end of the frame, which `decode_request` moves in.
            let count = usize::try_from(count).map_err(|_| de_error(UNFILLED))?;
            return Ok(Batch {
                count,
                lens,
                bytes: Vec::new(),
                skip: 0,
            });
        };
        Batch::from_parts(count, lens, bytes, 0).ok_or_else(|| de_error(UNFILLED))
    }
}

/// The words of the error for a batch whose entries are not what its lengths say.
const UNFILLED: &str = "a batch's entries do not fill it as its count and lengths say";

thread_local! {
    /// While [`decode_request`] decodes a frame: where the frame ends, and where the bytes
    /// of a batch that end there start once they are read.
    static FRAME: std::cell::Cell<Option<(usize, Option<usize>)>> =
        const { std::cell::Cell::new(None) };
}

/// A batch's bytes, read as a copy; or `None` while [`decode_request`] decodes a frame that
/// they end, which then moves them in from the frame instead.
struct Tail(Option<Vec<u8>>);

impl<'de> Deserialize<'de> for Tail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Tail;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }

            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Tail, E> {
                let start = v.as_ptr() as usize;
                match FRAME.get() {
                    // Addresses compared, never followed: the bytes end where the frame does.
                    Some((end, None)) if !v.is_empty() && start + v.len() == end => {
                        FRAME.set(Some((end, Some(start))));
                        Ok(Tail(None))
                    }
                    _ => Ok(Tail(Some(v.to_vec()))),
                }
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Tail, E> {
                Ok(Tail(Some(v.to_vec())))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Tail, E> {
                Ok(Tail(Some(v)))
            }
        }
        d.deserialize_bytes(Visit)
    }
}

impl Request {
    /// The batch the request carries, if any: it is the last thing in the request.
    fn batch_mut(&mut self) -> Option<&mut Batch> {
        match self {
            Request::Call {
                op: Op::Extend(batch) | Op::Update(Pairs(batch)),
                ..
            }
            | Request::Create(Kind::Array(batch)) => Some(batch),
            _ => None,
        }
    }
}

/// Decodes a request from its frame, as `codec::decode` does, with the bytes of the batch
/// it carries (which end the frame) left in the frame, which the batch takes, rather than
/// copied: a copy into fresh memory, as large as the frame, was most of the server's time
/// for a bulk call.
pub(crate) fn decode_request(frame: Vec<u8>) -> proc_core::Result<Request> {
    let end = frame.as_ptr() as usize + frame.len();
    let before = FRAME.replace(Some((end, None)));
    let decoded = proc_core::codec::decode::<Request>(&frame);
    let (_, tail) = FRAME.replace(before).unwrap_or((end, None));
    let mut request = decoded?;
    if let Some(start) = tail {
        let refused = || Error::Decode(UNFILLED.into());
        let batch = request.batch_mut().ok_or_else(refused)?;
        let skip = start - frame.as_ptr() as usize;
        let Batch { count, lens, .. } = std::mem::take(batch);
        *batch = Batch::from_parts(count as u64, lens, frame, skip).ok_or_else(refused)?;
    }
    Ok(request)
}

/// A request as the parts of its frame: the bytes `codec::encode` makes of it, with the
/// lengths and bytes of the batch it carries (which end it) left in the batch's buffers, so
/// that the frame is sent from them (`Link::send_bytes_parts`). Copied into one frame, they
/// cost a bulk call a fresh buffer as large as the batch, and the copy into it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The request up to the lengths of its batch's buffers (the whole request without one).
    head: Vec<u8>,
    /// The batch's lengths, the LEB128 length of its bytes (and how long that is), and its
    /// bytes; all empty without a batch.
    lens: Vec<u8>,
    bytes_len: ([u8; 10], usize),
    bytes: Vec<u8>,
}

impl Outgoing {
    /// The parts of `request`'s frame.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the request does not encode.
    pub(crate) fn new(mut request: Request) -> proc_core::Result<Outgoing> {
        let mut bytes_len = ([0; 10], 0);
        let Some(batch) = request.batch_mut() else {
            return Ok(Outgoing {
                head: proc_core::codec::encode(&request)?,
                lens: Vec::new(),
                bytes_len,
                bytes: Vec::new(),
            });
        };
        let lens = std::mem::take(&mut batch.lens);
        let mut bytes = std::mem::take(&mut batch.bytes);
        // Never a copy on a client, whose batches start their buffers.
        bytes.drain(..std::mem::take(&mut batch.skip).min(bytes.len()));
        // The request ends with the batch, which ends with its two buffers as byte
        // strings: empty now, each is its length, a LEB128 zero of one byte. In their place
        // go the length of the lengths, and (as a part of its own) that of the bytes.
        let mut head = proc_core::codec::encode(&request)?;
        head.truncate(head.len().saturating_sub(2));
        let mut lens_len = [0; 10];
        let n = leb128(lens.len(), &mut lens_len);
        head.extend_from_slice(&lens_len[..n]);
        bytes_len.1 = leb128(bytes.len(), &mut bytes_len.0);
        Ok(Outgoing {
            head,
            lens,
            bytes_len,
            bytes,
        })
    }

    /// The parts, in order: the frame is their concatenation.
    pub(crate) fn parts(&self) -> [&[u8]; 4] {
        [
            &self.head,
            &self.lens,
            &self.bytes_len.0[..self.bytes_len.1],
            &self.bytes,
        ]
    }
}

/// Keys and values one after the other in a [`Batch`]: a bulk update, a dict's items.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Pairs(Batch);

impl Pairs {
    /// Room for about `pairs` pairs of `size` bytes each for key and value together.
    pub(crate) fn with_capacity(pairs: usize, size: usize) -> Pairs {
        Pairs(Batch::with_capacity(
            pairs.saturating_mul(2),
            size.div_ceil(2),
        ))
    }

    /// How many pairs there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 2
    }

    #[cfg(test)]
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        self.0.push(key);
        self.0.push(value);
    }

    /// Appends a pair the server stores (see [`Batch::push_stored`]).
    pub(crate) fn push_stored(&mut self, key: &Bytes, value: &Bytes) {
        self.0.push_stored(key);
        self.0.push_stored(value);
    }

    /// Appends the pair that `key` and `value` write (see [`Batch::push_with`]); when one
    /// fails, the pairs are as they were.
    #[inline(always)]
    pub(crate) fn push_with<E>(
        &mut self,
        key: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let (count, lens, len) = (self.0.count, self.0.lens.len(), self.0.bytes.len());
        let pushed = self.0.push_with(key).and_then(|()| self.0.push_with(value));
        if pushed.is_err() {
            self.0.count = count;
            self.0.lens.truncate(lens);
            self.0.bytes.truncate(len);
        }
        pushed
    }

    /// The pairs, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut entries = self.0.iter();
        std::iter::from_fn(move || Some((entries.next()?, entries.next()?)))
    }

    /// The pairs as the server stores them.
    pub(crate) fn stored(&self) -> impl Iterator<Item = (Entry<'_>, Entry<'_>)> {
        let mut entries = self.0.iter();
        std::iter::from_fn(move || Some((entries.next_entry()?, entries.next_entry()?)))
    }
}

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let batch = Batch::deserialize(deserializer)?;
        if batch.len().is_multiple_of(2) {
            Ok(Pairs(batch))
        } else {
            Err(de_error(
                "the keys and values of a batch of pairs do not pair up",
            ))
        }
    }
}

/// Who holds a lock: the client process and the thread in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub(crate) client: u64,
    pub(crate) thread: u64,
}

/// One request of a client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first request on every connection: who the client is and which build it runs.
    Hello { client: u64, fingerprint: u64 },
    /// Makes a new object and answers its id.
    Create(Kind),
    /// Calls an operation on object `id`.
    Call { id: u64, op: Op },
    /// Stops the server once it has answered.
    Shutdown,
}

/// The kinds of object a server keeps.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Queue {
        maxsize: u64,
    },
    Lock,
    RLock,
    Semaphore {
        value: u32,
        bound: Option<u32>,
    },
    Event,
    Condition,
    Barrier {
        parties: u32,
    },
    Value(Bytes),
    Array(Batch),
    /// A user type: `make` is the offset of the function that builds it from `state`.
    Custom {
        make: i64,
        state: Bytes,
    },
}

/// An operation on an object. `timeout: None` waits as long as it takes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    Len,
    Clear,
    // dict and namespace
    Insert(Bytes, Bytes),
    Get(Bytes),
    Remove(Bytes),
    Contains(Bytes),
    Keys,
    Values,
    Items,
    Update(Pairs),
    SetDefault(Bytes, Bytes),
    /// Runs the function at offset `f` through the runner at offset `runner` on the value of
    /// `key` (or on `default` when there is none) and stores the result.
    UpdateWith {
        key: Bytes,
        default: Bytes,
        runner: i64,
        f: i64,
    },
    // list and array
    Push(Bytes),
    Pop(Option<i64>),
    At(i64),
    SetAt(i64, Bytes),
    InsertAt(i64, Bytes),
    RemoveValue(Bytes),
    Extend(Batch),
    ToVec,
    // value
    Load,
    Store(Bytes),
    // queue
    Put {
        item: Bytes,
        timeout: Option<Duration>,
    },
    Take {
        timeout: Option<Duration>,
    },
    Full,
    /// A joinable queue's unfinished tasks.
    Count,
    TaskDone,
    Join {
        timeout: Option<Duration>,
    },
    // lock, rlock, semaphore, condition
    Acquire {
        owner: Owner,
        timeout: Option<Duration>,
    },
    Release {
        owner: Owner,
    },
    // event
    Set,
    Unset,
    IsSet,
    Wait {
        timeout: Option<Duration>,
    },
    // condition
    CondWait {
        owner: Owner,
        timeout: Option<Duration>,
    },
    Notify {
        owner: Owner,
        n: u32,
    },
    // barrier
    BarrierWait {
        timeout: Option<Duration>,
    },
    Reset,
    Abort,
    // user type
    Handle(Bytes),
    // queue, again: Python 3.13's `Queue.shutdown`
    Shutdown {
        immediate: bool,
    },
}

/// A successful answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Unit,
    Bool(bool),
    Count(u64),
    Item(Option<Bytes>),
    Items(Batch),
    Pairs(Pairs),
    /// The answer to `Hello`.
    Hello {
        fingerprint: u64,
        /// The address the server listens on, as it knows it (see `client::Remote`).
        address: Address,
    },
    /// A barrier's state: parties, waiting, broken.
    Barrier(u32, u32, bool),
}

/// Why a request failed, as the server tells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Failure {
    Timeout,
    Empty,
    Full,
    Closed,
    BuildMismatch,
    Panicked {
        message: String,
        location: Option<String>,
    },
    Decode(String),
    Protocol(String),
    Invalid(Invalid),
}

/// The states a call may find an object in that refuse it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Invalid {
    UnknownObject,
    WrongKind,
    NotOwner,
    Unlocked,
    OverReleased,
    IndexOutOfRange,
    Broken,
    NoParties,
    TooManyTaskDone,
    TooManyEntries,
}

impl Invalid {
    fn message(self) -> &'static str {
        match self {
            Invalid::UnknownObject => "the manager has no object with this id",
            Invalid::WrongKind => "the manager's object is of another kind than this proxy",
            Invalid::NotOwner => "the lock is held by another thread or process",
            Invalid::Unlocked => "release of a lock that is not held",
            Invalid::OverReleased => "a bounded semaphore was released more often than acquired",
            Invalid::IndexOutOfRange => "the index is out of range",
            Invalid::Broken => "the barrier is broken; call reset to use it again",
            Invalid::NoParties => "a barrier needs at least one party",
            Invalid::TooManyTaskDone => "task_done was called more often than items were put",
            Invalid::TooManyEntries => "the dict holds as many entries as it can (2^32)",
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        match failure {
            Failure::Timeout => Error::Timeout,
            Failure::Empty => Error::Empty,
            Failure::Full => Error::Full,
            Failure::Closed => Error::Closed,
            Failure::BuildMismatch => Error::BuildMismatch,
            Failure::Panicked { message, location } => Error::Panicked { message, location },
            Failure::Decode(message) => Error::Decode(message),
            Failure::Protocol(message) => Error::Protocol(message),
            Failure::Invalid(invalid) => Error::InvalidState(invalid.message()),
        }
    }
}

/// What the server answers to one request.
pub(crate) type Response = Result<Reply, Failure>;

#[cfg(test)]
mod tests {
    use proc_core::{Error, codec};

    use super::{Batch, Bytes, INLINE, Kind, MAX_BATCH, Op, Pairs, Request, decode_request};

    /// Entries of every length class: empty, inline, the longest inline, heap, and lengths
    /// that need one, two and three bytes of LEB128.
    fn entries() -> Vec<Vec<u8>> {
        [0, 1, INLINE, INLINE + 1, 127, 128, 300, 20_000]
            .into_iter()
            .map(|len| (0..len).map(|i| (i * 7 + len) as u8).collect())
            .collect()
    }

    #[test]
    fn a_batch_gives_back_its_entries_after_the_wire() {
        let mut batch = Batch::default();
        for (i, entry) in entries().iter().enumerate() {
            if i % 2 == 0 {
                batch.push(entry);
            } else {
                batch
                    .push_with(|buf| {
                        buf.extend_from_slice(entry);
                        Ok::<_, ()>(())
                    })
                    .unwrap();
            }
        }
        let back: Batch = codec::decode(&codec::encode(&batch).unwrap()).unwrap();
        assert_eq!(back, batch);
        let read: Vec<&[u8]> = back.iter().collect();
        assert_eq!(read, entries());
        // The server's copies, made through a window that reads past short entries, are
        // the same entries.
        let stored: Vec<Bytes> = back.iter().stored().collect();
        let expected: Vec<Bytes> = entries().into_iter().map(Bytes::from).collect();
        assert_eq!(stored, expected);
        assert!(stored.iter().zip(entries()).all(|(s, e)| **s == e[..]));
    }

    #[test]
    fn a_request_in_parts_is_the_frame_it_encodes_to() {
        let batch = |count: usize| {
            let mut batch = Batch::default();
            for entry in entries().iter().cycle().take(count) {
                batch.push(entry);
            }
            batch
        };
        let mut pairs = Pairs::default();
        for (key, value) in entries().iter().zip(entries().iter().rev()) {
            pairs.push(key, value);
        }
        // Batches empty, small, and long enough that the lengths of both buffers take
        // several bytes of LEB128; and requests without a batch.
        let requests = [
            Request::Call {
                id: 3,
                op: Op::Extend(batch(0)),
            },
            Request::Call {
                id: 1 << 40,
                op: Op::Extend(batch(5)),
            },
            Request::Call {
                id: 7,
                op: Op::Extend(batch(200)),
            },
            Request::Call {
                id: 8,
                op: Op::Update(pairs),
            },
            Request::Create(Kind::Array(batch(17))),
            Request::Call { id: 9, op: Op::Len },
            Request::Shutdown,
        ];
        for request in requests {
            let whole = codec::encode(&request).unwrap();
            let described = format!("{request:?}");
            let outgoing = super::Outgoing::new(request).unwrap();
            assert_eq!(outgoing.parts().concat(), whole, "{described}");
            // And the server reads it back as the request it was.
            let back = decode_request(whole.clone()).unwrap();
            assert_eq!(codec::encode(&back).unwrap(), whole, "{described}");
        }
    }

    #[test]
    fn a_failed_push_leaves_the_batch_as_it_was() {
        let mut batch = Batch::default();
        batch.push(b"kept");
        let failed = batch.push_with(|buf| {
            buf.extend_from_slice(&[1; 300]);
            Err(())
        });
        assert!(failed.is_err());
        assert_eq!(batch.iter().collect::<Vec<_>>(), [b"kept"]);

        let mut pairs = Pairs::default();
        pairs.push(b"k", b"v");
        let failed = pairs.push_with(
            |buf| {
                buf.push(1);
                Ok(())
            },
            |_| Err(()),
        );
        assert!(failed.is_err());
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs.iter().collect::<Vec<_>>(), [(&b"k"[..], &b"v"[..])]);
    }

    /// What a fuzzed or hostile peer may send in place of a batch: each is refused when it
    /// is decoded, so that reading a batch's entries never fails.
    #[test]
    fn a_batch_whose_entries_do_not_fill_it_is_refused() {
        let frame = |count: u64, lens: &[u8], bytes: &[u8]| {
            let mut frame = codec::encode(&count).unwrap();
            frame.extend(codec::encode(&serde_bytes::Bytes::new(lens)).unwrap());
            frame.extend(codec::encode(&serde_bytes::Bytes::new(bytes)).unwrap());
            frame
        };
        for (count, lens, bytes) in [
            // More entries claimed than there are lengths.
            (3, &[1, 0][..], &[9][..]),
            // Fewer: lengths left over.
            (1, &[1, 0], &[9]),
            // Lengths that add up to more bytes than there are, and to fewer.
            (1, &[5], &[1, 2]),
            (1, &[1], &[1, 2]),
            (2, &[0x80, 0x01, 1], &[0; 128]),
            // A length cut short, and one longer than LEB128 allows.
            (1, &[0x80], &[]),
            (1, &[0x81, 0x80], &[0]),
            (1, &[0xff; 11], &[]),
            (u64::MAX, &[0; 4], &[]),
            (u64::MAX, &[0x80, 0x01], &[0; 128]),
        ] {
            let err = codec::decode::<Batch>(&frame(count, lens, bytes)).unwrap_err();
            assert!(
                matches!(&err, Error::Decode(m) if m.contains("count")),
                "{err}"
            );
        }
        assert!(codec::decode::<Batch>(&frame(2, &[1, 0], &[9])).is_ok());
        let long = codec::decode::<Batch>(&frame(2, &[0x80, 0x01, 1], &[7; 129])).unwrap();
        assert_eq!(long.iter().map(<[u8]>::len).collect::<Vec<_>>(), [128, 1]);
        let err = codec::decode::<Pairs>(&frame(3, &[0, 0, 0], &[])).unwrap_err();
        assert!(
            matches!(&err, Error::Decode(m) if m.contains("pair")),
            "{err}"
        );
        assert_eq!(
            codec::decode::<Pairs>(&frame(2, &[0, 1], &[7]))
                .unwrap()
                .len(),
            1
        );
    }

    /// A request's batch, moved in from the end of its frame, is the batch sent, and is
    /// checked as a copied one is.
    #[test]
    fn a_request_gives_back_its_batch_from_the_end_of_its_frame() {
        let mut batch = Batch::default();
        entries().iter().for_each(|entry| batch.push(entry));
        let mut pairs = Pairs::default();
        pairs.push(b"key", &[5; 300]);
        for request in [
            Request::Call {
                id: 3,
                op: Op::Extend(batch.clone()),
            },
            Request::Call {
                id: 4,
                op: Op::Update(pairs.clone()),
            },
            Request::Create(Kind::Array(batch.clone())),
            Request::Call {
                id: 5,
                op: Op::Extend(Batch::default()),
            },
        ] {
            let frame = codec::encode(&request).unwrap();
            let mut back = decode_request(frame.clone()).unwrap();
            let sent = match &request {
                Request::Call {
                    op: Op::Update(_), ..
                } => pairs.0.clone(),
                Request::Call {
                    op: Op::Extend(b), ..
                } => b.clone(),
                _ => batch.clone(),
            };
            let got = back.batch_mut().unwrap();
            assert_eq!(*got, sent);
            // Moved in: the buffer is the frame's, longer than the bytes.
            if !sent.bytes.is_empty() {
                assert!(got.bytes.capacity() >= frame.len(), "copied, not moved");
                assert!(got.skip > 0);
            }
            // A batch that starts past the front of its frame reads, grows, joins others
            // and travels again as the batch it holds.
            let mut grown = got.clone();
            grown.push(b"one more");
            let mut expected = sent.clone();
            expected.push(b"one more");
            assert_eq!(grown, expected);
            assert_eq!(
                grown.iter().collect::<Vec<_>>(),
                expected.iter().collect::<Vec<_>>()
            );
            let mut joined = Batch::default();
            joined.push(b"first");
            joined.append(grown.clone());
            let mut taken = Batch::default();
            taken.append(grown.clone());
            taken.append(got.clone());
            let (mut joined_expected, mut taken_expected) = (Batch::default(), expected.clone());
            joined_expected.push(b"first");
            joined_expected.append_copy(&expected);
            taken_expected.append_copy(&sent);
            assert_eq!(joined, joined_expected);
            assert_eq!(taken, taken_expected);
            let resent = Request::Call {
                id: 6,
                op: Op::Extend(grown),
            };
            let whole = codec::encode(&Request::Call {
                id: 6,
                op: Op::Extend(expected),
            })
            .unwrap();
            assert_eq!(codec::encode(&resent).unwrap(), whole);
            assert_eq!(
                super::Outgoing::new(resent).unwrap().parts().concat(),
                whole
            );
            // The same frame with its last entry one byte short, and with a byte over.
            let mut short = frame.clone();
            let mut long = frame.clone();
            if short.pop().is_some() {
                long.push(0);
                for bad in [short, long] {
                    let err = decode_request(bad).unwrap_err();
                    assert!(matches!(&err, Error::Decode(_)), "{err}");
                }
            }
        }
        // Lengths that do not add up to the bytes at the end of the frame.
        let unfilled = Batch {
            count: 2,
            lens: vec![1, 1],
            bytes: vec![7; 3],
            skip: 0,
        };
        for op in [Op::Extend(unfilled.clone()), Op::Update(Pairs(unfilled))] {
            let frame = codec::encode(&Request::Call { id: 2, op }).unwrap();
            let err = decode_request(frame).unwrap_err();
            assert!(
                matches!(&err, Error::Decode(m) if m.contains("count")),
                "{err}"
            );
        }
        // A request without a batch.
        let frame = codec::encode(&Request::Call { id: 1, op: Op::Len }).unwrap();
        assert!(matches!(
            decode_request(frame).unwrap(),
            Request::Call { id: 1, op: Op::Len }
        ));
    }

    /// The blockwise sum of one-byte lengths is the plain sum, across block edges and for
    /// the largest lengths, and refuses a high bit wherever it is.
    #[test]
    fn short_lengths_sum_as_a_plain_sum_does() {
        for n in [0, 1, 255, 256, 257, 512, 1000, 100_000] {
            for fill in [|i: usize| (i * 37 % 128) as u8, |_| 127] {
                let mut lens: Vec<u8> = (0..n).map(fill).collect();
                let plain: u64 = lens.iter().map(|&len| u64::from(len)).sum();
                assert_eq!(super::sum_short(&lens), Some(plain), "{n} lengths");
                for at in [0, n / 2, n.saturating_sub(1)] {
                    if let Some(len) = lens.get_mut(at) {
                        let was = std::mem::replace(len, 0x80);
                        assert_eq!(super::sum_short(&lens), None, "high bit at {at} of {n}");
                        lens[at] = was;
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_are_as_small_as_a_vec_and_compare_by_content() {
        assert_eq!(size_of::<Bytes>(), size_of::<Vec<u8>>());
        assert_eq!(size_of::<Option<Bytes>>(), size_of::<Bytes>());
        let long = vec![3; INLINE + 5];
        assert_eq!(Bytes::from(long.clone()), Bytes::from(&long[..]));
        assert_ne!(Bytes::from(&[1, 2][..]), Bytes::from(&[1, 2, 0][..]));
        let back: Bytes =
            codec::decode(&codec::encode(&Bytes::from(long.clone())).unwrap()).unwrap();
        assert_eq!(*back, long[..]);
    }

    /// The numbers the docs of `update`, `extend` and `array` give.
    #[test]
    fn a_bulk_call_carries_what_the_docs_say() {
        assert_eq!(MAX_BATCH, 16_777_216);
        assert_eq!(MAX_BATCH / 2, 8_388_608);
    }
}
