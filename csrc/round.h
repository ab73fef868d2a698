/* round.h -- the rounding core (internal; inlined into every kernel).
 *
 * Every conversion in lowprec goes through lp_round_core:
 *   1. unpack   the input is given as sign * sig * 2^exp, sig a uint64
 *   2. align    normalise sig, pick the quantum of the target binade and
 *               split sig into the kept significand m and the dropped
 *               fraction d (a 0.64 fixed-point number, plus a sticky bit)
 *   3. round    one per-mode increment decides m or m + 1:
 *               lp_round_addend, the one definition every core and fast
 *               path calls (lp_round_up is its compare form)
 *   4. pack     code = base + m, by addition: a carry out of the mantissa
 *               field ripples into the exponent field
 *   5. check    overflow, flush, sign, after rounding
 * The Numba kernels (lowprec/_numba_core.py) mirror these steps with the
 * same numbers.
 */
#ifndef LOWPREC_ROUND_H
#define LOWPREC_ROUND_H

#include <string.h>
#include "lowprec.h"

#if defined(__GNUC__)
#define LP_INLINE static inline __attribute__((always_inline))
#else
#define LP_INLINE static inline
#endif

/* One copy of each hot loop per instruction set, picked at load time
 * (AVX-512, AVX2, baseline).  -DLP_CLONES= builds a single copy for the
 * compiler's -march (tests/test_isa.py checks each against the library). */
#ifndef LP_CLONES
#if defined(__GNUC__) && defined(__x86_64__)
#define LP_CLONES __attribute__((target_clones("arch=x86-64-v4", \
                                               "arch=x86-64-v3", "default")))
#else
#define LP_CLONES
#endif
#endif

/* splitmix64 finaliser. */
LP_INLINE uint64_t lp_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* 32 random bits for element index = hi:lo (two 32-bit words): a Weyl
 * step over lo, hi mixed in, and the murmur3 finaliser, keyed by k.
 * Only 32-bit multiplies, so a loop over elements vectorises. */
LP_INLINE uint32_t lp_hash32(uint32_t k, uint32_t lo, uint32_t hi)
{
    uint32_t x = lo * 0x9E3779B9u + k;
    x ^= hi * 0x85EBCA77u;
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

/* The stochastic-rounding generator: 64 bits for element hi:lo, the high
 * and low words hashed under the two halves of key = mix64(seed).  It
 * depends on nothing but (seed, index), so every chunking, thread count
 * and backend agree. */
LP_INLINE uint64_t lp_random_words(uint64_t key, uint32_t lo, uint32_t hi)
{
    return ((uint64_t)lp_hash32((uint32_t)(key >> 32), lo, hi) << 32)
           | lp_hash32((uint32_t)key, lo, hi);
}

LP_INLINE uint64_t lp_random_keyed(uint64_t key, int64_t index)
{
    return lp_random_words(key, (uint32_t)index,
                           (uint32_t)((uint64_t)index >> 32));
}

/* The caller's random word r (below 2^rbits; lp_opts.random) as the
 * generator's 64 bits.  The compare of lp_sr_less rounds away iff
 * top_R(rnd) < D, D = floor(d * 2^R) the dropped fraction's top R bits;
 * with rnd's top R bits 2^R - 1 - r that is r + D >= 2^R, the hardware's
 * add-and-truncate rule.  R = 3, r = 5: top bits 0b010; d = 0.4 gives
 * D = 3, 3 + 5 >= 8: away (2 < 3). */
LP_INLINE uint64_t lp_random_given(uint64_t r, int rbits)
{
    return ~r << (64 - rbits);
}

/* The 64 random bits of element index: the caller's word where o->random
 * is set, else the generator (key = lp_mix64(o->seed)). */
LP_INLINE uint64_t lp_random_at(const lp_opts *o, uint64_t key,
                                int64_t index)
{
    return o->random ? lp_random_given(o->random[index], o->rbits)
                     : lp_random_keyed(key, index);
}

LP_INLINE int lp_clz64(uint64_t x)
{
    return __builtin_clzll(x);  /* x != 0 */
}

/* The top rbits bits (1..64) of a 64-bit number, as two 32-bit masks. */
LP_INLINE void lp_sr_masks(int rbits, uint32_t *hi, uint32_t *lo)
{
    *hi = rbits >= 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> rbits);
    *lo = rbits >= 64 ? 0xFFFFFFFFu
        : rbits <= 32 ? 0 : ~(0xFFFFFFFFu >> (rbits - 32));
}

