//! Published numbers (`experiments/<paper>/published.csv`), the tolerances beside them
//! (`experiments/<paper>/compare.csv`) and the paper's claims (`experiments/<paper>/claims.toml`):
//! what is judged and how strictly lives in data, not in code.

use crate::claims::{self, Claim};
use crate::results::{TableError, read_rows};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One number printed in a paper (or its official material), as the dossier transcribed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedRow {
    pub paper: String,
    pub source: String,
    pub dataset: String,
    pub model: String,
    pub method: String,
    pub w_bits: String,
    pub a_bits: String,
    pub metric: String,
    pub value: f64,
    pub notes: String,
}

/// A rule in `compare.csv`: rows of the paper's own data and model whose `source` equals this one (or `*`)
/// and whose `metric` starts with `metric_prefix` (or `*`) match when within `tolerance` of the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRule {
    pub source: String,
    pub metric_prefix: String,
    pub tolerance: f64,
}

impl CompareRule {
    fn applies_to(&self, source: &str, metric: &str) -> bool {
        (self.source == "*" || self.source == source)
            && (self.metric_prefix == "*" || metric.starts_with(&self.metric_prefix))
    }
}

/// The published rows and comparison rules of one paper.
#[derive(Debug, Clone)]
pub struct PaperExperiments {
    /// Folder name under `experiments/` and `results/`.
    pub dir: String,
    pub published: Vec<PublishedRow>,
    pub rules: Vec<CompareRule>,
    pub claims: Vec<Claim>,
}

impl PaperExperiments {
    /// The files of `experiments/<dir>/` that [`PaperExperiments::load`] reads.
    pub const FILES: [&'static str; 3] = ["published.csv", "compare.csv", "claims.toml"];

    /// Loads `experiments/<dir>/published.csv`, `compare.csv` and `claims.toml`; all must exist.
    pub fn load(experiments_root: &Path, dir: &str) -> Result<Self, TableError> {
        let folder = experiments_root.join(dir);
        let [published_path, rules_path, claims_path] = Self::FILES.map(|f| folder.join(f));
        for p in [&published_path, &rules_path, &claims_path] {
            if !p.exists() {
                return Err(TableError(format!(
                    "{} missing: restore it from git",
                    p.display()
                )));
            }
        }
        Ok(PaperExperiments {
            dir: dir.to_string(),
            published: read_rows(&published_path)?,
            rules: read_rows(&rules_path)?,
            claims: claims::load(&claims_path)?,
        })
    }

    /// The published rows of the paper in `experiments/<dir>/` of this workspace: what a figure overlays
    /// on the measured values.
    pub fn published_of(dir: &str) -> Result<Vec<PublishedRow>, TableError> {
        Ok(Self::load(&crate::workspace_root().join("experiments"), dir)?.published)
    }

    /// The first rule that applies to a row, if any.
    pub fn rule_for(&self, source: &str, metric: &str) -> Option<&CompareRule> {
        self.rules.iter().find(|r| r.applies_to(source, metric))
    }

    /// The paper's spelling in the `paper` column (taken from its first published row).
    pub fn paper_name(&self) -> Option<&str> {
        self.published.first().map(|r| r.paper.as_str())
    }
}

/// Every paper folder under `experiments/`, sorted (each must hold the files [`PaperExperiments::load`]
/// reads; a folder without them is an error there, not silently skipped).
pub fn paper_dirs(experiments_root: &Path) -> Result<Vec<String>, TableError> {
    let entries = std::fs::read_dir(experiments_root).map_err(|e| {
        TableError(format!(
            "{}: {e}: run from the workspace root",
            experiments_root.display()
        ))
    })?;
    let mut dirs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    Ok(dirs)
}
