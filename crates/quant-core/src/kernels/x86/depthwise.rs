//! x86 depthwise kernels: the AVX2 accumulation of two taps at a time with `vpmaddwd`, and the
//! AVX-512 VNNI row kernel of four taps at a time with `vpdpbusd` ([`depthwise_row_quads`]).
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

use super::avx512_vnni::{LaneTables, Requant16};

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

/// Writes `init[ch] + sum_t src[t][ch] * w[t][ch]` to `acc[ch]` for every channel of the
/// `groups` full groups, where `src[t]` is the input pixel of tap `t` (or a pixel of the zero
/// point for a padded tap) and `init` the per-channel constant of the zero-point expansion.
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

/// Channels per block of the AVX-512 VNNI row kernel (one zmm load of uint8 inputs per tap).
pub const QUAD_BLOCK: usize = 64;

/// Position, within a block of 64, of the value of channel `ch` in the quad order: the byte and
/// word unpacks of [`depthwise_row_quads`] leave channel `16l + 4j + i` in register `j`, 128-bit
/// lane `l`, lane element `i`, that is at `16j + 4l + i`. The map swaps `j` and `l`, so it is its
/// own inverse.
#[inline]
pub(crate) fn quad_slot(ch: usize) -> usize {
    let (l, j, i) = (ch / 16 % 4, ch / 4 % 4, ch % 4);
    ch / QUAD_BLOCK * QUAD_BLOCK + 16 * j + 4 * l + i
}

/// Output pixels one step of [`depthwise_row_quads`] covers per block: 1, or for a thin layer
/// (fewer than 64 channels) `64 / channels`. A thin layer fills the block with that many adjacent
/// pixels, whose channels are adjacent in NHWC, so the block's lanes are not mostly idle (a layer
/// of 8 channels used 1/8 of them); its weights and tables repeat across the block.
pub(crate) fn pixels_per_block(channels: usize) -> usize {
    (QUAD_BLOCK / channels).max(1)
}

/// The channel whose weights and constants lane `v` (over whole blocks of 64) holds, in channel
/// order before [`quad_slot`]: `v` itself, or for a thin layer `v % channels`, lane `v` then
/// serving pixel `v / channels` of a step ([`pixels_per_block`]); `None` for padding lanes.
fn lane_channel(v: usize, channels: usize) -> Option<usize> {
    (v < pixels_per_block(channels) * channels).then_some(v % channels)
}

/// Per-channel values (one per channel) laid out for [`depthwise_row_quads`]: each lane's channel
/// ([`lane_channel`]) permuted by [`quad_slot`], zero padded to whole blocks of 64 lanes.
pub(crate) fn quad_table(values: &[i32]) -> Vec<i32> {
    let mut out = vec![0; values.len().div_ceil(QUAD_BLOCK) * QUAD_BLOCK];
    for v in 0..out.len() {
        if let Some(ch) = lane_channel(v, values.len()) {
            out[quad_slot(v)] = values[ch];
        }
    }
    out
}

/// Packs `[ky][kx][channel]` int8 weights for [`depthwise_row_quads`]: per block of 64 lanes
/// (the last one zero padded; a thin layer's channels repeated, [`lane_channel`]), per kernel row
/// `ky` and per quad `q` of its taps (`kx` in `4q..4q + 4`, missing taps as zero weights), four
/// zmm in the quad order of [`quad_slot`], each lane as its channel's four taps' bytes.
pub fn pack_row_quads(
    weights: &[i8],
    kernel_h: usize,
    kernel_w: usize,
    channels: usize,
) -> Vec<i8> {
    let quads = kernel_w.div_ceil(4);
    let blocks = channels.div_ceil(QUAD_BLOCK);
    let mut out = vec![0i8; blocks * kernel_h * quads * 4 * QUAD_BLOCK];
    for v in 0..blocks * QUAD_BLOCK {
        let Some(ch) = lane_channel(v, channels) else {
            continue;
        };
        let (b, slot) = (v / QUAD_BLOCK, quad_slot(v) % QUAD_BLOCK);
        for ky in 0..kernel_h {
            for kx in 0..kernel_w {
                let quad = (b * kernel_h + ky) * quads + kx / 4;
                out[(quad * QUAD_BLOCK + slot) * 4 + kx % 4] =
                    weights[(ky * kernel_w + kx) * channels + ch];
            }
        }
    }
    out
}

