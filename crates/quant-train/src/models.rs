//! The model zoo: every model is a [`Net`], a flat list of [`Block`]s built from the quantizable
//! layers of [`crate::layers`], so training, QAT and export walk one structure.
//!
//! The proxies' sizes are chosen for 28x28x1 inputs (MNIST, Fashion-MNIST); any `[C, H, W]` input
//! works. The papers' own ImageNet architectures at full size ([`imagenet`]) are the same blocks.

pub mod imagenet;

use std::str::FromStr;

use burn::prelude::*;

use crate::layers::{
    Activation, ActivationQuant, GlobalAvgPool, InputNorm, MaxPool, Phase, QAdd, QLayer,
};
use crate::quant::QuantizerRef;
use crate::rng::Rng;

/// MobileNetV1's 13 depthwise-separable blocks (Howard et al. 2017, Table 1): each block's
/// pointwise output channels as a multiple of the stem's channels, and its depthwise stride. The
/// ImageNet network runs all 13 after a 32-channel stem; every proxy in the workspace (the zoo's
/// `mbv1`, F8Net's, Rusci's TinyMbV1) runs a prefix of them after a narrower stem.
pub const MOBILENET_V1_BLOCKS: [(usize, usize); 13] = [
    (2, 1),
    (4, 2),
    (4, 1),
    (8, 2),
    (8, 1),
    (16, 2),
    (16, 1),
    (16, 1),
    (16, 1),
    (16, 1),
    (16, 1),
    (32, 2),
    (32, 1),
];

/// MobileNetV2's inverted-residual stages (Sandler et al. 2018, Table 2): expansion t, output
/// channels c, repeats n and the first repeat's stride s, after a 32-channel 3x3/2 stem. The zoo's
/// ImageNet MobileNetV2 and F8Net's build the same network from it.
pub const MOBILENET_V2_STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// A residual unit: `act(body(x) + shortcut(x))` (ResNet basic block, MobileNetV2 inverted
/// residual). Without a shortcut layer the input is added as is.
#[derive(Module, Debug)]
pub struct Residual {
    /// Main branch.
    pub body: Vec<QLayer>,
    /// Projection shortcut (1x1 conv + BN) when the shape changes.
    pub shortcut: Option<QLayer>,
    /// The add, its activation and its output quantization.
    pub add: QAdd,
}

/// One step of a [`Net`].
#[derive(Module, Debug)]
pub enum Block {
    /// Conv or FC layer.
    Layer(QLayer),
    /// Max pooling.
    MaxPool(MaxPool),
    /// Global average pooling (shares the previous stage's quantization grid).
    GlobalAvgPool(GlobalAvgPool),
    /// Residual unit.
    Residual(Residual),
    /// Per-channel input normalization (the ImageNet models' first block).
    InputNorm(InputNorm),
}

impl Block {
    /// The block's forward pass; `last` is the stage that produced `x` (`None`: the exact uint8
    /// input), which global average pooling re-quantizes on. Public so that tools can run a net
    /// block by block (the engine-vs-simulation diagnosis in [`crate::export`]).
    pub fn forward(
        &self,
        x: Tensor<4>,
        last: Option<&ActivationQuant>,
        phase: &Phase,
    ) -> Tensor<4> {
        match self {
            Block::Layer(l) => l.forward(x, phase),
            Block::MaxPool(p) => p.forward(x),
            Block::InputNorm(n) => n.forward(x, phase),
            Block::GlobalAvgPool(g) => g.forward(x, last, phase),
            Block::Residual(r) => {
                let main = run_layers(&r.body, x.clone(), phase);
                let short = match &r.shortcut {
                    Some(s) => s.forward(x, phase),
                    None => x,
                };
                r.add.forward(main, short, phase)
            }
        }
    }

    /// The output stage that produces this block's tensor; `None` for pools, whose output keeps
    /// the grid of their input.
    pub fn output_stage(&self) -> Option<&ActivationQuant> {
        match self {
            Block::Layer(l) => Some(&l.output),
            Block::Residual(r) => Some(&r.add.output),
            Block::InputNorm(n) => Some(&n.output),
            Block::MaxPool(_) | Block::GlobalAvgPool(_) => None,
        }
    }
}

