//! Dense stride-1 convolutions as one GEMM per window tap over zero-padded planes, with no im2col
//! matrix.
//!
//! Why: the im2col path of [`super::kernels`] copies every input element once per tap in runs of
//! one output row (14 floats at 14 x 14), and on the ResNet proxies those short copies, not the
//! GEMMs, took most of a convolution (36-56 GFLOP/s against 100-150 for the same GEMMs alone).
//! Here the images of a block are zero-padded once into planes laid end to end
//! ([`PaddedPlane`]), and tap `(ky, kx)` of the output at grid position `i` reads padded element
//! `i + ky·wp + kx`, so each tap is one GEMM over every grid position of the block with the
//! input read in place at an offset:
//!
//! * forward `Yg += W_t · Xp[·, off_t ..]` over the taps `t`,
//! * input gradient `dXp[·, off_t ..] += W_tᵀ · dYg` (the output gradient spread onto the grid,
//!   zero at the positions that are not outputs),
//! * weight gradient `dW_t = dYg · Xp[·, off_t ..]ᵀ`.
//!
//! The grid also holds the positions between outputs (the padding columns and rows), which cost
//! arithmetic: `(in_h + 2p)(in_w + 2p)` positions for `out_h·out_w` outputs, 1.3x at 14 x 14 and
//! 1.65x at 7 x 7 with `p = 1`. [`applies`] takes the layers where that costs less than the copies
//! it saves (measured, see its doc).
//!
//! On CPUs with AVX-512 the per-tap GEMMs give way to [`taps`], which runs every tap in one
//! register tile; the GEMMs stay the path of the others.

use quant_core::kernels::ConvGeometry;

use super::kernels::{ConvBatch, PaddedPlane, WEIGHT_GRAD_CHUNK, matmul};
use super::taps::{self, TapWeights};

/// Grid positions a block of the forward pass and the input gradient aims for (GEMMs of this
/// width run at 130-150 GFLOP/s on one core with `K` = 16-64; images are whole, at most
/// [`WEIGHT_GRAD_CHUNK`] per block).
const GRID_COLUMNS: usize = 2048;

/// Largest grid positions per output the path accepts: above it the wasted arithmetic outweighs
/// the copies (4 x 4 maps with padding 1 have 2.25: 64 -> 64 channels 10.1 ms here against 9.6).
const MAX_GRID_PER_OUTPUT: f64 = 2.0;

/// Fewest input channels the path accepts: each tap's GEMM has the input channels as its depth,
/// and below this the im2col GEMM (depth `channels · taps`) runs faster (1 -> 16 channels at 28 x
/// 28: 5.6 ms here against 3.4 with im2col; 4 -> 16: 8.9 against 8.9).
const MIN_IN_CHANNELS: usize = 8;

/// Most output channels the path accepts: the im2col copies are shared by every output channel,
/// so their weight against the GEMM falls as the outputs grow, while the grid's extra positions
/// cost the same share. Measured on one core, batch 128, forward and both gradients of a 3 x 3
/// layer: 16 -> 16 channels at 14 x 14 6.8 ms here against 9.0 with im2col, 32 -> 32 at 7 x 7 7.2
/// against 8.6, 48 -> 48 at 28 x 28 155 against 158, 96 -> 96 at 14 x 14 146 against 131.
const MAX_OUT_CHANNELS: usize = 64;

/// Values between the end of one channel's padded row and the start of the next ([`Block::stride`]).
const CHANNEL_SLACK: usize = 16;

/// Fewest output channels whose weight gradient takes [`taps::correlate_weights`]: with fewer,
/// the GEMM per tap is faster. Measured on one core, batch 128, 3 x 3: 16 -> 16 channels at 14 x
/// 14 1.88 ms with the GEMMs against 1.99 fused, at 28 x 28 6.4 against 7.1; 24 -> 24 at 28 x 28
/// 25.5 against 13.8, 32 -> 32 at 14 x 14 8.7 against 7.0.
const FUSED_WEIGHT_GRAD_MIN_OUT: usize = 24;

