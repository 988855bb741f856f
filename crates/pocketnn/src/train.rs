//! The reference's training loop (dossier §3.8): per-epoch shuffle, mini-batches of 20, the
//! learning-rate-inverse doubling every 10 epochs, the running train count and a test pass per epoch.
#![deny(clippy::float_arithmetic)]

use crate::kernels::Overflow;
use crate::network::{ForwardState, Network, argmax};
use crate::rng::{DrawSource, shuffle};
use repro::datasets::ImageSet;
use repro::spin_join::SpinJoin;
use std::time::{Duration, Instant};

/// Hyper-parameters of the reference examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch: usize,
    /// Learning-rate inverse at epoch 1 (`lrInv = 1000`).
    pub lr_inv: i32,
    /// `lrInv` doubles at the start of every epoch divisible by this (10 in the code; its comment says 5).
    pub lr_double_every: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 3,
            batch: 20,
            lr_inv: 1000,
            lr_double_every: 10,
        }
    }
}

/// What the reference prints for one epoch, plus its wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStats {
    pub epoch: u32,
    pub lr_inv: i32,
    /// `SumLoss`: the int sum of the batch L2 losses over the epoch.
    pub sum_loss: i32,
    /// Running count of correct training predictions while the weights change.
    pub train_correct: u32,
    pub test_correct: u32,
    /// Correct predictions of a full pass over the training set after this epoch, when asked for
    /// (the reference prints one after its last epoch: "Final training numCorrect").
    pub train_pass_correct: Option<u32>,
    /// Wall time of the epoch (shuffle, steps, test pass; not the optional training-set pass).
    pub elapsed: Duration,
}

/// A data split as the network consumes it: raw pixels and labels checked against the network.
pub struct Split<'a> {
    set: &'a ImageSet,
}

