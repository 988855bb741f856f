//! `f8net`: the F8Net reproduction. `--model X` runs the main table for one proxy model; subcommands
//! run the statistics figures and the ablations.

use clap::{Parser, Subcommand};
use f8net::experiments::{
    RowCtx, Splits, StagePlan, ablation_steps, ablations, main_steps, main_table, summaries,
};
use f8net::graph::Arch;
use f8net::paper_scale::{self, PaperPlan, PaperRun};
use f8net::statistics::{self, Grid};
use quant_train::pretrained;
use repro::Profile;
use repro::cli::RunArgs;
use repro::datasets::DatasetName;
use repro::manifest::Run;
use repro::results::{RunStamp, table_path};

#[derive(Parser)]
#[command(
    about = "F8Net (Jin et al. ICLR 2022): fixed-point 8-bit-only multiplication on proxy models",
    long_about = "F8Net (Jin et al. ICLR 2022): fixed-point 8-bit-only multiplication on proxy models.\n\n\
                  Weights and activations are 8-bit in every quantized stage, as in the paper, and no flag \
                  changes that: F8Net uses per-layer or per-channel fixed-point fractional lengths and \
                  shift-only requantization, the conventional baseline an INT32 requantization \
                  multiplier. Proxies, recipe and results: experiments/f8net/README.md."
)]
struct Cli {
    /// Train the proxy of this model and write its main-table rows (FP, F8Net, INT8 with INT32
    /// multiplier). Data set: Fashion-MNIST unless --dataset says otherwise; seeds 0, 1, 2 on the
    /// full profile (a unit per seed: `--seed 2 --seeds 1`).
    #[arg(long, value_enum)]
    model: Option<Arch>,
    /// Tiny fine-tuning iterations of `--profile paper --pretrained` (default: the paper's,
    /// ResNet-18 100 at lr 0, ResNet-50 500 at lr 1e-4); without --pretrained, `--epochs` sets each
    /// conventional stage (default 150).
    #[arg(long)]
    steps: Option<usize>,
    /// Images per step of `--profile paper` (default: the paper's, 128 for tiny fine-tuning, 256
    /// for the conventional training): a smaller batch fits a smaller memory (ResNet-50's tiny
    /// fine-tuning at 128 needs more than 24 GB on a CPU), at the price of noisier batch statistics.
    #[arg(long)]
    batch: Option<usize>,
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Relative quantization error vs sigma, thresholds and fitted constants (exact and Monte Carlo),
    /// as CSV and SVG figures. Needs no data set.
    Stats,
    /// Redraw the main-table figure (top-1 per model with error bars over seeds, beside the paper's)
    /// from the committed main.csv, without training; every `--model` run redraws it.
    Figures,
    /// Ablations on one model: FL rule, per-layer vs per-channel, PACT on/off, tiny fine-tuning.
    Ablations {
        #[arg(long, value_enum, default_value = "mobilenetv2")]
        model: Arch,
    },
}

