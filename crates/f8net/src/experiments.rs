//! The experiments of the paper, one function per table (dossier §9.1, §10 P1-P5), each ending in
//! result rows.

use crate::export::to_engine;
use crate::graph::{Arch, Graph, Input};
use crate::int8_export::to_jacob_engine;
use crate::model::{F8Options, Method, Network};
use crate::statistics::PAPER;
use crate::train::{Recipe, Schedule, StageRun, accuracy, eval_copy, logits_range, predict, train};
use burn::prelude::*;
use quant_core::fixed8::rule::FlRule;
use quant_core::kernels::Backend;
use quant_core::ops::OpCounts;
use rayon::prelude::*;
use repro::Profile;
use repro::datasets::{Dataset, ImageSet};
use repro::jobs::run_jobs;
use repro::results::{Keyed, Measured, ResultRow, RunStamp};
use serde::{Deserialize, Serialize};

/// Sizes derived from a profile.
#[derive(Debug, Clone)]
pub struct StagePlan {
    pub profile: Profile,
    /// Channel-width multiplier of the MobileNet proxies ([`StagePlan::width`]).
    pub width: f64,
    /// Training images (at most; after the validation split).
    pub train_images: usize,
    /// Images split off the end of the training file, never trained on: every stage's validation
    /// curve.
    pub validation_images: usize,
    pub test_images: usize,
    /// Epochs of the full-precision stage and of each quantized stage (F8Net, INT8).
    pub fp_epochs: u32,
    pub qat_epochs: u32,
    /// Iterations of tiny fine-tuning.
    pub tiny_steps: usize,
    pub seeds: Vec<u64>,
    /// Where every stage keeps its checkpoint (resumable runs), or none (the binary sets it from
    /// `RunArgs::checkpoint_dir`).
    pub checkpoint_dir: Option<std::path::PathBuf>,
}

impl StagePlan {
    /// The plan of `profile`; `epochs` overrides the FP stage length.
    ///
    /// Full: the dossier's scaled recipe (§10) on 55 000 training images, validated on 5 000 and
    /// tested on all 10 000: 15 FP epochs, 5 epochs per quantized stage, 500 tiny fine-tuning
    /// iterations (the paper's count), three seeds. Smoke: seconds on a slice, for tests and CI.
    pub fn new(profile: Profile, epochs: Option<u32>, seeds: Option<Vec<u64>>) -> StagePlan {
        let (train, validation, test, fp, qat, tiny, n_seeds) = match profile {
            Profile::Smoke => (512, 128, 300, 1, 1, 2, 1),
            // The binary refuses the paper profile before planning (`RunArgs::start`).
            Profile::Full | Profile::Paper => (usize::MAX, 5_000, 10_000, 15, 5, TINY_STEPS, 3),
        };
        StagePlan {
            profile,
            width: if profile == Profile::Smoke { 0.25 } else { 0.5 },
            train_images: train,
            validation_images: validation,
            test_images: test,
            fp_epochs: epochs.unwrap_or(fp),
            qat_epochs: qat,
            tiny_steps: tiny,
            seeds: seeds.unwrap_or_else(|| (0..n_seeds).collect()),
            checkpoint_dir: None,
        }
    }

    /// Channel-width multiplier of a proxy: the profile's base for the MobileNets, 1.5x for the
    /// ResNets (their dossier proxies start at 8 channels, the MobileNets at 16).
    pub fn width(&self, arch: Arch) -> f64 {
        match arch {
            Arch::MobileNetV1 | Arch::MobileNetV2 => self.width,
            Arch::ResNet18 | Arch::ResNet50 => 1.5 * self.width,
        }
    }

    pub fn name(&self) -> &'static str {
        self.profile.name()
    }

    /// Optimizer steps of `epochs` epochs over `images` training images.
    pub fn steps(epochs: u32, images: usize) -> usize {
        epochs as usize * (images / BATCH).max(1)
    }
}

/// Batch size of every stage (dossier §10).
pub const BATCH: usize = 128;
/// Tiny fine-tuning iterations (the paper: 500 at lr 1e-4 for ResNet50).
const TINY_STEPS: usize = 500;
/// SGD (Nesterov 0.9) base rates of the dossier's scaled recipe: FP from scratch and the fresh
/// cosine schedule of every quantized stage (§10: lr 0.05 for both).
pub const FP_LR: f64 = 0.05;
pub const QAT_LR: f64 = 0.05;
/// Tiny fine-tuning: constant lr 1e-4, weight decay 1e-4 (the paper's Tiny Finetuning recipe).
const TINY_LR: f64 = 1e-4;
const TINY_WEIGHT_DECAY: f32 = 1e-4;
const WEIGHT_DECAY: f32 = 4e-5;

