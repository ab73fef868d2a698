"""pytest-benchmark timings of the H100 models (API.md section 7).

    pytest bench/bench_hardware.py --benchmark-columns=min,median,ops

lp.hardware.h100.scaled_mm() (the cuBLASLt FP8 GEMM: fused QGMMA steps,
promotion every 128 k) and wgmma on float16, each next to NumPy's float32
matmul on the same decoded operands (one group).  The size is
LOWPREC_BENCH_FUSED_SIZE (default 256: M = N = size, K = 4 * size);
bench/compare_hardware.py prints the ratio at the issue's 1024 x 4096 x
1024.  Under --benchmark-disable (CI) each runs once, as a smoke test.
"""
import os

import numpy as np
import pytest

import lowprec as lp

N = int(os.environ.get("LOWPREC_BENCH_FUSED_SIZE", "256"))


@pytest.fixture(scope="module", params=["e4m3", "float16"])
def data(request):
    fmt = request.param
    rng = np.random.default_rng(0)
    a = lp.encode(rng.standard_normal((N, 4 * N)).astype(np.float32), fmt)
    b = lp.encode(rng.standard_normal((4 * N, N)).astype(np.float32), fmt)
    return fmt, a, b, lp.decode(a, fmt), lp.decode(b, fmt)


def test_numpy_float32(benchmark, data):
    fmt, _, _, a32, b32 = data
    benchmark.group = f"fused {fmt} {N}x{4 * N}x{N}"
    benchmark(np.matmul, a32, b32)


def test_h100_model(benchmark, data):
    fmt, a, b, _, _ = data
    benchmark.group = f"fused {fmt} {N}x{4 * N}x{N}"
    model = lp.hardware.h100.scaled_mm() if fmt == "e4m3" else \
        lp.hardware.h100.wgmma(fmt, fmt)
    benchmark(lp.scaled_matmul, a, b, a_format=fmt, b_format=fmt,
              accumulate=model)
