//! F8Net quantization-aware training in Burn (dossier §4, §5): one model for the three methods.
//!
//! Tensors flow between layers in the fixed-point domain of the official code: a value `v` is stored
//! as `real / η_v` with `η_v = 2^FL_v α_v / (2^(8-s) - 1)` (PACT clip level α, fractional length FL of
//! the value's quantizer, `s = 1` for signed). A convolution folds batch norm and the ratio of clip
//! levels into its weights, `W_eff = (γ/σ_B) W η_src / η_units`, chooses the weight FL from
//! `std(W_eff)`, quantizes, and writes `conv(x_q, Q(W_eff)) + b_eff / η_units`: exactly the
//! i8 x i8 -> i32 accumulator of the integer engine. Activation FLs come from the batch standard
//! deviation (taken before the clamp that implements the ReLU), smoothed into an EMA buffer
//! (momentum 0.1, initial 6) whose rounded value is the FL at inference and inside η.
//!
//! The conventional INT8 baseline runs through the same graph with quant-train's Jacob affine
//! quantizer (per-tensor uint8 activations from EMA min/max ranges, narrow-range uint8 weights) and no
//! η folding; the full-precision baseline is the F8Net model without rounding (PACT-clipped,
//! BN-folded float, as the authors trained theirs).

use crate::graph::{Graph, InputCoding, Op, Operand};
use burn::module::Param;
use burn::prelude::*;
use quant_core::fixed8::FixedFormat;
use quant_core::fixed8::format::pooling_shift;
use quant_core::fixed8::rule::{FlRule, code_constant, fl_from_std};
use quant_core::fixed8::stats::threshold_constant;
use quant_core::qparams::{QParams, QRange};
use quant_train::conv::conv2d;
use quant_train::fused::{Clip, Grid, channel_moments, clip_ste};
use quant_train::quant::{AffineQuantizer, Quantizer, fake_quant_affine};

/// How tensors are quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// BN-folded float (no rounding): with `pact` the authors' PACT-clipped "full precision" baseline;
    /// without, a plain-ReLU float model (the start of tiny fine-tuning, like the pretrained models the
    /// paper fine-tunes; its only clip is the 8-bit range of the std-rule FL, at least 3.6 sigma).
    FullPrecision { pact: bool },
    /// F8Net fixed point, shifts only.
    F8Net(F8Options),
    /// Conventional INT8 with an INT32 requantization multiplier (Jacob et al. 2018).
    Int8Jacob,
}

/// F8Net switches (the ablations of dossier §10 P3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F8Options {
    /// FL rule for weights and activations; `None` is the fixed format W FL 7 / A FL 6.
    pub rule: Option<FlRule>,
    /// One weight FL per output channel instead of per layer.
    pub per_channel: bool,
    /// PACT clip levels folded into the weights (`false`: η = 2^FL, activations fixed point directly).
    pub pact: bool,
}

impl F8Options {
    /// The released configuration: std rule with the code's constants, per layer, PACT on.
    pub const DEFAULT: F8Options = F8Options {
        rule: Some(FlRule::StdCode),
        per_channel: false,
        pact: true,
    };

    /// Tiny fine-tuning's configuration (dossier §7): FLs by MSE grid search, per layer, PACT off.
    pub const TINY: F8Options = F8Options {
        rule: Some(FlRule::GridSearch),
        per_channel: false,
        pact: false,
    };
}

/// Initial PACT clip level (official `alpha` init).
pub const ALPHA_INIT: f32 = 8.0;
/// Initial FL buffer of activation quantizers (`input_format: [8, 6]`).
pub const FL_INIT: f64 = 6.0;
/// Momentum of the FL EMA and of batch norm's running statistics.
pub const MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;
/// EMA decay of Jacob's activation ranges (quant-train's default).
const JACOB_EMA: f64 = 0.99;

/// The trainable parameters.
#[derive(Module, Debug)]
pub struct Params {
    pub conv_w: Vec<Param<Tensor<4>>>,
    pub gamma: Vec<Param<Tensor<1>>>,
    pub beta: Vec<Param<Tensor<1>>>,
    pub alpha: Vec<Param<Tensor<1>>>,
    pub fc_w: Param<Tensor<2>>,
    pub fc_b: Param<Tensor<1>>,
}

