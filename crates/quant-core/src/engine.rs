//! The integer inference engine: a graph of quantized layers run on a batch of uint8 images,
//! integer-only at run time.
//!
//! * A [`ModelSpec`] is plain data: integer weights, zero points, biases, multipliers, clamps.
//!   It is what `quant-train` exports and what [`Model::save`] / [`Model::load`] store.
//! * [`Model::new`] validates a spec (shapes chain, zero points agree, one rounding mode) and
//!   packs the weights for the fastest kernel backend of this CPU.
//! * [`Model::run`] executes it: NHWC uint8 in, uint8 or int8 codes out.
//!
//! Values are numbered: value 0 is the model input, value `i` is the output of `nodes[i - 1]`.
//! Every [`Node`] names the values it reads, all earlier ones: one for every layer, two for
//! [`Layer::Add`]. A branch (a ResNet projection shortcut, say) is a node that reads an earlier
//! value than the one before it; the model's output is the last node's.
//!
//! # File format (version 2)
//!
//! UTF-8 JSON: `{"format": "quant-core-model", "version": 2, "model": <ModelSpec>}`, where
//! `ModelSpec` is the serde encoding of the types below (weights as arrays of integers,
//! multipliers as `{"multiplier": i32, "shift": i32}`). A file whose `format` differs, whose
//! `version` is not 2 (version 1 was a chain of layers with a recall node for branches), that
//! does not parse, or whose model does not validate is rejected with a [`QuantError::Format`]
//! naming the problem.
#![deny(clippy::float_arithmetic)]

use std::path::Path;
use std::sync::Arc;

pub mod layout;

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result, arg_err, shape_err};
use crate::fixedpoint::RoundingMode;
pub use crate::graph::Shape;
use crate::graph::{Data, DenseInput, Graph, Kind, Op, Pooling, Requantizer};
use crate::kernels::{
    self, AddParams, Backend, ConvGeometry, ConvKernel, ConvShape, DepthwiseWeights, OutputStage,
    PackedWeights,
};
use crate::ops::OpCounts;

/// Magic string of model files.
pub const FORMAT_MAGIC: &str = "quant-core-model";
/// Model file version this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// Window of a convolution or pooling layer (input sizes come from the node's input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
}

impl Window {
    /// Square `kernel x kernel` window with equal strides and explicit symmetric padding.
    pub fn square(kernel: usize, stride: usize, pad: usize) -> Self {
        Window {
            kernel_h: kernel,
            kernel_w: kernel,
            stride_h: stride,
            stride_w: stride,
            padding: [pad; 4],
        }
    }

    fn geometry(&self, shape: Shape) -> Result<ConvGeometry> {
        let g = ConvGeometry {
            in_h: shape.h,
            in_w: shape.w,
            in_c: shape.c,
            kernel_h: self.kernel_h,
            kernel_w: self.kernel_w,
            stride_h: self.stride_h,
            stride_w: self.stride_w,
            pad_top: self.padding[0],
            pad_left: self.padding[1],
            pad_bottom: self.padding[2],
            pad_right: self.padding[3],
        };
        g.validate()?;
        Ok(g)
    }
}

/// A 2-D convolution: HWIO int8 weights (`[ky][kx][ci][co]`), per-output-channel zero points
/// (one value for per-tensor), and the fused output stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvLayer {
    /// Output channels.
    pub out_channels: usize,
    /// Window, stride, padding.
    pub window: Window,
    /// Weights, `kernel_h * kernel_w * in_c * out_channels` codes.
    pub weights: Vec<i8>,
    /// Weight zero points (1 or `out_channels`).
    pub weight_zero_points: Vec<i32>,
    /// Bias, requantization, output zero point, clamp.
    pub stage: OutputStage,
}

/// A depthwise convolution (channel multiplier 1): weights `[ky][kx][c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthwiseLayer {
    /// Window, stride, padding.
    pub window: Window,
    /// Weights, `kernel_h * kernel_w * c` codes.
    pub weights: Vec<i8>,
    /// Weight zero points (1 or `c`).
    pub weight_zero_points: Vec<i32>,
    /// Bias, requantization, output zero point, clamp.
    pub stage: OutputStage,
}

