"""random_bits= (API.md section 9): the caller's random integers replace
the generator of stochastic rounding.  An element rounds away from zero
iff floor(d * 2^R) + r >= 2^R (add and truncate), d its distance to the
lower neighbour in units of the gap, R = rbits or the dtype's width.

The expected codes come from the rule written here with Fractions: the
two neighbours are the exact reference's toward-zero and away-from-zero
results (lowprec.reference), d their exact fraction."""
import functools
from fractions import Fraction

import numpy as np
import pytest

import lowprec as lp
from lowprec.reference import ref_decode, ref_encode

FORMATS = ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16",
           "float4_e2m1fn", "float8_e8m0fnu", "int8", "binary8p3se"]
DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _value(f, code):
    """|value| as a Fraction, or None for NaN / inf codes."""
    if f.kind == "int":
        return abs(Fraction(code))
    v = ref_decode(f, code)
    if isinstance(v, Fraction) or v == 0:          # -0 decodes to -0.0
        return abs(Fraction(v))
    return None


def _expected(f, x, r, R, saturate=False):
    """The add-and-truncate rule on the exact neighbours of x."""
    out = []
    for xv, rv in zip(x.tolist(), r.tolist()):
        away_mode = "toward_positive" if xv > 0 else "toward_negative"
        lo = ref_encode(f, xv, rounding="toward_zero", saturate=saturate)
        hi = ref_encode(f, xv, rounding=away_mode, saturate=saturate)
        if lo == hi:
            out.append(lo)
            continue
        vlo, vhi = _value(f, lo), _value(f, hi)
        if vhi is None or vhi == vlo:
            # overflow to inf / NaN (or saturated): d against the gap the
            # format would have above max
            gap = Fraction(2) ** (f.emax - f.mbits)
        else:
            gap = vhi - vlo
        d = (abs(Fraction(xv)) - vlo) / gap
        away = int(d * 2 ** R) + rv >= 2 ** R        # floor: d >= 0
        out.append(hi if away else lo)
    return np.array(out)


def _inputs(f, n, rng):
    """Values between neighbours at random fractions, exact values and
    points near the top (overflow) and the bottom (subnormals)."""
    v = f.values() if f.kind == "float" else np.arange(f.min, f.max + 1.0)
    v = v[np.isfinite(v)]
    i = rng.integers(0, v.size - 1, n)
    t = rng.random(n)
    x = v[i] + (v[i + 1] - v[i]) * t
    x[: n // 8] = v[i[: n // 8]]                              # exact
    top = float(f.max) if f.kind == "int" else f.max
    x[n // 8: n // 4] = top * (1 + rng.random(n // 4 - n // 8) / 16)
    return x


@pytest.mark.parametrize("backend", ["c", "numba"])
@pytest.mark.parametrize("name", FORMATS)
def test_rule_against_fractions(name, backend):
    f = lp.get_format(name)
    rng = np.random.default_rng(11)
    n = 400
    x = _inputs(f, n, rng)
    for width, R in [(8, None), (16, None), (32, None), (64, None),
                     (8, 3), (16, 11), (32, 1), (64, 40), (64, 64)]:
        bits = width if R is None else R
        dt = DTYPES[width]
        r = rng.integers(0, 2 ** bits, n, dtype=np.uint64, endpoint=False)
        r[:20] = 0                                   # edge values
        r[20:40] = 2 ** bits - 1
        r = r.astype(dt)
        want = _expected(f, x, r, bits)
        for dtype in (np.float64, np.float32):
            with np.errstate(over="ignore"):
                xd = x.astype(dtype)
            keep = xd.astype(np.float64) == x
            got = lp.encode(xd, f, rounding="stochastic", random_bits=r,
                            rbits=R, backend=backend)
            np.testing.assert_array_equal(got[keep], want[keep],
                                          err_msg=f"{width} {R} {dtype}")
            q = lp.quantize(xd, f, rounding="stochastic", random_bits=r,
                            rbits=R, backend=backend)
            np.testing.assert_array_equal(
                q[keep], lp.decode(want[keep].astype(f.code_dtype), f,
                                   dtype=dtype))


def test_edge_words():
    """r = 0 rounds away only when d >= 1 (never): toward zero; r = 2^R - 1
    rounds away whenever floor(d * 2^R) >= 1."""
    x = np.array([1.3, -1.3, 1.25 + 2 ** -12, 1.25 + 2 ** -20, 1.25])
    for R in (1, 8, 16, 64):
        dt = DTYPES[max(8, 1 << (R - 1).bit_length())]
        zero = np.zeros(x.size, dt)
        ones = np.full(x.size, 2 ** R - 1, np.uint64).astype(dt)
        rz = lp.encode(x, "e4m3", rounding="toward_zero")
        np.testing.assert_array_equal(
            lp.encode(x, "e4m3", rounding="stochastic", random_bits=zero,
                      rbits=R), rz)
        got = lp.encode(x, "e4m3", rounding="stochastic", random_bits=ones,
                        rbits=R)
        # d = 0.4, 0.4, 2^-9, 2^-17, 0 in units of the gap 2^-3
        far = [R >= 2, R >= 2, R >= 9, R >= 17, False]
        want = np.where(far, rz + 1, rz)
        np.testing.assert_array_equal(got, want, err_msg=str(R))


def test_broadcast_and_replay():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 50)).astype(np.float32)
    row = rng.integers(0, 2 ** 16, 50, dtype=np.uint64).astype(np.uint16)
    got = lp.encode(x, "e5m2", rounding="stochastic", random_bits=row)
    full = lp.encode(x, "e5m2", rounding="stochastic",
                     random_bits=np.broadcast_to(row, x.shape).copy())
    np.testing.assert_array_equal(got, full)
    # a scalar word for every element
    one = lp.encode(x, "e5m2", rounding="stochastic",
                    random_bits=np.uint8(77))
    np.testing.assert_array_equal(
        one, lp.encode(x, "e5m2", rounding="stochastic",
                       random_bits=np.full(x.shape, 77, np.uint8)))
    # a replayed stream gives the same codes, whatever the seed, threads
    # or chunking; a different stream differs somewhere
    words = rng.integers(0, 2 ** 32, x.shape, dtype=np.uint64).astype(
        np.uint32)
    a = lp.encode(x, "e5m2", rounding="stochastic", random_bits=words,
                  seed=1)
    b = lp.encode(x, "e5m2", rounding="stochastic", random_bits=words,
                  seed=2)
    np.testing.assert_array_equal(a, b)
    parts = np.concatenate([lp.encode(x[i], "e5m2", rounding="stochastic",
                                      random_bits=words[i])
                            for i in range(6)]).reshape(x.shape)
    np.testing.assert_array_equal(a, parts)
    other = lp.encode(x, "e5m2", rounding="stochastic",
                      random_bits=words ^ np.uint32(0x80000000))
    assert np.any(other != a)


