//! The paper's memory model (dossier §2): read-only bytes (weights plus the per-layer or per-channel
//! parameters that requantization needs) and read-write bytes (one layer's input plus output).
//!
//! Sizes are kept in bits internally, so every comparison against a budget is exact; the official code
//! divides by 8 in floating point, which agrees with the exact comparison whenever the sizes are whole
//! bytes (every MobileNetV1 here).

use crate::mobilenet::LayerShape;
use std::fmt;

/// Weight quantizer granularity (`MixPL` / `MixPC` in the official code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Granularity {
    /// Per-layer asymmetric weights (`MixPL`).
    #[value(name = "pl")]
    PerLayer,
    /// Per-channel asymmetric weights (`MixPC`), always with ICN.
    #[value(name = "pc")]
    PerChannel,
}

impl Granularity {
    /// `pl` / `pc`, as on the command line and in CSV output.
    pub fn short(self) -> &'static str {
        match self {
            Granularity::PerLayer => "pl",
            Granularity::PerChannel => "pc",
        }
    }

    /// The paper's name for the mixed-precision mode.
    pub fn paper_name(self) -> &'static str {
        match self {
            Granularity::PerLayer => "MixPL",
            Granularity::PerChannel => "MixPC",
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// How batch normalization and requantization reach the integer graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fold {
    /// BN folded into the weights, one per-layer multiplier (`FB`).
    FoldBn,
    /// Integer Channel-Normalization: per-channel multiplier, shift and bias (`ICN`).
    Icn,
}

impl Fold {
    /// `F` / `I`, the letters of the dossier's fold strings.
    pub fn letter(self) -> char {
        match self {
            Fold::FoldBn => 'F',
            Fold::Icn => 'I',
        }
    }
}

/// A read-only and a read-write budget in bytes (`--mem_constraint [M_RO, M_RW]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub rom: u64,
    pub ram: u64,
}

impl Budget {
    /// The STM32H7 setting of the official reproduction command: 2 MB FLASH, 512 kB RAM written as
    /// 2048000 / 512000 (§2.4; the power-of-two reading changes the width-1.0 MixPL assignments).
    pub const STM32H7: Budget = Budget {
        rom: 2_048_000,
        ram: 512_000,
    };

    /// MCUNet's STM32F765: half the STM32H7's FLASH (1024000 bytes) with the same 512000 bytes of RAM,
    /// the tighter of the two budgets the cross-scheme table runs Rusci's assignment under.
    pub const STM32F765: Budget = Budget {
        rom: 1_024_000,
        ram: 512_000,
    };

    /// Scales the paper's budget to a proxy family by the same fractions of its largest model (§10.1):
    /// `M_RO' = round(M_RO / |W|(paper largest) · |W|(proxy largest))`, likewise for RAM with the
    /// uniform-8-bit peak. Float is used once, offline, as the dossier defines the proxy budget.
    pub fn scaled(
        paper: Budget,
        paper_weights: u64,
        paper_peak_ram8: u64,
        proxy_weights: u64,
        proxy_peak_ram8: u64,
    ) -> Budget {
        let scale = |budget: u64, from: u64, to: u64| {
            (budget as f64 / from as f64 * to as f64).round() as u64
        };
        Budget {
            rom: scale(paper.rom, paper_weights, proxy_weights),
            ram: scale(paper.ram, paper_peak_ram8, proxy_peak_ram8),
        }
    }
}

/// Extra read-only bytes of one layer (§2.2), with `n` output channels.
///
/// Non-last layers: PL+FB `4n + 20` (int32 bias per channel, Zi, Zo, Zw, M0, N0 as int32), PL+ICN
/// `9n + 12` (M0 int32, N0 int8, bias int32 per channel; Zw, Zi, Zo), PC `10n + 8` (also Zw int8 per
/// channel). The FC: PL `4n + 20`, PC `7n + 4` (bias int32, Zw int8, M0 and N0 int8 per channel).
pub fn extra_bytes(layer: &LayerShape, last: bool, granularity: Granularity, fold: Fold) -> u64 {
    let n = layer.cout as u64;
    match (granularity, last, fold) {
        (Granularity::PerLayer, true, _) | (Granularity::PerLayer, false, Fold::FoldBn) => {
            4 * n + 20
        }
        (Granularity::PerLayer, false, Fold::Icn) => 9 * n + 12,
        (Granularity::PerChannel, true, _) => 7 * n + 4,
        (Granularity::PerChannel, false, _) => 10 * n + 8,
    }
}

/// Read-only bytes of integer thresholds instead of ICN: `2^Qy - 1` int16 thresholds per output
/// channel (§5), which is why a memory-driven flow prefers ICN's 9-10 bytes per channel.
pub fn threshold_bytes(layer: &LayerShape, out_bits: u8) -> u64 {
    layer.cout as u64 * ((1u64 << out_bits) - 1) * 2
}

