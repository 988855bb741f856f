//! The training loop: SGD with momentum or Adam, learning-rate schedules, seeded shuffling, the
//! quantization delay and batch-norm freeze of QAT, the shared progress bar
//! (`repro::cli::progress_bar`), checkpoints that resume an interrupted run at the last finished
//! epoch, and test-set evaluation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use repro::curves;
use repro::datasets::ImageSet;
use repro::examples::{Examples, View};
use repro::results::ResultRow;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint};
use crate::data::{batch, read_ahead};
use crate::layers::Phase;
use crate::models::Net;
use crate::rng::Rng;

/// Errors of training and evaluation, each a sentence that says what to do.
#[derive(Debug)]
pub struct TrainError(pub String);

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TrainError {}

impl From<String> for TrainError {
    fn from(message: String) -> Self {
        TrainError(message)
    }
}

/// Which CPU/GPU backend runs the model; picked at run time (`--backend`). Each backend other than
/// flex is a cargo feature of quant-train that the paper crates pass on under the same name, so a
/// CPU-only build compiles no GPU runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Burn's flex CPU backend (default, fastest for training here; the only one that runs this
    /// crate's hand-written kernels, every other backend runs Burn's own operations).
    Flex,
    /// Burn's ndarray backend (deprecated upstream; feature `ndarray`).
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// wgpu on whichever graphics API the machine offers (feature `wgpu`).
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// wgpu pinned to Vulkan, SPIR-V shaders (feature `vulkan`).
    #[cfg(feature = "vulkan")]
    Vulkan,
    /// CUDA through CubeCL (feature `cuda`); the driver is loaded when a run asks for the device.
    #[cfg(feature = "cuda")]
    Cuda,
}

/// Every backend name `--backend` knows, built into this binary or not.
const BACKEND_NAMES: [&str; 5] = ["flex", "ndarray", "wgpu", "vulkan", "cuda"];

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flex" => Ok(BackendKind::Flex),
            #[cfg(feature = "ndarray")]
            "ndarray" => Ok(BackendKind::Ndarray),
            #[cfg(feature = "wgpu")]
            "wgpu" => Ok(BackendKind::Wgpu),
            #[cfg(feature = "vulkan")]
            "vulkan" => Ok(BackendKind::Vulkan),
            #[cfg(feature = "cuda")]
            "cuda" => Ok(BackendKind::Cuda),
            _ if BACKEND_NAMES.contains(&s) => Err(format!(
                "backend {s} was not built into this binary: rebuild with `--features {s}`"
            )),
            _ => Err(format!(
                "unknown backend {s:?}: use one of {}",
                BACKEND_NAMES.join(", ")
            )),
        }
    }
}

impl BackendKind {
    /// The inference device of this backend (training wraps it with `.autodiff()`). Choosing it
    /// also sets the allocator up for training steps (`simd::reuse_freed_memory`): models that
    /// run none of this crate's kernels (the AdaptivFloat Transformer) spent a sixth of a step in
    /// page faults without it.
    pub fn device(self) -> Device {
        self.device_at(None)
    }

    /// The devices `--devices` names (hardware indices; empty: the backend's default device). The
    /// CPU backends have one device, index 0.
    pub fn devices(self, indices: &[usize]) -> Result<Vec<Device>, String> {
        if indices.is_empty() {
            return Ok(vec![self.device()]);
        }
        let cpu = match self {
            BackendKind::Flex => true,
            #[cfg(feature = "ndarray")]
            BackendKind::Ndarray => true,
            #[allow(unreachable_patterns)]
            _ => false,
        };
        if cpu && indices != [0] {
            return Err(format!(
                "{self:?} runs on one device, the CPU: drop --devices or pick a GPU backend"
            ));
        }
        Ok(indices.iter().map(|&i| self.device_at(Some(i))).collect())
    }

