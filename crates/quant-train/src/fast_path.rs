//! Whether this thread's training operations take the hand-written flex kernels of
//! [`crate::conv`] and [`crate::fused`] (the default) or Burn's own tensor operations everywhere:
//! the slow path that the equivalence tests and `bench-train`'s before/after rows compare with.

use std::cell::Cell;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether the hand-written kernels are on for this thread.
pub fn enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Runs `f` on this thread with the hand-written kernels off (Burn's own operations everywhere).
pub fn without<R>(f: impl FnOnce() -> R) -> R {
    let before = ENABLED.with(|e| e.replace(false));
    let out = f();
    ENABLED.with(|e| e.set(before));
    out
}
