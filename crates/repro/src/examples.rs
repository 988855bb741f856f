//! What a training loop draws its batches from: a split held in memory ([`ImageSet`], MNIST and
//! CIFAR) or one decoded from disk a batch at a time ([`crate::image_folder::ImageFolder`],
//! ImageNet-style folders too large to hold).
//!
//! Every example is `channels x rows x cols` bytes in planar order with one label; a training view
//! may differ per draw (random crops and flips of image folders), an evaluation view never does.

use crate::datasets::ImageSet;

/// Which view of an example to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The deterministic view the test and validation sets are scored on.
    Eval,
    /// A training view; `draw` is 64 random bits the caller draws per example and epoch, so a run
    /// is reproducible from its seed. Sets without augmentation ignore it.
    Train {
        /// The example's random bits.
        draw: u64,
    },
}

/// A split a training loop can draw batches from.
pub trait Examples: Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// True when the split holds no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[channels, rows, cols]` of every example.
    fn shape(&self) -> [usize; 3];

    /// The label of example `i`.
    fn label(&self, i: usize) -> usize;

    /// Writes example `i` under `view` into `out` (`channels * rows * cols` bytes, planar).
    /// Errors name the file that could not be read and what to do.
    fn read(&self, i: usize, view: View, out: &mut [u8]) -> Result<(), String>;

    /// Feeds what identifies the split's content to `field(name, bytes)`: a checkpoint is keyed by it,
    /// so another slice, file or labelling never resumes this run's training.
    fn identify(&self, field: &mut dyn FnMut(&str, &[u8]));
}

impl Examples for ImageSet {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn shape(&self) -> [usize; 3] {
        [self.channels, self.rows, self.cols]
    }

    fn label(&self, i: usize) -> usize {
        usize::from(self.labels[i])
    }

    fn read(&self, i: usize, _view: View, out: &mut [u8]) -> Result<(), String> {
        out.copy_from_slice(self.image(i));
        Ok(())
    }

    fn identify(&self, field: &mut dyn FnMut(&str, &[u8])) {
        // Grey sets keep the shape spelling of the checkpoints written before colour sets existed.
        let shape = match self.channels {
            1 => format!("{}x{}x{}", self.len(), self.rows, self.cols),
            c => format!("{}x{c}x{}x{}", self.len(), self.rows, self.cols),
        };
        field("shape", shape.as_bytes());
        field("images", &self.images);
        field("labels", &self.labels);
    }
}
