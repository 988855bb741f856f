//! The engine against the simulation and against the fake-quantized float model, for the whole
//! network and block by block.

use super::simulate::{SimTensor, Simulator, input_codes};
use super::*;

/// How closely the integer engine reproduces the simulation on a test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Fraction of images whose argmax agrees between the engine and the integer simulation.
    pub agreement: f64,
    /// Largest |engine code - simulated code| over all logits (integer simulation), in LSB.
    pub max_lsb: i64,
    /// Fraction of logits that differ at all (integer simulation).
    pub mismatch_rate: f64,
    /// Argmax agreement between the engine and the fake-quantized f32 model ([`Phase::EVAL`]).
    pub fake_quant_agreement: f64,
    /// Largest logit difference between the engine and the fake-quantized f32 model, in LSB.
    pub fake_quant_max_lsb: i64,
    /// Top-1 (percent) of the integer engine.
    pub engine_top1: f64,
    /// Top-1 (percent) of the fake-quantized f32 model.
    pub simulated_top1: f64,
}

/// Runs the integer engine in batches of 256 and returns its logit codes for all of `set`.
pub fn engine_logits(int: &IntegerNet, set: &ImageSet) -> Result<Vec<i32>, ExportError> {
    let px = set.pixels();
    let mut out = Vec::with_capacity(set.len() * int.classes);
    for start in (0..set.len()).step_by(256) {
        let end = (start + 256).min(set.len());
        out.extend(int.run(&set.images[start * px..end * px], end - start)?);
    }
    Ok(out)
}

/// Argmax agreement and the largest code difference of two `[n, classes]` code arrays.
pub(crate) fn compare_codes(a: &[i64], b: &[i32], classes: usize) -> (f64, i64, f64) {
    let argmax = |row: &mut dyn Iterator<Item = i64>| {
        row.enumerate()
            .fold(
                (0, i64::MIN),
                |best, (i, v)| if v > best.1 { (i, v) } else { best },
            )
            .0
    };
    let rows = a.len() / classes.max(1);
    let agree = a
        .chunks(classes)
        .zip(b.chunks(classes))
        .filter(|(x, y)| {
            argmax(&mut x.iter().copied()) == argmax(&mut y.iter().map(|&v| i64::from(v)))
        })
        .count();
    let diffs = a.iter().zip(b).map(|(&s, &e)| (s - i64::from(e)).abs());
    let max = diffs.clone().max().unwrap_or(0);
    let differ = diffs.filter(|&d| d > 0).count();
    (
        agree as f64 / rows.max(1) as f64,
        max,
        differ as f64 / a.len().max(1) as f64,
    )
}

/// Compares the export `int` of `net` with two simulations of it on `set`.
///
/// The check of record (`agreement`, `max_lsb`) is against the **integer simulation**
/// ([`simulate_codes`]): the model's evaluation graph on exact codes, which must agree on every
/// image. The fake-quantized f32 model ([`Phase::EVAL`], the graph QAT trains) is compared too:
/// it differs from the integer arithmetic by f32 rounding of values near a rounding tie, by the
/// bias it keeps in float (the engine's is int32 at `S_w S_in`) and by the mean of global average
/// pooling, so a small fraction of its codes are one LSB off, and over a deep net a few of its
/// argmaxes flip.
pub fn check_agreement(
    net: &Net,
    int: &IntegerNet,
    set: &ImageSet,
    device: &Device,
) -> Result<Agreement, ExportError> {
    let rounding = int.model.spec().rounding;
    let k = int.classes;
    let eng = engine_logits(int, set)?;
    let exact: Vec<i64> = simulate_codes(net, set, rounding, device)?
        .into_iter()
        .map(i64::from)
        .collect();
    if exact.len() != eng.len() {
        return Err(ExportError(format!(
            "the simulation gives {} logits and the engine {}: export this net again",
            exact.len(),
            eng.len()
        )));
    }
    let (agreement, max_lsb, mismatch_rate) = compare_codes(&exact, &eng, k);
    let sim = predict(net, set, 256, &Phase::EVAL, device);
    let fq_codes = sim
        .iter()
        .map(|&v| int.output.quantize(f64::from(v)).map(i64::from))
        .collect::<Result<Vec<i64>, _>>()?;
    let (fake_quant_agreement, fake_quant_max_lsb, _) = compare_codes(&fq_codes, &eng, k);
    let eng_f: Vec<f32> = eng.iter().map(|&c| c as f32).collect();
    Ok(Agreement {
        agreement,
        max_lsb,
        mismatch_rate,
        fake_quant_agreement,
        fake_quant_max_lsb,
        engine_top1: crate::train::top1(&argmax_rows(&eng_f, k), &set.labels),
        simulated_top1: crate::train::top1(&argmax_rows(&sim, k), &set.labels),
    })
}

