//! AVX2 microkernel, 6 x 16, exact int16 x int16 -> int32 with `vpmaddwd`.
//!
//! Why not `vpmaddubsw` (u8 x s8): it sums two products into a **saturating** int16, and
//! `2 * 255 * 127 = 64770 > 32767`, so the narrow weight range does not make it exact on x86
//! (dossier §5.6). Widening both operands to int16 at pack time makes every pair sum fit an
//! int32 lane exactly, at the same multiplier-port throughput on Zen 4 (one `vpmaddwd` per 16
//! multiply-adds versus `vpmaddubsw` + `vpmaddwd` per 32).
//!
//! Layout: weights in panels of 16 columns, each K pair `kp` holding
//! `[w[2kp, j], w[2kp+1, j]]` for `j` in the panel (int16, zero padded in K and N); activations
//! in blocks of 6 rows, each K pair holding `[a[r, 2kp], a[r, 2kp+1]]` as int16, so one 32-bit
//! broadcast feeds a `vpmaddwd` against a weight row pair.
#![deny(clippy::float_arithmetic)]

use std::arch::x86_64::*;

use crate::kernels::MicroKernel;

/// Columns per panel (two ymm registers of int32).
pub const NR: usize = 16;
/// Rows per tile (6 x 2 accumulators + 2 weight registers + 1 broadcast fit in 16 ymm).
pub const MR: usize = 6;

/// Packs a row-major int8 `K x N` matrix into int16 pair-interleaved panels.
pub fn pack_b(w: &[i8], k: usize, n: usize) -> Vec<i16> {
    let kp = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let mut out = vec![0i16; panels * kp * NR * 2];
    for p in 0..panels {
        for kk in 0..k {
            for j in 0..NR.min(n - p * NR) {
                out[((p * kp + kk / 2) * NR + j) * 2 + kk % 2] = i16::from(w[kk * n + p * NR + j]);
            }
        }
    }
    out
}

/// The AVX2 microkernel.
pub(crate) struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = NR;
    type A = i16;
    type B = i16;

    fn a_block_len(k: usize) -> usize {
        k.div_ceil(2) * MR * 2
    }

    fn b_panel_len(k: usize) -> usize {
        k.div_ceil(2) * NR * 2
    }

    fn pack_a(a: &[u8], rows: usize, k: usize, dst: &mut [i16]) {
        dst.fill(0);
        for r in 0..rows {
            let row = &a[r * k..(r + 1) * k];
            for (kk, &v) in row.iter().enumerate() {
                dst[((kk / 2) * MR + r) * 2 + kk % 2] = i16::from(v);
            }
        }
    }

    unsafe fn tile(a: &[i16], b: &[i16], k: usize, tile: &mut [i32]) {
        // SAFETY: forwarded contract (AVX2 present, slice lengths as documented).
        unsafe { tile_avx2(a, b, k, tile) }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn tile_avx2(a: &[i16], b: &[i16], k: usize, tile: &mut [i32]) {
    let kp = k.div_ceil(2);
    debug_assert!(a.len() >= kp * MR * 2 && b.len() >= kp * NR * 2 && tile.len() >= MR * NR);
    let mut c = [[_mm256_setzero_si256(); 2]; MR];
    let ap = a.as_ptr();
    let bp = b.as_ptr();
    for p in 0..kp {
        // SAFETY: p < kp, so the reads stay inside the packed block and panel.
        unsafe {
            let b0 = _mm256_loadu_si256(bp.add(p * NR * 2) as *const __m256i);
            let b1 = _mm256_loadu_si256(bp.add(p * NR * 2 + 16) as *const __m256i);
            for (r, cr) in c.iter_mut().enumerate() {
                let pair = (ap.add((p * MR + r) * 2) as *const i32).read_unaligned();
                let av = _mm256_set1_epi32(pair);
                cr[0] = _mm256_add_epi32(cr[0], _mm256_madd_epi16(av, b0));
                cr[1] = _mm256_add_epi32(cr[1], _mm256_madd_epi16(av, b1));
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: tile has MR * NR elements.
        unsafe {
            _mm256_storeu_si256(tile.as_mut_ptr().add(r * NR) as *mut __m256i, cr[0]);
            _mm256_storeu_si256(tile.as_mut_ptr().add(r * NR + 8) as *mut __m256i, cr[1]);
        }
    }
}
