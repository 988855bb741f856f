//! The int32 fully connected network and its direct-feedback-alignment step (dossier §3.3–3.7).
//!
//! Weights are stored `(in, out)` row-major, one sample per row of every activation matrix, as in the
//! reference. All weights and biases start at zero; symmetry is broken only by the fixed random feedback
//! matrices `B_k`, drawn on the first training step.
#![deny(clippy::float_arithmetic)]

use crate::activation::PocketActivation;
use crate::kernels::{
    Overflow, RowMax, TruncDiv, apply_update, avx2_multiversion, max_abs, vec_mat_acc,
};
use crate::rng::{DrawSource, nonzero_in_range};
use rayon::prelude::*;
use repro::spin_join::SpinJoin;
use std::fmt;

/// Weights and biases are clamped to `[-SHRT_MAX, SHRT_MAX]` after every update.
pub const WEIGHT_LIMIT: i32 = 32_767;
/// Value of the correct class in a target row (`UNSIGNED_4BIT_MAX`); the others are 0.
pub const TARGET_ONE: i32 = 15;
/// Largest pixel value of the raw (unnormalised) 8-bit input.
pub const INPUT_MAX: i32 = 255;

/// A network whose layer widths cannot work together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

/// `floorSqrt` of the reference: the largest `s` with `s² <= x`, 0 for `x <= 0`.
pub fn floor_sqrt(x: i32) -> i32 {
    if x <= 0 { 0 } else { x.isqrt() }
}

/// One fully connected layer `A · W + b` followed by a pocket activation.
#[derive(Debug, Clone)]
pub struct Layer {
    pub in_dim: usize,
    pub out_dim: usize,
    pub activation: PocketActivation,
    /// `(in_dim, out_dim)` row-major.
    pub weight: Vec<i32>,
    pub bias: Vec<i32>,
    /// `max |weight[k, :]|` per input `k`: the bound that lets the forward product take its fast path.
    weight_max: RowMax,
    /// `B_k`, `(classes, out_dim)` row-major, with its row maxima; `None` until the first DFA step.
    feedback: Option<(Vec<i32>, RowMax)>,
}

impl Layer {
    /// A zero-initialised layer (the reference's `useDfa(true)`).
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        activation: PocketActivation,
    ) -> Result<Self, ShapeError> {
        // Pocket tanh divides by 256 · fan_in in int32.
        let max_fan_in = (i32::MAX / crate::activation::K_SCALE) as usize;
        if in_dim == 0 || out_dim == 0 {
            return Err(ShapeError(format!(
                "layer {in_dim}->{out_dim} has a zero width: every width must be at least 1"
            )));
        }
        if in_dim > max_fan_in || out_dim > max_fan_in {
            return Err(ShapeError(format!(
                "layer {in_dim}->{out_dim} is wider than {max_fan_in}, where int32 pocket arithmetic breaks: use narrower layers"
            )));
        }
        Ok(Layer {
            in_dim,
            out_dim,
            activation,
            weight: vec![0; in_dim * out_dim],
            bias: vec![0; out_dim],
            weight_max: RowMax {
                rows: vec![0; in_dim],
                all: 0,
            },
            feedback: None,
        })
    }

    /// Half-width `r` of the feedback values: `floorSqrt(12 · SHRT_MAX / (in + out))`, the Glorot-uniform
    /// limit scaled by about 256.
    pub fn feedback_range(&self) -> i32 {
        floor_sqrt(12 * WEIGHT_LIMIT / (self.in_dim + self.out_dim) as i32)
    }

    /// The DFA feedback matrix `B_k` (`classes × out_dim`), once drawn.
    pub fn feedback(&self) -> Option<&[i32]> {
        self.feedback.as_ref().map(|(b, _)| b.as_slice())
    }

    /// Draws `B_k` row-major from `[-r, r] \ {0}`, as `setRandomDfaWeight` does.
    fn draw_feedback(&mut self, classes: usize, rng: &mut impl DrawSource) {
        let r = self.feedback_range().max(1);
        let b: Vec<i32> = (0..classes * self.out_dim)
            .map(|_| nonzero_in_range(r, rng))
            .collect();
        let row_max = RowMax::of(&b, self.out_dim);
        self.feedback = Some((b, row_max));
    }
}

