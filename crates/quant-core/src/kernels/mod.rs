//! Integer-only kernels: uint8 activations x int8 weights, int32 accumulation, fused output
//! stage (bias, requantize, output zero point, activation clamp).
//!
//! Layout follows tract-linalg: one portable implementation ([`scalar`]) and per-architecture
//! fast paths ([`x86::avx2`], [`x86::avx512_vnni`]) that only compute the raw `sum(a*b)` tiles
//! of a GEMM; everything else (zero-point corrections, requantization, clamping) is shared code,
//! so a fast path can only differ from the reference in the tile it computes, and the frame tests
//! check those tiles bit-exactly. The backend is chosen in one place, [`Backend::detect`].
//!
//! # Conventions
//!
//! * Activations are **uint8** codes with a zero point in `[0, 255]`. int8 activation tensors
//!   are handled exactly by the +128 shift (`q_u8 = q_i8 + 128`, `Z_u8 = Z_i8 + 128`, dossier
//!   §2.1): see [`i8_to_u8`] / [`u8_to_i8`]. This is the "+128 offset trick" that maps TFLite
//!   int8 onto `vpdpbusd`'s u8 x s8 form; the zero-point algebra absorbs it.
//! * Weights are **int8** codes with a per-output-channel zero point in `[-128, 127]` (a
//!   per-tensor zero point is the same value repeated). Paper-style uint8 weights convert with
//!   `q - 128`, `Z - 128`.
//! * GEMM shapes: `A` is `M x K` (rows are pixels or batch items), `W` is `K x N` (`N` output
//!   channels), output `M x N`, all row-major.
//!
//! # Zero points (paper eq. 7-8)
//!
//! `acc[m,n] = sum_k (a - Za)(w - Zw[n]) + bias[n]`
//! `         = sum_k a*w - Za*colsum_w[n] - Zw[n]*rowsum_a[m] + K*Za*Zw[n] + bias[n]`.
//! `colsum_w` is computed once when the weights are packed, `rowsum_a` once per row while the
//! activations are packed (skipped when all `Zw` are 0). The correction terms are evaluated with
//! wrapping int32 arithmetic: the result is exact whenever the true accumulator fits in int32,
//! which [`MAX_DEPTH`] guarantees for the products.
#![deny(clippy::float_arithmetic)]

pub mod add;
pub mod aligned;
pub mod conv;
pub mod pool;
pub mod prepared;
pub mod profile;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, arg_err, shape_err};
use crate::fixedpoint::{QuantizedMultiplier, RoundingMode};
use crate::ops::OpCounts;

pub use add::{AddParams, add};
pub use conv::{
    ConvGeometry, ConvShape, DepthwiseWeights, conv2d, conv2d_i32, depthwise_conv2d,
    depthwise_conv2d_i32,
};
pub use pool::{PoolGeometry, avg_pool, max_pool};
pub use prepared::ConvKernel;

/// Largest reduction depth `K` accepted: `floor((2^31 - 1) / 255^2)`, the number of products
/// `(a - Za)(w - Zw)` (each at most 255 * 255 in magnitude) that cannot overflow int32 (dossier §3).
pub const MAX_DEPTH: usize = 33025;

/// Work (multiply-adds) below which a GEMM stays on the calling thread: splitting smaller
/// problems costs more in synchronisation than it gains.
const PARALLEL_MIN_MACS: usize = 1 << 21;

/// Most rows packed and processed together per thread ([`MicroKernel::MC`]).
const MAX_MC: usize = 96;

/// The largest `MR * NR` of any microkernel (AMX: 32 x 32).
const MAX_TILE: usize = 1024;

/// Bytes after a built block of rows, so that a kernel that reads rows in place up to a padded
/// depth (AMX: the next multiple of 64) stays inside the buffer at its last row.
const ROW_SLACK: usize = 64;

/// The sum of `bytes` (the row-sum term `Zw * sum(a)` of the zero-point expansion, needed for
/// every row when weights have zero points): 16 bytes per `psadbw` on x86-64, the bytes after the
/// last whole 16 read as two overlapping words with the overlap shifted out, where the
/// byte-by-byte sum had taken a third of the stem convolution of an asymmetric MobileNetV1
/// (27-byte rows).
#[inline]
pub(crate) fn byte_sum(bytes: &[u8]) -> i32 {
    let n = bytes.len();
    #[cfg(target_arch = "x86_64")]
    if n >= 8 {
        use std::arch::x86_64::*;
        let (chunks, tail) = bytes.as_chunks::<16>();
        let word = |at: usize| {
            u64::from_le_bytes(*bytes[at..].first_chunk::<8>().expect("8 bytes from at"))
        };
        // The tail's `t` bytes: the last 8 bytes less the `8 - t` a chunk counted, or for
        // `t > 8` the 8 from `n - t` and the last 8 less the `16 - t` both words hold.
        let (lo, hi) = match tail.len() {
            0 => (0, 0),
            t if t > 8 => (word(n - t), word(n - 8) >> (8 * (16 - t))),
            t => (word(n - 8) >> (8 * (8 - t)), 0),
        };
        // SAFETY: SSE2 is part of the x86-64 baseline; each load reads one whole 16-byte array.
        let total = unsafe {
            let sad = |v: __m128i| _mm_sad_epu8(v, _mm_setzero_si128());
            let last = sad(_mm_set_epi64x(hi as i64, lo as i64));
            let acc = chunks.iter().fold(last, |acc, c| {
                _mm_add_epi64(acc, sad(_mm_loadu_si128(c.as_ptr() as *const __m128i)))
            });
            _mm_cvtsi128_si64(_mm_add_epi64(acc, _mm_unpackhi_epi64(acc, acc)))
        };
        return total as i32;
    }
    bytes.iter().map(|&v| i32::from(v)).sum()
}

