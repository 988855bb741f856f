//! Kernel benchmark: our int8 path vs our f32 path on the GEMM shapes of issue 3 and a
//! MobileNet-style conv / pointwise / depthwise layer, with 1 and 2 threads.
//!
//! Writes `results/quant-core/kernels.csv` (`kernel,shape,threads,engine,dtype,gops`, engine
//! `quant-core`) atomically plus `kernels.manifest.json`, and prints GOP/s, the int8/f32 ratio,
//! the fraction of the instruction ceilings measured on this machine ([`ceiling`]) and of the
//! nominal AVX-512 VNNI peak (64 int8 multiply-adds per cycle per core at the reported clock). `scripts/bench_onnxruntime.py` appends ONNX Runtime rows.
//!
//! Usage: `cargo run --release -p quant-core --bin bench-kernels [-- --out DIR] [--quick]`.

#[cfg(target_arch = "x86_64")]
mod ceiling;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quant_core::baseline_f32::{PackedF32, gemm_f32};
use quant_core::fixedpoint::{QuantizedMultiplier, RoundingMode};
use quant_core::kernels::profile::{self, Breakdown};
use quant_core::kernels::{
    Backend, ConvGeometry, DepthwiseWeights, OutputStage, PackedWeights, conv2d, depthwise_conv2d,
    gemm,
};

/// Calls per phase-split measurement (after the timed runs, so caches are warm).
const BREAKDOWN_REPS: usize = 20;

struct Row {
    kernel: &'static str,
    shape: String,
    threads: usize,
    dtype: &'static str,
    gops: f64,
    /// Operations of one call.
    ops: f64,
    /// Median seconds per call.
    seconds: f64,
    /// int8 rows: thread time per phase of one call (packing, microkernel, epilogue).
    breakdown: Option<Breakdown>,
}

impl Row {
    /// A result of `ops` operations in `seconds`.
    fn new(
        kernel: &'static str,
        shape: &str,
        threads: usize,
        dtype: &'static str,
        ops: f64,
        seconds: f64,
    ) -> Row {
        Row {
            kernel,
            shape: shape.to_string(),
            threads,
            dtype,
            gops: ops / seconds / 1e9,
            ops,
            seconds,
            breakdown: None,
        }
    }

    /// The same row with the phase split of one call, measured over `reps` calls of `f`.
    fn with_breakdown(mut self, reps: usize, mut f: impl FnMut()) -> Row {
        let ((), b) = profile::measure(|| (0..reps).for_each(|_| f()));
        let per_call = |d: Duration| d / reps as u32;
        self.breakdown = Some(Breakdown {
            pack: per_call(b.pack),
            tile: per_call(b.tile),
            epilogue: per_call(b.epilogue),
        });
        self
    }
}

/// Median seconds per call over enough repetitions to fill `budget`.
fn time_it(budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm-up (page faults, caches)
    let t0 = Instant::now();
    f();
    let once = t0.elapsed().as_secs_f64().max(1e-7);
    let reps = ((budget.as_secs_f64() / once) as usize).clamp(3, 2000);
    let mut samples: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}

fn stage(n: usize) -> OutputStage {
    OutputStage {
        bias: vec![100; n],
        multipliers: vec![QuantizedMultiplier::new(1_500_000_000, -12).expect("valid shift"); n],
        rounding: RoundingMode::Double,
        output_zero_point: 128,
        act_min: 0,
        act_max: 255,
    }
}

