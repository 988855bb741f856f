//! F8Net models on the one integer graph of [`crate::graph`]: the fractional lengths that the
//! scalar reference ([`FixedPointModel::run`]) carries with every value are propagated once, when
//! the graph is built, so each requantization and residual addition knows its shifts; signed codes
//! are stored offset by 128, which the kernels take as the input zero point.
#![deny(clippy::float_arithmetic)]

use std::sync::Arc;

use super::engine::{FixedPointModel, Node, Value, argmax, check_conv, check_tables, fits_int32};
use super::format::FixedFormat;
use crate::error::{Result, arg_err, shape_err};
use crate::graph::{Data, DenseInput, Graph, Kind, Op, Pooling, Requantizer, Shape};
use crate::kernels::{Backend, ConvGeometry, ConvKernel, ConvShape};
use crate::ops::OpCounts;

/// F8Net's requantization: channel `c`'s values (at fractional length `fl_in[c]`) shifted to
/// `format`'s, rounding half to even, and clamped ([`FixedFormat::requantize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftStage {
    /// The output codes' format.
    pub format: FixedFormat,
    /// The fractional length of each input channel.
    pub fl_in: Vec<i32>,
}

impl ShiftStage {
    /// The stored code of value 0 in `format`: signed codes are stored offset by 128.
    fn stored_zero_point(format: FixedFormat) -> i32 {
        if format.signed { 128 } else { 0 }
    }

    fn zero_point(&self) -> i32 {
        ShiftStage::stored_zero_point(self.format)
    }
}

impl Requantizer for ShiftStage {
    fn output(&self) -> Kind {
        Kind::eight_bit(self.zero_point())
    }

    fn channels(&self) -> usize {
        self.fl_in.len()
    }

    fn apply(&self, acc: &[i32]) -> Result<Data> {
        let (c, zero_point) = (self.fl_in.len(), self.zero_point());
        Ok(Data::Codes(
            acc.iter()
                .enumerate()
                .map(|(i, &a)| (self.format.requantize(a, self.fl_in[i % c]) + zero_point) as u8)
                .collect(),
        ))
    }

    /// One shift per element of each channel whose length differs from the format's.
    fn op_counts(&self, per_channel: u64) -> OpCounts {
        let fl = i32::from(self.format.fl);
        let shifted = self.fl_in.iter().filter(|&&f| f != fl).count() as u64;
        OpCounts {
            shifts: shifted * per_channel,
            ..OpCounts::default()
        }
    }

    /// None: the shift amounts are constants of the code, as the reference counts them.
    fn stored_bytes(&self) -> usize {
        0
    }
}

/// The input: raw 8-bit pixels, unsigned codes (of the model's input FL).
const PIXELS: Kind = Kind::eight_bit(0);

/// A model's graph and the fractional length of each channel of its output.
#[derive(Debug)]
pub struct FixedPointGraph {
    graph: Graph,
    output_fl: Vec<i32>,
}