/// A fully connected layer over the flattened (HWC order) input: weights `K x N` row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FullyConnectedLayer {
    /// Output features `N`.
    pub out_features: usize,
    /// Weights, `K * N` codes with `K` the input size.
    pub weights: Vec<i8>,
    /// Weight zero points (1 or `N`).
    pub weight_zero_points: Vec<i32>,
    /// Bias, requantization, output zero point, clamp.
    pub stage: OutputStage,
}

/// A pooling layer; output shares the input's quantization parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolLayer {
    /// Window, stride, padding (padded taps are skipped).
    pub window: Window,
    /// Lowest output code.
    pub act_min: u8,
    /// Highest output code.
    pub act_max: u8,
}

/// A residual add of the node's two inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AddLayer {
    /// Integer add parameters (input 1 = the node's first input, input 2 = its second).
    pub params: AddParams,
}

/// A per-channel table from input codes to output codes: `tables[c * 256 + q]` is the output
/// code of input code `q` in channel `c`. It is the integer form of a per-channel map applied to
/// uint8 pixels before the first layer, such as the ImageNet models' input normalization
/// `(x / 255 - mean_c) / std_c` followed by the first layer's input quantization: a uint8 input
/// has only 256 values per channel, so the exporter evaluates the map once per code and the run
/// is one lookup per value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeTableLayer {
    /// 256 output codes per channel, channel after channel.
    pub tables: Vec<u8>,
    /// Zero point of the output codes.
    pub zero_point: i32,
}

/// One layer of a [`ModelSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Layer {
    /// 2-D convolution.
    Conv2d(ConvLayer),
    /// Depthwise convolution.
    DepthwiseConv2d(DepthwiseLayer),
    /// Fully connected (flattens its input).
    FullyConnected(FullyConnectedLayer),
    /// Max pooling.
    MaxPool(PoolLayer),
    /// Average pooling.
    AvgPool(PoolLayer),
    /// Average over the whole image per channel (output `1 x 1 x c`, same parameters).
    GlobalAvgPool,
    /// Residual add of two values of one shape.
    Add(AddLayer),
    /// Per-channel code table (same shape, new parameters).
    CodeTable(CodeTableLayer),
}

impl Layer {
    /// How many values the layer reads.
    pub fn arity(&self) -> usize {
        match self {
            Layer::Add(_) => 2,
            _ => 1,
        }
    }
}

/// A layer and the values it reads (0 = model input, `i` = output of node `i - 1`), all earlier
/// than the node's own output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Values read, as many as the layer's [`Layer::arity`].
    pub inputs: Vec<usize>,
    /// The computation.
    pub layer: Layer,
}

impl Node {
    /// `layer` reading value `input`.
    pub fn new(input: usize, layer: Layer) -> Node {
        Node {
            inputs: vec![input],
            layer,
        }
    }

    /// A chain: each layer reads the previous one's output, the first reads value `first`.
    pub fn chain(first: usize, layers: impl IntoIterator<Item = Layer>) -> Vec<Node> {
        layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| Node::new(if i == 0 { first } else { first + i }, layer))
            .collect()
    }
}

/// Model input description: image shape and the zero point of its uint8 codes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Image shape (NHWC without the batch).
    pub shape: Shape,
    /// Zero point of the input codes (0 for pixels fed as `x / 255`).
    pub zero_point: i32,
}

/// Storage type of the model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutputType {
    /// uint8 codes with the last layer's zero point.
    #[default]
    U8,
    /// int8 codes (`q - 128`) with zero point `Z - 128` (TFLite int8 convention).
    I8,
}

/// A complete, serializable integer model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Input description.
    pub input: InputSpec,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// The single rounding mode of every requantization in the model.
    pub rounding: RoundingMode,
    /// Output storage type.
    pub output: OutputType,
}

