"""The Numba backend and lowprec.jit against the C kernels, bit for bit.

Differential tests: the same inputs through C (its fast paths and the
core alone, lp_encode_core) and Numba (its fast paths and the general core
alone), comparing codes and error flags exactly.  Exhaustive over every
float16 and bfloat16 input for the formats of at most 8 bits; Hypothesis
draws float32 / float64 inputs at rounding boundaries for every format.
"""
import threading

import ml_dtypes
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowprec as lp
import lowprec.jit
from lowprec import _numba_backend as nb
from lowprec import _numba_core as core
from lowprec._clib import ffi, lib
from lowprec.convert import as_input, make_opts
from lowprec.reference import ref_random
from lowprec.testing import boundary_floats

from helpers import ALL_MODES, DETERMINISTIC

U16 = np.arange(1 << 16, dtype=np.uint16)
INPUTS16 = {"float16": U16.view(np.float16),
            "bfloat16": U16.view(ml_dtypes.bfloat16)}
SMALL = sorted(n for n, f in lp.formats().items() if f.nbits <= 8)
# Formats beyond the registry: IEEE P3109-like, no zero and no NaN, no
# subnormals with a mantissa, an exponent range wider than float32's.
CUSTOM = {
    "p3109_e5m4": lp.FloatFormat(5, 4, bias=9, infs=True, nans="negzero",
                                 negzero=False),
    "nozero_e8m0": lp.FloatFormat(8, 0, bias=127, infs=False, nans="none",
                                  subnormals=False, signed=False),
    "nosub_e4m3": lp.FloatFormat(4, 3, subnormals=False, nans="top",
                                 infs=False),
    "wide_e8m3": lp.FloatFormat(8, 3, bias=120),
    "uint12": lp.IntFormat(12, signed=False),
}
EVERY = sorted(lp.formats()) + sorted(CUSTOM)


def _fmt(name):
    return CUSTOM[name] if name in CUSTOM else lp.get_format(name)


def _ptr(a):
    return ffi.cast("void *", a.ctypes.data)


def _opts(f, mode, saturate=False, subnormals=True, seed=0, rbits=None,
          zero_point=None):
    return make_opts(f, mode, saturate, subnormals, seed, rbits,
                     zero_point)


def c_encode(x, f, *, core_only=False, scale=None, index0=0, **kw):
    """lp_encode (fast paths) or lp_encode_core: (codes, error flags)."""
    a, in_type = as_input(x)
    out = np.empty(a.shape, f.code_dtype)
    sp = ffi.new("double *", scale) if scale is not None else ffi.NULL
    fn = lib.lp_encode_core if core_only else lib.lp_encode
    err = fn(f.struct, _opts(f, **kw), in_type, _ptr(a), a.size, sp, index0,
             _ptr(out))
    return out, err


def nb_encode(x, f, *, path=None, scale=None, **kw):
    """The Numba backend (its own path choice, or path="general")."""
    a, in_type = as_input(x)
    out = np.empty(a.shape, f.code_dtype)
    err = nb.encode(f, a, in_type, _opts(f, **kw), scale, out, path=path)
    return out, err


def assert_same(got, want, what=""):
    (gc, ge), (wc, we) = got, want
    assert ge == we, f"error flags {ge} != {we} {what}"
    if not np.array_equal(gc, wc):
        bad = np.flatnonzero(gc.reshape(-1) != wc.reshape(-1))
        raise AssertionError(f"{bad.size} codes differ {what}, first at "
                             f"{bad[:5]}: {gc.reshape(-1)[bad[:5]]} vs "
                             f"{wc.reshape(-1)[bad[:5]]}")


def bits(a):
    """Array bits for exact comparison of floats (NaN payloads too)."""
    a = np.ascontiguousarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32,
                   8: np.uint64}[a.itemsize])


# -- the generator ---------------------------------------------------------

@numba.njit
def _random(seed, index):
    return core.lp_random_keyed(core.lp_mix64(np.uint64(seed)), index)