/// `dst.copy_from_slice(src)` for the short runs of im2col, row packing and edge tiles (a window
/// row of a 3-channel 3x3 convolution is 9 bytes, its im2col row 27, an edge tile's row of 8
/// columns 8 int32): two overlapping fixed-size copies from either end, which compile to plain
/// moves, where a `memmove` call per run took a sixth of the stem convolution of MobileNetV1.
/// Longer runs go to `copy_from_slice`.
#[inline(always)]
pub(crate) fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    debug_assert_eq!(dst.len(), src.len());
    #[inline(always)]
    fn ends<T: Copy, const W: usize>(dst: &mut [T], src: &[T]) {
        let n = src.len();
        dst[..W].copy_from_slice(&src[..W]);
        dst[n - W..n].copy_from_slice(&src[n - W..]);
    }
    match src.len() {
        4..8 => ends::<T, 4>(dst, src),
        8..16 => ends::<T, 8>(dst, src),
        16..=32 => ends::<T, 16>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// One int8 weight zero point per output channel: a single value is broadcast to all `n`; any other
/// count than 1 or `n`, or a value outside int8, is an error.
pub(crate) fn per_channel_zero_points(zero_points: &[i32], n: usize) -> Result<Vec<i32>> {
    let zero_points = match zero_points.len() {
        1 => vec![zero_points[0]; n],
        l if l == n => zero_points.to_vec(),
        l => return Err(shape_err!("{l} weight zero points for {n} output channels")),
    };
    if let Some(z) = zero_points.iter().find(|z| !(-128..=127).contains(*z)) {
        return Err(arg_err!("weight zero point {z} outside int8"));
    }
    Ok(zero_points)
}

/// Column sums of a row-major `[rows][n]` int8 matrix: the weight sums that the zero-point
/// correction `Z_a * sum_k W[k][n]` needs (the paper's eq. 8 term, computed once at pack time).
pub(crate) fn column_sums(weights: &[i8], n: usize) -> Vec<i32> {
    let mut sums = vec![0i32; n];
    for row in weights.chunks_exact(n) {
        for (s, &w) in sums.iter_mut().zip(row) {
            *s += i32::from(w);
        }
    }
    sums
}

/// Which implementation computes the GEMM tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    /// Portable Rust, the reference.
    Scalar,
    /// x86-64 AVX2: weights widened to int16 at pack time, `vpmaddwd` into int32. Exact: no
    /// int16 saturation (unlike `vpmaddubsw`, whose pair sums can reach 2*255*127 > 32767).
    Avx2,
    /// x86-64 AVX-512 VNNI: `vpdpbusd`, u8 x s8 with four products summed straight into int32;
    /// the output stage and depthwise loops run on 16-lane zmm registers (AVX-512BW).
    ///
    /// Offered whenever the CPU has AVX-512F, BW and VNNI: the frame tests ran bit-exact with the
    /// real instruction on an AMD EPYC and an Intel Xeon (Sapphire Rapids class); machines without
    /// VNNI still test its packing and indexing through a lane-by-lane model of `vpdpbusd`.
    Avx512Vnni,
    /// x86-64 Intel AMX: `tdpbusd` on 16 x 16 int32 accumulator tiles, the same u8 x s8 quads as
    /// `vpdpbusd`; everything outside the GEMM tiles (output stage, depthwise) is the VNNI
    /// backend's. Offered when the CPU has AMX-INT8 and AVX-512 VNNI and the OS grants the tile
    /// state (Linux, see [`x86::amx::available`]).
    Amx,
}

impl Backend {
    /// The fastest backend this CPU supports (runtime detection).
    pub fn detect() -> Backend {
        *Backend::available().last().unwrap_or(&Backend::Scalar)
    }

    /// All backends this CPU supports, slowest first (the scalar reference is always there).
    pub fn available() -> Vec<Backend> {
        [
            Backend::Scalar,
            Backend::Avx2,
            Backend::Avx512Vnni,
            Backend::Amx,
        ]
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
    }

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Amx => Backend::Avx512Vnni.is_available() && x86::amx::available(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// `Ok` when this CPU can run the backend, else an error naming it.
    pub fn ensure_available(self) -> Result<()> {
        if self.is_available() {
            Ok(())
        } else {
            Err(arg_err!(
                "backend {} is not supported by this CPU",
                self.name()
            ))
        }
    }

    /// Lower-case name used in benchmark tables.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512Vnni => "avx512vnni",
            Backend::Amx => "amx",
        }
    }

    /// The backend [`Self::name`] calls `name`, if any (benchmarks force a backend with it).
    pub fn from_name(name: &str) -> Option<Backend> {
        [
            Backend::Scalar,
            Backend::Avx2,
            Backend::Avx512Vnni,
            Backend::Amx,
        ]
        .into_iter()
        .find(|b| b.name() == name)
    }
}

/// Converts int8 codes to uint8 codes representing the same reals (`q + 128`; pair it with
/// `Z + 128`).
pub fn i8_to_u8(values: &[i8]) -> Vec<u8> {
    values.iter().map(|&v| (v as u8) ^ 0x80).collect()
}

/// Converts uint8 codes to int8 codes representing the same reals (`q - 128`; pair it with
/// `Z - 128`).
pub fn u8_to_i8(values: &[u8]) -> Vec<i8> {
    values.iter().map(|&v| (v ^ 0x80) as i8).collect()
}

