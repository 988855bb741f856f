//! Frame tests: every backend this CPU has runs the same cases and must match the naive
//! wide-integer reference bit for bit.
// Tests check the integer code against float references; float never reaches run-time code.
#![allow(clippy::float_arithmetic)]

use proptest::prelude::*;

use rand_like::Lcg;

use super::*;
use crate::fixedpoint::{
    multiply_by_quantized_multiplier_double, multiply_by_quantized_multiplier_single,
};

/// A tiny deterministic generator (the tests must not depend on a `rand` version).
mod rand_like {
    pub struct Lcg(pub u64);
    impl Lcg {
        pub fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
            (i64::from(lo) + self.below((i64::from(hi) - i64::from(lo) + 1) as u64) as i64) as i32
        }
        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        pub fn weights(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.next() as u8 as i8).collect()
        }
    }
}

/// Naive reference: `sum (a - za)(w - zw)` in i64, no row/column-sum tricks.
#[allow(clippy::too_many_arguments)]
fn naive_acc(
    a: &[u8],
    m: usize,
    k: usize,
    w: &[i8],
    n: usize,
    za: i32,
    zw: &[i32],
    bias: &[i32],
) -> Vec<i64> {
    let mut out = vec![0i64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0i64;
            for kk in 0..k {
                s += i64::from(i32::from(a[i * k + kk]) - za)
                    * i64::from(i32::from(w[kk * n + j]) - zw[j]);
            }
            out[i * n + j] = s + i64::from(bias.get(j).copied().unwrap_or(0));
        }
    }
    out
}

fn naive_requant(acc: i64, stage: &OutputStage, j: usize) -> u8 {
    let m = stage.multiplier_of(j);
    let acc = acc as i32;
    let v = match stage.rounding {
        RoundingMode::Double => multiply_by_quantized_multiplier_double(acc, m.multiplier, m.shift),
        RoundingMode::Single => multiply_by_quantized_multiplier_single(acc, m.multiplier, m.shift),
    } + stage.output_zero_point;
    v.clamp(i32::from(stage.act_min), i32::from(stage.act_max)) as u8
}

fn random_stage(rng: &mut Lcg, n: usize, per_channel: bool, rounding: RoundingMode) -> OutputStage {
    let count = if per_channel { n } else { 1 };
    OutputStage {
        bias: (0..n).map(|_| rng.range(-20000, 20000)).collect(),
        multipliers: (0..count)
            .map(|_| {
                QuantizedMultiplier::new(rng.range(1 << 30, i32::MAX), rng.range(-16, -6)).unwrap()
            })
            .collect(),
        rounding,
        output_zero_point: rng.range(0, 255),
        act_min: rng.range(0, 40) as u8,
        act_max: rng.range(200, 255) as u8,
    }
}

struct Case {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<u8>,
    w: Vec<i8>,
    za: i32,
    zw: Vec<i32>,
}

fn random_case(rng: &mut Lcg, m: usize, k: usize, n: usize, symmetric: bool) -> Case {
    let zw = if symmetric {
        vec![0; n]
    } else {
        (0..n).map(|_| rng.range(-128, 127)).collect()
    };
    Case {
        m,
        k,
        n,
        a: rng.bytes(m * k),
        w: rng.weights(k * n),
        za: rng.range(0, 255),
        zw,
    }
}

/// Shapes that exercise every tail: M, K, N below, at and above each kernel's MR / K group / NR.
fn frame_shapes() -> Vec<(usize, usize, usize)> {
    let mut v = vec![
        (1, 1, 1),
        (1, 3, 1),
        (2, 5, 7),
        (7, 9, 17),
        (8, 4, 32),
        (9, 7, 33),
        (13, 31, 65),
        (97, 77, 50),
    ];
    v.extend([
        (6, 2, 16),
        (5, 3, 15),
        (100, 130, 3),
        (3, 200, 101),
        (191, 16, 40),
    ]);
    // K a multiple of 64 (AMX) and of 4 (VNNI): full row blocks are read in place, the partial
    // last block of each 96-row chunk is packed.
    v.extend([(70, 128, 40), (100, 192, 64)]);
    // K not a multiple of 64 (AMX and VNNI pad every block), over several row blocks.
    v.extend([(96, 77, 40), (160, 288, 64)]);
    v
}

#[test]
fn gemm_i32_matches_naive_on_every_backend() {
    let mut rng = Lcg(1);
    for (m, k, n) in frame_shapes() {
        for symmetric in [false, true] {
            let c = random_case(&mut rng, m, k, n, symmetric);
            let bias: Vec<i32> = (0..n).map(|_| rng.range(-1000, 1000)).collect();
            let want = naive_acc(&c.a, m, k, &c.w, n, c.za, &c.zw, &bias);
            for backend in Backend::available() {
                let p = PackedWeights::new(&c.w, k, n, &c.zw, backend).unwrap();
                let mut got = vec![0i32; m * n];
                gemm_i32(&c.a, m, c.za, &p, &bias, &mut got).unwrap();
                let got: Vec<i64> = got.iter().map(|&v| i64::from(v)).collect();
                assert_eq!(got, want, "{backend:?} {m}x{k}x{n} symmetric={symmetric}");
            }
        }
    }
}

