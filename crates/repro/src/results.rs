//! Result tables under `results/<paper>/`: rows merged by key and written atomically.
//!
//! A rerun replaces exactly its own rows (same key) and keeps every other row, so tables grow run by run
//! and an interrupted run never leaves a torn file (rows go to a temp file that is renamed over the table).
//! Two runs writing one table take turns: [`TableLock`] serialises read-merge-write (and the manifest
//! update that goes with it), so neither loses the other's rows.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A row that knows which other rows it replaces.
pub trait Keyed {
    /// Rows with equal keys are the same measurement; the newer one wins.
    fn key(&self) -> String;
}

/// One measured number, keyed like a published row plus the run's identity.
///
/// `proxy` is empty when the run used the paper's own data set and model; otherwise it names the stand-in
/// (for example `Fashion-MNIST, MobileNetV2 w0.25`); `compare` then gives the cell no verdict and only
/// the paper's claims judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub paper: String,
    pub source: String,
    pub dataset: String,
    pub model: String,
    pub method: String,
    pub w_bits: String,
    pub a_bits: String,
    pub metric: String,
    pub value: f64,
    pub proxy: String,
    pub profile: String,
    pub seed: u64,
    pub epochs: u32,
    pub run_id: String,
}

/// What a row measured: the published row's key (paper, source, model, method, bit widths, metric)
/// and what it ran on (data set, and the stand-in when it is not the paper's own).
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    pub paper: &'a str,
    pub source: &'a str,
    pub dataset: &'a str,
    pub model: &'a str,
    pub method: &'a str,
    /// Weight and activation bits as published (`"32"` for float, `""` where none apply).
    pub bits: (&'a str, &'a str),
    pub metric: &'a str,
    /// Empty when the paper's own data and model ran.
    pub proxy: &'a str,
}

/// Who measured it: the run's profile and id, the seed and the training length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStamp<'a> {
    pub profile: &'a str,
    pub seed: u64,
    pub epochs: u32,
    pub run_id: &'a str,
}

impl ResultRow {
    /// The one way a result row is made: what was measured, its value, and the run's stamp.
    pub fn new(what: Measured<'_>, value: f64, stamp: &RunStamp<'_>) -> ResultRow {
        ResultRow {
            paper: what.paper.into(),
            source: what.source.into(),
            dataset: what.dataset.into(),
            model: what.model.into(),
            method: what.method.into(),
            w_bits: what.bits.0.into(),
            a_bits: what.bits.1.into(),
            metric: what.metric.into(),
            value,
            proxy: what.proxy.into(),
            profile: stamp.profile.into(),
            seed: stamp.seed,
            epochs: stamp.epochs,
            run_id: stamp.run_id.into(),
        }
    }

    /// The columns a result shares with `published.csv` (dataset excluded: proxies change it).
    pub fn join_key(&self) -> [String; 7] {
        [
            self.paper.clone(),
            self.source.clone(),
            self.model.clone(),
            self.method.clone(),
            self.w_bits.clone(),
            self.a_bits.clone(),
            self.metric.clone(),
        ]
    }
}

impl Keyed for ResultRow {
    fn key(&self) -> String {
        [
            &self.paper,
            &self.source,
            &self.dataset,
            &self.model,
            &self.method,
            &self.w_bits,
            &self.a_bits,
            &self.metric,
            &self.proxy,
            &self.profile,
            &self.seed.to_string(),
            &self.epochs.to_string(),
        ]
        .map(String::as_str)
        .join("\u{1f}")
    }
}

/// Errors from reading or writing a result table.
#[derive(Debug)]
pub struct TableError(pub String);

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TableError {}

/// `results/<paper>/<table>.csv` under `results_root`.
pub fn table_path(results_root: &Path, paper_dir: &str, table: &str) -> PathBuf {
    results_root.join(paper_dir).join(format!("{table}.csv"))
}

/// An exclusive advisory lock on a table, held from before its read to after its manifest is written.
///
/// The lock is on a sidecar file (`.<table>.lock`), not on the table, because the table itself is
/// replaced by a rename and a lock on the old inode would not exclude the next writer. The operating
/// system drops the lock when the process dies, so a killed run never leaves the table locked.
pub struct TableLock {
    _file: std::fs::File,
}

impl TableLock {
    /// Blocks until this process holds the table's lock.
    pub fn acquire(table: &Path) -> Result<Self, TableError> {
        let io = |e: &dyn std::fmt::Display| TableError(format!("{}: {e}", table.display()));
        let dir = table.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
        let name = table.file_name().unwrap_or_default().to_string_lossy();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!(".{name}.lock")))
            .map_err(|e| io(&e))?;
        file.lock().map_err(|e| io(&e))?;
        Ok(TableLock { _file: file })
    }
}

/// Reads every row of a CSV table; a missing file is an empty table, an empty file is an error.
pub fn read_rows<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, TableError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(TableError(format!(
            "{}: empty file (no header): restore it from git or delete it",
            path.display()
        )));
    }
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| TableError(format!("{}: {e}: fix or delete the file", path.display())))?;
    reader
        .deserialize()
        .collect::<Result<Vec<R>, _>>()
        .map_err(|e| TableError(format!("{}: {e}: fix or delete the file", path.display())))
}

