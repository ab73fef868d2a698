"""GFLOP/s of lowprec.scaled_matmul and int_matmul against NumPy.

    python bench/compare_matmul.py [--sizes 1024 2048] [--repeat 3]
                                   [--accumulator]

For every size, operand format (e4m3, e5m2, fp4, bf16) and accumulation
mode ("exact", "fp32", "fast") this prints the rate of scaled_matmul
(decoding included: it takes the codes) and its ratio to NumPy's float32
matmul on the same operands already decoded to float32; then int_matmul
on int8 against NumPy's int32 matmul (which has no BLAS).

Each measurement runs --repeat rounds (4x as many at 1024, whose runs
are short: the shared machine's speed drifts for seconds at a time).  A
round runs the baseline and then the candidate, each untimed for 0.15 s
(a warm-up: the first calls after a pause run at a lower clock, and BLAS
worker threads spin for about 0.1 s after a call, taking a core from
whatever runs next) and then twice timed.  GFLOP/s come from the best
times over the rounds; the ratio is the median over the rounds of the
ratio within each round (baseline and candidate measured a fraction of a
second apart, so a slow spell of the machine tends to hit both).
After the formats of each size, a "dgemm" line rates lowprec's float64
kernel alone (the one the "f64" exact plan runs: the raw float64 product
of decoded e4m3 values) against NumPy's float64 matmul (--no-dgemm: skip).
--accumulator adds Accumulator("bfloat16") at the smallest size (a scalar
rounding per step: about 100 M steps/s per core).
"""
import argparse
import os
import time

import numpy as np

import lowprec as lp
from lowprec import matmul as mm
from lowprec._threads import num_threads
from lowprec.matmul._kernels import _gemm_f64
from lowprec.matmul.integer import _int_matmul

TARGETS = {            # (mode, format) -> least ratio to NumPy float32
    ("fast", None): 0.8,
    ("exact", "e4m3"): 0.5, ("exact", "fp4"): 0.5,
    ("exact", "e5m2"): 0.1, ("exact", "bf16"): 0.1,
    ("fp32", None): 0.15,
}


