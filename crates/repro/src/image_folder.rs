//! ImageNet-style folders (`<root>/<split>/<class>/<image>.JPEG`), decoded a batch at a time.
//!
//! ImageNet does not fit in memory as bytes, so [`ImageFolder`] holds only the file list and decodes
//! each example when a batch asks for it (the trainer reads a batch's examples on its worker threads).
//! Classes are the sub-folders of `<root>/train`, sorted by name (labels 0, 1, ...), so every split
//! labels a class alike; without a training split (scoring a published checkpoint needs only the
//! validation images) the split's own sub-folders are the classes, which for ImageNet's 1 000
//! synset folders is the order torchvision's checkpoints use. JPEG and PNG files are read,
//! anything else is skipped.
//!
//! The views follow the papers' ImageNet preprocessing (the torchvision / TF-slim standard their
//! official code uses): evaluation resizes the shorter side to `side / 0.875` (256 for 224) and
//! takes the centre `side x side` crop; training takes a random crop of 8-100 % of the area with an
//! aspect ratio between 3/4 and 4/3, resized to `side x side`, flipped horizontally half of the
//! time. Where the drawn crop does not fit, it is clamped to the image (torchvision draws again up
//! to ten times, then takes the centre crop). Resizing is bilinear.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader};
use rayon::prelude::*;

use crate::datasets::ImageSet;
use crate::examples::{Examples, View};

/// Share of the resized image the evaluation crop keeps (224 of 256).
const EVAL_CROP_FRACTION: f64 = 0.875;
/// Smallest and largest share of the image's area a training crop takes.
const CROP_AREA: (f64, f64) = (0.08, 1.0);
/// Narrowest and widest aspect ratio (width / height) of a training crop.
const CROP_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// One split of an image folder: its files and labels, decoded on demand.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    files: Vec<PathBuf>,
    labels: Vec<usize>,
    /// Class names (folder names), indexed by label.
    pub classes: Vec<String>,
    channels: usize,
    side: usize,
    /// What [`Examples::identify`] feeds: every file's path under the root, size and label.
    listing: Vec<u8>,
}

impl ImageFolder {
    /// SHA-256 of what [`Examples::identify`] feeds (the split's shape and every file's path, size
    /// and label): what a run's manifest records of a folder too large to hash whole.
    pub fn listing_sha256(&self) -> String {
        let mut all = Vec::new();
        self.identify(&mut |name, bytes| {
            all.extend_from_slice(name.as_bytes());
            all.extend_from_slice(bytes);
        });
        crate::idx::hex_sha256(&all)
    }

