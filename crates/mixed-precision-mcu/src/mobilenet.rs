//! MobileNetV1 layer shapes at any resolution and width multiplier (dossier §6).
//!
//! The memory model and the bit-width assignment only need, per counted layer, the element counts of its
//! input and output activations, its weight count and its MACs. The same code describes the ImageNet
//! family (base 32 channels, RGB, 1000 classes) and the proxy TinyMbV1 family (base 8 or 16 channels,
//! grey input, 10 classes, §10.1), so the golden tables of both run through one implementation.

use std::fmt;

use quant_train::models::MOBILENET_V1_BLOCKS;

/// What a counted layer computes; BN, ReLU6/PACT and the average pool are not separate layers (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// The first 3x3 convolution (stride 2) on the image.
    Conv0,
    /// Depthwise 3x3 convolution.
    Depthwise,
    /// Pointwise 1x1 convolution.
    Pointwise,
    /// A fully connected hidden layer on its whole input map (an MLP's; deployed as a convolution
    /// whose window is the map), with batch norm and the quantized activation like a convolution.
    Dense,
    /// The classifier after the global average pool.
    Fc,
}

impl LayerKind {
    /// Short name used in tables (`conv`, `dw`, `pw`, `fc`).
    pub fn short(self) -> &'static str {
        match self {
            LayerKind::Conv0 => "conv",
            LayerKind::Depthwise => "dw",
            LayerKind::Pointwise => "pw",
            LayerKind::Dense => "dense",
            LayerKind::Fc => "fc",
        }
    }
}

/// One counted layer with the sizes the memory model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShape {
    pub kind: LayerKind,
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
    /// Spatial side of the input (square maps); 1 for the FC.
    pub hw_in: usize,
    /// Spatial side of the output; 1 for the FC.
    pub hw_out: usize,
    /// Input activation elements `|X|` (for the FC: the pooled vector of `cin` elements).
    pub in_elems: u64,
    /// Output activation elements `|Y|`.
    pub out_elems: u64,
    /// Weight parameters `|W|` (the convolutions carry no bias).
    pub weights: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
}

/// A MobileNetV1 family member: `R_α` in the paper's notation, plus the family's base widths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MobileNetV1 {
    /// Input side in pixels.
    pub resolution: usize,
    /// Width multiplier α; channel counts are `int(α·c)` as in TF-slim.
    pub width: f64,
    /// Channels of the first convolution at α = 1 (32 for ImageNet, 8 or 16 for the proxy).
    pub base_channels: usize,
    /// Image channels (3 for RGB, 1 for MNIST-like data).
    pub in_channels: usize,
    /// Classifier outputs.
    pub classes: usize,
}

/// Number of counted layers of every MobileNetV1: conv0, 13 x (dw, pw), FC.
pub const NUM_LAYERS: usize = 28;

impl MobileNetV1 {
    /// The ImageNet family of the paper (base 32, RGB, 1000 classes).
    pub fn imagenet(resolution: usize, width: f64) -> Self {
        MobileNetV1 {
            resolution,
            width,
            base_channels: 32,
            in_channels: 3,
            classes: 1000,
        }
    }

    /// The proxy TinyMbV1 of §10.1: base 8 (or 16 for the wider fallback), grey input, 10 classes.
    pub fn tiny(resolution: usize, width: f64, base_channels: usize) -> Self {
        MobileNetV1 {
            resolution,
            width,
            base_channels,
            in_channels: 1,
            classes: 10,
        }
    }

    /// `int(α·c)`: truncation, as Python's `int()` in TF-slim's depth multiplier.
    pub fn channels(&self, base_multiple: usize) -> usize {
        (self.width * (self.base_channels * base_multiple) as f64) as usize
    }

    /// The 28 counted layers in forward order. Spatial sizes follow TF-SAME padding,
    /// `out = ceil(in / stride)`; the padding halo is not counted (§2.1).
    ///
    /// # Panics
    /// When a count overflows `u64`; configurations from the command line pass [`Self::check_size`]
    /// first, and the paper's and the proxy's families are far below the limit.
    pub fn layers(&self) -> Vec<LayerShape> {
        self.try_layers()
            .expect("layer sizes overflow u64: check the configuration with check_size")
    }

    /// [`Self::layers`] with checked arithmetic: `None` when a count does not fit in `u64`.
    pub fn try_layers(&self) -> Option<Vec<LayerShape>> {
        let mut layers = Vec::with_capacity(NUM_LAYERS);
        let c0 = self.channels(1);
        let hw0 = self.resolution.div_ceil(2);
        layers.push(conv_layer(
            LayerKind::Conv0,
            self.in_channels,
            c0,
            2,
            self.resolution,
            mul(&[9, self.in_channels as u64, c0 as u64])?,
        )?);
        let (mut c, mut hw) = (c0, hw0);
        for (multiple, stride) in MOBILENET_V1_BLOCKS {
            let out_hw = hw.div_ceil(stride);
            layers.push(conv_layer(
                LayerKind::Depthwise,
                c,
                c,
                stride,
                hw,
                mul(&[9, c as u64])?,
            )?);
            let cout = self.channels(multiple);
            layers.push(conv_layer(
                LayerKind::Pointwise,
                c,
                cout,
                1,
                out_hw,
                mul(&[c as u64, cout as u64])?,
            )?);
            (c, hw) = (cout, out_hw);
        }
        layers.push(dense_layer(LayerKind::Fc, c, self.classes, 1)?);
        Some(layers)
    }

