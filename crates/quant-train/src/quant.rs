//! Fake quantization with a straight-through estimator, the pluggable [`Quantizer`] trait, and the
//! range observers of Jacob et al. 2018 §3.1.
//!
//! A quantized layer asks two questions at every step: *what real range does this tensor cover?*
//! (an observer answers: per-step min/max for weights, an EMA of batch min/max for activations, or a
//! learned clip such as PACT's α) and *which float would the deployed arithmetic see for each value?*
//! (a [`Quantizer`] answers, given that range). Keeping the two apart is what lets the other papers
//! plug in their own number formats (AdaptivFloat, F8Net's fixed point, PACT) without touching the
//! layers or the training loop.

use std::fmt;
use std::sync::Arc;

use burn::module::RunningState;
use burn::prelude::*;

use crate::fused::{Clip, Grid, clip_ste};
use quant_core::qparams::{QParams, QRange};

/// Rounds every element to the nearest integer, ties **away from zero** (`2.5 -> 3`, `-2.5 -> -3`).
///
/// This is the tensor form of [`quant_core::rounding::round_half_away_from_zero`], the one rounding
/// rule of the workspace (dossier §2.2 step 6): the QAT simulation and the integer converter must
/// round ties the same way or they disagree by one code. Burn's own `round()` rounds half to even,
/// so it is not used. Formula: `sign(x) * floor(|x| + 0.5)`, which quant-core's tests check against
/// its scalar rule.
pub fn round_half_away<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().sign() * x.abs().add_scalar(0.5).floor()
}

/// Fake-quantizes `x` on the affine grid of `p` with a **clipped** straight-through estimator:
/// forward `S * clamp(round(r / S), qmin - Z, qmax - Z)` (exactly the float `S (q - Z)` that
/// [`QParams::quantize`] would produce, eq. 12 of the paper after nudging), backward gradient 1 inside
/// the nudged range `[a', b']` and 0 outside (TF's FakeQuant gradient, dossier §6.5).
pub fn fake_quant_affine<const D: usize>(x: Tensor<D>, p: &QParams) -> Tensor<D> {
    clip_ste(x, affine_clip(p))
}

/// The [`Clip`] of [`fake_quant_affine`]: the nudged range, and the grid of `p`'s codes.
pub fn affine_clip(p: &QParams) -> Clip {
    let (lo, hi) = p.nudged_range();
    Clip {
        lo: lo as f32,
        hi: hi as f32,
        grid: Grid::Affine {
            scale: p.scale as f32,
            code_lo: (p.range.qmin - p.zero_point) as f32,
            code_hi: (p.range.qmax - p.zero_point) as f32,
        },
    }
}

/// A number format that a quantized layer simulates in training.
///
/// `fake_quant` receives the tensor flattened to one dimension (the layer reshapes it back) and the
/// real range its observer reports; it returns the values the deployed arithmetic would see, with a
/// gradient that the implementation chooses (usually a straight-through estimator). Formats whose
/// parameters are the affine `(S, Z)` of quant-core also return them from [`Quantizer::affine`], which
/// is what [`crate::export`] needs to build an integer-engine model.
pub trait Quantizer: Send + Sync + fmt::Debug {
    /// Short label for tables and logs, e.g. `affine-u8`.
    fn label(&self) -> String;
    /// Fake-quantizes `x` whose observed real range is `range = (min, max)`.
    fn fake_quant(&self, x: Tensor<1>, range: (f64, f64)) -> Tensor<1>;
    /// The affine parameters this format uses for `range`, if it is affine (Jacob's scheme).
    fn affine(&self, _range: (f64, f64)) -> Option<QParams> {
        None
    }
}

/// A shared handle to a [`Quantizer`]; what the layers store.
#[derive(Clone)]
pub struct QuantizerRef(pub Arc<dyn Quantizer>);

impl fmt::Debug for QuantizerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.label())
    }
}

impl QuantizerRef {
    /// Wraps a quantizer.
    pub fn new(q: impl Quantizer + 'static) -> Self {
        QuantizerRef(Arc::new(q))
    }

