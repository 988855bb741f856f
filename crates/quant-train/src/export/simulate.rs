//! The exported network's integer arithmetic replayed in Burn tensors, layer by layer: the codes the
//! engine must produce.

use super::*;

/// A batch in the integer simulation: codes in Burn's `[n, c, h, w]` layout and their parameters.
#[derive(Debug, Clone)]
pub(crate) struct SimTensor {
    pub(crate) codes: Vec<i32>,
    pub(crate) dims: [usize; 4],
    pub(crate) params: QParams,
}

impl SimTensor {
    /// The codes as an f32 tensor, minus `offset` (exact: small integers).
    pub(crate) fn tensor(&self, offset: i32, device: &Device) -> Tensor<4> {
        let v: Vec<f32> = self.codes.iter().map(|&c| (c - offset) as f32).collect();
        Tensor::from_data(TensorData::new(v, self.dims), device)
    }

    /// The real values `S (q - Z)` the fake-quantized model holds for these codes.
    pub(crate) fn dequantized(&self, device: &Device) -> Tensor<4> {
        let p = self.params;
        let v: Vec<f32> = self.codes.iter().map(|&c| p.dequantize(c) as f32).collect();
        Tensor::from_data(TensorData::new(v, self.dims), device)
    }
}

pub(crate) fn dims4(t: &Tensor<4>) -> [usize; 4] {
    t.dims()
}

/// The evaluation graph of a quantized [`Net`] computed on integer codes: the same blocks as the
/// fake-quantized model, but every stored tensor is its exact code, each conv/FC multiplies
/// zero-point-centred codes (Burn's own conv, exact on integers, see [`EXACT_DEPTH`]), adds the
/// int32 bias and requantizes with the paper's fixed-point multiplier (eq. 6; quant-core's scalar
/// output stage), global average pooling rounds the code mean, and residual adds use the
/// fixed-point add. This is what the deployed arithmetic computes, derived from the Burn model
/// independently of the engine's kernels, layouts and graph wiring (which it therefore checks).
pub(crate) struct Simulator<'a> {
    pub(crate) rounding: RoundingMode,
    pub(crate) device: &'a Device,
    pub(crate) index: usize,
}

