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
//!   (`mixed_precision_mcu::experiments::run_e1_e2`) under two memory budgets scaled to the proxy
//!   ([`BUDGETS`]): uniform 8-bit per-layer weights where they fit, MixPL+FB, MixPL+ICN and MixPC+ICN,
//!   each QAT-trained from the same float model and measured on the sub-byte integer graph, whose
//!   operation counts it records;
//!   model and peak activation bytes from Rusci's memory model (weights at their bits plus the
//!   requantization parameters; the largest input plus output of one layer at their bits).

use std::path::PathBuf;

use mixed_precision_mcu::experiments::{FloatCache, QatPlan, run_e1_e2};
use mixed_precision_mcu::memory::Budget;
use mixed_precision_mcu::mobilenet::MobileNetV1;
use mixed_precision_mcu::tables::scaled_proxy_budget;
use quant_core::kernels::Backend;
use repro::Profile;
use repro::datasets::Dataset;
use repro::results::ResultRow;

use crate::bench::{Bench, Outcome, RUSCI};

/// The devices whose memory Rusci's assignment fills, each scaled to the proxy as the MCU reproduction
/// scales the paper's (§10.1): the paper's STM32H743 (2 MB FLASH) and MCUNet's STM32F765 (1 MB FLASH,
/// the same RAM), under which the assignment cuts more weights to 4 and 2 bits.
pub const BUDGETS: [(&str, Budget); 2] = [
    ("STM32H743", Budget::STM32H7),
    ("STM32F765", Budget::STM32F765),
];

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
pub fn model(plan: &QatPlan) -> MobileNetV1 {
    let (resolution, width) = plan.configs[0];
    MobileNetV1::tiny(resolution, width, plan.base_channels)
}

/// The `model` column.
pub fn model_name(plan: &QatPlan) -> String {
    let m = model(plan);
    format!(
        "TinyMbV1-b{} {} (MobileNetV1 proxy)",
        plan.base_channels,
        m.config_name()
    )
}

/// Inputs and outputs of the proxy's layers (the bench's `layer_io`).
pub fn layer_io(plan: &QatPlan) -> Vec<(usize, usize)> {
    model(plan)
        .layers()
        .iter()
        .map(|l| (l.in_elems as usize, l.out_elems as usize))
        .collect()
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
        let mut cache = FloatCache::new();
        let mut runs = Vec::new();
        for (device_name, device_budget) in BUDGETS {
            let budget = scaled_proxy_budget(device_budget, plan.base_channels);
            let mcu = run_e1_e2(data, plan, budget, seed, &mut cache, &self.device)?;
            runs.push((device_name, mcu));
        }
        let (_, first) = runs.first().ok_or("no budget")?;
        let (_, float) = first.floats.first().ok_or("the MCU run trained no model")?;
        let epochs = plan.float_epochs;
        let (mut outcomes, curves) =
            self.common_outcomes(&float.net, &float.report, seed, epochs)?;
        for (device_name, mcu) in &runs {
            for o in &mcu.outcomes {
                let folding = o.validation.0;
                // The deployed graph on this CPU's int8 kernels (the packed kernels' logits).
                let net = o.nets.get(folding).ok_or("no integer graph")?;
                let prepared = net.prepare(Backend::detect()).map_err(|e| e.to_string())?;
                let image = self.sets.test.image(0);
                let latency = self.latency(|| prepared.predict(image))?;
                outcomes.push(Outcome {
                    method: format!("{RUSCI} {} ({device_name} budget)", o.variant),
                    bits: (o.w_bits.clone(), o.a_bits.clone()),
                    top1: *o.integer.get(folding).ok_or("no integer top-1")?,
                    model_bytes: o.rom_bytes as usize,
                    peak_activation_bytes: o.ram_bytes as usize,
                    latency_ms: Some(latency),
                    counts: o.ops.get(folding).copied(),
                });
            }
        }
        let rows = self.rows_of(&outcomes, seed, epochs);
        Ok((rows, curves))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixed_precision_mcu::assign::{AssignOptions, assign};
    use mixed_precision_mcu::memory::Granularity;

    /// Both budgets admit Rusci's assignment for the full profile's configuration, every variant
    /// fits its budget, and the smaller FLASH makes every variant's weights smaller.
    #[test]
    fn both_budgets_admit_an_assignment_and_the_second_is_tighter() {
        let plan = plan(Profile::Full, 0, None);
        let model = model(&plan);
        for g in [Granularity::PerLayer, Granularity::PerChannel] {
            let [wide, tight] = BUDGETS.map(|(name, device)| {
                let budget = scaled_proxy_budget(device, plan.base_channels);
                let a = assign(&model, budget, AssignOptions::official(g))
                    .unwrap_or_else(|e| panic!("{name} {g:?}: {e}"));
                let f = a.footprint();
                assert!(f.fits(budget), "{name} {g:?}: {f:?} over {budget:?}");
                (budget, f.rom_bytes())
            });
            assert!(tight.0.rom < wide.0.rom && tight.0.ram == wide.0.ram);
            assert!(tight.1 < wide.1, "{g:?}: {} against {}", tight.1, wide.1);
        }
    }
}
