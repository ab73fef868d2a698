"""Every bad argument gets a clear error, never a silently different result
(issue 12).

Organised by argument kind; each kind is parametrized over the entry
points that take it and over both backends.  Wrong kinds of value raise
TypeError, values out of range ValueError, and every message names the
argument.  The integer formats' zero points are checked against the exact
reference at the ends of every range.
"""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowprec as lp
from lowprec.reference import ref_encode, ref_random
from lowprec.testing import assert_codes_equal

BACKENDS = ("c", "numba")
X = np.array([-3.7, -0.5, 0.0, 0.26, 1.5, 2.5, 100.0], np.float32)


def _raises(exc, name, fn):
    """fn() raises exc (not a subclass of the other argument error) with a
    message naming the argument."""
    with pytest.raises(exc) as info:
        fn()
    assert name in str(info.value), str(info.value)
    other = ValueError if exc is TypeError else TypeError
    assert not isinstance(info.value, other), info.value
    return info.value


# -- the entry points, as calls taking one keyword argument --------------

def _encode(backend, fmt="int8", x=X, **kw):
    return lp.encode(x, fmt, backend=backend, **kw)


def _quantize(backend, fmt="int8", x=X, **kw):
    return lp.quantize(x, fmt, backend=backend, **kw)


def _quantize16(backend, fmt="int8", x=X, **kw):
    # float16 inputs take quantize's encode-then-decode path
    return lp.quantize(x.astype(np.float16), fmt, backend=backend, **kw)


def _decode(backend, fmt="int8", **kw):
    return lp.decode(np.arange(7, dtype=np.int8), fmt, backend=backend,
                     **kw)


ZP_ENTRIES = {"encode": _encode, "quantize": _quantize,
              "quantize_f16": _quantize16, "decode": _decode}
ENCODE_ENTRIES = {"encode": _encode, "quantize": _quantize,
                  "quantize_f16": _quantize16}


def _jit(factory, **kw):
    return getattr(lp.jit, factory)("int8", **kw)


# -- zero_point ------------------------------------------------------------

ZP_WRONG_KIND = [0.5, 3.0, np.float64(2.0), "3", np.array(0.5), [0.5],
                 np.array([1.0, 2.0]), True, np.bool_(False), b"1"]
ZP_OUT_OF_RANGE = [2**80, -2**80, 2**16 + 1, -(2**16) - 1,
                   np.array([0, 2**20]), np.uint64(2**63)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ZP_ENTRIES)
@pytest.mark.parametrize("bad", ZP_WRONG_KIND, ids=repr)
def test_zero_point_of_the_wrong_kind(entry, backend, bad):
    _raises(TypeError, "zero_point",
            lambda: ZP_ENTRIES[entry](backend, zero_point=bad))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ZP_ENTRIES)
@pytest.mark.parametrize("bad", ZP_OUT_OF_RANGE, ids=repr)
def test_zero_point_out_of_range(entry, backend, bad):
    err = _raises(ValueError, "zero_point",
                  lambda: ZP_ENTRIES[entry](backend, zero_point=bad))
    assert "65536" in str(err)          # the allowed range


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ZP_ENTRIES)
def test_zero_point_on_a_float_format_and_bad_shape(entry, backend):
    call = ZP_ENTRIES[entry]
    _raises(ValueError, "zero_point",
            lambda: call(backend, fmt="e4m3", zero_point=1))
    _raises(ValueError, "zero_point",
            lambda: call(backend, zero_point=np.arange(3)))


@pytest.mark.parametrize("factory", ["encoder", "quantizer", "decoder"])
def test_jit_zero_point(factory):
    for bad in (0.5, "3", np.array(0.5), True, np.arange(3)):
        _raises(TypeError, "zero_point", lambda: _jit(factory,
                                                      zero_point=bad))
    for bad in (2**80, -(2**17)):
        _raises(ValueError, "zero_point", lambda: _jit(factory,
                                                       zero_point=bad))
    _raises(ValueError, "zero_point",
            lambda: getattr(lp.jit, factory)("e4m3", zero_point=1))


# -- zero points against the exact reference, every integer format -------

def _int_formats():
    out = []
    for bits in range(2, 17):
        out += [lp.IntFormat(bits), lp.IntFormat(bits, signed=False),
                lp.IntFormat(bits, narrow=True)]
    return out


INT_FORMATS = _int_formats()


def _cases(f):
    """(inputs, zero points): the zero points at both ends of the format's
    range, 0 and the ends of the allowed range; the inputs around every
    place where x + zp crosses an end of the format's range."""
    zps = sorted({f.min, f.max, 0, 1, -1, -(2**16), 2**16})
    xs = {0.0, 0.5, -0.5, 1e30, -1e30, np.inf, -np.inf}
    for zp in zps:
        for end in (f.min, f.max):
            for d in (-1.5, -1, -0.5, 0, 0.5, 1, 1.5):
                xs.add(float(end - zp + d))
    return np.array(sorted(xs), np.float64), zps


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rounding", ["nearest_even", "toward_negative",
                                      "stochastic"])
