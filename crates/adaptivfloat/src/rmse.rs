//! Format-level experiments (dossier §9.1, P1b–P1d): per-layer RMS quantization error of the five
//! formats against bit width, on seeded synthetic "layers" and on the trained models' weights, and
//! the exponent-width search.
//!
//! The paper's Fig. 4 is a box plot per (model, format, bits) over all layers of the model; these
//! tables hold the same statistics (mean, median, quartiles, Tukey whiskers). The figure's values
//! are not printed in the paper, so these rows have their own table (`format_rmse.csv`) rather than
//! mirroring `published.csv`.

use quant_core::formats::{Format, FormatKind};
use quant_train::rng::Rng;
use rayon::prelude::*;
use repro::results::Keyed;
use serde::{Deserialize, Serialize};

/// One statistic of the per-layer RMSE distribution of one format on one family of tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmseRow {
    pub paper: String,
    /// `P1b synthetic`, `P1c exponent search`, `P1d trained weights`, `P1f range stress`.
    pub study: String,
    /// Synthetic family or trained model whose tensors were quantized.
    pub family: String,
    /// Paper name of the format (`AdaptivFloat`, `Float`, `BFP`, `Uniform`, `Posit`).
    pub format: String,
    /// `e` (or `es`), empty for BFP and Uniform.
    pub exponent: String,
    pub bits: u32,
    /// `layers`, `mean`, `median`, `q1`, `q3`, `whisker_lo`, `whisker_hi`.
    pub stat: String,
    pub value: f64,
    pub profile: String,
    pub seed: u64,
    pub run_id: String,
}

impl Keyed for RmseRow {
    fn key(&self) -> String {
        [
            self.paper.as_str(),
            &self.study,
            &self.family,
            &self.format,
            &self.exponent,
            &self.bits.to_string(),
            &self.stat,
            &self.profile,
            &self.seed.to_string(),
        ]
        .join("\u{1f}")
    }
}

/// Exponent-width search result for one (family, format, bits): the width with the lowest mean
/// RMSE next to the paper's width (dossier P1c).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpSearchRow {
    pub paper: String,
    pub family: String,
    pub format: String,
    pub bits: u32,
    pub best_exponent: u32,
    pub best_mean_rmse: f64,
    pub paper_exponent: u32,
    pub paper_mean_rmse: f64,
    pub profile: String,
    pub seed: u64,
    pub run_id: String,
}

impl Keyed for ExpSearchRow {
    fn key(&self) -> String {
        [
            self.paper.as_str(),
            &self.family,
            &self.format,
            &self.bits.to_string(),
            &self.profile,
            &self.seed.to_string(),
        ]
        .join("\u{1f}")
    }
}

/// The seeded synthetic weight families of dossier §9.1 P1b.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gaussian,
    Laplace,
    StudentT3,
    StudentT5,
    /// Gaussian with 0.1% of the elements replaced by ±20σ.
    Outliers,
    /// Bulk Gaussian σ = 0.05 with a per-layer maximum between 2 and 20 carried by 0.05% of the
    /// elements: the wide LayerNorm-Transformer range of the paper's Table 1 ([-12.46, 20.41]).
    TransformerLike,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Gaussian,
        Family::Laplace,
        Family::StudentT3,
        Family::StudentT5,
        Family::Outliers,
        Family::TransformerLike,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Gaussian => "Gaussian",
            Family::Laplace => "Laplace",
            Family::StudentT3 => "Student-t(3)",
            Family::StudentT5 => "Student-t(5)",
            Family::Outliers => "Gaussian+0.1% 20-sigma outliers",
            Family::TransformerLike => "Transformer-like (max 2..20, bulk std 0.05)",
        }
    }

    /// One synthetic layer of `len` values. The scale is log-uniform in [0.01, 1] per layer
    /// (Float and Posit have fixed ranges, so their error depends on it).
    pub fn layer(self, rng: &mut Rng, len: usize) -> Vec<f64> {
        let scale = 0.01 * 100f64.powf(rng.uniform());
        let student = |rng: &mut Rng, nu: u32| {
            let chi2: f64 = (0..nu).map(|_| rng.normal().powi(2)).sum();
            rng.normal() / (chi2 / f64::from(nu)).sqrt()
        };
        match self {
            Family::Gaussian => (0..len).map(|_| scale * rng.normal()).collect(),
            Family::Laplace => (0..len)
                .map(|_| {
                    // Inverse CDF with b = scale / sqrt(2), so the std is `scale`.
                    let u = rng.uniform() - 0.5;
                    let b = scale / std::f64::consts::SQRT_2;
                    -b * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
                })
                .collect(),
            Family::StudentT3 => (0..len).map(|_| scale * student(rng, 3)).collect(),
            Family::StudentT5 => (0..len).map(|_| scale * student(rng, 5)).collect(),
            Family::Outliers => (0..len)
                .map(|_| {
                    let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                    if rng.uniform() < 1e-3 {
                        sign * 20.0 * scale
                    } else {
                        scale * rng.normal()
                    }
                })
                .collect(),
            Family::TransformerLike => {
                let max = 2.0 * 10f64.powf(rng.uniform());
                let mut xs: Vec<f64> = (0..len)
                    .map(|_| {
                        let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                        if rng.uniform() < 5e-4 {
                            sign * max * (0.1 + 0.9 * rng.uniform())
                        } else {
                            0.05 * rng.normal()
                        }
                    })
                    .collect();
                let at = rng.below(len);
                xs[at] = max;
                xs
            }
        }
    }
}

