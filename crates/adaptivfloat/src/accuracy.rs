//! Accuracy tables on MNIST-scale stand-ins (dossier §9.2): Table 1 (FP32 and weight ranges),
//! Table 2 (weight-only PTQ and QAR), Table 3 (weights and activations after QAR), the
//! function-preserving range stress of §9.1 P1f, and the per-layer RMSE of the trained weights
//! (P1d, the Fig. 4 analogue).
//!
//! Each stand-in takes the place of one of the paper's three models, and its rows reuse that
//! model's key strings so `repro compare` puts them next to the published cells:
//!
//! | paper model (metric) | stand-in | reported value |
//! | --- | --- | --- |
//! | Transformer WMT'17 (BLEU) | row-token Transformer, MNIST | test accuracy % |
//! | Seq2Seq LibriSpeech (WER) | MLP 784-256-256-10, Fashion-MNIST | test error % (lower is better, like WER) |
//! | ResNet-50 ImageNet (top-1) | conv-BN CNN 16-32 with global pooling, Fashion-MNIST | test accuracy % |

use std::path::PathBuf;
use std::sync::Arc;

use burn::module::Param;
use burn::prelude::*;
use quant_core::formats::{Format, FormatKind};
use quant_train::rng::Rng;
use quant_train::{
    LrSchedule, ModelConfig, ModelSpec, Net, Phase, QuantizerRef, RunOptions, TrainConfig,
    TrainReport, evaluate,
};
use repro::datasets::{DatasetName, ImageSet};
use repro::results::{Measured, ResultRow, RunStamp};

use crate::fakequant::{FormatQuantizer, parameter_tensors, quantize_all_parameters};
use crate::rmse::{self, RmseRow, Stamp};
use crate::transformer::{self, Ctx, RowTransformer, TrainSpec};

/// The three stand-in models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Transformer,
    Mlp,
    Cnn,
}

impl Proxy {
    /// The paper's model this one stands in for (exact `published.csv` spelling).
    pub fn paper_model(self) -> &'static str {
        match self {
            Proxy::Transformer => "Transformer",
            Proxy::Mlp => "Seq2Seq (4-layer LSTM enc + 1-layer LSTM dec + attention)",
            Proxy::Cnn => "ResNet-50",
        }
    }

    pub fn metric(self) -> &'static str {
        match self {
            Proxy::Transformer => "BLEU",
            Proxy::Mlp => "WER",
            Proxy::Cnn => "top1_acc_pct",
        }
    }

    pub fn dataset(self) -> DatasetName {
        match self {
            Proxy::Transformer => DatasetName::Mnist,
            Proxy::Mlp | Proxy::Cnn => DatasetName::FashionMnist,
        }
    }

    /// The `proxy` column: what actually ran, and what the value means.
    pub fn proxy(self) -> String {
        let data = self.dataset().paper_name();
        match self {
            Proxy::Transformer => format!(
                "{data} row-token Transformer (2 pre-LN blocks, d=64, 4 heads) for Transformer WMT17; value = test accuracy %"
            ),
            Proxy::Mlp => format!(
                "{data} MLP 784-256-256-10 for Seq2Seq LibriSpeech; value = test error % (WER analogue)"
            ),
            Proxy::Cnn => format!(
                "{data} CNN conv3x3-BN 16-32-64 + global pool for ResNet-50 ImageNet; value = test top-1 %"
            ),
        }
    }

    /// Test accuracy (percent) expressed in this row's metric.
    pub fn value(self, accuracy: f64) -> f64 {
        match self {
            Proxy::Mlp => 100.0 - accuracy,
            Proxy::Transformer | Proxy::Cnn => accuracy,
        }
    }

    /// The zoo architecture of the MLP and CNN stand-ins (`None` for the Transformer, which is
    /// [`RowTransformer`]).
    pub fn net_spec(self) -> Option<ModelSpec> {
        match self {
            Proxy::Transformer => None,
            Proxy::Mlp => Some(ModelSpec::Mlp(vec![256, 256])),
            Proxy::Cnn => Some(ModelSpec::Cnn(vec![16, 32, 64])),
        }
    }

    /// Short name for file names and progress labels.
    pub fn short(self) -> &'static str {
        match self {
            Proxy::Transformer => "transformer",
            Proxy::Mlp => "mlp",
            Proxy::Cnn => "cnn",
        }
    }
}

