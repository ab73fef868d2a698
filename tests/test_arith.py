"""lp.add / sub / mul / div / fma / sqrt / convert and the flags of encode:
bits and IEEE exception flags against Berkeley SoftFloat (softfloatpy) for
float16 and float32, against an exact reference (Fractions rounded by
lowprec.reference.ref_encode, flags by the IEEE rules of test_round_core)
for every format, and against MPFR (gmpy2) for the values of the small
formats.  The exhaustive runs are marked slow; the main suite takes seeded
samples plus every pair of special values."""
import doctest
import functools
import math
from fractions import Fraction

import numpy as np
import pytest

import lowprec as lp
from lowprec import arith
from lowprec.reference import ref_decode, ref_encode, ref_random

from helpers import FLOAT_FORMATS, SMALL_FLOATS
from test_round_core import expected_flags

INEXACT, UNDERFLOW, OVERFLOW, INFINITE, INVALID = 1, 2, 4, 8, 16
NEAREST_DIRECTED = ("nearest_even", "nearest_away", "toward_zero",
                    "toward_positive", "toward_negative")
MODES = NEAREST_DIRECTED + ("to_odd",)
BINARY = ("add", "sub", "mul", "div")
OPS = {"add": lp.add, "sub": lp.sub, "mul": lp.mul, "div": lp.div}


# -- the exact reference ------------------------------------------------------

def _is_snan(fmt, code):
    return (fmt.nans == "ieee" and ref_decode(fmt, code) != ref_decode(
        fmt, code) and not (code >> (fmt.mbits - 1)) & 1)


def _parts(v):
    """(class, sign, Fraction) of a ref_decode value."""
    if isinstance(v, float) and math.isnan(v):
        return "nan", 0, None
    if isinstance(v, float) and math.isinf(v):
        return "inf", int(v < 0), None
    neg = (isinstance(v, float) and math.copysign(1, v) < 0) or v < 0
    return "fin", int(neg), Fraction(v)