@pytest.mark.parametrize("f", INT_FORMATS, ids=repr)
def test_zero_points_at_the_range_ends_are_exact(f, rounding, backend):
    x, zps = _cases(f)
    n = x.size

    def ref(zp_of):
        return np.array([ref_encode(f, float(x[i]), rounding,
                                    zero_point=int(zp_of[i]),
                                    rand=ref_random(9, i))
                         for i in range(n)])

    kw = dict(rounding=rounding, seed=9, backend=backend)
    for zp in zps:
        want = ref([zp] * n)
        got = lp.encode(x, f, zero_point=zp, **kw)
        np.testing.assert_array_equal(got.astype(np.int64), want,
                                      err_msg=f"scalar zero_point {zp}")
        got = lp.encode(x, f, zero_point=np.full(n, zp), **kw)
        np.testing.assert_array_equal(got.astype(np.int64), want,
                                      err_msg=f"array zero_point {zp}")
    mixed = np.array([zps[i % len(zps)] for i in range(n)])
    want = ref(mixed)
    got = lp.encode(x, f, zero_point=mixed, **kw)
    np.testing.assert_array_equal(got.astype(np.int64), want)
    # float32 inputs (quantize's one-pass and two-pass paths agree too)
    x32 = x.astype(np.float32)
    q = lp.quantize(x32, f, zero_point=mixed, **kw)
    c = lp.encode(x32, f, zero_point=mixed, **kw)
    np.testing.assert_array_equal(
        q, (c.astype(np.int64) - mixed).astype(np.float32))
    d = lp.decode(c, f, zero_point=mixed, dtype=np.float64, backend=backend)
    np.testing.assert_array_equal(d, c.astype(np.int64) - mixed)


def test_the_onnx_examples():
    """With array zero points the 16-bit formats were rounded through a
    saturating int16 intermediate (issue 12)."""
    i16, u16 = lp.IntFormat(16), lp.IntFormat(16, signed=False)
    for backend in BACKENDS:
        assert lp.encode(np.float32([-40000]), i16, zero_point=np.array([1]),
                         backend=backend)[0] == -32768
        assert lp.encode(np.float32([40000]), u16, zero_point=np.array([0]),
                         backend=backend)[0] == 40000
        got = lp.encode(np.float32([0, -32768.0, 40000]), u16,
                        zero_point=np.array([32768]), backend=backend)
        np.testing.assert_array_equal(got, [32768, 0, 65535])
        np.testing.assert_array_equal(
            got, lp.encode(np.float32([0, -32768.0, 40000]), u16,
                           zero_point=32768, backend=backend))


# -- seed ------------------------------------------------------------------

SEED_WRONG_KIND = [1.9, 1.0, np.float64(3), "12", True, np.bool_(True),
                   [1], np.array([1, 2]), np.array(1.0)]
SEED_OUT_OF_RANGE = [-1, np.int64(-1), 2**64, 2**64 + 5, 2**200]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ENCODE_ENTRIES)
def test_seed(entry, backend):
    call = functools.partial(ENCODE_ENTRIES[entry], backend, "bf16",
                             rounding="stochastic")
    for bad in SEED_WRONG_KIND:
        _raises(TypeError, "seed", lambda: call(seed=bad))
    for bad in SEED_OUT_OF_RANGE:
        err = _raises(ValueError, "seed", lambda: call(seed=bad))
        assert "2^64" in str(err)
    top = call(seed=2**64 - 1)
    np.testing.assert_array_equal(call(seed=np.uint64(2**64 - 1)), top)
    np.testing.assert_array_equal(call(seed=np.array(2**64 - 1, np.uint64)),
                                  top)
    np.testing.assert_array_equal(call(seed=np.int8(5)), call(seed=5))


def test_jit_stochastic_seed_and_index_from_python():
    enc = lp.jit.encoder("bf16", rounding="stochastic")
    q = lp.jit.quantizer("bf16", rounding="stochastic")
    for fn in (enc, q):
        for bad in (1.5, "12", True):
            _raises(TypeError, "seed", lambda: fn(1.1, bad, 0))
        for bad in (-1, 2**64 + 5):
            _raises(ValueError, "seed", lambda: fn(1.1, bad, 0))
        _raises(TypeError, "index", lambda: fn(1.1, 3, 0.5))
        _raises(ValueError, "index", lambda: fn(1.1, 3, -1))
    x = np.float32(1.1)
    assert enc(x, 2**64 - 1, 7) == lp.encode(
        np.full(8, x), "bf16", rounding="stochastic", seed=2**64 - 1)[7]


