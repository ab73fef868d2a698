"""One check per kind of argument, shared by every entry point.

NumPy's conventions decide what is accepted:

* an integer is a Python int or a NumPy integer (a 0-d integer array
  too), never a bool, a float, a string or a float array;
* a boolean is a bool or a NumPy bool;
* a seed follows ``np.random.default_rng``: a non-negative integer, here
  below 2^64 (the generator key is 64 bits; larger seeds are refused
  rather than wrapped).

The wrong kind of value raises ``TypeError``, a value out of range
``ValueError``; each message names the argument, the value and what is
allowed.  ``name=`` sets the argument's name in the message (e.g.
"a_scale").  Internal module: it depends on NumPy only, never on the
public modules of lowprec (formats are duck-typed by their ``kind``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["is_integer", "check_int", "check_bool", "check_saturate",
           "saturate_value", "SATURATE_MODES", "check_seed",
           "check_rbits", "check_random_bits", "check_count",
           "check_choice", "check_scale",
           "check_scalar_scale", "check_zero_point", "check_code",
           "check_out", "describe_value", "ZERO_POINT_LIMIT", "SEED_LIMIT"]

SEED_LIMIT = 1 << 64
# |zero_point| limit: every zero point of every integer format (at most 16
# bits: uint16's 65535) with room to spare.
ZERO_POINT_LIMIT = 1 << 16


def _kind(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype}"
    return type(value).__name__


def _show(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def describe_value(value) -> str:
    """The value and its kind as the messages show them: "'4' (str)"."""
    return f"{_show(value)} ({_kind(value)})"


def _label(fmt) -> str:
    return getattr(fmt, "name", None) or repr(fmt)


def is_integer(value) -> bool:
    """Python int, NumPy integer or 0-d integer array; not bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return (isinstance(value, np.ndarray) and value.ndim == 0
            and value.dtype.kind in "iu")


def check_int(value, name, lo=None, hi=None) -> int:
    """value as a Python int, lo <= value <= hi (either bound may be None)."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an integer, got {_show(value)} "
                        f"({_kind(value)})")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise ValueError(f"{name} must be an integer in [{lo_s}, {hi_s}], "
                         f"got {v}")
    return v


def check_bool(value, name) -> bool:
    """value as a bool: only True / False and NumPy bools."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_show(value)} "
                        f"({_kind(value)})")
    return bool(value)


SATURATE_MODES = ("ovfinf", "satfinite", "satpropagate")


def check_saturate(value, name="saturate") -> str:
    """An overflow policy as its name: False (or "ovfinf"), True (or
    "satfinite"), "satpropagate"; NumPy bools count as bools."""
    if isinstance(value, (bool, np.bool_)):
        return SATURATE_MODES[int(bool(value))]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be True, False or one of "
                        f"{', '.join(map(repr, SATURATE_MODES))}; got "
                        f"{_show(value)} ({_kind(value)})")
    if value not in SATURATE_MODES:
        raise ValueError(f"unknown {name} {value!r}; use True, False or one "
                         f"of {', '.join(map(repr, SATURATE_MODES))}")
    return value


def saturate_value(value, name="saturate"):
    """check_saturate's policy in the form objects keep it: False
    ("ovfinf"), True ("satfinite") or "satpropagate"."""
    mode = check_saturate(value, name)
    return {"ovfinf": False, "satfinite": True}.get(mode, mode)


def check_seed(seed, name="seed"):
    """None (the caller draws a fresh seed) or an integer in [0, 2^64)."""
    if seed is None:
        return None
    if not is_integer(seed):
        raise TypeError(f"{name} must be None or an integer in [0, 2^64), "
                        f"got {_show(seed)} ({_kind(seed)})")
    s = int(seed)
    if not 0 <= s < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2^64) (as "
                         f"np.random.default_rng, non-negative), got {s}")
    return s


def check_rbits(rbits, name="rbits") -> int:
    """None (64) or an integer in 1..64: the random bits of stochastic
    rounding."""
    if rbits is None:
        return 64
    return check_int(rbits, name, 1, 64)


def check_random_bits(random_bits, shape, rbits, stochastic,
                      name="random_bits", what="x"):
    """None, or (words, R): the caller's random integers for stochastic
    rounding, an unsigned integer array broadcast to shape, as a flat
    contiguous uint64 array, and R the random bits (rbits where given, else
    the array dtype's width).  Every value must be below 2^R; stochastic
    says whether the rounding is "stochastic" (it must be)."""
    if random_bits is None:
        return None
    if not stochastic:
        raise ValueError(f"{name} replaces the generator of stochastic "
                         "rounding: it needs rounding='stochastic'")
    r = np.asarray(random_bits)
    if r.dtype.kind != "u":
        raise TypeError(f"{name} must be an array of unsigned integers "
                        f"(uint8, uint16, uint32 or uint64), got "
                        f"{_show(random_bits)} (dtype {r.dtype})")
    width = 8 * r.dtype.itemsize
    R = width if rbits is None else check_rbits(rbits)
    if r.size and R < 64 and int(r.max()) >> R:
        source = "rbits" if rbits is not None else f"the width of {r.dtype}"
        raise ValueError(f"{name} values must be below 2^{R} (R = {source})"
                         f", got {int(r.max())}")
    try:
        ok = np.broadcast_shapes(tuple(shape), r.shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {r.shape} does not broadcast to "
                         f"{what} of shape {tuple(shape)}")
    words = np.ascontiguousarray(np.broadcast_to(r, tuple(shape)),
                                 dtype=np.uint64).reshape(-1)
    return words, R


def check_count(n, name="n") -> int:
    """A count: an integer >= 0."""
    return check_int(n, name, 0, None)


