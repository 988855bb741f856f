//! Run manifests: what produced a result table, beside it as `<table>.manifest.json`.
//!
//! One manifest lists every run whose rows are in the table (rows carry the `run_id`), so a row can always
//! be traced to its command line, commit, source state, binary, machine and data. A run's rows and its
//! manifest entry are written under one [`TableLock`], so concurrent runs never lose each other's rows
//! or entries, and a run whose rows have all been replaced leaves the manifest with them.

use crate::results::{Keyed, TableError, TableLock, merge_rows, read_rows, write_atomically};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The identity and circumstances of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command_line: String,
    /// `git rev-parse HEAD` of the source the binary was run from (older records append `-dirty`).
    pub git_commit: String,
    /// Whether tracked source files (everything but `results/`) differed from that commit; `None` in
    /// records written before this was recorded.
    #[serde(default)]
    pub git_dirty: Option<bool>,
    /// SHA-256 of `git diff HEAD` (outside `results/`) when dirty, so a dirty run's source can be matched.
    #[serde(default)]
    pub git_diff_sha256: String,
    /// The binary that ran, relative to the workspace root when inside it (`target/debug/f8net`).
    #[serde(default)]
    pub executable: String,
    pub start_time: String,
    pub end_time: String,
    pub host_cpu: String,
    pub threads: usize,
    pub profile: String,
    /// `(file, sha256 of decompressed content)` of the data the run read.
    pub data_checksums: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub runs: Vec<RunRecord>,
    /// For a table computed from other files rather than measured (`comparison.csv`, `claims.csv`):
    /// each input, relative to the workspace root, with the SHA-256 of its content. Such a table lists
    /// no runs of its own; its rows trace to the runs in its inputs' manifests, and `compare --check`
    /// fails when an input changed since.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_from: Vec<(String, String)>,
}

impl Manifest {
    /// The manifest of a table derived from `inputs`, as the text written beside it.
    pub fn derived(root: &Path, inputs: &[PathBuf]) -> Result<String, TableError> {
        let derived_from = inputs
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path)
                    .map_err(|e| TableError(format!("{}: {e}", path.display())))?;
                let name = path.strip_prefix(root).unwrap_or(path);
                Ok((
                    name.display().to_string(),
                    format!("{:x}", Sha256::digest(&bytes)),
                ))
            })
            .collect::<Result<_, TableError>>()?;
        let manifest = Manifest {
            runs: Vec::new(),
            derived_from,
        };
        serde_json::to_string_pretty(&manifest)
            .map(|text| text + "\n")
            .map_err(|e| TableError(e.to_string()))
    }

    /// Reads a manifest; a missing file is an empty manifest.
    pub fn read(path: &Path) -> Result<Self, TableError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                TableError(format!("{}: {e}: fix or delete the file", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(TableError(format!("{}: {e}", path.display()))),
        }
    }
}

