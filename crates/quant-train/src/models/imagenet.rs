//! The papers' ImageNet architectures at full size, for 224x224x3 inputs, built from the same blocks
//! as the proxies, each layer with the name torchvision's implementation gives it, so published
//! checkpoints load by name ([`crate::pretrained`]). Colour inputs (pixels / 255, as everywhere in
//! this suite) are first normalized with ImageNet's channel statistics ([`crate::layers::InputNorm`]),
//! the preprocessing those checkpoints were trained with.
//!
//! - ResNet-18 and ResNet-50 (He et al. 2016) as torchvision builds them: 7x7/2 stem with batch
//!   norm and ReLU, 3x3/2 max pool with 1 pixel of padding, four stages of basic blocks (18: 2, 2, 2,
//!   2) or bottlenecks (50: 3, 4, 6, 3, expansion 4, the stride on the 3x3 convolution: "v1.5"),
//!   projection shortcuts (1x1 conv + BN) where the shape changes, global average pooling, FC.
//! - MobileNetV2 (Sandler et al. 2018) as torchvision builds it: channels `c α` rounded to a multiple
//!   of 8 (never below 8 nor 10 % under `c α`), the last convolution `1280 max(1, α)`. torchvision's
//!   classifier has dropout 0.2 before the FC; the zoo has no dropout, which changes training only.
//! - MobileNetV1 (Howard et al. 2017), the architecture of Jacob et al.'s and Rusci et al.'s tables:
//!   3x3/2 stem of 32 channels, 13 depthwise-separable blocks up to 1024 channels, channels
//!   `max(⌊c α⌋, 8)` (TF-slim's depth multiplier). torchvision has no MobileNetV1, so its layers
//!   carry TF-slim-like names of this crate's choosing.

use super::{Builder, MOBILENET_V1_BLOCKS, MOBILENET_V2_STAGES};
use crate::layers::{Activation, MaxPool};

/// What a checkpoint calls one layer of the zoo's model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerName {
    /// A convolution (`<conv>.weight`, no bias) followed by batch norm (`<bn>.weight`, `.bias`,
    /// `.running_mean`, `.running_var`).
    ConvBn {
        /// Key prefix of the convolution.
        conv: String,
        /// Key prefix of the batch norm.
        bn: String,
    },
    /// A fully connected layer (`<prefix>.weight` `[out, in]`, `<prefix>.bias`).
    Linear(String),
}

impl LayerName {
    fn conv_bn(conv: impl Into<String>, bn: impl Into<String>) -> Self {
        LayerName::ConvBn {
            conv: conv.into(),
            bn: bn.into(),
        }
    }
}

/// torchvision's channel rounding for MobileNetV2 (`_make_divisible(v, 8)`).
fn divisible_by_8(v: f64) -> usize {
    let rounded = (((v + 4.0) as usize) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * v {
        rounded + 8
    } else {
        rounded
    }
}

/// ResNet-18 or ResNet-50 (any other depth is refused when the spec is parsed); returns the layer
/// names in [`crate::Net::layers`] order.
pub(super) fn resnet(b: &mut Builder, depth: usize, act: Activation) -> Vec<LayerName> {
    let mut names = vec![LayerName::conv_bn("conv1", "bn1")];
    b.imagenet_input();
    b.conv(64, 7, 2, false, act);
    b.pool(MaxPool {
        size: 3,
        stride: 2,
        padding: 1,
    });
    let (blocks, bottleneck) = match depth {
        50 => ([3, 4, 6, 3], true),
        _ => ([2, 2, 2, 2], false),
    };
    for (stage, (&n, width)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let c_in = b.channels;
            let prefix = format!("layer{}.{i}", stage + 1);
            let convs = if bottleneck {
                b.bottleneck_block(width, stride, act);
                3
            } else {
                b.basic_block(width, stride, act);
                2
            };
            for k in 1..=convs {
                names.push(LayerName::conv_bn(
                    format!("{prefix}.conv{k}"),
                    format!("{prefix}.bn{k}"),
                ));
            }
            if stride != 1 || c_in != b.channels {
                names.push(LayerName::conv_bn(
                    format!("{prefix}.downsample.0"),
                    format!("{prefix}.downsample.1"),
                ));
            }
        }
    }
    b.global_avg_pool();
    names.push(LayerName::Linear("fc".into()));
    names
}

