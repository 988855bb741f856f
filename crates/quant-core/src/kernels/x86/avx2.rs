//! AVX2 microkernel, 4 x 16, exact int16 x int16 -> int32 with `vpmaddwd`.
//!
//! Why not `vpmaddubsw` (u8 x s8): it sums two products into a **saturating** int16, and
//! `2 * 255 * 127 = 64770 > 32767`, so the narrow weight range does not make it exact on x86
//! (dossier §5.6). Widening both operands to int16 at pack time makes every pair sum fit an
//! int32 lane exactly, at the same multiplier-port throughput on Zen 4 (one `vpmaddwd` per 16
//! multiply-adds versus `vpmaddubsw` + `vpmaddwd` per 32).
//!
//! Layout: weights in panels of 16 columns, each K pair `kp` holding
//! `[w[2kp, j], w[2kp+1, j]]` for `j` in the panel (int16, zero padded in K and N); activations
//! in blocks of 4 rows, each row widened to int16 in place (zero padded to an even K), so the pair
//! `[a[r, 2kp], a[r, 2kp+1]]` is one 32-bit broadcast that feeds a `vpmaddwd` against a weight row
//! pair. Row-major blocks make packing a plain widening copy (it costs as much as the products when
//! N is small, as in convolutions); the kernel reads the four rows as four sequential streams.
//!
//! Why 4 x 16 and not the register-filling 6 x 16: on the development machine (AVX2, 256-bit
//! operations split into two 128-bit halves, one `vpmaddwd` every two cycles) a K step that
//! issues all four row broadcasts before its eight products ran within 3 % of the measured
//! `vpmaddwd` ceiling in an L1-resident loop, against about 82 % for 6 x 16 with a broadcast per
//! row (12 products, one broadcast register): the products then wait on freshly loaded broadcasts.
#![deny(clippy::float_arithmetic)]

use std::arch::x86_64::*;

use crate::kernels::MicroKernel;
use crate::kernels::aligned::LineAligned;

/// Columns per panel (two ymm registers of int32).
pub const NR: usize = 16;
/// Rows per tile (4 x 2 accumulators + 2 weight registers + 4 broadcasts fit in 16 ymm).
pub const MR: usize = 4;

