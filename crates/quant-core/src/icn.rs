//! Requantization of int32 accumulators to sub-byte outputs (Rusci et al. 2020, dossier §5): the
//! three ways a mixed-precision MobileNet can fold batch norm and rescaling into integer arithmetic.
//!
//! * **Per-layer folding (FB)**: BN folded into the weights, one multiplier `M = S_x·S_w / S_y` for
//!   the layer and an int32 bias per channel.
//! * **Integer Channel-Normalization (ICN)**: BN kept out of the weights and applied as a per-channel
//!   multiplier `m_c = (γ_c/σ_c)·S_x·S_w,c / S_y` (sign of γ included) and an int32 bias per channel.
//! * **Thresholds**: `2^Q - 1` accumulator thresholds per channel; the output is the number passed.
//!
//! FB and ICN compute `y = clamp(floor(m·(acc + B)), 0, 2^Q - 1)` with `m = M0·2^(shift-31)` as a
//! [`QuantizedMultiplier`]. The product is formed exactly in int128 and floored by an arithmetic
//! shift, matching the floor of the PACT quantizer the network was trained with (the firmware's
//! `HI32` + shift + `__USAT` computes the same floor when its shift absorbs the extra factor 2).
#![deny(clippy::float_arithmetic)]

use crate::error::{Result, arg_err, shape_err};
use crate::fixedpoint::QuantizedMultiplier;
use crate::graph::{Data, Kind, Requantizer};
use crate::ops::OpCounts;
use crate::subbyte::{BitWidth, Packed};

