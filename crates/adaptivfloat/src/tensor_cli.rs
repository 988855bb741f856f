//! `adaptivfloat quantize`: quantize a user's tensor given as text.
//!
//! The tensor is every whitespace-separated number of the input, in order; the whole input is one
//! tensor, so the adaptive formats choose their parameter from all of it (as the paper does per
//! layer). Values print with Rust's shortest round-trip formatting, so they read back exactly.

use quant_core::formats::{Format, FormatKind, Quantized};

/// Parses whitespace-separated finite numbers. The error names the offending token and its
/// position, in one line.
pub fn parse_tensor(text: &str) -> Result<Vec<f64>, String> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, token)| match token.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            Ok(_) => Err(format!(
                "input number {} ({token:?}) is not finite: only finite numbers can be quantized",
                i + 1
            )),
            Err(_) => Err(format!(
                "input number {} ({token:?}) is not a number: give whitespace-separated decimals such as 0.25 -1e-3",
                i + 1
            )),
        })
        .collect()
}

/// The format the CLI flags describe: `exponent` overrides the paper's width. When the user gave no
/// `--exp` and the paper's width does not fit `bits` (AdaptivFloat<3,e> cannot have e = 3), the error
/// says to pass `--exp` rather than blaming a flag the user never set.
pub fn format_from_flags(
    kind: FormatKind,
    bits: u32,
    exponent: Option<u32>,
) -> Result<Format, String> {
    let paper = kind.paper_exponent(bits);
    match Format::new(kind, bits, exponent.or(paper)) {
        Ok(format) => Ok(format),
        Err(e) if exponent.is_none() && paper.is_some() => {
            let fits = (0..bits).any(|e| Format::new(kind, bits, Some(e)).is_ok());
            if fits {
                Err(format!(
                    "{e}: the paper's exponent width does not fit {bits} bits, pass --exp"
                ))
            } else {
                Err(e.to_string())
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Quantizes (or encodes, with `codes`) the tensor in `text` and returns the output lines: one
/// value (or `0x`-prefixed bit code) per input number, plus the per-tensor parameter as a
/// description line for stderr.
pub fn run(format: &Format, text: &str, codes: bool) -> Result<(Vec<String>, String), String> {
    let xs = parse_tensor(text)?;
    if xs.is_empty() {
        return Err("no numbers on stdin: pipe in whitespace-separated values".into());
    }
    let describe = |param| format!("{format}: {param}");
    if codes {
        let width = format.bits().div_ceil(4) as usize;
        let Quantized { param, values } = format.encode_tensor(&xs).map_err(|e| e.to_string())?;
        let lines = values
            .iter()
            .map(|c| format!("{c:#0w$x}", w = width + 2))
            .collect();
        Ok((lines, describe(param)))
    } else {
        let Quantized { param, values } = format.quantize_tensor(&xs).map_err(|e| e.to_string())?;
        Ok((
            values.iter().map(|v| v.to_string()).collect(),
            describe(param),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_rejects_the_rest() {
        assert_eq!(parse_tensor(" 1 -2.5e-1\n3\t").unwrap(), [1.0, -0.25, 3.0]);
        let e = parse_tensor("1 abc").unwrap_err();
        assert!(
            e.contains("input number 2") && e.contains("not a number"),
            "{e}"
        );
        for bad in ["NaN", "inf", "-infinity", "1e999"] {
            let e = parse_tensor(bad).unwrap_err();
            assert!(e.contains("not finite"), "{bad}: {e}");
        }
    }

    #[test]
    fn quantizes_and_encodes_the_worked_vector() {
        let f = format_from_flags(FormatKind::AdaptivFloat, 8, None).unwrap();
        let text = "0.9 -0.3 0.051 0.0061 -0.0012 0.2 0.003";
        let (values, param) = run(&f, text, false).unwrap();
        assert_eq!(values[0], "0.90625");
        assert_eq!(values[4], "-0");
        assert!(param.contains("exp_bias = -8"), "{param}");
        let (codes, _) = run(&f, text, true).unwrap();
        assert_eq!(
            codes,
            ["0x7d", "0xe3", "0x3a", "0x09", "0x80", "0x5a", "0x01"]
        );
    }

    #[test]
    fn a_paper_width_that_does_not_fit_asks_for_exp() {
        let e = format_from_flags(FormatKind::AdaptivFloat, 3, None).unwrap_err();
        assert!(e.ends_with("pass --exp"), "{e}");
        assert!(format_from_flags(FormatKind::AdaptivFloat, 3, Some(2)).is_ok());
        // Too few bits for any exponent: the bit width is what is wrong, not --exp.
        let e = format_from_flags(FormatKind::Float, 2, None).unwrap_err();
        assert!(!e.contains("--exp") && e.contains("3 to 16 bits"), "{e}");
    }

    #[test]
    fn bad_flags_and_empty_input_are_errors() {
        assert!(format_from_flags(FormatKind::AdaptivFloat, 4, Some(5)).is_err());
        let f = format_from_flags(FormatKind::Uniform, 8, None).unwrap();
        assert!(run(&f, "  \n", false).is_err());
    }
}
