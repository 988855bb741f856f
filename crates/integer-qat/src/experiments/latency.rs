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
    let model = format!("MobileNet_v1_{}_{}", width_label(alpha), paper_side(res));
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
    let lat = batch1_latencies(ctx, &float, x, &ev.int, te.image(0))?;
    rows.extend(latency_rows(&lat, [FLOAT_BURN, QAT], row));
    eprintln!(
        "E5 {model} seed {seed}: float {f_acc:.2}% {:.3} ms | int8 {:.2}% {:.3} ms (1 thread)",
        lat[0][0], ev.top1, lat[1][0]
    );
    ctx.record("e5_latency", &rows)?;
    ctx.record("curves", &curves)
}

/// The companion table's input side that the proxy side `res` stands for (28, 24, 20, 16 for 224,
/// 192, 160, 128).
fn paper_side(res: usize) -> usize {
    match res {
        28 => 224,
        24 => 192,
        20 => 160,
        _ => 128,
    }
}

/// The float model's method in the latency rows.
const FLOAT_BURN: &str = "float (Burn flex f32)";

/// Median batch-1 latencies (ms) `[float, integer][1 thread, 2 threads]` of `float` on the image
/// tensor `x` and of the integer engine `int` on the same image's bytes `img`.
fn batch1_latencies(
    ctx: &Ctx,
    float: &Net,
    x: Tensor<4>,
    int: &IntegerNet,
    img: &[u8],
) -> Res<[[f64; 2]; 2]> {
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
        lat[1][ti] = latency_ms(threads, runs, || int.run(img, 1).map(|_| ()).map_err(err))?;
    }
    Ok(lat)
}

/// The rows of `lat` ([`batch1_latencies`]): each latency and each engine's two-thread speedup,
/// under the methods `[float, integer]`; `row(source, method, bits, metric, value)`.
fn latency_rows(
    lat: &[[f64; 2]; 2],
    [float_method, int_method]: [&str; 2],
    row: impl Fn(&str, &str, (&str, &str), &str, f64) -> ResultRow,
) -> Vec<ResultRow> {
    let methods = [(float_method, ("32", "32")), (int_method, ("8", "8"))];
    let mut rows = Vec::new();
    for (ti, threads) in [1, 2].into_iter().enumerate() {
        let metric = format!("latency_ms_x86_batch1_{threads}thread");
        for (i, (method, bits)) in methods.into_iter().enumerate() {
            rows.push(row(FIG, method, bits, &metric, lat[i][ti]));
        }
    }
    for (i, (method, bits)) in methods.into_iter().enumerate() {
        rows.push(row(
            FIG,
            method,
            bits,
            "speedup_2threads_vs_1",
            lat[i][0] / lat[i][1],
        ));
    }
    rows
}

/// The float and integer methods of the rows of [`shapes`]: the models are not trained.
const SHAPES_METHODS: [&str; 2] = [
    "float (Burn flex f32, untrained weights)",
    "8-bit integer-only (untrained weights)",
];
/// The `dataset` of the rows of [`shapes`]: what the models read, at ImageNet's shape.
const SHAPES_DATA: &str = "noise images (ImageNet shape)";
/// Noise images the activation ranges of [`shapes`] are calibrated on.
const NOISE_IMAGES: usize = 8;

/// E5 at the paper's own shapes (`shapes`): batch-1 latency, float (Burn flex) against the integer
/// engine at one and two threads, of the full-size MobileNetV1 (the zoo's `imagenet-mbv1:α`, 1000
/// classes) at every width of the profile's grid and the companion table's resolution that each
/// proxy side stands for. Latency does not depend on the weights' values, so the models are not
/// trained (seeded initial weights, activation ranges calibrated on a few noise images) and need
/// no ImageNet; each seed is a fresh model. Rows per seed, recorded as each seed ends.
pub fn shapes(ctx: &Ctx) -> Res<()> {
    for seed in ctx.seeds() {
        let mut rows = Vec::new();
        for &alpha in &ctx.sizes.e5_widths {
            for &res in &ctx.sizes.e5_resolutions {
                rows.extend(shape_latency(ctx, alpha, paper_side(res), seed)?);
            }
        }
        ctx.record("e5_shapes", &rows)?;
    }
    Ok(())
}

/// [`shapes`] of one width, side and seed.
fn shape_latency(ctx: &Ctx, alpha: f64, side: usize, seed: u64) -> Res<Vec<ResultRow>> {
    let mut config = ModelConfig::new(ModelSpec::ImageNetMobileNetV1(alpha), seed);
    config.input = [3, side, side];
    config.classes = IMAGENET_CLASSES;
    let float = config.build(&ctx.device);
    let noise = noise_images(NOISE_IMAGES, side, seed);
    let all: Vec<usize> = (0..noise.len()).collect();
    let quantized = calibrated_on(&float, (8, 8), &noise, &all, &ctx.device)?;
    let int = export(&quantized, [3, side, side], RoundingMode::Double).map_err(err)?;
    let (x, _) = batch(&noise, &[0], &ctx.device);
    let lat = batch1_latencies(ctx, &float, x, &int, noise.image(0))?;
    let model = format!("MobileNet_v1_{}_{side}", width_label(alpha));
    let proxy = format!(
        "ImageNet shape 3x{side}x{side}, {IMAGENET_CLASSES} classes, seeded initial weights, \
         activation ranges from {NOISE_IMAGES} noise images: latency only"
    );
    eprintln!(
        "E5 shape {model} seed {seed}: float {:.2} ms | int8 {:.2} ms (1 thread)",
        lat[0][0], lat[1][0]
    );
    // The rows of the E5 table but for what the models read.
    Ok(latency_rows(
        &lat,
        SHAPES_METHODS,
        |source, method, bits, metric, value| {
            let mut row = ctx.row(source, &model, method, bits, metric, value, &proxy, seed, 0);
            row.dataset = SHAPES_DATA.into();
            row
        },
    ))
}

/// ImageNet's classes.
const IMAGENET_CLASSES: usize = 1000;

/// `n` colour images of uniform noise, `side` pixels a side, from `seed`.
fn noise_images(n: usize, side: usize, seed: u64) -> ImageSet {
    let mut rng = quant_train::rng::Rng::new(seed);
    ImageSet {
        images: (0..n * 3 * side * side)
            .map(|_| (rng.uniform() * 256.0) as u8)
            .collect(),
        labels: vec![0; n],
        channels: 3,
        rows: side,
        cols: side,
        checksums: vec![],
    }
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
                mean(m, FLOAT_BURN, lat)?,
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
