//! Result rows of the exact (data-free) tables: uniform 8-bit footprints (§7.1), assignments under the
//! paper's and the proxy budgets (§7.2-§7.5, §10.1). Deterministic, so the smoke and full profiles
//! compute the same numbers; only the profile label differs.

use crate::RowKey;
use crate::assign::{AssignOptions, Assignment, assign};
use crate::memory::{Budget, Granularity, threshold_bytes, uniform8};
use crate::mobilenet::{MobileNetV1, imagenet_family, tiny_family};
use repro::results::{Keyed, ResultRow};
use serde::{Deserialize, Serialize};

/// Source string of our own computed memory tables (no published counterpart).
pub const SOURCE_MEMORY: &str = "dossier §7 memory model (official quant_auto.py rules)";
/// Source string of the proxy family's memory table.
pub const SOURCE_PROXY: &str = "dossier §10.1 proxy memory model (TinyMbV1)";
/// MCUNetV2 Table 2 quotes the MACs of the models behind Rusci et al.'s results.
const SOURCE_MCUNETV2: &str = "MCUNetV2 (Lin et al. NeurIPS 2021) Table 2 quoting Rusci et al.";
/// The authors' earlier 8-bit STM32H7 deployment.
const PAPER_EEESLAB: &str = "EEESlab-mobilenet_v1_stm32 (8-bit baseline on STM32H7)";
const SOURCE_EEESLAB: &str = "EEESlab/mobilenet_v1_stm32_cmsis_nn README (authors prior 8-bit STM32H7 deployment, CMSIS-NN-INTQ)";

/// A named budget the tables are computed under.
#[derive(Debug, Clone, Copy)]
pub struct NamedBudget {
    pub name: &'static str,
    pub budget: Budget,
}

/// The ImageNet-side budgets: the STM32H7 setting, the two MCUNet devices and the power-of-two reading.
pub const IMAGENET_BUDGETS: [NamedBudget; 4] = [
    NamedBudget {
        name: "STM32H743 2048000/512000",
        budget: Budget::STM32H7,
    },
    NamedBudget {
        name: "STM32F765 1024000/512000",
        budget: Budget::STM32F765,
    },
    NamedBudget {
        name: "STM32F412 1024000/256000",
        budget: Budget {
            rom: 1_024_000,
            ram: 256_000,
        },
    },
    NamedBudget {
        name: "power-of-two 2097152/524288",
        budget: Budget {
            rom: 2_097_152,
            ram: 524_288,
        },
    },
];

/// The proxy budget of a TinyMbV1 base width: the STM32H7 budget scaled by the largest model (§10.1).
pub fn proxy_budget(base_channels: usize) -> Budget {
    scaled_proxy_budget(Budget::STM32H7, base_channels)
}

/// A device budget `device` scaled to the TinyMbV1 family of a base width as §10.1 scales the STM32H7's:
/// by the ratio of the largest proxy to the largest ImageNet model (weights for FLASH, the uniform
/// 8-bit peak for RAM).
pub fn scaled_proxy_budget(device: Budget, base_channels: usize) -> Budget {
    scaled_budget(device, &MobileNetV1::tiny(28, 1.0, base_channels))
}

/// A device budget `device` scaled to a proxy family whose largest model is `largest` (weights for
/// FLASH, the uniform 8-bit peak for RAM), as [`scaled_proxy_budget`] for any input: a family on
/// colour images has a wider first layer and input.
pub fn scaled_budget(device: Budget, largest: &MobileNetV1) -> Budget {
    let paper = MobileNetV1::imagenet(224, 1.0);
    let peak = |m: &MobileNetV1| uniform8(&m.layers(), Granularity::PerLayer).peak_ram();
    Budget::scaled(
        device,
        paper.params(),
        peak(&paper),
        largest.params(),
        peak(largest),
    )
}