/// The published model name a proxy stands for, and the README source of its main-table rows.
pub fn published_model(arch: Arch) -> &'static str {
    match arch {
        Arch::MobileNetV2 => "MobileNetV2b (w1.0; pytorchcv mobilenetv2b_w1 layout)",
        Arch::MobileNetV1 => "MobileNetV1 (w1.0)",
        Arch::ResNet18 => "ResNet18",
        Arch::ResNet50 => "ResNet50b (v1.5, stride on 3x3)",
    }
}

pub const SOURCE_CONVENTIONAL: &str =
    "official repo snap-research/F8Net README Model Zoo (Conventional)";
pub const SOURCE_TINY: &str =
    "official repo snap-research/F8Net README Model Zoo (Tiny Finetuning)";
pub const METHOD_FP: &str = "full precision baseline (authors' own; PACT-clipped float)";
pub const METHOD_F8: &str = "F8Net fixed-point 8-bit only";
pub const METHOD_INT8: &str =
    "conventional INT8 QAT with INT32 requantization multiplier (Jacob et al. 2018)";
/// The ablations' FP model with its PACT clips removed and batch norm's statistics recalibrated
/// (tiny fine-tuning's lr-0 calibration, in float): the float model tiny fine-tuning (PACT off)
/// quantizes.
pub const METHOD_FP_UNCLIPPED: &str =
    "full precision baseline without its PACT clips, BN recalibrated (float, lr 0)";
pub const METHOD_FP_TINY: &str = "full precision pretrained Baseline#1 (PyTorchCV resnet50b)";
pub const METHOD_F8_TINY: &str = "F8Net fixed-point 8-bit only (tiny finetuning) from Baseline#1";

/// What the proxy label says.
pub fn proxy_label(arch: Arch, dataset: &Dataset, plan: &StagePlan) -> String {
    let g = Graph::proxy(arch, plan.width(arch), Input::of(dataset.name));
    let train = dataset
        .train
        .len()
        .saturating_sub(plan.validation_images)
        .min(plan.train_images);
    format!(
        "{} {arch:?} proxy w{} ({:.2} M MACs), {train} train / {} validation images, batch {BATCH}, SGD Nesterov: FP {} + QAT {} epochs",
        dataset.name.paper_name(),
        plan.width(arch),
        g.macs() as f64 / 1e6,
        plan.validation_images,
        plan.fp_epochs,
        plan.qat_epochs
    )
}

/// Per-model operation counts of both pipelines (`ops.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpsRow {
    pub model: String,
    pub proxy: String,
    pub pipeline: String,
    pub mul_8x8: u64,
    pub mul_32x32: u64,
    pub shifts: u64,
    /// Empty in rows written before the engines counted bytes.
    #[serde(default)]
    pub bytes_moved: Option<u64>,
    pub profile: String,
    pub run_id: String,
}

impl Keyed for OpsRow {
    fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.model, self.proxy, self.pipeline, self.profile
        )
    }
}

/// Mean and standard deviation over seeds of one main-table cell (`main_summary.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub source: String,
    pub model: String,
    pub method: String,
    /// The measured quantity (named apart from `metric`: `repro compare` reads every table with
    /// `metric` and `run_id` columns as result rows).
    pub quantity: String,
    pub proxy: String,
    pub seeds: usize,
    pub mean: f64,
    pub std: f64,
    pub int32_mult: String,
    pub fp_mult: String,
    pub profile: String,
    pub run_id: String,
}

impl Keyed for SummaryRow {
    fn key(&self) -> String {
        [
            &self.source,
            &self.model,
            &self.method,
            &self.quantity,
            &self.proxy,
            &self.profile,
        ]
        .map(String::as_str)
        .join("|")
    }
}

/// Everything a main-table run produces.
pub struct MainOutput {
    pub rows: Vec<ResultRow>,
    /// Validation curve of every stage ([`quant_train::train::TrainReport::curve_rows`]).
    pub curves: Vec<ResultRow>,
    pub ops: Vec<OpsRow>,
}

/// Context shared by the rows of one run.
pub struct RowCtx<'a> {
    pub arch: Arch,
    pub dataset: &'a Dataset,
    pub plan: &'a StagePlan,
    pub run_id: &'a str,
}

