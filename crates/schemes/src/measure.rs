//! What every row measures besides top-1: storage, peak activation memory, batch-1 latency, and the
//! operations the integer engine counted. One definition each, so the rows compare.

use quant_core::ops::OpCounts;

/// Bytes to store `params` values of `bits` bits each, rounded up to whole bytes, plus `extra`
/// bytes of per-tensor parameters (scales, zero points, exponent biases).
pub fn storage_bytes(params: usize, bits: u32, extra: usize) -> usize {
    (params * bits as usize).div_ceil(8) + extra
}

/// Peak activation memory of layers whose inputs and outputs have `layer_io` elements: the largest
/// input plus output of one layer, `bits` bits per value. A layer reads its whole input and writes its
/// whole output, so both are live at once; nothing else is.
pub fn peak_activation_bytes(layer_io: &[(usize, usize)], bits: u32) -> usize {
    layer_io
        .iter()
        .map(|&(i, o)| storage_bytes(i + o, bits, 0))
        .max()
        .unwrap_or(0)
}

/// The rows' names and values of one inference's operation counts.
pub fn op_count_metrics(c: &OpCounts) -> [(&'static str, f64); 4] {
    [
        ("mul_8x8_per_inference", c.mul_8x8 as f64),
        ("mul_32x32_per_inference", c.mul_32x32 as f64),
        ("shifts_per_inference", c.shifts as f64),
        ("bytes_moved_per_inference", c.bytes_moved as f64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_and_peak_activation_count_whole_bytes() {
        assert_eq!(storage_bytes(10, 4, 0), 5);
        assert_eq!(storage_bytes(3, 6, 2), 5);
        // 784-256-256-10 at 8 bits: the first layer's 784 + 256 values are the peak.
        let mlp = [(784, 256), (256, 256), (256, 10)];
        assert_eq!(peak_activation_bytes(&mlp, 8), 1040);
        assert_eq!(peak_activation_bytes(&mlp, 32), 4160);
    }
}
