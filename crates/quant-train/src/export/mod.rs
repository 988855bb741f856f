//! Export of a trained affine-QAT [`Net`] to quant-core's integer engine (dossier §6.8), and the
//! agreement check between the fake-quantized Burn model and the engine.
//!
//! Conversion: batch norm folded with the moving statistics; weights quantized with the same
//! `(S, Z)` that the last fake-quant step used (min/max of the folded weights, narrow range) and
//! stored as int8 `q - 128`; activations take the EMA ranges; biases become int32 at `S_w S_in`;
//! per-layer multipliers `S_w S_in / S_out`; activation clamps from the output range. Weights of
//! any bit width the quantizer used (2..=8) are exported on their own grid, so the 7-, 6-, 5- and
//! 4-bit models of the ablations run in the engine too.
//!
//! The whole network becomes one quant-core engine graph: residual adds read the block's body
//! and its input, and a projection shortcut is a conv node reading the block input, added to the
//! body. Everything at run time stays integer-only.
//!
//! [`simulate`] replays the same integer arithmetic in Burn tensors (the oracle the engine is
//! checked against); [`agreement`] compares the engine with it and with the fake-quantized model.

mod agreement;
mod simulate;
#[cfg(test)]
mod tests;

use agreement::codes_of;
pub use agreement::{Agreement, NodeAgreement, check_agreement, engine_logits, node_agreement};
use simulate::pixel_params;
pub use simulate::simulate_codes;

use burn::prelude::*;
use quant_core::convert::output_stage;
use quant_core::engine::{
    AddLayer, CodeTableLayer, ConvLayer, DepthwiseLayer, FullyConnectedLayer, InputSpec, Layer,
    Model, ModelSpec, Node, OutputType, PoolLayer, QData, QTensor, Shape, Window, layout,
};
use quant_core::fixedpoint::{RoundingMode, rounding_divide};
use quant_core::kernels::OutputStage;
use quant_core::qparams::{FusedActivation, QParams, QRange};
use repro::datasets::ImageSet;

use crate::layers::{Activation, ActivationQuant, InputNorm, LayerKind, Phase, QLayer};
use crate::models::{Block, Net};
use crate::train::{argmax_rows, predict};

/// Export failures, each a sentence that says what to change.
#[derive(Debug)]
pub struct ExportError(pub String);

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExportError {}

impl From<quant_core::error::QuantError> for ExportError {
    fn from(e: quant_core::error::QuantError) -> Self {
        ExportError(format!("integer conversion failed: {e}"))
    }
}

/// An exported integer-only network: uint8 pixels in, uint8 logit codes out.
#[derive(Debug, Clone)]
pub struct IntegerNet {
    /// The engine model (uint8 codes out).
    pub model: Model,
    /// Input `[C, H, W]` (codes `S = 1/255`, `Z = 0`).
    pub input: [usize; 3],
    /// Parameters of the logit codes.
    pub output: QParams,
    /// Number of classes.
    pub classes: usize,
}

pub(crate) fn u8_codes(t: QTensor) -> Vec<u8> {
    match t.data {
        QData::U8(v) => v,
        QData::I8(v) => quant_core::kernels::i8_to_u8(&v),
    }
}

pub(crate) fn stage_bytes(s: &OutputStage) -> usize {
    4 * s.bias.len() + 8 * s.multipliers.len() + 6
}

pub(crate) fn spec_bytes(spec: &ModelSpec) -> usize {
    spec.nodes
        .iter()
        .map(|n| match &n.layer {
            Layer::Conv2d(c) => {
                c.weights.len() + 4 * c.weight_zero_points.len() + stage_bytes(&c.stage)
            }
            Layer::DepthwiseConv2d(c) => {
                c.weights.len() + 4 * c.weight_zero_points.len() + stage_bytes(&c.stage)
            }
            Layer::FullyConnected(c) => {
                c.weights.len() + 4 * c.weight_zero_points.len() + stage_bytes(&c.stage)
            }
            Layer::Add(_) => 3 * 8 + 3 * 4 + 2,
            Layer::CodeTable(t) => t.tables.len() + 4,
            _ => 0,
        })
        .sum()
}