impl RowCtx<'_> {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        source: &str,
        method: &str,
        bits: (&str, &str),
        metric: &str,
        value: f64,
        seed: u64,
        epochs: u32,
    ) -> ResultRow {
        ResultRow::new(
            Measured {
                paper: PAPER,
                source,
                dataset: self.dataset.name.paper_name(),
                model: published_model(self.arch),
                method,
                bits,
                metric,
                proxy: &proxy_label(self.arch, self.dataset, self.plan),
            },
            value,
            &RunStamp {
                profile: self.plan.name(),
                seed,
                epochs,
                run_id: self.run_id,
            },
        )
    }
}

/// Result of the integer-engine check of one trained model.
pub struct EngineCheck {
    pub accuracy: f64,
    pub agreement: f64,
    /// Operations of one inference, as the engine counted them while running it.
    pub counts: OpCounts,
}

/// Top-1 of the engine's predictions `pred` on the test labels, and their agreement with the
/// simulated model's predictions.
fn check_of(pred: &[usize], dataset: &Dataset, simulated: &[usize]) -> (f64, f64) {
    let agree = pred.iter().zip(simulated).filter(|(a, b)| a == b).count();
    (
        accuracy(pred, &dataset.test.labels[..pred.len()]),
        100.0 * agree as f64 / pred.len().max(1) as f64,
    )
}

/// Runs the INT8 baseline on quant-core's integer engine (uint8 codes, INT32 requantization
/// multipliers) over the test images and compares its predictions with the simulated model's. The
/// logits leave the engine as uint8 codes over the range the simulated model's logits span on the
/// validation split.
pub fn int8_engine_check(
    model: &Network,
    validation: &ImageSet,
    dataset: &Dataset,
    limit: usize,
    simulated: &[usize],
) -> Result<EngineCheck, String> {
    let mut m = eval_copy(model);
    let (lo, hi) = logits_range(&m, validation, validation.len());
    let logits = quant_core::qparams::QParams::choose(lo, hi, quant_core::qparams::QRange::U8)
        .map_err(|e| e.to_string())?;
    let engine = to_jacob_engine(&mut m, logits)?;
    let n = dataset.test.len().min(limit);
    let pixels = dataset.test.pixels();
    let mut pred = Vec::with_capacity(n);
    // The engine takes channels innermost; the data set holds planes.
    let (channels, plane) = (dataset.test.channels, dataset.test.rows * dataset.test.cols);
    let hwc = |planes| quant_core::engine::layout::chw_to_hwc(planes, channels, plane);
    for first in (0..n).step_by(500) {
        let count = 500.min(n - first);
        let images = hwc(&dataset.test.images[first * pixels..(first + count) * pixels]);
        let out = engine.run(&images, count).map_err(|e| e.to_string())?;
        pred.extend(out.argmax());
    }
    let (_, counts) = engine
        .run_counted(&hwc(dataset.test.image(0)), 1)
        .map_err(|e| e.to_string())?;
    let (accuracy, agreement) = check_of(&pred, dataset, simulated);
    Ok(EngineCheck {
        accuracy,
        agreement,
        counts,
    })
}

