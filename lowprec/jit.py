"""lowprec.jit: the rounding core as Numba scalar functions for your kernels.

::

    import numba
    import lowprec as lp
    import lowprec.jit

    enc = lp.jit.encoder("e4m3", rounding="nearest_even", saturate=True)
    q = lp.jit.quantizer("bfloat16", rounding="toward_zero")

    @numba.njit
    def mine(x, out):
        for i in range(x.size):
            out[i] = enc(x[i])        # inlined: no Python, no call

Each factory checks its arguments (raising ``ValueError`` / ``TypeError``
at build time, as ``lp.encode`` would) and returns a ``numba.njit``
function in which the format and the policies are compile-time constants
and whose body LLVM inlines into the caller.  The same object can be
called from ``numba.cuda.jit`` kernels (Numba compiles it as a device
function), from ``@numba.njit`` code, and from Python (slowly: one
dispatch per call).  Bits are those of ``lp.encode`` / ``lp.quantize`` /
``lp.decode`` with the same arguments.

Scalar inputs: float32, float64 or integers (which round exactly, as float64
in ``lp.encode``).  Scaling divides in the input's own precision (float32
inputs by the float32 scale).

Stochastic rounding (``rounding="stochastic"``): the function takes
``(x, seed, index)`` and draws the same bits as ``lp.encode(..., seed=seed)``
gives the element of flat index ``index``.

Called from Python, the functions check their arguments first: a decoder
raises ``TypeError`` for a code that is not an integer and ``ValueError``
for one outside the format (as ``lp.decode``); a stochastic function
checks ``seed`` (an integer in [0, 2^64)) and ``index`` (>= 0).  Compiled
callers skip these checks (see docs/numba.md for what out-of-range codes
give there).

Errors inside compiled code cannot raise.  Where ``lp.encode`` raises
(a NaN into a format without NaN: FP4, FP6, integers; a negative value
that does not round to 0 into an unsigned float format such as E8M0; a zero
into a format with neither zero nor NaN), the scalar encoder returns code 0
(quantizer: the value of code 0).  Build with ``with_flags=True`` to get
``(code, err)`` instead, err the OR of ``ERR_NAN`` (1), ``ERR_NEGATIVE``
(2) and ``ERR_ZERO`` (4), 0 when the result is valid.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Optional

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from . import _numba_arith as _na
from . import _numba_core as core
from . import _validate as val
from ._numba_backend import k32
from ._options import check_rounding, check_saturate
from .formats import get_format

if TYPE_CHECKING:
    from ._typing import (BoolLike, DTypeLike, FormatLike, IntLike,
                          RealLike, Rounding)

__all__ = ["encoder", "quantizer", "decoder", "ERR_NAN", "ERR_NEGATIVE",
           "ERR_ZERO"]

ERR_NAN = core.ERR_NAN
ERR_NEGATIVE = core.ERR_NEGATIVE
ERR_ZERO = core.ERR_ZERO

# The returned functions: compiled on first use, inlined by LLVM into the
# caller (alwaysinline), nopython.  Not cached on disk: each is a closure
# over its constants, compiled into the caller, which may itself be
# cache=True.
_scalar = numba.njit(forceinline=True)


class _Spec:
    """Checked arguments of a factory, as the constants of the core."""

    def __init__(self, fmt, rounding, saturate, subnormals, scale,
                 zero_point, rbits):
        self.fmt = fmt = get_format(fmt)
        self.label = fmt.name or repr(fmt)
        self.mode = check_rounding(rounding)
        saturate = check_saturate(saturate)
        subnormals = val.check_bool(subnormals, "subnormals")
        rbits = val.check_rbits(rbits)
        self.zp = zp = val.check_zero_point(zero_point, fmt) or 0
        self.has_scale, self.s32, self.s64 = val.check_scalar_scale(scale)
        self.F = core.format_params(fmt)
        self.O = core.opts_params(self.mode, saturate, subnormals, rbits, zp)
        self.use32, self.K = k32(self.F, self.O)
        self.stochastic = self.mode == core.SR

    def name(self, what):
        base = self.fmt.name or "format"
        return f"{what}_{base}".replace("-", "_")


def _finish(fn, spec, what, doc, check=None):
    fn.__name__ = fn.__qualname__ = spec.name(what)
    fn.__doc__ = doc
    disp = _scalar(fn)
    if check is not None:
        disp.__class__ = _Checked
        disp._lp_check = check
    return disp


class _Checked(CPUDispatcher):
    """A Numba dispatcher whose calls from Python check their arguments
    first (raising TypeError / ValueError as lp.decode / lp.encode would).
    Compiled callers (njit, numba.cuda) call the compiled function itself:
    no check there (docs/numba.md says what it does instead)."""

    def __call__(self, *args, **kws):
        self._lp_check(*args, **kws)
        return super().__call__(*args, **kws)


def _check_code(fmt):
    def check(code):
        val.check_code(code, fmt)
    return check


def _check_seed_index(x, seed, index):
    val.check_seed(seed)
    val.check_int(index, "index", 0, (1 << 63) - 1)


# -- the core with the constants as plain types ------------------------------
#
# The factories' constants (F, O, flags) are frozen into each returned
# function, where Numba types them as literals; passed on as such, the
# core would compile anew for every format.  These wrappers hand the core
# plain int64 tuples and bools (LLVM still sees constants), so the core
# compiled once (and cached on disk) serves every encoder.

@_scalar
def _encode_scalar(F, O, K, use32, x, has_scale, s32, s64, key, index):
    return core.encode_scalar(core.int64_tuple(F), core.int64_tuple(O), K,
                              bool(use32), x, bool(has_scale), s32, s64,
                              key, np.int64(index))


@_scalar
def _decode_value(F, code, zp, has_scale, s):
    return core.decode_value(core.int64_tuple(F), code, np.int64(zp),
                             bool(has_scale), np.float64(s))


# -- helpers typed by the input --------------------------------------------

def _decode_scale(x, s32, s64):
    """The scale quantize multiplies by: s32 (widened) for float32 inputs,
    s64 otherwise (decode.c takes the scale in the output's precision)."""
    raise NotImplementedError


@numba.extending.overload(_decode_scale, jit_options={"forceinline": True})
def _decode_scale_overload(x, s32, s64):
    if x == numba.types.float32:
        return lambda x, s32, s64: np.float64(s32)
    return lambda x, s32, s64: s64


def _like(x, v):
    """v (float64) rounded once to x's type: float32 for float32 inputs,
    else float64."""
    raise NotImplementedError


@numba.extending.overload(_like, jit_options={"forceinline": True})
def _like_overload(x, v):
    if x == numba.types.float32:
        return lambda x, v: np.float32(v)
    return lambda x, v: np.float64(v)


# -- factories -------------------------------------------------------------

def encoder(fmt: FormatLike, rounding: Rounding = "nearest_even",
            saturate: BoolLike = False, subnormals: BoolLike = True,
            scale: Optional[RealLike] = None, *,
            zero_point: Optional[IntLike] = None,
            rbits: Optional[IntLike] = None,
            with_flags: BoolLike = False) -> Callable[..., Any]:
    """A Numba scalar function x -> code of fmt (fmt.code_dtype), the bits
    of ``lp.encode(x, fmt, ...)``.  Stochastic rounding: (x, seed, index).
    with_flags: returns (code, err) (see the module docstring).

    Parameters
    ----------
    fmt
        As `lowprec.encode` (compile-time constants of the function).
    rounding
        As `lowprec.encode` (compile-time constants of the function).
    saturate
        As `lowprec.encode` (compile-time constants of the function).
    subnormals
        As `lowprec.encode` (compile-time constants of the function).
    zero_point
        As `lowprec.encode` (compile-time constants of the function).
    rbits
        As `lowprec.encode` (compile-time constants of the function).
    scale
        A scalar scale (finite, > 0): the function rounds x / scale.
    with_flags
        Return (code, err), err the ERR_* bits of what lowprec.encode
        would raise for (compiled code cannot raise; the code is then 0).

    Returns
    -------
    numba dispatcher
        ``enc(x)`` (``enc(x, seed, index)`` for stochastic rounding),
        callable from ``@numba.njit`` code, ``numba.cuda`` kernels and
        Python.

    Raises
    ------
    TypeError
        At build time, for the arguments `lowprec.encode` would refuse.
    ValueError
        At build time, for the arguments `lowprec.encode` would refuse.

    Examples
    --------
    >>> import lowprec as lp, lowprec.jit
    >>> enc = lp.jit.encoder("e4m3", saturate=True)
    >>> enc(1.0), enc(500.0)
    (56, 126)
    """
    sp = _Spec(fmt, rounding, saturate, subnormals, scale, zero_point, rbits)
    F, O, K, use32 = sp.F, sp.O, sp.K, sp.use32
    hs, s32, s64 = sp.has_scale, sp.s32, sp.s64
    ctype = sp.fmt.code_dtype.type
    scalar = _encode_scalar
    mix = core.lp_mix64
    if sp.stochastic and with_flags:
        def enc(x, seed, index):
            code, err = scalar(F, O, K, use32, x, hs, s32, s64,
                               mix(np.uint64(seed)), index)
            return ctype(code), err
    elif sp.stochastic:
        def enc(x, seed, index):
            code, err = scalar(F, O, K, use32, x, hs, s32, s64,
                               mix(np.uint64(seed)), index)
            return ctype(code)
    elif with_flags:
        def enc(x):  # type: ignore[misc]  # arity by rounding mode
            code, err = scalar(F, O, K, use32, x, hs, s32, s64,
                               np.uint64(0), 0)
            return ctype(code), err
    else:
        def enc(x):  # type: ignore[misc]  # arity by rounding mode
            code, err = scalar(F, O, K, use32, x, hs, s32, s64,
                               np.uint64(0), 0)
            return ctype(code)
    args = "x, seed, index" if sp.stochastic else "x"
    return _finish(enc, sp, "encode", f"""{sp.name('encode')}({args}):
    the code of x in {sp.label} ({sp.fmt.code_dtype.name}), rounding
    {rounding!r}{', with error flags' if with_flags else ''}
    (lowprec.jit.encoder).""",
                   _check_seed_index if sp.stochastic else None)


def quantizer(fmt: FormatLike, rounding: Rounding = "nearest_even",
              saturate: BoolLike = False, subnormals: BoolLike = True,
              scale: Optional[RealLike] = None, *,
              zero_point: Optional[IntLike] = None,
              rbits: Optional[IntLike] = None,
              with_flags: BoolLike = False) -> Callable[..., Any]:
    """A Numba scalar function x -> decode(encode(x)) in x's type (float32
    for float32 inputs, else float64), the bits of ``lp.quantize``.
    Stochastic rounding: (x, seed, index).  with_flags: (value, err).

    Parameters
    ----------
    fmt
        As `encoder`.
    rounding
        As `encoder`.
    saturate
        As `encoder`.
    subnormals
        As `encoder`.
    scale
        As `encoder`.
    zero_point
        As `encoder`.
    rbits
        As `encoder`.
    with_flags
        As `encoder`.

    Returns
    -------
    numba dispatcher
        ``q(x)`` (``q(x, seed, index)`` for stochastic rounding).

    Raises
    ------
    TypeError
        At build time, as `encoder`.
    ValueError
        At build time, as `encoder`.

    Examples
    --------
    >>> import lowprec as lp, lowprec.jit
    >>> q = lp.jit.quantizer("bfloat16", rounding="toward_zero")
    >>> q(0.1)
    0.099609375
    """
    sp = _Spec(fmt, rounding, saturate, subnormals, scale, zero_point, rbits)
    F, O, K, use32 = sp.F, sp.O, sp.K, sp.use32
    hs, s32, s64, zp = sp.has_scale, sp.s32, sp.s64, sp.zp
    scalar = _encode_scalar
    value = _decode_value
    mix = core.lp_mix64
    if sp.stochastic:
        def q(x, seed, index):
            code, err = scalar(F, O, K, use32, x, hs, s32, s64,
                               mix(np.uint64(seed)), index)
            return _like(x, value(F, code, zp, hs,
                                  _decode_scale(x, s32, s64))), err
    else:
        def q(x):  # type: ignore[misc]  # arity by rounding mode
            code, err = scalar(F, O, K, use32, x, hs, s32, s64,
                               np.uint64(0), 0)
            return _like(x, value(F, code, zp, hs,
                                  _decode_scale(x, s32, s64))), err
    inner = _scalar(q)
    if sp.stochastic and with_flags:
        def quant(x, seed, index):
            return inner(x, seed, index)
    elif sp.stochastic:
        def quant(x, seed, index):
            return inner(x, seed, index)[0]
    elif with_flags:
        def quant(x):  # type: ignore[misc]  # arity by rounding mode
            return inner(x)
    else:
        def quant(x):  # type: ignore[misc]  # arity by rounding mode
            return inner(x)[0]
    args = "x, seed, index" if sp.stochastic else "x"
    return _finish(quant, sp, "quantize", f"""{sp.name('quantize')}({args}):
    x rounded to {sp.label} and back, in x's type, rounding {rounding!r}
    (lowprec.jit.quantizer).""",
                   _check_seed_index if sp.stochastic else None)


def decoder(fmt: FormatLike, dtype: DTypeLike = np.float32,
            scale: Optional[RealLike] = None, *,
            zero_point: Optional[IntLike] = None) -> Callable[..., Any]:
    """A Numba scalar function code -> value in dtype (float32 or float64),
    the bits of ``lp.decode(codes, fmt, dtype=dtype, scale=scale,
    zero_point=zero_point)``: the exact value (minus zero_point), times
    scale, rounded once.

    Parameters
    ----------
    fmt
        The codes' format.
    dtype
        float32 or float64.
    scale
        A scalar scale (finite, > 0).
    zero_point
        Integer formats: subtracted before scaling.

    Returns
    -------
    numba dispatcher
        ``dec(code)``; called from Python it checks the code (TypeError,
        ValueError as `lowprec.decode`).

    Raises
    ------
    TypeError
        A dtype other than float32 / float64, arguments of the wrong kind.
    ValueError
        Arguments out of range.

    Examples
    --------
    >>> import numpy as np, lowprec as lp, lowprec.jit
    >>> dec = lp.jit.decoder("e4m3", np.float64)
    >>> dec(0x7E)
    448.0
    """
    sp = _Spec(fmt, "nearest_even", False, True, scale, zero_point, None)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"lowprec.jit.decoder produces float32 or float64, "
                        f"not {dt}")
    F, hs, zp = sp.F, sp.has_scale, sp.zp
    # decode.c takes the scale in float32 for float32 output
    s = float(sp.s32) if dt == np.float32 else sp.s64
    out = dt.type
    value = _decode_value

    def dec(code):
        return out(value(F, np.int64(code), zp, hs, s))
    return _finish(dec, sp, "decode", f"""{sp.name('decode')}(code): the
    value of a {sp.label} code as {dt.name} (lowprec.jit.decoder).""",
                   _check_code(sp.fmt))


