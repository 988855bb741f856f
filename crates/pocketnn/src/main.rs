//! `pocketnn`: the experiments of Song & Lin (2022), PocketNN, one subcommand each.
//!
//! - `train`: one integer-only DFA run, one line per epoch (the reference's printout).
//! - `reproduce`: every run `make reproduce-pocketnn` needs, with the float baseline.
//! - `bench`: seconds per epoch on both data sets.

use clap::{Args, Parser, Subcommand, ValueEnum};
use pocketnn::activation::PocketActivation;
use pocketnn::float_baseline;
use pocketnn::network::{INPUT_MAX, Network};
use pocketnn::rng::{GlibcRand, Pcg32, RunRng};
use pocketnn::tables::{
    self, EpochSetting, FLOAT_BITS, METHOD_FLOAT, METRIC_TEST, PAPER_DIR, RowContext, float_source,
    mirrored_rows, model_name, paper_epochs, paper_widths, pct, train_pass_epochs,
};
use pocketnn::train::{EpochStats, Progress, Split, TrainConfig, train};
use quant_train::train::BackendKind;
use repro::Profile;
use repro::cli::{RunArgs, RunContext};
use repro::datasets::{Dataset, DatasetName};
use repro::results::{ResultRow, table_path};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "pocketnn",
    version,
    about = "PocketNN (Song & Lin 2022): integer-only DFA training, bit-exact with the reference C++",
    long_about = "PocketNN (Song & Lin 2022): integer-only DFA training, bit-exact with the reference C++.\n\n\
                  Bit widths are the paper's and no flag changes them: 8-bit input pixels (0-255), int32 \
                  arithmetic (an overflow is checked and stops the run), weights and biases clamped to \
                  int16's [-32767, 32767], activations in [-127, 127] (pocket tanh), [1, 127] (pocket \
                  sigmoid), [0, 127] (pocket ReLU) or int16 (leaky ReLU). Details: \
                  experiments/pocketnn/README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one network integer-only with DFA; prints one line per epoch and writes
    /// results/pocketnn/epochs.csv (and accuracy.csv rows when the run mirrors a published setting).
    Train(TrainArgs),
    /// Run everything `make reproduce-pocketnn` needs: MNIST 30 epochs and Fashion-MNIST 20 epochs, each
    /// with --rng glibc and --rng pcg (their first 3 and 10 epochs are the 3- and 10-epoch runs), plus
    /// the float back-propagation baselines and the float-minus-PocketNN gaps.
    Reproduce(Common),
    /// Train the float back-propagation MLP with the same widths in Burn (Adam 1e-3 with a cosine
    /// decay, batch 64, ReLU): MNIST, seed 1 and the long PocketNN run's epochs (30 for MNIST, 20
    /// for Fashion-MNIST) unless the flags say otherwise.
    FloatBaseline(Common),
    /// Seconds per training epoch (shuffle, 3000 DFA steps, test pass) on both data sets (or
    /// --dataset's), 2 epochs unless --epochs says otherwise.
    Bench(Common),
    /// Redraw the figures (test accuracy per epoch against the author's runs) from the committed
    /// epochs.csv, without training; `reproduce` draws them too.
    Figures(Common),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RngKind {
    /// glibc's rand(), seeded by srand(seed): replays the reference C++ run on Linux (seed 1 = unseeded).
    Glibc,
    /// PCG32 with unbiased bounded draws: the default for new experiments.
    Pcg,
}

impl RngKind {
    fn name(self) -> &'static str {
        match self {
            RngKind::Glibc => "glibc",
            RngKind::Pcg => "pcg",
        }
    }

    /// srand(1) is what an unseeded C program uses; PCG's default is an arbitrary fixed seed.
    fn default_seed(self) -> u64 {
        match self {
            RngKind::Glibc => 1,
            RngKind::Pcg => 2022,
        }
    }

    fn build(self, seed: u64) -> Result<RunRng, String> {
        match self {
            RngKind::Glibc => u32::try_from(seed)
                .map(|s| RunRng::Glibc(GlibcRand::new(s)))
                .map_err(|_| {
                    format!(
                        "--seed {seed} does not fit srand's unsigned int: use a seed below 2^32"
                    )
                }),
            // Stream constant: "PKNN".
            RngKind::Pcg => Ok(RunRng::Pcg(Pcg32::new(seed, 0x504B_4E4E))),
        }
    }
}

