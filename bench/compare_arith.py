"""Throughput of lowprec's operations on codes against NumPy float32 +
on the same number of decoded elements, measured in one run.

    python bench/compare_arith.py [--n 10000000] [--repeat 5]

Prints elements per second (best of --repeat) and the ratio to NumPy's
float32 add (target >= 0.5 for e4m3 and bfloat16 add and mul).  Ratios
from one run are what to compare; absolute numbers drift on a shared
machine.  LOWPREC_NUM_THREADS sets lowprec's threads (NumPy's add runs on
one).
"""
import argparse

import numpy as np

import lowprec as lp
from compare import best   # bench/ is the script's directory


def _jit_loop(xs, m, repeat):
    """Seconds of lp.jit.mul (bfloat16) inlined in an @njit loop over m
    elements (one thread)."""
    import numba
    import lowprec.jit

    mul = lp.jit.mul("bfloat16")

    @numba.njit
    def loop(a, b, out):
        for i in range(a.size):
            out[i] = mul(a[i], b[i])
    a, b = (lp.encode(x[:m], "bfloat16") for x in xs[:2])
    out = np.empty_like(a)
    loop(a[:8], b[:8], out[:8])
    return best(lambda: loop(a, b, out), repeat)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    n = args.n
    rng = np.random.default_rng(0)
    xs = [(rng.standard_normal(n) * 3).astype(np.float32) for _ in range(3)]
    rows = []
    fa, fb = lp.decode(lp.encode(xs[0], "bf16"), "bf16"), \
        lp.decode(lp.encode(xs[1], "bf16"), "bf16")
    out = np.empty_like(fa)
    t_np = best(lambda: np.add(fa, fb, out=out), args.repeat)
    rows.append(("numpy float32 a + b", t_np))
    for fmt in ("float8_e4m3fn", "bfloat16"):
        a, b = (lp.encode(x, fmt, saturate=True) for x in xs[:2])
        for op in ("add", "mul"):
            fn = getattr(lp, op)
            rows.append((f"lp.{op} {fmt}", best(lambda: fn(a, b, fmt),
                                                args.repeat)))
        rows.append((f"lp.add {fmt} flags=True",
                     best(lambda: lp.add(a, b, fmt, flags=True),
                          args.repeat)))
    m = min(n, 10**6)
    for fmt in ("float8_e4m3fn", "bfloat16"):
        a, b = (lp.encode(x[:m], fmt, saturate=True) for x in xs[:2])
        lp.add(a[:8], b[:8], fmt, backend="numba")          # compile
        rows.append((f"lp.add {fmt} backend=numba (n={m})",
                     best(lambda: lp.add(a, b, fmt, flags=True,
                                         backend="numba"),
                          args.repeat) * n / m))
        rows.append((f"  the same, backend=c (n={m})",
                     best(lambda: lp.add(a, b, fmt, flags=True,
                                         backend="c"),
                          args.repeat) * n / m))
    rows.append((f"lp.jit.mul bfloat16 in @njit (n={m})",
                 _jit_loop(xs, m, args.repeat) * n / m))
    h = [lp.encode(x, "float16") for x in xs]
    rows.append(("lp.fma float16", best(lambda: lp.fma(*h, "float16"),
                                        args.repeat)))
    rows.append((f"lp.div float16 (n={m})",
                 best(lambda: lp.div(h[0][:m], h[1][:m], "float16"),
                      args.repeat) * n / m))
    print(f"{n} elements, best of {args.repeat}")
    print(f"{'operation':44} {'Melem/s':>9} {'x numpy f32 +':>14}")
    for name, t in rows:
        print(f"{name:44} {n / t / 1e6:9.1f} {t_np / t:14.2f}")


if __name__ == "__main__":
    main()
