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

import ml_dtypes
import numpy as np

from . import _validate as val
from . import blocks
from ._clib import ffi, lib
from ._options import (BFLOAT16, ROUNDING, ROUNDING_NAMES, as_float,
                       check_rounding, make_opts, mode_name, raise_errors)
from ._threads import num_threads, pool, run_chunked
from ._validate import check_out, check_scale
from .formats import Format, FloatFormat, IntFormat, get_format

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


def check_backend(backend) -> str:
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


def _encode_any(backend, fmt, a, in_type, opts, scale, codes, label_fmt):
    """encode's kernel (Numba or C, see _use_numba) into codes; raises
    for the error flags, naming label_fmt."""
    if not a.size:
        return
    if _use_numba(backend, fmt, opts, in_type, a.size):
        # Imported on first use so that `import lowprec` does not load
        # Numba (start-up time); _numba_backend does not import this module.
        from . import _numba_backend
        err = _numba_backend.encode(fmt, a, in_type, opts, scale, codes)
    else:
        err = _encode_c(fmt, a, in_type, opts, scale, codes)
    if err:
        raise_errors(err, label_fmt, a)


# -- public API ------------------------------------------------------------

def encode(x, fmt, *, rounding="nearest_even", saturate=False,
           subnormals=True, scale=None, zero_point=None, seed=None,
           rbits=None, out=None, backend="auto", flags=False,
           tininess="after"):
    """Rounds x (optionally divided by scale) once to fmt; returns codes.

    See API.md section 2 for the full contract: rounding modes, overflow
    rules, NaN and infinity handling, errors.  flags=True returns (codes,
    flags), flags the uint8 IEEE exception flags of each element's rounding
    (lp.FLAG_*, tininess "after" or "before" rounding; docs/arith.md); NaN
    into a format without NaN then gives code 0 with FLAG_INVALID instead
    of raising."""
    fmt = get_format(fmt)
    backend = check_backend(backend)
    if val.check_bool(flags, "flags"):
        return _encode_flags(x, fmt, rounding, saturate, subnormals, scale,
                             zero_point, seed, rbits, out, tininess)
    val.check_choice(tininess, "tininess", ("after", "before"))
    if _is_device_array(x):
        # Imported on first use: it loads numba.cuda (start-up time);
        # _cuda does not import this module.
        from . import _cuda
        return _cuda.encode(x, fmt, rounding=rounding, saturate=saturate,
                            subnormals=subnormals, scale=scale,
                            zero_point=zero_point, seed=seed, rbits=rbits,
                            out=out)
    a, in_type = as_input(x)
    opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)
    out = check_out(out, a.shape, fmt.code_dtype, (x,))
    s = check_scale(_scale_values(scale), a.shape, _compute_dtype(a.dtype))
    zp = val.check_zero_point(zero_point, fmt, a.shape)
    if isinstance(s, np.ndarray):
        # Per-element scales: divide in the input's precision, then round.
        a = _native(np.divide(a.astype(s.dtype, copy=False), s))
        in_type = _IN_TYPES[a.dtype]
        s = None
    if isinstance(zp, np.ndarray):
        return _deliver(_encode_zero_point_array(a, in_type, fmt, opts, s,
                                                 zp, backend), out)
    codes = _result(out, a.shape, fmt.code_dtype)
    _encode_any(backend, fmt, a, in_type, opts, s, codes, fmt)
    return _deliver(codes, out)


def _encode_flags(x, fmt, rounding, saturate, subnormals, scale,
                  zero_point, seed, rbits, out, tininess):
    """encode(..., flags=True): lp_encode_flags (the core element by
    element) into codes and flags."""
    if _is_device_array(x):
        raise TypeError("encode(flags=True) takes host arrays, not device "
                        "arrays")
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


_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


def _scale_values(scale):
    """An ml_dtypes float8_e8m0fnu scale array (MX block scales) as its
    float64 values (exact: powers of two; 0xFF is NaN and is refused by
    check_scale); any other scale as it is."""
    if isinstance(scale, np.ndarray) and scale.dtype == _E8M0:
        return scale.astype(np.float64)
    return scale


def _compute_dtype(dt):
    """Precision of the division x / scale for inputs of dtype dt."""
    return np.float64 if dt == np.float64 or dt.kind in "iu" \
        else np.float32


_WIDE = IntFormat(16)


def _encode_zero_point_array(a, in_type, fmt, opts, s, zp, backend):
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
        _encode_any(backend, _WIDE, a, in_type, o, s, codes, fmt)
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
    c = np.asarray(codes)
    label = fmt.name or repr(fmt)
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


