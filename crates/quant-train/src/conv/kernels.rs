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
use quant_core::kernels::ConvGeometry;
use rayon::prelude::*;

use crate::simd::vectorized;

/// Images whose weight gradients one task sums before the fixed-order total (a fixed number, so
/// the summation order and hence the rounding never depend on the thread count).
const WEIGHT_GRAD_CHUNK: usize = 8;

/// One convolution layer applied to a batch: the window over one image plus batch, output
/// channels and groups. Input `[batch, in_c, in_h, in_w]`, weight `[out_c, in_c / groups, kh, kw]`,
/// output `[batch, out_c, out_h, out_w]`, all contiguous NCHW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvLayer {
    /// Images in the batch.
    pub batch: usize,
    /// Window, strides and padding over one image (`in_c` counts all input channels).
    pub geometry: ConvGeometry,
    /// Output channels.
    pub out_c: usize,
    /// Channel groups (1: dense; `in_c`: depthwise).
    pub groups: usize,
}

impl ConvLayer {
    /// Errors unless the geometry is valid and the groups divide both channel counts.
    pub fn validate(&self) -> Result<(), String> {
        self.geometry.validate().map_err(|e| e.to_string())?;
        let c = self.geometry.in_c;
        if self.groups == 0
            || !c.is_multiple_of(self.groups)
            || !self.out_c.is_multiple_of(self.groups)
        {
            return Err(format!(
                "{} groups do not divide {c} input and {} output channels",
                self.groups, self.out_c
            ));
        }
        Ok(())
    }

    fn in_plane(&self) -> usize {
        self.geometry.in_h * self.geometry.in_w
    }

    fn out_plane(&self) -> usize {
        self.geometry.out_h() * self.geometry.out_w()
    }

    fn in_c_per_group(&self) -> usize {
        self.geometry.in_c / self.groups
    }

    fn out_c_per_group(&self) -> usize {
        self.out_c / self.groups
    }

    /// Rows of the im2col matrix of one group (`in_c / groups · kh · kw`).
    fn patch(&self) -> usize {
        self.in_c_per_group() * self.geometry.kernel_h * self.geometry.kernel_w
    }

    /// Input elements per image.
    pub fn input_len(&self) -> usize {
        self.geometry.in_c * self.in_plane()
    }

    /// Output elements per image.
    pub fn output_len(&self) -> usize {
        self.out_c * self.out_plane()
    }

    /// Weight elements.
    pub fn weight_len(&self) -> usize {
        self.out_c * self.patch()
    }

    /// Output shape `[batch, out_c, out_h, out_w]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.out_c,
            self.geometry.out_h(),
            self.geometry.out_w(),
        ]
    }

    /// Window taps (`kh · kw`).
    fn taps(&self) -> usize {
        self.geometry.kernel_h * self.geometry.kernel_w
    }

    fn is_depthwise(&self) -> bool {
        self.in_c_per_group() == 1 && self.out_c_per_group() == 1
    }

    /// 1x1, stride 1, no padding: the input planes already are the im2col matrix.
    fn is_pointwise(&self) -> bool {
        let g = &self.geometry;
        g.kernel_h == 1
            && g.kernel_w == 1
            && g.stride_h == 1
            && g.stride_w == 1
            && g.pad_top + g.pad_left + g.pad_bottom + g.pad_right == 0
    }
}

/// Output positions `o` in `0..out` whose tap `t` lands inside the input: `0 <= o·s + t - pad < size`.
fn valid_outputs(out: usize, t: usize, stride: usize, pad: usize, size: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(t).div_ceil(stride);
    let hi = (size + pad).saturating_sub(t).div_ceil(stride).min(out);
    (lo.min(hi), hi)
}

