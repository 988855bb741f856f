//! Export of the conventional INT8 baseline (Jacob et al. 2018) to quant-core's integer engine
//! (`quant_core::engine`: uint8 codes, int8 weights, INT32 requantization multipliers), so that
//! the baseline's accuracy is measured on integer arithmetic like F8Net's.
//!
//! The engine runs what the simulation ([`crate::model`], `Method::Int8Jacob`) fake-quantizes:
//! every value as uint8 under the `(S, Z)` of its EMA range (with the ReLU as the lower clamp of an
//! unsigned value), a raw residual branch quantized (signed) before the addition as TFLite's ADD
//! needs, per-layer narrow-range weights of the batch-norm-folded effective weight, 32-bit biases at
//! `S_in S_w`, the average pool rounding the mean code. What the simulation does not quantize is
//! the logits: they leave the engine as uint8 codes under `logits`, the range the caller measured
//! on the simulated model. The engine's fixed-point multipliers approximate the real ratios to 31
//! bits, so an output code can differ by one where the simulation's product lies on a rounding
//! boundary; [`crate::experiments`] reports how often the predictions agree.
//!
//! Every graph value becomes one engine node that reads the nodes of the values its operation
//! reads.

use crate::graph::{Op, Operand};
use crate::model::{Method, Network};
use burn::prelude::*;
use quant_core::convert::{LayerQuant, WeightScheme};
use quant_core::engine::{
    self, AddLayer, ConvLayer, DepthwiseLayer, FullyConnectedLayer, InputSpec, Layer, ModelSpec,
    Node, OutputType, Shape, Window, layout,
};
use quant_core::fixedpoint::RoundingMode;
use quant_core::qparams::{FusedActivation, QParams};

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// The engine graph under construction: its nodes, every value's codes parameters and shape, and
/// which engine value holds each graph value.
struct Chain {
    nodes: Vec<Node>,
    params: Vec<QParams>,
    shapes: Vec<Shape>,
    node_of: Vec<Option<usize>>,
}

impl Chain {
    /// Appends `layer` reading engine values `inputs`; returns its output value.
    fn push(&mut self, inputs: Vec<usize>, layer: Layer, params: QParams, shape: Shape) -> usize {
        self.nodes.push(Node { inputs, layer });
        self.params.push(params);
        self.shapes.push(shape);
        self.nodes.len()
    }

    /// The engine value holding graph value `v`.
    fn read(&self, v: usize) -> Result<usize, String> {
        self.node_of[v].ok_or(format!("value {v} used before it is written"))
    }
}

/// How a layer writing value codes under `output` is converted: the paper's per-tensor
/// asymmetric weights, the ReLU as the lower clamp of an unsigned value.
fn layer_quant(input: QParams, output: QParams, relu: bool) -> LayerQuant {
    LayerQuant {
        input,
        output,
        scheme: WeightScheme::PerTensorAsymmetric,
        activation: if relu {
            FusedActivation::Relu
        } else {
            FusedActivation::None
        },
        rounding: RoundingMode::Double,
    }
}

/// Builds the integer model of an INT8-baseline model in evaluation mode; `logits` are the
/// parameters of its uint8 output codes.
pub fn to_jacob_engine(model: &mut Network, logits: QParams) -> Result<engine::Model, String> {
    let (chain, input) = build_chain(model, logits)?;
    let spec = ModelSpec {
        input,
        nodes: chain.nodes,
        rounding: RoundingMode::Double,
        output: OutputType::U8,
    };
    engine::Model::new(spec).map_err(|e| e.to_string())
}

