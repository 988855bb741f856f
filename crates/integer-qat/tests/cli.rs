//! The binary end to end in the smoke profile, and its error for missing data.

use std::process::Command;

#[path = "../../repro/tests/support/colour.rs"]
mod colour;

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
        "e2_schemes",
        "e3_relu",
        "e4_bits",
        "e5_latency",
        "e8_agreement",
        "curves",
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
                r[9].contains(
                    "192 train / 64 validation / 96 test images, QAT on 128 for 1 epoch(s)"
                ),
                "{}",
                &r[9]
            );
            let v: f64 = r[8].parse().unwrap();
            assert!(v.is_finite(), "{table}: {r:?}");
        }
    }
    // E5 at the paper's shapes: the full-size MobileNetV1 at 128x128 (the smoke grid), float and
    // integer latencies at 1 and 2 threads and both speedups, on noise images.
    let shapes = rows(&dir.join("e5_shapes.csv"));
    assert_eq!(shapes.len(), 2 * 6, "two seeds of six rows");
    for r in &shapes {
        assert_eq!(&r[3], "MobileNet_v1_0.25_128");
        assert_eq!(&r[2], "noise images (ImageNet shape)");
        let v: f64 = r[8].parse().unwrap();
        assert!(v > 0.0 && v.is_finite(), "{r:?}");
    }
    // The Table 4.1 rows reuse the published key strings exactly.
    let e1 = rows(&dir.join("e1_depth.csv"));
    assert!(e1.iter().any(
        |r| &r[1] == "arXiv:1712.05877v1 Table 4.1 / CVPR2018 Table 4.1"
            && &r[3] == "ResNet-50"
            && &r[4] == "QAT integer-only (per-layer uint8)"
            && &r[7] == "top1_acc_pct"
    ));
    // Table 4.2: every published column, keyed as published, per seed.
    let e2 = rows(&dir.join("e2_schemes.csv"));
    for (method, w, a) in [
        ("BWN (binary weight networks)", "1", "32"),
        ("TWN (ternary weight networks)", "2", "32"),
        ("INQ (incremental network quantization)", "5", "32"),
        ("FGQ (fine-grained quantization)", "2", "8"),
        ("QAT integer-only (ours)", "8", "8"),
    ] {
        let n = e2
            .iter()
            .filter(|r| &r[3] == "ResNet-50" && &r[4] == method && &r[5] == w && &r[6] == a)
            .count();
        assert_eq!(n, 2, "{method}: one row per smoke seed");
    }
    let e8 = rows(&dir.join("e8_agreement.csv"));
    let agreement: Vec<f64> = e8
        .iter()
        .filter(|r| &r[7] == "agreement")
        .map(|r| r[8].parse().unwrap())
        .collect();
    assert!(!agreement.is_empty() && agreement.iter().all(|a| (0.0..=1.0).contains(a)));
    assert!(dir.join("e5_latency_accuracy.svg").exists());
    // Every float and QAT run of E1 to E5 leaves its validation curve, for both smoke seeds.
    let curves = rows(&dir.join("curves.csv"));
    for source in [
        "Table 4.1",
        "Table 4.2",
        "Table 4.3",
        "Table 4.7",
        "COMPANION",
    ] {
        for seed in ["0", "1"] {
            assert!(
                curves.iter().any(|r| r[1].contains(source)
                    && &r[7] == "val_top1_pct"
                    && &r[11] == seed
                    && &r[12] == "1"),
                "no validation curve of {source}, seed {seed}"
            );
        }
    }
}

