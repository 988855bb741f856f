#!/usr/bin/env python3
"""Time ONNX Runtime on the quant-core kernel benchmark shapes and append its rows.

Creates ./.venv (python3 -m venv) with onnxruntime and onnx from PyPI on first use, builds
QLinearMatMul / MatMul (GEMM shapes) and QLinearConv / Conv (MobileNet-style layers, depthwise
via group=C) models with onnx.helper, times each with intra_op_num_threads 1 and 2, and merges
rows with engine=onnxruntime into results/quant-core/kernels.csv (columns
kernel,shape,threads,engine,dtype,gops), replacing earlier onnxruntime rows, atomically
(temporary file, then rename). It also checks ONNX Runtime's int8 result against exact integer
arithmetic (`exactness_probe`) and writes results/quant-core/onnxruntime-exactness.json. Run `cargo run --release -p quant-core --bin bench-kernels`
first so both engines are measured in the same session.

Usage: python3 scripts/bench_onnxruntime.py [--out results/quant-core] [--quick] [--no-amx]
"""
import argparse
import csv
import json
import os
import sys
import time

from script_venv import ensure_venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")


GEMMS = [("gemm", 64, 784, 100), ("gemm", 256, 1024, 1024), ("gemm", 1024, 1024, 1024),
         ("conv-as-gemm", 3136, 288, 64)]
# (kernel, h, cin, cout, k, group, stride)
CONVS = [("conv3x3", 56, 32, 64, 3, 1, 1), ("conv1x1", 28, 256, 256, 1, 1, 1), ("conv3x3", 224, 3, 8, 3, 1, 2),
         ("depthwise3x3", 56, 128, 128, 3, 128, 1), ("depthwise3x3", 112, 8, 8, 3, 8, 1)]


