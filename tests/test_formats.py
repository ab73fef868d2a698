"""Format objects: derived properties against the specs' literal numbers
(IEEE 754, OCP OFP8, OCP MX) and against the independent reference."""
import math
import pickle
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec.reference import ref_decode, ref_limits

FLOATS = {n: f for n, f in lp.formats().items() if f.kind == "float"}
INTS = {n: f for n, f in lp.formats().items() if f.kind == "int"}

# name: (nbits, max, min_normal, min_subnormal, eps, max_code, nan, inf)
SPEC = {
    "float32": (32, (2 - 2**-23) * 2**127, 2**-126, 2**-149, 2**-23,
                0x7F7FFFFF, 0x7FC00000, 0x7F800000),
    "tfloat32": (19, (2 - 2**-10) * 2**127, 2**-126, 2**-136, 2**-10,
                 0x3FBFF, 0x3FE00, 0x3FC00),
    "bfloat16": (16, (2 - 2**-7) * 2**127, 2**-126, 2**-133, 2**-7,
                 0x7F7F, 0x7FC0, 0x7F80),
    "float16": (16, 65504, 2**-14, 2**-24, 2**-10, 0x7BFF, 0x7E00, 0x7C00),
    "float8_e5m2": (8, 57344, 2**-14, 2**-16, 0.25, 0x7B, 0x7E, 0x7C),
    "float8_e4m3fn": (8, 448, 2**-6, 2**-9, 0.125, 0x7E, 0x7F, None),
    "float8_e4m3": (8, 240, 2**-6, 2**-9, 0.125, 0x77, 0x7C, 0x78),
    "float8_e3m4": (8, 15.5, 0.25, 2**-6, 2**-4, 0x6F, 0x78, 0x70),
    "float8_e3m4fn": (8, 30, 0.25, 2**-6, 2**-4, 0x7E, 0x7F, None),
    "float8_e4m3fnuz": (8, 240, 2**-7, 2**-10, 0.125, 0x7F, 0x80, None),
    "float8_e5m2fnuz": (8, 57344, 2**-15, 2**-17, 0.25, 0x7F, 0x80, None),
    "float8_e4m3b11fnuz": (8, 30, 2**-10, 2**-13, 0.125, 0x7F, 0x80, None),
    "float6_e3m2fn": (6, 28, 0.25, 2**-4, 0.25, 0x1F, None, None),
    "float6_e2m3fn": (6, 7.5, 1.0, 0.125, 0.125, 0x1F, None, None),
    "float4_e2m1fn": (4, 6, 1.0, 0.5, 0.5, 0x7, None, None),
    "float8_e8m0fnu": (8, 2.0**127, 2**-127, 2**-127, 1.0, 0xFE, 0xFF, None),
    "float8_e5m3fnu": (8, 114688.0, 2**-14, 2**-17, 0.125, 0xFE, 0xFF, None),
}


def test_every_builtin_has_spec_literals():
    assert set(SPEC) == set(FLOATS)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_spec_literals(name):
    f = lp.get_format(name)
    nbits, mx, mn, ms, eps, max_code, nan, inf = SPEC[name]
    assert f.nbits == nbits
    assert f.max == mx
    assert f.min_normal == mn
    assert f.min_subnormal == ms
    assert f.eps == eps
    assert f.max_code == max_code
    assert f.nan_code == nan
    assert f.inf_code == inf
    assert f.value(max_code) == mx


@pytest.mark.parametrize("name", sorted(FLOATS))
def test_derived_match_reference(name):
    f = lp.get_format(name)
    lim = ref_limits(f)
    assert f.max == lim["max"]
    assert f.min_normal == lim["min_normal"]
    assert f.min_subnormal == lim["min_subnormal"]
    assert f.eps == lim["eps"]
    assert f.max_code == lim["max_code"]
    assert f.nan_code == lim["nan_code"]
    assert f.inf_code == lim["inf_code"]
    assert f.emin == lim["emin"] and f.emax == lim["emax"]


ML = [n for n in FLOATS if hasattr(ml_dtypes, n) and n != "float32"]


@pytest.mark.parametrize("name", ML)
def test_limits_match_ml_dtypes_finfo(name):
    f = lp.get_format(name)
    fi = ml_dtypes.finfo(getattr(ml_dtypes, name))
    assert f.max == float(fi.max)
    assert f.min_normal == float(fi.smallest_normal)
    assert f.min_subnormal == float(fi.smallest_subnormal)
    assert f.eps == float(fi.eps)


def test_e4m3fn_max_worked_example():
    f = lp.get_format("e4m3")
    assert f.describe(0x7E).startswith(
        "float8_e4m3fn 0x7e = 0b0_1111_110: sign +, exponent field 15")
    assert "value 448" in f.describe(0x7E)
    assert "nan" in f.describe(0x7F)
    assert "subnormal" in f.describe(0x01)
    assert "value 0.001953125 (2^-9)" in f.describe(0x01)
    assert "value -0" in f.describe(0x80)


def test_describe_specials():
    assert "inf" in lp.get_format("e5m2").describe(0x7C)
    assert "nan" in lp.get_format("float8_e4m3fnuz").describe(0x80)
    assert "value 2^" not in lp.get_format("fp4").describe(0x7)
    assert "value 6" in lp.get_format("fp4").describe(0x7)
    e8 = lp.get_format("e8m0").describe(0)
    assert "(2^-127)" in e8 and "normal" in e8
    assert lp.get_format("int4").describe(-8) == \
        "int4 -8 = 0b1000: integer, value -8"
    with pytest.raises(ValueError, match="not a code of float4_e2m1fn"):
        lp.get_format("fp4").describe(16)
    with pytest.raises(ValueError, match="int4"):
        lp.get_format("int4").describe(8)