# -- operations on codes (lowprec.arith) --------------------------------------
#
# The compiled functions inline lowprec/_numba_arith.py (csrc/arith.c step
# for step, the backend="numba" of lp.add & co.), so their bits and flags
# are those of lp.add & co.; tests/test_arith_numba.py compares them.

@_scalar
def _arith_scalar(OP, F, O, FA, FB, FC, a, b, c, rnd):
    code, err, fl = _na.arith_codes(
        np.int64(OP), core.int64_tuple(F), core.int64_tuple(O),
        core.int64_tuple(FA), core.int64_tuple(FB), core.int64_tuple(FC),
        np.int64(a), np.int64(b), np.int64(c), rnd)
    return code, fl


def _check_codes(formats, stochastic, R):
    """A check of the operand codes, then of the seed and index
    (stochastic) or of the random word (below 2^R), for calls from
    Python."""
    tail = 1 if R is not None else 2 if stochastic else 0

    def check(*args):
        if len(args) != len(formats) + tail:
            return              # Numba raises its own TypeError
        for x, f in zip(args, formats):
            val.check_code(x, f)
        rest = args[len(formats):]
        if R is not None:
            val.check_int(rest[0], "random word", 0, (1 << R) - 1)
        elif stochastic:
            _check_seed_index(None, *rest)
    return check