/// Whether a layer takes this path: dense (one group), stride 1, a window larger than one pixel,
/// at least [`MIN_IN_CHANNELS`] input and at most [`MAX_OUT_CHANNELS`] output channels, and a
/// grid at most [`MAX_GRID_PER_OUTPUT`] times the outputs.
pub(super) fn applies(layer: &ConvBatch) -> bool {
    let g = &layer.shape.geometry;
    let pp = PaddedPlane::new(g);
    let grid_per_output = (pp.hp * pp.wp) as f64 / (g.out_h() * g.out_w()) as f64;
    layer.shape.groups == 1
        && g.stride_h == 1
        && g.stride_w == 1
        && g.kernel_h * g.kernel_w > 1
        && g.in_c >= MIN_IN_CHANNELS
        && layer.shape.out_c <= MAX_OUT_CHANNELS
        && grid_per_output <= MAX_GRID_PER_OUTPUT
}

/// The padded planes of a block of images end to end, per channel: `rows x (images · hp · wp)`,
/// each channel's row [`CHANNEL_SLACK`] values longer ([`Block::stride`]).
struct Block {
    pp: PaddedPlane,
    images: usize,
}

impl Block {
    fn new(layer: &ConvBatch, images: usize) -> Self {
        Block {
            pp: PaddedPlane::new(&layer.shape.geometry),
            images,
        }
    }

    /// Positions of one padded plane.
    fn plane(&self) -> usize {
        self.pp.hp * self.pp.wp
    }

    /// Length of one channel's row: every image's padded plane.
    fn row(&self) -> usize {
        self.images * self.plane()
    }

    /// Distance between two channels' rows in the padded buffers: the row and one cache line more.
    /// Rows of a power of two (8 images of 16 x 16 padded planes: 2048) put the same element of
    /// every channel in one cache set, and the weight gradient's GEMM, which reads across the
    /// channels, ran at 20 GFLOP/s there against 60-80 at other sizes.
    fn stride(&self) -> usize {
        self.row() + CHANNEL_SLACK
    }

    /// Grid positions every tap can visit inside the row (the last tap's offset short of it).
    fn grid(&self, geo: &ConvGeometry) -> usize {
        self.row() - self.pp.offset(geo, geo.kernel_h * geo.kernel_w - 1)
    }

    /// The block's images (NCHW, `channels` each) zero-padded into `dst` (`channels` rows).
    #[inline(always)]
    fn pad(&self, geo: &ConvGeometry, images: &[f32], channels: usize, dst: &mut Vec<f32>) {
        let (stride, plane_in) = (self.stride(), geo.in_h * geo.in_w);
        dst.clear();
        dst.resize(channels * stride, 0.0);
        for (i, image) in images.chunks(channels * plane_in).enumerate() {
            for (c, plane) in image.chunks(plane_in).enumerate() {
                let base = c * stride + i * self.plane();
                for (iy, src) in plane.chunks(geo.in_w).enumerate() {
                    dst[base + self.pp.padded(geo, iy, 0)..][..geo.in_w].copy_from_slice(src);
                }
            }
        }
    }

    /// The block's output gradients (NCHW, `channels` each) on the grid in `dst`, zero at the
    /// positions that are not outputs: channel `c`'s grid starts at `c · stride + lead` (`stride`
    /// at least `lead` plus the grid).
    #[inline(always)]
    fn spread(
        &self,
        geo: &ConvGeometry,
        grads: &[f32],
        channels: usize,
        (lead, stride): (usize, usize),
        dst: &mut Vec<f32>,
    ) {
        let (plane_out, ow) = (geo.out_h() * geo.out_w(), geo.out_w());
        debug_assert!(stride >= lead + self.grid(geo));
        dst.clear();
        dst.resize(channels * stride, 0.0);
        for (i, image) in grads.chunks(channels * plane_out).enumerate() {
            for (c, plane) in image.chunks(plane_out).enumerate() {
                let base = c * stride + lead + i * self.plane();
                for (oy, src) in plane.chunks(ow).enumerate() {
                    dst[base + self.pp.grid(geo, oy, 0)..][..ow].copy_from_slice(src);
                }
            }
        }
    }

