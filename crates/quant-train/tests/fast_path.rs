//! The hand-written flex kernels train like Burn's own operations: the same losses step by step
//! and the same weights after a few SGD steps, within float tolerance, for float and 8-bit QAT
//! models with every kind of layer the kernels replace (dense, depthwise and strided convolution,
//! batch statistics, ReLU6, PACT, fake quantization).

use burn::prelude::*;
use quant_train::layers::Activation;
use quant_train::train::train;
use quant_train::{
    AffineQuantizer, ModelConfig, Net, Optimizer, QuantizerRef, RunOptions, TrainConfig, fast_path,
};
use repro::datasets::{DatasetName, default_data_root, load};

fn weights(net: &Net) -> Vec<f32> {
    net.layers()
        .iter()
        .flat_map(|l| {
            l.weight
                .val()
                .into_data()
                .convert::<f32>()
                .iter::<f32>()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `(final loss, weights)` after one short epoch of SGD.
fn run(spec: &str, activation: Option<Activation>, qat: bool) -> (f64, Vec<f32>) {
    let data = load(&default_data_root(), DatasetName::FashionMnist)
        .unwrap_or_else(|e| panic!("{e}: run make data"));
    let set = data.train.truncated(256);
    let dev = Device::flex();
    let mut cfg = ModelConfig::new(spec.parse().unwrap(), 4);
    cfg.activation = activation;
    let mut net = cfg.build(&dev);
    if qat {
        net.set_quantizers(
            Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
            Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
        );
    }
    let mut tc = TrainConfig::adam(1, 0.02, 5);
    tc.optimizer = Optimizer::Sgd { momentum: 0.9 };
    tc.batch_size = 64;
    let (net, report) = train(net, &set, &tc, &RunOptions::default(), &dev).unwrap();
    (report.final_loss, weights(&net))
}

/// Same loss (relative 1e-3) and weights: in float every weight within 2e-3; in QAT, where a
/// last-bit difference moves a value across a rounding boundary and training then takes another
/// (equally valid) path, the mean weight difference within 2e-4 (a tenth of one step's update at
/// this learning rate).
fn assert_same_training(spec: &str, activation: Option<Activation>, qat: bool) {
    let (fast_loss, fast_w) = run(spec, activation, qat);
    let (slow_loss, slow_w) = fast_path::without(|| run(spec, activation, qat));
    let what = format!("{spec} {activation:?} qat={qat}");
    assert!(
        (fast_loss - slow_loss).abs() <= 1e-3 * slow_loss.abs(),
        "{what}: loss {fast_loss} vs {slow_loss}"
    );
    assert_eq!(fast_w.len(), slow_w.len());
    let diffs: Vec<f32> = fast_w
        .iter()
        .zip(&slow_w)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let worst = diffs.iter().copied().fold(0.0f32, f32::max);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    if qat {
        assert!(mean <= 2e-4, "{what}: mean weight difference {mean}");
    } else {
        assert!(worst <= 2e-3, "{what}: weights differ by up to {worst}");
    }
}

#[test]
fn float_cnn_and_mobilenet_train_the_same() {
    assert_same_training("cnn:8,16", None, false);
    assert_same_training("mbv1:0.25", None, false);
}

#[test]
fn qat_and_pact_train_the_same() {
    assert_same_training("mbv1:0.25", None, true);
    assert_same_training("cnn:8,16", Some(Activation::Pact(4.0)), true);
}
