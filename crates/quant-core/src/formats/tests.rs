//! Exhaustive code tests for every width up to 8 bits, quantizer properties, and the dossier's
//! worked examples as golden values.

use super::*;

/// Every format at `bits` with every exponent width it accepts (paper default options).
fn all_configs(bits: u32) -> Vec<Format> {
    let mut out = Vec::new();
    for kind in FormatKind::ALL {
        match kind {
            FormatKind::Bfp | FormatKind::Uniform => {
                out.extend(Format::new(kind, bits, None).ok());
            }
            _ => {
                for e in 0..bits {
                    out.extend(Format::new(kind, bits, Some(e)).ok());
                }
            }
        }
    }
    out
}

/// Parameters to try for a format: several binade positions and ranges, plus the fixed one.
fn params(format: &Format) -> Vec<TensorParam> {
    match format.kind() {
        FormatKind::AdaptivFloat => [-12, -3, 0, 5].map(TensorParam::ExpBias).to_vec(),
        FormatKind::Bfp => [-7, 0, 4].map(TensorParam::SharedExponent).to_vec(),
        FormatKind::Uniform => [0.0371, 1.0, 2.89, 1000.5].map(TensorParam::Range).to_vec(),
        FormatKind::Float | FormatKind::Posit => vec![TensorParam::Fixed],
    }
}

/// Sorted distinct values of all valid codes (zero once).
fn grid(format: &Format, param: TensorParam) -> Vec<f64> {
    let mut values: Vec<f64> = (0..1u32 << format.bits())
        .filter_map(|c| format.decode(param, c).unwrap())
        .map(|v| if v == 0.0 { 0.0 } else { v })
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    values
}

/// Deterministic test data (splitmix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Heavy-tailed signed values spanning many binades around `scale`.
    fn wide(&mut self, scale: f64) -> f64 {
        let sign = if self.next_f64() < 0.5 { -1.0 } else { 1.0 };
        sign * scale * 2f64.powf(12.0 * self.next_f64() - 10.0)
    }
}

/// Probe points around a grid: every point, every midpoint and its neighbours, beyond both ends.
fn probes(grid: &[f64]) -> Vec<f64> {
    let mut xs = vec![0.0, f64::MIN_POSITIVE, 1e-300];
    for w in grid.windows(2) {
        let mid = (w[0] + w[1]) / 2.0;
        // One or two ulps either side of the midpoint.
        let nudge = f64::EPSILON * mid.abs().max(f64::MIN_POSITIVE);
        xs.extend([w[0], mid, mid - nudge, mid + nudge]);
    }
    let top = grid[grid.len() - 1];
    xs.extend([top, top * 1.0001, top * 3.0, 1e300]);
    xs.iter().flat_map(|&x| [x, -x]).collect()
}

#[test]
fn decode_then_encode_is_the_identity_on_every_code() {
    for bits in 2..=8 {
        for format in all_configs(bits) {
            for param in params(&format) {
                for code in 0..1u32 << bits {
                    if let Some(v) = format.decode(param, code).unwrap() {
                        assert_eq!(
                            format.encode(param, v).unwrap(),
                            code,
                            "{format} {param}: code {code:#x} decodes to {v}"
                        );
                    }
                }
                assert_eq!(format.decode(param, 1 << bits).unwrap(), None);
            }
        }
    }
}

#[test]
fn number_of_distinct_values_per_format() {
    for bits in 3..=8u32 {
        for format in all_configs(bits) {
            let n_values = grid(&format, params(&format)[0]).len();
            let expected = match &format {
                // 0 plus 2^(n-1) - 1 magnitudes of each sign (dossier §2.2).
                Format::AdaptivFloat(_) | Format::Bfp(_) | Format::Uniform(_) => (1 << bits) - 1,
                // All codes but NaR.
                Format::Posit(_) => (1 << bits) - 1,
                // Reserved top exponent, no denormals: 2^e - 2 binades of 2^m values, each sign, plus 0.
                Format::Float(f) => {
                    2 * ((1 << f.exp_bits()) - 2) * (1 << (bits - 1 - f.exp_bits())) + 1
                }
            };
            assert_eq!(n_values, expected, "{format}");
        }
    }
}

