//! Offline conversion of float layers to the engine's integer layers (dossier §6.8): choose
//! weight parameters, quantize weights and int32 biases, compute per-channel multipliers and the
//! activation clamp. Float lives here, never in [`crate::engine`].

use crate::engine::{AddLayer, ConvLayer, DepthwiseLayer, FullyConnectedLayer, Window};
use crate::error::{Result, arg_err, shape_err};
use crate::fixedpoint::{QuantizedMultiplier, RoundingMode};
use crate::kernels::{AddParams, OutputStage};
use crate::multiplier::conv_multiplier;
use crate::qparams::{FusedActivation, PerChannelQParams, QParams, QRange, quantize_bias};

/// How weights are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightScheme {
    /// The paper: one asymmetric `(S, Z)` per tensor on the narrow uint8 range `[1, 255]`,
    /// stored as int8 (`q - 128`, so codes lie in `[-127, 127]`, never -128).
    PerTensorAsymmetric,
    /// TFLite int8: one symmetric scale per output channel, `Z = 0`, codes in `[-127, 127]`.
    PerChannelSymmetric,
}

/// Integer weights, zero points and output stage of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    /// int8 weight codes, same layout as the float weights.
    pub weights: Vec<i8>,
    /// Weight zero points (one, or one per output channel).
    pub zero_points: Vec<i32>,
    /// Weight parameters per output channel (in the int8 code domain), for reports and QAT checks.
    pub weight_params: Vec<QParams>,
    /// The fused output stage.
    pub stage: OutputStage,
}

fn check_u8(p: &QParams, what: &str) -> Result<()> {
    if p.range.qmin < 0 || p.range.qmax > 255 || !(0..=255).contains(&p.zero_point) {
        return Err(arg_err!(
            "{what} parameters must use uint8 codes (the engine's activation type); shift int8 ones with QParams::shifted(128)"
        ));
    }
    Ok(())
}

/// Quantizes float weights whose **last** axis has `channels` output channels (HWIO conv,
/// `[ky][kx][c]` depthwise, `K x N` dense) with their float `bias` (empty or one per channel).
#[allow(clippy::too_many_arguments)]
pub fn quantize_layer(
    weights: &[f32],
    channels: usize,
    bias: &[f32],
    input: &QParams,
    output: &QParams,
    scheme: WeightScheme,
    activation: FusedActivation,
    rounding: RoundingMode,
) -> Result<QuantizedLayer> {
    check_u8(input, "input")?;
    check_u8(output, "output")?;
    if channels == 0 || weights.is_empty() || !weights.len().is_multiple_of(channels) {
        return Err(shape_err!(
            "{} weights cannot have {channels} output channels",
            weights.len()
        ));
    }
    if !(bias.is_empty() || bias.len() == channels) {
        return Err(shape_err!(
            "{} biases for {channels} output channels",
            bias.len()
        ));
    }
    let (codes, params): (Vec<i8>, Vec<QParams>) = match scheme {
        WeightScheme::PerTensorAsymmetric => {
            let (mut lo, mut hi) = (0f64, 0f64);
            for &w in weights {
                let w = f64::from(w);
                if !w.is_finite() {
                    return Err(crate::error::QuantError::NonFinite { what: "weight" });
                }
                lo = lo.min(w);
                hi = hi.max(w);
            }
            let p = QParams::choose(lo, hi, QRange::U8_NARROW)?;
            let u = p.quantize_u8(weights)?;
            (crate::kernels::u8_to_i8(&u), vec![p.shifted(-128)])
        }
        WeightScheme::PerChannelSymmetric => {
            let pc = PerChannelQParams::symmetric_last_axis(weights, channels, QRange::I8_NARROW)?;
            (pc.quantize_i8(weights)?, pc.channels)
        }
    };
    let scales: Vec<f64> = params.iter().map(|p| p.scale).collect();
    let stage = output_stage(bias, input, output, &scales, activation, rounding)?;
    Ok(QuantizedLayer {
        weights: codes,
        zero_points: params.iter().map(|p| p.zero_point).collect(),
        weight_params: params,
        stage,
    })
}

