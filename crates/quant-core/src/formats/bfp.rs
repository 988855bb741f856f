//! Block floating point `BFP<n>` (dossier §3.2): one shared exponent per block, sign-magnitude
//! integer mantissas.
//!
//! The block is the whole tensor (the paper calls BFP "self-adaptive per layer" and states no block
//! size). The shared exponent `E_s = floor(log2 max|x|)` is stored beside the tensor and not counted
//! in `n`; each element is a sign and an `(n-1)`-bit magnitude `k`, worth `k * 2^(E_s - (n-2))`. That
//! is a symmetric uniform grid whose step is a power of two, up to 2x coarser than max-abs uniform.

use super::{Rounding, check_bits, floor_log2, ldexp, sign_bit};
use crate::error::Result;

/// `BFP<n>` with its rounding option.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockFloat {
    bits: u32,
    /// Rounding of `|x| / step` (default ties-to-even).
    pub rounding: Rounding,
}

impl BlockFloat {
    /// `BFP<bits>`, `2 <= bits <= 16`.
    pub fn new(bits: u32) -> Result<Self> {
        check_bits("BFP", bits, 2)?;
        Ok(BlockFloat {
            bits,
            rounding: Rounding::default(),
        })
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `floor(log2 max|x|)`; an all-zero block gets 0 (its output is zero whatever the exponent).
    pub fn shared_exponent_for(&self, max_abs: f64) -> i32 {
        if max_abs > 0.0 {
            floor_log2(max_abs)
        } else {
            0
        }
    }

    /// Grid step `2^(E_s - (n-2))`: the largest element has its leading one in the top magnitude bit.
    pub fn step(&self, shared_exponent: i32) -> f64 {
        ldexp(1.0, shared_exponent - (self.bits as i32 - 2))
    }

    /// `sign | min(round(|x| / step), 2^(n-1) - 1)`.
    pub fn encode(&self, shared_exponent: i32, x: f64) -> u32 {
        let sign = if x.is_sign_negative() {
            sign_bit(self.bits)
        } else {
            0
        };
        let k_max = sign_bit(self.bits) - 1;
        // `|x| / step` as a power-of-two scaling: near the bottom of f64's range the step itself
        // flushes to zero.
        let scaled = ldexp(x.abs(), (self.bits as i32 - 2) - shared_exponent);
        let k = if scaled >= f64::from(k_max) {
            k_max
        } else {
            self.rounding.round(scaled) as u32
        };
        sign | k.min(k_max)
    }

    /// `(-1)^s * k * step`; the sign bit alone is `-0`.
    pub fn decode(&self, shared_exponent: i32, code: u32) -> f64 {
        let k = code & (sign_bit(self.bits) - 1);
        let value = ldexp(f64::from(k), shared_exponent - (self.bits as i32 - 2));
        if code & sign_bit(self.bits) != 0 {
            -value
        } else {
            value
        }
    }
}
