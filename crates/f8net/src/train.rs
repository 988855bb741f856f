//! The training loop of the scaled-down recipe (dossier §7, §10): the paper's SGD with Nesterov
//! momentum 0.9, cosine learning rate stepped per iteration (constant for tiny
//! fine-tuning), batch 128, cross-entropy; a validation curve per epoch, checkpoints to resume
//! from; and evaluation of the simulated model.
//!
//! quant-train's loop drives its own `Net`; the F8Net model carries non-gradient statistics (FL EMAs,
//! batch-norm running statistics measured on the real-valued input) that its forward updates, so it
//! has this small loop of its own.

use std::path::PathBuf;

use crate::graph::InputCoding;
use crate::model::{Network, Pass};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use quant_train::checkpoint::Checkpoint;
use quant_train::rng::Rng;
use quant_train::train::{EpochPoint, TrainReport, VIEW_STREAMS};
use repro::datasets::ImageSet;
use repro::examples::{Examples, View};
use serde::Serialize;

/// Learning rate over the steps of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Schedule {
    /// Cosine decay from the base rate to 0, stepped per iteration (the paper's QAT recipe).
    Cosine,
    /// The base rate throughout (the paper's tiny fine-tuning).
    Constant,
}

/// One training stage: the paper's SGD, Nesterov momentum 0.9, no dampening.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Recipe {
    /// Optimizer steps (whole batches of `batch`).
    pub steps: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub batch: usize,
    pub weight_decay: f32,
}

impl Recipe {
    /// The learning rate of step `step`.
    fn lr_at(&self, step: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                0.5 * self.lr
                    * (1.0 + (std::f64::consts::PI * step as f64 / self.steps as f64).cos())
            }
        }
    }

    fn optimizer(&self) -> ModuleOptimizer {
        SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(0.9)
                    .with_dampening(0.0)
                    .with_nesterov(true),
            ))
            .with_weight_decay(Some(WeightDecayConfig::new(self.weight_decay)))
            .init()
    }
}

/// What a stage trains on besides its recipe.
pub struct StageRun<'a> {
    /// The training examples (an in-memory set or an image folder decoded per batch, each
    /// example under its training view).
    pub data: &'a dyn Examples,
    /// Scored after every epoch (and after the last step) with the simulated model in evaluation
    /// mode: the validation curve of [`TrainReport::curve`]. Never trained on.
    pub validation: Option<&'a ImageSet>,
    /// Seed of the batch order.
    pub seed: u64,
    /// Path prefix of the stage's checkpoint, written after every scored point: a rerun of the
    /// same stage (same recipe, data, seed and starting model) resumes from it.
    pub checkpoint: Option<PathBuf>,
}

/// What a checkpoint is keyed on beside the data and the starting parameters.
#[derive(Serialize)]
struct StageKey<'a> {
    recipe: &'a Recipe,
    seed: u64,
}

/// What a checkpoint keeps beside the parameters: the statistics the forward pass updates and the
/// steps done.
#[derive(Serialize, serde::Deserialize)]
struct Progress {
    steps_done: usize,
    state: crate::model::State,
}

/// `[N, C, H, W]` inputs of examples `idx` of `set`, their pixels turned into reals as `coding`
/// says (dossier §6 "first layer"), each under `view(position in the batch)`, and their labels.
pub fn batch(
    set: &dyn Examples,
    idx: &[usize],
    view: impl Fn(usize) -> View + Sync,
    coding: InputCoding,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>), String> {
    let [c, h, w] = set.shape();
    let (bytes, labels) = quant_train::data::read_examples(set, idx, view)?;
    let plane = (h * w).max(1);
    let x: Vec<f32> = bytes
        .iter()
        .enumerate()
        .map(|(j, &p)| coding.real(p, j / plane % c))
        .collect();
    Ok((
        Tensor::from_data(TensorData::new(x, [idx.len(), c, h, w]), device),
        Tensor::from_data(TensorData::new(labels, [idx.len()]), device),
    ))
}

/// [`batch`] of an in-memory set in its evaluation view (which reads without error).
pub fn memory_batch(
    set: &ImageSet,
    idx: &[usize],
    coding: InputCoding,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    batch(set, idx, |_| View::Eval, coding, device)
        .unwrap_or_else(|e| unreachable!("an in-memory set reads without error: {e}"))
}

