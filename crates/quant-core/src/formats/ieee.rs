//! IEEE-like `Float<n,e>`, the paper's non-adaptive float baseline (dossier §3.1).
//!
//! The paper does not define it; the dossier's default follows the authors' group's later
//! simulator: fixed bias `B = 2^(e-1) - 1`, the top exponent code reserved as in IEEE (but no Inf or
//! NaN is ever produced: values saturate), no denormals with magnitudes below the smallest normal
//! flushed (truncated) to zero, round-to-nearest-even on the mantissa. Both the reservation and
//! denormals are options.

use super::{Rounding, check_bits, floor_log2, pow2, sign_bit};
use crate::error::{Result, arg_err};

/// IEEE-like `Float<n,e>` with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct IeeeFloat {
    bits: u32,
    exp_bits: u32,
    /// Whether the exponent code `E = 0` holds denormals `2^(1-B) * M / 2^m` (default `false`:
    /// `|x| < 2^(1-B)` becomes 0 and those codes are unused).
    pub denormals: bool,
    /// Whether the all-ones exponent code is left unused, as IEEE keeps it for Inf/NaN (default `true`).
    pub reserve_top_code: bool,
    /// Mantissa rounding rule (default ties-to-even).
    pub rounding: Rounding,
}

impl IeeeFloat {
    /// `Float<bits, exp_bits>` with the defaults; needs `2 <= bits <= 16`, `2 <= exp_bits <= min(bits - 1, 8)`.
    pub fn new(bits: u32, exp_bits: u32) -> Result<Self> {
        check_bits("Float", bits, 3)?;
        if !(2..=(bits - 1).min(8)).contains(&exp_bits) {
            return Err(arg_err!(
                "Float<{bits},e> needs 2 <= e <= {} exponent bits, not {exp_bits}",
                (bits - 1).min(8)
            ));
        }
        Ok(IeeeFloat {
            bits,
            exp_bits,
            denormals: false,
            reserve_top_code: true,
            rounding: Rounding::default(),
        })
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    pub fn exp_bits(&self) -> u32 {
        self.exp_bits
    }

    fn mantissa_bits(&self) -> i32 {
        (self.bits - 1 - self.exp_bits) as i32
    }

    /// The fixed bias `B = 2^(e-1) - 1`.
    pub fn bias(&self) -> i32 {
        (1 << (self.exp_bits - 1)) - 1
    }

    fn top_exponent_field(&self) -> i32 {
        let all_ones = (1 << self.exp_bits) - 1;
        if self.reserve_top_code {
            all_ones - 1
        } else {
            all_ones
        }
    }

    /// Smallest normal magnitude `2^(1-B)`.
    pub fn min_normal(&self) -> f64 {
        pow2(1 - self.bias())
    }

    /// Largest magnitude `2^(Emax - B) * (2 - 2^-m)`.
    pub fn max_value(&self) -> f64 {
        pow2(self.top_exponent_field() - self.bias()) * (2.0 - pow2(-self.mantissa_bits()))
    }

    /// Encodes a finite value: saturate at the largest value, flush (or denormal-round) below the
    /// smallest normal, otherwise round the mantissa.
    pub fn encode(&self, x: f64) -> u32 {
        let sign = if x.is_sign_negative() {
            sign_bit(self.bits)
        } else {
            0
        };
        let a = x.abs();
        let m = self.mantissa_bits();
        let magnitude = if a >= self.max_value() {
            ((self.top_exponent_field() as u32) << m) | ((1 << m) - 1)
        } else if a < self.min_normal() {
            if self.denormals {
                // Step 2^(1-B-m); rounding up to 2^m lands on the first normal code, which is 2^m.
                self.rounding.round(a * pow2(m - 1 + self.bias())) as u32
            } else {
                0
            }
        } else {
            let exp = floor_log2(a);
            let q = self.rounding.round(a * pow2(m - exp)) as u32;
            (((exp + self.bias()) as u32) << m) + q - (1 << m)
        };
        sign | magnitude
    }

    /// The value of a code; `None` for the reserved top exponent and, without denormals, for
    /// `E = 0, M != 0`. The negative-zero code decodes to `-0`.
    pub fn decode(&self, code: u32) -> Option<f64> {
        let m = self.mantissa_bits();
        let magnitude = code & (sign_bit(self.bits) - 1);
        let e_field = (magnitude >> m) as i32;
        let mant = f64::from(magnitude & ((1 << m) - 1));
        let value = if e_field > self.top_exponent_field() {
            return None;
        } else if e_field == 0 {
            if mant == 0.0 {
                0.0
            } else if self.denormals {
                pow2(1 - self.bias() - m) * mant
            } else {
                return None;
            }
        } else {
            pow2(e_field - self.bias()) * (1.0 + mant * pow2(-m))
        };
        Some(if code & sign_bit(self.bits) != 0 {
            -value
        } else {
            value
        })
    }
}
