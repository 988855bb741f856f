//! Table 4.1's ImageNet row at paper scale (`integer-qat depth --profile paper`): a published float
//! checkpoint of the paper's architecture (ResNet-50; torchvision's weights stand in for the
//! authors' own float model, which was not released) scored on ImageNet's validation images,
//! quantized after training (calibrated on training images) and with quantization-aware fine-tuning
//! on the training split, both 8-bit models exported to quant-core's integer engine and scored there.
//! The ImageNet models' input normalization becomes the engine's per-channel code table
//! ([`quant_core::engine::CodeTableLayer`]), so the whole deployed network, from the uint8 pixels
//! to the logits, is integer-only. Rows carry the published rows' keys and an empty `proxy`.
//!
//! The paper gives no fine-tuning recipe for its ImageNet models; this run follows torchvision's
//! quantization-aware training reference (`references/classification/train_quantization.py`):
//! momentum SGD at a constant 1e-4, weight decay 1e-4, batches of 32, batch norm frozen halfway.

use std::path::PathBuf;

use burn::prelude::*;
use quant_core::fixedpoint::RoundingMode;
use quant_train::export::{IntegerNet, export};
use quant_train::pretrained::{self, PaperInputs};
use quant_train::train::{argmax_rows, train};
use quant_train::{LrSchedule, ModelSpec, Net, Optimizer, RunOptions, TrainConfig, TrainReport};
use rayon::prelude::*;
use repro::examples::{Examples, View};
use repro::results::{Measured, ResultRow, RunStamp};

use crate::T41;
use crate::experiments::{PAPER, PTQ, QAT_T41};
use crate::recipe::{CALIBRATION_IMAGES, calibrated_on};

/// Input side of the ImageNet models (resize 256, centre crop 224 for evaluation).
pub const SIDE: usize = 224;
/// Images per evaluation batch.
const EVAL_BATCH: usize = 64;

/// QAT fine-tuning of a published checkpoint over `images` training images for `epochs`: the
/// recipe of torchvision's quantization reference (see the module docs).
pub fn fine_tuning_config(epochs: u32, seed: u64, images: usize) -> TrainConfig {
    let mut tc = TrainConfig::adam(epochs, 1e-4, seed + 1000);
    tc.optimizer = Optimizer::Sgd { momentum: 0.9 };
    tc.schedule = LrSchedule::Constant;
    tc.weight_decay = 1e-4;
    tc.batch_size = 32;
    let steps = (images / tc.batch_size) as u64 * u64::from(epochs);
    tc.qat.freeze_bn_at = Some(steps / 2);
    tc
}

/// One paper-scale run of Table 4.1.
pub struct PaperDepth<'a> {
    /// ImageNet's splits and the float checkpoint (torchvision layout for the ResNets).
    pub inputs: &'a PaperInputs,
    /// The zoo's ImageNet architecture of the checkpoint.
    pub arch: ModelSpec,
    pub epochs: u32,
    pub seed: u64,
    pub device: Device,
    /// Where the fine-tuning checkpoints its epochs (none: it starts over every run).
    pub checkpoints: Option<PathBuf>,
}

/// The measured accuracies (top-1 %, validation images) and the fine-tuning's report.
#[derive(Debug, Clone)]
pub struct PaperDepthResult {
    pub float: f64,
    /// 8-bit post-training quantization on the integer engine.
    pub ptq: f64,
    /// 8-bit QAT fine-tuning on the integer engine.
    pub qat: f64,
    pub qat_report: TrainReport,
}

