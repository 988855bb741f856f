//! The integer-only deployment graph of a (mixed-precision) chain (MobileNetV1, an MLP): every
//! activation and weight tensor packed at its own bit width, its layers accumulated in int32 and
//! requantized by FB, ICN or thresholds, then the average pool on the last layer's grid (floor of the
//! mean code, as the training graph's pool) and the classifier with wide logits.
//!
//! [`IntegerNet::logits`] accumulates on the packed operands (`quant_core::subbyte`, CMix-NN's
//! shape, as a microcontroller would): the reference. [`IntegerNet::prepare`] builds the network
//! on the one integer graph of `quant_core::graph` (its convolutions and classifier on the int8
//! kernels of `quant_core::kernels`, FB / ICN / thresholds as the requantization plug-in, the
//! average pool fused into the classifier), and [`PreparedNet::logits_counted`] computes the same
//! logits and counts through it (tested equal).
#![deny(clippy::float_arithmetic)]

use std::sync::Arc;

use quant_core::error::{QuantError, Result};
use quant_core::graph::{Data, DenseInput, Graph, Kind, Op, Shape, Tensor};
use quant_core::icn::{CodeStage, LogitStage, Requant};
use quant_core::kernels::{Backend, ConvGeometry, ConvKernel, ConvShape};
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
        for pixel in x.unpack().chunks(channels) {
            for (s, &v) in sums.iter_mut().zip(pixel) {
                *s += i32::from(v);
            }
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

    /// The network on the integer graph, its layers on the int8 kernels of `backend`.
    pub fn prepare(&self, backend: Backend) -> Result<PreparedNet> {
        let first = self
            .convs
            .first()
            .ok_or_else(|| QuantError::ShapeMismatch("a network without convolutions".into()))?;
        let g = &first.shape.geometry;
        let input = Shape {
            h: g.in_h,
            w: g.in_w,
            c: g.in_c,
        };
        let mut graph = Graph::new(input, IMAGE)?;
        let mut x = 0;
        for l in &self.convs {
            let g = &l.shape.geometry;
            let kernel = int8_kernel(
                &l.weights,
                &l.w_zero,
                &l.shape,
                (g.kernel_h, g.kernel_w),
                backend,
            )?;
            let stage = CodeStage {
                requant: l.requant.clone(),
                bits: l.out_bits,
            };
            let op = Op::Conv {
                shape: l.shape,
                kernel,
                bias: Vec::new(),
                stage: Some(Arc::new(stage)),
                weight_bytes: l.weights.bytes() + l.w_zero.len(),
            };
            x = graph.push(&[x], op)?;
        }
        let fc = &self.fc;
        let (out, depth) = (fc.w_zero.len(), fc.weights.len / fc.w_zero.len().max(1));
        let dense = ConvShape {
            geometry: ConvGeometry::symmetric((1, 1, depth), 1, 1, 0)?,
            out_c: out,
            groups: 1,
        };
        let op = Op::Dense {
            input: DenseInput::FloorMean,
            out,
            kernel: int8_kernel(&fc.weights, &fc.w_zero, &dense, (1, 1), backend)?,
            bias: Vec::new(),
            stage: Some(Arc::new(LogitStage(fc.requant.clone()))),
            weight_bytes: fc.weights.bytes() + fc.w_zero.len(),
        };
        graph.push(&[x], op)?;
        Ok(PreparedNet { graph })
    }

    /// Predicted class of one image (first maximum on ties).
    pub fn predict(&self, image: &[u8]) -> Result<usize> {
        self.logits(image).map(|l| argmax(&l))
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

/// The input: the raw image bytes, 8-bit codes of zero point 0.
const IMAGE: Kind = Kind::eight_bit(0);

/// A layer of `shape` with packed weights (`[out][in / groups][kh][kw]`) on the int8 kernels:
/// weight codes `w` enter as int8 `w - 128` with zero points `w_zero - 128`, which leaves every
/// `w - w_zero` as it is (codes and zero points are in `[0, 255]`).
fn int8_kernel(
    weights: &Packed,
    w_zero: &[i32],
    shape: &ConvShape,
    window: (usize, usize),
    backend: Backend,
) -> Result<ConvKernel> {
    let codes: Vec<i8> = weights
        .unpack()
        .iter()
        .map(|&w| (i32::from(w) - 128) as i8)
        .collect();
    let zero_points: Vec<i32> = w_zero.iter().map(|z| z - 128).collect();
    ConvKernel::new(&codes, shape.out_c, window, shape.groups, &zero_points, backend)?
        .filter(|k| k.fits(shape))
        .ok_or_else(|| {
            QuantError::ShapeMismatch(format!(
                "a {}-group layer of {} weights is neither dense nor depthwise within the kernels' depth",
                shape.groups, weights.len
            ))
        })
}

/// An [`IntegerNet`] on the integer graph ([`IntegerNet::prepare`]).
#[derive(Debug)]
pub struct PreparedNet {
    graph: Graph,
}

impl PreparedNet {
    /// As [`IntegerNet::logits_counted`].
    pub fn logits_counted(&self, image: &[u8]) -> Result<(Vec<i64>, OpCounts)> {
        match self.graph.run(self.graph.input(1, image.to_vec()))? {
            (
                Tensor {
                    data: Data::Int64(logits),
                    ..
                },
                counts,
            ) => Ok((logits, counts)),
            _ => Err(QuantError::ShapeMismatch(
                "the graph does not end in logits".into(),
            )),
        }
    }

    /// As [`IntegerNet::predict`].
    pub fn predict(&self, image: &[u8]) -> Result<usize> {
        self.logits_counted(image).map(|(l, _)| argmax(&l))
    }
}

/// Index of the largest logit (first on ties).
fn argmax(logits: &[i64]) -> usize {
    logits
        .iter()
        .enumerate()
        .fold(
            (0, i64::MIN),
            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
        )
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::fixedpoint::QuantizedMultiplier;
    use quant_core::kernels::ConvGeometry;

    /// A strided 3x3 convolution of 4-bit weights, a depthwise one of 2-bit weights and a 1x1 one
    /// of 8-bit weights, on 8-, 4- and 2-bit input codes, per-channel weight zero points: each
    /// layer on the int8 kernels gives the packed kernels' accumulators on every backend, and the
    /// graph the same logits and counts.
    #[test]
    fn prepared_graph_equals_the_packed_one_at_sub_byte_widths() {
        let mut state = 0x9e37_79b9_u64;
        // A code of `bits`.
        let mut code = |bits: BitWidth| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % (u64::from(bits.max_code()) + 1)) as u8
        };
        let mult = QuantizedMultiplier {
            multiplier: 1_518_500_250,
            shift: -8,
        };
        let layers = [
            ((8, 1, 6, 3, 2, 1), BitWidth::B8, BitWidth::B4),
            ((4, 6, 6, 3, 1, 6), BitWidth::B4, BitWidth::B2),
            ((4, 6, 5, 1, 1, 1), BitWidth::B2, BitWidth::B8),
        ];
        let mut convs = Vec::new();
        for ((side, cin, cout, k, stride, groups), in_bits, w_bits) in layers {
            let shape = ConvShape {
                geometry: ConvGeometry::symmetric((side, side, cin), k, stride, k / 2).unwrap(),
                out_c: cout,
                groups,
            };
            let weights: Vec<u8> = (0..shape.weight_len()).map(|_| code(w_bits)).collect();
            let conv = IntConv {
                shape,
                weights: Packed::pack(&weights, w_bits).unwrap(),
                w_zero: (0..cout).map(|_| i32::from(code(w_bits))).collect(),
                out_bits: BitWidth::B4,
                requant: Requant::PerChannel {
                    multipliers: vec![mult; cout],
                    bias: vec![0; cout],
                },
            };
            let input: Vec<u8> = (0..shape.geometry.in_len())
                .map(|_| code(in_bits))
                .collect();
            let x = Packed::pack(&input, in_bits).unwrap();
            let want = accumulate(&shape, &x, 0, &conv.weights, &conv.w_zero).unwrap();
            for backend in Backend::available() {
                let mut got = vec![0; shape.out_len()];
                let g = &shape.geometry;
                let kernel = int8_kernel(
                    &conv.weights,
                    &conv.w_zero,
                    &shape,
                    (g.kernel_h, g.kernel_w),
                    backend,
                )
                .unwrap();
                kernel
                    .accumulate(&input, 1, &shape.geometry, 0, &[], &mut got)
                    .unwrap();
                assert_eq!(got, want, "{backend:?} {:?}", shape);
            }
            convs.push(conv);
        }
        let fc = IntFc {
            weights: Packed::pack(
                &(0..15).map(|i| (i * 37 % 256) as u8).collect::<Vec<_>>(),
                BitWidth::B8,
            )
            .unwrap(),
            w_zero: vec![128; 3],
            requant: Requant::PerLayer {
                multiplier: mult,
                bias: vec![0; 3],
            },
        };
        let net = IntegerNet { convs, fc };
        for backend in Backend::available() {
            let prepared = net.prepare(backend).unwrap();
            for seed in 0..4u32 {
                let image: Vec<u8> = (0..64)
                    .map(|i| ((i * 29 + seed * 71) % 256) as u8)
                    .collect();
                let want = net.logits_counted(&image).unwrap();
                assert_eq!(
                    prepared.logits_counted(&image).unwrap(),
                    want,
                    "{backend:?}"
                );
            }
        }
    }

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