/// Packs a row-major int8 `K x N` matrix into int16 pair-interleaved panels.
pub fn pack_b(w: &[i8], k: usize, n: usize) -> LineAligned<i16> {
    let kp = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let mut out = LineAligned::zeroed(panels * kp * NR * 2);
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
        let stride = k.div_ceil(2) * 2;
        for (r, dst_row) in dst.chunks_exact_mut(stride).take(MR).enumerate() {
            let (head, pad) = dst_row.split_at_mut(k);
            if r < rows {
                for (d, &v) in head.iter_mut().zip(&a[r * k..(r + 1) * k]) {
                    *d = i16::from(v);
                }
            } else {
                head.fill(0);
            }
            pad.fill(0);
        }
    }

    unsafe fn tile(a: &[i16], _lda: usize, b: &[i16], k: usize, c: &mut [i32], ldc: usize) {
        // SAFETY: forwarded contract (AVX2 present, slice lengths as documented).
        unsafe { tile_avx2(a, b, k, c, ldc) }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn tile_avx2(a: &[i16], b: &[i16], k: usize, tile: &mut [i32], ldc: usize) {
    let kp = k.div_ceil(2);
    assert!(
        a.len() >= kp * MR * 2
            && b.len() >= kp * NR * 2
            && ldc >= NR
            && tile.len() >= (MR - 1) * ldc + NR
    );
    let mut c = [[_mm256_setzero_si256(); 2]; MR];
    let ap = a.as_ptr();
    let bp = b.as_ptr();
    for p in 0..kp {
        // SAFETY: p < kp, so the reads stay inside the packed block and panel.
        unsafe {
            // All broadcasts first: the products of a step then never wait on a load.
            let av: [__m256i; MR] = std::array::from_fn(|r| {
                _mm256_set1_epi32((ap.add(r * kp * 2 + p * 2) as *const i32).read_unaligned())
            });
            let b0 = _mm256_loadu_si256(bp.add(p * NR * 2) as *const __m256i);
            let b1 = _mm256_loadu_si256(bp.add(p * NR * 2 + 16) as *const __m256i);
            for (cr, &a) in c.iter_mut().zip(&av) {
                cr[0] = _mm256_add_epi32(cr[0], _mm256_madd_epi16(a, b0));
                cr[1] = _mm256_add_epi32(cr[1], _mm256_madd_epi16(a, b1));
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: row r < MR ends at r * ldc + NR <= tile.len() (asserted).
        unsafe {
            _mm256_storeu_si256(tile.as_mut_ptr().add(r * ldc) as *mut __m256i, cr[0]);
            _mm256_storeu_si256(tile.as_mut_ptr().add(r * ldc + 8) as *mut __m256i, cr[1]);
        }
    }
}

/// Vector output stage: `dst[j] = clamp(MBQM(acc[j], m[j]) + z, lo, hi)` for 8 channels at a
/// time, bit-exact with [`crate::kernels::OutputStage::requantize`] for shifts in `[-31, 0]`
/// (the caller guarantees that range; other shifts take the scalar path).
///
/// SRDHM keeps the low 32 bits of `(a*b + 2^30) >> 31`: the true result fits in int32 (the one
/// exception, `MIN*MIN`, is patched to `MAX`), and the low 32 bits of a logical and an
/// arithmetic 64-bit shift by 31 agree, so AVX2's missing `vpsraq` does not matter there.
/// Single rounding computes `(x*m + 2^(t-1)) >> t`, `t = 31 - shift` up to 62, with an
/// emulated arithmetic shift (`srl(v ^ s, t) ^ s`).
///
/// `mask` holds `2^e - 1` per channel (`e = right`), the remainder mask of the double-rounding
/// division. `may_saturate` is false when no multiplier is `i32::MIN`, the only one for which the
/// `MIN * MIN` patch can fire (multipliers from [`crate::multiplier`] never are); the patch is
/// then skipped.
///
/// `offset`, when given, is added (wrapping) to `acc` first: the zero-point and bias terms of
/// each column, folded into this pass instead of a pass of their own over the accumulators.
///
/// # Safety
/// AVX2 must be available; `offset`, `mult`, `right`, `mask` hold at least `acc.len()` entries;
/// `dst` too.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn requantize_row(
    acc: &[i32],
    offset: Option<&[i32]>,
    mult: &[i32],
    right: &[i32],
    mask: &[i32],
    single: bool,
    may_saturate: bool,
    zout: i32,
    act_min: i32,
    act_max: i32,
    dst: &mut [u8],
) -> usize {
    let n8 = acc.len() / 8 * 8;
    let n = acc.len();
    assert!(mult.len() >= n && right.len() >= n && mask.len() >= n && dst.len() >= n);
    assert!(offset.is_none_or(|o| o.len() >= n));
    let zero = _mm256_setzero_si256();
    let min = _mm256_set1_epi32(i32::MIN);
    let max = _mm256_set1_epi32(i32::MAX);
    let lo = _mm256_set1_epi32(act_min - zout);
    let hi = _mm256_set1_epi32(act_max - zout);
    let z = _mm256_set1_epi32(zout);
    let low32 = _mm256_set1_epi64x(0xFFFF_FFFF);
    let one64 = _mm256_set1_epi64x(1);
    let pack_idx = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    for j in (0..n8).step_by(8) {
        // SAFETY: j + 8 <= n8 <= every slice length.
        unsafe {
            let mut x = _mm256_loadu_si256(acc.as_ptr().add(j) as *const __m256i);
            if let Some(o) = offset {
                x = _mm256_add_epi32(x, _mm256_loadu_si256(o.as_ptr().add(j) as *const __m256i));
            }
            let m = _mm256_loadu_si256(mult.as_ptr().add(j) as *const __m256i);
            let e = _mm256_loadu_si256(right.as_ptr().add(j) as *const __m256i);
            let x_odd = _mm256_srli_epi64(x, 32);
            let m_odd = _mm256_srli_epi64(m, 32);
            let p_even = _mm256_mul_epi32(x, m);
            let p_odd = _mm256_mul_epi32(x_odd, m_odd);
            let r = if single {
                // t = 31 + e in [31, 62], per 64-bit lane.
                let t = _mm256_add_epi32(e, _mm256_set1_epi32(31));
                let t_even = _mm256_and_si256(t, low32);
                let t_odd = _mm256_srli_epi64(t, 32);
                let r_even = _mm256_sllv_epi64(one64, _mm256_sub_epi64(t_even, one64));
                let r_odd = _mm256_sllv_epi64(one64, _mm256_sub_epi64(t_odd, one64));
                // Shifts up to 62 need a true arithmetic 64-bit shift (the low-32-bits argument
                // only holds for t <= 32): sra(v, t) = srl(v ^ s, t) ^ s, s = sign mask.
                let sra = |v: __m256i, t: __m256i| {
                    let sign = _mm256_cmpgt_epi64(zero, v);
                    _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), t), sign)
                };
                let even = sra(_mm256_add_epi64(p_even, r_even), t_even);
                let odd = _mm256_slli_epi64(sra(_mm256_add_epi64(p_odd, r_odd), t_odd), 32);
                let r = _mm256_blend_epi32(even, odd, 0b1010_1010);
                if may_saturate {
                    // MIN * MIN at shift 0 is +2^31: saturate like the scalar version.
                    let sat =
                        _mm256_and_si256(_mm256_cmpeq_epi32(x, min), _mm256_cmpeq_epi32(m, min));
                    let sat = _mm256_and_si256(sat, _mm256_cmpeq_epi32(e, zero));
                    _mm256_blendv_epi8(r, max, sat)
                } else {
                    r
                }
            } else {
                let nudge = _mm256_set1_epi64x(1 << 30);
                let even = _mm256_srli_epi64(_mm256_add_epi64(p_even, nudge), 31);
                let odd = _mm256_slli_epi64(_mm256_add_epi64(p_odd, nudge), 1);
                let mut h = _mm256_blend_epi32(even, odd, 0b1010_1010);
                if may_saturate {
                    let sat =
                        _mm256_and_si256(_mm256_cmpeq_epi32(x, min), _mm256_cmpeq_epi32(m, min));
                    h = _mm256_blendv_epi8(h, max, sat);
                }
                // RoundingDivideByPOT with per-lane exponent e in [0, 31].
                let mask = _mm256_loadu_si256(mask.as_ptr().add(j) as *const __m256i);
                let rem = _mm256_and_si256(h, mask);
                let thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(zero, h));
                _mm256_sub_epi32(_mm256_srav_epi32(h, e), _mm256_cmpgt_epi32(rem, thr))
            };
            // clamp(r + z, act_min, act_max) == clamp(r, act_min - z, act_max - z) + z, with no
            // int32 overflow (matches the scalar saturating add).
            let v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, lo), hi), z);
            let w16 = _mm256_packus_epi32(v, v);
            let w8 = _mm256_packus_epi16(w16, w16);
            let bytes = _mm256_permutevar8x32_epi32(w8, pack_idx);
            _mm_storel_epi64(
                dst.as_mut_ptr().add(j) as *mut __m128i,
                _mm256_castsi256_si128(bytes),
            );
        }
    }
    n8
}
