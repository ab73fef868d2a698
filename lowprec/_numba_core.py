"""The rounding core in Numba: csrc/round.h, step for step.

Every function here mirrors the C function of the same name and keeps its
numbered steps:

  1. unpack   the input as sign * sig * 2^exp, sig a uint64
  2. align    normalise sig, pick the quantum of the target binade, split
              sig into the kept significand m and the dropped fraction d
              (0.64 fixed point) plus a sticky bit
  3. round    one per-mode increment decides m or m + 1:
              lp_round_addend, the one definition every core and fast
              path calls (lp_round_up is its compare form)
  4. pack     code = base + m, by addition (the carry ripples into the
              exponent field)
  5. check    overflow, flush, sign, after rounding

The functions are ``numba.njit(forceinline=True, cache=True)``: each is
compiled once per argument types (and cached on disk) and LLVM inlines it
into every caller (the ``alwaysinline`` attribute), so a kernel's loop
holds the whole core with no calls.  (Numba's IR-level ``inline="always"``
gives the same code but copies the IR at every call site, which makes
compiling the nested core take minutes.)  The same functions compile for
CUDA: ``numba.cuda.jit`` turns a CPU dispatcher called from device code
into a device function.  C pointers become return values: a function that
ORs into ``*err`` in C returns ``(code, err)``, one that also ORs into
``*flags`` (the IEEE exception flags, ``*_flags``) ``(code, err, flags)``.

round.h's float32 core (lp_k32_init, lp_round_f32: 32-bit, branch-free,
for the vectorised loops) is here too, with the same structure.

A format travels as the tuple ``format_params(fmt)`` (the fields of the C
struct ``lp_format``), the options as ``opts_params(...)`` (``lp_opts``
minus the seed: the generator key ``mix64(seed)`` is passed on its own and
the core receives the 64 random bits, as in C).  All arithmetic on
significands is uint64 with explicit casts: Numba types int64 op uint64 as
float64.
"""
from __future__ import annotations

import glob
import hashlib
import os

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

# enum lp_rounding, lp_error, lp_flag, lp_kind, lp_layout, lp_dtype
# (csrc/lowprec.h; tests/test_round_core.py checks names and values).
RNE, RNA, RZ, RU, RD, RO, SR = 0, 1, 2, 3, 4, 5, 6
ERR_NAN, ERR_NEGATIVE, ERR_ZERO = 1, 2, 4
FLAG_INEXACT, FLAG_UNDERFLOW, FLAG_OVERFLOW, FLAG_INFINITE, FLAG_INVALID = \
    1, 2, 4, 8, 16
KIND_FLOAT, KIND_INT = 0, 1
(LAYOUT_INT, LAYOUT_FLOAT, LAYOUT_NOZERO, LAYOUT_BINARY16, LAYOUT_BINARY32,
 LAYOUT_TRUNC32) = range(6)
NO_CODE = -1
IN_F64, IN_F32, IN_F16, IN_BF16, IN_I64, IN_U64 = 0, 1, 2, 3, 4, 5

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_HALF = np.uint64(1 << 63)
_HALF_M1 = np.uint64((1 << 63) - 1)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U32 = np.uint64(32)
_LO32 = np.uint64(0xFFFFFFFF)
_H1 = np.uint32(0x9E3779B9)
_H2 = np.uint32(0x85EBCA77)
_H3 = np.uint32(0x85EBCA6B)
_H4 = np.uint32(0xC2B2AE35)
_INT64_MIN_HALF = np.int64(-(1 << 62))        # INT64_MIN / 2
_INT64_MAX_HALF = np.int64((1 << 62) - 1)     # INT64_MAX / 2
_F64_NAN_BITS = np.uint64(0x7FF8000000000000)  # C's NAN
_F64_INF_BITS = np.uint64(0x7FF0000000000000)
_F64_NEGINF_BITS = np.uint64(0xFFF0000000000000)
# uint32 constants of the float32 core (Numba widens uint32 arithmetic to
# uint64; np.uint32(...) around an expression wraps it back to 32 bits).
_W0 = np.uint32(0)
_W1 = np.uint32(1)
_W13 = np.uint32(13)
_W16 = np.uint32(16)
_W23 = np.uint32(23)
_W31 = np.uint32(31)
_WALL = np.uint32(0xFFFFFFFF)
_WABS = np.uint32(0x7FFFFFFF)
_WINF = np.uint32(0x7F800000)
_WMANT = np.uint32(0x7FFFFF)

_jitable = numba.njit(forceinline=True, cache=True)


# -- parameters ------------------------------------------------------------

# The fields of the C struct lp_format in the order of the parameter tuple;
# F[MAX_CODE] in Numba code reads like f->max_code in C.
FORMAT_FIELDS = ("kind", "ebits", "mbits", "bias", "nans", "nbits", "emin",
                 "emax", "has_zero", "subnormals", "is_signed", "negzero",
                 "sign_bit", "max_code", "inf_code", "nan_code", "int_min",
                 "int_max", "layout", "f32_range")
(KIND, EBITS, MBITS, BIAS, NANS, NBITS, EMIN, EMAX, HAS_ZERO, SUBNORMALS,
 IS_SIGNED, NEGZERO, SIGN_BIT, MAX_CODE, INF_CODE, NAN_CODE, INT_MIN,
 INT_MAX, LAYOUT, F32_RANGE) = range(len(FORMAT_FIELDS))
# ... and of lp_opts (the seed travels as the generator key).
OPTS_FIELDS = ("rounding", "saturate", "keep_subnormals", "rbits",
               "zero_point", "tininess_before")
