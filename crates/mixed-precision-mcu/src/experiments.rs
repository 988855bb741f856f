//! The paper's comparisons on the Fashion-MNIST proxy (dossier §10.1), one function per experiment,
//! each ending in result rows:
//!
//! * **E1/E2** ([`run_e1_e2`]): per proxy configuration, a float model, then QAT at uniform w8a8 (where
//!   it fits the scaled budget), MixPL (per-layer weights, FB) and MixPC (per-channel, ICN) at the
//!   bits the memory-driven assignment gives; accuracy of the fake-quantized model and of the
//!   integer-only graph. The summary rows are the "+8 points" analogue (best mixed vs best uniform
//!   8-bit model that fits). One configuration's variants, for any chain of layers, are
//!   [`mixed_variants`] (the cross-scheme table runs them on an MLP too).
//! * **E3** ([`run_e3`]): uniform w4a4 with per-layer folding, ICN and thresholds.
//!
//! Every training scores a validation tail of the training file after each epoch (the curves); the
//! best configurations of the summary rows are chosen on it, and the test file is scored once per
//! finished model.

use crate::RowKey;
use crate::assign::{AssignOptions, assign};
use crate::chain::Chain;
use crate::deploy::{Folding, convert};
use crate::engine::IntegerNet;
use crate::memory::{BitWidths, Budget, Fold, Footprint, Granularity, uniform_folds, uniform8};
use crate::mobilenet::MobileNetV1;
use burn::prelude::*;
use quant_core::kernels::Backend as KernelBackend;
use quant_core::ops::OpCounts;
use quant_train::layers::Phase;
use quant_train::models::Net;
use quant_train::train::{
    LrSchedule, QatSchedule, RunOptions, TrainConfig, TrainReport, evaluate, train,
};
use rayon::prelude::*;
use repro::datasets::{Dataset, DatasetName, ImageSet};
use repro::results::ResultRow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Source strings of the proxy experiments.
pub const SOURCE_E1: &str =
    "proxy E1/E2 (dossier §10.1): uniform 8-bit vs MixPL vs MixPC under the scaled budget";
pub const SOURCE_E3: &str = "proxy E3 (dossier §10.1): FB vs ICN vs thresholds at uniform w4a4";
const SOURCE_ABSTRACT: &str = "abstract (arXiv 1905.13082 / MLSys 2020 proceedings page)";

/// Sizes of one profile.
#[derive(Debug, Clone)]
pub struct QatPlan {
    /// Training images (at most; the training file less its validation tail).
    pub train_images: usize,
    /// The validation tail of the training file: scored after every epoch and used for every
    /// selection, never trained on.
    pub validation_images: usize,
    pub test_images: usize,
    pub float_epochs: u32,
    /// QAT segments `(learning rate, epochs)`: the official 1e-4 / 5e-5 / 1e-5 steps, scaled.
    pub qat_segments: Vec<(f64, u32)>,
    /// Proxy configurations `(resolution, width)` of E1/E2.
    pub configs: Vec<(usize, f64)>,
    /// The configuration of E3.
    pub e3_config: (usize, f64),
    pub seeds: Vec<u64>,
    pub batch_size: usize,
    pub base_channels: usize,
    /// The data set the models train on, which the rows name (`dataset` column and proxy label);
    /// the binaries set it from `--dataset`.
    pub dataset: DatasetName,
    /// Float pre-training learning rate (Adam, cosine decay).
    pub float_lr: f64,
    /// Where every training keeps its per-epoch checkpoint, so an interrupted run resumes at the
    /// epoch it was in; `None` trains without. The binaries set it from `--checkpoints`
    /// (`RunArgs::checkpoint_dir`: `target/mcu-checkpoints` for the full profile).
    pub checkpoint_dir: Option<PathBuf>,
}

