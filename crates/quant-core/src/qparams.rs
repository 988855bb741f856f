//! Affine quantization parameters, `r = S (q - Z)` (dossier §2), chosen offline in float.
//!
//! This module is the offline, float side: it picks scales and zero points from observed ranges
//! and converts float tensors to codes. Everything that runs at inference lives in the
//! integer-only modules ([`crate::fixedpoint`], [`crate::kernels`], [`crate::engine`]).
//!
//! Rounding is always [`round_half_away_from_zero`] (see [`crate::rounding`]).

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result, arg_err, shape_err};
use crate::rounding::round_half_away_from_zero;

/// An inclusive integer code range `[qmin, qmax]` (for example `[0, 255]` for uint8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QRange {
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
}

impl QRange {
    /// uint8, `[0, 255]` (activations in the paper).
    pub const U8: QRange = QRange { qmin: 0, qmax: 255 };
    /// uint8 narrow, `[1, 255]` (the paper's weights: never code 0, which is int8 -128).
    pub const U8_NARROW: QRange = QRange { qmin: 1, qmax: 255 };
    /// int8, `[-128, 127]` (TFLite int8 activations).
    pub const I8: QRange = QRange {
        qmin: -128,
        qmax: 127,
    };
    /// int8 narrow, `[-127, 127]` (TFLite int8 weights; never -128).
    pub const I8_NARROW: QRange = QRange {
        qmin: -127,
        qmax: 127,
    };

    /// A custom range; errors unless `qmin < qmax` and both fit in 16 bits (wider codes would
    /// break the int32 accumulator headroom the kernels rely on).
    pub fn new(qmin: i32, qmax: i32) -> Result<Self> {
        if qmin >= qmax || qmin < i32::from(i16::MIN) || qmax > i32::from(u16::MAX) {
            return Err(arg_err!(
                "code range [{qmin}, {qmax}] must have qmin < qmax within 16 bits"
            ));
        }
        Ok(QRange { qmin, qmax })
    }

    /// Unsigned `bits`-bit range `[0, 2^bits - 1]`, or `[1, 2^bits - 1]` when `narrow`.
    /// `bits` must be in `2..=8`: the engine stores codes in bytes.
    pub fn unsigned(bits: u32, narrow: bool) -> Result<Self> {
        check_bits(bits)?;
        let qmax = (1i32 << bits) - 1;
        Ok(QRange {
            qmin: i32::from(narrow),
            qmax,
        })
    }

    /// Signed `bits`-bit range `[-2^(bits-1), 2^(bits-1) - 1]`, or symmetric
    /// `[-(2^(bits-1) - 1), 2^(bits-1) - 1]` when `narrow`. `bits` must be in `2..=8`.
    pub fn signed(bits: u32, narrow: bool) -> Result<Self> {
        check_bits(bits)?;
        let qmax = (1i32 << (bits - 1)) - 1;
        let qmin = if narrow { -qmax } else { -qmax - 1 };
        Ok(QRange { qmin, qmax })
    }

    /// Number of levels, `qmax - qmin + 1`.
    pub fn levels(&self) -> u32 {
        (self.qmax - self.qmin + 1).unsigned_abs()
    }

    /// Whether `q` is a code of this range.
    pub fn contains(&self, q: i32) -> bool {
        (self.qmin..=self.qmax).contains(&q)
    }
}

fn check_bits(bits: u32) -> Result<()> {
    if (2..=8).contains(&bits) {
        Ok(())
    } else {
        Err(arg_err!(
            "bit width {bits} is not supported (must be 2..=8)"
        ))
    }
}

fn finite(x: f64, what: &'static str) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(QuantError::NonFinite { what })
    }
}

/// Per-tensor quantization parameters: scale `S > 0`, zero point `Z` (a code of `range` that
/// represents real 0 exactly), and the code range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    /// Scale `S` (real value of one code step).
    pub scale: f64,
    /// Zero point `Z`, inside `range`.
    pub zero_point: i32,
    /// Code range.
    pub range: QRange,
}

