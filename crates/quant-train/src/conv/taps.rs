//! Every window tap of a stride-1 convolution in one register tile (AVX-512): the grid path's
//! forward pass and both gradients without a GEMM call per tap.
//!
//! Why: [`super::grid`] runs a 3 x 3 layer as nine GEMMs over the same grid, each reading and
//! writing the whole output block again and each too shallow (depth = input channels, 16-64 on
//! the ResNet proxies) for the GEMM to reach its peak: 85-98 GFLOP/s on one core here, where a
//! tile of 8 output rows x 48 positions that keeps its accumulators in registers over every tap
//! and input channel runs at 115 (the FMA ceiling of that core, 117). The forward pass and the
//! input gradient are the same correlation, [`correlate`]: over the padded input with the taps'
//! offsets, and over the output gradients with the offsets mirrored (see
//! [`super::grid::input_grad_block`]). The weight gradient, whose GEMMs are deep (the grid) but
//! narrow (the channels), is [`correlate_weights`]: 48 x 48 channels at 28 x 28, batch 128, took
//! 52 ms against 77 with the GEMMs; 16 x 16 at 14 x 14 2.0 against 1.8.
//!
//! The sums run in their own order (listed at each function); the GEMMs they replace sum in
//! theirs, so the two paths agree to float rounding, not bit for bit. Both are deterministic and do
//! not depend on the thread count (a block is one task).

/// Output rows per register tile.
const TILE_ROWS: usize = 8;
/// Vectors of 16 positions per register tile: 8 x 3 accumulators, three loads and a broadcast
/// fill 28 of the 32 registers.
const TILE_VECTORS: usize = 3;
/// Positions per register tile.
const TILE_POSITIONS: usize = 16 * TILE_VECTORS;

/// Coefficients packed for [`correlate`]: per block of [`TILE_ROWS`] output rows, per tap, per
/// source row, the block's rows side by side (zero past the last row), so that the tile reads
/// them in order.
pub(super) struct TapWeights {
    data: Vec<f32>,
    rows: usize,
    depth: usize,
    taps: usize,
}

impl TapWeights {
    /// `rows x depth x taps` coefficients, `coefficient(row, source_row, tap)`.
    pub(super) fn pack(
        rows: usize,
        depth: usize,
        taps: usize,
        coefficient: impl Fn(usize, usize, usize) -> f32,
    ) -> Self {
        let mut data = vec![0.0; rows.div_ceil(TILE_ROWS) * taps * depth * TILE_ROWS];
        for r in 0..rows {
            let (block, lane) = (r / TILE_ROWS, r % TILE_ROWS);
            for t in 0..taps {
                for c in 0..depth {
                    data[((block * taps + t) * depth + c) * TILE_ROWS + lane] =
                        coefficient(r, c, t);
                }
            }
        }
        TapWeights {
            data,
            rows,
            depth,
            taps,
        }
    }
}

