//! Exact statistics of 8-bit fixed-point quantization of Gaussian data (dossier §3).
//!
//! `x ~ N(0, sigma^2)` (signed format) or `x = ReLU(z), z ~ N(0, sigma^2)` (unsigned format, sigma is
//! the std *before* the ReLU) is quantized with `clamp(round(x 2^FL), lo, hi) 2^-FL`. The relative
//! error `rms(x - Q(x)) / sigma` depends on sigma and FL only through `s = sigma 2^FL` (sigma in
//! quantization steps), so every FL curve is one curve `g(s)` shifted by factors of two, and the
//! optimal FL switches from FL to FL - 1 at `sigma = c* / 2^FL` with a single constant `c*`.
//!
//! `g` is computed in closed form: a sum over the 255 (signed) or 256 (unsigned) rounding bins of the
//! Gaussian moments `∫ (y - k)^2 φ`, the last bin extending to infinity (saturation). Float is allowed:
//! this is the offline analysis behind the FL rule.

use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::sync::OnceLock;

use super::format::FixedFormat;

/// `erfc(x)` to about 1e-13 relative accuracy: power series of `erf` for `|x| <= 2` (where `1 - erf`
/// loses at most three digits), a continued fraction evaluated bottom-up for `x > 2`, and
/// `erfc(-x) = 2 - erfc(x)`.
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x <= 2.0 {
        // erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        return 1.0 - 2.0 / PI.sqrt() * sum;
    }
    if x > 27.5 {
        return 0.0; // below the smallest positive f64
    }
    // 60 terms reach full double precision for x >= 2
    let mut f = x;
    for n in (1..=60).rev() {
        f = x + f64::from(n) / 2.0 / f;
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// Standard normal density.
fn phi(z: f64) -> f64 {
    if z.is_infinite() {
        return 0.0;
    }
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// Upper tail `P(Z > z)` of the standard normal.
fn upper_tail(z: f64) -> f64 {
    if z == f64::INFINITY {
        return 0.0;
    }
    if z == f64::NEG_INFINITY {
        return 1.0;
    }
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// `P(a < Z < b)` computed from the tail that keeps precision.
fn prob_between(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        upper_tail(a) - upper_tail(b)
    } else if b <= 0.0 {
        upper_tail(-b) - upper_tail(-a)
    } else {
        1.0 - upper_tail(-a) - upper_tail(b)
    }
}

/// `z phi(z)`, zero at the infinities.
fn z_phi(z: f64) -> f64 {
    if z.is_infinite() { 0.0 } else { z * phi(z) }
}

/// `E[(Y - k)^2 ; lo < Y < hi]` for `Y ~ N(0, s^2)`.
fn bin_moment(s: f64, k: f64, lo: f64, hi: f64) -> f64 {
    let (a, b) = (lo / s, hi / s);
    let i0 = prob_between(a, b);
    let i1 = phi(a) - phi(b);
    let i2 = i0 + z_phi(a) - z_phi(b);
    (s * s * i2 - 2.0 * k * s * i1 + k * k * i0).max(0.0)
}

/// The relative error `g(s) = rms(y - Q(y)) / s` of quantizing `y ~ N(0, s^2)` (signed) or
/// `ReLU(y)` (unsigned) to integer codes with the 8-bit clamp, `s` in quantization steps.
pub fn relative_error_in_steps(s: f64, signed: bool) -> f64 {
    let mse = if signed {
        // bins [k - 1/2, k + 1/2] for |k| < 127, saturation bins beyond ±126.5; symmetric
        let inner: f64 = (-126..=126)
            .map(|k| {
                let k = f64::from(k);
                bin_moment(s, k, k - 0.5, k + 0.5)
            })
            .sum();
        inner + 2.0 * bin_moment(s, 127.0, 126.5, f64::INFINITY)
    } else {
        // negative z contributes no error (ReLU(z) = 0 = Q); bin 0 is (0, 1/2)
        let zero_bin = bin_moment(s, 0.0, 0.0, 0.5);
        let inner: f64 = (1..=254)
            .map(|k| {
                let k = f64::from(k);
                bin_moment(s, k, k - 0.5, k + 0.5)
            })
            .sum();
        zero_bin + inner + bin_moment(s, 255.0, 254.5, f64::INFINITY)
    };
    mse.sqrt() / s
}

/// Relative error of the format `(8, FL)` on data of standard deviation `sigma`:
/// `g(sigma 2^FL)`.
pub fn relative_error(sigma: f64, fl: u8, signed: bool) -> f64 {
    relative_error_in_steps(sigma * f64::from(1_u32 << fl), signed)
}

/// The FL with the smallest exact relative error at `sigma`, and that error. Ties (deep underflow,
/// where every FL gives the same error) go to the largest FL, the choice the authors' script makes
/// when it relabels leading zeros to FLmax.
pub fn optimal_fl(sigma: f64, signed: bool) -> (u8, f64) {
    let mut best = (FixedFormat::fl_max(signed), f64::INFINITY);
    for fl in (0..=FixedFormat::fl_max(signed)).rev() {
        let e = relative_error(sigma, fl, signed);
        if e < best.1 {
            best = (fl, e);
        }
    }
    best
}

/// The exact threshold constant `c*`: the `s` with `g(s) = g(s / 2)`, found by bisection on
/// `[16, 160]` to machine precision. The optimal FL drops from FL to FL - 1 at `sigma = c* / 2^FL`.
/// About 39.22 (signed) and 72.12 (unsigned); computed once and cached.
pub fn threshold_constant(signed: bool) -> f64 {
    static SIGNED: OnceLock<f64> = OnceLock::new();
    static UNSIGNED: OnceLock<f64> = OnceLock::new();
    let cell = if signed { &SIGNED } else { &UNSIGNED };
    *cell.get_or_init(|| {
        let h =
            |s: f64| relative_error_in_steps(s, signed) - relative_error_in_steps(s / 2.0, signed);
        let (mut lo, mut hi) = (16.0_f64, 160.0_f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if h(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    })
}

/// The minimum of one FL curve: `(s_opt, g(s_opt))` by golden-section search on `[8, 128]`
/// (`g` is unimodal there). About (32.40, 0.94 %) signed and (60.5, 0.354 %) unsigned; the optimal
/// sigma of the FL curve is `s_opt / 2^FL`.
pub fn curve_minimum(signed: bool) -> (f64, f64) {
    let g = |s: f64| relative_error_in_steps(s, signed);
    let ratio = (5.0_f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (8.0_f64, 128.0_f64);
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    for _ in 0..200 {
        if g(c) < g(d) {
            b = d;
        } else {
            a = c;
        }
        c = b - ratio * (b - a);
        d = a + ratio * (b - a);
    }
    let s = 0.5 * (a + b);
    (s, g(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn erfc_reference_values() {
        assert!(close(erfc(0.5), 1.0 - 0.520_499_877_813_046_5, 1e-14));
        assert!(close(erfc(2.0), 4.677_734_981_047_266e-3, 1e-13));
        assert!(close(erfc(2.0001), 4.675_668_695_803_339e-3, 1e-12));
        assert!(close(erfc(3.0), 2.209_049_699_858_544e-5, 1e-13));
        assert!(close(erfc(3.0001), 2.207_657_587_019_33e-5, 1e-12));
        assert!(close(erfc(5.0), 1.537_459_794_428_035e-12, 1e-12));
        assert!(close(erfc(-1.0), 1.842_700_792_949_715, 1e-14));
    }

    /// Dossier §3.3 fixture tables (4 significant digits).
    #[test]
    fn relative_error_fixtures_signed() {
        let table: [(f64, [f64; 8]); 3] = [
            (
                0.1,
                [
                    1.0, 0.9798, 0.7028, 0.3608, 0.1804, 0.09021, 0.04511, 0.02255,
                ],
            ),
            (
                1.0,
                [
                    0.2887, 0.1443, 0.07217, 0.03608, 0.01804, 0.009408, 0.1100, 0.3915,
                ],
            ),
            (
                10.0,
                [
                    0.02887, 0.01443, 0.01613, 0.1908, 0.4842, 0.7125, 0.8489, 0.9226,
                ],
            ),
        ];
        for (sigma, row) in table {
            for (fl, want) in row.into_iter().enumerate() {
                let got = relative_error(sigma, fl as u8, true);
                assert!(
                    close(got, want, 6e-4),
                    "sigma {sigma} FL {fl}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn relative_error_fixtures_unsigned() {
        let table: [(f64, [f64; 9]); 3] = [
            (
                0.1,
                [
                    FRAC_1_SQRT_2,
                    0.6928,
                    0.4970,
                    0.2552,
                    0.1276,
                    0.06379,
                    0.03189,
                    0.01595,
                    0.007974,
                ],
            ),
            (
                1.0,
                [
                    0.2041, 0.1021, 0.05103, 0.02552, 0.01276, 0.006379, 0.003673, 0.07685, 0.2757,
                ],
            ),
            (
                10.0,
                [
                    0.02041, 0.01021, 0.005103, 0.01028, 0.1338, 0.3412, 0.5031, 0.5999, 0.6522,
                ],
            ),
        ];
        for (sigma, row) in table {
            for (fl, want) in row.into_iter().enumerate() {
                let got = relative_error(sigma, fl as u8, false);
                assert!(
                    close(got, want, 6e-4),
                    "sigma {sigma} FL {fl}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn limits() {
        assert!(close(relative_error_in_steps(1e-4, true), 1.0, 1e-9));
        assert!(close(
            relative_error_in_steps(1e-4, false),
            FRAC_1_SQRT_2,
            1e-9
        ));
    }

    #[test]
    fn threshold_constants_and_curve_minima() {
        let cs = threshold_constant(true);
        let cu = threshold_constant(false);
        assert!((cs - 39.22).abs() < 0.005, "{cs}");
        assert!((cu - 72.12).abs() < 0.005, "{cu}");
        assert!(close(relative_error_in_steps(cs, true), 0.0147, 0.01));
        assert!(close(relative_error_in_steps(cu, false), 0.00566, 0.01));
        let (ss, gs) = curve_minimum(true);
        let (su, gu) = curve_minimum(false);
        assert!(
            (ss - 32.40).abs() < 0.05 && close(gs, 0.0094, 0.01),
            "{ss} {gs}"
        );
        assert!(
            (su - 60.5).abs() < 0.05 && close(gu, 0.00354, 0.01),
            "{su} {gu}"
        );
    }

    #[test]
    fn optimal_fl_switches_at_the_threshold() {
        let c = threshold_constant(true);
        assert_eq!(optimal_fl(c / 8.0 * 0.999, true).0, 3);
        assert_eq!(optimal_fl(c / 8.0 * 1.001, true).0, 2);
        assert_eq!(optimal_fl(1e-6, false).0, 8, "underflow ties go to FLmax");
    }
}