impl QatPlan {
    /// Seconds: a slice of the data, two small configurations.
    pub fn smoke(seed: u64) -> Self {
        QatPlan {
            train_images: 256,
            validation_images: 64,
            test_images: 128,
            float_epochs: 1,
            qat_segments: vec![(1e-4, 1)],
            configs: vec![(16, 0.25), (16, 1.0)],
            e3_config: (16, 0.25),
            seeds: vec![seed],
            batch_size: 64,
            base_channels: 8,
            dataset: DatasetName::FashionMnist,
            float_lr: 5e-3,
            checkpoint_dir: None,
        }
    }

    /// The reproduction: the whole training file less a 5000-image validation tail, the whole
    /// test file, 15 float epochs (the validation curve shows whether they suffice) and the
    /// official three QAT steps; one seed per unit (see the README).
    pub fn full(seed: u64) -> Self {
        QatPlan {
            train_images: 55_000,
            validation_images: 5_000,
            test_images: 10_000,
            float_epochs: 15,
            qat_segments: vec![(1e-4, 2), (5e-5, 2), (1e-5, 1)],
            configs: vec![(28, 1.0), (28, 0.75), (24, 0.5)],
            e3_config: (24, 0.5),
            seeds: vec![seed],
            batch_size: 64,
            base_channels: 8,
            dataset: DatasetName::FashionMnist,
            float_lr: 5e-3,
            checkpoint_dir: None,
        }
    }

    /// The proxy TinyMbV1 of configuration `(resolution, width)` for the plan's data set: its
    /// image channels and classes (grey and 10 for MNIST and Fashion-MNIST).
    pub fn model(&self, resolution: usize, width: f64) -> MobileNetV1 {
        MobileNetV1 {
            in_channels: self.dataset.image_shape()[0],
            classes: self.dataset.classes(),
            ..MobileNetV1::tiny(resolution, width, self.base_channels)
        }
    }

    /// The reproduction's budget for the plan's family: the STM32H7's scaled by its largest model,
    /// 28_1.0 (§10.1; [`crate::tables::proxy_budget`] on grey images).
    pub fn budget(&self) -> Budget {
        crate::tables::scaled_budget(Budget::STM32H7, &self.model(28, 1.0))
    }

    /// The checkpoint prefix of the training `run` of `seed` (`None` without a folder).
    fn checkpoint(&self, run: &str, seed: u64) -> Option<PathBuf> {
        let name = quant_train::checkpoint::file_name(&format!("{run}-s{seed}"));
        self.checkpoint_dir.as_ref().map(|d| d.join(name))
    }

    /// Float pre-training: Adam at `float_lr` with a cosine decay, `float_epochs` epochs.
    pub fn float_config(&self, seed: u64) -> TrainConfig {
        let mut cfg = TrainConfig::adam(self.float_epochs, self.float_lr, seed);
        cfg.batch_size = self.batch_size;
        cfg.schedule = LrSchedule::Cosine;
        cfg
    }

    /// QAT segment `segment` of the scaled official schedule on `images` training images: Adam at
    /// the segment's rate, quantization from the first step, batch-norm statistics frozen after
    /// the first epoch (`--batch_fold_delay 1`).
    pub fn qat_config(&self, segment: usize, images: usize, seed: u64) -> TrainConfig {
        let (lr, epochs) = self.qat_segments[segment];
        let steps_per_epoch = (images / self.batch_size) as u64;
        let mut cfg = TrainConfig::adam(epochs, lr, seed + segment as u64);
        cfg.batch_size = self.batch_size;
        cfg.qat = QatSchedule {
            act_quant_delay: 0,
            freeze_bn_at: Some(if segment == 0 { steps_per_epoch } else { 0 }),
        };
        cfg
    }

    fn proxy_label(&self) -> String {
        format!(
            "{} (train {} / validation {} / test {}) for ImageNet; TinyMbV1-b{} for MobileNetV1",
            self.dataset.paper_name(),
            self.train_images,
            self.validation_images,
            self.test_images,
            self.base_channels
        )
    }
}

