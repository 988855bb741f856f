//! integer-qat
