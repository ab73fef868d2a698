/* round.h -- the rounding core (internal; inlined into every kernel).
 *
 * Every conversion in lowprec goes through lp_round_core:
 *   1. unpack   the input is given as sign * sig * 2^exp, sig a uint64
 *   2. align    normalise sig, pick the quantum of the target binade and
 *               split sig into the kept significand m and the dropped
 *               fraction d (a 0.64 fixed-point number, plus a sticky bit)
 *   3. round    one per-mode increment decides m or m + 1
 *   4. pack     code = base + m, by addition: a carry out of the mantissa
 *               field ripples into the exponent field
 *   5. check    overflow, flush, sign, after rounding
 * The Numba kernels (lowprec/_numba_core.py) mirror these steps with the
 * same numbers.
 */
#ifndef LOWPREC_ROUND_H
#define LOWPREC_ROUND_H

#include "lowprec.h"

#if defined(__GNUC__)
#define LP_INLINE static inline __attribute__((always_inline))
#else
#define LP_INLINE static inline
#endif

/* splitmix64 finaliser. */
LP_INLINE uint64_t lp_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The stochastic-rounding generator: the splitmix64 stream keyed by
 * mix(seed), read at position index + 1.  Depends on nothing but
 * (seed, index), so every chunking, thread count and backend agree. */
LP_INLINE uint64_t lp_random_keyed(uint64_t key, int64_t index)
{
    return lp_mix64(key + ((uint64_t)index + 1) * 0x9E3779B97F4A7C15ULL);
}

LP_INLINE int lp_clz64(uint64_t x)
{
    return __builtin_clzll(x);  /* x != 0 */
}

/* 3. The per-mode increment.  m_odd: the lower neighbour's parity that the
 * mode looks at (significand for RNE, code for RO); d: dropped fraction as
 * 0.64 fixed point; sticky: bits below d were non-zero. */
LP_INLINE int lp_increment(int mode, int sign, int m_odd, int code_odd,
                           uint64_t d, int sticky, uint64_t rnd, int rbits)
{
    const uint64_t half = (uint64_t)1 << 63;
    int inexact = (d | (uint64_t)sticky) != 0;
    switch (mode) {
    case LP_RNE:
        return d > half || (d == half && (sticky || m_odd));
    case LP_RNA:
        return d >= half;
    case LP_RZ:
        return 0;
    case LP_RU:
        return inexact && !sign;
    case LP_RD:
        return inexact && sign;
    case LP_RO:
        return inexact && !code_odd;
    default: /* LP_SR: away iff r < floor(d * 2^rbits), r uniform rbits */
        return (rnd >> (64 - rbits)) < (d >> (64 - rbits));
    }
}

/* Is the overflowed result "infinity" (else the largest finite value)?
 * IEEE 754 7.4: nearest modes overflow to inf, toward zero to max, the
 * directed modes by direction.  Stochastic follows its random choice: it
 * only overflows when it picked the neighbour above max. */
LP_INLINE int lp_overflow_to_inf(int mode, int sign)
{
    switch (mode) {
    case LP_RNE: case LP_RNA: case LP_SR:
        return 1;
    case LP_RU:
        return !sign;
    case LP_RD:
        return sign;
    default:
        return 0;
    }
}

/* "Infinity" in the format: inf, else NaN, else max. */
LP_INLINE int64_t lp_inf_or_substitute(const lp_format *f, int sign)
{
    if (f->inf_code != LP_NO_CODE)
        return f->inf_code | (sign ? f->sign_bit : 0);
    if (f->nan_code != LP_NO_CODE)
        return f->nan_code;
    return f->max_code | (sign ? f->sign_bit : 0);
}

/* Result for a NaN input. */
LP_INLINE int64_t lp_round_nan(const lp_format *f, int *err)
{
    if (f->nan_code == LP_NO_CODE) {
        *err |= LP_ERR_NAN;
        return 0;
    }
    return f->nan_code;
}

