//! A learned clipping range for a layer's weights: PACT's learned clip applied to weights, two-sided,
//! as Rusci et al.'s official training code does for per-layer weights ("PerLayerAsymPACT").
//!
//! Per-step min/max ranges follow the weights' extremes, so one outlier per layer sets the step of
//! every other weight; at 4 and 2 bits that step erases most of them. A learned range lets training
//! trade clipping the extremes against resolution for the rest. The forward pass clamps the weights
//! to `[lo, hi]` before the weight quantizer sees them (so a min/max quantizer then uses the clamped
//! extremes); the gradient of a weight inside the range passes through, one outside gives its
//! gradient to the bound that clipped it (the sum over the clipped weights, PACT's rule), and the
//! bounds carry their own L2 decay, which pulls them in as weight decay pulls in PACT's α.
//!
//! The bounds are clamped to `lo <= 0 <= hi` where they are used: the integer formats need zero
//! on the grid, and the official code clamps them so before deployment; doing so in training too
//! keeps the trained model and the deployed one the same.

use burn::module::Param;
use burn::prelude::*;

/// The learned bounds `[lo, hi]` of one layer's weights and their L2 decay.
#[derive(Module, Debug)]
pub struct LearnedWeightRange {
    /// Lower bound (a one-element tensor), trained.
    pub lo: Param<Tensor<1>>,
    /// Upper bound (a one-element tensor), trained.
    pub hi: Param<Tensor<1>>,
    /// L2 decay of the bounds: the training loss gains `decay/2 · (lo² + hi²)`.
    #[module(skip)]
    pub decay: f64,
}

impl LearnedWeightRange {
    /// The range `[lo, hi]` with L2 decay `decay`, on `device`.
    pub fn new(lo: f64, hi: f64, decay: f64, device: &Device) -> Self {
        let scalar = |v: f64| Param::from_tensor(Tensor::from_data([v as f32], device));
        LearnedWeightRange {
            lo: scalar(lo),
            hi: scalar(hi),
            decay,
        }
    }

    /// The bounds as used: `(min(lo, 0), max(hi, 0))` (see the module docs).
    fn bounds(&self) -> (Tensor<1>, Tensor<1>) {
        (self.lo.val().clamp_max(0.0), self.hi.val().clamp_min(0.0))
    }

    /// `w` clamped to the range, with PACT's gradients (see the module docs).
    pub fn clamp<const D: usize>(&self, w: Tensor<D>) -> Tensor<D> {
        let dims = w.dims();
        let (lo, hi) = self.bounds();
        let spread = |b: Tensor<1>| b.reshape([1; D]).expand(dims);
        w.max_pair(spread(lo)).min_pair(spread(hi))
    }

    /// The bounds as used, on the host (for exporters, which clamp before quantizing).
    pub fn values(&self) -> (f64, f64) {
        let (lo, hi) = self.bounds();
        let host = |t: Tensor<1>| f64::from(t.into_scalar::<f32>());
        (host(lo), host(hi))
    }

    /// The decay term of the training loss, `decay/2 · (lo² + hi²)`.
    pub fn penalty(&self) -> Tensor<1> {
        (self.lo.val().powi_scalar(2) + self.hi.val().powi_scalar(2)).mul_scalar(self.decay / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    /// Clamping passes the gradient of weights inside the range and gives the clipped ones' to the
    /// bound that clipped them (summed), as PACT's α gets it.
    #[test]
    fn clipped_weights_send_their_gradient_to_the_bound() {
        let dev = Device::flex().autodiff();
        let range = LearnedWeightRange::new(-0.5, 1.0, 0.0, &dev);
        let w = Tensor::<1>::from_floats([-2.0, -0.25, 0.5, 3.0, 4.0], &dev).require_grad();
        let upstream = Tensor::<1>::from_floats([1.0, 10.0, 100.0, 1000.0, 10000.0], &dev);
        let y = range.clamp(w.clone());
        assert_eq!(host(y.clone()), vec![-0.5, -0.25, 0.5, 1.0, 1.0]);
        let grads = (y * upstream).sum().backward();
        assert_eq!(
            host(w.grad(&grads).unwrap()),
            vec![0.0, 10.0, 100.0, 0.0, 0.0]
        );
        assert_eq!(host(range.lo.val().grad(&grads).unwrap()), vec![1.0]);
        assert_eq!(host(range.hi.val().grad(&grads).unwrap()), vec![11000.0]);
    }

    /// Bounds on the wrong side of zero are used as zero, and the decay term is `decay/2·(lo²+hi²)`.
    #[test]
    fn bounds_keep_zero_inside_and_decay_their_square() {
        let dev = Device::flex();
        let range = LearnedWeightRange::new(0.25, 2.0, 0.5, &dev);
        assert_eq!(range.values(), (0.0, 2.0));
        let w = Tensor::<1>::from_floats([-1.0, 0.1, 3.0], &dev);
        assert_eq!(host(range.clamp(w)), vec![0.0, 0.1, 2.0]);
        let p = range.penalty().into_scalar::<f32>();
        assert!((p - 0.25 * (0.0625 + 4.0)).abs() < 1e-6, "{p}");
    }
}
