//! Integer fixed-point primitives of gemmlowp/TFLite, bit-exact (dossier §5).
//!
//! Each function's doc comment is its specification: the exact rounding rule, the saturation
//! case and the test vector that pins each edge. Everything here is integer-only; the float
//! constructor of [`QuantizedMultiplier`] lives in [`crate::multiplier`] (offline code).
#![deny(clippy::float_arithmetic)]

use serde::{Deserialize, Serialize};

use crate::ops::OpCounts;

/// Which form of `MultiplyByQuantizedMultiplier` an engine uses. One per model, never mixed
/// (mixing them is the LiteRT #7441 bug, dossier §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RoundingMode {
    /// Paper-era gemmlowp output stage: [`saturating_rounding_doubling_high_mul`] then
    /// [`rounding_divide_by_pot`]. Two roundings; may be 1 LSB off the nearest integer.
    #[default]
    Double,
    /// `TFLITE_SINGLE_ROUNDING`: one 64-bit multiply, one rounding (ties toward +inf).
    Single,
}

/// SaturatingRoundingDoublingHighMul (gemmlowp), ARM `SQRDMULH`: `floor((a*b + 2^30) / 2^31)`
/// computed exactly in 64 bits, i.e. `a*b/2^31` rounded to nearest with **ties toward +inf**.
///
/// The single overflow, `a = b = i32::MIN` (exact result `+2^31`), saturates to `i32::MAX`.
/// Vectors: `(1, 2^30) -> 1`, `(-1, 2^30) -> 0`, `(3, 2^30) -> 2`, `(-3, 2^30) -> -1`,
/// `(MIN, MAX) -> -2147483647`, `(MIN, MIN) -> MAX`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    // |a*b| < 2^62 here, so adding 2^30 cannot overflow; `>>` on i64 is a floor division.
    ((i64::from(a) * i64::from(b) + (1i64 << 30)) >> 31) as i32
}

/// RoundingDivideByPOT (gemmlowp): `x / 2^exponent` rounded to nearest, **ties away from zero**.
///
/// `mask = 2^e - 1`, `rem = x & mask`, `threshold = (mask >> 1) + (x < 0)`,
/// `result = (x >> e) + (rem > threshold)`. gemmlowp asserts `e <= 31`; here larger exponents
/// are defined by the same formula in 64 bits (the result is then 0, or -1 for `i32::MIN` at
/// `e = 32`), so the function is total and never panics.
/// Vectors: `(12,3) -> 2`, `(-12,3) -> -2`, `(4,3) -> 1`, `(-4,3) -> -1`, `(5,1) -> 3`,
/// `(-5,1) -> -3`, `(x,0) -> x`, `(MIN,31) -> -1`, `(MAX,31) -> 1`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let e = exponent.min(40);
    let x = i64::from(x);
    let mask = (1i64 << e) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    ((x >> e) + i64::from(remainder > threshold)) as i32
}

/// A real multiplier in TFLite's encoding, `M ~= multiplier * 2^(shift - 31)`:
/// `multiplier` is the Q31 mantissa (`|multiplier| in [2^30, 2^31)`, or 0 for `M = 0`) and a
/// positive `shift` is a left shift. The paper's `n` is `-shift`.
///
/// Built offline by [`QuantizedMultiplier::from_real`]; applied with [`Self::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantizedMultiplier {
    /// Q31 fixed-point mantissa `M0_q31`.
    pub multiplier: i32,
    /// Power-of-two exponent, in `[-62, 30]`.
    pub shift: i32,
}

/// The smallest and largest exponents [`QuantizedMultiplier::new`] accepts: `shift <= 30` keeps
/// the double-rounding left shift meaningful for int32 inputs; `shift >= -62` keeps the
/// single-rounding shift `31 - shift` below 64 bits.
pub const SHIFT_RANGE: (i32, i32) = (-62, 30);