/// Seeds run as separate units (`--seed k --seeds 1`) merge: E3's mean row is over both units.
#[test]
fn seeds_run_as_units_add_up_in_the_mean_rows() {
    let out = tempfile::tempdir().unwrap();
    for seed in ["0", "1"] {
        let status = Command::new(env!("CARGO_BIN_EXE_integer-qat"))
            .args(["--profile", "smoke", "--dataset", "mnist", "--seeds", "1"])
            .args(["--seed", seed, "--out"])
            .arg(out.path())
            .arg("--checkpoints")
            .arg(out.path().join("ckpt"))
            .arg("relu")
            .status()
            .unwrap();
        assert!(status.success());
    }
    let e3 = rows(&out.path().join("integer-qat/e3_relu.csv"));
    let pick = |metric: &str, method: &str, seed: &str| -> Vec<f64> {
        e3.iter()
            .filter(|r| {
                &r[3] == "Inception-v3 (ReLU6)"
                    && &r[4] == method
                    && &r[5] == "8"
                    && &r[7] == metric
                    && (seed.is_empty() || &r[11] == seed)
            })
            .map(|r| r[8].parse().unwrap())
            .collect()
    };
    let method = "QAT integer-only";
    let per_seed = [
        pick("top1_acc_pct", method, "0"),
        pick("top1_acc_pct", method, "1"),
    ];
    assert!(per_seed.iter().all(|v| v.len() == 1), "{per_seed:?}");
    let mean = pick("top1_acc_mean_pct", method, "");
    assert_eq!(mean.len(), 1, "one mean row per setting: {mean:?}");
    assert!((mean[0] - (per_seed[0][0] + per_seed[1][0]) / 2.0).abs() < 1e-9);
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

/// A data root with the first 600 / 200 images of the real Fashion-MNIST, training labels shifted by
/// `shift` (mod 10): same folder names and sizes, other content.
fn slice_of_real_data(shift: u8) -> tempfile::TempDir {
    use repro::datasets::{DatasetName, default_data_root, load, write_idx_dataset};
    let real = load(&default_data_root(), DatasetName::FashionMnist)
        .unwrap_or_else(|e| panic!("{e}: run make data"));
    let mut train = real.train.truncated(600);
    for l in &mut train.labels {
        *l = (*l + shift) % 10;
    }
    let dir = tempfile::tempdir().unwrap();
    write_idx_dataset(
        dir.path(),
        DatasetName::FashionMnist,
        &train,
        &real.test.truncated(200),
    )
    .unwrap();
    dir
}

/// Checkpoint folders under `dir`.
fn checkpoints(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The same command on relabelled data of the same size under the same folder name trains anew
/// (before, the checkpoint was matched by profile, folder name, recipe and training-set size, and
/// the clean run's models came back); the same data again resumes every training.
#[test]
fn other_data_does_not_reuse_a_checkpoint() {
    let work = tempfile::tempdir().unwrap();
    let ckpt = work.path().join("ckpt");
    let run = |data: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_integer-qat"))
            .args(["--profile", "smoke", "--data"])
            .arg(data)
            .arg("--out")
            .arg(work.path().join("out"))
            .arg("--checkpoints")
            .arg(&ckpt)
            .arg("depth")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        checkpoints(&ckpt)
    };
    let clean = slice_of_real_data(0);
    let shifted = slice_of_real_data(1);
    let first = run(clean.path());
    assert!(!first.is_empty());
    let second = run(shifted.path());
    assert_eq!(second.len(), 2 * first.len(), "{second:?}");
    assert_eq!(run(clean.path()), second, "the clean data again resumes");
}

/// An E5 unit is one seed and one width of the grid; a width outside the grid is refused, naming
/// the grid.
#[test]
fn latency_runs_one_width_and_refuses_one_outside_the_grid() {
    let out = tempfile::tempdir().unwrap();
    let run = |width: &str| {
        Command::new(env!("CARGO_BIN_EXE_integer-qat"))
            .args(["--profile", "smoke", "--dataset", "mnist", "--seeds", "1"])
            .args(["--seed", "1", "--out"])
            .arg(out.path())
            .arg("--checkpoints")
            .arg(out.path().join("ckpt"))
            .args(["latency", "--width", width])
            .output()
            .unwrap()
    };
    let refused = run("0.3");
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--width 0.3 is not in the smoke profile's grid: use one of 0.25"),
        "{message}"
    );
    assert!(run("0.25").status.success());
    let e5 = rows(&out.path().join("integer-qat/e5_latency.csv"));
    assert!(!e5.is_empty() && e5.iter().all(|r| &r[11] == "1"));
    assert!(e5.iter().all(|r| r[3].starts_with("MobileNet_v1_0.25_")));
}

/// `--dataset cifar100` trains colour 100-class models: the tables name CIFAR-100, and the integer
/// engine (which takes channels innermost) computes exactly what the integer simulation of the
/// planar images computes, image for image.
#[test]
fn colour_data_runs_through_the_engine_exactly() {
    let work = colour::cifar_root(repro::cifar::Cifar::Hundred, 300, 96);
    let o = Command::new(env!("CARGO_BIN_EXE_integer-qat"))
        .args(["--profile", "smoke", "--dataset", "cifar100", "--data"])
        .arg(work.path())
        .arg("--out")
        .arg(work.path().join("out"))
        .arg("depth")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("no published checksums of CIFAR-100"),
        "{stderr}"
    );
    let e8 = rows(&work.path().join("out/integer-qat/e8_agreement.csv"));
    let agreement: Vec<_> = e8.iter().filter(|r| &r[7] == "agreement").collect();
    assert!(!agreement.is_empty());
    for r in &agreement {
        assert_eq!(&r[2], "CIFAR-100");
        assert_eq!(r[8].parse::<f64>().unwrap(), 1.0, "{r:?}");
    }
}

/// A missing CIFAR folder is one line naming the archive to unpack (nothing is downloaded).
#[test]
fn missing_cifar_names_the_archive() {
    let o = Command::new(env!("CARGO_BIN_EXE_integer-qat"))
        .args([
            "--profile",
            "smoke",
            "--dataset",
            "cifar10",
            "--data",
            "/nonexistent",
        ])
        .arg("depth")
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "one-line error: {msg}");
}
