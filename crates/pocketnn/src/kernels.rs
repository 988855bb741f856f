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
#[inline(always)]
pub fn max_abs(values: &[i32]) -> i64 {
    i64::from(values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0))
}

/// Per-row maxima of `|m|` for a row-major matrix, and their maximum: what [`vec_mat_acc`] bounds with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowMax {
    pub rows: Vec<i64>,
    pub all: i64,
}

impl RowMax {
    /// The maxima of `m` viewed as rows of `cols` values.
    pub fn of(m: &[i32], cols: usize) -> Self {
        let rows: Vec<i64> = m.chunks_exact(cols.max(1)).map(max_abs).collect();
        let all = rows.iter().copied().max().unwrap_or(0);
        RowMax { rows, all }
    }

    /// Recomputes `all` after entries of `rows` changed.
    pub fn refresh(&mut self) {
        self.all = self.rows.iter().copied().max().unwrap_or(0);
    }
}

/// `out[j] += Σ_t x[t] · m[t · cols + j]` where `cols = out.len()`, exact, or [`Overflow`].
///
/// `m_max` must bound `m` row by row (callers track it instead of rescanning `m`). The cheap bound
/// `max|out| + Σ|x| · max|m|` is tried first, then the per-row one `max|out| + Σ_t |x[t]| · max|m[t, :]|`.
#[inline(always)]
pub fn vec_mat_acc(
    x: &[i32],
    m: &[i32],
    m_max: &RowMax,
    out: &mut [i32],
    what: impl FnOnce() -> String,
) -> Result<(), Overflow> {
    let cols = out.len();
    assert_eq!(m.len(), x.len() * cols, "vec_mat_acc: shapes do not chain");
    assert_eq!(
        m_max.rows.len(),
        x.len(),
        "vec_mat_acc: one bound per row of m"
    );
    let limit = i64::from(i32::MAX) - max_abs(out);
    let x_l1: i64 = x.iter().map(|v| i64::from(v.unsigned_abs())).sum();
    let fits = x_l1 * m_max.all <= limit
        || x.iter()
            .zip(&m_max.rows)
            .map(|(v, &b)| i64::from(v.unsigned_abs()) * b)
            .sum::<i64>()
            <= limit;
    if fits {
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

/// Defines a function twice, as written and compiled for AVX2 (with every `#[inline(always)]` kernel it
/// calls inlined and vectorised with 256-bit integer multiplies; the default x86-64 target has none),
/// and picks the AVX2 build at run time when the CPU has it. Both builds compute identical results:
/// the kernels are integer loops whose value does not depend on how they are vectorised.
macro_rules! avx2_multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn portable($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) -> $ret {
                portable($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use avx2_multiversion;

/// The fast path of [`vec_mat_acc`], valid only under its bound.
#[inline(always)]
fn wrapping_vec_mat_acc(x: &[i32], m: &[i32], out: &mut [i32]) {
    let cols = out.len();
    for (&xt, row) in x.iter().zip(m.chunks_exact(cols)) {
        if xt != 0 {
            for (o, &mv) in out.iter_mut().zip(row) {
                *o = o.wrapping_add(xt.wrapping_mul(mv));
            }
        }
    }
}

/// Division by a fixed positive divisor that rounds toward zero like C's `/`, by multiply and shift.
///
/// The weight update divides every batch-summed gradient by the learning-rate inverse; a hardware
/// division per weight would dominate an epoch and does not vectorise. With `l = ceil(log2 d)`,
/// `s = 31 + l` and `m = ceil(2^s / d)` (at most 2^32), `floor(a · m / 2^s) = floor(a / d)` for every
/// `0 <= a <= 2^31` (Granlund & Montgomery 1994, Thm 4.2: the error `a · (m·d − 2^s) < 2^31 · d <= 2^s`).
/// Since `d > 2^(l-1)`, `m < 2^32`: the product is one 32×32→64-bit multiply, which AVX2 does four at a
/// time. The sign is applied afterwards, which is exactly truncation toward zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncDiv {
    divisor: i32,
    magic: u32,
    shift: u32,
}

impl TruncDiv {
    /// The divider for `divisor >= 1`.
    pub fn new(divisor: i32) -> Self {
        assert!(
            divisor >= 1,
            "TruncDiv needs a positive divisor, got {divisor}"
        );
        let d = divisor as u32;
        let l = 32 - (d - 1).leading_zeros();
        let shift = 31 + l;
        let magic = u32::try_from((1u64 << shift).div_ceil(u64::from(d)))
            .expect("magic below 2^32 for every positive i32 divisor");
        TruncDiv {
            divisor,
            magic,
            shift,
        }
    }

    pub fn divisor(self) -> i32 {
        self.divisor
    }

    /// `n / divisor` rounded toward zero; `i32::MIN / 1` gives `i32::MIN` (its true value wraps).
    #[inline(always)]
    pub fn quotient(self, n: i32) -> i32 {
        let q = ((u64::from(n.unsigned_abs()) * u64::from(self.magic)) >> self.shift) as u32 as i32;
        if n < 0 { q.wrapping_neg() } else { q }
    }
}

/// `w[j] = clamp(w[j] + grad[j] / -lr_inv, -limit, limit)`: the reference's update of one weight row
/// (C's `/` rounds toward zero, so `g / -L = -(g / L)`). `w_max` must bound `max|w|` on entry and
/// becomes `max|w|` after the update. When `w[j] + grad[j] / -lr_inv` can leave the int32 range (where
/// the reference would wrap), nothing is written and the exact value is returned.
#[inline(always)]
pub fn apply_update(
    w: &mut [i32],
    grad: &[i32],
    lr_inv: TruncDiv,
    limit: i32,
    w_max: &mut i64,
) -> Result<(), i64> {
    let step_max = max_abs(grad) / i64::from(lr_inv.divisor());
    if step_max == 0 {
        // Every quotient rounds to 0: the row is unchanged (and already within the clamp).
        return Ok(());
    }
    if *w_max + step_max > i64::from(i32::MAX) {
        let exact =
            |(&wi, &g): (&i32, &i32)| i64::from(wi) - i64::from(g) / i64::from(lr_inv.divisor());
        if let Some(v) = w
            .iter()
            .zip(grad)
            .map(exact)
            .find(|v| i32::try_from(*v).is_err())
        {
            return Err(v);
        }
    }
    // No sum leaves the int32 range here, so wrapping arithmetic is exact (and vectorises).
    let mut new_max = 0u32;
    for (wi, &g) in w.iter_mut().zip(grad) {
        *wi = wi.wrapping_sub(lr_inv.quotient(g)).clamp(-limit, limit);
        new_max = new_max.max(wi.unsigned_abs());
    }
    *w_max = i64::from(new_max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    avx2_multiversion! {
        fn vec_mat_acc_dispatched(x: &[i32], m: &[i32], b: &RowMax, out: &mut [i32]) -> Result<(), Overflow> {
            vec_mat_acc(x, m, b, out, || "test".into())
        }
    }

    avx2_multiversion! {
        fn apply_update_dispatched(w: &mut [i32], g: &[i32], d: TruncDiv) -> Result<(), i64> {
            apply_update(w, g, d, 32_767, &mut max_abs(w))
        }
    }

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
            let bounds = RowMax::of(&m, init.len());
            let got = vec_mat_acc(&x, &m, &bounds, &mut out, || "test".into());
            let mut out_simd = init.clone();
            let got_simd = vec_mat_acc_dispatched(&x, &m, &bounds, &mut out_simd);
            prop_assert_eq!(&got, &got_simd);
            prop_assert_eq!(&out, &out_simd);
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
        vec_mat_acc(&x, &m, &RowMax::of(&m, 1), &mut out, || "t".into()).unwrap();
        assert_eq!(out, [1 << 30]);
    }

    #[test]
    fn overflow_names_the_product() {
        let mut out = [i32::MAX];
        let e = vec_mat_acc(&[1], &[1], &RowMax::of(&[1], 1), &mut out, || {
            "layer 1 forward".into()
        })
        .unwrap_err();
        assert_eq!(e.value, i64::from(i32::MAX) + 1);
        assert!(e.to_string().contains("layer 1 forward"), "{e}");
    }

    #[test]
    fn update_divides_toward_zero_and_clamps() {
        let mut w = [0, 0, 0, 32_000, -32_000];
        let grad = [1999, -1999, -999, -5_000_000, 5_000_000];
        let mut w_max = 32_000;
        let div = TruncDiv::new(1000);
        assert_eq!(apply_update(&mut w, &grad, div, 32_767, &mut w_max), Ok(()));
        assert_eq!(w, [-1, 1, 0, 32_767, -32_767]);
        assert_eq!(w_max, 32_767);
        // All quotients round to 0: nothing changes.
        let small = [999, -999, 0, 1, -1];
        assert_eq!(
            apply_update(&mut w, &small, div, 32_767, &mut w_max),
            Ok(())
        );
        assert_eq!(w, [-1, 1, 0, 32_767, -32_767]);
    }

    #[test]
    fn update_reports_what_the_reference_would_wrap() {
        let one = TruncDiv::new(1);
        let mut w = [5, 32_767];
        assert_eq!(
            apply_update(&mut w, &[7, -i32::MAX], one, 32_767, &mut 32_767),
            Err(32_767 + i64::from(i32::MAX))
        );
        assert_eq!(w, [5, 32_767], "nothing written");
        // The bound trips (|w| + |g| / L > i32::MAX) but no single sum overflows: the update goes through.
        let mut w = [32_767, 0];
        let mut w_max = 32_767;
        assert_eq!(
            apply_update(&mut w, &[1, -i32::MAX], one, 32_767, &mut w_max),
            Ok(())
        );
        assert_eq!(w, [32_766, 32_767]);
        assert_eq!(w_max, 32_767);
    }

    #[test]
    fn trunc_div_edges() {
        for d in [
            1,
            2,
            3,
            7,
            10,
            1000,
            2000,
            4096,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
        ] {
            let t = TruncDiv::new(d);
            let d64 = i64::from(d);
            let near = [0, 1, -1, d64 - 1, d64, d64 + 1, -d64, -d64 + 1, -d64 - 1];
            let edges = [i64::from(i32::MAX), i64::from(i32::MIN) + 1];
            for n in near
                .into_iter()
                .chain(edges)
                .filter_map(|n| i32::try_from(n).ok())
            {
                assert_eq!(t.quotient(n), n / d, "{n} / {d}");
            }
            assert_eq!(
                i64::from(t.quotient(i32::MIN)),
                (i64::from(i32::MIN) / i64::from(d)) as i32 as i64
            );
        }
    }

    proptest! {
        #[test]
        fn trunc_div_matches_c_division(n in any::<i32>(), d in 1i32..=i32::MAX) {
            prop_assume!(n != i32::MIN);
            prop_assert_eq!(TruncDiv::new(d).quotient(n), n / d);
        }

        #[test]
        fn update_row_simd_matches_scalar(
            w in prop::collection::vec(-32_767i32..=32_767, 1..40),
            g in prop::collection::vec(any::<i32>(), 40),
            d in 1i32..3000,
        ) {
            let g = &g[..w.len()];
            let (mut a, mut b) = (w.clone(), w.clone());
            let mut a_max = max_abs(&a);
            let ra = apply_update(&mut a, g, TruncDiv::new(d), 32_767, &mut a_max);
            let rb = apply_update_dispatched(&mut b, g, TruncDiv::new(d));
            prop_assert_eq!(ra, rb);
            prop_assert_eq!(&a, &b);
            if ra.is_ok() {
                prop_assert!(a_max >= max_abs(&a));
                for ((&wi, &gi), &ai) in w.iter().zip(g).zip(&a) {
                    let exact = i64::from(wi) + i64::from(gi) / i64::from(-d);
                    prop_assert_eq!(i64::from(ai), exact.clamp(-32_767, 32_767));
                }
            }
        }

        #[test]
        fn trunc_div_small_divisors(n in any::<i32>(), d in 1i32..5000) {
            prop_assume!(n != i32::MIN);
            prop_assert_eq!(TruncDiv::new(d).quotient(n), n / d);
        }
    }
}
