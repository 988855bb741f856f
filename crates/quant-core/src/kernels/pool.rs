//! Max and average pooling on uint8 codes. Input and output share `(S, Z)` (dossier §4, TFLite
//! int8 spec), so max pooling is exact and average pooling is an integer mean.
#![deny(clippy::float_arithmetic)]

use rayon::prelude::*;

use super::conv::ConvGeometry;
use crate::error::{Result, arg_err, shape_err};
use crate::fixedpoint::rounding_divide;

/// Pooling uses the convolution geometry (window, stride, padding); padded taps are skipped.
pub type PoolGeometry = ConvGeometry;

fn check(
    input: &[u8],
    batch: usize,
    g: &PoolGeometry,
    out: &[u8],
    act_min: u8,
    act_max: u8,
) -> Result<()> {
    g.validate()?;
    if input.len() != batch * g.in_len() {
        return Err(shape_err!(
            "pool input of {} bytes is not {batch} x {} x {} x {}",
            input.len(),
            g.in_h,
            g.in_w,
            g.in_c
        ));
    }
    if out.len() != batch * g.out_h() * g.out_w() * g.in_c {
        return Err(shape_err!(
            "pool output of {} bytes does not match the geometry",
            out.len()
        ));
    }
    if act_min > act_max {
        return Err(arg_err!("activation clamp [{act_min}, {act_max}] is empty"));
    }
    Ok(())
}

/// Shared window walk: calls `f(acc, count)` per output pixel after folding every in-image tap
/// with `fold`.
fn pool<F, G>(input: &[u8], g: &PoolGeometry, out: &mut [u8], init: i32, fold: F, finish: G)
where
    F: Fn(i32, u8) -> i32 + Sync,
    G: Fn(i32, i32) -> u8 + Sync,
{
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    out.par_chunks_mut(ow * c).enumerate().for_each_init(
        || vec![0i32; c],
        |acc, (row, dst)| {
            let (b, oy) = (row / oh, row % oh);
            let img = &input[b * g.in_len()..(b + 1) * g.in_len()];
            for ox in 0..ow {
                acc.fill(init);
                let mut count = 0i32;
                for ky in 0..g.kernel_h {
                    let Some(iy) = (oy * g.stride_h + ky)
                        .checked_sub(g.pad_top)
                        .filter(|&i| i < g.in_h)
                    else {
                        continue;
                    };
                    for kx in 0..g.kernel_w {
                        let Some(ix) = (ox * g.stride_w + kx)
                            .checked_sub(g.pad_left)
                            .filter(|&i| i < g.in_w)
                        else {
                            continue;
                        };
                        count += 1;
                        for (a, &v) in acc.iter_mut().zip(&img[(iy * g.in_w + ix) * c..][..c]) {
                            *a = fold(*a, v);
                        }
                    }
                }
                for (d, &a) in dst[ox * c..(ox + 1) * c].iter_mut().zip(acc.iter()) {
                    *d = finish(a, count);
                }
            }
        },
    );
}

/// Max pooling over in-image taps, then the activation clamp `[act_min, act_max]`.
pub fn max_pool(
    input: &[u8],
    batch: usize,
    g: &PoolGeometry,
    act_min: u8,
    act_max: u8,
    out: &mut [u8],
) -> Result<()> {
    check(input, batch, g, out, act_min, act_max)?;
    pool(
        input,
        g,
        out,
        0,
        |a, v| a.max(i32::from(v)),
        |a, _| (a as u8).clamp(act_min, act_max),
    );
    Ok(())
}

/// Average pooling: sum of in-image taps divided by their count, rounded to nearest with ties
/// away from zero ([`rounding_divide`], TFLite's `(sum + count/2) / count`), then clamped.
/// Global average pooling is a window covering the whole image.
pub fn avg_pool(
    input: &[u8],
    batch: usize,
    g: &PoolGeometry,
    act_min: u8,
    act_max: u8,
    out: &mut [u8],
) -> Result<()> {
    check(input, batch, g, out, act_min, act_max)?;
    pool(
        input,
        g,
        out,
        0,
        |a, v| a + i32::from(v),
        |a, n| rounding_divide(a, n).clamp(i32::from(act_min), i32::from(act_max)) as u8,
    );
    Ok(())
}
