"""Integer GEMM and the gemmlowp / TFLite fixed-point output stage.

``int_matmul`` is the exact int8 / uint8 (int4, int2) product into int32,
wrapping modulo 2^32 (kernel lp_gemm_i32); ``requantize`` maps int32
accumulators to int8 / uint8 / ... codes with gemmlowp's
SaturatingRoundingDoublingHighMul and RoundingDivideByPOT.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .._clib import lib
from ._args import (_INT32_MAX, _INT32_MIN, _check_isa, _int_array,
                    _int_operand, _matmul_shapes, _requantize_format,
                    _requantize_shapes, _squeeze)
from ._kernels import _ptr, _split_rows

if TYPE_CHECKING:
    from .._typing import ArrayLike, FormatLike, NDArray

__all__ = ["int_matmul", "requantize"]


def int_matmul(a: ArrayLike, b: ArrayLike) -> NDArray[np.int32]:
    """Exact integer matrix product as int32, wrapping modulo 2^32.

    a (..., M, K) and b (..., K, N): int8 or uint8 arrays (int4 / int2
    codes as lowprec stores them, in int8; ml_dtypes int4/uint4/int2/uint2
    arrays too).  Batch dimensions broadcast as in np.matmul.  Every sum is
    exact in int32 while K * max|a| * max|b| < 2^31 (K < 2^17 for int8 x
    int8); longer sums wrap around modulo 2^32 like int32 arithmetic on
    two's-complement hardware (and np.matmul on int32).

    Parameters
    ----------
    a
        Integer operand (..., M, K).
    b
        Integer operand (..., K, N).

    Returns
    -------
    ndarray of int32
        The product (..., M, N).

    Raises
    ------
    TypeError
        Operands that are not int8 / uint8 (or ml_dtypes integer) arrays.
    ValueError
        Shapes that do not match (the message names both).

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> i = np.array([[1, -2], [3, 4]], np.int8)
    >>> lp.int_matmul(i, i)
    array([[ -5, -10],
           [ 15,  10]], dtype=int32)
    """
    return _int_matmul(a, b)


def _int_matmul(a, b, *, isa=lib.LP_ISA_AUTO):
    """int_matmul with the kernels' instruction set as an argument
    (lib.LP_ISA_AUTO, or a lower level to test each kernel)."""
    isa = _check_isa(isa)
    A = _int_operand(a, "a")
    B = _int_operand(b, "b")
    a2, b2, batch, drop = _matmul_shapes(A, B)
    M, K = a2.shape[-2:]
    N = b2.shape[-1]
    out = np.zeros(batch + (M, N), np.int32)
    ua, ub = int(A.dtype == np.uint8), int(B.dtype == np.uint8)
    if out.size and K:
        Ab = np.broadcast_to(a2, batch + (M, K))
        Bb = np.broadcast_to(b2, batch + (K, N))
        for idx in np.ndindex(*batch):
            Ai = np.ascontiguousarray(Ab[idx])
            Bi = np.ascontiguousarray(Bb[idx])
            C = np.empty((M, N), np.int32)
            pa, pb = _ptr(Ai, "void *"), _ptr(Bi, "void *")
            pc = _ptr(C, "int32_t *")

            def kernel(r0, r1, pa=pa, pb=pb, pc=pc):
                return lib.lp_gemm_i32(pa, ua, pb, ub, M, N, K, pc, r0, r1,
                                       isa)
            _split_rows(kernel, M, M * N * K)
            out[idx] = C
    return _squeeze(out, drop)


def _wrap32(v):
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int64 arrays of int32
    values: round(a * b / 2^31) with ties away from zero, saturating the
    one overflow (a = b = -2^31) to 2^31 - 1."""
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    t = ab + nudge
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))   # C division truncates
    return np.where((a == b) & (a == _INT32_MIN), _INT32_MAX, q)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent (0 <= exponent <= 31)
    rounded to nearest, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, *,
               zero_point: ArrayLike = 0,
               out_format: Optional[FormatLike] = "int8"
               ) -> NDArray[np.integer[Any]]:
    """gemmlowp / TFLite fixed-point requantization of int32 accumulators.

    out = clamp(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
                    acc, multiplier), shift) + zero_point, out_format)

    multiplier: int32 fixed-point multiplier (Q0.31, usually in
    [2^30, 2^31)); shift: right shift in [0, 31] (gemmlowp's result_shift).
    A negative shift is TFLite's left shift: acc * 2^-shift (wrapped to
    int32, as TFLite's int32 multiply) before the high multiply, no right
    shift.  multiplier, shift and zero_point are scalars (per tensor) or
    arrays broadcasting against acc (per channel: shape (N,) for the last
    axis).  The zero point is added exactly and the sum saturates to
    out_format (an integer format; None keeps int32, saturating).
    Returns codes of out_format (int8 / uint8 / int16 ...) or int32.

    acc and multiplier must be integers in the int32 range, shift in
    [-31, 31] and zero_point in [-2^40, 2^40] (ValueError naming the
    range, checked on the values as given: a uint64 2^63 does not wrap).
    Integers are Python / NumPy integers or integer arrays: a float, bool
    or str (or an array of them) raises TypeError.

    Parameters
    ----------
    acc
        int32 accumulators (integers in the int32 range).
    multiplier
        Q0.31 fixed-point multiplier(s).
    shift
        Right shift(s) in [-31, 31] (negative: left shift first).
    zero_point
        Added after the shift, before saturation.
    out_format
        An integer format (name or IntFormat), or None for int32.

    Returns
    -------
    ndarray
        Codes of out_format, acc's broadcast shape.

    Raises
    ------
    TypeError
        Non-integer arguments.
    ValueError
        Values out of range, shapes that do not broadcast, a format that
        is not an integer format.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> acc = np.array([1000, -1000, 100000], np.int32)
    >>> lp.requantize(acc, 1 << 30, 2, zero_point=3)   # acc / 8 + 3
    array([ 127, -122,  127], dtype=int8)
    >>> lp.requantize(acc, 1 << 30, 2, zero_point=3, out_format="uint8")
    array([128,   0, 255], dtype=uint8)
    """
    x = _int_array(acc, "acc", operand=True)
    m = _int_array(multiplier, "multiplier")
    s = _int_array(shift, "shift", -31, 31)
    zp = _int_array(zero_point, "zero_point", -(1 << 40), 1 << 40)
    x, m, s, zp = (np.asarray(t) for t in (x, m, s, zp))
    lo, hi, dtype = _requantize_format(out_format)
    _requantize_shapes(x, m, s, zp)
    left = np.maximum(-s, 0)
    right = np.maximum(s, 0)
    x = _wrap32(x << left)
    y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m),
                               right)
    return np.clip(y + zp, lo, hi).astype(dtype)
