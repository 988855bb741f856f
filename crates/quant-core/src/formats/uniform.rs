//! Uniform (integer) `Uniform<n>`: symmetric, per tensor, max-abs range, no clipping search
//! (dossier §3.3; the paper cites TensorRT and Jacob et al. without fixing these choices).
//!
//! Codes are `n`-bit two's complement integers `q` in `[-(2^(n-1) - 1), 2^(n-1) - 1]` (the code
//! `-2^(n-1)` is unused so the grid is sign-symmetric). With `k = 2^(n-1) - 1` and the tensor's
//! range `r = max|x|`, `q` is worth `r * (q / k)`. Writing the value as `r * (q / k)` rather than
//! `q * (r / k)` makes `q = ±k` exactly `±r`, so re-quantizing a quantized tensor finds the same
//! range and the same grid (idempotence holds bit for bit in `f64`).

use super::{Rounding, check_bits, sign_bit};
use crate::error::Result;

/// `Uniform<n>` with its rounding option.
#[derive(Debug, Clone, PartialEq)]
pub struct Uniform {
    bits: u32,
    /// Rounding of `x / step` (default ties-to-even).
    pub rounding: Rounding,
}

impl Uniform {
    /// `Uniform<bits>`, `2 <= bits <= 16`.
    pub fn new(bits: u32) -> Result<Self> {
        check_bits("Uniform", bits, 2)?;
        Ok(Uniform {
            bits,
            rounding: Rounding::default(),
        })
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `k = 2^(n-1) - 1`, the largest level.
    pub fn max_level(&self) -> i32 {
        (sign_bit(self.bits) - 1) as i32
    }

    /// Two's complement code of `clamp(round(x * k / r), -k, k)`; a zero range encodes everything as 0.
    pub fn encode(&self, range: f64, x: f64) -> u32 {
        let k = self.max_level();
        let q = if range > 0.0 {
            let kf = f64::from(k);
            self.rounding.round(x / range * kf).clamp(-kf, kf) as i32
        } else {
            0
        };
        (q as u32) & ((sign_bit(self.bits) << 1) - 1)
    }

    /// `r * (q / k)`; `None` for the unused code `-2^(n-1)`.
    pub fn decode(&self, range: f64, code: u32) -> Option<f64> {
        let q = if code & sign_bit(self.bits) != 0 {
            code as i32 - (sign_bit(self.bits) << 1) as i32
        } else {
            code as i32
        };
        let k = self.max_level();
        (q >= -k).then(|| range * (f64::from(q) / f64::from(k)))
    }
}
