//! The bad-input matrix of `adaptivfloat`: every case ends in one clean error line and writes nothing.
//! (Before, out-of-range labels and 32x32 images panicked inside Burn, and `--threads 0` and
//! `--epochs 0` were accepted.)

#[path = "../../repro/tests/support/bad_input.rs"]
mod support;

use support::{images_32x32, labels_out_of_range, refuses};

const BIN: &str = env!("CARGO_BIN_EXE_adaptivfloat");

fn accuracy(model: &str, extra: &[&str], needle: &str) -> String {
    let mut args = vec!["accuracy", "--model", model, "--profile", "smoke"];
    args.extend_from_slice(extra);
    refuses(BIN, &args, &[], None, true, needle)
}

#[test]
fn zero_counts_are_refused() {
    accuracy("mlp", &["--epochs", "0"], "--epochs 0: use 1 or more");
    refuses(
        BIN,
        &["rmse", "--profile", "smoke", "--threads", "0"],
        &[],
        None,
        true,
        "--threads 0: use 1 or more",
    );
}

#[test]
fn bad_data_is_named_with_one_fix() {
    let bad = labels_out_of_range();
    accuracy(
        "transformer",
        &["--data", bad.path().to_str().unwrap()],
        "label 12 at index 5 is outside 0-9",
    );
    let big = images_32x32();
    accuracy(
        "mlp",
        &["--data", big.path().to_str().unwrap()],
        "images are 32x32, the models take 28x28",
    );
}

/// The paper's exponent width cannot fit 3 bits: the error asks for --exp, which the user never set.
#[test]
fn a_default_exponent_that_does_not_fit_asks_for_exp() {
    refuses(
        BIN,
        &["quantize", "--format", "adaptivfloat", "--bits", "3"],
        &[],
        Some("0.5 1"),
        false,
        "pass --exp",
    );
}

/// Magnitudes near the bottom of f64 (subnormals) quantize like any other tensor.
#[test]
fn tiny_values_quantize() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    for format in ["adaptivfloat", "bfp", "uniform", "float", "posit"] {
        let mut child = Command::new(BIN)
            .args(["quantize", "--format", format, "--bits", "8"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"1e-310 3e-312 0 -5e-324")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{format}: {err}");
        let values: Vec<f64> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(values.len(), 4, "{format}");
        assert!(values.iter().all(|v| v.is_finite()), "{format}: {values:?}");
        assert_eq!(values[2], 0.0, "{format}");
    }
}
