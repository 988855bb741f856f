//! The integer-only deployment graph of a (mixed-precision) MobileNetV1: every activation and weight
//! tensor packed at its own bit width, conv/depthwise/pointwise layers accumulated by quant-core's
//! packed kernels and requantized by FB, ICN or thresholds, then the average pool on the last layer's
//! grid (floor of the mean code, as the training graph's pool) and the classifier with wide logits.
#![deny(clippy::float_arithmetic)]

use quant_core::error::Result;
use quant_core::icn::Requant;
use quant_core::kernels::ConvShape;
use quant_core::subbyte::conv::dense_accumulate;
use quant_core::subbyte::{BitWidth, Packed, accumulate};

/// One conv layer of the integer graph.
#[derive(Debug, Clone)]
pub struct IntConv {
    pub shape: ConvShape,
    pub weights: Packed,
    /// Weight zero point per output channel (the per-layer one repeated under PL).
    pub w_zero: Vec<i32>,
    pub out_bits: BitWidth,
    pub requant: Requant,
}

/// The classifier after the fused average pool.
#[derive(Debug, Clone)]
pub struct IntFc {
    pub weights: Packed,
    pub w_zero: Vec<i32>,
    /// Unclamped per-channel rescaling of the accumulators to common-scale logits.
    pub requant: Requant,
}

/// A deployable integer network: input codes are the raw image bytes (`S = 1/255`, `Z = 0`).
#[derive(Debug, Clone)]
pub struct IntegerNet {
    pub convs: Vec<IntConv>,
    pub fc: IntFc,
}

impl IntegerNet {
    /// Integer logits of one HWC image.
    pub fn logits(&self, image: &[u8]) -> Result<Vec<i64>> {
        let mut x = Packed::pack(image, BitWidth::B8)?;
        for layer in &self.convs {
            let acc = accumulate(&layer.shape, &x, 0, &layer.weights, &layer.w_zero)?;
            x = layer.requant.apply(&acc, layer.out_bits)?;
        }
        let channels = self.convs.last().map_or(1, |l| l.shape.out_c);
        let mut sums = vec![0i32; channels];
        for i in 0..x.len {
            sums[i % channels] += i32::from(x.get(i));
        }
        // Average pool on the input's grid with the floor of the PACT quantizer (codes are >= 0).
        let pixels = (x.len / channels).max(1) as i32;
        let pooled: Vec<i32> = sums.iter().map(|&s| s / pixels).collect();
        let acc = dense_accumulate(&pooled, &self.fc.weights, &self.fc.w_zero)?;
        self.fc.requant.logits(&acc)
    }

    /// Predicted class of one image (first maximum on ties).
    pub fn predict(&self, image: &[u8]) -> Result<usize> {
        let logits = self.logits(image)?;
        Ok(logits
            .iter()
            .enumerate()
            .fold(
                (0, i64::MIN),
                |best, (i, &v)| if v > best.1 { (i, v) } else { best },
            )
            .0)
    }

    /// Read-only bytes actually stored: packed weights plus the requantization parameters as stored
    /// here (int32 bias and multiplier, int8 shift per channel; thresholds as int32).
    pub fn stored_rom_bytes(&self) -> usize {
        let requant = |r: &Requant| match r {
            Requant::PerLayer { bias, .. } => 4 * bias.len() + 5,
            Requant::PerChannel { bias, .. } => 9 * bias.len(),
            Requant::Thresholds { thresholds, .. } => 4 * thresholds.len(),
        };
        self.convs
            .iter()
            .map(|l| l.weights.bytes() + requant(&l.requant) + l.w_zero.len())
            .sum::<usize>()
            + self.fc.weights.bytes()
            + requant(&self.fc.requant)
    }
}