/* 3. The stochastic compare, the one definition for every core: round away
 * iff r < d on their top rbits bits (r: the generator's 64 bits, d: the
 * dropped fraction as a 0.64 fixed-point number, both as hi:lo words;
 * mask_hi:mask_lo from lp_sr_masks), i.e. with probability
 * floor(d * 2^rbits) / 2^rbits.  Returns 0 or 1, without branches. */
LP_INLINE uint32_t lp_sr_less(uint32_t r_hi, uint32_t r_lo, uint32_t d_hi,
                              uint32_t d_lo, uint32_t mask_hi,
                              uint32_t mask_lo)
{
    uint32_t rh = r_hi & mask_hi, rl = r_lo & mask_lo;
    uint32_t dh = d_hi & mask_hi, dl = d_lo & mask_lo;
    return (uint32_t)(rh < dh) | ((uint32_t)(rh == dh) & (uint32_t)(rl < dl));
}

/* 3. The per-mode increment: the one definition of every rounding mode's
 * decision, in SoftFloat's addend form (roundIncrement).  The dropped
 * part is a field rest of k bits, 0 <= rest <= low = 2^k - 1 (half a gap
 * is 2^(k-1)); the mode's addend is added to it and the carry out of the
 * field is the increment:
 *     up = (rest + lp_round_addend(...)) >> k  =  rest > low - addend.
 * Every fast path takes one of these two forms (lp_round_up is the
 * compare; the shift path adds the addend below the kept bits and lets
 * the shift take the carry).  Arguments, each 0 or 1 but low:
 *   sign      the value is negative                    (RU, RD)
 *   m_odd     the lower neighbour's significand is odd (RNE's tie)
 *   code_odd  the lower neighbour's code is odd        (RO)
 *   sr_up     lp_sr_less of the dropped part           (SR; 1 only when
 *             rest != 0)
 * The addend is in [0, low] for every k >= 0, so rest + addend < 2^(k+1).
 *   RNE  half - 1 + m_odd   up iff rest > half, or rest = half and m odd
 *   RNA  half               up iff rest >= half
 *   RZ   0                  never
 *   RU   low if positive    up iff inexact and positive
 *   RD   low if negative    up iff inexact and negative
 *   RO   low if code even   up iff inexact and the code even (then odd)
 *   SR   low if sr_up       up iff sr_up
 * Branch-free; with mode a constant (the float32 core, the shift path)
 * the arguments the mode does not read are dead code, and a loop over it
 * vectorises.  e4m3fn, 1.3f: kept m = 0b1010 (1.25), 20 dropped bits
 * rest = 0x66666 (0.4 of a gap), low = 0xFFFFF: RNE adds 0x7FFFF (no
 * carry, 0b1010), RU adds 0xFFFFF (carry, 0b1011). */
LP_INLINE uint32_t lp_round_addend(int mode, uint32_t sign, uint32_t m_odd,
                                   uint32_t code_odd, uint32_t sr_up,
                                   uint32_t low)
{
    switch (mode) {
    case LP_RNE:
        return (low >> 1) + (m_odd & low);  /* & low: k = 0 adds nothing */
    case LP_RNA:
        return low - (low >> 1);
    case LP_RZ:
        return 0;
    case LP_RU:
        return low & (sign - 1u);
    case LP_RD:
        return low & (0u - sign);
    case LP_RO:
        return low & (code_odd - 1u);
    default: /* LP_SR */
        return low & (0u - sr_up);
    }
}

/* 3. The compare form of lp_round_addend: 1 to take the upper neighbour
 * (m + 1), else 0, for a dropped field rest <= low = 2^k - 1. */
LP_INLINE uint32_t lp_round_up(int mode, uint32_t sign, uint32_t m_odd,
                               uint32_t code_odd, uint32_t sr_up,
                               uint32_t rest, uint32_t low)
{
    return (uint32_t)(rest > low - lp_round_addend(mode, sign, m_odd,
                                                   code_odd, sr_up, low));
}

