//! f32 convolution over NCHW batches, forward and both gradients, on plain slices.
//!
//! Why not Burn's own: on flex 0.22.1 a convolution's backward pass costs 4-8x its forward (the input
//! gradient goes through a generic transposed convolution, the weight gradient through a
//! convolution over swapped axes, both with layout copies), and training the papers' MobileNet and
//! ResNet proxies spent most of each step there. Here every dense convolution is one GEMM per image
//! and group on an im2col matrix (none for pointwise layers, which read the NCHW planes directly):
//!
//! * forward `Y = W · cols(X)`,
//! * input gradient `dX = col2im(Wᵀ · dY)`,
//! * weight gradient `dW = Σ_images dY · cols(X)ᵀ`,
//!
//! and depthwise layers (one input and one output channel per group) are direct loops over each
//! plane, whose inner loop runs along a row so it vectorises. Images run in parallel on rayon; the
//! weight gradient sums fixed chunks of images in a fixed order, so the result does not depend on
//! the thread count.

use gemm::{Parallelism, gemm};
use quant_core::kernels::{ConvGeometry, ConvShape};
use rayon::prelude::*;

use super::{grid, taps};

use crate::simd::vectorized;

/// Images whose weight gradients one task sums before the fixed-order total (a fixed number, so
/// the summation order and hence the rounding never depend on the thread count).
pub(super) const WEIGHT_GRAD_CHUNK: usize = 8;

/// One convolution layer applied to a batch: input `[batch, in_c, in_h, in_w]`, weight
/// `[out_c, in_c / groups, kh, kw]`, output `[batch, out_c, out_h, out_w]`, all contiguous NCHW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvBatch {
    /// Images in the batch.
    pub batch: usize,
    /// The layer over one image.
    pub shape: ConvShape,
}

impl ConvBatch {
    fn in_plane(&self) -> usize {
        self.shape.geometry.in_h * self.shape.geometry.in_w
    }

    /// Input elements per image.
    pub fn input_len(&self) -> usize {
        self.shape.geometry.in_c * self.in_plane()
    }

    /// Output elements per image.
    pub fn output_len(&self) -> usize {
        self.shape.out_len()
    }

    /// Output shape `[batch, out_c, out_h, out_w]`.
    pub fn output_shape(&self) -> [usize; 4] {
        let g = &self.shape.geometry;
        [self.batch, self.shape.out_c, g.out_h(), g.out_w()]
    }

    /// Images per block of the dense kernels ([`BLOCK_COLUMNS`] output positions on the im2col
    /// path, [`grid::images_per_block`] on the grid path; at least one image, at most
    /// [`WEIGHT_GRAD_CHUNK`]).
    fn images_per_block(&self) -> usize {
        if grid::applies(self) {
            return grid::images_per_block(self);
        }
        BLOCK_COLUMNS
            .div_ceil(self.shape.out_plane())
            .clamp(1, WEIGHT_GRAD_CHUNK)
    }

    /// Window taps (`kh · kw`).
    pub(super) fn taps(&self) -> usize {
        self.shape.geometry.kernel_h * self.shape.geometry.kernel_w
    }
}

/// Output positions `o` in `0..out` whose tap `t` lands inside the input: `0 <= o·s + t - pad < size`.
#[inline(always)]
fn valid_outputs(out: usize, t: usize, stride: usize, pad: usize, size: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(t).div_ceil(stride);
    let hi = (size + pad).saturating_sub(t).div_ceil(stride).min(out);
    (lo.min(hi), hi)
}

/// `dst (+)= lhs · rhs` (`m x n`, `m x k`, `k x n`), with each operand given by its row and
/// column strides, so transposed operands and strided destinations cost nothing. Single-threaded: callers parallelise over images.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rs: usize, cs: usize, rows: usize, cols: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        last(dst_rs, dst_cs, m, n) < dst.len(),
        "matmul: destination too short"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(
        last(lhs_rs, lhs_cs, m, k) < lhs.len(),
        "matmul: lhs too short"
    );
    assert!(
        last(rhs_rs, rhs_cs, k, n) < rhs.len(),
        "matmul: rhs too short"
    );
    // SAFETY: the asserts above keep every element the strides address inside its slice, and the
    // destination does not alias the operands (it is a distinct `&mut`).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Where the rows of an im2col matrix read: row `(c, ky, kx)` takes, for output rows `y0..y1` of
