//! Quantizable layers: a conv or fully connected layer with optional batch norm, a fused
//! activation and an output stage (observer + fake quantization) at every place where the integer
//! engine stores a tensor (paper §3, "where fake-quant nodes go": after the activation of each
//! conv/FC layer, after each residual add, after pooling that changes values).
//!
//! A layer is a plain struct of parameters plus two quantizer slots; with both slots empty it is an
//! ordinary float layer, so one model type serves float training, QAT and export.

use burn::module::{Param, RunningState};
use burn::prelude::*;
use burn::tensor::activation;

use crate::conv::{ConvSettings, conv2d};
use crate::fused::{self, Clip, Grid};
use crate::quant::{EmaObserver, QuantizerRef, affine_clip, tensor_range};
use crate::rng::Rng;
use crate::weight_range::LearnedWeightRange;

/// ReLU6 as a clamp to `[0, 6]` (Burn's `relu6`, gradient 1 on the closed interval).
const RELU6: Clip = Clip {
    lo: 0.0,
    hi: 6.0,
    grid: Grid::None,
};

/// What a forward pass should do; chosen by the training loop (or evaluation) per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// Update the activation observers with this batch (training, or PTQ calibration).
    pub observe: bool,
    /// Normalize with batch statistics and update the moving ones (training before the BN
    /// freeze, TF's `freeze_bn_delay`); otherwise the moving statistics are used and the layer
    /// computes exactly what the integer engine runs.
    pub bn_batch_stats: bool,
    /// Fake-quantize weights (where a weight quantizer is set).
    pub quantize_weights: bool,
    /// Fake-quantize activations (where an activation quantizer is set); off during the paper's
    /// quantization delay (§3.1) while observers keep estimating ranges.
    pub quantize_activations: bool,
}

impl Phase {
    /// Evaluation: moving statistics, observers frozen, quantizers on wherever they are set.
    pub const EVAL: Phase = Phase {
        observe: false,
        bn_batch_stats: false,
        quantize_weights: true,
        quantize_activations: true,
    };

    /// Evaluation of the float view of a model (quantizers bypassed).
    pub const FLOAT_EVAL: Phase = Phase {
        observe: false,
        bn_batch_stats: false,
        quantize_weights: false,
        quantize_activations: false,
    };

    /// Post-training calibration: float forward pass with moving BN statistics that only feeds the
    /// activation observers.
    pub const CALIBRATE: Phase = Phase {
        observe: true,
        bn_batch_stats: false,
        quantize_weights: false,
        quantize_activations: false,
    };
}

