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