(O_ROUNDING, O_SATURATE, O_KEEP_SUBNORMALS, O_RBITS, O_ZERO_POINT,
 O_TININESS_BEFORE) = range(6)
NANS_IEEE, NANS_TOP, NANS_NEGZERO, NANS_NONE = 0, 1, 2, 3
# enum lp_saturate
SAT_OVFINF, SAT_FINITE, SAT_PROPAGATE = 0, 1, 2


def format_params(fmt) -> tuple:
    """The C struct of fmt as a tuple of Python ints (FORMAT_FIELDS)."""
    st = fmt.struct
    return tuple(int(getattr(st, name)) for name in FORMAT_FIELDS)


def opts_params(rounding: int, saturate, keep_subnormals, rbits: int = 64,
                zero_point: int = 0, tininess_before=False) -> tuple:
    """lp_opts without the seed, as a tuple of Python ints (OPTS_FIELDS)."""
    return (int(rounding), int(saturate), int(bool(keep_subnormals)),
            int(rbits), int(zero_point), int(bool(tininess_before)))


@_jitable
def with_kind(fn, F, args):
    """fn(F, *args) with the format kind F[KIND] a compile-time constant:
    one copy of fn for float formats, one for integer formats, selected
    once per call, so LLVM drops the other kind's branches from the
    per-element loop (2x faster; encode.c's general path reads the kind
    per element).  The rest of F stays run-time: one compiled kernel
    serves every format.  (Making the rounding mode a constant too gains
    another 1.5x but costs seconds of compile time per kernel; the
    branch-free float32 core needs neither: LLVM unswitches its loops.)"""
    if F[KIND] == KIND_INT:
        return fn((np.int64(KIND_INT),) + F[1:], *args)
    return fn((np.int64(KIND_FLOAT),) + F[1:], *args)


def drop_stale_cache(dispatcher) -> None:
    """Numba checks a cached function against its own source file only,
    but the kernels of lowprec inline this file: when its source changed
    since their cache was written, delete the cache files of the module
    that defines dispatcher (they would hold the old core)."""
    try:
        path = dispatcher._cache.cache_path
        with open(__file__, "rb") as fh:
            stamp = hashlib.sha256(fh.read()).hexdigest()
    except (AttributeError, OSError):
        return
    module = dispatcher.py_func.__module__.rsplit(".", 1)[-1]
    stamp_file = os.path.join(path, f"{module}.core-stamp")
    try:
        with open(stamp_file) as fh:
            if fh.read() == stamp:
                return
    except OSError:
        pass
    try:
        for name in glob.glob(os.path.join(path, f"{module}.*.nb[ic]")):
            os.remove(name)
        with open(stamp_file, "w") as fh:
            fh.write(stamp)
    except OSError:             # read-only cache: numba recompiles anyway
        pass


def mix64_py(z: int) -> int:
    """lp_mix64 on Python ints (the generator key, computed once per call)."""
    mask = (1 << 64) - 1
    z &= mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


# -- bit casts, shifts, count-leading-zeros (LLVM instructions) -----------

def _bitcast(src, dst):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(dst))
    return dst(src), codegen


@intrinsic
def f64_bits(typingctx, x):
    """float64 -> its IEEE bits as uint64."""
    if x == types.float64:
        return _bitcast(types.float64, types.uint64)


@intrinsic
def bits_f64(typingctx, u):
    """uint64 bits -> float64."""
    if u == types.uint64:
        return _bitcast(types.uint64, types.float64)


@intrinsic
def f32_bits(typingctx, x):
    """float32 -> its IEEE bits as uint32."""
    if x == types.float32:
        return _bitcast(types.float32, types.uint32)


@intrinsic
def bits_f32(typingctx, u):
    """uint32 bits -> float32."""
    if u == types.uint32:
        return _bitcast(types.uint32, types.float32)


@intrinsic
def f32_to_f16_bits(typingctx, x):
    """float32 -> float16 bits, IEEE round-to-nearest-even (LLVM fptrunc:
    the F16C instruction vcvtps2ph on x86, vectorised in loops)."""
    if x == types.float32:
        def codegen(context, builder, signature, args):
            h = builder.fptrunc(args[0], ir.HalfType())
            return builder.bitcast(h, ir.IntType(16))
        return types.uint16(types.float32), codegen


def _shift32(op):
    def typer(typingctx, x, n):
        if isinstance(x, types.Integer) and isinstance(n, types.Integer):
            def codegen(context, builder, signature, args):
                xv, nv = (context.cast(builder, v, t, types.uint32)
                          for v, t in zip(args, signature.args))
                return getattr(builder, op)(xv, nv)
            return types.uint32(x, n), codegen
    return typer


# uint32(x) << n and uint32(x) >> n for n < 32, in 32-bit arithmetic: Numba
# widens uint32 operations to 64 bits, and LLVM cannot narrow variable
# shifts back, so the vectorised loops would run on half-width lanes.
shl32 = intrinsic(_shift32("shl"))
shr32 = intrinsic(_shift32("lshr"))


@intrinsic
def int64_tuple(typingctx, t):
    """A tuple of integers (e.g. a closure's constant F, which Numba types
    element by element as literals) as a plain UniTuple(int64): the values
    stay LLVM constants, and the core compiled for that type (and cached)
    serves every format instead of compiling again for each."""
    if isinstance(t, types.BaseTuple) and all(
            isinstance(e, types.Integer) for e in t):
        ret = types.UniTuple(types.int64, len(t))

        def codegen(context, builder, signature, args):
            return context.cast(builder, args[0], signature.args[0], ret)
        return ret(t), codegen


def _count_zeros64(op):
    def typer(typingctx, x):
        if x == types.uint64:
            def codegen(context, builder, signature, args):
                return getattr(builder, op)(args[0],
                                            ir.Constant(ir.IntType(1), 1))
            return types.int64(types.uint64), codegen
    return typer


