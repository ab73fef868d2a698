"""The rounding core's contract: one enum of rounding modes, flags and
layouts shared by C (csrc/lowprec.h), Numba (lowprec/_numba_core.py) and
the Python name table; the IEEE 754 exception flags of lp_round_flags
against an independent rule computed with Fractions; Numba's core gives
the same (code, error, flags)."""
import functools
import math
import os
import re
import zlib
from fractions import Fraction

import numba
import numpy as np
import pytest

import lowprec as lp
from lowprec import _numba_core as core
from lowprec._clib import ffi, lib
from lowprec.convert import ROUNDING, ROUNDING_NAMES, make_opts
from lowprec.reference import ref_decode, ref_values

HEADER = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "csrc", "lowprec.h")

MODES = {"nearest_even": lib.LP_RNE, "nearest_away": lib.LP_RNA,
         "toward_zero": lib.LP_RZ, "toward_positive": lib.LP_RU,
         "toward_negative": lib.LP_RD, "to_odd": lib.LP_RO}
INEXACT, UNDERFLOW, OVERFLOW, INFINITE, INVALID = 1, 2, 4, 8, 16


def c_enum(name):
    """{member: value} of `enum name { ... }` in the public header."""
    with open(HEADER) as fh:
        text = fh.read()
    body = re.search(r"enum\s+%s\s*\{(.*?)\}" % name, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"(LP_\w+)\s*=\s*(-?\d+)", body)}


# -- one enum, three places ------------------------------------------------

# C enum, prefix of its members, prefix of the Numba constants.
ENUMS = [("lp_rounding", "LP_", ""), ("lp_flag", "LP_FLAG_", "FLAG_"),
         ("lp_error", "LP_ERR_", "ERR_"), ("lp_layout", "LP_LAYOUT_",
                                           "LAYOUT_"),
         ("lp_kind", "LP_", "KIND_")]


@pytest.mark.parametrize("enum,c_prefix,nb_prefix", ENUMS,
                         ids=[e[0] for e in ENUMS])
def test_enum_c_header_library_numba_agree(enum, c_prefix, nb_prefix):
    members = c_enum(enum)
    assert members, enum
    for name, value in members.items():
        assert getattr(lib, name) == value, name
        nb_name = nb_prefix + name[len(c_prefix):]
        assert getattr(core, nb_name) == value, nb_name
    # and Numba has no member the header lacks
    nb_members = {n for n in dir(core)
                  if n.startswith(nb_prefix) and n.isupper()
                  and isinstance(getattr(core, n), int)}
    if nb_prefix:
        assert nb_members == {nb_prefix + n[len(c_prefix):]
                              for n in members}


def test_rounding_names_cover_exactly_the_c_modes():
    modes = c_enum("lp_rounding")
    assert set(ROUNDING.values()) == set(modes.values())
    assert sorted(ROUNDING[n] for n in ROUNDING_NAMES) \
        == sorted(modes.values())


def test_flags_have_softfloat_values_apart_from_errors():
    assert c_enum("lp_flag") == {
        "LP_FLAG_INEXACT": 1, "LP_FLAG_UNDERFLOW": 2, "LP_FLAG_OVERFLOW": 4,
        "LP_FLAG_INFINITE": 8, "LP_FLAG_INVALID": 16}
    assert "LP_FLAG_INEXACT" not in c_enum("lp_error")


def test_format_fields_of_numba_match_the_struct():
    st = lp.get_format("bfloat16").struct
    for name in core.FORMAT_FIELDS:
        getattr(st, name)                       # every field exists
    o = ffi.new("lp_opts *")
    for name in core.OPTS_FIELDS:
        getattr(o, name)


# -- layout ----------------------------------------------------------------

LAYOUTS = {"float32": "binary32", "float16": "binary16",
           "bfloat16": "binary32_trunc", "tfloat32": "binary32_trunc",
           "float8_e4m3fn": "float", "float8_e5m2": "float",
           "float4_e2m1fn": "float", "float8_e8m0fnu": "nozero",
           "int8": "int", "uint4": "int"}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout(name):
    assert lp.get_format(name).layout == LAYOUTS[name]