    /// The one device a run trains on: `--backend` on `--devices` (at most one index).
    pub fn for_run(args: &repro::cli::RunArgs) -> Result<Device, String> {
        let backend: BackendKind = args.backend.parse()?;
        match backend.devices(&args.devices)?.as_slice() {
            [device] => Ok(device.clone()),
            _ => Err(format!(
                "--devices {:?}: a run trains on one device (data-parallel training over several \
                 needs Burn's collective operations, which 0.22 has for CUDA only and this suite \
                 does not drive yet): pass one index",
                args.devices
            )),
        }
    }

    /// Hardware device `index` of this backend, or its default device.
    #[cfg_attr(
        not(any(feature = "wgpu", feature = "vulkan", feature = "cuda")),
        allow(unused_variables)
    )]
    fn device_at(self, index: Option<usize>) -> Device {
        crate::simd::reuse_freed_memory();
        #[cfg(any(feature = "wgpu", feature = "vulkan"))]
        let wgpu_kind = || {
            index.map_or(burn::tensor::DeviceKind::DefaultDevice, |i| {
                burn::tensor::DeviceKind::DiscreteGpu(i)
            })
        };
        match self {
            BackendKind::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Device::wgpu(wgpu_kind()),
            #[cfg(feature = "vulkan")]
            BackendKind::Vulkan => Device::vulkan(wgpu_kind()),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Device::cuda(index.unwrap_or(0)),
        }
    }
}

/// Optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// SGD with (PyTorch-style, undampened) momentum.
    Sgd {
        /// Momentum, e.g. 0.9.
        momentum: f64,
    },
    /// Adam with default betas.
    Adam,
}

/// Learning-rate schedule over the whole run, evaluated per step (so resuming needs only the step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// Constant.
    Constant,
    /// Cosine decay from the base rate to 0 over all steps.
    Cosine,
    /// Multiply by `gamma` after every `every_epochs` epochs (the paper's staircase schedules).
    Step {
        /// Epochs per step.
        every_epochs: u32,
        /// Factor.
        gamma: f64,
    },
}

/// QAT timing (paper §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QatSchedule {
    /// Steps before activation fake quantization switches on (observers run from step 0).
    pub act_quant_delay: u64,
    /// Step from which batch norm uses its moving statistics (`None`: never during training).
    pub freeze_bn_at: Option<u64>,
}

impl QatSchedule {
    /// Quantize from the first step, never freeze BN (fine-tuning from a float checkpoint).
    pub const IMMEDIATE: QatSchedule = QatSchedule {
        act_quant_delay: 0,
        freeze_bn_at: None,
    };

    /// The phase of training step `step`.
    pub fn phase(&self, step: u64) -> Phase {
        Phase {
            observe: true,
            bn_batch_stats: self.freeze_bn_at.is_none_or(|f| step < f),
            quantize_weights: true,
            quantize_activations: step >= self.act_quant_delay,
        }
    }
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: u32,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Base learning rate.
    pub lr: f64,
    /// Schedule.
    pub schedule: LrSchedule,
    /// L2 weight decay (0 = none).
    pub weight_decay: f64,
    /// Shuffling seed.
    pub seed: u64,
    /// Quantization delay and BN freeze (ignored by layers without quantizers).
    pub qat: QatSchedule,
}

impl TrainConfig {
    /// Adam at `lr`, constant schedule, batch 64.
    pub fn adam(epochs: u32, lr: f64, seed: u64) -> Self {
        TrainConfig {
            epochs,
            batch_size: 64,
            optimizer: Optimizer::Adam,
            lr,
            schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            seed,
            qat: QatSchedule::IMMEDIATE,
        }
    }

