//! E3 (Table 4.3): ReLU vs ReLU6 at float and at each bit width, mean and std over seeds.

use super::*;

/// (method, bits label, (weight, activation) bits or None for float).
pub(crate) type BitConfig = (&'static str, &'static str, Option<(u32, u32)>);

/// E3 (Table 4.3): P-CNN with ReLU vs ReLU6 at float and 8/8, 7/7 (+ 5/5, 4/4 stress rows), one
/// row per seed, then the mean and std over every seed the table now holds.
pub fn relu(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e3_resolution)?;
    let spec: ModelSpec = ctx.sizes.e3_model.parse().map_err(err)?;
    for seed in ctx.seeds() {
        relu_seed(ctx, &spec, seed, &splits)?;
    }
    ctx.record_derived("e3_relu", |table| seed_summaries(ctx, table, T43))?;
    figures(&ctx.out, ctx.args.profile)
}

/// One seed of E3 (a unit of the full profile): both activations, float and every bit width.
pub(crate) fn relu_seed(ctx: &Ctx, spec: &ModelSpec, seed: u64, splits: &Splits) -> Res<()> {
    let configs: [BitConfig; 5] = [
        ("float", "32", None),
        (QAT, "8", Some((8, 8))),
        (QAT, "7", Some((7, 7))),
        (QAT, "5", Some((5, 5))),
        (QAT, "4", Some((4, 4))),
    ];
    let ep = ctx.float_epochs();
    let (mut rows, mut curves) = (Vec::new(), Vec::new());
    for (act, paper_model) in [
        (Activation::Relu6, "Inception-v3 (ReLU6)"),
        (Activation::Relu, "Inception-v3 (ReLU)"),
    ] {
        let proxy = ctx.proxy(&format!("P-CNN {spec} ({act:?})"), ctx.sizes.e3_resolution);
        let tag = format!("e3-{spec}-{act:?}-s{seed}").replace([':', ','], "_");
        let float = ctx.train_float(spec, Some(act), seed, splits, &format!("{tag}-float"))?;
        for (method, b, bits) in configs {
            let (acc, report) = match bits {
                None => (
                    evaluate(&float.0, &splits.test, &Phase::FLOAT_EVAL, &ctx.device),
                    float.1.clone(),
                ),
                Some(wa) => {
                    let name = format!("{tag}-qat{}{}", wa.0, wa.1);
                    let (q, report) = ctx.qat(&float.0, wa, seed, splits, &name)?;
                    (engine_eval(ctx, &q, &splits.test)?.top1, report)
                }
            };
            eprintln!("E3 {act:?} {method} {b}/{b} seed {seed}: {acc:.2}");
            rows.push(ctx.row(
                T43,
                paper_model,
                method,
                (b, b),
                "top1_acc_pct",
                acc,
                &proxy,
                seed,
                ep,
            ));
            curves.extend(ctx.curve_rows(T43, paper_model, method, (b, b), &report, &proxy, seed));
        }
    }
    ctx.record("e3_relu", &rows)?;
    ctx.record("curves", &curves)
}

/// The paper's mean and std rows (`top1_acc_mean_pct`, `top1_acc_std_pct`) of `source`, over every
/// seed in the table's rows `table` for each setting (model, method, bits, proxy, profile, epochs),
/// so seeds run as separate units add up. They carry the setting's smallest seed.
pub(crate) fn seed_summaries(ctx: &Ctx, table: &[ResultRow], source: &str) -> Vec<ResultRow> {
    let mut settings: std::collections::BTreeMap<_, Vec<&ResultRow>> = Default::default();
    for r in table
        .iter()
        .filter(|r| r.source == source && r.metric == "top1_acc_pct" && r.profile == ctx.profile())
    {
        let setting = (
            &r.model, &r.method, &r.w_bits, &r.a_bits, &r.proxy, r.epochs,
        );
        settings.entry(setting).or_default().push(r);
    }
    let mut out = Vec::new();
    for seeds in settings.values() {
        let values: Vec<f64> = seeds.iter().map(|r| r.value).collect();
        let (m, sd) = repro::stats::mean_and_sd(&values);
        let first = seeds.iter().map(|r| r.seed).min().unwrap_or_default();
        for (metric, value) in [("top1_acc_mean_pct", m), ("top1_acc_std_pct", sd)] {
            out.push(ResultRow {
                metric: metric.into(),
                value,
                seed: first,
                run_id: ctx.run.run_id.clone(),
                ..seeds[0].clone()
            });
        }
        let r = seeds[0];
        eprintln!(
            "{} {} {}/{}: {m:.2} ± {sd:.2} over {} seeds",
            r.model,
            r.method,
            r.w_bits,
            r.a_bits,
            values.len()
        );
    }
    out
}
