//! The integer-only graph computes what the fake-quantized Burn model computes: the same predictions
//! for (almost) every image, for every folding and granularity. A wrong scale, zero point, bias or
//! layout in the conversion drops agreement to chance. (An untrained net at sub-byte widths predicts
//! one class for everything, so these checks run at 8 bits; the packed sub-byte kernels are tested
//! bit-exact in quant-core, and the full run reports the trained sub-byte gaps.)

use burn::prelude::*;
use mixed_precision_mcu::deploy::{Folding, convert};
use mixed_precision_mcu::memory::{BitWidths, Granularity};
use mixed_precision_mcu::mobilenet::MobileNetV1;
use mixed_precision_mcu::qat::{build_net, calibrate_alphas, make_qat};
use quant_train::layers::Phase;
use quant_train::train::{argmax_rows, predict};
use repro::datasets::ImageSet;

fn images(n: usize, side: usize) -> ImageSet {
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 56) as u8
    };
    // Smooth-ish images: a random base level per image plus noise, so activations vary.
    let mut px = Vec::with_capacity(n * side * side);
    for _ in 0..n {
        let base = next() / 2;
        px.extend((0..side * side).map(|_| base.saturating_add(next() / 2)));
    }
    ImageSet {
        images: px,
        labels: vec![0; n],
        channels: 1,
        rows: side,
        cols: side,
        checksums: Vec::new(),
    }
}

fn agreement(w_bits: u8, a_bits: u8, g: Granularity, folding: Folding) -> f64 {
    let device = Device::flex();
    let model = MobileNetV1::tiny(16, 0.5, 8);
    let set = images(64, 16);
    let mut net = build_net(&model, 3, &device);
    let idx: Vec<usize> = (0..set.len()).collect();
    let (x, _) = quant_train::data::batch(&set, &idx, &device);
    let alphas = calibrate_alphas(&net, x);
    let mut b = BitWidths::uniform(model.layers().len(), a_bits);
    b.weights = vec![w_bits; b.weights.len()];
    make_qat(&mut net, &b, g, &alphas, &device);
    let fake = argmax_rows(&predict(&net, &set, 64, &Phase::EVAL, &device), 10);
    let mut classes = fake.clone();
    classes.sort_unstable();
    classes.dedup();
    assert!(
        classes.len() >= 3,
        "too few distinct predictions to test: {classes:?}"
    );
    let int = convert(&net, &model, &b, g, folding).unwrap();
    // The graph's own product count is the memory model's MAC count (padded taps included in
    // both); one multiply per output of every conv layer under FB and ICN (none under
    // thresholds) and per logit (the classifier always scales by multipliers).
    let (_, ops) = int.logits_counted(set.image(0)).unwrap();
    assert_eq!(ops.mul_8x8, model.macs(), "{g} {folding:?}");
    let outputs = |layers: &[mixed_precision_mcu::mobilenet::LayerShape]| -> u64 {
        layers.iter().map(|l| l.out_elems).sum()
    };
    let layers = model.layers();
    let (convs, fc) = layers.split_at(layers.len() - 1);
    let conv_requant = if folding == Folding::Thresholds {
        0
    } else {
        outputs(convs)
    };
    assert_eq!(ops.mul_32x32, conv_requant + outputs(fc), "{g} {folding:?}");
    let same = (0..set.len())
        .filter(|&i| int.predict(set.image(i)).unwrap() == fake[i])
        .count();
    same as f64 / set.len() as f64
}

#[test]
fn integer_graph_agrees_with_the_fake_quantized_model() {
    for (w, a, g, folding) in [
        (8, 8, Granularity::PerLayer, Folding::PerLayerFolding),
        (8, 8, Granularity::PerChannel, Folding::Icn),
        (8, 8, Granularity::PerChannel, Folding::Thresholds),
    ] {
        let agree = agreement(w, a, g, folding);
        assert!(agree >= 0.9, "w{w}a{a} {g} {folding:?}: agreement {agree}");
    }
}

#[test]
fn per_layer_folding_rejects_per_channel_weights() {
    let device = Device::flex();
    let model = MobileNetV1::tiny(16, 0.25, 8);
    let net = build_net(&model, 1, &device);
    let b = BitWidths::uniform(28, 8);
    let e = convert(
        &net,
        &model,
        &b,
        Granularity::PerChannel,
        Folding::PerLayerFolding,
    )
    .unwrap_err();
    assert!(e.contains("--granularity pl"), "{e}");
}