def test_generator_matches_c_and_reference():
    for seed, index in [(0, 0), (1, 2), (2**64 - 1, 2**40), (123, 7),
                        (5, 2**32 - 1), (5, 2**32), (7, 2**63 - 1)]:
        want = lib.lp_random(seed, index)
        assert want == ref_random(seed, index)
        assert int(_random(np.uint64(seed), index)) == want
        assert core.mix64_py(seed) == int(core.lp_mix64(np.uint64(seed)))


def test_float32_core_applies_where_path_choice_says():
    """encode_path's test for the float32 core is lp_k32_init's."""
    for name in EVERY:
        f = _fmt(name)
        o = _opts(f, "nearest_even")
        ok = nb.k32(core.format_params(f), nb._opts(o))[0]
        path = nb.encode_path(f, lib.LP_BF16, o)
        assert ok == (path in ("float32", "shift")), name


# -- exhaustive: every float16 / bfloat16 into every format of <= 8 bits ---

@pytest.mark.parametrize("name", SMALL)
def test_every_16bit_input(name):
    f = lp.get_format(name)
    sats = [False, True] if f.kind == "float" else [False]
    subs = [True, False] if f.kind == "float" else [True]
    for source, x in INPUTS16.items():
        for mode in DETERMINISTIC:
            for sat in sats:
                for sub in subs:
                    kw = dict(mode=mode, saturate=sat, subnormals=sub)
                    what = f"({name}, {source}, {kw})"
                    want = c_encode(x, f, **kw)
                    assert_same(c_encode(x, f, core_only=True, **kw), want,
                                what + " C core vs C fast")
                    assert_same(nb_encode(x, f, **kw), want, what)
                    assert_same(nb_encode(x, f, path="general", **kw), want,
                                what + " general")


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float8_e4m3fn",
                                  "int8"])
def test_every_16bit_input_stochastic_and_scaled(name):
    """Stochastic rounding with the same seed (and a few rbits), and a
    scale, on every float16 / bfloat16 input, including 16-bit and wider
    formats (the exhaustive test above covers deterministic modes up to
    8 bits)."""
    f = lp.get_format(name)
    for source, x in INPUTS16.items():
        if f.kind == "int" or f.nan_code is None:
            x = x[~np.isnan(x.astype(np.float32))]
        for kw in (dict(mode="stochastic", seed=9),
                   dict(mode="stochastic", seed=2**63 + 5, rbits=3),
                   dict(mode="nearest_even", scale=0.375),
                   dict(mode="toward_zero", saturate=True, scale=1e-3),
                   dict(mode="stochastic", seed=1, scale=3.0, rbits=40)):
            what = f"({name}, {source}, {kw})"
            want = c_encode(x, f, **kw)
            assert_same(nb_encode(x, f, **kw), want, what)
            assert_same(nb_encode(x, f, path="general", **kw), want,
                        what + " general")


# -- Hypothesis: float32 / float64 at rounding boundaries, every format ----

