"""Exact reference of block-scaled quantization (API.md section 8).

Written from API.md section 8 alone, independently of the kernels
(lowprec/blocks.py, csrc/blocks.c): every quantity is an exact
``fractions.Fraction`` and every rounding is named where the contract
names it.  Element rounding uses ``lowprec.reference.ref_encode`` (itself
an exact Fraction implementation); R32 (round to float32, nearest even)
is ``ref_encode`` into float32 followed by ``ref_decode``.

Entry points
------------
``ref_quantize_blocks(x, recipe, **overrides)`` -> ``RefBlocks`` (codes,
    scale codes, scale values, tensor_scale, element format, geometry)
``ref_dequantize(rb, dtype)``  exact element * scale (* tensor_scale),
    rounded once to float32 or float64; NaN for a NaN/inf block
``e8m0_exponent(amax, rule, element)``  the e8m0 scale exponent of one
    block (the clamp included), for hand-computed tests
``RECIPES``  the table of API.md section 8, transcribed

Where API.md leaves something open, the choice made here is marked
"ASSUMPTION" (the test report lists them).
"""
import math
from dataclasses import dataclass, field
from fractions import Fraction
from types import SimpleNamespace

import numpy as np

from lowprec.reference import ref_decode, ref_encode, ref_limits, ref_random


def _float_desc(name, ebits, mbits, bias, *, infs=True, nans="ieee",
                negzero=True, subnormals=True, signed=True):
    return SimpleNamespace(kind="float", name=name, ebits=ebits, mbits=mbits,
                           bias=bias, infs=infs, nans=nans, negzero=negzero,
                           subnormals=subnormals, signed=signed)


# Format descriptions, transcribed from API.md section 1 (not taken from
# lowprec.formats, so a wrong registry entry cannot hide a wrong kernel).
F32 = _float_desc("float32", 8, 23, 127)
F64 = _float_desc("float64", 11, 52, 1023)
E4M3 = _float_desc("float8_e4m3fn", 4, 3, 7, infs=False, nans="top")
E5M2 = _float_desc("float8_e5m2", 5, 2, 15)
E3M2 = _float_desc("float6_e3m2fn", 3, 2, 3, infs=False, nans="none")
E2M3 = _float_desc("float6_e2m3fn", 2, 3, 1, infs=False, nans="none")
E2M1 = _float_desc("float4_e2m1fn", 2, 1, 1, infs=False, nans="none")
E8M0 = _float_desc("float8_e8m0fnu", 8, 0, 127, infs=False, nans="top",
                   negzero=False, subnormals=False, signed=False)
# mxint8: int8 read as q / 64.  ASSUMPTION: "saturate to +-max" is taken
# literally, max = 127/64, so the codes stay in [-127, 127] (as
# microxcaling's symmetric clamp); -128 is never produced.
INT8_SYM = SimpleNamespace(kind="int", name="int8", bits=8, signed=True,
                           narrow=True)


@dataclass(frozen=True)
class Element:
    """An element format of a block recipe."""
    name: str            # the lowprec format name of its codes
    desc: object         # description for lowprec.reference
    max: Fraction        # largest finite value (as a value, q/64 for mxint8)
    emax: int            # exponent of max
    mbits: int           # mantissa width (used by the 'even' rule)
    unit: Fraction = Fraction(1)   # value of code 1 (1/64 for mxint8)

    @property
    def is_int(self):
        return self.desc.kind == "int"

    def encode(self, v, rounding, rand=None, saturate=True):
        """Code of the exact value v (already divided by the scale)."""
        if self.is_int:
            v = v / self.unit if isinstance(v, Fraction) else v
        return ref_encode(self.desc, v, rounding=rounding, saturate=saturate,
                          rand=rand)

    def value(self, code):
        if self.is_int:
            return Fraction(int(code)) * self.unit
        return ref_decode(self.desc, int(code))


def _element(desc):
    lim = ref_limits(desc)
    return Element(desc.name, desc, lim["max"], lim["emax"], desc.mbits)


