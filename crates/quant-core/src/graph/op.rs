//! The graph's operations: what each reads, writes and counts.
#![deny(clippy::float_arithmetic)]

use std::sync::Arc;

use super::{Data, Kind, Requantizer, Shape, Tensor};
use crate::error::{Result, arg_err, shape_err};
use crate::fixed8::format::{align_add, average_by_shift};
use crate::fixedpoint::RoundingMode;
use crate::kernels::{
    AddParams, ConvGeometry, ConvKernel, ConvShape, OutputStage, add, avg_pool, conv2d,
    depthwise_conv2d, gemm, max_pool,
};
use crate::ops::OpCounts;

/// What a fully connected layer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseInput {
    /// Its input flattened, `H x W x C` order (an exporter whose framework flattens `C x H x W`
    /// reorders its weights once).
    Flat,
    /// The floor of each channel's mean code over the image: global average pooling fused into
    /// the classifier, as Rusci et al.'s deployment runs it (the channel sums are read as int32;
    /// the pooled codes are never stored).
    FloorMean,
}

/// How a pooling window combines its taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The largest code ([`max_pool`]).
    Max,
    /// The mean code, rounded to nearest ([`avg_pool`]).
    Average,
}

/// One operation of a [`super::Graph`].
#[derive(Debug, Clone)]
pub enum Op {
    /// A dense or depthwise convolution of codes: the int32 accumulators `bias[o] + sum (x -
    /// zero point)(w - weight zero point)` (an empty `bias` adds nothing), then `stage` where
    /// given; without one the accumulators are the value. `weight_bytes`: the weights and their
    /// zero points as the scheme stores them.
    Conv {
        shape: ConvShape,
        kernel: ConvKernel,
        bias: Vec<i32>,
        stage: Option<Arc<dyn Requantizer>>,
        weight_bytes: usize,
    },
    /// A fully connected layer of `out` outputs over codes ([`DenseInput`]), a 1x1 dense
    /// `kernel`; as [`Op::Conv`] otherwise.
    Dense {
        input: DenseInput,
        out: usize,
        kernel: ConvKernel,
        bias: Vec<i32>,
        stage: Option<Arc<dyn Requantizer>>,
        weight_bytes: usize,
    },
    /// The requantization of int32 values or codes.
    Requantize(Arc<dyn Requantizer>),
    /// F8Net's residual addition: per channel, the operand with the smaller fractional length
    /// shifted left to the larger (`fl_a`, `fl_b`: the operands' lengths), summed and clamped to
    /// `±(2^31 - 1)` ([`align_add`]); `relu` zeroes negatives afterwards.
    AlignedAdd {
        fl_a: Vec<i32>,
        fl_b: Vec<i32>,
        relu: bool,
    },
    /// Global average pooling as a shift rounding half to even ([`average_by_shift`]: the mean over
    /// a `2^n`-pixel image, else the mean scaled by `pixels / 2^shift`): codes stay codes of their
    /// format, int32 values stay int32.
    MeanByShift,
    /// Pooling of codes over the in-image taps of `window`, then the clamp `[act_min, act_max]`;
    /// a window over the whole image is global pooling.
    Pool {
        rule: Pooling,
        window: ConvGeometry,
        act_min: u8,
        act_max: u8,
    },
    /// Jacob et al.'s residual addition of two code tensors, each rescaled by its fixed-point
    /// multiplier ([`crate::kernels::add()`]).
    AffineAdd {
        params: AddParams,
        rounding: RoundingMode,
    },
    /// Codes mapped channel by channel through 256-entry tables (`tables[c * 256 + q]`) to codes
    /// of zero point `zero_point` ([`crate::engine::CodeTableLayer`]).
    CodeTable { tables: Vec<u8>, zero_point: i32 },
}

impl Op {
    /// How many values the operation reads.
    pub fn arity(&self) -> usize {
        match self {
            Op::AlignedAdd { .. } | Op::AffineAdd { .. } => 2,
            _ => 1,
        }
    }