/// Bit widths of every tensor of a model with `L` counted layers.
///
/// `acts` has `L + 1` entries: `acts[0]` is the 8-bit image, `acts[i + 1]` the output of layer `i` and
/// thus the input of layer `i + 1` (one tensor, so cutting one cuts the other), `acts[L]` the 8-bit
/// logits. The FC's input is tied to the last pointwise output through the average pool (§2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitWidths {
    pub acts: Vec<u8>,
    pub weights: Vec<u8>,
}

impl BitWidths {
    /// Every tensor at `bits`, except the image and logits which stay 8-bit.
    pub fn uniform(layers: usize, bits: u8) -> Self {
        let mut acts = vec![bits; layers + 1];
        acts[0] = 8;
        acts[layers] = 8;
        BitWidths {
            acts,
            weights: vec![bits; layers],
        }
    }

    /// Input bits of layer `i`.
    pub fn a_in(&self, i: usize) -> u8 {
        self.acts[i]
    }

    /// Output bits of layer `i`.
    pub fn a_out(&self, i: usize) -> u8 {
        self.acts[i + 1]
    }

    /// Output bits of layers 1..L-1, one digit per layer (the logits are fixed at 8 and left out).
    pub fn a_out_string(&self) -> String {
        digits(&self.acts[1..self.acts.len() - 1])
    }

    /// Weight bits of layers 1..L, one digit per layer.
    pub fn w_string(&self) -> String {
        digits(&self.weights)
    }

    /// Parses the two bit strings of the dossier's tables back into widths.
    pub fn from_strings(a_out: &str, w: &str) -> Option<Self> {
        let parse = |s: &str| {
            s.chars()
                .map(|c| match c {
                    '2' | '4' | '8' => Some(c as u8 - b'0'),
                    _ => None,
                })
                .collect::<Option<Vec<u8>>>()
        };
        let mut acts = vec![8];
        acts.extend(parse(a_out)?);
        acts.push(8);
        let weights = parse(w)?;
        (weights.len() + 1 == acts.len()).then_some(BitWidths { acts, weights })
    }
}

fn digits(bits: &[u8]) -> String {
    bits.iter().map(|b| char::from(b'0' + b)).collect()
}

/// Read-write bits of layer `i`: `|X_i|·Qx + |Y_i|·Qy` (in + out live at once; no im2col, §2.3).
pub fn ram_bits(layer: &LayerShape, a_in: u8, a_out: u8) -> u64 {
    layer.in_elems * u64::from(a_in) + layer.out_elems * u64::from(a_out)
}

/// Weight bits of all layers, `Σ |W_i|·Qw_i`.
pub fn weight_bits(layers: &[LayerShape], bits: &BitWidths) -> u64 {
    layers
        .iter()
        .zip(&bits.weights)
        .map(|(l, &q)| l.weights * u64::from(q))
        .sum()
}

/// Bytes holding `bits` bits (whole bytes on a device).
pub fn bytes(bits: u64) -> u64 {
    bits.div_ceil(8)
}

/// Footprints of a fully specified model: bits, folds and granularity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    pub weight_bytes: u64,
    pub extra_bytes: u64,
    pub per_layer_extra: Vec<u64>,
    pub per_layer_ram: Vec<u64>,
}

impl Footprint {
    /// Computes every footprint of `layers` at `bits` with the given per-layer folds.
    pub fn of(
        layers: &[LayerShape],
        bits: &BitWidths,
        folds: &[Fold],
        granularity: Granularity,
    ) -> Self {
        let last = layers.len() - 1;
        let per_layer_extra: Vec<u64> = layers
            .iter()
            .zip(folds)
            .enumerate()
            .map(|(i, (l, &f))| extra_bytes(l, i == last, granularity, f))
            .collect();
        let per_layer_ram = layers
            .iter()
            .enumerate()
            .map(|(i, l)| bytes(ram_bits(l, bits.a_in(i), bits.a_out(i))))
            .collect();
        Footprint {
            weight_bytes: bytes(weight_bits(layers, bits)),
            extra_bytes: per_layer_extra.iter().sum(),
            per_layer_extra,
            per_layer_ram,
        }
    }

    /// Read-only total: weights plus extra parameters.
    pub fn rom_bytes(&self) -> u64 {
        self.weight_bytes + self.extra_bytes
    }

    /// Peak read-write bytes over layers.
    pub fn peak_ram(&self) -> u64 {
        self.per_layer_ram.iter().copied().max().unwrap_or(0)
    }

    /// Whether both budgets hold.
    pub fn fits(&self, budget: Budget) -> bool {
        self.rom_bytes() <= budget.rom && self.peak_ram() <= budget.ram
    }
}

/// The folds every layer would get at uniform 8 bits (FB under PL, ICN under PC).
pub fn uniform_folds(layers: usize, granularity: Granularity) -> Vec<Fold> {
    let fold = match granularity {
        Granularity::PerLayer => Fold::FoldBn,
        Granularity::PerChannel => Fold::Icn,
    };
    vec![fold; layers]
}

/// Uniform 8-bit footprint (dossier §7.1).
pub fn uniform8(layers: &[LayerShape], granularity: Granularity) -> Footprint {
    Footprint::of(
        layers,
        &BitWidths::uniform(layers.len(), 8),
        &uniform_folds(layers.len(), granularity),
        granularity,
    )
}
