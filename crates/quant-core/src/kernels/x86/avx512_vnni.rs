//! AVX-512 VNNI microkernel, 8 x 32, `vpdpbusd`: uint8 activations x int8 weights, four
//! products summed straight into each int32 lane with no intermediate saturation (dossier §5.6).
//! This is exactly the engine's u8-activation / s8-weight convention, so no operand shifting is
//! needed inside the kernel; int8 activations reach it through the +128 shift (see
//! [`crate::kernels`]), compensated by the zero-point/column-sum terms.
//!
//! Layout: weights in panels of 32 columns, each K quad `q` holding
//! `[w[4q..4q+4, j]]` for `j` in the panel (128 bytes = two zmm, zero padded in K and N);
//! activations in blocks of 8 rows, each K quad holding `a[r, 4q..4q+4]`, broadcast as one
//! 32-bit value.
#![deny(clippy::float_arithmetic)]
// The AVX-512 intrinsics are stable since Rust 1.89, hence the workspace's `rust-version`.

use std::arch::x86_64::*;

use crate::kernels::MicroKernel;

/// Columns per panel (two zmm registers of int32).
pub const NR: usize = 32;
/// Rows per tile (8 x 2 accumulators).
pub const MR: usize = 8;

/// Packs a row-major int8 `K x N` matrix into quad-interleaved panels.
pub fn pack_b(w: &[i8], k: usize, n: usize) -> Vec<i8> {
    let kq = k.div_ceil(4);
    let panels = n.div_ceil(NR);
    let mut out = vec![0i8; panels * kq * NR * 4];
    for p in 0..panels {
        for kk in 0..k {
            for j in 0..NR.min(n - p * NR) {
                out[((p * kq + kk / 4) * NR + j) * 4 + kk % 4] = w[kk * n + p * NR + j];
            }
        }
    }
    out
}

/// The VNNI microkernel.
pub(crate) struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = NR;
    type A = u8;
    type B = i8;

    fn a_block_len(k: usize) -> usize {
        k.div_ceil(4) * MR * 4
    }

    fn b_panel_len(k: usize) -> usize {
        k.div_ceil(4) * NR * 4
    }

    fn pack_a(a: &[u8], rows: usize, k: usize, dst: &mut [u8]) {
        dst.fill(0);
        for r in 0..rows {
            let row = &a[r * k..(r + 1) * k];
            for (kk, &v) in row.iter().enumerate() {
                dst[((kk / 4) * MR + r) * 4 + kk % 4] = v;
            }
        }
    }

    unsafe fn tile(a: &[u8], b: &[i8], k: usize, tile: &mut [i32]) {
        // SAFETY: forwarded contract (AVX-512F + VNNI present, slice lengths as documented).
        unsafe { tile_vnni(a, b, k, tile) }
    }
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_vnni(a: &[u8], b: &[i8], k: usize, tile: &mut [i32]) {
    let kq = k.div_ceil(4);
    assert!(a.len() >= kq * MR * 4 && b.len() >= kq * NR * 4 && tile.len() >= MR * NR);
    let mut c = [[_mm512_setzero_si512(); 2]; MR];
    let ap = a.as_ptr();
    let bp = b.as_ptr();
    for q in 0..kq {
        // SAFETY: q < kq, so the reads stay inside the packed block and panel.
        unsafe {
            let b0 = _mm512_loadu_si512(bp.add(q * NR * 4) as *const __m512i);
            let b1 = _mm512_loadu_si512(bp.add(q * NR * 4 + 64) as *const __m512i);
            for (r, cr) in c.iter_mut().enumerate() {
                let quad = (ap.add((q * MR + r) * 4) as *const i32).read_unaligned();
                let av = _mm512_set1_epi32(quad);
                cr[0] = _mm512_dpbusd_epi32(cr[0], av, b0);
                cr[1] = _mm512_dpbusd_epi32(cr[1], av, b1);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: tile has MR * NR elements.
        unsafe {
            _mm512_storeu_si512(tile.as_mut_ptr().add(r * NR) as *mut __m512i, cr[0]);
            _mm512_storeu_si512(tile.as_mut_ptr().add(r * NR + 16) as *mut __m512i, cr[1]);
        }
    }
}
