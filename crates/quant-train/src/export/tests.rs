//! Export, simulation and agreement on small trained and random networks.

use super::simulate::SimTensor;
use super::*;
use crate::data::batch;
use crate::layers::{GlobalAvgPool, InputNorm};
use crate::{AffineQuantizer, ModelConfig, QuantizerRef};

fn images(n: usize, seed: u64) -> ImageSet {
    blobs(n, 1, 28, 10, seed)
}

/// `n` images `channels x side x side` of smooth blobs rather than noise (one per channel), so
/// activations look like images', labelled `0..classes` in turn.
fn blobs(n: usize, channels: usize, side: usize, classes: usize, seed: u64) -> ImageSet {
    let mut rng = crate::rng::Rng::new(seed);
    let mut px = Vec::with_capacity(n * channels * side * side);
    for _ in 0..n * channels {
        let (cy, cx) = (rng.uniform() * side as f64, rng.uniform() * side as f64);
        for y in 0..side {
            for x in 0..side {
                let d = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                px.push((255.0 * (-d / 40.0).exp()) as u8);
            }
        }
    }
    ImageSet {
        images: px,
        labels: (0..n).map(|i| (i % classes) as u8).collect(),
        channels,
        rows: side,
        cols: side,
        checksums: vec![],
    }
}

/// Gives the untrained `net` the paper's 8-bit affine quantizers, batch-norm statistics of `set`
/// (untrained nets otherwise run with unnormalized activations), then activation ranges from it.
fn quantize_untrained(net: &mut Net, set: &ImageSet, dev: &Device) {
    net.set_quantizers(
        Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
        Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
    );
    let idx: Vec<usize> = (0..set.len()).collect();
    let (x, _) = batch(set, &idx, dev);
    let bn_stats = Phase {
        bn_batch_stats: true,
        ..Phase::FLOAT_EVAL
    };
    for _ in 0..30 {
        net.forward(x.clone(), &bn_stats);
    }
    net.forward(x, &Phase::CALIBRATE);
}

/// Every architecture exports, and the engine reproduces the simulation's predictions. The nets
/// are untrained: their logits span a tiny range, so one-LSB rounding differences of early
/// layers are many logit LSBs (no LSB bound here); the 99.9 % / LSB acceptance check runs on
/// trained models in the integer-qat suite (E8).
#[test]
fn engine_matches_simulation_for_every_architecture() {
    let dev = Device::flex();
    let set = images(48, 5);
    for s in ["mlp:32", "cnn:8,8,8", "mbv1:0.25", "mbv2:0.25", "resnet8"] {
        let mut net = ModelConfig::new(s.parse().unwrap(), 2).build(&dev);
        quantize_untrained(&mut net, &set, &dev);
        for rounding in [RoundingMode::Double, RoundingMode::Single] {
            let int = export(&net, [1, 28, 28], rounding).unwrap();
            let a = check_agreement(&net, &int, &set, &dev).unwrap();
            assert_eq!((a.agreement, a.max_lsb), (1.0, 0), "{s}: {a:?}");
            // One image of 48 is 2.1 points, and argmax ties of untrained nets flip with the
            // float summation order of batch statistics (0.896 for mbv2 with f64 moments).
            assert!(a.fake_quant_agreement >= 0.85, "{s}: {a:?}");
            assert!(int.size_bytes() * 3 < float_size_bytes(&net), "{s}");
        }
        if s == "resnet8" {
            let nodes =
                node_agreement(&net, [1, 28, 28], &set, RoundingMode::Double, &dev).unwrap();
            assert_eq!(nodes.len(), net.blocks.len());
            for n in &nodes {
                assert_eq!(n.integer, (0.0, 0), "{n:?}");
                assert!(n.values > 0 && n.fake_quant_local.0 <= 0.05, "{n:?}");
            }
            assert_eq!(nodes.last().map(|n| n.kind), Some("fc"));
        }
    }
}

/// The integer simulation multiplies in f32 on integers; it must equal a wide-integer
/// reference at the extreme codes (zero points 0 and 255, weights +-254).
#[test]
fn integer_simulation_conv_is_exact_at_extremes() {
    let dev = Device::flex();
    let mut rng = crate::rng::Rng::new(3);
    let (ci, co) = (128, 4);
    let l = QLayer::conv(ci, co, 3, 1, 1, false, Activation::None, &mut rng, &dev);
    let w: Vec<i32> = (0..co * ci * 9)
        .map(|i| {
            if i % 7 == 0 {
                -254
            } else {
                254 - (i % 3) as i32
            }
        })
        .collect();
    let x = SimTensor {
        codes: (0..ci * 9)
            .map(|i| if i % 5 == 0 { 0 } else { 255 })
            .collect(),
        dims: [1, ci, 3, 3],
        params: QParams::new(0.1, 0, QRange::U8).unwrap(),
    };
    let wt = |f: fn(i32) -> i32| {
        let v: Vec<f32> = w.iter().map(|&v| f(v) as f32).collect();
        Tensor::<4>::from_data(TensorData::new(v, [co, ci, 3, 3]), &dev)
    };
    let xt = x.tensor(0, &dev);
    let hi = floats(l.apply_weight(xt.clone(), wt(|v| (v + 8).div_euclid(16)), None));
    let lo = floats(l.apply_weight(xt, wt(|v| v - 16 * (v + 8).div_euclid(16)), None));
    // Centre output of channel o: the full 3x3 window.
    for o in 0..co {
        let want: i64 = (0..ci * 9)
            .map(|j| i64::from(x.codes[j]) * i64::from(w[o * ci * 9 + j]))
            .sum();
        let idx = o * 9 + 4;
        let got = 16 * hi[idx] as i64 + lo[idx] as i64;
        assert_eq!(got, want, "channel {o}");
        assert!(
            want.abs() > 1 << 24,
            "the test must exceed f32's exact range"
        );
    }
}

