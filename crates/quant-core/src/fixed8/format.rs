//! Integer-only F8Net fixed-point arithmetic (dossier §2, §6).
//!
//! Each function's doc comment is its specification: the rounding rule, the saturation case and the
//! edge the tests pin. Rounding is always half to even, as in the official code (PyTorch `round` in the
//! simulated forward, "add half, shift, force exact halves to even" in the integer model), so the
//! simulated and the integer model agree bit for bit.
#![deny(clippy::float_arithmetic)]

use crate::error::{Result, arg_err};

/// Largest accumulator magnitude: accumulators and residual sums clamp to `±(2^31 - 1)` (symmetric,
/// `i32::MIN` is never produced, matching the official clamp).
pub const ACC_MAX: i64 = i32::MAX as i64;

/// An 8-bit fixed-point format: codes `q` in `[-127, 127]` (signed, `FL <= 7`) or `[0, 255]`
/// (unsigned, `FL <= 8`), real value `q * 2^-FL`.
///
/// Signed codes are symmetric: `-128` is never produced, so negation never overflows. The unsigned
/// lower clamp at 0 *is* the ReLU of the layer that produced the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FixedFormat {
    /// Fractional length: number of bits right of the binary point.
    pub fl: u8,
    /// Signed (weights, linear-bottleneck activations) or unsigned (post-ReLU activations).
    pub signed: bool,
}

impl FixedFormat {
    /// Largest FL of a signed 8-bit format (the official code clamps to `[0, 7]`).
    pub const SIGNED_FL_MAX: u8 = 7;
    /// Largest FL of an unsigned 8-bit format (clamp `[0, 8]`).
    pub const UNSIGNED_FL_MAX: u8 = 8;

    /// A format; FL above the bound of its signedness is an error.
    pub fn new(fl: u8, signed: bool) -> Result<Self> {
        let max = Self::fl_max(signed);
        if fl > max {
            return Err(arg_err!(
                "fractional length {fl} exceeds {max} for a {} 8-bit format",
                if signed { "signed" } else { "unsigned" }
            ));
        }
        Ok(FixedFormat { fl, signed })
    }

    /// `7` for signed, `8` for unsigned.
    pub fn fl_max(signed: bool) -> u8 {
        if signed {
            Self::SIGNED_FL_MAX
        } else {
            Self::UNSIGNED_FL_MAX
        }
    }

    /// Smallest code: `-127` or `0`.
    pub fn lo(self) -> i32 {
        if self.signed { -127 } else { 0 }
    }

    /// Largest code: `127` or `255`.
    pub fn hi(self) -> i32 {
        if self.signed { 127 } else { 255 }
    }

    /// Clamps a wide integer to `[lo, hi]`.
    pub fn saturate(self, v: i64) -> i32 {
        v.clamp(i64::from(self.lo()), i64::from(self.hi())) as i32
    }

    /// Requantizes an accumulator `acc` with fractional length `fl_acc` to this format:
    /// `saturate(shift_round_half_even(acc, fl_acc - fl))`. No multiplier is involved: a positive
    /// difference is a right shift rounding half to even, a negative one a left shift (exact; saturation
    /// happens after). For unsigned formats the clamp at 0 is the ReLU.
    ///
    /// Edges: `acc = 3, fl_acc = 1 -> fl 0` gives 2 (1.5 to even); `acc = -3` gives -2; `acc = 1`
    /// gives 0 (0.5 to even); `acc = 300, fl_acc = 0 -> unsigned fl 0` saturates to 255.
    pub fn requantize(self, acc: i32, fl_acc: i32) -> i32 {
        self.saturate(shift_round_half_even(
            i64::from(acc),
            fl_acc - i32::from(self.fl),
        ))
    }
}

/// `x * 2^-n` rounded half to even, computed with shifts only.
///
/// `n > 0`: floor shift, then add one when the dropped bits exceed one half, or equal one half and
/// the kept value is odd. `n <= 0`: exact left shift by `-n`, saturating to the `i64` range (callers
/// clamp further). Shifts of 63 or more bits return the correctly rounded result (0 or the sign for
/// small inputs is handled by the general rule).
///
/// Test vectors (n = 1): 1 -> 0, 3 -> 2, 5 -> 2, -1 -> 0, -3 -> -2, -5 -> -2, 2 -> 1.
pub fn shift_round_half_even(x: i64, n: i32) -> i64 {
    if n <= 0 {
        let k = n.unsigned_abs();
        if x == 0 {
            return 0;
        }
        if k >= 63 {
            return if x > 0 { i64::MAX } else { i64::MIN };
        }
        return x
            .checked_mul(1_i64 << k)
            .unwrap_or(if x > 0 { i64::MAX } else { i64::MIN });
    }
    if n >= 64 {
        // |x| < 2^63 <= 2^(n-1): the value is strictly inside (-1/2, 1/2) except x = i64::MIN at
        // n = 64, exactly -1/2, which rounds to the even 0.
        return 0;
    }
    let n = n as u32;
    let floor = x >> n;
    let rem = x - (floor << n); // in [0, 2^n)
    let half = 1_i64 << (n - 1);
    if rem > half || (rem == half && floor & 1 == 1) {
        floor + 1
    } else {
        floor
    }
}

