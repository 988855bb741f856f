//! The proxy architectures as a small dataflow graph (dossier §8, §10): convolutions, residual
//! additions and a global-average-pool + FC head over numbered values. The same graph drives the
//! Burn QAT model ([`crate::model`]), the export to the integer engine and the operation counts.
//!
//! Conventions taken from the official code: every convolution is followed by batch norm; a ReLU is
//! never a node, it is the lower clamp of the consumer's unsigned 8-bit quantizer; MobileNetV2's
//! linear-bottleneck outputs are signed values; the two operands of a residual addition are expressed
//! in units of the same PACT clip level (one α per class of values linked by additions, the code's
//! "master layer" sharing), so the addition is a shift-aligned integer add.

use quant_train::models::{MOBILENET_V1_BLOCKS, MOBILENET_V2_STAGES};
use repro::datasets::DatasetName;

/// What a network reads and predicts: square images of `channels` planes, `side` pixels a side, and
/// `classes` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    pub channels: usize,
    pub side: usize,
    pub classes: usize,
}

impl Input {
    /// The images and classes of a data set (28x28 grey with 10 classes, or CIFAR's 32x32 colour).
    pub fn of(name: DatasetName) -> Input {
        let [channels, side, _] = name.image_shape();
        Input {
            channels,
            side,
            classes: name.classes(),
        }
    }
}

/// Which proxy network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    #[value(name = "mobilenetv2")]
    MobileNetV2,
    #[value(name = "mobilenetv1")]
    MobileNetV1,
    #[value(name = "resnet18")]
    ResNet18,
    #[value(name = "resnet50")]
    ResNet50,
}

/// A tensor of the graph. Value 0 is the input image (raw pixels, unsigned FL 8, no clip level).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    pub channels: usize,
    /// Quantized with a signed format (linear bottleneck outputs) instead of unsigned (post-ReLU).
    pub signed: bool,
    /// Index of the PACT clip level shared by this value's class; `None` for the input.
    pub alpha: Option<usize>,
}

/// A convolution (always followed by batch norm, folded).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvSpec {
    pub src: usize,
    /// The raw output (accumulator) value.
    pub dst: usize,
    /// The value in whose units (η) the output is expressed: `dst`, or the sum a residual branch
    /// feeds.
    pub units: usize,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub groups: usize,
}

impl ConvSpec {
    /// Stride, padding (`k / 2`, "same" at stride 1) and groups for the training convolution.
    pub fn settings(&self) -> quant_train::conv::ConvSettings {
        quant_train::conv::ConvSettings {
            stride: self.stride,
            padding: self.k / 2,
            groups: self.groups,
        }
    }
}

/// An operand of a residual addition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    /// A convolution output already in the sum's units.
    Raw(usize),
    /// The 8-bit quantized tensor of a value of the same α class (identity shortcut).
    Quantized(usize),
}

/// One step of the graph.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv(usize),
    Add {
        a: Operand,
        b: Operand,
        dst: usize,
    },
    /// Max pooling of the quantized `src` over `k x k` windows (padding never wins): `dst` holds
    /// the same codes in the same format, so it has no quantizer of its own.
    MaxPool {
        src: usize,
        dst: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
}

/// How the pixels enter the network (dossier §6, "first layer").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputCoding {
    /// Raw 8-bit pixels as unsigned codes of FL 8 (`pixel / 256`, no clip level): the
    /// conventional configurations and every proxy.
    Pixels,
    /// ImageNet's per-channel normalization `(pixel / 255 - mean) / std`
    /// ([`quant_train::layers::IMAGENET_MEAN`], [`quant_train::layers::IMAGENET_STD`]), quantized
    /// to signed codes of a statistically chosen FL: the tiny fine-tuning configurations, whose
    /// pretrained models expect normalized images.
    Normalized,
}

impl InputCoding {
    /// The real value channel `channel`'s `pixel` enters the network as: the one formula the
    /// training batches and the exported code tables share, so that they agree bit for bit.
    pub fn real(self, pixel: u8, channel: usize) -> f32 {
        use quant_train::layers::{IMAGENET_MEAN, IMAGENET_STD};
        match self {
            InputCoding::Pixels => f32::from(pixel) / 256.0,
            InputCoding::Normalized => {
                (f32::from(pixel) / 255.0 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
            }
        }
    }
}

/// A whole proxy network.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub arch: Arch,
    pub values: Vec<ValueSpec>,
    pub convs: Vec<ConvSpec>,
    pub ops: Vec<Op>,
    /// The value pooled and fed to the classifier.
    pub head: usize,
    pub classes: usize,
    pub alphas: usize,
    /// Input image side (square; value 0 holds its channels).
    pub side: usize,
    pub input: InputCoding,
}

