"""Operations on codes, each rounded once: add, sub, mul, div, fma, sqrt,
convert, with IEEE 754 exception flags (csrc/arith.c).

Each result is the exact result of the operation on the operands' values
(in their formats, by default the result's) rounded once to the result
format with the rules of lp.encode.  Operands broadcast as NumPy arrays do.
Binary operations on formats of at most 8 bits (not stochastic) read a
256 x 256 table of results and flags built once per (operation, formats,
options) by the same exact kernel.  docs/arith.md has the rules.
"""
from __future__ import annotations

import functools

import numpy as np

from . import _validate as val
from ._clib import ffi, lib
from ._options import attach_random_bits, make_opts
from ._threads import run_chunked
from .convert import as_codes, check_backend
from .formats import FloatFormat, IntFormat, get_format

__all__ = ["add", "sub", "mul", "div", "fma", "sqrt", "convert",
           "FLAG_INEXACT", "FLAG_UNDERFLOW", "FLAG_OVERFLOW", "FLAG_INFINITE",
           "FLAG_INVALID", "OPS"]

FLAG_INEXACT = 1
FLAG_UNDERFLOW = 2
FLAG_OVERFLOW = 4
FLAG_INFINITE = 8
FLAG_INVALID = 16

OPS = {"add": lib.LP_OP_ADD, "sub": lib.LP_OP_SUB, "mul": lib.LP_OP_MUL,
       "div": lib.LP_OP_DIV, "fma": lib.LP_OP_FMA, "sqrt": lib.LP_OP_SQRT,
       "convert": lib.LP_OP_CONVERT}

TININESS = ("after", "before")


def _label(fmt):
    return fmt.name or repr(fmt)


def _float_format(spec, name, allow_int=False):
    """spec as a Format; a float one unless allow_int."""
    if spec is None:
        raise TypeError(f"{name} must be a format, got None")
    fmt = get_format(spec)
    if isinstance(fmt, IntFormat) and not allow_int:
        raise TypeError(f"{name} must be a float format, got integer format "
                        f"{_label(fmt)}")
    return fmt


def _opts(fmt, rounding, saturate, subnormals, tininess, seed):
    o = make_opts(fmt, rounding, saturate, subnormals, seed, None, None)
    o.tininess_before = val.check_choice(tininess, "tininess",
                                         TININESS) == "before"
    return o


def _raise(err, op, fmt):
    label = _label(fmt)
    if err & lib.LP_ERR_NAN:
        raise ValueError(f"{label} has no NaN encoding: lp.{op} has NaN "
                         "results (pass flags=True to get code 0 with "
                         "FLAG_INVALID instead)")
    if err & lib.LP_ERR_NEGATIVE:
        raise ValueError(f"{label} is unsigned: lp.{op} has negative results "
                         "that do not round to 0 (pass flags=True to get "
                         "code 0 with FLAG_INVALID instead)")
    if err & lib.LP_ERR_ZERO:
        raise ValueError(f"{label} has neither zero nor NaN: lp.{op} has "
                         "zero results")


@functools.lru_cache(maxsize=64)
def _table(op, fmt, fa, fb, mode, saturate, subnormals, tininess_before):
    """The 256 x 256 results and flags of a binary operation on 8-bit
    formats (lp_arith_table), read-only."""
    o = ffi.new("lp_opts *")
    lib.lp_opts_default(o)
    o.rounding = mode
    o.saturate = saturate
    o.keep_subnormals = subnormals
    o.tininess_before = tininess_before
    codes = np.empty(65536, np.uint8)
    flags = np.empty(65536, np.uint8)
    r = lib.lp_arith_table(op, fmt.struct, o, fa.struct, fb.struct,
                           ffi.cast("uint8_t *", codes.ctypes.data),
                           ffi.cast("uint8_t *", flags.ctypes.data))
    assert r == 0
    codes.flags.writeable = False
    flags.flags.writeable = False
    return codes, flags