/// `floor(v · M0 · 2^(shift - 31))`, exact, saturated to int64.
///
/// Vectors: `(4, 0.75) -> 3`, `(-1, 0.75) -> -1` (floor, not truncation), `(5, -0.5) -> -3`.
#[inline]
pub fn scale_floor(v: i64, m: QuantizedMultiplier) -> i64 {
    let e = m.shift - 31;
    // The common case (a right shift of a product that fits int64: every `v` of an int32
    // accumulator plus an int32 bias but one) in int64, where `>>` is the same floor.
    if e < 0
        && let Some(p) = v.checked_mul(i64::from(m.multiplier))
    {
        return p >> (-e).min(63);
    }
    let p = i128::from(v) * i128::from(m.multiplier);
    let r = if e >= 0 { p << e } else { p >> (-e) };
    r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// How a layer's accumulators become output codes.
#[derive(Debug, Clone, PartialEq)]
pub enum Requant {
    /// Per-layer folding: one multiplier, a bias per channel.
    PerLayer {
        multiplier: QuantizedMultiplier,
        bias: Vec<i32>,
    },
    /// ICN: a multiplier and a bias per channel.
    PerChannel {
        multipliers: Vec<QuantizedMultiplier>,
        bias: Vec<i32>,
    },
    /// `2^Q - 1` thresholds per channel (channel-major); an increasing channel outputs the number of
    /// thresholds `t` with `acc >= t`, a decreasing one (negative BN scale) those with `acc <= t`.
    Thresholds {
        thresholds: Vec<i32>,
        increasing: Vec<bool>,
    },
}

impl Requant {
    /// Output channels.
    pub fn channels(&self) -> usize {
        match self {
            Requant::PerLayer { bias, .. } | Requant::PerChannel { bias, .. } => bias.len(),
            Requant::Thresholds { increasing, .. } => increasing.len(),
        }
    }

    /// `floor(m_c·(acc + B_c))` of channel `c`, unclamped (FB and ICN only).
    #[inline]
    fn scaled(&self, acc: i32, c: usize) -> Option<i64> {
        match self {
            Requant::PerLayer { multiplier, bias } => Some(scale_floor(
                i64::from(acc) + i64::from(bias[c]),
                *multiplier,
            )),
            Requant::PerChannel { multipliers, bias } => Some(scale_floor(
                i64::from(acc) + i64::from(bias[c]),
                multipliers[c],
            )),
            Requant::Thresholds { .. } => None,
        }
    }

    /// What requantizing `outputs` accumulators performs ([`crate::ops`]): under FB and ICN one
    /// 32-bit multiply and one shift each ([`scale_floor`]); thresholds only compare, which the
    /// counts do not tally.
    pub fn op_counts(&self, outputs: u64) -> OpCounts {
        match self {
            Requant::PerLayer { .. } | Requant::PerChannel { .. } => OpCounts {
                mul_32x32: outputs,
                shifts: outputs,
                ..OpCounts::default()
            },
            Requant::Thresholds { .. } => OpCounts::default(),
        }
    }

    /// Bytes of the stored parameters: int32 bias and multiplier and an int8 shift per channel
    /// (one multiplier and shift under FB), int32 thresholds.
    pub fn stored_bytes(&self) -> usize {
        match self {
            Requant::PerLayer { bias, .. } => 4 * bias.len() + 5,
            Requant::PerChannel { bias, .. } => 9 * bias.len(),
            Requant::Thresholds { thresholds, .. } => 4 * thresholds.len(),
        }
    }

    /// Requantizes HWC accumulators (channel fastest) to packed `out_bits` codes, saturating to
    /// `[0, 2^Q - 1]`.
    pub fn apply(&self, acc: &[i32], out_bits: BitWidth) -> Result<Packed> {
        Packed::pack(&self.codes(acc, out_bits)?, out_bits)
    }

    /// [`Self::apply`]'s codes, one per byte.
    pub fn codes(&self, acc: &[i32], out_bits: BitWidth) -> Result<Vec<u8>> {
        let cout = self.channels();
        if cout == 0 || !acc.len().is_multiple_of(cout) {
            return Err(shape_err!(
                "{} accumulators are not a multiple of {cout} channels",
                acc.len()
            ));
        }
        let max = out_bits.max_code();
        if let Requant::Thresholds { thresholds, .. } = self
            && thresholds.len() != cout * usize::from(max)
        {
            return Err(shape_err!(
                "{} thresholds do not match {cout} channels x {max} levels",
                thresholds.len()
            ));
        }
        Ok(match self {
            Requant::PerLayer { multiplier, bias } => scaled_codes(acc, bias, |_| *multiplier, max),
            Requant::PerChannel { multipliers, bias } => {
                scaled_codes(acc, bias, |c| multipliers[c], max)
            }
            Requant::Thresholds {
                thresholds,
                increasing,
            } => acc
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    let c = i % cout;
                    let t = &thresholds[c * usize::from(max)..(c + 1) * usize::from(max)];
                    let passed = if increasing[c] {
                        t.iter().filter(|&&t| a >= t).count()
                    } else {
                        t.iter().filter(|&&t| a <= t).count()
                    };
                    passed as u8
                })
                .collect(),
        })
    }

    /// Unclamped outputs for the classifier (logits); thresholds cannot produce logits.
    pub fn logits(&self, acc: &[i32]) -> Result<Vec<i64>> {
        let cout = self.channels();
        if acc.len() != cout {
            return Err(shape_err!("{} accumulators for {cout} logits", acc.len()));
        }
        acc.iter()
            .enumerate()
            .map(|(c, &a)| {
                self.scaled(a, c)
                    .ok_or_else(|| arg_err!("a thresholds layer cannot produce logits"))
            })
            .collect()
    }

    /// The thresholds that reproduce FB/ICN exactly: for each level `k` the accumulator where
    /// `floor(m_c·(acc + B_c))` reaches `k`, from integer arithmetic on `M0` and the shift
    /// (`acc >= ceil(k·2^(31 - shift) / M0) - B` for `M0 > 0`, mirrored for `M0 < 0`). Thresholds
    /// built from the real BN parameters instead differ only where `M0`'s rounding moves a level.
    pub fn to_thresholds(&self, out_bits: BitWidth) -> Result<Requant> {
        let cout = self.channels();
        let (mults, bias): (Vec<QuantizedMultiplier>, &[i32]) = match self {
            Requant::PerLayer { multiplier, bias } => (vec![*multiplier; cout], bias),
            Requant::PerChannel { multipliers, bias } => (multipliers.clone(), bias),
            Requant::Thresholds { .. } => return Ok(self.clone()),
        };
        let mut thresholds = Vec::with_capacity(cout * usize::from(out_bits.max_code()));
        let mut increasing = Vec::with_capacity(cout);
        for (m, &b) in mults.iter().zip(bias) {
            if m.multiplier == 0 {
                return Err(arg_err!(
                    "a zero multiplier has no thresholds (constant output)"
                ));
            }
            let m0 = i128::from(m.multiplier);
            let e = 31 - m.shift; // k·2^e / M0 is the real threshold on acc + B.
            for k in 1..=i128::from(out_bits.max_code()) {
                let (num, den) = if e >= 0 {
                    (k << e, m0)
                } else {
                    (k, m0 << (-e))
                };
                let t = if m0 > 0 {
                    -((-num).div_euclid(den)) // ceil(num / den): first acc + B reaching level k
                } else {
                    (-num).div_euclid(-den) // floor(num / den), den < 0: last acc + B at level k
                };
                let t = t - i128::from(b);
                thresholds.push(t.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32);
            }
            increasing.push(m0 > 0);
        }
        Ok(Requant::Thresholds {
            thresholds,
            increasing,
        })
    }
}

