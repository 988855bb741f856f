//! Published checkpoints loaded into the zoo's full-size ImageNet models: torchvision's ResNet-18,
//! ResNet-50 and MobileNetV2 weights (and any checkpoint that names its layers alike), read through
//! Burn's own stores, so the papers' rows that start from a pretrained network (AdaptivFloat's
//! ResNet-50 post-training quantization, F8Net's tiny fine-tuning, the 8-bit baselines of Jacob et
//! al. and Rusci et al.) start from the published one.
//!
//! Files: safetensors (`.safetensors`) and PyTorch pickles (`.pth`, `.pt`, `.bin`: a state dict,
//! at the top level or under `state_dict` / `model`). Keys may carry the `module.` prefix that
//! `DataParallel` adds. Every layer of the model must find its tensors with the shape it has (a
//! fully connected weight `[out, in]`); a missing or misshapen tensor is an error that names it.
//! Batch-norm statistics load as they are: torchvision's ε (1e-5) and momentum (0.1) are the zoo's.
//!
//! [`save`] writes a model back in the same layout (safetensors), for PyTorch users of a model
//! trained or fine-tuned here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Param, RunningState};
use burn::prelude::*;
use burn::store::{ModuleStore, PytorchStore, SafetensorsStore};

use repro::cli::RunArgs;
use repro::examples::Examples;
use repro::image_folder::ImageFolder;

use crate::models::imagenet::LayerName;
use crate::{ModelConfig, ModelSpec, Net, Phase, QLayer};

/// The tensors of a checkpoint as f32 values and shapes, by key (`module.` stripped).
pub type Tensors = BTreeMap<String, (Vec<f32>, Vec<usize>)>;

/// The manifest entry of the checkpoint at `path`: its path and SHA-256.
pub fn checksum(path: &Path) -> Result<(String, String), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path.display().to_string(), repro::idx::hex_sha256(&bytes)))
}

/// What a paper-scale run's manifest records of its inputs: the checkpoint's path and SHA-256 (if
/// one), and for each `(label, split)` a digest of the image folder's listing (paths, sizes, labels).
pub fn input_checksums(
    checkpoint: Option<&Path>,
    splits: &[(&str, &ImageFolder)],
) -> Result<Vec<(String, String)>, String> {
    let mut all: Vec<(String, String)> =
        checkpoint.map(checksum).transpose()?.into_iter().collect();
    all.extend(
        splits
            .iter()
            .map(|(label, split)| (label.to_string(), split.listing_sha256())),
    );
    Ok(all)
}

/// What a paper-scale run starts from: ImageNet's two splits and a published float checkpoint.
pub struct PaperInputs {
    /// `<root>/train/<synset>/*.JPEG`, streamed with the training crops.
    pub train: ImageFolder,
    /// `<root>/val/<synset>/*.JPEG`, scored with the evaluation crop.
    pub val: ImageFolder,
    /// The float checkpoint (torchvision's layout).
    pub checkpoint: PathBuf,
}

impl PaperInputs {
    /// The ImageNet folder of `--data` and the checkpoint of `--pretrained`, images `side` pixels
    /// a side; the error names the missing flag, and `weights` what the checkpoint should hold.
    pub fn from_args(args: &RunArgs, side: usize, weights: &str) -> Result<Self, String> {
        imagenet_root(args)?;
        let checkpoint = args.pretrained.clone().ok_or(format!(
            "--profile paper: pass --pretrained with the float checkpoint ({weights}, .pth or \
             .safetensors)"
        ))?;
        let (train, val) = imagenet_folders(args, side)?;
        Ok(PaperInputs {
            train,
            val,
            checkpoint,
        })
    }

    /// What the manifest records of the inputs: the checkpoint's SHA-256 and digests of the two
    /// splits' listings (paths, sizes, labels).
    pub fn checksums(&self) -> Result<Vec<(String, String)>, String> {
        input_checksums(
            Some(&self.checkpoint),
            &[
                ("ImageNet training listing", &self.train),
                ("ImageNet validation listing", &self.val),
            ],
        )
    }
}

/// The ImageNet folder of `--data`, or the error asking for it.
fn imagenet_root(args: &RunArgs) -> Result<&Path, String> {
    args.data.as_deref().ok_or(
        "--profile paper: pass --data with the ImageNet folder (train/ and val/ with one folder \
         per synset inside)"
            .into(),
    )
}

