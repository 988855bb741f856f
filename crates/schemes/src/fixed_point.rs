//! F8Net's fixed-point scheme applied after training to a float chain of convolutions, fully
//! connected layers and global average pooling, run by quant-core's fixed8 engine: 8-bit codes with
//! a power-of-two scale `2^-FL` per tensor, i8 x i8 products into int32 accumulators, and a shift
//! (never a multiplier) to the next layer's format. F8Net trains with this quantization in the loop;
//! this is its post-training form, the same float model every other row starts from.
//!
//! Weights take one FL per layer (the released configuration) from the standard deviation of the
//! weights the layer multiplies with (batch norm folded), with the official constant 40. How an
//! activation is stored depends on its clamp, as in F8Net:
//!
//! * **ReLU6** is PACT with its clip level fixed at `α = 6`. F8Net stores such a value as
//!   `real / η` with `η = 2^FL α / 255`, so its 8-bit codes are `round(real · 255 / α)` whatever the
//!   FL: uniform on `[0, α]`, the code 255 being the clip. The conversion fixes `FL = 8` and folds
//!   `η_in / η_out` into each layer's weights (and `1 / η_out` into its bias), so the requantization
//!   stays a shift.
//! * **ReLU** (no clip level, `η = 1`) takes its FL from the standard deviation of the layer's
//!   outputs before the ReLU (official constant 70) on calibration images, as F8Net takes activation
//!   statistics before the clamp that implements the ReLU. The float pass that gathers them covers
//!   chains of fully connected layers, the only place the workspace's models put a bare ReLU.
//! * **No activation** (the logits) stays in the accumulator at its FL.
//!
//! The input's codes are the raw pixels at FL 8 (`pixel / 256`) while the float models see
//! `pixel / 255`: the image is a PACT value with `α = 1`, `η = 256 / 255`.

use quant_core::fixed8::FixedFormat;
use quant_core::fixed8::engine::{FixedPointModel, Node};
use quant_core::fixed8::rule::{FlRule, quantize};
use quant_train::layers::{Activation, LayerKind, QLayer};
use quant_train::models::{Block, Net};

/// FL of the input codes and of every PACT (ReLU6) activation.
const CODE_FL: u8 = 8;

/// One weight layer of the float model, batch norm folded.
pub struct FloatLayer {
    /// `[out, in / groups, k, k]` (convolution) or `[out, in]` (fully connected), row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub outputs: usize,
    pub kind: LayerKind,
    pub activation: Activation,
}

impl FloatLayer {
    /// The layer of `l` with batch norm folded with its moving statistics.
    pub fn of(l: &QLayer) -> FloatLayer {
        let host = |t: burn::Tensor<1>| t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
        let weight = l.folded_weight();
        let n: usize = weight.dims().iter().product();
        FloatLayer {
            weight: host(weight.reshape([n])),
            bias: host(l.folded_bias()),
            outputs: l.out_channels(),
            kind: l.kind,
            activation: l.output.activation,
        }
    }

