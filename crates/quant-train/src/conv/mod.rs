//! The 2-D convolution every training model calls: Burn's `conv2d` semantics (NCHW, OIHW weights,
//! symmetric zero padding, no dilation), with forward and backward computed by [`kernels`] on the
//! flex backend, where Burn's own backward dominated the training step (see [`kernels`]), and by
//! Burn's own operations on any other backend.
//!
//! It is a Burn backend extension with a hand-written backward pass: flex gets the fast kernels,
//! the ndarray backend (feature `ndarray`) falls back to Burn's operations through the trait's
//! default bodies, and autodiff records one node whose backward calls the inner backend's
//! gradient methods. Non-f32 tensors also fall back.

pub mod kernels;
#[cfg(test)]
mod tests;

pub use kernels::ConvLayer;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::{Autodiff, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn_flex::FlexTensor;
use quant_core::kernels::ConvGeometry;

use crate::flex_tensors::{dims, is_f32, tensor, values};
use crate::kernel_time::{Kernel, timed};

/// The timing bucket of a layer's kernel: depthwise layers share one.
fn kernel_of(layer: &ConvLayer, dense: Kernel) -> Kernel {
    if layer.is_depthwise() {
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
    fn layer(self, input: &[usize], weight: &[usize]) -> Option<ConvLayer> {
        let (&[batch, in_c, in_h, in_w], &[out_c, _, kernel_h, kernel_w]) = (input, weight) else {
            return None;
        };
        let p = self.padding;
        let layer = ConvLayer {
            batch,
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
        };
        let weight_ok = weight.iter().product::<usize>() == layer.weight_len();
        (layer.validate().is_ok() && weight_ok).then_some(layer)
    }
}

/// `conv2d(x, w) + bias` (`x`: `[N, C, H, W]`, `w`: `[O, C/groups, K, K]`, `bias`: `[O]`).
pub fn conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    bias: Option<Tensor<1>>,
    spec: ConvSettings,
) -> Tensor<4> {
    if !crate::fast_path::enabled() {
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

/// The three operations of a convolution layer in training. The default bodies are Burn's own
/// operations (any backend); flex overrides them with [`kernels`].
#[backend_extension(Flex, NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait TrainConv: Backend {
    /// Forward pass without bias.
    fn train_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: ConvSettings,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, w, None, spec.options())
    }

    /// Gradient with respect to the input.
    fn train_conv2d_x_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        spec: ConvSettings,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, w, dy, spec.options())
    }

    /// Gradient with respect to the weight.
    fn train_conv2d_weight_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        spec: ConvSettings,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, w, dy, spec.options())
    }
}

#[cfg(feature = "ndarray")]
impl TrainConv for burn::backend::NdArray {}

/// Runs `kernel` on the f32 values of `a` and `b` when both are f32 and the shapes describe a valid
/// layer; `None` sends the caller to Burn's own operation.
fn on_flex(
    spec: ConvSettings,
    x_shape: &FlexTensor,
    w: &FlexTensor,
    a: &FlexTensor,
    b: &FlexTensor,
    kernel: impl FnOnce(&ConvLayer, &[f32], &[f32]) -> (Vec<f32>, [usize; 4]),
) -> Option<FlexTensor> {
    let layer = spec.layer(&dims(x_shape), &dims(w))?;
    if !(is_f32(a) && is_f32(b)) {
        return None;
    }
    let (out, shape) = kernel(&layer, &values(a), &values(b));
    Some(tensor(out, shape.to_vec()))
}

impl TrainConv for Flex {
    fn train_conv2d(x: FlexTensor, w: FlexTensor, spec: ConvSettings) -> FlexTensor {
        on_flex(spec, &x, &w, &x, &w, |l, x, w| {
            (
                timed(kernel_of(l, Kernel::ConvForward), || {
                    kernels::forward(l, x, w)
                }),
                l.output_shape(),
            )
        })
        .unwrap_or_else(|| Self::conv2d(x, w, None, spec.options()))
    }

    fn train_conv2d_x_backward(
        x: FlexTensor,
        w: FlexTensor,
        dy: FlexTensor,
        spec: ConvSettings,
    ) -> FlexTensor {
        on_flex(spec, &x, &w, &w, &dy, |l, w, dy| {
            let g = &l.geometry;
            let shape = [l.batch, g.in_c, g.in_h, g.in_w];
            (
                timed(kernel_of(l, Kernel::ConvInputGrad), || {
                    kernels::input_grad(l, w, dy)
                }),
                shape,
            )
        })
        .unwrap_or_else(|| Self::conv2d_x_backward(x, w, dy, spec.options()))
    }

    fn train_conv2d_weight_backward(
        x: FlexTensor,
        w: FlexTensor,
        dy: FlexTensor,
        spec: ConvSettings,
    ) -> FlexTensor {
        let w_shape = dims(&w);
        on_flex(spec, &x, &w, &x, &dy, |l, x, dy| {
            let shape = [w_shape[0], w_shape[1], w_shape[2], w_shape[3]];
            (
                timed(kernel_of(l, Kernel::ConvWeightGrad), || {
                    kernels::weight_grad(l, x, dy)
                }),
                shape,
            )
        })
        .unwrap_or_else(|| Self::conv2d_weight_backward(x, w, dy, spec.options()))
    }
}

/// The autodiff node of [`TrainConv::train_conv2d`]: keeps the input and the weight, and asks the
/// inner backend for both gradients.
#[derive(Debug)]
struct TrainConvBackward;

impl<B: TrainConv> Backward<B, 2> for TrainConvBackward {
    type State = (NodeId, NodeId, ConvSettings);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, spec) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            let dx = B::train_conv2d_x_backward(x.clone(), w.clone(), dy.clone(), spec);
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::train_conv2d_weight_backward(x, w, dy, spec));
        }
    }
}

impl<B: TrainConv, C: CheckpointStrategy> TrainConv for Autodiff<B, C> {
    fn train_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        spec: ConvSettings,
    ) -> FloatTensor<Self> {
        match TrainConvBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&w);
                let (xp, _) = x.into_parts();
                let (wp, _) = w.into_parts();
                prep.finish((x_state, w_state, spec), B::train_conv2d(xp, wp, spec))
            }
            OpsKind::UnTracked(prep) => {
                let (xp, _) = x.into_parts();
                let (wp, _) = w.into_parts();
                prep.finish(B::train_conv2d(xp, wp, spec))
            }
        }
    }
}