#[test]
fn gemm_is_exact_at_every_row_alignment() {
    // AMX reads 64-byte aligned rows in place and packs the others: both at each offset.
    let mut rng = Lcg(9);
    let (m, k, n) = (70, 128, 40);
    let c = random_case(&mut rng, m, k, n, false);
    let want = naive_acc(&c.a, m, k, &c.w, n, c.za, &c.zw, &[]);
    let mut store = vec![0u8; m * k + 128];
    let base = store.as_ptr().align_offset(64);
    for offset in [0, 1, 16, 32] {
        let a = &mut store[base + offset..base + offset + m * k];
        a.copy_from_slice(&c.a);
        for backend in Backend::available() {
            let p = PackedWeights::new(&c.w, k, n, &c.zw, backend).unwrap();
            let mut got = vec![0i32; m * n];
            gemm_i32(a, m, c.za, &p, &[], &mut got).unwrap();
            let got: Vec<i64> = got.iter().map(|&v| i64::from(v)).collect();
            assert_eq!(got, want, "{backend:?} row offset {offset}");
        }
    }
}

#[test]
fn fused_gemm_matches_naive_on_every_backend() {
    let mut rng = Lcg(2);
    for (m, k, n) in frame_shapes() {
        for (per_channel, rounding) in [
            (false, RoundingMode::Double),
            (true, RoundingMode::Double),
            (true, RoundingMode::Single),
        ] {
            let c = random_case(&mut rng, m, k, n, false);
            let stage = random_stage(&mut rng, n, per_channel, rounding);
            let acc = naive_acc(&c.a, m, k, &c.w, n, c.za, &c.zw, &stage.bias);
            let want: Vec<u8> = acc
                .iter()
                .enumerate()
                .map(|(i, &v)| naive_requant(v, &stage, i % n))
                .collect();
            for backend in Backend::available() {
                let p = PackedWeights::new(&c.w, k, n, &c.zw, backend).unwrap();
                let mut got = vec![0u8; m * n];
                gemm(&c.a, m, c.za, &p, &stage, &mut got).unwrap();
                assert_eq!(got, want, "{backend:?} {m}x{k}x{n}");
            }
        }
    }
}

/// The VNNI kernel's data path with `vpdpbusd` written out lane by lane: it reads the packed
/// activation block and weight panel at exactly the offsets `tile_vnni` loads from (a 32-bit
/// activation quad `(r * kq + q) * 4` of the row-major block broadcast to every lane; lane `l` of the two weight
/// registers at `q * NR * 4 + 4 * l` and `+ 64`) and sums the four u8 x s8 products per lane
/// into int32. Machines without AVX-512 VNNI cannot run the real kernel; this checks its packing
/// and indexing through the same frame as the other backends, leaving only the intrinsic itself
/// to the hardware run (`cargo test -p quant-core` on a VNNI machine, where the real kernel is
/// among `Backend::available()`).
#[cfg(target_arch = "x86_64")]
struct VnniLanes;

#[cfg(target_arch = "x86_64")]
impl MicroKernel for VnniLanes {
    const MR: usize = x86::avx512_vnni::MR;
    const NR: usize = x86::avx512_vnni::NR;
    type A = u8;
    type B = i8;

    fn a_block_len(k: usize) -> usize {
        x86::avx512_vnni::Kernel::a_block_len(k)
    }

    fn b_panel_len(k: usize) -> usize {
        x86::avx512_vnni::Kernel::b_panel_len(k)
    }

    fn pack_a(a: &[u8], rows: usize, k: usize, dst: &mut [u8]) {
        x86::avx512_vnni::Kernel::pack_a(a, rows, k, dst)
    }

    fn borrow_a(a: &[u8], rows: usize, k: usize, _panels: usize) -> Option<&[u8]> {
        x86::avx512_vnni::Kernel::borrow_a(a, rows, k, 0)
    }

