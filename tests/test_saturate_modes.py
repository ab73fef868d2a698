"""The three overflow policies (API.md section 9): saturate=False /
"ovfinf" (section 2's rule), True / "satfinite" (overflow and infinities
to +-max), "satpropagate" (finite overflow to +-max, infinities kept, NaN
where the format has no infinity).  Every backend and kernel path is
compared with the exact reference (lowprec.reference, Fractions) and with
the literal codes of the specs."""
import functools

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec._clib import ffi, lib
from lowprec.convert import make_opts
from lowprec.reference import ref_encode, ref_encode_array

from helpers import DETERMINISTIC, FLOAT_FORMATS

POLICIES = ("ovfinf", "satfinite", "satpropagate")
SAME_AS = {False: "ovfinf", True: "satfinite", np.bool_(False): "ovfinf",
           np.bool_(True): "satfinite"}
# formats of every family: IEEE-like with inf, OCP without inf, FNUZ (one
# NaN), no NaN at all, unsigned, E8M0 (no zero), 16 and 32 bits
NAMES = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float8_e4m3fnuz",
         "float8_e5m2fnuz", "float6_e3m2fn", "float4_e2m1fn",
         "float8_e5m3fnu", "float8_e8m0fnu", "float16", "bfloat16",
         "tfloat32", "float32"]


def _inputs(f):
    """Values around max (inside, between max and the overflow threshold,
    beyond it), huge values, infinities, NaN and a few ordinary values;
    non-negative only for unsigned formats, no NaN where there is none."""
    mx = float(f.max)
    gap = mx - float(f.value(int(f.struct.max_code) - 1))
    base = [mx, mx + gap / 4, mx + gap / 2, mx + gap / 2 * (1 + 2**-20),
            mx + gap, mx + 3 * gap, mx * 64, 1.0, 0.75, np.inf]
    if f.nbits < 32:
        base.append(1e300)
    if f.has_zero:
        base.append(0.0)
    x = np.array(base + ([-v for v in base] if f.signed else []))
    if f.nan_code is not None:
        x = np.append(x, np.nan)
    return x


def _expected(f, x, mode, policy, seed=None):
    return ref_encode_array(f, x, rounding=mode, saturate=policy, seed=seed)


