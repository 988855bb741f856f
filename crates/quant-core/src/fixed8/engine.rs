//! Integer-only inference of an exported F8Net model (dossier §6): 8-bit codes, i8 x i8 -> i32
//! products, i32 biases at the accumulator's FL, and shifts for every rescale. There is no multiplier
//! outside the 8-bit products; [`OpCounts`] counts what runs so the claim can be checked (no node
//! performs a 32-bit multiplication, so `mul_32x32` stays 0).
//!
//! A model is a list of nodes; value 0 is the input image, node `i` produces value `i + 1`. A value is
//! an `H x W x C` tensor of i32 (channels innermost: the layout of the int8 kernels and of the affine
//! engine, so no kernel call changes layout) with one FL per channel (per-channel weight FLs give
//! per-channel accumulator FLs). [`Node::Quantize`] turns a value into 8-bit codes of one format (a shift and a
//! clamp per element); convolutions and linear layers read only such codes.
//!
//! [`FixedPointModel::run`] is the scalar reference. [`FixedPointModel::prepare`] builds the model's
//! graph on the one integer graph of [`crate::graph`] ([`super::graph::FixedPointGraph`]), whose
//! dense and depthwise convolutions and fully connected layers run on the int8 kernels of
//! [`crate::kernels`] (tested equal to the reference, value for value, on every backend).
#![deny(clippy::float_arithmetic)]

use super::format::{ACC_MAX, FixedFormat, align_add, average_by_shift, saturate_acc};
use super::graph::{FixedPointGraph, hwc_pixels};
use crate::error::{Result, arg_err, shape_err};
use crate::graph::Shape;
use crate::kernels::{Backend, ConvGeometry, ConvShape};
use crate::ops::OpCounts;
use serde::{Deserialize, Serialize};

/// One step of the integer graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    /// Requantize value `src` to 8-bit codes of `format` (shift half-to-even, clamp; the unsigned clamp
    /// is the ReLU).
    Quantize { src: usize, format: FixedFormat },
    /// 2-D convolution over codes: weights `[cout, cin / groups, k, k]`, symmetric zero padding.
    /// Output channel `o` has FL `fl_in + w_fl[o]`; `bias[o]` is at that FL.
    Conv {
        src: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        groups: usize,
        weight: Vec<i8>,
        w_fl: Vec<u8>,
        bias: Vec<i32>,
    },
    /// Reinterprets the binary point of `src` as `fl` on every channel, with no arithmetic: used where
    /// a tensor's real scale changes by an exact power of two (an identity shortcut whose PACT clip
    /// level equals the sum's, but whose η has a different FL).
    Relabel { src: usize, fl: i32 },
    /// Residual addition: operands aligned per channel to the larger FL by left shifts, summed,
    /// clamped to `±(2^31 - 1)`; `relu` zeroes negatives afterwards (ResNet).
    Add { a: usize, b: usize, relu: bool },
    /// Global average pooling of codes: the sum over the map and a rounding shift
    /// ([`average_by_shift`]; over a map of no power of two pixels the mean scaled by `pixels /
    /// 2^shift`, which the exporter undoes in the next layer's weights).
    GlobalAvgPool { src: usize },
    /// Max pooling of codes over the in-image taps of a `k x k` window (padding never wins, as
    /// torchvision's padding of minus infinity); the codes keep their format.
    MaxPool {
        src: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
    /// Raw 8-bit pixels mapped channel by channel through 256-entry tables to codes of `format`:
    /// channel `c`'s pixel `p` becomes `tables[c * 256 + p]`. A colour model's input normalization
    /// (per-channel mean and deviation, then the input quantizer) runs so without arithmetic; the
    /// exporter fills the tables as its simulated model quantizes each normalized pixel.
    CodeTable {
        src: usize,
        tables: Vec<i32>,
        format: FixedFormat,
    },
    /// Fully connected layer over codes: weights `[out, in]`, output FL `fl_in + w_fl[o]`.
    Linear {
        src: usize,
        out: usize,
        weight: Vec<i8>,
        w_fl: Vec<u8>,
        bias: Vec<i32>,
    },
}

/// An exported model: input shape (raw 8-bit pixels enter as unsigned codes with `input_fl`) and nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedPointModel {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub input_fl: u8,
    pub nodes: Vec<Node>,
}

/// A tensor of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// `h x w x c`, channels innermost.
    pub data: Vec<i32>,
    /// Fractional length of each channel.
    pub fl: Vec<i32>,
}

impl Node {
    /// The values the node reads.
    fn sources(&self) -> Vec<usize> {
        match self {
            Node::Quantize { src, .. }
            | Node::Conv { src, .. }
            | Node::Relabel { src, .. }
            | Node::GlobalAvgPool { src }
            | Node::MaxPool { src, .. }
            | Node::CodeTable { src, .. }
            | Node::Linear { src, .. } => vec![*src],
            Node::Add { a, b, .. } => vec![*a, *b],
        }
    }
}