impl QParams {
    /// Checked constructor: `scale` finite and positive, `zero_point` inside `range`.
    pub fn new(scale: f64, zero_point: i32, range: QRange) -> Result<Self> {
        finite(scale, "scale")?;
        if scale <= 0.0 {
            return Err(arg_err!("scale {scale} must be positive"));
        }
        if !range.contains(zero_point) {
            return Err(arg_err!(
                "zero point {zero_point} outside code range [{}, {}]",
                range.qmin,
                range.qmax
            ));
        }
        Ok(QParams {
            scale,
            zero_point,
            range,
        })
    }

    /// Chooses `(S, Z)` from an observed real range `[min, max]` with the zero-point nudge of
    /// dossier §2.2 (TFLite `NudgeQuantizationRange`, gemmlowp `ChooseQuantizationParams`):
    ///
    /// 1. the range is widened to contain 0: `a = min(min, 0)`, `b = max(max, 0)`;
    /// 2. `S = (b - a) / (qmax - qmin)`; a degenerate range (`a == b == 0`) gets `S = 1`, which
    ///    represents the all-zero tensor exactly;
    /// 3. `z0 = qmin - a / S`, `Z = clamp(round(z0), qmin, qmax)` with
    ///    [`round_half_away_from_zero`];
    /// 4. **S is not recomputed**: the representable window slides by at most `S/2` so that 0.0 is
    ///    exactly the code `Z` (zero padding must be exact, paper §2.1).
    ///
    /// Errors on NaN/infinite bounds or `min > max`.
    pub fn choose(min: f64, max: f64, range: QRange) -> Result<Self> {
        let min = finite(min, "range min")?;
        let max = finite(max, "range max")?;
        if min > max {
            return Err(arg_err!("range min {min} is greater than max {max}"));
        }
        let a = min.min(0.0);
        let b = max.max(0.0);
        let steps = f64::from(range.qmax - range.qmin);
        let scale = if b > a { (b - a) / steps } else { 1.0 };
        if !(scale.is_finite() && scale > 0.0) {
            return Err(arg_err!(
                "range [{min}, {max}] gives an unusable scale {scale}"
            ));
        }
        let z0 = f64::from(range.qmin) - a / scale;
        let zero_point = if z0 < f64::from(range.qmin) {
            range.qmin
        } else if z0 > f64::from(range.qmax) {
            range.qmax
        } else {
            round_half_away_from_zero(z0) as i32
        };
        QParams::new(scale, zero_point, range)
    }

    /// Symmetric parameters (TFLite int8 weights, dossier §8): `Z = 0`, `S = max|v| / qmax`,
    /// so the per-inference `Z_W * sum(x)` term of the GEMM vanishes. `range` must contain 0 and
    /// have `qmax > 0` (use [`QRange::I8_NARROW`] to never produce -128). An all-zero tensor
    /// gets `S = 1`. Errors on NaN/infinite `max_abs` or a range without 0.
    pub fn symmetric(max_abs: f64, range: QRange) -> Result<Self> {
        let m = finite(max_abs, "range max")?.abs();
        if !range.contains(0) || range.qmax <= 0 {
            return Err(arg_err!(
                "symmetric quantization needs a range containing 0, got [{}, {}]",
                range.qmin,
                range.qmax
            ));
        }
        let scale = if m > 0.0 {
            m / f64::from(range.qmax)
        } else {
            1.0
        };
        QParams::new(scale, 0, range)
    }

    /// The nudged real range `[(qmin - Z) S, (qmax - Z) S]` actually represented.
    pub fn nudged_range(&self) -> (f64, f64) {
        (
            f64::from(self.range.qmin - self.zero_point) * self.scale,
            f64::from(self.range.qmax - self.zero_point) * self.scale,
        )
    }

    /// Quantizes one real: `q = clamp(round(r / S) + Z, qmin, qmax)` (TFLite integer form,
    /// dossier §2.2 step 6). Errors on NaN; infinities saturate to `qmin`/`qmax`.
    pub fn quantize(&self, r: f64) -> Result<i32> {
        if r.is_nan() {
            return Err(QuantError::NonFinite {
                what: "value to quantize",
            });
        }
        let v = round_half_away_from_zero(r / self.scale) + f64::from(self.zero_point);
        Ok(v.clamp(f64::from(self.range.qmin), f64::from(self.range.qmax)) as i32)
    }

