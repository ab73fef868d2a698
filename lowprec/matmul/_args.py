"""Argument checks of every matmul entry point, in one place.

Operands (code arrays with their formats, or ml_dtypes / float16 arrays),
np.matmul shape rules, scale values and their layouts, the accumulate
argument, the integer operands of int_matmul and requantize, and the
internal steering keywords (isa, plan, subblocks).  Each check raises an
error that names the argument and the offending dtype, shape or value:
TypeError for the wrong kind of value, ValueError out of range, through
the shared checks of lowprec._validate where one fits (scales, integers,
booleans, seeds); wrong operand dtypes raise :class:`_DTypeError` (a
TypeError and a ValueError).

:class:`_Job` is what the checks of one scaled product yield: the >= 2-D
operands, their formats, the broadcast scales, block size and output.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from .. import _validate as v
from .._clib import lib
from .._options import check_rounding
from .._interop import as_array
from ..convert import as_codes, decode
from ..formats import IntFormat, get_format
from .accumulator import Accumulator

ACCUMULATE_MODES = ("exact", "fp32", "fast")

# Plans of the exact rule (_exact.py) and the sub-block counts the sliced
# plan can use; the kernels' instruction sets (lowprec.h, enum lp_isa).
EXACT_PLANS = ("int", "f32", "f64", "sliced", "dot")
SUBBLOCKS = (1, 2, 4, 8, 16, 32)
ISAS = (lib.LP_ISA_AUTO, lib.LP_ISA_GENERIC, lib.LP_ISA_AVX2,
        lib.LP_ISA_AVX512)

_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


class _DTypeError(TypeError, ValueError):
    """A wrong dtype: a TypeError, and a ValueError for callers that catch
    the argument errors of this module together."""


# -- operands and shapes ---------------------------------------------------

def _format(spec, name):
    """get_format(spec), its errors naming the argument."""
    try:
        return get_format(spec)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def _operand(x, fmt, name):
    """(codes, format) of a matmul operand: a code array with its format, or
    an ml_dtypes / float16 / float32 array whose dtype names the format
    (NumPy arrays, or PyTorch / JAX CPU tensors read by as_array)."""
    arr = as_array(x, name)
    if fmt is not None:
        fmt = _format(fmt, f"{name}_format")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    dt = arr.dtype
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension for a "
                         f"matrix product, got a scalar")
    if dt.kind in "iu":
        if fmt is None:
            raise ValueError(f"{name} holds codes of dtype {dt}: give "
                             f"{name}_format= (or pass an ml_dtypes array)")
        return as_codes(arr, fmt), fmt
    try:
        dfmt = get_format(dt)
    except (TypeError, ValueError):
        raise _DTypeError(
            f"{name} has dtype {dt}: pass integer codes with {name}_format=, "
            "or an ml_dtypes / float16 / bfloat16 array (encode float32/64 "
            "values first with lp.encode)") from None
    if fmt is not None and fmt != dfmt:
        raise ValueError(f"{name} has dtype {dt.name} but {name}_format is "
                         f"{fmt.name or fmt!r}")
    if isinstance(dfmt, IntFormat):
        return np.ascontiguousarray(arr.astype(dfmt.code_dtype)), dfmt
    return np.ascontiguousarray(arr).view(dfmt.code_dtype), dfmt


def _matmul_shapes(a, b, an="a", bn="b"):
    """np.matmul shape rules: (a as >= 2-D, b as >= 2-D, batch shape, which
    of the result's last two axes to drop for 1-D operands)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: {an} has shape {a.shape} and {bn} has "
                         f"shape {b.shape}; the inner dimensions "
                         f"{a2.shape[-1]} and {b2.shape[-2]} differ")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {an} has shape {a.shape} and {bn} has "
                         f"shape {b.shape}; the batch dimensions "
                         f"{a2.shape[:-2]} and {b2.shape[:-2]} do not "
                         "broadcast") from None
    drop = []
    if a.ndim == 1:
        drop.append(-2)
    if b.ndim == 1:
        drop.append(-1)
    return a2, b2, tuple(batch), drop


def _squeeze(res, drop):
    return np.squeeze(res, axis=tuple(drop)) if drop else res


# -- scales ----------------------------------------------------------------

def _scale_values(s, name):
    """(float32 array, is_e8m0) of a scale argument, checked finite > 0 by
    lowprec._validate.check_scale (the conversion functions' check and
    messages): real numbers, or e8m0 codes as an ml_dtypes.float8_e8m0fnu
    array.  Scales that overflow float32 raise ValueError, no warning."""
    if s is None:
        raise TypeError(f"{name} must be a positive real number or array "
                        "(1.0 for no scale), got None")
    arr = as_array(s, name)
    e8m0 = arr.dtype == _E8M0
    if e8m0:
        vals = decode(arr.view(np.uint8), "float8_e8m0fnu", dtype=np.float32)
    elif arr.dtype.type.__module__ == "ml_dtypes":
        vals = arr.astype(np.float32)          # every ml_dtypes value fits
    else:
        vals = arr
    checked = v.check_scale(vals, arr.shape, np.float32, name=name)
    return np.asarray(checked, np.float32).reshape(arr.shape), e8m0


