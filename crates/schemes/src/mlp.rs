//! The MLP rows: 784-256-256-10 on Fashion-MNIST (AdaptivFloat's Seq2Seq stand-in), one float model
//! per seed, then every scheme that applies to a chain of fully connected layers.
//!
//! * **float32** — the float model (Jacob's float recipe of `integer-qat`: Adam 2e-3, cosine decay).
//! * **Jacob int8 PTQ / QAT** — uint8 activations, int8 weights, fixed-point requantization
//!   (double rounding as gemmlowp), run by quant-core's integer engine, which also counts the
//!   operations; PTQ calibrates on 1024 training images, QAT fine-tunes with `integer-qat`'s recipe.
//! * **Uniform / AdaptivFloat weights at 8, 6, 4 bits** — every parameter tensor quantized on its
//!   own (AdaptivFloat's reference PTQ, `e = 3` as in its paper), activations in float: a
//!   simulation, with no integer kernel here, so no latency and no operation counts.
//! * **PocketNN** — the same layer widths trained from scratch in integer arithmetic only (direct
//!   feedback alignment, pocket tanh, the reference's recipe: batch 20, `lrInv` 1000 doubling every
//!   10 epochs), int32 weights and activations.
//!
//! Rusci et al.'s mixed 8/4/2-bit scheme and F8Net's fixed point are convolutional graphs in this
//! workspace and are not rows of the MLP.

use std::path::PathBuf;
use std::sync::Arc;

use adaptivfloat::fakequant::quantize_all_parameters;
use burn::prelude::*;
use integer_qat::experiments::latency_ms;
use integer_qat::recipe::{float_config, qat_config, quantized_copy};
use pocketnn::activation::PocketActivation;
use pocketnn::network::{ForwardState, Network};
use pocketnn::rng::{Pcg32, RunRng};
use pocketnn::train::{Split, TrainConfig as PocketConfig};
use quant_core::fixedpoint::RoundingMode;
use quant_core::formats::{Format, FormatKind};
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
use crate::fixed_point::{self, DenseLayer, fixed_point_mlp};
use crate::measure::{op_count_metrics, peak_activation_bytes, storage_bytes};

/// Layer widths, input first.
pub const WIDTHS: [usize; 4] = [784, 256, 256, 10];
/// The `model` column.
pub const MODEL: &str = "MLP 784-256-256-10";
/// The `source` column.
pub const SOURCE: &str = "cross-scheme table (same float model per seed)";
/// Bits of the weight-only formats.
pub const FORMAT_BITS: [u32; 3] = [8, 6, 4];
/// The schemes (the `method` column), in the table's order.
pub const METHODS: [&str; 7] = [
    FLOAT,
    JACOB_PTQ,
    JACOB_QAT,
    F8NET,
    UNIFORM,
    ADAPTIVFLOAT,
    POCKETNN,
];
const FLOAT: &str = "float32";
const JACOB_PTQ: &str = "Jacob int8 PTQ";
const JACOB_QAT: &str = "Jacob int8 QAT";
const F8NET: &str = "F8Net fixed point (PTQ)";
const UNIFORM: &str = "Uniform weights (PTQ)";
const ADAPTIVFLOAT: &str = "AdaptivFloat weights (PTQ)";
const POCKETNN: &str = "PocketNN (integer-only training)";

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
                latency_runs: 100,
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
    pub checkpoints: PathBuf,
}