/// One trained and deployed variant.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub config: String,
    pub variant: String,
    pub w_bits: String,
    pub a_bits: String,
    pub fake_quant: f64,
    /// Test top-1 of the integer graph per folding.
    pub integer: BTreeMap<&'static str, f64>,
    /// What one inference of the integer graph performs, per folding (the same for every image).
    pub ops: BTreeMap<&'static str, OpCounts>,
    /// The deployed integer graph per folding (what the other columns measured), for callers that
    /// time it.
    pub nets: BTreeMap<&'static str, IntegerNet>,
    /// Validation top-1 of the integer graph under the first folding (its label): what selections
    /// use.
    pub validation: (&'static str, f64),
    pub rom_bytes: u64,
    pub ram_bytes: u64,
    /// The QAT report of each learning-rate segment (the curves).
    pub reports: Vec<TrainReport>,
}

/// A float model trained in this run: the net, its test top-1 and its training report.
#[derive(Clone)]
pub struct FloatModel {
    pub net: Net,
    pub top1: f64,
    pub report: TrainReport,
}

/// Float models already trained in this run, by configuration name.
pub type FloatCache = BTreeMap<String, FloatModel>;

/// The three disjoint image sets of one resolution.
struct Sets {
    train: ImageSet,
    validation: Arc<ImageSet>,
    test: ImageSet,
}

/// The training file less its validation tail, the tail, and the test file, resized to
/// `resolution`.
fn data_at(data: &Dataset, plan: &QatPlan, resolution: usize) -> Result<Sets, String> {
    let resize = quant_train::data::resize;
    let (train, validation) = data
        .train
        .clone()
        .split_validation(plan.validation_images)?;
    Ok(Sets {
        train: resize(&train.truncated(plan.train_images), resolution),
        validation: Arc::new(resize(&validation, resolution)),
        test: resize(&data.test.clone().truncated(plan.test_images), resolution),
    })
}

fn float_model(
    cache: &mut FloatCache,
    chain: &Chain,
    sets: &Sets,
    plan: &QatPlan,
    seed: u64,
    device: &Device,
) -> Result<FloatModel, String> {
    if let Some(hit) = cache.get(&chain.name) {
        return Ok(hit.clone());
    }
    let net = crate::qat::build_net(&chain.layers, seed, device);
    let cfg = plan.float_config(seed);
    let name = &chain.name;
    let opts = run_options(
        plan,
        sets,
        &format!("float-{name}"),
        seed,
        format!("float {name}"),
    );
    let (net, report) = train(net, &sets.train, &cfg, &opts, device).map_err(|e| e.0)?;
    let top1 = evaluate(&net, &sets.test, &Phase::FLOAT_EVAL, device);
    let trained = FloatModel { net, top1, report };
    cache.insert(chain.name.clone(), trained.clone());
    Ok(trained)
}

/// Checkpoint, progress label and validation set of training `run`.
fn run_options(plan: &QatPlan, sets: &Sets, run: &str, seed: u64, label: String) -> RunOptions {
    RunOptions {
        checkpoint: plan.checkpoint(run, seed),
        label,
        validation: Some(Arc::clone(&sets.validation)),
    }
}

/// What every variant of one configuration shares.
struct Ctx<'a> {
    chain: &'a Chain,
    float: &'a Net,
    sets: &'a Sets,
    plan: &'a QatPlan,
    seed: u64,
    device: &'a Device,
}

/// QAT fine-tuning from the float model with the scaled official schedule; BN statistics freeze after
/// the first epoch (`--batch_fold_delay 1`). Returns the net and the report of each learning-rate
/// segment.
fn qat_model(
    ctx: &Ctx,
    bits: &BitWidths,
    scheme: (Granularity, &[Fold]),
    label: &str,
) -> Result<(Net, Vec<TrainReport>), String> {
    let Ctx {
        plan, seed, device, ..
    } = *ctx;
    let name = &ctx.chain.name;
    let train_set = &ctx.sets.train;
    let mut net = crate::qat::qat_net(ctx.float, train_set, bits, scheme, device);
    let mut reports = Vec::new();
    for j in 0..plan.qat_segments.len() {
        let cfg = plan.qat_config(j, train_set.len(), seed);
        let run = format!("{label}-{name}-segment{j}");
        let opts = run_options(
            plan,
            ctx.sets,
            &run,
            seed,
            format!("{label} {name} lr {}", cfg.lr),
        );
        let (trained, report) = train(net, train_set, &cfg, &opts, device).map_err(|e| e.0)?;
        net = trained;
        reports.push(report);
    }
    Ok((net, reports))
}

