//! `bench-train`: times one training step of every model of the catalog in float and each QAT
//! mode, on each thread count, and records the rows (see the crate docs and the README's
//! "Benchmarks" section).

use std::path::PathBuf;

use burn::prelude::Device;
use clap::Parser;
use quant_train::BackendKind;
use repro::manifest::Run;
use repro::results::table_path;
use train_bench::catalog::{BenchModel, catalog, select};
use train_bench::table::{self, TrainStepRow};
use train_bench::timing::{StepPlan, synthetic, time_steps};
use train_bench::trainee::{BATCH, trainee};

#[derive(Parser)]
#[command(
    name = "bench-train",
    about = "One training step (forward, backward, optimizer) of every model the papers train, in Burn",
    long_about = "One training step (forward, backward, optimizer) of every model the papers train, \
                  in Burn.\n\nBatch 128 of synthetic 1-channel images, float and each paper's QAT mode, \
                  through each paper's own training function, on each thread count (one rayon pool \
                  per count). Rows go to <out>/quant-train/train_step.csv with a manifest; \
                  scripts/bench_torch_train.py then times the same architectures in PyTorch and \
                  prints the ratios (`make bench-train` runs both)."
)]
struct Cli {
    /// Smoke run: 1 warm-up and 2 timed steps per row instead of 2 and 5 x 2; rows go to
    /// target/results-smoke/ unless --out says otherwise.
    #[arg(long)]
    quick: bool,
    /// Only these model keys, comma-separated (--list shows them).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Thread counts to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    threads: Vec<usize>,
    /// Results root (default: results/ for the full run, target/results-smoke/ with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the model keys with their papers and modes, and exit.
    #[arg(long)]
    list: bool,
    /// Also time every row with quant-train's flex kernels off (Burn's own operations, engine
    /// `burn-flex-ops`): the speed-up of the kernels, measured in the same run.
    #[arg(long)]
    burn_ops: bool,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let mut threads = cli.threads.clone();
    if threads.is_empty() || threads.contains(&0) {
        return Err("--threads 0: use 1 or more".into());
    }
    threads.sort_unstable();
    threads.dedup();
    let models = select(catalog()?, &cli.models)?;
    if cli.list {
        for m in &models {
            let modes: Vec<&str> = m.paper.modes().iter().map(|m| m.name()).collect();
            println!("{:<28} {:<20} {}", m.key, m.paper.name(), modes.join(" "));
        }
        return Ok(());
    }
    let (plan, profile) = if cli.quick {
        (StepPlan::QUICK, repro::Profile::Smoke)
    } else {
        (StepPlan::FULL, repro::Profile::Full)
    };
    let out = repro::out_dir::results_root(cli.out.as_deref(), profile.name());
    let path = table_path(&out, table::DIR, table::TABLE);
    let run = Run::start(profile.name(), threads[threads.len() - 1]);
    let pools = threads
        .iter()
        .map(|&n| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build();
            pool.map(|p| (n, p))
                .map_err(|e| format!("thread pool: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    println!(
        "{} on {}: batch {BATCH}, {} warm-up + {} x {} timed steps per row",
        table::build(),
        repro::manifest::host_cpu(),
        plan.warmup,
        plan.calls,
        plan.steps
    );
    let device = BackendKind::Flex.device();
    let mut written = 0;
    for model in &models {
        let rows = time_model(model, plan, &pools, cli.burn_ops, &device, &run)?;
        written = run.record(&path, &rows, &[]).map_err(|e| e.to_string())?;
    }
    println!("wrote {} ({written} rows)", path.display());
    println!(
        "next: python3 scripts/bench_torch_train.py --out {}{}",
        out.display(),
        if cli.quick { " --quick" } else { "" }
    );
    Ok(())
}

/// The rows of one model: every mode of its paper on every thread pool, with quant-train's kernels
/// (and, with `burn_ops`, again with Burn's own operations).
fn time_model(
    model: &BenchModel,
    plan: StepPlan,
    pools: &[(usize, rayon::ThreadPool)],
    burn_ops: bool,
    device: &Device,
    run: &Run,
) -> Result<Vec<TrainStepRow>, String> {
    let calibration = synthetic(model.side, 2 * BATCH, 3);
    let engines: &[&str] = if burn_ops {
        &[table::ENGINE, table::ENGINE_BURN_OPS]
    } else {
        &[table::ENGINE]
    };
    let mut rows = Vec::new();
    for &mode in model.paper.modes() {
        for (threads, pool) in pools {
            for &engine in engines {
                let measure = || {
                    let mut trainee = trainee(model, mode, &calibration, device)?;
                    let timing = time_steps(trainee.as_mut(), model.side, plan)?;
                    Ok::<_, String>((trainee.params(), timing))
                };
                let (params, t) = pool.install(|| {
                    if engine == table::ENGINE {
                        measure()
                    } else {
                        quant_train::fast_path::without(measure)
                    }
                })?;
                println!(
                    "{:<28} {:<16} {threads} thr {engine:<14}: {:9.2} ms/step (mean {:9.2}, cpu/wall {:.2}), {params} params; {}",
                    model.key,
                    mode.name(),
                    t.median_ms,
                    t.mean_ms,
                    t.cpu_per_wall,
                    t.breakdown()
                );
                rows.push(TrainStepRow {
                    model: model.key.clone(),
                    paper: model.paper.name().into(),
                    mode: mode.name().into(),
                    threads: *threads,
                    engine: engine.into(),
                    build: table::build(),
                    batch: BATCH,
                    params,
                    ms_per_step: round_to(t.median_ms, 3),
                    ms_mean: round_to(t.mean_ms, 3),
                    cpu_per_wall: round_to(t.cpu_per_wall, 2),
                    timed_steps: t.steps,
                    kernel_ms: t.breakdown(),
                    profile: run.profile.clone(),
                    run_id: run.run_id.clone(),
                });
            }
        }
    }
    Ok(rows)
}

/// `x` rounded to `digits` decimals: the table keeps what a timing can resolve.
fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}