def _check_block(block):
    """block as a tuple (bk,) or (bk, bn) of positive Python ints: one
    integer or a tuple / list of one or two integers."""
    if v.is_integer(block):
        block = (block,)
    if not isinstance(block, (tuple, list)):
        raise TypeError(f"block must be an integer or a tuple (bk,) or "
                        f"(bk, bn) of integers, got "
                        f"{v.describe_value(block)}")
    if len(block) not in (1, 2):
        raise ValueError(f"block must be (bk,) or (bk, bn), got {block!r}")
    names = ("block bk", "block bn")
    return tuple(v.check_int(b, names[i], 1, None)
                 for i, b in enumerate(block))


def _scale_layout(a_scale, b_scale, block, batch, M, K, N):
    """Checks block and scales; returns (bk, nb, As, Bs) with As float32 of
    shape batch + (M, nb) and Bs batch + (nb, N) (broadcast views)."""
    if block is not None:
        block = _check_block(block)
    sa, ea = _scale_values(a_scale, "a_scale")
    sb, eb = _scale_values(b_scale, "b_scale")
    if block is None:
        ka = sa.shape[-1] if sa.ndim >= 2 else 1
        kb = sb.shape[-2] if sb.ndim >= 2 else 1
        if max(ka, kb) > 1:
            if ea or eb:
                block = (32,)          # MX: e8m0 scales of 32-blocks
            else:
                raise ValueError(
                    f"a_scale of shape {sa.shape} and b_scale of shape "
                    f"{sb.shape} vary along K: give block=(bk,) for "
                    "blockwise scales")
    bn = 1
    if block is None:
        bk = max(K, 1)
    else:
        bk = block[0]
        if K % bk:
            raise ValueError(f"block size {bk} does not divide K = {K}")
        if len(block) == 2:
            bn = block[1]
            if N % bn:
                raise ValueError(f"block size bn = {bn} does not divide "
                                 f"N = {N}")
    nb = K // bk if K else 0
    nbs = max(nb, 1)
    want_a = tuple(batch) + (M, nbs)
    want_b = tuple(batch) + (nbs, N // bn)
    As = _broadcast_scale(sa, want_a, "a_scale", "(M, K/bk)" if block
                          else "(M, 1)")
    Bs = _broadcast_scale(sb, want_b, "b_scale",
                          "(K/bk, N/bn)" if bn > 1 else
                          "(K/bk, N)" if block else "(1, N)")
    if bn > 1:
        Bs = np.repeat(Bs, bn, axis=-1)
    return bk, nb, As, Bs


def _broadcast_scale(s, want, name, layout):
    if s.ndim not in (0,) and s.size != 1 and s.ndim < 2:
        raise ValueError(f"{name} of shape {s.shape} is ambiguous: use a "
                         f"scalar or an array of shape {layout} = "
                         f"{want[-2:]}")
    try:
        if np.broadcast_shapes(s.shape, want) != want:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {s.shape} does not fit the "
                         f"layout {layout} = {want[-2:]} (with batch "
                         f"{want[:-2]})") from None
    return np.broadcast_to(s, want)


# -- accumulate and steering ------------------------------------------------

def _check_accumulate(accumulate):
    from .fused import FusedAccumulator
    if isinstance(accumulate, (Accumulator, FusedAccumulator)):
        return accumulate
    if not isinstance(accumulate, str):
        raise TypeError(f"accumulate must be one of "
                        f"{', '.join(ACCUMULATE_MODES)}, an lp.Accumulator or"
                        " an lp.FusedAccumulator,"
                        f" got {v.describe_value(accumulate)}")
    if accumulate in ACCUMULATE_MODES:
        return accumulate
    raise ValueError(f"accumulate must be one of {', '.join(ACCUMULATE_MODES)},"
                     f" an lp.Accumulator or an lp.FusedAccumulator, got "
                     f"{accumulate!r}")


def _check_output(out_format, out_scale, out_rounding, saturate, shape):
    """The output format (or None) after checking the output stage's
    arguments, whether or not they are used; out_scale needs out_format."""
    check_rounding(out_rounding, "out_rounding")
    v.check_saturate(saturate)
    if out_format is None:
        if out_scale is not None:
            raise ValueError(f"out_scale {v.describe_value(out_scale)} needs "
                             "out_format= (the float32 result is not "
                             "scaled)")
        return None
    fmt = _format(out_format, "out_format")
    v.check_scale(out_scale, shape, np.float32, name="out_scale",
                  what="the result")
    return fmt


def _check_isa(isa):
    """The kernels' instruction set: lib.LP_ISA_AUTO (-1) or a level that
    the kernels clamp to what the CPU has (lp_matmul_isa)."""
    if isinstance(isa, bool) or not isinstance(isa, (int, np.integer)) \
            or int(isa) not in ISAS:
        raise ValueError(f"isa must be one of {ISAS} (auto, generic, AVX2, "
                         f"AVX-512), got {isa!r}")
    return int(isa)


