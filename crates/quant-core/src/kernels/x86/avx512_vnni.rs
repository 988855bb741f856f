//! AVX-512 VNNI microkernel, 12 x 32, `vpdpbusd`: uint8 activations x int8 weights, four
//! products summed straight into each int32 lane with no intermediate saturation (dossier §5.6).
//! This is exactly the engine's u8-activation / s8-weight convention, so no operand shifting is
//! needed inside the kernel; int8 activations reach it through the +128 shift (see
//! [`crate::kernels`]), compensated by the zero-point/column-sum terms.
//!
//! Layout: weights in panels of 32 columns, each K quad `q` holding
//! `[w[4q..4q+4, j]]` for `j` in the panel (128 bytes = two zmm, zero padded in K and N);
//! activations in blocks of 12 rows kept **row-major** with the row length padded to a multiple of
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

use crate::kernels::aligned::LineAligned;
use crate::kernels::{MicroKernel, WindowRun};

/// Columns per panel (two zmm registers of int32).
pub const NR: usize = 32;
/// Rows per tile (12 x 2 accumulators of the 32 zmm registers: two weight loads per 24
/// `vpdpbusd`; 8 rows ran 2-12 % slower on every benchmark shape of a Sapphire Rapids class Xeon).
pub const MR: usize = 12;

/// Packs a row-major int8 `K x N` matrix into quad-interleaved panels.
pub fn pack_b(w: &[i8], k: usize, n: usize) -> LineAligned<i8> {
    pack_quads(w, k, n, k)
}

/// [`pack_b`] with the depth zero-padded to `depth >= k` (the AMX kernel's whole tile steps): panels
/// of [`NR`] columns, each holding `depth / 4` quads of four consecutive `k` per column.
pub(crate) fn pack_quads(w: &[i8], k: usize, n: usize, depth: usize) -> LineAligned<i8> {
    let kq = depth.div_ceil(4);
    let panels = n.div_ceil(NR);
    let mut out = LineAligned::zeroed(panels * kq * NR * 4);
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
            // The depth's padding (under 4 bytes) is zeroed by one 4-byte store that the row
            // then overwrites, rather than a `memset` call per row.
            dst_row[stride - 4..].fill(0);
            let head = &mut dst_row[..k];
            if r < rows {
                crate::kernels::copy_run(head, &a[r * k..(r + 1) * k]);
            } else {
                head.fill(0);
            }
        }
    }

    fn borrow_a(a: &[u8], rows: usize, k: usize, _panels: usize) -> Option<&[u8]> {
        (rows == MR && k.is_multiple_of(4)).then_some(a)
    }

    unsafe fn tile(a: &[u8], _lda: usize, b: &[i8], k: usize, c: &mut [i32], ldc: usize) {
        let kq = k.div_ceil(4);
        // SAFETY: forwarded contract (AVX-512F + VNNI present, slice lengths as documented): the
        // block's rows are one segment at stride `kq * 4`.
        unsafe { tile_vnni::<MR, 2>(a, &[0], kq * 4, kq, b, c, ldc) }
    }

    /// Rows rounded up to 4, 8 or 12 and columns to one or two zmm registers (16 or 32).
    unsafe fn tile_edge(
        a: &[u8],
        _lda: usize,
        b: &[i8],
        k: usize,
        c: &mut [i32],
        ldc: usize,
        rows: usize,
        cols: usize,
    ) {
        let kq = k.div_ceil(4);
        let (step, starts) = (kq * 4, &[0]);
        // SAFETY: forwarded contract; each variant reads and writes at most the whole tile's
        // rows and columns.
        unsafe {
            match (rows.div_ceil(4), cols <= 16) {
                (1, true) => tile_vnni::<4, 1>(a, starts, step, kq, b, c, ldc),
                (1, false) => tile_vnni::<4, 2>(a, starts, step, kq, b, c, ldc),
                (2, true) => tile_vnni::<8, 1>(a, starts, step, kq, b, c, ldc),
                (2, false) => tile_vnni::<8, 2>(a, starts, step, kq, b, c, ldc),
                (_, true) => tile_vnni::<MR, 1>(a, starts, step, kq, b, c, ldc),
                (_, false) => tile_vnni::<MR, 2>(a, starts, step, kq, b, c, ldc),
            }
        }
    }

    const READS_WINDOWS: bool = true;

    unsafe fn tile_window(window: &WindowRun, b: &[i8], c: &mut [i32], ldc: usize) {
        let (input, starts, step, seg_len) = window.parts();
        // SAFETY: forwarded contract; `seg_len` is a multiple of 4 (checked by `WindowRun`).
        unsafe { tile_vnni::<MR, 2>(input, starts, step, seg_len / 4, b, c, ldc) }
    }
}

