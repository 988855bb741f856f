//! quant-core: integer-only quantized numerics with no Burn dependency.
//!
//! * [`rounding`]: the one float rounding rule (half away from zero) shared with `quant-train`.
//! * [`qparams`]: affine `r = S (q - Z)` parameters, chosen offline with the zero-point nudge.
//! * [`fixedpoint`]: gemmlowp/TFLite fixed-point primitives, bit-exact.
//! * [`multiplier`]: offline float `M -> (M0, shift)` conversion.
//! * [`engine`]: the integer inference engine (`Model`, `Layer`, `ModelSpec`) with save/load.
//! * [`convert`]: offline float-to-integer layer conversion for the engine.
//! * [`kernels`]: integer-only GEMM/conv/depthwise/pool/add with scalar, AVX2 and AVX-512 VNNI paths.
//! * [`subbyte`]: 8/4/2-bit packing (unsigned and signed codes) and the kernels that read it.
//! * [`baseline_f32`]: the blocked f32 GEMM the kernel benchmark compares against.

pub mod baseline_f32;
pub mod convert;
pub mod engine;
pub mod error;
pub mod fixed8;
pub mod fixedpoint;
pub mod formats;
pub mod graph;
pub mod icn;
pub mod kernels;
pub mod multiplier;
pub mod ops;
pub mod qparams;
pub mod rounding;
pub mod subbyte;
