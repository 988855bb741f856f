//! Checkpoint import into the full-size ImageNet models.
//!
//! Always: a safetensors file this test writes itself (every layer's tensors under the names the
//! model expects, with values that tell them apart) loads tensor for tensor, fully connected weights
//! reshaped, a `module.` prefix stripped; missing and misshapen tensors, other formats and proxy
//! models are errors naming what is wrong.
//!
//! With `QUANT_TORCH_REFERENCE=DIR` (written by `python3 scripts/torchvision_reference.py DIR`):
//! torchvision's own ResNet-18, ResNet-50 and MobileNetV2 checkpoints, as safetensors and as
//! PyTorch pickles, give the zoo's models torchvision's logits.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use quant_train::models::imagenet::LayerName;
use quant_train::{ModelConfig, Phase, pretrained};

/// The safetensors layout: 8-byte header length, JSON header, raw little-endian f32 bytes.
fn write_safetensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    let (mut header, mut data) = (Vec::new(), Vec::new());
    for (name, (shape, values)) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.push(format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    }
    let mut json = format!("{{{}}}", header.join(",")).into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend(json);
    file.extend(data);
    std::fs::write(path, file).unwrap();
}

fn config(spec: &str, side: usize) -> ModelConfig {
    let mut c = ModelConfig::new(spec.parse().unwrap(), 3);
    c.input = [3, side, side];
    c
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// The tensors a checkpoint of `spec` holds, named as the model expects, tensor `k` holding
/// `k + i / 1e6` at index `i`, with `prefix` before every key.
fn checkpoint_of(spec: &str, prefix: &str) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let (net, names) = config(spec, 32).build_named(&Device::flex());
    let mut out = BTreeMap::new();
    let mut add = |key: String, shape: Vec<usize>| {
        let k = out.len() as f32;
        let n: usize = shape.iter().product();
        let v = (0..n).map(|i| k + i as f32 / 1e6).collect();
        out.insert(format!("{prefix}{key}"), (shape, v));
    };
    for (layer, name) in net.layers().iter().zip(&names) {
        let w = layer.weight.val().dims();
        match name {
            LayerName::ConvBn { conv, bn } => {
                add(format!("{conv}.weight"), w.to_vec());
                for stat in ["weight", "bias", "running_mean", "running_var"] {
                    add(format!("{bn}.{stat}"), vec![w[0]]);
                }
            }
            LayerName::Linear(p) => {
                add(format!("{p}.weight"), vec![w[0], w[1] * w[2] * w[3]]);
                add(format!("{p}.bias"), vec![w[0]]);
            }
        }
    }
    out
}

#[test]
fn every_tensor_lands_in_its_layer() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "imagenet-mbv2:0.35";
    let written = checkpoint_of(spec, "module.");
    let path = dir.path().join("mbv2.safetensors");
    write_safetensors(&path, &written);
    let dev = Device::flex();
    let net = pretrained::load(&config(spec, 32), &path, &dev).unwrap();
    let (_, names) = config(spec, 32).build_named(&dev);
    let expect = |key: &str| &written[&format!("module.{key}")].1;
    for (layer, name) in net.layers().iter().zip(&names) {
        match name {
            LayerName::ConvBn { conv, bn } => {
                let state = layer.bn.as_ref().unwrap();
                assert_eq!(
                    values(layer.weight.val()),
                    *expect(&format!("{conv}.weight"))
                );
                assert_eq!(values(state.gamma.val()), *expect(&format!("{bn}.weight")));
                assert_eq!(values(state.beta.val()), *expect(&format!("{bn}.bias")));
                let mean = state.running_mean.value_sync();
                assert_eq!(values(mean), *expect(&format!("{bn}.running_mean")));
                let var = state.running_var.value_sync();
                assert_eq!(values(var), *expect(&format!("{bn}.running_var")));
            }
            LayerName::Linear(p) => {
                assert_eq!(values(layer.weight.val()), *expect(&format!("{p}.weight")));
                let bias = layer.bias.as_ref().unwrap().val();
                assert_eq!(values(bias), *expect(&format!("{p}.bias")));
            }
        }
    }
}