/// Output codes of a model run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QData {
    /// uint8 codes.
    U8(Vec<u8>),
    /// int8 codes.
    I8(Vec<i8>),
}

/// A batch of quantized outputs (`batch x h x w x c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QTensor {
    /// Batch size.
    pub batch: usize,
    /// Per-item shape.
    pub shape: Shape,
    /// Zero point of `data` (in its own storage type).
    pub zero_point: i32,
    /// Codes.
    pub data: QData,
}

impl QTensor {
    /// Codes widened to i32, batch-major.
    pub fn codes(&self) -> Vec<i32> {
        match &self.data {
            QData::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            QData::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        }
    }

    /// Index of the largest code of each batch item (first one on ties): the predicted class
    /// for logits. Comparing codes is comparing reals, since the scale is positive.
    pub fn argmax(&self) -> Vec<usize> {
        let per = self.shape.len();
        self.codes()
            .chunks(per.max(1))
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold(
                        (0, i32::MIN),
                        |best, (i, &v)| if v > best.1 { (i, v) } else { best },
                    )
                    .0
            })
            .collect()
    }
}

/// Jacob et al.'s output stage as the integer graph's requantization ([`Requantizer`]): the
/// kernels apply it fused to their accumulation ([`Requantizer::affine`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AffineStage {
    stage: OutputStage,
    channels: usize,
    /// What requantizing one accumulator of every channel performs, summed once here: the
    /// executor asks on every run.
    per_pixel: OpCounts,
}

impl AffineStage {
    /// `stage` over `channels` output channels (a per-tensor stage does not say how many).
    pub fn new(stage: OutputStage, channels: usize) -> AffineStage {
        let per_pixel = stage.op_counts(channels, 1);
        AffineStage {
            stage,
            channels,
            per_pixel,
        }
    }
}

impl Requantizer for AffineStage {
    fn output(&self) -> Kind {
        Kind::eight_bit(self.stage.output_zero_point)
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn apply(&self, acc: &[i32]) -> Result<Data> {
        let stage = &self.stage;
        let bias = |n: usize| stage.bias.get(n).copied().unwrap_or(0);
        Ok(Data::Codes(
            acc.iter()
                .enumerate()
                .map(|(i, &a)| {
                    let n = i % self.channels.max(1);
                    stage.requantize(a.wrapping_add(bias(n)), n)
                })
                .collect(),
        ))
    }

    fn op_counts(&self, per_channel: u64) -> OpCounts {
        self.per_pixel.times(per_channel)
    }

    /// The int32 biases (the multipliers are not counted, as before the graph).
    fn stored_bytes(&self) -> usize {
        4 * self.stage.bias.len()
    }

    fn affine(&self) -> Option<&OutputStage> {
        Some(&self.stage)
    }
}

/// A validated model, its graph laid out for one kernel backend.
#[derive(Debug, Clone)]
pub struct Model {
    spec: ModelSpec,
    graph: Graph,
    backend: Backend,
}

fn check_stage(stage: &OutputStage, n: usize, rounding: RoundingMode, what: usize) -> Result<()> {
    stage
        .validate(n)
        .map_err(|e| arg_err!("layer {what}: {e}"))?;
    if stage.rounding != rounding {
        return Err(arg_err!(
            "layer {what} uses {:?} rounding but the model uses {:?}; one model, one rounding mode",
            stage.rounding,
            rounding
        ));
    }
    Ok(())
}

impl Model {
    /// Validates `spec` and packs it for the fastest backend of this CPU.
    pub fn new(spec: ModelSpec) -> Result<Self> {
        Model::with_backend(spec, Backend::detect())
    }

