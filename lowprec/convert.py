"""encode / decode / quantize / pack / unpack: thin wrappers over the C
kernels (csrc/encode.c, csrc/decode.c).

The wrappers check arguments, bring inputs to contiguous native order,
split long arrays over a thread pool (the kernels release the GIL; every
element's bits depend only on its value and flat index, so any split gives
the same result) and turn the kernels' error flags into exceptions.
"""
from __future__ import annotations

import os
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor

import ml_dtypes
import numpy as np

from ._clib import ffi, lib
from .formats import Format, FloatFormat, IntFormat, get_format

ROUNDING = {
    "nearest_even": lib.LP_RNE, "rne": lib.LP_RNE,
    "nearest_away": lib.LP_RNA, "rna": lib.LP_RNA,
    "toward_zero": lib.LP_RZ, "rz": lib.LP_RZ,
    "toward_positive": lib.LP_RU, "ru": lib.LP_RU,
    "toward_negative": lib.LP_RD, "rd": lib.LP_RD,
    "to_odd": lib.LP_RO, "ro": lib.LP_RO,
    "stochastic": lib.LP_SR, "sr": lib.LP_SR,
}
ROUNDING_NAMES = ("nearest_even", "nearest_away", "toward_zero",
                  "toward_positive", "toward_negative", "to_odd",
                  "stochastic")

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
_IN_TYPES = {np.dtype(np.float64): lib.LP_F64,
             np.dtype(np.float32): lib.LP_F32,
             np.dtype(np.float16): lib.LP_F16,
             BFLOAT16: lib.LP_BF16}
_OUT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64),
               np.dtype(np.float16), BFLOAT16)
BACKENDS = ("auto", "c", "numba")

# Elements per thread below which splitting does not pay.
_MIN_CHUNK = 1 << 16
_POOL = None


def num_threads() -> int:
    """Threads the kernels use: LOWPREC_NUM_THREADS, else every core."""
    env = os.environ.get("LOWPREC_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"LOWPREC_NUM_THREADS must be an integer, got "
                             f"{env!r}") from None
        return max(1, n)
    return max(1, len(os.sched_getaffinity(0))
               if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                   thread_name_prefix="lowprec")
    return _POOL


