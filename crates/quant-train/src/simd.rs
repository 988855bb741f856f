//! Runtime CPU-feature dispatch for the hand-written training kernels ([`crate::conv`],
//! [`crate::fused`]), and the allocator setting they rely on.
//!
//! The workspace is built for the baseline x86-64 target (SSE2), so that one binary runs on every
//! machine; there the loops of the kernels compile to 4-wide or scalar code, and rounding calls the
//! C library per element. [`vectorized`] compiles a loop a second time for AVX2 and FMA and picks
//! that copy when the CPU has them. Rust never fuses a multiply and an add on its own, so both
//! copies give the same floats.

/// Runs `f`, compiled for AVX2 and FMA when this CPU has them. Wrap the innermost per-task closure
/// (a closure handed to rayon runs outside its caller's features), and mark the helpers it calls
/// `#[inline(always)]`: a function that is not inlined keeps the baseline target.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: both features were just detected on this CPU.
        return unsafe { with_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Keeps freed activation buffers in the process instead of returning them to the kernel.
///
/// A training step allocates and frees the same large activation and gradient buffers every step.
/// glibc serves blocks above a dynamic threshold with `mmap` and unmaps them on free, so each step
/// paid page faults on fresh pages and TLB shootdowns across threads on unmap (about a tenth of a
/// MobileNet proxy's step). Raising the mmap threshold to its maximum (32 MiB on 64-bit glibc) and
/// the trim threshold makes the blocks reusable. Called when a training device is chosen
/// ([`crate::train::BackendKind::device`], which every binary goes through), acting once; other
/// C libraries are left alone.
pub(crate) fn reuse_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is called before this crate's
        // first large allocation and glibc serialises it against other allocator calls.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    });
}
