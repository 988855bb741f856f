//! The one list of models the benchmark times: every architecture the papers' experiments train in
//! Burn, at the sizes of their `full` profiles, read from each paper crate's own plan so the list
//! cannot drift from what the reproductions run.
//!
//! A model's key names its architecture and input side (`resnet8@14`, `cnn:8-16-32@28`,
//! `f8net-mobilenetv1:0.5@28`, `tinymbv1-b8:0.75@28`, `row-transformer@28`): a zoo model is its
//! `ModelSpec` with `-` for the commas between widths (keys stay single CSV cells and
//! comma-separated lists of keys stay unambiguous). `scripts/bench_torch_train.py` builds the same
//! architecture in PyTorch from the key, so the grammar below is shared with that script.

use clap::ValueEnum;
use mixed_precision_mcu::mobilenet::MobileNetV1;
use quant_train::ModelSpec;
use repro::datasets::DatasetName;

/// The paper (crate) whose experiments train a model; it decides the recipes and QAT modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    IntegerQat,
    PocketNn,
    AdaptivFloat,
    F8Net,
    MixedPrecisionMcu,
}

impl Paper {
    /// The crate's name, as in `results/<paper>/`.
    pub fn name(self) -> &'static str {
        match self {
            Paper::IntegerQat => "integer-qat",
            Paper::PocketNn => "pocketnn",
            Paper::AdaptivFloat => "adaptivfloat",
            Paper::F8Net => "f8net",
            Paper::MixedPrecisionMcu => "mixed-precision-mcu",
        }
    }

    /// Float training first, then the paper's own quantization-aware training modes.
    pub fn modes(self) -> &'static [Mode] {
        match self {
            Paper::IntegerQat => &[Mode::Fp, Mode::JacobQat],
            // PocketNN trains integer-only outside Burn; only its float baseline trains here.
            Paper::PocketNn => &[Mode::Fp],
            Paper::AdaptivFloat => &[Mode::Fp, Mode::AdaptivFloatQar],
            Paper::F8Net => &[Mode::Fp, Mode::F8Net, Mode::Int8Jacob],
            Paper::MixedPrecisionMcu => &[Mode::Fp, Mode::RusciQat],
        }
    }
}

/// What one timed training step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Float training with the paper's float recipe (F8Net: its PACT-clipped float model).
    Fp,
    /// Jacob et al.: 8-bit affine fake quantization of weights and activations, EMA ranges.
    JacobQat,
    /// F8Net: fixed-point 8-bit fake quantization, fractional lengths from standard deviations.
    F8Net,
    /// F8Net's conventional INT8 baseline (Jacob's affine quantizers on the same graph).
    Int8Jacob,
    /// Rusci et al.: PACT floor activations and min/max weights at the mixed bits of the MixPC
    /// assignment.
    RusciQat,
    /// AdaptivFloat: quantization-aware retraining, 8-bit AdaptivFloat weights and activations.
    AdaptivFloatQar,
}

impl Mode {
    /// The `mode` column.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fp => "fp",
            Mode::JacobQat => "jacob-qat",
            Mode::F8Net => "f8net",
            Mode::Int8Jacob => "int8-jacob",
            Mode::RusciQat => "rusci-qat",
            Mode::AdaptivFloatQar => "adaptivfloat-qar",
        }
    }
}

/// An architecture with everything needed to build it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arch {
    /// A quant-train zoo model on a square grey input.
    Zoo(ModelSpec),
    /// An F8Net proxy graph at a channel-width multiplier.
    F8NetProxy(f8net::graph::Arch, f64),
    /// The mixed-precision TinyMbV1.
    TinyMbV1(MobileNetV1),
    /// AdaptivFloat's row-token Transformer.
    RowTransformer,
}

/// One benchmarked model.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchModel {
    pub key: String,
    pub paper: Paper,
    pub arch: Arch,
    /// Input side in pixels (one channel, square).
    pub side: usize,
}

impl BenchModel {
    fn new(paper: Paper, arch: Arch, side: usize) -> Self {
        let name = match &arch {
            Arch::Zoo(spec) => spec.to_string().replace(',', "-"),
            Arch::F8NetProxy(a, width) => {
                let name = a.to_possible_value().map(|v| v.get_name().to_string());
                format!("f8net-{}:{width}", name.unwrap_or_default())
            }
            Arch::TinyMbV1(m) => format!("tinymbv1-b{}:{}", m.base_channels, m.width),
            Arch::RowTransformer => "row-transformer".into(),
        };
        BenchModel {
            key: format!("{name}@{side}"),
            paper,
            arch,
            side,
        }
    }
}

