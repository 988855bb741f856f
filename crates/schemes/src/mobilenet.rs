//! The MobileNetV1 rows: Rusci et al.'s proxy TinyMbV1 (MobileNetV1's 13 depthwise-separable blocks
//! after an 8-channel stem, ReLU6, batch norm) at width 0.75 and 28x28 pixels on Fashion-MNIST, a
//! configuration of the MCU reproduction's E1/E2 whose 8-bit model does not fit the scaled memory
//! budget (so Rusci's assignment mixes 8, 4 and 2 bits), one float model per seed trained as that
//! reproduction trains it (so its checkpoints serve both).
//!
//! * **float32**, **Jacob int8 PTQ / QAT**, **Uniform / AdaptivFloat weights** — as on the MLP
//!   ([`crate::bench`]), from that float model.
//! * **F8Net fixed point** — after training, on the fixed8 engine ([`crate::fixed_point`]): ReLU6 is
//!   PACT with its clip at 6, so the activation codes are uniform on `[0, 6]` and every
//!   requantization a shift; one weight FL per layer from the folded weights' standard deviation.
//! * **Rusci** — the mixed-precision variants of the MCU reproduction's E1/E2 for this configuration
//!   under two memory budgets scaled to the proxy ([`crate::rusci`]), each QAT-trained from the same
//!   float model.

use std::path::PathBuf;

use mixed_precision_mcu::chain::Chain;
use mixed_precision_mcu::experiments::QatPlan;
use repro::Profile;
use repro::datasets::Dataset;
use repro::results::ResultRow;

use crate::bench::Bench;

/// `(resolution, width)` of the configuration.
pub fn config(profile: Profile) -> (usize, f64) {
    match profile {
        Profile::Smoke => (16, 0.25),
        Profile::Full | Profile::Paper => (28, 0.75),
    }
}

/// The MCU reproduction's training plan of `profile` for this configuration only, checkpointing
/// into `checkpoints` (the MCU reproduction's folder, so that the two share their models).
pub fn plan(profile: Profile, seed: u64, checkpoints: Option<PathBuf>) -> QatPlan {
    let mut plan = match profile {
        Profile::Smoke => QatPlan::smoke(seed),
        Profile::Full | Profile::Paper => QatPlan::full(seed),
    };
    plan.configs = vec![config(profile)];
    plan.checkpoint_dir = checkpoints;
    plan
}

/// The proxy's layers.
pub fn chain(plan: &QatPlan) -> Chain {
    let (resolution, width) = plan.configs[0];
    Chain::from(&plan.model(resolution, width))
}

/// The `model` column.
pub fn model_name(plan: &QatPlan) -> String {
    format!(
        "TinyMbV1-b{} {} (MobileNetV1 proxy)",
        plan.base_channels,
        chain(plan).name
    )
}

impl Bench<'_> {
    /// Every row of one seed with `plan` (from [`plan`]), and the validation curves of the float model
    /// and Jacob's QAT. `data` is the whole data set, which the MCU reproduction splits and resizes
    /// itself, as `self.sets` holds it.
    pub fn mobilenet_rows(
        &self,
        data: &Dataset,
        plan: &QatPlan,
        seed: u64,
    ) -> Result<(Vec<ResultRow>, Vec<ResultRow>), String> {
        let (rusci, float) = self.rusci_outcomes(data, &chain(plan), plan, seed)?;
        let epochs = plan.float_epochs;
        let (mut outcomes, curves) =
            self.common_outcomes(&float.net, &float.report, seed, epochs)?;
        outcomes.extend(rusci);
        let rows = self.rows_of(&outcomes, seed, epochs);
        Ok((rows, curves))
    }
}