impl PaperDepth<'_> {
    /// Float, PTQ and QAT top-1, each 8-bit model run on the integer engine.
    pub fn run(&self) -> Result<PaperDepthResult, String> {
        let inputs = self.inputs;
        let (float, float_top1) = pretrained::scored_float(
            &inputs.checkpoint,
            self.arch.clone(),
            &inputs.val,
            self.seed,
            &self.device,
        )?;
        let images = &self.inputs.train;
        // The folder lists its images class by class: calibrate on images spread over all of them.
        let n = images.len();
        let k = n.min(CALIBRATION_IMAGES);
        let spread: Vec<usize> = (0..k).map(|i| i * n / k).collect();
        let ptq = calibrated_on(&float, (8, 8), images, &spread, &self.device)?;
        let ptq_top1 = self.engine_top1(&ptq)?;
        eprintln!("PTQ 8/8 top-1 on the integer engine {ptq_top1:.2}%");
        let options = RunOptions {
            checkpoint: self.checkpoints.clone(),
            label: "QAT fine-tuning".into(),
            validation: None,
        };
        let recipe = fine_tuning_config(self.epochs, self.seed, n);
        let (qat, qat_report) =
            train(ptq, images, &recipe, &options, &self.device).map_err(|e| e.to_string())?;
        let qat_top1 = self.engine_top1(&qat)?;
        eprintln!("QAT 8/8 top-1 on the integer engine {qat_top1:.2}%");
        Ok(PaperDepthResult {
            float: float_top1,
            ptq: ptq_top1,
            qat: qat_top1,
            qat_report,
        })
    }

    /// Top-1 (%) on the validation images of `net` exported to the integer engine, a batch decoded
    /// at a time.
    fn engine_top1(&self, net: &Net) -> Result<f64, String> {
        let input = self.inputs.val.shape();
        let int = export(net, input, RoundingMode::Double).map_err(|e| e.to_string())?;
        engine_top1(&int, &self.inputs.val, EVAL_BATCH)
    }
}

/// Top-1 (%) of the integer engine on `set` in its evaluation view, `batch` examples decoded at a
/// time on the worker threads.
pub fn engine_top1(int: &IntegerNet, set: &dyn Examples, batch: usize) -> Result<f64, String> {
    let per: usize = set.shape().iter().product();
    let mut hits = 0;
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch.max(1)) {
        let mut bytes = vec![0_u8; chunk.len() * per];
        bytes
            .par_chunks_mut(per)
            .zip(chunk)
            .try_for_each(|(out, &i)| set.read(i, View::Eval, out))?;
        let codes = int.run(&bytes, chunk.len()).map_err(|e| e.to_string())?;
        let logits: Vec<f32> = codes.iter().map(|&c| c as f32).collect();
        let predicted = argmax_rows(&logits, int.classes);
        hits += chunk
            .iter()
            .zip(predicted)
            .filter(|&(&i, p)| set.label(i) == p)
            .count();
    }
    Ok(100.0 * hits as f64 / set.len().max(1) as f64)
}

/// Fine-tuning epochs when `--epochs` is not given: torchvision's reference recipe's 10 (the paper
/// states none).
pub const EPOCHS: u32 = 10;

/// The `model` column of an ImageNet architecture of the zoo (`None` for the proxies).
pub fn model_name(arch: &ModelSpec) -> Option<String> {
    match arch {
        ModelSpec::ImageNetResNet(d) => Some(format!("ResNet-{d}")),
        ModelSpec::ImageNetMobileNetV1(a) => Some(format!("MobileNetV1 {a}")),
        ModelSpec::ImageNetMobileNetV2(a) => Some(format!("MobileNetV2 {a}")),
        _ => None,
    }
}

/// Table 4.1's rows of `result` for `model` (float, QAT and PTQ top-1) and the fine-tuning's
/// learning curve.
pub fn rows(
    result: &PaperDepthResult,
    model: &str,
    stamp: &RunStamp,
) -> (Vec<ResultRow>, Vec<ResultRow>) {
    let row = |method: &str, bits: &str, value: f64| {
        ResultRow::new(
            Measured {
                paper: PAPER,
                source: T41,
                dataset: "ImageNet",
                model,
                method,
                bits: (bits, bits),
                metric: "top1_acc_pct",
                proxy: "",
            },
            value,
            stamp,
        )
    };
    let rows = vec![
        row("float", "32", result.float),
        row(QAT_T41, "8", result.qat),
        row(PTQ, "8", result.ptq),
    ];
    let curves = result.qat_report.curve_rows(&row(QAT_T41, "8", 0.0));
    (rows, curves)
}