def _arith_factory(op, fmt, operand_formats, rounding, saturate, subnormals,
                   tininess, flags, random_bits):
    from . import arith
    fmt = arith._float_format(fmt, "fmt", allow_int=op == "convert")
    names = ("a_format", "b_format", "c_format")
    fs = [fmt if f is None else arith._float_format(
        f, names[k] if op != "convert" else "src_fmt",
        allow_int=op == "convert") for k, f in enumerate(operand_formats)]
    want = val.check_bool(flags, "flags")
    o = arith._opts(fmt, rounding, saturate, subnormals, tininess, 0)
    stochastic = int(o.rounding) == core.SR
    R = None
    if random_bits is not None:
        if not stochastic:
            raise ValueError("random_bits is for rounding='stochastic' only")
        R = val.check_rbits(random_bits, "random_bits")
    F = core.format_params(fmt)
    O = core.opts_params(o.rounding, o.saturate, o.keep_subnormals,
                         R or 64, 0, o.tininess_before)
    P = [core.format_params(f) for f in fs]
    P += [P[0]] * (3 - len(P))
    FA, FB, FC = P
    OP = int(arith.OPS[op])
    ctype = fmt.code_dtype.type
    arity = len(fs)
    label = re.sub(r"\W", "_", f"{op}_{fmt.name or 'custom'}")
    # (operands..., tail) -> code, or (code, flags); tail: (seed, index),
    # the caller's random word r (lp_random_given: ~r << (64 - R)), or
    # nothing.  Written out with named parameters (numba.cuda compiles no
    # *args), the constants as the function's globals (frozen by Numba).
    args = ["a", "b", "c"][:arity]
    operands = args + ["0"] * (3 - arity)
    if R is not None:
        tail, rnd = ["r"], "(np.uint64(r) ^ ONES) << SHIFT"
    elif stochastic:
        tail = ["seed", "index"]
        rnd = "random(mix(np.uint64(seed)), np.int64(index))"
    else:
        tail, rnd = [], "Z"
    params = ", ".join(args + tail)
    result = "ctype(code), np.uint8(fl)" if want else "ctype(code)"
    src = (f"def {label}({params}):\n"
           f"    code, fl = one(OP, F, O, FA, FB, FC, "
           f"{', '.join(operands)}, {rnd})\n"
           f"    return {result}\n")
    env = dict(np=np, one=_arith_scalar, OP=OP, F=F, O=O, FA=FA, FB=FB,
               FC=FC, ctype=ctype, random=core.lp_random_keyed,
               mix=core.lp_mix64, ONES=np.uint64(0xFFFFFFFFFFFFFFFF),
               SHIFT=np.uint64(64 - (R or 64)), Z=np.uint64(0))
    exec(compile(src, f"<lowprec.jit.{op}>", "exec"), env)
    outer = env[label]
    outer.__qualname__ = label
    outer.__doc__ = (f"{label}: lp.{op} on scalar codes into "
                     f"{fmt.name or repr(fmt)}, rounding {rounding!r}"
                     f"{', returns (code, flags)' if want else ''} "
                     "(lowprec.jit).")
    disp = _scalar(outer)
    disp.__class__ = _Checked
    disp._lp_check = _check_codes(fs, stochastic, R)
    return disp


