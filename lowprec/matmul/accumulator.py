"""Accumulator: the value object of the sequential accumulation rule.

An ``Accumulator`` names the format each step of a block's sum is rounded
to, with the rounding mode, saturation, subnormal handling and stochastic
rounding seed; ``scaled_matmul(..., accumulate=Accumulator(...))`` runs
the rule (_rules.py, kernel lp_accumulate).  Immutable, hashable and
picklable: the same Accumulator gives the same bits every call.
"""
from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Optional

from .. import _validate as v
from .._clib import lib
from .._options import check_rounding, make_opts
from ..formats import FloatFormat, get_format

if TYPE_CHECKING:
    from .._typing import BoolLike, FormatLike, IntLike, Rounding, Seed

__all__ = ["Accumulator"]


class Accumulator:
    """Sequential accumulation rounded to ``format`` after every step.

    ``scaled_matmul(..., accumulate=Accumulator("bfloat16"))`` computes each
    K-block's sum as acc = +0, then for k in order
    ``acc = round(acc + a[i, k] * b[k, j])``: the product exact, the exact
    sum rounded once to ``format`` with ``rounding`` (any of lowprec's
    modes), ``saturate`` and ``subnormals`` as in `lowprec.encode`.
    An exactly zero sum gets IEEE 754's sign (+0, or -0 when both terms
    are -0; under toward_negative -0 unless both are +0).  NaN and infinity
    follow IEEE 754 (NaN operands or inf * 0 give NaN, inf + -inf gives
    NaN) and are then stored as encode stores them (a format without NaN
    raises ValueError).  Stochastic rounding draws for output element e
    (flat C-order index over the batched output) and step k the bits of
    element index e * K + k, from ``seed`` (fixed when the Accumulator is
    made: the same Accumulator gives the same bits every call).

    ``format`` must be a signed float format with a zero.  The other
    arguments are checked when the Accumulator is made, as by
    `lowprec.encode`: ``saturate`` and ``subnormals`` are bools,
    ``seed`` None or an integer in [0, 2^64) (as np.random.default_rng;
    not a float or str), ``rbits`` None (64) or an integer in 1..64.

    Parameters
    ----------
    format
        The format of the running sum (a signed float format with a zero).
    rounding
        Rounding of every step.
    saturate
        Overflow to ±max instead of ±inf.
    subnormals
        False flushes subnormal sums to zero.
    seed
        Stochastic rounding's seed (None: drawn now, then fixed).
    rbits
        Random bits of stochastic rounding, 1..64 (None: 64).

    Raises
    ------
    TypeError
        An argument of the wrong kind.
    ValueError
        An unsigned or integer format, a format without zero, an unknown
        rounding, a seed or rbits out of range.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> acc = lp.Accumulator("bfloat16", "toward_zero")
    >>> acc
    Accumulator('bfloat16', 'toward_zero')
    >>> ones = lp.encode(np.ones((1, 300)), "e4m3")
    >>> lp.scaled_matmul(ones, ones.T, a_format="e4m3", b_format="e4m3",
    ...                  accumulate=acc)            # 256 + 1 rounds to 256
    array([[256.]], dtype=float32)
    """

    __slots__ = ("format", "rounding", "saturate", "subnormals", "seed",
                 "rbits")
    format: FloatFormat
    rounding: Rounding
    saturate: bool
    subnormals: bool
    seed: int
    rbits: int

    def __init__(self, format: FormatLike,
                 rounding: Rounding = "nearest_even", *,
                 saturate: BoolLike = False, subnormals: BoolLike = True,
                 seed: Seed = None, rbits: Optional[IntLike] = None) -> None:
        try:
            fmt = get_format(format)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"Accumulator format: {exc}") from None
        if not isinstance(fmt, FloatFormat) or not fmt.signed \
                or not fmt.has_zero:
            raise ValueError(f"Accumulator format must be a signed float "
                             f"format with a zero, not {fmt.name or fmt!r}")
        mode = check_rounding(rounding)
        saturate = v.saturate_value(saturate)
        subnormals = v.check_bool(subnormals, "subnormals")
        seed = v.check_seed(seed)
        if seed is None:
            seed = secrets.randbits(64) if mode == lib.LP_SR else 0
        rbits = v.check_rbits(rbits)
        object.__setattr__(self, "format", fmt)
        object.__setattr__(self, "rounding", rounding)
        object.__setattr__(self, "saturate", saturate)
        object.__setattr__(self, "subnormals", subnormals)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "rbits", rbits)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Accumulator is immutable")

    def __reduce__(self):
        return (_accumulator, (self.format, self.rounding, self.saturate,
                               self.subnormals, self.seed, self.rbits))

    def _key(self):
        return (self.format, check_rounding(self.rounding), self.saturate,
                self.subnormals, self.seed, self.rbits)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Accumulator) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = ""
        if self.saturate is not False:
            extra += f", saturate={self.saturate!r}"
        if not self.subnormals:
            extra += ", subnormals=False"
        if check_rounding(self.rounding) == lib.LP_SR:
            extra += f", seed={self.seed}, rbits={self.rbits}"
        return (f"Accumulator({self.format.name or self.format!r}, "
                f"{self.rounding!r}{extra})")

    def _opts(self):
        return make_opts(self.format, self.rounding, self.saturate,
                         self.subnormals, self.seed, self.rbits, None)

    def _is_fp32_fma(self):
        """Exactly the "fp32" rule: float32, nearest even, IEEE overflow."""
        return (self.format == get_format("float32")
                and check_rounding(self.rounding) == lib.LP_RNE
                and self.saturate is False and self.subnormals)


def _accumulator(fmt, rounding, saturate, subnormals, seed, rbits):
    """Unpickles an Accumulator (module-level, so pickle can find it)."""
    return Accumulator(fmt, rounding, saturate=saturate,
                       subnormals=subnormals, seed=seed, rbits=rbits)