/// ImageNet's training and validation folders under `--data`, images `side` pixels a side.
pub fn imagenet_folders(args: &RunArgs, side: usize) -> Result<(ImageFolder, ImageFolder), String> {
    let root = imagenet_root(args)?;
    Ok((
        ImageFolder::open(root, "train", 3, side)?,
        ImageFolder::open(root, "val", 3, side)?,
    ))
}

/// The zoo's `spec` model for `val`'s images and classes with the weights of `checkpoint`, and
/// its float top-1 (%) on `val`.
pub fn scored_float(
    checkpoint: &Path,
    spec: ModelSpec,
    val: &ImageFolder,
    seed: u64,
    device: &Device,
) -> Result<(Net, f64), String> {
    let mut config = ModelConfig::new(spec, seed);
    config.input = val.shape();
    config.classes = val.classes.len();
    let float = load(&config, checkpoint, device)?;
    let top1 = crate::score(&float, val, 64, &Phase::FLOAT_EVAL, device, "float")
        .map_err(|e| e.to_string())?;
    eprintln!("float top-1 {top1:.2}%");
    Ok((float, top1))
}

/// Builds `config`'s model on `device` with the weights of the checkpoint at `path`.
pub fn load(config: &ModelConfig, path: &Path, device: &Device) -> Result<Net, String> {
    let (mut net, names) = config.build_named(device);
    if names.is_empty() {
        return Err(format!(
            "{}: published checkpoints fit the full-size ImageNet models only: use \
             imagenet-resnet18, imagenet-resnet50 or imagenet-mbv2:α",
            config.spec
        ));
    }
    let tensors = read_tensors(path)?;
    let mut failure = None;
    net.map_layers(|i, layer| {
        if failure.is_none() {
            failure = assign(layer, &names[i], &tensors, device).err();
        }
    });
    match failure {
        Some(e) => Err(format!("{}: {e}", path.display())),
        None => Ok(net),
    }
}

/// Writes `net` (built from `config`) as a safetensors file of f32 tensors under the names
/// [`load`] reads: torchvision's for its architectures.
pub fn save(config: &ModelConfig, net: &Net, path: &Path) -> Result<(), String> {
    let (_, names) = config.build_named(&Device::flex());
    let layers = net.layers();
    if names.is_empty() || names.len() != layers.len() {
        return Err(format!(
            "{}: only the full-size ImageNet models built from this configuration have a published \
             layout: save imagenet-resnet18, imagenet-resnet50 or imagenet-mbv2:α",
            config.spec
        ));
    }
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut failure = None;
    let mut add = |key: String, t: Tensor<1>, shape: Vec<usize>| match t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
    {
        Ok(values) => tensors.push((key, shape, values)),
        Err(e) => failure = Some(format!("tensor {key} is not readable as f32 ({e:?})")),
    };
    for (layer, name) in layers.iter().zip(&names) {
        let w = layer.weight.val();
        let dims = w.dims();
        let flat = w.flatten::<1>(0, 3);
        match (name, &layer.bn, &layer.bias) {
            (LayerName::ConvBn { conv, bn }, Some(state), _) => {
                add(format!("{conv}.weight"), flat, dims.to_vec());
                add(format!("{bn}.weight"), state.gamma.val(), vec![dims[0]]);
                add(format!("{bn}.bias"), state.beta.val(), vec![dims[0]]);
                let (mean, var) = (
                    state.running_mean.value_sync(),
                    state.running_var.value_sync(),
                );
                add(format!("{bn}.running_mean"), mean, vec![dims[0]]);
                add(format!("{bn}.running_var"), var, vec![dims[0]]);
            }
            (LayerName::Linear(prefix), _, Some(bias)) => {
                add(
                    format!("{prefix}.weight"),
                    flat,
                    vec![dims[0], dims[1] * dims[2] * dims[3]],
                );
                add(format!("{prefix}.bias"), bias.val(), vec![dims[0]]);
            }
            _ => return Err(format!("layer {name:?} does not match the model's layer")),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    write_safetensors(path, tensors)
}

/// Writes `(key, shape, values)` tensors as a safetensors file of f32 tensors.
fn write_safetensors(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
) -> Result<(), String> {
    // The safetensors layout: an 8-byte little-endian header length, the JSON header (dtype,
    // shape and byte range of each tensor), then the raw little-endian bytes.
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (key, shape, values) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            key,
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend(json);
    file.extend(data);
    std::fs::write(path, file).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every tensor of the checkpoint at `path` (safetensors or a PyTorch pickle), converted to f32,
/// the `state_dict.`, `model.` and `module.` prefixes stripped.
pub fn read_tensors(path: &Path) -> Result<Tensors, String> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut tensors = match extension.as_str() {
        // Keys as the file has them: Burn's stores would otherwise renumber the layers of a
        // sequential container contiguously (torchvision's `classifier.1` after a dropout became
        // `classifier.0`).
        "safetensors" => convert(
            SafetensorsStore::from_file(path)
                .map_indices_contiguous(false)
                .get_all_tensors(),
        ),
        "pth" | "pt" | "bin" => convert(
            PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .get_all_tensors(),
        ),
        _ => Err(
            "not a checkpoint this suite reads: give a .safetensors, .pth, .pt or .bin file".into(),
        ),
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    if tensors.is_empty() {
        return Err(format!(
            "{}: the checkpoint holds no tensors",
            path.display()
        ));
    }
    // A state dict saved inside a training checkpoint, or from a `DataParallel` model.
    while let Some(prefix) = ["state_dict.", "model.", "module."]
        .into_iter()
        .find(|p| tensors.keys().all(|k| k.starts_with(p)))
    {
        tensors = tensors
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_string(), v))
            .collect();
    }
    Ok(tensors)
}

/// The store's tensors as f32, or its error as a sentence.
fn convert<E: std::fmt::Display>(
    all: Result<&BTreeMap<String, burn::store::burn_pack::Tensor>, E>,
) -> Result<Tensors, String> {
    let all =
        all.map_err(|e| format!("unreadable checkpoint ({e}): check the file is complete"))?;
    all.iter()
        .map(|(name, t)| {
            let bytes = t
                .to_bytes()
                .map_err(|e| format!("tensor {name} is unreadable ({e})"))?;
            let shape: Vec<usize> = t.shape.iter().copied().collect();
            let data = TensorData::from_bytes(bytes, shape.clone(), t.dtype).convert::<f32>();
            let values = data
                .try_into_vec::<f32>()
                .map_err(|e| format!("tensor {name} is not numeric ({e:?})"))?;
            Ok((name.clone(), (values, shape)))
        })
        .collect()
}

/// The values of tensor `key`, which the checkpoint must hold with the shape `expected`.
pub fn tensor<'a>(
    tensors: &'a Tensors,
    key: &str,
    expected: &[usize],
) -> Result<&'a [f32], String> {
    let (values, found) = tensors
        .get(key)
        .ok_or_else(|| format!("no tensor {key}: the checkpoint is not of this architecture"))?;
    if found.as_slice() != expected {
        return Err(format!(
            "tensor {key} is {found:?}, the model's is {expected:?}: the checkpoint is of another \
             architecture, width or class count"
        ));
    }
    Ok(values)
}

