//! 4-bit and 2-bit weight packing (storage for mixed-precision models).
//!
//! Signed codes of `bits` bits (`[-2^(bits-1), 2^(bits-1) - 1]`) are stored two's-complement,
//! `8 / bits` per byte, **first element in the least significant bits**; a trailing partial
//! byte is zero padded. Unpacking sign-extends. Integer-only.
#![deny(clippy::float_arithmetic)]

use crate::error::{Result, arg_err, shape_err};

fn check_bits(bits: u32) -> Result<()> {
    if bits == 2 || bits == 4 {
        Ok(())
    } else {
        Err(arg_err!(
            "sub-byte packing supports 2 or 4 bits, not {bits}"
        ))
    }
}

/// Packs signed `bits`-bit codes (`bits` is 2 or 4); errors if a code is out of range.
pub fn pack_signed(values: &[i8], bits: u32) -> Result<Vec<u8>> {
    check_bits(bits)?;
    let (lo, hi) = (-(1i8 << (bits - 1)), (1i8 << (bits - 1)) - 1);
    let per = (8 / bits) as usize;
    let mask = (1u8 << bits) - 1;
    let mut out = vec![0u8; values.len().div_ceil(per)];
    for (i, &v) in values.iter().enumerate() {
        if !(lo..=hi).contains(&v) {
            return Err(arg_err!("code {v} does not fit {bits} signed bits"));
        }
        out[i / per] |= ((v as u8) & mask) << ((i % per) as u32 * bits);
    }
    Ok(out)
}

/// Unpacks `len` signed `bits`-bit codes; errors if `packed` is too short.
pub fn unpack_signed(packed: &[u8], len: usize, bits: u32) -> Result<Vec<i8>> {
    check_bits(bits)?;
    let per = (8 / bits) as usize;
    if packed.len() < len.div_ceil(per) {
        return Err(shape_err!(
            "{} packed bytes cannot hold {len} {bits}-bit codes",
            packed.len()
        ));
    }
    let shift_back = 8 - bits;
    Ok((0..len)
        .map(|i| {
            let raw = packed[i / per] >> ((i % per) as u32 * bits);
            // Move the field to the top of the byte, then arithmetic-shift down to sign-extend.
            ((raw << shift_back) as i8) >> shift_back
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_layouts() {
        assert_eq!(pack_signed(&[1, -1, 7, -8], 4).unwrap(), vec![0xF1, 0x87]);
        assert_eq!(
            pack_signed(&[1, -1, -2, 0, 1], 2).unwrap(),
            vec![0b00_10_11_01, 0b01]
        );
        assert_eq!(
            unpack_signed(&[0xF1, 0x87], 4, 4).unwrap(),
            vec![1, -1, 7, -8]
        );
        assert!(pack_signed(&[8], 4).is_err());
        assert!(pack_signed(&[-3], 2).is_err());
        assert!(pack_signed(&[0], 3).is_err());
        assert!(unpack_signed(&[0], 3, 2).is_ok());
        assert!(unpack_signed(&[0], 5, 2).is_err());
    }

    proptest! {
        #[test]
        fn round_trip_4(v in proptest::collection::vec(-8i8..=7, 0..100)) {
            let p = pack_signed(&v, 4).unwrap();
            prop_assert_eq!(p.len(), v.len().div_ceil(2));
            prop_assert_eq!(unpack_signed(&p, v.len(), 4).unwrap(), v);
        }

        #[test]
        fn round_trip_2(v in proptest::collection::vec(-2i8..=1, 0..100)) {
            let p = pack_signed(&v, 2).unwrap();
            prop_assert_eq!(p.len(), v.len().div_ceil(4));
            prop_assert_eq!(unpack_signed(&p, v.len(), 2).unwrap(), v);
        }
    }
}
