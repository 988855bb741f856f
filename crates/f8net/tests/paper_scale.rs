//! `f8net --model resnet18 --profile paper` end to end on a folder laid out like ImageNet (train/
//! and val/, one folder per class, small reddish and bluish JPEGs) and a ResNet-18 checkpoint in
//! torchvision's layout the test writes from the zoo's model: the float row scores the checkpoint
//! as the zoo's float model does, the F8Net row comes from the shift-only engine after tiny
//! fine-tuning, both with the Tiny Finetuning rows' keys and no proxy. The checkpoint loads into
//! the F8Net graph layer for layer. Then the errors of a paper run missing its inputs.

use std::path::Path;
use std::process::{Command, Output};

use burn::prelude::*;
use f8net::graph::{Arch, Graph, Input, InputCoding};
use f8net::model::{Method, Network};
use f8net::paper_scale::load_pretrained;
use quant_train::{ModelConfig, ModelSpec, Phase, pretrained, score};
use repro::image_folder::ImageFolder;

#[path = "../../repro/tests/support/jpeg_folder.rs"]
mod jpeg_folder;
use jpeg_folder::write_split;

fn f8net(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_f8net"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `f8net --profile paper` with `args` on an ImageNet-like folder in `dir` (8 training and 3
/// validation images per class), results under `dir/out` and checkpoints under
/// `dir/checkpoints`; returns the main table.
fn paper_run(dir: &Path, args: &[&str], extra: &[&Path]) -> String {
    let data = dir.join("imagenet");
    write_split(&data, "train", 8);
    write_split(&data, "val", 3);
    let out_dir = dir.join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_f8net"))
        .args(args)
        .args(extra)
        .args(["--profile", "paper", "--threads", "2", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out_dir)
        .arg("--checkpoints")
        .arg(dir.join("checkpoints"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    std::fs::read_to_string(out_dir.join("f8net/main.csv")).unwrap()
}

/// The fields of the row of `key` and `method` in `csv`.
fn row_of<'a>(csv: &'a str, key: &str, method: &str) -> Vec<&'a str> {
    csv.lines()
        .find(|r| r.starts_with(&format!("{key},{method},top1_acc_pct,")))
        .unwrap_or_else(|| panic!("no {method} row in\n{csv}"))
        .split(',')
        .collect()
}

/// A random ResNet-18 of the zoo with two classes, saved in torchvision's layout.
fn resnet18_checkpoint(path: &Path) -> ModelConfig {
    let mut config = ModelConfig::new(ModelSpec::ImageNetResNet(18), 3);
    config.input = [3, 224, 224];
    config.classes = 2;
    let net = config.build(&Device::flex());
    pretrained::save(&config, &net, path).unwrap();
    config
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Every convolution, batch norm and the classifier of the checkpoint land in the F8Net layer of
/// the same place: the zoo's layers in order are the graph's convolutions in order.
#[test]
fn a_torchvision_checkpoint_loads_layer_for_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet18.safetensors");
    let config = resnet18_checkpoint(&path);
    let zoo = pretrained::load(&config, &path, &Device::flex()).unwrap();
    let input = Input {
        channels: 3,
        side: 224,
        classes: 2,
    };
    let graph = Graph::imagenet(Arch::ResNet18, 1.0, input, InputCoding::Normalized);
    let mut model = Network::new(
        graph,
        Method::FullPrecision { pact: false },
        9,
        &Device::flex(),
    );
    load_pretrained(&mut model, &path).unwrap();
    let layers = zoo.layers();
    assert_eq!(layers.len(), model.graph.convs.len() + 1);
    for (i, layer) in layers[..layers.len() - 1].iter().enumerate() {
        assert_eq!(
            values(layer.weight.val()),
            values(model.params.conv_w[i].val()),
            "conv {i}"
        );
        let bn = layer.bn.as_ref().unwrap();
        assert_eq!(values(bn.gamma.val()), values(model.params.gamma[i].val()));
        assert_eq!(values(bn.beta.val()), values(model.params.beta[i].val()));
        assert_eq!(values(bn.running_var.value_sync()), model.state.bn_var[i]);
    }
    let fc = layers.last().unwrap();
    assert_eq!(
        values(fc.weight.val()),
        values(model.params.fc_w.val()),
        "classifier"
    );
    // A checkpoint of another class count names the misshapen tensor.
    let mut other = Network::new(
        Graph::imagenet(
            Arch::ResNet18,
            1.0,
            Input {
                classes: 3,
                ..input
            },
            InputCoding::Normalized,
        ),
        Method::FullPrecision { pact: false },
        9,
        &Device::flex(),
    );
    let err = load_pretrained(&mut other, &path).unwrap_err();
    assert!(
        err.contains("fc.weight") && err.contains("class count"),
        "{err}"
    );
}

#[test]
fn paper_profile_tiny_fine_tunes_a_checkpoint_onto_the_shift_only_engine() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("resnet18.safetensors");
    let config = resnet18_checkpoint(&checkpoint);
    let args = ["--model", "resnet18", "--steps", "2", "--pretrained"];
    let csv = paper_run(dir.path(), &args, &[&checkpoint]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let val = ImageFolder::open(&dir.path().join("imagenet"), "val", 3, 224).unwrap();
    let zoo = pretrained::load(&config, &checkpoint, &Device::flex()).unwrap();
    let float = score(&zoo, &val, 4, &Phase::FLOAT_EVAL, &Device::flex(), "").unwrap();
    let key = "F8Net (Jin et al. ICLR 2022),official repo snap-research/F8Net README Model Zoo \
               (Tiny Finetuning),ImageNet-1k val,ResNet18";
    let mut top1 = Vec::new();
    for method in [
        "full precision pretrained (PyTorchCV),32,32",
        "F8Net fixed-point 8-bit only (tiny finetuning),8,8",
    ] {
        let fields = row_of(&csv, key, method);
        // Six validation images: every top-1 is a multiple of 1/6.
        let value: f64 = fields[8].parse().unwrap();
        let hits = value * 6.0 / 100.0;
        assert!((hits - hits.round()).abs() < 1e-6, "{method}: {value} %");
        top1.push(value);
        // No proxy; the paper profile, seed 0, two steps over 16 training images (batches of up
        // to 128): two epochs.
        assert_eq!(&fields[9..13], ["", "paper", "0", "2"], "{fields:?}");
    }
    assert!(
        (top1[0] - float).abs() < 1e-9,
        "float row {} against {float}",
        top1[0]
    );
    let curves = std::fs::read_to_string(dir.path().join("out/f8net/curves.csv")).unwrap();
    assert!(curves.lines().count() > 1, "{curves}");
    assert!(dir.path().join("out/f8net/main.manifest.json").exists());
    // The fine-tuning checkpointed where the flag says, not in the workspace.
    let saved = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .count();
    assert_eq!(saved, 1, "one fine-tuning checkpoint");
}

/// Without a checkpoint the conventional rows: the PACT-clipped float model trained from scratch
/// on raw pixels, then F8Net from it (one epoch each here), scored simulated and on the engine.
#[test]
fn paper_profile_trains_the_conventional_rows_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let csv = paper_run(
        dir.path(),
        &["--model", "mobilenetv1", "--epochs", "1"],
        &[],
    );
    let key = "F8Net (Jin et al. ICLR 2022),official repo snap-research/F8Net README Model Zoo \
               (Conventional),ImageNet-1k val,MobileNetV1 (w1.0)";
    for method in [
        "full precision baseline (authors' own; PACT-clipped float),32,32",
        "F8Net fixed-point 8-bit only,8,8",
    ] {
        let fields = row_of(&csv, key, method);
        assert_eq!(&fields[9..13], ["", "paper", "0", "1"], "{fields:?}");
    }
    // Both stages checkpointed, and their curves are kept.
    let saved = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .count();
    assert_eq!(saved, 2, "the FP and the F8Net stage");
    let curves = std::fs::read_to_string(dir.path().join("out/f8net/curves.csv")).unwrap();
    for method in ["PACT-clipped float", "F8Net fixed-point 8-bit only,8,8"] {
        assert!(curves.contains(method), "{curves}");
    }
}

#[test]
fn paper_profile_errors_name_the_missing_input() {
    let error = |args: &[&str]| {
        let out = f8net(args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let tiny = [
        "--model",
        "resnet50",
        "--profile",
        "paper",
        "--pretrained",
        "x.pth",
    ];
    assert!(error(&tiny).contains("pass --data with the ImageNet folder"));
    let r50 = ["--model", "resnet50", "--profile", "paper"];
    assert!(error(&r50).contains("Tiny Finetuning rows only: pass --pretrained"));
    let mobile = [
        "--model",
        "mobilenetv2",
        "--profile",
        "paper",
        "--pretrained",
        "x.pth",
    ];
    assert!(error(&mobile).contains("no Tiny Finetuning row"));
    assert!(error(&["--profile", "paper", "stats"]).contains("pass --model"));
    assert!(error(&["--model", "resnet18", "--steps", "5"]).contains("drop --steps"));
    let zero = [&tiny[..], &["--steps", "0"]].concat();
    assert!(error(&zero).contains("--steps 1 or more"));
    let epochs = [&tiny[..], &["--epochs", "3"]].concat();
    assert!(error(&epochs).contains("drop --epochs"));
    let scratch = ["--model", "mobilenetv1", "--profile", "paper"];
    let steps = [&scratch[..], &["--steps", "3"]].concat();
    assert!(error(&steps).contains("drop --steps"));
    let no_epochs = [&scratch[..], &["--epochs", "0"]].concat();
    assert!(error(&no_epochs).contains("--epochs 1 or more"));
    let no_batch = [&scratch[..], &["--batch", "0"]].concat();
    assert!(error(&no_batch).contains("--batch 1 or more"));
    assert!(error(&["--model", "resnet18", "--batch", "8"]).contains("drop --batch"));
}
