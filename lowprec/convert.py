"""encode / decode / quantize / pack / unpack: thin wrappers over the C
kernels (csrc/encode.c, csrc/decode.c).

The wrappers check arguments (lowprec._validate, lowprec._options), bring
inputs to contiguous native order, split long arrays over the thread pool
of lowprec._threads (the kernels release the GIL; every element's bits
depend only on its value and flat index, so any split gives the same
result) and turn the kernels' error flags into exceptions.  The internal
modules never import this one.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import _validate as val
from . import blocks
from ._clib import ffi, lib
from ._interop import ML_FLOAT_DTYPES as _ML_FLOAT_DTYPES
from ._interop import ML_INTS as _ML_INTS
from ._interop import as_array
from ._options import (BFLOAT16, ROUNDING, ROUNDING_NAMES, as_float,
                       attach_random_bits, check_rounding, make_opts,
                       mode_name, raise_errors)
from ._threads import num_threads, pool, run_chunked
from ._validate import check_out, check_scale
from .formats import Format, FloatFormat, IntFormat, get_format

if TYPE_CHECKING:
    from ._typing import (AnyFormatLike, ArrayLike, Backend, BoolLike,
                          CodeArray, DTypeLike, FloatArray, FormatLike,
                          IntLike, NDArray, Rounding, Seed)

_IN_TYPES = {np.dtype(np.float64): lib.LP_F64,
             np.dtype(np.float32): lib.LP_F32,
             np.dtype(np.float16): lib.LP_F16,
             BFLOAT16: lib.LP_BF16}
_OUT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64),
               np.dtype(np.float16), BFLOAT16)
BACKENDS = ("auto", "c", "numba")


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
    (int64/uint64) so that they are converted exactly; the ml_dtypes
    float8 / float6 / float4 types widen exactly to float32 (so e5m2 ->
    e4m3 is one rounding, of the exact value)."""
    a = as_array(x)
    dt = a.dtype
    key = dt.newbyteorder("=") if not dt.isnative else dt
    if key in _IN_TYPES:
        return _native(a), _IN_TYPES[key]
    if key in _ML_FLOAT_DTYPES:
        return _native(a.astype(np.float32)), lib.LP_F32
    if dt.kind == "i" or key in _ML_INTS and key.name.startswith("int"):
        return _native(a.astype(np.int64)), lib.LP_I64
    if dt.kind == "u" or key in _ML_INTS:
        return _native(a.astype(np.uint64)), lib.LP_U64
    raise TypeError(f"lowprec cannot encode arrays of dtype {dt}: use "
                    "float64, float32, float16, an ml_dtypes float type "
                    "(bfloat16, float8_*, float6_*, float4_e2m1fn) or an "
                    "integer dtype")


def _value_dtype(dt):
    """quantize's result dtype for inputs of dtype dt: dt itself (native
    order) for float dtypes, float64 for integers."""
    key = dt.newbyteorder("=") if not dt.isnative else dt
    if key in _IN_TYPES or key in _ML_FLOAT_DTYPES:
        return key
    return np.dtype(np.float64)


def check_backend(backend: object) -> Backend:
    return val.check_choice(backend, "backend", BACKENDS)


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


def _ptr(a, ctype="void *"):
    return ffi.cast(ctype, a.ctypes.data)


def index_map(offset, chunk, shape):
    """The flat indices in an array of shape `shape` of the elements of its
    chunk of shape `chunk` at `offset` (C order), as the index map of
    lp_encode_map: (run, starts), local element l at flat index
    starts[l // run] + l % run; None when they are 0, 1, 2, ... (the chunk
    starts at 0 and spans every axis after its first).  Trailing axes the
    chunk spans whole merge into one run: chunk (2, 3) at (0, 1) of (4, 5)
    gives run 3, starts [1, 6]."""
    nd = len(shape)
    strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        strides[d] = strides[d + 1] * int(shape[d + 1])
    d = nd - 1
    while d > 0 and chunk[d] == shape[d]:
        d -= 1
    if nd == 0 or all(o == 0 for o in offset) and all(
            chunk[e] == shape[e] for e in range(1, nd)):
        return None
    run = int(np.prod(chunk[d:], dtype=np.int64))
    starts = np.full((), offset[d] * strides[d], np.int64)
    for e in range(d):
        starts = starts[..., None] + (offset[e] + np.arange(
            chunk[e], dtype=np.int64)) * strides[e]
    return max(run, 1), np.ascontiguousarray(starts.reshape(-1))


