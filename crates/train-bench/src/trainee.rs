//! One model in one mode, ready to train: built by its paper's own code (model builders, QAT
//! conversions, recipes) and trained through that paper's own training function, so a timed step
//! is exactly a step of the reproduction and no training code is written twice.
//!
//! Every recipe runs at batch [`BATCH`]: the papers' proxies use 64 or 128, and the comparison with
//! PyTorch needs one size. QAT recipes whose batch norm freezes part-way are timed before the
//! freeze (batch statistics), the phase every QAT run starts in.

use adaptivfloat::accuracy as af;
use adaptivfloat::fakequant::FormatQuantizer;
use adaptivfloat::transformer::{self, RowTransformer};
use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use mixed_precision_mcu::assign::{AssignOptions, assign};
use mixed_precision_mcu::memory::Granularity;
use quant_core::formats::{Format, FormatKind};
use quant_train::{ModelConfig, Net, RunOptions, TrainConfig};
use repro::datasets::ImageSet;

use crate::catalog::{Arch, BenchModel, Mode, Paper};

/// Images per training step.
pub const BATCH: usize = 128;
/// Seed of every initialisation and shuffle.
const SEED: u64 = 0;
/// A training set this large puts every batch-norm freeze of a QAT recipe beyond the timed steps.
const UNFROZEN_IMAGES: usize = 1 << 40;

/// A model that trains a given number of steps through its paper's training function.
pub trait Trainee {
    /// Trainable parameters: elements of the parameters the optimizer updates.
    fn params(&self) -> usize;
    /// `steps` optimizer steps on `data`, which holds exactly `steps` batches of [`BATCH`].
    fn train(&mut self, data: &ImageSet, steps: usize) -> Result<(), String>;
}

/// Builds `model` in `mode` on the flex `device`; `calibration` feeds the QAT conversions that
/// calibrate ranges first (AdaptivFloat's activation ranges, Rusci's PACT clips).
pub fn trainee(
    model: &BenchModel,
    mode: Mode,
    calibration: &ImageSet,
    device: &Device,
) -> Result<Box<dyn Trainee>, String> {
    let unsupported = || {
        Err(format!(
            "{} has no {} mode in {}",
            model.key,
            mode.name(),
            model.paper.name()
        ))
    };
    match (&model.arch, model.paper) {
        (Arch::Zoo(spec), paper) => {
            let mut config = ModelConfig::new(spec.clone(), SEED);
            config.input = [1, model.side, model.side];
            let net = config.build(device);
            let Some((net, config)) = zoo_recipe(paper, mode, net, calibration, device)? else {
                return unsupported();
            };
            Ok(Box::new(ZooTrainee::new(net, config, device)))
        }
        (Arch::TinyMbV1(mobilenet), Paper::MixedPrecisionMcu) => {
            let layers = mobilenet.layers();
            let net = mixed_precision_mcu::qat::build_net(&layers, SEED, device);
            let plan = mixed_precision_mcu::experiments::QatPlan::full(SEED);
            let (net, config) = match mode {
                Mode::Fp => (net, plan.float_config(SEED)),
                Mode::RusciQat => {
                    let budget = mixed_precision_mcu::tables::proxy_budget(plan.base_channels);
                    let g = Granularity::PerChannel;
                    let mix = assign(&layers, budget, AssignOptions::official(g))
                        .map_err(|e| e.to_string())?;
                    let qat = mixed_precision_mcu::qat::qat_net(
                        &net,
                        calibration,
                        &mix.bits,
                        (g, &mix.folds),
                        device,
                    );
                    (qat, plan.qat_config(0, UNFROZEN_IMAGES, SEED))
                }
                _ => return unsupported(),
            };
            Ok(Box::new(ZooTrainee::new(net, config, device)))
        }
        (Arch::F8NetProxy(arch, width), Paper::F8Net) => {
            use f8net::experiments::{FP_LR, QAT_LR, fp_pact};
            use f8net::model::{F8Options, Method};
            let (method, lr) = match mode {
                Mode::Fp => (
                    Method::FullPrecision {
                        pact: fp_pact(*arch),
                    },
                    FP_LR,
                ),
                Mode::F8Net => (Method::F8Net(F8Options::DEFAULT), QAT_LR),
                Mode::Int8Jacob => (Method::Int8Jacob, QAT_LR),
                _ => return unsupported(),
            };
            // The bench trains on MNIST and Fashion-MNIST, whose images and classes are the same.
            let grey = f8net::graph::Input::of(repro::datasets::DatasetName::FashionMnist);
            let graph = f8net::graph::Graph::proxy(*arch, *width, grey);
            let model = f8net::model::Network::new(graph, method, SEED, &device.clone().autodiff());
            Ok(Box::new(F8NetTrainee { model, lr }))
        }
        (Arch::RowTransformer, Paper::AdaptivFloat) => {
            let model = RowTransformer::new(SEED, device);
            let quantizer = match mode {
                Mode::Fp => None,
                Mode::AdaptivFloatQar => {
                    let ranges = transformer::calibrate(&model, calibration, device);
                    Some((adaptivfloat8()?, ranges))
                }
                _ => return unsupported(),
            };
            Ok(Box::new(TransformerTrainee {
                model,
                quantizer,
                device: device.clone(),
            }))
        }
        _ => unsupported(),
    }
}

