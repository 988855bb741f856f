//! E1 (Table 4.1): the ResNet depth sweep, float vs int8 PTQ vs int8 QAT on the integer engine, and
//! E8: the engine against the simulation, per model and block by block.

use super::*;

/// E8 diagnosis: block-by-block agreement of every E1 model with the engine (printed).
pub fn agreement(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e1_resolution)?;
    let te = &splits.test;
    for &d in &ctx.sizes.e1_depths {
        let m = e1_models(ctx, d, ctx.first_seed(), &splits)?;
        for (method, net) in [("PTQ", &m.ptq), ("QAT", &m.qat.0)] {
            let ev = engine_eval(ctx, net, te)?;
            let a = ev.agreement;
            println!(
                "ResNet-{d} {method}: argmax agreement with the engine: fake-quant f32 {:.4} (max {} LSB), integer simulation {:.4} (max {} LSB)",
                a.fake_quant_agreement, a.fake_quant_max_lsb, a.agreement, a.max_lsb
            );
            let nodes = node_agreement(net, te.shape(), te, RoundingMode::Double, &ctx.device)
                .map_err(err)?;
            println!(
                "| block | kind | codes | f32 differing | f32 max LSB | f32 block alone differing | alone max LSB | integer sim differing | integer max LSB |"
            );
            println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            for n in nodes {
                println!(
                    "| {} | {} | {} | {:.2e} | {} | {:.2e} | {} | {:.2e} | {} |",
                    n.block,
                    n.kind,
                    n.values,
                    n.fake_quant.0,
                    n.fake_quant.1,
                    n.fake_quant_local.0,
                    n.fake_quant_local.1,
                    n.integer.0,
                    n.integer.1
                );
            }
        }
    }
    Ok(())
}

/// E1 (Table 4.1) and E8: ResNet-8/14/20 standing in for ResNet-50/100/150.
pub fn depth(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e1_resolution)?;
    for seed in ctx.seeds() {
        depth_seed(ctx, seed, &splits)?;
    }
    figures(&ctx.out, ctx.args.profile)
}

/// One seed of E1 (a unit of the full profile): its rows are recorded before the next seed starts.
pub(crate) fn depth_seed(ctx: &Ctx, seed: u64, splits: &Splits) -> Res<()> {
    let (res, te) = (ctx.sizes.e1_resolution, &splits.test);
    let (mut rows, mut e8, mut curves) = (Vec::new(), Vec::new(), Vec::new());
    let ep = ctx.float_epochs();
    let mut max_drop = f64::NEG_INFINITY;
    for &d in &ctx.sizes.e1_depths {
        let paper_model = match d {
            8 => "ResNet-50",
            14 => "ResNet-100",
            _ => "ResNet-150",
        };
        let proxy = ctx.proxy(&format!("ResNet-{d} (CIFAR-style 16/32/64)"), res);
        let row = |source: &str, method: &str, bits: &str, metric: &str, value: f64| {
            ctx.row(
                source,
                paper_model,
                method,
                (bits, bits),
                metric,
                value,
                &proxy,
                seed,
                ep,
            )
        };
        let m = e1_models(ctx, d, seed, splits)?;
        let f_acc = evaluate(&m.float.0, te, &Phase::FLOAT_EVAL, &ctx.device);
        let p = engine_eval(ctx, &m.ptq, te)?;
        let q = engine_eval(ctx, &m.qat.0, te)?;
        max_drop = max_drop.max(f_acc - q.top1);
        let top1 = "top1_acc_pct";
        rows.push(row(T41, "float", "32", top1, f_acc));
        rows.push(row(T41, QAT_T41, "8", top1, q.top1));
        rows.push(row(T41, PTQ, "8", top1, p.top1));
        curves.extend(ctx.curve_rows(
            T41,
            paper_model,
            "float",
            ("32", "32"),
            &m.float.1,
            &proxy,
            seed,
        ));
        curves.extend(ctx.curve_rows(
            T41,
            paper_model,
            QAT_T41,
            ("8", "8"),
            &m.qat.1,
            &proxy,
            seed,
        ));
        for (method, ev) in [(QAT_T41, &q), (PTQ, &p)] {
            e8.extend(agreement_rows(&row, method, &ev.agreement));
        }
        // The same QAT model with TFLite's later single rounding: isolates how much of the
        // engine/simulation disagreement is the double rounding of the paper-era output stage.
        let single = engine_eval_with(ctx, &m.qat.0, te, RoundingMode::Single)?;
        let sm = "QAT integer-only (per-layer uint8), single rounding";
        e8.extend(agreement_rows(&row, sm, &single.agreement));
        e8.push(row(T41, sm, "8", "top1", single.top1));
        let fsize = float_size_bytes(&m.qat.0) as f64;
        let isize = q.int.size_bytes() as f64;
        e8.push(row(T41, "float", "32", "size_bytes", fsize));
        e8.push(row(T41, QAT_T41, "8", "size_bytes", isize));
        e8.push(ctx.row(
            SEC5,
            "all",
            "8-bit quantization",
            ("8", "8"),
            "model_size_reduction_factor",
            fsize / isize,
            &proxy,
            seed,
            ep,
        ));
        eprintln!(
            "E1 resnet{d} seed {seed}: float {f_acc:.2} ptq {:.2} qat {:.2} (agreement {:.4}, max {} LSB; fake-quant f32 {:.4}, max {} LSB)",
            p.top1,
            q.top1,
            q.agreement.agreement,
            q.agreement.max_lsb,
            q.agreement.fake_quant_agreement,
            q.agreement.fake_quant_max_lsb
        );
    }
    let all = ctx.proxy("ResNet-8/14/20", res);
    rows.push(ctx.row(
        T41_TEXT,
        "ResNet-50/100/150",
        QAT,
        ("8", "8"),
        "max_top1_drop_pct_vs_float",
        max_drop,
        &all,
        seed,
        ep,
    ));
    ctx.record("e1_depth", &rows)?;
    ctx.record("e8_agreement", &e8)?;
    ctx.record("curves", &curves)
}

/// E8 rows of one exported model: argmax agreement and largest logit difference of the engine
/// against the integer simulation (the check of record) and against the fake-quantized f32 model.
/// `row(source, method, bits, metric, value)` builds a row of the model being checked.
pub(crate) fn agreement_rows(
    row: &impl Fn(&str, &str, &str, &str, f64) -> ResultRow,
    method: &str,
    a: &Agreement,
) -> Vec<ResultRow> {
    [
        ("agreement", a.agreement),
        ("max_logit_diff_lsb", a.max_lsb as f64),
        ("agreement_fake_quant_f32", a.fake_quant_agreement),
        (
            "max_logit_diff_lsb_fake_quant_f32",
            a.fake_quant_max_lsb as f64,
        ),
    ]
    .into_iter()
    .map(|(metric, value)| row(T41, method, "8", metric, value))
    .collect()
}