/// A run in progress: created at start, it stamps result rows and writes tables with their manifests.
#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: String,
    pub profile: String,
    pub threads: usize,
    start_time: String,
    /// Read once at the start: the source the binary was built from, not what an editor made of the
    /// tree while the run went on.
    source: SourceState,
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
            source: SourceState::of_workspace(),
        }
    }

    /// Merges `rows` into the table at `path` and records this run in the manifest beside it, as one
    /// transaction under the table's lock.
    pub fn record<R: Keyed + Serialize + DeserializeOwned + Clone>(
        &self,
        path: &Path,
        rows: &[R],
        data_checksums: &[(String, String)],
    ) -> Result<usize, TableError> {
        self.record_derived(path, rows, |_| Vec::new(), data_checksums)
    }

    /// [`Self::record`], then the rows `derive` computes from the whole merged table (this run's
    /// rows and every earlier run's) merged too, in the same transaction: rows that summarise a
    /// table several runs fill (one unit each) stay consistent however the units interleave. With
    /// no rows and nothing derived, nothing is written.
    pub fn record_derived<R: Keyed + Serialize + DeserializeOwned + Clone>(
        &self,
        path: &Path,
        rows: &[R],
        derive: impl FnOnce(&[R]) -> Vec<R>,
        data_checksums: &[(String, String)],
    ) -> Result<usize, TableError> {
        let _lock = TableLock::acquire(path)?;
        self.record_locked(path, rows, derive, data_checksums)
    }

    /// [`Self::record`], then the rows `summarise` computes from the whole merged table recorded
    /// in the table at `summary_path`, while the first table's lock is held: a summary table over
    /// units (means over seeds) stays whole however the units interleave. Returns the summary rows.
    pub fn record_with_summary<R, S>(
        &self,
        path: &Path,
        rows: &[R],
        summary_path: &Path,
        summarise: impl FnOnce(&[R]) -> Vec<S>,
        data_checksums: &[(String, String)],
    ) -> Result<Vec<S>, TableError>
    where
        R: Keyed + Serialize + DeserializeOwned + Clone,
        S: Keyed + Serialize + DeserializeOwned + Clone,
    {
        let _lock = TableLock::acquire(path)?;
        self.record_locked(path, rows, |_| Vec::new(), data_checksums)?;
        let summary = summarise(&read_rows::<R>(path)?);
        self.record(summary_path, &summary, data_checksums)?;
        Ok(summary)
    }

    /// [`Self::record_derived`] with the table's lock already held.
    fn record_locked<R: Keyed + Serialize + DeserializeOwned + Clone>(
        &self,
        path: &Path,
        rows: &[R],
        derive: impl FnOnce(&[R]) -> Vec<R>,
        data_checksums: &[(String, String)],
    ) -> Result<usize, TableError> {
        let mut n = match rows.is_empty() {
            true => read_rows::<R>(path)?.len(),
            false => merge_rows(path, rows)?,
        };
        let derived = derive(&read_rows::<R>(path)?);
        if !derived.is_empty() {
            n = merge_rows(path, &derived)?;
        } else if rows.is_empty() {
            // Nothing to write: the table and its manifest stay as they are.
            return Ok(n);
        }
        let live = run_ids_in(path)?;
        let source = self.source.clone();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let record = RunRecord {
            run_id: self.run_id.clone(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            git_commit: source.commit,
            git_dirty: source.dirty,
            git_diff_sha256: source.diff_sha256,
            executable: executable(),
            start_time: self.start_time.clone(),
            end_time: iso_utc(now),
            host_cpu: host_cpu(),
            threads: self.threads,
            profile: self.profile.clone(),
            data_checksums: data_checksums.to_vec(),
        };
        write_manifest(&manifest_path(path), record, &live)?;
        Ok(n)
    }
}

/// The `run_id` column of a table, so the manifest can drop runs whose rows were all replaced; `None`
/// for tables without that column (their manifest keeps every run).
fn run_ids_in(table: &Path) -> Result<Option<BTreeSet<String>>, TableError> {
    let err = |e: &dyn std::fmt::Display| TableError(format!("{}: {e}", table.display()));
    let mut reader = csv::Reader::from_path(table).map_err(|e| err(&e))?;
    let Some(col) = reader
        .headers()
        .map_err(|e| err(&e))?
        .iter()
        .position(|h| h == "run_id")
    else {
        return Ok(None);
    };
    reader
        .records()
        .map(|r| r.map(|r| r.get(col).unwrap_or_default().to_string()))
        .collect::<Result<_, _>>()
        .map(Some)
        .map_err(|e| err(&e))
}

/// `results/p/t.csv` -> `results/p/t.manifest.json`.
pub fn manifest_path(table: &Path) -> PathBuf {
    table.with_extension("manifest.json")
}