@settings(max_examples=30, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", EVERY)
def test_boundaries(name, dtype, data):
    f = _fmt(name)
    xs = data.draw(st.lists(boundary_floats(f, dtype, allow_nan=True),
                            min_size=1, max_size=32), label="x")
    x = np.array(xs, dtype)
    kw = dict(mode=data.draw(st.sampled_from(ALL_MODES), label="mode"),
              seed=data.draw(st.integers(0, 2**64 - 1), label="seed"),
              rbits=data.draw(st.sampled_from([None, 1, 7, 31, 32, 33]),
                              label="rbits"),
              scale=data.draw(st.sampled_from([None, 0.375, 3.0, 2.0**-20]),
                              label="scale"))
    if f.kind == "float":
        kw.update(saturate=data.draw(st.booleans(), label="saturate"),
                  subnormals=data.draw(st.booleans(), label="subnormals"))
    else:
        kw.update(zero_point=data.draw(st.sampled_from([None, 3, -7]),
                                       label="zero_point"))
    with np.errstate(over="ignore", invalid="ignore"):
        want = c_encode(x, f, core_only=True, **kw)
    assert_same(c_encode(x, f, **kw), want, "C fast vs C core")
    assert_same(nb_encode(x, f, **kw), want)
    assert_same(nb_encode(x, f, path="general", **kw), want, "general")


# -- stochastic: long arrays (several chunks) and indices across 2^32 ------

@pytest.mark.parametrize("name", ["float8_e4m3fn", "bfloat16", "float16",
                                  "float8_e8m0fnu", "int4"])
def test_stochastic_long_arrays(name):
    f = lp.get_format(name)
    rng = np.random.default_rng(5)
    x64 = rng.standard_normal((1 << 17) + 3) * 4
    if name == "float8_e8m0fnu":
        x64 = np.abs(x64)
    for x in (x64, x64.astype(np.float32),
              x64.astype(np.float16), x64.astype(ml_dtypes.bfloat16)):
        for seed in (0, 12345):
            kw = dict(mode="stochastic", seed=seed)
            want = c_encode(x, f, **kw)
            assert_same(nb_encode(x, f, **kw), want, f"{x.dtype}")
            assert_same(nb_encode(x, f, path="general", **kw), want,
                        f"{x.dtype} general")


@pytest.mark.parametrize("name", ["float8_e4m3fn", "bfloat16", "int8"])
def test_stochastic_index_beyond_2_32(name):
    """The element index enters the generator as two 32-bit words; a chunk
    starting just below 2^32 crosses into the high word."""
    f = lp.get_format(name)
    x = np.random.default_rng(1).standard_normal(4096).astype(np.float32)
    index0 = (1 << 32) - 1000
    o = _opts(f, "stochastic", seed=77)
    want, _ = c_encode(x, f, index0=index0, mode="stochastic", seed=77)
    F, O = core.format_params(f), nb._opts(o)
    key = np.uint64(core.mix64_py(77))
    got = np.empty_like(want)
    u = got.view(nb._UNSIGNED[got.itemsize])
    ok, K = nb.k32(F, O)
    if ok and f.struct.layout == core.LAYOUT_TRUNC32:
        nb._shift32_chunk(x, u, O, nb._shift_params(K), key, index0, False,
                          np.float32(1))
        np.testing.assert_array_equal(got, want)
    elif ok:
        nb._round32_chunk(x, u, O, K, key, index0, False, np.float32(1))
        np.testing.assert_array_equal(got, want)
    nb._general_chunk(x, u, F, O, key, index0, False, np.float32(1), 1.0)
    np.testing.assert_array_equal(got, want)


# -- integer formats: zero points and scales -------------------------------

@pytest.mark.parametrize("name", ["int8", "int8_narrow", "uint8", "int4",
                                  "uint2"])
def test_integer_zero_point_and_scale(name):
    f = lp.get_format(name)
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal(5000) * 40,
                        np.arange(-300, 300) / 2, [np.inf, -np.inf]])
    for dtype in (np.float64, np.float32, np.float16, np.int64):
        xd = x if dtype != np.int64 else x[np.isfinite(x)]
        with np.errstate(over="ignore", invalid="ignore"):
            xd = xd.astype(dtype)
        for mode in ALL_MODES:
            for zp in (None, 5, -3):
                for scale in (None, 0.25, 3.0):
                    kw = dict(mode=mode, zero_point=zp, seed=3, scale=scale)
                    want = c_encode(xd, f, **kw)
                    assert_same(nb_encode(xd, f, **kw), want,
                                f"({dtype.__name__}, {kw})")


def test_error_flags():
    nan = np.array([1.0, np.nan, 2.0])
    assert nb_encode(nan, lp.get_format("fp4"), mode="nearest_even")[1] == \
        core.ERR_NAN
    neg = np.array([1.0, -3.0], np.float32)
    assert nb_encode(neg, lp.get_format("e8m0"), mode="nearest_even")[1] == \
        core.ERR_NEGATIVE
    zero = np.array([0.0, 4.0])
    f = CUSTOM["nozero_e8m0"]
    assert nb_encode(zero, f, mode="nearest_even")[1] == core.ERR_ZERO
    for x, g in ((nan, "fp4"), (neg, "e8m0"), (zero, f)):
        g = _fmt(g) if isinstance(g, str) else g
        assert_same(nb_encode(x, g, mode="nearest_even"),
                    c_encode(x, g, mode="nearest_even"))


