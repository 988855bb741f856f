//! Pocket activations: integer forward values and integer "inverse slopes".
//!
//! Each activation maps a pre-activation `z` to an output `f` and a divisor `g >= 1`; the backward pass
//! divides the incoming error by `g` (rounding toward zero) instead of multiplying by a derivative, so no
//! fraction is ever formed. A saturated region has a large `g` (127, or `i32::MAX` for a true zero slope).
//! Every formula, joint and divisor is the reference C++'s (`pktnn_actv.cpp`), dossier §3.2.
#![deny(clippy::float_arithmetic)]

use crate::kernels::TruncDiv;

/// Largest activation magnitude: the symmetric signed 8-bit range `[-127, 127]`.
pub const PKT_MAX: i32 = 127;
/// `2^k` with `k = 8`: the pre-scaling that brings a 16-bit-by-8-bit product back to 8 bits.
pub const K_SCALE: i32 = 1 << 8;
/// Inverse slope of a clamped ReLU region: a divisor that sends every error to 0.
pub const FLAT: i32 = i32::MAX;
/// Clamp of the leaky ReLU: the int16 range the weights live in.
const LEAKY_MAX: i32 = 32_767;
const LEAKY_MIN: i32 = -LEAKY_MAX;
/// The leaky ReLU's negative slope is 1/5.
const LEAKY_SLOPE_INV: i32 = 5;

/// The activations of the reference implementation that are complete (its softmax and PLU are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum PocketActivation {
    /// `≈ 127 tanh(x / 64)` on `x = z / (256 · fan_in)`; used on every layer in the paper's runs.
    PocketTanh,
    /// `≈ 127 σ(x / 32)` on `x = z / 256`, output in `[1, 127]` (0 excluded).
    PocketSigmoid,
    /// `clamp(z, 0, 127)`, slope 1 inside, zero slope outside.
    PocketRelu8bit,
    /// `z / 5` below 0, `z` above, clamped to `±32767` with zero slope outside.
    PocketLeakyRelu,
}

impl PocketActivation {
    /// `(f(z), g(z))` for a layer with `fan_in` inputs (only pocket tanh uses `fan_in`).
    ///
    /// `fan_in` must satisfy `1 <= fan_in <= i32::MAX / 256` (checked when a layer is built).
    #[inline]
    pub fn apply(self, z: i32, fan_in: i32) -> (i32, i32) {
        match self {
            PocketActivation::PocketTanh => pocket_tanh(z / (K_SCALE * fan_in)),
            PocketActivation::PocketSigmoid => pocket_sigmoid(z / K_SCALE),
            PocketActivation::PocketRelu8bit => match z {
                ..0 => (0, FLAT),
                0..=PKT_MAX => (z, 1),
                _ => (PKT_MAX, FLAT),
            },
            PocketActivation::PocketLeakyRelu => match z {
                ..LEAKY_MIN => (LEAKY_MIN, FLAT),
                LEAKY_MIN..0 => (z / LEAKY_SLOPE_INV, LEAKY_SLOPE_INV),
                0..LEAKY_MAX => (z, 1),
                _ => (LEAKY_MAX, FLAT),
            },
        }
    }

    /// Applies the activation element-wise in place: `zf[i], ginv[i] = apply(zf[i], fan_in)`.
    ///
    /// Pocket tanh's division by `256 · fan_in` is done by multiply and shift ([`TruncDiv`], the same
    /// truncated quotient): a hardware division per element would cost more than the layer's products.
    pub fn apply_in_place(self, zf: &mut [i32], fan_in: i32, ginv: &mut [i32]) {
        if self == PocketActivation::PocketTanh {
            let scale = TruncDiv::new(K_SCALE * fan_in);
            for (v, g) in zf.iter_mut().zip(ginv.iter_mut()) {
                (*v, *g) = pocket_tanh(scale.quotient(*v));
            }
            return;
        }
        for (v, g) in zf.iter_mut().zip(ginv.iter_mut()) {
            (*v, *g) = self.apply(*v, fan_in);
        }
    }

    /// Largest `|f|` the activation can output: bounds the next layer's products.
    pub fn max_abs_output(self) -> i32 {
        match self {
            PocketActivation::PocketLeakyRelu => LEAKY_MAX,
            _ => PKT_MAX,
        }
    }
}

/// Pocket tanh on the pre-scaled `x`: joints at -127, -74, -31, 32, 75, 128 and inverse slopes
/// 127, 8, 2, 1, 2, 8, 127 (twice the true 4, 1, ½, 1, 4, as the reference chose).
#[inline]
fn pocket_tanh(x: i32) -> (i32, i32) {
    match x {
        ..-127 => (-PKT_MAX, PKT_MAX),
        -127..-74 => (x / 4 - 88, 8),
        -74..-31 => (x - 32, 2),
        -31..32 => (2 * x, 1),
        32..75 => (x + 32, 2),
        75..128 => (x / 4 + 88, 8),
        _ => (PKT_MAX, PKT_MAX),
    }
}

