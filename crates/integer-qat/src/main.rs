//! `integer-qat`: the experiments of Jacob et al. 2018 on MNIST-scale proxies
//! (`experiments/integer-qat/README.md`).
//!
//! Each subcommand mirrors one published table or figure and ends in result rows whose key
//! columns repeat the published row they reproduce (`experiments/integer-qat/published.csv`), with
//! `dataset` and `proxy` saying what actually ran. Accuracies of quantized models come from the
//! quant-core integer engine, not from the fake-quantized Burn model.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use clap::{Parser, Subcommand};
use integer_qat::recipe::{Sizes, float_config, qat_config, quantized_copy};
use integer_qat::{T41, T43, T47, macro_average_precision, median};
use quant_core::fixedpoint::RoundingMode;
use quant_train::data::{batch, resize};
use quant_train::export::{
    Agreement, IntegerNet, check_agreement, engine_logits, export, float_size_bytes, node_agreement,
};
use quant_train::train::train;
use quant_train::{
    Activation, BackendKind, ModelConfig, ModelSpec, Net, Phase, RunOptions, TrainReport, evaluate,
    predict,
};
use repro::Profile;
use repro::cli::RunArgs;
use repro::datasets::{Dataset, DatasetName, ImageSet};
use repro::manifest::Run;
use repro::plot::{Chart, Series, color};
use repro::results::{ResultRow, table_path};

const PAPER: &str = "jacob2018";
const PAPER_DIR: &str = "integer-qat";
const T41_TEXT: &str = "arXiv:1712.05877v1/CVPR2018 Sec 4.1.1 text";
const COMPANION: &str = "COMPANION (not in paper): tensorflow/models research/slim/nets/mobilenet_v1.md, checkpoints mobilenet_v1_2018_02_22";
const SEC5: &str = "arXiv:1712.05877v1/CVPR2018 Sec 5 text";
const FIG: &str = "arXiv:1712.05877v1 Figs 1.1c/4.1/4.2 (latency vs accuracy; points not read)";
const QAT: &str = "QAT integer-only";
const QAT_T41: &str = "QAT integer-only (per-layer uint8)";
const PTQ: &str = "PTQ integer-only (per-layer uint8)";

#[derive(Parser, Debug)]
#[command(
    name = "integer-qat",
    about = "Jacob et al. 2018: QAT in Burn, integer-only inference in quant-core",
    long_about = "Jacob et al. 2018: QAT in Burn, integer-only inference in quant-core.\n\n\
                  Each experiment fixes its bit widths (no flag sets them): depth and latency run 8-bit \
                  weights and activations, relu adds 7/7 and the 5/5, 4/4 stress rows, bits sweeps weight \
                  and activation widths from 8 down to 4. The affine quantizers take 2 to 8 bits. \
                  Proxies and results: experiments/integer-qat/README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Profile, data set (default Fashion-MNIST, the proxy; MNIST is the sanity check), seeds
    /// (default 0, 1, 2 where an experiment has several; `--seed 2 --seeds 1` runs one unit and
    /// merges its rows into the tables), threads for training and inference (latency runs use 1
    /// and 2 regardless), backend, data and results roots.
    #[command(flatten)]
    run: RunArgs,
    /// Checkpoint folder; a rerun of the same training (same recipe, data content and starting
    /// model) resumes from it (default `<workspace>/target/integer-qat-checkpoints`, outside git).
    #[arg(long, global = true)]
    checkpoints: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum Command {
    /// E1 (Table 4.1) + E8: ResNet depth sweep, float vs int8 PTQ vs int8 QAT on the integer
    /// engine; engine-vs-simulation agreement and model size.
    Depth,
    /// E3 (Table 4.3): ReLU vs ReLU6 at float, 8/8, 7/7 (+ 5/5, 4/4 stress rows), mean and std
    /// over seeds.
    Relu,
    /// E4 (arXiv Table 4.7): weight x activation bits in {8..4}, relative change vs float.
    Bits,
    /// E5/E6 (Figs 1.1c/4.1/4.2, companion table, arXiv Table 4.6): MobileNetV1 widths x
    /// resolutions, accuracy and batch-1 latency (float Burn flex vs integer engine, 1 and 2
    /// threads), plus a plot.
    Latency,
    /// Redraw the Table 4.7 heat map (ours beside the paper's) from the committed e4_bits.csv,
    /// without training; `bits` draws it too.
    Figures,
    /// E8 diagnosis (prints, writes no rows): for every E1 model, PTQ and QAT, the integer
    /// engine's codes after each block against the fake-quantized f32 model (run from the
    /// pixels, and each block alone on the engine's input) and against the integer simulation.
    Agreement,
    /// Everything above except `agreement`, in order.
    All,
}