impl FixedPointModel {
    /// The model on the one integer graph, its convolutions (dense and depthwise) and linear
    /// layers on the int8 kernels of `backend` ([`FixedPointGraph::new`] says which models it
    /// refuses).
    pub fn prepare(&self, backend: Backend) -> Result<FixedPointGraph> {
        FixedPointGraph::new(self, backend)
    }

    /// Peak activation memory of one inference as a deployment holds it: the model's graph's
    /// ([`crate::graph::Graph::peak_activation_bytes`]; a relabelled value is its source, no
    /// copy).
    pub fn peak_activation_bytes(&self) -> Result<usize> {
        let graph = FixedPointGraph::new(self, Backend::Scalar)?;
        Ok(graph.graph().peak_activation_bytes())
    }

    /// Checks shapes and runs the model on one image of raw 8-bit pixels (`C x H x W`). Returns the
    /// last value (the logits, at the FL of the last layer) and the operation counts.
    pub fn run(&self, pixels: &[u8]) -> Result<(Value, OpCounts)> {
        let shape = Shape {
            h: self.height,
            w: self.width,
            c: self.channels,
        };
        let input = Value {
            c: self.channels,
            h: self.height,
            w: self.width,
            data: hwc_pixels(pixels, shape)?
                .into_iter()
                .map(i32::from)
                .collect(),
            fl: vec![i32::from(self.input_fl); self.channels],
        };
        let mut values = vec![input];
        // Whether each value holds 8-bit codes (the image, quantized values) or int32s.
        let mut codes = vec![true];
        let mut counts = OpCounts::default();
        for (i, node) in self.nodes.iter().enumerate() {
            let get = |id: usize| {
                if id > i {
                    Err(arg_err!("node {i} reads value {id} before it is computed"))
                } else {
                    Ok(&values[id])
                }
            };
            let out = match node {
                Node::Quantize { src, format } => quantize(get(*src)?, *format, &mut counts),
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
                } => conv(
                    get(*src)?,
                    ConvFields {
                        cout: *cout,
                        k: *k,
                        stride: *stride,
                        pad: *pad,
                        groups: *groups,
                    },
                    weight,
                    w_fl,
                    bias,
                    &mut counts,
                )?,
                Node::Relabel { src, fl } => {
                    let v = get(*src)?;
                    Value {
                        fl: vec![*fl; v.c],
                        ..v.clone()
                    }
                }
                Node::Add { a, b, relu } => add(get(*a)?, get(*b)?, *relu, &mut counts)?,
                Node::GlobalAvgPool { src } => global_avg_pool(get(*src)?, &mut counts)?,
                Node::MaxPool {
                    src,
                    k,
                    stride,
                    pad,
                } => {
                    if !codes[*src] {
                        return Err(arg_err!(
                            "max pooling reads codes (insert a Quantize node before it)"
                        ));
                    }
                    max_pool(get(*src)?, *k, *stride, *pad)?
                }
                Node::CodeTable {
                    src,
                    tables,
                    format,
                } => look_up(get(*src)?, tables, *format)?,
                Node::Linear {
                    src,
                    out,
                    weight,
                    w_fl,
                    bias,
                } => {
                    let flat = flatten(get(*src)?);
                    conv(
                        &flat,
                        ConvFields {
                            cout: *out,
                            k: 1,
                            stride: 1,
                            pad: 0,
                            groups: 1,
                        },
                        weight,
                        w_fl,
                        bias,
                        &mut counts,
                    )?
                }
            };
            let (params, out_codes) = match node {
                Node::Quantize { .. } => (0, true),
                Node::Conv { weight, bias, .. } | Node::Linear { weight, bias, .. } => {
                    (weight.len() + 4 * bias.len(), false)
                }
                Node::Relabel { src, .. } => (0, codes[*src]),
                Node::Add { .. } => (0, false),
                // The mean of codes is a code of the same format.
                Node::GlobalAvgPool { src } => (0, codes[*src]),
                Node::MaxPool { src, .. } => (0, codes[*src]),
                Node::CodeTable { tables, .. } => (tables.len(), true),
            };
            // A relabel moves nothing: its value is its source's.
            if !matches!(node, Node::Relabel { .. }) {
                let moved: usize = node
                    .sources()
                    .into_iter()
                    .map(|v| stored_bytes(&values[v], codes[v]))
                    .sum();
                counts.bytes_moved += (params + stored_bytes(&out, out_codes) + moved) as u64;
            }
            values.push(out);
            codes.push(out_codes);
        }
        let last = values
            .pop()
            .unwrap_or_else(|| unreachable!("values holds the input"));
        Ok((last, counts))
    }

    /// Index of the largest logit (first on ties) and the counts of one inference.
    pub fn predict(&self, pixels: &[u8]) -> Result<(usize, OpCounts)> {
        argmax(self.run(pixels)?)
    }
}

