//! One integer graph for the schemes of the workspace: a list of nodes with explicit inputs over
//! batched values stored channels innermost (`batch x H x W x C`), every convolution and fully
//! connected layer on the int8 kernels of [`crate::kernels`] (through [`crate::kernels::ConvKernel`]), and the
//! requantization a plug-in ([`Requantizer`]): Jacob et al.'s affine fixed-point multiplier
//! ([`crate::engine::AffineStage`], fused into the kernels), F8Net's power-of-two shift
//! ([`crate::fixed8::graph`]), Rusci et al.'s folded batch norm, integer channel normalization and
//! thresholds ([`crate::icn::CodeStage`]).
//!
//! Values are numbered: value 0 is the input, value `i` the output of node `i - 1`; a node reads
//! earlier values only. A value is stored as codes (one per byte, of some width and zero point),
//! int32 accumulators or int64 logits ([`Kind`]); [`Graph::push`] checks each node against the
//! shapes and kinds of its inputs, so a graph that builds runs.
//!
//! The executor counts what runs ([`OpCounts`]): each node adds its products, its
//! requantization's multiplies and shifts, and the bytes it moves, which the executor tallies the
//! same way for every node: its inputs and its output as a deployment stores them
//! ([`Kind::stored_bytes`]: sub-byte codes packed), and its parameters.
#![deny(clippy::float_arithmetic)]

use std::borrow::Cow;
use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::error::{Result, arg_err, shape_err};
use crate::kernels::OutputStage;
use crate::ops::OpCounts;
use crate::subbyte::BitWidth;

mod op;
#[cfg(test)]
mod tests;

pub use op::{DenseInput, Op, Pooling};

/// Per-image tensor shape (height, width, channels), channels innermost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape {
    /// Elements per image.
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Whether the shape has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a value's elements are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unsigned codes of `bits` bits, one per byte; the code `zero_point` stands for zero (signed
    /// 8-bit codes are stored offset by 128).
    Codes { bits: BitWidth, zero_point: i32 },
    /// int32 accumulators or sums.
    Int32,
    /// int64 logits.
    Int64,
}

impl Kind {
    /// 8-bit codes of `zero_point`.
    pub const fn eight_bit(zero_point: i32) -> Kind {
        Kind::Codes {
            bits: BitWidth::B8,
            zero_point,
        }
    }

    /// Bytes a deployment stores `elements` of this kind in: codes packed as
    /// [`crate::subbyte::Packed`] packs them, four bytes per int32, eight per int64.
    pub fn stored_bytes(self, elements: usize) -> usize {
        match self {
            Kind::Codes { bits, .. } => bits.bytes_for(elements),
            Kind::Int32 => 4 * elements,
            Kind::Int64 => 8 * elements,
        }
    }

    /// The codes' zero point; an error naming `what` for a wide value.
    pub fn zero_point(self, what: &str) -> Result<i32> {
        match self {
            Kind::Codes { zero_point, .. } => Ok(zero_point),
            _ => Err(arg_err!(
                "{what} reads codes but its input holds {self:?} values (requantize it first)"
            )),
        }
    }

    fn validate(self) -> Result<()> {
        match self {
            Kind::Codes { bits, zero_point } if !(0..=255).contains(&zero_point) => Err(arg_err!(
                "codes of {} bits with zero point {zero_point}: zero points are 0 to 255",
                bits.bits()
            )),
            _ => Ok(()),
        }
    }
}

/// A value's elements, in the storage its [`Kind`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Codes, one per byte.
    Codes(Vec<u8>),
    /// int32 values.
    Int32(Vec<i32>),
    /// int64 values.
    Int64(Vec<i64>),
}

impl Data {
    pub(super) fn len(&self) -> usize {
        match self {
            Data::Codes(v) => v.len(),
            Data::Int32(v) => v.len(),
            Data::Int64(v) => v.len(),
        }
    }

    fn is(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Data::Codes(_), Kind::Codes { .. })
                | (Data::Int32(_), Kind::Int32)
                | (Data::Int64(_), Kind::Int64)
        )
    }
}