#[deny(clippy::float_arithmetic)]
impl IntegerNet {
    /// Logit codes (`[batch, classes]`, row-major) for `batch` images given as the data sets store
    /// them (planar, CHW: the raw IDX pixels, or CIFAR's red, green and blue planes); the engine
    /// takes channels innermost, so colour images are interleaved first.
    pub fn run(&self, images: &[u8], batch: usize) -> Result<Vec<i32>, ExportError> {
        let [c, h, w] = self.input;
        let hwc = quant_core::engine::layout::chw_to_hwc(images, c, h * w);
        let codes = u8_codes(self.model.run(&hwc, batch)?);
        Ok(codes.into_iter().map(i32::from).collect())
    }

    /// Storage of the deployed model: int8 weights, int32 biases and zero points, multipliers
    /// (int32 + shift), clamps and add parameters.
    pub fn size_bytes(&self) -> usize {
        spec_bytes(self.model.spec())
    }
}

/// Bytes of the float model after batch-norm folding (f32 weights and biases): the deployable
/// float baseline of the size ratio.
pub fn float_size_bytes(net: &Net) -> usize {
    net.layers()
        .iter()
        .map(|l| 4 * (l.weight.dims().iter().product::<usize>() + l.out_channels()))
        .sum()
}

pub(crate) fn engine_activation(a: Activation) -> FusedActivation {
    match a {
        Activation::None => FusedActivation::None,
        Activation::Relu | Activation::Pact(_) => FusedActivation::Relu,
        Activation::Relu6 => FusedActivation::Relu6,
    }
}

pub(crate) fn stage_params(stage: &ActivationQuant, what: &str) -> Result<QParams, ExportError> {
    stage
        .quantizer
        .as_ref()
        .and_then(|q| q.0.affine(stage.range()))
        .ok_or_else(|| {
            ExportError(format!(
                "{what} has no affine activation quantizer: set AffineQuantizer::activations on the model before exporting"
            ))
        })
}

/// The values of `t` on the host, as f32 (what exporters read parameters with).
pub fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

/// The integer parameters of one weight layer, computed in one place for the exporter (which lays
/// them out for the engine) and the integer simulation (which runs them through Burn).
pub(crate) struct QuantizedLayer {
    /// Weight codes stored as int8 `q - 128`, in the Burn layout `[out, in / groups, kh, kw]`.
    codes: Vec<i8>,
    /// Weight zero point in the same storage, `Z_w - 128`.
    zero_point: i32,
    /// int32 bias at `S_w S_in`, multiplier `S_w S_in / S_out`, output zero point and clamp.
    stage: OutputStage,
    /// Parameters of the output codes.
    out_q: QParams,
}

/// Quantizes layer `l` (number `index`, for messages) reading codes with parameters `input`.
pub(crate) fn quantize_layer(
    l: &QLayer,
    index: usize,
    input: &QParams,
    rounding: RoundingMode,
) -> Result<QuantizedLayer, ExportError> {
    if l.unfolded_weights {
        return Err(ExportError(format!(
            "layer {index} quantizes unfolded weights (PL+ICN), which this engine's per-layer requantization cannot carry: train it with folded weights"
        )));
    }
    let wq = l
        .weight_quantizer
        .as_ref()
        .and_then(|q| q.0.affine(l.weight_range()))
        .ok_or_else(|| {
            ExportError(format!(
                "layer {index} has no affine weight quantizer: set AffineQuantizer::weights on the model before exporting"
            ))
        })?;
    let out_q = stage_params(&l.output, &format!("layer {index}"))?;
    let codes = floats(l.weights_to_quantize())
        .into_iter()
        .map(|v| Ok((wq.quantize(f64::from(v))? - 128) as i8))
        .collect::<Result<Vec<i8>, ExportError>>()?;
    let stage = output_stage(
        &floats(l.folded_bias()),
        input,
        &out_q,
        &[wq.scale],
        engine_activation(l.output.activation),
        rounding,
    )?;
    Ok(QuantizedLayer {
        codes,
        zero_point: wq.zero_point - 128,
        stage,
        out_q,
    })
}