# -- rbits -----------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ENCODE_ENTRIES)
def test_rbits(entry, backend):
    call = functools.partial(ENCODE_ENTRIES[entry], backend, "bf16",
                             rounding="stochastic", seed=1)
    for bad in (1.5, 8.0, "8", True, np.array([8])):
        _raises(TypeError, "rbits", lambda: call(rbits=bad))
    for bad in (0, -3, 65, 2**70):
        err = _raises(ValueError, "rbits", lambda: call(rbits=bad))
        assert "64" in str(err)
    np.testing.assert_array_equal(call(rbits=np.uint8(12)), call(rbits=12))
    np.testing.assert_array_equal(call(rbits=None), call(rbits=64))


@pytest.mark.parametrize("factory", ["encoder", "quantizer"])
def test_jit_rbits(factory):
    make = getattr(lp.jit, factory)
    for bad in (1.5, "8", True):
        _raises(TypeError, "rbits", lambda: make("e4m3", "stochastic",
                                                 rbits=bad))
    for bad in (0, 65, 2**70):
        _raises(ValueError, "rbits", lambda: make("e4m3", "stochastic",
                                                  rbits=bad))


# -- boolean options -------------------------------------------------------

BOOL_WRONG_KIND = [1, 0, 1.0, "yes", "False", None, np.array([True]),
                   np.int8(1)]
# saturate also takes policy names: other strings are unknown names
SAT_WRONG_KIND = [b for b in BOOL_WRONG_KIND if not isinstance(b, str)]
SAT_UNKNOWN = ["yes", "False", "True", "SATFINITE", ""]


def _bool_or_sat(call, name):
    """call(**{name: bad}) raises TypeError (wrong kind) or, for saturate,
    ValueError on an unknown policy name."""
    wrong = SAT_WRONG_KIND if name == "saturate" else BOOL_WRONG_KIND
    for bad in wrong:
        _raises(TypeError, name, lambda: call(**{name: bad}))
    if name == "saturate":
        for bad in SAT_UNKNOWN:
            _raises(ValueError, name, lambda: call(**{name: bad}))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ENCODE_ENTRIES)
@pytest.mark.parametrize("name", ["saturate", "subnormals"])
def test_boolean_options(name, entry, backend):
    call = functools.partial(ENCODE_ENTRIES[entry], backend, "e4m3",
                             x=X * 100)
    _bool_or_sat(call, name)
    for b in (True, False):
        np.testing.assert_array_equal(call(**{name: np.bool_(b)}),
                                      call(**{name: b}))


@pytest.mark.parametrize("factory", ["encoder", "quantizer"])
def test_jit_boolean_options(factory):
    make = getattr(lp.jit, factory)
    for name in ("saturate", "subnormals"):
        _bool_or_sat(functools.partial(make, "e4m3"), name)


# -- rounding and backend (choices) ----------------------------------------

@pytest.mark.parametrize("entry", ENCODE_ENTRIES)
def test_rounding_and_backend(entry):
    call = ENCODE_ENTRIES[entry]
    for bad in (None, 3, lp.get_format("e4m3")):
        _raises(TypeError, "rounding", lambda: call("c", rounding=bad))
    _raises(ValueError, "rounding", lambda: call("c", rounding="sideways"))
    _raises(TypeError, "backend", lambda: call(None))
    _raises(ValueError, "backend", lambda: call("gpu"))
    _raises(TypeError, "backend", lambda: _decode(1))
    _raises(TypeError, "rounding", lambda: lp.jit.encoder("e4m3", None))


# -- counts: unpack's n ------------------------------------------------------

@pytest.mark.parametrize("fmt", ["fp4", "int4", "float6_e3m2fn", "int2"])
def test_unpack_count(fmt):
    codes = lp.encode(X, fmt, saturate=True)
    packed = lp.pack(codes, fmt)
    for bad in (1.7, 2.0, "2", None, np.float64(3), True, [2]):
        _raises(TypeError, "n", lambda: lp.unpack(packed, fmt, bad))
    _raises(ValueError, "n", lambda: lp.unpack(packed, fmt, -1))
    _raises(ValueError, "need", lambda: lp.unpack(packed, fmt, 2**70))
    np.testing.assert_array_equal(lp.unpack(packed, fmt, np.int16(7)),
                                  codes)
    np.testing.assert_array_equal(lp.unpack(packed, fmt, np.array(7)), codes)


# -- scale -----------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ZP_ENTRIES)
def test_scale(entry, backend):
    call = ZP_ENTRIES[entry]
    for bad in ("2", [True], b"1"):
        _raises(TypeError, "scale", lambda: call(backend, scale=bad))
    for bad in (0, -1.0, np.inf, np.nan, [1.0, -1.0, 1, 1, 1, 1, 1]):
        _raises(ValueError, "scale", lambda: call(backend, scale=bad))


@pytest.mark.parametrize("factory", ["encoder", "quantizer", "decoder"])
def test_jit_scale(factory):
    make = getattr(lp.jit, factory)
    for bad in ("2", True, np.array([1.0, 2.0])):
        _raises(TypeError, "scale", lambda: make("e4m3", scale=bad))
    for bad in (0.0, -1.0, 1e300, np.nan):
        _raises(ValueError, "scale", lambda: make("e4m3", scale=bad))


