//! `bench-train --quick` end to end on the smallest model: rows, manifest and the merge of a rerun.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bench-train");

fn run(out: &std::path::Path) -> String {
    let o = Command::new(BIN)
        .args([
            "--quick",
            "--models",
            "mlp:100-50@28",
            "--threads",
            "1,2",
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn quick_run_writes_one_row_per_mode_and_thread_count_with_a_manifest() {
    let out = tempfile::tempdir().unwrap();
    let stdout = run(out.path());
    assert!(stdout.contains("mlp:100-50@28"), "{stdout}");
    let table = out.path().join("quant-train/train_step.csv");
    let mut reader = csv::Reader::from_path(&table).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 2, "fp at 1 and 2 threads");
    for r in &rows {
        assert_eq!(&r[col("engine")], "burn-flex");
        assert_eq!(&r[col("profile")], "smoke");
        assert_eq!(&r[col("params")], "84060");
        assert!(r[col("ms_per_step")].parse::<f64>().unwrap() > 0.0);
    }
    let manifest =
        std::fs::read_to_string(out.path().join("quant-train/train_step.manifest.json")).unwrap();
    assert!(manifest.contains("\"profile\": \"smoke\""), "{manifest}");
    // A rerun replaces its rows instead of appending.
    run(out.path());
    assert_eq!(csv::Reader::from_path(&table).unwrap().records().count(), 2);
}
