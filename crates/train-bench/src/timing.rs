//! Timing one training step: warm-up steps first (allocator, lazy initialisation, first Adam
//! state), then repeated calls of the paper's training function, each over a fixed number of
//! steps, reported as milliseconds per step (median and mean over the calls) with the process's
//! CPU time over wall time, which shows how many cores the step kept busy, or that other jobs
//! took them.

use std::time::Instant;

use quant_train::rng::Rng;
use repro::datasets::ImageSet;

use crate::trainee::{BATCH, Trainee};

/// How many steps to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPlan {
    /// Untimed steps before the first timed call.
    pub warmup: usize,
    /// Timed calls of the training function.
    pub calls: usize,
    /// Steps per timed call (the call's fixed costs, such as the optimizer's creation, are
    /// spread over them, as in a real run where they are paid once).
    pub steps: usize,
}

impl StepPlan {
    /// The benchmark of record.
    pub const FULL: StepPlan = StepPlan {
        warmup: 2,
        calls: 5,
        steps: 2,
    };
    /// Seconds per model: proves the pipeline, not a measurement to quote.
    pub const QUICK: StepPlan = StepPlan {
        warmup: 1,
        calls: 2,
        steps: 1,
    };

    /// Steps one row runs, warm-up included.
    pub fn total_steps(&self) -> usize {
        self.warmup + self.calls * self.steps
    }
}

/// The measurement of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub median_ms: f64,
    pub mean_ms: f64,
    /// Process CPU seconds per wall second over the timed calls.
    pub cpu_per_wall: f64,
    /// Timed steps (warm-up excluded).
    pub steps: usize,
    /// Milliseconds per step in each of quant-train's kernels (`quant_train::kernel_time`); the
    /// rest of the mean step is Burn's other operations, autodiff and the optimizer.
    pub kernels: Vec<(&'static str, f64)>,
}

impl Timing {
    /// `name=ms;...;rest=ms` per step, for the table and the log.
    pub fn breakdown(&self) -> String {
        let inside: f64 = self.kernels.iter().map(|k| k.1).sum();
        self.kernels
            .iter()
            .filter(|k| k.1 > 0.0)
            .map(|(name, ms)| format!("{name}={ms:.1}"))
            .chain([format!("rest={:.1}", (self.mean_ms - inside).max(0.0))])
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// `n` images of `side` x `side` grey pixels and labels 0-9, pseudo-random from `seed`: a step
/// costs the same whatever the pixels, and the benchmark needs no data set on disk.
pub fn synthetic(side: usize, n: usize, seed: u64) -> ImageSet {
    let mut rng = Rng::new(seed);
    ImageSet {
        images: (0..n * side * side).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(10) as u8).collect(),
        channels: 1,
        rows: side,
        cols: side,
        checksums: Vec::new(),
    }
}

/// Runs `plan` on `trainee` with inputs of `side` pixels.
pub fn time_steps(
    trainee: &mut dyn Trainee,
    side: usize,
    plan: StepPlan,
) -> Result<Timing, String> {
    let warm = synthetic(side, plan.warmup * BATCH, 1);
    if plan.warmup > 0 {
        trainee.train(&warm, plan.warmup)?;
    }
    let data = synthetic(side, plan.steps * BATCH, 2);
    quant_train::kernel_time::reset();
    let mut per_step = Vec::with_capacity(plan.calls);
    let (mut wall, mut cpu) = (0.0, 0.0);
    for _ in 0..plan.calls {
        let (started, cpu_start) = (Instant::now(), process_cpu_seconds());
        trainee.train(&data, plan.steps)?;
        let seconds = started.elapsed().as_secs_f64();
        cpu += process_cpu_seconds() - cpu_start;
        wall += seconds;
        per_step.push(seconds * 1e3 / plan.steps as f64);
    }
    let mean_ms = repro::stats::mean(&per_step).ok_or("the step plan times no calls")?;
    let steps = (plan.calls * plan.steps) as f64;
    let kernels: Vec<(&'static str, f64)> = quant_train::kernel_time::totals()
        .into_iter()
        .map(|(k, seconds)| (k.name(), seconds * 1e3 / steps))
        .collect();
    Ok(Timing {
        kernels,
        median_ms: integer_qat::median(&mut per_step),
        mean_ms,
        cpu_per_wall: cpu / wall.max(f64::MIN_POSITIVE),
        steps: plan.calls * plan.steps,
    })
}

/// CPU seconds used so far by every thread of this process (`CLOCK_PROCESS_CPUTIME_ID`); 0 where
/// the clock is unavailable, which makes the CPU ratio 0 rather than wrong.
fn process_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trainee that burns a known amount of CPU per step.
    struct Spin(usize);

    impl Trainee for Spin {
        fn params(&self) -> usize {
            0
        }

        fn train(&mut self, data: &ImageSet, steps: usize) -> Result<(), String> {
            assert_eq!(data.len(), steps * BATCH, "one batch per step");
            self.0 += steps;
            let until = Instant::now() + std::time::Duration::from_millis(3 * steps as u64);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            Ok(())
        }
    }

    #[test]
    fn steps_are_counted_and_timed_per_step() {
        let mut spin = Spin(0);
        let plan = StepPlan {
            warmup: 1,
            calls: 3,
            steps: 2,
        };
        let t = time_steps(&mut spin, 8, plan).unwrap();
        assert_eq!(spin.0, plan.total_steps());
        assert_eq!(t.steps, 6);
        // Each step spins for 3 ms of wall time, however loaded the machine is.
        assert!(t.median_ms >= 3.0 && t.mean_ms >= 3.0, "{t:?}");
        // The process clock runs (it counts every thread of the process, here other tests too).
        assert!(t.cpu_per_wall > 0.0, "{t:?}");
    }

    #[test]
    fn synthetic_images_are_valid_and_reproducible() {
        let a = synthetic(14, 5, 3);
        assert_eq!(a.images.len(), 5 * 14 * 14);
        assert!(a.labels.iter().all(|&l| l < 10));
        assert_eq!(a.images, synthetic(14, 5, 3).images);
    }
}
