"""The fast paths (the float32 core, the bfloat16/tfloat32 shift, F16C)
against the general rounding core on random float32 bit patterns: every
exponent, NaN payloads, subnormals; every format and mode."""
import numpy as np
import pytest

import lowprec as lp
from lowprec.testing import assert_codes_equal

from helpers import ALL_MODES, FLOAT_FORMATS, INT_FORMATS, encode_core

RNG = np.random.default_rng(11)
BITS = np.concatenate([
    RNG.integers(0, 1 << 32, 1 << 17, dtype=np.uint64).astype(np.uint32),
    np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001,
              0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0x00800000], np.uint32)])
X32 = BITS.view(np.float32)


@pytest.mark.parametrize("subnormals", [True, False], ids=["sub", "flush"])
@pytest.mark.parametrize("saturate", [False, True], ids=["inf", "sat"])
@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("name", sorted(FLOAT_FORMATS) + sorted(INT_FORMATS)
                         + ["custom"])
def test_fast_paths_equal_core(name, mode, saturate, subnormals):
    f = (lp.FloatFormat(5, 4, bias=9, infs=False, nans="negzero",
                        negzero=False) if name == "custom"
         else lp.get_format(name))
    x = X32
    if f.kind == "int" or f.nan_code is None:
        x = x[~np.isnan(x)]
    if not f.signed and f.kind == "float":
        x = np.abs(x)
    kw = dict(rounding=mode, saturate=saturate, subnormals=subnormals,
              seed=77)
    if f.kind == "int":
        kw = dict(rounding=mode, seed=77)
    core, err = encode_core(x, f, **kw)
    fast = lp.encode(x, f, **kw)
    assert_codes_equal(fast, core, f)
    # scaled: the division happens in float32 on both paths
    s = 0.375
    with np.errstate(over="ignore", invalid="ignore"):   # signalling NaNs
        xs = x / np.float32(s)
    core_s, _ = encode_core(xs, f, **kw)
    assert_codes_equal(lp.encode(x, f, scale=s, **kw), core_s, f)


@pytest.mark.parametrize("rbits", [1, 3, 7, 8, 16, 23, 31, 32, 33, 40, 63])
@pytest.mark.parametrize("name", ["bfloat16", "tfloat32", "float16",
                                  "float8_e4m3fn", "float4_e2m1fn"])
def test_stochastic_rbits_fast_paths_equal_core(name, rbits):
    f = lp.get_format(name)
    x = X32[~np.isnan(X32)] if f.nan_code is None else X32
    kw = dict(rounding="stochastic", seed=3, rbits=rbits)
    core, _ = encode_core(x, f, **kw)
    assert_codes_equal(lp.encode(x, f, **kw), core, f)
    # large flat indices: the index's high word feeds the generator
    from lowprec._clib import ffi, lib
    from lowprec.convert import make_opts
    o = make_opts(f, "stochastic", False, True, 3, rbits, None)
    a = np.ascontiguousarray(x[:5000])
    fast = np.empty(a.size, f.code_dtype)
    slow = np.empty(a.size, f.code_dtype)
    for fn, out in ((lib.lp_encode, fast), (lib.lp_encode_core, slow)):
        fn(f.struct, o, lib.LP_F32, ffi.cast("void *", a.ctypes.data),
           a.size, ffi.NULL, (1 << 32) - 1000,
           ffi.cast("void *", out.ctypes.data))
    assert_codes_equal(fast, slow, f)