#[test]
fn wrong_checkpoints_and_models_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    let spec = "imagenet-mbv2:0.35";
    let path = dir.path().join("ckpt.safetensors");
    let mut tensors = checkpoint_of(spec, "");
    tensors.remove("features.3.conv.1.1.running_var");
    write_safetensors(&path, &tensors);
    let err = pretrained::load(&config(spec, 32), &path, &dev).unwrap_err();
    assert!(
        err.contains("no tensor features.3.conv.1.1.running_var"),
        "{err}"
    );

    // A 1000-class checkpoint for a 10-class model.
    let mut thousand = config(spec, 32);
    thousand.classes = 1000;
    let (big, _) = thousand.build_named(&dev);
    let tensors = checkpoint_of(spec, "");
    let mut tensors = tensors;
    let fc = big.layers().last().unwrap().weight.val().dims();
    tensors.insert(
        "classifier.1.weight".into(),
        (vec![1000, fc[1]], vec![0.0; 1000 * fc[1]]),
    );
    write_safetensors(&path, &tensors);
    let err = pretrained::load(&config(spec, 32), &path, &dev).unwrap_err();
    assert!(err.contains("classifier.1.weight is [1000"), "{err}");

    let err = pretrained::load(&config("mbv1:0.5", 32), &path, &dev).unwrap_err();
    assert!(err.contains("full-size ImageNet models"), "{err}");
    let other = dir.path().join("weights.npz");
    std::fs::write(&other, b"x").unwrap();
    let err = pretrained::load(&config(spec, 32), &other, &dev).unwrap_err();
    assert!(err.contains(".safetensors, .pth"), "{err}");
    std::fs::write(&path, b"truncated").unwrap();
    assert!(pretrained::load(&config(spec, 32), &path, &dev).is_err());
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn torchvision_checkpoints_give_torchvision_logits() {
    let Some(dir) = std::env::var_os("QUANT_TORCH_REFERENCE") else {
        eprintln!(
            "SKIPPED: set QUANT_TORCH_REFERENCE to the folder `python3 \
             scripts/torchvision_reference.py DIR` wrote"
        );
        return;
    };
    let dir = Path::new(&dir);
    let dev = Device::flex();
    let input = read_f32(&dir.join("input.f32"));
    for (arch, spec) in [
        ("resnet18", "imagenet-resnet18"),
        ("resnet50", "imagenet-resnet50"),
        ("mobilenet_v2", "imagenet-mbv2:0.5"),
    ] {
        let expected = read_f32(&dir.join(format!("{arch}.logits.f32")));
        for format in ["safetensors", "pth"] {
            let path = dir.join(format!("{arch}.{format}"));
            let net = pretrained::load(&config(spec, 64), &path, &dev).unwrap();
            let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [2, 3, 64, 64]), &dev);
            let got = values(net.forward(x, &Phase::EVAL));
            let worst = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                .fold(0.0f32, f32::max);
            eprintln!("{arch} from {format}: largest relative logit difference {worst:e}");
            assert!(worst < 1e-3, "{arch} {format}: {got:?} vs {expected:?}");
        }
    }
}

#[test]
fn a_saved_model_loads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    let path = dir.path().join("resnet18.safetensors");
    let trained = config("imagenet-resnet18", 32).build(&dev);
    pretrained::save(&config("imagenet-resnet18", 32), &trained, &path).unwrap();
    let mut other = config("imagenet-resnet18", 32);
    other.seed = 99;
    let loaded = pretrained::load(&other, &path, &dev).unwrap();
    for (a, b) in trained.layers().iter().zip(loaded.layers()) {
        assert_eq!(values(a.weight.val()), values(b.weight.val()));
    }
    let err = pretrained::save(&config("resnet18", 32), &trained, &path).unwrap_err();
    assert!(err.contains("published layout"), "{err}");
}