/// tap row `ky` and output columns `x0..x1` of tap column `kx`, input elements `stride_w` apart;
/// everything else is padding.
struct TapRanges {
    rows: Vec<(usize, usize)>,
    cols: Vec<(usize, usize)>,
}

/// One im2col row: input channel within the group, tap `(ky, kx)`, valid output rows and columns.
struct TapRow {
    c: usize,
    ky: usize,
    kx: usize,
    ys: (usize, usize),
    xs: (usize, usize),
}

impl TapRanges {
    #[inline(always)]
    fn new(geo: &ConvGeometry) -> Self {
        let (oh, ow) = (geo.out_h(), geo.out_w());
        TapRanges {
            rows: (0..geo.kernel_h)
                .map(|ky| valid_outputs(oh, ky, geo.stride_h, geo.pad_top, geo.in_h))
                .collect(),
            cols: (0..geo.kernel_w)
                .map(|kx| valid_outputs(ow, kx, geo.stride_w, geo.pad_left, geo.in_w))
                .collect(),
        }
    }

    #[inline(always)]
    fn row(&self, geo: &ConvGeometry, row: usize) -> TapRow {
        let taps = geo.kernel_h * geo.kernel_w;
        let (ky, kx) = ((row % taps) / geo.kernel_w, row % geo.kernel_w);
        TapRow {
            c: row / taps,
            ky,
            kx,
            ys: self.rows[ky],
            xs: self.cols[kx],
        }
    }
}

/// Input index (within its plane) of output `(oy, ox)` under tap `(ky, kx)`, inside the input.
#[inline(always)]
fn tap_input(geo: &ConvGeometry, oy: usize, ox: usize, ky: usize, kx: usize) -> usize {
    (oy * geo.stride_h + ky - geo.pad_top) * geo.in_w + ox * geo.stride_w + kx - geo.pad_left
}

/// The im2col matrix of group `g` of one image into the first `out_plane` columns of `cols`, whose
/// rows are `pitch` apart: row `(c, ky, kx)`, column `(oy, ox)`, zero where the tap falls in the
/// padding. Every element is written once (no zero fill first).
#[inline(always)]
fn im2col(layer: &ConvBatch, image: &[f32], g: usize, cols: &mut [f32], pitch: usize) {
    let geo = &layer.shape.geometry;
    let (ow, p, s) = (geo.out_w(), layer.shape.out_plane(), geo.stride_w);
    let ranges = TapRanges::new(geo);
    let cin = layer.shape.in_c_per_group();
    for (row, dst) in cols.chunks_mut(pitch).take(layer.shape.depth()).enumerate() {
        let dst = &mut dst[..p];
        let TapRow {
            c,
            ky,
            kx,
            ys: (y0, y1),
            xs: (x0, x1),
        } = ranges.row(geo, row);
        let plane = &image[(g * cin + c) * layer.in_plane()..][..layer.in_plane()];
        dst[..y0 * ow].fill(0.0);
        dst[y1 * ow..].fill(0.0);
        for oy in y0..y1 {
            let out = &mut dst[oy * ow..][..ow];
            out[..x0].fill(0.0);
            out[x1..].fill(0.0);
            if x0 < x1 {
                let src = &plane[tap_input(geo, oy, x0, ky, kx)..];
                let out = &mut out[x0..x1];
                if s == 1 {
                    out.copy_from_slice(&src[..out.len()]);
                } else {
                    out.iter_mut()
                        .zip(src.iter().step_by(s))
                        .for_each(|(o, &v)| *o = v);
                }
            }
        }
    }
}

/// Adds an im2col-shaped gradient (the first `out_plane` columns of rows `pitch` apart) back onto
/// the image it was gathered from (the adjoint of [`im2col`]).
#[inline(always)]
fn col2im_add(layer: &ConvBatch, cols: &[f32], pitch: usize, g: usize, image: &mut [f32]) {
    let geo = &layer.shape.geometry;
    let (ow, p, s) = (geo.out_w(), layer.shape.out_plane(), geo.stride_w);
    let ranges = TapRanges::new(geo);
    let cin = layer.shape.in_c_per_group();
    for (row, src) in cols.chunks(pitch).take(layer.shape.depth()).enumerate() {
        let src = &src[..p];
        let TapRow {
            c,
            ky,
            kx,
            ys: (y0, y1),
            xs: (x0, x1),
        } = ranges.row(geo, row);
        if x0 == x1 {
            continue;
        }
        let plane = &mut image[(g * cin + c) * layer.in_plane()..][..layer.in_plane()];
        for oy in y0..y1 {
            let grad = &src[oy * ow + x0..oy * ow + x1];
            let dst = &mut plane[tap_input(geo, oy, x0, ky, kx)..];
            if s == 1 {
                dst.iter_mut().zip(grad).for_each(|(d, g)| *d += g);
            } else {
                dst.iter_mut()
                    .step_by(s)
                    .zip(grad)
                    .for_each(|(d, g)| *d += g);
            }
        }
    }
}

