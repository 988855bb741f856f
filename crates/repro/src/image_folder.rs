//! Image-folder data sets (`<root>/<class>/<image>.png`), the layout of ImageNet-style training data.
//!
//! This is how a user brings data that is not MNIST: one sub-folder per class (sorted by name, giving
//! labels 0, 1, ...), each image converted to 8-bit grey and resized to the requested square side, so it
//! drops into the same [`ImageSet`] the IDX reader produces.

use crate::datasets::ImageSet;
use crate::idx::hex_sha256;
use image::imageops::FilterType;
use std::path::{Path, PathBuf};

/// Reads every PNG under `root/<class>/`, resized to `side x side` grey pixels.
///
/// Errors name the offending path and say what to do; an empty folder or one without class
/// sub-folders is an error rather than an empty data set.
pub fn load_image_folder(root: &Path, side: u32) -> Result<(ImageSet, Vec<String>), String> {
    if side == 0 {
        return Err("image side must be at least 1 pixel: pass a positive --resolution".into());
    }
    let read_dir = |dir: &Path| -> Result<Vec<PathBuf>, String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| {
                format!(
                    "{}: {e}: point at a folder with one sub-folder per class",
                    dir.display()
                )
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        paths.sort();
        Ok(paths)
    };
    let classes: Vec<PathBuf> = read_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if classes.is_empty() {
        return Err(format!(
            "{}: no class sub-folders: put images in <root>/<class>/*.png",
            root.display()
        ));
    }
    let mut set = ImageSet {
        images: Vec::new(),
        labels: Vec::new(),
        rows: side as usize,
        cols: side as usize,
        checksums: Vec::new(),
    };
    let mut names = Vec::new();
    for (label, class_dir) in classes.iter().enumerate() {
        let label = u8::try_from(label).map_err(|_| {
            format!(
                "{}: more than 256 classes are not supported",
                root.display()
            )
        })?;
        names.push(
            class_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        for path in read_dir(class_dir)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let img = image::load_from_memory(&bytes).map_err(|e| {
                format!(
                    "{}: not a readable PNG ({e}): remove or replace it",
                    path.display()
                )
            })?;
            let grey = img
                .resize_exact(side, side, FilterType::Triangle)
                .to_luma8();
            set.images.extend_from_slice(grey.as_raw());
            set.labels.push(label);
            set.checksums
                .push((path.display().to_string(), hex_sha256(&bytes)));
        }
    }
    if set.is_empty() {
        return Err(format!(
            "{}: class folders hold no .png images",
            root.display()
        ));
    }
    Ok((set, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn write_png(path: &Path, side: u32, value: u8) {
        GrayImage::from_pixel(side, side, Luma([value]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn reads_classes_in_sorted_order_and_resizes() {
        let dir = tempfile::tempdir().unwrap();
        for (class, value) in [("b_dog", 200u8), ("a_cat", 10u8)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            write_png(&dir.path().join(class).join("1.png"), 8, value);
            write_png(&dir.path().join(class).join("2.png"), 5, value);
        }
        std::fs::write(dir.path().join("a_cat/notes.txt"), "ignored").unwrap();
        let (set, names) = load_image_folder(dir.path(), 4).unwrap();
        assert_eq!(names, ["a_cat", "b_dog"]);
        assert_eq!(set.labels, [0, 0, 1, 1]);
        assert_eq!(set.pixels(), 16);
        assert!(set.image(0).iter().all(|&p| p == 10));
        assert!(set.image(3).iter().all(|&p| p == 200));
    }

    #[test]
    fn bad_folders_and_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            load_image_folder(dir.path(), 4)
                .unwrap_err()
                .contains("no class sub-folders")
        );
        std::fs::create_dir(dir.path().join("c")).unwrap();
        assert!(
            load_image_folder(dir.path(), 4)
                .unwrap_err()
                .contains("no .png images")
        );
        std::fs::write(dir.path().join("c/broken.png"), b"nope").unwrap();
        assert!(
            load_image_folder(dir.path(), 4)
                .unwrap_err()
                .contains("broken.png")
        );
        assert!(load_image_folder(dir.path(), 0).is_err());
    }
}