def test_threads_and_large_arrays(monkeypatch):
    """The words are indexed by the flat element index: a split over
    threads gives the same codes."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=1 << 18)
    w = rng.integers(0, 2 ** 64, x.size, dtype=np.uint64)
    one = lp.encode(x, "bf16", rounding="stochastic", random_bits=w)
    monkeypatch.setenv("LOWPREC_NUM_THREADS", "4")
    many = lp.encode(x, "bf16", rounding="stochastic", random_bits=w)
    np.testing.assert_array_equal(one, many)
    sub = slice(1000, 1100)
    np.testing.assert_array_equal(
        one[sub], _expected(lp.get_format("bf16"), x[sub], w[sub], 64))


def test_with_other_options():
    x = np.array([300.0, -300.0, 1e6, 0.3])
    w = np.array([0, 255, 128, 255], np.uint8)
    f = lp.get_format("e4m3")
    for sat in (False, True, "satpropagate"):
        got = lp.encode(x, f, rounding="stochastic", random_bits=w,
                        saturate=sat)
        np.testing.assert_array_equal(got, _expected(f, x, w, 8, sat))
    # scale and zero point
    got = lp.encode(np.array([10.0, 11.0]), "int8", scale=4.0,
                    zero_point=3, rounding="stochastic",
                    random_bits=np.array([192, 191], np.uint8))
    # 2.5 -> d = 0.5: 128 + 192 >= 256 away; 2.75: 192 + 191 >= 256
    np.testing.assert_array_equal(got, [6, 6])
    got = lp.encode(np.array([10.0, 10.0]), "int8", scale=4.0,
                    zero_point=np.array([3, 4]), rounding="stochastic",
                    random_bits=np.array([127, 128], np.uint8))
    np.testing.assert_array_equal(got, [5, 7])


@pytest.mark.parametrize("entry", ["encode", "quantize"])
def test_errors(entry):
    fn = functools.partial(getattr(lp, entry), np.ones((2, 3)), "e4m3")
    ok = np.zeros(3, np.uint8)
    with pytest.raises(ValueError, match="random_bits.*stochastic"):
        fn(random_bits=ok)
    with pytest.raises(ValueError, match="random_bits.*stochastic"):
        fn(random_bits=ok, rounding="nearest_even")
    sr = functools.partial(fn, rounding="stochastic")
    for bad in (np.zeros(3, np.int8), np.zeros(3, np.float32),
                np.zeros(3, bool), [1, 2, 3], 5, "x", np.zeros(3, np.int64)):
        with pytest.raises(TypeError, match="random_bits"):
            sr(random_bits=bad)
    with pytest.raises(ValueError, match="2\\^3"):
        sr(random_bits=np.array([0, 8, 1], np.uint8), rbits=3)
    with pytest.raises(ValueError, match="random_bits.*broadcast"):
        sr(random_bits=np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="random_bits.*broadcast"):
        sr(random_bits=np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="rbits"):
        sr(random_bits=ok, rbits=65)
    # R = 64 takes every uint64; rbits larger than the dtype's width is fine
    sr(random_bits=np.full(3, 2 ** 64 - 1, np.uint64))
    sr(random_bits=np.full(3, 255, np.uint8), rbits=16)
    with pytest.raises(ValueError, match="random_bits"):
        lp.quantize(np.ones(4), "mxfp4", random_bits=np.zeros(3, np.uint8),
                    rounding="stochastic")


@pytest.mark.parametrize("name", ["binary8p3se", "binary8p4se",
                                  "binary8p3ue", "binary6p3sf"])
def test_gfloat_stochastic_fastest(name):
    """gfloat's RoundMode.StochasticFastest is the same rule (delta +
    r * 2^-R >= 1, exact in float64 for these R)."""
    pytest.importorskip("gfloat")
    from gfloat import round_float
    from gfloat.types import RoundMode
    f = lp.get_format(name)
    info = pytest.importorskip("gfloat.formats").format_info_p3109
    from gfloat.types import Domain, Signedness
    k, p = f.nbits, f.mbits + 1
    fi = info(k, p, Signedness.Signed if f.signed else Signedness.Unsigned,
              Domain.Extended if f.inf_code is not None else Domain.Finite)
    rng = np.random.default_rng(2)
    x = _inputs(f, 300, rng)
    if not f.signed:
        x = np.abs(x)
    for R in (1, 4, 8, 13):
        r = rng.integers(0, 2 ** R, x.size, dtype=np.uint64).astype(
            np.uint16)
        r[:10], r[10:20] = 0, 2 ** R - 1
        got = lp.quantize(x, f, rounding="stochastic", random_bits=r,
                          rbits=R)
        want = [round_float(fi, float(v), RoundMode.StochasticFastest,
                            False, int(rv), R) for v, rv in zip(x, r)]
        np.testing.assert_array_equal(got, want, err_msg=str(R))


def test_vectors_seed(capsys):
    """python -m lowprec vectors FMT --rounding stochastic --seed S: the
    same seed gives the same file; without --seed a fresh seed is drawn
    and printed in the header, and replaying it gives the same file."""
    from lowprec.__main__ import main

    def run(*args):
        assert main(["vectors", "e5m2", "--rounding", "stochastic",
                     *args]) == 0
        return capsys.readouterr().out

    a, b = run("--seed", "7"), run("--seed", "7")
    assert a == b and ", seed=7\n" in a.split("\n", 1)[0] + "\n"
    assert run("--seed", "8") != a
    fresh = run()
    seed = fresh.split("\n", 1)[0].rsplit("seed=", 1)[1]
    assert run("--seed", seed) == fresh
    # the codes are encode's with that seed
    lines = [ln.split(",") for ln in a.splitlines()[2:]]
    bits = np.array([int(ln[0], 16) for ln in lines], np.uint64).astype(
        np.uint32).view(np.float32)
    codes = [int(ln[2], 16) for ln in lines]
    np.testing.assert_array_equal(
        lp.encode(bits, "e5m2", rounding="stochastic", seed=7), codes)
    with pytest.raises(SystemExit):
        main(["vectors", "e5m2", "--rounding", "stochastic", "--seed",
              "-1"])
    assert "seed" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "mxint8"])
def test_quantize_blocks(recipe):
    """quantize_blocks takes random_bits too: the element codes are the
    rule applied to x / X, X the block's power-of-two scale."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 64)) * 3
    w = rng.integers(0, 256, x.shape, dtype=np.uint64).astype(np.uint8)
    w[0, :8], w[1, :8] = 0, 255
    bt = lp.quantize_blocks(x, recipe, rounding="stochastic", random_bits=w)
    el = bt.format.element
    X = np.repeat(bt.scales.astype(np.float64), 32, axis=-1)
    codes = np.asarray(bt.codes).view(np.int8 if el.kind == "int"
                                      else np.uint8)
    y = x / X                                           # exact: 2^k
    if el.kind == "int":                 # mxint8: q / 64 on the int8 grid
        want = _expected(el, (y * 64).reshape(-1), w.reshape(-1), 8, True)
    else:
        want = _expected(el, y.reshape(-1), w.reshape(-1), 8, True)
    np.testing.assert_array_equal(codes.reshape(-1).astype(np.int64),
                                  want.astype(np.int64))
    again = lp.quantize(x, recipe, rounding="stochastic", random_bits=w)
    np.testing.assert_array_equal(again, bt.dequantize(np.float64))
    with pytest.raises(ValueError, match="random_bits"):
        lp.quantize_blocks(x, recipe, random_bits=w)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float16",
                                  "float4_e2m1fn", "binary8p3se", "tfloat32",
                                  "int8"])