/* Result for an infinite input. */
LP_INLINE int64_t lp_round_inf(const lp_format *f, const lp_opts *o,
                               int sign, int *err)
{
    if (f->kind == LP_INT)
        return sign ? f->int_min : f->int_max;
    if (sign && !f->is_signed) {
        *err |= LP_ERR_NEGATIVE;
        return 0;
    }
    if (o->saturate || (f->inf_code == LP_NO_CODE
                        && f->nan_code == LP_NO_CODE))
        return f->max_code | (sign ? f->sign_bit : 0);
    return lp_inf_or_substitute(f, sign);
}

/* Zero of the given sign. */
LP_INLINE int64_t lp_zero(const lp_format *f, int sign, int *err)
{
    if (!f->has_zero) {
        /* No zero (E8M0): NaN stands for it, as ml_dtypes does. */
        if (f->nan_code == LP_NO_CODE) {
            *err |= LP_ERR_ZERO;
            return 0;
        }
        return f->nan_code;
    }
    return (sign && f->negzero) ? f->sign_bit : 0;
}

/* 2. align: split |v| = sig * 2^exp (sig != 0) at quantum 2^q.
 * Writes the kept significand, the dropped fraction d (0.64) and sticky. */
LP_INLINE void lp_align(uint64_t sig, int32_t exp, int32_t q, uint64_t *m,
                        uint64_t *d, int *sticky)
{
    int32_t shift = q - exp;           /* bits of sig below the quantum */
    if (shift <= 0) {                  /* exact; caller keeps m small */
        *m = sig << -shift;
        *d = 0;
        *sticky = 0;
    } else if (shift < 64) {
        *m = sig >> shift;
        *d = sig << (64 - shift);
        *sticky = 0;
    } else if (shift == 64) {
        *m = 0;
        *d = sig;
        *sticky = 0;
    } else {
        *m = 0;
        *d = shift - 64 < 64 ? sig >> (shift - 64) : 0;
        *sticky = shift - 64 < 64 ? (sig << (128 - shift)) != 0 : 1;
    }
}

/* The rounding core for float formats: rounds sign * sig * 2^exp, sig != 0,
 * finite.  rnd: 64 random bits (stochastic rounding only). */
LP_INLINE int64_t lp_round_float(const lp_format *f, const lp_opts *o,
                                 int sign, int32_t exp, uint64_t sig,
                                 uint64_t rnd, int *err)
{
    const int32_t mb = f->mbits;
    /* 2. Normalise: msb of sig to bit 63, so |v| is in [2^E, 2^(E+1)). */
    int lz = lp_clz64(sig);
    sig <<= lz;
    exp -= lz;
    int32_t E = exp + 63;
    /*    The quantum of E's binade, never finer than the subnormal one:
     *    e4m3fn, |v| = 0.3 -> E = -2, q = -2 - 3 = -5 (gap 1/32). */
    int32_t q = (E > f->emin ? E : f->emin) - mb;
    uint64_t m, d;
    int sticky;
    lp_align(sig, exp, q, &m, &d, &sticky);

    /* 4. pack by addition: code = base + m.  With the hidden bit in m,
     *    the field (q + mb + bias) lands one above base's field:
     *    e4m3fn 1.75 x 2^8: q = 5, m = 0b1110, base = (5+3+7-1) << 3 = 112,
     *    code = 112 + 14 = 126 = 0b0_1111_110.  Subnormals (q at emin,
     *    m < 2^mb) have base 0 and code = m. */
    int64_t base = (int64_t)(q + mb + f->bias - 1) << mb;
    int64_t code0 = base + (int64_t)m;

    /* 3. round */
    int inc = lp_increment(o->rounding, sign, (int)(m & 1), (int)(code0 & 1),
                           d, sticky, rnd, o->rbits);
    m += (uint64_t)inc;
    int64_t code = base + (int64_t)m;

    /* 5. check, after rounding. */
    if (m < ((uint64_t)1 << mb) && q == f->emin - mb) {
        /* Below the smallest normal. */
        if (!f->subnormals) {
            /* No subnormals and no zero (E8M0): the smallest value. */
            code = 0;
        } else if (m == 0 || !o->subnormals) {
            if (sign && !f->is_signed)
                return 0;           /* rounds to zero: +0, no error */
            return lp_zero(f, sign, err);
        }
    } else if (code > f->max_code) {
        int64_t r;
        if (o->saturate || !lp_overflow_to_inf(o->rounding, sign))
            r = f->max_code | (sign ? f->sign_bit : 0);
        else
            r = lp_inf_or_substitute(f, sign);
        if (sign && !f->is_signed) {
            *err |= LP_ERR_NEGATIVE;
            return 0;
        }
        return r;
    }
    if (sign) {
        if (!f->is_signed) {
            *err |= LP_ERR_NEGATIVE;
            return 0;
        }
        code |= f->sign_bit;
    }
    return code;
}

