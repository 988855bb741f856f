//! The rule-based bit-width assignment (dossier §3): activations first, in forward and backward sweeps,
//! then weights, always halving the tensor with the largest share of weight memory (with a tie window
//! that favours layers closer to the input), 8 -> 4 -> 2, until both budgets hold.
//!
//! This is a port of `quant_auto.memory_driven_quant` of the official code with one deliberate change:
//! where the official code loops forever because a budget cannot be met (§9.1), this returns an
//! [`AssignError`] naming the constraint.

use crate::memory::{
    BitWidths, Budget, Fold, Footprint, Granularity, bytes, extra_bytes, ram_bits, weight_bits,
};
use crate::mobilenet::LayerShape;
use std::fmt;

/// The smallest bit width of any tensor (`MIN_ACT_BITS`, `MIN_BIT`).
pub const MIN_BITS: u8 = 2;

/// The official tie window δ = 0.05 of the total weight memory, in basis points.
pub const DEFAULT_DELTA_BP: u32 = 500;

/// Why no assignment fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignError {
    /// Some layer's input plus output exceed the read-write budget even with every cut it allows.
    Ram {
        layer: usize,
        kind: &'static str,
        needed: u64,
        budget: u64,
    },
    /// Weights plus parameters exceed the read-only budget with every weight tensor at 2 bits.
    Rom { needed: u64, budget: u64 },
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssignError::Ram {
                layer,
                kind,
                needed,
                budget,
            } => write!(
                f,
                "RAM budget {budget} B is infeasible: layer {} ({kind}) needs {needed} B for its input \
                 and output at the lowest bit widths allowed; raise --ram or choose a smaller resolution",
                layer + 1
            ),
            AssignError::Rom { needed, budget } => write!(
                f,
                "ROM budget {budget} B is infeasible: weights and parameters need {needed} B with every \
                 weight tensor at {MIN_BITS} bits; raise --rom or choose a smaller width"
            ),
        }
    }
}

impl std::error::Error for AssignError {}

/// Options of the assignment beyond the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignOptions {
    pub granularity: Granularity,
    /// Tie window δ in basis points of the total weight memory (500 = 0.05, the official value).
    pub delta_bp: u32,
}

impl AssignOptions {
    /// The official settings for one granularity.
    pub fn official(granularity: Granularity) -> Self {
        AssignOptions {
            granularity,
            delta_bp: DEFAULT_DELTA_BP,
        }
    }
}

/// One weight cut: `(0-based layer, new weight bits)`.
pub type Cut = (usize, u8);

/// The result of the assignment: bits, folds and the weight cuts in the order they were made.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub granularity: Granularity,
    pub budget: Budget,
    pub layers: Vec<LayerShape>,
    pub bits: BitWidths,
    pub folds: Vec<Fold>,
    /// The weight cuts in the order they were made.
    pub cut_order: Vec<Cut>,
}

impl Assignment {
    /// Footprints of the assigned model.
    pub fn footprint(&self) -> Footprint {
        Footprint::of(&self.layers, &self.bits, &self.folds, self.granularity)
    }

    /// Weight bits averaged over parameters.
    pub fn weight_avg_bits(&self) -> f64 {
        let params: u64 = self.layers.iter().map(|l| l.weights).sum();
        weight_bits(&self.layers, &self.bits) as f64 / params as f64
    }

    /// `F`/`I` per layer.
    pub fn fold_string(&self) -> String {
        self.folds.iter().map(|f| f.letter()).collect()
    }