/// The tables of one [`depthwise_row_quads`] call, each in the quad order of [`quad_slot`].
pub(crate) struct QuadTables {
    /// Per-channel constant of the zero-point expansion (bias - Za*sum(w) + T*Za*Zw),
    /// [`quad_table`] of it.
    pub offset: Vec<i32>,
    /// Weight zero points ([`quad_table`]), when some is not 0 (then `Zw * sum(a)` is
    /// subtracted per pixel).
    pub zero_points: Option<Vec<i32>>,
}

/// What [`depthwise_row_quads`] makes of each pixel's accumulators: [`RequantizedCodes`] or
/// [`Accumulators`].
pub(crate) trait QuadStore {
    /// The output element.
    type Elem;

    /// Stores the 64 channel sums of block `block` (registers in the quad order of [`quad_slot`])
    /// at `dst`, its first `lanes` channels.
    ///
    /// # Safety
    /// AVX-512F and BW must be available; `dst` must hold `lanes` elements and the tables the block.
    unsafe fn store(&self, sums: [__m512i; 4], block: usize, lanes: usize, dst: *mut Self::Elem);
}

/// Codes, requantized in registers by `stage` with the channels' constants `lanes` (quad order).
/// Both are held by value, so that the row kernel, which reads them through its `store` argument,
/// keeps the stage's constants in registers and the tables' address hoisted across its stores.
pub(crate) struct RequantizedCodes {
    pub lanes: LaneTables,
    pub stage: Requant16,
}

impl QuadStore for RequantizedCodes {
    type Elem = u8;

    #[inline(always)]
    unsafe fn store(&self, sums: [__m512i; 4], block: usize, lanes: usize, dst: *mut u8) {
        // SAFETY: as the caller guarantees.
        unsafe {
            let mut r = [_mm512_setzero_si512(); 4];
            for (j, r) in r.iter_mut().enumerate() {
                *r = self
                    .stage
                    .quotients(sums[j], self.lanes.block(block * QUAD_BLOCK + 16 * j));
            }
            // Per 128-bit lane `l` the packs gather channels 16l..16l + 16 in order.
            let bytes = self.stage.narrow(r);
            _mm512_mask_storeu_epi8(dst as *mut i8, lane_mask(lanes), bytes);
        }
    }
}

/// The int32 accumulators themselves, moved back to channel order: register `j`, lane `l` holds
/// channels `16l + 4j ..`, so the 16 channels from `16m` are lane `m` of the four registers (a
/// transpose of 128-bit lanes).
pub(crate) struct Accumulators;

impl QuadStore for Accumulators {
    type Elem = i32;

    #[inline(always)]
    unsafe fn store(&self, [s0, s1, s2, s3]: [__m512i; 4], _: usize, lanes: usize, dst: *mut i32) {
        // SAFETY: as the caller guarantees.
        unsafe {
            // Lanes 0-1 and 2-3 of each pair of registers, then lane m of all four.
            let (t0, t1) = (
                _mm512_shuffle_i32x4::<0x44>(s0, s1),
                _mm512_shuffle_i32x4::<0xEE>(s0, s1),
            );
            let (t2, t3) = (
                _mm512_shuffle_i32x4::<0x44>(s2, s3),
                _mm512_shuffle_i32x4::<0xEE>(s2, s3),
            );
            let ordered = [
                _mm512_shuffle_i32x4::<0x88>(t0, t2),
                _mm512_shuffle_i32x4::<0xDD>(t0, t2),
                _mm512_shuffle_i32x4::<0x88>(t1, t3),
                _mm512_shuffle_i32x4::<0xDD>(t1, t3),
            ];
            for (m, v) in ordered.into_iter().enumerate() {
                let left = lanes.saturating_sub(16 * m).min(16);
                if left == 0 {
                    break;
                }
                let mask: __mmask16 = ((1u32 << left) - 1) as u16;
                _mm512_mask_storeu_epi32(dst.add(16 * m), mask, v);
            }
        }
    }
}

