//! integer-qat: Jacob et al. 2018 ("Quantization and Training of Neural Networks for Efficient
//! Integer-Arithmetic-Only Inference") on MNIST-scale proxies. The binary `integer-qat` runs the
//! experiments; this library holds their recipe (sizes, training configurations) and the metrics
//! they share, and Table 4.1's ImageNet row at paper scale ([`paper_scale`]).

pub mod experiments;
pub mod figures;
pub mod paper_scale;
pub mod recipe;

/// The `source` column of each trained experiment's rows: the published table it mirrors, spelled
/// as in `experiments/integer-qat/published.csv`.
pub const T41: &str = "arXiv:1712.05877v1 Table 4.1 / CVPR2018 Table 4.1";
pub const T42: &str = "arXiv:1712.05877v1 Table 4.2 / CVPR2018 Table 4.2";
pub const T43: &str = "arXiv:1712.05877v1 Table 4.3 / CVPR2018 Table 4.3";
pub const T47: &str = "arXiv:1712.05877v1 Table 4.7 / CVPR2018 Table 4.6";

/// Macro-averaged one-vs-rest average precision (percent) of `scores` (`[n, classes]` row-major)
/// against `labels`: the stand-in for the paper's "average category precision" of the face
/// attribute grid (arXiv Table 4.7). Per class, images are ranked by score (ties keep image
/// order) and AP is the mean of the precision at each positive.
pub fn macro_average_precision(scores: &[f64], labels: &[u8], classes: usize) -> f64 {
    let n = labels.len();
    let mut total = 0.0;
    let mut counted = 0;
    for c in 0..classes {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b * classes + c].total_cmp(&scores[a * classes + c]));
        let (mut hits, mut sum) = (0usize, 0.0);
        for (rank, &i) in order.iter().enumerate() {
            if usize::from(labels[i]) == c {
                hits += 1;
                sum += hits as f64 / (rank + 1) as f64;
            }
        }
        if hits > 0 {
            total += sum / hits as f64;
            counted += 1;
        }
    }
    100.0 * total / counted.max(1) as f64
}

/// Median of `values` (mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    if values.len() % 2 == 1 {
        values[m]
    } else {
        0.5 * (values[m - 1] + values[m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn average_precision() {
        // Perfect ranking: AP 100.
        let labels = [0u8, 1, 0, 1];
        let perfect = [1.0, 0.0, 0.0, 1.0, 0.9, 0.1, 0.2, 0.8];
        assert!((macro_average_precision(&perfect, &labels, 2) - 100.0).abs() < 1e-9);
        // Class 0 ranked [1, 0, 2, 3] by score: positives at ranks 2 and 3 -> (1/2 + 2/3) / 2.
        let scores = [0.5, 0.5, 0.9, 0.1, 0.1, 0.9, 0.0, 1.0];
        let ap0 = (0.5 + 2.0 / 3.0) / 2.0;
        // Class 1: scores 0.5, 0.1, 0.9, 1.0 rank the images [3, 2, 0, 1];
        // positives (1, 3) at ranks 1 and 4 -> (1 + 2/4) / 2.
        let ap1 = (1.0 + 0.5) / 2.0;
        let got = macro_average_precision(&scores, &labels, 2);
        assert!((got - 100.0 * (ap0 + ap1) / 2.0).abs() < 1e-9, "{got}");
    }
}