    /// Validates `spec` and packs it for `backend`.
    pub fn with_backend(spec: ModelSpec, backend: Backend) -> Result<Self> {
        let input = spec.input;
        if input.shape.is_empty() {
            return Err(shape_err!("model input shape {:?} is empty", input.shape));
        }
        if !(0..=255).contains(&input.zero_point) {
            return Err(arg_err!(
                "input zero point {} outside [0, 255]",
                input.zero_point
            ));
        }
        let image = Kind::eight_bit(input.zero_point);
        let mut graph = Graph::new(input.shape, image)?;
        for (i, node) in spec.nodes.iter().enumerate() {
            let idx = i + 1;
            if node.inputs.len() != node.layer.arity() {
                return Err(arg_err!(
                    "node {idx} reads {} values; its layer takes {}",
                    node.inputs.len(),
                    node.layer.arity()
                ));
            }
            if let Some(&late) = node.inputs.iter().find(|&&v| v >= idx) {
                return Err(arg_err!(
                    "node {idx} reads value {late}, which is not an earlier value"
                ));
            }
            let shape = graph.shape(node.inputs[0]).unwrap_or(input.shape);
            let affine =
                |stage: &OutputStage, channels: usize| -> Result<Option<Arc<dyn Requantizer>>> {
                    check_stage(stage, channels, spec.rounding, idx)?;
                    Ok(Some(Arc::new(AffineStage::new(stage.clone(), channels))))
                };
            let op = match &node.layer {
                Layer::Conv2d(l) => {
                    let g = l.window.geometry(shape)?;
                    let k = g.kernel_h * g.kernel_w * g.in_c;
                    let w = PackedWeights::new(
                        &l.weights,
                        k,
                        l.out_channels,
                        &l.weight_zero_points,
                        backend,
                    )
                    .map_err(|e| shape_err!("layer {idx} (conv): {e}"))?;
                    Op::Conv {
                        shape: ConvShape {
                            geometry: g,
                            out_c: l.out_channels,
                            groups: 1,
                        },
                        kernel: ConvKernel::Dense(w),
                        bias: Vec::new(),
                        stage: affine(&l.stage, l.out_channels)?,
                        weight_bytes: l.weights.len(),
                    }
                }
                Layer::DepthwiseConv2d(l) => {
                    let g = l.window.geometry(shape)?;
                    let w = DepthwiseWeights::new(
                        &l.weights,
                        g.kernel_h,
                        g.kernel_w,
                        shape.c,
                        &l.weight_zero_points,
                        backend,
                    )
                    .map_err(|e| shape_err!("layer {idx} (depthwise): {e}"))?;
                    Op::Conv {
                        shape: ConvShape {
                            geometry: g,
                            out_c: shape.c,
                            groups: shape.c,
                        },
                        kernel: ConvKernel::Depthwise(w),
                        bias: Vec::new(),
                        stage: affine(&l.stage, shape.c)?,
                        weight_bytes: l.weights.len(),
                    }
                }
                Layer::FullyConnected(l) => {
                    let w = PackedWeights::new(
                        &l.weights,
                        shape.len(),
                        l.out_features,
                        &l.weight_zero_points,
                        backend,
                    )
                    .map_err(|e| shape_err!("layer {idx} (fully connected): {e}"))?;
                    Op::Dense {
                        input: DenseInput::Flat,
                        out: l.out_features,
                        kernel: ConvKernel::Dense(w),
                        bias: Vec::new(),
                        stage: affine(&l.stage, l.out_features)?,
                        weight_bytes: l.weights.len(),
                    }
                }
                Layer::MaxPool(l) => Op::Pool {
                    rule: Pooling::Max,
                    window: l.window.geometry(shape)?,
                    act_min: l.act_min,
                    act_max: l.act_max,
                },
                Layer::AvgPool(l) => Op::Pool {
                    rule: Pooling::Average,
                    window: l.window.geometry(shape)?,
                    act_min: l.act_min,
                    act_max: l.act_max,
                },
                Layer::GlobalAvgPool => Op::Pool {
                    rule: Pooling::Average,
                    window: Window {
                        kernel_h: shape.h,
                        kernel_w: shape.w,
                        stride_h: 1,
                        stride_w: 1,
                        padding: [0; 4],
                    }
                    .geometry(shape)?,
                    act_min: 0,
                    act_max: 255,
                },
                Layer::Add(l) => Op::AffineAdd {
                    params: l.params,
                    rounding: spec.rounding,
                },
                Layer::CodeTable(l) => Op::CodeTable {
                    tables: l.tables.clone(),
                    zero_point: l.zero_point,
                },
            };
            graph
                .push(&node.inputs, op)
                .map_err(|e| arg_err!("layer {idx}: {e}"))?;
        }
        Ok(Model {
            spec,
            graph,
            backend,
        })
    }

