//! `Posit<n,es>` (Gustafson 2017), the paper's second non-adaptive baseline (dossier §3.4).
//!
//! Code: `n`-bit two's complement; `0` is zero, `100..0` is NaR (never produced here). A positive
//! code reads, after the sign bit, a regime run of `r` equal bits (`k = r - 1` for ones, `-r` for
//! zeros) ended by the opposite bit or the word's end, then up to `es` exponent bits (missing bits
//! are zeros), then fraction bits `f`: `value = 2^(k * 2^es + exp) * (1 + f)`.
//!
//! Rounding is to the nearest representable value, ties to the even code, with saturation at
//! `maxpos`. Below `minpos` the standard saturates to `minpos` (a posit never rounds a non-zero
//! value to zero); the paper's Fig. 4 errors suggest small weights went to zero instead, so the
//! dossier's default treats zero as one more grid point ([`PositUnderflow::ToZero`]).
//!
//! Positive codes increase with their value, so the encoder searches a sorted table of the
//! `2^(n-1) - 1` positive values (at most 32767 for 16 bits).

use super::{check_bits, pow2, sign_bit};
use crate::error::{Result, arg_err};

/// What happens to magnitudes below `minpos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositUnderflow {
    /// Round to the nearer of 0 and `minpos` (tie to 0, the even code). Dossier default.
    #[default]
    ToZero,
    /// Posit standard: every non-zero magnitude becomes at least `minpos`.
    Saturate,
}

/// `Posit<n,es>` with its underflow option.
#[derive(Debug, Clone, PartialEq)]
pub struct Posit {
    bits: u32,
    es: u32,
    /// Underflow rule (default [`PositUnderflow::ToZero`]).
    pub underflow: PositUnderflow,
    /// `positive[c - 1]` is the value of the positive code `c`.
    positive: Vec<f64>,
}

impl Posit {
    /// `Posit<bits, es>`: needs `3 <= bits <= 16` and `es <= 4`.
    pub fn new(bits: u32, es: u32) -> Result<Self> {
        check_bits("Posit", bits, 3)?;
        if es > 4 {
            return Err(arg_err!("Posit<{bits},es> supports es <= 4, not {es}"));
        }
        let positive = (1..sign_bit(bits))
            .map(|c| decode_positive(bits, es, c))
            .collect();
        Ok(Posit {
            bits,
            es,
            underflow: PositUnderflow::default(),
            positive,
        })
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    pub fn es(&self) -> u32 {
        self.es
    }

    /// `useed^(n-2)` with `useed = 2^(2^es)`.
    pub fn maxpos(&self) -> f64 {
        self.positive[self.positive.len() - 1]
    }

    /// `useed^-(n-2)`.
    pub fn minpos(&self) -> f64 {
        self.positive[0]
    }

    /// Nearest posit (ties to the even code), saturating at `maxpos`, underflow per the option.
    pub fn encode(&self, x: f64) -> u32 {
        let a = x.abs();
        let table = &self.positive;
        // First positive value >= a; codes are index + 1.
        let above = table.partition_point(|&v| v < a);
        let magnitude = if a == 0.0 {
            0
        } else if above == table.len() {
            table.len() as u32
        } else if above == 0 {
            let minpos = table[0];
            // A tie between 0 (code 0) and minpos (code 1) goes to the even code, 0.
            if self.underflow == PositUnderflow::ToZero && a <= minpos / 2.0 {
                0
            } else {
                1
            }
        } else {
            let (lo, hi) = (table[above - 1], table[above]);
            let (lo_code, hi_code) = (above as u32, above as u32 + 1);
            let (d_lo, d_hi) = (a - lo, hi - a);
            if d_lo < d_hi || (d_lo == d_hi && lo_code % 2 == 0) {
                lo_code
            } else {
                hi_code
            }
        };
        if x.is_sign_negative() {
            magnitude.wrapping_neg() & ((sign_bit(self.bits) << 1) - 1)
        } else {
            magnitude
        }
    }

    /// The value of a code; `None` for NaR (`100..0`).
    pub fn decode(&self, code: u32) -> Option<f64> {
        let sign = sign_bit(self.bits);
        if code == 0 {
            Some(0.0)
        } else if code == sign {
            None
        } else if code & sign != 0 {
            let magnitude = code.wrapping_neg() & ((sign << 1) - 1);
            Some(-self.positive[magnitude as usize - 1])
        } else {
            Some(self.positive[code as usize - 1])
        }
    }
}

/// Value of the positive code `code` (`0 < code < 2^(n-1)`), read field by field.
fn decode_positive(bits: u32, es: u32, code: u32) -> f64 {
    let body_len = bits - 1;
    let first = (code >> (body_len - 1)) & 1;
    // Length of the regime run, at most the whole body.
    let mut run = 0;
    while run < body_len && (code >> (body_len - 1 - run)) & 1 == first {
        run += 1;
    }
    let k = if first == 1 {
        run as i32 - 1
    } else {
        -(run as i32)
    };
    // Bits left after the run and its terminating bit (if there is room for one).
    let rest_len = body_len.saturating_sub(run + 1);
    let rest = code & ((1u32 << rest_len) - 1);
    let exp_len = rest_len.min(es);
    let frac_len = rest_len - exp_len;
    let exp = (rest >> frac_len) << (es - exp_len);
    let frac = rest & ((1u32 << frac_len) - 1);
    pow2(k * (1 << es) + exp as i32) * (1.0 + f64::from(frac) * pow2(-(frac_len as i32)))
}
