"""pytest-benchmark suites for the operations on codes (lowprec.arith).

    python -m pytest bench/bench_arith.py --benchmark-only

10^6 and 10^7 element-wise add / mul on e4m3 (the 256 x 256 table path)
and bfloat16 (the float32 path), fma on float16 (the binary64 path), and
the flags path; NumPy float32 + on the decoded values as the yardstick.
Ratios in one run: bench/compare_arith.py.
"""
import numpy as np
import pytest

import lowprec as lp

SIZES = {"1e6": 10**6, "1e7": 10**7}
_DATA = {}


def codes(fmt, size, k):
    key = (fmt, size, k)
    if key not in _DATA:
        rng = np.random.default_rng(k)
        x = (rng.standard_normal(SIZES[size]) * 3).astype(np.float32)
        _DATA[key] = lp.encode(x, fmt, saturate=True)
    return _DATA[key]


@pytest.mark.parametrize("size", SIZES)
def test_numpy_float32_add(benchmark, size):
    a = lp.decode(codes("bfloat16", size, 1), "bfloat16")
    b = lp.decode(codes("bfloat16", size, 2), "bfloat16")
    out = np.empty_like(a)
    benchmark.extra_info["elements"] = a.size
    benchmark(np.add, a, b, out=out)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_binary(benchmark, fmt, op, size):
    a, b = codes(fmt, size, 1), codes(fmt, size, 2)
    benchmark.extra_info["elements"] = a.size
    benchmark(getattr(lp, op), a, b, fmt)


@pytest.mark.parametrize("size", ["1e6"])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_add_flags(benchmark, fmt, size):
    a, b = codes(fmt, size, 1), codes(fmt, size, 2)
    benchmark.extra_info["elements"] = a.size
    benchmark(lp.add, a, b, fmt, flags=True)


@pytest.mark.parametrize("size", SIZES)
def test_fma_float16(benchmark, size):
    a, b, c = (codes("float16", size, k) for k in (1, 2, 3))
    benchmark.extra_info["elements"] = a.size
    benchmark(lp.fma, a, b, c, "float16")


@pytest.mark.parametrize("size", ["1e6"])
@pytest.mark.parametrize("op", ["div", "sqrt"])
def test_div_sqrt_float16(benchmark, op, size):
    a, b = codes("float16", size, 1), codes("float16", size, 2)
    args = (a,) if op == "sqrt" else (a, b)
    benchmark.extra_info["elements"] = a.size
    benchmark(getattr(lp, op), *args, "float16")


@pytest.mark.parametrize("size", ["1e6"])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_add_numba_backend(benchmark, fmt, size):
    """backend="numba": the exact kernel in Numba (no table, no float32
    path), flags on."""
    a, b = codes(fmt, size, 1), codes(fmt, size, 2)
    lp.add(a[:8], b[:8], fmt, backend="numba")          # compiled
    benchmark.extra_info["elements"] = a.size
    benchmark(lp.add, a, b, fmt, flags=True, backend="numba")


@pytest.mark.parametrize("size", ["1e6"])
def test_jit_mul_in_njit_loop(benchmark, size):
    """lp.jit.mul inlined into a user's @numba.njit loop (one thread)."""
    import numba
    import lowprec.jit

    mul = lp.jit.mul("bfloat16")

    @numba.njit
    def loop(a, b, out):
        for i in range(a.size):
            out[i] = mul(a[i], b[i])
    a, b = codes("bfloat16", size, 1), codes("bfloat16", size, 2)
    out = np.empty_like(a)
    loop(a[:8], b[:8], out[:8])
    benchmark.extra_info["elements"] = a.size
    benchmark(loop, a, b, out)
