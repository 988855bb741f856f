//! Result rows: per-epoch numbers (`epochs.csv`) and the rows that reproduce published numbers
//! (`accuracy.csv`, joined by `repro compare` with `experiments/pocketnn/published.csv`).
//!
//! A run writes only the published rows whose setting it mirrors: the README transcript (MNIST,
//! 3 epochs), the demo GIF (MNIST, 10 epochs) and the abstract (the long runs: 30 epochs MNIST,
//! 20 epochs Fashion-MNIST, the lengths at which the reference reaches the paper's accuracy).

use crate::train::EpochStats;
use repro::datasets::DatasetName;
use repro::results::{Keyed, Measured, ResultRow, RunStamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PAPER: &str = "PocketNN";
/// Folder under `results/` and `experiments/`.
pub const PAPER_DIR: &str = "pocketnn";
pub const METHOD_PAPER: &str = "PocketNN integer-only DFA + pocket tanh";
pub const METHOD_README: &str = "PocketNN DFA (official code; lrInv 1000; batch 20)";
pub const METHOD_GIF: &str =
    "PocketNN DFA (official code; lrInv 1000 -> 2000 at epoch 10; batch 20)";
pub const METHOD_FLOAT: &str = "float32 BP (equivalent DNN)";
pub const SOURCE_ABSTRACT: &str = "Abstract";
pub const SOURCE_README: &str = "repo README transcript (3 epochs)";
pub const SOURCE_GIF: &str = "repo demo_capture.gif (10 epochs; Windows VS2019 x64 Debug)";
pub const SOURCE_FLOAT_MNIST: &str = "Abstract (derived 96.98+1.02); quoted by NITRO-D README";
pub const SOURCE_FLOAT_FASHION: &str = "Abstract (derived 87.70+2.09); quoted by NITRO-D README";
pub const METRIC_TEST: &str = "test_accuracy_pct";
/// Not in the paper: the last epoch's accuracy, beside the best epoch's (which the paper's number
/// appears to be; dossier §5.2).
pub const METRIC_TEST_LAST: &str = "test_accuracy_pct_last_epoch";
pub const METRIC_GAP: &str = "accuracy_gap_vs_pocketnn_pctpoint";

/// The paper's architecture for a data set (input, hidden..., classes). The paper has two data sets;
/// the binary admits only those ([`DatasetName::require_grey`]), so every other name is Fashion-MNIST's.
pub fn paper_widths(dataset: DatasetName) -> &'static [usize] {
    match dataset {
        DatasetName::Mnist => &[784, 100, 50, 10],
        _ => &[784, 200, 100, 50, 10],
    }
}

/// Epochs of the long runs that stand for the paper's (unpublished) training length.
pub fn paper_epochs(dataset: DatasetName) -> u32 {
    match dataset {
        DatasetName::Mnist => 30,
        _ => 20,
    }
}

/// `MLP 784-100-50-10`, the model string of `published.csv`.
pub fn model_name(widths: &[usize]) -> String {
    let w: Vec<String> = widths.iter().map(usize::to_string).collect();
    format!("MLP {}", w.join("-"))
}

/// Everything that determines the epoch rows of one run: two runs that differ in any of these write
/// different rows, so a smoke run with another activation never replaces a full run's row.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochSetting {
    pub dataset: DatasetName,
    pub profile: String,
    /// Layer widths as [`model_name`] spells them.
    pub model: String,
    /// PocketActivation as the CLI spells it (`pocket-tanh`).
    pub activation: String,
    pub batch: usize,
    pub lr_inv: i32,
    pub rng: String,
    pub seed: u64,
    pub epochs_total: u32,
}

impl EpochSetting {
    /// The row of one finished epoch.
    pub fn row(&self, s: &EpochStats) -> EpochRow {
        EpochRow {
            dataset: self.dataset.paper_name().into(),
            profile: self.profile.clone(),
            model: self.model.clone(),
            activation: self.activation.clone(),
            batch: self.batch,
            lr_inv: self.lr_inv,
            rng: self.rng.clone(),
            seed: self.seed,
            epochs_total: self.epochs_total,
            epoch: s.epoch,
            sum_loss: s.sum_loss,
            train_correct: s.train_correct,
            test_correct: s.test_correct,
            seconds: s.elapsed.as_secs_f64(),
        }
    }
}

