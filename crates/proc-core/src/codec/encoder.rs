//! postcard's format, written straight into a `Vec`: what [`encode_into`](super::encode_into)
//! runs.
//!
//! postcard's own serializer writes every integer as a varint into a buffer on the stack and
//! then copies that buffer into its output, through a flavor's `try_extend`: about sixty
//! instructions for a small `u64`, most of a bulk call's cost per item. This one writes the
//! varint's bytes where they go, in about twenty. The bytes are postcard's, bit for bit (the
//! tests below compare the two on every kind of value serde has), so that postcard reads
//! them back; only the writing differs.
//!
//! The buffer grows only through [`reserve`], which hands the `Vec` to its slow path by
//! value. A `Vec` method that may grow takes `&mut self` into a call that is not inlined,
//! and once the address of a buffer's `Vec` has gone into a call, the compiler must assume
//! that every byte written through its pointer may change its length or capacity: it then
//! keeps the `Vec` in memory and reads it back after every byte, the bulk of a bulk call's
//! loop. Never lent out, the `Vec` stays in registers (a bulk call of small integers took
//! a fifth less time).

use std::mem::MaybeUninit;

use postcard::Error;
use serde::ser::{self, Serialize};

/// The most bytes a varint of a `u64` takes.
const VARINT_MAX: usize = 10;

/// Makes room for `n` more bytes at the end of `buf`; see the module docs for why growth
/// takes the `Vec` by value.
#[inline(always)]
pub(super) fn reserve(buf: &mut Vec<u8>, n: usize) {
    if buf.capacity() - buf.len() < n {
        *buf = grown(std::mem::take(buf), n);
    }
}

#[cold]
#[inline(never)]
fn grown(mut buf: Vec<u8>, n: usize) -> Vec<u8> {
    buf.reserve(n);
    buf
}

/// Appends `bytes`, a few of a size known when compiled, without lending out the `Vec`.
#[inline(always)]
fn put<const N: usize>(buf: &mut Vec<u8>, bytes: [u8; N]) {
    reserve(buf, N);
    let len = buf.len();
    let Some(room) = buf.spare_capacity_mut().first_chunk_mut::<N>() else {
        // Never: room for `N` bytes was made above.
        return;
    };
    for (slot, byte) in room.iter_mut().zip(bytes) {
        slot.write(byte);
    }
    // SAFETY: the `N` bytes from `len` on were written just above, within the room made.
    unsafe { buf.set_len(len + N) };
}

/// Appends `bytes` of any length without lending out the `Vec`.
#[inline]
fn extend(buf: &mut Vec<u8>, bytes: &[u8]) {
    reserve(buf, bytes.len());
    let len = buf.len();
    let room = &mut buf.spare_capacity_mut()[..bytes.len()];
    // A copy the compiler turns into `memcpy`.
    for (slot, &byte) in room.iter_mut().zip(bytes) {
        slot.write(byte);
    }
    // SAFETY: the `bytes.len()` bytes from `len` on were written just above, within the
    // room made.
    unsafe { buf.set_len(len + bytes.len()) };
}

/// Serializes into the end of a `Vec`, as postcard would.
pub(super) struct Encoder<'a>(pub(super) &'a mut Vec<u8>);

impl Encoder<'_> {
    #[inline]
    fn varint(&mut self, mut n: u64) {
        let buf = &mut *self.0;
        reserve(buf, VARINT_MAX);
        let len = buf.len();
        let Some(room) = buf.spare_capacity_mut().first_chunk_mut::<VARINT_MAX>() else {
            // Never: room for `VARINT_MAX` bytes was made above.
            return;
        };
        // The lengths of most integers in a bulk call, unrolled: one to three bytes, with
        // one comparison each, where the loop below tests and branches for every byte.
        if n < 1 << 21 {
            let used = if n < 1 << 7 {
                room[0] = MaybeUninit::new(n as u8);
                1
            } else if n < 1 << 14 {
                room[0] = MaybeUninit::new((n as u8) | 0x80);
                room[1] = MaybeUninit::new((n >> 7) as u8);
                2
            } else {
                room[0] = MaybeUninit::new((n as u8) | 0x80);
                room[1] = MaybeUninit::new(((n >> 7) as u8) | 0x80);
                room[2] = MaybeUninit::new((n >> 14) as u8);
                3
            };
            // SAFETY: the `used` bytes from `len` on were written just above, within the
            // room for 10 past `len`.
            unsafe { buf.set_len(len + used) };
            return;
        }
        let mut i = 0;
        // A u64 takes at most ten groups of seven bits; `i < 9` lets the compiler see that
        // the index stays in `room`, and the tenth group is what is left.
        while n >= 0x80 && i < VARINT_MAX - 1 {
            room[i] = MaybeUninit::new((n as u8) | 0x80);
            n >>= 7;
            i += 1;
        }
        room[i] = MaybeUninit::new(n as u8);
        // SAFETY: the bytes from `len` to `len + i + 1` (`i` is at most 9, and there is room
        // for 10 past `len`) were written just above.
        unsafe { buf.set_len(len + i + 1) };
    }

    #[inline]
    fn varint_u128(&mut self, n: u128) {
        match u64::try_from(n) {
            Ok(small) => self.varint(small),
            Err(_) => self.varint_u128_long(n),
        }
    }

    #[cold]
    fn varint_u128_long(&mut self, mut n: u128) {
        while n >= 0x80 {
            put(self.0, [(n as u8) | 0x80]);
            n >>= 7;
        }
        put(self.0, [n as u8]);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        if bytes.len() <= 16 {
            super::append_short(self.0, bytes);
        } else {
            extend(self.0, bytes);
        }
    }
}

