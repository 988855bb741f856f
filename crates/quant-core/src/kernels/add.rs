//! Elementwise addition of two uint8 tensors with different scales (residual blocks), the
//! TFLite 8-bit ADD recipe (dossier §4, paper App. A.2).
#![deny(clippy::float_arithmetic)]

use serde::{Deserialize, Serialize};

use crate::error::{Result, arg_err, shape_err};
use crate::fixedpoint::{QuantizedMultiplier, RoundingMode};
use crate::ops::OpCounts;

/// Integer parameters of a quantized add, built offline by `AddParams::from_scales`
/// (in [`crate::multiplier`]).
///
/// Per element: `x_i = (q_i - Z_i) * 2^left_shift`, `y_i = MBQM(x_i, m_i)` with
/// `m_i = S_i / (2 max(S_1, S_2))`, `out = clamp(MBQM(y_1 + y_2, m_out) + Z_out)` with
/// `m_out = 2 max(S_1, S_2) / (2^left_shift S_out)`. The left shift (20 for 8-bit) keeps the
/// rescaled inputs far above one LSB so their sum loses no precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddParams {
    /// Zero point of the first input.
    pub input1_zero_point: i32,
    /// Zero point of the second input.
    pub input2_zero_point: i32,
    /// `m_1`.
    pub input1_multiplier: QuantizedMultiplier,
    /// `m_2`.
    pub input2_multiplier: QuantizedMultiplier,
    /// `m_out`.
    pub output_multiplier: QuantizedMultiplier,
    /// Pre-scaling shift (20 in TFLite's uint8/int8 ADD); at most 22 so `255 * 2^shift` fits.
    pub left_shift: u32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Lowest output code.
    pub act_min: u8,
    /// Highest output code.
    pub act_max: u8,
}

impl AddParams {
    /// What adding `elements` element pairs performs ([`crate::ops`]): per element the two
    /// pre-scaling left shifts and the three multipliers.
    pub fn op_counts(&self, elements: u64, rounding: RoundingMode) -> OpCounts {
        let mut per = OpCounts {
            shifts: 2 * u64::from(self.left_shift > 0),
            ..OpCounts::default()
        };
        for m in [
            self.input1_multiplier,
            self.input2_multiplier,
            self.output_multiplier,
        ] {
            per += m.op_counts(rounding);
        }
        per.times(elements)
    }

    /// Checks the integer parameters.
    pub fn validate(&self) -> Result<()> {
        for z in [
            self.input1_zero_point,
            self.input2_zero_point,
            self.output_zero_point,
        ] {
            if !(0..=255).contains(&z) {
                return Err(arg_err!("add zero point {z} outside [0, 255]"));
            }
        }
        if self.left_shift > 22 {
            return Err(arg_err!(
                "add left shift {} above 22 would overflow int32",
                self.left_shift
            ));
        }
        if self.act_min > self.act_max {
            return Err(arg_err!(
                "activation clamp [{}, {}] is empty",
                self.act_min,
                self.act_max
            ));
        }
        Ok(())
    }

    /// Adds one pair of codes.
    #[inline]
    pub fn add_one(&self, a: u8, b: u8, mode: RoundingMode) -> u8 {
        let x1 = (i32::from(a) - self.input1_zero_point) << self.left_shift;
        let x2 = (i32::from(b) - self.input2_zero_point) << self.left_shift;
        let y = self
            .input1_multiplier
            .apply(x1, mode)
            .wrapping_add(self.input2_multiplier.apply(x2, mode));
        let v = self
            .output_multiplier
            .apply(y, mode)
            .saturating_add(self.output_zero_point);
        v.clamp(i32::from(self.act_min), i32::from(self.act_max)) as u8
    }
}

/// Elementwise quantized add of two equally shaped uint8 tensors into `out`.
pub fn add(
    a: &[u8],
    b: &[u8],
    params: &AddParams,
    mode: RoundingMode,
    out: &mut [u8],
) -> Result<()> {
    params.validate()?;
    if a.len() != b.len() || a.len() != out.len() {
        return Err(shape_err!(
            "add of {} and {} elements into {}",
            a.len(),
            b.len(),
            out.len()
        ));
    }
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = params.add_one(x, y, mode);
    }
    Ok(())
}