    /// Whether the memory model can describe this configuration in 64-bit counts: the layers, and
    /// the largest sums the assignment forms from them (all weights and all activations at 8 bits,
    /// threshold tables at 8 bits, total MACs). The error names the largest resolution that fits.
    pub fn check_size(&self) -> Result<(), String> {
        if self.fits() {
            return Ok(());
        }
        let (mut lo, mut hi) = (1usize, self.resolution);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if (MobileNetV1 {
                resolution: mid,
                ..*self
            })
            .fits()
            {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Err(format!(
            "--resolution {} overflows the memory model's 64-bit byte counts at this width: use at most {lo}",
            self.resolution
        ))
    }

    fn fits(&self) -> bool {
        let Some(layers) = self.try_layers() else {
            return false;
        };
        let sum = |f: &dyn Fn(&LayerShape) -> Option<u64>| {
            layers
                .iter()
                .try_fold(0u64, |acc, l| acc.checked_add(f(l)?))
        };
        // Each bound is what the memory model multiplies at most: 8 bits per element or weight,
        // 255 two-byte thresholds per output channel, and a factor 10 000 of headroom for the
        // basis-point tie window of the weight cuts.
        sum(&|l| mul(&[l.in_elems.checked_add(l.out_elems)?, 8])).is_some()
            && sum(&|l| mul(&[l.weights, 8, 10_000])).is_some()
            && sum(&|l| mul(&[l.cout as u64, 255, 2, 8])).is_some()
            && sum(&|l| Some(l.macs)).is_some()
    }

    /// Total weight parameters.
    pub fn params(&self) -> u64 {
        self.layers().iter().map(|l| l.weights).sum()
    }

    /// Total MACs per image (conv0, all dw/pw and the FC).
    pub fn macs(&self) -> u64 {
        self.layers().iter().map(|l| l.macs).sum()
    }

    /// `224_0.75`-style name used in the dossier's tables.
    pub fn config_name(&self) -> String {
        format!("{}_{}", self.resolution, width_label(self.width))
    }
}

impl fmt::Display for MobileNetV1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.config_name())
    }
}

/// `1.0`, `0.75`, `0.5`, `0.25`: the spelling of the dossier's configuration names.
pub fn width_label(width: f64) -> String {
    let s = format!("{width}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// A convolution layer; MACs are `|W|` per output pixel for every kind (depthwise `|W| = 9C`).
/// `None` when a count overflows `u64`.
fn conv_layer(
    kind: LayerKind,
    cin: usize,
    cout: usize,
    stride: usize,
    hw_in: usize,
    weights: u64,
) -> Option<LayerShape> {
    let hw_out = hw_in.div_ceil(stride);
    let out_pixels = mul(&[hw_out as u64, hw_out as u64])?;
    Some(LayerShape {
        kind,
        cin,
        cout,
        stride,
        hw_in,
        hw_out,
        in_elems: mul(&[cin as u64, hw_in as u64, hw_in as u64])?,
        out_elems: mul(&[cout as u64, out_pixels])?,
        weights,
        macs: mul(&[weights, out_pixels])?,
    })
}

/// A fully connected layer of `kind` ([`LayerKind::Dense`] or [`LayerKind::Fc`]) on a whole
/// `hw_in x hw_in x cin` map (the FC's input is the pooled vector, `hw_in = 1`): one output pixel,
/// MACs equal to its weights. `None` when a count overflows `u64`.
pub fn dense_layer(kind: LayerKind, cin: usize, cout: usize, hw_in: usize) -> Option<LayerShape> {
    let in_elems = mul(&[cin as u64, hw_in as u64, hw_in as u64])?;
    let weights = mul(&[in_elems, cout as u64])?;
    Some(LayerShape {
        kind,
        cin,
        cout,
        stride: 1,
        hw_in,
        hw_out: 1,
        in_elems,
        out_elems: cout as u64,
        weights,
        macs: weights,
    })
}

/// The product of `factors`, `None` on overflow.
fn mul(factors: &[u64]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f))
}

/// The paper's 16 configurations, resolution-major as in its tables.
pub fn imagenet_family() -> Vec<MobileNetV1> {
    let mut v = Vec::new();
    for r in [224, 192, 160, 128] {
        for w in [1.0, 0.75, 0.5, 0.25] {
            v.push(MobileNetV1::imagenet(r, w));
        }
    }
    v
}

/// The 16 proxy configurations of §10.1: resolutions 224·{1, 6/7, 5/7, 4/7}/8.
pub fn tiny_family(base_channels: usize) -> Vec<MobileNetV1> {
    let mut v = Vec::new();
    for r in [28, 24, 20, 16] {
        for w in [1.0, 0.75, 0.5, 0.25] {
            v.push(MobileNetV1::tiny(r, w, base_channels));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_configurations_fit_and_absurd_resolutions_are_refused() {
        for m in imagenet_family().into_iter().chain(tiny_family(8)) {
            assert!(m.check_size().is_ok(), "{m}");
        }
        let huge = MobileNetV1::imagenet(usize::MAX / 4, 1.0);
        assert!(huge.try_layers().is_none());
        let e = huge.check_size().unwrap_err();
        let max: usize = e.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(MobileNetV1::imagenet(max, 1.0).check_size().is_ok(), "{e}");
        assert!(
            MobileNetV1::imagenet(max + 1, 1.0).check_size().is_err(),
            "{e}"
        );
    }
}