/// A feed-forward network: input `[N, C, H, W]` with values in `[0, 1]` (pixels / 255, so the
/// input array is exactly uint8 with `S = 1/255`, `Z = 0`), output logits `[N, classes]`.
#[derive(Module, Debug)]
pub struct Net {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
    /// Number of classes (width of the logits).
    pub classes: usize,
}

fn run_layers(layers: &[QLayer], x: Tensor<4>, phase: &Phase) -> Tensor<4> {
    layers.iter().fold(x, |x, l| l.forward(x, phase))
}

impl Net {
    /// Logits for a batch.
    pub fn forward(&self, x: Tensor<4>, phase: &Phase) -> Tensor<2> {
        let n = x.dims()[0];
        // The stage that produced the current tensor (None: the exact uint8 input).
        let mut last: Option<&ActivationQuant> = None;
        let mut x = x;
        for b in &self.blocks {
            x = b.forward(x, last, phase);
            last = b.output_stage().or(last);
        }
        x.reshape([n, self.classes])
    }

    /// Every weight layer, in execution order (body before shortcut).
    pub fn layers(&self) -> Vec<&QLayer> {
        let mut out = Vec::new();
        for b in &self.blocks {
            match b {
                Block::Layer(l) => out.push(l),
                Block::Residual(r) => {
                    out.extend(r.body.iter());
                    out.extend(r.shortcut.iter());
                }
                Block::MaxPool(_) | Block::GlobalAvgPool(_) | Block::InputNorm(_) => {}
            }
        }
        out
    }

    /// The decay term of every learned weight range ([`QLayer::learned_range`]) for the training
    /// loss; `None` when no layer has one, so that models without them train as before.
    pub fn learned_range_penalty(&self) -> Option<Tensor<1>> {
        self.layers()
            .into_iter()
            .filter_map(|l| l.learned_range.as_ref())
            .map(|r| r.penalty())
            .reduce(|a, b| a + b)
    }

    /// Sets the weight quantizer of every layer and the activation quantizer of every output stage
    /// (`None` = float). Use [`Net::map_layers`] and [`Net::map_output_stages`] for per-layer
    /// choices (e.g. Rusci's mixed precision).
    pub fn set_quantizers(&mut self, weight: Option<QuantizerRef>, act: Option<QuantizerRef>) {
        self.map_layers(|_, l| l.weight_quantizer = weight.clone());
        self.map_output_stages(|_, s| s.quantizer = act.clone());
    }

    /// Calls `f(index, layer)` on every weight layer in the order of [`Net::layers`].
    pub fn map_layers(&mut self, mut f: impl FnMut(usize, &mut QLayer)) {
        let mut i = 0;
        let mut visit = |l: &mut QLayer| {
            f(i, l);
            i += 1;
        };
        for b in &mut self.blocks {
            match b {
                Block::Layer(l) => visit(l),
                Block::Residual(r) => {
                    r.body.iter_mut().for_each(&mut visit);
                    r.shortcut.iter_mut().for_each(&mut visit);
                }
                Block::MaxPool(_) | Block::GlobalAvgPool(_) | Block::InputNorm(_) => {}
            }
        }
    }

    /// Calls `f(index, stage)` on every output stage (input normalization, layers, adds) in
    /// execution order.
    pub fn map_output_stages(&mut self, mut f: impl FnMut(usize, &mut ActivationQuant)) {
        let mut i = 0;
        let mut visit = |s: &mut ActivationQuant| {
            f(i, s);
            i += 1;
        };
        for b in &mut self.blocks {
            match b {
                Block::Layer(l) => visit(&mut l.output),
                Block::Residual(r) => {
                    r.body.iter_mut().for_each(|l| visit(&mut l.output));
                    r.shortcut.iter_mut().for_each(|l| visit(&mut l.output));
                    visit(&mut r.add.output);
                }
                Block::InputNorm(n) => visit(&mut n.output),
                Block::MaxPool(_) | Block::GlobalAvgPool(_) => {}
            }
        }
    }
}

