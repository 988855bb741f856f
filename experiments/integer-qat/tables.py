#!/usr/bin/env python3
"""Prints the Markdown tables of experiments/integer-qat/README.md ("Measured") from the committed
CSVs under results/integer-qat/, so the README numbers are regenerated from the run, never typed.

Usage: python3 experiments/integer-qat/tables.py [results/integer-qat]
"""
import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "results" / "integer-qat"
QAT41 = "QAT integer-only (per-layer uint8)"
PTQ41 = "PTQ integer-only (per-layer uint8)"
SINGLE = QAT41 + ", single rounding"
PROXY_OF = {"ResNet-50": "ResNet-8", "ResNet-100": "ResNet-14", "ResNet-150": "ResNet-20"}


def rows(table):
    with open(ROOT / f"{table}.csv", newline="") as f:
        return list(csv.DictReader(f))


def by_seed(rs):
    """(model, method, w_bits, a_bits, metric) -> {seed: value}."""
    out = {}
    for r in rs:
        out.setdefault((r["model"], r["method"], r["w_bits"], r["a_bits"], r["metric"]), {})[r["seed"]] = float(r["value"])
    return out


def index(rs):
    """The mean over seeds of each key."""
    return {k: statistics.mean(s.values()) for k, s in by_seed(rs).items()}


