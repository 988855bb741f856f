//! Operation counts of an integer inference, as the engines execute it: what F8Net's Figure 1
//! compares between a shift-only pipeline and the INT32-multiplier one (Jacob et al. 2018).
//!
//! The engines count while they run ([`crate::engine::Model::run_counted`],
//! [`crate::fixed8::engine::FixedPointModel::run`], and the sub-byte graph of `mixed-precision-mcu`
//! through [`crate::icn::Requant::op_counts`]): each executed node adds what its kernel's arithmetic
//! performs per element for the batch it ran, so a graph that requantizes where another shifts
//! shows the difference in the counts rather than in a formula beside the engine.
#![deny(clippy::float_arithmetic)]

use serde::{Deserialize, Serialize};

/// Operations of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// 8-bit x 8-bit products (the multiply-accumulates of convolutions and linear layers).
    pub mul_8x8: u64,
    /// 32-bit x 32-bit multiplications (the fixed-point requantization multipliers).
    pub mul_32x32: u64,
    /// Bit shifts by a non-zero amount (rounding shifts of requantization, pre-scaling and
    /// alignment shifts, pooling by a power of two).
    pub shifts: u64,
    /// Bytes the nodes read and wrote: each node's input and output tensors (8-bit codes one
    /// byte per element, int32 accumulators four) and its weights and biases, once per node run
    /// (no cache reuse, no im2col or packing copies). A node that only relabels a tensor's scale
    /// moves nothing.
    pub bytes_moved: u64,
}

impl OpCounts {
    /// These counts `n` times over (per element to per tensor).
    pub fn times(self, n: u64) -> OpCounts {
        OpCounts {
            mul_8x8: self.mul_8x8 * n,
            mul_32x32: self.mul_32x32 * n,
            shifts: self.shifts * n,
            bytes_moved: self.bytes_moved * n,
        }
    }
}

impl std::ops::AddAssign for OpCounts {
    fn add_assign(&mut self, o: Self) {
        self.mul_8x8 += o.mul_8x8;
        self.mul_32x32 += o.mul_32x32;
        self.shifts += o.shifts;
        self.bytes_moved += o.bytes_moved;
    }
}