/// The three disjoint image sets of one input resolution.
struct Splits {
    /// What the models train on: the training file less its validation tail.
    train: ImageSet,
    /// The tail of the training file, scored after every epoch (the learning curves); every
    /// selection is made here, never on the test set.
    val: Arc<ImageSet>,
    /// The whole test file (in the full profile), scored once per finished model.
    test: ImageSet,
}

/// Everything an experiment needs.
struct Ctx {
    cli: Cli,
    sizes: Sizes,
    data: Dataset,
    device: Device,
    run: Run,
    out: PathBuf,
    checkpoints: PathBuf,
    started: Instant,
}

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Ctx {
    fn profile(&self) -> &'static str {
        self.cli.run.profile.name()
    }

    fn dataset_name(&self) -> String {
        self.data.name.paper_name().to_string()
    }

    fn float_epochs(&self) -> u32 {
        self.cli.run.epochs.unwrap_or(self.sizes.float_epochs)
    }

    /// The seeds every multi-seed experiment runs: `--seed`, `--seed + 1`, ...
    fn seeds(&self) -> Vec<u64> {
        self.cli.run.seed_list(0, self.sizes.seeds as u64)
    }

    /// The first seed, for the experiments that run one.
    fn first_seed(&self) -> u64 {
        self.seeds()[0]
    }

    /// Train, validation and test sets at `resolution` pixels a side.
    fn sets(&self, resolution: usize) -> Res<Splits> {
        let (train, val) = self
            .data
            .train
            .clone()
            .split_validation(self.sizes.validation)?;
        let train = train.truncated(self.sizes.train);
        let test = self.data.test.clone().truncated(self.sizes.test);
        Ok(Splits {
            train: resize(&train, resolution),
            val: Arc::new(resize(&val, resolution)),
            test: resize(&test, resolution),
        })
    }

    fn proxy(&self, what: &str, resolution: usize) -> String {
        let train_file = self.data.train.len().saturating_sub(self.sizes.validation);
        format!(
            "{} {}x{} ({} train / {} validation / {} test images, QAT on {} for {} epoch(s)), {what}",
            self.dataset_name(),
            resolution,
            resolution,
            self.sizes.train.min(train_file),
            self.sizes.validation,
            self.sizes.test.min(self.data.test.len()),
            self.sizes.qat_train.min(self.sizes.train).min(train_file),
            self.sizes.qat_epochs
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        source: &str,
        model: &str,
        method: &str,
        bits: (&str, &str),
        metric: &str,
        value: f64,
        proxy: &str,
        seed: u64,
        epochs: u32,
    ) -> ResultRow {
        ResultRow {
            paper: PAPER.into(),
            source: source.into(),
            dataset: self.dataset_name(),
            model: model.into(),
            method: method.into(),
            w_bits: bits.0.into(),
            a_bits: bits.1.into(),
            metric: metric.into(),
            value,
            proxy: proxy.into(),
            profile: self.profile().into(),
            seed,
            epochs,
            run_id: self.run.run_id.clone(),
        }
    }

    fn record(&self, table: &str, rows: &[ResultRow]) -> Res<()> {
        let path = table_path(&self.out, PAPER_DIR, table);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        self.run
            .record(&path, rows, &self.data.checksums())
            .map_err(err)?;
        eprintln!(
            "[{:>5.0}s] wrote {} rows to {}",
            self.started.elapsed().as_secs_f64(),
            rows.len(),
            path.display()
        );
        Ok(())
    }

    /// Where run `name` checkpoints, its progress label, and the validation set it scores.
    fn run_options(&self, name: &str, splits: &Splits) -> RunOptions {
        RunOptions {
            checkpoint: Some(self.checkpoints.join(format!(
                "{}-{}-{name}",
                self.profile(),
                self.data.name.dir_name()
            ))),
            label: name.to_string(),
            validation: Some(Arc::clone(&splits.val)),
        }
    }

    /// Float training from scratch (Adam, cosine schedule).
    fn train_float(
        &self,
        spec: &ModelSpec,
        act: Option<Activation>,
        seed: u64,
        splits: &Splits,
        name: &str,
    ) -> Res<(Net, TrainReport)> {
        let mut cfg = ModelConfig::new(spec.clone(), seed);
        cfg.activation = act;
        cfg.input = [1, splits.train.rows, splits.train.cols];
        let net = cfg.build(&self.device);
        let tc = float_config(self.float_epochs(), seed);
        train(
            net,
            &splits.train,
            &tc,
            &self.run_options(name, splits),
            &self.device,
        )
        .map_err(err)
    }

    /// QAT fine-tuning of a copy of `float` ([`qat_config`] over the first `qat_train` images).
    fn qat(
        &self,
        float: &Net,
        bits: (u32, u32),
        seed: u64,
        splits: &Splits,
        name: &str,
    ) -> Res<(Net, TrainReport)> {
        let net = quantized_copy(float, bits)?;
        let set = splits.train.clone().truncated(self.sizes.qat_train);
        let tc = qat_config(self.sizes.qat_epochs, seed, set.len());
        train(
            net,
            &set,
            &tc,
            &self.run_options(name, splits),
            &self.device,
        )
        .map_err(err)
    }

    /// The learning curve of one training run as rows of the `curves` table
    /// ([`TrainReport::curve_rows`]).
    #[allow(clippy::too_many_arguments)]
    fn curve_rows(
        &self,
        source: &str,
        model: &str,
        method: &str,
        bits: (&str, &str),
        report: &TrainReport,
        proxy: &str,
        seed: u64,
    ) -> Vec<ResultRow> {
        report.curve_rows(&self.row(source, model, method, bits, "", 0.0, proxy, seed, 0))
    }

    /// Post-training quantization: weights from their min/max, activation ranges from the EMA
    /// of calibration batches of the training slice.
    fn ptq(&self, float: &Net, bits: (u32, u32), set: &ImageSet) -> Res<Net> {
        let net = quantized_copy(float, bits)?;
        let idx: Vec<usize> = (0..set.len().min(1024)).collect();
        for chunk in idx.chunks(128) {
            let (x, _) = batch(set, chunk, &self.device);
            net.forward(x, &Phase::CALIBRATE);
        }
        Ok(net)
    }
}

