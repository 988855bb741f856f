//! Training straight from an ImageNet-style folder of colour JPEGs: batches decoded per step with
//! random crops and flips, the model learning, a resumed run reading its checkpoint, and a broken
//! file ending the run with an error that names it (never a hang).

use burn::prelude::*;
use image::{Rgb, RgbImage};
use quant_train::{ModelConfig, Phase, RunOptions, TrainConfig, evaluate, score, train::train};
use repro::image_folder::ImageFolder;

#[path = "../../repro/tests/support/jpeg_folder.rs"]
mod jpeg_folder;
use jpeg_folder::write_split;

#[test]
fn a_cnn_learns_from_a_jpeg_folder_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", 32);
    write_split(dir.path(), "val", 8);
    let train_set = ImageFolder::open(dir.path(), "train", 3, 8).unwrap();
    let val_folder = ImageFolder::open(dir.path(), "val", 3, 8).unwrap();
    let val = val_folder.to_image_set().unwrap();
    let dev = Device::flex();
    let mut config = ModelConfig::new("cnn:8,16".parse().unwrap(), 5);
    config.input = [3, 8, 8];
    config.classes = 2;
    let mut recipe = TrainConfig::adam(3, 1e-2, 7);
    recipe.batch_size = 16;
    let ckpt = tempfile::tempdir().unwrap();
    let options = RunOptions {
        checkpoint: Some(ckpt.path().join("folder")),
        ..Default::default()
    };
    let (net, report) = train(config.build(&dev), &train_set, &recipe, &options, &dev).unwrap();
    assert_eq!(report.epochs_run, 3);
    let acc = evaluate(&net, &val, &Phase::EVAL, &dev);
    assert!(acc >= 90.0, "validation accuracy {acc} ({report:?})");
    // Scoring the folder as it streams (batches of 3: the last one short) is scoring it in memory.
    let streamed = score(&net, &val_folder, 3, &Phase::EVAL, &dev, "").unwrap();
    assert_eq!(streamed, acc);

    // The same run again finds every epoch in its checkpoint: the model and report come from it.
    let (resumed, again) = train(config.build(&dev), &train_set, &recipe, &options, &dev).unwrap();
    assert_eq!(again, report);
    assert_eq!(evaluate(&resumed, &val, &Phase::EVAL, &dev), acc);

    // A changed file is other data: the run starts over rather than resuming.
    let changed = dir.path().join("train/n01_red/0.JPEG");
    RgbImage::from_pixel(9, 9, Rgb([0, 0, 0]))
        .save(&changed)
        .unwrap();
    let other = ImageFolder::open(dir.path(), "train", 3, 8).unwrap();
    let (_, fresh) = train(config.build(&dev), &other, &recipe, &options, &dev).unwrap();
    assert_ne!(
        fresh.curve, report.curve,
        "resumed another folder's checkpoint"
    );

    // A file that is not an image ends the run with its name.
    std::fs::write(dir.path().join("train/n02_blue/5.JPEG"), b"not a jpeg").unwrap();
    let broken = ImageFolder::open(dir.path(), "train", 3, 8).unwrap();
    let err = train(
        config.build(&dev),
        &broken,
        &recipe,
        &RunOptions::default(),
        &dev,
    )
    .unwrap_err();
    assert!(err.0.contains("5.JPEG"), "{err}");
}
