"""pytest-benchmark timings of scaled_matmul and int_matmul.

    python -m pytest bench/bench_matmul.py -p no:cacheprovider \
        --benchmark-columns=min,median,ops

Sizes: LOWPREC_BENCH_N (default 512; bench/compare_matmul.py prints rates
and ratios at 1024 and 2048).  Each benchmark has a NumPy baseline in the
same group: float32 matmul on the decoded operands, or int32 matmul.
"""
import os

import numpy as np
import pytest

import lowprec as lp
from lowprec import matmul as mm

N = int(os.environ.get("LOWPREC_BENCH_N", "512"))
FORMATS = ["e4m3", "e5m2", "fp4", "bf16"]
MODES = ["exact", "fp32", "fast"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, N)), rng.standard_normal((N, N))


@pytest.mark.parametrize("fmt", FORMATS)
def test_numpy_float32(benchmark, data, fmt):
    benchmark.group = f"matmul {fmt} {N}"
    a32 = lp.quantize(data[0], fmt).astype(np.float32)
    b32 = lp.quantize(data[1], fmt).astype(np.float32)
    benchmark(np.matmul, a32, b32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_scaled_matmul(benchmark, data, fmt, mode):
    benchmark.group = f"matmul {fmt} {N}"
    a, b = lp.encode(data[0], fmt), lp.encode(data[1], fmt)
    benchmark(mm.scaled_matmul, a, b, a_format=fmt, b_format=fmt,
              accumulate=mode)


def test_scaled_matmul_mx(benchmark, data):
    """MX: e4m3 codes with e8m0 scales of 32-blocks, exact."""
    benchmark.group = f"matmul e4m3 {N}"
    import ml_dtypes
    rng = np.random.default_rng(1)
    a, b = lp.encode(data[0], "e4m3"), lp.encode(data[1], "e4m3")
    sa = lp.encode(np.exp2(rng.integers(-4, 5, (N, N // 32)).astype(float)),
                   "e8m0").view(ml_dtypes.float8_e8m0fnu)
    sb = lp.encode(np.exp2(rng.integers(-4, 5, (N // 32, N)).astype(float)),
                   "e8m0").view(ml_dtypes.float8_e8m0fnu)
    benchmark(mm.scaled_matmul, a, b, a_format="e4m3", b_format="e4m3",
              a_scale=sa, b_scale=sb, accumulate="exact")


def test_accumulator_bf16(benchmark, data):
    benchmark.group = f"matmul e4m3 {N}"
    n = min(N, 256)
    a = lp.encode(data[0][:n, :n], "e4m3")
    b = lp.encode(data[1][:n, :n], "e4m3")
    benchmark.extra_info["size"] = n
    benchmark(mm.scaled_matmul, a, b, a_format="e4m3", b_format="e4m3",
              accumulate=mm.Accumulator("bfloat16"))


@pytest.fixture(scope="module")
def int_data():
    rng = np.random.default_rng(2)
    return (rng.integers(-128, 128, (N, N)).astype(np.int8),
            rng.integers(-128, 128, (N, N)).astype(np.int8))


def test_numpy_int32(benchmark, int_data):
    benchmark.group = f"int {N}"
    a, b = (x.astype(np.int32) for x in int_data)
    benchmark.pedantic(np.matmul, (a, b), rounds=1, iterations=1)


def test_int_matmul(benchmark, int_data):
    benchmark.group = f"int {N}"
    benchmark(mm.int_matmul, *int_data)
