//! adaptivfloat