/// What one scheme measured; `None` where it has no such measurement (no integer kernel to time
/// or count).
struct Outcome {
    method: &'static str,
    bits: (u32, u32),
    top1: f64,
    model_bytes: usize,
    peak_activation_bytes: usize,
    latency_ms: Option<f64>,
    counts: Option<OpCounts>,
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

impl Bench<'_> {
    /// A row of `method` at `bits` for `seed`, with metric and value left for the caller.
    fn template(&self, method: &str, (w, a): (u32, u32), seed: u64, epochs: u32) -> ResultRow {
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
                model: MODEL,
                method,
                bits: (&w.to_string(), &a.to_string()),
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

    fn rows(&self, o: &Outcome, seed: u64, epochs: u32) -> Vec<ResultRow> {
        let template = self.template(o.method, o.bits, seed, epochs);
        o.metrics()
            .into_iter()
            .map(|(metric, value)| ResultRow {
                metric: metric.into(),
                value,
                ..template.clone()
            })
            .collect()
    }

    fn options(&self, name: &str, seed: u64) -> RunOptions {
        RunOptions {
            checkpoint: Some(
                self.checkpoints
                    .join(format!("{}-mlp-{name}-s{seed}", self.profile)),
            ),
            label: format!("{name} seed {seed}"),
            validation: Some(Arc::clone(&self.sets.validation)),
        }
    }

    /// Batch-1 latency (ms, median, one thread) of `f`.
    fn latency(&self, f: impl FnMut() -> Result<(), String> + Send) -> Result<f64, String> {
        latency_ms(1, self.sizes.latency_runs, f)
    }

    /// Every row of one seed, and the validation curves of its Burn trainings (the float model and
    /// QAT, whose epochs continue the float model's).
    pub fn seed_rows(&self, seed: u64) -> Result<(Vec<ResultRow>, Vec<ResultRow>), String> {
        let (float, float_report) = self.float_model(seed)?;
        let (jacob, qat_report) = self.jacob_outcomes(&float, seed)?;
        let epochs = self.sizes.float_epochs;
        let curves = [
            (FLOAT, (32, 32), float_report),
            (JACOB_QAT, (8, 8), qat_report),
        ]
        .into_iter()
        .flat_map(|(method, bits, report)| {
            report.curve_rows(&self.template(method, bits, seed, epochs))
        })
        .collect();
        let mut outcomes = vec![self.float_outcome(&float)?];
        outcomes.extend(jacob);
        outcomes.push(self.fixed_point_outcome(&float)?);
        outcomes.extend(self.format_outcomes(&float)?);
        let mut rows: Vec<ResultRow> = outcomes
            .iter()
            .flat_map(|o| self.rows(o, seed, self.sizes.float_epochs))
            .collect();
        rows.extend(self.rows(&self.pocket_outcome(seed)?, seed, self.sizes.pocket_epochs));
        Ok((rows, curves))
    }

    fn float_model(&self, seed: u64) -> Result<(Net, TrainReport), String> {
        let spec: ModelSpec = "mlp:256,256".parse()?;
        let net = ModelConfig::new(spec, seed).build(&self.device);
        let config = float_config(self.sizes.float_epochs, seed);
        train(
            net,
            &self.sets.train,
            &config,
            &self.options("float", seed),
            &self.device,
        )
        .map_err(|e| e.to_string())
    }

    fn float_outcome(&self, float: &Net) -> Result<Outcome, String> {
        let test = &self.sets.test;
        let (x, _) = batch(test, &[0], &self.device);
        let latency = self.latency(|| {
            let y = float.forward(x.clone(), &Phase::FLOAT_EVAL);
            y.into_data()
                .try_into_vec_as::<f32>()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })?;
        Ok(Outcome {
            method: FLOAT,
            bits: (32, 32),
            top1: evaluate(float, test, &Phase::FLOAT_EVAL, &self.device),
            model_bytes: float_size_bytes(float),
            peak_activation_bytes: peak_activation_bytes(&WIDTHS, 32),
            latency_ms: Some(latency),
            counts: None,
        })
    }

    /// Jacob et al.'s PTQ and QAT at 8/8, measured on the integer engine.
    fn jacob_outcomes(
        &self,
        float: &Net,
        seed: u64,
    ) -> Result<([Outcome; 2], TrainReport), String> {
        let train_set = &self.sets.train;
        let ptq = quantized_copy(float, (8, 8))?;
        let calibration: Vec<usize> = (0..train_set.len().min(1024)).collect();
        for chunk in calibration.chunks(128) {
            let (x, _) = batch(train_set, chunk, &self.device);
            ptq.forward(x, &Phase::CALIBRATE);
        }
        let config = qat_config(self.sizes.qat_epochs, seed, train_set.len());
        let (qat, report) = train(
            quantized_copy(float, (8, 8))?,
            train_set,
            &config,
            &self.options("jacob-qat8", seed),
            &self.device,
        )
        .map_err(|e| e.to_string())?;
        let outcomes = [
            self.integer_outcome(JACOB_PTQ, &ptq)?,
            self.integer_outcome(JACOB_QAT, &qat)?,
        ];
        Ok((outcomes, report))
    }

    fn integer_outcome(&self, method: &'static str, net: &Net) -> Result<Outcome, String> {
        let test = &self.sets.test;
        let shape = [1, test.rows, test.cols];
        let int = export(net, shape, RoundingMode::Double).map_err(|e| e.to_string())?;
        let agreement =
            check_agreement(net, &int, test, &self.device).map_err(|e| e.to_string())?;
        let image = test.image(0);
        let (_, counts) = int.model.run_counted(image, 1).map_err(|e| e.to_string())?;
        let latency = self.latency(|| int.run(image, 1).map(|_| ()).map_err(|e| e.to_string()))?;
        Ok(Outcome {
            method,
            bits: (8, 8),
            top1: agreement.engine_top1,
            model_bytes: int.size_bytes(),
            peak_activation_bytes: peak_activation_bytes(&WIDTHS, 8),
            latency_ms: Some(latency),
            counts: Some(counts),
        })
    }

    /// F8Net's fixed point after training, on the fixed8 engine ([`crate::fixed_point`]).
    fn fixed_point_outcome(&self, float: &Net) -> Result<Outcome, String> {
        let host = |t: Tensor<1>| t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
        let layers: Vec<DenseLayer> = float
            .layers()
            .iter()
            .map(|l| {
                let [outputs, inputs, ..] = l.weight.dims();
                DenseLayer {
                    weight: host(l.weight.val().reshape([outputs * inputs])),
                    bias: host(l.folded_bias()),
                    inputs,
                    outputs,
                }
            })
            .collect();
        let train_set = &self.sets.train;
        let calibration: Vec<&[u8]> = (0..train_set.len().min(1024))
            .map(|i| train_set.image(i))
            .collect();
        let test = &self.sets.test;
        let model = fixed_point_mlp(&layers, &calibration, [1, test.rows, test.cols])?;
        let hits: Vec<bool> = (0..test.len())
            .into_par_iter()
            .map(|i| {
                let (class, _) = model.predict(test.image(i)).map_err(|e| e.to_string())?;
                Ok(class == usize::from(test.labels[i]))
            })
            .collect::<Result<_, String>>()?;
        let top1 = 100.0 * hits.iter().filter(|&&h| h).count() as f64 / hits.len() as f64;
        let image = test.image(0);
        let (_, counts) = model.predict(image).map_err(|e| e.to_string())?;
        let latency =
            self.latency(|| model.predict(image).map(|_| ()).map_err(|e| e.to_string()))?;
        Ok(Outcome {
            method: F8NET,
            bits: (8, 8),
            top1,
            model_bytes: fixed_point::model_bytes(&model),
            peak_activation_bytes: fixed_point::peak_activation_bytes(&WIDTHS),
            latency_ms: Some(latency),
            counts: Some(counts),
        })
    }

    /// Weight-only Uniform and AdaptivFloat at [`FORMAT_BITS`] (float activations).
    fn format_outcomes(&self, float: &Net) -> Result<Vec<Outcome>, String> {
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
            for bits in FORMAT_BITS {
                let format = Format::new(kind, bits, exponent).map_err(|e| e.to_string())?;
                let net = quantize_all_parameters(float, &format);
                let top1 = evaluate(&net, &self.sets.test, &Phase::FLOAT_EVAL, &self.device);
                // One 32-bit per-tensor parameter (scale or exponent bias) beside each tensor.
                let bytes: usize = tensors.iter().map(|&n| storage_bytes(n, bits, 4)).sum();
                outcomes.push(Outcome {
                    method,
                    bits: (bits, 32),
                    top1,
                    model_bytes: bytes,
                    peak_activation_bytes: peak_activation_bytes(&WIDTHS, 32),
                    latency_ms: None,
                    counts: None,
                });
            }
        }
        Ok(outcomes)
    }

