#!/usr/bin/env python3
"""Time the bench-train models in PyTorch beside Burn and print the ratios.

Creates ./.venv-torch (python3 -m venv) with torch from PyPI on first use: the default Linux wheel
is the CUDA build (several GB of NVIDIA libraries), run here on the CPU; Debian's python3-torch is
a much older CPU build, 2-5x slower, and is not used (the venv does not see system packages).
Reads the burn-flex rows of <out>/quant-train/train_step.csv (written by `bench-train` just
before), builds the same architecture in PyTorch for every model key (hand-written modules that
mirror the Rust definitions layer for layer), checks its trainable parameter count against the
Burn `fp` row (the guard that the two models are the same), times one float training step
(forward, cross-entropy, backward, Adam) at batch 128 with torch.set_num_threads(1) and (2), with
the same warm-up and step counts as the Burn rows, and merges rows with engine=pytorch into the
table atomically under the table's lock (the lock file bench-train uses), replacing earlier
pytorch rows of the profile. It writes train_step.pytorch.json (torch build, CPU, command) beside
the table and prints, per model and thread count, Burn's time per step for FP and every QAT mode
over PyTorch's FP step (>1: Burn is slower).

Usage: python3 scripts/bench_torch_train.py [--out RESULTS_ROOT] [--quick]
"""
import argparse
import csv
import fcntl
import json
import math
import os
import statistics
import sys
import time

from script_venv import ensure_venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-torch")
BATCH = 128
CLASSES = 10
# (warm-up steps, timed calls, steps per call): bench-train's StepPlan::FULL and ::QUICK.
PLANS = {"full": (2, 5, 2), "smoke": (1, 2, 1)}


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def half_away(x):
    """Rust's f64::round (half away from zero), for the width multipliers; Python's round() is half-even."""
    return math.floor(x + 0.5)


def build(key, twins):
    """The PyTorch twin of a bench-train model key `<arch>@<side>` (grammar: crates/train-bench/src/catalog.rs);
    `twins` holds the classes of torch_classes()."""
    from torch import nn

    arch, _, side = key.rpartition("@")
    side = int(side)
    name, _, arg = arch.partition(":")

    def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
        """quant-train's QLayer conv: bias-free conv, symmetric k/2 padding, batch norm, fused activation."""
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, *([act()] if act else []))

    def head(channels):
        return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, CLASSES)]

    class Residual(nn.Module):
        """quant-train's Residual: act(body(x) + shortcut(x)), identity shortcut when there is no layer."""

        def __init__(self, body, shortcut, act):
            super().__init__()
            self.body, self.shortcut, self.act = body, shortcut, act

        def forward(self, x):
            y = self.body(x) + (self.shortcut(x) if self.shortcut is not None else x)
            return self.act(y) if self.act else y

    if name == "mlp":
        widths, layers, d_in = [int(w) for w in arg.split("-")], [nn.Flatten()], side * side
        for w in widths:
            layers += [nn.Linear(d_in, w), nn.ReLU()]
            d_in = w
        return nn.Sequential(*layers, nn.Linear(d_in, CLASSES)), side
    if name == "cnn":
        widths, layers, c = [int(w) for w in arg.split("-")], [], 1
        for i, w in enumerate(widths):
            layers.append(conv_bn(c, w, 3, act=nn.ReLU))
            if i + 1 < len(widths):
                layers.append(nn.MaxPool2d(2))
            c = w
        return nn.Sequential(*layers, *head(c)), side
    if name == "mbv1":
        a = float(arg)
        w = lambda c: max(1, half_away(c * a))
        c, layers = w(32), [conv_bn(1, w(32), 3, act=nn.ReLU6)]
        for out, s in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]:
            layers += [conv_bn(c, c, 3, s, groups=c, act=nn.ReLU6), conv_bn(c, w(out), 1, act=nn.ReLU6)]
            c = w(out)
        return nn.Sequential(*layers, *head(c)), side
    if name in ("resnet8", "resnet14", "resnet20"):
        n, c, layers = (int(name[6:]) - 2) // 6, 16, [conv_bn(1, 16, 3, act=nn.ReLU)]
        for stage, out in enumerate([16, 32, 64]):
            for i in range(n):
                s = 2 if stage > 0 and i == 0 else 1
                body = nn.Sequential(conv_bn(c, out, 3, s, act=nn.ReLU), conv_bn(out, out, 3))
                short = conv_bn(c, out, 1, s) if s != 1 or c != out else None
                layers.append(Residual(body, short, nn.ReLU()))
                c = out
        return nn.Sequential(*layers, *head(c)), side
    if name.startswith("tinymbv1-b"):
        base, width = int(name[len("tinymbv1-b"):]), float(arg)
        ch = lambda m: int(width * (base * m))  # TF-slim's int(): truncation, as MobileNetV1::channels
        c, layers = ch(1), [conv_bn(1, ch(1), 3, 2, act=nn.ReLU6)]
        for m, s in [(2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2)] + [(16, 1)] * 5 + [(32, 2), (32, 1)]:
            layers += [conv_bn(c, c, 3, s, groups=c, act=nn.ReLU6), conv_bn(c, ch(m), 1, act=nn.ReLU6)]
            c = ch(m)
        return nn.Sequential(*layers, *head(c)), side
    if name.startswith("f8net-"):
        return twins["f8net"](name[len("f8net-"):], float(arg)), side
    if name == "row-transformer":
        return twins["row-transformer"](), side
    fail(f"{key}: no PyTorch twin for this architecture: add it to scripts/bench_torch_train.py")