    /// Learning rate at `step` of `total` steps.
    pub fn lr_at(&self, step: u64, total: u64, steps_per_epoch: u64) -> f64 {
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine => {
                let t = step as f64 / total.max(1) as f64;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            LrSchedule::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = step / steps_per_epoch.max(1);
                self.lr * gamma.powi((epoch / u64::from(every_epochs.max(1))) as i32)
            }
        }
    }

    fn optimizer(&self) -> ModuleOptimizer {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.optimizer {
            Optimizer::Sgd { momentum } => SgdConfig::new()
                .with_momentum(Some(
                    // Burn's default dampening is 0.1; the paper's (TF/PyTorch) momentum has none.
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0),
                ))
                .with_weight_decay(decay)
                .init(),
            Optimizer::Adam => AdamConfig::new().with_weight_decay(decay).init(),
        }
    }
}

/// Where and under which label a run keeps its checkpoint, and how it reports progress.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Checkpoint path prefix: the checkpoint is the folder `<prefix>-<key>/`, where the key covers the
    /// configuration, the training data and the starting model (see [`crate::checkpoint`]); a run
    /// resumes from it and rewrites it after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Progress-bar label (empty: no bar).
    pub label: String,
    /// Held-out images scored after every epoch under [`Phase::EVAL`] (the deployed model: fake
    /// quantized where the model has quantizers), giving [`TrainReport::curve`] its validation
    /// accuracy. Never trained on; scoring changes no state, so the trained model is the same with
    /// or without it.
    pub validation: Option<Arc<ImageSet>>,
}

/// One finished epoch of a training run: the learning curve's point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// Epochs finished (1 = after the first).
    pub epoch: u32,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Training accuracy (percent) over the epoch, as the batches were seen.
    pub train_acc: f64,
    /// Validation accuracy (percent) after the epoch, when [`RunOptions::validation`] was given.
    pub val_acc: Option<f64>,
}

/// What a finished training run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Mean training loss of the last epoch.
    pub final_loss: f64,
    /// Training accuracy (percent) of the last epoch.
    pub final_train_acc: f64,
    /// Epochs run by this call (less than configured when resumed).
    pub epochs_run: u32,
    /// Wall seconds of this call.
    pub seconds: f64,
    /// Every finished epoch, those of a resumed checkpoint included (checkpoints written before
    /// curves were kept resume with the epochs run since).
    #[serde(default)]
    pub curve: Vec<EpochPoint>,
}

impl TrainReport {
    /// Validation accuracy gained over the last quarter of the run (at least one epoch): the last
    /// point's minus the one a quarter of the epochs earlier. A curve that has flattened gains
    /// (almost) nothing; `None` without a validation curve of at least two points.
    pub fn val_gain_last_quarter(&self) -> Option<f64> {
        let val: Vec<f64> = self.curve.iter().filter_map(|p| p.val_acc).collect();
        let last = *val.last()?;
        let back = val.len().div_ceil(4).max(1);
        let earlier = *val.get(val.len().checked_sub(back + 1)?)?;
        Some(last - earlier)
    }

    /// The curve as rows of a `curves` result table, each a copy of `template` (which names the
    /// run: source, model, method, bits, proxy, seed): validation top-1 and training loss per epoch
    /// (`epochs` = epochs finished), and the run's [`Self::val_gain_last_quarter`] at its last epoch.
    pub fn curve_rows(&self, template: &ResultRow) -> Vec<ResultRow> {
        let row = |metric: &str, value: f64, epochs: u32| ResultRow {
            metric: metric.into(),
            value,
            epochs,
            ..template.clone()
        };
        let mut rows = Vec::new();
        for p in &self.curve {
            if let Some(v) = p.val_acc {
                rows.push(row(curves::VAL_TOP1, v, p.epoch));
            }
            rows.push(row(curves::TRAIN_LOSS, p.loss, p.epoch));
        }
        if let (Some(gain), Some(last)) = (self.val_gain_last_quarter(), self.curve.last()) {
            rows.push(row(curves::VAL_GAIN, gain, last.epoch));
        }
        rows
    }
}

/// Random streams of the training views (crops and flips of image folders), one per epoch: apart
/// from the shuffling streams (`epoch`), so in-memory sets, which take no views, train as before.
pub const VIEW_STREAMS: u64 = 1 << 32;