/// `dst (m x n, row stride dst_rs) (+)= lhs · rhs`, with each operand given by its row and column
/// strides, so transposed operands cost nothing. Single-threaded: callers parallelise over images.
#[allow(clippy::too_many_arguments)]
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
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
        last(dst_rs, 1, m, n) < dst.len(),
        "matmul: destination too short"
    );
    if k == 0 {
        if !accumulate {
            dst.iter_mut().for_each(|v| *v = 0.0);
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
            1,
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

/// The im2col matrix of group `g` of one image: row `(c, ky, kx)`, column `(oy, ox)`, zero where
/// the tap falls in the padding.
fn im2col(layer: &ConvLayer, image: &[f32], g: usize, cols: &mut Vec<f32>) {
    let geo = &layer.geometry;
    let (oh, ow) = (geo.out_h(), geo.out_w());
    let p = oh * ow;
    cols.clear();
    cols.resize(layer.patch() * p, 0.0);
    let cin = layer.in_c_per_group();
    let mut row = 0;
    for c in 0..cin {
        let plane = &image[(g * cin + c) * layer.in_plane()..][..layer.in_plane()];
        for ky in 0..geo.kernel_h {
            let (y0, y1) = valid_outputs(oh, ky, geo.stride_h, geo.pad_top, geo.in_h);
            for kx in 0..geo.kernel_w {
                let (x0, x1) = valid_outputs(ow, kx, geo.stride_w, geo.pad_left, geo.in_w);
                let dst = &mut cols[row * p..][..p];
                for oy in y0..y1 {
                    let src = &plane[(oy * geo.stride_h + ky - geo.pad_top) * geo.in_w..];
                    let out = &mut dst[oy * ow..][..ow];
                    for ox in x0..x1 {
                        out[ox] = src[ox * geo.stride_w + kx - geo.pad_left];
                    }
                }
                row += 1;
            }
        }
    }
}

/// Adds an im2col-shaped gradient back onto the image it was gathered from (the adjoint of
/// [`im2col`]).
fn col2im_add(layer: &ConvLayer, cols: &[f32], g: usize, image: &mut [f32]) {
    let geo = &layer.geometry;
    let (oh, ow) = (geo.out_h(), geo.out_w());
    let p = oh * ow;
    let cin = layer.in_c_per_group();
    let mut row = 0;
    for c in 0..cin {
        let plane = &mut image[(g * cin + c) * layer.in_plane()..][..layer.in_plane()];
        for ky in 0..geo.kernel_h {
            let (y0, y1) = valid_outputs(oh, ky, geo.stride_h, geo.pad_top, geo.in_h);
            for kx in 0..geo.kernel_w {
                let (x0, x1) = valid_outputs(ow, kx, geo.stride_w, geo.pad_left, geo.in_w);
                let src = &cols[row * p..][..p];
                for oy in y0..y1 {
                    let dst = &mut plane[(oy * geo.stride_h + ky - geo.pad_top) * geo.in_w..];
                    let grad = &src[oy * ow..][..ow];
                    for ox in x0..x1 {
                        dst[ox * geo.stride_w + kx - geo.pad_left] += grad[ox];
                    }
                }
                row += 1;
            }
        }
    }
}

/// The runs of the direct depthwise loop: for every tap `t` (row-major over the window) and output
/// row, `visit(t, first input index, first output index, length)` for the output positions whose tap
/// lies inside the input; consecutive outputs step 1 in the output and `stride_w` in the input.
fn depthwise_runs(layer: &ConvLayer, mut visit: impl FnMut(usize, usize, usize, usize)) {
    let geo = &layer.geometry;
    let (oh, ow) = (geo.out_h(), geo.out_w());
    for ky in 0..geo.kernel_h {
        let (y0, y1) = valid_outputs(oh, ky, geo.stride_h, geo.pad_top, geo.in_h);
        for kx in 0..geo.kernel_w {
            let (x0, x1) = valid_outputs(ow, kx, geo.stride_w, geo.pad_left, geo.in_w);
            if x0 == x1 {
                continue;
            }
            for oy in y0..y1 {
                let in_row = (oy * geo.stride_h + ky - geo.pad_top) * geo.in_w;
                let src = in_row + x0 * geo.stride_w + kx - geo.pad_left;
                visit(ky * geo.kernel_w + kx, src, oy * ow + x0, x1 - x0);
            }
        }
    }
}

/// `dst[i] += a · src[i · stride]` (unit stride kept apart so it vectorises).
fn axpy_strided(dst: &mut [f32], a: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += a * s);
    } else {
        dst.iter_mut()
            .zip(src.iter().step_by(stride))
            .for_each(|(d, s)| *d += a * s);
    }
}

