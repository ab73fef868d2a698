"""Inputs from other array libraries (API.md section 10): ml_dtypes arrays
as values, codes, scales and decode dtypes; PyTorch and JAX CPU tensors
through DLPack (zero-copy) or their bits.

Every comparison is against a path that does not go through the code under
test: ml_dtypes' own conversions (astype to float64 is exact, astype from
float64 is correctly rounded, nearest-even), torch's and JAX's own
conversions to float64, lowprec.reference's exact Fraction arithmetic, or
the plain NumPy float64 / uint8 / uint16 call of lowprec.
"""
import numpy as np
import pytest
import ml_dtypes

import lowprec as lp
from lowprec import reference as ref
from lowprec._interop import as_array

ML_FLOATS = [n for n in (
    "bfloat16", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
    "float8_e5m3fnu", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn",
    "float4_e2m1fn") if hasattr(ml_dtypes, n)]
ML_INTS = [n for n in ("int2", "uint2", "int4", "uint4")
           if hasattr(ml_dtypes, n)]
# lowprec float formats of at most 16 bits: every code is enumerated
SOURCES = sorted(n for n, f in lp.formats().items()
                 if f.kind == "float" and f.nbits <= 16)
TARGETS = ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float16",
           "bfloat16", "float8_e8m0fnu", "int8", "uint4"]


def _bits(a):
    a = np.asarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32,
                   8: np.uint64}[a.dtype.itemsize])


def _all_codes(fmt):
    fmt = lp.get_format(fmt)
    return np.arange(1 << fmt.nbits).astype(fmt.code_dtype)


def _ml(name):
    return np.dtype(getattr(ml_dtypes, name))


def _every_value(name):
    """Every code of ml_dtypes type name, as an array of that type."""
    dt = _ml(name)
    return _all_codes(name).view(dt) if dt.itemsize > 1 else \
        _all_codes(name).astype(np.uint8).view(dt)


