//! MNIST and Fashion-MNIST as placed under `data/` by `make data`.

use crate::idx::{IMAGES_MAGIC, IdxError, LABELS_MAGIC, read_idx};
use std::fmt;
use std::path::{Path, PathBuf};

/// The data sets this workspace trains on; each lives in `data/<dir_name>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum DatasetName {
    Mnist,
    FashionMnist,
}

impl DatasetName {
    /// Folder under `data/`, as `make data` creates it.
    pub fn dir_name(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
        }
    }

    /// Spelling used in the papers' tables and in `published.csv`.
    pub fn paper_name(self) -> &'static str {
        match self {
            DatasetName::Mnist => "MNIST",
            DatasetName::FashionMnist => "Fashion-MNIST",
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// Train or test half of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// One split of an image-classification data set: `n` grey images of `rows x cols` bytes and their labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
    /// `(file name, sha256 of decompressed content)` for the run manifest.
    pub checksums: Vec<(String, String)>,
}

impl ImageSet {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.pixels()..(i + 1) * self.pixels()]
    }

    /// The first `n` examples (or all, when fewer): how the smoke profile takes a slice.
    pub fn truncated(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * self.pixels());
        self.labels.truncate(n);
        self
    }
}

/// Both splits of a data set.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: DatasetName,
    pub train: ImageSet,
    pub test: ImageSet,
}

impl Dataset {
    /// Checksums of the four files, for the manifest.
    pub fn checksums(&self) -> Vec<(String, String)> {
        self.train
            .checksums
            .iter()
            .chain(&self.test.checksums)
            .cloned()
            .collect()
    }
}

/// Where `data/` is: `$QUANT_DATA_ROOT` when set, otherwise the `data` folder of the enclosing
/// workspace (found by walking up from the current directory), otherwise `./data`.
pub fn default_data_root() -> PathBuf {
    if let Some(root) = std::env::var_os("QUANT_DATA_ROOT") {
        return PathBuf::from(root);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|dir| dir.join("data").is_dir() && dir.join("Cargo.toml").is_file())
        .map(|dir| dir.join("data"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Loads one split from `<root>/<dataset>/` (`.gz` or raw IDX files).
pub fn load_split(root: &Path, name: DatasetName, split: Split) -> Result<ImageSet, IdxError> {
    let dir = root.join(name.dir_name());
    let images_path = dir.join(format!("{}-images-idx3-ubyte", split.file_prefix()));
    let labels_path = dir.join(format!("{}-labels-idx1-ubyte", split.file_prefix()));
    let images = read_idx(&images_path, IMAGES_MAGIC)?;
    let labels = read_idx(&labels_path, LABELS_MAGIC)?;
    if images.dims[0] != labels.dims[0] {
        return Err(IdxError::CountMismatch {
            images: images_path,
            n_images: images.dims[0],
            labels: labels_path,
            n_labels: labels.dims[0],
        });
    }
    let file_name = |p: &Path| {
        format!(
            "{}/{}",
            name.dir_name(),
            p.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    Ok(ImageSet {
        rows: images.dims[1],
        cols: images.dims[2],
        checksums: vec![
            (file_name(&images_path), images.sha256),
            (file_name(&labels_path), labels.sha256),
        ],
        images: images.data,
        labels: labels.data,
    })
}

/// Loads both splits of a data set from `root`.
pub fn load(root: &Path, name: DatasetName) -> Result<Dataset, IdxError> {
    Ok(Dataset {
        name,
        train: load_split(root, name, Split::Train)?,
        test: load_split(root, name, Split::Test)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], payload: usize) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(std::iter::repeat_n(7u8, payload));
        v
    }

    fn write_gz(path: &Path, bytes: &[u8]) {
        let mut enc = GzEncoder::new(std::fs::File::create(path).unwrap(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap();
    }

    fn fixture(n_images: u32, n_labels: u32) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mnist");
        std::fs::create_dir_all(&dir).unwrap();
        for prefix in ["train", "t10k"] {
            write_gz(
                &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
                &idx(IMAGES_MAGIC, &[n_images, 2, 2], 4 * n_images as usize),
            );
            std::fs::write(
                dir.join(format!("{prefix}-labels-idx1-ubyte")),
                idx(LABELS_MAGIC, &[n_labels], n_labels as usize),
            )
            .unwrap();
        }
        root
    }

    #[test]
    fn loads_gz_images_and_raw_labels() {
        let root = fixture(3, 3);
        let ds = load(root.path(), DatasetName::Mnist).unwrap();
        assert_eq!(ds.train.len(), 3);
        assert_eq!(ds.test.image(2), &[7, 7, 7, 7]);
        assert_eq!(ds.checksums().len(), 4);
        assert_eq!(ds.train.truncated(2).len(), 2);
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let root = fixture(3, 2);
        let e = load(root.path(), DatasetName::Mnist).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("3 images") && msg.contains("2 labels") && msg.contains("make data"),
            "{msg}"
        );
    }

    #[test]
    fn missing_files_say_run_make_data() {
        let root = tempfile::tempdir().unwrap();
        let e = load(root.path(), DatasetName::FashionMnist).unwrap_err();
        assert!(matches!(e, IdxError::Missing(_)));
        assert!(
            e.to_string()
                .contains("fashion-mnist/train-images-idx3-ubyte"),
            "{e}"
        );
        assert!(e.to_string().ends_with("run make data"));
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let root = fixture(3, 3);
        std::fs::write(
            root.path().join("mnist/t10k-images-idx3-ubyte.gz"),
            b"not gzip at all",
        )
        .unwrap();
        let e = load(root.path(), DatasetName::Mnist).unwrap_err();
        assert!(matches!(e, IdxError::Unreadable(..)), "{e}");
    }

    /// Cross-checks our reader against the `mnist` crate on the real files, when `make data` has run.
    #[test]
    fn agrees_with_the_mnist_crate_on_real_data() {
        let root = default_data_root();
        let Ok(ds) = load(&root, DatasetName::Mnist) else {
            eprintln!(
                "skipping: real MNIST not present under {} (run make data)",
                root.display()
            );
            return;
        };
        let raw = tempfile::tempdir().unwrap();
        let sums = std::fs::read_to_string(root.join("SHA256SUMS.idx")).unwrap_or_default();
        for file in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ] {
            let gz = std::fs::read(root.join(format!("mnist/{file}.gz"))).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(gz.as_slice()),
                &mut bytes,
            )
            .unwrap();
            let digest = crate::idx::hex_sha256(&bytes);
            assert!(
                sums.contains(&format!("{digest}  mnist/{file}")),
                "{file}: checksum {digest} not listed"
            );
            std::fs::write(raw.path().join(file), bytes).unwrap();
        }
        let reference = mnist::MnistBuilder::new()
            .base_path(&format!("{}/", raw.path().display()))
            .label_format_digit()
            .training_set_length(60_000)
            .validation_set_length(0)
            .test_set_length(10_000)
            .finalize();
        assert_eq!(reference.trn_img, ds.train.images);
        assert_eq!(reference.trn_lbl, ds.train.labels);
        assert_eq!(reference.tst_img, ds.test.images);
        assert_eq!(reference.tst_lbl, ds.test.labels);
    }
}