/// Integer-engine evaluation of a quantized net.
struct EngineEval {
    int: IntegerNet,
    top1: f64,
    agreement: Agreement,
    logits: Vec<i32>,
}

/// Exports with the paper's double rounding (gemmlowp SRDHM + RDBPOT) and evaluates.
fn engine_eval(ctx: &Ctx, net: &Net, test: &ImageSet) -> Res<EngineEval> {
    engine_eval_with(ctx, net, test, RoundingMode::Double)
}

fn engine_eval_with(
    ctx: &Ctx,
    net: &Net,
    test: &ImageSet,
    rounding: RoundingMode,
) -> Res<EngineEval> {
    let int = export(net, [1, test.rows, test.cols], rounding).map_err(err)?;
    let a = check_agreement(net, &int, test, &ctx.device).map_err(err)?;
    let logits = engine_logits(&int, test).map_err(err)?;
    Ok(EngineEval {
        top1: a.engine_top1,
        agreement: a,
        int,
        logits,
    })
}

/// The E1 models of depth `d` and seed `seed`: float, PTQ-calibrated and QAT fine-tuned (from
/// checkpoints when
/// they exist), with the float and QAT training reports.
struct E1Models {
    float: (Net, TrainReport),
    ptq: Net,
    qat: (Net, TrainReport),
}

fn e1_models(ctx: &Ctx, d: usize, seed: u64, splits: &Splits) -> Res<E1Models> {
    let spec = ModelSpec::ResNetCifar(d);
    let float = ctx.train_float(
        &spec,
        None,
        seed,
        splits,
        &format!("e1-resnet{d}-float-s{seed}"),
    )?;
    let ptq = ctx.ptq(&float.0, (8, 8), &splits.train)?;
    let qat = ctx.qat(
        &float.0,
        (8, 8),
        seed,
        splits,
        &format!("e1-resnet{d}-qat-s{seed}"),
    )?;
    Ok(E1Models { float, ptq, qat })
}

