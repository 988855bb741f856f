//! F8Net's fixed-point scheme applied after training to a float model of convolutions, fully
//! connected layers, global average pooling and residual blocks ([`crate::float_chain`]), run by
//! quant-core's fixed8 engine: 8-bit codes with
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
//!   statistics before the clamp that implements the ReLU; the float pass of [`crate::float_chain`]
//!   gives them.
//! * **No activation** (the logits, the last layer of a residual branch, a projection shortcut)
//!   stays in the int32 accumulator at its FL. A residual add aligns its two operands (that
//!   accumulator, and the block input's codes or the projection's accumulator) to the larger FL by
//!   left shifts, sums them and applies the ReLU; its output then takes codes like any ReLU. This
//!   needs `η = 1` on both sides, so residual blocks follow ReLU activations, not ReLU6 (F8Net's
//!   relabelling of PACT-scaled shortcuts is not built here).
//!
//! The input's codes are the raw pixels at FL 8 (`pixel / 256`) while the float models see
//! `pixel / 255`: the image is a PACT value with `α = 1`, `η = 256 / 255`.

use quant_core::fixed8::FixedFormat;
use quant_core::fixed8::engine::{FixedPointModel, Node};
use quant_core::fixed8::rule::{FlRule, quantize};
use quant_train::layers::{Activation, LayerKind};

use crate::float_chain::{FloatLayer, Plane, Step};

/// FL of the input codes and of every PACT (ReLU6) activation.
const CODE_FL: u8 = 8;

/// A value of the integer graph: its id, its FL and `η` (real = integer · 2^-FL · η).
#[derive(Clone, Copy)]
struct Tensor {
    id: usize,
    fl: i32,
    eta: f64,
}

/// What a layer's output becomes.
enum Output {
    /// 8-bit codes at `fl` with `η` (after a ReLU or ReLU6).
    Codes { fl: u8, eta: f64 },
    /// The int32 accumulator as it is (`η = 1`): the logits, or a residual branch before its add.
    Raw,
}

impl Output {
    /// A PACT value with clip level `alpha`, at [`CODE_FL`].
    fn pact(alpha: f64) -> Output {
        Output::Codes {
            fl: CODE_FL,
            eta: alpha * f64::from(1u16 << CODE_FL) / 255.0,
        }
    }

    /// Unsigned codes after a ReLU ([`relu_fl`]), `η = 1`.
    fn after_relu(pre: &[Plane]) -> Output {
        Output::Codes {
            fl: relu_fl(pre),
            eta: 1.0,
        }
    }

    fn eta(&self) -> f64 {
        match self {
            Output::Codes { eta, .. } => *eta,
            Output::Raw => 1.0,
        }
    }
}

/// The FL of unsigned codes after a ReLU, by the standard-deviation rule on `pre`, the values before
/// the ReLU (F8Net takes activation statistics before the clamp that implements it).
fn relu_fl(pre: &[Plane]) -> u8 {
    let flat: Vec<f32> = pre.iter().flat_map(|p| p.data.iter().copied()).collect();
    FlRule::StdCode.choose(&flat, false)
}

/// The integer graph being built.
struct Converter {
    nodes: Vec<Node>,
}