/// Runs the exported model on the test images with the shift-only engine (prepared for this CPU's
/// int8 kernels) and compares its predictions
/// with the simulated model's.
pub fn engine_check(
    model: &Network,
    dataset: &Dataset,
    limit: usize,
    simulated: &[usize],
) -> Result<EngineCheck, String> {
    let mut m = eval_copy(model);
    let engine = to_engine(&mut m)?;
    // The int8 kernels run the dense layers (equal to the scalar engine, value for value).
    let engine = engine
        .prepare(Backend::detect())
        .map_err(|e| e.to_string())?;
    let n = dataset.test.len().min(limit);
    let results: Vec<(usize, OpCounts)> = (0..n)
        .into_par_iter()
        .map(|i| {
            engine
                .predict(dataset.test.image(i))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let pred: Vec<usize> = results.iter().map(|r| r.0).collect();
    let (accuracy, agreement) = check_of(&pred, dataset, simulated);
    Ok(EngineCheck {
        accuracy,
        agreement,
        counts: results.first().map_or_else(OpCounts::default, |r| r.1),
    })
}

/// Names the running stage on the bar; when stderr is not a terminal (the bar is hidden, e.g. a
/// background run writing a log) the stage goes to stderr as a line instead.
fn stage(bar: &indicatif::ProgressBar, label: String) {
    if bar.is_hidden() {
        eprintln!(
            "[{:>6.0}s] {label}",
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
        );
    }
    bar.set_prefix(label);
}

/// A result line above the bar (or on stderr when the bar is hidden).
fn note(bar: &indicatif::ProgressBar, msg: String) {
    if bar.is_hidden() {
        eprintln!("         {msg}");
    } else {
        bar.println(msg);
    }
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// The recipe of a QAT or FP stage: SGD Nesterov, batch [`BATCH`], weight decay 4e-5, `steps`
/// steps from rate `lr` (cosine decay to 0, per iteration).
pub fn sgd_recipe(steps: usize, lr: f64) -> Recipe {
    Recipe {
        steps,
        lr,
        schedule: Schedule::Cosine,
        batch: BATCH,
        weight_decay: WEIGHT_DECAY,
    }
}

/// The recipe of tiny fine-tuning: `steps` iterations at the constant rate `lr`, weight decay 1e-4.
pub fn tiny_recipe(steps: usize, lr: f64) -> Recipe {
    Recipe {
        steps,
        lr,
        schedule: Schedule::Constant,
        batch: BATCH,
        weight_decay: TINY_WEIGHT_DECAY,
    }
}

/// Whether the FP model of a proxy is PACT-clipped: the conventional rows' baseline is the authors'
/// PACT-clipped float; the ResNet50 proxy mirrors the Tiny Finetuning rows, which start from a plain
/// pretrained float model, so its FP stage is trained without PACT.
pub fn fp_pact(arch: Arch) -> bool {
    arch != Arch::ResNet50
}

/// The data every stage of a run trains and validates on.
pub struct Splits {
    pub train: ImageSet,
    pub validation: ImageSet,
    /// The data set's images and classes, which the networks are built for.
    pub input: Input,
}

impl Splits {
    /// The validation split off the end of `dataset`'s training file, the rest truncated to the
    /// plan's training size.
    pub fn of(plan: &StagePlan, dataset: &Dataset) -> Result<Splits, String> {
        let (train, validation) = dataset
            .train
            .clone()
            .split_validation(plan.validation_images)?;
        Ok(Splits {
            train: train.truncated(plan.train_images),
            validation,
            input: Input::of(dataset.name),
        })
    }

    /// Steps of `epochs` epochs over the training split.
    pub fn steps(&self, epochs: u32) -> usize {
        StagePlan::steps(epochs, self.train.len())
    }

    /// Epochs (rounded up) that `steps` steps cover.
    pub fn epochs(&self, steps: usize) -> u32 {
        (steps * BATCH).div_ceil(self.train.len().max(1)) as u32
    }
}

/// A trained stage: the model and its report (with the validation curve).
pub struct Trained {
    pub model: Network,
    pub report: quant_train::train::TrainReport,
}

/// Trains the full-precision model of one seed (the starting point of every quantized run).
pub fn train_fp(
    arch: Arch,
    plan: &StagePlan,
    splits: &Splits,
    seed: u64,
    device: &Device,
    bar: &indicatif::ProgressBar,
) -> Result<Trained, String> {
    let mut fp = Network::new(
        Graph::proxy(arch, plan.width(arch), splits.input),
        Method::FullPrecision {
            pact: fp_pact(arch),
        },
        seed,
        device,
    );
    stage(bar, format!("{arch:?} seed {seed} FP"));
    let recipe = sgd_recipe(splits.steps(plan.fp_epochs), FP_LR);
    let run = stage_run(plan, splits, arch, "fp", seed, seed);
    let report = train(&mut fp, recipe, &run, bar)?;
    Ok(Trained { model: fp, report })
}

/// The [`StageRun`] of stage `name` of `arch` and `seed` (batch order from `order_seed`).
fn stage_run<'a>(
    plan: &StagePlan,
    splits: &'a Splits,
    arch: Arch,
    name: &str,
    seed: u64,
    order_seed: u64,
) -> StageRun<'a> {
    StageRun {
        data: &splits.train,
        validation: Some(&splits.validation),
        seed: order_seed,
        checkpoint: plan
            .checkpoint_dir
            .as_ref()
            .map(|d| d.join(format!("{arch:?}-{name}-s{seed}").to_lowercase())),
    }
}

/// Starts a quantized model from a trained FP model (parameters, BN statistics and FL buffers).
pub fn from_fp(fp: &Network, method: Method) -> Network {
    Network {
        graph: fp.graph.clone(),
        params: fp.params.clone(),
        state: fp.state.clone(),
        method,
    }
}

/// Quantization-aware training (or tiny fine-tuning) of `method` from `fp` with `recipe`, as
/// stage `name`.
#[allow(clippy::too_many_arguments)]
pub fn train_quantized(
    fp: &Network,
    method: Method,
    recipe: Recipe,
    plan: &StagePlan,
    splits: &Splits,
    name: &str,
    seed: u64,
    bar: &indicatif::ProgressBar,
) -> Result<Trained, String> {
    let mut m = from_fp(fp, method);
    let arch = fp.graph.arch;
    let run = stage_run(plan, splits, arch, name, seed, seed.wrapping_add(1000));
    let report = train(&mut m, recipe, &run, bar)?;
    Ok(Trained { model: m, report })
}

/// Progress-bar length of one main-table run.
pub fn main_steps(arch: Arch, plan: &StagePlan, splits: &Splits) -> u64 {
    let tiny = if arch == Arch::ResNet50 {
        plan.tiny_steps
    } else {
        0
    };
    let per_seed = splits.steps(plan.fp_epochs) + 2 * splits.steps(plan.qat_epochs) + tiny;
    (plan.seeds.len() * per_seed) as u64
}

/// A stage of the main table.
enum MainJob {
    Fp(u64),
    Quantized(u64, Stage, std::sync::Arc<Network>),
}

/// A quantized stage, in the order its rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Fp,
    F8Net,
    Int8,
    Tiny,
}