/// E8 diagnosis: block-by-block agreement of every E1 model with the engine (printed).
fn agreement(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e1_resolution)?;
    let te = &splits.test;
    for &d in &ctx.sizes.e1_depths {
        let m = e1_models(ctx, d, ctx.first_seed(), &splits)?;
        for (method, net) in [("PTQ", &m.ptq), ("QAT", &m.qat.0)] {
            let ev = engine_eval(ctx, net, te)?;
            let a = ev.agreement;
            println!(
                "ResNet-{d} {method}: argmax agreement with the engine: fake-quant f32 {:.4} (max {} LSB), integer simulation {:.4} (max {} LSB)",
                a.fake_quant_agreement, a.fake_quant_max_lsb, a.agreement, a.max_lsb
            );
            let nodes = node_agreement(
                net,
                [1, te.rows, te.cols],
                te,
                RoundingMode::Double,
                &ctx.device,
            )
            .map_err(err)?;
            println!(
                "| block | kind | codes | f32 differing | f32 max LSB | f32 block alone differing | alone max LSB | integer sim differing | integer max LSB |"
            );
            println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            for n in nodes {
                println!(
                    "| {} | {} | {} | {:.2e} | {} | {:.2e} | {} | {:.2e} | {} |",
                    n.block,
                    n.kind,
                    n.values,
                    n.fake_quant.0,
                    n.fake_quant.1,
                    n.fake_quant_local.0,
                    n.fake_quant_local.1,
                    n.integer.0,
                    n.integer.1
                );
            }
        }
    }
    Ok(())
}

/// E1 (Table 4.1) and E8: ResNet-8/14/20 standing in for ResNet-50/100/150.
fn depth(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e1_resolution)?;
    for seed in ctx.seeds() {
        depth_seed(ctx, seed, &splits)?;
    }
    figures(&ctx.out, ctx.cli.run.profile)
}

/// One seed of E1 (a unit of the full profile): its rows are recorded before the next seed starts.
fn depth_seed(ctx: &Ctx, seed: u64, splits: &Splits) -> Res<()> {
    let (res, te) = (ctx.sizes.e1_resolution, &splits.test);
    let (mut rows, mut e8, mut curves) = (Vec::new(), Vec::new(), Vec::new());
    let ep = ctx.float_epochs();
    let mut max_drop = f64::NEG_INFINITY;
    for &d in &ctx.sizes.e1_depths {
        let paper_model = match d {
            8 => "ResNet-50",
            14 => "ResNet-100",
            _ => "ResNet-150",
        };
        let proxy = ctx.proxy(&format!("ResNet-{d} (CIFAR-style 16/32/64)"), res);
        let row = |source: &str, method: &str, bits: &str, metric: &str, value: f64| {
            ctx.row(
                source,
                paper_model,
                method,
                (bits, bits),
                metric,
                value,
                &proxy,
                seed,
                ep,
            )
        };
        let m = e1_models(ctx, d, seed, splits)?;
        let f_acc = evaluate(&m.float.0, te, &Phase::FLOAT_EVAL, &ctx.device);
        let p = engine_eval(ctx, &m.ptq, te)?;
        let q = engine_eval(ctx, &m.qat.0, te)?;
        max_drop = max_drop.max(f_acc - q.top1);
        let top1 = "top1_acc_pct";
        rows.push(row(T41, "float", "32", top1, f_acc));
        rows.push(row(T41, QAT_T41, "8", top1, q.top1));
        rows.push(row(T41, PTQ, "8", top1, p.top1));
        curves.extend(ctx.curve_rows(
            T41,
            paper_model,
            "float",
            ("32", "32"),
            &m.float.1,
            &proxy,
            seed,
        ));
        curves.extend(ctx.curve_rows(
            T41,
            paper_model,
            QAT_T41,
            ("8", "8"),
            &m.qat.1,
            &proxy,
            seed,
        ));
        for (method, ev) in [(QAT_T41, &q), (PTQ, &p)] {
            e8.extend(agreement_rows(&row, method, &ev.agreement));
        }
        // The same QAT model with TFLite's later single rounding: isolates how much of the
        // engine/simulation disagreement is the double rounding of the paper-era output stage.
        let single = engine_eval_with(ctx, &m.qat.0, te, RoundingMode::Single)?;
        let sm = "QAT integer-only (per-layer uint8), single rounding";
        e8.extend(agreement_rows(&row, sm, &single.agreement));
        e8.push(row(T41, sm, "8", "top1", single.top1));
        let fsize = float_size_bytes(&m.qat.0) as f64;
        let isize = q.int.size_bytes() as f64;
        e8.push(row(T41, "float", "32", "size_bytes", fsize));
        e8.push(row(T41, QAT_T41, "8", "size_bytes", isize));
        e8.push(ctx.row(
            SEC5,
            "all",
            "8-bit quantization",
            ("8", "8"),
            "model_size_reduction_factor",
            fsize / isize,
            &proxy,
            seed,
            ep,
        ));
        eprintln!(
            "E1 resnet{d} seed {seed}: float {f_acc:.2} ptq {:.2} qat {:.2} (agreement {:.4}, max {} LSB; fake-quant f32 {:.4}, max {} LSB)",
            p.top1,
            q.top1,
            q.agreement.agreement,
            q.agreement.max_lsb,
            q.agreement.fake_quant_agreement,
            q.agreement.fake_quant_max_lsb
        );
    }
    let all = ctx.proxy("ResNet-8/14/20", res);
    rows.push(ctx.row(
        T41_TEXT,
        "ResNet-50/100/150",
        QAT,
        ("8", "8"),
        "max_top1_drop_pct_vs_float",
        max_drop,
        &all,
        seed,
        ep,
    ));
    ctx.record("e1_depth", &rows)?;
    ctx.record("e8_agreement", &e8)?;
    ctx.record("curves", &curves)
}

