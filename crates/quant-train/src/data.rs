//! Turning examples (`repro::examples::Examples`: an in-memory `ImageSet` or an image folder decoded
//! per batch) into Burn batches, and the bilinear input resize of the resolution sweep.

use burn::prelude::*;
use rayon::prelude::*;
use repro::datasets::ImageSet;
use repro::examples::{Examples, View};

/// One batch read but not yet on a device, its pixels already `pixel / 255`: what the trainer's
/// reading thread hands over while the previous step runs, so reading and converting stay off the
/// training step.
///
/// Dividing by 255 makes the input array exactly uint8 with `S = 1/255`, `Z = 0` (dossier §11), so
/// the integer engine can take the raw bytes.
#[derive(Debug, Clone)]
pub struct RawBatch {
    pixels: Vec<f32>,
    labels: Vec<i64>,
    shape: [usize; 3],
}

impl RawBatch {
    /// Examples `indices` of `set`, each under the view `view(position in the batch)`, read on the
    /// worker threads (an image folder decodes them there).
    pub fn read(
        set: &dyn Examples,
        indices: &[usize],
        view: impl Fn(usize) -> View + Sync,
    ) -> Result<Self, String> {
        let (bytes, labels) = read_examples(set, indices, view)?;
        Ok(RawBatch::new(bytes, labels, set.shape()))
    }

    fn new(bytes: impl IntoIterator<Item = u8>, labels: Vec<i64>, shape: [usize; 3]) -> Self {
        let pixels = bytes.into_iter().map(|p| f32::from(p) / 255.0).collect();
        RawBatch {
            pixels,
            labels,
            shape,
        }
    }

    /// The batch as `[N, channels, rows, cols]` floats and its labels, on `device`.
    pub fn tensors(self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let n = self.labels.len();
        let [c, h, w] = self.shape;
        let images = Tensor::from_data(TensorData::new(self.pixels, [n, c, h, w]), device);
        let labels = Tensor::from_data(TensorData::new(self.labels, [n]), device);
        (images, labels)
    }
}

/// The bytes (planar, example after example) and labels of examples `indices` of `set`, each under
/// the view `view(position in the batch)`, read on the worker threads (an image folder decodes them
/// there).
pub fn read_examples(
    set: &dyn Examples,
    indices: &[usize],
    view: impl Fn(usize) -> View + Sync,
) -> Result<(Vec<u8>, Vec<i64>), String> {
    let per = set.shape().iter().product::<usize>();
    let mut bytes = vec![0u8; indices.len() * per];
    bytes
        .par_chunks_mut(per.max(1))
        .zip(indices)
        .enumerate()
        .try_for_each(|(k, (out, &i))| set.read(i, view(k), out))?;
    let labels = indices.iter().map(|&i| set.label(i) as i64).collect();
    Ok((bytes, labels))
}

/// Folds `state = step(i, batch i, state)` over the batches of `batch_size` examples of `order`
/// (the last one shorter unless `drop_last`), example `order[p]` under `view(p)`, while a reader
/// thread reads (for image folders: decodes) the next batch on the worker threads. The first read
/// error ends the fold with that error, as does the first error of `step`; the reader then stops
/// too (its next hand-over fails), so neither side waits on the other forever.
pub fn read_ahead<S, E: From<String>>(
    set: &dyn Examples,
    order: &[usize],
    (batch_size, drop_last): (usize, bool),
    view: impl Fn(usize) -> View + Sync,
    state: S,
    mut step: impl FnMut(usize, RawBatch, S) -> Result<S, E>,
) -> Result<S, E> {
    let size = batch_size.max(1);
    let whole = if drop_last {
        order.len() / size * size
    } else {
        order.len()
    };
    std::thread::scope(|scope| {
        let (ready, batches) = std::sync::mpsc::sync_channel(1);
        let view = &view;
        scope.spawn(move || {
            for (i, idx) in order[..whole].chunks(size).enumerate() {
                let raw = RawBatch::read(set, idx, |k| view(i * size + k));
                let failed = raw.is_err();
                if ready.send(raw).is_err() || failed {
                    break;
                }
            }
        });
        let mut state = state;
        for (i, raw) in batches.iter().enumerate() {
            state = step(i, raw.map_err(E::from)?, state)?;
        }
        Ok(state)
    })
}

/// The images `indices` of the in-memory `set` as `[N, channels, rows, cols]` floats `pixel / 255`
/// and their labels (see [`RawBatch::tensors`]).
pub fn batch(set: &ImageSet, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let bytes = indices.iter().flat_map(|&i| set.image(i)).copied();
    let labels = indices.iter().map(|&i| i64::from(set.labels[i])).collect();
    RawBatch::new(bytes, labels, [set.channels, set.rows, set.cols]).tensors(device)
}

/// Resizes every image (each channel alike) to `size x size` with bilinear interpolation
/// (half-pixel centres, edge clamping), rounding to the nearest byte. Done once on the bytes, so
/// the float model and the integer engine see the same resized inputs (the paper's resolution
/// multiplier ρ).
pub fn resize(set: &ImageSet, size: usize) -> ImageSet {
    if size == set.rows && size == set.cols {
        return set.clone();
    }
    let (h, w) = (set.rows, set.cols);
    let coord = |o: usize, n_in: usize| -> (usize, usize, f32) {
        let c = ((o as f32 + 0.5) * n_in as f32 / size as f32 - 0.5).clamp(0.0, (n_in - 1) as f32);
        let lo = c.floor() as usize;
        (lo, (lo + 1).min(n_in - 1), c - lo as f32)
    };
    let rows: Vec<_> = (0..size).map(|o| coord(o, h)).collect();
    let cols: Vec<_> = (0..size).map(|o| coord(o, w)).collect();
    let mut images = Vec::with_capacity(set.len() * set.channels * size * size);
    for plane in set.images.chunks_exact(h * w) {
        let at = |r: usize, c: usize| f32::from(plane[r * w + c]);
        for &(r0, r1, fr) in &rows {
            for &(c0, c1, fc) in &cols {
                let top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc;
                let bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc;
                let v = top * (1.0 - fr) + bottom * fr;
                images.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    ImageSet {
        images,
        labels: set.labels.clone(),
        channels: set.channels,
        rows: size,
        cols: size,
        checksums: set.checksums.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: Vec<u8>, n: usize, side: usize) -> ImageSet {
        ImageSet {
            images,
            labels: vec![3; n],
            channels: 1,
            rows: side,
            cols: side,
            checksums: vec![],
        }
    }

    #[test]
    fn batch_scales_pixels() {
        let s = set(vec![0, 255, 51, 102], 1, 2);
        let (x, y) = batch(&s, &[0], &Device::flex());
        assert_eq!(x.dims(), [1, 1, 2, 2]);
        let v = x.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(v, vec![0.0, 1.0, 0.2, 0.4]);
        assert_eq!(y.into_data().try_into_vec_as::<i64>().unwrap(), vec![3]);
    }

    #[test]
    fn resize_keeps_constants_and_identity() {
        let s = set(vec![77; 16], 1, 4);
        let r = resize(&s, 3);
        assert_eq!((r.rows, r.cols, r.images.len()), (3, 3, 9));
        assert!(r.images.iter().all(|&p| p == 77));
        let g = set((0..16).collect(), 1, 4);
        assert_eq!(resize(&g, 4).images, g.images);
        let d = resize(&g, 2);
        // Half-pixel centres of a 4->2 downscale average 2x2 neighbourhoods.
        assert_eq!(d.images, vec![3, 5, 11, 13]);
    }
}
