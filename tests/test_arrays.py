"""Arrays as users have them, and every error API.md promises."""
import threading

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp
from lowprec.reference import ref_encode

RNG = np.random.default_rng(7)


def _x(n=1000, dtype=np.float32, scale=10.0):
    return (RNG.standard_normal(n) * scale).astype(dtype)


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (4, 3, 2)])
def test_shapes(shape):
    x = (RNG.standard_normal(shape) * 10).astype(np.float32)
    for fmt in ("e4m3", "bf16", "int8", "fp4"):
        c = lp.encode(x, fmt, saturate=True)
        assert c.shape == x.shape and c.dtype == lp.get_format(fmt).code_dtype
        v = lp.decode(c, fmt)
        assert v.shape == x.shape and v.dtype == np.float32
        q = lp.quantize(x, fmt, saturate=True)
        assert q.shape == x.shape and q.dtype == x.dtype
        np.testing.assert_array_equal(q, v)


def test_strided_and_byte_swapped_inputs():
    x = _x(3000).reshape(30, 100)
    want = lp.encode(np.ascontiguousarray(x[::3, ::-2].T), "e4m3")
    np.testing.assert_array_equal(lp.encode(x[::3, ::-2].T, "e4m3"), want)
    big = x.astype(">f4")
    np.testing.assert_array_equal(lp.encode(big, "e5m2"),
                                  lp.encode(x, "e5m2"))
    np.testing.assert_array_equal(lp.quantize(big, "e5m2"),
                                  lp.quantize(x, "e5m2"))
    codes = lp.encode(x, "fp16")
    np.testing.assert_array_equal(lp.decode(codes.astype(">u2"), "fp16"),
                                  lp.decode(codes, "fp16"))
    np.testing.assert_array_equal(lp.decode(codes[:, ::-3], "fp16"),
                                  lp.decode(codes, "fp16")[:, ::-3])


def test_input_dtypes():
    x = _x(500, np.float16)
    want = lp.encode(x.astype(np.float64), "e4m3")
    for dt in (np.float16, np.float32, np.float64, ml_dtypes.bfloat16):
        xs = x.astype(dt)
        if dt is ml_dtypes.bfloat16:
            want_bf = lp.encode(xs.astype(np.float64), "e4m3")
            np.testing.assert_array_equal(lp.encode(xs, "e4m3"), want_bf)
        else:
            np.testing.assert_array_equal(lp.encode(xs, "e4m3"), want)
    ints = np.array([-300, -1, 0, 7, 2**40 + 1], np.int64)
    np.testing.assert_array_equal(
        lp.encode(ints, "e5m2", saturate=True),
        [ref_encode(lp.get_format("e5m2"), int(i), saturate=True)
         for i in ints])
    np.testing.assert_array_equal(lp.encode([1, 2, 3], "int8"), [1, 2, 3])
    np.testing.assert_array_equal(lp.encode(np.array([3], np.uint16), "fp4"),
                                  [0b0101])
    assert lp.encode(1.5, "fp4").shape == ()
    assert lp.quantize(np.array([3, 5]), "fp4").dtype == np.float64


# (ml_dtypes float8 / float6 / float4 inputs are accepted: test_interop.py)
@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array([True]),
                                 np.array(["a"]), np.array([1.0],
                                                           np.longdouble),
                                 np.array([1], "m8")])
def test_bad_input_dtype(bad):
    with pytest.raises(TypeError, match=str(bad.dtype)):
        lp.encode(bad, "e4m3")
    with pytest.raises(TypeError, match=str(bad.dtype)):
        lp.quantize(bad, "e4m3")


def test_bad_arguments():
    x = _x(10)
    with pytest.raises(ValueError, match="unknown rounding 'up'"):
        lp.encode(x, "e4m3", rounding="up")
    with pytest.raises(ValueError, match="unknown backend"):
        lp.encode(x, "e4m3", backend="gpu")
    with pytest.raises(ValueError, match="unknown format"):
        lp.encode(x, "e4m4")
    with pytest.raises(ValueError, match="rbits"):
        lp.encode(x, "e4m3", rounding="stochastic", rbits=0)
    with pytest.raises(ValueError, match="zero_point applies to integer"):
        lp.encode(x, "e4m3", zero_point=1)
    with pytest.raises(ValueError, match="zero_point applies to integer"):
        lp.decode(lp.encode(x, "e4m3"), "e4m3", zero_point=1)
    with pytest.raises(TypeError, match="decode produces"):
        lp.decode(lp.encode(x, "e4m3"), "e4m3", dtype=np.int32)


@pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, np.inf, 1e-50, 1e50,
                                   np.array([1.0, 0.0])])
def test_bad_scales(scale):
    x = _x(2)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        lp.encode(x, "e4m3", scale=scale)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        lp.decode(np.zeros(2, np.uint8), "e4m3", scale=scale)


def test_scale_float64_inputs_keep_tiny_scales():
    x = np.array([3e-50, -1e-49])
    np.testing.assert_array_equal(lp.encode(x, "e4m3", scale=1e-50),
                                  lp.encode(x / 1e-50, "e4m3"))


def test_scale_shapes():
    x = _x(12).reshape(3, 4)
    with pytest.raises(ValueError, match=r"scale of shape \(4, 1\) does not "
                       r"broadcast to x of shape \(3, 4\)"):
        lp.encode(x, "e4m3", scale=np.ones((4, 1)))
    with pytest.raises(ValueError, match="does not broadcast"):
        lp.encode(x, "e4m3", scale=np.ones((2, 3, 4)))
    s = np.array([[0.5], [2.0], [4.0]], np.float32)
    got = lp.encode(x, "e4m3", scale=s)
    want = lp.encode(x / s, "e4m3")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64,
                                   ml_dtypes.bfloat16])
def test_scale_divides_in_input_precision(dtype):
    x = _x(5000, dtype)
    s = 0.1  # not exact in binary: the precision of the division shows
    comp = np.float64 if dtype == np.float64 else np.float32
    want = lp.encode(x.astype(comp) / comp(s), "e5m2", saturate=True)
    np.testing.assert_array_equal(
        lp.encode(x, "e5m2", scale=s, saturate=True), want)
    per = np.full((5000,), s)
    np.testing.assert_array_equal(
        lp.encode(x, "e5m2", scale=per, saturate=True), want)
    # decode: exact value times scale (in float32 for float32 output)
    codes = want
    v = lp.decode(codes, "e5m2", dtype=np.float64)
    np.testing.assert_array_equal(
        lp.decode(codes, "e5m2", scale=s),
        (v * np.float64(np.float32(s))).astype(np.float32))
    np.testing.assert_array_equal(
        lp.decode(codes, "e5m2", scale=s, dtype=np.float64), v * s)
    q = lp.quantize(x, "e5m2", scale=s, saturate=True)
    assert q.dtype == x.dtype
    np.testing.assert_array_equal(
        q, lp.decode(codes, "e5m2", scale=s, dtype=x.dtype))


def test_integer_zero_point_and_saturation():
    x = np.array([-1000.0, -3.5, -0.5, 0.5, 2.5, 1000.0, np.inf, -np.inf])
    np.testing.assert_array_equal(
        lp.encode(x, "int8"), [-128, -4, 0, 0, 2, 127, 127, -128])
    np.testing.assert_array_equal(
        lp.encode(x, "uint8", zero_point=128),
        [0, 124, 128, 128, 130, 255, 255, 0])
    np.testing.assert_array_equal(
        lp.encode(x, "int8_narrow"), [-127, -4, 0, 0, 2, 127, 127, -127])
    np.testing.assert_array_equal(lp.encode(x, "uint4"),
                                  [0, 0, 0, 0, 2, 15, 15, 0])
    zp = np.array([0, 10, -10, 1, 2, 3, 4, 5])
    want = np.clip(np.rint(np.clip(x, -1e4, 1e4)) + zp, -128, 127)
    np.testing.assert_array_equal(lp.encode(x, "int8", zero_point=zp), want)
    c = lp.encode(x[:6], "uint8", zero_point=128, scale=0.5)
    np.testing.assert_array_equal(
        lp.decode(c, "uint8", zero_point=128, scale=0.5, dtype=np.float64),
        (c.astype(np.float64) - 128) * 0.5)
    np.testing.assert_array_equal(
        lp.quantize(x[:6], "int8", zero_point=zp[:6]),
        lp.decode(lp.encode(x[:6], "int8", zero_point=zp[:6]), "int8",
                  zero_point=zp[:6], dtype=np.float64))
    with pytest.raises(ValueError, match="int8 has no NaN"):
        lp.encode(np.array([1.0, np.nan]), "int8")