def _uses_table(op, fmt, formats, o):
    return (len(formats) == 2 and op not in ("fma", "sqrt", "convert")
            and o.rounding != lib.LP_SR and isinstance(fmt, FloatFormat)
            and fmt.nbits <= 8 and all(f.nbits <= 8 for f in formats))


def _run(op, fmt, operands, formats, o, want_flags, random_bits=None,
         backend="auto"):
    """Broadcasts the operand code arrays, runs the kernel; returns codes
    (and flags).  random_bits: the caller's random words for stochastic
    rounding (broadcast to the result; attach_random_bits).  backend:
    "numba" runs lowprec/_numba_arith.py, "c" and "auto" csrc/arith.c
    (faster: its float32 paths and 8-bit tables)."""
    backend = check_backend(backend)
    arrays = [as_codes(x, f) for x, f in zip(operands, formats)]
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = " and ".join(str(np.shape(a)) for a in arrays)
        raise ValueError(f"lp.{op}: operands of shapes {shapes} do not "
                         "broadcast") from None
    arrays = [np.ascontiguousarray(a) if a.ndim else np.array(a)
              for a in arrays]
    shape = arrays[0].shape
    n = arrays[0].size
    words = attach_random_bits(o, random_bits, shape, None)
    table = _uses_table(op, fmt, formats, o)
    if backend == "numba":
        from . import _numba_arith      # on first use (Numba start-up)
        out, flags, err = _numba_arith.run(OPS[op], fmt, arrays, formats, o,
                                           want_flags, words, table)
        if err and not want_flags:
            _raise(err, op, fmt)
        return (out, flags) if want_flags else out
    out = np.empty(shape, fmt.code_dtype)
    flags = np.zeros(shape, np.uint8)
    if n:
        if table:
            tc, tf = _table(OPS[op], fmt, formats[0], formats[1],
                            int(o.rounding), int(o.saturate),
                            int(o.keep_subnormals), int(o.tininess_before))
            pa, pb = arrays[0].ctypes.data, arrays[1].ctypes.data
            po, pf = out.ctypes.data, flags.ctypes.data
            ptc = ffi.cast("uint8_t *", tc.ctypes.data)
            ptf = ffi.cast("uint8_t *", tf.ctypes.data)

            def kernel(start, stop):
                return lib.lp_arith_lookup(
                    ptc, ptf, ffi.cast("uint8_t *", pa + start),
                    ffi.cast("uint8_t *", pb + start), stop - start,
                    ffi.cast("uint8_t *", po + start),
                    ffi.cast("uint8_t *", pf + start) if want_flags
                    else ffi.NULL)
        else:
            fs = list(formats) + [formats[0]] * (3 - len(formats))
            ptrs = [a.ctypes.data for a in arrays]
            ptrs += [ptrs[0]] * (3 - len(ptrs))
            sizes = [a.dtype.itemsize for a in arrays]
            sizes += [sizes[0]] * (3 - len(sizes))
            po, pf, osz = out.ctypes.data, flags.ctypes.data, \
                out.dtype.itemsize

            def kernel(start, stop):
                return lib.lp_arith(
                    OPS[op], fmt.struct, o, fs[0].struct,
                    ffi.cast("void *", ptrs[0] + start * sizes[0]),
                    fs[1].struct,
                    ffi.cast("void *", ptrs[1] + start * sizes[1]),
                    fs[2].struct,
                    ffi.cast("void *", ptrs[2] + start * sizes[2]),
                    stop - start, start,
                    ffi.cast("void *", po + start * osz),
                    ffi.cast("uint8_t *", pf + start) if want_flags
                    else ffi.NULL)
        err = run_chunked(kernel, n)
        if err and not want_flags:
            _raise(err, op, fmt)
    del words                   # the kernels read them through o
    if want_flags:
        return out, flags
    return out


def _binary(op, a, b, fmt, rounding, saturate, subnormals, flags, tininess,
            a_format, b_format, seed, random_bits=None, backend="auto"):
    fmt = _float_format(fmt, "fmt")
    fa = fmt if a_format is None else _float_format(a_format, "a_format")
    fb = fmt if b_format is None else _float_format(b_format, "b_format")
    want = val.check_bool(flags, "flags")
    o = _opts(fmt, rounding, saturate, subnormals, tininess, seed)
    return _run(op, fmt, (a, b), (fa, fb), o, want, random_bits, backend)


