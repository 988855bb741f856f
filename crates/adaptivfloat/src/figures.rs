//! AdaptivFloat's figures, drawn from the committed tables (`adaptivfloat figures`, also run after
//! `rmse` and `accuracy`):
//! - quantization error against bit width per format, on the trained stand-ins' weights and on the
//!   synthetic families (the paper's Fig. 4 compares the formats' RMSE this way);
//! - Table 2 as line plots: accuracy (or error) against weight bits per format after post-training
//!   quantization, ours on the left axis and the paper's numbers (another model, another metric scale)
//!   as hollow markers on the right axis.

use crate::rmse::RmseRow;
use repro::plot::{Chart, Series, color};
use repro::published::PublishedRow;
use repro::results::ResultRow;
use std::collections::{BTreeMap, BTreeSet};

/// The formats in the paper's order, each with one colour in every figure.
const FORMATS: [&str; 5] = ["AdaptivFloat", "Float", "BFP", "Uniform", "Posit"];

/// A file-name-safe slug of a family or model name (its part before any parenthesised description).
fn slug(name: &str) -> String {
    let head = name.split(" (").next().unwrap_or(name);
    let mut s: String = head
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}

fn format_color(format: &str) -> String {
    color(
        FORMATS
            .iter()
            .position(|f| *f == format)
            .unwrap_or(FORMATS.len()),
    )
}

/// `(bits, mean RMSE)` points per format.
type FormatCurves<'a> = BTreeMap<&'a str, Vec<(f64, f64)>>;

/// Mean RMSE against bits, one figure per (study, family) of `profile`.
pub fn rmse_vs_bits(rows: &[RmseRow], profile: &str) -> Vec<(String, String)> {
    let mut curves: BTreeMap<(&str, &str), FormatCurves> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.profile == profile && r.stat == "mean")
        .filter(|r| r.study == "P1b synthetic" || r.study == "P1d trained weights")
    {
        curves
            .entry((r.study.as_str(), r.family.as_str()))
            .or_default()
            .entry(r.format.as_str())
            .or_default()
            .push((f64::from(r.bits), r.value));
    }
    curves
        .into_iter()
        .map(|((study, family), by_format)| {
            let series = FORMATS
                .iter()
                .filter_map(|f| {
                    let mut points = by_format.get(f)?.clone();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Some(Series::line(f, points, format_color(f)))
                })
                .collect();
            let what = if study == "P1d trained weights" {
                ""
            } else {
                "synthetic "
            };
            let chart = Chart {
                title: format!(
                    "Quantization error of each format against bit width: {what}{family}"
                ),
                x_label: "word size (bits)".into(),
                y_label: "mean RMSE over tensors (log scale)".into(),
                log_x: false,
                log_y: true,
                y2_label: None,
                log_y2: false,
                x_categories: Vec::new(),
                series,
            };
            (format!("rmse_{}.svg", slug(family)), chart.render())
        })
        .collect()
}

/// Table 2 (post-training quantization of the weights) as accuracy against bits, one figure per model.
pub fn table2_vs_bits(
    rows: &[ResultRow],
    published: &[PublishedRow],
    profile: &str,
) -> Vec<(String, String)> {
    const SOURCE: &str = "DAC2020 Table 2";
    const PROCEDURE: &str = "PTQ-weights-only";
    let bits = |b: &str| b.parse::<f64>().ok();
    let models: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.profile == profile && r.source == SOURCE)
        .map(|r| r.model.as_str())
        .collect();
    models
        .into_iter()
        .map(|model| {
            let mut series = Vec::new();
            let mut metric = String::new();
            for f in FORMATS {
                let method = format!("{f}/{PROCEDURE}");
                let mut ours: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| {
                        r.profile == profile
                            && r.source == SOURCE
                            && r.model == model
                            && r.method == method
                    })
                    .filter_map(|r| {
                        metric.clone_from(&r.metric);
                        Some((bits(&r.w_bits)?, r.value))
                    })
                    .collect();
                ours.sort_by(|a, b| a.0.total_cmp(&b.0));
                let paper: Vec<(f64, f64)> = published
                    .iter()
                    .filter(|p| p.source == SOURCE && p.model == model && p.method == method)
                    .filter_map(|p| Some((bits(&p.w_bits)?, p.value)))
                    .collect();
                if !ours.is_empty() {
                    series.push(Series::line(
                        &format!("{f} (ours, stand-in)"),
                        ours,
                        format_color(f),
                    ));
                }
                if !paper.is_empty() {
                    series.push(
                        Series::published(&format!("{f} (paper)"), paper, format_color(f))
                            .on_right_axis(),
                    );
                }
            }
            let chart = Chart {
                title: format!(
                    "Table 2, post-training quantization of the weights: {model} against word size"
                ),
                x_label: "word size of the weights (bits)".into(),
                y_label: "ours: the stand-in's value (its proxy names the metric)".into(),
                log_x: false,
                log_y: false,
                y2_label: Some(format!(
                    "paper: {metric} of {}",
                    model.split(" (").next().unwrap_or(model)
                )),
                log_y2: false,
                x_categories: Vec::new(),
                series,
            };
            (format!("table2_{}.svg", slug(model)), chart.render())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("Seq2Seq (4-layer LSTM enc)"), "seq2seq");
        assert_eq!(slug("Student-t(3)"), "student-t-3");
        assert_eq!(
            slug("Gaussian+0.1% 20-sigma outliers"),
            "gaussian-0-1-20-sigma-outliers"
        );
    }
}
