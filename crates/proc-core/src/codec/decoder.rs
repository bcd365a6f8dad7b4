//! postcard's format, read straight from a slice: what [`decode`](super::decode) runs.
//!
//! postcard's own deserializer takes every byte of a varint through its flavor's `pop`, a
//! call with its own bounds check and error path per byte: about forty instructions for a
//! small `u64`, most of a bulk call's cost per item on the side that decodes (the pool's
//! caller, and each worker for its arguments). This one reads a varint's bytes from the
//! slice in one loop, with the one-byte case first. It reads postcard's bytes and refuses
//! what postcard refuses, with the same errors (the tests below compare the two on every
//! kind of value serde has, and on every cut and corruption of them).

use postcard::Error;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

type Result<T> = std::result::Result<T, Error>;

/// Deserializes from the front of a slice, as postcard would.
pub(super) struct Decoder<'de> {
    input: &'de [u8],
}

impl<'de> Decoder<'de> {
    pub(super) fn new(input: &'de [u8]) -> Decoder<'de> {
        Decoder { input }
    }

    /// The bytes not read yet.
    pub(super) fn rest(&self) -> &'de [u8] {
        self.input
    }

    #[inline]
    fn pop(&mut self) -> Result<u8> {
        let (&first, rest) = self
            .input
            .split_first()
            .ok_or(Error::DeserializeUnexpectedEnd)?;
        self.input = rest;
        Ok(first)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if n > self.input.len() {
            return Err(Error::DeserializeUnexpectedEnd);
        }
        let (taken, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(taken)
    }

    /// A varint of at most `max` bytes whose last byte is at most `last` (postcard's
    /// `varint_max` and `max_of_last_byte` of the type), as a `u64`.
    #[inline(always)]
    fn varint(&mut self, max: usize, last: u8) -> Result<u64> {
        // The lengths of most integers in a bulk call, unrolled: one to three bytes, each
        // one test (a third byte is the last of a `u16`, which has a bound: the loop then).
        let input = self.input;
        if let [b0, b1, b2, ..] = *input {
            if b0 < 0x80 {
                self.input = &input[1..];
                return Ok(u64::from(b0));
            }
            let two = u64::from(b0 & 0x7f) | u64::from(b1 & 0x7f) << 7;
            if b1 < 0x80 {
                self.input = &input[2..];
                return Ok(two);
            }
            if b2 < 0x80 && max > 3 {
                self.input = &input[3..];
                return Ok(two | u64::from(b2) << 14);
            }
        }
        self.varint_loop(max, last)
    }

    /// [`Decoder::varint`] byte by byte, as postcard reads it.
    #[inline(never)]
    fn varint_loop(&mut self, max: usize, last: u8) -> Result<u64> {
        let input = self.input;
        let mut out = 0u64;
        for i in 0..max {
            // Postcard reads byte by byte: the end of the input comes first if it is nearer.
            let Some(&byte) = input.get(i) else {
                return Err(Error::DeserializeUnexpectedEnd);
            };
            out |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == max - 1 && byte > last {
                    return Err(Error::DeserializeBadVarint);
                }
                self.input = input.get(i + 1..).unwrap_or_default();
                return Ok(out);
            }
        }
        Err(Error::DeserializeBadVarint)
    }

    #[inline]
    fn varint_u16(&mut self) -> Result<u16> {
        Ok(self.varint(3, 0b11)? as u16)
    }

    #[inline]
    fn varint_u32(&mut self) -> Result<u32> {
        Ok(self.varint(5, 0b1111)? as u32)
    }

    #[inline]
    fn varint_u64(&mut self) -> Result<u64> {
        self.varint(10, 0b1)
    }

    #[inline]
    fn varint_usize(&mut self) -> Result<usize> {
        #[cfg(target_pointer_width = "64")]
        let n = self.varint_u64()?;
        #[cfg(not(target_pointer_width = "64"))]
        let n = self.varint_u32()?;
        usize::try_from(n).map_err(|_| Error::DeserializeBadVarint)
    }

    #[cold]
    fn varint_u128(&mut self) -> Result<u128> {
        let mut out = 0u128;
        for i in 0..19 {
            let byte = self.pop()?;
            out |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == 18 && byte > 0b11 {
                    return Err(Error::DeserializeBadVarint);
                }
                return Ok(out);
            }
        }
        Err(Error::DeserializeBadVarint)
    }
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

struct Access<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
    len: usize,
}

impl<'de> de::SeqAccess<'de> for Access<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<Option<V::Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.decoder).map(Some)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        // As postcard: no promise of more elements than there are bytes left.
        (self.len <= self.decoder.input.len()).then_some(self.len)
    }
}