def _isqrt_jam(x):
    """sqrt of the positive Fraction x (a dyadic rational): exact when it is
    one, else a value within 2^-300 of it that no rounding decision of a
    24-bit format (or a 64-bit stochastic fraction) tells apart."""
    k = 300
    num = x.numerator << (2 * k)
    den = x.denominator                      # a power of two
    e = den.bit_length() - 1
    if e % 2:
        num <<= 1
        e += 1
    r = math.isqrt(num)
    scale = Fraction(1, 2 ** (k + e // 2))
    if r * r == num:
        return r * scale
    return (2 * r + 1) * scale / 2


def exact_result(op, vals, mode):
    """The exact result of op on ref_decode values: ('nan', invalid),
    ('inf', sign), ('zero', sign) or ('fin', Fraction), and extra flags
    (INFINITE).  IEEE 754 sections 6 and 7, written out."""
    ps = [_parts(v) for v in vals]
    cls = [p[0] for p in ps]
    sg = [p[1] for p in ps]
    x = [p[2] for p in ps]
    rd_zero = int(mode == "toward_negative")
    if op == "sub" and cls[1] != "nan":
        sg[1] ^= 1
        x[1] = -x[1] if x[1] is not None else None
    if op == "convert":
        if cls[0] == "nan":
            return ("nan", False), 0
        if cls[0] == "inf":
            return ("inf", sg[0]), 0
        return (("zero", sg[0]) if x[0] == 0 else ("fin", x[0])), 0
    if op in ("add", "sub"):
        if "nan" in cls:
            return ("nan", False), 0
        if cls == ["inf", "inf"]:
            return (("nan", True) if sg[0] != sg[1] else ("inf", sg[0])), 0
        if "inf" in cls:
            return ("inf", sg[cls.index("inf")]), 0
        s = x[0] + x[1]
        if s != 0:
            return ("fin", s), 0
        if x[0] == 0 and x[1] == 0 and sg[0] == sg[1]:
            return ("zero", sg[0]), 0
        return ("zero", rd_zero), 0
    if op == "mul":
        if "nan" in cls:
            return ("nan", False), 0
        sign = sg[0] ^ sg[1]
        if "inf" in cls:
            other = x[1 - cls.index("inf")]
            if other is not None and other == 0:
                return ("nan", True), 0
            return ("inf", sign), 0
        p = x[0] * x[1]
        return (("zero", sign) if p == 0 else ("fin", p)), 0
    if op == "div":
        if "nan" in cls:
            return ("nan", False), 0
        sign = sg[0] ^ sg[1]
        if cls == ["inf", "inf"]:
            return ("nan", True), 0
        if cls[0] == "inf":
            return ("inf", sign), 0
        if cls[1] == "inf":
            return ("zero", sign), 0
        if x[1] == 0:
            if x[0] == 0:
                return ("nan", True), 0
            return ("inf", sign), INFINITE
        q = x[0] / x[1]
        return (("zero", sign) if q == 0 else ("fin", q)), 0
    if op == "sqrt":
        if cls[0] == "nan":
            return ("nan", False), 0
        if cls[0] == "fin" and x[0] == 0:
            return ("zero", sg[0]), 0
        if sg[0]:
            return ("nan", True), 0
        if cls[0] == "inf":
            return ("inf", 0), 0
        return ("fin", _isqrt_jam(x[0])), 0
    assert op == "fma"
    zero_inf = (cls[0] == "inf" and cls[1] == "fin" and x[1] == 0) or (
        cls[1] == "inf" and cls[0] == "fin" and x[0] == 0)
    if zero_inf:
        return ("nan", True), 0
    if "nan" in cls:
        return ("nan", False), 0
    sp = sg[0] ^ sg[1]
    if "inf" in cls[:2]:
        if cls[2] == "inf" and sg[2] != sp:
            return ("nan", True), 0
        return ("inf", sp), 0
    if cls[2] == "inf":
        return ("inf", sg[2]), 0
    p = x[0] * x[1]
    s = p + x[2]
    if s != 0:
        return ("fin", s), 0
    if p == 0 and x[2] == 0 and sp == sg[2]:
        return ("zero", sp), 0
    return ("zero", rd_zero), 0


def ref_round(fmt, res, mode, saturate=False, subnormals=True,
              tininess="after", rand=None):
    """(code, flags) of an exact result in fmt; code None where lp gives
    code 0 for lack of an encoding (NaN into a NaN-less format, a negative
    value into an unsigned one)."""
    kind, v = res
    has_nan = fmt.nan_code is not None
    if kind == "nan":
        if not has_nan:
            return None, INVALID
        return fmt.nan_code, INVALID if v else 0
    if kind == "inf":
        inf = float("-inf") if v else float("inf")
        flags = INVALID if (fmt.inf_code is None or saturate
                            or (v and not fmt.signed)) else 0
        try:
            return ref_encode(fmt, inf, mode, saturate, subnormals,
                              rand=rand), flags
        except ValueError:
            return None, INVALID
    if kind == "zero":
        z = -0.0 if v else Fraction(0)
        return (ref_encode(fmt, z, mode, saturate, subnormals, rand=rand),
                0 if fmt.has_zero else INVALID)
    x = v
    try:
        code = ref_encode(fmt, x, mode, saturate, subnormals, rand=rand)
    except ValueError:
        return None, INVALID
    flag_mode = mode
    if mode == "stochastic":
        # the flags of the directed rounding stochastic rounding picked
        away = sr_away(fmt.emin, fmt.mbits, x, rand)
        flag_mode = ("toward_negative" if x < 0 else "toward_positive") \
            if away else "toward_zero"
    fl = expected_flags(fmt, x, code, flag_mode, tininess == "before")
    if not subnormals and fmt.subnormals and fl & INEXACT == 0:
        # a flushed subnormal is inexact (and tiny)
        r = ref_decode(fmt, code)
        if Fraction(r) != x:
            fl = INEXACT | UNDERFLOW
    a = abs(x)
    if mode == "stochastic" and tininess != "before" and fl & INEXACT \
            and _floor_log2(a) == fmt.emin - 1:
        # tininess after rounding just below 2^emin, as lp.encode's core:
        # x rounded stochastically (the same random bits) to mbits + 1
        # bits with an unbounded exponent reaches 2^emin
        e = fmt.emin - 1
        top = math.floor(a / Fraction(2) ** (e - fmt.mbits))
        up = top == (2 << fmt.mbits) - 1 and sr_away(e, fmt.mbits, x, rand)
        fl = (fl & ~UNDERFLOW) | (0 if up else UNDERFLOW)
    return code, fl


def _floor_log2(a):
    e = a.numerator.bit_length() - a.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > a else e


def sr_away(emin, mbits, x, rand, integer=False):
    """Stochastic rounding's choice for x != 0: away from zero iff the
    random bits are below floor(d * 2^64), d the fraction of the gap
    (API.md section 2), the gap that of |x|'s binade (never below emin)."""
    a = abs(x)
    q = 0 if integer else max(_floor_log2(a), emin) - mbits
    scaled = a / Fraction(2) ** q
    d = scaled - math.floor(scaled)
    return rand < math.floor(d * 2 ** 64)


def reference(op, fmt, fmts, codes, mode, saturate=False, subnormals=True,
              tininess="after", rand=None):
    vals = [ref_decode(f, int(c)) for f, c in zip(fmts, codes)]
    res, extra = exact_result(op, vals, mode)
    code, fl = ref_round(fmt, res, mode, saturate, subnormals, tininess, rand)
    if any(_is_snan(f, int(c)) for f, c in zip(fmts, codes)):
        fl |= INVALID
    return code, fl | extra


def check_against_reference(op, fmt, fmts, cols, mode, **kw):
    """lp's codes and flags for the operand columns == the reference's."""
    fn = {"fma": lp.fma, "sqrt": lp.sqrt, **OPS}[op]
    fkw = {f"{n}_format": f for n, f in zip("abc", fmts)}
    seed = kw.pop("seed", None)
    if mode == "stochastic":
        fkw["seed"] = seed
    got, gfl = fn(*cols, fmt, rounding=mode, flags=True, **fkw, **kw)
    for i, cs in enumerate(zip(*cols)):
        rand = ref_random(seed, i) if mode == "stochastic" else None
        want, wfl = reference(op, fmt, fmts, cs, mode, rand=rand, **kw)
        want = 0 if want is None else want
        assert (int(got[i]), int(gfl[i])) == (want, wfl), (
            f"{op}{tuple(hex(int(c)) for c in cs)} {fmt.name} {mode} {kw}: "
            f"got {int(got[i]):#x} flags {int(gfl[i])}, want {want:#x} "
            f"flags {wfl}")


def special_codes(fmt):
    """Codes where the rules change: zeros, the smallest and largest
    subnormal and normal, 1, max, inf, the NaNs (one signalling), their
    negatives."""
    out = {0, 1, fmt.max_code, fmt.max_code - 1, 2, 1 << fmt.mbits,
           (1 << fmt.mbits) - 1, (1 << fmt.mbits) + 1,
           int(lp.encode(1.0, fmt)), int(lp.encode(1.5, fmt))}
    if fmt.inf_code is not None:
        out.add(fmt.inf_code)
    if fmt.nan_code is not None:
        out.add(fmt.nan_code)
    if fmt.nans == "ieee" and fmt.mbits >= 2:
        out.add(fmt.inf_code | 1)                      # signalling NaN
    out = {c for c in out if not c & fmt.sign_bit or c == fmt.nan_code}
    if fmt.signed:
        out |= {c | fmt.sign_bit for c in out}
    return sorted(c for c in out if c < 1 << fmt.nbits)


def random_codes(fmt, rng, n):
    return rng.integers(0, 1 << fmt.nbits, n, dtype=np.int64).astype(
        fmt.code_dtype)


# -- SoftFloat: float16 and float32 -------------------------------------------

try:
    import softfloatpy as sf
except ImportError:            # the SoftFloat tests skip, the others run
    sf = None
needs_softfloat = pytest.mark.skipif(sf is None,
                                     reason="softfloatpy is not installed")
SF_MODES = ("nearest_even", "toward_zero", "toward_negative",
            "toward_positive", "nearest_away")
SF_MODE_NAMES = {"nearest_even": "NEAR_EVEN", "toward_zero": "MIN_MAG",
                 "toward_negative": "MIN", "toward_positive": "MAX",
                 "nearest_away": "NEAR_MAX_MAG"}
SF_NAMES = {"add": "add", "sub": "sub", "mul": "mul", "div": "div",
            "fma": "mul_add", "sqrt": "sqrt"}


def softfloat(op, width, cols, mode, tininess):
    """SoftFloat's results (bits) and flags, one call per element."""
    T = {16: sf.Float16, 32: sf.Float32}[width]
    fn = getattr(sf, f"f{width}_{SF_NAMES[op]}")
    nb = width // 8
    sf.set_rounding_mode(getattr(sf.RoundingMode, SF_MODE_NAMES[mode]))
    sf.set_tininess_mode(sf.TininessMode.BEFORE_ROUNDING
                         if tininess == "before"
                         else sf.TininessMode.AFTER_ROUNDING)
    conv = [[T.from_bytes(int(c).to_bytes(nb, "big")) for c in col]
            for col in cols]
    out, fl = [], []
    for args in zip(*conv):
        sf.set_exception_flags(0)
        r = fn(*args)
        out.append(int.from_bytes(r.to_bytes(), "big"))
        fl.append(sf.get_exception_flags())
    return np.array(out, np.uint64), np.array(fl, np.uint8)


def _is_nan_bits(c, width):
    e, m = (10, 0x3FF) if width == 16 else (23, 0x7FFFFF)
    top = 0x1F if width == 16 else 0xFF
    return (((c >> np.uint64(e)) & np.uint64(top)) == top) & ((c & np.uint64(m)) != 0)


def compare_softfloat(op, width, cols, mode, tininess="after"):
    name = {16: "float16", 32: "float32"}[width]
    fmt = lp.get_format(name)
    fn = {"fma": lp.fma, "sqrt": lp.sqrt, **OPS}[op]
    got, gfl = fn(*cols, name, rounding=mode, flags=True, tininess=tininess)
    want, wfl = softfloat(op, width, cols, mode, tininess)
    got = got.astype(np.uint64)
    nan_w = _is_nan_bits(want, width)
    same = np.where(nan_w, got == fmt.nan_code, got == want) & (gfl == wfl)
    if not same.all():
        i = int(np.flatnonzero(~same)[0])
        args = tuple(hex(int(c[i])) for c in cols)
        pytest.fail(f"{op}{args} {name} {mode} tininess {tininess}: got "
                    f"{int(got[i]):#x} flags {int(gfl[i])}, SoftFloat "
                    f"{int(want[i]):#x} flags {int(wfl[i])} "
                    f"({int((~same).sum())} of {same.size} differ)")


def f16_sample(rng, n):
    """Random float16 codes, half of them biased to small exponents (where
    subnormal results and underflow happen)."""
    a = rng.integers(0, 1 << 16, n, dtype=np.int64)
    small = rng.integers(0, 0x1800, n, dtype=np.int64) | (
        rng.integers(0, 2, n) << 15)
    return np.where(rng.random(n) < 0.5, a, small).astype(np.uint16)


def f16_pairs(rng, n, op):
    a = f16_sample(rng, n)
    b = f16_sample(rng, n)
    if op in ("add", "sub"):
        # near-cancellation and close exponents: b within a few codes of a
        near = (a.astype(np.int64) + rng.integers(-40, 41, n)) & 0x7FFF
        sign = rng.integers(0, 2, n) << 15
        b = np.where(rng.random(n) < 0.5, b, near | sign).astype(np.uint16)
    return a, b


F16 = lp.get_format("float16")


@needs_softfloat
@pytest.mark.parametrize("mode", list(SF_MODES))
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_float16_special_pairs_softfloat(op, mode):
    sp = np.array(special_codes(F16), np.uint16)
    a, b = np.meshgrid(sp, sp)
    compare_softfloat(op, 16, (a.ravel(), b.ravel()), mode)


@needs_softfloat
@pytest.mark.parametrize("mode", list(SF_MODES))
@pytest.mark.parametrize("op", ["add", "mul"])
def test_float16_random_pairs_softfloat(op, mode):
    rng = np.random.default_rng(1000 + list(SF_MODES).index(mode))
    compare_softfloat(op, 16, f16_pairs(rng, 100_000, op), mode)


@needs_softfloat
@pytest.mark.parametrize("mode", list(SF_MODES))
@pytest.mark.parametrize("op", ["sub", "div"])
def test_float16_sub_div_softfloat(op, mode):
    rng = np.random.default_rng(2000 + list(SF_MODES).index(mode))
    compare_softfloat(op, 16, f16_pairs(rng, 20_000, op), mode)


@needs_softfloat
@pytest.mark.parametrize("tininess", ["before", "after"])
@pytest.mark.parametrize("mode", list(SF_MODES))
@pytest.mark.parametrize("op", ["add", "mul", "div", "fma"])
def test_float16_tininess_softfloat(op, mode, tininess):
    """Operands whose results land around 2^-14, where tininess before and
    after rounding differ."""
    rng = np.random.default_rng(3000)
    n = 20_000
    if op == "add":
        a = rng.integers(0x0300, 0x0500, n) | (rng.integers(0, 2, n) << 15)
        b = rng.integers(0x0000, 0x0500, n) | (rng.integers(0, 2, n) << 15)
        cols = (a, b)
    elif op in ("mul", "fma"):
        # a * b ~ 2^-14: a in [2^-8, 2^-6), b in [2^-8, 2^-6)
        a = rng.integers(0x1C00, 0x2400, n) | (rng.integers(0, 2, n) << 15)
        b = rng.integers(0x1800, 0x2000, n)
        cols = (a, b)
        if op == "fma":
            c = rng.integers(0, 0x0080, n) | (rng.integers(0, 2, n) << 15)
            cols = (a, b, c)
    else:
        a = rng.integers(0x0000, 0x0800, n) | (rng.integers(0, 2, n) << 15)
        b = rng.integers(0x3A00, 0x4200, n)
        cols = (a, b)
    compare_softfloat(op, 16, tuple(c.astype(np.uint16) for c in cols),
                      mode, tininess)


@needs_softfloat
@pytest.mark.parametrize("mode", list(SF_MODES))
def test_float16_fma_softfloat(mode):
    rng = np.random.default_rng(4000)
    n = 30_000
    a, b, c = (f16_sample(rng, n) for _ in range(3))
    # c near -a*b: cancellation
    ab = lp.mul(a, b, "float16", rounding="toward_zero")
    c = np.where(rng.random(n) < 0.5, c, ab ^ 0x8000).astype(np.uint16)
    compare_softfloat("fma", 16, (a, b, c), mode)
    sp = np.array(special_codes(F16)[::2], np.uint16)
    x, y, z = (g.ravel() for g in np.meshgrid(sp, sp, sp))
    compare_softfloat("fma", 16, (x, y, z), mode)


@needs_softfloat
@pytest.mark.parametrize("tininess", ["before", "after"])
@pytest.mark.parametrize("mode", list(SF_MODES))
def test_float16_sqrt_exhaustive_softfloat(mode, tininess):
    compare_softfloat("sqrt", 16, (np.arange(1 << 16, dtype=np.uint16),),
                      mode, tininess)


@needs_softfloat
@pytest.mark.parametrize("mode", list(SF_MODES))
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "fma", "sqrt"])
def test_float32_random_softfloat(op, mode):
    rng = np.random.default_rng(5000 + len(op))
    n = 20_000
    arity = {"fma": 3, "sqrt": 1}.get(op, 2)
    cols = []
    for k in range(arity):
        bits = rng.integers(0, 1 << 32, n, dtype=np.uint64)
        # a quarter with exponents near each other's / near the subnormals
        e = rng.integers(0, 40, n, dtype=np.uint64) + (100 if k else 0)
        close = (bits & 0x807FFFFF) | (e << 23)
        cols.append(np.where(rng.random(n) < 0.25, close, bits).astype(
            np.uint32))
    compare_softfloat(op, 32, tuple(cols), mode)
    if op in ("add", "mul"):
        compare_softfloat(op, 32, tuple(cols), mode, "before")