/// The fused output stage of one layer, applied to every int32 accumulator (paper §2.4):
/// `clamp(MBQM(acc + bias[n], M[n]) + Z_out, act_min, act_max)`, stored as uint8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputStage {
    /// int32 bias per output channel (scale `S_in * S_w[n]`, zero point 0), or empty for none.
    pub bias: Vec<i32>,
    /// One multiplier per output channel, or a single one for the whole tensor.
    pub multipliers: Vec<QuantizedMultiplier>,
    /// Double (paper) or single rounding.
    pub rounding: RoundingMode,
    /// Output zero point `Z_out`, in `[0, 255]`.
    pub output_zero_point: i32,
    /// Lowest output code after the activation clamp.
    pub act_min: u8,
    /// Highest output code after the activation clamp.
    pub act_max: u8,
}

impl OutputStage {
    /// What requantizing `per_channel` accumulators of each of `channels` channels performs
    /// ([`crate::ops`]): each channel's multiplier once per accumulator.
    pub fn op_counts(&self, channels: usize, per_channel: u64) -> OpCounts {
        let mut total = OpCounts::default();
        for j in 0..channels {
            total += self
                .multiplier_of(j)
                .op_counts(self.rounding)
                .times(per_channel);
        }
        total
    }

    /// Checks the stage against `n` output channels.
    pub fn validate(&self, n: usize) -> Result<()> {
        if !(self.bias.is_empty() || self.bias.len() == n) {
            return Err(shape_err!(
                "{} biases for {n} output channels",
                self.bias.len()
            ));
        }
        if !(self.multipliers.len() == 1 || self.multipliers.len() == n) {
            return Err(shape_err!(
                "{} multipliers for {n} output channels",
                self.multipliers.len()
            ));
        }
        if !(0..=255).contains(&self.output_zero_point) {
            return Err(arg_err!(
                "output zero point {} outside [0, 255]",
                self.output_zero_point
            ));
        }
        if self.act_min > self.act_max {
            return Err(arg_err!(
                "activation clamp [{}, {}] is empty",
                self.act_min,
                self.act_max
            ));
        }
        Ok(())
    }

    /// Bias of channel `n` (0 when there is no bias).
    #[inline]
    fn bias_of(&self, n: usize) -> i32 {
        self.bias.get(n).copied().unwrap_or(0)
    }

    /// Multiplier of channel `n` (the single one of a per-tensor stage).
    #[inline]
    pub fn multiplier_of(&self, n: usize) -> QuantizedMultiplier {
        match self.multipliers.len() {
            1 => self.multipliers[0],
            _ => self.multipliers[n],
        }
    }

    /// Requantizes one accumulator (bias already added) of channel `n`.
    #[inline]
    pub fn requantize(&self, acc: i32, n: usize) -> u8 {
        let v = self
            .multiplier_of(n)
            .apply(acc, self.rounding)
            .saturating_add(self.output_zero_point);
        v.clamp(i32::from(self.act_min), i32::from(self.act_max)) as u8
    }
}

/// An [`OutputStage`] expanded to one multiplier and right shift per channel, with the choice
/// between the vector and the scalar requantization made once per call.
pub(crate) struct StageTables<'a> {
    stage: &'a OutputStage,
    mult: Vec<i32>,
    right: Vec<i32>,
    /// The backend's vector stage; `None` on the scalar backend or when some shift is outside
    /// `[-31, 0]` (multipliers of 1 or more).
    vector: Option<VectorStage>,
    /// Some multiplier is `i32::MIN`, so the `MIN * MIN` saturation must be checked.
    may_saturate: bool,
}

/// The per-call constants of a vector output stage.
enum VectorStage {
    /// 8 lanes: `2^right - 1` per channel for the double rounding.
    #[cfg(target_arch = "x86_64")]
    Avx2 { mask: Vec<i32> },
    /// 16 lanes (the VNNI and AMX backends); the broadcast constants are six zmm, boxed.
    #[cfg(target_arch = "x86_64")]
    Avx512 {
        lanes: x86::avx512_vnni::LaneTables,
        requant: Box<x86::avx512_vnni::Requant16>,
    },
}

impl<'a> StageTables<'a> {
    /// Expands `stage` for `n` channels; the vector path of `backend` (AVX2, or AVX-512 for the
    /// VNNI and AMX backends) is used when it is an x86 one and every shift is in `[-31, 0]`
    /// (multipliers below 1, the paper's case).
    pub(crate) fn new(stage: &'a OutputStage, n: usize, backend: Backend) -> Self {
        let mult: Vec<i32> = (0..n).map(|j| stage.multiplier_of(j).multiplier).collect();
        let right: Vec<i32> = (0..n).map(|j| -stage.multiplier_of(j).shift).collect();
        let may_saturate = mult.contains(&i32::MIN);
        let vector = right
            .iter()
            .all(|r| (0..=31).contains(r))
            .then(|| VectorStage::new(stage, &mult, &right, may_saturate, backend))
            .flatten();
        StageTables {
            stage,
            mult,
            right,
            vector,
            may_saturate,
        }
    }

