"""Operand values for the kernels: codes decoded exactly to float32 or
float64, 8-bit codes with the table of their 256 values (the kernels
decode while they pack), and the NaN / infinity test on either."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from ..convert import decode
from ..formats import FloatFormat, IntFormat, get_format

_VIEW_DTYPES = {"bfloat16": np.dtype(ml_dtypes.bfloat16),
                "float16": np.dtype(np.float16),
                "float32": np.dtype(np.float32)}


def _decode(codes, fmt, dtype):
    """Exact values of codes as float32 / float64 (decode), through the
    NumPy / ml_dtypes casts where the codes are a native float type's bits
    (several times faster than the generic decode for 16-bit codes)."""
    view = _VIEW_DTYPES.get(fmt.name) if isinstance(fmt, FloatFormat) \
        else None
    if view is not None and fmt == get_format(fmt.name):
        with np.errstate(invalid="ignore"):      # signalling NaN codes
            return codes.view(view).astype(dtype)
    return decode(codes, fmt, dtype=dtype)


def _source(codes, fmt, dtype):
    """An operand for the kernels: (uint8 codes, table of the values of
    the 256 bytes) for formats of at most 8 bits, so that the kernels
    decode while they pack; else (decoded values, None)."""
    if codes.dtype.itemsize != 1:
        return _decode(codes, fmt, dtype), None
    if isinstance(fmt, IntFormat):
        valid = np.arange(fmt.min, fmt.max + 1).astype(fmt.code_dtype)
    else:
        valid = np.arange(1 << fmt.nbits).astype(fmt.code_dtype)
    lut = np.zeros(256, dtype)
    lut[valid.view(np.uint8)] = _decode(valid, fmt, dtype)
    return codes.view(np.uint8), lut


def _has_specials(x, lut, fmt):
    """Does the operand hold a NaN or an infinity?  From the codes when
    they come with a table: the special codes of a float format are the
    top magnitudes (IEEE inf/NaN, OCP E4M3's NaN) or the one code 100...0
    (fnuz NaN), each a cheap vectorised test."""
    if lut is None:
        return not np.isfinite(x).all()
    bad = np.flatnonzero(~np.isfinite(lut))
    if bad.size == 0:
        return False
    if isinstance(fmt, FloatFormat):
        mask = (1 << (fmt.ebits + fmt.mbits)) - 1
        mags = np.unique(bad & mask)
        if fmt.signed and bad.size == 2 * mags.size \
                and mags[-1] == mask and mags.size == mask - mags[0] + 1:
            return bool(((x & np.uint8(mask)) >= mags[0]).any())
        if bad.size == 1:
            return bool((x == np.uint8(bad[0])).any())
    return bool(np.isin(x, bad.astype(np.uint8)).any())