def _map_args(index):
    """(run, starts pointer) of an index map for the *_map kernels."""
    if index is None:
        return 0, ffi.NULL
    return index[0], ffi.cast("int64_t *", index[1].ctypes.data)


def _encode_c(fmt, a, in_type, opts, scale, codes, index=None):
    """Runs lp_encode over a (contiguous, native) into codes; index: an
    index map (index_map) for the stochastic rounding's flat indices."""
    n = a.size
    esize = a.dtype.itemsize
    csize = codes.dtype.itemsize
    sp = ffi.new("double *", scale) if scale is not None else ffi.NULL
    base_in, base_out = a.ctypes.data, codes.ctypes.data
    run, starts = _map_args(index)

    def kernel(start, stop):
        return lib.lp_encode_map(fmt.struct, opts, in_type,
                                 ffi.cast("void *", base_in + start * esize),
                                 stop - start, sp, start, run, starts,
                                 ffi.cast("void *", base_out + start * csize))
    return run_chunked(kernel, n)


def _encode_any(backend, fmt, a, in_type, opts, scale, codes, label_fmt,
                index=None, random=None):
    """encode's kernel (Numba or C, see _use_numba) into codes; raises
    for the error flags, naming label_fmt.  With an index map (only
    stochastic rounding reads it) the C kernel runs: it gives the Numba
    kernel's bits.  random: the caller's random words opts points at
    (attach_random_bits), or None."""
    if not a.size:
        return
    if opts.rounding != lib.LP_SR:
        index = None
    if index is None and _use_numba(backend, fmt, opts, in_type, a.size):
        # Imported on first use so that `import lowprec` does not load
        # Numba (start-up time); _numba_backend does not import this module.
        from . import _numba_backend
        err = _numba_backend.encode(fmt, a, in_type, opts, scale, codes,
                                    random=random)
    else:
        err = _encode_c(fmt, a, in_type, opts, scale, codes, index)
    if err:
        raise_errors(err, label_fmt, a)


# -- public API ------------------------------------------------------------

