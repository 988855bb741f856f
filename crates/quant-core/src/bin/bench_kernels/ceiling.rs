//! Instruction-throughput ceilings measured on the machine the benchmark runs on.
//!
//! A nominal peak from the clock and a datasheet says little on a virtual machine whose
//! vector units may be narrower than the instruction set it reports (the development machine
//! advertises AVX2 but executes each 256-bit multiply as two 128-bit halves). So the benchmark
//! times the one instruction each path is built on, in a loop of twelve independent
//! register-only operations, and reports every kernel as a fraction of that:
//!
//! * exact int8 on AVX2: `vpmaddwd ymm`, 16 int16 multiply-adds each;
//! * f32: `vfmadd231ps ymm`, 8 multiply-adds each;
//! * VNNI (when present): `vpdpbusd zmm`, 64 u8 x s8 multiply-adds each.

use std::arch::asm;
use std::time::Instant;

/// Multiply-add throughput of one core, in GOP/s (2 ops per multiply-add).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Ceilings {
    /// `vpmaddwd ymm`: the exact int16 x int16 -> int32 path the AVX2 kernel uses.
    pub int8_avx2_gops: Option<f64>,
    /// `vfmadd231ps ymm`: the f32 path.
    pub f32_fma_gops: Option<f64>,
    /// `vpdpbusd zmm`, where the CPU has AVX-512 VNNI.
    pub int8_vnni_gops: Option<f64>,
}

const ITERS: u64 = 20_000_000;
const OPS_PER_ITER: f64 = 12.0;

/// Best of three timings of `f` (which runs `ITERS` loop iterations), in instructions per second.
fn rate(f: impl Fn()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            ITERS as f64 * OPS_PER_ITER / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// Twelve independent `$op` per iteration on ymm0..ymm11 from ymm12/ymm13.
macro_rules! twelve {
    ($op:literal) => {
        concat!(
            ".p2align 5\n2:\n",
            $op,
            " ymm0, ymm12, ymm13\n",
            $op,
            " ymm1, ymm12, ymm13\n",
            $op,
            " ymm2, ymm12, ymm13\n",
            $op,
            " ymm3, ymm12, ymm13\n",
            $op,
            " ymm4, ymm12, ymm13\n",
            $op,
            " ymm5, ymm12, ymm13\n",
            $op,
            " ymm6, ymm12, ymm13\n",
            $op,
            " ymm7, ymm12, ymm13\n",
            $op,
            " ymm8, ymm12, ymm13\n",
            $op,
            " ymm9, ymm12, ymm13\n",
            $op,
            " ymm10, ymm12, ymm13\n",
            $op,
            " ymm11, ymm12, ymm13\n",
            "dec {n}\n",
            "jnz 2b\n",
        )
    };
}

#[target_feature(enable = "avx2")]
fn madd_loop() {
    // SAFETY: register-only instructions; every register written is declared clobbered.
    unsafe {
        asm!(
            "vpxor ymm12, ymm12, ymm12", "vpxor ymm13, ymm13, ymm13",
            twelve!("vpmaddwd"),
            n = inout(reg) ITERS => _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
            out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
            out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _,
            options(nostack, nomem),
        );
    }
}

#[target_feature(enable = "avx2,fma")]
fn fma_loop() {
    // SAFETY: as above; the sources are zero, so no denormal slow path.
    unsafe {
        asm!(
            "vxorps ymm12, ymm12, ymm12", "vxorps ymm13, ymm13, ymm13",
            "vxorps ymm0, ymm0, ymm0", "vxorps ymm1, ymm1, ymm1", "vxorps ymm2, ymm2, ymm2",
            "vxorps ymm3, ymm3, ymm3", "vxorps ymm4, ymm4, ymm4", "vxorps ymm5, ymm5, ymm5",
            "vxorps ymm6, ymm6, ymm6", "vxorps ymm7, ymm7, ymm7", "vxorps ymm8, ymm8, ymm8",
            "vxorps ymm9, ymm9, ymm9", "vxorps ymm10, ymm10, ymm10", "vxorps ymm11, ymm11, ymm11",
            twelve!("vfmadd231ps"),
            n = inout(reg) ITERS => _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
            out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
            out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _,
            options(nostack, nomem),
        );
    }
}

#[target_feature(enable = "avx512f,avx512vnni")]
fn dpbusd_loop() {
    // SAFETY: as above (zmm registers).
    unsafe {
        asm!(
            "vpxord zmm12, zmm12, zmm12", "vpxord zmm13, zmm13, zmm13",
            ".p2align 5",
            "2:",
            "vpdpbusd zmm0, zmm12, zmm13", "vpdpbusd zmm1, zmm12, zmm13",
            "vpdpbusd zmm2, zmm12, zmm13", "vpdpbusd zmm3, zmm12, zmm13",
            "vpdpbusd zmm4, zmm12, zmm13", "vpdpbusd zmm5, zmm12, zmm13",
            "vpdpbusd zmm6, zmm12, zmm13", "vpdpbusd zmm7, zmm12, zmm13",
            "vpdpbusd zmm8, zmm12, zmm13", "vpdpbusd zmm9, zmm12, zmm13",
            "vpdpbusd zmm10, zmm12, zmm13", "vpdpbusd zmm11, zmm12, zmm13",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) ITERS => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
            out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
            out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _,
            options(nostack, nomem),
        );
    }
}

/// Measures the ceilings this CPU supports (about a second in all).
pub fn measure() -> Ceilings {
    let avx2 = is_x86_feature_detected!("avx2");
    let fma = avx2 && is_x86_feature_detected!("fma");
    let vnni = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni");
    Ceilings {
        // SAFETY (all three): the feature was detected just above.
        int8_avx2_gops: avx2.then(|| rate(|| unsafe { madd_loop() }) * 16.0 * 2.0 / 1e9),
        f32_fma_gops: fma.then(|| rate(|| unsafe { fma_loop() }) * 8.0 * 2.0 / 1e9),
        int8_vnni_gops: vnni.then(|| rate(|| unsafe { dpbusd_loop() }) * 64.0 * 2.0 / 1e9),
    }
}