/// Statistics that are not trained by gradient: BN running mean/var, activation FL EMAs, Jacob ranges.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub bn_mean: Vec<Vec<f32>>,
    pub bn_var: Vec<Vec<f32>>,
    pub fl_ema: Vec<f64>,
    pub range_ema: Vec<Option<(f64, f64)>>,
}

/// An F8Net proxy under training: graph, parameters, the statistics gradients do not train, and
/// the method (FP, F8Net, INT8) its forward pass simulates.
pub struct Network {
    pub graph: Graph,
    pub params: Params,
    pub state: State,
    pub method: Method,
}

/// He-normal conv weights and `N(0, 0.01)` classifier weights from `seed` (official init).
pub fn init_params(graph: &Graph, seed: u64, device: &Device) -> Params {
    let mut rng = quant_train::rng::Rng::new(seed);
    let mut normal =
        |n: usize, std: f64| -> Vec<f32> { (0..n).map(|_| (rng.normal() * std) as f32).collect() };
    let conv_w = graph
        .convs
        .iter()
        .map(|c| {
            let shape = [c.cout, c.cin / c.groups, c.k, c.k];
            let std = (2.0 / (c.k * c.k * c.cout) as f64).sqrt();
            let w = normal(shape.iter().product(), std);
            Param::from_tensor(Tensor::from_data(TensorData::new(w, shape), device))
        })
        .collect();
    let ones = |n| Param::from_tensor(Tensor::ones([n], device));
    let zeros = |n| Param::from_tensor(Tensor::zeros([n], device));
    let head = graph.values[graph.head].channels;
    Params {
        conv_w,
        gamma: graph.convs.iter().map(|c| ones(c.cout)).collect(),
        beta: graph.convs.iter().map(|c| zeros(c.cout)).collect(),
        alpha: (0..graph.alphas)
            .map(|_| Param::from_tensor(Tensor::from_floats([ALPHA_INIT], device)))
            .collect(),
        fc_w: Param::from_tensor(Tensor::from_data(
            TensorData::new(normal(graph.classes * head, 0.01), [graph.classes, head]),
            device,
        )),
        fc_b: zeros(graph.classes),
    }
}

impl State {
    pub fn new(graph: &Graph) -> Self {
        State {
            bn_mean: graph.convs.iter().map(|c| vec![0.0; c.cout]).collect(),
            bn_var: graph.convs.iter().map(|c| vec![1.0; c.cout]).collect(),
            fl_ema: vec![FL_INIT; graph.values.len()],
            range_ema: vec![None; graph.values.len()],
        }
    }
}

/// One tensor slot per graph value (`None` until computed).
pub(crate) type Values = Vec<Option<Tensor<4>>>;

/// What one forward pass does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pass {
    /// Batch statistics for BN and FLs, statistics updated.
    Train,
    /// Running statistics, rounded FLs, 32-bit biases: what the integer engine computes.
    Eval,
}

fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