/* 3. lp_round_up for the 64-bit cores: d the dropped fraction (0.64),
 * sticky the bits below d; rnd the generator's bits.  The dropped part
 * reduces to a 2-bit field, the round bit (d >= half) and the sticky bit
 * (anything below it): rest = rbit:sticky, low = 3, half = 0b10. */
LP_INLINE uint32_t lp_increment(const lp_opts *o, int sign, uint64_t m,
                                int64_t code0, uint64_t d, int sticky,
                                uint64_t rnd)
{
    const uint64_t half = (uint64_t)1 << 63;
    uint32_t sr_up = 0;
    if (o->rounding == LP_SR) {
        uint32_t mh, ml;
        lp_sr_masks(o->rbits, &mh, &ml);
        sr_up = lp_sr_less((uint32_t)(rnd >> 32), (uint32_t)rnd,
                           (uint32_t)(d >> 32), (uint32_t)d, mh, ml);
    }
    uint32_t rest = ((uint32_t)(d >= half) << 1)
                    | (uint32_t)((d & (half - 1)) != 0 || sticky);
    return lp_round_up(o->rounding, (uint32_t)(sign != 0), (uint32_t)(m & 1),
                       (uint32_t)(code0 & 1), sr_up, rest, 3);
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

/* Result for an infinite input: LP_SAT_FINITE gives max, the other
 * policies keep the infinity (NaN without one, max without both). */
LP_INLINE int64_t lp_round_inf(const lp_format *f, const lp_opts *o,
                               int sign, int *err)
{
    if (f->kind == LP_INT)
        return sign ? f->int_min : f->int_max;
    if (sign && !f->is_signed) {
        *err |= LP_ERR_NEGATIVE;
        return 0;
    }
    if (o->saturate == LP_SAT_FINITE || (f->inf_code == LP_NO_CODE
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

/* Is the non-zero finite sig * 2^exp tiny (IEEE 754 7.5)?  Before
 * rounding (o->tininess_before): |v| < 2^emin.  After rounding (default):
 * |v| rounded to mbits + 1 bits with an unbounded exponent range is below
 * 2^emin; that differs only in the binade just below 2^emin, when every
 * kept bit is 1 and the increment carries to 2^emin.  sig is normalised
 * (bit 63 set) and |v| is in [2^E, 2^(E+1)). */
LP_INLINE int lp_tiny(const lp_format *f, const lp_opts *o, int sign,
                      int32_t E, uint64_t sig, uint64_t rnd)
{
    const int32_t mb = f->mbits;
    if (E >= f->emin)
        return 0;
    if (o->tininess_before || E < f->emin - 1)
        return 1;
    uint64_t mf = sig >> (63 - mb);               /* 2. align at 2^(E-mb) */
    if (mf != ((uint64_t)2 << mb) - 1)
        return 1;
    /* 3. round; the lower neighbour's code in the unbounded format is
     * (E + bias) * 2^mb + mf - 2^mb (its parity for RO) */
    int64_t codef = (int64_t)(E + f->bias) * ((int64_t)1 << mb)
                    + (int64_t)(mf - ((uint64_t)1 << mb));
    return !lp_increment(o, sign, mf, codef, sig << (mb + 1), 0, rnd);
}

/* The exception flags of an inexact result that is not an overflow. */
LP_INLINE int lp_inexact_flags(int tiny)
{
    return LP_FLAG_INEXACT | (tiny ? LP_FLAG_UNDERFLOW : 0);
}

/* The rounding core for float formats: rounds sign * sig * 2^exp, sig != 0,
 * finite.  rnd: 64 random bits (stochastic rounding only).  *err is OR-ed
 * with enum lp_error, *flags with enum lp_flag (lowprec.h says when each
 * is raised); callers that ignore flags pass a local the compiler drops. */
LP_INLINE int64_t lp_round_float_flags(const lp_format *f, const lp_opts *o,
                                       int sign, int32_t exp, uint64_t sig,
                                       uint64_t rnd, int *err, int *flags)
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
     *    m < 2^mb) have base 0 and code = m.  (Without subnormals base can
     *    be -2^mb: a multiplication, as shifting a negative is undefined.) */
    int64_t base = (int64_t)(q + mb + f->bias - 1) * ((int64_t)1 << mb);
    int64_t code0 = base + (int64_t)m;

    /* 3. round */
    m += lp_increment(o, sign, m, code0, d, sticky, rnd);
    int64_t code = base + (int64_t)m;
    int inexact = (d | (uint64_t)sticky) != 0;
    int tiny = lp_tiny(f, o, sign, E, sig, rnd);

    /* 5. check, after rounding. */
    if (m < ((uint64_t)1 << mb) && q == f->emin - mb) {
        /* Below the smallest normal. */
        if (!f->subnormals) {
            /* No subnormals and no zero (E8M0): the smallest value. */
            code = 0;
            inexact = 1;
        } else if (m == 0 || !o->keep_subnormals) {
            *flags |= lp_inexact_flags(tiny);
            if (sign && !f->is_signed)
                return 0;           /* rounds to zero: +0, no error */
            return lp_zero(f, sign, err);
        }
    } else if (code > f->max_code) {
        /* finite overflow: LP_SAT_FINITE and LP_SAT_PROPAGATE give max */
        int64_t r;
        if (o->saturate != LP_SAT_OVFINF
            || !lp_overflow_to_inf(o->rounding, sign))
            r = f->max_code | (sign ? f->sign_bit : 0);
        else
            r = lp_inf_or_substitute(f, sign);
        if (sign && !f->is_signed) {
            *err |= LP_ERR_NEGATIVE;
            *flags |= LP_FLAG_INVALID;
            return 0;
        }
        *flags |= LP_FLAG_OVERFLOW | LP_FLAG_INEXACT;
        return r;
    }
    if (sign) {
        if (!f->is_signed) {
            *err |= LP_ERR_NEGATIVE;
            *flags |= LP_FLAG_INVALID;
            return 0;
        }
        code |= f->sign_bit;
    }
    if (inexact)
        *flags |= lp_inexact_flags(tiny);
    return code;
}

LP_INLINE int64_t lp_round_float(const lp_format *f, const lp_opts *o,
                                 int sign, int32_t exp, uint64_t sig,
                                 uint64_t rnd, int *err)
{
    int flags = 0;
    return lp_round_float_flags(f, o, sign, exp, sig, rnd, err, &flags);
}

/* The rounding core for integer formats: sign * sig * 2^exp (any sig).
 * *flags: INEXACT when rounded, INVALID (alone) when clamped. */
LP_INLINE int64_t lp_round_int_flags(const lp_format *f, const lp_opts *o,
                                     int sign, int32_t exp, uint64_t sig,
                                     uint64_t rnd, int *flags)
{
    int64_t v;
    int inexact = 0;
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
            m += lp_increment(o, sign, m, (int64_t)m, d, sticky, rnd);
            inexact = (d | (uint64_t)sticky) != 0;
            v = sign ? -(int64_t)m : (int64_t)m;
        }
    }
    v += o->zero_point;
    if (v < f->int_min || v > f->int_max) {
        *flags |= LP_FLAG_INVALID;
        return v < f->int_min ? f->int_min : f->int_max;
    }
    if (inexact)
        *flags |= LP_FLAG_INEXACT;
    return v;
}