    /// Each tap's offset in the padded plane, in tap order (increasing).
    fn offsets(&self, geo: &ConvGeometry) -> Vec<usize> {
        (0..geo.kernel_h * geo.kernel_w)
            .map(|t| self.pp.offset(geo, t))
            .collect()
    }
}

/// Images per block of the forward pass and the input gradient.
pub(super) fn images_per_block(layer: &ConvBatch) -> usize {
    let pp = PaddedPlane::new(&layer.shape.geometry);
    GRID_COLUMNS
        .div_ceil(pp.hp * pp.wp)
        .clamp(1, WEIGHT_GRAD_CHUNK)
}

/// The weights `w` of `layer` packed for the forward pass's [`taps::correlate`], once per call for
/// every block; `None` where the CPU lacks it ([`taps::available`]).
pub(super) fn forward_taps(layer: &ConvBatch, w: &[f32]) -> Option<TapWeights> {
    let (cin, cout, taps) = (layer.shape.geometry.in_c, layer.shape.out_c, layer.taps());
    taps::available()
        .then(|| TapWeights::pack(cout, cin, taps, |o, c, t| w[(o * cin + c) * taps + t]))
}

/// [`forward_taps`] for the input gradient: the transposed weights, rows the input channels.
pub(super) fn input_grad_taps(layer: &ConvBatch, w: &[f32]) -> Option<TapWeights> {
    let (cin, cout, taps) = (layer.shape.geometry.in_c, layer.shape.out_c, layer.taps());
    taps::available()
        .then(|| TapWeights::pack(cin, cout, taps, |c, o, t| w[(o * cin + c) * taps + t]))
}

/// The forward pass of a block of images (see [`super::kernels::forward`]), with scratch for the
/// padded planes and the output grid: one [`taps::correlate`] over every tap with `fused` (from
/// [`forward_taps`]), one GEMM per tap without.
#[inline(always)]
pub(super) fn forward_block(
    layer: &ConvBatch,
    w: &[f32],
    images: &[f32],
    out: &mut [f32],
    (padded, grid_out): (&mut Vec<f32>, &mut Vec<f32>),
    fused: Option<&TapWeights>,
) {
    let geo = &layer.shape.geometry;
    let (cin, cout, taps) = (geo.in_c, layer.shape.out_c, geo.kernel_h * geo.kernel_w);
    let b = Block::new(layer, images.len() / layer.input_len());
    let (stride, grid, offsets) = (b.stride(), b.grid(geo), b.offsets(geo));
    b.pad(geo, images, cin, padded);
    grid_out.resize(cout * grid, 0.0);
    if let Some(wt) = fused {
        taps::correlate(wt, &offsets, (padded, stride), grid, (grid_out, grid));
    } else {
        for (t, &offset) in offsets.iter().enumerate() {
            matmul(
                (cout, grid, cin),
                grid_out,
                (grid, 1),
                t > 0,
                &w[t..],
                (cin * taps, taps),
                &padded[offset..],
                (stride, 1),
            );
        }
    }
    let (ow, plane_out) = (geo.out_w(), geo.out_h() * geo.out_w());
    for (i, image) in out.chunks_mut(layer.output_len()).enumerate() {
        for (o, plane) in image.chunks_mut(plane_out).enumerate() {
            let base = o * grid + i * b.plane();
            for (oy, dst) in plane.chunks_mut(ow).enumerate() {
                dst.copy_from_slice(&grid_out[base + b.pp.grid(geo, oy, 0)..][..ow]);
            }
        }
    }
}