struct Builder {
    values: Vec<ValueSpec>,
    convs: Vec<ConvSpec>,
    ops: Vec<Op>,
    alphas: usize,
}

impl Builder {
    fn new(channels: usize) -> Self {
        Builder {
            values: vec![ValueSpec {
                channels,
                signed: false,
                alpha: None,
            }],
            convs: Vec::new(),
            ops: Vec::new(),
            alphas: 0,
        }
    }

    fn value(&mut self, channels: usize, signed: bool, alpha: Option<usize>) -> usize {
        let alpha = alpha.or_else(|| {
            self.alphas += 1;
            Some(self.alphas - 1)
        });
        self.values.push(ValueSpec {
            channels,
            signed,
            alpha,
        });
        self.values.len() - 1
    }

    /// A conv from `src` writing a fresh value (or, with `units`, a raw branch of that sum).
    fn conv(&mut self, src: usize, cout: usize, k: usize, stride: usize, depthwise: bool) -> usize {
        let dst = self.value(cout, false, None);
        self.conv_into(src, dst, dst, cout, k, stride, depthwise);
        dst
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_into(
        &mut self,
        src: usize,
        dst: usize,
        units: usize,
        cout: usize,
        k: usize,
        stride: usize,
        depthwise: bool,
    ) {
        let cin = self.values[src].channels;
        self.convs.push(ConvSpec {
            src,
            dst,
            units,
            cin,
            cout,
            k,
            stride,
            groups: if depthwise { cin } else { 1 },
        });
        self.ops.push(Op::Conv(self.convs.len() - 1));
    }

    /// A raw branch value: no quantizer of its own, units of `sum`.
    fn branch(&mut self, src: usize, sum: usize, k: usize, stride: usize) -> usize {
        let cout = self.values[sum].channels;
        self.values.push(ValueSpec {
            channels: cout,
            signed: true,
            alpha: self.values[sum].alpha,
        });
        let dst = self.values.len() - 1;
        self.conv_into(src, dst, sum, cout, k, stride, false);
        dst
    }

    fn finish(self, arch: Arch, head: usize, input: Input, coding: InputCoding) -> Graph {
        Graph {
            arch,
            values: self.values,
            convs: self.convs,
            ops: self.ops,
            head,
            classes: input.classes,
            alphas: self.alphas,
            side: input.side,
            input: coding,
        }
    }

    /// Max pooling of `src` into a fresh value of the same format and clip level.
    fn max_pool(&mut self, src: usize, k: usize, stride: usize, pad: usize) -> usize {
        let spec = self.values[src].clone();
        self.values.push(spec);
        let dst = self.values.len() - 1;
        self.ops.push(Op::MaxPool {
            src,
            dst,
            k,
            stride,
            pad,
        });
        dst
    }

    fn set_signed(&mut self, v: usize) {
        self.values[v].signed = true;
    }

    fn mbv2_block(&mut self, x: usize, t: usize, cout: usize, stride: usize) -> usize {
        let cin = self.values[x].channels;
        let h = if t == 1 {
            x
        } else {
            self.conv(x, cin * t, 1, 1, false)
        };
        let d = self.conv(h, cin * t, 3, stride, true);
        if stride == 1 && cin == cout {
            let alpha = self.values[x].alpha;
            let sum = self.value(cout, true, alpha);
            let p = self.branch(d, sum, 1, 1);
            self.ops.push(Op::Add {
                a: Operand::Raw(p),
                b: Operand::Quantized(x),
                dst: sum,
            });
            sum
        } else {
            let p = self.conv(d, cout, 1, 1, false);
            self.set_signed(p);
            p
        }
    }

    /// MobileNetV1's depthwise-separable blocks from `x`: per `(m, s)` a 3x3 depthwise
    /// convolution of stride `s`, then a pointwise one to `w(base m)` channels.
    fn mobilenet_v1(
        &mut self,
        mut x: usize,
        base: usize,
        blocks: &[(usize, usize)],
        w: &dyn Fn(usize) -> usize,
    ) -> usize {
        for &(m, s) in blocks {
            let d = self.conv(x, self.values[x].channels, 3, s, true);
            x = self.conv(d, w(base * m), 1, 1, false);
        }
        x
    }

    /// MobileNetV2's inverted-residual stages `(t, c, n, s)` from `x`, then the 1x1 tail to
    /// `tail` channels.
    fn mobilenet_v2(
        &mut self,
        mut x: usize,
        stages: &[(usize, usize, usize, usize)],
        tail: usize,
        w: &dyn Fn(usize) -> usize,
    ) -> usize {
        for &(t, c, n, s) in stages {
            for i in 0..n {
                x = self.mbv2_block(x, t, w(c), if i == 0 { s } else { 1 });
            }
        }
        self.conv(x, tail, 1, 1, false)
    }

    /// ResNet stages `(mid, blocks, first stride)` from `x`.
    fn resnet(
        &mut self,
        mut x: usize,
        stages: &[(usize, usize, usize)],
        bottleneck: bool,
        w: &dyn Fn(usize) -> usize,
    ) -> usize {
        for &(mid, n, s) in stages {
            for i in 0..n {
                x = self.resnet_block(x, w(mid), if i == 0 { s } else { 1 }, bottleneck);
            }
        }
        x
    }

    /// Basic (two 3x3) or bottleneck (1x1, 3x3 with the stride, 1x1 to `4 mid`) residual block.
    fn resnet_block(&mut self, x: usize, mid: usize, stride: usize, bottleneck: bool) -> usize {
        let cin = self.values[x].channels;
        let cout = if bottleneck { 4 * mid } else { mid };
        let identity = stride == 1 && cin == cout;
        let alpha = if identity { self.values[x].alpha } else { None };
        let sum = self.value(cout, false, alpha);
        let main = if bottleneck {
            let a = self.conv(x, mid, 1, 1, false);
            let b = self.conv(a, mid, 3, stride, false);
            self.branch(b, sum, 1, 1)
        } else {
            let a = self.conv(x, mid, 3, stride, false);
            self.branch(a, sum, 3, 1)
        };
        let b = if identity {
            Operand::Quantized(x)
        } else {
            Operand::Raw(self.branch(x, sum, 1, stride))
        };
        self.ops.push(Op::Add {
            a: Operand::Raw(main),
            b,
            dst: sum,
        });
        sum
    }
}

impl Graph {
    /// The proxy of dossier §10 with channel widths multiplied by `width` (at least 1 channel; the
    /// MobileNetV2 expansion keeps its factor 6), for `input`'s images and classes.
    pub fn proxy(arch: Arch, width: f64, input: Input) -> Graph {
        let w = |c: usize| ((c as f64 * width).round() as usize).max(1);
        let mut b = Builder::new(input.channels);
        let head = match arch {
            Arch::MobileNetV1 => {
                let x = b.conv(0, w(16), 3, 1, false);
                b.mobilenet_v1(x, 16, &MOBILENET_V1_BLOCKS[..6], &w)
            }
            Arch::MobileNetV2 => {
                let x = b.conv(0, w(16), 3, 1, false);
                let stages = [
                    (1, 8, 1, 1),
                    (6, 16, 2, 2),
                    (6, 24, 2, 2),
                    (6, 32, 2, 2),
                    (6, 48, 1, 1),
                ];
                b.mobilenet_v2(x, &stages, w(256), &w)
            }
            Arch::ResNet18 | Arch::ResNet50 => {
                let bottleneck = arch == Arch::ResNet50;
                let (stem, blocks) = if bottleneck { (16, 1) } else { (8, 2) };
                let x = b.conv(0, w(stem), 3, 1, false);
                let stages = [
                    (8, blocks, 1),
                    (16, blocks, 2),
                    (32, blocks, 2),
                    (64, blocks, 2),
                ];
                b.resnet(x, &stages, bottleneck, &w)
            }
        };
        b.finish(arch, head, input, InputCoding::Pixels)
    }

