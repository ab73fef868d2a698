"""pytest-benchmark suites for encode / decode / quantize.

    python -m pytest bench/bench_convert.py --benchmark-only
    python -m pytest bench/bench_convert.py --benchmark-only -k "1e7"

Sizes 10^3, 10^6 and 10^7 float32 elements; formats and modes as users
call them.  Ratios against other libraries: bench/compare.py.
"""
import ml_dtypes
import numpy as np
import pytest

import lowprec as lp

SIZES = {"1e3": 10**3, "1e6": 10**6, "1e7": 10**7}
FORMATS = ["float8_e4m3fn", "float8_e5m2", "float8_e3m4", "float6_e2m3fn",
           "float4_e2m1fn", "bfloat16", "float16", "int8"]
MODES = ["nearest_even", "toward_zero", "to_odd", "stochastic"]
_DATA = {}


def data(size):
    if size not in _DATA:
        rng = np.random.default_rng(0)
        _DATA[size] = (rng.standard_normal(SIZES[size]) * 3).astype(
            np.float32)
    return _DATA[size]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_encode(benchmark, fmt, size):
    x = data(size)
    out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
    benchmark.extra_info["elements"] = x.size
    benchmark(lp.encode, x, fmt, saturate=True, out=out)


@pytest.mark.parametrize("size", ["1e6", "1e7"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16", "float16"])
def test_encode_modes(benchmark, fmt, mode, size):
    x = data(size)
    out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
    benchmark(lp.encode, x, fmt, rounding=mode, seed=1, saturate=True,
              out=out)


@pytest.mark.parametrize("size", ["1e6", "1e7"])
@pytest.mark.parametrize("words", ["uint8", "uint32"])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_encode_random_bits(benchmark, fmt, words, size):
    """Stochastic rounding with the caller's random words (the general
    path), next to test_encode_modes' generator (the float32 path)."""
    x = data(size)
    r = np.random.default_rng(1).integers(
        0, np.iinfo(words).max, x.size, dtype=words, endpoint=True)
    out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
    benchmark(lp.encode, x, fmt, rounding="stochastic", random_bits=r,
              saturate=True, out=out)


@pytest.mark.parametrize("size", ["1e6"])
@pytest.mark.parametrize("policy", ["ovfinf", "satfinite", "satpropagate"])
@pytest.mark.parametrize("fmt", ["float8_e5m2", "bfloat16", "float16"])
def test_encode_saturate_policies(benchmark, fmt, policy, size):
    x = data(size)
    out = np.empty(x.shape, lp.get_format(fmt).code_dtype)
    benchmark(lp.encode, x, fmt, saturate=policy, out=out)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float4_e2m1fn",
                                 "bfloat16", "float16"])
def test_decode(benchmark, fmt, size):
    codes = lp.encode(data(size), fmt, saturate=True)
    out = np.empty(codes.shape, np.float32)
    benchmark(lp.decode, codes, fmt, out=out)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_quantize(benchmark, fmt, size):
    x = data(size)
    out = np.empty_like(x)
    benchmark(lp.quantize, x, fmt, saturate=True, out=out)


@pytest.mark.parametrize("size", ["1e6", "1e7"])
def test_encode_per_channel_scale(benchmark, size):
    x = data(size).reshape(-1, 1000)
    s = np.abs(x).max(axis=1, keepdims=True) / 448
    benchmark(lp.encode, x, "e4m3", scale=s)


@pytest.mark.parametrize("size", ["1e6", "1e7"])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_ml_dtypes_baseline(benchmark, fmt, size):
    x = data(size)
    benchmark(x.astype, getattr(ml_dtypes, fmt))