/// Trains `model` (parameters on an autodiff device) in place for `recipe.steps` steps; `bar`
/// shows progress. Returns the report with one curve point per epoch (and one after the last
/// step when it ends inside an epoch).
pub fn train(
    model: &mut Network,
    recipe: Recipe,
    run: &StageRun,
    bar: &indicatif::ProgressBar,
) -> Result<TrainReport, String> {
    let device = model.params.fc_b.val().device();
    let err = |e: quant_train::train::TrainError| e.to_string();
    let key = StageKey {
        recipe: &recipe,
        seed: run.seed,
    };
    let checkpoint = match &run.checkpoint {
        Some(prefix) => {
            let state = serde_json::to_string(&model.state).map_err(|e| e.to_string())?;
            // The Debug text of the graph keys the checkpoint: renaming a type of `graph` (or of
            // `Method`) starts every F8Net stage over.
            let structure = format!("{:?}\n{:?}\n{state}", model.graph, model.method);
            Some(Checkpoint::new(prefix, &model.params, &structure, run.data, &key).map_err(err)?)
        }
        None => None,
    };
    let mut optim = recipe.optimizer();
    let (mut start, mut curve) = (0, Vec::new());
    if let Some(ckpt) = &checkpoint {
        let resumed = ckpt.resume(model.params.clone(), optim).map_err(err)?;
        optim = resumed.optim;
        if let Some(extra) = resumed.extra {
            let progress: Progress = serde_json::from_value(extra).map_err(|e| {
                format!(
                    "checkpoint {} unreadable ({e}): delete that folder to start over",
                    ckpt.dir().display()
                )
            })?;
            model.params = resumed.model;
            model.state = progress.state;
            start = progress.steps_done;
            curve = resumed.report.map(|r| r.curve).unwrap_or_default();
        }
    }
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let n = run.data.len();
    let per_epoch = (n / recipe.batch).max(1);
    let started = std::time::Instant::now();
    let (mut order, mut draws): (Vec<usize>, Vec<u64>) = (Vec::new(), Vec::new());
    let (mut loss_sum, mut correct, mut seen, mut steps_in_point) = (0.0, 0usize, 0usize, 0usize);
    bar.inc(start as u64);
    for step in start..recipe.steps {
        let epoch = step / per_epoch;
        if step % per_epoch == 0 || order.is_empty() {
            order = (0..n).collect();
            Rng::stream(run.seed, epoch as u64).shuffle(&mut order);
            let mut views = Rng::stream(run.seed, VIEW_STREAMS | epoch as u64);
            draws = order.iter().map(|_| views.next_u64()).collect();
        }
        let first = (step % per_epoch) * recipe.batch;
        let idx = &order[first..(first + recipe.batch).min(n)];
        let view = |k: usize| View::Train {
            draw: draws[first + k],
        };
        let (x, y) = batch(run.data, idx, view, model.graph.input, &device)?;
        let lr = recipe.lr_at(step);
        let logits = match lr > 0.0 {
            true => model.forward(x, Pass::Train),
            false => untracked(model, |m| m.forward(x, Pass::Train)),
        };
        let loss = loss_fn.forward(logits.clone(), y.clone());
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(format!(
                "training diverged (loss {value}) at step {step}: lower the learning rate"
            ));
        }
        let pred = logits.detach().argmax(1).reshape([idx.len()]);
        correct += pred.equal(y).int().sum().into_scalar::<i64>() as usize;
        (loss_sum, seen, steps_in_point) = (loss_sum + value, seen + idx.len(), steps_in_point + 1);
        if lr > 0.0 {
            let grads = GradientsParams::from_grads(loss.backward(), &model.params);
            model.params = optim.step(lr, model.params.clone(), grads);
        }
        bar.inc(1);
        let mean = loss_sum / steps_in_point as f64;
        bar.set_message(format!("loss {mean:.3}"));
        let done = step + 1;
        if done % per_epoch != 0 && done != recipe.steps {
            continue;
        }
        let point = EpochPoint {
            epoch: done.div_ceil(per_epoch) as u32,
            loss: mean,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            val_acc: run
                .validation
                .map(|v| accuracy(&predict(model, v, v.len()), &v.labels)),
        };
        if bar.is_hidden() {
            // a log instead of a terminal: a line per epoch shows the run is alive
            eprintln!(
                "         step {done}/{}: loss {mean:.3}, train {:.2} %{}",
                recipe.steps,
                point.train_acc,
                point
                    .val_acc
                    .map(|v| format!(", validation {v:.2} %"))
                    .unwrap_or_default()
            );
        }
        curve.push(point);
        (loss_sum, correct, seen, steps_in_point) = (0.0, 0, 0, 0);
        let report = report_of(&curve, started);
        if let Some(ckpt) = &checkpoint {
            let progress = Progress {
                steps_done: done,
                state: model.state.clone(),
            };
            let extra = serde_json::to_value(&progress).map_err(|e| e.to_string())?;
            ckpt.save(
                &model.params,
                &optim,
                &key,
                curve.len() as u32,
                &report,
                Some(extra),
            )
            .map_err(err)?;
        }
    }
    Ok(report_of(&curve, started))
}

