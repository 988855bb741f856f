//! Rusci et al.'s rows of any chain of the table (the MobileNetV1 proxy, the MLP): the variants of
//! the MCU reproduction's E1/E2 (`mixed_precision_mcu::experiments::mixed_variants`: uniform 8-bit
//! PL+FB where it fits, MixPL+FB, MixPL+ICN, MixPC+ICN) under two device budgets, each scored by its
//! deployed integer graph under the folding it was selected with, its model and peak activation bytes
//! from Rusci's memory model (weights at their bits plus the requantization parameters; the largest
//! input plus output of one layer at their bits), its latency measured on the integer graph and the
//! operation counts that graph records.

use mixed_precision_mcu::chain::Chain;
use mixed_precision_mcu::experiments::{FloatCache, FloatModel, QatPlan, mixed_variants};
use mixed_precision_mcu::memory::Budget;
use mixed_precision_mcu::mobilenet::MobileNetV1;
use mixed_precision_mcu::tables::scaled_proxy_budget;
use quant_core::kernels::Backend;
use repro::datasets::Dataset;

use crate::bench::{Bench, Outcome, RUSCI};

/// The devices whose memory Rusci's assignment fills: the paper's STM32H743 (2 MB FLASH) and MCUNet's
/// STM32F765 (1 MB FLASH, the same RAM), under which the assignment cuts more weights to 4 and 2 bits.
pub const DEVICES: [(&str, Budget); 2] = [
    ("STM32H743", Budget::STM32H7),
    ("STM32F765", Budget::STM32F765),
];

/// The device budgets `chain` is assigned under. Each device is scaled to the MobileNetV1 proxy
/// family of `plan` as the MCU reproduction scales it (§10.1: by the ratio of its largest model to
/// the paper's). Its FLASH is then carried from the table's MobileNetV1 configuration to `chain` by
/// the ratio of their weights, so every architecture keeps the fraction of its 8-bit weights that the
/// MobileNetV1 proxy keeps; its RAM stays the scaled device's, since every architecture reads the
/// same 8-bit image (carried by the peak-activation ratio it would be smaller than the MLP's input
/// layer at any bit width). For the MobileNetV1 proxy both are the MCU reproduction's budgets.
pub fn budgets(plan: &QatPlan, chain: &Chain) -> Vec<(&'static str, Budget)> {
    let (resolution, width) = plan.configs[0];
    let from = MobileNetV1::tiny(resolution, width, plan.base_channels).params();
    let to = chain.layers.iter().map(|l| l.weights).sum();
    DEVICES
        .iter()
        .map(|&(name, device)| {
            let proxy = scaled_proxy_budget(device, plan.base_channels);
            // A RAM ratio of one leaves the device's RAM as it is.
            let ram = proxy.ram;
            (name, Budget::scaled(proxy, from, ram, to, ram))
        })
        .collect()
}

/// Inputs and outputs of a chain's layers (the bench's `layer_io`).
pub fn layer_io(chain: &Chain) -> Vec<(usize, usize)> {
    chain
        .layers
        .iter()
        .map(|l| (l.in_elems as usize, l.out_elems as usize))
        .collect()
}

impl Bench<'_> {
    /// Rusci's outcomes for `chain` under each of its [`budgets`], trained with `plan` on `data` (the
    /// whole data set, which the MCU reproduction splits and resizes itself), and the float model the
    /// MCU pipeline trained for `chain` (batch norm after every hidden layer, its own recipe).
    pub fn rusci_outcomes(
        &self,
        data: &Dataset,
        chain: &Chain,
        plan: &QatPlan,
        seed: u64,
    ) -> Result<(Vec<Outcome>, FloatModel), String> {
        let mut cache = FloatCache::new();
        let mut outcomes = Vec::new();
        let mut float = None;
        for (device_name, budget) in budgets(plan, chain) {
            let mcu = mixed_variants(data, chain, plan, budget, seed, &mut cache, &self.device)?;
            float = float.or(mcu.floats.into_iter().next().map(|(_, f)| f));
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
        Ok((outcomes, float.ok_or("the MCU run trained no model")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixed_precision_mcu::assign::{AssignOptions, assign};
    use mixed_precision_mcu::memory::Granularity;
    use repro::Profile;

    /// Both budgets admit Rusci's assignment for the full profile's MobileNetV1 and for the MLP,
    /// every variant fits its budget, and the smaller FLASH makes every variant's weights smaller.
    #[test]
    fn both_budgets_admit_an_assignment_and_the_second_is_tighter() {
        let plan = crate::mobilenet::plan(Profile::Full, 0, None);
        let mlp = crate::mlp::chain().unwrap();
        for chain in [crate::mobilenet::chain(&plan), mlp] {
            for g in [Granularity::PerLayer, Granularity::PerChannel] {
                let [(_, wide), (_, tight)]: [(&str, Budget); 2] =
                    budgets(&plan, &chain).try_into().unwrap();
                let rom = |budget: Budget| {
                    let a = assign(&chain.layers, budget, AssignOptions::official(g))
                        .unwrap_or_else(|e| panic!("{} {g:?}: {e}", chain.name));
                    let f = a.footprint();
                    assert!(
                        f.fits(budget),
                        "{} {g:?}: {f:?} over {budget:?}",
                        chain.name
                    );
                    f.rom_bytes()
                };
                assert!(tight.rom < wide.rom && tight.ram == wide.ram);
                assert!(rom(tight) < rom(wide), "{} {g:?}", chain.name);
            }
        }
    }

    /// The MobileNetV1 proxy keeps the MCU reproduction's scaled budgets.
    #[test]
    fn the_mobilenet_proxy_keeps_the_scaled_device_budgets() {
        let plan = crate::mobilenet::plan(Profile::Full, 0, None);
        let chain = crate::mobilenet::chain(&plan);
        for ((_, got), (_, device)) in budgets(&plan, &chain).into_iter().zip(DEVICES) {
            assert_eq!(got, scaled_proxy_budget(device, plan.base_channels));
        }
    }
}