/// The output stage of a layer whose weights have scales `weight_scales` (one, or one per output
/// channel), reading codes with parameters `input` and writing codes with `output`: its float
/// `bias` (empty or one per channel) as int32 at `S_w S_in`, the multipliers `S_w S_in / S_out`
/// (eq. 5), the output zero point and the fused activation's clamp. Every exporter of an affine
/// model goes through it (this module's layers, quant-train's QAT export).
pub fn output_stage(
    bias: &[f32],
    input: &QParams,
    output: &QParams,
    weight_scales: &[f64],
    activation: FusedActivation,
    rounding: RoundingMode,
) -> Result<OutputStage> {
    let multipliers = weight_scales
        .iter()
        .map(|&s| conv_multiplier(input.scale, s, output.scale))
        .collect::<Result<Vec<QuantizedMultiplier>>>()?;
    let bias = if bias.is_empty() {
        vec![]
    } else {
        quantize_bias(bias, input.scale, weight_scales)?
    };
    let (act_min, act_max) = activation.clamp_range(output);
    Ok(OutputStage {
        bias,
        multipliers,
        rounding,
        output_zero_point: output.zero_point,
        act_min: act_min as u8,
        act_max: act_max as u8,
    })
}

/// Everything a float layer needs besides its weights.
#[derive(Debug, Clone, Copy)]
pub struct LayerQuant {
    /// Input activation parameters (uint8 codes).
    pub input: QParams,
    /// Output activation parameters (uint8 codes).
    pub output: QParams,
    /// Weight scheme.
    pub scheme: WeightScheme,
    /// Fused activation.
    pub activation: FusedActivation,
    /// Model rounding mode.
    pub rounding: RoundingMode,
}

impl LayerQuant {
    fn layer(&self, weights: &[f32], channels: usize, bias: &[f32]) -> Result<QuantizedLayer> {
        quantize_layer(
            weights,
            channels,
            bias,
            &self.input,
            &self.output,
            self.scheme,
            self.activation,
            self.rounding,
        )
    }
}

impl ConvLayer {
    /// Converts a float convolution with HWIO weights (`[ky][kx][ci][co]`).
    pub fn from_float(
        weights: &[f32],
        out_channels: usize,
        window: Window,
        bias: &[f32],
        q: &LayerQuant,
    ) -> Result<Self> {
        let l = q.layer(weights, out_channels, bias)?;
        Ok(ConvLayer {
            out_channels,
            window,
            weights: l.weights,
            weight_zero_points: l.zero_points,
            stage: l.stage,
        })
    }
}

impl DepthwiseLayer {
    /// Converts a float depthwise convolution with weights `[ky][kx][c]`.
    pub fn from_float(
        weights: &[f32],
        channels: usize,
        window: Window,
        bias: &[f32],
        q: &LayerQuant,
    ) -> Result<Self> {
        let l = q.layer(weights, channels, bias)?;
        Ok(DepthwiseLayer {
            window,
            weights: l.weights,
            weight_zero_points: l.zero_points,
            stage: l.stage,
        })
    }
}

impl FullyConnectedLayer {
    /// Converts a float dense layer with row-major `K x N` weights.
    pub fn from_float(
        weights: &[f32],
        out_features: usize,
        bias: &[f32],
        q: &LayerQuant,
    ) -> Result<Self> {
        let l = q.layer(weights, out_features, bias)?;
        Ok(FullyConnectedLayer {
            out_features,
            weights: l.weights,
            weight_zero_points: l.zero_points,
            stage: l.stage,
        })
    }
}

impl AddLayer {
    /// Residual add of the node's first input (`input1`) and its second (`input2`) into `output`.
    pub fn from_float(
        input1: &QParams,
        input2: &QParams,
        output: &QParams,
        activation: FusedActivation,
    ) -> Result<Self> {
        for (p, w) in [
            (input1, "add input"),
            (input2, "add skip input"),
            (output, "add output"),
        ] {
            check_u8(p, w)?;
        }
        let (lo, hi) = activation.clamp_range(output);
        let params = AddParams::from_scales(
            (input1.scale, input1.zero_point),
            (input2.scale, input2.zero_point),
            (output.scale, output.zero_point),
            lo as u8,
            hi as u8,
        )?;
        Ok(AddLayer { params })
    }
}
