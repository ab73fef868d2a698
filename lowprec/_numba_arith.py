"""Operations on codes in Numba: csrc/arith.c, step for step.

The backend="numba" of lp.add / sub / mul / div / fma / sqrt / convert and
the scalar functions of lowprec.jit (lp.jit.add & co.).  Every function
mirrors the C function of the same name and keeps its numbered steps:

  1. unpack   every operand code to (class, sign, snan, exp, sig), sig odd
  2. specials NaN, infinity and the invalid cases (IEEE 754 7.2)
  3. exact    the finite result as sign * w * 2^e, w a 128-bit integer held
              as two uint64 words (hi, lo); its bit 0 is a sticky bit where
              the exact result needs more bits
  4. round    w narrowed to 64 bits (jammed again) and rounded once by the
              core of lowprec/_numba_core.py (lp_round_any_flags), with the
              flags

One difference of form: C calls the core where each case is settled; here
an operation returns what is to be rounded (class, sign, e, w and the
flags raised so far) and round_result calls the core once, so that the
inlined core appears once per kernel instead of a dozen times (compile
time).  The calls are those of C, with the same arguments.

Numba has no 128-bit integers: the u128_* functions below are the few
operations arith.c uses (shifts by any count below 128, add, subtract,
compare, division by a number below 2^32).  LLVM's shifts by 64 or more
are undefined, so every shift count is range-checked.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from . import _numba_core as core
from ._numba_core import (
    EBITS, EMIN, FLAG_INEXACT, FLAG_INFINITE, FLAG_INVALID, FLAG_OVERFLOW,
    FLAG_UNDERFLOW, IS_SIGNED, KIND, KIND_FLOAT, KIND_INT, LAYOUT,
    LAYOUT_BINARY16, LAYOUT_BINARY32, LAYOUT_TRUNC32, MBITS, NANS, NANS_IEEE,
    O_RBITS, O_ROUNDING, O_TININESS_BEFORE, RD, RU, RZ, SR, ctz64, f64_bits,
    lp_clz64, lp_decode_one, lp_random_keyed, lp_round_any_flags, lp_sr_less,
    lp_sr_masks, lp_unpack_bits)
from ._numba_backend import _opts, _params
from ._threads import run_chunked

_jitable = numba.njit(forceinline=True, cache=True)
_kernel = numba.njit(nogil=True, cache=True)

# enum lp_op (csrc/lowprec.h; tests check the values against lib.LP_OP_*)
OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FMA, OP_SQRT, OP_CONVERT = range(7)

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U32 = np.uint64(32)
_LO32 = np.uint64(0xFFFFFFFF)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


# -- 64- and 128-bit helpers -----------------------------------------------

@_jitable
def shl64(x, r):
    """x << r for any r >= 0 (0 from 64 on)."""
    if r >= 64:
        return _U0
    return x << np.uint64(r)


@_jitable
def shr64(x, r):
    """x >> r for any r >= 0 (0 from 64 on)."""
    if r >= 64:
        return _U0
    return x >> np.uint64(r)


@_jitable
def bitlen64(x):
    """Bits of x (0 for 0), as int64."""
    if x == _U0:
        return np.int64(0)
    return np.int64(64) - lp_clz64(x)


@_jitable
def bitlen128(hi, lo):
    if hi != _U0:
        return np.int64(128) - lp_clz64(hi)
    return bitlen64(lo)


@_jitable
def u128_shl(hi, lo, r):
    """(hi:lo) << r, 0 <= r < 128 (bits above 128 drop)."""
    if r <= 0:
        return hi, lo
    if r >= 64:
        return shl64(lo, r - 64), _U0
    return (hi << np.uint64(r)) | (lo >> np.uint64(64 - r)), \
        lo << np.uint64(r)


@_jitable
def u128_shr(hi, lo, r):
    """(hi:lo) >> r, 0 <= r < 128."""
    if r <= 0:
        return hi, lo
    if r >= 64:
        return _U0, shr64(hi, r - 64)
    return hi >> np.uint64(r), \
        (lo >> np.uint64(r)) | (hi << np.uint64(64 - r))


@_jitable
def u128_low(hi, lo, r):
    """(hi:lo) & (2^r - 1), 0 <= r <= 128."""
    if r >= 128:
        return hi, lo
    if r >= 64:
        return hi & (shl64(_U1, r - 64) - _U1), lo
    return _U0, lo & (shl64(_U1, r) - _U1)


@_jitable
def shift_right_jam(hi, lo, r):
    """(hi:lo) >> r with the bits shifted out OR-ed into bit 0 (r >= 0)."""
    if r <= 0:
        return hi, lo
    if r >= 128:
        return _U0, (_U1 if (hi | lo) != _U0 else _U0)
    mh, ml = u128_low(hi, lo, r)
    h, lw = u128_shr(hi, lo, r)
    return h, lw | (_U1 if (mh | ml) != _U0 else _U0)


@_jitable
def u128_add(ah, al, bh, bl):
    lo = al + bl
    return ah + bh + (_U1 if lo < al else _U0), lo


@_jitable
def u128_sub(ah, al, bh, bl):
    """a - b for a >= b."""
    return ah - bh - (_U1 if al < bl else _U0), al - bl


@_jitable
def u128_ge(ah, al, bh, bl):
    return ah > bh or (ah == bh and al >= bl)


@_jitable
def _div_step(r, limb, d):
    """One 32-bit limb of long division: (quotient limb, remainder)."""
    cur = (r << _U32) | limb
    q = cur // d
    return q, cur - q * d


@_jitable
def u128_divmod32(hi, lo, d):
    """(hi:lo) // d and (hi:lo) % d for 0 < d < 2^32, by 32-bit limbs (the
    partial remainder stays below 2^32, so each step fits 64 bits).
    Written without arrays, so that it compiles for numba.cuda too."""
    q3, r = _div_step(_U0, hi >> _U32, d)
    q2, r = _div_step(r, hi & _LO32, d)
    q1, r = _div_step(r, lo >> _U32, d)
    q0, r = _div_step(r, lo & _LO32, d)
    return (q3 << _U32) | q2, (q1 << _U32) | q0, r


# -- 1. unpack ---------------------------------------------------------------

@_jitable
def unpack_code(F, code):
    """(cls, sign, snan, exp, sig) of a code (int64): value
    (-1)^sign * sig * 2^exp for cls 0 (sig odd, or 0 for a zero), cls 1
    infinite, 2 NaN; snan for IEEE signalling NaNs (top mantissa bit
    clear).  IEEE layouts read the code's own fields, the others its exact
    value (lp_decode_one, exact in binary64)."""
    lay = F[LAYOUT]
    if lay == LAYOUT_BINARY16 or lay == LAYOUT_BINARY32 \
            or lay == LAYOUT_TRUNC32:
        cls, sign, exp, sig = lp_unpack_bits(np.uint64(code), F[EBITS],
                                             F[MBITS])
    else:
        cls, sign, exp, sig = lp_unpack_bits(
            f64_bits(lp_decode_one(F, code)), 11, 52)
    mb = F[MBITS]
    snan = (cls == 2 and F[KIND] == KIND_FLOAT and F[NANS] == NANS_IEEE
            and mb > 0 and ((code >> (mb - 1)) & 1) == 0)
    if cls == 0 and sig != _U0:
        tz = ctz64(sig)
        sig = sig >> np.uint64(tz)
        exp = exp + tz
    return np.int64(cls), np.int64(sign), snan, np.int64(exp), sig


# -- 3. exact results ----------------------------------------------------------

@_jitable
def add_exact(sa, ea, ma, sb, eb, mb):
    """arith.c add_exact: the exact sum of two non-zero values
    sa * ma * 2^ea + sb * mb * 2^eb (ma, mb < 2^63) as (sign, e, hi, lo),
    the larger at bit 125, the smaller jammed below bit 0.  hi:lo = 0 for
    an exact zero."""
    la = bitlen64(ma)
    lb = bitlen64(mb)
    if ea + la < eb + lb:
        sa, sb = sb, sa
        ea, eb = eb, ea
        ma, mb = mb, ma
        la, lb = lb, la
    sx = 126 - la
    xh, xl = u128_shl(_U0, ma, sx)
    e0 = ea - sx
    dy = eb - e0
    if dy >= 0:
        yh, yl = u128_shl(_U0, mb, dy)
    else:
        yh, yl = shift_right_jam(_U0, mb, 200 if dy < -200 else -dy)
    if sa == sb:
        wh, wl = u128_add(xh, xl, yh, yl)
        return sa, e0, wh, wl
    if u128_ge(xh, xl, yh, yl):
        wh, wl = u128_sub(xh, xl, yh, yl)
        return sa, e0, wh, wl
    wh, wl = u128_sub(yh, yl, xh, xl)
    return sb, e0, wh, wl


@_jitable
def div_exact(ea, ma, eb, mb):
    """arith.c div_exact: ma / mb as (e, hi, lo), jammed: the dividend at
    bit 126, w = 2q + (remainder != 0)."""
    s = 127 - bitlen64(ma)
    nh, nl = u128_shl(_U0, ma, s)
    qh, ql, r = u128_divmod32(nh, nl, mb)
    wh, wl = u128_shl(qh, ql, 1)
    return ea - s - eb - 1, wh, wl | (_U1 if r != _U0 else _U0)


@_jitable
def sqrt_exact(ex, m):
    """arith.c sqrt_exact: the square root of m * 2^ex (m != 0) as
    (e, hi, lo), bit by bit to T = 90 bits below the point, jammed."""
    T = 90
    if ex & 1:
        m = m << _U1
        ex = ex - 1
    pairs = (bitlen64(m) + 1) // 2
    rh, rl = _U0, _U0                 # root
    mh, ml = _U0, _U0                 # remainder
    for i in range(pairs - 1, -T - 1, -1):
        two = (m >> np.uint64(2 * i)) & np.uint64(3) if i >= 0 else _U0
        mh, ml = u128_shl(mh, ml, 2)
        ml = ml | two
        th, tl = u128_shl(rh, rl, 2)
        tl = tl | _U1
        rh, rl = u128_shl(rh, rl, 1)
        if u128_ge(mh, ml, th, tl):
            mh, ml = u128_sub(mh, ml, th, tl)
            rl = rl | _U1
    wh, wl = u128_shl(rh, rl, 1)
    return ex // 2 - T - 1, wh, wl | (_U1 if (mh | ml) != _U0 else _U0)


# -- 2./3. one operation: what to round ------------------------------------------

@_jitable
def _special(cls, sign, flags):
    """A result of class cls (1 infinite, 2 NaN) or an exact zero (cls 0,
    w = 0) with the flags raised so far."""
    return np.int64(cls), np.int64(sign), np.int64(0), _U0, _U0, \
        np.int64(flags)


@_jitable
def _finite(sign, e, hi, lo):
    return np.int64(0), np.int64(sign), np.int64(e), hi, lo, np.int64(0)


@_jitable
def _sum(mode, sa, ea, ma, sb, eb, mb):
    """The sum of two finite values sa * ma * 2^ea + sb * mb * 2^eb (add,
    sub, and fma's product plus c), zeros included: an exact zero sum is
    +0, -0 toward_negative, and (-0) + (-0) = -0 (IEEE 754 6.3)."""
    if ma == _U0 or mb == _U0:
        if ma == _U0 and mb == _U0:
            return _special(0, sa if sa == sb else (1 if mode == RD else 0),
                            0)
        if ma != _U0:
            return _finite(sa, ea, _U0, ma)
        return _finite(sb, eb, _U0, mb)
    s, e, wh, wl = add_exact(sa, ea, ma, sb, eb, mb)
    if wh == _U0 and wl == _U0:
        return _special(0, 1 if mode == RD else 0, 0)
    return _finite(s, e, wh, wl)


@_jitable
def op_result(op, mode, x, y, z):
    """arith.c op_one up to the rounding: (cls, sign, e, hi, lo, flags),
    the value sign * (hi:lo) * 2^e for cls 0 (zero when hi:lo = 0), and
    the flags the operation raises itself (INVALID, INFINITE).  x, y, z:
    unpacked operands (unpack_code; y, z unused by the unary ops); mode:
    the rounding mode (the sign of exact zero sums)."""
    xc, xs, xn, xe, xm = x
    yc, ys, yn, ye, ym = y
    zc, zs, zn, ze, zm = z
    if op == OP_CONVERT:
        if xc == 2:
            return _special(2, 0, FLAG_INVALID if xn else 0)
        if xc == 1:
            return _special(1, xs, 0)
        return _finite(xs, xe, _U0, xm)          # a zero stays a zero
    if op == OP_ADD or op == OP_SUB:
        if op == OP_SUB and yc != 2:
            ys = ys ^ 1
        if xc == 2 or yc == 2:
            return _special(2, 0, FLAG_INVALID if (xn or yn) else 0)
        if xc == 1 and yc == 1 and xs != ys:
            return _special(2, 0, FLAG_INVALID)
        if xc == 1 or yc == 1:
            return _special(1, xs if xc == 1 else ys, 0)
        return _sum(mode, xs, xe, xm, ys, ye, ym)
    if op == OP_MUL:
        if xc == 2 or yc == 2:
            return _special(2, 0, FLAG_INVALID if (xn or yn) else 0)
        s = xs ^ ys
        if xc == 1 or yc == 1:
            if (xc == 0 and xm == _U0) or (yc == 0 and ym == _U0):
                return _special(2, 0, FLAG_INVALID)       # 0 * inf
            return _special(1, s, 0)
        if xm == _U0 or ym == _U0:
            return _special(0, s, 0)
        return _finite(s, xe + ye, _U0, xm * ym)          # < 2^48
    if op == OP_DIV:
        if xc == 2 or yc == 2:
            return _special(2, 0, FLAG_INVALID if (xn or yn) else 0)
        s = xs ^ ys
        if xc == 1:
            if yc == 1:
                return _special(2, 0, FLAG_INVALID)
            return _special(1, s, 0)
        if yc == 1:
            return _special(0, s, 0)
        if ym == _U0:
            if xm == _U0:
                return _special(2, 0, FLAG_INVALID)       # 0 / 0
            return _special(1, s, FLAG_INFINITE)
        if xm == _U0:
            return _special(0, s, 0)
        e, wh, wl = div_exact(xe, xm, ye, ym)
        return _finite(s, e, wh, wl)
    if op == OP_SQRT:
        if xc == 2:
            return _special(2, 0, FLAG_INVALID if xn else 0)
        if xc == 0 and xm == _U0:
            return _special(0, xs, 0)                     # sqrt(-0)
        if xs != 0:
            return _special(2, 0, FLAG_INVALID)
        if xc == 1:
            return _special(1, 0, 0)
        e, wh, wl = sqrt_exact(xe, xm)
        return _finite(0, e, wh, wl)
    # OP_FMA: x * y + z
    zero_inf = (xc == 1 and yc == 0 and ym == _U0) \
        or (yc == 1 and xc == 0 and xm == _U0)
    if xc == 2 or yc == 2 or zc == 2 or zero_inf:
        return _special(2, 0, FLAG_INVALID if (xn or yn or zn or zero_inf)
                        else 0)
    sp = xs ^ ys
    if xc == 1 or yc == 1:
        if zc == 1 and zs != sp:
            return _special(2, 0, FLAG_INVALID)
        return _special(1, sp, 0)
    if zc == 1:
        return _special(1, zs, 0)
    return _sum(mode, sp, xe + ye, xm * ym, zs, ze, zm)   # xm * ym < 2^48


# -- 4. round ------------------------------------------------------------------

@_jitable
def _with_mode(O, mode):
    return (np.int64(mode), O[1], O[2], O[3], O[4], O[5])


@_jitable
def sr_fraction(e, hi, lo, q):
    """arith.c sr_fraction: floor(frac * 2^64), frac the part of
    (hi:lo) * 2^e below 2^q in units of 2^q."""
    shift = q - e                       # bits of w below the quantum
    if shift <= 0:
        return _U0
    if shift <= 64:
        _, rest = u128_low(hi, lo, shift)
        return shl64(rest, 64 - shift)
    if shift < 128:
        rh, rl = u128_low(hi, lo, shift)
        _, d = u128_shr(rh, rl, shift - 64)
        return d
    if shift < 192:
        _, d = u128_shr(hi, lo, shift - 64)
        return d
    return _U0


@_jitable
def _sr_less(rnd, d, mh, ml):
    return lp_sr_less(np.uint32(rnd >> _U32), np.uint32(rnd & _LO32),
                      np.uint32(d >> _U32), np.uint32(d & _LO32), mh, ml)


@_jitable
def round_result(F, O, cls, sign, e, hi, lo, flags0, rnd):
    """arith.c round_wide and the nan / inf / zero results: (code, err,
    flags) of what op_result returned.  Stochastic rounding into a float
    format: the dropped fraction d to 64 bits from w, the core's compare,
    then the core rounds toward zero or away from zero as it picked (a
    rounding toward zero that still overflows is redone away from zero:
    stochastic rounding overflows to infinity), and underflow with
    tininess after rounding in the binade below 2^emin as lp_encode's core
    decides it (see arith.c)."""
    sig = _U0
    exp = np.int64(0)
    Ou = _with_mode(O, O[O_ROUNDING])
    r = rnd
    retry = False
    sr = False
    n = np.int64(0)
    E = np.int64(0)
    away_mode = RD if sign != 0 else RU
    mh, ml = lp_sr_masks(O[O_RBITS])
    if cls != 0 or (hi == _U0 and lo == _U0):
        r = _U0
    else:
        n = bitlen128(hi, lo)
        if n <= 64:
            sig = lo
            exp = e
        else:
            _, sig = shift_right_jam(hi, lo, n - 64)
            exp = e + (n - 64)
        E = e + n - 1
        if O[O_ROUNDING] == SR and F[KIND] == KIND_FLOAT:
            sr = True
            q = (E if E > F[EMIN] else F[EMIN]) - F[MBITS]
            if _sr_less(rnd, sr_fraction(e, hi, lo, q), mh, ml) != 0:
                Ou = _with_mode(O, away_mode)
            else:
                Ou = _with_mode(O, RZ)
                retry = True
            r = _U0
    code = np.int64(0)
    err = np.int64(0)
    fl = np.int64(0)
    for _ in range(2):      # one call site of the core (see the docstring)
        code, err, fl = lp_round_any_flags(F, Ou, cls, sign, exp, sig, r)
        if not (retry and (fl & FLAG_OVERFLOW) != 0):
            break
        Ou = _with_mode(O, away_mode)
        retry = False
    fl = np.int64(fl)
    if sr and O[O_TININESS_BEFORE] == 0 and E == F[EMIN] - 1 \
            and (fl & FLAG_INEXACT) != 0:
        ones = (np.uint64(2) << np.uint64(F[MBITS])) - _U1
        top = n - 1 - F[MBITS]
        if top >= 0:
            _, mf = u128_shr(hi, lo, top)
        else:
            mf = shl64(lo, -top)
        up = mf == ones and _sr_less(
            rnd, sr_fraction(e, hi, lo, E - F[MBITS]), mh, ml) != 0
        fl = (fl & ~np.int64(FLAG_UNDERFLOW)) | (0 if up else FLAG_UNDERFLOW)
    return np.int64(code), np.int64(err), fl | flags0


@_jitable
def arith_codes(op, F, O, FA, FB, FC, a, b, c, rnd):
    """lp_arith_one: (code, err, flags) of op on the codes a, b, c (int64;
    b, c unused by the unary ops) of formats FA, FB, FC into F.  rnd: the
    64 random bits of stochastic rounding (else unused)."""
    x = unpack_code(FA, a)
    y = x
    z = x
    if op != OP_SQRT and op != OP_CONVERT:
        y = unpack_code(FB, b)
        z = y
        if op == OP_FMA:
            z = unpack_code(FC, c)
    cls, sign, e, hi, lo, fl0 = op_result(op, O[O_ROUNDING], x, y, z)
    return round_result(F, O, cls, sign, e, hi, lo, fl0, rnd)


# -- array kernel (lp_arith) ---------------------------------------------------

@_jitable
def _load(F, arr, i):
    """Element i of a code array viewed unsigned, as int64; codes of signed
    integer formats sign-extended from the storage width."""
    v = np.int64(arr[i])
    if F[KIND] == KIND_INT and F[IS_SIGNED] != 0:
        w = arr.itemsize * 8
        if v >= (np.int64(1) << (w - 1)):
            v = v - (np.int64(1) << w)
    return v


@_kernel
def arith_chunk(op, F, O, FA, FB, FC, a, b, c, out, flags, want_flags, key,
                index0, rw, has_rw):
    """lp_arith over one chunk: out[i] = op(a[i], b[i], c[i]) (flat
    arrays of one length, viewed unsigned; b, c may be a for the unary
    ops), flags[i] its flags when want_flags, with its error bits from
    bit 5 up (as arith.c's tables; run masks them off).  Stochastic
    rounding draws
    lp_random_keyed(key, index0 + i), or with has_rw the caller's word rw[i]
    (round.h lp_random_given: ~r << (64 - rbits)).  Returns the OR of the
    error bits."""
    err = np.int64(0)
    sr = O[O_ROUNDING] == SR
    sh = np.uint64(64 - O[O_RBITS])
    for i in range(a.size):
        rnd = _U0
        if sr:
            if has_rw:
                rnd = (rw[i] ^ _ALL) << sh
            else:
                rnd = lp_random_keyed(key, index0 + i)
        ca = _load(FA, a, i)
        cb = _load(FB, b, i)
        cc = _load(FC, c, i)
        code, e, fl = arith_codes(op, F, O, FA, FB, FC, ca, cb, cc, rnd)
        out[i] = code
        if want_flags:
            flags[i] = fl | (e << 5)
        err |= e
    return err


@_kernel
def lookup_chunk(codes, tflags, a, b, out, flags, want_flags):
    """arith.c lp_arith_lookup: out[i] = codes[a[i] << 8 | b[i]] (8-bit
    formats), flags from the table's low 5 bits; returns the OR of the
    error bits the table holds above them."""
    acc = np.uint32(0)
    for i in range(a.size):
        k = (np.int64(a[i]) << 8) | np.int64(b[i])
        t = tflags[k]
        out[i] = codes[k]
        if want_flags:
            flags[i] = t & np.uint8(31)
        acc |= np.uint32(t)
    return np.int64(acc >> np.uint32(5))


core.drop_stale_cache(arith_chunk)

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32}


@functools.lru_cache(maxsize=64)
def _table(op, F, O, FA, FB):
    """The 256 x 256 codes and flags (error bits from bit 5 up, as
    arith_chunk stores them) of a binary operation on 8-bit formats, every
    pair through arith_chunk (arith.c lp_arith_table; codes outside a
    format give code 0), read-only."""
    a = np.repeat(np.arange(256, dtype=np.uint8), 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256)
    valid = (a < (1 << FA[core.NBITS])) & (b < (1 << FB[core.NBITS]))
    codes = np.zeros(65536, np.uint8)
    flags = np.zeros(65536, np.uint8)
    av, bv = a[valid], b[valid]
    out = np.empty(av.size, np.uint8)
    fl = np.empty(av.size, np.uint8)
    arith_chunk(op, F, O, FA, FB, FA, av, bv, av, out, fl, True,
                np.uint64(0), 0, np.zeros(1, np.uint64), False)
    codes[valid] = out
    flags[valid] = fl
    codes.flags.writeable = False
    flags.flags.writeable = False
    return codes, flags


def run(op, fmt, arrays, formats, opts, want_flags, words, table):
    """lp.<op> with backend="numba": arrays are the broadcast, contiguous
    operand code arrays (one per operand), formats their formats, opts the
    cffi lp_opts (its seed and rbits), words the caller's random words
    (flat uint64) or None, table: read a 256 x 256 table (arith._uses_table,
    the C path's rule).  Returns (codes, flags, err) as the C path."""
    shape = arrays[0].shape
    out = np.empty(shape, fmt.code_dtype)
    flags = np.zeros(shape, np.uint8)
    flat = [a.reshape(-1).view(_UNSIGNED[a.dtype.itemsize]) for a in arrays]
    fs = [_params(f) for f in formats]
    flat += [flat[0]] * (3 - len(flat))
    fs += [fs[0]] * (3 - len(fs))
    o_out = out.reshape(-1).view(_UNSIGNED[out.dtype.itemsize])
    o_fl = flags.reshape(-1)
    F, O = _params(fmt), _opts(opts)
    op = int(op)
    want = bool(want_flags)
    n = out.size
    if not n:
        return out, flags, 0
    if table:
        tc, tf = _table(op, F, O, fs[0], fs[1])
        err = run_chunked(lambda s, e: int(lookup_chunk(
            tc, tf, flat[0][s:e], flat[1][s:e], o_out[s:e], o_fl[s:e],
            want)), n)
        return out, flags, err
    key = np.uint64(core.mix64_py(int(opts.seed)))
    has_rw = words is not None
    rw = words if has_rw else np.zeros(1, np.uint64)
    err = run_chunked(lambda s, e: int(arith_chunk(
        op, F, O, fs[0], fs[1], fs[2], flat[0][s:e], flat[1][s:e],
        flat[2][s:e], o_out[s:e], o_fl[s:e], want, key, s,
        rw[s:e] if has_rw else rw, has_rw)), n)
    if want:
        np.bitwise_and(flags, 31, out=flags)        # the error bits go
    return out, flags, err