def test_paths_agree(name):
    """float16, bfloat16 and float32 inputs (the C float32 core with the
    words) give the codes of their float64 values (the general core), in
    C and Numba, with a scale too; every float16 bit pattern."""
    import ml_dtypes
    rng = np.random.default_rng(9)
    u = np.arange(1 << 16, dtype=np.uint16)
    w = rng.integers(0, 2 ** 16, u.size, dtype=np.uint64).astype(np.uint16)
    for xs in (u.view(np.float16), u.view(ml_dtypes.bfloat16),
               rng.normal(size=u.size).astype(np.float32) * 100):
        with np.errstate(invalid="ignore"):
            x64 = xs.astype(np.float64)
        keep = ~np.isnan(x64)                  # fp4 and int8 have no NaN
        xs, x64, ww = xs[keep], x64[keep], w[keep]
        kw = dict(rounding="stochastic", random_bits=ww, saturate=True)
        want = lp.encode(x64, name, backend="c", **kw)
        for backend in ("c", "numba"):
            np.testing.assert_array_equal(
                lp.encode(xs, name, backend=backend, **kw), want)
        if xs.dtype == np.float32:
            np.testing.assert_array_equal(
                lp.encode(xs, name, scale=0.5, **kw),
                lp.encode(x64 * 2, name, **kw))