/// One assignment with its strings, for `assignment_bits.csv` (bit strings do not fit a numeric row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub family: String,
    pub config: String,
    pub budget: String,
    pub rom_budget: u64,
    pub ram_budget: u64,
    pub granularity: String,
    pub feasible: bool,
    pub a_out_bits: String,
    pub w_bits: String,
    pub folds: String,
    pub cut_order: String,
    pub weight_bytes: u64,
    pub extra_bytes: u64,
    pub rom_bytes: u64,
    pub peak_ram_bytes: u64,
    pub weight_avg_bits: f64,
    /// The constraint that fails, when infeasible.
    pub error: String,
    pub profile: String,
    pub run_id: String,
}

impl Keyed for AssignmentRow {
    fn key(&self) -> String {
        [
            &self.family,
            &self.config,
            &self.budget,
            &self.granularity,
            &self.profile,
        ]
        .map(String::as_str)
        .join("\u{1f}")
    }
}

/// Every table of this module, as numeric result rows and string rows.
pub struct ExactTables {
    pub rows: Vec<ResultRow>,
    pub assignments: Vec<AssignmentRow>,
}

/// The model column of a configuration, e.g. `MobileNetV1 224_0.75` or `TinyMbV1-b8 28_1.0`.
pub fn model_label(model: &MobileNetV1) -> String {
    if model.base_channels == 32 && model.in_channels == 3 {
        format!("MobileNetV1 {model}")
    } else {
        format!("TinyMbV1-b{} {model}", model.base_channels)
    }
}

/// Computes all exact tables; `profile` and `run_id` stamp the rows.
pub fn exact_tables(profile: &str, run_id: &str) -> ExactTables {
    let mut out = ExactTables {
        rows: Vec::new(),
        assignments: Vec::new(),
    };
    let stamp = |mut r: ResultRow| {
        r.profile = profile.to_string();
        r.run_id = run_id.to_string();
        r
    };
    let mut families: Vec<(&str, Vec<MobileNetV1>, Vec<NamedBudget>)> =
        vec![("imagenet", imagenet_family(), IMAGENET_BUDGETS.to_vec())];
    for base in [8, 16] {
        let name: &'static str = if base == 8 { "tiny-b8" } else { "tiny-b16" };
        families.push((
            name,
            tiny_family(base),
            vec![NamedBudget {
                name: "proxy scaled STM32H7",
                budget: proxy_budget(base),
            }],
        ));
    }
    for (family, models, budgets) in families {
        let (source, dataset) = if family == "imagenet" {
            (SOURCE_MEMORY, "ImageNet")
        } else {
            (SOURCE_PROXY, "Fashion-MNIST")
        };
        let proxy = if family == "imagenet" {
            ""
        } else {
            "TinyMbV1 proxy (memory model only)"
        };
        for model in &models {
            let label = model_label(model);
            let layers = model.layers();
            let base = |method: &str, w: &str, a: &str, metric: &str, value: f64| {
                let key = RowKey {
                    source,
                    dataset,
                    model: &label,
                    method,
                    w_bits: w,
                    a_bits: a,
                    proxy,
                };
                stamp(key.row(metric, value))
            };
            out.rows
                .push(base("shape", "-", "-", "params", model.params() as f64));
            out.rows
                .push(base("shape", "-", "-", "MACs", model.macs() as f64));
            for g in [Granularity::PerLayer, Granularity::PerChannel] {
                let f = uniform8(&layers, g);
                let method = format!("uniform 8-bit {}", g.paper_name());
                out.rows
                    .push(base(&method, "8", "8", "rom_bytes", f.rom_bytes() as f64));
                out.rows.push(base(
                    &method,
                    "8",
                    "8",
                    "peak_ram_bytes",
                    f.peak_ram() as f64,
                ));
            }
            for nb in &budgets {
                for g in [Granularity::PerLayer, Granularity::PerChannel] {
                    let result = assign(&model.layers(), nb.budget, AssignOptions::official(g));
                    let method = format!("{} under {}", g.paper_name(), nb.name);
                    if let Ok(a) = &result {
                        let f = a.footprint();
                        for (metric, v) in [
                            ("rom_bytes", f.rom_bytes() as f64),
                            ("extra_bytes", f.extra_bytes as f64),
                            ("peak_ram_bytes", f.peak_ram() as f64),
                            ("weight_avg_bits", a.weight_avg_bits()),
                            ("weight_cuts", a.cut_order.len() as f64),
                            ("thresholds_extra_bytes", thresholds_extra(a) as f64),
                        ] {
                            out.rows.push(base(&method, "mixed", "mixed", metric, v));
                        }
                    }
                    out.assignments.push(stamp_assignment(
                        family, model, nb, g, &result, profile, run_id,
                    ));
                }
            }
        }
    }
    out.rows
        .extend(published_counterparts().into_iter().map(stamp));
    out
}