/// Whether [`correlate`] runs on this CPU (AVX-512F); the grid path keeps its GEMM per tap
/// elsewhere.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `dst[r · dst_row + p] = Σ_t Σ_c w(r, c, t) · src[c · src_row + p + offsets[t]]` for every
/// row `r` of `w` and position `p < n`, summed over the taps, then the source rows; the rest of
/// `dst` is left as it is.
///
/// # Panics
/// When [`available`] is false, when `offsets` does not have one entry per tap of `w`, or when a
/// slice is too short: `src` needs `w.depth` rows of `src_row >= n + max(offsets)` values, `dst`
/// `w.rows` rows of `dst_row >= n`.
pub(super) fn correlate(
    w: &TapWeights,
    offsets: &[usize],
    (src, src_row): (&[f32], usize),
    n: usize,
    (dst, dst_row): (&mut [f32], usize),
) {
    assert!(available(), "correlate needs AVX-512F");
    assert_eq!(offsets.len(), w.taps, "one offset per tap");
    let reach = offsets.iter().max().copied().unwrap_or(0);
    assert!(
        n + reach <= src_row,
        "a source row is shorter than the positions plus the offsets"
    );
    assert!(src.len() >= w.depth * src_row, "source too short");
    assert!(
        n <= dst_row && dst.len() >= w.rows * dst_row,
        "destination too short"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F was checked above; the assertions bound every unmasked lane's index.
    unsafe {
        correlate_avx512(w, offsets, (src, src_row), n, (dst, dst_row))
    }
}

/// [`correlate`]'s tiles: 8 rows x 48 positions, the positions past `n` masked off.
///
/// # Safety
/// AVX-512F must be available and the slices as long as [`correlate`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn correlate_avx512(
    w: &TapWeights,
    offsets: &[usize],
    (src, src_row): (&[f32], usize),
    n: usize,
    (dst, dst_row): (&mut [f32], usize),
) {
    use std::arch::x86_64::*;
    let block_len = w.taps * w.depth * TILE_ROWS;
    for (block, coefficients) in w.data.chunks_exact(block_len).enumerate() {
        let row0 = block * TILE_ROWS;
        let rows = TILE_ROWS.min(w.rows - row0);
        for p in (0..n).step_by(TILE_POSITIONS) {
            // Lanes of each vector below `n`.
            let masks: [__mmask16; TILE_VECTORS] = std::array::from_fn(|j| {
                let lanes = (n - p).saturating_sub(16 * j).min(16);
                ((1u32 << lanes) - 1) as __mmask16
            });
            let mut acc = [[_mm512_setzero_ps(); TILE_VECTORS]; TILE_ROWS];
            for (t, &offset) in offsets.iter().enumerate() {
                let tap = &coefficients[t * w.depth * TILE_ROWS..][..w.depth * TILE_ROWS];
                for (c, column) in tap.chunks_exact(TILE_ROWS).enumerate() {
                    // SAFETY: lane `l` of vector `j` reads `c · src_row + p + 16 j + l + offset`,
                    // below `src.len()` for every unmasked lane (`p + 16 j + l < n`); masked lanes
                    // are not read.
                    let x: [__m512; TILE_VECTORS] = std::array::from_fn(|j| unsafe {
                        let at = src.as_ptr().add(c * src_row + p + 16 * j + offset);
                        _mm512_maskz_loadu_ps(masks[j], at)
                    });
                    for (acc, &coefficient) in acc.iter_mut().zip(column) {
                        let a = _mm512_set1_ps(coefficient);
                        for (acc, &x) in acc.iter_mut().zip(&x) {
                            *acc = _mm512_fmadd_ps(a, x, *acc);
                        }
                    }
                }
            }
            for (r, acc) in acc.iter().take(rows).enumerate() {
                for (j, &v) in acc.iter().enumerate() {
                    // SAFETY: row `row0 + r < w.rows`, unmasked lanes below `n <= dst_row`: inside
                    // `dst`.
                    unsafe {
                        let at = dst.as_mut_ptr().add((row0 + r) * dst_row + p + 16 * j);
                        _mm512_mask_storeu_ps(at, masks[j], v);
                    }
                }
            }
        }
    }
}

/// Output-gradient rows per register tile of [`correlate_weights`].
const GRAD_ROWS: usize = 3;
/// Taps per register tile of [`correlate_weights`]: 3 x 9 accumulators, three rows of output
/// gradients and one source vector fill 31 of the 32 registers.
const GRAD_TAPS: usize = 9;

