"""The C model of the fused rule (lowprec.FusedAccumulator, csrc/fused.c)
against the independent exact reference tests/fused_reference.py, for
many (group, align_bits, out_bits, rounding, accumulator, promote_every)
choices, not only the H100's, on random and adversarial inputs:
cancellation, mixed exponents, subnormal operands and products, NaN and
inf, overflow, and c= inputs (large, tiny, subnormal, -0, inf, NaN).
Every kernel path must give the reference's bits."""
import numpy as np
import pytest

import lowprec as lp
from lowprec._clib import lib
from lowprec.matmul import _scaled_matmul

import fused_reference as fr

PATHS = (lib.LP_FUSED_NARROW, lib.LP_FUSED_WIDE, lib.LP_FUSED_SCALAR)
PATH_IDS = ("narrow", "wide", "scalar")

MODELS = [
    dict(group=32, align_bits=13, out_bits=14),                 # QGMMA
    dict(group=16, align_bits=25, out_bits=24),                 # HGMMA
    dict(group=1, align_bits=3, out_bits=5),
    dict(group=3, align_bits=7, out_bits=9, out_rounding="nearest_even"),
    dict(group=8, align_bits=20, out_bits=20, promote_every=16),
    dict(group=5, align_bits=40, out_bits=24, out_rounding="nearest_even",
         promote_every=15),
    dict(group=64, align_bits=11, out_bits=11, accumulator="float16",
         out_rounding="nearest_even"),
    dict(group=4, align_bits=16, out_bits=8, accumulator="float16"),
    dict(group=6, align_bits=12, out_bits=11, accumulator="float16",
         out_rounding="nearest_even", promote_every=12),
    dict(group=7, align_bits=60, out_bits=24),                  # wide sums
]
MODEL_IDS = ["g{group}F{align_bits}p{out_bits}".format(**m)
             + m.get("out_rounding", "toward_zero")[:6]
             + m.get("accumulator", "float32")[-2:]
             + (f"P{m['promote_every']}" if "promote_every" in m else "")
             for m in MODELS]
FORMATS = [("e4m3", "e4m3"), ("e5m2", "e4m3"), ("float16", "float16"),
           ("bfloat16", "bfloat16")]


def _codes(rng, fmt, shape, kind):
    """Codes of fmt: uniform codes (subnormals, NaN, inf included),
    cancellation (pairs of opposite values) or a wide exponent spread."""
    f = lp.get_format(fmt)
    n = int(np.prod(shape))
    if kind == "codes":
        c = rng.integers(0, 1 << f.nbits, n)
        bad = ~np.isfinite(lp.decode(c.astype(f.code_dtype), f,
                                     dtype=np.float64))
        keep = rng.random(n) < 0.02            # a few NaN / inf stay
        c = np.where(bad & ~keep, 0, c)
        return c.astype(f.code_dtype).reshape(shape)
    if kind == "cancel":
        x = rng.standard_normal(n)
        x[1::2] = -x[0::2][: n // 2]
        x[::7] *= 2.0 ** 9
    else:                                       # spread
        x = rng.standard_normal(n) * 2.0 ** rng.integers(-30, 12, n)
    return lp.encode(x, f, saturate=True).reshape(shape)


def _c(rng, shape, dtype):
    lo, hi = (-20, 20) if dtype == np.float32 else (-12, 12)
    c = (rng.standard_normal(shape) * 2.0 ** rng.integers(lo, hi, shape)
         ).astype(dtype)
    flat = c.reshape(-1)
    tiny = np.finfo(dtype).smallest_subnormal
    specials = [0.0, -0.0, tiny * 3, -tiny, np.finfo(dtype).max, np.inf,
                -np.inf, np.nan]
    flat[: len(specials)] = np.array(specials, dtype)
    return c


@pytest.mark.parametrize("kind", ["codes", "cancel", "spread"])
@pytest.mark.parametrize("fa,fb", FORMATS, ids=[f"{a}x{b}" for a, b in FORMATS])
@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_model_equals_reference(model, fa, fb, kind):
    acc16 = model.get("accumulator") == "float16"
    seed = abs(hash((tuple(sorted(model.items())), fa, fb, kind))) % 2**32
    rng = np.random.default_rng(seed)
    M, K, N = 3, 70, 18                  # 16 columns vectorised, 2 scalar
    a = _codes(rng, fa, (M, K), kind)
    b = _codes(rng, fb, (K, N), kind)
    c = _c(rng, (M, N), np.float16 if acc16 else np.float32)
    m = lp.FusedAccumulator(**model)
    ref = fr.fused_matmul(a, b, c, a_format=fa, b_format=fb, **model)
    want = fr.values_to_bits(ref, fr.ACC["f16" if acc16 else "f32"])
    for path in PATHS:
        got = _scaled_matmul(a, b, a_format=fa, b_format=fb, accumulate=m,
                             c=c, fused_path=path)
        bits = got.view(np.uint16 if acc16 else np.uint32)
        bad = np.argwhere(bits != want)
        assert bad.size == 0, (path, [(tuple(i), hex(bits[tuple(i)]),
                                       hex(want[tuple(i)])) for i in bad[:3]])


def test_subnormal_results_on_the_out_bits_grid():
    """Below the accumulator's emin a result keeps the grid of an
    out_bits-bit format (E8M13 for the 14-bit QGMMA output): c = 2^-130
    plus a tiny product truncates to a multiple of 2^-139."""
    m = lp.FusedAccumulator(1, 40, out_bits=14)
    c = np.full((1, 16), np.float32(2.0 ** -130 + 2.0 ** -147), np.float32)
    a = np.zeros((1, 1), np.uint8)
    b = np.zeros((1, 16), np.uint8)
    for path in PATHS:
        r = _scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
                           accumulate=m, c=c, fused_path=path)
        assert (r == np.float32(2.0 ** -130)).all()
    ref = fr.fused_matmul(a, b, c, a_format="e4m3", b_format="e4m3",
                          group=1, align_bits=40, out_bits=14)
    assert (ref == 2.0 ** -130).all()
