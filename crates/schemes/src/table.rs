//! The table as people read it, from the recorded rows: one line per scheme and bit width with
//! top-1 (mean ± sample sd over the seeds), storage, peak activation memory, latency and the
//! engine's operation counts, and the accuracy-against-size plot.

use std::collections::BTreeMap;

use repro::curves::VAL_TOP1;
use repro::plot::{Chart, Series, color};
use repro::results::ResultRow;
use repro::stats::mean_and_sd;

use crate::bench::METHODS;

/// `(method, w_bits, a_bits)`.
type Key = (String, String, String);

/// Per scheme, the values of each metric over the seeds.
fn grouped(rows: &[ResultRow], profile: &str) -> Vec<(Key, BTreeMap<String, Vec<f64>>)> {
    let mut order: Vec<Key> = Vec::new();
    let mut values: BTreeMap<Key, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.profile == profile) {
        let key = (r.method.clone(), r.w_bits.clone(), r.a_bits.clone());
        if !values.contains_key(&key) {
            order.push(key.clone());
        }
        values
            .entry(key)
            .or_default()
            .entry(r.metric.clone())
            .or_default()
            .push(r.value);
    }
    // Schemes in the order of `bench::METHODS` (a variant after its scheme's name; unknown ones
    // last), wider formats first.
    let rank = |(method, w, _): &Key| {
        let position = METHODS
            .iter()
            .position(|m| method == m || method.starts_with(&format!("{m} ")));
        (
            position.unwrap_or(METHODS.len()),
            -w.parse::<i64>().unwrap_or(0),
        )
    };
    order.sort_by_key(rank);
    order
        .into_iter()
        .map(|k| {
            let v = values.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// The mean of a scheme's values over the seeds (each group holds at least one).
fn mean(v: &[f64]) -> f64 {
    mean_and_sd(v).0
}

/// `mean ± sd (n)`, the sample standard deviation.
fn spread(v: &[f64]) -> String {
    let (m, sd) = mean_and_sd(v);
    format!("{m:.2} ± {sd:.2} ({})", v.len())
}

/// The Markdown table of `rows` of `profile`; `-` where a scheme has no such measurement.
pub fn markdown(rows: &[ResultRow], profile: &str) -> String {
    let columns = [
        ("model_bytes", "model bytes"),
        ("peak_activation_bytes", "peak activation bytes"),
        ("latency_ms_batch1_1thread", "batch-1 ms (1 thread)"),
        ("mul_8x8_per_inference", "8x8 products"),
        ("mul_32x32_per_inference", "32x32 multiplies"),
        ("shifts_per_inference", "shifts"),
        ("bytes_moved_per_inference", "bytes moved"),
    ];
    let mut out = String::from("| scheme | W/A bits | top-1 % |");
    for (_, title) in columns {
        out.push_str(&format!(" {title} |"));
    }
    out.push_str("\n|---|---|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for ((method, w, a), metrics) in grouped(rows, profile) {
        let top1 = metrics
            .get("top1_acc_pct")
            .map(|v| spread(v))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!("| {method} | {w}/{a} | {top1} |"));
        for (metric, _) in columns {
            let cell = match metrics.get(metric) {
                Some(v) if metric == "latency_ms_batch1_1thread" => format!("{:.4}", mean(v)),
                Some(v) => format!("{:.0}", mean(v)),
                None => "-".into(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

/// Top-1 against model bytes (log scale), one labelled point per scheme and bit width (means over
/// the seeds); `None` without rows of `profile`.
pub fn accuracy_size_svg(rows: &[ResultRow], profile: &str) -> Option<String> {
    let points: Vec<((f64, f64), String)> = grouped(rows, profile)
        .into_iter()
        .filter_map(|((method, w, a), m)| {
            let bytes = mean(m.get("model_bytes")?);
            let top1 = mean(m.get("top1_acc_pct")?);
            Some(((bytes, top1), format!("{method} {w}/{a}")))
        })
        .collect();
    let dataset = rows.first().map(|r| r.dataset.clone()).unwrap_or_default();
    let model = rows.first().map(|r| r.model.clone()).unwrap_or_default();
    (!points.is_empty()).then(|| {
        Chart {
            title: format!("Every scheme on one model: {model}, {dataset}"),
            x_label: "model bytes (log scale)".into(),
            y_label: "test top-1 (%)".into(),
            log_x: true,
            series: vec![Series::labelled_markers("scheme", points, color(0))],
            ..Default::default()
        }
        .render()
    })
}

/// Validation top-1 per epoch of the Burn trainings in the curve rows `rows` of `profile` (QAT
/// continuing the float model's epochs), mean and spread over the seeds; `None` without rows.
pub fn curves_svg(rows: &[ResultRow], profile: &str) -> Option<String> {
    let val: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.profile == profile && r.metric == VAL_TOP1)
        .collect();
    let float_epochs = val
        .iter()
        .filter(|r| r.w_bits == "32")
        .map(|r| r.epochs)
        .max()
        .unwrap_or(0);
    let curves = repro::curves::group(val.iter().copied(), |r| {
        let offset = if r.w_bits == "32" { 0 } else { float_epochs };
        Some((format!("{} {}/{}", r.method, r.w_bits, r.a_bits), offset))
    });
    let model = rows.first().map(|r| r.model.clone()).unwrap_or_default();
    (!curves.is_empty()).then(|| {
        repro::curves::chart(
            &format!("{model}: validation top-1 per epoch (float, then int8 QAT)"),
            "validation top-1 (%)",
            &curves,
        )
    })
}