    unsafe fn tile(a: &[u8], _lda: usize, b: &[i8], k: usize, tile: &mut [i32], ldc: usize) {
        const ZMM_LANES: usize = 16;
        let (mr, nr, kq) = (Self::MR, Self::NR, k.div_ceil(4));
        let mut c = vec![0i32; mr * nr];
        for q in 0..kq {
            for r in 0..mr {
                let quad = &a[(r * kq + q) * 4..][..4];
                for reg in 0..2 {
                    for l in 0..ZMM_LANES {
                        let w = &b[q * nr * 4 + reg * 64 + 4 * l..][..4];
                        let dot: i32 = quad
                            .iter()
                            .zip(w)
                            .map(|(&x, &y)| i32::from(x) * i32::from(y))
                            .sum();
                        c[r * nr + reg * ZMM_LANES + l] += dot;
                    }
                }
            }
        }
        for (r, row) in c.chunks_exact(nr).enumerate() {
            tile[r * ldc..r * ldc + nr].copy_from_slice(row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn vnni_layout_matches_naive_through_the_gemm_frame() {
    let mut rng = Lcg(7);
    for (m, k, n) in frame_shapes() {
        let c = random_case(&mut rng, m, k, n, false);
        let bias: Vec<i32> = (0..n).map(|_| rng.range(-1000, 1000)).collect();
        let want = naive_acc(&c.a, m, k, &c.w, n, c.za, &c.zw, &bias);
        // Column sums and zero points come from any packing; the panels are the VNNI ones.
        let p = PackedWeights::new(&c.w, k, n, &c.zw, Backend::Scalar).unwrap();
        let panels = x86::avx512_vnni::pack_b(&c.w, k, n);
        let mut got = vec![0i32; m * n];
        drive::<VnniLanes, i32, _>(
            &Rows::Stored(&c.a),
            m,
            c.za,
            &p,
            &panels,
            &|j| bias[j],
            &mut got,
            &add_offsets,
        );
        let got: Vec<i64> = got.iter().map(|&v| i64::from(v)).collect();
        assert_eq!(got, want, "VNNI layout {m}x{k}x{n}");
    }
}

#[test]
fn extreme_codes_do_not_overflow() {
    // All activations 255 with Za = 0, all weights -128 with Zw = 127: |a - Za||w - Zw| = 255^2.
    let (m, k, n) = (9, 1000, 33);
    let a = vec![255u8; m * k];
    let w = vec![-128i8; k * n];
    for backend in Backend::available() {
        let p = PackedWeights::new(&w, k, n, &[127], backend).unwrap();
        let mut got = vec![0i32; m * n];
        gemm_i32(&a, m, 0, &p, &[], &mut got).unwrap();
        assert!(got.iter().all(|&v| v == -(255 * 255 * 1000)), "{backend:?}");
    }
}

#[test]
fn two_threads_match_one_thread() {
    let mut rng = Lcg(3);
    let c = random_case(&mut rng, 301, 203, 67, false);
    let stage = random_stage(&mut rng, 67, true, RoundingMode::Double);
    for backend in Backend::available() {
        let p = PackedWeights::new(&c.w, c.k, c.n, &c.zw, backend).unwrap();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0u8; c.m * c.n];
            pool.install(|| gemm(&c.a, c.m, c.za, &p, &stage, &mut out))
                .unwrap();
            out
        };
        assert_eq!(run(1), run(2), "{backend:?}");
    }
}

#[test]
fn gemm_rejects_bad_input() {
    let w = vec![1i8; 12];
    assert!(PackedWeights::new(&w, 3, 5, &[0], Backend::Scalar).is_err());
    assert!(PackedWeights::new(&w, 3, 4, &[0, 0], Backend::Scalar).is_err());
    assert!(PackedWeights::new(&w, 3, 4, &[128], Backend::Scalar).is_err());
    let big = vec![0i8; MAX_DEPTH + 1];
    assert!(PackedWeights::new(&big, MAX_DEPTH + 1, 1, &[0], Backend::Scalar).is_err());
    let err = DepthwiseWeights::new(&big, MAX_DEPTH + 1, 1, 1, &[0], Backend::Scalar).unwrap_err();
    assert!(err.to_string().contains("taps"), "{err}");
    assert!(
        DepthwiseWeights::new(&big[..MAX_DEPTH], MAX_DEPTH, 1, 1, &[0], Backend::Scalar).is_ok()
    );
    let p = PackedWeights::new(&w, 3, 4, &[0], Backend::Scalar).unwrap();
    let stage = OutputStage {
        bias: vec![],
        multipliers: vec![QuantizedMultiplier::new(1 << 30, -1).unwrap()],
        rounding: RoundingMode::Double,
        output_zero_point: 0,
        act_min: 0,
        act_max: 255,
    };
    let mut out = vec![0u8; 8];
    assert!(gemm(&[0u8; 5], 2, 0, &p, &stage, &mut out).is_err());
    assert!(gemm(&[0u8; 6], 2, 300, &p, &stage, &mut out).is_err());
    assert!(gemm(&[0u8; 6], 2, 0, &p, &stage, &mut out[..7]).is_err());
    let mut bad = stage.clone();
    bad.multipliers = vec![bad.multipliers[0]; 3];
    assert!(gemm(&[0u8; 6], 2, 0, &p, &bad, &mut out).is_err());
    assert!(gemm(&[0u8; 6], 2, 0, &p, &stage, &mut out).is_ok());
}

#[test]
fn int8_shift_round_trips() {
    let all: Vec<i8> = (-128..=127).collect();
    let u = i8_to_u8(&all);
    assert_eq!(u, (0..=255).collect::<Vec<u8>>());
    assert_eq!(u8_to_i8(&u), all);
}

/// [`naive_requant`] over the accumulators of `oc` channels, channel-minor.
fn naive_codes(acc: &[i64], stage: &OutputStage, oc: usize) -> Vec<u8> {
    acc.iter()
        .enumerate()
        .map(|(i, &s)| naive_requant(s, stage, i % oc))
        .collect()
}

/// Direct (non-im2col) convolution reference in i64: `bias[o]` plus the products of the
/// zero-point-shifted codes, `batch x out_h x out_w x oc`, dense (HWIO weights) or depthwise
/// (`[ky][kx][c]` weights, output channel `o` reads input channel `o`; padded taps contribute
/// nothing).
#[allow(clippy::too_many_arguments)]
fn naive_conv(
    input: &[u8],
    batch: usize,
    g: &ConvGeometry,
    za: i32,
    w: &[i8],
    zw: &[i32],
    oc: usize,
    depthwise: bool,
    bias: &[i32],
) -> Vec<i64> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0i64; batch * oh * ow * oc];
    for b in 0..batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..oc {
                    let mut s = 0i64;
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            let iy = (oy * g.stride_h + ky) as i64 - g.pad_top as i64;
                            let ix = (ox * g.stride_w + kx) as i64 - g.pad_left as i64;
                            if iy < 0 || ix < 0 || iy >= g.in_h as i64 || ix >= g.in_w as i64 {
                                continue; // real zero: contributes nothing
                            }
                            let channels = if depthwise { o..o + 1 } else { 0..g.in_c };
                            for ci in channels {
                                let a = input[((b * g.in_h + iy as usize) * g.in_w + ix as usize)
                                    * g.in_c
                                    + ci];
                                let tap = ky * g.kernel_w + kx;
                                let wv = if depthwise {
                                    w[tap * oc + o]
                                } else {
                                    w[(tap * g.in_c + ci) * oc + o]
                                };
                                s +=
                                    i64::from(i32::from(a) - za) * i64::from(i32::from(wv) - zw[o]);
                            }
                        }
                    }
                    s += i64::from(bias[o]);
                    out[((b * oh + oy) * ow + ox) * oc + o] = s;
                }
            }
        }
    }
    out
}

