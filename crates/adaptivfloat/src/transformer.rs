//! The 28-row-token Transformer of dossier §9.2 (M3), the stand-in for the paper's WMT'17
//! Transformer: each image row is a token of 28 features; Linear 28→64 plus a learned 28×64
//! positional embedding, 2 pre-LayerNorm encoder blocks (4 heads, ReLU FFN 64→128→64, ReLU so the
//! range-stress rescaling of §9.1 P1f preserves the function), a final LayerNorm, mean pooling and
//! Linear 64→10. Trained without weight decay so the LayerNorm network keeps its natural weights.
//!
//! `quant-train`'s model zoo has no attention model, so this one is written here with its own small
//! training loop (the same Adam recipe). A forward pass takes a [`Ctx`] saying which tensors to
//! fake-quantize: every parameter (weights, biases, LayerNorm, embeddings) for weight
//! quantization, and the inputs of every linear layer plus Q, K, V and the attention
//! probabilities for activation quantization (dossier §9.2 W+A).

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::Param;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation;
use quant_train::Quantizer;
use quant_train::checkpoint::Checkpoint;
use quant_train::data::batch;
use quant_train::quant::tensor_range;
use quant_train::rng::Rng;
use quant_train::train::{EpochPoint, TrainReport};
use repro::datasets::ImageSet;

use crate::fakequant::FormatQuantizer;
use serde::Serialize;

const TOKENS: usize = 28;
const FEATURES: usize = 28;
const DIM: usize = 64;
const HEADS: usize = 4;
const FFN: usize = 128;
const BLOCKS: usize = 2;
const CLASSES: usize = 10;
/// Activation sites per block: LN1 output, Q, K, V, attention probabilities, attention output,
/// LN2 output, FFN hidden; plus the pooled input of the classifier.
const SITES_PER_BLOCK: usize = 8;
/// Number of activation quantization sites of the model.
pub const ACT_SITES: usize = BLOCKS * SITES_PER_BLOCK + 1;

/// One pre-LN encoder block.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    ln1_g: Param<Tensor<1>>,
    ln1_b: Param<Tensor<1>>,
    wq: Param<Tensor<2>>,
    bq: Param<Tensor<1>>,
    wk: Param<Tensor<2>>,
    bk: Param<Tensor<1>>,
    wv: Param<Tensor<2>>,
    bv: Param<Tensor<1>>,
    wo: Param<Tensor<2>>,
    bo: Param<Tensor<1>>,
    ln2_g: Param<Tensor<1>>,
    ln2_b: Param<Tensor<1>>,
    w1: Param<Tensor<2>>,
    b1: Param<Tensor<1>>,
    w2: Param<Tensor<2>>,
    b2: Param<Tensor<1>>,
}

/// The row-token Transformer (about 70k parameters).
#[derive(Module, Debug)]
pub struct RowTransformer {
    embed_w: Param<Tensor<2>>,
    embed_b: Param<Tensor<1>>,
    pos: Param<Tensor<2>>,
    blocks: Vec<EncoderBlock>,
    ln_g: Param<Tensor<1>>,
    ln_b: Param<Tensor<1>>,
    head_w: Param<Tensor<2>>,
    head_b: Param<Tensor<1>>,
}

/// What a forward pass quantizes, and where it records activation ranges.
#[derive(Default)]
pub struct Ctx<'a> {
    /// Weight format (every parameter tensor, per-tensor parameter from its own max).
    pub weights: Option<&'a FormatQuantizer>,
    /// Activation format and the fixed per-site `max|x|` it uses.
    pub acts: Option<(&'a FormatQuantizer, &'a [f64])>,
    /// When set, each site's batch `max|x|` is appended (calibration).
    pub observe: Option<&'a RefCell<Vec<Vec<f64>>>>,
}