/// Output positions a dense GEMM should see at least, so that small planes (a 4x4 map has 16)
/// still make GEMMs of useful width: images are grouped into blocks of this many columns.
const BLOCK_COLUMNS: usize = 256;

/// Scratch matrices of one task of the dense kernels, reused across its blocks and groups: the
/// block's im2col matrix (or its input planes side by side for pointwise layers), its output
/// gradient and its output, each `rows x (images · out_plane)`. The grid path ([`grid`]) keeps
/// its padded planes in `cols` and its grid in `out` (forward) or `dy` (gradients).
#[derive(Default)]
struct Blocks {
    cols: Vec<f32>,
    dy: Vec<f32>,
    out: Vec<f32>,
}

impl Blocks {
    /// The im2col matrix of group `g` of every image of `images`, side by side.
    #[inline(always)]
    fn gather_input(&mut self, layer: &ConvBatch, images: &[f32], g: usize) {
        let (k, p) = (layer.shape.depth(), layer.shape.out_plane());
        let n = images.len() / layer.input_len() * p;
        self.cols.resize(k * n, 0.0);
        for (i, image) in images.chunks(layer.input_len()).enumerate() {
            if layer.shape.geometry.is_pointwise() {
                let planes = &image[g * k * p..][..k * p];
                for (dst, src) in self.cols.chunks_mut(n).zip(planes.chunks(p)) {
                    dst[i * p..][..p].copy_from_slice(src);
                }
            } else {
                im2col(layer, image, g, &mut self.cols[i * p..], n);
            }
        }
    }

    /// Group `g`'s output channels of every image of `grads`, side by side (`cout/g x n`).
    #[inline(always)]
    fn gather_output(&mut self, layer: &ConvBatch, grads: &[f32], g: usize) {
        let (cout, p) = (layer.shape.out_c_per_group(), layer.shape.out_plane());
        let n = grads.len() / layer.output_len() * p;
        self.dy.resize(cout * n, 0.0);
        for (i, grad) in grads.chunks(layer.output_len()).enumerate() {
            let planes = &grad[g * cout * p..][..cout * p];
            for (dst, src) in self.dy.chunks_mut(n).zip(planes.chunks(p)) {
                dst[i * p..][..p].copy_from_slice(src);
            }
        }
    }
}

/// Copies a block's output matrix (`cout/g x n`, images side by side) of group `g` to the images.
#[inline(always)]
fn scatter_block(layer: &ConvBatch, block: &[f32], g: usize, out: &mut [f32]) {
    let (cout, p) = (layer.shape.out_c_per_group(), layer.shape.out_plane());
    let n = out.len() / layer.output_len() * p;
    for (i, image) in out.chunks_mut(layer.output_len()).enumerate() {
        let planes = &mut image[g * cout * p..][..cout * p];
        for (dst, src) in planes.chunks_mut(p).zip(block.chunks(n)) {
            dst.copy_from_slice(&src[i * p..][..p]);
        }
    }
}

/// A depthwise plane laid out for long vector loops: the input zero-padded to `hp x wp`, and the
/// stride-1 output grid stored with the same row pitch `wp`, so that tap `(ky, kx)` of grid position
/// `i` reads padded element `i + ky·wp + kx`. Every tap is then one contiguous multiply-add over
/// `len` grid positions (the columns past the last valid one are computed and ignored), instead of
/// one short run per output row; strided layers compute the full grid and keep every `stride`-th
/// position (depthwise layers are memory-bound, so the extra arithmetic is cheap).
#[derive(Debug, Clone, Copy)]
pub(super) struct PaddedPlane {
    pub(super) hp: usize,
    pub(super) wp: usize,
    /// Grid positions a tap visits: `(hp - kh) · wp + (wp - kw + 1)`.
    len: usize,
}