/// FB and ICN on rows of `bias.len()` channels: `floor(m_c·(acc + B_c))` clamped to `[0, max]`,
/// `mult(c)` the multiplier of channel `c` (generic, so that a per-layer one stays in a register).
fn scaled_codes(
    acc: &[i32],
    bias: &[i32],
    mult: impl Fn(usize) -> QuantizedMultiplier,
    max: u8,
) -> Vec<u8> {
    let mut codes = Vec::with_capacity(acc.len());
    for row in acc.chunks_exact(bias.len()) {
        for (c, (&a, &b)) in row.iter().zip(bias).enumerate() {
            let v = scale_floor(i64::from(a) + i64::from(b), mult(c));
            codes.push(v.clamp(0, i64::from(max)) as u8);
        }
    }
    codes
}

/// A layer's requantization to `bits`-bit codes on the integer graph ([`crate::graph`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CodeStage {
    /// FB, ICN or thresholds.
    pub requant: Requant,
    /// Output width.
    pub bits: BitWidth,
}

impl Requantizer for CodeStage {
    fn output(&self) -> Kind {
        Kind::Codes {
            bits: self.bits,
            zero_point: 0,
        }
    }

    fn channels(&self) -> usize {
        self.requant.channels()
    }

    fn apply(&self, acc: &[i32]) -> Result<Data> {
        self.requant.codes(acc, self.bits).map(Data::Codes)
    }

    fn op_counts(&self, per_channel: u64) -> OpCounts {
        self.requant.op_counts(per_channel * self.channels() as u64)
    }

    fn stored_bytes(&self) -> usize {
        self.requant.stored_bytes()
    }
}

/// The classifier's rescaling to int64 logits of one scale ([`Requant::logits`]) on the integer
/// graph.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitStage(pub Requant);

impl Requantizer for LogitStage {
    fn output(&self) -> Kind {
        Kind::Int64
    }

    fn channels(&self) -> usize {
        self.0.channels()
    }

    fn apply(&self, acc: &[i32]) -> Result<Data> {
        let mut logits = Vec::with_capacity(acc.len());
        for image in acc.chunks(self.channels().max(1)) {
            logits.extend(self.0.logits(image)?);
        }
        Ok(Data::Int64(logits))
    }

    fn op_counts(&self, per_channel: u64) -> OpCounts {
        self.0.op_counts(per_channel * self.channels() as u64)
    }

