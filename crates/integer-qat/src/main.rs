//! `integer-qat`: the experiments of Jacob et al. 2018 on MNIST-scale proxies
//! (`experiments/integer-qat/README.md`).
//!
//! Each subcommand runs one experiment of [`integer_qat::experiments`], which mirrors one published
//! table or figure.

use burn::prelude::Device;
use clap::{Parser, Subcommand};
use integer_qat::experiments::PAPER_DIR;
use integer_qat::experiments::{
    Ctx, agreement, bits, depth, figures, latency, relu, schemes, shapes,
};
use integer_qat::paper_scale::{self, PaperDepth};
use quant_train::BackendKind;
use quant_train::ModelSpec;
use quant_train::pretrained::PaperInputs;
use repro::Profile;
use repro::cli::RunArgs;
use repro::datasets::DatasetName;
use repro::results::RunStamp;

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

#[derive(Subcommand, Debug, Clone, PartialEq)]
enum Command {
    /// E1 (Table 4.1) + E8: ResNet depth sweep, float vs int8 PTQ vs int8 QAT on the integer
    /// engine; engine-vs-simulation agreement and model size. With `--profile paper`: Table 4.1's
    /// ImageNet row from a published checkpoint (`--data IMAGENET --pretrained FILE`).
    Depth {
        /// `--profile paper` only: the checkpoint's architecture, one of the zoo's ImageNet
        /// models (imagenet-resnet50, the paper's; imagenet-resnet18, imagenet-mbv1:α,
        /// imagenet-mbv2:α).
        #[arg(long)]
        arch: Option<String>,
    },
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
    /// E5 at the paper's own shapes: batch-1 latency of the full-size MobileNetV1 (1000 classes)
    /// at the grid's widths and the companion table's resolutions, float against the integer
    /// engine at 1 and 2 threads; untrained models (latency does not depend on the weights), so
    /// no ImageNet is needed. Every seed a fresh model.
    Shapes,
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
    if cli.run.profile == Profile::Paper {
        return match command {
            Command::Depth { arch } => paper_depth(&cli.run, arch.as_deref(), device),
            _ => Err(
                "--profile paper runs `depth` only (Table 4.1's ImageNet row); the other \
                      experiments run on the proxies: use --profile full"
                    .into(),
            ),
        };
    }
    if let Command::Depth { arch: Some(_) } = command {
        return Err(
            "--arch picks the checkpoint's architecture of --profile paper; the proxies' \
                    ResNets are fixed: drop --arch or add --profile paper"
                .into(),
        );
    }
    let started = cli.run.start()?;
    let data = cli
        .run
        .load(cli.run.dataset_or(DatasetName::FashionMnist))?;
    let checkpoints = cli.run.checkpoint_dir("integer-qat-checkpoints");
    let ctx = Ctx::new(cli.run, &started, data, device, checkpoints);
    match command {
        Command::Depth { .. } => depth(&ctx),
        Command::Schemes => schemes(&ctx),
        Command::Relu => relu(&ctx),
        Command::Bits => bits(&ctx),
        Command::Latency { width } => latency(&ctx, width),
        Command::Shapes => shapes(&ctx),
        Command::Agreement => agreement(&ctx),
        Command::Figures => unreachable!("drawn above without a data set"),
        Command::All => {
            depth(&ctx)?;
            schemes(&ctx)?;
            relu(&ctx)?;
            bits(&ctx)?;
            latency(&ctx, None)?;
            shapes(&ctx)
        }
    }?;
    eprintln!("done in {:.0} s", ctx.elapsed_seconds());
    Ok(())
}

/// `depth --profile paper`: [`PaperDepth`] from the ImageNet folder and checkpoint the flags name,
/// its rows written to the paper profile's tables.
fn paper_depth(args: &RunArgs, arch: Option<&str>, device: Device) -> Result<(), String> {
    args.refuse(
        &["--dataset", "--seeds"],
        "the paper-scale run fine-tunes one checkpoint on the ImageNet folder of --data",
    )?;
    let arch: ModelSpec = arch.unwrap_or("imagenet-resnet50").parse()?;
    let model = paper_scale::model_name(&arch).ok_or(format!(
        "--arch {arch}: the paper-scale run takes the zoo's ImageNet models \
         (imagenet-resnet50, imagenet-resnet18, imagenet-mbv1:α, imagenet-mbv2:α)"
    ))?;
    let inputs = PaperInputs::from_args(args, paper_scale::SIDE, "torchvision's resnet50 weights")?;
    let ctx = args.start_paper_scale()?;
    let seed = args.seed.unwrap_or(0);
    let epochs = args.epochs.unwrap_or(paper_scale::EPOCHS);
    let run = PaperDepth {
        inputs: &inputs,
        arch: arch.clone(),
        epochs,
        seed,
        device,
        checkpoints: args
            .checkpoint_dir("integer-qat-checkpoints")
            .map(|d| d.join(format!("paper-{arch}"))),
    };
    let checksums = inputs.checksums()?;
    let result = run.run()?;
    let stamp = RunStamp {
        profile: args.profile.name(),
        seed,
        epochs,
        run_id: &ctx.run.run_id,
    };
    let (rows, curves) = paper_scale::rows(&result, &model, &stamp);
    ctx.record_tables(
        PAPER_DIR,
        vec![("e1_depth", rows), ("curves", curves)],
        &checksums,
    )
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