/// E8 rows of one exported model: argmax agreement and largest logit difference of the engine
/// against the integer simulation (the check of record) and against the fake-quantized f32 model.
/// `row(source, method, bits, metric, value)` builds a row of the model being checked.
fn agreement_rows(
    row: &impl Fn(&str, &str, &str, &str, f64) -> ResultRow,
    method: &str,
    a: &Agreement,
) -> Vec<ResultRow> {
    [
        ("agreement", a.agreement),
        ("max_logit_diff_lsb", a.max_lsb as f64),
        ("agreement_fake_quant_f32", a.fake_quant_agreement),
        (
            "max_logit_diff_lsb_fake_quant_f32",
            a.fake_quant_max_lsb as f64,
        ),
    ]
    .into_iter()
    .map(|(metric, value)| row(T41, method, "8", metric, value))
    .collect()
}

/// (method, bits label, (weight, activation) bits or None for float).
type BitConfig = (&'static str, &'static str, Option<(u32, u32)>);

/// E3 (Table 4.3): P-CNN with ReLU vs ReLU6 at float and 8/8, 7/7 (+ 5/5, 4/4 stress rows), one
/// row per seed, then the mean and std over every seed the table now holds.
fn relu(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e3_resolution)?;
    let spec: ModelSpec = ctx.sizes.e3_model.parse().map_err(err)?;
    for seed in ctx.seeds() {
        relu_seed(ctx, &spec, seed, &splits)?;
    }
    ctx.record("e3_relu", &seed_summaries(ctx, "e3_relu", T43)?)?;
    figures(&ctx.out, ctx.cli.run.profile)
}

/// One seed of E3 (a unit of the full profile): both activations, float and every bit width.
fn relu_seed(ctx: &Ctx, spec: &ModelSpec, seed: u64, splits: &Splits) -> Res<()> {
    let configs: [BitConfig; 5] = [
        ("float", "32", None),
        (QAT, "8", Some((8, 8))),
        (QAT, "7", Some((7, 7))),
        (QAT, "5", Some((5, 5))),
        (QAT, "4", Some((4, 4))),
    ];
    let ep = ctx.float_epochs();
    let (mut rows, mut curves) = (Vec::new(), Vec::new());
    for (act, paper_model) in [
        (Activation::Relu6, "Inception-v3 (ReLU6)"),
        (Activation::Relu, "Inception-v3 (ReLU)"),
    ] {
        let proxy = ctx.proxy(&format!("P-CNN {spec} ({act:?})"), ctx.sizes.e3_resolution);
        let tag = format!("e3-{spec}-{act:?}-s{seed}").replace([':', ','], "_");
        let float = ctx.train_float(spec, Some(act), seed, splits, &format!("{tag}-float"))?;
        for (method, b, bits) in configs {
            let (acc, report) = match bits {
                None => (
                    evaluate(&float.0, &splits.test, &Phase::FLOAT_EVAL, &ctx.device),
                    float.1.clone(),
                ),
                Some(wa) => {
                    let name = format!("{tag}-qat{}{}", wa.0, wa.1);
                    let (q, report) = ctx.qat(&float.0, wa, seed, splits, &name)?;
                    (engine_eval(ctx, &q, &splits.test)?.top1, report)
                }
            };
            eprintln!("E3 {act:?} {method} {b}/{b} seed {seed}: {acc:.2}");
            rows.push(ctx.row(
                T43,
                paper_model,
                method,
                (b, b),
                "top1_acc_pct",
                acc,
                &proxy,
                seed,
                ep,
            ));
            curves.extend(ctx.curve_rows(T43, paper_model, method, (b, b), &report, &proxy, seed));
        }
    }
    ctx.record("e3_relu", &rows)?;
    ctx.record("curves", &curves)
}

