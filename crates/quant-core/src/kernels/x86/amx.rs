//! Intel AMX microkernel, 32 x 32, `tdpbusd`: uint8 activations x int8 weights, four products
//! summed into each int32 element of a 16 x 16 accumulator tile, with no intermediate saturation
//! (the same arithmetic as `vpdpbusd`, on a whole 16 x 64 by 64 x 16 block per instruction).
//!
//! Why a backend of its own: on a Sapphire Rapids class Xeon, ONNX Runtime's int8 GEMM ran at
//! twice the measured `vpdpbusd` ceiling of one core, which only the tile unit reaches; `tdpbusd`
//! measured about 3.5 int8 TOP/s per core there, four times `vpdpbusd zmm`.
//!
//! Layout: the weight panels are the VNNI ones ([`super::avx512_vnni`]: 32 columns, each K quad
//! `q` holding `[w[4q..4q+4, j]]`, 128 bytes) with `K` padded to a multiple of 64, so K block `kb`
//! of a panel is two B tiles (16 quad rows x 64 bytes, row stride 128) at `kb * 2048` and
//! `kb * 2048 + 64`. Activations are blocks of 32 rows, row-major, so K block `kb` is two A tiles
//! (rows 0-15 and 16-31, 64 bytes each at byte `64 * kb` of each row). A packed block has its rows
//! padded to a multiple of 64 and starts on a cache line, so every tile row is one line. The
//! caller's rows are read in place instead (row stride `K`) when they have that form already,
//! or when the block meets at most two weight panels: then the copy costs more than the split
//! lines it saves (on a Sapphire Rapids class Xeon, rows 16 bytes off the line boundary made the
//! tile loads of a 1024^3 GEMM 1.8 times slower, but packing cost a fifth of a 3136 x 288 x 64
//! GEMM). When `K` is not a multiple of 64, the last K block of a row read in place runs on into
//! the next row (or past the last one, inside the caller's buffer): those bytes meet the zero
//! rows that pad the weight panels to whole K blocks, so they add nothing.
//!
//! Tile registers: tmm0-3 accumulate the four 16 x 16 quarters of the 32 x 32 tile, tmm4-5 hold
//! the A tiles and tmm6-7 the B tiles, all configured as 16 rows of 64 bytes. Tile registers are
//! not renamed, so a load must wait for the last `tdpbusd` that reads its register: each A or B
//! tile of the next K block is loaded as soon as its register's last product of this block is
//! issued, not all four at the top of the loop (on a Sapphire Rapids class Xeon the microkernel
//! of a 256 x 1024 x 1024 GEMM ran 15-20 % faster so). The configuration
//! is loaded once per thread and GEMM call ([`MicroKernel::with_tiles`]) and released at its end,
//! so no tile state outlives a call (the compiler never allocates tile registers itself); the
//! accumulator tiles are stored straight into the caller's rows at its row stride.
#![deny(clippy::float_arithmetic)]

use std::arch::asm;
use std::sync::OnceLock;

use crate::kernels::MicroKernel;

/// Columns per panel (two 16-column B tiles).
pub const NR: usize = 32;
/// Rows per tile (two 16-row A tiles).
pub const MR: usize = 32;
/// Bytes of `K` per tile step (one A tile row).
const KB: usize = 64;

/// Whether the CPU has AMX-TILE and AMX-INT8 and the OS lets this process use the tile state.
///
/// Linux keeps the 8 KiB tile state off until a process asks for it
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); the first call asks, once per process.
/// Elsewhere the backend is not offered.
pub fn available() -> bool {
    static PERMITTED: OnceLock<bool> = OnceLock::new();
    *PERMITTED.get_or_init(|| cpu_has_amx_int8() && request_tile_permission())
}

fn cpu_has_amx_int8() -> bool {
    // CPUID leaf 7 subleaf 0, EDX: bit 24 AMX-TILE, bit 25 AMX-INT8.
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    let max_leaf = std::arch::x86_64::__cpuid(0).eax;
    max_leaf >= 7 && leaf7.edx & (1 << 24) != 0 && leaf7.edx & (1 << 25) != 0
}

#[cfg(target_os = "linux")]
fn request_tile_permission() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: arch_prctl only changes this process's permitted extended state; the syscall
    // clobbers rcx and r11 and touches no memory of ours.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_permission() -> bool {
    false
}

/// `K` padded to whole tile steps.
fn padded_k(k: usize) -> usize {
    k.div_ceil(KB) * KB
}

/// Bytes of an activation block that a tile reads: 32 rows at stride `lda`, the last one read up
/// to the padded depth.
fn block_reach(k: usize, lda: usize) -> usize {
    (MR - 1) * lda + padded_k(k)
}

/// Packs a row-major int8 `K x N` matrix into quad-interleaved panels padded to whole K blocks
/// (the VNNI layout, same panel width, deeper).
pub fn pack_b(w: &[i8], k: usize, n: usize) -> crate::kernels::aligned::LineAligned<i8> {
    const _: () = assert!(NR == super::avx512_vnni::NR);
    super::avx512_vnni::pack_quads(w, k, n, padded_k(k))
}