# -- decode and quantize ---------------------------------------------------

@pytest.mark.parametrize("name", EVERY)
def test_decode_every_code(name):
    f = _fmt(name)
    if f.kind == "int":
        codes = np.arange(f.min, f.max + 1).astype(f.code_dtype)
    elif f.nbits <= 16:
        codes = np.arange(1 << f.nbits).astype(f.code_dtype)
    else:
        codes = np.random.default_rng(0).integers(
            0, 1 << f.nbits, 1 << 16, dtype=np.uint64).astype(f.code_dtype)
    for dtype in (np.float32, np.float64):
        for scale in (None, 0.375, 1e30):
            for zp in ((None, 4) if f.kind == "int" else (None,)):
                kw = dict(dtype=dtype, scale=scale, zero_point=zp)
                want = lp.decode(codes, f, backend="c", **kw)
                got = lp.decode(codes, f, backend="numba", **kw)
                np.testing.assert_array_equal(bits(got), bits(want),
                                              err_msg=str(kw))


@settings(max_examples=20, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(lp.formats()))
def test_quantize_boundaries(name, dtype, data):
    f = lp.get_format(name)
    xs = data.draw(st.lists(boundary_floats(f, dtype), min_size=1,
                            max_size=32), label="x")
    x = np.array(xs, dtype)
    if f.kind == "int" or f.nan_code is None:
        x = x[~np.isnan(x)]
    if f.kind == "float" and not f.signed:
        x = np.abs(x)
    kw = dict(rounding=data.draw(st.sampled_from(ALL_MODES), label="mode"),
              seed=data.draw(st.integers(0, 2**64 - 1), label="seed"),
              scale=data.draw(st.sampled_from([None, 0.375, 5.0]),
                              label="scale"))
    if f.kind == "float":
        kw["saturate"] = data.draw(st.booleans(), label="saturate")
    with np.errstate(over="ignore", invalid="ignore"):
        want = lp.quantize(x, f, backend="c", **kw)
        got = lp.quantize(x, f, backend="numba", **kw)
    np.testing.assert_array_equal(bits(got), bits(want))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "bfloat16",
                                  "float16", "float4_e2m1fn", "int8"])
def test_quantize_long_arrays(name):
    """Arrays long enough for several chunks, every path."""
    f = lp.get_format(name)
    x = np.random.default_rng(4).standard_normal(200_003) * 30
    for dtype in (np.float32, np.float64):
        for rounding in ("nearest_even", "stochastic", "toward_negative"):
            for scale in (None, 0.5):
                kw = dict(rounding=rounding, seed=11, scale=scale)
                want = lp.quantize(x.astype(dtype), f, backend="c", **kw)
                got = lp.quantize(x.astype(dtype), f, backend="numba", **kw)
                np.testing.assert_array_equal(bits(got), bits(want),
                                              err_msg=str(kw))


# -- the public API with backend="numba" -----------------------------------

def test_public_api_backend_numba_equals_c():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 40, 7)) * 100
    cases = [
        (x, "float8_e4m3fn", {}),
        (x.astype(np.float32)[:, ::2, :], "bfloat16",
         dict(rounding="toward_zero")),
        (x.astype(">f8"), "float16", dict(saturate=True)),
        (x.astype(np.float16), "float8_e5m2", dict(rounding="stochastic",
                                                    seed=4)),
        (x.astype(ml_dtypes.bfloat16), "float6_e2m3fn",
         dict(saturate=True)),
        (x.astype(np.float32), "int8", dict(scale=0.5, zero_point=3)),
        (x.astype(np.float32), "int4",
         dict(zero_point=np.arange(7) - 3, rounding="stochastic", seed=1)),
        (x, "float8_e4m3fn", dict(scale=np.abs(x[0, 0]) + 0.5)),
        (np.array(2.5), "float4_e2m1fn", {}),
        (np.zeros((0, 3)), "float8_e4m3fn", {}),
        ((rng.integers(-1000, 1000, 50)), "float8_e4m3", {}),
    ]
    for arr, name, kw in cases:
        for fn in (lp.encode, lp.quantize):
            want = fn(arr, name, backend="c", **kw)
            got = fn(arr, name, backend="numba", **kw)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(bits(got), bits(want),
                                          err_msg=f"{fn.__name__} {name}")
    codes = lp.encode(x, "e4m3")
    out = np.empty(codes.shape, np.float32)
    r = lp.decode(codes, "e4m3", backend="numba", out=out, scale=2.0)
    assert r is out
    np.testing.assert_array_equal(out, lp.decode(codes, "e4m3", scale=2.0))
    out = np.empty(codes.shape, np.uint8)
    assert lp.encode(x, "e4m3", backend="numba", out=out) is out
    np.testing.assert_array_equal(out, codes)
    with pytest.raises(ValueError, match="fp4|float4_e2m1fn"):
        lp.encode(np.array([np.nan]), "fp4", backend="numba")
    with pytest.raises(ValueError, match="unsigned"):
        lp.quantize(np.array([-4.0], np.float32), "e8m0", backend="numba")


