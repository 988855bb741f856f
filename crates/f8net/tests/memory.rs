//! The training loop's memory on steps that train nothing. Alone in its test binary, so the process's
//! resident size is this test's.

use burn::prelude::*;
use f8net::graph::{Arch, Graph, Input};
use f8net::model::{Method, Network};
use f8net::train::{Recipe, Schedule, StageRun, train};
use repro::datasets::{DatasetName, ImageSet};

/// Resident set of this process, in MB.
fn resident_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// Tiny fine-tuning's lr-0 calibration moves only statistics, so its steps build no autodiff graph:
/// 30 more steps keep the resident size (each step held its graph, 60 MB, before), and the model
/// keeps its tracked parameters for the stages that train after it.
#[test]
fn untracked_steps_keep_no_graph() {
    let device = Device::flex().autodiff();
    let grey = Input::of(DatasetName::FashionMnist);
    let mut model = Network::new(
        Graph::proxy(Arch::MobileNetV1, 0.25, grey),
        Method::FullPrecision { pact: true },
        3,
        &device,
    );
    let set = ImageSet {
        images: (0..256 * 784).map(|i| (i * 31 % 251) as u8).collect(),
        labels: (0..256).map(|i| (i % 10) as u8).collect(),
        channels: 1,
        rows: 28,
        cols: 28,
        checksums: Vec::new(),
    };
    let mut calibrate = |steps: usize| {
        let recipe = Recipe {
            steps,
            lr: 0.0,
            schedule: Schedule::Constant,
            batch: 128,
            weight_decay: 0.0,
        };
        let run = StageRun {
            data: &set,
            validation: None,
            seed: 1,
            checkpoint: None,
        };
        train(&mut model, recipe, &run, &indicatif::ProgressBar::hidden()).unwrap();
    };
    calibrate(10);
    let before = resident_mb();
    calibrate(30);
    let grown = resident_mb().saturating_sub(before);
    assert!(
        grown < 300,
        "30 calibration steps grew the resident set by {grown} MB"
    );
    assert!(model.params.fc_w.val().is_require_grad());
}