# -- the arithmetic operations take random_bits too (API.md section 9) -------

@pytest.mark.parametrize("op", ["add", "mul", "div"])
@pytest.mark.parametrize("fmt", ["e4m3", "bfloat16", "float16"])
def test_operations_take_random_bits(op, fmt):
    """lp.add/mul/div with random_bits: the result is the exact result's
    lower neighbour (toward zero) unless floor(d * 2^8) + r >= 2^8, d the
    fraction of the gap; checked against the toward-zero and away-from-
    zero results of the same operation."""
    import lowprec as lp
    from fractions import Fraction
    f = lp.get_format(fmt)
    rng = np.random.default_rng(11)
    n = 4000
    vals = rng.standard_normal((2, n)) * 4
    a, b = (lp.encode(v, f) for v in vals)
    r = rng.integers(0, 256, n).astype(np.uint8)
    got = getattr(lp, op)(a, b, f, rounding="stochastic", random_bits=r)
    lo = getattr(lp, op)(a, b, f, rounding="toward_zero")
    dec = lambda c: lp.decode(c, f, dtype=np.float64)  # noqa: E731
    A, B, L = dec(a), dec(b), dec(lo)
    ok = np.isfinite(A) & np.isfinite(B) & (B != 0) & np.isfinite(L)
    for i in np.flatnonzero(ok)[:1500]:
        x = {"add": Fraction(A[i]) + Fraction(B[i]),
             "mul": Fraction(A[i]) * Fraction(B[i]),
             "div": Fraction(A[i]) / Fraction(B[i])}[op]
        low = Fraction(L[i])
        if x == low:
            assert got[i] == lo[i]
            continue
        up = getattr(lp, op)(a[i:i + 1], b[i:i + 1], f,
                             rounding="toward_zero")
        # the neighbour away from zero: one code further in magnitude
        away = int(up[0]) + 1
        top = float(lp.decode(np.array([away], f.code_dtype), f,
                              dtype=np.float64)[0])
        if not np.isfinite(top):
            continue                            # overflow: no neighbour
        gap = abs(Fraction(top) - low)
        d = abs(x - low) / gap
        expect_away = int(d * 256) + int(r[i]) >= 256
        assert (int(got[i]) == away) == expect_away, (i, x, r[i])
    # replay: the same words give the same codes
    again = getattr(lp, op)(a, b, f, rounding="stochastic", random_bits=r)
    assert np.array_equal(got, again)