_DOC = """{summary}

    Parameters
    ----------
    {operands}
    fmt : the result format (a float Format, name or dtype).
    rounding, saturate, subnormals, seed : as lp.encode (API.md section 2);
        stochastic rounding keys on (seed, flat element index).
    random_bits : stochastic rounding only: the caller's random integers
        (unsigned, broadcastable to the result, R = the dtype's width) in
        place of the generator, as lp.encode's random_bits.
    flags : bool, False.  True returns (codes, flags), flags a uint8 array
        of the result's shape: FLAG_INEXACT 1, FLAG_UNDERFLOW 2,
        FLAG_OVERFLOW 4, FLAG_INFINITE 8, FLAG_INVALID 16 (SoftFloat's).
    tininess : "after" (default) or "before" rounding, for FLAG_UNDERFLOW.
    backend : "auto" (default) or "c": the C kernels (csrc/arith.c);
        "numba": the Numba kernels (lowprec/_numba_arith.py), the same
        bits and flags.
    {formats}

    Returns
    -------
    codes of fmt (fmt.code_dtype) of the broadcast shape, and flags.

    Raises
    ------
    TypeError for an integer format or a non-bool flags; ValueError for
    codes out of the format's range, shapes that do not broadcast, a bad
    rounding or tininess name, and (without flags=True) NaN results in a
    format without NaN or negative results in an unsigned one.

    Examples
    --------
    >>> import lowprec as lp
    {example}
    """


def add(a, b, fmt, *, rounding="nearest_even", saturate=False,
        subnormals=True, flags=False, tininess="after", a_format=None,
        b_format=None, seed=None, random_bits=None, backend="auto"):
    return _binary("add", a, b, fmt, rounding, saturate, subnormals, flags,
                   tininess, a_format, b_format, seed, random_bits,
                   backend)


def sub(a, b, fmt, *, rounding="nearest_even", saturate=False,
        subnormals=True, flags=False, tininess="after", a_format=None,
        b_format=None, seed=None, random_bits=None, backend="auto"):
    return _binary("sub", a, b, fmt, rounding, saturate, subnormals, flags,
                   tininess, a_format, b_format, seed, random_bits,
                   backend)


def mul(a, b, fmt, *, rounding="nearest_even", saturate=False,
        subnormals=True, flags=False, tininess="after", a_format=None,
        b_format=None, seed=None, random_bits=None, backend="auto"):
    return _binary("mul", a, b, fmt, rounding, saturate, subnormals, flags,
                   tininess, a_format, b_format, seed, random_bits,
                   backend)


def div(a, b, fmt, *, rounding="nearest_even", saturate=False,
        subnormals=True, flags=False, tininess="after", a_format=None,
        b_format=None, seed=None, random_bits=None, backend="auto"):
    return _binary("div", a, b, fmt, rounding, saturate, subnormals, flags,
                   tininess, a_format, b_format, seed, random_bits,
                   backend)


def fma(a, b, c, fmt, *, rounding="nearest_even", saturate=False,
        subnormals=True, flags=False, tininess="after", a_format=None,
        b_format=None, c_format=None, seed=None, random_bits=None,
        backend="auto"):
    fmt = _float_format(fmt, "fmt")
    fs = [fmt if s is None else _float_format(s, name) for s, name in
          ((a_format, "a_format"), (b_format, "b_format"),
           (c_format, "c_format"))]
    want = val.check_bool(flags, "flags")
    o = _opts(fmt, rounding, saturate, subnormals, tininess, seed)
    return _run("fma", fmt, (a, b, c), fs, o, want, random_bits, backend)