/// The input gradient of a block of images (see [`super::kernels::input_grad`]), with scratch
/// for the output-gradient grid and the padded input gradients. Padded position `q` gathers
/// `Σ_t W_tᵀ dY[q - off_t]`: with `reach` zeros before each channel's grid (`reach` the last
/// tap's offset) that is a correlation at the mirrored offsets `reach - off_t`, which
/// [`taps::correlate`] computes in one pass with `fused` (from [`input_grad_taps`]); otherwise
/// each tap's GEMM adds its share.
#[inline(always)]
pub(super) fn input_grad_block(
    layer: &ConvBatch,
    w: &[f32],
    grads: &[f32],
    dx: &mut [f32],
    (grid_dy, padded): (&mut Vec<f32>, &mut Vec<f32>),
    fused: Option<&TapWeights>,
) {
    let geo = &layer.shape.geometry;
    let (cin, cout, taps) = (geo.in_c, layer.shape.out_c, geo.kernel_h * geo.kernel_w);
    let b = Block::new(layer, grads.len() / layer.output_len());
    let (row, stride, grid, offsets) = (b.row(), b.stride(), b.grid(geo), b.offsets(geo));
    padded.clear();
    padded.resize(cin * stride, 0.0);
    if let Some(wt) = fused {
        let reach = row - grid;
        b.spread(geo, grads, cout, (reach, row + reach), grid_dy);
        let mirrored: Vec<usize> = offsets.iter().map(|o| reach - o).collect();
        taps::correlate(wt, &mirrored, (grid_dy, row + reach), row, (padded, stride));
    } else {
        b.spread(geo, grads, cout, (0, grid), grid_dy);
        for (t, &offset) in offsets.iter().enumerate() {
            matmul(
                (cin, grid, cout),
                &mut padded[offset..],
                (stride, 1),
                true,
                &w[t..],
                (taps, cin * taps),
                grid_dy,
                (grid, 1),
            );
        }
    }
    let plane_in = geo.in_h * geo.in_w;
    for (i, image) in dx.chunks_mut(layer.input_len()).enumerate() {
        for (c, plane) in image.chunks_mut(plane_in).enumerate() {
            let base = c * stride + i * b.plane();
            for (iy, dst) in plane.chunks_mut(geo.in_w).enumerate() {
                dst.copy_from_slice(&padded[base + b.pp.padded(geo, iy, 0)..][..geo.in_w]);
            }
        }
    }
}

/// The weight gradient of a block of images (see [`super::kernels::weight_grad`]), with scratch
/// for the padded inputs and the output-gradient grid: [`taps::correlate_weights`] over every tap
/// when `fused_taps` and the layer has [`FUSED_WEIGHT_GRAD_MIN_OUT`] output channels or more, one
/// GEMM per tap (as deep as the block's grid) otherwise.
#[inline(always)]
pub(super) fn weight_grad_block(
    layer: &ConvBatch,
    images: &[f32],
    grads: &[f32],
    (padded, grid_dy): (&mut Vec<f32>, &mut Vec<f32>),
    fused_taps: bool,
) -> Vec<f32> {
    let geo = &layer.shape.geometry;
    let (cin, cout, taps) = (geo.in_c, layer.shape.out_c, geo.kernel_h * geo.kernel_w);
    let b = Block::new(layer, images.len() / layer.input_len());
    let (stride, grid, offsets) = (b.stride(), b.grid(geo), b.offsets(geo));
    b.pad(geo, images, cin, padded);
    b.spread(geo, grads, cout, (0, grid), grid_dy);
    let mut dw = vec![0.0; layer.shape.weight_len()];
    if fused_taps && cout >= FUSED_WEIGHT_GRAD_MIN_OUT {
        let (dy, x) = ((&grid_dy[..], grid, cout), (&padded[..], stride, cin));
        taps::correlate_weights(&offsets, dy, x, grid, &mut dw);
        return dw;
    }
    for (t, offset) in offsets.into_iter().enumerate() {
        matmul(
            (cout, cin, grid),
            &mut dw[t..],
            (cin * taps, taps),
            false,
            grid_dy,
            (grid, 1),
            &padded[offset..],
            (1, stride),
        );
    }
    dw
}
