"""Formats are data: frozen value objects mirrored by the C struct lp_format.

Only the primary fields are stored; every derived property (largest finite
code, NaN and infinity codes, exponent range) is computed once, by the C
function ``lp_format_init``, and read from the struct.  Adding a built-in
format is one line in ``_REGISTRY``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from decimal import Decimal
from typing import (TYPE_CHECKING, Any, Dict, Optional, Tuple, Union,
                    overload)

import numpy as np
from numpy.typing import NDArray

from ._clib import ffi, lib
from ._validate import check_bool, check_choice, check_code, check_int

if TYPE_CHECKING:
    from ._typing import (BlockShape, BoolLike, FormatLike, IntLike,
                          RecipeName)

_NANS = {"ieee": lib.LP_NANS_IEEE, "top": lib.LP_NANS_TOP,
         "negzero": lib.LP_NANS_NEGZERO, "none": lib.LP_NANS_NONE}

_INIT_ERRORS = {
    -1: "unknown kind", -2: "ebits must be in 1..8",
    -3: "mbits must be in 0..23", -4: "bias must be in -126..254",
    -5: "this combination of nans/infs/negzero/signed has no valid layout "
        "(nans='ieee' needs mbits >= 1; nans='negzero' needs negzero=False "
        "and a sign bit; at least one finite non-zero code)",
    -6: "integer width must be in 2..16 (narrow only for signed formats)",
    -7: "total width must be 2..32 bits",
}


# enum lp_layout -> Format.layout.
_LAYOUTS = {lib.LP_LAYOUT_INT: "int", lib.LP_LAYOUT_FLOAT: "float",
            lib.LP_LAYOUT_NOZERO: "nozero",
            lib.LP_LAYOUT_BINARY16: "binary16",
            lib.LP_LAYOUT_BINARY32: "binary32",
            lib.LP_LAYOUT_TRUNC32: "binary32_trunc"}


class Format:
    """Common interface of FloatFormat and IntFormat.

    Every format has ``name``, ``kind`` ("float" or "int"), ``nbits``,
    ``max``, ``min_normal``, ``min_subnormal``, ``eps``, ``code_dtype``,
    ``values()``, ``value(code)`` and ``describe(code)``.  Formats are
    immutable, hashable and picklable; two formats with the same fields
    are equal whatever their names.

    Examples
    --------
    >>> import lowprec as lp
    >>> isinstance(lp.get_format("int8"), lp.Format)
    True
    """

    kind: str
    name: Optional[str]
    _st: Any

    def _init_struct(self, **fields: Any) -> None:
        st = ffi.new("lp_format *")
        for key, value in fields.items():
            setattr(st, key, int(value))
        rc = lib.lp_format_init(st)
        if rc != 0:
            raise ValueError(f"invalid format {self!r}: {_INIT_ERRORS[rc]}")
        object.__setattr__(self, "_st", st)

    @property
    def struct(self) -> Any:
        """The C ``lp_format *`` (cffi pointer) describing this format."""
        return self._st

    @property
    def nbits(self) -> int:
        """Width of a code in bits."""
        return self._st.nbits

    @property
    def code_dtype(self) -> np.dtype[Any]:
        """NumPy dtype of the codes (uint8 / uint16 / uint32; int8 / uint8
        / int16 / uint16 for integer formats)."""
        raise NotImplementedError

    @property
    def max(self) -> float:
        """Largest finite value."""
        raise NotImplementedError

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value (1 for integers)."""
        raise NotImplementedError

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (1 for integers)."""
        raise NotImplementedError

    @property
    def eps(self) -> float:
        """Gap between 1.0 and the next larger value (1 for integers)."""
        raise NotImplementedError

    def value(self, code: IntLike) -> float:
        """Exact value of one code (a float: every value of a format of
        at most 32 bits is a float64).

        Parameters
        ----------
        code
            A code of the format (integer formats: the integer itself).

        Examples
        --------
        >>> import lowprec as lp
        >>> lp.get_format("int4").value(-3)
        -3.0
        """
        raise NotImplementedError

    def values(self) -> NDArray[np.float64]:
        """All distinct finite values, float64, sorted.

        Raises
        ------
        ValueError
            For formats of more than 24 bits (float32).

        Examples
        --------
        >>> import lowprec as lp
        >>> lp.get_format("uint2").values()
        array([0., 1., 2., 3.])
        """
        raise NotImplementedError

    def describe(self, code: IntLike) -> str:
        """Readable decomposition of one code: the bits, their fields and
        class, and the exact value.

        Parameters
        ----------
        code
            A code of the format.

        Raises
        ------
        TypeError
            code not an integer.
        ValueError
            code not a code of the format.

        Examples
        --------
        >>> import lowprec as lp
        >>> print(lp.get_format("int8").describe(-3))
        int8 -3 = 0b11111101: integer, value -3
        """
        raise NotImplementedError

    @property
    def layout(self) -> str:
        """How the codes are laid out, derived by the C library once
        (``lp_format.layout``, enum lp_layout): "binary32", "binary16"
        (IEEE 754), "binary32_trunc" (binary32's exponent field, bias and
        specials with fewer mantissa bits: bfloat16, tfloat32; a code is
        the top bits of a float32's), "nozero" (no subnormals and no zero:
        E8M0), "float" (any other float format) or "int"."""
        return _LAYOUTS[self._st.layout]

    def __reduce__(self):
        fields = {f.name: getattr(self, f.name)
                  for f in dataclasses.fields(self)}
        return (_rebuild, (type(self), fields))


def _check_name(name: object, cls: str) -> None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{cls} name must be None or a string, got "
                        f"{name!r} ({type(name).__name__})")


def _rebuild(cls, fields):
    return cls(**fields)


def _exact_str(v: float) -> str:
    """Exact decimal text of a binary64 value (every dyadic rational has
    a finite expansion)."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    text = format(Decimal(v), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    m, e = math.frexp(abs(v))
    if m == 0.5:
        text += f" (2^{e - 1})"
    return text


