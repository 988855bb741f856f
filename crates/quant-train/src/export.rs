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
//! quant-core's engine runs a chain of layers in which every layer reads the previous node (a
//! residual add may also read an earlier one). A residual block with a projection shortcut (a conv
//! on the block input) does not fit that chain, so an [`IntegerNet`] is a list of [`Segment`]s:
//! runs of engine layers, and projection blocks executed as two engine models joined by
//! quant-core's integer add kernel. Everything at run time stays integer-only.

use burn::prelude::*;
use quant_core::engine::{
    AddLayer, ConvLayer, DepthwiseLayer, FullyConnectedLayer, InputSpec, Layer, Model, ModelSpec,
    OutputType, PoolLayer, QData, QTensor, Shape, Window,
};
use quant_core::fixedpoint::RoundingMode;
use quant_core::kernels::{AddParams, OutputStage as EngineStage, add};
use quant_core::multiplier::conv_multiplier;
use quant_core::qparams::{Activation as EngineActivation, QParams, QRange, quantize_bias};
use repro::datasets::ImageSet;

use crate::layers::{Activation, LayerKind, OutputStage, Phase, QLayer};
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

/// One piece of an [`IntegerNet`].
#[derive(Debug, Clone)]
pub enum Segment {
    /// A chain of engine layers.
    Engine(Model),
    /// A residual block with a projection shortcut: `add(body(x), shortcut(x))`.
    Projection {
        /// Main branch.
        body: Model,
        /// Shortcut branch.
        shortcut: Model,
        /// Integer add of the two (body = input 1).
        add: AddParams,
        /// Rounding mode of the add.
        rounding: RoundingMode,
    },
}

/// An exported integer-only network: uint8 pixels in, uint8 logit codes out.
#[derive(Debug, Clone)]
pub struct IntegerNet {
    /// Pieces in execution order.
    pub segments: Vec<Segment>,
    /// Input `[C, H, W]` (codes `S = 1/255`, `Z = 0`).
    pub input: [usize; 3],
    /// Parameters of the logit codes.
    pub output: QParams,
    /// Number of classes.
    pub classes: usize,
}

fn u8_codes(t: QTensor) -> Vec<u8> {
    match t.data {
        QData::U8(v) => v,
        QData::I8(v) => quant_core::kernels::i8_to_u8(&v),
    }
}

fn stage_bytes(s: &EngineStage) -> usize {
    4 * s.bias.len() + 8 * s.multipliers.len() + 6
}

fn spec_bytes(spec: &ModelSpec) -> usize {
    spec.layers
        .iter()
        .map(|l| match l {
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
            _ => 0,
        })
        .sum()
}

#[deny(clippy::float_arithmetic)]
impl IntegerNet {
    /// Logit codes (`[batch, classes]`, row-major) for `batch` images given as row-major bytes
    /// (`C = 1`: the raw IDX pixels).
    pub fn run(&self, images: &[u8], batch: usize) -> Result<Vec<i32>, ExportError> {
        let mut x = images.to_vec();
        for seg in &self.segments {
            x = match seg {
                Segment::Engine(m) => u8_codes(m.run(&x, batch)?),
                Segment::Projection {
                    body,
                    shortcut,
                    add: params,
                    rounding,
                } => {
                    let a = u8_codes(body.run(&x, batch)?);
                    let b = u8_codes(shortcut.run(&x, batch)?);
                    let mut out = vec![0u8; a.len()];
                    add(&a, &b, params, *rounding, &mut out)?;
                    out
                }
            };
        }
        Ok(x.into_iter().map(i32::from).collect())
    }

    /// Storage of the deployed model: int8 weights, int32 biases and zero points, multipliers
    /// (int32 + shift), clamps and add parameters.
    pub fn size_bytes(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Engine(m) => spec_bytes(m.spec()),
                Segment::Projection { body, shortcut, .. } => {
                    spec_bytes(body.spec()) + spec_bytes(shortcut.spec()) + 3 * 8 + 3 * 4 + 2
                }
            })
            .sum()
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

