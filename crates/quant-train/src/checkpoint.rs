//! Training checkpoints: keyed by everything that determines them, written atomically.
//!
//! A checkpoint may only be resumed by a run that would have produced it. Its key is a SHA-256 over
//! the training configuration, the exact training data (pixels, labels and shape of the slice
//! actually trained on, so other files under the same folder name, another slice or a relabelled copy
//! all miss) and the starting model (its parameters and running state, layer kinds, activations and
//! quantizers). The key names the checkpoint folder, so a run never even opens another run's files.
//!
//! A checkpoint is one folder (`model.bpk`, `optim.bpk`, `meta.json`) that is written under a
//! temporary name and renamed into place; the previous epoch's folder is moved aside first and removed
//! after. A crash leaves either a complete checkpoint or none (then training starts over and, being
//! deterministic, produces the same model), never a model from one epoch with the metadata of another.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::prelude::Tensor;
use repro::examples::Examples;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::models::{Block, Net};
use crate::train::{TrainError, TrainReport};

/// What `meta.json` records beside the model and optimizer state.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The key the folder name carries, checked again on load.
    pub key: String,
    /// The training configuration the key was made from (the caller's type, as JSON).
    pub config: serde_json::Value,
    pub epochs_done: u32,
    pub report: Option<TrainReport>,
    /// State the caller keeps outside the module (statistics that are not parameters), as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
}

/// The checkpoint of one training run: `<prefix>-<key>/`.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
    key: String,
}

/// The state training continues from: the saved one, or the fresh one after 0 epochs.
pub struct Resumed<M> {
    pub model: M,
    pub optim: ModuleOptimizer,
    pub epochs_done: u32,
    pub report: Option<TrainReport>,
    /// What [`Checkpoint::save`] was given as `extra`.
    pub extra: Option<serde_json::Value>,
}

impl Checkpoint {
    /// The checkpoint of training `model` on `data` with `config`, under the path prefix `prefix`;
    /// `structure` describes what the module record leaves out (layer kinds, activations,
    /// quantizers: [`net_structure`] for quant-train's models).
    pub fn new<M: Module>(
        prefix: &Path,
        model: &M,
        structure: &str,
        data: &dyn Examples,
        config: &impl Serialize,
    ) -> Result<Self, TrainError> {
        let key = key(model, structure, data, config)?;
        let name = prefix.file_name().unwrap_or_default().to_string_lossy();
        let dir = prefix.with_file_name(format!("{name}-{}", &key[..16]));
        Ok(Checkpoint { dir, key })
    }

