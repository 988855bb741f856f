//! Offline (float64) conversion of a real rescale factor `M` to a [`QuantizedMultiplier`]
//! (TFLite `QuantizeMultiplier`, dossier §5.4). Float is allowed here: it runs once per layer
//! when a model is built, never at inference.

use crate::error::{QuantError, Result, arg_err};
use crate::fixedpoint::{QuantizedMultiplier, SHIFT_RANGE};
use crate::rounding::round_half_away_from_zero;

/// `frexp`: `m = q * 2^e` with `|q| in [0.5, 1)` for finite nonzero `m` (subnormals included).
fn frexp(m: f64) -> (f64, i32) {
    let (m, bias) = if m.abs() < f64::MIN_POSITIVE {
        (m * 2f64.powi(64), -64)
    } else {
        (m, 0)
    };
    let bits = m.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let e = exp - 1022;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, e + bias)
}

impl QuantizedMultiplier {
    /// TFLite `QuantizeMultiplier` on a float64 `M`:
    ///
    /// 1. `M == 0` gives `(0, 0)`;
    /// 2. `(q, e) = frexp(M)` with `|q| in [0.5, 1)` (the sign is kept: negative multipliers are
    ///    valid in double-rounding mode);
    /// 3. `M0 = round(q * 2^31)`, half away from zero;
    /// 4. if `|M0| == 2^31` (q rounded up to 1.0): `M0 = ±2^30`, `e += 1`;
    /// 5. if `e < -31`: `(0, 0)` (TFLite flushes multipliers below about `2^-32` to zero);
    /// 6. returns `(M0, shift = e)`.
    ///
    /// Errors on NaN/infinite `M` and on `|M| >= 2^30` (shift above 30: no int32 input could be
    /// left-shifted without overflow).
    /// Vectors: `0.75 -> (1610612736, 0)`, `0.9999999999 -> (1073741824, 1)`,
    /// `0.001 -> (1099511628, -9)`, `-0.3 -> (-1288490189, -1)`, `2^-33 -> (0, 0)`.
    pub fn from_real(m: f64) -> Result<Self> {
        if !m.is_finite() {
            return Err(QuantError::NonFinite {
                what: "real multiplier",
            });
        }
        if m == 0.0 {
            return Ok(QuantizedMultiplier::ZERO);
        }
        let (q, mut e) = frexp(m);
        let mut m0 = round_half_away_from_zero(q * 2f64.powi(31)) as i64;
        if m0.abs() == 1i64 << 31 {
            m0 /= 2;
            e += 1;
        }
        if e < -31 {
            return Ok(QuantizedMultiplier::ZERO);
        }
        if e > SHIFT_RANGE.1 {
            return Err(arg_err!(
                "multiplier {m} is too large for int32 requantization (>= 2^30)"
            ));
        }
        Ok(QuantizedMultiplier {
            multiplier: m0 as i32,
            shift: e,
        })
    }

    /// The real value this multiplier encodes, `multiplier * 2^(shift - 31)` (for reports).
    pub fn to_real(self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(self.shift - 31)
    }
}

/// The conv/FC rescale `M = S_in * S_w / S_out` (paper eq. 5) as a [`QuantizedMultiplier`].
pub fn conv_multiplier(
    input_scale: f64,
    weight_scale: f64,
    output_scale: f64,
) -> Result<QuantizedMultiplier> {
    for (v, what) in [
        (input_scale, "input scale"),
        (weight_scale, "weight scale"),
        (output_scale, "output scale"),
    ] {
        if !v.is_finite() {
            return Err(QuantError::NonFinite { what });
        }
        if v <= 0.0 {
            return Err(arg_err!("{what} {v} must be positive"));
        }
    }
    QuantizedMultiplier::from_real(input_scale * weight_scale / output_scale)
}

