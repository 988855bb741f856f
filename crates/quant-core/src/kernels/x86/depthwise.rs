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
/// groups, where `src[t]` is the input pixel of tap `t` (or a pixel of the zero point for a padded
/// tap) and `init` the per-channel constant of the zero-point expansion.
///
/// # Safety
/// AVX2 must be available; `packed` is [`pack_pairs`] of `src.len()` taps and at least
/// `groups * GROUP` channels; every `src[t]`, `init` and `acc` hold at least that many.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn accumulate_groups(
    src: &[&[u8]],
    packed: &[i16],
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
    for g in 0..groups {
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
