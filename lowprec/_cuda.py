"""GPU encode / decode / quantize for arrays exposing
``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors, Numba device
arrays), by ``numba.cuda`` kernels over the rounding core of
lowprec/_numba_core.py: the same bits as the CPU kernels.

``lp.encode`` / ``lp.decode`` / ``lp.quantize`` call these for device
arrays (convert._is_device_array).  Results stay on the GPU: a Numba device
array, converted back to the input's type when the input is a CuPy array
(``cupy.asarray``) or a torch tensor (``torch.as_tensor``).

Limits on the GPU: the array must be C-contiguous; ``scale`` and
``zero_point`` are scalars.  Importing this module needs no GPU; calling it
without one raises RuntimeError.  The kernels compile on first use.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import _numba_core as core
from . import _validate as val
from ._numba_backend import k32
from ._options import make_opts, raise_errors
from .formats import get_format

_THREADS = 256
_MAX_BLOCKS = 1 << 15


def available() -> bool:
    """Is a CUDA GPU usable through numba.cuda?"""
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def _require_gpu(what):
    if not available():
        raise RuntimeError(
            f"lowprec.{what}: the input exposes __cuda_array_interface__ "
            "(a GPU array) but numba.cuda finds no usable CUDA GPU/driver; "
            "copy the array to the host first (e.g. cupy.asnumpy(x), "
            "x.cpu().numpy())")


# -- kernels (built on first use) ------------------------------------------

_KERNELS = None


def _kernels():
    """The numba.cuda kernels.  Every element i of the flat array is one
    iteration of a grid-stride loop; errors are OR-ed into err[0]."""
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS

    encode_scalar = core.encode_scalar
    decode_value = core.decode_value
    load_bits = core.load_bits
    round_loaded = core.lp_round_loaded
    round_f32 = core.lp_round_f32
    hash32 = core.lp_hash32
    rnd_keyed = core.lp_random_keyed

    @cuda.jit(device=True, inline=True)
    def _code_of_bits(F, O, K, use32, kind, bits, key, i):
        """(code, err) of one loaded element (kind, bits) at flat index i:
        the float32 core for float32-like inputs where it applies, the
        general core otherwise (encode.c's choice of path)."""
        sr = O[core.O_ROUNDING] == core.SR
        if use32 and kind == core.IN_F32:
            u = np.uint64(i)
            lo = np.uint32(u & np.uint64(0xFFFFFFFF))
            hi = np.uint32(u >> np.uint64(32))
            r_hi = hash32(np.uint32(key >> np.uint64(32)), lo, hi) if sr \
                else np.uint32(0)
            r_lo = hash32(np.uint32(key & np.uint64(0xFFFFFFFF)), lo, hi) \
                if sr else np.uint32(0)
            code, err = round_f32(K, np.uint32(bits), O[core.O_ROUNDING],
                                  r_hi, r_lo)
            return np.int64(code), np.int64(err)
        rnd = rnd_keyed(key, i) if sr else np.uint64(0)
        return round_loaded(F, O, kind, bits, rnd)

    @cuda.jit
    def encode_values(x, codes, F, O, K, use32, has_scale, s32, s64, key,
                      err):
        """x: float32, float64 or integer elements."""
        e_all = 0
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            code, e = encode_scalar(F, O, K, use32, x[i], has_scale, s32,
                                    s64, key, i)
            codes[i] = code
            e_all |= e
        if e_all:
            cuda.atomic.or_(err, 0, e_all)

    @cuda.jit
    def encode_bits16(x, codes, F, O, K, use32, has_scale, s32, key, err):
        """x: float16 bits (uint16) or bfloat16 bits (int16)."""
        e_all = 0
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            kind, bits = load_bits(x, i, has_scale, s32, 1.0)
            code, e = _code_of_bits(F, O, K, use32, kind, bits, key, i)
            codes[i] = code
            e_all |= e
        if e_all:
            cuda.atomic.or_(err, 0, e_all)

    @cuda.jit(device=True, inline=True)
    def _store(res, i, v, F16, O16, K16):
        """res[i] = v (float64) rounded once to res's type; float16 and
        bfloat16 results (uint16 / int16 bit arrays) by the core, RNE."""
        if F16[core.KIND] < 0:
            res[i] = v
        else:
            c, e = encode_scalar(F16, O16, K16, False, v, False,
                                 np.float32(1), 1.0, np.uint64(0), 0)
            res[i] = c

    @cuda.jit
    def quantize_values(x, res, F, O, K, use32, has_scale, s32, s64, s_dec,
                        zp, key, F16, O16, K16, err):
        e_all = 0
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            code, e = encode_scalar(F, O, K, use32, x[i], has_scale, s32,
                                    s64, key, i)
            _store(res, i, decode_value(F, code, zp, has_scale, s_dec),
                   F16, O16, K16)
            e_all |= e
        if e_all:
            cuda.atomic.or_(err, 0, e_all)

    @cuda.jit
    def quantize_bits16(x, res, F, O, K, use32, has_scale, s32, s_dec, zp,
                        key, F16, O16, K16, err):
        e_all = 0
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            kind, bits = load_bits(x, i, has_scale, s32, 1.0)
            code, e = _code_of_bits(F, O, K, use32, kind, bits, key, i)
            _store(res, i, decode_value(F, code, zp, has_scale, s_dec),
                   F16, O16, K16)
            e_all |= e
        if e_all:
            cuda.atomic.or_(err, 0, e_all)

    @cuda.jit
    def decode(c, res, F, has_scale, s, zp, F16, O16, K16):
        for i in range(cuda.grid(1), c.size, cuda.gridsize(1)):
            _store(res, i, decode_value(F, np.int64(c[i]), zp, has_scale, s),
                   F16, O16, K16)

    _KERNELS = dict(encode_values=encode_values, encode_bits16=encode_bits16,
                    quantize_values=quantize_values,
                    quantize_bits16=quantize_bits16, decode=decode)
    return _KERNELS


def _launch(kernel, n, *args):
    blocks = max(1, min(_MAX_BLOCKS, (n + _THREADS - 1) // _THREADS))
    kernel[blocks, _THREADS](*args)


# -- arrays ----------------------------------------------------------------

def _as_device(x, what):
    """(flat numba device array, kind, wrap): kind "f16" / "bf16" for
    16-bit float bits (viewed as uint16 / int16), "value" otherwise; wrap
    converts a result back to the input's library."""
    wrap = _wrapper(x)
    torch_bf16 = False
    if type(x).__module__.startswith("torch"):
        import torch
        if x.dtype == torch.bfloat16:
            x = x.view(torch.int16)
            torch_bf16 = True
    d = cuda.as_cuda_array(x)
    if not d.is_c_contiguous():
        raise ValueError(f"lowprec.{what}: GPU arrays must be C-contiguous "
                         f"(got strides {d.strides} for shape {d.shape}); "
                         "make a contiguous copy first")
    shape = d.shape
    flat = d.reshape(d.size) if d.ndim != 1 else d
    dt = np.dtype(flat.dtype)
    if torch_bf16:
        return flat, "bf16", shape, wrap
    if dt == np.float16:
        return flat.view(np.uint16), "f16", shape, wrap
    if dt.name == "bfloat16":
        return flat.view(np.int16), "bf16", shape, wrap
    if dt.kind in "iu" or dt in (np.float32, np.float64):
        return flat, "value", shape, wrap
    raise TypeError(f"lowprec.{what} cannot process GPU arrays of dtype "
                    f"{dt}: use float64, float32, float16, bfloat16 or an "
                    "integer dtype")


def _wrapper(x):
    """A function taking a numba device array to x's array library."""
    mod = type(x).__module__
    if mod.startswith("cupy"):
        import cupy
        return cupy.asarray
    if mod.startswith("torch"):
        import torch
        dev = x.device
        return lambda d: torch.as_tensor(d, device=dev)
    return lambda d: d


def _result(out, shape, dtype, what):
    """(flat device array to write, the object to return instead or None):
    a new array, or out's own memory.  dtype: the result's dtype; float16
    and bfloat16 results are written as their 16-bit codes (uint16 /
    int16 views)."""
    dt = np.dtype(dtype)
    store = {"float16": np.uint16, "bfloat16": np.int16}.get(dt.name, dt)
    if out is None:
        return cuda.device_array(int(np.prod(shape, dtype=np.int64)),
                                 store), None
    if not hasattr(out, "__cuda_array_interface__"):
        raise TypeError(f"lowprec.{what}: out must be a GPU array for a GPU "
                        f"input, got {type(out).__name__}")
    o = out
    if dt.name == "bfloat16" and type(out).__module__.startswith("torch"):
        import torch
        if out.dtype == torch.bfloat16:
            o = out.view(torch.int16)
    d = cuda.as_cuda_array(o)
    got = np.dtype(d.dtype)
    ok = got == dt or (dt.name == "bfloat16" and got.kind in "iu"
                       and got.itemsize == 2)
    if not ok or tuple(d.shape) != tuple(shape):
        raise ValueError(f"lowprec.{what}: out has dtype {d.dtype} and shape "
                         f"{tuple(d.shape)}, expected {dt} and "
                         f"{tuple(shape)}")
    if not d.is_c_contiguous():
        raise ValueError(f"lowprec.{what}: out must be C-contiguous")
    flat = d.reshape(d.size) if d.ndim != 1 else d
    return flat.view(store) if np.dtype(flat.dtype) != np.dtype(store) \
        else flat, out


def _scalar_scale(scale, what, in_f64):
    """(has_scale, s32, s64), checked as for the CPU (finite and > 0 in
    the precision of the computation: float64 for float64 and integer data,
    else float32); on the GPU the scale is one number."""
    if scale is not None and np.ndim(scale) != 0:
        raise ValueError(f"lowprec.{what}: on the GPU, scale must be a "
                         "scalar")
    return val.check_scalar_scale(scale, in_f64=in_f64)


def _in_f64(flat, kind):
    """Does encode divide by the scale in float64 (float64 and integer
    inputs) rather than float32?"""
    dt = np.dtype(flat.dtype)
    return kind == "value" and (dt == np.float64 or dt.kind in "iu")


def _params(fmt, opts):
    F = core.format_params(fmt)
    O = core.opts_params(opts.rounding, opts.saturate, opts.keep_subnormals,
                         opts.rbits, opts.zero_point)
    ok, K = k32(F, O)
    return F, O, K, ok


def _out16(dtype):
    """(F16, O16, K16): for float16 / bfloat16 results, the format they are
    rounded to (once, nearest-even) by the core; for float32 / float64 a
    format tuple with kind -1 (the kernels then store the value itself)."""
    dt = np.dtype(dtype)
    O = core.opts_params(core.RNE, False, True)
    K = (np.uint32(0),) * len(core.K32_FIELDS)
    if dt.name in ("float16", "bfloat16"):
        return core.format_params(get_format(dt.name)), O, K
    return (-1,) + (0,) * (len(core.FORMAT_FIELDS) - 1), O, K


def _deliver(res, shape, dtype, like, wrap):
    """The flat result res in shape, as dtype, in like's array library."""
    dt = np.dtype(dtype)
    res = res.reshape(shape)
    if dt.name == "float16":
        return wrap(res.view(np.float16))
    if dt.name == "bfloat16":
        return _wrap_bf16(res, like)
    return wrap(res)


def _opts_for(fmt, rounding, saturate, subnormals, seed, rbits, zero_point,
              what):
    """Checked lp_opts (seed=None: a fresh seed for stochastic rounding);
    on the GPU the zero point is one integer."""
    if zero_point is not None and np.ndim(zero_point) != 0:
        raise ValueError(f"lowprec.{what}: on the GPU, zero_point must be "
                         "a scalar")
    return make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)


def _check_errors(err, fmt, flat, kind):
    """Raises as the CPU path does; the input is copied to the host only
    on this error path (for the counts in the message)."""
    e = int(err.copy_to_host()[0])
    if not e:
        return
    h = flat.copy_to_host()
    if kind == "f16":
        h = h.view(np.float16)
    elif kind == "bf16":
        import ml_dtypes
        h = h.view(np.uint16).view(ml_dtypes.bfloat16)
    raise_errors(e, fmt, h)


# -- entry points (called by lowprec.convert) ------------------------------

def encode(x, fmt, *, rounding="nearest_even", saturate=False,
           subnormals=True, scale=None, zero_point=None, seed=None,
           rbits=None, out=None):
    """lp.encode for a GPU array x: codes on the GPU."""
    _require_gpu("encode")
    fmt = get_format(fmt)
    opts = _opts_for(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point, "encode")         # checked before the device
    flat, kind, shape, wrap = _as_device(x, "encode")
    hs, s32, s64 = _scalar_scale(scale, "encode", _in_f64(flat, kind))
    F, O, K, use32 = _params(fmt, opts)
    key = np.uint64(core.mix64_py(opts.seed))
    codes, given = _result(out, shape, fmt.code_dtype, "encode")
    err = cuda.to_device(np.zeros(1, np.int64))
    k = _kernels()
    n = flat.size
    if n:
        if kind == "value":
            _launch(k["encode_values"], n, flat, codes, F, O, K, use32, hs,
                    s32, s64, key, err)
        else:
            _launch(k["encode_bits16"], n, flat, codes, F, O, K, use32, hs,
                    s32, key, err)
        _check_errors(err, fmt, flat, kind)
    if given is not None:
        return given
    return wrap(codes.reshape(shape))


def quantize(x, fmt, *, rounding="nearest_even", saturate=False,
             subnormals=True, scale=None, zero_point=None, seed=None,
             rbits=None, out=None):
    """lp.quantize for a GPU array x: values in x's dtype (float64 for
    integer inputs), on the GPU."""
    _require_gpu("quantize")
    fmt = get_format(fmt)
    opts = _opts_for(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point, "quantize")         # checked before the device
    flat, kind, shape, wrap = _as_device(x, "quantize")
    hs, s32, s64 = _scalar_scale(scale, "quantize", _in_f64(flat, kind))
    F, O, K, use32 = _params(fmt, opts)
    key = np.uint64(core.mix64_py(opts.seed))
    zp = int(opts.zero_point)
    in_dt = np.dtype(flat.dtype)
    if kind == "f16":
        out_dt = np.dtype(np.float16)
    elif kind == "bf16":
        import ml_dtypes
        out_dt = np.dtype(ml_dtypes.bfloat16)
    elif in_dt.kind in "iu":
        out_dt = np.dtype(np.float64)
    else:
        out_dt = in_dt
    F16, O16, K16 = _out16(out_dt)
    # decode.c takes the scale in float32 for float32 (and narrower) output
    s_dec = s64 if out_dt == np.float64 else float(s32)
    res, given = _result(out, shape, out_dt, "quantize")
    err = cuda.to_device(np.zeros(1, np.int64))
    k = _kernels()
    n = flat.size
    if n:
        if kind == "value":
            _launch(k["quantize_values"], n, flat, res, F, O, K, use32, hs,
                    s32, s64, s_dec, zp, key, F16, O16, K16, err)
        else:
            _launch(k["quantize_bits16"], n, flat, res, F, O, K, use32, hs,
                    s32, s_dec, zp, key, F16, O16, K16, err)
        _check_errors(err, fmt, flat, kind)
    return given if given is not None else _deliver(res, shape, out_dt, x,
                                                    wrap)


def decode(codes, fmt, *, dtype=np.float32, scale=None, zero_point=None,
           out=None):
    """lp.decode for GPU codes: values in dtype on the GPU."""
    _require_gpu("decode")
    fmt = get_format(fmt)
    dt = np.dtype(dtype)
    if dt.name not in ("float32", "float64", "float16", "bfloat16"):
        raise TypeError(f"decode produces float32, float64, float16 or "
                        f"bfloat16, not {dt}")
    if zero_point is not None and np.ndim(zero_point) != 0:
        raise ValueError("lowprec.decode: on the GPU, zero_point must be a "
                         "scalar")
    zp = val.check_zero_point(zero_point, fmt) or 0
    hs, s32, s64 = _scalar_scale(scale, "decode", dt == np.float64)
    d = cuda.as_cuda_array(codes)
    wrap = _wrapper(codes)
    if not d.is_c_contiguous():
        raise ValueError("lowprec.decode: GPU arrays must be C-contiguous")
    if np.dtype(d.dtype).kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype "
                        f"{d.dtype}")
    s = s64 if dt == np.float64 else float(s32)
    F = core.format_params(fmt)
    F16, O16, K16 = _out16(dt)
    shape = d.shape
    flat = d.reshape(d.size) if d.ndim != 1 else d
    res, given = _result(out, shape, dt, "decode")
    if flat.size:
        _launch(_kernels()["decode"], flat.size, flat, res, F, hs, s,
                zp, F16, O16, K16)
    return given if given is not None else _deliver(res, shape, dt, codes,
                                                    wrap)


def _wrap_bf16(bits16, like):
    """bfloat16 results (int16 bits on the device) in like's library: torch
    tensors of dtype bfloat16; other libraries get the uint16 bits (CuPy
    has no bfloat16) as a Numba device array viewed as uint16."""
    if type(like).__module__.startswith("torch"):
        import torch
        return torch.as_tensor(bits16, device=like.device).view(
            torch.bfloat16)
    return bits16.view(np.uint16)
