//! E4 (arXiv Table 4.7): weight x activation bits, and its heat map.

use super::*;

/// E4 (arXiv Table 4.7): one float MobileNetV1 per seed, QAT fine-tuned for each (w, a) pair;
/// relative change of macro-averaged average precision (and top-1) on the integer engine.
pub fn bits(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e4_resolution)?;
    let spec: ModelSpec = ctx.sizes.e4_model.parse().map_err(err)?;
    for seed in ctx.seeds() {
        bits_seed(ctx, &spec, seed, &splits)?;
    }
    figures(&ctx.out, ctx.args.profile)
}

/// One seed of E4 (a unit of the full profile).
pub(crate) fn bits_seed(ctx: &Ctx, spec: &ModelSpec, seed: u64, splits: &Splits) -> Res<()> {
    let (res, te) = (ctx.sizes.e4_resolution, &splits.test);
    let ep = ctx.float_epochs();
    let tag = format!("e4-{spec}-r{res}-s{seed}").replace([':', ','], "_");
    let (float, float_report) =
        ctx.train_float(spec, None, seed, splits, &format!("{tag}-float"))?;
    let f_logits: Vec<f64> = predict(&float, te, 256, &Phase::FLOAT_EVAL, &ctx.device)
        .into_iter()
        .map(f64::from)
        .collect();
    let f_ap = macro_average_precision(&f_logits, &te.labels, ctx.data.name.classes());
    let f_top1 = evaluate(&float, te, &Phase::FLOAT_EVAL, &ctx.device);
    let proxy = ctx.proxy(&format!("MobileNetV1 {spec}"), res);
    let model = "MobileNet face-attribute classifier (128x128)";
    let row = |method: &str, (w, a): (&str, &str), metric: &str, value: f64| {
        ctx.row(T47, model, method, (w, a), metric, value, &proxy, seed, ep)
    };
    let mut rows = vec![
        row("float", ("32", "32"), "avg_category_precision_pct", f_ap),
        row("float", ("32", "32"), "top1_acc_pct", f_top1),
    ];
    let mut curves = ctx.curve_rows(
        T47,
        model,
        "float",
        ("32", "32"),
        &float_report,
        &proxy,
        seed,
    );
    for &w in &ctx.sizes.e4_bits {
        for &a in &ctx.sizes.e4_bits {
            let (q, report) = ctx.qat(&float, (w, a), seed, splits, &format!("{tag}-qat{w}{a}"))?;
            let ev = engine_eval(ctx, &q, te)?;
            let scores: Vec<f64> = ev.logits.iter().map(|&c| f64::from(c)).collect();
            let ap = macro_average_precision(&scores, &te.labels, ctx.data.name.classes());
            let rel = 100.0 * (ap - f_ap) / f_ap;
            eprintln!(
                "E4 seed {seed} w{w} a{a}: AP {ap:.2} (float {f_ap:.2}, {rel:+.2}%), top1 {:.2}",
                ev.top1
            );
            let bits = (w.to_string(), a.to_string());
            let bits = (bits.0.as_str(), bits.1.as_str());
            rows.push(row(QAT, bits, "rel_change_avg_category_precision_pct", rel));
            rows.push(row(QAT, bits, "top1_acc_pct", ev.top1));
            curves.extend(ctx.curve_rows(T47, model, QAT, bits, &report, &proxy, seed));
        }
    }
    ctx.record("e4_bits", &rows)?;
    ctx.record("curves", &curves)
}