def test_layout_needs_every_ieee_property():
    F = lp.FloatFormat
    assert F(5, 10).layout == "binary16"
    assert F(5, 10, infs=False).layout == "float"
    assert F(5, 10, bias=14).layout == "float"
    assert F(5, 10, signed=False).layout == "float"
    assert F(8, 7, nans="top").layout == "float"
    assert F(8, 7, negzero=False, nans="negzero").layout == "float"
    assert F(8, 3).layout == "binary32_trunc"
    assert F(4, 3, subnormals=False).layout == "nozero"
    with pytest.raises(AttributeError):
        lp.get_format("bfloat16").layout = "float"


def test_layout_and_f32_range_pick_the_paths():
    from lowprec import _numba_backend as nb
    o = make_opts(lp.get_format("bfloat16"), "nearest_even", False, True,
                  0, None, None)
    paths = {n: nb.encode_path(lp.get_format(n), lib.LP_F32, o)
             for n in ("bfloat16", "tfloat32", "float8_e4m3fn",
                       "float8_e8m0fnu", "float32")}
    assert paths["bfloat16"] == paths["tfloat32"] == "shift"
    assert paths["float8_e4m3fn"] == paths["float32"] == "float32"
    assert paths["float8_e8m0fnu"] == "general"      # emin = -127


def test_format_ieee_helper():
    for eb, mb, name in [(8, 23, "float32"), (5, 10, "float16")]:
        f = ffi.new("lp_format *")
        assert lib.lp_format_ieee(f, eb, mb) == 0
        ref = lp.get_format(name).struct
        for field in core.FORMAT_FIELDS:
            assert getattr(f, field) == getattr(ref, field), field
    o = ffi.new("lp_opts *")
    lib.lp_opts_default(o)
    assert (o.rounding, o.saturate, o.keep_subnormals, o.rbits, o.seed,
            o.zero_point, o.tininess_before) == (lib.LP_RNE, 0, 1, 64, 0,
                                                 0, 0)


# -- flags against an independent rule --------------------------------------

def round_unbounded(x, p, mode, bias=0):
    """x (Fraction, non-zero) rounded to p significant bits with an
    unbounded exponent range (p = None: to an integer).  to_odd looks at
    the lower neighbour's code: its last significand bit, or with p = 1
    (no mantissa bits) its exponent field e + bias."""
    a = abs(x)
    e = 0
    if p is None:
        q = 0
    else:
        e = a.numerator.bit_length() - a.denominator.bit_length()
        if Fraction(2) ** e > a:
            e -= 1
        q = e - (p - 1)
    scaled = a / Fraction(2) ** q
    fl = math.floor(scaled)
    frac = scaled - fl
    neg = x < 0
    up = {"nearest_even": frac > Fraction(1, 2)
          or (frac == Fraction(1, 2) and fl % 2 == 1),
          "nearest_away": frac >= Fraction(1, 2),
          "toward_zero": False,
          "toward_positive": frac > 0 and not neg,
          "toward_negative": frac > 0 and neg,
          "to_odd": frac > 0 and (fl if p != 1 else e + bias) % 2 == 0,
          }[mode]
    r = (fl + up) * Fraction(2) ** q
    return -r if neg else r


def expected_flags(fmt, x, code, mode, tininess_before=False, zp=0):
    """The flags IEEE 754 gives rounding the finite x into fmt, from x,
    the result code and the format's limits alone."""
    if fmt.kind == "int":
        r = round_unbounded(x, None, mode) + zp if x != 0 else Fraction(zp)
        if not fmt.min <= r <= fmt.max:
            return INVALID
        return INEXACT if r != x + zp else 0
    if x == 0:
        return 0 if fmt.has_zero else INVALID
    val = ref_decode(fmt, code)
    exact = isinstance(val, Fraction) and val == x
    exact = exact or (val == 0 and x == 0)
    flags = 0 if exact else INEXACT
    rx = round_unbounded(x, fmt.mbits + 1, mode, fmt.struct.bias)
    if abs(rx) > Fraction(fmt.max):
        flags |= OVERFLOW
    two_emin = Fraction(2) ** fmt.emin
    tiny = abs(x) < two_emin if tininess_before else abs(rx) < two_emin
    if tiny and not exact:
        flags |= UNDERFLOW
    return flags


