//! The int32 building blocks of every PocketNN matrix product, exact or refused.
//!
//! All four products of a training step (forward `A·W`, DFA `e·B`, weight update `Aᵀ·δ`, bias update
//! `1ᵀ·δ`) are row-vector-times-matrix products, `out = init + x · M`. The reference computes them with
//! plain C `int` sums that wrap silently on overflow. Here each product first bounds its result,
//! `max|init| + Σ|x_t| · max|M|`: when that fits in `i32` no partial sum can overflow, and the fast path
//! uses wrapping i32 arithmetic (which vectorises; the result is exact, hence identical to the
//! reference's). Otherwise the row is accumulated in `i64` and accepted only when every result fits, so a
//! run that would overflow stops with [`Overflow`] instead of continuing on wrapped values.
//!
//! Rows of `x` that are zero are skipped: MNIST images are about 80 % zero pixels, and a skipped term
//! adds exactly nothing.
#![deny(clippy::float_arithmetic)]

use std::fmt;

/// A value that does not fit in the reference implementation's `int`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    /// Which product or update overflowed (for example `layer 1 forward`).
    pub what: String,
    /// The exact value that did not fit.
    pub value: i64,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "int32 overflow in {}: exact value {} is outside the int32 range (the reference C++ would \
             wrap silently here); use a smaller batch or a larger learning-rate inverse",
            self.what, self.value
        )
    }
}

impl std::error::Error for Overflow {}

/// Largest `|v|` in `values` (0 when empty), as `i64` so that `|i32::MIN|` fits.
pub fn max_abs(values: &[i32]) -> i64 {
    values
        .iter()
        .map(|&v| i64::from(v).abs())
        .max()
        .unwrap_or(0)
}

/// `out[j] += Σ_t x[t] · m[t · cols + j]` where `cols = out.len()`, exact, or [`Overflow`].
///
/// `m_row_max[t]` must be at least `max_j |m[t · cols + j]|` (callers track these instead of rescanning
/// `m`); the bound is then `max|out| + Σ_t |x[t]| · m_row_max[t]`.
pub fn vec_mat_acc(
    x: &[i32],
    m: &[i32],
    m_row_max: &[i64],
    out: &mut [i32],
    what: impl FnOnce() -> String,
) -> Result<(), Overflow> {
    let cols = out.len();
    assert_eq!(m.len(), x.len() * cols, "vec_mat_acc: shapes do not chain");
    assert_eq!(
        m_row_max.len(),
        x.len(),
        "vec_mat_acc: one bound per row of m"
    );
    let bound = max_abs(out)
        + x.iter()
            .zip(m_row_max)
            .map(|(&v, &b)| i64::from(v).abs() * b)
            .sum::<i64>();
    if bound <= i64::from(i32::MAX) {
        wrapping_vec_mat_acc(x, m, out);
        return Ok(());
    }
    let mut wide: Vec<i64> = out.iter().map(|&v| i64::from(v)).collect();
    for (&xt, row) in x.iter().zip(m.chunks_exact(cols)) {
        if xt != 0 {
            for (w, &mv) in wide.iter_mut().zip(row) {
                *w += i64::from(xt) * i64::from(mv);
            }
        }
    }
    if let Some(&value) = wide.iter().find(|w| i32::try_from(**w).is_err()) {
        return Err(Overflow {
            what: what(),
            value,
        });
    }
    for (o, &w) in out.iter_mut().zip(&wide) {
        *o = w as i32;
    }
    Ok(())
}

