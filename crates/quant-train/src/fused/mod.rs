//! Fused training operations with hand-written gradients: clipping and fake quantization with a
//! straight-through estimator ([`clip_ste`], also after a ReLU: [`relu_clip_ste`]), PACT ([`pact`]), per-channel batch moments
//! ([`channel_moments`]), max pooling ([`max_pool`]), and the Transformer's [`layer_norm`] and
//! [`softmax`] over the last dimension.
//!
//! Why: on Burn's flex backend a clamp is two masks and two mask fills, and a fake quantization
//! written with tensor operations is a dozen full passes over the activation; measured on a
//! `[128, 32, 28, 28]` activation, `relu6` took 20 ms forward and 18 ms backward and Jacob's fake
//! quantization 58 ms forward, against about 10 ms for a whole 1x1 convolution with both gradients.
//! Each operation here is one pass forward and one backward on flex. Every other device runs the
//! composed tensor operations ([`reference`](mod@reference)), which define the semantics and which the tests
//! compare the fused operations with.

mod pool;
pub mod reference;
mod rows;
#[cfg(test)]
mod tests;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::{Autodiff, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn::prelude::*;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::flex_tensors::uninit::{self, Chunk, write_all};
use crate::flex_tensors::{dims, record, runs_kernels, tensor, values};
use crate::kernel_time::{Kernel, timed};
use crate::simd::vectorized;

/// Elements per parallel task of the elementwise loops.
const CHUNK: usize = 1 << 14;

/// The rounding grid a clipped value is put on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Grid {
    /// No rounding: a plain clamp.
    None,
    /// Jacob's affine grid: `scale · clamp(round_half_away(c / scale), code_lo, code_hi)`.
    Affine {
        /// Real value of one code step.
        scale: f32,
        /// Lowest code minus the zero point.
        code_lo: f32,
        /// Highest code minus the zero point.
        code_hi: f32,
    },
    /// A fixed-point grid: `round_half_even(c · scale) / scale` (`scale = 2^FL`, F8Net).
    Fixed {
        /// `2^FL`.
        scale: f32,
    },
}

/// Clamp to `[lo, hi]`, then round onto `grid`; the gradient passes where `lo <= x <= hi` (Burn's
/// clamp gradient, the clipped straight-through estimator).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clip {
    /// Lower clip, in the tensor's units.
    pub lo: f32,
    /// Upper clip.
    pub hi: f32,
    /// Rounding after the clip.
    pub grid: Grid,
}

impl Clip {
    /// The clamp (NaN stays NaN, as in Burn's clamp).
    #[inline(always)]
    fn clamp(&self, x: f32) -> f32 {
        let c = if x > self.hi { self.hi } else { x };
        if c < self.lo { self.lo } else { c }
    }

    /// Whether the gradient passes at `x`.
    #[inline]
    fn passes(&self, x: f32) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// This clip applied after the plain clamp `first` ([`Grid::None`]), as one clip: two clamps
    /// compose into the clamp to the intersection, and the gradient passes where both passed.
    /// `None` when `first` rounds or the two intervals do not meet.
    pub fn after(self, first: Clip) -> Option<Clip> {
        let (lo, hi) = (first.lo.max(self.lo), first.hi.min(self.hi));
        (first.grid == Grid::None && lo <= hi).then_some(Clip {
            lo,
            hi,
            grid: self.grid,
        })
    }
}

/// Burn's ReLU of one value: zero at and below zero (`-0.0` included), NaN kept.
#[inline(always)]
fn relu(a: f32) -> f32 {
    if a <= 0.0 { 0.0 } else { a }
}

/// [`Grid::Affine`] of a clipped value.
#[inline(always)]
fn affine_grid(c: f32, scale: f32, code_lo: f32, code_hi: f32) -> f32 {
    let v = c / scale;
    let r = if v == 0.0 {
        0.0
    } else {
        v.signum() * (v.abs() + 0.5).floor()
    };
    r.clamp(code_lo, code_hi) * scale
}

/// [`Grid::Fixed`] of a clipped value.
#[inline(always)]
fn fixed_grid(c: f32, scale: f32) -> f32 {
    (c * scale).round_ties_even() / scale
}

