//! A reasonable blocked f32 GEMM, the like-for-like float baseline of the kernel benchmark
//! (dossier §11.2: compare our int8 kernels against our own float kernels with the same
//! blocking). Not used by the integer engine.
//!
//! `C = A x B` with row-major `A` (`M x K`) and `B` (`K x N`): `B` is packed once into panels of
//! 16 columns, rows are processed in 6-row tiles (12 AVX2 accumulators, FMA), threads split the
//! rows. On CPUs with AVX-512F the tile is 8 rows x 32 columns (two panels, one zmm each, 16
//! accumulators): 6 x 16 on ymm leaves half of an AVX-512 core's FMA width unused. A portable loop
//! serves CPUs without AVX2/FMA.

use rayon::prelude::*;

/// Columns per panel.
const NR: usize = 16;
/// Rows per tile.
const MR: usize = 6;
/// Rows per tile of the AVX-512 kernel (which covers two panels).
const MR512: usize = 8;

/// `B` packed into 16-column panels (zero padded).
#[derive(Debug, Clone)]
pub struct PackedF32 {
    k: usize,
    n: usize,
    panels: Vec<f32>,
}

impl PackedF32 {
    /// Packs a row-major `K x N` matrix; `None` if `b.len() != k * n`.
    pub fn new(b: &[f32], k: usize, n: usize) -> Option<Self> {
        if b.len() != k * n || k == 0 || n == 0 {
            return None;
        }
        let np = n.div_ceil(NR);
        let mut panels = vec![0f32; np * k * NR];
        for p in 0..np {
            for kk in 0..k {
                for j in 0..NR.min(n - p * NR) {
                    panels[(p * k + kk) * NR + j] = b[kk * n + p * NR + j];
                }
            }
        }
        Some(PackedF32 { k, n, panels })
    }
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_fma() && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `c = a x b`; `None` on a shape mismatch.
pub fn gemm_f32(a: &[f32], m: usize, b: &PackedF32, c: &mut [f32]) -> Option<()> {
    let (k, n) = (b.k, b.n);
    if a.len() != m * k || c.len() != m * n {
        return None;
    }
    let fma = has_fma();
    #[cfg(target_arch = "x86_64")]
    let avx512 = has_avx512();
    #[cfg(target_arch = "x86_64")]
    let run512 = |a: &[f32], c: &mut [f32]| {
        let rows = a.len() / k;
        let mut tile = [0f32; MR512 * 2 * NR];
        let np = n.div_ceil(NR);
        for p in (0..np).step_by(2) {
            let panel = |q: usize| &b.panels[q * k * NR..(q + 1) * k * NR];
            // An odd last panel is paired with itself; its second half is discarded.
            let (p0, p1) = (panel(p), panel((p + 1).min(np - 1)));
            let (c0, nc) = (p * NR, (2 * NR).min(n - p * NR));
            for r0 in (0..rows).step_by(MR512) {
                let mr = MR512.min(rows - r0);
                // SAFETY: AVX-512F and FMA were detected; `a` holds `mr` rows of `k` from r0.
                unsafe { tile_avx512(&a[r0 * k..(r0 + mr) * k], mr, k, p0, p1, &mut tile) };
                for r in 0..mr {
                    c[(r0 + r) * n + c0..][..nc].copy_from_slice(&tile[r * 2 * NR..][..nc]);
                }
            }
        }
    };
    let run = |a: &[f32], c: &mut [f32]| {
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            return run512(a, c);
        }
        let rows = a.len() / k;
        let mut tile = [0f32; MR * NR];
        for p in 0..n.div_ceil(NR) {
            let panel = &b.panels[p * k * NR..(p + 1) * k * NR];
            let (c0, nc) = (p * NR, NR.min(n - p * NR));
            for r0 in (0..rows).step_by(MR) {
                let mr = MR.min(rows - r0);
                let ab = &a[r0 * k..(r0 + mr) * k];
                #[cfg(target_arch = "x86_64")]
                if fma {
                    // SAFETY: AVX2 and FMA were detected; `ab` holds `mr` rows of `k`.
                    unsafe { tile_fma(ab, mr, k, panel, &mut tile) };
                } else {
                    tile_portable(ab, mr, k, panel, &mut tile);
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = fma;
                    tile_portable(ab, mr, k, panel, &mut tile);
                }
                for r in 0..mr {
                    c[(r0 + r) * n + c0..(r0 + r) * n + c0 + nc]
                        .copy_from_slice(&tile[r * NR..r * NR + nc]);
                }
            }
        }
    };
    let threads = rayon::current_num_threads();
    if threads <= 1 || m * n * k < 1 << 21 || m < 2 * MR512 {
        run(a, c);
    } else {
        // A multiple of both tile heights.
        let chunk = m.div_ceil(threads).div_ceil(24) * 24;
        a.par_chunks(chunk * k)
            .zip(c.par_chunks_mut(chunk * n))
            .for_each(|(a, c)| run(a, c));
    }
    Some(())
}