def spread(values):
    """`mean ± sd (n)` of a list of per-seed values."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f} ({len(values)})"


def run_ids(*tables):
    return sorted({r["run_id"] for t in tables for r in rows(t)})


def e1():
    v = by_seed(rows("e1_depth"))
    print("| proxy model (paper model) | float | int8 PTQ | int8 QAT | QAT drop (paired) | QAT - PTQ (paired) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m, p in PROXY_OF.items():
        if (m, "float", "32", "32", "top1_acc_pct") not in v:
            continue
        f = v[(m, "float", "32", "32", "top1_acc_pct")]
        q = v[(m, QAT41, "8", "8", "top1_acc_pct")]
        t = v[(m, PTQ41, "8", "8", "top1_acc_pct")]
        drop = [f[s] - q[s] for s in f if s in q]
        gain = [q[s] - t[s] for s in q if s in t]
        cells = [spread(list(x.values())) for x in (f, t, q)] + [spread(drop), spread(gain)]
        print(f"| {p} ({m}) | " + " | ".join(cells) + " |")
    drop = v[("ResNet-50/100/150", "QAT integer-only", "8", "8", "max_top1_drop_pct_vs_float")]
    print(f"\nLargest float - QAT drop over the depths (Sec 4.1.1 'within 2%' row), per seed: {spread(list(drop.values()))}")
    print("\nCells: mean ± sample sd over seeds (seed count), top-1 % on the 10 000 test images.")


def e8():
    v = by_seed(rows("e8_agreement"))
    print("| model | method | seeds | agreement (integer simulation), lowest | max LSB | agreement (fake-quant f32), lowest | max LSB (f32) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m, p in PROXY_OF.items():
        if (m, QAT41, "8", "8", "agreement") not in v:
            continue
        for method in (PTQ41, QAT41, SINGLE):
            a = [v[(m, method, "8", "8", k)].values() for k in ("agreement", "max_logit_diff_lsb", "agreement_fake_quant_f32", "max_logit_diff_lsb_fake_quant_f32")]
            n = len(a[0])
            print(f"| {p} ({m}) | {method} | {n} | {min(a[0]):.4f} | {max(a[1]):.0f} | {min(a[2]):.4f} | {max(a[3]):.0f} |")
    print("\n| model | float bytes (folded f32) | int8 bytes | ratio |")
    print("| --- | --- | --- | --- |")
    for m, p in PROXY_OF.items():
        if (m, "float", "32", "32", "size_bytes") not in v:
            continue
        f = statistics.mean(v[(m, "float", "32", "32", "size_bytes")].values())
        i = statistics.mean(v[(m, QAT41, "8", "8", "size_bytes")].values())
        print(f"| {p} ({m}) | {f:.0f} | {i:.0f} | {f / i:.3f} |")


def e3():
    v = index(rows("e3_relu"))  # one mean and one std row per setting
    print("| activation | float | 8/8 | 7/7 | 5/5 | 4/4 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for act in ("ReLU6", "ReLU"):
        m = f"Inception-v3 ({act})"
        cells = []
        for method, b in (("float", "32"), ("QAT integer-only", "8"), ("QAT integer-only", "7"), ("QAT integer-only", "5"), ("QAT integer-only", "4")):
            mean = v[(m, method, b, b, "top1_acc_mean_pct")]
            std = v[(m, method, b, b, "top1_acc_std_pct")]
            cells.append(f"{mean:.2f} ± {std:.2f}")
        print(f"| {act} | " + " | ".join(cells) + " |")


def e4():
    v = index(rows("e4_bits"))
    m = "MobileNet face-attribute classifier (128x128)"
    bits = [b for b in ["8", "7", "6", "5", "4"] if (m, "QAT integer-only", b, b, "top1_acc_pct") in v]
    seeds = len({r["seed"] for r in rows("e4_bits")})
    print(f"Cells: mean over {seeds} seed(s).\n")
    for metric, fmt in (("rel_change_avg_category_precision_pct", "{:+.2f}"), ("top1_acc_pct", "{:.2f}")):
        print(f"{metric}:\n")
        print("| w \\ a | " + " | ".join(bits) + " |")
        print("| --- |" + " --- |" * len(bits))
        for w in bits:
            print(f"| {w} | " + " | ".join(fmt.format(v[(m, 'QAT integer-only', w, a, metric)]) for a in bits) + " |")
        print()
    print(f"Float: avg_category_precision_pct {v[(m, 'float', '32', '32', 'avg_category_precision_pct')]:.2f}, "
          f"top1_acc_pct {v[(m, 'float', '32', '32', 'top1_acc_pct')]:.2f}")


def e5():
    v = index(rows("e5_latency"))
    seeds = by_seed(rows("e5_latency"))
    models = sorted({k[0] for k in v})
    q = "QAT (contrib.quantize, fake-quant graph)"
    print("Top-1: mean ± sd (seeds); latencies: mean over the seeds of each seed's median.\n")
    print("| model | float top-1 | int8 top-1 | float 1T | int8 1T | float 2T | int8 2T |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in models:
        lat = lambda method, b, t: v[(m, method, b, b, f"latency_ms_x86_batch1_{t}thread")]
        top1 = lambda method, b: spread(list(seeds[(m, method, b, b, "top1_acc_pct")].values()))
        print(f"| {m} | {top1('float', '32')} | {top1(q, '8')} | "
              f"{lat('float (Burn flex f32)', '32', 1):.3f} | {lat('QAT integer-only', '8', 1):.3f} | "
              f"{lat('float (Burn flex f32)', '32', 2):.3f} | {lat('QAT integer-only', '8', 2):.3f} |")


def convergence():
    """Per training setting: final validation top-1 and its gain over the last quarter (check C1)."""
    v = by_seed(rows("curves"))
    print("| experiment | model | method | bits | epochs | final validation top-1 | gain over last quarter |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows("curves"):
        if r["metric"] != "val_top1_gain_last_quarter_pct" or (r["source"], r["model"], r["method"], r["w_bits"]) in convergence.seen:
            continue
        convergence.seen.add((r["source"], r["model"], r["method"], r["w_bits"]))
        key = (r["model"], r["method"], r["w_bits"], r["a_bits"])
        same = [x for x in rows("curves") if (x["source"], x["model"], x["method"], x["w_bits"], x["a_bits"]) == (r["source"], *key)]
        gains = [float(x["value"]) for x in same if x["metric"] == "val_top1_gain_last_quarter_pct"]
        final = [float(x["value"]) for x in same if x["metric"] == "val_top1_pct" and x["epochs"] == r["epochs"]]
        exp = r["source"].split(" / ")[0].replace("arXiv:1712.05877v1 ", "")
        print(f"| {exp} | {r['model']} | {r['method']} | {r['w_bits']}/{r['a_bits']} | {r['epochs']} | {spread(final)} | {spread(gains)} |")


convergence.seen = set()


def present(table):
    return (ROOT / f"{table}.csv").exists()


for title, table, f in (("E1", "e1_depth", e1), ("E8", "e8_agreement", e8), ("E3", "e3_relu", e3), ("E4", "e4_bits", e4),
                        ("E5/E6", "e5_latency", e5), ("Convergence (validation curves)", "curves", convergence)):
    if present(table):
        print(f"### {title}\n")
        f()
        print()
tables = [t for t in ("e1_depth", "e3_relu", "e4_bits", "e5_latency", "e8_agreement", "curves") if present(t)]
print("run ids:", ", ".join(run_ids(*tables)))
