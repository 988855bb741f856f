//! The binary end to end in the smoke profile.

use std::process::Command;

fn schemes(out: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_schemes"))
        .args(["--profile", "smoke", "--out"])
        .arg(out)
        .arg("--checkpoints")
        .arg(out.join("ckpt"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn smoke_run_measures_every_scheme_and_prints_the_table() {
    let out = tempfile::tempdir().unwrap();
    let run = schemes(out.path(), &["run"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = out.path().join("schemes/mlp.csv");
    let rows: Vec<csv::StringRecord> = read_rows_of(&table);
    let value = |method: &str, w: &str, metric: &str| -> f64 {
        let r = rows
            .iter()
            .find(|r| &r[4] == method && &r[5] == w && &r[7] == metric)
            .unwrap_or_else(|| panic!("no {metric} row of {method} {w}"));
        r[8].parse().unwrap()
    };
    for (method, w) in [
        ("float32", "32"),
        ("Jacob int8 PTQ", "8"),
        ("Jacob int8 QAT", "8"),
        ("F8Net fixed point (PTQ)", "8"),
        ("Uniform weights (PTQ)", "4"),
        ("AdaptivFloat weights (PTQ)", "6"),
        ("PocketNN (integer-only training)", "32"),
    ] {
        let top1 = value(method, w, "top1_acc_pct");
        assert!((0.0..=100.0).contains(&top1), "{method}: {top1}");
        assert!(value(method, w, "model_bytes") > 0.0);
    }
    // The engine counted what it ran: one requantization multiply per output of the three layers,
    // and one 8x8 product per weight.
    assert_eq!(
        value("Jacob int8 PTQ", "8", "mul_32x32_per_inference"),
        (256 + 256 + 10) as f64
    );
    assert_eq!(
        value("Jacob int8 QAT", "8", "mul_8x8_per_inference"),
        (784 * 256 + 256 * 256 + 256 * 10) as f64
    );
    // F8Net's graph rescales by shifts only: no 32-bit multiply, one shift per requantized value.
    assert_eq!(
        value("F8Net fixed point (PTQ)", "8", "mul_32x32_per_inference"),
        0.0
    );
    assert!(value("F8Net fixed point (PTQ)", "8", "shifts_per_inference") >= 512.0);
    // 4-bit weights take half the bytes of 8-bit ones (plus the same per-tensor parameters).
    let (w8, w4) = (
        value("Uniform weights (PTQ)", "8", "model_bytes"),
        value("Uniform weights (PTQ)", "4", "model_bytes"),
    );
    assert!((w8 - 2.0 * w4).abs() <= 6.0 * 4.0, "{w8} {w4}");
    assert!(out.path().join("schemes/mlp.svg").exists());
    // The Burn trainings leave their validation curves (float, then QAT), drawn beside them.
    let curves: Vec<csv::StringRecord> = read_rows_of(out.path().join("schemes/mlp_curves.csv"));
    for method in ["float32", "Jacob int8 QAT"] {
        assert!(
            curves
                .iter()
                .any(|r| &r[4] == method && &r[7] == "val_top1_pct"),
            "no validation curve of {method}"
        );
    }
    assert!(out.path().join("schemes/mlp_curves.svg").exists());
    // Rusci's variants run on the MLP as a chain of their graph: the same products as Jacob's.
    let mlp: Vec<csv::StringRecord> = read_rows_of(out.path().join("schemes/mlp.csv"));
    let rusci_products: Vec<f64> = mlp
        .iter()
        .filter(|r| r[4].starts_with("Rusci ") && &r[7] == "mul_8x8_per_inference")
        .map(|r| r[8].parse().unwrap())
        .collect();
    assert!(
        rusci_products.len() >= 2 && rusci_products.iter().all(|&p| p == 268_800.0),
        "{rusci_products:?}"
    );

    // The MobileNet proxy: the same generic schemes plus Rusci's variants on their sub-byte graph;
    // Rusci's graph and F8Net's fixed8 engine count the same 8x8 products as Jacob's engine for the
    // same layers, and F8Net's rescales the convolutions by shifts only.
    let mobilenet: Vec<csv::StringRecord> = read_rows_of(out.path().join("schemes/mobilenet.csv"));
    let products = |prefix: &str| -> Vec<f64> {
        mobilenet
            .iter()
            .filter(|r| r[4].starts_with(prefix) && &r[7] == "mul_8x8_per_inference")
            .map(|r| r[8].parse().unwrap())
            .collect()
    };
    let (jacob, rusci) = (products("Jacob int8 PTQ"), products("Rusci "));
    assert!(
        !rusci.is_empty() && rusci.iter().all(|&p| p == jacob[0]),
        "{jacob:?} {rusci:?}"
    );
    assert_eq!(products("F8Net"), jacob);
    let f8_multiplies = mobilenet
        .iter()
        .find(|r| r[4].starts_with("F8Net") && &r[7] == "mul_32x32_per_inference")
        .map(|r| r[8].parse::<f64>().unwrap());
    assert_eq!(f8_multiplies, Some(0.0));
    // Every integer scheme's graph is timed, Rusci's included.
    for prefix in ["Jacob int8 PTQ", "F8Net", "Rusci "] {
        let timed = mobilenet
            .iter()
            .filter(|r| r[4].starts_with(prefix) && &r[7] == "latency_ms_batch1_1thread")
            .map(|r| r[8].parse::<f64>().unwrap())
            .collect::<Vec<_>>();
        assert!(
            !timed.is_empty() && timed.iter().all(|&ms| ms > 0.0),
            "{prefix}: {timed:?}"
        );
    }
    assert!(out.path().join("schemes/mobilenet_curves.svg").exists());

    // The ResNet proxy: F8Net's graph runs the same convolutions as Jacob's engine (residual adds
    // aligned by shifts), with no 32-bit multiply.
    let resnet: Vec<csv::StringRecord> = read_rows_of(out.path().join("schemes/resnet.csv"));
    let metric = |prefix: &str, name: &str| -> Option<f64> {
        resnet
            .iter()
            .find(|r| r[4].starts_with(prefix) && &r[7] == name)
            .map(|r| r[8].parse().unwrap())
    };
    let jacob_products = metric("Jacob int8 QAT", "mul_8x8_per_inference");
    assert!(jacob_products.is_some_and(|p| p > 0.0));
    assert_eq!(metric("F8Net", "mul_8x8_per_inference"), jacob_products);
    assert_eq!(metric("F8Net", "mul_32x32_per_inference"), Some(0.0));
    assert!(out.path().join("schemes/resnet_curves.svg").exists());

    let printed = schemes(out.path(), &["table"]);
    assert!(printed.status.success());
    let text = String::from_utf8_lossy(&printed.stdout);
    let tables: Vec<&str> = text.split("| scheme |").skip(1).collect();
    assert_eq!(tables.len(), 3, "{text}");
    // MLP: header rule, float, 2 Jacob, F8Net, 3 + 3 formats, PocketNN, and Rusci's start and
    // variants (at least one per budget).
    assert!(
        tables[0]
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("| float32 | 32/32 |")
    );
    let rows = |rusci: bool| {
        tables[0]
            .lines()
            .filter(|l| l.starts_with("| ") && l.starts_with("| Rusci ") == rusci)
            .count()
    };
    assert_eq!(rows(false), 11, "{}", tables[0]);
    assert!(rows(true) >= 3, "{}", tables[0]);
    assert!(tables[1].contains("| Rusci "), "{}", tables[1]);
}

#[test]
fn epochs_are_refused_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let run = schemes(out.path(), &["--epochs", "3", "run"]);
    assert!(!run.status.success());
    let message = String::from_utf8_lossy(&run.stderr);
    assert!(message.contains("--epochs"), "{message}");
}

/// The records of the CSV table at `path`.
fn read_rows_of(path: impl AsRef<std::path::Path>) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}
