//! `integer-qat depth --profile paper` end to end on a folder laid out like ImageNet (train/ and
//! val/, one folder per class, small reddish and bluish JPEGs) and a float MobileNetV1
//! checkpoint the test trains on it and saves in the zoo's layout: the float model, the 8-bit PTQ
//! model and the 8-bit QAT model, both run on the integer engine from the uint8 pixels (the input
//! normalization as the engine's code table), all classify the validation images; the rows carry
//! Table 4.1's keys with no proxy. Then the errors of a paper run missing its inputs.

use std::path::Path;
use std::process::{Command, Output};

use burn::prelude::Device;
use quant_train::train::train;
use quant_train::{ModelConfig, ModelSpec, Phase, RunOptions, TrainConfig, pretrained, score};
use repro::image_folder::ImageFolder;

#[path = "../../repro/tests/support/jpeg_folder.rs"]
mod jpeg_folder;
use jpeg_folder::write_split;

fn integer_qat(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_integer-qat"))
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

fn imagenet_like(root: &Path) {
    write_split(root, "train", 24);
    write_split(root, "val", 6);
}

#[test]
fn paper_profile_fine_tunes_a_checkpoint_onto_the_integer_engine() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("imagenet");
    imagenet_like(&data);
    let arch = ModelSpec::ImageNetMobileNetV1(0.25);
    let mut config = ModelConfig::new(arch.clone(), 3);
    config.input = [3, 224, 224];
    config.classes = 2;
    let folder = ImageFolder::open(&data, "train", 3, 224).unwrap();
    let mut recipe = TrainConfig::adam(10, 2e-3, 3);
    recipe.batch_size = 16;
    let dev = Device::flex();
    let (float, _) = train(
        config.build(&dev),
        &folder,
        &recipe,
        &RunOptions::default(),
        &dev,
    )
    .unwrap();
    let val = ImageFolder::open(&data, "val", 3, 224).unwrap();
    let trained = score(&float, &val, 4, &Phase::FLOAT_EVAL, &dev, "").unwrap();
    assert!(
        trained >= 90.0,
        "the float checkpoint learned nothing: {trained} %"
    );
    let checkpoint = dir.path().join("mbv1.safetensors");
    pretrained::save(&config, &float, &checkpoint).unwrap();

    let out_dir = dir.path().join("out");
    let out = integer_qat(
        &[
            "depth",
            "--profile",
            "paper",
            "--arch",
            "imagenet-mbv1:0.25",
            "--epochs",
            "1",
            "--threads",
            "2",
            "--data",
        ],
        &[
            &data,
            Path::new("--pretrained"),
            &checkpoint,
            Path::new("--out"),
            &out_dir,
            Path::new("--checkpoints"),
            &dir.path().join("checkpoints"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let csv = std::fs::read_to_string(out_dir.join("integer-qat/e1_depth.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let key =
        "jacob2018,arXiv:1712.05877v1 Table 4.1 / CVPR2018 Table 4.1,ImageNet,MobileNetV1 0.25";
    for method in [
        "float,32,32",
        "QAT integer-only (per-layer uint8),8,8",
        "PTQ integer-only (per-layer uint8),8,8",
    ] {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("{key},{method},top1_acc_pct,")))
            .unwrap_or_else(|| panic!("no {method} row in\n{csv}"));
        let fields: Vec<&str> = row.split(',').collect();
        let top1: f64 = fields[8].parse().unwrap();
        assert!(top1 >= 90.0, "{method}: {top1} % ({stderr})");
        // No proxy; the paper profile, seed 0, one fine-tuning epoch.
        assert_eq!(&fields[9..13], ["", "paper", "0", "1"], "{row}");
    }
    let curves = std::fs::read_to_string(out_dir.join("integer-qat/curves.csv")).unwrap();
    assert!(curves.lines().count() > 1, "{curves}");
    assert!(out_dir.join("integer-qat/e1_depth.manifest.json").exists());
    // The fine-tuning checkpointed its epoch where the flag says, not in the workspace.
    let saved = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .count();
    assert_eq!(saved, 1, "one fine-tuning checkpoint");
}

#[test]
fn paper_profile_errors_name_the_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let error = |args: &[&str], extra: &[&Path]| {
        let out = integer_qat(args, extra);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let paper = ["depth", "--profile", "paper"];
    assert!(error(&paper, &[]).contains("pass --data with the ImageNet folder"));
    let data = [&paper[..], &["--data"]].concat();
    assert!(error(&data, &[dir.path()]).contains("pass --pretrained"));
    assert!(error(&["relu", "--profile", "paper"], &[]).contains("runs `depth` only"));
    assert!(error(&["depth", "--arch", "imagenet-resnet50"], &[]).contains("drop --arch"));
    let proxy_arch = [
        &paper[..],
        &["--arch", "cnn", "--pretrained", "x.pth", "--data"],
    ]
    .concat();
    assert!(error(&proxy_arch, &[dir.path()]).contains("the zoo's ImageNet models"));
}
