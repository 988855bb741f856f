//! Mixed-precision quantization-aware training of the proxy TinyMbV1 on the shared Burn stack
//! (`quant-train`): the model with the exact 28-layer topology of [`crate::mobilenet`], PACT
//! activations with the official floor rounding, per-layer or per-channel asymmetric min/max weights
//! at each layer's assigned bits, and the dossier's scaled fine-tuning schedule (§10.1).

use crate::memory::{BitWidths, Fold, Granularity};
use crate::mobilenet::{LayerKind as ShapeKind, MobileNetV1};
use burn::module::Param;
use burn::prelude::*;
use quant_core::qparams::{QParams, QRange};
use quant_train::layers::{Activation, GlobalAvgPool, Phase, QLayer};
use quant_train::models::{Block, Net};
use quant_train::quant::{Quantizer, QuantizerRef};
use quant_train::rng::Rng;
use repro::datasets::ImageSet;

/// Builds the float TinyMbV1 for `model` (ReLU6 activations, BN after every conv, bias-free convs,
/// FC with bias after the global average pool). Padding is symmetric `k/2`, which gives the TF-SAME
/// output sizes of the memory model for every proxy resolution.
pub fn build_net(model: &MobileNetV1, seed: u64, device: &Device) -> Net {
    let mut rng = Rng::new(seed);
    let mut blocks = Vec::new();
    let layers = model.layers();
    for l in &layers {
        let act = Activation::Relu6;
        let layer = match l.kind {
            ShapeKind::Conv0 => {
                QLayer::conv(l.cin, l.cout, 3, l.stride, 1, true, act, &mut rng, device)
            }
            ShapeKind::Depthwise => QLayer::conv(
                l.cin, l.cout, 3, l.stride, l.cin, true, act, &mut rng, device,
            ),
            ShapeKind::Pointwise => {
                QLayer::conv(l.cin, l.cout, 1, 1, 1, true, act, &mut rng, device)
            }
            ShapeKind::Fc => {
                blocks.push(Block::GlobalAvgPool(GlobalAvgPool { enabled: true }));
                QLayer::linear(l.cin, l.cout, Activation::None, &mut rng, device)
            }
        };
        blocks.push(Block::Layer(layer));
    }
    Net {
        blocks,
        classes: model.classes,
    }
}

/// PACT activation quantizer with the official floor rounding (dossier §4):
/// `y = floor(clamp(x, 0, α)·(2^Q - 1)/α)·α/(2^Q - 1)`, straight-through inside `(0, α)` (the
/// clamp and α's gradient come from the PACT activation in front of it).
#[derive(Debug, Clone, Copy)]
pub struct PactFloor {
    pub bits: u32,
}

impl Quantizer for PactFloor {
    fn label(&self) -> String {
        format!("pact-floor-u{}", self.bits)
    }

    fn fake_quant(&self, x: Tensor<1>, range: (f64, f64)) -> Tensor<1> {
        let levels = f64::from((1u32 << self.bits) - 1);
        let alpha = range.1.max(1e-6);
        let q = x
            .clone()
            .clamp(0.0, alpha as f32)
            .mul_scalar((levels / alpha) as f32)
            .floor()
            .mul_scalar((alpha / levels) as f32);
        x.clone() + (q - x).detach()
    }
}

/// Asymmetric min/max weight quantization on the full unsigned range `[0, 2^Q - 1]`, per layer or per
/// output channel, computed on the host with quant-core's [`QParams::choose`] so that the exported
/// integer weights are exactly the codes the training graph used.
#[derive(Debug, Clone, Copy)]
pub struct MinMaxWeights {
    pub bits: u32,
    /// Output channels when per-channel; `None` for one range per layer.
    pub channels: Option<usize>,
}

impl MinMaxWeights {
    /// `(S, Z)` of every channel (one entry per layer when per-layer) of the flat weights `w`
    /// (output channel slowest, the Burn layout).
    pub fn params(&self, w: &[f32]) -> Vec<QParams> {
        let range = QRange::unsigned(self.bits, false).expect("bits are 2, 4 or 8");
        let rows = self.channels.unwrap_or(1).max(1);
        w.chunks(w.len().div_ceil(rows).max(1))
            .map(|row| {
                let (lo, hi) = row
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                QParams::choose(f64::from(lo), f64::from(hi), range).unwrap_or(QParams {
                    scale: 1.0,
                    zero_point: 0,
                    range,
                })
            })
            .collect()
    }

    /// Unsigned codes and per-row parameters of `w`.
    pub fn quantize(&self, w: &[f32]) -> (Vec<u8>, Vec<QParams>) {
        let params = self.params(w);
        let per_row = w.len() / params.len();
        let codes = w
            .iter()
            .enumerate()
            .map(|(i, &v)| params[i / per_row].quantize(f64::from(v)).unwrap_or(0) as u8)
            .collect();
        (codes, params)
    }
}