#[test]
fn float_model_is_refused() {
    let dev = Device::flex();
    let net = ModelConfig::new("mlp:8".parse().unwrap(), 2).build(&dev);
    let e = export(&net, [1, 28, 28], RoundingMode::Double).unwrap_err();
    assert!(e.0.contains("AffineQuantizer"), "{e}");
}

/// The ImageNet models' input normalization exports as one code table per channel: the engine,
/// the integer simulation and the fake-quantized model agree on every code of the normalized
/// input (the first convolution's padding included, which the engine fills with the table's zero
/// point, the code of normalized 0) and on every logit; a normalization that is not the first
/// block is refused.
#[test]
fn input_normalization_exports_as_a_code_table() {
    let dev = Device::flex();
    let mut rng = crate::rng::Rng::new(9);
    let mut net = Net {
        blocks: vec![
            Block::InputNorm(InputNorm::imagenet(&dev)),
            Block::Layer(QLayer::conv(
                3,
                8,
                3,
                2,
                1,
                true,
                Activation::Relu,
                &mut rng,
                &dev,
            )),
            Block::GlobalAvgPool(GlobalAvgPool { enabled: true }),
            Block::Layer(QLayer::linear(
                8,
                4,
                false,
                Activation::None,
                &mut rng,
                &dev,
            )),
        ],
        classes: 4,
    };
    net.set_quantizers(
        Some(QuantizerRef::new(AffineQuantizer::weights(8).unwrap())),
        Some(QuantizerRef::new(AffineQuantizer::activations(8).unwrap())),
    );
    let set = blobs(40, 3, 12, 4, 4);
    let idx: Vec<usize> = (0..set.len()).collect();
    let (x, _) = batch(&set, &idx, &dev);
    net.forward(x, &Phase::CALIBRATE);
    let int = export(&net, [3, 12, 12], RoundingMode::Double).unwrap();
    assert!(matches!(
        int.model.spec().nodes[0].layer,
        Layer::CodeTable(_)
    ));
    let a = check_agreement(&net, &int, &set, &dev).unwrap();
    assert_eq!((a.agreement, a.max_lsb), (1.0, 0), "{a:?}");
    // The deployed size counts the three tables.
    let weights = 8 * 27 + 4 * 8;
    assert!(int.size_bytes() > 3 * 256 + weights, "{}", int.size_bytes());
    let nodes = node_agreement(&net, [3, 12, 12], &set, RoundingMode::Double, &dev).unwrap();
    assert_eq!(nodes[0].kind, "input normalization");
    assert_eq!(nodes[0].fake_quant, (0.0, 0), "{:?}", nodes[0]);
    for n in &nodes {
        assert_eq!(n.integer, (0.0, 0), "{n:?}");
    }

    net.blocks.swap(0, 1);
    let e = export(&net, [3, 12, 12], RoundingMode::Double).unwrap_err();
    assert!(e.0.contains("first block"), "{e}");
}

/// A full ImageNet architecture of the zoo (MobileNetV2: input normalization, inverted residuals,
/// global pooling), on small colour images, exports whole and the engine agrees with the integer
/// simulation on every logit code: the graph `integer-qat depth --profile paper` deploys.
#[test]
fn imagenet_architecture_exports_whole() {
    let dev = Device::flex();
    let mut config = ModelConfig::new("imagenet-mbv2:0.35".parse().unwrap(), 2);
    config.input = [3, 32, 32];
    config.classes = 5;
    let mut net = config.build(&dev);
    assert!(matches!(net.blocks[0], Block::InputNorm(_)));
    let set = blobs(24, 3, 32, 5, 6);
    quantize_untrained(&mut net, &set, &dev);
    let int = export(&net, [3, 32, 32], RoundingMode::Double).unwrap();
    let a = check_agreement(&net, &int, &set, &dev).unwrap();
    assert_eq!((a.agreement, a.max_lsb), (1.0, 0), "{a:?}");
}