fn cpu_mhz() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|i| {
            i.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mut out_dir = PathBuf::from("results/quant-core");
    let mut budget = Duration::from_millis(700);
    let mut forced: Option<Backend> = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--out" => {
                out_dir = PathBuf::from(args.get(i + 1).ok_or("--out needs a directory")?);
                i += 1;
            }
            "--quick" => budget = Duration::from_millis(60),
            "--backend" => {
                let name = args.get(i + 1).ok_or("--backend needs a name")?;
                forced = Some(Backend::from_name(name).ok_or_else(|| {
                    format!("unknown backend {name}; use scalar, avx2, avx512vnni or amx")
                })?);
                i += 1;
            }
            "--help" | "-h" => {
                println!(
                    "bench-kernels [--out DIR] [--quick] [--backend scalar|avx2|avx512vnni|amx]: int8 vs \
                     f32 kernel GOP/s, 1 and 2 threads, and where the int8 time goes"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}; try --help").into()),
        }
        i += 1;
    }
    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let backend = forced.unwrap_or_else(Backend::detect);
    backend.ensure_available()?;
    let mhz = cpu_mhz();
    println!(
        "backend {} | cpu {} | clock {:?} MHz",
        backend.name(),
        cpu_model(),
        mhz
    );

    #[cfg(target_arch = "x86_64")]
    let ceilings = Some(ceiling::measure());
    #[cfg(not(target_arch = "x86_64"))]
    let ceilings: Option<()> = None;
    println!("measured ceilings per core (GOP/s): {ceilings:?}");
    #[cfg(target_arch = "x86_64")]
    let (int8_ceiling, f32_ceiling) = ceilings.map_or((None, None), |c| {
        let int8 = match backend {
            Backend::Avx512Vnni => c.int8_vnni_gops,
            Backend::Amx => c.int8_amx_gops,
            _ => c.int8_avx2_gops,
        };
        (int8, c.f32_fma_gops)
    });
    #[cfg(not(target_arch = "x86_64"))]
    let (int8_ceiling, f32_ceiling): (Option<f64>, Option<f64>) = (None, None);

    let mut rows: Vec<Row> = Vec::new();
    let gemms: [(&str, usize, usize, usize); 4] = [
        ("gemm", 64, 784, 100),
        ("gemm", 256, 1024, 1024),
        ("gemm", 1024, 1024, 1024),
        ("conv-as-gemm", 3136, 288, 64),
    ];
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            for &(kernel, m, k, n) in &gemms {
                let ops = 2.0 * (m * k * n) as f64;
                let shape = format!("{m}x{k}x{n}");
                let a = bytes(m * k, 1);
                let w: Vec<i8> = bytes(k * n, 2).into_iter().map(|v| v as i8).collect();
                let pw = PackedWeights::new(&w, k, n, &[0], backend)?;
                let st = stage(n);
                let mut out = vec![0u8; m * n];
                let mut call = || gemm(&a, m, 3, &pw, &st, &mut out).expect("valid gemm");
                let t = time_it(budget, &mut call);
                rows.push(
                    Row::new(kernel, &shape, threads, "int8", ops, t)
                        .with_breakdown(BREAKDOWN_REPS, call),
                );
                let af: Vec<f32> = a.iter().map(|&v| f32::from(v) / 255.0).collect();
                let wf: Vec<f32> = w.iter().map(|&v| f32::from(v) / 127.0).collect();
                let pf = PackedF32::new(&wf, k, n).ok_or("f32 pack")?;
                let mut cf = vec![0f32; m * n];
                let t = time_it(budget, || {
                    gemm_f32(&af, m, &pf, &mut cf).expect("valid f32 gemm")
                });
                rows.push(Row::new(kernel, &shape, threads, "f32", ops, t));
            }
            // MobileNet-style layers (NHWC, batch 1, padding k / 2 on every side): 3x3 conv, 1x1
            // pointwise, MobileNetV1 0.25's stem (3 -> 8 channels, stride 2: short window rows
            // and 8 columns), 3x3 depthwise.
            for (kernel, h, cin, cout, ks, stride) in [
                ("conv3x3", 56, 32, 64, 3, 1),
                ("conv1x1", 28, 256, 256, 1, 1),
                ("conv3x3", 224, 3, 8, 3, 2),
            ] {
                let g = ConvGeometry::symmetric((h, h, cin), ks, stride, ks / 2)?;
                let (oh, pixels) = (g.out_h(), g.out_h() * g.out_w());
                let kdepth = ks * ks * cin;
                let ops = 2.0 * (pixels * kdepth * cout) as f64;
                let x = bytes(g.in_len(), 3);
                let w: Vec<i8> = bytes(kdepth * cout, 4)
                    .into_iter()
                    .map(|v| v as i8)
                    .collect();
                let pw = PackedWeights::new(&w, kdepth, cout, &[0], backend)?;
                let st = stage(cout);
                let mut out = vec![0u8; pixels * cout];
                let shape = match stride {
                    1 => format!("{h}x{h}x{cin}->{cout}"),
                    s => format!("{h}x{h}x{cin}->{cout}-s{s}"),
                };
                let mut call = || conv2d(&x, 1, &g, 5, &pw, &st, &mut out).expect("valid conv");
                let t = time_it(budget, &mut call);
                rows.push(
                    Row::new(kernel, &shape, threads, "int8", ops, t)
                        .with_breakdown(BREAKDOWN_REPS, call),
                );
                // f32: same im2col + blocked GEMM (1x1 needs no im2col).
                let xf: Vec<f32> = x.iter().map(|&v| f32::from(v)).collect();
                let wf: Vec<f32> = w.iter().map(|&v| f32::from(v)).collect();
                let pf = PackedF32::new(&wf, kdepth, cout).ok_or("f32 pack")?;
                let mut cf = vec![0f32; pixels * cout];
                let t = time_it(budget, || {
                    if ks == 1 {
                        gemm_f32(&xf, pixels, &pf, &mut cf).expect("valid f32 gemm");
                    } else {
                        let mut cols = vec![0f32; pixels * kdepth];
                        let pad = (ks / 2) as isize;
                        for oy in 0..oh {
                            for ox in 0..oh {
                                for ky in 0..ks {
                                    for kx in 0..ks {
                                        let (iy, ix) = (
                                            (oy * stride + ky) as isize - pad,
                                            (ox * stride + kx) as isize - pad,
                                        );
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= h as isize
                                        {
                                            continue;
                                        }
                                        let src =
                                            &xf[((iy as usize) * h + ix as usize) * cin..][..cin];
                                        let dst = (oy * oh + ox) * kdepth + (ky * ks + kx) * cin;
                                        cols[dst..dst + cin].copy_from_slice(src);
                                    }
                                }
                            }
                        }
                        gemm_f32(&cols, pixels, &pf, &mut cf).expect("valid f32 gemm");
                    }
                });
                rows.push(Row::new(kernel, &shape, threads, "f32", ops, t));
            }
            // A MobileNet depthwise layer, and a thin one (MobileNetV1 0.25's first, 8 channels
            // at 112x112, where the VNNI kernel steps over several pixels per block).
            for (h, c) in [(56, 128), (112, 8)] {
                let g = ConvGeometry::new(h, h, c, 3, 1, true)?;
                let ops = 2.0 * (h * h * 9 * c) as f64;
                let x = bytes(g.in_len(), 5);
                let w: Vec<i8> = bytes(9 * c, 6).into_iter().map(|v| v as i8).collect();
                let dw = DepthwiseWeights::new(&w, 3, 3, c, &[0], backend)?;
                let st = stage(c);
                let mut out = vec![0u8; h * h * c];
                let shape = format!("{h}x{h}x{c}");
                let mut call =
                    || depthwise_conv2d(&x, 1, &g, 5, &dw, &st, &mut out).expect("valid dw");
                let t = time_it(budget, &mut call);
                rows.push(
                    Row::new("depthwise3x3", &shape, threads, "int8", ops, t)
                        .with_breakdown(BREAKDOWN_REPS, call),
                );
                let xf: Vec<f32> = x.iter().map(|&v| f32::from(v)).collect();
                let wf: Vec<f32> = w.iter().map(|&v| f32::from(v)).collect();
                let mut of = vec![0f32; h * h * c];
                let t = time_it(budget, || depthwise_f32(&xf, h, c, &wf, &mut of));
                rows.push(Row::new("depthwise3x3", &shape, threads, "f32", ops, t));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    }

    // Report.
    let peak_per_core = mhz.map(|m| 64.0 * 2.0 * m / 1000.0); // VNNI: 64 int8 MACs/cycle/core
    println!(
        "{:<14} {:<18} {:>3} {:>10} {:>10} {:>8} {:>11} {:>11} {:>10}",
        "kernel",
        "shape",
        "thr",
        "int8 GOP/s",
        "f32 GOP/s",
        "int8/f32",
        "int8 ceil.",
        "f32 ceil.",
        "VNNI peak"
    );
    let pct = |gops: f64, per_core: Option<f64>, threads: usize| {
        per_core.map_or(f64::NAN, |p| 100.0 * gops / (p * threads as f64))
    };
    for r in rows.iter().filter(|r| r.dtype == "int8") {
        let f = rows.iter().find(|x| {
            x.dtype == "f32" && x.shape == r.shape && x.threads == r.threads && x.kernel == r.kernel
        });
        let fg = f.map_or(f64::NAN, |f| f.gops);
        let line = format!(
            "{:<14} {:<18} {:>3} {:>10.1} {:>10.1} {:>8.2} {:>10.1}% {:>10.1}% {:>9.1}%",
            r.kernel,
            r.shape,
            r.threads,
            r.gops,
            fg,
            r.gops / fg,
            pct(r.gops, int8_ceiling, r.threads),
            pct(fg, f32_ceiling, r.threads),
            pct(r.gops, peak_per_core, r.threads),
        );
        println!("{line}");
    }

    println!(
        "\nwhere the int8 time goes (thread time of one call, summed over threads; tile GOP/s = products / (microkernel thread time / threads))"
    );
    println!(
        "{:<14} {:<18} {:>3} {:>10} {:>7} {:>7} {:>7} {:>11}",
        "kernel", "shape", "thr", "call us", "pack", "tile", "epil.", "tile GOP/s"
    );
    let mut breakdowns = Vec::new();
    for r in &rows {
        let Some(b) = r.breakdown else { continue };
        let total = b.total().as_secs_f64().max(1e-12);
        let share = |d: Duration| 100.0 * d.as_secs_f64() / total;
        let tile_gops = r.ops * r.threads as f64 / b.tile.as_secs_f64().max(1e-12) / 1e9;
        println!(
            "{:<14} {:<18} {:>3} {:>10.1} {:>6.1}% {:>6.1}% {:>6.1}% {:>11.1}",
            r.kernel,
            r.shape,
            r.threads,
            r.seconds * 1e6,
            share(b.pack),
            share(b.tile),
            share(b.epilogue),
            tile_gops
        );
        breakdowns.push(serde_json::json!({
            "kernel": r.kernel,
            "shape": r.shape,
            "threads": r.threads,
            "pack_us": b.pack.as_secs_f64() * 1e6,
            "tile_us": b.tile.as_secs_f64() * 1e6,
            "epilogue_us": b.epilogue.as_secs_f64() * 1e6,
        }));
    }

    std::fs::create_dir_all(&out_dir)?;
    let mut csv = String::from("kernel,shape,threads,engine,dtype,gops\n");
    for r in &rows {
        writeln!(
            csv,
            "{},{},{},quant-core,{},{:.2}",
            r.kernel, r.shape, r.threads, r.dtype, r.gops
        )?;
    }
    let path = out_dir.join("kernels.csv");
    let tmp = out_dir.join("kernels.csv.tmp");
    std::fs::write(&tmp, csv)?;
    std::fs::rename(&tmp, &path)?;
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let ended = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let manifest = serde_json::json!({
        "command": args.join(" "),
        "git_commit": commit,
        "start_unix": started,
        "end_unix": ended,
        "machine": cpu_model(),
        "cpu_mhz": mhz,
        "threads": [1, 2],
        "int8_backend": backend.name(),
        "vnni_peak_gops_per_core": peak_per_core,
        "measured_ceilings_gops_per_core": ceilings,
        "note": "int8 path includes activation packing and the fused requantizing output stage; conv includes im2col",
        "int8_breakdown_thread_time_per_call": breakdowns,
    });
    let mpath = out_dir.join("kernels.manifest.json");
    let mtmp = out_dir.join("kernels.manifest.json.tmp");
    std::fs::write(&mtmp, serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(&mtmp, &mpath)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Float depthwise 3x3, stride 1, SAME padding, NHWC (channels innermost, vectorizable).
fn depthwise_f32(x: &[f32], h: usize, c: usize, w: &[f32], out: &mut [f32]) {
    for oy in 0..h {
        for ox in 0..h {
            let o = &mut out[(oy * h + ox) * c..][..c];
            o.fill(0.0);
            for ky in 0..3 {
                for kx in 0..3 {
                    let (iy, ix) = ((oy + ky) as isize - 1, (ox + kx) as isize - 1);
                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= h as isize {
                        continue;
                    }
                    let src = &x[((iy as usize) * h + ix as usize) * c..][..c];
                    let wt = &w[(ky * 3 + kx) * c..][..c];
                    for ((a, &s), &wv) in o.iter_mut().zip(src).zip(wt) {
                        *a += s * wv;
                    }
                }
            }
        }
    }
}
