//! F8Net's ImageNet rows at paper scale (`f8net --model M --profile paper --data IMAGENET`), each
//! model scored on ImageNet's validation images, F8Net on quant-core's shift-only engine from the
//! uint8 pixels; rows carry the published rows' keys and an empty `proxy`.
//!
//! - Tiny Finetuning (`--pretrained`; ResNet-18, ResNet-50): a published float checkpoint of
//!   torchvision's ResNet-18 or ResNet-50 (v1.5, the layout of the paper's PyTorchCV `resnet50b`)
//!   scored in float, then tiny fine-tuned as the official configurations do (dossier §7: FLs by
//!   MSE grid search, per layer, PACT off, normalized signed input; batch 128, SGD with Nesterov
//!   momentum, weight decay 1e-4; ResNet-18 100 iterations at lr 0, a calibration of batch norm
//!   and the FL buffers, ResNet-50 500 at 1e-4).
//! - Conventional (no checkpoint; MobileNetV1, MobileNetV2b, ResNet-18): the PACT-clipped float
//!   model trained from scratch on raw pixels, then F8Net trained from it, 150 epochs each, SGD
//!   with Nesterov momentum, cosine rate per iteration, weight decay 4e-5, batches of 256 at the
//!   per-model base rates (the official recipe without the 8-GPU batch of 2048, whose rates scale
//!   with the batch and warm up; at 256 neither applies). The float row is the simulated model's.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use quant_core::fixed8::graph::FixedPointGraph;
use quant_core::kernels::Backend;
use quant_train::models::imagenet::LayerName;
use quant_train::pretrained;
use quant_train::train::TrainReport;
use quant_train::{ModelConfig, ModelSpec};
use rayon::prelude::*;
use repro::examples::{Examples, View};
use repro::image_folder::ImageFolder;
use repro::results::{Measured, ResultRow, RunStamp};

use crate::experiments::{
    METHOD_F8, METHOD_F8_TINY, METHOD_FP, METHOD_FP_TINY, SOURCE_CONVENTIONAL, SOURCE_TINY,
    from_fp, published_model, sgd_recipe, tiny_recipe,
};
use crate::export::to_engine;
use crate::graph::{Arch, Graph, Input, InputCoding};
use crate::model::{F8Options, Method, Network};
use crate::statistics::PAPER;
use crate::train::{Recipe, StageRun, eval_copy, simulated_top1, train};

/// Input side of the ImageNet models (resize 256, centre crop 224 for evaluation).
pub const SIDE: usize = 224;
/// Images decoded at a time for scoring.
const EVAL_BATCH: usize = 64;
/// Batch of the conventional stages on one device (the official rates are per 256).
const CONVENTIONAL_BATCH: usize = 256;
/// Batch of tiny fine-tuning (one GPU in the official configurations).
const TINY_BATCH: usize = 128;
/// Epochs of each conventional stage (FP, then F8Net).
const CONVENTIONAL_EPOCHS: u32 = 150;

/// Which of the paper's ImageNet tables a run reproduces, with its recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PaperPlan {
    /// Tiny Finetuning from a published checkpoint: iterations of `batch` images at a constant
    /// rate.
    Tiny { steps: usize, lr: f64, batch: usize },
    /// Conventional: the float model trained from scratch, then F8Net from it; epochs of each
    /// stage, their base rates and the batch.
    Conventional {
        epochs: u32,
        fp_lr: f64,
        f8_lr: f64,
        batch: usize,
    },
}

