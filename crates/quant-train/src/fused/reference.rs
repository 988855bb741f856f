//! The fused operations written with Burn's tensor operations: what every device other than flex
//! runs, and the definition the fused kernels are tested against.

use burn::prelude::*;
use burn::tensor::activation;

use super::{Clip, Grid};
use crate::quant::round_half_away;

/// [`super::clip_ste`]: clamp (whose gradient is the clipped straight-through estimator), then the
/// grid's rounding with its gradient detached.
pub fn clip_ste<const D: usize>(x: Tensor<D>, clip: Clip) -> Tensor<D> {
    match clip.grid {
        Grid::None => x.clamp(clip.lo, clip.hi),
        Grid::Affine {
            scale,
            code_lo,
            code_hi,
        } => {
            let clipped = x.clamp(clip.lo, clip.hi);
            let q = round_half_away(clipped.clone().div_scalar(scale))
                .clamp(code_lo, code_hi)
                .mul_scalar(scale);
            clipped.clone() + (q - clipped).detach()
        }
        Grid::Fixed { scale } => {
            let c = x.mul_scalar(scale).clamp(clip.lo * scale, clip.hi * scale);
            (c.clone() + (c.clone().round() - c).detach()).div_scalar(scale)
        }
    }
}

/// [`super::relu_clip_ste`]: Burn's ReLU, then [`clip_ste`].
pub fn relu_clip_ste<const D: usize>(x: Tensor<D>, clip: Clip) -> Tensor<D> {
    clip_ste(activation::relu(x), clip)
}

/// [`super::pact`]: `relu(x) - relu(x - α)`.
pub fn pact<const D: usize>(x: Tensor<D>, alpha: Tensor<1>) -> Tensor<D> {
    let a = alpha.reshape([1; D]);
    activation::relu(x.clone()) - activation::relu(x - a)
}

/// [`super::channel_moments`]: mean and biased variance over every axis but the channel one.
pub fn channel_moments(x: Tensor<4>) -> (Tensor<1>, Tensor<1>) {
    let [n, c, h, w] = x.dims();
    let per_channel = x.swap_dims(0, 1).reshape([c, n * h * w]);
    let mean = per_channel.clone().mean_dim(1).reshape([c]);
    let var = (per_channel - mean.clone().reshape([c, 1]))
        .powi_scalar(2)
        .mean_dim(1)
        .reshape([c]);
    (mean, var)
}

/// [`super::channel_affine`]: broadcast multiply and add.
pub fn channel_affine(x: Tensor<4>, a: Tensor<1>, b: Tensor<1>) -> Tensor<4> {
    let c = a.dims()[0];
    x * a.reshape([1, c, 1, 1]) + b.reshape([1, c, 1, 1])
}

/// [`super::value_range`]: two reductions.
pub fn value_range<const D: usize>(x: &Tensor<D>) -> (f32, f32) {
    let flat = x
        .clone()
        .detach()
        .reshape([x.dims().iter().product::<usize>()]);
    (
        flat.clone().min().into_scalar::<f32>(),
        flat.max().into_scalar::<f32>(),
    )
}

/// [`super::straight_through`]: `x + (q - x).detach()`.
pub fn straight_through<const D: usize>(x: Tensor<D>, q: Tensor<D>) -> Tensor<D> {
    x.clone() + (q - x).detach()
}

/// [`super::max_pool`]: Burn's own max pooling.
pub fn max_pool(x: Tensor<4>, size: usize) -> Tensor<4> {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    max_pool2d(x, MaxPoolOptions::new([size, size]))
}

/// [`super::layer_norm`]: mean and biased variance of the last dimension, then scale and shift.
pub fn layer_norm<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>, eps: f64) -> Tensor<D> {
    let d = x.dims()[D - 1];
    let mut column = [1; D];
    column[D - 1] = d;
    let mean = x.clone().mean_dim(D - 1);
    let centered = x - mean;
    let var = centered.clone().powf_scalar(2.0).mean_dim(D - 1);
    centered / (var + eps).sqrt() * g.reshape(column) + b.reshape(column)
}

/// [`super::softmax`]: Burn's softmax over the last dimension.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::softmax(x, D - 1)
}
