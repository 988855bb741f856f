//! Offline conversion of a trained QAT chain (TinyMbV1, an MLP) into the integer graph of
//! [`crate::engine`] (float is used here once per layer to choose multipliers, biases and
//! thresholds, as in the official `quantop.py` graph generation; nothing of it runs at inference).

use crate::engine::{IntConv, IntFc, IntegerNet};
use crate::memory::{BitWidths, Granularity};
use crate::mobilenet::{LayerKind, LayerShape};
use crate::qat::MinMaxWeights;
use burn::prelude::*;
use quant_core::fixedpoint::QuantizedMultiplier;
use quant_core::icn::Requant;
use quant_core::kernels::{ConvGeometry, ConvShape};
use quant_core::rounding::round_half_away_from_zero;
use quant_core::subbyte::{BitWidth, Packed};
use quant_train::models::Net;

/// How batch norm and rescaling reach the integer graph (the variants the paper compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folding {
    /// One multiplier per layer, BN folded into per-layer weights (needs per-layer weights).
    PerLayerFolding,
    /// Integer Channel-Normalization: per-channel multiplier and bias.
    Icn,
    /// `2^Q - 1` thresholds per channel from the real-valued BN/scale map (no multiplier rounding).
    Thresholds,
}

impl Folding {
    /// Name used in result rows.
    pub fn label(self) -> &'static str {
        match self {
            Folding::PerLayerFolding => "FB",
            Folding::Icn => "ICN",
            Folding::Thresholds => "thresholds",
        }
    }
}

fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

fn width(bits: u8) -> Result<BitWidth, String> {
    BitWidth::from_bits(u32::from(bits)).ok_or_else(|| format!("bit width {bits} is not 2, 4 or 8"))
}

fn multiplier(m: f64) -> Result<QuantizedMultiplier, String> {
    QuantizedMultiplier::from_real(m).map_err(|e| format!("multiplier {m}: {e}"))
}

/// Converts the trained `net` (a QAT chain with PACT activations, built from `shapes`) to the
/// integer graph. A layer trained on unfolded weights (PL+ICN,
/// [`quant_train::layers::QLayer::unfolded_weights`]) keeps them and takes its batch norm into the
/// ICN stage, `S_acc,c = S_x·S_w·γ_c/σ_c` (sign included), so it needs [`Folding::Icn`] or
/// [`Folding::Thresholds`].
pub fn convert(
    net: &Net,
    shapes: &[LayerShape],
    bits: &BitWidths,
    granularity: Granularity,
    folding: Folding,
) -> Result<IntegerNet, String> {
    if folding == Folding::PerLayerFolding && granularity == Granularity::PerChannel {
        return Err("per-layer folding needs per-layer weights (use --granularity pl)".into());
    }
    let layers = net.layers();
    if layers.len() != shapes.len() {
        return Err(format!(
            "net has {} layers, the model {}",
            layers.len(),
            shapes.len()
        ));
    }
    let act_scale = |i: usize| -> f64 {
        // Scale of tensor `acts[i]`: the image (1/255) or the PACT output of layer i - 1.
        if i == 0 {
            1.0 / 255.0
        } else {
            let levels = f64::from((1u32 << bits.acts[i]) - 1);
            layers[i - 1].output.range().1 / levels
        }
    };
    let mut convs = Vec::new();
    let mut fc = None;
    for (i, (layer, shape)) in layers.iter().zip(shapes).enumerate() {
        // Per channel, the factor batch norm leaves outside the weights (1 when they are folded).
        let bn_scale = match (&layer.bn, layer.unfolded_weights) {
            (Some(bn), true) => host(bn.fold_scale()),
            _ => vec![1.0; shape.cout],
        };
        let w = layer.weights_to_quantize();
        if folding == Folding::PerLayerFolding && layer.unfolded_weights {
            return Err(format!(
                "layer {i} was trained on unfolded weights (PL+ICN): deploy it with ICN or thresholds"
            ));
        }
        let w = host(w.reshape([shape.weights as usize]));
        let b = host(layer.folded_bias());
        let wq = MinMaxWeights {
            bits: u32::from(bits.weights[i]),
            channels: (granularity == Granularity::PerChannel).then_some(shape.cout),
        };
        let (codes, params) = wq.quantize(&w);
        let per_channel = |c: usize| params[if params.len() == 1 { 0 } else { c }];
        let w_zero: Vec<i32> = (0..shape.cout).map(|c| per_channel(c).zero_point).collect();
        let weights = Packed::pack(&codes, width(bits.weights[i])?).map_err(|e| e.to_string())?;
        let s_x = act_scale(i);
        if shape.kind == LayerKind::Fc {
            let s_in = s_x;
            let s_w_max = params.iter().map(|p| p.scale).fold(0.0, f64::max);
            let s_out = s_in * s_w_max / 256.0;
            let requant =
                per_channel_requant(shape.cout, &b, |c| (s_in * per_channel(c).scale, s_out))?;
            fc = Some(IntFc {
                weights,
                w_zero,
                requant,
            });
            continue;
        }
        let s_y = layer.output.range().1 / f64::from((1u32 << bits.a_out(i)) - 1);
        let out_bits = width(bits.a_out(i))?;
        let acc_scale = |c: usize| s_x * per_channel(c).scale * f64::from(bn_scale[c]);
        let requant = match folding {
            Folding::PerLayerFolding => {
                let s = acc_scale(0);
                Requant::PerLayer {
                    multiplier: multiplier(s / s_y)?,
                    bias: b.iter().map(|&v| round_bias(f64::from(v) / s)).collect(),
                }
            }
            Folding::Icn => per_channel_requant(shape.cout, &b, |c| (acc_scale(c), s_y))?,
            Folding::Thresholds => thresholds(&b, out_bits, |c| acc_scale(c) / s_y, acc_scale),
        };
        let (kernel, pad) = match shape.kind {
            LayerKind::Pointwise => (1, 0),
            // The window is the whole input map: its flattening, channel-major as the weights.
            LayerKind::Dense => (shape.hw_in, 0),
            _ => (3, 1),
        };
        let geometry = ConvGeometry::symmetric(
            (shape.hw_in, shape.hw_in, shape.cin),
            kernel,
            shape.stride,
            pad,
        )
        .map_err(|e| e.to_string())?;
        let conv = ConvShape {
            geometry,
            out_c: shape.cout,
            groups: match shape.kind {
                LayerKind::Depthwise => shape.cin,
                _ => 1,
            },
        };
        convs.push(IntConv {
            shape: conv,
            weights,
            w_zero,
            out_bits,
            requant,
        });
    }
    let fc = fc.ok_or("the net has no classifier")?;
    Ok(IntegerNet { convs, fc })
}

