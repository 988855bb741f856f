//! Run manifests: what produced a result table, beside it as `<table>.manifest.json`.
//!
//! One manifest lists every run whose rows are in the table (rows carry the `run_id`), so a row can always
//! be traced to its command line, commit, machine and data.

use crate::results::{Keyed, TableError, merge_rows};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The identity and circumstances of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command_line: String,
    pub git_commit: String,
    pub start_time: String,
    pub end_time: String,
    pub host_cpu: String,
    pub threads: usize,
    pub profile: String,
    /// `(file, sha256 of decompressed content)` of the data the run read.
    pub data_checksums: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    runs: Vec<RunRecord>,
}

/// A run in progress: created at start, it stamps result rows and writes tables with their manifests.
#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: String,
    pub profile: String,
    pub threads: usize,
    start_time: String,
}

impl Run {
    /// Starts a run now; `profile` is `smoke` or `full`, `threads` what the run was allowed to use.
    pub fn start(profile: &str, threads: usize) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Run {
            run_id: format!("{}-{}", compact_utc(now), std::process::id()),
            profile: profile.to_string(),
            threads,
            start_time: iso_utc(now),
        }
    }

    /// Merges `rows` into the table at `path` and records this run in the manifest beside it.
    pub fn record<R: Keyed + Serialize + DeserializeOwned + Clone>(
        &self,
        path: &Path,
        rows: &[R],
        data_checksums: &[(String, String)],
    ) -> Result<usize, TableError> {
        let n = merge_rows(path, rows)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let record = RunRecord {
            run_id: self.run_id.clone(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            git_commit: git_commit(),
            start_time: self.start_time.clone(),
            end_time: iso_utc(now),
            host_cpu: host_cpu(),
            threads: self.threads,
            profile: self.profile.clone(),
            data_checksums: data_checksums.to_vec(),
        };
        write_manifest(&manifest_path(path), record)?;
        Ok(n)
    }
}

/// `results/p/t.csv` -> `results/p/t.manifest.json`.
pub fn manifest_path(table: &Path) -> PathBuf {
    table.with_extension("manifest.json")
}

fn write_manifest(path: &Path, record: RunRecord) -> Result<(), TableError> {
    let err = |e: &dyn std::fmt::Display| {
        TableError(format!("{}: {e}: fix or delete the file", path.display()))
    };
    let mut manifest: Manifest = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| err(&e))?,
        Err(_) => Manifest::default(),
    };
    manifest.runs.retain(|r| r.run_id != record.run_id);
    manifest.runs.push(record);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| err(&e))?;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text + "\n").map_err(|e| err(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}

/// `git rev-parse HEAD` (with `-dirty` when the tree has changes), or `unknown` outside a checkout.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(head) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{head}-dirty"),
            _ => head,
        },
        None => "unknown".into(),
    }
}

/// The CPU model from `/proc/cpuinfo`, or the architecture name where that is not available.
pub fn host_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (Howard Hinnant's civil algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn utc_parts(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-11-27T08:05:31Z`.
pub fn iso_utc(secs: u64) -> String {
    let (y, m, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261127T080531Z`, for run ids.
fn compact_utc(secs: u64) -> String {
    let (y, m, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ResultRow, read_rows};

    #[test]
    fn utc_formatting_of_known_instants() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_795_763_131), "2026-11-27T07:05:31Z");
        assert_eq!(compact_utc(1_795_763_131), "20261127T070531Z");
    }

    #[test]
    fn record_writes_rows_and_a_manifest_listing_each_run() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("paper/t.csv");
        let row = ResultRow {
            paper: "P".into(),
            source: "T1".into(),
            dataset: "MNIST".into(),
            model: "MLP".into(),
            method: "m".into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: "top1".into(),
            value: 1.0,
            proxy: String::new(),
            profile: "smoke".into(),
            seed: 0,
            epochs: 1,
            run_id: "a".into(),
        };
        let first = Run {
            run_id: "a".into(),
            ..Run::start("smoke", 2)
        };
        first
            .record(
                &table,
                std::slice::from_ref(&row),
                &[("f".into(), "abc".into())],
            )
            .unwrap();
        let second = Run {
            run_id: "b".into(),
            ..Run::start("smoke", 1)
        };
        second
            .record(
                &table,
                &[ResultRow {
                    seed: 1,
                    run_id: "b".into(),
                    ..row
                }],
                &[],
            )
            .unwrap();
        assert_eq!(read_rows::<ResultRow>(&table).unwrap().len(), 2);
        let manifest: Manifest =
            serde_json::from_str(&std::fs::read_to_string(manifest_path(&table)).unwrap()).unwrap();
        let ids: Vec<_> = manifest.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            manifest.runs[0].data_checksums,
            vec![("f".to_string(), "abc".to_string())]
        );
    }
}