/// What one stage of the main table leaves: its seed and stage (the rows' order), result rows,
/// curve rows and, for the stages run on an integer engine (F8Net, INT8), the operations the
/// engine counted for one inference.
struct StageRows {
    seed: u64,
    stage: Stage,
    rows: Vec<ResultRow>,
    curves: Vec<ResultRow>,
    counts: Option<OpCounts>,
}

/// The main table (mirrors README Model Zoo, Conventional; ResNet50 mirrors Tiny Finetuning):
/// full precision, F8Net (accuracy of the shift-only integer engine), conventional INT8 with an INT32
/// multiplier; per seed, with every stage's validation curve. Also the Figure 1 operation counts
/// and the simulated-vs-integer prediction agreement. Stages run on `workers` threads; the rows do
/// not depend on it. Means over seeds: [`summaries`] of the recorded table.
pub fn main_table(
    ctx: &RowCtx,
    splits: &Splits,
    device: &Device,
    workers: usize,
    bar: &indicatif::ProgressBar,
) -> Result<MainOutput, String> {
    let plan = ctx.plan;
    let arch = ctx.arch;
    let ds = ctx.dataset;
    let fp_epochs = plan.fp_epochs;
    let f8_epochs = fp_epochs + plan.qat_epochs;
    let tiny_epochs = fp_epochs + splits.epochs(plan.tiny_steps);
    let labels = &ds.test.labels[..ds.test.len().min(plan.test_images)];
    let (fp_source, fp_method) = if arch == Arch::ResNet50 {
        (SOURCE_TINY, METHOD_FP_TINY)
    } else {
        (SOURCE_CONVENTIONAL, METHOD_FP)
    };
    let run = |job: MainJob| -> Result<(StageRows, Vec<MainJob>), String> {
        let row = |seed: u64, source: &str, method: &str, bits, metric: &str, v: f64, ep| {
            note(
                bar,
                format!("{arch:?} seed {seed}: {method} {metric} = {v:.2}"),
            );
            ctx.row(source, method, bits, metric, v, seed, ep)
        };
        let curves = |t: &Trained, seed: u64, source: &str, method: &str, bits| {
            t.report
                .curve_rows(&ctx.row(source, method, bits, "", 0.0, seed, 0))
        };
        match job {
            MainJob::Fp(seed) => {
                let fp = train_fp(arch, plan, splits, seed, device, bar)?;
                let acc = accuracy(&predict(&fp.model, &ds.test, plan.test_images), labels);
                let bits = ("32", "32");
                let rows = vec![row(
                    seed,
                    fp_source,
                    fp_method,
                    bits,
                    "top1_acc_pct",
                    acc,
                    fp_epochs,
                )];
                let curves = curves(&fp, seed, fp_source, fp_method, bits);
                let fp = std::sync::Arc::new(fp.model);
                let mut next = vec![
                    MainJob::Quantized(seed, Stage::F8Net, fp.clone()),
                    MainJob::Quantized(seed, Stage::Int8, fp.clone()),
                ];
                if arch == Arch::ResNet50 {
                    next.push(MainJob::Quantized(seed, Stage::Tiny, fp));
                }
                let done = StageRows {
                    seed,
                    stage: Stage::Fp,
                    rows,
                    curves,
                    counts: None,
                };
                Ok((done, next))
            }
            MainJob::Quantized(seed, Stage::Int8, fp) => {
                stage(bar, format!("{arch:?} seed {seed} INT8"));
                let recipe = sgd_recipe(splits.steps(plan.qat_epochs), QAT_LR);
                let int8 = train_quantized(
                    &fp,
                    Method::Int8Jacob,
                    recipe,
                    plan,
                    splits,
                    "int8",
                    seed,
                    bar,
                )?;
                let sim = predict(&int8.model, &ds.test, plan.test_images);
                let check =
                    int8_engine_check(&int8.model, &splits.validation, ds, plan.test_images, &sim)?;
                let bits = ("8", "8");
                let rows = [
                    ("top1_acc_pct", check.accuracy),
                    ("top1_acc_pct_simulated", accuracy(&sim, labels)),
                    ("sim_vs_integer_agreement_pct", check.agreement),
                ]
                .map(|(metric, v)| {
                    row(
                        seed,
                        SOURCE_CONVENTIONAL,
                        METHOD_INT8,
                        bits,
                        metric,
                        v,
                        f8_epochs,
                    )
                })
                .to_vec();
                let curves = curves(&int8, seed, SOURCE_CONVENTIONAL, METHOD_INT8, bits);
                let done = StageRows {
                    seed,
                    stage: Stage::Int8,
                    rows,
                    curves,
                    counts: Some(check.counts),
                };
                Ok((done, vec![]))
            }
            MainJob::Quantized(seed, st, fp) => {
                let tiny = st == Stage::Tiny;
                let label = if tiny { "tiny FT" } else { "F8Net" };
                stage(bar, format!("{arch:?} seed {seed} {label}"));
                let (opts, recipe, source, method, ep) = if tiny {
                    let recipe = tiny_recipe(plan.tiny_steps, TINY_LR);
                    (
                        F8Options::TINY,
                        recipe,
                        SOURCE_TINY,
                        METHOD_F8_TINY,
                        tiny_epochs,
                    )
                } else {
                    let recipe = sgd_recipe(splits.steps(plan.qat_epochs), QAT_LR);
                    let o = F8Options::DEFAULT;
                    (o, recipe, SOURCE_CONVENTIONAL, METHOD_F8, f8_epochs)
                };
                let name = if tiny { "tiny" } else { "f8net" };
                let m = train_quantized(
                    &fp,
                    Method::F8Net(opts),
                    recipe,
                    plan,
                    splits,
                    name,
                    seed,
                    bar,
                )?;
                let sim = predict(&m.model, &ds.test, plan.test_images);
                let check = engine_check(&m.model, ds, plan.test_images, &sim)?;
                let bits = ("8", "8");
                let mut rows = vec![row(
                    seed,
                    source,
                    method,
                    bits,
                    "top1_acc_pct",
                    check.accuracy,
                    ep,
                )];
                if !tiny {
                    rows.push(row(
                        seed,
                        source,
                        method,
                        bits,
                        "top1_acc_pct_simulated",
                        accuracy(&sim, labels),
                        ep,
                    ));
                }
                rows.push(row(
                    seed,
                    source,
                    method,
                    bits,
                    "sim_vs_integer_agreement_pct",
                    check.agreement,
                    ep,
                ));
                let done = StageRows {
                    seed,
                    stage: st,
                    rows,
                    curves: curves(&m, seed, source, method, bits),
                    counts: (!tiny).then_some(check.counts),
                };
                Ok((done, vec![]))
            }
        }
    };
    let initial = plan.seeds.iter().map(|&s| MainJob::Fp(s)).collect();
    let mut done = run_jobs(workers, initial, run)?;
    done.sort_by_key(|d| (d.seed, d.stage));
    let mut ops = Vec::new();
    // Each pipeline's counts as its engine ran one inference of the trained model.
    let counts_of = |stage: Stage| done.iter().find(|d| d.stage == stage)?.counts;
    if let (Some(f8), Some(int8)) = (counts_of(Stage::F8Net), counts_of(Stage::Int8)) {
        let proxy = proxy_label(arch, ds, plan);
        for (pipeline, c) in [
            ("F8Net (i8 x i8 + shifts)", f8),
            ("Jacob 2018 integer-only (i8 x i8 + INT32 multiplier)", int8),
        ] {
            ops.push(OpsRow {
                model: published_model(arch).into(),
                proxy: proxy.clone(),
                pipeline: pipeline.into(),
                mul_8x8: c.mul_8x8,
                mul_32x32: c.mul_32x32,
                shifts: c.shifts,
                bytes_moved: Some(c.bytes_moved),
                profile: plan.name().into(),
                run_id: ctx.run_id.into(),
            });
        }
    }
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for d in done {
        rows.extend(d.rows);
        curves.extend(d.curves);
    }
    Ok(MainOutput { rows, curves, ops })
}