    /// Requantizes rows of accumulators (`acc` holds whole rows of the `n` channels the tables
    /// were made for) into `dst`, after adding `offset` (one entry per channel, wrapping) when
    /// given: the driver passes its per-column bias and zero-point terms here, so they cost no
    /// pass of their own over the int32 rows.
    #[inline]
    pub(crate) fn requantize_into(&self, acc: &[i32], offset: Option<&[i32]>, dst: &mut [u8]) {
        let n = self.mult.len();
        let scalar = |acc: &[i32], dst: &mut [u8], from: usize| {
            for j in from..n {
                let v = offset.map_or(acc[j], |o| acc[j].wrapping_add(o[j]));
                dst[j] = self.stage.requantize(v, j);
            }
        };
        let rows = acc.chunks_exact(n).zip(dst.chunks_exact_mut(n));
        match &self.vector {
            None => rows.for_each(|(acc, dst)| scalar(acc, dst, 0)),
            // No vector stage exists off x86 (the enum has no variants there).
            #[cfg(not(target_arch = "x86_64"))]
            Some(_) => rows.for_each(|(acc, dst)| scalar(acc, dst, 0)),
            // SAFETY: the stage exists only for a backend checked available (the VNNI and AMX
            // backends imply AVX-512F and BW); its tables cover channels 0..n.
            #[cfg(target_arch = "x86_64")]
            Some(VectorStage::Avx512 { lanes, requant }) => unsafe {
                x86::avx512_vnni::requantize_rows(acc, n, offset, lanes, requant, dst)
            },
            #[cfg(target_arch = "x86_64")]
            Some(VectorStage::Avx2 { mask }) => {
                for (acc, dst) in rows {
                    // SAFETY: as above (every x86 backend implies AVX2); the slices hold `n`.
                    let done = unsafe {
                        x86::avx2::requantize_row(
                            acc,
                            offset,
                            &self.mult,
                            &self.right,
                            mask,
                            self.stage.rounding == RoundingMode::Single,
                            self.may_saturate,
                            self.stage.output_zero_point,
                            i32::from(self.stage.act_min),
                            i32::from(self.stage.act_max),
                            dst,
                        )
                    };
                    scalar(acc, dst, done);
                }
            }
        }
    }
}