# Leading (lp_clz64) and trailing (ctz64) zeros of a uint64 x != 0, as
# int64: LLVM's ctlz / cttz with zero undefined.
lp_clz64 = intrinsic(_count_zeros64("ctlz"))
ctz64 = intrinsic(_count_zeros64("cttz"))


# -- the generator ---------------------------------------------------------

@_jitable
def lp_mix64(z):
    """splitmix64 finaliser (z uint64)."""
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@_jitable
def lp_hash32(k, lo, hi):
    """32 random bits for element index = hi:lo (two uint32 words): a Weyl
    step over lo, hi mixed in, and the murmur3 finaliser, keyed by k.
    Only 32-bit multiplies, so a loop over elements vectorises."""
    w = np.uint32
    x = w(w(lo * _H1) + k)
    x = w(x ^ w(hi * _H2))
    x = w(x ^ (x >> _W16))
    x = w(x * _H3)
    x = w(x ^ (x >> _W13))
    x = w(x * _H4)
    return w(x ^ (x >> _W16))


@_jitable
def lp_random_words(key, lo, hi):
    """The stochastic-rounding generator: 64 bits for element hi:lo, the
    high and low words hashed under the two halves of key = mix64(seed).
    It depends on nothing but (seed, index), so every chunking, thread
    count and backend agree."""
    return ((np.uint64(lp_hash32(np.uint32(key >> _U32), lo, hi)) << _U32)
            | np.uint64(lp_hash32(np.uint32(key & _LO32), lo, hi)))


@_jitable
def lp_random_keyed(key, index):
    """lp_random_words for a flat element index (int64)."""
    u = np.uint64(index)
    return lp_random_words(key, np.uint32(u & _LO32), np.uint32(u >> _U32))


# -- the core --------------------------------------------------------------

@_jitable
def lp_sr_masks(rbits):
    """The top rbits bits (1..64) of a 64-bit number as two uint32 masks
    (hi, lo)."""
    u = np.uint32
    hi = _WALL if rbits >= 32 else u(u(_WALL >> u(rbits)) ^ _WALL)
    if rbits >= 64:
        lo = _WALL
    elif rbits <= 32:
        lo = _W0
    else:
        lo = u(u(_WALL >> u(rbits - 32)) ^ _WALL)
    return hi, lo


@_jitable
def lp_sr_less(r_hi, r_lo, d_hi, d_lo, mask_hi, mask_lo):
    """3. The stochastic compare, the one definition for every core: round
    away iff r < d on their top rbits bits (r: the generator's 64 bits, d:
    the dropped fraction as 0.64 fixed point, both as hi:lo uint32 words;
    masks from lp_sr_masks).  Returns uint32 0 or 1, without branches."""
    w = np.uint32
    rh = w(r_hi & mask_hi)
    rl = w(r_lo & mask_lo)
    dh = w(d_hi & mask_hi)
    dl = w(d_lo & mask_lo)
    return w(w(rh < dh) | (w(rh == dh) & w(rl < dl)))


@_jitable
def lp_round_addend(mode, sign, m_odd, code_odd, sr_up, low):
    """3. The per-mode increment: the one definition of every rounding
    mode's decision, in SoftFloat's addend form (round.h: the table of
    addends per mode).  The dropped part is a k-bit field rest <= low =
    2^k - 1; the increment is the carry out of rest + addend:
    ``(rest + addend) >> k``, equivalently ``rest > low - addend``
    (lp_round_up).  sign, m_odd (RNE), code_odd (RO), sr_up (SR, 1 only
    when rest != 0) are uint32 0 or 1.  The addend is in [0, low].
    e4m3fn, 1.3f: 20 dropped bits rest = 0x66666, low = 0xFFFFF: RNE adds
    0x7FFFF (no carry), RU adds 0xFFFFF (carry)."""
    w = np.uint32
    if mode == RNE:
        return w(shr32(low, _W1) + w(m_odd & low))
    if mode == RNA:
        return w(low - shr32(low, _W1))
    if mode == RZ:
        return _W0
    if mode == RU:
        return w(low & w(sign - _W1))
    if mode == RD:
        return w(low & w(_W0 - sign))
    if mode == RO:
        return w(low & w(code_odd - _W1))
    return w(low & w(_W0 - sr_up))


@_jitable
def lp_round_up(mode, sign, m_odd, code_odd, sr_up, rest, low):
    """3. The compare form of lp_round_addend: uint32 1 to take the upper
    neighbour, for a dropped field rest <= low = 2^k - 1."""
    w = np.uint32
    return w(rest > w(low - lp_round_addend(mode, sign, m_odd, code_odd,
                                            sr_up, low)))


@_jitable
def lp_increment(O, sign, m, code0, d, sticky, rnd):
    """3. lp_round_up for the 64-bit cores (uint64 0 or 1): m the kept
    significand (uint64), code0 the lower neighbour's code (int64), d the
    dropped fraction (0.64), sticky the bits below d (int64 0/1), rnd the
    generator's bits.  The dropped part reduces to the 2-bit field round
    bit : sticky bit (low = 3)."""
    w = np.uint32
    mode = O[O_ROUNDING]
    sr_up = _W0
    if mode == SR:
        mh, ml = lp_sr_masks(O[O_RBITS])
        sr_up = lp_sr_less(w(rnd >> _U32), w(rnd & _LO32), w(d >> _U32),
                           w(d & _LO32), mh, ml)
    rbit = w(1) if d >= _HALF else _W0
    st = w(1) if (d & _HALF_M1) != _U0 or sticky != 0 else _W0
    rest = w(w(rbit << _W1) | st)
    up = lp_round_up(mode, w(1 if sign != 0 else 0), w(m & _U1),
                     w(code0 & 1), sr_up, rest, w(3))
    return np.uint64(up)


