//! End-to-end: float training, QAT fine-tuning and checkpoint resume on a slice of MNIST.

use burn::prelude::*;
use quant_core::fixedpoint::RoundingMode;
use quant_train::export::{check_agreement, export};
use quant_train::weight_range::LearnedWeightRange;
use quant_train::{
    AffineQuantizer, ModelConfig, Phase, QuantizerRef, RunOptions, TrainConfig, evaluate,
    train::train,
};
use repro::datasets::{Dataset, DatasetName, default_data_root, load};

/// MNIST from the workspace's data folder.
fn mnist() -> Dataset {
    load(&default_data_root(), DatasetName::Mnist).unwrap_or_else(|e| panic!("{e}: run make data"))
}

#[test]
fn float_then_qat_learns_and_resumes() {
    let data = mnist();
    let train_set = data.train.truncated(4096);
    let test_set = data.test.truncated(500);
    let dev = Device::flex();
    let spec = "mlp:64".parse().unwrap();
    let net = ModelConfig::new(spec, 3).build(&dev);
    let cfg = TrainConfig::adam(2, 2e-3, 1);
    let (net, report) = train(net, &train_set, &cfg, &RunOptions::default(), &dev).unwrap();
    assert_eq!(report.epochs_run, 2);
    let float_acc = evaluate(&net, &test_set, &Phase::EVAL, &dev);
    eprintln!(
        "DEBUG {report:?} {float_acc} train {}",
        evaluate(&net, &train_set, &Phase::EVAL, &dev)
    );
    assert!(float_acc > 80.0, "float accuracy {float_acc}");

    let float_net = net.clone();
    let mut qnet = net;
    qnet.set_quantizers(
        Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
        Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
    );
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        checkpoint: Some(dir.path().join("qat")),
        label: String::new(),
        ..Default::default()
    };
    let qcfg = TrainConfig::adam(1, 1e-3, 2);
    let (qnet, _) = train(qnet, &train_set, &qcfg, &opts, &dev).unwrap();
    let q_acc = evaluate(&qnet, &test_set, &Phase::EVAL, &dev);
    assert!(
        q_acc > float_acc - 5.0,
        "8-bit QAT {q_acc} vs float {float_acc}"
    );

    // The trained 8-bit model runs in the integer engine with the simulation's predictions.
    let int = export(&qnet, [1, 28, 28], RoundingMode::Double).unwrap();
    let a = check_agreement(&qnet, &int, &test_set, &dev).unwrap();
    assert!(a.agreement >= 0.99 && a.max_lsb <= 2, "{a:?}");

    // The same fine-tuning again (same float model, recipe and data): every epoch is already in the
    // checkpoint.
    let rebuilt = {
        let mut n = float_net.clone();
        n.set_quantizers(
            Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
            Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
        );
        n
    };
    let (resumed, report) = train(rebuilt, &train_set, &qcfg, &opts, &dev).unwrap();
    assert_eq!(report.epochs_run, 1, "report of the checkpointed epoch");
    let r_acc = evaluate(&resumed, &test_set, &Phase::EVAL, &dev);
    assert_eq!(r_acc, q_acc, "the resumed model is the checkpointed one");

    // Another starting model under the same name and recipe (here: an untrained one) is another
    // training: it must not pick up the fine-tuned checkpoint.
    let untrained = {
        let mut n = ModelConfig::new("mlp:64".parse().unwrap(), 3).build(&dev);
        n.set_quantizers(
            Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
            Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
        );
        n
    };
    let (fresh, _) = train(untrained, &train_set, &qcfg, &opts, &dev).unwrap();
    let f_acc = evaluate(&fresh, &test_set, &Phase::EVAL, &dev);
    assert_ne!(
        f_acc, q_acc,
        "an untrained start resumed the fine-tuned checkpoint"
    );
}

