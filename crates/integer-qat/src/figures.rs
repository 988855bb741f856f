//! The figures drawn from committed tables (`integer-qat figures`; the experiments draw theirs too):
//! Jacob et al.'s Table 4.7 (weight bits by activation bits) as a heat map, the relative change of
//! accuracy against float per bit pair, ours beside the paper's, on one colour scale (from
//! `e4_bits.csv` and `experiments/integer-qat/published.csv`); and the learning curves of every
//! trained experiment (from `curves.csv`).

use crate::experiments::COMPANION;
use crate::{T41, T43, T47};
use repro::curves::VAL_TOP1;
use repro::plot::HeatMap;
use repro::published::PublishedRow;
use repro::results::ResultRow;

/// The metric of the Table 4.7 rows, as both tables spell them.
const METRIC: &str = "rel_change_avg_category_precision_pct";
/// Bit widths of the table's rows and columns, widest first as in the paper.
const BITS: [&str; 5] = ["8", "7", "6", "5", "4"];

/// The heat map (each cell the mean over the seeds of `rows`), or `None` when `rows` hold no Table
/// 4.7 row of `profile`.
pub fn bits_heat_map(
    rows: &[ResultRow],
    published: &[PublishedRow],
    profile: &str,
) -> Option<String> {
    let ours: Vec<(&str, &str, f64)> = rows
        .iter()
        .filter(|r| r.profile == profile && r.source == T47 && r.metric == METRIC)
        .map(|r| (r.w_bits.as_str(), r.a_bits.as_str(), r.value))
        .collect();
    if ours.is_empty() {
        return None;
    }
    let paper: Vec<(&str, &str, f64)> = published
        .iter()
        .filter(|p| p.source == T47 && p.metric == METRIC)
        .map(|p| (p.w_bits.as_str(), p.a_bits.as_str(), p.value))
        .collect();
    let grid = |cells: &[(&str, &str, f64)]| -> Vec<Vec<Option<f64>>> {
        BITS.iter()
            .map(|w| {
                BITS.iter()
                    .map(|a| {
                        let seeds: Vec<f64> = cells
                            .iter()
                            .filter(|c| c.0 == *w && c.1 == *a)
                            .map(|c| c.2)
                            .collect();
                        repro::stats::mean(&seeds)
                    })
                    .collect()
            })
            .collect()
    };
    Some(
        HeatMap {
            title: "Table 4.7: relative change of accuracy against float, by weight and activation bits"
                .into(),
            x_label: "activation bits".into(),
            y_label: "weight bits".into(),
            x_values: BITS.iter().map(|b| b.to_string()).collect(),
            y_values: BITS.iter().map(|b| b.to_string()).collect(),
            panels: vec![
                ("ours (MobileNetV1 proxy on Fashion-MNIST)".into(), grid(&ours)),
                ("paper (face attributes, MobileNet)".into(), grid(&paper)),
            ],
            value_label: "relative change of accuracy against float (%)".into(),
        }
        .render(),
    )
}

/// The validation learning curves of each experiment that trains (`curves.csv` rows of `profile`):
/// `(file stem, svg)` per experiment with rows. Float runs are drawn from epoch 1; each QAT run
/// continues where the float run of its model ended. E4 draws float and the equal-bit QAT runs
/// (its 25 bit pairs would not be told apart).
pub fn learning_curves(rows: &[ResultRow], profile: &str) -> Vec<(String, String)> {
    let val: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.profile == profile && r.metric == VAL_TOP1)
        .collect();
    let float_epochs = |source: &str, model: &str| {
        val.iter()
            .filter(|r| r.source == source && r.model == model && r.method == "float")
            .map(|r| r.epochs)
            .max()
            .unwrap_or(0)
    };
    let mut charts = Vec::new();
    for (stem, source, title) in [
        (
            "curves_e1_depth",
            T41,
            "E1 (Table 4.1): ResNet-8/14/20 proxies",
        ),
        (
            "curves_e3_relu",
            T43,
            "E3 (Table 4.3): P-CNN with ReLU6 and ReLU",
        ),
        ("curves_e4_bits", T47, "E4 (Table 4.7): MobileNetV1 proxy"),
        (
            "curves_e5_mobilenet",
            COMPANION,
            "E5 (companion table): MobileNetV1 width x resolution",
        ),
    ] {
        let curves = repro::curves::group(val.iter().copied(), |r| {
            if r.source != source || (source == T47 && r.method != "float" && r.w_bits != r.a_bits)
            {
                return None;
            }
            let offset = match r.method.as_str() {
                "float" => 0,
                _ => float_epochs(source, &r.model),
            };
            // E5's grid has a line per model and method: short labels keep each legend entry on
            // one line, so the whole legend fits the canvas.
            let label = match source {
                COMPANION => format!(
                    "{} {}",
                    r.model.trim_start_matches("MobileNet_v1_"),
                    if r.method == "float" {
                        "float"
                    } else {
                        "QAT 8/8"
                    }
                ),
                _ => format!("{} {} {}/{}", r.model, r.method, r.w_bits, r.a_bits),
            };
            Some((label, offset))
        });
        if !curves.is_empty() {
            let title = format!("{title}: validation top-1 per epoch (float, then QAT)");
            let svg = repro::curves::chart(&title, "validation top-1 (%)", &curves);
            charts.push((stem.to_string(), svg));
        }
    }
    charts
}
