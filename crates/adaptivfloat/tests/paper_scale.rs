//! `adaptivfloat accuracy --profile paper` end to end on a folder laid out like ImageNet's
//! validation split (a few small JPEGs) and a ResNet-50 checkpoint in torchvision's layout (the
//! zoo's own initial weights, saved as safetensors): the rows of Tables 1 and 2 (PTQ) with the
//! published keys and no proxy, and the errors of a run missing its data or checkpoint.

use std::path::Path;
use std::process::{Command, Output};

use burn::prelude::Device;
use image::{Rgb, RgbImage};
use quant_train::{ModelConfig, ModelSpec, pretrained};

fn adaptivfloat(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adaptivfloat"))
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

fn imagenet_like(root: &Path) {
    for (class, value) in [("n01440764", 30u8), ("n01443537", 220u8)] {
        let dir = root.join("val").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..2u32 {
            RgbImage::from_fn(40 + i, 30, |x, y| {
                Rgb([value, (x * 5) as u8, (y * 7) as u8])
            })
            .save(dir.join(format!("ILSVRC2012_val_{i}.JPEG")))
            .unwrap();
        }
    }
}

#[test]
fn paper_profile_scores_a_checkpoint_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("imagenet");
    imagenet_like(&data);
    let mut config = ModelConfig::new(ModelSpec::ImageNetResNet(50), 1);
    config.input = [3, 224, 224];
    config.classes = 1000;
    let checkpoint = dir.path().join("resnet50.safetensors");
    pretrained::save(&config, &config.build(&Device::flex()), &checkpoint).unwrap();
    let out_dir = dir.path().join("out");
    let out = adaptivfloat(
        &["accuracy", "--profile", "paper", "--threads", "2", "--data"],
        &[
            &data,
            Path::new("--pretrained"),
            &checkpoint,
            Path::new("--out"),
            &out_dir,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(out_dir.join("adaptivfloat/accuracy.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // FP32, three weight statistics, five formats at six widths.
    assert_eq!(rows.len(), 1 + 3 + 30, "{csv}");
    for needle in [
        "DAC2020 Table 1,ImageNet,ResNet-50,FP32/baseline,32,32,top1_acc_pct,",
        "DAC2020 Table 1,ImageNet,ResNet-50,FP32/weight-stats,32,32,num_params_millions,25.557032,",
        "DAC2020 Table 2,ImageNet,ResNet-50,AdaptivFloat/PTQ-weights-only,4,32,top1_acc_pct,",
        "DAC2020 Table 2,ImageNet,ResNet-50,Posit/PTQ-weights-only,16,32,top1_acc_pct,",
    ] {
        assert!(csv.contains(needle), "missing {needle} in\n{csv}");
    }
    assert!(rows.iter().all(|r| r.contains(",paper,")), "{csv}");
    assert!(out_dir.join("adaptivfloat/accuracy.manifest.json").exists());
}

#[test]
fn paper_profile_errors_name_the_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let no_checkpoint = adaptivfloat(&["accuracy", "--profile", "paper", "--data"], &[dir.path()]);
    let err = String::from_utf8_lossy(&no_checkpoint.stderr);
    assert!(
        !no_checkpoint.status.success() && err.contains("--pretrained"),
        "{err}"
    );
    let mlp = adaptivfloat(&["accuracy", "--profile", "paper", "--model", "mlp"], &[]);
    let err = String::from_utf8_lossy(&mlp.stderr);
    assert!(!mlp.status.success() && err.contains("ResNet-50"), "{err}");
    let stray = adaptivfloat(
        &["rmse", "--profile", "smoke", "--pretrained"],
        &[dir.path()],
    );
    let err = String::from_utf8_lossy(&stray.stderr);
    assert!(
        !stray.status.success() && err.contains("--pretrained"),
        "{err}"
    );
    let unbuilt = adaptivfloat(&["rmse", "--profile", "paper"], &[]);
    let err = String::from_utf8_lossy(&unbuilt.stderr);
    assert!(
        !unbuilt.status.success() && err.contains("no paper-scale run"),
        "{err}"
    );
}
