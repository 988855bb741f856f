//! CIFAR-10 and CIFAR-100 in their binary distribution (`cifar-10-binary.tar.gz`,
//! `cifar-100-binary.tar.gz`, unpacked), the 32x32 colour data sets the papers' CIFAR tables use.
//!
//! Each file is a run of fixed-size records: the label byte(s), then 3 072 pixel bytes, the red
//! plane, then green, then blue, each 32 rows of 32. That planar order is [`ImageSet`]'s own, so
//! records are copied as they are. CIFAR-100 records carry the coarse (20-class) label before the
//! fine (100-class) one; the papers' CIFAR-100 rows use the fine labels, so the set keeps those.
//! Nothing is downloaded: a missing folder is an error that says where the files go.

use std::path::{Path, PathBuf};

use crate::datasets::ImageSet;
use crate::idx::hex_sha256;

/// Side of the square CIFAR images.
pub const SIDE: usize = 32;
/// Colour planes per image (red, green, blue).
pub const CHANNELS: usize = 3;
/// Pixel bytes per record.
const IMAGE_BYTES: usize = CHANNELS * SIDE * SIDE;

/// Which of the two data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes; `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`.
    Ten,
    /// 100 fine classes; `cifar-100-binary/train.bin` and `test.bin`.
    Hundred,
}

impl Cifar {
    /// Folder the archive unpacks to.
    pub fn dir_name(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar-10-batches-bin",
            Cifar::Hundred => "cifar-100-binary",
        }
    }

    /// Number of (fine) classes.
    pub fn classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }

    /// Label bytes before each image: CIFAR-100 has the coarse label, then the fine one.
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    /// The files of the training (`train = true`) or test split, in the order their records are read.
    fn files(self, train: bool) -> Vec<&'static str> {
        match (self, train) {
            (Cifar::Ten, true) => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (Cifar::Ten, false) => vec!["test_batch.bin"],
            (Cifar::Hundred, true) => vec!["train.bin"],
            (Cifar::Hundred, false) => vec!["test.bin"],
        }
    }
}

/// The training and test split of one CIFAR data set.
#[derive(Debug, Clone)]
pub struct CifarData {
    /// 50 000 training images in the published files.
    pub train: ImageSet,
    /// 10 000 test images in the published files.
    pub test: ImageSet,
}

/// Reads `which` from `root/<dir_name>/` (or from `root` itself when it is that folder).
///
/// Errors are one line naming the file and the fix: a missing folder or file, a size that is not a
/// whole number of records, a label outside the data set's classes.
pub fn load_cifar(root: &Path, which: Cifar) -> Result<CifarData, String> {
    let dir = folder(root, which)?;
    Ok(CifarData {
        train: read_split(&dir, which, true)?,
        test: read_split(&dir, which, false)?,
    })
}

/// The folder holding the binary files: `root/<dir_name>` when it exists, else `root` when it holds
/// the first training file.
fn folder(root: &Path, which: Cifar) -> Result<PathBuf, String> {
    let nested = root.join(which.dir_name());
    if nested.is_dir() {
        return Ok(nested);
    }
    if root.join(which.files(true)[0]).is_file() {
        return Ok(root.to_path_buf());
    }
    Err(format!(
        "{}: no {} folder: unpack the binary archive of {} there (nothing is downloaded)",
        root.display(),
        which.dir_name(),
        match which {
            Cifar::Ten => "CIFAR-10 (cifar-10-binary.tar.gz)",
            Cifar::Hundred => "CIFAR-100 (cifar-100-binary.tar.gz)",
        }
    ))
}

fn read_split(dir: &Path, which: Cifar, train: bool) -> Result<ImageSet, String> {
    let record = which.label_bytes() + IMAGE_BYTES;
    let mut set = ImageSet {
        images: Vec::new(),
        labels: Vec::new(),
        channels: CHANNELS,
        rows: SIDE,
        cols: SIDE,
        checksums: Vec::new(),
    };
    for name in which.files(train) {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "{}: {e}: unpack the complete {} archive there",
                path.display(),
                which.dir_name()
            )
        })?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(format!(
                "{}: {} bytes is not a whole number of {record}-byte records: the file is truncated or \
                 not from the binary archive; unpack it again",
                path.display(),
                bytes.len()
            ));
        }
        let first = set.len();
        for r in bytes.chunks_exact(record) {
            let (labels, pixels) = r.split_at(which.label_bytes());
            let label = labels[labels.len() - 1];
            if usize::from(label) >= which.classes() {
                return Err(format!(
                    "{}: label {label} of record {} is outside 0-{}: the file is not a {} file; \
                     unpack the archive again",
                    path.display(),
                    set.len() - first,
                    which.classes() - 1,
                    which.dir_name()
                ));
            }
            set.labels.push(label);
            set.images.extend_from_slice(pixels);
        }
        set.checksums
            .push((format!("{}/{name}", which.dir_name()), hex_sha256(&bytes)));
    }
    Ok(set)
}