def test_nan_and_sign_errors_name_the_problem():
    with pytest.raises(ValueError, match="float4_e2m1fn has no NaN encoding: "
                       "the input has 2 NaN"):
        lp.encode(np.array([np.nan, 1, np.nan], np.float32), "fp4")
    with pytest.raises(ValueError, match="float6_e2m3fn has no NaN"):
        lp.quantize(np.array([np.nan]), "float6_e2m3fn")
    with pytest.raises(ValueError, match="float8_e8m0fnu is unsigned: the "
                       "input has 1 negative"):
        lp.encode(np.array([1.0, -2.0]), "e8m0")
    e8 = lp.get_format("e8m0")
    np.testing.assert_array_equal(
        lp.encode(np.array([0.0, -0.0, 2.0**-140, np.nan, np.inf]), e8),
        [0xFF, 0xFF, 0x00, 0xFF, 0xFF])
    no_zero_no_nan = lp.FloatFormat(3, 0, bias=3, infs=False, nans="none",
                                    subnormals=False, signed=False)
    with pytest.raises(ValueError, match="neither zero nor NaN"):
        lp.encode(np.array([0.0]), no_zero_no_nan)
    unsigned = lp.FloatFormat(4, 3, signed=False)
    np.testing.assert_array_equal(lp.encode(np.array([-1e-9, -0.0]),
                                            unsigned), [0, 0])


def test_specials_and_overflow_policy():
    x = np.array([np.inf, -np.inf, 1e6, -1e6, np.nan], np.float32)
    np.testing.assert_array_equal(lp.encode(x, "e5m2"),
                                  [0x7C, 0xFC, 0x7C, 0xFC, 0x7E])
    np.testing.assert_array_equal(lp.encode(x, "e5m2", saturate=True),
                                  [0x7B, 0xFB, 0x7B, 0xFB, 0x7E])
    np.testing.assert_array_equal(lp.encode(x, "e5m2", rounding="rz"),
                                  [0x7C, 0xFC, 0x7B, 0xFB, 0x7E])
    np.testing.assert_array_equal(lp.encode(x, "e4m3"),
                                  [0x7F, 0x7F, 0x7F, 0x7F, 0x7F])
    np.testing.assert_array_equal(lp.encode(x, "e4m3", saturate=True),
                                  [0x7E, 0xFE, 0x7E, 0xFE, 0x7F])
    np.testing.assert_array_equal(lp.encode(x, "float8_e4m3fnuz"),
                                  [0x80] * 5)
    np.testing.assert_array_equal(lp.encode(x[:4], "fp4"),
                                  [0x7, 0xF, 0x7, 0xF])
    np.testing.assert_array_equal(
        lp.encode(np.array([2.0**-10, -2.0**-10]), "e4m3", subnormals=False),
        [0, 0x80])
    np.testing.assert_array_equal(
        lp.encode(np.array([-2.0**-12, -2.0**-10]), "float8_e4m3fnuz"),
        [0, 0x81])