fn host4(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// Fake-quantizes in the code domain: `q = clamp(x * scale, lo, hi)` rounded half to even with a
/// straight-through gradient (zero outside the clamp), returned as `q / scale`. `scale` broadcasts
/// (`2^FL`, per tensor or per channel). Without `round` only the clamp is applied.
fn fake_fixed<const D: usize>(
    x: Tensor<D>,
    scale: Tensor<D>,
    lo: f32,
    hi: f32,
    round: bool,
) -> Tensor<D> {
    let c = (x * scale.clone()).clamp(lo, hi);
    let q = if round {
        c.clone() + (c.clone().round() - c).detach()
    } else {
        c
    };
    q / scale
}

fn pow2(fl: i32) -> f32 {
    2f32.powi(fl)
}

/// The rounded FL of an EMA buffer, clamped to the format.
pub fn rounded_fl(ema: f64, signed: bool) -> u8 {
    ema.round()
        .clamp(0.0, f64::from(FixedFormat::fl_max(signed))) as u8
}

impl Network {
    pub fn new(graph: Graph, method: Method, seed: u64, device: &Device) -> Self {
        let params = init_params(&graph, seed, device);
        let state = State::new(&graph);
        Network {
            graph,
            params,
            state,
            method,
        }
    }

    fn f8(&self) -> Option<F8Options> {
        match self.method {
            Method::F8Net(o) => Some(o),
            Method::FullPrecision { pact } => Some(F8Options {
                rule: Some(FlRule::StdCode),
                per_channel: false,
                pact,
            }),
            Method::Int8Jacob => None,
        }
    }

    /// Whether PACT clip levels are folded into η (F8Net and FP models with PACT on).
    pub fn pact(&self) -> bool {
        self.f8().is_some_and(|o| o.pact)
    }

    fn rounds(&self) -> bool {
        !matches!(self.method, Method::FullPrecision { .. })
    }

    /// The FL a value's quantizer uses at inference and inside η (a max pool's output keeps its
    /// input's; raw pixels have FL 8).
    pub fn value_fl(&self, v: usize) -> i32 {
        let v = self.graph.format_source(v);
        if v == 0 && self.graph.input == InputCoding::Pixels {
            return 8;
        }
        i32::from(rounded_fl(
            self.state.fl_ema[v],
            self.graph.values[v].signed,
        ))
    }

    /// `η_v` as a one-element tensor (carries the gradient to α); 1 for the input and without PACT
    /// (official `no_clipping`: tensors flow in real units and are fixed-point quantized directly).
    pub fn eta(&self, v: usize, device: &Device) -> Tensor<1> {
        let spec = &self.graph.values[v];
        let Some(o) = self.f8() else {
            return Tensor::ones([1], device);
        };
        match spec.alpha {
            None => Tensor::ones([1], device),
            Some(a) if o.pact => {
                let q = if spec.signed { 127.0 } else { 255.0 };
                self.params.alpha[a]
                    .val()
                    .mul_scalar(pow2(self.value_fl(v)) / q)
            }
            Some(_) => Tensor::ones([1], device),
        }
    }

    /// FL of a tensor under the F8Net options (fixed format: W 7, A 6).
    fn choose_fl(&self, values: &[f32], signed: bool, weight: bool) -> u8 {
        match self.f8().and_then(|o| o.rule) {
            Some(rule) => rule.choose(values, signed),
            None => {
                let fl = if weight { 7 } else { 6 };
                fl.min(FixedFormat::fl_max(signed))
            }
        }
    }

    /// FL of an activation batch. The std rules reduce on the device (two scalars cross to the host);
    /// the rules that need every value copy the tensor.
    fn activation_fl(&self, x: Tensor<4>, signed: bool) -> u8 {
        match self.f8().and_then(|o| o.rule) {
            Some(rule @ (FlRule::StdCode | FlRule::StdExact)) => {
                let n = x.dims().iter().product::<usize>() as f64;
                let flat = x.reshape([-1]);
                let mean = f64::from(flat.clone().mean().into_scalar::<f32>());
                let sq = f64::from(flat.powi_scalar(2).mean().into_scalar::<f32>());
                let std = ((sq - mean * mean).max(0.0) * n / (n - 1.0).max(1.0)).sqrt();
                let c = match rule {
                    FlRule::StdExact => threshold_constant(signed),
                    _ => code_constant(signed),
                };
                fl_from_std(std, signed, c)
            }
            _ => self.choose_fl(&host4(x), signed, false),
        }
    }

    /// Quantizes value `v` (raw, in its own units) for its consumers; updates its statistics in
    /// training.
    fn quantize_value(&mut self, v: usize, raw: Tensor<4>, pass: Pass) -> Tensor<4> {
        let signed = self.graph.values[v].signed;
        self.quantize_with(v, raw, pass, signed)
    }

    /// [`Self::quantize_value`] with the signedness given: the INT8 baseline also quantizes a raw
    /// residual branch (signed: no ReLU before the addition) under its own value's range.
    fn quantize_with(&mut self, v: usize, raw: Tensor<4>, pass: Pass, signed: bool) -> Tensor<4> {
        if v == 0 && self.graph.input == InputCoding::Pixels {
            return raw;
        }
        match self.f8() {
            Some(_) => {
                let fl = match pass {
                    Pass::Train => {
                        let fl = self.activation_fl(raw.clone().detach(), signed);
                        self.state.fl_ema[v] =
                            MOMENTUM * f64::from(fl) + (1.0 - MOMENTUM) * self.state.fl_ema[v];
                        i32::from(fl)
                    }
                    Pass::Eval => self.value_fl(v),
                };
                let (lo, hi) = if signed {
                    (-127.0, 127.0)
                } else {
                    (0.0, 255.0)
                };
                let scale = pow2(fl);
                let grid = if self.rounds() {
                    Grid::Fixed { scale }
                } else {
                    Grid::None
                };
                // (x·2^FL) clamped to the codes equals x clamped to codes/2^FL: powers of two
                // scale exactly.
                let clip = Clip {
                    lo: lo / scale,
                    hi: hi / scale,
                    grid,
                };
                clip_ste(raw, clip)
            }
            None => {
                let y = if signed {
                    raw
                } else {
                    let relu = Clip {
                        lo: 0.0,
                        hi: f32::INFINITY,
                        grid: Grid::None,
                    };
                    clip_ste(raw, relu)
                };
                if pass == Pass::Train {
                    let (lo, hi) = quant_train::quant::tensor_range(&y);
                    let r = self.state.range_ema[v].map_or((lo, hi), |(a, b)| {
                        (
                            JACOB_EMA * a + (1.0 - JACOB_EMA) * lo,
                            JACOB_EMA * b + (1.0 - JACOB_EMA) * hi,
                        )
                    });
                    self.state.range_ema[v] = Some(r);
                }
                fake_quant_affine(y, &self.int8_params(v, signed))
            }
        }
    }

    /// The INT8 baseline's uint8 parameters of value `v`: `(1/256, 0)` for the input pixels, else
    /// Jacob's `(S, Z)` of its EMA range (a default range before the first training batch).
    pub fn int8_params(&self, v: usize, signed: bool) -> QParams {
        let v = self.graph.format_source(v);
        if v == 0 && self.graph.input == InputCoding::Pixels {
            return QParams {
                scale: 1.0 / 256.0,
                zero_point: 0,
                range: ACTIVATIONS.range,
            };
        }
        let range = self.state.range_ema[v].unwrap_or((if signed { -6.0 } else { 0.0 }, 6.0));
        affine_params(&ACTIVATIONS, range)
    }

    /// Batch-norm scale and shift `(γ/σ, β - γμ/σ)` of conv `i`: from the batch statistics of the
    /// unquantized convolution of the real input in training (running statistics updated), from the
    /// running statistics otherwise.
    fn bn_fold(&mut self, i: usize, real_in: Option<Tensor<4>>) -> (Tensor<1>, Tensor<1>) {
        let c = &self.graph.convs[i];
        let device = self.params.conv_w[i].val().device();
        let gamma = self.params.gamma[i].val();
        let beta = self.params.beta[i].val();
        let (mean, var) = match real_in {
            Some(x) => {
                let y = conv2d(x, self.params.conv_w[i].val(), None, c.settings());
                let [n, _, h, w] = y.dims();
                let (mean, var) = channel_moments(y);
                let count = (n * h * w) as f32;
                let m = MOMENTUM as f32;
                let (hm, hv) = (host(mean.clone().detach()), host(var.clone().detach()));
                for (r, b) in self.state.bn_mean[i].iter_mut().zip(&hm) {
                    *r = (1.0 - m) * *r + m * b;
                }
                for (r, b) in self.state.bn_var[i].iter_mut().zip(&hv) {
                    *r = (1.0 - m) * *r + m * b * count / (count - 1.0).max(1.0);
                }
                (mean, var)
            }
            None => (
                Tensor::from_data(
                    TensorData::new(self.state.bn_mean[i].clone(), [c.cout]),
                    &device,
                ),
                Tensor::from_data(
                    TensorData::new(self.state.bn_var[i].clone(), [c.cout]),
                    &device,
                ),
            ),
        };
        let scale = gamma / var.add_scalar(BN_EPS).sqrt();
        let shift = beta - mean * scale.clone();
        (scale, shift)
    }

    /// Effective weight (`[cout, cin/g, k, k]`, in `η_src / η_units` units) and bias (in `η_units`
    /// units) of conv `i`.
    pub fn effective(&mut self, i: usize, real_in: Option<Tensor<4>>) -> (Tensor<4>, Tensor<1>) {
        let (src, units, cout) = {
            let c = &self.graph.convs[i];
            (c.src, c.units, c.cout)
        };
        let (scale, shift) = self.bn_fold(i, real_in);
        let device = scale.device();
        let ratio = self.eta(src, &device) / self.eta(units, &device);
        let w = self.params.conv_w[i].val()
            * (scale * ratio.clone().expand([cout])).reshape([cout, 1, 1, 1]);
        let b = shift / self.eta(units, &device).expand([cout]);
        (w, b)
    }

    /// Effective classifier weight `fc_w η_head` as `[classes, c, 1, 1]` and its (per-layer) FLs;
    /// for F8Net's pooling over a map of no power of two pixels also times `2^shift / pixels`
    /// (the official `pool_fusing`, there folded into the last convolution, here into the
    /// classifier: the ResNets' last value is a residual sum, whose shortcut has no weights).
    pub fn classifier_effective(&self) -> (Tensor<4>, Vec<u8>) {
        let c = self.graph.values[self.graph.head].channels;
        let device = self.params.fc_w.val().device();
        let pixels = self.graph.sides()[self.graph.head].pow(2);
        let fold = match self.f8() {
            Some(_) => pow2(pooling_shift(pixels) as i32) / pixels as f32,
            None => 1.0,
        };
        let eta = self.eta(self.graph.head, &device).mul_scalar(fold);
        let w =
            (self.params.fc_w.val() * eta.reshape([1, 1])).reshape([self.graph.classes, c, 1, 1]);
        let fls = self.fls_of(&w, false);
        (w, fls)
    }

    /// Weight FLs of a convolution's effective weight (per channel when the options say so).
    pub fn weight_fls(&self, w: &Tensor<4>) -> Vec<u8> {
        self.fls_of(w, self.f8().is_some_and(|o| o.per_channel))
    }

    /// One FL per output channel of `w` (all equal unless `per_channel`).
    fn fls_of(&self, w: &Tensor<4>, per_channel: bool) -> Vec<u8> {
        let [cout, ..] = w.dims();
        let data = host4(w.clone().detach());
        let per = data.len() / cout.max(1);
        if per_channel {
            data.chunks(per)
                .map(|ch| self.choose_fl(ch, true, true))
                .collect()
        } else {
            vec![self.choose_fl(&data, true, true); cout]
        }
    }

    /// The quantized weight, and for the INT8 baseline its `(S, Z)` (the bias's accumulator scale
    /// is `S_in S_w`).
    fn quantize_weight(&self, w: Tensor<4>, fls: &[u8]) -> (Tensor<4>, Option<QParams>) {
        let dims = w.dims();
        let device = w.device();
        match self.f8() {
            Some(_) => {
                let scales: Vec<f32> = fls.iter().map(|&f| pow2(i32::from(f))).collect();
                let s = Tensor::<1>::from_data(TensorData::new(scales, [dims[0]]), &device)
                    .reshape([dims[0], 1, 1, 1])
                    .expand(dims);
                (fake_fixed(w, s, -127.0, 127.0, self.rounds()), None)
            }
            None => {
                let p = int8_weight_params(&w);
                (fake_quant_affine(w, &p), Some(p))
            }
        }
    }

    /// The bias a layer adds: the float bias in training; in evaluation the 32-bit one the
    /// integer engine stores, at the accumulator FL (F8Net) or at the INT8 baseline's accumulator
    /// scale `S_in S_w` (`int8_input` the input's parameters, `int8_weights` the weights').
    fn layer_bias(
        &self,
        b: Tensor<1>,
        pass: Pass,
        fl_acc: &[i32],
        int8_input: QParams,
        int8_weights: Option<QParams>,
    ) -> Tensor<1> {
        match (pass, int8_weights) {
            (Pass::Train, _) => b,
            (Pass::Eval, None) => self.quantize_bias(b, fl_acc),
            (Pass::Eval, Some(w)) => {
                let s = (int8_input.scale * w.scale) as f32;
                b.div_scalar(s).round().mul_scalar(s)
            }
        }
    }

    /// 32-bit bias at the accumulator FL (inference only; training keeps float biases).
    fn quantize_bias(&self, b: Tensor<1>, fl_acc: &[i32]) -> Tensor<1> {
        if !self.rounds() {
            return b;
        }
        let device = b.device();
        let s: Vec<f32> = fl_acc.iter().map(|&f| pow2(f)).collect();
        let s = Tensor::<1>::from_data(TensorData::new(s, [fl_acc.len()]), &device);
        (b * s.clone()).round() / s
    }

    /// Logits of a batch of pixels/256 (`[N, 1, 28, 28]`), in the fixed-point units of the classifier.
    pub fn forward(&mut self, input: Tensor<4>, pass: Pass) -> Tensor<2> {
        let (mut raw, mut quant) = self.graph_values(input, pass);
        self.head(&mut raw, &mut quant, pass)
    }

    /// Every value of the graph for `input`: the raw tensors (convolution accumulators, sums) and
    /// the 8-bit quantized ones computed so far (each in its consumers' units).
    pub(crate) fn graph_values(&mut self, input: Tensor<4>, pass: Pass) -> (Values, Values) {
        let n_values = self.graph.values.len();
        let mut raw: Vec<Option<Tensor<4>>> = vec![None; n_values];
        let mut quant: Vec<Option<Tensor<4>>> = vec![None; n_values];
        raw[0] = Some(input);
        let ops = self.graph.ops.clone();
        for op in &ops {
            match op {
                Op::Conv(i) => {
                    let c = self.graph.convs[*i].clone();
                    let xq = self.quantized(c.src, &mut raw, &mut quant, pass);
                    let real_in = match pass {
                        Pass::Train => {
                            Some(xq.clone() * self.eta(c.src, &xq.device()).reshape([1, 1, 1, 1]))
                        }
                        Pass::Eval => None,
                    };
                    let (w, b) = self.effective(*i, real_in);
                    let fls = self.weight_fls(&w);
                    let (wq, int8_w) = self.quantize_weight(w, &fls);
                    let fl_acc: Vec<i32> = fls
                        .iter()
                        .map(|&f| i32::from(f) + self.value_fl(c.src))
                        .collect();
                    let s_in = self.int8_params(c.src, self.graph.values[c.src].signed);
                    let b = self.layer_bias(b, pass, &fl_acc, s_in, int8_w);
                    let y = conv2d(xq, wq, Some(b), c.settings());
                    raw[c.dst] = Some(y);
                }
                Op::Add { a, b, dst } => {
                    let ta = self.operand(*a, *dst, &mut raw, &mut quant, pass);
                    let tb = self.operand(*b, *dst, &mut raw, &mut quant, pass);
                    raw[*dst] = Some(ta + tb);
                }
                Op::MaxPool {
                    src,
                    dst,
                    k,
                    stride,
                    pad,
                } => {
                    let xq = self.quantized(*src, &mut raw, &mut quant, pass);
                    let pool = quant_train::layers::MaxPool {
                        size: *k,
                        stride: *stride,
                        padding: *pad,
                    };
                    quant[*dst] = Some(pool.forward(xq));
                }
            }
        }
        (raw, quant)
    }

    /// The classifier head over the graph's values: global average pool of the quantized head
    /// value, then the fully connected layer.
    fn head(
        &mut self,
        raw: &mut [Option<Tensor<4>>],
        quant: &mut [Option<Tensor<4>>],
        pass: Pass,
    ) -> Tensor<2> {
        let head = self.graph.head;
        let xq = self.quantized(head, raw, quant, pass);
        let [n, c, h, w] = xq.dims();
        let flat = xq.reshape([n, c, h * w]);
        let head_int8 = self.int8_params(head, self.graph.values[head].signed);
        // F8Net's pooling is the engine's: the sum shifted right by `shift` (the mean scaled by
        // h w / 2^shift where the map is no power of two, undone in the classifier's weights).
        let shift = pooling_shift(h * w) as i32;
        let pooled = match self.f8() {
            Some(_) if self.rounds() => {
                let fl = self.value_fl(head);
                let m = flat.sum_dim(2).reshape([n, c]).mul_scalar(pow2(fl - shift));
                (m.clone() + (m.clone().round() - m).detach()).div_scalar(pow2(fl))
            }
            Some(_) => flat.sum_dim(2).reshape([n, c]).mul_scalar(pow2(-shift)),
            None => {
                let mean = flat.mean_dim(2).reshape([n, c]);
                // The engine's average pool: the mean code rounded half up (TFLite's
                // `(sum + n/2) / n` on the non-negative codes), same (S, Z) as its input.
                let (s, z) = (head_int8.scale as f32, head_int8.zero_point as f32);
                let code = mean.div_scalar(s).add_scalar(z);
                let rounded = code.clone() + (code.clone().add_scalar(0.5).floor() - code).detach();
                rounded.sub_scalar(z).mul_scalar(s)
            }
        };
        let (w4, fl) = self.classifier_effective();
        let (wq, int8_w) = self.quantize_weight(w4, &fl);
        let wq = wq.reshape([self.graph.classes, c]);
        let fl_acc = vec![i32::from(fl[0]) + self.value_fl(head); self.graph.classes];
        let b = self.layer_bias(self.params.fc_b.val(), pass, &fl_acc, head_int8, int8_w);
        pooled.matmul(wq.transpose()) + b.reshape([1, self.graph.classes])
    }

    pub(crate) fn quantized(
        &mut self,
        v: usize,
        raw: &mut [Option<Tensor<4>>],
        quant: &mut [Option<Tensor<4>>],
        pass: Pass,
    ) -> Tensor<4> {
        if let Some(q) = &quant[v] {
            return q.clone();
        }
        let r = raw[v]
            .clone()
            .unwrap_or_else(|| unreachable!("graph order: value {v} used before it is written"));
        let q = self.quantize_value(v, r, pass);
        quant[v] = Some(q.clone());
        q
    }

    fn operand(
        &mut self,
        o: Operand,
        dst: usize,
        raw: &mut [Option<Tensor<4>>],
        quant: &mut [Option<Tensor<4>>],
        pass: Pass,
    ) -> Tensor<4> {
        match o {
            // The INT8 baseline adds 8-bit tensors (TFLite's ADD): a raw branch is quantized first,
            // signed, under its own range.
            Operand::Raw(v) if self.f8().is_none() => {
                if let Some(q) = &quant[v] {
                    return q.clone();
                }
                let r = raw[v]
                    .clone()
                    .unwrap_or_else(|| unreachable!("raw branch {v} missing"));
                let q = self.quantize_with(v, r, pass, true);
                quant[v] = Some(q.clone());
                q
            }
            Operand::Raw(v) => raw[v]
                .clone()
                .unwrap_or_else(|| unreachable!("raw branch {v} missing")),
            Operand::Quantized(v) => {
                let q = self.quantized(v, raw, quant, pass);
                let device = q.device();
                // same clip level: η_v / η_dst is the power of two 2^(FL_v - FL_dst)
                let ratio = self.eta(v, &device) / self.eta(dst, &device);
                q * ratio.reshape([1, 1, 1, 1])
            }
        }
    }
}

/// Jacob's uint8 activation format (full range).
const ACTIVATIONS: AffineQuantizer = AffineQuantizer {
    range: QRange { qmin: 0, qmax: 255 },
};

/// Jacob's uint8 weight format (narrow range `[1, 255]`, the paper's "never -128").
const WEIGHTS: AffineQuantizer = AffineQuantizer {
    range: QRange { qmin: 1, qmax: 255 },
};

/// The `(S, Z)` of `format` for the real `range`.
fn affine_params(format: &AffineQuantizer, range: (f64, f64)) -> QParams {
    format
        .affine(range)
        .unwrap_or_else(|| unreachable!("the affine format has affine parameters"))
}

/// The INT8 baseline's per-layer weight parameters: the min/max of the effective weight.
fn int8_weight_params<const D: usize>(w: &Tensor<D>) -> QParams {
    affine_params(&WEIGHTS, quant_train::quant::tensor_range(w))
}