/// The paper's mean and std rows (`top1_acc_mean_pct`, `top1_acc_std_pct`) of `source`, over every
/// seed now in `table` for each setting (model, method, bits, proxy, profile, epochs), so seeds run
/// as separate units add up. They carry the setting's smallest seed.
fn seed_summaries(ctx: &Ctx, table: &str, source: &str) -> Res<Vec<ResultRow>> {
    let path = table_path(&ctx.out, PAPER_DIR, table);
    let rows: Vec<ResultRow> = repro::results::read_rows(&path).map_err(err)?;
    let mut settings: std::collections::BTreeMap<_, Vec<&ResultRow>> = Default::default();
    for r in rows
        .iter()
        .filter(|r| r.source == source && r.metric == "top1_acc_pct" && r.profile == ctx.profile())
    {
        let setting = (
            &r.model, &r.method, &r.w_bits, &r.a_bits, &r.proxy, r.epochs,
        );
        settings.entry(setting).or_default().push(r);
    }
    let mut out = Vec::new();
    for seeds in settings.values() {
        let values: Vec<f64> = seeds.iter().map(|r| r.value).collect();
        let (m, sd) = repro::stats::mean_and_sd(&values);
        let first = seeds.iter().map(|r| r.seed).min().unwrap_or_default();
        for (metric, value) in [("top1_acc_mean_pct", m), ("top1_acc_std_pct", sd)] {
            out.push(ResultRow {
                metric: metric.into(),
                value,
                seed: first,
                run_id: ctx.run.run_id.clone(),
                ..seeds[0].clone()
            });
        }
        let r = seeds[0];
        eprintln!(
            "{} {} {}/{}: {m:.2} ± {sd:.2} over {} seeds",
            r.model,
            r.method,
            r.w_bits,
            r.a_bits,
            values.len()
        );
    }
    Ok(out)
}

/// E4 (arXiv Table 4.7): one float MobileNetV1 per seed, QAT fine-tuned for each (w, a) pair;
/// relative change of macro-averaged average precision (and top-1) on the integer engine.
fn bits(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e4_resolution)?;
    let spec: ModelSpec = ctx.sizes.e4_model.parse().map_err(err)?;
    for seed in ctx.seeds() {
        bits_seed(ctx, &spec, seed, &splits)?;
    }
    figures(&ctx.out, ctx.cli.run.profile)
}

/// One seed of E4 (a unit of the full profile).
fn bits_seed(ctx: &Ctx, spec: &ModelSpec, seed: u64, splits: &Splits) -> Res<()> {
    let (res, te) = (ctx.sizes.e4_resolution, &splits.test);
    let ep = ctx.float_epochs();
    let tag = format!("e4-{spec}-r{res}-s{seed}").replace([':', ','], "_");
    let (float, float_report) =
        ctx.train_float(spec, None, seed, splits, &format!("{tag}-float"))?;
    let f_logits: Vec<f64> = predict(&float, te, 256, &Phase::FLOAT_EVAL, &ctx.device)
        .into_iter()
        .map(f64::from)
        .collect();
    let f_ap = macro_average_precision(&f_logits, &te.labels, 10);
    let f_top1 = evaluate(&float, te, &Phase::FLOAT_EVAL, &ctx.device);
    let proxy = ctx.proxy(&format!("MobileNetV1 {spec}"), res);
    let model = "MobileNet face-attribute classifier (128x128)";
    let row = |method: &str, (w, a): (&str, &str), metric: &str, value: f64| {
        ctx.row(T47, model, method, (w, a), metric, value, &proxy, seed, ep)
    };
    let mut rows = vec![
        row("float", ("32", "32"), "avg_category_precision_pct", f_ap),
        row("float", ("32", "32"), "top1_acc_pct", f_top1),
    ];
    let mut curves = ctx.curve_rows(
        T47,
        model,
        "float",
        ("32", "32"),
        &float_report,
        &proxy,
        seed,
    );
    for &w in &ctx.sizes.e4_bits {
        for &a in &ctx.sizes.e4_bits {
            let (q, report) = ctx.qat(&float, (w, a), seed, splits, &format!("{tag}-qat{w}{a}"))?;
            let ev = engine_eval(ctx, &q, te)?;
            let scores: Vec<f64> = ev.logits.iter().map(|&c| f64::from(c)).collect();
            let ap = macro_average_precision(&scores, &te.labels, 10);
            let rel = 100.0 * (ap - f_ap) / f_ap;
            eprintln!(
                "E4 seed {seed} w{w} a{a}: AP {ap:.2} (float {f_ap:.2}, {rel:+.2}%), top1 {:.2}",
                ev.top1
            );
            let bits = (w.to_string(), a.to_string());
            let bits = (bits.0.as_str(), bits.1.as_str());
            rows.push(row(QAT, bits, "rel_change_avg_category_precision_pct", rel));
            rows.push(row(QAT, bits, "top1_acc_pct", ev.top1));
            curves.extend(ctx.curve_rows(T47, model, QAT, bits, &report, &proxy, seed));
        }
    }
    ctx.record("e4_bits", &rows)?;
    ctx.record("curves", &curves)
}