/// How much work a profile does.
#[derive(Debug, Clone)]
pub struct AccuracyPlan {
    pub profile: String,
    pub seed: u64,
    /// Float training epochs.
    pub epochs: u32,
    /// Training images (after the validation and calibration images are held out).
    pub train_images: usize,
    /// The tail of the training file held out for validation: the learning curves, never trained on.
    pub validation_images: usize,
    /// Test images evaluated.
    pub test_images: usize,
    /// Held-out training images for activation calibration.
    pub calib_images: usize,
    /// The first images of the training set that retraining runs on (batch 128, Adam lr 1e-4).
    pub qar_images: usize,
    /// Passes of one retraining run over its images.
    pub qar_epochs: u32,
    /// Bit widths of weight-only PTQ.
    pub ptq_bits: Vec<u32>,
    /// Bit widths of QAR (weights only, and weights + activations).
    pub qar_bits: Vec<u32>,
    /// Bit widths of the range-stress PTQ.
    pub stress_bits: Vec<u32>,
    /// Range-stress factors (powers of two, so the float function is bit-identical).
    pub stress_alphas: Vec<f32>,
    /// Fraction of hidden units rescaled by the range stress.
    pub stress_fraction: f64,
    /// Where the float model checkpoint goes (resumable).
    pub checkpoint_dir: Option<PathBuf>,
}

const BATCH: usize = 128;
const LR: f64 = 1e-3;
const QAR_LR: f64 = 1e-4;

/// Rows of one model's run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows mirroring Tables 1–3 (`accuracy.csv`).
    pub table_rows: Vec<ResultRow>,
    /// Learning curves of the float training and every retraining (`curves.csv`).
    pub curve_rows: Vec<ResultRow>,
    /// Range-stress rows (`range_stress.csv`; no published counterpart).
    pub stress_rows: Vec<ResultRow>,
    /// Per-layer RMSE of the trained weights (`format_rmse.csv`, study P1d).
    pub rmse_rows: Vec<RmseRow>,
}

/// A trained stand-in: either a `quant-train` [`Net`] or the row Transformer.
#[derive(Debug, Clone)]
enum Model {
    Net(Net),
    Transformer(Box<RowTransformer>),
}

impl Model {
    fn accuracy_float(&self, test: &ImageSet, device: &Device) -> f64 {
        match self {
            Model::Net(n) => evaluate(n, test, &Phase::FLOAT_EVAL, device),
            Model::Transformer(t) => transformer::evaluate(t, test, &Ctx::default(), device),
        }
    }

    fn quantized(&self, format: &Format) -> Model {
        match self {
            Model::Net(n) => Model::Net(quantize_all_parameters(n, format)),
            Model::Transformer(t) => {
                Model::Transformer(Box::new(t.quantize_all_parameters(format)))
            }
        }
    }

    fn parameters(&self) -> Vec<(String, Vec<f64>)> {
        match self {
            Model::Net(n) => parameter_tensors(n),
            Model::Transformer(t) => t.parameter_tensors(),
        }
    }

    /// Widens hidden-unit ranges without changing the float function (P1f).
    fn range_stressed(&self, alpha: f32, fraction: f64, seed: u64) -> Model {
        let pick = |rng: &mut Rng, width: usize| -> Vec<usize> {
            let mut all: Vec<usize> = (0..width).collect();
            rng.shuffle(&mut all);
            all.truncate(((width as f64 * fraction).ceil() as usize).max(1));
            all
        };
        let mut rng = Rng::new(seed ^ 0x5EED);
        match self {
            Model::Transformer(t) => {
                let units = pick(&mut rng, t.ffn_width());
                Model::Transformer(Box::new(t.range_stressed(&units, alpha)))
            }
            Model::Net(n) => {
                let mut net = n.clone();
                let hidden = net.layers().len() - 1;
                let picks: Vec<Vec<usize>> = net
                    .layers()
                    .iter()
                    .take(hidden)
                    .map(|l| pick(&mut rng, l.out_channels()))
                    .collect();
                net.map_layers(|i, layer| {
                    // Outputs of hidden layer i scale by alpha, inputs of layer i+1 by 1/alpha.
                    if i < hidden {
                        layer.weight = scale_axis(&layer.weight, 0, &picks[i], alpha);
                        layer.bias = layer.bias.as_ref().map(|b| scale_vec(b, &picks[i], alpha));
                    }
                    if i > 0 {
                        layer.weight = scale_axis(&layer.weight, 1, &picks[i - 1], 1.0 / alpha);
                    }
                });
                Model::Net(net)
            }
        }
    }
}

