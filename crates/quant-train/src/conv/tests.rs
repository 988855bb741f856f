//! The kernels against a naive convolution, and the Burn extension (values and both gradients)
//! against Burn's own convolution.

use super::kernels::{self, ConvBatch};
use super::{ConvSettings, conv2d};
use burn::prelude::*;
use burn::tensor::module;

/// Direct definition of the convolution, one output at a time.
fn naive_forward(l: &ConvBatch, x: &[f32], w: &[f32]) -> Vec<f32> {
    let g = &l.shape.geometry;
    let [n, oc, oh, ow] = l.output_shape();
    let (cin_g, coutg) = (g.in_c / l.shape.groups, l.shape.out_c / l.shape.groups);
    let mut y = vec![0.0; n * oc * oh * ow];
    for b in 0..n {
        for o in 0..oc {
            let grp = o / coutg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0.0f64;
                    for c in 0..cin_g {
                        for ky in 0..g.kernel_h {
                            for kx in 0..g.kernel_w {
                                let iy = (oy * g.stride_h + ky) as isize - g.pad_top as isize;
                                let ix = (ox * g.stride_w + kx) as isize - g.pad_left as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= g.in_h as isize
                                    || ix >= g.in_w as isize
                                {
                                    continue;
                                }
                                let ci = grp * cin_g + c;
                                let xv = x[((b * g.in_c + ci) * g.in_h + iy as usize) * g.in_w
                                    + ix as usize];
                                let wv = w[((o * cin_g + c) * g.kernel_h + ky) * g.kernel_w + kx];
                                s += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    y[((b * oc + o) * oh + oy) * ow + ox] = s as f32;
                }
            }
        }
    }
    y
}

fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::rng::Rng::new(seed);
    (0..len).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect()
}

/// (batch, in_c, [h, w], out_c, kernel, stride, padding, groups).
type Case = (usize, usize, [usize; 2], usize, usize, usize, usize, usize);

/// Dense, pointwise, strided, depthwise, strided depthwise, grouped, padding wider than needed, a
/// non-square input, and two on the grid path (`grid::applies`): no padding over more images
/// than one block holds, and a non-square input with padding.
const CASES: [Case; 10] = [
    (2, 3, [7, 7], 4, 3, 1, 1, 1),
    (3, 5, [6, 6], 7, 1, 1, 0, 1),
    (2, 4, [9, 9], 6, 3, 2, 1, 1),
    (2, 6, [8, 8], 6, 3, 1, 1, 6),
    (2, 6, [9, 9], 6, 3, 2, 1, 6),
    (1, 4, [6, 6], 8, 3, 1, 1, 2),
    (2, 2, [5, 5], 3, 5, 1, 3, 1),
    (2, 3, [6, 9], 5, 3, 2, 1, 1),
    (10, 8, [10, 10], 4, 3, 1, 0, 1),
    (3, 9, [5, 8], 3, 3, 1, 1, 1),
];