@_jitable
def lp_overflow_to_inf(mode, sign):
    """Is the overflowed result "infinity" (else max)?  IEEE 754 7.4."""
    if mode == RNE or mode == RNA or mode == SR:
        return True
    if mode == RU:
        return sign == 0
    if mode == RD:
        return sign != 0
    return False


@_jitable
def lp_inf_or_substitute(F, sign):
    """"Infinity" in the format: inf, else NaN, else max."""
    sb = F[SIGN_BIT] if sign != 0 else 0
    if F[INF_CODE] != NO_CODE:
        return F[INF_CODE] | sb
    if F[NAN_CODE] != NO_CODE:
        return F[NAN_CODE]
    return F[MAX_CODE] | sb


@_jitable
def lp_round_nan(F):
    """Result for a NaN input: (code, err)."""
    if F[NAN_CODE] == NO_CODE:
        return 0, ERR_NAN
    return F[NAN_CODE], 0


@_jitable
def lp_round_inf(F, O, sign):
    """Result for an infinite input: (code, err)."""
    if F[KIND] == KIND_INT:
        return (F[INT_MIN] if sign != 0 else F[INT_MAX]), 0
    if sign != 0 and F[IS_SIGNED] == 0:
        return 0, ERR_NEGATIVE
    if O[O_SATURATE] == SAT_FINITE or (F[INF_CODE] == NO_CODE
                                       and F[NAN_CODE] == NO_CODE):
        return F[MAX_CODE] | (F[SIGN_BIT] if sign != 0 else 0), 0
    return lp_inf_or_substitute(F, sign), 0


@_jitable
def lp_zero(F, sign):
    """Zero of the given sign: (code, err)."""
    if F[HAS_ZERO] == 0:
        # No zero (E8M0): NaN stands for it, as ml_dtypes does.
        if F[NAN_CODE] == NO_CODE:
            return 0, ERR_ZERO
        return F[NAN_CODE], 0
    return (F[SIGN_BIT] if (sign != 0 and F[NEGZERO] != 0) else 0), 0


@_jitable
def lp_align(sig, exp, q):
    """2. align: split |v| = sig * 2^exp (sig != 0) at quantum 2^q.
    Returns (m, d, sticky): kept significand, dropped fraction (0.64),
    sticky bit (int64 0/1)."""
    shift = q - exp                    # bits of sig below the quantum
    if shift <= 0:                     # exact; caller keeps m small
        return sig << np.uint64(-shift), _U0, 0
    if shift < 64:
        return (sig >> np.uint64(shift), sig << np.uint64(64 - shift), 0)
    if shift == 64:
        return _U0, sig, 0
    if shift - 64 < 64:
        sticky = 1 if (sig << np.uint64(128 - shift)) != _U0 else 0
        return _U0, sig >> np.uint64(shift - 64), sticky
    return _U0, _U0, 1


@_jitable
def lp_tiny(F, O, sign, E, sig, rnd):
    """Is the non-zero finite value tiny (IEEE 754 7.5)?  Before rounding
    (O_TININESS_BEFORE): |v| < 2^emin.  After rounding (default): |v|
    rounded to mbits + 1 bits with an unbounded exponent range is below
    2^emin; that differs only in the binade just below 2^emin, when every
    kept bit is 1 and the increment carries.  sig normalised (bit 63 set),
    |v| in [2^E, 2^(E+1))."""
    mb = F[MBITS]
    if E >= F[EMIN]:
        return False
    if O[O_TININESS_BEFORE] != 0 or E < F[EMIN] - 1:
        return True
    mf = sig >> np.uint64(63 - mb)             # 2. align at 2^(E-mb)
    if mf != (np.uint64(2) << np.uint64(mb)) - _U1:
        return True
    # 3. round; the lower neighbour's code in the unbounded format is
    # (E + bias) * 2^mb + mf - 2^mb (its parity for RO)
    codef = (E + F[BIAS]) * (np.int64(1) << mb) \
        + np.int64(mf - (_U1 << np.uint64(mb)))
    return lp_increment(O, sign, mf, codef, sig << np.uint64(mb + 1), 0,
                        rnd) == _U0


@_jitable
def lp_inexact_flags(tiny):
    """The exception flags of an inexact result that is not an overflow."""
    return FLAG_INEXACT | (FLAG_UNDERFLOW if tiny else 0)