@pytest.mark.parametrize("backend", ["c", "numba"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", NAMES)
def test_every_mode_against_reference(name, policy, backend):
    """float64 inputs (the general path) and float32 / float16 / bfloat16
    inputs where they hold the value exactly (the float32, shift and F16C
    paths), every deterministic mode and stochastic rounding."""
    f = lp.get_format(name)
    x = _inputs(f)
    for mode in DETERMINISTIC + ("stochastic",):
        seed = 5 if mode == "stochastic" else None
        want = _expected(f, x, mode, policy, seed)
        for dtype in (np.float64, np.float32, np.float16,
                      ml_dtypes.bfloat16):
            with np.errstate(over="ignore", invalid="ignore"):
                xd = x.astype(dtype)
            keep = (xd.astype(np.float64) == x) | np.isnan(x)
            if not keep.any():
                continue
            got = lp.encode(xd[keep], f, rounding=mode, saturate=policy,
                            seed=seed, backend=backend)
            sub_want = _expected(f, x[keep], mode, policy, seed) \
                if mode == "stochastic" else want[keep]
            np.testing.assert_array_equal(
                got, sub_want, err_msg=f"{name} {mode} {policy} {dtype}")


@pytest.mark.parametrize("name", NAMES)
def test_bools_are_the_named_policies(name):
    f = lp.get_format(name)
    x = _inputs(f)
    for flag, policy in SAME_AS.items():
        for mode in ("nearest_even", "toward_zero", "toward_positive"):
            np.testing.assert_array_equal(
                lp.encode(x, f, rounding=mode, saturate=flag),
                lp.encode(x, f, rounding=mode, saturate=policy))
            np.testing.assert_array_equal(
                lp.quantize(x, f, rounding=mode, saturate=flag),
                lp.quantize(x, f, rounding=mode, saturate=policy))


@pytest.mark.parametrize("name", NAMES)
def test_satpropagate_is_satfinite_but_for_infinities(name):
    """The definition: finite inputs as satfinite, infinite ones as
    ovfinf."""
    f = lp.get_format(name)
    x = _inputs(f)
    inf = np.isinf(x)
    for mode in DETERMINISTIC:
        prop = lp.encode(x, f, rounding=mode, saturate="satpropagate")
        fin = lp.encode(x, f, rounding=mode, saturate="satfinite")
        ovf = lp.encode(x, f, rounding=mode, saturate="ovfinf")
        np.testing.assert_array_equal(prop[~inf], fin[~inf])
        np.testing.assert_array_equal(prop[inf], ovf[inf])


# (format, input, ovfinf, satfinite, satpropagate): the specs' codes
# (IEEE 754 binary16, OCP OFP8 E4M3 / E5M2, FNUZ, OCP MX FP4 / E8M0)
LITERALS = [
    ("float16", 65520.0, 0x7C00, 0x7BFF, 0x7BFF),     # RNE threshold
    ("float16", -1e6, 0xFC00, 0xFBFF, 0xFBFF),
    ("float16", np.inf, 0x7C00, 0x7BFF, 0x7C00),
    ("float16", -np.inf, 0xFC00, 0xFBFF, 0xFC00),
    ("float8_e5m2", 61440.0, 0x7C, 0x7B, 0x7B),       # 57344 + half a gap
    ("float8_e5m2", np.inf, 0x7C, 0x7B, 0x7C),
    ("float8_e4m3fn", 465.0, 0x7F, 0x7E, 0x7E),       # past 448 + half a gap
    ("float8_e4m3fn", -np.inf, 0x7F, 0xFE, 0x7F),     # NaN: no infinity
    ("float8_e4m3fnuz", 1e4, 0x80, 0x7F, 0x7F),       # the single NaN
    ("float8_e4m3fnuz", np.inf, 0x80, 0x7F, 0x80),
    ("float4_e2m1fn", 100.0, 0x7, 0x7, 0x7),          # no inf, no NaN
    ("float4_e2m1fn", -np.inf, 0xF, 0xF, 0xF),
    ("float8_e8m0fnu", np.inf, 0xFF, 0xFE, 0xFF),
    ("bfloat16", np.inf, 0x7F80, 0x7F7F, 0x7F80),
    ("bfloat16", 3.4e38, 0x7F80, 0x7F7F, 0x7F7F),
]


@pytest.mark.parametrize("backend", ["c", "numba"])
@pytest.mark.parametrize("name, x, c_ovf, c_fin, c_prop", LITERALS)
def test_spec_codes(name, x, c_ovf, c_fin, c_prop, backend):
    codes = (c_ovf, c_fin, c_prop)
    for policy, want in zip(POLICIES, codes):
        for dtype in (np.float64, np.float32):
            got = lp.encode(np.array([x], dtype), name, saturate=policy,
                            backend=backend)
            assert int(got[0]) == want, (name, x, policy, dtype)


def test_directed_modes_under_satpropagate():
    """Finite overflow gives +-max whatever the direction (ovfinf would
    give inf for toward_positive), infinities stay."""
    x = np.array([1e6, -1e6, np.inf, -np.inf], np.float32)
    for mode in DETERMINISTIC:
        got = lp.encode(x, "float8_e5m2", rounding=mode,
                        saturate="satpropagate")
        np.testing.assert_array_equal(got, [0x7B, 0xFB, 0x7C, 0xFC])
    ovf = lp.encode(x, "float8_e5m2", rounding="toward_positive")
    np.testing.assert_array_equal(ovf, [0x7C, 0xFB, 0x7C, 0xFC])


def test_nan_and_integers_unaffected():
    for policy in POLICIES:
        assert lp.encode(np.array([np.nan]), "e4m3",
                         saturate=policy)[0] == 0x7F
        np.testing.assert_array_equal(
            lp.encode(np.array([300.0, -np.inf, np.inf]), "int8",
                      saturate=policy), [127, -128, 127])


def _flags(fmt, policy, cls, sign=0, exp=0, sig=0):
    f = lp.get_format(fmt)
    o = make_opts(f, "nearest_even", policy, True, 0, None, None)
    err, flags = ffi.new("int *"), ffi.new("int *")
    code = lib.lp_round_flags(f.struct, o, cls, sign, exp, sig, 0, err,
                              flags)
    return code, flags[0]


def test_flags():
    """Infinite inputs: INVALID where the result is not an infinity
    (satfinite, or a format without one); finite overflow: OVERFLOW |
    INEXACT under every policy."""
    inv, ovf = lib.LP_FLAG_INVALID, lib.LP_FLAG_OVERFLOW | \
        lib.LP_FLAG_INEXACT
    assert _flags("e5m2", "ovfinf", 1) == (0x7C, 0)
    assert _flags("e5m2", "satpropagate", 1) == (0x7C, 0)
    assert _flags("e5m2", "satfinite", 1) == (0x7B, inv)
    assert _flags("e4m3", "satpropagate", 1) == (0x7F, inv)
    for policy, code in zip(POLICIES, (0x7C, 0x7B, 0x7B)):
        # 2^16 = 65536 > 57344 + half a gap: overflow
        assert _flags("e5m2", policy, 0, 0, 16, 1) == (code, ovf)


def test_other_entry_points():
    """lowprec.jit, scaled_matmul's output stage and Accumulator take the
    policy names too."""
    enc = lp.jit.encoder("e5m2", saturate="satpropagate")
    assert enc(np.float32(1e6)) == 0x7B and enc(np.float32(np.inf)) == 0x7C
    assert enc(1e6) == 0x7B and enc(-np.inf) == 0xFC
    q = lp.jit.quantizer("e5m2", saturate="satfinite")
    assert q(np.inf) == 57344.0
    a = np.full((2, 4), 200.0, np.float32)
    b = np.full((4, 3), 100.0, np.float32)     # every product 80000
    for policy, code in zip(POLICIES, (0x7C, 0x7B, 0x7B)):
        got = lp.scaled_matmul(a, b, out_format="e5m2", saturate=policy)
        assert np.all(got == code), (policy, got)
    acc = lp.Accumulator("e5m2", saturate="satpropagate")
    assert acc.saturate == "satpropagate"
    assert "satpropagate" in repr(acc)
    assert lp.Accumulator("e5m2", saturate="satfinite") == \
        lp.Accumulator("e5m2", saturate=True)
    assert lp.Accumulator("e5m2", saturate="ovfinf").saturate is False
    r = lp.scaled_matmul(a, b, accumulate=acc)
    assert np.all(r == 57344.0)
    r = lp.scaled_matmul(a, b, accumulate=lp.Accumulator("e5m2"))
    assert np.all(np.isinf(r))


@pytest.mark.parametrize("entry", ["encode", "quantize"])
def test_bad_policies(entry):
    fn = functools.partial(getattr(lp, entry), np.ones(3), "e4m3")
    for bad in ("sat", "SATFINITE", "no", "", "True"):
        with pytest.raises(ValueError, match="saturate"):
            fn(saturate=bad)
    for bad in (1, 0, None, 1.0, np.int8(1), np.array([True]), b"ovfinf"):
        with pytest.raises(TypeError, match="saturate"):
            fn(saturate=bad)
    with pytest.raises(ValueError, match="saturate"):
        ref_encode(lp.get_format("e4m3"), 1.0, saturate="no")


def test_testing_helpers_take_only_bools():
    """The boolean options of lowprec.testing are as strict as the rest
    (audit of every boolean option of the API)."""
    pytest.importorskip("hypothesis")
    from lowprec import testing
    for bad in (1, "yes", None, np.array([True])):
        with pytest.raises(TypeError, match="finite"):
            testing.codes("e4m3", finite=bad)
        for name in ("allow_nan", "allow_infinity", "signed"):
            with pytest.raises(TypeError, match=name):
                testing.boundary_floats("e4m3", **{name: bad})
    testing.codes("e4m3", finite=np.bool_(True))
    testing.boundary_floats("e4m3", allow_nan=np.bool_(True))
