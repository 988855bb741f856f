//! The two run profiles every experiment binary accepts (`--profile smoke|full`).

use std::fmt;

/// How much of an experiment to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Profile {
    /// Seconds on a slice of the data: proves the pipeline end to end; what tests and CI run.
    Smoke,
    /// The real reproduction; only these rows are committed under `results/`.
    #[default]
    Full,
}

impl Profile {
    /// The spelling stored in result rows and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Full => "full",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
