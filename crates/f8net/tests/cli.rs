//! The binary end to end in the smoke profile.

use std::process::Command;

#[path = "../../repro/tests/support/colour.rs"]
mod colour;

fn f8net(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_f8net"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// The values of `metric` in the rows of every method starting with `method`.
fn values(rows: &[repro::results::ResultRow], metric: &str, method: &str) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.metric == metric && r.method.starts_with(method))
        .map(|r| r.value)
        .collect()
}

#[test]
fn main_table_smoke_writes_rows_and_the_integer_engine_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let checkpoints = dir.path().join("ckpt");
    let ckpt = checkpoints.to_str().unwrap();
    let o = f8net(&[
        "--model",
        "resnet18",
        "--profile",
        "smoke",
        "--out",
        out,
        "--checkpoints",
        ckpt,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The smoke profile keeps checkpoints only where `--checkpoints` puts them.
    assert!(std::fs::read_dir(&checkpoints).unwrap().next().is_some());
    let main = std::fs::read_to_string(dir.path().join("f8net/main.csv")).unwrap();
    assert!(main.contains("F8Net fixed-point 8-bit only"));
    assert!(main.contains("full precision baseline (authors' own; PACT-clipped float)"));
    assert!(main.contains("Jacob et al. 2018"));
    let rows: Vec<repro::results::ResultRow> =
        repro::results::read_rows(&dir.path().join("f8net/main.csv")).unwrap();
    let agreement = |method: &str| values(&rows, "sim_vs_integer_agreement_pct", method);
    assert!(
        rows.iter()
            .all(|r| r.profile == "smoke" && !r.proxy.is_empty())
    );
    // Every row names a source of the published table (the key `repro compare` joins on).
    let published = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../experiments/f8net/published.csv"),
    )
    .unwrap();
    for r in &rows {
        let source = format!(",{},", r.source);
        assert!(published.contains(&source), "no published row of {source}");
    }
    // The shift-only engine is bit-exact with F8Net's simulation; the INT32-multiplier engine
    // rounds a few boundary codes of the INT8 baseline differently.
    let f8 = agreement("F8Net");
    assert!(!f8.is_empty() && f8.iter().all(|&a| a == 100.0), "{f8:?}");
    let int8 = agreement("conventional INT8");
    assert!(
        !int8.is_empty() && int8.iter().all(|&a| a >= 95.0),
        "{int8:?}"
    );
    assert!(dir.path().join("f8net/main.manifest.json").exists());
    // The means over seeds are derived from the whole main table.
    let summary = std::fs::read_to_string(dir.path().join("f8net/main_mean_std.csv")).unwrap();
    assert!(
        summary.lines().count() > 1 && summary.contains("F8Net fixed-point 8-bit only"),
        "{summary}"
    );
    let ops = std::fs::read_to_string(dir.path().join("f8net/ops.csv")).unwrap();
    assert!(
        ops.lines()
            .any(|l| l.contains("F8Net") && l.contains(",0,")),
        "{ops}"
    );
}

#[test]
fn stats_smoke_writes_tables_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = f8net(&["stats", "--profile", "smoke", "--out", out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "stats_curves.csv",
        "stats_constants.csv",
        "stats_published.csv",
        "stats_thresholds.svg",
        "stats_error_curves_signed.svg",
    ] {
        assert!(dir.path().join("f8net").join(f).exists(), "{f}");
    }
}

#[test]
fn missing_data_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = f8net(&[
        "--model",
        "mobilenetv1",
        "--profile",
        "smoke",
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    // --data names the user's own folder: `make data` would not fill it, so the fix is --data's.
    assert!(
        err.contains("missing: point --data at") && !err.contains("make data"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `--dataset cifar10` builds the proxies for three input planes: the shift-only engine computes
/// exactly the simulated model on the colour test images, and the INT8 baseline's engine (which
/// takes channels innermost) agrees with its simulation as on grey images. 15 FP epochs train the
/// smoke model well above chance, where a wrong pixel order shows (INT8 agreement 30 % with the
/// planes fed as they are stored, measured).
#[test]
fn colour_data_runs_through_both_engines() {
    let data = colour::cifar_root(repro::cifar::Cifar::Ten, 700, 200);
    let out = tempfile::tempdir().unwrap();
    let o = f8net(&[
        "--model",
        "mobilenetv1",
        "--profile",
        "smoke",
        "--epochs",
        "15",
        "--dataset",
        "cifar10",
        "--data",
        data.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<repro::results::ResultRow> =
        repro::results::read_rows(&out.path().join("f8net/main.csv")).unwrap();
    let agreement = |method: &str| values(&rows, "sim_vs_integer_agreement_pct", method);
    assert!(rows.iter().all(|r| r.dataset == "CIFAR-10"));
    // Trained well above chance (10 %), so agreeing predictions are not one constant class.
    let top1 = values(&rows, "top1_acc_pct", "conventional INT8");
    assert!(
        !top1.is_empty() && top1.iter().all(|&t| t >= 50.0),
        "{top1:?}"
    );
    let f8 = agreement("F8Net");
    assert!(!f8.is_empty() && f8.iter().all(|&a| a == 100.0), "{f8:?}");
    let int8 = agreement("conventional INT8");
    assert!(
        !int8.is_empty() && int8.iter().all(|&a| a >= 95.0),
        "{int8:?}"
    );
}