def encode(x: ArrayLike, fmt: FormatLike, *,
           rounding: Rounding = "nearest_even", saturate: BoolLike = False,
           subnormals: BoolLike = True, scale: Optional[ArrayLike] = None,
           zero_point: Optional[ArrayLike] = None, seed: Seed = None,
           rbits: Optional[IntLike] = None,
           random_bits: Optional[ArrayLike] = None,
           out: Optional[NDArray[Any]] = None,
           backend: Backend = "auto", flags: BoolLike = False,
           tininess: str = "after") -> Any:
    """Rounds x (optionally divided by scale) once to fmt; returns codes.

    Every result is the correctly rounded value of the exact input, rounded
    once (a float64 input is never rounded through float32).  Overflow,
    NaN, infinity and subnormal handling follow docs/rounding.md.

    Parameters
    ----------
    x
        Values: any array-like of float64, float32, float16 or any ml_dtypes
        float type (bfloat16, float8_*, float6_*, float4_e2m1fn: their exact
        values, so e5m2 -> e4m3 is one rounding; integers are taken
        exactly), any shape and strides, either byte order; a PyTorch / JAX
        CPU tensor is read in place through DLPack (docs/interop.md).  An
        array exposing ``__cuda_array_interface__`` is encoded on the GPU
        and the codes are returned there.
    fmt
        Target format: a Format, a name or alias ("e4m3") or a dtype.
    rounding
        "nearest_even" ("rne"), "nearest_away" ("rna"), "toward_zero"
        ("rz"), "toward_positive" ("ru"), "toward_negative" ("rd"),
        "to_odd" ("ro") or "stochastic" ("sr").
    saturate
        Overflow policy: False / "ovfinf" (overflow to inf by the
        rounding mode, NaN without infinity), True / "satfinite"
        (overflow and infinities to ±max) or "satpropagate" (finite
        overflow to ±max, infinities kept).
    subnormals
        False flushes results that are subnormal after rounding to zero.
    scale
        Dequantization scale (scalar, or broadcastable to x; finite and
        > 0): rounds ``x / scale``, the division done in x's precision
        (float32 for float16 / bfloat16 inputs).  ml_dtypes
        float8_e8m0fnu scales are taken by value.
    zero_point
        Integer formats: added after rounding, before saturation.
    seed
        Stochastic rounding: the generator's key (an integer in [0,
        2^64)); each element draws from (seed, flat index).  None draws a
        fresh seed.
    rbits
        Random bits of stochastic rounding, 1..64 (None: 64).
    random_bits
        Stochastic rounding only: the caller's random integers (an
        unsigned integer array broadcastable to x) replacing the
        generator (seed is then unused): with R = rbits or the dtype's
        width, an element rounds away from zero iff
        floor(d * 2^R) + r >= 2^R, d its distance to the lower neighbour
        in units of the gap.  Values must be below 2^R.
    out
        Array to write the codes to (fmt.code_dtype, x's shape,
        writeable, not overlapping x).
    backend
        "c", "numba" or "auto" (the faster for the input); all give the
        same bits.
    flags
        True returns ``(codes, flags)``: flags a uint8 array of x's shape
        with the IEEE exception flags of each element's rounding
        (lp.FLAG_INEXACT, FLAG_UNDERFLOW, FLAG_OVERFLOW, FLAG_INFINITE,
        FLAG_INVALID as Berkeley SoftFloat; docs/arith.md).  A NaN into a
        format without NaN then gives code 0 with FLAG_INVALID instead of
        raising.  Host arrays, a scalar zero_point, no random_bits.
    tininess
        "after" (default) or "before" rounding: when a tiny inexact
        result sets FLAG_UNDERFLOW.

    Returns
    -------
    ndarray of fmt.code_dtype, or (codes, flags) with flags=True
        The codes, x's shape (sub-byte formats: one code per byte, in
        the low bits; `pack` packs them).

    Raises
    ------
    TypeError
        x of another dtype, or an argument of the wrong kind (a float
        seed, an int for saturate, ...).
    ValueError
        A NaN into a format without NaN (fp4, fp6, integers), a negative
        value into an unsigned float format, a scale that is not finite
        and > 0, an unknown rounding or format name, a wrong ``out``.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> x = np.array([0.3, 1.0625, 448.0, 500.0, -1e-3], np.float32)
    >>> lp.encode(x, "e4m3")
    array([ 42,  56, 126, 127, 129], dtype=uint8)
    >>> lp.encode(x, "e4m3", saturate=True)          # 500 -> max, not NaN
    array([ 42,  56, 126, 126, 129], dtype=uint8)
    >>> lp.encode([1.0, 2.5, 3.5], "fp4", rounding="toward_zero")
    array([2, 4, 5], dtype=uint8)
    >>> lp.encode([3.0, -7.0], "int4", scale=0.5)     # integers saturate
    array([ 6, -8], dtype=int8)
    >>> lp.encode([1.3], "e4m3", rounding="stochastic",
    ...           random_bits=np.array([200], np.uint8))  # d = 0.4: 102 + 200 >= 256
    array([59], dtype=uint8)
    """
    return _encode(x, fmt, rounding=rounding, saturate=saturate,
                   subnormals=subnormals, scale=scale, zero_point=zero_point,
                   seed=seed, rbits=rbits, random_bits=random_bits, out=out,
                   backend=backend, flags=flags, tininess=tininess)