const PAPER_DIR: &str = "f8net";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let cli = Cli::parse();
    if cli.run.profile == Profile::Paper {
        return paper(&cli);
    }
    for (flag, given) in [
        ("--steps", cli.steps.is_some()),
        ("--batch", cli.batch.is_some()),
    ] {
        if given {
            return Err(format!(
                "{flag} sets the ImageNet training of --profile paper; the proxies' stages follow \
                 --profile: drop {flag}"
            ));
        }
    }
    let ctx = cli.run.start()?;
    let default = StagePlan::new(cli.run.profile, cli.run.epochs, None);
    let plan = StagePlan {
        seeds: cli.run.seed_list(0, default.seeds.len() as u64),
        checkpoint_dir: cli.run.checkpoint_dir("f8net-checkpoints"),
        ..default
    };
    let (run, out, threads) = (&ctx.run, ctx.out(), ctx.threads);
    let device = quant_train::train::BackendKind::for_run(&cli.run)?.autodiff();
    match (&cli.command, cli.model) {
        (Some(Command::Stats), _) => stats(&plan, run, out),
        (Some(Command::Figures), _) => main_figure(&plan, out),
        (Some(Command::Ablations { model }), _) => {
            let dataset = load_data(&cli)?;
            let splits = Splits::of(&plan, &dataset)?;
            let ctx = RowCtx { arch: *model, dataset: &dataset, plan: &plan, run_id: &run.run_id };
            let bar = repro::cli::progress_bar(ablation_steps(&plan, &splits), "ablations");
            let (rows, curves) = ablations(&ctx, &splits, &device, threads, &bar)?;
            bar.finish();
            let checks = dataset.checksums();
            let path = table_path(out, PAPER_DIR, "ablations");
            run.record(&path, &rows, &checks).map_err(|e| e.to_string())?;
            run.record(&table_path(out, PAPER_DIR, "curves"), &curves, &checks)
                .map_err(|e| e.to_string())?;
            for r in &rows {
                println!("{:<70} {:<30} {:>8.2}", r.method, r.metric, r.value);
            }
            println!("wrote {}", path.display());
            Ok(())
        }
        (None, Some(arch)) => {
            let dataset = load_data(&cli)?;
            let splits = Splits::of(&plan, &dataset)?;
            let ctx = RowCtx { arch, dataset: &dataset, plan: &plan, run_id: &run.run_id };
            let bar = repro::cli::progress_bar(main_steps(arch, &plan, &splits), "main");
            let result = main_table(&ctx, &splits, &device, threads, &bar)?;
            bar.finish();
            let checks = dataset.checksums();
            let e = |e: repro::results::TableError| e.to_string();
            let main = table_path(out, PAPER_DIR, "main");
            // Means over every seed the table now holds (one-seed runs add up), derived under its
            // lock so that units finishing together each count the other.
            let summary_path = table_path(out, PAPER_DIR, "main_mean_std");
            let summary = run
                .record_with_summary(&main, &result.rows, &summary_path, |rows| summaries(rows, &ctx), &checks)
                .map_err(e)?;
            run.record(&table_path(out, PAPER_DIR, "ops"), &result.ops, &checks).map_err(e)?;
            run.record(&table_path(out, PAPER_DIR, "curves"), &result.curves, &checks).map_err(e)?;
            for s in &summary {
                println!("{:<80} {:<30} {:>7.2} ± {:.2} (n={})", s.method, s.quantity, s.mean, s.std, s.seeds);
            }
            for o in &result.ops {
                println!(
                    "{:<55} mul8x8 {:>10} mul32x32 {:>8} shifts {:>8} bytes {:>9}",
                    o.pipeline,
                    o.mul_8x8,
                    o.mul_32x32,
                    o.shifts,
                    o.bytes_moved.unwrap_or_default()
                );
            }
            println!("wrote {}", main.display());
            main_figure(&plan, out)
        }
        (None, None) => Err("nothing to do: pass --model mobilenetv2|mobilenetv1|resnet18|resnet50, or a subcommand (see --help)".into()),
    }
}

/// `--profile paper`: `--model`'s ImageNet rows ([`PaperRun`]: Tiny Finetuning from the checkpoint
/// of `--pretrained`, else the Conventional training from scratch) on the ImageNet folder of
/// `--data`, written to the paper profile's tables.
fn paper(cli: &Cli) -> Result<(), String> {
    let arch = match (&cli.command, cli.model) {
        (None, Some(arch)) => arch,
        _ => {
            return Err(
                "--profile paper runs the paper's ImageNet rows of one model: pass --model \
                 (resnet18 or resnet50 with --pretrained; mobilenetv1, mobilenetv2 or resnet18 \
                 without) and no subcommand"
                    .into(),
            );
        }
    };
    let args = &cli.run;
    let lengths = (cli.steps, args.epochs);
    let plan = PaperPlan::of(arch, args.pretrained.is_some(), lengths, cli.batch)?;
    args.refuse(
        &["--dataset", "--seeds"],
        "the paper-scale run trains one model on the ImageNet folder of --data",
    )?;
    let (train, val) = pretrained::imagenet_folders(args, paper_scale::SIDE)?;
    let device = quant_train::train::BackendKind::for_run(args)?;
    let ctx = args.start_paper_scale()?;
    let seed = args.seed.unwrap_or(0);
    let run = PaperRun {
        train: &train,
        val: &val,
        checkpoint: args.pretrained.as_deref(),
        arch,
        plan,
        seed,
        device,
        checkpoints: args.checkpoint_dir("f8net-checkpoints"),
    };
    let checksums = run.checksums()?;
    let bar = repro::cli::progress_bar(run.steps() as u64, "paper");
    let result = run.run(&bar)?;
    bar.finish();
    let stamp = RunStamp {
        profile: args.profile.name(),
        seed,
        epochs: result.reports.last().map_or(0, |(_, r)| r.epochs_run),
        run_id: &ctx.run.run_id,
    };
    let (rows, curves) = paper_scale::rows(&result, arch, plan, &stamp);
    ctx.record_tables(
        PAPER_DIR,
        vec![("main", rows), ("curves", curves)],
        &checksums,
    )
}