/// Trains `model` (on `device`, any backend; autodiff is added here) on `data` and returns the
/// trained model on the inference device with its report.
///
/// Each epoch visits `data` in a fresh order drawn from `(config.seed, epoch)`; the last partial
/// batch is dropped. A thread reads (for image folders: decodes) the next batch on the worker
/// threads while the current step runs; each example's training view is drawn from the seed too.
/// Layers with quantizers follow `config.qat`; float layers ignore it. With a checkpoint of the same
/// configuration, data and starting model, finished epochs are skipped.
pub fn train(
    model: Net,
    data: &dyn Examples,
    config: &TrainConfig,
    options: &RunOptions,
    device: &Device,
) -> Result<(Net, TrainReport), TrainError> {
    if data.len() < config.batch_size || config.batch_size == 0 {
        return Err(TrainError(format!(
            "the training set has {} images, fewer than one batch of {}: train on at least {} images",
            data.len(),
            config.batch_size,
            config.batch_size.max(1)
        )));
    }
    // Burn's cross entropy would index past the logits (a panic deep inside a step): refuse here.
    if let Some((i, l)) = (0..data.len())
        .map(|i| (i, data.label(i)))
        .find(|(_, l)| *l >= model.classes)
    {
        return Err(TrainError(format!(
            "training label {l} at index {i} is outside the model's {} classes: use labels 0-{}",
            model.classes,
            model.classes.saturating_sub(1)
        )));
    }
    let checkpoint = match &options.checkpoint {
        Some(prefix) => Some(Checkpoint::new(
            prefix,
            &model,
            &checkpoint::net_structure(&model),
            data,
            config,
        )?),
        None => None,
    };
    let ad = device.clone().autodiff();
    // `train()` lifts the parameters onto the autodiff decorator of their device, trainable.
    let mut model = model.train();
    let mut optim = config.optimizer();
    let mut start_epoch = 0;
    let mut last_report: Option<TrainReport> = None;
    if let Some(ckpt) = &checkpoint {
        let resumed = ckpt.resume(model, optim)?;
        model = resumed.model;
        optim = resumed.optim;
        start_epoch = resumed.epochs_done;
        last_report = resumed.report;
    }
    let steps_per_epoch = (data.len() / config.batch_size) as u64;
    let total = steps_per_epoch * u64::from(config.epochs);
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let started = Instant::now();
    let bar = repro::cli::progress_bar(total, &options.label);
    bar.set_position(steps_per_epoch * u64::from(start_epoch));
    for epoch in start_epoch..config.epochs {
        let mut order: Vec<usize> = (0..data.len()).collect();
        Rng::stream(config.seed, u64::from(epoch)).shuffle(&mut order);
        let mut views = Rng::stream(config.seed, VIEW_STREAMS | u64::from(epoch));
        let draws: Vec<u64> = order.iter().map(|_| views.next_u64()).collect();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let epoch_start = Instant::now();
        let view = |p: usize| View::Train { draw: draws[p] };
        let batches = (config.batch_size, true);
        model = read_ahead(data, &order, batches, view, model, |i, raw, mut model| {
            let step = u64::from(epoch) * steps_per_epoch + i as u64;
            let (x, y) = raw.tensors(&ad);
            let n = y.dims()[0];
            let logits = model.forward(x, &config.qat.phase(step));
            let loss = loss_fn.forward(logits.clone(), y.clone());
            let pred = logits.detach().argmax(1).reshape([n]);
            correct += pred.equal(y).int().sum().into_scalar::<i64>() as usize;
            let loss_value = f64::from(loss.clone().detach().into_scalar::<f32>());
            if !loss_value.is_finite() {
                return Err(TrainError(format!(
                    "training diverged (loss {loss_value}) at epoch {epoch} step {i}: lower the learning rate"
                )));
            }
            loss_sum += loss_value;
            seen += n;
            // Learned weight ranges add their decay to what is minimized, not to the reported loss.
            let objective = match model.learned_range_penalty() {
                Some(penalty) => loss + penalty,
                None => loss,
            };
            let grads = GradientsParams::from_grads(objective.backward(), &model);
            model = optim.step(config.lr_at(step, total, steps_per_epoch), model, grads);
            bar.inc(1);
            bar.set_message(format!(
                "epoch {} loss {:.4} acc {:.2}% {:.0} img/s",
                epoch + 1,
                loss_sum / (i + 1) as f64,
                100.0 * correct as f64 / seen as f64,
                seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9)
            ));
            Ok(model)
        })?;
        let point = EpochPoint {
            epoch: epoch + 1,
            loss: loss_sum / steps_per_epoch as f64,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            val_acc: options
                .validation
                .as_deref()
                .map(|val| evaluate(&model.valid(), val, &Phase::EVAL, device)),
        };
        let mut curve = last_report.take().map(|r| r.curve).unwrap_or_default();
        curve.push(point.clone());
        let report = TrainReport {
            final_loss: point.loss,
            final_train_acc: point.train_acc,
            epochs_run: epoch + 1 - start_epoch,
            seconds: started.elapsed().as_secs_f64(),
            curve,
        };
        if let Some(ckpt) = &checkpoint {
            ckpt.save(&model, &optim, config, epoch + 1, &report, None)?;
        }
        last_report = Some(report);
    }
    bar.finish_and_clear();
    let report = last_report.unwrap_or(TrainReport {
        final_loss: f64::NAN,
        final_train_acc: f64::NAN,
        epochs_run: 0,
        seconds: started.elapsed().as_secs_f64(),
        curve: Vec::new(),
    });
    Ok((model.valid(), report))
}

