//! The paper's formats as `quant-train` quantizers, and weight-only PTQ of whole models.
//!
//! Fake quantization runs the exact `quant_core` format on the host (these are CPU runs, so the
//! round trip is cheap next to the layer it feeds) and passes gradients straight through to the
//! float master values (`x + (q - x).detach()`, as [`quant_train::fused::straight_through`]): the paper publishes no gradient rule for its
//! retraining, and the dossier asks for the same plain STE for every format.

use std::sync::{Arc, Mutex};

use burn::module::Param;
use burn::prelude::*;
use quant_core::formats::{Format, QuantTable, TensorParam};
use quant_train::{Net, Quantizer};
use rayon::prelude::*;

/// A [`Format`] that quantizes a tensor with the parameter the format picks for the observed
/// range: `max(|min|, |max|)` sets AdaptivFloat's `exp_bias`, BFP's shared exponent and Uniform's
/// range; Float and Posit ignore it.
///
/// Retraining quantizes every weight and activation tensor of every step, so the search tables of
/// the parameters met so far are kept (clones share them): a 16-bit table decodes 65 536 codes,
/// more work than quantizing a tensor. Uniform's parameter is the observed range itself, new at
/// almost every step, so Uniform runs the codec per value instead.
#[derive(Debug, Clone)]
pub struct FormatQuantizer {
    format: Format,
    tables: Arc<Mutex<KeptTables>>,
}

/// The tables built so far, by parameter, oldest first.
type KeptTables = Vec<(TensorParam, Arc<QuantTable>)>;

/// Tables a [`FormatQuantizer`] keeps; the oldest goes first (activation ranges drift across a
/// handful of neighbouring exponents).
const KEPT_TABLES: usize = 16;

/// Values per parallel task of a table lookup.
const LOOKUP_CHUNK: usize = 1 << 14;

impl FormatQuantizer {
    pub fn new(format: Format) -> FormatQuantizer {
        FormatQuantizer {
            format,
            tables: Arc::default(),
        }
    }

    /// The format it quantizes with.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The search table under `param`, built on first use; `None` where the codec runs instead.
    fn table(&self, param: TensorParam) -> Option<Arc<QuantTable>> {
        if matches!(param, TensorParam::Range(_)) {
            return None;
        }
        // A poisoned lock only means another thread panicked while holding it; the tables are
        // still whole (each is inserted complete), so keep using them.
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, t)) = tables.iter().find(|(p, _)| *p == param) {
            return Some(Arc::clone(t));
        }
        let table = Arc::new(QuantTable::new(&self.format, param).ok()?);
        if tables.len() == KEPT_TABLES {
            tables.remove(0);
        }
        tables.push((param, Arc::clone(&table)));
        Some(table)
    }

    /// Quantizes host values with the parameter of `max_abs`: through the format's
    /// [`QuantTable`] (the codec's results, by search), or the codec itself where no table is
    /// kept. A diverged model can feed NaN; it stays NaN (the loss then reports it) instead of
    /// aborting a forward pass.
    pub fn quantize_values(&self, xs: &[f32], max_abs: f64) -> Vec<f32> {
        let param = self.format.fit_max_abs(max_abs);
        match self.table(param) {
            // Whole chunks per task, each one loop (the arithmetic form vectorises; as a per-value
            // `map` closure the lookup stayed a call per value, which cost as much as the lookup).
            Some(table) => {
                let mut out = vec![0.0f32; xs.len()];
                out.par_chunks_mut(LOOKUP_CHUNK)
                    .zip(xs.par_chunks(LOOKUP_CHUNK))
                    .for_each(|(out, xs)| table.quantize_f32_into(xs, out));
                out
            }
            None => xs
                .par_iter()
                .map(|&x| {
                    self.format
                        .quantize(param, f64::from(x))
                        .map_or(f32::NAN, |v| v as f32)
                })
                .collect(),
        }
    }
}

impl Quantizer for FormatQuantizer {
    fn label(&self) -> String {
        self.format.label()
    }

    fn fake_quant(&self, x: Tensor<1>, range: (f64, f64)) -> Tensor<1> {
        let max_abs = range.0.abs().max(range.1.abs());
        let max_abs = if max_abs.is_finite() { max_abs } else { 0.0 };
        let q = quant_train::fused::map_values(&x, |values| self.quantize_values(values, max_abs));
        quant_train::fused::straight_through(x, q)
    }
}

/// Quantizes one parameter tensor in place of its values (its own per-tensor parameter).
pub fn quantize_tensor<const D: usize>(format: &Format, t: Tensor<D>) -> Tensor<D> {
    let dims = t.dims();
    let device = t.device();
    let values = t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
    let q = format
        .quantize_tensor_f32(&values)
        .map(|q| q.values)
        .unwrap_or_else(|_| vec![f32::NAN; values.len()]);
    Tensor::from_data(TensorData::new(q, dims), &device)
}

