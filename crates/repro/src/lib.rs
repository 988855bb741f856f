//! Shared reproduction plumbing: data sets, result tables with manifests, published numbers and the
//! comparison that puts them side by side.

pub mod cifar;
pub mod claims;
pub mod cli;
pub mod compare;
pub mod curves;
pub mod datasets;
pub mod examples;
pub mod idx;
pub mod image_folder;
pub mod jobs;
pub mod manifest;
pub mod out_dir;
pub mod plot;
pub mod profile;
pub mod published;
pub mod report;
pub mod results;
pub mod spin_join;
pub mod stats;

pub use profile::Profile;

use std::path::PathBuf;

/// The workspace root: the nearest ancestor of the current directory holding `experiments/`, or `.`.
///
/// Binaries run from anywhere in the checkout (`cargo run -p ...` keeps the caller's directory) and
/// still find `experiments/`, `results/` and `data/`.
pub fn workspace_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|dir| dir.join("experiments").is_dir() && dir.join("Cargo.toml").is_file())
        .map(PathBuf::from)
        .unwrap_or(cwd)
}
