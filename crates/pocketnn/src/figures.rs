//! PocketNN's figure: test accuracy per epoch, ours (one line per generator and seed) against the
//! author's own runs (the README transcript's 3 epochs and the demo GIF's 10, hollow markers) and the
//! abstract's number. Drawn from the committed `epochs.csv` and `experiments/pocketnn/published.csv`,
//! so it is redrawn without training (`pocketnn figures`).

use crate::tables::EpochRow;
use repro::datasets::DatasetName;
use repro::plot::{Chart, Series, color};
use repro::published::PublishedRow;
use std::collections::BTreeMap;

/// Test images of both data sets' test splits: accuracy = correct / 100 (the smoke profile's 200-image
/// slice reads low by that factor; its figure only proves the plumbing).
const TEST_IMAGES: f64 = 10_000.0;

/// `(file name, SVG)` per data set with rows of `profile` in `epochs`.
pub fn epoch_accuracy(
    epochs: &[EpochRow],
    published: &[PublishedRow],
    profile: &str,
) -> Vec<(String, String)> {
    let mut figures = Vec::new();
    for d in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let mut runs: BTreeMap<(String, u64), Vec<(f64, f64)>> = BTreeMap::new();
        for r in epochs
            .iter()
            .filter(|r| r.dataset == d.paper_name() && r.profile == profile)
        {
            runs.entry((r.rng.clone(), r.seed)).or_default().push((
                f64::from(r.epoch),
                100.0 * f64::from(r.test_correct) / TEST_IMAGES,
            ));
        }
        if runs.is_empty() {
            continue;
        }
        let last_epoch = runs
            .values()
            .flat_map(|p| p.iter().map(|q| q.0))
            .fold(1.0, f64::max);
        let mut series: Vec<Series> = runs
            .into_iter()
            .enumerate()
            .map(|(i, ((rng, seed), mut points))| {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series::line(&format!("ours, {rng} seed {seed}"), points, color(i))
            })
            .collect();
        let of = |source: &str| -> Vec<(f64, f64)> {
            published
                .iter()
                .filter(|p| p.dataset == d.paper_name() && p.source.starts_with(source))
                .filter_map(|p| {
                    let epoch: f64 = p
                        .metric
                        .strip_prefix("test_accuracy_pct_epoch")?
                        .parse()
                        .ok()?;
                    Some((epoch, p.value))
                })
                .collect()
        };
        for (k, (source, label)) in [
            (
                "repo README transcript",
                "author's run, README transcript (published)",
            ),
            (
                "repo demo_capture.gif",
                "author's run, demo GIF (published)",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let points = of(source);
            if !points.is_empty() {
                series.push(Series::published(label, points, color(6 + k)));
            }
        }
        if let Some(p) = published.iter().find(|p| {
            p.dataset == d.paper_name() && p.source == "Abstract" && p.metric == "test_accuracy_pct"
        }) {
            series.push(Series::line(
                &format!("paper's abstract ({} %)", p.value),
                vec![(1.0, p.value), (last_epoch, p.value)],
                "#000000".into(),
            ));
        }
        let chart = Chart {
            title: format!(
                "PocketNN on {}: test accuracy per epoch, ours against the author's runs",
                d.paper_name()
            ),
            x_label: "epoch".into(),
            y_label: "test accuracy (%)".into(),
            series,
            ..Default::default()
        };
        figures.push((
            format!("epoch_accuracy_{}.svg", d.dir_name()),
            chart.render(),
        ));
    }
    figures
}