@dataclasses.dataclass(frozen=True, repr=False)
class FloatFormat(Format):
    """A binary floating-point format: sign, exponent and mantissa fields.

    ``nans``: ``"ieee"`` (top exponent with non-zero mantissa), ``"top"``
    (only the all-ones magnitude code), ``"negzero"`` (the code 100...0;
    requires ``negzero=False``) or ``"none"``.  ``infs=True`` puts infinity
    at the top exponent with zero mantissa (``"ieee"``) or at the largest
    non-NaN magnitude code (other ``nans``).  ``subnormals=False`` makes
    exponent field 0 hold normal numbers, so the format has no zero (as
    OCP MX E8M0).

    Arguments are checked strictly: ``ebits`` in 1..8, ``mbits`` in
    0..23 and ``bias`` in -126..254 are integers (Python or NumPy, not
    float or str), the width sign + ebits + mbits in 2..32; ``infs``,
    ``negzero``, ``subnormals`` and ``signed`` are bools (``True`` /
    ``False`` or NumPy bools, not 0 / 1).  The wrong kind raises
    TypeError, a value out of range ValueError.

    Parameters
    ----------
    ebits
        Exponent field width, 1..8.
    mbits
        Mantissa field width, 0..23.
    bias
        Exponent bias, -126..254 (None: 2^(ebits - 1) - 1).
    infs
        Whether the format has infinities.
    nans
        Where the NaN codes are: "ieee", "top", "negzero" or "none".
    negzero
        Whether -0 has its own code.
    subnormals
        Whether exponent field 0 holds subnormals (False: no zero).
    signed
        Whether there is a sign bit.
    name
        A label for repr and messages (not compared).

    Raises
    ------
    TypeError
        A field of the wrong kind.
    ValueError
        A field out of range, or a combination without a valid layout.

    Examples
    --------
    >>> import lowprec as lp
    >>> p3109 = lp.FloatFormat(4, 3, bias=8, infs=True, nans="negzero",
    ...                        negzero=False)
    >>> p3109
    FloatFormat(4, 3, bias=8, nans='negzero', negzero=False)
    >>> p3109.max
    224.0
    >>> lp.FloatFormat(4, 3, infs=False, nans="top") == lp.get_format("e4m3")
    True
    """

    ebits: int
    mbits: int
    bias: Optional[int] = None
    infs: bool = True
    nans: str = "ieee"
    negzero: bool = True
    subnormals: bool = True
    signed: bool = True
    name: Optional[str] = dataclasses.field(default=None, compare=False)

    kind = "float"

    def __post_init__(self) -> None:
        # Every field checked in the ranges lp_format_init accepts (the
        # widths together: 2..32 bits, checked by the C function).
        _set = functools.partial(object.__setattr__, self)
        _set("ebits", check_int(self.ebits, "FloatFormat ebits", 1, 8))
        _set("mbits", check_int(self.mbits, "FloatFormat mbits", 0, 23))
        if self.bias is None:
            _set("bias", (1 << (self.ebits - 1)) - 1)
        else:
            _set("bias", check_int(self.bias, "FloatFormat bias", -126, 254))
        if isinstance(self.nans, str) and self.nans not in _NANS:
            raise ValueError(f"FloatFormat nans must be one of "
                             f"{sorted(_NANS)}, got {self.nans!r}")
        check_choice(self.nans, "FloatFormat nans", tuple(_NANS))
        for field in ("infs", "negzero", "subnormals", "signed"):
            _set(field, check_bool(getattr(self, field),
                                   f"FloatFormat {field}"))
        _check_name(self.name, "FloatFormat")
        if not self.signed:
            _set("negzero", False)
        self._init_struct(kind=lib.LP_FLOAT, ebits=self.ebits,
                          mbits=self.mbits, bias=self.bias, infs=self.infs,
                          nans=_NANS[self.nans], negzero=self.negzero,
                          subnormals=self.subnormals, is_signed=self.signed)

    # -- derived properties (from the C struct) ---------------------------
    @property
    def code_dtype(self) -> np.dtype[Any]:
        n = self.nbits
        return np.dtype(np.uint8 if n <= 8 else np.uint16 if n <= 16
                        else np.uint32)

    @property
    def emin(self) -> int:
        """Unbiased exponent of the lowest normal binade."""
        return self._st.emin

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite value."""
        return self._st.emax

    @property
    def max_code(self) -> int:
        """Code of the largest finite value (+max)."""
        return self._st.max_code

    @property
    def nan_code(self) -> Optional[int]:
        """Canonical NaN code, or None."""
        c = self._st.nan_code
        return None if c == lib.LP_NO_CODE else c

    @property
    def inf_code(self) -> Optional[int]:
        """Code of +inf, or None."""
        c = self._st.inf_code
        return None if c == lib.LP_NO_CODE else c

    @property
    def sign_bit(self) -> int:
        """The sign bit as a mask (0 for unsigned formats)."""
        return self._st.sign_bit

    @property
    def has_zero(self) -> bool:
        """Whether the format has a zero (E8M0 has none)."""
        return bool(self._st.has_zero)

    @property
    def max(self) -> float:
        """Largest finite value."""
        return lib.lp_decode_one(self._st, self.max_code)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value, 2^emin."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (min_normal without subnormals)."""
        if not self.subnormals:
            return self.min_normal
        return math.ldexp(1.0, self.emin - self.mbits)

    @property
    def eps(self) -> float:
        """Gap between 1.0 and the next larger value."""
        return math.ldexp(1.0, -self.mbits)

    def value(self, code: IntLike) -> float:
        """Exact value of one code (float; NaN and +-inf for specials).

        Parameters
        ----------
        code
            A code of the format, 0 <= code < 2^nbits.

        Examples
        --------
        >>> import lowprec as lp
        >>> lp.get_format("e4m3").value(0x7E)
        448.0

        Raises
        ------
        TypeError
            A code that is not an integer.
        ValueError
            A code outside [0, 2^nbits).
        """
        return lib.lp_decode_one(self._st, check_code(code, self))

    def values(self) -> NDArray[np.float64]:
        """All distinct finite values, float64, sorted.

        Raises
        ------
        ValueError
            For formats of more than 24 bits (float32).

        Examples
        --------
        >>> import lowprec as lp
        >>> lp.get_format("fp4").values()[-5:]
        array([1.5, 2. , 3. , 4. , 6. ])
        """
        if self.nbits > 24:
            raise ValueError(f"{self.name or self!r} has 2^{self.nbits} codes;"
                             " values() is limited to formats of <= 24 bits")
        codes = np.arange(1 << self.nbits, dtype=self.code_dtype)
        v = np.empty(codes.size, np.float64)
        lib.lp_decode(self._st, ffi.cast("void *", codes.ctypes.data),
                      codes.size, lib.LP_F64, ffi.NULL, 0,
                      ffi.cast("void *", v.ctypes.data))
        return np.unique(v[np.isfinite(v)])

    def describe(self, code: IntLike) -> str:
        """Readable decomposition of one code: bit fields, class and the
        exact value.

        Parameters
        ----------
        code
            A code of the format, 0 <= code < 2^nbits.

        Raises
        ------
        TypeError
            code not an integer.
        ValueError
            code not a code of the format.

        Examples
        --------
        >>> import lowprec as lp
        >>> print(lp.get_format("e4m3").describe(0x7E))
        float8_e4m3fn 0x7e = 0b0_1111_110: sign +, exponent field 15, mantissa field 6, normal = +1.110b x 2^8, value 448
        """
        code = check_int(code, "code")
        if not 0 <= code < (1 << self.nbits):
            raise ValueError(f"{code:#x} is not a code of {self._label()} "
                             f"({self.nbits} bits)")
        v = self.value(code)
        s = code >> (self.ebits + self.mbits) if self.signed else 0
        field = (code >> self.mbits) & ((1 << self.ebits) - 1)
        mant = code & ((1 << self.mbits) - 1)
        bits = format(code, f"0{self.nbits}b")
        parts = ([bits[0]] if self.signed else []) + [
            bits[int(self.signed):int(self.signed) + self.ebits]]
        if self.mbits:
            parts.append(bits[int(self.signed) + self.ebits:])
        if math.isnan(v):
            cls = "nan"
        elif math.isinf(v):
            cls = "inf"
        elif v == 0:
            cls = "zero"
        elif field == 0 and self.subnormals:
            cls = "subnormal"
        else:
            cls = "normal"
        if cls in ("normal", "subnormal"):
            assert self.bias is not None        # set by __post_init__
            e = (self.emin if cls == "subnormal" else field - self.bias)
            lead = "0" if cls == "subnormal" else "1"
            frac = format(mant, f"0{self.mbits}b") if self.mbits else ""
            sig = f"{lead}.{frac}" if frac else lead
            form = f" = {'-' if s else '+'}{sig}b x 2^{e}"
        else:
            form = ""
        width = (self.nbits + 3) // 4
        return (f"{self._label()} 0x{code:0{width}x} = 0b{'_'.join(parts)}: "
                f"sign {'-' if s else '+'}, exponent field {field}, "
                f"mantissa field {mant}, {cls}{form}, value {_exact_str(v)}")

    def _label(self) -> str:
        return self.name or repr(self)

    def __repr__(self) -> str:
        if self.name:
            return f"FloatFormat({self.name!r})"
        args = [str(self.ebits), str(self.mbits), f"bias={self.bias}"]
        for field, default in (("infs", True), ("nans", "ieee"),
                               ("negzero", True), ("subnormals", True),
                               ("signed", True)):
            if getattr(self, field) != default:
                args.append(f"{field}={getattr(self, field)!r}")
        return f"FloatFormat({', '.join(args)})"