impl Ctx<'_> {
    fn w<const D: usize>(&self, p: &Param<Tensor<D>>) -> Tensor<D> {
        let t = p.val();
        match self.weights {
            Some(q) => {
                let range = tensor_range(&t);
                let dims = t.dims();
                let n = dims.iter().product::<usize>();
                q.fake_quant(t.reshape([n]), range).reshape(dims)
            }
            None => t,
        }
    }

    fn act<const D: usize>(&self, site: usize, x: Tensor<D>) -> Tensor<D> {
        if let Some(obs) = self.observe {
            let (lo, hi) = tensor_range(&x);
            obs.borrow_mut()[site].push(lo.abs().max(hi.abs()));
        }
        match self.acts {
            Some((q, ranges)) => {
                let dims = x.dims();
                let n = dims.iter().product::<usize>();
                q.fake_quant(x.reshape([n]), (-ranges[site], ranges[site]))
                    .reshape(dims)
            }
            None => x,
        }
    }
}

fn init_matrix(rng: &mut Rng, rows: usize, cols: usize, device: &Device) -> Param<Tensor<2>> {
    // Xavier-style normal, std sqrt(2 / (fan_in + fan_out)).
    let std = (2.0 / (rows + cols) as f64).sqrt();
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| (std * rng.normal()) as f32)
        .collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [rows, cols]), device))
}

fn constant(len: usize, value: f32, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::full([len], value, device))
}

/// `x [N, T, I] @ w [I, O] + b`.
fn linear3(x: Tensor<3>, w: Tensor<2>, b: Tensor<1>) -> Tensor<3> {
    let [n, t, i] = x.dims();
    let o = w.dims()[1];
    (x.reshape([n * t, i]).matmul(w) + b.reshape([1, o])).reshape([n, t, o])
}

fn layer_norm(x: Tensor<3>, g: Tensor<1>, b: Tensor<1>) -> Tensor<3> {
    quant_train::fused::layer_norm(x, g, b, 1e-5)
}

impl EncoderBlock {
    fn new(rng: &mut Rng, device: &Device) -> Self {
        let z = |n| constant(n, 0.0, device);
        EncoderBlock {
            ln1_g: constant(DIM, 1.0, device),
            ln1_b: z(DIM),
            wq: init_matrix(rng, DIM, DIM, device),
            bq: z(DIM),
            wk: init_matrix(rng, DIM, DIM, device),
            bk: z(DIM),
            wv: init_matrix(rng, DIM, DIM, device),
            bv: z(DIM),
            wo: init_matrix(rng, DIM, DIM, device),
            bo: z(DIM),
            ln2_g: constant(DIM, 1.0, device),
            ln2_b: z(DIM),
            w1: init_matrix(rng, DIM, FFN, device),
            b1: z(FFN),
            w2: init_matrix(rng, FFN, DIM, device),
            b2: z(DIM),
        }
    }

    fn forward(&self, x: Tensor<3>, ctx: &Ctx, site: usize) -> Tensor<3> {
        let [n, t, d] = x.dims();
        let dh = d / HEADS;
        let h = ctx.act(
            site,
            layer_norm(x.clone(), ctx.w(&self.ln1_g), ctx.w(&self.ln1_b)),
        );
        let heads = |y: Tensor<3>| y.reshape([n, t, HEADS, dh]).swap_dims(1, 2);
        let q = ctx.act(
            site + 1,
            heads(linear3(h.clone(), ctx.w(&self.wq), ctx.w(&self.bq))),
        );
        let k = ctx.act(
            site + 2,
            heads(linear3(h.clone(), ctx.w(&self.wk), ctx.w(&self.bk))),
        );
        let v = ctx.act(
            site + 3,
            heads(linear3(h, ctx.w(&self.wv), ctx.w(&self.bv))),
        );
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt());
        let probs = ctx.act(site + 4, quant_train::fused::softmax(scores));
        let attn = probs.matmul(v).swap_dims(1, 2).reshape([n, t, d]);
        let attn = ctx.act(site + 5, attn);
        let x = x + linear3(attn, ctx.w(&self.wo), ctx.w(&self.bo));
        let h = ctx.act(
            site + 6,
            layer_norm(x.clone(), ctx.w(&self.ln2_g), ctx.w(&self.ln2_b)),
        );
        let hidden = activation::relu(linear3(h, ctx.w(&self.w1), ctx.w(&self.b1)));
        let hidden = ctx.act(site + 7, hidden);
        x + linear3(hidden, ctx.w(&self.w2), ctx.w(&self.b2))
    }
}

