//! x86-64 fast paths. Each is selected at run time by [`super::Backend::detect`] and computes
//! exactly the same raw tiles as [`super::scalar`].

pub mod amx;
pub mod avx2;
pub mod avx512_vnni;
pub mod depthwise;