@pytest.mark.parametrize("name", sorted(n for n, f in FLOATS.items()
                                        if f.nbits <= 19))
def test_values_are_reference_values(name):
    f = lp.get_format(name)
    v = f.values()
    assert v.dtype == np.float64
    assert np.all(np.diff(v) > 0)
    if f.nbits <= 16:
        from lowprec.reference import ref_values
        ref = np.array([float(x) for x in ref_values(f)])
        np.testing.assert_array_equal(v, ref)
    assert v[-1] == f.max and (not f.signed or v[0] == -f.max)


def test_values_refuses_float32():
    with pytest.raises(ValueError, match="values"):
        lp.get_format("fp32").values()


def test_int_formats():
    i8 = lp.get_format("int8")
    assert (i8.min, i8.max, i8.code_dtype) == (-128, 127, np.int8)
    assert lp.IntFormat(8, narrow=True).min == -127
    assert lp.get_format("int8_narrow").min == -127
    assert (lp.get_format("uint4").min, lp.get_format("uint4").max) == (0, 15)
    assert (lp.get_format("int2").min, lp.get_format("int2").max) == (-2, 1)
    assert lp.get_format("uint8").code_dtype == np.uint8
    np.testing.assert_array_equal(lp.get_format("int4").values(),
                                  np.arange(-8, 8))
    with pytest.raises(ValueError, match="narrow only for signed"):
        lp.IntFormat(8, signed=False, narrow=True)
    with pytest.raises(ValueError, match="2..16"):
        lp.IntFormat(1)


def test_lookup_by_name_alias_dtype():
    assert lp.get_format("e4m3") is lp.get_format("float8_e4m3fn")
    assert lp.get_format("fp16") is lp.get_format(np.float16)
    assert lp.get_format("half").name == "float16"
    assert lp.get_format(ml_dtypes.float8_e4m3fn).name == "float8_e4m3fn"
    assert lp.get_format(ml_dtypes.bfloat16).name == "bfloat16"
    assert lp.get_format(np.dtype(ml_dtypes.int4)).name == "int4"
    assert lp.get_format(np.int8).name == "int8"
    assert lp.get_format(np.float32).name == "float32"
    f = lp.FloatFormat(4, 3)
    assert lp.get_format(f) is f
    with pytest.raises(ValueError, match="unknown format 'e9m9'"):
        lp.get_format("e9m9")
    with pytest.raises(ValueError, match="float64 has no lowprec format"):
        lp.get_format(np.float64)
    with pytest.raises(TypeError, match="cannot make a format"):
        lp.get_format(3.5)


def test_custom_formats_and_equality():
    # IEEE P3109 binary8p4: bias 8, max 224 = 0b0_1111_110
    p3109 = lp.FloatFormat(4, 3, bias=8, infs=True, nans="negzero",
                           negzero=False)
    assert p3109.nan_code == 0x80 and p3109.inf_code == 0x7F
    assert p3109.max_code == 0x7E and p3109.max == 224
    assert lp.FloatFormat(4, 3, infs=False, nans="top") == \
        lp.get_format("e4m3")
    assert hash(lp.FloatFormat(5, 2)) == hash(lp.get_format("e5m2"))
    assert repr(p3109) == ("FloatFormat(4, 3, bias=8, nans='negzero', "
                           "negzero=False)")
    assert repr(lp.get_format("e5m2")) == "FloatFormat('float8_e5m2')"
    f = pickle.loads(pickle.dumps(lp.get_format("e4m3")))
    assert f == lp.get_format("e4m3") and f.max == 448
    with pytest.raises(dataclass_error()):
        lp.get_format("e4m3").mbits = 2


def dataclass_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("kwargs, match", [
    (dict(ebits=0, mbits=3), "ebits"),
    (dict(ebits=9, mbits=3), "ebits"),
    (dict(ebits=4, mbits=24), "mbits"),
    (dict(ebits=8, mbits=0), "nans='ieee' needs mbits"),
    (dict(ebits=4, mbits=3, nans="negzero"), "negzero=False"),
    (dict(ebits=4, mbits=3, nans="bogus"), "nans must be one of"),
    (dict(ebits=8, mbits=23, signed=True, bias=127, nans="top",
          infs=False), None),
])
def test_invalid_formats(kwargs, match):
    if match is None:
        lp.FloatFormat(**kwargs)
        return
    with pytest.raises(ValueError, match=match):
        lp.FloatFormat(**kwargs)


@pytest.mark.parametrize("name", sorted(FLOATS))
def test_value_matches_reference_for_sampled_codes(name):
    f = lp.get_format(name)
    rng = np.random.default_rng(1)
    n = 1 << f.nbits
    sample = range(n) if n <= 4096 else rng.integers(0, n, 4096)
    for c in sample:
        r = ref_decode(f, int(c))
        v = f.value(int(c))
        if isinstance(r, Fraction):
            assert Fraction(v) == r and not (v == 0 and math.copysign(1, v) < 0)
        elif math.isnan(r):
            assert math.isnan(v)
        else:
            assert v == r and math.copysign(1, v) == math.copysign(1, r)


@pytest.mark.parametrize("fmt,bad,exc", [
    ("e4m3", 256, ValueError), ("e4m3", -1, ValueError),
    ("e4m3", 1.5, TypeError), ("e4m3", "1", TypeError),
    ("int4", 8, ValueError), ("int4", -9, ValueError),
    ("int8", 2.0, TypeError)])
def test_value_checks_its_code(fmt, bad, exc):
    with pytest.raises(exc, match="code"):
        lp.get_format(fmt).value(bad)