impl FixedPointGraph {
    /// The graph of `model` with its convolutions and linear layers on the int8 kernels of
    /// `backend`. Errors where a layer reads anything but 8-bit codes of one format, where a
    /// convolution is neither dense nor depthwise or deeper than the kernels take, or where
    /// int32 accumulators could overflow: [`FixedPointModel::run`] runs such models.
    pub fn new(model: &FixedPointModel, backend: Backend) -> Result<FixedPointGraph> {
        let input = Shape {
            h: model.height,
            w: model.width,
            c: model.channels,
        };
        let mut graph = Graph::new(input, PIXELS)?;
        // Per model value: the graph value holding it and each channel's fractional length (a
        // relabelled value is its source's graph value).
        let mut values = vec![(0, vec![i32::from(model.input_fl); model.channels])];
        for (i, node) in model.nodes.iter().enumerate() {
            let get = |id: usize| {
                values
                    .get(id)
                    .cloned()
                    .ok_or_else(|| arg_err!("node {i} reads value {id} before it is computed"))
            };
            let next = match node {
                Node::Quantize { src, format } => {
                    let (v, fl_in) = get(*src)?;
                    let c = fl_in.len();
                    let stage = ShiftStage {
                        format: *format,
                        fl_in,
                    };
                    let id = graph.push(&[v], Op::Requantize(Arc::new(stage)))?;
                    (id, vec![i32::from(format.fl); c])
                }
                Node::Conv {
                    src,
                    cout,
                    k,
                    stride,
                    pad,
                    groups,
                    weight,
                    w_fl,
                    bias,
                } => push_weighted(&mut graph, get(*src)?, w_fl, |s| {
                    let shape = ConvShape {
                        geometry: ConvGeometry::symmetric((s.h, s.w, s.c), *k, *stride, *pad)?,
                        out_c: *cout,
                        groups: *groups,
                    };
                    conv_op(shape, weight, w_fl, bias, backend)
                })?,
                Node::Relabel { src, fl } => {
                    let (v, old) = get(*src)?;
                    (v, vec![*fl; old.len()])
                }
                Node::Add { a, b, relu } => {
                    let ((va, fl_a), (vb, fl_b)) = (get(*a)?, get(*b)?);
                    let fl = fl_a.iter().zip(&fl_b).map(|(&p, &q)| p.max(q)).collect();
                    let op = Op::AlignedAdd {
                        fl_a,
                        fl_b,
                        relu: *relu,
                    };
                    (graph.push(&[va, vb], op)?, fl)
                }
                Node::GlobalAvgPool { src } => {
                    let (v, fl) = get(*src)?;
                    (graph.push(&[v], Op::MeanByShift)?, fl)
                }
                Node::MaxPool {
                    src,
                    k,
                    stride,
                    pad,
                } => {
                    let (v, fl) = get(*src)?;
                    let s = graph
                        .shape(v)
                        .ok_or_else(|| arg_err!("value {v} is not in the graph"))?;
                    let op = Op::Pool {
                        rule: Pooling::Max,
                        window: ConvGeometry::symmetric((s.h, s.w, s.c), *k, *stride, *pad)?,
                        act_min: 0,
                        act_max: 255,
                    };
                    (graph.push(&[v], op)?, fl)
                }
                Node::CodeTable {
                    src,
                    tables,
                    format,
                } => {
                    let (v, fl) = get(*src)?;
                    check_tables(tables, fl.len(), *format)?;
                    let zero_point = ShiftStage::stored_zero_point(*format);
                    let op = Op::CodeTable {
                        tables: tables.iter().map(|&t| (t + zero_point) as u8).collect(),
                        zero_point,
                    };
                    (graph.push(&[v], op)?, vec![i32::from(format.fl); fl.len()])
                }
                Node::Linear {
                    src,
                    out,
                    weight,
                    w_fl,
                    bias,
                } => push_weighted(&mut graph, get(*src)?, w_fl, |s| {
                    linear_op(s, *out, weight, w_fl, bias, backend)
                })?,
            };
            values.push(next);
        }
        let (out, output_fl) = values
            .pop()
            .unwrap_or_else(|| unreachable!("values holds the input"));
        if out != graph.output() {
            return Err(arg_err!(
                "the model ends in a relabel of an earlier value; relabel where the value is read"
            ));
        }
        Ok(FixedPointGraph { graph, output_fl })
    }

    /// As [`FixedPointModel::run`]: one image of raw 8-bit pixels in planes (`C x H x W`).
    pub fn run(&self, pixels: &[u8]) -> Result<(Value, OpCounts)> {
        let codes = hwc_pixels(pixels, self.graph.input_shape())?;
        let (out, counts) = self.graph.run(self.graph.input(1, codes))?;
        let value = Value {
            c: out.shape.c,
            h: out.shape.h,
            w: out.shape.w,
            data: out.to_i32()?.into_owned(),
            fl: self.output_fl.clone(),
        };
        Ok((value, counts))
    }