@_jitable
def lp_round_float_flags(F, O, sign, exp, sig, rnd):
    """The rounding core for float formats: rounds sign * sig * 2^exp,
    sig != 0, finite.  rnd: 64 random bits (stochastic only).
    Returns (code, err, flags): enum lp_error and enum lp_flag bits
    (csrc/lowprec.h says when each is raised)."""
    mb = F[MBITS]
    mode = O[O_ROUNDING]
    # 2. Normalise: msb of sig to bit 63, so |v| is in [2^E, 2^(E+1)).
    lz = lp_clz64(sig)
    sig = sig << np.uint64(lz)
    exp = exp - lz
    E = exp + 63
    #    The quantum of E's binade, never finer than the subnormal one:
    #    e4m3fn, |v| = 0.3 -> E = -2, q = -2 - 3 = -5 (gap 1/32).
    q = (E if E > F[EMIN] else F[EMIN]) - mb
    m, d, sticky = lp_align(sig, exp, q)

    # 4. pack by addition: code = base + m.  With the hidden bit in m, the
    #    field (q + mb + bias) lands one above base's field:
    #    e4m3fn 1.75 x 2^8: q = 5, m = 0b1110, base = (5+3+7-1) << 3 = 112,
    #    code = 112 + 14 = 126 = 0b0_1111_110.  Subnormals (q at emin,
    #    m < 2^mb) have base 0 and code = m.
    base = (q + mb + F[BIAS] - 1) << mb
    code0 = base + np.int64(m)

    # 3. round
    m = m + lp_increment(O, sign, m, code0, d, sticky, rnd)
    code = base + np.int64(m)
    inexact = (d != _U0) or sticky != 0
    tiny = lp_tiny(F, O, sign, E, sig, rnd)

    # 5. check, after rounding.
    if m < (_U1 << np.uint64(mb)) and q == F[EMIN] - mb:
        # Below the smallest normal.
        if F[SUBNORMALS] == 0:
            # No subnormals and no zero (E8M0): the smallest value.
            code = np.int64(0)
            inexact = True
        elif m == _U0 or O[O_KEEP_SUBNORMALS] == 0:
            fl = lp_inexact_flags(tiny)
            if sign != 0 and F[IS_SIGNED] == 0:
                return 0, 0, fl         # rounds to zero: +0, no error
            code, err = lp_zero(F, sign)
            return code, err, fl
    elif code > F[MAX_CODE]:
        # finite overflow: SAT_FINITE and SAT_PROPAGATE give max
        if O[O_SATURATE] != SAT_OVFINF or not lp_overflow_to_inf(mode, sign):
            r = F[MAX_CODE] | (F[SIGN_BIT] if sign != 0 else 0)
        else:
            r = lp_inf_or_substitute(F, sign)
        if sign != 0 and F[IS_SIGNED] == 0:
            return 0, ERR_NEGATIVE, FLAG_INVALID
        return r, 0, FLAG_OVERFLOW | FLAG_INEXACT
    if sign != 0:
        if F[IS_SIGNED] == 0:
            return 0, ERR_NEGATIVE, FLAG_INVALID
        code = code | F[SIGN_BIT]
    return code, 0, (lp_inexact_flags(tiny) if inexact else 0)


@_jitable
def lp_round_float(F, O, sign, exp, sig, rnd):
    """lp_round_float_flags without the flags: (code, err)."""
    code, err, _ = lp_round_float_flags(F, O, sign, exp, sig, rnd)
    return code, err


@_jitable
def lp_round_int_flags(F, O, sign, exp, sig, rnd):
    """The rounding core for integer formats: sign * sig * 2^exp (any sig).
    Returns (value, flags): INEXACT when rounded, INVALID (alone) when
    clamped."""
    inexact = False
    if sig == _U0:
        v = np.int64(0)
    else:
        lz = lp_clz64(sig)
        if exp + 64 - lz > 62:
            # |v| >= 2^62: beyond every integer format, zero_point too.
            v = _INT64_MIN_HALF if sign != 0 else _INT64_MAX_HALF
        else:
            m, d, sticky = lp_align(sig, exp, 0)
            m = m + lp_increment(O, sign, m, np.int64(m), d, sticky, rnd)
            inexact = (d != _U0) or sticky != 0
            v = -np.int64(m) if sign != 0 else np.int64(m)
    v = v + O[O_ZERO_POINT]
    if v < F[INT_MIN]:
        return np.int64(F[INT_MIN]), FLAG_INVALID
    if v > F[INT_MAX]:
        return np.int64(F[INT_MAX]), FLAG_INVALID
    return v, (FLAG_INEXACT if inexact else 0)


@_jitable
def lp_round_int(F, O, sign, exp, sig, rnd):
    """lp_round_int_flags without the flags: the integer value."""
    v, _ = lp_round_int_flags(F, O, sign, exp, sig, rnd)
    return v


@_jitable
def lp_round_any_flags(F, O, cls, sign, exp, sig, rnd):
    """The core for any input, by class (0 finite, sig may be 0; 1 inf;
    2 NaN).  Returns (code, err, flags); a special input raises INVALID
    when the result is not of its class (NaN, its infinity, zero)."""
    if cls == 2:
        if F[KIND] == KIND_INT:
            return 0, ERR_NAN, FLAG_INVALID
        code, err = lp_round_nan(F)
        return code, err, (FLAG_INVALID if F[NAN_CODE] == NO_CODE else 0)
    if cls == 1:
        code, err = lp_round_inf(F, O, sign)
        bad = (F[KIND] == KIND_INT or F[INF_CODE] == NO_CODE
               or O[O_SATURATE] == SAT_FINITE
               or (sign != 0 and F[IS_SIGNED] == 0))
        return code, err, (FLAG_INVALID if bad else 0)
    if F[KIND] == KIND_INT:
        v, fl = lp_round_int_flags(F, O, sign, exp, sig, rnd)
        return v, 0, fl
    if sig == _U0:
        code, err = lp_zero(F, sign if F[IS_SIGNED] != 0 else 0)
        return code, err, (FLAG_INVALID if F[HAS_ZERO] == 0 else 0)
    return lp_round_float_flags(F, O, sign, exp, sig, rnd)


@_jitable
def lp_round_any(F, O, cls, sign, exp, sig, rnd):
    """lp_round_any_flags without the flags: (code, err)."""
    code, err, _ = lp_round_any_flags(F, O, cls, sign, exp, sig, rnd)
    return code, err


