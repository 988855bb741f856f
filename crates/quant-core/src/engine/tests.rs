// Tests check the integer code against float references; float never reaches run-time code.
#![allow(clippy::float_arithmetic)]
use super::*;
use crate::convert::{LayerQuant, WeightScheme};
use crate::fixedpoint::QuantizedMultiplier;
use crate::kernels::{avg_pool, conv2d, depthwise_conv2d, max_pool};
use crate::qparams::{FusedActivation, QParams, QRange};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn floats(&mut self, n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next() % 20001) as f32 / 10000.0 - 1.0) * amp)
            .collect()
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn act(lo: f64, hi: f64) -> QParams {
    QParams::choose(lo, hi, QRange::U8).unwrap()
}

/// A small residual CNN: conv3x3 -> depthwise3x3 -> pointwise -> add(skip to conv) -> maxpool ->
/// global average pool -> FC(10).
fn small_net(scheme: WeightScheme, rounding: RoundingMode, output: OutputType) -> ModelSpec {
    let mut rng = Lcg(7);
    let input = QParams::new(1.0 / 255.0, 0, QRange::U8).unwrap();
    let a1 = act(0.0, 6.0);
    let a2 = act(0.0, 6.0);
    let a3 = act(-3.0, 3.0);
    let a4 = act(-2.0, 8.0);
    let logits = act(-10.0, 10.0);
    let q = |i: QParams, o: QParams, a: FusedActivation| LayerQuant {
        input: i,
        output: o,
        scheme,
        activation: a,
        rounding,
    };
    let c = 8;
    let conv = ConvLayer::from_float(
        &rng.floats(9 * 3 * c, 0.5),
        c,
        Window::square(3, 1, 1),
        &rng.floats(c, 0.1),
        &q(input, a1, FusedActivation::Relu6),
    )
    .unwrap();
    let dw = DepthwiseLayer::from_float(
        &rng.floats(9 * c, 0.7),
        c,
        Window::square(3, 2, 1),
        &rng.floats(c, 0.1),
        &q(a1, a2, FusedActivation::Relu6),
    )
    .unwrap();
    let pw = ConvLayer::from_float(
        &rng.floats(c * c, 0.4),
        c,
        Window::square(1, 1, 0),
        &rng.floats(c, 0.1),
        &q(a2, a3, FusedActivation::None),
    )
    .unwrap();
    let dw2 = DepthwiseLayer::from_float(
        &rng.floats(9 * c, 0.7),
        c,
        Window::square(3, 1, 1),
        &[],
        &q(a3, a3, FusedActivation::None),
    )
    .unwrap();
    let add = AddLayer::from_float(&a3, &a3, &a4, FusedActivation::Relu).unwrap();
    let fc = FullyConnectedLayer::from_float(
        &rng.floats(c * 10, 0.6),
        10,
        &rng.floats(10, 0.2),
        &q(a4, logits, FusedActivation::None),
    )
    .unwrap();
    ModelSpec {
        input: InputSpec {
            shape: Shape { h: 9, w: 9, c: 3 },
            zero_point: 0,
        },
        nodes: [
            Node::chain(
                0,
                [
                    Layer::Conv2d(conv),
                    Layer::DepthwiseConv2d(dw),
                    Layer::Conv2d(pw),
                    Layer::DepthwiseConv2d(dw2),
                ],
            ),
            // The depthwise output plus the pointwise one it started from.
            vec![Node {
                inputs: vec![4, 3],
                layer: Layer::Add(add),
            }],
            Node::chain(
                5,
                [
                    Layer::MaxPool(PoolLayer {
                        window: Window::square(2, 2, 0),
                        act_min: 0,
                        act_max: 255,
                    }),
                    Layer::GlobalAvgPool,
                    Layer::FullyConnected(fc),
                ],
            ),
        ]
        .concat(),
        rounding,
        output,
    }
}

