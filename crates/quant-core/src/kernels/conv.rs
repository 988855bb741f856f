//! 2-D convolution (via im2col + the quantized GEMM) and depthwise convolution, NHWC layout.
//!
//! Padding is filled with the input zero point `Za`, the code of real 0 (that is why 0 must be
//! exactly representable, paper §2.1), so padded taps contribute exactly nothing.
#![deny(clippy::float_arithmetic)]

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Backend, MAX_DEPTH, OutputStage, PackedWeights, Rows, StageTables, WindowRun, column_sums,
    copy_run, gemm_rows, gemm_rows_i32, per_channel_zero_points, profile,
};
use crate::error::{Result, arg_err, shape_err};

/// Spatial geometry of a convolution or pooling window over an NHWC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero rows added above.
    pub pad_top: usize,
    /// Zero columns added on the left.
    pub pad_left: usize,
    /// Zero rows added below.
    pub pad_bottom: usize,
    /// Zero columns added on the right.
    pub pad_right: usize,
}

impl ConvGeometry {
    /// Square window `kernel x kernel`, equal strides, and TensorFlow "SAME" padding when
    /// `same` (output `ceil(in / stride)`, extra padding at the bottom/right) or none ("VALID").
    pub fn new(
        in_h: usize,
        in_w: usize,
        in_c: usize,
        kernel: usize,
        stride: usize,
        same: bool,
    ) -> Result<Self> {
        let pad = |n: usize| -> (usize, usize) {
            if !same || stride == 0 {
                return (0, 0);
            }
            let out = n.div_ceil(stride);
            let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(n);
            (total / 2, total - total / 2)
        };
        let (pad_top, pad_bottom) = pad(in_h);
        let (pad_left, pad_right) = pad(in_w);
        ConvGeometry::square(
            (in_h, in_w, in_c),
            kernel,
            stride,
            [pad_top, pad_left, pad_bottom, pad_right],
        )
    }

    /// Square `kernel x kernel` window, equal strides and `pad` zero rows and columns on every
    /// side (the PyTorch convention the training graphs use).
    pub fn symmetric(
        input: (usize, usize, usize),
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        ConvGeometry::square(input, kernel, stride, [pad; 4])
    }

    /// Square window with equal strides and padding `[top, left, bottom, right]`, validated.
    fn square(
        (in_h, in_w, in_c): (usize, usize, usize),
        kernel: usize,
        stride: usize,
        [pad_top, pad_left, pad_bottom, pad_right]: [usize; 4],
    ) -> Result<Self> {
        let g = ConvGeometry {
            in_h,
            in_w,
            in_c,
            kernel_h: kernel,
            kernel_w: kernel,
            stride_h: stride,
            stride_w: stride,
            pad_top,
            pad_left,
            pad_bottom,
            pad_right,
        };
        g.validate()?;
        Ok(g)
    }

    /// Errors unless every size is positive and the padded input holds at least one window.
    pub fn validate(&self) -> Result<()> {
        if [
            self.in_h,
            self.in_w,
            self.in_c,
            self.kernel_h,
            self.kernel_w,
            self.stride_h,
            self.stride_w,
        ]
        .contains(&0)
        {
            return Err(arg_err!("convolution geometry has a zero size: {self:?}"));
        }
        if self.in_h + self.pad_top + self.pad_bottom < self.kernel_h
            || self.in_w + self.pad_left + self.pad_right < self.kernel_w
        {
            return Err(arg_err!(
                "window {}x{} larger than padded input",
                self.kernel_h,
                self.kernel_w
            ));
        }
        if self.pad_top >= self.kernel_h + self.in_h || self.pad_left >= self.kernel_w + self.in_w {
            return Err(arg_err!("padding larger than the window"));
        }
        Ok(())
    }

