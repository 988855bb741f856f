//! `pocketnn`: the experiments of Song & Lin (2022), PocketNN, one subcommand each.
//!
//! - `train`: one integer-only DFA run, one line per epoch (the reference's printout).
//! - `reproduce`: every run `make reproduce-pocketnn` needs, with the float baseline.
//! - `bench`: seconds per epoch on both data sets.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use pocketnn::activation::Activation;
use pocketnn::float_baseline;
use pocketnn::network::{INPUT_MAX, Network};
use pocketnn::rng::{GlibcRand, Pcg32, RunRng};
use pocketnn::tables::{
    self, EpochSetting, FLOAT_BITS, METHOD_FLOAT, METRIC_TEST, PAPER_DIR, RowContext, float_source,
    mirrored_rows, model_name, paper_epochs, paper_widths, pct, train_pass_epochs,
};
use pocketnn::train::{EpochStats, Progress, Split, TrainConfig, train};
use repro::Profile;
use repro::datasets::{DataRoot, Dataset, DatasetName, load_checked};
use repro::manifest::Run;
use repro::results::{ResultRow, table_path};
use std::path::PathBuf;
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
    /// Train the float back-propagation MLP with the same widths in Burn (Adam 1e-3 with a cosine decay, batch 64, ReLU).
    FloatBaseline(FloatArgs),
    /// Seconds per training epoch (shuffle, 3000 DFA steps, test pass) on both data sets.
    Bench(BenchArgs),
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

#[derive(Args, Clone)]
struct Common {
    /// smoke: a slice of the data, for tests; full: the real reproduction.
    #[arg(long, value_enum, default_value = "full")]
    profile: Profile,
    /// Results root (tables go to <out>/pocketnn/; default: results/ for --profile full,
    /// target/results-<profile>/ otherwise).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Data root holding mnist/ and fashion-mnist/ (default: the workspace's data/ or $QUANT_DATA_ROOT).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct TrainArgs {
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetName,
    /// Epochs (the reference ships 3).
    #[arg(long, default_value_t = 3)]
    epochs: u32,
    #[arg(long, value_enum, default_value = "pcg")]
    rng: RngKind,
    /// Generator seed (default: 1 for glibc, i.e. an unseeded C program; 2022 for pcg).
    #[arg(long)]
    seed: Option<u64>,
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
    activation: Activation,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct FloatArgs {
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetName,
    /// Epochs (default: the long PocketNN run's, 30 for MNIST and 20 for Fashion-MNIST).
    #[arg(long)]
    epochs: Option<u32>,
    /// Seed of the initialisation and the shuffles.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct BenchArgs {
    /// Epochs timed per data set.
    #[arg(long, default_value_t = 2)]
    epochs: u32,
    #[command(flatten)]
    common: Common,
}

/// Train and test images the smoke profile keeps.
const SMOKE_TRAIN: usize = 1000;
const SMOKE_TEST: usize = 200;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => cmd_train(&args),
        Command::Reproduce(common) => cmd_reproduce(&common),
        Command::FloatBaseline(args) => cmd_float(&args),
        Command::Bench(args) => cmd_bench(&args),
        Command::Figures(common) => cmd_figures(&common),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sizes the rayon pool once per process; returns the thread count the manifest records.
fn setup_threads(common: &Common) -> Result<usize, String> {
    let threads = common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err("--threads 0: use 1 or more".into());
    }
    // A second call in the same process (tests) keeps the first pool, which is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    Ok(rayon::current_num_threads())
}

fn load_data(common: &Common, dataset: DatasetName) -> Result<Dataset, String> {
    let root = DataRoot::resolve(common.data.as_deref());
    let mut data = load_checked(&root, dataset, common.profile.name())?;
    if common.profile == Profile::Smoke {
        data.train = data.train.truncated(SMOKE_TRAIN);
        data.test = data.test.truncated(SMOKE_TEST);
    }
    Ok(data)
}

fn results_root(common: &Common) -> PathBuf {
    repro::out_dir::results_root(common.out.as_deref(), common.profile.name())
}