impl QuantizedMultiplier {
    /// What one application performs ([`crate::ops`]): one 32-bit multiplication, a left shift
    /// when the exponent is positive, and the rounding right shift (double rounding: by the
    /// exponent, when negative; single rounding: always, by `31 - shift`).
    pub fn op_counts(&self, rounding: RoundingMode) -> OpCounts {
        let right = match rounding {
            RoundingMode::Double => self.shift < 0,
            RoundingMode::Single => true,
        };
        OpCounts {
            mul_32x32: 1,
            shifts: u64::from(self.shift > 0) + u64::from(right),
            ..OpCounts::default()
        }
    }

    /// Multiplier that maps every input to 0.
    pub const ZERO: QuantizedMultiplier = QuantizedMultiplier {
        multiplier: 0,
        shift: 0,
    };

    /// Checked constructor from raw integers (for example a multiplier read from a TFLite
    /// model); `None` if `shift` is outside [`SHIFT_RANGE`].
    pub fn new(multiplier: i32, shift: i32) -> Option<Self> {
        (SHIFT_RANGE.0..=SHIFT_RANGE.1)
            .contains(&shift)
            .then_some(QuantizedMultiplier { multiplier, shift })
    }

    /// Applies the multiplier to `x` in the given [`RoundingMode`].
    #[inline]
    pub fn apply(self, x: i32, mode: RoundingMode) -> i32 {
        match mode {
            RoundingMode::Double => {
                multiply_by_quantized_multiplier_double(x, self.multiplier, self.shift)
            }
            RoundingMode::Single => {
                multiply_by_quantized_multiplier_single(x, self.multiplier, self.shift)
            }
        }
    }
}

/// MultiplyByQuantizedMultiplier, paper-era **double rounding** (gemmlowp
/// `OutputStageQuantizeDownInt32ByFixedPoint`, TFLite default):
/// `RDBPOT(SRDHM(x * 2^max(shift,0), m), max(-shift,0))`.
///
/// The left shift is a plain int32 multiply that **wraps** on overflow, as the reference code
/// does on two's-complement hardware; callers must keep `x * 2^shift` in range (the engine does
/// for every multiplier below 1). Differs from the single-rounding form by at most 1 LSB.
/// Vectors: `(7984, 1583594044, -9) -> 12` (TF #25087), `(1, 2^30, -1) -> 1`.
#[inline]
pub fn multiply_by_quantized_multiplier_double(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.clamp(0, 31) as u32;
    let right = (-shift).max(0).unsigned_abs();
    let shifted = x.wrapping_mul(1i32.wrapping_shl(left));
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, multiplier),
        right,
    )
}