/// The tensor `key`, which the checkpoint must hold with the shape `expected`, as the model's `shape`.
fn take<const D: usize>(
    tensors: &Tensors,
    key: &str,
    shape: [usize; D],
    expected: &[usize],
    device: &Device,
) -> Result<Tensor<D>, String> {
    let values = tensor(tensors, key, expected)?;
    Ok(Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        device,
    ))
}

/// Loads one layer's tensors.
fn assign(
    layer: &mut QLayer,
    name: &LayerName,
    tensors: &Tensors,
    device: &Device,
) -> Result<(), String> {
    let w = layer.weight.val().dims();
    match name {
        LayerName::ConvBn { conv, bn } => {
            let Some(state) = layer.bn.as_mut() else {
                return Err(format!("layer {conv} has no batch norm in the model"));
            };
            let c = [w[0]];
            layer.weight =
                Param::from_tensor(take(tensors, &format!("{conv}.weight"), w, &w, device)?);
            state.gamma =
                Param::from_tensor(take(tensors, &format!("{bn}.weight"), c, &c, device)?);
            state.beta = Param::from_tensor(take(tensors, &format!("{bn}.bias"), c, &c, device)?);
            state.running_mean =
                RunningState::new(take(tensors, &format!("{bn}.running_mean"), c, &c, device)?);
            state.running_var =
                RunningState::new(take(tensors, &format!("{bn}.running_var"), c, &c, device)?);
        }
        LayerName::Linear(prefix) => {
            layer.weight = Param::from_tensor(take(
                tensors,
                &format!("{prefix}.weight"),
                w,
                &[w[0], w[1] * w[2] * w[3]],
                device,
            )?);
            layer.bias = Some(Param::from_tensor(take(
                tensors,
                &format!("{prefix}.bias"),
                [w[0]],
                &[w[0]],
                device,
            )?));
        }
    }
    Ok(())
}
