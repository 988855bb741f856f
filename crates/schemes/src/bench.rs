//! What the rows of every model share: the data sets, the row builder, and the schemes that apply to
//! any quant-train model (float, Jacob's int8 PTQ and QAT on the integer engine, weight-only Uniform
//! and AdaptivFloat), measured the same way for each.

use std::path::PathBuf;
use std::sync::Arc;

use adaptivfloat::fakequant::quantize_all_parameters;
use burn::prelude::*;
use integer_qat::experiments::latency_ms;
use integer_qat::recipe::{
    CALIBRATION_IMAGES, calibrated_copy, float_config, qat_config, quantized_copy,
};
use quant_core::fixedpoint::RoundingMode;
use quant_core::formats::{Format, FormatKind};
use quant_core::kernels::Backend;
use quant_core::ops::OpCounts;
use quant_train::data::batch;
use quant_train::export::{check_agreement, export, float_size_bytes};
use quant_train::train::train;
use quant_train::{ModelConfig, ModelSpec, Net, Phase, RunOptions, TrainReport, evaluate};
use rayon::prelude::*;
use repro::Profile;
use repro::datasets::ImageSet;
use repro::manifest::Run;
use repro::results::{Measured, ResultRow, RunStamp};

use crate::TABLE_DIR;
use crate::fixed_point::{self, fixed_point_model};
use crate::float_chain;
use crate::measure::{self, op_count_metrics, storage_bytes};

/// The `source` column.
pub const SOURCE: &str = "cross-scheme table (same float model per seed)";
/// Bits of the weight-only formats.
pub const FORMAT_BITS: [u32; 3] = [8, 6, 4];
pub const FLOAT: &str = "float32";
pub const JACOB_PTQ: &str = "Jacob int8 PTQ";
pub const JACOB_QAT: &str = "Jacob int8 QAT";
pub const F8NET: &str = "F8Net fixed point (PTQ)";
pub const UNIFORM: &str = "Uniform weights (PTQ)";
pub const ADAPTIVFLOAT: &str = "AdaptivFloat weights (PTQ)";
/// Rusci et al.'s variants carry this prefix before the variant's own name.
pub const RUSCI: &str = "Rusci";
pub const POCKETNN: &str = "PocketNN (integer-only training)";
/// The schemes (the `method` column, Rusci's by prefix), in the tables' order.
pub const METHODS: [&str; 8] = [
    FLOAT,
    JACOB_PTQ,
    JACOB_QAT,
    F8NET,
    UNIFORM,
    ADAPTIVFLOAT,
    RUSCI,
    POCKETNN,
];

/// Sizes of one profile.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    pub float_epochs: u32,
    pub qat_epochs: u32,
    pub pocket_epochs: u32,
    pub seeds: u64,
    pub latency_runs: usize,
}

impl Sizes {
    /// The smoke profile's slices or the full data (the whole test file).
    pub fn of(profile: Profile) -> Sizes {
        match profile {
            Profile::Smoke => Sizes {
                train: 600,
                validation: 100,
                test: 200,
                float_epochs: 1,
                qat_epochs: 1,
                pocket_epochs: 1,
                seeds: 1,
                latency_runs: 3,
            },
            Profile::Full | Profile::Paper => Sizes {
                train: 55_000,
                validation: 5_000,
                test: 10_000,
                float_epochs: 15,
                qat_epochs: 2,
                pocket_epochs: 20,
                seeds: 3,
                latency_runs: 1000,
            },
        }
    }
}

/// The three disjoint sets: training, its validation tail (scored per epoch, never trained on) and
/// the test file.
pub struct Sets {
    pub train: ImageSet,
    pub validation: Arc<ImageSet>,
    pub test: ImageSet,
}