/// Bytes of `v` as a deployment stores it: one per 8-bit code, four per int32.
fn stored_bytes(v: &Value, codes: bool) -> usize {
    v.data.len() * if codes { 1 } else { 4 }
}

/// The index of the largest logit (first on ties), with the counts beside it.
pub(super) fn argmax((logits, counts): (Value, OpCounts)) -> Result<(usize, OpCounts)> {
    if logits.fl.iter().any(|&f| f != logits.fl[0]) {
        return Err(arg_err!(
            "logits have per-channel FLs; use a per-layer classifier"
        ));
    }
    let best = logits
        .data
        .iter()
        .enumerate()
        .fold((0, i32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    Ok((best.0, counts))
}

/// `v` as one pixel of `c * h * w` channels in `C x H x W` order, the order of a fully connected
/// layer's inputs (the exporters flatten Burn's NCHW tensors), each with its channel's FL.
fn flatten(v: &Value) -> Value {
    let plane = v.h * v.w;
    let chw = |i: usize| (i % plane) * v.c + i / plane;
    Value {
        c: v.c * plane,
        h: 1,
        w: 1,
        data: (0..v.data.len()).map(|i| v.data[chw(i)]).collect(),
        fl: (0..v.data.len()).map(|i| v.fl[i / plane.max(1)]).collect(),
    }
}

fn quantize(v: &Value, format: FixedFormat, counts: &mut OpCounts) -> Value {
    let shifted = v.fl.iter().filter(|&&f| f != i32::from(format.fl)).count();
    counts.shifts += (shifted * v.h * v.w) as u64;
    let data = v
        .data
        .chunks(v.c.max(1))
        .flat_map(|pixel| {
            pixel
                .iter()
                .zip(&v.fl)
                .map(|(&a, &fl)| format.requantize(a, fl))
        })
        .collect();
    Value {
        c: v.c,
        h: v.h,
        w: v.w,
        data,
        fl: vec![i32::from(format.fl); v.c],
    }
}

/// A convolution node's fields, which [`conv`] completes with its input's sizes.
struct ConvFields {
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

/// A convolution over codes on the scalar loop (the reference), in int32 when it cannot
/// overflow ([`fits_int32`]), else in int64 saturated to the accumulator range.
fn conv(
    x: &Value,
    w: ConvFields,
    weight: &[i8],
    w_fl: &[u8],
    bias: &[i32],
    counts: &mut OpCounts,
) -> Result<Value> {
    let shape = ConvShape {
        geometry: ConvGeometry::symmetric((x.h, x.w, x.c), w.k, w.stride, w.pad)?,
        out_c: w.cout,
        groups: w.groups,
    };
    check_conv(&shape, weight, w_fl, bias)?;
    let fl_in = x.fl[0];
    if x.fl.iter().any(|&f| f != fl_in) || x.data.iter().any(|&q| !(-127..=255).contains(&q)) {
        return Err(arg_err!(
            "conv input must be 8-bit codes of one format (insert a Quantize node)"
        ));
    }
    let mut data = vec![0_i32; shape.out_len()];
    if fits_int32(shape.depth(), bias) {
        accumulate::<i32>(x, &shape, weight, bias, &mut data)
    } else {
        accumulate::<i64>(x, &shape, weight, bias, &mut data)
    }
    counts.mul_8x8 += (shape.out_len() * shape.depth()) as u64;
    Ok(Value {
        c: w.cout,
        h: shape.geometry.out_h(),
        w: shape.geometry.out_w(),
        data,
        fl: w_fl.iter().map(|&f| fl_in + i32::from(f)).collect(),
    })
}

/// Errors unless `shape` is valid and the weights `[cout][cin / groups][k][k]`, their FLs and the
/// biases fit it.
pub(super) fn check_conv(
    shape: &ConvShape,
    weight: &[i8],
    w_fl: &[u8],
    bias: &[i32],
) -> Result<()> {
    shape.validate()?;
    let cout = shape.out_c;
    if weight.len() != shape.weight_len() || w_fl.len() != cout || bias.len() != cout {
        return Err(shape_err!(
            "conv weights {} / FLs {} / biases {} do not fit {cout} x {} x {}x{}",
            weight.len(),
            w_fl.len(),
            bias.len(),
            shape.in_c_per_group(),
            shape.geometry.kernel_h,
            shape.geometry.kernel_w
        ));
    }
    Ok(())
}

/// Whether int32 accumulation of `depth` products of codes (magnitude at most 255) and weights
/// (at most 127) plus `bias` is exact: `|bias| + 255 * 127 * depth` stays below `2^31 - 1`.
pub(super) fn fits_int32(depth: usize, bias: &[i32]) -> bool {
    let max_bias = bias.iter().map(|b| i64::from(*b).abs()).max().unwrap_or(0);
    max_bias + 255 * 127 * (depth as i64) < ACC_MAX
}

/// The convolution's accumulation loop over the `H x W x C` input `x` with accumulator type `A`
/// (i32 when the caller proved it cannot overflow, i64 otherwise): per output pixel, each in-image
/// tap's input pixel times the weights of every output channel of its group, with the weights
/// laid out tap- and input-channel-major once per call so that the inner loop runs over output
/// channels.
fn accumulate<A>(x: &Value, shape: &ConvShape, weight: &[i8], bias: &[i32], data: &mut [i32])
where
    A: Copy + From<i32> + std::ops::AddAssign + Into<i64>,
{
    let g = &shape.geometry;
    let (cin_g, cout_g) = (shape.in_c_per_group(), shape.out_c_per_group());
    let (k, cout) = (g.kernel_w, shape.out_c);
    let taps = k * k;
    // by_tap[(t * cin_g + ci) * cout + o] = weight[o][ci][t]
    let mut by_tap = vec![0_i32; taps * cin_g * cout];
    for (o, filter) in weight.chunks_exact(cin_g * taps).enumerate() {
        for (ci, channel) in filter.chunks_exact(taps).enumerate() {
            for (t, &w) in channel.iter().enumerate() {
                by_tap[(t * cin_g + ci) * cout + o] = i32::from(w);
            }
        }
    }
    let mut acc: Vec<A> = vec![A::from(0); cout];
    for oy in 0..g.out_h() {
        for ox in 0..g.out_w() {
            acc.iter_mut().zip(bias).for_each(|(a, &b)| *a = A::from(b));
            for t in 0..taps {
                let Some(at) = g.tap_hwc((oy, ox), (t / k, t % k), 0) else {
                    continue;
                };
                let pixel = &x.data[at..][..x.c];
                for (grp, outs) in acc.chunks_mut(cout_g).enumerate() {
                    for ci in 0..cin_g {
                        let v = pixel[grp * cin_g + ci];
                        if v == 0 {
                            continue;
                        }
                        let w = &by_tap[(t * cin_g + ci) * cout + grp * cout_g..][..cout_g];
                        for (a, &wv) in outs.iter_mut().zip(w) {
                            *a += A::from(wv * v);
                        }
                    }
                }
            }
            let out = &mut data[(oy * g.out_w() + ox) * cout..][..cout];
            for (d, a) in out.iter_mut().zip(&acc) {
                *d = saturate_acc((*a).into());
            }
        }
    }
}

fn add(a: &Value, b: &Value, relu: bool, counts: &mut OpCounts) -> Result<Value> {
    if (a.c, a.h, a.w) != (b.c, b.h, b.w) {
        return Err(shape_err!(
            "residual operands {}x{}x{} and {}x{}x{}",
            a.c,
            a.h,
            a.w,
            b.c,
            b.h,
            b.w
        ));
    }
    let shifted = a.fl.iter().zip(&b.fl).filter(|(x, y)| x != y).count();
    counts.shifts += (shifted * a.h * a.w) as u64;
    let data = a
        .data
        .chunks(a.c.max(1))
        .zip(b.data.chunks(a.c.max(1)))
        .flat_map(|(pa, pb)| {
            (0..a.c).map(move |c| {
                let (s, _) = align_add(pa[c], a.fl[c], pb[c], b.fl[c]);
                if relu { s.max(0) } else { s }
            })
        })
        .collect();
    let fl = a.fl.iter().zip(&b.fl).map(|(&x, &y)| x.max(y)).collect();
    Ok(Value {
        c: a.c,
        h: a.h,
        w: a.w,
        data,
        fl,
    })
}

/// The largest code of each channel over the in-image taps of each window.
fn max_pool(v: &Value, k: usize, stride: usize, pad: usize) -> Result<Value> {
    let g = ConvGeometry::symmetric((v.h, v.w, v.c), k, stride, pad)?;
    let mut data = Vec::with_capacity(g.out_h() * g.out_w() * v.c);
    for oy in 0..g.out_h() {
        for ox in 0..g.out_w() {
            let taps: Vec<usize> = (0..k * k)
                .filter_map(|t| g.tap_hwc((oy, ox), (t / k, t % k), 0))
                .collect();
            for ch in 0..v.c {
                let best = taps.iter().map(|&at| v.data[at + ch]).max();
                data.push(best.ok_or_else(|| arg_err!("a pooling window over padding only"))?);
            }
        }
    }
    Ok(Value {
        c: v.c,
        h: g.out_h(),
        w: g.out_w(),
        data,
        fl: v.fl.clone(),
    })
}

/// Each pixel of `v` (raw bytes) through its channel's table; errors where the tables do not fit
/// the channels or hold codes outside `format`, or where `v` is not pixels.
fn look_up(v: &Value, tables: &[i32], format: FixedFormat) -> Result<Value> {
    check_tables(tables, v.c, format)?;
    let data = v
        .data
        .chunks(v.c.max(1))
        .flat_map(|pixel| {
            pixel.iter().enumerate().map(|(ch, &p)| {
                u8::try_from(p)
                    .map(|p| tables[ch * 256 + usize::from(p)])
                    .map_err(|_| arg_err!("a code table reads raw pixels, not {p}"))
            })
        })
        .collect::<Result<Vec<i32>>>()?;
    Ok(Value {
        c: v.c,
        h: v.h,
        w: v.w,
        data,
        fl: vec![i32::from(format.fl); v.c],
    })
}

/// Errors unless `tables` holds 256 codes of `format` per channel of `channels`.
pub(super) fn check_tables(tables: &[i32], channels: usize, format: FixedFormat) -> Result<()> {
    if tables.len() != 256 * channels {
        return Err(shape_err!(
            "{} table entries for {channels} channels (256 per channel)",
            tables.len()
        ));
    }
    let (lo, hi) = (format.lo(), format.hi());
    match tables.iter().find(|&&t| !(lo..=hi).contains(&t)) {
        Some(t) => Err(arg_err!("table code {t} outside the format's [{lo}, {hi}]")),
        None => Ok(()),
    }
}

fn global_avg_pool(v: &Value, counts: &mut OpCounts) -> Result<Value> {
    let data = (0..v.c)
        .map(|c| {
            let channel: Vec<i32> = v.data.iter().skip(c).step_by(v.c).copied().collect();
            average_by_shift(&channel)
        })
        .collect::<Result<Vec<_>>>()?;
    if v.h * v.w > 1 {
        counts.shifts += v.c as u64;
    }
    Ok(Value {
        c: v.c,
        h: 1,
        w: 1,
        data,
        fl: v.fl.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> FixedPointModel {
        // 1x2x2 input (FL 8) -> quantize to FL 4 -> 1x1 conv, 2 channels -> relu-quantize -> gap -> fc
        FixedPointModel {
            channels: 1,
            height: 2,
            width: 2,
            input_fl: 8,
            nodes: vec![
                Node::Quantize {
                    src: 0,
                    format: FixedFormat::new(4, false).unwrap(),
                },
                Node::Conv {
                    src: 1,
                    cout: 2,
                    k: 1,
                    stride: 1,
                    pad: 0,
                    groups: 1,
                    weight: vec![64, -64],
                    w_fl: vec![6, 6],
                    bias: vec![0, 16 << 6],
                },
                Node::Quantize {
                    src: 2,
                    format: FixedFormat::new(4, false).unwrap(),
                },
                Node::GlobalAvgPool { src: 3 },
                Node::Linear {
                    src: 4,
                    out: 2,
                    weight: vec![1, 0, 0, 1],
                    w_fl: vec![0, 0],
                    bias: vec![0, 0],
                },
            ],
        }
    }

    /// Live bytes, hand-counted (codes 1 byte, int32 4): tiny_model's image 4 and quantized codes 4
    /// (8), then conv's 8 int32s beside its 4 codes (36), quantize 32 + 8 (40, the peak), pool
    /// 8 + 2, linear 2 + 8. A residual branch whose input is relabelled keeps that input live until
    /// the add reads the relabelled value: 4 codes + 16 + 16 at the add (36), where without the
    /// alias the codes would already be dead (32).
    #[test]
    fn peak_activation_bytes_follow_liveness() {
        assert_eq!(tiny_model().peak_activation_bytes().unwrap(), 40);
        let conv = |src| Node::Conv {
            src,
            cout: 1,
            k: 1,
            stride: 1,
            pad: 0,
            groups: 1,
            weight: vec![1],
            w_fl: vec![0],
            bias: vec![0],
        };
        let quantize = |src| Node::Quantize {
            src,
            format: FixedFormat::new(4, false).unwrap(),
        };
        let residual = FixedPointModel {
            channels: 1,
            height: 2,
            width: 2,
            input_fl: 8,
            nodes: vec![
                conv(0),
                quantize(1),
                Node::Relabel { src: 2, fl: 4 },
                conv(2),
                Node::Add {
                    a: 4,
                    b: 3,
                    relu: true,
                },
                quantize(5),
            ],
        };
        // node 0: 4 + 16; 1: 16 + 4; 2: 4 (+ 0, an alias); 3: 4 + 16; 4: 4 + 16 + 16; 5: 16 + 4.
        assert_eq!(residual.peak_activation_bytes().unwrap(), 36);
    }

    #[test]
    fn hand_computed_forward() {
        let m = tiny_model();
        // pixels 16,32,48,64 = 1/16..4/16 -> FL4 codes 1,2,3,4 (shift 4, exact)
        let (out, counts) = m.run(&[16, 32, 48, 64]).unwrap();
        // channel 0: w = 1.0, codes 1..4 -> relu -> mean 2.5 -> 2 (half to even)
        // channel 1: w = -1.0, bias 1.0 -> 1 - x: 15/16..12/16 codes 15,14,13,12 -> mean 13.5 -> 14
        assert_eq!(out.data, vec![2, 14]);
        assert_eq!(out.fl, vec![4, 4]);
        assert_eq!(counts.mul_8x8, 8 + 4);
        assert_eq!(counts.mul_32x32, 0);
        assert_eq!(counts.shifts, 4 + 8 + 2);
        // Bytes per node (codes 1, int32 4): quantize 4 + 4; conv 4 + weights 2 + biases 8 +
        // 8 int32s; quantize 32 + 8; pool 8 + 2; linear 2 + weights 4 + biases 8 + 2 int32s.
        assert_eq!(
            counts.bytes_moved,
            8 + (4 + 2 + 8 + 32) + 40 + 10 + (2 + 4 + 8 + 8)
        );
        assert_eq!(m.predict(&[16, 32, 48, 64]).unwrap().0, 1);
    }

    #[test]
    fn residual_alignment_and_relu() {
        let v = |data: Vec<i32>, fl: i32| Value {
            c: 1,
            h: 1,
            w: data.len(),
            data,
            fl: vec![fl],
        };
        let mut c = OpCounts::default();
        let s = add(&v(vec![1, -20], 0), &v(vec![3, 3], 2), true, &mut c).unwrap();
        assert_eq!(s.data, vec![7, 0]);
        assert_eq!(s.fl, vec![2]);
        assert_eq!(c.shifts, 2);
    }

    /// The image arrives in planes and a fully connected layer reads its input in planes, while
    /// values are stored channels innermost: an identity layer over a 2-channel 1x2 image returns
    /// the pixels in their order, with each channel's FL.
    #[test]
    fn planes_in_and_flattened_in_plane_order() {
        let identity: Vec<i8> = (0..16).map(|i| i8::from(i % 5 == 0)).collect();
        let m = FixedPointModel {
            channels: 2,
            height: 1,
            width: 2,
            input_fl: 8,
            nodes: vec![Node::Linear {
                src: 0,
                out: 4,
                weight: identity,
                w_fl: vec![0; 4],
                bias: vec![0; 4],
            }],
        };
        let pixels = [1, 2, 3, 4];
        for run in [
            m.run(&pixels).unwrap().0,
            m.prepare(Backend::detect())
                .unwrap()
                .run(&pixels)
                .unwrap()
                .0,
        ] {
            assert_eq!(run.data, vec![1, 2, 3, 4]);
        }
        let v = Value {
            c: 2,
            h: 1,
            w: 2,
            data: vec![10, 20, 11, 21],
            fl: vec![3, 5],
        };
        let flat = flatten(&v);
        assert_eq!(flat.data, vec![10, 11, 20, 21]);
        assert_eq!(flat.fl, vec![3, 3, 5, 5]);
    }

    #[test]
    fn relabel_changes_only_the_binary_point() {
        let mut m = tiny_model();
        m.nodes.truncate(1);
        m.nodes.push(Node::Relabel { src: 1, fl: 7 });
        let (out, counts) = m.run(&[16, 32, 48, 64]).unwrap();
        assert_eq!(out.data, vec![1, 2, 3, 4]);
        assert_eq!(out.fl, vec![7]);
        assert_eq!(counts.shifts, 4, "only the quantize shifted");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let m = tiny_model();
        assert!(m.run(&[1, 2, 3]).is_err());
        let mut bad = m.clone();
        bad.nodes[0] = Node::Quantize {
            src: 3,
            format: FixedFormat::new(4, false).unwrap(),
        };
        assert!(bad.run(&[0; 4]).is_err());
        let mut unq = m.clone();
        if let Node::Conv { src, .. } = &mut unq.nodes[1] {
            *src = 0;
        }
        assert!(
            unq.run(&[0; 4]).is_ok(),
            "raw pixels are valid unsigned codes"
        );
        let empty = Value {
            c: 1,
            h: 0,
            w: 1,
            data: vec![],
            fl: vec![0],
        };
        assert!(global_avg_pool(&empty, &mut OpCounts::default()).is_err());
        // Max pooling reads codes, not the int32 accumulators of a convolution.
        let mut unpooled = m.clone();
        unpooled.nodes[2] = Node::MaxPool {
            src: 2,
            k: 1,
            stride: 1,
            pad: 0,
        };
        assert!(unpooled.run(&[0; 4]).is_err());
    }

    #[test]
    fn wide_accumulator_path_saturates_at_the_symmetric_bound() {
        // |bias| close to 2^31 forces the i64 accumulator; the sum clamps to i32::MAX
        let x = Value {
            c: 1,
            h: 1,
            w: 3,
            data: vec![255, 255, 255],
            fl: vec![0],
        };
        let shape = ConvFields {
            cout: 2,
            k: 1,
            stride: 1,
            pad: 0,
            groups: 1,
        };
        let bias = [i32::MAX - 10, -i32::MAX + 10];
        let out = conv(
            &x,
            shape,
            &[127, -127],
            &[0, 0],
            &bias,
            &mut OpCounts::default(),
        )
        .unwrap();
        // Each of the three pixels: channel 0 at the positive bound, channel 1 at the negative.
        assert_eq!(out.data, [i32::MAX, -i32::MAX].repeat(3));
    }

    #[test]
    fn strided_padded_depthwise_conv_matches_reference() {
        // 3x3 pixels of 2 channels (HWC), depthwise 3x3 stride 2 pad 1 -> 2x2
        let x = Value {
            c: 2,
            h: 3,
            w: 3,
            data: (0..18).map(|i| i - 5).collect(),
            fl: vec![2, 2],
        };
        let weight: Vec<i8> = (0..18).map(|i| (i % 5 - 2) as i8).collect();
        let shape = ConvFields {
            cout: 2,
            k: 3,
            stride: 2,
            pad: 1,
            groups: 2,
        };
        let out = conv(
            &x,
            shape,
            &weight,
            &[1, 3],
            &[5, -5],
            &mut OpCounts::default(),
        )
        .unwrap();
        for o in 0..2 {
            for y in 0..2 {
                for xx in 0..2 {
                    let mut want = [5, -5][o];
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (2 * y + ky, 2 * xx + kx);
                            if (1..=3).contains(&iy) && (1..=3).contains(&ix) {
                                want += i32::from(weight[o * 9 + ky * 3 + kx])
                                    * x.data[((iy - 1) * 3 + ix - 1) * 2 + o];
                            }
                        }
                    }
                    assert_eq!(out.data[(y * 2 + xx) * 2 + o], want);
                }
            }
        }
        assert_eq!(out.fl, vec![3, 5]);
    }

    /// The graph's convolutions (int8 kernels) equal the scalar loop, value for value, on every
    /// backend of this CPU: dense and depthwise convolutions of several windows, strides,
    /// paddings and depths over signed and unsigned codes, and the prepared tiny model.
    #[test]
    fn graph_convolutions_equal_the_scalar_loop() {
        use super::super::graph::conv_op;
        use crate::graph::{Graph, Kind, Tensor};
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let case = (
            1usize..=3,
            1usize..=2,
            1usize..=20,
            1usize..=18,
            3usize..=9,
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        );
        for backend in Backend::available() {
            let mut runner = TestRunner::new(Config::with_cases(48));
            runner
                .run(
                    &case,
                    |(kh, stride, cin, cout, side, signed, depthwise, seed)| {
                        let k = 2 * kh - 1;
                        // A depthwise layer has one input channel per output channel.
                        let (cout, groups) = if depthwise { (cin, cin) } else { (cout, 1) };
                        let mut state = seed | 1;
                        let mut next = |lo: i32, hi: i32| {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            lo + (state % (hi - lo + 1) as u64) as i32
                        };
                        let (lo, hi) = if signed { (-127, 127) } else { (0, 255) };
                        let x = Value {
                            c: cin,
                            h: side,
                            w: side,
                            data: (0..cin * side * side).map(|_| next(lo, hi)).collect(),
                            fl: vec![3; cin],
                        };
                        let weight: Vec<i8> = (0..cout * cin / groups * k * k)
                            .map(|_| next(-128, 127) as i8)
                            .collect();
                        let bias: Vec<i32> = (0..cout).map(|_| next(-5000, 5000)).collect();
                        let fields = || ConvFields {
                            cout,
                            k,
                            stride,
                            pad: k / 2,
                            groups,
                        };
                        let w_fl = vec![2; cout];
                        let mut counts = OpCounts::default();
                        let scalar =
                            conv(&x, fields(), &weight, &w_fl, &bias, &mut counts).unwrap();
                        // The same layer on the graph: signed codes stored offset by 128.
                        let zero_point = if signed { 128 } else { 0 };
                        let input = Shape {
                            h: side,
                            w: side,
                            c: cin,
                        };
                        let kind = Kind::eight_bit(zero_point);
                        let mut graph = Graph::new(input, kind).unwrap();
                        let shape = ConvShape {
                            geometry: ConvGeometry::symmetric((side, side, cin), k, stride, k / 2)
                                .unwrap(),
                            out_c: cout,
                            groups,
                        };
                        let op = conv_op(shape, &weight, &w_fl, &bias, backend).unwrap();
                        graph.push(&[0], op).unwrap();
                        let codes = x.data.iter().map(|&q| (q + zero_point) as u8).collect();
                        let (out, graph_counts) =
                            graph.run(Tensor::codes(1, input, kind, codes)).unwrap();
                        prop_assert_eq!(graph_counts.mul_8x8, counts.mul_8x8);
                        let fast = Value {
                            c: out.shape.c,
                            h: out.shape.h,
                            w: out.shape.w,
                            data: out.to_i32().unwrap().into_owned(),
                            fl: scalar.fl.clone(),
                        };
                        prop_assert_eq!(&fast, &scalar, "{:?}", backend);
                        Ok(())
                    },
                )
                .unwrap();
            let m = tiny_model();
            let prepared = m.prepare(backend).unwrap();
            for pixels in [[16, 32, 48, 64], [255, 0, 7, 200]] {
                assert_eq!(prepared.run(&pixels).unwrap(), m.run(&pixels).unwrap());
            }
        }
    }

    /// A colour model with the nodes of the ImageNet networks (input code tables, a 3x3/2 max pool
    /// with padding, average pooling over a 3x3 map: a shift by 4) gives the same logits on the
    /// graph of every backend as on the scalar loop; a hand case of each new node.
    #[test]
    fn code_tables_and_pooling_equal_the_scalar_loop() {
        let signed5 = FixedFormat::new(5, true).unwrap();
        let tables: Vec<i32> = (0..2 * 256)
            .map(|i: i32| ((i % 256) - 128 + 40 * (i / 256)).clamp(-127, 127))
            .collect();
        let weight: Vec<i8> = (0..3 * 2 * 9).map(|i| ((i * 37 % 29) as i8) - 14).collect();
        let model = FixedPointModel {
            channels: 2,
            height: 6,
            width: 6,
            input_fl: 8,
            nodes: vec![
                Node::CodeTable {
                    src: 0,
                    tables: tables.clone(),
                    format: signed5,
                },
                Node::Conv {
                    src: 1,
                    cout: 3,
                    k: 3,
                    stride: 1,
                    pad: 1,
                    groups: 1,
                    weight,
                    w_fl: vec![4, 5, 6],
                    bias: vec![100, -300, 7],
                },
                Node::Quantize {
                    src: 2,
                    format: FixedFormat::new(2, false).unwrap(),
                },
                Node::MaxPool {
                    src: 3,
                    k: 3,
                    stride: 2,
                    pad: 1,
                },
                Node::GlobalAvgPool { src: 4 },
                Node::Linear {
                    src: 5,
                    out: 2,
                    weight: vec![3, -2, 1, -1, 2, 5],
                    w_fl: vec![1, 1],
                    bias: vec![0, 9],
                },
            ],
        };
        for backend in Backend::available() {
            let prepared = model.prepare(backend).unwrap();
            for seed in 0..6_u32 {
                let pixels: Vec<u8> = (0..72_u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 977) >> 24) as u8)
                    .collect();
                assert_eq!(
                    prepared.run(&pixels).unwrap(),
                    model.run(&pixels).unwrap(),
                    "{backend:?}"
                );
            }
        }
        // By hand: the largest in-image tap wins over padding; each pixel goes through its table.
        let x = Value {
            c: 1,
            h: 2,
            w: 2,
            data: vec![-7, -5, -3, -9],
            fl: vec![3],
        };
        let pooled = max_pool(&x, 3, 2, 1).unwrap();
        assert_eq!((pooled.data, pooled.h), (vec![-3], 1));
        let pixels = Value {
            c: 2,
            h: 1,
            w: 1,
            data: vec![0, 255],
            fl: vec![8, 8],
        };
        let looked = look_up(&pixels, &tables, signed5).unwrap();
        assert_eq!((looked.data, looked.fl), (vec![-127, 127], vec![5, 5]));
        assert!(look_up(&pixels, &tables[..256], signed5).is_err());
        let unsigned = FixedFormat::new(5, false).unwrap();
        assert!(
            look_up(&pixels, &tables, unsigned).is_err(),
            "negative codes are not unsigned"
        );
    }
}
