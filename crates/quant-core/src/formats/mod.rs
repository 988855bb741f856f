//! Low-precision number formats of Tambe et al. 2020 (AdaptivFloat) and its four rivals.
//!
//! These are number formats, not integer kernels: encoding and decoding are defined on real values,
//! so float arithmetic is the specification here. Every computation is done in `f64`, where every
//! value of every format up to 16 bits is exact (powers of two times short mantissas); only the
//! uniform format's `range * q / k` is rounded, and that rounding is part of its definition.
//!
//! * [`AdaptivFloat`]: `<n,e>` float whose exponent window is shifted per tensor so that its top
//!   binade holds `max|W|` (Algorithm 1 of the DAC 2020 paper).
//! * [`IeeeFloat`]: IEEE-like `<n,e>` float with a fixed bias (non-adaptive).
//! * [`BlockFloat`]: block floating point with one shared exponent per tensor.
//! * [`Uniform`]: symmetric max-abs integer quantization.
//! * [`Posit`]: `<n,es>` posit (non-adaptive).
//!
//! Every format follows one shape (the [`Format`] enum dispatches to it): a per-tensor parameter
//! [`TensorParam`] chosen from `max|x|` alone, as the paper does ([`Format::fit`]); `encode` from a
//! finite value to an `n`-bit code under that parameter; `decode` back (`None` for codes the format
//! leaves unused); quantization is `decode(encode(x))`. [`Format::quantize_tensor`] does the three
//! steps for a whole tensor and rejects NaN and infinities.

mod adaptivfloat;
mod bfp;
mod ieee;
mod posit;
mod table;
mod uniform;

#[cfg(test)]
mod tests;

pub use adaptivfloat::{AdaptivFloat, ZeroTie};
pub use bfp::BlockFloat;
pub use ieee::IeeeFloat;
pub use posit::{Posit, PositUnderflow};
pub use table::{MAX_TABLE_BITS, QuantTable};
pub use uniform::Uniform;

use crate::error::{Result, arg_err};
use std::fmt;
use std::str::FromStr;

/// How a value exactly halfway between two grid points is resolved.
///
/// The reference code of the paper uses numpy/torch `round`, which sends ties to even, so that is
/// the default; half-away-from-zero is the workspace's integer rounding rule and is offered to
/// measure how much the choice matters (dossier §9.1 P1e).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounding {
    /// `2.5 -> 2`, `3.5 -> 4`, `-2.5 -> -2`.
    #[default]
    NearestEven,
    /// `2.5 -> 3`, `-2.5 -> -3`.
    NearestAway,
}

impl Rounding {
    /// Rounds `x` to an integer with this rule.
    #[inline]
    pub fn round(self, x: f64) -> f64 {
        match self {
            Rounding::NearestEven => x.round_ties_even(),
            Rounding::NearestAway => x.round(),
        }
    }
}

/// The per-tensor parameter each format derives from `max|x|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorParam {
    /// AdaptivFloat's `exp_bias`: the exponent of the lowest binade.
    ExpBias(i32),
    /// Block floating point's shared exponent `floor(log2 max|x|)`.
    SharedExponent(i32),
    /// Uniform's range `r = max|x|`; the step is `r / (2^(n-1) - 1)`.
    Range(f64),
    /// Non-adaptive formats (Float, Posit) have no per-tensor state.
    Fixed,
}

impl fmt::Display for TensorParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorParam::ExpBias(b) => write!(f, "exp_bias = {b}"),
            TensorParam::SharedExponent(e) => write!(f, "shared_exponent = {e}"),
            TensorParam::Range(r) => write!(f, "range = {r:e} (step = range / (2^(n-1) - 1))"),
            TensorParam::Fixed => f.write_str("no per-tensor parameter (fixed range)"),
        }
    }
}

/// The five format families, by the names the paper's tables use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormatKind {
    Float,
    Bfp,
    Uniform,
    Posit,
    AdaptivFloat,
}

