//! Burn's f32 matmul on the flex CPU backend, on the GEMM shapes of `bench-kernels`: the engine a
//! user would otherwise pick for float inference. Run after `bench-kernels` (which rewrites
//! `results/quant-core/kernels.csv`); this replaces the table's `burn-flex` rows and keeps the rest,
//! so both engines are compared from one session.
//!
//! Usage: `bench-burn-matmul [--out results/quant-core] [--quick]`.

use burn::prelude::*;
use burn::tensor::Distribution;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const HEADER: &str = "kernel,shape,threads,engine,dtype,gops";

/// GEMM shapes `(kernel, M, K, N)`, the same as quant-core's benchmark.
const SHAPES: [(&str, usize, usize, usize); 4] = [
    ("gemm", 64, 784, 100),
    ("gemm", 256, 1024, 1024),
    ("gemm", 1024, 1024, 1024),
    ("conv-as-gemm", 3136, 288, 64),
];

/// Best-of throughput in GOP/s over repetitions filling `budget` (after one warm-up call).
fn gops(dev: &Device, m: usize, k: usize, n: usize, budget: Duration) -> f64 {
    let a = Tensor::<2>::random([m, k], Distribution::Default, dev);
    let b = Tensor::<2>::random([k, n], Distribution::Default, dev);
    let run = || {
        let start = Instant::now();
        // Reading the result back forces the computation to finish.
        let _ = a.clone().matmul(b.clone()).into_data();
        start.elapsed().as_secs_f64()
    };
    run();
    let (mut best, started) = (f64::INFINITY, Instant::now());
    while started.elapsed() < budget {
        best = best.min(run());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = PathBuf::from("results/quant-core");
    let mut budget = Duration::from_millis(700);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--quick" => budget = Duration::from_millis(60),
            other => {
                return Err(format!("unknown argument {other}: use --out DIR or --quick").into());
            }
        }
    }
    let path = out.join("kernels.csv");
    let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| format!("{HEADER}\n"));
    if existing.lines().next() != Some(HEADER) {
        return Err(format!(
            "{}: unexpected header: run bench-kernels first",
            path.display()
        )
        .into());
    }
    let mut table: Vec<String> = existing
        .lines()
        .filter(|l| !l.contains(",burn-flex,"))
        .map(String::from)
        .collect();
    let dev = Device::flex();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        for &(kernel, m, k, n) in &SHAPES {
            let g = pool.install(|| gops(&dev, m, k, n, budget));
            println!("{kernel:<13} {m}x{k}x{n:<6} threads {threads}: burn-flex f32 {g:8.2} GOP/s");
            table.push(format!(
                "{kernel},{m}x{k}x{n},{threads},burn-flex,f32,{g:.2}"
            ));
        }
    }
    std::fs::create_dir_all(&out)?;
    let tmp = path.with_extension("csv.burn.tmp");
    std::fs::write(&tmp, table.join("\n") + "\n")?;
    std::fs::rename(&tmp, &path)?;
    println!("wrote {}", path.display());
    Ok(())
}