/// Runs `f` on `model` with parameters that track no gradient, then gives the model its tracked
/// parameters back: how a step that trains nothing (tiny fine-tuning's lr-0 calibration, which only
/// moves the batch-norm statistics and FL buffers) runs the training pass. Burn frees an autodiff
/// graph when a backward pass consumes it, so a tracked forward pass without one kept its whole graph:
/// 60 MB a step on the smoke-size MobileNetV1 at batch 128 (`untracked_steps_keep_no_graph`), 12.6 GB
/// resident over the full profile's 100 calibration steps, where the kernel's OOM killer took a unit.
fn untracked<T>(model: &mut Network, f: impl FnOnce(&mut Network) -> T) -> T {
    let plain = model.params.clone().no_grad();
    let tracked = std::mem::replace(&mut model.params, plain);
    let out = f(model);
    model.params = tracked;
    out
}

/// The report of a stage whose curve so far is `curve`.
fn report_of(curve: &[EpochPoint], started: std::time::Instant) -> TrainReport {
    let last = curve.last();
    TrainReport {
        final_loss: last.map_or(f64::NAN, |p| p.loss),
        final_train_acc: last.map_or(f64::NAN, |p| p.train_acc),
        epochs_run: curve.len() as u32,
        seconds: started.elapsed().as_secs_f64(),
        curve: curve.to_vec(),
    }
}

/// Predictions of the simulated model in evaluation mode (running statistics, rounded FLs, 32-bit
/// biases) for the first `limit` images of the in-memory `set`.
pub fn predict(model: &Network, set: &ImageSet, limit: usize) -> Vec<usize> {
    predictions(model, set, limit)
        .unwrap_or_else(|e| unreachable!("an in-memory set reads without error: {e}"))
}

/// [`predict`] for any examples (an image folder decodes them in its evaluation view).
pub fn predictions(
    model: &Network,
    set: &dyn Examples,
    limit: usize,
) -> Result<Vec<usize>, String> {
    let mut out = Vec::with_capacity(set.len().min(limit));
    each_logits(model, set, limit, |row| {
        let best =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &x)| if x > b.1 { (i, x) } else { b },
            );
        out.push(best.0);
    })?;
    Ok(out)
}

/// Top-1 (%) of the simulated model in evaluation mode on every example of `set`.
pub fn simulated_top1(model: &Network, set: &dyn Examples) -> Result<f64, String> {
    let predicted = predictions(model, set, set.len())?;
    let hits = predicted
        .iter()
        .enumerate()
        .filter(|&(i, &p)| set.label(i) == p)
        .count();
    Ok(100.0 * hits as f64 / set.len().max(1) as f64)
}

/// The smallest and largest logit of the simulated model in evaluation mode over the first
/// `limit` images of `set` (the output range of an integer export).
pub fn logits_range(model: &Network, set: &ImageSet, limit: usize) -> (f64, f64) {
    let mut range = (f64::INFINITY, f64::NEG_INFINITY);
    each_logits(model, set, limit, |row| {
        for &x in row {
            range = (range.0.min(f64::from(x)), range.1.max(f64::from(x)));
        }
    })
    .unwrap_or_else(|e| unreachable!("an in-memory set reads without error: {e}"));
    range
}