# -- codes: lp.jit decoders called from Python, describe, testing ----------

@pytest.mark.parametrize("fmt, code, value", [
    ("e4m3", 300, lp.decode(np.uint8([0x2C]), "e4m3", dtype=np.float64)[0]),
    ("fp4", 16, 0.0),
    ("int4", 100, 100.0)])
def test_jit_decoder_codes(fmt, code, value):
    dec = lp.jit.decoder(fmt, dtype=np.float64)
    err = _raises(ValueError, "code", lambda: dec(code))
    assert str(code) in str(err) and "range" in str(err)
    for bad in (1.5, "3", None, True):
        _raises(TypeError, "code", lambda: dec(bad))
    f = lp.get_format(fmt)
    lo = f.min if f.kind == "int" else 0
    assert dec(np.int64(lo)) == lp.decode(np.array([lo], f.code_dtype), f,
                                          dtype=np.float64)[0]
    # Compiled callers skip the check: what docs/numba.md says they get.
    import numba

    @numba.njit
    def call(c):
        return dec(c)
    assert call(code) == value


@pytest.mark.parametrize("fmt", ["e4m3", "bf16", "int8", "uint4"])
def test_describe_and_get_format(fmt):
    f = lp.get_format(fmt)
    for bad in (1.5, "1", None, np.float32(1)):
        _raises(TypeError, "code", lambda: f.describe(bad))
    assert f.describe(np.uint8(1)) == f.describe(1)
    _raises(TypeError, "None", lambda: lp.get_format(None))
    _raises(TypeError, "None", lambda: lp.encode(X, None))


def test_assert_codes_equal_passes_codes_outside_the_format():
    # equal codes outside the format pass, whatever their dtypes
    assert_codes_equal(np.array([16, 3]), np.array([16, 3], np.int16), "fp4")
    assert_codes_equal(np.array([-300, 5]), np.array([-300, 5]), "int8")
    assert_codes_equal(np.array([2**64 - 1], np.uint64),
                       np.array([2**64 - 1], np.uint64), "e4m3")
    # NaN codes of the format still count as equal; others are reported
    nan_codes = np.uint8([0x7F, 0xFF])
    assert_codes_equal(nan_codes, nan_codes[::-1], "e4m3")
    with pytest.raises(AssertionError, match="not a code of"):
        assert_codes_equal(np.array([16]), np.array([7]), "fp4")
    with pytest.raises(AssertionError, match="not a code of"):
        assert_codes_equal(np.array([256]), np.array([0x7F]), "e4m3")
    with pytest.raises(AssertionError, match="1 of 1"):
        assert_codes_equal(np.array([-1], np.int64),
                           np.array([2**64 - 1], np.uint64), "e4m3")


# -- GPU wrappers: arguments are checked before the device is touched -------

class _FakeDeviceArray:
    __cuda_array_interface__ = {}


@pytest.mark.parametrize("op", ["encode", "quantize", "decode"])
def test_gpu_wrappers_check_arguments_first(op, monkeypatch):
    pytest.importorskip("numba.cuda")
    from lowprec import _cuda
    monkeypatch.setattr(_cuda, "available", lambda: True)
    fn = getattr(lp, op)
    x = _FakeDeviceArray()
    fmt = "int8"
    _raises(TypeError, "zero_point", lambda: fn(x, fmt, zero_point=0.5))
    _raises(ValueError, "zero_point", lambda: fn(x, fmt, zero_point=2**70))
    _raises(ValueError, "zero_point", lambda: fn(x, "e4m3", zero_point=1))
    if op == "decode":
        _raises(ValueError, "scale", lambda: fn(x, fmt, scale=-1.0))
        _raises(TypeError, "scale", lambda: fn(x, fmt, scale="2"))
        return
    _raises(TypeError, "seed", lambda: fn(x, fmt, seed=1.5))
    _raises(ValueError, "seed", lambda: fn(x, fmt, seed=-1))
    _raises(TypeError, "rbits", lambda: fn(x, fmt, rbits=2.0))
    _raises(TypeError, "saturate", lambda: fn(x, fmt, saturate=1))


# -- Hypothesis: arguments of the wrong kind ------------------------------

def _wrong_kinds():
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-2**70, 2**70),
        st.sampled_from([2**64, 2**64 + 5, -1, -2**63, 2**63, 2**16,
                         -2**16, 0, 1, 3, 7]),
        st.text(max_size=3), st.none(), st.booleans(),
        st.sampled_from([np.bool_(True), np.int8(3), np.uint64(2**64 - 1),
                         np.float32(2.0), np.array(3), np.array(3.0),
                         np.array([1]), np.array([1.5]), [3], (3,)]))


