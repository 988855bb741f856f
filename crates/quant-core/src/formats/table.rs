//! A format's quantizer as a search over its sorted values: the same result as
//! `decode(encode(x))` for every finite input, in about `bits` comparisons instead of an encode and
//! a decode. Quantization-aware retraining quantizes every activation of every step, so the
//! per-value cost matters there; the codec stays the definition and builds the table.
//!
//! Every format here rounds monotonically (a larger input never gets a smaller value), so the
//! inputs that map to one value form an interval. Between neighbouring values `lo < hi` the table
//! stores the boundary as the midpoint `m` with the side the codec sends `m` itself to, after
//! checking that the codec sends the `f64` just below `m` to `lo` and the one just above to `hi`;
//! where it does not (Uniform's grid points are rounded, so its decision point need not be the
//! midpoint of two decoded values), the boundary is found by bisection on the codec.
//!
//! Training tensors are `f32`, so the table also answers for `f32` inputs without a search over
//! every boundary: an `f32` is exactly representable in `f64`, so `bound <= x` holds exactly when
//! the smallest `f32` at or above the bound is `<= x`, and the `f32` line is cut into buckets (the
//! top bits of an order-preserving key: sign, exponent and the top mantissa bits) that each know
//! which boundaries fall inside them. Most buckets hold none or one, so a lookup is a few loads;
//! AdaptivFloat tables also answer by arithmetic on the `f32` bits ([`BinadeRounding`]).

use super::{Format, Rounding, TensorParam, ZeroTie};
use crate::error::{Result, arg_err};

/// Widest format the table is built for (`2^bits` codes are decoded once per table).
pub const MAX_TABLE_BITS: u32 = 16;

/// The values of one format under one tensor parameter, with their decision boundaries.
#[derive(Debug, Clone)]
pub struct QuantTable {
    /// Distinct finite values, ascending.
    pub(super) values: Vec<f64>,
    /// `bounds[i]`: the smallest `f64` the codec sends to `values[i + 1]`.
    pub(super) bounds: Vec<f64>,
    /// The same table for `f32` inputs.
    pub(super) narrow: NarrowIndex,
    /// The same lookup as arithmetic on the `f32` bits, where the format allows it.
    pub(super) binade: Option<BinadeRounding>,
}

/// [`QuantTable::quantize_f32`] of an AdaptivFloat table whose values and thresholds are all
/// normal `f32` (every exponent bias a realistic tensor gets), computed instead of looked up:
/// zero below `value_min / 2`, `value_min` up to `value_min`, `value_max` from `value_max` on,
/// and in between the input's mantissa rounded to `m` bits, ties to even, on its bits (exact for
/// a normal `f32`, as the codec's `f64` rounding is; a carry into the exponent is the next
/// binade's first value). A dozen branch-free operations that vectorise, against a lookup of
/// three dependent loads per value.
#[derive(Debug, Clone, Copy)]
pub(super) struct BinadeRounding {
    half_min: f32,
    min: f32,
    max: f32,
    /// Mantissa bits dropped, `23 - m`.
    drop: u32,
    /// The table's zero (whose sign the search returns for every input that rounds to zero).
    zero: f32,
}

impl BinadeRounding {
    fn of(format: &Format, param: TensorParam, zero: f32) -> Option<BinadeRounding> {
        let (Format::AdaptivFloat(f), TensorParam::ExpBias(bias)) = (format, param) else {
            return None;
        };
        // Without mantissa bits a tie rounds the codec's integer 1.5 to 2, always up, where the
        // bit trick would look at the exponent's last bit.
        if f.rounding != Rounding::NearestEven
            || f.zero_tie != ZeroTie::ToMin
            || f.mantissa_bits() == 0
        {
            return None;
        }
        let (min, max) = (f.value_min(bias), f.value_max(bias));
        let normal = |v: f64| (f64::from(f32::MIN_POSITIVE)..=f64::from(f32::MAX)).contains(&v);
        (normal(min / 2.0) && normal(max)).then(|| BinadeRounding {
            half_min: (min / 2.0) as f32,
            min: min as f32,
            max: max as f32,
            drop: 23 - f.mantissa_bits(),
            zero,
        })
    }

