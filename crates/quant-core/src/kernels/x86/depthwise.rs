//! AVX2 depthwise accumulation: two taps at a time with `vpmaddwd`.
//!
//! A depthwise layer has no reduction across channels, so the GEMM microkernel does not apply and
//! a plain per-channel loop widens every product to int32 (`vpmulld`, a quarter of the multiply
//! rate). Here the inputs of two taps are widened to int16 and interleaved channel by channel
//! (`vpunpcklwd` / `vpunpckhwd`), so one `vpmaddwd` against the matching weight pairs adds both
//! taps' products for eight channels, exactly (each pair sum is at most `2 * 255 * 128`).
//!
//! Weight layout, per group of 16 channels and per tap pair `t` (taps `2t`, `2t + 1`; an odd last
//! tap is paired with a zero weight): 16 int16 for the "low" register then 16 for the "high" one,
//! in the order the unpacks produce within each 128-bit lane, low = channels 0-3 and 8-11,
//! high = 4-7 and 12-15, each as `[w(2t, ch), w(2t + 1, ch)]`.
#![deny(clippy::float_arithmetic)]

use std::arch::x86_64::*;

/// Channels per group (one 128-bit load of uint8 inputs per tap).
pub const GROUP: usize = 16;

/// Packed int16 weights per group and tap pair: two registers of 8 channels x 2 taps.
const PAIR_LEN: usize = 32;

/// Channel order of the low and high accumulators (per 128-bit lane of the unpacks).
const LOW: [usize; 8] = [0, 1, 2, 3, 8, 9, 10, 11];
/// See [`LOW`].
const HIGH: [usize; 8] = [4, 5, 6, 7, 12, 13, 14, 15];

/// Packs `[tap][channel]` int8 weights into tap-pair groups (see the module docs); only the
/// `channels / GROUP` full groups are packed, the remaining channels take the portable loop.
pub fn pack_pairs(weights: &[i8], taps: usize, channels: usize) -> Vec<i16> {
    let groups = channels / GROUP;
    let pairs = taps.div_ceil(2);
    let mut out = Vec::with_capacity(groups * pairs * PAIR_LEN);
    let w = |tap: usize, ch: usize| {
        if tap < taps {
            i16::from(weights[tap * channels + ch])
        } else {
            0
        }
    };
    for g in 0..groups {
        for t in 0..pairs {
            for order in [LOW, HIGH] {
                for ch in order {
                    out.push(w(2 * t, g * GROUP + ch));
                    out.push(w(2 * t + 1, g * GROUP + ch));
                }
            }
        }
    }
    out
}

/// Writes `init[ch] + sum_t src[t][ch] * w[t][ch]` to `acc[ch]` for every channel of the full
/// groups `first..groups` (the ones before `first` are left to [`accumulate_quads`]), where `src[t]` is the input pixel of tap `t` (or a pixel of the zero point for a padded
/// tap) and `init` the per-channel constant of the zero-point expansion.
///
/// # Safety
/// AVX2 must be available; `packed` is [`pack_pairs`] of `src.len()` taps and at least
/// `groups * GROUP` channels; every `src[t]`, `init` and `acc` hold at least that many.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn accumulate_groups(
    src: &[&[u8]],
    packed: &[i16],
    first: usize,
    groups: usize,
    init: &[i32],
    acc: &mut [i32],
) {
    let pairs = src.len().div_ceil(2);
    let channels = groups * GROUP;
    assert!(packed.len() >= groups * pairs * PAIR_LEN);
    assert!(init.len() >= channels && acc.len() >= channels);
    assert!(src.iter().all(|s| s.len() >= channels));
    let (even, odd) = src.split_at(src.len() / 2 * 2);
    for g in first..groups {
        let wg = &packed[g * pairs * PAIR_LEN..][..pairs * PAIR_LEN];
        // SAFETY: every source holds `channels` bytes and `init` / `acc` `channels` int32
        // (asserted); each pair of `wg` holds PAIR_LEN int16.
        unsafe {
            let load = |s: &[u8]| {
                _mm256_cvtepu8_epi16(_mm_loadu_si128(s.as_ptr().add(g * GROUP) as *const __m128i))
            };
            let madd_pair = |(lo, hi): (__m256i, __m256i), x0: __m256i, x1: __m256i, w: &[i16]| {
                let w_lo = _mm256_loadu_si256(w.as_ptr() as *const __m256i);
                let w_hi = _mm256_loadu_si256(w.as_ptr().add(16) as *const __m256i);
                (
                    _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w_lo)),
                    _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w_hi)),
                )
            };
            let zero = _mm256_setzero_si256();
            let mut sums = (zero, zero);
            for (taps, w) in even.chunks_exact(2).zip(wg.chunks_exact(PAIR_LEN)) {
                sums = madd_pair(sums, load(taps[0]), load(taps[1]), w);
            }
            if let Some(last) = odd.first() {
                sums = madd_pair(sums, load(last), zero, &wg[(pairs - 1) * PAIR_LEN..]);
            }
            // lo = channels [0-3 | 8-11], hi = [4-7 | 12-15]: swap 128-bit halves into order.
            let (lo, hi) = sums;
            let first = _mm256_permute2x128_si256(lo, hi, 0x20);
            let second = _mm256_permute2x128_si256(lo, hi, 0x31);
            let base = init.as_ptr().add(g * GROUP);
            let dst = acc.as_mut_ptr().add(g * GROUP);
            let first = _mm256_add_epi32(first, _mm256_loadu_si256(base as *const __m256i));
            let second =
                _mm256_add_epi32(second, _mm256_loadu_si256(base.add(8) as *const __m256i));
            _mm256_storeu_si256(dst as *mut __m256i, first);
            _mm256_storeu_si256(dst.add(8) as *mut __m256i, second);
        }
    }
}