/// The AMX microkernel.
pub(crate) struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = NR;
    /// One tile row of blocks: a 32-row block's int32 rows stay in L1 between the tile stores
    /// and the epilogue (on a Sapphire Rapids class Xeon every benchmark GEMM ran 1.1-1.3 times
    /// faster than with 96 rows, which the VNNI and AVX2 kernels keep).
    const MC: usize = MR;
    type A = u8;
    type B = i8;

    fn a_block_len(k: usize) -> usize {
        padded_k(k) * MR
    }

    fn a_stride(k: usize) -> usize {
        padded_k(k)
    }

    fn b_panel_len(k: usize) -> usize {
        padded_k(k) * NR
    }

    fn pack_a(a: &[u8], rows: usize, k: usize, dst: &mut [u8]) {
        for (r, dst_row) in dst.chunks_exact_mut(padded_k(k)).take(MR).enumerate() {
            let (head, pad) = dst_row.split_at_mut(k);
            if r < rows {
                crate::kernels::copy_run(head, &a[r * k..(r + 1) * k]);
            } else {
                head.fill(0);
            }
            pad.fill(0);
        }
    }

    fn borrow_a(a: &[u8], rows: usize, k: usize, panels: usize) -> Option<&[u8]> {
        let lines = k.is_multiple_of(KB) && a.as_ptr().addr().is_multiple_of(64);
        (rows == MR && a.len() >= block_reach(k, k) && (lines || panels <= 2)).then_some(a)
    }

    unsafe fn tile(a: &[u8], lda: usize, b: &[i8], k: usize, c: &mut [i32], ldc: usize) {
        let steps = padded_k(k) / KB;
        assert!(lda >= k && a.len() >= block_reach(k, lda) && b.len() >= padded_k(k) * NR);
        assert!(ldc >= NR && c.len() >= (MR - 1) * ldc + NR);
        // SAFETY: the caller guarantees AMX and a configuration loaded by `with_tiles`. Tile
        // loads read 16 rows of 64 bytes: A rows `0..32` at stride `lda` up to byte
        // `31 * lda + padded_k(k)` (`block_reach`), and B quad rows at stride 128 of each K block,
        // all inside the asserted lengths; the stores write 16 rows
        // of 64 bytes at stride `4 * ldc` from rows 0 and 16, columns 0 and 16, inside `c`.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "tileloadd tmm4, [{a} + {lda}*1]",
                "tileloadd tmm6, [{b} + {s128}*1]",
                "tileloadd tmm5, [{a16} + {lda}*1]",
                "tileloadd tmm7, [{b} + {s128}*1 + 64]",
                "dec {steps}",
                "jz 3f",
                "2:",
                "add {a}, 64",
                "add {a16}, 64",
                "add {b}, 2048",
                "tdpbusd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm4, tmm7",
                "tileloadd tmm4, [{a} + {lda}*1]",
                "tdpbusd tmm2, tmm5, tmm6",
                "tileloadd tmm6, [{b} + {s128}*1]",
                "tdpbusd tmm3, tmm5, tmm7",
                "tileloadd tmm5, [{a16} + {lda}*1]",
                "tileloadd tmm7, [{b} + {s128}*1 + 64]",
                "dec {steps}",
                "jnz 2b",
                "3:",
                "tdpbusd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm4, tmm7",
                "tdpbusd tmm2, tmm5, tmm6",
                "tdpbusd tmm3, tmm5, tmm7",
                "tilestored [{c} + {ldc4}*1], tmm0",
                "tilestored [{c} + {ldc4}*1 + 64], tmm1",
                "tilestored [{c16} + {ldc4}*1], tmm2",
                "tilestored [{c16} + {ldc4}*1 + 64], tmm3",
                a = inout(reg) a.as_ptr() => _,
                a16 = inout(reg) a.as_ptr().add(16 * lda) => _,
                b = inout(reg) b.as_ptr() => _,
                c = in(reg) c.as_mut_ptr(),
                c16 = in(reg) c.as_mut_ptr().add(16 * ldc),
                lda = in(reg) lda,
                ldc4 = in(reg) ldc * 4,
                s128 = in(reg) NR * 4,
                steps = inout(reg) steps => _,
                options(nostack),
            );
        }
    }

    unsafe fn with_tiles<R>(f: impl FnOnce() -> R) -> R {
        // Palette 1; tiles 0-7 all 16 rows x 64 bytes (colsb at byte 16 + 2t, rows at 48 + t).
        #[repr(C, align(64))]
        struct Config([u8; 64]);
        let mut cfg = Config([0; 64]);
        cfg.0[0] = 1;
        for t in 0..8 {
            cfg.0[16 + 2 * t] = KB as u8;
            cfg.0[48 + t] = 16;
        }
        // SAFETY: the caller guarantees AMX; the configuration is 64 aligned bytes.
        unsafe { asm!("ldtilecfg [{cfg}]", cfg = in(reg) cfg.0.as_ptr(), options(nostack)) };
        let r = f();
        // SAFETY: as above; `f`'s tile calls are done, so nothing depends on the tile state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
        r
    }
}
