"""Format geometry for choosing a rule or plan: the binades and quantum of
a format's values, and whether they are all float32 numbers."""
from __future__ import annotations

from ..formats import IntFormat


def _fmt_range(f):
    """(top, q): every finite non-zero value v has |v| < 2^(top+1) and is a
    multiple of 2^q."""
    if isinstance(f, IntFormat):
        return max(abs(f.min), f.max).bit_length() - 1, 0
    return f.emax, f.emin - f.mbits


def _fmt_width(f):
    """Bits from the quantum to the top binade: top - q + 1."""
    top, q = _fmt_range(f)
    return top - q + 1


def _exact_in_f32(f):
    """Every finite value of f is a float32."""
    if isinstance(f, IntFormat):
        return True
    return f.mbits <= 23 and f.emax <= 127 and f.emin - f.mbits >= -149


def _clog2(n):
    """ceil(log2(n)) for n >= 1 (0 for n <= 1)."""
    return max(0, int(n - 1).bit_length())
