//! The bad-input matrix of `integer-qat`: every case ends in one clean error line and writes nothing.
//! (Before, labels outside 0-9 panicked inside Burn, and `--epochs 0` wrote rows of untrained models.)

#[path = "../../repro/tests/support/bad_input.rs"]
mod support;

use support::{images_32x32, labels_out_of_range, refuses, unpublished};

const BIN: &str = env!("CARGO_BIN_EXE_integer-qat");

fn depth(extra: &[&str], env: &[(&str, &str)], needle: &str) -> String {
    let mut args = vec!["--profile", "smoke"];
    args.extend_from_slice(extra);
    args.push("depth");
    refuses(BIN, &args, env, None, true, needle)
}

#[test]
fn zero_counts_are_refused() {
    depth(&["--epochs", "0"], &[], "--epochs 0: use 1 or more");
    depth(&["--threads", "0"], &[], "--threads 0: use 1 or more");
}

#[test]
fn bad_data_is_named_with_one_fix() {
    let bad = labels_out_of_range();
    depth(
        &["--data", bad.path().to_str().unwrap()],
        &[],
        "label 12 at index 5 is outside 0-9",
    );
    let big = images_32x32();
    depth(
        &["--data", big.path().to_str().unwrap()],
        &[],
        "images are 32x32, the models take 28x28",
    );
    let own = unpublished();
    let line = refuses(
        BIN,
        &[
            "--profile",
            "full",
            "--data",
            own.path().to_str().unwrap(),
            "depth",
        ],
        &[],
        None,
        true,
        "content differs from the published Fashion-MNIST",
    );
    assert!(
        line.ends_with("use --profile smoke for other data"),
        "{line}"
    );
}

/// One fix per message: the old text was "<dir>: <file> missing: run make data: run make data".
#[test]
fn missing_data_names_one_fix_for_where_the_root_came_from() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let flag = depth(&["--data", dir], &[], "missing: point --data at");
    let env = depth(
        &[],
        &[("QUANT_DATA_ROOT", dir)],
        "missing: point QUANT_DATA_ROOT at",
    );
    for line in [flag, env] {
        assert!(!line.contains("make data"), "{line}");
        assert_eq!(line.matches(": point").count(), 1, "{line}");
    }
}
