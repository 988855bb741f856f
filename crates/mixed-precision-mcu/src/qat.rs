//! Mixed-precision quantization-aware training of a chain ([`crate::chain`]: the proxy TinyMbV1, an
//! MLP) on the shared Burn stack (`quant-train`): the net with the exact topology of its layers, PACT
//! activations with the official floor rounding, per-layer or per-channel asymmetric min/max weights
//! at each layer's assigned bits, and the dossier's scaled fine-tuning schedule (§10.1).

use crate::memory::{BitWidths, Fold, Granularity};
use crate::mobilenet::{LayerKind as ShapeKind, LayerShape};
use burn::module::Param;
use burn::prelude::*;
use quant_core::qparams::{QParams, QRange};
use quant_train::layers::{Activation, GlobalAvgPool, Phase, QLayer};
use quant_train::models::{Block, Net};
use quant_train::quant::{Quantizer, QuantizerRef};
use quant_train::rng::Rng;
use quant_train::weight_range::LearnedWeightRange;
use repro::datasets::ImageSet;

/// Builds the float net of `layers` (ReLU6 activations, BN after every conv and dense layer,
/// bias-free convs, FC with bias after the global average pool). Padding is symmetric `k/2`, which
/// gives the TF-SAME output sizes of the memory model for every proxy resolution; a dense layer
/// flattens its input map (channel-major, the order its deployed convolution reads).
pub fn build_net(layers: &[LayerShape], seed: u64, device: &Device) -> Net {
    let mut rng = Rng::new(seed);
    let mut blocks = Vec::new();
    for l in layers {
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
            ShapeKind::Dense => {
                QLayer::linear(l.in_elems as usize, l.cout, true, act, &mut rng, device)
            }
            ShapeKind::Fc => {
                blocks.push(Block::GlobalAvgPool(GlobalAvgPool { enabled: true }));
                QLayer::linear(l.cin, l.cout, false, Activation::None, &mut rng, device)
            }
        };
        blocks.push(Block::Layer(layer));
    }
    Net {
        blocks,
        classes: layers.last().map_or(0, |l| l.cout),
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

/// L2 decay of the learned per-layer weight ranges: the official optimizer gives their parameter
/// group a weight decay of 5e-4.
pub const RANGE_DECAY: f64 = 5e-4;

/// Where the learned range of a per-layer weight tensor `w` (the values the quantizer sees) starts,
/// as the official code initializes it: folded weights (FB) at their min/max; unfolded weights
/// (ICN, where batch norm's scale stays outside) on the `bits`-bit grid around their mean that fits
/// them best in least squares, found by ten rounds of: step `γ`, range `mean ± γ (2^bits - 1)/2`
/// widened to hold 0, codes `round(clamp(w)/γ)` (ties to even, as torch rounds), then `γ` the
/// least-squares step for those codes, `Σ q·w / Σ q²`. The range is that of the last round's `γ`.
pub fn initial_weight_range(w: &[f32], bits: u32, fold: Fold) -> (f64, f64) {
    let values = w.iter().map(|&v| f64::from(v));
    if fold == Fold::FoldBn || w.is_empty() {
        return values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    }
    let levels = f64::from((1u32 << bits) - 1);
    let half = levels / 2.0;
    let mean = values.clone().sum::<f64>() / w.len() as f64;
    let mut gamma = values.clone().map(|v| (v - mean).abs()).fold(0.0, f64::max) * 2.0 / levels;
    let bounds = |g: f64| ((mean - g * half).min(0.0), (mean + g * half).max(0.0));
    let mut used = gamma;
    for _ in 0..10 {
        used = gamma;
        if used <= 0.0 {
            break;
        }
        let (lo, hi) = bounds(used);
        let (proj, norm) = values.clone().fold((0.0, 0.0), |(p, n), v| {
            let q = (v.clamp(lo, hi) / used).round_ties_even();
            (p + q * v, n + q * q)
        });
        if norm == 0.0 {
            break;
        }
        gamma = proj / norm;
    }
    bounds(used)
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
                unreachable!("a chain has no residual blocks and no input normalization")
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
/// Per-layer weights are clamped to a learned range first (the official "PerLayerAsymPACT", with
/// its weight decay [`RANGE_DECAY`]), which starts where [`initial_weight_range`] puts it.
/// Per-channel weights are always folded: a scale per channel already carries `γ/σ`, so folding is
/// exactly ICN there; their ranges are per-step min/max, as in the official code.
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
        if granularity == Granularity::PerLayer {
            let w: Vec<f32> = layer
                .weights_to_quantize()
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            let fold = if layer.unfolded_weights {
                Fold::Icn
            } else {
                Fold::FoldBn
            };
            let (lo, hi) = initial_weight_range(&w, u32::from(bits.weights[i]), fold);
            layer.learned_range = Some(LearnedWeightRange::new(lo, hi, RANGE_DECAY, device));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Folded weights start at their extremes; unfolded ones on the least-squares 2-bit grid:
    /// from γ = 2/3 the codes of [-1, -0.5, 0, 0.5, 1] are [-2, -1, 0, 1, 2], whose least-squares
    /// step is 5/10 = 0.5, a fixed point, so the range is 0 ± 0.5 · 3/2.
    #[test]
    fn learned_ranges_start_at_the_extremes_or_the_least_squares_grid() {
        let w = [-1.0, -0.5, 0.0, 0.5, 1.0];
        assert_eq!(initial_weight_range(&w, 2, Fold::FoldBn), (-1.0, 1.0));
        let (lo, hi) = initial_weight_range(&w, 2, Fold::Icn);
        assert!(
            (lo + 0.75).abs() < 1e-12 && (hi - 0.75).abs() < 1e-12,
            "{lo} {hi}"
        );
        // A range always holds zero, as the integer formats need.
        let (lo, hi) = initial_weight_range(&[0.5, 0.75, 1.0], 4, Fold::Icn);
        assert!(lo == 0.0 && hi > 0.75, "{lo} {hi}");
    }

    /// Per-layer weights get a learned range starting at their extremes; per-channel ones none.
    #[test]
    fn only_per_layer_weights_learn_their_range() {
        let device = Device::flex();
        let model = crate::mobilenet::MobileNetV1::tiny(16, 0.25, 8);
        let float = build_net(&model.layers(), 1, &device);
        let n = float.layers().len();
        let bits = BitWidths::uniform(n, 8);
        let alphas = vec![6.0; n - 1];
        let folds = vec![Fold::FoldBn; n];
        let mut pl = float.clone();
        make_qat(
            &mut pl,
            &bits,
            (Granularity::PerLayer, &folds),
            &alphas,
            &device,
        );
        for l in pl.layers() {
            let range = l.learned_range.as_ref().expect("a per-layer range");
            let (lo, hi) = range.values();
            let w: Vec<f32> = l.folded_weight().into_data().try_into_vec_as().unwrap();
            let (min, max) = w
                .iter()
                .fold((0.0f32, 0.0f32), |(a, b), &v| (a.min(v), b.max(v)));
            assert!((lo - f64::from(min)).abs() < 1e-6 && (hi - f64::from(max)).abs() < 1e-6);
        }
        // Unfolded (ICN) weights start on their least-squares grid, which clips the extremes.
        let mut icn = float.clone();
        let icn_folds = vec![Fold::Icn; n];
        make_qat(
            &mut icn,
            &bits,
            (Granularity::PerLayer, &icn_folds),
            &alphas,
            &device,
        );
        let clipped = icn.layers().iter().any(|l| {
            let (lo, hi) = l.learned_range.as_ref().unwrap().values();
            let w: Vec<f32> = l.weight.val().into_data().try_into_vec_as().unwrap();
            w.iter().any(|&v| f64::from(v) < lo || f64::from(v) > hi)
        });
        assert!(clipped, "no ICN layer's starting range clips a weight");
        let mut pc = float;
        make_qat(
            &mut pc,
            &bits,
            (Granularity::PerChannel, &folds),
            &alphas,
            &device,
        );
        assert!(pc.layers().iter().all(|l| l.learned_range.is_none()));
    }
}