@needs_softfloat
@pytest.mark.slow
@pytest.mark.parametrize("mode", list(SF_MODES))
@pytest.mark.parametrize("op", ["add", "mul"])
def test_float16_pairs_softfloat_slow(op, mode):
    """A seeded sample of 4 million pairs per mode, about 6 s each (the
    exhaustive 2^32 would be about 2 hours per op and mode through
    softfloatpy)."""
    rng = np.random.default_rng(6000 + list(SF_MODES).index(mode))
    for _ in range(8):
        compare_softfloat(op, 16, f16_pairs(rng, 500_000, op), mode)


# -- the exact reference: every format ----------------------------------------

REF_FORMATS = sorted(n for n, f in FLOAT_FORMATS.items()
                     if f.nbits <= 8) + ["bfloat16", "float16"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("name", REF_FORMATS)
def test_binary_against_fractions(name, op, mode):
    """Every pair of special codes and a seeded sample of pairs (all pairs
    for FP4, and for FP6 in nearest_even; every pair of every format:
    test_small_formats_fractions_exhaustive_slow)."""
    fmt = lp.get_format(name)
    sp = np.array(special_codes(fmt), fmt.code_dtype)
    a, b = (g.ravel() for g in np.meshgrid(sp, sp))
    if fmt.nbits <= 4 or (fmt.nbits <= 6 and mode == "nearest_even"):
        a, b = (g.ravel() for g in np.meshgrid(
            *[np.arange(1 << fmt.nbits, dtype=fmt.code_dtype)] * 2))
    else:
        rng = np.random.default_rng(fmt.nbits * 7 + len(op))
        a = np.concatenate([a, random_codes(fmt, rng, 400)])
        b = np.concatenate([b, random_codes(fmt, rng, 400)])
    check_against_reference(op, fmt, (fmt, fmt), (a, b), mode)


@pytest.mark.parametrize("op", ["add", "mul", "div", "sqrt", "fma"])
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float4_e2m1fn",
                                  "bfloat16", "float8_e8m0fnu",
                                  "float8_e5m3fnu"])