def dyadic(v):
    """Fraction 2-adic v != 0 as (sign, exp, sig) with sig < 2^64."""
    sign = int(v < 0)
    a = abs(v)
    den = a.denominator
    assert den & (den - 1) == 0
    exp = -(den.bit_length() - 1)
    sig = a.numerator
    while sig >= 1 << 64:
        assert sig & 1 == 0
        sig >>= 1
        exp += 1
    return sign, exp, sig


@functools.lru_cache(maxsize=None)
def _values(fmt):
    return tuple(sorted(Fraction(v) for v in ref_values(fmt) if v != 0))


def samples(fmt, rng, count=600):
    """Values where rounding breaks: codes and points between neighbours
    (midpoints, +-1/64 gap), around 2^emin, max and the overflow
    threshold, far below the smallest subnormal and far above max."""
    vals = _values(fmt)
    out = set()
    top = Fraction(fmt.max)
    gap_top = top - vals[-2] if len(vals) > 1 else top
    for _ in range(count):
        i = int(rng.integers(0, len(vals) - 1))
        lo, hi = vals[i], vals[i + 1]
        t = Fraction(int(rng.integers(0, 129)), 128)
        out.add(lo + (hi - lo) * t)
        out.add(lo + (hi - lo) / 2 + (hi - lo) * Fraction(
            int(rng.integers(-2, 3)), 64))
    small = min(v for v in vals if v > 0)
    for k in range(-6, 7):
        out.add(top + gap_top * Fraction(k, 4))
        out.add(Fraction(2) ** fmt.emin + small * Fraction(k, 8))
        out.add(small * Fraction(8 + k, 16))
    out |= {Fraction(2) ** (fmt.emin - 40), top * 2 ** 20,
            Fraction(2) ** fmt.emin * (1 - Fraction(1, 2 ** 30))}
    out = sorted(v for v in out if v > 0)
    signs = [1, -1] if fmt.signed else [1]
    return [s * v for v in out for s in signs]


def c_round(fmt, o, cls, sign, exp, sig, index=0):
    err = ffi.new("int *")
    flags = ffi.new("int *")
    code = lib.lp_round_flags(fmt.struct, o, cls, sign, exp, sig, index,
                              err, flags)
    return code, err[0], flags[0]


@numba.njit(cache=False)
def _nb_round(F, O, cls, sign, exp, sig, rnd):
    return core.lp_round_any_flags(F, O, cls, sign, exp, sig, rnd)


def nb_round(fmt, o, cls, sign, exp, sig, index=0):
    F = tuple(int(v) for v in core.format_params(fmt))
    O = tuple(int(v) for v in core.opts_params(
        o.rounding, o.saturate, o.keep_subnormals, o.rbits, o.zero_point,
        o.tininess_before))
    rnd = lib.lp_random(o.seed, index) if o.rounding == lib.LP_SR else 0
    code, err, flags = _nb_round(F, O, np.int64(cls), np.int64(sign),
                                 np.int64(exp), np.uint64(sig),
                                 np.uint64(rnd))
    return int(code), int(err), int(flags)


FLAG_FORMATS = ["float8_e4m3fn", "float8_e5m2", "float16", "bfloat16",
                "float6_e2m3fn", "float4_e2m1fn", "float8_e4m3fnuz",
                "float8_e8m0fnu"]