/// `dst[i · stride] += a · src[i]`, the adjoint of [`axpy_strided`].
fn scatter_axpy_strided(dst: &mut [f32], a: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += a * s);
    } else {
        dst.iter_mut()
            .step_by(stride)
            .zip(src)
            .for_each(|(d, s)| *d += a * s);
    }
}

/// `Σ a[i · stride] · b[i]`, summed in 8 interleaved partial sums so that it vectorises.
fn dot_strided(a: &[f32], stride: usize, b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    if stride == 1 {
        let (ca, ta) = a.as_chunks::<8>();
        let (cb, tb) = b.as_chunks::<8>();
        for (x, y) in ca.iter().zip(cb) {
            for l in 0..8 {
                acc[l] += x[l] * y[l];
            }
        }
        acc[0] += ta.iter().zip(tb).map(|(x, y)| x * y).sum::<f32>();
    } else {
        for (i, (x, y)) in a.iter().step_by(stride).zip(b).enumerate() {
            acc[i % 8] += x * y;
        }
    }
    acc.iter().sum()
}

/// Input elements a run of `len` outputs reads at input stride `s`.
fn span(len: usize, s: usize) -> usize {
    (len - 1) * s + 1
}

/// Forward pass: `y = conv(x, w)` without bias. `x`, `w` and the returned `y` are NCHW / OIHW.
pub fn forward(layer: &ConvLayer, x: &[f32], w: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; layer.batch * layer.output_len()];
    if layer.is_depthwise() {
        let (taps, s) = (layer.taps(), layer.geometry.stride_w);
        y.par_chunks_mut(layer.out_plane())
            .zip(x.par_chunks(layer.in_plane()))
            .enumerate()
            .for_each(|(i, (out, inp))| {
                let wc = &w[(i % layer.out_c) * taps..][..taps];
                vectorized(|| {
                    depthwise_runs(layer, |t, src, dst, len| {
                        let run = &inp[src..][..span(len, s)];
                        axpy_strided(&mut out[dst..][..len], wc[t], run, s);
                    })
                });
            });
        return y;
    }
    y.par_chunks_mut(layer.output_len())
        .zip(x.par_chunks(layer.input_len()))
        .for_each_init(Vec::new, |cols, (out, image)| {
            vectorized(|| forward_image(layer, w, image, out, cols))
        });
    y
}

/// The dense forward pass of one image, every group.
fn forward_image(
    layer: &ConvLayer,
    w: &[f32],
    image: &[f32],
    out: &mut [f32],
    cols: &mut Vec<f32>,
) {
    let (cout, k, p) = (layer.out_c_per_group(), layer.patch(), layer.out_plane());
    for g in 0..layer.groups {
        let rhs: &[f32] = if layer.is_pointwise() {
            &image[g * k * p..][..k * p]
        } else {
            im2col(layer, image, g, cols);
            cols
        };
        let (dst, wg) = (&mut out[g * cout * p..], &w[g * cout * k..]);
        matmul((cout, p, k), dst, p, false, wg, (k, 1), rhs, (p, 1));
    }
}