impl RowTransformer {
    /// A freshly initialised model (seeded).
    pub fn new(seed: u64, device: &Device) -> Self {
        let mut rng = Rng::new(seed);
        let pos: Vec<f32> = (0..TOKENS * DIM)
            .map(|_| (0.02 * rng.normal()) as f32)
            .collect();
        RowTransformer {
            embed_w: init_matrix(&mut rng, FEATURES, DIM, device),
            embed_b: constant(DIM, 0.0, device),
            pos: Param::from_tensor(Tensor::from_data(
                TensorData::new(pos, [TOKENS, DIM]),
                device,
            )),
            blocks: (0..BLOCKS)
                .map(|_| EncoderBlock::new(&mut rng, device))
                .collect(),
            ln_g: constant(DIM, 1.0, device),
            ln_b: constant(DIM, 0.0, device),
            head_w: init_matrix(&mut rng, DIM, CLASSES, device),
            head_b: constant(CLASSES, 0.0, device),
        }
    }

    /// Logits for images `[N, 1, 28, 28]` (pixels / 255).
    pub fn forward(&self, images: Tensor<4>, ctx: &Ctx) -> Tensor<2> {
        let n = images.dims()[0];
        let tokens = images.reshape([n, TOKENS, FEATURES]);
        let mut x = linear3(tokens, ctx.w(&self.embed_w), ctx.w(&self.embed_b))
            + ctx.w(&self.pos).reshape([1, TOKENS, DIM]);
        for (b, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, ctx, b * SITES_PER_BLOCK);
        }
        let x = layer_norm(x, ctx.w(&self.ln_g), ctx.w(&self.ln_b));
        let pooled = ctx.act(ACT_SITES - 1, x.mean_dim(1).reshape([n, DIM]));
        pooled.matmul(ctx.w(&self.head_w)) + ctx.w(&self.head_b).reshape([1, CLASSES])
    }

    /// Every parameter tensor with its name, as host values.
    pub fn parameter_tensors(&self) -> Vec<(String, Vec<f64>)> {
        let mut out = Vec::new();
        let mut push = |name: String, t: Vec<f32>| {
            out.push((name, t.into_iter().map(f64::from).collect::<Vec<f64>>()))
        };
        let host = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
        let host1 = |t: Tensor<1>| t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
        push("embed_w".into(), host(self.embed_w.val()));
        push("embed_b".into(), host1(self.embed_b.val()));
        push("pos".into(), host(self.pos.val()));
        for (i, b) in self.blocks.iter().enumerate() {
            for (name, m) in [
                ("wq", &b.wq),
                ("wk", &b.wk),
                ("wv", &b.wv),
                ("wo", &b.wo),
                ("w1", &b.w1),
                ("w2", &b.w2),
            ] {
                push(format!("block{i}.{name}"), host(m.val()));
            }
            for (name, v) in [
                ("ln1_g", &b.ln1_g),
                ("ln1_b", &b.ln1_b),
                ("bq", &b.bq),
                ("bk", &b.bk),
                ("bv", &b.bv),
                ("bo", &b.bo),
                ("ln2_g", &b.ln2_g),
                ("ln2_b", &b.ln2_b),
                ("b1", &b.b1),
                ("b2", &b.b2),
            ] {
                push(format!("block{i}.{name}"), host1(v.val()));
            }
        }
        push("ln_g".into(), host1(self.ln_g.val()));
        push("ln_b".into(), host1(self.ln_b.val()));
        push("head_w".into(), host(self.head_w.val()));
        push("head_b".into(), host1(self.head_b.val()));
        out
    }

    /// Weight-only PTQ: every parameter tensor quantized with its own per-tensor parameter.
    pub fn quantize_all_parameters(&self, format: &quant_core::formats::Format) -> Self {
        let q2 = |p: &Param<Tensor<2>>| {
            Param::from_tensor(crate::fakequant::quantize_tensor(format, p.val()))
        };
        let q1 = |p: &Param<Tensor<1>>| {
            Param::from_tensor(crate::fakequant::quantize_tensor(format, p.val()))
        };
        RowTransformer {
            embed_w: q2(&self.embed_w),
            embed_b: q1(&self.embed_b),
            pos: q2(&self.pos),
            blocks: self
                .blocks
                .iter()
                .map(|b| EncoderBlock {
                    ln1_g: q1(&b.ln1_g),
                    ln1_b: q1(&b.ln1_b),
                    wq: q2(&b.wq),
                    bq: q1(&b.bq),
                    wk: q2(&b.wk),
                    bk: q1(&b.bk),
                    wv: q2(&b.wv),
                    bv: q1(&b.bv),
                    wo: q2(&b.wo),
                    bo: q1(&b.bo),
                    ln2_g: q1(&b.ln2_g),
                    ln2_b: q1(&b.ln2_b),
                    w1: q2(&b.w1),
                    b1: q1(&b.b1),
                    w2: q2(&b.w2),
                    b2: q1(&b.b2),
                })
                .collect(),
            ln_g: q1(&self.ln_g),
            ln_b: q1(&self.ln_b),
            head_w: q2(&self.head_w),
            head_b: q1(&self.head_b),
        }
    }

    /// Hidden width of the FFNs (the units the range stress can rescale).
    pub fn ffn_width(&self) -> usize {
        FFN
    }

    /// Function-preserving range stress (dossier §9.1 P1f): in every block, the FFN hidden units
    /// `units` get their incoming weights and bias scaled by `alpha` and their outgoing weights by
    /// `1/alpha`. ReLU is positively homogeneous, so the float function is unchanged (bit for bit
    /// when `alpha` is a power of two) while the FFN tensors' ranges widen.
    pub fn range_stressed(&self, units: &[usize], alpha: f32) -> Self {
        let mut m = self.clone();
        for b in &mut m.blocks {
            b.w1 = scale_columns(&b.w1, units, alpha);
            b.b1 = scale_entries(&b.b1, units, alpha);
            b.w2 = scale_rows(&b.w2, units, 1.0 / alpha);
        }
        m
    }
}

