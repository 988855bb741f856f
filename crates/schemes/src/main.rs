//! `schemes`: the cross-scheme table (`crates/schemes/README.md`). `run` trains and measures every
//! seed and writes `<out>/schemes/mlp.csv` with the plot beside it; `table` prints the Markdown table
//! of the recorded rows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use quant_train::BackendKind;
use quant_train::data::resize;
use repro::cli::RunArgs;
use repro::datasets::DatasetName;
use repro::results::{ResultRow, read_rows, table_path};
use schemes::TABLE_DIR;
use schemes::bench::{Bench, Sets, Sizes};
use schemes::table::{accuracy_size_svg, curves_svg, markdown};
use schemes::{mlp, mobilenet, resnet, rusci};

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
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Train and measure every scheme for every seed (the default).
    Run {
        /// Only this model (a unit is one model and one seed).
        #[arg(long, value_enum)]
        model: Option<Model>,
    },
    /// Print the Markdown table of the recorded rows (mean ± sd over the seeds) and redraw the plot.
    Table,
}

/// The models of the table: each writes `<name>.csv` and its curves `<name>_curves.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Model {
    Mlp,
    #[value(name = "mobilenet")]
    MobileNet,
    #[value(name = "resnet")]
    ResNet,
}

impl Model {
    const ALL: [Model; 3] = [Model::Mlp, Model::MobileNet, Model::ResNet];

    fn table(self) -> &'static str {
        match self {
            Model::Mlp => "mlp",
            Model::MobileNet => "mobilenet",
            Model::ResNet => "resnet",
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    cli.run.validate()?;
    let out = cli.run.out_root();
    let profile = cli.run.profile;
    if cli.command == Some(Command::Table) {
        for model in Model::ALL {
            let path = table_path(&out, TABLE_DIR, model.table());
            if path.exists() {
                print_and_draw(&path, profile.name())?;
            }
        }
        return Ok(());
    }
    let models = match cli.command {
        Some(Command::Run { model: Some(m) }) => vec![m],
        _ => Model::ALL.to_vec(),
    };
    cli.run.refuse(
        &["--epochs"],
        "each scheme keeps its own recipe (see crates/schemes/README.md)",
    )?;
    let device = BackendKind::for_run(&cli.run)?;
    let context = cli.run.start()?;
    let data = cli.run.load(
        cli.run
            .grey_dataset_or(DatasetName::FashionMnist, "schemes")?,
    )?;
    let sizes = Sizes::of(profile);
    let checkpoints = cli.run.checkpoint_dir("schemes-checkpoints");
    let mcu_checkpoints = cli.run.checkpoint_dir("mcu-checkpoints");
    std::fs::create_dir_all(out.join(TABLE_DIR)).map_err(|e| e.to_string())?;
    for seed in cli.run.seed_list(0, sizes.seeds) {
        for model in models.iter().copied() {
            let plan = mobilenet::plan(profile, seed, mcu_checkpoints.clone());
            // The MobileNet's sets are the MCU reproduction's, at the proxy's resolution; the
            // ResNet's are integer-qat's E1 sets at its side, with its epochs.
            let (train, validation, test) = (sizes.train, sizes.validation, sizes.test);
            let (train, validation, test, resolution, model_sizes) = match model {
                Model::Mlp => (train, validation, test, data.train.rows, sizes.clone()),
                Model::ResNet => {
                    let (side, float_epochs, qat_epochs) = resnet::recipe(profile);
                    let sizes = Sizes {
                        float_epochs,
                        qat_epochs,
                        ..sizes.clone()
                    };
                    (train, validation, test, side, sizes)
                }
                Model::MobileNet => (
                    plan.train_images,
                    plan.validation_images,
                    plan.test_images,
                    plan.configs[0].0,
                    sizes.clone(),
                ),
            };
            let (train_set, validation_set) = data
                .train
                .clone()
                .split_validation(validation.min(data.train.len() - 1))?;
            let bench = Bench {
                sizes: model_sizes,
                sets: Sets {
                    train: resize(&train_set.truncated(train), resolution),
                    validation: Arc::new(resize(&validation_set, resolution)),
                    test: resize(&data.test.clone().truncated(test), resolution),
                },
                device: device.clone(),
                run: &context.run,
                profile: profile.name(),
                dataset: data.name.paper_name().to_string(),
                checkpoints: checkpoints.clone(),
                model: match model {
                    Model::Mlp => mlp::MODEL.to_string(),
                    Model::MobileNet => mobilenet::model_name(&plan),
                    Model::ResNet => resnet::model_name(profile),
                },
                layer_io: match model {
                    Model::Mlp => rusci::layer_io(&mlp::chain()?),
                    Model::MobileNet => rusci::layer_io(&mobilenet::chain(&plan)),
                    Model::ResNet => resnet::layer_io(profile)?,
                },
            };
            let (rows, curves) = match model {
                Model::Mlp => bench.mlp_rows(&data, &plan, seed)?,
                Model::MobileNet => bench.mobilenet_rows(&data, &plan, seed)?,
                Model::ResNet => bench.resnet_rows(profile, seed)?,
            };
            let path = table_path(&out, TABLE_DIR, model.table());
            for (path, rows) in [(path.clone(), &rows), (curves_path(&path), &curves)] {
                context
                    .run
                    .record(&path, rows, &data.checksums())
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "seed {seed}: wrote {} rows to {}",
                    rows.len(),
                    path.display()
                );
            }
        }
    }
    for model in models {
        print_and_draw(&table_path(&out, TABLE_DIR, model.table()), profile.name())?;
    }
    Ok(())
}

/// `<table>_curves.csv` beside `<table>.csv`.
fn curves_path(table: &Path) -> PathBuf {
    let stem = table
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    table.with_file_name(format!("{stem}_curves.csv"))
}

/// Prints the Markdown table of the rows in `table` and writes the accuracy-size plot beside it,
/// and the learning curves beside theirs.
fn print_and_draw(table: &Path, profile: &str) -> Result<(), String> {
    let rows: Vec<ResultRow> = read_rows(table).map_err(|e| e.to_string())?;
    if let Some(first) = rows.first() {
        println!("\n{}:\n", first.model);
    }
    print!("{}", markdown(&rows, profile));
    let curves_table = curves_path(table);
    let curves: Vec<ResultRow> = read_rows(&curves_table).map_err(|e| e.to_string())?;
    for (path, svg) in [
        (
            table.with_extension("svg"),
            accuracy_size_svg(&rows, profile),
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