/// MultiplyByQuantizedMultiplier, **single rounding** (`TFLITE_SINGLE_ROUNDING`):
/// `t = 31 - shift`, `(x * m + 2^(t-1)) >> t` in 64 bits: one rounding, **ties toward +inf**.
///
/// TFLite requires `m >= 0` and `-31 <= shift <= 30`; the formula here is exact for any
/// `shift` in [`SHIFT_RANGE`] and any sign of `m`. A result beyond int32 (only possible for
/// multipliers above 1 with large inputs) **saturates** instead of TFLite's debug assertion.
/// Vectors: `(7984, 1583594044, -9) -> 11`, `(1, 2^30, -1) -> 0`, `(-1, 2^30, -1) -> 0`.
#[inline]
pub fn multiply_by_quantized_multiplier_single(x: i32, multiplier: i32, shift: i32) -> i32 {
    let total = (31 - shift).clamp(1, 93) as u32;
    let product = i128::from(x) * i128::from(multiplier);
    let rounded = (product + (1i128 << (total - 1))) >> total;
    rounded.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// Rounded integer division used by the average pool (TFLite computes `(sum + count/2) / count`
/// on its non-negative sums): `x / d` rounded to nearest, **ties away from zero**, for `d > 0`.
/// Vectors: `(5, 2) -> 3`, `(-5, 2) -> -3`, `(4, 3) -> 1`, `(-4, 3) -> -1`, `(x, 1) -> x`.
/// `d <= 0` returns 0 (documented total behaviour; callers never pass it).
#[inline]
pub fn rounding_divide(x: i32, d: i32) -> i32 {
    if d <= 0 {
        return 0;
    }
    let (x, d) = (i64::from(x), i64::from(d));
    let half = d / 2;
    // Truncating division of |x| + d/2 rounds half away from zero in magnitude; odd divisors
    // have no ties. |x| + d/2 < 2^32, so the result fits in i32 for every d >= 1.
    let q = if x >= 0 {
        (x + half) / d
    } else {
        (x - half) / d
    };
    q as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i32 = i32::MIN;
    const MAX: i32 = i32::MAX;

    #[test]
    fn srdhm_vectors() {
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(MIN, MAX), -2147483647);
        assert_eq!(saturating_rounding_doubling_high_mul(MIN, MIN), MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(MAX, MAX), 2147483646);
        assert_eq!(saturating_rounding_doubling_high_mul(MIN, MIN + 1), MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(0, MIN), 0);
    }

    #[test]
    fn rdbpot_vectors() {
        let cases = [
            ((12, 3), 2),
            ((-12, 3), -2),
            ((4, 3), 1),
            ((-4, 3), -1),
            ((5, 1), 3),
            ((-5, 1), -3),
            ((77, 0), 77),
            ((MIN, 0), MIN),
            ((MIN, 31), -1),
            ((MAX, 31), 1),
            ((MIN, 32), -1),
            ((MAX, 32), 0),
            ((-1, 1), -1),
            ((1, 1), 1),
            ((-3, 2), -1),
        ];
        for ((x, e), want) in cases {
            assert_eq!(rounding_divide_by_pot(x, e), want, "RDBPOT({x}, {e})");
        }
        assert_eq!(rounding_divide_by_pot(MIN, 100), 0);
    }

    #[test]
    fn mbqm_vectors() {
        // TF issue #25087: exact 11.4991.
        assert_eq!(
            multiply_by_quantized_multiplier_double(7984, 1583594044, -9),
            12
        );
        assert_eq!(
            multiply_by_quantized_multiplier_single(7984, 1583594044, -9),
            11
        );
        // 0.25: double rounds 0.5 up, single gives 0.
        assert_eq!(multiply_by_quantized_multiplier_double(1, 1 << 30, -1), 1);
        assert_eq!(multiply_by_quantized_multiplier_single(1, 1 << 30, -1), 0);
        // Zero multiplier.
        assert_eq!(multiply_by_quantized_multiplier_double(123456, 0, 0), 0);
        assert_eq!(multiply_by_quantized_multiplier_single(123456, 0, 0), 0);
        // Positive shift: 3 * 0.75 * 4 = 9.
        assert_eq!(multiply_by_quantized_multiplier_double(3, 1610612736, 2), 9);
        assert_eq!(multiply_by_quantized_multiplier_single(3, 1610612736, 2), 9);
        // Negative multiplier (double rounding keeps the sign): 10 * -0.3 = -3.
        assert_eq!(
            multiply_by_quantized_multiplier_double(10, -1288490189, -1),
            -3
        );
        // Single rounding saturates instead of wrapping.
        assert_eq!(multiply_by_quantized_multiplier_single(MAX, MAX, 30), MAX);
        assert_eq!(multiply_by_quantized_multiplier_single(MIN, MAX, 30), MIN);
    }

    #[test]
    fn rounding_divide_vectors() {
        assert_eq!(rounding_divide(5, 2), 3);
        assert_eq!(rounding_divide(-5, 2), -3);
        assert_eq!(rounding_divide(4, 3), 1);
        assert_eq!(rounding_divide(-4, 3), -1);
        assert_eq!(rounding_divide(7, 1), 7);
        assert_eq!(rounding_divide(9, 6), 2);
        assert_eq!(rounding_divide(8, 6), 1);
        assert_eq!(rounding_divide(MIN, 1), MIN);
        assert_eq!(rounding_divide(3, 0), 0);
    }

    #[test]
    fn constructor_bounds() {
        assert!(QuantizedMultiplier::new(1 << 30, 31).is_none());
        assert!(QuantizedMultiplier::new(1 << 30, -63).is_none());
        assert_eq!(QuantizedMultiplier::new(5, -62).unwrap().shift, -62);
    }

    /// Wide-integer reference of SRDHM: round-half-up of a*b/2^31 in i128, then saturate.
    fn srdhm_ref(a: i32, b: i32) -> i32 {
        let p = i128::from(a) * i128::from(b) * 2;
        let q = (p + (1i128 << 31)).div_euclid(1i128 << 32);
        q.clamp(i128::from(MIN), i128::from(MAX)) as i32
    }

    /// Reference RDBPOT: nearest, ties away from zero, by exact rational comparison in i128.
    fn rdbpot_ref(x: i32, e: u32) -> i32 {
        let d = 1i128 << e;
        let x = i128::from(x);
        let q = x.div_euclid(d);
        let r = x.rem_euclid(d); // x = q d + r, 0 <= r < d
        let up = if 2 * r > d {
            true
        } else if 2 * r == d {
            x > 0
        } else {
            false
        };
        (q + i128::from(up)) as i32
    }

    fn edge_i32() -> impl Strategy<Value = i32> {
        prop_oneof![
            any::<i32>(),
            Just(MIN),
            Just(MIN + 1),
            Just(MAX),
            Just(0),
            Just(1),
            Just(-1),
            Just(1 << 30),
            Just(-(1 << 30)),
            -1024i32..1024,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn srdhm_matches_wide_reference(a in edge_i32(), b in edge_i32()) {
            prop_assert_eq!(saturating_rounding_doubling_high_mul(a, b), srdhm_ref(a, b));
        }

        #[test]
        fn rdbpot_matches_wide_reference(x in edge_i32(), e in 0u32..=31) {
            prop_assert_eq!(rounding_divide_by_pot(x, e), rdbpot_ref(x, e));
        }

        #[test]
        fn single_rounding_is_round_half_up_of_exact(x in edge_i32(), m in 0i32..=MAX, shift in -40i32..=0) {
            let t = 31 - shift;
            let exact_num = i128::from(x) * i128::from(m);
            let want = (exact_num + (1i128 << (t - 1))).div_euclid(1i128 << t);
            prop_assert_eq!(i128::from(multiply_by_quantized_multiplier_single(x, m, shift)), want);
        }

        #[test]
        fn double_and_single_differ_by_at_most_one(x in -(1i32 << 20)..(1 << 20), m in (1i32 << 30)..=MAX, shift in -20i32..=0) {
            let d = multiply_by_quantized_multiplier_double(x, m, shift);
            let s = multiply_by_quantized_multiplier_single(x, m, shift);
            prop_assert!((d - s).abs() <= 1, "double {} single {}", d, s);
        }

        #[test]
        fn double_matches_composition_reference(x in -(1i32 << 24)..(1 << 24), m in any::<i32>(), shift in -31i32..=6) {
            let left = shift.max(0) as u32;
            let right = (-shift).max(0) as u32;
            let want = rdbpot_ref(srdhm_ref(x << left, m), right);
            prop_assert_eq!(multiply_by_quantized_multiplier_double(x, m, shift), want);
        }

        #[test]
        fn rounding_divide_matches_reference(x in edge_i32(), d in 1i32..10_000) {
            let (xi, di) = (i128::from(x), i128::from(d));
            let q = xi.div_euclid(di);
            let r = xi.rem_euclid(di);
            let up = 2 * r > di || (2 * r == di && xi > 0);
            prop_assert_eq!(i128::from(rounding_divide(x, d)), q + i128::from(up));
        }
    }
}
