//! The wire format every `procs` crate speaks: postcard values in length-prefixed frames.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes. Readers take a limit
//! and refuse a longer frame before they allocate anything for it, so a corrupt or hostile
//! length costs nothing; a frame cut short by a closed peer is an error, never a hang or a
//! panic.

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::error::{Error, Result};

mod decoder;
mod encoder;

thread_local! {
    /// The message of the last custom serde error on this thread: postcard keeps only that
    /// such an error happened, so [`de_error`] and [`ser_error`] put the words aside here for
    /// [`encode`] and [`decode`] to report.
    static CUSTOM: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether [`CUSTOM`] may hold a message. A flag without a destructor costs one load to
    /// look at, where `CUSTOM` costs a check of its destructor's registration and of its
    /// borrow: [`encode_into`] runs once per item of a bulk call, and looks at this only.
    static PUT_ASIDE: Cell<bool> = const { Cell::new(false) };
}

/// Forgets a message put aside by an earlier error, so that only this call's is reported.
#[inline]
fn forget_custom() {
    if PUT_ASIDE.get() {
        PUT_ASIDE.set(false);
        CUSTOM.with(|c| c.borrow_mut().take());
    }
}

/// Puts `message` aside for [`describe`].
fn put_aside(message: String) {
    CUSTOM.with(|c| *c.borrow_mut() = Some(message));
    PUT_ASIDE.set(true);
}

/// A custom deserialization error whose message reaches the [`Error::Decode`] that
/// [`decode`] returns (serde's plain `D::Error::custom` loses it in postcard).
///
/// # Examples
///
/// ```
/// use proc_core::{Error, codec};
/// use serde::{Deserialize, Deserializer};
///
/// struct Even(u8);
///
/// impl<'de> Deserialize<'de> for Even {
///     fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
///         let n = u8::deserialize(d)?;
///         if n % 2 == 0 { Ok(Even(n)) } else { Err(codec::de_error(format!("{n} is odd"))) }
///     }
/// }
///
/// let err = codec::decode::<Even>(&codec::encode(&3u8).unwrap()).err().unwrap();
/// assert!(matches!(err, Error::Decode(msg) if msg == "3 is odd"));
/// ```
pub fn de_error<E: serde::de::Error>(message: impl Display) -> E {
    let message = message.to_string();
    let error = E::custom(&message);
    put_aside(message);
    error
}

/// A custom serialization error whose message reaches the [`Error::Decode`] that [`encode`]
/// returns.
///
/// # Examples
///
/// ```
/// use proc_core::{Error, codec};
/// use serde::{Serialize, Serializer};
///
/// struct Secret;
///
/// impl Serialize for Secret {
///     fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(codec::ser_error("secrets stay here"))
///     }
/// }
///
/// assert!(matches!(codec::encode(&Secret), Err(Error::Decode(msg)) if msg.contains("secrets stay here")));
/// ```
pub fn ser_error<E: serde::ser::Error>(message: impl Display) -> E {
    let message = message.to_string();
    let error = E::custom(&message);
    put_aside(message);
    error
}

/// The words of a custom error, if one was put aside, else postcard's.
fn describe(error: postcard::Error) -> String {
    PUT_ASIDE.set(false);
    let custom = CUSTOM.with(|c| c.borrow_mut().take());
    match (error, custom) {
        (postcard::Error::SerdeDeCustom | postcard::Error::SerdeSerCustom, Some(message)) => {
            message
        }
        (error, _) => error.to_string(),
    }
}

/// The largest frame a reader accepts unless it is told otherwise: 1 GiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 30;

/// The size of the length prefix of a frame.
pub const HEADER_LEN: usize = 4;

/// Encodes `value` with postcard.
///
/// # Errors
///
/// [`Error::Decode`] when serde refuses the value (for example a map with non-string keys is
/// fine, but a type whose `Serialize` impl fails is not).
///
/// # Examples
///
/// ```
/// let bytes = proc_core::codec::encode(&(1u8, "hi")).unwrap();
/// let back: (u8, String) = proc_core::codec::decode(&bytes).unwrap();
/// assert_eq!(back, (1, "hi".to_string()));
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    encode_into(value, &mut bytes)?;
    Ok(bytes)
}