impl FormatKind {
    /// All five, in the column order of the paper's Tables 2 and 3.
    pub const ALL: [FormatKind; 5] = [
        FormatKind::Float,
        FormatKind::Bfp,
        FormatKind::Uniform,
        FormatKind::Posit,
        FormatKind::AdaptivFloat,
    ];

    /// The name the paper (and `published.csv`'s method column) uses.
    pub fn paper_name(self) -> &'static str {
        match self {
            FormatKind::Float => "Float",
            FormatKind::Bfp => "BFP",
            FormatKind::Uniform => "Uniform",
            FormatKind::Posit => "Posit",
            FormatKind::AdaptivFloat => "AdaptivFloat",
        }
    }

    /// The exponent width (`e`, or `es` for posits) the paper settled on for `bits`-bit words (§4 of
    /// the paper, dossier §2.7): AdaptivFloat `e = 3` everywhere, Float `e = 4` (3 at 4 bits), Posit
    /// `es = 1` (0 at 4 bits). `None` for the formats that have no exponent field.
    pub fn paper_exponent(self, bits: u32) -> Option<u32> {
        match self {
            FormatKind::AdaptivFloat => Some(3),
            FormatKind::Float => Some(if bits <= 4 { 3 } else { 4 }),
            FormatKind::Posit => Some(if bits <= 4 { 0 } else { 1 }),
            FormatKind::Bfp | FormatKind::Uniform => None,
        }
    }
}

impl FromStr for FormatKind {
    type Err = crate::error::QuantError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "adaptivfloat" => Ok(FormatKind::AdaptivFloat),
            "float" => Ok(FormatKind::Float),
            "bfp" => Ok(FormatKind::Bfp),
            "uniform" => Ok(FormatKind::Uniform),
            "posit" => Ok(FormatKind::Posit),
            _ => Err(arg_err!(
                "unknown format {s:?}: use adaptivfloat, float, bfp, uniform or posit"
            )),
        }
    }
}

/// One configured number format: family, word size and the family's options.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    AdaptivFloat(AdaptivFloat),
    Float(IeeeFloat),
    Bfp(BlockFloat),
    Uniform(Uniform),
    Posit(Posit),
}

impl Format {
    /// `kind` at `bits` bits with the given exponent width (`e` or `es`; ignored, and may be `None`,
    /// for BFP and Uniform), every other option at the dossier's default.
    pub fn new(kind: FormatKind, bits: u32, exponent: Option<u32>) -> Result<Format> {
        let need_exp = || {
            exponent
                .ok_or_else(|| arg_err!("{} needs an exponent width (--exp)", kind.paper_name()))
        };
        Ok(match kind {
            FormatKind::AdaptivFloat => Format::AdaptivFloat(AdaptivFloat::new(bits, need_exp()?)?),
            FormatKind::Float => Format::Float(IeeeFloat::new(bits, need_exp()?)?),
            FormatKind::Bfp => Format::Bfp(BlockFloat::new(bits)?),
            FormatKind::Uniform => Format::Uniform(Uniform::new(bits)?),
            FormatKind::Posit => Format::Posit(Posit::new(bits, need_exp()?)?),
        })
    }

    /// `kind` at `bits` bits with the paper's exponent width ([`FormatKind::paper_exponent`]).
    pub fn paper(kind: FormatKind, bits: u32) -> Result<Format> {
        Format::new(kind, bits, kind.paper_exponent(bits))
    }

    /// Which family this is.
    pub fn kind(&self) -> FormatKind {
        match self {
            Format::AdaptivFloat(_) => FormatKind::AdaptivFloat,
            Format::Float(_) => FormatKind::Float,
            Format::Bfp(_) => FormatKind::Bfp,
            Format::Uniform(_) => FormatKind::Uniform,
            Format::Posit(_) => FormatKind::Posit,
        }
    }

    /// Word size `n` in bits (codes are `0 .. 2^n`).
    pub fn bits(&self) -> u32 {
        match self {
            Format::AdaptivFloat(f) => f.bits(),
            Format::Float(f) => f.bits(),
            Format::Bfp(f) => f.bits(),
            Format::Uniform(f) => f.bits(),
            Format::Posit(f) => f.bits(),
        }
    }

