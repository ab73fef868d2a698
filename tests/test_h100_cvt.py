"""lowprec.hardware.h100.cvt reproduces the recorded H100 conversion
tables (../shared/h100/conv_*.npz, $LOWPREC_H100_DATA).

Transition tables (float32 sources, 2^32 inputs each): the main suite
checks every transition start, start - 1 and start + 1, and a seeded
random sample of 2^20 inputs per table; the full 2^32 runs under
``@pytest.mark.slow``.  conv_small tables (float16 and fp8 sources) are
checked in full.  Expected codes are the hardware's, looked up in the
tables (``codes[searchsorted(starts, bits, side="right") - 1]``).

Tables cvt does not reproduce, and why:
* ``f32_{e4m3,e5m2}_nosat_intrinsic``: ``__nv_cvt_float_to_fp8(x,
  __NV_NOSAT)`` is a software routine in cuda_fp8.hpp, not the
  instruction (sm_90 has no non-saturating float -> fp8 cvt);
* ``f32_torch_float8_*``, ``{f16,bf16}_torch_float8_*``,
  ``torch_float8_*_to_*``: torch's c10 software casts (non-saturating,
  NaN sign and payload kept), not the instruction.  (``f32_torch_float16``
  / ``f32_torch_bfloat16`` are bit-identical to ``cvt.rn``: checked.)
"""
import os

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec.hardware import h100

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("LOWPREC_H100_DATA",
                      os.path.join(HERE, "..", "..", "shared", "h100"))


def _load(name):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"H100 tables not found at {path} (set "
                    "LOWPREC_H100_DATA)")
    return np.load(path)


# table name -> (file, fmt, cvt keyword arguments)
FP8 = {
    "f32_e4m3_rn_satfinite_ptx": ("float8_e4m3fn", {}),
    "f32_e5m2_rn_satfinite_ptx": ("float8_e5m2", {}),
    "f32_e4m3_satfinite_intrinsic": ("float8_e4m3fn", {"saturate": True}),
    "f32_e5m2_satfinite_intrinsic": ("float8_e5m2", {"saturate": True}),
    "f32_e4m3_rn_satfinite_relu_ptx": ("float8_e4m3fn", {"relu": True}),
    "f32_e5m2_rn_satfinite_relu_ptx": ("float8_e5m2", {"relu": True}),
}
HALF = {f"f32_{t}_{r}_ptx": (fmt, {"rounding": mode})
        for t, fmt in (("f16", "float16"), ("bf16", "bfloat16"))
        for r, mode in (("rn", "nearest_even"), ("rz", "toward_zero"),
                        ("rm", "toward_negative"), ("rp", "toward_positive"))}
HALF.update({
    "f32_f16_rn_satfinite_ptx": ("float16", {"saturate": True}),
    "f32_bf16_rn_satfinite_ptx": ("bfloat16", {"saturate": True}),
    "f32_torch_float16": ("float16", {}),
    "f32_torch_bfloat16": ("bfloat16", {}),
})
TABLES = {**{k: ("conv_f32_fp8.npz",) + v for k, v in FP8.items()},
          **{k: ("conv_f32_f16_bf16.npz",) + v for k, v in HALF.items()}}


def _table(name):
    file, fmt, kw = TABLES[name]
    z = _load(file)
    starts, codes = z[name + "__starts"], z[name + "__codes"]
    assert starts[0] == 0 and np.all(np.diff(starts.astype(np.int64)) > 0)
    return starts, codes, fmt, kw


def _lookup(starts, codes, bits):
    return codes[np.searchsorted(starts, bits, side="right") - 1]


def _check(bits, starts, codes, fmt, kw):
    bits = np.asarray(bits, np.uint32)
    got = h100.cvt(bits.view(np.float32), fmt, **kw)
    want = _lookup(starts, codes, bits)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{bad.size} of {bits.size} inputs differ, first "
        f"{hex(int(bits[bad[0]]))}: cvt {hex(int(got[bad[0]]))}, hardware "
        f"{hex(int(want[bad[0]]))}")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_transition(name):
    starts, codes, fmt, kw = _table(name)
    s = starts.astype(np.int64)
    bits = np.unique(np.concatenate([s, s - 1, s + 1,
                                     [0xffffffff]]).clip(0, 0xffffffff))
    _check(bits, starts, codes, fmt, kw)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_random_sample(name):
    starts, codes, fmt, kw = _table(name)
    seed = sorted(TABLES).index(name)
    bits = np.random.default_rng(seed).integers(0, 1 << 32, 1 << 20,
                                                dtype=np.uint64)
    _check(bits.astype(np.uint32), starts, codes, fmt, kw)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TABLES))
