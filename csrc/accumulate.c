/* accumulate.c -- sequential accumulation in any float format (API.md
 * section 3, Accumulator): every step's exact sum rounded once to the
 * accumulator's format with its policy.  The hardware (fused) models are
 * fused.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lowprec.h"
#include "round.h"

typedef __int128 lp_i128;

/* ---- sequential accumulation in any float format ------------------------ */

/* Exact zero sum: IEEE 754 6.3, the sign of x + y when the exact sum is 0. */
static int zero_sum_sign(double x, double y, int mode)
{
    int sx = signbit(x) != 0, sy = signbit(y) != 0;
    if (x == 0 && y == 0)
        return mode == LP_RD ? (sx | sy) : (sx & sy);
    return mode == LP_RD;
}

/* Value of a code: table for formats up to 16 bits. */
static double code_value(const lp_format *f, const double *lut, int64_t code)
{
    return lut ? lut[code] : lp_decode_one(f, code);
}

/* One step acc <- round_f(acc + x) with x = a*b exact.  Returns the code. */
static int64_t accumulate_step(const lp_format *f, const lp_opts *o,
                               const lp_opts *o_rz, const lp_opts *o_up,
                               const lp_opts *o_dn, const lp_opts *o_free,
                               double acc, double x, uint64_t key,
                               int64_t index, const double *lut, int *err)
{
    uint64_t rnd = o->rounding == LP_SR ? lp_random_keyed(key, index) : 0;
    if (isnan(acc) || isnan(x))
        return lp_round_any(f, o, 2, 0, 0, 0, rnd, err);
    if (isinf(acc) || isinf(x)) {
        if (isinf(acc) && isinf(x) && signbit(acc) != signbit(x))
            return lp_round_any(f, o, 2, 0, 0, 0, rnd, err);
        int sign = isinf(acc) ? signbit(acc) != 0 : signbit(x) != 0;
        return lp_round_any(f, o, 1, sign, 0, 0, rnd, err);
    }
    /* 1. s = RN64(acc + x) and the exact error e (TwoSum): acc + x = s + e. */
    double s = acc + x;
    double bb = s - acc;
    double e = (acc - (s - bb)) + (x - bb);
    if (s == 0 && e == 0)
        return lp_round_any(f, o, 0, zero_sum_sign(acc, x, o->rounding), 0, 0,
                            rnd, err);
    uint64_t bits;
    memcpy(&bits, &s, sizeof bits);
    int sign = 0;
    int32_t exp = 0;
    uint64_t sig = 0;
    lp_unpack_bits(bits, 11, 52, &sign, &exp, &sig);
    if (e == 0)
        return lp_round_any(f, o, 0, sign, exp, sig, rnd, err);
    /* 2. Inexact in float64: s with one more bit 2^-11 ulp below, +1 when e
     *    pushes away from zero, -1 toward it.  No rounding boundary of a
     *    format of <= 24 bits lies strictly between x and this value, so
     *    every mode but stochastic rounds both alike.
     *    fp16 acc 2048 + 2^-30: s = 2048, sig = 2^63 + 1 at exp -74. */
    int away_from_zero = (e > 0) == !sign;
    uint64_t sigj = (sig << 11) + (away_from_zero ? 1 : (uint64_t)-1);
    int32_t expj = exp - 11;
    if (o->rounding != LP_SR)
        return lp_round_any(f, o, 0, sign, expj, sigj, 0, err);
    /* 3. Stochastic: the lower neighbour (toward zero) and the fraction
     *    d = (|acc + x| - |lower|) / gap, floor(d * 2^64) computed from s and
     *    e exactly; round away iff r < floor(d * 2^rbits). */
    int e2 = 0;
    int64_t lower = lp_round_any(f, o_free, 0, sign, expj, sigj, 0, &e2);
    double lv = fabs(code_value(f, lut, lower));
    int32_t top = expj + 63 - __builtin_clzll(sigj);
    int32_t q = (top > f->emin ? top : f->emin) - f->mbits;
    double gap = ldexp(1.0, q);
    double as = fabs(s), ea = sign ? -e : e;    /* e toward |x| */
    const lp_opts *up = sign ? o_dn : o_up;
    if (as > lv + gap || (as == lv + gap && ea > 0))
        return lp_round_any(f, up, 0, sign, expj, sigj, 0, err);
    double D = ldexp(as - lv, 64 - q);           /* exact */
    double fD = floor(D);
    lp_i128 r = (lp_i128)fD;
    if (D == fD) {
        /* floor(e * 2^(64-q)); a tiny negative e that underflows is -1. */
        if (ea > 0) {
            r += (lp_i128)floor(ldexp(ea, 64 - q));
        } else {
            double up_ = ceil(ldexp(-ea, 64 - q));
            r -= up_ > 0 ? (lp_i128)up_ : 1;
        }
    }
    uint64_t d = r < 0 ? 0
               : r > (lp_i128)UINT64_MAX ? UINT64_MAX : (uint64_t)r;
    int rb = o->rbits;
    int away = (rnd >> (64 - rb)) < (d >> (64 - rb));
    (void)o_rz;
    if (away)
        return lp_round_any(f, up, 0, sign, expj, sigj, 0, err);
    return lp_round_any(f, o_rz, 0, sign, expj, sigj, 0, err);
}

int lp_accumulate(const lp_format *f, const lp_opts *o, const double *a,
                  const double *bt, int64_t m, int64_t n, int64_t k,
                  int64_t k0, int64_t k1, int64_t index0, double *out,
                  int64_t row0, int64_t row1)
{
    return lp_accumulate_from(f, o, a, bt, m, n, k, k0, k1, index0, NULL, out,
                              row0, row1);
}

int lp_accumulate_from(const lp_format *f, const lp_opts *o, const double *a,
                       const double *bt, int64_t m, int64_t n, int64_t k,
                       int64_t k0, int64_t k1, int64_t index0,
                       const double *init, double *out, int64_t row0,
                       int64_t row1)
{
    double *lut = NULL;
    if (f->nbits <= 16) {
        int64_t entries = (int64_t)1 << f->nbits;
        lut = malloc((size_t)entries * sizeof *lut);
        if (!lut)
            return -1;
        for (int64_t c = 0; c < entries; c++)
            lut[c] = lp_decode_one(f, c);
    }
    lp_opts o_rz = *o, o_up = *o, o_dn = *o, o_free = *o;
    o_rz.rounding = LP_RZ;
    o_up.rounding = LP_RU;
    o_dn.rounding = LP_RD;
    o_free.rounding = LP_RZ;
    o_free.keep_subnormals = 1;
    o_free.saturate = LP_SAT_FINITE;
    uint64_t key = lp_mix64(o->seed);
    int err = 0;
    for (int64_t i = row0; i < row1; i++) {
        const double *ar = a + i * k;
        for (int64_t j = 0; j < n; j++) {
            const double *br = bt + j * k;
            int64_t base = index0 + (i * n + j) * k;
            double acc = init ? init[i * n + j] : 0.0;
            for (int64_t kk = k0; kk < k1; kk++) {
                int64_t code = accumulate_step(f, o, &o_rz, &o_up, &o_dn,
                                               &o_free, acc, ar[kk] * br[kk],
                                               key, base + kk, lut, &err);
                acc = code_value(f, lut, code);
            }
            out[i * n + j] = acc;
        }
    }
    free(lut);
    (void)m;
    return err;
}
