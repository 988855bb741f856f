//! Offline choice of the fractional length (dossier §3.2, §4) and float -> code conversion.
//!
//! Float is allowed here: these functions run on statistics of a tensor while training or when a
//! model is exported, never inside integer inference.

use super::format::FixedFormat;
use super::stats;

/// Constant of the standard-deviation rule for signed tensors in the official code (`metric2fraclen`).
pub const CODE_C_SIGNED: f64 = 40.0;
/// Constant of the standard-deviation rule for unsigned (ReLU) tensors in the official code.
pub const CODE_C_UNSIGNED: f64 = 70.0;
/// The code's (unused) mean-absolute-value alternative, same constant for both signednesses.
pub const CODE_C_MAE: f64 = 30.0;
/// The code's (unused) RMS alternative, signed.
pub const CODE_C_RMS_SIGNED: f64 = 40.0;
/// The code's (unused) RMS alternative, unsigned.
pub const CODE_C_RMS_UNSIGNED: f64 = 50.0;

/// How the fractional length of a tensor is chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FlRule {
    /// `FL = clamp(floor(log2(c / std)), 0, FLmax)` with the official constants 40 / 70.
    StdCode,
    /// The same rule with the exact analytic threshold constants c* (≈ 39.22 / 72.12) of
    /// [`stats::threshold_constant`]: the FL that minimises the expected error of Gaussian data.
    StdExact,
    /// Argmin over all FL of the mean squared quantization error of the tensor itself (the official
    /// `format_grid_search`, used by the tiny fine-tuning configs).
    GridSearch,
    /// Classic dynamic fixed point: the largest FL whose range still holds `max|x|`.
    MaxBased,
}

impl FlRule {
    /// The FL of `values` in a format of the given signedness.
    pub fn choose(self, values: &[f32], signed: bool) -> u8 {
        match self {
            FlRule::StdCode => fl_from_std(unbiased_std(values), signed, code_constant(signed)),
            FlRule::StdExact => fl_from_std(
                unbiased_std(values),
                signed,
                stats::threshold_constant(signed),
            ),
            FlRule::GridSearch => fl_grid_search(values, signed),
            FlRule::MaxBased => fl_from_max(max_abs(values), signed),
        }
    }
}

/// The official constant: 40 (signed) or 70 (unsigned).
pub fn code_constant(signed: bool) -> f64 {
    if signed {
        CODE_C_SIGNED
    } else {
        CODE_C_UNSIGNED
    }
}

/// `clamp(floor(log2(c / std)), 0, FLmax)`.
///
/// A zero standard deviation (a constant or empty tensor) gives `FLmax`, as `log2(c / 0) = +inf` does in
/// the official code; a NaN standard deviation also gives `FLmax` (the finest format is the safe
/// choice for a tensor with no spread information). The threshold form: FL drops from `FL` to `FL - 1`
/// exactly when `std` exceeds `c / 2^FL`, e.g. with c = 40 std = 5.0 gives FL 3 and std = 5.0001 FL 2.
pub fn fl_from_std(std: f64, signed: bool, c: f64) -> u8 {
    let max = FixedFormat::fl_max(signed);
    if std.is_nan() || std <= 0.0 {
        return max;
    }
    let fl = (c / std).log2().floor();
    fl.clamp(0.0, f64::from(max)) as u8
}

/// Dynamic fixed point from the largest magnitude: the largest FL with `max_abs <= 2^(IL)` where the
/// integer length is `IL = 7 - FL` (signed) or `8 - FL` (unsigned), i.e.
/// `FL = clamp(WL' - ceil(log2 max_abs), 0, FLmax)`. Zero gives `FLmax`.
pub fn fl_from_max(max_abs: f64, signed: bool) -> u8 {
    let max = FixedFormat::fl_max(signed);
    if max_abs.is_nan() || max_abs <= 0.0 {
        return max;
    }
    let fl = f64::from(max) - max_abs.log2().ceil();
    fl.clamp(0.0, f64::from(max)) as u8
}

