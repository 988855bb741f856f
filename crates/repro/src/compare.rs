//! Joins measured rows with published rows and gives each published row a verdict.
//!
//! - `match`: reproduced on the paper's own data and model, within the rule's tolerance.
//! - `direction`: a proxy row whose gap to the paper's baseline row has the published sign (or differs from
//!   the published gap by at most the tolerance); a proxy baseline row itself anchors the others and is
//!   `direction` when reproduced.
//! - `deviates`: reproduced, but neither of the above.
//! - `missing`: no reproduced row (or, for a proxy row, no reproduced baseline to order it against).
//!
//! Several seeds of one row are averaged.

use crate::published::{PaperExperiments, PublishedRow};
use crate::results::ResultRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The judgement on one published number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Match,
    Direction,
    Deviates,
    Missing,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Match => "match",
            Verdict::Direction => "direction",
            Verdict::Deviates => "deviates",
            Verdict::Missing => "missing",
        })
    }
}

/// One line of `comparison.csv`.
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
    pub delta: Option<f64>,
    pub tolerance: Option<f64>,
    pub seeds: usize,
    pub proxy: String,
    pub verdict: Verdict,
}

type JoinKey = (String, String, String, String, String, String, String);

fn published_key(p: &PublishedRow) -> JoinKey {
    (
        p.paper.clone(),
        p.source.clone(),
        p.model.clone(),
        p.method.clone(),
        p.w_bits.clone(),
        p.a_bits.clone(),
        p.metric.clone(),
    )
}

/// Mean over seeds and the proxy label of every measured key.
struct Measured {
    mean: f64,
    seeds: usize,
    proxy: String,
}

fn aggregate(results: &[ResultRow], profile: &str) -> BTreeMap<JoinKey, Measured> {
    let mut sums: BTreeMap<JoinKey, (f64, usize, String)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.profile == profile) {
        let e = sums
            .entry(r.join_key())
            .or_insert((0.0, 0, r.proxy.clone()));
        e.0 += r.value;
        e.1 += 1;
    }
    sums.into_iter()
        .map(|(k, (sum, n, proxy))| {
            (
                k,
                Measured {
                    mean: sum / n as f64,
                    seeds: n,
                    proxy,
                },
            )
        })
        .collect()
}

/// Compares the measured rows of `profile` with every published row of one paper.
pub fn compare(
    experiments: &PaperExperiments,
    results: &[ResultRow],
    profile: &str,
) -> Vec<ComparisonRow> {
    let measured = aggregate(results, profile);
    experiments
        .published
        .iter()
        .map(|p| {
            let rule = experiments.rule_for(&p.source, &p.metric);
            let tolerance = rule.map(|r| r.tolerance);
            let got = measured.get(&published_key(p));
            let verdict = match got {
                None => Verdict::Missing,
                Some(m) if m.proxy.is_empty() => match tolerance {
                    Some(t) if (m.mean - p.value).abs() <= t => Verdict::Match,
                    _ => Verdict::Deviates,
                },
                Some(m) => {
                    let baseline = rule.and_then(|r| {
                        experiments.published.iter().find(|b| {
                            b.method == r.baseline_method
                                && b.source == p.source
                                && b.model == p.model
                                && b.metric == p.metric
                        })
                    });
                    match baseline {
                        Some(b) if b == p => Verdict::Direction,
                        Some(b) => match measured.get(&published_key(b)) {
                            None => Verdict::Missing,
                            Some(mb) => {
                                let published_gap = p.value - b.value;
                                let measured_gap = m.mean - mb.mean;
                                let same_sign = published_gap.signum() == measured_gap.signum();
                                let close = (published_gap - measured_gap).abs()
                                    <= tolerance.unwrap_or(0.0);
                                if same_sign || close {
                                    Verdict::Direction
                                } else {
                                    Verdict::Deviates
                                }
                            }
                        },
                        None => Verdict::Deviates,
                    }
                }
            };
            ComparisonRow {
                paper: p.paper.clone(),
                source: p.source.clone(),
                model: p.model.clone(),
                method: p.method.clone(),
                w_bits: p.w_bits.clone(),
                a_bits: p.a_bits.clone(),
                metric: p.metric.clone(),
                published: p.value,
                reproduced: got.map(|m| m.mean),
                delta: got.map(|m| m.mean - p.value),
                tolerance,
                seeds: got.map_or(0, |m| m.seeds),
                proxy: got.map(|m| m.proxy.clone()).unwrap_or_default(),
                verdict,
            }
        })
        .collect()
}

/// Verdict counts, in the order of the summary line.
pub fn counts(rows: &[ComparisonRow]) -> [usize; 4] {
    let n = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    [
        n(Verdict::Match),
        n(Verdict::Direction),
        n(Verdict::Deviates),
        n(Verdict::Missing),
    ]
}

/// `<paper>: match=N direction=N deviates=N missing=N`.
pub fn summary_line(paper_dir: &str, rows: &[ComparisonRow]) -> String {
    let [m, d, x, s] = counts(rows);
    format!("{paper_dir}: match={m} direction={d} deviates={x} missing={s}")
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
                baseline_method: "float".into(),
            }],
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
        );
        assert_eq!(rows[0].verdict, Verdict::Match);
        assert_eq!(rows[0].seeds, 2);
        assert!((rows[0].reproduced.unwrap() - 76.3).abs() < 1e-9);
        assert_eq!(rows[1].verdict, Verdict::Deviates);
        assert_eq!(rows[2].verdict, Verdict::Missing);
        assert_eq!(
            summary_line("p", &rows),
            "p: match=1 direction=0 deviates=1 missing=1"
        );
    }

    #[test]
    fn proxy_rows_are_judged_by_ordering_against_the_baseline() {
        let proxy = "Fashion-MNIST, ResNet-8";
        let rows = compare(
            &experiments(),
            &[
                measured("float", 92.0, proxy, 0),
                measured("int8", 91.8, proxy, 0),
                measured("int4", 93.0, proxy, 0),
            ],
            "full",
        );
        let verdicts: Vec<_> = rows.iter().map(|r| r.verdict).collect();
        assert_eq!(
            verdicts,
            [Verdict::Direction, Verdict::Direction, Verdict::Deviates]
        );
    }

    #[test]
    fn proxy_row_without_its_baseline_is_missing_and_smoke_rows_are_ignored() {
        let rows = compare(
            &experiments(),
            &[measured("int8", 91.8, "proxy", 0)],
            "full",
        );
        assert_eq!(rows[1].verdict, Verdict::Missing);
        let smoke = ResultRow {
            profile: "smoke".into(),
            ..measured("float", 76.0, "", 0)
        };
        assert_eq!(
            compare(&experiments(), &[smoke], "full")[0].verdict,
            Verdict::Missing
        );
    }
}
