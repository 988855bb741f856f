//! `AdaptivFloat<n,e>`: Algorithm 1 of Tambe et al., DAC 2020 (dossier §2).
//!
//! Code layout: sign bit, `e`-bit exponent field `E`, `m = n - 1 - e` mantissa bits `M`. With the
//! tensor's `exp_bias`, a code means `(-1)^s * 2^(E + exp_bias) * (1 + M / 2^m)`, except that
//! `E = M = 0` means zero (the lowest magnitude is given up for it). No denormals, no Inf, no NaN:
//! every code is a value. The magnitude code `E * 2^m + M` increases with the value, which is what
//! makes rounding across a binade boundary (mantissa rounding up to 2.0) need no special case.

use super::{Rounding, check_bits, floor_log2, ldexp, pow2, sign_bit};
use crate::error::{Result, arg_err};

/// Where a magnitude exactly at `value_min / 2` goes.
///
/// The paper says "below value_min/2 -> 0, else -> value_min" without fixing the tie; the 2020
/// reference code uses strict comparisons on both sides, so the tie falls through to ordinary
/// rounding and produces a value that is not on the grid (dossier §7.3). The default sends it up to
/// `value_min`, matching `value_min/2 <= A < value_min -> value_min` as the dossier writes step 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroTie {
    #[default]
    ToMin,
    ToZero,
}

/// `AdaptivFloat<n,e>` with its rounding options.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptivFloat {
    bits: u32,
    exp_bits: u32,
    /// Mantissa rounding rule (default ties-to-even, as numpy/torch `round` in the reference code).
    pub rounding: Rounding,
    /// Tie rule at `value_min / 2` (default: up to `value_min`).
    pub zero_tie: ZeroTie,
}

impl AdaptivFloat {
    /// `AdaptivFloat<bits, exp_bits>`: needs `2 <= bits <= 16` and `1 <= exp_bits <= min(bits - 1, 8)`
    /// (zero mantissa bits is allowed: at `<4,3>` it is a signed power-of-two quantizer).
    pub fn new(bits: u32, exp_bits: u32) -> Result<Self> {
        check_bits("AdaptivFloat", bits, 2)?;
        if exp_bits == 0 || exp_bits > (bits - 1).min(8) {
            return Err(arg_err!(
                "AdaptivFloat<{bits},e> needs 1 <= e <= {} exponent bits, not {exp_bits}",
                (bits - 1).min(8)
            ));
        }
        Ok(AdaptivFloat {
            bits,
            exp_bits,
            rounding: Rounding::default(),
            zero_tie: ZeroTie::default(),
        })
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    pub fn exp_bits(&self) -> u32 {
        self.exp_bits
    }

    /// `m = n - 1 - e`.
    pub fn mantissa_bits(&self) -> u32 {
        self.bits - 1 - self.exp_bits
    }

    /// `exp_bias = floor(log2 max|W|) - (2^e - 1)`, so the top binade holds `max|W|`. An all-zero
    /// tensor has no binade; it gets the bias of `max|W| = 1` (`exp_max = 0`), and its output is zero
    /// whatever the bias.
    pub fn exp_bias_for(&self, max_abs: f64) -> i32 {
        let exp_max = if max_abs > 0.0 {
            floor_log2(max_abs)
        } else {
            0
        };
        exp_max - self.top_exponent_field()
    }

    /// Smallest non-zero magnitude, `2^exp_bias * (1 + 2^-m)`.
    pub fn value_min(&self, exp_bias: i32) -> f64 {
        ldexp(1.0 + pow2(-(self.mantissa_bits() as i32)), exp_bias)
    }

    /// Largest magnitude, `2^exp_max * (2 - 2^-m)` with `exp_max = exp_bias + 2^e - 1`.
    pub fn value_max(&self, exp_bias: i32) -> f64 {
        ldexp(
            2.0 - pow2(-(self.mantissa_bits() as i32)),
            exp_bias + self.top_exponent_field(),
        )
    }

    fn top_exponent_field(&self) -> i32 {
        (1i32 << self.exp_bits) - 1
    }

    fn max_magnitude_code(&self) -> u32 {
        sign_bit(self.bits) - 1
    }

    /// Algorithm 1 for one finite value: zero below `value_min/2`, `value_min` up to `value_min`,
    /// saturation at `value_max`, otherwise the mantissa rounded to `m` bits.
    pub fn encode(&self, exp_bias: i32, x: f64) -> u32 {
        let sign = if x.is_sign_negative() {
            sign_bit(self.bits)
        } else {
            0
        };
        let a = x.abs();
        let vmin = self.value_min(exp_bias);
        let half = vmin / 2.0;
        // Zero first: near the bottom of f64's range value_min itself can flush to 0.
        let magnitude = if a == 0.0 || a < half || (a == half && self.zero_tie == ZeroTie::ToZero) {
            0
        } else if a < vmin {
            // The code of value_min is 1 for every m (E = 0, M = 1; or E = 1, M = 0 when m = 0).
            1
        } else if a >= self.value_max(exp_bias) {
            self.max_magnitude_code()
        } else {
            let m = self.mantissa_bits() as i32;
            let exp = floor_log2(a);
            // a * 2^(m - exp) lies in [2^m, 2^(m+1)); rounding may reach 2^(m+1), which is the next
            // binade's first code, so `E * 2^m + (q - 2^m)` stays right without a carry branch.
            let q = self.rounding.round(ldexp(a, m - exp)) as u32;
            (((exp - exp_bias) as u32) << m) + q - (1 << m)
        };
        sign | magnitude
    }

    /// The value of an `n`-bit code; both `0` and the sign bit alone mean zero (`+0`, `-0`).
    pub fn decode(&self, exp_bias: i32, code: u32) -> f64 {
        let m = self.mantissa_bits();
        let magnitude = code & self.max_magnitude_code();
        let value = if magnitude == 0 {
            0.0
        } else {
            let e_field = (magnitude >> m) as i32;
            let mant = magnitude & ((1 << m) - 1);
            ldexp(
                1.0 + f64::from(mant) * pow2(-(m as i32)),
                e_field + exp_bias,
            )
        };
        if code & sign_bit(self.bits) != 0 {
            -value
        } else {
            value
        }
    }
}