/// One line of `results/pocketnn/epochs.csv`: the run's setting, then the epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub dataset: String,
    pub profile: String,
    pub model: String,
    pub activation: String,
    pub batch: usize,
    pub lr_inv: i32,
    pub rng: String,
    pub seed: u64,
    pub epochs_total: u32,
    pub epoch: u32,
    pub sum_loss: i32,
    pub train_correct: u32,
    pub test_correct: u32,
    pub seconds: f64,
}

impl Keyed for EpochRow {
    /// Every setting column plus the epoch; only the measured numbers are left out.
    fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:05}\u{1f}{:05}",
            self.dataset,
            self.profile,
            self.model,
            self.activation,
            self.batch,
            self.lr_inv,
            self.rng,
            self.seed,
            self.epochs_total,
            self.epoch
        )
    }
}

/// `100 · part / whole`: accuracies are reported in percent, as in the paper.
pub fn pct(part: u32, whole: usize) -> f64 {
    100.0 * f64::from(part) / whole as f64
}

/// The identity shared by every row of one run.
#[derive(Debug, Clone)]
pub struct RowContext {
    pub dataset: DatasetName,
    pub model: String,
    pub profile: String,
    pub seed: u64,
    pub epochs: u32,
    pub run_id: String,
}

impl RowContext {
    /// A row for a published key (`source`, `method`, bit widths, `metric`).
    pub fn row(
        &self,
        source: &str,
        method: &str,
        bits: (&str, &str),
        metric: &str,
        value: f64,
    ) -> ResultRow {
        ResultRow::new(
            Measured {
                paper: PAPER,
                source,
                dataset: self.dataset.paper_name(),
                model: &self.model,
                method,
                bits,
                metric,
                proxy: "",
            },
            value,
            &RunStamp {
                profile: &self.profile,
                seed: self.seed,
                epochs: self.epochs,
                run_id: &self.run_id,
            },
        )
    }
}

/// PocketNN's bit widths in `published.csv`: int16-range weights, 8-bit activations.
const POCKET_BITS: (&str, &str) = ("16", "8");
/// Float baseline bit widths.
pub const FLOAT_BITS: (&str, &str) = ("32", "32");

/// A published setting a run of at least `epochs` epochs mirrors with its first `epochs` epochs.
struct Setting {
    source: &'static str,
    method: &'static str,
    epochs: u32,
}

/// The settings of the official material for a data set: the README transcript (MNIST, 3 epochs),
/// the demo GIF (MNIST, 10 epochs), and the abstract (the long run).
fn settings(dataset: DatasetName) -> Vec<Setting> {
    let mut s = Vec::new();
    if dataset == DatasetName::Mnist {
        s.push(Setting {
            source: SOURCE_README,
            method: METHOD_README,
            epochs: 3,
        });
        s.push(Setting {
            source: SOURCE_GIF,
            method: METHOD_GIF,
            epochs: 10,
        });
    }
    s.push(Setting {
        source: SOURCE_ABSTRACT,
        method: METHOD_PAPER,
        epochs: paper_epochs(dataset),
    });
    s
}

/// Epochs after which a run needs a full training-set pass for the rows it mirrors (the README and
/// GIF settings report "Final training numCorrect").
pub fn train_pass_epochs(dataset: DatasetName) -> Vec<u32> {
    settings(dataset)
        .iter()
        .filter(|s| s.source != SOURCE_ABSTRACT)
        .map(|s| s.epochs)
        .collect()
}

/// The published rows a reference-configuration PocketNN run mirrors: every setting whose length is
/// at most the run's, from the run's first epochs (a shorter run is exactly that prefix, see
/// [`crate::train::train`]). Rows carry the setting's epoch count.
pub fn mirrored_rows(
    ctx: &RowContext,
    history: &[EpochStats],
    n_train: usize,
    n_test: usize,
) -> Vec<ResultRow> {
    let mut rows = Vec::new();
    let test = |s: &EpochStats| pct(s.test_correct, n_test);
    for setting in settings(ctx.dataset) {
        let Some(prefix) = history.get(..setting.epochs as usize) else {
            continue;
        };
        let ctx = RowContext {
            epochs: setting.epochs,
            ..ctx.clone()
        };
        let row = |metric: &str, value: f64| {
            ctx.row(setting.source, setting.method, POCKET_BITS, metric, value)
        };
        if setting.source == SOURCE_ABSTRACT {
            let best = prefix
                .iter()
                .max_by_key(|s| (s.test_correct, std::cmp::Reverse(s.epoch)));
            rows.extend(best.map(|s| row(METRIC_TEST, test(s))));
            rows.extend(prefix.last().map(|s| row(METRIC_TEST_LAST, test(s))));
            continue;
        }
        for s in prefix {
            rows.push(row(&format!("{METRIC_TEST}_epoch{}", s.epoch), test(s)));
        }
        if setting.source == SOURCE_README {
            for s in prefix {
                let metric = format!("train_running_accuracy_epoch{}", s.epoch);
                rows.push(row(&metric, pct(s.train_correct, n_train)));
            }
        }
        if let Some(pass) = prefix.last().and_then(|s| s.train_pass_correct) {
            rows.push(row("train_accuracy_final_pass", pct(pass, n_train)));
        }
    }
    rows
}