    /// Output height `(in_h + pads - kernel_h) / stride_h + 1`.
    pub fn out_h(&self) -> usize {
        (self.in_h + self.pad_top + self.pad_bottom - self.kernel_h) / self.stride_h + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + self.pad_left + self.pad_right - self.kernel_w) / self.stride_w + 1
    }

    /// Elements of one input image.
    pub fn in_len(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }

    /// Input row/column of window tap `t` for output position `o`, if inside the image.
    #[inline]
    fn tap(o: usize, t: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + t).checked_sub(pad).filter(|&i| i < size)
    }

    /// Whether the convolution is a plain per-pixel GEMM (1x1, stride 1, no padding): the input
    /// already is the im2col matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_top + self.pad_left + self.pad_bottom + self.pad_right == 0
    }

    /// Input element (channel-last index `(y * in_w + x) * in_c + ci`) read by tap `(ky, kx)` of
    /// input channel `ci` at output `(oy, ox)`, or `None` where the tap falls in the padding.
    #[inline]
    pub fn tap_hwc(
        &self,
        (oy, ox): (usize, usize),
        (ky, kx): (usize, usize),
        ci: usize,
    ) -> Option<usize> {
        let y = ConvGeometry::tap(oy, ky, self.stride_h, self.pad_top, self.in_h)?;
        let x = ConvGeometry::tap(ox, kx, self.stride_w, self.pad_left, self.in_w)?;
        Some((y * self.in_w + x) * self.in_c + ci)
    }
}

/// One convolution layer's shape, whatever its number format or layout: the window over one
/// image, the output channels, and the channel groups (1 dense, `in_c` depthwise). The fixed-point
/// and sub-byte engines and the training kernels describe a layer with it; the affine engine
/// stores a [`crate::engine::Window`] and completes it with the shape of the value it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input sizes, window, strides and padding.
    pub geometry: ConvGeometry,
    /// Output channels.
    pub out_c: usize,
    /// Channel groups.
    pub groups: usize,
}

impl ConvShape {
    /// Errors unless the geometry is valid and the groups divide both channel counts.
    pub fn validate(&self) -> Result<()> {
        self.geometry.validate()?;
        let c = self.geometry.in_c;
        if self.groups == 0
            || !c.is_multiple_of(self.groups)
            || !self.out_c.is_multiple_of(self.groups)
        {
            return Err(shape_err!(
                "{} groups do not divide {c} input and {} output channels",
                self.groups,
                self.out_c
            ));
        }
        Ok(())
    }

    /// Input channels each output channel reads.
    pub fn in_c_per_group(&self) -> usize {
        self.geometry.in_c / self.groups
    }

    /// Output channels of one group.
    pub fn out_c_per_group(&self) -> usize {
        self.out_c / self.groups
    }

    /// One input and one output channel per group.
    pub fn is_depthwise(&self) -> bool {
        self.in_c_per_group() == 1 && self.out_c_per_group() == 1
    }

    /// Weights of one output channel, `in_c / groups · kernel_h · kernel_w` (the im2col depth).
    pub fn depth(&self) -> usize {
        self.in_c_per_group() * self.geometry.kernel_h * self.geometry.kernel_w
    }

    /// Output positions of one image.
    pub fn out_plane(&self) -> usize {
        self.geometry.out_h() * self.geometry.out_w()
    }

    /// Output elements of one image.
    pub fn out_len(&self) -> usize {
        self.out_c * self.out_plane()
    }

    /// Weight elements.
    pub fn weight_len(&self) -> usize {
        self.out_c * self.depth()
    }
}

fn check_input(input: &[u8], batch: usize, g: &ConvGeometry, za: i32) -> Result<()> {
    g.validate()?;
    if input.len() != batch * g.in_len() {
        return Err(shape_err!(
            "input of {} bytes is not {batch} x {} x {} x {}",
            input.len(),
            g.in_h,
            g.in_w,
            g.in_c
        ));
    }
    if !(0..=255).contains(&za) {
        return Err(arg_err!("input zero point {za} outside [0, 255]"));
    }
    Ok(())
}

