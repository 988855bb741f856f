//! The training recipe of the experiments: the sizes of each profile, the float and QAT training
//! configurations and the quantized copy QAT starts from. The binary runs them; the training
//! benchmark (`bench-train`) times the same models and recipes, so both read them from here.

use burn::prelude::{Device, Module};
use quant_train::data::RawBatch;
use quant_train::{
    AffineQuantizer, LrSchedule, ModelSpec, Net, Optimizer, Phase, QuantizerRef, TrainConfig,
};
use repro::Profile;
use repro::datasets::ImageSet;
use repro::examples::{Examples, View};

/// Sizes of one profile (see `experiments/integer-qat/README.md`).
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Training images (at most; the training file less its validation tail).
    pub train: usize,
    /// The validation tail of the training file: scored after every epoch, used for every
    /// selection, never trained on.
    pub validation: usize,
    /// Test images (the full profile scores the whole 10 000-image test file).
    pub test: usize,
    pub float_epochs: u32,
    pub qat_epochs: u32,
    /// QAT fine-tuning uses the first `qat_train` images of the training slice.
    pub qat_train: usize,
    pub seeds: usize,
    pub e1_depths: Vec<usize>,
    pub e1_resolution: usize,
    /// E2's ResNet (one of `e1_depths`, so it reuses E1's float and 8/8 models).
    pub e2_depth: usize,
    pub e3_model: &'static str,
    pub e3_resolution: usize,
    pub e4_model: &'static str,
    pub e4_resolution: usize,
    pub e4_bits: Vec<u32>,
    /// E5's grid: MobileNetV1 width multipliers x input sides (28, 24, 20, 16 standing for the
    /// companion table's 224, 192, 160, 128), every model trained on the whole training split.
    pub e5_widths: Vec<f64>,
    pub e5_resolutions: Vec<usize>,
    pub latency_runs: usize,
}

impl Sizes {
    /// The sizes of `profile`.
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Smoke => Sizes {
                train: 192,
                validation: 64,
                test: 96,
                float_epochs: 1,
                qat_epochs: 1,
                qat_train: 128,
                seeds: 2,
                e1_depths: vec![8],
                e1_resolution: 14,
                e2_depth: 8,
                e3_model: "cnn:4,8,8",
                e3_resolution: 28,
                e4_model: "mbv1:0.25",
                e4_resolution: 16,
                e4_bits: vec![8, 4],
                e5_widths: vec![0.25],
                e5_resolutions: vec![16],
                latency_runs: 3,
            },
            // The binary refuses the paper profile before planning (`RunArgs::start`).
            Profile::Full | Profile::Paper => Sizes {
                train: 55_000,
                validation: 5_000,
                test: 10_000,
                float_epochs: 10,
                qat_epochs: 4,
                qat_train: 55_000,
                seeds: 3,
                e1_depths: vec![8, 14, 20],
                e1_resolution: 14,
                e2_depth: 14,
                e3_model: "cnn:8,16,32",
                e3_resolution: 28,
                e4_model: "mbv1:0.5",
                e4_resolution: 16,
                e4_bits: vec![8, 7, 6, 5, 4],
                e5_widths: vec![1.0, 0.75, 0.5, 0.25],
                e5_resolutions: vec![28, 24, 20, 16],
                latency_runs: 100,
            },
        }
    }

    /// Every `(architecture, input side)` the experiments of this profile train, in experiment
    /// order without repeats: E1's ResNets, E3's P-CNN, E4's MobileNetV1, E5's width x
    /// resolution grid. The training benchmark (`bench-train`) times exactly these.
    pub fn trained_models(&self) -> Result<Vec<(ModelSpec, usize)>, String> {
        let mut models: Vec<(ModelSpec, usize)> = self
            .e1_depths
            .iter()
            .map(|&d| (ModelSpec::ResNetCifar(d), self.e1_resolution))
            .collect();
        models.push((self.e3_model.parse()?, self.e3_resolution));
        models.push((self.e4_model.parse()?, self.e4_resolution));
        for &alpha in &self.e5_widths {
            for &res in &self.e5_resolutions {
                models.push((ModelSpec::MobileNetV1(alpha), res));
            }
        }
        let mut seen = Vec::new();
        models.retain(|m| {
            let new = !seen.contains(m);
            if new {
                seen.push(m.clone());
            }
            new
        });
        Ok(models)
    }
}

/// Float training from scratch: Adam at 2e-3 with a cosine decay to 0.
pub fn float_config(epochs: u32, seed: u64) -> TrainConfig {
    let mut tc = TrainConfig::adam(epochs, 2e-3, seed);
    tc.schedule = LrSchedule::Cosine;
    tc
}

/// QAT fine-tuning on `images` training images (TF's recipe for fine-tuning: quantization from step
/// 0, small learning rate; BN frozen for the second half so the last steps train the exact
/// inference graph). Momentum SGD (paper App. D.1) with a cosine decay to 0: every update is
/// proportional to its gradient and the last steps barely move the converged weights. A fresh
/// Adam at a constant rate (the first recipe) moved every weight by about the rate at every
/// step whatever its gradient, and left 8-bit QAT up to 2 points below PTQ.
pub fn qat_config(epochs: u32, seed: u64, images: usize) -> TrainConfig {
    let mut tc = TrainConfig::adam(epochs, 5e-3, seed + 1000);
    tc.optimizer = Optimizer::Sgd { momentum: 0.9 };
    tc.schedule = LrSchedule::Cosine;
    let steps = (images / tc.batch_size) as u64 * u64::from(epochs);
    tc.qat.freeze_bn_at = Some(steps / 2);
    tc
}

/// Images of the training set the post-training ranges are calibrated on.
pub const CALIBRATION_IMAGES: usize = 1024;

/// Post-training quantization: [`calibrated_on`] the first [`CALIBRATION_IMAGES`] images of `set`
/// (the in-memory sets are shuffled, so their first images are a sample).
pub fn calibrated_copy(
    float: &Net,
    bits: (u32, u32),
    set: &ImageSet,
    device: &Device,
) -> Result<Net, String> {
    let images: Vec<usize> = (0..set.len().min(CALIBRATION_IMAGES)).collect();
    calibrated_on(float, bits, set, &images, device)
}

/// [`quantized_copy`] with its weight ranges from the weights and its activation ranges from the
/// observers' EMA over the examples `images` of `set` in their evaluation view (batches of 128, as
/// training sees them).
pub fn calibrated_on(
    float: &Net,
    bits: (u32, u32),
    set: &dyn Examples,
    images: &[usize],
    device: &Device,
) -> Result<Net, String> {
    let net = quantized_copy(float, bits)?;
    for chunk in images.chunks(128) {
        let (x, _) = RawBatch::read(set, chunk, |_| View::Eval)?.tensors(device);
        net.forward(x, &Phase::CALIBRATE);
    }
    Ok(net)
}

/// A copy of `float` with the paper's affine quantizers: `w`-bit weights, `a`-bit activations at
/// every output stage. `valid()` deep-copies the running states, so observers of the copy start
/// fresh.
pub fn quantized_copy(float: &Net, (w, a): (u32, u32)) -> Result<Net, String> {
    let mut net = float.valid();
    net.set_quantizers(
        Some(QuantizerRef::new(
            AffineQuantizer::weights(w).map_err(|e| e.to_string())?,
        )),
        Some(QuantizerRef::new(
            AffineQuantizer::activations(a).map_err(|e| e.to_string())?,
        )),
    );
    Ok(net)
}
