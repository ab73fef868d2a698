"""Exact reference implementation of lowprec's formats and rounding.

Pure Python, integers and `fractions.Fraction` only: every value is
held exactly and every rounding decision is taken on exact quantities, so
this module is the yardstick the C and Numba kernels are tested against,
and a way for hardware engineers to generate test vectors.  It is written
to be read top to bottom, not to be fast (about 10 µs per element).

A *format description* is any object with these attributes (the real
``lowprec.FloatFormat`` / ``lowprec.IntFormat`` have them):

* float formats: ``kind == "float"``, ``ebits``, ``mbits``, ``bias``,
  ``infs`` (bool), ``nans`` in {"ieee", "top", "negzero", "none"},
  ``negzero`` (bool), ``subnormals`` (bool), ``signed`` (bool), ``name``;
* integer formats: ``kind == "int"``, ``bits``, ``signed``, ``narrow``,
  ``name``.

Everything else (limits, special codes) is derived here from those fields.

Public functions
----------------
``ref_decode(fmt, code)``      exact value of a code (see its docstring for
                               how -0, NaN and infinities are returned)
``ref_classify(fmt, code)``    'zero', 'subnormal', 'normal', 'inf', 'nan'
``ref_fields(fmt, code)``      (sign, exponent field, mantissa field)
``ref_values(fmt)``            all finite values, sorted, distinct
``ref_limits(fmt)``            max, min_normal, ..., special codes
``ref_encode(fmt, x, ...)``    correctly rounded code of an exact input
``ref_random(seed, index)``    the stochastic-rounding generator
``ref_encode_array`` / ``ref_decode_array``   NumPy conveniences (at the end)

Rule numbers in comments refer to the rounding rules in ``ref_encode``.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike, NDArray

    from ._typing import Rounding

__all__ = [
    "ROUNDING_MODES",
    "ref_classify",
    "ref_decode",
    "ref_decode_array",
    "ref_encode",
    "ref_encode_array",
    "ref_fields",
    "ref_limits",
    "ref_mix",
    "ref_random",
    "ref_values",
]

# Canonical rounding-mode names and their aliases.
ROUNDING_MODES = {
    "nearest_even": "nearest_even", "rne": "nearest_even",
    "nearest_away": "nearest_away", "rna": "nearest_away",
    "toward_zero": "toward_zero", "rz": "toward_zero",
    "toward_positive": "toward_positive", "ru": "toward_positive",
    "toward_negative": "toward_negative", "rd": "toward_negative",
    "to_odd": "to_odd", "ro": "to_odd",
    "stochastic": "stochastic", "sr": "stochastic",
}

_NAN = float("nan")
_INF = float("inf")
_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------
# Format geometry (derived from the primary fields only)
# ---------------------------------------------------------------------------

def _name(fmt):
    return getattr(fmt, "name", None) or repr(fmt)


def _is_int(fmt):
    return fmt.kind == "int"


def _nbits(fmt):
    """Total number of bits of a code: [sign][exponent][mantissa]."""
    if _is_int(fmt):
        return fmt.bits
    return int(fmt.signed) + fmt.ebits + fmt.mbits


def _sign_bit(fmt):
    """The sign bit of a float code (0 for unsigned formats)."""
    return (1 << (fmt.ebits + fmt.mbits)) if fmt.signed else 0


def _mag_mask(fmt):
    """All-ones magnitude code (the code without its sign bit)."""
    return (1 << (fmt.ebits + fmt.mbits)) - 1


def _top_field(fmt):
    """All-ones exponent field."""
    return (1 << fmt.ebits) - 1


def _emin(fmt):
    """Exponent of the smallest normal binade.

    With subnormals, exponent field 0 holds 0.m x 2^(1-bias), so normals start
    at field 1: emin = 1 - bias.  Without subnormals field 0 holds the normal
    binade 1.m x 2^(0-bias): emin = -bias (OCP MX E8M0: 2^-127).
    """
    return 1 - fmt.bias if fmt.subnormals else -fmt.bias


def _int_range(fmt):
    """(min, max) of an integer format; narrow drops the most negative value."""
    if fmt.signed:
        hi = (1 << (fmt.bits - 1)) - 1
        lo = -hi if fmt.narrow else -hi - 1
        return lo, hi
    return 0, (1 << fmt.bits) - 1


def _check_code(fmt, code):
    code = int(code)
    if _is_int(fmt):
        lo = -(1 << (fmt.bits - 1)) if fmt.signed else 0
        if not lo <= code < (1 << fmt.bits):
            raise ValueError(f"code {code} out of range for format {_name(fmt)}")
        return code
    if not 0 <= code < (1 << _nbits(fmt)):
        raise ValueError(f"code {code} out of range for format {_name(fmt)} "
                         f"({_nbits(fmt)} bits)")
    return code


def ref_fields(fmt: Any, code: int) -> Tuple[int, int, int]:
    """Split a float code into (sign, exponent field, mantissa field).

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).
    code
        A code of fmt (an unsigned bit pattern).

    Raises
    ------
    ValueError
        A code outside the format.

    Examples
    --------
    e4m3fn 0x7E = 0b0_1111_110:

    >>> import lowprec as lp
    >>> ref_fields(lp.get_format("e4m3"), 0x7E)
    (0, 15, 6)
    """
    code = _check_code(fmt, code)
    sign = 1 if code & _sign_bit(fmt) else 0
    mag = code & _mag_mask(fmt)
    return sign, mag >> fmt.mbits, mag & ((1 << fmt.mbits) - 1)


def _mag_is_nan(fmt, sign, mag):
    """NaN encodings, per ``nans`` family."""
    if fmt.nans == "ieee":
        # top exponent field with a non-zero mantissa (none when mbits == 0)
        return mag >> fmt.mbits == _top_field(fmt) and mag & ((1 << fmt.mbits) - 1) != 0
    if fmt.nans == "top":
        return mag == _mag_mask(fmt)                    # S.1111.111 (either sign)
    if fmt.nans == "negzero":
        return sign == 1 and mag == 0                   # the single code 100...0
    if fmt.nans == "none":
        return False
    raise ValueError(f"format {_name(fmt)}: unknown nans={fmt.nans!r}")


def _inf_mag(fmt):
    """Magnitude code of infinity, or None.

    ieee: top exponent field, zero mantissa (fp16 0x7C00); top: the largest
    non-NaN magnitude code (0x7E for 8 bits); negzero / none: the all-ones
    magnitude code (IEEE P3109: 0x7F).
    """
    if not fmt.infs:
        return None
    if fmt.nans == "ieee":
        return _top_field(fmt) << fmt.mbits
    if fmt.nans == "top":
        return _mag_mask(fmt) - 1
    return _mag_mask(fmt)


def _mag_is_finite(fmt, sign, mag):
    return not _mag_is_nan(fmt, sign, mag) and mag != _inf_mag(fmt)


def _mag_value(fmt, mag):
    """Exact value of a finite magnitude code (ignores specials)."""
    e, m = mag >> fmt.mbits, mag & ((1 << fmt.mbits) - 1)
    if fmt.subnormals and e == 0:
        # subnormal (or zero): 0.m x 2^(1-bias) = m x 2^(1-bias-mbits)
        return Fraction(m) * Fraction(2) ** (1 - fmt.bias - fmt.mbits)
    # normal: 1.m x 2^(e-bias) = (2^mbits + m) x 2^(e-bias-mbits)
    return Fraction((1 << fmt.mbits) + m) * Fraction(2) ** (e - fmt.bias - fmt.mbits)


def ref_classify(fmt: Any, code: int) -> str:
    """Class of a code: 'zero', 'subnormal', 'normal', 'inf' or 'nan'.

    Integer formats: 'zero' for 0, 'normal' otherwise.

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).
    code
        A code of fmt.

    Raises
    ------
    ValueError
        A code outside the format.

    Examples
    --------
    >>> import lowprec as lp
    >>> e4m3 = lp.get_format("e4m3")
    >>> ref_classify(e4m3, 0x7F), ref_classify(e4m3, 0x01)
    ('nan', 'subnormal')
    """
    code = _check_code(fmt, code)
    if _is_int(fmt):
        return "zero" if code == 0 else "normal"
    sign, mag = (1 if code & _sign_bit(fmt) else 0), code & _mag_mask(fmt)
    if _mag_is_nan(fmt, sign, mag):
        return "nan"
    if mag == _inf_mag(fmt):
        return "inf"
    if fmt.subnormals and mag >> fmt.mbits == 0:
        return "zero" if mag == 0 else "subnormal"
    return "normal"


def ref_decode(fmt: Any, code: int) -> Union[Fraction, float]:
    """Exact value of one code.

    Returns a `Fraction` for every finite value except
    negative zero, and Python floats for the rest:

    * ``float('nan')`` for any NaN code,
    * ``float('inf')`` / ``float('-inf')`` for the infinities,
    * ``-0.0`` (a float, so the sign is visible) for a negative-zero code.
      Positive zero is ``Fraction(0)``.  A code 100...0 of a signed format
      with ``negzero=False`` that is not NaN (not a built-in case) decodes
      as ``Fraction(0)``.

    Float codes are unsigned bit patterns ``0 <= code < 2**nbits``.
    Integer formats: the code is the integer value itself (``-3`` for int8);
    a two's-complement bit pattern (``253`` for int8) is also accepted.
    The result is ``Fraction(value)``.

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).
    code
        A code of fmt.

    Raises
    ------
    ValueError
        A code outside the format.

    Examples
    --------
    >>> import lowprec as lp
    >>> e4m3 = lp.get_format("e4m3")
    >>> ref_decode(e4m3, 0x01), ref_decode(e4m3, 0x80)
    (Fraction(1, 512), -0.0)
    """
    code = _check_code(fmt, code)
    if _is_int(fmt):
        if fmt.signed and code >= 1 << (fmt.bits - 1):
            code -= 1 << fmt.bits                       # two's complement
        return Fraction(code)
    cls = ref_classify(fmt, code)
    negative = bool(code & _sign_bit(fmt))
    if cls == "nan":
        return _NAN
    if cls == "inf":
        return -_INF if negative else _INF
    value = _mag_value(fmt, code & _mag_mask(fmt))
    if value == 0:
        return -0.0 if (negative and fmt.negzero) else Fraction(0)
    return -value if negative else value


def ref_values(fmt: Any) -> List[Fraction]:
    """All finite values of a format, sorted ascending, distinct (±0 -> one 0).

    Limited to formats of at most 16 bits (float32 would need 4e9 values).

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).

    Raises
    ------
    ValueError
        A format of more than 16 bits.

    Examples
    --------
    >>> import lowprec as lp
    >>> [str(v) for v in ref_values(lp.get_format("fp4"))[-4:]]
    ['2', '3', '4', '6']
    """
    if _is_int(fmt):
        lo, hi = _int_range(fmt)
        return [Fraction(v) for v in range(lo, hi + 1)]
    if _nbits(fmt) > 16:
        raise ValueError(f"ref_values: format {_name(fmt)} has {_nbits(fmt)} bits; "
                         "at most 16 are supported")
    vals = set()
    for code in range(1 << _nbits(fmt)):
        v = ref_decode(fmt, code)
        if isinstance(v, Fraction):
            vals.add(v)
        elif v == 0:                                     # -0.0
            vals.add(Fraction(0))
    return sorted(vals)


def _max_mag(fmt):
    """Magnitude code of the largest finite value.

    Walk down from the all-ones magnitude code past NaN and infinity codes.
    For nans="ieee" the whole top binade above mantissa 0 is NaN, so jump
    straight to the top field with mantissa 0 (finite iff not infs).
    Example: e4m3fn 0x7F is NaN -> max code 0x7E = 0b0_1111_110 = 448.
    """
    mag = _mag_mask(fmt)
    while not _mag_is_finite(fmt, 0, mag):
        if _mag_is_nan(fmt, 0, mag) and fmt.nans == "ieee":
            mag = _top_field(fmt) << fmt.mbits
        else:
            mag -= 1
    return mag


def _nan_code(fmt):
    """Canonical NaN code, or None.

    ieee: positive, top field, mantissa MSB set (fp16 0x7E00, e5m2 0x7E);
    top: the positive all-ones code (e4m3fn 0x7F); negzero: 100...0 (0x80).
    """
    if fmt.nans == "ieee":
        if fmt.mbits == 0:
            return None
        return (_top_field(fmt) << fmt.mbits) | (1 << (fmt.mbits - 1))
    if fmt.nans == "top":
        return _mag_mask(fmt)
    if fmt.nans == "negzero":
        return _sign_bit(fmt) or None
    return None


def ref_limits(fmt: Any) -> Dict[str, Any]:
    """Derived limits of a format, as a dict (exact Fractions, int codes).

    Float formats:
      max            largest finite value
      lowest         most negative finite value (-max; smallest value if unsigned)
      min_normal     smallest positive normal, 2^emin
      min_subnormal  smallest positive value (= min_normal without subnormals,
                     e.g. e8m0 2^-127; as ml_dtypes' finfo.smallest_subnormal)
      eps            gap between 1.0 and the next larger value
      max_code       code of +max
      nan_code       canonical NaN code, or None
      inf_code       code of +inf, or None
      nbits, emin, emax, has_zero
    Integer formats: max, lowest (= min), min, eps (1), max_code (= max),
    nan_code / inf_code None, nbits.

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).

    Examples
    --------
    >>> import lowprec as lp
    >>> lim = ref_limits(lp.get_format("e4m3"))
    >>> lim["max"], lim["min_subnormal"], lim["nan_code"]
    (Fraction(448, 1), Fraction(1, 512), 127)
    """
    if _is_int(fmt):
        lo, hi = _int_range(fmt)
        return {"max": Fraction(hi), "min": Fraction(lo), "lowest": Fraction(lo),
                "eps": Fraction(1), "max_code": hi, "nan_code": None,
                "inf_code": None, "nbits": fmt.bits}
    max_mag = _max_mag(fmt)
    max_value = _mag_value(fmt, max_mag)
    emin = _emin(fmt)
    min_normal = Fraction(2) ** emin
    if fmt.subnormals and fmt.mbits > 0:
        min_subnormal = Fraction(2) ** (emin - fmt.mbits)
    else:
        min_subnormal = min_normal
    # eps: quantum of the binade [1, 2), rule 3 with E = 0
    eps = Fraction(2) ** (max(0, emin) - fmt.mbits)
    return {
        "max": max_value,
        "lowest": -max_value if fmt.signed else (Fraction(0) if fmt.subnormals else min_normal),
        "min_normal": min_normal,
        "min_subnormal": min_subnormal,
        "eps": eps,
        "max_code": max_mag,
        "nan_code": _nan_code(fmt),
        "inf_code": _inf_mag(fmt),
        "nbits": _nbits(fmt),
        "emin": emin,
        "emax": (max_mag >> fmt.mbits) - fmt.bias,
        "has_zero": bool(fmt.subnormals),
    }


# ---------------------------------------------------------------------------
# Stochastic-rounding generator: SplitMix64 finaliser, counter based
# ---------------------------------------------------------------------------

def ref_mix(z: int) -> int:
    """SplitMix64 finaliser (mod 2^64).

    Parameters
    ----------
    z
        Any integer (taken mod 2^64).

    Examples
    --------
    >>> ref_mix(0), hex(ref_mix(1))
    (0, '0x5692161d100b05e5')
    """
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def ref_fmix32(x: int) -> int:
    """MurmurHash3's 32-bit finaliser (mod 2^32)."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def ref_hash32(key: int, index: int) -> int:
    """32 random bits for ``index`` (mod 2^64) under a 32-bit ``key``: a
    Weyl step over the low word, the high word mixed in, then fmix32."""
    index &= _MASK64
    x = ((index & 0xFFFFFFFF) * 0x9E3779B9 + key) & 0xFFFFFFFF
    x ^= ((index >> 32) * 0x85EBCA77) & 0xFFFFFFFF
    return ref_fmix32(x)