/// Per-layer outputs and inverse slopes of the last forward pass, reused across batches, and the
/// threads that compute them: the rayon pool, or a [`SpinJoin`] for training's small steps.
#[derive(Debug, Default, Clone)]
pub struct ForwardState<'d> {
    rows: usize,
    outputs: Vec<Vec<i32>>,
    ginv: Vec<Vec<i32>>,
    duo: Option<&'d SpinJoin<'d>>,
}

impl<'d> ForwardState<'d> {
    /// A state whose products are split between the two threads of `duo`.
    pub fn with_duo(duo: &'d SpinJoin<'d>) -> Self {
        ForwardState {
            duo: Some(duo),
            ..ForwardState::default()
        }
    }

    /// The last layer's outputs, `rows × classes`.
    pub fn logits(&self) -> &[i32] {
        self.outputs.last().map_or(&[], Vec::as_slice)
    }
}

/// Loss and correct count of one mini-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// `Σ (ŷ - y)² / 2` over the batch, each term rounded toward zero as in `batchL2Loss`.
    pub loss: i32,
    /// Rows whose argmax (lowest index on ties) is the label.
    pub correct: u32,
}

/// Index of the first maximum (strict `>`, as `getMaxIndexInRow`).
pub fn argmax(row: &[i32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// A chain of fully connected layers.
#[derive(Debug, Clone)]
pub struct Network {
    layers: Vec<Layer>,
}

impl Network {
    /// Zero-initialised layers `widths[0] -> widths[1] -> … -> classes`, one activation throughout.
    pub fn new(widths: &[usize], activation: PocketActivation) -> Result<Self, ShapeError> {
        if widths.len() < 2 {
            return Err(ShapeError(format!(
                "network widths {widths:?} need at least an input and an output width"
            )));
        }
        let layers = widths
            .windows(2)
            .map(|w| Layer::new(w[0], w[1], activation))
            .collect::<Result<Vec<_>, _>>()?;
        Network::from_layers(layers)
    }

    /// Assembles layers, checking that each layer's input width is the previous layer's output width.
    pub fn from_layers(layers: Vec<Layer>) -> Result<Self, ShapeError> {
        if layers.is_empty() {
            return Err(ShapeError("a network needs at least one layer".into()));
        }
        for (i, pair) in layers.windows(2).enumerate() {
            if pair[0].out_dim != pair[1].in_dim {
                return Err(ShapeError(format!(
                    "layer {} outputs {} values but layer {} takes {}: the shapes do not chain",
                    i + 1,
                    pair[0].out_dim,
                    i + 2,
                    pair[1].in_dim
                )));
            }
        }
        Ok(Network { layers })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].in_dim
    }

    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1].out_dim
    }

    /// Worst-case magnitude of every batch-summed product of a DFA step with `batch` rows and inputs in
    /// `[-input_max, input_max]`: `(what, bound)` per product whose bound does not depend on the weights.
    ///
    /// The forward product is not listed: it grows with the learned weights, so it is checked at run time.
    pub fn dfa_bounds(&self, batch: usize, input_max: i32) -> Vec<(String, i64)> {
        let last = self.layers.len() - 1;
        let y_max = i64::from(self.layers[last].activation.max_abs_output());
        let e_max = y_max + i64::from(TARGET_ONE);
        let classes = self.classes() as i64;
        let batch = batch as i64;
        let mut bounds = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let a_max = if i == 0 {
                i64::from(input_max)
            } else {
                i64::from(self.layers[i - 1].activation.max_abs_output())
            };
            // δ = x / g with g >= 1: |δ| <= |x|.
            let delta_max = if i == last {
                e_max
            } else {
                let eb = classes * e_max * i64::from(layer.feedback_range().max(1));
                bounds.push((format!("layer {} feedback e·B", i + 1), eb));
                eb
            };
            bounds.push((
                format!("layer {} weight update Aᵀ·δ", i + 1),
                batch * a_max * delta_max,
            ));
        }
        bounds
    }

    /// The largest batch whose DFA products provably fit in int32 (see [`Network::dfa_bounds`]).
    pub fn max_safe_batch(&self, input_max: i32) -> usize {
        let per_row = self
            .dfa_bounds(1, input_max)
            .into_iter()
            .map(|(_, b)| b)
            .max()
            .unwrap_or(1)
            .max(1);
        (i64::from(i32::MAX) / per_row) as usize
    }

    /// Forward pass of `rows` samples (`input` is `rows × input_dim`), rows split over the rayon pool.
    pub fn forward(
        &self,
        input: &[i32],
        rows: usize,
        state: &mut ForwardState,
    ) -> Result<(), Overflow> {
        assert_eq!(input.len(), rows * self.input_dim(), "forward: input shape");
        state.rows = rows;
        state.outputs.resize(self.layers.len(), Vec::new());
        state.ginv.resize(self.layers.len(), Vec::new());
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, rest) = state.outputs.split_at_mut(l);
            let x = if l == 0 { input } else { &before[l - 1] };
            forward_layer(
                layer,
                l,
                x,
                rows,
                &mut rest[0],
                &mut state.ginv[l],
                state.duo,
            )?;
        }
        Ok(())
    }

    /// One DFA training step on a mini-batch (dossier §3.4–3.6): forward, L2 loss, output error
    /// `e = ŷ - y`, `δ_L = e / g_L`, `δ_k = (e · B_k) / g_k`, then `W += (Aᵀ δ) / -lr_inv` and
    /// `b += (1ᵀ δ) / -lr_inv`, clamped. The feedback matrices are drawn from `rng` on the first call,
    /// from the layer below the output downward.
    pub fn dfa_step(
        &mut self,
        input: &[i32],
        labels: &[u8],
        lr_inv: i32,
        state: &mut ForwardState,
        rng: &mut impl DrawSource,
    ) -> Result<BatchStats, Overflow> {
        let rows = labels.len();
        let classes = self.classes();
        self.forward(input, rows, state)?;
        let logits = state.logits();
        let mut error = vec![0i32; rows * classes];
        let mut loss = 0i32;
        let mut correct = 0u32;
        for ((row, e_row), &label) in logits
            .chunks_exact(classes)
            .zip(error.chunks_exact_mut(classes))
            .zip(labels)
        {
            for (c, (e, &y_hat)) in e_row.iter_mut().zip(row).enumerate() {
                let y = if c == usize::from(label) {
                    TARGET_ONE
                } else {
                    0
                };
                *e = y_hat - y;
                loss = loss.checked_add(*e * *e / 2).ok_or_else(|| Overflow {
                    what: "batch L2 loss".into(),
                    value: i64::from(loss) + i64::from(*e * *e / 2),
                })?;
            }
            correct += u32::from(argmax(row) == usize::from(label));
        }
        let last = self.layers.len() - 1;
        for l in (0..last).rev() {
            if self.layers[l].feedback.is_none() {
                self.layers[l].draw_feedback(classes, rng);
            }
        }
        for l in (0..=last).rev() {
            let layer = &self.layers[l];
            let g = &state.ginv[l];
            let mut delta = vec![0i32; rows * layer.out_dim];
            match &layer.feedback {
                None => {
                    for ((d, &e), &gi) in delta.iter_mut().zip(&error).zip(g) {
                        *d = e / gi;
                    }
                }
                Some((b, b_row_max)) => {
                    let od = layer.out_dim;
                    let per = rows.div_ceil(workers(state.duo)).max(1);
                    let blocks: Vec<_> = delta
                        .chunks_mut(per * od)
                        .zip(error.chunks(per * classes))
                        .zip(g.chunks(per * od))
                        .enumerate()
                        .collect();
                    run_blocks(state.duo, blocks, |(chunk, ((d_blk, e_blk), g_blk))| {
                        let rows = d_blk
                            .chunks_exact_mut(od)
                            .zip(e_blk.chunks_exact(classes))
                            .zip(g_blk.chunks_exact(od));
                        for (r, ((d_row, e_row), g_row)) in rows.enumerate() {
                            vec_mat_acc(e_row, b, b_row_max, d_row, || {
                                format!(
                                    "layer {} feedback e·B (batch row {})",
                                    l + 1,
                                    chunk * per + r
                                )
                            })?;
                            for (d, &gi) in d_row.iter_mut().zip(g_row) {
                                *d /= gi;
                            }
                        }
                        Ok(())
                    })?;
                }
            }
            let (before, _) = state.outputs.split_at(l);
            let prev = if l == 0 { input } else { &before[l - 1] };
            update_layer(
                &mut self.layers[l],
                l,
                prev,
                &delta,
                rows,
                lr_inv,
                state.duo,
            )?;
        }
        Ok(BatchStats { loss, correct })
    }
}

