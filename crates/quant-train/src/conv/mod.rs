//! The 2-D convolution every training model calls: Burn's `conv2d` semantics (NCHW, OIHW weights,
//! symmetric zero padding, no dilation), with forward and backward computed by [`kernels`] on the
//! flex backend, where Burn's own backward dominated the training step (see [`kernels`]), and by
//! Burn's own operations on any other backend.
//!
//! It is a Burn backend extension with a hand-written backward pass on flex; every other device,
//! non-f32 tensors and `fast_path::without` take Burn's own `conv2d`
//! ([`crate::flex_tensors::runs_kernels`], the same rule as the fused operations).

mod grid;
pub mod kernels;
mod taps;
#[cfg(test)]
mod tests;

pub use kernels::ConvBatch;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::ops::ModuleOps;
use burn::backend::{Autodiff, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn_flex::FlexTensor;
use quant_core::kernels::{ConvGeometry, ConvShape};

use crate::flex_tensors::{dims, record, runs_kernels, tensor, values};
use crate::kernel_time::{Kernel, timed};

/// The timing bucket of a layer's kernel: depthwise layers share one.
fn kernel_of(layer: &ConvBatch, dense: Kernel) -> Kernel {
    if layer.shape.is_depthwise() {
        Kernel::Depthwise
    } else {
        dense
    }
}

/// Stride, symmetric padding and channel groups of a convolution (square, no dilation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSettings {
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Channel groups (1: dense; the channel count: depthwise).
    pub groups: usize,
}

impl ConvSettings {
    /// Burn's options for the same convolution (the fallback path).
    fn options(self) -> ConvOptions<2> {
        ConvOptions::new(
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        )
    }

    /// The kernels' description of this convolution applied to `input` (`[N, C, H, W]`) with a
    /// weight of shape `weight` (`[O, C/groups, KH, KW]`); `None` when the shapes disagree.
    fn layer(self, input: &[usize], weight: &[usize]) -> Option<ConvBatch> {
        let (&[batch, in_c, in_h, in_w], &[out_c, _, kernel_h, kernel_w]) = (input, weight) else {
            return None;
        };
        let p = self.padding;
        let layer = ConvBatch {
            batch,
            shape: ConvShape {
                geometry: ConvGeometry {
                    in_h,
                    in_w,
                    in_c,
                    kernel_h,
                    kernel_w,
                    stride_h: self.stride,
                    stride_w: self.stride,
                    pad_top: p,
                    pad_left: p,
                    pad_bottom: p,
                    pad_right: p,
                },
                out_c,
                groups: self.groups,
            },
        };
        let weight_ok = weight.iter().product::<usize>() == layer.shape.weight_len();
        (layer.shape.validate().is_ok() && weight_ok).then_some(layer)
    }
}

/// `conv2d(x, w) + bias` (`x`: `[N, C, H, W]`, `w`: `[O, C/groups, K, K]`, `bias`: `[O]`).
pub fn conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    bias: Option<Tensor<1>>,
    spec: ConvSettings,
) -> Tensor<4> {
    if !(runs_kernels(&x) && runs_kernels(&w)) {
        return burn::tensor::module::conv2d(x, w, bias, spec.options());
    }
    let out_c = w.dims()[0];
    let y = Tensor::from_dispatch(<burn::backend::Dispatch as TrainConv>::train_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        spec,
    ));
    match bias {
        Some(b) => y + b.reshape([1, out_c, 1, 1]),
        None => y,
    }
}

/// The convolution as a backend extension: flex runs [`kernels`] (Burn's own operation where the
/// shapes are not a valid layer, so that Burn reports the error); autodiff over flex records one
/// node whose gradients are [`input_grad`] and [`weight_grad`].
#[backend_extension(Flex, Autodiff)]
pub trait TrainConv: Backend {
    /// Forward pass without bias.
    fn train_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: ConvSettings,
    ) -> FloatTensor<Self>;
}

/// Runs `kernel` on the values of `a` and `b` when the shapes describe a valid layer; `None` sends
/// the caller to Burn's own operation.
fn with_layer(
    spec: ConvSettings,
    x_shape: &FlexTensor,
    w: &FlexTensor,
    a: &FlexTensor,
    b: &FlexTensor,
    kernel: impl FnOnce(&ConvBatch, &[f32], &[f32]) -> (Vec<f32>, [usize; 4]),
) -> Option<FlexTensor> {
    let layer = spec.layer(&dims(x_shape), &dims(w))?;
    let (out, shape) = kernel(&layer, &values(a), &values(b));
    Some(tensor(out, shape.to_vec()))
}

impl TrainConv for Flex {
    fn train_conv2d(x: FlexTensor, w: FlexTensor, spec: ConvSettings) -> FlexTensor {
        with_layer(spec, &x, &w, &x, &w, |l, x, w| {
            let y = timed(kernel_of(l, Kernel::ConvForward), || {
                kernels::forward(l, x, w)
            });
            (y, l.output_shape())
        })
        .unwrap_or_else(|| Self::conv2d(x, w, None, spec.options()))
    }
}

/// The gradient with respect to the input.
fn input_grad(x: FlexTensor, w: FlexTensor, dy: FlexTensor, spec: ConvSettings) -> FlexTensor {
    with_layer(spec, &x, &w, &w, &dy, |l, w, dy| {
        let g = &l.shape.geometry;
        let dx = timed(kernel_of(l, Kernel::ConvInputGrad), || {
            kernels::input_grad(l, w, dy)
        });
        (dx, [l.batch, g.in_c, g.in_h, g.in_w])
    })
    .unwrap_or_else(|| Flex::conv2d_x_backward(x, w, dy, spec.options()))
}

/// The gradient with respect to the weight.
fn weight_grad(x: FlexTensor, w: FlexTensor, dy: FlexTensor, spec: ConvSettings) -> FlexTensor {
    let [o, i, kh, kw] = <[usize; 4]>::try_from(dims(&w)).unwrap_or_default();
    with_layer(spec, &x, &w, &x, &dy, |l, x, dy| {
        let dw = timed(kernel_of(l, Kernel::ConvWeightGrad), || {
            kernels::weight_grad(l, x, dy)
        });
        (dw, [o, i, kh, kw])
    })
    .unwrap_or_else(|| Flex::conv2d_weight_backward(x, w, dy, spec.options()))
}

impl<C: CheckpointStrategy> TrainConv for Autodiff<Flex, C> {
    fn train_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: ConvSettings,
    ) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x, w],
            spec,
            |[x, w], dy, [dx, dw], spec| {
                let input = dx.then(|| input_grad(x.clone(), w.clone(), dy.clone(), spec));
                [input, dw.then(|| weight_grad(x, w, dy, spec))]
            },
            |[x, w]| <Flex as TrainConv>::train_conv2d(x, w, spec),
        )
    }
}