    /// The operation's name in errors.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "convolution",
            Op::Dense { .. } => "fully connected layer",
            Op::Requantize(_) => "requantization",
            Op::AlignedAdd { .. } => "aligned add",
            Op::MeanByShift => "mean by shift",
            Op::Pool { .. } => "pooling",
            Op::AffineAdd { .. } => "affine add",
            Op::CodeTable { .. } => "code table",
        }
    }

    /// Bytes of the parameters a run reads: weights, biases, requantization parameters.
    pub fn parameter_bytes(&self) -> usize {
        match self {
            Op::Conv {
                bias,
                stage,
                weight_bytes,
                ..
            }
            | Op::Dense {
                bias,
                stage,
                weight_bytes,
                ..
            } => weight_bytes + 4 * bias.len() + stage.as_ref().map_or(0, |s| s.stored_bytes()),
            Op::Requantize(stage) => stage.stored_bytes(),
            Op::CodeTable { tables, .. } => tables.len(),
            Op::AlignedAdd { .. } | Op::MeanByShift | Op::Pool { .. } | Op::AffineAdd { .. } => 0,
        }
    }

    /// Bytes per image of intermediates a deployment stores beside the input and output: the
    /// int32 channel sums of a [`DenseInput::FloorMean`] layer.
    pub fn scratch_bytes(&self, input: &Shape) -> usize {
        match self {
            Op::Dense {
                input: DenseInput::FloorMean,
                ..
            } => 4 * input.c,
            _ => 0,
        }
    }

    /// The output's shape and storage for inputs of `read`; errors where they do not fit.
    pub(super) fn output(&self, read: &[(Shape, Kind)]) -> Result<(Shape, Kind)> {
        let (shape, kind) = read[0];
        let staged = |stage: Option<&dyn Requantizer>, channels: usize| match stage {
            Some(s) if s.channels() != channels => Err(shape_err!(
                "its requantization holds {} channels for {channels} outputs",
                s.channels()
            )),
            Some(s) => Ok(s.output()),
            None => Ok(Kind::Int32),
        };
        match self {
            Op::Conv {
                shape: conv,
                kernel,
                bias,
                stage,
                ..
            } => {
                kind.zero_point(self.name())?;
                conv.validate()?;
                let g = &conv.geometry;
                if (g.in_h, g.in_w, g.in_c) != (shape.h, shape.w, shape.c) || !kernel.fits(conv) {
                    return Err(shape_err!(
                        "a {}x{}x{} convolution of {} groups does not fit its input {shape:?} or kernel",
                        g.in_h,
                        g.in_w,
                        g.in_c,
                        conv.groups
                    ));
                }
                check_bias(bias, conv.out_c)?;
                check_fused(bias, stage.as_deref())?;
                let out = Shape {
                    h: g.out_h(),
                    w: g.out_w(),
                    c: conv.out_c,
                };
                Ok((out, staged(stage.as_deref(), conv.out_c)?))
            }
            Op::Dense {
                input,
                out,
                kernel,
                bias,
                stage,
                ..
            } => {
                kind.zero_point(self.name())?;
                let depth = match input {
                    DenseInput::Flat => shape.len(),
                    DenseInput::FloorMean => shape.c,
                };
                let dense = dense_shape(depth, *out)?;
                if !kernel.fits(&dense) {
                    return Err(shape_err!("a fully connected layer needs a dense kernel"));
                }
                check_bias(bias, *out)?;
                check_fused(bias, stage.as_deref())?;
                let out_shape = Shape {
                    h: 1,
                    w: 1,
                    c: *out,
                };
                Ok((out_shape, staged(stage.as_deref(), *out)?))
            }
            Op::Requantize(stage) => {
                if kind == Kind::Int64 {
                    return Err(arg_err!("int64 logits cannot be requantized"));
                }
                Ok((shape, staged(Some(&**stage), shape.c)?))
            }
            Op::AlignedAdd { fl_a, fl_b, .. } => {
                let (other, other_kind) = read[1];
                if other != shape || fl_a.len() != shape.c || fl_b.len() != shape.c {
                    return Err(shape_err!(
                        "operands {shape:?} and {other:?} with {} and {} fractional lengths",
                        fl_a.len(),
                        fl_b.len()
                    ));
                }
                if kind == Kind::Int64 || other_kind == Kind::Int64 {
                    return Err(arg_err!("int64 logits cannot be added"));
                }
                Ok((shape, Kind::Int32))
            }
            Op::MeanByShift => {
                if kind == Kind::Int64 {
                    return Err(arg_err!("int64 logits cannot be pooled"));
                }
                Ok((
                    Shape {
                        h: 1,
                        w: 1,
                        ..shape
                    },
                    kind,
                ))
            }
            Op::Pool {
                rule: _,
                window,
                act_min,
                act_max,
            } => {
                kind.zero_point(self.name())?;
                window.validate()?;
                if (window.in_h, window.in_w, window.in_c) != (shape.h, shape.w, shape.c)
                    || act_min > act_max
                {
                    return Err(shape_err!(
                        "a {}x{}x{} window clamped to [{act_min}, {act_max}] does not fit its input {shape:?}",
                        window.in_h,
                        window.in_w,
                        window.in_c
                    ));
                }
                let out = Shape {
                    h: window.out_h(),
                    w: window.out_w(),
                    c: shape.c,
                };
                Ok((out, kind))
            }
            Op::AffineAdd { params, .. } => {
                let (other, other_kind) = read[1];
                params.validate()?;
                let zero_points = (
                    kind.zero_point(self.name())?,
                    other_kind.zero_point(self.name())?,
                );
                if other != shape
                    || zero_points != (params.input1_zero_point, params.input2_zero_point)
                {
                    return Err(shape_err!(
                        "operands {shape:?} and {other:?} with zero points {zero_points:?} do not fit its parameters"
                    ));
                }
                let out = Kind::eight_bit(params.output_zero_point);
                Ok((shape, out))
            }
            Op::CodeTable { tables, zero_point } => {
                kind.zero_point(self.name())?;
                if tables.len() != 256 * shape.c {
                    return Err(shape_err!(
                        "{} table entries for {} channels (256 per channel)",
                        tables.len(),
                        shape.c
                    ));
                }
                if !(0..=255).contains(zero_point) {
                    return Err(arg_err!("output zero point {zero_point} outside [0, 255]"));
                }
                Ok((shape, Kind::eight_bit(*zero_point)))
            }
        }
    }

    /// Runs the operation on `read` (inputs that passed [`Self::output`], which gave the output's
    /// per-image shape `out`), adding its products, multiplies and shifts to `counts` (the
    /// executor adds the bytes).
    pub(super) fn run(
        &self,
        read: &[&Tensor],
        out: Shape,
        counts: &mut OpCounts,
    ) -> Result<Tensor> {
        let x = read[0];
        let batch = x.batch;
        match self {
            Op::Conv {
                shape,
                kernel,
                bias,
                stage,
                ..
            } => {
                let zero_point = x.kind.zero_point(self.name())?;
                counts.mul_8x8 += (batch * shape.out_len() * shape.depth()) as u64;
                if let Some((stage, affine)) = fused_stage(stage) {
                    let mut y = vec![0_u8; batch * shape.out_len()];
                    let (codes, g) = (x.code_bytes()?, &shape.geometry);
                    match kernel {
                        ConvKernel::Dense(w) => {
                            conv2d(codes, batch, g, zero_point, w, affine, &mut y)
                        }
                        ConvKernel::Depthwise(w) => {
                            depthwise_conv2d(codes, batch, g, zero_point, w, affine, &mut y)
                        }
                    }?;
                    return Ok(staged(Data::Codes(y), batch, out, stage, counts));
                }
                let mut acc = vec![0_i32; batch * shape.out_len()];
                kernel.accumulate(
                    x.code_bytes()?,
                    batch,
                    &shape.geometry,
                    zero_point,
                    bias,
                    &mut acc,
                )?;
                finish(acc, batch, out, stage.as_deref(), counts)
            }
            Op::Dense {
                input,
                out: outputs,
                kernel,
                bias,
                stage,
                ..
            } => {
                let zero_point = x.kind.zero_point(self.name())?;
                let codes = x.code_bytes()?;
                let pooled;
                let (codes, depth) = match input {
                    DenseInput::Flat => (codes, x.shape.len()),
                    DenseInput::FloorMean => {
                        pooled = floor_means(codes, x.shape);
                        (&pooled[..], x.shape.c)
                    }
                };
                counts.mul_8x8 += (batch * outputs * depth) as u64;
                if let (Some((stage, affine)), ConvKernel::Dense(w)) = (fused_stage(stage), kernel)
                {
                    let mut y = vec![0_u8; batch * outputs];
                    gemm(codes, batch, zero_point, w, affine, &mut y)?;
                    return Ok(staged(Data::Codes(y), batch, out, stage, counts));
                }
                let mut acc = vec![0_i32; batch * outputs];
                let geometry = dense_shape(depth, *outputs)?.geometry;
                kernel.accumulate(codes, batch, &geometry, zero_point, bias, &mut acc)?;
                finish(acc, batch, out, stage.as_deref(), counts)
            }
            Op::Requantize(stage) => requantize(&x.to_i32()?, batch, x.shape, &**stage, counts),
            Op::AlignedAdd { fl_a, fl_b, relu } => {
                let (a, b) = (x.to_i32()?, read[1].to_i32()?);
                let c = x.shape.c;
                let shifted = fl_a.iter().zip(fl_b).filter(|(p, q)| p != q).count();
                counts.shifts += (batch * shifted * x.shape.h * x.shape.w) as u64;
                let data = a
                    .iter()
                    .zip(b.iter())
                    .enumerate()
                    .map(|(i, (&p, &q))| {
                        let (s, _) = align_add(p, fl_a[i % c], q, fl_b[i % c]);
                        if *relu { s.max(0) } else { s }
                    })
                    .collect();
                Ok(Tensor {
                    batch,
                    shape: x.shape,
                    kind: Kind::Int32,
                    data: Data::Int32(data),
                })
            }
            Op::MeanByShift => {
                let (c, plane) = (x.shape.c, x.shape.h * x.shape.w);
                let values = x.to_i32()?;
                let means = values
                    .chunks(plane * c)
                    .flat_map(|image| {
                        (0..c).map(move |ch| {
                            let channel: Vec<i32> =
                                image.iter().skip(ch).step_by(c).copied().collect();
                            average_by_shift(&channel)
                        })
                    })
                    .collect::<Result<Vec<i32>>>()?;
                if plane > 1 {
                    counts.shifts += (batch * c) as u64;
                }
                let data = match x.kind {
                    // The mean of codes is a code of their format.
                    Kind::Codes { zero_point, .. } => {
                        Data::Codes(means.iter().map(|&m| (m + zero_point) as u8).collect())
                    }
                    _ => Data::Int32(means),
                };
                Ok(Tensor {
                    batch,
                    shape: out,
                    kind: x.kind,
                    data,
                })
            }
            Op::Pool {
                rule,
                window,
                act_min,
                act_max,
            } => {
                let mut y = vec![0_u8; batch * out.len()];
                let pool = match rule {
                    Pooling::Max => max_pool,
                    Pooling::Average => avg_pool,
                };
                pool(x.code_bytes()?, batch, window, *act_min, *act_max, &mut y)?;
                Ok(Tensor::codes(batch, out, x.kind, y))
            }
            Op::AffineAdd { params, rounding } => {
                let mut y = vec![0_u8; batch * x.shape.len()];
                *counts += params.op_counts(y.len() as u64, *rounding);
                let (a, b) = (x.code_bytes()?, read[1].code_bytes()?);
                add(a, b, params, *rounding, &mut y)?;
                let kind = Kind::eight_bit(params.output_zero_point);
                Ok(Tensor::codes(batch, x.shape, kind, y))
            }
            Op::CodeTable { tables, zero_point } => {
                let y = look_up(x.code_bytes()?, tables);
                Ok(Tensor::codes(
                    batch,
                    x.shape,
                    Kind::eight_bit(*zero_point),
                    y,
                ))
            }
        }
    }
}