/// Which model to build; parsed from the CLI strings shown on each variant.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `mlp:256,128`: fully connected hidden layers of these widths (no batch norm).
    Mlp(Vec<usize>),
    /// `cnn` or `cnn:32,64,128`: [conv3x3-BN-act-maxpool2] per width, the last block with global
    /// average pooling instead of max pooling, then FC (dossier §11.1 P-CNN).
    Cnn(Vec<usize>),
    /// `mbv1:0.5`: MobileNetV1 with width multiplier α (depthwise separable blocks).
    MobileNetV1(f64),
    /// `mbv2:0.5`: MobileNetV2 with width multiplier α (inverted residuals, expansion 4, linear
    /// bottlenecks).
    MobileNetV2(f64),
    /// `resnet8`, `resnet14`, `resnet20`: CIFAR-style ResNet-(6n+2), stages 16/32/64.
    ResNetCifar(usize),
    /// `resnet18` or `resnet18:16`: ResNet-18 layout (4 stages x 2 basic blocks) with the given
    /// base width (64 in the original; stages base, 2 base, 4 base, 8 base).
    ResNet18(usize),
    /// `imagenet-resnet18`, `imagenet-resnet50`: the ImageNet ResNets at full size
    /// ([`imagenet::resnet`]).
    ImageNetResNet(usize),
    /// `imagenet-mbv1:α`: MobileNetV1 at full size ([`imagenet::mobilenet_v1`]).
    ImageNetMobileNetV1(f64),
    /// `imagenet-mbv2:α`: MobileNetV2 at full size ([`imagenet::mobilenet_v2`]).
    ImageNetMobileNetV2(f64),
}

impl FromStr for ModelSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let bad = |what: &str| format!("bad model {s:?}: {what}");
        let widths = |default: &[usize]| -> Result<Vec<usize>, String> {
            if arg.is_empty() {
                return Ok(default.to_vec());
            }
            arg.split(',')
                .map(|w| match w.trim().parse::<usize>() {
                    Ok(v) if v > 0 => Ok(v),
                    _ => Err(bad("widths must be positive integers like 256,128")),
                })
                .collect()
        };
        let multiplier = || -> Result<f64, String> {
            match arg.parse::<f64>() {
                Ok(a) if a > 0.0 && a <= 4.0 => Ok(a),
                _ => Err(bad("give a width multiplier in (0, 4], e.g. mbv1:0.5")),
            }
        };
        match name {
            "mlp" => Ok(ModelSpec::Mlp(widths(&[256, 128])?)),
            "cnn" => Ok(ModelSpec::Cnn(widths(&[32, 64, 128])?)),
            "mbv1" => Ok(ModelSpec::MobileNetV1(multiplier()?)),
            "mbv2" => Ok(ModelSpec::MobileNetV2(multiplier()?)),
            "resnet8" => Ok(ModelSpec::ResNetCifar(8)),
            "resnet14" => Ok(ModelSpec::ResNetCifar(14)),
            "resnet20" => Ok(ModelSpec::ResNetCifar(20)),
            "resnet18" => Ok(ModelSpec::ResNet18(
                *widths(&[64])?
                    .first()
                    .ok_or_else(|| bad("resnet18 takes one base width"))?,
            )),
            "imagenet-resnet18" => Ok(ModelSpec::ImageNetResNet(18)),
            "imagenet-resnet50" => Ok(ModelSpec::ImageNetResNet(50)),
            "imagenet-mbv1" => Ok(ModelSpec::ImageNetMobileNetV1(multiplier()?)),
            "imagenet-mbv2" => Ok(ModelSpec::ImageNetMobileNetV2(multiplier()?)),
            _ => Err(bad(
                "use mlp[:w,..], cnn[:w,..], mbv1:α, mbv2:α, resnet8, resnet14, resnet20, resnet18[:base], \
                 imagenet-resnet18, imagenet-resnet50, imagenet-mbv1:α, imagenet-mbv2:α",
            )),
        }
    }
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |w: &[usize]| {
            w.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            ModelSpec::Mlp(w) => write!(f, "mlp:{}", join(w)),
            ModelSpec::Cnn(w) => write!(f, "cnn:{}", join(w)),
            ModelSpec::MobileNetV1(a) => write!(f, "mbv1:{a}"),
            ModelSpec::MobileNetV2(a) => write!(f, "mbv2:{a}"),
            ModelSpec::ResNetCifar(d) => write!(f, "resnet{d}"),
            ModelSpec::ResNet18(b) => write!(f, "resnet18:{b}"),
            ModelSpec::ImageNetResNet(d) => write!(f, "imagenet-resnet{d}"),
            ModelSpec::ImageNetMobileNetV1(a) => write!(f, "imagenet-mbv1:{a}"),
            ModelSpec::ImageNetMobileNetV2(a) => write!(f, "imagenet-mbv2:{a}"),
        }
    }
}