def _f64(a):
    """ml_dtypes / NumPy float array to float64 (ml_dtypes' exact widening),
    without NaN cast warnings."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(a).astype(np.float64)


def _encodable(v64, fmt):
    """Mask of the float64 values that lp.encode into fmt takes without
    raising: no NaN into a format without NaN, no negative value into an
    unsigned float format."""
    fmt = lp.get_format(fmt)
    ok = np.ones(v64.shape, bool)
    if getattr(fmt, "nan_code", None) is None:      # fp6, fp4, integers
        ok &= ~np.isnan(v64)
    if fmt.kind == "float" and not fmt.signed:
        ok &= ~(v64 < 0)
    return ok


def _same(actual, desired):
    """Bits equal where desired is not NaN; NaN exactly where desired is."""
    a, d = np.asarray(actual), np.asarray(desired)
    assert a.dtype == d.dtype and a.shape == d.shape
    an, dn = np.isnan(_f64(a)), np.isnan(_f64(d))
    np.testing.assert_array_equal(an, dn)
    np.testing.assert_array_equal(_bits(a)[~dn], _bits(d)[~dn])


# -- ml_dtypes arrays as values --------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ML_FLOATS)
def test_ml_values_as_input(name, target):
    """encode / quantize of every value of an ml_dtypes type equal the
    float64 call on the same values (ml_dtypes' widening); stochastic bits
    equal too (they key on the value and index only)."""
    x = _every_value(name)
    v = _f64(x)
    keep = _encodable(v, target)
    x, v = x[keep], v[keep]
    for rounding, seed in (("nearest_even", None), ("toward_zero", None),
                           ("stochastic", 7)):
        np.testing.assert_array_equal(
            lp.encode(x, target, rounding=rounding, seed=seed),
            lp.encode(v, target, rounding=rounding, seed=seed))
    # quantize: the exact decoded value rounded once into x's type, as
    # ml_dtypes rounds it
    back = lp.decode(lp.encode(v, target), target, dtype=np.float64)
    keep = _encodable(back, name)
    q = lp.quantize(x[keep], target)
    assert q.dtype == x.dtype
    with np.errstate(over="ignore", invalid="ignore"):
        _same(q, back[keep].astype(x.dtype))


@pytest.mark.parametrize("rounding", ["nearest_even", "nearest_away",
                                      "toward_zero", "toward_positive",
                                      "toward_negative", "to_odd"])
def test_e5m2_to_e4m3_one_rounding(rounding):
    """e5m2 -> e4m3 in one encode call is the exact value rounded once
    (lowprec.reference, Fractions), and, nearest-even, ml_dtypes' own
    e5m2 -> e4m3fn conversion."""
    x = _every_value("float8_e5m2")
    got = lp.encode(x, "float8_e4m3fn", rounding=rounding)
    want = ref.ref_encode_array(lp.get_format("float8_e4m3fn"),
                                _f64(x).tolist(), rounding=rounding)
    np.testing.assert_array_equal(got, want)
    if rounding == "nearest_even":
        with np.errstate(over="ignore", invalid="ignore"):
            _same(got.view(ml_dtypes.float8_e4m3fn),
                  x.astype(ml_dtypes.float8_e4m3fn))


def test_ml_int_values_as_input():
    for name in ML_INTS:
        info = ml_dtypes.iinfo(_ml(name))
        x = np.arange(info.min, info.max + 1).astype(_ml(name))
        v = np.arange(info.min, info.max + 1)
        np.testing.assert_array_equal(lp.encode(x, "e4m3"),
                                      lp.encode(v, "e4m3"))
        q = lp.quantize(x, "fp4")
        assert q.dtype == np.float64
        np.testing.assert_array_equal(q, lp.quantize(v, "fp4"))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2",
                                  "float6_e3m2fn", "float4_e2m1fn",
                                  "bfloat16"])
def test_ml_values_block_quantize(name):
    """quantize_blocks of an ml_dtypes array equals that of its float32
    values (ml_dtypes' widening); block quantize gives x's type, the
    exact dequantized value rounded once by ml_dtypes."""
    rng = np.random.default_rng(8)
    v = rng.standard_normal((8, 64)) * 2.0 ** rng.integers(-4, 4, (8, 64))
    x = v.astype(_ml(name))
    x32 = _f64(x).astype(np.float32)
    for fmt in ("mxfp4", "mxfp8_e5m2", "nvfp4", "fp8_1x128"):
        got, want = lp.quantize_blocks(x, fmt), lp.quantize_blocks(x32, fmt)
        np.testing.assert_array_equal(_bits(got.codes), _bits(want.codes))
        np.testing.assert_array_equal(_bits(got.scales), _bits(want.scales))
        q = lp.quantize(x, fmt)
        assert q.dtype == x.dtype
        with np.errstate(over="ignore", invalid="ignore"):
            _same(q, want.dequantize(np.float64).astype(x.dtype))
        _same(got.dequantize(x.dtype), q)


def test_block_dequantize_nan_into_ml_dtype():
    x = np.ones(32, np.float32)
    x[3] = np.nan
    bt = lp.quantize_blocks(x, "mxfp4")
    assert np.isnan(_f64(bt.dequantize(ml_dtypes.float8_e4m3fn))).all()
    with pytest.raises(ValueError, match="NaN"):
        bt.dequantize(ml_dtypes.float4_e2m1fn)


# -- ml_dtypes arrays as codes ----------------------------------------------

@pytest.mark.parametrize("name", ML_FLOATS)
def test_ml_codes(name):
    """decode of an ml_dtypes array of the format reads its bits: its
    values are ml_dtypes' own; pack equals pack of the plain codes."""
    x = _every_value(name)
    fmt = lp.get_format(name)
    _same(lp.decode(x, name, dtype=np.float64), _f64(x))
    codes = _all_codes(name)
    np.testing.assert_array_equal(lp.decode(x, name), lp.decode(codes, name))
    if fmt.nbits < 8:
        np.testing.assert_array_equal(lp.pack(x, name),
                                      lp.pack(codes, name))
    with pytest.raises(ValueError, match="do not match"):
        lp.decode(x, "float16" if name != "float16" else "e4m3")


@pytest.mark.parametrize("name", ML_INTS)
def test_ml_int_codes(name):
    info = ml_dtypes.iinfo(_ml(name))
    x = np.arange(info.min, info.max + 1).astype(_ml(name))
    np.testing.assert_array_equal(
        lp.decode(x, name, dtype=np.float64), x.astype(np.float64))
    np.testing.assert_array_equal(lp.pack(x, name),
                                  lp.pack(x.astype(np.int64), name))


def test_byte_swapped_and_strided_codes():
    """A big-endian bfloat16 array is read by value (its bits were read
    swapped before); strided and transposed arrays too."""
    x = _every_value("bfloat16").reshape(256, 256)
    big = x.astype(x.dtype.newbyteorder(">"))
    assert not big.dtype.isnative
    want = lp.decode(_all_codes("bfloat16").reshape(256, 256), "bfloat16")
    np.testing.assert_array_equal(lp.decode(big, "bfloat16"), want)
    np.testing.assert_array_equal(lp.decode(big.T[::3], "bfloat16"),
                                  want.T[::3])
    np.testing.assert_array_equal(lp.decode(x[:, ::-2], "bfloat16"),
                                  want[:, ::-2])
    v = _f64(x)
    keep = ~np.isnan(v)
    np.testing.assert_array_equal(lp.encode(big[keep], "e4m3"),
                                  lp.encode(v[keep], "e4m3"))
    q = lp.quantize(big, "e4m3")
    assert q.dtype == x.dtype and q.dtype.isnative
    _same(q, lp.quantize(x, "e4m3"))
    f8 = _every_value("float8_e5m2").reshape(16, 16)
    np.testing.assert_array_equal(lp.encode(f8.T[::2], "fp16"),
                                  lp.encode(_f64(f8).T[::2], "fp16"))


# -- decode(dtype=ml_dtypes ...) -------------------------------------------

@pytest.mark.parametrize("dst", ML_FLOATS)
def test_decode_to_ml_dtype(dst):
    """decode(codes, src, dtype=dst) is the exact value rounded once into
    dst: ml_dtypes' astype from the exact float64 values, for every code of
    every float format of at most 16 bits (and a sample of float32); with
    a scale, the exact product rounded once."""
    dt = _ml(dst)
    rng = np.random.default_rng(5)
    f32 = np.concatenate([rng.integers(0, 1 << 32, 20000, np.uint64),
                          _all_codes("bfloat16").astype(np.uint64) << 16])
    for src, codes in [(s, _all_codes(s)) for s in SOURCES] + [
            ("float32", f32.astype(np.uint32))]:
        v = lp.decode(codes, src, dtype=np.float64)
        if src == "float32":
            np.testing.assert_array_equal(v, _f64(codes.view(np.float32)))
        keep = _encodable(v, dst)
        with np.errstate(over="ignore", invalid="ignore"):
            want = v[keep].astype(dt)
        got = lp.decode(codes[keep], src, dtype=dt)
        assert got.dtype == dt
        _same(got, want)
        s = np.float32(0.7)
        p = v[keep] * np.float64(s)       # exact: <= 24 + 24 bits
        keep2 = _encodable(p, dst)
        with np.errstate(over="ignore", invalid="ignore"):
            want = p[keep2].astype(dt)
        _same(lp.decode(codes[keep][keep2], src, dtype=dt, scale=s), want)


def test_decode_to_ml_dtype_errors():
    nan = np.uint8([0x7F])                         # e4m3fn NaN
    for dst in ("float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"):
        if hasattr(ml_dtypes, dst):
            with pytest.raises(ValueError, match="NaN"):
                lp.decode(nan, "e4m3", dtype=getattr(ml_dtypes, dst))
    with pytest.raises(ValueError, match="unsigned"):
        lp.decode(np.uint8([0xB8]), "e4m3", dtype=ml_dtypes.float8_e8m0fnu)
    with pytest.raises(TypeError, match="int4"):
        lp.decode(np.uint8([1]), "e4m3", dtype=ml_dtypes.int4)
    with pytest.raises(TypeError, match="complex"):
        lp.decode(np.uint8([1]), "e4m3", dtype=np.complex64)
    assert lp.decode(np.uint8([0x7B]), "e4m3",
                     dtype=ml_dtypes.float8_e5m2)[0] == 384


# -- ml_dtypes scales -----------------------------------------------------

def _positive_scales(name, n=32):
    """n finite positive values of ml_dtypes type name (repeating)."""
    x = _every_value(name)
    v = _f64(x)
    return x[np.isfinite(v) & (v > 0)][:n].repeat(-(-n // 1))[:n]


@pytest.mark.parametrize("name", ML_FLOATS)
def test_ml_scales(name):
    """Scales of an ml_dtypes type (e8m0 MX scales included) act as their
    exact values, given as float32 / float64 arrays."""
    s = _positive_scales(name)
    n = s.size
    s32 = s.astype(np.float32)
    rng = np.random.default_rng(1)
    x32 = rng.standard_normal(n).astype(np.float32)
    x64 = rng.standard_normal(n)
    codes = rng.integers(0, 0x7F, n).astype(np.uint8)
    for x, sv in ((x32, s32), (x64, s.astype(np.float64))):
        np.testing.assert_array_equal(
            lp.encode(x, "e4m3", scale=s, saturate=True),
            lp.encode(x, "e4m3", scale=sv, saturate=True))
        np.testing.assert_array_equal(
            _bits(lp.quantize(x, "e4m3", scale=s, saturate=True)),
            _bits(lp.quantize(x, "e4m3", scale=sv, saturate=True)))
    np.testing.assert_array_equal(
        _bits(lp.decode(codes, "e4m3", scale=s)),
        _bits(lp.decode(codes, "e4m3", scale=s32)))


def test_e8m0_scales_are_powers_of_two():
    """e8m0 codes c as scales are 2^(c - 127) (Python integers), in
    decode, encode, quantize and scaled_matmul."""
    c = np.arange(100, 160, dtype=np.uint8)
    s = c.view(ml_dtypes.float8_e8m0fnu)
    p = np.array([2.0 ** (int(k) - 127) for k in c])
    codes = np.full(c.size, 0x3C, np.uint8)          # e4m3 1.5
    np.testing.assert_array_equal(lp.decode(codes, "e4m3", scale=s,
                                            dtype=np.float64), 1.5 * p)
    x = np.linspace(-3, 3, c.size)
    np.testing.assert_array_equal(lp.encode(x, "e5m2", scale=s),
                                  lp.encode(x, "e5m2", scale=p))
    np.testing.assert_array_equal(lp.quantize(x, "e5m2", scale=s),
                                  lp.quantize(x, "e5m2", scale=p))
    with pytest.raises(ValueError, match="scale"):
        lp.quantize(x[:1], "e5m2", scale=np.uint8([0xFF]).view(
            ml_dtypes.float8_e8m0fnu))
    with pytest.raises(ValueError, match="scale"):
        lp.encode(x[:1], "e5m2", scale=np.uint8([0]).view(
            ml_dtypes.float8_e4m3fn))


def test_matmul_ml_scales():
    """scaled_matmul with bfloat16 / float8 scales equals the float32
    scales of the same values; e8m0 block scales equal their powers of
    two."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 0x7F, (4, 64)).astype(np.uint8)
    b = rng.integers(0, 0x7F, (64, 3)).astype(np.uint8)
    kw = dict(a_format="e4m3", b_format="e4m3", accumulate="exact")
    for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        sa = np.array([[0.5], [2], [3], [0.75]], _ml(name))
        sb = np.array([[1, 1.5, 0.25]], _ml(name))
        got = lp.scaled_matmul(a, b, a_scale=sa, b_scale=sb, **kw)
        want = lp.scaled_matmul(a, b, a_scale=sa.astype(np.float32),
                                b_scale=sb.astype(np.float32), **kw)
        np.testing.assert_array_equal(_bits(got), _bits(want))
    e = rng.integers(120, 134, (4, 2)).astype(np.uint8)
    got = lp.scaled_matmul(a, b, a_scale=e.view(ml_dtypes.float8_e8m0fnu),
                           block=32, **kw)
    p = np.array([[2.0 ** (int(k) - 127) for k in r] for r in e], np.float32)
    want = lp.scaled_matmul(a, b, a_scale=p, block=32, **kw)
    np.testing.assert_array_equal(_bits(got), _bits(want))


# -- DLPack ----------------------------------------------------------------

class _OnDevice:
    """A DLPack producer on a CUDA device (kDLCUDA = 2)."""

    def __dlpack__(self, **kw):
        raise AssertionError("must not be read")

    def __dlpack_device__(self):
        return (2, 0)


class _NoExport:
    """A CPU DLPack producer that cannot export its dtype, with
    __array__."""

    def __dlpack__(self, **kw):
        raise BufferError("unsupported dtype")

    def __dlpack_device__(self):
        return (1, 0)

    def __array__(self, dtype=None, copy=None):
        return np.array([1.0, 448.0, -3.0], np.float32)


def test_dlpack_falls_back_to_array():
    np.testing.assert_array_equal(lp.encode(_NoExport(), "e4m3"),
                                  lp.encode(np.float32([1, 448, -3]), "e4m3"))


def test_non_cpu_dlpack_is_refused():
    x = _OnDevice()
    for call in (lambda: lp.encode(x, "e4m3"), lambda: lp.quantize(x, "e4m3"),
                 lambda: lp.decode(x, "e4m3"),
                 lambda: lp.encode(np.ones(2), "e4m3", scale=x),
                 lambda: lp.scaled_matmul(x, np.zeros((2, 2), np.uint8),
                                          a_format="e4m3", b_format="e4m3")):
        with pytest.raises(TypeError, match=r"DLPack device \(2, 0\)"):
            call()


# -- PyTorch ---------------------------------------------------------------

def _torch_values(torch, dtype, n=4096):
    """A tensor of dtype: random values over many binades and the special
    ones (integers for integer dtypes)."""
    g = torch.Generator().manual_seed(3)
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        return torch.randint(info.min, info.max + 1, (n,), generator=g,
                             dtype=torch.int64).to(dtype)
    v = torch.randn(n, generator=g, dtype=torch.float64) * torch.exp2(
        torch.randint(-20, 20, (n,), generator=g).to(torch.float64))
    special = torch.tensor([0.0, -0.0, 1.0, -1.0, 448.0, 65504.0, 1e-8])
    return torch.cat([v, special.to(torch.float64)]).to(dtype)


TORCH_DTYPES = ["float32", "float16", "bfloat16", "float8_e4m3fn",
                "float8_e5m2", "int8", "uint8"]


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_torch_tensors(dtype):
    """encode / quantize of a CPU tensor equal the NumPy float64 call on
    the same values (torch's exact widening); as codes, the same bits as
    the uint8 / uint16 view."""
    torch = pytest.importorskip("torch")
    dt = getattr(torch, dtype)
    t = _torch_values(torch, dt)
    v = t.to(torch.float64).numpy()
    for fmt in ("e4m3", "e2m1", "float16", "int8"):
        keep = _encodable(v, fmt)
        np.testing.assert_array_equal(
            lp.encode(t[torch.from_numpy(keep)], fmt, rounding="stochastic",
                      seed=4),
            lp.encode(v[keep], fmt, rounding="stochastic", seed=4))
    # quantize: as the NumPy / ml_dtypes array of the same values
    if dt.is_floating_point:
        same = v.astype(getattr(ml_dtypes, dtype, None) or np.dtype(dtype))
    else:
        same = t.numpy().astype(np.int64)
    q = lp.quantize(t, "e5m2")
    assert q.dtype == (same.dtype if dt.is_floating_point else np.float64)
    _same(q, lp.quantize(same, "e5m2"))
    # as codes: a float8 tensor is read by its bits, an integer one as is
    if dt.itemsize == 1 and dt.is_floating_point:
        fmt = dtype
        bits = t.view(torch.uint8).numpy()
        _same(lp.decode(t, fmt, dtype=np.float64), v)
        np.testing.assert_array_equal(lp.decode(t, fmt), lp.decode(bits, fmt))
    elif dtype == "bfloat16":
        bits = t.view(torch.int16).numpy().view(np.uint16)
        np.testing.assert_array_equal(lp.decode(t, "bfloat16"),
                                      lp.decode(bits, "bfloat16"))
    elif dtype == "uint8":
        np.testing.assert_array_equal(lp.decode(t, "e4m3"),
                                      lp.decode(t.numpy(), "e4m3"))
    elif dtype == "int8":
        np.testing.assert_array_equal(lp.decode(t, "int8", dtype=np.float64),
                                      t.to(torch.float64).numpy())
        np.testing.assert_array_equal(lp.int_matmul(t[:64].reshape(8, 8), t[
            64:128].reshape(8, 8)), lp.int_matmul(t[:64].reshape(8, 8).numpy(),
                                                  t[64:128].reshape(8, 8)
                                                  .numpy()))


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_torch_zero_copy(dtype):
    """A contiguous CPU tensor is read in place: the array lowprec works on
    is the tensor's memory, and an out= array over that memory is refused
    as overlapping the input."""
    torch = pytest.importorskip("torch")
    dt = getattr(torch, dtype)
    t = _torch_values(torch, dt, 64)
    a = as_array(t)
    assert a.ctypes.data == t.data_ptr() and a.shape == tuple(t.shape)
    assert a.dtype.itemsize == dt.itemsize
    big = torch.zeros(64, dtype=torch.float64)
    x = big.view(dt)[:64]
    out = big.numpy().view(np.uint8)[:64]
    with pytest.raises(ValueError, match="overlaps"):
        lp.encode(x, "e4m3", out=out)


def test_torch_strided_and_batched():
    torch = pytest.importorskip("torch")
    t = _torch_values(torch, torch.bfloat16, 64 * 48 - 7).reshape(64, 48)
    for view in (t.T, t[::3, 1::2], t.T[5]):
        v = view.to(torch.float64).numpy()
        np.testing.assert_array_equal(lp.encode(view, "e4m3"),
                                      lp.encode(v, "e4m3"))
    a = torch.randn(2, 4, 64).to(torch.float8_e4m3fn)
    b = torch.randn(64, 3).to(torch.float8_e5m2)
    s = torch.tensor([[2.0], [1], [0.5], [4]], dtype=torch.bfloat16)
    got = lp.scaled_matmul(a, b, a_scale=s, accumulate="exact")
    want = lp.scaled_matmul(a.view(torch.uint8).numpy(),
                            b.view(torch.uint8).numpy(), a_format="e4m3",
                            b_format="e5m2", a_scale=np.float32(
                                [[2], [1], [0.5], [4]]), accumulate="exact")
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_torch_block_quantize(dtype):
    """quantize_blocks / block quantize of a tensor equal those of the
    NumPy / ml_dtypes array of the same values."""
    torch = pytest.importorskip("torch")
    t = _torch_values(torch, getattr(torch, dtype), 8 * 64 - 7)
    t = t.reshape(8, 64)
    same = t.to(torch.float64).numpy().astype(
        getattr(ml_dtypes, dtype, None) or np.dtype(dtype))
    for fmt in ("mxfp8_e4m3", "nvfp4"):
        got, want = lp.quantize_blocks(t, fmt), lp.quantize_blocks(same, fmt)
        np.testing.assert_array_equal(_bits(got.codes), _bits(want.codes))
        np.testing.assert_array_equal(_bits(got.scales), _bits(want.scales))
        q = lp.quantize(t, fmt)
        assert q.dtype == same.dtype
        _same(q, lp.quantize(same, fmt))


def test_torch_unreadable_dtypes():
    torch = pytest.importorskip("torch")
    if hasattr(torch, "float4_e2m1fn_x2"):
        t = torch.zeros(4, dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
        with pytest.raises(TypeError, match="float4_e2m1fn_x2"):
            lp.decode(t, "fp4")
    with pytest.raises(TypeError, match="bool"):
        lp.encode(torch.ones(3, dtype=torch.bool), "e4m3")


# -- JAX -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_jax_arrays(dtype):
    """JAX CPU arrays equal the NumPy float64 call on the same values;
    read in place (DLPack for float32 / float16, __array__ for
    bfloat16)."""
    jnp = pytest.importorskip("jax.numpy")
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(6)
    v = rng.standard_normal(4096) * 2.0 ** rng.integers(-20, 20, 4096)
    x = jnp.asarray(v.astype(np.float32)).astype(getattr(jnp, dtype))
    v = np.asarray(jax.device_get(x.astype(jnp.float32))).astype(np.float64)
    for fmt in ("e4m3", "e5m2", "bfloat16"):
        np.testing.assert_array_equal(lp.encode(x, fmt),
                                      lp.encode(v, fmt))
    q = lp.quantize(x, "e4m3")
    assert q.dtype == np.dtype(getattr(ml_dtypes, dtype, dtype))
    a = as_array(x)
    assert a.ctypes.data == x.unsafe_buffer_pointer()
    if dtype == "bfloat16":
        np.testing.assert_array_equal(lp.decode(x, "bfloat16"),
                                      lp.decode(a.view(np.uint16),
                                                "bfloat16"))