/// What the rows of one run share.
pub struct Bench<'a> {
    pub sizes: Sizes,
    pub sets: Sets,
    pub device: Device,
    pub run: &'a Run,
    pub profile: &'static str,
    pub dataset: String,
    /// Where the trainings keep their checkpoints (none: they start over every run).
    pub checkpoints: Option<PathBuf>,
    /// The `model` column.
    pub model: String,
    /// Elements of each layer's input and output: the peak activation memory's terms.
    pub layer_io: Vec<(usize, usize)>,
}

/// What one scheme measured; `None` where it has no such measurement (no integer kernel to time
/// or count).
pub struct Outcome {
    pub method: String,
    /// Weight and activation bits as the `w_bits` / `a_bits` columns spell them.
    pub bits: (String, String),
    pub top1: f64,
    pub model_bytes: usize,
    pub peak_activation_bytes: usize,
    pub latency_ms: Option<f64>,
    pub counts: Option<OpCounts>,
}

impl Outcome {
    /// `(metric, value)` of every measurement.
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            ("top1_acc_pct", self.top1),
            ("model_bytes", self.model_bytes as f64),
            ("peak_activation_bytes", self.peak_activation_bytes as f64),
        ];
        out.extend(self.latency_ms.map(|ms| ("latency_ms_batch1_1thread", ms)));
        out.extend(self.counts.iter().flat_map(op_count_metrics));
        out
    }
}

/// `(w, a)` as the bit columns spell them.
pub fn bits(w: u32, a: u32) -> (String, String) {
    (w.to_string(), a.to_string())
}

