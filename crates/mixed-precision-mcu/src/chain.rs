//! The architecture Rusci et al.'s pipeline trains and deploys: a chain of counted layers on a square
//! image, whatever family it comes from. The memory model and the assignment read its layers' sizes,
//! the QAT net is built from them ([`crate::qat::build_net`]) and the integer graph converted along
//! them ([`crate::deploy::convert`]); the name keys its checkpoints and results.
//!
//! Two families give chains: MobileNetV1 ([`crate::mobilenet`], the paper's) and the multilayer
//! perceptron ([`Chain::mlp`], the cross-scheme table's MLP), whose hidden layers are
//! [`LayerKind::Dense`] layers: each a convolution whose window is its whole input map, so a chain of
//! convolutions and a classifier describes it as it describes MobileNetV1.

use crate::mobilenet::{LayerKind, LayerShape, MobileNetV1, dense_layer};

/// A trainable, deployable chain of layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Keys checkpoints and the `config` column: `28_0.75` for MobileNetV1, `mlp-784-256-256-10`.
    pub name: String,
    /// Input side in pixels (square images).
    pub resolution: usize,
    /// The counted layers in forward order, the classifier last.
    pub layers: Vec<LayerShape>,
}

impl Chain {
    /// The MLP `widths` (input elements first, classes last) on `resolution x resolution` images of
    /// `in_channels` channels, flattened: hidden [`LayerKind::Dense`] layers, then the classifier.
    /// Errors when the widths do not start with the image's element count, name no hidden layer, or
    /// overflow the memory model's counts.
    pub fn mlp(resolution: usize, in_channels: usize, widths: &[usize]) -> Result<Chain, String> {
        let name = format!(
            "mlp-{}",
            widths
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-")
        );
        if widths.len() < 3 || widths[0] != resolution * resolution * in_channels {
            return Err(format!(
                "{name}: an MLP on {resolution}x{resolution}x{in_channels} images starts at {} \
                 inputs and has a hidden layer",
                resolution * resolution * in_channels
            ));
        }
        let last = widths.len() - 2;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| match i {
                0 => dense_layer(LayerKind::Dense, in_channels, w[1], resolution),
                i if i == last => dense_layer(LayerKind::Fc, w[0], w[1], 1),
                _ => dense_layer(LayerKind::Dense, w[0], w[1], 1),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{name}: layer sizes overflow the memory model's counts"))?;
        Ok(Chain {
            name,
            resolution,
            layers,
        })
    }
}

impl From<&MobileNetV1> for Chain {
    fn from(model: &MobileNetV1) -> Chain {
        Chain {
            name: model.config_name(),
            resolution: model.resolution,
            layers: model.layers(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MLP's first layer reads the whole image, the next ones a 1x1 map, and the classifier
    /// closes the chain; weights and MACs are the products of the widths.
    #[test]
    fn an_mlp_is_dense_layers_then_the_classifier() {
        let c = Chain::mlp(28, 1, &[784, 256, 256, 10]).unwrap();
        let kinds: Vec<_> = c.layers.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            [LayerKind::Dense, LayerKind::Dense, LayerKind::Fc],
            "{c:?}"
        );
        assert_eq!(c.layers[0].hw_in, 28);
        assert_eq!(c.layers[0].in_elems, 784);
        assert_eq!(c.layers[1].hw_in, 1);
        let weights: Vec<u64> = c.layers.iter().map(|l| l.weights).collect();
        assert_eq!(weights, [784 * 256, 256 * 256, 256 * 10]);
        assert!(
            c.layers
                .iter()
                .all(|l| l.macs == l.weights && l.hw_out == 1)
        );
        let classes = c.layers.last().map(|l| l.cout);
        assert_eq!((c.name.as_str(), classes), ("mlp-784-256-256-10", Some(10)));
    }

    #[test]
    fn widths_that_do_not_fit_the_image_are_refused() {
        let e = Chain::mlp(28, 1, &[100, 256, 10]).unwrap_err();
        assert!(e.contains("starts at 784 inputs"), "{e}");
        assert!(Chain::mlp(28, 1, &[784, 10]).is_err(), "no hidden layer");
    }
}