/// Everything needed to build a [`Net`].
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Architecture.
    pub spec: ModelSpec,
    /// Hidden activation; `None` uses the architecture's own (ReLU6 for MobileNets, ReLU else).
    pub activation: Option<Activation>,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Classes.
    pub classes: usize,
    /// Seed of the weight initialisation.
    pub seed: u64,
}

impl ModelConfig {
    /// A 28x28x1, 10-class configuration.
    pub fn new(spec: ModelSpec, seed: u64) -> Self {
        ModelConfig {
            spec,
            activation: None,
            input: [1, 28, 28],
            classes: 10,
            seed,
        }
    }

    /// Builds the float model on `device` (quantizers unset: see [`Net::set_quantizers`]).
    pub fn build(&self, device: &Device) -> Net {
        self.build_named(device).0
    }

    /// [`Self::build`], with what published checkpoints call each of the model's layers (in
    /// [`Net::layers`] order) for the full-size ImageNet architectures; empty for the proxies.
    pub fn build_named(&self, device: &Device) -> (Net, Vec<imagenet::LayerName>) {
        let mut b = Builder {
            blocks: Vec::new(),
            rng: Rng::new(self.seed),
            device: device.clone(),
            channels: self.input[0],
            spatial: self.input[1] * self.input[2],
        };
        let relu = self.activation.unwrap_or(Activation::Relu);
        let relu6 = self.activation.unwrap_or(Activation::Relu6);
        let width = |a: f64, c: usize| ((c as f64 * a).round() as usize).max(1);
        let mut names = Vec::new();
        match &self.spec {
            ModelSpec::Mlp(hidden) => {
                for &h in hidden {
                    b.linear(h, relu);
                }
            }
            ModelSpec::Cnn(chans) => {
                for (i, &c) in chans.iter().enumerate() {
                    b.conv(c, 3, 1, false, relu);
                    if i + 1 < chans.len() {
                        b.max_pool(2);
                    }
                }
                b.global_avg_pool();
            }
            ModelSpec::MobileNetV1(a) => {
                b.conv(width(*a, 32), 3, 1, false, relu6);
                for (m, s) in &MOBILENET_V1_BLOCKS[..5] {
                    b.conv(b.channels, 3, *s, true, relu6);
                    b.conv(width(*a, 32 * m), 1, 1, false, relu6);
                }
                b.global_avg_pool();
            }
            ModelSpec::MobileNetV2(a) => {
                b.conv(width(*a, 32), 3, 1, false, relu6);
                for (c, n, s) in [(16, 1, 1), (24, 2, 2), (32, 2, 2), (64, 2, 1)] {
                    for i in 0..n {
                        b.inverted_residual(width(*a, c), if i == 0 { s } else { 1 }, 4, relu6);
                    }
                }
                b.conv(width(*a, 256), 1, 1, false, relu6);
                b.global_avg_pool();
            }
            ModelSpec::ResNetCifar(depth) => {
                let n = (depth - 2) / 6;
                b.conv(16, 3, 1, false, relu);
                for (stage, c) in [16, 32, 64].into_iter().enumerate() {
                    for i in 0..n {
                        let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                        b.basic_block(c, stride, relu);
                    }
                }
                b.global_avg_pool();
            }
            ModelSpec::ResNet18(base) => {
                b.conv(*base, 3, 1, false, relu);
                for (stage, m) in [1, 2, 4, 8].into_iter().enumerate() {
                    for i in 0..2 {
                        let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                        b.basic_block(base * m, stride, relu);
                    }
                }
                b.global_avg_pool();
            }
            ModelSpec::ImageNetResNet(depth) => names = imagenet::resnet(&mut b, *depth, relu),
            ModelSpec::ImageNetMobileNetV1(a) => {
                names = imagenet::mobilenet_v1(&mut b, *a, relu6);
            }
            ModelSpec::ImageNetMobileNetV2(a) => {
                names = imagenet::mobilenet_v2(&mut b, *a, relu6);
            }
        }
        b.linear(self.classes, Activation::None);
        let net = Net {
            blocks: b.blocks,
            classes: self.classes,
        };
        (net, names)
    }
}