def _encode(x, fmt, *, rounding="nearest_even", saturate=False,
            subnormals=True, scale=None, zero_point=None, seed=None,
            rbits=None, random_bits=None, out=None, backend="auto",
            index=None, flags=False, tininess="after"):
    """encode, with x a chunk of a larger array when index is its index
    map (index_map): stochastic rounding keys on the larger array's flat
    indices (lowprec.dask)."""
    if index is not None and random_bits is not None:
        raise ValueError("random_bits cannot be combined with an index map "
                         "(chunks of a larger array)")
    if random_bits is not None and val.check_bool(flags, "flags"):
        raise ValueError("flags=True does not take random_bits (the flags "
                         "kernel draws from seed)")
    fmt = get_format(fmt)
    backend = check_backend(backend)
    if val.check_bool(flags, "flags"):
        return _encode_flags(x, fmt, rounding, saturate, subnormals, scale,
                             zero_point, seed, rbits, out, tininess)
    val.check_choice(tininess, "tininess", ("after", "before"))
    if _is_device_array(x):
        if random_bits is not None:
            raise TypeError("random_bits takes host (NumPy) inputs only, "
                            "not device arrays")
        # Imported on first use: it loads numba.cuda (start-up time);
        # _cuda does not import this module.
        from . import _cuda
        return _cuda.encode(x, fmt, rounding=rounding, saturate=saturate,
                            subnormals=subnormals, scale=scale,
                            zero_point=zero_point, seed=seed, rbits=rbits,
                            out=out)
    x = as_array(x)
    a, in_type = as_input(x)
    opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)
    words = attach_random_bits(opts, random_bits, a.shape, rbits)
    out = check_out(out, a.shape, fmt.code_dtype, (x,))
    s = check_scale(_scale_values(scale), a.shape, _compute_dtype(a.dtype))
    zp = val.check_zero_point(zero_point, fmt, a.shape)
    if isinstance(s, np.ndarray):
        # Per-element scales: divide in the input's precision, then round.
        # (overflow to inf and underflow are the division's own results)
        with np.errstate(over="ignore", under="ignore"):
            a = _native(np.divide(a.astype(s.dtype, copy=False), s))
        in_type = _IN_TYPES[a.dtype]
        s = None
    if isinstance(zp, np.ndarray):
        return _deliver(_encode_zero_point_array(a, in_type, fmt, opts, s,
                                                 zp, backend, index, words),
                    out)
    codes = _result(out, a.shape, fmt.code_dtype)
    _encode_any(backend, fmt, a, in_type, opts, s, codes, fmt, index, words)
    return _deliver(codes, out)


def _encode_flags(x, fmt, rounding, saturate, subnormals, scale,
                  zero_point, seed, rbits, out, tininess):
    """encode(..., flags=True): lp_encode_flags (the core element by
    element) into codes and flags."""
    if _is_device_array(x):
        raise TypeError("encode(flags=True) takes host arrays, not device "
                        "arrays")
    x = as_array(x)
    a, in_type = as_input(x)
    opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)
    opts.tininess_before = val.check_choice(
        tininess, "tininess", ("after", "before")) == "before"
    out = check_out(out, a.shape, fmt.code_dtype, (x,))
    s = check_scale(_scale_values(scale), a.shape, _compute_dtype(a.dtype))
    zp = val.check_zero_point(zero_point, fmt, a.shape)
    if isinstance(zp, np.ndarray):
        raise ValueError("encode(flags=True) takes a scalar zero_point, "
                         f"not an array of shape {zp.shape}")
    if isinstance(s, np.ndarray):
        a = _native(np.divide(a.astype(s.dtype, copy=False), s))
        in_type = _IN_TYPES[a.dtype]
        s = None
    codes = _result(out, a.shape, fmt.code_dtype)
    fl = np.zeros(a.shape, np.uint8)
    if a.size:
        sp = ffi.new("double *", s) if s is not None else ffi.NULL
        es, cs = a.dtype.itemsize, codes.dtype.itemsize
        bi, bo, bf = a.ctypes.data, codes.ctypes.data, fl.ctypes.data

        def kernel(start, stop):
            return lib.lp_encode_flags(
                fmt.struct, opts, in_type,
                ffi.cast("void *", bi + start * es), stop - start, sp, start,
                ffi.cast("void *", bo + start * cs),
                ffi.cast("uint8_t *", bf + start))
        run_chunked(kernel, a.size)
    return _deliver(codes, out), fl


def _scale_values(scale):
    """A scale argument for check_scale: a PyTorch / JAX tensor as a NumPy
    array (as_array); ml_dtypes arrays (float8_e8m0fnu MX block scales as
    their powers of two, bfloat16, float8 ...) become exact float64 values
    in check_scale; any other scale as it is."""
    if scale is None or isinstance(scale, (int, float, np.ndarray)):
        return scale
    return as_array(scale, "scale")


def _compute_dtype(dt):
    """Precision of the division x / scale for inputs of dtype dt."""
    return np.float64 if dt == np.float64 or dt.kind in "iu" \
        else np.float32


_WIDE = IntFormat(16)


