//! The binary end to end: `assign` output formats and errors, `tables` writing result rows.

use std::process::Command;

#[path = "../../repro/tests/support/colour.rs"]
mod colour;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixed-precision-mcu"))
}

/// Whether `set` is under the data root; says on stderr that the test skips when it is not.
fn has_data(set: &str) -> bool {
    let data = repro::datasets::default_data_root().join(set);
    if !data.is_dir() {
        eprintln!("skipping: {} missing (run make data)", data.display());
    }
    data.is_dir()
}

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("binary runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn assign_csv_prints_header_and_one_row_per_granularity() {
    let base = [
        "assign",
        "--resolution",
        "224",
        "--width",
        "0.75",
        "--rom",
        "2048000",
        "--ram",
        "512000",
        "--format",
        "csv",
        "--granularity",
    ];
    let pc = run_ok(&[&base[..], &["pc"]].concat());
    assert_eq!(
        pc,
        "config,granularity,a_out_bits,w_bits,rom_bytes,ram_bytes\n\
         224_0.75,pc,844884888888888888888888888,8888888888888888888888888844,1978532,451584\n"
    );
    let pl = run_ok(&[&base[..], &["pl"]].concat());
    assert_eq!(
        pl.lines().nth(1),
        Some("224_0.75,pl,844884888888888888888888888,8888888888888888888888888844,1931272,451584")
    );
}

#[test]
fn assign_table_lists_28_layers_and_totals() {
    let out = run_ok(&[
        "assign",
        "--resolution",
        "224",
        "--width",
        "1.0",
        "--granularity",
        "pl",
    ]);
    assert!(
        out.contains("w bits     : 8888888888888848484848884822"),
        "{out}"
    );
    assert!(out.contains("ROM        : 1939504 B"), "{out}");
    assert!(out.contains("cut order  : 26->4 27->4 24->4 26->2 27->2 14->4 16->4 18->4 20->4"));
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with("28 fc"))
            .count(),
        1
    );
}

#[test]
fn proxy_family_uses_the_same_rules() {
    let out = run_ok(&[
        "assign",
        "--family",
        "tiny8",
        "--resolution",
        "28",
        "--width",
        "1.0",
        "--rom",
        "102187",
        "--ram",
        "2000",
        "--granularity",
        "pc",
        "--format",
        "csv",
    ]);
    assert!(
        out.contains("28_1.0,pc,442844488488888888888888888,8888888888482828282828482828,98402,"),
        "{out}"
    );
}

