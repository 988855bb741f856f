//! `schemes`: the cross-scheme table (`crates/schemes/README.md`). `run` trains and measures every
//! seed and writes `<out>/schemes/mlp.csv` with the plot beside it; `table` prints the Markdown table
//! of the recorded rows.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use quant_train::BackendKind;
use repro::cli::RunArgs;
use repro::datasets::DatasetName;
use repro::results::{ResultRow, read_rows, table_path};
use schemes::TABLE_DIR;
use schemes::mlp::{Bench, Sets, Sizes};
use schemes::table::{accuracy_size_svg, curves_svg, markdown};

#[derive(Parser, Debug)]
#[command(
    name = "schemes",
    about = "The cross-scheme table: one model quantized by every scheme of the workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Profile, data set (default Fashion-MNIST), seeds (default 0, 1, 2; `--seed 2 --seeds 1`
    /// runs one unit and merges its rows into the table), threads, data and results roots.
    #[command(flatten)]
    run: RunArgs,
    /// Checkpoint folder of the trainings (default `<workspace>/target/schemes-checkpoints`).
    #[arg(long, global = true)]
    checkpoints: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Train and measure every scheme for every seed (the default).
    Run,
    /// Print the Markdown table of the recorded rows (mean ± sd over the seeds) and redraw the plot.
    Table,
}

/// The recorded table, and the validation curves of its Burn trainings.
const TABLE: &str = "mlp";
const CURVES: &str = "mlp_curves";

fn run(cli: Cli) -> Result<(), String> {
    cli.run.validate()?;
    let out = cli.run.out_root();
    let path = table_path(&out, TABLE_DIR, TABLE);
    if cli.command == Some(Command::Table) {
        let rows: Vec<ResultRow> = read_rows(&path).map_err(|e| e.to_string())?;
        print!("{}", markdown(&rows, cli.run.profile.name()));
        return draw(&rows, &cli.run, &path);
    }
    cli.run.refuse(
        &["--epochs"],
        "each scheme keeps its own recipe (see crates/schemes/README.md)",
    )?;
    let device = BackendKind::for_run(&cli.run)?;
    let context = cli.run.start()?;
    let data = cli
        .run
        .load(cli.run.dataset_or(DatasetName::FashionMnist))?;
    let sizes = Sizes::of(cli.run.profile);
    let (train, validation) = data
        .train
        .clone()
        .split_validation(sizes.validation.min(data.train.len() - 1))?;
    let sets = Sets {
        train: train.truncated(sizes.train),
        validation: Arc::new(validation),
        test: data.test.clone().truncated(sizes.test),
    };
    let bench = Bench {
        sets,
        device,
        run: &context.run,
        profile: cli.run.profile.name(),
        dataset: data.name.paper_name().to_string(),
        checkpoints: cli
            .checkpoints
            .unwrap_or_else(|| repro::workspace_root().join("target/schemes-checkpoints")),
        sizes,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(&out)).map_err(|e| e.to_string())?;
    let curves_path = table_path(&out, TABLE_DIR, CURVES);
    for seed in cli.run.seed_list(0, bench.sizes.seeds) {
        let (rows, curves) = bench.seed_rows(seed)?;
        for (path, rows) in [(&path, &rows), (&curves_path, &curves)] {
            context
                .run
                .record(path, rows, &data.checksums())
                .map_err(|e| e.to_string())?;
            eprintln!(
                "seed {seed}: wrote {} rows to {}",
                rows.len(),
                path.display()
            );
        }
    }
    let rows: Vec<ResultRow> = read_rows(&path).map_err(|e| e.to_string())?;
    print!("{}", markdown(&rows, cli.run.profile.name()));
    draw(&rows, &cli.run, &path)
}

/// Writes the accuracy-size plot beside the table, and the learning curves beside theirs.
fn draw(rows: &[ResultRow], args: &RunArgs, table: &std::path::Path) -> Result<(), String> {
    let profile = args.profile.name();
    let curves_table = table.with_file_name(format!("{CURVES}.csv"));
    let curves: Vec<ResultRow> = read_rows(&curves_table).map_err(|e| e.to_string())?;
    for (path, svg) in [
        (
            table.with_extension("svg"),
            accuracy_size_svg(rows, profile),
        ),
        (
            curves_table.with_extension("svg"),
            curves_svg(&curves, profile),
        ),
    ] {
        let Some(svg) = svg else { continue };
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