/// The `ROWS x 16 * REGS` corner of the tile (its first `ROWS <= MR` rows and the panel's first
/// one or two zmm of columns) of rows made of segments: row `r` is `a[start + r * step..][..seg_quads * 4]`
/// for each `start` in turn, multiplied with the panel's quads in the same order. A packed or
/// borrowed block is one segment at stride `kq * 4`; a run of convolution windows is one segment
/// per window row, read in place from the input (no im2col copy).
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_vnni<const ROWS: usize, const REGS: usize>(
    a: &[u8],
    starts: &[usize],
    step: usize,
    seg_quads: usize,
    b: &[i8],
    tile: &mut [i32],
    ldc: usize,
) {
    let last_row_end = |&start: &usize| start + (ROWS - 1) * step + seg_quads * 4;
    assert!(
        ROWS <= MR
            && REGS <= 2
            && starts.iter().all(|s| last_row_end(s) <= a.len())
            && b.len() >= starts.len() * seg_quads * NR * 4
            && ldc >= 16 * REGS
            && tile.len() >= (ROWS - 1) * ldc + 16 * REGS
    );
    let mut c = [[_mm512_setzero_si512(); REGS]; ROWS];
    let bp = b.as_ptr();
    for (s, &start) in starts.iter().enumerate() {
        let rows: [*const u8; ROWS] = std::array::from_fn(|r| a[start + r * step..].as_ptr());
        let panel = bp.wrapping_add(s * seg_quads * NR * 4);
        for q in 0..seg_quads {
            // SAFETY: q < seg_quads, so the reads stay inside each row's segment (asserted to
            // end inside `a`) and inside the segment's quads of the panel.
            unsafe {
                let w: [__m512i; REGS] = std::array::from_fn(|g| {
                    _mm512_loadu_si512(panel.add(q * NR * 4 + 64 * g) as *const __m512i)
                });
                for (row, cr) in rows.iter().zip(c.iter_mut()) {
                    let quad = (row.add(q * 4) as *const i32).read_unaligned();
                    let av = _mm512_set1_epi32(quad);
                    for (acc, &wg) in cr.iter_mut().zip(&w) {
                        *acc = _mm512_dpbusd_epi32(*acc, av, wg);
                    }
                }
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        for (g, &v) in cr.iter().enumerate() {
            // SAFETY: row r < ROWS ends at r * ldc + 16 * REGS <= tile.len() (asserted).
            unsafe {
                _mm512_storeu_si512(tile.as_mut_ptr().add(r * ldc + 16 * g) as *mut __m512i, v)
            };
        }
    }
}

/// The output stage of [`crate::kernels::x86::avx2::requantize_row`] on 16 lanes, bit-exact with
/// [`crate::kernels::OutputStage::requantize`] for shifts in `[-31, 0]`, on the rows of `n`
/// channels that `acc` holds, each covered whole: the last `n % 16` channels run in a masked
/// iteration instead of the scalar loop. `tables` holds the channels' constants in channel order.
///
/// # Safety
/// AVX-512F and AVX-512BW must be available (the lengths are asserted: `acc` whole rows,
/// `dst` as long, `offset` one row, `tables` at least `n` channels).
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) unsafe fn requantize_rows(
    acc: &[i32],
    n: usize,
    offset: Option<&[i32]>,
    tables: &LaneTables,
    stage: &Requant16,
    dst: &mut [u8],
) {
    assert!(n > 0 && tables.channels() >= n);
    assert!(acc.len().is_multiple_of(n) && dst.len() == acc.len());
    assert!(offset.is_none_or(|o| o.len() == n));
    // SAFETY: the caller guarantees the features; the lengths are asserted above.
    unsafe {
        match tables.uniform {
            true => rows_with(acc, n, offset, stage, dst, |_| &tables.blocks[0]),
            false => rows_with(acc, n, offset, stage, dst, |j| tables.block(j)),
        }
    }
}

/// [`requantize_rows`] with the channel constants of `j..j + 16` from `block(j)`; generic so
/// that a per-tensor stage's loop reads one block whose loads the compiler hoists.
///
/// # Safety
/// As [`requantize_rows`], whose assertions it relies on.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn rows_with<'t>(
    acc: &[i32],
    n: usize,
    offset: Option<&[i32]>,
    stage: &Requant16,
    dst: &mut [u8],
    block: impl Fn(usize) -> &'t LaneBlock,
) {
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (acc, dst) in acc.chunks_exact(n).zip(dst.chunks_exact_mut(n)) {
        // The quotients of channels `j..j + 16` (the `lanes` present).
        let quotients = |j: usize, lanes: __mmask16| -> __m512i {
            // SAFETY: the mask limits the accumulator and offset loads to indices below n <= each
            // length; the tables cover whole blocks of 16 past n (asserted above).
            unsafe {
                let load = |s: &[i32]| _mm512_maskz_loadu_epi32(lanes, s.as_ptr().add(j));
                let mut x = load(acc);
                if let Some(o) = offset {
                    x = _mm512_add_epi32(x, load(o));
                }
                stage.quotients(x, block(j))
            }
        };
        // Whole 64-channel runs narrowed by [`Requant16::narrow`], whose packs leave 128-bit lane
        // `l` with lane `l` of each of the four vectors; `order` gathers each vector's four dwords
        // back into channel order, one 64-byte store.
        let n64 = n / 64 * 64;
        for j in (0..n64).step_by(64) {
            let r = [
                quotients(j, !0),
                quotients(j + 16, !0),
                quotients(j + 32, !0),
                quotients(j + 48, !0),
            ];
            // SAFETY: AVX-512F and BW are enabled here.
            let bytes = _mm512_permutexvar_epi32(order, unsafe { stage.narrow(r) });
            // SAFETY: j + 64 <= n <= dst.len().
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(j) as *mut __m512i, bytes) };
        }
        for j in (n64..n).step_by(16) {
            let lanes: __mmask16 = if n - j >= 16 {
                !0
            } else {
                (1u16 << (n - j)) - 1
            };
            // SAFETY: AVX-512F is enabled here.
            let v = unsafe { stage.codes(quotients(j, lanes)) };
            // SAFETY: the mask limits the store to indices below n <= dst.len().
            unsafe {
                _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().add(j) as *mut i8, lanes, v)
            };
        }
    }
}

