//! Where a kernel call spends its time: packing (im2col rows and activation packing), the
//! microkernel (raw `sum(a*w)` tiles), and the epilogue (zero-point corrections and
//! requantization), summed over the threads that ran it.
//!
//! The benchmark needs this split to see which overhead dominates a shape, and the split is the
//! same code on every backend, so it is measured inside the driver rather than estimated from
//! separate calls. Counting is off unless [`measure`] is running: the driver then reads the clock
//! once per phase of each block of rows (a few hundred rows), not per tile, so the counts cost
//! well under one percent of a call. The counters are process-wide (threads of a rayon pool add
//! into them), so only one [`measure`] may run at a time; it is meant for benchmarks, not for
//! library callers.
#![deny(clippy::float_arithmetic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// A phase of a kernel call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Building im2col rows and packing activations.
    Pack = 0,
    /// The microkernel (or the depthwise accumulation).
    Tile = 1,
    /// Zero-point corrections, requantization, clamping and the output store.
    Epilogue = 2,
}

/// Thread time per phase of the calls made inside one [`measure`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breakdown {
    /// im2col and activation packing.
    pub pack: Duration,
    /// Microkernel.
    pub tile: Duration,
    /// Output stage.
    pub epilogue: Duration,
}

impl Breakdown {
    /// Sum of the three phases.
    pub fn total(&self) -> Duration {
        self.pack + self.tile + self.epilogue
    }
}

/// Runs `f` with the phase counters on and returns its result with the time each phase took,
/// summed over threads. Not reentrant: concurrent `measure` calls mix their counts.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Breakdown) {
    for n in &NANOS {
        n.store(0, Ordering::Relaxed);
    }
    ENABLED.store(true, Ordering::SeqCst);
    let r = f();
    ENABLED.store(false, Ordering::SeqCst);
    let get = |p: Phase| Duration::from_nanos(NANOS[p as usize].load(Ordering::Relaxed));
    let b = Breakdown {
        pack: get(Phase::Pack),
        tile: get(Phase::Tile),
        epilogue: get(Phase::Epilogue),
    };
    (r, b)
}

/// A per-thread stopwatch: `None` when counting is off, so a kernel call pays one relaxed load.
pub(crate) struct Clock(Option<Instant>);

impl Clock {
    /// Starts the stopwatch when a [`measure`] is running.
    #[inline]
    pub(crate) fn start() -> Clock {
        Clock(ENABLED.load(Ordering::Relaxed).then(Instant::now))
    }

    /// Adds the time since the last lap to `phase` and starts the next lap.
    #[inline]
    pub(crate) fn lap(&mut self, phase: Phase) {
        if let Some(t) = &mut self.0 {
            let now = Instant::now();
            let ns = u64::try_from((now - *t).as_nanos()).unwrap_or(u64::MAX);
            NANOS[phase as usize].fetch_add(ns, Ordering::Relaxed);
            *t = now;
        }
    }
}
