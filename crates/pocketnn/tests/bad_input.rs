//! The bad-input matrix of `pocketnn`: every case ends in one clean error line and writes nothing.

#[path = "../../repro/tests/support/bad_input.rs"]
mod support;

use support::{images_32x32, labels_out_of_range, refuses, unpublished};

const BIN: &str = env!("CARGO_BIN_EXE_pocketnn");

fn train(extra: &[&str], needle: &str) {
    let mut args = vec!["train", "--profile", "smoke"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "1"]);
    }
    refuses(BIN, &args, &[], None, true, needle);
}

#[test]
fn zero_counts_are_refused() {
    train(&["--epochs", "0"], "--epochs 0: use 1 or more");
    train(&["--threads", "0"], "--threads 0: use 1 or more");
    train(&["--batch", "0"], "--batch 0: use 1 or more");
    refuses(
        BIN,
        &["float-baseline", "--profile", "smoke", "--epochs", "0"],
        &[],
        None,
        true,
        "--epochs 0: use 1 or more",
    );
}

#[test]
fn bad_data_is_named_with_one_fix() {
    let bad = labels_out_of_range();
    train(
        &["--data", bad.path().to_str().unwrap()],
        "label 12 at index 5 is outside 0-9",
    );
    let big = images_32x32();
    train(
        &["--data", big.path().to_str().unwrap()],
        "images are 32x32, the models take 28x28",
    );
}

/// Rows of the full profile stand for the published data set: other content is refused there.
#[test]
fn full_profile_runs_need_the_published_data() {
    let own = unpublished();
    let root = own.path().to_str().unwrap();
    let line = refuses(
        BIN,
        &[
            "train",
            "--profile",
            "full",
            "--epochs",
            "1",
            "--data",
            root,
        ],
        &[],
        None,
        true,
        "content differs from the published MNIST",
    );
    assert!(
        line.ends_with("use --profile smoke for other data"),
        "{line}"
    );
}

/// `make data` fills only the workspace's data/: a folder of one's own gets the fix for that folder.
#[test]
fn missing_data_advice_follows_where_the_root_came_from() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let flag = refuses(
        BIN,
        &["train", "--profile", "smoke", "--data", dir],
        &[],
        None,
        true,
        "missing: point --data at",
    );
    let env = refuses(
        BIN,
        &["train", "--profile", "smoke"],
        &[("QUANT_DATA_ROOT", dir)],
        None,
        true,
        "missing: point QUANT_DATA_ROOT at",
    );
    for line in [flag, env] {
        assert!(!line.contains("make data"), "{line}");
    }
}

/// PocketNN keeps no checkpoints, so the shared `--checkpoints` flag is refused rather than ignored.
#[test]
fn checkpoints_are_refused() {
    train(
        &["--checkpoints", "/tmp/pocketnn-checkpoints"],
        "--checkpoints: PocketNN's runs take seconds per epoch and keep no checkpoints; drop --checkpoints",
    );
}

#[test]
fn colour_data_is_refused_naming_the_grey_sets() {
    train(
        &["--dataset", "cifar10"],
        "--dataset cifar10: pocketnn's proxies take 28x28 grey images; use --dataset mnist or fashion-mnist",
    );
}