    /// The split `<root>/<split>/`, producing `channels` (1: grey, 3: RGB) x `side` x `side` examples.
    ///
    /// Errors are one line naming the folder and the fix: a missing split, a class folder the
    /// training split lacks, a split without images, a zero side.
    pub fn open(root: &Path, split: &str, channels: usize, side: usize) -> Result<Self, String> {
        if side == 0 {
            return Err("image side must be at least 1 pixel: pass a positive resolution".into());
        }
        if channels != 1 && channels != 3 {
            return Err(format!(
                "{channels} channels: image folders give 1 (grey) or 3 (RGB)"
            ));
        }
        let split_dir = root.join(split);
        let class_dir = match root.join("train") {
            train if train.is_dir() => train,
            _ => split_dir.clone(),
        };
        let classes: Vec<String> = sorted_entries(&class_dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        if classes.is_empty() {
            return Err(format!(
                "{}: no class sub-folders: put images in <root>/{split}/<class>/*.JPEG",
                class_dir.display()
            ));
        }
        let (mut files, mut labels, mut listing) = (Vec::new(), Vec::new(), Vec::new());
        for class_dir in sorted_entries(&split_dir)?
            .into_iter()
            .filter(|p| p.is_dir())
        {
            let name = class_dir.file_name().unwrap_or_default().to_string_lossy();
            let label = classes.iter().position(|c| *c == name).ok_or_else(|| {
                format!(
                    "{}: class {name} is not among the training split's {} classes: name the \
                     folders of every split alike",
                    class_dir.display(),
                    classes.len()
                )
            })?;
            for path in sorted_entries(&class_dir)?
                .into_iter()
                .filter(|p| is_image(p))
            {
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                let relative = path.strip_prefix(root).unwrap_or(&path);
                listing.extend_from_slice(relative.to_string_lossy().as_bytes());
                listing.extend_from_slice(&size.to_le_bytes());
                listing.extend_from_slice(&(label as u64).to_le_bytes());
                files.push(path);
                labels.push(label);
            }
        }
        if files.is_empty() {
            return Err(format!(
                "{}: no .JPEG, .jpg or .png images in class folders: put images in <root>/{split}/<class>/",
                split_dir.display()
            ));
        }
        Ok(ImageFolder {
            files,
            labels,
            classes,
            channels,
            side,
            listing,
        })
    }

    /// Every example in its evaluation view, decoded on the worker threads, as an in-memory set:
    /// for splits small enough to hold (a validation slice, the test images of a small folder).
    pub fn to_image_set(&self) -> Result<ImageSet, String> {
        if self.classes.len() > 256 {
            return Err(format!(
                "{} classes do not fit an in-memory set's byte labels: stream the folder instead",
                self.classes.len()
            ));
        }
        let per = self.channels * self.side * self.side;
        let mut images = vec![0u8; self.len() * per];
        images
            .par_chunks_mut(per)
            .enumerate()
            .try_for_each(|(i, out)| self.read(i, View::Eval, out))?;
        Ok(ImageSet {
            images,
            labels: self.labels.iter().map(|&l| l as u8).collect(),
            channels: self.channels,
            rows: self.side,
            cols: self.side,
            checksums: Vec::new(),
        })
    }

    /// The crop of `img` (`x, y, width, height`) that `view` takes before resizing, and whether it is
    /// flipped.
    fn crop(&self, width: u32, height: u32, view: View) -> ((u32, u32, u32, u32), bool) {
        match view {
            View::Eval => {
                let short = f64::from(width.min(height));
                // The centre square of side `side / 0.875` in the image resized so that its shorter
                // side is that long, mapped back to the original image.
                let keep = (short * EVAL_CROP_FRACTION).round().max(1.0) as u32;
                let (w, h) = (keep.min(width), keep.min(height));
                (((width - w) / 2, (height - h) / 2, w, h), false)
            }
            View::Train { draw } => {
                let unit = |shift: u32| f64::from(((draw >> shift) & 0xffff) as u16) / 65536.0;
                let area = f64::from(width) * f64::from(height);
                let target = area * (CROP_AREA.0 + (CROP_AREA.1 - CROP_AREA.0) * unit(0));
                let (lo, hi) = (CROP_RATIO.0.ln(), CROP_RATIO.1.ln());
                let ratio = (lo + (hi - lo) * unit(16)).exp();
                let w = ((target * ratio).sqrt().round() as u32).clamp(1, width);
                let h = ((target / ratio).sqrt().round() as u32).clamp(1, height);
                let x = (unit(32) * f64::from(width - w + 1)) as u32;
                let y = (unit(48) * f64::from(height - h + 1)) as u32;
                ((x.min(width - w), y.min(height - h), w, h), draw >> 63 == 1)
            }
        }
    }
}

impl Examples for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn shape(&self) -> [usize; 3] {
        [self.channels, self.side, self.side]
    }

    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }

    fn read(&self, i: usize, view: View, out: &mut [u8]) -> Result<(), String> {
        let path = &self.files[i];
        let img = ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| format!("{}: {e}: check the file is readable", path.display()))?
            .decode()
            .map_err(|e| {
                format!(
                    "{}: not a readable image ({e}): remove or replace it",
                    path.display()
                )
            })?;
        let ((x, y, w, h), flip) = self.crop(img.width(), img.height(), view);
        let side = self.side as u32;
        let mut view_img = img
            .crop_imm(x, y, w, h)
            .resize_exact(side, side, FilterType::Triangle);
        if flip {
            view_img = view_img.fliph();
        }
        write_planar(&view_img, self.channels, out);
        Ok(())
    }

    fn identify(&self, field: &mut dyn FnMut(&str, &[u8])) {
        let shape = format!(
            "{}x{}x{}x{}",
            self.len(),
            self.channels,
            self.side,
            self.side
        );
        field("shape", shape.as_bytes());
        field("files", &self.listing);
    }
}

/// Writes `img` as planar bytes: one grey plane, or the red, green and blue planes.
fn write_planar(img: &DynamicImage, channels: usize, out: &mut [u8]) {
    if channels == 1 {
        out.copy_from_slice(img.to_luma8().as_raw());
        return;
    }
    let rgb = img.to_rgb8();
    let plane = out.len() / 3;
    for (p, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + p] = px.0[c];
        }
    }
}

fn is_image(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| {
            ["jpeg", "jpg", "png"]
                .iter()
                .any(|ok| e.eq_ignore_ascii_case(ok))
        })
}