impl Converter {
    /// Appends `node`; returns the id of the value it produces.
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len()
    }

    /// Appends `layer` reading the codes `input`, its output stored as `output`.
    fn layer(
        &mut self,
        layer: &FloatLayer,
        input: Tensor,
        output: &Output,
    ) -> Result<Tensor, String> {
        let fold = (input.eta / output.eta()) as f32;
        let weight: Vec<f32> = layer.weight.iter().map(|&w| w * fold).collect();
        let w_fl = FlRule::StdCode.choose(&weight, true);
        let w_format = FixedFormat::new(w_fl, true).map_err(|e| e.to_string())?;
        let fl_acc = input.fl + i32::from(w_fl);
        let eta_out = output.eta();
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
        let (src, w_fl) = (input.id, vec![w_fl; layer.outputs]);
        let id = self.push(match layer.kind {
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
        match *output {
            Output::Raw => Ok(Tensor {
                id,
                fl: fl_acc,
                eta: 1.0,
            }),
            Output::Codes { fl, eta } => self.quantized(id, fl, eta),
        }
    }

    /// Appends `layer` reading `input`, whose calibration values are `floats`; returns its output
    /// and the calibration values after it. `raw_ok` where its int32 output may stay as it is.
    fn step(
        &mut self,
        layer: &FloatLayer,
        (input, floats): (Tensor, &[Plane]),
        raw_ok: bool,
        at: &str,
    ) -> Result<(Tensor, Vec<Plane>), String> {
        let pre: Vec<Plane> = floats.iter().map(|x| layer.apply(x)).collect();
        let output = output_of(layer.activation, &pre, raw_ok, at)?;
        let out = self.layer(layer, input, &output)?;
        let post = pre
            .into_iter()
            .map(|p| p.activate(layer.activation))
            .collect();
        Ok((out, post))
    }

    /// Appends the requantization of value `src` to unsigned codes at `fl`.
    fn quantized(&mut self, src: usize, fl: u8, eta: f64) -> Result<Tensor, String> {
        let format = FixedFormat::new(fl, false).map_err(|e| e.to_string())?;
        let id = self.push(Node::Quantize { src, format });
        Ok(Tensor {
            id,
            fl: i32::from(fl),
            eta,
        })
    }
}

/// How a layer's activation is stored, from its values `pre` before the activation; `raw_ok` where
/// an int32 output may stay as it is (the last layer, a residual branch).
fn output_of(
    activation: Activation,
    pre: &[Plane],
    raw_ok: bool,
    at: &str,
) -> Result<Output, String> {
    match activation {
        Activation::None if raw_ok => Ok(Output::Raw),
        Activation::Relu6 => Ok(Output::pact(6.0)),
        Activation::Relu if pre.is_empty() => Err(format!(
            "{at}: a ReLU takes its format from calibration images, and none were given"
        )),
        Activation::Relu => Ok(Output::after_relu(pre)),
        other => Err(format!(
            "{at}: activation {other:?} has no conversion here (ReLU, ReLU6, or none on the last layer and before a residual add)"
        )),
    }
}

/// The fixed-point model of `steps` for `[C, H, W]` images, with ReLU activation formats chosen on
/// `calibration` (raw pixel rows).
pub fn fixed_point_model(
    steps: &[Step],
    calibration: &[&[u8]],
    shape: [usize; 3],
) -> Result<FixedPointModel, String> {
    if steps.is_empty() {
        return Err("no layers".into());
    }
    let mut graph = Converter { nodes: Vec::new() };
    let mut floats: Vec<Plane> = calibration
        .iter()
        .map(|px| Plane::image(px, shape))
        .collect();
    let mut at = Tensor {
        id: 0,
        fl: i32::from(CODE_FL),
        eta: Output::pact(1.0).eta(),
    };
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match step {
            Step::GlobalAvgPool => {
                at.id = graph.push(Node::GlobalAvgPool { src: at.id });
                floats = floats.iter().map(Plane::global_avg_pool).collect();
            }
            Step::Layer(layer) => {
                (at, floats) = graph.step(layer, (at, &floats), last, &format!("layer {i}"))?;
            }
            Step::Residual {
                body,
                shortcut,
                activation,
            } => {
                if at.eta != 1.0 {
                    return Err(format!(
                        "step {i}: a residual add over PACT-scaled codes needs F8Net's relabelling, which this conversion does not build"
                    ));
                }
                let (mut branch, mut branch_floats) = (at, floats.clone());
                for (j, layer) in body.iter().enumerate() {
                    let at_end = j + 1 == body.len();
                    (branch, branch_floats) = graph.step(
                        layer,
                        (branch, &branch_floats),
                        at_end,
                        &format!("step {i} layer {j}"),
                    )?;
                }
                let (short, short_floats) = match shortcut {
                    None => (at, floats),
                    Some(layer) => {
                        graph.step(layer, (at, &floats), true, &format!("step {i} shortcut"))?
                    }
                };
                if *activation != Activation::Relu {
                    return Err(format!(
                        "step {i}: a residual add followed by {activation:?} has no conversion here (ReLU)"
                    ));
                }
                let sum = graph.push(Node::Add {
                    a: branch.id,
                    b: short.id,
                    relu: true,
                });
                let pre: Vec<Plane> = branch_floats
                    .iter()
                    .zip(&short_floats)
                    .map(|(a, b)| a.add(b))
                    .collect();
                at = graph.quantized(sum, relu_fl(&pre), 1.0)?;
                floats = pre
                    .into_iter()
                    .map(|p| p.activate(Activation::Relu))
                    .collect();
            }
        }
    }
    let [channels, height, width] = shape;
    Ok(FixedPointModel {
        channels,
        height,
        width,
        input_fl: CODE_FL,
        nodes: graph.nodes,
    })
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

    fn conv1x1(weight: Vec<f32>, bias: Vec<f32>, activation: Activation) -> FloatLayer {
        FloatLayer {
            outputs: bias.len(),
            weight,
            bias,
            kind: LayerKind::Conv {
                kernel: 1,
                stride: 1,
                groups: 1,
            },
            activation,
        }
    }

    /// A residual block (two 1x1 convolutions, identity shortcut, ReLU after the add): the body's
    /// last convolution stays an int32 accumulator, the add aligns it with the block input's codes
    /// by shifts, and the logits follow the float pass within rounding, with no 32-bit multiply.
    #[test]
    fn residual_block_adds_the_raw_branch_to_the_input_codes() {
        let steps = [
            Step::Layer(conv1x1(vec![1.0, -1.0], vec![0.0, 1.0], Activation::Relu)),
            Step::Residual {
                body: vec![
                    conv1x1(vec![0.5, 0.0, 0.0, 0.5], vec![0.1, -0.1], Activation::Relu),
                    conv1x1(vec![1.0, 0.5, 0.5, 1.0], vec![0.0, 0.0], Activation::None),
                ],
                shortcut: None,
                activation: Activation::Relu,
            },
            Step::GlobalAvgPool,
            dense(vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0], Activation::None),
        ];
        let images: [&[u8]; 3] = [&[255, 0, 128, 64], &[10, 200, 30, 90], &[0, 0, 255, 255]];
        let model = fixed_point_model(&steps, &images, [1, 2, 2]).unwrap();
        let adds: Vec<&Node> = model
            .nodes
            .iter()
            .filter(|n| matches!(n, Node::Add { relu: true, .. }))
            .collect();
        assert_eq!(adds.len(), 1, "{:?}", model.nodes);
        for pixels in images {
            // The float chain, step by step.
            let [
                Step::Layer(stem),
                Step::Residual { body, .. },
                _,
                Step::Layer(fc),
            ] = &steps
            else {
                unreachable!()
            };
            let x = stem
                .apply(&Plane::image(pixels, [1, 2, 2]))
                .activate(Activation::Relu);
            let h = body[0].apply(&x).activate(Activation::Relu);
            let y = body[1].apply(&h).add(&x).activate(Activation::Relu);
            let logits = fc.apply(&y.global_avg_pool());
            let (out, counts) = model.run(pixels).unwrap();
            for (o, &want) in logits.data.iter().enumerate() {
                let got = real(out.data[o], out.fl[o]);
                assert!((got - f64::from(want)).abs() < 0.05, "{got} against {want}");
            }
            assert_eq!(counts.mul_32x32, 0);
        }
    }

    /// A ReLU takes its format from calibration images; without any, the conversion says so.
    #[test]
    fn relu_without_calibration_images_is_refused() {
        let steps = [Step::Layer(conv1x1(
            vec![1.0, 2.0],
            vec![0.0, 0.0],
            Activation::Relu,
        ))];
        let err = fixed_point_model(&steps, &[], [1, 1, 1]).unwrap_err();
        assert!(err.contains("calibration"), "{err}");
    }
}