/// Logits of `model` for every image of `set` (row-major `[len, classes]`), in batches of
/// `batch_size`, under `phase` (use [`Phase::EVAL`], or a phase with quantization off for the float
/// view of a QAT model).
pub fn predict(
    model: &Net,
    set: &ImageSet,
    batch_size: usize,
    phase: &Phase,
    device: &Device,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(set.len() * model.classes);
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        let (x, _) = batch(set, chunk, device);
        let logits = model.forward(x, phase);
        out.extend(
            logits
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap_or_default(),
        );
    }
    out
}

/// Index of the largest value of each row (first one on ties).
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

/// Top-1 accuracy in percent.
pub fn top1(predictions: &[usize], labels: &[u8]) -> f64 {
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count();
    100.0 * hits as f64 / predictions.len().max(1) as f64
}

/// Top-1 accuracy (percent) of `model` on every example of `set` in its evaluation view, read (for
/// image folders: decoded) on the worker threads a batch of `batch_size` ahead: how the
/// paper-scale runs score ImageNet's validation images, which are not held in memory.
pub fn score(
    model: &Net,
    set: &dyn Examples,
    batch_size: usize,
    phase: &Phase,
    device: &Device,
    label: &str,
) -> Result<f64, TrainError> {
    let order: Vec<usize> = (0..set.len()).collect();
    let bar = repro::cli::progress_bar(set.len().div_ceil(batch_size.max(1)) as u64, label);
    let batches = (batch_size, false);
    let hits = read_ahead(
        set,
        &order,
        batches,
        |_| View::Eval,
        0,
        |_, raw, hits| {
            let (x, y) = raw.tensors(device);
            let n = y.dims()[0];
            let pred = model.forward(x, phase).argmax(1).reshape([n]);
            bar.inc(1);
            Ok::<_, TrainError>(hits + pred.equal(y).int().sum().into_scalar::<i64>() as usize)
        },
    )?;
    bar.finish_and_clear();
    Ok(100.0 * hits as f64 / set.len().max(1) as f64)
}

/// Top-1 accuracy (percent) of `model` on `set` under `phase`.
pub fn evaluate(model: &Net, set: &ImageSet, phase: &Phase, device: &Device) -> f64 {
    let logits = predict(model, set, 256, phase, device);
    top1(&argmax_rows(&logits, model.classes), &set.labels)
}