    /// Fake-quantizes a tensor of any rank (flattened for the [`Quantizer`], then reshaped back).
    pub fn apply<const D: usize>(&self, x: Tensor<D>, range: (f64, f64)) -> Tensor<D> {
        let dims = x.dims();
        let n = dims.iter().product::<usize>();
        self.0.fake_quant(x.reshape([n]), range).reshape(dims)
    }
}

/// Jacob et al.'s per-tensor affine uint-`bits` format: `(S, Z)` from [`QParams::choose`] (range
/// widened to contain 0, zero point nudged), fake quantization by [`fake_quant_affine`].
///
/// Weights use the narrow range `[1, 2^bits - 1]` (the paper's "never -128" tweak, §2.3),
/// activations the full range `[0, 2^bits - 1]`.
#[derive(Debug, Clone, Copy)]
pub struct AffineQuantizer {
    /// Code range.
    pub range: QRange,
}

impl AffineQuantizer {
    /// Weight format with `bits` bits (narrow range). Errors unless `bits` is in `2..=8`.
    pub fn weights(bits: u32) -> Result<Self, quant_core::error::QuantError> {
        Ok(AffineQuantizer {
            range: QRange::unsigned(bits, true)?,
        })
    }

    /// Activation format with `bits` bits (full range). Errors unless `bits` is in `2..=8`.
    pub fn activations(bits: u32) -> Result<Self, quant_core::error::QuantError> {
        Ok(AffineQuantizer {
            range: QRange::unsigned(bits, false)?,
        })
    }

    fn params(&self, range: (f64, f64)) -> QParams {
        // Observers only report finite ranges with min <= max, for which `choose` cannot fail;
        // a non-finite range (a diverged model) falls back to the unit range so that training
        // reports a NaN loss instead of aborting deep inside a forward pass.
        QParams::choose(range.0, range.1, self.range).unwrap_or(QParams {
            scale: 1.0,
            zero_point: self.range.qmin,
            range: self.range,
        })
    }
}

impl Quantizer for AffineQuantizer {
    fn label(&self) -> String {
        format!("affine[{},{}]", self.range.qmin, self.range.qmax)
    }

    fn fake_quant(&self, x: Tensor<1>, range: (f64, f64)) -> Tensor<1> {
        fake_quant_affine(x, &self.params(range))
    }

    fn affine(&self, range: (f64, f64)) -> Option<QParams> {
        Some(self.params(range))
    }
}

/// Per-step min/max of a tensor (the paper's weight range, "LastValueQuantize"), read to the host.
pub fn tensor_range<const D: usize>(x: &Tensor<D>) -> (f64, f64) {
    let (lo, hi) = crate::fused::value_range(x);
    (f64::from(lo), f64::from(hi))
}

/// Exponential moving average of batch min/max (paper §3.1 for activations), zero-debiased like
/// TF1's `assign_moving_average`: the state holds `[Σ(1-d)d^k m_min, Σ(1-d)d^k m_max, 1 - d^t]`
/// and the range is the first two divided by the third, so the initial range only matters until
/// the first update. Each batch min is clamped to `<= 0` and each max to `>= 0` first.
///
/// The state lives in a [`RunningState`] so that it is saved with the module, carried over by
/// `valid()`, and restored by checkpoints.
#[derive(Module, Debug)]
pub struct EmaObserver {
    /// `[acc_min, acc_max, weight]`.
    pub state: RunningState<Tensor<1>>,
    /// Smoothing parameter `d` (TF default 0.999).
    pub decay: f64,
    /// Range reported before the first update (TF: `[0, 6]` after activations, `[-6, 6]` elsewhere).
    pub init_min: f64,
    /// See `init_min`.
    pub init_max: f64,
}

impl EmaObserver {
    /// A fresh observer on `device`.
    pub fn new(decay: f64, init: (f64, f64), device: &Device) -> Self {
        EmaObserver {
            state: RunningState::new(Tensor::zeros([3], device)),
            decay,
            init_min: init.0,
            init_max: init.1,
        }
    }

