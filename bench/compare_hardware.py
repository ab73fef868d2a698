"""Speed of the H100 models against NumPy float32 matmul, same run.

    python bench/compare_hardware.py [--size M K N] [--repeat 3]

Times lp.hardware.h100.scaled_mm() on FP8 (e4m3) operands, and
h100.wgmma on float16, at M x K x N (default 1024 x 4096 x 1024: a
layer-sized GEMM), and prints each time with its ratio to np.matmul on
the same operands decoded to float32 (the model does strictly more work
than a float32 FMA per product: the target is at least 0.03x).  Rounds
alternate baseline and candidate; the ratio is the median of the ratios
within rounds (the shared machine's speed drifts).
"""
import argparse
import time

import numpy as np

import lowprec as lp
from lowprec._threads import num_threads

TARGET = 0.03


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs=3, default=(1024, 4096, 1024))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    M, K, N = args.size
    rng = np.random.default_rng(0)
    print(f"{M} x {K} x {N}, {num_threads()} threads")
    cases = [("e4m3", lp.hardware.h100.scaled_mm()),
             ("float16", lp.hardware.h100.wgmma("float16", "float16"))]
    for fmt, model in cases:
        a = lp.encode(rng.standard_normal((M, K)).astype(np.float32), fmt)
        b = lp.encode(rng.standard_normal((K, N)).astype(np.float32), fmt)
        a32, b32 = lp.decode(a, fmt), lp.decode(b, fmt)
        np.matmul(a32, b32)
        base, cand, ratios = [], [], []
        for _ in range(args.repeat):
            tb = min(timed(lambda: np.matmul(a32, b32)) for _ in range(3))
            tc = timed(lambda: lp.scaled_matmul(
                a, b, a_format=fmt, b_format=fmt, accumulate=model))
            base.append(tb)
            cand.append(tc)
            ratios.append(tb / tc)
        r = float(np.median(ratios))
        mark = "ok" if r >= TARGET else f"BELOW {TARGET}x"
        print(f"{model!r:48s} {min(cand):7.3f} s   numpy f32 "
              f"{min(base):6.3f} s   ratio {r:.4f}x  ({mark})")


if __name__ == "__main__":
    main()