def test_out_argument():
    x = _x(100)
    out = np.empty(100, np.uint8)
    r = lp.encode(x, "e4m3", out=out)
    assert r is out
    np.testing.assert_array_equal(out, lp.encode(x, "e4m3"))
    strided = np.zeros(200, np.uint8)[::2]
    lp.encode(x, "e4m3", out=strided)
    np.testing.assert_array_equal(strided, out)
    fout = np.empty(100, np.float32)
    assert lp.decode(out, "e4m3", out=fout) is fout
    assert lp.quantize(x, "e4m3", out=np.empty_like(x)) is not None
    with pytest.raises(TypeError, match="out has dtype int8"):
        lp.encode(x, "e4m3", out=np.empty(100, np.int8))
    with pytest.raises(ValueError, match=r"out has shape \(99,\)"):
        lp.encode(x, "e4m3", out=np.empty(99, np.uint8))
    ro = np.empty(100, np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        lp.encode(x, "e4m3", out=ro)
    with pytest.raises(ValueError, match="overlaps"):
        lp.quantize(x, "e4m3", out=x)
    with pytest.raises(TypeError, match="numpy array"):
        lp.encode(x, "e4m3", out=[0] * 100)


def test_decode_codes_checks():
    with pytest.raises(ValueError, match=r"codes out of range \[0, 15\] of "
                       "float4_e2m1fn"):
        lp.decode(np.array([16], np.uint8), "fp4")
    with pytest.raises(ValueError, match="out of range"):
        lp.decode(np.array([300]), "e4m3")
    with pytest.raises(ValueError, match=r"\[-8, 7\] of int4"):
        lp.decode(np.array([8], np.int8), "int4")
    with pytest.raises(TypeError, match="integer array"):
        lp.decode(np.array([1.0]), "e4m3")
    a = np.array([1.5, -448], ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(lp.decode(a, "e4m3"), [1.5, -448])
    np.testing.assert_array_equal(lp.decode(a, ml_dtypes.float8_e4m3fn),
                                  [1.5, -448])
    with pytest.raises(ValueError, match="do not match format float8_e5m2"):
        lp.decode(a, "e5m2")
    np.testing.assert_array_equal(lp.decode([0x3C, 0xC0], "e5m2"),
                                  [1.0, -2.0])


def test_threads_and_chunks_give_identical_bits(monkeypatch):
    x = _x(1 << 20, np.float32, 100.0)
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("LOWPREC_NUM_THREADS", threads)
        results[threads] = [
            lp.encode(x, "e4m3"), lp.encode(x, "bf16", rounding="ru"),
            lp.encode(x, "e5m2", rounding="stochastic", seed=5),
            lp.encode(x.astype(np.float64), "fp16", rounding="sr", seed=9),
            lp.quantize(x, "e3m4", rounding="ro"),
            lp.decode(lp.encode(x, "fp16"), "fp16")]
    for a, b, c in zip(results["1"], results["2"], results["3"]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    monkeypatch.setenv("LOWPREC_NUM_THREADS", "x")
    with pytest.raises(ValueError, match="LOWPREC_NUM_THREADS"):
        lp.encode(x, "e4m3")


def test_concurrent_calls_from_threads():
    xs = [_x(200_000, np.float32, s) for s in (1, 10, 100, 1000)]
    want = [lp.encode(x, "e4m3", saturate=True) for x in xs]
    got = [None] * 4

    def work(i):
        for _ in range(3):
            got[i] = lp.encode(xs[i], "e4m3", saturate=True)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# -- module structure (issue 8) ----------------------------------------------

_IMPORT_ALONE = """
import importlib, os, sys, types
import lowprec._clib            # noqa: the package __init__ runs here ...
for name in [m for m in sys.modules if m == "lowprec" or
             m.startswith("lowprec.") and m not in ("lowprec._clib",
                                                   "lowprec._clib.lib")]:
    del sys.modules[name]       # ... so forget it: a bare package instead
pkg = types.ModuleType("lowprec")
pkg.__path__ = [os.path.dirname(lowprec._clib.__file__)]
sys.modules["lowprec"] = pkg
importlib.import_module("lowprec." + sys.argv[1])
print(" ".join(sorted(m for m in sys.modules if m.startswith("lowprec."))))
"""

INTERNAL = ["_threads", "_options", "_validate", "_numba_core",
            "_numba_backend", "_cuda", "formats"]


@pytest.mark.parametrize("module", INTERNAL)
def test_internal_modules_import_no_public_module(module):
    """The internal modules (and formats, beneath them) import on their own
    without lowprec.convert or lowprec.matmul: imports go one way."""
    import subprocess
    import sys
    if module in ("_numba_core", "_numba_backend", "_cuda"):
        pytest.importorskip("numba")
    if module == "_cuda":
        pytest.importorskip("numba.cuda")
    res = subprocess.run([sys.executable, "-c", _IMPORT_ALONE, module],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    loaded = res.stdout.split()
    assert f"lowprec.{module}" in loaded
    for public in ("lowprec.convert", "lowprec.matmul", "lowprec.jit"):
        assert public not in loaded, (module, loaded)


def test_blocks_imports_neither_convert_nor_matmul():
    """lowprec.blocks sits beneath convert and matmul (they import it at
    the top; lp.quantize and scaled_matmul take block formats): it imports
    neither of them, and formats holds BlockFormat and the recipes."""
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-c", _IMPORT_ALONE, "blocks"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    loaded = res.stdout.split()
    assert "lowprec.blocks" in loaded
    for public in ("lowprec.convert", "lowprec.matmul", "lowprec.jit"):
        assert public not in loaded, loaded


def test_import_lowprec_does_not_load_numba():
    import subprocess
    import sys
    res = subprocess.run(
        [sys.executable, "-c", "import sys, lowprec; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] == "
         "'numba'))"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["int4", "uint4", "int2", "uint2"])
def test_ml_dtypes_integer_codes_are_read_by_value(name):
    """ml_dtypes int4 / int2 keep only the low bits in each byte (-1 is
    0x0F): decode and pack take their values, not those bytes."""
    f = lp.get_format(name)
    values = np.arange(f.min, f.max + 1)
    a = values.astype(getattr(ml_dtypes, name))
    codes = values.astype(f.code_dtype)
    np.testing.assert_array_equal(lp.decode(a, f, dtype=np.float64), values)
    np.testing.assert_array_equal(lp.pack(a, f), lp.pack(codes, f))
