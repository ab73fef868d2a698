"""The numba.cuda kernels (lowprec/_cuda.py) against the CPU, bit for bit.

The GPU tests skip when numba.cuda finds no GPU.  Two tests run without
one: the kernels compile to PTX (when NVVM is installed), and a GPU array
without a GPU raises a clear RuntimeError.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lowprec as lp
from lowprec import _cuda
from lowprec import _numba_core as core

from helpers import DETERMINISTIC, INT_FORMATS

try:
    from numba import cuda
    HAVE_GPU = cuda.is_available()
except Exception:       # pragma: no cover - numba without its cuda module
    cuda = None
    HAVE_GPU = False

def gpu(test):
    """Marks a test gpu and skips it without a GPU."""
    skip = pytest.mark.skipif(not HAVE_GPU, reason="no CUDA GPU (numba.cuda)")
    return pytest.mark.gpu(skip(test))
UP_TO_16 = sorted(n for n, f in lp.formats().items()
                  if f.kind == "float" and f.nbits <= 16)


class _FakeDeviceArray:
    """An object claiming to live on a GPU."""

    __cuda_array_interface__ = {"shape": (4,), "typestr": "<f4",
                                "data": (0, False), "version": 3}


@pytest.mark.skipif(HAVE_GPU, reason="checks the no-GPU error")
def test_gpu_array_without_gpu_raises():
    for fn in (lp.encode, lp.quantize):
        with pytest.raises(RuntimeError, match="no usable CUDA GPU"):
            fn(_FakeDeviceArray(), "e4m3")
    with pytest.raises(RuntimeError, match="no usable CUDA GPU"):
        lp.decode(_FakeDeviceArray(), "e4m3")


def test_kernels_compile_to_ptx(monkeypatch):
    """Every kernel types and lowers for the CUDA target (PTX for sm_90)
    without a GPU; device functions need the compute capability, which the
    test supplies."""
    if cuda is None:
        pytest.skip("numba without numba.cuda")
    from numba import types
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
        import numba.cuda.dispatcher as dispatcher
    except Exception as exc:            # no libNVVM on this machine
        pytest.skip(f"NVVM unavailable: {exc}")
    if not hasattr(dispatcher, "get_current_device"):
        pytest.skip("numba.cuda internals changed")

    class _Device:
        compute_capability = (9, 0)
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: _Device())
    from lowprec._numba_backend import k32
    kernels = _cuda._kernels()
    F = core.format_params(lp.get_format("float8_e4m3fn"))
    O = core.opts_params(core.SR, False, True)
    K = k32(F, O)[1]
    tF, tO, tK = (types.UniTuple(types.int64, len(F)),
                  types.UniTuple(types.int64, len(O)),
                  types.UniTuple(types.uint32, len(K)))
    b, f32, f64, u64, i64 = (types.boolean, types.float32, types.float64,
                             types.uint64, types.int64)
    err = types.int64[::1]
    sigs = {
        "encode_values": [
            (types.float32[::1], types.uint8[::1], tF, tO, tK, b, b, f32,
             f64, u64, err),
            (types.int32[::1], types.int8[::1], tF, tO, tK, b, b, f32, f64,
             u64, err)],
        "encode_bits16": [
            (types.int16[::1], types.uint16[::1], tF, tO, tK, b, b, f32, u64,
             err)],
        "quantize_values": [
            (types.float64[::1], types.float64[::1], tF, tO, tK, b, b, f32,
             f64, f64, i64, u64, tF, tO, tK, err)],
        "quantize_bits16": [
            (types.uint16[::1], types.uint16[::1], tF, tO, tK, b, b, f32,
             f64, i64, u64, tF, tO, tK, err)],
        "decode": [(types.uint8[::1], types.float32[::1], tF, b, f64, i64,
                    tF, tO, tK)],
    }
    for name, sig_list in sigs.items():
        for sig in sig_list:
            ptx, _ = cuda.compile_ptx(kernels[name].py_func, sig, cc=(9, 0))
            assert ".entry" in ptx, name
    # lowprec.jit's scalar functions inside a user's CUDA kernel
    from lowprec import jit
    enc = jit.encoder("e4m3", saturate=True)
    sr = jit.encoder("bf16", rounding="stochastic", with_flags=True)
    q = jit.quantizer("int8", scale=0.5, zero_point=1)
    dec = jit.decoder("e4m3", dtype=np.float64)

    def user_kernel(x, codes, bits, values, decoded, seed):
        i = cuda.grid(1)
        if i < x.size:
            codes[i] = enc(x[i])
            bits[i], e = sr(x[i], seed, i)
            values[i] = q(x[i])
            decoded[i] = dec(codes[i])
    sig = (types.float32[::1], types.uint8[::1], types.uint16[::1],
           types.float32[::1], types.float64[::1], types.uint64)
    ptx, _ = cuda.compile_ptx(user_kernel, sig, cc=(9, 0))
    assert ".entry" in ptx
    # ... and the operations on codes
    add = jit.add("e4m3", flags=True)
    fma = jit.fma("bf16", rounding="stochastic", a_format="e4m3",
                  b_format="e4m3")
    div = jit.div("float16", rounding="stochastic", random_bits=8)

    def ops_kernel(a, b, c, r, out, fl, acc, q, seed):
        i = cuda.grid(1)
        if i < a.size:
            out[i], fl[i] = add(a[i], b[i])
            acc[i] = fma(a[i], b[i], c[i], seed, i)
            q[i] = div(c[i], c[i], r[i])
    u8, u16 = types.uint8[::1], types.uint16[::1]
    sig = (u8, u8, u16, u8, u8, u8, u16, u16, types.uint64)
    ptx, _ = cuda.compile_ptx(ops_kernel, sig, cc=(9, 0))
    assert ".entry" in ptx


_SIMULATED = textwrap.dedent("""
    import numpy as np
    from numba import cuda
    import lowprec as lp
    from lowprec import _cuda
    cuda.as_cuda_array = lambda x: x        # the simulator lacks it
    _cuda.available = lambda: True
    _cuda._THREADS = 32
    x = (np.random.default_rng(0).standard_normal(40) * 10).astype(
        np.float32)
    dx = cuda.to_device(x.reshape(5, 8))
    for name, kw in [("e4m3", {}), ("int8", dict(scale=0.5, zero_point=2)),
                     ("bf16", dict(rounding="stochastic", seed=3)),
                     ("fp4", dict(saturate=True))]:
        c = _cuda.encode(dx, name, **kw)
        assert c.shape == (5, 8)
        want = lp.encode(x.reshape(5, 8), name, **kw)
        assert (c.copy_to_host() == want).all(), name
        q = _cuda.quantize(dx, name, **kw).copy_to_host()
        assert (q == lp.quantize(x.reshape(5, 8), name, **kw)).all(), name
        dkw = dict(scale=0.5, zero_point=2) if name == "int8" else {}
        for dt in (np.float32, np.float16):
            d = _cuda.decode(c, name, dtype=dt, **dkw).copy_to_host()
            assert (d == lp.decode(want, name, dtype=dt, **dkw)).all(), name
    try:
        _cuda.encode(cuda.to_device(np.array([np.nan], np.float32)), "fp4")
        raise AssertionError("no error")
    except ValueError as exc:
        assert "no NaN" in str(exc)
    print("ok")
