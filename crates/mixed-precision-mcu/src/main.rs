//! `mixed-precision-mcu`: the experiments of Rusci et al. 2020, one subcommand per table or figure.

use clap::{Parser, Subcommand, ValueEnum};
use mixed_precision_mcu::PAPER_DIR;
use mixed_precision_mcu::assign::{AssignOptions, Assignment, assign};
use mixed_precision_mcu::experiments::{
    FloatCache, QatPlan, Results, SOURCE_E1, SOURCE_E3, curve_rows, rows, run_e1_e2, run_e3,
    summary_rows,
};
use mixed_precision_mcu::memory::{Budget, Granularity};
use mixed_precision_mcu::mobilenet::{MobileNetV1, tiny_family};
use mixed_precision_mcu::tables::{exact_tables, model_label};
use quant_train::train::BackendKind;
use repro::Profile;
use repro::cli::{RunArgs, RunContext};
use repro::datasets::{Dataset, DatasetName};
use repro::results::{ResultRow, TableError, table_path};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    about = "Memory-driven mixed low precision for microcontrollers (Rusci et al., MLSys 2020)",
    long_about = "Memory model, rule-based 8/4/2-bit assignment under FLASH (ROM) and RAM budgets, \
                  sub-byte integer deployment and the paper's comparisons on a Fashion-MNIST proxy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which MobileNetV1 family a configuration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Family {
    /// The paper's ImageNet MobileNetV1 (base 32 channels, RGB, 1000 classes).
    Imagenet,
    /// The proxy TinyMbV1 (base 8 channels, grey input, 10 classes; see
    /// experiments/mixed-precision-mcu/README.md).
    Tiny8,
    /// The wider proxy fallback (base 16 channels).
    Tiny16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Csv,
}