/// im2col rows `first..first + dst.len() / K` (one per output pixel, batch-major), `K =
/// kernel_h * kernel_w * in_c` columns in `(ky, kx, c)` order, padded taps set to `za`.
///
/// The in-image taps of one window row are adjacent pixels, so each window row is one copy of
/// `kw * in_c` bytes (three 32-byte copies per row cost more in call overhead than in bytes; a
/// short row, [`copy_run`], is two inline moves).
fn im2col_rows(input: &[u8], g: &ConvGeometry, za: u8, first: usize, dst: &mut [u8]) {
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    let k = g.kernel_h * g.kernel_w * c;
    let window_row = g.kernel_w * c;
    let (mut b, mut oy, mut ox) = (first / (oh * ow), first / ow % oh, first % ow);
    for row in dst.chunks_exact_mut(k) {
        let img = &input[b * g.in_len()..(b + 1) * g.in_len()];
        // Interior pixels (the whole window inside the image): one copy per window row, with no
        // per-tap bounds work.
        let window_origin = (oy * g.stride_h)
            .checked_sub(g.pad_top)
            .zip((ox * g.stride_w).checked_sub(g.pad_left))
            .filter(|&(y0, x0)| y0 + g.kernel_h <= g.in_h && x0 + g.kernel_w <= g.in_w);
        let (pixel_oy, pixel_ox) = (oy, ox);
        ox += 1;
        if ox == ow {
            ox = 0;
            oy += 1;
            if oy == oh {
                oy = 0;
                b += 1;
            }
        }
        if let Some((y0, x0)) = window_origin {
            for (ky, seg) in row.chunks_exact_mut(window_row).enumerate() {
                copy_run(seg, &img[((y0 + ky) * g.in_w + x0) * c..][..window_row]);
            }
            continue;
        }
        let (oy, ox) = (pixel_oy, pixel_ox);
        // Window columns inside the image: kx in kx0..kx1, a contiguous range.
        let inside = |kx: &usize| ConvGeometry::tap(ox, *kx, g.stride_w, g.pad_left, g.in_w);
        let kx0 = (0..g.kernel_w).find(|kx| inside(kx).is_some());
        let kx1 = (0..g.kernel_w)
            .rposition(|kx| inside(&kx).is_some())
            .map(|x| x + 1);
        for (ky, seg) in row.chunks_exact_mut(window_row).enumerate() {
            let iy = ConvGeometry::tap(oy, ky, g.stride_h, g.pad_top, g.in_h);
            let (Some(iy), Some(kx0), Some(kx1)) = (iy, kx0, kx1) else {
                seg.fill(za);
                continue;
            };
            let ix0 = inside(&kx0).expect("kx0 is inside");
            seg[..kx0 * c].fill(za);
            seg[kx1 * c..].fill(za);
            let src = &img[(iy * g.in_w + ix0) * c..][..(kx1 - kx0) * c];
            copy_run(&mut seg[kx0 * c..kx1 * c], src);
        }
    }
}

/// Rows `first..first + count` as a [`WindowRun`] of `input`: output pixels of one output row
/// whose windows lie inside the image, each window row then `kernel_w * in_c` adjacent bytes of
/// the input, the next pixel's `stride_w * in_c` bytes further on. `None` for rows that cross
/// an output row or touch the padding (those get im2col rows).
fn window_run<'a>(
    input: &'a [u8],
    g: &ConvGeometry,
    first: usize,
    count: usize,
) -> Option<WindowRun<'a>> {
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    let (b, oy, ox) = (first / (oh * ow), first / ow % oh, first % ow);
    let last_ox = (ox + count).checked_sub(1).filter(|&l| l < ow)?;
    let y0 = (oy * g.stride_h).checked_sub(g.pad_top)?;
    let x0 = (ox * g.stride_w).checked_sub(g.pad_left)?;
    let inside =
        y0 + g.kernel_h <= g.in_h && last_ox * g.stride_w - g.pad_left + g.kernel_w <= g.in_w;
    let image = b * g.in_len();
    let starts = (0..g.kernel_h).map(|ky| image + ((y0 + ky) * g.in_w + x0) * c);
    inside
        .then(|| WindowRun::new(input, starts, g.stride_w * c, g.kernel_w * c))
        .flatten()
}

/// Quantized 2-D convolution, NHWC input (`batch x in_h x in_w x in_c` uint8), weights packed
/// as a `(kernel_h * kernel_w * in_c) x out_c` matrix (HWIO order), output
/// `batch x out_h x out_w x out_c` uint8. A 1x1 stride-1 convolution runs as a GEMM directly on
/// the input; others build im2col rows one GEMM block at a time.
pub fn conv2d(
    input: &[u8],
    batch: usize,
    geometry: &ConvGeometry,
    input_zero_point: i32,
    weights: &PackedWeights,
    stage: &OutputStage,
    out: &mut [u8],
) -> Result<()> {
    with_rows(
        input,
        batch,
        geometry,
        input_zero_point,
        weights,
        |rows, m| gemm_rows(rows, m, input_zero_point, weights, stage, out),
    )
}

