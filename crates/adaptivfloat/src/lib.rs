//! Reproduction of Tambe et al. 2020, "AdaptivFloat" (DAC 2020), on a 2-core CPU.
//!
//! The number formats themselves live in [`quant_core::formats`]; this crate runs the paper's
//! experiments with them:
//!
//! * [`tensor_cli`]: `adaptivfloat quantize`, quantizing a tensor read as text.
//! * [`rmse`]: format-level RMSE against bit width on seeded synthetic families and trained
//!   weights, and the exponent-width search (dossier §9.1 P1b–P1d).
//! * [`fakequant`]: the formats as a `quant-train` [`quant_train::Quantizer`] (straight-through
//!   estimator), for retraining and activation quantization.
//! * [`transformer`]: the 28-row-token Transformer (dossier §9.2 M3), which `quant-train`'s zoo
//!   does not have.
//! * [`accuracy`]: Tables 2 and 3 (PTQ, QAR, W+A) and the range-stress of §9.1 P1f on MNIST-scale
//!   stand-ins, written as rows that mirror `published.csv`.
//! * [`imagenet`]: the paper's own ResNet-50 rows of Tables 1 and 2 (PTQ) at paper scale, from a
//!   published checkpoint and the ImageNet validation images (`--profile paper`).

pub mod accuracy;
pub mod fakequant;
pub mod figures;
pub mod imagenet;
pub mod rmse;
pub mod tensor_cli;
pub mod transformer;

/// `paper` column of every row, as in `experiments/adaptivfloat/published.csv`.
pub const PAPER: &str = "tambe2020";
/// Folder under `results/` and `experiments/`.
pub const PAPER_DIR: &str = "adaptivfloat";