impl<'a> Split<'a> {
    /// Checks that images have `net.input_dim()` pixels and labels name one of `net.classes()` classes.
    pub fn new(set: &'a ImageSet, net: &Network, what: &str) -> Result<Self, String> {
        if set.pixels() != net.input_dim() {
            return Err(format!(
                "{what}: images have {} pixels but the network's first layer takes {}: the shapes do not chain",
                set.pixels(),
                net.input_dim()
            ));
        }
        if let Some(bad) = set
            .labels
            .iter()
            .find(|&&l| usize::from(l) >= net.classes())
        {
            return Err(format!(
                "{what}: label {bad} but the network has {} classes: the label file is corrupt, run make data",
                net.classes()
            ));
        }
        if set.is_empty() {
            return Err(format!("{what}: no examples"));
        }
        Ok(Split { set })
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Writes the pixels of the listed examples, as int32, into `out` (`indices.len() × pixels`).
    fn gather(&self, indices: &[usize], out: &mut Vec<i32>) {
        let p = self.set.pixels();
        out.clear();
        for &i in indices {
            out.extend(
                self.set.images[i * p..(i + 1) * p]
                    .iter()
                    .map(|&v| i32::from(v)),
            );
        }
    }
}

/// Number of test rows pushed through the network at once (bounded memory, rows split across threads).
const EVAL_BLOCK: usize = 1000;

/// Correct predictions of `net` on a whole split, computed with the threads of `state` (the reference
/// forwards it in one piece; rows are independent, so blocks give identical outputs).
fn count_correct(net: &Network, split: &Split, mut state: ForwardState) -> Result<u32, Overflow> {
    let classes = net.classes();
    let mut input = Vec::new();
    let mut correct = 0;
    let all: Vec<usize> = (0..split.len()).collect();
    for block in all.chunks(EVAL_BLOCK) {
        split.gather(block, &mut input);
        net.forward(&input, block.len(), &mut state)?;
        correct += state
            .logits()
            .chunks_exact(classes)
            .zip(block)
            .filter(|(row, i)| argmax(row) == usize::from(split.set.labels[**i]))
            .count() as u32;
    }
    Ok(correct)
}

/// What [`train`] reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Mini-batch `i` of the current epoch is done.
    Batch(usize),
    /// An epoch (with its test pass) is done.
    Epoch(&'a EpochStats),
}

/// Trains `net` in place as the reference does and reports each batch and each epoch to `progress`;
/// after the epochs listed in `train_pass_at` it also counts correct predictions over the whole
/// training set.
///
/// Draw order from `rng`: the epoch-1 shuffle, then the feedback matrices (inside the first step), then
/// one shuffle per later epoch, exactly as the reference's `rand()` calls happen. Nothing depends on
/// `config.epochs` except where the loop stops, so the first `k` epochs of a longer run are the run
/// with `epochs = k`.
pub fn train(
    net: &mut Network,
    train_set: &Split,
    test_set: &Split,
    config: &TrainConfig,
    train_pass_at: &[u32],
    rng: &mut impl DrawSource,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<EpochStats>, Overflow> {
    with_training_threads(|duo| {
        let state_for = || duo.map_or_else(ForwardState::default, ForwardState::with_duo);
        let mut indices: Vec<usize> = (0..train_set.len()).collect();
        let mut lr_inv = config.lr_inv;
        let mut state = state_for();
        let mut input = Vec::new();
        let mut history = Vec::new();
        for epoch in 1..=config.epochs {
            let start = Instant::now();
            shuffle(&mut indices, rng);
            if epoch % config.lr_double_every == 0 {
                // The reference guards `lrInv < 2 * lrInv` so that doubling never overflows.
                lr_inv = lr_inv.checked_mul(2).unwrap_or(lr_inv);
            }
            let mut sum_loss = 0i32;
            let mut train_correct = 0u32;
            for (b, batch) in indices.chunks_exact(config.batch).enumerate() {
                train_set.gather(batch, &mut input);
                let labels: Vec<u8> = batch.iter().map(|&i| train_set.set.labels[i]).collect();
                let stats = net.dfa_step(&input, &labels, lr_inv, &mut state, rng)?;
                sum_loss = sum_loss.checked_add(stats.loss).ok_or_else(|| Overflow {
                    what: format!("epoch {epoch} SumLoss"),
                    value: i64::from(sum_loss) + i64::from(stats.loss),
                })?;
                train_correct += stats.correct;
                progress(Progress::Batch(b));
            }
            let test_correct = count_correct(net, test_set, state_for())?;
            let elapsed = start.elapsed();
            let train_pass_correct = if train_pass_at.contains(&epoch) {
                Some(count_correct(net, train_set, state_for())?)
            } else {
                None
            };
            let stats = EpochStats {
                epoch,
                lr_inv,
                sum_loss,
                train_correct,
                test_correct,
                train_pass_correct,
                elapsed,
            };
            progress(Progress::Epoch(&stats));
            history.push(stats);
        }
        Ok(history)
    })
}

/// Runs `body` with a [`SpinJoin`] when the rayon pool has two or more threads (a 20-row step is too small
/// for more than two; see `crate::duo`), with the pool alone (`None`) otherwise.
fn with_training_threads<R>(body: impl FnOnce(Option<&SpinJoin>) -> R) -> R {
    if rayon::current_num_threads() < 2 {
        body(None)
    } else {
        SpinJoin::scope(|duo| body(Some(duo)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::PocketActivation;
    use crate::rng::{GlibcRand, Pcg32};

    /// `n` synthetic 4x4 "images" whose label is their bright quadrant; `stream` picks the sample.
    fn toy(n: usize, stream: u64) -> ImageSet {
        let mut rng = Pcg32::new(3, stream);
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let label = rng.below(4) as u8;
            for p in 0..16u8 {
                let quadrant = (p / 8) * 2 + (p % 4) / 2;
                let base = if quadrant == label { 150 } else { 0 };
                images.push(base + rng.below(100) as u8);
            }
            labels.push(label);
        }
        ImageSet {
            images,
            labels,
            channels: 1,
            rows: 4,
            cols: 4,
            checksums: Vec::new(),
        }
    }

    fn run(epochs: u32, pass_at: &[u32]) -> Vec<EpochStats> {
        let (train_set, test_set) = (toy(240, 1), toy(60, 2));
        let mut net = Network::new(&[16, 8, 4], PocketActivation::PocketTanh).unwrap();
        let tr = Split::new(&train_set, &net, "train").unwrap();
        let te = Split::new(&test_set, &net, "test").unwrap();
        let config = TrainConfig {
            epochs,
            lr_inv: 1000,
            ..TrainConfig::default()
        };
        train(
            &mut net,
            &tr,
            &te,
            &config,
            pass_at,
            &mut GlibcRand::default(),
            |_| {},
        )
        .unwrap()
    }

    fn numbers(h: &[EpochStats]) -> Vec<(i32, i32, u32, u32, Option<u32>)> {
        h.iter()
            .map(|s| {
                (
                    s.lr_inv,
                    s.sum_loss,
                    s.train_correct,
                    s.test_correct,
                    s.train_pass_correct,
                )
            })
            .collect()
    }

    #[test]
    fn a_short_run_is_the_prefix_of_a_long_one() {
        let long = run(12, &[3]);
        let short = run(3, &[3]);
        assert_eq!(numbers(&short), numbers(&long[..3]));
        assert_eq!(long[9].lr_inv, 2000, "lrInv doubles at epoch 10");
        assert_eq!(long[8].lr_inv, 1000);
        assert!(long[2].train_pass_correct.is_some() && long[3].train_pass_correct.is_none());
    }

    #[test]
    fn training_learns_the_toy_task() {
        let h = run(5, &[]);
        assert!(h[4].test_correct >= 50, "{:?}", numbers(&h));
    }

    #[test]
    fn bad_splits_are_refused() {
        let net = Network::new(&[16, 8, 4], PocketActivation::PocketTanh).unwrap();
        let mut set = toy(10, 1);
        set.labels[3] = 7;
        let e = Split::new(&set, &net, "train set").err().unwrap();
        assert!(e.contains("label 7"), "{e}");
        let wide = Network::new(&[784, 4], PocketActivation::PocketTanh).unwrap();
        let e = Split::new(&toy(10, 1), &wide, "train set").err().unwrap();
        assert!(e.contains("do not chain"), "{e}");
    }
}
