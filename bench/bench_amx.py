"""Exact integer GEMM on AMX (lp_gemm_exact_i32) against NumPy float32
matmul, on operands that are e4m3 values as integers (multiples of 2^-9
scaled to ints: |x| <= 229376 = 448 * 2^9, bits = 18).

    PYTHONPATH=$PWD python bench/bench_amx.py [--size 2048] [--repeat 5]

prints GFLOP/s (2*M*N*K / t) of both, timed in the same run, and their
ratio (goal: >= 0.6).  The rows of C are split over a two-thread pool; cffi
releases the GIL during the call.  Under pytest (python_files includes
bench_*.py) the pytest-benchmark function times a 512^3 product.
"""
import argparse
import concurrent.futures

import numpy as np

from compare_matmul import best_time
from lowprec._clib import ffi, lib

BITS = 18


def e4m3_ints(rng, shape):
    """Random e4m3 values (all finite codes, both signs) times 2^9."""
    import ml_dtypes
    codes = rng.integers(0, 256, shape, dtype=np.uint8)
    v = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    v[np.isnan(v)] = 448.0
    return (v * 512).astype(np.int32)


def exact_gemm(a, b, c, pool, threads):
    m, k = a.shape
    n = b.shape[1]
    pa = ffi.cast("int32_t *", a.ctypes.data)
    pb = ffi.cast("int32_t *", b.ctypes.data)
    pc = ffi.cast("int64_t *", c.ctypes.data)
    step = -(-m // threads)
    step = -(-step // 16) * 16
    futs = [pool.submit(lib.lp_gemm_exact_i32, pa, pb, m, n, k, BITS, pc,
                        r0, min(r0 + step, m))
            for r0 in range(0, m, step)]
    for f in futs:
        if f.result() != 0:
            raise RuntimeError(f"lp_gemm_exact_i32 returned {f.result()}")


def measure(size, repeat, threads=2):
    rng = np.random.default_rng(1)
    a = e4m3_ints(rng, (size, size))
    b = e4m3_ints(rng, (size, size))
    c = np.empty((size, size), np.int64)
    af = (a / 512).astype(np.float32)
    bf = (b / 512).astype(np.float32)
    flop = 2.0 * size ** 3
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        t_amx = best_time(lambda: exact_gemm(a, b, c, pool, threads), repeat)
    t_f32 = best_time(lambda: np.matmul(af, bf), repeat)
    return flop / t_amx / 1e9, flop / t_f32 / 1e9, c, a, b


def test_bench_amx(benchmark):
    rng = np.random.default_rng(2)
    a = e4m3_ints(rng, (512, 512))
    b = e4m3_ints(rng, (512, 512))
    c = np.empty((512, 512), np.int64)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        benchmark(exact_gemm, a, b, c, pool, 2)
    ref = (a[:8].astype(np.int64) @ b.astype(np.int64))
    assert np.array_equal(c[:8], ref)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(f"lp_amx_available() = {lib.lp_amx_available()}")
    g_amx, g_f32, c, a, b = measure(args.size, args.repeat, args.threads)
    # spot check: a few rows against int64 numpy (no overflow: 2^36 * K)
    rows = np.arange(0, args.size, max(1, args.size // 7))
    assert np.array_equal(c[rows], a[rows].astype(np.int64)
                          @ b.astype(np.int64)), "wrong result"
    n = args.size
    print(f"M=N=K={n}, bits={BITS}, {args.threads} threads")
    print(f"lp_gemm_exact_i32      {g_amx:8.1f} GFLOP/s")
    print(f"numpy float32 matmul   {g_f32:8.1f} GFLOP/s")
    print(f"ratio                  {g_amx / g_f32:8.3f}  (goal >= 0.6)")


if __name__ == "__main__":
    main()
