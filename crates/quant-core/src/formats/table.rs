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

use super::{Format, TensorParam};
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
        Ok(QuantTable { values, bounds })
    }

    /// The quantized value of a finite `x` (`None` for NaN and infinities, which the codec
    /// rejects).
    #[inline]
    pub fn quantize(&self, x: f64) -> Option<f64> {
        x.is_finite()
            .then(|| self.values[self.bounds.partition_point(|&b| b <= x)])
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