/// Blocks to split a product into: one per thread.
fn workers(duo: Option<&SpinJoin>) -> usize {
    if duo.is_some() {
        2
    } else {
        rayon::current_num_threads()
    }
}

/// Runs `job` on every block: on the duo's two threads when it has one and there are two blocks,
/// otherwise on the rayon pool. The first error (by block order on the duo) is returned.
fn run_blocks<T: Send>(
    duo: Option<&SpinJoin>,
    mut blocks: Vec<T>,
    job: impl Fn(T) -> Result<(), Overflow> + Sync + Send,
) -> Result<(), Overflow> {
    match duo {
        Some(duo) if blocks.len() == 2 => {
            let second = blocks.pop().expect("two blocks");
            let first = blocks.pop().expect("two blocks");
            let (a, b) = duo.join(|| job(first), || job(second));
            a.and(b)
        }
        _ => blocks.into_par_iter().try_for_each(job),
    }
}

fn forward_layer(
    layer: &Layer,
    index: usize,
    x: &[i32],
    rows: usize,
    out: &mut Vec<i32>,
    ginv: &mut Vec<i32>,
    duo: Option<&SpinJoin>,
) -> Result<(), Overflow> {
    let (id, od) = (layer.in_dim, layer.out_dim);
    out.resize(rows * od, 0);
    ginv.resize(rows * od, 0);
    let per = rows.div_ceil(workers(duo)).max(1);
    let blocks: Vec<_> = out
        .chunks_mut(per * od)
        .zip(ginv.chunks_mut(per * od))
        .zip(x.chunks(per * id))
        .enumerate()
        .collect();
    run_blocks(duo, blocks, |(chunk, ((o, g), xs))| {
        forward_rows(layer, index, chunk * per, xs, o, g)
    })
}