/// The mask of the first `lanes` of 64 bytes.
#[inline(always)]
fn lane_mask(lanes: usize) -> __mmask64 {
    if lanes >= 64 { !0 } else { (1u64 << lanes) - 1 }
}

/// One output row of a depthwise convolution on AVX-512 VNNI, requantized in registers: per
/// block of 64 channels and output pixel (or run of adjacent pixels of a thin layer,
/// [`pixels_at`]), every kernel row's taps are interleaved four at a time
/// (two rounds of byte and word unpacks) into the u8 quads that one `vpdpbusd` multiplies with
/// the matching int8 weight quads and adds into int32, exactly (four products of at most
/// `255 * 128`; at most [`crate::kernels::MAX_DEPTH`] taps fit int32). The sums stay in the
/// unpacks' channel order ([`quad_slot`]), which is also the order the two saturating packs of the
/// narrowing put back into channel order, so neither side needs a lane transpose; the tables
/// follow that order.
///
/// `rows[ky]` is the input row of kernel row `ky` (`in_w * channels` bytes) or `None` in the
/// padding; padded columns and rows read the input zero point `za`, as the expansion assumes.
/// `store` writes each pixel's channels to `dst` (`out_w * channels` elements): codes or
/// accumulators.
///
/// # Safety
/// AVX-512F, BW and VNNI must be available; `packed` is [`pack_row_quads`] of this kernel and
/// `channels`, every table covers `channels.div_ceil(64) * 64` entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn depthwise_row_quads<S: QuadStore>(
    rows: &[Option<&[u8]>],
    g: &crate::kernels::ConvGeometry,
    packed: &[i8],
    tables: &QuadTables,
    za: u8,
    store: &S,
    dst: &mut [S::Elem],
) {
    // The stride-2 gather is compiled only into the loop of the layers that use it: its branch
    // and index register in every tap slowed the 128-channel layer of the benchmark by 15 %.
    // SAFETY: as the caller guarantees.
    unsafe {
        if gathers(g) {
            row_quads::<S, true>(rows, g, packed, tables, za, store, dst)
        } else {
            row_quads::<S, false>(rows, g, packed, tables, za, store, dst)
        }
    }
}