/// The starting model and recipe of a zoo architecture in `paper`'s `mode`; `None` when the
/// paper has no such mode.
fn zoo_recipe(
    paper: Paper,
    mode: Mode,
    net: Net,
    calibration: &ImageSet,
    device: &Device,
) -> Result<Option<(Net, TrainConfig)>, String> {
    use integer_qat::recipe;
    Ok(Some(match (paper, mode) {
        (Paper::IntegerQat, Mode::Fp) => (net, recipe::float_config(1, SEED)),
        (Paper::IntegerQat, Mode::JacobQat) => (
            recipe::quantized_copy(&net, (8, 8))?,
            recipe::qat_config(1, SEED, UNFROZEN_IMAGES),
        ),
        (Paper::PocketNn, Mode::Fp) => {
            let rate = pocketnn::float_baseline::LEARNING_RATE;
            (net, TrainConfig::adam(1, rate, SEED))
        }
        (Paper::AdaptivFloat, Mode::Fp) => (net, af::float_config(1, SEED)),
        (Paper::AdaptivFloat, Mode::AdaptivFloatQar) => {
            let q = adaptivfloat8()?;
            let qar = af::qar_net(&net, &q, true, calibration, device);
            (qar, af::qar_config(1, SEED))
        }
        _ => return Ok(None),
    }))
}

/// The paper's 8-bit AdaptivFloat (Table 3's weights-and-activations retraining).
fn adaptivfloat8() -> Result<FormatQuantizer, String> {
    let format = Format::paper(FormatKind::AdaptivFloat, 8).map_err(|e| e.to_string())?;
    Ok(FormatQuantizer::new(format))
}

/// Counts the elements of every parameter that requires a gradient once the module trains
/// (batch-norm running statistics and range observers are module state, not parameters).
fn trainable_params<M: Module>(module: &M) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.val().is_require_grad() {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut count = Count(0);
    module.clone().train().visit(&mut count);
    count.0
}

/// A quant-train [`Net`] trained by `quant_train::train::train` (integer-qat, PocketNN's float
/// baseline, AdaptivFloat's MLP and CNN, the mixed-precision TinyMbV1).
struct ZooTrainee {
    net: Net,
    config: TrainConfig,
    device: Device,
}

impl ZooTrainee {
    fn new(net: Net, mut config: TrainConfig, device: &Device) -> Self {
        config.batch_size = BATCH;
        config.epochs = 1;
        ZooTrainee {
            net,
            config,
            device: device.clone(),
        }
    }
}

impl Trainee for ZooTrainee {
    fn params(&self) -> usize {
        trainable_params(&self.net)
    }

    fn train(&mut self, data: &ImageSet, _steps: usize) -> Result<(), String> {
        let options = RunOptions::default();
        let (net, _) =
            quant_train::train::train(self.net.clone(), data, &self.config, &options, &self.device)
                .map_err(|e| e.to_string())?;
        self.net = net;
        Ok(())
    }
}