def _canonical(param, value):
    """(ok, canonical): the value the argument stands for, where it is of
    the right kind (None where the parameter takes None)."""
    if param in ("saturate", "subnormals"):
        if isinstance(value, (bool, np.bool_)):
            return True, bool(value)
        # saturate takes policy names: a string is of the right kind
        return param == "saturate" and isinstance(value, str), value
    if value is None:
        return param in ("seed", "rbits", "zero_point"), None
    if isinstance(value, (bool, np.bool_)):
        return False, None
    if isinstance(value, (int, np.integer)) or (
            isinstance(value, np.ndarray) and value.ndim == 0
            and value.dtype.kind in "iu"):
        return True, int(value)
    if param == "zero_point" and np.ndim(value) > 0 and \
            np.asarray(value).dtype.kind in "iu":
        return True, np.asarray(value)      # per-element zero points
    return False, None


def _call(entry, param, value, backend):
    x16 = np.linspace(-300, 300, 16)
    if entry == "unpack":
        packed = lp.pack(np.arange(-8, 8, dtype=np.int8), "int4")
        return lp.unpack(packed, "int4", value)
    kw = {param: value}
    if param in ("seed", "rbits"):
        kw.setdefault("seed", 11)
        kw["rounding"] = "stochastic"
    fmt = "int8" if param == "zero_point" else "e4m3"
    if entry == "decode":
        return lp.decode(np.arange(-8, 8, dtype=np.int8), "int8",
                         backend=backend, **kw)
    fn = lp.encode if entry == "encode" else lp.quantize
    return fn(x16, fmt, backend=backend, **kw)