/// Source of the float baseline's published accuracy for a data set.
pub fn float_source(dataset: DatasetName) -> &'static str {
    match dataset {
        DatasetName::Mnist => SOURCE_FLOAT_MNIST,
        _ => SOURCE_FLOAT_FASHION,
    }
}

/// `float − PocketNN` gap rows, one per seed: for each data set and each seed with both a float-baseline
/// row and a PocketNN last-epoch row in `table` (same profile), the float accuracy minus PocketNN's.
///
/// Pairing by seed lets the claims judge the gap over seeds. Both sides are taken at their last epoch:
/// the float baseline reports its last epoch, and picking PocketNN's best epoch instead would select on
/// the test set for one side only.
pub fn gap_rows(table: &[ResultRow], profile: &str, run_id: &str) -> Vec<ResultRow> {
    let of =
        |d: DatasetName, source: &str, method: &str, metric: &str| -> BTreeMap<u64, &ResultRow> {
            table
                .iter()
                .filter(|r| {
                    r.profile == profile
                        && r.dataset == d.paper_name()
                        && r.source == source
                        && r.method == method
                        && r.metric == metric
                })
                .map(|r| (r.seed, r))
                .collect()
        };
    let mut gaps = Vec::new();
    for d in [DatasetName::Mnist, DatasetName::FashionMnist] {
        // The float baseline's `METRIC_TEST` is its last epoch.
        let float = of(d, float_source(d), METHOD_FLOAT, METRIC_TEST);
        let pocket = of(d, SOURCE_ABSTRACT, METHOD_PAPER, METRIC_TEST_LAST);
        for (seed, f) in &float {
            if let Some(p) = pocket.get(seed) {
                gaps.push(ResultRow {
                    source: SOURCE_ABSTRACT.into(),
                    metric: METRIC_GAP.into(),
                    value: f.value - p.value,
                    run_id: run_id.into(),
                    ..(*f).clone()
                });
            }
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use repro::published::PaperExperiments;
    use std::time::Duration;

    fn stats(epoch: u32, test_correct: u32) -> EpochStats {
        EpochStats {
            epoch,
            lr_inv: 1000,
            sum_loss: 1,
            train_correct: 50_000,
            test_correct,
            train_pass_correct: [3, 10].contains(&epoch).then_some(55_000),
            elapsed: Duration::from_millis(10),
        }
    }

    fn ctx(dataset: DatasetName, epochs: u32) -> RowContext {
        RowContext {
            dataset,
            model: model_name(paper_widths(dataset)),
            profile: "full".into(),
            seed: 1,
            epochs,
            run_id: "r".into(),
        }
    }

    /// Every row a run can emit must join a published row exactly (or be one of the extra metrics).
    #[test]
    fn mirrored_rows_use_published_keys() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let exp = PaperExperiments::load(&root, PAPER_DIR).unwrap();
        let mut rows = Vec::new();
        for (d, e) in [(DatasetName::Mnist, 30), (DatasetName::FashionMnist, 20)] {
            let history: Vec<_> = (1..=e).map(|i| stats(i, 9000 + i)).collect();
            rows.extend(mirrored_rows(&ctx(d, e), &history, 60_000, 10_000));
        }
        for d in [DatasetName::Mnist, DatasetName::FashionMnist] {
            rows.push(ctx(d, 20).row(float_source(d), METHOD_FLOAT, FLOAT_BITS, METRIC_TEST, 98.0));
        }
        rows.extend(gap_rows(&rows.clone(), "full", "r"));
        let joined = rows
            .iter()
            .filter(|r| {
                exp.published.iter().any(|p| {
                    (
                        &p.paper, &p.source, &p.model, &p.method, &p.w_bits, &p.a_bits, &p.metric,
                    ) == (
                        &r.paper, &r.source, &r.model, &r.method, &r.w_bits, &r.a_bits, &r.metric,
                    )
                })
            })
            .count();
        let extra = rows.iter().filter(|r| r.metric == METRIC_TEST_LAST).count();
        assert_eq!(extra, 2);
        assert_eq!(
            joined + extra,
            rows.len(),
            "a row does not join published.csv"
        );
        assert_eq!(joined, exp.published.len(), "a published row has no mirror");
    }

    #[test]
    fn best_epoch_is_the_earliest_maximum_and_gap_is_float_minus_last() {
        let mut history: Vec<_> = (1..=30).map(|i| stats(i, 9000)).collect();
        history[1].test_correct = 9700;
        history[2].test_correct = 9700;
        history[29].test_correct = 9600;
        let c = ctx(DatasetName::Mnist, 30);
        let rows = mirrored_rows(&c, &history, 60_000, 10_000);
        let readme: Vec<_> = rows.iter().filter(|r| r.source == SOURCE_README).collect();
        assert_eq!(readme.len(), 7);
        assert!(readme.iter().all(|r| r.epochs == 3));
        let pass = readme
            .iter()
            .find(|r| r.metric == "train_accuracy_final_pass")
            .unwrap();
        assert!((pass.value - 100.0 * 55_000.0 / 60_000.0).abs() < 1e-9);
        // A 5-epoch run mirrors only the README setting.
        let short = mirrored_rows(&ctx(DatasetName::Mnist, 5), &history[..5], 60_000, 10_000);
        assert!(short.iter().all(|r| r.source == SOURCE_README));
        let best = rows.iter().find(|r| r.metric == METRIC_TEST).unwrap();
        assert_eq!(best.value, 97.0);
        let last = rows.iter().find(|r| r.metric == METRIC_TEST_LAST).unwrap();
        assert_eq!(last.value, 96.0);
        let mut table = rows.clone();
        table.push(c.row(
            SOURCE_FLOAT_MNIST,
            METHOD_FLOAT,
            FLOAT_BITS,
            METRIC_TEST,
            98.5,
        ));
        // A float seed without a PocketNN run of the same seed has no gap: the gap is paired by seed.
        table.push(
            RowContext {
                seed: 99,
                ..ctx(DatasetName::Mnist, 30)
            }
            .row(
                SOURCE_FLOAT_MNIST,
                METHOD_FLOAT,
                FLOAT_BITS,
                METRIC_TEST,
                90.0,
            ),
        );
        let gaps = gap_rows(&table, "full", "g");
        assert_eq!(gaps.len(), 1);
        assert!(
            (gaps[0].value - 2.5).abs() < 1e-9,
            "98.5 minus the last epoch's 96.0"
        );
        assert_eq!(gaps[0].method, METHOD_FLOAT);
    }

    #[test]
    fn epoch_rows_key_by_every_setting_and_the_epoch() {
        let base = EpochSetting {
            dataset: DatasetName::Mnist,
            profile: "full".into(),
            model: model_name(paper_widths(DatasetName::Mnist)),
            activation: "pocket-tanh".into(),
            batch: 20,
            lr_inv: 1000,
            rng: "glibc".into(),
            seed: 1,
            epochs_total: 30,
        };
        let a = base.row(&stats(1, 1));
        assert_eq!(
            a.key(),
            EpochRow {
                seconds: 9.0,
                ..a.clone()
            }
            .key()
        );
        assert_ne!(a.key(), base.row(&stats(2, 1)).key());
        let variants = [
            EpochSetting {
                dataset: DatasetName::FashionMnist,
                ..base.clone()
            },
            EpochSetting {
                profile: "smoke".into(),
                ..base.clone()
            },
            EpochSetting {
                model: "MLP 784-10".into(),
                ..base.clone()
            },
            EpochSetting {
                activation: "pocket-sigmoid".into(),
                ..base.clone()
            },
            EpochSetting {
                batch: 10,
                ..base.clone()
            },
            EpochSetting {
                lr_inv: 500,
                ..base.clone()
            },
            EpochSetting {
                rng: "pcg".into(),
                ..base.clone()
            },
            EpochSetting {
                seed: 2,
                ..base.clone()
            },
            EpochSetting {
                epochs_total: 3,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.row(&stats(1, 1)).key(), a.key(), "{v:?}");
        }
    }
}
