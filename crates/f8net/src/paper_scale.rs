//! F8Net's Tiny Finetuning rows at paper scale (`f8net --model resnet18|resnet50 --profile
//! paper`): a published float checkpoint of torchvision's ResNet-18 or ResNet-50 (v1.5, the layout
//! of the paper's PyTorchCV `resnet50b`) scored on ImageNet's validation images in float, then tiny
//! fine-tuned as the official configurations do (dossier §7: FLs by MSE grid search, per layer,
//! PACT off, normalized signed input; batch 128, SGD with Nesterov momentum, weight decay 1e-4;
//! ResNet-18 100 iterations at lr 0, a calibration of batch norm and the FL buffers, ResNet-50 500
//! at 1e-4) on the training split, exported to quant-core's shift-only engine and scored there from
//! the uint8 pixels. Rows carry the published rows' keys and an empty `proxy`.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use quant_core::fixed8::graph::FixedPointGraph;
use quant_core::kernels::Backend;
use quant_train::models::imagenet::LayerName;
use quant_train::pretrained::{self, PaperInputs};
use quant_train::train::TrainReport;
use quant_train::{ModelConfig, ModelSpec};
use rayon::prelude::*;
use repro::examples::{Examples, View};
use repro::results::{Measured, ResultRow, RunStamp};

use crate::experiments::{
    METHOD_F8_TINY, METHOD_FP_TINY, SOURCE_TINY, published_model, tiny_recipe,
};
use crate::export::to_engine;
use crate::graph::{Arch, Graph, Input};
use crate::model::{F8Options, Method, Network};
use crate::statistics::PAPER;
use crate::train::{StageRun, eval_copy, train};

/// Input side of the ImageNet models (resize 256, centre crop 224 for evaluation).
pub const SIDE: usize = 224;
/// Images decoded at a time for scoring.
const EVAL_BATCH: usize = 64;

/// The official tiny fine-tuning of `arch`: iterations and constant learning rate (dossier §7).
pub fn paper_recipe(arch: Arch) -> Result<(usize, f64), String> {
    match arch {
        Arch::ResNet18 => Ok((100, 0.0)),
        Arch::ResNet50 => Ok((500, 1e-4)),
        Arch::MobileNetV1 | Arch::MobileNetV2 => Err(not_fine_tuned(arch)),
    }
}

/// Why `arch` has no paper-scale run.
fn not_fine_tuned(arch: Arch) -> String {
    format!(
        "--profile paper runs the Tiny Finetuning rows (resnet18, resnet50); {} is trained from \
         scratch for 150 + 150 ImageNet epochs in the paper, which this suite runs on proxies \
         only: use --profile full",
        published_model(arch)
    )
}

/// The published keys of `arch`'s Tiny Finetuning rows: the float checkpoint's and F8Net's method.
fn methods(arch: Arch) -> (&'static str, &'static str) {
    match arch {
        Arch::ResNet50 => (METHOD_FP_TINY, METHOD_F8_TINY),
        _ => (
            "full precision pretrained (PyTorchCV)",
            "F8Net fixed-point 8-bit only (tiny finetuning)",
        ),
    }
}

/// One paper-scale tiny fine-tuning run.
pub struct PaperTiny<'a> {
    /// ImageNet's splits and the float checkpoint (torchvision's layout).
    pub inputs: &'a PaperInputs,
    pub arch: Arch,
    /// Fine-tuning iterations and learning rate ([`paper_recipe`] unless overridden).
    pub steps: usize,
    pub lr: f64,
    pub seed: u64,
    /// The inference device (training wraps it with `.autodiff()`).
    pub device: Device,
    /// Where the fine-tuning checkpoints its progress (none: it starts over every run).
    pub checkpoints: Option<PathBuf>,
}

/// Top-1 (%) on the validation images: the float checkpoint, and the tiny fine-tuned F8Net model
/// on the shift-only engine; with the fine-tuning's report.
#[derive(Debug, Clone)]
pub struct PaperTinyResult {
    pub float: f64,
    pub f8net: f64,
    pub report: TrainReport,
}

impl PaperTiny<'_> {
    /// Float top-1, tiny fine-tuning, and the F8Net model's top-1 on the engine.
    pub fn run(&self, bar: &indicatif::ProgressBar) -> Result<PaperTinyResult, String> {
        let (_, float_top1) =
            self.inputs
                .scored_float(zoo_spec(self.arch)?, self.seed, &self.device)?;
        let classes = self.inputs.train.classes.len();
        let input = Input {
            channels: 3,
            side: SIDE,
            classes,
        };
        let graph =
            Graph::imagenet(self.arch, 1.0, input).ok_or_else(|| not_fine_tuned(self.arch))?;
        let method = Method::F8Net(F8Options::TINY);
        let mut model = Network::new(graph, method, self.seed, &self.device.clone().autodiff());
        load_pretrained(&mut model, &self.inputs.checkpoint)?;
        let run = StageRun {
            data: &self.inputs.train,
            validation: None,
            seed: self.seed,
            checkpoint: self.checkpoints.clone(),
        };
        let report = train(&mut model, tiny_recipe(self.steps, self.lr), &run, bar)?;
        let engine = to_engine(&mut eval_copy(&model))?
            .prepare(Backend::detect())
            .map_err(|e| e.to_string())?;
        let f8_top1 = engine_top1(&engine, &self.inputs.val)?;
        eprintln!("F8Net tiny fine-tuned top-1 on the shift-only engine {f8_top1:.2}%");
        Ok(PaperTinyResult {
            float: float_top1,
            f8net: f8_top1,
            report,
        })
    }
}

/// The zoo's ImageNet architecture of `arch`, whose layer names are torchvision's.
fn zoo_spec(arch: Arch) -> Result<ModelSpec, String> {
    match arch {
        Arch::ResNet18 => Ok(ModelSpec::ImageNetResNet(18)),
        Arch::ResNet50 => Ok(ModelSpec::ImageNetResNet(50)),
        Arch::MobileNetV1 | Arch::MobileNetV2 => Err(not_fine_tuned(arch)),
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

/// The Tiny Finetuning rows of `result` for `arch` (float and F8Net top-1) and the fine-tuning's
/// curve.
pub fn rows(
    result: &PaperTinyResult,
    arch: Arch,
    stamp: &RunStamp,
) -> (Vec<ResultRow>, Vec<ResultRow>) {
    let (fp, f8) = methods(arch);
    let row = |method: &str, bits: &str, value: f64| {
        ResultRow::new(
            Measured {
                paper: PAPER,
                source: SOURCE_TINY,
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
    let curves = result.report.curve_rows(&row(f8, "8", 0.0));
    (rows, curves)
}
