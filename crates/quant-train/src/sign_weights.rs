//! Weights reduced to their sign and one scale: the binary and ternary schemes that Jacob et al.
//! set their 8-bit integer-only scheme against in Table 4.2.
//!
//! * **Binary** (BWN, Rastegari et al. 2016): `α · sign(w)` with `α = mean |w|`, the scale that
//!   minimises `‖w − α · sign(w)‖²`.
//! * **Ternary** (TWN, Li et al. 2016): weights with `|w| ≤ Δ` become 0, the others `± α`, with the
//!   paper's closed-form approximation `Δ = 0.7 · mean |w|` and `α` = the mean of the `|w|` above `Δ`.
//!
//! [`SignQuantizer`] applies a scheme with one `α` (and one `Δ`) per output channel, BWN's per-filter
//! scale. Per channel is what makes the schemes well defined on the batch-norm-folded weights that
//! quant-train's layers quantize: the sign of `γ w / σ` is `sign(γ)·sign(w)` and its per-channel mean
//! magnitude is `|γ| / σ · mean |w|`, so binarizing the folded weights per channel is binarizing the
//! convolution's own weights with the batch norm applied after, as the papers train; one `α` per
//! layer over folded weights lets the channel with the smallest `σ` set every channel's scale (that
//! diverged within 200 steps here). TWN's paper has one `Δ` and `α` per layer; per channel is its
//! rule on each filter. Training passes gradients straight through to the float master weights, as
//! both papers do. Zero weights binarize to `+α` (a measure-zero case the papers leave open).

use burn::prelude::*;

use crate::fused::{map_values, straight_through};
use crate::quant::Quantizer;

/// TWN's threshold factor: `Δ = 0.7 · mean |w|` (Li et al. 2016, eq. 9).
pub const TERNARY_THRESHOLD: f64 = 0.7;

/// The two sign schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignWeights {
    /// 1 bit: `± α`.
    Binary,
    /// 2 bits (three levels): `± α` or 0.
    Ternary,
}

impl SignWeights {
    /// The values `weights` (one filter, or any set sharing one scale) take under this scheme.
    pub fn quantize(self, weights: &[f32]) -> Vec<f32> {
        match self {
            SignWeights::Binary => {
                let alpha = mean_abs(weights.iter()) as f32;
                weights
                    .iter()
                    .map(|&w| if w < 0.0 { -alpha } else { alpha })
                    .collect()
            }
            SignWeights::Ternary => {
                let delta = TERNARY_THRESHOLD * mean_abs(weights.iter());
                let kept = |w: &&f32| f64::from(w.abs()) > delta;
                let alpha = mean_abs(weights.iter().filter(kept)) as f32;
                weights
                    .iter()
                    .map(|w| if kept(&w) { alpha.copysign(*w) } else { 0.0 })
                    .collect()
            }
        }
    }
}

/// Mean absolute value (0 for no values), summed in f64 so the scale does not depend on the
/// layer size's rounding.
fn mean_abs<'a>(values: impl Iterator<Item = &'a f32>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), w| (s + f64::from(w.abs()), n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// A [`SignWeights`] scheme with one scale per output channel, for a layer of `channels` outputs
/// (its flattened weights hold the channels one after another, output channel slowest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignQuantizer {
    pub scheme: SignWeights,
    pub channels: usize,
}

impl SignQuantizer {
    /// The values `weights` take, filter by filter.
    pub fn quantize(&self, weights: &[f32]) -> Vec<f32> {
        let per = weights.len().div_ceil(self.channels.max(1)).max(1);
        weights
            .chunks(per)
            .flat_map(|filter| self.scheme.quantize(filter))
            .collect()
    }
}

impl Quantizer for SignQuantizer {
    fn label(&self) -> String {
        match self.scheme {
            SignWeights::Binary => "binary (BWN)",
            SignWeights::Ternary => "ternary (TWN)",
        }
        .to_string()
    }

    /// The scheme's values forward, the gradient unchanged backward; the observed range is not
    /// used (the scales come from the weights themselves).
    fn fake_quant(&self, x: Tensor<1>, _range: (f64, f64)) -> Tensor<1> {
        let q = map_values(&x, |values| self.quantize(values));
        straight_through(x, q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_keeps_signs_at_the_mean_magnitude() {
        // mean |w| = (0.5 + 1.5 + 0.25 + 1.75) / 4 = 1.0
        let q = SignWeights::Binary.quantize(&[0.5, -1.5, 0.25, -1.75]);
        assert_eq!(q, vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(SignWeights::Binary.quantize(&[0.0]), vec![0.0]);
    }

    #[test]
    fn ternary_zeroes_below_the_threshold_and_scales_the_rest() {
        // mean |w| = 1.0, Δ = 0.7: 0.5 and -0.25 fall to 0; α = (1.5 + 1.75) / 2 = 1.625
        let q = SignWeights::Ternary.quantize(&[0.5, -1.5, -0.25, 1.75]);
        assert_eq!(q, vec![0.0, -1.625, 0.0, 1.625]);
        // Δ follows the layer's mean: among smaller weights -0.25 survives (mean 0.25, Δ 0.175,
        // α = (0.5 + 0.25) / 2).
        let q = SignWeights::Ternary.quantize(&[0.5, -0.25, 0.125, 0.125]);
        assert_eq!(q, vec![0.375, -0.375, 0.0, 0.0]);
        assert_eq!(SignWeights::Ternary.quantize(&[]), Vec::<f32>::new());
    }

    #[test]
    fn each_channel_has_its_own_scale() {
        // Two filters of two weights: mean |w| 1.0 and 0.25.
        let q = SignQuantizer {
            scheme: SignWeights::Binary,
            channels: 2,
        };
        assert_eq!(
            q.quantize(&[0.5, -1.5, 0.25, -0.25]),
            vec![1.0, -1.0, 0.25, -0.25]
        );
    }

    #[test]
    fn fake_quant_is_the_scheme_forward_and_identity_backward() {
        let device = Device::flex().autodiff();
        let xs = vec![0.5f32, -1.5, -0.25, 1.75];
        for scheme in [SignWeights::Binary, SignWeights::Ternary] {
            let q = SignQuantizer {
                scheme,
                channels: 1,
            };
            let x =
                Tensor::<1>::from_data(TensorData::new(xs.clone(), [4]), &device).require_grad();
            let y = q.fake_quant(x.clone(), (0.0, 0.0));
            let forward = y.clone().into_data().try_into_vec_as::<f32>().unwrap();
            assert_eq!(forward, scheme.quantize(&xs), "{scheme:?}");
            let grads = (y * Tensor::from_floats([1.0, 2.0, 3.0, 4.0], &device))
                .sum()
                .backward();
            let g = x
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            assert_eq!(g, vec![1.0, 2.0, 3.0, 4.0], "{scheme:?}");
        }
    }
}