/// A fused activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// Identity (projection convs of MobileNetV2, logits, the conv before a residual add).
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`, MobileNet's activation.
    Relu6,
    /// PACT (Choi et al. 2018): `clip(x, 0, α)` with a learned `α` (initial value given); the
    /// activation range is then `[0, α]` instead of an observed one.
    Pact(f64),
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Activation::None),
            "relu" => Ok(Activation::Relu),
            "relu6" => Ok(Activation::Relu6),
            "pact" => Ok(Activation::Pact(6.0)),
            _ => Err(format!(
                "unknown activation {s:?}: use none, relu, relu6 or pact"
            )),
        }
    }
}

impl Activation {
    /// Range an EMA observer reports before its first update (TF: `[0, 6]` after an activation,
    /// `[-6, 6]` elsewhere).
    fn init_range(self) -> (f64, f64) {
        match self {
            Activation::None => (-6.0, 6.0),
            _ => (0.0, 6.0),
        }
    }
}

/// Default EMA decay for activation ranges (TF's `ema_decay`; the paper only says "close to 1").
pub const DEFAULT_EMA_DECAY: f64 = 0.999;

/// Activation function + observer + activation fake quantization: one stored uint8 tensor.
#[derive(Module, Debug)]
pub struct ActivationQuant {
    /// Range estimate of the stored tensor.
    pub observer: EmaObserver,
    /// PACT's learned clip `α` (only for [`Activation::Pact`]).
    pub pact_alpha: Option<Param<Tensor<1>>>,
    /// Fused activation.
    #[module(skip)]
    pub activation: Activation,
    /// Activation format; `None` keeps this tensor in float.
    #[module(skip)]
    pub quantizer: Option<QuantizerRef>,
}

impl ActivationQuant {
    /// A float output stage with `activation`.
    pub fn new(activation: Activation, device: &Device) -> Self {
        let pact_alpha = match activation {
            Activation::Pact(a) => {
                Some(Param::from_tensor(Tensor::from_floats([a as f32], device)))
            }
            _ => None,
        };
        ActivationQuant {
            observer: EmaObserver::new(DEFAULT_EMA_DECAY, activation.init_range(), device),
            pact_alpha,
            activation,
            quantizer: None,
        }
    }

    /// The real range the quantizer uses: PACT's `[0, α]`, else the observer's EMA range.
    pub fn range(&self) -> (f64, f64) {
        match &self.pact_alpha {
            Some(a) => (0.0, tensor_range(&a.val()).1),
            None => self.observer.range(),
        }
    }

    /// Fake-quantizes `x` on this stage's current grid (no activation, no observation): for
    /// value-preserving ops such as average pooling whose output shares the input's parameters.
    pub fn requantize(&self, x: Tensor<4>, phase: &Phase) -> Tensor<4> {
        match &self.quantizer {
            Some(q) if phase.quantize_activations => q.apply(x, self.range()),
            _ => x,
        }
    }

    /// Activation, then (in training) observe, then fake-quantize if enabled.
    pub fn forward(&self, x: Tensor<4>, phase: &Phase) -> Tensor<4> {
        if let Some(fused) = self.fused(phase) {
            return fused(x);
        }
        let y = match (self.activation, &self.pact_alpha) {
            (Activation::None, _) => x,
            (Activation::Relu, _) => activation::relu(x),
            (Activation::Relu6, _) => fused::clip_ste(x, RELU6),
            // PACT: relu(x) - relu(x - α); dL/dα counts the inputs above α.
            (Activation::Pact(_), Some(alpha)) => fused::pact(x, alpha.val()),
            (Activation::Pact(_), None) => activation::relu(x),
        };
        let Some(q) = &self.quantizer else { return y };
        if phase.observe && self.pact_alpha.is_none() {
            self.observer.observe(&y);
        }
        if phase.quantize_activations {
            q.apply(y, self.range())
        } else {
            y
        }
    }

    /// [`Self::forward`] as one clip of the layer's input where the stage quantizes on an affine
    /// grid after no activation, ReLU or ReLU6: the activation and the fake quantization are both
    /// clamps (ReLU with its own gradient at zero), so one pass forward and one back replace two
    /// of each, and the observer takes the activation of the input's range (the activations are
    /// monotone, so it is the range of their output). The same values and gradients as the
    /// separate operations; `None` where the stage has no such form.
    fn fused(&self, phase: &Phase) -> Option<impl FnOnce(Tensor<4>) -> Tensor<4> + '_> {
        let q = self.quantizer.as_ref()?;
        if !phase.quantize_activations || self.pact_alpha.is_some() {
            return None;
        }
        let activation = self.activation;
        let bounds = match activation {
            Activation::None => None,
            Activation::Relu => Some((0.0, f64::INFINITY)),
            Activation::Relu6 => Some((0.0, 6.0)),
            Activation::Pact(_) => return None,
        };
        // Affine formats answer for any range; the stage's own is read after the observation.
        q.0.affine((0.0, 1.0))?;
        let observe = phase.observe;
        Some(move |x: Tensor<4>| {
            if observe {
                let (lo, hi) = tensor_range(&x);
                let act = |v: f64| bounds.map_or(v, |(a, b): (f64, f64)| v.clamp(a, b));
                self.observer.observe_range((act(lo), act(hi)));
            }
            let clip = affine_clip(&q.0.affine(self.range()).expect("affine checked above"));
            match activation {
                Activation::Relu => fused::relu_clip_ste(x, clip),
                Activation::Relu6 => match clip.after(RELU6) {
                    Some(both) => fused::clip_ste(x, both),
                    None => fused::clip_ste(fused::clip_ste(x, RELU6), clip),
                },
                _ => fused::clip_ste(x, clip),
            }
        })
    }
}

/// Batch-norm parameters and moving statistics of a conv/FC layer (folded into it, paper §3.2).
#[derive(Module, Debug)]
pub struct BatchNormState {
    /// Scale γ.
    pub gamma: Param<Tensor<1>>,
    /// Offset β.
    pub beta: Param<Tensor<1>>,
    /// Moving mean μ.
    pub running_mean: RunningState<Tensor<1>>,
    /// Moving (unbiased) variance σ².
    pub running_var: RunningState<Tensor<1>>,
    /// Moving-average update factor (PyTorch/Burn convention: new = (1-m) old + m batch).
    pub momentum: f64,
    /// ε added to the variance.
    pub epsilon: f64,
}

impl BatchNormState {
    fn new(channels: usize, device: &Device) -> Self {
        BatchNormState {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// `γ / √(σ²_mv + ε)` per channel: the factor folded into the weights.
    pub fn fold_scale(&self) -> Tensor<1> {
        self.fold_scale_of(self.gamma.val())
    }

    /// `β - γ μ_mv / √(σ²_mv + ε)`: the bias of the folded layer.
    pub fn fold_bias(&self) -> Tensor<1> {
        self.fold_bias_of(self.gamma.val(), self.beta.val())
    }

    /// [`Self::fold_scale`] with the scale `gamma` in place of γ.
    fn fold_scale_of(&self, gamma: Tensor<1>) -> Tensor<1> {
        let var = self.running_var.value_sync();
        gamma / var.add_scalar(self.epsilon).sqrt()
    }

    /// [`Self::fold_bias`] with `gamma` and `beta` in place of γ and β.
    fn fold_bias_of(&self, gamma: Tensor<1>, beta: Tensor<1>) -> Tensor<1> {
        beta - self.running_mean.value_sync() * self.fold_scale_of(gamma)
    }
}

/// The parameter values one forward pass of a [`QLayer`] uses: the layer's own, or each tensor
/// fake-quantized on its own ([`QLayer::param_quantizer`]).
struct ParamValues {
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    /// γ and β, when the layer has batch norm.
    gamma_beta: Option<(Tensor<1>, Tensor<1>)>,
}

/// How a [`QLayer`] applies its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// 2-D convolution with square kernel, symmetric zero padding `kernel / 2`, stride and groups
    /// (groups = channels is a depthwise conv).
    Conv {
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Groups.
        groups: usize,
    },
    /// Fully connected: the input `[N, C, H, W]` is flattened in `C, H, W` order.
    Linear,
}

/// A conv or FC layer with optional folded batch norm, fused activation and quantized output.
///
/// Weights are stored `[out, in / groups, k, k]` (PyTorch layout; `k = 1` for FC). With batch norm
/// the layer has no bias of its own. Training follows the batch-norm folding of the TF/PyTorch QAT
/// implementations (dossier §6.6): the weight is fake-quantized **after** folding with the *moving*
/// variance, `w_q = FQ(γ w / σ_mv)`, so its quantization grid does not jitter from batch to batch;
/// before BN is frozen the conv output is rescaled by `σ_mv/γ` and normalized with batch statistics
/// (numerically ordinary batch norm in float); once frozen (and at evaluation) the layer computes
/// `conv(x, w_q) + β - γ μ_mv / σ_mv`, exactly what the integer engine runs.
#[derive(Module, Debug)]
pub struct QLayer {
    /// Unfolded master weights (never folded in place, dossier §6.6 pitfall).
    pub weight: Param<Tensor<4>>,
    /// Bias (only without batch norm).
    pub bias: Option<Param<Tensor<1>>>,
    /// Batch norm folded into this layer.
    pub bn: Option<BatchNormState>,
    /// Activation and output quantization.
    pub output: ActivationQuant,
    /// Conv or FC.
    #[module(skip)]
    pub kind: LayerKind,
    /// Weight format; `None` keeps the weights in float.
    #[module(skip)]
    pub weight_quantizer: Option<QuantizerRef>,
    /// Format of every parameter tensor taken on its own, before folding: weight, bias, and batch
    /// norm's γ and β, each with the range of its own values (the moving statistics stay float).
    /// This is how AdaptivFloat's reference code quantizes a model for retraining, the same
    /// quantization its weight-only PTQ applies; Jacob's QAT quantizes the folded weight instead
    /// ([`Self::weight_quantizer`]). `None`: parameters in float.
    #[module(skip)]
    pub param_quantizer: Option<QuantizerRef>,
    /// Quantize the weights as they are and keep batch norm as a per-channel scale and shift after
    /// the convolution, instead of quantizing the folded weights: Rusci et al.'s per-layer weights
    /// with integer channel normalization (PL+ICN), where one weight scale per layer must not carry
    /// every channel's `γ/σ`. Batch statistics normalize until batch norm is frozen, the moving ones
    /// after, as in the folded path. `false` (Jacob's folding) by default.
    #[module(skip)]
    pub unfolded_weights: bool,
    /// A learned range the weights are clamped to before weight quantization (Rusci et al.'s
    /// per-layer "PACT" weights); `None`: the quantizer sees the weights as they are.
    pub learned_range: Option<LearnedWeightRange>,
}

impl QLayer {
    /// A conv layer `c_in -> c_out` with He-normal weights drawn from `rng`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        groups: usize,
        batch_norm: bool,
        activation: Activation,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let kind = LayerKind::Conv {
            kernel,
            stride,
            groups,
        };
        Self::build(
            [c_out, c_in / groups, kernel, kernel],
            kind,
            batch_norm,
            activation,
            rng,
            device,
        )
    }

    /// A fully connected layer `d_in -> d_out` on its flattened input: with batch norm and no bias
    /// (a hidden layer that is folded or normalised like a convolution), or with a bias.
    pub fn linear(
        d_in: usize,
        d_out: usize,
        batch_norm: bool,
        activation: Activation,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        Self::build(
            [d_out, d_in, 1, 1],
            LayerKind::Linear,
            batch_norm,
            activation,
            rng,
            device,
        )
    }

    fn build(
        shape: [usize; 4],
        kind: LayerKind,
        batch_norm: bool,
        activation: Activation,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let fan_in = shape[1] * shape[2] * shape[3];
        let std = (2.0 / fan_in as f64).sqrt();
        let n = shape.iter().product();
        let w: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
        let weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, shape), device));
        let (bias, bn) = if batch_norm {
            (None, Some(BatchNormState::new(shape[0], device)))
        } else {
            (
                Some(Param::from_tensor(Tensor::zeros([shape[0]], device))),
                None,
            )
        };
        QLayer {
            weight,
            bias,
            bn,
            output: ActivationQuant::new(activation, device),
            kind,
            weight_quantizer: None,
            param_quantizer: None,
            unfolded_weights: false,
            learned_range: None,
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The weights the layer multiplies with in evaluation, before weight quantization:
    /// folded with the moving batch-norm statistics when there is batch norm.
    pub fn folded_weight(&self) -> Tensor<4> {
        self.fold_weight(&self.own_params())
    }

    /// The parameters as they are.
    fn own_params(&self) -> ParamValues {
        ParamValues {
            weight: self.weight.val(),
            bias: self.bias.as_ref().map(|b| b.val()),
            gamma_beta: self.bn.as_ref().map(|bn| (bn.gamma.val(), bn.beta.val())),
        }
    }

    /// The parameters a forward pass under `phase` uses: each fake-quantized with
    /// [`Self::param_quantizer`] when there is one and `phase` quantizes weights.
    fn params_for(&self, phase: &Phase) -> ParamValues {
        let own = self.own_params();
        let Some(q) = self
            .param_quantizer
            .as_ref()
            .filter(|_| phase.quantize_weights)
        else {
            return own;
        };
        let quantize = |t: Tensor<1>| {
            let range = tensor_range(&t);
            q.apply(t, range)
        };
        let range = tensor_range(&own.weight);
        ParamValues {
            weight: q.apply(own.weight, range),
            bias: own.bias.map(quantize),
            gamma_beta: own.gamma_beta.map(|(g, b)| (quantize(g), quantize(b))),
        }
    }

    /// `p`'s weight folded with the moving batch-norm statistics and `p`'s γ.
    fn fold_weight(&self, p: &ParamValues) -> Tensor<4> {
        match (&self.bn, &p.gamma_beta) {
            (Some(bn), Some((gamma, _))) => {
                let c = self.out_channels();
                p.weight.clone() * bn.fold_scale_of(gamma.clone()).reshape([c, 1, 1, 1])
            }
            _ => p.weight.clone(),
        }
    }

    /// The bias of the folded layer (zeros when the layer has neither bias nor batch norm).
    pub fn folded_bias(&self) -> Tensor<1> {
        match (&self.bn, &self.bias) {
            (Some(bn), _) => bn.fold_bias(),
            (None, Some(b)) => b.val(),
            (None, None) => Tensor::zeros([self.out_channels()], &self.weight.device()),
        }
    }

    /// The weights the weight quantizer sees in evaluation, which exporters quantize: folded with
    /// the moving batch-norm statistics (as they are, with [`Self::unfolded_weights`]), clamped to
    /// the learned range when there is one.
    pub fn weights_to_quantize(&self) -> Tensor<4> {
        self.clamp_to_learned_range(self.multiplied_weights(&self.own_params()))
    }

    /// The weights of `p` the layer multiplies with: folded with the moving batch-norm statistics,
    /// or as they are with [`Self::unfolded_weights`] (batch norm then stays after the product).
    fn multiplied_weights(&self, p: &ParamValues) -> Tensor<4> {
        match self.unfolded_weights {
            true => p.weight.clone(),
            false => self.fold_weight(p),
        }
    }

    /// `w` clamped to [`Self::learned_range`] when there is one.
    fn clamp_to_learned_range(&self, w: Tensor<4>) -> Tensor<4> {
        match &self.learned_range {
            Some(learned) => learned.clamp(w),
            None => w,
        }
    }

    /// The real range the weight quantizer sees: min/max of [`Self::weights_to_quantize`].
    pub fn weight_range(&self) -> (f64, f64) {
        tensor_range(&self.weights_to_quantize())
    }

    /// Applies weights `w` (this layer's shape) and an optional bias the way this layer does
    /// (conv options or FC flattening). Public so that the integer simulation of
    /// [`crate::export`] runs its integer-valued weights through the very same operation.
    pub fn apply_weight(&self, x: Tensor<4>, w: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
        match self.kind {
            LayerKind::Conv {
                kernel,
                stride,
                groups,
            } => {
                let spec = ConvSettings {
                    stride,
                    padding: kernel / 2,
                    groups,
                };
                conv2d(x, w, bias, spec)
            }
            LayerKind::Linear => {
                let [n, c, h, wd] = x.dims();
                let [out, d_in, _, _] = w.dims();
                let flat = x.reshape([n, c * h * wd]);
                let mut y = flat.matmul(w.reshape([out, d_in]).transpose());
                if let Some(b) = bias {
                    y = y + b.reshape([1, out]);
                }
                y.reshape([n, out, 1, 1])
            }
        }
    }

    /// Forward pass under `phase`.
    pub fn forward(&self, x: Tensor<4>, phase: &Phase) -> Tensor<4> {
        let p = self.params_for(phase);
        let w = self.multiplied_weights(&p);
        let w = match (&self.weight_quantizer, phase.quantize_weights) {
            (Some(q), true) => {
                let w = self.clamp_to_learned_range(w);
                let range = tensor_range(&w);
                q.apply(w, range)
            }
            _ => w,
        };
        let y = match (&self.bn, p.gamma_beta) {
            (Some(bn), Some((gamma, beta))) if phase.bn_batch_stats => {
                let y = self.apply_weight(x, w, None);
                // The folded weights carry `γ/σ_mv`, which the batch statistics divide out.
                let folded = (!self.unfolded_weights).then(|| bn.fold_scale_of(gamma.clone()));
                batch_norm_train(y, bn, folded, gamma, beta)
            }
            (Some(bn), Some((gamma, beta))) if self.unfolded_weights => {
                let y = self.apply_weight(x, w, None);
                let scale = bn.fold_scale_of(gamma.clone());
                fused::channel_affine(y, scale, bn.fold_bias_of(gamma, beta))
            }
            (Some(bn), Some((gamma, beta))) => {
                self.apply_weight(x, w, Some(bn.fold_bias_of(gamma, beta)))
            }
            _ => self.apply_weight(x, w, p.bias),
        };
        self.output.forward(y, phase)
    }
}

/// Batch norm with batch statistics on the output `y` of a conv, normalizing with the batch mean
/// and (biased) variance and updating the moving statistics (unbiased variance, as Burn and PyTorch
/// do). With folded weights `γ w / σ_mv` (`folded` their per-channel scale) it divides that scale
/// out to recover `conv(x, w_q')` first. `gamma` and `beta` are the γ and β of this pass (the
/// layer's own, or fake-quantized).
fn batch_norm_train(
    y: Tensor<4>,
    bn: &BatchNormState,
    folded: Option<Tensor<1>>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> Tensor<4> {
    let [n, _, h, w] = y.dims();
    // The statistics of z = y / scale, from those of y (per channel, so no full-size pass).
    let (mean_y, var_y) = fused::channel_moments(y.clone());
    let (mean, var) = match &folded {
        Some(scale) => (mean_y / scale.clone(), var_y / scale.clone().powi_scalar(2)),
        None => (mean_y, var_y),
    };
    let count = (n * h * w) as f64;
    let unbiased = var
        .clone()
        .detach()
        .mul_scalar(count / (count - 1.0).max(1.0));
    let m = bn.momentum;
    bn.running_mean.update(
        bn.running_mean.value_sync().mul_scalar(1.0 - m) + mean.clone().detach().mul_scalar(m),
    );
    bn.running_var
        .update(bn.running_var.value_sync().mul_scalar(1.0 - m) + unbiased.mul_scalar(m));
    let inv = gamma / var.add_scalar(bn.epsilon).sqrt();
    // (z - mean) · inv + β = y · (inv / scale) + (β - mean · inv)
    let shift = beta - mean * inv.clone();
    let factor = match folded {
        Some(scale) => inv / scale,
        None => inv,
    };
    fused::channel_affine(y, factor, shift)
}

/// A residual add (with fused activation) and its output stage (TF's "add_quant").
#[derive(Module, Debug)]
pub struct QAdd {
    /// Activation and output quantization of the sum.
    pub output: ActivationQuant,
}

impl QAdd {
    /// `act(a + b)`, observed and fake-quantized.
    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>, phase: &Phase) -> Tensor<4> {
        self.output.forward(a + b, phase)
    }
}

/// Global average pooling to `[N, C, 1, 1]`. The integer engine keeps the input's `(S, Z)` and
/// rounds the mean code (TFLite `AVERAGE_POOL`), so in training the mean is fake-quantized on the
/// grid of the stage that produced the input, with no observer of its own.
#[derive(Module, Debug)]
pub struct GlobalAvgPool {
    /// Keeps the derive happy about an otherwise empty module; always `true`.
    pub enabled: bool,
}

impl GlobalAvgPool {
    /// Mean over the spatial dimensions, re-quantized on `input_stage`'s grid when it quantizes.
    pub fn forward(
        &self,
        x: Tensor<4>,
        input_stage: Option<&ActivationQuant>,
        phase: &Phase,
    ) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let m = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c, 1, 1]);
        match input_stage {
            Some(stage) => stage.requantize(m, phase),
            None => m,
        }
    }
}