impl Simulator<'_> {
    pub(crate) fn layer(&mut self, l: &QLayer, x: &SimTensor) -> Result<SimTensor, ExportError> {
        let index = self.index;
        self.index += 1;
        let q = quantize_layer(l, index, &x.params, self.rounding)?;
        let [co, cig, kh, kw] = l.weight.dims();
        if cig * kh * kw > EXACT_DEPTH {
            return Err(ExportError(format!(
                "layer {index} sums {} products, more than the {EXACT_DEPTH} the integer simulation keeps exact: use a narrower layer",
                cig * kh * kw
            )));
        }
        let centred: Vec<i32> = q
            .codes
            .iter()
            .map(|&c| i32::from(c) - q.zero_point)
            .collect();
        let part = |f: fn(i32) -> i32| -> Tensor<4> {
            let v: Vec<f32> = centred.iter().map(|&w| f(w) as f32).collect();
            Tensor::from_data(TensorData::new(v, [co, cig, kh, kw]), self.device)
        };
        let hi_of = |w: i32| (w + 8).div_euclid(16);
        let xt = x.tensor(x.params.zero_point, self.device);
        let hi = l.apply_weight(xt.clone(), part(hi_of), None);
        let lo = l.apply_weight(xt, part(|w| w - 16 * (w + 8).div_euclid(16)), None);
        let dims = dims4(&hi);
        let plane = dims[2] * dims[3];
        let (hi, lo) = (floats(hi), floats(lo));
        let codes = hi
            .iter()
            .zip(&lo)
            .enumerate()
            .map(|(i, (&h, &l))| {
                let c = (i / plane) % co;
                let acc = 16 * (h as i64) + (l as i64) + i64::from(q.stage.bias[c]);
                let acc = i32::try_from(acc).map_err(|_| {
                    ExportError(format!(
                        "layer {index}: accumulator {acc} overflows int32: the weights or biases are out of range"
                    ))
                })?;
                Ok(i32::from(q.stage.requantize(acc, c)))
            })
            .collect::<Result<Vec<i32>, ExportError>>()?;
        Ok(SimTensor {
            codes,
            dims,
            params: q.out_q,
        })
    }

    pub(crate) fn block(&mut self, b: &Block, x: SimTensor) -> Result<SimTensor, ExportError> {
        match b {
            Block::InputNorm(n) => {
                let [_, c, h, w] = x.dims;
                let (table, params) = code_table(n, &x.params, c)?;
                let codes = x
                    .codes
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| i32::from(table.tables[(i / (h * w)) % c * 256 + q as usize]))
                    .collect();
                Ok(SimTensor {
                    codes,
                    dims: x.dims,
                    params,
                })
            }
            Block::Layer(l) => self.layer(l, &x),
            Block::MaxPool(m) => {
                let y = m.forward(x.tensor(0, self.device));
                let dims = dims4(&y);
                let codes = floats(y).into_iter().map(|v| v as i32).collect();
                Ok(SimTensor {
                    codes,
                    dims,
                    params: x.params,
                })
            }
            Block::GlobalAvgPool(_) => {
                let [n, c, h, w] = x.dims;
                let codes = x
                    .codes
                    .chunks(h * w)
                    .map(|plane| rounding_divide(plane.iter().sum(), (h * w) as i32).clamp(0, 255))
                    .collect();
                Ok(SimTensor {
                    codes,
                    dims: [n, c, 1, 1],
                    params: x.params,
                })
            }
            Block::Residual(r) => {
                let mut a = x.clone();
                for l in &r.body {
                    a = self.layer(l, &a)?;
                }
                let b = match &r.shortcut {
                    Some(s) => self.layer(s, &x)?,
                    None => x,
                };
                let out_q = stage_params(
                    &r.add.output,
                    &format!("residual add after layer {}", self.index),
                )?;
                let act = engine_activation(r.add.output.activation);
                let add = AddLayer::from_float(&a.params, &b.params, &out_q, act)?.params;
                let codes = a
                    .codes
                    .iter()
                    .zip(&b.codes)
                    .map(|(&p, &q)| i32::from(add.add_one(p as u8, q as u8, self.rounding)))
                    .collect();
                Ok(SimTensor {
                    codes,
                    dims: a.dims,
                    params: out_q,
                })
            }
        }
    }
}

pub(crate) fn pixel_params() -> Result<QParams, ExportError> {
    Ok(QParams::new(1.0 / 255.0, 0, QRange::U8)?)
}

/// The input batch `indices` of `set` as codes.
pub(crate) fn input_codes(
    set: &ImageSet,
    indices: std::ops::Range<usize>,
) -> Result<SimTensor, ExportError> {
    let px = set.pixels();
    let n = indices.len();
    Ok(SimTensor {
        codes: set.images[indices.start * px..indices.end * px]
            .iter()
            .map(|&p| i32::from(p))
            .collect(),
        dims: [n, px / (set.rows * set.cols), set.rows, set.cols],
        params: pixel_params()?,
    })
}

/// Logit codes (`[len, classes]` row-major) of the integer simulation of the evaluation graph of
/// `net` on every image of `set` (see [`check_agreement`] for what it is and why).
pub fn simulate_codes(
    net: &Net,
    set: &ImageSet,
    rounding: RoundingMode,
    device: &Device,
) -> Result<Vec<i32>, ExportError> {
    let mut out = Vec::with_capacity(set.len() * net.classes);
    for start in (0..set.len()).step_by(256) {
        let mut sim = Simulator {
            rounding,
            device,
            index: 0,
        };
        let mut x = input_codes(set, start..(start + 256).min(set.len()))?;
        for b in &net.blocks {
            x = sim.block(b, x)?;
        }
        out.extend(x.codes);
    }
    Ok(out)
}
