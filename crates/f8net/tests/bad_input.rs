//! The bad-input matrix of `f8net`: every case ends in one clean error line and writes nothing.
//! (Before, labels outside 0-9 panicked inside a training worker and the run hung for good.)

#[path = "../../repro/tests/support/bad_input.rs"]
mod support;

use support::{images_32x32, labels_out_of_range, refuses, unpublished};

const BIN: &str = env!("CARGO_BIN_EXE_f8net");

fn main_table(extra: &[&str], env: &[(&str, &str)], needle: &str) -> String {
    let mut args = vec!["--model", "mobilenetv1", "--profile", "smoke"];
    args.extend_from_slice(extra);
    refuses(BIN, &args, env, None, true, needle)
}

#[test]
fn zero_counts_are_refused() {
    main_table(&["--epochs", "0"], &[], "--epochs 0: use 1 or more");
    main_table(&["--threads", "0"], &[], "--threads 0: use 1 or more");
}

#[test]
fn bad_data_is_named_with_one_fix() {
    let bad = labels_out_of_range();
    main_table(
        &["--data", bad.path().to_str().unwrap()],
        &[],
        "label 12 at index 5 is outside 0-9",
    );
    let big = images_32x32();
    main_table(
        &["--data", big.path().to_str().unwrap()],
        &[],
        "images are 32x32, the models take 28x28",
    );
    let own = unpublished();
    let line = refuses(
        BIN,
        &[
            "--model",
            "mobilenetv1",
            "--profile",
            "full",
            "--data",
            own.path().to_str().unwrap(),
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

#[test]
fn missing_data_advice_follows_where_the_root_came_from() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let flag = main_table(&["--data", dir], &[], "missing: point --data at");
    let env = main_table(
        &[],
        &[("QUANT_DATA_ROOT", dir)],
        "missing: point QUANT_DATA_ROOT at",
    );
    for line in [flag, env] {
        assert!(!line.contains("make data"), "{line}");
    }
}