LP_INLINE int64_t lp_round_int(const lp_format *f, const lp_opts *o,
                               int sign, int32_t exp, uint64_t sig,
                               uint64_t rnd)
{
    int flags = 0;
    return lp_round_int_flags(f, o, sign, exp, sig, rnd, &flags);
}

/* The core for any finite or special input, by class.
 * cls: 0 finite (sig may be 0), 1 infinite, 2 NaN.  *flags as
 * lp_round_float_flags; a special input raises INVALID when the result
 * is not of its class (NaN, the infinity of its sign, zero). */
LP_INLINE int64_t lp_round_any_flags(const lp_format *f, const lp_opts *o,
                                     int cls, int sign, int32_t exp,
                                     uint64_t sig, uint64_t rnd, int *err,
                                     int *flags)
{
    if (cls == 2) {
        if (f->kind == LP_INT || f->nan_code == LP_NO_CODE)
            *flags |= LP_FLAG_INVALID;
        if (f->kind == LP_INT) {
            *err |= LP_ERR_NAN;
            return 0;
        }
        return lp_round_nan(f, err);
    }
    if (cls == 1) {
        if (f->kind == LP_INT || f->inf_code == LP_NO_CODE
            || o->saturate == LP_SAT_FINITE || (sign && !f->is_signed))
            *flags |= LP_FLAG_INVALID;
        return lp_round_inf(f, o, sign, err);
    }
    if (f->kind == LP_INT)
        return lp_round_int_flags(f, o, sign, exp, sig, rnd, flags);
    if (sig == 0) {
        if (!f->is_signed)
            sign = 0;
        if (!f->has_zero)
            *flags |= LP_FLAG_INVALID;
        return lp_zero(f, sign, err);
    }
    return lp_round_float_flags(f, o, sign, exp, sig, rnd, err, flags);
}

