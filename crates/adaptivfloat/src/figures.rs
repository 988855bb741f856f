//! AdaptivFloat's figures, drawn from the committed tables (`adaptivfloat figures`, also run after
//! `rmse` and `accuracy`):
//! - quantization error against bit width per format, on the trained stand-ins' weights and on the
//!   synthetic families (the paper's Fig. 4 compares the formats' RMSE this way);
//! - Tables 2 and 3 as line plots: accuracy (or error) against bits per format after post-training
//!   quantization, after retraining, and with activations quantized too; ours on the left axis and the paper's numbers (another model, another metric scale)
//!   as hollow markers on the right axis;
//! - the learning curves of every stand-in (float training and retraining), the evidence that each
//!   converged.

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
                log_y: true,
                series,
                ..Default::default()
            };
            (format!("rmse_{}.svg", slug(family)), chart.render())
        })
        .collect()
}

/// One accuracy-against-bits table of the paper: its source, the procedure part of its method names,
/// how a title describes it and the prefix of its figures' file names.
struct BitsTable {
    source: &'static str,
    procedure: &'static str,
    title: &'static str,
    file: &'static str,
}

const BITS_TABLES: [BitsTable; 3] = [
    BitsTable {
        source: "DAC2020 Table 2",
        procedure: "PTQ-weights-only",
        title: "Table 2, post-training quantization of the weights",
        file: "table2_ptq",
    },
    BitsTable {
        source: "DAC2020 Table 2",
        procedure: "QAR-weights-only",
        title: "Table 2, quantization-aware retraining of the weights",
        file: "table2_qar",
    },
    BitsTable {
        source: "DAC2020 Table 3",
        procedure: "QAR-weights+activations",
        title: "Table 3, weights and activations quantized, with retraining",
        file: "table3",
    },
];

/// The validation learning curves of each stand-in (`curves.csv` rows of `profile`), one chart per
/// paper model: the float training, then every format's weight-only retraining at the narrowest
/// width, continuing where the float run ended.
pub fn learning_curves(rows: &[ResultRow], profile: &str) -> Vec<(String, String)> {
    let val: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.profile == profile && r.metric == repro::curves::VAL_TOP1)
        .collect();
    let models: BTreeSet<&str> = val.iter().map(|r| r.model.as_str()).collect();
    models
        .into_iter()
        .filter_map(|model| {
            let of_model: Vec<&ResultRow> =
                val.iter().copied().filter(|r| r.model == model).collect();
            let float_epochs = of_model
                .iter()
                .filter(|r| r.method == "FP32/baseline")
                .map(|r| r.epochs)
                .max()?;
            let narrowest = of_model
                .iter()
                .filter(|r| r.method.ends_with("/QAR-weights-only"))
                .filter_map(|r| r.w_bits.parse::<u32>().ok())
                .min()?
                .to_string();
            let curves = repro::curves::group(of_model.iter().copied(), |r| {
                if r.method == "FP32/baseline" {
                    Some(("FP32".into(), 0))
                } else if r.method.ends_with("/QAR-weights-only") && r.w_bits == narrowest {
                    Some((format!("{} W{narrowest}", r.method), float_epochs))
                } else {
                    None
                }
            });
            let title = format!(
                "{model} stand-in: validation top-1 per epoch (FP32, then weight-only retraining)"
            );
            let svg = repro::curves::chart(&title, "validation top-1 (%)", &curves);
            Some((format!("curves_{}.svg", slug(model)), svg))
        })
        .collect()
}

/// Tables 2 (post-training quantization and retraining) and 3 (weights and activations) as accuracy
/// against bits, one figure per table and model.
pub fn accuracy_vs_bits(
    rows: &[ResultRow],
    published: &[PublishedRow],
    profile: &str,
) -> Vec<(String, String)> {
    BITS_TABLES
        .iter()
        .flat_map(|t| table_vs_bits(t, rows, published, profile))
        .collect()
}

fn table_vs_bits(
    table: &BitsTable,
    rows: &[ResultRow],
    published: &[PublishedRow],
    profile: &str,
) -> Vec<(String, String)> {
    let (source, procedure) = (table.source, table.procedure);
    let bits = |b: &str| b.parse::<f64>().ok();
    let models: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.profile == profile && r.source == source && r.method.ends_with(procedure))
        .map(|r| r.model.as_str())
        .collect();
    models
        .into_iter()
        .map(|model| {
            let mut series = Vec::new();
            let mut metric = String::new();
            for f in FORMATS {
                let method = format!("{f}/{procedure}");
                let mut ours: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| {
                        r.profile == profile
                            && r.source == source
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
                    .filter(|p| p.source == source && p.model == model && p.method == method)
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
                title: format!("{}: {model} against word size", table.title),
                x_label: "word size (bits)".into(),
                y_label: "ours: the stand-in's value (its proxy names the metric)".into(),
                y2_label: Some(format!(
                    "paper: {metric} of {}",
                    model.split(" (").next().unwrap_or(model)
                )),
                series,
                ..Default::default()
            };
            (
                format!("{}_{}.svg", table.file, slug(model)),
                chart.render(),
            )
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