/// MobileNetV2 at width multiplier `alpha`; returns the layer names in [`crate::Net::layers`] order.
pub(super) fn mobilenet_v2(b: &mut Builder, alpha: f64, act: Activation) -> Vec<LayerName> {
    let mut names = vec![LayerName::conv_bn("features.0.0", "features.0.1")];
    b.imagenet_input();
    b.conv(divisible_by_8(32.0 * alpha), 3, 2, false, act);
    let mut feature = 1;
    for (t, c, n, s) in MOBILENET_V2_STAGES {
        for i in 0..n {
            let p = format!("features.{feature}.conv");
            b.inverted_residual(
                divisible_by_8(c as f64 * alpha),
                if i == 0 { s } else { 1 },
                t,
                act,
            );
            if t == 1 {
                names.push(LayerName::conv_bn(format!("{p}.0.0"), format!("{p}.0.1")));
                names.push(LayerName::conv_bn(format!("{p}.1"), format!("{p}.2")));
            } else {
                names.push(LayerName::conv_bn(format!("{p}.0.0"), format!("{p}.0.1")));
                names.push(LayerName::conv_bn(format!("{p}.1.0"), format!("{p}.1.1")));
                names.push(LayerName::conv_bn(format!("{p}.2"), format!("{p}.3")));
            }
            feature += 1;
        }
    }
    b.conv(divisible_by_8(1280.0 * alpha.max(1.0)), 1, 1, false, act);
    names.push(LayerName::conv_bn(
        format!("features.{feature}.0"),
        format!("features.{feature}.1"),
    ));
    b.global_avg_pool();
    names.push(LayerName::Linear("classifier.1".into()));
    names
}

/// MobileNetV1 at width multiplier `alpha`; returns the layer names in [`crate::Net::layers`] order.
pub(super) fn mobilenet_v1(b: &mut Builder, alpha: f64, act: Activation) -> Vec<LayerName> {
    let width = |c: usize| ((c as f64 * alpha) as usize).max(8);
    let mut names = vec![LayerName::conv_bn("conv0", "conv0_bn")];
    b.imagenet_input();
    b.conv(width(32), 3, 2, false, act);
    for (i, (m, s)) in MOBILENET_V1_BLOCKS.into_iter().enumerate() {
        b.conv(b.channels, 3, s, true, act);
        b.conv(width(32 * m), 1, 1, false, act);
        let k = i + 1;
        names.push(LayerName::conv_bn(
            format!("conv{k}_dw"),
            format!("conv{k}_dw_bn"),
        ));
        names.push(LayerName::conv_bn(
            format!("conv{k}_pw"),
            format!("conv{k}_pw_bn"),
        ));
    }
    b.global_avg_pool();
    names.push(LayerName::Linear("fc".into()));
    names
}

#[cfg(test)]
mod tests {
    use crate::{ModelConfig, ModelSpec};
    use burn::prelude::*;

    fn params(spec: &str) -> (usize, usize) {
        let mut config = ModelConfig::new(spec.parse().unwrap(), 0);
        config.input = [3, 224, 224];
        config.classes = 1000;
        let (net, names) = config.build_named(&Device::flex());
        assert_eq!(net.layers().len(), names.len(), "{spec}");
        let count: usize = net
            .layers()
            .iter()
            .map(|l| {
                let bn = l.bn.as_ref().map_or(0, |b| 2 * b.gamma.val().dims()[0]);
                l.weight.val().shape().num_elements()
                    + l.bias.as_ref().map_or(0, |b| b.val().dims()[0])
                    + bn
            })
            .sum();
        (count, names.len())
    }

    /// The trainable parameter counts torchvision's models have (`sum(p.numel() for p in
    /// model.parameters())`: 11 689 512, 25 557 032, 3 504 872) and MobileNetV1's published
    /// 4.2 million, with one name per layer.
    #[test]
    fn full_size_models_have_the_published_parameter_counts() {
        assert_eq!(params("imagenet-resnet18"), (11_689_512, 21));
        assert_eq!(params("imagenet-resnet50"), (25_557_032, 54));
        assert_eq!(params("imagenet-mbv2:1"), (3_504_872, 53));
        let (v1, layers) = params("imagenet-mbv1:1");
        assert_eq!(layers, 28);
        assert!((4_200_000..4_300_000).contains(&v1), "{v1}");
        assert!(matches!(
            "imagenet-resnet34".parse::<ModelSpec>(),
            Err(e) if e.contains("imagenet-resnet18")
        ));
    }

    #[test]
    fn a_224_image_gives_logits() {
        let dev = Device::flex();
        let mut config = ModelConfig::new("imagenet-mbv2:0.35".parse().unwrap(), 0);
        config.input = [3, 224, 224];
        let net = config.build(&dev);
        let x = Tensor::<4>::ones([1, 3, 224, 224], &dev);
        let y = net.forward(x, &crate::Phase::EVAL);
        assert_eq!(y.dims(), [1, 10]);
    }
}