avx2_multiversion! {
    /// Forward rows `first..` of one layer: `o = act(x · W + b)`, `g` = inverse slopes.
    fn forward_rows(
        layer: &Layer,
        index: usize,
        first: usize,
        xs: &[i32],
        o: &mut [i32],
        g: &mut [i32],
    ) -> Result<(), Overflow> {
        let (id, od) = (layer.in_dim, layer.out_dim);
        let fan_in = id as i32;
        for (r, ((o_row, g_row), x_row)) in o
            .chunks_exact_mut(od)
            .zip(g.chunks_exact_mut(od))
            .zip(xs.chunks_exact(id))
            .enumerate()
        {
            o_row.copy_from_slice(&layer.bias);
            vec_mat_acc(x_row, &layer.weight, &layer.weight_max, o_row, || {
                format!("layer {} forward (row {})", index + 1, first + r)
            })?;
            layer.activation.apply_in_place(o_row, fan_in, g_row);
        }
        Ok(())
    }
}

/// The product and weight-row update of one block of inputs `first..`.
struct UpdateBlock<'a> {
    index: usize,
    first: usize,
    /// The layer's whole input `A`, `(batch, in_dim)`: the block reads its columns `first..`.
    prev: &'a [i32],
    in_dim: usize,
    delta: &'a [i32],
    delta_max: &'a RowMax,
    lr_inv: TruncDiv,
}