#[test]
fn conv2d_matches_direct_convolution() {
    let mut rng = Lcg(4);
    let cases = [
        (2, 7, 6, 3, 5, 3, 1, true),
        (1, 9, 9, 4, 8, 3, 2, true),
        (1, 8, 5, 2, 3, 1, 1, false),
        (3, 6, 6, 5, 17, 5, 2, false),
        (1, 11, 7, 3, 2, 2, 3, true),
        (1, 7, 9, 3, 4, 5, 1, true),
        // Several row blocks, split across threads: im2col rows are built per block.
        (2, 16, 16, 16, 32, 3, 1, true),
        // Output rows long enough for runs of windows read in place (VNNI), next to built rows
        // at the borders: strides 1 and 2, 3 x 3 and 5 x 5 windows, SAME and VALID.
        (2, 9, 30, 8, 40, 3, 1, true),
        (1, 12, 40, 4, 33, 3, 2, true),
        (1, 10, 29, 12, 64, 5, 1, false),
        // Even windows (SAME pads only the bottom and right), read in place after padding.
        (1, 9, 13, 4, 7, 2, 1, true),
        (2, 8, 15, 8, 9, 4, 2, true),
    ];
    for (i, (batch, h, w_, ic, oc, kernel, stride, same)) in cases.into_iter().enumerate() {
        let g = ConvGeometry::new(h, w_, ic, kernel, stride, same).unwrap();
        let input = rng.bytes(batch * g.in_len());
        let k = kernel * kernel * ic;
        let w = rng.weights(k * oc);
        // Per-channel weight zero points, and one for all channels (Jacob's per-tensor weights,
        // which the GEMM corrects with one product per row) in every other case.
        let zw: Vec<i32> = match i % 2 {
            0 => (0..oc).map(|_| rng.range(-128, 127)).collect(),
            _ => vec![rng.range(-128, 127); oc],
        };
        let za = rng.range(0, 255);
        let stage = random_stage(&mut rng, oc, true, RoundingMode::Double);
        let want = naive_codes(
            &naive_conv(&input, batch, &g, za, &w, &zw, oc, false, &stage.bias),
            &stage,
            oc,
        );
        for backend in Backend::available() {
            let p = PackedWeights::new(&w, k, oc, &zw, backend).unwrap();
            let mut got = vec![0u8; want.len()];
            conv2d(&input, batch, &g, za, &p, &stage, &mut got).unwrap();
            assert_eq!(
                got, want,
                "{backend:?} {h}x{w_}x{ic} k{kernel} s{stride} same={same}"
            );
        }
    }
}

/// Depthwise cases: channel counts below, at and above the vector blocks (16 for AVX2, 64 for
/// AVX-512 VNNI, with tails), tap counts 1, 4, 9 and 25 (odd, even, whole and partial quads per
/// kernel row), strides 1 and 2, with and without padding; thin layers (1, 5, 8, 24 channels) on
/// rows long enough for the VNNI kernel's steps of several pixels, whole and cut short, at
/// stride 1 and (4, 8, 12, 16 channels) stride 2.
const DEPTHWISE_CASES: [(usize, usize, usize, usize, usize, usize, bool); 20] = [
    (1, 6, 21, 8, 3, 2, true),
    (1, 5, 40, 16, 3, 2, true),
    (1, 5, 12, 12, 3, 2, false),
    (2, 4, 70, 4, 3, 2, true),
    (1, 4, 20, 8, 3, 1, true),
    (1, 3, 70, 1, 3, 1, true),
    (2, 4, 9, 24, 3, 1, true),
    (1, 6, 13, 5, 5, 1, false),
    (2, 7, 6, 5, 3, 1, true),
    (1, 10, 9, 33, 3, 2, true),
    (1, 6, 6, 16, 5, 1, false),
    (2, 5, 4, 1, 3, 2, true),
    (1, 6, 5, 40, 2, 1, true),
    (2, 7, 7, 48, 3, 2, true),
    (1, 4, 3, 32, 1, 1, false),
    (1, 6, 5, 64, 3, 1, true),
    (1, 5, 5, 144, 3, 2, true),
    (1, 4, 4, 83, 2, 1, true),
    (1, 4, 3, 64, 1, 1, false),
    (1, 7, 6, 65, 5, 1, true),
];