    /// The folder this checkpoint lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state saved by an earlier run with the same key loaded into the freshly built `model` and
    /// `optim`, or those unchanged (0 epochs done) when there is none.
    pub fn resume<M: Module>(
        &self,
        model: M,
        optim: ModuleOptimizer,
    ) -> Result<Resumed<M>, TrainError> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("meta.json")) else {
            return Ok(Resumed {
                model,
                optim,
                epochs_done: 0,
                report: None,
                extra: None,
            });
        };
        let fail = |e: &dyn std::fmt::Display| {
            TrainError(format!(
                "checkpoint {} unreadable ({e}): delete that folder to start over",
                self.dir.display()
            ))
        };
        let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| fail(&e))?;
        if meta.key != self.key {
            return Err(fail(&"its key differs from its folder name"));
        }
        let model = model
            .try_load_file(self.dir.join("model.bpk"))
            .map_err(|e| fail(&e))?;
        let optim = optim
            .load(self.dir.join("optim.bpk"))
            .map_err(|e| fail(&e))?;
        Ok(Resumed {
            model,
            optim,
            epochs_done: meta.epochs_done,
            report: meta.report,
            extra: meta.extra,
        })
    }

    /// Replaces the checkpoint with the state after `epochs_done` epochs, atomically; `extra` is
    /// the caller's state outside the module.
    #[allow(clippy::too_many_arguments)]
    pub fn save<M: Module>(
        &self,
        model: &M,
        optim: &ModuleOptimizer,
        config: &impl Serialize,
        epochs_done: u32,
        report: &TrainReport,
        extra: Option<serde_json::Value>,
    ) -> Result<(), TrainError> {
        let err = |e: &dyn std::fmt::Display| {
            TrainError(format!(
                "cannot write checkpoint {} ({e}): check the folder is writable",
                self.dir.display()
            ))
        };
        let pid = std::process::id();
        let sibling = |what: &str| {
            let name = self.dir.file_name().unwrap_or_default().to_string_lossy();
            self.dir.with_file_name(format!(".{name}.{what}-{pid}"))
        };
        let tmp = sibling("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| err(&e))?;
        // `valid()` folds the per-thread running-state updates (BN statistics, range observers)
        // into the saved values; a plain clone would save them one step stale.
        model
            .valid()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| err(&e))?;
        optim.save(tmp.join("optim.bpk")).map_err(|e| err(&e))?;
        let meta = CheckpointMeta {
            key: self.key.clone(),
            config: serde_json::to_value(config).map_err(|e| err(&e))?,
            epochs_done,
            report: Some(report.clone()),
            extra,
        };
        let text = serde_json::to_string_pretty(&meta).map_err(|e| err(&e))?;
        std::fs::write(tmp.join("meta.json"), text).map_err(|e| err(&e))?;
        let old = sibling("old");
        let _ = std::fs::remove_dir_all(&old);
        if self.dir.exists() {
            std::fs::rename(&self.dir, &old).map_err(|e| err(&e))?;
        }
        std::fs::rename(&tmp, &self.dir).map_err(|e| err(&e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }
}

/// SHA-256 (hex) over the configuration, the training data and the starting model.
fn key<M: Module>(
    model: &M,
    structure: &str,
    data: &dyn Examples,
    config: &impl Serialize,
) -> Result<String, TrainError> {
    let mut h = Sha256::new();
    let mut field = |name: &str, bytes: &[u8]| {
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let config = serde_json::to_vec(config).map_err(|e| TrainError(e.to_string()))?;
    field("config", &config);
    data.identify(&mut field);
    let mut values = ValueHasher {
        hash: Sha256::new(),
        path: Vec::new(),
    };
    model.visit(&mut values);
    field("parameters", &values.hash.finalize());
    field("structure", structure.as_bytes());
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Hashes every float tensor of a module (parameters and running state) with its module path. Not
/// the module record: that also holds the parameters' random ids, which differ between two builds
/// of the same model.
struct ValueHasher {
    hash: Sha256,
    path: Vec<String>,
}

impl ModuleVisitor for ValueHasher {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        self.hash.update(self.path.join(".").as_bytes());
        for d in tensor.dims() {
            self.hash.update((d as u64).to_le_bytes());
        }
        let values = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        for v in values {
            self.hash.update(v.to_le_bytes());
        }
    }
}

/// `name` with every character but ASCII letters, digits, `-` and `.` replaced by `_`: a run's
/// label (which may hold spaces, `<`, `>` and `,`, as format labels do) as a checkpoint prefix.
pub fn file_name(name: &str) -> String {
    name.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                true => c,
                false => '_',
            },
        )
        .collect()
}