/// Pocket sigmoid on the pre-scaled `x`: same joints, exact inverse slopes 127, 8, 2, 1, 2, 8, 127.
#[inline]
fn pocket_sigmoid(x: i32) -> (i32, i32) {
    match x {
        ..-127 => (1, PKT_MAX),
        -127..-74 => (x / 8 + 20, 8),
        -74..-31 => (x / 2 + 48, 2),
        -31..32 => (x + 64, 1),
        32..75 => (x / 2 + 80, 2),
        75..128 => (x / 8 + 108, 8),
        _ => (PKT_MAX, PKT_MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tanh(x: i32) -> (i32, i32) {
        // fan_in 1: z = 256 x maps to x exactly.
        PocketActivation::PocketTanh.apply(x * K_SCALE, 1)
    }

    #[test]
    fn tanh_table_edges() {
        assert_eq!(tanh(-128), (-127, 127));
        assert_eq!(tanh(-127), (-127 / 4 - 88, 8)); // -31 - 88 = -119: the jump to -127 at the end
        assert_eq!(tanh(-75), (-18 - 88, 8));
        assert_eq!(tanh(-74), (-106, 2));
        assert_eq!(tanh(-32), (-64, 2));
        assert_eq!(tanh(-31), (-62, 1));
        assert_eq!(tanh(0), (0, 1));
        assert_eq!(tanh(31), (62, 1));
        assert_eq!(tanh(32), (64, 2));
        assert_eq!(tanh(74), (106, 2));
        assert_eq!(tanh(75), (106, 8));
        assert_eq!(tanh(127), (119, 8));
        assert_eq!(tanh(128), (127, 127));
    }

    #[test]
    fn tanh_prescale_truncates_toward_zero_with_fan_in() {
        // z / (256 * 784): -200703 / 200704 = 0 (toward zero), not -1.
        assert_eq!(PocketActivation::PocketTanh.apply(-200_703, 784), (0, 1));
        assert_eq!(PocketActivation::PocketTanh.apply(-200_704, 784), (-2, 1));
        assert_eq!(
            PocketActivation::PocketTanh.apply(i32::MIN, 100),
            (-127, 127)
        );
    }

    #[test]
    fn tanh_is_odd_and_monotone() {
        let mut prev = i32::MIN;
        for x in -200..=200 {
            let (f, g) = tanh(x);
            assert_eq!(tanh(-x).0, -f, "odd at {x}");
            assert!(f >= prev, "monotone at {x}");
            assert!(g >= 1);
            prev = f;
        }
    }

    #[test]
    fn sigmoid_table_edges() {
        let s = |x: i32| PocketActivation::PocketSigmoid.apply(x * K_SCALE, 999);
        assert_eq!(s(-128), (1, 127));
        assert_eq!(s(-127), (-15 + 20, 8));
        assert_eq!(s(-74), (-37 + 48, 2));
        assert_eq!(s(-31), (33, 1));
        assert_eq!(s(0), (64, 1));
        assert_eq!(s(31), (95, 1));
        assert_eq!(s(32), (96, 2));
        assert_eq!(s(75), (117, 8));
        assert_eq!(s(127), (123, 8));
        assert_eq!(s(128), (127, 127));
        for x in -300..300 {
            assert!((1..=127).contains(&s(x).0), "range at {x}");
        }
    }

    #[test]
    fn relu8_and_leaky_relu() {
        let r = |z| PocketActivation::PocketRelu8bit.apply(z, 1);
        assert_eq!(r(-1), (0, FLAT));
        assert_eq!(r(0), (0, 1));
        assert_eq!(r(127), (127, 1));
        assert_eq!(r(128), (127, FLAT));
        let l = |z| PocketActivation::PocketLeakyRelu.apply(z, 1);
        assert_eq!(l(-32_768), (-32_767, FLAT));
        assert_eq!(l(-32_767), (-6553, 5));
        assert_eq!(l(-4), (0, 5));
        assert_eq!(l(0), (0, 1));
        assert_eq!(l(32_766), (32_766, 1));
        assert_eq!(l(32_767), (32_767, FLAT));
    }

    proptest::proptest! {
        #[test]
        fn slice_form_matches_scalar_form(
            z in proptest::collection::vec(proptest::prop_oneof![proptest::num::i32::ANY, -100_000i32..100_000], 1..40),
            fan_in in 1i32..5000,
        ) {
            for act in [
                PocketActivation::PocketTanh,
                PocketActivation::PocketSigmoid,
                PocketActivation::PocketRelu8bit,
                PocketActivation::PocketLeakyRelu,
            ] {
                let (mut out, mut g) = (z.clone(), vec![0; z.len()]);
                act.apply_in_place(&mut out, fan_in, &mut g);
                for (i, &zi) in z.iter().enumerate() {
                    proptest::prop_assert_eq!((out[i], g[i]), act.apply(zi, fan_in));
                }
            }
        }
    }
}