/// [`conv2d`] without requantization: the int32 accumulators plus `bias` (one per output
/// channel, or none), `batch x out_h x out_w x out_c`, for graphs whose rescale is not the
/// affine output stage (F8Net's shifts).
pub fn conv2d_i32(
    input: &[u8],
    batch: usize,
    geometry: &ConvGeometry,
    input_zero_point: i32,
    weights: &PackedWeights,
    bias: &[i32],
    out: &mut [i32],
) -> Result<()> {
    with_rows(
        input,
        batch,
        geometry,
        input_zero_point,
        weights,
        |rows, m| gemm_rows_i32(rows, m, input_zero_point, weights, bias, out),
    )
}

/// Checks a convolution's input and weights and hands `gemm` its rows and their count: the
/// input itself for a 1x1 stride-1 window, im2col rows built one GEMM block at a time otherwise.
fn with_rows(
    input: &[u8],
    batch: usize,
    g: &ConvGeometry,
    input_zero_point: i32,
    weights: &PackedWeights,
    gemm: impl FnOnce(&Rows, usize) -> Result<()>,
) -> Result<()> {
    check_input(input, batch, g, input_zero_point)?;
    let k = g.kernel_h * g.kernel_w * g.in_c;
    if weights.k() != k {
        return Err(shape_err!(
            "packed weights have depth {} but the window has {k} taps",
            weights.k()
        ));
    }
    let m = batch * g.out_h() * g.out_w();
    if g.is_pointwise() {
        gemm(&Rows::Stored(input), m)
    } else {
        let za = input_zero_point as u8;
        let fill = |first: usize, dst: &mut [u8]| im2col_rows(input, g, za, first, dst);
        let run = |first: usize, count: usize| window_run(input, g, first, count);
        gemm(
            &Rows::Built {
                fill: &fill,
                run: &run,
            },
            m,
        )
    }
}

/// Depthwise weights (channel multiplier 1): `kernel_h x kernel_w x channels` int8 codes with
/// one zero point per channel, plus the per-channel sums used by the zero-point expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthwiseWeights {
    kernel_h: usize,
    kernel_w: usize,
    channels: usize,
    weights: Vec<i8>,
    zero_points: Vec<i32>,
    sums: Vec<i32>,
    backend: Backend,
    /// Tap-pair weights for the AVX2 accumulation (x86 backends only).
    #[cfg(target_arch = "x86_64")]
    pairs: Option<Vec<i16>>,
    /// Kernel-row tap quads for the AVX-512 VNNI row kernel (VNNI and AMX backends), which
    /// covers every channel when the output stage has a vector form.
    #[cfg(target_arch = "x86_64")]
    quads: Option<Vec<i8>>,
}

impl DepthwiseWeights {
    /// Wraps `weights` (`[ky][kx][c]`) with `zero_points` (one per channel or one for all).
    /// `backend` picks the loop implementation (AVX2 compiles the same loop with AVX2 enabled).
    pub fn new(
        weights: &[i8],
        kernel_h: usize,
        kernel_w: usize,
        channels: usize,
        zero_points: &[i32],
        backend: Backend,
    ) -> Result<Self> {
        if kernel_h * kernel_w * channels == 0 || weights.len() != kernel_h * kernel_w * channels {
            return Err(shape_err!(
                "{} depthwise weights are not {kernel_h} x {kernel_w} x {channels}",
                weights.len()
            ));
        }
        if kernel_h * kernel_w > MAX_DEPTH {
            return Err(shape_err!(
                "depthwise kernel {kernel_h} x {kernel_w} exceeds {MAX_DEPTH} taps (int32 accumulator could overflow)"
            ));
        }
        let zero_points = per_channel_zero_points(zero_points, channels)?;
        backend.ensure_available()?;
        let sums = column_sums(weights, channels);
        #[cfg(target_arch = "x86_64")]
        let pairs = (backend != Backend::Scalar)
            .then(|| super::x86::depthwise::pack_pairs(weights, kernel_h * kernel_w, channels));
        #[cfg(target_arch = "x86_64")]
        let quads = matches!(backend, Backend::Avx512Vnni | Backend::Amx)
            .then(|| super::x86::depthwise::pack_row_quads(weights, kernel_h, kernel_w, channels));
        Ok(DepthwiseWeights {
            kernel_h,
            kernel_w,
            channels,
            weights: weights.to_vec(),
            zero_points,
            sums,
            backend,
            #[cfg(target_arch = "x86_64")]
            pairs,
            #[cfg(target_arch = "x86_64")]
            quads,
        })
    }