/// Channels per block of the AVX-512 VNNI accumulation (one zmm load of uint8 inputs per tap).
pub const QUAD_BLOCK: usize = 64;

/// Packs `[tap][channel]` int8 weights for [`accumulate_quads`]: per block of 64 channels and per
/// tap quad `q` (taps `4q..4q + 4`, missing taps as zero weights), four zmm of weights, register
/// `j` holding in 128-bit lane `l` the channels `16l + 4j .. 16l + 4j + 4`, each as its four taps'
/// bytes — the order in which the byte and word unpacks of the inputs leave them. Only the
/// `channels / 64` full blocks are packed.
pub fn pack_quads(weights: &[i8], taps: usize, channels: usize) -> Vec<i8> {
    let blocks = channels / QUAD_BLOCK;
    let quads = taps.div_ceil(4);
    let mut out = Vec::with_capacity(blocks * quads * 4 * 64);
    for b in 0..blocks {
        for q in 0..quads {
            for j in 0..4 {
                for l in 0..4 {
                    for i in 0..4 {
                        let ch = b * QUAD_BLOCK + 16 * l + 4 * j + i;
                        for t in 4 * q..4 * q + 4 {
                            out.push(if t < taps {
                                weights[t * channels + ch]
                            } else {
                                0
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// [`accumulate_groups`] on blocks of 64 channels with `vpdpbusd`, four taps per int32 lane:
/// the four taps' input bytes of a channel are interleaved by two rounds of unpacks (bytes, then
/// words) into the u8 quads that one `vpdpbusd` multiplies with the matching int8 weight quads
/// and adds into the accumulator, exactly (four products of at most `255 * 128` each). Per tap
/// quad and 64 channels that is four loads, eight unpacks and four `vpdpbusd`, against the AVX2
/// path's two tap pairs of eight 16-channel `vpmaddwd` with their widenings.
///
/// # Safety
/// AVX-512F, BW and VNNI must be available; `packed` is [`pack_quads`] of `src.len()` taps and at
/// least `blocks * 64` channels; every `src[t]`, `init` and `acc` hold at least that many.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn accumulate_quads(
    src: &[&[u8]],
    packed: &[i8],
    blocks: usize,
    init: &[i32],
    acc: &mut [i32],
) {
    let quads = src.len().div_ceil(4);
    let channels = blocks * QUAD_BLOCK;
    assert!(packed.len() >= blocks * quads * 4 * 64);
    assert!(init.len() >= channels && acc.len() >= channels);
    assert!(src.iter().all(|s| s.len() >= channels));
    for b in 0..blocks {
        let wb = &packed[b * quads * 4 * 64..][..quads * 4 * 64];
        // SAFETY: every source holds `channels` bytes and `init` / `acc` `channels` int32
        // (asserted); each quad of `wb` holds four zmm of weights.
        unsafe {
            let zero = _mm512_setzero_si512();
            let load = |t: usize| match src.get(t) {
                Some(s) => _mm512_loadu_si512(s.as_ptr().add(b * QUAD_BLOCK) as *const __m512i),
                None => zero,
            };
            let mut sums = [zero; 4];
            for (q, w) in wb.chunks_exact(4 * 64).enumerate() {
                let (t0, t1, t2, t3) = (
                    load(4 * q),
                    load(4 * q + 1),
                    load(4 * q + 2),
                    load(4 * q + 3),
                );
                let (lo01, hi01) = (_mm512_unpacklo_epi8(t0, t1), _mm512_unpackhi_epi8(t0, t1));
                let (lo23, hi23) = (_mm512_unpacklo_epi8(t2, t3), _mm512_unpackhi_epi8(t2, t3));
                let x = [
                    _mm512_unpacklo_epi16(lo01, lo23),
                    _mm512_unpackhi_epi16(lo01, lo23),
                    _mm512_unpacklo_epi16(hi01, hi23),
                    _mm512_unpackhi_epi16(hi01, hi23),
                ];
                for (j, (s, x)) in sums.iter_mut().zip(x).enumerate() {
                    let wj = _mm512_loadu_si512(w.as_ptr().add(j * 64) as *const __m512i);
                    *s = _mm512_dpbusd_epi32(*s, x, wj);
                }
            }
            // sums[j] lane l holds channels 16l + 4j..: a 4 x 4 transpose of 128-bit lanes puts
            // channels 16l..16l + 16 in register l.
            let [s0, s1, s2, s3] = sums;
            let a = _mm512_shuffle_i32x4(s0, s1, 0b01_00_01_00);
            let c = _mm512_shuffle_i32x4(s2, s3, 0b01_00_01_00);
            let e = _mm512_shuffle_i32x4(s0, s1, 0b11_10_11_10);
            let f = _mm512_shuffle_i32x4(s2, s3, 0b11_10_11_10);
            let rows = [
                _mm512_shuffle_i32x4(a, c, 0b10_00_10_00),
                _mm512_shuffle_i32x4(a, c, 0b11_01_11_01),
                _mm512_shuffle_i32x4(e, f, 0b10_00_10_00),
                _mm512_shuffle_i32x4(e, f, 0b11_01_11_01),
            ];
            for (l, r) in rows.into_iter().enumerate() {
                let at = b * QUAD_BLOCK + 16 * l;
                let base = _mm512_loadu_si512(init.as_ptr().add(at) as *const __m512i);
                let dst = acc.as_mut_ptr().add(at) as *mut __m512i;
                _mm512_storeu_si512(dst, _mm512_add_epi32(r, base));
            }
        }
    }
}
