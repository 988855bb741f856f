//! The fused operations against their tensor-operation definitions ([`super::reference`]): values
//! and gradients.

use super::{Clip, Grid, channel_moments, clip_ste, pact, reference};
use burn::prelude::*;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Values spread over and beyond the clip ranges, with exact ties of both grids and the clip
/// boundaries themselves.
fn input(device: &Device) -> Tensor<4> {
    let mut rng = crate::rng::Rng::new(7);
    let mut v: Vec<f32> = (0..2 * 3 * 5 * 4)
        .map(|_| (rng.normal() * 3.0) as f32)
        .collect();
    v[..8].copy_from_slice(&[0.0, 0.5, -0.5, 1.5, 6.0, -2.0, 0.25, 2.5]);
    Tensor::from_data(TensorData::new(v, [2, 3, 5, 4]), device).require_grad()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

/// Forward values and the input gradient of `Σ f(x) ⊙ r` for the fused and the reference `f`.
fn compare(
    what: &str,
    f: impl Fn(Tensor<4>) -> Tensor<4>,
    reference: impl Fn(Tensor<4>) -> Tensor<4>,
) {
    let dev = Device::flex().autodiff();
    let run = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        let x = input(&dev);
        let y = f(x.clone());
        let r = Tensor::<4>::from_data(
            TensorData::new(
                (0..y.dims().iter().product::<usize>())
                    .map(|i| (i % 7) as f32 - 3.0)
                    .collect::<Vec<_>>(),
                y.dims(),
            ),
            &dev,
        );
        let grads = (y.clone() * r).sum().backward();
        (host(y.inner()), host(x.grad(&grads).unwrap()))
    };
    let (ours, theirs) = (run(&f), run(&reference));
    assert_close(&ours.0, &theirs.0, &format!("{what} value"));
    assert_close(&ours.1, &theirs.1, &format!("{what} gradient"));
}

#[test]
fn clip_ste_matches_its_definition_on_every_grid() {
    let grids = [
        Grid::None,
        Grid::Affine {
            scale: 0.5,
            code_lo: -3.0,
            code_hi: 12.0,
        },
        Grid::Fixed { scale: 4.0 },
    ];
    for grid in grids {
        let clip = Clip {
            lo: -1.5,
            hi: 6.0,
            grid,
        };
        compare(
            &format!("{grid:?}"),
            |x| clip_ste(x, clip),
            |x| reference::clip_ste(x, clip),
        );
    }
}

#[test]
fn pact_matches_its_definition_including_the_clip_gradient() {
    let dev = Device::flex().autodiff();
    let run = |fused: bool| {
        let x = input(&dev);
        let alpha = Tensor::<1>::from_data(TensorData::new(vec![2.5f32], [1]), &dev).require_grad();
        let y = if fused {
            pact(x.clone(), alpha.clone())
        } else {
            reference::pact(x.clone(), alpha.clone())
        };
        let grads = (y.clone() * y.clone()).sum().backward();
        (
            host(y.inner()),
            host(x.grad(&grads).unwrap()),
            host(alpha.grad(&grads).unwrap()),
        )
    };
    let (ours, theirs) = (run(true), run(false));
    assert_close(&ours.0, &theirs.0, "pact value");
    assert_close(&ours.1, &theirs.1, "pact x gradient");
    assert_close(&ours.2, &theirs.2, "pact alpha gradient");
}

#[test]
fn channel_moments_match_their_definition_with_gradients() {
    let combine = |(m, v): (Tensor<1>, Tensor<1>)| {
        let c = m.dims()[0];
        (m.mul_scalar(3.0) + v.mul_scalar(-2.0)).reshape([1, c, 1, 1])
    };
    compare(
        "moments",
        |x| combine(channel_moments(x)),
        |x| combine(reference::channel_moments(x)),
    );
}

#[test]
fn channel_affine_matches_its_definition_in_every_gradient() {
    let dev = Device::flex().autodiff();
    let run = |fused: bool| {
        let x = input(&dev);
        let vec3 = |v: [f32; 3]| {
            Tensor::<1>::from_data(TensorData::new(v.to_vec(), [3]), &dev).require_grad()
        };
        let (a, b) = (vec3([0.5, -2.0, 1.25]), vec3([0.1, 0.0, -3.0]));
        let y = if fused {
            super::channel_affine(x.clone(), a.clone(), b.clone())
        } else {
            reference::channel_affine(x.clone(), a.clone(), b.clone())
        };
        let grads = (y.clone() * y.clone()).sum().backward();
        let g1 = |t: &Tensor<1>| host(t.grad(&grads).unwrap());
        (
            host(y.inner()),
            host(x.grad(&grads).unwrap()),
            g1(&a),
            g1(&b),
        )
    };
    let (ours, theirs) = (run(true), run(false));
    assert_close(&ours.0, &theirs.0, "affine value");
    assert_close(&ours.1, &theirs.1, "affine x gradient");
    assert_close(&ours.2, &theirs.2, "affine a gradient");
    assert_close(&ours.3, &theirs.3, "affine b gradient");
}

#[test]
fn value_range_is_min_and_max() {
    let x = input(&Device::flex().autodiff());
    assert_eq!(super::value_range(&x), reference::value_range(&x));
}

