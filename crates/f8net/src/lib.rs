//! F8Net (Jin et al., ICLR 2022): fixed-point 8-bit-only multiplication, reproduced on proxies.
//!
//! * [`statistics`]: the statistical analysis behind the FL rule (exact and Monte Carlo), figures.
//! * [`graph`]: the proxy architectures as a dataflow graph shared by training, export and counting.
//! * [`model`]: F8Net QAT in Burn (η folding of PACT and BN, std-rule FLs with EMA), and the
//!   full-precision and Jacob INT8 baselines on the same graph.
//! * [`train`]: the training loop and simulated evaluation.
//! * [`export`]: export to `quant_core::fixed8::engine` (shift-only integer inference) and the
//!   Figure 1 operation counts.
//! * [`int8_export`]: export of the INT8 baseline to `quant_core::engine` (INT32 multipliers).
//! * [`experiments`]: the main table and the ablations.
//! * [`paper_scale`]: the Tiny Finetuning rows on ImageNet from a published checkpoint
//!   (`--profile paper`).

pub mod experiments;
pub mod export;
pub mod figures;
pub mod graph;
pub mod int8_export;
pub mod model;
pub mod paper_scale;
pub mod statistics;
pub mod train;