@dataclasses.dataclass(frozen=True, repr=False)
class IntFormat(Format):
    """A two's complement (or unsigned) integer format of 2..16 bits.

    Codes are the integers themselves, held in int8/uint8 (int16/uint16
    above 8 bits); sub-byte codes sit in the low bits of a byte,
    sign-extended for signed formats.  ``narrow=True`` drops the most
    negative value (int8: [-127, 127]).  ``bits`` is an integer in
    2..16 (not a float or str), ``signed`` and ``narrow`` are bools
    (TypeError for the wrong kind, ValueError out of range).

    Parameters
    ----------
    bits
        Width, 2..16.
    signed
        Two's complement (True) or unsigned.
    narrow
        Drop the most negative value (signed formats).
    name
        A label for repr and messages (not compared).

    Raises
    ------
    TypeError
        A field of the wrong kind.
    ValueError
        bits out of range.

    Examples
    --------
    >>> import lowprec as lp
    >>> f = lp.IntFormat(4, narrow=True)
    >>> f.min, f.max, f.code_dtype
    (-7, 7, dtype('int8'))
    >>> print(f.describe(-7))
    IntFormat(4, narrow=True) -7 = 0b1001: integer, value -7
    """

    bits: int
    signed: bool = True
    narrow: bool = False
    name: Optional[str] = dataclasses.field(default=None, compare=False)

    kind = "int"

    def __post_init__(self) -> None:
        _set = functools.partial(object.__setattr__, self)
        _set("bits", check_int(self.bits, "IntFormat bits", 2, 16))
        for field in ("signed", "narrow"):
            _set(field, check_bool(getattr(self, field), f"IntFormat {field}"))
        _check_name(self.name, "IntFormat")
        self._init_struct(kind=lib.LP_INT, bits=self.bits,
                          is_signed=self.signed, narrow=self.narrow)

    @property
    def code_dtype(self) -> np.dtype[Any]:
        if self.bits <= 8:
            return np.dtype(np.int8 if self.signed else np.uint8)
        return np.dtype(np.int16 if self.signed else np.uint16)

    @property
    def min(self) -> int:
        """Smallest value."""
        return self._st.int_min

    @property
    def max(self) -> int:
        """Largest value."""
        return self._st.int_max

    min_normal = min_subnormal = eps = property(lambda self: 1)

    def value(self, code: IntLike) -> float:
        return float(check_code(code, self))

    def values(self) -> NDArray[np.float64]:
        return np.arange(self.min, self.max + 1, dtype=np.float64)

    def describe(self, code: IntLike) -> str:
        code = check_int(code, "code")
        if not self.min <= code <= self.max:
            raise ValueError(f"{code} is not a code of {self._label()} "
                             f"(range [{self.min}, {self.max}])")
        bits = format(code & ((1 << self.bits) - 1), f"0{self.bits}b")
        return f"{self._label()} {code} = 0b{bits}: integer, value {code}"

    def _label(self) -> str:
        return self.name or repr(self)

    def __repr__(self) -> str:
        if self.name:
            return f"IntFormat({self.name!r})"
        args = [str(self.bits)]
        if not self.signed:
            args.append("signed=False")
        if self.narrow:
            args.append("narrow=True")
        return f"IntFormat({', '.join(args)})"


