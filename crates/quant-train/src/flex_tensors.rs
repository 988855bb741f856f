//! Reading and making flex tensors for the hand-written kernels of [`crate::conv`] and
//! [`crate::fused`].

use std::borrow::Cow;

use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::FlexTensor;

/// Whether the kernels can read the tensor (they are written for f32, Burn's default float).
pub(crate) fn is_f32(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32
}

/// The values in contiguous row-major order: borrowed when the layout already is, else copied.
pub(crate) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.clone()
                .into_data()
                .convert::<f32>()
                .iter::<f32>()
                .collect(),
        ),
    }
}

/// The shape.
pub(crate) fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

/// A contiguous f32 tensor.
pub(crate) fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    crate::simd::reuse_freed_memory();
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Output buffers written once, element by element, without a zeroing pass first: on the
/// activations of a training step, zeroing a fresh buffer cost as much as the operation that then
/// overwrites it.
pub(crate) mod uninit {
    use std::mem::MaybeUninit;

    use rayon::prelude::*;

    /// A vector of `len` values; `fill(first, chunk)` gets disjoint chunks of `chunk_len` slots
    /// (the last one shorter), with the index of the chunk's first slot, and must write every slot
    /// of its chunk through [`write_all`].
    pub(crate) fn par_filled(
        len: usize,
        chunk_len: usize,
        fill: impl Fn(usize, &mut Chunk<'_>) + Sync,
    ) -> Vec<f32> {
        let mut out: Vec<f32> = Vec::with_capacity(len);
        let slots = &mut out.spare_capacity_mut()[..len];
        slots
            .par_chunks_mut(chunk_len.max(1))
            .enumerate()
            .for_each(|(i, slots)| {
                let mut chunk = Chunk { slots, written: 0 };
                fill(i * chunk_len, &mut chunk);
                assert_eq!(
                    chunk.written,
                    chunk.slots.len(),
                    "a chunk was left unwritten"
                );
            });
        // SAFETY: every chunk of the first `len` slots was written in full: `Chunk` only counts
        // slots it has written, in order, and the assert above checked each count.
        unsafe { out.set_len(len) };
        out
    }

    /// Slots of an output chunk, written front to back.
    pub(crate) struct Chunk<'a> {
        slots: &'a mut [MaybeUninit<f32>],
        written: usize,
    }

    impl Chunk<'_> {
        /// Slots in the chunk.
        pub(crate) fn len(&self) -> usize {
            self.slots.len()
        }
    }

    /// Writes `values` into the next slots of `chunk` (at most as many as are left).
    #[inline(always)]
    pub(crate) fn write_all(chunk: &mut Chunk<'_>, values: impl Iterator<Item = f32>) {
        let start = chunk.written;
        for (slot, v) in chunk.slots[start..].iter_mut().zip(values) {
            slot.write(v);
            chunk.written += 1;
        }
    }
}