/// Multiplies the given columns of `[rows, cols]` by `factor`.
pub fn scale_columns(p: &Param<Tensor<2>>, cols: &[usize], factor: f32) -> Param<Tensor<2>> {
    let t = p.val();
    let [r, c] = t.dims();
    let mut v = t
        .clone()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    for row in 0..r {
        for &col in cols {
            v[row * c + col] *= factor;
        }
    }
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [r, c]), &t.device()))
}

/// Multiplies the given rows of `[rows, cols]` by `factor`.
pub fn scale_rows(p: &Param<Tensor<2>>, rows: &[usize], factor: f32) -> Param<Tensor<2>> {
    let t = p.val();
    let [r, c] = t.dims();
    let mut v = t
        .clone()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    for &row in rows {
        for x in &mut v[row * c..(row + 1) * c] {
            *x *= factor;
        }
    }
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [r, c]), &t.device()))
}

/// Multiplies the given entries of a vector by `factor`.
pub fn scale_entries(p: &Param<Tensor<1>>, idx: &[usize], factor: f32) -> Param<Tensor<1>> {
    let t = p.val();
    let n = t.dims()[0];
    let mut v = t
        .clone()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    for &i in idx {
        v[i] *= factor;
    }
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), &t.device()))
}

/// Adam training of the row Transformer (same recipe as `quant-train`'s loop: seeded shuffling,
/// last partial batch dropped). `ctx_weights`/`acts` make it quantization-aware retraining.
pub struct TrainSpec<'a> {
    pub epochs: u32,
    pub batch_size: usize,
    pub lr: f64,
    /// Cosine decay of the rate to 0 over the run (float training, so the model plateaus before
    /// retraining starts); constant otherwise.
    pub cosine: bool,
    pub seed: u64,
    pub weights: Option<&'a FormatQuantizer>,
    pub acts: Option<(&'a FormatQuantizer, &'a [f64])>,
    pub label: String,
    /// Held-out images scored after every epoch with the same quantizers (the learning curve).
    pub validation: Option<&'a ImageSet>,
    /// Checkpoint path prefix (as `quant_train::train::RunOptions::checkpoint`): the run resumes
    /// from the folder `<prefix>-<key>/` and rewrites it after every epoch; the key covers
    /// [`SpecKey`], the training data and the starting model.
    pub checkpoint: Option<PathBuf>,
}

