"""Every float16 pair for add and mul against Berkeley SoftFloat, bits and
flags: 2^32 pairs per operation, mode and tininess (slow: about two
minutes each on two cores; `pytest --runslow tests/test_softfloat_all.py`,
skipped with LOWPREC_SWEEP=window as in CI).

SoftFloat runs in C: tests/softfloat_sweep.c, compiled here, calls the
SoftFloat functions exported by softfloatpy's extension module (the
library softfloatpy wraps) for a block of 256 x 65536 pairs at a time;
lp.add / lp.mul compute the same block with flags=True and the two are
compared element for element (NaN results by NaN-ness: SoftFloat returns
its default NaN 0xFE00 or a quieted operand, lowprec the canonical 0x7E00).
"""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import lowprec as lp

sf = pytest.importorskip("softfloatpy")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("LOWPREC_SWEEP") == "window",
    reason="LOWPREC_SWEEP=window: the exhaustive float16 sweep is skipped")]

MODES = {"nearest_even": 0, "toward_zero": 1, "toward_negative": 2,
         "toward_positive": 3, "nearest_away": 4}    # softfloat_round_*
TININESS = {"before": 0, "after": 1}                 # softfloat_tininess_*
ROWS = 256                                           # a values per block


@pytest.fixture(scope="module")
def softfloat(tmp_path_factory):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the SoftFloat harness")
    here = os.path.dirname(__file__)
    so = str(tmp_path_factory.mktemp("sf") / "sweep.so")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", so,
                    os.path.join(here, "softfloat_sweep.c")], check=True)
    core = ctypes.CDLL(sf._core.__file__)
    harness = ctypes.CDLL(so)
    harness.sweep16.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.c_uint32, ctypes.c_uint32,
                                ctypes.c_void_p, ctypes.c_void_p]
    harness.sweep16.restype = None
    return core, harness


def _run(softfloat, op, mode, tininess):
    core, harness = softfloat
    fn = ctypes.cast(getattr(core, f"f16_{op}"), ctypes.c_void_p)
    ctypes.c_uint8.in_dll(core, "softfloat_roundingMode").value = \
        MODES[mode]
    ctypes.c_uint8.in_dll(core, "softfloat_detectTininess").value = \
        TININESS[tininess]
    flags_var = ctypes.addressof(
        ctypes.c_uint8.in_dll(core, "softfloat_exceptionFlags"))
    lp_fn = getattr(lp, op)
    b = np.tile(np.arange(1 << 16, dtype=np.uint16), ROWS)
    want = np.empty(b.size, np.uint16)
    wfl = np.empty(b.size, np.uint8)
    nan_code = lp.get_format("float16").nan_code
    differ = 0
    first = None
    for a0 in range(0, 1 << 16, ROWS):
        harness.sweep16(fn, flags_var, a0, a0 + ROWS, want.ctypes.data,
                        wfl.ctypes.data)
        a = np.repeat(np.arange(a0, a0 + ROWS, dtype=np.uint16), 1 << 16)
        got, gfl = lp_fn(a, b, "float16", rounding=mode, tininess=tininess,
                         flags=True)
        nan_w = (want & 0x7C00) == 0x7C00
        nan_w &= (want & 0x3FF) != 0
        same = np.where(nan_w, got == nan_code, got == want) & (gfl == wfl)
        bad = np.flatnonzero(~same)
        differ += bad.size
        if bad.size and first is None:
            i = int(bad[0])
            first = (f"{op}({int(a[i]):#06x}, {int(b[i]):#06x}): lowprec "
                     f"{int(got[i]):#06x} flags {int(gfl[i])}, SoftFloat "
                     f"{int(want[i]):#06x} flags {int(wfl[i])}")
    assert differ == 0, f"{differ} of 2^32 pairs differ; first {first}"


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("op", ["add", "mul"])
def test_every_float16_pair(softfloat, op, mode):
    _run(softfloat, op, mode, "after")


@pytest.mark.parametrize("op", ["add", "mul"])
def test_every_float16_pair_tininess_before(softfloat, op):
    _run(softfloat, op, "nearest_even", "before")
