//! E5/E6 (Figs 1.1c/4.1/4.2, the companion table, arXiv Table 4.6): MobileNetV1 widths x resolutions,
//! accuracy from the engine and batch-1 latency, float against the integer engine.

use super::*;

/// Median batch-1 latency in ms of `f` over `runs` runs after 3 warm-up runs, on a pool of
/// `threads` threads (Burn flex and the integer engine both use rayon).
pub fn latency_ms(threads: usize, runs: usize, mut f: impl FnMut() -> Res<()> + Send) -> Res<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(err)?;
    pool.install(|| {
        for _ in 0..3 {
            f()?;
        }
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            f()?;
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(&mut t))
    })
}

/// E5/E6: MobileNetV1 widths x resolutions (companion table keys: α x {224,192,160,128} mapped to
/// {28,24,20,16}), accuracy from the engine, batch-1 latency float vs integer at 1 and 2 threads,
/// for every seed. `width` restricts the grid to one width multiplier: a unit of the full profile
/// is one (seed, width), so that none runs for more than about an hour on two cores.
pub fn latency(ctx: &Ctx, width: Option<f64>) -> Res<()> {
    let widths = match width {
        None => ctx.sizes.e5_widths.clone(),
        Some(w) if ctx.sizes.e5_widths.contains(&w) => vec![w],
        Some(w) => {
            let grid: Vec<String> = ctx.sizes.e5_widths.iter().map(|a| a.to_string()).collect();
            return Err(format!(
                "--width {w} is not in the {} profile's grid: use one of {}",
                ctx.profile(),
                grid.join(", ")
            ));
        }
    };
    // The sets of a resolution are the same for every seed and width: resized once.
    for &res in &ctx.sizes.e5_resolutions {
        let splits = ctx.sets(res)?;
        for seed in ctx.seeds() {
            for &alpha in &widths {
                latency_model(ctx, alpha, res, seed, &splits)?;
            }
        }
    }
    figures(&ctx.out, ctx.args.profile)
}

/// One model of the E5 grid: float training and 8-bit QAT (both with their validation curves), top-1
/// of the float model and of the integer engine, and the batch-1 latencies.
fn latency_model(ctx: &Ctx, alpha: f64, res: usize, seed: u64, splits: &Splits) -> Res<()> {
    let ep = ctx.float_epochs();
    let te = &splits.test;
    let spec = ModelSpec::MobileNetV1(alpha);
    let paper_res = match res {
        28 => 224,
        24 => 192,
        20 => 160,
        _ => 128,
    };
    let model = format!("MobileNet_v1_{}_{paper_res}", width_label(alpha));
    let tag = format!("e5-mbv1_{alpha}-r{res}-s{seed}");
    let (float, float_report) =
        ctx.train_float(&spec, None, seed, splits, &format!("{tag}-float"))?;
    let f_acc = evaluate(&float, te, &Phase::FLOAT_EVAL, &ctx.device);
    let (q, qat_report) = ctx.qat(&float, (8, 8), seed, splits, &format!("{tag}-qat"))?;
    let ev = engine_eval(ctx, &q, te)?;
    let proxy = ctx.proxy(&format!("MobileNetV1 α={alpha}"), res);
    let row = |source: &str, method: &str, bits: (&str, &str), metric: &str, value: f64| {
        ctx.row(
            source, &model, method, bits, metric, value, &proxy, seed, ep,
        )
    };
    let m = "top1_acc_pct";
    let mut rows = vec![
        row(COMPANION, "float", ("32", "32"), m, f_acc),
        row(COMPANION, COMPANION_QAT, ("8", "8"), m, ev.top1),
    ];
    let mut curves = ctx.curve_rows(
        COMPANION,
        &model,
        "float",
        ("32", "32"),
        &float_report,
        &proxy,
        seed,
    );
    curves.extend(ctx.curve_rows(
        COMPANION,
        &model,
        COMPANION_QAT,
        ("8", "8"),
        &qat_report,
        &proxy,
        seed,
    ));
    let (x, _) = batch(te, &[0], &ctx.device);
    let img = te.image(0).to_vec();
    let float_method = "float (Burn flex f32)";
    let mut lat = [[0.0; 2]; 2];
    for (ti, threads) in [1usize, 2].into_iter().enumerate() {
        let runs = ctx.sizes.latency_runs;
        lat[0][ti] = latency_ms(threads, runs, || {
            let y = float.forward(x.clone(), &Phase::FLOAT_EVAL);
            y.into_data()
                .try_into_vec_as::<f32>()
                .map(|_| ())
                .map_err(err)
        })?;
        lat[1][ti] = latency_ms(threads, runs, || {
            ev.int.run(&img, 1).map(|_| ()).map_err(err)
        })?;
        let metric = format!("latency_ms_x86_batch1_{threads}thread");
        rows.push(row(FIG, float_method, ("32", "32"), &metric, lat[0][ti]));
        rows.push(row(FIG, QAT, ("8", "8"), &metric, lat[1][ti]));
    }
    for (i, method) in [float_method, QAT].into_iter().enumerate() {
        let bits = if i == 0 { ("32", "32") } else { ("8", "8") };
        rows.push(row(
            FIG,
            method,
            bits,
            "speedup_2threads_vs_1",
            lat[i][0] / lat[i][1],
        ));
    }
    eprintln!(
        "E5 {model} seed {seed}: float {f_acc:.2}% {:.3} ms | int8 {:.2}% {:.3} ms (1 thread)",
        lat[0][0], ev.top1, lat[1][0]
    );
    ctx.record("e5_latency", &rows)?;
    ctx.record("curves", &curves)
}