def decode(codes, fmt, *, dtype=np.float32, scale=None, zero_point=None,
           out=None, backend="auto"):
    """Values of codes in dtype (float32, float64, float16 or bfloat16):
    each exact value (times scale) rounded once to dtype."""
    fmt = get_format(fmt)
    check_backend(backend)
    if _is_device_array(codes):
        from . import _cuda          # on first use: see encode
        return _cuda.decode(codes, fmt, dtype=dtype, scale=scale,
                            zero_point=zero_point, out=out)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32, float64, float16 or "
                        f"bfloat16, got {dtype!r}") from None
    if dtype not in _OUT_DTYPES:
        raise TypeError(f"decode produces float32, float64, float16 or "
                        f"bfloat16, not {dtype}")
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


def quantize(x, fmt, *, rounding="nearest_even", saturate=False,
             subnormals=True, scale=None, zero_point=None, seed=None,
             rbits=None, out=None, backend="auto", flags=False,
             tininess="after", **block_args):
    """Fake quantization: decode(encode(x)) in x's dtype, in one pass for
    float32 and float64 inputs.

    With a block format (a recipe name such as "mxfp4" or a BlockFormat):
    dequantize(quantize_blocks(x, fmt, ...)) with quantize_blocks' keyword
    arguments (block, axis, scale_format, scale_rule, tensor_amax, rounding,
    seed), which override the recipe (API.md section 8)."""
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
                            f"{', '.join(_BLOCK_ARGS)}, rounding, seed) "
                            "and out")
        check_backend(backend)
        res = blocks.quantize(x, fmt, rounding=rounding, seed=seed,
                              **block_args)
        return _deliver(res, check_out(out, res.shape, res.dtype, (x,)))
    if block_args:
        raise TypeError(f"{', '.join(block_args)}: arguments of block "
                        f"formats (such as 'mxfp4'), not of "
                        f"{getattr(get_format(fmt), 'name', None) or fmt!r}")
    fmt = get_format(fmt)
    check_backend(backend)
    if val.check_bool(flags, "flags"):
        # flags: encode's, then the exact values in x's dtype
        a, in_type = as_input(x)
        out_dtype = a.dtype if in_type in (lib.LP_F64, lib.LP_F32,
                                           lib.LP_F16, lib.LP_BF16) \
            else np.dtype(np.float64)
        out = check_out(out, a.shape, out_dtype, (x,))
        codes, fl = encode(a, fmt, rounding=rounding, saturate=saturate,
                           subnormals=subnormals, scale=scale,
                           zero_point=zero_point, seed=seed, rbits=rbits,
                           flags=True, tininess=tininess)
        return _deliver(decode(codes, fmt, dtype=out_dtype, scale=scale,
                               zero_point=zero_point), out), fl
    val.check_choice(tininess, "tininess", ("after", "before"))
    if _is_device_array(x):
        from . import _cuda          # on first use: see encode
        return _cuda.quantize(x, fmt, rounding=rounding, saturate=saturate,
                              subnormals=subnormals, scale=scale,
                              zero_point=zero_point, seed=seed, rbits=rbits,
                              out=out)
    a, in_type = as_input(x)
    out_dtype = a.dtype if in_type in (lib.LP_F64, lib.LP_F32, lib.LP_F16,
                                       lib.LP_BF16) else np.dtype(np.float64)
    out = check_out(out, a.shape, out_dtype, (x,))
    opts = make_opts(fmt, rounding, saturate, subnormals, seed, rbits,
                     zero_point)
    s = check_scale(scale, a.shape, _compute_dtype(a.dtype))
    zp = val.check_zero_point(zero_point, fmt, a.shape)
    if in_type not in (lib.LP_F64, lib.LP_F32) or isinstance(
            zp, np.ndarray) or isinstance(s, np.ndarray):
        # encode, then decode (one seed for both: opts drew it if None)
        codes = encode(a, fmt, rounding=rounding, saturate=saturate,
                       subnormals=subnormals, scale=scale,
                       zero_point=zero_point, seed=int(opts.seed),
                       rbits=rbits, backend=backend)
        return _deliver(decode(codes, fmt, dtype=out_dtype, scale=scale,
                               zero_point=zero_point, backend=backend), out)
    res = _result(out, a.shape, a.dtype)
    if a.size:
        if _use_numba(backend, fmt, opts, in_type, a.size, "quantize"):
            from . import _numba_backend     # on first use: see _encode_any
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
    if backend == "c" or n < (1 << 18) or "numba" not in sys.modules:
        return False
    from . import _numba_backend     # cheap: Numba is loaded already
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
    return blocks.pack_bits(as_codes(codes, fmt).view(np.uint8), nb)


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