/// Draws the Table 4.7 heat map from `<out>/integer-qat/e4_bits.csv` beside it.
fn figures(out: &std::path::Path, profile: Profile) -> Res<()> {
    let dir = out.join(PAPER_DIR);
    let table = |name: &str| -> Res<Vec<ResultRow>> {
        repro::results::read_rows(&dir.join(format!("{name}.csv"))).map_err(err)
    };
    let write = |stem: &str, svg: String| -> Res<()> {
        let path = dir.join(format!("{stem}.svg"));
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        Ok(())
    };
    let published = repro::published::PaperExperiments::published_of(PAPER_DIR).map_err(err)?;
    if let Some(svg) =
        integer_qat::figures::bits_heat_map(&table("e4_bits")?, &published, profile.name())
    {
        write("e4_bits_heatmap", svg)?;
    }
    for (stem, svg) in integer_qat::figures::learning_curves(&table("curves")?, profile.name()) {
        write(&stem, svg)?;
    }
    Ok(())
}

/// Median batch-1 latency in ms of `f` over `runs` runs after 3 warm-up runs, on a pool of
/// `threads` threads (Burn flex and the integer engine both use rayon).
fn latency_ms(threads: usize, runs: usize, mut f: impl FnMut() -> Res<()> + Send) -> Res<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(err)?;
    pool.install(|| {
        for _ in 0..3 {
            f()?;
        }
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            f()?;
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(&mut t))
    })
}

/// E5/E6: MobileNetV1 widths x resolutions (companion table keys: α x {224,192,160,128} mapped to
/// {28,24,20,16}), accuracy from the engine, batch-1 latency float vs integer at 1 and 2 threads.
fn latency(ctx: &Ctx) -> Res<()> {
    let seed = ctx.first_seed();
    let ep = ctx.float_epochs();
    let (mut rows, mut points) = (Vec::new(), Vec::new());
    for &alpha in &ctx.sizes.e5_widths {
        for &res in &ctx.sizes.e5_resolutions {
            let mut splits = ctx.sets(res)?;
            splits.train = splits.train.truncated(ctx.sizes.e5_train);
            let te = &splits.test;
            let spec = ModelSpec::MobileNetV1(alpha);
            let paper_res = match res {
                28 => 224,
                24 => 192,
                20 => 160,
                _ => 128,
            };
            let model = format!("MobileNet_v1_{}_{paper_res}", width_label(alpha));
            let tag = format!("e5-mbv1_{alpha}-r{res}-s{seed}");
            let (float, _) =
                ctx.train_float(&spec, None, seed, &splits, &format!("{tag}-float"))?;
            let f_acc = evaluate(&float, te, &Phase::FLOAT_EVAL, &ctx.device);
            let (q, _) = ctx.qat(&float, (8, 8), seed, &splits, &format!("{tag}-qat"))?;
            let ev = engine_eval(ctx, &q, te)?;
            let proxy = ctx.proxy(
                &format!(
                    "MobileNetV1 α={alpha} (float trained on {} images)",
                    splits.train.len()
                ),
                res,
            );
            let m = "top1_acc_pct";
            rows.push(ctx.row(
                COMPANION,
                &model,
                "float",
                ("32", "32"),
                m,
                f_acc,
                &proxy,
                seed,
                ep,
            ));
            rows.push(ctx.row(
                COMPANION,
                &model,
                "QAT (contrib.quantize, fake-quant graph)",
                ("8", "8"),
                m,
                ev.top1,
                &proxy,
                seed,
                ep,
            ));
            let (x, _) = batch(te, &[0], &ctx.device);
            let img = te.image(0).to_vec();
            let mut lat = [[0.0; 2]; 2];
            for (ti, threads) in [1usize, 2].into_iter().enumerate() {
                let runs = ctx.sizes.latency_runs;
                lat[0][ti] = latency_ms(threads, runs, || {
                    let y = float.forward(x.clone(), &Phase::FLOAT_EVAL);
                    y.into_data()
                        .try_into_vec_as::<f32>()
                        .map(|_| ())
                        .map_err(err)
                })?;
                lat[1][ti] = latency_ms(threads, runs, || {
                    ev.int.run(&img, 1).map(|_| ()).map_err(err)
                })?;
                let metric = format!("latency_ms_x86_batch1_{threads}thread");
                rows.push(ctx.row(
                    FIG,
                    &model,
                    "float (Burn flex f32)",
                    ("32", "32"),
                    &metric,
                    lat[0][ti],
                    &proxy,
                    seed,
                    ep,
                ));
                rows.push(ctx.row(
                    FIG,
                    &model,
                    QAT,
                    ("8", "8"),
                    &metric,
                    lat[1][ti],
                    &proxy,
                    seed,
                    ep,
                ));
            }
            for (i, method) in ["float (Burn flex f32)", QAT].into_iter().enumerate() {
                rows.push(ctx.row(
                    FIG,
                    &model,
                    method,
                    if i == 0 { ("32", "32") } else { ("8", "8") },
                    "speedup_2threads_vs_1",
                    lat[i][0] / lat[i][1],
                    &proxy,
                    seed,
                    ep,
                ));
            }
            eprintln!(
                "E5 {model}: float {f_acc:.2}% {:.3} ms | int8 {:.2}% {:.3} ms (1 thread)",
                lat[0][0], ev.top1, lat[1][0]
            );
            points.push((model, f_acc, lat[0][0], ev.top1, lat[1][0]));
        }
    }
    ctx.record("e5_latency", &rows)?;
    let svg = ctx.out.join(PAPER_DIR).join("e5_latency_accuracy.svg");
    let subtitle = format!(
        "{}, MobileNetV1 width x resolution, {} test images, median of {} batch-1 runs",
        ctx.dataset_name(),
        ctx.sizes.test.min(ctx.data.test.len()),
        ctx.sizes.latency_runs
    );
    std::fs::write(&svg, plot_svg(&points, &subtitle))
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    eprintln!("wrote {}", svg.display());
    Ok(())
}

