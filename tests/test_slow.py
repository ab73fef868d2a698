"""Long checks, marked slow (pytest --runslow, or LOWPREC_SLOW=1)."""
import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec.testing import is_nan_code

import os

CHUNK = 1 << 24
# LOWPREC_SWEEP=window (CI): every float32 input whose binade lies within
# two binades of the format's range (below its smallest subnormal, above
# its max) plus every 16th chunk of the rest; the default is all 2^32.
WINDOW = os.environ.get("LOWPREC_SWEEP", "all") == "window"
ML_TYPES = ["float8_e4m3fn", "float8_e4m3", "float8_e5m2", "float8_e3m4",
            "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e4m3b11fnuz",
            "float6_e3m2fn", "float6_e2m3fn", "float4_e2m1fn", "bfloat16"]


def _mismatch(ours, ref, f):
    bad = ours != ref
    if bad.any():
        idx = np.nonzero(bad)[0]
        both_nan = is_nan_code(ours[idx], f) & is_nan_code(ref[idx], f)
        return idx[~both_nan]
    return np.zeros(0, np.int64)


def _chunks(f):
    """Chunk starts of the sweep: all of them, or (WINDOW) those that meet
    the binades [emin - mbits - 2, emax + 2] of either sign, the
    infinities and NaNs, and every 16th of the rest."""
    lo, hi = f.emin - f.mbits - 2, f.emax + 2
    for start in range(0, 1 << 32, CHUNK):
        if not WINDOW or (start // CHUNK) % 16 == 0:
            yield start
            continue
        e0 = ((start >> 23) & 0xFF) - 127
        e1 = (((start + CHUNK - 1) >> 23) & 0xFF) - 127
        if e1 >= lo and e0 <= hi or e1 == 128:
            yield start


@pytest.mark.slow
@pytest.mark.parametrize("name", ML_TYPES + ["float16"])
def test_every_float32_against_ml_dtypes_and_numpy(name):
    """All 2^32 float32 inputs, nearest-even, not saturating: against
    ml_dtypes astype (NumPy astype for float16).  Formats without NaN get
    the NaN inputs left out (ml_dtypes gives a value there, lowprec an
    error)."""
    f = lp.get_format(name)
    dt = np.float16 if name == "float16" else getattr(ml_dtypes, name)
    for start in _chunks(f):
        bits = np.arange(start, start + CHUNK, dtype=np.uint32)
        x = bits.view(np.float32)
        if f.nan_code is None:
            x = x[~np.isnan(x)]
        ours = lp.encode(x, f)
        with np.errstate(over="ignore", invalid="ignore"):
            ref = x.astype(dt).view(f.code_dtype)
        bad = _mismatch(ours, ref, f)
        assert bad.size == 0, (
            f"{bad.size} mismatches from 0x{start:08x}, first input "
            f"0x{int(x[bad[0]].view(np.uint32)):08x}: ours "
            f"{f.describe(int(ours[bad[0]]))}, reference "
            f"{f.describe(int(ref[bad[0]]))}")


@pytest.mark.slow
def test_more_than_2_31_elements():
    n = (1 << 31) + 7
    x = np.zeros(n, np.float16)
    tail = np.array([1.0, -2.5, 448.0, 1e4, -0.0, 3.0, 0.1], np.float16)
    x[-7:] = tail
    x[(1 << 31) - 3] = 0.5
    codes = lp.encode(x, "e4m3", saturate=True)
    assert codes.shape == (n,)
    np.testing.assert_array_equal(codes[-7:], lp.encode(tail, "e4m3",
                                                        saturate=True))
    assert codes[(1 << 31) - 3] == 0x30 and codes[0] == 0
    del x
    v = lp.decode(codes, "e4m3")
    assert v.shape == (n,)
    np.testing.assert_array_equal(v[-7:], lp.decode(codes[-7:], "e4m3"))
    assert v[(1 << 31) - 3] == 0.5
