use super::*;
use crate::fixed8::FixedFormat;
use crate::fixed8::graph::ShiftStage;
use crate::kernels::{Backend, ConvGeometry, ConvKernel, ConvShape};
use crate::subbyte::BitWidth;
use std::sync::Arc;

const U8: Kind = Kind::eight_bit(0);

fn shape(h: usize, w: usize, c: usize) -> Shape {
    Shape { h, w, c }
}

/// A 3x3 convolution (2 -> 3 channels, stride 1, padding 1) with biases, then a shift to
/// unsigned codes, then a fully connected layer over the flattened codes.
fn small_graph(backend: Backend) -> Graph {
    let mut g = Graph::new(shape(4, 4, 2), U8).unwrap();
    let conv = ConvShape {
        geometry: ConvGeometry::symmetric((4, 4, 2), 3, 1, 1).unwrap(),
        out_c: 3,
        groups: 1,
    };
    let weights: Vec<i8> = (0..54).map(|i| (i * 7 % 19) as i8 - 9).collect();
    let kernel = ConvKernel::new(&weights, 3, (3, 3), 1, &[0], backend)
        .unwrap()
        .unwrap();
    let conv = g
        .push(
            &[0],
            Op::Conv {
                shape: conv,
                kernel,
                bias: vec![100, -100, 7],
                stage: None,
                weight_bytes: weights.len(),
            },
        )
        .unwrap();
    let stage = ShiftStage {
        format: FixedFormat::new(0, false).unwrap(),
        fl_in: vec![4, 4, 3],
    };
    let codes = g.push(&[conv], Op::Requantize(Arc::new(stage))).unwrap();
    let fc: Vec<i8> = (0..96).map(|i| (i * 5 % 11) as i8 - 5).collect();
    let kernel = ConvKernel::new(&fc, 2, (1, 1), 1, &[0], backend)
        .unwrap()
        .unwrap();
    g.push(
        &[codes],
        Op::Dense {
            input: DenseInput::Flat,
            out: 2,
            kernel,
            bias: Vec::new(),
            stage: None,
            weight_bytes: fc.len(),
        },
    )
    .unwrap();
    g
}

fn image(seed: u32) -> Vec<u8> {
    (0..32)
        .map(|i| ((i * 37 + seed * 101) % 256) as u8)
        .collect()
}

/// A batch gives each image's result, on every backend, and the counts of the batch are the
/// counts of its images (per-run parameters aside).
#[test]
fn a_batch_runs_each_image_and_counts_them() {
    let want: Vec<(Tensor, OpCounts)> = (0..3)
        .map(|s| {
            small_graph(Backend::Scalar)
                .run(Tensor::codes(1, shape(4, 4, 2), U8, image(s)))
                .unwrap()
        })
        .collect();
    for backend in Backend::available() {
        let g = small_graph(backend);
        let batch: Vec<u8> = (0..3).flat_map(image).collect();
        let (out, counts) = g.run(Tensor::codes(3, shape(4, 4, 2), U8, batch)).unwrap();
        let each: Vec<i32> = want
            .iter()
            .flat_map(|(t, _)| t.to_i32().unwrap().into_owned())
            .collect();
        assert_eq!(out.to_i32().unwrap().into_owned(), each, "{backend:?}");
        let one = want[0].1;
        assert_eq!(counts.mul_8x8, 3 * one.mul_8x8);
        assert_eq!(counts.shifts, 3 * one.shifts);
        // Per image: conv reads 32 codes and writes 48 int32, the shift reads those and writes
        // 48 codes, the layer reads them and writes 2 int32; parameters once per run.
        let per_image = (32 + 4 * 48) + (4 * 48 + 48) + (48 + 4 * 2);
        let parameters = (54 + 4 * 3) + 96;
        assert_eq!(one.bytes_moved, (per_image + parameters) as u64);
        assert_eq!(counts.bytes_moved, (3 * per_image + parameters) as u64);
        // 16 pixels x 3 outputs x 18 products, 2 x 48 products; every channel shifts.
        assert_eq!(one.mul_8x8, 16 * 3 * 18 + 2 * 48);
        assert_eq!(one.shifts, 3 * 16);
    }
}

/// The convolution's input and int32 output (32 + 192 bytes), then those int32 beside the
/// codes they requantize to (192 + 48, the peak), then the codes and the layer's 2 int32.
#[test]
fn peak_activation_bytes_follow_liveness() {
    assert_eq!(small_graph(Backend::Scalar).peak_activation_bytes(), 240);
}

#[test]
fn codes_are_stored_packed_and_wide_values_whole() {
    let codes = |bits| Kind::Codes {
        bits,
        zero_point: 0,
    };
    assert_eq!(codes(BitWidth::B8).stored_bytes(5), 5);
    assert_eq!(codes(BitWidth::B4).stored_bytes(5), 3);
    assert_eq!(codes(BitWidth::B2).stored_bytes(5), 2);
    assert_eq!(Kind::Int32.stored_bytes(5), 20);
    assert_eq!(Kind::Int64.stored_bytes(5), 40);
}