/// Per-channel constants of [`Requant16`], for channels in whatever order the accumulators
/// have (channel order for rows, the quad order of the depthwise kernel), zero padded to whole
/// blocks of 16.
///
/// Both roundings are one 64-bit step: `(x * M + add - [x * M < -2^30] * neg) >> shift`. Single
/// rounding is `add = 2^(30 + e)`, `neg = 0`, `shift = 31 + e`. Double rounding (gemmlowp's
/// `SaturatingRoundingDoublingHighMul`, `h = (p + 2^30) >> 31` as floor division, then
/// `RoundingDivideByPOT(h, e) = (h + 2^(e-1) - [h < 0]) >> e` for `e >= 1`) folds into the same
/// shape because `floor((floor(a / b) + d) / c) = floor((a + d b) / (b c))`: `add = 2^30 +
/// 2^(30 + e)`, `neg = 2^31` (`h < 0` exactly when `p < -2^30`), and `add = 2^30`, `neg = 0`
/// for `e = 0`. Every intermediate fits int64 (`|p| <= 2^62`); the one product the scalar code
/// saturates, `MIN * MIN` at `e = 0`, is patched by [`Requant16::quotients`].
pub(crate) struct LaneTables {
    blocks: Vec<LaneBlock>,
    /// Every channel has the same multiplier and shift (a per-tensor stage, Jacob's case): the
    /// first block then serves every channel, so its constants stay in registers.
    uniform: bool,
}

