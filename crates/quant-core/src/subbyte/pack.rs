//! LSB-first packing of 8/4/2-bit codes, unsigned or two's-complement signed.
//!
//! Element `i` of a `b`-bit tensor lives in byte `i / (8 / b)` at bit offset `(i % (8 / b)) · b`
//! (the low nibble holds the even element), the layout of CMix-NN's `__int16_to_u4` helpers. A
//! trailing partial byte is zero-padded, so a tensor of `n` elements takes `ceil(n·b / 8)` bytes,
//! which is exactly what the paper's memory model counts. Signed codes (`[-2^(b-1), 2^(b-1) - 1]`,
//! int8 weights quantized to 4 or 2 bits) are stored as their low `b` two's-complement bits in the
//! same layout and sign-extended on the way out.
#![deny(clippy::float_arithmetic)]

use crate::error::{Result, arg_err, shape_err};
use serde::{Deserialize, Serialize};

/// The bit widths of the paper's mixed-precision search (8 -> 4 -> 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BitWidth {
    B2,
    B4,
    B8,
}

impl BitWidth {
    /// `2`, `4` or `8`; any other value is `None`.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            2 => Some(BitWidth::B2),
            4 => Some(BitWidth::B4),
            8 => Some(BitWidth::B8),
            _ => None,
        }
    }

    /// Bits per element.
    pub fn bits(self) -> u32 {
        match self {
            BitWidth::B2 => 2,
            BitWidth::B4 => 4,
            BitWidth::B8 => 8,
        }
    }

    /// Elements per byte.
    pub fn per_byte(self) -> usize {
        (8 / self.bits()) as usize
    }

    /// Largest code, `2^b - 1`.
    pub fn max_code(self) -> u8 {
        ((1u32 << self.bits()) - 1) as u8
    }

    /// Bytes holding `n` elements: `ceil(n·b / 8)`.
    pub fn bytes_for(self, n: usize) -> usize {
        n.div_ceil(self.per_byte())
    }
}

/// A packed tensor of unsigned codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    pub bits: BitWidth,
    /// Number of elements.
    pub len: usize,
    /// `bits.bytes_for(len)` bytes.
    pub data: Vec<u8>,
}