def torch_classes():
    """Model classes that need torch at definition time (imported after the venv is active)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class F8NetProxy(nn.Module):
        """f8net::graph::Graph::proxy: values, convs (bias-free, each with batch norm) and residual adds.

        A value's consumers see it clipped by its PACT level: [0, a] for post-ReLU values, [-a, a] for
        signed (linear-bottleneck) values, one learnable a per class of values linked by additions (the
        Rust model's `Params::alpha`, always allocated, as there). ResNet50's float model runs without
        PACT (f8net::experiments::fp_pact): a plain ReLU, its alphas unused, as in Burn. Raw residual
        branches feed the add unclipped. The head value is pooled and classified."""

        def __init__(self, arch, width):
            super().__init__()
            w = lambda c: max(1, half_away(c * width))
            self.values, self.convs, self.ops, self.alphas = [(1, False, None)], [], [], 0
            self.pact = arch != "resnet50"
            if arch == "mobilenetv1":
                x = self._conv(0, w(16), 3, 1, False)
                for c, s in [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)]:
                    d = self._conv(x, self.values[x][0], 3, s, True)
                    x = self._conv(d, w(c), 1, 1, False)
                head = x
            elif arch == "mobilenetv2":
                x = self._conv(0, w(16), 3, 1, False)
                for t, c, n, s in [(1, 8, 1, 1), (6, 16, 2, 2), (6, 24, 2, 2), (6, 32, 2, 2), (6, 48, 1, 1)]:
                    for i in range(n):
                        x = self._mbv2_block(x, t, w(c), s if i == 0 else 1)
                head = self._conv(x, w(256), 1, 1, False)
            elif arch in ("resnet18", "resnet50"):
                bottleneck = arch == "resnet50"
                stem, blocks = (16, 1) if bottleneck else (8, 2)
                x = self._conv(0, w(stem), 3, 1, False)
                for mid, s in [(8, 1), (16, 2), (32, 2), (64, 2)]:
                    for i in range(blocks):
                        x = self._resnet_block(x, w(mid), s if i == 0 else 1, bottleneck)
                head = x
            else:
                fail(f"f8net-{arch}: unknown F8Net proxy")
            self.head = head
            self.conv = nn.ModuleList(
                nn.Conv2d(ci, co, k, s, k // 2, groups=g, bias=False) for (_, _, ci, co, k, s, g) in self.convs)
            self.bn = nn.ModuleList(nn.BatchNorm2d(co) for (_, _, _, co, _, _, _) in self.convs)
            self.alpha = nn.ParameterList(nn.Parameter(torch.tensor([8.0])) for _ in range(self.alphas))
            self.fc = nn.Linear(self.values[head][0], CLASSES)

        def _value(self, channels, signed, alpha=None):
            if alpha is None:
                alpha, self.alphas = self.alphas, self.alphas + 1
            self.values.append((channels, signed, alpha))
            return len(self.values) - 1

        def _conv_into(self, src, dst, cout, k, stride, depthwise):
            cin = self.values[src][0]
            self.convs.append((src, dst, cin, cout, k, stride, cin if depthwise else 1))
            self.ops.append(("conv", len(self.convs) - 1))

        def _conv(self, src, cout, k, stride, depthwise):
            dst = self._value(cout, False)
            self._conv_into(src, dst, cout, k, stride, depthwise)
            return dst

        def _branch(self, src, total, k, stride):
            cout = self.values[total][0]
            self.values.append((cout, True, self.values[total][2]))
            dst = len(self.values) - 1
            self._conv_into(src, dst, cout, k, stride, False)
            return dst

        def _mbv2_block(self, x, t, cout, stride):
            cin = self.values[x][0]
            h = x if t == 1 else self._conv(x, cin * t, 1, 1, False)
            d = self._conv(h, cin * t, 3, stride, True)
            if stride == 1 and cin == cout:
                total = self._value(cout, True, self.values[x][2])
                p = self._branch(d, total, 1, 1)
                self.ops.append(("add", ("raw", p), ("q", x), total))
                return total
            p = self._conv(d, cout, 1, 1, False)
            self.values[p] = (self.values[p][0], True, self.values[p][2])
            return p

        def _resnet_block(self, x, mid, stride, bottleneck):
            cin = self.values[x][0]
            cout = 4 * mid if bottleneck else mid
            identity = stride == 1 and cin == cout
            total = self._value(cout, False, self.values[x][2] if identity else None)
            if bottleneck:
                a = self._conv(x, mid, 1, 1, False)
                b = self._conv(a, mid, 3, stride, False)
                main = self._branch(b, total, 1, 1)
            else:
                a = self._conv(x, mid, 3, stride, False)
                main = self._branch(a, total, 3, 1)
            other = ("q", x) if identity else ("raw", self._branch(x, total, 1, stride))
            self.ops.append(("add", ("raw", main), other, total))
            return total

        def _clip(self, v, x):
            if v == 0:
                return x
            _, signed, a = self.values[v]
            if not self.pact:
                return x if signed else F.relu(x)
            alpha = self.alpha[a]
            if signed:
                return torch.maximum(torch.minimum(x, alpha), -alpha)
            return torch.minimum(F.relu(x), alpha)

        def forward(self, image):
            raw, clipped = {0: image}, {}

            def use(v):
                if v not in clipped:
                    clipped[v] = self._clip(v, raw[v])
                return clipped[v]

            operand = lambda o: raw[o[1]] if o[0] == "raw" else use(o[1])
            for op in self.ops:
                if op[0] == "conv":
                    i = op[1]
                    src, dst = self.convs[i][0], self.convs[i][1]
                    raw[dst] = self.bn[i](self.conv[i](use(src)))
                else:
                    raw[op[3]] = operand(op[1]) + operand(op[2])
            return self.fc(use(self.head).mean((2, 3)))

    class RowTransformer(nn.Module):
        """adaptivfloat::transformer::RowTransformer: 28 row tokens, Linear 28->64 plus a learned 28x64
        positional embedding, 2 pre-LayerNorm encoder blocks (4 heads, ReLU FFN 64->128->64, no dropout),
        a final LayerNorm, mean pooling over tokens and Linear 64->10."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(28, 64)
            self.pos = nn.Parameter(torch.zeros(28, 64))
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, activation="relu", batch_first=True,
                                           norm_first=True) for _ in range(2))
            self.norm = nn.LayerNorm(64)
            self.head = nn.Linear(64, CLASSES)

        def forward(self, image):
            x = self.embed(image.reshape(image.shape[0], 28, 28)) + self.pos
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x).mean(1))

    return {"f8net": F8NetProxy, "row-transformer": RowTransformer}