# -- the registry: one line per built-in -----------------------------------
# name, aliases, format (value semantics as ml_dtypes for the types it has).
_F = FloatFormat
_REGISTRY: list[tuple[str, tuple[str, ...], FloatFormat | IntFormat]] = [
    ("float32", ("fp32",), _F(8, 23)),
    ("tfloat32", ("tf32",), _F(8, 10)),
    ("bfloat16", ("bf16",), _F(8, 7)),
    ("float16", ("fp16", "half"), _F(5, 10)),
    ("float8_e5m2", ("e5m2",), _F(5, 2)),
    ("float8_e4m3fn", ("e4m3",), _F(4, 3, infs=False, nans="top")),
    ("float8_e4m3", (), _F(4, 3)),
    ("float8_e3m4", ("e3m4",), _F(3, 4)),
    ("float8_e3m4fn", (), _F(3, 4, infs=False, nans="top")),
    ("float8_e4m3fnuz", (), _F(4, 3, bias=8, infs=False, nans="negzero",
                               negzero=False)),
    ("float8_e5m2fnuz", (), _F(5, 2, bias=16, infs=False, nans="negzero",
                               negzero=False)),
    ("float8_e4m3b11fnuz", (), _F(4, 3, bias=11, infs=False,
                                  nans="negzero", negzero=False)),
    ("float6_e3m2fn", ("fp6_e3m2",), _F(3, 2, infs=False, nans="none")),
    ("float6_e2m3fn", ("fp6_e2m3",), _F(2, 3, infs=False, nans="none")),
    ("float4_e2m1fn", ("fp4", "e2m1"), _F(2, 1, infs=False, nans="none")),
    ("float8_e8m0fnu", ("e8m0",), _F(8, 0, bias=127, infs=False, nans="top",
                                      subnormals=False, signed=False)),
    ("float8_e5m3fnu", ("ue5m3",), _F(5, 3, infs=False, nans="top",
                                      signed=False)),
    ("int8", (), IntFormat(8)),
    ("int8_narrow", (), IntFormat(8, narrow=True)),
    ("uint8", (), IntFormat(8, signed=False)),
    ("int4", (), IntFormat(4)),
    ("uint4", (), IntFormat(4, signed=False)),
    ("int2", (), IntFormat(2)),
    ("uint2", (), IntFormat(2, signed=False)),
]

