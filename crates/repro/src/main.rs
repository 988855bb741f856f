//! `repro compare`: published numbers next to reproduced ones, with a verdict per row.

use clap::{Parser, Subcommand};
use repro::compare::{ComparisonRow, compare, summary_line};
use repro::published::{PaperExperiments, paper_dirs};
use repro::results::{ResultRow, TableError, read_rows, write_rows_atomically};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "Reproduction bookkeeping shared by the five paper suites")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join results/<paper>/*.csv with experiments/<paper>/published.csv and judge each published row.
    Compare {
        /// Only this paper (folder name under experiments/, e.g. pocketnn); default all.
        #[arg(long)]
        paper: Option<String>,
        /// One line per paper with verdict counts instead of the full table.
        #[arg(long)]
        summary: bool,
        /// Which profile's rows to judge (`full` rows are the reproduction; `smoke` proves the plumbing).
        #[arg(long, default_value = "full")]
        profile: String,
        /// Workspace root holding experiments/ and results/ (default: found from the current directory).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Every result row of a paper: the CSV tables under `results/<paper>/` whose header is the standard
/// result header (per-epoch logs and kernel timings have their own shapes and are skipped).
fn paper_results(results_dir: &Path) -> Result<Vec<ResultRow>, TableError> {
    let Ok(entries) = std::fs::read_dir(results_dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv") && !p.ends_with("comparison.csv"))
        .collect();
    paths.sort();
    let mut rows = Vec::new();
    for path in paths {
        let header = std::fs::read_to_string(&path)
            .map_err(|e| TableError(format!("{}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        if header.split(',').any(|c| c == "run_id") && header.split(',').any(|c| c == "metric") {
            rows.extend(read_rows::<ResultRow>(&path)?);
        }
    }
    Ok(rows)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}

fn print_table(rows: &[ComparisonRow]) {
    println!(
        "{:<44} {:<28} {:<36} {:>5} {:<30} {:>10} {:>10} {:>9} {:>6} verdict",
        "source", "model", "method", "w/a", "metric", "published", "reproduced", "delta", "tol"
    );
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    for r in rows {
        println!(
            "{:<44} {:<28} {:<36} {:>5} {:<30} {:>10.3} {:>10} {:>9} {:>6} {}",
            cut(&r.source, 44),
            cut(&r.model, 28),
            cut(&r.method, 36),
            format!("{}/{}", r.w_bits, r.a_bits),
            cut(&r.metric, 30),
            r.published,
            fmt_opt(r.reproduced),
            fmt_opt(r.delta),
            fmt_opt(r.tolerance),
            r.verdict
        );
    }
}

fn run(cli: Cli) -> Result<(), TableError> {
    let Command::Compare {
        paper,
        summary,
        profile,
        root,
    } = cli.command;
    let root = root.unwrap_or_else(repro::workspace_root);
    let experiments_root = root.join("experiments");
    let all = paper_dirs(&experiments_root)?;
    let papers = match paper {
        Some(p) if all.contains(&p) => vec![p],
        Some(p) => {
            return Err(TableError(format!(
                "unknown paper {p:?}: choose one of {}",
                all.join(", ")
            )));
        }
        None => all,
    };
    for dir in papers {
        let experiments = PaperExperiments::load(&experiments_root, &dir)?;
        let results_dir = root.join("results").join(&dir);
        let rows = compare(&experiments, &paper_results(&results_dir)?, &profile);
        if summary {
            println!("{}", summary_line(&dir, &rows));
        } else {
            println!("== {dir}");
            print_table(&rows);
            println!("{}\n", summary_line(&dir, &rows));
        }
        if rows.iter().any(|r| r.reproduced.is_some()) {
            write_rows_atomically(&results_dir.join("comparison.csv"), &rows)?;
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