def ref_random(seed: int, index: int) -> int:
    """64-bit random integer for element ``index`` under ``seed``.

    With ``key = mix(seed)`` (SplitMix64 finaliser), the high word is
    ``hash32(key >> 32, index)`` and the low word ``hash32(key mod 2^32,
    index)``.  seed and index are taken mod 2^64.

    Parameters
    ----------
    seed
        The seed lp.encode(..., seed=) takes.
    index
        The element's flat index.

    Examples
    --------
    The bits ``lp.encode(..., rounding="stochastic", seed=1)`` draws for
    the element of flat index 2:

    >>> hex(ref_random(1, 2))
    '0xa361a022b94286e8'
    """
    key = ref_mix(seed & _MASK64)
    return (ref_hash32(key >> 32, index) << 32) | ref_hash32(
        key & 0xFFFFFFFF, index)


# ---------------------------------------------------------------------------
# Rounding
# ---------------------------------------------------------------------------

def _floor_log2(a):
    """E with 2^E <= a < 2^(E+1), for a Fraction a > 0 (exact)."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    return e


def _exact_input(x):
    """Split an input into (kind, negative, magnitude).

    kind is 'nan', 'inf' or 'finite'; magnitude is an exact Fraction.
    Python floats (and NumPy float scalars) convert exactly; -0.0 keeps its sign.
    """
    if isinstance(x, numbers.Rational):                # int, Fraction, NumPy ints
        x = Fraction(int(x)) if isinstance(x, numbers.Integral) else Fraction(x)
        return "finite", x < 0, abs(x)
    x = float(x)                    # exact for float64/32/16/bfloat16 scalars
    if math.isnan(x):
        return "nan", False, None
    negative = math.copysign(1.0, x) < 0
    if math.isinf(x):
        return "inf", negative, None
    return "finite", negative, abs(Fraction(x))


def _saturate_mode(saturate):
    """The overflow policy's name: "ovfinf", "satfinite" or "satpropagate"."""
    if saturate is True or saturate is False:
        return "satfinite" if saturate else "ovfinf"
    if saturate in ("ovfinf", "satfinite", "satpropagate"):
        return saturate
    raise ValueError(f"unknown saturate {saturate!r}")