impl PaddedPlane {
    pub(super) fn new(geo: &ConvGeometry) -> Self {
        let hp = geo.in_h + geo.pad_top + geo.pad_bottom;
        let wp = geo.in_w + geo.pad_left + geo.pad_right;
        PaddedPlane {
            hp,
            wp,
            len: (hp - geo.kernel_h) * wp + (wp - geo.kernel_w + 1),
        }
    }

    /// Start of tap `t` (row-major over the window) in the padded plane.
    #[inline(always)]
    pub(super) fn offset(&self, geo: &ConvGeometry, t: usize) -> usize {
        (t / geo.kernel_w) * self.wp + t % geo.kernel_w
    }

    /// Grid position of output `(oy, ox)`.
    #[inline(always)]
    pub(super) fn grid(&self, geo: &ConvGeometry, oy: usize, ox: usize) -> usize {
        oy * geo.stride_h * self.wp + ox * geo.stride_w
    }

    /// Index of input `(iy, ix)` in the padded plane.
    #[inline(always)]
    pub(super) fn padded(&self, geo: &ConvGeometry, iy: usize, ix: usize) -> usize {
        (iy + geo.pad_top) * self.wp + ix + geo.pad_left
    }

    /// Copies an input plane into `buf`, zero-padded.
    #[inline(always)]
    fn pad(&self, geo: &ConvGeometry, plane: &[f32], buf: &mut Vec<f32>) {
        buf.clear();
        buf.resize(self.hp * self.wp, 0.0);
        for (iy, row) in plane.chunks(geo.in_w).enumerate() {
            let start = self.padded(geo, iy, 0);
            buf[start..][..geo.in_w].copy_from_slice(row);
        }
    }

    /// Spreads an output-gradient plane onto the grid in `buf` (zero between strided positions).
    #[inline(always)]
    fn spread(&self, geo: &ConvGeometry, grad: &[f32], buf: &mut Vec<f32>) {
        buf.clear();
        buf.resize(self.len, 0.0);
        for (oy, row) in grad.chunks(geo.out_w()).enumerate() {
            for (ox, &g) in row.iter().enumerate() {
                buf[self.grid(geo, oy, ox)] = g;
            }
        }
    }
}

/// `dst += a · src`.
#[inline(always)]
fn axpy(dst: &mut [f32], a: f32, src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += a * s);
}

/// `Σ a[i] · b[i]`, summed in 8 interleaved partial sums so that it vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ((ca, ta), (cb, tb)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    for (x, y) in ca.iter().zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + ta.iter().zip(tb).map(|(x, y)| x * y).sum::<f32>()
}

/// Scratch buffers of one depthwise task: the padded plane and the grid.
#[derive(Default)]
struct PlaneBuffers {
    padded: Vec<f32>,
    grid: Vec<f32>,
}

/// Depthwise forward of one plane.
#[inline(always)]
fn depthwise_forward(
    layer: &ConvBatch,
    w: &[f32],
    inp: &[f32],
    out: &mut [f32],
    b: &mut PlaneBuffers,
) {
    let geo = &layer.shape.geometry;
    let pp = PaddedPlane::new(geo);
    pp.pad(geo, inp, &mut b.padded);
    b.grid.clear();
    b.grid.resize(pp.len, 0.0);
    for (t, &wt) in w.iter().enumerate() {
        axpy(&mut b.grid, wt, &b.padded[pp.offset(geo, t)..][..pp.len]);
    }
    for (oy, row) in out.chunks_mut(geo.out_w()).enumerate() {
        for (ox, o) in row.iter_mut().enumerate() {
            *o = b.grid[pp.grid(geo, oy, ox)];
        }
    }
}

/// Depthwise input gradient of one plane.
#[inline(always)]
fn depthwise_input_grad(
    layer: &ConvBatch,
    w: &[f32],
    grad_out: &[f32],
    grad_in: &mut [f32],
    b: &mut PlaneBuffers,
) {
    let geo = &layer.shape.geometry;
    let pp = PaddedPlane::new(geo);
    pp.spread(geo, grad_out, &mut b.grid);
    b.padded.clear();
    b.padded.resize(pp.hp * pp.wp, 0.0);
    for (t, &wt) in w.iter().enumerate() {
        axpy(&mut b.padded[pp.offset(geo, t)..][..pp.len], wt, &b.grid);
    }
    for (iy, row) in grad_in.chunks_mut(geo.in_w).enumerate() {
        row.copy_from_slice(&b.padded[pp.padded(geo, iy, 0)..][..geo.in_w]);
    }
}

