"""IEEE P3109 formats (API.md section 9): lp.p3109(k, p, signed, domain)
and the names binary{k}p{p}{s|u}{e|f} / p3109_k{k}p{p}{se|sf|ue|uf}.

Every code is decoded against a decoder written here from the interim
report's formulas (Fractions; it shares nothing with lowprec), the specs'
literal values are checked, rounding is compared on grids of inputs with
a brute-force nearest search over the decoded values and with the exact
reference, and gfloat (where installed) and ml_dtypes' FNUZ types (the
finite signed P3109 formats of 8 bits with p = 3, 4) serve as oracles."""
import bisect
import math
import pickle
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec.reference import ref_encode_array

from helpers import DETERMINISTIC

NAN, INF = "nan", "inf"


# -- the interim report's definition, transcribed ---------------------------

def report_bias(k, p, signed):
    """Signed: 2^(k-p-1); unsigned: 2^(k-p)."""
    return 2 ** (k - p - 1) if signed else 2 ** (k - p)


def report_value(k, p, signed, extended, code):
    """The value of a code: NAN, +-INF (as ("inf", sign)) or a Fraction.
    NaN is 2^(k-1) signed (the code -0 would have), 2^k - 1 unsigned;
    the extended domain's infinities are the codes below: 2^(k-1) - 1 and
    2^k - 1 signed, 2^k - 2 unsigned.  Otherwise an IEEE-style code with
    p - 1 trailing significand bits, subnormals at exponent field 0."""
    nan = 2 ** (k - 1) if signed else 2 ** k - 1
    if code == nan:
        return NAN
    if signed:
        sign, mag = code >> (k - 1), code & (2 ** (k - 1) - 1)
        top = 2 ** (k - 1) - 1
    else:
        sign, mag = 0, code
        top = 2 ** k - 2
    if extended and mag == top:
        return (INF, sign)
    t = p - 1
    bias = report_bias(k, p, signed)
    e, frac = mag >> t, mag & (2 ** t - 1)
    if e == 0:
        v = Fraction(frac) * Fraction(2) ** (1 - bias - t)
    else:
        v = Fraction(2 ** t + frac) * Fraction(2) ** (e - bias - t)
    return -v if sign else v


def _variants(k):
    out = []
    for signed in (True, False):
        for domain in ("extended", "finite"):
            for p in range(1, (k - 1 if signed else k) + 1):
                ebits = k - p + (0 if signed else 1)
                if ebits > 8 or (k == 2 and signed and domain == "extended"):
                    continue
                out.append((k, p, signed, domain))
    return out


CASES = [c for k in (2, 3, 4, 5, 6, 7, 8) for c in _variants(k)] + [
    (10, 4, True, "extended"), (12, 5, False, "finite"),
    (16, 8, True, "extended"), (16, 11, True, "finite"),
    (16, 9, False, "extended")]
K8 = _variants(8)


def _id(c):
    k, p, signed, domain = c
    return f"binary{k}p{p}{'s' if signed else 'u'}{domain[0]}"


def _fmt(c):
    k, p, signed, domain = c
    return lp.p3109(k, p, signed=signed, domain=domain)


# -- every code ---------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_code_decodes_as_the_report_says(case):
    k, p, signed, domain = case
    f = _fmt(case)
    assert f.nbits == k and f.name == _id(case)
    assert f.mbits == p - 1 and f.bias == report_bias(k, p, signed)
    codes = np.arange(1 << k, dtype=np.int64).astype(f.code_dtype)
    got = lp.decode(codes, f, dtype=np.float64)
    nans = infs = 0
    for c, g in zip(codes.tolist(), got.tolist()):
        want = report_value(k, p, signed, domain == "extended", c)
        if want == NAN:
            assert math.isnan(g), (c, g)
            nans += 1
        elif isinstance(want, tuple):
            assert g == (-math.inf if want[1] else math.inf), (c, g)
            infs += 1
        else:
            assert Fraction(g) == want, (c, g, want)
            assert not (g == 0 and math.copysign(1, g) < 0)   # no -0
    assert nans == 1
    assert infs == (0 if domain == "finite" else 2 if signed else 1)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_special_codes_and_limits(case):
    k, p, signed, domain = case
    f = _fmt(case)
    ext = domain == "extended"
    assert f.nan_code == (1 << (k - 1) if signed else (1 << k) - 1)
    if signed:
        top = (1 << (k - 1)) - 1
    else:
        top = (1 << k) - 2
    assert f.inf_code == (top if ext else None)
    assert f.max_code == (top - 1 if ext else top)
    assert Fraction(f.max) == report_value(k, p, signed, ext, f.max_code)
    assert Fraction(f.min_subnormal) == report_value(k, p, signed, ext, 1)
    assert not f.negzero and f.signed == signed


