//! Joins measured rows with published rows, cell by cell.
//!
//! Only rows that ran the paper's own data set and model (`proxy` empty) can be held against a published
//! number: they get `match` or `deviates` against the tolerance in `experiments/<paper>/compare.csv`.
//! A proxy row is shown beside its published row with its mean, seeds and spread but gets no verdict of
//! its own (`proxy`): what a proxy can test is the paper's claims, judged in [`crate::claims`].
//! A published row with no measured row is `missing`.
//!
//! Seeds are averaged only within one setting: the same profile, proxy, data set and training length. A
//! run with other settings gives another comparison row, never a shifted mean.

use crate::published::{PaperExperiments, PublishedRow};
use crate::results::{ResultRow, TableError};
use crate::stats::{mean, sample_sd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The judgement on one published number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Paper's own data and model, within the tolerance.
    Match,
    /// Paper's own data and model, outside the tolerance.
    Deviates,
    /// Measured on a proxy: not comparable cell by cell; see the claims.
    Proxy,
    /// Not measured.
    Missing,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Match => "match",
            Verdict::Deviates => "deviates",
            Verdict::Proxy => "proxy",
            Verdict::Missing => "missing",
        })
    }
}

/// One line of `comparison.csv`: a published number and, per setting that measured it, the reproduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub paper: String,
    pub source: String,
    pub model: String,
    pub method: String,
    pub w_bits: String,
    pub a_bits: String,
    pub metric: String,
    pub published: f64,
    pub reproduced: Option<f64>,
    /// Sample standard deviation over seeds (empty below two seeds).
    pub std: Option<f64>,
    pub seeds: usize,
    /// Reproduced minus published; only where the verdict compares them.
    pub delta: Option<f64>,
    pub tolerance: Option<f64>,
    pub dataset: String,
    pub proxy: String,
    pub epochs: Option<u32>,
    pub verdict: Verdict,
}

type JoinKey = [String; 7];

fn published_key(p: &PublishedRow) -> JoinKey {
    [
        p.paper.clone(),
        p.source.clone(),
        p.model.clone(),
        p.method.clone(),
        p.w_bits.clone(),
        p.a_bits.clone(),
        p.metric.clone(),
    ]
}

/// What must be equal for rows to be seeds of one measurement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Setting {
    dataset: String,
    proxy: String,
    epochs: u32,
}

/// The seeds of one measurement: seed -> value. A row repeated (same seed, same value) counts once.
type Seeds = BTreeMap<u64, f64>;

fn group(
    results: &[ResultRow],
    profile: &str,
) -> Result<BTreeMap<JoinKey, BTreeMap<Setting, Seeds>>, TableError> {
    let mut groups: BTreeMap<JoinKey, BTreeMap<Setting, Seeds>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.profile == profile) {
        let setting = Setting {
            dataset: r.dataset.clone(),
            proxy: r.proxy.clone(),
            epochs: r.epochs,
        };
        let seeds = groups
            .entry(r.join_key())
            .or_default()
            .entry(setting)
            .or_default();
        if let Some(old) = seeds.insert(r.seed, r.value)
            && old != r.value
        {
            return Err(TableError(format!(
                "{} / {} / {}: seed {} measured twice ({old} and {}) in one setting: delete the stale row",
                r.model, r.method, r.metric, r.seed, r.value
            )));
        }
    }
    Ok(groups)
}

/// Compares the measured rows of `profile` with every published row of one paper.
pub fn compare(
    experiments: &PaperExperiments,
    results: &[ResultRow],
    profile: &str,
) -> Result<Vec<ComparisonRow>, TableError> {
    let measured = group(results, profile)?;
    let mut rows = Vec::new();
    for p in &experiments.published {
        let tolerance = experiments
            .rule_for(&p.source, &p.metric)
            .map(|r| r.tolerance);
        let base = ComparisonRow {
            paper: p.paper.clone(),
            source: p.source.clone(),
            model: p.model.clone(),
            method: p.method.clone(),
            w_bits: p.w_bits.clone(),
            a_bits: p.a_bits.clone(),
            metric: p.metric.clone(),
            published: p.value,
            reproduced: None,
            std: None,
            seeds: 0,
            delta: None,
            tolerance: None,
            dataset: String::new(),
            proxy: String::new(),
            epochs: None,
            verdict: Verdict::Missing,
        };
        let Some(settings) = measured.get(&published_key(p)) else {
            rows.push(base);
            continue;
        };
        for (setting, seeds) in settings {
            let values: Vec<f64> = seeds.values().copied().collect();
            let m = mean(&values).expect("a setting holds at least one seed");
            let exact = setting.proxy.is_empty();
            let verdict = match (exact, tolerance) {
                (false, _) => Verdict::Proxy,
                (true, Some(t)) if (m - p.value).abs() <= t => Verdict::Match,
                (true, _) => Verdict::Deviates,
            };
            rows.push(ComparisonRow {
                reproduced: Some(m),
                std: sample_sd(&values),
                seeds: values.len(),
                delta: exact.then_some(m - p.value),
                tolerance: if exact { tolerance } else { None },
                dataset: setting.dataset.clone(),
                proxy: setting.proxy.clone(),
                epochs: Some(setting.epochs),
                verdict,
                ..base.clone()
            });
        }
    }
    Ok(rows)
}