    fn state_vec(&self) -> [f64; 3] {
        let v = self
            .state
            .value_sync()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        if v.len() == 3 {
            [f64::from(v[0]), f64::from(v[1]), f64::from(v[2])]
        } else {
            [0.0, 0.0, 0.0]
        }
    }

    /// The current (debiased) range, or the initial range before any update.
    pub fn range(&self) -> (f64, f64) {
        let [lo, hi, w] = self.state_vec();
        if w > 0.0 {
            (lo / w, hi / w)
        } else {
            (self.init_min, self.init_max)
        }
    }

    /// Folds the batch `x` into the average.
    pub fn observe<const D: usize>(&self, x: &Tensor<D>) {
        self.observe_range(tensor_range(x));
    }

    /// [`Self::observe`] of a batch whose `(min, max)` is known.
    pub fn observe_range(&self, (lo, hi): (f64, f64)) {
        let [acc_lo, acc_hi, w] = self.state_vec();
        let d = self.decay;
        let next = [
            d * acc_lo + (1.0 - d) * lo.min(0.0),
            d * acc_hi + (1.0 - d) * hi.max(0.0),
            d * w + (1.0 - d),
        ];
        let device = self.state.value().device();
        let data = TensorData::new(next.map(|v| v as f32).to_vec(), [3]);
        self.state.update(Tensor::from_data(data, &device));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::rounding::round_half_away_from_zero_f32;

    fn vec1(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn tensor_rounding_matches_quant_core_on_ties() {
        let dev = Device::flex();
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.25).collect();
        let got = vec1(round_half_away(Tensor::<1>::from_floats(
            xs.as_slice(),
            &dev,
        )));
        let want: Vec<f32> = xs
            .iter()
            .map(|&x| round_half_away_from_zero_f32(x))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            vec1(round_half_away(Tensor::<1>::from_floats([-2.5, 2.5], &dev))),
            vec![-3.0, 3.0]
        );
    }

    #[test]
    fn fake_quant_matches_quant_core_codes() {
        let dev = Device::flex();
        let p = QParams::choose(-0.3, 5.7, QRange::U8).unwrap();
        let xs: Vec<f32> = (-100..700).map(|i| i as f32 * 0.0113).collect();
        let got = vec1(fake_quant_affine(
            Tensor::<1>::from_floats(xs.as_slice(), &dev),
            &p,
        ));
        for (x, g) in xs.iter().zip(got) {
            let want = p.fake_quant(f64::from(*x)).unwrap();
            assert!((f64::from(g) - want).abs() < 1e-5, "x {x}: {g} vs {want}");
        }
    }

    #[test]
    fn clipped_ste_gradient() {
        let dev = Device::flex().autodiff();
        let p = QParams::choose(-1.0, 1.0, QRange::U8).unwrap();
        let x = Tensor::<1>::from_floats([-3.0, -0.5, 0.3, 0.9, 2.0], &dev).require_grad();
        let y = fake_quant_affine(x.clone(), &p);
        let grads = y.sum().backward();
        let g = vec1(x.grad(&grads).unwrap());
        assert_eq!(g, vec![0.0, 1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn ema_is_debiased_and_includes_zero() {
        let dev = Device::flex();
        let obs = EmaObserver::new(0.9, (0.0, 6.0), &dev);
        assert_eq!(obs.range(), (0.0, 6.0));
        obs.observe(&Tensor::<1>::from_floats([1.0, 3.0], &dev));
        let (lo, hi) = obs.range();
        assert!(lo.abs() < 1e-6 && (hi - 3.0).abs() < 1e-5, "{lo} {hi}");
        obs.observe(&Tensor::<1>::from_floats([-1.0, 1.0], &dev));
        // (0.9*0.1*3 + 0.1*1) / (1 - 0.81) = 0.37 / 0.19
        let (lo, hi) = obs.range();
        assert!((hi - 0.37 / 0.19).abs() < 1e-5, "{hi}");
        assert!((lo + 0.1 / 0.19).abs() < 1e-5, "{lo}");
    }
}