#[test]
fn runs_and_matches_manual_kernel_composition() {
    let spec = small_net(
        WeightScheme::PerTensorAsymmetric,
        RoundingMode::Double,
        OutputType::U8,
    );
    let model = Model::with_backend(spec.clone(), Backend::Scalar).unwrap();
    assert_eq!(model.output_shape(), Shape { h: 1, w: 1, c: 10 });
    let batch = 3;
    let images = Lcg(9).bytes(batch * 9 * 9 * 3);
    let out = model.run(&images, batch).unwrap();

    // The same computation, kernel by kernel.
    let Layer::Conv2d(conv) = &spec.nodes[0].layer else {
        unreachable!()
    };
    let g1 = ConvGeometry::new(9, 9, 3, 3, 1, true).unwrap();
    let w1 = PackedWeights::new(
        &conv.weights,
        27,
        8,
        &conv.weight_zero_points,
        Backend::Scalar,
    )
    .unwrap();
    let mut x1 = vec![0u8; batch * 81 * 8];
    conv2d(&images, batch, &g1, 0, &w1, &conv.stage, &mut x1).unwrap();
    let Layer::DepthwiseConv2d(dw) = &spec.nodes[1].layer else {
        unreachable!()
    };
    let g2 = Window::square(3, 2, 1)
        .geometry(Shape { h: 9, w: 9, c: 8 })
        .unwrap();
    let w2 = DepthwiseWeights::new(
        &dw.weights,
        3,
        3,
        8,
        &dw.weight_zero_points,
        Backend::Scalar,
    )
    .unwrap();
    let mut x2 = vec![0u8; batch * 25 * 8];
    depthwise_conv2d(
        &x1,
        batch,
        &g2,
        conv.stage.output_zero_point,
        &w2,
        &dw.stage,
        &mut x2,
    )
    .unwrap();
    let Layer::Conv2d(pw) = &spec.nodes[2].layer else {
        unreachable!()
    };
    let w3 =
        PackedWeights::new(&pw.weights, 8, 8, &pw.weight_zero_points, Backend::Scalar).unwrap();
    let mut x3 = vec![0u8; x2.len()];
    kernels::gemm(
        &x2,
        batch * 25,
        dw.stage.output_zero_point,
        &w3,
        &pw.stage,
        &mut x3,
    )
    .unwrap();
    let Layer::DepthwiseConv2d(dw2) = &spec.nodes[3].layer else {
        unreachable!()
    };
    let g4 = Window::square(3, 1, 1)
        .geometry(Shape { h: 5, w: 5, c: 8 })
        .unwrap();
    let w4 = DepthwiseWeights::new(
        &dw2.weights,
        3,
        3,
        8,
        &dw2.weight_zero_points,
        Backend::Scalar,
    )
    .unwrap();
    let mut x4 = vec![0u8; x3.len()];
    depthwise_conv2d(
        &x3,
        batch,
        &g4,
        pw.stage.output_zero_point,
        &w4,
        &dw2.stage,
        &mut x4,
    )
    .unwrap();
    let Layer::Add(add) = &spec.nodes[4].layer else {
        unreachable!()
    };
    let mut x5 = vec![0u8; x4.len()];
    kernels::add(&x4, &x3, &add.params, RoundingMode::Double, &mut x5).unwrap();
    let g6 = Window::square(2, 2, 0)
        .geometry(Shape { h: 5, w: 5, c: 8 })
        .unwrap();
    let mut x6 = vec![0u8; batch * 4 * 8];
    max_pool(&x5, batch, &g6, 0, 255, &mut x6).unwrap();
    let g7 = Window {
        kernel_h: 2,
        kernel_w: 2,
        stride_h: 1,
        stride_w: 1,
        padding: [0; 4],
    }
    .geometry(Shape { h: 2, w: 2, c: 8 })
    .unwrap();
    let mut x7 = vec![0u8; batch * 8];
    avg_pool(&x6, batch, &g7, 0, 255, &mut x7).unwrap();
    let Layer::FullyConnected(fc) = &spec.nodes[7].layer else {
        unreachable!()
    };
    let w8 =
        PackedWeights::new(&fc.weights, 8, 10, &fc.weight_zero_points, Backend::Scalar).unwrap();
    let mut x8 = vec![0u8; batch * 10];
    kernels::gemm(
        &x7,
        batch,
        add.params.output_zero_point,
        &w8,
        &fc.stage,
        &mut x8,
    )
    .unwrap();

    assert_eq!(out.data, QData::U8(x8));
    assert_eq!(out.zero_point, fc.stage.output_zero_point);
    assert_eq!(out.argmax().len(), batch);
}

