//! E5/E6 (Figs 1.1c/4.1/4.2, the companion table, arXiv Table 4.6): MobileNetV1 widths x resolutions,
//! accuracy from the engine and batch-1 latency, float against the integer engine.

use super::*;

/// Median batch-1 latency in ms of `f` over `runs` runs after 3 warm-up runs, on a pool of
/// `threads` threads (Burn flex and the integer engine both use rayon).
pub(crate) fn latency_ms(
    threads: usize,
    runs: usize,
    mut f: impl FnMut() -> Res<()> + Send,
) -> Res<f64> {
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
/// {28,24,20,16}), accuracy from the engine, batch-1 latency float vs integer at 1 and 2 threads.
pub fn latency(ctx: &Ctx) -> Res<()> {
    let seed = ctx.first_seed();
    let ep = ctx.float_epochs();
    let (mut rows, mut points) = (Vec::new(), Vec::new());
    for &alpha in &ctx.sizes.e5_widths {
        for &res in &ctx.sizes.e5_resolutions {
            let mut splits = ctx.sets(res)?;
            splits.train = splits.train.truncated(ctx.sizes.e5_train);
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
            let (float, _) =
                ctx.train_float(&spec, None, seed, &splits, &format!("{tag}-float"))?;
            let f_acc = evaluate(&float, te, &Phase::FLOAT_EVAL, &ctx.device);
            let (q, _) = ctx.qat(&float, (8, 8), seed, &splits, &format!("{tag}-qat"))?;
            let ev = engine_eval(ctx, &q, te)?;
            let proxy = ctx.proxy(
                &format!(
                    "MobileNetV1 α={alpha} (float trained on {} images)",
                    splits.train.len()
                ),
                res,
            );
            let m = "top1_acc_pct";
            rows.push(ctx.row(
                COMPANION,
                &model,
                "float",
                ("32", "32"),
                m,
                f_acc,
                &proxy,
                seed,
                ep,
            ));
            rows.push(ctx.row(
                COMPANION,
                &model,
                "QAT (contrib.quantize, fake-quant graph)",
                ("8", "8"),
                m,
                ev.top1,
                &proxy,
                seed,
                ep,
            ));
            let (x, _) = batch(te, &[0], &ctx.device);
            let img = te.image(0).to_vec();
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
                rows.push(ctx.row(
                    FIG,
                    &model,
                    "float (Burn flex f32)",
                    ("32", "32"),
                    &metric,
                    lat[0][ti],
                    &proxy,
                    seed,
                    ep,
                ));
                rows.push(ctx.row(
                    FIG,
                    &model,
                    QAT,
                    ("8", "8"),
                    &metric,
                    lat[1][ti],
                    &proxy,
                    seed,
                    ep,
                ));
            }
            for (i, method) in ["float (Burn flex f32)", QAT].into_iter().enumerate() {
                rows.push(ctx.row(
                    FIG,
                    &model,
                    method,
                    if i == 0 { ("32", "32") } else { ("8", "8") },
                    "speedup_2threads_vs_1",
                    lat[i][0] / lat[i][1],
                    &proxy,
                    seed,
                    ep,
                ));
            }
            eprintln!(
                "E5 {model}: float {f_acc:.2}% {:.3} ms | int8 {:.2}% {:.3} ms (1 thread)",
                lat[0][0], ev.top1, lat[1][0]
            );
            points.push((model, f_acc, lat[0][0], ev.top1, lat[1][0]));
        }
    }
    ctx.record("e5_latency", &rows)?;
    let svg = ctx.out.join(PAPER_DIR).join("e5_latency_accuracy.svg");
    let subtitle = format!(
        "{}, MobileNetV1 width x resolution, {} test images, median of {} batch-1 runs",
        ctx.dataset_name(),
        ctx.sizes.test.min(ctx.data.test.len()),
        ctx.sizes.latency_runs
    );
    std::fs::write(&svg, plot_svg(&points, &subtitle))
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    eprintln!("wrote {}", svg.display());
    Ok(())
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
pub(crate) fn plot_svg(points: &[(String, f64, f64, f64, f64)], subtitle: &str) -> String {
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
