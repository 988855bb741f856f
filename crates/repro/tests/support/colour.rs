//! Shared by the binaries' tests that train on colour data (included with `#[path]`): a data root
//! holding a small CIFAR set written in the archive's binary format.

use repro::cifar::{Cifar, write_cifar};
use repro::datasets::ImageSet;

/// A data root with `which`'s files: `train` and `test` images whose label `l` sets the red, green
/// and blue planes to their own levels (`l`, `2l`, `3l` times 255 / classes, mod 256) under
/// pseudo-random noise, so the channels differ and carry the class. Labels cycle through every
/// class.
pub fn cifar_root(which: Cifar, train: usize, test: usize) -> tempfile::TempDir {
    let classes = which.classes();
    let set = |n: usize, mut state: u32| {
        let labels: Vec<u8> = (0..n).map(|i| (i * 37 % classes) as u8).collect();
        let mut images = Vec::with_capacity(n * 3 * 32 * 32);
        for &l in &labels {
            for plane in 1..=3 {
                let level = (usize::from(l) * plane * 255 / classes % 256) as u8;
                images.extend((0..32 * 32).map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    level.saturating_add((state >> 24) as u8 / 8)
                }));
            }
        }
        ImageSet {
            images,
            labels,
            channels: 3,
            rows: 32,
            cols: 32,
            checksums: Vec::new(),
        }
    };
    let root = tempfile::tempdir().unwrap();
    write_cifar(root.path(), which, &set(train, 1), &set(test, 2)).unwrap();
    root
}
