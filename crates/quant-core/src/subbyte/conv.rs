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
use crate::kernels::ConvShape;

/// Checks a convolution against its operands: dense or depthwise (the kernels here have no
/// other grouping), an input of `in_h · in_w · in_c` codes, `out_c · depth` weights and one
/// weight zero point per output channel.
fn check(shape: &ConvShape, input: usize, weights: usize, w_zero: usize) -> Result<()> {
    shape.validate()?;
    if shape.groups != 1 && !shape.is_depthwise() {
        return Err(shape_err!(
            "{} groups over {} input and {} output channels: the sub-byte kernels take dense or depthwise convolutions",
            shape.groups,
            shape.geometry.in_c,
            shape.out_c
        ));
    }
    if input != shape.geometry.in_len() {
        let g = &shape.geometry;
        return Err(shape_err!(
            "input has {input} elements, expected {}x{}x{}",
            g.in_h,
            g.in_w,
            g.in_c
        ));
    }
    if weights != shape.weight_len() || w_zero != shape.out_c {
        return Err(shape_err!(
            "{weights} weights / {w_zero} zero points do not match {} channels x {}",
            shape.out_c,
            shape.depth()
        ));
    }
    Ok(())
}

/// `acc[oy, ox, c] = Σ (x - x_zero)(w - w_zero[c])` on packed operands (the fast path).
pub fn accumulate(
    shape: &ConvShape,
    input: &Packed,
    x_zero: i32,
    weights: &Packed,
    w_zero: &[i32],
) -> Result<Vec<i32>> {
    check(shape, input.len, weights.len, w_zero.len())?;
    let depth = shape.depth();
    let narrow = |z: i32| {
        i16::try_from(z).map_err(|_| shape_err!("zero point {z} does not fit the int16 path"))
    };
    let xz = narrow(x_zero)?;
    let mut w16 = vec![0i16; weights.len];
    for (c, row) in w16.chunks_mut(depth).enumerate() {
        weights.unpack_i16_into(c * depth, depth, narrow(w_zero[c])?, row);
    }
    let g = &shape.geometry;
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0i32; shape.out_len()];
    let mut col = vec![0i16; depth];
    for oy in 0..oh {
        for ox in 0..ow {
            let base = (oy * ow + ox) * shape.out_c;
            for grp in 0..shape.groups {
                // im2col of this group's receptive field, zero-point subtracted; padding is 0.
                let mut k = 0;
                for ci in 0..shape.in_c_per_group() {
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            col[k] = g
                                .tap_hwc((oy, ox), (ky, kx), grp * shape.in_c_per_group() + ci)
                                .map_or(0, |i| i16::from(input.get(i)) - xz);
                            k += 1;
                        }
                    }
                }
                let per = shape.out_c_per_group();
                for c in grp * per..(grp + 1) * per {
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
    shape: &ConvShape,
    input: &[u8],
    x_zero: i32,
    weights: &[u8],
    w_zero: &[i32],
) -> Result<Vec<i32>> {
    check(shape, input.len(), weights.len(), w_zero.len())?;
    let g = &shape.geometry;
    let cin = shape.in_c_per_group();
    let mut out = Vec::with_capacity(shape.out_len());
    for oy in 0..g.out_h() {
        for ox in 0..g.out_w() {
            for c in 0..shape.out_c {
                let mut acc = 0i64;
                for ci in 0..cin {
                    let channel = c / shape.out_c_per_group() * cin + ci;
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            if let Some(i) = g.tap_hwc((oy, ox), (ky, kx), channel) {
                                let w =
                                    weights[((c * cin + ci) * g.kernel_h + ky) * g.kernel_w + kx];
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
    use crate::kernels::ConvGeometry;
    use crate::subbyte::BitWidth;
    use proptest::prelude::*;

    fn widths() -> impl Strategy<Value = BitWidth> {
        prop_oneof![Just(BitWidth::B2), Just(BitWidth::B4), Just(BitWidth::B8)]
    }

    #[test]
    fn one_by_one_conv_is_a_matrix_product() {
        // 1x1 pointwise, 2 pixels x 2 channels in, 1 channel out, zero points 1 and 2.
        let spec = ConvShape {
            geometry: ConvGeometry::symmetric((1, 2, 2), 1, 1, 0).unwrap(),
            out_c: 1,
            groups: 1,
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
        let spec = ConvShape {
            geometry: ConvGeometry::symmetric((2, 2, 2), 3, 1, 1).unwrap(),
            out_c: 3,
            groups: 2,
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
            let geometry = ConvGeometry::symmetric((h, w, cin), kernel, stride, pad).unwrap();
            let spec = ConvShape { geometry, out_c: cout, groups: if depthwise { cin } else { 1 } };
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