/// Multiplies the given indices along axis 0 (outputs) or 1 (inputs) of a `[out, in, kh, kw]` weight.
fn scale_axis(p: &Param<Tensor<4>>, axis: usize, idx: &[usize], factor: f32) -> Param<Tensor<4>> {
    let t = p.val();
    let dims = t.dims();
    let [o, i, kh, kw] = dims;
    let mut v = t
        .clone()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    let inner = kh * kw;
    for out in 0..o {
        for inp in 0..i {
            let chosen = if axis == 0 {
                idx.contains(&out)
            } else {
                idx.contains(&inp)
            };
            if chosen {
                let start = (out * i + inp) * inner;
                v[start..start + inner]
                    .iter_mut()
                    .for_each(|x| *x *= factor);
            }
        }
    }
    Param::from_tensor(Tensor::from_data(TensorData::new(v, dims), &t.device()))
}

fn scale_vec(p: &Param<Tensor<1>>, idx: &[usize], factor: f32) -> Param<Tensor<1>> {
    transformer::scale_entries(p, idx, factor)
}

/// Float training of a zoo stand-in: Adam at [`LR`], batch [`BATCH`], decaying to 0 so the float
/// model has plateaued before retraining (paper §4.2: QAR starts "from the plateaued FP32 model").
pub fn float_config(epochs: u32, seed: u64) -> TrainConfig {
    let mut config = TrainConfig::adam(epochs, LR, seed);
    config.batch_size = BATCH;
    config.schedule = LrSchedule::Cosine;
    config
}

/// Quantization-aware retraining of a zoo stand-in: `epochs` passes at the constant [`QAR_LR`].
pub fn qar_config(epochs: u32, seed: u64) -> TrainConfig {
    let mut config = TrainConfig::adam(epochs, QAR_LR, seed + 1);
    config.batch_size = BATCH;
    config
}

/// [`float_config`] for the Transformer.
pub fn transformer_float_spec(epochs: u32, seed: u64, label: String) -> TrainSpec<'static> {
    TrainSpec {
        epochs,
        batch_size: BATCH,
        lr: LR,
        cosine: true,
        seed,
        weights: None,
        acts: None,
        label,
        validation: None,
        checkpoint: None,
    }
}

/// [`qar_config`] for the Transformer: weights always quantized with `q`, activations when `acts`
/// gives the per-site ranges.
pub fn transformer_qar_spec<'a>(
    q: &'a FormatQuantizer,
    acts: Option<(&'a FormatQuantizer, &'a [f64])>,
    epochs: u32,
    seed: u64,
    label: String,
) -> TrainSpec<'a> {
    TrainSpec {
        epochs,
        batch_size: BATCH,
        lr: QAR_LR,
        cosine: false,
        seed: seed + 1,
        weights: Some(q),
        acts,
        label,
        validation: None,
        checkpoint: None,
    }
}

/// The QAR model of a zoo stand-in: `q` on every parameter tensor (weights, biases, batch norm's
/// γ and β, each on its own: the quantization of weight-only PTQ, [`quantize_all_parameters`])
/// and, `with_acts`, on every output stage but the logits (no layer's input), with activation
/// ranges calibrated on `calib`.
pub fn qar_net(
    base: &Net,
    q: &FormatQuantizer,
    with_acts: bool,
    calib: &ImageSet,
    device: &Device,
) -> Net {
    let mut net = base.clone();
    let handle = QuantizerRef::new(q.clone());
    net.set_quantizers(None, with_acts.then_some(handle.clone()));
    net.map_layers(|_, layer| layer.param_quantizer = Some(handle.clone()));
    let stages = count_stages(&mut net);
    net.map_output_stages(|i, s| {
        if i + 1 == stages {
            s.quantizer = None;
        }
    });
    if with_acts {
        let idx: Vec<usize> = (0..calib.len()).collect();
        for chunk in idx.chunks(250) {
            let (x, _) = quant_train::data::batch(calib, chunk, device);
            let _ = net.forward(x, &Phase::CALIBRATE);
        }
    }
    net
}