/// One configured PocketNN run.
struct RunSpec {
    dataset: DatasetName,
    epochs: u32,
    rng: RngKind,
    seed: u64,
    config: TrainConfig,
    widths: Vec<usize>,
    activation: Activation,
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
            activation: Activation::PocketTanh,
        }
    }

    /// The reference's own configuration, whose runs may stand for published numbers.
    fn is_reference_setting(&self) -> bool {
        self.widths == paper_widths(self.dataset)
            && self.activation == Activation::PocketTanh
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
fn run_one(
    spec: &RunSpec,
    data: &Dataset,
    common: &Common,
    run: &Run,
) -> Result<Vec<EpochStats>, String> {
    let (mut net, train_split, test_split) = prepare(spec, data)?;
    let mut rng = spec.rng.build(spec.seed)?;
    let bar = ProgressBar::new((train_split.len() / spec.config.batch) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let label = format!("{} {} seed {}", spec.dataset, spec.rng.name(), spec.seed);
    bar.set_prefix(format!("{label} epoch 1"));
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

    let out = results_root(common);
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
        &table_path(&out, PAPER_DIR, "epochs"),
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
            run.record(&table_path(&out, PAPER_DIR, "accuracy"), &rows, &checksums)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(history)
}

fn cmd_train(args: &TrainArgs) -> Result<(), String> {
    let threads = setup_threads(&args.common)?;
    let run = Run::start(args.common.profile.name(), threads);
    let data = load_data(&args.common, args.dataset)?;
    let spec = RunSpec {
        dataset: args.dataset,
        epochs: args.epochs,
        rng: args.rng,
        seed: args.seed.unwrap_or(args.rng.default_seed()),
        config: TrainConfig {
            epochs: args.epochs,
            batch: args.batch,
            lr_inv: args.lr_inv,
            ..TrainConfig::default()
        },
        widths: args
            .widths
            .clone()
            .unwrap_or_else(|| paper_widths(args.dataset).to_vec()),
        activation: args.activation,
    };
    run_one(&spec, &data, &args.common, &run).map(|_| ())
}

/// The reproduction's runs: the reference's own stream (glibc, `srand(1)`) and two PCG seeds, so every
/// claim has three seeds. The float baseline trains once per seed, and the float − PocketNN gap is paired
/// by seed.
const REPRODUCTION_SEEDS: [(RngKind, u64); 3] = [
    (RngKind::Glibc, 1),
    (RngKind::Pcg, 2022),
    (RngKind::Pcg, 2023),
];

fn cmd_reproduce(common: &Common) -> Result<(), String> {
    let threads = setup_threads(common)?;
    let run = Run::start(common.profile.name(), threads);
    let start = Instant::now();
    for dataset in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let data = load_data(common, dataset)?;
        for (rng, seed) in REPRODUCTION_SEEDS {
            let spec = RunSpec::paper(dataset, paper_epochs(dataset), rng, seed);
            run_one(&spec, &data, common, &run)?;
            float_one(dataset, paper_epochs(dataset), seed, &data, common, &run)?;
        }
    }
    record_gaps(common, &run)?;
    cmd_figures(common)?;
    println!(
        "reproduction done in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Draws `figures::epoch_accuracy` from `<root>/pocketnn/epochs.csv` beside it.
fn cmd_figures(common: &Common) -> Result<(), String> {
    let dir = results_root(common).join(PAPER_DIR);
    let epochs: Vec<tables::EpochRow> =
        repro::results::read_rows(&dir.join("epochs.csv")).map_err(|e| e.to_string())?;
    let published =
        repro::published::PaperExperiments::published_of(PAPER_DIR).map_err(|e| e.to_string())?;
    for (name, svg) in pocketnn::figures::epoch_accuracy(&epochs, &published, common.profile.name())
    {
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
    common: &Common,
    run: &Run,
) -> Result<(), String> {
    let widths = paper_widths(dataset);
    println!(
        "{dataset} float BP baseline: widths {widths:?}, ReLU, Adam lr {} with a cosine decay, batch 64, {epochs} epochs, seed {seed}",
        float_baseline::LEARNING_RATE
    );
    let result = float_baseline::run(data, widths, epochs, seed, &format!("{dataset} float BP"))?;
    println!(
        "{dataset} float BP: test {:.2}%  (last-epoch running train {:.2}%, {:.1} s)",
        result.test_accuracy, result.train_accuracy, result.seconds
    );
    let ctx = RowContext {
        dataset,
        model: model_name(widths),
        profile: run.profile.clone(),
        seed,
        epochs,
        run_id: run.run_id.clone(),
    };
    let row = ctx.row(
        float_source(dataset),
        METHOD_FLOAT,
        FLOAT_BITS,
        METRIC_TEST,
        result.test_accuracy,
    );
    let path = table_path(&results_root(common), PAPER_DIR, "accuracy");
    run.record(&path, &[row], &data.checksums())
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn cmd_float(args: &FloatArgs) -> Result<(), String> {
    let epochs = args.epochs.unwrap_or(paper_epochs(args.dataset));
    if epochs == 0 {
        return Err("--epochs 0: use 1 or more".into());
    }
    let threads = setup_threads(&args.common)?;
    let run = Run::start(args.common.profile.name(), threads);
    let data = load_data(&args.common, args.dataset)?;
    float_one(args.dataset, epochs, args.seed, &data, &args.common, &run)?;
    record_gaps(&args.common, &run)
}

/// Adds the float-minus-PocketNN gap rows once both sides are in accuracy.csv.
fn record_gaps(common: &Common, run: &Run) -> Result<(), String> {
    let path = table_path(&results_root(common), PAPER_DIR, "accuracy");
    let table: Vec<ResultRow> = repro::results::read_rows(&path).map_err(|e| e.to_string())?;
    let gaps = tables::gap_rows(&table, &run.profile, &run.run_id);
    for g in &gaps {
        println!(
            "{}: float BP - PocketNN (both at their last epoch) = {:.2} points",
            g.dataset, g.value
        );
    }
    if !gaps.is_empty() {
        run.record(&path, &gaps, &[]).map_err(|e| e.to_string())?;
    }
    Ok(())
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

fn cmd_bench(args: &BenchArgs) -> Result<(), String> {
    let threads = setup_threads(&args.common)?;
    for dataset in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let data = load_data(&args.common, dataset)?;
        let spec = RunSpec::paper(
            dataset,
            args.epochs,
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
            .map(|(a, b)| format!("{:.3}", (b - a) / f64::from(args.epochs)))
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
