//! The binary end to end in the smoke profile, and its error for missing data.

use std::process::Command;

fn rows(path: &std::path::Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    r.records().map(|x| x.unwrap()).collect()
}

#[test]
fn smoke_profile_writes_every_table() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_integer-qat"))
        .args(["--profile", "smoke", "--dataset", "mnist", "--out"])
        .arg(out.path())
        .arg("--checkpoints")
        .arg(out.path().join("ckpt"))
        .arg("all")
        .status()
        .unwrap();
    assert!(status.success());
    let dir = out.path().join("integer-qat");
    for table in [
        "e1_depth",
        "e3_relu",
        "e4_bits",
        "e5_latency",
        "e8_agreement",
    ] {
        let path = dir.join(format!("{table}.csv"));
        let rows = rows(&path);
        assert!(!rows.is_empty(), "{table} is empty");
        assert!(
            dir.join(format!("{table}.manifest.json")).exists(),
            "{table} manifest"
        );
        for r in &rows {
            assert_eq!(&r[0], "jacob2018");
            assert_eq!(&r[2], "MNIST");
            assert!(!r[9].is_empty(), "proxy rows say what ran");
            assert!(
                r[9].contains("192 train / 96 test images, QAT on 128"),
                "{}",
                &r[9]
            );
            let v: f64 = r[8].parse().unwrap();
            assert!(v.is_finite(), "{table}: {r:?}");
        }
    }
    // The Table 4.1 rows reuse the published key strings exactly.
    let e1 = rows(&dir.join("e1_depth.csv"));
    assert!(e1.iter().any(
        |r| &r[1] == "arXiv:1712.05877v1 Table 4.1 / CVPR2018 Table 4.1"
            && &r[3] == "ResNet-50"
            && &r[4] == "QAT integer-only (per-layer uint8)"
            && &r[7] == "top1_acc_pct"
    ));
    let e8 = rows(&dir.join("e8_agreement.csv"));
    let agreement: Vec<f64> = e8
        .iter()
        .filter(|r| &r[7] == "agreement")
        .map(|r| r[8].parse().unwrap())
        .collect();
    assert!(!agreement.is_empty() && agreement.iter().all(|a| (0.0..=1.0).contains(a)));
    assert!(dir.join("e5_latency_accuracy.svg").exists());
}

#[test]
fn missing_data_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_integer-qat"))
        .args(["--profile", "smoke", "--data"])
        .arg(empty.path())
        .arg("--out")
        .arg(empty.path())
        .arg("depth")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    // --data names a folder of the user's: `make data` would not fill it, so it is not the advice.
    assert!(
        msg.contains("missing: point --data at a folder") && !msg.contains("make data"),
        "{msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "one-line error: {msg}");
}