    /// Real value of a code: `S (q - Z)`.
    pub fn dequantize(&self, q: i32) -> f64 {
        self.scale * f64::from(q - self.zero_point)
    }

    /// Fake quantization `S (quantize(r) - Z)`: the float the integer engine will see for `r`.
    pub fn fake_quant(&self, r: f64) -> Result<f64> {
        Ok(self.dequantize(self.quantize(r)?))
    }

    /// Quantizes a float slice to uint8 codes; errors if the range is not within `[0, 255]` or
    /// any value is NaN.
    pub fn quantize_u8(&self, values: &[f32]) -> Result<Vec<u8>> {
        if self.range.qmin < 0 || self.range.qmax > 255 {
            return Err(arg_err!(
                "code range [{}, {}] does not fit uint8",
                self.range.qmin,
                self.range.qmax
            ));
        }
        values
            .iter()
            .map(|&v| Ok(self.quantize(f64::from(v))? as u8))
            .collect()
    }

    /// Quantizes a float slice to int8 codes; errors if the range is not within `[-128, 127]`
    /// or any value is NaN.
    pub fn quantize_i8(&self, values: &[f32]) -> Result<Vec<i8>> {
        if self.range.qmin < -128 || self.range.qmax > 127 {
            return Err(arg_err!(
                "code range [{}, {}] does not fit int8",
                self.range.qmin,
                self.range.qmax
            ));
        }
        values
            .iter()
            .map(|&v| Ok(self.quantize(f64::from(v))? as i8))
            .collect()
    }

    /// The same reals on int8 codes: `q_i8 = q_u8 - 128`, `Z_i8 = Z_u8 - 128` (dossier §2.1).
    pub fn shifted(&self, offset: i32) -> Self {
        QParams {
            scale: self.scale,
            zero_point: self.zero_point + offset,
            range: QRange {
                qmin: self.range.qmin + offset,
                qmax: self.range.qmax + offset,
            },
        }
    }
}

/// Per-channel parameters: one `(S, Z)` per output channel, sharing one code range (TFLite's
/// per-axis weights, dossier §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerChannelQParams {
    /// One parameter set per channel.
    pub channels: Vec<QParams>,
}

impl PerChannelQParams {
    /// Symmetric per-channel parameters (`Z = 0`, `S_c = max|w_c| / qmax`) for a last-axis
    /// channel tensor: the TFLite int8 per-axis weight scheme.
    pub fn symmetric_last_axis(values: &[f32], channels: usize, range: QRange) -> Result<Self> {
        if channels == 0 || !values.len().is_multiple_of(channels) || values.is_empty() {
            return Err(shape_err!(
                "{} values cannot be split into {channels} channels",
                values.len()
            ));
        }
        let mut m = vec![0f64; channels];
        for (i, &v) in values.iter().enumerate() {
            let v = finite(f64::from(v), "weight")?;
            m[i % channels] = m[i % channels].max(v.abs());
        }
        let channels = m
            .iter()
            .map(|&a| QParams::symmetric(a, range))
            .collect::<Result<_>>()?;
        Ok(PerChannelQParams { channels })
    }

    /// Chooses per-channel parameters for a tensor whose **last** axis is the channel axis
    /// (`values[i]` belongs to channel `i % channels`; the engine's weight layouts put output
    /// channels last). Each channel uses [`QParams::choose`] on its own min/max.
    /// Errors on NaN weights, `channels == 0` or a length that is not a multiple of `channels`.
    pub fn choose_last_axis(values: &[f32], channels: usize, range: QRange) -> Result<Self> {
        if channels == 0 || !values.len().is_multiple_of(channels) || values.is_empty() {
            return Err(shape_err!(
                "{} values cannot be split into {channels} channels",
                values.len()
            ));
        }
        let mut lo = vec![f64::INFINITY; channels];
        let mut hi = vec![f64::NEG_INFINITY; channels];
        for (i, &v) in values.iter().enumerate() {
            let v = finite(f64::from(v), "weight")?;
            let c = i % channels;
            lo[c] = lo[c].min(v);
            hi[c] = hi[c].max(v);
        }
        let channels = lo
            .iter()
            .zip(&hi)
            .map(|(&a, &b)| QParams::choose(a, b, range))
            .collect::<Result<_>>()?;
        Ok(PerChannelQParams { channels })
    }