impl VectorStage {
    /// The vector stage of `backend` for channels with multipliers `mult` and right shifts
    /// `right` (all in `[0, 31]`); `None` on the scalar backend.
    #[allow(unused_variables)] // only x86 has vector stages
    fn new(
        stage: &OutputStage,
        mult: &[i32],
        right: &[i32],
        may_saturate: bool,
        backend: Backend,
    ) -> Option<Self> {
        match backend {
            Backend::Scalar => None,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Some(VectorStage::Avx2 {
                mask: right.iter().map(|&e| ((1i64 << e) - 1) as i32).collect(),
            }),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Vnni | Backend::Amx => {
                let single = stage.rounding == RoundingMode::Single;
                // SAFETY: both backends were checked available and imply AVX-512F and BW.
                let requant = unsafe {
                    x86::avx512_vnni::Requant16::new(
                        single,
                        may_saturate,
                        stage.output_zero_point,
                        i32::from(stage.act_min),
                        i32::from(stage.act_max),
                    )
                };
                Some(VectorStage::Avx512 {
                    lanes: x86::avx512_vnni::LaneTables::new(mult, right, single),
                    requant: Box::new(requant),
                })
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}

/// Packed weight panels of one backend.
#[derive(Debug, Clone, PartialEq)]
enum Panels {
    Scalar(Vec<i8>),
    #[cfg(target_arch = "x86_64")]
    Avx2(aligned::LineAligned<i16>),
    #[cfg(target_arch = "x86_64")]
    Vnni(aligned::LineAligned<i8>),
    #[cfg(target_arch = "x86_64")]
    Amx(aligned::LineAligned<i8>),
}

/// A `K x N` int8 weight matrix packed for one backend, with its column sums and zero points.
/// Packing happens once per layer (weights are constants).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedWeights {
    k: usize,
    n: usize,
    backend: Backend,
    panels: Panels,
    col_sums: Vec<i32>,
    zero_points: Vec<i32>,
}

impl PackedWeights {
    /// Packs row-major `K x N` int8 `weights` with `zero_points` (one per column, or one for
    /// all) for `backend`. Errors on shape mismatches, `K > MAX_DEPTH`, zero points outside
    /// int8, or a backend this CPU lacks.
    pub fn new(
        weights: &[i8],
        k: usize,
        n: usize,
        zero_points: &[i32],
        backend: Backend,
    ) -> Result<Self> {
        if k == 0 || n == 0 || weights.len() != k * n {
            return Err(shape_err!(
                "{} weights cannot form a {k} x {n} matrix",
                weights.len()
            ));
        }
        if k > MAX_DEPTH {
            return Err(arg_err!(
                "reduction depth {k} exceeds {MAX_DEPTH} (int32 accumulator could overflow)"
            ));
        }
        let zero_points = per_channel_zero_points(zero_points, n)?;
        backend.ensure_available()?;
        let col_sums = column_sums(weights, n);
        let panels = match backend {
            Backend::Scalar => Panels::Scalar(scalar::pack_b(weights, k, n)),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Panels::Avx2(x86::avx2::pack_b(weights, k, n)),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Vnni => Panels::Vnni(x86::avx512_vnni::pack_b(weights, k, n)),
            #[cfg(target_arch = "x86_64")]
            Backend::Amx => Panels::Amx(x86::amx::pack_b(weights, k, n)),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("is_available() is false for x86 backends on other architectures"),
        };
        Ok(PackedWeights {
            k,
            n,
            backend,
            panels,
            col_sums,
            zero_points,
        })
    }

    /// Reduction depth `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output channels `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The backend the panels were packed for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Column sums `sum_k w[k, n]` (paper's `a2[k]`).
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }

    /// Weight zero point per output channel.
    pub fn zero_points(&self) -> &[i32] {
        &self.zero_points
    }
}

/// A GEMM microkernel: packs `MR`-row blocks of activations and multiplies them with packed
/// weight panels of `NR` columns into an `MR x NR` int32 tile of raw `sum(a*w)`.
pub(crate) trait MicroKernel {
    /// Rows per tile.
    const MR: usize;
    /// Columns per tile (and per weight panel).
    const NR: usize;
    /// Rows packed, multiplied and requantized together per thread (a multiple of `MR`, at most
    /// [`MAX_MC`]): a block's int32 rows (`MC x N`) are written by the tiles and read back by
    /// the epilogue, so the block should stay in L1 with the weight panels it meets.
    const MC: usize = MAX_MC;
    /// Packed activation element.
    type A: aligned::LineElement;
    /// Packed weight element.
    type B: Copy + Send + Sync;
    /// Length of one packed `MR x K` activation block.
    fn a_block_len(k: usize) -> usize;
    /// Length of one packed `K x NR` weight panel.
    fn b_panel_len(k: usize) -> usize;
    /// Packs `rows <= MR` rows of `a` (row stride `k`) into `dst`, zero-padding missing rows and
    /// the tail of `K`.
    fn pack_a(a: &[u8], rows: usize, k: usize, dst: &mut [Self::A]);
    /// Row stride of a block made by [`Self::pack_a`] (row-major kernels; the interleaved
    /// ones ignore strides).
    fn a_stride(k: usize) -> usize {
        k
    }
    /// The `rows` rows at the start of `a` (row stride `k`; `a` runs on to the end of the rows
    /// the caller holds) as a block to multiply in place with `panels` weight panels, when a
    /// row-major kernel can read them so (at stride `k`) and that beats packing them; `None` asks
    /// for [`Self::pack_a`]. A kernel may read past the block's last row up to its padded depth,
    /// which is why `a` is not cut after it.
    fn borrow_a(_a: &[u8], _rows: usize, _k: usize, _panels: usize) -> Option<&[Self::A]> {
        None
    }
    /// Computes the raw tile `c[r * ldc + j] = sum_k a[r,k] * w[k,j]` for `r < MR`, `j < NR`.
    /// `lda` is the row stride of `a`: `k` for a borrowed block, [`Self::a_stride`] for a packed
    /// one. The row stride `ldc` lets a full tile land straight in the rows of accumulators that
    /// the epilogue reads, instead of going through a scratch tile and a copy.
    ///
    /// # Safety
    /// The CPU must support the kernel's instruction set and the call must run inside
    /// [`Self::with_tiles`]; `a` must be a block from [`Self::pack_a`] or [`Self::borrow_a`]
    /// (the kernels assert the lengths they read), `b` a panel of [`Self::b_panel_len`],
    /// `ldc >= NR` and `c` at least `(MR - 1) * ldc + NR` elements.
    unsafe fn tile(a: &[Self::A], lda: usize, b: &[Self::B], k: usize, c: &mut [i32], ldc: usize);
    /// [`Self::tile`] for an edge tile, of which only the first `rows <= MR` rows and `cols <=
    /// NR` columns are used (the last block of rows, the last panel): a kernel may compute less
    /// than the whole tile there, but must cover that corner. When `N = 100` meets 32-column
    /// panels and `M = 64` meets 12-row blocks, whole edge tiles are 30 % of a GEMM's products.
    ///
    /// # Safety
    /// As [`Self::tile`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_edge(
        a: &[Self::A],
        lda: usize,
        b: &[Self::B],
        k: usize,
        c: &mut [i32],
        ldc: usize,
        _rows: usize,
        _cols: usize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { Self::tile(a, lda, b, k, c, ldc) }
    }
    /// Whether the kernel multiplies a [`WindowRun`] read in place ([`Self::tile_window`]);
    /// the others get the run's im2col rows.
    const READS_WINDOWS: bool = false;
    /// [`Self::tile`] of the `MR` rows of `window`, read where they lie in the convolution's
    /// input. Only called when [`Self::READS_WINDOWS`].
    ///
    /// # Safety
    /// As [`Self::tile`], with `b` a panel of depth `window`'s row length.
    unsafe fn tile_window(_window: &WindowRun, _b: &[Self::B], _c: &mut [i32], _ldc: usize) {
        unreachable!("tile_window of a kernel that does not read windows")
    }
    /// Runs `f`, which makes the [`Self::tile`] calls of one block of work, with the per-thread
    /// state the kernel needs set up around it. AMX loads its tile configuration here, once per
    /// thread and GEMM call: loading and releasing it around every tile cost a fifth of the
    /// time at `K = 288`.
    ///
    /// # Safety
    /// The CPU must support the kernel's instruction set.
    unsafe fn with_tiles<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// The activation matrix `A` (`M x K` uint8) of a GEMM: stored row-major, or built a block of
/// rows at a time. Convolutions build their im2col rows per block, so the column matrix (the
/// input times the window size, 58 MB for a batch of 64 at 56 x 56 x 32 with 3 x 3 windows) is
/// never allocated whole; each thread holds one block of [`MicroKernel::MC`]` x K`.
pub(crate) enum Rows<'a> {
    /// A row-major `M x K` matrix.
    Stored(&'a [u8]),
    /// Convolution rows: `fill(first_row, dst)` writes rows `first_row..first_row + dst.len() /
    /// K` into `dst` (im2col); a block of rows that `run` reports as a [`WindowRun`] is read in
    /// place instead by kernels that can ([`MicroKernel::READS_WINDOWS`]).
    Built {
        fill: &'a (dyn Fn(usize, &mut [u8]) + Sync),
        /// `run(first_row, count)`: rows `first_row..first_row + count` as a run, if they are one.
        run: &'a (dyn Fn(usize, usize) -> Option<WindowRun<'a>> + Sync),
    },
}

