//! `adaptivfloat`: quantize tensors with the paper's five formats and reproduce its experiments.

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Read;
use std::process::ExitCode;

use adaptivfloat::accuracy::{AccuracyPlan, Experiment, Proxy};
use adaptivfloat::rmse::{self, Family, Stamp, SyntheticSize};
use adaptivfloat::{PAPER_DIR, imagenet, tensor_cli};
use quant_core::formats::FormatKind;
use quant_train::train::BackendKind;
use repro::Profile;
use repro::cli::{RunArgs, RunContext};
use repro::manifest::Run;
use repro::results::table_path;

#[derive(Parser)]
#[command(
    version,
    about = "AdaptivFloat (Tambe et al. 2020): number formats and the paper's experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Adaptivfloat,
    Float,
    Bfp,
    Uniform,
    Posit,
}

impl From<FormatArg> for FormatKind {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Adaptivfloat => FormatKind::AdaptivFloat,
            FormatArg::Float => FormatKind::Float,
            FormatArg::Bfp => FormatKind::Bfp,
            FormatArg::Uniform => FormatKind::Uniform,
            FormatArg::Posit => FormatKind::Posit,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    /// Row-token Transformer on MNIST (for the WMT'17 Transformer).
    Transformer,
    /// MLP 784-256-256-10 on Fashion-MNIST (for the LibriSpeech Seq2Seq).
    Mlp,
    /// Conv-BN CNN on Fashion-MNIST (for ResNet-50).
    Cnn,
    /// All three, one after the other.
    All,
}