    /// PocketNN: the same widths trained in integer arithmetic only, scored after its last epoch.
    fn pocket_outcome(&self, seed: u64) -> Result<Outcome, String> {
        let mut net =
            Network::new(&WIDTHS, PocketActivation::PocketTanh).map_err(|e| e.to_string())?;
        let train_split = Split::new(&self.sets.train, &net, "training set")?;
        let test_split = Split::new(&self.sets.test, &net, "test set")?;
        let config = PocketConfig {
            epochs: self.sizes.pocket_epochs,
            ..PocketConfig::default()
        };
        // The stream PocketNN's own runs use ("PKNN"), so seed s here is its PCG seed s.
        let mut rng = RunRng::Pcg(Pcg32::new(seed, 0x504B_4E4E));
        let history = pocketnn::train::train(
            &mut net,
            &train_split,
            &test_split,
            &config,
            &[],
            &mut rng,
            |_| {},
        )
        .map_err(|e| e.to_string())?;
        let last = history.last().ok_or("PocketNN ran no epoch")?;
        let top1 = 100.0 * f64::from(last.test_correct) / test_split.len() as f64;
        let params: usize = net
            .layers()
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum();
        let input: Vec<i32> = self
            .sets
            .test
            .image(0)
            .iter()
            .map(|&v| i32::from(v))
            .collect();
        let latency = self.latency(|| {
            let mut state = ForwardState::default();
            net.forward(&input, 1, &mut state)
                .map_err(|e| e.to_string())
        })?;
        Ok(Outcome {
            method: POCKETNN,
            bits: (32, 32),
            top1,
            model_bytes: storage_bytes(params, 32, 0),
            peak_activation_bytes: peak_activation_bytes(&WIDTHS, 32),
            latency_ms: Some(latency),
            counts: None,
        })
    }
}
