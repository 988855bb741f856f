//! The bad-input matrix of `bench-train`: every case ends in one clean error line and writes
//! nothing.

#[path = "../../repro/tests/support/bad_input.rs"]
mod support;

use support::refuses;

const BIN: &str = env!("CARGO_BIN_EXE_bench-train");

#[test]
fn zero_threads_are_refused() {
    refuses(
        BIN,
        &["--quick", "--threads", "0"],
        &[],
        None,
        true,
        "--threads 0: use 1 or more",
    );
    refuses(
        BIN,
        &["--quick", "--threads", "1,0"],
        &[],
        None,
        true,
        "--threads 0: use 1 or more",
    );
}

#[test]
fn an_unknown_model_names_the_known_ones() {
    let line = refuses(
        BIN,
        &["--quick", "--models", "resnet8@14,vgg16@28"],
        &[],
        None,
        true,
        "--models vgg16@28: no such model; use one of resnet8@14",
    );
    assert!(line.contains("row-transformer@28"), "{line}");
}