/// The validation curve: one point per epoch, scored without touching the model, so the trained
/// weights are the same with or without it; the last-quarter gain reads the curve's tail.
#[test]
fn validation_curve_observes_without_changing_training() {
    let data = mnist();
    let (train_set, val) = data.train.truncated(1536).split_validation(512).unwrap();
    let dev = Device::flex();
    let spec: quant_train::ModelSpec = "mlp:32".parse().unwrap();
    let cfg = TrainConfig::adam(4, 2e-3, 5);
    let run = |validation: Option<std::sync::Arc<_>>| {
        let opts = RunOptions {
            validation,
            ..Default::default()
        };
        let net = ModelConfig::new(spec.clone(), 3).build(&dev);
        train(net, &train_set, &cfg, &opts, &dev).unwrap()
    };
    let (plain, plain_report) = run(None);
    let (scored, report) = run(Some(std::sync::Arc::new(val.clone())));
    assert!(plain_report.curve.iter().all(|p| p.val_acc.is_none()));
    assert_eq!(plain_report.val_gain_last_quarter(), None);
    let val_acc: Vec<f64> = report.curve.iter().map(|p| p.val_acc.unwrap()).collect();
    assert_eq!(report.curve.len(), 4);
    assert_eq!(
        report.curve.iter().map(|p| p.loss).collect::<Vec<_>>(),
        plain_report
            .curve
            .iter()
            .map(|p| p.loss)
            .collect::<Vec<_>>()
    );
    let last = evaluate(&scored, &val, &Phase::EVAL, &dev);
    assert_eq!(val_acc[3], last, "the last point scores the returned model");
    assert_eq!(last, evaluate(&plain, &val, &Phase::EVAL, &dev));
    assert_eq!(
        report.val_gain_last_quarter(),
        Some(val_acc[3] - val_acc[2])
    );
}

/// Learned weight ranges train: the bounds move (the clipped weights' gradient and the decay), a
/// stronger decay pulls them further in, the weight quantizer sees only the clamped weights, and the
/// exported engine model clamps them as training did.
#[test]
fn learned_weight_ranges_train_and_export_clamped() {
    let data = mnist();
    let train_set = data.train.truncated(1024);
    let test_set = data.test.truncated(200);
    let dev = Device::flex();
    let mut float = ModelConfig::new("mlp:32".parse().unwrap(), 5).build(&dev);
    float.set_quantizers(
        Some(QuantizerRef::new(AffineQuantizer::weights(4).unwrap())),
        Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
    );
    let start: Vec<(f64, f64)> = float
        .layers()
        .iter()
        .map(|l| {
            let (lo, hi) = l.weight_range();
            (lo / 2.0, hi / 2.0)
        })
        .collect();
    let trained = |decay: f64| {
        let mut net = float.clone();
        net.map_layers(|i, l| {
            let (lo, hi) = start[i];
            l.learned_range = Some(LearnedWeightRange::new(lo, hi, decay, &dev));
        });
        let cfg = TrainConfig::adam(1, 1e-2, 4);
        train(net, &train_set, &cfg, &RunOptions::default(), &dev)
            .unwrap()
            .0
    };
    let width = |net: &quant_train::Net| -> f64 {
        net.layers()
            .iter()
            .map(|l| {
                let (lo, hi) = l.learned_range.as_ref().unwrap().values();
                hi - lo
            })
            .sum()
    };
    let (free, pulled) = (trained(0.0), trained(100.0));
    assert!(
        width(&pulled) < width(&free),
        "{} {}",
        width(&pulled),
        width(&free)
    );
    for (l, &(lo0, hi0)) in free.layers().iter().zip(&start) {
        let (lo, hi) = l.learned_range.as_ref().unwrap().values();
        assert!(lo != lo0 && hi != hi0, "bounds did not train: {lo0} {hi0}");
        let (wlo, whi) = l.weight_range();
        assert!(
            wlo >= lo - 1e-6 && whi <= hi + 1e-6,
            "{wlo} {whi} outside {lo} {hi}"
        );
    }
    let int = export(&free, [1, 28, 28], RoundingMode::Double).unwrap();
    let a = check_agreement(&free, &int, &test_set, &dev).unwrap();
    assert!(a.agreement >= 0.99 && a.max_lsb <= 2, "{a:?}");
}
