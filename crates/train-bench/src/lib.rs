//! The training-speed benchmark (`bench-train`): one training step (forward, backward, optimizer)
//! of every model the five papers train in Burn, in float and in each paper's QAT mode, at batch
//! 128 on 1 and 2 threads, written to `results/quant-train/train_step.csv`;
//! `scripts/bench_torch_train.py` times the same architectures in PyTorch beside it.
//!
//! It lives in its own crate because it depends on every paper crate, and paper crates never
//! depend on each other.

pub mod catalog;
pub mod table;
pub mod timing;
pub mod trainee;