/// The constants of 16 channels, on whole cache lines so that no table load is split.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(crate) struct LaneBlock {
    /// Multipliers, and the odd channels' multipliers in the even dwords: `vpmuldq` reads the
    /// low dword of each 64-bit lane.
    mult: [i32; 16],
    mult_odd: [i32; 16],
    /// Right shifts `e` (for the saturation patch).
    right: [i32; 16],
    /// The eight even channels' then the eight odd channels' 64-bit constants of the formula.
    add: [i64; 16],
    neg: [i64; 16],
    shift: [i64; 16],
}

impl LaneTables {
    /// Tables of channels with multipliers `mult` and right shifts `right` (each in `[0, 31]`).
    pub(crate) fn new(mult: &[i32], right: &[i32], single: bool) -> Self {
        assert_eq!(mult.len(), right.len());
        assert!(right.iter().all(|e| (0..=31).contains(e)));
        let empty = LaneBlock {
            mult: [0; 16],
            mult_odd: [0; 16],
            right: [0; 16],
            add: [0; 16],
            neg: [0; 16],
            shift: [31; 16],
        };
        let mut blocks = vec![empty; mult.len().div_ceil(16)];
        for (ch, (&m, &e)) in mult.iter().zip(right).enumerate() {
            let (b, lane) = (&mut blocks[ch / 16], ch % 16);
            b.mult[lane] = m;
            b.right[lane] = e;
            if lane % 2 == 1 {
                b.mult_odd[lane - 1] = m;
            }
            // Even channels first, then odd ones.
            let at = (lane % 2) * 8 + lane / 2;
            let (add, neg) = match (single, e) {
                (true, _) => (1i64 << (30 + e), 0),
                (false, 0) => (1 << 30, 0),
                (false, _) => ((1 << 30) + (1i64 << (30 + e)), 1 << 31),
            };
            (b.add[at], b.neg[at], b.shift[at]) = (add, neg, 31 + i64::from(e));
        }
        let uniform =
            mult.windows(2).all(|p| p[0] == p[1]) && right.windows(2).all(|p| p[0] == p[1]);
        LaneTables { blocks, uniform }
    }

    /// The constants of channels `j..j + 16` (`j` a multiple of 16, below [`Self::channels`]).
    #[inline(always)]
    pub(crate) fn block(&self, j: usize) -> &LaneBlock {
        debug_assert!(j.is_multiple_of(16) && j < self.channels());
        &self.blocks[j / 16]
    }

    /// Channels covered (a multiple of 16).
    pub(crate) fn channels(&self) -> usize {
        self.blocks.len() * 16
    }
}

/// The 16-lane requantization: [`LaneTables`] for the per-channel constants, the per-call ones
/// broadcast here once. Shared by the row requantization and the fused depthwise kernel, which
/// feeds it accumulators in registers.
#[derive(Clone, Copy)]
pub(crate) struct Requant16 {
    double: bool,
    may_saturate: bool,
    /// Zero point as int16 lanes and the clamp as byte lanes (the packed narrowing of
    /// [`Requant16::narrow`]).
    zout16: __m512i,
    min8: __m512i,
    max8: __m512i,
    /// `act_min - zout`, `act_max - zout` and `zout` as int32 lanes ([`Requant16::codes`]).
    lo32: __m512i,
    hi32: __m512i,
    zout32: __m512i,
}