#[test]
fn every_backend_gives_identical_logits() {
    for scheme in [
        WeightScheme::PerTensorAsymmetric,
        WeightScheme::PerChannelSymmetric,
    ] {
        let spec = small_net(scheme, RoundingMode::Single, OutputType::U8);
        let images = Lcg(11).bytes(4 * 243);
        let reference = Model::with_backend(spec.clone(), Backend::Scalar)
            .unwrap()
            .run(&images, 4)
            .unwrap();
        for backend in Backend::available() {
            let m = Model::with_backend(spec.clone(), backend).unwrap();
            assert_eq!(m.run(&images, 4).unwrap(), reference, "{backend:?}");
        }
    }
}

#[test]
fn int8_output_is_the_shifted_uint8_output() {
    let images = Lcg(12).bytes(2 * 243);
    let u = Model::new(small_net(
        WeightScheme::PerChannelSymmetric,
        RoundingMode::Double,
        OutputType::U8,
    ))
    .unwrap();
    let i = Model::new(small_net(
        WeightScheme::PerChannelSymmetric,
        RoundingMode::Double,
        OutputType::I8,
    ))
    .unwrap();
    let (ou, oi) = (u.run(&images, 2).unwrap(), i.run(&images, 2).unwrap());
    assert_eq!(oi.zero_point, ou.zero_point - 128);
    assert_eq!(
        oi.codes(),
        ou.codes().iter().map(|c| c - 128).collect::<Vec<_>>()
    );
    assert_eq!(oi.argmax(), ou.argmax());
}