/// Most window rows (segments) of a [`WindowRun`].
pub(crate) const MAX_SEGMENTS: usize = 8;

/// `MR` consecutive convolution rows (output pixels of one output row, every window inside the
/// image) as they lie in the input: row `r` is the concatenation over the window rows of
/// `input[start + r * step..][..seg_len]`, `step` the input bytes between neighbouring windows
/// (`stride * channels`), `seg_len` a window row (`kernel_w * channels`, a multiple of 4).
pub(crate) struct WindowRun<'a> {
    input: &'a [u8],
    starts: [usize; MAX_SEGMENTS],
    segments: usize,
    step: usize,
    seg_len: usize,
}

impl<'a> WindowRun<'a> {
    /// The run with segment starts `starts` (at most [`MAX_SEGMENTS`]); `None` when the
    /// segments are not whole quads or there are too many.
    pub(crate) fn new(
        input: &'a [u8],
        starts: impl ExactSizeIterator<Item = usize>,
        step: usize,
        seg_len: usize,
    ) -> Option<WindowRun<'a>> {
        let segments = starts.len();
        if segments > MAX_SEGMENTS || !seg_len.is_multiple_of(4) {
            return None;
        }
        let mut all = [0; MAX_SEGMENTS];
        all.iter_mut().zip(starts).for_each(|(a, s)| *a = s);
        Some(WindowRun {
            input,
            starts: all,
            segments,
            step,
            seg_len,
        })
    }

    /// `(input, segment starts, step, segment length)`.
    pub(crate) fn parts(&self) -> (&'a [u8], &[usize], usize, usize) {
        (
            self.input,
            &self.starts[..self.segments],
            self.step,
            self.seg_len,
        )
    }

    /// The sum of row `r`'s bytes (the row-sum term of the zero-point expansion).
    fn row_sum(&self, r: usize) -> i32 {
        self.starts[..self.segments]
            .iter()
            .map(|&s| byte_sum(&self.input[s + r * self.step..][..self.seg_len]))
            .sum()
    }
}

impl Rows<'_> {
    /// A buffer for [`Self::get`] of up to `len` bytes plus [`ROW_SLACK`] (empty for stored
    /// rows).
    fn scratch(&self, len: usize) -> aligned::LineAligned<u8> {
        match self {
            Rows::Stored(_) => aligned::LineAligned::default(),
            Rows::Built { .. } => aligned::LineAligned::zeroed(len + ROW_SLACK),
        }
    }

    /// Rows `r0..r0 + count`, `k` bytes each, followed by whatever the buffer holds after them
    /// (later rows, or [`ROW_SLACK`] bytes of a built block): borrowed when stored, built into
    /// `buf` otherwise. The tail lets a kernel read its padded depth in place (see
    /// [`MicroKernel::borrow_a`]).
    fn get<'s>(&'s self, r0: usize, count: usize, k: usize, buf: &'s mut [u8]) -> &'s [u8] {
        match self {
            Rows::Stored(a) => &a[r0 * k..],
            Rows::Built { fill, .. } => {
                fill(r0, &mut buf[..count * k]);
                buf
            }
        }
    }
}