/// Everything one stand-in needs: data, plan, device and the row stamp.
pub struct Experiment<'a> {
    pub proxy: Proxy,
    pub plan: &'a AccuracyPlan,
    pub train: ImageSet,
    /// Scored after every epoch of every training run (the learning curves).
    pub validation: Arc<ImageSet>,
    pub calib: ImageSet,
    pub test: ImageSet,
    pub device: Device,
    pub run_id: String,
}

impl Experiment<'_> {
    fn row(
        &self,
        source: &str,
        method: &str,
        (w_bits, a_bits): (&str, &str),
        metric: &str,
        value: f64,
        proxy: String,
    ) -> ResultRow {
        ResultRow::new(
            Measured {
                paper: crate::PAPER,
                source,
                dataset: self.proxy.dataset().paper_name(),
                model: self.proxy.paper_model(),
                method,
                bits: (w_bits, a_bits),
                metric,
                proxy: &proxy,
            },
            value,
            &RunStamp {
                profile: &self.plan.profile,
                seed: self.plan.seed,
                epochs: self.plan.epochs,
                run_id: &self.run_id,
            },
        )
    }

    fn accuracy_row(
        &self,
        source: &str,
        method: &str,
        w_bits: u32,
        a_bits: u32,
        accuracy: f64,
    ) -> ResultRow {
        self.row(
            source,
            method,
            (&w_bits.to_string(), &a_bits.to_string()),
            self.proxy.metric(),
            self.proxy.value(accuracy),
            self.proxy.proxy(),
        )
    }

    /// The learning curve of one training run as `curves.csv` rows.
    fn curve_rows(
        &self,
        source: &str,
        method: &str,
        (w_bits, a_bits): (u32, u32),
        report: &TrainReport,
    ) -> Vec<ResultRow> {
        let bits = (w_bits.to_string(), a_bits.to_string());
        let template = self.row(
            source,
            method,
            (&bits.0, &bits.1),
            "",
            0.0,
            self.proxy.proxy(),
        );
        report.curve_rows(&template)
    }

    /// The checkpoint prefix of this unit's float training (`run` `None`) or of one of its
    /// retrainings, under the plan's checkpoint folder: every training of a unit resumes, so an
    /// interrupted unit redoes at most one epoch and its evaluations. `None` without a folder.
    fn checkpoint(&self, run: Option<&str>) -> Option<PathBuf> {
        let unit = format!(
            "{}-{}-s{}",
            self.proxy.short(),
            self.plan.profile,
            self.plan.seed
        );
        let name = match run {
            None => unit,
            Some(run) => quant_train::checkpoint::file_name(&format!("{unit}-{run}")),
        };
        self.plan.checkpoint_dir.as_ref().map(|d| d.join(name))
    }

    fn train_float(&self) -> Result<(Model, TrainReport), String> {
        let label = format!("{} fp32", self.proxy.short());
        match self.proxy {
            Proxy::Transformer => {
                let spec = TrainSpec {
                    validation: Some(&self.validation),
                    checkpoint: self.checkpoint(None),
                    ..transformer_float_spec(self.plan.epochs, self.plan.seed, label)
                };
                let model = RowTransformer::new(self.plan.seed, &self.device);
                let (trained, report) =
                    transformer::train(model, &self.train, &spec, &self.device)?;
                Ok((Model::Transformer(Box::new(trained)), report))
            }
            Proxy::Mlp | Proxy::Cnn => {
                let spec = self
                    .proxy
                    .net_spec()
                    .ok_or("the stand-in is no zoo model")?;
                let net = ModelConfig::new(spec, self.plan.seed).build(&self.device);
                let config = float_config(self.plan.epochs, self.plan.seed);
                let options = RunOptions {
                    checkpoint: self.checkpoint(None),
                    label,
                    validation: Some(Arc::clone(&self.validation)),
                };
                let (net, report) =
                    quant_train::train::train(net, &self.train, &config, &options, &self.device)
                        .map_err(|e| e.to_string())?;
                Ok((Model::Net(net), report))
            }
        }
    }

    /// Quantization-aware retraining from `base`: weights always fake-quantized with `format`,
    /// activations too when `with_acts` (ranges from calibration on held-out training images).
    /// Returns the test accuracy and the run's report.
    fn qar(
        &self,
        base: &Model,
        format: &Format,
        with_acts: bool,
    ) -> Result<(f64, TrainReport), String> {
        let qar_set = self.train.clone().truncated(self.plan.qar_images);
        let q = FormatQuantizer::new(format.clone());
        let label = format!(
            "{} QAR {}{}",
            self.proxy.short(),
            format.label(),
            if with_acts { " W+A" } else { "" }
        );
        let run = format!(
            "qar-{}{}",
            format.label(),
            if with_acts { "-wa" } else { "" }
        );
        match base {
            Model::Transformer(t) => {
                let ranges =
                    with_acts.then(|| transformer::calibrate(t, &self.calib, &self.device));
                let acts = ranges.as_deref().map(|r| (&q, r));
                let spec = TrainSpec {
                    validation: Some(&self.validation),
                    checkpoint: self.checkpoint(Some(&run)),
                    ..transformer_qar_spec(&q, acts, self.plan.qar_epochs, self.plan.seed, label)
                };
                let (trained, report) =
                    transformer::train((**t).clone(), &qar_set, &spec, &self.device)?;
                let ctx = Ctx {
                    weights: Some(&q),
                    acts,
                    observe: None,
                };
                let acc = transformer::evaluate(&trained, &self.test, &ctx, &self.device);
                Ok((acc, report))
            }
            Model::Net(n) => {
                let net = qar_net(n, &q, with_acts, &self.calib, &self.device);
                let config = qar_config(self.plan.qar_epochs, self.plan.seed);
                let options = RunOptions {
                    checkpoint: self.checkpoint(Some(&run)),
                    label,
                    validation: Some(Arc::clone(&self.validation)),
                };
                let (net, report) =
                    quant_train::train::train(net, &qar_set, &config, &options, &self.device)
                        .map_err(|e| e.to_string())?;
                Ok((
                    evaluate(&net, &self.test, &Phase::EVAL, &self.device),
                    report,
                ))
            }
        }
    }

    /// Runs every table for this stand-in.
    pub fn run(&self) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        let (base, report) = self.train_float()?;
        let fp32 = base.accuracy_float(&self.test, &self.device);
        eprintln!("{}: FP32 test accuracy {fp32:.2}%", self.proxy.short());
        out.table_rows
            .push(self.accuracy_row("DAC2020 Table 1", "FP32/baseline", 32, 32, fp32));
        out.curve_rows.extend(self.curve_rows(
            "DAC2020 Table 1",
            "FP32/baseline",
            (32, 32),
            &report,
        ));
        self.weight_stats(&base, &mut out);

        // Table 2, PTQ column: every format at every width.
        for &bits in &self.plan.ptq_bits {
            for kind in FormatKind::ALL {
                let format = Format::paper(kind, bits).map_err(|e| e.to_string())?;
                let acc = base
                    .quantized(&format)
                    .accuracy_float(&self.test, &self.device);
                let method = format!("{}/PTQ-weights-only", kind.paper_name());
                out.table_rows
                    .push(self.accuracy_row("DAC2020 Table 2", &method, bits, 32, acc));
            }
        }
        // Table 2, QAR column, and Table 3 (W+A after QAR).
        for &bits in &self.plan.qar_bits {
            for kind in FormatKind::ALL {
                let format = Format::paper(kind, bits).map_err(|e| e.to_string())?;
                for (with_acts, source, method, a_bits) in [
                    (false, "DAC2020 Table 2", "QAR-weights-only", 32),
                    (true, "DAC2020 Table 3", "QAR-weights+activations", bits),
                ] {
                    let (acc, report) = self.qar(&base, &format, with_acts)?;
                    let method = format!("{}/{method}", kind.paper_name());
                    out.table_rows
                        .push(self.accuracy_row(source, &method, bits, a_bits, acc));
                    out.curve_rows.extend(self.curve_rows(
                        source,
                        &method,
                        (bits, a_bits),
                        &report,
                    ));
                }
            }
        }
        if self.proxy != Proxy::Cnn {
            self.range_stress(&base, fp32, &mut out)?;
        }
        Ok(out)
    }

    /// Table 1 analogue (parameter count, weight range) and P1d per-layer RMSE of the weights.
    fn weight_stats(&self, base: &Model, out: &mut Outcome) {
        let params = base.parameters();
        for (metric, value) in table1_weight_stats(&params) {
            out.table_rows.push(self.row(
                "DAC2020 Table 1",
                "FP32/weight-stats",
                ("32", "32"),
                metric,
                value,
                self.proxy.proxy(),
            ));
        }
        let layers: Vec<Vec<f64>> = params.into_iter().map(|(_, v)| v).collect();
        let stamp = Stamp {
            profile: self.plan.profile.clone(),
            seed: self.plan.seed,
            run_id: self.run_id.clone(),
        };
        let family = format!(
            "{} weights ({})",
            self.proxy.paper_model(),
            self.proxy.proxy()
        );
        for bits in [4, 6, 8] {
            let configs = rmse::configurations(bits, false);
            let per_layer = rmse::per_layer_rmse(&configs, &layers);
            out.rmse_rows.extend(rmse::rmse_rows(
                "P1d trained weights",
                &family,
                &configs,
                &per_layer,
                &stamp,
            ));
        }
    }

    /// P1f: PTQ of the range-stressed (function-identical) model for every format and width.
    fn range_stress(&self, base: &Model, fp32: f64, out: &mut Outcome) -> Result<(), String> {
        for &alpha in &self.plan.stress_alphas {
            let stressed = base.range_stressed(alpha, self.plan.stress_fraction, self.plan.seed);
            let proxy = format!(
                "{}; range stress: {:.0}% of hidden units x{alpha} in, x1/{alpha} out",
                self.proxy.proxy(),
                100.0 * self.plan.stress_fraction
            );
            let float = stressed.accuracy_float(&self.test, &self.device);
            if float != fp32 {
                return Err(format!(
                    "range stress changed the float accuracy ({fp32} -> {float}): it must preserve the function"
                ));
            }
            let source = "dossier 9.1 P1f range stress";
            out.stress_rows.push(self.row(
                source,
                "FP32/baseline",
                ("32", "32"),
                self.proxy.metric(),
                self.proxy.value(float),
                proxy.clone(),
            ));
            for &bits in &self.plan.stress_bits {
                for kind in FormatKind::ALL {
                    let format = Format::paper(kind, bits).map_err(|e| e.to_string())?;
                    let acc = stressed
                        .quantized(&format)
                        .accuracy_float(&self.test, &self.device);
                    let method = format!("{}/PTQ-weights-only", kind.paper_name());
                    out.stress_rows.push(self.row(
                        source,
                        &method,
                        (&bits.to_string(), "32"),
                        self.proxy.metric(),
                        self.proxy.value(acc),
                        proxy.clone(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Table 1's weight statistics of a model's parameter tensors: the count in millions and the
/// smallest and largest value over all of them.
pub fn table1_weight_stats(params: &[(String, Vec<f64>)]) -> [(&'static str, f64); 3] {
    let all = params.iter().flat_map(|(_, v)| v.iter().copied());
    let (n, lo, hi) = all.fold(
        (0usize, f64::INFINITY, f64::NEG_INFINITY),
        |(n, a, b), x| (n + 1, a.min(x), b.max(x)),
    );
    [
        ("num_params_millions", n as f64 / 1e6),
        ("weight_min", lo),
        ("weight_max", hi),
    ]
}

fn count_stages(net: &mut Net) -> usize {
    let mut n = 0;
    net.map_output_stages(|_, _| n += 1);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_range_stress_is_bit_identical_in_float() {
        let device = Device::flex();
        let net = ModelConfig::new(ModelSpec::Mlp(vec![32, 16]), 4).build(&device);
        let stressed = Model::Net(net.clone()).range_stressed(64.0, 0.1, 4);
        let Model::Net(stressed) = stressed else {
            unreachable!()
        };
        let mut rng = Rng::new(1);
        let v: Vec<f32> = (0..5 * 784).map(|_| rng.uniform() as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [5, 1, 28, 28]), &device);
        let run = |n: &Net| {
            n.forward(x.clone(), &Phase::FLOAT_EVAL)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap()
        };
        assert_eq!(run(&net), run(&stressed));
        let widest = |n: &Net| {
            parameter_tensors(n)
                .into_iter()
                .map(|(_, v)| v.iter().fold(0.0f64, |a, x| a.max(x.abs())))
                .fold(0.0, f64::max)
        };
        assert!(widest(&stressed) > 8.0 * widest(&net));
    }
}