#[test]
fn depthwise_matches_direct_convolution() {
    let mut rng = Lcg(5);
    for (batch, h, w_, c, kernel, stride, same) in DEPTHWISE_CASES {
        let g = ConvGeometry::new(h, w_, c, kernel, stride, same).unwrap();
        let input = rng.bytes(batch * g.in_len());
        let w = rng.weights(kernel * kernel * c);
        // Both roundings, with symmetric weights (no `Zw * sum(a)` term) and without.
        for (symmetric, rounding) in [
            (false, RoundingMode::Single),
            (false, RoundingMode::Double),
            (true, RoundingMode::Double),
        ] {
            let zw: Vec<i32> = (0..c)
                .map(|_| if symmetric { 0 } else { rng.range(-128, 127) })
                .collect();
            let za = rng.range(0, 255);
            let stage = random_stage(&mut rng, c, true, rounding);
            let want = naive_codes(
                &naive_conv(&input, batch, &g, za, &w, &zw, c, true, &stage.bias),
                &stage,
                c,
            );
            for backend in Backend::available() {
                let dw = DepthwiseWeights::new(&w, kernel, kernel, c, &zw, backend).unwrap();
                let mut got = vec![0u8; want.len()];
                depthwise_conv2d(&input, batch, &g, za, &dw, &stage, &mut got).unwrap();
                assert_eq!(
                    got, want,
                    "{backend:?} depthwise {h}x{w_}x{c} k{kernel} s{stride} {rounding:?} zw={}",
                    !symmetric
                );
            }
        }
    }
}

#[test]
fn depthwise_i32_matches_direct_convolution() {
    let mut rng = Lcg(11);
    for (batch, h, w_, c, kernel, stride, same) in DEPTHWISE_CASES {
        let g = ConvGeometry::new(h, w_, c, kernel, stride, same).unwrap();
        let input = rng.bytes(batch * g.in_len());
        let w = rng.weights(kernel * kernel * c);
        for symmetric in [false, true] {
            let zw: Vec<i32> = (0..c)
                .map(|_| if symmetric { 0 } else { rng.range(-128, 127) })
                .collect();
            let za = rng.range(0, 255);
            let bias: Vec<i32> = (0..c).map(|_| rng.range(-100_000, 100_000)).collect();
            let want: Vec<i32> = naive_conv(&input, batch, &g, za, &w, &zw, c, true, &bias)
                .into_iter()
                .map(|s| i32::try_from(s).unwrap())
                .collect();
            for backend in Backend::available() {
                let dw = DepthwiseWeights::new(&w, kernel, kernel, c, &zw, backend).unwrap();
                let mut got = vec![0i32; want.len()];
                depthwise_conv2d_i32(&input, batch, &g, za, &dw, &bias, &mut got).unwrap();
                assert_eq!(
                    got, want,
                    "{backend:?} depthwise i32 {h}x{w_}x{c} k{kernel} s{stride} zw={}",
                    !symmetric
                );
            }
        }
    }
}

/// The 512-bit instructions of the VNNI depthwise row kernel, lane by lane as Intel defines them
/// (every one works within 128-bit lanes), so its layout is tested on machines without AVX-512.
#[cfg(target_arch = "x86_64")]
mod zmm {
    pub type Bytes = [u8; 64];

    /// `vpunpck{l,h}bw` (`high` picks the upper eight bytes of each lane).
    pub fn unpack8(a: &Bytes, b: &Bytes, high: bool) -> Bytes {
        let mut out = [0; 64];
        for lane in 0..4 {
            for i in 0..8 {
                let src = lane * 16 + i + if high { 8 } else { 0 };
                out[lane * 16 + 2 * i] = a[src];
                out[lane * 16 + 2 * i + 1] = b[src];
            }
        }
        out
    }

    /// `vpunpck{l,h}wd` on the bytes' 16-bit words.
    pub fn unpack16(a: &Bytes, b: &Bytes, high: bool) -> Bytes {
        let mut out = [0; 64];
        for lane in 0..4 {
            for i in 0..4 {
                let src = lane * 16 + 2 * (i + if high { 4 } else { 0 });
                let dst = lane * 16 + 4 * i;
                out[dst..dst + 2].copy_from_slice(&a[src..src + 2]);
                out[dst + 2..dst + 4].copy_from_slice(&b[src..src + 2]);
            }
        }
        out
    }

    /// `vpermt2d`: dword `d` of the result is dword `idx[d] % 16` of `a`, or of `b` where bit 4
    /// of `idx[d]` is set.
    pub fn permute2_dwords(a: &Bytes, idx: &[i32; 16], b: &Bytes) -> Bytes {
        let mut out = [0; 64];
        for (d, &i) in idx.iter().enumerate() {
            let src = if i & 16 == 0 { a } else { b };
            let at = 4 * (i & 15) as usize;
            out[4 * d..4 * d + 4].copy_from_slice(&src[at..][..4]);
        }
        out
    }

    /// `vpdpbusd`: four u8 x s8 products per int32 lane added to `acc`.
    pub fn dpbusd(acc: &mut [i32; 16], x: &Bytes, w: &[i8]) {
        for (k, a) in acc.iter_mut().enumerate() {
            for t in 0..4 {
                *a += i32::from(x[4 * k + t]) * i32::from(w[4 * k + t]);
            }
        }
    }

