//! pocketnn