/// `clip` applied elementwise with a clipped straight-through gradient.
pub fn clip_ste<const D: usize>(x: Tensor<D>, clip: Clip) -> Tensor<D> {
    if !runs_kernels(&x) {
        return reference::clip_ste(x, clip);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::clip_ste(
        x.into_dispatch(),
        clip,
    ))
}

/// `clip_ste(relu(x), clip)` with Burn's ReLU, in one pass each way instead of two: the values of
/// the two operations, and their gradient (it passes where `x > 0` and the clip passes). A
/// quantized ReLU layer's output stage, whose activations are the bulk of a training step's
/// memory traffic.
pub fn relu_clip_ste<const D: usize>(x: Tensor<D>, clip: Clip) -> Tensor<D> {
    if !runs_kernels(&x) {
        return reference::relu_clip_ste(x, clip);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::relu_clip_ste(
        x.into_dispatch(),
        clip,
    ))
}

/// PACT, `relu(x) - relu(x - α)` with `α` a one-element tensor: the gradient reaches `x` where
/// `0 < x <= α` and `α` counts the upstream gradient where `x > α`.
pub fn pact<const D: usize>(x: Tensor<D>, alpha: Tensor<1>) -> Tensor<D> {
    if !runs_kernels(&x) {
        return reference::pact(x, alpha);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::pact(
        x.into_dispatch(),
        alpha.into_dispatch(),
    ))
}

/// Per-channel mean and biased variance of `[N, C, H, W]` over batch and space (batch norm's
/// batch statistics), both differentiable.
pub fn channel_moments(x: Tensor<4>) -> (Tensor<1>, Tensor<1>) {
    if !runs_kernels(&x) {
        return reference::channel_moments(x);
    }
    let c = x.dims()[1];
    let m: Tensor<2> = Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::moments(
        x.into_dispatch(),
    ));
    let mean = m.clone().slice([0..1, 0..c]).reshape([c]);
    let var = m.slice([1..2, 0..c]).reshape([c]);
    (mean, var)
}

/// `x · a[c] + b[c]` per channel `c` of `[N, C, H, W]` (`a`, `b`: `[C]`), differentiable in all
/// three: batch norm's normalisation and a convolution's bias in one pass.
pub fn channel_affine(x: Tensor<4>, a: Tensor<1>, b: Tensor<1>) -> Tensor<4> {
    if !runs_kernels(&x) {
        return reference::channel_affine(x, a, b);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::channel_affine(
        x.into_dispatch(),
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// Max pooling of `[N, C, H, W]` over `size x size` windows with stride `size`, no padding (Burn's
/// `max_pool2d` with those options: same values, same gradients, see [`pool`]).
pub fn max_pool(x: Tensor<4>, size: usize) -> Tensor<4> {
    assert!(size > 0, "max_pool: a window of 0 pixels");
    if !runs_kernels(&x) {
        return reference::max_pool(x, size);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::max_pool(
        x.into_dispatch(),
        size,
    ))
}

/// Layer normalisation over the last dimension, `(x - mean) / sqrt(var + eps) * g + b` with each
/// row's mean and biased variance (`g`, `b`: one value per column), differentiable in all three;
/// see [`rows`].
pub fn layer_norm<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>, eps: f64) -> Tensor<D> {
    if !runs_kernels(&x) {
        return reference::layer_norm(x, g, b, eps);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::layer_norm(
        x.into_dispatch(),
        g.into_dispatch(),
        b.into_dispatch(),
        eps,
    ))
}

/// Softmax over the last dimension.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !runs_kernels(&x) {
        return reference::softmax(x);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::softmax(
        x.into_dispatch(),
    ))
}

/// `q` in the forward pass, with the gradient passed unchanged to `x` (same shape): the
/// straight-through estimator `x + (q - x).detach()` of a quantizer computed elsewhere (on the
/// host, say), without that expression's two full-size passes forward and back.
pub fn straight_through<const D: usize>(x: Tensor<D>, q: Tensor<D>) -> Tensor<D> {
    if !runs_kernels(&x) {
        return reference::straight_through(x, q);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::straight_through(
        x.into_dispatch(),
        q.into_dispatch(),
    ))
}