_FORMATS: Dict[str, Union[FloatFormat, IntFormat]] = {}
_ALIASES: Dict[str, str] = {}
for _name, _aliases, _fmt in _REGISTRY:
    _FORMATS[_name] = dataclasses.replace(_fmt, name=_name)
    for _alias in (_name,) + _aliases:
        _ALIASES[_alias] = _name


def formats() -> Dict[str, Union[FloatFormat, IntFormat]]:
    """Every built-in format by name (aliases are not keys; the parametric
    IEEE P3109 family, :func:`p3109`, is not listed: get_format makes its
    members by name).

    Examples
    --------
    >>> import lowprec as lp
    >>> lp.formats()["bfloat16"]
    FloatFormat('bfloat16')
    >>> "float8_e4m3fn" in lp.formats()
    True
    """
    return dict(_FORMATS)


# -- IEEE P3109 -------------------------------------------------------------

P3109_DOMAINS = ("extended", "finite")
_P3109: Dict[str, FloatFormat] = {}
_P3109_NAME = re.compile(r"binary(\d+)p(\d+)([su])([ef])")
_P3109_ALIAS = re.compile(r"p3109_k(\d+)p(\d+)([su])([ef])")


def p3109(k: int, p: int, *, signed: bool = True,
          domain: str = "extended") -> FloatFormat:
    """The IEEE P3109 format of k bits and precision p (interim report).

    p bits of precision (p - 1 stored mantissa bits), k - p exponent bits
    signed (k - p + 1 unsigned), bias 2^(exponent bits - 1) (signed:
    2^(k-p-1); unsigned: 2^(k-p)), subnormals, one zero (no -0) and one
    NaN: 0x80...0 (the code -0 would have) when signed, the all-ones code
    when unsigned.  The extended domain has infinities, the largest codes
    below the NaN (signed: 0x7F...F and 0xFF...F; unsigned: all-ones - 1);
    the finite domain has none.  As a FloatFormat: signed is
    ``FloatFormat(k - p, p - 1, bias=..., infs=extended, nans="negzero",
    negzero=False)``, unsigned ``nans="top", signed=False``.

    Parameters
    ----------
    k : int
        The width in bits, 2..16.
    p : int
        The precision: 1..k-1 signed, 1..k unsigned, and at most 8
        exponent bits (p >= k - 8 signed, p >= k - 7 unsigned).
    signed : bool
        Signed (one NaN at 0x80...0) or unsigned (NaN all-ones).
    domain : str
        "extended" (with infinities) or "finite".

    Returns
    -------
    FloatFormat
        The format named ``binary{k}p{p}{s|u}{e|f}`` (get_format knows the
        name, and gfloat's ``p3109_k{k}p{p}{se|sf|ue|uf}``).

    Raises
    ------
    TypeError
        Arguments of the wrong kind.
    ValueError
        k, p out of range, an unknown domain, or a format without a finite
        non-zero value (binary2p1se).

    Examples
    --------
    >>> import lowprec as lp
    >>> f = lp.p3109(8, 3)
    >>> f.name, f.bias, f.max, f.nan_code, f.inf_code
    ('binary8p3se', 16, 49152.0, 128, 127)
    """
    k = check_int(k, "p3109 k", 2, 16)
    signed = check_bool(signed, "p3109 signed")
    p = check_int(p, "p3109 p", 1, k - 1 if signed else k)
    domain = check_choice(domain, "p3109 domain", P3109_DOMAINS)
    ebits = k - p + (0 if signed else 1)
    if ebits > 8:
        raise ValueError(f"p3109 p must be >= {k - 8 + (0 if signed else 1)}"
                         f" for k={k}: binary{k}p{p} would have {ebits} "
                         "exponent bits, lowprec holds at most 8")
    name = f"binary{k}p{p}{'s' if signed else 'u'}{domain[0]}"
    f = _P3109.get(name)
    if f is None:
        if signed and k == 2 and domain == "extended":
            raise ValueError(f"p3109: {name} has no finite non-zero value "
                             "(its codes are 0, +inf, NaN and -inf)")
        f = FloatFormat(ebits, p - 1, bias=1 << (ebits - 1),
                        infs=domain == "extended",
                        nans="negzero" if signed else "top", negzero=False,
                        signed=signed, name=name)
        _P3109[name] = f
    return f