LP_INLINE int64_t lp_round_any(const lp_format *f, const lp_opts *o,
                               int cls, int sign, int32_t exp, uint64_t sig,
                               uint64_t rnd, int *err)
{
    int flags = 0;
    return lp_round_any_flags(f, o, cls, sign, exp, sig, rnd, err, &flags);
}

/* ---- the core specialised to float32 inputs ------------------------------
 *
 * The same steps as lp_round_float, for a float32 input u, with a 32-bit
 * significand and no branches, so that a loop over it vectorises (AVX2
 * has variable shifts per lane).  It needs every float32 subnormal to lie
 * below the target's normal range (f->f32_range: every format but E8M0);
 * lp_k32_init says whether a format qualifies.  Tests check it against
 * lp_round_float on every float16 and bfloat16 input and on random
 * float32 bit patterns.  It computes no exception flags (lp_round_flags
 * does; the array kernels return enum lp_error only). */
typedef struct {
    uint32_t mb;          /* target mantissa bits                           */
    uint32_t emin_b;      /* target emin as a float32 biased exponent       */
    uint32_t emax_b2;     /* clamp for the binade: emax + 2 biased           */
    uint32_t bias_m128;   /* target bias - 128 (wraps when negative)        */
    uint32_t min_norm;    /* 2^mb: smallest normal significand              */
    uint32_t max_code;    /* largest finite magnitude code                  */
    uint32_t sign_shift;  /* nbits - 1                                      */
    uint32_t sub_ok;      /* format has subnormals, and they are kept       */
    uint32_t has_sub;     /* format has subnormals (else no zero)           */
    uint32_t negzero;     /* -0 has a code                                  */
    uint32_t is_signed;
    uint32_t saturate;    /* o->saturate (enum lp_saturate)                 */
    uint32_t over[2];     /* result of overflow by sign (sign bit incl.)    */
    uint32_t inf_in[2];   /* result of an infinite input by sign            */
    uint32_t nan_res;     /* result of a NaN input                          */
    uint32_t err_nan;     /* LP_ERR_NAN when the format has no NaN          */
    uint32_t zero_in[2];  /* result of a zero input by sign                 */
    uint32_t err_zero;    /* LP_ERR_ZERO when there is neither zero nor NaN */
    uint32_t err_neg_inf; /* LP_ERR_NEGATIVE for -inf into unsigned         */
    uint32_t sr_mask_hi;  /* stochastic: the top rbits bits of a 64-bit     */
    uint32_t sr_mask_lo;  /*   number, as two words                         */
} lp_k32;