    /// [`Self::quantize`] of every value, compiled a second time for AVX2 (8 lanes instead of
    /// the baseline target's 4) and chosen at run time.
    fn quantize_into(&self, xs: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected on this CPU.
            return unsafe { self.quantize_into_avx2(xs, out) };
        }
        self.quantize_all(xs, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_into_avx2(&self, xs: &[f32], out: &mut [f32]) {
        self.quantize_all(xs, out);
    }

    #[inline(always)]
    fn quantize_all(&self, xs: &[f32], out: &mut [f32]) {
        out.iter_mut()
            .zip(xs)
            .for_each(|(o, &x)| *o = self.quantize(x));
    }

    #[inline(always)]
    fn quantize(&self, x: f32) -> f32 {
        let a = x.abs();
        let bits = a.to_bits();
        let half_ulp = (1u32 << (self.drop - 1)) - 1;
        let odd = (bits >> self.drop) & 1;
        let rounded = f32::from_bits(bits.wrapping_add(half_ulp + odd) & (u32::MAX << self.drop));
        let magnitude = if a >= self.max {
            self.max
        } else if a >= self.min {
            rounded
        } else {
            self.min
        };
        match (x.is_finite(), a >= self.half_min) {
            (false, _) => f32::NAN,
            (true, true) => magnitude.copysign(x),
            (true, false) => self.zero,
        }
    }
}

/// Buckets of [`NarrowIndex`]: `2^BUCKET_BITS` slices of the `f32` line, each an eighth of a
/// binade (sign, 8 exponent bits, 3 mantissa bits).
const BUCKET_BITS: u32 = 12;

/// Tables whose buckets hold at most this many boundaries each count them rather than search.
const SHORT_BUCKET: usize = 8;

/// [`QuantTable`] for `f32` inputs: values and boundaries rounded to `f32`, and per bucket the
/// boundaries inside it.
#[derive(Debug, Clone)]
pub(super) struct NarrowIndex {
    /// `values[i] as f32`.
    values: Vec<f32>,
    /// The smallest `f32` at or above `bounds[i]` (`+inf` above the `f32` range): for every `f32`
    /// `x`, `bounds[i] <= x` exactly when `bounds[i] <= x` here.
    bounds: Vec<f32>,
    /// Per bucket, the boundaries at or below its smallest `f32` and at or below its largest: a
    /// value in the bucket lies past the first count and before the second.
    buckets: Vec<(u32, u32)>,
    /// The most boundaries any bucket holds. `bounds` is followed by as many `+inf`: every
    /// boundary from a bucket's second count on lies above all of its values, so counting the
    /// `span` boundaries from its first count gives the same partition point.
    span: usize,
}

/// A key that orders the `f32` bit patterns as the numbers they encode (`-0.0` just below `+0.0`,
/// negative NaNs below `-inf`, positive NaNs above `+inf`).
#[inline(always)]
fn order_key(x: f32) -> u32 {
    // Negative patterns are inverted, positive ones get the top bit: one mask, no branch (a sign
    // test mispredicts on every other value of a tensor with both signs).
    let bits = x.to_bits();
    bits ^ (((bits as i32) >> 31) as u32 | 1 << 31)
}

/// The `f32` whose [`order_key`] is `key`.
fn from_order_key(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    })
}

/// The smallest `f32` at or above `b` (`+inf` when none is finite).
fn f32_at_or_above(b: f64) -> f32 {
    let f = b as f32;
    if f64::from(f) < b { f.next_up() } else { f }
}

impl NarrowIndex {
    fn new(values: &[f64], bounds: &[f64]) -> NarrowIndex {
        let bounds: Vec<f32> = bounds.iter().map(|&b| f32_at_or_above(b)).collect();
        // The NaN patterns order beyond the infinity of their sign, and stand for it (a bucket of
        // NaNs then holds no boundary, which keeps `span` short; NaN inputs never reach a bucket).
        let at_or_below = |x: f32| {
            let x = match (x.is_nan(), x.is_sign_negative()) {
                (true, true) => f32::NEG_INFINITY,
                (true, false) => f32::INFINITY,
                (false, _) => x,
            };
            bounds.partition_point(|&b| b <= x) as u32
        };
        let buckets: Vec<(u32, u32)> = (0..1u32 << BUCKET_BITS)
            .map(|b| {
                let first = b << (32 - BUCKET_BITS);
                let last = first | (u32::MAX >> BUCKET_BITS);
                (
                    at_or_below(from_order_key(first)),
                    at_or_below(from_order_key(last)),
                )
            })
            .collect();
        let span = buckets
            .iter()
            .map(|&(lo, hi)| (hi - lo) as usize)
            .max()
            .unwrap_or(0);
        let mut bounds = bounds;
        bounds.extend(std::iter::repeat_n(f32::INFINITY, span));
        NarrowIndex {
            values: values.iter().map(|&v| v as f32).collect(),
            bounds,
            buckets,
            span,
        }
    }