/// Mean and standard deviation over the seeds of every main-table cell of `arch` in `table` (the
/// whole recorded table, so runs of one seed each add up), for this plan's proxy and profile.
pub fn summaries(table: &[ResultRow], ctx: &RowCtx) -> Vec<SummaryRow> {
    let proxy = proxy_label(ctx.arch, ctx.dataset, ctx.plan);
    let model = published_model(ctx.arch);
    let mut cells: std::collections::BTreeMap<(String, String, String), Vec<f64>> =
        Default::default();
    for r in table
        .iter()
        .filter(|r| r.model == model && r.proxy == proxy && r.profile == ctx.plan.name())
    {
        cells
            .entry((r.source.clone(), r.method.clone(), r.metric.clone()))
            .or_default()
            .push(r.value);
    }
    cells
        .into_iter()
        .map(|((source, method, metric), v)| {
            let (mean, std) = repro::stats::mean_and_sd(&v);
            let (int32, fp) = match method.as_str() {
                METHOD_INT8 => ("yes", "no"),
                METHOD_FP | METHOD_FP_TINY => ("n/a", "yes"),
                _ => ("no", "no"),
            };
            SummaryRow {
                source,
                model: model.into(),
                method,
                quantity: metric,
                proxy: proxy.clone(),
                seeds: v.len(),
                mean,
                std,
                int32_mult: int32.into(),
                fp_mult: fp.into(),
                profile: ctx.plan.name().into(),
                run_id: ctx.run_id.into(),
            }
        })
        .collect()
}