/// Tracks the running channel count while appending blocks.
struct Builder {
    blocks: Vec<Block>,
    rng: Rng,
    device: Device,
    channels: usize,
    spatial: usize,
}

impl Builder {
    fn conv_layer(
        &mut self,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        depthwise: bool,
        act: Activation,
    ) -> QLayer {
        let groups = if depthwise { c_in } else { 1 };
        QLayer::conv(
            c_in,
            c_out,
            k,
            stride,
            groups,
            true,
            act,
            &mut self.rng,
            &self.device,
        )
    }

    fn conv(&mut self, c_out: usize, k: usize, stride: usize, depthwise: bool, act: Activation) {
        let l = self.conv_layer(self.channels, c_out, k, stride, depthwise, act);
        self.blocks.push(Block::Layer(l));
        self.channels = c_out;
    }

    fn linear(&mut self, d_out: usize, act: Activation) {
        let d_in = self.channels * self.spatial;
        let l = QLayer::linear(d_in, d_out, false, act, &mut self.rng, &self.device);
        self.blocks.push(Block::Layer(l));
        self.channels = d_out;
        self.spatial = 1;
    }

    fn max_pool(&mut self, size: usize) {
        self.pool(MaxPool::tiling(size));
    }

    /// ImageNet's input normalization, for colour inputs (the only ones it has statistics for).
    fn imagenet_input(&mut self) {
        if self.channels == 3 {
            let norm = InputNorm::imagenet(&self.device);
            self.blocks.push(Block::InputNorm(norm));
        }
    }

    fn pool(&mut self, pool: MaxPool) {
        self.blocks.push(Block::MaxPool(pool));
    }

    fn global_avg_pool(&mut self) {
        self.blocks
            .push(Block::GlobalAvgPool(GlobalAvgPool { enabled: true }));
        self.spatial = 1;
    }

    fn residual(&mut self, body: Vec<QLayer>, shortcut: Option<QLayer>, act: Activation, c: usize) {
        let add = QAdd {
            output: ActivationQuant::new(act, &self.device),
        };
        self.blocks.push(Block::Residual(Residual {
            body,
            shortcut,
            add,
        }));
        self.channels = c;
    }

    /// ResNet basic block: conv3x3-BN-act, conv3x3-BN, + shortcut (1x1 conv + BN when the shape
    /// changes, "option B"), act.
    fn basic_block(&mut self, c: usize, stride: usize, act: Activation) {
        let c_in = self.channels;
        let body = vec![
            self.conv_layer(c_in, c, 3, stride, false, act),
            self.conv_layer(c, c, 3, 1, false, Activation::None),
        ];
        let shortcut = (stride != 1 || c_in != c)
            .then(|| self.conv_layer(c_in, c, 1, stride, false, Activation::None));
        self.residual(body, shortcut, act, c);
    }

    /// ResNet bottleneck ("v1.5", torchvision's): 1x1 conv-BN-act, 3x3 conv (the stride) -BN-act,
    /// 1x1 conv to 4 `c` -BN, + shortcut (1x1 conv + BN when the shape changes), act.
    fn bottleneck_block(&mut self, c: usize, stride: usize, act: Activation) {
        let (c_in, c_out) = (self.channels, 4 * c);
        let body = vec![
            self.conv_layer(c_in, c, 1, 1, false, act),
            self.conv_layer(c, c, 3, stride, false, act),
            self.conv_layer(c, c_out, 1, 1, false, Activation::None),
        ];
        let shortcut = (stride != 1 || c_in != c_out)
            .then(|| self.conv_layer(c_in, c_out, 1, stride, false, Activation::None));
        self.residual(body, shortcut, act, c_out);
    }