/// A command that takes only the shared arguments.
#[derive(Args)]
struct Common {
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct TrainArgs {
    #[arg(long, value_enum, default_value = "pcg")]
    rng: RngKind,
    /// Mini-batch size; above the int32-safe bound a warning names it.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Learning-rate inverse at epoch 1 (doubles every 10 epochs).
    #[arg(long, default_value_t = 1000)]
    lr_inv: i32,
    /// Layer widths, input to classes, comma-separated (default: the paper's for the data set).
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    #[arg(long, value_enum, default_value = "pocket-tanh")]
    activation: PocketActivation,
    /// Data set MNIST, 3 epochs (the reference ships 3) and seed 1 for glibc (an unseeded C
    /// program) or 2022 for pcg, unless the flags say otherwise; one run per seed.
    #[command(flatten)]
    run: RunArgs,
}

/// Train and test images the smoke profile keeps.
const SMOKE_TRAIN: usize = 1000;
const SMOKE_TEST: usize = 200;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = match &cli.command {
        Command::Train(args) => &args.run,
        Command::Reproduce(c)
        | Command::FloatBaseline(c)
        | Command::Bench(c)
        | Command::Figures(c) => &c.run,
    };
    let refused = run.refuse(
        &["--checkpoints"],
        "PocketNN's runs take seconds per epoch and keep no checkpoints",
    );
    let result = refused.and_then(|()| match cli.command {
        Command::Train(args) => cmd_train(&args),
        Command::Reproduce(common) => cmd_reproduce(&common.run),
        Command::FloatBaseline(common) => cmd_float(&common.run),
        Command::Bench(common) => cmd_bench(&common.run),
        Command::Figures(common) => cmd_figures(&common.run),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The data set, cut to a slice on the smoke profile.
fn load_data(args: &RunArgs, dataset: DatasetName) -> Result<Dataset, String> {
    let mut data = args.load(dataset)?;
    if args.profile == Profile::Smoke {
        data.train = data.train.truncated(SMOKE_TRAIN);
        data.test = data.test.truncated(SMOKE_TEST);
    }
    Ok(data)
}

/// The data sets a command runs: `--dataset`'s (one of the paper's two), else both.
fn datasets(args: &RunArgs) -> Result<Vec<DatasetName>, String> {
    match args.dataset {
        Some(_) => Ok(vec![args.grey_dataset_or(DatasetName::Mnist, "pocketnn")?]),
        None => Ok(vec![DatasetName::Mnist, DatasetName::FashionMnist]),
    }
}

/// One configured PocketNN run.
struct RunSpec {
    dataset: DatasetName,
    epochs: u32,
    rng: RngKind,
    seed: u64,
    config: TrainConfig,
    widths: Vec<usize>,
    activation: PocketActivation,
}

impl RunSpec {
    fn paper(dataset: DatasetName, epochs: u32, rng: RngKind, seed: u64) -> Self {
        RunSpec {
            dataset,
            epochs,
            rng,
            seed,
            config: TrainConfig {
                epochs,
                ..TrainConfig::default()
            },
            widths: paper_widths(dataset).to_vec(),
            activation: PocketActivation::PocketTanh,
        }
    }

    /// The reference's own configuration, whose runs may stand for published numbers.
    fn is_reference_setting(&self) -> bool {
        self.widths == paper_widths(self.dataset)
            && self.activation == PocketActivation::PocketTanh
            && self.config
                == TrainConfig {
                    epochs: self.epochs,
                    ..TrainConfig::default()
                }
    }
}

/// Builds the network and checks the data and hyper-parameters against it.
fn prepare<'a>(
    spec: &RunSpec,
    data: &'a Dataset,
) -> Result<(Network, Split<'a>, Split<'a>), String> {
    for (flag, value) in [
        ("--batch", spec.config.batch as i64),
        ("--lr-inv", i64::from(spec.config.lr_inv)),
        ("--epochs", i64::from(spec.epochs)),
    ] {
        if value < 1 {
            return Err(format!("{flag} {value}: use 1 or more"));
        }
    }
    let net = Network::new(&spec.widths, spec.activation).map_err(|e| e.to_string())?;
    let safe = net.max_safe_batch(INPUT_MAX);
    if spec.config.batch > safe {
        let (what, bound) = net
            .dfa_bounds(spec.config.batch, INPUT_MAX)
            .into_iter()
            .max_by_key(|(_, b)| *b)
            .unwrap_or_default();
        eprintln!(
            "warning: batch {} could overflow int32 in the {what} (worst case {bound} > {}); at most {safe} is provably safe. Overflow is checked and stops the run.",
            spec.config.batch,
            i32::MAX
        );
    }
    let train_split = Split::new(&data.train, &net, "train set")?;
    let test_split = Split::new(&data.test, &net, "test set")?;
    if train_split.len() < spec.config.batch {
        return Err(format!(
            "the train set has {} images, fewer than one batch of {}: lower --batch",
            train_split.len(),
            spec.config.batch
        ));
    }
    Ok((net, train_split, test_split))
}

/// Prints one epoch as the reference does (plus the learning-rate inverse and the wall time).
fn print_epoch(s: &EpochStats, n_train: usize, n_test: usize) {
    println!(
        "epoch {:>2}: SumLoss {:>8}  train {:>5}/{n_train} ({:.4}%)  test {:>5}/{n_test} ({:.2}%)  lrInv {}  {:.2} s",
        s.epoch,
        s.sum_loss,
        s.train_correct,
        pct(s.train_correct, n_train),
        s.test_correct,
        pct(s.test_correct, n_test),
        s.lr_inv,
        s.elapsed.as_secs_f64()
    );
    if let Some(pass) = s.train_pass_correct {
        println!(
            "          training-set pass after epoch {}: {pass}/{n_train} ({:.4}%)",
            s.epoch,
            pct(pass, n_train)
        );
    }
}

/// Trains one run, prints its epochs, and records its rows. Returns the per-epoch stats.
fn run_one(spec: &RunSpec, data: &Dataset, ctx: &RunContext) -> Result<Vec<EpochStats>, String> {
    let run = &ctx.run;
    let (mut net, train_split, test_split) = prepare(spec, data)?;
    let mut rng = spec.rng.build(spec.seed)?;
    let label = format!("{} {} seed {}", spec.dataset, spec.rng.name(), spec.seed);
    let bar = repro::cli::progress_bar(
        (train_split.len() / spec.config.batch) as u64,
        &format!("{label} epoch 1"),
    );
    println!(
        "{label}: {} epochs, widths {:?}, batch {}, lrInv {}",
        spec.epochs, spec.widths, spec.config.batch, spec.config.lr_inv
    );
    let (n_train, n_test) = (train_split.len(), test_split.len());
    let mut pass_at = vec![spec.epochs];
    if spec.is_reference_setting() {
        pass_at.extend(train_pass_epochs(spec.dataset));
    }
    let history = train(
        &mut net,
        &train_split,
        &test_split,
        &spec.config,
        &pass_at,
        &mut rng,
        |p| match p {
            Progress::Batch(_) => bar.inc(1),
            Progress::Epoch(s) => {
                bar.suspend(|| print_epoch(s, n_train, n_test));
                bar.reset();
                bar.set_prefix(format!("{label} epoch {}", s.epoch + 1));
            }
        },
    )
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();

    let out = ctx.out();
    let checksums = data.checksums();
    let setting = EpochSetting {
        dataset: spec.dataset,
        profile: run.profile.clone(),
        model: model_name(&spec.widths),
        activation: spec.activation.to_possible_value().map_or_else(
            || format!("{:?}", spec.activation),
            |v| v.get_name().to_string(),
        ),
        batch: spec.config.batch,
        lr_inv: spec.config.lr_inv,
        rng: spec.rng.name().into(),
        seed: spec.seed,
        epochs_total: spec.epochs,
    };
    let epoch_rows: Vec<_> = history.iter().map(|s| setting.row(s)).collect();
    run.record(
        &table_path(out, PAPER_DIR, "epochs"),
        &epoch_rows,
        &checksums,
    )
    .map_err(|e| e.to_string())?;
    if spec.is_reference_setting() {
        let ctx = RowContext {
            dataset: spec.dataset,
            model: model_name(&spec.widths),
            profile: run.profile.clone(),
            seed: spec.seed,
            epochs: spec.epochs,
            run_id: run.run_id.clone(),
        };
        let rows = mirrored_rows(&ctx, &history, n_train, n_test);
        if !rows.is_empty() {
            run.record(&table_path(out, PAPER_DIR, "accuracy"), &rows, &checksums)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(history)
}

fn cmd_train(args: &TrainArgs) -> Result<(), String> {
    let ctx = args.run.start()?;
    let dataset = args.run.grey_dataset_or(DatasetName::Mnist, "pocketnn")?;
    let epochs = args.run.epochs.unwrap_or(3);
    let data = load_data(&args.run, dataset)?;
    for seed in args.run.seed_list(args.rng.default_seed(), 1) {
        let spec = RunSpec {
            dataset,
            epochs,
            rng: args.rng,
            seed,
            config: TrainConfig {
                epochs,
                batch: args.batch,
                lr_inv: args.lr_inv,
                ..TrainConfig::default()
            },
            widths: args
                .widths
                .clone()
                .unwrap_or_else(|| paper_widths(dataset).to_vec()),
            activation: args.activation,
        };
        run_one(&spec, &data, &ctx)?;
    }
    Ok(())
}

/// The reproduction's runs: the reference's own stream (glibc, `srand(1)`) and two PCG seeds, so every
/// claim has three seeds. The float baseline trains once per seed, and the float − PocketNN gap is paired
/// by seed.
const REPRODUCTION_SEEDS: [(RngKind, u64); 3] = [
    (RngKind::Glibc, 1),
    (RngKind::Pcg, 2022),
    (RngKind::Pcg, 2023),
];

fn cmd_reproduce(args: &RunArgs) -> Result<(), String> {
    args.refuse(
        &["--seed", "--seeds", "--epochs"],
        "the reproduction runs the reference's epochs (30 MNIST, 20 Fashion-MNIST) with glibc seed 1 \
         and pcg seeds 2022 and 2023 (`train` runs others)",
    )?;
    let ctx = args.start()?;
    let start = Instant::now();
    for dataset in datasets(args)? {
        let data = load_data(args, dataset)?;
        for (rng, seed) in REPRODUCTION_SEEDS {
            let spec = RunSpec::paper(dataset, paper_epochs(dataset), rng, seed);
            run_one(&spec, &data, &ctx)?;
            float_one(dataset, paper_epochs(dataset), seed, &data, args, &ctx)?;
        }
    }
    record_gaps(&ctx)?;
    cmd_figures(args)?;
    println!(
        "reproduction done in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Draws `figures::epoch_accuracy` from `<root>/pocketnn/epochs.csv` beside it.
fn cmd_figures(args: &RunArgs) -> Result<(), String> {
    let dir = args.out_root().join(PAPER_DIR);
    let epochs: Vec<tables::EpochRow> =
        repro::results::read_rows(&dir.join("epochs.csv")).map_err(|e| e.to_string())?;
    let published =
        repro::published::PaperExperiments::published_of(PAPER_DIR).map_err(|e| e.to_string())?;
    for (name, svg) in pocketnn::figures::epoch_accuracy(&epochs, &published, args.profile.name()) {
        let path = dir.join(&name);
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Trains and records the float baseline of one data set.
fn float_one(
    dataset: DatasetName,
    epochs: u32,
    seed: u64,
    data: &Dataset,
    args: &RunArgs,
    ctx: &RunContext,
) -> Result<(), String> {
    let run = &ctx.run;
    let widths = paper_widths(dataset);
    println!(
        "{dataset} float BP baseline: widths {widths:?}, ReLU, Adam lr {} with a cosine decay, batch 64, {epochs} epochs, seed {seed}",
        float_baseline::LEARNING_RATE
    );
    let result = float_baseline::run(
        data,
        widths,
        epochs,
        seed,
        &BackendKind::for_run(args)?,
        &format!("{dataset} float BP"),
    )?;
    println!(
        "{dataset} float BP: test {:.2}%  (last-epoch running train {:.2}%, {:.1} s)",
        result.test_accuracy, result.train_accuracy, result.seconds
    );
    let row = RowContext {
        dataset,
        model: model_name(widths),
        profile: run.profile.clone(),
        seed,
        epochs,
        run_id: run.run_id.clone(),
    }
    .row(
        float_source(dataset),
        METHOD_FLOAT,
        FLOAT_BITS,
        METRIC_TEST,
        result.test_accuracy,
    );
    let path = ctx.table(PAPER_DIR, "accuracy");
    run.record(&path, &[row], &data.checksums())
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn cmd_float(args: &RunArgs) -> Result<(), String> {
    let ctx = args.start()?;
    let dataset = args.grey_dataset_or(DatasetName::Mnist, "pocketnn")?;
    let epochs = args.epochs.unwrap_or(paper_epochs(dataset));
    let data = load_data(args, dataset)?;
    for seed in args.seed_list(1, 1) {
        float_one(dataset, epochs, seed, &data, args, &ctx)?;
    }
    record_gaps(&ctx)
}

/// Adds the float-minus-PocketNN gap rows once both sides are in accuracy.csv, derived from the
/// whole table under its lock (each side may come from another run).
fn record_gaps(ctx: &RunContext) -> Result<(), String> {
    let run = &ctx.run;
    let path = ctx.table(PAPER_DIR, "accuracy");
    let gaps = |table: &[ResultRow]| {
        let gaps = tables::gap_rows(table, &run.profile, &run.run_id);
        for g in &gaps {
            println!(
                "{}: float BP - PocketNN (both at their last epoch) = {:.2} points",
                g.dataset, g.value
            );
        }
        gaps
    };
    run.record_derived(&path, &[], gaps, &[])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`: on a shared machine
/// wall time includes waiting for a core, so the benchmark reports both.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports USER_HZ ticks, 100 per second on Linux.
    Some(ticks / 100.0)
}

fn cmd_bench(args: &RunArgs) -> Result<(), String> {
    args.refuse(
        &["--seed", "--seeds"],
        "the benchmark times the reference's run (glibc seed 1)",
    )?;
    let threads = args.start()?.threads;
    let epochs = args.epochs.unwrap_or(2);
    for dataset in datasets(args)? {
        let data = load_data(args, dataset)?;
        let spec = RunSpec::paper(
            dataset,
            epochs,
            RngKind::Glibc,
            RngKind::Glibc.default_seed(),
        );
        let (mut net, train_split, test_split) = prepare(&spec, &data)?;
        let mut rng = spec.rng.build(spec.seed)?;
        let cpu_start = process_cpu_seconds();
        let history = train(
            &mut net,
            &train_split,
            &test_split,
            &spec.config,
            &[],
            &mut rng,
            |p| {
                if let Progress::Epoch(s) = p {
                    print_epoch(s, train_split.len(), test_split.len());
                }
            },
        )
        .map_err(|e| e.to_string())?;
        let cpu = cpu_start
            .zip(process_cpu_seconds())
            .map(|(a, b)| format!("{:.3}", (b - a) / f64::from(epochs)))
            .unwrap_or_else(|| "n/a".into());
        let secs: Vec<f64> = history.iter().map(|s| s.elapsed.as_secs_f64()).collect();
        let mean = secs.iter().sum::<f64>() / secs.len() as f64;
        println!(
            "bench {dataset}: {mean:.3} s/epoch wall, {cpu} CPU-s/epoch, {} epochs, {threads} threads (train {} + test {} images per epoch)",
            secs.len(),
            train_split.len(),
            test_split.len()
        );
    }
    Ok(())
}