/// Clamps a wide sum to the symmetric accumulator range `±(2^31 - 1)`.
pub fn saturate_acc(v: i64) -> i32 {
    v.clamp(-ACC_MAX, ACC_MAX) as i32
}

/// Residual addition of two fixed-point operands: the operand with the smaller FL is left-shifted to
/// the larger FL (exact), the sum is formed in 64 bits and clamped to `±(2^31 - 1)`. Returns the sum
/// and its FL. Left shifts never lose bits; only the final clamp saturates.
///
/// Edge: `(1, fl 0) + (1, fl 3)` is `(9, fl 3)`; `(i32::MAX, 0) + (1, 0)` saturates to `i32::MAX`.
pub fn align_add(a: i32, fl_a: i32, b: i32, fl_b: i32) -> (i32, i32) {
    let fl = fl_a.max(fl_b);
    let wa = shift_round_half_even(i64::from(a), fl_a - fl);
    let wb = shift_round_half_even(i64::from(b), fl_b - fl);
    (saturate_acc(wa.saturating_add(wb)), fl)
}

/// The right shift of global average pooling over `n` values: `ceil(log2 n)`, so that the pooled
/// value `sum / 2^shift` is the mean where `n` is a power of two and otherwise the mean scaled by
/// `n / 2^shift` in `(1/2, 1)`, which stays within the codes' format. At ImageNet's 7x7 maps it is
/// the official code's `round(log2 49) = 6`.
///
/// Edge: 1 value shifts by 0, 16 by 4, 49 by 6, 9 by 4.
pub fn pooling_shift(n: usize) -> u32 {
    n.next_power_of_two().trailing_zeros()
}