impl Bench<'_> {
    /// A row of `method` at `bits` for `seed`, with metric and value left for the caller.
    pub fn template(
        &self,
        method: &str,
        (w, a): (&str, &str),
        seed: u64,
        epochs: u32,
    ) -> ResultRow {
        let proxy = format!(
            "{} ({} train / {} validation / {} test images); every scheme from the same float model of its seed (PocketNN trains its own, integer-only)",
            self.dataset,
            self.sets.train.len(),
            self.sets.validation.len(),
            self.sets.test.len()
        );
        ResultRow::new(
            Measured {
                paper: TABLE_DIR,
                source: SOURCE,
                dataset: &self.dataset,
                model: &self.model,
                method,
                bits: (w, a),
                metric: "",
                proxy: &proxy,
            },
            0.0,
            &RunStamp {
                profile: self.profile,
                seed,
                epochs,
                run_id: &self.run.run_id,
            },
        )
    }

    /// The rows of every outcome in `outcomes`.
    pub fn rows_of(&self, outcomes: &[Outcome], seed: u64, epochs: u32) -> Vec<ResultRow> {
        outcomes
            .iter()
            .flat_map(|o| self.rows(o, seed, epochs))
            .collect()
    }

    pub fn rows(&self, o: &Outcome, seed: u64, epochs: u32) -> Vec<ResultRow> {
        let template = self.template(&o.method, (&o.bits.0, &o.bits.1), seed, epochs);
        o.metrics()
            .into_iter()
            .map(|(metric, value)| ResultRow {
                metric: metric.into(),
                value,
                ..template.clone()
            })
            .collect()
    }

    /// Peak activation bytes at `bits` per value: the largest input plus output of one layer.
    pub fn peak_activation_bytes(&self, bits: u32) -> usize {
        measure::peak_activation_bytes(&self.layer_io, bits)
    }

    /// The model's name as checkpoint names spell it.
    fn tag(&self) -> String {
        self.model
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_lowercase()
    }

    pub fn options(&self, name: &str, seed: u64) -> RunOptions {
        RunOptions {
            checkpoint: self
                .checkpoints
                .as_ref()
                .map(|dir| dir.join(format!("{}-{name}-s{seed}", self.profile))),
            label: format!("{name} seed {seed}"),
            validation: Some(Arc::clone(&self.sets.validation)),
        }
    }

    /// The float model of `spec` for this bench's images, trained with `integer-qat`'s float recipe
    /// (Adam 2e-3, cosine decay) for [`Sizes::float_epochs`]; `name` names its checkpoint.
    pub fn float_model(
        &self,
        spec: &ModelSpec,
        name: &str,
        seed: u64,
    ) -> Result<(Net, TrainReport), String> {
        let train_set = &self.sets.train;
        let mut model = ModelConfig::new(spec.clone(), seed);
        model.input = [train_set.channels, train_set.rows, train_set.cols];
        let config = float_config(self.sizes.float_epochs, seed);
        train(
            model.build(&self.device),
            train_set,
            &config,
            &self.options(name, seed),
            &self.device,
        )
        .map_err(|e| e.to_string())
    }

    /// Batch-1 latency (ms, median, one thread) of `f`, whose output is dropped and whose error
    /// ends the measurement.
    pub fn latency<T, E: std::fmt::Display>(
        &self,
        mut f: impl FnMut() -> Result<T, E> + Send,
    ) -> Result<f64, String> {
        latency_ms(1, self.sizes.latency_runs, || {
            f().map(|_| ()).map_err(|e| e.to_string())
        })
    }

    /// What every model gets from its float model `float` (trained for `epochs`, reported in
    /// `float_report`): float, Jacob's PTQ and QAT, F8Net's fixed point, Uniform and AdaptivFloat
    /// weights; and the validation curves of the float training and of Jacob's QAT.
    pub fn common_outcomes(
        &self,
        float: &Net,
        float_report: &TrainReport,
        seed: u64,
        epochs: u32,
    ) -> Result<(Vec<Outcome>, Vec<ResultRow>), String> {
        let (jacob, qat_report) = self.jacob_outcomes(float, seed)?;
        let curves = [
            (FLOAT, ("32", "32"), float_report),
            (JACOB_QAT, ("8", "8"), &qat_report),
        ]
        .into_iter()
        .flat_map(|(method, bits, report)| {
            report.curve_rows(&self.template(method, bits, seed, epochs))
        })
        .collect();
        let mut outcomes = vec![self.float_outcome(float)?];
        outcomes.extend(jacob);
        outcomes.push(self.fixed_point_outcome(float)?);
        outcomes.extend(self.format_outcomes(float)?);
        Ok((outcomes, curves))
    }

    pub fn float_outcome(&self, float: &Net) -> Result<Outcome, String> {
        let test = &self.sets.test;
        let (x, _) = batch(test, &[0], &self.device);
        let latency = self.latency(|| {
            let y = float.forward(x.clone(), &Phase::FLOAT_EVAL);
            y.into_data().try_into_vec_as::<f32>()
        })?;
        Ok(Outcome {
            method: FLOAT.into(),
            bits: bits(32, 32),
            top1: evaluate(float, test, &Phase::FLOAT_EVAL, &self.device),
            model_bytes: float_size_bytes(float),
            peak_activation_bytes: self.peak_activation_bytes(32),
            latency_ms: Some(latency),
            counts: None,
        })
    }

    /// Jacob et al.'s PTQ and QAT at 8/8, measured on the integer engine.
    pub fn jacob_outcomes(
        &self,
        float: &Net,
        seed: u64,
    ) -> Result<([Outcome; 2], TrainReport), String> {
        let train_set = &self.sets.train;
        let ptq = calibrated_copy(float, (8, 8), train_set, &self.device)?;
        let config = qat_config(self.sizes.qat_epochs, seed, train_set.len());
        let (qat, report) = train(
            quantized_copy(float, (8, 8))?,
            train_set,
            &config,
            &self.options(&format!("{}-jacob-qat8", self.tag()), seed),
            &self.device,
        )
        .map_err(|e| e.to_string())?;
        let outcomes = [
            self.integer_outcome(JACOB_PTQ, &ptq)?,
            self.integer_outcome(JACOB_QAT, &qat)?,
        ];
        Ok((outcomes, report))
    }

    fn integer_outcome(&self, method: &str, net: &Net) -> Result<Outcome, String> {
        let test = &self.sets.test;
        let shape = [1, test.rows, test.cols];
        let int = export(net, shape, RoundingMode::Double).map_err(|e| e.to_string())?;
        let agreement =
            check_agreement(net, &int, test, &self.device).map_err(|e| e.to_string())?;
        let image = test.image(0);
        let (_, counts) = int.model.run_counted(image, 1).map_err(|e| e.to_string())?;
        let latency = self.latency(|| int.run(image, 1))?;
        Ok(Outcome {
            method: method.into(),
            bits: bits(8, 8),
            top1: agreement.engine_top1,
            model_bytes: int.size_bytes(),
            peak_activation_bytes: self.peak_activation_bytes(8),
            latency_ms: Some(latency),
            counts: Some(counts),
        })
    }

    /// F8Net's fixed point after training, on the fixed8 engine ([`crate::fixed_point`]), with
    /// ReLU formats chosen on the first [`CALIBRATION_IMAGES`] training images.
    pub fn fixed_point_outcome(&self, float: &Net) -> Result<Outcome, String> {
        let train_set = &self.sets.train;
        let calibration: Vec<&[u8]> = (0..train_set.len().min(CALIBRATION_IMAGES))
            .map(|i| train_set.image(i))
            .collect();
        let test = &self.sets.test;
        let model = fixed_point_model(
            &float_chain::steps(float)?,
            &calibration,
            [test.channels, test.rows, test.cols],
        )?;
        // The int8 kernels of this CPU run it (the scalar engine is their tested reference).
        let prepared = model
            .prepare(Backend::detect())
            .map_err(|e| e.to_string())?;
        // Every image's prediction with the operations it took (the same for every image).
        let runs: Vec<(bool, OpCounts)> = (0..test.len())
            .into_par_iter()
            .map(|i| {
                let (class, counts) = prepared.predict(test.image(i)).map_err(|e| e.to_string())?;
                Ok((class == usize::from(test.labels[i]), counts))
            })
            .collect::<Result<_, String>>()?;
        let top1 = 100.0 * runs.iter().filter(|r| r.0).count() as f64 / runs.len() as f64;
        let counts = runs.first().map(|r| r.1).unwrap_or_default();
        let image = test.image(0);
        let latency = self.latency(|| prepared.predict(image))?;
        Ok(Outcome {
            method: F8NET.into(),
            bits: bits(8, 8),
            top1,
            model_bytes: fixed_point::model_bytes(&model),
            peak_activation_bytes: model.peak_activation_bytes().map_err(|e| e.to_string())?,
            latency_ms: Some(latency),
            counts: Some(counts),
        })
    }

    /// Weight-only Uniform and AdaptivFloat at [`FORMAT_BITS`] (float activations).
    pub fn format_outcomes(&self, float: &Net) -> Result<Vec<Outcome>, String> {
        let tensors: Vec<usize> = float
            .layers()
            .iter()
            .flat_map(|l| [l.weight.dims().iter().product::<usize>(), l.out_channels()])
            .collect();
        let mut outcomes = Vec::new();
        for (kind, exponent, method) in [
            (FormatKind::Uniform, None, UNIFORM),
            (FormatKind::AdaptivFloat, Some(3), ADAPTIVFLOAT),
        ] {
            for width in FORMAT_BITS {
                let format = Format::new(kind, width, exponent).map_err(|e| e.to_string())?;
                let net = quantize_all_parameters(float, &format);
                let top1 = evaluate(&net, &self.sets.test, &Phase::FLOAT_EVAL, &self.device);
                // One 32-bit per-tensor parameter (scale or exponent bias) beside each tensor.
                let bytes: usize = tensors.iter().map(|&n| storage_bytes(n, width, 4)).sum();
                outcomes.push(Outcome {
                    method: method.into(),
                    bits: bits(width, 32),
                    top1,
                    model_bytes: bytes,
                    peak_activation_bytes: self.peak_activation_bytes(32),
                    latency_ms: None,
                    counts: None,
                });
            }
        }
        Ok(outcomes)
    }
}