def test_stochastic_against_fractions(name, op):
    fmt = lp.get_format(name)
    rng = np.random.default_rng(77)
    arity = {"fma": 3, "sqrt": 1}.get(op, 2)
    cols = [random_codes(fmt, rng, 800) for _ in range(arity)]
    check_against_reference(op, fmt, (fmt,) * arity, cols, "stochastic",
                            seed=12345)


@pytest.mark.parametrize("kw", [dict(saturate=True), dict(subnormals=False),
                                dict(tininess="before")])
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2",
                                  "float8_e4m3fnuz", "float6_e3m2fn",
                                  "float16"])
def test_policies_against_fractions(name, kw):
    fmt = lp.get_format(name)
    rng = np.random.default_rng(88)
    sp = np.array(special_codes(fmt), fmt.code_dtype)
    a, b = (g.ravel() for g in np.meshgrid(sp, sp))
    a = np.concatenate([a, random_codes(fmt, rng, 300)])
    b = np.concatenate([b, random_codes(fmt, rng, 300)])
    for op in BINARY:
        for mode in ("nearest_even", "toward_positive", "to_odd"):
            check_against_reference(op, fmt, (fmt, fmt), (a, b), mode,
                                    **dict(kw))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["float4_e2m1fn", "float6_e2m3fn",
                                  "float8_e4m3fn", "float8_e5m2",
                                  "float8_e8m0fnu"])
def test_sqrt_all_codes_against_fractions(name, mode):
    fmt = lp.get_format(name)
    codes = np.arange(1 << fmt.nbits, dtype=fmt.code_dtype)
    check_against_reference("sqrt", fmt, (fmt,), (codes,), mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["float4_e2m1fn", "float8_e4m3fn",
                                  "float8_e5m2"])
def test_fma_against_fractions(name, mode):
    """All triples for FP4; specials and a sample for FP8."""
    fmt = lp.get_format(name)
    if fmt.nbits == 4:
        c = np.arange(16, dtype=np.uint8)
    else:
        c = np.array(special_codes(fmt)[::3], np.uint8)
    a, b, cc = (g.ravel() for g in np.meshgrid(c, c, c))
    if fmt.nbits > 4:
        rng = np.random.default_rng(99)
        a, b, cc = (np.concatenate([x, random_codes(fmt, rng, 1500)])
                    for x in (a, b, cc))
    check_against_reference("fma", fmt, (fmt,) * 3, (a, b, cc), mode)