fn write_manifest(
    path: &Path,
    record: RunRecord,
    live_runs: &Option<BTreeSet<String>>,
) -> Result<(), TableError> {
    let err = |e: &dyn std::fmt::Display| {
        TableError(format!("{}: {e}: fix or delete the file", path.display()))
    };
    let mut manifest = Manifest::read(path)?;
    manifest.runs.retain(|r| {
        r.run_id != record.run_id && live_runs.as_ref().is_none_or(|l| l.contains(&r.run_id))
    });
    manifest.runs.push(record);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| err(&e))?;
    write_atomically(path, &(text + "\n"))
}

/// The state of the source a run was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// `git rev-parse HEAD`, or `unknown` outside a checkout.
    pub commit: String,
    /// Whether tracked files outside `results/` differ from `commit` (`None` outside a checkout).
    pub dirty: Option<bool>,
    /// SHA-256 of that difference (`git diff HEAD`), empty when clean.
    pub diff_sha256: String,
}

impl SourceState {
    /// Reads the checkout around the current directory. `results/` is left out of the comparison: a
    /// reproduction writes there, and its second table would otherwise always record a dirty tree.
    pub fn of_workspace() -> Self {
        let root = crate::workspace_root();
        let run = |args: &[&str]| git(&root, args);
        let outside_results = ["--", ".", ":(exclude)results"];
        let Some(head) = run(&["rev-parse", "HEAD"]) else {
            return SourceState {
                commit: "unknown".into(),
                dirty: None,
                diff_sha256: String::new(),
            };
        };
        let diff = run(&[&["diff", "HEAD", "--binary"][..], &outside_results].concat());
        let dirty = diff.as_ref().map(|d| !d.is_empty());
        SourceState {
            commit: String::from_utf8_lossy(&head).trim().to_string(),
            dirty,
            diff_sha256: match diff {
                Some(d) if !d.is_empty() => format!("{:x}", Sha256::digest(&d)),
                _ => String::new(),
            },
        }
    }
}

/// What `git -C dir <args>` prints on success; `None` when git fails or is missing.
pub fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout)
}

/// The running binary, relative to the workspace root when it lies inside it.
fn executable() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let root = crate::workspace_root();
    let root = root.canonicalize().unwrap_or(root);
    exe.strip_prefix(&root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| exe.display().to_string())
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