/// Ablation variants (dossier §10 P3): name and F8Net options.
pub fn ablation_variants() -> Vec<(&'static str, F8Options)> {
    let d = F8Options::DEFAULT;
    vec![
        ("std rule c=40/70 (code), per-layer, PACT on", d),
        (
            "std rule exact c*=39.22/72.12",
            F8Options {
                rule: Some(FlRule::StdExact),
                ..d
            },
        ),
        (
            "MSE grid search FL",
            F8Options {
                rule: Some(FlRule::GridSearch),
                ..d
            },
        ),
        (
            "max-based dynamic fixed point FL",
            F8Options {
                rule: Some(FlRule::MaxBased),
                ..d
            },
        ),
        ("fixed format W FL7 / A FL6", F8Options { rule: None, ..d }),
        (
            "per-channel weight FL",
            F8Options {
                per_channel: true,
                ..d
            },
        ),
        ("PACT off", F8Options { pact: false, ..d }),
    ]
}

/// The ablation table on one model and seed: every variant is quantization-aware trained from the
/// same FP model (the main table's, resumed from its checkpoint), plus the tiny fine-tuning mode
/// (lr 0 calibration and lr 1e-4), each evaluated with the integer engine. Returns the rows and
/// every stage's validation curve.
pub fn ablations(
    ctx: &RowCtx,
    splits: &Splits,
    device: &Device,
    workers: usize,
    bar: &indicatif::ProgressBar,
) -> Result<(Vec<ResultRow>, Vec<ResultRow>), String> {
    let plan = ctx.plan;
    let ds = ctx.dataset;
    let seed = plan.seeds[0];
    let labels = &ds.test.labels[..ds.test.len().min(plan.test_images)];
    let fp = train_fp(ctx.arch, plan, splits, seed, device, bar)?;
    let source = "f8net ablations (dossier P3; paper numbers not transcribed)";
    let fp_bits = ("32", "32");
    let mut rows = vec![ctx.row(
        source,
        METHOD_FP,
        fp_bits,
        "top1_acc_pct",
        accuracy(&predict(&fp.model, &ds.test, plan.test_images), labels),
        seed,
        plan.fp_epochs,
    )];
    // Tiny fine-tuning switches PACT off, so the float model it quantizes is the FP model without
    // its clips, its tensors no longer in units of the clip levels: the same lr-0 calibration (batch
    // norm's statistics only) in float tells what that costs before any rounding.
    let calibration = tiny_recipe(plan.tiny_steps.min(CALIBRATION_STEPS), 0.0);
    let unclipped = train_quantized(
        &fp.model,
        Method::FullPrecision { pact: false },
        calibration,
        plan,
        splits,
        "ablation-unclipped",
        seed,
        bar,
    )?;
    rows.push(ctx.row(
        source,
        METHOD_FP_UNCLIPPED,
        fp_bits,
        "top1_acc_pct",
        accuracy(
            &predict(&unclipped.model, &ds.test, plan.test_images),
            labels,
        ),
        seed,
        plan.fp_epochs + splits.epochs(calibration.steps),
    ));
    let mut curves = fp
        .report
        .curve_rows(&ctx.row(source, METHOD_FP, fp_bits, "", 0.0, seed, 0));
    let tiny = F8Options::TINY;
    let qat = sgd_recipe(splits.steps(plan.qat_epochs), QAT_LR);
    let mut variants: Vec<(String, F8Options, Recipe)> = ablation_variants()
        .into_iter()
        .map(|(n, o)| (format!("F8Net QAT: {n}"), o, qat))
        .collect();
    variants.push((
        "F8Net tiny fine-tuning: grid FL, no PACT, lr 0 (calibration)".into(),
        tiny,
        calibration,
    ));
    variants.push((
        "F8Net tiny fine-tuning: grid FL, no PACT, lr 1e-4".into(),
        tiny,
        tiny_recipe(plan.tiny_steps, TINY_LR),
    ));
    // A per-layer weight format must hold a layer's largest folded weight: a channel whose batch
    // norm variance has collapsed (a dead input) folds to weights 1/sqrt(ε) times larger and takes
    // the layer's format with it (README); per-channel formats keep it to its own channel.
    variants.push((
        "F8Net tiny fine-tuning: grid FL, per-channel weight FL, no PACT, lr 0 (calibration)"
            .into(),
        F8Options {
            per_channel: true,
            ..tiny
        },
        calibration,
    ));
    let jobs: Vec<_> = variants.into_iter().enumerate().collect();
    let mut done = run_jobs(workers, jobs, |(i, (name, opts, recipe))| {
        stage(bar, format!("ablation {name}"));
        let m = train_quantized(
            &fp.model,
            Method::F8Net(opts),
            recipe,
            plan,
            splits,
            &format!("ablation{i}"),
            seed,
            bar,
        )?;
        let sim = predict(&m.model, &ds.test, plan.test_images);
        let check = engine_check(&m.model, ds, plan.test_images, &sim)?;
        note(
            bar,
            format!(
                "{name}: top1 {:.2}, agreement {:.2}",
                check.accuracy, check.agreement
            ),
        );
        let epochs = plan.fp_epochs + splits.epochs(recipe.steps);
        let bits = ("8", "8");
        let rows = [
            ("top1_acc_pct", check.accuracy),
            ("sim_vs_integer_agreement_pct", check.agreement),
        ]
        .map(|(metric, v)| ctx.row(source, &name, bits, metric, v, seed, epochs));
        let curve = m
            .report
            .curve_rows(&ctx.row(source, &name, bits, "", 0.0, seed, 0));
        Ok(((i, rows, curve), vec![]))
    })?;
    done.sort_by_key(|d| d.0);
    for (_, r, c) in done {
        rows.extend(r);
        curves.extend(c);
    }
    Ok((rows, curves))
}

/// Iterations of the lr-0 tiny fine-tuning (a calibration: only BN statistics and FL buffers move;
/// the paper's ResNet18 setting).
const CALIBRATION_STEPS: usize = 100;

/// Progress-bar length of [`ablations`].
pub fn ablation_steps(plan: &StagePlan, splits: &Splits) -> u64 {
    let qat = ablation_variants().len() * splits.steps(plan.qat_epochs);
    // Tiny fine-tuning, its lr-0 calibrations (per-layer and per-channel weights) and the same
    // calibration of the unclipped float model.
    let tiny = plan.tiny_steps + 3 * plan.tiny_steps.min(CALIBRATION_STEPS);
    (splits.steps(plan.fp_epochs) + qat + tiny) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_override_the_fp_stage_only() {
        let p = StagePlan::new(Profile::Full, Some(2), None);
        assert_eq!(p.fp_epochs, 2);
        assert_eq!(p.qat_epochs, 5);
        assert_eq!(p.seeds, vec![0, 1, 2]);
        assert_eq!(
            StagePlan::steps(2, 55_000),
            858,
            "2 epochs of 55 000 images in batches of 128"
        );
    }
}