def _check_plan(plan, subblocks):
    """The exact rule's plan (None: the cheapest) and the sliced plan's
    sub-block count (None: the cheapest)."""
    if plan is not None and plan not in EXACT_PLANS:
        raise ValueError(f"plan must be None or one of {EXACT_PLANS}, got "
                         f"{plan!r}")
    if subblocks is not None and (
            isinstance(subblocks, bool)
            or not isinstance(subblocks, (int, np.integer))
            or int(subblocks) not in SUBBLOCKS):
        raise ValueError(f"subblocks must be None or one of {SUBBLOCKS}, "
                         f"got {subblocks!r}")
    return plan, None if subblocks is None else int(subblocks)


# -- one checked product ---------------------------------------------------

class _Job:
    """One product: operands (>= 2-D codes), scales, output, and the
    instruction set of the kernels that compute it."""

    def __init__(self, a, b, fa, fb, As, Bs, bk, nb, batch, out, isa):
        self.a, self.b, self.fa, self.fb = a, b, fa, fb
        self.As, self.Bs = As, Bs
        self.bk, self.nb, self.batch, self.out = bk, nb, batch, out
        self.isa = isa
        self.M, self.K = a.shape[-2:]
        self.N = b.shape[-1]

    def items(self, A, B):
        """(batch index, flat batch number, A slice, B slice, as, bs) with
        A, B arrays (values or codes) of the operands' unbroadcast shapes."""
        Ab = np.broadcast_to(A, self.batch + A.shape[-2:])
        Bb = np.broadcast_to(B, self.batch + B.shape[-2:])
        for flat, idx in enumerate(np.ndindex(*self.batch)):
            yield (idx, flat, np.ascontiguousarray(Ab[idx]),
                   np.ascontiguousarray(Bb[idx]),
                   np.ascontiguousarray(self.As[idx], dtype=np.float32),
                   np.ascontiguousarray(self.Bs[idx], dtype=np.float32))


# -- integer operands ------------------------------------------------------

_INT_OPERAND_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def _int_operand(x, name):
    """An int_matmul operand as a contiguous int8 or uint8 array (NumPy
    arrays, or PyTorch / JAX CPU tensors read by as_array)."""
    arr = as_array(x, name)
    dt = arr.dtype
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension for a "
                         "matrix product, got a scalar")
    if dt in _INT_OPERAND_DTYPES:
        return np.ascontiguousarray(arr)
    if dt.type.__module__ == "ml_dtypes" and dt.name in (
            "int4", "uint4", "int2", "uint2"):
        target = np.int8 if dt.name.startswith("int") else np.uint8
        return np.ascontiguousarray(arr.astype(target))
    raise _DTypeError(f"int_matmul takes int8 or uint8 arrays (int4 codes "
                      f"as int8, or ml_dtypes int4/uint4/int2/uint2), not "
                      f"{name} of dtype {dt}")


def _int_array(x, name, lo=_INT32_MIN, hi=_INT32_MAX, operand=False):
    """A requantize argument as int64, checked integer and in [lo, hi]:
    a Python / NumPy integer or an array of integers (not bool, float or
    str: TypeError; the operand acc raises the TypeError-and-ValueError
    of wrong dtypes).  The range is checked on the values as given, before
    any conversion (a uint64 2^63 does not wrap to -2^63)."""
    if v.is_integer(x):
        return np.int64(v.check_int(x, name, lo, hi))
    arr = np.asarray(x)
    if arr.dtype == object and arr.size and all(
            v.is_integer(e) for e in arr.flat):
        vals = [int(e) for e in arr.flat]       # Python ints, any size
        vmin, vmax = min(vals), max(vals)
    elif arr.dtype.kind in "iu":
        vmin, vmax = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    else:
        err = _DTypeError if operand else TypeError
        raise err(f"{name} must be integers (an integer or an integer "
                  f"array), got {v.describe_value(x)}")
    if vmin < lo or vmax > hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in "
                         f"[{vmin}, {vmax}]")
    return arr.astype(np.int64)


def _requantize_shapes(x, m, s, zp):
    """requantize's per-tensor / per-channel arguments must broadcast
    against acc without growing it."""
    try:
        shape = np.broadcast_shapes(x.shape, m.shape, s.shape, zp.shape)
    except ValueError:
        raise ValueError(f"requantize: multiplier of shape {m.shape}, shift "
                         f"of shape {s.shape} and zero_point of shape "
                         f"{zp.shape} do not broadcast against acc of shape "
                         f"{x.shape}") from None
    if shape != x.shape:
        raise ValueError(f"requantize: multiplier {m.shape}, shift "
                         f"{s.shape}, zero_point {zp.shape} would broadcast "
                         f"acc of shape {x.shape} to {shape}")


def _requantize_format(out_format):
    """(lo, hi, dtype) of requantize's output: an integer format, or None
    for int32."""
    if out_format is None:
        return _INT32_MIN, _INT32_MAX, np.dtype(np.int32)
    fmt = _format(out_format, "out_format")
    if not isinstance(fmt, IntFormat):
        raise ValueError(f"requantize's out_format must be an integer "
                         f"format (or None for int32), not "
                         f"{fmt.name or fmt!r}")
    return fmt.min, fmt.max, fmt.code_dtype
