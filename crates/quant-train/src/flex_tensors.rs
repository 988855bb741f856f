//! The plumbing of the hand-written kernels of [`crate::conv`] and [`crate::fused`]: where they
//! run, reading and making flex tensors, and recording a kernel as one autodiff node.

use std::borrow::Cow;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::FlexTensor;

/// Whether the kernels run for `x`: on flex (with or without autodiff), as f32 (Burn's default
/// float), with [`crate::fast_path`] on. Everywhere else Burn's own operations run.
pub(crate) fn runs_kernels<const D: usize>(x: &Tensor<D>) -> bool {
    crate::fast_path::enabled() && x.device() == Device::flex() && x.dtype() == DType::F32
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

/// The gradient of one kernel with `N` tensor inputs: from the inputs, the upstream
/// gradient, which inputs want a gradient, and the operation's parameters, the wanted gradients.
pub(crate) type GradFn<P, const N: usize> =
    fn([FlexTensor; N], FlexTensor, [bool; N], P) -> [Option<FlexTensor>; N];

/// The autodiff node of a kernel: its inputs are checkpointed, and `grad` turns the
/// upstream gradient into theirs.
#[derive(Debug)]
struct FusedBackward<P, const N: usize> {
    grad: GradFn<P, N>,
}

impl<P: Clone + Send + std::fmt::Debug + 'static, const N: usize> Backward<Flex, N>
    for FusedBackward<P, N>
{
    type State = ([NodeId; N], P);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<Flex>(&ops.node);
        let (ids, params) = ops.state;
        let inputs = ids.map(|id| checkpointer.retrieve_node_output::<FlexTensor>(id));
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let input_grads = (self.grad)(inputs, dy, wanted, params);
        for (node, grad) in ops.parents.into_iter().zip(input_grads) {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// Records `forward` of the inputs' values as one autodiff node with gradient `grad` (or just
/// runs it when no input is tracked).
pub(crate) fn record<
    C: CheckpointStrategy,
    P: Clone + Send + std::fmt::Debug + 'static,
    const N: usize,
>(
    inputs: [FloatTensor<Autodiff<Flex, C>>; N],
    params: P,
    grad: GradFn<P, N>,
    forward: impl FnOnce([FlexTensor; N]) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = inputs.each_ref().map(|t| t.node());
    let node = FusedBackward { grad };
    match node.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let ids = inputs.each_ref().map(|t| prep.checkpoint(t));
            let values = inputs.map(|t| t.into_parts().0);
            prep.finish((ids, params), forward(values))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(inputs.map(|t| t.into_parts().0))),
    }
}