/// Writes `train` and `test` (3x32x32 images) as `which`'s binary files under `<root>/<dir_name>/`,
/// the layout [`load_cifar`] reads: how a test fixture or a relabelled copy is put where `--data` can
/// point. The training set goes into one file per training batch of the archive, split evenly;
/// CIFAR-100's coarse label, which nothing here reads, is written as 0.
pub fn write_cifar(
    root: &Path,
    which: Cifar,
    train: &ImageSet,
    test: &ImageSet,
) -> std::io::Result<()> {
    let dir = root.join(which.dir_name());
    std::fs::create_dir_all(&dir)?;
    for (set, is_train) in [(train, true), (test, false)] {
        if set.pixels() != IMAGE_BYTES {
            return Err(std::io::Error::other(format!(
                "CIFAR images are {CHANNELS}x{SIDE}x{SIDE}, not {}x{}x{}",
                set.channels, set.rows, set.cols
            )));
        }
        let files = which.files(is_train);
        if set.len() < files.len() {
            return Err(std::io::Error::other(format!(
                "{} images cannot fill the {} files of the split (an empty file is unreadable)",
                set.len(),
                files.len()
            )));
        }
        let per_file = set.len().div_ceil(files.len());
        for (k, name) in files.into_iter().enumerate() {
            let mut bytes = Vec::new();
            for i in (k * per_file..(k + 1) * per_file).take_while(|&i| i < set.len()) {
                bytes.extend(std::iter::repeat_n(0, which.label_bytes() - 1));
                bytes.push(set.labels[i]);
                bytes.extend_from_slice(set.image(i));
            }
            std::fs::write(dir.join(name), bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes records whose pixels are `(record index + plane) mod 256` and whose labels are given.
    fn write(path: &Path, label_bytes: &[&[u8]]) {
        let mut out = Vec::new();
        for (i, labels) in label_bytes.iter().enumerate() {
            out.extend_from_slice(labels);
            for plane in 0..CHANNELS {
                out.extend(std::iter::repeat_n(((i + plane) % 256) as u8, SIDE * SIDE));
            }
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn cifar10_reads_five_training_batches_in_order_and_the_test_batch() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&d).unwrap();
        for b in 1..=5u8 {
            write(&d.join(format!("data_batch_{b}.bin")), &[&[b], &[9]]);
        }
        write(&d.join("test_batch.bin"), &[&[3]]);
        let data = load_cifar(dir.path(), Cifar::Ten).unwrap();
        assert_eq!(data.train.labels, [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        assert_eq!(data.test.labels, [3]);
        assert_eq!(data.train.pixels(), 3072);
        // The planes stay planar: record 1 of a batch has red 1, green 2, blue 3.
        let img = data.train.image(1);
        assert_eq!((img[0], img[1024], img[2048], img[3071]), (1, 2, 3, 3));
        assert_eq!(data.train.checksums.len(), 5);
        // The folder itself works as the root too.
        assert_eq!(load_cifar(&d, Cifar::Ten).unwrap().test.labels, [3]);
    }

    #[test]
    fn cifar100_keeps_the_fine_label() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("cifar-100-binary");
        std::fs::create_dir(&d).unwrap();
        write(&d.join("train.bin"), &[&[19, 99], &[0, 42]]);
        write(&d.join("test.bin"), &[&[4, 7]]);
        let data = load_cifar(dir.path(), Cifar::Hundred).unwrap();
        assert_eq!(data.train.labels, [99, 42]);
        assert_eq!(data.test.labels, [7]);
        assert_eq!(Cifar::Hundred.classes(), 100);
    }

    #[test]
    fn written_sets_read_back_as_they_were() {
        let set = |n: usize| ImageSet {
            images: (0..n * IMAGE_BYTES).map(|i| (i % 251) as u8).collect(),
            labels: (0..n).map(|i| (i * 7 % 10) as u8).collect(),
            channels: CHANNELS,
            rows: SIDE,
            cols: SIDE,
            checksums: Vec::new(),
        };
        for which in [Cifar::Ten, Cifar::Hundred] {
            let dir = tempfile::tempdir().unwrap();
            write_cifar(dir.path(), which, &set(10), &set(3)).unwrap();
            let back = load_cifar(dir.path(), which).unwrap();
            assert_eq!(
                (back.train.images, back.train.labels),
                (set(10).images, set(10).labels)
            );
            assert_eq!(back.test.labels, set(3).labels);
        }
    }

    #[test]
    fn missing_truncated_and_mislabelled_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_cifar(dir.path(), Cifar::Ten).unwrap_err();
        assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");
        let d = dir.path().join("cifar-100-binary");
        std::fs::create_dir(&d).unwrap();
        let err = load_cifar(dir.path(), Cifar::Hundred).unwrap_err();
        assert!(err.contains("train.bin"), "{err}");
        std::fs::write(d.join("train.bin"), vec![0u8; 3074 + 5]).unwrap();
        let err = load_cifar(dir.path(), Cifar::Hundred).unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
        write(&d.join("train.bin"), &[&[0, 100]]);
        let err = load_cifar(dir.path(), Cifar::Hundred).unwrap_err();
        assert!(err.contains("label 100"), "{err}");
    }
}