def _round_up(mode, negative, lo_sig, d, rand, rbits, odd_up):
    """Rule 3: should the magnitude go to the upper neighbour?

    lo_sig  integer significand of the lower neighbour (value / quantum)
    d       (|x| - lo) / gap, a Fraction in [0, 1); 0 means exact
    odd_up  whether the upper neighbour has the odd code (to_odd)
    Directions apply to the signed value: toward_positive moves the
    magnitude up only for positive x.
    """
    if d == 0:
        return False                                       # exact: stays
    if mode == "nearest_even":
        if d != Fraction(1, 2):
            return d > Fraction(1, 2)
        return lo_sig % 2 == 1                             # tie -> even significand
    if mode == "nearest_away":
        return d >= Fraction(1, 2)
    if mode == "toward_zero":
        return False
    if mode == "toward_positive":
        return not negative
    if mode == "toward_negative":
        return negative
    if mode == "to_odd":
        return odd_up
    if mode == "stochastic":
        # away from zero iff the top rbits random bits < floor(d * 2^rbits)
        return (rand >> (64 - rbits)) < math.floor(d * (1 << rbits))
    raise AssertionError(mode)


def _grid_mag_code(fmt, sig, qexp):
    """Magnitude code of the grid point sig x 2^qexp (exponent unbounded above).

    Used for to_odd parity and for packing.  Normal: sig in [2^mbits,
    2^(mbits+1)), exponent field = qexp + mbits + bias, mantissa =
    sig - 2^mbits.  Example e4m3fn: 448 = 14 x 2^5 -> field 5+3+7 = 15,
    mantissa 6 -> 0b0_1111_110.  Below 2^emin (subnormals): exponent field
    0, mantissa = sig (the quantum there is 2^(emin - mbits)).  A format
    without subnormals has no such points; rule 5 replaces them before packing.
    """
    if sig == 0:
        return 0
    while sig >= 2 << fmt.mbits:                        # carry into the exponent
        sig //= 2                                       # (only ever exact here)
        qexp += 1
    if sig < 1 << fmt.mbits:                            # below 2^emin
        return sig
    return ((qexp + fmt.mbits + fmt.bias) << fmt.mbits) | (sig - (1 << fmt.mbits))