/// Global average pooling of codes as a shift: the sum is formed exactly in 64 bits and shifted right
/// by [`pooling_shift`]`(n)`, rounding half to even; the result stays in the codes' format (same FL), so
/// average pooling costs no multiplier. Where `n` is no power of two the result is the mean times
/// `n / 2^shift`: the exporter folds the inverse ratio into the next layer's weights (the official
/// `pool_fusing` folds 64/49 into the last layer before its weights are quantized).
///
/// Edge: `[1, 2]` averages to 2 (1.5 to even); `[1, 0]` to 0; `[255; 16]` to 255; `[4, 4, 4]` to
/// 3 (12 / 4); no values is an error.
pub fn average_by_shift(codes: &[i32]) -> Result<i32> {
    if codes.is_empty() {
        return Err(arg_err!("average pooling over no values"));
    }
    let sum: i64 = codes.iter().map(|&c| i64::from(c)).sum();
    Ok(shift_round_half_even(sum, pooling_shift(codes.len()) as i32) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn format_bounds() {
        assert!(FixedFormat::new(7, true).is_ok());
        assert!(FixedFormat::new(8, true).is_err());
        assert!(FixedFormat::new(8, false).is_ok());
        assert!(FixedFormat::new(9, false).is_err());
        let s = FixedFormat::new(3, true).unwrap();
        assert_eq!((s.lo(), s.hi()), (-127, 127));
        let u = FixedFormat::new(3, false).unwrap();
        assert_eq!((u.lo(), u.hi()), (0, 255));
        assert_eq!(s.saturate(-128), -127, "-128 is never produced");
        assert_eq!(u.saturate(-1), 0, "the unsigned clamp is the ReLU");
        assert_eq!(u.saturate(256), 255);
    }

    #[test]
    fn half_to_even_vectors() {
        let v = |x: i64| shift_round_half_even(x, 1);
        assert_eq!(
            [1, 3, 5, -1, -3, -5, 2, -2].map(v),
            [0, 2, 2, 0, -2, -2, 1, -1]
        );
        // n = 2: 0.25 -> 0, 0.75 -> 1, 2.5 -> 2, -2.5 -> -2, -0.75 -> -1
        let w = |x: i64| shift_round_half_even(x, 2);
        assert_eq!([1, 3, 10, -10, -3].map(w), [0, 1, 2, -2, -1]);
        assert_eq!(shift_round_half_even(5, 0), 5);
        assert_eq!(shift_round_half_even(-5, -3), -40);
        assert_eq!(shift_round_half_even(i64::MAX, -1), i64::MAX);
        assert_eq!(shift_round_half_even(i64::MIN, -70), i64::MIN);
        assert_eq!(shift_round_half_even(i64::MAX, 64), 0);
        assert_eq!(shift_round_half_even(i64::MIN, 63), -1);
    }

    #[test]
    fn requantize_edges() {
        let f0u = FixedFormat::new(0, false).unwrap();
        let f0s = FixedFormat::new(0, true).unwrap();
        assert_eq!(f0s.requantize(3, 1), 2);
        assert_eq!(f0s.requantize(-3, 1), -2);
        assert_eq!(f0s.requantize(1, 1), 0);
        assert_eq!(f0u.requantize(300, 0), 255);
        assert_eq!(f0u.requantize(-300, 0), 0);
        assert_eq!(f0s.requantize(-300, 0), -127);
        // negative shift: accumulator FL 2 requantized to FL 5 is a left shift by 3
        let f5s = FixedFormat::new(5, true).unwrap();
        assert_eq!(f5s.requantize(3, 2), 24);
        assert_eq!(f5s.requantize(i32::MAX, 0), 127);
    }

    #[test]
    fn align_add_edges() {
        assert_eq!(align_add(1, 0, 1, 3), (9, 3));
        assert_eq!(align_add(1, 3, 1, 0), (9, 3));
        assert_eq!(align_add(i32::MAX, 0, 1, 0), (i32::MAX, 0));
        assert_eq!(align_add(-i32::MAX, 0, -5, 0), (-i32::MAX, 0));
        assert_eq!(
            align_add(1 << 30, 0, 0, 4).0,
            i32::MAX,
            "left shift saturates"
        );
    }

    #[test]
    fn average_edges() {
        assert_eq!(average_by_shift(&[1, 2]).unwrap(), 2);
        assert_eq!(average_by_shift(&[1, 0]).unwrap(), 0);
        assert_eq!(average_by_shift(&[255; 16]).unwrap(), 255);
        assert_eq!(average_by_shift(&[-127, -126]).unwrap(), -126);
        assert_eq!(average_by_shift(&[4, 4, 4]).unwrap(), 3);
        assert_eq!(
            average_by_shift(&[255; 49]).unwrap(),
            195,
            "255 * 49 / 64 = 195.2"
        );
        assert!(average_by_shift(&[]).is_err());
        let shifts: Vec<u32> = [1, 2, 9, 16, 49].map(pooling_shift).to_vec();
        assert_eq!(shifts, [0, 1, 4, 4, 6]);
    }

    /// Wide-integer reference: round half to even of the exact rational `x / 2^n`.
    fn reference(x: i64, n: u32) -> i64 {
        let d = 1_i128 << n;
        let x = i128::from(x);
        let q = x.div_euclid(d);
        let r = x.rem_euclid(d);
        let twice = 2 * r;
        let up = twice > d || (twice == d && q % 2 != 0);
        (q + i128::from(up)) as i64
    }

    proptest! {
        #[test]
        fn right_shift_matches_wide_reference(x in any::<i32>(), n in 1u32..40) {
            prop_assert_eq!(shift_round_half_even(i64::from(x), n as i32), reference(i64::from(x), n));
        }

        #[test]
        fn requantize_never_leaves_the_code_range(acc in any::<i32>(), fl_acc in 0i32..16, fl in 0u8..=8, signed: bool) {
            let fl = fl.min(FixedFormat::fl_max(signed));
            let f = FixedFormat::new(fl, signed).unwrap();
            let q = f.requantize(acc, fl_acc);
            prop_assert!(q >= f.lo() && q <= f.hi());
        }

        #[test]
        fn align_add_is_exact_without_saturation(a in -1_000_000i32..1_000_000, b in -1_000_000i32..1_000_000, fa in 0i32..8, fb in 0i32..8) {
            let (s, fl) = align_add(a, fa, b, fb);
            let exact = (i128::from(a) << (fl - fa)) + (i128::from(b) << (fl - fb));
            prop_assert_eq!(i128::from(s), exact);
        }
    }
}