    fn stored_bytes(&self) -> usize {
        self.0.stored_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qm(multiplier: i32, shift: i32) -> QuantizedMultiplier {
        QuantizedMultiplier { multiplier, shift }
    }

    #[test]
    fn scale_floor_vectors() {
        let three_quarters = qm(1_610_612_736, 0);
        assert_eq!(scale_floor(4, three_quarters), 3);
        assert_eq!(scale_floor(-1, three_quarters), -1);
        assert_eq!(scale_floor(5, qm(-1_073_741_824, 0)), -3);
        // 0.75 · 2^-40: tiny multipliers floor to 0 for positive and -1 for negative inputs.
        assert_eq!(scale_floor(1000, qm(1_610_612_736, -40)), 0);
        assert_eq!(scale_floor(-1000, qm(1_610_612_736, -40)), -1);
        // Left shift: 0.5 · 2^4 = 8.
        assert_eq!(scale_floor(3, qm(1_073_741_824, 4)), 24);
    }

    proptest::proptest! {
        /// The int64 path of [`scale_floor`] is the exact int128 floor, shifts left and right.
        #[test]
        fn scale_floor_is_the_exact_floor(
            v in -(1i64 << 32)..(1i64 << 32),
            multiplier in proptest::num::i32::ANY,
            shift in -70i32..8,
        ) {
            let exact = {
                let p = i128::from(v) * i128::from(multiplier);
                let e = shift - 31;
                let r = if e >= 0 { p << e } else { p >> (-e) };
                r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
            };
            proptest::prop_assert_eq!(scale_floor(v, qm(multiplier, shift)), exact);
        }
    }

    #[test]
    fn icn_clamps_to_the_output_range_per_channel() {
        let r = Requant::PerChannel {
            multipliers: vec![qm(1_073_741_824, 0), qm(-1_073_741_824, 0)],
            bias: vec![1, 0],
        };
        // channel 0: floor(0.5 (acc + 1)); channel 1: floor(-0.5 acc).
        let out = r.apply(&[5, -6, 100, 100, -3, -3], BitWidth::B2).unwrap();
        assert_eq!(out.unpack(), vec![3, 3, 3, 0, 0, 1]);
        let fb = Requant::PerLayer {
            multiplier: qm(1_073_741_824, 0),
            bias: vec![0, 2],
        };
        assert_eq!(
            fb.apply(&[4, 4], BitWidth::B4).unwrap().unpack(),
            vec![2, 3]
        );
        assert_eq!(fb.logits(&[4, -5]).unwrap(), vec![2, -2]);
        assert!(fb.apply(&[1, 2, 3], BitWidth::B4).is_err());
    }

    #[test]
    fn thresholds_from_icn_reproduce_icn_exactly() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        for bits in [BitWidth::B2, BitWidth::B4, BitWidth::B8] {
            for _ in 0..20 {
                let c = 3;
                let multipliers: Vec<QuantizedMultiplier> = (0..c)
                    .map(|_| {
                        let m = (1 << 30) + (next() % (1 << 30)) as i32;
                        let sign = if next() % 3 == 0 { -1 } else { 1 };
                        qm(sign * m, -(next() % 12) as i32)
                    })
                    .collect();
                let bias: Vec<i32> = (0..c).map(|_| (next() % 2001 - 1000) as i32).collect();
                let icn = Requant::PerChannel { multipliers, bias };
                let th = icn.to_thresholds(bits).unwrap();
                let acc: Vec<i32> = (-30_000..30_000).step_by(7).collect();
                let acc: Vec<i32> = acc.iter().flat_map(|&a| [a, a + 1, a + 2]).collect();
                assert_eq!(
                    th.apply(&acc, bits).unwrap(),
                    icn.apply(&acc, bits).unwrap(),
                    "{icn:?}"
                );
            }
        }
        assert!(
            Requant::Thresholds {
                thresholds: vec![0; 2],
                increasing: vec![true]
            }
            .apply(&[1], BitWidth::B2)
            .is_err()
        );
    }
}
