"""The rounding table, the C option struct (lp_opts) and the kernels'
error flags turned into exceptions: shared by convert, matmul, jit and
_cuda.  Internal module: imports only the C library and _validate.
"""
from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import ml_dtypes
import numpy as np

from . import _validate as v
from ._clib import ffi, lib

if TYPE_CHECKING:
    from ._typing import Rounding

__all__ = ["ROUNDING", "ROUNDING_NAMES", "BFLOAT16", "SATURATE",
           "check_rounding", "check_saturate", "mode_name", "make_opts",
           "attach_random_bits",
           "as_float", "raise_errors"]

ROUNDING = {
    "nearest_even": lib.LP_RNE, "rne": lib.LP_RNE,
    "nearest_away": lib.LP_RNA, "rna": lib.LP_RNA,
    "toward_zero": lib.LP_RZ, "rz": lib.LP_RZ,
    "toward_positive": lib.LP_RU, "ru": lib.LP_RU,
    "toward_negative": lib.LP_RD, "rd": lib.LP_RD,
    "to_odd": lib.LP_RO, "ro": lib.LP_RO,
    "stochastic": lib.LP_SR, "sr": lib.LP_SR,
}
ROUNDING_NAMES: tuple[Rounding, ...] = (
    "nearest_even", "nearest_away", "toward_zero", "toward_positive",
    "toward_negative", "to_odd", "stochastic")

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

# enum lp_saturate by the names of lowprec._validate.SATURATE_MODES
SATURATE = {"ovfinf": lib.LP_SAT_OVFINF, "satfinite": lib.LP_SAT_FINITE,
            "satpropagate": lib.LP_SAT_PROPAGATE}


def check_rounding(rounding, name="rounding") -> int:
    """The lp_rounding value of a rounding name or alias."""
    return ROUNDING[v.check_choice(rounding, name, ROUNDING)]


def check_saturate(saturate, name="saturate") -> int:
    """The lp_saturate value of saturate (a bool or a policy name)."""
    return SATURATE[v.check_saturate(saturate, name)]


def mode_name(mode) -> str:
    """The full name of an lp_rounding value."""
    return next(k for k in ROUNDING_NAMES if ROUNDING[k] == mode)


def make_opts(fmt, rounding, saturate, subnormals, seed, rbits, zero_point):
    """A checked lp_opts.  seed=None draws a fresh seed for stochastic
    rounding (0 otherwise); an array zero_point (checked against the data
    by the caller, lowprec._validate.check_zero_point) leaves the struct's
    zero point 0."""
    mode = check_rounding(rounding)
    o = ffi.new("lp_opts *")
    o.rounding = mode
    o.saturate = check_saturate(saturate)
    o.keep_subnormals = v.check_bool(subnormals, "subnormals")
    o.rbits = v.check_rbits(rbits)
    seed = v.check_seed(seed)
    if seed is None:
        seed = secrets.randbits(64) if mode == lib.LP_SR else 0
    o.seed = seed
    zp = v.check_zero_point(zero_point, fmt, shape=np.shape(zero_point))
    o.zero_point = zp if isinstance(zp, int) else 0
    return o


def attach_random_bits(opts, random_bits, shape, rbits):
    """Points opts at the caller's random words (lp_opts.random) and sets
    its rbits to their R (lowprec._validate.check_random_bits).  Returns
    the flat uint64 words, which must outlive every kernel call with opts,
    or None (random_bits None: the generator stays)."""
    checked = v.check_random_bits(random_bits, shape, rbits,
                                  opts.rounding == lib.LP_SR)
    if checked is None:
        return None
    words, R = checked
    opts.rbits = R
    opts.random = ffi.cast("const uint64_t *", words.ctypes.data)
    return words


def as_float(a: np.ndarray) -> np.ndarray:
    """float16/32/64 arrays as they are; bfloat16 widened exactly to
    float32 through its bits (no casting warnings for NaN)."""
    if a.dtype == BFLOAT16:
        return (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return a


def raise_errors(err, fmt, x):
    """Raises the ValueError of the kernels' error flags err for input x."""
    label = fmt.name or repr(fmt)
    xf = as_float(x)
    if err & lib.LP_ERR_NAN:
        count = int(np.isnan(xf).sum()) if xf.dtype.kind == "f" else 0
        raise ValueError(f"{label} has no NaN encoding: the input has "
                         f"{count} NaN value(s)")
    if err & lib.LP_ERR_NEGATIVE:
        count = int((xf < 0).sum())
        raise ValueError(f"{label} is unsigned: the input has {count} "
                         "negative value(s) that do not round to 0")
    if err & lib.LP_ERR_ZERO:
        raise ValueError(f"{label} has neither zero nor NaN: the input has "
                         f"{int((xf == 0).sum())} zero(s)")