/// Depthwise weight gradient of channel `c`, summed over the images in order.
#[inline(always)]
fn depthwise_weight_grad(
    layer: &ConvBatch,
    pp: &PaddedPlane,
    x: &[f32],
    dy: &[f32],
    c: usize,
    grad: &mut [f32],
    b: &mut PlaneBuffers,
) {
    let geo = &layer.shape.geometry;
    for n in 0..layer.batch {
        let plane = n * layer.shape.out_c + c;
        pp.pad(
            geo,
            &x[plane * layer.in_plane()..][..layer.in_plane()],
            &mut b.padded,
        );
        pp.spread(
            geo,
            &dy[plane * layer.shape.out_plane()..][..layer.shape.out_plane()],
            &mut b.grid,
        );
        for (t, g) in grad.iter_mut().enumerate() {
            *g += dot(&b.grid, &b.padded[pp.offset(geo, t)..][..pp.len]);
        }
    }
}

/// Runs a layer's kernel over the batch into a fresh output of `dst` values per image and plane
/// (`[plane, image]`), reading `src` (likewise): depthwise layers plane by plane with the plane's
/// channel weights, dense layers block by block of images.
fn over_batch(
    layer: &ConvBatch,
    w: &[f32],
    src: &[f32],
    [src_plane, src_image]: [usize; 2],
    [dst_plane, dst_image]: [usize; 2],
    plane: impl Fn(&[f32], &[f32], &mut [f32], &mut PlaneBuffers) + Sync,
    block: impl Fn(&[f32], &mut [f32], &mut Blocks) + Sync,
) -> Vec<f32> {
    let mut dst = vec![0.0; layer.batch * dst_image];
    if layer.shape.is_depthwise() {
        let taps = layer.taps();
        dst.par_chunks_mut(dst_plane)
            .zip(src.par_chunks(src_plane))
            .enumerate()
            .for_each_init(PlaneBuffers::default, |bufs, (i, (d, s))| {
                let wc = &w[(i % layer.shape.out_c) * taps..][..taps];
                vectorized(|| plane(wc, s, d, bufs));
            });
    } else {
        let n = layer.images_per_block();
        dst.par_chunks_mut(dst_image * n)
            .zip(src.par_chunks(src_image * n))
            .for_each_init(Blocks::default, |bufs, (d, s)| {
                vectorized(|| block(s, d, bufs))
            });
    }
    dst
}

/// Forward pass: `y = conv(x, w)` without bias. `x`, `w` and the returned `y` are NCHW / OIHW.
pub fn forward(layer: &ConvBatch, x: &[f32], w: &[f32]) -> Vec<f32> {
    let on_grid = grid::applies(layer);
    let fused = on_grid.then(|| grid::forward_taps(layer, w)).flatten();
    over_batch(
        layer,
        w,
        x,
        [layer.in_plane(), layer.input_len()],
        [layer.shape.out_plane(), layer.output_len()],
        |wc, inp, out, b| depthwise_forward(layer, wc, inp, out, b),
        |images, out, b| match on_grid {
            true => grid::forward_block(
                layer,
                w,
                images,
                out,
                (&mut b.cols, &mut b.out),
                fused.as_ref(),
            ),
            false => forward_block(layer, w, images, out, b),
        },
    )
}

/// The dense forward pass of a block of images, one GEMM per group over the block's im2col
/// columns side by side.
#[inline(always)]
fn forward_block(layer: &ConvBatch, w: &[f32], images: &[f32], out: &mut [f32], b: &mut Blocks) {
    let (cout, k, p) = (
        layer.shape.out_c_per_group(),
        layer.shape.depth(),
        layer.shape.out_plane(),
    );
    let n = images.len() / layer.input_len() * p;
    for g in 0..layer.shape.groups {
        let wg = &w[g * cout * k..];
        b.gather_input(layer, images, g);
        b.out.resize(cout * n, 0.0);
        matmul(
            (cout, n, k),
            &mut b.out,
            (n, 1),
            false,
            wg,
            (k, 1),
            &b.cols,
            (n, 1),
        );
        scatter_block(layer, &b.out, g, out);
    }
}