    /// Per-tensor parameters repeated for `channels` channels (so one code path serves both).
    pub fn per_tensor(params: QParams, channels: usize) -> Self {
        PerChannelQParams {
            channels: vec![params; channels],
        }
    }

    /// Quantizes a last-axis-channel tensor to int8 codes.
    pub fn quantize_i8(&self, values: &[f32]) -> Result<Vec<i8>> {
        let n = self.channels.len();
        if n == 0 || !values.len().is_multiple_of(n) {
            return Err(shape_err!(
                "{} values cannot be split into {n} channels",
                values.len()
            ));
        }
        if self
            .channels
            .iter()
            .any(|p| p.range.qmin < -128 || p.range.qmax > 127)
        {
            return Err(arg_err!("per-channel code range does not fit int8"));
        }
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Ok(self.channels[i % n].quantize(f64::from(v))? as i8))
            .collect()
    }
}

/// Quantizes a float bias to int32 with scale `S_in * S_w[c]` and zero point 0 (paper eq. 11):
/// `q = round(b / (S_in S_w[c]))`. `weight_scales` has one entry per channel (or one for all).
/// Errors on NaN biases or a result outside int32 (such a bias means broken scales).
pub fn quantize_bias(bias: &[f32], input_scale: f64, weight_scales: &[f64]) -> Result<Vec<i32>> {
    if weight_scales.len() != 1 && weight_scales.len() != bias.len() {
        return Err(shape_err!(
            "{} weight scales for {} biases",
            weight_scales.len(),
            bias.len()
        ));
    }
    bias.iter()
        .enumerate()
        .map(|(c, &b)| {
            let b = finite(f64::from(b), "bias")?;
            let s = input_scale * weight_scales[if weight_scales.len() == 1 { 0 } else { c }];
            if !(s.is_finite() && s > 0.0) {
                return Err(arg_err!("bias scale {s} must be positive and finite"));
            }
            let q = round_half_away_from_zero(b / s);
            if q < f64::from(i32::MIN) || q > f64::from(i32::MAX) {
                return Err(arg_err!("bias {b} overflows int32 at scale {s}"));
            }
            Ok(q as i32)
        })
        .collect()
}

/// The fused activation of a layer, applied as an integer clamp on output codes (dossier §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FusedActivation {
    /// No activation: clamp to the code range only.
    #[default]
    None,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
    /// `min(max(-1, x), 1)` (TFLite `RELU_N1_TO_1`).
    ReluN1To1,
}

