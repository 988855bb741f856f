//! quant-train