#[test]
fn fully_connected_model_is_within_one_lsb_of_float() {
    let mut rng = Lcg(13);
    let (k, n) = (64, 12);
    let w = rng.floats(k * n, 0.3);
    let b = rng.floats(n, 0.5);
    let input = QParams::new(1.0 / 255.0, 0, QRange::U8).unwrap();
    let output = act(-4.0, 4.0);
    let q = LayerQuant {
        input,
        output,
        scheme: WeightScheme::PerChannelSymmetric,
        activation: FusedActivation::None,
        rounding: RoundingMode::Double,
    };
    let fc = FullyConnectedLayer::from_float(&w, n, &b, &q).unwrap();
    let wp =
        crate::qparams::PerChannelQParams::symmetric_last_axis(&w, n, QRange::I8_NARROW).unwrap();
    let spec = ModelSpec {
        input: InputSpec {
            shape: Shape { h: 1, w: 1, c: k },
            zero_point: 0,
        },
        nodes: vec![Node::new(0, Layer::FullyConnected(fc.clone()))],
        rounding: RoundingMode::Double,
        output: OutputType::U8,
    };
    let model = Model::new(spec).unwrap();
    let images = rng.bytes(5 * k);
    let out = model.run(&images, 5).unwrap().codes();
    for bi in 0..5 {
        for j in 0..n {
            // Float reference on the quantized weights and bias (what the integers represent).
            let s_w = wp.channels[j].scale;
            let mut r = f64::from(fc.stage.bias[j]) * input.scale * s_w;
            for kk in 0..k {
                r += input.dequantize(i32::from(images[bi * k + kk]))
                    * s_w
                    * f64::from(fc.weights[kk * n + j]);
            }
            let want = (r / output.scale).round() + f64::from(output.zero_point);
            let got = f64::from(out[bi * n + j]);
            assert!(
                (got - want.clamp(0.0, 255.0)).abs() <= 1.0,
                "item {bi} class {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn save_load_round_trip() {
    let spec = small_net(
        WeightScheme::PerTensorAsymmetric,
        RoundingMode::Double,
        OutputType::I8,
    );
    let model = Model::new(spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.qcm.json");
    model.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.spec(), model.spec());
    let images = Lcg(14).bytes(2 * 243);
    assert_eq!(
        loaded.run(&images, 2).unwrap(),
        model.run(&images, 2).unwrap()
    );
}

#[test]
fn corrupt_or_mismatched_files_are_clear_errors() {
    let model = Model::new(small_net(
        WeightScheme::PerTensorAsymmetric,
        RoundingMode::Double,
        OutputType::U8,
    ))
    .unwrap();
    let bytes = model.to_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let msg = |b: &[u8]| Model::from_bytes(b).unwrap_err().to_string();
    assert!(msg(&bytes[..bytes.len() / 2]).contains("corrupt"));
    assert!(msg(b"{\"hello\": 1}").contains("not a quant-core model"));
    assert!(
        msg(text
            .replacen("\"version\":2", "\"version\":7", 1)
            .as_bytes())
        .contains("version")
    );
    // A layer whose weight count no longer matches its input.
    let mut spec = model.spec().clone();
    if let Some(Layer::FullyConnected(fc)) = spec.nodes.last_mut().map(|n| &mut n.layer) {
        fc.weights.pop();
    }
    let bad = Model {
        spec,
        ..model.clone()
    }
    .to_bytes()
    .unwrap();
    assert!(msg(&bad).contains("does not validate"));
    let missing = Model::load(std::path::Path::new("/nonexistent/model.json")).unwrap_err();
    assert!(matches!(missing, QuantError::Io(_)));
}

#[test]
fn invalid_specs_are_rejected() {
    let good = small_net(
        WeightScheme::PerTensorAsymmetric,
        RoundingMode::Double,
        OutputType::U8,
    );
    let mut mixed = good.clone();
    mixed.rounding = RoundingMode::Single;
    assert!(
        Model::new(mixed)
            .unwrap_err()
            .to_string()
            .contains("rounding")
    );
    let mut forward = good.clone();
    forward.nodes[4].inputs[1] = 5;
    assert!(
        Model::new(forward)
            .unwrap_err()
            .to_string()
            .contains("node 5 reads value 5, which is not an earlier value")
    );
    let mut one_input = good.clone();
    one_input.nodes[4].inputs.pop();
    assert!(
        Model::new(one_input)
            .unwrap_err()
            .to_string()
            .contains("reads 1 values; its layer takes 2")
    );
    let mut wrong_shape = good.clone();
    wrong_shape.nodes[4].inputs[1] = 1; // 9x9 value added to a 5x5 one
    assert!(
        Model::new(wrong_shape)
            .unwrap_err()
            .to_string()
            .contains("add")
    );
    let model = Model::new(good).unwrap();
    assert!(model.run(&[0u8; 10], 1).is_err());
    assert!(model.run(&[], 0).is_err());
}

/// A downsampling residual block with a projection shortcut: conv3x3/2 -> conv3x3 on the main
/// branch, conv1x1/2 on the shortcut reading the input again, then the add.
fn projection_block(rounding: RoundingMode) -> ModelSpec {
    let mut rng = Lcg(11);
    let input = QParams::new(1.0 / 255.0, 0, QRange::U8).unwrap();
    let (a1, a2, a3, out) = (act(0.0, 6.0), act(-4.0, 4.0), act(-3.0, 3.0), act(0.0, 8.0));
    let q = |i: QParams, o: QParams, a: FusedActivation| LayerQuant {
        input: i,
        output: o,
        scheme: WeightScheme::PerChannelSymmetric,
        activation: a,
        rounding,
    };
    let (cin, c) = (4, 8);
    let conv = |rng: &mut Lcg, cin: usize, k: usize, stride: usize, lq: &LayerQuant| {
        ConvLayer::from_float(
            &rng.floats(k * k * cin * c, 0.5),
            c,
            Window::square(k, stride, k / 2),
            &rng.floats(c, 0.1),
            lq,
        )
        .unwrap()
    };
    let main1 = conv(&mut rng, cin, 3, 2, &q(input, a1, FusedActivation::Relu6));
    let main2 = conv(&mut rng, c, 3, 1, &q(a1, a2, FusedActivation::None));
    let proj = conv(&mut rng, cin, 1, 2, &q(input, a3, FusedActivation::None));
    ModelSpec {
        input: InputSpec {
            shape: Shape { h: 8, w: 8, c: cin },
            zero_point: 0,
        },
        nodes: vec![
            Node::new(0, Layer::Conv2d(main1)),
            Node::new(1, Layer::Conv2d(main2)),
            Node::new(0, Layer::Conv2d(proj)),
            Node {
                inputs: vec![3, 2],
                layer: Layer::Add(
                    AddLayer::from_float(&a3, &a2, &out, FusedActivation::Relu).unwrap(),
                ),
            },
        ],
        rounding,
        output: OutputType::U8,
    }
}

#[test]
fn projection_shortcut_matches_manual_kernel_composition() {
    let spec = projection_block(RoundingMode::Double);
    let model = Model::with_backend(spec.clone(), Backend::Scalar).unwrap();
    assert_eq!(model.node_shape(3), Some(Shape { h: 4, w: 4, c: 8 }));
    assert_eq!(model.output_shape(), Shape { h: 4, w: 4, c: 8 });
    let batch = 2;
    let images = Lcg(5).bytes(batch * 8 * 8 * 4);
    let out = model.run(&images, batch).unwrap();

    let conv = |layer: &Layer, x: &[u8], shape: Shape, zp: i32| {
        let Layer::Conv2d(l) = layer else {
            unreachable!()
        };
        let g = l.window.geometry(shape).unwrap();
        let k = g.kernel_h * g.kernel_w * g.in_c;
        let w =
            PackedWeights::new(&l.weights, k, 8, &l.weight_zero_points, Backend::Scalar).unwrap();
        let mut y = vec![0u8; batch * g.out_h() * g.out_w() * 8];
        conv2d(x, batch, &g, zp, &w, &l.stage, &mut y).unwrap();
        (y, l.stage.output_zero_point)
    };
    let input = Shape { h: 8, w: 8, c: 4 };
    let (x1, z1) = conv(&spec.nodes[0].layer, &images, input, 0);
    let (x2, _) = conv(&spec.nodes[1].layer, &x1, Shape { h: 4, w: 4, c: 8 }, z1);
    let (x3, _) = conv(&spec.nodes[2].layer, &images, input, 0);
    let Layer::Add(add) = &spec.nodes[3].layer else {
        unreachable!()
    };
    let mut want = vec![0u8; x2.len()];
    kernels::add(&x3, &x2, &add.params, RoundingMode::Double, &mut want).unwrap();
    assert_eq!(out.data, QData::U8(want));

    // Every backend agrees, and the branch survives a save/load round trip.
    for backend in Backend::available() {
        let m = Model::with_backend(spec.clone(), backend).unwrap();
        assert_eq!(m.run(&images, batch).unwrap().data, out.data, "{backend:?}");
    }
    let path = std::env::temp_dir().join(format!("quant-core-branch-{}.json", std::process::id()));
    model.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.spec(), &spec);
}

#[test]
fn a_node_reading_a_later_value_is_rejected() {
    let mut spec = projection_block(RoundingMode::Single);
    spec.nodes[2].inputs = vec![3];
    let e = Model::new(spec).unwrap_err();
    assert!(e.to_string().contains("node 3 reads value 3"), "{e}");
}

#[test]
fn run_counted_counts_the_products_and_requantizations_of_each_node() {
    let spec = projection_block(RoundingMode::Double);
    let model = Model::with_backend(spec.clone(), Backend::Scalar).unwrap();
    let batch = 2;
    let images = Lcg(5).bytes(batch * 8 * 8 * 4);
    let (out, counts) = model.run_counted(&images, batch).unwrap();
    assert_eq!(out, model.run(&images, batch).unwrap());
    // Per image: main 3x3/2 on 8x8x4 and 3x3/1 on 4x4x8, projection 1x1/2 on 8x8x4, each 4x4x8
    // outputs; then the 4x4x8 sum.
    let outputs = batch as u64 * 4 * 4 * 8;
    assert_eq!(counts.mul_8x8, outputs * (9 * 4 + 9 * 8 + 4));
    assert_eq!(counts.mul_32x32, 3 * outputs + 3 * outputs);
    // Double rounding: a shift per requantization whose exponent is not zero, and the add's two
    // pre-scaling shifts.
    let shifts_of = |m: &QuantizedMultiplier| u64::from(m.shift != 0);
    let mut want = 0;
    for node in &spec.nodes {
        match &node.layer {
            Layer::Conv2d(l) => {
                let per_channel = outputs / 8;
                want += (0..8)
                    .map(|j| per_channel * shifts_of(&l.stage.multipliers[j]))
                    .sum::<u64>();
            }
            Layer::Add(l) => {
                let p = &l.params;
                let muls = [
                    p.input1_multiplier,
                    p.input2_multiplier,
                    p.output_multiplier,
                ];
                want += outputs
                    * (2 * u64::from(p.left_shift > 0) + muls.iter().map(shifts_of).sum::<u64>());
            }
            _ => unreachable!("the block has convolutions and an add"),
        }
    }
    assert_eq!(counts.shifts, want);
    // Codes read and written (1 byte each), weights and int32 biases: main 3x3/2 reads the 8x8x4
    // images, main 3x3/1 the 4x4x8 map, the projection the images again, the add both maps.
    let images = batch as u64 * 8 * 8 * 4;
    let bytes = [
        images + outputs + 9 * 4 * 8 + 4 * 8,
        outputs + outputs + 9 * 8 * 8 + 4 * 8,
        images + outputs + 4 * 8 + 4 * 8,
        3 * outputs,
    ];
    assert_eq!(counts.bytes_moved, bytes.iter().sum::<u64>());
}

/// A per-channel code table in front of a convolution: the engine looks every input code up in
/// its channel's table, and the convolution reads the looked-up codes with the table's zero point
/// (the padding included); a table of the wrong size or a zero point outside uint8 is refused.
#[test]
fn code_table_maps_each_channel_before_the_next_layer() {
    let (h, w, c) = (5, 4, 3);
    let tables: Vec<u8> = (0..c)
        .flat_map(|ch| (0..256).map(move |q| ((q * (2 * ch + 1) + 7 * ch) % 256) as u8))
        .collect();
    let table_q = act(-2.0, 2.5);
    let out_q = act(-4.0, 4.0);
    let mut rng = Lcg(21);
    let conv = ConvLayer::from_float(
        &rng.floats(9 * c * 2, 0.5),
        2,
        Window::square(3, 1, 1),
        &[0.1, -0.2],
        &LayerQuant {
            input: table_q,
            output: out_q,
            scheme: WeightScheme::PerTensorAsymmetric,
            activation: FusedActivation::None,
            rounding: RoundingMode::Double,
        },
    )
    .unwrap();
    let input = InputSpec {
        shape: Shape { h, w, c },
        zero_point: 0,
    };
    let table = CodeTableLayer {
        tables: tables.clone(),
        zero_point: table_q.zero_point,
    };
    let spec = ModelSpec {
        input,
        nodes: Node::chain(
            0,
            [Layer::CodeTable(table.clone()), Layer::Conv2d(conv.clone())],
        ),
        rounding: RoundingMode::Double,
        output: OutputType::U8,
    };
    let images = rng.bytes(2 * h * w * c);
    let looked_up: Vec<u8> = images
        .iter()
        .enumerate()
        .map(|(i, &q)| tables[(i % c) * 256 + usize::from(q)])
        .collect();
    let alone = ModelSpec {
        input: InputSpec {
            zero_point: table_q.zero_point,
            ..input
        },
        nodes: Node::chain(0, [Layer::Conv2d(conv)]),
        ..spec.clone()
    };
    let want = Model::new(alone).unwrap().run(&looked_up, 2).unwrap();
    assert_eq!(
        Model::new(spec.clone()).unwrap().run(&images, 2).unwrap(),
        want
    );
    let only_table = ModelSpec {
        nodes: Node::chain(0, [Layer::CodeTable(table.clone())]),
        ..spec
    };
    let out = Model::new(only_table.clone())
        .unwrap()
        .run(&images, 2)
        .unwrap();
    assert_eq!(out.data, QData::U8(looked_up));
    assert_eq!(out.zero_point, table_q.zero_point);

    let refused = |layer: CodeTableLayer| {
        let spec = ModelSpec {
            nodes: vec![Node::new(0, Layer::CodeTable(layer))],
            ..only_table.clone()
        };
        Model::new(spec).unwrap_err().to_string()
    };
    let short = CodeTableLayer {
        tables: tables[..256 * 2].to_vec(),
        ..table.clone()
    };
    assert!(refused(short).contains("512 table entries for 3 channels"));
    let wide = CodeTableLayer {
        zero_point: 256,
        ..table
    };
    assert!(refused(wide).contains("zero point 256"));
}