    /// Writes `init + raw products` of the channels the vector path covers to `acc` and returns
    /// how many channels (from 0) it did; the caller does the rest with the portable loop.
    #[inline(always)]
    fn accumulate_vector(&self, src: &[&[u8]], init: &[i32], acc: &mut [i32]) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Some(pairs) = &self.pairs {
            use super::x86::depthwise::{GROUP, accumulate_groups};
            let groups = self.channels / GROUP;
            // SAFETY: `pairs` exists only for x86 backends, checked available in `new` (all
            // imply AVX2); it was packed for these taps and channels, and every source, `init`
            // and `acc` hold `channels` entries.
            unsafe { accumulate_groups(src, pairs, groups, init, acc) };
            return groups * GROUP;
        }
        0
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The backend the loops run on.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// One output row of a depthwise convolution: raw `sum(a*w)` and `sum(a)` per channel over all
/// taps (padded taps read `za_row`, a pixel of the input zero point) and the zero-point expansion
/// for every pixel of the row, then `finish` over the row's accumulators (the output stage, or a
/// copy for the int32 output). `scratch` holds the taps' input pixels, the row's accumulators and
/// the channel sums.
///
/// The sums use wrapping adds so that they vectorise with overflow checks on; they are exact, since
/// at most [`MAX_DEPTH`] taps (checked by [`DepthwiseWeights::new`]) of `|a * w| <= 255 * 128` fit int32.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn depthwise_row<'a, T>(
    img: &'a [u8],
    za_row: &'a [u8],
    oy: usize,
    g: &ConvGeometry,
    w: &DepthwiseWeights,
    offset: &[i32],
    scratch: &mut RowScratch<'a>,
    finish: &impl Fn(&[i32], &mut [T]),
    dst: &mut [T],
) {
    let c = w.channels;
    let need_asum = w.zero_points.iter().any(|&z| z != 0);
    let mut clock = profile::Clock::start();
    let RowScratch { src, acc, asum } = scratch;
    for (ox, acc) in acc.chunks_exact_mut(c).enumerate() {
        src.clear();
        for ky in 0..g.kernel_h {
            let iy = ConvGeometry::tap(oy, ky, g.stride_h, g.pad_top, g.in_h);
            for kx in 0..g.kernel_w {
                let ix = ConvGeometry::tap(ox, kx, g.stride_w, g.pad_left, g.in_w);
                src.push(match (iy, ix) {
                    (Some(iy), Some(ix)) => &img[(iy * g.in_w + ix) * c..][..c],
                    _ => za_row,
                });
            }
        }
        // Accumulators start from the per-channel constant `offset`.
        let done = w.accumulate_vector(src, offset, acc);
        if done < c {
            acc[done..].copy_from_slice(&offset[done..]);
            for (t, x) in src.iter().enumerate() {
                let wt = &w.weights[t * c..][..c];
                for ((a, &x), &wv) in acc[done..].iter_mut().zip(&x[done..]).zip(&wt[done..]) {
                    *a = a.wrapping_add(i32::from(x) * i32::from(wv));
                }
            }
        }
        if need_asum {
            asum.fill(0);
            for x in src.iter() {
                for (s, &x) in asum.iter_mut().zip(*x) {
                    *s = s.wrapping_add(i32::from(x));
                }
            }
            for ((a, &zw), &s) in acc.iter_mut().zip(&w.zero_points).zip(asum.iter()) {
                *a = a.wrapping_sub(zw.wrapping_mul(s));
            }
        }
    }
    clock.lap(profile::Phase::Tile);
    finish(acc, dst);
    clock.lap(profile::Phase::Epilogue);
}

/// Per-thread buffers of [`depthwise_row`]: the taps' input pixels, the accumulators of one
/// output row and the channel sums of one pixel.
struct RowScratch<'a> {
    src: Vec<&'a [u8]>,
    acc: Vec<i32>,
    asum: Vec<i32>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_row_avx2<'a, T>(
    img: &'a [u8],
    za_row: &'a [u8],
    oy: usize,
    g: &ConvGeometry,
    w: &DepthwiseWeights,
    offset: &[i32],
    scratch: &mut RowScratch<'a>,
    finish: &impl Fn(&[i32], &mut [T]),
    dst: &mut [T],
) {
    depthwise_row(img, za_row, oy, g, w, offset, scratch, finish, dst)
}