#[test]
fn quantize_is_monotone_sign_symmetric_and_lands_on_the_grid() {
    for bits in 2..=8 {
        for format in all_configs(bits) {
            for param in params(&format) {
                let g = grid(&format, param);
                let mut xs: Vec<f64> = probes(&g).into_iter().filter(|x| *x >= 0.0).collect();
                xs.sort_by(f64::total_cmp);
                let mut previous = f64::NEG_INFINITY;
                for &x in &xs {
                    let q = format.quantize(param, x).unwrap();
                    assert!(q >= previous, "{format} {param}: Q({x}) = {q} < {previous}");
                    previous = q;
                    let neg = format.quantize(param, -x).unwrap();
                    assert_eq!(neg, -q, "{format} {param}: Q(-{x}) = {neg}, Q({x}) = {q}");
                    assert!(g.binary_search_by(|v| v.total_cmp(&q.abs())).is_ok());
                }
            }
        }
    }
}

/// Where a format rounds to the nearest grid value (everywhere except the IEEE-like flush region
/// and posit's optional saturation), the result is a nearest grid point.
#[test]
fn quantize_picks_a_nearest_grid_value() {
    for bits in 2..=8 {
        for format in all_configs(bits) {
            for param in params(&format) {
                let g = grid(&format, param);
                let lowest = match &format {
                    Format::Float(f) => f.min_normal(),
                    _ => 0.0,
                };
                for x in probes(&g).into_iter().filter(|x| x.abs() >= lowest) {
                    let q = format.quantize(param, x).unwrap();
                    let best = g
                        .iter()
                        .flat_map(|&v| [v, -v])
                        .map(|v| (x - v).abs())
                        .fold(f64::INFINITY, f64::min);
                    // Uniform's grid points `r * (q / k)` are rounded, so a probe at a computed
                    // midpoint may sit an ulp closer to the other side; every other grid is exact.
                    let slack = match param {
                        TensorParam::Range(r) => 1e-12 * r,
                        _ => 0.0,
                    };
                    assert!(
                        (x - q).abs() - best <= slack,
                        "{format} {param}: Q({x}) = {q}"
                    );
                }
            }
        }
    }
}

#[test]
fn quantize_tensor_is_idempotent() {
    let mut rng = Rng(7);
    for bits in (2..=8).chain([12, 16]) {
        for format in all_configs(bits) {
            for scale in [1e-3, 0.05, 1.0, 37.0] {
                let xs: Vec<f64> = (0..300).map(|_| rng.wide(scale)).collect();
                let once = format.quantize_tensor(&xs).unwrap();
                let twice = format.quantize_tensor(&once.values).unwrap();
                assert_eq!(once.param, twice.param, "{format} scale {scale}");
                assert_eq!(once.values, twice.values, "{format} scale {scale}");
            }
        }
    }
}

#[test]
fn adaptivfloat_is_equivariant_under_powers_of_two() {
    let mut rng = Rng(11);
    let xs: Vec<f64> = (0..500).map(|_| rng.wide(0.3)).collect();
    for bits in [4, 6, 8] {
        let f = Format::paper(FormatKind::AdaptivFloat, bits).unwrap();
        let base = f.quantize_tensor(&xs).unwrap();
        for k in [-20, -3, 1, 9] {
            let scaled: Vec<f64> = xs.iter().map(|x| x * pow2(k)).collect();
            let q = f.quantize_tensor(&scaled).unwrap();
            let expected: Vec<f64> = base.values.iter().map(|v| v * pow2(k)).collect();
            assert_eq!(q.values, expected, "{f} k = {k}");
            let (TensorParam::ExpBias(b0), TensorParam::ExpBias(b1)) = (base.param, q.param) else {
                panic!("AdaptivFloat must report an exp_bias");
            };
            assert_eq!(b1, b0 + k);
        }
    }
}