ELEMENTS = {d.name: _element(d) for d in (E4M3, E5M2, E3M2, E2M3, E2M1)}
# 127/64 = 1.111111b x 2^0: emax 0, 6 mantissa bits below the leading one.
# ASSUMPTION: the 'even' rule rounds mxint8's amax to those 6 bits.
ELEMENTS["mxint8"] = Element("int8", INT8_SYM, Fraction(127, 64), 0, 6,
                             Fraction(1, 64))
ALIASES = {"e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2",
           "fp6_e3m2": "float6_e3m2fn", "fp6_e2m3": "float6_e2m3fn",
           "fp4": "float4_e2m1fn", "e2m1": "float4_e2m1fn"}

# API.md section 8, the table of named recipes.
RECIPES = {
    "mxfp8_e4m3": ("float8_e4m3fn", 32, "e8m0", "floor"),
    "mxfp8_e5m2": ("float8_e5m2", 32, "e8m0", "floor"),
    "mxfp6_e3m2": ("float6_e3m2fn", 32, "e8m0", "floor"),
    "mxfp6_e2m3": ("float6_e2m3fn", 32, "e8m0", "floor"),
    "mxfp4": ("float4_e2m1fn", 32, "e8m0", "floor"),
    "mxint8": ("mxint8", 32, "e8m0", "floor"),
    "nvfp4": ("float4_e2m1fn", 16, "e4m3", "nvfp4"),
    "fp8_1x128": ("float8_e4m3fn", 128, "float32", "decode"),
    "fp8_128x128": ("float8_e4m3fn", (128, 128), "float32", "decode"),
}
RULES = {"e8m0": ("floor", "ceil", "rceil", "even"), "e4m3": ("nvfp4",),
         "float32": ("decode", "encode", "pow2")}


class Unspecified(Exception):
    """A case API.md does not define (the reference refuses to guess)."""


# ---------------------------------------------------------------------------
# Exact helpers
# ---------------------------------------------------------------------------

