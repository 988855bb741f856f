//! Portable reference microkernel: plain loops, no `unsafe` instructions.
//!
//! Weights are packed in panels of `NR` columns, row `k` of a panel holding `w[k, c0..c0+NR]`
//! (zero beyond `N`); activations in blocks of `MR` rows stored k-major (`a[k][r]`).
#![deny(clippy::float_arithmetic)]

use super::MicroKernel;

/// Columns per panel.
pub const NR: usize = 8;
/// Rows per tile.
pub const MR: usize = 4;

/// Packs a row-major `K x N` matrix into `NR`-column panels (zero padded).
pub fn pack_b(w: &[i8], k: usize, n: usize) -> Vec<i8> {
    let panels = n.div_ceil(NR);
    let mut out = vec![0i8; panels * k * NR];
    for p in 0..panels {
        for kk in 0..k {
            for j in 0..NR.min(n - p * NR) {
                out[(p * k + kk) * NR + j] = w[kk * n + p * NR + j];
            }
        }
    }
    out
}

/// The scalar microkernel.
pub(crate) struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = NR;
    type A = u8;
    type B = i8;

    fn a_block_len(k: usize) -> usize {
        k * MR
    }

    fn b_panel_len(k: usize) -> usize {
        k * NR
    }

    fn pack_a(a: &[u8], rows: usize, k: usize, dst: &mut [u8]) {
        dst.fill(0);
        for r in 0..rows {
            for kk in 0..k {
                dst[kk * MR + r] = a[r * k + kk];
            }
        }
    }

    unsafe fn tile(a: &[u8], _lda: usize, b: &[i8], k: usize, c: &mut [i32], ldc: usize) {
        let mut acc = [[0i32; NR]; MR];
        for kk in 0..k {
            let bk = &b[kk * NR..(kk + 1) * NR];
            for (r, row) in acc.iter_mut().enumerate() {
                let av = i32::from(a[kk * MR + r]);
                for (c, &bv) in row.iter_mut().zip(bk) {
                    *c += av * i32::from(bv);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            c[r * ldc..r * ldc + NR].copy_from_slice(row);
        }
    }
}
