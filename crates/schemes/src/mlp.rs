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
//! * **F8Net fixed point** — after training, on the fixed8 engine ([`crate::bench`]).
//! * **Rusci** — the mixed 8/4/2-bit variants on the MLP as a chain of the MCU reproduction
//!   ([`chain`]: its hidden layers are convolutions whose window is the whole map) under the two
//!   device budgets ([`crate::rusci`]). Rusci's pipeline folds or normalises batch norm, so it trains
//!   its own float MLP with batch norm after each hidden layer (the MCU reproduction's recipe: Adam
//!   5e-3, cosine decay, batch 64) on the same sets, reported as `Rusci float32 start` with its
//!   validation curve.

use mixed_precision_mcu::chain::Chain;
use mixed_precision_mcu::experiments::QatPlan;
use pocketnn::activation::PocketActivation;
use pocketnn::network::{ForwardState, Network};
use pocketnn::rng::{Pcg32, RunRng};
use pocketnn::train::{Split, TrainConfig as PocketConfig};
use quant_train::ModelSpec;
use repro::datasets::Dataset;
use repro::results::ResultRow;

use crate::bench::{Bench, Outcome, POCKETNN, RUSCI, bits};
use crate::measure::storage_bytes;

/// Layer widths, input first.
pub const WIDTHS: [usize; 4] = [784, 256, 256, 10];
/// The `model` column.
pub const MODEL: &str = "MLP 784-256-256-10";

/// The MLP as a chain of Rusci et al.'s pipeline, on 28x28 grey images.
pub fn chain() -> Result<Chain, String> {
    Chain::mlp(28, 1, &WIDTHS)
}

impl Bench<'_> {
    /// Every row of one seed, and the validation curves of its Burn trainings (the float model and
    /// QAT, whose epochs continue the float model's, and Rusci's float model). `data` is the whole
    /// data set, which Rusci's pipeline splits itself as `self.sets` holds it; `mcu_plan` is the
    /// MobileNetV1's plan, whose recipe Rusci's rows train with on this bench's sets.
    pub fn mlp_rows(
        &self,
        data: &Dataset,
        mcu_plan: &QatPlan,
        seed: u64,
    ) -> Result<(Vec<ResultRow>, Vec<ResultRow>), String> {
        let spec: ModelSpec = "mlp:256,256".parse()?;
        let (float, float_report) = self.float_model(&spec, "mlp-float", seed)?;
        let epochs = self.sizes.float_epochs;
        let (mut outcomes, mut curves) =
            self.common_outcomes(&float, &float_report, seed, epochs)?;
        let plan = QatPlan {
            train_images: self.sets.train.len(),
            validation_images: self.sets.validation.len(),
            test_images: self.sets.test.len(),
            ..mcu_plan.clone()
        };
        let (rusci, start) = self.rusci_outcomes(data, &chain()?, &plan, seed)?;
        let method = format!("{RUSCI} float32 start (batch norm)");
        outcomes.push(Outcome {
            method: method.clone(),
            ..self.float_outcome(&start.net)?
        });
        let template = self.template(&method, ("32", "32"), seed, plan.float_epochs);
        curves.extend(start.report.curve_rows(&template));
        outcomes.extend(rusci);
        let mut rows: Vec<ResultRow> = self.rows_of(&outcomes, seed, epochs);
        rows.extend(self.rows(&self.pocket_outcome(seed)?, seed, self.sizes.pocket_epochs));
        Ok((rows, curves))
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
        })?;
        Ok(Outcome {
            method: POCKETNN.into(),
            bits: bits(32, 32),
            top1,
            model_bytes: storage_bytes(params, 32, 0),
            peak_activation_bytes: self.peak_activation_bytes(32),
            latency_ms: Some(latency),
            counts: None,
        })
    }
}