def _p3109_by_name(spec: str) -> Optional[FloatFormat]:
    """The P3109 format a name (binary8p3se) or gfloat alias
    (p3109_k8p3se) stands for, or None when spec is neither."""
    m = _P3109_NAME.fullmatch(spec) or _P3109_ALIAS.fullmatch(spec)
    if m is None:
        return None
    k, p, s, d = m.groups()
    try:
        return p3109(int(k), int(p), signed=s == "s",
                     domain="extended" if d == "e" else "finite")
    except ValueError as exc:
        raise ValueError(f"format {spec!r}: {exc}") from None


@overload
def get_format(spec: FloatFormat) -> FloatFormat: ...
@overload
def get_format(spec: IntFormat) -> IntFormat: ...
@overload
def get_format(spec: BlockFormat) -> BlockFormat: ...
@overload
def get_format(  # type: ignore[overload-overlap]
        spec: RecipeName) -> BlockFormat: ...
@overload
def get_format(spec: FormatLike) -> Format: ...


def get_format(spec: Union[FormatLike, BlockFormat]
               ) -> Union[Format, BlockFormat]:
    """A Format from a Format, a name or alias, or a NumPy / ml_dtypes
    dtype (``np.float16``, ``ml_dtypes.float8_e4m3fn``, ...).

    Block recipe names ("mxfp4", "nvfp4", ...) give their BlockFormat.
    Names are matched as given, then in lower case.

    Parameters
    ----------
    spec
        A Format or BlockFormat (returned as it is), a name or alias, or
        a dtype or scalar type.

    Returns
    -------
    Format or BlockFormat
        The format.

    Raises
    ------
    TypeError
        spec None or of another kind.
    ValueError
        An unknown name (the message lists the known ones), or a dtype
        without a lowprec format.

    Examples
    --------
    >>> import numpy as np, ml_dtypes, lowprec as lp
    >>> lp.get_format("e4m3")
    FloatFormat('float8_e4m3fn')
    >>> lp.get_format(ml_dtypes.float8_e5m2), lp.get_format(np.float16)
    (FloatFormat('float8_e5m2'), FloatFormat('float16'))
    >>> lp.get_format("mxfp4").block
    32
    """
    if isinstance(spec, (Format, BlockFormat)):
        return spec
    if spec is None:        # np.dtype(None) would be float64
        raise TypeError("format must be a Format, a name or a dtype, got "
                        "None")
    if isinstance(spec, str):
        key = _ALIASES.get(spec, _ALIASES.get(spec.lower()))
        if key is None:
            block_format = _recipe_of(spec)     # mxfp4, nvfp4, ...
            if block_format is not None:
                return block_format
            p3109_format = _p3109_by_name(spec.lower())
            if p3109_format is not None:
                return p3109_format
            raise ValueError(f"unknown format {spec!r}; known: "
                             f"{', '.join(sorted(_ALIASES))}, and the IEEE "
                             "P3109 names binary{k}p{p}{s|u}{e|f} "
                             "(p3109_k{k}p{p}{se|sf|ue|uf})")
        return _FORMATS[key]
    try:
        dt = np.dtype(spec)
    except TypeError:
        raise TypeError(f"cannot make a format from {spec!r} "
                        f"({type(spec).__name__}); pass a Format, a name "
                        "or a dtype") from None
    if dt.name in _FORMATS:
        return _FORMATS[dt.name]
    raise ValueError(f"dtype {dt.name} has no lowprec format")