/// Seconds since 1970 of a `2026-11-27T08:05:31Z` time stamp ([`iso_utc`]'s inverse); `None` for any
/// other shape.
pub fn parse_iso_utc(stamp: &str) -> Option<u64> {
    let b = stamp.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil, the inverse of `civil_from_days`.
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()
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
        for t in [0, 951_782_400, 1_795_763_131, 4_102_444_800] {
            assert_eq!(parse_iso_utc(&iso_utc(t)), Some(t));
        }
        assert_eq!(parse_iso_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso_utc("yesterday"), None);
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

    /// Many writers at once, each with its own rows and run: the lock makes every read-merge-write and
    /// manifest update one transaction, so no row and no manifest entry is lost (without the lock, two
    /// writers lost rows in most tries). Each writer also derives a row counting the table's other
    /// rows: the last one derived counts every writer's.
    #[test]
    fn concurrent_writers_lose_no_rows_and_no_runs() {
        const WRITERS: u64 = 12;
        for attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let table = dir.path().join("paper/t.csv");
            std::thread::scope(|s| {
                for w in 0..WRITERS {
                    let table = &table;
                    s.spawn(move || {
                        let run = Run {
                            run_id: format!("run{w}"),
                            ..Run::start("full", 1)
                        };
                        let rows: Vec<ResultRow> = (0..3)
                            .map(|k| ResultRow {
                                paper: "P".into(),
                                source: "T".into(),
                                dataset: "D".into(),
                                model: format!("m{k}"),
                                method: "x".into(),
                                w_bits: "8".into(),
                                a_bits: "8".into(),
                                metric: "top1".into(),
                                value: w as f64,
                                proxy: String::new(),
                                profile: "full".into(),
                                seed: w,
                                epochs: 1,
                                run_id: run.run_id.clone(),
                            })
                            .collect();
                        let count = |all: &[ResultRow]| {
                            let others = all.iter().filter(|r| r.model != "count").count();
                            let mut total = rows[0].clone();
                            total.model = "count".into();
                            total.value = others as f64;
                            vec![total]
                        };
                        run.record_derived(table, &rows, count, &[]).unwrap();
                    });
                }
            });
            let rows = read_rows::<ResultRow>(&table).unwrap();
            assert_eq!(
                rows.len() as u64,
                3 * WRITERS + WRITERS,
                "attempt {attempt}: rows lost"
            );
            // Each writer's count row has its own seed; the largest saw every writer's rows.
            let most = rows
                .iter()
                .filter(|r| r.model == "count")
                .map(|r| r.value)
                .fold(0.0, f64::max);
            assert_eq!(most, (3 * WRITERS) as f64, "attempt {attempt}");
            let manifest = Manifest::read(&manifest_path(&table)).unwrap();
            assert_eq!(
                manifest.runs.len() as u64,
                WRITERS,
                "attempt {attempt}: runs lost"
            );
        }
    }

    /// Writers that each record rows and a summary table of the whole table (a count of its rows,
    /// under the table's lock): the summary written last counts every writer's rows.
    #[test]
    fn summaries_of_concurrent_writers_count_every_row() {
        const WRITERS: u64 = 8;
        let dir = tempfile::tempdir().unwrap();
        let (table, summary) = (dir.path().join("p/t.csv"), dir.path().join("p/s.csv"));
        let row = |w: u64, model: &str, value: f64| ResultRow {
            paper: "P".into(),
            source: "T".into(),
            dataset: "D".into(),
            model: model.into(),
            method: "x".into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: "top1".into(),
            value,
            proxy: String::new(),
            profile: "full".into(),
            seed: 0,
            epochs: 1,
            run_id: format!("run{w}"),
        };
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let (table, summary) = (&table, &summary);
                s.spawn(move || {
                    let run = Run {
                        run_id: format!("run{w}"),
                        ..Run::start("full", 1)
                    };
                    let rows = [row(w, &format!("m{w}"), 1.0)];
                    let count = |all: &[ResultRow]| vec![row(w, "count", all.len() as f64)];
                    run.record_with_summary(table, &rows, summary, count, &[])
                        .unwrap();
                });
            }
        });
        // One summary key: the last writer's count, taken with every row in the table.
        let counts = read_rows::<ResultRow>(&summary).unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].value, WRITERS as f64);
    }

    /// A derivation with nothing to add writes nothing: no table, no manifest entry.
    #[test]
    fn deriving_nothing_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("paper/t.csv");
        let run = Run::start("smoke", 1);
        let n = run
            .record_derived(&table, &[] as &[ResultRow], |_| Vec::new(), &[])
            .unwrap();
        assert_eq!(n, 0);
        assert!(!table.exists() && !manifest_path(&table).exists());
    }

    #[test]
    fn a_run_whose_rows_were_all_replaced_leaves_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("paper/t.csv");
        let row = |run: &str| ResultRow {
            paper: "P".into(),
            source: "T".into(),
            dataset: "D".into(),
            model: "m".into(),
            method: "x".into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: "top1".into(),
            value: 1.0,
            proxy: String::new(),
            profile: "full".into(),
            seed: 0,
            epochs: 1,
            run_id: run.into(),
        };
        for id in ["old", "new"] {
            let run = Run {
                run_id: id.into(),
                ..Run::start("full", 1)
            };
            run.record(&table, &[row(id)], &[]).unwrap();
        }
        let manifest = Manifest::read(&manifest_path(&table)).unwrap();
        let ids: Vec<_> = manifest.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["new"]);
        assert!(manifest.runs[0].git_dirty.is_some());
    }
}