/// `codes` (channels innermost, as many channels as `tables` holds 256-entry tables) mapped
/// through their channel's table: one pass over the pixels, each table a fixed-size array so the
/// lookups need no bounds checks (the first version, a flattened iterator of pixels, took 2.6 ns a
/// value, as long as the 3x3 convolution after it on a 224x224 colour image).
fn look_up(codes: &[u8], tables: &[u8]) -> Vec<u8> {
    let tables: Vec<&[u8; 256]> = tables
        .chunks_exact(256)
        .map(|t| t.try_into().expect("chunks of 256"))
        .collect();
    let mut out = vec![0_u8; codes.len()];
    for (pixel_out, pixel) in out
        .chunks_exact_mut(tables.len())
        .zip(codes.chunks_exact(tables.len()))
    {
        for ((o, &q), table) in pixel_out.iter_mut().zip(pixel).zip(&tables) {
            *o = table[usize::from(q)];
        }
    }
    out
}

/// An affine stage, fused into the kernels, carries the layer's bias itself.
fn check_fused(bias: &[i32], stage: Option<&dyn Requantizer>) -> Result<()> {
    if !bias.is_empty() && stage.and_then(Requantizer::affine).is_some() {
        return Err(arg_err!(
            "a layer with an affine stage takes its bias in the stage"
        ));
    }
    Ok(())
}

