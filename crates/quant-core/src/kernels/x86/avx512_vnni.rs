//! AVX-512 VNNI microkernel, 8 x 32, `vpdpbusd`: uint8 activations x int8 weights, four
//! products summed straight into each int32 lane with no intermediate saturation (dossier §5.6).
//! This is exactly the engine's u8-activation / s8-weight convention, so no operand shifting is
//! needed inside the kernel; int8 activations reach it through the +128 shift (see
//! [`crate::kernels`]), compensated by the zero-point/column-sum terms.
//!
//! Layout: weights in panels of 32 columns, each K quad `q` holding
//! `[w[4q..4q+4, j]]` for `j` in the panel (128 bytes = two zmm, zero padded in K and N);
//! activations in blocks of 8 rows kept **row-major** with the row length padded to a multiple of
//! 4 (`kq * 4` bytes), so the quad `a[r, 4q..4q+4]` that one `vpdpbusd` broadcasts is the 32-bit
//! word at `r * kq * 4 + 4q`.
//!
//! Why row-major and not quad-interleaved across rows: with four times the multiply rate of the
//! AVX2 path, a byte-by-byte interleave cost more than the products when `N` is small (65 % of a
//! 3136 x 288 x 64 GEMM on a Sapphire Rapids Xeon). Row-major blocks are a plain copy, and when
//! `K` is already a multiple of 4 they are the caller's rows themselves ([`Kernel::borrow_a`]), so
//! a stored GEMM or an im2col block is multiplied where it lies.
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
    pack_quads(w, k, n, k)
}

