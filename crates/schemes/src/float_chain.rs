//! The float model as F8Net's conversion reads it ([`crate::fixed_point`]): weight layers with batch
//! norm folded, global average pooling and residual blocks, and a plain f32 pass over them, one image
//! at a time in `C x H x W`. The pass gives the conversion its activation statistics (the values
//! before each ReLU on calibration images) without going back to Burn.

use quant_train::export::floats;
use quant_train::layers::{Activation, LayerKind, QLayer};
use quant_train::models::{Block, Net};

/// One weight layer of the float model, batch norm folded.
pub struct FloatLayer {
    /// `[out, in / groups, k, k]` (convolution) or `[out, in]` (fully connected), row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub outputs: usize,
    pub kind: LayerKind,
    pub activation: Activation,
}

/// A step of the float model.
pub enum Step {
    Layer(FloatLayer),
    GlobalAvgPool,
    /// `activation(body(x) + shortcut(x))`, the shortcut being the identity when `None`.
    Residual {
        body: Vec<FloatLayer>,
        shortcut: Option<FloatLayer>,
        activation: Activation,
    },
}

/// A `C x H x W` tensor of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Plane {
    /// The image's pixels as the float models see them, `pixel / 255`.
    pub fn image(pixels: &[u8], [c, h, w]: [usize; 3]) -> Plane {
        Plane {
            c,
            h,
            w,
            data: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        }
    }

    /// The element-wise sum (a residual add).
    pub fn add(&self, other: &Plane) -> Plane {
        Plane {
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| a + b)
                .collect(),
            ..self.clone()
        }
    }

    /// The mean of each channel.
    pub fn global_avg_pool(&self) -> Plane {
        let n = (self.h * self.w).max(1);
        Plane {
            c: self.c,
            h: 1,
            w: 1,
            data: self
                .data
                .chunks(n)
                .map(|ch| ch.iter().sum::<f32>() / n as f32)
                .collect(),
        }
    }

    /// `activation` applied to every element (ReLU and ReLU6; the conversion refuses the others
    /// before it gets here, and the identity leaves the values).
    pub fn activate(mut self, activation: Activation) -> Plane {
        match activation {
            Activation::Relu => self.data.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Relu6 => self.data.iter_mut().for_each(|x| *x = x.clamp(0.0, 6.0)),
            _ => {}
        }
        self
    }
}

impl FloatLayer {
    /// The layer of `l` with batch norm folded with its moving statistics.
    pub fn of(l: &QLayer) -> FloatLayer {
        FloatLayer {
            weight: floats(l.folded_weight()),
            bias: floats(l.folded_bias()),
            outputs: l.out_channels(),
            kind: l.kind,
            activation: l.output.activation,
        }
    }

    /// The `[C, H, W]` shape of the layer's output on a `[C, H, W]` input (padding `kernel / 2`).
    pub fn output_shape(&self, [_, h, w]: [usize; 3]) -> [usize; 3] {
        match self.kind {
            LayerKind::Linear => [self.outputs, 1, 1],
            LayerKind::Conv { kernel, stride, .. } => {
                let side = |n: usize| (n + 2 * (kernel / 2) - kernel) / stride + 1;
                [self.outputs, side(h), side(w)]
            }
        }
    }

    /// The layer's output before its activation.
    pub fn apply(&self, x: &Plane) -> Plane {
        match self.kind {
            LayerKind::Linear => Plane {
                c: self.outputs,
                h: 1,
                w: 1,
                data: self
                    .weight
                    .chunks_exact(self.weight.len() / self.outputs)
                    .zip(&self.bias)
                    .map(|(row, &b)| b + row.iter().zip(&x.data).map(|(w, v)| w * v).sum::<f32>())
                    .collect(),
            },
            LayerKind::Conv {
                kernel,
                stride,
                groups,
            } => self.convolve(x, kernel, stride, groups),
        }
    }

