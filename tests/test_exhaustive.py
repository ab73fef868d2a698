"""Exhaustive checks: every code of every format, and every float16 and
bfloat16 input into every format of up to 16 bits in every deterministic
mode, against exact references that share no code with the kernels."""
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec.reference import ref_decode
from lowprec.testing import assert_codes_equal

from grid_reference import grid_encode
from helpers import (DETERMINISTIC, FLOAT_FORMATS, INT_FORMATS,
                     bits_to_float64, encode_core)

U16 = np.arange(1 << 16, dtype=np.uint16)
INPUTS = {"float16": U16.view(np.float16),
          "bfloat16": U16.view(ml_dtypes.bfloat16)}
UP_TO_16 = sorted(n for n, f in FLOAT_FORMATS.items() if f.nbits <= 16)


def _all_codes(f):
    return np.arange(1 << f.nbits, dtype=np.int64).astype(f.code_dtype)


@pytest.mark.parametrize("name", UP_TO_16 + ["tfloat32"])
def test_every_code_decodes_to_reference(name):
    f = lp.get_format(name)
    codes = _all_codes(f)
    got = lp.decode(codes, f, dtype=np.float64)
    ref = np.array([float(ref_decode(f, int(c))) for c in codes.tolist()])
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan], ref[~nan])
    np.testing.assert_array_equal(np.signbit(got[~nan]), np.signbit(ref[~nan]))
    # float32 output: exact for every format here (all fit float32)
    got32 = lp.decode(codes, f)
    np.testing.assert_array_equal(got32[~nan], ref[~nan].astype(np.float32))


@pytest.mark.parametrize("mode", DETERMINISTIC)
@pytest.mark.parametrize("name", UP_TO_16 + ["tfloat32"])
def test_every_code_reencodes_to_itself(name, mode):
    f = lp.get_format(name)
    codes = _all_codes(f)
    v = lp.decode(codes, f, dtype=np.float64)
    for dtype in (np.float64, np.float32):
        back = lp.encode(v.astype(dtype), f, rounding=mode)
        keep = ~np.isnan(v)
        np.testing.assert_array_equal(back[keep], codes[keep])
        assert np.all(back[~keep] == f.nan_code)


def test_float32_codes_sampled():
    f = lp.get_format("float32")
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint64).astype(
        np.uint32)
    v = lp.decode(codes, f, dtype=np.float64)
    np.testing.assert_array_equal(v.astype(np.float32).view(np.uint32)[
        ~np.isnan(v)], codes[~np.isnan(v)])
    for c in codes[:2000].tolist():
        r = ref_decode(f, c)
        if isinstance(r, Fraction):
            assert Fraction(f.value(c)) == r


@pytest.mark.parametrize("subnormals", [True, False], ids=["sub", "flush"])
@pytest.mark.parametrize("saturate", [False, True], ids=["inf", "sat"])
@pytest.mark.parametrize("mode", DETERMINISTIC)
@pytest.mark.parametrize("source", sorted(INPUTS))
@pytest.mark.parametrize("name", UP_TO_16)
def test_every_16bit_input(name, source, mode, saturate, subnormals):
    """All 2^16 inputs, through the fast path (table / shift / F16C where
    they apply), the core alone, and float32 / float64 copies of the same
    values, against the grid reference."""
    f = lp.get_format(name)
    x = INPUTS[source]
    x64 = bits_to_float64(x)
    ref = grid_encode(f, x64, mode, saturate, subnormals)
    ok = ref >= 0
    kw = dict(rounding=mode, saturate=saturate, subnormals=subnormals)
    with np.errstate(invalid="ignore"):
        x32 = x64[ok].astype(np.float32)
    for arr in (x[ok], x32, x64[ok]):
        assert_codes_equal(lp.encode(arr, f, **kw), ref[ok], f)
    core, err = encode_core(x[ok], f, **kw)
    assert err == 0
    assert_codes_equal(core, ref[ok], f)
    # every input the reference rejects raises, naming the format
    for v in x[~ok][:3]:
        with pytest.raises(ValueError, match=name):
            lp.encode(np.array([v]), f, **kw)


def _int_reference(x64, f, mode, zero_point=0):
    """Independent integer rounding with NumPy on exact float64 values."""
    x64 = np.clip(x64, -1e6, 1e6)      # beyond every format: same result
    fl = np.floor(x64)
    with np.errstate(invalid="ignore"):
        frac = np.where(np.isinf(x64), 0.0, x64 - fl)   # exact here
    exact = frac == 0
    if mode == "nearest_even":
        r = np.rint(x64)
    elif mode == "nearest_away":
        r = np.where(frac >= 0.5, fl + 1, fl)
        r = np.where((frac == 0.5) & (x64 < 0), fl, r)
    elif mode == "toward_zero":
        r = np.trunc(x64)
    elif mode == "toward_positive":
        r = np.ceil(x64)
    elif mode == "toward_negative":
        r = fl
    else:  # to_odd
        r = np.where(exact | (np.mod(fl, 2) == 1), fl, fl + 1)
    r = np.clip(r + zero_point, f.min, f.max)
    return r.astype(np.int64)


@pytest.mark.parametrize("mode", DETERMINISTIC)
@pytest.mark.parametrize("name", sorted(INT_FORMATS))
def test_every_float16_into_integers(name, mode):
    f = lp.get_format(name)
    x = INPUTS["float16"]
    x64 = bits_to_float64(x)
    ok = ~np.isnan(x64)
    for zp in (0, 3, -2):
        ref = _int_reference(x64[ok], f, mode, zp)
        got = lp.encode(x[ok], f, rounding=mode, zero_point=zp or None)
        assert got.dtype == f.code_dtype
        np.testing.assert_array_equal(got.astype(np.int64), ref)
    with pytest.raises(ValueError, match=f"{name} has no NaN"):
        lp.encode(x[~ok], f, rounding=mode)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float16",
                                  "bfloat16", "float8_e8m0fnu",
                                  "float4_e2m1fn"])
def test_decode_to_narrow_dtypes_rounds_once(name, dtype):
    f = lp.get_format(name)
    codes = _all_codes(f)
    v = lp.decode(codes, f, dtype=np.float64)
    got = lp.decode(codes, f, dtype=ml_dtypes.bfloat16 if dtype == "bfloat16"
                    else dtype)
    tgt = lp.get_format(dtype)
    ref = grid_encode(tgt, v, "nearest_even") if tgt.nbits <= 16 else None
    if ref is None:
        np.testing.assert_array_equal(
            got[~np.isnan(v)], v[~np.isnan(v)].astype(np.float32))
    else:
        assert_codes_equal(got.view(tgt.code_dtype), ref, tgt)


def test_ml_dtypes_agrees_on_float16_inputs():
    """Cross-check with the library users would otherwise pick (its float8
    conversions from float16 go through float32, which is exact)."""
    x = INPUTS["float16"]
    x = x[~np.isnan(x)]
    for name in FLOAT_FORMATS:
        if not hasattr(ml_dtypes, name) or name in ("float32",
                                                    "float8_e8m0fnu"):
            continue
        f = lp.get_format(name)
        xs = x
        if f.nans == "none":
            xs = x[np.isfinite(x)]
        if not f.signed:            # UE5M3: negative inputs are errors
            xs = xs[~(xs < 0)]
        with np.errstate(over="ignore", invalid="ignore"):
            ref = xs.astype(np.float32).astype(getattr(ml_dtypes, name))
        assert_codes_equal(lp.encode(xs, f), ref.view(f.code_dtype), f)