/// Encodes `value` with postcard at the end of `buf`, so that a caller can reuse one buffer
/// for many values.
///
/// # Errors
///
/// As [`encode`]; `buf` may then hold part of the value after its old contents.
///
/// # Examples
///
/// ```
/// let mut buf = vec![9];
/// proc_core::codec::encode_into(&300u16, &mut buf).unwrap();
/// assert_eq!(proc_core::codec::decode::<u16>(&buf[1..]).unwrap(), 300);
/// ```
// Always inlined: a bulk call runs it once per item, and its call (the saving of registers,
// an error returned through memory) cost as much as encoding a small integer.
#[inline(always)]
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    forget_custom();
    value
        .serialize(&mut encoder::Encoder(buf))
        .map_err(encode_error)
}

/// Encodes each of `items` with postcard after the other at the end of `buf`, and after
/// each calls `each` with the number of bytes it took: many values into one buffer, with
/// what [`encode_into`] sets up per value done once (a bulk call's loop).
///
/// # Errors
///
/// As [`encode`] for the first item that does not encode (`buf` then ends with the items
/// before it), or the first error of `each` (after its item).
///
/// # Examples
///
/// ```
/// let (mut buf, mut lens) = (Vec::new(), Vec::new());
/// proc_core::codec::encode_each([1u32, 300, 70_000], &mut buf, |len| {
///     lens.push(len);
///     Ok::<_, proc_core::Error>(())
/// })
/// .unwrap();
/// assert_eq!(lens, [1, 2, 3]);
/// assert_eq!(proc_core::codec::decode::<u32>(&buf[1..3]).unwrap(), 300);
/// ```
#[inline]
pub fn encode_each<T: Serialize, E: From<Error>>(
    items: impl IntoIterator<Item = T>,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(usize) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    forget_custom();
    // The items go into a `Vec` of this function's own, never lent out, so that it stays
    // in registers through the loop (see `encoder`'s docs); `buf` gets it back at the end.
    let mut own = std::mem::take(buf);
    let mut encoder = encoder::Encoder(&mut own);
    let mut done = Ok(());
    for item in items {
        let start = encoder.0.len();
        if let Err(error) = item.serialize(&mut encoder) {
            encoder.0.truncate(start);
            done = Err(encode_error(error).into());
            break;
        }
        if let Err(error) = each(encoder.0.len() - start) {
            done = Err(error);
            break;
        }
    }
    *buf = own;
    done
}

/// Encodes values one after the other at the end of a buffer, with what [`encode_into`]
/// sets up per value done once: for a caller that must look at each value after it is
/// encoded (the handle-aware encoder of a sequence's items keeps those with handles).
pub(crate) struct EachEncoder<'a>(encoder::Encoder<'a>);

impl<'a> EachEncoder<'a> {
    /// An encoder that appends to `buf`.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> EachEncoder<'a> {
        forget_custom();
        EachEncoder(encoder::Encoder(buf))
    }

    /// The length of the buffer: where the next value's bytes start.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.0.0.len()
    }

    /// Encodes `value` after the values before it.
    ///
    /// # Errors
    ///
    /// As [`encode`]; the buffer then ends with the values before this one.
    #[inline(always)]
    pub(crate) fn encode<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let start = self.0.0.len();
        if let Err(error) = value.serialize(&mut self.0) {
            self.0.0.truncate(start);
            return Err(encode_error(error));
        }
        Ok(())
    }
}

/// The error of an encode that failed, out of line: it formats, and the encoders that
/// run once per item of a bulk call stay small enough to be inlined into its loop.
#[cold]
#[inline(never)]
fn encode_error(error: postcard::Error) -> Error {
    Error::Decode(format!("cannot encode: {}", describe(error)))
}

/// Appends `data`, at most 16 bytes, to `buf` without a call to `memcpy`.
///
/// Most strings and byte strings in values are short. A copy of a length known only at run
/// time is a call to `memcpy`, which costs more than the rest of encoding a short string.
/// Here the bytes go one by one into room for 16, in a loop of a fixed count, which the
/// compiler unrolls (and cannot turn back into `memcpy`).
#[inline]
fn append_short(buf: &mut Vec<u8>, data: &[u8]) {
    let (at, n) = (buf.len(), data.len());
    encoder::reserve(buf, 16);
    let Some(out) = buf.spare_capacity_mut().first_chunk_mut::<16>() else {
        // Never: room for 16 bytes was made above.
        return;
    };
    for i in 0..16 {
        if i < n {
            out[i].write(data[i]);
        }
    }
    // SAFETY: `n` is at most 16, and the `n` bytes from `at` on were written just above,
    // within the room made.
    unsafe { buf.set_len(at + n.min(16)) };
}

