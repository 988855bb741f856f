//! Max pooling over `size x size` windows with stride `size` and no padding (the zoo CNNs'
//! pools), forward and backward on flex.
//!
//! Why: Burn flex pools through its general 3-D kernel (padding, dilation and ceil mode worked out
//! per output, an `i64` index stored per output, gradients scattered through those indices into a
//! zeroed buffer); in a one-thread training step of `cnn:16-32-64@28` that forward alone took a
//! quarter of the time. Here the forward writes only the maxima and the backward finds each
//! window's pick again from the input, writing every input gradient once.
//!
//! The pick is Burn's: the first maximum of the window in row-major order, except that a NaN
//! always wins (the last NaN of the window), so values and gradients are Burn's own even where a
//! ReLU or a quantization grid leaves ties.

use burn_flex::FlexTensor;

use super::CHUNK;
use crate::flex_tensors::uninit::{self, Chunk, write_all};
use crate::flex_tensors::{dims, tensor, values};
use crate::simd::vectorized;

/// `[n * c planes, h, w]` of an NCHW tensor.
fn planes(x: &FlexTensor) -> [usize; 3] {
    let d = dims(x);
    [d[0] * d[1], d[2], d[3]]
}

/// Whole planes per parallel task: about [`CHUNK`] input values, at least one plane.
fn planes_per_task(plane: usize) -> usize {
    (CHUNK / plane.max(1)).max(1)
}

/// Burn's picks in output row `oy` of a `w`-wide plane: window `ox` gets in `best[ox]` its value
/// and in `at[ox]` its position (`ky * size + kx`), tap by tap in Burn's order. The exact rule,
/// NaN included; branchy, so it serves only window sizes other than 2 and 3 and the planes
/// [`has_nan`] flags.
fn pick_row(plane: &[f32], w: usize, oy: usize, size: usize, best: &mut [f32], at: &mut [usize]) {
    for ky in 0..size {
        let row = &plane[(oy * size + ky) * w..][..w];
        let windows = best
            .iter_mut()
            .zip(at.iter_mut())
            .zip(row.chunks_exact(size));
        for ((b, a), taps) in windows {
            for (kx, &v) in taps.iter().enumerate() {
                if (ky == 0 && kx == 0) || v > *b || v.is_nan() {
                    (*b, *a) = (v, ky * size + kx);
                }
            }
        }
    }
}

/// Whether any value of the plane is a NaN (one vectorised pass; the planes without one, nearly
/// all, take the branch-free loops).
#[inline(always)]
fn has_nan(plane: &[f32]) -> bool {
    plane.iter().fold(false, |any, v| any | v.is_nan())
}

/// The maxima of the windows over the `S` input rows `rows` (no NaN under them): where no NaN
/// competes, Burn's pick has the window's largest value. `f32::max` over fixed-size windows
/// vectorises where the comparison branches of [`pick_row`] do not (on real activations which
/// value wins is unpredictable: a branch per comparison ran at 20 ns per input value).
#[inline(always)]
fn row_maxima<const S: usize>(rows: [&[f32]; S], best: &mut [f32]) {
    for (ky, row) in rows.iter().enumerate() {
        for (b, taps) in best.iter_mut().zip(row.as_chunks::<S>().0) {
            let m = taps.iter().fold(taps[0], |m, &v| m.max(v));
            *b = if ky == 0 { m } else { b.max(m) };
        }
    }
}

/// The gradients of the input row `row` (no NaN under its windows) into `out` (as long): tap by
/// tap in Burn's order, the first value equal to the window's maximum `best[ox]` and not yet
/// `found` (an all-ones mask once found) takes the window's upstream gradient, every other tap a
/// zero. Bit masks instead of branches, so the loop vectorises; columns no window covers get
/// zeros.
#[inline(always)]
fn first_hits<const S: usize>(
    row: &[f32],
    best: &[f32],
    grads: &[f32],
    found: &mut [u32],
    out: &mut [f32],
) {
    let windows = row
        .as_chunks::<S>()
        .0
        .iter()
        .zip(out.as_chunks_mut::<S>().0);
    for ((((taps, outs), &m), &dy), found) in windows.zip(best).zip(grads).zip(found) {
        for (&v, o) in taps.iter().zip(outs) {
            let hit = u32::from(v == m).wrapping_neg() & !*found;
            *found |= hit;
            *o = f32::from_bits(dy.to_bits() & hit);
        }
    }
    out[best.len() * S..].fill(0.0);
}

