//! `pocketnn`: the experiments of Song & Lin (2022), PocketNN, one subcommand each.
//!
//! - `train`: one integer-only DFA run, one line per epoch (the reference's printout).
//! - `reproduce`: every run `make reproduce-pocketnn` needs, with the float baseline.
//! - `bench`: seconds per epoch on both data sets.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use pocketnn::activation::Activation;
use pocketnn::network::{INPUT_MAX, Network};
use pocketnn::rng::{GlibcRand, Pcg32, RunRng};
use pocketnn::tables::{
    self, EpochRow, PAPER_DIR, RowContext, mirrored_rows, model_name, paper_epochs, paper_widths,
    pct,
};
use pocketnn::train::{EpochStats, Split, TrainConfig, count_correct, train};
use repro::datasets::{Dataset, DatasetName, default_data_root, load};
use repro::manifest::Run;
use repro::results::{ResultRow, table_path};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "pocketnn",
    version,
    about = "PocketNN (Song & Lin 2022): integer-only DFA training, bit-exact with the reference C++"
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
    /// Run everything `make reproduce-pocketnn` needs: MNIST 3/10/30 epochs, Fashion-MNIST 3/20 epochs,
    /// each with --rng glibc and --rng pcg, plus the float back-propagation baselines.
    Reproduce(Common),
    /// Seconds per training epoch (shuffle, 3000 DFA steps, test pass) on both data sets.
    Bench(BenchArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// A slice of the data (1000 train / 200 test images): seconds, for tests and CI.
    Smoke,
    /// The whole data sets: the real reproduction.
    Full,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Full => "full",
        }
    }
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
    /// Results root (tables go to <out>/pocketnn/).
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
        Command::Bench(args) => cmd_bench(&args),
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
        return Err("--threads 0: use at least 1".into());
    }
    // A second call in the same process (tests) keeps the first pool, which is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    Ok(rayon::current_num_threads())
}

fn load_data(common: &Common, dataset: DatasetName) -> Result<Dataset, String> {
    let root = common.data.clone().unwrap_or_else(default_data_root);
    let mut data = load(&root, dataset).map_err(|e| e.to_string())?;
    if common.profile == Profile::Smoke {
        data.train = data.train.truncated(SMOKE_TRAIN);
        data.test = data.test.truncated(SMOKE_TEST);
    }
    Ok(data)
}

fn results_root(common: &Common) -> PathBuf {
    common
        .out
        .clone()
        .unwrap_or_else(|| repro::workspace_root().join("results"))
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
    fn paper(dataset: DatasetName, epochs: u32, rng: RngKind) -> Self {
        RunSpec {
            dataset,
            epochs,
            rng,
            seed: rng.default_seed(),
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

/// Trains one run, prints its epochs, and records its rows. Returns the per-epoch stats.
fn run_one(
    spec: &RunSpec,
    data: &Dataset,
    common: &Common,
    run: &Run,
) -> Result<Vec<EpochStats>, String> {
    let mut net = Network::new(&spec.widths, spec.activation).map_err(|e| e.to_string())?;
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
    if spec.config.batch == 0 || spec.config.lr_inv < 1 || spec.epochs == 0 {
        return Err("--batch, --lr-inv and --epochs must be at least 1".into());
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
    let mut rng = spec.rng.build(spec.seed)?;
    let batches = train_split.len() / spec.config.batch;
    let bar = ProgressBar::new(batches as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let label = format!("{} {} seed {}", spec.dataset, spec.rng.name(), spec.seed);
    println!(
        "{label}: {} epochs, widths {:?}, batch {}, lrInv {}",
        spec.epochs, spec.widths, spec.config.batch, spec.config.lr_inv
    );
    let (n_train, n_test) = (train_split.len(), test_split.len());
    let history = train(
        &mut net,
        &train_split,
        &test_split,
        &spec.config,
        &mut rng,
        |s| {
            bar.reset();
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
            bar.set_prefix(format!("{label} epoch {}", s.epoch + 1));
        },
        |_| bar.inc(1),
    )
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let final_train = count_correct(&net, &train_split).map_err(|e| e.to_string())?;
    println!(
        "final training pass: {final_train}/{n_train} ({:.4}%)",
        pct(final_train, n_train)
    );

    let out = results_root(common);
    let checksums = data.checksums();
    let epoch_rows: Vec<EpochRow> = history
        .iter()
        .map(|s| EpochRow::new(spec.dataset, spec.rng.name(), spec.seed, spec.epochs, s))
        .collect();
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
        let rows = mirrored_rows(&ctx, &history, final_train, n_train, n_test);
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

/// Every PocketNN run of the reproduction: (data set, epochs) for both generators.
fn reproduction_runs() -> Vec<RunSpec> {
    let mut runs = Vec::new();
    for dataset in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let mut lengths = vec![3, paper_epochs(dataset)];
        if dataset == DatasetName::Mnist {
            // The author's demo GIF shows a 10-epoch run.
            lengths.insert(1, 10);
        }
        for rng in [RngKind::Glibc, RngKind::Pcg] {
            for &epochs in &lengths {
                runs.push(RunSpec::paper(dataset, epochs, rng));
            }
        }
    }
    runs
}

fn cmd_reproduce(common: &Common) -> Result<(), String> {
    let threads = setup_threads(common)?;
    let run = Run::start(common.profile.name(), threads);
    let start = Instant::now();
    for dataset in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let data = load_data(common, dataset)?;
        for spec in reproduction_runs().iter().filter(|s| s.dataset == dataset) {
            run_one(spec, &data, common, &run)?;
        }
    }
    record_gaps(common, &run)?;
    println!(
        "reproduction done in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Adds the float-minus-PocketNN gap rows once both sides are in accuracy.csv.
fn record_gaps(common: &Common, run: &Run) -> Result<(), String> {
    let path = table_path(&results_root(common), PAPER_DIR, "accuracy");
    let table: Vec<ResultRow> = repro::results::read_rows(&path).map_err(|e| e.to_string())?;
    let gaps = tables::gap_rows(&table, &run.profile, &run.run_id);
    for g in &gaps {
        println!("{}: float BP − PocketNN = {:.2} points", g.dataset, g.value);
    }
    if !gaps.is_empty() {
        run.record(&path, &gaps, &[]).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn cmd_bench(args: &BenchArgs) -> Result<(), String> {
    let threads = setup_threads(&args.common)?;
    for dataset in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let data = load_data(&args.common, dataset)?;
        let spec = RunSpec::paper(dataset, args.epochs, RngKind::Glibc);
        let mut net = Network::new(&spec.widths, spec.activation).map_err(|e| e.to_string())?;
        let train_split = Split::new(&data.train, &net, "train set")?;
        let test_split = Split::new(&data.test, &net, "test set")?;
        let mut rng = spec.rng.build(spec.seed)?;
        let history = train(
            &mut net,
            &train_split,
            &test_split,
            &spec.config,
            &mut rng,
            |_| {},
            |_| {},
        )
        .map_err(|e| e.to_string())?;
        let secs: Vec<f64> = history.iter().map(|s| s.elapsed.as_secs_f64()).collect();
        let mean = secs.iter().sum::<f64>() / secs.len() as f64;
        println!(
            "{dataset}: {mean:.3} s/epoch over {} epochs ({threads} threads; epochs {secs:.3?}; train {} + test {} images)",
            secs.len(),
            train_split.len(),
            test_split.len()
        );
    }
    Ok(())
}
