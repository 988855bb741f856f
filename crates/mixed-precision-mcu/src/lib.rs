//! mixed-precision-mcu