    /// Convolution with symmetric zero padding `kernel / 2`, as quant-train's layers apply it.
    fn convolve(&self, x: &Plane, k: usize, stride: usize, groups: usize) -> Plane {
        let pad = k / 2;
        let [_, h, w] = self.output_shape([x.c, x.h, x.w]);
        let (cin, cout) = (x.c / groups, self.outputs / groups);
        let mut data = Vec::with_capacity(self.outputs * h * w);
        for o in 0..self.outputs {
            let first = (o / cout) * cin;
            let filter = &self.weight[o * cin * k * k..(o + 1) * cin * k * k];
            for oy in 0..h {
                for ox in 0..w {
                    let mut acc = self.bias[o];
                    for (ci, taps) in filter.chunks_exact(k * k).enumerate() {
                        let channel = &x.data[(first + ci) * x.h * x.w..][..x.h * x.w];
                        for (ky, row) in taps.chunks_exact(k).enumerate() {
                            let Some(iy) = (oy * stride + ky).checked_sub(pad).filter(|&y| y < x.h)
                            else {
                                continue;
                            };
                            for (kx, &wt) in row.iter().enumerate() {
                                if let Some(ix) =
                                    (ox * stride + kx).checked_sub(pad).filter(|&v| v < x.w)
                                {
                                    acc += wt * channel[iy * x.w + ix];
                                }
                            }
                        }
                    }
                    data.push(acc);
                }
            }
        }
        Plane {
            c: self.outputs,
            h,
            w,
            data,
        }
    }
}

/// The steps of `net`: its layers, pooling and residual blocks, in order.
pub fn steps(net: &Net) -> Result<Vec<Step>, String> {
    net.blocks
        .iter()
        .map(|b| match b {
            Block::Layer(l) => Ok(Step::Layer(FloatLayer::of(l))),
            Block::GlobalAvgPool(_) => Ok(Step::GlobalAvgPool),
            Block::Residual(r) => Ok(Step::Residual {
                body: r.body.iter().map(FloatLayer::of).collect(),
                shortcut: r.shortcut.as_ref().map(FloatLayer::of),
                activation: r.add.output.activation,
            }),
            Block::MaxPool(_) | Block::InputNorm(_) => Err(
                "F8Net's post-training conversion here takes layers, global average pooling and residual blocks; this model has max pooling or input normalization".to_string(),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use quant_train::{ModelConfig, ModelSpec, Phase};

    /// The steps of `net` run on `x`, as the conversion walks them.
    fn run(steps: &[Step], mut x: Plane) -> Plane {
        for step in steps {
            x = match step {
                Step::Layer(l) => l.apply(&x).activate(l.activation),
                Step::GlobalAvgPool => x.global_avg_pool(),
                Step::Residual {
                    body,
                    shortcut,
                    activation,
                } => {
                    let branch = body
                        .iter()
                        .fold(x.clone(), |v, l| l.apply(&v).activate(l.activation));
                    let short = match shortcut {
                        Some(l) => l.apply(&x).activate(l.activation),
                        None => x,
                    };
                    branch.add(&short).activate(*activation)
                }
            };
        }
        x
    }

    /// The f32 pass gives Burn's logits for a ResNet (strided 3x3 convolutions, 1x1 projection
    /// shortcuts, identity shortcuts, pooling, classifier) and a MobileNetV1 (depthwise convolutions,
    /// ReLU6) whose batch norms have trained-looking moving statistics.
    #[test]
    fn float_pass_equals_burn() {
        let device = Device::flex();
        for spec in ["resnet8", "mbv1:0.25"] {
            let mut net = ModelConfig::new(spec.parse::<ModelSpec>().unwrap(), 3).build(&device);
            net.blocks.iter_mut().for_each(|b| {
                let layers: Vec<&mut QLayer> = match b {
                    Block::Layer(l) => vec![l],
                    Block::Residual(r) => r.body.iter_mut().chain(r.shortcut.iter_mut()).collect(),
                    _ => vec![],
                };
                for l in layers {
                    if let Some(bn) = l.bn.as_mut() {
                        let c = bn.gamma.dims()[0];
                        let ramp = |lo: f32, hi: f32| {
                            let v: Vec<f32> = (0..c)
                                .map(|i| lo + (hi - lo) * i as f32 / c.max(2) as f32)
                                .collect();
                            Tensor::<1>::from_data(TensorData::new(v, [c]), &device)
                        };
                        bn.running_mean = burn::module::RunningState::new(ramp(-0.3, 0.4));
                        bn.running_var = burn::module::RunningState::new(ramp(0.5, 2.0));
                    }
                }
            });
            let pixels: Vec<u8> = (0..28 * 28).map(|i| ((i * 37) % 256) as u8).collect();
            let image = Plane::image(&pixels, [1, 28, 28]);
            let x = Tensor::<4>::from_data(
                TensorData::new(image.data.clone(), [1, 1, 28, 28]),
                &device,
            );
            let burn: Vec<f32> = net
                .forward(x, &Phase::FLOAT_EVAL)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            let ours = run(&steps(&net).unwrap(), image);
            assert_eq!(ours.data.len(), burn.len(), "{spec}");
            for (a, b) in ours.data.iter().zip(&burn) {
                assert!(
                    (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
                    "{spec}: {a} against {b}"
                );
            }
        }
    }
}