impl<'de> de::MapAccess<'de> for Access<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.decoder).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.decoder)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = Error;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::WontImplement)
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.pop()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(Error::DeserializeBadBool),
        }
    }

    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.pop()? as i8)
    }

    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let n = self.varint_u16()?;
        visitor.visit_i16(unzigzag(n.into()) as i16)
    }

    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let n = self.varint_u32()?;
        visitor.visit_i32(unzigzag(n.into()) as i32)
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let n = self.varint_u64()?;
        visitor.visit_i64(unzigzag(n))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let n = self.varint_u128()?;
        visitor.visit_i128(((n >> 1) as i128) ^ -((n & 1) as i128))
    }

    #[inline]
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u8(self.pop()?)
    }

    #[inline]
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u16(self.varint_u16()?)
    }

    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(self.varint_u32()?)
    }

    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.varint_u64()?)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u128(self.varint_u128()?)
    }

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let bytes = self.take(4)?;
        let mut buf = [0; 4];
        buf.copy_from_slice(bytes);
        visitor.visit_f32(f32::from_le_bytes(buf))
    }

    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let bytes = self.take(8)?;
        let mut buf = [0; 8];
        buf.copy_from_slice(bytes);
        visitor.visit_f64(f64::from_le_bytes(buf))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        if len > 4 {
            return Err(Error::DeserializeBadChar);
        }
        let bytes = self.take(len)?;
        let c = std::str::from_utf8(bytes)
            .map_err(|_| Error::DeserializeBadChar)?
            .chars()
            .next()
            .ok_or(Error::DeserializeBadChar)?;
        visitor.visit_char(c)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        let bytes = self.take(len)?;
        visitor
            .visit_borrowed_str(std::str::from_utf8(bytes).map_err(|_| Error::DeserializeBadUtf8)?)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        let bytes = self.take(len)?;
        visitor.visit_str(std::str::from_utf8(bytes).map_err(|_| Error::DeserializeBadUtf8)?)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_borrowed_bytes(self.take(len)?)
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_bytes(self.take(len)?)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.pop()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            _ => Err(Error::DeserializeBadOption),
        }
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_seq(Access { decoder: self, len })
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Access { decoder: self, len })
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_seq(Access { decoder: self, len })
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_map(Access { decoder: self, len })
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let len = fields.len();
        visitor.visit_seq(Access { decoder: self, len })
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::WontImplement)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::WontImplement)
    }
}

impl<'de> de::EnumAccess<'de> for &mut Decoder<'de> {
    type Error = Error;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = self.varint_u32()?;
        let value = seed.deserialize(variant.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Decoder<'de> {
    type Error = Error;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<V::Value> {
        seed.deserialize(self)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Access { decoder: self, len })
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let len = fields.len();
        visitor.visit_seq(Access { decoder: self, len })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::Decoder;
    // The values of every kind that the encoder's tests write, read back here.
    use crate::codec::encoder::tests::{Everything, everything};

    /// What postcard makes of `bytes`, and what the decoder makes of them: the same value
    /// and the same bytes left, or the same error.
    /// Values are compared by their bytes, so that a NaN equals itself.
    fn same<T: DeserializeOwned + Serialize + Debug>(bytes: &[u8]) {
        let mut decoder = Decoder::new(bytes);
        let ours = T::deserialize(&mut decoder);
        let theirs = postcard::take_from_bytes::<T>(bytes);
        match (ours, theirs) {
            (Ok(value), Ok((expected, expected_rest))) => {
                assert_eq!(
                    postcard::to_allocvec(&value).unwrap(),
                    postcard::to_allocvec(&expected).unwrap(),
                    "{bytes:?}"
                );
                assert_eq!(decoder.rest(), expected_rest, "{bytes:?}");
            }
            (Err(e), Err(expected)) => assert_eq!(e, expected, "{bytes:?}"),
            (ours, theirs) => panic!("{bytes:?}: ours {ours:?}, postcard's {theirs:?}"),
        }
    }

    #[test]
    fn the_decoder_reads_what_postcard_reads_for_every_kind_of_value() {
        for i in 0..300 {
            let bytes = postcard::to_allocvec(&everything(i)).unwrap();
            let back = Everything::deserialize(&mut Decoder::new(&bytes)).unwrap();
            assert_eq!(postcard::to_allocvec(&back).unwrap(), bytes, "value {i}");
            same::<Everything>(&bytes);
        }
    }

    /// Every cut of a value, and every byte of it changed: the decoder and postcard agree on
    /// each (the same value, or the same error).
    #[test]
    fn cut_and_corrupt_input_is_refused_as_postcard_refuses_it() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in [0, 7, 64, 100, 128] {
            let bytes = postcard::to_allocvec(&everything(i)).unwrap();
            for end in 0..bytes.len() {
                same::<Everything>(&bytes[..end]);
            }
            for at in 0..bytes.len() {
                let mut bad = bytes.clone();
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bad[at] = state as u8;
                same::<Everything>(&bad);
                bad[at] = 0xff;
                same::<Everything>(&bad);
            }
        }
    }

    /// Varints of every length and their overlong and overflowing forms, for each width.
    #[test]
    fn varints_of_every_length_and_bad_ones_are_postcards() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for shift in 0..=128u32 {
            let n = 1u128.checked_shl(shift).unwrap_or(0).wrapping_sub(1);
            inputs.push(postcard::to_allocvec(&n).unwrap());
            inputs.push(postcard::to_allocvec(&(n as u64)).unwrap());
        }
        for len in 0..22 {
            for last in [0u8, 1, 2, 3, 4, 0x0f, 0x10, 0x7f, 0x80] {
                let mut bytes = vec![0xffu8; len];
                bytes.push(last);
                bytes.push(9);
                inputs.push(bytes);
            }
        }
        for bytes in &inputs {
            same::<u16>(bytes);
            same::<u32>(bytes);
            same::<u64>(bytes);
            same::<u128>(bytes);
            same::<i16>(bytes);
            same::<i32>(bytes);
            same::<i64>(bytes);
            same::<i128>(bytes);
            same::<usize>(bytes);
            same::<char>(bytes);
            same::<String>(bytes);
            same::<Vec<u8>>(bytes);
            same::<Option<bool>>(bytes);
        }
    }

    /// A length far past the bytes left must not make a sequence allocate room for it.
    #[test]
    fn a_huge_length_is_no_promise_of_room() {
        let bytes = postcard::to_allocvec(&(u64::MAX >> 1)).unwrap();
        same::<Vec<u64>>(&bytes);
        same::<BTreeMap<u8, u8>>(&bytes);
    }
}