def sqrt(a, fmt, *, rounding="nearest_even", saturate=False,
         subnormals=True, flags=False, tininess="after", a_format=None,
         seed=None, random_bits=None, backend="auto"):
    fmt = _float_format(fmt, "fmt")
    fa = fmt if a_format is None else _float_format(a_format, "a_format")
    want = val.check_bool(flags, "flags")
    o = _opts(fmt, rounding, saturate, subnormals, tininess, seed)
    return _run("sqrt", fmt, (a,), (fa,), o, want, random_bits, backend)


def convert(codes, src_fmt, dst_fmt, *, rounding="nearest_even",
            saturate=False, subnormals=True, flags=False, tininess="after",
            seed=None, random_bits=None, backend="auto"):
    src = _float_format(src_fmt, "src_fmt", allow_int=True)
    dst = _float_format(dst_fmt, "dst_fmt", allow_int=True)
    want = val.check_bool(flags, "flags")
    o = _opts(dst, rounding, saturate, subnormals, tininess, seed)
    return _run("convert", dst, (codes,), (src,), o, want, random_bits,
                backend)


_BIN_OPERANDS = ("a, b : code arrays (integers, or ml_dtypes arrays of the "
                 "format), broadcast together.")
_BIN_FORMATS = ("a_format, b_format : formats of a and b (default fmt): "
                "mixed formats are rounded once.")
add.__doc__ = _DOC.format(
    summary="a + b, the exact sum rounded once to fmt.  An exact zero sum "
            "is +0 (-0 for toward_negative); inf - inf is NaN (INVALID).",
    operands=_BIN_OPERANDS, formats=_BIN_FORMATS,
    example=">>> int(lp.add(0x38, 0x38, 'e4m3'))   # 1 + 1 = 2\n    64")
sub.__doc__ = _DOC.format(
    summary="a - b, the exact difference rounded once to fmt.",
    operands=_BIN_OPERANDS, formats=_BIN_FORMATS,
    example=">>> int(lp.sub(0x38, 0x38, 'e4m3', rounding='rd'))   # -0\n"
            "    128")
mul.__doc__ = _DOC.format(
    summary="a * b, the exact product rounded once to fmt; 0 * inf is NaN "
            "(INVALID).",
    operands=_BIN_OPERANDS, formats=_BIN_FORMATS,
    example=">>> lp.mul(0x7E, 0x40, 'e4m3', flags=True)   # 448 * 2\n"
            "    (array(127, dtype=uint8), array(5, dtype=uint8))")
div.__doc__ = _DOC.format(
    summary="a / b, the exact quotient rounded once to fmt; x / 0 is inf "
            "with FLAG_INFINITE, 0/0 and inf/inf NaN (INVALID).",
    operands=_BIN_OPERANDS, formats=_BIN_FORMATS,
    example=">>> int(lp.div(0x3C00, 0x4200, 'float16'))   # 1 / 3\n"
            "    13653")
fma.__doc__ = _DOC.format(
    summary="a * b + c rounded once to fmt; fma(0, inf, c) is NaN with "
            "INVALID even for a quiet NaN c.",
    operands="a, b, c : code arrays, broadcast together.",
    formats="a_format, b_format, c_format : the operands' formats "
            "(default fmt).",
    example=">>> int(lp.fma(0x3C01, 0x3C01, 0xBC00, 'float16'))\n    6144")
sqrt.__doc__ = _DOC.format(
    summary="The square root of a rounded once to fmt; sqrt(-0) = -0, the "
            "root of a negative is NaN (INVALID).",
    operands="a : code array.",
    formats="a_format : the operand's format (default fmt).",
    example=">>> int(lp.sqrt(0x4000, 'float16'))   # sqrt(2)\n    15784")
convert.__doc__ = _DOC.format(
    summary="codes of src_fmt rounded once to dst_fmt (either may be an "
            "integer format: integer results saturate, INVALID when out of "
            "range).",
    operands="codes : code array of src_fmt.",
    formats="src_fmt, dst_fmt : the source and result formats.",
    example=">>> int(lp.convert(0x3C01, 'float16', 'e4m3'))\n    56").replace(
        "fmt : the result format (a float Format, name or dtype).\n    ", "")