/// Tensors whose largest magnitude sits anywhere in f64's range, down to the smallest subnormal:
/// quantizing never panics, zero stays zero, every output is finite and no larger than the input's
/// largest magnitude allows, and AdaptivFloat/BFP keep the tensor's largest element non-zero when it
/// is a normal number (their grid follows it down).
#[test]
fn tensors_near_the_ends_of_f64_quantize_without_panicking() {
    let tiny = f64::from_bits(1); // 2^-1074
    let cases: [&[f64]; 6] = [
        &[tiny],
        &[tiny, 0.0, -tiny],
        &[1e-310, 3e-312, 0.0],
        &[f64::MIN_POSITIVE, 1e-320],
        &[1e-300, 1e-305],
        &[f64::MAX, 1.0, 1e-300],
    ];
    for bits in [2, 4, 8, 16] {
        for format in all_configs(bits) {
            for xs in cases {
                let q = format
                    .quantize_tensor(xs)
                    .unwrap_or_else(|e| panic!("{format} {xs:?}: {e}"));
                for (x, v) in xs.iter().zip(&q.values) {
                    assert!(v.is_finite(), "{format} {x:e} -> {v}");
                    if *x == 0.0 {
                        assert_eq!(*v, 0.0, "{format}");
                    }
                }
                let max = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let adaptive = matches!(format.kind(), FormatKind::AdaptivFloat | FormatKind::Bfp);
                if adaptive && (f64::MIN_POSITIVE..1e300).contains(&max) {
                    let top = q.values[xs.iter().position(|x| x.abs() == max).unwrap()];
                    assert!(top != 0.0, "{format} {xs:?} -> {:?}", q.values);
                }
            }
        }
    }
}

#[test]
fn non_finite_input_is_rejected() {
    for format in all_configs(8) {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = format.quantize_tensor(&[0.5, bad, 1.0]).unwrap_err();
            assert!(e.to_string().contains("element 1"), "{e}");
            let param = format.fit(&[1.0]).unwrap();
            assert!(format.encode(param, bad).is_err());
        }
    }
}

#[test]
fn wrong_parameter_and_bad_widths_are_errors() {
    let af = Format::paper(FormatKind::AdaptivFloat, 8).unwrap();
    assert!(af.encode(TensorParam::Fixed, 1.0).is_err());
    assert!(Format::new(FormatKind::AdaptivFloat, 4, Some(4)).is_err());
    assert!(Format::new(FormatKind::AdaptivFloat, 17, Some(3)).is_err());
    assert!(Format::new(FormatKind::Float, 8, Some(1)).is_err());
    assert!(Format::new(FormatKind::Posit, 8, None).is_err());
    assert!(Format::new(FormatKind::Uniform, 1, None).is_err());
    assert!("posits".parse::<FormatKind>().is_err());
    assert_eq!(
        "AdaptivFloat".parse::<FormatKind>().unwrap(),
        FormatKind::AdaptivFloat
    );
}

// ----- golden values from the dossier -----

const FIG3: [f64; 16] = [
    -1.17, 2.71, -1.60, 0.43, -1.14, 2.05, 1.01, 0.07, 0.16, -0.03, -0.89, -0.87, -0.04, -0.39,
    0.64, -2.89,
];