/// Decodes a postcard value that fills `bytes` exactly.
///
/// # Errors
///
/// [`Error::Decode`] when the bytes are not a `T`, or leave bytes over.
///
/// # Examples
///
/// ```
/// use proc_core::{Error, codec};
///
/// assert_eq!(codec::decode::<u32>(&codec::encode(&7u32).unwrap()).unwrap(), 7);
/// assert!(matches!(codec::decode::<String>(&[200]), Err(Error::Decode(_))));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    decode_seed(bytes, std::marker::PhantomData::<T>)
}

/// [`decode`] with a seed: the value that `seed` makes of the bytes (a seed may put what it
/// reads into memory its caller has, say, or act on each item of a sequence as it is read).
///
/// # Errors
///
/// As [`decode`].
///
/// # Examples
///
/// ```
/// use std::marker::PhantomData;
/// use proc_core::codec;
///
/// let bytes = codec::encode(&(1u8, 2u16)).unwrap();
/// assert_eq!(codec::decode_seed(&bytes, PhantomData::<(u8, u16)>).unwrap(), (1, 2));
/// assert!(codec::decode_seed(&bytes, PhantomData::<u8>).is_err());
/// ```
pub fn decode_seed<'de, S: DeserializeSeed<'de>>(bytes: &'de [u8], seed: S) -> Result<S::Value> {
    forget_custom();
    let mut decoder = decoder::Decoder::new(bytes);
    match seed.deserialize(&mut decoder) {
        Ok(value) if decoder.rest().is_empty() => Ok(value),
        Ok(_) => Err(Error::Decode(format!(
            "{} bytes left over after the value",
            decoder.rest().len()
        ))),
        Err(e) => Err(Error::Decode(describe(e))),
    }
}

/// Writes `payload` as one frame.
///
/// # Errors
///
/// [`Error::Protocol`] when the payload is longer than a frame can say (4 GiB), and
/// [`Error::Io`] when the writer fails.
///
/// # Examples
///
/// ```
/// let mut wire = Vec::new();
/// proc_core::codec::write_frame(&mut wire, b"abc").unwrap();
/// assert_eq!(wire, [3, 0, 0, 0, b'a', b'b', b'c']);
/// ```
pub fn write_frame<W: Write + ?Sized>(writer: &mut W, payload: &[u8]) -> Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::Protocol(format!("a frame of {} bytes is too long", payload.len())))?;
    // Small frames go out in one write so that a reader never sees a header without its body
    // for longer than one system call.
    if payload.len() <= 64 * 1024 {
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(payload);
        writer.write_all(&buf)?;
    } else {
        writer.write_all(&len.to_le_bytes())?;
        writer.write_all(payload)?;
    }
    writer.flush()?;
    Ok(())
}