/// `(min, max)` of a tensor, read without a gradient (the observers' batch range); one pass over
/// the values on flex instead of two reductions.
pub fn value_range<const D: usize>(x: &Tensor<D>) -> (f32, f32) {
    match flex_values(x) {
        Some(t) => timed(Kernel::Reductions, || flex::value_range(&t)),
        None => reference::value_range(x),
    }
}

/// `f` of the tensor's values (row-major) as a tensor of the same shape and device, without a
/// gradient: the output of a quantizer computed on the host, for [`straight_through`]. On flex
/// the values are read where they are, instead of the two copies `into_data` makes of a tensor
/// autodiff also holds.
pub fn map_values<const D: usize>(x: &Tensor<D>, f: impl FnOnce(&[f32]) -> Vec<f32>) -> Tensor<D> {
    let out = match flex_values(x) {
        Some(t) => f(&values(&t)),
        None => f(&x
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default()),
    };
    Tensor::from_data(TensorData::new(out, x.dims()), &x.device())
}

/// The flex tensor behind `x`, detached, where the kernels run for it.
fn flex_values<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    runs_kernels(x)
        .then(|| x.clone().detach().inner().try_into_primitive::<Flex>().ok())
        .flatten()
}

/// The fused operations. Flex computes them ([`flex`]); autodiff over flex records one node each,
/// whose backward calls the matching gradient of [`flex`]. The wrappers above send every other
/// device to [`reference`](mod@reference).
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// [`clip_ste`] forward.
    fn clip_ste(x: FloatTensor<Self>, clip: Clip) -> FloatTensor<Self>;
    /// [`relu_clip_ste`] forward.
    fn relu_clip_ste(x: FloatTensor<Self>, clip: Clip) -> FloatTensor<Self>;
    /// [`pact`] forward.
    fn pact(x: FloatTensor<Self>, alpha: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[2, C]`: per-channel mean (row 0) and biased variance (row 1) of `[N, C, H, W]`.
    fn moments(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// [`straight_through`] forward: `q`.
    fn straight_through(x: FloatTensor<Self>, q: FloatTensor<Self>) -> FloatTensor<Self>;
    /// [`channel_affine`] forward.
    fn channel_affine(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// [`max_pool`] forward.
    fn max_pool(x: FloatTensor<Self>, size: usize) -> FloatTensor<Self>;
    /// [`layer_norm`] forward.
    fn layer_norm(
        x: FloatTensor<Self>,
        g: FloatTensor<Self>,
        b: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;
    /// [`softmax`] forward.
    fn softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

// The loops below live in `#[inline(always)]` functions that the closures handed to
// [`vectorized`] only call: LLVM then inlines them into the AVX2 copy, which it does not reliably
// do for a closure's own body. The element functions are passed by value (`Copy`) and per-channel
// constants are read once per channel into a local (`coef`), so that nothing the loop reads can
// alias what it writes and the loop vectorises.

/// `f(x[i], other[i])` over two equally long slices, in parallel and vectorised.
fn zip_map<F: Fn(f32, f32) -> f32 + Sync + Copy>(x: &[f32], other: &[f32], f: F) -> Vec<f32> {
    assert_eq!(x.len(), other.len(), "zip_map: lengths differ");
    uninit::par_filled(x.len(), CHUNK, |first, chunk| {
        let n = chunk.len();
        let (a, b) = (&x[first..][..n], &other[first..][..n]);
        vectorized(|| write_pairs(chunk, a, b, f))
    })
}

#[inline(always)]
fn write_pairs<F: Fn(f32, f32) -> f32>(chunk: &mut Chunk<'_>, x: &[f32], other: &[f32], f: F) {
    write_all(chunk, x.iter().zip(other).map(|(&a, &b)| f(a, b)));
}

/// `Σ f(x[i], other[i])` in f64, vectorised.
fn sum_pairs<F: Fn(f32, f32) -> f32 + Copy>(x: &[f32], other: &[f32], f: F) -> f64 {
    vectorized(|| sum_pairs_in_lanes(x, other, f))
}

/// `Σ f(x[i], other[i])`: 8 interleaved f32 partial sums (so that it vectorises), returned as f64
/// for the caller's longer sums.
#[inline(always)]
fn sum_pairs_in_lanes<F: Fn(f32, f32) -> f32>(x: &[f32], other: &[f32], f: F) -> f64 {
    let mut acc = [0.0f32; 8];
    let ((cx, tx), (co, to)) = (x.as_chunks::<8>(), other.as_chunks::<8>());
    for (a, b) in cx.iter().zip(co) {
        for l in 0..8 {
            acc[l] += f(a[l], b[l]);
        }
    }
    let tail: f32 = tx.iter().zip(to).map(|(&a, &b)| f(a, b)).sum();
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + f64::from(tail)
}

/// Images per parallel task of the per-channel loops: a fixed number, so that sums are added in
/// the same order whatever the thread count.
const IMAGES_PER_TASK: usize = 8;

/// `Σ f(coef(ch), x, other)` per channel `ch` of two NCHW tensors of shape `[n, c, plane]`, over
/// every image and position. Tasks take whole images (channels with planes of one value, as in
/// the last layers of a MobileNet, would otherwise be tasks of one element); f32 partial sums
/// within a plane, f64 across planes, tasks added in order.
fn per_channel_sums<F: Fn(f32, f32, f32) -> f32 + Sync + Copy>(
    x: &[f32],
    other: &[f32],
    [_, c, plane]: [usize; 3],
    coef: impl Fn(usize) -> f32 + Sync,
    f: F,
) -> Vec<f64> {
    let image = c * plane;
    let partials: Vec<Vec<f64>> = x
        .par_chunks(image * IMAGES_PER_TASK)
        .zip(other.par_chunks(image * IMAGES_PER_TASK))
        .map(|(xs, os)| vectorized(|| channel_sums_of_images(xs, os, [c, plane], &coef, f)))
        .collect();
    let mut total = vec![0.0f64; c];
    for part in partials {
        total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
    }
    total
}

#[inline(always)]
fn channel_sums_of_images<F: Fn(f32, f32, f32) -> f32 + Copy>(
    xs: &[f32],
    os: &[f32],
    [c, plane]: [usize; 2],
    coef: &impl Fn(usize) -> f32,
    f: F,
) -> Vec<f64> {
    let mut acc = vec![0.0f64; c];
    for (xi, oi) in xs.chunks(c * plane).zip(os.chunks(c * plane)) {
        for (ch, (a, (xp, op))) in acc
            .iter_mut()
            .zip(xi.chunks(plane).zip(oi.chunks(plane)))
            .enumerate()
        {
            let k = coef(ch);
            *a += if plane < 8 {
                // Planes shorter than a vector: element by element.
                xp.iter()
                    .zip(op)
                    .map(|(&v, &o)| f64::from(f(k, v, o)))
                    .sum::<f64>()
            } else {
                sum_pairs_in_lanes(xp, op, move |v, o| f(k, v, o))
            };
        }
    }
    acc
}

/// `f(coef(ch), x[i], other[i])` for every element of two NCHW tensors of shape `[n, c, plane]`,
/// image by image in parallel.
fn per_channel_map<K: Copy, F: Fn(K, f32, f32) -> f32 + Sync + Copy>(
    x: &[f32],
    other: &[f32],
    [_, c, plane]: [usize; 3],
    coef: impl Fn(usize) -> K + Sync,
    f: F,
) -> Vec<f32> {
    assert_eq!(x.len(), other.len(), "per_channel_map: lengths differ");
    let image = c * plane;
    uninit::par_filled(x.len(), image, |first, chunk| {
        let (xi, oi) = (&x[first..][..image], &other[first..][..image]);
        vectorized(|| write_channels(chunk, xi, oi, plane, &coef, f))
    })
}

#[inline(always)]
fn write_channels<K: Copy, F: Fn(K, f32, f32) -> f32 + Copy>(
    chunk: &mut Chunk<'_>,
    x: &[f32],
    other: &[f32],
    plane: usize,
    coef: &impl Fn(usize) -> K,
    f: F,
) {
    for (ch, (xp, op)) in x.chunks(plane).zip(other.chunks(plane)).enumerate() {
        let k = coef(ch);
        write_pairs(chunk, xp, op, move |v, w| f(k, v, w));
    }
}

#[inline(always)]
fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Per-channel `(mean, biased variance)` (two passes).
#[inline(always)]
fn channel_stats(x: &[f32], shape: [usize; 3]) -> (Vec<f64>, Vec<f64>) {
    let count = (shape[0] * shape[2]) as f64;
    let means: Vec<f64> = per_channel_sums(x, x, shape, |_| 0.0, |_, v, _| v)
        .into_iter()
        .map(|s| s / count)
        .collect();
    let m32: Vec<f32> = means.iter().map(|&m| m as f32).collect();
    let vars = per_channel_sums(x, x, shape, |ch| m32[ch], |m, v, _| (v - m) * (v - m))
        .into_iter()
        .map(|s| s / count)
        .collect();
    (means, vars)
}

fn nchw(t: &FlexTensor) -> [usize; 3] {
    let d = dims(t);
    [d[0], d[1], d[2..].iter().product()]
}

/// The flex computations, forward and backward.
pub mod flex {
    use super::*;

    /// [`super::clip_ste`], one loop per grid (no branch on the grid inside the loop).
    pub fn clip_ste(x: FlexTensor, clip: Clip) -> FlexTensor {
        clip_after(x, clip, |a| a)
    }

    /// [`super::relu_clip_ste`].
    pub fn relu_clip_ste(x: FlexTensor, clip: Clip) -> FlexTensor {
        clip_after(x, clip, relu)
    }

    /// `clip` of `pre(x)`.
    fn clip_after(x: FlexTensor, clip: Clip, pre: impl Fn(f32) -> f32 + Sync + Copy) -> FlexTensor {
        let v = values(&x);
        let out = match clip.grid {
            Grid::None => zip_map(&v, &v, move |a, _| clip.clamp(pre(a))),
            Grid::Affine {
                scale,
                code_lo,
                code_hi,
            } => zip_map(&v, &v, move |a, _| {
                affine_grid(clip.clamp(pre(a)), scale, code_lo, code_hi)
            }),
            Grid::Fixed { scale } => {
                zip_map(&v, &v, move |a, _| fixed_grid(clip.clamp(pre(a)), scale))
            }
        };
        tensor(out, dims(&x))
    }

    /// Its gradient: `dy` where the clip passes.
    pub fn clip_ste_backward(x: FlexTensor, dy: FlexTensor, clip: Clip) -> FlexTensor {
        gated(x, dy, move |a| clip.passes(a))
    }

    /// [`relu_clip_ste`]'s gradient: `dy` where `x > 0` and the clip passes.
    pub fn relu_clip_ste_backward(x: FlexTensor, dy: FlexTensor, clip: Clip) -> FlexTensor {
        gated(x, dy, move |a| a > 0.0 && clip.passes(a))
    }

    /// `dy` where `passes(x)`, zero elsewhere.
    fn gated(
        x: FlexTensor,
        dy: FlexTensor,
        passes: impl Fn(f32) -> bool + Sync + Copy,
    ) -> FlexTensor {
        let out = zip_map(
            &values(&x),
            &values(&dy),
            move |a, g| {
                if passes(a) { g } else { 0.0 }
            },
        );
        tensor(out, dims(&x))
    }

    /// [`super::pact`].
    pub fn pact(x: FlexTensor, alpha: FlexTensor) -> FlexTensor {
        let a = values(&alpha)[0];
        let v = values(&x);
        let out = zip_map(&v, &v, move |x, _| x.max(0.0) - (x - a).max(0.0));
        tensor(out, dims(&x))
    }

    /// Its gradients with respect to `x` and `α` (the gradients of the two ReLUs).
    pub fn pact_backward(
        x: FlexTensor,
        alpha: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let a = values(&alpha)[0];
        let (v, g) = (values(&x), values(&dy));
        let step = |b: bool| if b { 1.0f32 } else { 0.0 };
        let dx = zip_map(&v, &g, move |x, g| g * (step(x > 0.0) - step(x - a > 0.0)));
        let da: f64 = v
            .par_chunks(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .map(|(v, g)| sum_pairs(v, g, move |x, g| g * step(x - a > 0.0)))
            .collect::<Vec<f64>>()
            .into_iter()
            .sum();
        (tensor(dx, dims(&x)), tensor(vec![da as f32], dims(&alpha)))
    }

    /// [`super::FusedOps::moments`].
    pub fn moments(x: FlexTensor) -> FlexTensor {
        let shape = nchw(&x);
        let (means, vars) = channel_stats(&values(&x), shape);
        let out = means.iter().chain(&vars).map(|&v| v as f32).collect();
        tensor(out, vec![2, shape[1]])
    }

    /// Its gradient: `dmean / M + dvar · 2 (x - mean) / M` (`M` values per channel).
    pub fn moments_backward(x: FlexTensor, d: FlexTensor) -> FlexTensor {
        let shape @ [n, c, plane] = nchw(&x);
        let (v, d) = (values(&x), values(&d));
        let count = (n * plane) as f32;
        let means: Vec<f32> = per_channel_sums(&v, &v, shape, |_| 0.0, |_, v, _| v)
            .into_iter()
            .map(|s| (s / f64::from(count)) as f32)
            .collect();
        let coef = |ch: usize| (d[ch] / count, 2.0 * d[c + ch] / count, means[ch]);
        let out = per_channel_map(&v, &v, shape, coef, |(dm, dv, m), x, _| dm + dv * (x - m));
        tensor(out, dims(&x))
    }

    /// [`super::channel_affine`].
    pub fn channel_affine(x: FlexTensor, a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let shape = nchw(&x);
        let (v, a, b) = (values(&x), values(&a), values(&b));
        let out = per_channel_map(&v, &v, shape, |ch| (a[ch], b[ch]), |(a, b), x, _| x * a + b);
        tensor(out, dims(&x))
    }

    /// Its gradients, those asked for (`[x, a, b]`): `dy · a[c]` for `x`, and per channel
    /// `Σ dy · x` for `a` and `Σ dy` for `b`.
    pub fn channel_affine_backward(
        x: FlexTensor,
        a: FlexTensor,
        dy: FlexTensor,
        wanted: [bool; 3],
    ) -> [Option<FlexTensor>; 3] {
        let shape @ [_, c, _] = nchw(&x);
        let (v, av, g) = (values(&x), values(&a), values(&dy));
        let dx = wanted[0].then(|| {
            tensor(
                per_channel_map(&g, &g, shape, |ch| av[ch], |a, g, _| g * a),
                dims(&x),
            )
        });
        let sums = |s: Vec<f64>| tensor(s.into_iter().map(|v| v as f32).collect(), vec![c]);
        let da = wanted[1].then(|| sums(per_channel_sums(&v, &g, shape, |_| 0.0, |_, x, g| x * g)));
        let db = wanted[2].then(|| sums(per_channel_sums(&g, &g, shape, |_| 0.0, |_, g, _| g)));
        [dx, da, db]
    }

    /// `(min, max)` in one pass (NaN values are skipped, as `f32::min` does).
    pub fn value_range(x: &FlexTensor) -> (f32, f32) {
        let v = values(x);
        v.par_chunks(CHUNK)
            .map(|ch| vectorized(|| min_max(ch)))
            .reduce(
                || (f32::INFINITY, f32::NEG_INFINITY),
                |a, b| (a.0.min(b.0), a.1.max(b.1)),
            )
    }
}

impl FusedOps for Flex {
    fn clip_ste(x: FlexTensor, clip: Clip) -> FlexTensor {
        timed(Kernel::Elementwise, || flex::clip_ste(x, clip))
    }

    fn relu_clip_ste(x: FlexTensor, clip: Clip) -> FlexTensor {
        timed(Kernel::Elementwise, || flex::relu_clip_ste(x, clip))
    }

    fn pact(x: FlexTensor, alpha: FlexTensor) -> FlexTensor {
        timed(Kernel::Elementwise, || flex::pact(x, alpha))
    }

    fn moments(x: FlexTensor) -> FlexTensor {
        timed(Kernel::Reductions, || flex::moments(x))
    }

    fn straight_through(_x: FlexTensor, q: FlexTensor) -> FlexTensor {
        q
    }

    fn channel_affine(x: FlexTensor, a: FlexTensor, b: FlexTensor) -> FlexTensor {
        timed(Kernel::Elementwise, || flex::channel_affine(x, a, b))
    }

    fn max_pool(x: FlexTensor, size: usize) -> FlexTensor {
        timed(Kernel::Pooling, || pool::max_pool(x, size))
    }

    fn layer_norm(x: FlexTensor, g: FlexTensor, b: FlexTensor, eps: f64) -> FlexTensor {
        timed(Kernel::Reductions, || rows::layer_norm(x, g, b, eps))
    }

    fn softmax(x: FlexTensor) -> FlexTensor {
        timed(Kernel::Reductions, || rows::softmax(x))
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn clip_ste(x: FloatTensor<Self>, clip: Clip) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x],
            clip,
            |[x], dy, _, clip| {
                [Some(timed(Kernel::Elementwise, || {
                    flex::clip_ste_backward(x, dy, clip)
                }))]
            },
            |[x]| <Flex as FusedOps>::clip_ste(x, clip),
        )
    }

    fn relu_clip_ste(x: FloatTensor<Self>, clip: Clip) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x],
            clip,
            |[x], dy, _, clip| {
                [Some(timed(Kernel::Elementwise, || {
                    flex::relu_clip_ste_backward(x, dy, clip)
                }))]
            },
            |[x]| <Flex as FusedOps>::relu_clip_ste(x, clip),
        )
    }

    fn pact(x: FloatTensor<Self>, alpha: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x, alpha],
            (),
            |[x, alpha], dy, _, ()| {
                let (dx, da) = timed(Kernel::Elementwise, || flex::pact_backward(x, alpha, dy));
                [Some(dx), Some(da)]
            },
            |[x, alpha]| <Flex as FusedOps>::pact(x, alpha),
        )
    }

    fn moments(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x],
            (),
            |[x], d, _, ()| {
                [Some(timed(Kernel::Reductions, || {
                    flex::moments_backward(x, d)
                }))]
            },
            |[x]| <Flex as FusedOps>::moments(x),
        )
    }

    fn straight_through(x: FloatTensor<Self>, q: FloatTensor<Self>) -> FloatTensor<Self> {
        // `q` is a constant (its gradient is dropped, as `.detach()` would): only `x` is an input.
        let q = q.into_parts().0;
        record::<C, _, _>([x], (), |_, dy, _, ()| [Some(dy)], |_| q)
    }

    fn channel_affine(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x, a, b],
            (),
            |[x, a, _], dy, wanted, ()| {
                timed(Kernel::Elementwise, || {
                    flex::channel_affine_backward(x, a, dy, wanted)
                })
            },
            |[x, a, b]| <Flex as FusedOps>::channel_affine(x, a, b),
        )
    }

    fn max_pool(x: FloatTensor<Self>, size: usize) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x],
            size,
            |[x], dy, _, size| {
                [Some(timed(Kernel::Pooling, || {
                    pool::max_pool_backward(x, dy, size)
                }))]
            },
            |[x]| <Flex as FusedOps>::max_pool(x, size),
        )
    }

    fn layer_norm(
        x: FloatTensor<Self>,
        g: FloatTensor<Self>,
        b: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        record::<C, _, _>(
            [x, g, b],
            eps,
            |[x, g, _], dy, wanted, eps| {
                timed(Kernel::Reductions, || {
                    rows::layer_norm_backward(x, g, dy, eps, wanted)
                })
            },
            |[x, g, b]| <Flex as FusedOps>::layer_norm(x, g, b, eps),
        )
    }

    fn softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // The output rides along as the node's parameter: its backward needs `y`, and computing
        // it again would double the exponentials, the bulk of the operation.
        let y = <Flex as FusedOps>::softmax(x.primitive().clone());
        record::<C, _, _>(
            [x],
            y.clone(),
            |_, dy, _, y| {
                [Some(timed(Kernel::Reductions, || {
                    rows::softmax_backward(y, dy)
                }))]
            },
            |_| y,
        )
    }
}