fn engine_activation(a: Activation) -> EngineActivation {
    match a {
        Activation::None => EngineActivation::None,
        Activation::Relu | Activation::Pact(_) => EngineActivation::Relu,
        Activation::Relu6 => EngineActivation::Relu6,
    }
}

fn stage_params(stage: &OutputStage, what: &str) -> Result<QParams, ExportError> {
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

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

/// Builds the engine layer for `l` reading `input` (parameters, shape); returns it with its output
/// parameters and shape.
fn convert_layer(
    l: &QLayer,
    index: usize,
    input: &QParams,
    shape: Shape,
    rounding: RoundingMode,
) -> Result<(Layer, QParams, Shape), ExportError> {
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
    let [co, ci, kh, kw] = l.weight.dims();
    let w = floats(l.folded_weight());
    let bias = floats(l.folded_bias());
    let code = |v: f32| -> Result<i8, ExportError> { Ok((wq.quantize(f64::from(v))? - 128) as i8) };
    let stage = EngineStage {
        bias: quantize_bias(&bias, input.scale, &[wq.scale])?,
        multipliers: vec![conv_multiplier(input.scale, wq.scale, out_q.scale)?],
        rounding,
        output_zero_point: out_q.zero_point,
        act_min: 0,
        act_max: 255,
    };
    let (lo, hi) = engine_activation(l.output.activation).clamp_range(&out_q);
    let stage = EngineStage {
        act_min: lo as u8,
        act_max: hi as u8,
        ..stage
    };
    let zp = vec![wq.zero_point - 128];
    let at = |o: usize, i: usize, y: usize, x: usize| w[((o * ci + i) * kh + y) * kw + x];
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
                let mut hwio = Vec::with_capacity(w.len());
                for y in 0..kh {
                    for x in 0..kw {
                        for i in 0..ci {
                            for o in 0..co {
                                hwio.push(code(at(o, i, y, x))?);
                            }
                        }
                    }
                }
                let layer = ConvLayer {
                    out_channels: co,
                    window,
                    weights: hwio,
                    weight_zero_points: zp,
                    stage,
                };
                Ok((Layer::Conv2d(layer), out_q, out_shape))
            } else if groups == co && ci == 1 {
                let mut hwc = Vec::with_capacity(w.len());
                for y in 0..kh {
                    for x in 0..kw {
                        for o in 0..co {
                            hwc.push(code(at(o, 0, y, x))?);
                        }
                    }
                }
                let layer = DepthwiseLayer {
                    window,
                    weights: hwc,
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
            let mut kn = Vec::with_capacity(w.len());
            for y in 0..h {
                for x in 0..wd {
                    for ch in 0..c {
                        let k = (ch * h + y) * wd + x;
                        for o in 0..co {
                            kn.push(code(w[o * ci + k])?);
                        }
                    }
                }
            }
            let layer = FullyConnectedLayer {
                out_features: co,
                weights: kn,
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

/// Export state: the chain being built and the finished segments.
struct Exporter {
    rounding: RoundingMode,
    segments: Vec<Segment>,
    layers: Vec<Layer>,
    segment_input: InputSpec,
    params: QParams,
    shape: Shape,
    index: usize,
}

impl Exporter {
    fn model(&self, input: InputSpec, layers: Vec<Layer>) -> Result<Model, ExportError> {
        Ok(Model::new(ModelSpec {
            input,
            layers,
            rounding: self.rounding,
            output: OutputType::U8,
        })?)
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            shape: self.shape,
            zero_point: self.params.zero_point,
        }
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if !self.layers.is_empty() {
            let layers = std::mem::take(&mut self.layers);
            let m = self.model(self.segment_input, layers)?;
            self.segments.push(Segment::Engine(m));
        }
        self.segment_input = self.input_spec();
        Ok(())
    }

    /// Converts `layers` in sequence from the current state; returns them with the final
    /// parameters and shape (the state itself is not advanced).
    fn chain(&mut self, layers: &[QLayer]) -> Result<(Vec<Layer>, QParams, Shape), ExportError> {
        let (mut p, mut s) = (self.params, self.shape);
        let mut out = Vec::new();
        for l in layers {
            let (layer, np, ns) = convert_layer(l, self.index, &p, s, self.rounding)?;
            self.index += 1;
            out.push(layer);
            (p, s) = (np, ns);
        }
        Ok((out, p, s))
    }

    fn block(&mut self, b: &Block) -> Result<(), ExportError> {
        match b {
            Block::Layer(l) => {
                let (layers, p, s) = self.chain(std::slice::from_ref(l))?;
                self.layers.extend(layers);
                (self.params, self.shape) = (p, s);
            }
            Block::MaxPool(m) => {
                self.layers.push(Layer::MaxPool(PoolLayer {
                    window: Window::square(m.size, m.size, 0),
                    act_min: self.params.range.qmin as u8,
                    act_max: self.params.range.qmax as u8,
                }));
                self.shape = Shape {
                    h: self.shape.h / m.size,
                    w: self.shape.w / m.size,
                    c: self.shape.c,
                };
            }
            Block::GlobalAvgPool(_) => {
                self.layers.push(Layer::GlobalAvgPool);
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
                let (body, body_q, body_shape) = self.chain(&r.body)?;
                match &r.shortcut {
                    None => {
                        let skip = self.layers.len();
                        let add_layer =
                            AddLayer::from_float(skip, &body_q, &self.params, &out_q, act)?;
                        self.layers.extend(body);
                        self.layers.push(Layer::Add(add_layer));
                    }
                    Some(sc) => {
                        let (short, short_q, _) = self.chain(std::slice::from_ref(sc))?;
                        self.flush()?;
                        let input = self.input_spec();
                        let (lo, hi) = act.clamp_range(&out_q);
                        let add = AddParams::from_scales(
                            (body_q.scale, body_q.zero_point),
                            (short_q.scale, short_q.zero_point),
                            (out_q.scale, out_q.zero_point),
                            lo as u8,
                            hi as u8,
                        )?;
                        self.segments.push(Segment::Projection {
                            body: self.model(input, body)?,
                            shortcut: self.model(input, short)?,
                            add,
                            rounding: self.rounding,
                        });
                    }
                }
                (self.params, self.shape) = (out_q, body_shape);
                if r.shortcut.is_some() {
                    self.segment_input = self.input_spec();
                }
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
    let pixels = QParams::new(1.0 / 255.0, 0, QRange::U8)?;
    let mut ex = Exporter {
        rounding,
        segments: Vec::new(),
        layers: Vec::new(),
        segment_input: InputSpec {
            shape,
            zero_point: 0,
        },
        params: pixels,
        shape,
        index: 0,
    };
    for b in &net.blocks {
        ex.block(b)?;
    }
    ex.flush()?;
    Ok(IntegerNet {
        segments: ex.segments,
        input,
        output: ex.params,
        classes: net.classes,
    })
}

/// How closely the integer engine reproduces the fake-quantized model on a test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Fraction of images whose argmax agrees.
    pub agreement: f64,
    /// Largest |engine code - simulated code| over all logits, in output LSB.
    pub max_lsb: i64,
    /// Fraction of logits that differ at all.
    pub mismatch_rate: f64,
    /// Top-1 (percent) of the integer engine.
    pub engine_top1: f64,
    /// Top-1 (percent) of the fake-quantized Burn model.
    pub simulated_top1: f64,
}

/// Runs the integer engine in batches of 256 and returns its logit codes for all of `set`.
pub fn engine_logits(int: &IntegerNet, set: &ImageSet) -> Result<Vec<i32>, ExportError> {
    let px = set.pixels();
    let mut out = Vec::with_capacity(set.len() * int.classes);
    for start in (0..set.len()).step_by(256) {
        let end = (start + 256).min(set.len());
        out.extend(int.run(&set.images[start * px..end * px], end - start)?);
    }
    Ok(out)
}

/// Compares the fake-quantized `net` (evaluation phase) with its export `int` on `set`.
pub fn check_agreement(
    net: &Net,
    int: &IntegerNet,
    set: &ImageSet,
    device: &Device,
) -> Result<Agreement, ExportError> {
    let sim = predict(net, set, 256, &Phase::EVAL, device);
    let sim_codes = sim
        .iter()
        .map(|&v| int.output.quantize(f64::from(v)).map(i64::from))
        .collect::<Result<Vec<i64>, _>>()?;
    let eng = engine_logits(int, set)?;
    let k = int.classes;
    let sim_pred = argmax_rows(&sim, k);
    let eng_f: Vec<f32> = eng.iter().map(|&c| c as f32).collect();
    let eng_pred = argmax_rows(&eng_f, k);
    let agree = sim_pred
        .iter()
        .zip(&eng_pred)
        .filter(|(a, b)| a == b)
        .count();
    let max_lsb = sim_codes
        .iter()
        .zip(&eng)
        .map(|(&s, &e)| (s - i64::from(e)).abs())
        .max()
        .unwrap_or(0);
    let differ = sim_codes
        .iter()
        .zip(&eng)
        .filter(|&(&s, &e)| s != i64::from(e))
        .count();
    let n = set.len().max(1) as f64;
    Ok(Agreement {
        agreement: agree as f64 / n,
        max_lsb,
        mismatch_rate: differ as f64 / eng.len().max(1) as f64,
        engine_top1: crate::train::top1(&eng_pred, &set.labels),
        simulated_top1: crate::train::top1(&sim_pred, &set.labels),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch;
    use crate::{AffineQuantizer, ModelConfig, QuantizerRef};

    fn images(n: usize, seed: u64) -> ImageSet {
        let mut rng = crate::rng::Rng::new(seed);
        // Smooth blobs rather than noise, so activations look like images'.
        let mut px = Vec::with_capacity(n * 784);
        for _ in 0..n {
            let (cy, cx) = (rng.uniform() * 28.0, rng.uniform() * 28.0);
            for y in 0..28 {
                for x in 0..28 {
                    let d = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                    px.push((255.0 * (-d / 40.0).exp()) as u8);
                }
            }
        }
        ImageSet {
            images: px,
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 28,
            cols: 28,
            checksums: vec![],
        }
    }

    /// Every architecture exports, and the engine reproduces the simulation's predictions. The nets
    /// are untrained: their logits span a tiny range, so one-LSB rounding differences of early
    /// layers are many logit LSBs (no LSB bound here); the 99.9 % / LSB acceptance check runs on
    /// trained models in the integer-qat suite (E8).
    #[test]
    fn engine_matches_simulation_for_every_architecture() {
        let dev = Device::flex();
        let set = images(48, 5);
        for s in ["mlp:32", "cnn:8,8,8", "mbv1:0.25", "mbv2:0.25", "resnet8"] {
            let mut net = ModelConfig::new(s.parse().unwrap(), 2).build(&dev);
            net.set_quantizers(
                Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
                Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
            );
            let idx: Vec<usize> = (0..set.len()).collect();
            let (x, _) = batch(&set, &idx, &dev);
            // Batch-norm statistics of these images first (untrained nets otherwise run with
            // unnormalized activations), then the activation ranges.
            let bn_stats = Phase {
                bn_batch_stats: true,
                ..Phase::FLOAT_EVAL
            };
            for _ in 0..30 {
                net.forward(x.clone(), &bn_stats);
            }
            net.forward(x, &Phase::CALIBRATE);
            let int = export(&net, [1, 28, 28], RoundingMode::Double).unwrap();
            let a = check_agreement(&net, &int, &set, &dev).unwrap();
            assert!(a.agreement >= 0.9, "{s}: {a:?}");
            assert!(int.size_bytes() * 3 < float_size_bytes(&net), "{s}");
        }
    }

    #[test]
    fn float_model_is_refused() {
        let dev = Device::flex();
        let net = ModelConfig::new("mlp:8".parse().unwrap(), 2).build(&dev);
        let e = export(&net, [1, 28, 28], RoundingMode::Double).unwrap_err();
        assert!(e.0.contains("AffineQuantizer"), "{e}");
    }
}
