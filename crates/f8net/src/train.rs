//! The training loop of the scaled-down recipe (dossier §7, §10): cosine learning rate stepped per
//! iteration, weight decay 4e-5, batch 128, cross-entropy, with Adam (the proxies' budget of under one
//! epoch) or the paper's SGD with Nesterov momentum 0.9; and evaluation of the simulated model.
//!
//! quant-train's loop drives its own `Net`; the F8Net model carries non-gradient statistics (FL EMAs,
//! batch-norm running statistics measured on the real-valued input) that its forward updates, so it
//! has this small loop of its own.

use crate::model::{Model, Pass};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::prelude::*;
use quant_train::rng::Rng;
use repro::datasets::ImageSet;

/// Optimizer of a stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Adam (β 0.9 / 0.999): converges within the fraction of an epoch the 2-core budget allows.
    Adam,
    /// The paper's SGD, Nesterov momentum 0.9, no dampening.
    SgdNesterov,
}

/// One training stage.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    pub optimizer: Optimizer,
    /// Optimizer steps (whole batches of `batch`).
    pub steps: usize,
    pub lr: f64,
    pub batch: usize,
    pub weight_decay: f32,
}

/// `[N, 1, H, W]` pixels / 256 (raw bytes with FL 8, dossier §6 "first layer") and labels.
pub fn batch(set: &ImageSet, idx: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut x = Vec::with_capacity(idx.len() * set.pixels());
    for &i in idx {
        x.extend(set.image(i).iter().map(|&p| f32::from(p) / 256.0));
    }
    let y: Vec<i64> = idx.iter().map(|&i| i64::from(set.labels[i])).collect();
    (
        Tensor::from_data(
            TensorData::new(x, [idx.len(), 1, set.rows, set.cols]),
            device,
        ),
        Tensor::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// Trains `model` (parameters on an autodiff device) in place; `bar` shows progress. Returns the mean
/// loss of the last 20 steps.
pub fn train(
    model: &mut Model,
    data: &ImageSet,
    recipe: Recipe,
    seed: u64,
    bar: &indicatif::ProgressBar,
) -> f64 {
    let device = model.params.fc_b.val().device();
    let decay = Some(WeightDecayConfig::new(recipe.weight_decay));
    let mut optim = match recipe.optimizer {
        Optimizer::Adam => AdamConfig::new().with_weight_decay(decay).init(),
        Optimizer::SgdNesterov => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(0.9)
                    .with_dampening(0.0)
                    .with_nesterov(true),
            ))
            .with_weight_decay(decay)
            .init(),
    };
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let n = data.len();
    let per_epoch = (n / recipe.batch).max(1);
    let mut order: Vec<usize> = Vec::new();
    let mut recent = Vec::new();
    for step in 0..recipe.steps {
        if step % per_epoch == 0 {
            order = (0..n).collect();
            Rng::stream(seed, (step / per_epoch) as u64).shuffle(&mut order);
        }
        let start = (step % per_epoch) * recipe.batch;
        let idx = &order[start..(start + recipe.batch).min(n)];
        let (x, y) = batch(data, idx, &device);
        let logits = model.forward(x, Pass::Train);
        let loss = loss_fn.forward(logits, y);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let lr = 0.5
            * recipe.lr
            * (1.0 + (std::f64::consts::PI * step as f64 / recipe.steps as f64).cos());
        if recipe.lr > 0.0 {
            let grads = GradientsParams::from_grads(loss.backward(), &model.params);
            model.params = optim.step(lr, model.params.clone(), grads);
        }
        recent.push(value);
        if recent.len() > 20 {
            recent.remove(0);
        }
        bar.inc(1);
        let mean = recent.iter().sum::<f64>() / recent.len() as f64;
        bar.set_message(format!("loss {mean:.3}"));
        if bar.is_hidden() && (step + 1) % 100 == 0 {
            // a log instead of a terminal: a line per 100 steps shows the run is alive
            eprintln!(
                "         step {}/{}: loss {mean:.3}",
                step + 1,
                recipe.steps
            );
        }
    }
    recent.iter().sum::<f64>() / recent.len().max(1) as f64
}

/// Predictions of the simulated model in evaluation mode (running statistics, rounded FLs, 32-bit
/// biases) for the first `limit` images of `set`.
pub fn predict(model: &Model, set: &ImageSet, limit: usize) -> Vec<usize> {
    let mut eval = eval_copy(model);
    let device = eval.params.fc_b.val().device();
    let n = set.len().min(limit);
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let (x, _) = batch(set, chunk, &device);
        let logits = eval.forward(x, Pass::Eval);
        let [rows, cols] = logits.dims();
        let v = logits
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        out.extend((0..rows).map(|r| {
            let row = &v[r * cols..(r + 1) * cols];
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                )
                .0
        }));
    }
    out
}

/// Top-1 accuracy in percent.
pub fn accuracy(pred: &[usize], labels: &[u8]) -> f64 {
    let hits = pred
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count();
    100.0 * hits as f64 / pred.len().max(1) as f64
}

/// A copy of `model` for evaluation and export (parameters off the autodiff device).
pub fn eval_copy(model: &Model) -> Model {
    Model {
        graph: model.graph.clone(),
        params: model.params.valid(),
        state: model.state.clone(),
        method: model.method,
    }
}