fn check_bias(bias: &[i32], out: usize) -> Result<()> {
    if !bias.is_empty() && bias.len() != out {
        return Err(shape_err!("{} biases for {out} outputs", bias.len()));
    }
    Ok(())
}

/// The 1x1 convolution over one pixel of `depth` channels that a fully connected layer is.
fn dense_shape(depth: usize, out: usize) -> Result<ConvShape> {
    let shape = ConvShape {
        geometry: ConvGeometry::symmetric((1, 1, depth), 1, 1, 0)?,
        out_c: out,
        groups: 1,
    };
    shape.validate()?;
    Ok(shape)
}

/// Per image, the floor of each channel's mean code (codes are unsigned, so the floor of the
/// mean code is the floor of the mean value: the zero point is an integer).
fn floor_means(codes: &[u8], shape: Shape) -> Vec<u8> {
    let (c, plane) = (shape.c, (shape.h * shape.w).max(1));
    codes
        .chunks(shape.len().max(1))
        .flat_map(|image| {
            let mut sums = vec![0_u32; c];
            for pixel in image.chunks(c) {
                for (s, &q) in sums.iter_mut().zip(pixel) {
                    *s += u32::from(q);
                }
            }
            sums.into_iter().map(move |s| (s / plane as u32) as u8)
        })
        .collect()
}