impl PaperPlan {
    /// The plan of `arch`: tiny fine-tuning when a checkpoint is given (ResNet-18, ResNet-50), the
    /// conventional training otherwise (MobileNetV1, MobileNetV2b, ResNet-18), the paper's lengths
    /// unless `steps` (tiny) or `epochs` (conventional) say otherwise, and its batch (128 tiny,
    /// 256 conventional) unless `batch` does: a smaller one fits a smaller memory, at the price
    /// of noisier batch statistics.
    pub fn of(
        arch: Arch,
        pretrained: bool,
        (steps, epochs): (Option<usize>, Option<u32>),
        batch: Option<usize>,
    ) -> Result<Self, String> {
        let model = published_model(arch);
        if batch == Some(0) {
            return Err(
                "--batch 0: a step needs at least one image; pass --batch 1 or more".into(),
            );
        }
        if pretrained {
            if epochs.is_some() {
                return Err(
                    "--epochs sets the conventional training (without --pretrained); \
                            tiny fine-tuning takes --steps: drop --epochs"
                        .into(),
                );
            }
            let (default, lr) = match arch {
                Arch::ResNet18 => (100, 0.0),
                Arch::ResNet50 => (500, 1e-4),
                Arch::MobileNetV1 | Arch::MobileNetV2 => {
                    return Err(format!(
                        "{model} has no Tiny Finetuning row in the paper: drop --pretrained to \
                         train it from scratch (its Conventional rows)"
                    ));
                }
            };
            return match steps.unwrap_or(default) {
                0 => Err(
                    "--steps 0: tiny fine-tuning needs at least one iteration; pass \
                          --steps 1 or more"
                        .into(),
                ),
                steps => Ok(PaperPlan::Tiny {
                    steps,
                    lr,
                    batch: batch.unwrap_or(TINY_BATCH),
                }),
            };
        }
        if steps.is_some() {
            return Err(
                "--steps sets tiny fine-tuning (with --pretrained); the conventional \
                        training takes --epochs: drop --steps"
                    .into(),
            );
        }
        // Base rates per 256 (dossier §7): FP, then F8Net.
        let (fp_lr, f8_lr) = match arch {
            Arch::MobileNetV1 => (0.05, 0.05),
            Arch::MobileNetV2 => (0.1, 0.1),
            Arch::ResNet18 => (0.05, 0.1),
            Arch::ResNet50 => {
                return Err(format!(
                    "{model} has Tiny Finetuning rows only: pass --pretrained with a float \
                     ResNet-50 checkpoint (torchvision's layout)"
                ));
            }
        };
        match epochs.unwrap_or(CONVENTIONAL_EPOCHS) {
            0 => Err(
                "--epochs 0: each stage needs at least one epoch; pass --epochs 1 or more".into(),
            ),
            epochs => Ok(PaperPlan::Conventional {
                epochs,
                fp_lr,
                f8_lr,
                batch: batch.unwrap_or(CONVENTIONAL_BATCH),
            }),
        }
    }
}

/// The published keys of `arch`'s rows under `plan`: source, the float model's and F8Net's method.
fn keys(arch: Arch, plan: PaperPlan) -> (&'static str, &'static str, &'static str) {
    match (plan, arch) {
        (PaperPlan::Conventional { .. }, _) => (SOURCE_CONVENTIONAL, METHOD_FP, METHOD_F8),
        (PaperPlan::Tiny { .. }, Arch::ResNet50) => (SOURCE_TINY, METHOD_FP_TINY, METHOD_F8_TINY),
        (PaperPlan::Tiny { .. }, _) => (
            SOURCE_TINY,
            "full precision pretrained (PyTorchCV)",
            "F8Net fixed-point 8-bit only (tiny finetuning)",
        ),
    }
}

/// One paper-scale run.
pub struct PaperRun<'a> {
    /// `<root>/train/<synset>/*.JPEG`, streamed with the training crops.
    pub train: &'a ImageFolder,
    /// `<root>/val/<synset>/*.JPEG`, scored with the evaluation crop.
    pub val: &'a ImageFolder,
    /// The float checkpoint of tiny fine-tuning (torchvision's layout).
    pub checkpoint: Option<&'a Path>,
    pub arch: Arch,
    pub plan: PaperPlan,
    pub seed: u64,
    /// The inference device (training wraps it with `.autodiff()`).
    pub device: Device,
    /// Where the stages checkpoint their progress (none: they start over every run).
    pub checkpoints: Option<PathBuf>,
}

/// Top-1 (%) on the validation images of the float model and of F8Net on the shift-only engine,
/// with the reports of the stages trained (F8Net's last).
#[derive(Debug, Clone)]
pub struct PaperResult {
    pub float: f64,
    pub f8net: f64,
    pub reports: Vec<(&'static str, TrainReport)>,
}

impl PaperRun<'_> {
    /// Optimizer steps of the whole run (the progress bar's length).
    pub fn steps(&self) -> usize {
        match self.plan {
            PaperPlan::Tiny { steps, .. } => steps,
            PaperPlan::Conventional { epochs, batch, .. } => {
                2 * self.conventional_steps(epochs, batch)
            }
        }
    }

    fn conventional_steps(&self, epochs: u32, batch: usize) -> usize {
        epochs as usize * (self.train.len() / batch).max(1)
    }

    /// What the manifest records of the inputs: the checkpoint's SHA-256 (tiny fine-tuning) and
    /// digests of the two splits' listings (paths, sizes, labels).
    pub fn checksums(&self) -> Result<Vec<(String, String)>, String> {
        pretrained::input_checksums(
            self.checkpoint,
            &[
                ("ImageNet training listing", self.train),
                ("ImageNet validation listing", self.val),
            ],
        )
    }