/// Cell counts in summary order: match, deviates, proxy, missing.
pub fn counts(rows: &[ComparisonRow]) -> [usize; 4] {
    let n = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    [
        n(Verdict::Match),
        n(Verdict::Deviates),
        n(Verdict::Proxy),
        n(Verdict::Missing),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::published::CompareRule;

    fn published(method: &str, value: f64) -> PublishedRow {
        PublishedRow {
            paper: "P".into(),
            source: "T1".into(),
            dataset: "ImageNet".into(),
            model: "ResNet".into(),
            method: method.into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: "top1".into(),
            value,
            notes: String::new(),
        }
    }

    fn measured(method: &str, value: f64, proxy: &str, seed: u64) -> ResultRow {
        ResultRow {
            paper: "P".into(),
            source: "T1".into(),
            dataset: "Fashion-MNIST".into(),
            model: "ResNet".into(),
            method: method.into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: "top1".into(),
            value,
            proxy: proxy.into(),
            profile: "full".into(),
            seed,
            epochs: 1,
            run_id: "r".into(),
        }
    }

    fn experiments() -> PaperExperiments {
        PaperExperiments {
            dir: "p".into(),
            published: vec![
                published("float", 76.0),
                published("int8", 74.0),
                published("int4", 60.0),
            ],
            rules: vec![CompareRule {
                source: "*".into(),
                metric_prefix: "top".into(),
                tolerance: 0.5,
            }],
            claims: Vec::new(),
        }
    }

    #[test]
    fn same_data_rows_match_within_tolerance_and_average_seeds() {
        let rows = compare(
            &experiments(),
            &[
                measured("float", 76.2, "", 0),
                measured("float", 76.4, "", 1),
                measured("int8", 73.0, "", 0),
            ],
            "full",
        )
        .unwrap();
        assert_eq!(rows[0].verdict, Verdict::Match);
        assert_eq!(rows[0].seeds, 2);
        assert!((rows[0].reproduced.unwrap() - 76.3).abs() < 1e-9);
        assert!((rows[0].std.unwrap() - 0.141_421_356).abs() < 1e-6);
        assert_eq!(rows[1].verdict, Verdict::Deviates);
        assert_eq!(rows[2].verdict, Verdict::Missing);
        assert_eq!(counts(&rows), [1, 1, 0, 1]);
    }

    #[test]
    fn proxy_rows_get_no_verdict_and_no_delta() {
        let rows = compare(
            &experiments(),
            &[
                measured("float", 92.0, "small net", 0),
                measured("int8", 91.8, "small net", 0),
            ],
            "full",
        )
        .unwrap();
        assert_eq!(rows[0].verdict, Verdict::Proxy);
        assert_eq!(rows[0].delta, None);
        assert_eq!(counts(&rows), [0, 0, 2, 1]);
    }

    #[test]
    fn other_settings_are_other_rows_and_smoke_rows_are_ignored() {
        let stray = ResultRow {
            epochs: 0,
            ..measured("float", 50.0, "", 2)
        };
        let rows = compare(
            &experiments(),
            &[
                measured("float", 76.0, "", 0),
                measured("float", 76.0, "", 1),
                stray,
            ],
            "full",
        )
        .unwrap();
        let float: Vec<_> = rows.iter().filter(|r| r.method == "float").collect();
        assert_eq!(float.len(), 2);
        assert_eq!(float[0].epochs, Some(0));
        assert_eq!(float[0].verdict, Verdict::Deviates);
        assert_eq!(float[1].reproduced, Some(76.0));
        assert_eq!(float[1].verdict, Verdict::Match);
        let smoke = ResultRow {
            profile: "smoke".into(),
            ..measured("float", 76.0, "", 0)
        };
        assert_eq!(
            compare(&experiments(), &[smoke], "full").unwrap()[0].verdict,
            Verdict::Missing
        );
    }

    #[test]
    fn a_repeated_row_counts_once_and_a_conflicting_one_is_an_error() {
        let row = measured("float", 76.0, "", 0);
        let rows = compare(&experiments(), &[row.clone(), row.clone()], "full").unwrap();
        assert_eq!(rows[0].seeds, 1);
        let conflict = ResultRow {
            value: 70.0,
            ..row.clone()
        };
        let e = compare(&experiments(), &[row, conflict], "full").unwrap_err();
        assert!(e.to_string().contains("seed 0 measured twice"), "{e}");
    }
}
