"""Hypothesis strategies and assertions for testing quantizers.

``codes(fmt)``, ``values(fmt)`` and ``boundary_floats(fmt)`` draw where
rounding breaks (midpoints, overflow thresholds, subnormal edges, each with
an offset of a few input ulps) rather than uniform floats;
``assert_codes_equal`` compares code arrays treating every NaN code of a
format as equal and prints mismatches with ``describe``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_bool, code_range
from .convert import decode
from .formats import FloatFormat, IntFormat, get_format

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from ._typing import (ArrayLike, BoolLike, DTypeLike, FormatLike,
                          IntLike, NDArray)

__all__ = ["codes", "values", "boundary_floats", "assert_codes_equal",
           "is_nan_code"]


def _st():
    try:
        from hypothesis import strategies
    except ImportError as exc:  # pragma: no cover
        raise ImportError("lowprec.testing strategies need hypothesis "
                          "(pip install hypothesis)") from exc
    return strategies


def codes(fmt: FormatLike, *, finite: BoolLike = False) -> SearchStrategy[int]:
    """Codes of fmt as Python ints (every code, or only finite ones).

    Parameters
    ----------
    fmt
        A format (Format, name or dtype).
    finite
        Only codes of finite values.

    Returns
    -------
    hypothesis strategy of int
        Float formats: bit patterns 0 .. 2^nbits - 1; integer formats:
        the values min .. max.

    Raises
    ------
    ImportError
        Hypothesis is not installed.
    TypeError
        fmt is not a format.
    ValueError
        fmt is not a format.

    Examples
    --------
    >>> from hypothesis import given
    >>> import lowprec as lp, lowprec.testing as lpt
    >>> @given(lpt.codes("e4m3", finite=True))
    ... def test_round_trip(c):
    ...     assert lp.encode([lp.get_format("e4m3").value(c)], "e4m3")[0] == c
    >>> test_round_trip()
    """
    st = _st()
    fmt = get_format(fmt)
    finite = check_bool(finite, "finite")
    if isinstance(fmt, IntFormat):
        return st.integers(fmt.min, fmt.max)
    s = st.integers(0, (1 << fmt.nbits) - 1)
    if finite:
        s = s.filter(lambda c: math.isfinite(fmt.value(c)))
    return s


def values(fmt: FormatLike) -> SearchStrategy[float]:
    """Finite values of fmt as Python floats (exact).

    Parameters
    ----------
    fmt
        A format (Format, name or dtype).

    Returns
    -------
    hypothesis strategy of float
        The values of `codes` (fmt, finite=True).

    Raises
    ------
    ImportError
        Hypothesis is not installed.

    Examples
    --------
    >>> from hypothesis import given
    >>> import lowprec as lp, lowprec.testing as lpt
    >>> @given(lpt.values("bf16"))
    ... def test_exact(v):
    ...     assert lp.quantize([v], "bf16")[0] == v
    >>> test_exact()
    """
    fmt = get_format(fmt)
    return codes(fmt, finite=True).map(fmt.value)


def _next_up(fmt, v):
    """The grid point above |v| >= 0 with the exponent unbounded above."""
    if isinstance(fmt, IntFormat):
        return v + 1.0
    if v < fmt.min_normal:
        return v + fmt.min_subnormal if fmt.subnormals else fmt.min_normal
    e = math.frexp(v)[1] - 1
    return v + math.ldexp(1.0, e - fmt.mbits)


def boundary_floats(fmt: FormatLike, dtype: DTypeLike = np.float64, *,
                    allow_nan: BoolLike = False,
                    allow_infinity: BoolLike = True,
                    signed: BoolLike = True) -> SearchStrategy[Any]:
    """Inputs in dtype at and around the rounding boundaries of fmt.

    Draws a finite value v of fmt (including max, so the overflow threshold
    is covered, and the smallest values, for the subnormal edges) and the
    grid point above it, a position between them (v itself, the midpoint,
    a quarter / three quarters, or a random fraction), rounds it to dtype
    and moves it by -3..3 ulps of dtype.  A sign is drawn too.

    Parameters
    ----------
    fmt
        The format whose boundaries to draw around.
    dtype
        The inputs' dtype (float64, float32, float16, bfloat16).
    allow_nan
        Also draw NaN.
    allow_infinity
        Also draw ±inf (and keep overflowed values).
    signed
        Draw negative values too.

    Returns
    -------
    hypothesis strategy of NumPy scalars of dtype
        The inputs.

    Raises
    ------
    ImportError
        Hypothesis is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given
    >>> import lowprec as lp, lowprec.testing as lpt
    >>> @given(lpt.boundary_floats("e4m3", np.float32, allow_infinity=False))
    ... def test_bracketed(x):
    ...     lo = lp.quantize([x], "e4m3", rounding="rd", saturate=True)[0]
    ...     hi = lp.quantize([x], "e4m3", rounding="ru", saturate=True)[0]
    ...     assert lo <= x <= hi or abs(x) > 448
    >>> test_bracketed()
    """
    st = _st()
    fmt = get_format(fmt)
    dtype = np.dtype(dtype)
    allow_nan = check_bool(allow_nan, "allow_nan")
    allow_infinity = check_bool(allow_infinity, "allow_infinity")
    signed = check_bool(signed, "signed")

    def build(args):
        v, where, offset, neg = args
        v = abs(v)
        up = _next_up(fmt, v)
        x = v + (up - v) * where
        with np.errstate(over="ignore"):
            y = np.asarray(x, np.float64).astype(dtype)
        for _ in range(abs(offset)):
            with np.errstate(over="ignore"):
                y = np.nextafter(y, np.asarray(np.inf if offset > 0
                                               else -np.inf, dtype))
        if neg and signed:
            y = -y
        return y[()]

    fraction = st.one_of(st.sampled_from([0.0, 0.5, 0.25, 0.75]),
                         st.floats(0.0, 1.0))
    edge_values = st.sampled_from(_edges(fmt))
    base = st.tuples(st.one_of(values(fmt), edge_values), fraction,
                     st.integers(-3, 3), st.booleans()).map(build)
    extras = [base]
    if allow_infinity:
        extras.append(st.sampled_from([np.asarray(np.inf, dtype)[()]] + (
            [np.asarray(-np.inf, dtype)[()]] if signed else [])))
    if allow_nan:
        extras.append(st.just(np.asarray(np.nan, dtype)[()]))
    out = st.one_of(*extras) if len(extras) > 1 else base
    if not allow_infinity:
        out = out.filter(lambda y: np.isfinite(y))
    return out


def _edges(fmt):
    if isinstance(fmt, IntFormat):
        return [0.0, float(fmt.max), float(abs(fmt.min)), 0.5]
    e = [0.0, fmt.min_subnormal, fmt.min_normal, fmt.max]
    if fmt.subnormals:
        e.append(fmt.min_normal - fmt.min_subnormal)
    return e


def is_nan_code(codes: ArrayLike, fmt: FormatLike) -> NDArray[np.bool_]:
    """Boolean mask of the codes that are NaN in fmt (False for integers
    that are not codes of fmt at all).

    Parameters
    ----------
    codes
        Integer codes (any shape).
    fmt
        Their format.

    Raises
    ------
    TypeError
        fmt is not a format.
    ValueError
        An unknown format name.

    Examples
    --------
    >>> import numpy as np, lowprec.testing as lpt
    >>> lpt.is_nan_code(np.array([0x7F, 0xFF, 0x7E], np.uint8), "e4m3")
    array([ True,  True, False])
    """
    fmt = get_format(fmt)
    c = np.asarray(codes)
    if isinstance(fmt, IntFormat) or c.dtype.kind not in "iu":
        return np.zeros(c.shape, bool)
    lo, hi = code_range(fmt)
    inside = (c >= lo) & (c <= hi)
    nan = np.zeros(c.shape, bool)
    nan[inside] = np.isnan(decode(c[inside].astype(fmt.code_dtype), fmt,
                                  dtype=np.float64))
    return nan


def assert_codes_equal(actual: ArrayLike, desired: ArrayLike,
                       fmt: FormatLike, *, max_report: IntLike = 10) -> None:
    """Asserts that two code arrays of fmt are equal, every NaN code of the
    format counting as equal to every other; reports mismatches with
    fmt.describe.  Integers that are not codes of fmt (outside its range)
    are compared as integers: equal ones pass, different ones are reported
    as mismatches (never an error of their own).

    Parameters
    ----------
    actual
        Codes computed.
    desired
        Codes expected (the same shape).
    fmt
        Their format.
    max_report
        How many mismatches the message shows.

    Raises
    ------
    AssertionError
        Shapes differ or codes differ (other than NaN for NaN); the
        message shows each mismatch with `Format.describe`.

    Examples
    --------
    >>> import numpy as np, lowprec.testing as lpt
    >>> lpt.assert_codes_equal(np.array([0x7F, 1], np.uint8),
    ...                        np.array([0xFF, 1], np.uint8), "e4m3")
    """
    fmt = get_format(fmt)
    a = np.asarray(actual)
    d = np.asarray(desired)
    if a.shape != d.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {d.shape}")
    for name, arr in (("actual", a), ("desired", d)):
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer array of codes, "
                            f"got dtype {arr.dtype}")
    bad = _differ(a, d)
    if bad.any() and isinstance(fmt, FloatFormat) and fmt.nan_code is not None:
        both_nan = is_nan_code(a, fmt) & is_nan_code(d, fmt)
        bad &= ~both_nan
    if not bad.any():
        return
    idx = np.argwhere(bad)
    lines = [f"{len(idx)} of {a.size} codes of {fmt.name or fmt!r} differ:"]
    for i in idx[:max_report]:
        i = tuple(i)
        lines.append(f"  at {i}: actual  {_describe(fmt, a[i])}")
        lines.append(f"  {' ' * (len(str(i)) + 3)}desired "
                     f"{_describe(fmt, d[i])}")
    raise AssertionError("\n".join(lines))


def _differ(a, d):
    """a != d as integers, whatever the two dtypes (uint64 and int64 too:
    compared through Python ints where a cast could wrap)."""
    try:
        common = np.promote_types(a.dtype, d.dtype)
    except TypeError:
        common = np.dtype(object)
    if common.kind == "f":                 # uint64 with a signed dtype
        common = np.dtype(object)
    return np.asarray(a.astype(common) != d.astype(common))


def _describe(fmt, code):
    lo, hi = code_range(fmt)
    code = int(code)
    if not lo <= code <= hi:
        return (f"{code} (not a code of {fmt.name or fmt!r}: range "
                f"[{lo}, {hi}])")
    return fmt.describe(code)