def _name_mode(rounding):
    try:
        return ROUNDING_MODES[rounding]
    except (KeyError, TypeError):
        raise ValueError(f"unknown rounding mode {rounding!r}; expected one of "
                         f"{sorted(set(ROUNDING_MODES))}") from None


def ref_encode(fmt: Any, x: Union[Fraction, int, float],
               rounding: Rounding = "nearest_even",
               saturate: Union[bool, str] = False,
               subnormals: bool = True, zero_point: int = 0,
               rand: Optional[int] = None, rbits: int = 64) -> int:
    """Correctly rounded code of the exact value ``x`` in format ``fmt``.

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or any object with its
        primary fields: see the module docstring).
    x
        Fraction, int, or float (nan, ±inf, -0.0 allowed); floats are
        taken exactly (Fraction(x)).
    rounding
        A name of ``ROUNDING_MODES`` (aliases rne, rna, rz, ru, rd, ro,
        sr).
    saturate
        Overflow policy (float formats): False or "ovfinf" (rule 4), True
        or "satfinite" (overflow and ±inf inputs give ±max),
        "satpropagate" (finite overflow gives ±max, ±inf inputs as
        "ovfinf").
    subnormals
        False flushes results that are subnormal after rounding to 0.
    zero_point
        Integer formats only: added after rounding, before clamping.
    rand
        64-bit random integer for stochastic rounding (ref_random).
    rbits
        Number of random bits used by stochastic rounding, 1..64.

    Returns
    -------
    int
        The code: the unsigned bit pattern for float formats, the integer
        value itself for integer formats (-3 for int8).

    Raises
    ------
    ValueError
        (Naming the format) NaN into a format without NaN, a negative
        input that does not round to 0 into an unsigned float format,
        zero into a format with neither zero nor NaN; stochastic rounding
        without rand, rbits out of range, a zero_point for a float format.

    Notes
    -----
    Rules (numbers cited in the code):
    1. NaN -> canonical NaN.  ±inf -> ±max under "satfinite", else the
       ±inf code, else canonical NaN, else ±max.
    2. ±0 -> ±0 (-0 only if negzero); a format without zero -> canonical NaN.
    3. Round |x| on the grid whose quantum in binade [2^E, 2^(E+1)) is
       2^(max(E, emin) - mbits), exponent unbounded above; pick the lower or
       upper neighbour per mode.
    4. Overflow (rounded magnitude > max): "satfinite" and "satpropagate"
       -> ±max; "ovfinf": nearest modes and
       stochastic -> infinity; toward_zero, to_odd -> ±max; toward_positive ->
       +inf / -max; toward_negative -> +max / -inf.  "infinity" is the inf
       code, else canonical NaN, else ±max.
    5. Format without zero: a rounded magnitude below the smallest value
       becomes the smallest value (code 0).
    6. subnormals=False: a result subnormal after rounding becomes ±0.
    7. Sign bit for negative results; -0 only if negzero; unsigned formats
       reject negative non-zero results.
    8. Integer formats: round to an integer, add zero_point, clamp.

    Examples
    --------
    >>> from fractions import Fraction
    >>> import lowprec as lp
    >>> e4m3 = lp.get_format("e4m3")
    >>> ref_encode(e4m3, Fraction(1, 3))              # 0.34375 = 0x2B
    43
    >>> ref_encode(e4m3, 500.0), ref_encode(e4m3, 500.0, saturate=True)
    (127, 126)
    >>> ref_encode(lp.get_format("int8"), -3.5)       # ties to even
    -4
    """
    mode = _name_mode(rounding)
    saturate = _saturate_mode(saturate)
    if mode == "stochastic":
        if rand is None:
            raise ValueError("stochastic rounding needs rand= (e.g. ref_random(seed, index))")
        if not 1 <= rbits <= 64:
            raise ValueError(f"rbits must be in 1..64, got {rbits}")
        rand = int(rand) & _MASK64
    if _is_int(fmt):
        return _encode_int(fmt, x, mode, zero_point, rand, rbits)
    if zero_point:
        raise ValueError(f"zero_point applies to integer formats only, not {_name(fmt)}")
    return _encode_float(fmt, x, mode, saturate, subnormals, rand, rbits)