/// The header every result table starts with; tables of other shapes (per-epoch logs, kernel timings)
/// sit beside them and are not result tables.
pub const RESULT_HEADER_PREFIX: &str = "paper,source,dataset,model,method";

/// The measured rows of one paper and the tables they were read from.
#[derive(Debug, Default)]
pub struct ResultTables {
    pub rows: Vec<ResultRow>,
    pub files: Vec<PathBuf>,
}

/// Every [`ResultRow`] of the result tables in `dir` (one paper's results), in file-name order.
///
/// A table is a result table when its header starts with [`RESULT_HEADER_PREFIX`]; such a table missing
/// a column, with a torn row, or with a value that is not a finite number is an error naming the file.
pub fn read_result_tables(dir: &Path) -> Result<ResultTables, TableError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(ResultTables::default());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    let mut tables = ResultTables::default();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TableError(format!("{}: {e}", path.display())))?;
        if text.is_empty() {
            return Err(TableError(format!(
                "{}: empty file (no header): restore it from git or delete it",
                path.display()
            )));
        }
        if !text.starts_with(RESULT_HEADER_PREFIX) {
            continue;
        }
        let table: Vec<ResultRow> = read_rows(&path)?;
        if table.is_empty() {
            return Err(TableError(format!(
                "{}: header but no rows: rerun the experiment or delete the file",
                path.display()
            )));
        }
        if let Some(bad) = table.iter().find(|r| !r.value.is_finite()) {
            return Err(TableError(format!(
                "{}: {} / {} / {} seed {} has value {}: rerun that experiment",
                path.display(),
                bad.model,
                bad.method,
                bad.metric,
                bad.seed,
                bad.value
            )));
        }
        tables.rows.extend(table);
        tables.files.push(path);
    }
    Ok(tables)
}

/// Merges `rows` into the table at `path` (new rows replace old rows with the same key, order kept by
/// key) and writes it atomically. Returns the number of rows in the table afterwards. The caller holds
/// the table's [`TableLock`] when other runs may write the same table.
pub fn merge_rows<R: Keyed + Serialize + DeserializeOwned + Clone>(
    path: &Path,
    rows: &[R],
) -> Result<usize, TableError> {
    let mut merged: BTreeMap<String, R> = read_rows::<R>(path)?
        .into_iter()
        .map(|r| (r.key(), r))
        .collect();
    for row in rows {
        merged.insert(row.key(), row.clone());
    }
    write_rows_atomically(path, merged.values())?;
    Ok(merged.len())
}

/// Rows as CSV text (header from the first row's fields); `path` only names the table in errors.
pub fn csv_text<'a, R: Serialize + 'a>(
    path: &Path,
    rows: impl IntoIterator<Item = &'a R>,
) -> Result<String, TableError> {
    let err = |e: &dyn std::fmt::Display| TableError(format!("{}: {e}", path.display()));
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(|e| err(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| err(&e))?;
    String::from_utf8(bytes).map_err(|e| err(&e))
}

/// Writes `text` to `path` through a temp file in the same folder and a rename, so a reader (or a
/// killed writer) never sees half a file.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), TableError> {
    let io = |e: &dyn std::fmt::Display| TableError(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| io(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(&e))
}

/// Writes rows to `path` as CSV, atomically.
pub fn write_rows_atomically<'a, R: Serialize + 'a>(
    path: &Path,
    rows: impl IntoIterator<Item = &'a R>,
) -> Result<(), TableError> {
    write_atomically(path, &csv_text(path, rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, seed: u64, value: f64) -> ResultRow {
        ResultRow {
            paper: "P".into(),
            source: "Table 1".into(),
            dataset: "MNIST".into(),
            model: "MLP".into(),
            method: "int8".into(),
            w_bits: "8".into(),
            a_bits: "8".into(),
            metric: metric.into(),
            value,
            proxy: String::new(),
            profile: "full".into(),
            seed,
            epochs: 3,
            run_id: "r".into(),
        }
    }

    #[test]
    fn rerun_replaces_its_rows_and_keeps_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p/t.csv");
        merge_rows(&path, &[row("top1", 1, 90.0), row("top1", 2, 91.0)]).unwrap();
        let n = merge_rows(&path, &[row("top1", 1, 95.0), row("size", 1, 10.0)]).unwrap();
        assert_eq!(n, 3);
        let rows: Vec<ResultRow> = read_rows(&path).unwrap();
        let seed1 = rows
            .iter()
            .find(|r| r.metric == "top1" && r.seed == 1)
            .unwrap();
        assert_eq!(seed1.value, 95.0);
        assert!(rows.iter().any(|r| r.seed == 2 && r.value == 91.0));
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
    }

    #[test]
    fn corrupt_table_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "paper,value\nP,notanumber\n").unwrap();
        let e = merge_rows(&path, &[row("top1", 1, 1.0)]).unwrap_err();
        assert!(e.to_string().contains("fix or delete"), "{e}");
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("notanumber"),
            "existing file must survive"
        );
    }
}