""")


def test_gpu_glue_on_the_cuda_simulator():
    """The host side of lowprec/_cuda.py (array handling, result types,
    error flags) and the float32 / float64 / decode kernels, run by
    Numba's CUDA simulator in a subprocess: no GPU needed.  (The
    simulator runs kernels as Python; the 16-bit-input kernels call
    Numba-only overloads and are left to the GPU tests.)"""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, "-c", _SIMULATED], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


# -- on a GPU --------------------------------------------------------------

def _host(d):
    return d.copy_to_host() if hasattr(d, "copy_to_host") else np.asarray(d)


@gpu
@pytest.mark.parametrize("name", UP_TO_16 + sorted(INT_FORMATS))
def test_every_float16_input(name):
    f = lp.get_format(name)
    x = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    if f.kind == "int" or f.nan_code is None:
        x = x[~np.isnan(x)]
    if f.kind == "float" and not f.signed:
        x = np.abs(x)
    dx = cuda.to_device(x)
    for mode in DETERMINISTIC + ("stochastic",):
        for sat in (False, True):
            kw = dict(rounding=mode, saturate=sat, seed=7)
            got = _host(lp.encode(dx, f, **kw))
            np.testing.assert_array_equal(got, lp.encode(x, f, **kw),
                                          err_msg=str(kw))


@gpu
@pytest.mark.parametrize("name", sorted(lp.formats()))
def test_random_float32_bit_patterns(name):
    """2^24 random float32 bit patterns (every exponent, NaN payloads,
    subnormals), nearest-even and stochastic, scaled and not."""
    f = lp.get_format(name)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 1 << 32, 1 << 24, dtype=np.uint64).astype(
        np.uint32).view(np.float32)
    if f.kind == "int" or f.nan_code is None:
        x = x[~np.isnan(x)]
    if f.kind == "float" and not f.signed:
        x = np.abs(x)
    dx = cuda.to_device(x)
    for kw in (dict(), dict(rounding="stochastic", seed=99),
               dict(rounding="toward_zero", scale=0.375)):
        got = _host(lp.encode(dx, f, **kw))
        np.testing.assert_array_equal(got, lp.encode(x, f, **kw),
                                      err_msg=str(kw))
    with np.errstate(over="ignore", invalid="ignore"):
        q = _host(lp.quantize(dx, f, rounding="stochastic", seed=5))
        want = lp.quantize(x, f, rounding="stochastic", seed=5)
    np.testing.assert_array_equal(q.view(np.uint32), want.view(np.uint32))


@gpu
@pytest.mark.parametrize("name", sorted(lp.formats()))
def test_decode_every_code(name):
    f = lp.get_format(name)
    if f.kind == "int":
        codes = np.arange(f.min, f.max + 1).astype(f.code_dtype)
    else:
        n = min(f.nbits, 20)
        codes = np.arange(1 << n).astype(f.code_dtype)
    dc = cuda.to_device(codes)
    for dtype in (np.float32, np.float64, np.float16):
        for scale in (None, 0.75):
            got = _host(lp.decode(dc, f, dtype=dtype, scale=scale))
            want = lp.decode(codes, f, dtype=dtype, scale=scale)
            np.testing.assert_array_equal(got.view(f"u{got.itemsize}"),
                                          want.view(f"u{want.itemsize}"))


@gpu
def test_errors_and_array_libraries():
    with pytest.raises(ValueError, match="no NaN"):
        lp.encode(cuda.to_device(np.array([1.0, np.nan])), "fp4")
    x = np.linspace(-10, 10, 1001, dtype=np.float32)
    try:
        import cupy
    except ImportError:
        cupy = None
    if cupy is not None:
        c = lp.encode(cupy.asarray(x), "e4m3")
        assert isinstance(c, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(c), lp.encode(x, "e4m3"))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        t = torch.as_tensor(x, device="cuda")
        c = lp.encode(t, "e4m3")
        assert isinstance(c, torch.Tensor) and c.is_cuda
        np.testing.assert_array_equal(c.cpu().numpy(), lp.encode(x, "e4m3"))
        tb = t.to(torch.bfloat16)
        q = lp.quantize(tb, "e5m2")
        assert q.dtype == torch.bfloat16


@gpu
def test_jit_operations_in_a_cuda_kernel():
    """lp.jit.add / fma / div / sqrt as device functions: the bits and flags
    of lp.add & co. on the host, stochastic rounding and the caller's
    random words included."""
    from lowprec import jit
    rng = np.random.default_rng(3)
    n = 1 << 16
    e4 = lp.get_format("e4m3")
    a = np.repeat(np.arange(256, dtype=np.uint8), 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256)
    c = rng.integers(0, 1 << 16, n).astype(np.uint16)
    r = rng.integers(0, 256, n).astype(np.uint8)
    add = jit.add(e4, flags=True)
    fma = jit.fma("bf16", rounding="stochastic", a_format=e4, b_format=e4,
                  flags=True)
    div = jit.div("float16", rounding="stochastic", random_bits=8)
    sq = jit.sqrt("float16", rounding="to_odd", flags=True)

    @cuda.jit
    def kernel(a, b, c, r, out, fl, acc, afl, q, s, sfl, seed):
        i = cuda.grid(1)
        if i < a.size:
            out[i], fl[i] = add(a[i], b[i])
            acc[i], afl[i] = fma(a[i], b[i], c[i], seed, i)
            q[i] = div(c[i], c[(i + 1) % c.size], r[i])
            s[i], sfl[i] = sq(c[i])
    outs = [np.zeros(n, np.uint8), np.zeros(n, np.uint8),
            np.zeros(n, np.uint16), np.zeros(n, np.uint8),
            np.zeros(n, np.uint16), np.zeros(n, np.uint16),
            np.zeros(n, np.uint8)]
    dev = [cuda.to_device(x) for x in (a, b, c, r) + tuple(outs)]
    kernel[(n + 255) // 256, 256](*dev, np.uint64(21))
    got = [d.copy_to_host() for d in dev[4:]]
    want = lp.add(a, b, e4, flags=True)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    want = lp.fma(a, b, c, "bf16", rounding="stochastic", seed=21,
                  a_format=e4, b_format=e4, flags=True)
    np.testing.assert_array_equal(got[2], want[0])
    np.testing.assert_array_equal(got[3], want[1])
    want = lp.div(c, np.roll(c, -1), "float16", rounding="stochastic",
                  random_bits=r)
    np.testing.assert_array_equal(got[4], want)
    want = lp.sqrt(c, "float16", rounding="to_odd", flags=True)
    np.testing.assert_array_equal(got[5], want[0])
    np.testing.assert_array_equal(got[6], want[1])