    /// The network at full width for the folder's classes, its pixels entering as `coding`.
    fn graph(&self, coding: InputCoding) -> Graph {
        let input = Input {
            channels: 3,
            side: SIDE,
            classes: self.train.classes.len(),
        };
        Graph::imagenet(self.arch, 1.0, input, coding)
    }

    /// A stage on the training folder, checkpointed under `name`.
    fn stage(&self, name: &str, seed: u64) -> StageRun<'_> {
        StageRun {
            data: self.train,
            validation: None,
            seed,
            checkpoint: self.checkpoints.as_ref().map(|d| {
                d.join(format!("paper-{:?}-{name}-s{}", self.arch, self.seed).to_lowercase())
            }),
        }
    }

    /// The float row, the F8Net model's training, its top-1 on the engine.
    pub fn run(&self, bar: &indicatif::ProgressBar) -> Result<PaperResult, String> {
        let ad = self.device.clone().autodiff();
        let (float, model, reports) = match (self.plan, self.checkpoint) {
            (PaperPlan::Tiny { steps, lr, batch }, Some(checkpoint)) => {
                let spec = zoo_spec(self.arch)?;
                let (_, float) =
                    pretrained::scored_float(checkpoint, spec, self.val, self.seed, &self.device)?;
                let graph = self.graph(InputCoding::Normalized);
                let mut model = Network::new(graph, Method::F8Net(F8Options::TINY), self.seed, &ad);
                load_pretrained(&mut model, checkpoint)?;
                let recipe = Recipe {
                    batch,
                    ..tiny_recipe(steps, lr)
                };
                let report = train(&mut model, recipe, &self.stage("tiny", self.seed), bar)?;
                (float, model, vec![("tiny", report)])
            }
            (
                PaperPlan::Conventional {
                    epochs,
                    fp_lr,
                    f8_lr,
                    batch,
                },
                _,
            ) => {
                let recipe = |lr| Recipe {
                    batch,
                    ..sgd_recipe(self.conventional_steps(epochs, batch), lr)
                };
                let graph = self.graph(InputCoding::Pixels);
                let fp_method = Method::FullPrecision { pact: true };
                let mut fp = Network::new(graph, fp_method, self.seed, &ad);
                let fp_report = train(&mut fp, recipe(fp_lr), &self.stage("fp", self.seed), bar)?;
                let float = simulated_top1(&fp, self.val)?;
                eprintln!("float (PACT-clipped, simulated) top-1 {float:.2}%");
                let mut model = from_fp(&fp, Method::F8Net(F8Options::DEFAULT));
                let order = self.seed.wrapping_add(1000);
                let report = train(&mut model, recipe(f8_lr), &self.stage("f8net", order), bar)?;
                (float, model, vec![("fp", fp_report), ("f8net", report)])
            }
            (PaperPlan::Tiny { .. }, None) => {
                return Err(
                    "tiny fine-tuning starts from --pretrained: pass the checkpoint".into(),
                );
            }
        };
        let engine = to_engine(&mut eval_copy(&model))?
            .prepare(Backend::detect())
            .map_err(|e| e.to_string())?;
        let f8net = engine_top1(&engine, self.val)?;
        eprintln!("F8Net top-1 on the shift-only engine {f8net:.2}%");
        Ok(PaperResult {
            float,
            f8net,
            reports,
        })
    }
}

/// The zoo's ImageNet architecture of `arch`, whose layer names are torchvision's.
fn zoo_spec(arch: Arch) -> Result<ModelSpec, String> {
    match arch {
        Arch::ResNet18 => Ok(ModelSpec::ImageNetResNet(18)),
        Arch::ResNet50 => Ok(ModelSpec::ImageNetResNet(50)),
        Arch::MobileNetV1 | Arch::MobileNetV2 => Err(format!(
            "{}: only the ResNets load torchvision checkpoints",
            published_model(arch)
        )),
    }
}