/// [`pack_b`] with the depth zero-padded to `depth >= k` (the AMX kernel's whole tile steps): panels
/// of [`NR`] columns, each holding `depth / 4` quads of four consecutive `k` per column.
pub(crate) fn pack_quads(w: &[i8], k: usize, n: usize, depth: usize) -> Vec<i8> {
    let kq = depth.div_ceil(4);
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
        let stride = k.div_ceil(4) * 4;
        for (r, dst_row) in dst.chunks_exact_mut(stride).take(MR).enumerate() {
            let (head, pad) = dst_row.split_at_mut(k);
            if r < rows {
                head.copy_from_slice(&a[r * k..(r + 1) * k]);
            } else {
                head.fill(0);
            }
            pad.fill(0);
        }
    }

    fn borrow_a(a: &[u8], rows: usize, k: usize, _panels: usize) -> Option<&[u8]> {
        (rows == MR && k.is_multiple_of(4)).then_some(a)
    }

    unsafe fn tile(a: &[u8], _lda: usize, b: &[i8], k: usize, c: &mut [i32], ldc: usize) {
        // SAFETY: forwarded contract (AVX-512F + VNNI present, slice lengths as documented).
        unsafe { tile_vnni(a, b, k, c, ldc) }
    }
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_vnni(a: &[u8], b: &[i8], k: usize, tile: &mut [i32], ldc: usize) {
    let kq = k.div_ceil(4);
    assert!(
        a.len() >= kq * MR * 4
            && b.len() >= kq * NR * 4
            && ldc >= NR
            && tile.len() >= (MR - 1) * ldc + NR
    );
    let mut c = [[_mm512_setzero_si512(); 2]; MR];
    let rows: [*const u8; MR] = std::array::from_fn(|r| a[r * kq * 4..].as_ptr());
    let bp = b.as_ptr();
    for q in 0..kq {
        // SAFETY: q < kq, so the reads stay inside the packed block (row r spans
        // `r * kq * 4..(r + 1) * kq * 4`) and the panel.
        unsafe {
            let b0 = _mm512_loadu_si512(bp.add(q * NR * 4) as *const __m512i);
            let b1 = _mm512_loadu_si512(bp.add(q * NR * 4 + 64) as *const __m512i);
            for (row, cr) in rows.iter().zip(c.iter_mut()) {
                let quad = (row.add(q * 4) as *const i32).read_unaligned();
                let av = _mm512_set1_epi32(quad);
                cr[0] = _mm512_dpbusd_epi32(cr[0], av, b0);
                cr[1] = _mm512_dpbusd_epi32(cr[1], av, b1);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: row r < MR ends at r * ldc + NR <= tile.len() (asserted).
        unsafe {
            _mm512_storeu_si512(tile.as_mut_ptr().add(r * ldc) as *mut __m512i, cr[0]);
            _mm512_storeu_si512(tile.as_mut_ptr().add(r * ldc + 16) as *mut __m512i, cr[1]);
        }
    }
}

/// The output stage of [`crate::kernels::x86::avx2::requantize_row`] on 16 lanes, with the same
/// contract and the same arithmetic (bit-exact with
/// [`crate::kernels::OutputStage::requantize`] for shifts in `[-31, 0]`), covering the whole row:
/// the last `len % 16` channels run in a masked iteration instead of the scalar loop.
///
/// AVX-512 has what AVX2 lacks: a true 64-bit arithmetic shift (`vpsravq`) for the single-rounding
/// division by up to `2^62`, compare results as lane masks (the rounding increments become masked
/// adds), and a narrowing store (`vpmovdb`) that replaces the pack-and-permute sequence.
///
/// # Safety
/// AVX-512F and AVX-512BW must be available; `offset` (when given), `mult`, `right`, `mask` and
/// `dst` hold at least `acc.len()` entries.
#[target_feature(enable = "avx512f,avx512bw")]
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
    let n = acc.len();
    assert!(mult.len() >= n && right.len() >= n && mask.len() >= n && dst.len() >= n);
    assert!(offset.is_none_or(|o| o.len() >= n));
    let stage = Requant16::new(single, may_saturate, zout, act_min, act_max);
    // The output codes of channels `j..j + 16` (the `lanes` present), as int32 in
    // `[act_min, act_max]`.
    let codes = |j: usize, lanes: __mmask16| -> __m512i {
        // SAFETY: the mask limits every load to indices below n <= each length.
        unsafe {
            let load = |s: &[i32]| _mm512_maskz_loadu_epi32(lanes, s.as_ptr().add(j));
            let mut x = load(acc);
            if let Some(o) = offset {
                x = _mm512_add_epi32(x, load(o));
            }
            stage.codes(x, load(mult), load(right), load(mask))
        }
    };
    // Whole 64-channel runs: four vectors narrowed by two saturating packs (exact, the codes are
    // already in [0, 255]) and one dword permutation, one 64-byte store; `vpmovdb` costs two
    // shuffle-port uops per vector, which the packs halve in this port-bound loop.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let n64 = n / 64 * 64;
    for j in (0..n64).step_by(64) {
        let v = [
            codes(j, !0),
            codes(j + 16, !0),
            codes(j + 32, !0),
            codes(j + 48, !0),
        ];
        let words = (
            _mm512_packs_epi32(v[0], v[1]),
            _mm512_packs_epi32(v[2], v[3]),
        );
        // Per 128-bit lane `l`: the bytes of v[0..4] lane `l`, four dwords; `order` gathers
        // each vector's four dwords back into channel order.
        let bytes = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(words.0, words.1));
        // SAFETY: j + 64 <= n <= dst.len().
        unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(j) as *mut __m512i, bytes) };
    }
    for j in (n64..n).step_by(16) {
        let lanes: __mmask16 = if n - j >= 16 {
            !0
        } else {
            (1u16 << (n - j)) - 1
        };
        let v = codes(j, lanes);
        // SAFETY: the mask limits the store to indices below n <= dst.len().
        unsafe { _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().add(j) as *mut i8, lanes, v) };
    }
    n
}

/// The 16-lane output stage of [`requantize_row`], its constants broadcast once: shared by the
/// row requantization and the fused depthwise kernel, which feeds it accumulators in registers.
pub(crate) struct Requant16 {
    single: bool,
    may_saturate: bool,
    /// `act_min - zout` and `act_max - zout`, the clamp before the zero point is added.
    lo: __m512i,
    hi: __m512i,
    zout: __m512i,
}

