//! `join` on two threads for work too short for rayon: the caller and one helper that spins between
//! jobs.
//!
//! PocketNN's 20-row DFA step is about 0.2 ms of work split into several short products with serial
//! gaps in between. Rayon's workers go to sleep in those gaps, and waking them costs about as much as the work
//! they are woken for, so two rayon threads were barely faster than one. The helper here busy-waits for
//! a short while after each job (then parks, so an idle helper costs nothing), and a hand-off is a pair
//! of atomic stores.
//!
//! Only the thread that created the [`SpinJoin`] can hand out work (the handle is neither `Send` nor `Sync`),
//! and [`SpinJoin::join`] returns only after both halves have finished, so the helper never outlives what a
//! job borrows.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::Duration;

/// Spin-loop hints before a waiting thread starts yielding or parking: longer than the serial gaps of
/// a training step (tens of microseconds), short enough that an idle helper soon stops using a core.
const SPINS_BEFORE_REST: u32 = 20_000;

/// A job as the helper sees it: a borrowed closure whose lifetime [`SpinJoin::join`] guarantees.
type Job = *const (dyn Fn() + Sync);

/// What the caller and the helper share.
struct Shared {
    /// Sequence number of the last job posted; the helper runs a job when it changes.
    posted: AtomicUsize,
    /// Sequence number of the last job the helper finished.
    finished: AtomicUsize,
    /// The job of `posted`, written before `posted` is released and read after it is acquired.
    job: UnsafeCell<Option<Job>>,
    helper_panicked: AtomicBool,
    /// The payload of the helper's panic, re-raised on the owner so the run ends with the job's own
    /// message rather than a generic one.
    helper_panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    stop: AtomicBool,
}

// SAFETY: `job` is written only by the owner thread while the helper is between jobs (before `posted`
// is bumped with Release) and read only by the helper after it acquires the new `posted`; the pointee
// is `Sync`.
unsafe impl Sync for Shared {}

/// The owner's handle: see the module documentation.
pub struct SpinJoin<'s> {
    shared: &'s Shared,
    helper: Thread,
    /// `!Send + !Sync`: jobs may be posted only from the thread that owns the helper.
    _owner_only: PhantomData<Cell<()>>,
}

impl Drop for SpinJoin<'_> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.helper.unpark();
    }
}

impl std::fmt::Debug for SpinJoin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinJoin")
    }
}

impl SpinJoin<'_> {
    /// Runs `body` with a `SpinJoin` whose helper thread lives exactly as long as `body`.
    pub fn scope<R>(body: impl FnOnce(&SpinJoin) -> R) -> R {
        let shared = Shared {
            posted: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            helper_panicked: AtomicBool::new(false),
            helper_panic: Mutex::new(None),
            stop: AtomicBool::new(false),
        };
        thread::scope(|s| {
            let handle = s.spawn(|| helper_loop(&shared));
            let pair = SpinJoin {
                shared: &shared,
                helper: handle.thread().clone(),
                _owner_only: PhantomData,
            };
            body(&pair)
            // `pair` is dropped here, also when `body` panics: that stops the helper, which the
            // scope then joins.
        })
    }

    /// Runs `a` on this thread and `b` on the helper, and returns both results once both are done.
    /// A panic in either is re-raised here after both have stopped.
    pub fn join<RA, RB>(&self, a: impl FnOnce() -> RA, b: impl FnOnce() -> RB + Send) -> (RA, RB)
    where
        RB: Send,
    {
        let b = Mutex::new(Some(b));
        let b_result = Mutex::new(None);
        let shim = || {
            let f = b.lock().ok().and_then(|mut f| f.take());
            if let Some(f) = f {
                let r = f();
                if let Ok(mut slot) = b_result.lock() {
                    *slot = Some(r);
                }
            }
        };
        let shim: &(dyn Fn() + Sync) = &shim;
        // SAFETY: the pointer is dereferenced only by the helper while running this job, and this
        // function does not return (or unwind) before `finished` shows the job done, so `shim` and
        // everything it borrows are alive for every use; lifetimes are erased only to store it.
        let job: Job =
            unsafe { std::mem::transmute::<&(dyn Fn() + Sync), &'static (dyn Fn() + Sync)>(shim) };
        let seq = self.shared.posted.load(Ordering::Relaxed) + 1;
        // SAFETY: the helper finished the previous job (every join waits for it) and reads `job` only
        // after acquiring the `posted` store below.
        unsafe { *self.shared.job.get() = Some(job) };
        self.shared.posted.store(seq, Ordering::Release);
        self.helper.unpark();
        let a_result = panic::catch_unwind(AssertUnwindSafe(a));
        wait_until(|| self.shared.finished.load(Ordering::Acquire) == seq);
        let a_result = a_result.unwrap_or_else(|p| panic::resume_unwind(p));
        if self.shared.helper_panicked.swap(false, Ordering::Acquire) {
            let payload = self
                .shared
                .helper_panic
                .lock()
                .ok()
                .and_then(|mut p| p.take());
            match payload {
                Some(payload) => panic::resume_unwind(payload),
                None => panic!("the spin-join helper thread panicked while running a job"),
            }
        }
        let b_result = b_result.into_inner().ok().flatten();
        (a_result, b_result.expect("the helper ran the job"))
    }
}