#[test]
fn fig3_adaptivfloat_4_2() {
    let f = Format::new(FormatKind::AdaptivFloat, 4, Some(2)).unwrap();
    let q = f.quantize_tensor(&FIG3).unwrap();
    assert_eq!(q.param, TensorParam::ExpBias(-2));
    let expected = [
        -1.0, 3.0, -1.5, 0.375, -1.0, 2.0, 1.0, 0.0, 0.0, -0.0, -1.0, -0.75, -0.0, -0.375, 0.75,
        -3.0,
    ];
    assert_eq!(q.values, expected);
    let Format::AdaptivFloat(a) = &f else {
        unreachable!()
    };
    assert_eq!(a.value_min(-2), 0.375);
    assert_eq!(a.value_max(-2), 3.0);
    assert_eq!(
        grid(&f, q.param)
            .into_iter()
            .filter(|v| *v >= 0.0)
            .collect::<Vec<_>>(),
        [0.0, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    );
}

#[test]
fn adaptivfloat_8_3_worked_vector_with_codes() {
    let f = Format::paper(FormatKind::AdaptivFloat, 8).unwrap();
    let xs = [0.9, -0.3, 0.051, 0.0061, -0.0012, 0.2, 0.003];
    let q = f.quantize_tensor(&xs).unwrap();
    assert_eq!(q.param, TensorParam::ExpBias(-8));
    assert_eq!(
        q.values,
        [
            0.90625,
            -0.296875,
            0.05078125,
            0.006103515625,
            -0.0,
            0.203125,
            0.0041503906250
        ]
    );
    let codes = f.encode_tensor(&xs).unwrap().values;
    assert_eq!(codes, [0x7D, 0xE3, 0x3A, 0x09, 0x80, 0x5A, 0x01]);
}

#[test]
fn adaptivfloat_range_table_relative_to_exp_max() {
    // n, smallest non-zero, largest, non-zero magnitudes (dossier §2.6), with exp_max = 0.
    let table = [
        (4, 0.015625, 1.0, 7),
        (5, 0.01171875, 1.5, 15),
        (6, 0.009765625, 1.75, 31),
        (7, 0.0087890625, 1.875, 63),
        (8, 0.00830078125, 1.9375, 127),
    ];
    for (bits, min, max, count) in table {
        let f = Format::paper(FormatKind::AdaptivFloat, bits).unwrap();
        let param = f.fit(&[1.0]).unwrap();
        let positive: Vec<f64> = grid(&f, param).into_iter().filter(|v| *v > 0.0).collect();
        assert_eq!(positive[0], min, "n = {bits}");
        assert_eq!(positive[positive.len() - 1], max, "n = {bits}");
        assert_eq!(positive.len(), count, "n = {bits}");
    }
}

#[test]
fn adaptivfloat_boundaries() {
    let f = Format::paper(FormatKind::AdaptivFloat, 8).unwrap();
    let Format::AdaptivFloat(a) = &f else {
        unreachable!()
    };
    let b = -8;
    let p = TensorParam::ExpBias(b);
    let (vmin, vmax) = (a.value_min(b), a.value_max(b));
    assert_eq!(f.quantize(p, vmax).unwrap(), vmax);
    assert_eq!(f.quantize(p, vmax * 1.5).unwrap(), vmax);
    assert_eq!(
        f.quantize(p, vmin / 2.0).unwrap(),
        vmin,
        "tie goes up by default"
    );
    assert_eq!(f.quantize(p, (vmin / 2.0).next_down()).unwrap(), 0.0);
    let mut to_zero = a.clone();
    to_zero.zero_tie = ZeroTie::ToZero;
    assert_eq!(
        Format::AdaptivFloat(to_zero)
            .quantize(p, vmin / 2.0)
            .unwrap(),
        0.0
    );
    // A power of two as the maximum sits at the bottom of the top binade.
    let q = f.quantize_tensor(&[0.5, 0.01]).unwrap();
    assert_eq!(q.param, TensorParam::ExpBias(-8));
    assert_eq!(q.values[0], 0.5);
    // All-zero tensor and a single element.
    let zeros = f.quantize_tensor(&[0.0, -0.0, 0.0]).unwrap();
    assert_eq!(zeros.param, TensorParam::ExpBias(-7));
    assert!(zeros.values.iter().all(|v| *v == 0.0));
    assert_eq!(f.quantize_tensor(&[-3.3]).unwrap().values, [-3.25]);
    // Ties go to the even mantissa by default, away from zero on request.
    // 1 + 1/32 is halfway between mantissas 16/16 and 17/16 at m = 4.
    let p0 = TensorParam::ExpBias(-7);
    assert_eq!(f.quantize(p0, 1.03125).unwrap(), 1.0);
    let mut away = a.clone();
    away.rounding = Rounding::NearestAway;
    assert_eq!(
        Format::AdaptivFloat(away).quantize(p0, 1.03125).unwrap(),
        1.0625
    );
}

#[test]
fn float_8_4_and_4_3_tables() {
    let f = Format::paper(FormatKind::Float, 8).unwrap();
    let p = TensorParam::Fixed;
    assert_eq!(f.quantize(p, 0.3).unwrap(), 0.3125);
    assert_eq!(f.quantize(p, 0.02).unwrap(), 0.01953125);
    assert_eq!(f.quantize(p, 0.01).unwrap(), 0.0);
    assert_eq!(f.quantize(p, 300.0).unwrap(), 240.0);
    let Format::Float(mut with_denormals) = f.clone() else {
        unreachable!()
    };
    assert_eq!(with_denormals.min_normal(), 0.015625);
    with_denormals.denormals = true;
    assert_eq!(
        Format::Float(with_denormals).quantize(p, 0.01).unwrap(),
        0.009765625
    );

    let f4 = Format::paper(FormatKind::Float, 4).unwrap();
    assert_eq!(f4.label(), "Float<4,3>");
    let positive: Vec<f64> = grid(&f4, p).into_iter().filter(|v| *v >= 0.0).collect();
    assert_eq!(positive, [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]);
    assert_eq!(
        f4.quantize(p, 0.03).unwrap(),
        0.0,
        "weights of order 1e-2 vanish"
    );
}

#[test]
fn bfp_and_uniform_on_fig3() {
    let bfp = Format::paper(FormatKind::Bfp, 4).unwrap();
    let q = bfp.quantize_tensor(&FIG3).unwrap();
    assert_eq!(q.param, TensorParam::SharedExponent(1));
    let at = |x: f64| q.values[FIG3.iter().position(|v| *v == x).unwrap()];
    assert_eq!(
        [at(2.71), at(-2.89), at(0.43), at(0.16), at(-0.87)],
        [2.5, -3.0, 0.5, 0.0, -1.0]
    );

    let uni = Format::paper(FormatKind::Uniform, 4).unwrap();
    let q = uni.quantize_tensor(&FIG3).unwrap();
    assert_eq!(q.param, TensorParam::Range(2.89));
    let at = |x: f64| q.values[FIG3.iter().position(|v| *v == x).unwrap()];
    assert_eq!(at(2.71), 2.89);
    assert!((at(0.43) - 0.412857).abs() < 1e-6);
    assert_eq!(at(0.16), 0.0);
    assert!((at(-1.17) + 1.238571).abs() < 1e-6);
}

#[test]
fn posit_tables_and_examples() {
    let p = TensorParam::Fixed;
    let p40 = Format::paper(FormatKind::Posit, 4).unwrap();
    assert_eq!(p40.label(), "Posit<4,0>");
    let positive: Vec<f64> = grid(&p40, p).into_iter().filter(|v| *v >= 0.0).collect();
    assert_eq!(positive, [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0]);

    let p81 = Format::paper(FormatKind::Posit, 8).unwrap();
    let Format::Posit(posit) = &p81 else {
        unreachable!()
    };
    assert_eq!((posit.maxpos(), posit.minpos()), (4096.0, pow2(-12)));
    assert_eq!(p81.encode(p, 0.3).unwrap(), 0x23);
    assert_eq!(p81.quantize(p, 0.3).unwrap(), 0.296875);
    assert_eq!(p81.quantize(p, 0.01).unwrap(), 0.01171875);
    assert_eq!(p81.quantize(p, 2.89).unwrap(), 2.875);
    assert_eq!(p81.quantize(p, 100.0).unwrap(), 96.0);
    assert_eq!(p81.quantize(p, 1e6).unwrap(), 4096.0);
    // Negative codes are two's complement: -1.0 is 0xC0 (1.0 is 0x40).
    assert_eq!(p81.encode(p, 1.0).unwrap(), 0x40);
    assert_eq!(p81.encode(p, -1.0).unwrap(), 0xC0);
    assert_eq!(p81.decode(p, 0x80).unwrap(), None, "NaR");

    for (bits, maxpos) in [(6, 256.0), (5, 64.0)] {
        let Format::Posit(posit) = Format::new(FormatKind::Posit, bits, Some(1)).unwrap() else {
            unreachable!()
        };
        assert_eq!((posit.maxpos(), posit.minpos()), (maxpos, 1.0 / maxpos));
    }

    // Underflow: dossier default rounds to zero below minpos / 2; the standard saturates.
    let tiny = posit.minpos() / 3.0;
    assert_eq!(p81.quantize(p, tiny).unwrap(), 0.0);
    let mut standard = posit.clone();
    standard.underflow = PositUnderflow::Saturate;
    assert_eq!(
        Format::Posit(standard).quantize(p, tiny).unwrap(),
        posit.minpos()
    );
}

#[test]
fn paper_exponent_widths() {
    assert_eq!(
        Format::paper(FormatKind::AdaptivFloat, 4).unwrap().label(),
        "AdaptivFloat<4,3>"
    );
    assert_eq!(
        Format::paper(FormatKind::AdaptivFloat, 16).unwrap().label(),
        "AdaptivFloat<16,3>"
    );
    assert_eq!(
        Format::paper(FormatKind::Float, 6).unwrap().label(),
        "Float<6,4>"
    );
    assert_eq!(
        Format::paper(FormatKind::Posit, 6).unwrap().label(),
        "Posit<6,1>"
    );
    assert_eq!(Format::paper(FormatKind::Bfp, 6).unwrap().label(), "BFP<6>");
    assert_eq!(
        Format::paper(FormatKind::Uniform, 5).unwrap().label(),
        "Uniform<5>"
    );
}

/// The table quantizer equals the codec on every value, on both sides of every boundary, halfway
/// between neighbours, far outside the range and on a spread of ordinary inputs, for every format
/// up to 8 bits with every exponent width and several tensor parameters.
#[test]
fn quant_table_equals_the_codec() {
    for bits in 2..=8 {
        for format in all_configs(bits) {
            for param in params(&format) {
                let table = QuantTable::new(&format, param).unwrap();
                let mut probes: Vec<f64> = vec![0.0, -0.0, 1e300, -1e300, 1e-300, -1e-300];
                for w in table.values.windows(2) {
                    let m = w[0] + (w[1] - w[0]) / 2.0;
                    probes.extend([w[0], w[1], m, m.next_down(), m.next_up()]);
                }
                for b in &table.bounds {
                    probes.extend([*b, b.next_down(), b.next_up()]);
                }
                probes.extend((0..2000).map(|i| (i as f64 - 1000.0) * 0.0137));
                // Every quarter binade from 2^-40 to 2^40, both signs (the table's buckets).
                for e in -160..160 {
                    let v = (f64::from(e) / 4.0).exp2() * 1.0001;
                    probes.extend([v, -v]);
                }
                for x in probes {
                    let want = format.quantize(param, x).unwrap();
                    assert_eq!(
                        table.quantize(x),
                        Some(want),
                        "{} {param} at {x:e}",
                        format.label()
                    );
                }
                assert_eq!(table.quantize(f64::NAN), None);
            }
        }
    }
}

/// The `f32` lookup returns the `f64` search's value, narrowed (the same bits, the sign of zero
/// included), for every `f32` on both sides of every boundary, at every value, at the ends of the
/// buckets, zeros, extremes and non-finite inputs, for every format up to 8 bits and the paper's
/// formats at 16 bits: through the bucket index, and through the binade arithmetic where a table
/// has it (every AdaptivFloat table here but those whose values leave the normal `f32` range).
#[test]
fn quant_table_f32_lookup_equals_the_f64_search() {
    let mut with_arithmetic = 0;
    let wide = FormatKind::ALL.map(|kind| Format::paper(kind, 16).unwrap());
    let configs = (2..=8).flat_map(all_configs).chain(wide);
    let specials = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
    ];
    for format in configs {
        for param in params(&format) {
            let table = QuantTable::new(&format, param).unwrap();
            let mut probes: Vec<f32> = specials.to_vec();
            for &v in table.values.iter().chain(&table.bounds) {
                let f = v as f32;
                probes.extend([f, f.next_down(), f.next_up()]);
            }
            // The first and last f32 of every eighth of a binade from 2^-30 to 2^30.
            for e in -240..240 {
                let f = (e as f32 / 8.0).exp2();
                let start = f32::from_bits(f.to_bits() & !0xF_FFFF);
                probes.extend([start, start.next_down(), -start, -start.next_down()]);
            }
            with_arithmetic += usize::from(table.binade.is_some());
            let mut got = vec![0.0; probes.len()];
            table.quantize_f32_into(&probes, &mut got);
            for (&x, &sliced) in probes.iter().zip(&got) {
                let want = table.quantize(f64::from(x)).map_or(f32::NAN, |v| v as f32);
                for (path, got) in [
                    ("lookup", table.quantize_f32(x)),
                    ("slice", sliced),
                    ("index", table.narrow.quantize(x)),
                ] {
                    assert!(
                        got.to_bits() == want.to_bits() || got.is_nan() && want.is_nan(),
                        "{} {param} at {x:e} ({path}): {got:e}, not {want:e}",
                        format.label()
                    );
                }
            }
            for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                assert!(table.quantize_f32(x).is_nan() && table.narrow.quantize(x).is_nan());
            }
        }
    }
    assert!(
        with_arithmetic >= 80,
        "{with_arithmetic} tables with the binade arithmetic"
    );
}
