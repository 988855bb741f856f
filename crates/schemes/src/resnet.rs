//! The ResNet rows: `integer-qat`'s E2 ResNet (CIFAR-style, 16/32/64 channels, ReLU, batch norm;
//! ResNet-14 in the full profile) at E1's 14x14 pixels on Fashion-MNIST, trained exactly as
//! `integer-qat`'s E1 trains it (float and QAT epochs from its sizes, the same recipes, data split and
//! seeds), so the checkpoints of one serve the other.
//!
//! * **float32**, **Jacob int8 PTQ / QAT**, **Uniform / AdaptivFloat weights** — as on the MLP
//!   ([`crate::bench`]), from that float model.
//! * **F8Net fixed point** — after training, on the fixed8 engine ([`crate::fixed_point`]): ReLU
//!   formats from the standard deviation before each ReLU (after convolutions and residual adds),
//!   residual adds aligned by shifts.
//!
//! Rusci et al.'s sub-byte graph is a chain of convolutions with no residual add, and PocketNN trains
//! MLPs: neither has a row here.

use integer_qat::recipe::Sizes as JacobSizes;
use quant_train::{ModelConfig, ModelSpec};
use repro::Profile;
use repro::results::ResultRow;

use crate::bench::Bench;
use crate::float_chain::{Step, steps};

/// The ResNet of `integer-qat`'s E2 for `profile`.
pub fn spec(profile: Profile) -> ModelSpec {
    ModelSpec::ResNetCifar(JacobSizes::of(profile).e2_depth)
}

/// Input side, float epochs and QAT epochs of `integer-qat`'s E1 for `profile`.
pub fn recipe(profile: Profile) -> (usize, u32, u32) {
    let sizes = JacobSizes::of(profile);
    (sizes.e1_resolution, sizes.float_epochs, sizes.qat_epochs)
}

/// The `model` column.
pub fn model_name(profile: Profile) -> String {
    let side = recipe(profile).0;
    format!(
        "{} (CIFAR-style 16/32/64) {side}x{side}",
        spec(profile).to_string().replace("resnet", "ResNet-")
    )
}

/// Inputs and outputs of the layers of the ResNet of `profile` (the bench's `layer_io`): a residual
/// block keeps its input while its body runs, so the body's later layers and the projection
/// shortcut count it beside their own input, and the add counts both operands.
pub fn layer_io(profile: Profile) -> Result<Vec<(usize, usize)>, String> {
    let side = recipe(profile).0;
    let mut config = ModelConfig::new(spec(profile), 0);
    config.input = [1, side, side];
    let elems = |[c, h, w]: [usize; 3]| c * h * w;
    let mut shape = [1, side, side];
    let mut io = Vec::new();
    for step in steps(&config.build(&quant_train::Device::flex()))? {
        match step {
            Step::Layer(l) => {
                let out = l.output_shape(shape);
                io.push((elems(shape), elems(out)));
                shape = out;
            }
            Step::GlobalAvgPool => shape = [shape[0], 1, 1],
            Step::Residual { body, shortcut, .. } => {
                let held = elems(shape);
                let mut end = shape;
                for (j, l) in body.iter().enumerate() {
                    let next = l.output_shape(end);
                    io.push((elems(end) + if j == 0 { 0 } else { held }, elems(next)));
                    end = next;
                }
                let short = match &shortcut {
                    Some(l) => {
                        let out = elems(l.output_shape(shape));
                        io.push((held + elems(end), out));
                        out
                    }
                    None => held,
                };
                io.push((elems(end) + short, elems(end)));
                shape = end;
            }
        }
    }
    Ok(io)
}

impl Bench<'_> {
    /// Every row of one seed on the ResNet of `profile`, and the validation curves of the float model
    /// and Jacob's QAT. The bench's sets are at the recipe's side and its sizes carry its epochs.
    pub fn resnet_rows(
        &self,
        profile: Profile,
        seed: u64,
    ) -> Result<(Vec<ResultRow>, Vec<ResultRow>), String> {
        let spec = spec(profile);
        let (float, float_report) = self.float_model(&spec, &format!("{spec}-float"), seed)?;
        let epochs = self.sizes.float_epochs;
        let (outcomes, curves) = self.common_outcomes(&float, &float_report, seed, epochs)?;
        let rows = self.rows_of(&outcomes, seed, epochs);
        Ok((rows, curves))
    }
}
