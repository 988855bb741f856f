//! The bad-input matrix of `mixed-precision-mcu`: every case ends in one clean error line and writes
//! nothing. (Before, out-of-range labels panicked inside Burn, zero counts wrote rows, and large
//! resolutions overflowed the memory model's arithmetic.)

#[path = "../../repro/tests/support/bad_input.rs"]
mod support;

use support::{images_32x32, labels_out_of_range, refuses};

const BIN: &str = env!("CARGO_BIN_EXE_mixed-precision-mcu");

fn qat(extra: &[&str], env: &[(&str, &str)], needle: &str) -> String {
    let mut args = vec!["qat", "--profile", "smoke"];
    args.extend_from_slice(extra);
    refuses(BIN, &args, env, None, true, needle)
}

#[test]
fn zero_counts_are_refused() {
    for flag in ["--epochs", "--train-images", "--test-images", "--threads"] {
        qat(&[flag, "0"], &[], &format!("{flag} 0: use 1 or more"));
    }
}

#[test]
fn bad_data_is_named_with_one_fix() {
    let bad = labels_out_of_range();
    qat(
        &["--data", bad.path().to_str().unwrap()],
        &[],
        "label 12 at index 5 is outside 0-9",
    );
    let big = images_32x32();
    qat(
        &["--data", big.path().to_str().unwrap()],
        &[],
        "images are 32x32, the models take 28x28",
    );
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let line = qat(&["--data", dir], &[], "missing: point --data at");
    assert!(!line.contains("make data"), "{line}");
}

/// Resolutions whose layer sizes overflow 64-bit counts are refused with the largest that fits.
#[test]
fn resolutions_beyond_the_memory_model_are_refused() {
    for family in ["imagenet", "tiny8"] {
        let line = refuses(
            BIN,
            &["assign", "--family", family, "--resolution", "100000000000"],
            &[],
            None,
            false,
            "overflows the memory model's 64-bit byte counts at this width: use at most ",
        );
        let max = line.rsplit(' ').next().unwrap();
        let ok = std::process::Command::new(BIN)
            .args([
                "assign",
                "--family",
                family,
                "--format",
                "csv",
                "--resolution",
                max,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&ok.stderr);
        assert!(!err.contains("panicked"), "{family} at {max}: {err}");
    }
}

/// Budgets up to u64::MAX hold every model: the assignment keeps 8 bits everywhere, no overflow.
#[test]
fn the_largest_budgets_are_accepted() {
    let max = u64::MAX.to_string();
    let o = std::process::Command::new(BIN)
        .args(["assign", "--format", "csv", "--rom", &max, "--ram", &max])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().nth(1).is_some_and(|l| l.contains(",8888")),
        "{out}"
    );
}
