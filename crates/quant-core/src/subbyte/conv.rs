//! Integer accumulation of convolutions and fully connected layers on packed sub-byte operands.
//!
//! Layouts: activations HWC (channel fastest), weights `[cout][cin / groups][k][k]` (the PyTorch / Burn
//! order the training side exports), outputs HWC. Zero padding stands for the real value 0, whose
//! code is the zero point, so padded taps contribute `(Zx - Zx)·w = 0` and are skipped.
//!
//! [`accumulate`] is the fast path in CMix-NN's shape: weights are widened once to int16 minus their
//! zero point, each output pixel's receptive field is gathered (im2col) into an int16 buffer minus the
//! input zero point, and each output channel is a 16-bit dot product accumulated in int32.
//! [`accumulate_reference`] is the obviously-correct direct loop on unpacked codes in int64; the two
//! are tested bit-exact, and the reference errors where int32 would overflow.
#![deny(clippy::float_arithmetic)]

use super::pack::Packed;
use crate::error::{Result, shape_err};

/// Geometry of one convolution (square kernel, symmetric zero padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub in_h: usize,
    pub in_w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    /// Depthwise (`groups = cin = cout`) instead of dense.
    pub depthwise: bool,
}

impl ConvSpec {
    /// Output side lengths, `(in + 2·pad - k) / stride + 1`.
    pub fn out_hw(&self) -> (usize, usize) {
        let o = |i: usize| (i + 2 * self.pad - self.kernel) / self.stride + 1;
        (o(self.in_h), o(self.in_w))
    }

    /// Input channels read per output channel.
    pub fn cin_per_group(&self) -> usize {
        if self.depthwise { 1 } else { self.cin }
    }

    /// Weights per output channel.
    pub fn depth(&self) -> usize {
        self.cin_per_group() * self.kernel * self.kernel
    }

    fn check(&self, input: usize, weights: usize, w_zero: usize) -> Result<()> {
        if self.kernel == 0 || self.stride == 0 || self.in_h + 2 * self.pad < self.kernel {
            return Err(shape_err!("degenerate convolution {self:?}"));
        }
        if self.depthwise && self.cin != self.cout {
            return Err(shape_err!(
                "depthwise convolution needs cin == cout, got {} and {}",
                self.cin,
                self.cout
            ));
        }
        if input != self.in_h * self.in_w * self.cin {
            return Err(shape_err!(
                "input has {input} elements, expected {}x{}x{}",
                self.in_h,
                self.in_w,
                self.cin
            ));
        }
        if weights != self.cout * self.depth() || w_zero != self.cout {
            return Err(shape_err!(
                "{weights} weights / {w_zero} zero points do not match {} channels x {}",
                self.cout,
                self.depth()
            ));
        }
        Ok(())
    }

    /// Input element feeding tap `(ky, kx)` of input channel `ci` at output `(oy, ox)`, or `None`
    /// in the padding.
    #[inline]
    fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize, ci: usize) -> Option<usize> {
        let y = (oy * self.stride + ky).checked_sub(self.pad)?;
        let x = (ox * self.stride + kx).checked_sub(self.pad)?;
        (y < self.in_h && x < self.in_w).then(|| (y * self.in_w + x) * self.cin + ci)
    }
}

/// `acc[oy, ox, c] = Σ (x - x_zero)(w - w_zero[c])` on packed operands (the fast path).
pub fn accumulate(
    spec: &ConvSpec,
    input: &Packed,
    x_zero: i32,
    weights: &Packed,
    w_zero: &[i32],
) -> Result<Vec<i32>> {
    spec.check(input.len, weights.len, w_zero.len())?;
    let depth = spec.depth();
    let narrow = |z: i32| {
        i16::try_from(z).map_err(|_| shape_err!("zero point {z} does not fit the int16 path"))
    };
    let xz = narrow(x_zero)?;
    let mut w16 = vec![0i16; weights.len];
    for (c, row) in w16.chunks_mut(depth).enumerate() {
        weights.unpack_i16_into(c * depth, depth, narrow(w_zero[c])?, row);
    }
    let (oh, ow) = spec.out_hw();
    let mut out = vec![0i32; oh * ow * spec.cout];
    let groups = if spec.depthwise { spec.cin } else { 1 };
    let mut col = vec![0i16; depth];
    for oy in 0..oh {
        for ox in 0..ow {
            let base = (oy * ow + ox) * spec.cout;
            for g in 0..groups {
                // im2col of this group's receptive field, zero-point subtracted; padding is 0.
                let mut k = 0;
                for ci in 0..spec.cin_per_group() {
                    for ky in 0..spec.kernel {
                        for kx in 0..spec.kernel {
                            col[k] = spec
                                .tap(oy, ox, ky, kx, g + ci)
                                .map_or(0, |i| i16::from(input.get(i)) - xz);
                            k += 1;
                        }
                    }
                }
                let channels = if spec.depthwise {
                    g..g + 1
                } else {
                    0..spec.cout
                };
                for c in channels {
                    let w = &w16[c * depth..(c + 1) * depth];
                    out[base + c] = col
                        .iter()
                        .zip(w)
                        .map(|(&a, &b)| i32::from(a) * i32::from(b))
                        .sum();
                }
            }
        }
    }
    Ok(out)
}

