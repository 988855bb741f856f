//! Shared by the tests that read ImageNet-style folders (included with `#[path]`): a split of small
//! JPEGs in two classes.

use std::path::Path;

use image::{Rgb, RgbImage};

/// `per_class` images per class in `<root>/<split>/<class>/`: class 0 (`n01_red`) reddish, class 1
/// (`n02_blue`) bluish, each pixel perturbed by a deterministic pattern, sizes varying so crops and
/// resizes differ.
pub fn write_split(root: &Path, split: &str, per_class: u32) {
    for (class, base) in [("n01_red", [200u8, 40, 40]), ("n02_blue", [40u8, 40, 200])] {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let (w, h) = (12 + i % 5, 10 + i % 3);
            let img = RgbImage::from_fn(w, h, |x, y| {
                let jitter = ((x * 7 + y * 13 + i * 29) % 41) as u8;
                Rgb(base.map(|c| c.saturating_add(jitter)))
            });
            img.save(dir.join(format!("{i}.JPEG"))).unwrap();
        }
    }
}