@pytest.mark.parametrize("tininess", ["after", "before"])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", FLAG_FORMATS)
def test_flags_follow_ieee_rules(name, mode, tininess):
    fmt = lp.get_format(name)
    rng = np.random.default_rng(zlib.crc32(f"{name} {mode}".encode()))
    before = tininess == "before"
    for saturate in (False, True):
        o = make_opts(fmt, mode, saturate, True, 0, None, None)
        o.tininess_before = before
        for x in samples(fmt, rng, 60):
            sign, exp, sig = dyadic(x)
            code, err, flags = c_round(fmt, o, 0, sign, exp, sig)
            assert err == 0
            want = expected_flags(fmt, x, code, mode, before)
            assert flags == want, (name, mode, saturate, x, code)


def test_flags_tininess_differs_where_ieee_says():
    """float16, 2^-14 (1 - 2^-12): below 2^emin, but rounded to 11 bits
    with an unbounded exponent it is 2^-14: not tiny after rounding, tiny
    before; inexact either way."""
    fmt = lp.get_format("float16")
    x = Fraction(2) ** -14 * (1 - Fraction(1, 2 ** 12))
    sign, exp, sig = dyadic(x)
    o = make_opts(fmt, "nearest_even", False, True, 0, None, None)
    code, _, flags = c_round(fmt, o, 0, sign, exp, sig)
    assert code == 0x0400 and flags == INEXACT
    o.tininess_before = 1
    assert c_round(fmt, o, 0, sign, exp, sig)[2] == INEXACT | UNDERFLOW
    # exact subnormals raise nothing; flushed ones inexact and underflow
    sign, exp, sig = dyadic(Fraction(3, 2 ** 24))
    o.tininess_before = 0
    assert c_round(fmt, o, 0, sign, exp, sig)[2] == 0
    o.keep_subnormals = 0
    assert c_round(fmt, o, 0, sign, exp, sig) == (0, 0, INEXACT | UNDERFLOW)


def test_flags_flush_and_nozero():
    fmt = lp.get_format("float8_e4m3fn")
    o = make_opts(fmt, "nearest_even", False, False, 0, None, None)
    for x in samples(fmt, np.random.default_rng(3), 100):
        sign, exp, sig = dyadic(x)
        code, err, flags = c_round(fmt, o, 0, sign, exp, sig)
        want = expected_flags(fmt, x, code, "nearest_even")
        assert flags == want, x
    e8 = lp.get_format("float8_e8m0fnu")
    o = make_opts(e8, "toward_zero", False, True, 0, None, None)
    sign, exp, sig = dyadic(Fraction(1, 2 ** 130))
    assert c_round(e8, o, 0, sign, exp, sig) == (0, 0, INEXACT | UNDERFLOW)