PARAMS = [("encode", p) for p in ("saturate", "subnormals", "zero_point",
                                  "seed", "rbits")] + \
         [("quantize", p) for p in ("saturate", "subnormals", "zero_point",
                                    "seed", "rbits")] + \
         [("decode", "zero_point"), ("unpack", "n")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry, param", PARAMS)
@settings(max_examples=60, deadline=None)
@given(value=_wrong_kinds())
def test_wrong_kinds_error_or_canonical_result(entry, param, backend, value):
    ok, canon = _canonical(param, value)
    name = param
    try:
        got = _call(entry, param, value, backend)
    except (TypeError, ValueError) as exc:
        assert name in str(exc), str(exc)
        if not ok:
            assert isinstance(exc, TypeError), exc
        else:   # right kind, out of range: the canonical value fails too
            with pytest.raises(type(exc)):
                _call(entry, param, canon, backend)
        return
    assert ok, f"{param}={value!r} of the wrong kind was accepted"
    if param == "seed" and value is None:
        return                      # a fresh seed: nothing to compare
    want = _call(entry, param, canon, backend)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype


# -- format constructors ---------------------------------------------------

# (field, wrong kinds, out of range, (lo, hi) as the message states it)
FLOAT_FIELDS = {
    "ebits": ([4.0, "4", None, True, np.array([4])], [0, 9, -1, 2**40],
              ("1", "8")),
    "mbits": ([3.0, "3", None, np.bool_(True)], [-1, 24, 2**40],
              ("0", "23")),
    "bias": ([7.5, 7.0, "7", True, np.float32(7)], [-127, 255, 2**40],
             ("-126", "254")),
}
FLOAT_FLAGS = ("infs", "negzero", "subnormals", "signed")


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_float_format_integer_fields(field):
    wrong, out_of_range, (lo, hi) = FLOAT_FIELDS[field]
    base = dict(ebits=4, mbits=3)
    for bad in wrong:
        if bad is None and field == "bias":
            continue
        _raises(TypeError, field,
                lambda: lp.FloatFormat(**{**base, field: bad}))
    for bad in out_of_range:
        err = _raises(ValueError, field,
                      lambda: lp.FloatFormat(**{**base, field: bad}))
        assert lo in str(err) and hi in str(err) and str(bad) in str(err)
    # NumPy integers stand for their value and are stored as Python ints
    f = lp.FloatFormat(**{**base, field: np.int16(base.get(field, 7))})
    assert f == lp.FloatFormat(**{**base, field: base.get(field, 7)})
    assert type(getattr(f, field)) is int


def test_float_format_bias_examples():
    """bias=7.5 and bias="7" computed as bias 7 but compared unequal to it;
    2**40 raised cffi's OverflowError (issue 12)."""
    for bad in (7.5, "7"):
        _raises(TypeError, "bias", lambda: lp.FloatFormat(4, 3, bias=bad))
    for kw in (dict(ebits=2**40, mbits=3), dict(ebits=4, mbits=2**40),
               dict(ebits=4, mbits=3, bias=2**40),
               dict(ebits=4, mbits=3, bias=-2**70)):
        _raises(ValueError, "FloatFormat", lambda: lp.FloatFormat(**kw))
    _raises(ValueError, "bits", lambda: lp.IntFormat(2**40))
    _raises(ValueError, "bits", lambda: lp.IntFormat(-2**63))


@pytest.mark.parametrize("field", FLOAT_FLAGS)
def test_float_format_flags(field):
    for bad in BOOL_WRONG_KIND:
        _raises(TypeError, field,
                lambda: lp.FloatFormat(4, 3, nans="top", **{field: bad}))
    for b in (True, False):
        assert lp.FloatFormat(4, 3, nans="top", **{field: np.bool_(b)}) == \
            lp.FloatFormat(4, 3, nans="top", **{field: b})


def test_float_format_nans_and_name():
    for bad in (None, 1, lp.get_format("e4m3")):
        _raises(TypeError, "nans", lambda: lp.FloatFormat(4, 3, nans=bad))
    _raises(ValueError, "nans", lambda: lp.FloatFormat(4, 3, nans="IEEE"))
    _raises(TypeError, "name", lambda: lp.FloatFormat(4, 3, name=5))
    _raises(TypeError, "name", lambda: lp.IntFormat(4, name=b"x"))


def test_int_format_fields():
    for bad in (8.0, "8", None, True, np.array([8]), np.float64(8)):
        _raises(TypeError, "bits", lambda: lp.IntFormat(bad))
    for bad in (0, 1, 17, -8, 2**40):
        err = _raises(ValueError, "bits", lambda: lp.IntFormat(bad))
        assert "[2, 16]" in str(err)
    assert lp.IntFormat(np.uint8(8)) == lp.get_format("int8")
    assert type(lp.IntFormat(np.uint8(8)).bits) is int
    for field in ("signed", "narrow"):
        for bad in BOOL_WRONG_KIND:
            _raises(TypeError, field, lambda: lp.IntFormat(8, **{field: bad}))
        assert lp.IntFormat(8, **{field: np.bool_(False)}) == \
            lp.IntFormat(8, **{field: False})


# -- scaled_matmul ---------------------------------------------------------

A8 = lp.encode(np.linspace(-3, 3, 16).reshape(2, 8), "e4m3")
B8 = lp.encode(np.linspace(-2, 4, 24).reshape(8, 3), "e4m3")


def _mm(**kw):
    return lp.scaled_matmul(A8, B8, a_format="e4m3", b_format="e4m3", **kw)


def test_matmul_block():
    for bad in ((2.5,), "4", (4.0,), 4.0, ("4",), (True,), True,
                np.array([4.0]), (4, 1.5), {4: 1}):
        _raises(TypeError, "block", lambda: _mm(block=bad))
    for bad in ((0,), (-4,), 0, (4, 0), (), (4, 1, 1), (2**70,)):
        _raises(ValueError, "block", lambda: _mm(block=bad))
    want = _mm(block=(4,), a_scale=np.ones((2, 2)), b_scale=np.ones((2, 3)))
    for same in (4, np.int64(4), [4], (np.uint8(4),), np.array(4)):
        np.testing.assert_array_equal(
            _mm(block=same, a_scale=np.ones((2, 2)),
                b_scale=np.ones((2, 3))), want)
    np.testing.assert_array_equal(_mm(block=(4, np.int8(3)),
                                      a_scale=np.ones((2, 2)),
                                      b_scale=np.ones((2, 1))),
                                  _mm(block=(4, 3), a_scale=np.ones((2, 2)),
                                      b_scale=np.ones((2, 1))))


@pytest.mark.parametrize("name", ["a_scale", "b_scale"])
def test_matmul_scales(name):
    """The conversion functions' scale check (lowprec._validate.check_scale):
    the same types and messages; an overflowing scale raises without a
    NumPy warning."""
    import warnings
    for bad in ("2", [True], b"1", None, np.array(["1"]), [None]):
        _raises(TypeError, name, lambda: _mm(**{name: bad}))
    for bad in (0, -1.0, np.inf, np.nan, 1e300, np.float64(-3), [[1e40]]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            err = _raises(ValueError, name, lambda: _mm(**{name: bad}))
        assert "finite and > 0 in float32" in str(err)
        with pytest.raises(ValueError) as enc:
            lp.encode(np.float32([1.0]), "e4m3", scale=bad)
        assert str(err).replace(name, "scale") == str(enc.value)
    np.testing.assert_array_equal(_mm(**{name: np.int8(2)}),
                                  _mm(**{name: 2.0}))


def test_matmul_output_arguments():
    for bad in (-1.0, 2.0, 0.0, "x", np.ones((2, 3))):
        err = _raises(ValueError, "out_scale", lambda: _mm(out_scale=bad))
        assert "out_format" in str(err)
    for bad in (0.0, -2.0, np.inf, 1e300):
        _raises(ValueError, "out_scale",
                lambda: _mm(out_format="e4m3", out_scale=bad))
    _raises(TypeError, "out_scale",
            lambda: _mm(out_format="e4m3", out_scale="2"))
    _raises(ValueError, "out_scale",
            lambda: _mm(out_format="e4m3", out_scale=np.ones((5, 5))))
    for kw in (dict(), dict(out_format="e4m3")):
        _bool_or_sat(functools.partial(_mm, **kw), "saturate")
        for bad in (None, 3, lp.get_format("e4m3")):
            _raises(TypeError, "out_rounding",
                    lambda: _mm(out_rounding=bad, **kw))
        _raises(ValueError, "out_rounding",
                lambda: _mm(out_rounding="sideways", **kw))
    _raises(TypeError, "out_format", lambda: _mm(out_format=3))
    _raises(ValueError, "out_format", lambda: _mm(out_format="e9m9"))
    big = dict(out_format="e4m3", a_scale=100.0)
    np.testing.assert_array_equal(_mm(saturate=np.bool_(False), **big),
                                  _mm(saturate=False, **big))


def test_matmul_accumulate():
    for bad in (None, 1, lp.get_format("bf16"), ["exact"]):
        _raises(TypeError, "accumulate", lambda: _mm(accumulate=bad))
    for bad in ("fp16", "EXACT", ""):
        _raises(ValueError, "accumulate", lambda: _mm(accumulate=bad))
    _raises(TypeError, "a_format",
            lambda: lp.scaled_matmul(A8, B8, a_format=1.5, b_format="e4m3"))


# -- Accumulator -------------------------------------------------------------

def test_accumulator_seed():
    make = functools.partial(lp.Accumulator, "bf16", "stochastic")
    for bad in SEED_WRONG_KIND:
        _raises(TypeError, "seed", lambda: make(seed=bad))
    for bad in SEED_OUT_OF_RANGE:
        err = _raises(ValueError, "seed", lambda: make(seed=bad))
        assert "2^64" in str(err)
    assert make(seed=np.uint64(2**64 - 1)) == make(seed=2**64 - 1)
    assert type(make(seed=np.uint64(5)).seed) is int
    # seed=1.5 acted as seed 1 (issue 12)
    _raises(TypeError, "seed", lambda: make(seed=1.5))


def test_accumulator_rbits_and_flags():
    make = functools.partial(lp.Accumulator, "bf16", "stochastic", seed=1)
    for bad in (1.5, 8.0, "8", True, np.array([8])):
        _raises(TypeError, "rbits", lambda: make(rbits=bad))
    for bad in (0, -3, 65, 2**70):
        err = _raises(ValueError, "rbits", lambda: make(rbits=bad))
        assert "64" in str(err)
    assert make(rbits=np.uint8(12)) == make(rbits=12)
    assert make(rbits=None) == make(rbits=64)
    for name in ("saturate", "subnormals"):
        _bool_or_sat(make, name)
        assert make(**{name: np.bool_(False)}) == make(**{name: False})
    _raises(TypeError, "rounding", lambda: lp.Accumulator("bf16", None))
    for bad in (3, None, 1.5):
        _raises(TypeError, "format", lambda: lp.Accumulator(bad))
    for bad in ("e9m9", "int8", "e8m0"):
        _raises(ValueError, "format", lambda: lp.Accumulator(bad))


# -- int_matmul and requantize -----------------------------------------------

ACC = np.array([1000, -5000, 2**20, -2**31, 2**31 - 1], np.int32)


def _rq(**kw):
    args = dict(multiplier=2**30 + 12345, shift=3, zero_point=1)
    args.update(kw)
    return lp.requantize(ACC, args.pop("multiplier"), args.pop("shift"),
                         **args)


@pytest.mark.parametrize("name", ["multiplier", "shift", "zero_point"])
def test_requantize_integer_arguments(name):
    for bad in (1.0, 2.5, np.float64(3), "3", None, True, np.bool_(False),
                np.array([1.0] * 5), [1.5], np.array(2.0), b"1"):
        _raises(TypeError, name, lambda: _rq(**{name: bad}))
    lo, hi = {"multiplier": (-2**31, 2**31 - 1), "shift": (-31, 31),
              "zero_point": (-2**40, 2**40)}[name]
    for bad in (hi + 1, lo - 1, 2**80, -2**80, [0, 2**70, 0, 0, 0],
                np.uint64(2**63), np.array([2**63], np.uint64)):
        err = _raises(ValueError, name, lambda: _rq(**{name: bad}))
        assert f"[{lo}, {hi}]" in str(err)
    base = {"multiplier": 2**30 + 12345, "shift": 3, "zero_point": 1}[name]
    want = _rq(**{name: base})
    for same in (np.int8(base) if abs(base) < 128 else np.int64(base),
                 np.array(base), np.full(5, base), [base] * 5,
                 np.uint64(base)):
        np.testing.assert_array_equal(_rq(**{name: same}), want)


def test_requantize_acc():
    """A uint64 accumulator >= 2^63 wrapped to a negative value before the
    range check (issue 12)."""
    for bad in (np.array([2**63], np.uint64), np.uint64(2**64 - 1),
                np.array([2**31]), 2**31, [2**70], -2**31 - 1):
        err = _raises(ValueError, "acc",
                      lambda: lp.requantize(bad, 2**30, 1))
        assert "2147483647" in str(err)
    for bad in (1.5, np.zeros(3), "3", None, [True]):
        with pytest.raises(TypeError, match="acc"):
            lp.requantize(bad, 2**30, 1)
    np.testing.assert_array_equal(
        lp.requantize(ACC.astype(np.int64), 2**30, 1),
        lp.requantize(ACC, 2**30, 1))
    np.testing.assert_array_equal(
        lp.requantize(np.array([2**31 - 1], np.uint64), 2**30, 1),
        lp.requantize(np.array([2**31 - 1], np.int32), 2**30, 1))


def test_requantize_out_format_and_int_matmul():
    for bad in (3, 1.5, ["int8"]):
        _raises(TypeError, "out_format", lambda: _rq(out_format=bad))
    for bad in ("int99", "e4m3", np.float64):
        _raises(ValueError, "out_format", lambda: _rq(out_format=bad))
    np.testing.assert_array_equal(_rq(out_format=np.int8), _rq())
    for bad in (np.zeros((2, 2)), np.zeros((2, 2), bool),
                np.zeros((2, 2), np.int32)):
        with pytest.raises(TypeError, match="int_matmul"):
            lp.int_matmul(bad, np.zeros((2, 2), np.int8))


# -- Hypothesis: the constructors' and matmul's integer and boolean -------
# -- parameters, arguments of the wrong kind ------------------------------

BOOL_PARAMS = {("FloatFormat", p) for p in FLOAT_FLAGS} | {
    ("IntFormat", "signed"), ("IntFormat", "narrow"),
    ("Accumulator", "saturate"), ("Accumulator", "subnormals"),
    ("scaled_matmul", "saturate")}
INT_PARAMS = [("FloatFormat", "ebits"), ("FloatFormat", "mbits"),
              ("FloatFormat", "bias"), ("IntFormat", "bits"),
              ("Accumulator", "seed"), ("Accumulator", "rbits"),
              ("scaled_matmul", "block"), ("requantize", "multiplier"),
              ("requantize", "shift"), ("requantize", "zero_point")]
# parameters that take None, and those that take integer arrays
TAKE_NONE = {"bias", "seed", "rbits", "block"}
TAKE_ARRAYS = {"multiplier", "shift", "zero_point"}


def _canonical_arg(param, value):
    """(ok, canonical) as _canonical, for the parameters above."""
    if param in {p for _, p in BOOL_PARAMS}:
        if isinstance(value, (bool, np.bool_)):
            return True, bool(value)
        # saturate takes policy names: a string is of the right kind
        return param == "saturate" and isinstance(value, str), value
    if value is None:
        return param in TAKE_NONE, None
    if lp._validate.is_integer(value):
        return True, int(value)
    if param == "block" and isinstance(value, (tuple, list)) and all(
            lp._validate.is_integer(e) for e in value):
        return True, tuple(int(e) for e in value)
    if param in TAKE_ARRAYS and np.ndim(value) > 0 and \
            np.asarray(value).dtype.kind in "iu":
        return True, np.asarray(value)
    return False, None


def _call_with(entry, param, value):
    kw = {param: value}
    if entry == "FloatFormat":
        f = lp.FloatFormat(**{"ebits": 4, "mbits": 3, "nans": "top", **kw})
        return (f, f.struct.max_code, f.struct.emin, f.nbits)
    if entry == "IntFormat":
        f = lp.IntFormat(**{"bits": 8, **kw})
        return (f, f.min, f.max)
    if entry == "Accumulator":
        acc = lp.Accumulator("e5m2", "stochastic", **{"seed": 3, **kw})
        return (acc, _mm(accumulate=acc))
    if entry == "scaled_matmul":
        if param == "block":
            return _mm(block=value, a_scale=np.full((2, 8), 0.5),
                       b_scale=np.full((8, 3), 2.0))
        return _mm(out_format="e4m3", a_scale=100.0, **kw)
    return _rq(**kw)


def _same(got, want):
    if isinstance(got, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif isinstance(got, np.ndarray):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    else:
        assert got == want and type(got) is type(want)


@pytest.mark.parametrize("entry, param", sorted(BOOL_PARAMS) + INT_PARAMS)
@settings(max_examples=60, deadline=None)
@given(value=_wrong_kinds())
def test_constructor_and_matmul_wrong_kinds(entry, param, value):
    ok, canon = _canonical_arg(param, value)
    try:
        got = _call_with(entry, param, value)
    except (TypeError, ValueError) as exc:
        assert param in str(exc), str(exc)
        if not ok:
            assert isinstance(exc, TypeError), exc
        else:   # right kind, out of range: the canonical value fails too
            with pytest.raises(type(exc)):
                _call_with(entry, param, canon)
        return
    assert ok, f"{entry} {param}={value!r} of the wrong kind was accepted"
    if param == "seed" and value is None:
        return                      # a fresh seed: nothing to compare
    _same(got, _call_with(entry, param, canon))
    if entry in ("FloatFormat", "IntFormat") and canon is not None:
        assert type(getattr(got[0], param)) is type(canon)