/// Spins until `ready`, yielding the CPU after a while (the other thread is then likely descheduled).
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        if spins < SPINS_BEFORE_REST {
            spins += 1;
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// The helper: wait for a new job (spinning, then parked), run it, publish that it is done.
fn helper_loop(shared: &Shared) {
    let mut seen = 0;
    loop {
        let mut spins = 0u32;
        loop {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let posted = shared.posted.load(Ordering::Acquire);
            if posted != seen {
                seen = posted;
                break;
            }
            if spins < SPINS_BEFORE_REST {
                spins += 1;
                std::hint::spin_loop();
            } else {
                // Woken by the owner's unpark on every post; the timeout only bounds a missed wake.
                thread::park_timeout(Duration::from_millis(5));
            }
        }
        // SAFETY: `posted` was acquired after the owner wrote `job`, and the owner keeps the job alive
        // until `finished` says it is done.
        let job = unsafe { *shared.job.get() };
        if let Some(job) = job {
            // SAFETY: see above; the closure is `Sync`.
            let run = || unsafe { (*job)() };
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(run)) {
                if let Ok(mut slot) = shared.helper_panic.lock() {
                    *slot = Some(payload);
                }
                shared.helper_panicked.store(true, Ordering::Release);
            }
        }
        shared.finished.store(seen, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_runs_both_halves_and_returns_their_results() {
        let mut left = vec![0u64; 1000];
        let mut right = vec![0u64; 1000];
        let total = SpinJoin::scope(|pair| {
            let mut total = 0;
            for round in 0..500u64 {
                let (a, b) = pair.join(
                    || {
                        left.iter_mut()
                            .map(|v| {
                                *v += round;
                                *v
                            })
                            .sum::<u64>()
                    },
                    || {
                        right
                            .iter_mut()
                            .map(|v| {
                                *v += 2 * round;
                                *v
                            })
                            .sum::<u64>()
                    },
                );
                total = a + b;
            }
            total
        });
        let tri = 499 * 500 / 2;
        assert_eq!(total, 1000 * tri + 1000 * 2 * tri);
        assert!(left.iter().all(|&v| v == tri));
        assert!(right.iter().all(|&v| v == 2 * tri));
    }

    #[test]
    fn a_panicking_helper_job_is_reported_to_the_caller() {
        let caught = panic::catch_unwind(|| {
            SpinJoin::scope(|pair| {
                pair.join(|| 1, || -> u32 { panic!("job failed") });
            })
        });
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"job failed"));
    }
}
