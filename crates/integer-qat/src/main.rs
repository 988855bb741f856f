//! `integer-qat`: the experiments of Jacob et al. 2018 on MNIST-scale proxies
//! (`experiments/integer-qat/README.md`).
//!
//! Each subcommand runs one experiment of [`integer_qat::experiments`], which mirrors one published
//! table or figure.

use clap::{Parser, Subcommand};
use integer_qat::experiments::{Ctx, agreement, bits, depth, figures, latency, relu, schemes};
use quant_train::BackendKind;
use repro::cli::RunArgs;
use repro::datasets::DatasetName;

#[derive(Parser, Debug)]
#[command(
    name = "integer-qat",
    about = "Jacob et al. 2018: QAT in Burn, integer-only inference in quant-core",
    long_about = "Jacob et al. 2018: QAT in Burn, integer-only inference in quant-core.\n\n\
                  Each experiment fixes its bit widths (no flag sets them): depth and latency run 8-bit \
                  weights and activations, schemes the columns of Table 4.2 (1, 2 and 5-bit weights), \
                  relu adds 7/7 and the 5/5, 4/4 stress rows, bits sweeps weight and activation widths \
                  from 8 down to 4. The affine quantizers take 2 to 8 bits. \
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
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq)]
enum Command {
    /// E1 (Table 4.1) + E8: ResNet depth sweep, float vs int8 PTQ vs int8 QAT on the integer
    /// engine; engine-vs-simulation agreement and model size.
    Depth,
    /// E2 (Table 4.2): the 8/8 integer-only model beside binary (BWN), ternary (TWN, and with
    /// 8-bit activations FGQ) and 5-bit (INQ) weights, fine-tuned from E1's float ResNet-14.
    Schemes,
    /// E3 (Table 4.3): ReLU vs ReLU6 at float, 8/8, 7/7 (+ 5/5, 4/4 stress rows), mean and std
    /// over seeds.
    Relu,
    /// E4 (arXiv Table 4.7): weight x activation bits in {8..4}, relative change vs float.
    Bits,
    /// E5/E6 (Figs 1.1c/4.1/4.2, companion table, arXiv Table 4.6): MobileNetV1 widths x
    /// resolutions, accuracy and batch-1 latency (float Burn flex vs integer engine, 1 and 2
    /// threads), plus a plot; every seed.
    Latency {
        /// Only this width multiplier of the profile's grid (a unit of the full profile is one
        /// seed and one width).
        #[arg(long)]
        width: Option<f64>,
    },
    /// Redraw the figures drawn from the committed tables (the Table 4.7 heat map beside the
    /// paper's, the learning curves, the E5 accuracy-latency plot) without training; each
    /// experiment draws them too.
    Figures,
    /// E8 diagnosis (prints, writes no rows): for every E1 model, PTQ and QAT, the integer
    /// engine's codes after each block against the fake-quantized f32 model (run from the
    /// pixels, and each block alone on the engine's input) and against the integer simulation.
    Agreement,
    /// Everything above except `agreement`, in order.
    All,
}

fn run(cli: Cli) -> Result<(), String> {
    let device = BackendKind::for_run(&cli.run)?;
    cli.run.validate()?;
    let command = cli.command.unwrap_or(Command::All);
    if command == Command::Figures {
        return figures(&cli.run.out_root(), cli.run.profile);
    }
    let started = cli.run.start()?;
    let data = cli
        .run
        .load(cli.run.dataset_or(DatasetName::FashionMnist))?;
    let checkpoints = cli.run.checkpoint_dir("integer-qat-checkpoints");
    let ctx = Ctx::new(cli.run, &started, data, device, checkpoints);
    match command {
        Command::Depth => depth(&ctx),
        Command::Schemes => schemes(&ctx),
        Command::Relu => relu(&ctx),
        Command::Bits => bits(&ctx),
        Command::Latency { width } => latency(&ctx, width),
        Command::Agreement => agreement(&ctx),
        Command::Figures => unreachable!("drawn above without a data set"),
        Command::All => {
            depth(&ctx)?;
            schemes(&ctx)?;
            relu(&ctx)?;
            bits(&ctx)?;
            latency(&ctx, None)
        }
    }?;
    eprintln!("done in {:.0} s", ctx.elapsed_seconds());
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
