//! A convolution's weights laid out once for the kernels that keep the int32 accumulators
//! ([`conv2d_i32`], [`depthwise_conv2d_i32`]), for graphs whose requantization is not the affine
//! output stage: F8Net's shifts (the fixed8 engine) and Rusci et al.'s ICN / folded batch norm (the
//! sub-byte graph of `mixed-precision-mcu`). Both export weights in Burn's and PyTorch's
//! `[out_c][in_c / groups][k][k]` order; [`ConvKernel::new`] reorders them for the kernels.
#![deny(clippy::float_arithmetic)]

use super::{
    Backend, ConvGeometry, ConvShape, DepthwiseWeights, MAX_DEPTH, PackedWeights, conv2d_i32,
    depthwise_conv2d_i32,
};
use crate::error::Result;

/// A dense or depthwise convolution (a fully connected layer is a 1x1 dense one) on the int8
/// kernels of one backend.
#[derive(Debug, Clone, PartialEq)]
pub enum ConvKernel {
    /// The GEMM's `(k * k * in_c) x out_c` matrix (rows in im2col's tap-major, channel-minor order).
    Dense(PackedWeights),
    /// The depthwise loops' `[ky][kx][c]` taps (one input channel per output channel).
    Depthwise(DepthwiseWeights),
}

impl ConvKernel {
    /// Lays out `weights` (`[out_c][in_c / groups][kernel_h][kernel_w]`) with weight `zero_points`
    /// (one per output channel, or one for all) for `backend`: dense for one group, depthwise for
    /// one input channel per group and as many groups as outputs. `None` where the layer is
    /// neither, where its depth exceeds [`MAX_DEPTH`], or where the length fits no such layer
    /// (the caller's own checks report that).
    pub fn new(
        weights: &[i8],
        out_c: usize,
        (kernel_h, kernel_w): (usize, usize),
        groups: usize,
        zero_points: &[i32],
        backend: Backend,
    ) -> Result<Option<ConvKernel>> {
        let taps = kernel_h * kernel_w;
        if out_c == 0 || taps == 0 || !weights.len().is_multiple_of(out_c * taps) {
            return Ok(None);
        }
        let depth = weights.len() / out_c;
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        let in_c = depth / taps;
        // reordered[to(o, ci, t)] = weights[o][ci][t]
        let reorder = |to: &dyn Fn(usize, usize, usize) -> usize| {
            let mut reordered = vec![0_i8; weights.len()];
            for (o, filter) in weights.chunks_exact(depth).enumerate() {
                for (ci, channel) in filter.chunks_exact(taps).enumerate() {
                    for (t, &w) in channel.iter().enumerate() {
                        reordered[to(o, ci, t)] = w;
                    }
                }
            }
            reordered
        };
        match groups {
            1 => {
                let kn = reorder(&|o, ci, t| (t * in_c + ci) * out_c + o);
                PackedWeights::new(&kn, depth, out_c, zero_points, backend)
                    .map(|p| Some(ConvKernel::Dense(p)))
            }
            g if g == out_c && in_c == 1 => {
                let tap_major = reorder(&|o, _, t| t * out_c + o);
                DepthwiseWeights::new(&tap_major, kernel_h, kernel_w, out_c, zero_points, backend)
                    .map(|d| Some(ConvKernel::Depthwise(d)))
            }
            _ => Ok(None),
        }
    }

    /// Whether the kernel computes a convolution of `shape`: dense weights ungrouped ones,
    /// depthwise taps those with one input channel per output channel.
    pub fn fits(&self, shape: &ConvShape) -> bool {
        match self {
            ConvKernel::Dense(_) => shape.groups == 1,
            ConvKernel::Depthwise(_) => shape.is_depthwise(),
        }
    }

    /// The int32 accumulators `bias[o] + sum (x - input_zero_point)(w - w_zero[o])` of `batch`
    /// HWC images of `geometry`, `batch x out_h x out_w x out_c` into `out`.
    pub fn accumulate(
        &self,
        input: &[u8],
        batch: usize,
        geometry: &ConvGeometry,
        input_zero_point: i32,
        bias: &[i32],
        out: &mut [i32],
    ) -> Result<()> {
        let (g, za) = (geometry, input_zero_point);
        match self {
            ConvKernel::Dense(p) => conv2d_i32(input, batch, g, za, p, bias, out),
            ConvKernel::Depthwise(d) => depthwise_conv2d_i32(input, batch, g, za, d, bias, out),
        }
    }
}