/// The engine layers of the model with the value-to-node map, and the input description.
fn build_chain(model: &mut Network, logits: QParams) -> Result<(Chain, InputSpec), String> {
    if !matches!(model.method, Method::Int8Jacob) {
        return Err(
            "only the INT8 baseline exports to the INT32-multiplier engine; F8Net exports to the shift-only one"
                .into(),
        );
    }
    let graph = model.graph.clone();
    let n = graph.values.len();
    // Values a residual addition reads raw: quantized signed (no ReLU before the addition).
    let mut raw_operand = vec![false; n];
    for op in &graph.ops {
        if let Op::Add { a, b, .. } = op {
            for o in [a, b] {
                if let Operand::Raw(v) = o {
                    raw_operand[*v] = true;
                }
            }
        }
    }
    let signed = |v: usize| raw_operand[v] || graph.values[v].signed;
    let input_shape = Shape {
        h: graph.side,
        w: graph.side,
        c: graph.values[0].channels,
    };
    let mut chain = Chain {
        nodes: Vec::new(),
        params: vec![model.int8_params(0, false)],
        shapes: vec![input_shape],
        node_of: vec![None; n],
    };
    chain.node_of[0] = Some(0);
    for op in &graph.ops {
        match op {
            Op::Conv(i) => {
                let c = graph.convs[*i].clone();
                let src = chain.read(c.src)?;
                let (input, shape) = (chain.params[src], chain.shapes[src]);
                let (w, b) = model.effective(*i, None);
                let dims = w.dims();
                let (w, b) = (host(w), host(b));
                let out = model.int8_params(c.dst, signed(c.dst));
                let q = layer_quant(input, out, !signed(c.dst));
                let pad = c.k / 2;
                let window = Window::square(c.k, c.stride, pad);
                let out_shape = Shape {
                    h: (shape.h + 2 * pad - c.k) / c.stride + 1,
                    w: (shape.w + 2 * pad - c.k) / c.stride + 1,
                    c: c.cout,
                };
                let e = |e: quant_core::error::QuantError| format!("conv {i}: {e}");
                let layer = if c.groups == 1 {
                    let hwio = layout::oihw_to_hwio(&w, dims);
                    Layer::Conv2d(ConvLayer::from_float(&hwio, c.cout, window, &b, &q).map_err(e)?)
                } else if c.groups == c.cout && c.cin == c.cout {
                    let hwc = layout::depthwise_oihw_to_hwc(&w, dims);
                    let l = DepthwiseLayer::from_float(&hwc, c.cout, window, &b, &q).map_err(e)?;
                    Layer::DepthwiseConv2d(l)
                } else {
                    return Err(format!(
                        "conv {i}: {} groups is neither dense nor depthwise",
                        c.groups
                    ));
                };
                chain.node_of[c.dst] = Some(chain.push(vec![src], layer, out, out_shape));
            }
            Op::Add { a, b, dst } => {
                let value = |o: &Operand| match *o {
                    Operand::Raw(v) | Operand::Quantized(v) => v,
                };
                let (na, nb) = (chain.read(value(a))?, chain.read(value(b))?);
                let (p1, p2) = (chain.params[na], chain.params[nb]);
                let out = model.int8_params(*dst, signed(*dst));
                let activation = if signed(*dst) {
                    FusedActivation::None
                } else {
                    FusedActivation::Relu
                };
                let add =
                    AddLayer::from_float(&p1, &p2, &out, activation).map_err(|e| e.to_string())?;
                let shape = chain.shapes[na];
                let node = chain.push(vec![na, nb], Layer::Add(add), out, shape);
                chain.node_of[*dst] = Some(node);
            }
            Op::MaxPool { .. } => {
                return Err(
                    "the INT8 baseline exports the proxies only (the ImageNet ResNets' max pool is F8Net's)"
                        .into(),
                );
            }
        }
    }
    let head = chain.read(graph.head)?;
    let (head_params, head_shape) = (chain.params[head], chain.shapes[head]);
    let pooled = Shape {
        h: 1,
        w: 1,
        c: head_shape.c,
    };
    let pool = chain.push(vec![head], Layer::GlobalAvgPool, head_params, pooled);
    let (w4, _) = model.classifier_effective();
    let classes = graph.classes;
    let kn = layout::fc_chw_to_kn(&host(w4), classes, (head_shape.c, 1, 1));
    let b = host(model.params.fc_b.val());
    let q = layer_quant(head_params, logits, false);
    let fc = FullyConnectedLayer::from_float(&kn, classes, &b, &q).map_err(|e| e.to_string())?;
    let logits_shape = Shape {
        h: 1,
        w: 1,
        c: classes,
    };
    chain.push(vec![pool], Layer::FullyConnected(fc), logits, logits_shape);
    let input = InputSpec {
        shape: input_shape,
        zero_point: 0,
    };
    Ok((chain, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Arch, Graph, Input};
    use crate::model::Pass;
    use crate::train::{each_logits, eval_copy, memory_batch, noise_images};
    use quant_core::qparams::QRange;

    /// Every proxy exports to a chain the engine accepts, and its nodes hold the codes of the
    /// simulated model's values. The engine requantizes with 31-bit multipliers and two roundings
    /// where the simulation rounds a float product once, so a code on a rounding boundary may
    /// differ by one; downstream such differences add up (at initialisation, 3 training passes in,
    /// ResNet18's last values differ in up to half their codes, by up to 10), so the check is
    /// close where little has accumulated (measured: at most 0.6 % of the codes of a node differ,
    /// except 3.2 % at ResNet50's fourth): every node up to the first addition (all of
    /// MobileNetV1) equal in 95 % of places and never more than two codes apart, and MobileNetV1's
    /// logits equal in 99 %, within one code. A wrong scale, layout or wiring changes most codes.
    #[test]
    fn the_nodes_hold_the_simulated_codes() {
        let set = noise_images(48);
        let device = Device::flex().autodiff();
        for arch in [
            Arch::MobileNetV1,
            Arch::MobileNetV2,
            Arch::ResNet18,
            Arch::ResNet50,
        ] {
            let graph = Graph::proxy(
                arch,
                0.25,
                Input::of(repro::datasets::DatasetName::FashionMnist),
            );
            let mut model = Network::new(graph, Method::Int8Jacob, 5, &device);
            // Training passes set the EMA ranges and batch-norm statistics.
            let idx: Vec<usize> = (0..48).collect();
            for _ in 0..3 {
                let (x, _) = memory_batch(&set, &idx, model.graph.input, &device);
                model.forward(x, Pass::Train);
            }
            let mut sim_logits = Vec::new();
            each_logits(&model, &set, 48, |row| sim_logits.extend_from_slice(row)).unwrap();
            let (lo, hi) = sim_logits.iter().fold((0f64, 0f64), |r, &x| {
                (r.0.min(f64::from(x)), r.1.max(f64::from(x)))
            });
            let logits = QParams::choose(lo, hi, QRange::U8).unwrap();
            let (chain, input) = build_chain(&mut eval_copy(&model), logits).unwrap();
            let mut eval = eval_copy(&model);
            let (x, _) = memory_batch(
                &set,
                &idx,
                model.graph.input,
                &model.params.fc_b.val().device(),
            );
            let (_, quant) = eval.graph_values(x, Pass::Eval);
            let run_to = |nodes: usize| {
                let spec = ModelSpec {
                    input,
                    nodes: chain.nodes[..nodes].to_vec(),
                    rounding: RoundingMode::Double,
                    output: OutputType::U8,
                };
                engine::Model::new(spec)
                    .unwrap()
                    .run(&set.images, 48)
                    .unwrap()
                    .codes()
            };
            let compare = |what: String, want: Vec<i32>, got: Vec<i32>, (percent, within)| {
                let off = want.iter().zip(&got).filter(|(a, b)| a != b).count();
                let worst = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).max();
                assert!(
                    off * 100 <= percent * want.len() && worst <= Some(within),
                    "{arch:?} {what}: {off} of {} codes differ, by up to {worst:?}",
                    want.len()
                );
            };
            let first_add = chain
                .nodes
                .iter()
                .position(|n| matches!(n.layer, Layer::Add(_)))
                .map_or(chain.nodes.len(), |i| i + 1);
            for (v, node) in chain.node_of.iter().enumerate().skip(1) {
                let (Some(node), Some(q)) = (node, &quant[v]) else {
                    continue;
                };
                if *node > first_add {
                    continue;
                }
                let p = chain.params[*node];
                let real = host(q.clone().permute([0, 2, 3, 1]));
                let want = real
                    .iter()
                    .map(|&r| p.quantize(f64::from(r)).unwrap())
                    .collect();
                compare(
                    format!("value {v} (node {node})"),
                    want,
                    run_to(*node),
                    (5, 2),
                );
            }
            if first_add == chain.nodes.len() {
                let want = sim_logits
                    .iter()
                    .map(|&r| logits.quantize(f64::from(r)).unwrap())
                    .collect();
                compare("logits".into(), want, run_to(chain.nodes.len()), (1, 1));
            }
        }
    }

    /// The baseline's export refuses an F8Net model (its rescaling is a shift, not a multiplier).
    #[test]
    fn only_the_int8_baseline_exports() {
        let device = Device::flex();
        let graph = Graph::proxy(
            Arch::MobileNetV1,
            0.25,
            Input::of(repro::datasets::DatasetName::FashionMnist),
        );
        let mut model = Network::new(
            graph,
            Method::F8Net(crate::model::F8Options::DEFAULT),
            1,
            &device,
        );
        let logits = QParams::choose(-1.0, 1.0, QRange::U8).unwrap();
        let err = to_jacob_engine(&mut model, logits).unwrap_err();
        assert!(err.contains("only the INT8 baseline"), "{err}");
    }
}