/// [`depthwise_row_quads`], with the stride-2 steps of a thin layer where `GATHER`.
///
/// # Safety
/// As [`depthwise_row_quads`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_quads<S: QuadStore, const GATHER: bool>(
    rows: &[Option<&[u8]>],
    g: &crate::kernels::ConvGeometry,
    packed: &[i8],
    tables: &QuadTables,
    za: u8,
    store: &S,
    dst: &mut [S::Elem],
) {
    let (c, kw, ow) = (g.in_c, g.kernel_w, g.out_w());
    let quads = kw.div_ceil(4);
    let blocks = c.div_ceil(QUAD_BLOCK);
    let padded = blocks * QUAD_BLOCK;
    assert_eq!(rows.len(), g.kernel_h);
    assert!(rows.iter().flatten().all(|r| r.len() >= g.in_w * c));
    assert!(packed.len() >= blocks * rows.len() * quads * 4 * QUAD_BLOCK);
    assert!(tables.offset.len() >= padded);
    assert!(
        tables
            .zero_points
            .as_ref()
            .is_none_or(|z| z.len() >= padded)
    );
    assert!(dst.len() >= ow * c);
    // SAFETY: AVX-512F, BW and VNNI are enabled here. Every input load is masked to the channels
    // of the block inside a row of `in_w * c` bytes at a column below `in_w` (asserted above), or
    // for a step of several pixels to their `pixels * c` bytes, whose last column is below `in_w`
    // too (`pixels_at`); weight and table loads stay inside the padded lengths asserted above;
    // the store is masked to the step's lanes of pixels below `ow` in `dst`.
    unsafe {
        let zav = _mm512_set1_epi8(za as i8);
        let spread = if GATHER {
            _mm512_loadu_si512(stride2_spread(c).as_ptr() as *const __m512i)
        } else {
            _mm512_setzero_si512()
        };
        for b in 0..blocks {
            let table = |t: &[i32], j: usize| {
                _mm512_loadu_si512(t.as_ptr().add(b * QUAD_BLOCK + 16 * j) as *const __m512i)
            };
            let weights = packed[b * rows.len() * quads * 4 * QUAD_BLOCK..].as_ptr();
            let mut ox = 0;
            while ox < ow {
                // A step of several pixels loads each tap as the adjacent pixels' bytes: their
                // windows lie inside the row (`pixels_at`), so every column below is too.
                let pixels = pixels_at(g, ox);
                let lanes = if pixels > 1 {
                    pixels * c
                } else {
                    c - b * QUAD_BLOCK
                };
                let mask = lane_mask(lanes);
                let mut sums = [_mm512_setzero_si512(); 4];
                for (j, s) in sums.iter_mut().enumerate() {
                    *s = table(&tables.offset, j);
                }
                let mut asum = [_mm512_setzero_si512(); 4];
                for (ky, row) in rows.iter().enumerate() {
                    for q in 0..quads {
                        // The four taps' input bytes for the block's channels (`za` outside
                        // the image, and beyond the kernel where the weight is 0); a column
                        // left of the padding wraps around to a huge index and fails `< in_w`.
                        let x = match row {
                            None => [zav; 4],
                            Some(row) => {
                                let mut t = [zav; 4];
                                for (i, t) in t.iter_mut().enumerate() {
                                    let kx = 4 * q + i;
                                    let ix = (ox * g.stride_w + kx).wrapping_sub(g.pad_left);
                                    if kx < kw && ix < g.in_w {
                                        let at = row.as_ptr().add(ix * c + b * QUAD_BLOCK);
                                        *t = if GATHER && pixels > 1 {
                                            strided_pixels(at, (g.in_w - ix) * c, spread)
                                        } else {
                                            _mm512_mask_loadu_epi8(zav, mask, at as *const i8)
                                        };
                                    }
                                }
                                interleave_quads(t)
                            }
                        };
                        let w = weights.add((ky * quads + q) * 4 * QUAD_BLOCK);
                        for j in 0..4 {
                            let wj = _mm512_loadu_si512(w.add(j * QUAD_BLOCK) as *const __m512i);
                            sums[j] = _mm512_dpbusd_epi32(sums[j], x[j], wj);
                            if tables.zero_points.is_some() {
                                // sum(a) over the kernel's taps: `vpdpbusd` against ones at
                                // the quad bytes of taps `kx < kw`.
                                asum[j] = _mm512_dpbusd_epi32(asum[j], x[j], real_taps(kw, q));
                            }
                        }
                    }
                }
                if let Some(zw) = &tables.zero_points {
                    for j in 0..4 {
                        let term = _mm512_mullo_epi32(table(zw, j), asum[j]);
                        sums[j] = _mm512_sub_epi32(sums[j], term);
                    }
                }
                let at = dst.as_mut_ptr().add(ox * c + b * QUAD_BLOCK);
                store.store(sums, b, lanes, at);
                ox += pixels;
            }
        }
    }
}

