"""The Numba backend against the C backend, lowprec.jit in a user loop,
first-call compile time, and the GPU kernels.

    python -m pytest bench/bench_numba.py --benchmark-only
    python -m pytest bench/bench_numba.py --benchmark-only -k "1e7"
    python bench/bench_numba.py          # one-line-per-case ratio table

Both backends use every core (LOWPREC_NUM_THREADS, the same thread pool).
The GPU benchmark skips without a GPU.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numba
import numpy as np
import pytest

import lowprec as lp
import lowprec.jit

SIZES = {"1e6": 10**6, "1e7": 10**7}
FORMATS = ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16",
           "float4_e2m1fn", "int8"]
MODES = ["nearest_even", "stochastic"]
_DATA = {}


def data(size, dtype=np.float32):
    key = (size, np.dtype(dtype).name)
    if key not in _DATA:
        rng = np.random.default_rng(0)
        _DATA[key] = (rng.standard_normal(SIZES[size]) * 3).astype(dtype)
    return _DATA[key]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("backend", ["c", "numba"])
def test_encode_float32(benchmark, backend, fmt, mode, size):
    x = data(size)
    out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
    lp.encode(x[:4], fmt, rounding=mode, seed=1, backend=backend)  # compile
    benchmark.extra_info["elements"] = x.size
    benchmark(lp.encode, x, fmt, rounding=mode, seed=1, saturate=True,
              out=out, backend=backend)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16", "int8"])
@pytest.mark.parametrize("backend", ["c", "numba"])
def test_encode_float64_1e7(benchmark, backend, fmt, mode):
    """float64 inputs: the element-by-element path of both backends."""
    x = data("1e7", np.float64)
    out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
    lp.encode(x[:4], fmt, rounding=mode, seed=1, backend=backend)
    benchmark(lp.encode, x, fmt, rounding=mode, seed=1, saturate=True,
              out=out, backend=backend)


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
@pytest.mark.parametrize("backend", ["c", "numba"])
def test_quantize_and_decode_1e7(benchmark, backend, fmt):
    x = data("1e7")
    out = np.empty_like(x)
    lp.quantize(x[:4], fmt, backend=backend)

    def both():
        lp.quantize(x, fmt, saturate=True, out=out, backend=backend)
        lp.decode(lp.encode(x, fmt, saturate=True), fmt, out=out,
                  backend=backend)
    benchmark(both)


# -- lowprec.jit in a user's fused loop ------------------------------------

_ENC = lp.jit.encoder("e4m3", saturate=True, scale=0.5)
_DEC = lp.jit.decoder("e4m3", scale=0.5)


@numba.njit(parallel=True, nogil=True)
def _fused(x, w, out):
    """y = decode(encode(x * w)) in one pass: no temporaries."""
    for i in numba.prange(x.size):
        out[i] = _DEC(_ENC(x[i] * w[i]))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("how", ["jit_fused", "numpy_then_lp"])
def test_user_fused_loop(benchmark, how, size):
    x = data(size)
    w = np.full_like(x, 1.25)
    out = np.empty_like(x)
    if how == "jit_fused":
        _fused(x[:4], w[:4], out[:4])
        benchmark(_fused, x, w, out)
    else:
        benchmark(lambda: lp.quantize(x * w, "e4m3", saturate=True,
                                      scale=0.5, out=out))


# -- first-call compile time -----------------------------------------------

_FIRST_CALL = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import numpy as np, lowprec as lp
    t1 = time.perf_counter()
    x = np.ones(1000, np.float32)
    lp.encode(x, "e4m3", backend="numba")
    t2 = time.perf_counter()
    lp.encode(x.astype(np.float64), "e4m3", backend="numba")
    t3 = time.perf_counter()
    import lowprec.jit, numba
    enc = lp.jit.encoder("e4m3")
    @numba.njit
    def f(x, o):
        for i in range(x.size):
            o[i] = enc(x[i])
    f(x, np.empty(1000, np.uint8))
    t4 = time.perf_counter()
    print(f"{t1-t0:.3f} {t2-t1:.3f} {t3-t2:.3f} {t4-t3:.3f}")
""")


def first_call_times(cache_dir):
    """(import, first float32 encode, first float64 encode, first user
    loop over lp.jit.encoder) in seconds, in a fresh process whose Numba
    cache is cache_dir."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    r = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env,
                       capture_output=True, text=True, check=True)
    return tuple(float(v) for v in r.stdout.split())


def test_first_call_compile_time(benchmark):
    """Cold: an empty Numba cache (every kernel compiles); warm: the same
    cache again (kernels load from disk)."""
    with tempfile.TemporaryDirectory() as d:
        cold = first_call_times(d)
        warm = first_call_times(d)
    benchmark.extra_info.update(cold=cold, warm=warm)
    print(f"\nfirst call (import, encode f32, encode f64, user loop), s: "
          f"cold {cold}, warm {warm}")
    benchmark(lambda: None)


# -- GPU -------------------------------------------------------------------

def _gpu():
    try:
        from numba import cuda
        return cuda if cuda.is_available() else None
    except Exception:
        return None


@pytest.mark.skipif(_gpu() is None, reason="no CUDA GPU (numba.cuda)")
@pytest.mark.parametrize("what", ["encode_e4m3", "copy"])
def test_gpu_throughput_2_28(benchmark, what):
    """float32 -> e4m3 encode of 2^28 elements against a device-to-device
    copy of the same float32 array (the memory-bandwidth roof: the encode
    reads 4 and writes 1 byte per element, the copy 4 and 4)."""
    cuda = _gpu()
    n = 1 << 28
    x = cuda.to_device(np.random.default_rng(0).standard_normal(n)
                       .astype(np.float32))
    if what == "copy":
        y = cuda.device_array_like(x)

        def run():
            y.copy_to_device(x)
            cuda.synchronize()
    else:
        codes = cuda.device_array(n, np.uint8)

        def run():
            lp.encode(x, "e4m3", saturate=True, out=codes)
            cuda.synchronize()
    run()
    benchmark.extra_info["elements"] = n
    benchmark(run)


# -- the ratio table -------------------------------------------------------

def _best(f, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    x = data("1e7")
    print(f"10^7 float32 elements, {lp._threads.num_threads()} threads; "
          "best of 7, ms")
    print(f"{'format':16s} {'mode':14s} {'C':>8s} {'Numba':>8s} "
          f"{'Numba/C':>8s}")
    for fmt in ("float8_e4m3fn", "float8_e5m2", "bfloat16", "float16"):
        out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
        for mode in MODES:
            t = {b: _best(lambda: lp.encode(x, fmt, rounding=mode, seed=1,
                                            out=out, backend=b))
                 for b in ("c", "numba")}
            print(f"{fmt:16s} {mode:14s} {t['c'] * 1e3:8.2f} "
                  f"{t['numba'] * 1e3:8.2f} {t['numba'] / t['c']:8.2f}")
    with tempfile.TemporaryDirectory() as d:
        cold = first_call_times(d)
        warm = first_call_times(d)
    print("first call, s (import, encode float32, encode float64, user "
          f"loop): cold cache {cold}, warm cache {warm}")


if __name__ == "__main__":
    main()