/// What a [`TrainSpec`] trains with, as the checkpoint key sees it (the quantizers by format
/// label, the activation ranges by value).
#[derive(Serialize)]
struct SpecKey<'a> {
    epochs: u32,
    batch_size: usize,
    lr: f64,
    cosine: bool,
    seed: u64,
    weights: Option<String>,
    acts: Option<(String, &'a [f64])>,
}

impl TrainSpec<'_> {
    fn key(&self) -> SpecKey<'_> {
        SpecKey {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            cosine: self.cosine,
            seed: self.seed,
            weights: self.weights.map(|q| q.label()),
            acts: self.acts.map(|(q, r)| (q.label(), r)),
        }
    }
}

/// Trains `model` on `data`; returns the trained model on the inference device and the report
/// with its learning curve (as `quant-train`'s loop reports it).
pub fn train(
    model: RowTransformer,
    data: &ImageSet,
    spec: &TrainSpec,
    device: &Device,
) -> Result<(RowTransformer, TrainReport), String> {
    if data.len() < spec.batch_size {
        return Err(format!(
            "training set has {} images, fewer than one batch of {}",
            data.len(),
            spec.batch_size
        ));
    }
    let key = spec.key();
    let checkpoint = match &spec.checkpoint {
        Some(prefix) => Some(
            Checkpoint::new(prefix, &model, STRUCTURE, data, &key).map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let ad = device.clone().autodiff();
    let mut model = model.train();
    let mut optim = AdamConfig::new().init();
    let mut curve = Vec::new();
    let mut start_epoch = 0;
    if let Some(ckpt) = &checkpoint {
        let resumed = ckpt.resume(model, optim).map_err(|e| e.to_string())?;
        (model, optim, start_epoch) = (resumed.model, resumed.optim, resumed.epochs_done);
        curve = resumed.report.map(|r| r.curve).unwrap_or_default();
    }
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let steps = data.len() / spec.batch_size;
    let total = (steps as u64) * u64::from(spec.epochs);
    let bar = repro::cli::progress_bar(total, &spec.label);
    bar.set_position(steps as u64 * u64::from(start_epoch));
    let started = Instant::now();
    let ctx = Ctx {
        weights: spec.weights,
        acts: spec.acts,
        observe: None,
    };
    let report = |curve: &[EpochPoint], epochs_run: u32| {
        let last = curve.last();
        TrainReport {
            final_loss: last.map_or(f64::NAN, |p| p.loss),
            final_train_acc: last.map_or(f64::NAN, |p| p.train_acc),
            epochs_run,
            seconds: started.elapsed().as_secs_f64(),
            curve: curve.to_vec(),
        }
    };
    for epoch in start_epoch..spec.epochs {
        let mut order: Vec<usize> = (0..data.len()).collect();
        Rng::stream(spec.seed, u64::from(epoch)).shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        for (i, idx) in order.chunks_exact(spec.batch_size).enumerate() {
            let (x, y) = batch(data, idx, &ad);
            let logits = model.forward(x, &ctx);
            let pred = logits.clone().detach().argmax(1).reshape([idx.len()]);
            correct += pred.equal(y.clone()).int().sum().into_scalar::<i64>() as usize;
            let loss = loss_fn.forward(logits, y);
            let value = f64::from(loss.clone().detach().into_scalar::<f32>());
            loss_sum += value;
            if !value.is_finite() {
                return Err(format!(
                    "Transformer training diverged (loss {value}) at epoch {epoch} step {i}: lower the learning rate"
                ));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = if spec.cosine {
                // `bar.position()` counts finished steps (a hidden bar still counts).
                let t = bar.position() as f64 / total as f64;
                spec.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            } else {
                spec.lr
            };
            model = optim.step(lr, model, grads);
            bar.inc(1);
            bar.set_message(format!(
                "loss {value:.4} {:.0} img/s",
                (bar.position() as usize * spec.batch_size) as f64
                    / started.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        curve.push(EpochPoint {
            epoch: epoch + 1,
            loss: loss_sum / steps as f64,
            train_acc: 100.0 * correct as f64 / (steps * spec.batch_size) as f64,
            // The inference copy is made only when there is something to score.
            val_acc: spec
                .validation
                .map(|val| evaluate(&model.valid(), val, &ctx, device)),
        });
        if let Some(ckpt) = &checkpoint {
            let done = report(&curve, epoch + 1 - start_epoch);
            ckpt.save(&model, &optim, &key, epoch + 1, &done, None)
                .map_err(|e| e.to_string())?;
        }
    }
    bar.finish_and_clear();
    Ok((model.valid(), report(&curve, spec.epochs - start_epoch)))
}

/// The model's description in its checkpoint key (its parameters are hashed by value).
const STRUCTURE: &str = "row-transformer: 28 row tokens, d=64, 2 pre-LN blocks, 4 heads, FFN 128";

/// Top-1 accuracy (percent) on `set` under `ctx`.
pub fn evaluate(model: &RowTransformer, set: &ImageSet, ctx: &Ctx, device: &Device) -> f64 {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut predictions = Vec::with_capacity(set.len());
    for chunk in idx.chunks(250) {
        let (x, _) = batch(set, chunk, device);
        let logits = model
            .forward(x, ctx)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        predictions.extend(quant_train::argmax_rows(&logits, CLASSES));
    }
    quant_train::top1(&predictions, &set.labels)
}

/// Per-site activation `max|x|` averaged over the batches of `set` (float forward pass).
pub fn calibrate(model: &RowTransformer, set: &ImageSet, device: &Device) -> Vec<f64> {
    let seen = RefCell::new(vec![Vec::new(); ACT_SITES]);
    let ctx = Ctx {
        weights: None,
        acts: None,
        observe: Some(&seen),
    };
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(250) {
        let (x, _) = batch(set, chunk, device);
        let _ = model.forward(x, &ctx);
    }
    seen.into_inner()
        .into_iter()
        .map(|v| v.iter().sum::<f64>() / v.len().max(1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::formats::{Format, FormatKind};

    fn images(n: usize, device: &Device) -> Tensor<4> {
        let mut rng = Rng::new(9);
        let v: Vec<f32> = (0..n * 784).map(|_| rng.uniform() as f32).collect();
        Tensor::from_data(TensorData::new(v, [n, 1, 28, 28]), device)
    }

    fn logits(m: &RowTransformer, ctx: &Ctx, device: &Device) -> Vec<f32> {
        m.forward(images(3, device), ctx)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }

    #[test]
    fn range_stress_keeps_the_float_function_and_widens_the_ffn_range() {
        let device = Device::flex();
        let m = RowTransformer::new(5, &device);
        let stressed = m.range_stressed(&[0, 7, 100], 16.0);
        assert_eq!(
            logits(&m, &Ctx::default(), &device),
            logits(&stressed, &Ctx::default(), &device)
        );
        let max_of = |m: &RowTransformer, name: &str| {
            m.parameter_tensors()
                .into_iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .iter()
                .fold(0.0f64, |a, x| a.max(x.abs()))
        };
        assert!(max_of(&stressed, "block0.w1") > 4.0 * max_of(&m, "block0.w1"));
    }

    #[test]
    fn ptq_model_equals_fake_quantized_forward() {
        let device = Device::flex();
        let m = RowTransformer::new(2, &device);
        let format = Format::paper(FormatKind::AdaptivFloat, 6).unwrap();
        let q = FormatQuantizer::new(format.clone());
        let fake = Ctx {
            weights: Some(&q),
            ..Ctx::default()
        };
        let ptq = m.quantize_all_parameters(&format);
        assert_eq!(
            logits(&ptq, &Ctx::default(), &device),
            logits(&m, &fake, &device)
        );
        assert_ne!(
            logits(&ptq, &Ctx::default(), &device),
            logits(&m, &Ctx::default(), &device)
        );
        assert_eq!(ptq.parameter_tensors().len(), 7 + 16 * BLOCKS);
    }

    /// A finished run resumes from its checkpoint without training (the same model, the report of
    /// its epochs); a run from another starting model or with another quantizer misses it.
    #[test]
    fn training_resumes_from_its_checkpoint_only() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let set = ImageSet {
            images: (0..64 * 784).map(|i| (i * 7 % 251) as u8).collect(),
            labels: (0..64).map(|i| (i % 10) as u8).collect(),
            channels: 1,
            rows: 28,
            cols: 28,
            checksums: Vec::new(),
        };
        let q = FormatQuantizer::new(Format::paper(FormatKind::AdaptivFloat, 8).unwrap());
        let spec = |weights| TrainSpec {
            epochs: 2,
            batch_size: 16,
            lr: 1e-3,
            cosine: true,
            seed: 3,
            weights,
            acts: None,
            label: String::new(),
            validation: None,
            checkpoint: Some(dir.path().join("unit")),
        };
        let run = |seed: u64, weights| {
            let (m, r) = train(
                RowTransformer::new(seed, &device),
                &set,
                &spec(weights),
                &device,
            )
            .unwrap();
            (
                logits(&m, &Ctx::default(), &device),
                r.epochs_run,
                r.curve.len(),
            )
        };
        let first = run(1, None);
        assert_eq!((first.1, first.2), (2, 2));
        let again = run(1, None);
        assert_eq!(again, (first.0.clone(), 0, 2), "resumed the finished run");
        let other_start = run(2, None);
        assert_eq!(
            other_start.1, 2,
            "another starting model trained from scratch"
        );
        let quantized = run(1, Some(&q));
        assert_eq!(quantized.1, 2, "another quantizer trained from scratch");
        assert_ne!(quantized.0, first.0);
    }

    #[test]
    fn calibration_reports_one_positive_range_per_site() {
        let device = Device::flex();
        let m = RowTransformer::new(1, &device);
        let set = ImageSet {
            images: (0..4 * 784).map(|i| (i % 251) as u8).collect(),
            labels: vec![0, 1, 2, 3],
            channels: 1,
            rows: 28,
            cols: 28,
            checksums: Vec::new(),
        };
        let ranges = calibrate(&m, &set, &device);
        assert_eq!(ranges.len(), ACT_SITES);
        assert!(ranges.iter().all(|r| *r > 0.0));
    }
}
