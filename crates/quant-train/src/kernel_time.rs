//! Where a training step spends its time: wall time and calls of each hand-written kernel of
//! [`crate::conv`] and [`crate::fused`], summed over the process (all threads), so that a
//! benchmark can split a step into the kernels and the rest (Burn's other operations, autodiff
//! bookkeeping, the optimizer). Reading a clock twice per kernel call costs well under a
//! microsecond against kernels of tens of microseconds and more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The kernels timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Dense or grouped convolution (im2col and GEMM), forward.
    ConvForward,
    /// Its input gradient.
    ConvInputGrad,
    /// Its weight gradient.
    ConvWeightGrad,
    /// Depthwise convolution, forward and both gradients.
    Depthwise,
    /// Clips, fake quantizers, PACT and the per-channel scale and shift, forward and backward.
    Elementwise,
    /// Batch moments and the observers' ranges, forward and backward.
    Reductions,
    /// Max pooling, forward and backward.
    Pooling,
}

impl Kernel {
    /// Every kernel, in report order.
    pub const ALL: [Kernel; 7] = [
        Kernel::ConvForward,
        Kernel::ConvInputGrad,
        Kernel::ConvWeightGrad,
        Kernel::Depthwise,
        Kernel::Elementwise,
        Kernel::Reductions,
        Kernel::Pooling,
    ];

    /// Short label for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::ConvForward => "conv-fwd",
            Kernel::ConvInputGrad => "conv-dx",
            Kernel::ConvWeightGrad => "conv-dw",
            Kernel::Depthwise => "depthwise",
            Kernel::Elementwise => "elementwise",
            Kernel::Reductions => "reductions",
            Kernel::Pooling => "pool",
        }
    }
}

static NANOS: [AtomicU64; Kernel::ALL.len()] = [const { AtomicU64::new(0) }; Kernel::ALL.len()];

/// Runs `f`, adding its wall time to `kernel`'s total.
pub(crate) fn timed<R>(kernel: Kernel, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let out = f();
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    NANOS[kernel as usize].fetch_add(ns, Ordering::Relaxed);
    out
}

/// Seconds spent in each kernel since the process started (or the last [`reset`]).
pub fn totals() -> Vec<(Kernel, f64)> {
    Kernel::ALL
        .iter()
        .map(|&k| (k, NANOS[k as usize].load(Ordering::Relaxed) as f64 * 1e-9))
        .collect()
}

/// Sets every total back to zero.
pub fn reset() {
    NANOS.iter().for_each(|n| n.store(0, Ordering::Relaxed));
}