/// Computes `out = epilogue(A x W + zero-point corrections + bias)` for the `M x K` rows `a`,
/// calling `epilogue(acc, offset, out_rows)` once per block of full rows (`acc` and `out_rows`
/// hold whole rows of `N`): `acc` holds the raw products less the row-sum term, and the epilogue
/// adds the per-column `offset` (bias and the `Za` terms) itself, in the same pass as its
/// requantization. One call per block rather than per row: with `N = 64` the per-row calls
/// cost a tenth of a conv-as-GEMM.
#[allow(clippy::too_many_arguments)]
fn drive<K: MicroKernel, T: Send, F>(
    a: &Rows,
    m: usize,
    za: i32,
    w: &PackedWeights,
    panels: &[K::B],
    bias: &dyn Fn(usize) -> i32,
    out: &mut [T],
    epilogue: &F,
) where
    F: Fn(&[i32], &[i32], &mut [T]) + Sync,
{
    let (k, n) = (w.k, w.n);
    // Column offsets folded once: bias - Za*colsum + K*Za*Zw (wrapping: exact when the final
    // accumulator fits, see the module docs).
    let k32 = k as i32;
    let col_offset: Vec<i32> = (0..n)
        .map(|j| {
            bias(j)
                .wrapping_sub(za.wrapping_mul(w.col_sums[j]))
                .wrapping_add(k32.wrapping_mul(za).wrapping_mul(w.zero_points[j]))
        })
        .collect();
    let need_row_sums = w.zero_points.iter().any(|&z| z != 0);
    let uniform_zero_point = w
        .zero_points
        .iter()
        .all(|&z| z == w.zero_points[0])
        .then_some(w.zero_points[0]);
    let panel_len = K::b_panel_len(k);
    let n_panels = n.div_ceil(K::NR);

    // Raw tiles of a block of rows are gathered into full rows (`K::MC x N` int32) and the
    // zero-point correction and epilogue run once per row over all `N` columns: per-tile
    // epilogues on 16-column runs cost a fifth of the time when `N` is small (conv-as-GEMM).
    let run_chunk = |first_row: usize, out_chunk: &mut [T]| {
        let rows = out_chunk.len() / n;
        let blocks_per_mc = K::MC / K::MR;
        let a_len = K::a_block_len(k);
        // Packed blocks start on a 64-byte boundary (tile loads of rows that straddle cache lines
        // run at half speed; see `x86::amx`); AMX blocks are whole multiples of 64 bytes, so each
        // of them starts on one too. So do the int32 rows the tiles store for the epilogue.
        let mut a_pack = aligned::LineAligned::<K::A>::zeroed(a_len * blocks_per_mc);
        let mut row_sums = [0i32; MAX_MC];
        let mut tile = [0i32; MAX_TILE];
        let mut raw = aligned::LineAligned::<i32>::zeroed(K::MC.min(rows) * n);
        let mut built = a.scratch(K::MC.min(rows) * k);
        let mut clock = profile::Clock::start();
        let work = || {
            for mc0 in (0..rows).step_by(K::MC) {
                let mc = K::MC.min(rows - mc0);
                let blocks = mc.div_ceil(K::MR);
                // Blocks that are a run of windows are read where they lie, when the kernel can;
                // the others are built (or stored).
                let mut runs: [Option<WindowRun>; MAX_MC] = [const { None }; MAX_MC];
                let a_rows: &[u8] = match a {
                    Rows::Built { fill, run } if K::READS_WINDOWS => {
                        for (b, slot) in runs.iter_mut().take(blocks).enumerate() {
                            let (r0, nr) = (b * K::MR, K::MR.min(mc - b * K::MR));
                            let row = first_row + mc0 + r0;
                            *slot = (nr == K::MR).then(|| run(row, nr)).flatten();
                            if slot.is_none() {
                                fill(row, &mut built[r0 * k..(r0 + nr) * k]);
                            }
                        }
                        &built[..]
                    }
                    _ => a.get(first_row + mc0, mc, k, &mut built),
                };
                // Each other block is borrowed from the rows when the kernel can read them in
                // place, packed into its slot of `a_pack` otherwise.
                let mut borrowed = [false; MAX_MC];
                for (b, slot) in a_pack.chunks_exact_mut(a_len).take(blocks).enumerate() {
                    let r0 = b * K::MR;
                    let nr = K::MR.min(mc - r0);
                    if let Some(run) = &runs[b] {
                        if need_row_sums {
                            for r in 0..nr {
                                row_sums[r0 + r] = run.row_sum(r);
                            }
                        }
                        continue;
                    }
                    let src = &a_rows[r0 * k..(r0 + nr) * k];
                    borrowed[b] = K::borrow_a(&a_rows[r0 * k..], nr, k, n_panels).is_some();
                    if !borrowed[b] {
                        K::pack_a(src, nr, k, slot);
                    }
                    if need_row_sums {
                        for (r, row) in src.chunks_exact(k).enumerate() {
                            row_sums[r0 + r] = byte_sum(row);
                        }
                    }
                }
                let block = |b: usize| -> &[K::A] {
                    let r0 = b * K::MR;
                    match borrowed[b] {
                        true => K::borrow_a(&a_rows[r0 * k..], K::MR, k, n_panels)
                            .expect("borrowed when packing"),
                        false => &a_pack[b * a_len..(b + 1) * a_len],
                    }
                };
                let lda = |b: usize| if borrowed[b] { k } else { K::a_stride(k) };
                clock.lap(profile::Phase::Pack);
                for p in 0..n_panels {
                    let c0 = p * K::NR;
                    let nc = K::NR.min(n - c0);
                    let panel = &panels[p * panel_len..(p + 1) * panel_len];
                    for (b, run) in runs.iter().take(blocks).enumerate() {
                        let r0 = b * K::MR;
                        let nr = K::MR.min(mc - r0);
                        // A full tile lands in the rows of `raw`, an edge tile in `tile` first.
                        let full = nc == K::NR && nr == K::MR;
                        let (c, ldc) = match full {
                            true => (&mut raw[r0 * n + c0..], n),
                            false => (&mut tile[..], K::NR),
                        };
                        // SAFETY: inside `with_tiles` of an available backend; the slices have the
                        // lengths the kernel documents (a full tile ends inside `raw`: row
                        // `r0 + MR - 1 < mc`, columns `c0 + NR <= n`), and runs are only made for
                        // kernels that read them.
                        unsafe {
                            match run {
                                Some(run) => K::tile_window(run, panel, c, ldc),
                                None if full => K::tile(block(b), lda(b), panel, k, c, ldc),
                                None => K::tile_edge(block(b), lda(b), panel, k, c, ldc, nr, nc),
                            }
                        }
                        if !full {
                            for r in 0..nr {
                                copy_run(
                                    &mut raw[(r0 + r) * n + c0..][..nc],
                                    &tile[r * K::NR..][..nc],
                                );
                            }
                        }
                    }
                }
                clock.lap(profile::Phase::Tile);
                if need_row_sums {
                    for (acc, &rs) in raw.chunks_exact_mut(n).zip(&row_sums[..mc]) {
                        match uniform_zero_point {
                            // One zero point (Jacob's per-tensor weights): one product per row.
                            // This loop runs without the kernels' target features, where a
                            // 32-bit multiply per value is emulated with shuffles.
                            Some(z) => {
                                let term = z.wrapping_mul(rs);
                                acc.iter_mut().for_each(|v| *v = v.wrapping_sub(term));
                            }
                            None => {
                                for (v, &z) in acc.iter_mut().zip(&w.zero_points) {
                                    *v = v.wrapping_sub(z.wrapping_mul(rs));
                                }
                            }
                        }
                    }
                }
                epilogue(
                    &raw[..mc * n],
                    &col_offset,
                    &mut out_chunk[mc0 * n..(mc0 + mc) * n],
                );
                clock.lap(profile::Phase::Epilogue);
            }
        };
        // SAFETY: the backend was checked available when `w` was packed.
        unsafe { K::with_tiles(work) };
    };

    let threads = rayon::current_num_threads();
    if threads <= 1 || m * n * k < PARALLEL_MIN_MACS || m < 2 * K::MR {
        run_chunk(0, out);
    } else {
        let chunk_rows = m.div_ceil(threads).div_ceil(K::MR) * K::MR;
        out.par_chunks_mut(chunk_rows * n)
            .enumerate()
            .for_each(|(i, out_chunk)| run_chunk(i * chunk_rows, out_chunk));
    }
}