    /// Exponent width (`e` or `es`), `None` for BFP and Uniform.
    pub fn exponent(&self) -> Option<u32> {
        match self {
            Format::AdaptivFloat(f) => Some(f.exp_bits()),
            Format::Float(f) => Some(f.exp_bits()),
            Format::Posit(f) => Some(f.es()),
            Format::Bfp(_) | Format::Uniform(_) => None,
        }
    }

    /// Short label such as `AdaptivFloat<8,3>`, `Posit<8,1>`, `BFP<8>`.
    pub fn label(&self) -> String {
        let name = self.kind().paper_name();
        match self.exponent() {
            Some(e) => format!("{name}<{},{e}>", self.bits()),
            None => format!("{name}<{}>", self.bits()),
        }
    }

    /// The per-tensor parameter for a tensor whose largest magnitude is `max_abs` (finite, `>= 0`).
    pub fn fit_max_abs(&self, max_abs: f64) -> TensorParam {
        assert!(max_abs.is_finite() && max_abs >= 0.0);
        match self {
            Format::AdaptivFloat(f) => TensorParam::ExpBias(f.exp_bias_for(max_abs)),
            Format::Bfp(f) => TensorParam::SharedExponent(f.shared_exponent_for(max_abs)),
            Format::Uniform(_) => TensorParam::Range(max_abs),
            Format::Float(_) | Format::Posit(_) => TensorParam::Fixed,
        }
    }

    /// The per-tensor parameter for `xs`, as the paper chooses it (from `max|x|`). Errors on NaN or
    /// infinite elements.
    pub fn fit(&self, xs: &[f64]) -> Result<TensorParam> {
        Ok(self.fit_max_abs(max_abs(xs)?))
    }

    /// The `n`-bit code of the finite value `x` under `param`. Errors on NaN/infinite `x` or on a
    /// parameter of another family.
    pub fn encode(&self, param: TensorParam, x: f64) -> Result<u32> {
        if !x.is_finite() {
            return Err(arg_err!(
                "{x} cannot be encoded: only finite numbers have a code"
            ));
        }
        match (self, param) {
            (Format::AdaptivFloat(f), TensorParam::ExpBias(b)) => Ok(f.encode(b, x)),
            (Format::Bfp(f), TensorParam::SharedExponent(e)) => Ok(f.encode(e, x)),
            (Format::Uniform(f), TensorParam::Range(r)) => Ok(f.encode(r, x)),
            (Format::Float(f), TensorParam::Fixed) => Ok(f.encode(x)),
            (Format::Posit(f), TensorParam::Fixed) => Ok(f.encode(x)),
            _ => Err(self.param_mismatch(param)),
        }
    }

    /// The value of `code` under `param`; `None` for a code the format leaves unused (posit NaR,
    /// IEEE-like reserved or denormal codes, uniform's `-2^(n-1)`) or one wider than `n` bits.
    pub fn decode(&self, param: TensorParam, code: u32) -> Result<Option<f64>> {
        if code >> self.bits() != 0 {
            return Ok(None);
        }
        match (self, param) {
            (Format::AdaptivFloat(f), TensorParam::ExpBias(b)) => Ok(Some(f.decode(b, code))),
            (Format::Bfp(f), TensorParam::SharedExponent(e)) => Ok(Some(f.decode(e, code))),
            (Format::Uniform(f), TensorParam::Range(r)) => Ok(f.decode(r, code)),
            (Format::Float(f), TensorParam::Fixed) => Ok(f.decode(code)),
            (Format::Posit(f), TensorParam::Fixed) => Ok(f.decode(code)),
            _ => Err(self.param_mismatch(param)),
        }
    }

    /// The representable value nearest to `x` under `param` (`decode(encode(x))`).
    pub fn quantize(&self, param: TensorParam, x: f64) -> Result<f64> {
        let code = self.encode(param, x)?;
        let value = self.decode(param, code)?;
        value.ok_or_else(|| {
            arg_err!(
                "internal: {} encoded {x} to unused code {code:#x}",
                self.label()
            )
        })
    }