/// The FL minimising `sum (x - Q_FL(x))^2` over the tensor. Ties go to the smallest FL (the first
/// minimum, as `argmin` does in the official code).
pub fn fl_grid_search(values: &[f32], signed: bool) -> u8 {
    let mut best = (f64::INFINITY, 0_u8);
    for fl in 0..=FixedFormat::fl_max(signed) {
        let format = FixedFormat { fl, signed };
        let sse: f64 = values
            .iter()
            .map(|&x| {
                let e = f64::from(x) - dequantize(quantize(f64::from(x), format), format);
                e * e
            })
            .sum();
        if sse < best.0 {
            best = (sse, fl);
        }
    }
    best.1
}

/// `saturate(round_half_even(x * 2^FL))`; NaN maps to 0.
pub fn quantize(x: f64, format: FixedFormat) -> i32 {
    if x.is_nan() {
        return 0;
    }
    let scaled = (x * f64::from(1_u32 << format.fl)).round_ties_even();
    scaled.clamp(f64::from(format.lo()), f64::from(format.hi())) as i32
}

/// `q * 2^-FL` (exact in f64).
pub fn dequantize(q: i32, format: FixedFormat) -> f64 {
    f64::from(q) / f64::from(1_u32 << format.fl)
}

/// Unbiased (n - 1) standard deviation, as `torch.std` computes it; 0 for fewer than two values.
pub fn unbiased_std(values: &[f32]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let ss: f64 = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// Largest magnitude (0 for an empty slice).
pub fn max_abs(values: &[f32]) -> f64 {
    values
        .iter()
        .fold(0.0_f64, |m, &v| m.max(f64::from(v).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_rule_thresholds_and_clamps() {
        assert_eq!(fl_from_std(5.0, true, 40.0), 3);
        assert_eq!(fl_from_std(5.0001, true, 40.0), 2);
        assert_eq!(fl_from_std(1e-9, true, 40.0), 7);
        assert_eq!(fl_from_std(1e-9, false, 70.0), 8);
        assert_eq!(fl_from_std(1e9, false, 70.0), 0);
        assert_eq!(fl_from_std(0.0, false, 70.0), 8);
        assert_eq!(fl_from_std(f64::NAN, true, 40.0), 7);
        // unsigned threshold 70/2^3 = 8.75
        assert_eq!(fl_from_std(8.75, false, 70.0), 3);
        assert_eq!(fl_from_std(8.76, false, 70.0), 2);
    }

    #[test]
    fn max_rule() {
        assert_eq!(fl_from_max(1.0, true), 7);
        assert_eq!(fl_from_max(1.5, true), 6);
        assert_eq!(fl_from_max(200.0, true), 0);
        assert_eq!(fl_from_max(0.9, false), 8);
        assert_eq!(fl_from_max(3.0, false), 6);
    }

    #[test]
    fn quantize_rounds_half_even_and_saturates() {
        let f = FixedFormat::new(1, true).unwrap();
        assert_eq!(quantize(0.25, f), 0);
        assert_eq!(quantize(0.75, f), 2);
        assert_eq!(quantize(-0.75, f), -2);
        assert_eq!(quantize(1000.0, f), 127);
        assert_eq!(quantize(-1000.0, f), -127);
        assert_eq!(quantize(f64::NAN, f), 0);
        let u = FixedFormat::new(8, false).unwrap();
        assert_eq!(quantize(-0.3, u), 0);
        assert_eq!(quantize(0.999, u), 255);
        assert_eq!(dequantize(3, u), 3.0 / 256.0);
    }

    #[test]
    fn grid_search_prefers_the_format_that_fits() {
        // values up to 3.3: FL 5 holds 3.97; FL 6 would saturate at 1.98
        let v: Vec<f32> = (0..100).map(|i| i as f32 * 0.033).collect();
        assert_eq!(fl_grid_search(&v, true), 5);
        assert_eq!(
            fl_grid_search(&[0.0; 4], true),
            0,
            "ties go to the first FL"
        );
    }

    #[test]
    fn rules_agree_on_gaussian_like_data() {
        let v: Vec<f32> = (0..2000)
            .map(|i| ((i as f32) * 0.618).sin() * 0.3)
            .collect();
        let s = unbiased_std(&v);
        assert!((s - 0.3 / 2f64.sqrt()).abs() < 0.01, "{s}");
        assert_eq!(FlRule::StdCode.choose(&v, true), fl_from_std(s, true, 40.0));
        assert_eq!(FlRule::MaxBased.choose(&v, true), 7);
        assert_eq!(unbiased_std(&[1.0]), 0.0);
    }
}