/// A batch of values: `batch x shape`, channels innermost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Batch size.
    pub batch: usize,
    /// Per-item shape.
    pub shape: Shape,
    /// Storage.
    pub kind: Kind,
    /// Elements.
    pub data: Data,
}

impl Tensor {
    /// Codes of `kind` (which must be [`Kind::Codes`]).
    pub fn codes(batch: usize, shape: Shape, kind: Kind, codes: Vec<u8>) -> Tensor {
        Tensor {
            batch,
            shape,
            kind,
            data: Data::Codes(codes),
        }
    }

    /// Every element as the integer it stands for: a code minus its zero point, an int32 as
    /// it is; int64 values have no int32 reading.
    pub fn to_i32(&self) -> Result<Cow<'_, [i32]>> {
        match (&self.data, self.kind) {
            (Data::Codes(v), Kind::Codes { zero_point, .. }) => Ok(Cow::Owned(
                v.iter().map(|&q| i32::from(q) - zero_point).collect(),
            )),
            (Data::Int32(v), _) => Ok(Cow::Borrowed(v)),
            _ => Err(arg_err!("int64 values have no int32 reading")),
        }
    }

    /// The stored codes; an error for a wide value.
    pub fn code_bytes(&self) -> Result<&[u8]> {
        match &self.data {
            Data::Codes(v) => Ok(v),
            _ => Err(arg_err!("the value holds {:?}, not codes", self.kind)),
        }
    }

    /// Bytes a deployment stores this tensor in ([`Kind::stored_bytes`]).
    pub fn stored_bytes(&self) -> usize {
        self.kind.stored_bytes(self.data.len())
    }
}

/// A requantization plug-in: int32 accumulators (channels innermost, [`Self::channels`] of them)
/// to the next value's storage. Each scheme brings its own: F8Net's shift, Rusci et al.'s folded
/// batch norm, channel normalization and thresholds, classifier logits.
pub trait Requantizer: Debug + Send + Sync {
    /// The storage of what [`Self::apply`] gives.
    fn output(&self) -> Kind;
    /// Channels it holds parameters for.
    fn channels(&self) -> usize;
    /// Requantizes `acc`, channel `i % channels()` for element `i`.
    fn apply(&self, acc: &[i32]) -> Result<Data>;
    /// What requantizing `per_channel` elements of each channel performs.
    fn op_counts(&self, per_channel: u64) -> OpCounts;
    /// Bytes of its stored parameters.
    fn stored_bytes(&self) -> usize;
    /// The affine output stage it is, which the kernels apply fused to their accumulation
    /// (Jacob et al.'s requantization; no other scheme has one).
    fn affine(&self) -> Option<&OutputStage> {
        None
    }
}

/// An operation and the values it reads.
#[derive(Debug, Clone)]
pub struct Node {
    /// Values read, as many as [`Op::arity`], all earlier than the node's own.
    pub inputs: Vec<usize>,
    /// The computation.
    pub op: Op,
}

/// A checked graph: every node's inputs exist and fit it.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: Vec<Node>,
    shapes: Vec<Shape>,
    kinds: Vec<Kind>,
    /// The last node reading each value (its own index for values nobody reads).
    last_use: Vec<usize>,
}

impl Graph {
    /// A graph of no nodes over inputs of `shape` stored as `kind`.
    pub fn new(shape: Shape, kind: Kind) -> Result<Graph> {
        if shape.is_empty() {
            return Err(shape_err!("graph input shape {shape:?} is empty"));
        }
        kind.validate()?;
        Ok(Graph {
            nodes: Vec::new(),
            shapes: vec![shape],
            kinds: vec![kind],
            last_use: vec![0],
        })
    }

    /// Appends `op` reading `inputs` and returns the value it writes. Errors where an input is
    /// not an earlier value or does not fit the operation (shape, storage, parameters).
    pub fn push(&mut self, inputs: &[usize], op: Op) -> Result<usize> {
        let id = self.shapes.len();
        if inputs.len() != op.arity() {
            return Err(arg_err!(
                "node {id} reads {} values; {} takes {}",
                inputs.len(),
                op.name(),
                op.arity()
            ));
        }
        if let Some(&late) = inputs.iter().find(|&&v| v >= id) {
            return Err(arg_err!(
                "node {id} reads value {late}, which is not an earlier value"
            ));
        }
        let read: Vec<(Shape, Kind)> = inputs
            .iter()
            .map(|&v| (self.shapes[v], self.kinds[v]))
            .collect();
        let (shape, kind) = op
            .output(&read)
            .map_err(|e| arg_err!("node {id} ({}): {e}", op.name()))?;
        kind.validate()?;
        for &v in inputs {
            self.last_use[v] = id;
        }
        self.nodes.push(Node {
            inputs: inputs.to_vec(),
            op,
        });
        self.shapes.push(shape);
        self.kinds.push(kind);
        self.last_use.push(id);
        Ok(id)
    }

