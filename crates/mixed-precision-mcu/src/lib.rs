//! Memory-driven mixed low precision for microcontrollers (Rusci, Capotondi, Benini, MLSys 2020).
//!
//! * [`mobilenet`]: MobileNetV1 layer shapes at any resolution and width (ImageNet and proxy families).
//! * [`chain`]: the chain of layers the pipeline trains and deploys (a MobileNetV1 or an MLP).
//! * [`memory`]: read-only and read-write footprints at any per-tensor bit widths.
//! * [`assign`]: the rule-based 8 -> 4 -> 2 bit-width assignment under a memory budget.
//! * [`tables`]: result rows of the exact memory tables.
//! * [`qat`]: a chain (TinyMbV1, an MLP) on quant-train with PACT floor activations and min/max
//!   weights at any bits.
//! * [`deploy`] / [`engine`]: conversion to, and the integer-only graph of, a mixed-precision net.
//! * [`latency`]: the cycle model of dossier §10.2 (assumptions labelled).

pub mod assign;
pub mod chain;
pub mod deploy;
pub mod engine;
pub mod experiments;
pub mod latency;
pub mod memory;
pub mod mobilenet;
pub mod qat;
pub mod tables;

use repro::results::{Measured, ResultRow, RunStamp};

/// The `paper` column of every row this crate reproduces (as in `published.csv`).
pub const PAPER: &str = "Rusci2020-MLSys (arXiv 1905.13082)";

/// Folder under `results/` and `experiments/`.
pub const PAPER_DIR: &str = "mixed-precision-mcu";

/// The key columns of a result row; [`RowKey::row`] adds the metric and value.
#[derive(Debug, Clone, Copy)]
pub struct RowKey<'a> {
    pub source: &'a str,
    pub dataset: &'a str,
    pub model: &'a str,
    pub method: &'a str,
    pub w_bits: &'a str,
    pub a_bits: &'a str,
    /// Empty when the paper's own data and model ran.
    pub proxy: &'a str,
}

impl RowKey<'_> {
    /// A row of this key; the caller stamps profile, seed, epochs and run id.
    pub fn row(&self, metric: &str, value: f64) -> ResultRow {
        ResultRow::new(
            Measured {
                paper: PAPER,
                source: self.source,
                dataset: self.dataset,
                model: self.model,
                method: self.method,
                bits: (self.w_bits, self.a_bits),
                metric,
                proxy: self.proxy,
            },
            value,
            &RunStamp {
                profile: "",
                seed: 0,
                epochs: 0,
                run_id: "",
            },
        )
    }
}
