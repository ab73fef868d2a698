"""Exact reference of fused tensor-core accumulation (API.md section 7).

Written from API.md section 7 and the accumulation rule of
``../shared/h100/README.md`` alone, independently of lowprec (which it
never imports): operand values come from decoding codes with ml_dtypes,
and every sum and rounding is carried out on Python integers or
``fractions.Fraction``.

Two implementations of the same rule live here, and the tests check that
they agree:

* ``fused_step_exact`` / ``fused_dot_exact``: one element at a time,
  ``Fraction`` values, readable top to bottom.  This is the definition.
* ``fused_step`` / ``fused_dot``: the same steps vectorised over rows
  with NumPy.  Every operation is exact: operand values and their
  products are exact in float64 (at most 11 + 11 significant bits, within
  2^-266 .. 2^257), scaling by a power of two is exact within that range,
  the truncated terms are integers below 2^(F + 3), summed in int64, and
  the single rounding is done on those integers.  It exists because the
  GEMM records hold 67 million products.

On top of the step: ``fp8_mma_sync``, ``scaled_mm`` (+
``scaled_mm_epilogue``), ``fp16_matmul`` model the structures of the H100
that are not plain chains; ``record_variant`` maps a record variant name
to its model; ``fused_matmul`` takes lp.FusedAccumulator's parameters.
``ALTERNATIVES`` / ``FP8_MMA_ALTERNATIVES`` switch on rules the records
rule out (or leave open), for the tests that show which is which.

One fused step (README "What is known", steps 1-6)
---------------------------------------------------
1. A non-zero term has an alignment exponent: a product's is e_a + e_b,
   e = floor(log2|x|) for a normal operand, the operand format's emin for
   a subnormal one; c's is floor(log2|c|), or the accumulator format's
   emin when c is subnormal.
2. E = the largest alignment exponent among the non-zero terms.
3. Each term is truncated toward zero to a multiple of 2^(E - F).
4. The truncated terms are summed exactly.
5. The sum is rounded once to p significant bits (``out_bits``) with
   ``out_rounding``, in the range of the accumulator format: subnormal
   results are rounded to a multiple of the format's smallest subnormal,
   results beyond its largest finite value are +-inf.
6. A NaN term, inf * 0 or +inf + -inf gives NaN; an infinite term
   otherwise gives that infinity; an exactly zero sum is +0.

Facts the records decide (tests/test_fused_reference.py shows that the
alternative mismatches records; docs/hardware.md says which)
------------------------------------------------------------------------
* F, p, the rounding and the group of every native instruction of the
  README table (one bit or one mode off mismatches).
* Overflow of a toward-zero rounding is +-inf, not +-max (bf16 -> f32).
* Subnormal f16 results are kept (f16 -> f16 HMMA).
* A zero sum is +0, also when c is -0 and every product is zero.
* A NaN or infinite c propagates like a NaN/inf term; inf * 0 and
  +inf + -inf (products, or c against a product) give NaN.
* fp8 ``mma.sync``: the two k mod 4 steps, then c added with one RNE
  addition (FADD / HADD2); for the f16 accumulator the inner steps are
  f16 -> f16 HMMAs (F = 25, 11 bits nearest even).  One step over all 32 k,
  c inside the steps, halves of k, f32 inner steps for the f16 output and
  a native QGMMA all mismatch.
* cuBLASLt: the 128-k promotion without fast accumulation, the rowwise
  epilogue order R32(acc * sb[j]) * sa[i]; fp16 ``matmul`` (128, 4096,
  128) takes split_k = 3, (64, 1024, 64) split_k = 1.

Choices the records do not decide (both readings reproduce every record)
------------------------------------------------------------------------
* Subnormal float32 results (none occur in the records): out_bits
  significant bits down to the accumulator's emin, below it the grid
  2^(emin - out_bits + 1) (API.md section 7: out_bits bits "in the range
  of the accumulator"; the README's "an E8M13 value in float32" for the
  14-bit fp8 -> f32 output: multiples of 2^-139).  The float32 grid
  2^-149 is the alternative.
* Alignment of a subnormal c and of subnormal operands at the format's
  emin (README step 1) versus at floor(log2|x|): F = 25 / 13 is wide
  enough that no record tells them apart; the README's rule is kept.
* The sign of a negative result that rounds to zero (none occur).
* fp8 ``mma.sync`` operands aligned at f16's emin -14 versus the fp8
  format's emin (-6 for e4m3): no record tells them apart.

NaN results: ``to_bits`` writes 0x7fffffff / 0x7fff, the hardware's code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import ml_dtypes
import numpy as np

__all__ = ["ACC", "OPERANDS", "Instr", "INSTRUCTIONS", "NAN", "POS_INF",
           "NEG_INF", "decode", "alignment_exponent", "round_to_bits",
           "fused_step_exact", "fused_dot_exact", "to_bits",
           "fused_step", "fused_dot", "values_to_bits", "bits_to_values",
           "fp8_mma_sync", "record_variant", "scaled_mm", "fp16_matmul",
           "round_f32", "round_bf16", "fused_matmul", "ALTERNATIVES",
           "FP8_MMA_ALTERNATIVES", "scaled_mm_epilogue"]


# -- formats ---------------------------------------------------------------

@dataclass(frozen=True)
class Fmt:
    """What the rule needs of a format: its ml_dtypes type, emin (the
    exponent of the smallest normal), mantissa bits, largest finite."""
    name: str
    dtype: object
    emin: int
    mbits: int
    max: Fraction

    @property
    def min_subnormal_exp(self) -> int:
        return self.emin - self.mbits


def _fmt(name, dtype, emin, mbits, max_):
    return Fmt(name, np.dtype(dtype), emin, mbits, Fraction(max_))


OPERANDS = {
    "e4m3": _fmt("e4m3", ml_dtypes.float8_e4m3fn, -6, 3, 448),
    "e5m2": _fmt("e5m2", ml_dtypes.float8_e5m2, -14, 2, 57344),
    "f16": _fmt("f16", np.float16, -14, 10, 65504),
    "bf16": _fmt("bf16", ml_dtypes.bfloat16, -126, 7,
                 (2 - Fraction(1, 2**7)) * 2**127),
}
ACC = {
    "f32": _fmt("f32", np.float32, -126, 23,
                (2 - Fraction(1, 2**23)) * 2**127),
    "f16": OPERANDS["f16"],
}
CODE_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32}


def decode(codes, fmt: Fmt) -> np.ndarray:
    """float64 values of codes (exact: every operand value is a float64)."""
    codes = np.asarray(codes)
    with np.errstate(invalid="ignore"):     # NaN codes stay NaN
        return codes.view(fmt.dtype).astype(np.float64)


# -- the exact definition (one element, Fractions) -------------------------

class _Special:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NAN = _Special("NaN")
POS_INF = _Special("+inf")
NEG_INF = _Special("-inf")


def _exact(x: float):
    """A float64 as a Fraction, or one of the special markers."""
    if math.isnan(x):
        return NAN
    if math.isinf(x):
        return POS_INF if x > 0 else NEG_INF
    return Fraction(x)


def _floor_log2(q: Fraction) -> int:
    """floor(log2 q) of a Fraction q > 0."""
    n, d = q.numerator, q.denominator
    e = n.bit_length() - d.bit_length()
    if e >= 0:
        return e if n >= d << e else e - 1
    return e if n << -e >= d else e - 1


def alignment_exponent(x: Fraction, fmt: Fmt) -> int:
    """floor(log2|x|), or fmt.emin for a subnormal x (step 1)."""
    return max(_floor_log2(abs(x)), fmt.emin)


def round_to_bits(v: Fraction, p: int, rounding: str, acc: Fmt):
    """v rounded once to p significant bits in acc's range: the quantum is
    2^(floor(log2|v|) - p + 1), at least 2^(acc.emin - p + 1) (a p-bit
    format with acc's exponent range and subnormals: for p = 14 in
    float32, the E8M13 grid 2^-139; for acc's own p, its subnormals);
    |result| > acc.max is +-inf.  A zero result is +0 (step 5, 6)."""
    if v == 0:
        return Fraction(0)
    q = max(_floor_log2(abs(v)) - p + 1, acc.emin - p + 1)
    scaled = abs(v) / Fraction(2) ** q
    n = scaled.numerator // scaled.denominator      # toward zero
    rest = scaled - n
    if rounding == "nearest_even":
        if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2):
            n += 1
    elif rounding != "toward_zero":
        raise ValueError(f"rounding {rounding!r} is not a hardware mode")
    r = n * Fraction(2) ** q
    if r > acc.max:
        return POS_INF if v > 0 else NEG_INF
    return r if v > 0 else -r


def fused_step_exact(a_vals, b_vals, c, *, a_fmt: Fmt, b_fmt: Fmt,
                     acc: Fmt, align_bits: int, out_bits: int,
                     out_rounding: str):
    """One fused step D = sum a[k] b[k] + c, exactly as README steps 1-6.

    a_vals, b_vals: sequences of float64 operand values (decoded codes);
    c: the accumulator input (float64 value, exact in acc).  Returns a
    Fraction (+0 as Fraction(0)) or NAN / POS_INF / NEG_INF."""
    terms = []          # (exact value, alignment exponent) of non-zero terms
    infs = set()
    for x, y in zip(a_vals, b_vals):
        x, y = _exact(float(x)), _exact(float(y))
        if x is NAN or y is NAN:
            return NAN
        if isinstance(x, _Special) or isinstance(y, _Special):
            if x == 0 or y == 0:
                return NAN                          # inf * 0
            neg = ((x is NEG_INF) or (not isinstance(x, _Special) and x < 0)) \
                != ((y is NEG_INF) or (not isinstance(y, _Special) and y < 0))
            infs.add(NEG_INF if neg else POS_INF)
            continue
        if x != 0 and y != 0:
            terms.append((x * y, alignment_exponent(x, a_fmt)
                          + alignment_exponent(y, b_fmt)))
    c = _exact(float(c))
    if c is NAN:
        return NAN
    if isinstance(c, _Special):
        infs.add(c)
    elif c != 0:
        terms.append((c, alignment_exponent(c, acc)))
    if len(infs) == 2:
        return NAN                                  # +inf + -inf
    if infs:
        return infs.pop()
    if not terms:
        return Fraction(0)
    e_max = max(e for _, e in terms)                # step 2
    unit = Fraction(2) ** (e_max - align_bits)
    total = 0
    for v, _ in terms:                              # steps 3 and 4
        t = abs(v) / unit
        t = t.numerator // t.denominator
        total += t if v > 0 else -t
    return round_to_bits(total * unit, out_bits, out_rounding, acc)


def _add_rne(x, y, acc: Fmt):
    """x + y rounded to nearest even in acc (an FADD / HADD2)."""
    if x is NAN or y is NAN:
        return NAN
    if isinstance(x, _Special) or isinstance(y, _Special):
        s = {v for v in (x, y) if isinstance(v, _Special)}
        return NAN if len(s) == 2 else s.pop()
    return round_to_bits(x + y, acc.mbits + 1, "nearest_even", acc)


def fused_dot_exact(a_vals, b_vals, c, *, group, a_fmt, b_fmt, acc,
                    align_bits, out_bits, out_rounding, promote_every=None):
    """A whole inner product: fused steps of `group` products chained in k
    order (each step's result is the next step's c).  With promote_every,
    the chain restarts from +0 every that many k and each partial is added
    into a float32 total (starting from c) with round-to-nearest-even."""
    k = len(a_vals)
    step = dict(a_fmt=a_fmt, b_fmt=b_fmt, acc=acc, align_bits=align_bits,
                out_bits=out_bits, out_rounding=out_rounding)

    def chain(lo, hi, start):
        d = start
        for g in range(lo, hi, group):
            if isinstance(d, _Special):
                d = float("nan") if d is NAN else \
                    (math.inf if d is POS_INF else -math.inf)
            else:
                d = float(d)
            d = fused_step_exact(a_vals[g:g + group], b_vals[g:g + group],
                                 d, **step)
        return d

    if promote_every is None:
        return chain(0, k, c)
    total = _exact(float(c))
    for lo in range(0, k, promote_every):
        part = chain(lo, min(lo + promote_every, k), 0.0)
        total = _add_rne(total, part, ACC["f32"])
    return total


def to_bits(v, acc: Fmt) -> int:
    """The accumulator bits of an exact result (NaN -> 0x7fffffff/0x7fff)."""
    if v is NAN:
        return 0x7fffffff if acc.name == "f32" else 0x7fff
    if v is POS_INF or v is NEG_INF:
        x = math.inf if v is POS_INF else -math.inf
    else:
        x = float(v)
        if Fraction(x) != v:
            raise ValueError(f"{v} is not exact in {acc.name}")
    return int(np.array(x, acc.dtype).view(CODE_DTYPES[acc.dtype.itemsize]))


# -- the same rule vectorised over rows ------------------------------------

def _align_exp(v: np.ndarray, emin: int) -> np.ndarray:
    """floor(log2|v|) (max'ed with emin) of exact float64 values; 0 where
    v is 0 or not finite (such terms never align)."""
    with np.errstate(invalid="ignore"):
        _, e = np.frexp(np.where(np.isfinite(v), v, 0.0))
    return np.where((v != 0) & np.isfinite(v),
                    np.maximum(e.astype(np.int64) - 1, emin), 0)


def _round_int(s: np.ndarray, s_exp: np.ndarray, p: int, rounding: str,
               acc: Fmt, alt=None) -> np.ndarray:
    """float64 values of s * 2^s_exp (s int64, |s| < 2^53) rounded once to
    p bits in acc's range, overflow to +-inf, zero to +0.  alt: see
    ALTERNATIVES."""
    alt = alt or {}
    mag = np.abs(s)
    _, blen = np.frexp(mag.astype(np.float64))     # exact: mag < 2^53
    vexp = blen.astype(np.int64) - 1 + s_exp
    sub = acc.emin - p + 1
    if alt.get("subnormal_grid") == "format":
        sub = acc.min_subnormal_exp
    q = np.maximum(vexp - p + 1, sub)
    if alt.get("subnormals") == "flush":
        mag = np.where(vexp < acc.emin, 0, mag)
    shift = q - s_exp
    sh = np.clip(shift, 0, 62)
    r = mag >> sh
    if rounding == "nearest_even":
        rest = mag - (r << sh)
        half = np.where(sh > 0, np.int64(1) << np.maximum(sh - 1, 0), 0)
        up = (sh > 0) & ((rest > half) | ((rest == half) & (r & 1 == 1)))
        r = r + up
    elif rounding != "toward_zero":
        raise ValueError(f"rounding {rounding!r} is not a hardware mode")
    out_exp = np.where(shift > 0, q, s_exp)
    val = np.ldexp(r.astype(np.float64), out_exp)
    big = float(acc.max) if alt.get("overflow") != "max" else np.inf
    val = np.where(val > big, np.inf, val)
    if alt.get("overflow") == "max":
        val = np.minimum(val, float(acc.max))
    if alt.get("zero_sign") == "ieee":
        return np.where(s < 0, -val, np.where(s == 0, 0.0, val))
    return np.where(s < 0, -val, val)


# Rules the records rule out, as switches of the vectorised form (the
# tests show each one mismatches some records, so each fact is decided):
ALTERNATIVES = {
    "subnormal_grid": "format",     # subnormals on acc's own grid (2^-149)
    "subnormals": "flush",          # subnormal results flushed to zero
    "overflow": "max",              # toward-zero overflow saturates
    "zero_sign": "ieee",            # -0 + -0 = -0, tiny negative -> -0
    "zero_c": "keep",               # zero sum with c = -0 keeps c's -0
    "c_emin": "none",               # subnormal c aligned at floor(log2|c|)
    "operand_emin": "none",         # subnormal operands at floor(log2|x|)
}


def fused_step(P: np.ndarray, PE: np.ndarray, C: np.ndarray, *, acc: Fmt,
               align_bits: int, out_bits: int, out_rounding: str, alt=None):
    """Vectorised fused step over rows.

    P: (N, G) float64 products (exact; NaN/inf as float64 gives them, so
    inf * 0 is already NaN), PE: (N, G) their alignment exponents,
    C: (N,) float64 accumulator input.  Returns (N,) float64 results
    (exact values of acc; NaN for NaN).  alt: a dict of ALTERNATIVES
    (tests only)."""
    alt = alt or {}
    C = np.asarray(C, np.float64)
    T = np.concatenate([P, C[:, None]], axis=1)
    c_emin = -10**6 if alt.get("c_emin") == "none" else acc.emin
    TE = np.concatenate([PE, _align_exp(C, c_emin)[:, None]], axis=1)
    fin = np.isfinite(T)
    live = fin & (T != 0)
    E = np.where(live, TE, np.iinfo(np.int64).min).max(axis=1)
    E = np.where(live.any(axis=1), E, 0)
    scale = (align_bits - E)[:, None]
    with np.errstate(invalid="ignore"):
        t = np.trunc(np.ldexp(np.where(live, T, 0.0), scale))
    assert np.all(np.abs(t) < 2.0 ** (align_bits + 4))
    s = t.astype(np.int64).sum(axis=1)
    out = _round_int(s, E - align_bits, out_bits, out_rounding, acc, alt)
    if alt.get("zero_c") == "keep":
        out = np.where((s == 0) & (C == 0) & np.signbit(C), -0.0, out)
    if alt.get("zero_sign") == "ieee":
        # an all-zero sum keeps the sign when every term is a -0
        negz = (np.signbit(T) | ~(T == 0)).all(axis=1) & (T == 0).all(axis=1)
        out = np.where(negz, -0.0, out)
    # step 6: NaN, +inf + -inf, inf
    nan = np.isnan(T).any(axis=1)
    pinf = (T == np.inf).any(axis=1)
    ninf = (T == -np.inf).any(axis=1)
    out = np.where(pinf, np.inf, out)
    out = np.where(ninf, -np.inf, out)
    return np.where(nan | (pinf & ninf), np.nan, out)


def _products(a_vals, b_vals, a_fmt, b_fmt):
    with np.errstate(invalid="ignore"):
        P = a_vals * b_vals                       # exact (see module doc)
    PE = _align_exp(a_vals, a_fmt.emin) + _align_exp(b_vals, b_fmt.emin)
    return P, PE


def fused_dot(a_vals, b_vals, c, *, group, a_fmt, b_fmt, acc, align_bits,
              out_bits, out_rounding, promote_every=None, alt=None):
    """Vectorised fused_dot_exact: a_vals, b_vals (N, K) float64 operand
    values, c (N,) float64; returns (N,) float64 results."""
    a_vals = np.asarray(a_vals, np.float64)
    b_vals = np.asarray(b_vals, np.float64)
    n, k = a_vals.shape
    if (alt or {}).get("operand_emin") == "none":
        a_fmt = Fmt(a_fmt.name, a_fmt.dtype, -10**6, a_fmt.mbits, a_fmt.max)
        b_fmt = Fmt(b_fmt.name, b_fmt.dtype, -10**6, b_fmt.mbits, b_fmt.max)
    P, PE = _products(a_vals, b_vals, a_fmt, b_fmt)
    step = dict(acc=acc, align_bits=align_bits, out_bits=out_bits,
                out_rounding=out_rounding, alt=alt)

    def chain(lo, hi, d):
        for g in range(lo, hi, group):
            d = fused_step(P[:, g:g + group], PE[:, g:g + group], d, **step)
        return d

    c = np.broadcast_to(np.asarray(c, np.float64), (n,))
    if promote_every is None:
        return chain(0, k, c)
    total = c
    for lo in range(0, k, promote_every):
        part = chain(lo, min(lo + promote_every, k), np.zeros(n))
        with np.errstate(invalid="ignore"):      # inf - inf: NaN
            total = round_f32(total + part)   # see round_f32: one rounding
    return total


def round_f32(x) -> np.ndarray:
    """float64 values rounded to nearest even float32 (as float64).

    Callers pass only exact float64 values (a product of two float32
    values: 48 bits) or the float64 sum of two float32 values; rounding
    that sum again to float32 is the correctly rounded float32 sum, since
    53 >= 2 * 24 + 2 (double rounding is innocuous for +, -, *, / and sqrt
    under that condition: Figueroa, "When is double rounding innocuous?",
    SIGNUM 1995).  The Fraction form (_add_rne) does the same sums
    exactly."""
    return np.asarray(x, np.float64).astype(np.float32).astype(np.float64)


def round_bf16(x) -> np.ndarray:
    """float32 values rounded to nearest even bfloat16 bits (uint16)."""
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16) \
        .view(np.uint16)


def values_to_bits(v: np.ndarray, acc: Fmt) -> np.ndarray:
    """Accumulator bits of float64 results (NaN -> 0x7fffffff / 0x7fff)."""
    dt = CODE_DTYPES[acc.dtype.itemsize]
    with np.errstate(over="ignore"):          # a float32 total beyond f16
        bits = np.asarray(v).astype(acc.dtype).view(dt)
    nan = 0x7fffffff if acc.name == "f32" else 0x7fff
    return np.where(np.isnan(v), dt(nan), bits)


def bits_to_values(bits, acc: Fmt) -> np.ndarray:
    return np.asarray(bits).view(acc.dtype).astype(np.float64)


# -- the H100 instructions (README table; open details settled by records) --

@dataclass(frozen=True)
class Instr:
    """One fused step of an instruction: group (products per step),
    kept bits F, output bits p and rounding, accumulator format."""
    group: int
    align_bits: int
    out_bits: int
    out_rounding: str
    acc: str


INSTRUCTIONS = {
    # f16/bf16 -> f32 HMMA / HGMMA k16
    "hmma_f32": Instr(16, 25, 24, "toward_zero", "f32"),
    # f16 -> f16 HMMA / HGMMA k16
    "hmma_f16": Instr(16, 25, 11, "nearest_even", "f16"),
    # fp8 QGMMA k32 -> f32 (an E8M13 value) / -> f16
    "qgmma_f32": Instr(32, 13, 14, "toward_zero", "f32"),
    "qgmma_f16": Instr(32, 13, 11, "nearest_even", "f16"),
}


def _dot(instr: Instr, a_vals, b_vals, c, a_fmt, b_fmt, exact=False,
         promote_every=None, alt=None):
    kw = dict(group=instr.group, a_fmt=a_fmt, b_fmt=b_fmt,
              acc=ACC[instr.acc], align_bits=instr.align_bits,
              out_bits=instr.out_bits, out_rounding=instr.out_rounding,
              promote_every=promote_every)
    if exact:
        return fused_dot_exact(a_vals, b_vals, c, **kw)
    return fused_dot(a_vals, b_vals, c, alt=alt, **kw)


# Structures of the fp8 mma.sync the records rule out (tests only):
FP8_MMA_ALTERNATIVES = (
    "one_step",     # one HMMA step over all 32 k, then c added
    "c_in_step",    # c is the first step's accumulator input, no FADD
    "halves",       # steps over k < 16 and k >= 16 instead of k mod 4
    "fp8_emin",     # operands aligned at the fp8 format's emin
    "inner_f32",    # (f16 accumulator) inner steps are f16 -> f32 HMMAs
)


def fp8_mma_sync(a_vals, b_vals, c, acc: str, exact=False, structure=None,
                 fp8_fmts=None):
    """fp8 mma.sync m16n8k32: the operands as f16 values (alignment emin
    -14), one f16 HMMA step over k mod 4 in {0, 1} from +0, a second over
    k mod 4 in {2, 3} on top, then c added with one RNE addition in the
    accumulator format (FADD / HADD2).  structure: one of
    FP8_MMA_ALTERNATIVES (vectorised form only; tests only)."""
    f16 = OPERANDS["f16"]
    instr = INSTRUCTIONS["hmma_" + acc]
    k = np.arange(np.shape(a_vals)[-1])
    first, second = (k % 4) < 2, (k % 4) >= 2
    a_vals, b_vals = np.asarray(a_vals), np.asarray(b_vals)
    if structure is not None:
        return _fp8_mma_alternative(a_vals, b_vals, c, acc, structure,
                                    fp8_fmts)
    if exact:
        d = _dot(instr, a_vals[first], b_vals[first], 0.0, f16, f16, True)
        d = float("nan") if d is NAN else float(d) if not isinstance(
            d, _Special) else (math.inf if d is POS_INF else -math.inf)
        d = _dot(instr, a_vals[second], b_vals[second], d, f16, f16, True)
        return _add_rne(d, _exact(float(c)), ACC[acc])
    n = a_vals.shape[0]
    d = _dot(instr, a_vals[:, first], b_vals[:, first], np.zeros(n), f16,
             f16)
    d = _dot(instr, a_vals[:, second], b_vals[:, second], d, f16, f16)
    with np.errstate(invalid="ignore", over="ignore"):
        s = d + np.asarray(c, np.float64)   # exact or correctly rounded *
    # * two f32 values: float64 holds 53 >= 2*24 + 2 bits, so rounding the
    #   float64 sum to float32 is the correctly rounded float32 sum; two
    #   f16 values: their float64 sum is exact.
    with np.errstate(over="ignore"):
        return np.asarray(s).astype(ACC[acc].dtype).astype(np.float64)


def _fp8_mma_alternative(a_vals, b_vals, c, acc, structure, fp8_fmts):
    f16 = OPERANDS["f16"]
    instr = INSTRUCTIONS["hmma_" + acc]
    n, kk = a_vals.shape
    k = np.arange(kk)
    first, second = (k % 4) < 2, (k % 4) >= 2
    fa = fb = f16
    if structure == "halves":
        first, second = k < kk // 2, k >= kk // 2
    if structure == "fp8_emin":
        fa, fb = fp8_fmts
    if structure == "inner_f32":
        instr = INSTRUCTIONS["hmma_f32"]
    start = np.asarray(c, np.float64) if structure == "c_in_step" \
        else np.zeros(n)
    if structure == "one_step":
        d = _dot(Instr(32, instr.align_bits, instr.out_bits,
                       instr.out_rounding, instr.acc),
                 a_vals, b_vals, start, fa, fb)
    else:
        d = _dot(instr, a_vals[:, first], b_vals[:, first], start, fa, fb)
        d = _dot(instr, a_vals[:, second], b_vals[:, second], d, fa, fb)
    if structure == "c_in_step":
        s = d
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            s = d + np.asarray(c, np.float64)
    with np.errstate(over="ignore"):
        return np.asarray(s).astype(ACC[acc].dtype).astype(np.float64)


def record_variant(name: str):
    """(operand formats, accumulator, function(a_vals, b_vals, c,
    exact=False)) of a record variant name such as
    'mma_m16n8k32_e4m3_e5m2_f32'."""
    kind, _shape, fa, fb, acc = name.split("_")
    a_fmt, b_fmt = OPERANDS[fa], OPERANDS[fb]
    fp8 = fa in ("e4m3", "e5m2")
    if kind == "mma" and fp8:
        return a_fmt, b_fmt, acc, \
            lambda a, b, c, exact=False: fp8_mma_sync(a, b, c, acc, exact)
    instr = INSTRUCTIONS[("qgmma_" if fp8 else "hmma_") + acc]
    return a_fmt, b_fmt, acc, \
        lambda a, b, c, exact=False: _dot(instr, a, b, c, a_fmt, b_fmt,
                                          exact)


# -- cuBLASLt GEMMs ----------------------------------------------------------

def _pairs(A, B, rows):
    """Operand rows of the output elements `rows` (flat indices into the
    (M, N) output): A (M, K), B (N, K)."""
    n = B.shape[0]
    return A[rows // n], B[rows % n]


def scaled_mm(A_codes, B_codes, *, use_fast_accum, chunk=1024):
    """The accumulator of torch._scaled_mm(A, B.t()) on e4m3 codes, (M, N)
    float64 (exact float32 values): QGMMA k32 steps chained in k order;
    without fast accumulation the chain restarts from +0 every 128 k and
    the partials go into a float32 total with round-to-nearest-even."""
    e4m3 = OPERANDS["e4m3"]
    A, B = decode(A_codes, e4m3), decode(B_codes, e4m3)
    m, n = A.shape[0], B.shape[0]
    out = np.empty(m * n)
    for lo in range(0, m * n, chunk):
        rows = np.arange(lo, min(lo + chunk, m * n))
        a, b = _pairs(A, B, rows)
        out[rows] = _dot(INSTRUCTIONS["qgmma_f32"], a, b, np.zeros(len(rows)),
                         e4m3, e4m3,
                         promote_every=None if use_fast_accum else 128)
    return out.reshape(m, n)


def scaled_mm_epilogue(acc, scale_a, scale_b, scaling, out_dtype):
    """tensorwise: acc * R32(sa * sb); rowwise: R32(acc * sb[j]) * sa[i],
    both rounded to float32 (nearest even), then to bfloat16 (nearest
    even) for a bf16 output.  Returns the output bits.  Every float64
    product here is of two float32 values, hence exact."""
    acc = np.asarray(acc, np.float64)
    sa = np.asarray(scale_a, np.float32).astype(np.float64)
    sb = np.asarray(scale_b, np.float32).astype(np.float64)
    with np.errstate(over="ignore"):
        if scaling == "tensor":
            r = round_f32(acc * round_f32(sa[0] * sb[0]))
        else:
            r = round_f32(round_f32(acc * sb[None, :]) * sa[:, None])
        r32 = r.astype(np.float32)
    if out_dtype == "f32":
        return values_to_bits(r32.astype(np.float64), ACC["f32"])
    return round_bf16(r32)


def fp16_matmul(A_bits, B_bits, *, split_k, rows=None, chunk=256):
    """torch.matmul of float16 A (M, K) and B (K, N) bits: HGMMA k16 steps
    (f16 -> f32, F = 25, 24 bits toward zero) chained within K-slices of
    length roundup(K / split_k, 128), the slices added in k order in
    float32 (nearest even), the result rounded to f16 (nearest even).
    Returns f16 bits of the flat output elements `rows` (all by default)."""
    f16 = OPERANDS["f16"]
    A = decode(A_bits, f16)
    B = decode(np.ascontiguousarray(np.asarray(B_bits).T), f16)
    m, k = A.shape
    n = B.shape[0]
    if rows is None:
        rows = np.arange(m * n)
    rows = np.asarray(rows)
    length = -(-(-(-k // split_k)) // 128) * 128
    out = np.empty(len(rows))
    for lo in range(0, len(rows), chunk):
        sel = rows[lo:lo + chunk]
        a, b = _pairs(A, B, sel)
        out[lo:lo + chunk] = _dot(INSTRUCTIONS["hmma_f32"], a, b,
                                  np.zeros(len(sel)), f16, f16,
                                  promote_every=length)
    with np.errstate(over="ignore"):
        return values_to_bits(out.astype(np.float16).astype(np.float64),
                              ACC["f16"])


# -- a FusedAccumulator matmul, for comparing models ------------------------

_NAMES = {"float8_e4m3fn": "e4m3", "e4m3": "e4m3", "float8_e5m2": "e5m2",
          "e5m2": "e5m2", "float16": "f16", "fp16": "f16", "f16": "f16",
          "bfloat16": "bf16", "bf16": "bf16", "float32": "f32",
          "f32": "f32"}


def fused_matmul(a, b, c=None, *, a_format, b_format, group, align_bits,
                 out_bits=24, out_rounding="toward_zero",
                 accumulator="float32", promote_every=None, chunk=1024):
    """(M, N) float64 results of lp.FusedAccumulator(group, align_bits,
    out_bits=..., out_rounding=..., accumulator=..., promote_every=...)
    applied to a (M, K) and b (K, N): arrays of the formats' codes or of
    their ml_dtypes / NumPy dtypes; c broadcastable to (M, N) (float32,
    or float16 for accumulator="float16"), +0 when None.  NaN results are
    NaN (values_to_bits gives the hardware codes)."""
    fa, fb = OPERANDS[_NAMES[a_format]], OPERANDS[_NAMES[b_format]]
    acc = ACC[_NAMES[accumulator]]

    def values(x, f):
        x = np.asarray(x)
        if x.dtype.kind == "u":
            return decode(x, f)
        return x.astype(f.dtype).astype(np.float64)

    A, B = values(a, fa), np.ascontiguousarray(values(b, fb).T)
    m, n = A.shape[0], B.shape[0]
    C = np.zeros((m, n)) if c is None else np.broadcast_to(
        np.asarray(c).astype(acc.dtype).astype(np.float64), (m, n))
    C = C.reshape(-1)
    out = np.empty(m * n)
    for lo in range(0, m * n, chunk):
        rows = np.arange(lo, min(lo + chunk, m * n))
        x, y = _pairs(A, B, rows)
        out[rows] = fused_dot(x, y, C[rows], group=group, a_fmt=fa, b_fmt=fb,
                              acc=acc, align_bits=align_bits,
                              out_bits=out_bits, out_rounding=out_rounding,
                              promote_every=promote_every)
    return out.reshape(m, n)