    /// Shape of the input (value 0).
    pub fn input_shape(&self) -> Shape {
        self.shapes[0]
    }

    /// `images` (`batch` of them, as the input's kind stores them) as the graph's input.
    pub fn input(&self, batch: usize, images: Vec<u8>) -> Tensor {
        Tensor::codes(batch, self.shapes[0], self.kinds[0], images)
    }

    /// Shape of value `v`.
    pub fn shape(&self, v: usize) -> Option<Shape> {
        self.shapes.get(v).copied()
    }

    /// Storage of value `v`.
    pub fn kind(&self, v: usize) -> Option<Kind> {
        self.kinds.get(v).copied()
    }

    /// The id of the last value (the graph's output).
    pub fn output(&self) -> usize {
        self.shapes.len() - 1
    }

    /// The nodes, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Peak activation memory of one inference as a deployment holds it ([`Kind::stored_bytes`]
    /// per image): a value lives from the node that writes it to the last node that reads it,
    /// and a node's inputs and its output are live together.
    pub fn peak_activation_bytes(&self) -> usize {
        let bytes = |v: usize| self.kinds[v].stored_bytes(self.shapes[v].len());
        (1..self.shapes.len())
            .map(|id| {
                let live: usize = (0..id).filter(|&v| self.last_use[v] >= id).map(bytes).sum();
                live + bytes(id)
            })
            .max()
            .unwrap_or_else(|| bytes(0))
    }

    /// Runs the graph on `input` (of the input's shape and kind) and returns its last value
    /// with the operations performed. Each value is kept until the last node that reads it.
    pub fn run(&self, input: Tensor) -> Result<(Tensor, OpCounts)> {
        let batch = input.batch;
        if batch == 0
            || input.shape != self.shapes[0]
            || input.kind != self.kinds[0]
            || !input.data.is(input.kind)
            || input.data.len() != batch * input.shape.len()
        {
            return Err(shape_err!(
                "input of {} {:?} elements in a batch of {batch} of {:?} does not fit the graph's {:?} of {:?}",
                input.data.len(),
                input.kind,
                input.shape,
                self.kinds[0],
                self.shapes[0]
            ));
        }
        let mut values: Vec<Option<Tensor>> = vec![None; self.shapes.len()];
        values[0] = Some(input);
        let mut counts = OpCounts::default();
        for (i, node) in self.nodes.iter().enumerate() {
            let id = i + 1;
            // An operation reads one or two values: read them without allocating.
            let value = |v: usize| {
                values[v]
                    .as_ref()
                    .ok_or_else(|| arg_err!("value {v} was released too early"))
            };
            let first = value(node.inputs[0])?;
            let pair = [first, node.inputs.get(1).map_or(Ok(first), |&v| value(v))?];
            let read = &pair[..node.inputs.len()];
            let out = node.op.run(read, self.shapes[id], &mut counts)?;
            debug_assert!(out.shape == self.shapes[id] && out.kind == self.kinds[id]);
            counts.bytes_moved += (read.iter().map(|t| t.stored_bytes()).sum::<usize>()
                + out.stored_bytes()
                + node.op.parameter_bytes()
                + batch * node.op.scratch_bytes(&self.shapes[node.inputs[0]]))
                as u64;
            values[id] = Some(out);
            for (v, value) in values.iter_mut().enumerate().take(id) {
                if self.last_use[v] <= id {
                    *value = None;
                }
            }
        }
        let out = values
            .pop()
            .flatten()
            .ok_or_else(|| arg_err!("the graph produced no output"))?;
        Ok((out, counts))
    }
}