@_jitable
def lp_unpack_bits(bits, ebits, mbits):
    """1. unpack: IEEE binary bits (uint64) into (class, sign, exp, sig);
    class 0 finite, 1 infinite, 2 NaN."""
    bias = (1 << (ebits - 1)) - 1
    mmask = (_U1 << np.uint64(mbits)) - _U1
    field = np.int64((bits >> np.uint64(mbits))
                     & np.uint64((1 << ebits) - 1))
    frac = bits & mmask
    sign = np.int64((bits >> np.uint64(ebits + mbits)) & _U1)
    if field == (1 << ebits) - 1:
        return (2 if frac != _U0 else 1), sign, np.int64(0), _U0
    if field == 0:
        return 0, sign, np.int64(1 - bias - mbits), frac
    return (0, sign, np.int64(field - bias - mbits),
            frac | (_U1 << np.uint64(mbits)))


# -- the core specialised to float32 inputs (round.h: lp_round_f32) -------
#
# The same steps as lp_round_float for a float32 input u, with a 32-bit
# significand and no branches, so that a loop over it vectorises.  It
# needs every float32 subnormal below the target's normal range
# (F[F32_RANGE]: every format but E8M0); lp_k32_init says whether a
# format qualifies.  K is the C struct lp_k32 as a tuple:
K32_FIELDS = ("mb", "emin_b", "emax_b2", "bias_m128", "min_norm",
              "max_code", "sign_shift", "sub_ok", "has_sub", "negzero",
              "is_signed", "saturate", "over0", "over1", "inf_in0",
              "inf_in1", "nan_res", "err_nan", "zero_in0", "zero_in1",
              "err_zero", "err_neg_inf", "sr_mask_hi", "sr_mask_lo")


@_jitable
def lp_k32_init(F, O):
    """(ok, K): K for (F, O), ok False when the float32 core does not
    apply (then K is all zeros)."""
    u = np.uint32
    if F[F32_RANGE] == 0:
        z = u(0)
        return False, (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z,
                       z, z, z, z, z, z, z)
    over = [u(0), u(0)]
    inf_in = [u(0), u(0)]
    zero_in = [u(0), u(0)]
    err_neg_inf = u(0)
    err_zero = u(0)
    for s in range(2):
        if O[O_SATURATE] != SAT_OVFINF \
                or not lp_overflow_to_inf(O[O_ROUNDING], s):
            r = F[MAX_CODE] | (F[SIGN_BIT] if s != 0 else 0)
        else:
            r = lp_inf_or_substitute(F, s)
        over[s] = u(r)
        code, err = lp_round_inf(F, O, s)
        inf_in[s] = u(code)
        if s != 0:
            err_neg_inf = u(err)
        code, err = lp_zero(F, 1 if (s != 0 and F[IS_SIGNED] != 0) else 0)
        zero_in[s] = u(code)
        err_zero = u(err)
    # stochastic: the top rbits bits of a 64-bit number, as two words
    sr_mask_hi, sr_mask_lo = lp_sr_masks(O[O_RBITS])
    nan_res, err_nan = lp_round_nan(F)
    return True, (u(F[MBITS]), u(F[EMIN] + 127), u(F[EMAX] + 129),
                  u(F[BIAS] - 128), u(1 << F[MBITS]), u(F[MAX_CODE]),
                  u(F[NBITS] - 1),
                  u(1 if (F[SUBNORMALS] != 0 and O[O_KEEP_SUBNORMALS] != 0)
                    else 0),
                  u(F[SUBNORMALS]), u(F[NEGZERO]), u(F[IS_SIGNED]),
                  u(O[O_SATURATE]), over[0], over[1],
                  inf_in[0], inf_in[1], u(nan_res), u(err_nan), zero_in[0],
                  zero_in[1], err_zero, err_neg_inf, u(sr_mask_hi),
                  u(sr_mask_lo))


@_jitable
def lp_sel(c, x, y):
    """c ? x : y for c in {0, 1}, as masks (keeps loops free of branches)."""
    m = np.uint32(_W0 - c)
    return np.uint32((x & m) | (y & (m ^ _WALL)))