fn tile_portable(a: &[f32], mr: usize, k: usize, panel: &[f32], tile: &mut [f32; MR * NR]) {
    tile.fill(0.0);
    for kk in 0..k {
        let bk = &panel[kk * NR..(kk + 1) * NR];
        for r in 0..mr {
            let av = a[r * k + kk];
            for (t, &bv) in tile[r * NR..(r + 1) * NR].iter_mut().zip(bk) {
                *t += av * bv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_fma(a: &[f32], mr: usize, k: usize, panel: &[f32], tile: &mut [f32; MR * NR]) {
    use std::arch::x86_64::*;
    let mut c = [[_mm256_setzero_ps(); 2]; MR];
    let bp = panel.as_ptr();
    // Rows beyond `mr` re-read the last row (their results are discarded).
    let rows: [usize; MR] = std::array::from_fn(|r| r.min(mr - 1) * k);
    for kk in 0..k {
        // SAFETY: kk < k and the panel holds k * NR floats; row offsets are within `a`.
        unsafe {
            let b0 = _mm256_loadu_ps(bp.add(kk * NR));
            let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
            for (r, cr) in c.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.get_unchecked(rows[r] + kk));
                cr[0] = _mm256_fmadd_ps(av, b0, cr[0]);
                cr[1] = _mm256_fmadd_ps(av, b1, cr[1]);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: tile holds MR * NR floats.
        unsafe {
            _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR), cr[0]);
            _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR + 8), cr[1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn tile_avx512(
    a: &[f32],
    mr: usize,
    k: usize,
    p0: &[f32],
    p1: &[f32],
    tile: &mut [f32; MR512 * 2 * NR],
) {
    use std::arch::x86_64::*;
    let mut c = [[_mm512_setzero_ps(); 2]; MR512];
    // Rows beyond `mr` re-read the last row (their results are discarded).
    let rows: [usize; MR512] = std::array::from_fn(|r| r.min(mr - 1) * k);
    for kk in 0..k {
        // SAFETY: kk < k, each panel holds k * NR floats; row offsets are within `a`.
        unsafe {
            let b0 = _mm512_loadu_ps(p0.as_ptr().add(kk * NR));
            let b1 = _mm512_loadu_ps(p1.as_ptr().add(kk * NR));
            for (r, cr) in c.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.get_unchecked(rows[r] + kk));
                cr[0] = _mm512_fmadd_ps(av, b0, cr[0]);
                cr[1] = _mm512_fmadd_ps(av, b1, cr[1]);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: tile holds MR512 * 2 * NR floats.
        unsafe {
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * 2 * NR), cr[0]);
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * 2 * NR + NR), cr[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product() {
        for (m, k, n) in [
            (1, 1, 1),
            (7, 13, 17),
            (13, 40, 33),
            (64, 50, 100),
            (9, 3, 48),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32) - 6.0).collect();
            let p = PackedF32::new(&b, k, n).unwrap();
            let mut c = vec![0f32; m * n];
            gemm_f32(&a, m, &p, &mut c).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|kk| a[i * k + kk] * b[kk * n + j]).sum();
                    assert_eq!(c[i * n + j], want, "{m}x{k}x{n} at {i},{j}");
                }
            }
        }
        assert!(PackedF32::new(&[1.0; 5], 2, 3).is_none());
        let p = PackedF32::new(&[1.0; 6], 2, 3).unwrap();
        assert!(gemm_f32(&[1.0; 3], 2, &p, &mut [0.0; 6]).is_none());
    }
}
