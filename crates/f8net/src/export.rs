//! Export of a trained F8Net model to the integer engine of `quant_core::fixed8::engine` (which
//! counts the operations it runs: the F8Net side of the paper's Figure 1).
//!
//! Every number is taken from the same Burn tensors the simulated evaluation uses (effective weights
//! from running statistics, the rounded FL EMAs), and rounded with the same half-to-even rule, so the
//! engine reproduces the simulated model bit for bit.

use crate::graph::{InputCoding, Op, Operand};
use crate::model::{Method, Network};
use burn::prelude::*;
use quant_core::fixed8::FixedFormat;
use quant_core::fixed8::engine::{self, Node};
use quant_core::fixed8::rule::quantize;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

fn weight_codes(w: &[f32], fls: &[u8]) -> Vec<i8> {
    let per = w.len() / fls.len().max(1);
    w.iter()
        .enumerate()
        .map(|(i, &x)| {
            let format = FixedFormat {
                fl: fls[i / per],
                signed: true,
            };
            quantize(f64::from(x), format) as i8
        })
        .collect()
}

fn bias_codes(b: &[f32], fl_acc: &[i32]) -> Vec<i32> {
    b.iter()
        .zip(fl_acc)
        .map(|(&x, &f)| {
            let v = (f64::from(x) * 2f64.powi(f)).round_ties_even();
            v.clamp(-f64::from(i32::MAX), f64::from(i32::MAX)) as i32
        })
        .collect()
}

/// The code tables of a normalized input: each channel's pixel as the simulated model quantizes
/// its normalized value ([`InputCoding::real`], then value 0's format), so the tables and the
/// simulation agree bit for bit.
fn input_tables(model: &Network) -> Result<Node, String> {
    let signed = model.graph.values[0].signed;
    let format = FixedFormat::new(model.value_fl(0) as u8, signed).map_err(|e| e.to_string())?;
    let tables = (0..model.graph.values[0].channels)
        .flat_map(|c| {
            (0..=255).map(move |p| quantize(f64::from(model.graph.input.real(p, c)), format) as i32)
        })
        .collect();
    Ok(Node::CodeTable {
        src: 0,
        tables,
        format,
    })
}