@_jitable
def lp_round_f32(K, u, mode, rnd_hi, rnd_lo):
    """The float32 core: (code, err) of the float32 bits u (uint32).  mode
    is a constant at every call site; rnd_hi:rnd_lo, the generator's 64
    bits, are used by SR only."""
    w = np.uint32
    (mb, emin_b, emax_b2, bias_m128, min_norm, max_code, sign_shift, sub_ok,
     has_sub, negzero, is_signed, saturate, over0, over1, inf_in0, inf_in1,
     nan_res, err_nan, zero_in0, zero_in1, err_zero, err_neg_inf,
     sr_mask_hi, sr_mask_lo) = K
    # 1. unpack: float32 subnormals count as exponent 1, no hidden bit
    s = u >> _W31
    a = u & _WABS
    e = w(a >> _W23)
    sig = w((a & _WMANT) | (w(e != _W0) << _W23))
    eb = e if e > _W1 else _W1
    # 2. align: the quantum's binade is max(eb, emin); bits below it go.
    #    e4m3fn, u = 1.3f: eb = 127, hi = 127, shift = 23 - 3 = 20
    hi = eb if eb > emin_b else emin_b
    shift_t = w(hi - eb + _W23 - mb)
    shift = shift_t if shift_t < _W31 else _W31
    m = shr32(sig, shift)
    low = w(shl32(_W1, shift) - _W1)
    rem = w(sig & low)
    # 4. pack by addition (base may wrap below zero for formats without
    #    subnormals; m >= 2^mb brings it back)
    hc = hi if hi < emax_b2 else emax_b2
    base = shl32(w(hc + bias_m128), mb)
    code0 = w(base + m)
    # 3. round: lp_round_addend on the dropped bits rem (k = shift)
    sr_up = _W0
    if mode == SR:
        # d = floor(dropped fraction x 2^64) in two words; shift_t >= 1
        # whenever anything is dropped.  p = 64 - shift_t places the
        # dropped bits: e4m3fn, 1.3f: shift_t = 20, d = rem << 44.
        low_bits = lp_sel(w(shift_t < w(32)), rem, sig)
        p = w(w(64) - shift_t)                      # wraps when > 64
        in_a = w(w(shift_t - _W1) < w(32))          # p in [32, 63]
        in_b = w(w(shift_t - w(33)) < w(32))        # p in [0, 31]
        in_c = w(shift_t > w(64))
        c_sh = w(shift_t - w(64)) if w(shift_t - w(64)) < _W31 else _W31
        dh_a = shl32(low_bits, w(w(p - w(32)) & _W31))
        dh_b = w(shr32(low_bits, w(w(w(32) - p) & _W31))
                 & w(_W0 - w(p != _W0)))
        dh = lp_sel(in_a, dh_a, lp_sel(in_b, dh_b, _W0))
        dl = lp_sel(in_b, shl32(low_bits, w(p & _W31)),
                    lp_sel(in_c, shr32(sig, c_sh), _W0))
        sr_up = lp_sr_less(rnd_hi, rnd_lo, dh, dl, sr_mask_hi, sr_mask_lo)
    #    the addend form on the shift dropped bits, added below the kept
    #    bits as in the shift path: (sig + addend) >> shift = m + the
    #    carry out of rem + addend (sig < 2^24, addend <= low < 2^31, no
    #    wrap); RZ's zero addend leaves m = sig >> shift
    m = shr32(w(sig + lp_round_addend(mode, s, w(m & _W1), w(code0 & _W1),
                                      sr_up, low)), shift)
    code = w(base + m)
    # 5. check: below the smallest normal, overflow, sign
    below = w(hi == emin_b) & w(m < min_norm)
    zero = below & (w(m == _W0) | (sub_ok ^ _W1)) & has_sub
    smallest = below & (has_sub ^ _W1)
    over = (below ^ _W1) & w(code > max_code)
    code = lp_sel(smallest | zero, _W0, code)
    neg_res = s & ((zero ^ _W1) | negzero) & is_signed
    code = w(code | shl32(w(neg_res), sign_shift))
    code = lp_sel(over, lp_sel(s, over1, over0), code)
    # negative non-zero result into an unsigned format
    bad_neg = s & (is_signed ^ _W1) & (zero ^ _W1)
    # 1. specials
    is_nan = w(a > _WINF)
    is_inf = w(a == _WINF)
    is_zero = w(a == _W0)
    # finite and non-zero: 0 < a < 0x7F800000, one unsigned compare (the
    # OR of three flags makes LLVM give up vectorising the loop)
    finite = w(w(a - _W1) < w(0x7F7FFFFF))
    code = lp_sel(is_zero, lp_sel(s, zero_in1, zero_in0), code)
    code = lp_sel(is_inf, lp_sel(s, inf_in1, inf_in0), code)
    code = lp_sel(is_nan, nan_res, code)
    # a negative non-zero value into an unsigned format: code 0 with the
    # error, as round_float (UE5M3's negative subnormals)
    code = lp_sel(bad_neg & finite, _W0, code)
    err = w((err_nan & w(_W0 - is_nan)) | (err_zero & w(_W0 - is_zero))
            | (err_neg_inf & w(_W0 - (is_inf & s)))
            | (w(ERR_NEGATIVE) & w(_W0 - (bad_neg & finite))))
    return code, err


# -- element access (csrc/encode.c: load_bits, round_loaded) --------------

@_jitable
def f16_to_f32_bits(h):
    """float16 bits -> float32 bits (uint32), exact (as encode.c)."""
    w = np.uint32
    h = w(h)
    sign = shl32(h & w(0x8000), w(16))
    field = (h >> w(10)) & w(0x1F)
    frac = h & w(0x3FF)
    if field == w(0x1F):
        return w(sign | w(0x7F800000) | shl32(frac, w(13)))
    if field != w(0):
        return w(sign | shl32(w(field + w(112)), w(23)) | shl32(frac, w(13)))
    if frac == w(0):
        return sign
    # subnormal: 0.frac x 2^-14, exact in float32
    v = np.float32(frac) * np.float32(1.0 / 16777216.0)
    return w(sign | f32_bits(v))


@_jitable
def lp_round_loaded(F, O, kind, bits, rnd):
    """1. unpack a loaded element (IEEE bits of float64 / float32, or an
    int64 / uint64 as its bits), then the core.  Returns (code, err)."""
    sign = np.int64(0)
    cls = np.int64(0)
    exp = np.int64(0)
    sig = _U0
    if kind == IN_F64:
        cls, sign, exp, sig = lp_unpack_bits(bits, 11, 52)
    elif kind == IN_F32:
        cls, sign, exp, sig = lp_unpack_bits(bits, 8, 23)
    elif kind == IN_I64:
        neg = np.int64(bits) < 0
        sign = np.int64(1) if neg else np.int64(0)
        sig = (_U0 - bits) if neg else bits
    else:
        sig = bits
    return lp_round_any(F, O, cls, sign, exp, sig, rnd)


def value_bits(x, has_scale, s32, s64):
    """One value as (kind, uint64 bits) after division by the scale in its
    own precision (encode.c: load_bits): float32 -> (IN_F32, its bits
    after x / s32), float64 -> (IN_F64, bits after x / s64), integers ->
    (IN_I64 / IN_U64, the integer), or (IN_F64, bits of float64(x) / s64)
    when scaled."""
    raise NotImplementedError("value_bits is only callable from Numba code")