    /// The model's data.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The kernel backend the weights were packed for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Output shape per batch item.
    pub fn output_shape(&self) -> Shape {
        self.graph
            .shape(self.graph.output())
            .unwrap_or(self.spec.input.shape)
    }

    /// Shape of node `i` (0 = input), if it exists.
    pub fn node_shape(&self, i: usize) -> Option<Shape> {
        self.graph.shape(i)
    }

    /// The model on the integer graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the model on `batch` NHWC uint8 images (`images.len() == batch * input size`).
    pub fn run(&self, images: &[u8], batch: usize) -> Result<QTensor> {
        self.run_counted(images, batch).map(|(out, _)| out)
    }

    /// [`Self::run`], with the operations it performed ([`crate::ops`]): each node adds its
    /// kernel's 8-bit products, its requantization's multipliers and shifts, and the bytes of
    /// its inputs, output and weights, for the batch (the graph's executor counts them).
    pub fn run_counted(&self, images: &[u8], batch: usize) -> Result<(QTensor, OpCounts)> {
        let input = self.spec.input;
        if batch == 0 || images.len() != batch * input.shape.len() {
            return Err(shape_err!(
                "{} input bytes are not {batch} images of {:?}",
                images.len(),
                input.shape
            ));
        }
        let (out, counts) = self.graph.run(self.graph.input(batch, images.to_vec()))?;
        let zp = out.kind.zero_point("the model output")?;
        let Data::Codes(codes) = out.data else {
            return Err(arg_err!("the model output holds no codes"));
        };
        let (data, zero_point) = match self.spec.output {
            OutputType::U8 => (QData::U8(codes), zp),
            OutputType::I8 => (QData::I8(kernels::u8_to_i8(&codes)), zp - 128),
        };
        let out = QTensor {
            batch,
            shape: out.shape,
            zero_point,
            data,
        };
        Ok((out, counts))
    }

    /// Serializes the model to the version-2 JSON format (see the module docs).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct File<'a> {
            format: &'a str,
            version: u32,
            model: &'a ModelSpec,
        }
        serde_json::to_vec(&File {
            format: FORMAT_MAGIC,
            version: FORMAT_VERSION,
            model: &self.spec,
        })
        .map_err(|e| QuantError::Format(format!("cannot encode model: {e}")))
    }

    /// Parses and validates a model file's bytes, packing for this CPU's fastest backend.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            QuantError::Format(format!(
                "not valid JSON ({e}); the file is corrupt or not a model"
            ))
        })?;
        match value.get("format").and_then(|v| v.as_str()) {
            Some(FORMAT_MAGIC) => {}
            other => {
                return Err(QuantError::Format(format!(
                    "format tag is {other:?}, expected \"{FORMAT_MAGIC}\": not a quant-core model file"
                )));
            }
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            other => {
                return Err(QuantError::Format(format!(
                    "model file version {other:?} is not supported (this build reads version {FORMAT_VERSION}): export the model again with this build"
                )));
            }
        }
        let spec_value = value
            .get("model")
            .cloned()
            .ok_or_else(|| QuantError::Format("no \"model\" field".into()))?;
        let spec: ModelSpec = serde_json::from_value(spec_value)
            .map_err(|e| QuantError::Format(format!("model field does not decode: {e}")))?;
        Model::new(spec).map_err(|e| QuantError::Format(format!("model does not validate: {e}")))
    }

    /// Writes the model atomically (temporary file in the same directory, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|e| QuantError::Io(format!("{}: {e}", path.display())))?;
        Model::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests;
