//! PocketNN (Song & Lin, 2022): integer-only training and inference of MLPs with direct feedback
//! alignment and pocket activations, bit-exact with the authors' C++ when run with glibc's `rand()`.
//!
//! - [`activation`]: pocket tanh, sigmoid, ReLU-8bit and leaky ReLU with their integer inverse slopes.
//! - [`kernels`]: the int32 vector-matrix products, exact or refused with [`kernels::Overflow`].
//! - [`network`]: layers, forward pass and the DFA step.
//! - [`train`]: the reference's epoch loop (shuffle, batches, learning-rate-inverse schedule, test pass).
//! - [`rng`]: glibc `rand()` and PCG32.
//! - [`tables`]: per-epoch rows and the rows that mirror published numbers.
//! - [`float_baseline`]: the float back-propagation MLP in Burn (via `quant-train`).
//! - [`figures`]: test accuracy per epoch against the author's runs.
//!
//! Everything on the training and inference path denies float arithmetic (`clippy::float_arithmetic`);
//! floats appear only when percentages are reported.

pub mod activation;
pub mod figures;
pub mod float_baseline;
pub mod kernels;
pub mod network;
pub mod rng;
pub mod tables;
pub mod train;