/// Box-plot statistics of a sample (numpy's linear-interpolation quantiles, Tukey 1.5 IQR whiskers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxStats {
    pub count: usize,
    pub mean: f64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub whisker_lo: f64,
    pub whisker_hi: f64,
}

impl BoxStats {
    /// Statistics of a non-empty sample.
    pub fn of(sample: &[f64]) -> BoxStats {
        let mut s = sample.to_vec();
        s.sort_by(f64::total_cmp);
        let quantile = |p: f64| {
            let pos = p * (s.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
        };
        let (q1, q3) = (quantile(0.25), quantile(0.75));
        let iqr = q3 - q1;
        BoxStats {
            count: s.len(),
            mean: s.iter().sum::<f64>() / s.len() as f64,
            median: quantile(0.5),
            q1,
            q3,
            whisker_lo: s
                .iter()
                .copied()
                .find(|&x| x >= q1 - 1.5 * iqr)
                .unwrap_or(q1),
            whisker_hi: s
                .iter()
                .rev()
                .copied()
                .find(|&x| x <= q3 + 1.5 * iqr)
                .unwrap_or(q3),
        }
    }

    /// `(stat name, value)` pairs in table order.
    pub fn named(&self) -> [(&'static str, f64); 7] {
        [
            ("layers", self.count as f64),
            ("mean", self.mean),
            ("median", self.median),
            ("q1", self.q1),
            ("q3", self.q3),
            ("whisker_lo", self.whisker_lo),
            ("whisker_hi", self.whisker_hi),
        ]
    }
}

/// Root-mean-square error of quantizing `xs` as one tensor with `format`.
pub fn tensor_rmse(format: &Format, xs: &[f64]) -> f64 {
    let q = format
        .quantize_tensor(xs)
        .expect("synthetic and trained tensors are finite");
    let sum: f64 = xs.iter().zip(&q.values).map(|(x, y)| (x - y).powi(2)).sum();
    (sum / xs.len().max(1) as f64).sqrt()
}

/// The word sizes of the RMSE study (the paper's 4..8 and 16).
pub const RMSE_BITS: [u32; 6] = [4, 5, 6, 7, 8, 16];

/// Every format configuration of the studies at `bits`: the paper's widths, plus the searched
/// exponent widths (AdaptivFloat e 1..4, Float e 2..5, Posit es 0..2) when `search` is set.
pub fn configurations(bits: u32, search: bool) -> Vec<Format> {
    let mut out = Vec::new();
    for kind in FormatKind::ALL {
        let widths: Vec<Option<u32>> = match (kind, search) {
            (FormatKind::AdaptivFloat, true) => (1..=4).map(Some).collect(),
            (FormatKind::Float, true) => (2..=5).map(Some).collect(),
            (FormatKind::Posit, true) => (0..=2).map(Some).collect(),
            _ => vec![kind.paper_exponent(bits)],
        };
        out.extend(
            widths
                .into_iter()
                .filter_map(|e| Format::new(kind, bits, e).ok()),
        );
    }
    out
}

/// Per-layer RMSE of every configuration on every layer: `result[c][l]`.
pub fn per_layer_rmse(configs: &[Format], layers: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let by_layer: Vec<Vec<f64>> = layers
        .par_iter()
        .map(|xs| configs.iter().map(|f| tensor_rmse(f, xs)).collect())
        .collect();
    (0..configs.len())
        .map(|c| by_layer.iter().map(|row| row[c]).collect())
        .collect()
}

/// How many synthetic layers, and how large, a profile draws.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticSize {
    pub layers: usize,
    pub min_len: usize,
    pub max_len: usize,
}

/// The layers of one family: sizes log-uniform in `[min_len, max_len]`, seeded by `(seed, family)`.
pub fn synthetic_layers(family: Family, size: SyntheticSize, seed: u64) -> Vec<Vec<f64>> {
    (0..size.layers)
        .map(|l| {
            let mut rng = Rng::stream(seed ^ ((family as u64) << 32), l as u64);
            let ratio = size.max_len as f64 / size.min_len as f64;
            let len = (size.min_len as f64 * ratio.powf(rng.uniform())) as usize;
            family.layer(&mut rng, len.max(1))
        })
        .collect()
}

/// Rows of the per-layer RMSE statistics of `configs` on `layers`, under `study` and `family`.
pub fn rmse_rows(
    study: &str,
    family: &str,
    configs: &[Format],
    per_layer: &[Vec<f64>],
    stamp: &Stamp,
) -> Vec<RmseRow> {
    configs
        .iter()
        .zip(per_layer)
        .flat_map(|(f, sample)| {
            BoxStats::of(sample).named().map(|(stat, value)| RmseRow {
                paper: crate::PAPER.into(),
                study: study.into(),
                family: family.into(),
                format: f.kind().paper_name().into(),
                exponent: f.exponent().map(|e| e.to_string()).unwrap_or_default(),
                bits: f.bits(),
                stat: stat.into(),
                value,
                profile: stamp.profile.clone(),
                seed: stamp.seed,
                run_id: stamp.run_id.clone(),
            })
        })
        .collect()
}

/// The run identity every row carries.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub profile: String,
    pub seed: u64,
    pub run_id: String,
}