    /// `W x + b` of one input, for a fully connected layer.
    fn apply_dense(&self, x: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.weight.len() / self.outputs)
            .zip(&self.bias)
            .map(|(row, &b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
            .collect()
    }
}

/// A step of the float chain.
pub enum Step {
    Layer(FloatLayer),
    GlobalAvgPool,
}

/// The steps of `net`, which must be a chain of weight layers and global average pooling.
pub fn steps(net: &Net) -> Result<Vec<Step>, String> {
    net.blocks
        .iter()
        .map(|b| match b {
            Block::Layer(l) => Ok(Step::Layer(FloatLayer::of(l))),
            Block::GlobalAvgPool(_) => Ok(Step::GlobalAvgPool),
            _ => Err("F8Net's post-training conversion here takes chains of layers and global average pooling; this model has residual, pooling or normalization blocks".to_string()),
        })
        .collect()
}

/// How an activation is stored: its FL and `η` (real = code · 2^-FL · η).
struct Storage {
    fl: u8,
    eta: f64,
}

impl Storage {
    /// A PACT value with clip level `alpha` at [`CODE_FL`].
    fn pact(alpha: f64) -> Storage {
        Storage {
            fl: CODE_FL,
            eta: alpha * f64::from(1u16 << CODE_FL) / 255.0,
        }
    }
}

/// The fixed-point model of `steps` for `[C, H, W]` images, with ReLU activation formats chosen on
/// `calibration` (raw pixel rows).
pub fn fixed_point_model(
    steps: &[Step],
    calibration: &[&[u8]],
    [channels, height, width]: [usize; 3],
) -> Result<FixedPointModel, String> {
    if steps.is_empty() {
        return Err("no layers".into());
    }
    // The float activations of the calibration images, while the chain is fully connected.
    let mut inputs: Option<Vec<Vec<f32>>> = Some(
        calibration
            .iter()
            .map(|px| px.iter().map(|&p| f32::from(p) / 255.0).collect())
            .collect(),
    );
    let mut nodes = Vec::new();
    let mut input = Storage::pact(1.0);
    for (i, step) in steps.iter().enumerate() {
        let src = nodes.len();
        let layer = match step {
            Step::GlobalAvgPool => {
                nodes.push(Node::GlobalAvgPool { src });
                inputs = None;
                continue;
            }
            Step::Layer(layer) => layer,
        };
        let dense = matches!(layer.kind, LayerKind::Linear);
        let pre_activation: Option<Vec<Vec<f32>>> = match (&inputs, dense) {
            (Some(x), true) => Some(x.iter().map(|v| layer.apply_dense(v)).collect()),
            _ => None,
        };
        let output = match layer.activation {
            Activation::None if i + 1 == steps.len() => None,
            Activation::Relu6 => Some(Storage::pact(6.0)),
            Activation::Relu => {
                let pre = pre_activation.as_ref().ok_or(format!(
                    "layer {i}: a ReLU after a convolution needs activation statistics, which this conversion gathers on fully connected chains only"
                ))?;
                let flat: Vec<f32> = pre.iter().flatten().copied().collect();
                Some(Storage {
                    fl: FlRule::StdCode.choose(&flat, false),
                    eta: 1.0,
                })
            }
            other => {
                return Err(format!(
                    "layer {i}: activation {other:?} has no conversion here (ReLU, ReLU6, or none on the last layer)"
                ));
            }
        };
        let eta_out = output.as_ref().map_or(1.0, |s| s.eta);
        let fold = (input.eta / eta_out) as f32;
        let weight: Vec<f32> = layer.weight.iter().map(|&w| w * fold).collect();
        let w_fl = FlRule::StdCode.choose(&weight, true);
        let w_format = FixedFormat::new(w_fl, true).map_err(|e| e.to_string())?;
        let fl_acc = i32::from(input.fl) + i32::from(w_fl);
        let bias = layer
            .bias
            .iter()
            .map(|&b| {
                let scaled = (f64::from(b) / eta_out * 2f64.powi(fl_acc)).round_ties_even();
                scaled.clamp(-f64::from(i32::MAX), f64::from(i32::MAX)) as i32
            })
            .collect();
        let codes = weight
            .iter()
            .map(|&w| quantize(f64::from(w), w_format) as i8)
            .collect();
        let w_fl = vec![w_fl; layer.outputs];
        nodes.push(match layer.kind {
            LayerKind::Linear => Node::Linear {
                src,
                out: layer.outputs,
                weight: codes,
                w_fl,
                bias,
            },
            LayerKind::Conv {
                kernel,
                stride,
                groups,
            } => Node::Conv {
                src,
                cout: layer.outputs,
                k: kernel,
                stride,
                pad: kernel / 2,
                groups,
                weight: codes,
                w_fl,
                bias,
            },
        });
        let Some(output) = output else { break };
        nodes.push(Node::Quantize {
            src: nodes.len(),
            format: FixedFormat::new(output.fl, false).map_err(|e| e.to_string())?,
        });
        inputs = pre_activation.map(|pre| {
            pre.into_iter()
                .map(|v| {
                    v.into_iter()
                        .map(|x| activate(layer.activation, x))
                        .collect()
                })
                .collect()
        });
        input = output;
    }
    Ok(FixedPointModel {
        channels,
        height,
        width,
        input_fl: CODE_FL,
        nodes,
    })
}

/// The float activation function of `activation` at `x` (the conversion refuses the others before).
fn activate(activation: Activation, x: f32) -> f32 {
    match activation {
        Activation::Relu => x.max(0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        _ => x,
    }
}

/// What the model stores: int8 weights, int32 biases, one FL byte per output channel and one
/// format byte per requantization.
pub fn model_bytes(model: &FixedPointModel) -> usize {
    model
        .nodes
        .iter()
        .map(|n| match n {
            Node::Linear { weight, bias, .. } | Node::Conv { weight, bias, .. } => {
                weight.len() + 4 * bias.len() + bias.len()
            }
            Node::Quantize { .. } => 1,
            _ => 0,
        })
        .sum()
}

/// Peak activation bytes of layers with `layer_io` input and output elements as this engine runs
/// them: a layer writes int32 accumulators (4 bytes) from 8-bit input codes, and the requantization
/// then reads them and writes the next 8-bit codes; the largest of those two steps.
pub fn peak_activation_bytes(layer_io: &[(usize, usize)]) -> usize {
    layer_io
        .iter()
        .map(|&(i, o)| (i + 4 * o).max(5 * o))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(weight: Vec<f32>, bias: Vec<f32>, activation: Activation) -> Step {
        Step::Layer(FloatLayer {
            outputs: bias.len(),
            weight,
            bias,
            kind: LayerKind::Linear,
            activation,
        })
    }

    fn real(value: i32, fl: i32) -> f64 {
        f64::from(value) / 2f64.powi(fl)
    }

    /// Two layers give Linear, Quantize, Linear; the first layer's weights carry 256/255 (the engine's
    /// pixel codes are `p / 256`); weights and biases are codes at the chosen FLs; the model runs and
    /// computes what the float layers compute, within its rounding.
    #[test]
    fn chain_of_layers_becomes_linear_quantize_linear() {
        let steps = [
            dense(
                vec![0.5, -0.25, 0.125, 0.75],
                vec![0.1, -0.05],
                Activation::Relu,
            ),
            dense(vec![1.0, -1.0], vec![0.0], Activation::None),
        ];
        let pixels: [&[u8]; 3] = [&[255, 0], &[0, 255], &[128, 64]];
        let model = fixed_point_model(&steps, &pixels, [1, 1, 2]).unwrap();
        assert_eq!(model.input_fl, 8);
        let [
            Node::Linear {
                src: 0,
                weight,
                w_fl,
                bias,
                ..
            },
            Node::Quantize { src: 1, format },
            Node::Linear { src: 2, .. },
        ] = model.nodes.as_slice()
        else {
            panic!("{:?}", model.nodes);
        };
        assert!(!format.signed);
        let fl = i32::from(w_fl[0]);
        let scale = 2f64.powi(fl);
        assert_eq!(
            i32::from(weight[0]),
            (0.5 * 256.0 / 255.0 * scale).round() as i32
        );
        assert_eq!(bias[0], (0.1 * 2f64.powi(8 + fl)).round() as i32);
        // Pixel (255, 0): hidden relu(0.5 + 0.1, 0.125 + (-0.05)) = (0.6, 0.075), output 0.525.
        let (out, counts) = model.run(&[255, 0]).unwrap();
        assert!((real(out.data[0], out.fl[0]) - 0.525).abs() < 0.05);
        assert_eq!(counts.mul_32x32, 0);
        assert_eq!(model_bytes(&model), (4 + 4 * 2 + 2) + 1 + (2 + 4 + 1));
        assert_eq!(peak_activation_bytes(&[(2, 2), (2, 1)]), 10);
    }

    /// A 1x1 convolution with ReLU6, global average pooling and a classifier: the ReLU6 codes are
    /// uniform on [0, 6] at FL 8 (so code 255 is the clip: 10.5 becomes 6), the classifier's weights
    /// carry `η = 6 · 256 / 255`, and the logits match the float chain within rounding.
    #[test]
    fn relu6_convolution_stores_pact_codes_and_clips_at_six() {
        let steps = [
            Step::Layer(FloatLayer {
                weight: vec![10.0, 2.0],
                bias: vec![0.5, 0.0],
                outputs: 2,
                kind: LayerKind::Conv {
                    kernel: 1,
                    stride: 1,
                    groups: 1,
                },
                activation: Activation::Relu6,
            }),
            Step::GlobalAvgPool,
            dense(vec![1.0, 0.0, 0.0, -1.0], vec![0.0, 0.25], Activation::None),
        ];
        let model = fixed_point_model(&steps, &[], [1, 2, 2]).unwrap();
        let [
            Node::Conv { w_fl, bias, .. },
            Node::Quantize { src: 1, format },
            Node::GlobalAvgPool { src: 2 },
            Node::Linear {
                src: 3,
                weight,
                w_fl: fc_fl,
                ..
            },
        ] = model.nodes.as_slice()
        else {
            panic!("{:?}", model.nodes);
        };
        assert_eq!((format.fl, format.signed), (8, false));
        // The convolution writes real / η_out: its bias is 0.5 · 255 / (6 · 256) at FL 8 + FL_w.
        let eta = 6.0 * 256.0 / 255.0;
        let fl_acc = 8 + i32::from(w_fl[0]);
        assert_eq!(bias[0], (0.5 / eta * 2f64.powi(fl_acc)).round() as i32);
        let fc_scale = 2f64.powi(i32::from(fc_fl[0]));
        assert_eq!(i32::from(weight[0]), (eta * fc_scale).round() as i32);
        // Pixels 255, 0, 128, 64. Channel 0: 10.5 -> 6 (clipped), 0.5, 5.52, 3.01, mean 3.757 (4.88
        // without the clip); channel 1: 2p / 255, mean 0.876.
        let pixels = [255.0, 0.0, 128.0, 64.0];
        let mean0 = pixels
            .iter()
            .map(|p| (10.0 * p / 255.0 + 0.5f64).min(6.0))
            .sum::<f64>()
            / 4.0;
        let mean1 = pixels.iter().map(|p| 2.0 * p / 255.0).sum::<f64>() / 4.0;
        let (out, counts) = model.run(&[255, 0, 128, 64]).unwrap();
        assert!(
            (real(out.data[0], out.fl[0]) - mean0).abs() < 0.05,
            "{out:?}"
        );
        assert!((real(out.data[1], out.fl[1]) - (0.25 - mean1)).abs() < 0.05);
        assert_eq!(counts.mul_32x32, 0);
    }

    /// A ReLU after a convolution has no statistics to choose its FL from, and is refused.
    #[test]
    fn relu_after_a_convolution_is_refused() {
        let steps = [Step::Layer(FloatLayer {
            weight: vec![1.0],
            bias: vec![0.0],
            outputs: 1,
            kind: LayerKind::Conv {
                kernel: 1,
                stride: 1,
                groups: 1,
            },
            activation: Activation::Relu,
        })];
        let err = fixed_point_model(&steps, &[], [1, 1, 1]).unwrap_err();
        assert!(err.contains("statistics"), "{err}");
    }
}
