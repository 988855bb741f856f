//! quant-train: the Burn side of the workspace (burn 0.22, any `Device`; flex by default).
//!
//! # Public API
//!
//! * **Models** ([`models`]): [`ModelSpec`] (`"mlp:256,128"`, `"cnn"`, `"mbv1:0.5"`, `"mbv2:0.5"`,
//!   `"resnet8|14|20"`, `"resnet18:16"`, and the full-size ImageNet models `"imagenet-resnet18|50"`,
//!   `"imagenet-mbv1:α"`, `"imagenet-mbv2:α"`; `FromStr` + `Display`), `ModelConfig::new(spec, seed)`
//!   (`.activation`, `.input = [C,H,W]`, `.classes`) and `ModelConfig::build(&device)` -> [`Net`].
//!   A [`Net`] is a list of [`Block`]s (`Layer(QLayer)`, `MaxPool`, `GlobalAvgPool`, `Residual`,
//!   `InputNorm`) with `forward(x: Tensor<4> /* pixels/255 */, &Phase) -> Tensor<2>` logits.
//! * **Published checkpoints** ([`pretrained`]): `pretrained::load(&config, path, &device)` builds a
//!   full-size ImageNet model with torchvision's weights (safetensors or PyTorch), `pretrained::save`
//!   writes one in that layout.
//! * **Quantization** ([`quant`], [`layers`]): the [`Quantizer`] trait (`fake_quant(x, range)`,
//!   optional `affine(range) -> QParams`) behind a [`QuantizerRef`]; Jacob's [`AffineQuantizer`]
//!   (`weights(bits)` narrow range, `activations(bits)`); [`fake_quant_affine`] (clipped STE) and
//!   [`round_half_away`] (the workspace's one rounding rule, shared with
//!   `quant_core::rounding`); [`EmaObserver`]; binary and ternary weights
//!   ([`sign_weights::SignWeights`], BWN / TWN). Put formats on a model with
//!   `Net::set_quantizers(weight, act)`, or per layer with [`Net::map_layers`] /
//!   [`Net::map_output_stages`]. [`Activation`] includes `Pact(α0)` (learned clip); a layer's
//!   weights can have one too ([`weight_range::LearnedWeightRange`] in `QLayer::learned_range`).
//!   A [`Phase`] says what a forward pass does: [`Phase::EVAL`], [`Phase::FLOAT_EVAL`],
//!   [`Phase::CALIBRATE`] (PTQ), or the training phase from [`QatSchedule::phase`].
//! * **Training** ([`train`]): [`TrainConfig`] (epochs, batch, [`Optimizer::Sgd`] (momentum
//!   without dampening) / [`Optimizer::Adam`], lr, [`LrSchedule`], weight decay, seed,
//!   [`QatSchedule`]), [`RunOptions`] (checkpoint prefix, progress label),
//!   `train::train(net, &train_set, &cfg, &opts, &device)` -> `(Net, TrainReport)`;
//!   [`predict`], [`evaluate`], [`score`] (any `repro::examples::Examples`, streamed), [`argmax_rows`],
//!   [`top1`]; [`BackendKind`] (`"flex"`, and `"ndarray"`, `"wgpu"`, `"vulkan"`, `"cuda"` with the
//!   cargo features of those names) `.device()`, `BackendKind::for_run(&run_args)`.
//! * **Data** ([`data`]): [`data::batch`] (ImageSet -> tensors), [`data::RawBatch`] and
//!   [`data::read_ahead`] (any `Examples`, e.g. an ImageNet folder, read a batch ahead on the worker
//!   threads), [`data::resize`] (bilinear, for the resolution sweep).
//! * **Export** ([`export`]): `export::export(&net, [C, H, W], RoundingMode)` turns a net whose
//!   layers carry affine quantizers (after QAT or PTQ calibration with [`Phase::CALIBRATE`]) into an
//!   [`export::IntegerNet`] (one quant-core engine model; `run(&bytes, batch) -> logit codes`,
//!   `size_bytes()`); [`export::check_agreement`] compares it with the integer simulation of the
//!   quantized graph ([`export::simulate_codes`], exact codes; must agree on every image) and with
//!   the fake-quantized f32 model (argmax agreement, max logit difference in LSB, both top-1s);
//!   [`export::node_agreement`] does the same block by block (diagnosis);
//!   [`export::float_size_bytes`].
//!
//! * **Training kernels** ([`conv`], [`fused`]): the convolution and the clamp, fake-quantization,
//!   PACT and batch-norm operations as Burn backend extensions with hand-written gradients, fast on
//!   flex and Burn's own operations elsewhere; [`fast_path::without`] runs Burn's operations
//!   everywhere (the comparison the tests and `bench-train --burn-ops` make); [`kernel_time`] says
//!   how long a step spent in each.
//!
//! Design: one model type for float, QAT and PTQ. Layers hold unfolded master weights; batch norm is
//! folded on the fly (see [`QLayer`]), fake quantization sits wherever the integer engine stores a
//! tensor, and the range and the format are separate so other papers plug in their own formats.

pub mod checkpoint;
pub mod conv;
pub mod data;
pub mod export;
pub mod fast_path;
mod flex_tensors;
pub mod fused;
pub mod kernel_time;
pub mod layers;
pub mod models;
pub mod pretrained;
pub mod quant;
pub mod rng;
pub mod sign_weights;
mod simd;
pub mod train;
pub mod weight_range;

/// The device a model trains on (Burn's, picked at run time by [`BackendKind`]), for crates that
/// train through this one without depending on Burn.
pub use burn::prelude::Device;
pub use layers::{Activation, ActivationQuant, LayerKind, Phase, QLayer};
pub use models::{Block, ModelConfig, ModelSpec, Net};
pub use quant::{
    AffineQuantizer, EmaObserver, Quantizer, QuantizerRef, fake_quant_affine, round_half_away,
};
pub use train::{
    BackendKind, LrSchedule, Optimizer, QatSchedule, RunOptions, TrainConfig, TrainReport,
    argmax_rows, evaluate, predict, score, top1,
};