# Literal values (the interim report's tables, as gfloat and others
# transcribe them): (name, code, value)
LITERALS = [
    ("binary8p3se", 0x00, 0.0), ("binary8p3se", 0x01, 2.0 ** -17),
    ("binary8p3se", 0x40, 1.0), ("binary8p3se", 0x7E, 49152.0),
    ("binary8p3se", 0x7F, math.inf), ("binary8p3se", 0xFF, -math.inf),
    ("binary8p3se", 0x80, math.nan), ("binary8p3se", 0xFE, -49152.0),
    ("binary8p4se", 0x01, 2.0 ** -10), ("binary8p4se", 0x08, 2.0 ** -7),
    ("binary8p4se", 0x40, 1.0), ("binary8p4se", 0x7E, 224.0),
    ("binary8p4se", 0x7F, math.inf),
    ("binary8p4sf", 0x7F, 240.0), ("binary8p3sf", 0x7F, 57344.0),
    ("binary8p3ue", 0x01, 2.0 ** -33), ("binary8p3ue", 0x80, 1.0),
    ("binary8p3ue", 0xFD, 2684354560.0), ("binary8p3ue", 0xFE, math.inf),
    ("binary8p3ue", 0xFF, math.nan), ("binary8p3uf", 0xFE, 3221225472.0),
    ("binary8p1se", 0x40, 1.0), ("binary8p1se", 0x7E, 2.0 ** 62),
    ("binary8p1se", 0x01, 2.0 ** -63), ("binary8p7se", 0x40, 1.0),
    ("binary8p7se", 0x01, 2.0 ** -6), ("binary8p7se", 0x7E, 1.96875),
    ("binary8p8ue", 0x80, 1.0), ("binary8p8ue", 0xFD, 1.9765625),
]


@pytest.mark.parametrize("name, code, value", LITERALS)
def test_literal_values(name, code, value):
    f = lp.get_format(name)
    got = f.value(code)
    if math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == value


def test_fnuz_formats_are_the_finite_p3109_ones():
    """binary8p4sf is float8_e4m3fnuz and binary8p3sf float8_e5m2fnuz
    (ml_dtypes as the oracle, every code)."""
    codes = np.arange(256, dtype=np.uint8)
    for name, dt in (("binary8p4sf", ml_dtypes.float8_e4m3fnuz),
                     ("binary8p3sf", ml_dtypes.float8_e5m2fnuz)):
        f = lp.get_format(name)
        assert f == lp.get_format(np.dtype(dt).name)
        with np.errstate(invalid="ignore"):
            want = codes.view(dt).astype(np.float64)
        got = lp.decode(codes, f, dtype=np.float64)
        np.testing.assert_array_equal(got, want)
        x = np.linspace(-300.0, 300.0, 4097)
        with np.errstate(over="ignore"):
            want = x.astype(dt).view(np.uint8)   # NaN beyond the range
        np.testing.assert_array_equal(lp.encode(x, f), want)


# -- encode ------------------------------------------------------------------

@pytest.mark.parametrize("case", K8 + _variants(6) + _variants(4), ids=_id)
def test_codes_round_trip(case):
    f = _fmt(case)
    codes = np.arange(1 << f.nbits, dtype=np.int64).astype(f.code_dtype)
    v = lp.decode(codes, f, dtype=np.float64)
    keep = ~np.isnan(v)
    for mode in DETERMINISTIC:
        for dtype in (np.float64, np.float32):
            back = lp.encode(v[keep].astype(dtype), f, rounding=mode)
            np.testing.assert_array_equal(back, codes[keep])
    assert lp.encode(np.array([np.nan]), f)[0] == f.nan_code


def _brute_nearest_even(f, x):
    """Round-to-nearest-even by search: the decoded finite values, plus
    the grid point above max (the next value with an unbounded exponent,
    whose code would be max_code + 1) standing for overflow.  Ties go to
    the even code.  Returns codes (overflow: the inf code, else NaN)."""
    vals = {}
    for c in range(1 << f.nbits):
        v = f.value(c)
        if math.isfinite(v) and not (v == 0 and c != 0):
            vals[c] = Fraction(v)
    mags = sorted((v, c) for c, v in vals.items() if v >= 0)
    top_v, top_c = mags[-1]
    gap = Fraction(2) ** (f.emax - f.mbits)   # the quantum of max's binade
    over = (top_v + gap, top_c + 1)       # its code parity decides ties
    grid = mags + [over]
    keys = [g[0] for g in grid]
    out = []
    for xv in x:
        a = abs(Fraction(xv))
        i = bisect.bisect_right(keys, a)        # keys[i-1] <= a < keys[i]
        lo = grid[i - 1]
        hi = lo if lo[0] == a else (grid[i] if i < len(grid) else None)
        if hi is None:
            pick = over
        elif a - lo[0] != hi[0] - a:
            pick = lo if a - lo[0] < hi[0] - a else hi
        else:
            pick = lo if lo[1] % 2 == 0 else hi
        if pick is over:
            c = f.inf_code if f.inf_code is not None else f.nan_code
            out.append(c | (f.sign_bit if xv < 0 and f.inf_code is not None
                            else 0))
            continue
        c = pick[1]
        if xv < 0 and c != 0:
            c |= f.sign_bit
        out.append(c)
    return np.array(out)