    #[inline(always)]
    pub(super) fn quantize(&self, x: f32) -> f32 {
        if !x.is_finite() {
            return f32::NAN;
        }
        let (lo, hi) = self.buckets[(order_key(x) >> (32 - BUCKET_BITS)) as usize];
        let lo = lo as usize;
        // An 8-bit format's buckets hold a few boundaries: counting a fixed `span` of them has no
        // data-dependent branch, where a binary search (or a count of each bucket's own length)
        // mispredicts on every other value; wide formats keep the search.
        let below = match self.span <= SHORT_BUCKET {
            true => self.bounds[lo..lo + self.span]
                .iter()
                .map(|&b| usize::from(b <= x))
                .sum(),
            false => self.bounds[lo..hi as usize].partition_point(|&b| b <= x),
        };
        self.values[lo + below]
    }
}

impl QuantTable {
    /// Decodes every code of `format` under `param` and places the boundaries.
    pub fn new(format: &Format, param: TensorParam) -> Result<QuantTable> {
        let bits = format.bits();
        if bits > MAX_TABLE_BITS {
            return Err(arg_err!(
                "a quantization table holds formats of at most {MAX_TABLE_BITS} bits, not {bits}"
            ));
        }
        let mut values = Vec::with_capacity(1 << bits);
        for code in 0..(1u32 << bits) {
            if let Some(v) = format.decode(param, code)?.filter(|v| v.is_finite()) {
                values.push(v);
            }
        }
        values.sort_by(f64::total_cmp);
        values.dedup_by(|a, b| a == b);
        if values.is_empty() {
            return Err(arg_err!("{} has no finite value", format.label()));
        }
        let bounds = values
            .windows(2)
            .map(|w| boundary(format, param, w[0], w[1]))
            .collect::<Result<Vec<_>>>()?;
        let narrow = NarrowIndex::new(&values, &bounds);
        let zero = values
            .iter()
            .find(|&&v| v == 0.0)
            .map_or(0.0, |&v| v as f32);
        Ok(QuantTable {
            binade: BinadeRounding::of(format, param, zero),
            values,
            bounds,
            narrow,
        })
    }

    /// The quantized value of a finite `x` (`None` for NaN and infinities, which the codec
    /// rejects).
    #[inline]
    pub fn quantize(&self, x: f64) -> Option<f64> {
        x.is_finite()
            .then(|| self.values[self.bounds.partition_point(|&b| b <= x)])
    }

    /// [`quantize`](Self::quantize) of an `f32`, narrowed back to `f32` (NaN for NaN and the
    /// infinities): the same value, found through the bucket index. Always inlined: a caller's
    /// loop over a tensor otherwise pays a call per value, as much as the lookup itself.
    #[inline(always)]
    pub fn quantize_f32(&self, x: f32) -> f32 {
        match &self.binade {
            Some(rule) => rule.quantize(x),
            None => self.narrow.quantize(x),
        }
    }

    /// [`quantize_f32`](Self::quantize_f32) of every value of `xs` into `out` (as long), with the
    /// choice between arithmetic and lookup made once, so that the arithmetic loop vectorises.
    pub fn quantize_f32_into(&self, xs: &[f32], out: &mut [f32]) {
        assert_eq!(xs.len(), out.len(), "quantize_f32_into: lengths differ");
        match &self.binade {
            Some(rule) => rule.quantize_into(xs, out),
            None => out
                .iter_mut()
                .zip(xs)
                .for_each(|(o, &x)| *o = self.narrow.quantize(x)),
        }
    }
}

/// The codec's value for `x` (finite by construction here).
fn codec(format: &Format, param: TensorParam, x: f64) -> Result<f64> {
    format.quantize(param, x)
}

/// The smallest `f64` in `(lo, hi]` that the codec sends to `hi` (it sends `lo` to `lo` and `hi`
/// to `hi`, and is monotone in between).
fn boundary(format: &Format, param: TensorParam, lo: f64, hi: f64) -> Result<f64> {
    let m = lo + (hi - lo) / 2.0;
    let (below, above) = (m.next_down(), m.next_up());
    let at_m = codec(format, param, m)?;
    if codec(format, param, below)? == lo && codec(format, param, above)? == hi {
        return Ok(if at_m == hi { m } else { above });
    }
    // Bisection over the f64 values in (lo, hi]: `a` goes to lo, `b` to hi.
    let (mut a, mut b) = (lo, hi);
    while a.next_up() < b {
        let mid = a + (b - a) / 2.0;
        let mid = if mid <= a {
            a.next_up()
        } else if mid >= b {
            b.next_down()
        } else {
            mid
        };
        if codec(format, param, mid)? == hi {
            b = mid;
        } else {
            a = mid;
        }
    }
    Ok(b)
}
