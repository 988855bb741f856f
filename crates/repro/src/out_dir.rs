//! Where a run writes its result tables when `--out` is not given.
//!
//! Only `full` rows are the reproduction of record and committed under `results/`; a smoke (or any other
//! non-full) run that wrote there would replace committed rows with rows of a cheaper setting. So every
//! binary asks this one function, and a non-full run without `--out` lands in
//! `target/results-<profile>/`, which git ignores.

use crate::Profile;
use std::path::{Path, PathBuf};

/// The results root of a run: `out` when the user gave `--out`; otherwise `results/` of the workspace for
/// the `full` profile and `target/results-<profile>/` for every other profile.
///
/// `profile` is the profile's name as stored in result rows (`smoke`, `default`, `full`): some binaries
/// have profiles of their own beyond [`Profile`], and all of them must agree on this rule.
pub fn results_root(out: Option<&Path>, profile: &str) -> PathBuf {
    if let Some(out) = out {
        return out.to_path_buf();
    }
    default_results_root(&crate::workspace_root(), profile)
}

/// [`results_root`] without `--out`, relative to `workspace`.
pub fn default_results_root(workspace: &Path, profile: &str) -> PathBuf {
    if profile == Profile::Full.name() {
        workspace.join("results")
    } else {
        workspace.join("target").join(format!("results-{profile}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_runs_default_to_the_committed_tree() {
        let ws = Path::new("/w");
        assert_eq!(default_results_root(ws, "full"), Path::new("/w/results"));
        assert_eq!(
            default_results_root(ws, "smoke"),
            Path::new("/w/target/results-smoke")
        );
        assert_eq!(
            default_results_root(ws, "default"),
            Path::new("/w/target/results-default")
        );
    }

    #[test]
    fn an_explicit_out_always_wins() {
        for profile in ["smoke", "full"] {
            assert_eq!(
                results_root(Some(Path::new("/tmp/x")), profile),
                Path::new("/tmp/x")
            );
        }
    }
}