def time_step(model, side, threads, plan):
    """Median and mean ms per step over the timed calls, and CPU time over wall time, like bench-train."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    warmup, calls, steps = plan
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(2)
    pixels = torch.randint(0, 256, (steps * BATCH, 1, side, side), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, CLASSES, (steps * BATCH,), generator=gen)

    def run(n):
        for s in range(n):
            i = (s % steps) * BATCH
            x = pixels[i:i + BATCH].float().div_(255.0)  # the batch is built every step, as in Burn
            optim.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), labels[i:i + BATCH])
            loss.backward()
            optim.step()
            loss.item()

    model.train()
    run(warmup)
    per_step, wall, cpu = [], 0.0, 0.0
    for _ in range(calls):
        w0, c0 = time.perf_counter(), time.process_time()
        run(steps)
        w, c = time.perf_counter() - w0, time.process_time() - c0
        wall, cpu = wall + w, cpu + c
        per_step.append(w * 1e3 / steps)
    return statistics.median(per_step), statistics.fmean(per_step), cpu / max(wall, 1e-12)


def host_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.machine()


def row_key(r):
    """bench-train's row key (table.rs `Keyed`), so both writers keep one order."""
    return "\x1f".join([r["model"], r["mode"], str(r["threads"]), r["engine"], r["profile"]])