/// Input gradient `dx` from the output gradient `dy` (the transposed convolution).
pub fn input_grad(layer: &ConvLayer, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0; layer.batch * layer.input_len()];
    if layer.is_depthwise() {
        let (taps, s) = (layer.taps(), layer.geometry.stride_w);
        dx.par_chunks_mut(layer.in_plane())
            .zip(dy.par_chunks(layer.out_plane()))
            .enumerate()
            .for_each(|(i, (grad_in, grad_out))| {
                let wc = &w[(i % layer.out_c) * taps..][..taps];
                vectorized(|| {
                    depthwise_runs(layer, |t, src, dst, len| {
                        let run = &mut grad_in[src..][..span(len, s)];
                        scatter_axpy_strided(run, wc[t], &grad_out[dst..][..len], s);
                    })
                });
            });
        return dx;
    }
    dx.par_chunks_mut(layer.input_len())
        .zip(dy.par_chunks(layer.output_len()))
        .for_each_init(Vec::new, |cols, (grad_in, grad_out)| {
            vectorized(|| input_grad_image(layer, w, grad_out, grad_in, cols))
        });
    dx
}

/// The dense input gradient of one image, every group.
fn input_grad_image(
    layer: &ConvLayer,
    w: &[f32],
    grad_out: &[f32],
    grad_in: &mut [f32],
    cols: &mut Vec<f32>,
) {
    let (cout, k, p) = (layer.out_c_per_group(), layer.patch(), layer.out_plane());
    for g in 0..layer.groups {
        let (wg, dyg) = (&w[g * cout * k..], &grad_out[g * cout * p..]);
        if layer.is_pointwise() {
            let dst = &mut grad_in[g * k * p..][..k * p];
            matmul((k, p, cout), dst, p, false, wg, (1, k), dyg, (p, 1));
        } else {
            cols.clear();
            cols.resize(k * p, 0.0);
            matmul((k, p, cout), cols, p, false, wg, (1, k), dyg, (p, 1));
            col2im_add(layer, cols, g, grad_in);
        }
    }
}

/// Weight gradient `dw` from the input `x` and the output gradient `dy`, summed over the batch in
/// a fixed order.
pub fn weight_grad(layer: &ConvLayer, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let wlen = layer.weight_len();
    if layer.is_depthwise() {
        let (taps, s) = (layer.taps(), layer.geometry.stride_w);
        let mut dw = vec![0.0; wlen];
        dw.par_chunks_mut(taps).enumerate().for_each(|(c, grad)| {
            vectorized(|| {
                for n in 0..layer.batch {
                    let plane = n * layer.out_c + c;
                    let inp = &x[plane * layer.in_plane()..][..layer.in_plane()];
                    let grad_out = &dy[plane * layer.out_plane()..][..layer.out_plane()];
                    depthwise_runs(layer, |t, src, dst, len| {
                        let run = &inp[src..][..span(len, s)];
                        grad[t] += dot_strided(run, s, &grad_out[dst..][..len]);
                    });
                }
            })
        });
        return dw;
    }
    let partials: Vec<Vec<f32>> = x
        .par_chunks(layer.input_len() * WEIGHT_GRAD_CHUNK)
        .zip(dy.par_chunks(layer.output_len() * WEIGHT_GRAD_CHUNK))
        .map(|(images, grads)| vectorized(|| weight_grad_images(layer, images, grads)))
        .collect();
    let mut total = vec![0.0; wlen];
    for part in partials {
        total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
    }
    total
}

/// The dense weight gradient summed over a few consecutive images, in order.
fn weight_grad_images(layer: &ConvLayer, images: &[f32], grads: &[f32]) -> Vec<f32> {
    let (cout, k, p) = (layer.out_c_per_group(), layer.patch(), layer.out_plane());
    let mut dw = vec![0.0; layer.weight_len()];
    let mut cols = Vec::new();
    for (image, grad_out) in images
        .chunks(layer.input_len())
        .zip(grads.chunks(layer.output_len()))
    {
        for g in 0..layer.groups {
            let rhs: &[f32] = if layer.is_pointwise() {
                &image[g * k * p..][..k * p]
            } else {
                im2col(layer, image, g, &mut cols);
                &cols
            };
            let dst = &mut dw[g * cout * k..][..cout * k];
            let dyg = &grad_out[g * cout * p..];
            matmul((cout, k, p), dst, k, true, dyg, (p, 1), rhs, (1, p));
        }
    }
    dw
}