/// Every model of every paper, in paper order.
pub fn catalog() -> Result<Vec<BenchModel>, String> {
    let mut models = Vec::new();
    let sizes = integer_qat::recipe::Sizes::of(repro::Profile::Full);
    for (spec, side) in sizes.trained_models()? {
        models.push(BenchModel::new(Paper::IntegerQat, Arch::Zoo(spec), side));
    }
    for dataset in [DatasetName::Mnist, DatasetName::FashionMnist] {
        let widths = pocketnn::tables::paper_widths(dataset);
        let hidden = widths[1..widths.len() - 1].to_vec();
        models.push(BenchModel::new(
            Paper::PocketNn,
            Arch::Zoo(ModelSpec::Mlp(hidden)),
            28,
        ));
    }
    for proxy in [
        adaptivfloat::accuracy::Proxy::Mlp,
        adaptivfloat::accuracy::Proxy::Cnn,
    ] {
        let spec = proxy
            .net_spec()
            .ok_or("AdaptivFloat's MLP and CNN are zoo models")?;
        models.push(BenchModel::new(Paper::AdaptivFloat, Arch::Zoo(spec), 28));
    }
    models.push(BenchModel::new(
        Paper::AdaptivFloat,
        Arch::RowTransformer,
        28,
    ));
    let plan = f8net::experiments::StagePlan::new(repro::Profile::Full, None, None);
    for &arch in f8net::graph::Arch::value_variants() {
        let proxy = Arch::F8NetProxy(arch, plan.width(arch));
        models.push(BenchModel::new(Paper::F8Net, proxy, 28));
    }
    let mcu = mixed_precision_mcu::experiments::QatPlan::full(0);
    let mut configs = mcu.configs.clone();
    if !configs.contains(&mcu.e3_config) {
        configs.push(mcu.e3_config);
    }
    for (side, width) in configs {
        let model = MobileNetV1::tiny(side, width, mcu.base_channels);
        models.push(BenchModel::new(
            Paper::MixedPrecisionMcu,
            Arch::TinyMbV1(model),
            side,
        ));
    }
    Ok(models)
}

/// The models whose keys are in `keys` (all when empty); an unknown key is an error that lists
/// the known ones.
pub fn select(models: Vec<BenchModel>, keys: &[String]) -> Result<Vec<BenchModel>, String> {
    if let Some(bad) = keys.iter().find(|k| !models.iter().any(|m| &m.key == *k)) {
        let known: Vec<&str> = models.iter().map(|m| m.key.as_str()).collect();
        return Err(format!(
            "--models {bad}: no such model; use one of {}",
            known.join(" ")
        ));
    }
    Ok(models
        .into_iter()
        .filter(|m| keys.is_empty() || keys.contains(&m.key))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_name_every_paper() {
        let models = catalog().unwrap();
        let mut keys: Vec<&str> = models.iter().map(|m| m.key.as_str()).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate keys");
        for paper in [
            Paper::IntegerQat,
            Paper::PocketNn,
            Paper::AdaptivFloat,
            Paper::F8Net,
            Paper::MixedPrecisionMcu,
        ] {
            assert!(models.iter().any(|m| m.paper == paper), "{paper:?}");
        }
        for key in [
            "resnet20@14",
            "cnn:8-16-32@28",
            "mbv1:0.5@16",
            "mlp:200-100-50@28",
            "f8net-resnet50:0.75@28",
            "tinymbv1-b8:0.75@28",
            "row-transformer@28",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn selection_keeps_order_and_refuses_unknown_keys() {
        let all = catalog().unwrap();
        let picked = select(
            all.clone(),
            &["row-transformer@28".into(), "resnet8@14".into()],
        );
        let keys: Vec<String> = picked.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(keys, ["resnet8@14", "row-transformer@28"]);
        let e = select(all, &["vgg@28".into()]).unwrap_err();
        assert!(e.starts_with("--models vgg@28: no such model"), "{e}");
    }
}