impl Quantizer for MinMaxWeights {
    fn label(&self) -> String {
        let g = if self.channels.is_some() { "pc" } else { "pl" };
        format!("minmax-{g}-u{}", self.bits)
    }

    fn fake_quant(&self, x: Tensor<1>, _range: (f64, f64)) -> Tensor<1> {
        let host: Vec<f32> = x
            .clone()
            .detach()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        let (codes, params) = self.quantize(&host);
        let per_row = host.len() / params.len().max(1);
        let deq: Vec<f32> = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| params[i / per_row].dequantize(i32::from(c)) as f32)
            .collect();
        let q = Tensor::from_data(TensorData::new(deq, [host.len()]), &x.device());
        x.clone() + (q - x).detach()
    }
}

/// Largest activation of every counted layer but the last on a calibration batch `x` (float view):
/// the initial PACT clip per layer.
///
/// The official code starts α at 6 (ReLU6's clip) and fine-tunes for 10 ImageNet epochs, ~10^5 Adam
/// steps, enough for α to move; the proxy's few hundred steps at lr 1e-4 barely move it, and a
/// 4- or 2-bit floor quantizer over `[0, 6]` then wipes out the small activations of a thin network.
/// Starting from the observed range keeps the schedule's spirit on the short proxy (README).
pub fn calibrate_alphas(net: &Net, x: Tensor<4>) -> Vec<f64> {
    let mut alphas = Vec::new();
    let mut last = None;
    let mut x = x;
    for b in &net.blocks {
        x = match b {
            Block::Layer(l) => {
                let y = l.forward(x, &Phase::FLOAT_EVAL);
                let max = f64::from(y.clone().max().into_scalar::<f32>());
                alphas.push(max.clamp(1e-3, 6.0));
                last = Some(&l.output);
                y
            }
            Block::GlobalAvgPool(g) => g.forward(x, last, &Phase::FLOAT_EVAL),
            Block::MaxPool(p) => p.forward(x),
            Block::Residual(_) | Block::InputNorm(_) => {
                unreachable!("TinyMbV1 has no residual blocks and no input normalization")
            }
        };
    }
    alphas.pop();
    alphas
}

/// The QAT version of `float` for `bits`, `granularity` and `folds`: PACT clips calibrated on the
/// first 256 images of `train_set` ([`calibrate_alphas`]), then [`make_qat`].
pub fn qat_net(
    float: &Net,
    train_set: &ImageSet,
    bits: &BitWidths,
    (granularity, folds): (Granularity, &[Fold]),
    device: &Device,
) -> Net {
    let mut net = float.clone();
    let calibration: Vec<usize> = (0..train_set.len().min(256)).collect();
    let (x, _) = quant_train::data::batch(train_set, &calibration, device);
    let alphas = calibrate_alphas(&net, x);
    make_qat(&mut net, bits, (granularity, folds), &alphas, device);
    net
}

/// Turns a float net into its QAT version for the given bits: PACT (α from [`calibrate_alphas`]) replaces ReLU6 with
/// floor fake quantization at each layer's output bits, weights get min/max quantizers at each
/// layer's weight bits. The average pool re-quantizes its mean on the last pointwise layer's grid
/// (floor, like the integer pool), and the FC's output (the logits) stays wide.
///
/// Under per-layer weights, the layers `folds` marks ICN quantize their unfolded weights and keep
/// batch norm for the ICN stage (the official PL+ICN); the others quantize the folded weights (FB).
/// Per-channel weights are always folded: a scale per channel already carries `γ/σ`, so folding is
/// exactly ICN there.
pub fn make_qat(
    net: &mut Net,
    bits: &BitWidths,
    (granularity, folds): (Granularity, &[Fold]),
    alphas: &[f64],
    device: &Device,
) {
    let n = net.layers().len();
    assert_eq!(folds.len(), n, "one fold per layer");
    net.map_layers(|i, layer| {
        layer.unfolded_weights =
            granularity == Granularity::PerLayer && folds[i] == Fold::Icn && layer.bn.is_some();
        let channels = match granularity {
            Granularity::PerLayer => None,
            Granularity::PerChannel => Some(layer.out_channels()),
        };
        layer.weight_quantizer = Some(QuantizerRef::new(MinMaxWeights {
            bits: u32::from(bits.weights[i]),
            channels,
        }));
        if i + 1 < n {
            layer.output.activation = Activation::Pact(alphas[i]);
            let alpha = Tensor::from_floats([alphas[i] as f32], device);
            layer.output.pact_alpha = Some(Param::from_tensor(alpha));
            layer.output.quantizer = Some(QuantizerRef::new(PactFloor {
                bits: u32::from(bits.a_out(i)),
            }));
        }
    });
}
