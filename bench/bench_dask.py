"""pytest-benchmark suite of lowprec.dask: quantize (stochastic, e4m3) of
2^23 float32 values in 8 chunks on the threaded scheduler, against the
NumPy call on the whole array, and the K-chunked exact scaled_matmul.
The 1-to-2-process speed-up is printed by bench/compare_dask.py."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import lowprec as lp  # noqa: E402
import lowprec.dask as lpd  # noqa: E402

N = 1 << 23


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal(N).astype(np.float32)


def test_quantize_numpy(benchmark, x):
    benchmark(lp.quantize, x, "e4m3", rounding="stochastic", seed=1)


def test_quantize_dask_threads(benchmark, x):
    d = da.from_array(x, chunks=N // 8)
    benchmark(lambda: lpd.quantize(d, "e4m3", rounding="stochastic",
                                   seed=1).compute(scheduler="threads"))


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "bfloat16"])
def test_exact_matmul_k_chunks(benchmark, fmt):
    rng = np.random.default_rng(1)
    a = lp.encode(rng.standard_normal((256, 512)), fmt)
    b = lp.encode(rng.standard_normal((512, 256)), fmt)
    A = da.from_array(a, chunks=(128, 128))
    B = da.from_array(b, chunks=(128, 128))
    benchmark(lambda: lpd.scaled_matmul(
        A, B, a_format=fmt, b_format=fmt,
        accumulate="exact").compute(scheduler="threads"))