    /// `vpackssdw` then `vpackuswb` of four int32 vectors, as the row kernel narrows them.
    pub fn narrow(v: &[[i32; 16]; 4]) -> Bytes {
        let words = |a: &[i32; 16], b: &[i32; 16]| -> [i16; 32] {
            let mut out = [0; 32];
            for lane in 0..4 {
                for i in 0..4 {
                    out[lane * 8 + i] = a[lane * 4 + i].clamp(-32768, 32767) as i16;
                    out[lane * 8 + 4 + i] = b[lane * 4 + i].clamp(-32768, 32767) as i16;
                }
            }
            out
        };
        let (w01, w23) = (words(&v[0], &v[1]), words(&v[2], &v[3]));
        let mut out = [0; 64];
        for lane in 0..4 {
            for i in 0..8 {
                out[lane * 16 + i] = w01[lane * 8 + i].clamp(0, 255) as u8;
                out[lane * 16 + 8 + i] = w23[lane * 8 + i].clamp(0, 255) as u8;
            }
        }
        out
    }
}

/// The VNNI depthwise row kernel's data path on the lane model of [`zmm`]: the packed weight
/// quads and the quad-order tables the kernel reads, the taps interleaved by the same unpacks,
/// the per-lane requantization with the tables' multiplier and shift, and the narrowing packs
/// that must leave every channel where the naive convolution puts it.
#[cfg(target_arch = "x86_64")]
#[test]
fn vnni_depthwise_layout_matches_naive() {
    use x86::depthwise::{QUAD_BLOCK, pack_row_quads, pixels_at, quad_table, stride2_spread};
    let mut rng = Lcg(8);
    for (batch, h, w_, c, kernel, stride, same) in DEPTHWISE_CASES {
        let g = ConvGeometry::new(h, w_, c, kernel, stride, same).unwrap();
        let input = rng.bytes(batch * g.in_len());
        let w = rng.weights(kernel * kernel * c);
        let zw: Vec<i32> = (0..c).map(|_| rng.range(-128, 127)).collect();
        let za = rng.range(0, 255);
        let stage = random_stage(&mut rng, c, true, RoundingMode::Double);
        let want = naive_codes(
            &naive_conv(&input, batch, &g, za, &w, &zw, c, true, &stage.bias),
            &stage,
            c,
        );
        let packed = pack_row_quads(&w, kernel, kernel, c);
        let taps = (kernel * kernel) as i32;
        let offset: Vec<i32> = (0..c)
            .map(|ch| {
                let sum_w: i32 = (0..kernel * kernel).map(|t| i32::from(w[t * c + ch])).sum();
                stage.bias[ch] - za * sum_w + taps * za * zw[ch]
            })
            .collect();
        let (offset, zw_q) = (quad_table(&offset), quad_table(&zw));
        let mult = quad_table(
            &stage
                .multipliers
                .iter()
                .map(|m| m.multiplier)
                .collect::<Vec<_>>(),
        );
        let shift = quad_table(
            &stage
                .multipliers
                .iter()
                .map(|m| m.shift)
                .collect::<Vec<_>>(),
        );
        let (oh, ow, quads) = (g.out_h(), g.out_w(), kernel.div_ceil(4));
        let mut got = vec![0u8; want.len()];
        for (row, dst) in got.chunks_exact_mut(ow * c).enumerate() {
            let (b, oy) = (row / oh, row % oh);
            for blk in 0..c.div_ceil(QUAD_BLOCK) {
                let mut ox = 0;
                while ox < ow {
                    // The kernel's step: several adjacent pixels' channels in one block (a thin
                    // layer's interior windows), or one pixel's block of channels.
                    let pixels = pixels_at(&g, ox);
                    let n = if pixels > 1 {
                        pixels * c
                    } else {
                        64.min(c - blk * 64)
                    };
                    let mut sums = [[0i32; 16]; 4];
                    let mut asum = [[0i32; 16]; 4];
                    for (j, s) in sums.iter_mut().enumerate() {
                        s.copy_from_slice(&offset[blk * 64 + 16 * j..][..16]);
                    }
                    for ky in 0..kernel {
                        for q in 0..quads {
                            let tap = |i: usize| -> zmm::Bytes {
                                let (kx, mut t) = (4 * q + i, [za as u8; 64]);
                                let iy = (oy * stride + ky).checked_sub(g.pad_top);
                                let ix = (ox * stride + kx).checked_sub(g.pad_left);
                                if let (Some(iy), Some(ix)) = (iy, ix)
                                    && kx < kernel
                                    && iy < h
                                    && ix < w_
                                {
                                    let at = ((b * h + iy) * w_ + ix) * c + blk * 64;
                                    if pixels > 1 && stride == 2 {
                                        // Two loads masked to the row, then the permutation.
                                        let row_end = ((b * h + iy) * w_ + w_) * c;
                                        let load = |from: usize| -> zmm::Bytes {
                                            let mut v = [0; 64];
                                            if from < row_end {
                                                let end = row_end.min(from + 64);
                                                v[..end - from].copy_from_slice(&input[from..end]);
                                            }
                                            v
                                        };
                                        let spread = stride2_spread(c);
                                        let (first, second) = (load(at), load(at + 64));
                                        t = zmm::permute2_dwords(&first, &spread, &second);
                                    } else {
                                        t[..n].copy_from_slice(&input[at..at + n]);
                                    }
                                }
                                t
                            };
                            let (lo01, hi01) = (
                                zmm::unpack8(&tap(0), &tap(1), false),
                                zmm::unpack8(&tap(0), &tap(1), true),
                            );
                            let (lo23, hi23) = (
                                zmm::unpack8(&tap(2), &tap(3), false),
                                zmm::unpack8(&tap(2), &tap(3), true),
                            );
                            let x = [
                                zmm::unpack16(&lo01, &lo23, false),
                                zmm::unpack16(&lo01, &lo23, true),
                                zmm::unpack16(&hi01, &hi23, false),
                                zmm::unpack16(&hi01, &hi23, true),
                            ];
                            let wq = &packed[((blk * kernel + ky) * quads + q) * 256..][..256];
                            let ones: Vec<i8> =
                                (0..64).map(|k| i8::from(4 * q + k % 4 < kernel)).collect();
                            for j in 0..4 {
                                zmm::dpbusd(&mut sums[j], &x[j], &wq[j * 64..][..64]);
                                zmm::dpbusd(&mut asum[j], &x[j], &ones);
                            }
                        }
                    }
                    let mut codes = [[0i32; 16]; 4];
                    for j in 0..4 {
                        for k in 0..16 {
                            let slot = blk * 64 + 16 * j + k;
                            let acc = sums[j][k] - zw_q[slot] * asum[j][k];
                            let r = multiply_by_quantized_multiplier_double(
                                acc,
                                mult[slot],
                                shift[slot],
                            );
                            let z = stage.output_zero_point;
                            codes[j][k] =
                                (r + z).clamp(i32::from(stage.act_min), i32::from(stage.act_max));
                        }
                    }
                    let bytes = zmm::narrow(&codes);
                    dst[ox * c + blk * 64..][..n].copy_from_slice(&bytes[..n]);
                    ox += pixels;
                }
            }
        }
        assert_eq!(
            got, want,
            "VNNI depthwise layout {h}x{w_}x{c} k{kernel} s{stride}"
        );
    }
}