fn round_bias(v: f64) -> i32 {
    round_half_away_from_zero(v).clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// ICN: `m_c = S_acc,c / S_out`, `B_c = round(b_c / S_acc,c)`; `scales(c) = (S_acc,c, S_out)`.
fn per_channel_requant(
    cout: usize,
    bias: &[f32],
    scales: impl Fn(usize) -> (f64, f64),
) -> Result<Requant, String> {
    let mut multipliers = Vec::with_capacity(cout);
    let mut b = Vec::with_capacity(cout);
    for (c, &bias_c) in bias.iter().enumerate().take(cout) {
        let (s_acc, s_out) = scales(c);
        multipliers.push(multiplier(s_acc / s_out)?);
        b.push(round_bias(f64::from(bias_c) / s_acc));
    }
    Ok(Requant::PerChannel {
        multipliers,
        bias: b,
    })
}

/// Thresholds of the real map `y = floor(m_c·(acc + b_c / S_acc,c))`: level `k` is reached at
/// `acc >= ceil(k / m_c - b_c / S_acc,c)` when `m_c > 0` (folded weights, whose scale carries the
/// sign), and at `acc <= floor(k / m_c - b_c / S_acc,c)` when `m_c < 0` (a negative `γ_c` left to
/// the ICN stage by unfolded weights).
fn thresholds(
    bias: &[f32],
    out_bits: BitWidth,
    m: impl Fn(usize) -> f64,
    s_acc: impl Fn(usize) -> f64,
) -> Requant {
    let mut t = Vec::new();
    let mut increasing = Vec::with_capacity(bias.len());
    for (c, &b) in bias.iter().enumerate() {
        let b_real = f64::from(b) / s_acc(c);
        let up = m(c) > 0.0;
        increasing.push(up);
        for k in 1..=u32::from(out_bits.max_code()) {
            let edge = f64::from(k) / m(c) - b_real;
            let v = if up { edge.ceil() } else { edge.floor() };
            t.push(v.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32);
        }
    }
    Requant::Thresholds {
        thresholds: t,
        increasing,
    }
}