def _encode_zero_point_array(a, in_type, fmt, opts, s, zp, backend,
                             index=None, random=None):
    """Per-element zero points (int64 array zp, broadcast to a): the
    integer r = round(x / s), plus zp, saturated to fmt (API: the zero point
    is added after rounding, before saturation).

    r matters only within [lo, hi] = [fmt.min - max(zp), fmt.max - min(zp)]:
    beyond, the result saturates either way, so clip(r, lo, hi) serves.
    An int16 encode with the scalar zero point -b gives clip(r - b, -32768,
    32767), i.e. clip(r, b - 32768, b + 32767) after adding b back: one
    such window (b = lo + 32768) covers [lo, lo + 65535], enough for 8-bit
    formats; wider spans (16-bit formats, |zp| up to 2^16) take the next
    window where the previous one saturated high.  Every window rounds the
    same elements with the same flat indices and seed, so r is one
    rounding.  Example: uint16, zp = 0: lo = 0, hi = 65535, one window
    b = 32768: 40000 -> int16 code 7232 -> 7232 + 32768 = 40000."""
    lo = fmt.min - int(zp.max(initial=0))
    hi = fmt.max - int(zp.min(initial=0))
    o = ffi.new("lp_opts *", opts[0])
    codes = np.empty(a.shape, _WIDE.code_dtype)
    base = lo + 32768
    r = top = None
    while True:
        o.zero_point = -base
        _encode_any(backend, _WIDE, a, in_type, o, s, codes, fmt, index,
                    random)
        part = codes.astype(np.int32)          # |r|, |zp| < 2^18: int32
        part += base                           # clip(r, base - 32768, top)
        r = part if r is None else np.where(r >= top, part, r)
        top = base + 32767
        if top >= hi:
            break
        base = top + 32768                     # the next window starts at top
    r += zp.astype(np.int32)
    return np.clip(r, fmt.min, fmt.max, out=r).astype(fmt.code_dtype)


def as_codes(codes, fmt):
    """Codes as a contiguous native array of fmt.code_dtype, checked to be
    codes of fmt.  ml_dtypes arrays of the format are taken by their bits
    (float formats) or their values (int2 / int4 / uint2 / uint4, whose
    bytes hold the low bits only, not sign-extended)."""
    c = as_array(codes, "codes")
    label = fmt.name or repr(fmt)
    if not c.dtype.isnative:
        # before any view: the bits of a byte-swapped array are swapped
        c = c.astype(c.dtype.newbyteorder("="))
    if c.dtype.kind not in "iu":
        if c.dtype.type.__module__.startswith("ml_dtypes"):
            if c.dtype.name != fmt.name:
                raise ValueError(f"codes of dtype {c.dtype.name} do not "
                                 f"match format {label}")
            if isinstance(fmt, IntFormat):
                c = c.astype(fmt.code_dtype)
            else:
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


def decode(codes: ArrayLike, fmt: FormatLike, *,
           dtype: DTypeLike = np.float32, scale: Optional[ArrayLike] = None,
           zero_point: Optional[ArrayLike] = None,
           out: Optional[NDArray[Any]] = None,
           backend: Backend = "auto") -> FloatArray:
    """Values of codes in dtype: each exact value (minus zero_point, times
    scale) rounded once to dtype.

    Parameters
    ----------
    codes
        Codes of fmt (an integer array; an ml_dtypes array of the format
        is taken by its bits).  Device arrays are decoded on the GPU.
    fmt
        The codes' format: a Format, a name or alias, or a dtype.
    dtype
        float32 (default), float64, float16 or an ml_dtypes float type
        (bfloat16, float8_*, float6_*, float4_e2m1fn).  Into an ml_dtypes
        dtype the rounding is that of lp.encode into the format of the
        same name (the bits of ml_dtypes' astype from the exact float64
        value): overflow and NaN as that format has them; a NaN into a
        format without NaN (float6, float4) or a negative value into an
        unsigned one (float8_e8m0fnu, float8_e5m3fnu) raises ValueError.
    scale
        Scale to multiply by (scalar or broadcastable; finite and > 0).
    zero_point
        Integer formats: subtracted before scaling.
    out
        Array to write the values to (dtype, the codes' shape).
    backend
        "c", "numba" or "auto"; all give the same bits.

    Returns
    -------
    ndarray of dtype
        The values, the codes' shape.  NaN codes give NaN, infinity codes
        ±inf.

    Raises
    ------
    TypeError
        An unsupported dtype, or codes that are not integers.
    ValueError
        Codes outside the format's range, a bad scale or ``out``.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> lp.decode(np.array([0x38, 0x7E, 0x7F], np.uint8), "e4m3")
    array([  1., 448.,  nan], dtype=float32)
    >>> lp.decode(np.array([0x38, 0x7E], np.uint8), "e4m3",
    ...           dtype=np.float64, scale=0.5)
    array([  0.5, 224. ])
    """
    fmt = get_format(fmt)
    check_backend(backend)
    if _is_device_array(codes):
        from . import _cuda          # on first use: see encode
        return _cuda.decode(codes, fmt, dtype=dtype, scale=scale,
                            zero_point=zero_point, out=out)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32, float64, float16 or an "
                        f"ml_dtypes float type, got {dtype!r}") from None
    if dtype not in _OUT_DTYPES and dtype not in _ML_FLOAT_DTYPES:
        raise TypeError(f"decode produces float32, float64, float16 or an "
                        f"ml_dtypes float type (bfloat16, float8_*, "
                        f"float6_*, float4_e2m1fn), not {dtype}")
    codes = as_array(codes, "codes")
    c = as_codes(codes, fmt)
    out = check_out(out, c.shape, dtype, (codes,))
    zp = val.check_zero_point(zero_point, fmt, c.shape, what="codes")
    zp_array = zp if isinstance(zp, np.ndarray) else None
    zp_scalar = zp if isinstance(zp, int) else 0
    compute = np.float64 if dtype == np.float64 else np.float32
    scale = _scale_values(scale)
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
    """float64 values rounded once (nearest-even) to a float dtype: float16
    and the ml_dtypes types through encode into the format of that name."""
    if dtype == np.float64:
        return v64
    if dtype == np.float32:
        return v64.astype(np.float32)
    return encode(v64, get_format(dtype)).view(dtype)


