//! MNIST and Fashion-MNIST as placed under `data/` by `make data`, and CIFAR-10 / CIFAR-100 where a
//! user has unpacked them under the data root (nothing fetches them).
//!
//! Binaries load through [`load_checked`], the one boundary where data from disk is validated: the file
//! structure, the shape and labels the models assume (28x28 grey images with classes 0-9, or 32x32
//! colour images with CIFAR's classes), and for MNIST and Fashion-MNIST the content against
//! `data/SHA256SUMS.idx`. Full-profile rows stand for the published data sets, so a file whose content
//! differs from the published one is an error there and a warning in every other profile. The
//! workspace holds no published checksums of the CIFAR files: their runs record the files' SHA-256 in
//! the manifest like every run, and say on stderr that nothing was checked against a published list.

use crate::cifar::{Cifar, load_cifar};
use crate::idx::{IMAGES_MAGIC, IdxError, LABELS_MAGIC, encode_idx, read_idx};
use std::fmt;
use std::path::{Path, PathBuf};

/// `data/SHA256SUMS.idx` as committed: SHA-256 of the decompressed content of every published file.
/// Compiled in, so a binary verifies data wherever it runs and whatever `QUANT_DATA_ROOT` says.
const PUBLISHED_SHA256: &str = include_str!("../../../data/SHA256SUMS.idx");

/// The data sets this workspace trains on; each lives in `<data root>/<dir_name>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum DatasetName {
    Mnist,
    FashionMnist,
    /// CIFAR-10's binary distribution, unpacked by the user (see [`crate::cifar`]).
    Cifar10,
    /// CIFAR-100's binary distribution (fine labels), unpacked by the user.
    Cifar100,
}