/// Extra read-only bytes if every non-last layer stored `2^Qy - 1` int16 thresholds per channel
/// instead of ICN's multiplier, shift and bias (the FC keeps its §2.2 parameters): the memory side
/// of the ICN-vs-thresholds comparison (dossier §5).
pub fn thresholds_extra(a: &Assignment) -> u64 {
    let f = a.footprint();
    let last = a.layers.len() - 1;
    a.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == last {
                f.per_layer_extra[i]
            } else {
                threshold_bytes(l, a.bits.a_out(i))
            }
        })
        .sum()
}

fn stamp_assignment(
    family: &str,
    model: &MobileNetV1,
    nb: &NamedBudget,
    g: Granularity,
    result: &Result<Assignment, crate::assign::AssignError>,
    profile: &str,
    run_id: &str,
) -> AssignmentRow {
    let mut row = AssignmentRow {
        family: family.into(),
        config: model.config_name(),
        budget: nb.name.into(),
        rom_budget: nb.budget.rom,
        ram_budget: nb.budget.ram,
        granularity: g.short().into(),
        feasible: false,
        a_out_bits: String::new(),
        w_bits: String::new(),
        folds: String::new(),
        cut_order: String::new(),
        weight_bytes: 0,
        extra_bytes: 0,
        rom_bytes: 0,
        peak_ram_bytes: 0,
        weight_avg_bits: 0.0,
        error: String::new(),
        profile: profile.into(),
        run_id: run_id.into(),
    };
    match result {
        Ok(a) => {
            let f = a.footprint();
            row.feasible = true;
            row.a_out_bits = a.bits.a_out_string();
            row.w_bits = a.bits.w_string();
            row.folds = a.fold_string();
            row.cut_order = a.cut_order_string();
            row.weight_bytes = f.weight_bytes;
            row.extra_bytes = f.extra_bytes;
            row.rom_bytes = f.rom_bytes();
            row.peak_ram_bytes = f.peak_ram();
            row.weight_avg_bits = a.weight_avg_bits();
        }
        Err(e) => row.error = e.to_string(),
    }
    row
}

/// Rows keyed exactly like the published shape numbers they reproduce (MACs and parameter counts).
fn published_counterparts() -> Vec<ResultRow> {
    let mut rows = Vec::new();
    for (r, w, model) in [
        (192, 0.5, "MobileNetV1 0.5x r=192"),
        (224, 0.75, "MobileNetV1 0.75x r=224"),
    ] {
        let m = MobileNetV1::imagenet(r, w);
        let key = RowKey {
            source: SOURCE_MCUNETV2,
            dataset: "ImageNet",
            model,
            method: "mixed precision (Rusci et al.)",
            w_bits: "mixed",
            a_bits: "mixed",
            proxy: "",
        };
        rows.push(key.row("MACs_millions", m.macs() as f64 / 1e6));
    }
    let m = MobileNetV1::imagenet(160, 0.25);
    let key = RowKey {
        source: SOURCE_EEESLAB,
        dataset: "ImageNet",
        model: "MobileNetV1 0.25_160",
        method: "uint8 asymmetric (TF QAT) on CMSIS-NN extended",
        w_bits: "8",
        a_bits: "8",
        proxy: "",
    };
    for (metric, v) in [
        ("MACs_millions", m.macs() as f64 / 1e6),
        ("params_millions", m.params() as f64 / 1e6),
    ] {
        let mut r = key.row(metric, v);
        r.paper = PAPER_EEESLAB.into();
        rows.push(r);
    }
    rows
}