/// The stage and its affine output stage, where the kernels apply it fused.
fn fused_stage(stage: &Option<Arc<dyn Requantizer>>) -> Option<(&dyn Requantizer, &OutputStage)> {
    let stage = stage.as_deref()?;
    Some((stage, stage.affine()?))
}

/// The accumulators as the value (no stage) or requantized by `stage` ([`requantize`]).
fn finish(
    acc: Vec<i32>,
    batch: usize,
    shape: Shape,
    stage: Option<&dyn Requantizer>,
    counts: &mut OpCounts,
) -> Result<Tensor> {
    match stage {
        Some(stage) => requantize(&acc, batch, shape, stage, counts),
        None => Ok(Tensor {
            batch,
            shape,
            kind: Kind::Int32,
            data: Data::Int32(acc),
        }),
    }
}

/// `values` requantized by `stage` ([`staged`]).
fn requantize(
    values: &[i32],
    batch: usize,
    shape: Shape,
    stage: &dyn Requantizer,
    counts: &mut OpCounts,
) -> Result<Tensor> {
    Ok(staged(stage.apply(values)?, batch, shape, stage, counts))
}

/// What `stage` made, `data`, as the value, with the stage's counts added.
fn staged(
    data: Data,
    batch: usize,
    shape: Shape,
    stage: &dyn Requantizer,
    counts: &mut OpCounts,
) -> Tensor {
    *counts += stage.op_counts((data.len() / shape.c.max(1)) as u64);
    Tensor {
        batch,
        shape,
        kind: stage.output(),
        data,
    }
}