@pytest.mark.parametrize("name", ["int8", "uint4", "int4"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_flags_integer_formats(name, mode):
    fmt = lp.get_format(name)
    rng = np.random.default_rng(7)
    for zp in (0, 3):
        o = make_opts(fmt, mode, False, True, 0, None, zp or None)
        for _ in range(300):
            x = Fraction(int(rng.integers(-2 ** 12, 2 ** 12)), 16)
            if rng.integers(0, 4) == 0:
                x *= 64
            code, err, flags = (c_round(fmt, o, 0, *dyadic(x))
                                if x else c_round(fmt, o, 0, 0, 0, 0))
            assert flags == expected_flags(fmt, x, code, mode, zp=zp), x


def test_flags_specials_and_unsigned():
    """INVALID (alone) when the input's class has no encoding."""
    cases = [  # format, saturate, cls, sign, flags
        ("float16", False, 2, 0, 0), ("float4_e2m1fn", False, 2, 0, INVALID),
        ("float16", False, 1, 1, 0), ("float16", True, 1, 0, INVALID),
        ("float8_e4m3fn", False, 1, 0, INVALID),
        ("float8_e8m0fnu", False, 1, 1, INVALID),
        ("int8", False, 2, 0, INVALID), ("int8", False, 1, 0, INVALID),
    ]
    for name, sat, cls, sign, want in cases:
        fmt = lp.get_format(name)
        o = make_opts(fmt, "nearest_even", sat, True, 0, None, None)
        assert c_round(fmt, o, cls, sign, 0, 0)[2] == want, (name, cls)
        assert nb_round(fmt, o, cls, sign, 0, 0)[2] == want, (name, cls)
    e8 = lp.get_format("float8_e8m0fnu")
    o = make_opts(e8, "nearest_even", False, True, 0, None, None)
    assert c_round(e8, o, 0, 0, 0, 0)[2] == INVALID      # zero -> NaN
    code, err, flags = c_round(e8, o, 0, 1, 0, 3)          # -3
    assert (err, flags) == (lib.LP_ERR_NEGATIVE, INVALID)
    # a negative value that rounds to zero in an unsigned format: +0
    u = lp.FloatFormat(4, 3, signed=False)
    o = make_opts(u, "nearest_even", False, True, 0, None, None)
    code, err, flags = c_round(u, o, 0, 1, -40, 1)
    assert (code, err, flags) == (0, 0, INEXACT | UNDERFLOW)


@pytest.mark.parametrize("name", FLAG_FORMATS + ["int8", "uint4"])
def test_numba_flags_equal_c(name):
    fmt = lp.get_format(name)
    rng = np.random.default_rng(11)
    xs = samples(fmt, rng, 40) if fmt.kind == "float" else \
        [Fraction(int(v), 8) for v in rng.integers(-3000, 3000, 200)]
    for mode in list(MODES) + ["stochastic"]:
        for before in (0, 1):
            o = make_opts(fmt, mode, False, bool(before), 9, 5, None)
            o.tininess_before = before
            for i, x in enumerate(xs):
                args = dyadic(x) if x else (0, 0, 0)
                c = c_round(fmt, o, 0, *args, index=i)
                assert nb_round(fmt, o, 0, *args, index=i) == c, (mode, x)
                assert c[2] & INFINITE == 0      # no rounding raises it
            for cls in (1, 2):
                for sign in (0, 1):
                    assert nb_round(fmt, o, cls, sign, 0, 0) \
                        == c_round(fmt, o, cls, sign, 0, 0)


def _decision(mode, sign, m_odd, code_odd, sr_up, rest, k):
    """Each mode's rule on a k-bit dropped field rest, from its definition:
    the dropped part is rest / 2^k of a gap."""
    frac = Fraction(rest, 1 << k)
    if mode == core.RNE:
        return int(frac > Fraction(1, 2) or (frac == Fraction(1, 2)
                                             and m_odd))
    if mode == core.RNA:
        return int(frac >= Fraction(1, 2))
    if mode == core.RZ:
        return 0
    if mode == core.RU:
        return int(frac > 0 and not sign)
    if mode == core.RD:
        return int(frac > 0 and sign)
    if mode == core.RO:
        return int(frac > 0 and not code_odd)
    return int(sr_up)


@pytest.mark.parametrize("mode", range(7), ids=lambda m: ROUNDING_NAMES[m])
def test_round_addend_forms_agree_with_each_rule(mode):
    """lp_round_addend is the one definition per mode; its carry form
    (rest + addend) >> k (the shift path, the float32 core) and its compare
    form lp_round_up (the 64-bit cores, on the 2-bit round:sticky field)
    give each mode's rule for every k-bit field, k = 0..7 (k = 0: nothing
    dropped), and the addend stays in [0, low] so that the sum never
    carries twice.  sr_up = 1 only with a non-zero field, as lp_sr_less
    gives it."""
    w = np.uint32
    for k in range(8):
        low = (1 << k) - 1
        for rest in range(low + 1):
            for sign, m_odd, code_odd, sr_up in np.ndindex(2, 2, 2, 2):
                if sr_up and not rest:
                    continue
                want = _decision(mode, sign, m_odd, code_odd, sr_up, rest, k)
                add = int(core.lp_round_addend(mode, w(sign), w(m_odd),
                                               w(code_odd), w(sr_up), w(low)))
                assert 0 <= add <= low
                assert (rest + add) >> k == want, (k, rest, sign, m_odd)
                assert int(core.lp_round_up(
                    mode, w(sign), w(m_odd), w(code_odd), w(sr_up), w(rest),
                    w(low))) == want, (k, rest, sign, m_odd)