def _decode_any(backend, fmt, c, res, scale, zp):
    """decode's kernel: Numba for backend="numba", else C ("auto" too: the
    two are within noise of each other, see docs/numba.md)."""
    if backend == "numba":
        from . import _numba_backend     # on first use: see _encode_any
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


_BLOCK_ARGS = ("block", "axis", "scale_format", "scale_rule", "tensor_amax")


def quantize(x: ArrayLike, fmt: AnyFormatLike, *,
             rounding: Rounding = "nearest_even", saturate: BoolLike = False,
             subnormals: BoolLike = True, scale: Optional[ArrayLike] = None,
             zero_point: Optional[ArrayLike] = None, seed: Seed = None,
             rbits: Optional[IntLike] = None,
             random_bits: Optional[ArrayLike] = None,
             out: Optional[NDArray[Any]] = None, backend: Backend = "auto",
             flags: BoolLike = False, tininess: str = "after",
             **block_args: Any) -> Any:
    """Fake quantization: decode(encode(x)) in x's dtype, in one pass for
    float32 and float64 inputs.  x as for encode; the result is a NumPy
    array of x's float dtype (an ml_dtypes float8 input gives the format's
    value rounded once into its float8 type), float64 for integers.

    The values are exact in x's dtype (float64 for integer inputs).  With
    a block format (a recipe name such as "mxfp4" or a BlockFormat):
    dequantize(quantize_blocks(x, fmt, ...)) with quantize_blocks' keyword
    arguments (block, axis, scale_format, scale_rule, tensor_amax,
    rounding, seed), which override the recipe (docs/blocks.md).

    Parameters
    ----------
    x
        Values, as `encode` takes them.
    fmt
        An element format (as `encode`) or a block format.
    rounding
        As `encode`.
    saturate
        As `encode`.
    subnormals
        As `encode`.
    scale
        As `encode`.
    zero_point
        As `encode`.
    seed
        As `encode`.
    rbits
        As `encode`.
    random_bits
        As `encode`.
    backend
        As `encode`.
    flags
        True returns ``(values, flags)``, the flags of encode's rounding.
    tininess
        As `encode`.
    out
        Array to write the values to (x's dtype and shape).
    **block_args
        Block formats only: quantize_blocks' block, axis, scale_format,
        scale_rule and tensor_amax.

    Returns
    -------
    ndarray of x's dtype
        The quantized values.

    Raises
    ------
    TypeError
        As `encode`; block arguments with an element format, or
        saturate / subnormals / scale / zero_point / rbits with a block
        format.
    ValueError
        As `encode` and `quantize_blocks`.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> lp.quantize(np.array([0.1, 0.2]), "bf16")
    array([0.10009766, 0.20019531])
    >>> lp.quantize(np.float32([500.0]), "e4m3", saturate=True)
    array([448.], dtype=float32)
    """
    return _quantize(x, fmt, rounding=rounding, saturate=saturate,
                     subnormals=subnormals, scale=scale,
                     zero_point=zero_point, seed=seed, rbits=rbits,
                     random_bits=random_bits, out=out, backend=backend,
                     flags=flags, tininess=tininess, **block_args)