@overload(value_bits, jit_options={"forceinline": True})
def _value_bits_overload(x, has_scale, s32, s64):
    if x == types.float64:
        def impl(x, has_scale, s32, s64):
            if has_scale:
                x = x / s64
            return IN_F64, f64_bits(x)
    elif x == types.float32:
        def impl(x, has_scale, s32, s64):
            if has_scale:
                x = x / s32
            return IN_F32, np.uint64(f32_bits(x))
    elif isinstance(x, types.Integer) and x.signed:
        def impl(x, has_scale, s32, s64):
            if has_scale:
                return IN_F64, f64_bits(np.float64(x) / s64)
            return IN_I64, np.uint64(np.int64(x))
    elif isinstance(x, types.Integer):
        def impl(x, has_scale, s32, s64):
            if has_scale:
                return IN_F64, f64_bits(np.float64(x) / s64)
            return IN_U64, np.uint64(x)
    else:
        return None
    return impl


def load_bits(a, i, has_scale, s32, s64):
    """Element i of a as value_bits does, for a float64, float32, int64 or
    uint64 array, or uint16 (float16 bits) / int16 (bfloat16 bits) arrays
    widened exactly to float32 first.  (The two 16-bit inputs travel as
    different Numba types, so no flag is tested per element.)"""
    raise NotImplementedError("load_bits is only callable from Numba code")


@overload(load_bits, jit_options={"forceinline": True})
def _load_bits_overload(a, i, has_scale, s32, s64):
    dt = a.dtype
    if dt in (types.uint16, types.int16):
        bf16 = dt == types.int16

        def impl(a, i, has_scale, s32, s64):
            if bf16:
                u = shl32(np.uint16(a[i]), np.uint32(16))
            else:
                u = f16_to_f32_bits(a[i])
            if has_scale:
                u = f32_bits(bits_f32(u) / s32)
            return IN_F32, np.uint64(u)
    elif dt in (types.float64, types.float32, types.int64, types.uint64):
        def impl(a, i, has_scale, s32, s64):
            return value_bits(a[i], has_scale, s32, s64)
    else:
        return None
    return impl


# -- decode (csrc/format.c: lp_decode_one) ---------------------------------

@_jitable
def pow2_f64(e):
    """2^e as float64 for -1022 <= e <= 1023, from its bits (exact)."""
    return bits_f64(np.uint64(e + 1023) << np.uint64(52))


@_jitable
def lp_decode_one(F, code):
    """Exact value of a code (int64) as float64: NaN codes give C's NAN
    (+quiet, 0x7FF8000000000000), inf codes +-inf.  Integer formats: the
    code is the integer itself."""
    if F[KIND] == KIND_INT:
        return np.float64(code)
    mb = F[MBITS]
    full = (np.int64(1) << F[NBITS]) - 1
    mmask = (np.int64(1) << mb) - 1
    mag = code & ~F[SIGN_BIT] & full
    neg = (code & F[SIGN_BIT]) != 0
    if F[NAN_CODE] != NO_CODE:
        if F[NANS] == NANS_IEEE:
            if (mag >> mb) == (1 << F[EBITS]) - 1 and (mag & mmask) != 0:
                return bits_f64(_F64_NAN_BITS)
        elif F[NANS] == NANS_TOP:
            if mag == F[NAN_CODE]:
                return bits_f64(_F64_NAN_BITS)
        elif (code & full) == F[NAN_CODE]:
            return bits_f64(_F64_NAN_BITS)
    if F[INF_CODE] != NO_CODE and mag == F[INF_CODE]:
        return bits_f64(_F64_NEGINF_BITS if neg else _F64_INF_BITS)
    field = mag >> mb
    m = mag & mmask
    if field == 0 and F[SUBNORMALS] != 0:
        e = F[EMIN]                    # 0.m x 2^emin
    else:
        m = m | (np.int64(1) << mb)
        e = field - F[BIAS]            # 1.m x 2^(field-bias)
    # ldexp((double)m, e - mb): m < 2^24 and e - mb >= -276, so the product
    # by the power of two is exact.
    v = np.float64(m) * pow2_f64(e - mb)
    return -v if neg else v


@_jitable
def decode_value(F, code, zp, has_scale, s):
    """decode.c, one element: the exact value of code (minus zp for
    integer formats) times s, in float64 (the caller rounds it once to the
    output type; s is the scale in the output's precision)."""
    if F[KIND] == KIND_INT:
        v = np.float64(code - zp)
    else:
        v = lp_decode_one(F, code)
    if has_scale:
        v = v * s
    return v


@_jitable
def encode_scalar(F, O, K, use32, x, has_scale, s32, s64, key, index):
    """(code, err) of one value x (float32, float64 or an integer) for the
    scalar functions of lowprec.jit: float32 inputs through the float32
    core when use32 (= lp_k32_init's ok: branch-free, so user loops over
    it vectorise), everything else through the general core.  key, index:
    the generator's key mix64(seed) and the element index (stochastic
    rounding only)."""
    kind, bits = value_bits(x, has_scale, s32, s64)
    sr = O[O_ROUNDING] == SR
    if use32 and kind == IN_F32:
        u = np.uint64(index)
        lo = np.uint32(u & _LO32)
        hi = np.uint32(u >> _U32)
        r_hi = lp_hash32(np.uint32(key >> _U32), lo, hi) if sr \
            else np.uint32(0)
        r_lo = lp_hash32(np.uint32(key & _LO32), lo, hi) if sr \
            else np.uint32(0)
        code, err = lp_round_f32(K, np.uint32(bits), O[O_ROUNDING], r_hi,
                                 r_lo)
        return np.int64(code), np.int64(err)
    rnd = lp_random_keyed(key, index) if sr else _U0
    return lp_round_loaded(F, O, kind, bits, rnd)
