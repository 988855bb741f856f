//! Wall time of one training step of each proxy and method (the measurement behind the profile sizes
//! in experiments/f8net/README.md): `step_time [batch] [steps] [width percent] [methods]`.

use f8net::experiments::Plan;
use f8net::experiments::Profile;
use f8net::graph::{Arch, Graph};
use f8net::model::{F8Options, Method, Model};
use f8net::train::{Optimizer, Recipe, predict, train};
use repro::datasets::{DatasetName, default_data_root, load};

fn main() -> Result<(), String> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(|e| format!("{a}: {e}")))
        .collect::<Result<_, _>>()?;
    let batch = args.first().copied().unwrap_or(128);
    let steps = args.get(1).copied().unwrap_or(10);
    let data = load(&default_data_root(), DatasetName::FashionMnist)
        .map_err(|e| format!("{e} (run `make data`)"))?;
    let mut plan = Plan::new(Profile::Full, None, None);
    if let Some(&w) = args.get(2) {
        plan.width = w as f64 / 100.0;
    }
    let device = burn::prelude::Device::flex().autodiff();
    let bar = indicatif::ProgressBar::hidden();
    for arch in [
        Arch::MobileNetV2,
        Arch::MobileNetV1,
        Arch::ResNet18,
        Arch::ResNet50,
    ] {
        for (name, method) in [
            ("fp", Method::FullPrecision { pact: true }),
            ("f8net", Method::F8Net(F8Options::DEFAULT)),
            ("int8", Method::Int8Jacob),
        ]
        .into_iter()
        .take(args.get(3).copied().unwrap_or(3))
        {
            let mut m = Model::new(Graph::proxy(arch, plan.width(arch)), method, 0, &device);
            let recipe = |steps| Recipe {
                optimizer: Optimizer::Adam,
                steps,
                lr: 0.01,
                batch,
                weight_decay: 4e-5,
            };
            train(&mut m, &data.train, recipe(2), 0, &bar);
            let t = std::time::Instant::now();
            train(&mut m, &data.train, recipe(steps), 1, &bar);
            let ms = t.elapsed().as_secs_f64() * 1e3 / steps as f64;
            let t = std::time::Instant::now();
            let n = predict(&m, &data.test, 1000).len();
            let eval = n as f64 / t.elapsed().as_secs_f64();
            println!(
                "{arch:?} {name:<6} batch {batch}: {ms:7.1} ms/step, {:6.0} img/s; evaluation {eval:6.0} img/s",
                batch as f64 * 1e3 / ms
            );
        }
    }
    Ok(())
}
