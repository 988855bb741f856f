//! The integer-only deployment graph of a (mixed-precision) MobileNetV1: every activation and weight
//! tensor packed at its own bit width, conv/depthwise/pointwise layers accumulated by quant-core's
//! packed kernels and requantized by FB, ICN or thresholds, then the average pool on the last layer's
//! grid (floor of the mean code, as the training graph's pool) and the classifier with wide logits.
#![deny(clippy::float_arithmetic)]

use quant_core::error::Result;
use quant_core::icn::Requant;
use quant_core::kernels::ConvShape;
use quant_core::ops::OpCounts;
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
        self.logits_counted(image).map(|(logits, _)| logits)
    }

    /// [`Self::logits`], with the operations it performed ([`quant_core::ops`]): each layer's
    /// products (of 8 bits or fewer), its requantization's multiplies and shifts, and the packed
    /// bytes of its input, output, weights and parameters; the pool's sums and division are not
    /// counted (neither a product nor a shift).
    pub fn logits_counted(&self, image: &[u8]) -> Result<(Vec<i64>, OpCounts)> {
        let mut counts = OpCounts::default();
        let mut x = Packed::pack(image, BitWidth::B8)?;
        for layer in &self.convs {
            let acc = accumulate(&layer.shape, &x, 0, &layer.weights, &layer.w_zero)?;
            let y = layer.requant.apply(&acc, layer.out_bits)?;
            let outputs = acc.len() as u64;
            counts.mul_8x8 += outputs * layer.shape.depth() as u64;
            counts += layer.requant.op_counts(outputs);
            counts.bytes_moved += (x.bytes()
                + y.bytes()
                + layer.weights.bytes()
                + layer.w_zero.len()
                + layer.requant.stored_bytes()) as u64;
            x = y;
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
        let logits = self.fc.requant.logits(&acc)?;
        counts.mul_8x8 += (pooled.len() * acc.len()) as u64;
        counts += self.fc.requant.op_counts(acc.len() as u64);
        // The pooled sums are read as int32, the logits written as int64.
        counts.bytes_moved += (x.bytes()
            + 4 * pooled.len()
            + self.fc.weights.bytes()
            + self.fc.w_zero.len()
            + self.fc.requant.stored_bytes()
            + 8 * logits.len()) as u64;
        Ok((logits, counts))
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
        self.convs
            .iter()
            .map(|l| l.weights.bytes() + l.requant.stored_bytes() + l.w_zero.len())
            .sum::<usize>()
            + self.fc.weights.bytes()
            + self.fc.requant.stored_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::fixedpoint::QuantizedMultiplier;
    use quant_core::kernels::ConvGeometry;

    /// A 2x2 grey image, one 1x1 conv to two 4-bit channels (ICN), the pool and a 2 -> 3
    /// classifier (FB): every count by hand.
    #[test]
    fn counted_run_counts_products_requantizations_and_bytes() {
        let half = QuantizedMultiplier {
            multiplier: 1 << 30,
            shift: 0,
        };
        let conv = IntConv {
            shape: ConvShape {
                geometry: ConvGeometry::symmetric((2, 2, 1), 1, 1, 0).unwrap(),
                out_c: 2,
                groups: 1,
            },
            weights: Packed::pack(&[3, 5], BitWidth::B8).unwrap(),
            w_zero: vec![1, 1],
            out_bits: BitWidth::B4,
            requant: Requant::PerChannel {
                multipliers: vec![half; 2],
                bias: vec![0, 2],
            },
        };
        let fc = IntFc {
            weights: Packed::pack(&[2, 0, 1, 1, 0, 2], BitWidth::B8).unwrap(),
            w_zero: vec![1; 3],
            requant: Requant::PerLayer {
                multiplier: half,
                bias: vec![0; 3],
            },
        };
        let net = IntegerNet {
            convs: vec![conv],
            fc,
        };
        let image = [0, 2, 4, 6];
        let (logits, counts) = net.logits_counted(&image).unwrap();
        assert_eq!(logits, net.logits(&image).unwrap());
        // conv: 8 outputs of depth 1; FC: 2 x 3 products; one multiply and shift per output.
        assert_eq!(counts.mul_8x8, 8 + 6);
        assert_eq!((counts.mul_32x32, counts.shifts), (8 + 3, 8 + 3));
        // conv: input 4 B + 4-bit output 4 B + weights 2 B + zero points 2 B + ICN 9 B x 2;
        // FC: input 4 B + pooled int32 8 B + weights 6 B + zero points 3 B + FB 4 x 3 + 5 B +
        // int64 logits 24 B.
        assert_eq!(
            counts.bytes_moved,
            (4 + 4 + 2 + 2 + 18) + (4 + 8 + 6 + 3 + 17 + 24)
        );
    }
}
