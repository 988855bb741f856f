//! Jacob et al.'s Table 4.7 (weight bits by activation bits) as a heat map: the relative change of
//! accuracy against float per bit pair, ours beside the paper's, on one colour scale. Drawn from the
//! committed `e4_bits.csv` and `experiments/integer-qat/published.csv` (`integer-qat figures`; `bits`
//! draws it too).

use repro::plot::HeatMap;
use repro::published::PublishedRow;
use repro::results::ResultRow;

/// The source and metric of the Table 4.7 rows, as both tables spell them.
const SOURCE: &str = "arXiv:1712.05877v1 Table 4.7 / CVPR2018 Table 4.6";
const METRIC: &str = "rel_change_avg_category_precision_pct";
/// Bit widths of the table's rows and columns, widest first as in the paper.
const BITS: [&str; 5] = ["8", "7", "6", "5", "4"];

/// The heat map, or `None` when `rows` hold no Table 4.7 row of `profile`.
pub fn bits_heat_map(
    rows: &[ResultRow],
    published: &[PublishedRow],
    profile: &str,
) -> Option<String> {
    let ours: Vec<(&str, &str, f64)> = rows
        .iter()
        .filter(|r| r.profile == profile && r.source == SOURCE && r.metric == METRIC)
        .map(|r| (r.w_bits.as_str(), r.a_bits.as_str(), r.value))
        .collect();
    if ours.is_empty() {
        return None;
    }
    let paper: Vec<(&str, &str, f64)> = published
        .iter()
        .filter(|p| p.source == SOURCE && p.metric == METRIC)
        .map(|p| (p.w_bits.as_str(), p.a_bits.as_str(), p.value))
        .collect();
    let grid = |cells: &[(&str, &str, f64)]| -> Vec<Vec<Option<f64>>> {
        BITS.iter()
            .map(|w| {
                BITS.iter()
                    .map(|a| cells.iter().find(|c| c.0 == *w && c.1 == *a).map(|c| c.2))
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
