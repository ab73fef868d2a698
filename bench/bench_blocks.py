"""pytest-benchmark suite of block quantization (quantize_blocks against
lp.encode to the same element format), 2^23 float32 values.  The ratios
of the issue are printed by bench/compare_blocks.py."""
import numpy as np
import pytest

import lowprec as lp

N = 1 << 23


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(N)
            * np.exp2(rng.integers(-8, 8, N // 32).repeat(32))
            ).astype(np.float32)


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                  "fp8_1x128"])
def test_quantize_blocks(benchmark, x, name):
    benchmark(lp.quantize_blocks, x, name)


@pytest.mark.parametrize("element", ["float8_e4m3fn", "float4_e2m1fn"])
def test_encode_floor(benchmark, x, element):
    benchmark(lp.encode, x, element, saturate=True)