/// ImageNet's per-channel mean of pixels / 255, as torchvision normalizes with it.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation of pixels / 255, as torchvision normalizes with it.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Per-channel input normalization `(x - mean) / std`, the preprocessing the papers' ImageNet models
/// were trained with ([`IMAGENET_MEAN`], [`IMAGENET_STD`]), so
/// their published weights see the inputs they expect. Constant (not trained), kept in the model's
/// record like batch norm's statistics.
///
/// Its output is the first layer's input, which an integer deployment stores as uint8 codes: the
/// block therefore ends in an output stage (no activation) that quantizes the normalized values
/// once the net's activations are quantized, and the exporter turns the block into one 256-entry
/// table per channel ([`quant_core::engine::CodeTableLayer`]). Its range is observed like every
/// other stage's (the default `[-6, 6]` until the first batch covers normalized pixels).
#[derive(Module, Debug)]
pub struct InputNorm {
    /// Mean per channel.
    pub mean: RunningState<Tensor<1>>,
    /// `1 / std` per channel.
    pub inv_std: RunningState<Tensor<1>>,
    /// Quantization of the normalized values (float until the net's activations are quantized).
    pub output: ActivationQuant,
}

impl InputNorm {
    /// ImageNet's statistics as torchvision normalizes with them.
    pub fn imagenet(device: &Device) -> Self {
        let tensor = |v: [f32; 3]| {
            RunningState::new(Tensor::from_data(TensorData::new(v.to_vec(), [3]), device))
        };
        InputNorm {
            mean: tensor(IMAGENET_MEAN),
            inv_std: tensor(IMAGENET_STD.map(|s| 1.0 / s)),
            output: ActivationQuant::new(Activation::None, device),
        }
    }

