"""Draws docs/figures/fused_error.png: the error of a K-long FP8 dot
product under "fp32" (float32 FMA chain), the H100 cuBLASLt models
(lp.hardware.h100.scaled_mm with and without fast accumulation) and
"exact", on the same e4m3 inputs.

    python docs/figures/fused_error.py [--out PATH]

For each K, 64 x 64 dot products of standard-normal values quantized to
e4m3 (all positive, so that the sums grow and the fused model's truncation
shows: the worst case of attention scores and of sums of squares); the
error of each result is |result - exact| / exact with the exact sum from
float64 (exact here: every partial sum of these e4m3 products fits 53
bits); the plot shows the median over the outputs.  Needs matplotlib.
"""
import argparse
import os

import numpy as np

import lowprec as lp

HERE = os.path.dirname(os.path.abspath(__file__))


def errors(K, rng):
    a = lp.encode(np.abs(rng.standard_normal((64, K))).astype(np.float32),
                  "e4m3")
    b = lp.encode(np.abs(rng.standard_normal((K, 64))).astype(np.float32),
                  "e4m3")
    exact = lp.decode(a, "e4m3", dtype=np.float64) @ \
        lp.decode(b, "e4m3", dtype=np.float64)
    out = {}
    for label, mode in MODES:
        r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
                             accumulate=mode).astype(np.float64)
        out[label] = float(np.median(np.abs(r - exact) / exact))
    return out


MODES = [("fp32 (float32 FMA chain)", "fp32"),
         ("H100 scaled_mm, fast accumulation",
          lp.hardware.h100.scaled_mm(use_fast_accum=True)),
         ("H100 scaled_mm (promotion every 128)",
          lp.hardware.h100.scaled_mm(use_fast_accum=False)),
         ("exact", "exact")]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(HERE, "fused_error.png"))
    args = p.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    Ks = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
    rows = [errors(K, rng) for K in Ks]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, _ in MODES:
        ys = [max(r[label], 1e-10) for r in rows]
        ax.loglog(Ks, ys, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (products per output)")
    ax.set_ylabel("median relative error")
    ax.set_title("FP8 (e4m3) dot products: error against the exact sum")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, metadata={"Software": None})
    for K, r in zip(Ks, rows):
        print(K, "  ".join(f"{v:.2e}" for v in r.values()))


if __name__ == "__main__":
    main()