impl FusedActivation {
    /// The code clamp `[act_min, act_max]` for an output with parameters `out`, as TFLite's
    /// `CalculateActivationRangeQuantized`: each real bound `b` becomes `Z + round(b / S)`
    /// (half away from zero), intersected with the code range.
    /// Example: output range [-1, 7] on uint8 (`S = 8/255`, `Z = 32`) with ReLU6 gives `[32, 223]`.
    pub fn clamp_range(self, out: &QParams) -> (i32, i32) {
        let q = |r: f64| f64::from(out.zero_point) + round_half_away_from_zero(r / out.scale);
        let (lo, hi) = match self {
            FusedActivation::None => (f64::NEG_INFINITY, f64::INFINITY),
            FusedActivation::Relu => (q(0.0), f64::INFINITY),
            FusedActivation::Relu6 => (q(0.0), q(6.0)),
            FusedActivation::ReluN1To1 => (q(-1.0), q(1.0)),
        };
        let (qmin, qmax) = (f64::from(out.range.qmin), f64::from(out.range.qmax));
        (lo.clamp(qmin, qmax) as i32, hi.clamp(qmin, qmax) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_clamps() {
        let out = QParams::new(8.0 / 255.0, 32, QRange::U8).unwrap();
        assert_eq!(FusedActivation::Relu6.clamp_range(&out), (32, 223));
        assert_eq!(FusedActivation::Relu.clamp_range(&out), (32, 255));
        assert_eq!(FusedActivation::None.clamp_range(&out), (0, 255));
        assert_eq!(FusedActivation::ReluN1To1.clamp_range(&out), (0, 64));
        let learned = QParams::choose(0.0, 6.0, QRange::U8).unwrap();
        assert_eq!(
            FusedActivation::Relu6.clamp_range(&learned),
            (0, 255),
            "subsumed by saturation"
        );
    }

    #[test]
    fn symmetric_params() {
        let p = QParams::symmetric(-2.54, QRange::I8_NARROW).unwrap();
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 0.02).abs() < 1e-12);
        assert!(QParams::symmetric(1.0, QRange::U8_NARROW).is_err());
        assert!(QParams::symmetric(f64::NAN, QRange::I8).is_err());
        let w = [1.0, -0.5, -2.54, 0.2];
        let pc = PerChannelQParams::symmetric_last_axis(&w, 2, QRange::I8_NARROW).unwrap();
        assert!((pc.channels[0].scale - 0.02).abs() < 1e-9);
        assert!((pc.channels[1].scale - 0.5 / 127.0).abs() < 1e-12);
        assert_eq!(pc.quantize_i8(&w).unwrap(), vec![50, -127, -127, 51]);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// Worked examples of dossier §2.2.
    #[test]
    fn dossier_nudge_examples() {
        let p = QParams::choose(0.0, 6.0, QRange::U8).unwrap();
        assert!(close(p.scale, 6.0 / 255.0) && p.zero_point == 0);
        let (a, b) = p.nudged_range();
        assert!(close(a, 0.0) && close(b, 6.0));

        let p = QParams::choose(-0.3, 5.7, QRange::U8).unwrap();
        assert_eq!(p.zero_point, 13);
        let (a, b) = p.nudged_range();
        assert!(close(a, -0.305882) && close(b, 5.694118), "{a} {b}");

        let p = QParams::choose(-1.0, 1.0, QRange::U8).unwrap();
        assert_eq!(
            p.zero_point, 128,
            "127.5 is a tie and rounds away from zero"
        );
        let (a, b) = p.nudged_range();
        assert!(close(a, -1.003922) && close(b, 0.996078));

        let p = QParams::choose(-0.5, 0.3, QRange::U8_NARROW).unwrap();
        assert!(close(p.scale, 0.00314961) && p.zero_point == 160);
        let (a, b) = p.nudged_range();
        assert!(close(a, -0.500787) && close(b, 0.299213));

        let p = QParams::choose(-0.5, 0.3, QRange::unsigned(4, true).unwrap()).unwrap();
        assert!(close(p.scale, 0.0571429) && p.zero_point == 10);
        let (a, b) = p.nudged_range();
        assert!(close(a, -0.514286) && close(b, 0.285714));
    }

    #[test]
    fn zero_is_exact_and_scale_not_recomputed() {
        for (lo, hi) in [
            (-0.3, 5.7),
            (-1.0, 1.0),
            (0.2, 3.0),
            (-7.0, -1.0),
            (-0.01, 100.0),
        ] {
            let p = QParams::choose(lo, hi, QRange::U8).unwrap();
            assert_eq!(p.dequantize(p.zero_point), 0.0);
            assert_eq!(p.quantize(0.0).unwrap(), p.zero_point);
            let a: f64 = f64::min(lo, 0.0);
            let b: f64 = f64::max(hi, 0.0);
            assert_eq!(p.scale, (b - a) / 255.0);
        }
        // Range entirely positive or negative is widened to include 0.
        assert_eq!(QParams::choose(2.0, 3.0, QRange::U8).unwrap().zero_point, 0);
        assert_eq!(
            QParams::choose(-3.0, -2.0, QRange::U8).unwrap().zero_point,
            255
        );
        // Degenerate all-zero tensor: S = 1 and z0 = qmin.
        let p = QParams::choose(0.0, 0.0, QRange::I8).unwrap();
        assert_eq!((p.scale, p.zero_point), (1.0, -128));
        assert_eq!(p.quantize(0.0).unwrap(), -128);
    }

    #[test]
    fn narrow_weight_range_never_hits_minus_128() {
        let r = QRange::U8_NARROW;
        let p = QParams::choose(-1.0, 0.1, r).unwrap();
        assert_eq!(
            p.quantize(-1000.0).unwrap(),
            1,
            "code 0 (= int8 -128) is never produced"
        );
        let s = QRange::I8_NARROW;
        let p = QParams::choose(-2.0, 2.0, s).unwrap();
        assert_eq!(p.quantize(-1e9).unwrap(), -127);
        assert_eq!(p.quantize(f64::NEG_INFINITY).unwrap(), -127);
        assert_eq!(p.quantize_i8(&[-5.0, 5.0]).unwrap(), vec![-127, 127]);
    }

    #[test]
    fn quantize_rounds_ties_away_from_zero() {
        let p = QParams::new(1.0, 10, QRange::U8).unwrap();
        assert_eq!(
            p.quantize(-2.5).unwrap(),
            7,
            "-2.5 -> -3 (FakeQuant's half-up would give -2)"
        );
        assert_eq!(p.quantize(2.5).unwrap(), 13);
        assert_eq!(p.fake_quant(2.4).unwrap(), 2.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(QParams::choose(f64::NAN, 1.0, QRange::U8).is_err());
        assert!(QParams::choose(1.0, -1.0, QRange::U8).is_err());
        assert!(QParams::choose(0.0, f64::INFINITY, QRange::U8).is_err());
        assert!(QParams::new(0.0, 0, QRange::U8).is_err());
        assert!(QParams::new(1.0, 256, QRange::U8).is_err());
        assert!(QRange::unsigned(9, false).is_err());
        assert!(QRange::signed(1, false).is_err());
        assert!(QRange::new(3, 3).is_err());
        let p = QParams::choose(-1.0, 1.0, QRange::U8).unwrap();
        assert!(p.quantize(f64::NAN).is_err());
        assert!(
            p.quantize_i8(&[0.0]).is_err(),
            "uint8 range into int8 storage"
        );
        assert!(
            PerChannelQParams::choose_last_axis(&[1.0, f32::NAN], 2, QRange::I8_NARROW).is_err()
        );
        assert!(
            PerChannelQParams::choose_last_axis(&[1.0, 2.0, 3.0], 2, QRange::I8_NARROW).is_err()
        );
        assert!(quantize_bias(&[1.0, 2.0], 0.1, &[0.1, 0.2, 0.3]).is_err());
        assert!(quantize_bias(&[1e30], 1e-3, &[1e-3]).is_err());
    }

    #[test]
    fn bit_width_ranges() {
        assert_eq!(QRange::unsigned(8, false).unwrap(), QRange::U8);
        assert_eq!(QRange::unsigned(8, true).unwrap(), QRange::U8_NARROW);
        assert_eq!(QRange::signed(8, false).unwrap(), QRange::I8);
        assert_eq!(QRange::signed(8, true).unwrap(), QRange::I8_NARROW);
        assert_eq!(
            QRange::signed(2, true).unwrap(),
            QRange { qmin: -1, qmax: 1 }
        );
        assert_eq!(QRange::unsigned(4, false).unwrap().levels(), 16);
    }

    #[test]
    fn per_channel_and_bias() {
        let w = [-1.0f32, 0.5, 0.25, -0.125];
        let pc = PerChannelQParams::choose_last_axis(&w, 2, QRange::I8_NARROW).unwrap();
        assert_eq!(pc.channels.len(), 2);
        assert!(close(pc.channels[0].scale, 1.25 / 254.0));
        assert!(close(pc.channels[1].scale, 0.625 / 254.0));
        let q = pc.quantize_i8(&w).unwrap();
        assert_eq!(q.len(), 4);
        for (i, &v) in w.iter().enumerate() {
            let p = pc.channels[i % 2];
            assert!((p.dequantize(i32::from(q[i])) - f64::from(v)).abs() <= p.scale / 2.0 + 1e-12);
        }
        let b = quantize_bias(&[0.5, -0.5], 0.5, &[0.01, 0.02]).unwrap();
        assert_eq!(b, vec![100, -50]);
        assert_eq!(
            quantize_bias(&[0.0125], 0.5, &[0.01]).unwrap(),
            vec![3],
            "2.5 -> 3"
        );
    }

    #[test]
    fn int8_shift_represents_same_reals() {
        let p = QParams::choose(-0.3, 5.7, QRange::U8).unwrap();
        let s = p.shifted(-128);
        assert_eq!(s.range, QRange::I8);
        for q in 0..=255 {
            assert_eq!(p.dequantize(q), s.dequantize(q - 128));
        }
    }
}
