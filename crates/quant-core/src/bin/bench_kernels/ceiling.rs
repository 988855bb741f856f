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
//! * VNNI (when present): `vpdpbusd zmm`, 64 u8 x s8 multiply-adds each;
//! * AMX (when present and granted): `tdpbusd` on four independent 16 x 16 accumulator tiles,
//!   16 x 16 x 64 multiply-adds each.

use std::arch::asm;

use quant_core::kernels::Backend;
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
    /// `tdpbusd`, where the CPU has AMX-INT8 and the OS grants the tile state.
    pub int8_amx_gops: Option<f64>,
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

/// `$op` on registers 0..=11 of kind `$r` (`"ymm"` / `"zmm"`), each as `$op rI, $a, $b`,
/// where `$a` / `$b` are the sources (`"I"` stands for the register itself).
macro_rules! on_twelve {
    ($op:literal, $r:literal, same) => {
        concat!(
            $op, " ", $r, "0, ", $r, "0, ", $r, "0\n", $op, " ", $r, "1, ", $r, "1, ", $r, "1\n",
            $op, " ", $r, "2, ", $r, "2, ", $r, "2\n", $op, " ", $r, "3, ", $r, "3, ", $r, "3\n",
            $op, " ", $r, "4, ", $r, "4, ", $r, "4\n", $op, " ", $r, "5, ", $r, "5, ", $r, "5\n",
            $op, " ", $r, "6, ", $r, "6, ", $r, "6\n", $op, " ", $r, "7, ", $r, "7, ", $r, "7\n",
            $op, " ", $r, "8, ", $r, "8, ", $r, "8\n", $op, " ", $r, "9, ", $r, "9, ", $r, "9\n",
            $op, " ", $r, "10, ", $r, "10, ", $r, "10\n", $op, " ", $r, "11, ", $r, "11, ", $r,
            "11\n",
        )
    };
    ($op:literal, $r:literal, sources) => {
        concat!(
            $op, " ", $r, "0, ", $r, "12, ", $r, "13\n", $op, " ", $r, "1, ", $r, "12, ", $r,
            "13\n", $op, " ", $r, "2, ", $r, "12, ", $r, "13\n", $op, " ", $r, "3, ", $r, "12, ",
            $r, "13\n", $op, " ", $r, "4, ", $r, "12, ", $r, "13\n", $op, " ", $r, "5, ", $r,
            "12, ", $r, "13\n", $op, " ", $r, "6, ", $r, "12, ", $r, "13\n", $op, " ", $r, "7, ",
            $r, "12, ", $r, "13\n", $op, " ", $r, "8, ", $r, "12, ", $r, "13\n", $op, " ", $r,
            "9, ", $r, "12, ", $r, "13\n", $op, " ", $r, "10, ", $r, "12, ", $r, "13\n", $op, " ",
            $r, "11, ", $r, "12, ", $r, "13\n",
        )
    };
}

/// `ITERS` iterations of twelve independent `$op` (registers 0..=11 from 12 and 13, all zeroed
/// first with `$zero`, so no denormal slow path), registers of kind `$r`. Every vector register
/// is caller-saved in the C ABI, so `clobber_abi("C")` declares them all.
macro_rules! throughput_loop {
    ($zero:literal, $op:literal, $r:literal) => {
        // SAFETY: register-only instructions on clobbered registers; the caller enabled the
        // instruction set.
        unsafe {
            asm!(
                concat!(
                    $zero, " ", $r, "12, ", $r, "12, ", $r, "12\n",
                    $zero, " ", $r, "13, ", $r, "13, ", $r, "13\n",
                    on_twelve!($zero, $r, same),
                    ".p2align 5\n2:\n",
                    on_twelve!($op, $r, sources),
                    "dec rcx\njnz 2b\n",
                ),
                inout("rcx") ITERS => _,
                clobber_abi("C"),
                options(nostack, nomem),
            )
        }
    };
}

#[target_feature(enable = "avx2")]
fn madd_loop() {
    throughput_loop!("vpxor", "vpmaddwd", "ymm");
}

#[target_feature(enable = "avx2,fma")]
fn fma_loop() {
    throughput_loop!("vxorps", "vfmadd231ps", "ymm");
}

#[target_feature(enable = "avx512f,avx512vnni")]
fn dpbusd_loop() {
    throughput_loop!("vpxord", "vpdpbusd", "zmm");
}

/// `ITERS / 4` iterations of twelve `tdpbusd` into four accumulator tiles (three rounds of four
/// independent products), tiles configured as 16 rows of 64 bytes, zeroed first.
fn tdpbusd_loop() {
    #[repr(C, align(64))]
    struct Config([u8; 64]);
    let mut cfg = Config([0; 64]);
    cfg.0[0] = 1;
    for t in 0..8 {
        cfg.0[16 + 2 * t] = 64;
        cfg.0[48 + t] = 16;
    }
    // SAFETY: the caller checked AMX is available (and permitted); register-only tile operations
    // on tiles configured and released within this block.
    unsafe {
        asm!(
            "ldtilecfg [{cfg}]",
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            "tilezero tmm4", "tilezero tmm5", "tilezero tmm6", "tilezero tmm7",
            ".p2align 5",
            "2:",
            "tdpbusd tmm0, tmm4, tmm6", "tdpbusd tmm1, tmm4, tmm7",
            "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7",
            "tdpbusd tmm0, tmm4, tmm6", "tdpbusd tmm1, tmm4, tmm7",
            "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7",
            "tdpbusd tmm0, tmm4, tmm6", "tdpbusd tmm1, tmm4, tmm7",
            "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7",
            "dec {n}",
            "jnz 2b",
            "tilerelease",
            cfg = in(reg) cfg.0.as_ptr(),
            n = inout(reg) ITERS / 4 => _,
            options(nostack),
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
        int8_amx_gops: Backend::Amx
            .is_available()
            .then(|| rate(tdpbusd_loop) / 4.0 * 16.0 * 16.0 * 64.0 * 2.0 / 1e9),
    }
}