    /// The paper's ImageNet network of `arch` (dossier §8) with channel widths multiplied by
    /// `width` (1 for the paper and published checkpoints; smaller in tests), its pixels entering
    /// as `coding` says (raw in the conventional configurations, normalized in tiny fine-tuning).
    /// MobileNetV1 1.0: 3x3/2 stem of 32 channels, 13 depthwise-separable blocks up to 1024.
    /// MobileNetV2b 1.0 (PyTorchCV's `mobilenetv2b_w1`, torchvision's layout): 3x3/2 stem of 32,
    /// the seven inverted-residual stages of the paper's Table 2, 1x1 tail to 1280. ResNet-18 and
    /// ResNet-50 as torchvision builds them: 7x7/2 stem, 3x3/2 max pool with one pixel of padding,
    /// basic blocks (2, 2, 2, 2) or bottlenecks (3, 4, 6, 3, the stride on the 3x3 convolution).
    pub fn imagenet(arch: Arch, width: f64, input: Input, coding: InputCoding) -> Graph {
        let w = |c: usize| ((c as f64 * width).round() as usize).max(1);
        let mut b = Builder::new(input.channels);
        if coding == InputCoding::Normalized {
            b.set_signed(0);
        }
        let head = match arch {
            Arch::MobileNetV1 => {
                let x = b.conv(0, w(32), 3, 2, false);
                b.mobilenet_v1(x, 32, &MOBILENET_V1_BLOCKS, &w)
            }
            Arch::MobileNetV2 => {
                let x = b.conv(0, w(32), 3, 2, false);
                b.mobilenet_v2(x, &MOBILENET_V2_STAGES, w(1280), &w)
            }
            Arch::ResNet18 | Arch::ResNet50 => {
                let (n, bottleneck) = match arch {
                    Arch::ResNet50 => ([3, 4, 6, 3], true),
                    _ => ([2, 2, 2, 2], false),
                };
                let stem = b.conv(0, w(64), 7, 2, false);
                let x = b.max_pool(stem, 3, 2, 1);
                let stages = [
                    (64, n[0], 1),
                    (128, n[1], 2),
                    (256, n[2], 2),
                    (512, n[3], 2),
                ];
                b.resnet(x, &stages, bottleneck, &w)
            }
        };
        b.finish(arch, head, input, coding)
    }