def test_auto_backend_never_compiles():
    """backend="auto" takes Numba only where its kernel is ready."""
    import importlib
    # the module: lowprec.convert, the attribute, is the function lp.convert
    convert = importlib.import_module("lowprec.convert")
    f = lp.get_format("float8_e4m3fn")
    o = _opts(f, "nearest_even")
    assert not convert._use_numba("auto", f, o, lib.LP_F32, 1 << 20)
    assert not convert._use_numba("auto", f, o, lib.LP_F64, 1000)
    assert not convert._use_numba("c", f, o, lib.LP_F64, 1 << 20)
    lp.encode(np.zeros(4), f, backend="numba")       # compiles the kernel
    assert convert._use_numba("auto", f, o, lib.LP_F64, 1 << 20)
    x = np.random.default_rng(0).standard_normal(1 << 18)
    np.testing.assert_array_equal(lp.encode(x, f), lp.encode(x, f,
                                                             backend="c"))


def test_concurrent_calls_from_threads():
    f = lp.get_format("float8_e5m2")
    xs = [np.random.default_rng(i).standard_normal(70_000 + i)
          .astype(np.float32) for i in range(6)]
    want = [lp.encode(x, f, rounding="stochastic", seed=i, backend="c")
            for i, x in enumerate(xs)]
    got = [None] * len(xs)

    def work(i):
        for _ in range(3):
            got[i] = lp.encode(xs[i], f, rounding="stochastic", seed=i,
                               backend="numba")

    threads = [threading.Thread(target=work, args=(i,))
               for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# -- lowprec.jit: scalar functions in user kernels -------------------------

@numba.njit
def _loop(fn, x, out):
    for i in range(x.size):
        out[i] = fn(x[i])


@numba.njit
def _loop_sr(fn, x, out, seed):
    for i in range(x.size):
        out[i] = fn(x[i], seed, i)


@numba.njit
def _loop_flags(fn, x, out):
    err = 0
    for i in range(x.size):
        code, e = fn(x[i])
        out[i] = code
        err |= e
    return err


def _sample(f, dtype, n=3000):
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.standard_normal(n) * 2.0 ** rng.integers(
        -20, 20, n), [0.0, -0.0, np.inf, -np.inf]])
    if f.kind == "int" or f.nan_code is None:
        x = x[np.isfinite(x) | np.isinf(x)]
    else:
        x = np.append(x, np.nan)
    if not f.signed and f.kind == "float":
        x = np.abs(x)
    with np.errstate(over="ignore"):
        return x.astype(dtype)


@pytest.mark.parametrize("name, kw, dtypes", [
    ("float8_e4m3fn", dict(saturate=True), (np.float32, np.float64)),
    ("bfloat16", dict(rounding="to_odd", scale=0.125), (np.float32,)),
    ("float16", dict(subnormals=False, rounding="toward_negative"),
     (np.float64,)),
    ("float8_e8m0fnu", dict(rounding="toward_positive"), (np.float32,)),
    ("int8", dict(scale=0.25, zero_point=-5), (np.float64,)),
])
def test_jit_encoder_in_a_user_loop(name, kw, dtypes):
    f = lp.get_format(name)
    enc = lp.jit.encoder(name, **kw)
    for dtype in dtypes:
        x = _sample(f, dtype)
        out = np.empty(x.shape, f.code_dtype)
        _loop(enc, x, out)
        np.testing.assert_array_equal(out, lp.encode(x, f, **kw))
    # callable from Python too
    assert enc(np.float32(1.5)) == lp.encode(np.float32(1.5), f, **kw)


