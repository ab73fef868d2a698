"""Throughput of lowprec's conversions against the libraries users would
otherwise pick, measured in one run on the same data.

    python bench/compare.py [--n 10000000] [--repeat 7]

Prints elements per second (best of --repeat) and ratios: against
ml_dtypes ``astype``, NumPy ``astype(float16)``, torch ``.to()`` when
installed, and the memory floor (a NumPy cast that moves the same bytes:
float32 in, uint8 out).  Ratios from one run are what to compare; this
machine's absolute numbers drift.
"""
import argparse
import os
import time

import ml_dtypes
import numpy as np

import lowprec as lp


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    n = args.n
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 10).astype(np.float32)
    u8 = np.empty(n, np.uint8)
    u16 = np.empty(n, np.uint16)
    f32 = np.empty(n, np.float32)
    codes8 = lp.encode(x, "e4m3", saturate=True)
    rows = {}

    def run(name, fn):
        rows[name] = n / best(fn, args.repeat)

    run("floor: numpy f32->u8 cast", lambda: np.copyto(u8, x,
                                                        casting="unsafe"))
    run("numpy f32->float16", lambda: x.astype(np.float16))
    for t in ("float8_e4m3fn", "float8_e5m2", "float8_e3m4", "bfloat16"):
        run(f"ml_dtypes f32->{t}",
            lambda t=t: x.astype(getattr(ml_dtypes, t)))
    run("ml_dtypes e4m3fn->f32", lambda: codes8.view(
        ml_dtypes.float8_e4m3fn).astype(np.float32))
    try:
        import torch
        tx = torch.from_numpy(x)
        run("torch f32->float8_e4m3fn", lambda: tx.to(torch.float8_e4m3fn))
        run("torch f32->bfloat16", lambda: tx.to(torch.bfloat16))
    except ImportError:
        pass
    for t in ("e4m3", "e5m2", "e3m4"):
        run(f"lowprec encode {t} rne", lambda t=t: lp.encode(x, t, out=u8))
    run("lowprec encode bf16 rne", lambda: lp.encode(x, "bf16", out=u16))
    run("lowprec encode fp16 rne", lambda: lp.encode(x, "fp16", out=u16))
    for m in ("toward_zero", "toward_positive", "to_odd", "stochastic"):
        run(f"lowprec encode e4m3 {m}",
            lambda m=m: lp.encode(x, "e4m3", rounding=m, seed=1, out=u8))
    run("lowprec encode bf16 toward_zero",
        lambda: lp.encode(x, "bf16", rounding="rz", out=u16))
    run("lowprec encode bf16 stochastic",
        lambda: lp.encode(x, "bf16", rounding="sr", seed=1, out=u16))
    run("lowprec encode fp16 toward_zero",
        lambda: lp.encode(x, "fp16", rounding="rz", out=u16))
    custom = lp.FloatFormat(4, 3, bias=10, infs=False, nans="negzero",
                            negzero=False)
    run("lowprec encode custom e4m3 b10 rne",
        lambda: lp.encode(x, custom, saturate=True, out=u8))
    run("lowprec decode e4m3->f32", lambda: lp.decode(codes8, "e4m3",
                                                       out=f32))
    run("lowprec quantize e4m3 f32", lambda: lp.quantize(x, "e4m3",
                                                          out=f32))
    old = os.environ.get("LOWPREC_NUM_THREADS")
    os.environ["LOWPREC_NUM_THREADS"] = "1"
    run("lowprec encode e4m3 rne 1 thread", lambda: lp.encode(x, "e4m3",
                                                              out=u8))
    run("lowprec encode bf16 rne 1 thread", lambda: lp.encode(x, "bf16",
                                                              out=u16))
    if old is None:
        del os.environ["LOWPREC_NUM_THREADS"]
    else:
        os.environ["LOWPREC_NUM_THREADS"] = old

    floor = rows["floor: numpy f32->u8 cast"]
    width = max(map(len, rows))
    print(f"{n} float32 elements, best of {args.repeat}, "
          f"{lp._threads.num_threads()} threads")
    print(f"{'':{width}}  {'Melem/s':>9}  {'x floor':>8}")
    for k, v in rows.items():
        print(f"{k:{width}}  {v / 1e6:9.0f}  {v / floor:8.2f}")

    def ratio(a, b):
        return rows[a] / rows[b]

    print("\nratios (targets from issue 2 in brackets)")
    checks = [
        ("encode e4m3 / ml_dtypes e4m3fn [>= 6]",
         ratio("lowprec encode e4m3 rne", "ml_dtypes f32->float8_e4m3fn")),
        ("encode e5m2 / ml_dtypes e5m2 [>= 6]",
         ratio("lowprec encode e5m2 rne", "ml_dtypes f32->float8_e5m2")),
        ("encode e3m4 / ml_dtypes e3m4 [>= 6]",
         ratio("lowprec encode e3m4 rne", "ml_dtypes f32->float8_e3m4")),
        ("encode e4m3 / floor [>= 0.4]",
         ratio("lowprec encode e4m3 rne", "floor: numpy f32->u8 cast")),
        ("encode bf16 / ml_dtypes bf16 [>= 1.5]",
         ratio("lowprec encode bf16 rne", "ml_dtypes f32->bfloat16")),
        ("encode fp16 / ml_dtypes bf16 [>= 1.5]",
         ratio("lowprec encode fp16 rne", "ml_dtypes f32->bfloat16")),
        ("encode fp16 / numpy float16 [>= 3]",
         ratio("lowprec encode fp16 rne", "numpy f32->float16")),
        ("decode e4m3 / floor [>= 0.5]",
         ratio("lowprec decode e4m3->f32", "floor: numpy f32->u8 cast")),
        ("stochastic / nearest e4m3 [>= 0.5]",
         ratio("lowprec encode e4m3 stochastic", "lowprec encode e4m3 rne")),
        ("stochastic / nearest bf16 [>= 0.5]",
         ratio("lowprec encode bf16 stochastic", "lowprec encode bf16 rne")),
        ("toward_zero / nearest e4m3 [>= 0.67]",
         ratio("lowprec encode e4m3 toward_zero", "lowprec encode e4m3 rne")),
        ("toward_zero / nearest bf16 [>= 0.67]",
         ratio("lowprec encode bf16 toward_zero", "lowprec encode bf16 rne")),
        ("toward_zero / nearest fp16 [>= 0.67]",
         ratio("lowprec encode fp16 toward_zero", "lowprec encode fp16 rne")),
        ("custom / e4m3 [>= 0.67]",
         ratio("lowprec encode custom e4m3 b10 rne",
               "lowprec encode e4m3 rne")),
        ("2 threads / 1 thread e4m3 [>= 1.7]",
         ratio("lowprec encode e4m3 rne", "lowprec encode e4m3 rne 1 thread")),
        ("2 threads / 1 thread bf16 [>= 1.7]",
         ratio("lowprec encode bf16 rne", "lowprec encode bf16 rne 1 thread")),
    ]
    for label, r in checks:
        print(f"  {label:42} {r:6.2f}")


if __name__ == "__main__":
    main()