fn load_data(cli: &Cli) -> Result<repro::datasets::Dataset, String> {
    cli.run.load(cli.run.dataset_or(DatasetName::FashionMnist))
}

/// Draws [`f8net::figures::main_results`] from `<out>/f8net/main.csv` beside it.
fn main_figure(plan: &StagePlan, out: &std::path::Path) -> Result<(), String> {
    let e = |e: repro::results::TableError| e.to_string();
    let rows: Vec<repro::results::ResultRow> =
        repro::results::read_rows(&table_path(out, PAPER_DIR, "main")).map_err(e)?;
    let published = repro::published::PaperExperiments::published_of(PAPER_DIR).map_err(e)?;
    let mut svgs: Vec<(String, String)> = Vec::new();
    if let Some(svg) = f8net::figures::main_results(&rows, &published, plan.name()) {
        svgs.push(("main_top1.svg".into(), svg));
    }
    let curves_path = table_path(out, PAPER_DIR, "curves");
    let curves: Vec<repro::results::ResultRow> = if curves_path.exists() {
        repro::results::read_rows(&curves_path).map_err(e)?
    } else {
        Vec::new()
    };
    for &arch in <Arch as clap::ValueEnum>::value_variants() {
        let model = f8net::experiments::published_model(arch);
        let svg = f8net::figures::learning_curves(
            &curves,
            model,
            "official repo",
            plan.name(),
            plan.fp_epochs,
        );
        if let Some(svg) = svg {
            svgs.push((
                format!("curves_{}.svg", format!("{arch:?}").to_lowercase()),
                svg,
            ));
        }
    }
    for (name, svg) in svgs {
        let path = out.join(PAPER_DIR).join(name);
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn stats(plan: &StagePlan, run: &Run, out: &std::path::Path) -> Result<(), String> {
    let grid = match plan.profile {
        Profile::Smoke => Grid {
            n_sigma: 120,
            samples: 2000,
        },
        _ => Grid::PAPER,
    };
    let seed = plan.seeds[0].wrapping_add(1995);
    let official =
        repro::published::PaperExperiments::published_of(PAPER_DIR).map_err(|e| e.to_string())?;
    let result = statistics::run(grid, seed, plan.name(), &run.run_id, &official);
    let e = |e: repro::results::TableError| e.to_string();
    run.record(
        &table_path(out, PAPER_DIR, "stats_curves"),
        &result.curves,
        &[],
    )
    .map_err(e)?;
    run.record(
        &table_path(out, PAPER_DIR, "stats_constants"),
        &result.constants,
        &[],
    )
    .map_err(e)?;
    run.record(
        &table_path(out, PAPER_DIR, "stats_published"),
        &result.published,
        &[],
    )
    .map_err(e)?;
    let dir = out.join(PAPER_DIR);
    for (name, svg) in &result.svgs {
        std::fs::write(dir.join(name), svg)
            .map_err(|err| format!("{}: {err}", dir.join(name).display()))?;
    }
    for c in result
        .constants
        .iter()
        .filter(|c| !c.quantity.starts_with("sigma_threshold"))
    {
        println!(
            "{:<9} {:<15} {:<32} {:.6}",
            c.format, c.kind, c.quantity, c.value
        );
    }
    for r in &result.published {
        println!("{:<50} {:<45} {:.5}", r.method, r.metric, r.value);
    }
    println!("wrote {}", dir.display());
    Ok(())
}