impl DatasetName {
    /// Folder under the data root: as `make data` creates it, or as the CIFAR archives unpack.
    pub fn dir_name(self) -> &'static str {
        match self.cifar() {
            Some(c) => c.dir_name(),
            None if self == DatasetName::Mnist => "mnist",
            None => "fashion-mnist",
        }
    }

    /// Spelling used in the papers' tables and in `published.csv`.
    pub fn paper_name(self) -> &'static str {
        match self {
            DatasetName::Mnist => "MNIST",
            DatasetName::FashionMnist => "Fashion-MNIST",
            DatasetName::Cifar10 => "CIFAR-10",
            DatasetName::Cifar100 => "CIFAR-100",
        }
    }

    /// The name `--dataset` takes (`fashion-mnist`, `cifar10`).
    pub fn cli_name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// The CIFAR set this is, if it is one.
    pub fn cifar(self) -> Option<Cifar> {
        match self {
            DatasetName::Cifar10 => Some(Cifar::Ten),
            DatasetName::Cifar100 => Some(Cifar::Hundred),
            DatasetName::Mnist | DatasetName::FashionMnist => None,
        }
    }

    /// `[channels, rows, cols]` of every image: 28x28 grey, or 32x32 colour for CIFAR.
    pub fn image_shape(self) -> [usize; 3] {
        match self.cifar() {
            Some(_) => [
                crate::cifar::CHANNELS,
                crate::cifar::SIDE,
                crate::cifar::SIDE,
            ],
            None => [1, 28, 28],
        }
    }

    /// Number of classes (labels `0..classes`).
    pub fn classes(self) -> usize {
        self.cifar().map_or(10, Cifar::classes)
    }

    /// Errors unless this is a grey 28x28 set: what a binary whose proxies take only those calls
    /// before loading, so `--dataset cifar10` there is one line naming the sets it takes.
    pub fn require_grey(self, binary: &str) -> Result<(), String> {
        match self.cifar() {
            None => Ok(()),
            Some(_) => Err(format!(
                "--dataset {}: {binary}'s proxies take 28x28 grey images; use --dataset mnist or \
                 fashion-mnist (integer-qat, f8net and mixed-precision-mcu train on CIFAR)",
                self.cli_name()
            )),
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

/// One split of an image-classification data set: `n` images of `channels x rows x cols` bytes
/// (planar: each channel's rows one after another; 1 channel for the grey MNIST sets, 3 for CIFAR)
/// and their labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub channels: usize,
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

    /// Bytes per image: every channel's pixels.
    pub fn pixels(&self) -> usize {
        self.channels * self.rows * self.cols
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

    /// Splits off the last `n` examples as a validation set: `(train, validation)`.
    ///
    /// Every selection an experiment makes (epoch, configuration, clipping) is made on this split,
    /// never on the test set. It is the same split for every seed and every model (the tail of the
    /// training file, whose order MNIST and Fashion-MNIST ship shuffled), so selections compare.
    pub fn split_validation(self, n: usize) -> Result<(Self, Self), String> {
        if n == 0 || n >= self.len() {
            return Err(format!(
                "a validation split of {n} images from a training set of {}: use 1 to {}",
                self.len(),
                self.len().saturating_sub(1)
            ));
        }
        let keep = self.len() - n;
        let validation = ImageSet {
            images: self.images[keep * self.pixels()..].to_vec(),
            labels: self.labels[keep..].to_vec(),
            channels: self.channels,
            rows: self.rows,
            cols: self.cols,
            checksums: self.checksums.clone(),
        };
        Ok((self.truncated(keep), validation))
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

/// Where a run's data root came from, which decides the one fix an error about the data names:
/// `make data` fills only the workspace's `data/`, so it is the wrong advice for a folder of one's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataRoot {
    /// The workspace's `data/`, filled by `make data`.
    Workspace(PathBuf),
    /// A folder named by `--data`.
    Flag(PathBuf),
    /// A folder named by `$QUANT_DATA_ROOT`.
    Env(PathBuf),
}

impl DataRoot {
    /// `--data` when given, else `$QUANT_DATA_ROOT`, else the workspace's `data/`.
    pub fn resolve(flag: Option<&Path>) -> DataRoot {
        if let Some(dir) = flag {
            return DataRoot::Flag(dir.to_path_buf());
        }
        match std::env::var_os("QUANT_DATA_ROOT") {
            Some(dir) => DataRoot::Env(PathBuf::from(dir)),
            None => DataRoot::Workspace(workspace_data_dir()),
        }
    }

    /// The folder holding `mnist/` and `fashion-mnist/`.
    pub fn path(&self) -> &Path {
        match self {
            DataRoot::Workspace(p) | DataRoot::Flag(p) | DataRoot::Env(p) => p,
        }
    }

    /// What to do when a file under this root is missing or broken.
    pub fn fix(&self) -> &'static str {
        match self {
            DataRoot::Workspace(_) => "run make data",
            DataRoot::Flag(_) => {
                "point --data at a folder holding mnist/ and fashion-mnist/ with the IDX files"
            }
            DataRoot::Env(_) => {
                "point QUANT_DATA_ROOT at a folder holding mnist/ and fashion-mnist/ with the IDX files"
            }
        }
    }
}

/// Loads one data set for a run of `profile` and validates it at the boundary, so no model ever sees
/// data it cannot take: errors are one line naming the file and one fix.
///
/// - File structure errors, images of another shape than [`DatasetName::image_shape`] and labels
///   outside the data set's classes are errors.
/// - For MNIST and Fashion-MNIST, content that differs from `data/SHA256SUMS.idx` is an error when
///   `profile` is `full` (its rows stand for the published data set) and otherwise a warning on stderr
///   naming the files, which says the run is unverified. CIFAR has no published list here: a warning.
pub fn load_checked(root: &DataRoot, name: DatasetName, profile: &str) -> Result<Dataset, String> {
    if let Some(which) = name.cifar() {
        let data = load_cifar(root.path(), which)?;
        eprintln!(
            "warning: {}: no published checksums of {} are held here; the run records the files' \
             SHA-256 in its manifest",
            root.path().join(name.dir_name()).display(),
            name.paper_name()
        );
        return Ok(Dataset {
            name,
            train: data.train,
            test: data.test,
        });
    }
    let data = load(root.path(), name).map_err(|e| format!("{e}: {}", root.fix()))?;
    for set in [&data.train, &data.test] {
        check_shape_and_labels(root.path(), set, name)
            .map_err(|e| format!("{e}: {}", root.fix()))?;
    }
    let differing = unverified_files(&data.checksums());
    if differing.is_empty() {
        return Ok(data);
    }
    let files = differing
        .iter()
        .map(|f| root.path().join(f).display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if profile == crate::Profile::Full.name() {
        let fix = match root {
            DataRoot::Workspace(_) => "run make data",
            _ => {
                "full-profile rows stand for the published data set: use --profile smoke for other data"
            }
        };
        return Err(format!(
            "{files}: content differs from the published {} in data/SHA256SUMS.idx: {fix}",
            name.paper_name()
        ));
    }
    eprintln!(
        "warning: {files}: content differs from the published {} in data/SHA256SUMS.idx; this run is unverified",
        name.paper_name()
    );
    Ok(data)
}

/// The files of `checksums` (`(dataset/file, sha256)`) whose content is not the one
/// `data/SHA256SUMS.idx` lists for that name (or that it does not list at all).
pub fn unverified_files(checksums: &[(String, String)]) -> Vec<String> {
    checksums
        .iter()
        .filter(|(file, sha)| published_sha256(file) != Some(sha.as_str()))
        .map(|(file, _)| file.clone())
        .collect()
}

/// The published SHA-256 of `file` (`mnist/train-images-idx3-ubyte`), from `data/SHA256SUMS.idx`.
pub fn published_sha256(file: &str) -> Option<&'static str> {
    PUBLISHED_SHA256.lines().find_map(|line| {
        let (sha, name) = line.split_once("  ")?;
        (name.trim() == file).then_some(sha.trim())
    })
}

/// Images of the side the models take and labels among the data set's classes (the IDX sets; the
/// CIFAR reader checks its fixed-size records itself); errors name the file under `root`.
fn check_shape_and_labels(root: &Path, set: &ImageSet, name: DatasetName) -> Result<(), String> {
    let file = |i: usize| {
        set.checksums.get(i).map_or_else(
            || root.display().to_string(),
            |c| root.join(&c.0).display().to_string(),
        )
    };
    let images = file(0);
    let [_, side, _] = name.image_shape();
    if set.rows != side || set.cols != side {
        return Err(format!(
            "{images}: images are {}x{}, the models take {side}x{side} {} images",
            set.rows,
            set.cols,
            name.paper_name()
        ));
    }
    let labels = file(1);
    if let Some((i, &l)) = set
        .labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= name.classes())
    {
        return Err(format!(
            "{labels}: label {l} at index {i} is outside 0-{}",
            name.classes() - 1
        ));
    }
    Ok(())
}

/// The `data` folder of the enclosing workspace (found by walking up from the current directory),
/// otherwise `./data`.
fn workspace_data_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|dir| dir.join("data").is_dir() && dir.join("Cargo.toml").is_file())
        .map(|dir| dir.join("data"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Where `data/` is: `$QUANT_DATA_ROOT` when set, otherwise the `data` folder of the enclosing
/// workspace (found by walking up from the current directory), otherwise `./data`.
pub fn default_data_root() -> PathBuf {
    DataRoot::resolve(None).path().to_path_buf()
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
        channels: 1,
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

/// Writes `train` and `test` as raw IDX files under `<root>/<dataset>/`, the layout [`load`] reads: how
/// a data set of one's own (or a test fixture) is put where `--data` or `QUANT_DATA_ROOT` can point.
pub fn write_idx_dataset(
    root: &Path,
    name: DatasetName,
    train: &ImageSet,
    test: &ImageSet,
) -> std::io::Result<()> {
    let dir = root.join(name.dir_name());
    std::fs::create_dir_all(&dir)?;
    let too_big = |what| std::io::Error::other(format!("{what} does not fit an IDX dimension"));
    let dim = |n: usize, what| u32::try_from(n).map_err(|_| too_big(what));
    for (split, set) in [(Split::Train, train), (Split::Test, test)] {
        let (n, rows, cols) = (
            dim(set.len(), "image count")?,
            dim(set.rows, "rows")?,
            dim(set.cols, "cols")?,
        );
        let prefix = split.file_prefix();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            encode_idx(IMAGES_MAGIC, &[n, rows, cols], &set.images),
        )?;
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            encode_idx(LABELS_MAGIC, &[n], &set.labels),
        )?;
    }
    Ok(())
}

/// Loads both splits of an IDX data set (MNIST, Fashion-MNIST) from `root`; [`load_checked`] also
/// reads CIFAR.
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

    #[test]
    fn validation_split_is_the_tail_and_disjoint_from_training() {
        let set = ImageSet {
            images: (0..10u8).flat_map(|i| [i; 4]).collect(),
            labels: (0..10).collect(),
            channels: 1,
            rows: 2,
            cols: 2,
            checksums: Vec::new(),
        };
        let (train, val) = set.clone().split_validation(3).unwrap();
        assert_eq!(train.labels, (0..7).collect::<Vec<u8>>());
        assert_eq!(val.labels, vec![7, 8, 9]);
        assert_eq!(val.image(0), &[7; 4]);
        assert_eq!(train.images.len() + val.images.len(), set.images.len());
        for n in [0, 10, 11] {
            assert!(set.clone().split_validation(n).is_err(), "n = {n}");
        }
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
    fn colour_sets_have_their_shape_and_classes_and_grey_binaries_refuse_them() {
        assert_eq!(DatasetName::Cifar100.image_shape(), [3, 32, 32]);
        assert_eq!(DatasetName::Cifar100.classes(), 100);
        assert_eq!(DatasetName::FashionMnist.image_shape(), [1, 28, 28]);
        assert!(DatasetName::Mnist.require_grey("f8net").is_ok());
        let e = DatasetName::Cifar10.require_grey("f8net").unwrap_err();
        assert!(
            e.starts_with("--dataset cifar10: f8net's proxies take 28x28 grey images"),
            "{e}"
        );
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
            msg.contains("3 images") && msg.contains("2 labels"),
            "{msg}"
        );
    }

    #[test]
    fn missing_files_name_the_file_and_one_fix_for_the_root() {
        let root = tempfile::tempdir().unwrap();
        let e = load(root.path(), DatasetName::FashionMnist).unwrap_err();
        assert!(matches!(e, IdxError::Missing(_)));
        let checked =
            |r: DataRoot| load_checked(&r, DatasetName::FashionMnist, "smoke").unwrap_err();
        let ws = checked(DataRoot::Workspace(root.path().into()));
        assert!(
            ws.contains("fashion-mnist/train-images-idx3-ubyte")
                && ws.ends_with("missing: run make data"),
            "{ws}"
        );
        assert_eq!(ws.matches("make data").count(), 1, "{ws}");
        let flag = checked(DataRoot::Flag(root.path().into()));
        assert!(
            flag.ends_with(DataRoot::Flag(PathBuf::new()).fix()),
            "{flag}"
        );
        let env = checked(DataRoot::Env(root.path().into()));
        assert!(
            env.contains("QUANT_DATA_ROOT") && !env.contains("run make data"),
            "{env}"
        );
    }

    /// A data set of `side`x`side` images with these labels in both splits, as raw IDX files.
    fn mnist_like(labels: &[u8], side: usize) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let set = ImageSet {
            images: vec![7; labels.len() * side * side],
            labels: labels.to_vec(),
            channels: 1,
            rows: side,
            cols: side,
            checksums: vec![],
        };
        write_idx_dataset(root.path(), DatasetName::Mnist, &set, &set).unwrap();
        root
    }

    #[test]
    fn unpublished_content_is_an_error_for_full_runs_and_a_warning_otherwise() {
        let root = mnist_like(&[0, 9, 3], 28);
        let r = DataRoot::Env(root.path().into());
        let e = load_checked(&r, DatasetName::Mnist, "full").unwrap_err();
        assert!(
            e.contains("mnist/train-images-idx3-ubyte")
                && e.contains("SHA256SUMS.idx")
                && e.ends_with("use --profile smoke for other data"),
            "{e}"
        );
        let ws = load_checked(
            &DataRoot::Workspace(root.path().into()),
            DatasetName::Mnist,
            "full",
        )
        .unwrap_err();
        assert!(ws.ends_with(": run make data"), "{ws}");
        let data = load_checked(&r, DatasetName::Mnist, "smoke").unwrap();
        assert_eq!(data.train.len(), 3);
    }

    #[test]
    fn labels_outside_the_classes_and_other_image_sizes_are_refused() {
        let root = mnist_like(&[0, 10, 3], 28);
        let r = DataRoot::Flag(root.path().into());
        let e = load_checked(&r, DatasetName::Mnist, "smoke").unwrap_err();
        assert!(e.contains("label 10 at index 1 is outside 0-9"), "{e}");
        let root = mnist_like(&[0, 1], 32);
        let r = DataRoot::Flag(root.path().into());
        let e = load_checked(&r, DatasetName::Mnist, "smoke").unwrap_err();
        assert!(e.contains("images are 32x32") && e.contains("28x28"), "{e}");
    }

    #[test]
    fn the_published_checksums_are_compiled_in() {
        assert_eq!(
            published_sha256("mnist/t10k-labels-idx1-ubyte"),
            Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")
        );
        assert_eq!(published_sha256("mnist/unknown"), None);
        let listed = vec![(
            "mnist/t10k-labels-idx1-ubyte".to_string(),
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2".to_string(),
        )];
        assert!(unverified_files(&listed).is_empty());
        let own = vec![("mnist/t10k-labels-idx1-ubyte".to_string(), "00".to_string())];
        assert_eq!(unverified_files(&own), ["mnist/t10k-labels-idx1-ubyte"]);
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
