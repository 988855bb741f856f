//! The paper's own ResNet-50 rows at paper scale (`adaptivfloat accuracy --profile paper`): a
//! published ResNet-50 checkpoint (the paper's baseline is "PyTorch-trained": torchvision's weights)
//! scored on ImageNet's validation images at FP32 (Table 1, with the weight statistics of Table 1)
//! and after weight-only post-training quantization to every format at every width (Table 2's PTQ
//! column), with the quantizers of the stand-in rows ([`quantize_all_parameters`]). The rows carry
//! the published rows' keys and an empty `proxy`: they are the paper's own experiment.
//!
//! Retraining (Table 2's QAR column, Table 3) needs ImageNet training at paper scale and is not
//! part of this run.

use std::path::Path;

use burn::prelude::*;
use quant_core::formats::{Format, FormatKind};
use quant_train::{ModelConfig, ModelSpec, Phase, pretrained, score};
use repro::image_folder::ImageFolder;
use repro::results::{Measured, ResultRow, RunStamp};

use crate::accuracy::table1_weight_stats;
use crate::fakequant::{parameter_tensors, quantize_all_parameters};

/// Input side of the paper's ImageNet evaluation (the torchvision standard: resize 256, centre
/// crop 224).
pub const SIDE: usize = 224;
/// ImageNet's classes.
pub const CLASSES: usize = 1000;
/// Images per evaluation batch.
const BATCH: usize = 64;

/// One paper-scale run: the validation images, the checkpoint and the widths of the PTQ column.
pub struct PaperRun<'a> {
    /// ImageNet's validation split (`<root>/val/<synset>/*.JPEG`).
    pub val: &'a ImageFolder,
    /// The ResNet-50 checkpoint (torchvision layout).
    pub checkpoint: &'a Path,
    /// Widths of the PTQ column.
    pub bits: &'a [u32],
    pub device: Device,
    pub profile: &'a str,
    pub run_id: &'a str,
}

impl PaperRun<'_> {
    /// What the manifest records of the inputs: the checkpoint's SHA-256 and a digest of the
    /// validation folder's listing (paths, sizes, labels).
    pub fn checksums(&self) -> Result<Vec<(String, String)>, String> {
        pretrained::input_checksums(
            Some(self.checkpoint),
            &[("ImageNet validation listing", self.val)],
        )
    }

    fn row(
        &self,
        source: &str,
        method: &str,
        bits: (&str, &str),
        metric: &str,
        value: f64,
    ) -> ResultRow {
        ResultRow::new(
            Measured {
                paper: crate::PAPER,
                source,
                dataset: "ImageNet",
                model: "ResNet-50",
                method,
                bits,
                metric,
                proxy: "",
            },
            value,
            &RunStamp {
                profile: self.profile,
                seed: 0,
                epochs: 0,
                run_id: self.run_id,
            },
        )
    }

    /// Table 1's FP32 row and weight statistics, then Table 2's PTQ column.
    pub fn rows(&self) -> Result<Vec<ResultRow>, String> {
        let mut config = ModelConfig::new(ModelSpec::ImageNetResNet(50), 0);
        config.input = [3, SIDE, SIDE];
        config.classes = CLASSES;
        let base = pretrained::load(&config, self.checkpoint, &self.device)?;
        let top1 = |net: &quant_train::Net, label: &str| {
            score(
                net,
                self.val,
                BATCH,
                &Phase::FLOAT_EVAL,
                &self.device,
                label,
            )
            .map_err(|e| e.to_string())
        };
        let fp32 = top1(&base, "ResNet-50 FP32")?;
        eprintln!("ResNet-50 FP32 top-1 {fp32:.2}%");
        let mut rows = vec![self.row(
            "DAC2020 Table 1",
            "FP32/baseline",
            ("32", "32"),
            "top1_acc_pct",
            fp32,
        )];
        for (metric, value) in table1_weight_stats(&parameter_tensors(&base)) {
            rows.push(self.row(
                "DAC2020 Table 1",
                "FP32/weight-stats",
                ("32", "32"),
                metric,
                value,
            ));
        }
        for &bits in self.bits {
            for kind in FormatKind::ALL {
                let format = Format::paper(kind, bits).map_err(|e| e.to_string())?;
                let method = format!("{}/PTQ-weights-only", kind.paper_name());
                let acc = top1(&quantize_all_parameters(&base, &format), &method)?;
                eprintln!("ResNet-50 {method} {bits} bits: top-1 {acc:.2}%");
                rows.push(self.row(
                    "DAC2020 Table 2",
                    &method,
                    (&bits.to_string(), "32"),
                    "top1_acc_pct",
                    acc,
                ));
            }
        }
        Ok(rows)
    }
}
