//! Export of a trained F8Net model to the integer engine of `quant_core::fixed8::engine` (which
//! counts the operations it runs: the F8Net side of the paper's Figure 1).
//!
//! Every number is taken from the same Burn tensors the simulated evaluation uses (effective weights
//! from running statistics, the rounded FL EMAs), and rounded with the same half-to-even rule, so the
//! engine reproduces the simulated model bit for bit.

use crate::graph::{Op, Operand};
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
    raw_id[0] = Some(0);
    quant_id[0] = Some(0);
    let push = |nodes: &mut Vec<Node>, node: Node| {
        nodes.push(node);
        nodes.len()
    };
    let mut quantized = |v: usize,
                         nodes: &mut Vec<Node>,
                         model: &Network,
                         raw_id: &[Option<usize>]|
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
                let src = quantized(c.src, &mut nodes, model, &raw_id)?;
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
                            let q = quantized(v, &mut nodes, model, &raw_id)?;
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
        }
    }
    let head = quantized(graph.head, &mut nodes, model, &raw_id)?;
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