    /// As [`FixedPointModel::predict`].
    pub fn predict(&self, pixels: &[u8]) -> Result<(usize, OpCounts)> {
        argmax(self.run(pixels)?)
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
}

/// The pixels of an image stored in planes (`C x H x W`, as data sets store it) in the graph's
/// `H x W x C` order.
pub(super) fn hwc_pixels(pixels: &[u8], shape: Shape) -> Result<Vec<u8>> {
    let n = shape.len();
    if pixels.len() != n {
        return Err(shape_err!(
            "image has {} pixels, the model expects {n}",
            pixels.len()
        ));
    }
    Ok(crate::engine::layout::chw_to_hwc(pixels, shape.c, shape.h * shape.w).into_owned())
}

/// Appends the layer `op` builds for its input's shape, reading graph value `v` whose channels
/// have fractional lengths `fl`; returns its value and each output channel's length, the input's
/// plus the channel's weight length `w_fl`.
fn push_weighted(
    graph: &mut Graph,
    (v, fl): (usize, Vec<i32>),
    w_fl: &[u8],
    op: impl FnOnce(Shape) -> Result<Op>,
) -> Result<(usize, Vec<i32>)> {
    let fl_in = one_format(&fl)?;
    let shape = graph
        .shape(v)
        .ok_or_else(|| arg_err!("value {v} is not in the graph"))?;
    let id = graph.push(&[v], op(shape)?)?;
    Ok((id, w_fl.iter().map(|&f| fl_in + i32::from(f)).collect()))
}

/// The fractional length shared by every channel of a layer's input codes.
fn one_format(fl: &[i32]) -> Result<i32> {
    match fl.split_first() {
        Some((&first, rest)) if rest.iter().all(|&f| f == first) => Ok(first),
        _ => Err(arg_err!(
            "conv input must be 8-bit codes of one format (insert a Quantize node)"
        )),
    }
}

/// An F8Net convolution (weights `[cout][cin / groups][k][k]`) on the int8 kernels of `backend`,
/// keeping its int32 accumulators.
pub(super) fn conv_op(
    shape: ConvShape,
    weight: &[i8],
    w_fl: &[u8],
    bias: &[i32],
    backend: Backend,
) -> Result<Op> {
    check_conv(&shape, weight, w_fl, bias)?;
    let cout = shape.out_c;
    let g = &shape.geometry;
    let kernel = exact_kernel(weight, cout, (g.kernel_h, g.kernel_w), shape, bias, backend)?;
    Ok(Op::Conv {
        shape,
        kernel,
        bias: bias.to_vec(),
        stage: None,
        weight_bytes: weight.len(),
    })
}

/// An F8Net linear layer (weights `[out][C x H x W]`, the order in which the exporters' NCHW
/// tensors flatten) over a value of shape `s`, its weights reordered once for the graph's
/// `H x W x C` flattening.
fn linear_op(
    s: Shape,
    out: usize,
    weight: &[i8],
    w_fl: &[u8],
    bias: &[i32],
    backend: Backend,
) -> Result<Op> {
    let depth = s.len();
    if weight.len() != out * depth || w_fl.len() != out || bias.len() != out {
        return Err(shape_err!(
            "linear weights {} / FLs {} / biases {} do not fit {out} x {depth}",
            weight.len(),
            w_fl.len(),
            bias.len()
        ));
    }
    let plane = s.h * s.w;
    let hwc: Vec<i8> = weight
        .chunks(depth.max(1))
        .flat_map(|row| (0..depth).map(move |j| row[(j % s.c) * plane + j / s.c]))
        .collect();
    let shape = ConvShape {
        geometry: ConvGeometry::symmetric((1, 1, depth), 1, 1, 0)?,
        out_c: out,
        groups: 1,
    };
    Ok(Op::Dense {
        input: DenseInput::Flat,
        out,
        kernel: exact_kernel(&hwc, out, (1, 1), shape, bias, backend)?,
        bias: bias.to_vec(),
        stage: None,
        weight_bytes: weight.len(),
    })
}

/// The kernel of a layer whose int32 accumulation is exact ([`fits_int32`]; the reference's
/// wide path saturates where it is not).
fn exact_kernel(
    weight: &[i8],
    cout: usize,
    window: (usize, usize),
    shape: ConvShape,
    bias: &[i32],
    backend: Backend,
) -> Result<ConvKernel> {
    if !fits_int32(shape.depth(), bias) {
        return Err(arg_err!(
            "a layer of depth {} could overflow int32 accumulators with its biases; run the scalar reference",
            shape.depth()
        ));
    }
    ConvKernel::new(weight, cout, window, shape.groups, &[0], backend)?
        .filter(|k| k.fits(&shape))
        .ok_or_else(|| {
            arg_err!(
                "a {}-group convolution of depth {} is neither dense nor depthwise within the kernels' depth; run the scalar reference",
                shape.groups,
                shape.depth()
            )
        })
}