/// The run's stamp on every RMSE row: profile, seed (default 0) and run id.
fn stamp(args: &RunArgs, run: &Run) -> Stamp {
    Stamp {
        profile: args.profile.name().into(),
        seed: args.seed.unwrap_or(0),
        run_id: run.run_id.clone(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Quantize one tensor read from stdin (whitespace-separated numbers); prints one value per line.
    Quantize {
        /// Number format.
        #[arg(long, value_enum)]
        format: FormatArg,
        /// Word size n in bits: 2-16 for adaptivfloat, bfp and uniform; 3-16 for float and posit.
        #[arg(long)]
        bits: u32,
        /// Exponent bits e (es for posit): adaptivfloat 1 to min(n-1, 8), float 2 to min(n-1, 8),
        /// posit 0 to 4; bfp and uniform take none. Default: the paper's (adaptivfloat 3; float 3
        /// up to n = 4, else 4; posit 0 up to n = 4, else 1).
        #[arg(long)]
        exp: Option<u32>,
        /// Print the n-bit codes (hex) instead of the values.
        #[arg(long)]
        codes: bool,
    },
    /// Tables 1-3 and the range stress on a stand-in model (trained here): accuracy.csv,
    /// range_stress.csv and the trained-weight RMSE rows of format_rmse.csv.
    Accuracy {
        /// Stand-in model (the paper model it replaces is in the rows' `model` column). Each
        /// stand-in has its data set; seeds 0, 1, 2 unless the flags say otherwise, and each (stand-in,
        /// seed) is a unit whose rows are written when it ends, so `--seed 2 --seeds 1` runs one
        /// unit.
        #[arg(long, value_enum, default_value = "all")]
        model: ModelArg,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Format-level RMSE vs bit width on seeded synthetic families, and the exponent-width search
    /// (P1b, P1c in experiments/adaptivfloat/README.md): <out>/adaptivfloat/format_rmse.csv and
    /// exp_search.csv.
    Rmse {
        #[command(flatten)]
        args: RunArgs,
    },
    /// Redraw the figures (RMSE against bit width per format; Tables 2 and 3 against bits with the paper's
    /// numbers) from the committed tables, without training; `rmse` and `accuracy` draw them too.
    Figures {
        #[command(flatten)]
        args: RunArgs,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Quantize {
            format,
            bits,
            exp,
            codes,
        } => {
            let format = tensor_cli::format_from_flags(format.into(), bits, exp)?;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            let (lines, param) = tensor_cli::run(&format, &text, codes)?;
            eprintln!("{param}");
            println!("{}", lines.join("\n"));
            Ok(())
        }
        Command::Rmse { args } => rmse_tables(&args).and_then(|()| figures(&args)),
        Command::Figures { args } => figures(&args),
        Command::Accuracy { model, args } if args.profile == Profile::Paper => {
            paper_accuracy(model, &args)
        }
        Command::Accuracy { model, args } => {
            args.refuse(
                &["--dataset"],
                "each stand-in has its data set (Transformer: MNIST, MLP and CNN: Fashion-MNIST)",
            )?;
            let proxies = match model {
                ModelArg::Transformer => vec![Proxy::Transformer],
                ModelArg::Mlp => vec![Proxy::Mlp],
                ModelArg::Cnn => vec![Proxy::Cnn],
                ModelArg::All => vec![Proxy::Mlp, Proxy::Cnn, Proxy::Transformer],
            };
            let ctx = args.start()?;
            for seed in args.seed_list(0, 3) {
                for &proxy in &proxies {
                    accuracy_tables(proxy, seed, &args, &ctx)?;
                }
            }
            figures(&args)
        }
    }
}

/// `--profile paper`: Tables 1 and 2 (PTQ) of the paper's own ResNet-50 on ImageNet.
fn paper_accuracy(model: ModelArg, args: &RunArgs) -> Result<(), String> {
    if matches!(model, ModelArg::Transformer | ModelArg::Mlp) {
        return Err(
            "--profile paper runs the paper's ResNet-50 on ImageNet (its Transformer on \
             WMT'17 and Seq2Seq on LibriSpeech are not built): use --model cnn or all"
                .into(),
        );
    }
    args.refuse(
        &["--dataset", "--seed", "--seeds", "--epochs"],
        "the paper-scale run scores one published checkpoint on ImageNet's validation images",
    )?;
    let root = args.data.as_deref().ok_or(
        "--profile paper: pass --data with the ImageNet folder (val/<synset>/*.JPEG inside)",
    )?;
    let checkpoint = args.pretrained.as_deref().ok_or(
        "--profile paper: pass --pretrained with a ResNet-50 checkpoint (torchvision's resnet50 \
         weights, .pth or .safetensors)",
    )?;
    let ctx = args.start_paper_scale()?;
    let val = repro::image_folder::ImageFolder::open(root, "val", 3, imagenet::SIDE)?;
    let paper = imagenet::PaperRun {
        val: &val,
        checkpoint,
        bits: &[16, 8, 7, 6, 5, 4],
        device: BackendKind::for_run(args)?,
        profile: args.profile.name(),
        run_id: &ctx.run.run_id,
    };
    let checksums = paper.checksums()?;
    let rows = paper.rows()?;
    let path = table_path(ctx.out(), PAPER_DIR, "accuracy");
    let n = ctx
        .run
        .record(&path, &rows, &checksums)
        .map_err(|e| e.to_string())?;
    eprintln!("{}: {n} rows", path.display());
    for r in &rows {
        println!(
            "{} | {} | W{} | {} = {:.3}",
            r.model, r.method, r.w_bits, r.metric, r.value
        );
    }
    Ok(())
}

/// The profile's plan for one stand-in.
fn plan(proxy: Proxy, args: &RunArgs, seed: u64) -> AccuracyPlan {
    let full = args.profile == Profile::Full;
    // Enough epochs for the validation curve to flatten under the cosine decay (the curves are
    // committed beside the tables; check C1 of claims.toml judges them).
    let default_epochs = match proxy {
        Proxy::Mlp => 15,
        Proxy::Cnn => 12,
        Proxy::Transformer => 10,
    };
    AccuracyPlan {
        profile: args.profile.name().into(),
        seed,
        epochs: args.epochs.unwrap_or(if full { default_epochs } else { 1 }),
        train_images: if full { usize::MAX } else { 512 },
        validation_images: if full { 5_000 } else { 128 },
        test_images: if full { 10_000 } else { 256 },
        calib_images: if full { 1000 } else { 128 },
        // Retraining runs two passes over half the training set: two points of its validation
        // curve for the cost of one pass over all of it (60 runs per stand-in and seed).
        qar_images: if full { 27_500 } else { 256 },
        qar_epochs: 2,
        ptq_bits: if full {
            vec![16, 8, 7, 6, 5, 4]
        } else {
            vec![8, 4]
        },
        qar_bits: if full {
            vec![16, 8, 7, 6, 5, 4]
        } else {
            vec![4]
        },
        stress_bits: if full { vec![8, 6, 5, 4] } else { vec![4] },
        stress_alphas: match (full, proxy) {
            (true, Proxy::Mlp) => vec![4.0, 16.0, 64.0],
            _ => vec![16.0],
        },
        stress_fraction: 0.02,
        checkpoint_dir: args.checkpoint_dir("adaptivfloat-checkpoints"),
    }
}

/// Trains one stand-in with one seed (a unit of the full profile) and writes its rows.
fn accuracy_tables(
    proxy: Proxy,
    seed: u64,
    args: &RunArgs,
    ctx: &RunContext,
) -> Result<(), String> {
    let plan = plan(proxy, args, seed);
    let run = &ctx.run;
    let dataset = args.load(proxy.dataset())?;
    let checksums = dataset.checksums();
    let (train, validation) = dataset.train.split_validation(plan.validation_images)?;
    let (train, calib) = train.split_validation(plan.calib_images)?;
    let experiment = Experiment {
        proxy,
        plan: &plan,
        train: train.truncated(plan.train_images),
        validation: std::sync::Arc::new(validation),
        calib,
        test: dataset.test.truncated(plan.test_images),
        device: BackendKind::for_run(args)?,
        run_id: run.run_id.clone(),
    };
    let outcome = experiment.run()?;
    let out = ctx.out();
    let write = |table: &str, n: Result<usize, repro::results::TableError>| -> Result<(), String> {
        let n = n.map_err(|e| e.to_string())?;
        eprintln!("{}: {n} rows", table_path(out, PAPER_DIR, table).display());
        Ok(())
    };
    for (table, rows) in [
        ("accuracy", &outcome.table_rows),
        ("curves", &outcome.curve_rows),
        ("range_stress", &outcome.stress_rows),
    ] {
        if !rows.is_empty() {
            write(
                table,
                run.record(&table_path(out, PAPER_DIR, table), rows, &checksums),
            )?;
        }
    }
    write(
        "format_rmse",
        run.record(
            &table_path(out, PAPER_DIR, "format_rmse"),
            &outcome.rmse_rows,
            &checksums,
        ),
    )?;
    for r in &outcome.table_rows {
        println!(
            "{} | {} | W{} A{} | {} = {:.2}",
            r.model, r.method, r.w_bits, r.a_bits, r.metric, r.value
        );
    }
    Ok(())
}

/// P1b and P1c: every format configuration on every synthetic family.
fn rmse_tables(args: &RunArgs) -> Result<(), String> {
    let ctx = args.start()?;
    let run = &ctx.run;
    let stamp = stamp(args, run);
    let size = match args.profile {
        Profile::Smoke => SyntheticSize {
            layers: 3,
            min_len: 500,
            max_len: 2000,
        },
        // `start` refused the paper profile.
        Profile::Full | Profile::Paper => SyntheticSize {
            layers: 64,
            min_len: 16_384,
            max_len: 262_144,
        },
    };
    let bar = repro::cli::progress_bar(Family::ALL.len() as u64, "rmse families");
    let (mut rmse_rows, mut search_rows) = (Vec::new(), Vec::new());
    for family in Family::ALL {
        let layers = rmse::synthetic_layers(family, size, stamp.seed);
        for bits in rmse::RMSE_BITS {
            let configs = rmse::configurations(bits, true);
            let per_layer = rmse::per_layer_rmse(&configs, &layers);
            let paper: Vec<usize> = configs
                .iter()
                .enumerate()
                .filter(|(_, f)| f.exponent() == f.kind().paper_exponent(bits))
                .map(|(i, _)| i)
                .collect();
            let pick = |ix: &[usize]| -> (Vec<_>, Vec<_>) {
                ix.iter()
                    .map(|&i| (configs[i].clone(), per_layer[i].clone()))
                    .unzip()
            };
            let (paper_configs, paper_errors) = pick(&paper);
            rmse_rows.extend(rmse::rmse_rows(
                "P1b synthetic",
                family.name(),
                &paper_configs,
                &paper_errors,
                &stamp,
            ));
            let searched: Vec<usize> = (0..configs.len()).filter(|i| !paper.contains(i)).collect();
            let (search_configs, search_errors) = pick(&searched);
            rmse_rows.extend(rmse::rmse_rows(
                "P1c exponent search",
                family.name(),
                &search_configs,
                &search_errors,
                &stamp,
            ));
            search_rows.extend(rmse::exp_search_rows(
                family.name(),
                &configs,
                &per_layer,
                &stamp,
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let out = ctx.out();
    let record = |table: &str, n: Result<usize, _>| -> Result<(), String> {
        let n = n.map_err(|e: repro::results::TableError| e.to_string())?;
        eprintln!("{}: {n} rows", table_path(out, PAPER_DIR, table).display());
        Ok(())
    };
    let rmse_path = table_path(out, PAPER_DIR, "format_rmse");
    record("format_rmse", run.record(&rmse_path, &rmse_rows, &[]))?;
    let search_path = table_path(out, PAPER_DIR, "exp_search");
    record("exp_search", run.record(&search_path, &search_rows, &[]))?;
    print_search(&search_rows);
    Ok(())
}

/// Draws [`adaptivfloat::figures`] from the tables under `<out>/adaptivfloat/`, beside them.
fn figures(args: &RunArgs) -> Result<(), String> {
    let out = args.out_root();
    let e = |e: repro::results::TableError| e.to_string();
    let rmse: Vec<rmse::RmseRow> =
        repro::results::read_rows(&table_path(&out, PAPER_DIR, "format_rmse")).map_err(e)?;
    let accuracy: Vec<repro::results::ResultRow> =
        repro::results::read_rows(&table_path(&out, PAPER_DIR, "accuracy")).map_err(e)?;
    let published = repro::published::PaperExperiments::published_of(PAPER_DIR).map_err(e)?;
    let profile = args.profile.name();
    let curves: Vec<repro::results::ResultRow> =
        repro::results::read_rows(&table_path(&out, PAPER_DIR, "curves")).map_err(e)?;
    let figures = adaptivfloat::figures::rmse_vs_bits(&rmse, profile)
        .into_iter()
        .chain(adaptivfloat::figures::accuracy_vs_bits(
            &accuracy, &published, profile,
        ))
        .chain(adaptivfloat::figures::learning_curves(&curves, profile));
    for (name, svg) in figures {
        let path = out.join(PAPER_DIR).join(&name);
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_search(rows: &[rmse::ExpSearchRow]) {
    println!("family | format | n | best e (mean RMSE) | paper e (mean RMSE)");
    for r in rows {
        println!(
            "{} | {} | {} | {} ({:.3e}) | {} ({:.3e})",
            r.family,
            r.format,
            r.bits,
            r.best_exponent,
            r.best_mean_rmse,
            r.paper_exponent,
            r.paper_mean_rmse
        );
    }
}