def matmul_model(m, k, n, int8):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    if int8:
        w = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
        inits = [numpy_helper.from_array(w, "W"),
                 numpy_helper.from_array(np.array(1 / 255, np.float32), "a_s"),
                 numpy_helper.from_array(np.array(3, np.uint8), "a_z"),
                 numpy_helper.from_array(np.array(0.01, np.float32), "w_s"),
                 numpy_helper.from_array(np.array(0, np.int8), "w_z"),
                 numpy_helper.from_array(np.array(0.05, np.float32), "y_s"),
                 numpy_helper.from_array(np.array(128, np.uint8), "y_z")]
        node = helper.make_node("QLinearMatMul", ["A", "a_s", "a_z", "W", "w_s", "w_z", "y_s", "y_z"], ["Y"])
        a_t, y_t = TensorProto.UINT8, TensorProto.UINT8
    else:
        inits = [numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "W")]
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
        a_t = y_t = TensorProto.FLOAT
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", a_t, [m, k])],
                              [helper.make_tensor_value_info("Y", y_t, [m, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def out_side(h, ks, stride):
    """Output side of a square convolution padded ks // 2 on every side."""
    return (h + 2 * (ks // 2) - ks) // stride + 1


def conv_model(h, cin, cout, ks, group, stride, int8):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    pad = ks // 2
    oh = out_side(h, ks, stride)
    attrs = dict(kernel_shape=[ks, ks], pads=[pad] * 4, strides=[stride, stride], group=group)
    wshape = (cout, cin // group, ks, ks)
    if int8:
        inits = [numpy_helper.from_array(rng.integers(-127, 128, size=wshape, dtype=np.int8), "W"),
                 numpy_helper.from_array(np.array(1 / 255, np.float32), "x_s"),
                 numpy_helper.from_array(np.array(5, np.uint8), "x_z"),
                 numpy_helper.from_array(np.array(0.01, np.float32), "w_s"),
                 numpy_helper.from_array(np.array(0, np.int8), "w_z"),
                 numpy_helper.from_array(np.array(0.05, np.float32), "y_s"),
                 numpy_helper.from_array(np.array(128, np.uint8), "y_z")]
        node = helper.make_node("QLinearConv", ["X", "x_s", "x_z", "W", "w_s", "w_z", "y_s", "y_z"], ["Y"], **attrs)
        t = TensorProto.UINT8
    else:
        inits = [numpy_helper.from_array(rng.standard_normal(wshape).astype(np.float32), "W")]
        node = helper.make_node("Conv", ["X", "W"], ["Y"], **attrs)
        t = TensorProto.FLOAT
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", t, [1, cin, h, h])],
                              [helper.make_tensor_value_info("Y", t, [1, cout, oh, oh])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def exactness_probe():
    """How far ONNX Runtime's QLinearMatMul (uint8 x int8) is from exact integer arithmetic.

    Scales 1 and 1 and an output scale of 2^10 make the op's true result `round(acc / 1024) + 128`
    for the exact int32 accumulator `acc`, with no float rounding in the way (|acc| < 2^24); K = 8
    keeps most outputs inside [0, 255]. On CPUs without VNNI, kernels that sum u8 x s8 product
    pairs in saturating int16 (`vpmaddubsw`) lose up to 2^15 per saturated pair, visible here as
    outputs many LSB off. Returns a dict for the manifest.
    """
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    m, k, n, y_scale = 256, 8, 64, 2.0 ** 10
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    w = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
    inits = [numpy_helper.from_array(w, "W"),
             numpy_helper.from_array(np.array(1, np.float32), "a_s"),
             numpy_helper.from_array(np.array(0, np.uint8), "a_z"),
             numpy_helper.from_array(np.array(1, np.float32), "w_s"),
             numpy_helper.from_array(np.array(0, np.int8), "w_z"),
             numpy_helper.from_array(np.array(y_scale, np.float32), "y_s"),
             numpy_helper.from_array(np.array(128, np.uint8), "y_z")]
    node = helper.make_node("QLinearMatMul", ["A", "a_s", "a_z", "W", "w_s", "w_z", "y_s", "y_z"], ["Y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.UINT8, [m, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"A": a})[0].astype(np.int64)
    acc = a.astype(np.int64) @ w.astype(np.int64)
    want = np.clip(np.rint(acc / y_scale) + 128, 0, 255).astype(np.int64)
    inside = (want > 0) & (want < 255)
    off = np.abs(got - want)[inside]
    return {"op": "QLinearMatMul u8 x s8", "shape": f"{m}x{k}x{n}", "outputs_checked": int(inside.sum()),
            "outputs_off": int((off != 0).sum()), "max_lsb_off": int(off.max()) if off.size else 0}


def time_model(model, feed, threads, budget):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    sess.run(None, feed)
    t0 = time.perf_counter()
    sess.run(None, feed)
    once = max(time.perf_counter() - t0, 1e-7)
    reps = int(min(max(budget / once, 3), 2000))
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feed)
        samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2]


def refuse_amx():
    """Makes Linux refuse this process the AMX tile state (`arch_prctl(ARCH_REQ_XCOMP_PERM)` fails
    with EPERM, through a seccomp filter), so ONNX Runtime's MLAS runs its AVX-512 VNNI kernels: on a
    CPU with AMX this measures what a VNNI-only CPU's ONNX Runtime would run, beside
    `bench-kernels --backend avx512vnni`."""
    import ctypes
    import struct
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        sys.exit("--no-amx: only on Linux x86-64 (fix: drop the flag)")

    def op(code, jt, jf, k):  # one classic-BPF instruction
        return struct.pack("HBBI", code, jt, jf, k)
    arch_prctl, req_xcomp_perm = 158, 0x1023
    prog = b"".join([
        op(0x20, 0, 0, 0),                  # A = syscall number
        op(0x15, 0, 3, arch_prctl),         # not arch_prctl: allow
        op(0x20, 0, 0, 16),                 # A = low word of the first argument
        op(0x15, 0, 1, req_xcomp_perm),     # not a tile-state request: allow
        op(0x06, 0, 0, 0x00050000 | 1),     # SECCOMP_RET_ERRNO | EPERM
        op(0x06, 0, 0, 0x7FFF0000),         # SECCOMP_RET_ALLOW
    ])

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    code = ctypes.create_string_buffer(prog)
    program = Program(len(prog) // 8, ctypes.cast(code, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if (libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0
            or libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(program), 0, 0) != 0):
        sys.exit(f"--no-amx: seccomp refused (errno {ctypes.get_errno()}; fix: drop the flag)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "quant-core"))
    ap.add_argument("--quick", action="store_true", help="short timing budget (smoke run)")
    ap.add_argument("--no-amx", action="store_true",
                    help="refuse ONNX Runtime the AMX tile state (Linux x86-64): its VNNI kernels run")
    args = ap.parse_args()
    ensure_venv(VENV, ["onnxruntime", "onnx", "numpy"], "import onnxruntime, onnx, numpy")
    if args.no_amx:
        refuse_amx()
    import numpy as np
    import onnxruntime as ort
    budget = 0.06 if args.quick else 0.7
    rng = np.random.default_rng(2)
    rows = []
    for threads in (1, 2):
        for kernel, m, k, n in GEMMS:
            ops = 2.0 * m * k * n
            for int8 in (True, False):
                a = rng.integers(0, 256, size=(m, k), dtype=np.uint8) if int8 else rng.random((m, k), dtype=np.float32)
                t = time_model(matmul_model(m, k, n, int8), {"A": a}, threads, budget)
                rows.append([kernel, f"{m}x{k}x{n}", threads, "onnxruntime", "int8" if int8 else "f32", f"{ops / t / 1e9:.2f}"])
        for kernel, h, cin, cout, ks, group, stride in CONVS:
            oh = out_side(h, ks, stride)
            ops = 2.0 * oh * oh * ks * ks * (cin // group) * cout
            shape = f"{h}x{h}x{cin}" if group > 1 else f"{h}x{h}x{cin}->{cout}" + (f"-s{stride}" if stride > 1 else "")
            for int8 in (True, False):
                x = rng.integers(0, 256, size=(1, cin, h, h), dtype=np.uint8) if int8 else rng.random((1, cin, h, h), dtype=np.float32)
                t = time_model(conv_model(h, cin, cout, ks, group, stride, int8), {"X": x}, threads, budget)
                rows.append([kernel, shape, threads, "onnxruntime", "int8" if int8 else "f32", f"{ops / t / 1e9:.2f}"])
    for r in rows:
        print(",".join(map(str, r)))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "kernels.csv")
    header = ["kernel", "shape", "threads", "engine", "dtype", "gops"]
    kept = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            kept = [r for r in csv.reader(f)][1:]
        kept = [r for r in kept if len(r) == 6 and r[3] != "onnxruntime"]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(kept + rows)
    os.replace(tmp, path)
    print(f"onnxruntime {ort.__version__}: wrote {len(rows)} rows to {path}", file=sys.stderr)
    probe = dict(exactness_probe(), onnxruntime=ort.__version__)
    print(f"onnxruntime exactness: {probe}", file=sys.stderr)
    probe_path = os.path.join(args.out, "onnxruntime-exactness.json")
    with open(probe_path + ".tmp", "w") as f:
        json.dump(probe, f, indent=2)
    os.replace(probe_path + ".tmp", probe_path)


if __name__ == "__main__":
    main()
