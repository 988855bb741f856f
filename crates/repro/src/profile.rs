//! The run profiles every experiment binary accepts (`--profile smoke|full|paper`).

use std::fmt;

/// How much of an experiment to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Profile {
    /// Seconds on a slice of the data: proves the pipeline end to end; what tests and CI run.
    Smoke,
    /// The real reproduction; only these rows are committed under `results/`.
    #[default]
    Full,
    /// The paper's own architecture, data and recipe at full scale, on data and checkpoints the
    /// user brings (`--data`, `--pretrained`), for a machine with GPUs: the published tables
    /// themselves. Rows go to `target/results-paper/` unless `--out` says otherwise.
    Paper,
}

impl Profile {
    /// The spelling stored in result rows and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Full => "full",
            Profile::Paper => "paper",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
