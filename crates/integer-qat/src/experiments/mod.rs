//! The experiments of Jacob et al. 2018 on the proxies, one module per table or figure; each ends in
//! result rows whose key columns repeat the published row they reproduce
//! (`experiments/integer-qat/published.csv`), with `dataset` and `proxy` saying what actually ran.
//! Accuracies of quantized models come from the quant-core integer engine, not from the
//! fake-quantized Burn model. The binary is a command line over [`depth`], [`schemes`], [`relu`],
//! [`bits`], [`latency`] and [`agreement`].

mod bits;
mod depth;
mod latency;
mod relu;
mod schemes;

pub use bits::bits;
pub use depth::{agreement, depth};
pub use latency::{latency, latency_ms, shapes};
pub use relu::relu;
pub use schemes::schemes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use quant_core::fixedpoint::RoundingMode;
use quant_train::data::{batch, resize};
use quant_train::export::{
    Agreement, IntegerNet, check_agreement, engine_logits, export, float_size_bytes, node_agreement,
};
use quant_train::train::train;
use quant_train::{
    Activation, ModelConfig, ModelSpec, Net, Phase, RunOptions, TrainReport, evaluate, predict,
};
use repro::Profile;
use repro::cli::RunArgs;
use repro::datasets::{Dataset, ImageSet};
use repro::examples::Examples;
use repro::manifest::Run;
use repro::plot::{Chart, Series, color};
use repro::results::{Measured, ResultRow, RunStamp, table_path};

use crate::recipe::{
    Sizes, calibrated_copy, calibrated_on, float_config, qat_config, quantized_copy,
};
use crate::{T41, T42, T43, T47, macro_average_precision, median};

pub(crate) const PAPER: &str = "jacob2018";
pub const PAPER_DIR: &str = "integer-qat";
pub(crate) const T41_TEXT: &str = "arXiv:1712.05877v1/CVPR2018 Sec 4.1.1 text";
pub(crate) const COMPANION: &str = "COMPANION (not in paper): tensorflow/models research/slim/nets/mobilenet_v1.md, checkpoints mobilenet_v1_2018_02_22";
/// The companion table's name for its 8-bit models.
pub(crate) const COMPANION_QAT: &str = "QAT (contrib.quantize, fake-quant graph)";
pub(crate) const SEC5: &str = "arXiv:1712.05877v1/CVPR2018 Sec 5 text";
pub(crate) const FIG: &str =
    "arXiv:1712.05877v1 Figs 1.1c/4.1/4.2 (latency vs accuracy; points not read)";
pub(crate) const QAT: &str = "QAT integer-only";
pub(crate) const QAT_T41: &str = "QAT integer-only (per-layer uint8)";
pub(crate) const PTQ: &str = "PTQ integer-only (per-layer uint8)";

/// The three disjoint image sets of one input resolution.
pub(crate) struct Splits {
    /// What the models train on: the training file less its validation tail.
    pub(crate) train: ImageSet,
    /// The tail of the training file, scored after every epoch (the learning curves); every
    /// selection is made here, never on the test set.
    pub(crate) val: Arc<ImageSet>,
    /// The whole test file (in the full profile), scored once per finished model.
    pub(crate) test: ImageSet,
}

/// Everything an experiment needs.
pub struct Ctx {
    pub(crate) args: RunArgs,
    pub(crate) sizes: Sizes,
    pub(crate) data: Dataset,
    pub(crate) device: Device,
    pub(crate) run: Run,
    pub(crate) out: PathBuf,
    /// Where the trainings keep their checkpoints (none: they start over every run).
    pub(crate) checkpoints: Option<PathBuf>,
    pub(crate) started: Instant,
}

pub(crate) type Res<T> = Result<T, String>;

pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Ctx {
    pub(crate) fn profile(&self) -> &'static str {
        self.args.profile.name()
    }

    pub(crate) fn dataset_name(&self) -> String {
        self.data.name.paper_name().to_string()
    }

    pub(crate) fn float_epochs(&self) -> u32 {
        self.args.epochs.unwrap_or(self.sizes.float_epochs)
    }

    /// The seeds every multi-seed experiment runs: `--seed`, `--seed + 1`, ...
    pub(crate) fn seeds(&self) -> Vec<u64> {
        self.args.seed_list(0, self.sizes.seeds as u64)
    }

    /// The first seed, for the experiments that run one.
    pub(crate) fn first_seed(&self) -> u64 {
        self.seeds()[0]
    }

    /// Train, validation and test sets at `resolution` pixels a side.
    pub(crate) fn sets(&self, resolution: usize) -> Res<Splits> {
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

    pub(crate) fn proxy(&self, what: &str, resolution: usize) -> String {
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
    pub(crate) fn row(
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
        ResultRow::new(
            Measured {
                paper: PAPER,
                source,
                dataset: &self.dataset_name(),
                model,
                method,
                bits,
                metric,
                proxy,
            },
            value,
            &RunStamp {
                profile: self.profile(),
                seed,
                epochs,
                run_id: &self.run.run_id,
            },
        )
    }

    pub(crate) fn record(&self, table: &str, rows: &[ResultRow]) -> Res<()> {
        self.record_with(table, rows, |_| Vec::new())
    }

    /// Records the rows `derive` computes from the whole table (every unit's rows), under the
    /// table's lock, so summaries over seeds run as separate units stay whole however they interleave.
    pub(crate) fn record_derived(
        &self,
        table: &str,
        derive: impl FnOnce(&[ResultRow]) -> Vec<ResultRow>,
    ) -> Res<()> {
        self.record_with(table, &[], derive)
    }

    fn record_with(
        &self,
        table: &str,
        rows: &[ResultRow],
        derive: impl FnOnce(&[ResultRow]) -> Vec<ResultRow>,
    ) -> Res<()> {
        let path = table_path(&self.out, PAPER_DIR, table);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let n = self
            .run
            .record_derived(&path, rows, derive, &self.data.checksums())
            .map_err(err)?;
        eprintln!(
            "[{:>5.0}s] wrote {} rows to {} ({n} in all)",
            self.started.elapsed().as_secs_f64(),
            rows.len(),
            path.display()
        );
        Ok(())
    }

    /// Where run `name` checkpoints, its progress label, and the validation set it scores.
    pub(crate) fn run_options(&self, name: &str, splits: &Splits) -> RunOptions {
        RunOptions {
            checkpoint: self.checkpoints.as_ref().map(|dir| {
                dir.join(format!(
                    "{}-{}-{name}",
                    self.profile(),
                    self.data.name.dir_name()
                ))
            }),
            label: name.to_string(),
            validation: Some(Arc::clone(&splits.val)),
        }
    }

    /// Float training from scratch (Adam, cosine schedule).
    pub(crate) fn train_float(
        &self,
        spec: &ModelSpec,
        act: Option<Activation>,
        seed: u64,
        splits: &Splits,
        name: &str,
    ) -> Res<(Net, TrainReport)> {
        let mut cfg = ModelConfig::new(spec.clone(), seed);
        cfg.activation = act;
        cfg.input = splits.train.shape();
        cfg.classes = self.data.name.classes();
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

    /// QAT fine-tuning of a copy of `float` with the paper's `bits = (weight, activation)` affine
    /// formats.
    pub(crate) fn qat(
        &self,
        float: &Net,
        bits: (u32, u32),
        seed: u64,
        splits: &Splits,
        name: &str,
    ) -> Res<(Net, TrainReport)> {
        self.fine_tune(quantized_copy(float, bits)?, seed, splits, name)
    }

    /// QAT fine-tuning of `net` (a float model with its quantizers set): [`qat_config`] over the
    /// first `qat_train` images.
    pub(crate) fn fine_tune(
        &self,
        net: Net,
        seed: u64,
        splits: &Splits,
        name: &str,
    ) -> Res<(Net, TrainReport)> {
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
    pub(crate) fn curve_rows(
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

    /// Post-training quantization ([`calibrated_copy`]) on the training slice `set`.
    pub(crate) fn ptq(&self, float: &Net, bits: (u32, u32), set: &ImageSet) -> Res<Net> {
        calibrated_copy(float, bits, set, &self.device)
    }
}

/// Integer-engine evaluation of a quantized net.
pub(crate) struct EngineEval {
    pub(crate) int: IntegerNet,
    top1: f64,
    pub(crate) agreement: Agreement,
    pub(crate) logits: Vec<i32>,
}

/// Exports with the paper's double rounding (gemmlowp SRDHM + RDBPOT) and evaluates.
pub(crate) fn engine_eval(ctx: &Ctx, net: &Net, test: &ImageSet) -> Res<EngineEval> {
    engine_eval_with(ctx, net, test, RoundingMode::Double)
}

pub(crate) fn engine_eval_with(
    ctx: &Ctx,
    net: &Net,
    test: &ImageSet,
    rounding: RoundingMode,
) -> Res<EngineEval> {
    let int = export(net, test.shape(), rounding).map_err(err)?;
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
pub(crate) struct E1Models {
    pub(crate) float: (Net, TrainReport),
    pub(crate) ptq: Net,
    pub(crate) qat: (Net, TrainReport),
}

pub(crate) fn e1_models(ctx: &Ctx, d: usize, seed: u64, splits: &Splits) -> Res<E1Models> {
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

impl Ctx {
    /// The context of one invocation: the run flags, the started run, the loaded data set, the
    /// training device and the checkpoint folder.
    pub fn new(
        args: RunArgs,
        run: &repro::cli::RunContext,
        data: Dataset,
        device: Device,
        checkpoints: Option<PathBuf>,
    ) -> Ctx {
        Ctx {
            sizes: Sizes::of(args.profile),
            args,
            data,
            device,
            run: run.run.clone(),
            out: run.out.clone(),
            checkpoints,
            started: Instant::now(),
        }
    }

    /// Seconds since the context was made.
    pub fn elapsed_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Redraws, from the tables under `<out>/integer-qat/`, the figures drawn from tables alone: the
/// Table 4.7 heat map (ours beside the paper's), the learning curves of every experiment and the E5
/// accuracy-latency plot (once `e5_latency.csv` exists), each beside its table.
pub fn figures(out: &std::path::Path, profile: Profile) -> Res<()> {
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
    if let Some(svg) = crate::figures::bits_heat_map(&table("e4_bits")?, &published, profile.name())
    {
        write("e4_bits_heatmap", svg)?;
    }
    for (stem, svg) in crate::figures::learning_curves(&table("curves")?, profile.name()) {
        write(&stem, svg)?;
    }
    if dir.join("e5_latency.csv").exists() {
        let e5 = table("e5_latency")?;
        if let Some(svg) = latency::accuracy_latency_figure(&e5, profile.name()) {
            write("e5_latency_accuracy", svg)?;
        }
    }
    Ok(())
}