fn quantize_param<const D: usize>(format: &Format, p: &Param<Tensor<D>>) -> Param<Tensor<D>> {
    Param::from_tensor(quantize_tensor(format, p.val()))
}

/// Weight-only PTQ as the paper's reference code does it: every parameter tensor of the model
/// (weights, biases, batch-norm scale and shift) quantized with its own per-tensor parameter.
/// Batch-norm moving statistics are buffers, not parameters, and stay in float.
pub fn quantize_all_parameters(net: &Net, format: &Format) -> Net {
    let mut q = net.clone();
    q.map_layers(|_, layer| {
        layer.weight = quantize_param(format, &layer.weight);
        layer.bias = layer.bias.as_ref().map(|b| quantize_param(format, b));
        if let Some(bn) = &mut layer.bn {
            bn.gamma = quantize_param(format, &bn.gamma);
            bn.beta = quantize_param(format, &bn.beta);
        }
    });
    q
}

/// Every parameter tensor of the model as host vectors with a name (for the RMSE study and the
/// weight statistics).
pub fn parameter_tensors(net: &Net) -> Vec<(String, Vec<f64>)> {
    let host = |t: Tensor<1>| -> Vec<f64> {
        t.into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let mut out = Vec::new();
    for (i, layer) in net.layers().into_iter().enumerate() {
        let w = layer.weight.val();
        let n = w.dims().iter().product::<usize>();
        out.push((format!("layer{i}.weight"), host(w.reshape([n]))));
        if let Some(b) = &layer.bias {
            out.push((format!("layer{i}.bias"), host(b.val())));
        }
        if let Some(bn) = &layer.bn {
            out.push((format!("layer{i}.bn.gamma"), host(bn.gamma.val())));
            out.push((format!("layer{i}.bn.beta"), host(bn.beta.val())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::formats::FormatKind;
    use quant_train::{ModelConfig, ModelSpec};

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn fake_quant_is_the_format_forward_and_identity_backward() {
        let device = Device::flex().autodiff();
        let xs = [0.9f32, -0.3, 0.051, 0.0061, -0.0012, 0.2, 0.003];
        let x = Tensor::<1>::from_data(TensorData::new(xs.to_vec(), [7]), &device).require_grad();
        let q = FormatQuantizer::new(Format::paper(FormatKind::AdaptivFloat, 8).unwrap());
        let y = q.fake_quant(x.clone(), (-0.3, 0.9));
        let expected: Vec<f32> = [
            0.90625,
            -0.296875,
            0.05078125,
            0.0061035156,
            -0.0,
            0.203125,
            0.0041503906,
        ]
        .to_vec();
        assert_eq!(host(y.clone()), expected);
        let grads = (y * Tensor::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &device))
            .sum()
            .backward();
        let g = x.grad(&grads).unwrap();
        assert_eq!(host(g), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    }

    /// Every family at 8 and 16 bits, through a kept table or the codec, and again with the
    /// table kept from the first call: the codec's value for every input.
    #[test]
    fn quantize_values_are_the_codec_values_with_and_without_kept_tables() {
        let xs: Vec<f32> = (0..4001)
            .map(|i| (i as f32 - 2000.0) * 0.00037)
            .chain([0.0, -0.0, 1e-30, f32::MAX])
            .collect();
        for bits in [8, 16] {
            for kind in FormatKind::ALL {
                let format = Format::paper(kind, bits).unwrap();
                let q = FormatQuantizer::new(format.clone());
                let param = format.fit_max_abs(0.74);
                let want: Vec<f32> = xs
                    .iter()
                    .map(|&x| format.quantize(param, f64::from(x)).unwrap() as f32)
                    .collect();
                for pass in 0..2 {
                    assert_eq!(
                        q.quantize_values(&xs, 0.74),
                        want,
                        "{} pass {pass}",
                        format.label()
                    );
                }
            }
        }
    }

    #[test]
    fn ptq_quantizes_every_parameter_tensor() {
        let device = Device::flex();
        let net = ModelConfig::new(ModelSpec::Cnn(vec![4, 8]), 3).build(&device);
        let format = Format::paper(FormatKind::AdaptivFloat, 4).unwrap();
        let q = quantize_all_parameters(&net, &format);
        let before = parameter_tensors(&net);
        let after = parameter_tensors(&q);
        assert_eq!(before.len(), after.len());
        assert!(after.iter().any(|(name, _)| name.contains("bn.gamma")));
        for ((name, b), (_, a)) in before.iter().zip(&after) {
            let expected = format.quantize_tensor(b).unwrap().values;
            let as_f32: Vec<f64> = expected.iter().map(|v| f64::from(*v as f32)).collect();
            assert_eq!(a, &as_f32, "{name}");
        }
    }
}