@pytest.mark.parametrize("mode", MODES + ("stochastic",))
def test_mixed_formats_against_fractions(mode):
    """a_format / b_format / c_format differ from fmt: one rounding."""
    rng = np.random.default_rng(111)
    fa, fb = lp.get_format("float16"), lp.get_format("float8_e5m2")
    fc = lp.get_format("bfloat16")
    out = lp.get_format("float8_e4m3fn")
    a, b, c = (random_codes(f, rng, 1500) for f in (fa, fb, fc))
    for op in BINARY:
        check_against_reference(op, out, (fa, fb), (a, b), mode, seed=5)
    check_against_reference("fma", out, (fa, fb, fc), (a, b, c), mode,
                            seed=5)
    check_against_reference("sqrt", out, (fa,), (a,), mode, seed=5)


@pytest.mark.parametrize("mode", MODES + ("stochastic",))
@pytest.mark.parametrize("src,dst", [("float16", "float8_e4m3fn"),
                                     ("float32", "bfloat16"),
                                     ("bfloat16", "float8_e5m2"),
                                     ("float8_e5m2", "float4_e2m1fn"),
                                     ("float16", "float8_e8m0fnu"),
                                     ("float8_e4m3fn", "int8"),
                                     ("int8", "float8_e4m3fn")])
def test_convert_against_reference(src, dst, mode):
    fs, fd = lp.get_format(src), lp.get_format(dst)
    rng = np.random.default_rng(222)
    if fs.kind == "float" and fs.nbits <= 8:
        codes = np.arange(1 << fs.nbits, dtype=np.int64).astype(fs.code_dtype)
    elif fs.kind == "float" and fs.nbits <= 16:
        codes = np.concatenate([np.array(special_codes(fs), fs.code_dtype),
                                random_codes(fs, rng, 3000)])
    elif fs.kind == "int":
        codes = np.arange(-128, 128).astype(np.int8)
    else:
        codes = random_codes(fs, rng, 5000)
    got, gfl = lp.convert(codes, fs, fd, rounding=mode, flags=True, seed=9)
    for i, c in enumerate(codes.tolist()):
        v = ref_decode(fs, c)
        res, _ = exact_result("convert", [v], mode)
        rand = ref_random(9, i) if mode == "stochastic" else None
        if fd.kind == "int":
            want, wfl = _int_reference(fd, res, mode, rand)
        else:
            want, wfl = ref_round(fd, res, mode, rand=rand)
        if _is_snan(fs, c) if fs.kind == "float" else False:
            wfl |= INVALID
        want = 0 if want is None else want
        assert (int(got[i]), int(gfl[i])) == (want, wfl), (src, dst, hex(c))


def _int_reference(fmt, res, mode, rand):
    kind, v = res
    if kind == "nan":
        return None, INVALID
    if kind == "inf":
        return (fmt.min if v else fmt.max), INVALID
    x = Fraction(0) if kind == "zero" else v
    code = ref_encode(fmt, x, mode, rand=rand)
    flag_mode = mode
    if mode == "stochastic":
        flag_mode = "toward_zero" if x == 0 or not sr_away(
            0, 0, x, rand, integer=True) else (
            "toward_negative" if x < 0 else "toward_positive")
    return code, expected_flags(fmt, x, code, flag_mode)


def test_encode_flags_match_convert_and_ieee_rules():
    """encode(flags=True) of float64 inputs: flags by the IEEE rule of
    test_round_core, codes those of encode."""
    rng = np.random.default_rng(333)
    for name in ("float8_e4m3fn", "float8_e5m2", "float16", "float4_e2m1fn",
                 "float8_e8m0fnu"):
        fmt = lp.get_format(name)
        x = rng.standard_normal(3000) * np.exp2(rng.integers(-30, 30, 3000))
        if not fmt.signed:
            x = np.abs(x)
        for mode in MODES:
            for tin in ("after", "before"):
                codes, fl = lp.encode(x, fmt, rounding=mode, flags=True,
                                      tininess=tin)
                assert (codes == lp.encode(x, fmt, rounding=mode)).all()
                for xi, c, f in zip(x.tolist(), codes.tolist(), fl.tolist()):
                    want = expected_flags(fmt, Fraction(xi), c, mode,
                                          tin == "before")
                    assert f == want, (name, mode, tin, xi)
        q, qfl = lp.quantize(x.astype(np.float32), fmt, flags=True)
        c2, f2 = lp.encode(x.astype(np.float32), fmt, flags=True)
        assert (qfl == f2).all()
        np.testing.assert_array_equal(q, lp.decode(c2, fmt))


def test_encode_flags_specials():
    codes, fl = lp.encode(np.array([np.nan, np.inf, -np.inf, 0.0, 1e9]),
                          "float4_e2m1fn", flags=True)
    assert fl.tolist() == [INVALID, INVALID, INVALID, 0, OVERFLOW | INEXACT]
    assert codes[0] == 0
    codes, fl = lp.encode(np.array([np.inf, 1e9]), "e5m2", saturate=True,
                          flags=True)
    assert fl.tolist() == [INVALID, OVERFLOW | INEXACT]


# -- MPFR (gmpy2): values of the small formats --------------------------------

try:
    import gmpy2
except ImportError:            # the MPFR tests skip, the others run
    gmpy2 = None
needs_gmpy2 = pytest.mark.skipif(gmpy2 is None,
                                 reason="gmpy2 is not installed")
MPFR_MODES = {"nearest_even": "RoundToNearest", "toward_zero": "RoundToZero",
              "toward_positive": "RoundUp", "toward_negative": "RoundDown"}
# (gmpy2.RoundAwayZero is MPFR's directed rounding away from zero, not
# nearest with ties away, which MPFR lacks: the Fraction tests cover it)


def mpfr_context(fmt, mode):
    """MPFR's emin/emax are of significands in [1/2, 1): a format of p
    bits with normals 2^emin..2^(emax+1) and subnormals down to
    2^(emin - mbits) is emin' = emin - mbits + 1, emax' = emax + 1."""
    p = fmt.mbits + 1
    return gmpy2.context(precision=p, emin=fmt.emin - fmt.mbits + 1,
                         emax=fmt.emax + 1, subnormalize=fmt.subnormals,
                         round=getattr(gmpy2, MPFR_MODES[mode]))


