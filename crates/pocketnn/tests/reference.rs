//! PocketNN against the reference implementation: the official C++ code, built and run on Linux/glibc,
//! printed these numbers for the data `make data` provides (experiments/pocketnn/README.md, "Bit-exactness
//! with the reference"). `--rng glibc` must reproduce them exactly. Needs the real data sets: run
//! `make data` first (`make test` does).

use std::process::Command;

/// `(epoch, SumLoss, running train correct, test correct)` parsed from the binary's epoch lines.
fn epochs(dataset: &str, n: u32) -> Vec<(u32, u64, u64, u64)> {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pocketnn"))
        .args([
            "train",
            "--profile",
            "full",
            "--rng",
            "glibc",
            "--dataset",
            dataset,
        ])
        .args(["--epochs", &n.to_string(), "--out"])
        .arg(out_dir.path())
        .output()
        .expect("pocketnn runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pocketnn failed (the real data sets are needed: run `make data`): {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("epoch "))
        .map(|l| {
            // "1: SumLoss  1070190  train 54667/60000 (91.1117%)  test  9484/10000 (94.84%)  ..."
            let words: Vec<&str> = l.split_whitespace().collect();
            let count = |w: &str| w.split('/').next().unwrap().parse::<u64>().unwrap();
            (
                words[0].trim_end_matches(':').parse().unwrap(),
                words[2].parse().unwrap(),
                count(words[4]),
                count(words[7]),
            )
        })
        .collect()
}

#[test]
fn mnist_glibc_epochs_equal_the_reference() {
    let got = epochs("mnist", 3);
    assert_eq!(got.len(), 3, "three epoch lines expected: {got:?}");
    assert_eq!(got[0], (1, 1_070_190, 54_667, 9_484), "epoch 1");
    // The reference prints 96.43 % test accuracy after its shipped three epochs.
    assert_eq!((got[2].0, got[2].3), (3, 9_643), "epoch 3 test correct");
}

#[test]
fn fashion_mnist_glibc_epoch_one_equals_the_reference() {
    let got = epochs("fashion-mnist", 1);
    assert_eq!(got, [(1, 1_971_120, 47_937, 8_398)]);
}
