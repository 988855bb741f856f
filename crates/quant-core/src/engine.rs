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

pub mod layout;

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result, arg_err, shape_err};
use crate::fixedpoint::RoundingMode;
pub use crate::graph::Shape;
use crate::kernels::{
    self, AddParams, Backend, ConvGeometry, DepthwiseWeights, OutputStage, PackedWeights, avg_pool,
    conv2d, depthwise_conv2d, max_pool,
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

/// Per-layer data prepared by [`Model::new`].
#[derive(Debug, Clone)]
enum Prepared {
    Conv(PackedWeights, ConvGeometry),
    Depthwise(DepthwiseWeights, ConvGeometry),
    Dense(PackedWeights),
    Pool(ConvGeometry),
    Add,
}

/// A validated model, packed for one kernel backend.
#[derive(Debug, Clone)]
pub struct Model {
    spec: ModelSpec,
    prepared: Vec<Prepared>,
    shapes: Vec<Shape>,
    zero_points: Vec<i32>,
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
        let mut shapes = vec![input.shape];
        let mut zero_points = vec![input.zero_point];
        let mut prepared = Vec::with_capacity(spec.nodes.len());
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
            let shape = shapes[node.inputs[0]];
            let zp = zero_points[node.inputs[0]];
            let (p, out_shape, out_zp) = match &node.layer {
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
                    check_stage(&l.stage, l.out_channels, spec.rounding, idx)?;
                    let s = Shape {
                        h: g.out_h(),
                        w: g.out_w(),
                        c: l.out_channels,
                    };
                    (Prepared::Conv(w, g), s, l.stage.output_zero_point)
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
                    check_stage(&l.stage, shape.c, spec.rounding, idx)?;
                    let s = Shape {
                        h: g.out_h(),
                        w: g.out_w(),
                        c: shape.c,
                    };
                    (Prepared::Depthwise(w, g), s, l.stage.output_zero_point)
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
                    check_stage(&l.stage, l.out_features, spec.rounding, idx)?;
                    (
                        Prepared::Dense(w),
                        Shape {
                            h: 1,
                            w: 1,
                            c: l.out_features,
                        },
                        l.stage.output_zero_point,
                    )
                }
                Layer::MaxPool(l) | Layer::AvgPool(l) => {
                    let g = l.window.geometry(shape)?;
                    if l.act_min > l.act_max {
                        return Err(arg_err!(
                            "layer {idx}: empty clamp [{}, {}]",
                            l.act_min,
                            l.act_max
                        ));
                    }
                    (
                        Prepared::Pool(g),
                        Shape {
                            h: g.out_h(),
                            w: g.out_w(),
                            c: shape.c,
                        },
                        zp,
                    )
                }
                Layer::GlobalAvgPool => {
                    let g = Window {
                        kernel_h: shape.h,
                        kernel_w: shape.w,
                        stride_h: 1,
                        stride_w: 1,
                        padding: [0; 4],
                    }
                    .geometry(shape)?;
                    (
                        Prepared::Pool(g),
                        Shape {
                            h: 1,
                            w: 1,
                            c: shape.c,
                        },
                        zp,
                    )
                }
                Layer::Add(l) => {
                    let other = node.inputs[1];
                    if shapes[other] != shape {
                        return Err(shape_err!(
                            "node {idx}: add of {:?} and value {other} of {:?}",
                            shape,
                            shapes[other]
                        ));
                    }
                    l.params.validate()?;
                    if l.params.input1_zero_point != zp
                        || l.params.input2_zero_point != zero_points[other]
                    {
                        return Err(arg_err!(
                            "node {idx}: add zero points do not match its input values"
                        ));
                    }
                    (Prepared::Add, shape, l.params.output_zero_point)
                }
            };
            prepared.push(p);
            shapes.push(out_shape);
            zero_points.push(out_zp);
        }
        Ok(Model {
            spec,
            prepared,
            shapes,
            zero_points,
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
        *self.shapes.last().unwrap_or(&self.spec.input.shape)
    }

    /// Shape of node `i` (0 = input), if it exists.
    pub fn node_shape(&self, i: usize) -> Option<Shape> {
        self.shapes.get(i).copied()
    }

    /// Runs the model on `batch` NHWC uint8 images (`images.len() == batch * input size`).
    pub fn run(&self, images: &[u8], batch: usize) -> Result<QTensor> {
        self.run_counted(images, batch).map(|(out, _)| out)
    }

    /// [`Self::run`], with the operations it performed ([`crate::ops`]): each node adds its
    /// kernel's 8-bit products, its requantization's multipliers and shifts, and the bytes of
    /// its inputs, output and weights, for the batch.
    pub fn run_counted(&self, images: &[u8], batch: usize) -> Result<(QTensor, OpCounts)> {
        let in_len = self.spec.input.shape.len();
        if batch == 0 || images.len() != batch * in_len {
            return Err(shape_err!(
                "{} input bytes are not {batch} images of {:?}",
                images.len(),
                self.spec.input.shape
            ));
        }
        // Keep each value only until the last node that reads it.
        let mut last_use: Vec<usize> = (0..self.shapes.len()).collect();
        for (i, node) in self.spec.nodes.iter().enumerate() {
            for &v in &node.inputs {
                last_use[v] = last_use[v].max(i + 1);
            }
        }
        let released = |v: usize| arg_err!("value {v} was released too early");
        let mut nodes: Vec<Option<Vec<u8>>> = vec![None; self.shapes.len()];
        nodes[0] = Some(images.to_vec());
        let mut counts = OpCounts::default();
        for (i, (node, prep)) in self.spec.nodes.iter().zip(&self.prepared).enumerate() {
            let first = node.inputs[0];
            let x = nodes[first].as_deref().ok_or_else(|| released(first))?;
            let zp = self.zero_points[first];
            let mut y = vec![0u8; batch * self.shapes[i + 1].len()];
            // Every value is 8-bit codes: the node reads its inputs and writes its output.
            counts.bytes_moved += y.len() as u64
                + node
                    .inputs
                    .iter()
                    .map(|&v| (batch * self.shapes[v].len()) as u64)
                    .sum::<u64>();
            // Requantized outputs per channel, the products behind each output and the weights.
            let channels = self.shapes[i + 1].c;
            let per_channel = (y.len() / channels.max(1)) as u64;
            let mut products = |stage: &OutputStage, depth: usize, weights: &[i8]| {
                counts.mul_8x8 += y.len() as u64 * depth as u64;
                counts.bytes_moved += (weights.len() + 4 * stage.bias.len()) as u64;
                counts += stage.op_counts(channels, per_channel);
            };
            match (&node.layer, prep) {
                (Layer::Conv2d(l), Prepared::Conv(w, g)) => {
                    products(&l.stage, w.k(), &l.weights);
                    conv2d(x, batch, g, zp, w, &l.stage, &mut y)?
                }
                (Layer::DepthwiseConv2d(l), Prepared::Depthwise(w, g)) => {
                    products(&l.stage, g.kernel_h * g.kernel_w, &l.weights);
                    depthwise_conv2d(x, batch, g, zp, w, &l.stage, &mut y)?
                }
                (Layer::FullyConnected(l), Prepared::Dense(w)) => {
                    products(&l.stage, w.k(), &l.weights);
                    kernels::gemm(x, batch, zp, w, &l.stage, &mut y)?
                }
                (Layer::MaxPool(l), Prepared::Pool(g)) => {
                    max_pool(x, batch, g, l.act_min, l.act_max, &mut y)?
                }
                (Layer::AvgPool(l), Prepared::Pool(g)) => {
                    avg_pool(x, batch, g, l.act_min, l.act_max, &mut y)?
                }
                (Layer::GlobalAvgPool, Prepared::Pool(g)) => avg_pool(x, batch, g, 0, 255, &mut y)?,
                (Layer::Add(l), Prepared::Add) => {
                    let other = node.inputs[1];
                    let skip = nodes[other].as_deref().ok_or_else(|| released(other))?;
                    counts += l.params.op_counts(y.len() as u64, self.spec.rounding);
                    kernels::add(x, skip, &l.params, self.spec.rounding, &mut y)?
                }
                _ => {
                    return Err(arg_err!(
                        "node {} does not match its prepared kernel",
                        i + 1
                    ));
                }
            }
            nodes[i + 1] = Some(y);
            for (v, value) in nodes.iter_mut().enumerate().take(i + 1) {
                if last_use[v] <= i + 1 {
                    *value = None;
                }
            }
        }
        let out = nodes
            .pop()
            .flatten()
            .ok_or_else(|| arg_err!("model produced no output"))?;
        let zp = *self
            .zero_points
            .last()
            .unwrap_or(&self.spec.input.zero_point);
        let (data, zero_point) = match self.spec.output {
            OutputType::U8 => (QData::U8(out), zp),
            OutputType::I8 => (QData::I8(kernels::u8_to_i8(&out)), zp - 128),
        };
        let out = QTensor {
            batch,
            shape: self.output_shape(),
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
