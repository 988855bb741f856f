//! Statistics over seeds: means, sample standard deviations and Student-t confidence intervals.
//!
//! A claim is judged by where the 95 % confidence interval of its statistic lies, so the interval must be
//! right for small samples (3-5 seeds, where the t quantile is far from 1.96) and for Welch's fractional
//! degrees of freedom. The quantile is found by bisection on the exact t distribution function, written
//! through the regularized incomplete beta function; no table, no normal approximation.

/// Arithmetic mean; `None` for an empty sample.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (divisor n - 1); `None` below two values.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    (xs.len() >= 2).then(|| {
        let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
        (ss / (xs.len() - 1) as f64).sqrt()
    })
}

/// Mean and sample standard deviation for a table that prints a spread on every row: the deviation of a
/// single value is 0, and an empty sample gives NaN for both.
pub fn mean_and_sd(xs: &[f64]) -> (f64, f64) {
    (
        mean(xs).unwrap_or(f64::NAN),
        sample_sd(xs).unwrap_or(if xs.is_empty() { f64::NAN } else { 0.0 }),
    )
}

/// An estimate with its two-sided 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// One-sample t interval of the mean: `mean ± t(0.975, n-1) · sd / √n`. Needs two values.
pub fn one_sample(xs: &[f64]) -> Option<Interval> {
    let m = mean(xs)?;
    let sd = sample_sd(xs)?;
    let half = t_quantile_975((xs.len() - 1) as f64) * sd / (xs.len() as f64).sqrt();
    Some(Interval {
        estimate: m,
        low: m - half,
        high: m + half,
    })
}

/// Welch interval of `mean(a) - mean(b)` for independent samples with unequal variances
/// (Welch-Satterthwaite degrees of freedom). Needs two values on each side.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Interval> {
    let (ma, mb) = (mean(a)?, mean(b)?);
    let (sa, sb) = (sample_sd(a)?, sample_sd(b)?);
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let se = (va + vb).sqrt();
    let estimate = ma - mb;
    if se == 0.0 {
        return Some(Interval {
            estimate,
            low: estimate,
            high: estimate,
        });
    }
    let df = (va + vb).powi(2) / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    let half = t_quantile_975(df) * se;
    Some(Interval {
        estimate,
        low: estimate - half,
        high: estimate + half,
    })
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (df > 0, fractional allowed):
/// 12.706 at df = 1, 4.303 at 2, 2.776 at 4, 2.228 at 10, approaching 1.960.
pub fn t_quantile_975(df: f64) -> f64 {
    assert!(df > 0.0, "t quantile needs positive degrees of freedom");
    // P(T <= t) is increasing in t; bisect on [0, 1e4] (the df = 1 quantile is 12.7).
    let (mut lo, mut hi) = (0.0_f64, 1e4_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < 0.975 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(T <= t) for t >= 0: `1 - I_x(df/2, 1/2) / 2` with `x = df / (df + t²)`.
fn t_cdf(t: f64, df: f64) -> f64 {
    1.0 - 0.5 * regularized_incomplete_beta(df / (df + t * t), 0.5 * df, 0.5)
}

/// `I_x(a, b)` by its continued fraction (modified Lentz), using the symmetry
/// `I_x(a, b) = 1 - I_{1-x}(b, a)` where the fraction converges slowly.
fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        log_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - log_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        for coeff in [even, odd] {
            d = 1.0 + coeff * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + coeff / c;
            if c.abs() < TINY {
                c = TINY;
            }
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, nine coefficients; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let series = COEFFS[1..]
        .iter()
        .enumerate()
        .fold(COEFFS[0], |acc, (i, c)| acc + c / (x + (i + 1) as f64));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_printed_tables() {
        // Two-sided 95 % critical values as printed in standard t tables (3 decimals).
        for (df, want) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (3.0, 3.182),
            (4.0, 2.776),
            (9.0, 2.262),
            (10.0, 2.228),
            (30.0, 2.042),
            (1000.0, 1.962),
        ] {
            let got = t_quantile_975(df);
            assert!((got - want).abs() < 5e-4, "df {df}: {got} vs {want}");
        }
        // Fractional df (Welch) lies between its neighbours.
        let mid = t_quantile_975(2.5);
        assert!(mid < 4.303 && mid > 3.182, "{mid}");
    }

    #[test]
    fn ln_gamma_at_known_points() {
        assert!(ln_gamma(1.0).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn mean_and_sd_of_one_and_of_none() {
        assert_eq!(mean_and_sd(&[2.0]), (2.0, 0.0));
        let (m, s) = mean_and_sd(&[1.0, 2.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
        assert!(mean_and_sd(&[]).0.is_nan());
    }

    #[test]
    fn one_sample_interval_by_hand() {
        // mean 2, sd 1, n 3: half width 4.303 / sqrt(3).
        let i = one_sample(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(i.estimate, 2.0);
        assert!(
            (i.high - 2.0 - 4.302_653 / 3f64.sqrt()).abs() < 1e-5,
            "{i:?}"
        );
        assert!(one_sample(&[1.0]).is_none());
    }

    #[test]
    fn welch_interval_by_hand() {
        // a: mean 2, var 1, n 3; b: mean 0, var 4, n 3 -> se = sqrt(5/3), df = (5/3)^2 / ((1/9 + 16/9) / 2).
        let i = welch(&[1.0, 2.0, 3.0], &[-2.0, 0.0, 2.0]).unwrap();
        let se = (5.0f64 / 3.0).sqrt();
        let df = (25.0 / 9.0) / (17.0 / 18.0);
        assert_eq!(i.estimate, 2.0);
        assert!((i.high - 2.0 - t_quantile_975(df) * se).abs() < 1e-12);
        let flat = welch(&[1.0, 1.0], &[0.0, 0.0]).unwrap();
        assert_eq!((flat.low, flat.high), (1.0, 1.0));
    }
}