def _quantize(x, fmt, *, rounding="nearest_even", saturate=False,
              subnormals=True, scale=None, zero_point=None, seed=None,
              rbits=None, random_bits=None, out=None, backend="auto",
              index=None, flags=False, tininess="after", **block_args):
    """quantize, with x a chunk of a larger array when index is its index
    map (see _encode); block formats take it too."""
    unknown = [k for k in block_args if k not in _BLOCK_ARGS]
    if unknown:
        raise TypeError(f"quantize() got an unexpected keyword argument "
                        f"{unknown[0]!r}")
    if blocks.is_block_format(fmt):
        # a block recipe / BlockFormat: dequantize(quantize_blocks(x))
        given = [name for name, v, default in (
            ("saturate", saturate, False), ("subnormals", subnormals, True),
            ("scale", scale, None), ("zero_point", zero_point, None),
            ("rbits", rbits, None), ("flags", flags, False),
            ("tininess", tininess, "after")) if v is not default]
        if given:
            raise TypeError(f"quantize with block format {fmt!r} does not "
                            f"take {', '.join(given)}: blocks saturate, "
                            "keep subnormals and compute their own scales; "
                            "it takes quantize_blocks' arguments ("
                            f"{', '.join(_BLOCK_ARGS)}, rounding, seed, "
                            "random_bits) and out")
        check_backend(backend)
        res = blocks.quantize(x, fmt, rounding=rounding, seed=seed,
                              index=index, random_bits=random_bits,
                              **block_args)
        return _deliver(res, check_out(out, res.shape, res.dtype, (x,)))
    if block_args:
        raise TypeError(f"{', '.join(block_args)}: arguments of block "
                        f"formats (such as 'mxfp4'), not of "
                        f"{getattr(get_format(fmt), 'name', None) or fmt!r}")
    fmt = get_format(fmt)
    assert isinstance(fmt, Format)      # block formats returned above
    check_backend(backend)
    if val.check_bool(flags, "flags"):
        # flags: encode's, then the exact values in x's dtype
        if random_bits is not None or index is not None:
            raise ValueError("quantize(flags=True) does not take "
                             "random_bits or chunks of a larger array")
        x = as_array(x)
        a, in_type = as_input(x)
        out_dtype = _value_dtype(x.dtype)
        out = check_out(out, a.shape, out_dtype, (x,))
        codes, fl = encode(a, fmt, rounding=rounding, saturate=saturate,
                           subnormals=subnormals, scale=scale,
                           zero_point=zero_point, seed=seed, rbits=rbits,
                           flags=True, tininess=tininess)
        return _deliver(decode(codes, fmt, dtype=out_dtype, scale=scale,
                               zero_point=zero_point), out), fl
    val.check_choice(tininess, "tininess", ("after", "before"))
    if _is_device_array(x):
        if random_bits is not None:
            raise TypeError("random_bits takes host (NumPy) inputs only, "
                            "not device arrays")
        from . import _cuda          # on first use: see encode
        return _cuda.quantize(x, fmt, rounding=rounding, saturate=saturate,
                              subnormals=subnormals, scale=scale,
                              zero_point=zero_point, seed=seed, rbits=rbits,
                              out=out)
    x = as_array(x)
    a, in_type = as_input(x)
    out_dtype = _value_dtype(x.dtype)
    out = check_out(out, a.shape, out_dtype, (x,))
    opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)
    scale = _scale_values(scale)
    if index is not None and random_bits is not None:
        raise ValueError("random_bits cannot be combined with an index map "
                         "(chunks of a larger array)")
    words = attach_random_bits(opts, random_bits, a.shape, rbits)
    s = check_scale(scale, a.shape, _compute_dtype(a.dtype))
    zp = val.check_zero_point(zero_point, fmt, a.shape)
    if in_type not in (lib.LP_F64, lib.LP_F32) or out_dtype != a.dtype \
            or isinstance(zp, np.ndarray) or isinstance(s, np.ndarray):
        # encode, then decode (one seed for both: opts drew it if None)
        codes = _encode(a, fmt, rounding=rounding, saturate=saturate,
                        subnormals=subnormals, scale=scale,
                        zero_point=zero_point, seed=int(opts.seed),
                        rbits=rbits, random_bits=random_bits,
                        backend=backend, index=index)
        return _deliver(decode(codes, fmt, dtype=out_dtype, scale=scale,
                               zero_point=zero_point, backend=backend), out)
    res = _result(out, a.shape, a.dtype)
    if opts.rounding != lib.LP_SR:
        index = None
    if a.size:
        if index is None and _use_numba(backend, fmt, opts, in_type, a.size,
                                        "quantize"):
            from . import _numba_backend     # on first use: see _encode_any
            err = _numba_backend.quantize(fmt, a, in_type, opts, s, res,
                                          random=words)
        else:
            sp = ffi.new("double *", s) if s is not None else ffi.NULL
            es = a.dtype.itemsize
            bi, bo = a.ctypes.data, res.ctypes.data
            run, starts = _map_args(index)

            def kernel(start, stop):
                return lib.lp_quantize_map(
                    fmt.struct, opts, in_type,
                    ffi.cast("void *", bi + start * es), stop - start, sp,
                    start, run, starts, ffi.cast("void *", bo + start * es))
            err = run_chunked(kernel, a.size)
        if err:
            raise_errors(err, fmt, a)
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
    if backend == "c" or n < (1 << 18) or "numba" not in sys.modules \
            or opts.random != ffi.NULL:
        return False
    from . import _numba_backend     # cheap: Numba is loaded already
    return _numba_backend.auto_prefers(fmt, opts, in_type, op)