/// Agreement of one block's output codes with the integer engine (diagnosis of
/// [`check_agreement`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAgreement {
    /// Block index in [`Net::blocks`].
    pub block: usize,
    /// What the block is (`conv`, `fc`, `residual`, `residual+projection`, `max pool`,
    /// `avg pool`).
    pub kind: &'static str,
    /// Codes compared (images x values per image).
    pub values: usize,
    /// Fake-quantized f32 model run from the pixels: fraction of codes that differ from the
    /// engine's, and the largest difference in LSB (differences accumulated over the blocks).
    pub fake_quant: (f64, i64),
    /// The f32 block alone, fed the engine's codes of the previous block: its own contribution.
    pub fake_quant_local: (f64, i64),
    /// Integer simulation run from the pixels.
    pub integer: (f64, i64),
}

pub(crate) fn block_kind(b: &Block) -> &'static str {
    match b {
        Block::Layer(l) if l.kind == LayerKind::Linear => "fc",
        Block::Layer(_) => "conv",
        Block::MaxPool(_) => "max pool",
        Block::InputNorm(_) => "input normalization",
        Block::GlobalAvgPool(_) => "avg pool",
        Block::Residual(r) if r.shortcut.is_some() => "residual+projection",
        Block::Residual(_) => "residual",
    }
}

/// Fraction of differing codes and largest difference, as counts to accumulate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DiffCount {
    differing: usize,
    max: i64,
}

impl DiffCount {
    fn add(&mut self, a: &[i32], b: &[i32]) {
        for (&x, &y) in a.iter().zip(b) {
            let d = i64::from(x - y).abs();
            self.differing += usize::from(d > 0);
            self.max = self.max.max(d);
        }
    }

    fn summary(self, values: usize) -> (f64, i64) {
        (self.differing as f64 / values.max(1) as f64, self.max)
    }
}

/// Codes of the f32 tensor `t` on the grid `p`.
pub(crate) fn codes_of(t: Tensor<4>, p: &QParams) -> Result<Vec<i32>, ExportError> {
    floats(t)
        .into_iter()
        .map(|v| Ok(p.quantize(f64::from(v))?))
        .collect()
}

/// Block-by-block comparison of the engine with the fake-quantized f32 model and with the integer
/// simulation on `set`: where the f32 model's codes first depart from the engine's, by how much,
/// and how much each block adds on its own. Exports the net truncated after every block, so it
/// costs about `blocks / 2` full engine runs.
pub fn node_agreement(
    net: &Net,
    input: [usize; 3],
    set: &ImageSet,
    rounding: RoundingMode,
    device: &Device,
) -> Result<Vec<NodeAgreement>, ExportError> {
    let prefixes = (1..=net.blocks.len())
        .map(|k| {
            let prefix = Net {
                blocks: net.blocks[..k].to_vec(),
                classes: net.classes,
            };
            export(&prefix, input, rounding)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nb = net.blocks.len();
    let (mut fq, mut local, mut int) = (
        vec![DiffCount::default(); nb],
        vec![DiffCount::default(); nb],
        vec![DiffCount::default(); nb],
    );
    let mut values = vec![0usize; nb];
    let px = set.pixels();
    for start in (0..set.len()).step_by(256) {
        let end = (start + 256).min(set.len());
        let mut sim = Simulator {
            rounding,
            device,
            index: 0,
        };
        let mut exact = input_codes(set, start..end)?;
        let mut engine_prev = exact.clone();
        let mut float = exact.dequantized(device);
        let mut last = None;
        for (k, b) in net.blocks.iter().enumerate() {
            exact = sim.block(b, exact)?;
            let [n, c, h, w] = exact.dims;
            // Engine codes are NHWC; reorder to Burn's NCHW.
            let hwc = prefixes[k].run(&set.images[start * px..end * px], end - start)?;
            let mut engine = vec![0i32; hwc.len()];
            for i in 0..n {
                for y in 0..h {
                    for x in 0..w {
                        for ch in 0..c {
                            engine[((i * c + ch) * h + y) * w + x] =
                                hwc[((i * h + y) * w + x) * c + ch];
                        }
                    }
                }
            }
            let p = exact.params;
            float = b.forward(float, last, &Phase::EVAL);
            let alone = b.forward(engine_prev.dequantized(device), last, &Phase::EVAL);
            last = b.output_stage().or(last);
            fq[k].add(&codes_of(float.clone(), &p)?, &engine);
            local[k].add(&codes_of(alone, &p)?, &engine);
            int[k].add(&exact.codes, &engine);
            values[k] += engine.len();
            engine_prev = SimTensor {
                codes: engine,
                dims: exact.dims,
                params: p,
            };
        }
    }
    Ok(net
        .blocks
        .iter()
        .enumerate()
        .map(|(k, b)| NodeAgreement {
            block: k,
            kind: block_kind(b),
            values: values[k],
            fake_quant: fq[k].summary(values[k]),
            fake_quant_local: local[k].summary(values[k]),
            integer: int[k].summary(values[k]),
        })
        .collect())
}