/* The rounding core for integer formats: sign * sig * 2^exp (any sig). */
LP_INLINE int64_t lp_round_int(const lp_format *f, const lp_opts *o,
                               int sign, int32_t exp, uint64_t sig,
                               uint64_t rnd)
{
    int64_t v;
    if (sig == 0) {
        v = 0;
    } else {
        int lz = lp_clz64(sig);
        if (exp + 64 - lz > 62) {
            /* |v| >= 2^62: beyond every integer format, zero_point too. */
            v = sign ? INT64_MIN / 2 : INT64_MAX / 2;
        } else {
            uint64_t m, d;
            int sticky;
            lp_align(sig, exp, 0, &m, &d, &sticky);
            m += (uint64_t)lp_increment(o->rounding, sign, (int)(m & 1),
                                        (int)(m & 1), d, sticky, rnd,
                                        o->rbits);
            v = sign ? -(int64_t)m : (int64_t)m;
        }
    }
    v += o->zero_point;
    if (v < f->int_min)
        v = f->int_min;
    if (v > f->int_max)
        v = f->int_max;
    return v;
}

/* The core for any finite or special input, by class.
 * cls: 0 finite (sig may be 0), 1 infinite, 2 NaN. */
LP_INLINE int64_t lp_round_any(const lp_format *f, const lp_opts *o,
                               int cls, int sign, int32_t exp, uint64_t sig,
                               uint64_t rnd, int *err)
{
    if (cls == 2) {
        if (f->kind == LP_INT) {
            *err |= LP_ERR_NAN;
            return 0;
        }
        return lp_round_nan(f, err);
    }
    if (cls == 1)
        return lp_round_inf(f, o, sign, err);
    if (f->kind == LP_INT)
        return lp_round_int(f, o, sign, exp, sig, rnd);
    if (sig == 0) {
        if (!f->is_signed)
            sign = 0;
        return lp_zero(f, sign, err);
    }
    return lp_round_float(f, o, sign, exp, sig, rnd, err);
}

/* 1. unpack: IEEE binary formats into (class, sign, exp, sig). */
LP_INLINE int lp_unpack_bits(uint64_t bits, int ebits, int mbits,
                             int *sign, int32_t *exp, uint64_t *sig)
{
    const int bias = (1 << (ebits - 1)) - 1;
    const uint64_t mmask = ((uint64_t)1 << mbits) - 1;
    int field = (int)((bits >> mbits) & (uint64_t)((1 << ebits) - 1));
    uint64_t frac = bits & mmask;
    *sign = (int)((bits >> (ebits + mbits)) & 1);
    if (field == (1 << ebits) - 1)
        return frac ? 2 : 1;
    if (field == 0) {
        *sig = frac;
        *exp = 1 - bias - mbits;
    } else {
        *sig = frac | ((uint64_t)1 << mbits);
        *exp = field - bias - mbits;
    }
    return 0;
}

#endif /* LOWPREC_ROUND_H */
