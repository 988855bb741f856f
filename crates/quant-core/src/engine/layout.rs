//! Weight layouts: training frameworks store convolution weights `[out][in][ky][kx]` (OIHW) and
//! fully connected weights `[out][in]`; the engine's layers take HWIO, HWC (depthwise) and `K x N`.
//! Every exporter converts through these, so the index arithmetic lives in one place.
#![deny(clippy::float_arithmetic)]

use std::borrow::Cow;

/// OIHW (`dims = [out, in, kh, kw]`) to the HWIO order of [`super::ConvLayer::weights`].
pub fn oihw_to_hwio<T: Copy>(w: &[T], dims: [usize; 4]) -> Vec<T> {
    let [co, ci, kh, kw] = dims;
    let mut out = Vec::with_capacity(w.len());
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..ci {
                for o in 0..co {
                    out.push(w[((o * ci + i) * kh + y) * kw + x]);
                }
            }
        }
    }
    out
}

/// Depthwise OIHW (`dims = [channels, 1, kh, kw]`) to the HWC order of
/// [`super::DepthwiseLayer::weights`].
pub fn depthwise_oihw_to_hwc<T: Copy>(w: &[T], dims: [usize; 4]) -> Vec<T> {
    let [co, _, kh, kw] = dims;
    let mut out = Vec::with_capacity(w.len());
    for y in 0..kh {
        for x in 0..kw {
            for o in 0..co {
                out.push(w[(o * kh + y) * kw + x]);
            }
        }
    }
    out
}

/// Fully connected weights `[out][in]` over an input flattened in CHW order (`shape = (c, h,
/// w)`, as a training framework flattens NCHW) to the `K x N` matrix of
/// [`super::FullyConnectedLayer::weights`] over the engine's HWC flattening.
pub fn fc_chw_to_kn<T: Copy>(w: &[T], out: usize, (c, h, wd): (usize, usize, usize)) -> Vec<T> {
    let inputs = c * h * wd;
    let mut kn = Vec::with_capacity(w.len());
    for y in 0..h {
        for x in 0..wd {
            for ch in 0..c {
                let k = (ch * h + y) * wd + x;
                for o in 0..out {
                    kn.push(w[o * inputs + k]);
                }
            }
        }
    }
    kn
}

/// Images stored planar (each channel's `pixels` values in turn: CHW, as data sets and training
/// frameworks hold them), one after another, in the engine's HWC order (channels innermost). One
/// channel is both orders, so grey images are borrowed as they are, not copied.
pub fn chw_to_hwc<T: Copy>(images: &[T], channels: usize, pixels: usize) -> Cow<'_, [T]> {
    if channels == 1 {
        return Cow::Borrowed(images);
    }
    let mut out = Vec::with_capacity(images.len());
    for image in images.chunks_exact(channels * pixels) {
        for p in 0..pixels {
            out.extend((0..channels).map(|c| image[c * pixels + p]));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planar_images_interleave_their_channels() {
        // Two images of 2 pixels x 3 channels: planes (r, g, b) = (1 2, 3 4, 5 6), (7 8, 9 10, 11 12).
        let planar = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(
            *chw_to_hwc(&planar, 3, 2),
            [1, 3, 5, 2, 4, 6, 7, 9, 11, 8, 10, 12]
        );
        assert_eq!(*chw_to_hwc(&planar, 1, 12), planar);
    }

    #[test]
    fn layouts_move_every_weight_to_its_index() {
        // Weight value = its OIHW index, so each output position names where it came from.
        let dims = [3, 2, 2, 2];
        let w: Vec<usize> = (0..24).collect();
        let hwio = oihw_to_hwio(&w, dims);
        // HWIO index of (o=2, i=1, y=1, x=0) is ((y*kw + x)*ci + i)*co + o.
        assert_eq!(hwio[((2) * 2 + 1) * 3 + 2], ((2 * 2 + 1) * 2 + 1) * 2);
        let dw: Vec<usize> = (0..12).collect();
        let hwc = depthwise_oihw_to_hwc(&dw, [3, 1, 2, 2]);
        assert_eq!(hwc[(2 + 1) * 3 + 2], (2 * 2 + 1) * 2 + 1);
        // FC over c=2, h=1, w=2: input k = (ch*h + y)*w + x; engine row = (y*w + x)*c + ch.
        let fc: Vec<usize> = (0..12).collect();
        let kn = fc_chw_to_kn(&fc, 3, (2, 1, 2));
        assert_eq!(kn[(2 + 1) * 3 + 2], 2 * 4 + 3);
    }
}