#[test]
fn infeasible_budgets_exit_nonzero_with_one_line_naming_the_constraint() {
    for (args, constraint) in [
        (
            vec!["--width", "1.0", "--ram", "256000"],
            "RAM budget 256000 B",
        ),
        (
            vec!["--width", "1.0", "--rom", "100000"],
            "ROM budget 100000 B",
        ),
    ] {
        let out = bin()
            .args(["assign", "--format", "csv"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(constraint), "{err}");
    }
}

#[test]
fn bad_width_is_a_one_line_error() {
    let out = bin().args(["assign", "--width", "1.5"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--width 1.5 must be in (0, 1]"), "{err}");
}

#[test]
fn tables_writes_result_rows_and_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run_ok(&["tables", "--profile", "smoke", "--out", out]);
    let folder = dir.path().join("mixed-precision-mcu");
    let rows = std::fs::read_to_string(folder.join("assignment.csv")).unwrap();
    assert!(rows.starts_with("paper,source,dataset,model,method,w_bits,a_bits,metric,value"));
    assert!(rows.contains(
        "MCUNetV2 (Lin et al. NeurIPS 2021) Table 2 quoting Rusci et al.,ImageNet,MobileNetV1 0.5x r=192"
    ));
    let bits = std::fs::read_to_string(folder.join("assignment_bits.csv")).unwrap();
    assert!(bits.contains(
        "imagenet,224_0.75,STM32H743 2048000/512000,2048000,512000,pc,true,844884888888888888888888888,8888888888888888888888888844"
    ), "{bits}");
    // 16 ImageNet configs x 4 budgets x 2 granularities + 2 proxy families x 16 x 2, plus header.
    assert_eq!(bits.lines().count(), 1 + 16 * 4 * 2 + 2 * 16 * 2);
    assert!(bits.contains("RAM budget 256000 B is infeasible: layer 3 (pw)"));
    assert!(folder.join("assignment.manifest.json").is_file());
    assert!(folder.join("assignment_bits.manifest.json").is_file());
}

#[test]
fn qat_smoke_writes_integer_and_fake_quant_rows_and_latency_plots_them() {
    if !has_data("fashion-mnist") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run_ok(&["qat", "--profile", "smoke", "--threads", "1", "--out", out]);
    let folder = dir.path().join("mixed-precision-mcu");
    let rows = std::fs::read_to_string(folder.join("qat.csv")).unwrap();
    assert!(rows.contains(",Fashion-MNIST,") && !rows.contains(",MNIST,"));
    for needle in [
        "uniform w8a8 PL+FB,8,8,top1_integer_pct[FB]",
        "MixPC+ICN,mixed,8,top1_integer_pct[ICN]",
        "MixPL+FB,mixed,8,top1_fakequant_pct",
        "w4a4 PL,4,4,top1_integer_pct[thresholds]",
        "w4a4 PC,4,4,integer_minus_fakequant_pct[ICN]",
        "top1_gain_pct_points",
        "MixPC+ICN,mixed,8,mul_32x32_per_inference[ICN]",
        "w4a4 PL,4,4,mul_8x8_per_inference[thresholds]",
    ] {
        assert!(rows.contains(needle), "{needle} missing from\n{rows}");
    }
    assert!(folder.join("qat.manifest.json").is_file());
    // The summary picks on the validation tail, whose top-1 each variant records; every float and
    // QAT training leaves its curve.
    assert!(
        rows.contains("chosen per seed on validation top-1"),
        "{rows}"
    );
    assert!(
        rows.contains("MixPC+ICN,mixed,8,validation_top1_integer_pct[ICN]"),
        "{rows}"
    );
    let curves = std::fs::read_to_string(folder.join("curves.csv")).unwrap();
    for needle in [
        "float32,32,32,val_top1_pct",
        "MixPC+ICN (QAT at lr 1e-4),mixed,8,val_top1_pct",
        "w4a4 PL (QAT at lr 1e-4),4,4,train_loss",
    ] {
        assert!(curves.contains(needle), "{needle} missing from\n{curves}");
    }
    // The smoke rows are not full-profile rows, so the plot is skipped, but the table is written.
    let out2 = bin()
        .args(["latency", "--profile", "smoke", "--out", out])
        .output()
        .unwrap();
    assert!(out2.status.success());
    let latency = std::fs::read_to_string(folder.join("latency.csv")).unwrap();
    assert!(latency.contains("MobileNetV1 224_0.75,MixPC under STM32H743 2048000/512000,mixed,mixed,latency_rel_to_best_fitting_8bit"));
    assert!(String::from_utf8_lossy(&out2.stderr).contains("run `qat --profile full`"));
}

/// A unit per configuration (`--config`, in any order) writes the rows one run of every
/// configuration writes, the E1 headline rows included: they are derived from the whole table.
#[test]
fn units_of_one_configuration_each_give_the_rows_of_one_run() {
    if !has_data("fashion-mnist") {
        return;
    }
    let (whole, units) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e1 = [
        "qat",
        "--profile",
        "smoke",
        "--threads",
        "1",
        "--experiment",
        "e1",
    ];
    let out = |dir: &tempfile::TempDir| dir.path().to_str().unwrap().to_string();
    run_ok(&[&e1[..], &["--out", &out(&whole)]].concat());
    for config in ["16_1.0", "16_0.25"] {
        run_ok(&[&e1[..], &["--config", config, "--out", &out(&units)]].concat());
    }
    // Every column but the run id.
    let rows = |dir: &tempfile::TempDir| -> Vec<String> {
        let text = std::fs::read_to_string(dir.path().join("mixed-precision-mcu/qat.csv")).unwrap();
        let mut rows: Vec<String> = text
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect();
        rows.sort();
        rows
    };
    let (a, b) = (rows(&whole), rows(&units));
    assert!(
        a.iter().any(|r| r.contains("top1_gain_pct_points")),
        "{a:?}"
    );
    assert_eq!(a, b);
    let err = bin()
        .args([
            "qat",
            "--profile",
            "smoke",
            "--config",
            "30_0.5",
            "--out",
            &out(&units),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8(err.stderr).unwrap();
    assert!(
        err.contains("--config 30_0.5: not a proxy configuration; use one of 28_1.0"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn missing_data_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "qat",
            "--data",
            dir.path().to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    // --data names the user's own folder: `make data` would not fill it, so the fix is --data's.
    assert!(
        err.contains("missing: point --data at") && !err.contains("make data"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The rows name the data set the run trained on (before, every row said Fashion-MNIST).
#[test]
fn qat_rows_name_the_data_set() {
    if !has_data("mnist") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run_ok(&[
        "qat",
        "--profile",
        "smoke",
        "--dataset",
        "mnist",
        "--experiment",
        "e3",
        "--out",
        out,
    ]);
    let rows = std::fs::read_to_string(dir.path().join("mixed-precision-mcu/qat.csv")).unwrap();
    let data_rows = rows.lines().skip(1);
    assert!(
        data_rows.clone().count() > 0
            && data_rows
                .clone()
                .all(|r| r.contains(",MNIST,") && r.contains(",MNIST (train")),
        "{rows}"
    );
}

/// `--dataset cifar10` builds the proxies for three input planes and scales the budget by that
/// family's largest model; the integer graph (which takes channels innermost) scores what the
/// fake-quantized model scores. 15 float epochs train the smoke model above chance (10 %); fed the
/// planes as they are stored, the MixPC+ICN graph lost 11.7 points against its fake-quantized model
/// (measured), with them interleaved 0.
#[test]
fn colour_data_deploys_like_the_fake_quantized_model() {
    let data = colour::cifar_root(repro::cifar::Cifar::Ten, 700, 200);
    let dir = tempfile::tempdir().unwrap();
    run_ok(&[
        "qat",
        "--profile",
        "smoke",
        "--dataset",
        "cifar10",
        "--data",
        data.path().to_str().unwrap(),
        "--epochs",
        "15",
        "--experiment",
        "e1",
        "--config",
        "16_0.25",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let rows: Vec<repro::results::ResultRow> =
        repro::results::read_rows(&dir.path().join("mixed-precision-mcu/qat.csv")).unwrap();
    assert!(rows.iter().all(|r| r.dataset == "CIFAR-10"));
    let value = |method: &str, metric: &str| {
        rows.iter()
            .find(|r| r.method == method && r.metric == metric)
            .map(|r| r.value)
            .unwrap_or_else(|| panic!("no {method} {metric}"))
    };
    let fake_quant = value("MixPC+ICN", "top1_fakequant_pct");
    assert!(fake_quant >= 20.0, "{fake_quant}");
    let gap = value("MixPC+ICN", "integer_minus_fakequant_pct[ICN]");
    assert!(gap.abs() <= 5.0, "{gap}");
}
