//! f8net
