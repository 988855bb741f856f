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


def index(rs):
    return {(r["model"], r["method"], r["w_bits"], r["a_bits"], r["metric"]): float(r["value"]) for r in rs}


def run_ids(*tables):
    return sorted({r["run_id"] for t in tables for r in rows(t)})


def e1():
    v = index(rows("e1_depth"))
    print("| proxy model (paper model) | float | int8 PTQ | int8 QAT | QAT drop | QAT - PTQ |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m, p in PROXY_OF.items():
        f = v[(m, "float", "32", "32", "top1_acc_pct")]
        q = v[(m, QAT41, "8", "8", "top1_acc_pct")]
        t = v[(m, PTQ41, "8", "8", "top1_acc_pct")]
        print(f"| {p} ({m}) | {f:.2f} | {t:.2f} | {q:.2f} | {f - q:.2f} | {q - t:+.2f} |")
    drop = v[("ResNet-50/100/150", "QAT integer-only", "8", "8", "max_top1_drop_pct_vs_float")]
    print(f"\nLargest float - QAT drop (Sec 4.1.1 'within 2%' row): {drop:.2f}")


def e8():
    v = index(rows("e8_agreement"))
    print("| model | method | agreement (integer simulation) | max LSB | agreement (fake-quant f32) | max LSB (f32) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m, p in PROXY_OF.items():
        for method in (PTQ41, QAT41, SINGLE):
            a = [v[(m, method, "8", "8", k)] for k in ("agreement", "max_logit_diff_lsb", "agreement_fake_quant_f32", "max_logit_diff_lsb_fake_quant_f32")]
            print(f"| {p} ({m}) | {method} | {a[0]:.4f} | {a[1]:.0f} | {a[2]:.4f} | {a[3]:.0f} |")
    print("\n| model | float bytes (folded f32) | int8 bytes | ratio |")
    print("| --- | --- | --- | --- |")
    for m, p in PROXY_OF.items():
        f = v[(m, "float", "32", "32", "size_bytes")]
        i = v[(m, QAT41, "8", "8", "size_bytes")]
        print(f"| {p} ({m}) | {f:.0f} | {i:.0f} | {f / i:.3f} |")


def e3():
    v = index(rows("e3_relu"))
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
    bits = ["8", "7", "6", "5", "4"]
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
    models = sorted({k[0] for k in v})
    q = "QAT (contrib.quantize, fake-quant graph)"
    print("| model | float top-1 | int8 top-1 | float 1T | int8 1T | float 2T | int8 2T |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in models:
        lat = lambda method, b, t: v[(m, method, b, b, f"latency_ms_x86_batch1_{t}thread")]
        print(f"| {m} | {v[(m, 'float', '32', '32', 'top1_acc_pct')]:.2f} | {v[(m, q, '8', '8', 'top1_acc_pct')]:.2f} | "
              f"{lat('float (Burn flex f32)', '32', 1):.3f} | {lat('QAT integer-only', '8', 1):.3f} | "
              f"{lat('float (Burn flex f32)', '32', 2):.3f} | {lat('QAT integer-only', '8', 2):.3f} |")


for title, f in (("E1", e1), ("E8", e8), ("E3", e3), ("E4", e4), ("E5/E6", e5)):
    print(f"### {title}\n")
    f()
    print()
print("run ids:", ", ".join(run_ids("e1_depth", "e3_relu", "e4_bits", "e5_latency", "e8_agreement")))
