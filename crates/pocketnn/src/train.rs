//! The reference's training loop (dossier §3.8): per-epoch shuffle, mini-batches of 20, the
//! learning-rate-inverse doubling every 10 epochs, the running train count and a test pass per epoch.
#![deny(clippy::float_arithmetic)]

use crate::kernels::Overflow;
use crate::network::{ForwardState, Network, argmax};
use crate::rng::{DrawSource, shuffle};
use repro::datasets::ImageSet;
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

/// Correct predictions of `net` on a whole split (the reference forwards it in one piece; rows are
/// independent, so blocks give identical outputs).
pub fn count_correct(net: &Network, split: &Split) -> Result<u32, Overflow> {
    let classes = net.classes();
    let mut state = ForwardState::default();
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

/// Trains `net` in place as the reference does and calls `on_epoch` after each epoch's test pass.
///
/// Draw order from `rng`: the epoch-1 shuffle, then the feedback matrices (inside the first step), then
/// one shuffle per later epoch, exactly as the reference's `rand()` calls happen.
pub fn train(
    net: &mut Network,
    train_set: &Split,
    test_set: &Split,
    config: &TrainConfig,
    rng: &mut impl DrawSource,
    mut on_epoch: impl FnMut(&EpochStats),
    mut on_batch: impl FnMut(usize),
) -> Result<Vec<EpochStats>, Overflow> {
    let mut indices: Vec<usize> = (0..train_set.len()).collect();
    let mut lr_inv = config.lr_inv;
    let mut state = ForwardState::default();
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
            on_batch(b);
        }
        let test_correct = count_correct(net, test_set)?;
        let stats = EpochStats {
            epoch,
            lr_inv,
            sum_loss,
            train_correct,
            test_correct,
            elapsed: start.elapsed(),
        };
        on_epoch(&stats);
        history.push(stats);
    }
    Ok(history)
}
