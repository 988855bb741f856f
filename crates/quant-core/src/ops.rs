//! Operation counts of an integer inference, as the integer graph executes it: what F8Net's Figure 1
//! compares between a shift-only pipeline and the INT32-multiplier one (Jacob et al. 2018).
//!
//! The integer graph's executor counts while it runs ([`crate::graph::Graph::run`]; Jacob's,
//! F8Net's and Rusci et al.'s schemes all run on it): each executed node adds what its kernel and
//! its requantization plug-in perform per element for the batch it ran, and the bytes of its
//! inputs, output and parameters, so a graph that requantizes where another shifts shows the
//! difference in the counts rather than in a formula beside the executor. The scalar references
//! (`fixed8::engine`, the packed sub-byte graph of `mixed-precision-mcu`) count the same way, and
//! the tests hold the two equal.
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
    /// Bytes the nodes read and wrote: each node's input and output tensors as a deployment
    /// stores them (sub-byte codes packed, 8-bit codes one byte per element, int32 accumulators
    /// four, int64 logits eight) and its parameters, once per node run (no cache reuse, no
    /// im2col or packing copies). Relabelling a tensor's scale is no node and moves nothing.
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