    /// The value whose quantizer gives `v` its format: `v` itself, or for a max pool's output the
    /// pooled value's.
    pub fn format_source(&self, v: usize) -> usize {
        self.ops
            .iter()
            .find_map(|op| match op {
                Op::MaxPool { src, dst, .. } if *dst == v => Some(self.format_source(*src)),
                _ => None,
            })
            .unwrap_or(v)
    }

    /// Spatial side of every value (square maps), from the strides.
    pub fn sides(&self) -> Vec<usize> {
        let mut side = vec![self.side; self.values.len()];
        for op in &self.ops {
            match op {
                Op::Conv(c) => {
                    let c = &self.convs[*c];
                    side[c.dst] = (side[c.src] + 2 * (c.k / 2) - c.k) / c.stride + 1;
                }
                Op::Add {
                    a: Operand::Raw(a),
                    dst,
                    ..
                } => side[*dst] = side[*a],
                Op::Add { .. } => {}
                Op::MaxPool {
                    src,
                    dst,
                    k,
                    stride,
                    pad,
                } => side[*dst] = (side[*src] + 2 * pad - k) / stride + 1,
            }
        }
        side
    }

    /// Multiply-accumulates of one inference (convolutions and the classifier).
    pub fn macs(&self) -> u64 {
        let side = self.sides();
        let convs: usize = self
            .convs
            .iter()
            .map(|c| side[c.dst] * side[c.dst] * c.cout * (c.cin / c.groups) * c.k * c.k)
            .sum();
        (convs + self.values[self.head].channels * self.classes) as u64
    }

    /// Trainable parameters (conv weights, BN γ/β, clip levels, classifier).
    pub fn params(&self) -> usize {
        let convs: usize = self
            .convs
            .iter()
            .map(|c| c.cout * (c.cin / c.groups) * c.k * c.k + 2 * c.cout)
            .sum();
        let head = self.values[self.head].channels;
        convs + self.alphas + head * self.classes + self.classes
    }

