//! A work queue for experiments whose units are long, independent and create follow-up units.
//!
//! One training step of the papers' small proxies keeps about one core busy (Burn's kernels
//! parallelise little at that size), so an experiment with several independent stages runs them side
//! by side on worker threads instead of one after another.

/// Runs `initial` jobs on up to `workers` threads; a finished job may queue follow-up jobs (F8Net's
/// quantized stages once their FP model is trained). Results come back in completion order; the
/// first error stops the queue. A job that panics counts as an error carrying the panic's message,
/// so a failing worker ends the run instead of hanging it.
pub fn run_jobs<J: Send, R: Send>(
    workers: usize,
    initial: Vec<J>,
    run: impl Fn(J) -> Result<(R, Vec<J>), String> + Sync,
) -> Result<Vec<R>, String> {
    use std::sync::{Condvar, Mutex};
    struct Queue<J, R> {
        jobs: std::collections::VecDeque<J>,
        active: usize,
        results: Vec<R>,
        error: Option<String>,
    }
    let queue = Mutex::new(Queue {
        jobs: initial.into(),
        active: 0,
        results: Vec::new(),
        error: None,
    });
    let ready = Condvar::new();
    let lock = || queue.lock().unwrap_or_else(|p| p.into_inner());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                loop {
                    let job = {
                        let mut q = lock();
                        loop {
                            if q.error.is_some() {
                                break None;
                            }
                            if let Some(j) = q.jobs.pop_front() {
                                q.active += 1;
                                break Some(j);
                            }
                            if q.active == 0 {
                                break None;
                            }
                            q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let Some(job) = job else {
                        ready.notify_all();
                        return;
                    };
                    // A panicking job must not leave `active` counted forever: the other workers
                    // would wait on `ready` for good and the scope would never join.
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(job)))
                            .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())));
                    let mut q = lock();
                    q.active -= 1;
                    match outcome {
                        Ok((r, next)) => {
                            q.results.push(r);
                            q.jobs.extend(next);
                        }
                        Err(e) => {
                            q.error.get_or_insert(e);
                        }
                    }
                    ready.notify_all();
                }
            });
        }
    });
    let q = queue.into_inner().unwrap_or_else(|p| p.into_inner());
    match q.error {
        Some(e) => Err(e),
        None => Ok(q.results),
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message), for the error a
/// panicking worker turns into.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("a worker thread panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_jobs_runs_follow_ups_and_stops_at_the_first_error() {
        // job n queues n - 1 (a chain of follow-ups), so starting from 3 and 2 every job 0..=3 runs
        let mut done = run_jobs(2, vec![3u32, 2], |n| {
            Ok((n, if n > 0 { vec![n - 1] } else { vec![] }))
        })
        .unwrap();
        done.sort_unstable();
        assert_eq!(done, vec![0, 0, 1, 1, 2, 2, 3]);
        let err = run_jobs(2, vec![1u32, 5], |n| {
            if n == 0 {
                Err("job 0 failed".to_string())
            } else {
                Ok((n, vec![n - 1]))
            }
        });
        assert_eq!(err, Err("job 0 failed".to_string()));
    }

    /// A job that panics while another worker waits for follow-ups: the run must end with the panic's
    /// message. Run on a side thread with a deadline, so a hang fails the test instead of blocking it.
    #[test]
    fn a_panicking_job_ends_the_run_with_its_message() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = run_jobs(2, vec![0u32, 1], |n| {
                if n == 0 {
                    panic!("job {n} exploded");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                Ok((n, vec![]))
            });
            let _ = tx.send(outcome);
        });
        let outcome = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("run_jobs hung after a worker panicked");
        let err = outcome.unwrap_err();
        assert!(err.contains("job 0 exploded"), "{err}");
    }
}
