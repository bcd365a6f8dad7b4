//! The wire format every `procs` crate speaks: postcard values in length-prefixed frames.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes. Readers take a limit
//! and refuse a longer frame before they allocate anything for it, so a corrupt or hostile
//! length costs nothing; a frame cut short by a closed peer is an error, never a hang or a
//! panic.

use std::cell::RefCell;
use std::fmt::Display;
use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

thread_local! {
    /// The message of the last custom serde error on this thread: postcard keeps only that
    /// such an error happened, so [`de_error`] and [`ser_error`] put the words aside here for
    /// [`encode`] and [`decode`] to report.
    static CUSTOM: RefCell<Option<String>> = const { RefCell::new(None) };
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
    CUSTOM.with(|c| *c.borrow_mut() = Some(message));
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
    CUSTOM.with(|c| *c.borrow_mut() = Some(message));
    error
}

/// The words of a custom error, if one was put aside, else postcard's.
fn describe(error: postcard::Error) -> String {
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
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    CUSTOM.with(|c| c.borrow_mut().take());
    postcard::serialize_with_flavor(value, Append(buf))
        .map_err(|e| Error::Decode(format!("cannot encode: {}", describe(e))))
}

/// A postcard output that appends to a borrowed `Vec`, a slice at a time (postcard's own
/// `to_extend` pushes byte by byte, which makes a large byte string several times slower).
struct Append<'a>(&'a mut Vec<u8>);

/// The longest slice [`Append`] copies byte by byte: a varint of any width.
const SHORT: usize = 19;

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Postcard hands over each number as a varint of 1 to 10 bytes (a 128-bit one
        // takes 19): a call to `memcpy` for so few bytes cost more than the rest of the
        // encoding of a `Vec<u64>`, so short slices are pushed byte by byte.
        if data.len() <= SHORT {
            self.0.reserve(SHORT);
            for &byte in data {
                self.0.push(byte);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
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
    CUSTOM.with(|c| c.borrow_mut().take());
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::Decode(format!(
            "{} bytes left over after the value",
            rest.len()
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
    use super::*;

    // `Append` copies short slices byte by byte and longer ones at once: either way the bytes
    // are postcard's own, after whatever the buffer held.
    #[test]
    fn encode_into_appends_postcards_bytes_for_every_width() {
        let numbers: Vec<u64> = (0..64).map(|shift| (1u64 << shift) - 1).collect();
        let wide: Vec<u128> = (0..128).step_by(7).map(|shift| 1u128 << shift).collect();
        let text = "x".repeat(SHORT + 1);
        let value = (numbers, wide, text, b"short".to_vec(), i64::MIN, u128::MAX);
        let mut buf = vec![1, 2, 3];
        encode_into(&value, &mut buf).unwrap();
        let expected = postcard::to_allocvec(&value).unwrap();
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(&buf[3..], &expected[..]);
        assert_eq!(
            decode::<(Vec<u64>, Vec<u128>, String, Vec<u8>, i64, u128)>(&buf[3..]).unwrap(),
            value
        );
    }
}