/// The accuracy-latency plot of every model in the E5 rows `rows` of `profile`, each point the
/// mean over the seeds the table holds; `None` when it holds no E5 model.
pub(crate) fn accuracy_latency_figure(rows: &[ResultRow], profile: &str) -> Option<String> {
    let mean = |model: &str, method: &str, metric: &str| -> Option<f64> {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r.profile == profile && r.model == model)
            .filter(|r| r.method == method && r.metric == metric)
            .map(|r| r.value)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let mut models: Vec<&str> = rows
        .iter()
        .filter(|r| r.profile == profile && r.source == COMPANION)
        .map(|r| r.model.as_str())
        .collect();
    models.sort_unstable();
    models.dedup();
    let lat = "latency_ms_x86_batch1_1thread";
    let points: Vec<(String, f64, f64, f64, f64)> = models
        .into_iter()
        .filter_map(|m| {
            Some((
                m.to_string(),
                mean(m, "float", "top1_acc_pct")?,
                mean(m, "float (Burn flex f32)", lat)?,
                mean(m, COMPANION_QAT, "top1_acc_pct")?,
                mean(m, QAT, lat)?,
            ))
        })
        .collect();
    let seeds = {
        let mut s: Vec<u64> = rows.iter().map(|r| r.seed).collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let dataset = rows.first().map(|r| r.dataset.as_str()).unwrap_or_default();
    let subtitle = format!(
        "{dataset}, MobileNetV1 width x resolution, mean over {seeds} seed(s), median batch-1 runs"
    );
    (!points.is_empty()).then(|| plot_svg(&points, &subtitle))
}

pub(crate) fn width_label(alpha: f64) -> String {
    // The companion table spells widths 1.0, 0.75, 0.50, 0.25.
    if (alpha - 1.0).abs() < 1e-9 {
        "1.0".into()
    } else {
        format!("{alpha:.2}")
    }
}

/// Accuracy against batch-1 latency (log x axis): one labelled marker series for float, one for the
/// 8-bit integer engine; `points` are `(model, float top-1, float ms, int8 top-1, int8 ms)`.
fn plot_svg(points: &[(String, f64, f64, f64, f64)], subtitle: &str) -> String {
    let label = |m: &String| m.trim_start_matches("MobileNet_v1_").to_string();
    Chart {
        title: format!("Top-1 vs batch-1 latency (1 thread): {subtitle}"),
        x_label: "batch-1 latency (ms, log scale)".into(),
        y_label: "top-1 (%)".into(),
        log_x: true,
        series: vec![
            Series::labelled_markers(
                "float (Burn flex)",
                points.iter().map(|p| ((p.2, p.1), label(&p.0))).collect(),
                color(0),
            ),
            Series::labelled_markers(
                "8-bit integer engine",
                points.iter().map(|p| ((p.4, p.3), label(&p.0))).collect(),
                color(3),
            ),
        ],
        ..Default::default()
    }
    .render()
}