/// Input gradient `dx` from the output gradient `dy` (the transposed convolution).
pub fn input_grad(layer: &ConvBatch, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let on_grid = grid::applies(layer);
    let fused = on_grid.then(|| grid::input_grad_taps(layer, w)).flatten();
    over_batch(
        layer,
        w,
        dy,
        [layer.shape.out_plane(), layer.output_len()],
        [layer.in_plane(), layer.input_len()],
        |wc, grad_out, grad_in, b| depthwise_input_grad(layer, wc, grad_out, grad_in, b),
        |grad_out, grad_in, b| match on_grid {
            true => grid::input_grad_block(
                layer,
                w,
                grad_out,
                grad_in,
                (&mut b.dy, &mut b.cols),
                fused.as_ref(),
            ),
            false => input_grad_block(layer, w, grad_out, grad_in, b),
        },
    )
}

/// The dense input gradient of a block of images: `Wᵀ · dY` over the block's columns, then each
/// image's columns back onto its input.
#[inline(always)]
fn input_grad_block(
    layer: &ConvBatch,
    w: &[f32],
    grad_out: &[f32],
    grad_in: &mut [f32],
    b: &mut Blocks,
) {
    let (cout, k, p) = (
        layer.shape.out_c_per_group(),
        layer.shape.depth(),
        layer.shape.out_plane(),
    );
    let n = grad_out.len() / layer.output_len() * p;
    for g in 0..layer.shape.groups {
        let wg = &w[g * cout * k..];
        b.gather_output(layer, grad_out, g);
        b.cols.resize(k * n, 0.0);
        matmul(
            (k, n, cout),
            &mut b.cols,
            (n, 1),
            false,
            wg,
            (1, k),
            &b.dy,
            (n, 1),
        );
        for (i, image) in grad_in.chunks_mut(layer.input_len()).enumerate() {
            col2im_add(layer, &b.cols[i * p..], n, g, image);
        }
    }
}

/// Weight gradient `dw` from the input `x` and the output gradient `dy`, summed over the batch in
/// a fixed order.
pub fn weight_grad(layer: &ConvBatch, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let wlen = layer.shape.weight_len();
    if layer.shape.is_depthwise() {
        let (geo, taps) = (&layer.shape.geometry, layer.taps());
        let pp = PaddedPlane::new(geo);
        let mut dw = vec![0.0; wlen];
        dw.par_chunks_mut(taps).enumerate().for_each(|(c, grad)| {
            let mut b = PlaneBuffers::default();
            vectorized(|| depthwise_weight_grad(layer, &pp, x, dy, c, grad, &mut b));
        });
        return dw;
    }
    let (on_grid, fused_taps) = (grid::applies(layer), taps::available());
    let partials: Vec<Vec<f32>> = x
        .par_chunks(layer.input_len() * WEIGHT_GRAD_CHUNK)
        .zip(dy.par_chunks(layer.output_len() * WEIGHT_GRAD_CHUNK))
        .map_init(Blocks::default, |b, (images, grads)| {
            vectorized(|| match on_grid {
                true => grid::weight_grad_block(
                    layer,
                    images,
                    grads,
                    (&mut b.cols, &mut b.dy),
                    fused_taps,
                ),
                false => weight_grad_block(layer, images, grads, b),
            })
        })
        .collect();
    let mut total = vec![0.0; wlen];
    for part in partials {
        total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
    }
    total
}

/// The dense weight gradient of a block of images: per group one GEMM `dY · colsᵀ` whose inner
/// dimension runs over every position of every image of the block.
#[inline(always)]
fn weight_grad_block(layer: &ConvBatch, images: &[f32], grads: &[f32], b: &mut Blocks) -> Vec<f32> {
    let (cout, k, p) = (
        layer.shape.out_c_per_group(),
        layer.shape.depth(),
        layer.shape.out_plane(),
    );
    let n = images.len() / layer.input_len() * p;
    let mut dw = vec![0.0; layer.shape.weight_len()];
    for g in 0..layer.shape.groups {
        b.gather_output(layer, grads, g);
        b.gather_input(layer, images, g);
        let dst = &mut dw[g * cout * k..][..cout * k];
        matmul(
            (cout, k, n),
            dst,
            (k, 1),
            false,
            &b.dy,
            (n, 1),
            &b.cols,
            (1, n),
        );
    }
    dw
}