# -- block-scaled formats (API.md section 8): value object and recipes ------
# A block format is data like the element formats, so it and its registry
# live here; lowprec.blocks (the kernels) imports them.

_E8M0_RULES = ("floor", "ceil", "rceil", "even")
_F32_RULES = ("decode", "encode", "pow2")
_FLOAT_SCALE_RULES = ("nvfp4",)
RULES = _E8M0_RULES + _FLOAT_SCALE_RULES + _F32_RULES
def _scale_kind(sf: Format) -> str:
    """"e8m0", "float32" or "float" (an 8-bit float scale: nvfp4 rule)."""
    if sf.name == "float8_e8m0fnu":
        return "e8m0"
    if sf.name == "float32":
        return "float32"
    return "float"


def _rules_of(sf: Format) -> Tuple[str, ...]:
    return {"e8m0": _E8M0_RULES, "float32": _F32_RULES,
            "float": _FLOAT_SCALE_RULES}[_scale_kind(sf)]


def _check_block(block: BlockShape) -> Union[int, Tuple[int, ...]]:
    if isinstance(block, tuple):
        if not 1 <= len(block) <= 2:
            raise ValueError(f"block must be an int or a tuple of 1 or 2 "
                             f"ints (over the last axes), got {block!r}")
        return tuple(check_int(b, "block", 1) for b in block)
    return check_int(block, "block", 1)


