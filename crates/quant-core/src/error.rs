//! The one error type of `quant-core`.
//!
//! Every fallible public function returns [`Result`]. Messages are one sentence that names the
//! offending value, so a caller can print them as they are.

use std::fmt;

/// Errors raised by quantization, kernels and the integer engine.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantError {
    /// A float input (range bound, scale, weight, bias) was NaN or infinite.
    NonFinite {
        /// What the value was (for example "weight", "range min").
        what: &'static str,
    },
    /// An argument was outside its documented domain.
    InvalidArgument(String),
    /// Buffer lengths or tensor shapes do not agree.
    ShapeMismatch(String),
    /// A model file could not be read, parsed or validated.
    Format(String),
    /// An operating-system I/O error (message of the underlying error).
    Io(String),
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::NonFinite { what } => write!(f, "{what} is NaN or infinite"),
            QuantError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            QuantError::ShapeMismatch(m) => write!(f, "shape mismatch: {m}"),
            QuantError::Format(m) => write!(f, "bad model file: {m}"),
            QuantError::Io(m) => write!(f, "I/O error: {m}"),
        }
    }
}

impl std::error::Error for QuantError {}

impl From<std::io::Error> for QuantError {
    fn from(e: std::io::Error) -> Self {
        QuantError::Io(e.to_string())
    }
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, QuantError>;

/// Builds a [`QuantError::ShapeMismatch`] from a formatted message.
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::error::QuantError::ShapeMismatch(format!($($arg)*)) };
}
/// Builds a [`QuantError::InvalidArgument`] from a formatted message.
macro_rules! arg_err {
    ($($arg:tt)*) => { $crate::error::QuantError::InvalidArgument(format!($($arg)*)) };
}
pub(crate) use arg_err;
pub(crate) use shape_err;