/// Image `i` of `set` (stored in planes) in the integer network's HWC order.
fn hwc(set: &ImageSet, i: usize) -> std::borrow::Cow<'_, [u8]> {
    quant_core::engine::layout::chw_to_hwc(set.image(i), set.channels, set.rows * set.cols)
}

/// Top-1 (percent) of the integer graph on `set`, run on the int8 kernels of this CPU (the same
/// logits as the packed kernels, tested in `engine`).
fn integer_top1(net: &IntegerNet, set: &ImageSet) -> Result<f64, String> {
    let net = net
        .prepare(KernelBackend::detect())
        .map_err(|e| e.to_string())?;
    let hits: Result<Vec<bool>, String> = (0..set.len())
        .into_par_iter()
        .map(|i| {
            net.predict(&hwc(set, i))
                .map(|p| p == usize::from(set.labels[i]))
                .map_err(|e| e.to_string())
        })
        .collect();
    let hits = hits?;
    Ok(100.0 * hits.iter().filter(|&&h| h).count() as f64 / hits.len().max(1) as f64)
}

/// Trains, deploys and evaluates one variant: `folds` are the layers' folds in training (see
/// [`crate::qat::make_qat`]) and in the memory footprint; `foldings` the deployments scored.
fn variant(
    ctx: &Ctx,
    name: &str,
    bits: &BitWidths,
    (g, folds): (Granularity, &[Fold]),
    foldings: &[Folding],
) -> Result<Outcome, String> {
    let Ctx {
        chain,
        sets,
        device,
        ..
    } = *ctx;
    let (net, reports) = qat_model(ctx, bits, (g, folds), name)?;
    let fake_quant = evaluate(&net, &sets.test, &Phase::EVAL, device);
    let (mut integer, mut ops, mut nets) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut validation = ("", f64::NAN);
    for (i, &f) in foldings.iter().enumerate() {
        let int_net = convert(&net, &chain.layers, bits, g, f)?;
        integer.insert(f.label(), integer_top1(&int_net, &sets.test)?);
        let (_, counts) = int_net
            .logits_counted(&hwc(&sets.test, 0))
            .map_err(|e| e.to_string())?;
        ops.insert(f.label(), counts);
        if i == 0 {
            validation = (f.label(), integer_top1(&int_net, &sets.validation)?);
        }
        nets.insert(f.label(), int_net);
    }
    let fp = Footprint::of(&chain.layers, bits, folds, g);
    let uniform = |b: &[u8]| b.iter().all(|&x| x == b[0]);
    let inner_acts = &bits.acts[1..bits.acts.len() - 1];
    let label = |v: &[u8]| {
        if uniform(v) {
            v[0].to_string()
        } else {
            "mixed".to_string()
        }
    };
    Ok(Outcome {
        config: chain.name.clone(),
        variant: name.to_string(),
        w_bits: label(&bits.weights),
        a_bits: label(inner_acts),
        fake_quant,
        integer,
        ops,
        nets,
        validation,
        reports,
        rom_bytes: fp.rom_bytes(),
        ram_bytes: fp.peak_ram(),
    })
}

/// Outcomes of an experiment and the float models of its configurations (by name).
#[derive(Clone, Default)]
pub struct Results {
    pub outcomes: Vec<Outcome>,
    pub floats: Vec<(String, FloatModel)>,
}

