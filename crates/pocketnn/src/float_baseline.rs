//! The float back-propagation baseline: the same MLP widths trained in float32 with Burn, through
//! the workspace's shared model zoo and training loop (`quant-train`).
//!
//! The paper does not say how its "equivalent DNNs trained with BP in floating point" were trained
//! (dossier §4). Recipe chosen here: hidden ReLU (the zoo's MLP activation), softmax cross-entropy,
//! Adam with learning rate 1e-3 and default betas decayed to 0 on a cosine (the float recipe of the
//! workspace's other proxies: the last epoch is a converged model, not a point of a noisy plateau),
//! batch 64, inputs `pixel / 255`, as many epochs as the long PocketNN run of the data set, and the
//! last epoch's test accuracy.

use quant_train::{
    Device, LrSchedule, ModelConfig, ModelSpec, Phase, RunOptions, TrainConfig, evaluate,
    train::train,
};
use repro::datasets::Dataset;

/// Adam's learning rate.
pub const LEARNING_RATE: f64 = 1e-3;

/// What one float baseline run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatResult {
    /// Test accuracy after the last epoch, in percent.
    pub test_accuracy: f64,
    /// Training accuracy of the last epoch (running, as the loop reports it), in percent.
    pub train_accuracy: f64,
    pub seconds: f64,
}

/// Trains the MLP `widths` (input, hidden…, classes) on `data` for `epochs` and tests it.
pub fn run(
    data: &Dataset,
    widths: &[usize],
    epochs: u32,
    seed: u64,
    device: &Device,
    label: &str,
) -> Result<FloatResult, String> {
    let [input, hidden @ .., classes] = widths else {
        return Err(format!(
            "float baseline widths {widths:?} need an input, hidden layers and classes"
        ));
    };
    if *input != data.train.pixels() {
        return Err(format!(
            "images have {} pixels but the float MLP takes {input}: the shapes do not chain",
            data.train.pixels()
        ));
    }
    let mut config = ModelConfig::new(ModelSpec::Mlp(hidden.to_vec()), seed);
    config.input = [1, data.train.rows, data.train.cols];
    config.classes = *classes;
    let model = config.build(device);
    let mut train_config = TrainConfig::adam(epochs, LEARNING_RATE, seed);
    train_config.schedule = LrSchedule::Cosine;
    let options = RunOptions {
        checkpoint: None,
        label: label.to_string(),
        ..Default::default()
    };
    let (model, report) =
        train(model, &data.train, &train_config, &options, device).map_err(|e| e.to_string())?;
    Ok(FloatResult {
        test_accuracy: evaluate(&model, &data.test, &Phase::EVAL, device),
        train_accuracy: report.final_train_acc,
        seconds: report.seconds,
    })
}