/// The fast path of [`vec_mat_acc`], valid only under its bound; dispatches to an AVX2 build of the
/// same loop when the CPU has it (the default x86-64 target has no 32-bit vector multiply).
fn wrapping_vec_mat_acc(x: &[i32], m: &[i32], out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { wrapping_vec_mat_acc_avx2(x, m, out) };
        return;
    }
    wrapping_vec_mat_acc_generic(x, m, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn wrapping_vec_mat_acc_avx2(x: &[i32], m: &[i32], out: &mut [i32]) {
    wrapping_vec_mat_acc_generic(x, m, out);
}

#[inline(always)]
fn wrapping_vec_mat_acc_generic(x: &[i32], m: &[i32], out: &mut [i32]) {
    let cols = out.len();
    for (&xt, row) in x.iter().zip(m.chunks_exact(cols)) {
        if xt != 0 {
            for (o, &mv) in out.iter_mut().zip(row) {
                *o = o.wrapping_add(xt.wrapping_mul(mv));
            }
        }
    }
}

/// `w[j] = clamp(w[j] + grad[j] / -lr_inv, -limit, limit)`: the reference's update of one weight row,
/// division rounding toward zero as C's `/` does. Returns the first value that left the int32 range
/// before clamping (the reference would have wrapped it), if any.
pub fn apply_update(w: &mut [i32], grad: &[i32], lr_inv: i32, limit: i32) -> Option<i64> {
    assert!(lr_inv >= 1, "learning-rate inverse must be at least 1");
    let neg = -lr_inv;
    let mut first_overflow = None;
    for (wi, &g) in w.iter_mut().zip(grad) {
        let v = i64::from(*wi) + i64::from(g / neg);
        if i32::try_from(v).is_err() && first_overflow.is_none() {
            first_overflow = Some(v);
        }
        *wi = v.clamp(-i64::from(limit), i64::from(limit)) as i32;
    }
    first_overflow
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(x: &[i32], m: &[i32], init: &[i32]) -> Vec<i64> {
        let cols = init.len();
        (0..cols)
            .map(|j| {
                i64::from(init[j])
                    + x.iter()
                        .enumerate()
                        .map(|(t, &xt)| i64::from(xt) * i64::from(m[t * cols + j]))
                        .sum::<i64>()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn matches_wide_reference_or_reports(
            (x, m, init) in (1usize..12, 1usize..20).prop_flat_map(|(t, c)| (
                prop::collection::vec(prop_oneof![Just(0), -300i32..300, Just(i32::MAX / 7)], t),
                prop::collection::vec(-40_000i32..40_000, t * c),
                prop::collection::vec(-1_000_000i32..1_000_000, c),
            ))
        ) {
            let mut out = init.clone();
            let exact = reference(&x, &m, &init);
            let row_max: Vec<i64> = m.chunks_exact(init.len()).map(max_abs).collect();
            let got = vec_mat_acc(&x, &m, &row_max, &mut out, || "test".into());
            match exact.iter().find(|v| i32::try_from(**v).is_err()) {
                Some(_) => prop_assert!(got.is_err()),
                None => {
                    prop_assert!(got.is_ok());
                    let wide: Vec<i64> = out.iter().map(|&v| i64::from(v)).collect();
                    prop_assert_eq!(wide, exact);
                }
            }
        }
    }

    #[test]
    fn partial_sums_that_overflow_but_cancel_are_exact() {
        // 2·(2^30) - 2^30 fits although the first two terms overflow: the wide path accepts it.
        let x = [1, 1, -1];
        let m = [1 << 30, 1 << 30, 1 << 30];
        let mut out = [0];
        vec_mat_acc(&x, &m, &[1 << 30; 3], &mut out, || "t".into()).unwrap();
        assert_eq!(out, [1 << 30]);
    }

    #[test]
    fn overflow_names_the_product() {
        let mut out = [i32::MAX];
        let e = vec_mat_acc(&[1], &[1], &[1], &mut out, || "layer 1 forward".into()).unwrap_err();
        assert_eq!(e.value, i64::from(i32::MAX) + 1);
        assert!(e.to_string().contains("layer 1 forward"), "{e}");
    }

    #[test]
    fn update_divides_toward_zero_and_clamps() {
        let mut w = [0, 0, 0, 32_000, -32_000];
        let grad = [1999, -1999, -999, -5_000_000, 5_000_000];
        assert_eq!(apply_update(&mut w, &grad, 1000, 32_767), None);
        assert_eq!(w, [-1, 1, 0, 32_767, -32_767]);
    }

    #[test]
    fn update_reports_what_the_reference_would_wrap() {
        let mut w = [32_767];
        assert_eq!(
            apply_update(&mut w, &[-i32::MAX], 1, 32_767),
            Some(32_767 + i64::from(i32::MAX))
        );
    }
}