@pytest.mark.parametrize("name, kw, dtype", [
    ("float4_e2m1fn", dict(rounding="nearest_away"), np.float32),
    ("float8_e5m2", dict(scale=3.0), np.float64),
    ("int4", dict(zero_point=2, scale=0.5), np.float32),
])
def test_jit_quantizer_in_a_user_loop(name, kw, dtype):
    f = lp.get_format(name)
    q = lp.jit.quantizer(name, **kw)
    x = _sample(f, dtype)
    res = np.empty_like(x)
    _loop(q, x, res)
    np.testing.assert_array_equal(bits(res), bits(lp.quantize(x, f, **kw)))


@pytest.mark.parametrize("name, dtype", [("float8_e4m3fn", np.float32),
                                         ("bfloat16", np.float64),
                                         ("int4", np.float32)])
def test_jit_stochastic(name, dtype):
    f = lp.get_format(name)
    enc = lp.jit.encoder(name, rounding="stochastic", rbits=13)
    x = _sample(f, dtype)
    out = np.empty(x.shape, f.code_dtype)
    _loop_sr(enc, x, out, 2**64 - 3)
    want = lp.encode(x, f, rounding="stochastic", rbits=13, seed=2**64 - 3)
    np.testing.assert_array_equal(out, want)
    if name == "bfloat16":
        q = lp.jit.quantizer(name, rounding="stochastic", rbits=13)
        res = np.empty_like(x)
        _loop_sr(q, x, res, 5)
        np.testing.assert_array_equal(bits(res), bits(lp.quantize(
            x, f, rounding="stochastic", rbits=13, seed=5)))


def test_jit_flags_and_decoder():
    enc = lp.jit.encoder("fp4", with_flags=True)
    x = np.array([1.0, np.nan, 7.0], np.float32)
    out = np.empty(3, np.uint8)
    assert _loop_flags(enc, x, out) == lp.jit.ERR_NAN
    assert out[1] == 0
    e8 = lp.jit.encoder("e8m0", with_flags=True)
    assert e8(-3.0) == (0, lp.jit.ERR_NEGATIVE)
    assert e8(0.0) == (0xFF, 0)           # no zero: NaN stands for it
    for name, kw in (("float8_e4m3fn", dict(dtype=np.float64, scale=3.0)),
                     ("bfloat16", {}),
                     ("int8", dict(zero_point=3, scale=0.5))):
        f = lp.get_format(name)
        dec = lp.jit.decoder(name, **kw)
        codes = (np.arange(f.min, f.max + 1) if f.kind == "int"
                 else np.arange(1 << f.nbits)).astype(f.code_dtype)
        res = np.empty(codes.shape, kw.get("dtype", np.float32))
        _loop(dec, codes, res)
        np.testing.assert_array_equal(bits(res), bits(lp.decode(codes, f,
                                                                **kw)))


def test_jit_build_errors():
    with pytest.raises(ValueError, match="unknown format"):
        lp.jit.encoder("e9m9")
    with pytest.raises(ValueError, match="unknown rounding"):
        lp.jit.encoder("e4m3", rounding="sideways")
    with pytest.raises(ValueError, match="integer formats only"):
        lp.jit.quantizer("e4m3", zero_point=2)
    with pytest.raises(ValueError, match="scale"):
        lp.jit.encoder("e4m3", scale=-1.0)
    with pytest.raises(ValueError, match="scale"):
        lp.jit.encoder("e4m3", scale=1e300)    # inf in float32
    with pytest.raises(ValueError, match="rbits"):
        lp.jit.encoder("e4m3", rounding="stochastic", rbits=65)
    with pytest.raises(TypeError, match="float32 or float64"):
        lp.jit.decoder("e4m3", dtype=np.int32)