def test_all_float32_inputs(name):
    """Every float32 bit pattern, in chunks of 2^24; the expected codes of
    a chunk are the table's runs cut to the chunk (np.repeat)."""
    starts, codes, fmt, kw = _table(name)
    step = 1 << 24
    for lo in range(0, 1 << 32, step):
        hi = lo + step
        i0 = np.searchsorted(starts, lo, side="right") - 1
        i1 = np.searchsorted(starts, hi - 1, side="right")
        bounds = np.maximum(starts[i0:i1].astype(np.int64), lo)
        want = np.repeat(codes[i0:i1], np.diff(np.append(bounds, hi)))
        bits = np.arange(lo, hi, dtype=np.uint64).astype(np.uint32)
        got = h100.cvt(bits.view(np.float32), fmt, **kw)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{bad.size} inputs differ, first " \
            f"{hex(lo + int(bad[0]))}"


def test_torch_half_casts_equal_cvt_rn():
    z = _load("conv_f32_f16_bf16.npz")
    for t, ptx in (("float16", "f16"), ("bfloat16", "bf16")):
        for key in ("starts", "codes"):
            assert np.array_equal(z[f"f32_torch_{t}__{key}"],
                                  z[f"f32_{ptx}_rn_ptx__{key}"])


# -- conv_small: every input --------------------------------------------------

SMALL_F16 = {
    "f16_e4m3_rn_satfinite_ptx": ("float8_e4m3fn", {}),
    "f16_e5m2_rn_satfinite_ptx": ("float8_e5m2", {}),
    "f16_e4m3_rn_satfinite_relu_ptx": ("float8_e4m3fn", {"relu": True}),
    "f16_e5m2_rn_satfinite_relu_ptx": ("float8_e5m2", {"relu": True}),
}
SMALL_FP8 = {
    "e4m3_f16_rn_ptx": (ml_dtypes.float8_e4m3fn, {}),
    "e5m2_f16_rn_ptx": (ml_dtypes.float8_e5m2, {}),
    "e4m3_f16_rn_relu_ptx": (ml_dtypes.float8_e4m3fn, {"relu": True}),
    "e5m2_f16_rn_relu_ptx": (ml_dtypes.float8_e5m2, {"relu": True}),
}


@pytest.mark.parametrize("name", sorted(SMALL_F16))
def test_float16_to_fp8_every_input(name):
    want = _load("conv_small.npz")[name]
    fmt, kw = SMALL_F16[name]
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16) \
        .view(np.float16)
    got = h100.cvt(x, fmt, **kw)
    assert got.dtype == np.uint8
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:8]
    # saturate=True names the same (only) instruction
    assert np.array_equal(h100.cvt(x, fmt, saturate=True, **kw), want)


@pytest.mark.parametrize("name", sorted(SMALL_FP8))
def test_fp8_to_float16_every_input(name):
    want = _load("conv_small.npz")[name]
    dt, kw = SMALL_FP8[name]
    x = np.arange(256, dtype=np.uint16).astype(np.uint8).view(dt)
    got = h100.cvt(x, "float16", **kw)
    assert got.dtype == np.uint16
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:8]


# -- forms without a table: the PTX definition on a recorded table -------------

@pytest.mark.parametrize("fmt,ptx", [("float16", "f16"),
                                     ("bfloat16", "bf16")])
