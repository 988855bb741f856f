//! F8Net fixed-point 8-bit formats (Jin et al., ICLR 2022; dossier `f8net.md` §2-§6).
//!
//! A value is `q * 2^-FL` with an 8-bit integer code `q` and a fractional length `FL`. Every scale in
//! the network is a power of two, so rescaling between layers is a bit shift and the only products
//! left at inference are 8-bit x 8-bit.
//!
//! * [`format`] (integer-only): the formats, half-to-even shifts, shift-only requantization, residual
//!   additions aligned by shifts, average pooling as a shift.
//! * [`rule`] (offline, float): picking FL from a tensor's statistics (the standard-deviation rule with
//!   the official code's constants, the exact analytic constants, MSE grid search, max-based), and
//!   float -> code conversion for export.
//! * [`stats`] (offline, float): the exact relative quantization error of Gaussian and rectified
//!   Gaussian data, its thresholds and optimal points (the paper's statistical analysis).
//! * [`engine`] (integer-only): the scalar reference interpreter of an exported F8Net model, with
//!   i8 x i8 -> i32 products and shifts only, counting both.
//! * [`graph`] (integer-only): the same model on the one integer graph of [`crate::graph`], its
//!   layers on the int8 kernels, shifts as the requantization plug-in.

pub mod engine;
pub mod format;
pub mod graph;
pub mod rule;
pub mod stats;

pub use format::FixedFormat;