/// Offline construction of [`crate::kernels::AddParams`] from the float scales (TFLite's 8-bit
/// ADD: `left_shift = 20`, `m_i = S_i / (2 max(S_1, S_2))`, `m_out = 2 max / (2^20 S_out)`).
impl crate::kernels::AddParams {
    /// Builds the integer parameters of `out = in1 + in2` from `(scale, zero_point)` pairs and
    /// the output clamp. Errors on non-positive or non-finite scales.
    pub fn from_scales(
        input1: (f64, i32),
        input2: (f64, i32),
        output: (f64, i32),
        act_min: u8,
        act_max: u8,
    ) -> Result<Self> {
        for s in [input1.0, input2.0, output.0] {
            if !(s.is_finite() && s > 0.0) {
                return Err(arg_err!("add scale {s} must be positive and finite"));
            }
        }
        let left_shift = 20;
        let twice_max = 2.0 * input1.0.max(input2.0);
        let p = crate::kernels::AddParams {
            input1_zero_point: input1.1,
            input2_zero_point: input2.1,
            input1_multiplier: QuantizedMultiplier::from_real(input1.0 / twice_max)?,
            input2_multiplier: QuantizedMultiplier::from_real(input2.0 / twice_max)?,
            output_multiplier: QuantizedMultiplier::from_real(
                twice_max / (f64::from(1u32 << left_shift) * output.0),
            )?,
            left_shift,
            output_zero_point: output.1,
            act_min,
            act_max,
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixedpoint::RoundingMode;
    use proptest::prelude::*;

    #[test]
    fn dossier_vectors() {
        let cases: [(f64, (i32, i32)); 10] = [
            (0.0, (0, 0)),
            (0.5, (1073741824, 0)),
            (0.75, (1610612736, 0)),
            (1.0, (1073741824, 1)),
            (0.9999999999, (1073741824, 1)),
            (3.0, (1610612736, 2)),
            (0.001, (1099511628, -9)),
            (-0.3, (-1288490189, -1)),
            (2f64.powi(-33), (0, 0)),
            (0.8 / 254.0, (1731514374, -8)),
        ];
        for (m, (m0, shift)) in cases {
            let q = QuantizedMultiplier::from_real(m).unwrap();
            assert_eq!((q.multiplier, q.shift), (m0, shift), "M = {m}");
        }
    }

    #[test]
    fn worked_layer_example() {
        // Dossier §4: weights [-0.5, 0.3] narrow, S_in = S_out = 6/255.
        let sw = 0.8 / 254.0;
        let q = conv_multiplier(6.0 / 255.0, sw, 6.0 / 255.0).unwrap();
        assert_eq!((q.multiplier, q.shift), (1731514374, -8));
    }

    #[test]
    fn edges() {
        // Smallest kept exponent (e = -31) vs flushed (e = -32).
        let q = QuantizedMultiplier::from_real(2f64.powi(-32)).unwrap();
        assert_eq!((q.multiplier, q.shift), (1 << 30, -31));
        assert_eq!(
            QuantizedMultiplier::from_real(2f64.powi(-34)).unwrap(),
            QuantizedMultiplier::ZERO
        );
        assert_eq!(
            QuantizedMultiplier::from_real(f64::MIN_POSITIVE / 4.0).unwrap(),
            QuantizedMultiplier::ZERO
        );
        // -1.0 and the negative rounding corner.
        let q = QuantizedMultiplier::from_real(-0.9999999999).unwrap();
        assert_eq!((q.multiplier, q.shift), (-(1 << 30), 1));
        assert!(QuantizedMultiplier::from_real(f64::NAN).is_err());
        assert!(QuantizedMultiplier::from_real(f64::INFINITY).is_err());
        assert!(QuantizedMultiplier::from_real(2f64.powi(31)).is_err());
        assert!(QuantizedMultiplier::from_real(2f64.powi(29)).is_ok());
        assert!(conv_multiplier(0.0, 1.0, 1.0).is_err());
        assert!(conv_multiplier(1.0, f64::NAN, 1.0).is_err());
    }

    proptest! {
        #[test]
        fn mantissa_in_range_and_close(m in 1e-9f64..1e6) {
            let q = QuantizedMultiplier::from_real(m).unwrap();
            prop_assert!(q.multiplier >= 1 << 30, "M0 {} must be >= 2^30", q.multiplier);
            let rel = (q.to_real() - m).abs() / m;
            prop_assert!(rel <= 2f64.powi(-31), "relative error {}", rel);
        }

        #[test]
        fn applied_multiplier_within_one_lsb_of_float(x in -(1i32 << 22)..(1 << 22), m in 1e-6f64..0.999) {
            let q = QuantizedMultiplier::from_real(m).unwrap();
            let exact = f64::from(x) * m;
            for mode in [RoundingMode::Double, RoundingMode::Single] {
                let got = f64::from(q.apply(x, mode));
                prop_assert!((got - exact).abs() <= 1.0, "{:?}: {} vs {}", mode, got, exact);
            }
        }
    }
}