def _grid(f, signed, neighbours=True):
    """Every finite value, the midpoints and quarter points between
    neighbours (and past max), each with its float64 neighbours."""
    v = f.values()
    v = v[v >= 0]
    top = v[-1] + 2.0 ** (f.emax - f.mbits)   # the grid point above max
    g = np.append(v, [top, 2 * top])
    pts = np.concatenate([g, (g[:-1] + g[1:]) / 2, (3 * g[:-1] + g[1:]) / 4])
    if neighbours:
        pts = np.concatenate([pts, np.nextafter(pts, np.inf),
                              np.nextafter(pts, -np.inf)])
    pts = np.unique(pts[pts >= 0])
    return np.concatenate([pts, -pts[pts > 0]]) if signed else pts


@pytest.mark.parametrize("case", K8 + _variants(6) + _variants(4) +
                         _variants(3), ids=_id)
def test_nearest_even_by_brute_force(case):
    k, p, signed, domain = case
    f = _fmt(case)
    if p == 1:
        pytest.skip("p = 1: see test_precision_one_ties")
    x = _grid(f, signed)
    want = _brute_nearest_even(f, x)
    for backend in ("c", "numba"):
        np.testing.assert_array_equal(lp.encode(x, f, backend=backend), want)
        x32 = x.astype(np.float32)
        ok = x32.astype(np.float64) == x
        np.testing.assert_array_equal(
            lp.encode(x32[ok], f, backend=backend), want[ok])


@pytest.mark.parametrize("case", K8 + _variants(5), ids=_id)
def test_every_mode_against_reference(case):
    k, p, signed, domain = case
    f = _fmt(case)
    x = _grid(f, signed)
    specials = [np.inf, np.nan] + ([-np.inf] if signed else [])
    # the policies differ only at the top binade and beyond, and for inf
    high = np.concatenate([x[np.abs(x) >= f.max / 2], specials])
    for mode in DETERMINISTIC + ("stochastic",):
        seed = 3 if mode == "stochastic" else None
        for sat in (False, True, "satpropagate"):
            x = np.concatenate([_grid(f, signed), specials]) if sat is False \
                else high
            want = ref_encode_array(f, x, rounding=mode, saturate=sat,
                                    seed=seed)
            for backend in ("c", "numba"):
                got = lp.encode(x, f, rounding=mode, saturate=sat, seed=seed,
                                backend=backend)
                np.testing.assert_array_equal(got, want,
                                              err_msg=f"{mode} {sat}")


def test_overflow_and_infinities():
    x = np.array([1e12, -1e12, np.inf, -np.inf])
    se, sf = lp.get_format("binary8p3se"), lp.get_format("binary8p3sf")
    np.testing.assert_array_equal(lp.encode(x, se), [0x7F, 0xFF, 0x7F, 0xFF])
    np.testing.assert_array_equal(lp.encode(x, se, saturate=True),
                                  [0x7E, 0xFE, 0x7E, 0xFE])
    np.testing.assert_array_equal(lp.encode(x, se, saturate="satpropagate"),
                                  [0x7E, 0xFE, 0x7F, 0xFF])
    # the finite domain: NaN where infinity would be
    np.testing.assert_array_equal(lp.encode(x, sf), [0x80] * 4)
    np.testing.assert_array_equal(lp.encode(x, sf, saturate=True),
                                  [0x7F, 0xFF, 0x7F, 0xFF])
    np.testing.assert_array_equal(lp.encode(x, sf, saturate="satpropagate"),
                                  [0x7F, 0xFF, 0x80, 0x80])
    ue = lp.get_format("binary8p3ue")
    np.testing.assert_array_equal(lp.encode(x[[0, 2]], ue), [0xFE, 0xFE])
    np.testing.assert_array_equal(
        lp.encode(x[[0, 2]], ue, saturate="satpropagate"), [0xFD, 0xFE])
    with pytest.raises(ValueError, match="unsigned"):
        lp.encode(np.array([-1.0]), ue)
    # -0 has no code: it is +0
    assert lp.encode(np.array([-0.0, -1e-30]), se).tolist() == [0, 0]