def mpfr_values(op, fmt, a_vals, b_vals, mode):
    """MPFR's correctly rounded results (gmpy2 mpfr), None where the
    format's own special rules decide (non-finite operands or results,
    overflow, zero results, results below a NaN-only or zero-less range)."""
    ctx = mpfr_context(fmt, mode)
    out = []
    with ctx:
        for x, y in zip(a_vals, b_vals):
            if x is None or y is None:
                out.append(None)
                continue
            r = {"add": lambda: gmpy2.add(x, y),
                 "sub": lambda: gmpy2.sub(x, y),
                 "mul": lambda: gmpy2.mul(x, y),
                 "div": lambda: gmpy2.div(x, y)}[op]()
            out.append(r)
    return out


def _finite_values(fmt, codes):
    res = []
    for c in codes.tolist():
        v = ref_decode(fmt, c)
        res.append(None if isinstance(v, float) else gmpy2.mpq(
            v.numerator, v.denominator))
    return res


MPFR_FORMATS = [n for n in SMALL_FLOATS
                if lp.get_format(n).subnormals] + ["bfloat16"]


def compare_mpfr(op, name, a, b, mode):
    fmt = lp.get_format(name)
    got = lp.decode(OPS[op](a, b, fmt, rounding=mode, flags=True)[0], fmt,
                    dtype=np.float64)
    av, bv = _finite_values(fmt, a), _finite_values(fmt, b)
    with gmpy2.context(precision=200):
        av = [None if x is None else gmpy2.mpfr(x) for x in av]
        bv = [None if x is None else gmpy2.mpfr(x) for x in bv]
    want = mpfr_values(op, fmt, av, bv, mode)
    bad = 0
    first = None
    for i, w in enumerate(want):
        if w is None or not gmpy2.is_finite(w) or w == 0 \
                or abs(float(w)) > fmt.max or (w < 0 and not fmt.signed):
            continue
        if float(w) != got[i]:
            bad += 1
            first = first or (i, float(w), got[i])
    assert bad == 0, (f"{op} {name} {mode}: {bad} differ from MPFR, first "
                      f"{first} at {hex(int(a[first[0]]))}, "
                      f"{hex(int(b[first[0]]))}")


@needs_gmpy2
@pytest.mark.parametrize("mode", list(MPFR_MODES))
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("name", MPFR_FORMATS)
def test_small_formats_against_mpfr(name, op, mode):
    """A seeded sample of pairs (all pairs: test_small_formats_mpfr_slow)."""
    fmt = lp.get_format(name)
    rng = np.random.default_rng(444)
    n = 3000
    a, b = random_codes(fmt, rng, n), random_codes(fmt, rng, n)
    compare_mpfr(op, name, a, b, mode)


@needs_gmpy2
@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MPFR_MODES))
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("name", [n for n in MPFR_FORMATS
                                  if n != "bfloat16"])
def test_small_formats_mpfr_slow(name, op, mode):
    """Every pair of codes of every 8-bit (and smaller) format."""
    fmt = lp.get_format(name)
    c = np.arange(1 << fmt.nbits, dtype=fmt.code_dtype)
    a, b = (g.ravel() for g in np.meshgrid(c, c))
    compare_mpfr(op, name, a, b, mode)


def compare_mpfr_fma(name, mode):
    """Every triple of codes of fmt: lp.fma's values against MPFR's fma
    (one rounding) wherever MPFR's result is finite, non-zero and within
    the format's range (the format's own rules decide the rest)."""
    fmt = lp.get_format(name)
    c = np.arange(1 << fmt.nbits, dtype=fmt.code_dtype)
    a, b, z = (g.ravel() for g in np.meshgrid(c, c, c, indexing="ij"))
    got = lp.decode(lp.fma(a, b, z, fmt, rounding=mode, flags=True)[0], fmt,
                    dtype=np.float64)
    vals = _finite_values(fmt, c)
    with gmpy2.context(precision=200):
        vals = [None if x is None else gmpy2.mpfr(x) for x in vals]
    bad = 0
    first = None
    with mpfr_context(fmt, mode):
        for i, (x, y, w) in enumerate(zip(a.tolist(), b.tolist(),
                                          z.tolist())):
            if vals[x] is None or vals[y] is None or vals[w] is None:
                continue
            r = gmpy2.fma(vals[x], vals[y], vals[w])
            if not gmpy2.is_finite(r) or r == 0 or abs(float(r)) > fmt.max:
                continue
            if float(r) != got[i]:
                bad += 1
                first = first or (hex(x), hex(y), hex(w), float(r), got[i])
    assert bad == 0, f"fma {name} {mode}: {bad} differ from MPFR: {first}"


@needs_gmpy2
@pytest.mark.parametrize("mode", list(MPFR_MODES))
@pytest.mark.parametrize("name", ["float4_e2m1fn", "float6_e2m3fn",
                                  "float6_e3m2fn"])