def _encode_float(fmt, x, mode, saturate, flush_ok, rand, rbits):
    lim = ref_limits(fmt)
    nan_code, inf_mag, max_mag = lim["nan_code"], lim["inf_code"], lim["max_code"]
    sign_bit = _sign_bit(fmt)
    kind, negative, a = _exact_input(x)

    def need_nan(why):
        if nan_code is None:
            raise ValueError(f"{why}: format {_name(fmt)} has no NaN encoding (0 NaNs)")
        return nan_code

    def signed(mag):
        # 7. sign.  Magnitude code 0 is zero only if the format has one
        #    (e8m0's code 0 is 2^-127, so -2^-140 is rejected there).
        is_zero = mag == 0 and lim["has_zero"]
        if not negative:
            return mag
        if is_zero:
            return sign_bit if (fmt.signed and fmt.negzero) else 0
        if not fmt.signed:
            raise ValueError(f"negative value {x!r} cannot be encoded in unsigned "
                             f"format {_name(fmt)}")
        return sign_bit | mag

    def infinity():                                     # rule 4, "infinity"
        if inf_mag is not None:
            return signed(inf_mag)
        if nan_code is not None:
            if negative and not fmt.signed:
                signed(max_mag)                         # raises (rule 7)
            return nan_code
        return signed(max_mag)

    # 1. NaN and infinite inputs
    if kind == "nan":
        return need_nan("NaN input")
    if kind == "inf":
        # API.md: "Infinite inputs: +-inf, or NaN without infinity, or +-max
        # when saturating" -- saturation wins even where inf exists.
        if saturate == "satfinite":
            return signed(max_mag)
        return infinity()

    # 2. zero input
    if a == 0:
        if not lim["has_zero"]:
            return need_nan(f"zero input (format {_name(fmt)} has no zero)")
        return signed(0)

    # 3. round |x| on the grid with unbounded exponent
    emin = lim["emin"]
    qexp = max(_floor_log2(a), emin) - fmt.mbits        # quantum = 2^qexp
    scaled = a / Fraction(2) ** qexp
    lo_sig = math.floor(scaled)                         # lower neighbour / quantum
    d = scaled - lo_sig                                 # in [0, 1)
    odd_up = False
    if mode == "to_odd" and d != 0:
        # Parity of the CODE (last bit), not of the significand: with
        # mbits = 0 it is the exponent field's (e8m0: 3 -> 4 = code 129).
        # The neighbours' codes are consecutive (hi = lo + 1, also across a
        # binade), so exactly one is odd.  (Below e8m0's smallest value both
        # are code 0; rule 5 then decides.)
        lo_code = _grid_mag_code(fmt, lo_sig, qexp)
        hi_code = _grid_mag_code(fmt, lo_sig + 1, qexp)
        odd_up = hi_code % 2 == 1 and lo_code % 2 == 0
    up = _round_up(mode, negative, lo_sig, d, rand, rbits, odd_up)
    sig = lo_sig + 1 if up else lo_sig
    r = sig * Fraction(2) ** qexp                       # rounded magnitude

    # 5. no zero: below the smallest value -> smallest value (code 0)
    if not lim["has_zero"] and r < lim["min_normal"]:
        return signed(0)

    # 4. overflow, decided on the value rounded with unbounded exponent
    if r > lim["max"]:
        if saturate != "ovfinf":
            return signed(max_mag)
        if mode in ("nearest_even", "nearest_away", "stochastic"):
            return infinity()
        if mode in ("toward_zero", "to_odd"):
            return signed(max_mag)
        if mode == "toward_positive":
            return signed(max_mag) if negative else infinity()
        if mode == "toward_negative":
            return infinity() if negative else signed(max_mag)
        raise AssertionError(mode)

    # 6. flush results that are subnormal after rounding
    if not flush_ok and fmt.subnormals and r < lim["min_normal"]:
        r = Fraction(0)

    # 7. pack with the sign (r is a representable magnitude here)
    if r == 0:
        return signed(0)
    return signed(_grid_mag_code(fmt, sig, qexp))