#[test]
fn pools_match_reference() {
    let mut rng = Lcg(6);
    let g = ConvGeometry::new(5, 6, 3, 3, 2, true).unwrap();
    let input = rng.bytes(2 * g.in_len());
    let n_out = 2 * g.out_h() * g.out_w() * 3;
    let mut mx = vec![0u8; n_out];
    let mut av = vec![0u8; n_out];
    max_pool(&input, 2, &g, 0, 255, &mut mx).unwrap();
    avg_pool(&input, 2, &g, 10, 250, &mut av).unwrap();
    for b in 0..2 {
        for oy in 0..g.out_h() {
            for ox in 0..g.out_w() {
                for ch in 0..3 {
                    let mut taps = vec![];
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (oy * 2 + ky) as i64 - g.pad_top as i64;
                            let ix = (ox * 2 + kx) as i64 - g.pad_left as i64;
                            if iy >= 0 && ix >= 0 && iy < 5 && ix < 6 {
                                taps.push(i64::from(
                                    input[((b * 5 + iy as usize) * 6 + ix as usize) * 3 + ch],
                                ));
                            }
                        }
                    }
                    let idx = ((b * g.out_h() + oy) * g.out_w() + ox) * 3 + ch;
                    assert_eq!(i64::from(mx[idx]), *taps.iter().max().unwrap());
                    let (s, n) = (taps.iter().sum::<i64>(), taps.len() as i64);
                    let mean = (2 * s + n) / (2 * n); // round half up; sums are non-negative
                    assert_eq!(i64::from(av[idx]), mean.clamp(10, 250));
                }
            }
        }
    }
    let mut short = vec![0u8; n_out - 1];
    assert!(max_pool(&input, 2, &g, 0, 255, &mut short).is_err());
    assert!(avg_pool(&input, 2, &g, 9, 3, &mut av).is_err());
}