/// Builds the integer model of an F8Net (or full-precision-structured) model in evaluation mode.
/// Errors for the Jacob baseline, whose rescaling is not a shift.
pub fn to_engine(model: &mut Network) -> Result<engine::FixedPointModel, String> {
    if matches!(model.method, Method::Int8Jacob) {
        return Err("the INT8 baseline needs an INT32 multiplier; only F8Net exports to the shift-only engine".into());
    }
    let graph = model.graph.clone();
    let n = graph.values.len();
    let mut nodes: Vec<Node> = Vec::new();
    let mut raw_id: Vec<Option<usize>> = vec![None; n];
    let mut quant_id: Vec<Option<usize>> = vec![None; n];
    let push = |nodes: &mut Vec<Node>, node: Node| {
        nodes.push(node);
        nodes.len()
    };
    raw_id[0] = Some(0);
    quant_id[0] = match graph.input {
        InputCoding::Pixels => Some(0),
        InputCoding::Normalized => Some(push(&mut nodes, input_tables(model)?)),
    };
    let quantized = |v: usize,
                     nodes: &mut Vec<Node>,
                     model: &Network,
                     raw_id: &[Option<usize>],
                     quant_id: &mut [Option<usize>]|
     -> Result<usize, String> {
        if let Some(q) = quant_id[v] {
            return Ok(q);
        }
        let src = raw_id[v].ok_or(format!("value {v} used before it is written"))?;
        let format = FixedFormat::new(model.value_fl(v) as u8, graph.values[v].signed)
            .map_err(|e| e.to_string())?;
        let id = push(nodes, Node::Quantize { src, format });
        quant_id[v] = Some(id);
        Ok(id)
    };
    for op in &graph.ops {
        match op {
            Op::Conv(i) => {
                let c = graph.convs[*i].clone();
                let src = quantized(c.src, &mut nodes, model, &raw_id, &mut quant_id)?;
                let (w, b) = model.effective(*i, None);
                let fls = model.weight_fls(&w);
                let fl_in = model.value_fl(c.src);
                let fl_acc: Vec<i32> = fls.iter().map(|&f| i32::from(f) + fl_in).collect();
                let node = Node::Conv {
                    src,
                    cout: c.cout,
                    k: c.k,
                    stride: c.stride,
                    pad: c.k / 2,
                    groups: c.groups,
                    weight: weight_codes(&host(w), &fls),
                    w_fl: fls,
                    bias: bias_codes(&host(b), &fl_acc),
                };
                raw_id[c.dst] = Some(push(&mut nodes, node));
            }
            Op::Add { a, b, dst } => {
                let mut ids = [0; 2];
                for (slot, o) in ids.iter_mut().zip([a, b]) {
                    *slot = match *o {
                        Operand::Raw(v) => raw_id[v].ok_or(format!("branch {v} missing"))?,
                        Operand::Quantized(v) => {
                            let q = quantized(v, &mut nodes, model, &raw_id, &mut quant_id)?;
                            // With PACT the codes are in units of the shared clip level and η_v / η_dst
                            // = 2^(FL_v - FL_dst) only moves the binary point; without PACT (η = 1)
                            // the codes keep FL_v and the addition aligns them by a shift.
                            if model.pact() {
                                push(
                                    &mut nodes,
                                    Node::Relabel {
                                        src: q,
                                        fl: model.value_fl(*dst),
                                    },
                                )
                            } else {
                                q
                            }
                        }
                    };
                }
                raw_id[*dst] = Some(push(
                    &mut nodes,
                    Node::Add {
                        a: ids[0],
                        b: ids[1],
                        relu: false,
                    },
                ));
            }
            Op::MaxPool {
                src,
                dst,
                k,
                stride,
                pad,
            } => {
                let src = quantized(*src, &mut nodes, model, &raw_id, &mut quant_id)?;
                let node = Node::MaxPool {
                    src,
                    k: *k,
                    stride: *stride,
                    pad: *pad,
                };
                quant_id[*dst] = Some(push(&mut nodes, node));
            }
        }
    }
    let head = quantized(graph.head, &mut nodes, model, &raw_id, &mut quant_id)?;
    let pooled = push(&mut nodes, Node::GlobalAvgPool { src: head });
    let (w, fls) = model.classifier_effective();
    let fl_acc = vec![i32::from(fls[0]) + model.value_fl(graph.head); graph.classes];
    let b = host(model.params.fc_b.val());
    nodes.push(Node::Linear {
        src: pooled,
        out: graph.classes,
        weight: weight_codes(&host(w), &fls),
        w_fl: fls,
        bias: bias_codes(&b, &fl_acc),
    });
    Ok(engine::FixedPointModel {
        channels: graph.values[0].channels,
        height: graph.side,
        width: graph.side,
        input_fl: 8,
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Arch, Graph, Input, InputCoding};
    use crate::model::{F8Options, Pass};
    use crate::train::{eval_copy, memory_batch};
    use quant_core::kernels::Backend;
    use repro::datasets::ImageSet;

    /// `n` pseudo-random colour images of `side` pixels with labels 0-2.
    fn colour_images(n: usize, side: usize) -> ImageSet {
        let images = (0..(n * 3 * side * side) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 23) as u8)
            .collect();
        ImageSet {
            images,
            labels: (0..n).map(|i| (i % 3) as u8).collect(),
            channels: 3,
            rows: side,
            cols: side,
            checksums: vec![],
        }
    }

    /// The paper's ImageNet networks (at 1/16 width on 96x96 images: a 3x3 map before the average
    /// pool, pooled by a shift of 4 with 16/9 folded into the classifier) export to the engine,
    /// whose logits equal the simulated model's after training passes have moved the batch-norm
    /// statistics and FL buffers: the ResNets as tiny fine-tuning runs them (input code tables,
    /// max pool, MSE-chosen FLs, no PACT), the MobileNets as the conventional training does (raw
    /// pixels, std-rule FLs, PACT clip levels folded into the weights).
    #[test]
    fn imagenet_networks_export_to_the_engine_exactly() {
        let device = Device::flex().autodiff();
        let set = colour_images(6, 96);
        let tiny = (InputCoding::Normalized, F8Options::TINY);
        let conventional = (InputCoding::Pixels, F8Options::DEFAULT);
        for (arch, (coding, options)) in [
            (Arch::ResNet18, tiny),
            (Arch::ResNet50, tiny),
            (Arch::MobileNetV1, conventional),
            (Arch::MobileNetV2, conventional),
        ] {
            let input = Input {
                channels: 3,
                side: 96,
                classes: 3,
            };
            let graph = Graph::imagenet(arch, 1.0 / 16.0, input, coding);
            assert_eq!(graph.sides()[graph.head], 3);
            let mut model = Network::new(graph, Method::F8Net(options), 7, &device);
            let idx: Vec<usize> = (0..set.len()).collect();
            for _ in 0..3 {
                let (x, _) = memory_batch(&set, &idx, model.graph.input, &device);
                model.forward(x, Pass::Train);
            }
            let mut eval = eval_copy(&model);
            let (x, _) = memory_batch(&set, &idx, eval.graph.input, &Device::flex());
            let simulated = eval.forward(x, Pass::Eval);
            let simulated: Vec<f32> = simulated.into_data().convert::<f32>().try_to_vec().unwrap();
            let engine = to_engine(&mut eval).unwrap();
            let tables = matches!(engine.nodes[0], Node::CodeTable { .. });
            assert_eq!(tables, coding == InputCoding::Normalized, "{arch:?}");
            let prepared = engine.prepare(Backend::detect()).unwrap();
            for (i, row) in simulated.chunks(3).enumerate() {
                let (logits, _) = prepared.run(set.image(i)).unwrap();
                let (reference, _) = engine.run(set.image(i)).unwrap();
                assert_eq!(logits, reference);
                let real: Vec<f64> = logits
                    .data
                    .iter()
                    .zip(&logits.fl)
                    .map(|(&q, &fl)| f64::from(q) / 2f64.powi(fl))
                    .collect();
                let expected: Vec<f64> = row.iter().map(|&x| f64::from(x)).collect();
                assert_eq!(real, expected, "{arch:?} image {i}");
            }
        }
    }

    /// Pooling a 3x3 map by a shift of 4 and folding 16/9 into the classifier computes the
    /// classifier of the mean: the float model's logits equal `fc(mean) + b` computed directly.
    #[test]
    fn the_pooling_fold_keeps_the_mean() {
        let device = Device::flex();
        let set = colour_images(2, 96);
        let input = Input {
            channels: 3,
            side: 96,
            classes: 3,
        };
        let graph = Graph::imagenet(Arch::ResNet18, 1.0 / 16.0, input, InputCoding::Normalized);
        let mut model = Network::new(graph, Method::FullPrecision { pact: false }, 3, &device);
        let (x, _) = memory_batch(&set, &[0, 1], model.graph.input, &device);
        let logits: Vec<f32> = model
            .forward(x.clone(), Pass::Eval)
            .into_data()
            .try_to_vec()
            .unwrap();
        let head = model.graph.head;
        let (mut raw, mut quant) = model.graph_values(x, Pass::Eval);
        let pooled = model.quantized(head, &mut raw, &mut quant, Pass::Eval);
        let [n, c, h, w] = pooled.dims();
        let mean = pooled.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        let direct = mean.matmul(model.params.fc_w.val().transpose())
            + model.params.fc_b.val().reshape([1, 3]);
        let direct: Vec<f32> = direct.into_data().try_to_vec().unwrap();
        let scale = direct.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(scale > 0.0);
        for (a, b) in logits.iter().zip(&direct) {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "{logits:?} against {direct:?}"
            );
        }
    }
}