/// The reference: a direct loop on unpacked codes in int64, erroring if a sum leaves int32.
pub fn accumulate_reference(
    spec: &ConvSpec,
    input: &[u8],
    x_zero: i32,
    weights: &[u8],
    w_zero: &[i32],
) -> Result<Vec<i32>> {
    spec.check(input.len(), weights.len(), w_zero.len())?;
    let (oh, ow) = spec.out_hw();
    let mut out = Vec::with_capacity(oh * ow * spec.cout);
    for oy in 0..oh {
        for ox in 0..ow {
            for c in 0..spec.cout {
                let mut acc = 0i64;
                for ci in 0..spec.cin_per_group() {
                    let channel = if spec.depthwise { c } else { ci };
                    for ky in 0..spec.kernel {
                        for kx in 0..spec.kernel {
                            if let Some(i) = spec.tap(oy, ox, ky, kx, channel) {
                                let w = weights[((c * spec.cin_per_group() + ci) * spec.kernel
                                    + ky)
                                    * spec.kernel
                                    + kx];
                                acc += (i64::from(input[i]) - i64::from(x_zero))
                                    * (i64::from(w) - i64::from(w_zero[c]));
                            }
                        }
                    }
                }
                out.push(
                    i32::try_from(acc)
                        .map_err(|_| shape_err!("accumulator {acc} overflows int32"))?,
                );
            }
        }
    }
    Ok(out)
}

/// Fully connected accumulation on int32 inputs (the average pool's channel sums, which the
/// deployment graph feeds to the classifier unrounded): `acc[c] = Σ_k x[k]·(w[c,k] - w_zero[c])`.
/// Errors where a sum leaves int32.
pub fn dense_accumulate(x: &[i32], weights: &Packed, w_zero: &[i32]) -> Result<Vec<i32>> {
    let cout = w_zero.len();
    if cout == 0 || weights.len != cout * x.len() {
        return Err(shape_err!(
            "{} weights do not match {cout} outputs x {} inputs",
            weights.len,
            x.len()
        ));
    }
    (0..cout)
        .map(|c| {
            let acc: i64 = x
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    i64::from(v) * (i64::from(weights.get(c * x.len() + k)) - i64::from(w_zero[c]))
                })
                .sum();
            i32::try_from(acc).map_err(|_| shape_err!("accumulator {acc} overflows int32"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subbyte::BitWidth;
    use proptest::prelude::*;

    fn widths() -> impl Strategy<Value = BitWidth> {
        prop_oneof![Just(BitWidth::B2), Just(BitWidth::B4), Just(BitWidth::B8)]
    }

    #[test]
    fn one_by_one_conv_is_a_matrix_product() {
        // 1x1 pointwise, 2 pixels x 2 channels in, 1 channel out, zero points 1 and 2.
        let spec = ConvSpec {
            in_h: 1,
            in_w: 2,
            cin: 2,
            cout: 1,
            kernel: 1,
            stride: 1,
            pad: 0,
            depthwise: false,
        };
        let x = [3u8, 1, 0, 2];
        let w = [3u8, 0];
        let r = accumulate_reference(&spec, &x, 1, &w, &[2]).unwrap();
        // pixel 0: (3-1)(3-2) + (1-1)(0-2) = 2; pixel 1: (0-1)(1) + (2-1)(-2) = -3.
        assert_eq!(r, vec![2, -3]);
        let p = accumulate(
            &spec,
            &Packed::pack(&x, BitWidth::B2).unwrap(),
            1,
            &Packed::pack(&w, BitWidth::B2).unwrap(),
            &[2],
        )
        .unwrap();
        assert_eq!(p, r);
    }

    #[test]
    fn shape_errors_are_reported() {
        let spec = ConvSpec {
            in_h: 2,
            in_w: 2,
            cin: 2,
            cout: 3,
            kernel: 3,
            stride: 1,
            pad: 1,
            depthwise: true,
        };
        assert!(accumulate_reference(&spec, &[0; 8], 0, &[0; 27], &[0; 3]).is_err());
        let dense = dense_accumulate(
            &[1, 2],
            &Packed::pack(&[1, 2, 3], BitWidth::B4).unwrap(),
            &[0, 0],
        );
        assert!(dense.is_err());
        let ok = dense_accumulate(
            &[1, 2],
            &Packed::pack(&[1, 2, 3, 4], BitWidth::B4).unwrap(),
            &[0, 1],
        )
        .unwrap();
        assert_eq!(ok, vec![5, 2 + 6]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn packed_fast_path_is_bit_exact(
            xb in widths(), wb in widths(),
            h in 1usize..7, w in 1usize..7, cin in 1usize..6, cout in 1usize..6,
            kernel in prop_oneof![Just(1usize), Just(3)], stride in 1usize..3,
            depthwise in any::<bool>(), seed in any::<u64>(),
        ) {
            let cout = if depthwise { cin } else { cout };
            let pad = kernel / 2;
            let spec = ConvSpec { in_h: h, in_w: w, cin, cout, kernel, stride, pad, depthwise };
            let mut s = seed;
            let mut next = |max: u8| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 33) as u8) & max };
            let x: Vec<u8> = (0..h * w * cin).map(|_| next(xb.max_code())).collect();
            let wt: Vec<u8> = (0..cout * spec.depth()).map(|_| next(wb.max_code())).collect();
            let wz: Vec<i32> = (0..cout).map(|_| i32::from(next(wb.max_code()))).collect();
            let xz = i32::from(next(xb.max_code()));
            let reference = accumulate_reference(&spec, &x, xz, &wt, &wz).unwrap();
            let fast = accumulate(&spec, &Packed::pack(&x, xb).unwrap(), xz,
                                  &Packed::pack(&wt, wb).unwrap(), &wz).unwrap();
            prop_assert_eq!(fast, reference);
        }
    }
}