impl Requant16 {
    /// Broadcasts the per-call constants (see [`requantize_row`] for the arguments).
    #[target_feature(enable = "avx512f")]
    pub(crate) fn new(
        single: bool,
        may_saturate: bool,
        zout: i32,
        act_min: i32,
        act_max: i32,
    ) -> Self {
        Requant16 {
            single,
            may_saturate,
            lo: _mm512_set1_epi32(act_min - zout),
            hi: _mm512_set1_epi32(act_max - zout),
            zout: _mm512_set1_epi32(zout),
        }
    }

    /// The output codes, as int32 in `[act_min, act_max]`, of the accumulators `x` with their
    /// channels' multipliers `m`, right shifts `e` and masks `2^e - 1` (`mk`, read by the double
    /// rounding only), lane by lane.
    ///
    /// # Safety
    /// AVX-512F and AVX-512BW must be available.
    #[inline(always)]
    pub(crate) unsafe fn codes(&self, x: __m512i, m: __m512i, e: __m512i, mk: __m512i) -> __m512i {
        const ODD: __mmask16 = 0b1010_1010_1010_1010;
        // SAFETY: the caller guarantees AVX-512F and BW; no memory is touched.
        unsafe {
            let zero = _mm512_setzero_si512();
            let one = _mm512_set1_epi32(1);
            let min = _mm512_set1_epi32(i32::MIN);
            let max = _mm512_set1_epi32(i32::MAX);
            let p_even = _mm512_mul_epi32(x, m);
            let p_odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32));
            let saturated = || _mm512_cmpeq_epi32_mask(x, min) & _mm512_cmpeq_epi32_mask(m, min);
            let r = if self.single {
                // t = 31 + e in [31, 62] per 64-bit lane; (p + 2^(t-1)) >> t, arithmetic.
                let t = _mm512_add_epi32(e, _mm512_set1_epi32(31));
                let t_even = _mm512_and_si512(t, _mm512_set1_epi64(0xFFFF_FFFF));
                let t_odd = _mm512_srli_epi64(t, 32);
                let one64 = _mm512_set1_epi64(1);
                let round = |t: __m512i| _mm512_sllv_epi64(one64, _mm512_sub_epi64(t, one64));
                let even = _mm512_srav_epi64(_mm512_add_epi64(p_even, round(t_even)), t_even);
                let odd = _mm512_srav_epi64(_mm512_add_epi64(p_odd, round(t_odd)), t_odd);
                let r = _mm512_mask_blend_epi32(ODD, even, _mm512_slli_epi64(odd, 32));
                if self.may_saturate {
                    // MIN * MIN at shift 0 is +2^31: saturate like the scalar version.
                    let sat = saturated() & _mm512_cmpeq_epi32_mask(e, zero);
                    _mm512_mask_mov_epi32(r, sat, max)
                } else {
                    r
                }
            } else {
                // SRDHM: the low 32 bits of (p + 2^30) >> 31 (see the AVX2 version).
                let nudge = _mm512_set1_epi64(1 << 30);
                let even = _mm512_srli_epi64(_mm512_add_epi64(p_even, nudge), 31);
                let odd = _mm512_slli_epi64(_mm512_add_epi64(p_odd, nudge), 1);
                let mut h = _mm512_mask_blend_epi32(ODD, even, odd);
                if self.may_saturate {
                    h = _mm512_mask_mov_epi32(h, saturated(), max);
                }
                // RoundingDivideByPOT: (h >> e) + (rem > (mask >> 1) + (h < 0)).
                let rem = _mm512_and_si512(h, mk);
                let half = _mm512_srli_epi32(mk, 1);
                let thr = _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(h, zero), half, one);
                let q = _mm512_srav_epi32(h, e);
                _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, one)
            };
            // clamp(r + z, act_min, act_max) == clamp(r, act_min - z, act_max - z) + z, with no
            // int32 overflow (matches the scalar saturating add).
            _mm512_add_epi32(
                _mm512_min_epi32(_mm512_max_epi32(r, self.lo), self.hi),
                self.zout,
            )
        }
    }
}