    /// Quantizes a whole tensor with its parameter chosen from the tensor itself.
    pub fn quantize_tensor(&self, xs: &[f64]) -> Result<Quantized<f64>> {
        let param = self.fit(xs)?;
        let values = xs
            .iter()
            .map(|&x| self.quantize(param, x))
            .collect::<Result<Vec<_>>>()?;
        Ok(Quantized { param, values })
    }

    /// `f32` convenience for weights: quantizes in `f64` and rounds the results back to `f32`
    /// (exact for every format except Uniform, whose grid points are not `f32` numbers in general).
    pub fn quantize_tensor_f32(&self, xs: &[f32]) -> Result<Quantized<f32>> {
        let wide: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
        let q = self.quantize_tensor(&wide)?;
        Ok(Quantized {
            param: q.param,
            values: q.values.into_iter().map(|v| v as f32).collect(),
        })
    }

    /// Encodes a whole tensor with its parameter chosen from the tensor itself.
    pub fn encode_tensor(&self, xs: &[f64]) -> Result<Quantized<u32>> {
        let param = self.fit(xs)?;
        let values = xs
            .iter()
            .map(|&x| self.encode(param, x))
            .collect::<Result<Vec<_>>>()?;
        Ok(Quantized { param, values })
    }

    fn param_mismatch(&self, param: TensorParam) -> crate::error::QuantError {
        arg_err!(
            "{} cannot use the parameter `{param}` of another format",
            self.label()
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A quantized (or encoded) tensor and the per-tensor parameter it was quantized with.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized<T> {
    pub param: TensorParam,
    pub values: Vec<T>,
}

/// `max|x|` over `xs` (0 for an empty tensor); errors on the first NaN or infinite element.
pub fn max_abs(xs: &[f64]) -> Result<f64> {
    xs.iter().enumerate().try_fold(0.0f64, |m, (i, &x)| {
        if x.is_finite() {
            Ok(m.max(x.abs()))
        } else {
            Err(arg_err!(
                "tensor element {i} is {x}: only finite numbers can be quantized"
            ))
        }
    })
}

/// `2^k`, exact for every `k` in the `f64` range (`-1074 ..= 1023`); 0 below it, infinity above.
#[inline]
pub(crate) fn pow2(k: i32) -> f64 {
    if (-1022..=1023).contains(&k) {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else if (-1074..-1022).contains(&k) {
        f64::from_bits(1u64 << (k + 1074))
    } else if k < 0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// `a * 2^k` rounded once, for `|k| <= 2046`: `pow2` alone is 0 below `2^-1074` and infinite above
/// `2^1023`, so a tiny `a` scaled up by a large `k` (or a large one scaled down) would overflow or
/// flush to zero on the factor although the product is in range. Two power-of-two factors of half
/// the exponent each stay in range; multiplying by each is exact while the intermediate is normal,
/// so the only rounding is the last one (into the subnormals). Equal to `a * pow2(k)` whenever that
/// factor is in range and the product is normal.
#[inline]
pub(crate) fn ldexp(a: f64, k: i32) -> f64 {
    let half = k / 2;
    a * pow2(half) * pow2(k - half)
}

/// `floor(log2 a)` for finite `a > 0`, exact (read from the bits, so exact powers of two give their
/// own exponent, which `log2` in floating point does not guarantee).
#[inline]
pub(crate) fn floor_log2(a: f64) -> i32 {
    assert!(a.is_finite() && a > 0.0);
    let biased = ((a.to_bits() >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        floor_log2(a * pow2(64)) - 64
    } else {
        biased - 1023
    }
}

/// Sign bit of an `n`-bit sign-magnitude code.
#[inline]
pub(crate) fn sign_bit(bits: u32) -> u32 {
    1 << (bits - 1)
}

/// Checks `2 <= bits <= 16`, the word sizes these formats support (codes fit a `u32` and every value
/// is exact in `f64`).
pub(crate) fn check_bits(name: &str, bits: u32, min: u32) -> Result<()> {
    if (min..=16).contains(&bits) {
        Ok(())
    } else {
        Err(arg_err!("{name} supports {min} to 16 bits, not {bits}"))
    }
}