#[derive(Subcommand)]
enum Command {
    /// Assign per-tensor bit widths (8, 4 or 2 bits for every weight and activation tensor; input and
    /// output stay 8-bit) to one MobileNetV1 under a ROM/RAM budget, by the paper's cut rules
    /// (experiments/mixed-precision-mcu/README.md, section 1).
    Assign {
        /// Input resolution in pixels (224, 192, 160, 128 in the paper).
        #[arg(long, default_value_t = 224)]
        resolution: usize,
        /// Width multiplier α (1.0, 0.75, 0.5, 0.25 in the paper).
        #[arg(long, default_value_t = 0.75)]
        width: f64,
        /// Read-only (FLASH) budget in bytes; the paper's 2 MB is 2048000.
        #[arg(long, default_value_t = 2_048_000)]
        rom: u64,
        /// Read-write (RAM) budget in bytes; the paper's 512 kB is 512000.
        #[arg(long, default_value_t = 512_000)]
        ram: u64,
        /// Per-layer (MixPL) or per-channel (MixPC) weight quantization.
        #[arg(long, value_enum, default_value_t = Granularity::PerChannel)]
        granularity: Granularity,
        /// Tie window δ of the weight cuts, a fraction of the total weight memory.
        #[arg(long, default_value_t = 0.05)]
        delta: f64,
        #[arg(long, value_enum, default_value_t = Family::Imagenet)]
        family: Family,
        /// `table` (per-layer detail) or `csv` (one row with both bit strings).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write the exact memory tables of the paper's 16 MobileNetV1 configurations and of the proxy
    /// family (experiments/mixed-precision-mcu/README.md, section 1) to <out>/mixed-precision-mcu/.
    Tables {
        #[command(flatten)]
        args: RunArgs,
    },
    /// Proxy QAT experiments on Fashion-MNIST: E1/E2 (uniform 8-bit vs MixPL vs MixPC under the
    /// scaled budget, accuracy from the integer-only graph) and E3 (FB vs ICN vs thresholds, w4a4).
    /// Data set: Fashion-MNIST unless --dataset says otherwise; seed 1 unless --seed says otherwise,
    /// one table pass per seed.
    Qat {
        /// Which experiments.
        #[arg(long, value_enum, default_value_t = Experiment::All)]
        experiment: Experiment,
        /// Training images (default: the profile's slice).
        #[arg(long)]
        train_images: Option<usize>,
        /// Test images (default: the profile's slice).
        #[arg(long)]
        test_images: Option<usize>,
        /// An E1/E2 configuration `R_W` of the proxy family (resolutions 28, 24, 20, 16; widths 1.0,
        /// 0.75, 0.5, 0.25), repeatable; default: the profile's. One configuration and one seed
        /// make a unit: the E1 headline rows are derived from every unit of the seed in the table.
        #[arg(long = "config", value_name = "R_W")]
        configs: Vec<String>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// The latency proxy (experiments/mixed-precision-mcu/README.md, section 4) for the 16 ImageNet configurations (uniform 8-bit and the
    /// STM32H7 assignments), relative latencies, and the accuracy-latency plot from the proxy results.
    Latency {
        #[command(flatten)]
        args: RunArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Experiment {
    E1,
    E3,
    All,
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
        Command::Qat {
            experiment,
            train_images,
            test_images,
            configs,
            args,
        } => {
            // Zero image counts would train or test nothing and still write rows.
            for (flag, value) in [
                ("--train-images", train_images),
                ("--test-images", test_images),
            ] {
                if value == Some(0) {
                    return Err(format!("{flag} 0: use 1 or more"));
                }
            }
            let ctx = args.start()?;
            let data = args.load(args.dataset_or(DatasetName::FashionMnist))?;
            for seed in args.seed_list(1, 1) {
                let mut plan = match args.profile {
                    Profile::Smoke => QatPlan::smoke(seed),
                    // `start` refused the paper profile.
                    Profile::Full | Profile::Paper => QatPlan::full(seed),
                };
                plan.dataset = data.name;
                plan.float_epochs = args.epochs.unwrap_or(plan.float_epochs);
                plan.checkpoint_dir = args.checkpoint_dir("mcu-checkpoints");
                plan.train_images = train_images.unwrap_or(plan.train_images);
                plan.test_images = test_images.unwrap_or(plan.test_images);
                if !configs.is_empty() {
                    plan.configs = configs
                        .iter()
                        .map(|c| proxy_config(c, plan.base_channels))
                        .collect::<Result<_, _>>()?;
                }
                run_qat(&args, &ctx, &data, experiment, &plan)?;
            }
            Ok(())
        }
        Command::Latency { args } => {
            let ctx = args.start()?;
            let (run, root) = (&ctx.run, ctx.out());
            let rows = mixed_precision_mcu::latency::latency_rows(args.profile.name(), &run.run_id);
            let n = run
                .record(&table_path(root, PAPER_DIR, "latency"), &rows, &[])
                .map_err(|e| e.to_string())?;
            eprintln!("wrote {n} rows to latency.csv");
            for plot in [
                mixed_precision_mcu::latency::plot,
                mixed_precision_mcu::latency::plot_memory,
            ] {
                match plot(&root.join(PAPER_DIR))? {
                    Some(svg) => eprintln!("wrote {}", svg.display()),
                    None => eprintln!(
                        "no full-profile qat.csv rows yet: run `qat --profile full` for the plots"
                    ),
                }
            }
            Ok(())
        }
        Command::Assign {
            resolution,
            width,
            rom,
            ram,
            granularity,
            delta,
            family,
            format,
        } => {
            if !(width > 0.0 && width <= 1.0) {
                return Err(format!("--width {width} must be in (0, 1], e.g. 0.75"));
            }
            if resolution < 2 {
                return Err(format!("--resolution {resolution} must be at least 2"));
            }
            if !(0.0..=1.0).contains(&delta) {
                return Err(format!(
                    "--delta {delta} must be a fraction in [0, 1], e.g. 0.05"
                ));
            }
            let model = match family {
                Family::Imagenet => MobileNetV1::imagenet(resolution, width),
                Family::Tiny8 => MobileNetV1::tiny(resolution, width, 8),
                Family::Tiny16 => MobileNetV1::tiny(resolution, width, 16),
            };
            if model.channels(1) == 0 {
                return Err(format!(
                    "--width {width} leaves the first layer without channels"
                ));
            }
            model.check_size()?;
            let options = AssignOptions {
                granularity,
                delta_bp: (delta * 10_000.0).round() as u32,
            };
            let a =
                assign(&model.layers(), Budget { rom, ram }, options).map_err(|e| e.to_string())?;
            match format {
                Format::Csv => print_csv(&model, &a),
                Format::Table => print_table(&model, &a),
            }
            Ok(())
        }
        Command::Tables { args } => {
            let ctx = args.start()?;
            let (run, root) = (&ctx.run, ctx.out());
            let tables = exact_tables(args.profile.name(), &run.run_id);
            let n = run
                .record(
                    &table_path(root, PAPER_DIR, "assignment"),
                    &tables.rows,
                    &[],
                )
                .map_err(|e| e.to_string())?;
            let m = run
                .record(
                    &table_path(root, PAPER_DIR, "assignment_bits"),
                    &tables.assignments,
                    &[],
                )
                .map_err(|e| e.to_string())?;
            eprintln!(
                "wrote {n} rows to assignment.csv and {m} rows to assignment_bits.csv under {}",
                root.join(PAPER_DIR).display()
            );
            Ok(())
        }
    }
}

/// One seed of the QAT experiments; rows go to `<out>/mixed-precision-mcu/qat.csv`.
fn run_qat(
    args: &RunArgs,
    ctx: &RunContext,
    data: &Dataset,
    experiment: Experiment,
    plan: &QatPlan,
) -> Result<(), String> {
    let seed = plan.seeds[0];
    let device = BackendKind::for_run(args)?;
    let (run, profile) = (&ctx.run, args.profile);
    let (path, curves) = (ctx.table(PAPER_DIR, "qat"), ctx.table(PAPER_DIR, "curves"));
    let qat_epochs: u32 = plan.qat_segments.iter().map(|s| s.1).sum();
    let mark = |mut rows: Vec<ResultRow>| {
        for r in &mut rows {
            r.profile = profile.name().into();
            r.run_id = run.run_id.clone();
        }
        rows
    };
    // E1's headline rows are derived from every E1 row of this seed in the table, whichever run
    // (one configuration per unit, say) wrote them.
    let summary =
        |table: &[ResultRow]| mark(summary_rows(table, plan, profile.name(), seed, qat_epochs));
    // The rows of one experiment's results and their learning curves.
    let stamp = |source: &str, res: &Results| -> Result<(), String> {
        let rows = mark(rows(source, res, plan, seed, qat_epochs));
        let e = |e: TableError| e.to_string();
        match source == SOURCE_E1 {
            true => run.record_derived(&path, &rows, summary, &data.checksums()),
            false => run.record(&path, &rows, &data.checksums()),
        }
        .map_err(e)?;
        run.record(
            &curves,
            &mark(curve_rows(source, res, plan, seed)),
            &data.checksums(),
        )
        .map(|_| ())
        .map_err(e)
    };
    // Rows are recorded after every configuration (cheapest first), so an interrupted full run keeps
    // what it finished; E3 runs right after the configuration whose float model it reuses.
    let mut cache = FloatCache::new();
    let mut e3_done = experiment == Experiment::E1;
    let mut configs = plan.configs.clone();
    configs.sort_by_key(|&(r, w)| plan.model(r, w).macs());
    for cfg in configs {
        if experiment != Experiment::E3 {
            let one = QatPlan {
                configs: vec![cfg],
                ..plan.clone()
            };
            let e1 = run_e1_e2(data, &one, plan.budget(), seed, &mut cache, &device)?;
            stamp(SOURCE_E1, &e1)?;
        }
        if !e3_done && (cfg == plan.e3_config || experiment == Experiment::E3) {
            let res = run_e3(data, plan, seed, &mut cache, &device)?;
            stamp(SOURCE_E3, &res)?;
            e3_done = true;
        }
    }
    if !e3_done {
        let res = run_e3(data, plan, seed, &mut cache, &device)?;
        stamp(SOURCE_E3, &res)?;
    }
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `(resolution, width)` of the proxy configuration named `name` (`R_W`, as the tables spell it).
fn proxy_config(name: &str, base_channels: usize) -> Result<(usize, f64), String> {
    let family = tiny_family(base_channels);
    family
        .iter()
        .find(|m| m.config_name() == name)
        .map(|m| (m.resolution, m.width))
        .ok_or_else(|| {
            let names: Vec<String> = family.iter().map(|m| m.config_name()).collect();
            format!(
                "--config {name}: not a proxy configuration; use one of {}",
                names.join(", ")
            )
        })
}

fn print_csv(model: &MobileNetV1, a: &Assignment) {
    let f = a.footprint();
    println!("config,granularity,a_out_bits,w_bits,rom_bytes,ram_bytes");
    println!(
        "{},{},{},{},{},{}",
        model.config_name(),
        a.granularity.short(),
        a.bits.a_out_string(),
        a.bits.w_string(),
        f.rom_bytes(),
        f.peak_ram()
    );
}

fn print_table(model: &MobileNetV1, a: &Assignment) {
    let f = a.footprint();
    println!(
        "{} {} under ROM {} B / RAM {} B",
        model_label(model),
        a.granularity.paper_name(),
        a.budget.rom,
        a.budget.ram
    );
    println!(
        "{:>3} {:<6} {:>11} {:>9} {:>4} {:>5} {:>2} {:>9} {:>6} {:>4} {:>9}",
        "#", "type", "Cin->Cout", "HW", "a_in", "a_out", "w", "W bytes", "extra", "fold", "RAM"
    );
    for (i, l) in a.layers.iter().enumerate() {
        let kind = if l.stride == 2 {
            format!("{}/s2", l.kind.short())
        } else {
            l.kind.short().to_string()
        };
        println!(
            "{:>3} {:<6} {:>11} {:>9} {:>4} {:>5} {:>2} {:>9} {:>6} {:>4} {:>9}",
            i + 1,
            kind,
            format!("{}->{}", l.cin, l.cout),
            format!("{}->{}", l.hw_in, l.hw_out),
            a.bits.a_in(i),
            a.bits.a_out(i),
            a.bits.weights[i],
            (l.weights * u64::from(a.bits.weights[i])).div_ceil(8),
            f.per_layer_extra[i],
            a.folds[i].letter(),
            f.per_layer_ram[i]
        );
    }
    println!("a_out bits : {}", a.bits.a_out_string());
    println!("w bits     : {}", a.bits.w_string());
    println!(
        "ROM        : {} B = weights {} + extra {} (budget {})",
        f.rom_bytes(),
        f.weight_bytes,
        f.extra_bytes,
        a.budget.rom
    );
    println!("peak RAM   : {} B (budget {})", f.peak_ram(), a.budget.ram);
    println!("w-avg bits : {:.3}", a.weight_avg_bits());
    println!("cut order  : {}", a.cut_order_string());
}