/// Output pixels the row kernel's step at `ox` covers: [`pixels_per_block`] of them (fewer at the
/// end of the run) where the layer is thin, the windows from `ox` on lie inside the row and the
/// stride is 1 (each tap of the step is then one load of adjacent pixels) or 2 with whole 4-byte
/// pixels (two loads and a dword permutation, [`strided_pixels`]); otherwise 1 (a window that
/// meets the padding loads its taps pixel by pixel).
pub(crate) fn pixels_at(g: &crate::kernels::ConvGeometry, ox: usize) -> usize {
    let per_block = pixels_per_block(g.in_c);
    let steps = g.stride_w == 1 || gathers(g);
    // The first and last output pixels whose windows lie inside the row.
    let first = g.pad_left.div_ceil(g.stride_w);
    match (g.in_w + g.pad_left).checked_sub(g.kernel_w) {
        Some(end) if per_block > 1 && steps && (first..=end / g.stride_w).contains(&ox) => {
            per_block.min(end / g.stride_w - ox + 1)
        }
        _ => 1,
    }
}

/// Whether the row kernel gathers stride-2 steps of several pixels: a thin layer of whole dwords.
fn gathers(g: &crate::kernels::ConvGeometry) -> bool {
    g.stride_w == 2 && pixels_per_block(g.in_c) > 1 && g.in_c.is_multiple_of(4)
}

/// The dword permutation that gathers a stride-2 step's pixels, `pixels_per_block(channels)` of
/// `channels` bytes every `2 * channels` bytes, from two adjacent 64-byte loads into adjacent
/// lanes (`vpermt2d` indices, bit 4 picking the second load). `channels` is a multiple of 4
/// below 64 ([`pixels_at`]).
pub(crate) fn stride2_spread(channels: usize) -> [i32; 16] {
    let (dwords, pixels) = (channels / 4, pixels_per_block(channels));
    std::array::from_fn(|d| {
        let (p, w) = (d / dwords, d % dwords);
        if p < pixels {
            (2 * p * dwords + w) as i32
        } else {
            0
        }
    })
}

/// The bytes of one tap for a stride-2 step: two loads from `at`, masked to the `left` bytes
/// that remain in the row, permuted by [`stride2_spread`] so that lane `v` holds byte `v % C` of
/// pixel `v / C`.
///
/// # Safety
/// AVX-512F and BW must be available; `at` must point to `left` readable bytes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn strided_pixels(at: *const u8, left: usize, spread: __m512i) -> __m512i {
    // SAFETY: both loads are masked to the `left` readable bytes from `at` (the second pointer
    // is only formed, not read, where none remain beyond the first 64).
    unsafe {
        let first = _mm512_maskz_loadu_epi8(lane_mask(left), at as *const i8);
        let second = _mm512_maskz_loadu_epi8(
            lane_mask(left.saturating_sub(64)),
            at.wrapping_add(64) as *const i8,
        );
        _mm512_permutex2var_epi32(first, spread, second)
    }
}

/// Ones at the quad bytes (`kx % 4`) of the taps `kx = 4q + i < kw` of quad `q`, zeros elsewhere.
#[inline(always)]
fn real_taps(kw: usize, q: usize) -> __m512i {
    let word = (0..4).fold(
        0u32,
        |w, i| if 4 * q + i < kw { w | 1 << (8 * i) } else { w },
    );
    // SAFETY: the callers run with AVX-512F enabled.
    unsafe { _mm512_set1_epi32(word as i32) }
}

/// Interleaves the 64 channel bytes of four taps into `vpdpbusd` quads: register `j`, lane `l`,
/// element `i` holds channel `16l + 4j + i` as its four taps' bytes ([`quad_slot`]).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn interleave_quads([t0, t1, t2, t3]: [__m512i; 4]) -> [__m512i; 4] {
    let (lo01, hi01) = (_mm512_unpacklo_epi8(t0, t1), _mm512_unpackhi_epi8(t0, t1));
    let (lo23, hi23) = (_mm512_unpacklo_epi8(t2, t3), _mm512_unpackhi_epi8(t2, t3));
    [
        _mm512_unpacklo_epi16(lo01, lo23),
        _mm512_unpackhi_epi16(lo01, lo23),
        _mm512_unpacklo_epi16(hi01, hi23),
        _mm512_unpackhi_epi16(hi01, hi23),
    ]
}