def _encode_int(fmt, x, mode, zero_point, rand, rbits):
    """Rule 8: integer formats (always saturating)."""
    lo_lim, hi_lim = _int_range(fmt)
    kind, negative, a = _exact_input(x)
    if kind == "nan":
        raise ValueError(f"NaN input: integer format {_name(fmt)} has no NaN "
                         "encoding (0 NaNs)")
    if kind == "inf":
        return lo_lim if negative else hi_lim           # ±inf go to the ends
    lo_sig = math.floor(a)                              # quantum 1
    d = a - lo_sig
    odd_up = (lo_sig + 1) % 2 == 1                      # parity is sign-independent
    up = _round_up(mode, negative, lo_sig, d, rand, rbits, odd_up)
    n = lo_sig + 1 if up else lo_sig
    n = -n if negative else n
    n += int(zero_point)
    return min(max(n, lo_lim), hi_lim)


# ---------------------------------------------------------------------------
# Optional NumPy conveniences (the only part that needs NumPy)
# ---------------------------------------------------------------------------

def _code_dtype(fmt):
    import numpy as np
    nbits = _nbits(fmt)
    if _is_int(fmt):
        if nbits > 8:
            raise ValueError(f"integer format {_name(fmt)} wider than 8 bits")
        return np.int8 if fmt.signed else np.uint8
    return np.uint8 if nbits <= 8 else np.uint16 if nbits <= 16 else np.uint32