#[test]
fn add_matches_real_sum_within_one_lsb() {
    let (s1, z1, s2, z2, so, zo) = (0.02, 100, 0.05, 30, 0.06, 120);
    let p = AddParams::from_scales((s1, z1), (s2, z2), (so, zo), 0, 255).unwrap();
    for a in (0..=255u8).step_by(5) {
        for b in (0..=255u8).step_by(7) {
            let real = s1 * f64::from(i32::from(a) - z1) + s2 * f64::from(i32::from(b) - z2);
            let want = (real / so + f64::from(zo)).round().clamp(0.0, 255.0);
            for mode in [RoundingMode::Double, RoundingMode::Single] {
                let got = f64::from(p.add_one(a, b, mode));
                assert!((got - want).abs() <= 1.0, "{a} + {b}: {got} vs {want}");
            }
        }
    }
    let mut out = vec![0u8; 3];
    assert!(add(&[1, 2, 3], &[1, 2], &p, RoundingMode::Double, &mut out).is_err());
    assert!(AddParams::from_scales((0.0, 0), (1.0, 0), (1.0, 0), 0, 255).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_shapes_match_naive(m in 1usize..40, k in 1usize..70, n in 1usize..70, seed in any::<u64>()) {
        let mut rng = Lcg(seed);
        let c = random_case(&mut rng, m, k, n, false);
        let stage = random_stage(&mut rng, n, true, RoundingMode::Double);
        let acc = naive_acc(&c.a, m, k, &c.w, n, c.za, &c.zw, &stage.bias);
        let want: Vec<u8> = acc.iter().enumerate().map(|(i, &v)| naive_requant(v, &stage, i % n)).collect();
        for backend in Backend::available() {
            let p = PackedWeights::new(&c.w, k, n, &c.zw, backend).unwrap();
            let mut got = vec![0u8; m * n];
            gemm(&c.a, m, c.za, &p, &stage, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{:?}", backend);
        }
    }
}

#[test]
fn vector_output_stage_matches_scalar_on_edges() {
    let mut rng = Lcg(21);
    let edge_acc = [
        i32::MIN,
        i32::MIN + 1,
        -1,
        0,
        1,
        i32::MAX,
        1 << 30,
        -(1 << 30),
        12,
        -12,
        4,
        -4,
    ];
    let edge_mult = [
        i32::MIN,
        i32::MAX,
        1 << 30,
        -(1 << 30),
        0,
        1,
        -1,
        1_583_594_044,
    ];
    // With and without an `i32::MIN` multiplier: the vector path skips the MIN * MIN patch
    // when there is none.
    for (rounding, with_min) in [
        (RoundingMode::Double, true),
        (RoundingMode::Single, true),
        (RoundingMode::Double, false),
        (RoundingMode::Single, false),
    ] {
        for shift_range in [(-31, 0), (0, 0), (-31, -31), (-40, 3)] {
            let n = 67;
            let stage = OutputStage {
                bias: vec![],
                multipliers: (0..n)
                    .map(|j| {
                        let m = if j % 3 == 0 {
                            edge_mult[j % edge_mult.len()]
                        } else {
                            rng.range(i32::MIN, i32::MAX)
                        };
                        let m = if with_min || m != i32::MIN {
                            m
                        } else {
                            i32::MIN + 1
                        };
                        QuantizedMultiplier::new(m, rng.range(shift_range.0, shift_range.1))
                            .unwrap()
                    })
                    .collect(),
                rounding,
                output_zero_point: rng.range(0, 255),
                act_min: rng.range(0, 100) as u8,
                act_max: rng.range(150, 255) as u8,
            };
            // Per channel, and per tensor (one multiplier for all: the vector path's uniform
            // tables) with channel 0's.
            let per_tensor = OutputStage {
                multipliers: stage.multipliers[..1].to_vec(),
                ..stage.clone()
            };
            for (stage, backend) in [&stage, &per_tensor]
                .into_iter()
                .flat_map(|s| Backend::available().into_iter().map(move |b| (s, b)))
            {
                let tables = StageTables::new(stage, n, backend);
                for _ in 0..50 {
                    let acc: Vec<i32> = (0..n)
                        .map(|j| {
                            if j % 2 == 0 {
                                edge_acc[rng.below(edge_acc.len() as u64) as usize]
                            } else {
                                rng.range(i32::MIN, i32::MAX)
                            }
                        })
                        .collect();
                    let want: Vec<u8> = acc
                        .iter()
                        .enumerate()
                        .map(|(j, &v)| stage.requantize(v, j))
                        .collect();
                    let mut got = vec![0u8; n];
                    tables.requantize_into(&acc, None, &mut got);
                    assert_eq!(
                        got, want,
                        "{backend:?} {rounding:?} shifts {shift_range:?} MIN multiplier {with_min}"
                    );
                    // The same accumulators reached through a folded column offset (wrapping).
                    let offset: Vec<i32> = (0..n).map(|_| rng.range(i32::MIN, i32::MAX)).collect();
                    let shifted: Vec<i32> = acc
                        .iter()
                        .zip(&offset)
                        .map(|(&v, &o)| v.wrapping_sub(o))
                        .collect();
                    let mut got = vec![0u8; n];
                    tables.requantize_into(&shifted, Some(&offset), &mut got);
                    assert_eq!(got, want, "{backend:?} {rounding:?} with offsets");
                    // Two rows in one call, as the driver passes its blocks.
                    let two_rows = [shifted.as_slice(), &shifted].concat();
                    let mut got = vec![0u8; 2 * n];
                    tables.requantize_into(&two_rows, Some(&offset), &mut got);
                    assert_eq!(
                        got,
                        [want.as_slice(), &want].concat(),
                        "{backend:?} two rows"
                    );
                }
            }
        }
    }
}

/// The vector byte sum of the row-sum term against the plain sum, at every length that ends in a
/// different place within its 16-byte chunk and word (0-70 bytes), at every offset of a buffer of
/// 255s (where a byte counted twice or dropped changes the sum).
#[test]
fn byte_sum_matches_plain_sum() {
    let mut rng = Lcg(21);
    let random = rng.bytes(80);
    for data in [random, vec![255u8; 80]] {
        for start in 0..4 {
            for len in 0..=70 {
                let row = &data[start..start + len];
                let want: i32 = row.iter().map(|&v| i32::from(v)).sum();
                assert_eq!(byte_sum(row), want, "{len} bytes from {start}");
            }
        }
    }
}