    /// MobileNetV2 inverted residual: 1x1 expand-act (none at expansion 1), 3x3 depthwise-act,
    /// 1x1 linear projection; identity add when stride 1 and the channel count is unchanged.
    fn inverted_residual(&mut self, c: usize, stride: usize, expansion: usize, act: Activation) {
        let c_in = self.channels;
        let hidden = c_in * expansion;
        let mut body = Vec::with_capacity(3);
        if expansion != 1 {
            body.push(self.conv_layer(c_in, hidden, 1, 1, false, act));
        }
        body.push(self.conv_layer(hidden, hidden, 3, stride, true, act));
        body.push(self.conv_layer(hidden, c, 1, 1, false, Activation::None));
        if stride == 1 && c_in == c {
            self.residual(body, None, Activation::None, c);
        } else {
            self.blocks.extend(body.into_iter().map(Block::Layer));
            self.channels = c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_gives_logits() {
        let dev = Device::flex();
        for s in [
            "mlp:32",
            "cnn:8,8,8",
            "mbv1:0.25",
            "mbv2:0.25",
            "resnet8",
            "resnet14",
            "resnet18:4",
        ] {
            let spec: ModelSpec = s.parse().unwrap();
            let net = ModelConfig::new(spec.clone(), 1).build(&dev);
            let x = Tensor::<4>::ones([2, 1, 28, 28], &dev);
            let y = net.forward(x, &Phase::EVAL);
            assert_eq!(y.dims(), [2, 10], "{s}");
            assert_eq!(spec.to_string().parse::<ModelSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn resnet_depths_have_6n_plus_2_weight_layers() {
        let dev = Device::flex();
        for (d, shortcuts) in [(8, 2), (14, 2), (20, 2)] {
            let net = ModelConfig::new(ModelSpec::ResNetCifar(d), 0).build(&dev);
            assert_eq!(net.layers().len(), d + shortcuts, "resnet{d}");
        }
    }

    #[test]
    fn bad_specs_are_errors() {
        for s in ["mbv1", "mbv1:0", "mlp:0", "vgg", "resnet18:a"] {
            assert!(s.parse::<ModelSpec>().is_err(), "{s}");
        }
    }

    /// A parameter quantizer is the same as quantizing every parameter tensor in place (the
    /// weight-only PTQ of AdaptivFloat's reference code), in evaluation and with batch statistics.
    #[test]
    fn param_quantizer_equals_quantizing_every_parameter_in_place() {
        use burn::module::Param;
        use burn::tensor::Distribution;

        use crate::quant::{AffineQuantizer, tensor_range};
        let dev = Device::flex();
        let mut net = ModelConfig::new("cnn:4,6".parse().unwrap(), 2).build(&dev);
        let random = |n: usize| Tensor::<1>::random([n], Distribution::Uniform(0.5, 1.5), &dev);
        net.map_layers(|_, l| {
            l.bias = l
                .bias
                .as_ref()
                .map(|b| Param::from_tensor(random(b.dims()[0]) - 1.0));
            if let Some(bn) = &mut l.bn {
                let c = bn.gamma.dims()[0];
                bn.gamma = Param::from_tensor(random(c));
                bn.beta = Param::from_tensor(random(c) - 1.0);
            }
        });
        let x = Tensor::<4>::random([3, 1, 12, 12], Distribution::Default, &dev);
        let q = QuantizerRef::new(AffineQuantizer::weights(3).unwrap());
        let quantize = |t: Tensor<1>| {
            let range = tensor_range(&t);
            Param::from_tensor(q.apply(t, range))
        };
        let mut in_place = net.clone();
        in_place.map_layers(|_, l| {
            let range = tensor_range(&l.weight.val());
            l.weight = Param::from_tensor(q.apply(l.weight.val(), range));
            l.bias = l.bias.as_ref().map(|b| quantize(b.val()));
            if let Some(bn) = &mut l.bn {
                bn.gamma = quantize(bn.gamma.val());
                bn.beta = quantize(bn.beta.val());
            }
        });
        let mut with_quantizer = net.clone();
        with_quantizer.map_layers(|_, l| l.param_quantizer = Some(q.clone()));
        let batch_stats = Phase {
            observe: false,
            bn_batch_stats: true,
            quantize_weights: true,
            quantize_activations: false,
        };
        for (phase, reference_phase) in [
            (Phase::EVAL, Phase::FLOAT_EVAL),
            (
                batch_stats,
                Phase {
                    quantize_weights: false,
                    ..batch_stats
                },
            ),
        ] {
            let got = with_quantizer.forward(x.clone(), &phase).into_data();
            let want = in_place.forward(x.clone(), &reference_phase).into_data();
            got.assert_approx_eq::<f32>(&want, burn::tensor::Tolerance::default());
            let plain = net.forward(x.clone(), &reference_phase).into_data();
            assert_ne!(got, plain, "3-bit parameters change the logits");
        }
    }
}