_ARITH_DOC = """A Numba scalar function: lp.{op} of codes.

    The function rounds once to fmt with the policies given, as lp.{op}
    does, with the Numba kernels of backend="numba" inlined into the
    caller.  NaN or negative results that fmt cannot hold give code 0
    (FLAG_INVALID).  It runs in @njit code and, as a device function, in
    numba.cuda kernels.  Called from Python it checks the operand codes
    (ValueError for a code outside its format) and the seed, index or
    random word.

    Parameters
    ----------
    fmt
        The result format (operand formats default to it); for convert,
        the source and target formats.
    rounding, saturate, subnormals, tininess
        As lp.{op}.
    flags
        True: the function returns (code, flags), flags the uint8
        SoftFloat bits of lp.FLAG_*.
    random_bits
        Stochastic rounding only: an integer R (1..64).  The function then
        takes the caller's random word r (below 2^R) after the operands in
        place of (seed, index): the bits lp.{op}(..., random_bits=r) gives
        with an R-bit dtype.

    Returns
    -------
    numba dispatcher
        (operand codes...) -> code, or (code, flags).  Stochastic rounding
        takes (..., seed, index): the bits lp.{op} gives the element of
        flat index index with that seed (or (..., r) with random_bits).

    Raises
    ------
    TypeError, ValueError
        As lp.{op}, for the policies, when the function is made.

    Examples
    --------
    >>> import numba, lowprec as lp
    >>> add = lp.jit.add("e4m3", rounding="toward_zero")
    >>> @numba.njit
    ... def f(a, b):
    ...     return add(a, b)
    >>> int(f(0x38, 0x38))          # 1 + 1 = 2
    64
    """