/// The depthwise convolution on the AVX-512 VNNI row kernel, one output row per task, each
/// pixel's channels written by `store` (requantized codes, or the int32 accumulators).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn depthwise_quads<S: super::x86::depthwise::QuadStore + Sync>(
    input: &[u8],
    g: &ConvGeometry,
    za: i32,
    weights: &DepthwiseWeights,
    quads: &[i8],
    offset: &[i32],
    store: &S,
    out: &mut [S::Elem],
) where
    S::Elem: Send,
{
    use super::x86::depthwise::{QuadTables, depthwise_row_quads, quad_table};
    let tables = QuadTables {
        offset: quad_table(offset),
        zero_points: weights
            .zero_points
            .iter()
            .any(|&z| z != 0)
            .then(|| quad_table(&weights.zero_points)),
    };
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    out.par_chunks_mut(ow * c)
        .enumerate()
        .for_each(|(row, dst)| {
            let mut clock = profile::Clock::start();
            let (b, oy) = (row / oh, row % oh);
            let img = &input[b * g.in_len()..(b + 1) * g.in_len()];
            let rows: Vec<Option<&[u8]>> = (0..g.kernel_h)
                .map(|ky| {
                    ConvGeometry::tap(oy, ky, g.stride_h, g.pad_top, g.in_h)
                        .map(|iy| &img[iy * g.in_w * c..][..g.in_w * c])
                })
                .collect();
            // SAFETY: `quads` exists only for the VNNI and AMX backends, checked available when
            // the weights were made (both imply AVX-512F, BW and VNNI); it was packed for this
            // kernel and these channels, the tables cover whole blocks, every row holds
            // `in_w * c` bytes and `dst` `ow * c` values.
            unsafe { depthwise_row_quads(&rows, g, quads, &tables, za as u8, store, dst) };
            // Accumulation and the store (requantized or not) are fused: the whole row counts as
            // microkernel.
            clock.lap(profile::Phase::Tile);
        });
}

/// Checks a depthwise convolution's input, weights and output length, and gives the per-channel
/// constants of the zero-point expansion, `bias - Za*sum(w) + T*Za*Zw` (wrapping, as the sums).
fn depthwise_offset<T>(
    input: &[u8],
    batch: usize,
    g: &ConvGeometry,
    input_zero_point: i32,
    weights: &DepthwiseWeights,
    bias_of: impl Fn(usize) -> i32,
    out: &[T],
) -> Result<Vec<i32>> {
    check_input(input, batch, g, input_zero_point)?;
    if g.in_c != weights.channels
        || g.kernel_h != weights.kernel_h
        || g.kernel_w != weights.kernel_w
    {
        return Err(shape_err!(
            "depthwise weights {}x{}x{} do not match the geometry {}x{}x{}",
            weights.kernel_h,
            weights.kernel_w,
            weights.channels,
            g.kernel_h,
            g.kernel_w,
            g.in_c
        ));
    }
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    if out.len() != batch * oh * ow * c {
        return Err(shape_err!(
            "output of {} values is not {batch} x {oh} x {ow} x {c}",
            out.len()
        ));
    }
    let taps = (g.kernel_h * g.kernel_w) as i32;
    Ok((0..c)
        .map(|ch| {
            bias_of(ch)
                .wrapping_sub(input_zero_point.wrapping_mul(weights.sums[ch]))
                .wrapping_add(
                    taps.wrapping_mul(input_zero_point)
                        .wrapping_mul(weights.zero_points[ch]),
                )
        })
        .collect())
}