fn spec_of(case: &Case) -> ConvSettings {
    ConvSettings {
        stride: case.5,
        padding: case.6,
        groups: case.7,
    }
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn forward_kernel_equals_the_definition() {
    for (i, case) in CASES.iter().enumerate() {
        let (n, c, [h, wd], o, k, _, _, g) = *case;
        let l = spec_of(case)
            .layer(&[n, c, h, wd], &[o, c / g, k, k])
            .unwrap();
        let x = values(n * c * h * wd, i as u64);
        let w = values(l.shape.weight_len(), 100 + i as u64);
        assert_close(
            &kernels::forward(&l, &x, &w),
            &naive_forward(&l, &x, &w),
            &format!("case {i}"),
        );
    }
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Values and gradients of `Σ conv(x, w) ⊙ r` (r random) through the extension and through Burn.
fn run(case_index: usize, ours: bool) -> [Vec<f32>; 3] {
    let case = &CASES[case_index];
    let (n, c, [h, wd], o, k, _, _, g) = *case;
    let dev = Device::flex().autodiff();
    let tensor = |shape: [usize; 4], seed: u64| {
        let len = shape.iter().product();
        Tensor::<4>::from_data(TensorData::new(values(len, seed), shape), &dev)
    };
    let x = tensor([n, c, h, wd], 1).require_grad();
    let w = tensor([o, c / g, k, k], 2).require_grad();
    let y = if ours {
        conv2d(x.clone(), w.clone(), None, spec_of(case))
    } else {
        module::conv2d(x.clone(), w.clone(), None, spec_of(case).options())
    };
    let r = tensor(y.dims(), 3);
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).unwrap();
    let dw = w.grad(&grads).unwrap();
    [host(y.inner()), host(dx), host(dw)]
}

#[test]
fn extension_matches_burn_in_value_and_both_gradients() {
    for i in 0..CASES.len() {
        let (ours, burn) = (run(i, true), run(i, false));
        for (what, (a, b)) in ["y", "dx", "dw"].iter().zip(ours.iter().zip(&burn)) {
            assert_close(a, b, &format!("case {i} {what}"));
        }
    }
}

fn layer_of(case: &Case) -> ConvBatch {
    let (n, c, [h, wd], o, k, _, _, g) = *case;
    spec_of(case)
        .layer(&[n, c, h, wd], &[o, c / g, k, k])
        .unwrap()
}

#[test]
fn the_cases_cover_both_dense_paths() {
    let on_grid = |case: &&Case| super::grid::applies(&layer_of(case));
    assert_eq!(CASES.iter().filter(on_grid).count(), 2);
}

/// The grid path's forward pass against the definition and both gradients against the GEMM per
/// tap, with the fused taps where the CPU has them and without (the path of other CPUs).
#[test]
fn grid_blocks_agree_with_and_without_fused_taps() {
    use super::grid::weight_grad_block;
    use super::grid::{forward_block, forward_taps, input_grad_block, input_grad_taps};
    let fused = [false, super::taps::available()];
    // The grid cases, and one wide enough for the fused weight gradient.
    let wide: Case = (3, 8, [9, 9], 24, 3, 1, 1, 1);
    for (i, case) in CASES.iter().chain([&wide]).enumerate() {
        let l = layer_of(case);
        if !super::grid::applies(&l) {
            continue;
        }
        let x = values(l.batch * l.input_len(), 10 + i as u64);
        let w = values(l.shape.weight_len(), 20 + i as u64);
        let dy = values(l.batch * l.output_len(), 30 + i as u64);
        let want_y = naive_forward(&l, &x, &w);
        let mut per_tap = (Vec::new(), Vec::new());
        for fused_taps in fused {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut y = vec![0.0; want_y.len()];
            let packed = |pack: fn(&ConvBatch, &[f32]) -> Option<_>| match fused_taps {
                true => pack(&l, &w),
                false => None,
            };
            let fused_forward = packed(forward_taps);
            forward_block(&l, &w, &x, &mut y, (&mut a, &mut b), fused_forward.as_ref());
            assert_close(&y, &want_y, &format!("case {i} y, fused {fused_taps}"));
            let mut dx = vec![f32::NAN; x.len()];
            let fused_input_grad = packed(input_grad_taps);
            input_grad_block(
                &l,
                &w,
                &dy,
                &mut dx,
                (&mut a, &mut b),
                fused_input_grad.as_ref(),
            );
            let dw = weight_grad_block(&l, &x, &dy, (&mut a, &mut b), fused_taps);
            match fused_taps {
                false => per_tap = (dx, dw),
                true => {
                    assert_close(&dx, &per_tap.0, &format!("case {i} dx"));
                    assert_close(&dw, &per_tap.1, &format!("case {i} dw"));
                }
            }
        }
    }
}

#[test]
fn bias_is_added_per_output_channel() {
    let dev = Device::flex();
    let x = Tensor::<4>::zeros([1, 2, 3, 3], &dev);
    let w = Tensor::<4>::zeros([2, 2, 1, 1], &dev);
    let b = Tensor::<1>::from_data(TensorData::new(vec![1.5f32, -2.0], [2]), &dev);
    let spec = ConvSettings {
        stride: 1,
        padding: 0,
        groups: 1,
    };
    let y = host(conv2d(x, w, Some(b), spec));
    assert_eq!(&y[..9], &[1.5; 9]);
    assert_eq!(&y[9..], &[-2.0; 9]);
}

#[test]
fn weight_gradient_does_not_depend_on_the_thread_count() {
    // 3 input channels take the im2col path, 8 the grid path.
    for c in [3, 8] {
        let l = spec_of(&CASES[0])
            .layer(&[24, c, 7, 7], &[4, c, 3, 3])
            .unwrap();
        let x = values(l.batch * l.input_len(), 5);
        let dy = values(l.batch * l.output_len(), 6);
        let with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| kernels::weight_grad(&l, &x, &dy))
        };
        assert_eq!(with(1), with(3), "{c} channels");
    }
}