/// The integer form of the input normalization `norm` reading `input`: per channel, the output
/// code of each of the 256 input codes, read from the block's own fake-quantized forward pass (on
/// pixels made as the trainer makes them, `code / 255` in f32) so that it is the model's mapping
/// exactly; returned with the output parameters. The block must read the pixels themselves.
pub(crate) fn code_table(
    norm: &InputNorm,
    input: &QParams,
    channels: usize,
) -> Result<(CodeTableLayer, QParams), ExportError> {
    if *input != pixel_params()? {
        return Err(ExportError(
            "input normalization reads pixels: make it the network's first block".into(),
        ));
    }
    let out_q = stage_params(&norm.output, "input normalization")?;
    let device = norm.mean.value_sync().device();
    let pixels: Vec<f32> = (0..channels)
        .flat_map(|_| (0..=255_u8).map(|q| f32::from(q) / 255.0))
        .collect();
    let x = Tensor::from_data(TensorData::new(pixels, [1, channels, 1, 256]), &device);
    let tables = codes_of(norm.forward(x, &Phase::EVAL), &out_q)?
        .into_iter()
        .map(|q| q as u8)
        .collect();
    let table = CodeTableLayer {
        tables,
        zero_point: out_q.zero_point,
    };
    Ok((table, out_q))
}

/// Builds the engine layer for `l` reading `input` (parameters, shape); returns it with its output
/// parameters and shape.
pub(crate) fn convert_layer(
    l: &QLayer,
    index: usize,
    input: &QParams,
    shape: Shape,
    rounding: RoundingMode,
) -> Result<(Layer, QParams, Shape), ExportError> {
    let QuantizedLayer {
        codes: w,
        zero_point,
        stage,
        out_q,
    } = quantize_layer(l, index, input, rounding)?;
    let dims = l.weight.dims();
    let [co, ci, _, _] = dims;
    let zp = vec![zero_point];
    match l.kind {
        LayerKind::Conv {
            kernel,
            stride,
            groups,
        } => {
            let pad = kernel / 2;
            let window = Window::square(kernel, stride, pad);
            let out_shape = Shape {
                h: (shape.h + 2 * pad - kernel) / stride + 1,
                w: (shape.w + 2 * pad - kernel) / stride + 1,
                c: co,
            };
            if groups == 1 {
                let layer = ConvLayer {
                    out_channels: co,
                    window,
                    weights: layout::oihw_to_hwio(&w, dims),
                    weight_zero_points: zp,
                    stage,
                };
                Ok((Layer::Conv2d(layer), out_q, out_shape))
            } else if groups == co && ci == 1 {
                let layer = DepthwiseLayer {
                    window,
                    weights: layout::depthwise_oihw_to_hwc(&w, dims),
                    weight_zero_points: zp,
                    stage,
                };
                Ok((Layer::DepthwiseConv2d(layer), out_q, out_shape))
            } else {
                Err(ExportError(format!(
                    "layer {index}: grouped conv with {groups} groups is not supported by the engine (only 1 or depthwise)"
                )))
            }
        }
        LayerKind::Linear => {
            // Burn flattens C,H,W; the engine flattens H,W,C.
            let (c, h, wd) = (shape.c, shape.h, shape.w);
            if c * h * wd != ci {
                return Err(ExportError(format!(
                    "layer {index}: FC expects {ci} inputs but receives {c}x{h}x{wd}"
                )));
            }
            let layer = FullyConnectedLayer {
                out_features: co,
                weights: layout::fc_chw_to_kn(&w, co, (c, h, wd)),
                weight_zero_points: zp,
                stage,
            };
            Ok((
                Layer::FullyConnected(layer),
                out_q,
                Shape { h: 1, w: 1, c: co },
            ))
        }
    }
}

/// Export state: the engine nodes built so far and the parameters and shape of the last one's
/// output.
pub(crate) struct Exporter {
    rounding: RoundingMode,
    nodes: Vec<Node>,
    params: QParams,
    shape: Shape,
    /// Layers of the network converted so far (for error messages).
    index: usize,
}

impl Exporter {
    /// The last node's output value (0, the model input, before the first node).
    fn current(&self) -> usize {
        self.nodes.len()
    }