/// Images per evaluation batch: as many as hold this many input values (500 of 28x28), at least
/// 32 (ImageNet's 224x224x3) and at most 500, so that a batch's activations stay small.
const EVAL_VALUES: usize = 392_000;

/// Calls `each` with the logits of every one of the first `limit` examples of `set`, in order,
/// from the simulated model in evaluation mode.
pub(crate) fn each_logits(
    model: &Network,
    set: &dyn Examples,
    limit: usize,
    mut each: impl FnMut(&[f32]),
) -> Result<(), String> {
    let mut eval = eval_copy(model);
    let device = eval.params.fc_b.val().device();
    let n = set.len().min(limit);
    let per: usize = set.shape().iter().product();
    let chunk = (EVAL_VALUES / per.max(1)).clamp(32, 500);
    for idx in (0..n).collect::<Vec<_>>().chunks(chunk) {
        let (x, _) = batch(set, idx, |_| View::Eval, eval.graph.input, &device)?;
        let logits = eval.forward(x, Pass::Eval);
        let [_, cols] = logits.dims();
        let v = logits
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        v.chunks(cols).for_each(&mut each);
    }
    Ok(())
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
pub fn eval_copy(model: &Network) -> Network {
    Network {
        graph: model.graph.clone(),
        params: model.params.valid(),
        state: model.state.clone(),
        method: model.method,
    }
}

/// `n` pseudo-random 28x28 images with labels 0-9 (test data of the training loop and the
/// exports).
#[cfg(test)]
pub(crate) fn noise_images(n: usize) -> ImageSet {
    let images = (0..n as u32 * 784)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 23) as u8)
        .collect();
    ImageSet {
        images,
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        channels: 1,
        rows: 28,
        cols: 28,
        checksums: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Arch, Graph, Input};
    use crate::model::Method;

    /// 64 pseudo-random 28x28 images with labels 0-9.
    fn data() -> ImageSet {
        noise_images(64)
    }

    fn model() -> Network {
        let device = Device::flex().autodiff();
        let graph = Graph::proxy(
            Arch::MobileNetV1,
            0.25,
            Input::of(repro::datasets::DatasetName::FashionMnist),
        );
        Network::new(graph, Method::FullPrecision { pact: true }, 3, &device)
    }

    /// A rerun of a finished stage resumes from its checkpoint: the same parameters, statistics
    /// and curve come back without a step trained; a stage without a checkpoint trains the same.
    #[test]
    fn a_finished_stage_resumes_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (train_set, val) = (data(), data());
        let recipe = Recipe {
            steps: 4,
            lr: 0.05,
            schedule: Schedule::Cosine,
            batch: 32,
            weight_decay: 4e-5,
        };
        let run = |checkpoint: Option<PathBuf>| {
            let mut m = model();
            let run = StageRun {
                data: &train_set,
                validation: Some(&val),
                seed: 1,
                checkpoint,
            };
            let bar = indicatif::ProgressBar::hidden();
            let report = train(&mut m, recipe, &run, &bar).unwrap();
            // A step sets the bar's message; a resumed stage trains none.
            (m, report, bar.message())
        };
        let prefix = dir.path().join("fp");
        let (first, report, message) = run(Some(prefix.clone()));
        assert!(message.starts_with("loss"), "{message}");
        assert_eq!(report.curve.len(), 2, "one point per epoch of 2 steps");
        let (again, resumed, message) = run(Some(prefix));
        assert_eq!(message, "", "the finished stage trained again");
        assert_eq!(resumed.curve, report.curve);
        assert_eq!(again.state.fl_ema, first.state.fl_ema);
        assert_eq!(again.state.bn_mean, first.state.bn_mean);
        let weights = |m: &Network| m.params.fc_w.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(weights(&again), weights(&first));
        let (plain, plain_report, _) = run(None);
        assert_eq!(
            weights(&plain),
            weights(&first),
            "the checkpoint changed training"
        );
        assert_eq!(plain_report.curve, report.curve);
    }
}