/// Reads one frame of at most `max` bytes.
///
/// Memory grows with the bytes that really arrive, not with the length the header claims.
///
/// # Errors
///
/// [`Error::Closed`] when the stream ends before a frame starts, [`Error::Protocol`] when the
/// header claims more than `max` bytes or the stream ends inside the frame, and
/// [`Error::Io`] when the reader fails.
///
/// # Examples
///
/// ```
/// use proc_core::{Error, codec};
///
/// let mut wire: &[u8] = &[2, 0, 0, 0, 7, 8];
/// assert_eq!(codec::read_frame(&mut wire, 16).unwrap(), [7, 8]);
/// assert!(matches!(codec::read_frame(&mut wire, 16), Err(Error::Closed)));
///
/// let mut bogus: &[u8] = &[255, 255, 255, 127];
/// assert!(matches!(codec::read_frame(&mut bogus, 16), Err(Error::Protocol(_))));
/// ```
pub fn read_frame<R: Read + ?Sized>(reader: &mut R, max: usize) -> Result<Vec<u8>> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(Error::Closed),
            Ok(0) => return Err(Error::Protocol("truncated frame header".into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > max {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    reader.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() != len {
        return Err(Error::Protocol(format!(
            "truncated frame: {} of {len} bytes arrived",
            payload.len()
        )));
    }
    Ok(payload)
}

/// Encodes `value` and writes it as one frame.
///
/// # Errors
///
/// As [`encode`] and [`write_frame`].
///
/// # Examples
///
/// ```
/// use proc_core::codec;
///
/// let mut wire = Vec::new();
/// codec::send(&mut wire, &vec![1u16, 2, 3]).unwrap();
/// let back: Vec<u16> = codec::recv(&mut wire.as_slice(), codec::DEFAULT_MAX_FRAME).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
pub fn send<W: Write + ?Sized, T: Serialize + ?Sized>(writer: &mut W, value: &T) -> Result<()> {
    write_frame(writer, &encode(value)?)
}

/// Reads one frame of at most `max` bytes and decodes it.
///
/// # Errors
///
/// As [`read_frame`] and [`decode`].
///
/// # Examples
///
/// ```
/// use proc_core::{Error, codec};
///
/// let mut wire = Vec::new();
/// codec::write_frame(&mut wire, &[0xff]).unwrap();
/// assert!(matches!(codec::recv::<_, String>(&mut wire.as_slice(), 64), Err(Error::Decode(_))));
/// ```
pub fn recv<R: Read + ?Sized, T: DeserializeOwned>(reader: &mut R, max: usize) -> Result<T> {
    decode(&read_frame(reader, max)?)
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    /// Whatever `encode_into` appends is what postcard itself writes, for the lengths on
    /// both sides of the short-slice path (`append_short`) and after earlier bytes.
    #[test]
    fn encode_into_writes_what_postcard_writes() {
        /// A byte string (serde writes a `&[u8]` as a sequence of `u8`s).
        struct Raw<'a>(&'a [u8]);
        impl Serialize for Raw<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        #[derive(Serialize)]
        struct Mixed<'a> {
            n: u64,
            s: &'a str,
            b: Raw<'a>,
            v: Vec<i32>,
        }
        let long: String = (0..40u8).map(|i| char::from(b'a' + i % 26)).collect();
        let mut buf = vec![0xee; 3];
        let mut expected = buf.clone();
        for len in 0..=long.len() {
            let s = &long[..len];
            for value in [
                0,
                1,
                127,
                128,
                16_383,
                16_384,
                u64::from(u32::MAX),
                u64::MAX,
            ] {
                let mixed = Mixed {
                    n: value >> (len % 7),
                    s,
                    b: Raw(s.as_bytes()),
                    v: vec![-1, i32::MIN, len as i32],
                };
                super::encode_into(&mixed, &mut buf).unwrap();
                expected.extend(postcard::to_allocvec(&mixed).unwrap());
                assert_eq!(buf, expected, "length {len}, value {value}");
            }
        }
    }

    /// A custom message put aside by an error that nobody reported is not the words of a
    /// later error without one.
    #[test]
    fn a_stale_custom_message_is_forgotten() {
        struct Fails(&'static str);
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(super::ser_error(self.0))
            }
        }
        // A message put aside and never taken, then a plain custom error.
        let _: postcard::Error = super::ser_error("stale words");
        struct Plain;
        impl Serialize for Plain {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("plain"))
            }
        }
        let mut buf = Vec::new();
        let err = super::encode_into(&Plain, &mut buf)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("stale"), "{err}");
        let err = super::encode_into(&Fails("fresh words"), &mut buf).unwrap_err();
        assert!(err.to_string().contains("fresh words"), "{err}");
        let err = super::encode(&Fails("again")).unwrap_err();
        assert!(err.to_string().contains("again"), "{err}");
    }

    // The encoder copies short slices byte by byte and longer ones at once, and writes
    // varints of every length in place: either way the bytes are postcard's own, after
    // whatever the buffer held.
    #[test]
    fn encode_into_appends_postcards_bytes_for_every_width() {
        let numbers: Vec<u64> = (0..64).map(|shift| (1u64 << shift) - 1).collect();
        let wide: Vec<u128> = (0..128).step_by(7).map(|shift| 1u128 << shift).collect();
        let text = "x".repeat(20);
        let value = (numbers, wide, text, b"short".to_vec(), i64::MIN, u128::MAX);
        let mut buf = vec![1, 2, 3];
        super::encode_into(&value, &mut buf).unwrap();
        let expected = postcard::to_allocvec(&value).unwrap();
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(&buf[3..], &expected[..]);
        assert_eq!(
            super::decode::<(Vec<u64>, Vec<u128>, String, Vec<u8>, i64, u128)>(&buf[3..]).unwrap(),
            value
        );
    }
}
