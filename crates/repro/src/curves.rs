//! Learning curves from the `curves` result tables: a metric per epoch (validation top-1), one line
//! per training setting at its mean over seeds with ± one standard deviation as error bars. The
//! curve is the evidence that a proxy converged; the paper crates choose which rows make a line.

use std::collections::BTreeMap;

use crate::plot::{Chart, Series, color};
use crate::results::ResultRow;
use crate::stats::mean_and_sd;

/// Metric of the learning-curve rows: validation top-1 (%) after each epoch (`epochs` = epochs
/// finished).
pub const VAL_TOP1: &str = "val_top1_pct";
/// Metric of the learning-curve rows: mean training loss of each epoch.
pub const TRAIN_LOSS: &str = "train_loss";
/// Metric of a run's convergence row: the validation top-1 it gained over the last quarter of its
/// epochs, what a convergence check (`C1` in the papers' `claims.toml`) judges.
pub const VAL_GAIN: &str = "val_top1_gain_last_quarter_pct";

/// One line of a learning-curve chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    /// Epochs before this run's first (a fine-tuning run continues where its float run ended).
    pub offset: u32,
    /// Epoch -> the value of every seed at that epoch.
    pub by_epoch: BTreeMap<u32, Vec<f64>>,
}

/// Groups `rows` into curves: `line_of(row)` names the row's line and its epoch offset, or `None`
/// to leave the row out. Each row's `epochs` is the epoch it was measured after. Lines keep the
/// order in which they first appear.
pub fn group<'a>(
    rows: impl IntoIterator<Item = &'a ResultRow>,
    line_of: impl Fn(&ResultRow) -> Option<(String, u32)>,
) -> Vec<Curve> {
    let mut curves: Vec<Curve> = Vec::new();
    for row in rows {
        let Some((label, offset)) = line_of(row) else {
            continue;
        };
        let at = match curves.iter().position(|c| c.label == label) {
            Some(i) => i,
            None => {
                curves.push(Curve {
                    label,
                    offset,
                    by_epoch: BTreeMap::new(),
                });
                curves.len() - 1
            }
        };
        curves[at]
            .by_epoch
            .entry(row.epochs)
            .or_default()
            .push(row.value);
    }
    curves
}

/// The chart of `curves`: x is the epoch (plus each curve's offset), y the mean over seeds with
/// error bars of one sample standard deviation; the legend says how many seeds each line holds.
pub fn chart(title: &str, y_label: &str, curves: &[Curve]) -> String {
    let series = curves
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (points, errors): (Vec<(f64, f64)>, Vec<f64>) = c
                .by_epoch
                .iter()
                .map(|(&epoch, seeds)| {
                    let (m, sd) = mean_and_sd(seeds);
                    ((f64::from(epoch + c.offset), m), sd)
                })
                .unzip();
            let seeds = c.by_epoch.values().map(Vec::len).max().unwrap_or(0);
            Series::line(&format!("{} ({seeds} seeds)", c.label), points, color(i))
                .with_errors(errors)
        })
        .collect();
    Chart {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y_label.into(),
        series,
        ..Default::default()
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, seed: u64, epochs: u32, value: f64) -> ResultRow {
        ResultRow {
            paper: "p".into(),
            source: "T1".into(),
            dataset: "d".into(),
            model: "m".into(),
            method: method.into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: "val_top1_pct".into(),
            value,
            proxy: "x".into(),
            profile: "full".into(),
            seed,
            epochs,
            run_id: "r".into(),
        }
    }

    #[test]
    fn groups_seeds_by_epoch_and_offsets_fine_tuning() {
        let rows = [
            row("float", 0, 1, 80.0),
            row("float", 1, 1, 82.0),
            row("float", 0, 2, 85.0),
            row("qat", 0, 1, 84.0),
            row("skip", 0, 1, 1.0),
        ];
        let curves = group(&rows, |r| match r.method.as_str() {
            "skip" => None,
            "qat" => Some(("QAT".into(), 2)),
            m => Some((m.into(), 0)),
        });
        assert_eq!(curves.len(), 2);
        assert_eq!(curves[0].label, "float");
        assert_eq!(curves[0].by_epoch[&1], vec![80.0, 82.0]);
        assert_eq!(curves[1].offset, 2);
        let svg = chart("t", "validation top-1 (%)", &curves);
        assert!(svg.contains("float (2 seeds)") && svg.contains("QAT (1 seeds)"));
    }
}