def test_precision_one_ties():
    """p = 1: values are powers of two and the significand is always 1;
    a tie (3 * 2^(e-1)) goes to the larger magnitude, as lowprec rounds
    E8M0 (ml_dtypes' rule).  (gfloat picks the even code instead.)"""
    f = lp.get_format("binary8p1se")
    x = np.array([1.5, 3.0, 6.0, 0.75, 1.4, 1.6])
    np.testing.assert_array_equal(lp.encode(x, f),
                                  [0x41, 0x42, 0x43, 0x40, 0x40, 0x41])
    np.testing.assert_array_equal(
        lp.encode(x, f), ref_encode_array(f, x))


# -- gfloat as an oracle -----------------------------------------------------

def _gfloat_info(case):
    gf = pytest.importorskip("gfloat")
    from gfloat.formats import format_info_p3109
    from gfloat.types import Domain, Signedness
    k, p, signed, domain = case
    return gf, format_info_p3109(
        k, p, Signedness.Signed if signed else Signedness.Unsigned,
        Domain.Extended if domain == "extended" else Domain.Finite)


@pytest.mark.parametrize("case", K8 + _variants(6), ids=_id)
def test_gfloat_decode(case):
    gf, fi = _gfloat_info(case)
    f = _fmt(case)
    assert fi.name == "p3109_k" + _id(case)[len("binary"):]
    assert lp.get_format(fi.name) is f
    codes = np.arange(1 << f.nbits)
    got = lp.decode(codes.astype(f.code_dtype), f, dtype=np.float64)
    want = np.array([gf.decode_float(fi, int(c)).fval for c in codes])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", K8 + _variants(6), ids=_id)
def test_gfloat_round(case):
    gf, fi = _gfloat_info(case)
    from gfloat.types import RoundMode
    k, p, signed, domain = case
    f = _fmt(case)
    # (no +-1 ulp neighbours of midpoints: gfloat decides nearest_away in
    # float64 arithmetic, delta + 0.5 >= 1, which rounds there)
    x = _grid(f, signed, neighbours=False)
    modes = {"nearest_even": RoundMode.TiesToEven,
             "nearest_away": RoundMode.TiesToAway,
             "toward_zero": RoundMode.TowardZero,
             "toward_positive": RoundMode.TowardPositive,
             "toward_negative": RoundMode.TowardNegative}
    for mode, rm in modes.items():
        for sat in (False, True):
            if p == 1 and mode == "nearest_even":
                continue             # ties: see test_precision_one_ties
            want = np.array([gf.round_float(fi, float(v), rm, sat)
                             for v in x])
            got = lp.quantize(x, f, rounding=mode, saturate=sat)
            np.testing.assert_array_equal(got, want, err_msg=f"{mode} {sat}")


# -- names and arguments -----------------------------------------------------

def test_names_and_aliases():
    f = lp.p3109(8, 3)
    assert f.name == "binary8p3se"
    for name in ("binary8p3se", "p3109_k8p3se", "BINARY8P3SE",
                 "P3109_K8P3SE"):
        assert lp.get_format(name) is f
    assert lp.p3109(8, 3, signed=False, domain="finite").name == \
        "binary8p3uf"
    assert lp.get_format("p3109_k6p2sf") == lp.p3109(6, 2, domain="finite")
    assert repr(f) == "FloatFormat('binary8p3se')"
    assert pickle.loads(pickle.dumps(f)) == f
    assert "binary8p3se" not in lp.formats()
    assert "value 49152" in f.describe(0x7E)
    assert "nan" in f.describe(0x80) and "inf" in f.describe(0x7F)
    np.testing.assert_array_equal(
        lp.quantize(np.array([1.1, 3e4]), "binary8p3se"), [1.0, 28672.0])


def test_bad_arguments():
    for bad in (8.0, "8", None, True):
        with pytest.raises(TypeError, match="k"):
            lp.p3109(bad, 3)
        with pytest.raises(TypeError, match="p"):
            lp.p3109(8, bad)
    for k, p, kw in ((1, 1, {}), (17, 9, {}), (8, 0, {}), (8, 8, {}),
                     (8, 9, dict(signed=False)), (16, 7, {}),
                     (16, 8, dict(signed=False)), (2, 1, {})):
        with pytest.raises(ValueError, match="p3109"):
            lp.p3109(k, p, **kw)
    with pytest.raises(ValueError, match="domain"):
        lp.p3109(8, 3, domain="extend")
    with pytest.raises(TypeError, match="domain"):
        lp.p3109(8, 3, domain=None)
    with pytest.raises(TypeError, match="signed"):
        lp.p3109(8, 3, signed=1)
    assert lp.p3109(8, 3, signed=np.bool_(True)) is lp.p3109(8, 3)
    assert lp.p3109(np.int64(8), np.uint8(3)) is lp.p3109(8, 3)
    for name in ("binary8p8se", "p3109_k16p1se", "binary2p1se"):
        with pytest.raises(ValueError, match=name):
            lp.get_format(name)
    with pytest.raises(ValueError, match="P3109"):
        lp.get_format("binary8p3sx")