/// E1/E2 for every configuration of the plan and one seed, under `budget` (the reproduction's:
/// [`QatPlan::budget`]).
pub fn run_e1_e2(
    data: &Dataset,
    plan: &QatPlan,
    budget: Budget,
    seed: u64,
    cache: &mut FloatCache,
    device: &Device,
) -> Result<Results, String> {
    let mut res = Results::default();
    for &(r, w) in &plan.configs {
        let chain = Chain::from(&plan.model(r, w));
        let one = mixed_variants(data, &chain, plan, budget, seed, cache, device)?;
        res.outcomes.extend(one.outcomes);
        res.floats.extend(one.floats);
    }
    Ok(res)
}

/// E1/E2's variants of one chain and seed under `budget`: its float model (from `cache` when this
/// run trained it already), uniform 8-bit PL+FB where it fits, and the assignment's MixPL+FB,
/// MixPL+ICN and MixPC+ICN, each trained, deployed and scored on the integer graph.
pub fn mixed_variants(
    data: &Dataset,
    chain: &Chain,
    plan: &QatPlan,
    budget: Budget,
    seed: u64,
    cache: &mut FloatCache,
    device: &Device,
) -> Result<Results, String> {
    let mut res = Results::default();
    let sets = data_at(data, plan, chain.resolution)?;
    let float = float_model(cache, chain, &sets, plan, seed, device)?;
    let ctx = Ctx {
        chain,
        float: &float.net,
        sets: &sets,
        plan,
        seed,
        device,
    };
    let layers = &chain.layers;
    let n = layers.len();
    if uniform8(layers, Granularity::PerLayer).fits(budget) {
        let b8 = BitWidths::uniform(n, 8);
        let pl = (
            Granularity::PerLayer,
            &uniform_folds(n, Granularity::PerLayer)[..],
        );
        let fb = [Folding::PerLayerFolding];
        res.outcomes
            .push(variant(&ctx, "uniform w8a8 PL+FB", &b8, pl, &fb)?);
    }
    // MixPL+FB folds every layer; MixPL+ICN trains and deploys the assignment's folds (the
    // official PL+ICN: unfolded weights and ICN where a layer is cut below 8 bits).
    for (g, name, folding, assigned_folds) in [
        (
            Granularity::PerLayer,
            "MixPL+FB",
            Folding::PerLayerFolding,
            false,
        ),
        (Granularity::PerLayer, "MixPL+ICN", Folding::Icn, true),
        (Granularity::PerChannel, "MixPC+ICN", Folding::Icn, true),
    ] {
        let a = assign(layers, budget, AssignOptions::official(g)).map_err(|e| e.to_string())?;
        if a.bits.weights.iter().chain(&a.bits.acts).all(|&b| b == 8) && g == Granularity::PerLayer
        {
            continue; // identical to the uniform 8-bit PL model trained above
        }
        let folds = match assigned_folds {
            true => a.folds.clone(),
            false => uniform_folds(n, g),
        };
        res.outcomes
            .push(variant(&ctx, name, &a.bits, (g, &folds), &[folding])?);
    }
    res.floats.push((chain.name.clone(), float));
    Ok(res)
}

/// E3: uniform w4a4 under per-layer weights folded (deployed FB, ICN, thresholds), per-layer
/// weights unfolded with BN in the ICN stage (ICN, thresholds) and per-channel weights (ICN,
/// thresholds).
pub fn run_e3(
    data: &Dataset,
    plan: &QatPlan,
    seed: u64,
    cache: &mut FloatCache,
    device: &Device,
) -> Result<Results, String> {
    let (r, w) = plan.e3_config;
    let chain = Chain::from(&plan.model(r, w));
    let sets = data_at(data, plan, r)?;
    let float = float_model(cache, &chain, &sets, plan, seed, device)?;
    let ctx = Ctx {
        chain: &chain,
        float: &float.net,
        sets: &sets,
        plan,
        seed,
        device,
    };
    let n = chain.layers.len();
    let b4 = BitWidths::uniform(n, 4);
    let all = [Folding::PerLayerFolding, Folding::Icn, Folding::Thresholds];
    let (pl, pc) = (Granularity::PerLayer, Granularity::PerChannel);
    // Per-layer weights folded (FB), per-layer weights unfolded with BN in ICN (the paper's
    // PL+ICN), per-channel weights (PC+ICN).
    let (folded, unfolded) = (uniform_folds(n, pl), vec![Fold::Icn; n]);
    Ok(Results {
        outcomes: vec![
            variant(&ctx, "w4a4 PL", &b4, (pl, &folded), &all)?,
            variant(&ctx, "w4a4 PL+ICN", &b4, (pl, &unfolded), &all[1..])?,
            variant(&ctx, "w4a4 PC", &b4, (pc, &uniform_folds(n, pc)), &all[1..])?,
        ],
        floats: vec![(chain.name.clone(), float)],
    })
}

