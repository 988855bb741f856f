//! The cross-scheme table: one architecture quantized by every scheme of the workspace that applies
//! to it, each row measured the same way — top-1 on the whole test set (through the integer graph
//! wherever the scheme is integer), model bytes, peak activation bytes, batch-1 latency and the
//! operation counts the integer engines record while they run.
//!
//! No paper has this table: each compares its own scheme against its own baselines, on its own model.
//! Here every scheme starts from the same float model of each seed, so the rows differ only in the
//! scheme. Three architectures: the MLP 784-256-256-10 on Fashion-MNIST ([`mlp`]), Rusci et al.'s
//! MobileNetV1 proxy ([`mobilenet`]) and Jacob et al.'s ResNet proxy ([`resnet`]); Rusci's mixed
//! 8/4/2-bit scheme runs on the first two, chains of its sub-byte graph ([`rusci`]).

pub mod bench;
pub mod fixed_point;
pub mod float_chain;
pub mod measure;
pub mod mlp;
pub mod mobilenet;
pub mod resnet;
pub mod rusci;
pub mod table;

/// The `paper` column and the folder under `results/` of the table's rows.
pub const TABLE_DIR: &str = "schemes";