def ratio_table(rows, profile):
    """Prints Burn ms / PyTorch FP ms per model, thread count and mode, with quant-train's kernels
    (burn-flex) and, where bench-train ran with --burn-ops, with Burn's own operations (burn-flex-ops)."""
    torch_fp = {(r["model"], int(r["threads"])): float(r["ms_per_step"])
                for r in rows if r["engine"] == "pytorch" and r["profile"] == profile}
    burn = [r for r in rows if r["engine"].startswith("burn-flex") and r["profile"] == profile]
    models = list(dict.fromkeys(r["model"] for r in burn))
    print("ratio = Burn ms per step / PyTorch FP ms per step (>1: Burn is slower); "
          "[Burn's own ops, where measured]")
    for model in models:
        for threads in sorted({int(r["threads"]) for r in burn if r["model"] == model}):
            base = torch_fp.get((model, threads))
            if base is None:
                continue
            mine = [r for r in burn if r["model"] == model and int(r["threads"]) == threads]
            ops = {r["mode"]: float(r["ms_per_step"]) for r in mine if r["engine"] == "burn-flex-ops"}
            mine = [r for r in mine if r["engine"] == "burn-flex"]
            mine.sort(key=lambda r: r["mode"] != "fp")  # fp first, then the QAT modes
            cells = []
            for r in mine:
                ms = float(r["ms_per_step"])
                cell = f"{r['mode']} {ms:.1f} ms = {ms / base:.2f}x"
                if r["mode"] in ops:
                    cell += f" [{ops[r['mode']] / base:.2f}x]"
                cells.append(cell)
            print(f"{model:<28} {threads} thr  pytorch fp {base:8.1f} ms | " + " | ".join(cells))