/// An F8Net proxy trained by `f8net::train::train` with the stage recipe of its experiments.
struct F8NetTrainee {
    model: f8net::model::Network,
    lr: f64,
}

impl Trainee for F8NetTrainee {
    fn params(&self) -> usize {
        trainable_params(&self.model.params)
    }

    fn train(&mut self, data: &ImageSet, steps: usize) -> Result<(), String> {
        let recipe = f8net::experiments::sgd_recipe(steps, self.lr);
        let bar = indicatif::ProgressBar::hidden();
        let run = f8net::train::StageRun {
            data,
            validation: None,
            seed: SEED,
            checkpoint: None,
        };
        f8net::train::train(&mut self.model, recipe, &run, &bar)?;
        Ok(())
    }
}

/// AdaptivFloat's row Transformer trained by `adaptivfloat::transformer::train`; with a quantizer,
/// the QAR of weights and activations (ranges calibrated once, as the experiment does).
struct TransformerTrainee {
    model: RowTransformer,
    quantizer: Option<(FormatQuantizer, Vec<f64>)>,
    device: Device,
}

impl Trainee for TransformerTrainee {
    fn params(&self) -> usize {
        trainable_params(&self.model)
    }

    fn train(&mut self, data: &ImageSet, _steps: usize) -> Result<(), String> {
        let spec = match &self.quantizer {
            None => af::transformer_float_spec(1, SEED, String::new()),
            Some((q, ranges)) => {
                af::transformer_qar_spec(q, Some((q, ranges)), 1, SEED, String::new())
            }
        };
        self.model = transformer::train(self.model.clone(), data, &spec, &self.device)?.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::catalog;
    use crate::timing::synthetic;

    #[test]
    fn every_model_builds_in_every_mode_of_its_paper() {
        let device = Device::flex();
        for model in catalog().unwrap() {
            let calibration = synthetic(model.side, 16, 1);
            let fp = trainee(&model, Mode::Fp, &calibration, &device)
                .unwrap()
                .params();
            for &mode in model.paper.modes() {
                let t = trainee(&model, mode, &calibration, &device).unwrap();
                match (&model.arch, mode) {
                    // Rusci's QAT adds one learned PACT clip per layer but the classifier.
                    (Arch::TinyMbV1(m), Mode::RusciQat) => {
                        assert_eq!(t.params(), fp + m.layers().len() - 1, "{}", model.key)
                    }
                    _ => assert_eq!(t.params(), fp, "{} {}", model.key, mode.name()),
                }
            }
            if let Arch::F8NetProxy(arch, width) = model.arch {
                let grey = f8net::graph::Input::of(repro::datasets::DatasetName::FashionMnist);
                assert_eq!(fp, f8net::graph::Graph::proxy(arch, width, grey).params());
            }
        }
    }

    #[test]
    fn parameters_are_the_trainable_ones() {
        let device = Device::flex();
        let all = catalog().unwrap();
        let mlp = all.iter().find(|m| m.key == "mlp:100-50@28").unwrap();
        let t = trainee(mlp, Mode::Fp, &synthetic(28, 4, 1), &device).unwrap();
        assert_eq!(t.params(), 784 * 100 + 100 + 100 * 50 + 50 + 50 * 10 + 10);
        // Batch-norm running statistics and observers are state, not parameters: a conv with BN
        // counts its weight, gamma and beta only.
        let cnn = all.iter().find(|m| m.key == "cnn:16-32-64@28").unwrap();
        let t = trainee(cnn, Mode::Fp, &synthetic(28, 4, 1), &device).unwrap();
        let convs = (16 * 9 + 2 * 16) + (32 * 16 * 9 + 2 * 32) + (64 * 32 * 9 + 2 * 64);
        assert_eq!(t.params(), convs + 64 * 10 + 10);
    }

    #[test]
    fn a_mode_of_another_paper_is_refused() {
        let all = catalog().unwrap();
        let mlp = all.iter().find(|m| m.key == "mlp:100-50@28").unwrap();
        let e = trainee(mlp, Mode::F8Net, &synthetic(28, 4, 1), &Device::flex())
            .err()
            .unwrap();
        assert_eq!(e, "mlp:100-50@28 has no f8net mode in pocketnn");
    }
}