/// The input gradient of one output row of `S x S` windows without a NaN: [`row_maxima`], then
/// [`first_hits`] per window row, each written to `chunk`.
#[inline(always)]
fn row_grads<const S: usize>(
    rows: [&[f32]; S],
    grads: &[f32],
    best: &mut [f32],
    found: &mut [u32],
    out: &mut [f32],
    chunk: &mut Chunk<'_>,
) {
    row_maxima(rows, best);
    found.fill(0);
    for row in rows {
        first_hits::<S>(row, best, grads, found, out);
        write_all(chunk, out.iter().copied());
    }
}

/// The gradients of window row `ky` into `out` from the picks `at` of [`pick_row`].
fn picked(at: &[usize], ky: usize, size: usize, grads: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for (ox, (&a, &dy)) in at.iter().zip(grads).enumerate() {
        let (pky, pkx) = (a / size, a % size);
        if pky == ky {
            out[ox * size + pkx] = dy;
        }
    }
}

/// The `S` input rows under output row `oy` of a `w`-wide plane.
#[inline(always)]
fn rows_of<const S: usize>(plane: &[f32], w: usize, oy: usize) -> [&[f32]; S] {
    std::array::from_fn(|ky| &plane[(oy * S + ky) * w..][..w])
}

/// The pooled tensor, `[n, c, h / size, w / size]` (rows and columns past the last whole window
/// are dropped, as Burn does without ceil mode).
pub fn max_pool(x: FlexTensor, size: usize) -> FlexTensor {
    let d = dims(&x);
    let [_, h, w] = planes(&x);
    let (oh, ow) = (h / size, w / size);
    let out_dims = vec![d[0], d[1], oh, ow];
    let out_len = d[0] * d[1] * oh * ow;
    if out_len == 0 {
        return tensor(Vec::new(), out_dims);
    }
    let v = values(&x);
    let out = uninit::par_filled(out_len, planes_per_task(h * w) * oh * ow, |first, chunk| {
        let (mut best, mut at) = (vec![0.0f32; ow], vec![0usize; ow]);
        let p0 = first / (oh * ow);
        for p in p0..p0 + chunk.len() / (oh * ow) {
            let plane = &v[p * h * w..][..h * w];
            let fast = !has_nan(plane);
            vectorized(|| {
                for oy in 0..oh {
                    match (fast, size) {
                        (true, 2) => row_maxima::<2>(rows_of(plane, w, oy), &mut best),
                        (true, 3) => row_maxima::<3>(rows_of(plane, w, oy), &mut best),
                        _ => pick_row(plane, w, oy, size, &mut best, &mut at),
                    }
                    write_all(chunk, best.iter().copied());
                }
            });
        }
    });
    tensor(out, out_dims)
}

/// The input gradient: each window's upstream gradient at its pick, zero elsewhere (and on the
/// rows and columns no window covers).
pub fn max_pool_backward(x: FlexTensor, dy: FlexTensor, size: usize) -> FlexTensor {
    let [n, h, w] = planes(&x);
    let (oh, ow) = (h / size, w / size);
    if n * h * w == 0 {
        return tensor(Vec::new(), dims(&x));
    }
    let (v, g) = (values(&x), values(&dy));
    let out = uninit::par_filled(n * h * w, planes_per_task(h * w) * h * w, |first, chunk| {
        let (mut best, mut at) = (vec![0.0f32; ow], vec![0usize; ow]);
        let (mut found, mut row_out) = (vec![0u32; ow], vec![0.0f32; w]);
        let p0 = first / (h * w);
        for p in p0..p0 + chunk.len() / (h * w) {
            let plane = &v[p * h * w..][..h * w];
            let fast = !has_nan(plane);
            vectorized(|| {
                for oy in 0..oh {
                    let grads = &g[(p * oh + oy) * ow..][..ow];
                    let (best, found, out) = (&mut best, &mut found, &mut row_out);
                    match (fast, size) {
                        (true, 2) => {
                            row_grads::<2>(rows_of(plane, w, oy), grads, best, found, out, chunk)
                        }
                        (true, 3) => {
                            row_grads::<3>(rows_of(plane, w, oy), grads, best, found, out, chunk)
                        }
                        _ => {
                            pick_row(plane, w, oy, size, best, &mut at);
                            for ky in 0..size {
                                picked(&at, ky, size, grads, out);
                                write_all(chunk, out.iter().copied());
                            }
                        }
                    }
                }
            });
            write_all(chunk, std::iter::repeat_n(0.0, (h - oh * size) * w));
        }
    });
    tensor(out, dims(&x))
}
