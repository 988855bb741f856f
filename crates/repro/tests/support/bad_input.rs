//! Shared by every paper binary's `tests/bad_input.rs` (included with `#[path]`): data fixtures that
//! are wrong in one way each, and the check that a binary refuses an input cleanly.
//!
//! A clean refusal is: a non-zero exit within the deadline (a hang fails, it does not block), exactly
//! one line on stderr, `error: ` first and no panic text, and no result written: the `--out` folder
//! stays empty and nothing under the workspace's `results/` changes.

#![allow(dead_code)] // each binary's test file uses the part it needs

use repro::datasets::{DatasetName, ImageSet, write_idx_dataset};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long one bad run may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(120);

/// A data root holding `mnist/` and `fashion-mnist/`, both of `n` images a split of `side`x`side`
/// pixels, labelled `label(i)`.
pub fn data_root(n: usize, side: usize, label: impl Fn(usize) -> u8) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let set = ImageSet {
        images: (0..n * side * side).map(|i| (i * 31 % 251) as u8).collect(),
        labels: (0..n).map(label).collect(),
        channels: 1,
        rows: side,
        cols: side,
        checksums: vec![],
    };
    for name in [DatasetName::Mnist, DatasetName::FashionMnist] {
        write_idx_dataset(root.path(), name, &set, &set).unwrap();
    }
    root
}

/// 600 28x28 images whose sixth label is 12, outside the ten classes.
pub fn labels_out_of_range() -> tempfile::TempDir {
    data_root(600, 28, |i| if i == 5 { 12 } else { (i % 10) as u8 })
}

/// 600 well-labelled images of 32x32 pixels, not the 28x28 the models take.
pub fn images_32x32() -> tempfile::TempDir {
    data_root(600, 32, |i| (i % 10) as u8)
}

/// 100 well-formed 28x28 images that are not the published data set (fine for smoke runs only).
pub fn unpublished() -> tempfile::TempDir {
    data_root(100, 28, |i| (i % 10) as u8)
}

/// The workspace root (where `results/` is), from the test crate's manifest directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => {
                    out.insert(path, (m.len(), m.modified().ok()));
                }
                Err(_) => {}
            }
        }
    }
    out
}

/// Runs `bin args.. [--out <empty temp dir>]` with `env` and `stdin`, and checks the refusal is clean
/// and its line contains `needle`. Returns the stderr line.
pub fn refuses(
    bin: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
    with_out: bool,
    needle: &str,
) -> String {
    let out = tempfile::tempdir().unwrap();
    let results = workspace().join("results");
    let before = snapshot(&results);
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(workspace())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if with_out {
        cmd.arg("--out").arg(out.path());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    if let Some(text) = stdin {
        use std::io::Write;
        // A child that refuses its arguments exits before reading its input: a broken pipe is that
        // refusal, not a failure of the harness.
        let written = child.stdin.take().unwrap().write_all(text.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    // Read stderr on a side thread so a chatty child cannot block on a full pipe.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} hung for {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = reader.join().unwrap();
    let case = format!("{args:?}");
    assert!(!status.success(), "{case} should fail: {err}");
    assert!(!err.contains("panicked"), "{case} panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{case}: one line expected: {err}");
    assert!(lines[0].starts_with("error: "), "{case}: {err}");
    assert!(
        lines[0].contains(needle),
        "{case}: {needle:?} missing: {err}"
    );
    let written = snapshot(out.path());
    assert!(written.is_empty(), "{case} wrote {:?}", written.keys());
    assert_eq!(before, snapshot(&results), "{case} changed results/");
    lines[0].to_string()
}