def run_chunked(kernel, n: int) -> int:
    """Calls kernel(start, stop) over [0, n) in per-thread chunks and ORs
    the returned error flags."""
    threads = min(num_threads(), max(1, n // _MIN_CHUNK))
    if threads <= 1:
        return kernel(0, n)
    bounds = [n * t // threads for t in range(threads + 1)]
    futures = [_pool().submit(kernel, bounds[t], bounds[t + 1])
               for t in range(threads)]
    err = 0
    for fut in futures:
        err |= fut.result()
    return err


# -- argument checks -------------------------------------------------------

def _native(a: np.ndarray) -> np.ndarray:
    """C-contiguous, native byte order (a copy only when needed)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.c_contiguous:
        a = np.array(a, order="C")     # (ascontiguousarray makes 0-d 1-d)
    return a


def as_input(x):
    """Input array and the kernel's type code.  Integers stay integers
    (int64/uint64) so that they are converted exactly."""
    a = np.asarray(x)
    dt = a.dtype
    key = dt.newbyteorder("=") if not dt.isnative else dt
    if key in _IN_TYPES:
        return _native(a), _IN_TYPES[key]
    if dt.kind == "i":
        return _native(a.astype(np.int64)), lib.LP_I64
    if dt.kind == "u":
        return _native(a.astype(np.uint64)), lib.LP_U64
    raise TypeError(f"lowprec cannot encode arrays of dtype {dt}: use "
                    "float64, float32, float16, bfloat16 or an integer "
                    "dtype")


def check_rounding(rounding) -> int:
    try:
        return ROUNDING[rounding]
    except (KeyError, TypeError):
        raise ValueError(f"unknown rounding {rounding!r}; use one of "
                         f"{', '.join(ROUNDING)}") from None


def check_backend(backend) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of "
                         f"{', '.join(BACKENDS)}")
    return backend


def check_scale(scale, shape, compute_dtype, what="x"):
    """None, a Python float (scalar scale) or an array broadcast to shape.
    Every scale must be finite and > 0 in compute_dtype."""
    if scale is None:
        return None
    s = np.asarray(scale)
    if s.dtype.kind not in "fiu" or s.dtype.kind == "b":
        raise TypeError(f"scale must be a real number or array, got dtype "
                        f"{s.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        sc = s.astype(compute_dtype)
        bad = ~(np.isfinite(sc) & (sc > 0))
    if bad.any():
        first = s.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(f"scale must be finite and > 0 in "
                         f"{np.dtype(compute_dtype).name}; got {first!r} "
                         f"({int(bad.sum())} bad value(s))")
    if sc.size == 1 and sc.ndim <= len(shape):
        return float(sc.reshape(-1)[0])      # one scale for every element
    try:
        out_shape = np.broadcast_shapes(shape, sc.shape)
    except ValueError:
        out_shape = None
    if out_shape != tuple(shape):
        raise ValueError(f"scale of shape {s.shape} does not broadcast to "
                         f"{what} of shape {tuple(shape)}")
    return sc


def check_out(out, shape, dtype, inputs=()):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got "
                        f"{type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected "
                         f"{tuple(shape)}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    for a in inputs:
        if isinstance(a, np.ndarray) and np.shares_memory(out, a):
            raise ValueError("out overlaps the input")
    return out


def _result(out, shape, dtype):
    """Where a kernel writes: out itself when it is contiguous and native,
    else a new array (copied into out by _deliver)."""
    if out is not None and out.flags.c_contiguous and out.dtype.isnative:
        return out
    return np.empty(shape, dtype)


def _deliver(result, out):
    if out is None or result is out:
        return result
    out[...] = result
    return out


def as_float(a: np.ndarray) -> np.ndarray:
    """float16/32/64 arrays as they are; bfloat16 widened exactly to
    float32 through its bits (no casting warnings for NaN)."""
    if a.dtype == BFLOAT16:
        return (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return a


def _raise_errors(err, fmt, x):
    label = fmt.name or repr(fmt)
    xf = as_float(x)
    if err & lib.LP_ERR_NAN:
        count = int(np.isnan(xf).sum()) if xf.dtype.kind == "f" else 0
        raise ValueError(f"{label} has no NaN encoding: the input has "
                         f"{count} NaN value(s)")
    if err & lib.LP_ERR_NEGATIVE:
        count = int((xf < 0).sum())
        raise ValueError(f"{label} is unsigned: the input has {count} "
                         "negative value(s) that do not round to 0")
    if err & lib.LP_ERR_ZERO:
        raise ValueError(f"{label} has neither zero nor NaN: the input has "
                         f"{int((xf == 0).sum())} zero(s)")


def make_opts(fmt, rounding, saturate, subnormals, seed, rbits, zero_point):
    mode = check_rounding(rounding)
    o = ffi.new("lp_opts *")
    o.rounding = mode
    o.saturate = bool(saturate)
    o.keep_subnormals = bool(subnormals)
    if rbits is None:
        rbits = 64
    if not isinstance(rbits, (int, np.integer)) or not 1 <= rbits <= 64:
        raise ValueError(f"rbits must be an integer in 1..64, got {rbits!r}")
    o.rbits = int(rbits)
    if seed is None:
        seed = secrets.randbits(64) if mode == lib.LP_SR else 0
    o.seed = int(seed) % (1 << 64)
    o.zero_point = 0
    if zero_point is not None:
        if not isinstance(fmt, IntFormat):
            raise ValueError(f"zero_point applies to integer formats only, "
                             f"not {fmt.name or fmt!r}")
        if np.ndim(zero_point) == 0:
            zp = int(zero_point)
            if abs(zp) > (1 << 16):
                raise ValueError(f"zero_point {zp} is out of range for "
                                 f"{fmt.name or fmt!r}")
            o.zero_point = zp
    return o


def _ptr(a, ctype="void *"):
    return ffi.cast(ctype, a.ctypes.data)


def _encode_c(fmt, a, in_type, opts, scale, codes):
    """Runs lp_encode over a (contiguous, native) into codes."""
    n = a.size
    esize = a.dtype.itemsize
    csize = codes.dtype.itemsize
    sp = ffi.new("double *", scale) if scale is not None else ffi.NULL
    base_in, base_out = a.ctypes.data, codes.ctypes.data

    def kernel(start, stop):
        return lib.lp_encode(fmt.struct, opts, in_type,
                             ffi.cast("void *", base_in + start * esize),
                             stop - start, sp, start,
                             ffi.cast("void *", base_out + start * csize))
    return run_chunked(kernel, n)


# -- public API ------------------------------------------------------------

def encode(x, fmt, *, rounding="nearest_even", saturate=False,
           subnormals=True, scale=None, zero_point=None, seed=None,
           rbits=None, out=None, backend="auto"):
    """Rounds x (optionally divided by scale) once to fmt; returns codes.

    See API.md section 2 for the full contract: rounding modes, overflow
    rules, NaN and infinity handling, errors."""
    fmt = get_format(fmt)
    backend = check_backend(backend)
    if _is_device_array(x):
        from . import _cuda
        return _cuda.encode(x, fmt, rounding=rounding, saturate=saturate,
                            subnormals=subnormals, scale=scale,
                            zero_point=zero_point, seed=seed, rbits=rbits,
                            out=out)
    a, in_type = as_input(x)
    opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)
    out = check_out(out, a.shape, fmt.code_dtype, (x,))
    s = check_scale(scale, a.shape, _compute_dtype(a.dtype))
    if zero_point is not None and np.ndim(zero_point) > 0:
        return _deliver(_encode_zero_point_array(a, fmt, opts, s, zero_point,
                                                 backend), out)
    if isinstance(s, np.ndarray):
        # Per-element scales: divide in the input's precision, then round.
        a = _native(np.divide(a.astype(s.dtype, copy=False), s))
        in_type = _IN_TYPES[a.dtype]
        s = None
    codes = _result(out, a.shape, fmt.code_dtype)
    if a.size:
        if _use_numba(backend, fmt, opts, in_type, a.size):
            from . import _numba_backend
            err = _numba_backend.encode(fmt, a, in_type, opts, s, codes)
        else:
            err = _encode_c(fmt, a, in_type, opts, s, codes)
        if err:
            _raise_errors(err, fmt, a)
    return _deliver(codes, out)


def _compute_dtype(dt):
    """Precision of the division x / scale for inputs of dtype dt."""
    return np.float64 if dt == np.float64 or dt.kind in "iu" \
        else np.float32


def _encode_zero_point_array(a, fmt, opts, s, zero_point, backend):
    """Per-element zero points: round into a wide integer, add the zero
    point, then saturate to fmt."""
    zp = np.asarray(zero_point)
    if zp.dtype.kind not in "iu":
        raise TypeError(f"zero_point must be integers, got dtype {zp.dtype}")
    try:
        if np.broadcast_shapes(a.shape, zp.shape) != a.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"zero_point of shape {zp.shape} does not "
                         f"broadcast to x of shape {a.shape}") from None
    if np.abs(zp).max(initial=0) > (1 << 14):
        raise ValueError(f"zero_point values must be within +-2^14 for "
                         f"{fmt.name or fmt!r}")
    wide = IntFormat(16)
    o = ffi.new("lp_opts *", opts[0])
    o.zero_point = 0
    rounded = encode(a, wide, rounding=_mode_name(o.rounding),
                     scale=s, seed=o.seed, rbits=o.rbits, backend=backend)
    v = np.clip(rounded.astype(np.int32) + zp, fmt.min, fmt.max)
    return v.astype(fmt.code_dtype)


def _mode_name(mode):
    return next(k for k in ROUNDING_NAMES if ROUNDING[k] == mode)


def as_codes(codes, fmt):
    """Codes as a contiguous native array of fmt.code_dtype, checked to be
    codes of fmt.  ml_dtypes arrays of the format are taken by their bits."""
    c = np.asarray(codes)
    label = fmt.name or repr(fmt)
    if c.dtype.kind not in "iu":
        if c.dtype.type.__module__.startswith("ml_dtypes"):
            if c.dtype.name != fmt.name:
                raise ValueError(f"codes of dtype {c.dtype.name} do not "
                                 f"match format {label}")
            c = c.view(fmt.code_dtype)
        else:
            raise TypeError(f"codes must be an integer array (or an "
                            f"ml_dtypes array of the format), got dtype "
                            f"{c.dtype}")
    if isinstance(fmt, IntFormat):
        lo, hi = fmt.min, fmt.max
    else:
        lo, hi = 0, (1 << fmt.nbits) - 1
    full = np.iinfo(fmt.code_dtype)
    if c.size and (c.dtype != fmt.code_dtype or lo > full.min
                   or hi < full.max):
        if c.min() < lo or c.max() > hi:
            raise ValueError(f"codes out of range [{lo}, {hi}] of {label}")
    return _native(c.astype(fmt.code_dtype, copy=False))


def decode(codes, fmt, *, dtype=np.float32, scale=None, zero_point=None,
           out=None, backend="auto"):
    """Values of codes in dtype (float32, float64, float16 or bfloat16):
    each exact value (times scale) rounded once to dtype."""
    fmt = get_format(fmt)
    check_backend(backend)
    if _is_device_array(codes):
        from . import _cuda
        return _cuda.decode(codes, fmt, dtype=dtype, scale=scale,
                            zero_point=zero_point, out=out)
    dtype = np.dtype(dtype)
    if dtype not in _OUT_DTYPES:
        raise TypeError(f"decode produces float32, float64, float16 or "
                        f"bfloat16, not {dtype}")
    c = as_codes(codes, fmt)
    out = check_out(out, c.shape, dtype, (codes,))
    if zero_point is not None and not isinstance(fmt, IntFormat):
        raise ValueError(f"zero_point applies to integer formats only, not "
                         f"{fmt.name or fmt!r}")
    zp_scalar = 0
    zp_array = None
    if zero_point is not None:
        if np.ndim(zero_point) == 0:
            zp_scalar = int(zero_point)
        else:
            zp_array = np.asarray(zero_point)
            if np.broadcast_shapes(c.shape, zp_array.shape) != c.shape:
                raise ValueError(f"zero_point of shape {zp_array.shape} does "
                                 f"not broadcast to codes of shape {c.shape}")
    compute = np.float64 if dtype == np.float64 else np.float32
    s = check_scale(scale, c.shape, compute, what="codes")
    if dtype in (np.float32, np.float64) and zp_array is None \
            and not isinstance(s, np.ndarray):
        res = _result(out, c.shape, dtype)
        _decode_any(backend, fmt, c, res, s, zp_scalar)
        return _deliver(res, out)
    # General: exact values in float64, exact product, one rounding.
    v = np.empty(c.shape, np.float64)
    _decode_any(backend, fmt, c, v, None, zp_scalar)
    if zp_array is not None:
        v -= zp_array
    if s is not None:
        v = v * np.asarray(s, compute).astype(np.float64)
    return _deliver(_round_to_dtype(v, dtype), out)


def _round_to_dtype(v64, dtype):
    """float64 values rounded once (nearest-even) to a float dtype."""
    if dtype == np.float64:
        return v64
    if dtype == np.float32:
        return v64.astype(np.float32)
    name = "float16" if dtype == np.float16 else "bfloat16"
    return encode(v64, name).view(dtype)


def _decode_any(backend, fmt, c, res, scale, zp):
    """decode's kernel: Numba for backend="numba", else C ("auto" too: the
    two are within noise of each other, see docs/numba.md)."""
    if backend == "numba":
        from . import _numba_backend
        return _numba_backend.decode(fmt, c, res, scale, zp)
    return _decode_c(fmt, c, res, scale, zp)


def _decode_c(fmt, c, res, scale, zp):
    n = c.size
    if n == 0:
        return
    out_type = lib.LP_F64 if res.dtype == np.float64 else lib.LP_F32
    sp = ffi.new("double *", scale) if scale is not None else ffi.NULL
    cs, rs = c.dtype.itemsize, res.dtype.itemsize
    bc, br = c.ctypes.data, res.ctypes.data

    def kernel(start, stop):
        lib.lp_decode(fmt.struct, ffi.cast("void *", bc + start * cs),
                      stop - start, out_type, sp, zp,
                      ffi.cast("void *", br + start * rs))
        return 0
    run_chunked(kernel, n)


def quantize(x, fmt, *, rounding="nearest_even", saturate=False,
             subnormals=True, scale=None, zero_point=None, seed=None,
             rbits=None, out=None, backend="auto"):
    """Fake quantization: decode(encode(x)) in x's dtype, in one pass for
    float32 and float64 inputs."""
    fmt = get_format(fmt)
    check_backend(backend)
    if _is_device_array(x):
        from . import _cuda
        return _cuda.quantize(x, fmt, rounding=rounding, saturate=saturate,
                              subnormals=subnormals, scale=scale,
                              zero_point=zero_point, seed=seed, rbits=rbits,
                              out=out)
    a, in_type = as_input(x)
    out_dtype = a.dtype if in_type in (lib.LP_F64, lib.LP_F32, lib.LP_F16,
                                       lib.LP_BF16) else np.dtype(np.float64)
    out = check_out(out, a.shape, out_dtype, (x,))
    simple = (in_type in (lib.LP_F64, lib.LP_F32)
              and (zero_point is None or np.ndim(zero_point) == 0))
    if simple:
        opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                         zero_point)
        s = check_scale(scale, a.shape, _compute_dtype(a.dtype))
        simple = not isinstance(s, np.ndarray)
    if not simple:
        if seed is None and check_rounding(rounding) == lib.LP_SR:
            seed = secrets.randbits(64)
        codes = encode(a, fmt, rounding=rounding, saturate=saturate,
                       subnormals=subnormals, scale=scale,
                       zero_point=zero_point, seed=seed, rbits=rbits,
                       backend=backend)
        return _deliver(decode(codes, fmt, dtype=out_dtype, scale=scale,
                               zero_point=zero_point, backend=backend), out)
    res = _result(out, a.shape, a.dtype)
    if a.size:
        if _use_numba(backend, fmt, opts, in_type, a.size, "quantize"):
            from . import _numba_backend
            err = _numba_backend.quantize(fmt, a, in_type, opts, s, res)
        else:
            sp = ffi.new("double *", s) if s is not None else ffi.NULL
            es = a.dtype.itemsize
            bi, bo = a.ctypes.data, res.ctypes.data

            def kernel(start, stop):
                return lib.lp_quantize(
                    fmt.struct, opts, in_type,
                    ffi.cast("void *", bi + start * es), stop - start, sp,
                    start, ffi.cast("void *", bo + start * es))
            err = run_chunked(kernel, a.size)
        if err:
            _raise_errors(err, fmt, a)
    return _deliver(res, out)


# -- backends ----------------------------------------------------------------

def _use_numba(backend, fmt, opts, in_type, n, op="encode"):
    """Numba for backend="numba"; for "auto", where it is measurably faster
    and costs nothing up front: the element-by-element path (float64 and
    integer inputs; integer formats and E8M0 from any input) on large
    arrays, once Numba is imported and its kernel for the call is
    compiled (in this process or in Numba's disk cache).  C everywhere
    else: its float32 / shift / F16C paths are as fast.  docs/numba.md."""
    if backend == "numba":
        return True
    if backend == "c" or n < (1 << 18) or "numba" not in sys.modules:
        return False
    from . import _numba_backend
    return _numba_backend.auto_prefers(fmt, opts, in_type, op)


def _is_device_array(x):
    return hasattr(x, "__cuda_array_interface__") and not isinstance(
        x, np.ndarray)


# -- sub-byte packing --------------------------------------------------------

def _nbits(fmt):
    return fmt.bits if isinstance(fmt, IntFormat) else fmt.nbits


def pack(codes, fmt) -> np.ndarray:
    """Dense little-endian bit layout of sub-byte codes (flattened in C
    order): two fp4/int4 per byte, four fp6 in three bytes, the first code
    in the lowest bits.  The last byte is zero-padded."""
    fmt = get_format(fmt)
    nb = _nbits(fmt)
    if nb >= 8:
        raise ValueError(f"{fmt.name or fmt!r} has {nb}-bit codes: pack is "
                         "for formats of fewer than 8 bits")
    c = as_codes(codes, fmt).reshape(-1).view(np.uint8) & ((1 << nb) - 1)
    if nb == 4:
        if c.size % 2:
            c = np.append(c, np.uint8(0))
        return (c[0::2] | (c[1::2] << 4)).astype(np.uint8)
    bits = np.unpackbits(c[:, None], axis=1, count=nb, bitorder="little")
    return np.packbits(bits.reshape(-1), bitorder="little")


def unpack(packed, fmt, n: int) -> np.ndarray:
    """Inverse of pack: the first n codes (1-D, fmt.code_dtype)."""
    fmt = get_format(fmt)
    nb = _nbits(fmt)
    if nb >= 8:
        raise ValueError(f"{fmt.name or fmt!r} has {nb}-bit codes: unpack "
                         "is for formats of fewer than 8 bits")
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise TypeError(f"packed must be uint8, got {p.dtype}")
    n = int(n)
    need = (n * nb + 7) // 8
    if n < 0 or p.size < need:
        raise ValueError(f"{n} codes of {nb} bits need {need} bytes, "
                         f"packed has {p.size}")
    p = p.reshape(-1)[:need]
    if nb == 4:
        c = np.empty(2 * need, np.uint8)
        c[0::2] = p & 0xF
        c[1::2] = p >> 4
        c = c[:n]
    else:
        bits = np.unpackbits(p, bitorder="little")[:n * nb]
        c = np.packbits(bits.reshape(n, nb), axis=1,
                        bitorder="little").reshape(-1)
    if isinstance(fmt, IntFormat) and fmt.signed:
        # sign-extend the low nb bits
        c = ((c.astype(np.int16) ^ (1 << (nb - 1))) - (1 << (nb - 1)))
        return c.astype(np.int8)
    return c.astype(fmt.code_dtype)