@dataclasses.dataclass(frozen=True)
class BlockFormat:
    """A block-scaled format: element format, block size (int along an axis
    or a tuple over the last axes), scale format (e8m0, an 8-bit float such
    as e4m3 / ue5m3, or float32) and scale rule (see RULES; None: the scale
    format's first).  two_level: nvfp4's float32 tensor scale.

    Parameters
    ----------
    element
        Element format of at most 8 bits (not e8m0).
    block
        Block size: an int (along one axis) or a tuple of one or two ints
        over the last axes.
    scale_format
        e8m0, float32 or a float format of at most 8 bits.
    scale_rule
        e8m0: "floor", "ceil", "rceil", "even"; float32: "decode",
        "encode", "pow2"; 8-bit floats: "nvfp4".
    two_level
        A float32 tensor scale above the block scales (nvfp4).
    name
        A label for repr.

    Raises
    ------
    TypeError
        A block or two_level of the wrong kind, an element or scale format
        that is not a format.
    ValueError
        A block < 1, an element format that is e8m0 or wider than 8 bits,
        a scale format or rule outside those above.

    Examples
    --------
    >>> import lowprec as lp
    >>> bf = lp.BlockFormat("e2m1", 32, "e8m0", "floor")
    >>> bf.element, bf.scale_format
    (FloatFormat('float4_e2m1fn'), FloatFormat('float8_e8m0fnu'))
    >>> lp.BlockFormat("e4m3", (128, 128), "float32").scale_rule
    'decode'
    """
    element: Format
    block: Union[int, Tuple[int, ...]]
    scale_format: Format
    scale_rule: str = None  # type: ignore[assignment]  # None: the first
    two_level: bool = False
    name: Optional[str] = None

    if TYPE_CHECKING:
        # what the generated __init__ accepts (the fields hold the checked
        # values: Format objects, the rule's name)
        def __init__(self, element: FormatLike, block: BlockShape,
                     scale_format: FormatLike,
                     scale_rule: Optional[str] = None, *,
                     two_level: BoolLike = False,
                     name: Optional[str] = None) -> None: ...

    def __post_init__(self) -> None:
        el = get_format(self.element)
        if el.name == "float8_e8m0fnu":
            raise ValueError("element must not be e8m0 (float8_e8m0fnu "
                             "has no zero and no sign): use it as "
                             "scale_format")
        nb = el.bits if isinstance(el, IntFormat) else el.nbits
        if nb > 8:
            raise ValueError(f"element must be a format of at most 8 bits, "
                             f"got {el.name or el!r} ({nb} bits)")
        sf = get_format(self.scale_format)
        if not isinstance(sf, FloatFormat) or (
                sf.name != "float32" and sf.nbits > 8):
            raise ValueError(f"scale_format must be e8m0, float32 or a "
                             f"float format of at most 8 bits, got "
                             f"{sf.name or sf!r}")
        rules = _rules_of(sf)
        rule = rules[0] if self.scale_rule is None else self.scale_rule
        if rule not in rules:
            raise ValueError(f"scale_rule {rule!r} is not a rule of "
                             f"scale_format {sf.name}; use one of "
                             f"{', '.join(rules)}")
        object.__setattr__(self, "element", el)
        object.__setattr__(self, "scale_format", sf)
        object.__setattr__(self, "scale_rule", rule)
        object.__setattr__(self, "block", _check_block(self.block))
        object.__setattr__(self, "two_level",
                           check_bool(self.two_level, "two_level"))

    def __repr__(self) -> str:
        parts = [f"element={self.element.name!r}", f"block={self.block!r}",
                 f"scale_format={self.scale_format.name!r}",
                 f"scale_rule={self.scale_rule!r}"]
        if self.two_level:
            parts.append("two_level=True")
        if self.name:
            parts.append(f"name={self.name!r}")
        return f"BlockFormat({', '.join(parts)})"


def _recipe(name: str, element: str, block: BlockShape, scale: str,
            rule: str, two_level: bool = False) -> Tuple[str, BlockFormat]:
    return name, BlockFormat(element, block, scale, rule,
                             two_level=two_level, name=name)


_RECIPES = dict([
    _recipe("mxfp8_e4m3", "float8_e4m3fn", 32, "e8m0", "floor"),
    _recipe("mxfp8_e5m2", "float8_e5m2", 32, "e8m0", "floor"),
    _recipe("mxfp6_e3m2", "float6_e3m2fn", 32, "e8m0", "floor"),
    _recipe("mxfp6_e2m3", "float6_e2m3fn", 32, "e8m0", "floor"),
    _recipe("mxfp4", "float4_e2m1fn", 32, "e8m0", "floor"),
    _recipe("mxint8", "int8_narrow", 32, "e8m0", "floor"),
    _recipe("nvfp4", "float4_e2m1fn", 16, "float8_e4m3fn", "nvfp4", True),
    _recipe("fp8_1x128", "float8_e4m3fn", 128, "float32", "decode"),
    _recipe("fp8_128x128", "float8_e4m3fn", (128, 128), "float32",
            "decode"),
])


def recipes() -> Dict[str, BlockFormat]:
    """Every named block recipe by name."""
    return dict(_RECIPES)


def _recipe_of(name: str) -> Optional[BlockFormat]:
    """The BlockFormat of a recipe name, or None."""
    return _RECIPES.get(name, _RECIPES.get(name.lower()))
