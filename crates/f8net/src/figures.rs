//! F8Net's main table as a figure: top-1 per proxy model for full precision, conventional INT8 (INT32
//! requantization multiplier) and F8Net, mean over seeds with one-standard-deviation error bars, and
//! the paper's ImageNet numbers as hollow markers on a second axis (another data set, another scale).
//! Drawn from the committed `main.csv` (`f8net figures`; every `--model` run redraws it).

use repro::plot::{Chart, Series, color};
use repro::published::PublishedRow;
use repro::results::ResultRow;
use repro::stats::{mean, sample_sd};
use std::collections::BTreeSet;

const METRIC: &str = "top1_acc_pct";

/// The table's methods, each as the prefix its result and published rows start with.
const GROUPS: [(&str, &str); 4] = [
    ("full precision", "full precision"),
    ("INT8 + INT32 multiplier", "conventional INT8"),
    ("F8Net", "F8Net fixed-point 8-bit only"),
    (
        "F8Net tiny fine-tuning",
        "F8Net fixed-point 8-bit only (tiny",
    ),
];

/// The group a method belongs to: the longest matching prefix (tiny fine-tuning before F8Net).
fn group_of(method: &str) -> Option<usize> {
    GROUPS
        .iter()
        .enumerate()
        .filter(|(_, (_, prefix))| method.starts_with(prefix))
        .max_by_key(|(_, (_, prefix))| prefix.len())
        .map(|(i, _)| i)
}

/// The figure, or `None` without top-1 rows of `profile`.
pub fn main_results(
    rows: &[ResultRow],
    published: &[PublishedRow],
    profile: &str,
) -> Option<String> {
    let ours: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.profile == profile && r.metric == METRIC)
        .collect();
    let models: Vec<String> = ours
        .iter()
        .map(|r| r.model.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if models.is_empty() {
        return None;
    }
    let datasets: Vec<&str> = ours
        .iter()
        .map(|r| r.dataset.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut series = Vec::new();
    for (g, (name, _)) in GROUPS.iter().enumerate() {
        let offset = (g as f64 - 1.5) * 0.15;
        let (mut points, mut errors, mut paper) = (Vec::new(), Vec::new(), Vec::new());
        for (i, model) in models.iter().enumerate() {
            let values: Vec<f64> = ours
                .iter()
                .filter(|r| &r.model == model && group_of(&r.method) == Some(g))
                .map(|r| r.value)
                .collect();
            if let Some(m) = mean(&values) {
                points.push((i as f64 + offset, m));
                errors.push(sample_sd(&values).unwrap_or(0.0));
            }
            if let Some(p) = published
                .iter()
                .find(|p| &p.model == model && p.metric == METRIC && group_of(&p.method) == Some(g))
            {
                paper.push((i as f64 + offset, p.value));
            }
        }
        if !points.is_empty() {
            series.push(
                Series::markers(
                    &format!("{name} (ours, mean ± sd over seeds)"),
                    points,
                    color(g),
                )
                .with_errors(errors),
            );
        }
        if !paper.is_empty() {
            series.push(
                Series::published(&format!("{name} (paper, ImageNet)"), paper, color(g))
                    .on_right_axis(),
            );
        }
    }
    Some(
        Chart {
            title: format!(
                "F8Net main table: top-1 per model, proxies on {} beside the paper's ImageNet numbers",
                datasets.join(", ")
            ),
            x_label: "model (the paper's; ours is its proxy)".into(),
            y_label: "ours: top-1 on the proxy (%)".into(),
            y2_label: Some("paper: ImageNet top-1 (%)".into()),
            x_categories: models
                .iter()
                .map(|m| m.split(" (").next().unwrap_or(m).to_string())
                .collect(),
            series,
            ..Default::default()
        }
        .render(),
    )
}

/// The validation curves of one proxy model (`model`: the published name its rows carry): one line
/// per stage (full precision, then each quantized stage after the FP epochs it started from), mean
/// over seeds with ± one standard deviation, from the `curves` table's rows of `profile`.
/// `fp_epochs` places the quantized stages; `None` without curve rows.
pub fn learning_curves(
    rows: &[ResultRow],
    model: &str,
    source_prefix: &str,
    profile: &str,
    fp_epochs: u32,
) -> Option<String> {
    let curves = repro::curves::group(rows, |r| {
        if r.metric != repro::curves::VAL_TOP1
            || r.model != model
            || r.profile != profile
            || !r.source.starts_with(source_prefix)
        {
            return None;
        }
        let offset = if r.w_bits == "32" { 0 } else { fp_epochs };
        Some((r.method.clone(), offset))
    });
    (!curves.is_empty()).then(|| {
        let title =
            format!("{model} proxy: validation top-1 per epoch (FP, then each 8-bit stage)");
        repro::curves::chart(&title, "validation top-1 (%)", &curves)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_fall_into_their_groups() {
        assert_eq!(
            group_of("full precision pretrained Baseline#1 (PyTorchCV resnet50b)"),
            Some(0)
        );
        assert_eq!(group_of("F8Net fixed-point 8-bit only"), Some(2));
        assert_eq!(
            group_of("F8Net fixed-point 8-bit only (tiny finetuning) from Baseline#1"),
            Some(3)
        );
        assert_eq!(group_of("F8Net QAT: PACT off"), None);
    }
}