/// The portable and AVX2 depthwise loops, one output row per task, each row's accumulators
/// (`offset` plus the expanded products) handed to `finish` with the row's output.
#[allow(clippy::too_many_arguments)]
fn depthwise_rows<T: Send>(
    input: &[u8],
    g: &ConvGeometry,
    input_zero_point: i32,
    weights: &DepthwiseWeights,
    offset: &[i32],
    finish: &(impl Fn(&[i32], &mut [T]) + Sync),
    out: &mut [T],
) {
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    let za_row = vec![input_zero_point as u8; c];
    let taps = g.kernel_h * g.kernel_w;
    out.par_chunks_mut(ow * c).enumerate().for_each_init(
        || RowScratch {
            src: Vec::with_capacity(taps),
            acc: vec![0i32; ow * c],
            asum: vec![0i32; c],
        },
        |scratch, (row, dst)| {
            let (b, oy) = (row / oh, row % oh);
            let img = &input[b * g.in_len()..(b + 1) * g.in_len()];
            match weights.backend {
                #[cfg(target_arch = "x86_64")]
                Backend::Avx2 | Backend::Avx512Vnni | Backend::Amx => {
                    // SAFETY: DepthwiseWeights::new checked the backend is available, and both
                    // x86 backends imply AVX2 on every CPU that has them.
                    unsafe {
                        depthwise_row_avx2(
                            img, &za_row, oy, g, weights, offset, scratch, finish, dst,
                        )
                    }
                }
                _ => depthwise_row(img, &za_row, oy, g, weights, offset, scratch, finish, dst),
            }
        },
    );
}

/// Quantized depthwise convolution (channel multiplier 1), NHWC, same channel count in and out,
/// `(a - Za)(w - Zw[c])` expanded into `sum(a*w) - Zw*sum(a) - Za*sum(w) + T*Za*Zw` per channel.
pub fn depthwise_conv2d(
    input: &[u8],
    batch: usize,
    geometry: &ConvGeometry,
    input_zero_point: i32,
    weights: &DepthwiseWeights,
    stage: &OutputStage,
    out: &mut [u8],
) -> Result<()> {
    let g = geometry;
    stage.validate(weights.channels)?;
    let offset = depthwise_offset(
        input,
        batch,
        g,
        input_zero_point,
        weights,
        |ch| stage.bias_of(ch),
        out,
    )?;
    let tables = StageTables::new(stage, g.in_c, weights.backend);
    #[cfg(target_arch = "x86_64")]
    if let (Some(quads), Some(super::VectorStage::Avx512 { requant, .. })) =
        (&weights.quads, &tables.vector)
    {
        use super::x86::{
            avx512_vnni::LaneTables, depthwise::RequantizedCodes, depthwise::quad_table,
        };
        let single = stage.rounding == crate::fixedpoint::RoundingMode::Single;
        let codes = RequantizedCodes {
            lanes: LaneTables::new(
                &quad_table(&tables.mult),
                &quad_table(&tables.right),
                single,
            ),
            stage: **requant,
        };
        depthwise_quads(
            input,
            g,
            input_zero_point,
            weights,
            quads,
            &offset,
            &codes,
            out,
        );
        return Ok(());
    }
    let finish = |acc: &[i32], dst: &mut [u8]| tables.requantize_into(acc, None, dst);
    depthwise_rows(input, g, input_zero_point, weights, &offset, &finish, out);
    Ok(())
}

/// [`depthwise_conv2d`] without requantization: the int32 accumulators plus `bias` (one per
/// channel, or none), `batch x out_h x out_w x channels`, for graphs whose rescale is not the
/// affine output stage (F8Net's shifts).
pub fn depthwise_conv2d_i32(
    input: &[u8],
    batch: usize,
    geometry: &ConvGeometry,
    input_zero_point: i32,
    weights: &DepthwiseWeights,
    bias: &[i32],
    out: &mut [i32],
) -> Result<()> {
    if !bias.is_empty() && bias.len() != weights.channels {
        return Err(shape_err!(
            "{} biases for {} channels",
            bias.len(),
            weights.channels
        ));
    }
    let bias_of = |ch: usize| bias.get(ch).copied().unwrap_or(0);
    let offset = depthwise_offset(
        input,
        batch,
        geometry,
        input_zero_point,
        weights,
        bias_of,
        out,
    )?;
    #[cfg(target_arch = "x86_64")]
    if let Some(quads) = &weights.quads {
        let accumulators = super::x86::depthwise::Accumulators;
        depthwise_quads(
            input,
            geometry,
            input_zero_point,
            weights,
            quads,
            &offset,
            &accumulators,
            out,
        );
        return Ok(());
    }
    let finish = |acc: &[i32], dst: &mut [i32]| dst.copy_from_slice(acc);
    depthwise_rows(
        input,
        geometry,
        input_zero_point,
        weights,
        &offset,
        &finish,
        out,
    );
    Ok(())
}