/// Result rows of a set of outcomes.
pub fn rows(source: &str, res: &Results, plan: &QatPlan, seed: u64, epochs: u32) -> Vec<ResultRow> {
    let (outcomes, floats) = (&res.outcomes, &res.floats);
    let proxy = plan.proxy_label();
    let stamp = |mut r: ResultRow| {
        r.seed = seed;
        r.epochs = epochs;
        r
    };
    let mut out = Vec::new();
    for (config, float) in floats {
        let label = format!("TinyMbV1-b{} {config}", plan.base_channels);
        let key = RowKey {
            source,
            dataset: plan.dataset.paper_name(),
            model: &label,
            method: "float32",
            w_bits: "32",
            a_bits: "32",
            proxy: &proxy,
        };
        out.push(stamp(key.row("top1_acc_pct", float.top1)));
    }
    for o in outcomes {
        let label = format!("TinyMbV1-b{} {}", plan.base_channels, o.config);
        let key = RowKey {
            source,
            dataset: plan.dataset.paper_name(),
            model: &label,
            method: &o.variant,
            w_bits: &o.w_bits,
            a_bits: &o.a_bits,
            proxy: &proxy,
        };
        out.push(stamp(key.row("top1_fakequant_pct", o.fake_quant)));
        out.push(stamp(key.row("rom_bytes", o.rom_bytes as f64)));
        out.push(stamp(key.row("peak_ram_bytes", o.ram_bytes as f64)));
        let (f, val) = o.validation;
        out.push(stamp(
            key.row(&format!("validation_top1_integer_pct[{f}]"), val),
        ));
        for (f, acc) in &o.integer {
            out.push(stamp(key.row(&format!("top1_integer_pct[{f}]"), *acc)));
            out.push(stamp(key.row(
                &format!("integer_minus_fakequant_pct[{f}]"),
                acc - o.fake_quant,
            )));
        }
        for (f, c) in &o.ops {
            for (what, n) in [
                ("mul_8x8", c.mul_8x8),
                ("mul_32x32", c.mul_32x32),
                ("shifts", c.shifts),
                ("bytes_moved", c.bytes_moved),
            ] {
                out.push(stamp(
                    key.row(&format!("{what}_per_inference[{f}]"), n as f64),
                ));
            }
        }
    }
    out
}