/// Dispatches [`drive`] on the backend the weights were packed for (the one dispatch point).
fn dispatch<T: Send, F>(
    a: &Rows,
    m: usize,
    za: i32,
    w: &PackedWeights,
    bias: &dyn Fn(usize) -> i32,
    out: &mut [T],
    f: &F,
) where
    F: Fn(&[i32], &[i32], &mut [T]) + Sync,
{
    match &w.panels {
        Panels::Scalar(p) => drive::<scalar::Kernel, T, F>(a, m, za, w, p, bias, out, f),
        #[cfg(target_arch = "x86_64")]
        Panels::Avx2(p) => drive::<x86::avx2::Kernel, T, F>(a, m, za, w, p, bias, out, f),
        #[cfg(target_arch = "x86_64")]
        Panels::Vnni(p) => drive::<x86::avx512_vnni::Kernel, T, F>(a, m, za, w, p, bias, out, f),
        #[cfg(target_arch = "x86_64")]
        Panels::Amx(p) => drive::<x86::amx::Kernel, T, F>(a, m, za, w, p, bias, out, f),
    }
}

fn check_gemm(a: &[u8], m: usize, za: i32, w: &PackedWeights, out_len: usize) -> Result<()> {
    if a.len() != m * w.k {
        return Err(shape_err!(
            "activation buffer of {} bytes is not {m} x {}",
            a.len(),
            w.k
        ));
    }
    check_output(m, za, w, out_len)
}

fn check_output(m: usize, za: i32, w: &PackedWeights, out_len: usize) -> Result<()> {
    if out_len != m * w.n {
        return Err(shape_err!(
            "output buffer of {out_len} elements is not {m} x {}",
            w.n
        ));
    }
    if !(0..=255).contains(&za) {
        return Err(arg_err!("activation zero point {za} outside [0, 255]"));
    }
    Ok(())
}

/// Quantized GEMM / fully connected layer with the fused output stage:
/// `out[m, n] = stage(sum_k (a[m,k] - Za)(w[k,n] - Zw[n]) + bias[n])`.
///
/// `a` is row-major `M x K` uint8, `out` row-major `M x N` uint8. Uses both cores for large
/// problems (the current rayon pool decides the thread count).
pub fn gemm(
    a: &[u8],
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    stage: &OutputStage,
    out: &mut [u8],
) -> Result<()> {
    check_gemm(a, m, a_zero_point, w, out.len())?;
    gemm_rows(&Rows::Stored(a), m, a_zero_point, w, stage, out)
}

/// [`gemm`] on rows that may be built block by block (convolutions).
pub(crate) fn gemm_rows(
    a: &Rows,
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    stage: &OutputStage,
    out: &mut [u8],
) -> Result<()> {
    check_output(m, a_zero_point, w, out.len())?;
    stage.validate(w.n)?;
    let tables = StageTables::new(stage, w.n, w.backend);
    let epilogue = |acc: &[i32], offset: &[i32], dst: &mut [u8]| {
        tables.requantize_into(acc, Some(offset), dst)
    };
    dispatch(a, m, a_zero_point, w, &|j| stage.bias_of(j), out, &epilogue);
    Ok(())
}

/// The int32 accumulators `sum_k (a[m,k] - Za)(w[k,n] - Zw[n]) + bias[n]` without
/// requantization (for integer training, tests, or custom output stages). `bias` is empty or
/// has one entry per column.
pub fn gemm_i32(
    a: &[u8],
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    bias: &[i32],
    out: &mut [i32],
) -> Result<()> {
    check_gemm(a, m, a_zero_point, w, out.len())?;
    gemm_rows_i32(&Rows::Stored(a), m, a_zero_point, w, bias, out)
}

/// [`gemm_i32`] on rows that may be built block by block (convolutions).
pub(crate) fn gemm_rows_i32(
    a: &Rows,
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    bias: &[i32],
    out: &mut [i32],
) -> Result<()> {
    check_output(m, a_zero_point, w, out.len())?;
    if !(bias.is_empty() || bias.len() == w.n) {
        return Err(shape_err!(
            "{} biases for {} output channels",
            bias.len(),
            w.n
        ));
    }
    dispatch(
        a,
        m,
        a_zero_point,
        w,
        &|j| bias.get(j).copied().unwrap_or(0),
        out,
        &add_offsets,
    );
    Ok(())
}

fn add_offsets(acc: &[i32], offset: &[i32], dst: &mut [i32]) {
    for ((d, &v), &o) in dst.iter_mut().zip(acc).zip(offset.iter().cycle()) {
        *d = v.wrapping_add(o);
    }
}

#[cfg(test)]
mod tests;