/// Floor means feed the classifier (its channel sums counted as int32), the mean by shift keeps
/// codes in their format, and the aligned add shifts the operand of the smaller length.
#[test]
fn pooling_and_aligned_add_by_hand() {
    let x = shape(2, 2, 2);
    let signed = Kind::eight_bit(128);
    let mut g = Graph::new(x, signed).unwrap();
    let mean = g.push(&[0], Op::MeanByShift).unwrap();
    let add = g
        .push(
            &[mean, mean],
            Op::AlignedAdd {
                fl_a: vec![0, 2],
                fl_b: vec![1, 2],
                relu: true,
            },
        )
        .unwrap();
    assert_eq!(g.kind(mean), Some(signed));
    assert_eq!(g.kind(add), Some(Kind::Int32));
    // Channel 0: values 1, 2, 3, 5 (mean 11/4 -> 3); channel 1: -1, -2, -2, -1 (-6/4 -> -2).
    let codes = [1, -1, 2, -2, 3, -2, 5, -1].map(|v: i32| (v + 128) as u8);
    let (out, counts) = g.run(Tensor::codes(1, x, signed, codes.to_vec())).unwrap();
    // Channel 0: 3 at FL 0 shifted to FL 1 plus 3 = 9; channel 1: -2 + -2 = -4, ReLU 0.
    assert_eq!(out.data, Data::Int32(vec![9, 0]));
    // Two means (one per channel) and one aligned channel.
    assert_eq!(counts.shifts, 2 + 1);
    // Mean: 8 codes in, 2 out; add: 2 + 2 codes in, 2 int32 out.
    assert_eq!(counts.bytes_moved, (8 + 2) + (2 + 2 + 8));
    // Three pixels: the sum shifted by ceil(log2 3) = 2 (13 / 4 -> 3), the mean scaled by 3 / 4.
    let odd = shape(3, 1, 1);
    let mut g = Graph::new(odd, U8).unwrap();
    g.push(&[0], Op::MeanByShift).unwrap();
    let (out, _) = g.run(Tensor::codes(1, odd, U8, vec![4, 4, 5])).unwrap();
    assert_eq!(out.data, Data::Codes(vec![3]));

    let mut g = Graph::new(x, U8).unwrap();
    let fc = ConvKernel::new(&[1, 0, 0, 1, 1, 1], 3, (1, 1), 1, &[0], Backend::Scalar)
        .unwrap()
        .unwrap();
    g.push(
        &[0],
        Op::Dense {
            input: DenseInput::FloorMean,
            out: 3,
            kernel: fc,
            bias: vec![0, 0, 1],
            stage: None,
            weight_bytes: 6,
        },
    )
    .unwrap();
    let (out, counts) = g
        .run(Tensor::codes(1, x, U8, vec![1, 9, 2, 9, 2, 9, 2, 8]))
        .unwrap();
    // Floor means 7/4 -> 1 and 35/4 -> 8.
    assert_eq!(out.data, Data::Int32(vec![1, 8, 10]));
    assert_eq!(counts.mul_8x8, 6);
    // 8 codes in, sums 2 x 4, weights 6 + biases 12, 3 int32 out.
    assert_eq!(counts.bytes_moved, 8 + 8 + 18 + 12);
}

#[test]
fn graphs_that_cannot_run_are_refused_when_built() {
    let mut g = Graph::new(shape(2, 2, 1), U8).unwrap();
    let late = g.push(&[1], Op::MeanByShift);
    assert!(
        late.unwrap_err()
            .to_string()
            .contains("not an earlier value")
    );
    assert!(
        g.push(
            &[0],
            Op::AlignedAdd {
                fl_a: vec![0],
                fl_b: vec![0],
                relu: false
            }
        )
        .is_err()
    );
    let sum = g
        .push(
            &[0, 0],
            Op::AlignedAdd {
                fl_a: vec![0],
                fl_b: vec![0],
                relu: false,
            },
        )
        .unwrap();
    // A convolution reads codes, not int32 sums.
    let kernel = ConvKernel::new(&[1], 1, (1, 1), 1, &[0], Backend::Scalar)
        .unwrap()
        .unwrap();
    let conv = Op::Conv {
        shape: ConvShape {
            geometry: ConvGeometry::symmetric((2, 2, 1), 1, 1, 0).unwrap(),
            out_c: 1,
            groups: 1,
        },
        kernel,
        bias: Vec::new(),
        stage: None,
        weight_bytes: 1,
    };
    let err = g.push(&[sum], conv).unwrap_err().to_string();
    assert!(err.contains("requantize it first"), "{err}");
    // An input of the wrong size or storage.
    let g = Graph::new(shape(2, 2, 1), U8).unwrap();
    assert!(
        g.run(Tensor::codes(1, shape(2, 2, 1), U8, vec![0; 3]))
            .is_err()
    );
    assert!(
        g.run(Tensor {
            batch: 1,
            shape: shape(2, 2, 1),
            kind: Kind::Int32,
            data: Data::Int32(vec![0; 4]),
        })
        .is_err()
    );
    assert!(Graph::new(shape(0, 2, 1), U8).is_err());
    // Widths other than 2, 4 and 8 bits have no `BitWidth`; a zero point must be a code.
    assert!(Graph::new(shape(1, 1, 1), Kind::eight_bit(256)).is_err());
}