fn width_label(alpha: f64) -> String {
    // The companion table spells widths 1.0, 0.75, 0.50, 0.25.
    if (alpha - 1.0).abs() < 1e-9 {
        "1.0".into()
    } else {
        format!("{alpha:.2}")
    }
}

/// Accuracy against batch-1 latency (log x axis): one labelled marker series for float, one for the
/// 8-bit integer engine; `points` are `(model, float top-1, float ms, int8 top-1, int8 ms)`.
fn plot_svg(points: &[(String, f64, f64, f64, f64)], subtitle: &str) -> String {
    let label = |m: &String| m.trim_start_matches("MobileNet_v1_").to_string();
    Chart {
        title: format!("Top-1 vs batch-1 latency (1 thread): {subtitle}"),
        x_label: "batch-1 latency (ms, log scale)".into(),
        y_label: "top-1 (%)".into(),
        log_x: true,
        series: vec![
            Series::labelled_markers(
                "float (Burn flex)",
                points.iter().map(|p| ((p.2, p.1), label(&p.0))).collect(),
                color(0),
            ),
            Series::labelled_markers(
                "8-bit integer engine",
                points.iter().map(|p| ((p.4, p.3), label(&p.0))).collect(),
                color(3),
            ),
        ],
        ..Default::default()
    }
    .render()
}

fn run(cli: Cli) -> Res<()> {
    let backend: BackendKind = cli.run.backend.parse()?;
    cli.run.validate()?;
    if matches!(cli.command, Some(Command::Figures)) {
        return figures(&cli.run.out_root(), cli.run.profile);
    }
    let started = cli.run.start()?;
    let data = cli
        .run
        .load(cli.run.dataset_or(DatasetName::FashionMnist))?;
    let checkpoints = cli
        .checkpoints
        .clone()
        .unwrap_or_else(|| repro::workspace_root().join("target/integer-qat-checkpoints"));
    let ctx = Ctx {
        sizes: Sizes::of(cli.run.profile),
        data,
        device: backend.device(),
        run: started.run,
        out: started.out,
        checkpoints,
        started: Instant::now(),
        cli,
    };
    let command = ctx.cli.command.unwrap_or(Command::All);
    match command {
        Command::Depth => depth(&ctx),
        Command::Relu => relu(&ctx),
        Command::Bits => bits(&ctx),
        Command::Latency => latency(&ctx),
        Command::Agreement => agreement(&ctx),
        Command::Figures => figures(&ctx.out, ctx.cli.run.profile),
        Command::All => {
            depth(&ctx)?;
            relu(&ctx)?;
            bits(&ctx)?;
            latency(&ctx)
        }
    }?;
    eprintln!("done in {:.0} s", ctx.started.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