/* Fills k for (f, o); returns 0 when the float32 core does not apply. */
LP_INLINE int lp_k32_init(lp_k32 *k, const lp_format *f, const lp_opts *o)
{
    if (!f->f32_range)
        return 0;
    int e1 = 0;
    k->mb = (uint32_t)f->mbits;
    k->emin_b = (uint32_t)(f->emin + 127);
    k->emax_b2 = (uint32_t)(f->emax + 129);
    k->bias_m128 = (uint32_t)(f->bias - 128);
    k->min_norm = 1u << f->mbits;
    k->max_code = (uint32_t)f->max_code;
    k->sign_shift = (uint32_t)(f->nbits - 1);
    k->has_sub = (uint32_t)f->subnormals;
    k->sub_ok = (uint32_t)(f->subnormals && o->keep_subnormals);
    k->negzero = (uint32_t)f->negzero;
    k->is_signed = (uint32_t)f->is_signed;
    k->saturate = (uint32_t)o->saturate;
    for (int s = 0; s < 2; s++) {
        int64_t r = (o->saturate != LP_SAT_OVFINF
                     || !lp_overflow_to_inf(o->rounding, s))
                    ? (f->max_code | (s ? f->sign_bit : 0))
                    : lp_inf_or_substitute(f, s);
        k->over[s] = (uint32_t)r;
        int err = 0;
        k->inf_in[s] = (uint32_t)lp_round_inf(f, o, s, &err);
        if (s)
            k->err_neg_inf = (uint32_t)err;
        err = 0;
        k->zero_in[s] = (uint32_t)lp_zero(f, s && f->is_signed, &err);
        k->err_zero = (uint32_t)err;
    }
    lp_sr_masks(o->rbits, &k->sr_mask_hi, &k->sr_mask_lo);
    k->nan_res = (uint32_t)lp_round_nan(f, &e1);
    k->err_nan = (uint32_t)e1;
    return 1;
}

/* c ? x : y for c in {0, 1}, as masks (keeps loops free of branches). */
LP_INLINE uint32_t lp_sel(uint32_t c, uint32_t x, uint32_t y)
{
    uint32_t m = 0u - c;
    return (x & m) | (y & ~m);
}

/* The float32 core.  mode is a constant at every call site (the compiler
 * makes one loop per mode); rnd_hi:rnd_lo, the generator's 64 bits, are
 * used by LP_SR only.  *err is OR-ed. */