#[test]
fn straight_through_gives_q_and_passes_the_gradient() {
    let dev = Device::flex().autodiff();
    let run = |fused: bool| {
        let x = input(&dev);
        let q = x.clone().detach().mul_scalar(0.5).round();
        let y = if fused {
            super::straight_through(x.clone(), q)
        } else {
            reference::straight_through(x.clone(), q)
        };
        let grads = (y.clone() * y.clone()).sum().backward();
        (host(y.inner()), host(x.grad(&grads).unwrap()))
    };
    let (ours, theirs) = (run(true), run(false));
    assert_close(&ours.0, &theirs.0, "straight-through value");
    assert_close(&ours.1, &theirs.1, "straight-through gradient");
}

#[test]
fn map_values_applies_f_to_the_values_in_order_on_every_path() {
    let dev = Device::flex().autodiff();
    let double = |v: &[f32]| v.iter().map(|a| a * 2.0).collect::<Vec<f32>>();
    let x = input(&dev);
    let want = double(&host(x.clone()));
    let fast = super::map_values(&x, double);
    let slow = crate::fast_path::without(|| super::map_values(&x, double));
    for y in [fast, slow] {
        assert_eq!(y.dims(), x.dims());
        assert_eq!(host(y), want);
    }
}

/// Burn's pick on ties (the first maximum) and on the rows and columns past the last window,
/// for windows of 2, 3 (the vector paths) and 4 (the exact one): a `[2, 3, 5, 7]` input of three values (ties in most windows), then
/// the distinct values of [`input`].
#[test]
fn max_pool_matches_burn_on_ties_and_uncovered_edges() {
    let dev = Device::flex().autodiff();
    let run = |pool: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        let v: Vec<f32> = (0..2 * 3 * 5 * 7)
            .map(|i| (i * 7 % 3) as f32 - 1.0)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [2, 3, 5, 7]), &dev).require_grad();
        let y = pool(x.clone());
        let r: Vec<f32> = (0..y.dims().iter().product::<usize>())
            .map(|i| i as f32 + 1.0)
            .collect();
        let r = Tensor::<4>::from_data(TensorData::new(r, y.dims()), &dev);
        let grads = (y.clone() * r).sum().backward();
        (host(y.inner()), host(x.grad(&grads).unwrap()))
    };
    for size in [2, 3, 4] {
        let (ours, theirs) = (
            run(&|x| super::max_pool(x, size)),
            run(&|x| reference::max_pool(x, size)),
        );
        assert_eq!(ours, theirs, "max pool {size} with ties");
        compare(
            &format!("max pool {size}"),
            |x| super::max_pool(x, size),
            |x| reference::max_pool(x, size),
        );
    }
}

/// A NaN wins its window (the last NaN where there are several), in the value and in where the
/// gradient goes.
#[test]
fn max_pool_propagates_nan_as_burn_does() {
    let dev = Device::flex().autodiff();
    let run = |pool: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        let v = vec![1.0, f32::NAN, 3.0, 4.0, f32::NAN, 0.5, 2.0, -1.0];
        let x = Tensor::<4>::from_data(TensorData::new(v, [1, 1, 2, 4]), &dev).require_grad();
        let y = pool(x.clone());
        let grads = y.clone().mul_scalar(2.0).sum().backward();
        (host(y.inner()), host(x.grad(&grads).unwrap()))
    };
    let (ours, theirs) = (
        run(&|x| super::max_pool(x, 2)),
        run(&|x| reference::max_pool(x, 2)),
    );
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert!(ours.0[0].is_nan() && theirs.0[0].is_nan());
    assert_eq!(ours.0[1], theirs.0[1]);
    assert_eq!(
        bits(&ours.1),
        bits(&theirs.1),
        "gradient {:?} vs {:?}",
        ours.1,
        theirs.1
    );
}

/// Layer norm and softmax over the last dimension against their tensor-operation definitions:
/// values and the gradients of every input, on rows of 4 (a `[2, 3, 5, 4]` input).
#[test]
fn row_operations_match_their_definitions() {
    let dev = Device::flex().autodiff();
    let run = |fused: bool| {
        let x = input(&dev);
        let vec4 = |v: [f32; 4]| {
            Tensor::<1>::from_data(TensorData::new(v.to_vec(), [4]), &dev).require_grad()
        };
        let (g, b) = (vec4([0.5, -2.0, 1.25, 1.0]), vec4([0.1, 0.0, -3.0, 2.0]));
        let (norm, soft) = match fused {
            true => (
                super::layer_norm(x.clone(), g.clone(), b.clone(), 1e-5),
                super::softmax(x.clone().mul_scalar(0.7)),
            ),
            false => (
                reference::layer_norm(x.clone(), g.clone(), b.clone(), 1e-5),
                reference::softmax(x.clone().mul_scalar(0.7)),
            ),
        };
        let weights = |y: &Tensor<4>| {
            let n = y.dims().iter().product::<usize>();
            let r: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
            Tensor::<4>::from_data(TensorData::new(r, y.dims()), &dev)
        };
        let loss = (norm.clone() * weights(&norm)).sum() + (soft.clone() * weights(&soft)).sum();
        let grads = loss.backward();
        let g1 = |t: &Tensor<1>| host(t.grad(&grads).unwrap());
        (
            host(norm.inner()),
            host(soft.inner()),
            host(x.grad(&grads).unwrap()),
            g1(&g),
            g1(&b),
        )
    };
    let (ours, theirs) = (run(true), run(false));
    assert_close(&ours.0, &theirs.0, "layer norm value");
    assert_close(&ours.1, &theirs.1, "softmax value");
    assert_close(&ours.2, &theirs.2, "x gradient");
    assert_close(&ours.3, &theirs.3, "g gradient");
    assert_close(&ours.4, &theirs.4, "b gradient");
}