/// The entries of `dir`, sorted by path.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "{}: {e}: point at a folder with train/<class>/ and the split's <class>/ folders",
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// An image whose red channel is `value`, green is the column and blue is 7.
    fn write_image(path: &Path, width: u32, height: u32, value: u8) {
        RgbImage::from_fn(width, height, |x, _| Rgb([value, x as u8, 7]))
            .save(path)
            .unwrap();
    }

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for split in ["train", "val"] {
            for (class, value) in [("n02_dog", 200u8), ("n01_cat", 10u8)] {
                let d = dir.path().join(split).join(class);
                std::fs::create_dir_all(&d).unwrap();
                write_image(&d.join("a.JPEG"), 40, 30, value);
                write_image(&d.join("b.png"), 16, 16, value);
            }
        }
        std::fs::write(dir.path().join("train/n01_cat/notes.txt"), "skipped").unwrap();
        dir
    }

    #[test]
    fn classes_sort_by_name_and_the_eval_view_is_the_centre_crop() {
        let dir = folder();
        let val = ImageFolder::open(dir.path(), "val", 3, 8).unwrap();
        assert_eq!(val.classes, ["n01_cat", "n02_dog"]);
        assert_eq!(val.len(), 4);
        assert_eq!((val.label(0), val.label(3)), (0, 1));
        assert_eq!(val.shape(), [3, 8, 8]);
        let set = val.to_image_set().unwrap();
        assert_eq!(set.labels, [0, 0, 1, 1]);
        // Red plane: the class value (JPEG loses a little); blue plane: 7.
        let img = set.image(2);
        assert!(
            img[..64].iter().all(|&p| p.abs_diff(200) <= 3),
            "{:?}",
            &img[..64]
        );
        assert!(img[128..].iter().all(|&p| p.abs_diff(7) <= 3));
        // A 40x30 image: the centre square of side 30 x 0.875 = 26, at column 7 and row 2.
        let ((x, y, w, h), flip) = val.crop(40, 30, View::Eval);
        assert_eq!((x, y, w, h, flip), (7, 2, 26, 26, false));
        // Grey views take the luma.
        let grey = ImageFolder::open(dir.path(), "val", 1, 4).unwrap();
        assert_eq!(grey.to_image_set().unwrap().pixels(), 16);
    }

    #[test]
    fn training_views_follow_their_draw() {
        let dir = folder();
        let train = ImageFolder::open(dir.path(), "train", 3, 8).unwrap();
        for draw in [0u64, u64::MAX, 0x1234_5678_9abc_def0, 1 << 63] {
            let ((x, y, w, h), flip) = train.crop(40, 30, View::Train { draw });
            assert!(w >= 1 && h >= 1 && x + w <= 40 && y + h <= 30, "{draw:x}");
            assert_eq!(flip, draw >> 63 == 1);
        }
        // The smallest draw takes 8 % of the area at ratio 3/4; the largest nearly all of it.
        let ((_, _, w, h), _) = train.crop(40, 30, View::Train { draw: 0 });
        assert_eq!((w, h), (8, 11));
        // Same draw, same bytes; a flip mirrors the green (column) plane.
        let (mut a, mut b, mut f) = (vec![0; 192], vec![0; 192], vec![0; 192]);
        let draw = 0xffff_ffff_ffff;
        train.read(1, View::Train { draw }, &mut a).unwrap();
        train.read(1, View::Train { draw }, &mut b).unwrap();
        train
            .read(
                1,
                View::Train {
                    draw: draw | 1 << 63,
                },
                &mut f,
            )
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a[64..72].iter().rev().copied().collect::<Vec<_>>(),
            f[64..72]
        );
    }

    #[test]
    fn without_a_training_split_the_split_names_the_classes() {
        let dir = folder();
        std::fs::remove_dir_all(dir.path().join("train")).unwrap();
        let val = ImageFolder::open(dir.path(), "val", 3, 8).unwrap();
        assert_eq!(val.classes, ["n01_cat", "n02_dog"]);
        assert_eq!((val.label(0), val.label(3)), (0, 1));
    }

    #[test]
    fn bad_folders_and_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFolder::open(dir.path(), "train", 3, 4).unwrap_err();
        assert!(err.contains("train"), "{err}");
        std::fs::create_dir_all(dir.path().join("train/c")).unwrap();
        let err = ImageFolder::open(dir.path(), "train", 3, 4).unwrap_err();
        assert!(err.contains("no .JPEG"), "{err}");
        std::fs::create_dir_all(dir.path().join("val/other")).unwrap();
        let err = ImageFolder::open(dir.path(), "val", 3, 4).unwrap_err();
        assert!(err.contains("not among the training split"), "{err}");
        std::fs::write(dir.path().join("train/c/broken.JPEG"), b"nope").unwrap();
        let train = ImageFolder::open(dir.path(), "train", 3, 4).unwrap();
        let err = train.read(0, View::Eval, &mut [0; 48]).unwrap_err();
        assert!(err.contains("broken.JPEG"), "{err}");
        assert!(ImageFolder::open(dir.path(), "train", 3, 0).is_err());
        assert!(ImageFolder::open(dir.path(), "train", 2, 4).is_err());
    }
}
