//! Sub-byte (8/4/2-bit) unsigned tensors and the integer convolution kernels that read them packed
//! (Rusci et al. 2020, CMix-NN): mixed-precision MobileNets store every activation and weight tensor
//! at its own bit width, so a kernel multiplies operands of any pair of widths.
//!
//! * [`pack`]: [`BitWidth`] and [`Packed`], LSB-first packing of unsigned or signed codes.
//! * [`conv`]: conv / depthwise / fully connected accumulation `Σ (x - Zx)(w - Zw[c])` on packed
//!   operands, with a direct wide-integer reference on unpacked codes that the fast path is tested
//!   against bit-exactly.
//!
//! Requantization of the accumulators to packed outputs is [`crate::icn`].
#![deny(clippy::float_arithmetic)]

pub mod conv;
pub mod pack;

pub use conv::{accumulate, accumulate_reference};
pub use pack::{BitWidth, Packed};