/// What the module record of a quant-train model leaves out: layer kinds, activations and
/// quantizers, block by block.
pub fn net_structure(model: &Net) -> String {
    let layer = |l: &crate::layers::QLayer| {
        // Written only when set, so the keys of checkpoints without them stay what they were.
        let params = l
            .param_quantizer
            .as_ref()
            .map(|q| format!(" params={q:?}"))
            .unwrap_or_default();
        let unfolded = if l.unfolded_weights { " unfolded" } else { "" };
        let learned = l
            .learned_range
            .as_ref()
            .map(|r| format!(" learned-range decay={}", r.decay))
            .unwrap_or_default();
        format!(
            "{:?} w={:?}{unfolded}{learned} act={:?} out={:?}{params}",
            l.kind, l.weight_quantizer, l.output.activation, l.output.quantizer
        )
    };
    let mut out = format!("classes={}", model.classes);
    for b in &model.blocks {
        let s = match b {
            Block::Layer(l) => layer(l),
            // Tiling pools keep the spelling of checkpoints written before pools had strides.
            Block::MaxPool(p) if p.tiles() => format!("maxpool {}", p.size),
            Block::MaxPool(p) => format!("maxpool {}/{}+{}", p.size, p.stride, p.padding),
            Block::GlobalAvgPool(_) => "gap".to_string(),
            Block::InputNorm(_) => "input-norm".to_string(),
            Block::Residual(r) => {
                let body: Vec<String> = r.body.iter().map(layer).collect();
                format!(
                    "residual [{}] short={:?} add act={:?} out={:?}",
                    body.join("; "),
                    r.shortcut.as_ref().map(layer),
                    r.add.output.activation,
                    r.add.output.quantizer
                )
            }
        };
        out.push('\n');
        out.push_str(&s);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::train::{RunOptions, TrainConfig, train};
    use crate::{ModelConfig, Net};
    use burn::prelude::Device;
    use repro::datasets::ImageSet;

    #[test]
    fn file_names_keep_only_portable_characters() {
        assert_eq!(
            super::file_name("cnn-full-s0-qar-AdaptivFloat<8,3> W+A-1.5"),
            "cnn-full-s0-qar-AdaptivFloat_8_3__W_A-1.5"
        );
    }

    /// 64 random 4x4 images with labels 0-3.
    fn data(seed: u8) -> ImageSet {
        let images = (0..64 * 16u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let labels = (0..64u8).map(|i| (i.wrapping_mul(7) ^ seed) % 4).collect();
        ImageSet {
            images,
            labels,
            channels: 1,
            rows: 4,
            cols: 4,
            checksums: vec![],
        }
    }

    fn net(dev: &Device) -> Net {
        let mut cfg = ModelConfig::new("mlp:8".parse().unwrap(), 1);
        cfg.input = [1, 4, 4];
        cfg.classes = 4;
        cfg.build(dev)
    }

    fn folders(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The same command on relabelled data must train anew, not return the first run's model.
    #[test]
    fn other_data_under_the_same_name_does_not_reuse_the_checkpoint() {
        let dev = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            checkpoint: Some(dir.path().join("float")),
            label: String::new(),
            ..Default::default()
        };
        let mut cfg = TrainConfig::adam(1, 1e-2, 3);
        cfg.batch_size = 16;
        let (_, a) = train(net(&dev), &data(0), &cfg, &opts, &dev).unwrap();
        let (_, b) = train(net(&dev), &data(1), &cfg, &opts, &dev).unwrap();
        assert_ne!(
            a.final_loss, b.final_loss,
            "the relabelled run reused the checkpoint"
        );
        let names = folders(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("float-")), "{names:?}");
        // The same data again resumes: the saved report comes back, no epoch is rerun.
        let (_, again) = train(net(&dev), &data(0), &cfg, &opts, &dev).unwrap();
        assert_eq!(again, a);
    }

    /// One complete folder per checkpoint, no temporary or moved-aside folders left behind, and a
    /// rewrite (two epochs) replaces the folder in place.
    #[test]
    fn a_checkpoint_is_one_complete_folder() {
        let dev = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            checkpoint: Some(dir.path().join("qat")),
            label: String::new(),
            ..Default::default()
        };
        let mut cfg = TrainConfig::adam(2, 1e-2, 3);
        cfg.batch_size = 16;
        train(net(&dev), &data(0), &cfg, &opts, &dev).unwrap();
        let names = folders(dir.path());
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(
            folders(&dir.path().join(&names[0])),
            ["meta.json", "model.bpk", "optim.bpk"]
        );
        let meta: super::CheckpointMeta = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(&names[0]).join("meta.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(meta.epochs_done, 2);
    }
}