impl<'b> ser::Serializer for &mut Encoder<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        put(self.0, [u8::from(v)]);
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        put(self.0, [v as u8]);
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        // Zigzag, as postcard: the sign in the lowest bit, so that small negatives are short.
        self.varint(((v << 1) ^ (v >> 63)) as u64);
        Ok(())
    }

    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.varint_u128(((v << 1) ^ (v >> 127)) as u128);
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        put(self.0, [v]);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.varint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.varint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.varint(v);
        Ok(())
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.varint_u128(v);
        Ok(())
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        put(self.0, v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        put(self.0, v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.bytes(v.as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.bytes(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        put(self.0, [0]);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        put(self.0, [1]);
        value.serialize(self)
    }

    #[inline]
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
    ) -> Result<(), Error> {
        self.varint(variant_index.into());
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.varint(variant_index.into());
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Error> {
        counted(self, len)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        tagged(self, variant_index)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self, Error> {
        counted(self, len)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        tagged(self, variant_index)
    }

    fn collect_str<T: ?Sized + std::fmt::Display>(self, value: &T) -> Result<(), Error> {
        // postcard's way: the text's length first, so the text is formatted twice, the first
        // time only to count.
        use std::fmt::Write;
        struct Count(usize);
        impl Write for Count {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                self.0 += s.len();
                Ok(())
            }
        }
        // The buffer goes to the formatter by value (see the module docs).
        struct Append(Vec<u8>);
        impl Write for Append {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                extend(&mut self.0, s.as_bytes());
                Ok(())
            }
        }
        let mut count = Count(0);
        write!(count, "{value}").map_err(|_| Error::CollectStrError)?;
        self.varint(count.0 as u64);
        let mut append = Append(std::mem::take(self.0));
        let written = write!(append, "{value}").map_err(|_| Error::CollectStrError);
        *self.0 = append.0;
        written
    }
}

/// A variant of a compound enum: its index, then its fields.
#[inline]
fn tagged<'a, 'b>(
    encoder: &'a mut Encoder<'b>,
    variant_index: u32,
) -> Result<&'a mut Encoder<'b>, Error> {
    encoder.varint(variant_index.into());
    Ok(encoder)
}

/// A sequence or map: its length, then its elements (postcard needs the length first).
#[inline]
fn counted<'a, 'b>(
    encoder: &'a mut Encoder<'b>,
    len: Option<usize>,
) -> Result<&'a mut Encoder<'b>, Error> {
    encoder.varint(len.ok_or(Error::SerializeSeqLengthUnknown)? as u64);
    Ok(encoder)
}

/// The parts of a compound value follow one another with nothing between them.
macro_rules! compound {
    ($($trait:ident { $method:ident $(, $key:ty)? })*) => {$(
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = Error;

            #[inline]
            fn $method<T: ?Sized + Serialize>(
                &mut self,
                $(_key: $key,)?
                value: &T,
            ) -> Result<(), Error> {
                value.serialize(&mut **self)
            }

            #[inline]
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq { serialize_element }
    SerializeTuple { serialize_element }
    SerializeTupleStruct { serialize_field }
    SerializeTupleVariant { serialize_field }
    SerializeStruct { serialize_field, &'static str }
    SerializeStructVariant { serialize_field, &'static str }
}

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv6Addr};

    use serde::{Deserialize, Serialize};

    use super::Encoder;

    /// Every kind of value serde has, each at the edges of its widths.
    #[derive(Debug, Serialize, Deserialize)]
    enum Kinds {
        Unit,
        Newtype(i16),
        Tuple(u8, char),
        Struct { a: Option<u32>, b: f32 },
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct UnitStruct;

    #[derive(Debug, Serialize, Deserialize)]
    struct Newtype(String);

    #[derive(Debug, Serialize, Deserialize)]
    struct TupleStruct(i8, bool, ());

    #[derive(Debug, Serialize, Deserialize)]
    pub(in crate::codec) struct Everything {
        ints: (i8, i16, i32, i64, i128),
        uints: (u8, u16, u32, u64, u128),
        floats: (f32, f64),
        chars: Vec<char>,
        texts: Vec<String>,
        bytes: Raw,
        options: (Option<u64>, Option<Newtype>),
        units: ((), UnitStruct, TupleStruct),
        kinds: Vec<Kinds>,
        map: BTreeMap<String, Vec<u16>>,
        // A type that serializes through `collect_str` only when human readable: here its
        // bytes, and `collect_str` itself through the `Display` wrapper below.
        address: IpAddr,
        shown: Shown,
    }

    /// A byte string (serde writes a `Vec<u8>` as a sequence of `u8`s).
    #[derive(Debug)]
    struct Raw(Vec<u8>);

    impl Serialize for Raw {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Raw {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
            struct Bytes;
            impl serde::de::Visitor<'_> for Bytes {
                type Value = Raw;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
                    Ok(Raw(v.to_vec()))
                }
            }
            d.deserialize_byte_buf(Bytes)
        }
    }

    /// A value that serde writes with `collect_str`.
    #[derive(Debug)]
    struct Shown(u64);

    impl<'de> Deserialize<'de> for Shown {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shown, D::Error> {
            let text = String::deserialize(d)?;
            text.strip_prefix("shown ")
                .and_then(|n| n.parse().ok())
                .map(Shown)
                .ok_or_else(|| serde::de::Error::custom("not shown"))
        }
    }

    impl Serialize for Shown {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("shown {}", self.0))
        }
    }

    pub(in crate::codec) fn everything(i: u32) -> Everything {
        let shift = i % 128;
        let wide = 1u128.checked_shl(shift).unwrap_or(0).wrapping_sub(1);
        Everything {
            ints: (
                (wide as i8).wrapping_neg(),
                wide as i16,
                -(wide as i32),
                wide as i64 ^ i64::MIN,
                -(wide as i128),
            ),
            uints: (wide as u8, wide as u16, wide as u32, wide as u64, wide),
            floats: (shift as f32 * -0.5, f64::MAX / (shift as f64 + 1.0)),
            chars: vec!['a', 'é', '€', '𝄞'],
            texts: (0..3).map(|n| "xyz".repeat((i as usize + n) % 9)).collect(),
            bytes: Raw(vec![7; i as usize % 40]),
            options: (
                i.is_multiple_of(2).then_some(wide as u64),
                i.is_multiple_of(3)
                    .then(|| Newtype("n".repeat(i as usize % 20))),
            ),
            units: ((), UnitStruct, TupleStruct(-1, !i.is_multiple_of(2), ())),
            kinds: vec![
                Kinds::Unit,
                Kinds::Newtype(i16::MIN),
                Kinds::Tuple(u8::MAX, 'q'),
                Kinds::Struct {
                    a: Some(u32::MAX >> (i % 32)),
                    b: f32::NAN,
                },
            ],
            map: (0..i % 5)
                .map(|n| (format!("key {n}"), vec![n as u16; n as usize]))
                .collect(),
            address: IpAddr::V6(Ipv6Addr::LOCALHOST),
            shown: Shown(wide as u64),
        }
    }

    #[test]
    fn the_encoder_writes_what_postcard_writes_for_every_kind_of_value() {
        for i in 0..300 {
            let value = everything(i);
            let mut buf = vec![0xab; i as usize % 3];
            let before = buf.clone();
            value.serialize(&mut Encoder(&mut buf)).unwrap();
            let expected = postcard::to_allocvec(&value).unwrap();
            assert_eq!(&buf[..before.len()], &before[..]);
            assert_eq!(&buf[before.len()..], &expected[..], "value {i}");
        }
    }

    /// Each varint length on its own, in a buffer whose room runs out at every place, so
    /// that the writes in place (`set_len`) meet every capacity.
    #[test]
    fn varints_of_every_length_are_postcards_whatever_the_room() {
        let numbers: Vec<u64> = (0..=64)
            .map(|shift| 1u64.checked_shl(shift).map_or(u64::MAX, |n| n - 1))
            .chain((0..64).map(|shift| 1u64 << shift))
            .collect();
        for &n in &numbers {
            let expected = postcard::to_allocvec(&n).unwrap();
            for start in 0..12 {
                let mut buf = Vec::with_capacity(start + 3);
                buf.resize(start, 5);
                n.serialize(&mut Encoder(&mut buf)).unwrap();
                assert_eq!(&buf[start..], &expected[..], "{n} after {start} bytes");
                assert_eq!(postcard::from_bytes::<u64>(&buf[start..]).unwrap(), n);
            }
        }
    }

    #[test]
    fn a_sequence_of_unknown_length_is_refused_as_postcard_refuses_it() {
        struct Unknown;
        impl Serialize for Unknown {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let seq = s.serialize_seq(None)?;
                seq.end()
            }
        }
        let mut buf = Vec::new();
        assert_eq!(
            Unknown.serialize(&mut Encoder(&mut buf)).unwrap_err(),
            postcard::to_allocvec(&Unknown).unwrap_err()
        );
    }
}
