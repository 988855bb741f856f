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
use quant_train::layers::LayerKind;
use quant_train::{Block, ModelConfig, ModelSpec, Net};
use repro::Profile;
use repro::results::ResultRow;

use crate::bench::Bench;

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
pub fn layer_io(profile: Profile) -> Vec<(usize, usize)> {
    let side = recipe(profile).0;
    let mut config = ModelConfig::new(spec(profile), 0);
    config.input = [1, side, side];
    let net: Net = config.build(&quant_train::Device::flex());
    let mut shape = [1, side, side];
    let mut io = Vec::new();
    for block in &net.blocks {
        match block {
            Block::Layer(l) => {
                let (i, o) = (elems(shape), output_shape(l, shape));
                io.push((i, elems(o)));
                shape = o;
            }
            Block::GlobalAvgPool(_) => shape = [shape[0], 1, 1],
            Block::Residual(r) => {
                let held = elems(shape);
                let mut body = shape;
                for (j, l) in r.body.iter().enumerate() {
                    let next = output_shape(l, body);
                    let extra = if j == 0 { 0 } else { held };
                    io.push((elems(body) + extra, elems(next)));
                    body = next;
                }
                let short = match &r.shortcut {
                    Some(l) => {
                        let o = elems(output_shape(l, shape));
                        io.push((held + elems(body), o));
                        o
                    }
                    None => held,
                };
                io.push((elems(body) + short, elems(body)));
                shape = body;
            }
            Block::MaxPool(_) | Block::InputNorm(_) => {}
        }
    }
    io
}

fn elems([c, h, w]: [usize; 3]) -> usize {
    c * h * w
}

/// The output shape of `l` on a `[C, H, W]` input (padding `kernel / 2`, as quant-train's layers).
fn output_shape(l: &quant_train::QLayer, [_, h, w]: [usize; 3]) -> [usize; 3] {
    let c = l.out_channels();
    match l.kind {
        LayerKind::Conv { kernel, stride, .. } => {
            let side = |n: usize| (n + 2 * (kernel / 2) - kernel) / stride + 1;
            [c, side(h), side(w)]
        }
        LayerKind::Linear => [c, 1, 1],
    }
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
        let rows = outcomes
            .iter()
            .flat_map(|o| self.rows(o, seed, epochs))
            .collect();
        Ok((rows, curves))
    }
}