def measure(burn_fp, twins, profile, torch_build, run_id):
    """The pytorch rows: each model of the Burn fp rows, checked against their parameter count, timed on
    their thread counts."""
    import torch
    rows = []
    warmup, calls, steps = PLANS[profile]
    for key in dict.fromkeys(r["model"] for r in burn_fp):
        mine = [r for r in burn_fp if r["model"] == key]
        torch.manual_seed(0)
        model, side = build(key, twins)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if params != int(mine[0]["params"]):
            fail(f"{key}: the PyTorch model has {params} trainable parameters, Burn's {mine[0]['params']}: "
                 "the architectures differ; fix the twin in scripts/bench_torch_train.py")
        for threads in sorted({int(r["threads"]) for r in mine}):
            torch.manual_seed(0)
            model, _ = build(key, twins)
            median, mean, util = time_step(model, side, threads, PLANS[profile])
            print(f"{key:<28} fp               {threads} thr: {median:9.2f} ms/step (mean {mean:9.2f}, "
                  f"cpu/wall {util:.2f}), {params} params")
            rows.append(dict(model=key, paper=mine[0]["paper"], mode="fp", threads=threads, engine="pytorch",
                             build=torch_build, batch=BATCH, params=params, ms_per_step=round(median, 3),
                             ms_mean=round(mean, 3), cpu_per_wall=round(util, 2), timed_steps=calls * steps,
                             profile=profile, run_id=run_id))
    return rows


def write_atomically(path, write):
    """Calls write(file) on a temporary file beside `path`, then renames it over `path`."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as f:
        write(f)
    os.replace(tmp, path)


def merge(path, new, profile, meta):
    """Replaces the table's pytorch rows of `profile` by `new` and writes the metadata file, under the
    table's lock (the one bench-train takes). Returns every row of the table."""
    with open(os.path.join(os.path.dirname(path), ".train_step.csv.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            kept = [r for r in reader if not (r["engine"] == "pytorch" and r["profile"] == profile)]
        rows = sorted(kept + [{k: str(v) for k, v in r.items()} for r in new], key=row_key)

        def table(f):
            w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

        write_atomically(path, table)
        meta_path = os.path.join(os.path.dirname(path), "train_step.pytorch.json")
        write_atomically(meta_path, lambda f: json.dump(meta, f, indent=2))
    return rows


def main():
    ensure_venv(VENV, ["torch"], "import torch")
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="results root (default: results/, or target/results-smoke/ with --quick)")
    ap.add_argument("--quick", action="store_true", help="the smoke plan, on the rows of bench-train --quick")
    args = ap.parse_args()
    profile = "smoke" if args.quick else "full"
    rerun = f"run bench-train{' --quick' if args.quick else ''} first"
    out = args.out or os.path.join(ROOT, "results" if profile == "full" else "target/results-smoke")
    path = os.path.join(out, "quant-train", "train_step.csv")
    if not os.path.exists(path):
        fail(f"{path} is missing: {rerun}")
    with open(path, newline="") as f:
        burn_fp = [r for r in csv.DictReader(f)
                   if r["engine"] == "burn-flex" and r["mode"] == "fp" and r["profile"] == profile]
    if not burn_fp:
        fail(f"{path} has no {profile} burn-flex fp rows: {rerun}")
    cuda = torch.version.cuda
    torch_build = f"torch {torch.__version__} PyPI ({f'CUDA {cuda} build' if cuda else 'CPU build'}, run on CPU)"
    cpu_name, load = host_cpu(), os.getloadavg()[0]
    print(f"{torch_build} on {cpu_name}: batch {BATCH}, plan {PLANS[profile]}, load average {load:.2f}")
    if load > 0.5:
        # OpenMP's spin-waiting threads lose far more to a competing job than Burn's rayon pool does.
        print(f"warning: the machine is busy (load average {load:.2f}): PyTorch's 2-thread times suffer most; "
              "rerun on a quiet machine for numbers to quote", file=sys.stderr)
    run_id = time.strftime("pytorch-%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    new = measure(burn_fp, torch_classes(), profile, torch_build, run_id)
    meta = dict(run_id=run_id, torch=torch.__version__, cuda=cuda, build=torch_build, host_cpu=cpu_name,
                command_line=" ".join(sys.argv), load_average_at_start=load, profile=profile, rows=len(new),
                time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    rows = merge(path, new, profile, meta)
    print(f"wrote {len(new)} pytorch rows to {path}", file=sys.stderr)
    print(f"CPU: {cpu_name}; Burn: {burn_fp[0]['build']}; PyTorch: {torch_build}")
    ratio_table(rows, profile)


if __name__ == "__main__":
    main()
