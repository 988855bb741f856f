//! E2 (Table 4.2): the paper's 8-bit integer-only scheme beside the lower-bit weight schemes it
//! quotes from other work (BWN 1/32, TWN 2/32, INQ 5/32, FGQ 2/8), each fine-tuned on the proxy
//! from the same float ResNet with the same QAT recipe, so the table compares formats rather than
//! training budgets.

use quant_train::sign_weights::{SignQuantizer, SignWeights};
use quant_train::{AffineQuantizer, QuantizerRef};

use super::*;

/// A column of Table 4.2 as the proxy runs it.
struct Scheme {
    /// The published method name (the key `repro compare` joins on).
    method: &'static str,
    /// Published weight and activation bits.
    bits: (&'static str, &'static str),
    /// The weight format of the layers it quantizes.
    weights: Weights,
    /// 8-bit affine activations (Jacob's observer and format) instead of float ones.
    act8: bool,
}

enum Weights {
    /// Binary or ternary with one scale per output channel, first and last layers kept in float as
    /// BWN and TWN train them.
    Sign(SignWeights),
    /// Jacob's affine format at this many bits on every layer (INQ's 5 bits).
    Affine(u32),
}

/// The weight-scheme columns; the 8/8 column is E1's QAT model.
const SCHEMES: [Scheme; 4] = [
    Scheme {
        method: "BWN (binary weight networks)",
        bits: ("1", "32"),
        weights: Weights::Sign(SignWeights::Binary),
        act8: false,
    },
    Scheme {
        method: "TWN (ternary weight networks)",
        bits: ("2", "32"),
        weights: Weights::Sign(SignWeights::Ternary),
        act8: false,
    },
    Scheme {
        method: "INQ (incremental network quantization)",
        bits: ("5", "32"),
        weights: Weights::Affine(5),
        act8: false,
    },
    Scheme {
        method: "FGQ (fine-grained quantization)",
        bits: ("2", "8"),
        weights: Weights::Sign(SignWeights::Ternary),
        act8: true,
    },
];

/// Table 4.2's 8/8 column.
const OURS: &str = "QAT integer-only (ours)";

/// E2 (Table 4.2) on the ResNet of `e2_depth`, every seed.
pub fn schemes(ctx: &Ctx) -> Res<()> {
    let splits = ctx.sets(ctx.sizes.e1_resolution)?;
    for seed in ctx.seeds() {
        schemes_seed(ctx, seed, &splits)?;
    }
    Ok(())
}

/// One seed of E2 (a unit of the full profile): the float ResNet and the 8/8 model are E1's (the
/// same checkpoints), then one fine-tuning per weight scheme.
fn schemes_seed(ctx: &Ctx, seed: u64, splits: &Splits) -> Res<()> {
    let (d, res, te) = (ctx.sizes.e2_depth, ctx.sizes.e1_resolution, &splits.test);
    let ep = ctx.float_epochs();
    let models = e1_models(ctx, d, seed, splits)?;
    let (mut rows, mut curves) = (Vec::new(), Vec::new());
    let mut record =
        |method: &str, bits: (&str, &str), top1: f64, report: &TrainReport, proxy: &str| {
            eprintln!("E2 {method} {}/{} seed {seed}: {top1:.2}", bits.0, bits.1);
            let row = ctx.row(
                T42,
                "ResNet-50",
                method,
                bits,
                "top1_acc_pct",
                top1,
                proxy,
                seed,
                ep,
            );
            curves.extend(ctx.curve_rows(T42, "ResNet-50", method, bits, report, proxy, seed));
            rows.push(row);
        };
    let model = format!("ResNet-{d} (CIFAR-style 16/32/64)");
    let ours = engine_eval(ctx, &models.qat.0, te)?;
    let proxy = ctx.proxy(&format!("{model}, top-1 on the integer engine"), res);
    record(OURS, ("8", "8"), ours.top1, &models.qat.1, &proxy);
    for scheme in &SCHEMES {
        let (net, report) = ctx.fine_tune(
            scheme_copy(&models.float.0, scheme)?,
            seed,
            splits,
            &format!("e2-resnet{d}-w{}a{}-s{seed}", scheme.bits.0, scheme.bits.1),
        )?;
        let top1 = evaluate(&net, te, &Phase::EVAL, &ctx.device);
        let what = match scheme.weights {
            Weights::Sign(_) => "first and last layers float",
            Weights::Affine(_) => "every layer quantized",
        };
        let proxy = ctx.proxy(
            &format!(
                "{model}, {what}, top-1 of the fake-quantized model (the integer engine runs 8-bit only)"
            ),
            res,
        );
        record(scheme.method, scheme.bits, top1, &report, &proxy);
    }
    ctx.record("e2_schemes", &rows)?;
    ctx.record("curves", &curves)
}

/// A copy of `float` with `scheme`'s weight and activation formats.
fn scheme_copy(float: &Net, scheme: &Scheme) -> Res<Net> {
    let mut net = float.valid();
    let act = scheme
        .act8
        .then(|| AffineQuantizer::activations(8).map(QuantizerRef::new))
        .transpose()
        .map_err(err)?;
    let layers = net.layers().len();
    let affine = match scheme.weights {
        Weights::Affine(bits) => Some(AffineQuantizer::weights(bits).map_err(err)?),
        Weights::Sign(_) => None,
    };
    net.map_layers(|i, l| {
        let end = i == 0 || i + 1 == layers;
        l.weight_quantizer = match scheme.weights {
            Weights::Sign(_) if end => None,
            Weights::Sign(s) => Some(QuantizerRef::new(SignQuantizer {
                scheme: s,
                channels: l.out_channels(),
            })),
            Weights::Affine(_) => affine.map(QuantizerRef::new),
        };
    });
    net.map_output_stages(|_, s| s.quantizer = act.clone());
    Ok(net)
}