avx2_multiversion! {
    /// `W[k, :] = clamp(W[k, :] + (Aᵀ[k, :] · δ) / -lr_inv)` for the block's rows, skipping all-zero
    /// input columns (their update is exactly 0), and refreshes the rows' `max|W|`.
    fn update_rows(b: &UpdateBlock, w: &mut [i32], w_max: &mut [i64]) -> Result<(), Overflow> {
        let od = w.len() / w_max.len().max(1);
        let rows = b.delta.len() / od.max(1);
        let mut grad = vec![0i32; od];
        let mut a_col = vec![0i32; rows];
        for (k, (w_row, w_row_max)) in w.chunks_exact_mut(od).zip(w_max.iter_mut()).enumerate() {
            let k = b.first + k;
            for (a, p_row) in a_col.iter_mut().zip(b.prev.chunks_exact(b.in_dim)) {
                *a = p_row[k];
            }
            if a_col.iter().all(|&v| v == 0) {
                continue;
            }
            grad.fill(0);
            vec_mat_acc(&a_col, b.delta, b.delta_max, &mut grad, || {
                format!("layer {} weight update Aᵀ·δ (input {k})", b.index + 1)
            })?;
            apply_update(w_row, &grad, b.lr_inv, WEIGHT_LIMIT, w_row_max).map_err(|value| {
                Overflow {
                    what: format!("layer {} weight update (input {k})", b.index + 1),
                    value,
                }
            })?;
        }
        Ok(())
    }
}

