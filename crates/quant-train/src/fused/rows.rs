//! Operations over the last dimension of a tensor, row by row: layer normalisation and softmax,
//! the Transformer's, forward and backward on flex.
//!
//! Why: Burn composes each from half a dozen full-size tensor operations forward and as many
//! backward, and flex runs an elementwise operation on one thread below 256K elements, which is
//! where the row Transformer's activations (`[128, 28, 64]`) sit: its step used the second core
//! for a fifth of the time. Here each is one parallel pass forward and one or two back, over
//! tasks of whole rows.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::CHUNK;
use crate::flex_tensors::uninit::{self, write_all};
use crate::flex_tensors::{dims, tensor, values};

/// Rows per parallel task: about [`CHUNK`] values, at least one row. A fixed count, so that the
/// per-task sums of the layer-norm parameter gradients are added in the same order whatever the
/// thread count.
fn rows_per_task(d: usize) -> usize {
    (CHUNK / d.max(1)).max(1)
}

/// The row length (the last dimension).
fn row_len(x: &FlexTensor) -> usize {
    dims(x).last().copied().unwrap_or(1)
}

/// Mean and `1 / sqrt(biased variance + eps)` of one row (sums in `f64`).
#[inline]
fn moments(row: &[f32], eps: f64) -> (f32, f32) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = row
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
}

/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) * g + b` with the
/// row's mean and biased variance, `g` and `b` one value per column.
pub fn layer_norm(x: FlexTensor, g: FlexTensor, b: FlexTensor, eps: f64) -> FlexTensor {
    let d = row_len(&x);
    let (v, g, b) = (values(&x), values(&g), values(&b));
    let out = uninit::par_filled(v.len(), rows_per_task(d) * d, |first, chunk| {
        for row in v[first..][..chunk.len()].chunks(d) {
            let (mean, rstd) = moments(row, eps);
            let normed = row.iter().zip(g.iter().zip(b.iter()));
            write_all(
                chunk,
                normed.map(|(&x, (&g, &b))| (x - mean) * rstd * g + b),
            );
        }
    });
    tensor(out, dims(&x))
}

/// The gradients of [`layer_norm`] that are wanted (`[x, g, b]`): with `x̂ = (x - mean) · rstd`
/// and `ĝ = dy · g`, `dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ · x̂))` per row, `dg = Σ dy · x̂`
/// and `db = Σ dy` over the rows.
pub fn layer_norm_backward(
    x: FlexTensor,
    g: FlexTensor,
    dy: FlexTensor,
    eps: f64,
    wanted: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let d = row_len(&x);
    let (v, gv, dyv) = (values(&x), values(&g), values(&dy));
    let task = rows_per_task(d) * d;
    // Each row's moments, once for both passes below.
    let stats: Vec<(f32, f32)> = v
        .par_chunks(d.max(1))
        .map(|row| moments(row, eps))
        .collect();
    let dx = wanted[0].then(|| {
        let out = uninit::par_filled(v.len(), task, |first, chunk| {
            let (rows, grads) = (&v[first..][..chunk.len()], &dyv[first..][..chunk.len()]);
            let row_stats = &stats[first / d..];
            for ((row, dy), &(mean, rstd)) in rows.chunks(d).zip(grads.chunks(d)).zip(row_stats) {
                let (mut m1, mut m2) = (0.0f64, 0.0f64);
                for ((&x, &dy), &g) in row.iter().zip(dy).zip(gv.iter()) {
                    let gh = f64::from(dy * g);
                    m1 += gh;
                    m2 += gh * f64::from((x - mean) * rstd);
                }
                let (m1, m2) = ((m1 / d as f64) as f32, (m2 / d as f64) as f32);
                let terms = row.iter().zip(dy).zip(gv.iter());
                write_all(
                    chunk,
                    terms.map(|((&x, &dy), &g)| rstd * (dy * g - m1 - (x - mean) * rstd * m2)),
                );
            }
        });
        tensor(out, dims(&x))
    });
    let (dg, db) = match wanted[1] || wanted[2] {
        false => (None, None),
        true => {
            let partials: Vec<(Vec<f64>, Vec<f64>)> = v
                .par_chunks(task)
                .zip(dyv.par_chunks(task))
                .zip(stats.par_chunks(rows_per_task(d)))
                .map(|((rows, grads), row_stats)| {
                    let (mut dg, mut db) = (vec![0.0f64; d], vec![0.0f64; d]);
                    let each = rows.chunks(d).zip(grads.chunks(d)).zip(row_stats);
                    for ((row, dy), &(mean, rstd)) in each {
                        for (((&x, &dy), dg), db) in row.iter().zip(dy).zip(&mut dg).zip(&mut db) {
                            *dg += f64::from(dy * ((x - mean) * rstd));
                            *db += f64::from(dy);
                        }
                    }
                    (dg, db)
                })
                .collect();
            let (mut dg, mut db) = (vec![0.0f64; d], vec![0.0f64; d]);
            for (pg, pb) in partials {
                dg.iter_mut().zip(pg).for_each(|(t, v)| *t += v);
                db.iter_mut().zip(pb).for_each(|(t, v)| *t += v);
            }
            let column = |s: Vec<f64>| tensor(s.into_iter().map(|v| v as f32).collect(), vec![d]);
            (wanted[1].then(|| column(dg)), wanted[2].then(|| column(db)))
        }
    };
    [dx, dg, db]
}

/// One row's softmax into `write` order: `exp(x - max) / Σ exp(x - max)`.
#[inline]
fn softmax_row(row: &[f32], out: &mut Vec<f32>) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    out.clear();
    out.extend(row.iter().map(|&v| (v - max).exp()));
    let sum: f32 = out.iter().sum();
    out.iter_mut().for_each(|e| *e /= sum);
}

/// Softmax over the last dimension.
pub fn softmax(x: FlexTensor) -> FlexTensor {
    let d = row_len(&x);
    let v = values(&x);
    let out = uninit::par_filled(v.len(), rows_per_task(d) * d, |first, chunk| {
        let mut y = Vec::with_capacity(d);
        for row in v[first..][..chunk.len()].chunks(d) {
            softmax_row(row, &mut y);
            write_all(chunk, y.iter().copied());
        }
    });
    tensor(out, dims(&x))
}

/// Its gradient from the output `y`: `dx = y · (dy - Σ dy · y)` per row.
pub fn softmax_backward(y: FlexTensor, dy: FlexTensor) -> FlexTensor {
    let d = row_len(&y);
    let (v, g) = (values(&y), values(&dy));
    let out = uninit::par_filled(v.len(), rows_per_task(d) * d, |first, chunk| {
        let (rows, grads) = (&v[first..][..chunk.len()], &g[first..][..chunk.len()]);
        for (y, dy) in rows.chunks(d).zip(grads.chunks(d)) {
            let dot: f32 = y.iter().zip(dy).map(|(&y, &g)| y * g).sum();
            write_all(chunk, y.iter().zip(dy).map(|(&y, &g)| y * (g - dot)));
        }
    });
    tensor(out, dims(&y))
}