/// Loads a checkpoint in torchvision's layout into `model` (an ImageNet ResNet of
/// [`Graph::imagenet`]): each convolution's weight and its batch norm's γ, β and running
/// statistics, and the classifier. The names come from the zoo's model of the same architecture,
/// whose layers are in the graph's convolution order (stem; per block its convolutions, then the
/// projection shortcut; the classifier). A missing or misshapen tensor is an error that names it.
pub fn load_pretrained(model: &mut Network, path: &Path) -> Result<(), String> {
    let graph = model.graph.clone();
    let mut config = ModelConfig::new(zoo_spec(graph.arch)?, 0);
    config.input = [3, graph.side, graph.side];
    config.classes = graph.classes;
    let (_, names) = config.build_named(&Device::flex());
    let tensors = pretrained::read_tensors(path)?;
    let device = model.params.fc_b.val().device();
    let err = |e: String| format!("{}: {e}", path.display());
    let vector = |key: String, n: usize| -> Result<Vec<f32>, String> {
        Ok(pretrained::tensor(&tensors, &key, &[n])
            .map_err(err)?
            .to_vec())
    };
    let (convs, [LayerName::Linear(fc)]) = names.split_at(names.len().saturating_sub(1)) else {
        return Err("the zoo's model has no classifier".into());
    };
    if convs.len() != graph.convs.len() {
        return Err(format!(
            "the zoo names {} convolutions, the F8Net graph has {}",
            convs.len(),
            graph.convs.len()
        ));
    }
    for (i, (c, name)) in graph.convs.iter().zip(convs).enumerate() {
        let LayerName::ConvBn { conv, bn } = name else {
            return Err(format!("layer {name:?} is not a convolution"));
        };
        let shape = [c.cout, c.cin / c.groups, c.k, c.k];
        let key = format!("{conv}.weight");
        let w = pretrained::tensor(&tensors, &key, &shape).map_err(err)?;
        model.params.conv_w[i] = Param::from_tensor(Tensor::from_data(
            TensorData::new(w.to_vec(), shape),
            &device,
        ));
        let gamma = vector(format!("{bn}.weight"), c.cout)?;
        let beta = vector(format!("{bn}.bias"), c.cout)?;
        model.params.gamma[i] =
            Param::from_tensor(Tensor::from_data(TensorData::new(gamma, [c.cout]), &device));
        model.params.beta[i] =
            Param::from_tensor(Tensor::from_data(TensorData::new(beta, [c.cout]), &device));
        model.state.bn_mean[i] = vector(format!("{bn}.running_mean"), c.cout)?;
        model.state.bn_var[i] = vector(format!("{bn}.running_var"), c.cout)?;
    }
    let shape = [graph.classes, graph.values[graph.head].channels];
    let w = pretrained::tensor(&tensors, &format!("{fc}.weight"), &shape).map_err(err)?;
    model.params.fc_w = Param::from_tensor(Tensor::from_data(
        TensorData::new(w.to_vec(), shape),
        &device,
    ));
    let b = vector(format!("{fc}.bias"), graph.classes)?;
    model.params.fc_b = Param::from_tensor(Tensor::from_data(
        TensorData::new(b, [graph.classes]),
        &device,
    ));
    Ok(())
}

/// Top-1 (%) of the engine on `set` in its evaluation view, [`EVAL_BATCH`] images decoded at a
/// time on the worker threads, which then run one image each.
pub fn engine_top1(engine: &FixedPointGraph, set: &dyn Examples) -> Result<f64, String> {
    let indices: Vec<usize> = (0..set.len()).collect();
    let per: usize = set.shape().iter().product();
    let mut hits = 0;
    for chunk in indices.chunks(EVAL_BATCH) {
        let (bytes, labels) = quant_train::data::read_examples(set, chunk, |_| View::Eval)?;
        let predicted: Vec<usize> = bytes
            .par_chunks(per.max(1))
            .map(|image| engine.predict(image).map(|(p, _)| p))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        hits += predicted
            .iter()
            .zip(&labels)
            .filter(|&(&p, &l)| p as i64 == l)
            .count();
    }
    Ok(100.0 * hits as f64 / set.len().max(1) as f64)
}

/// The rows of `result` for `arch` under `plan` (float and F8Net top-1) and the stages' curves.
pub fn rows(
    result: &PaperResult,
    arch: Arch,
    plan: PaperPlan,
    stamp: &RunStamp,
) -> (Vec<ResultRow>, Vec<ResultRow>) {
    let (source, fp, f8) = keys(arch, plan);
    let row = |method: &str, bits: &str, value: f64| {
        ResultRow::new(
            Measured {
                paper: PAPER,
                source,
                dataset: "ImageNet-1k val",
                model: published_model(arch),
                method,
                bits: (bits, bits),
                metric: "top1_acc_pct",
                proxy: "",
            },
            value,
            stamp,
        )
    };
    let rows = vec![row(fp, "32", result.float), row(f8, "8", result.f8net)];
    let curves = result
        .reports
        .iter()
        .flat_map(|(stage, report)| {
            let (method, bits) = if *stage == "fp" {
                (fp, "32")
            } else {
                (f8, "8")
            };
            report.curve_rows(&row(method, bits, 0.0))
        })
        .collect();
    (rows, curves)
}