    /// Forward pass on `[N, C, H, W]`: normalized, then the output stage.
    pub fn forward(&self, x: Tensor<4>, phase: &Phase) -> Tensor<4> {
        let c = x.dims()[1];
        let mean = self.mean.value_sync().reshape([1, c, 1, 1]);
        let inv_std = self.inv_std.value_sync().reshape([1, c, 1, 1]);
        self.output.forward((x - mean) * inv_std, phase)
    }
}

/// Max pooling with a square window (exact on uint8 codes, so it needs no quantizer of its own):
/// the proxies' windows of stride equal to their size, and the ImageNet ResNets' 3x3 window of
/// stride 2 with 1 pixel of padding (padded taps never win).
#[derive(Module, Debug)]
pub struct MaxPool {
    /// Window size.
    pub size: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on every side.
    pub padding: usize,
}

impl MaxPool {
    /// Windows of `size` with stride `size`, no padding.
    pub fn tiling(size: usize) -> Self {
        MaxPool {
            size,
            stride: size,
            padding: 0,
        }
    }

    /// Whether the windows tile the input (stride = size, no padding): the layout of the
    /// hand-written kernel.
    pub fn tiles(&self) -> bool {
        self.stride == self.size && self.padding == 0
    }

    /// Output side of an input side `n`.
    pub fn out_side(&self, n: usize) -> usize {
        (n + 2 * self.padding).saturating_sub(self.size) / self.stride.max(1) + 1
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.tiles() {
            return crate::fused::max_pool(x, self.size);
        }
        burn::tensor::module::max_pool2d(
            x,
            burn::tensor::ops::MaxPoolOptions::new([self.size; 2])
                .with_stride([self.stride; 2])
                .with_padding([self.padding; 2]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::AffineQuantizer;
    use crate::rng::Rng;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<u32> {
        let v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// A conv layer with batch norm whose γ (one negative), β and moving statistics are not the
    /// identity, with `unfolded_weights` set as asked.
    fn bn_conv(unfolded: bool, dev: &Device) -> QLayer {
        let mut l = QLayer::conv(3, 4, 3, 1, 1, true, Activation::None, &mut Rng::new(7), dev);
        let bn = l.bn.as_mut().unwrap();
        let t = |v: [f32; 4]| Tensor::<1>::from_floats(v, dev);
        bn.gamma = Param::from_tensor(t([1.5, -0.7, 0.3, 2.0]));
        bn.beta = Param::from_tensor(t([0.1, -0.2, 0.5, 0.0]));
        bn.running_mean.update(t([0.2, -0.1, 0.05, 0.4]));
        bn.running_var.update(t([0.5, 2.0, 0.1, 1.3]));
        l.unfolded_weights = unfolded;
        l
    }

    /// In float, quantizing nothing, the unfolded layer computes what the folded one does (folding
    /// is exact algebra), with batch statistics (same moving statistics after) and with the moving
    /// ones; with a weight quantizer it multiplies by the quantized unfolded weights.
    #[test]
    fn unfolded_weights_fold_nothing_but_batch_norm_into_a_channel_affine() {
        let dev = Device::flex();
        let x: Vec<f32> = (0..2 * 3 * 5 * 5)
            .map(|i| ((i * 37) % 23) as f32 * 0.1 - 1.0)
            .collect();
        let x = || Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 3, 5, 5]), &dev);
        let values = |t: Tensor<4>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len());
            for (i, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-4 * (1.0 + q.abs()),
                    "{what}[{i}]: {p} vs {q}"
                );
            }
        };
        let batch_stats = Phase {
            observe: false,
            bn_batch_stats: true,
            quantize_weights: false,
            quantize_activations: false,
        };
        let (folded, unfolded) = (bn_conv(false, &dev), bn_conv(true, &dev));
        for (phase, what) in [
            (&batch_stats, "batch statistics"),
            (&Phase::FLOAT_EVAL, "moving"),
        ] {
            let (a, b) = (folded.forward(x(), phase), unfolded.forward(x(), phase));
            close(&values(b), &values(a), what);
        }
        let moving = |l: &QLayer| {
            let bn = l.bn.as_ref().unwrap();
            let v = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            [
                v(bn.running_mean.value_sync()),
                v(bn.running_var.value_sync()),
            ]
            .concat()
        };
        close(&moving(&unfolded), &moving(&folded), "moving statistics");

        let q = QuantizerRef::new(AffineQuantizer::weights(4).unwrap());
        let mut quantized = bn_conv(true, &dev);
        quantized.weight_quantizer = Some(q.clone());
        let mut by_hand = bn_conv(true, &dev);
        let w = by_hand.weight.val();
        let range = tensor_range(&w);
        by_hand.weight = Param::from_tensor(q.apply(w, range));
        close(
            &values(quantized.forward(x(), &Phase::EVAL)),
            &values(by_hand.forward(x(), &Phase::FLOAT_EVAL)),
            "quantized unfolded weights",
        );
    }

    /// The fused output stage (one clip per activation) gives the separate operations' values,
    /// gradients and observer state, bit for bit, over two training steps (the second quantizes
    /// with the range the first observed), on every activation it fuses, kernels on and off.
    #[test]
    fn fused_output_stage_equals_activation_observe_and_fake_quant() {
        let dev = Device::flex().autodiff();
        let train = Phase {
            observe: true,
            bn_batch_stats: true,
            quantize_weights: true,
            quantize_activations: true,
        };
        let q = QuantizerRef::new(AffineQuantizer::activations(8).unwrap());
        for activation in [Activation::None, Activation::Relu, Activation::Relu6] {
            for kernels in [true, false] {
                let stage = || {
                    let mut s = ActivationQuant::new(activation, &dev);
                    s.quantizer = Some(q.clone());
                    s
                };
                let (fused, separate) = (stage(), stage());
                for step in 0..2 {
                    let mut v: Vec<f32> = (0..2 * 3 * 4 * 5)
                        .map(|i| ((i * 37 + step * 11) % 29) as f32 * 0.4 - 3.0)
                        .collect();
                    v[..4].copy_from_slice(&[0.0, -0.0, 6.0, 7.5]);
                    let run = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
                        let x =
                            Tensor::<4>::from_data(TensorData::new(v.clone(), [2, 3, 4, 5]), &dev)
                                .require_grad();
                        let y = f(x.clone());
                        let r: Vec<f32> = (0..v.len()).map(|i| (i % 5) as f32 - 1.5).collect();
                        let r = Tensor::<4>::from_data(TensorData::new(r, [2, 3, 4, 5]), &dev);
                        let grads = (y.clone() * r).sum().backward();
                        (host(y.inner()), host(x.grad(&grads).unwrap()))
                    };
                    let go = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| match kernels {
                        true => run(f),
                        false => crate::fast_path::without(|| run(f)),
                    };
                    let ours = go(&|x| fused.forward(x, &train));
                    let theirs = go(&|x| {
                        let y = match activation {
                            Activation::Relu => activation::relu(x),
                            Activation::Relu6 => fused::clip_ste(x, RELU6),
                            _ => x,
                        };
                        separate.observer.observe(&y);
                        q.apply(y, separate.range())
                    });
                    let what = format!("{activation:?}, kernels {kernels}, step {step}");
                    assert_eq!(ours, theirs, "{what}");
                    assert_eq!(fused.range(), separate.range(), "{what}: observer");
                }
            }
        }
    }
}