def floor_log2(a):
    """E with 2^E <= a < 2^(E+1), a > 0 exact."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > a else e


def ceil_log2(a):
    """Smallest E with a <= 2^E, a > 0 exact."""
    e = floor_log2(a)
    return e if Fraction(2) ** e == a else e + 1


def R32(v):
    """v rounded once to float32 (nearest even); Fraction, or a float for
    inf / nan.  Overflow gives inf, as IEEE arithmetic."""
    if not isinstance(v, Fraction):
        return v
    return ref_decode(F32, ref_encode(F32, v))


def f32_bits(v):
    """float32 bit pattern of the exact value v rounded once (RNE)."""
    return ref_encode(F32, v)


def round_half_away_to_bits(a, mbits):
    """a > 0 rounded to mbits bits below its leading one, half-way cases
    away from zero, the carry spilling into the exponent."""
    q = Fraction(2) ** (floor_log2(a) - mbits)
    return math.floor(a / q + Fraction(1, 2)) * q


def _exact(v):
    """A finite float as an exact Fraction."""
    return Fraction(float(v))


# ---------------------------------------------------------------------------
# Scale rules
# ---------------------------------------------------------------------------

def e8m0_exponent(amax, rule, element):
    """The e8m0 scale exponent of a finite block with exact amax >= 0."""
    el = ELEMENTS[element] if isinstance(element, str) else element
    if amax == 0:
        return -127                                  # all-zero block
    if rule == "floor":                              # OCP MX v1.0
        e = floor_log2(amax) - el.emax
    elif rule == "ceil":                             # no element overflows
        e = ceil_log2(amax / el.max)
    elif rule == "rceil":
        r = R32(amax / el.max)
        # r == 0 (underflow) lies below every power of two the clamp keeps;
        # ASSUMPTION: r == inf (a float64 amax beyond float32) lies above
        if r == 0:
            e = -127
        elif not isinstance(r, Fraction):
            e = 127
        else:
            e = ceil_log2(r)
    elif rule == "even":
        e = floor_log2(round_half_away_to_bits(amax, el.mbits)) - el.emax
    else:
        raise ValueError(f"unknown e8m0 rule {rule!r}")
    return min(max(e, -127), 127)


@dataclass
class RefBlocks:
    codes: np.ndarray              # int64, x's shape (int values for mxint8)
    scale_codes: np.ndarray        # int64 bits: e8m0 / e4m3 codes, float32 bits
    scale_values: list             # flat list of exact scales (nan for NaN)
    scale_shape: tuple
    tensor_scale: object           # Fraction (R32(1/S)) or None
    element: Element
    scale_format: str
    rule: str
    axes: tuple
    block: tuple
    nan_block: np.ndarray = field(default=None)   # bool, scale_shape


def _geometry(shape, block, axis):
    nd = len(shape)
    if isinstance(block, (int, np.integer)):
        if not -nd <= axis < nd:
            raise ValueError(f"axis {axis} out of range for {nd}-d input")
        axes, sizes = (axis % nd,), (int(block),)
    else:
        sizes = tuple(int(b) for b in block)
        axes = tuple(range(nd - len(sizes), nd))
    sshape = list(shape)
    for a, b in zip(axes, sizes):
        sshape[a] = -(-shape[a] // b)
    return axes, sizes, tuple(sshape)


def _block_slices(shape, axes, sizes, sidx):
    sl = []
    for d in range(len(shape)):
        if d in axes:
            b = sizes[axes.index(d)]
            sl.append(slice(sidx[d] * b, (sidx[d] + 1) * b))
        else:
            sl.append(sidx[d])
    return tuple(sl)


def ref_quantize_blocks(x, recipe, *, block=None, axis=-1, scale_format=None,
                        scale_rule=None, tensor_amax=None,
                        rounding="nearest_even", seed=None):
    """quantize_blocks of API.md section 8, exactly.  x: a NumPy float array
    (float16/32/64; its values are taken exactly)."""
    x = np.asarray(x)
    el_name, rblock, sfmt, rule = RECIPES[recipe]
    el = ELEMENTS[el_name]
    block = rblock if block is None else block
    sfmt = scale_format or sfmt
    rule = scale_rule or rule
    if sfmt == "float32" and recipe != "fp8_1x128" and recipe != "fp8_128x128" \
            and scale_rule is None:
        raise Unspecified("float32 scale format needs an explicit rule")
    if rule not in RULES[sfmt]:
        raise ValueError(f"scale_rule {rule!r} not available for {sfmt}")
    if tuple(np.atleast_1d(block)) and min(np.atleast_1d(block)) < 1:
        raise ValueError(f"block {block} < 1")
    axes, sizes, sshape = _geometry(x.shape, block, axis)
    xf = x.astype(np.float64)                     # exact for float16/32/64
    flat_index = np.arange(x.size).reshape(x.shape)
    codes = np.zeros(x.shape, np.int64)
    scodes = np.zeros(sshape, np.int64)
    nan_block = np.zeros(sshape, bool)
    svalues = []

    # nvfp4, level one: S from the tensor amax T
    S = tensor_scale = None
    if rule == "nvfp4":
        if tensor_amax is None:
            if not np.all(np.isfinite(xf)):
                raise Unspecified("nvfp4 tensor amax of a non-finite tensor")
            T = max((abs(_exact(v)) for v in xf.ravel()), default=Fraction(0))
        else:
            T = _exact(tensor_amax)
        S = R32(Fraction(448 * 6) / T) if T != 0 else None
        if S is None or S == 0 or not isinstance(S, Fraction):
            S = Fraction(1)
        tensor_scale = R32(1 / S)
        inv6 = R32(Fraction(1, 6))
        S_6 = R32(S * inv6)

    rnd = "nearest_even" if rounding == "rne" else rounding
    stochastic = rnd in ("stochastic", "sr")

    def rand(i):
        return ref_random(seed, int(i)) if stochastic else None

    for sidx in np.ndindex(*sshape):
        sl = _block_slices(x.shape, axes, sizes, sidx)
        vals = xf[sl]
        idx = flat_index[sl]
        if not np.all(np.isfinite(vals)):             # NaN / inf block
            nan_block[sidx] = True
            scodes[sidx] = {"e8m0": 0xFF, "e4m3": 0x7F,
                            "float32": 0x7FC00000}[sfmt]
            svalues.append(math.nan)
            codes[sl] = 0
            continue
        ex = [_exact(v) for v in vals.ravel()]
        amax = max((abs(v) for v in ex), default=Fraction(0))
        out = np.zeros(vals.shape, np.int64).ravel()
        ii = idx.ravel()
        if sfmt == "e8m0":
            e = e8m0_exponent(amax, rule, el)
            X = Fraction(2) ** e
            scodes[sidx] = e + 127
            svalues.append(X)
            for k, v in enumerate(ex):
                if v == 0:           # keeps -0.0's sign (see ref_encode)
                    out[k] = el.encode(float(vals.ravel()[k]), rnd, rand(ii[k]))
                else:
                    out[k] = el.encode(v / X, rnd, rand(ii[k]))
        elif sfmt == "e4m3":                          # nvfp4, level two
            s = ref_encode(E4M3, R32(amax * S_6), rounding="nearest_even",
                           saturate=True)
            sv = ref_decode(E4M3, s)
            scodes[sidx] = s
            svalues.append(sv)
            if sv == 0:
                f = None                              # signed zeros
            else:
                d = R32(sv * tensor_scale)
                if d == 0:
                    raise Unspecified("nvfp4: value(s) * R32(1/S) underflows")
                f = R32(1 / d)
                if not isinstance(f, Fraction):
                    raise Unspecified("nvfp4: encode factor overflows")
            for k, v in enumerate(ex):
                xv = float(vals.ravel()[k])
                if f is None or v == 0:
                    out[k] = el.encode(math.copysign(0.0, xv), rnd, rand(ii[k]))
                else:
                    out[k] = el.encode(R32(v * f), rnd, rand(ii[k]))
        else:                                         # float32 scales
            if amax == 0:
                s, mul = Fraction(1), Fraction(1)
                step = lambda v: R32(v * mul)         # noqa: E731
            elif rule == "decode":                    # DeepSeek-V3
                s = R32(amax / el.max)
                if s == 0:
                    raise Unspecified("decode: amax / max underflows")
                step = lambda v: R32(v / s)           # noqa: E731
            elif rule == "encode":                    # Transformer Engine
                e = R32(el.max / amax)
                if not isinstance(e, Fraction):
                    raise Unspecified("encode: max / amax overflows")
                s = R32(1 / e)
                step = lambda v: R32(v * e)           # noqa: E731
            else:                                     # pow2
                k2 = floor_log2(el.max / amax)
                if not -126 <= k2 <= 126:
                    raise Unspecified("pow2: scale outside float32 normals")
                e = Fraction(2) ** k2
                s = 1 / e
                # ASSUMPTION: elements round(R32(x * e)) as for 'encode'
                step = lambda v: R32(v * e)           # noqa: E731
            scodes[sidx] = f32_bits(s)
            svalues.append(s)
            for k, v in enumerate(ex):
                xv = float(vals.ravel()[k])
                if v == 0:
                    out[k] = el.encode(xv, rnd, rand(ii[k]))
                else:
                    out[k] = el.encode(step(v), rnd, rand(ii[k]))
        codes[sl] = out.reshape(vals.shape)
    return RefBlocks(codes, scodes, svalues, sshape, tensor_scale, el, sfmt,
                     rule, axes, sizes, nan_block)


def ref_dequantize(rb, dtype=np.float32):
    """Exact element * scale (* tensor_scale), rounded once to dtype."""
    dtype = np.dtype(dtype)
    desc = {np.dtype(np.float32): F32, np.dtype(np.float64): F64}[dtype]
    shape = rb.codes.shape
    out = np.empty(shape, dtype)
    svals = np.empty(rb.scale_shape, object)
    for i, s in zip(np.ndindex(*rb.scale_shape), rb.scale_values):
        svals[i] = s
    ts = rb.tensor_scale if rb.tensor_scale is not None else Fraction(1)
    for idx in np.ndindex(*shape):
        sidx = tuple(i // rb.block[rb.axes.index(d)] if d in rb.axes else i
                     for d, i in enumerate(idx))
        s = svals[sidx]
        if not isinstance(s, Fraction):
            out[idx] = np.nan
            continue
        ev = rb.element.value(rb.codes[idx])
        if not isinstance(ev, Fraction):             # -0.0
            out[idx] = dtype.type(ev)
            continue
        v = ev * s * ts
        if v == 0:
            out[idx] = dtype.type(0.0)
            continue
        code = ref_encode(desc, v)
        bits = np.array(code, np.uint32 if desc is F32 else np.uint64)
        out[idx] = bits.view(dtype)
    return out