def test_fp4_fp6_every_fma_triple_against_mpfr(name, mode):
    """2^12 and 2^18 triples per format and mode (under a second)."""
    compare_mpfr_fma(name, mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_small_formats_fractions_exhaustive_slow(name, op, mode):
    """Every pair of codes, codes and flags, against the Fraction
    reference (to_odd and flags included, which MPFR does not have):
    about 30 s per 8-bit format, operation and mode."""
    fmt = lp.get_format(name)
    c = np.arange(1 << fmt.nbits, dtype=fmt.code_dtype)
    a, b = (g.ravel() for g in np.meshgrid(c, c))
    check_against_reference(op, fmt, (fmt, fmt), (a, b), mode)


# -- tables, threads, arguments -----------------------------------------------

def test_table_path_matches_kernel():
    """The 8-bit table path (lp_arith_lookup) gives the kernel's bits and
    flags: the same call with a 16-bit a_format bypasses the table."""
    fmt = lp.get_format("e4m3")
    c = np.arange(256, dtype=np.uint8)
    a, b = (g.ravel() for g in np.meshgrid(c, c))
    wide_a = lp.convert(a, "e4m3", "float32")
    for op in BINARY:
        for mode in MODES:
            got, gfl = OPS[op](a, b, fmt, rounding=mode, flags=True)
            want, wfl = OPS[op](wide_a, b, fmt, rounding=mode, flags=True,
                                a_format="float32")
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(gfl, wfl)


def test_stochastic_seed_index_and_threads(monkeypatch):
    rng = np.random.default_rng(5)
    a = random_codes(F16, rng, 300_000)
    b = random_codes(F16, rng, 300_000)
    r1 = lp.add(a, b, "e4m3", a_format="float16", b_format="float16",
                rounding="stochastic", seed=3)
    monkeypatch.setenv("LOWPREC_NUM_THREADS", "3")
    r3 = lp.add(a, b, "e4m3", a_format="float16", b_format="float16",
                rounding="stochastic", seed=3)
    np.testing.assert_array_equal(r1, r3)
    # flat index: element i of a 2-D call is element i of the 1-D call
    r2 = lp.add(a[:1000].reshape(20, 50), b[:1000].reshape(20, 50), "e4m3",
                a_format="float16", b_format="float16",
                rounding="stochastic", seed=3)
    np.testing.assert_array_equal(r2.ravel(), r1[:1000])
    assert not (r1 == lp.add(a, b, "e4m3", a_format="float16",
                             b_format="float16", rounding="stochastic",
                             seed=4)).all()


def test_broadcasting_and_shapes():
    a = np.array([[0x38], [0x40]], np.uint8)         # 1, 2
    b = np.array([0x38, 0x40, 0x48], np.uint8)       # 1, 2, 4
    r = lp.add(a, b, "e4m3")
    assert r.shape == (2, 3) and r.dtype == np.uint8
    np.testing.assert_array_equal(
        lp.decode(r, "e4m3"), [[2, 3, 5], [3, 4, 6]])
    assert lp.mul(np.uint8(0x38), 0x38, "e4m3").shape == ()
    assert lp.sqrt(np.zeros((0, 3), np.uint16), "float16").shape == (0, 3)
    c, f = lp.fma(0x3C00, np.array([0x3C00] * 4), 0x3C00, "float16",
                  flags=True)
    assert c.shape == f.shape == (4,) and f.dtype == np.uint8


def test_ml_dtypes_operands():
    ml = pytest.importorskip("ml_dtypes")
    x = np.array([1.0, 2.5, -3.0], ml.float8_e4m3fn)
    r = lp.mul(x, x, "float8_e4m3fn")
    np.testing.assert_array_equal(lp.decode(r, "e4m3"), [1.0, 6.0, 9.0])


def test_nan_into_nanless_format_raises_unless_flags():
    with pytest.raises(ValueError, match="float4_e2m1fn has no NaN"):
        lp.sqrt(np.uint8(0b1010), "fp4")            # sqrt(-1)
    code, fl = lp.sqrt(np.uint8(0b1010), "fp4", flags=True)
    assert (int(code), int(fl)) == (0, INVALID)
    with pytest.raises(ValueError, match="unsigned"):
        lp.sub(0x7F, 0x80, "e8m0")                   # 1 - 2


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lp.add(1, 1, "e4m3", flags=1), TypeError, "flags"),
    (lambda: lp.add(1, 1, "e4m3", tininess="during"), ValueError,
     "tininess"),
    (lambda: lp.add(256, 1, "e4m3"), ValueError, "out of range"),
    (lambda: lp.add(1, 16, "fp4"), ValueError, "out of range"),
    (lambda: lp.add(1, 1, "int8"), TypeError, "float format"),
    (lambda: lp.add(1, 1, "e4m3", a_format="int8"), TypeError, "a_format"),
    (lambda: lp.add(np.ones(2), 1, "e4m3"), TypeError, "integer array"),
    (lambda: lp.add(np.ones(2, np.uint8), np.ones(3, np.uint8), "e4m3"),
     ValueError, "broadcast"),
    (lambda: lp.add(1, 1, "e4m3", rounding="nearest"), ValueError,
     "rounding"),
    (lambda: lp.add(1, 1, "e4m3", saturate="yes"), (TypeError, ValueError),
     "saturate"),
    (lambda: lp.sqrt(1, "nope"), (KeyError, ValueError), "nope"),
    (lambda: lp.encode(1.0, "e4m3", flags="yes"), TypeError, "flags"),
    (lambda: lp.encode(1.0, "e4m3", tininess=None), (TypeError, ValueError),
     "tininess"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@needs_softfloat
def test_flag_constants():
    assert (lp.FLAG_INEXACT, lp.FLAG_UNDERFLOW, lp.FLAG_OVERFLOW,
            lp.FLAG_INFINITE, lp.FLAG_INVALID) == (1, 2, 4, 8, 16)
    assert int(sf.ExceptionFlag.INVALID) == lp.FLAG_INVALID
    assert int(sf.ExceptionFlag.INFINITE) == lp.FLAG_INFINITE


def test_docstring_examples():
    for fn in (lp.add, lp.sub, lp.mul, lp.div, lp.fma, lp.sqrt, lp.convert):
        assert fn.__doc__ and "Example" in fn.__doc__
    failures, tried = doctest.testmod(arith, globs={"lp": lp}, verbose=False)
    assert tried >= 7 and failures == 0


# -- the vectors command -------------------------------------------------------

def _vector_lines(capsys, argv):
    from lowprec.__main__ import main
    assert main(argv) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


@needs_softfloat
@pytest.mark.parametrize("op", ["mul", "fma", "sqrt"])
def test_vectors_command_against_softfloat(capsys, op):
    """TestFloat lines (operands, result, flags in hex) of float16, checked
    by SoftFloat."""
    rows = _vector_lines(capsys, ["vectors", op, "float16", "--rounding",
                                  "toward_negative", "--flags", "--count",
                                  "300", "--seed", "4"])
    arity = {"fma": 3, "sqrt": 1}.get(op, 2)
    assert all(len(r) == arity + 2 for r in rows)
    assert all(len(w) == 4 for r in rows for w in r[:-1])
    cols = [np.array([int(r[k], 16) for r in rows], np.uint16)
            for k in range(arity)]
    res = np.array([int(r[arity], 16) for r in rows], np.uint64)
    fl = np.array([int(r[-1], 16) for r in rows], np.uint8)
    want, wfl = softfloat(op, 16, cols, "toward_negative", "after")
    nan = _is_nan_bits(want, 16)
    assert (np.where(nan, res == 0x7E00, res == want) & (fl == wfl)).all()


def test_vectors_command_small_format_every_pair(capsys):
    rows = _vector_lines(capsys, ["vectors", "div", "fp4", "--rounding",
                                  "to_odd", "--flags"])
    assert len(rows) == 256
    fmt = lp.get_format("fp4")
    for r in rows:
        a, b, c, f = (int(w, 16) for w in r)
        want, wfl = reference("div", fmt, (fmt, fmt), (a, b), "to_odd")
        assert (c, f) == (0 if want is None else want, wfl)
    rows = _vector_lines(capsys, ["vectors", "add", "e4m3"])
    assert len(rows) == 65536 and all(len(r) == 3 for r in rows)


def test_vectors_command_keeps_rounding_csv(capsys):
    from lowprec.__main__ import main
    assert main(["vectors", "e4m3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "input_bits,input,code"


@pytest.mark.parametrize("mode", MODES + ("stochastic",))
@pytest.mark.parametrize("names", [
    ("bfloat16", "bfloat16", "bfloat16"), ("float16", "float16", "float16"),
    ("float8_e4m3fn", "bfloat16", "float16"),
    ("bfloat16", "float8_e5m2", "float32"),
    ("float16", "float32", "float8_e4m3fnuz"),
    ("float8_e8m0fnu", "float16", "bfloat16"),
    ("float32", "float32", "tfloat32")])
def test_fast_paths_match_the_checked_path(names, mode):
    """Without flags, add/sub/mul (the float32 path) and fma (binary64)
    give the codes of the flags=True path, which the tests above check
    against SoftFloat and the Fraction reference: specials, cancellations,
    products beyond float32's range, stochastic rounding by flat index."""
    out, fa, fb = (lp.get_format(n) for n in names)
    rng = np.random.default_rng(len(mode) * 31 + out.nbits)
    n = 20_000
    a = np.concatenate([random_codes(fa, rng, n),
                        np.repeat(special_codes(fa), 40)])
    b = np.concatenate([random_codes(fb, rng, n),
                        np.tile(special_codes(fb), 40)[:len(a) - n]])
    b = np.resize(b, len(a)).astype(fb.code_dtype)
    if fa == fb:
        b[: n // 4] = a[: n // 4] ^ (fa.sign_bit or 0)   # x - x, x + -x
    c = random_codes(fa, rng, len(a))
    for op, fn in (("add", lp.add), ("sub", lp.sub), ("mul", lp.mul),
                   ("fma", None)):
        kw = dict(rounding=mode, seed=7, saturate=mode == "to_odd")
        try:
            if fn is None:
                want = lp.fma(a, b, c, out, a_format=fa, b_format=fb,
                              c_format=fa, flags=True, **kw)[0]
                got = lp.fma(a, b, c, out, a_format=fa, b_format=fb,
                             c_format=fa, **kw)
            else:
                want = fn(a, b, out, a_format=fa, b_format=fb, flags=True,
                          **kw)[0]
                got = fn(a, b, out, a_format=fa, b_format=fb, **kw)
        except ValueError as e:
            assert "unsigned" in str(e) or "no NaN" in str(e)
            continue
        np.testing.assert_array_equal(got, want, err_msg=f"{op} {names}")


# -- lowprec.jit scalar operations --------------------------------------------

@pytest.mark.parametrize("mode", ["nearest_even", "to_odd", "stochastic"])
def test_jit_operations_match_arrays(mode):
    """lp.jit.add & co. from @njit code give lp.add & co.'s bits and flags
    (the arrays are checked against SoftFloat and the references above)."""
    numba = pytest.importorskip("numba")
    import lowprec.jit as lj
    rng = np.random.default_rng(12)
    n = 3000
    f16 = lp.get_format("float16")
    a, b, c = (random_codes(f16, rng, n) for _ in range(3))
    stoch = mode == "stochastic"
    for op, arity in (("add", 2), ("sub", 2), ("mul", 2), ("div", 2),
                      ("fma", 3), ("sqrt", 1)):
        extra = dict(a_format="float16", b_format="float16") \
            if arity == 2 else dict(a_format="float16")
        if arity == 3:
            extra = dict(a_format="float16", b_format="float16",
                         c_format="float16")
        fn = getattr(lj, op)("e4m3", rounding=mode, flags=True, **extra)
        cols = (a, b, c)[:arity]

        if arity == 1:
            @numba.njit
            def run(x, y, z, out, fl):
                for i in range(x.size):
                    if stoch:
                        r = fn(x[i], 5, i)
                    else:
                        r = fn(x[i])
                    out[i], fl[i] = r
        elif arity == 2:
            @numba.njit
            def run(x, y, z, out, fl):
                for i in range(x.size):
                    if stoch:
                        r = fn(x[i], y[i], 5, i)
                    else:
                        r = fn(x[i], y[i])
                    out[i], fl[i] = r
        else:
            @numba.njit
            def run(x, y, z, out, fl):
                for i in range(x.size):
                    if stoch:
                        r = fn(x[i], y[i], z[i], 5, i)
                    else:
                        r = fn(x[i], y[i], z[i])
                    out[i], fl[i] = r
        out = np.empty(n, np.uint8)
        fl = np.empty(n, np.uint8)
        run(a, b, c, out, fl)
        want, wfl = getattr(lp, op)(*cols, "e4m3", rounding=mode, flags=True,
                                    seed=5, **extra)
        np.testing.assert_array_equal(out, want, err_msg=op)
        np.testing.assert_array_equal(fl, wfl, err_msg=op)
    plain = lj.mul("bf16")
    assert plain(0x3F80, 0x4000) == 0x4000           # 1 * 2 from Python
    cv = lj.convert("float16", "e4m3", rounding="toward_zero")
    assert cv(0x3C01) == 0x38
    with pytest.raises(TypeError, match="flags"):
        lj.add("e4m3", flags=None)
