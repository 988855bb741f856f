//! The single float-to-integer rounding rule of the workspace.
//!
//! The dossier (§2.2 step 6) warns that TF's FakeQuant rounds half **up** (`floor(v + 0.5)`) while
//! the TFLite converter rounds half **away from zero** (`std::round`); the two disagree on exact
//! negative ties such as `r/S = -2.5`. A model whose QAT simulation and integer converter use
//! different rules is off by one code on those ties. This workspace uses **round half away from
//! zero** everywhere: choosing zero points, quantizing weights and biases, computing clamp bounds,
//! fake quantization in `quant-train`.
//!
//! Burn's tensor `round()` rounds half to **even**, so the Burn side must not call it; it
//! reproduces this rule as `sign(x) * floor(|x| + 0.5)`, which is what
//! [`round_half_away_from_zero`] computes (bit for bit, for every finite input whose `|x| + 0.5`
//! is exact, that is `|x| < 2^52`; beyond that every float is already an integer).

/// Rounds to the nearest integer, ties away from zero: `2.5 -> 3`, `-2.5 -> -3`, `0.49 -> 0`.
///
/// Equal to `f64::round` and to C's `std::round`. NaN stays NaN; callers that turn the result
/// into an integer check for NaN first.
#[inline]
pub fn round_half_away_from_zero(x: f64) -> f64 {
    x.round()
}

/// `f32` version of [`round_half_away_from_zero`] for float tensors (same rule, same ties).
#[inline]
pub fn round_half_away_from_zero_f32(x: f32) -> f32 {
    x.round()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_away_from_zero() {
        assert_eq!(round_half_away_from_zero(2.5), 3.0);
        assert_eq!(round_half_away_from_zero(-2.5), -3.0);
        assert_eq!(round_half_away_from_zero(0.5), 1.0);
        assert_eq!(round_half_away_from_zero(-0.5), -1.0);
        assert_eq!(round_half_away_from_zero(127.5), 128.0);
        assert_eq!(round_half_away_from_zero(1.4999999), 1.0);
        assert_eq!(round_half_away_from_zero_f32(-2.5), -3.0);
        assert_eq!(round_half_away_from_zero_f32(6.5), 7.0);
    }

    #[test]
    fn matches_the_burn_formula() {
        // sign(x) * floor(|x| + 0.5), the formula quant-train uses on tensors.
        for i in -4000..4000 {
            let x = f64::from(i) * 0.125;
            let burn = x.signum() * (x.abs() + 0.5).floor();
            assert_eq!(round_half_away_from_zero(x), burn, "x = {x}");
        }
    }
}
