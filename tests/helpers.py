"""Shared helpers of the test-suite."""
import numpy as np

import lowprec as lp
from lowprec._clib import ffi, lib
from lowprec.convert import as_input, make_opts

DETERMINISTIC = ("nearest_even", "nearest_away", "toward_zero",
                 "toward_positive", "toward_negative", "to_odd")
ALL_MODES = DETERMINISTIC + ("stochastic",)

FLOAT_FORMATS = {n: f for n, f in lp.formats().items() if f.kind == "float"}
INT_FORMATS = {n: f for n, f in lp.formats().items() if f.kind == "int"}
SMALL_FLOATS = sorted(n for n, f in FLOAT_FORMATS.items() if f.nbits <= 8)


def encode_core(x, fmt, *, rounding="nearest_even", saturate=False,
                subnormals=True, seed=0, rbits=None, zero_point=None):
    """lp_encode_core: the rounding core element by element, no fast path.
    Returns (codes, error flags)."""
    fmt = lp.get_format(fmt)
    a, in_type = as_input(x)
    o = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                  zero_point)
    out = np.empty(a.shape, fmt.code_dtype)
    err = lib.lp_encode_core(fmt.struct, o, in_type,
                             ffi.cast("void *", a.ctypes.data), a.size,
                             ffi.NULL, 0, ffi.cast("void *", out.ctypes.data))
    return out, err


def bits_to_float64(x):
    """float16 / bfloat16 / float32 arrays to float64 without NaN cast
    warnings (ml_dtypes warns on NaN casts)."""
    from lowprec.convert import as_float
    with np.errstate(invalid="ignore"):
        return as_float(np.asarray(x)).astype(np.float64)