def add(fmt, rounding="nearest_even", saturate=False, subnormals=True,
        tininess="after", a_format=None, b_format=None, flags=False,
        random_bits=None):
    return _arith_factory("add", fmt, (a_format, b_format), rounding,
                          saturate, subnormals, tininess, flags, random_bits)


def sub(fmt, rounding="nearest_even", saturate=False, subnormals=True,
        tininess="after", a_format=None, b_format=None, flags=False,
        random_bits=None):
    return _arith_factory("sub", fmt, (a_format, b_format), rounding,
                          saturate, subnormals, tininess, flags, random_bits)


def mul(fmt, rounding="nearest_even", saturate=False, subnormals=True,
        tininess="after", a_format=None, b_format=None, flags=False,
        random_bits=None):
    return _arith_factory("mul", fmt, (a_format, b_format), rounding,
                          saturate, subnormals, tininess, flags, random_bits)


def div(fmt, rounding="nearest_even", saturate=False, subnormals=True,
        tininess="after", a_format=None, b_format=None, flags=False,
        random_bits=None):
    return _arith_factory("div", fmt, (a_format, b_format), rounding,
                          saturate, subnormals, tininess, flags, random_bits)


def fma(fmt, rounding="nearest_even", saturate=False, subnormals=True,
        tininess="after", a_format=None, b_format=None, c_format=None,
        flags=False, random_bits=None):
    return _arith_factory("fma", fmt, (a_format, b_format, c_format),
                          rounding, saturate, subnormals, tininess, flags,
                          random_bits)


def sqrt(fmt, rounding="nearest_even", saturate=False, subnormals=True,
         tininess="after", a_format=None, flags=False, random_bits=None):
    return _arith_factory("sqrt", fmt, (a_format,), rounding, saturate,
                          subnormals, tininess, flags, random_bits)


def convert(src_fmt, dst_fmt, rounding="nearest_even", saturate=False,
            subnormals=True, tininess="after", flags=False,
            random_bits=None):
    return _arith_factory("convert", dst_fmt, (src_fmt,), rounding,
                          saturate, subnormals, tininess, flags, random_bits)


for _f in (add, sub, mul, div, fma, sqrt, convert):
    _f.__doc__ = _ARITH_DOC.format(op=_f.__name__)
__all__ += ["add", "sub", "mul", "div", "fma", "sqrt", "convert"]