    /// Appends `layers` as a chain reading value `from`, whose parameters and shape are `at`;
    /// returns the chain's last value with its parameters and shape.
    fn chain(
        &mut self,
        from: usize,
        layers: &[QLayer],
        at: (QParams, Shape),
    ) -> Result<(usize, QParams, Shape), ExportError> {
        let (mut v, (mut p, mut s)) = (from, at);
        for l in layers {
            let (layer, np, ns) = convert_layer(l, self.index, &p, s, self.rounding)?;
            self.index += 1;
            self.nodes.push(Node::new(v, layer));
            v = self.current();
            (p, s) = (np, ns);
        }
        Ok((v, p, s))
    }

    /// Appends `layer` reading the last node's output.
    fn push(&mut self, layer: Layer) {
        self.nodes.push(Node::new(self.current(), layer));
    }

    fn block(&mut self, b: &Block) -> Result<(), ExportError> {
        let here = (self.params, self.shape);
        match b {
            Block::InputNorm(n) => {
                let (table, out_q) = code_table(n, &self.params, self.shape.c)?;
                self.push(Layer::CodeTable(table));
                self.params = out_q;
            }
            Block::Layer(l) => {
                let (_, p, s) = self.chain(self.current(), std::slice::from_ref(l), here)?;
                (self.params, self.shape) = (p, s);
            }
            Block::MaxPool(m) => {
                self.push(Layer::MaxPool(PoolLayer {
                    window: Window::square(m.size, m.stride, m.padding),
                    act_min: self.params.range.qmin as u8,
                    act_max: self.params.range.qmax as u8,
                }));
                self.shape = Shape {
                    h: m.out_side(self.shape.h),
                    w: m.out_side(self.shape.w),
                    c: self.shape.c,
                };
            }
            Block::GlobalAvgPool(_) => {
                self.push(Layer::GlobalAvgPool);
                self.shape = Shape {
                    h: 1,
                    w: 1,
                    c: self.shape.c,
                };
            }
            Block::Residual(r) => {
                let out_q = stage_params(
                    &r.add.output,
                    &format!("residual add after layer {}", self.index),
                )?;
                let act = engine_activation(r.add.output.activation);
                let input = self.current();
                let (body, body_q, body_shape) = self.chain(input, &r.body, here)?;
                // The integer add is symmetric in its two (codes, parameters) operands.
                let (inputs, add) = match &r.shortcut {
                    None => (
                        vec![body, input],
                        AddLayer::from_float(&body_q, &self.params, &out_q, act)?,
                    ),
                    Some(sc) => {
                        let (short, short_q, _) =
                            self.chain(input, std::slice::from_ref(sc), here)?;
                        (
                            vec![short, body],
                            AddLayer::from_float(&short_q, &body_q, &out_q, act)?,
                        )
                    }
                };
                self.nodes.push(Node {
                    inputs,
                    layer: Layer::Add(add),
                });
                (self.params, self.shape) = (out_q, body_shape);
            }
        }
        Ok(())
    }
}

/// Exports `net` (every layer with an affine weight quantizer, every output stage with an affine
/// activation quantizer, as after [`Net::set_quantizers`] with [`crate::AffineQuantizer`]s) for
/// `input = [C, H, W]` images, with one `rounding` mode for the whole model.
pub fn export(
    net: &Net,
    input: [usize; 3],
    rounding: RoundingMode,
) -> Result<IntegerNet, ExportError> {
    let shape = Shape {
        h: input[1],
        w: input[2],
        c: input[0],
    };
    let pixels = pixel_params()?;
    let mut ex = Exporter {
        rounding,
        nodes: Vec::new(),
        params: pixels,
        shape,
        index: 0,
    };
    for b in &net.blocks {
        ex.block(b)?;
    }
    let model = Model::new(ModelSpec {
        input: InputSpec {
            shape,
            zero_point: pixels.zero_point,
        },
        nodes: ex.nodes,
        rounding,
        output: OutputType::U8,
    })?;
    Ok(IntegerNet {
        model,
        input,
        output: ex.params,
        classes: net.classes,
    })
}

/// Largest reduction depth (input values per output) for which [`simulate_codes`] is exact: it
/// multiplies zero-point-centred activation codes (`|x| <= 255`) with weight codes split into
/// `16 hi + lo` (`|hi| <= 16`, `|lo| <= 8`) in f32, and every partial sum of at most this many
/// products of size `<= 255 * 16` stays below `2^24`, where f32 holds every integer exactly.
pub const EXACT_DEPTH: usize = (1 << 24) / (255 * 16);