    /// Whether a value is quantized by a consumer (raw branch values only feed additions).
    pub fn is_quantized(&self, v: usize) -> bool {
        v == self.head
            || self.convs.iter().any(|c| c.src == v)
            || self.ops.iter().any(|op| match op {
                Op::Add {
                    b: Operand::Quantized(q),
                    ..
                }
                | Op::MaxPool { src: q, .. } => *q == v,
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey() -> Input {
        Input::of(DatasetName::FashionMnist)
    }

    #[test]
    fn proxies_end_at_4x4_and_have_the_dossier_sizes() {
        for (arch, macs_m) in [
            (Arch::MobileNetV1, 4.2),
            (Arch::MobileNetV2, 3.6),
            (Arch::ResNet18, 7.1),
            (Arch::ResNet50, 6.0),
        ] {
            let g = Graph::proxy(arch, 1.0, grey());
            assert_eq!(g.sides()[g.head], 4, "{arch:?}");
            let m = g.macs() as f64 / 1e6;
            assert!((m - macs_m).abs() / macs_m < 0.35, "{arch:?}: {m} M MACs");
        }
    }

    #[test]
    fn residual_operands_share_the_clip_level() {
        for arch in [Arch::MobileNetV2, Arch::ResNet18, Arch::ResNet50] {
            let g = Graph::proxy(arch, 1.0, grey());
            let adds: Vec<_> = g
                .ops
                .iter()
                .filter_map(|op| match op {
                    Op::Add { a, b, dst } => Some((*a, *b, *dst)),
                    _ => None,
                })
                .collect();
            assert!(!adds.is_empty());
            for (a, b, dst) in adds {
                for o in [a, b] {
                    let v = match o {
                        Operand::Raw(v) | Operand::Quantized(v) => v,
                    };
                    assert_eq!(g.values[v].alpha, g.values[dst].alpha);
                    if let Operand::Raw(v) = o {
                        let conv = g.convs.iter().find(|c| c.dst == v).unwrap();
                        assert_eq!(conv.units, dst);
                    }
                }
            }
        }
    }

    #[test]
    fn mobilenetv2_bottleneck_outputs_are_signed() {
        let g = Graph::proxy(Arch::MobileNetV2, 1.0, grey());
        let tail = g.convs.last().unwrap();
        assert!(
            g.values[tail.src].signed,
            "tail conv input is a linear bottleneck"
        );
        assert!(!g.values[g.head].signed);
        assert!(g.convs.iter().any(|c| c.groups == c.cin && c.cin > 1));
    }

    /// torchvision's parameter counts (`sum(p.numel())`: 11 689 512 and 25 557 032, the graph's
    /// clip levels aside) and multiply-accumulates (1.81 and 4.09 G), a 7x7 map before the pool;
    /// the MobileNets' published sizes.
    #[test]
    fn imagenet_networks_have_the_published_sizes() {
        let input = Input {
            channels: 3,
            side: 224,
            classes: 1000,
        };
        for (arch, params, gmacs) in [
            (Arch::ResNet18, 11_689_512, 1.81),
            (Arch::ResNet50, 25_557_032, 4.09),
        ] {
            let g = Graph::imagenet(arch, 1.0, input, InputCoding::Normalized);
            assert_eq!(g.params() - g.alphas, params, "{arch:?}");
            let m = g.macs() as f64 / 1e9;
            assert!((m - gmacs).abs() < 0.02, "{arch:?}: {m} G MACs");
            assert_eq!(g.sides()[g.head], 7);
            assert_eq!(g.input, InputCoding::Normalized);
            assert!(g.values[0].signed);
        }
        // MobileNetV1 1.0 (4.2 M parameters, 569 M MACs) and MobileNetV2b 1.0 (torchvision's
        // 3 504 872 parameters, 300 M MACs), raw pixels in.
        let v1 = Graph::imagenet(Arch::MobileNetV1, 1.0, input, InputCoding::Pixels);
        assert!((4_200_000..4_300_000).contains(&(v1.params() - v1.alphas)));
        assert!(
            (v1.macs() as f64 / 1e6 - 569.0).abs() < 3.0,
            "{}",
            v1.macs()
        );
        assert!(!v1.values[0].signed);
        let v2 = Graph::imagenet(Arch::MobileNetV2, 1.0, input, InputCoding::Pixels);
        assert_eq!(v2.params() - v2.alphas, 3_504_872);
        assert!(
            (v2.macs() as f64 / 1e6 - 300.0).abs() < 3.0,
            "{}",
            v2.macs()
        );
        for g in [&v1, &v2] {
            assert_eq!(g.sides()[g.head], 7);
        }
    }
}