/// The weight gradient of [`correlate`]: `dw[(r · depth + c) · taps + t] = Σ_{p<n} a[r · a_row +
/// p] · src[c · src_row + p + offsets[t]]` for `r < rows`, `c < depth` and each tap `t` (the
/// layer's `[out, in, kh, kw]` order). Each sum runs along `p` in 16 lanes, then across them.
///
/// Why not a GEMM per tap: its depth is the grid, its other sizes the channels (16-64 here), and
/// it ran at 20-60 GFLOP/s on one core; here each source vector serves three rows from registers.
///
/// # Panics
/// When [`available`] is false, `offsets` is empty or a slice is too short: `a` needs `rows` rows
/// of `a_row >= n`, `src` `depth` rows of `src_row >= n + max(offsets)`, `dw` `rows · depth ·
/// taps` values.
pub(super) fn correlate_weights(
    offsets: &[usize],
    (a, a_row, rows): (&[f32], usize, usize),
    (src, src_row, depth): (&[f32], usize, usize),
    n: usize,
    dw: &mut [f32],
) {
    assert!(available(), "correlate_weights needs AVX-512F");
    let reach = *offsets.iter().max().expect("at least one tap");
    assert!(
        n <= a_row && a.len() >= rows * a_row,
        "gradient rows too short"
    );
    assert!(
        n + reach <= src_row,
        "a source row is shorter than the positions plus the offsets"
    );
    assert!(src.len() >= depth * src_row, "source too short");
    assert!(
        dw.len() >= rows * depth * offsets.len(),
        "weight gradient too short"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F was checked above; the assertions bound every unmasked lane's index.
    unsafe {
        correlate_weights_avx512(offsets, (a, a_row, rows), (src, src_row, depth), n, dw)
    }
}

/// [`correlate_weights`]' tiles: 3 rows x 9 taps of one source channel, positions past `n` masked
/// off; a partial tile repeats its last row or tap and keeps only the sums that exist.
///
/// # Safety
/// AVX-512F must be available and the slices as long as [`correlate_weights`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn correlate_weights_avx512(
    offsets: &[usize],
    (a, a_row, rows): (&[f32], usize, usize),
    (src, src_row, depth): (&[f32], usize, usize),
    n: usize,
    dw: &mut [f32],
) {
    use std::arch::x86_64::*;
    let taps = offsets.len();
    for r0 in (0..rows).step_by(GRAD_ROWS) {
        let row: [usize; GRAD_ROWS] = std::array::from_fn(|i| (r0 + i).min(rows - 1));
        for c in 0..depth {
            for t0 in (0..taps).step_by(GRAD_TAPS) {
                // SAFETY (the pointers): each is the start of a row of `a` or a tap's window
                // in row `c` of `src`, inside the slices (asserted by the caller).
                let (g_rows, x_taps): ([*const f32; GRAD_ROWS], [*const f32; GRAD_TAPS]) = unsafe {
                    (
                        std::array::from_fn(|i| a.as_ptr().add(row[i] * a_row)),
                        std::array::from_fn(|j| {
                            src.as_ptr()
                                .add(c * src_row + offsets[(t0 + j).min(taps - 1)])
                        }),
                    )
                };
                let mut acc = [[_mm512_setzero_ps(); GRAD_TAPS]; GRAD_ROWS];
                for p in (0..n).step_by(16) {
                    let mask = ((1u32 << (n - p).min(16)) - 1) as __mmask16;
                    // SAFETY: unmasked lanes read below `n` in a row of `a` and below
                    // `n + reach` in a row of `src`, inside both slices; masked lanes are not
                    // read.
                    unsafe {
                        let g: [__m512; GRAD_ROWS] =
                            std::array::from_fn(|i| _mm512_maskz_loadu_ps(mask, g_rows[i].add(p)));
                        for (j, x) in x_taps.iter().enumerate() {
                            let x = _mm512_maskz_loadu_ps(mask, x.add(p));
                            for (acc, &g) in acc.iter_mut().zip(&g) {
                                acc[j] = _mm512_fmadd_ps(g, x, acc[j]);
                            }
                        }
                    }
                }
                for (i, acc) in acc.iter().enumerate().take(rows - r0) {
                    for (j, &v) in acc.iter().enumerate().take(taps - t0) {
                        dw[((r0 + i) * depth + c) * taps + t0 + j] = _mm512_reduce_add_ps(v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`correlate`]'s formula, one output at a time, in f64.
    fn definition(
        coefficient: &dyn Fn(usize, usize, usize) -> f32,
        (rows, depth): (usize, usize),
        offsets: &[usize],
        src: &[f32],
        src_row: usize,
        n: usize,
    ) -> Vec<f32> {
        let mut out = vec![0.0; rows * n];
        for r in 0..rows {
            for p in 0..n {
                let mut s = 0.0f64;
                for (t, &o) in offsets.iter().enumerate() {
                    for c in 0..depth {
                        s += f64::from(coefficient(r, c, t)) * f64::from(src[c * src_row + p + o]);
                    }
                }
                out[r * n + p] = s as f32;
            }
        }
        out
    }

    #[test]
    fn correlate_weights_equals_its_definition_on_partial_tiles() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F, the grid path keeps its GEMMs");
            return;
        }
        // Rows 2, 3 and 7 (partial, whole, two whole and a partial tile); taps 4, 9 and 11;
        // positions 7, 32 and 83.
        for (rows, depth, taps, n) in [(2, 3, 4, 7), (3, 2, 9, 32), (7, 4, 11, 83)] {
            let offsets: Vec<usize> = (0..taps).map(|t| t / 3 * 6 + t % 3).collect();
            let (a_row, src_row) = (n + 2, n + offsets[taps - 1] + 4);
            let value =
                |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0;
            let a: Vec<f32> = (0..rows * a_row).map(|i| value(i, 3)).collect();
            let src: Vec<f32> = (0..depth * src_row).map(|i| value(i, 4)).collect();
            let mut dw = vec![0.0; rows * depth * taps];
            correlate_weights(
                &offsets,
                (&a, a_row, rows),
                (&src, src_row, depth),
                n,
                &mut dw,
            );
            for r in 0..rows {
                for c in 0..depth {
                    for (t, &o) in offsets.iter().enumerate() {
                        let want: f64 = (0..n)
                            .map(|p| {
                                f64::from(a[r * a_row + p]) * f64::from(src[c * src_row + p + o])
                            })
                            .sum();
                        let got = dw[(r * depth + c) * taps + t];
                        let what = format!("{rows}x{depth}x{taps}x{n} [{r}, {c}, {t}]");
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{what}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn correlate_equals_its_definition_on_partial_tiles() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F, the grid path keeps its GEMMs");
            return;
        }
        // Rows 3 (one partial block), 8 (one whole) and 13 (one whole, one partial); positions
        // 5, 48 and 101 (partial, whole and 2 whole + 1 partial tiles).
        for (rows, depth, n) in [(3, 2, 5), (8, 5, 48), (13, 4, 101)] {
            let offsets = [0, 1, 2, 7, 8, 9, 14, 15, 16];
            let src_row = n + 16 + 3;
            let value =
                |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0;
            let src: Vec<f32> = (0..depth * src_row).map(|i| value(i, 1)).collect();
            let coefficient = |r: usize, c: usize, t: usize| value((r * depth + c) * 9 + t, 2);
            let w = TapWeights::pack(rows, depth, offsets.len(), coefficient);
            // Rows of `n` and 5 guard values, which must stay untouched.
            let dst_row = n + 5;
            let mut dst = vec![7.0; rows * dst_row];
            correlate(&w, &offsets, (&src, src_row), n, (&mut dst, dst_row));
            let want = definition(&coefficient, (rows, depth), &offsets, &src, src_row, n);
            for (r, (got, want)) in dst.chunks(dst_row).zip(want.chunks(n)).enumerate() {
                for (p, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{rows}x{n} [{r}, {p}]: {g} vs {w}"
                    );
                }
                assert_eq!(
                    &got[n..],
                    &[7.0; 5],
                    "{rows}x{n} row {r}: wrote past the positions"
                );
            }
        }
    }
}