def best_time(f, repeat, warm=0.0):
    """Best of repeat timed runs after untimed ones for warm seconds (at
    least one)."""
    t_end = time.perf_counter() + warm
    f()
    while time.perf_counter() < t_end:
        f()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def target(mode, fmt):
    return TARGETS.get((mode, fmt), TARGETS.get((mode, None)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", nargs="+",
                    default=["e4m3", "e5m2", "fp4", "bf16"])
    ap.add_argument("--modes", nargs="+", default=["exact", "fp32", "fast"])
    ap.add_argument("--accumulator", action="store_true")
    ap.add_argument("--no-int", action="store_true")
    ap.add_argument("--no-dgemm", action="store_true")
    ap.add_argument("--isa", type=int, default=-1,
                    help="kernel ISA: 0 generic, 1 AVX2, 2 AVX-512, -1 best")
    args = ap.parse_args()

    from lowprec._clib import lib
    isa = {0: "generic", 1: "AVX2+FMA", 2: "AVX-512"}[
        lib.lp_matmul_isa(args.isa)]
    print(f"lowprec matmul kernels: {isa}; threads: {num_threads()}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'M=N=K':>6} {'format':>6} {'mode':>6} {'GFLOP/s':>9} "
          f"{'numpy f32':>9} {'ratio':>6} {'target':>7}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        x = rng.standard_normal((n, n))
        y = rng.standard_normal((n, n))
        flop = 2.0 * n ** 3
        for fmt in args.formats:
            a, b = lp.encode(x, fmt), lp.encode(y, fmt)
            a32, b32 = lp.decode(a, fmt), lp.decode(b, fmt)
            base = float("inf")
            # short runs are repeated more: the shared machine's speed
            # drifts for seconds at a time
            rounds = args.repeat * max(1, (2048 // n) ** 3 // 2)
            for mode in args.modes:
                def cand():
                    return lp_scaled(a, b, fmt, mode, args.isa)
                t_mode = float("inf")
                ratios = []
                for _ in range(rounds):
                    t_b = best_time(lambda: a32 @ b32, 2, 0.15)
                    t_c = best_time(cand, 2, 0.15)
                    base, t_mode = min(base, t_b), min(t_mode, t_c)
                    ratios.append(t_b / t_c)
                ratio = float(np.median(ratios))
                tg = target(mode, fmt)
                ok = "" if tg is None else (
                    f"{tg:>5.2f} {'ok' if ratio >= tg else 'MISS'}")
                print(f"{n:>6} {fmt:>6} {mode:>6} {flop / t_mode / 1e9:>9.1f} "
                      f"{flop / base / 1e9:>9.1f} {ratio:>6.2f} {ok}",
                      flush=True)
        if not args.no_dgemm:
            # the float64 kernel of the "f64" exact plan on its own (raw
            # float64 product, no decoding) against NumPy's float64 matmul
            x64 = lp.decode(lp.encode(x, "e4m3"), "e4m3", dtype=np.float64)
            y64 = lp.decode(lp.encode(y, "e4m3"), "e4m3", dtype=np.float64)
            t_np, t_lp, ratios = float("inf"), float("inf"), []
            for _ in range(args.repeat * max(1, (2048 // n) ** 3 // 2)):
                t_b = best_time(lambda: x64 @ y64, 2, 0.15)
                t_c = best_time(lambda: _gemm_f64(x64, y64, None, None, 0,
                                                  raw=True, isa=args.isa),
                                2, 0.15)
                t_np, t_lp = min(t_np, t_b), min(t_lp, t_c)
                ratios.append(t_b / t_c)
            print(f"{n:>6} {'f64':>6} {'dgemm':>6} {flop / t_lp / 1e9:>9.1f} "
                  f"{flop / t_np / 1e9:>9.1f} {float(np.median(ratios)):>6.2f}"
                  f" (lp_gemm_f64 raw; NumPy float64 in the 'numpy' column)",
                  flush=True)
        if args.accumulator and n == min(args.sizes):
            a, b = lp.encode(x, "e4m3"), lp.encode(y, "e4m3")
            acc = mm.Accumulator("bfloat16")
            t = best_time(lambda: mm._scaled_matmul(
                a, b, a_format="e4m3", b_format="e4m3", accumulate=acc,
                isa=args.isa), 1)
            print(f"{n:>6} {'e4m3':>6} {'acc-bf16':>6} {flop / t / 1e9:>9.1f}"
                  f" {'':>9} {'':>6} (Accumulator('bfloat16'))", flush=True)
    if not args.no_int:
        print(f"\n{'M=N=K':>6} {'int_matmul GOP/s':>17} "
              f"{'numpy int32 GOP/s':>18} {'ratio':>7}")
        for n in args.sizes:
            ia = rng.integers(-128, 128, (n, n)).astype(np.int8)
            ib = rng.integers(-128, 128, (n, n)).astype(np.int8)
            i32a, i32b = ia.astype(np.int32), ib.astype(np.int32)
            t0 = time.perf_counter()
            i32a @ i32b                    # no BLAS: seconds, timed once
            t_np = time.perf_counter() - t0
            t_lp = best_time(lambda: _int_matmul(ia, ib, isa=args.isa),
                             args.repeat)
            flop = 2.0 * n ** 3
            print(f"{n:>6} {flop / t_lp / 1e9:>17.1f} "
                  f"{flop / t_np / 1e9:>18.2f} {t_np / t_lp:>7.0f}x "
                  f"(target 1x {'ok' if t_np >= t_lp else 'MISS'})",
                  flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def lp_scaled(a, b, fmt, mode, isa=-1):
    """scaled_matmul on the kernels of instruction set isa (-1: best)."""
    return mm._scaled_matmul(a, b, a_format=fmt, b_format=fmt,
                             accumulate=mode, isa=isa)


if __name__ == "__main__":
    main()
