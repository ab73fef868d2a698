"""Stochastic rounding: unbiased, probabilities equal to the distance,
reproducible across seeds, threads and chunkings."""
import math

import numpy as np
import pytest

import lowprec as lp
from lowprec._clib import ffi, lib
from lowprec.convert import make_opts
from lowprec.reference import ref_random


def test_generator_matches_the_reference():
    for seed, index in [(0, 0), (1, 2), (2**64 - 1, 2**40), (123, 7)]:
        assert lib.lp_random(seed, index) == ref_random(seed, index)


@pytest.mark.parametrize("name, x", [("float8_e4m3fn", 1.3), ("bfloat16",
                                                              1 + 2**-9),
                                     ("float8_e5m2", -3e-5),
                                     ("float4_e2m1fn", 2.7),
                                     ("float16", 1e-7), ("int8", -2.25)])
def test_probability_equals_distance(name, x):
    f = lp.get_format(name)
    n = 1 << 20
    xs = np.full(n, x)
    q = lp.quantize(xs, f, rounding="stochastic", seed=42)
    lo = lp.quantize(np.array([x]), f, rounding="toward_zero")[0]
    away = lp.quantize(np.array([x]), f,
                       rounding="toward_positive" if x > 0
                       else "toward_negative")[0]
    assert set(np.unique(q)) <= {lo, away}
    p = (x - lo) / (away - lo)
    frac = np.mean(q == away)
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(frac - p) < 6 * sigma + 1e-12, (frac, p)
    # unbiased: the mean error is within the statistical bound
    err = np.mean(q) - x
    assert abs(err) < 6 * sigma * abs(away - lo) + 1e-12 * abs(x)


def test_unbiased_on_many_values():
    rng = np.random.default_rng(3)
    x = rng.uniform(-4, 4, 1 << 22).astype(np.float32)
    q = lp.quantize(x, "float8_e4m3fn", rounding="stochastic", seed=1)
    gap = lp.quantize(x, "e4m3", rounding="ru") - \
        lp.quantize(x, "e4m3", rounding="rd")
    err = (q.astype(np.float64) - x)
    bound = 6 * math.sqrt(np.sum(gap.astype(np.float64) ** 2 / 4)) / x.size
    assert abs(err.mean()) < bound
    assert np.all(np.abs(err) <= gap)        # never beyond a neighbour


def test_exact_values_never_move():
    v = lp.get_format("e5m2").values()
    for seed in (0, 1, 2):
        np.testing.assert_array_equal(
            lp.quantize(v, "e5m2", rounding="stochastic", seed=seed), v)


def test_seeds():
    x = np.random.default_rng(0).standard_normal(10000)
    a = lp.encode(x, "e4m3", rounding="sr", seed=7)
    np.testing.assert_array_equal(a, lp.encode(x, "e4m3", rounding="sr",
                                               seed=7))
    assert np.any(a != lp.encode(x, "e4m3", rounding="sr", seed=8))
    assert np.any(lp.encode(x, "e4m3", rounding="sr") !=
                  lp.encode(x, "e4m3", rounding="sr"))   # fresh seeds


def test_chunkings_agree():
    """Element i draws (seed, i) wherever its chunk starts."""
    f = lp.get_format("e4m3")
    x = np.random.default_rng(1).standard_normal(100_003).astype(np.float32)
    whole = lp.encode(x, f, rounding="sr", seed=99)
    o = make_opts(f, "stochastic", False, True, 99, None, None)
    out = np.empty(x.size, np.uint8)
    starts = [0, 1, 17, 4096, 50_000, 99_999, x.size]
    for a, b in zip(starts[:-1], starts[1:]):
        lib.lp_encode(f.struct, o, lib.LP_F32,
                      ffi.cast("void *", x.ctypes.data + 4 * a), b - a,
                      ffi.NULL, a, ffi.cast("void *", out.ctypes.data + a))
    np.testing.assert_array_equal(out, whole)


def test_rbits_limits_the_comparison():
    f = lp.get_format("e4m3")
    n = 1 << 16
    # distance 0.3 gap: with one random bit floor(0.3 * 2) = 0, never up
    x = np.full(n, 1 + 0.3 * 0.125)
    assert np.all(lp.quantize(x, f, rounding="sr", rbits=1, seed=3) == 1.0)
    # distance 0.75: floor(0.75 * 2) = 1, up when the bit is 0: about half
    x = np.full(n, 1 + 0.75 * 0.125)
    up = np.mean(lp.quantize(x, f, rounding="sr", rbits=1, seed=3) > 1)
    assert abs(up - 0.5) < 6 * math.sqrt(0.25 / n)