/// The exponent search over `configs` (all at one width) for one family: per format with an
/// exponent, the width of lowest mean RMSE and the paper's width.
pub fn exp_search_rows(
    family: &str,
    configs: &[Format],
    per_layer: &[Vec<f64>],
    stamp: &Stamp,
) -> Vec<ExpSearchRow> {
    let mean = |s: &Vec<f64>| s.iter().sum::<f64>() / s.len().max(1) as f64;
    [
        FormatKind::AdaptivFloat,
        FormatKind::Float,
        FormatKind::Posit,
    ]
    .into_iter()
    .filter_map(|kind| {
        let candidates: Vec<(u32, u32, f64)> = configs
            .iter()
            .zip(per_layer)
            .filter(|(f, _)| f.kind() == kind)
            .filter_map(|(f, s)| Some((f.bits(), f.exponent()?, mean(s))))
            .collect();
        let &(bits, best_e, best) = candidates.iter().min_by(|a, b| a.2.total_cmp(&b.2))?;
        let paper_e = kind.paper_exponent(bits)?;
        let &(_, _, paper) = candidates.iter().find(|c| c.1 == paper_e)?;
        Some(ExpSearchRow {
            paper: crate::PAPER.into(),
            family: family.into(),
            format: kind.paper_name().into(),
            bits,
            best_exponent: best_e,
            best_mean_rmse: best,
            paper_exponent: paper_e,
            paper_mean_rmse: paper,
            profile: stamp.profile.clone(),
            seed: stamp.seed,
            run_id: stamp.run_id.clone(),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_stats_match_numpy_conventions() {
        let s = BoxStats::of(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!((s.q1, s.median, s.q3), (2.0, 3.0, 4.0));
        assert_eq!(s.mean, 22.0);
        assert_eq!(
            (s.whisker_lo, s.whisker_hi),
            (1.0, 4.0),
            "100 is an outlier"
        );
    }

    #[test]
    fn families_have_the_intended_spread() {
        let size = SyntheticSize {
            layers: 2,
            min_len: 20_000,
            max_len: 20_000,
        };
        for family in Family::ALL {
            let layers = synthetic_layers(family, size, 3);
            assert_eq!(layers, synthetic_layers(family, size, 3), "seeded");
            for xs in &layers {
                let n = xs.len() as f64;
                let std = (xs.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
                let max = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let ratio = max / std;
                match family {
                    Family::Gaussian => assert!((3.0..6.0).contains(&ratio), "{ratio}"),
                    Family::Outliers => assert!(ratio > 10.0, "{ratio}"),
                    Family::TransformerLike => assert!(max >= 2.0 && std < 0.5, "{max} {std}"),
                    _ => assert!(ratio > 5.0, "{family:?}: {ratio}"),
                }
            }
        }
    }

    /// The dossier's strong expectation (§9.3 item 2) on a heavy-tailed family, and its predicted
    /// exception (Uniform wins on Gaussians at 6 bits).
    #[test]
    fn adaptivfloat_wins_on_heavy_tails_and_uniform_on_gaussians() {
        let size = SyntheticSize {
            layers: 4,
            min_len: 8_000,
            max_len: 8_000,
        };
        let mean = |family, kind| {
            let f = Format::paper(kind, 6).unwrap();
            let layers = synthetic_layers(family, size, 1);
            per_layer_rmse(&[f], &layers)[0].iter().sum::<f64>()
        };
        let af = mean(Family::StudentT3, FormatKind::AdaptivFloat);
        assert!(af < mean(Family::StudentT3, FormatKind::Uniform));
        assert!(af < mean(Family::StudentT3, FormatKind::Bfp));
        assert!(
            mean(Family::Gaussian, FormatKind::Uniform)
                < mean(Family::Gaussian, FormatKind::AdaptivFloat)
        );
    }

    #[test]
    fn exp_search_picks_the_lowest_mean() {
        let configs = configurations(6, true);
        let layers = synthetic_layers(
            Family::Laplace,
            SyntheticSize {
                layers: 3,
                min_len: 4000,
                max_len: 4000,
            },
            2,
        );
        let per_layer = per_layer_rmse(&configs, &layers);
        let stamp = Stamp {
            profile: "smoke".into(),
            seed: 2,
            run_id: "t".into(),
        };
        let rows = exp_search_rows("Laplace", &configs, &per_layer, &stamp);
        assert_eq!(rows.len(), 3);
        for r in rows {
            assert!(r.best_mean_rmse <= r.paper_mean_rmse);
        }
    }
}