impl Packed {
    /// Packs `codes`; errors if a code does not fit in `bits`.
    pub fn pack(codes: &[u8], bits: BitWidth) -> Result<Self> {
        let max = bits.max_code();
        if let Some((i, &c)) = codes.iter().enumerate().find(|&(_, &c)| c > max) {
            return Err(arg_err!(
                "code {c} at index {i} does not fit in {} bits (max {max})",
                bits.bits()
            ));
        }
        let per = bits.per_byte();
        let b = bits.bits();
        let data = codes
            .chunks(per)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u8, |byte, (j, &c)| byte | (c << (j as u32 * b)))
            })
            .collect();
        Ok(Packed {
            bits,
            len: codes.len(),
            data,
        })
    }

    /// Packs signed codes as their low `bits` two's-complement bits; errors if a code is outside
    /// `[-2^(bits-1), 2^(bits-1) - 1]`.
    pub fn pack_signed(values: &[i8], bits: BitWidth) -> Result<Self> {
        let half = 1i16 << (bits.bits() - 1);
        if let Some((i, &v)) = values
            .iter()
            .enumerate()
            .find(|&(_, &v)| !(-half..half).contains(&i16::from(v)))
        {
            return Err(arg_err!(
                "code {v} at index {i} does not fit in {} signed bits",
                bits.bits()
            ));
        }
        let codes: Vec<u8> = values.iter().map(|&v| v as u8 & bits.max_code()).collect();
        Packed::pack(&codes, bits)
    }

    /// Element `i` read as a signed code (sign-extended from `bits`).
    #[inline]
    pub fn get_signed(&self, i: usize) -> i8 {
        let up = 8 - self.bits.bits();
        // Move the field to the top of the byte, then arithmetic-shift down to sign-extend.
        ((self.get(i) << up) as i8) >> up
    }

    /// All codes read as signed, one per byte.
    pub fn unpack_signed(&self) -> Vec<i8> {
        (0..self.len).map(|i| self.get_signed(i)).collect()
    }

    /// Wraps already packed bytes; errors if their count does not match `len`.
    pub fn from_bytes(data: Vec<u8>, bits: BitWidth, len: usize) -> Result<Self> {
        if data.len() != bits.bytes_for(len) {
            return Err(shape_err!(
                "{} bytes cannot hold exactly {len} {}-bit elements",
                data.len(),
                bits.bits()
            ));
        }
        Ok(Packed { bits, len, data })
    }

    /// Element `i` (panics if `i >= len`, like slice indexing).
    #[inline]
    pub fn get(&self, i: usize) -> u8 {
        assert!(
            i < self.len,
            "index {i} out of range for {} elements",
            self.len
        );
        let per = self.bits.per_byte();
        let shift = (i % per) as u32 * self.bits.bits();
        (self.data[i / per] >> shift) & self.bits.max_code()
    }

    /// Widens `count` elements starting at `start` into `out` as int16 minus `zero` (the CMix-NN
    /// unpack-to-int16 step before the 16-bit MACs).
    #[inline]
    pub fn unpack_i16_into(&self, start: usize, count: usize, zero: i16, out: &mut [i16]) {
        for (k, o) in out[..count].iter_mut().enumerate() {
            *o = i16::from(self.get(start + k)) - zero;
        }
    }

    /// All codes, one per byte (each packed byte split once, in element order).
    pub fn unpack(&self) -> Vec<u8> {
        let (b, max, per) = (self.bits.bits(), self.bits.max_code(), self.bits.per_byte());
        let mut codes = Vec::with_capacity(self.data.len() * per);
        for &byte in &self.data {
            for j in 0..per as u32 {
                codes.push((byte >> (j * b)) & max);
            }
        }
        codes.truncate(self.len);
        codes
    }

    /// Storage in bytes.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_lsb_first_with_zero_padding() {
        let p = Packed::pack(&[1, 2, 3], BitWidth::B4).unwrap();
        assert_eq!(p.data, vec![0x21, 0x03]);
        let p = Packed::pack(&[3, 0, 1, 2, 3], BitWidth::B2).unwrap();
        assert_eq!(p.data, vec![0b1001_0011, 0b0000_0011]);
        let p = Packed::pack(&[255, 0], BitWidth::B8).unwrap();
        assert_eq!(p.data, vec![255, 0]);
        assert_eq!(BitWidth::B2.bytes_for(5), 2);
    }

    #[test]
    fn codes_out_of_range_are_rejected() {
        let e = Packed::pack(&[0, 16], BitWidth::B4).unwrap_err();
        assert!(e.to_string().contains("code 16 at index 1"), "{e}");
        assert!(Packed::pack(&[4], BitWidth::B2).is_err());
        assert!(Packed::from_bytes(vec![0; 3], BitWidth::B4, 7).is_err());
        assert!(Packed::from_bytes(vec![0; 4], BitWidth::B4, 7).is_ok());
        assert_eq!(BitWidth::from_bits(3), None);
    }

    #[test]
    fn signed_codes_are_twos_complement_fields() {
        let p = Packed::pack_signed(&[1, -1, 7, -8], BitWidth::B4).unwrap();
        assert_eq!(p.data, vec![0xF1, 0x87]);
        let p = Packed::pack_signed(&[1, -1, -2, 0, 1], BitWidth::B2).unwrap();
        assert_eq!(p.data, vec![0b00_10_11_01, 0b01]);
        assert_eq!(p.unpack_signed(), vec![1, -1, -2, 0, 1]);
        let e = Packed::pack_signed(&[0, 8], BitWidth::B4).unwrap_err();
        assert!(e.to_string().contains("code 8 at index 1"), "{e}");
        assert!(Packed::pack_signed(&[-3], BitWidth::B2).is_err());
        assert!(Packed::pack_signed(&[-128, 127], BitWidth::B8).is_ok());
    }

    proptest! {
        #[test]
        fn signed_round_trip(bits in prop_oneof![Just(2u32), Just(4), Just(8)],
                             raw in proptest::collection::vec(any::<i8>(), 0..100)) {
            let w = BitWidth::from_bits(bits).unwrap();
            let up = 8 - bits;
            let codes: Vec<i8> = raw.iter().map(|&v| (v << up) >> up).collect();
            let p = Packed::pack_signed(&codes, w).unwrap();
            prop_assert_eq!(p.bytes(), (codes.len() * bits as usize).div_ceil(8));
            prop_assert_eq!(p.unpack_signed(), codes);
        }

        #[test]
        fn pack_unpack_round_trip(bits in prop_oneof![Just(2u32), Just(4), Just(8)],
                                  raw in proptest::collection::vec(any::<u8>(), 0..100)) {
            let w = BitWidth::from_bits(bits).unwrap();
            let codes: Vec<u8> = raw.iter().map(|c| c & w.max_code()).collect();
            let p = Packed::pack(&codes, w).unwrap();
            prop_assert_eq!(p.bytes(), (codes.len() * bits as usize).div_ceil(8));
            prop_assert_eq!(p.unpack(), codes.clone());
            let mut wide = vec![0i16; codes.len()];
            p.unpack_i16_into(0, codes.len(), 1, &mut wide);
            prop_assert!(wide.iter().zip(&codes).all(|(&w, &c)| w == i16::from(c) - 1));
        }
    }
}