LP_INLINE uint32_t lp_round_f32(const lp_k32 *k, uint32_t u, int mode,
                                uint32_t rnd_hi, uint32_t rnd_lo,
                                uint32_t *err)
{
    /* 1. unpack: float32 subnormals count as exponent 1, no hidden bit */
    uint32_t s = u >> 31, a = u & 0x7FFFFFFFu;
    uint32_t e = a >> 23;
    uint32_t sig = (a & 0x7FFFFFu) | ((uint32_t)(e != 0) << 23);
    uint32_t eb = e > 1 ? e : 1;
    /* 2. align: the quantum's binade is max(eb, emin); bits below it go.
     *    e4m3fn, u = 1.3f: eb = 127, hi = 127, shift = 23 - 3 = 20 */
    uint32_t hi = eb > k->emin_b ? eb : k->emin_b;
    uint32_t shift_t = hi - eb + 23 - k->mb;
    uint32_t shift = shift_t < 31 ? shift_t : 31;
    uint32_t m = sig >> shift;
    uint32_t low = (1u << shift) - 1;
    uint32_t rem = sig & low;
    /* 4. pack by addition (base may wrap below zero for formats without
     *    subnormals; m >= 2^mb brings it back) */
    uint32_t hc = hi < k->emax_b2 ? hi : k->emax_b2;
    uint32_t base = (hc + k->bias_m128) << k->mb;
    uint32_t code0 = base + m;
    /* 3. round: lp_round_addend on the dropped bits rem (k = shift) */
    uint32_t sr_up = 0;
    if (mode == LP_SR) {
        /* d = floor(dropped fraction x 2^64) in two words; shift_t >= 1
         * whenever anything is dropped.  p = 64 - shift_t places the
         * dropped bits: e4m3fn, 1.3f: shift_t = 20, d = rem << 44. */
        uint32_t low_bits = lp_sel((uint32_t)(shift_t < 32), rem, sig);
        uint32_t p = 64 - shift_t;                 /* wraps when > 64 */
        uint32_t in_a = (uint32_t)(shift_t - 1 < 32);   /* p in [32, 63] */
        uint32_t in_b = (uint32_t)(shift_t - 33 < 32);  /* p in [0, 31]  */
        uint32_t in_c = (uint32_t)(shift_t > 64);
        uint32_t c_sh = shift_t - 64 < 31 ? shift_t - 64 : 31;
        uint32_t dh_a = low_bits << ((p - 32) & 31);
        uint32_t dh_b = (low_bits >> ((32 - p) & 31)) & (0u - (uint32_t)(p != 0));
        uint32_t dh = lp_sel(in_a, dh_a, lp_sel(in_b, dh_b, 0));
        uint32_t dl = lp_sel(in_b, low_bits << (p & 31),
                             lp_sel(in_c, sig >> c_sh, 0));
        sr_up = lp_sr_less(rnd_hi, rnd_lo, dh, dl, k->sr_mask_hi,
                           k->sr_mask_lo);
    }
    /*    the addend form on the shift dropped bits, added below the kept
     *    bits as in the shift path: (sig + addend) >> shift = m + the
     *    carry out of rem + addend (sig < 2^24, addend <= low < 2^31, no
     *    wrap); RZ's zero addend leaves m = sig >> shift */
    m = (sig + lp_round_addend(mode, s, m & 1u, code0 & 1u, sr_up, low))
        >> shift;
    uint32_t code = base + m;
    /* 5. check: below the smallest normal, overflow, sign */
    uint32_t below = (uint32_t)(hi == k->emin_b) & (uint32_t)(m < k->min_norm);
    uint32_t zero = below & ((uint32_t)(m == 0) | (k->sub_ok ^ 1u))
                    & k->has_sub;
    uint32_t smallest = below & (k->has_sub ^ 1u);
    uint32_t over = (below ^ 1u) & (uint32_t)(code > k->max_code);
    code = lp_sel(smallest | zero, 0, code);
    uint32_t neg_res = s & ((zero ^ 1u) | k->negzero) & k->is_signed;
    code |= neg_res << k->sign_shift;
    code = lp_sel(over, lp_sel(s, k->over[1], k->over[0]), code);
    /* negative non-zero result into an unsigned format */
    uint32_t bad_neg = s & (k->is_signed ^ 1u) & (zero ^ 1u);
    /* 1. specials */
    uint32_t is_nan = (uint32_t)(a > 0x7F800000u);
    uint32_t is_inf = (uint32_t)(a == 0x7F800000u);
    uint32_t is_zero = (uint32_t)(a == 0);
    uint32_t finite = (is_nan | is_inf | is_zero) ^ 1u;
    code = lp_sel(is_zero, lp_sel(s, k->zero_in[1], k->zero_in[0]), code);
    code = lp_sel(is_inf, lp_sel(s, k->inf_in[1], k->inf_in[0]), code);
    code = lp_sel(is_nan, k->nan_res, code);
    /* a negative non-zero value into an unsigned format: code 0 with the
     * error, as lp_round_float (UE5M3's negative subnormals) */
    code = lp_sel(bad_neg & finite, 0, code);
    *err |= (k->err_nan & (0u - is_nan)) | (k->err_zero & (0u - is_zero))
            | (k->err_neg_inf & (0u - (is_inf & s)))
            | ((bad_neg & finite) * LP_ERR_NEGATIVE);
    return code;
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


/* ---- bit views shared by the kernels ------------------------------------ */

LP_INLINE uint32_t lp_f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

LP_INLINE float lp_bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

LP_INLINE uint64_t lp_f64_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}

LP_INLINE double lp_bits_f64(uint64_t u)
{
    double x;
    memcpy(&x, &u, 8);
    return x;
}

/* float16 bits -> float32 bits (exact) without branches: the exponent and
 * mantissa moved into float32 position read as 2^(e-127) x 1.m (or a
 * float32 subnormal for e = 0), then scaled by 2^112 exactly. */
LP_INLINE uint32_t lp_f16_to_f32(uint32_t h)
{
    uint32_t sign = (h & 0x8000u) << 16, em = h & 0x7FFFu;
    uint32_t v = lp_f32_bits(lp_bits_f32(em << 13) * 0x1p112f);
    uint32_t special = 0x7F800000u | ((em & 0x3FFu) << 13);
    uint32_t is_special = 0u - (uint32_t)(em >= 0x7C00u);
    return sign | (special & is_special) | (v & ~is_special);
}

#endif /* LOWPREC_ROUND_H */