def _is_device_array(x):
    return hasattr(x, "__cuda_array_interface__") and not isinstance(
        x, np.ndarray)


# -- sub-byte packing --------------------------------------------------------

def _nbits(fmt):
    return fmt.bits if isinstance(fmt, IntFormat) else fmt.nbits


def pack(codes: ArrayLike, fmt: FormatLike) -> NDArray[np.uint8]:
    """Dense little-endian bit layout of sub-byte codes (flattened in C
    order): two fp4/int4 per byte, four fp6 in three bytes, the first code
    in the lowest bits.  The last byte is zero-padded.

    Parameters
    ----------
    codes
        Codes of fmt, one per byte (as `encode` returns them).
    fmt
        A format of fewer than 8 bits.

    Returns
    -------
    ndarray of uint8
        ceil(n * bits / 8) bytes for n codes.

    Raises
    ------
    ValueError
        A format of 8 bits or more, or codes outside the format.

    Examples
    --------
    >>> import lowprec as lp
    >>> codes = lp.encode([1.0, -2.0, 6.0], "fp4")
    >>> codes
    array([ 2, 12,  7], dtype=uint8)
    >>> lp.pack(codes, "fp4")                 # 0xC2, 0x07
    array([194,   7], dtype=uint8)
    """
    fmt = get_format(fmt)
    nb = _nbits(fmt)
    if nb >= 8:
        raise ValueError(f"{fmt.name or fmt!r} has {nb}-bit codes: pack is "
                         "for formats of fewer than 8 bits")
    return blocks.pack_bits(as_codes(codes, fmt).view(np.uint8), nb)


def unpack(packed: ArrayLike, fmt: FormatLike, n: IntLike) -> CodeArray:
    """Inverse of pack: the first n codes (1-D, fmt.code_dtype).

    Parameters
    ----------
    packed
        uint8 bytes in the layout of `pack`.
    fmt
        A format of fewer than 8 bits.
    n
        How many codes to unpack (>= 0).

    Returns
    -------
    ndarray of fmt.code_dtype
        The n codes, one per byte (signed integer formats sign-extended).

    Raises
    ------
    TypeError
        packed not uint8, or n not an integer.
    ValueError
        A format of 8 bits or more, n < 0, or too few bytes for n codes.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> lp.unpack(np.array([194, 7], np.uint8), "fp4", 3)
    array([ 2, 12,  7], dtype=uint8)
    """
    fmt = get_format(fmt)
    nb = _nbits(fmt)
    if nb >= 8:
        raise ValueError(f"{fmt.name or fmt!r} has {nb}-bit codes: unpack "
                         "is for formats of fewer than 8 bits")
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise TypeError(f"packed must be uint8, got {p.dtype}")
    n = val.check_count(n, "n")
    need = (n * nb + 7) // 8
    if p.size < need:
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
