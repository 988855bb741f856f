//! The `train_step.csv` table: one row per model, mode, thread count and engine, merged by that key
//! (and the profile) through the workspace's result machinery, so a rerun replaces its own rows and
//! keeps the PyTorch rows that `scripts/bench_torch_train.py` adds beside them.

use repro::results::Keyed;
use serde::{Deserialize, Serialize};

/// Folder and table name under the results root.
pub const DIR: &str = "quant-train";
pub const TABLE: &str = "train_step";
/// The `engine` column of this binary's rows: Burn on flex with quant-train's kernels (the default
/// path of every training binary)...
pub const ENGINE: &str = "burn-flex";
/// ...and with them off, Burn's own operations only (`--burn-ops`; `quant_train::fast_path`).
pub const ENGINE_BURN_OPS: &str = "burn-flex-ops";
/// The Burn release of the workspace (checked against Cargo.lock by a test).
pub const BURN_VERSION: &str = "0.22.1";

/// One measured training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStepRow {
    /// Model key of the catalog (`resnet8@14`).
    pub model: String,
    /// The paper crate that trains it.
    pub paper: String,
    /// `fp` or the paper's QAT mode.
    pub mode: String,
    pub threads: usize,
    /// `burn-flex`, `burn-flex-ops` or `pytorch`.
    pub engine: String,
    /// What ran: library version, backend and build profile.
    pub build: String,
    pub batch: usize,
    /// Trainable parameters (the PyTorch script checks its model against the `fp` rows).
    pub params: usize,
    /// Median milliseconds per step over the timed calls.
    pub ms_per_step: f64,
    /// Mean milliseconds per step over the timed calls.
    pub ms_mean: f64,
    /// Process CPU time over wall time during the timed calls.
    pub cpu_per_wall: f64,
    pub timed_steps: usize,
    /// Milliseconds per step inside quant-train's kernels, by kernel, and the rest
    /// (`conv-fwd=…;conv-dx=…;…;rest=…`; empty for other engines).
    pub kernel_ms: String,
    /// `smoke` (`--quick`) or `full`.
    pub profile: String,
    pub run_id: String,
}

impl Keyed for TrainStepRow {
    fn key(&self) -> String {
        [
            self.model.as_str(),
            &self.mode,
            &self.threads.to_string(),
            &self.engine,
            &self.profile,
        ]
        .join("\u{1f}")
    }
}

/// The `build` column: Burn's version, the flex backend, and the profile this binary was built in
/// (the workspace's dev profile is optimised; Burn and the training kernels run without debug
/// assertions in it, see Cargo.toml).
pub fn build() -> String {
    let profile = if cfg!(debug_assertions) {
        "dev profile (opt-level 3)"
    } else {
        "release profile"
    };
    format!("burn {BURN_VERSION} flex, {profile}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_version_is_the_locked_one() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        let locked = format!("name = \"burn\"\nversion = \"{BURN_VERSION}\"");
        assert!(
            lock.contains(&locked),
            "Cargo.lock has another burn: update BURN_VERSION"
        );
    }
}
