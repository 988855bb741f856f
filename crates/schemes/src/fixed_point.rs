//! F8Net's fixed-point scheme applied after training to a float chain of fully connected layers, run
//! by quant-core's fixed8 engine: 8-bit codes with a power-of-two scale `2^-FL` per tensor, `FL`
//! chosen from the tensor's standard deviation with the official constants (signed weights: 40,
//! unsigned post-ReLU activations: 70), i8 x i8 products into int32 accumulators, and a shift (never
//! a multiplier) to the next layer's format. F8Net trains with this quantization in the loop; this is
//! its post-training form, the same float model every other row starts from.

use quant_core::fixed8::FixedFormat;
use quant_core::fixed8::engine::{FixedPointModel, Node};
use quant_core::fixed8::rule::{FlRule, quantize};

/// One fully connected layer of the float model: `out x in` weights (row-major) and `out` biases.
pub struct DenseLayer {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

impl DenseLayer {
    /// `W x + b` of one input.
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.inputs)
            .zip(&self.bias)
            .map(|(row, &b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
            .collect()
    }
}

/// The engine's input codes are the raw pixels at FL 8 (`pixel / 256`); the float models see
/// `pixel / 255`, so the first layer's weights take the factor `256 / 255`.
const INPUT_FL: u8 = 8;

/// The fixed-point model of `layers` (ReLU after every layer but the last), with the activation
/// formats chosen from the pre-ReLU outputs of the float model on `calibration` (raw pixel rows),
/// as F8Net takes its activation statistics before the clamp that implements the ReLU. `shape` is
/// the input's `[C, H, W]`.
pub fn fixed_point_mlp(
    layers: &[DenseLayer],
    calibration: &[&[u8]],
    [channels, height, width]: [usize; 3],
) -> Result<FixedPointModel, String> {
    if layers.is_empty() {
        return Err("no layers".into());
    }
    let pixel_scale = f32::from(1u16 << INPUT_FL) / 255.0;
    let mut inputs: Vec<Vec<f32>> = calibration
        .iter()
        .map(|px| px.iter().map(|&p| f32::from(p) / 255.0).collect())
        .collect();
    let (mut nodes, mut fl_in, mut src) = (Vec::new(), i32::from(INPUT_FL), 0);
    for (i, layer) in layers.iter().enumerate() {
        let weight: Vec<f32> = match i {
            0 => layer.weight.iter().map(|w| w * pixel_scale).collect(),
            _ => layer.weight.clone(),
        };
        let w_fl = FlRule::StdCode.choose(&weight, true);
        let w_format = FixedFormat::new(w_fl, true).map_err(|e| e.to_string())?;
        let fl_acc = fl_in + i32::from(w_fl);
        let bias = layer
            .bias
            .iter()
            .map(|&b| {
                let scaled = (f64::from(b) * 2f64.powi(fl_acc)).round_ties_even();
                scaled.clamp(-f64::from(i32::MAX), f64::from(i32::MAX)) as i32
            })
            .collect();
        nodes.push(Node::Linear {
            src,
            out: layer.outputs,
            weight: weight
                .iter()
                .map(|&w| quantize(f64::from(w), w_format) as i8)
                .collect(),
            w_fl: vec![w_fl; layer.outputs],
            bias,
        });
        src = nodes.len();
        if i + 1 == layers.len() {
            break;
        }
        let pre_relu: Vec<Vec<f32>> = inputs.iter().map(|x| layer.apply(x)).collect();
        let flat: Vec<f32> = pre_relu.iter().flatten().copied().collect();
        let a_fl = FlRule::StdCode.choose(&flat, false);
        nodes.push(Node::Quantize {
            src,
            format: FixedFormat::new(a_fl, false).map_err(|e| e.to_string())?,
        });
        src = nodes.len();
        fl_in = i32::from(a_fl);
        inputs = pre_relu
            .into_iter()
            .map(|v| v.into_iter().map(|x| x.max(0.0)).collect())
            .collect();
    }
    Ok(FixedPointModel {
        channels,
        height,
        width,
        input_fl: INPUT_FL,
        nodes,
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

    /// Two layers give Linear, Quantize, Linear; the first layer's weights carry 256/255 (the engine's
    /// pixel codes are `p / 256`); weights and biases are codes at the chosen FLs; the model runs and
    /// computes what the float layers compute, within its rounding.
    #[test]
    fn chain_of_layers_becomes_linear_quantize_linear() {
        let layers = [
            DenseLayer {
                weight: vec![0.5, -0.25, 0.125, 0.75],
                bias: vec![0.1, -0.05],
                inputs: 2,
                outputs: 2,
            },
            DenseLayer {
                weight: vec![1.0, -1.0],
                bias: vec![0.0],
                inputs: 2,
                outputs: 1,
            },
        ];
        let pixels: [&[u8]; 3] = [&[255, 0], &[0, 255], &[128, 64]];
        let model = fixed_point_mlp(&layers, &pixels, [1, 1, 2]).unwrap();
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
        let real = f64::from(out.data[0]) / 2f64.powi(out.fl[0]);
        assert!((real - 0.525).abs() < 0.05, "{real}");
        assert_eq!(counts.mul_32x32, 0);
        assert_eq!(model_bytes(&model), (4 + 4 * 2 + 2) + 1 + (2 + 4 + 1));
        assert_eq!(peak_activation_bytes(&[(2, 2), (2, 1)]), 10);
    }
}