def ref_encode_array(fmt: Any, x: ArrayLike, *,
                     rounding: Rounding = "nearest_even",
                     saturate: bool = False, subnormals: bool = True,
                     zero_point: int = 0, seed: Optional[int] = None,
                     rbits: int = 64) -> NDArray[Any]:
    """ref_encode applied to every element of an array (C order).

    Stochastic rounding uses ``rand = ref_random(seed, i)`` for flat
    element index ``i``, as the kernels do.  Returns an array of codes
    (uint8/uint16/uint32 for float formats, int8/uint8 for integer formats)
    of x's shape.

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).
    x
        Values (array-like; each element taken exactly).
    rounding
        As `ref_encode`.
    saturate
        As `ref_encode`.
    subnormals
        As `ref_encode`.
    zero_point
        As `ref_encode`.
    seed
        Stochastic rounding's seed (required for it).
    rbits
        As `ref_encode`.

    Raises
    ------
    ValueError
        As `ref_encode`; stochastic rounding without a seed.

    Examples
    --------
    >>> import lowprec as lp
    >>> ref_encode_array(lp.get_format("e4m3"), [1.0, 0.3])
    array([56, 42], dtype=uint8)
    """
    import numpy as np
    arr = np.asarray(x)
    if ROUNDING_MODES.get(rounding) == "stochastic" and seed is None:
        raise ValueError("stochastic rounding needs seed=")
    flat = arr.reshape(-1)
    out = np.empty(flat.shape, dtype=_code_dtype(fmt))
    for i, v in enumerate(flat.tolist()):
        rand = ref_random(seed, i) if seed is not None else None
        out[i] = ref_encode(fmt, v, rounding=rounding, saturate=saturate,
                            subnormals=subnormals, zero_point=zero_point,
                            rand=rand, rbits=rbits)
    return out.reshape(arr.shape)


def ref_decode_array(fmt: Any, codes: ArrayLike,
                     dtype: DTypeLike = "float64") -> NDArray[Any]:
    """ref_decode of every code, as a NumPy array of ``dtype``.

    Each exact value is rounded once to float64 (exact for every format of
    at most 53 significand bits and in float64's range), then cast to
    ``dtype`` by NumPy.

    Parameters
    ----------
    fmt
        A format description (a lowprec Format, or an object with its
        primary fields: see the module docstring).
    codes
        Codes of fmt (array-like).
    dtype
        The result's dtype.

    Raises
    ------
    ValueError
        A code outside the format.

    Examples
    --------
    >>> import lowprec as lp
    >>> ref_decode_array(lp.get_format("e4m3"), [0x38, 0x7F])
    array([ 1., nan])
    """
    import numpy as np
    arr = np.asarray(codes)
    vals = [float(ref_decode(fmt, c)) for c in arr.reshape(-1).tolist()]
    return np.array(vals, dtype=np.float64).reshape(arr.shape).astype(dtype)