/// The headline rows of E1 for `seed`, from every E1 row of the table that `profile` wrote for it
/// (`table`, whichever runs wrote them: a configuration per unit adds its rows to the others'):
/// the best mixed model's test top-1 (`top1_acc_pct`, the abstract's key) and its gain over the best
/// uniform 8-bit model that fits (`top1_gain_pct_points`, the "+8 points" analogue). The best model
/// of a kind is the one with the highest validation top-1 of its integer graph (the first in table
/// order on ties); its test top-1 under the same folding is what the rows report. None before the
/// table has a mixed model.
pub fn summary_rows(
    table: &[ResultRow],
    plan: &QatPlan,
    profile: &str,
    seed: u64,
    epochs: u32,
) -> Vec<ResultRow> {
    let proxy = plan.proxy_label();
    let e1 = |r: &&ResultRow| {
        r.source == SOURCE_E1 && r.profile == profile && r.seed == seed && r.proxy == proxy
    };
    // (validation top-1, test top-1) of each deployed model of E1, with its bit labels.
    let scored: Vec<(&ResultRow, f64, f64)> = table
        .iter()
        .filter(e1)
        .filter_map(|v| {
            let folding = v
                .metric
                .strip_prefix("validation_top1_integer_pct[")?
                .strip_suffix(']')?;
            let test_metric = format!("top1_integer_pct[{folding}]");
            let test = table.iter().filter(e1).find(|t| {
                t.metric == test_metric
                    && (&t.model, &t.method, &t.w_bits, &t.a_bits)
                        == (&v.model, &v.method, &v.w_bits, &v.a_bits)
            })?;
            Some((v, v.value, test.value))
        })
        .collect();
    let best = |kind: &dyn Fn(&ResultRow) -> bool| {
        scored
            .iter()
            .filter(|(r, ..)| kind(r))
            .fold(None, |b: Option<&(&ResultRow, f64, f64)>, x| match b {
                Some(b) if b.1 >= x.1 => Some(b),
                _ => Some(x),
            })
            .map(|&(_, _, test)| test)
    };
    let best8 = best(&|r| r.w_bits == "8" && r.a_bits == "8");
    let Some(acc) = best(&|r| r.w_bits == "mixed" || r.a_bits == "mixed") else {
        return Vec::new();
    };
    // The rule, not this seed's choice, so that the rows of every seed share one setting; the
    // choice follows from the `validation_top1_integer_pct` rows.
    let proxy_m = format!(
        "{proxy}; best mixed and best uniform 8-bit models chosen per seed on validation top-1"
    );
    let stamp = |mut r: ResultRow| {
        r.seed = seed;
        r.epochs = epochs;
        r
    };
    let key = |model, method| RowKey {
        source: SOURCE_ABSTRACT,
        dataset: plan.dataset.paper_name(),
        model,
        method,
        w_bits: "mixed",
        a_bits: "mixed",
        proxy: &proxy_m,
    };
    let mut out = vec![stamp(
        key(
            "MobileNetV1 (best model fitting the device; 224_0.75 per MCUNet/MCUNetV2 tables)",
            "memory-driven mixed precision (rule-based 8/4/2-bit cuts) + QAT + integer-only (ICN)",
        )
        .row("top1_acc_pct", acc),
    )];
    if let Some(acc8) = best8 {
        out.push(stamp(
            key(
                "MobileNetV1",
                "same as above vs previously published 8-bit MCU implementations",
            )
            .row("top1_gain_pct_points", acc - acc8),
        ));
    }
    out
}

/// The learning curves of a set of outcomes (`curves` table): each float model's, and each QAT
/// segment's under its variant, method suffixed with the segment's learning rate.
pub fn curve_rows(source: &str, res: &Results, plan: &QatPlan, seed: u64) -> Vec<ResultRow> {
    let proxy = plan.proxy_label();
    let curves = |config: &str, method: &str, bits: (&str, &str), report: &TrainReport| {
        let label = format!("TinyMbV1-b{} {config}", plan.base_channels);
        let key = RowKey {
            source,
            dataset: plan.dataset.paper_name(),
            model: &label,
            method,
            w_bits: bits.0,
            a_bits: bits.1,
            proxy: &proxy,
        };
        let mut template = key.row("", 0.0);
        template.seed = seed;
        report.curve_rows(&template)
    };
    let mut out = Vec::new();
    for (config, float) in &res.floats {
        out.extend(curves(config, "float32", ("32", "32"), &float.report));
    }
    for o in &res.outcomes {
        for (report, (lr, _)) in o.reports.iter().zip(&plan.qat_segments) {
            let method = format!("{} (QAT at lr {lr:e})", o.variant);
            out.extend(curves(&o.config, &method, (&o.w_bits, &o.a_bits), report));
        }
    }
    out
}