def check_choice(value, name, choices):
    """One of the strings in choices (a dict's keys or a sequence)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of "
                        f"{', '.join(choices)}; got {_show(value)} "
                        f"({_kind(value)})")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of "
                         f"{', '.join(choices)}")
    return value


def _real_array(scale, name):
    """scale as a real NumPy array.  ml_dtypes arrays (bfloat16, float8_*,
    float8_e8m0fnu as MX scales, int4, ...) are widened to float64, which
    holds every one of their values exactly (e8m0 0xFF becomes NaN and is
    refused by the callers)."""
    s = np.asarray(scale)
    if s.dtype.type.__module__.split(".")[0] == "ml_dtypes":
        s = s.astype(np.float64)
    if s.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real number or array, got "
                        f"{_show(scale)} (dtype {s.dtype})")
    return s


def check_scale(scale, shape, compute_dtype, *, name="scale", what="x"):
    """None, one scale (returned as a Python float) or an array of scales
    broadcast to shape (returned in compute_dtype).  Every scale must be
    finite and > 0 in compute_dtype."""
    if scale is None:
        return None
    s = _real_array(scale, name)
    with np.errstate(over="ignore", invalid="ignore"):
        sc = s.astype(compute_dtype)
        bad = ~(np.isfinite(sc) & (sc > 0))
    if bad.any():
        first = s.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(f"{name} must be finite and > 0 in "
                         f"{np.dtype(compute_dtype).name}; got {first!r} "
                         f"({int(bad.sum())} bad value(s))")
    if sc.size == 1 and sc.ndim <= len(shape):
        return float(sc.reshape(-1)[0])      # one scale for every element
    try:
        out_shape = np.broadcast_shapes(shape, sc.shape)
    except ValueError:
        out_shape = None
    if out_shape != tuple(shape):
        raise ValueError(f"{name} of shape {s.shape} does not broadcast to "
                         f"{what} of shape {tuple(shape)}")
    return sc


def check_scalar_scale(scale, *, in_f64=None, name="scale"):
    """(has_scale, s32, s64) of None or one real scale.  The scale must be
    finite and > 0 in the precision of the computation: float64 (in_f64
    True), float32 (False) or both (None: a function serving either)."""
    if scale is None:
        return False, np.float32(1.0), 1.0
    s = _real_array(scale, name)
    if s.ndim != 0:
        raise TypeError(f"{name} must be a single real number here, got an "
                        f"array of shape {s.shape}")
    s64 = float(s)
    with np.errstate(over="ignore"):
        s32 = np.float32(s64)
    checks = {None: (s64, float(s32)), True: (s64,), False: (float(s32),)}
    if not all(math.isfinite(v) and v > 0 for v in checks[in_f64]):
        where = {None: "float32 and float64", True: "float64",
                 False: "float32"}[in_f64]
        raise ValueError(f"{name} must be finite and > 0 in {where}; got "
                         f"{scale!r}")
    return True, s32, s64


def check_zero_point(zero_point, fmt, shape=None, *, name="zero_point",
                     what="x"):
    """None, one integer (a Python int) or, where shape is given, an
    integer array broadcast to shape (returned as int64).  Only integer
    formats take a zero point; every value must lie within +-2^16 (which
    holds every value of every integer format)."""
    if zero_point is None:
        return None
    if getattr(fmt, "kind", None) != "int":
        raise ValueError(f"{name} applies to integer formats only, not "
                         f"{_label(fmt)}")
    lim = ZERO_POINT_LIMIT
    if not is_integer(zero_point) and np.ndim(zero_point) == 0:
        raise TypeError(f"{name} must be an integer (or an integer array), "
                        f"got {_show(zero_point)} ({_kind(zero_point)})")
    if is_integer(zero_point):
        v = int(zero_point)
        if not -lim <= v <= lim:
            raise ValueError(f"{name} must be an integer in [{-lim}, {lim}] "
                             f"for {_label(fmt)}, got {v}")
        return v
    if shape is None:
        raise TypeError(f"{name} must be a single integer here, got "
                        f"{_show(zero_point)} ({_kind(zero_point)})")
    zp = np.asarray(zero_point)
    if zp.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {zp.dtype}")
    if zp.size:
        lo, hi = zp.min(), zp.max()
        if lo < -lim or hi > lim:
            bad = lo if lo < -lim else hi
            raise ValueError(f"{name} values must be integers in "
                             f"[{-lim}, {lim}] for {_label(fmt)}, got "
                             f"{int(bad)}")
    try:
        ok = np.broadcast_shapes(tuple(shape), zp.shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {zp.shape} does not broadcast to "
                         f"{what} of shape {tuple(shape)}")
    return zp.astype(np.int64)


def code_range(fmt) -> tuple:
    """(lowest, highest) code of fmt: the integers of an integer format,
    0 .. 2^nbits - 1 for a float format."""
    if getattr(fmt, "kind", None) == "int":
        return fmt.min, fmt.max
    return 0, (1 << fmt.nbits) - 1


def check_code(code, fmt, name="code") -> int:
    """One code of fmt, as a Python int."""
    lo, hi = code_range(fmt)
    if not is_integer(code):
        raise TypeError(f"{name} must be an integer code of {_label(fmt)}, "
                        f"got {_show(code)} ({_kind(code)})")
    c = int(code)
    if not lo <= c <= hi:
        raise ValueError(f"{name} {c} is not a code of {_label(fmt)} "
                         f"(range [{lo}, {hi}])")
    return c


def check_out(out, shape, dtype, inputs=(), name="out"):
    """None or a writeable NumPy array of dtype and shape that does not
    overlap any of inputs."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got "
                        f"{type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected "
                         f"{tuple(shape)}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for a in inputs:
        if isinstance(a, np.ndarray) and np.shares_memory(out, a):
            raise ValueError(f"{name} overlaps the input")
    return out