def test_toward_zero_relu_and_satfinite(fmt, ptx):
    """cvt.rz.relu and cvt.rz.satfinite have no table: .relu is the rz
    table's code of +0 for every negative input (NaN keeps 0x7fff),
    .satfinite the rz table with +-inf replaced by +-max (finite overflow
    is already +-max toward zero)."""
    z = _load("conv_f32_f16_bf16.npz")
    starts, codes = z[f"f32_{ptx}_rz_ptx__starts"], z[f"f32_{ptx}_rz_ptx__codes"]
    s = starts.astype(np.int64)
    bits = np.unique(np.concatenate([s, s - 1]).clip(0, 0xffffffff)) \
        .astype(np.uint32)
    x = bits.view(np.float32)
    rz = _lookup(starts, codes, bits)
    neg = (bits >> 31).astype(bool) & ~np.isnan(x)
    want_relu = np.where(neg, _lookup(starts, codes, np.uint32([0]))[0], rz)
    assert np.array_equal(h100.cvt(x, fmt, rounding="rz", relu=True),
                          want_relu)
    top = {"float16": 0x7bff, "bfloat16": 0x7f7f}[fmt]
    want_sat = np.where(np.isposinf(x), top,
                        np.where(np.isneginf(x), top | 0x8000, rz))
    assert np.array_equal(h100.cvt(x, fmt, rounding="rz", saturate=True),
                          want_sat)


# -- arguments ------------------------------------------------------------------

def test_shapes_and_dtypes():
    x = np.float32([[1.0, -3.5], [np.nan, 1e9]])
    out = h100.cvt(x, "e4m3")
    assert out.shape == (2, 2) and out.dtype == np.uint8
    assert out.tolist() == [[0x38, 0xc6], [0x7f, 0x7e]]
    assert h100.cvt(np.float32(2.0), "bf16").shape == ()
    assert h100.cvt(np.zeros(0, np.float32), "fp16").shape == (0,)
    big_endian = np.float32([1.0, 2.0]).astype(">f4")
    assert h100.cvt(big_endian, "e5m2").tolist() == [0x3c, 0x40]
    assert h100.cvt(np.float32([1.0]), lp.get_format("float8_e5m2")) \
        .tolist() == [0x3c]


@pytest.mark.parametrize("x", [np.float64([1.0]), [1.0], 1.0,
                               np.int32([1]),
                               np.float32([1.0]).astype(ml_dtypes.bfloat16)])
def test_unsupported_source_is_type_error(x):
    with pytest.raises(TypeError, match="dtype"):
        h100.cvt(x, "e4m3")


@pytest.mark.parametrize("src,fmt,kw,match", [
    (np.float32, "float8_e4m3fn", {"rounding": "toward_zero"}, "rounding"),
    (np.float32, "float8_e5m2", {"rounding": "stochastic"}, "rounding"),
    (np.float16, "float8_e4m3fn", {"rounding": "rd"}, "rounding"),
    (np.float32, "float16", {"rounding": "nearest_away"}, "rounding"),
    (np.float32, "float16", {"rounding": "to_odd"}, "rounding"),
    (np.float32, "float16", {"rounding": "ru", "relu": True}, "relu"),
    (np.float32, "bfloat16", {"rounding": "rd", "saturate": True},
     "saturate"),
    (np.float16, "bfloat16", {}, "fmt"),
    (np.float16, "float16", {}, "fmt"),
    (np.float32, "float8_e4m3fnuz", {}, "fmt"),
    (np.float32, "int8", {}, "fmt"),
    (np.float32, "float32", {}, "fmt"),
    (ml_dtypes.float8_e4m3fn, "bfloat16", {}, "fmt"),
    (ml_dtypes.float8_e4m3fn, "float16", {"saturate": True}, "saturate"),
    (np.float32, "float16", {"rounding": "sideways"}, "rounding"),
])
def test_forms_the_instruction_lacks(src, fmt, kw, match):
    x = np.zeros(3, np.float32).astype(src)
    with pytest.raises(ValueError, match=match):
        h100.cvt(x, fmt, **kw)


@pytest.mark.parametrize("kw,match", [({"saturate": 1}, "saturate"),
                                      ({"relu": "yes"}, "relu"),
                                      ({"rounding": 0}, "rounding")])
def test_wrong_kind_of_option(kw, match):
    with pytest.raises(TypeError, match=match):
        h100.cvt(np.float32([1.0]), "fp16", **kw)


def test_unknown_format_name():
    with pytest.raises(ValueError):
        h100.cvt(np.float32([1.0]), "e9m9")