/// `W += (Aᵀ δ) / -lr_inv`, `b += (1ᵀ δ) / -lr_inv`, both clamped to `±WEIGHT_LIMIT`; input rows `k`
/// whose batch column of `A` is all zero are skipped (their update is exactly 0).
fn update_layer(
    layer: &mut Layer,
    index: usize,
    prev: &[i32],
    delta: &[i32],
    rows: usize,
    lr_inv: i32,
    duo: Option<&SpinJoin>,
) -> Result<(), Overflow> {
    let (id, od) = (layer.in_dim, layer.out_dim);
    let delta_max = RowMax::of(delta, od);
    let per = id.div_ceil(workers(duo)).max(1);
    let lr_inv = TruncDiv::new(lr_inv);
    let blocks: Vec<_> = layer
        .weight
        .chunks_mut(per * od)
        .zip(layer.weight_max.rows.chunks_mut(per))
        .enumerate()
        .collect();
    run_blocks(duo, blocks, |(chunk, (w, w_max))| {
        let block = UpdateBlock {
            index,
            first: chunk * per,
            prev,
            in_dim: id,
            delta,
            delta_max: &delta_max,
            lr_inv,
        };
        update_rows(&block, w, w_max)
    })?;
    layer.weight_max.refresh();
    let mut grad = vec![0i32; od];
    vec_mat_acc(&vec![1; rows], delta, &delta_max, &mut grad, || {
        format!("layer {} bias update 1ᵀ·δ", index + 1)
    })?;
    let mut bias_max = max_abs(&layer.bias);
    apply_update(&mut layer.bias, &grad, lr_inv, WEIGHT_LIMIT, &mut bias_max).map_err(|value| {
        Overflow {
            what: format!("layer {} bias update", index + 1),
            value,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::GlibcRand;

    #[test]
    fn feedback_ranges_match_the_dossier() {
        let mnist = Network::new(&[784, 100, 50, 10], PocketActivation::PocketTanh).unwrap();
        let r: Vec<i32> = mnist.layers().iter().map(Layer::feedback_range).collect();
        assert_eq!(&r[..2], &[21, 51]);
        let fashion = Network::new(&[784, 200, 100, 50, 10], PocketActivation::PocketTanh).unwrap();
        let r: Vec<i32> = fashion.layers().iter().map(Layer::feedback_range).collect();
        assert_eq!(&r[..3], &[19, 36, 51]);
    }

    #[test]
    fn shapes_that_do_not_chain_are_refused() {
        let a = Layer::new(784, 100, PocketActivation::PocketTanh).unwrap();
        let b = Layer::new(50, 10, PocketActivation::PocketTanh).unwrap();
        let e = Network::from_layers(vec![a, b]).unwrap_err();
        assert!(e.0.contains("do not chain"), "{e}");
        assert!(Network::new(&[784], PocketActivation::PocketTanh).is_err());
        assert!(Network::new(&[784, 0, 10], PocketActivation::PocketTanh).is_err());
        assert!(Network::new(&[100_000_000, 10], PocketActivation::PocketTanh).is_err());
    }

    #[test]
    fn zero_network_predicts_class_zero() {
        let net = Network::new(&[4, 3, 10], PocketActivation::PocketTanh).unwrap();
        let mut st = ForwardState::default();
        net.forward(&[255, 0, 17, 3, 1, 2, 3, 4], 2, &mut st)
            .unwrap();
        assert!(st.logits().iter().all(|&v| v == 0));
        assert_eq!(argmax(&st.logits()[..10]), 0);
        assert_eq!(argmax(&[3, 7, 7, 1]), 1, "ties go to the lowest index");
    }

    #[test]
    fn safe_batch_bound_matches_hand_computation() {
        let net = Network::new(&[784, 100, 50, 10], PocketActivation::PocketTanh).unwrap();
        // Worst per-row product: layer 2 update, 127 · (10 · 142 · 51) = 9 196 740.
        assert_eq!(
            net.max_safe_batch(INPUT_MAX),
            (i32::MAX / 9_196_740) as usize
        );
        assert!(net.max_safe_batch(INPUT_MAX) >= 20);
    }

    /// Rows and weight blocks are split over however many threads the pool has; the result must not
    /// depend on it.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut net = Network::new(&[30, 9, 7, 4], PocketActivation::PocketTanh).unwrap();
                let mut st = ForwardState::default();
                let mut rng = GlibcRand::default();
                let mut data = GlibcRand::new(9);
                let mut log = Vec::new();
                for _ in 0..20 {
                    let x: Vec<i32> = (0..5 * 30).map(|_| data.below(256) as i32).collect();
                    let y: Vec<u8> = (0..5).map(|_| data.below(4) as u8).collect();
                    log.push(net.dfa_step(&x, &y, 50, &mut st, &mut rng).unwrap());
                }
                (
                    log,
                    net.layers()
                        .iter()
                        .map(|l| l.weight.clone())
                        .collect::<Vec<_>>(),
                )
            })
        };
        let one = run(1);
        assert!(
            one.1[0].iter().any(|&w| w != 0),
            "the test must train something"
        );
        assert_eq!(one, run(3));
    }

    /// A hand-traced step on a 2-input, 2-hidden, 2-class tanh network with one sample.
    #[test]
    fn dfa_step_by_hand() {
        let mut net = Network::new(&[2, 2, 2], PocketActivation::PocketTanh).unwrap();
        let mut st = ForwardState::default();
        let mut rng = GlibcRand::default();
        let stats = net
            .dfa_step(&[100, 0], &[1], 10, &mut st, &mut rng)
            .unwrap();
        // Zero net: ŷ = (0, 0), y = (0, 15): e = (0, -15), loss = 225 / 2 = 112, argmax 0 ≠ 1.
        assert_eq!(
            stats,
            BatchStats {
                loss: 112,
                correct: 0
            }
        );
        // r = floorSqrt(12 · 32767 / 4) = 313; B drawn from the unseeded stream, row-major.
        let mut replay = GlibcRand::default();
        let b: Vec<i32> = (0..4).map(|_| nonzero_in_range(313, &mut replay)).collect();
        assert_eq!(net.layers()[0].feedback().unwrap(), b.as_slice());
        // Output layer: g = 1 at x = 0, δ = e; its input (hidden output) is 0, so W stays 0 and
        // b -= δ / 10 = (0, -1) -> b = (0, 1) after division by -10: (-15) / -10 = 1.
        assert_eq!(net.layers()[1].bias, vec![0, 1]);
        assert!(net.layers()[1].weight.iter().all(|&w| w == 0));
        // Hidden layer: δ = e · B = -15 · B[1, :]; W[0, :] += 100 δ / -10 = 150 B[1, :], clamped.
        let expected_w0: Vec<i32> = (0..2)
            .map(|j| (150 * b[2 + j]).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT))
            .collect();
        assert_eq!(&net.layers()[0].weight[..2], expected_w0.as_slice());
        assert_eq!(&net.layers()[0].weight[2..], &[0, 0]);
        let expected_b: Vec<i32> = (0..2).map(|j| (-15 * b[2 + j]) / -10).collect();
        assert_eq!(net.layers()[0].bias, expected_b);
    }
}