    /// `26->4 27->4 ...` (0-based layer, new bits), `-` when no weight was cut.
    pub fn cut_order_string(&self) -> String {
        if self.cut_order.is_empty() {
            return "-".into();
        }
        self.cut_order
            .iter()
            .map(|(l, b)| format!("{l}->{b}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs the memory-driven assignment for a chain of `layers` under `budget`.
pub fn assign(
    layers: &[LayerShape],
    budget: Budget,
    options: AssignOptions,
) -> Result<Assignment, AssignError> {
    let layers = layers.to_vec();
    let mut bits = BitWidths::uniform(layers.len(), 8);
    cut_activations(&layers, &mut bits.acts, budget.ram)?;
    let (folds, cut_order) = cut_weights(&layers, &mut bits, budget.rom, options)?;
    Ok(Assignment {
        granularity: options.granularity,
        budget,
        layers,
        bits,
        folds,
        cut_order,
    })
}

/// What the sweep does at a layer that is over the RAM budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    CutInput,
    CutOutput,
    Defer,
    Fail,
}

/// The forward-sweep rule (§3.1): only outputs are cut here; the tensor with more bits goes first, on
/// a bit tie the larger one, on a byte tie the output.
fn forward_action(layer: &LayerShape, first: bool, last: bool, qx: u8, qy: u8) -> Action {
    if first {
        return if qy > MIN_BITS {
            Action::CutOutput
        } else {
            Action::Fail
        };
    }
    if last {
        return if qx > MIN_BITS {
            Action::Defer
        } else {
            Action::Fail
        };
    }
    if qx == MIN_BITS && qy == MIN_BITS {
        Action::Fail
    } else if qx > qy {
        Action::Defer
    } else if qx < qy {
        Action::CutOutput
    } else if layer.in_elems > layer.out_elems {
        Action::Defer
    } else {
        Action::CutOutput
    }
}

/// The backward-sweep rule, the mirror image of [`forward_action`]: only inputs are cut here.
fn backward_action(layer: &LayerShape, first: bool, last: bool, qx: u8, qy: u8) -> Action {
    if first {
        return if qy > MIN_BITS {
            Action::Defer
        } else {
            Action::Fail
        };
    }
    if last {
        return if qx > MIN_BITS {
            Action::CutInput
        } else {
            Action::Fail
        };
    }
    if qx == MIN_BITS && qy == MIN_BITS {
        Action::Fail
    } else if qx > qy {
        Action::CutInput
    } else if qx < qy {
        Action::Defer
    } else if layer.in_elems > layer.out_elems {
        Action::CutInput
    } else {
        Action::Defer
    }
}

/// The activation phase (`cut_activation_footprint`): sweeps forward and backward until one full sweep
/// defers nothing. Always at least one forward and one backward sweep, because the "net OK" flag starts
/// false. Terminates because every deferred cut is made by the next sweep in the other direction and
/// bits only go down.
fn cut_activations(
    layers: &[LayerShape],
    acts: &mut [u8],
    ram_budget: u64,
) -> Result<(), AssignError> {
    let last = layers.len() - 1;
    // A budget beyond u64::MAX bits holds every model: saturate rather than overflow.
    let budget_bits = ram_budget.saturating_mul(8);
    let (mut i, mut forward, mut net_ok) = (0usize, true, false);
    loop {
        let layer = &layers[i];
        while ram_bits(layer, acts[i], acts[i + 1]) > budget_bits {
            let rule = if forward {
                forward_action
            } else {
                backward_action
            };
            match rule(layer, i == 0, i == last, acts[i], acts[i + 1]) {
                Action::CutInput => acts[i] /= 2,
                Action::CutOutput => acts[i + 1] /= 2,
                Action::Defer => {
                    net_ok = false;
                    break;
                }
                Action::Fail => {
                    return Err(AssignError::Ram {
                        layer: i,
                        kind: layer.kind.short(),
                        needed: bytes(ram_bits(layer, acts[i], acts[i + 1])),
                        budget: ram_budget,
                    });
                }
            }
        }
        let at_end = if forward { i == last } else { i == 0 };
        if at_end {
            if net_ok {
                return Ok(());
            }
            // Turn around and process the same end layer again in the other direction.
            forward = !forward;
            net_ok = true;
        } else if forward {
            i += 1;
        } else {
            i -= 1;
        }
    }
}

/// The per-layer fold state of `compute_bias_footprint`: empty until the first ROM evaluation, which
/// marks every layer FB whatever its bits; each later evaluation switches a layer to ICN (for good) once
/// its weights or output are below 8 bits (§2.2). Per-channel layers are always ICN.
struct FoldState {
    granularity: Granularity,
    folds: Option<Vec<Fold>>,
}

impl FoldState {
    fn evaluate(&mut self, bits: &BitWidths) -> &[Fold] {
        let n = bits.weights.len();
        let folds = match (self.granularity, self.folds.take()) {
            (Granularity::PerChannel, _) => vec![Fold::Icn; n],
            (Granularity::PerLayer, None) => vec![Fold::FoldBn; n],
            (Granularity::PerLayer, Some(mut folds)) => {
                for (i, f) in folds.iter_mut().enumerate() {
                    if bits.weights[i] < 8 || bits.a_out(i) < 8 {
                        *f = Fold::Icn;
                    }
                }
                folds
            }
        };
        self.folds.insert(folds)
    }

    /// Read-only bits (weights + 8 x extra bytes), advancing the fold state as the official code does.
    fn rom_bits(&mut self, layers: &[LayerShape], bits: &BitWidths) -> u64 {
        let granularity = self.granularity;
        let last = layers.len() - 1;
        let extra: u64 = layers
            .iter()
            .zip(self.evaluate(bits))
            .enumerate()
            .map(|(i, (l, &f))| extra_bytes(l, i == last, granularity, f))
            .sum();
        weight_bits(layers, bits) + 8 * extra
    }
}

/// The weight phase (`weight_quantization` + `compute_next_cut`).
fn cut_weights(
    layers: &[LayerShape],
    bits: &mut BitWidths,
    rom_budget: u64,
    options: AssignOptions,
) -> Result<(Vec<Fold>, Vec<Cut>), AssignError> {
    let mut state = FoldState {
        granularity: options.granularity,
        folds: None,
    };
    let mut cuts = Vec::new();
    loop {
        let rom = state.rom_bits(layers, bits);
        if rom <= rom_budget.saturating_mul(8) {
            let folds = state.folds.take().unwrap_or_default();
            return Ok((folds, cuts));
        }
        let Some(c) = next_cut(layers, &bits.weights, options.delta_bp) else {
            return Err(AssignError::Rom {
                needed: bytes(rom),
                budget: rom_budget,
            });
        };
        bits.weights[c] /= 2;
        cuts.push((c, bits.weights[c]));
    }
}

/// The layer whose weights are cut next: among layers above 2 bits, the lowest index whose share of the
/// weight memory is within δ of the largest share (strictly: `r_i > r_max - δ`), the arg-max itself
/// always included. Shares are of weights only, over all layers; compared exactly in integers:
/// `10000·w_i > 10000·w_max - δ_bp·total`.
fn next_cut(layers: &[LayerShape], weight_bits: &[u8], delta_bp: u32) -> Option<usize> {
    let w: Vec<u128> = layers
        .iter()
        .zip(weight_bits)
        .map(|(l, &q)| u128::from(l.weights) * u128::from(q))
        .collect();
    let total: u128 = w.iter().sum();
    let candidates: Vec<usize> = (0..w.len())
        .filter(|&i| weight_bits[i] > MIN_BITS)
        .collect();
    let top = candidates
        .iter()
        .copied()
        .reduce(|a, b| if w[b] > w[a] { b } else { a })?;
    candidates
        .into_iter()
        .find(|&i| i == top || 10_000 * w[i] + u128::from(delta_bp) * total > 10_000 * w[top])
}
