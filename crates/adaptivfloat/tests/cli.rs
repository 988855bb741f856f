//! Runs the `adaptivfloat` binary as a user would.

use std::io::Write;
use std::process::{Command, Stdio};

fn quantize(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adaptivfloat"))
        .arg("quantize")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // The binary rejects bad flags before reading stdin, so the pipe may already be closed.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const FIG3: &str =
    "-1.17 2.71 -1.60 0.43\n-1.14 2.05 1.01 0.07\n0.16 -0.03 -0.89 -0.87\n-0.04 -0.39 0.64 -2.89\n";

#[test]
fn fig3_through_every_format() {
    let (ok, out, err) = quantize(
        &["--format", "adaptivfloat", "--bits", "4", "--exp", "2"],
        FIG3,
    );
    assert!(ok, "{err}");
    let values: Vec<&str> = out.lines().collect();
    assert_eq!(values.len(), 16);
    assert_eq!(&values[..4], ["-1", "3", "-1.5", "0.375"]);
    assert!(err.contains("exp_bias = -2"), "{err}");

    let (ok, out, _) = quantize(&["--format", "bfp", "--bits", "4"], FIG3);
    assert!(ok);
    assert_eq!(out.lines().nth(1), Some("2.5"));
    let (ok, out, _) = quantize(&["--format", "uniform", "--bits", "4"], FIG3);
    assert!(ok);
    assert_eq!(out.lines().nth(1), Some("2.89"));
    let (ok, out, err) = quantize(&["--format", "float", "--bits", "4"], FIG3);
    assert!(ok);
    assert!(err.contains("Float<4,3>"), "{err}");
    assert_eq!(out.lines().nth(7), Some("0"), "0.07 flushes to zero");
    let (ok, out, _) = quantize(&["--format", "posit", "--bits", "8", "--codes"], "0.3 -1\n");
    assert!(ok);
    assert_eq!(out, "0x23\n0xc0\n");
}

#[test]
fn bad_input_is_a_one_line_error() {
    for (input, needle) in [
        ("1 2 three", "not a number"),
        ("nan", "not finite"),
        ("1 -inf", "not finite"),
        ("", "no numbers"),
    ] {
        let (ok, out, err) = quantize(&["--format", "adaptivfloat", "--bits", "8"], input);
        assert!(!ok, "{input:?} must fail");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{input:?}: {err}");
    }
    let (ok, _, err) = quantize(
        &["--format", "adaptivfloat", "--bits", "4", "--exp", "4"],
        "1",
    );
    assert!(!ok);
    assert!(err.contains("exponent bits"), "{err}");
}

#[test]
fn rmse_smoke_writes_both_tables_with_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_adaptivfloat"))
        .args(["rmse", "--profile", "smoke", "--threads", "1", "--out"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for table in ["format_rmse", "exp_search"] {
        let csv =
            std::fs::read_to_string(dir.path().join(format!("adaptivfloat/{table}.csv"))).unwrap();
        assert!(csv.lines().count() > 10, "{table}");
        assert!(csv.contains(",smoke,"));
        assert!(
            dir.path()
                .join(format!("adaptivfloat/{table}.manifest.json"))
                .exists()
        );
    }
}

#[test]
fn accuracy_smoke_writes_rows_that_mirror_the_published_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_adaptivfloat"))
        .args([
            "accuracy",
            "--profile",
            "smoke",
            "--model",
            "mlp",
            "--threads",
            "1",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join("adaptivfloat/accuracy.csv")).unwrap();
    let seq2seq = "Seq2Seq (4-layer LSTM enc + 1-layer LSTM dec + attention)";
    for needle in [
        format!("DAC2020 Table 1,Fashion-MNIST,{seq2seq},FP32/baseline,32,32,WER"),
        format!("DAC2020 Table 2,Fashion-MNIST,{seq2seq},AdaptivFloat/PTQ-weights-only,4,32,WER"),
        format!("DAC2020 Table 2,Fashion-MNIST,{seq2seq},Posit/QAR-weights-only,4,32,WER"),
        format!("DAC2020 Table 3,Fashion-MNIST,{seq2seq},BFP/QAR-weights+activations,4,4,WER"),
    ] {
        assert!(csv.contains(&needle), "missing {needle}");
    }
    let stress = std::fs::read_to_string(dir.path().join("adaptivfloat/range_stress.csv")).unwrap();
    assert!(stress.contains("range stress"));
    // Every training run (float and each retraining) leaves its validation curve, for each of the
    // three seeds of a profile: two retraining epochs give the convergence row.
    let curves = std::fs::read_to_string(dir.path().join("adaptivfloat/curves.csv")).unwrap();
    for seed in 0..3 {
        let needle = "Posit/QAR-weights-only,4,32,val_top1_gain_last_quarter_pct,";
        assert!(
            curves
                .lines()
                .any(|l| l.contains(needle) && l.contains(&format!(",smoke,{seed},2,"))),
            "no convergence row for seed {seed}"
        );
    }
    assert!(curves.contains("FP32/baseline,32,32,val_top1_pct,"));
    assert!(
        dir.path()
            .join("adaptivfloat/accuracy.manifest.json")
            .exists()
    );
}

#[test]
fn missing_data_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_adaptivfloat"))
        .args(["accuracy", "--profile", "smoke", "--model", "cnn", "--data"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // --data names the user's own folder: `make data` would not fill it, so the fix is --data's.
    assert!(
        err.contains("missing: point --data at") && !err.contains("make data"),
        "{err}"
    );
}