impl Requant16 {
    /// Broadcasts the per-call constants; `may_saturate` says whether some multiplier is
    /// `i32::MIN`, `zout`, `act_min` and `act_max` are in `[0, 255]`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(crate) fn new(
        single: bool,
        may_saturate: bool,
        zout: i32,
        act_min: i32,
        act_max: i32,
    ) -> Self {
        Requant16 {
            double: !single,
            may_saturate,
            zout16: _mm512_set1_epi16(zout as i16),
            // Bytes `[0, 255]` as their two's complement bit patterns.
            min8: _mm512_set1_epi8(act_min as u8 as i8),
            max8: _mm512_set1_epi8(act_max as u8 as i8),
            lo32: _mm512_set1_epi32(act_min - zout),
            hi32: _mm512_set1_epi32(act_max - zout),
            zout32: _mm512_set1_epi32(zout),
        }
    }

    /// The requantized values (before the zero point and the clamp) of the accumulators `x`,
    /// whose 16 lanes are the channels of `t` (from [`LaneTables::block`]), as int32.
    ///
    /// # Safety
    /// AVX-512F and AVX-512BW must be available.
    #[inline(always)]
    pub(crate) unsafe fn quotients(&self, x: __m512i, t: &LaneBlock) -> __m512i {
        // SAFETY: the caller guarantees the features; every load reads 64 bytes of `t`.
        unsafe {
            let load = |p: *const i32| _mm512_load_si512(p as *const __m512i);
            let m = load(t.mult.as_ptr());
            let products = [
                _mm512_mul_epi32(x, m),
                _mm512_mul_epi32(_mm512_srli_epi64(x, 32), load(t.mult_odd.as_ptr())),
            ];
            let below = _mm512_set1_epi64(-(1 << 30));
            let mut r = [_mm512_setzero_si512(); 2];
            for (half, (r, p)) in r.iter_mut().zip(products).enumerate() {
                let at = |v: &[i64; 16]| v[8 * half..].as_ptr() as *const i32;
                let mut sum = _mm512_add_epi64(p, load(at(&t.add)));
                if self.double {
                    let neg = _mm512_cmplt_epi64_mask(p, below);
                    sum = _mm512_mask_sub_epi64(sum, neg, sum, load(at(&t.neg)));
                }
                *r = _mm512_srav_epi64(sum, load(at(&t.shift)));
            }
            // Low dwords of the even lanes' then the odd lanes' results, interleaved back.
            let pick = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
            let q = _mm512_permutex2var_epi32(r[0], pick, r[1]);
            if self.may_saturate {
                // MIN * MIN at shift 0 is +2^31, which the scalar code saturates to MAX.
                let min = _mm512_set1_epi32(i32::MIN);
                let e = load(t.right.as_ptr());
                let sat = _mm512_cmpeq_epi32_mask(x, min)
                    & _mm512_cmpeq_epi32_mask(m, min)
                    & _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512());
                _mm512_mask_mov_epi32(q, sat, _mm512_set1_epi32(i32::MAX))
            } else {
                q
            }
        }
    }

    /// Output codes of four vectors of quotients, narrowed to 64 bytes: the saturating packs
    /// put in 128-bit lane `l` lane `l` of each vector in turn; the zero point is added to the
    /// int16 words between the two packs and the clamp applied to the bytes after them (exact:
    /// saturating the quotient to int16, the sum with `zout` to int16 and then to `[0, 255]`
    /// cannot move a value across `[act_min, act_max]`, a subrange of `[0, 255]`). Clamping the
    /// 64 bytes once costs half of clamping the two vectors of words.
    ///
    /// # Safety
    /// AVX-512F and AVX-512BW must be available.
    #[inline(always)]
    pub(crate) unsafe fn narrow(&self, r: [__m512i; 4]) -> __m512i {
        // SAFETY: the caller guarantees the features; no memory is touched.
        unsafe {
            let words =
                |a: __m512i, b: __m512i| _mm512_adds_epi16(_mm512_packs_epi32(a, b), self.zout16);
            let bytes = _mm512_packus_epi16(words(r[0], r[1]), words(r[2], r[3]));
            _mm512_min_epu8(_mm512_max_epu8(bytes, self.min8), self.max8)
        }
    }

    /// Output codes of one vector of quotients, as int32 in `[act_min, act_max]`:
    /// `clamp(r + zout) = clamp(r, act_min - zout, act_max - zout) + zout` with no int32 overflow
    /// (the scalar code's saturating add).
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[inline(always)]
    pub(crate) unsafe fn codes(&self, r: __m512i) -> __m512i {
        // SAFETY: the caller guarantees the feature; no memory is touched.
        unsafe {
            let clamped = _mm512_min_epi32(_mm512_max_epi32(r, self.lo32), self.hi32);
            _mm512_add_epi32(clamped, self.zout32)
        }
    }
}
