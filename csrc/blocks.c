/* blocks.c -- block-scaled quantization (MX, NVFP4, FP8 blockwise).
 *
 * One pass over each block: 1. gather the block's elements as IEEE bits
 * (float32 for float32 / float16 / bfloat16 inputs, float64 for float64),
 * 2. amax = the largest magnitude, exactly (an unsigned max of the bits
 * without the sign; NaN and inf show up above the inf pattern), 3. the
 * scale by the rule, 4. every element rounded once through the core of
 * round.h, 5. the codes scattered back.  Nothing the size of the input is
 * allocated; a block's elements stay in L1.
 *
 * With a power-of-two scale 2^k (the e8m0 rules, pow2) the element is the
 * exact x / 2^k rounded once: dividing by 2^k is rounding x into the
 * element format with its bias lowered by k, so the float32 core runs with
 * three fields of lp_k32 moved by k (emin, emax, bias) -- no float32
 * intermediate.  e2m1, k = -3: the format's values 0.5 .. 6 become
 * 2^-4 .. 0.75 and x = 0.3 (0b1.0011 x 2^-2) rounds at quantum 2^-4 to
 * 0.3125 = 0b0_10_1 x 2^-3, code 0b0101 (element value 2.5).  Where the
 * moved format leaves float32's normal range (emin + k < -126) or the
 * element is an integer or the input float64, the general core takes
 * sign * sig * 2^(exp - k) directly.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "round.h"

/* ---- float32 results of exact float64 operations ------------------------
 *
 * R32(a * b) and R32(a / b) of float64 operands, rounded once: the float64
 * result is first made round-to-odd (the FMA gives the exact error; an
 * inexact even result moves one ulp toward the exact value), and rounding
 * a round-to-odd value with 53 bits to 24 bits is correct (two extra bits
 * suffice).  1 + 2^-24 + 2^-60: float64 RNE gives 1 + 2^-24, a tie, which
 * float32 would round to 1; round-to-odd gives 1 + 2^-24 + 2^-52, which
 * rounds to 1 + 2^-23, the correct result. */
LP_INLINE double b_to_odd(double p, double e)
{
    uint64_t u = lp_f64_bits(p);
    if (e != 0 && isfinite(p) && !(u & 1))
        u += ((e > 0) == (p > 0)) ? 1 : (uint64_t)-1;
    return lp_bits_f64(u);
}

LP_INLINE int b_is_f32(double a)
{
    return (double)(float)a == a;
}

/* float32 operands: the float64 product (48 bits) is exact and the
 * float32 quotient is correctly rounded, so no FMA is needed. */
LP_INLINE float r32_mul(double a, double b)
{
    if (b_is_f32(a) && b_is_f32(b))
        return (float)(a * b);
    double p = a * b;
    if (p == 0 || !isfinite(p))
        return (float)p;
    return (float)b_to_odd(p, fma(a, b, -p));
}

/* b > 0 */
LP_INLINE float r32_div(double a, double b)
{
    if (b_is_f32(a) && b_is_f32(b))
        return (float)a / (float)b;
    double q = a / b;
    if (q == 0 || !isfinite(q))
        return (float)q;
    return (float)b_to_odd(q, fma(-q, b, a));
}

double lp_nvfp4_tensor(double smax, double emax, double T, float *ts)
{
    double S = 1.0;
    if (T > 0 && isfinite(T)) {
        float s = r32_div(smax * emax, T);     /* 448 * 6 = 2688, exact */
        if (s != 0 && isfinite(s))
            S = s;
    }
    *ts = r32_div(1.0, S);
    return S;
}

/* ---- scale rules ---------------------------------------------------------- */

/* floor(log2 a), a > 0 finite (subnormals included). */
LP_INLINE int b_ilog2(double a)
{
    int e = (int)((lp_f64_bits(a) >> 52) & 0x7FF);
    if (e)
        return e - 1023;
    frexp(a, &e);
    return e - 1;
}

/* frexp for a > 0 finite, without the library call for normals. */
LP_INLINE double b_frexp(double a, int *e)
{
    uint64_t u = lp_f64_bits(a);
    int f = (int)((u >> 52) & 0x7FF);
    if (!f)
        return frexp(a, e);
    *e = f - 1022;
    return lp_bits_f64((u & 0x800FFFFFFFFFFFFFull) | 0x3FE0000000000000ull);
}

LP_INLINE int clamp127(int k)
{
    return k < -127 ? -127 : k > 127 ? 127 : k;
}

/* The exponent k of the e8m0 scale X = 2^k of a block with amax (finite).
 * emax, maxv: the element's top binade and largest value; mb its mantissa
 * width (the even rule).  e4m3 (emax 8, max 448 = 0.875 x 2^9):
 * amax = 500 = 0.9765625 x 2^9: floor 8 - 8 = 0; ceil: 0.977 > 0.875 ->
 * 1; rceil: R32(500/448) = 1.116 -> 2^1; even: 1.953125 rounded to 3
 * mantissa bits is 2.0 (carry) -> 9 - 8 = 1. */
LP_INLINE int e8m0_exponent(int rule, double amax, int emax, double maxv,
                         int mb)
{
    if (amax == 0)
        return -127;
    int ea, em;
    double ma = b_frexp(amax, &ea);            /* amax = ma 2^ea, [0.5, 1) */
    switch (rule) {
    case LP_BLOCK_FLOOR:
        return clamp127(ea - 1 - emax);
    case LP_BLOCK_CEIL: {
        /* smallest k with amax <= max 2^k: k0 = ea - 1 - emax puts
         * max 2^k0 = mm 2^ea in amax's binade */
        double mm = b_frexp(maxv, &em);
        return clamp127(ea - 1 - emax + (ma > mm));
    }
    case LP_BLOCK_RCEIL: {
        float r = r32_div(amax, maxv);
        if (r == 0)
            return -127;
        if (isinf(r))
            return 127;
        int er;
        double mr = b_frexp((double)r, &er);
        return clamp127(mr == 0.5 ? er - 1 : er);
    }
    default: { /* LP_BLOCK_EVEN */
        double t = ldexp(ma, mb + 1);          /* [2^mb, 2^(mb+1)) */
        double tr = floor(t + 0.5);            /* half-way away from zero */
        int carry = tr >= ldexp(1.0, mb + 1);
        return clamp127(ea - 1 + carry - emax);
    }
    }
}

/* pow2: e = 2^kk, kk = floor(log2(max / amax)), returned as the scale
 * exponent -kk (clamped like e8m0), amax > 0 finite. */
LP_INLINE int pow2_exponent(double amax, double maxv)
{
    int ea, em;
    double ma = b_frexp(amax, &ea), mm = b_frexp(maxv, &em);
    int kk = em - ea - (mm < ma);
    return clamp127(-kk);
}

/* ---- element rounding ----------------------------------------------------- */

/* 32 float32 bits src[0, 32) through the float32 core (mode a constant),
 * index0 the flat index of src[0]: a constant trip count, so the loop is
 * all vector code whatever the block size. */
LP_INLINE uint32_t seg32x(const lp_k32 *kk, int mode, const uint32_t *src,
                         uint8_t *dst, uint64_t key, int64_t index0)
{
    uint32_t err = 0;
    const uint32_t lo0 = (uint32_t)index0;
    const uint32_t hi0 = (uint32_t)((uint64_t)index0 >> 32);
    const uint32_t key_hi = (uint32_t)(key >> 32), key_lo = (uint32_t)key;
    for (uint32_t i = 0; i < 32; i++) {
        uint32_t lo = lo0 + i, hi = hi0 + (uint32_t)(lo < lo0);
        uint32_t r_hi = mode == LP_SR ? lp_hash32(key_hi, lo, hi) : 0;
        uint32_t r_lo = mode == LP_SR ? lp_hash32(key_lo, lo, hi) : 0;
        dst[i] = (uint8_t)lp_round_f32(kk, src[i], mode, r_hi, r_lo, &err);
    }
    return err;
}

/* src[0, n) in pieces of 32; the last piece padded with zeros (which
 * raise nothing in a format with a zero: every element format). */
LP_INLINE uint32_t seg32_mode(const lp_k32 *k, int mode, const uint32_t *src,
                              uint8_t *dst, int64_t n, uint64_t key,
                              int64_t index0)
{
    const lp_k32 kk = *k;
    uint32_t err = 0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        err |= seg32x(&kk, mode, src + i, dst + i, key, index0 + i);
    if (i < n) {
        uint32_t t[32] = {0};
        uint8_t d[32];
        memcpy(t, src + i, (size_t)(n - i) * 4);
        err |= seg32x(&kk, mode, t, d, key, index0 + i);
        memcpy(dst + i, d, (size_t)(n - i));
    }
    return err;
}

LP_INLINE uint32_t seg32(const lp_k32 *k, int mode, const uint32_t *src,
                         uint8_t *dst, int64_t n, uint64_t key,
                         int64_t index0)
{
    switch (mode) {
    case LP_RNE: return seg32_mode(k, LP_RNE, src, dst, n, key, index0);
    case LP_RNA: return seg32_mode(k, LP_RNA, src, dst, n, key, index0);
    case LP_RZ: return seg32_mode(k, LP_RZ, src, dst, n, key, index0);
    case LP_RU: return seg32_mode(k, LP_RU, src, dst, n, key, index0);
    case LP_RD: return seg32_mode(k, LP_RD, src, dst, n, key, index0);
    case LP_RO: return seg32_mode(k, LP_RO, src, dst, n, key, index0);
    default: return seg32_mode(k, LP_SR, src, dst, n, key, index0);
    }
}

/* The general core on n elements: float32 bits (b32) or float64 bits
 * (b64), each rounded as sign * sig * 2^(exp - kshift). */
LP_INLINE int seg_general(const lp_format *f, const lp_opts *o,
                       const uint32_t *b32, const uint64_t *b64, int64_t n,
                       int kshift, uint64_t key, int64_t index0, uint8_t *dst)
{
    int err = 0;
    const int sr = o->rounding == LP_SR;
    for (int64_t i = 0; i < n; i++) {
        int sign;
        int32_t exp = 0;
        uint64_t sig = 0;
        int cls = b64 ? lp_unpack_bits(b64[i], 11, 52, &sign, &exp, &sig)
                      : lp_unpack_bits(b32[i], 8, 23, &sign, &exp, &sig);
        uint64_t rnd = sr ? lp_random_at(o, key, index0 + i) : 0;
        dst[i] = (uint8_t)lp_round_any(f, o, cls, sign, exp - kshift, sig,
                                       rnd, &err);
    }
    return err;
}

/* ---- the driver ----------------------------------------------------------- */

/* Blocks whose elements one rounding pass covers (float rules). */
enum { BATCH = 64 };

typedef struct {
    const lp_format *elem, *sf;
    const lp_opts *o;
    lp_k32 k32;           /* the element's float32 core (valid: has_k32) */
    int has_k32;
    int rule, int_shift, emax, mb;
    double maxv;          /* the element's largest value                 */
    double S;             /* nvfp4: tensor factor                        */
    float ts, g;          /* nvfp4: R32(1/S), R32(S * R32(1/max))        */
    lp_opts so;           /* nvfp4: the scale's encode (RNE, saturating) */
    double sval[256];     /* nvfp4: the values of the scale's codes      */
    uint64_t key;
    int64_t run;          /* the index map (lp_quantize_blocks_map), or  */
    const int64_t *starts;/* starts NULL: flat index = local index       */
} bctx;

/* seg32 / seg_general on local indices [l, l + n), cut where the index
 * map's runs end. */
LP_INLINE uint32_t seg32_at(const bctx *c, const lp_k32 *k, int mode,
                            const uint32_t *src, uint8_t *dst, int64_t n,
                            int64_t l)
{
    if (!c->starts)
        return seg32(k, mode, src, dst, n, c->key, l);
    uint32_t err = 0;
    for (int64_t i = 0, m; i < n; i += m) {
        int64_t q = (l + i) / c->run, r = (l + i) % c->run;
        m = c->run - r < n - i ? c->run - r : n - i;
        err |= seg32(k, mode, src + i, dst + i, m, c->key, c->starts[q] + r);
    }
    return err;
}

LP_INLINE int seg_general_at(const bctx *c, const uint32_t *b32,
                             const uint64_t *b64, int64_t n, int kshift,
                             int64_t l, uint8_t *dst)
{
    if (!c->starts)
        return seg_general(c->elem, c->o, b32, b64, n, kshift, c->key, l,
                           dst);
    int err = 0;
    for (int64_t i = 0, m; i < n; i += m) {
        int64_t q = (l + i) / c->run, r = (l + i) % c->run;
        m = c->run - r < n - i ? c->run - r : n - i;
        err |= seg_general(c->elem, c->o, b32 ? b32 + i : NULL,
                           b64 ? b64 + i : NULL, m, kshift, c->key,
                           c->starts[q] + r, dst + i);
    }
    return err;
}

/* The scale of a finite block under a float rule (nvfp4, decode,
 * encode), written to scales[sidx]; *fac is the element factor f (x * f)
 * or, with *divide, the divisor s (x / s).  Returns 1 when the block's
 * scale is 0 (nvfp4: the elements are signed zeros), else 0. */
LP_INLINE int float_scale(const bctx *c, double amax, void *scales,
                          int64_t sidx, float *fac, int *divide)
{
    const int rule = c->rule;
    *divide = 0;
    if (rule == LP_BLOCK_NVFP4) {
        float sv = r32_mul(amax, c->g);
        int e2 = 0, sign, cls;
        int32_t exp = 0;
        uint64_t sig = 0;
        cls = lp_unpack_bits(lp_f64_bits((double)sv), 11, 52, &sign, &exp,
                             &sig);
        int64_t code = lp_round_any(c->sf, &c->so, cls, sign, exp, sig, 0,
                                    &e2);
        ((uint8_t *)scales)[sidx] = (uint8_t)code;
        double sval = c->sval[code & 0xFF];
        if (sval == 0)
            return 1;
        *fac = r32_div(1.0, (double)r32_mul(sval, c->ts));
    } else if (rule == LP_BLOCK_DECODE) {
        float s = amax == 0 ? 1.0f : r32_div(amax, c->maxv);
        *fac = s;
        *divide = 1;
        ((float *)scales)[sidx] = s;
    } else { /* LP_BLOCK_ENCODE */
        float f = 1.0f;
        if (amax != 0) {
            f = r32_div(c->maxv, amax);
            if (isinf(f))
                f = FLT_MAX;
        }
        *fac = f;
        ((float *)scales)[sidx] = amax == 0 ? 1.0f : r32_div(1.0, f);
    }
    return 0;
}

/* Elements of one block (rows of cn elements, rn rows, row r of the block
 * at flat index idx0 + r * C) as codes; writes the scale.  b32 / b64: the
 * gathered bits (one of them NULL), amax their largest magnitude. */
LP_INLINE int block_elements(const bctx *c, const uint32_t *b32,
                          const uint64_t *b64, uint32_t *v, int64_t rn,
                          int64_t cn, int64_t C, int64_t idx0, double amax,
                          int nonfinite, uint8_t *dst, void *scales,
                          int64_t sidx)
{
    const int64_t n = rn * cn;
    const int rule = c->rule;
    int err = 0;
    if (nonfinite) {
        memset(dst, 0, (size_t)n);
        if (c->sf)
            ((uint8_t *)scales)[sidx] = (uint8_t)c->sf->nan_code;
        else
            ((float *)scales)[sidx] = NAN;
        return 0;
    }
    if (rule <= LP_BLOCK_EVEN || rule == LP_BLOCK_POW2) {
        /* 3. a power-of-two scale 2^k */
        int k;
        if (rule == LP_BLOCK_POW2) {
            k = amax == 0 ? 0 : pow2_exponent(amax, c->maxv);
            ((float *)scales)[sidx] = (float)ldexp(1.0, k);
        } else {
            k = e8m0_exponent(rule, amax, c->emax, c->maxv, c->mb);
            ((uint8_t *)scales)[sidx] = (uint8_t)(k + 127);
        }
        /* 4. the element format moved down by k */
        if (c->has_k32 && b32 && c->elem->emin + k >= -126) {
            lp_k32 kk = c->k32;
            kk.emin_b += (uint32_t)k;
            kk.emax_b2 += (uint32_t)k;
            kk.bias_m128 -= (uint32_t)k;
            uint32_t e = 0;
            for (int64_t r = 0; r < rn; r++)
                e |= seg32_at(c, &kk, c->o->rounding, b32 + r * cn,
                              dst + r * cn, cn, idx0 + r * C);
            return (int)e;
        }
        for (int64_t r = 0; r < rn; r++)
            err |= seg_general_at(c, b32 ? b32 + r * cn : NULL,
                                  b64 ? b64 + r * cn : NULL, cn,
                                  k - c->int_shift, idx0 + r * C,
                                  dst + r * cn);
        return err;
    }
    /* 3. float scales: the element input v = R32(x * f) or R32(x / s) */
    float fac;
    int divide;
    if (float_scale(c, amax, scales, sidx, &fac, &divide)) {
        /* s = 0 (nvfp4): signed zeros */
        for (int64_t i = 0; i < n; i++) {
            int neg = b32 ? (int)(b32[i] >> 31) : (int)(b64[i] >> 63);
            int e3 = 0;
            dst[i] = (uint8_t)lp_zero(c->elem, neg && c->elem->is_signed,
                                      &e3);
        }
        return 0;
    }
    float f = fac, s = fac;
    if (b32) {
        const float *x = (const float *)b32;
        float *y = (float *)v;
        if (divide)
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] / s;
        else
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] * f;
    } else {
        float *y = (float *)v;
        for (int64_t i = 0; i < n; i++) {
            double x = lp_bits_f64(b64[i]);
            y[i] = divide ? r32_div(x, s) : r32_mul(x, f);
        }
    }
    if (c->has_k32) {
        uint32_t e = 0;
        for (int64_t r = 0; r < rn; r++)
            e |= seg32_at(c, &c->k32, c->o->rounding, v + r * cn,
                          dst + r * cn, cn, idx0 + r * C);
        return (int)e;
    }
    for (int64_t r = 0; r < rn; r++)
        err |= seg_general_at(c, v + r * cn, NULL, cn, 0, idx0 + r * C,
                              dst + r * cn);
    return err;
}

LP_CLONES
static int run_blocks(const bctx *c, const lp_block_spec *sp, int in_type,
                      const void *in, int64_t u0, int64_t u1, uint8_t *codes,
                      void *scales, uint32_t *b32, uint64_t *b64, uint32_t *v,
                      uint8_t *cb)
{
    const int64_t R = sp->R, C = sp->C, br = sp->br, bc = sp->bc;
    const int64_t nrb = (R + br - 1) / br, ncb = (C + bc - 1) / bc;
    int err = 0;
    if (in_type == LP_F32 && R == 1 && C == bc && c->has_k32
        && (c->rule == LP_BLOCK_NVFP4 || c->rule == LP_BLOCK_DECODE
            || c->rule == LP_BLOCK_ENCODE)) {
        /* Float rules over whole rows of one block each: the element
         * format is the same for every block, so the factors of BATCH
         * blocks are applied first and one rounding pass covers them all
         * (the flat indices are contiguous).  Special blocks enter as
         * zeros: +0 for NaN / inf blocks (code 0), x * 0 (a signed zero)
         * for a zero nvfp4 scale. */
        for (int64_t u = u0; u < u1; u += BATCH) {
            const int64_t ug = u1 - u < BATCH ? u1 - u : BATCH;
            const float *x = (const float *)in + u * bc;
            float *y = (float *)v;
            for (int64_t g = 0; g < ug; g++) {
                const float *xs = x + g * bc;
                const uint32_t *xb = (const uint32_t *)xs;
                float *ys = y + g * bc;
                uint32_t mx = 0;
                for (int64_t i = 0; i < bc; i++) {
                    uint32_t a = xb[i] & 0x7FFFFFFFu;
                    mx = a > mx ? a : mx;
                }
                if (mx >= 0x7F800000u) {
                    if (c->sf)
                        ((uint8_t *)scales)[u + g] = (uint8_t)c->sf->nan_code;
                    else
                        ((float *)scales)[u + g] = NAN;
                    for (int64_t i = 0; i < bc; i++)
                        ys[i] = 0.0f;
                    continue;
                }
                float fac;
                int divide;
                if (float_scale(c, (double)lp_bits_f32(mx), scales, u + g,
                                &fac, &divide)) {
                    for (int64_t i = 0; i < bc; i++)
                        ys[i] = xs[i] * 0.0f;
                } else if (divide) {
                    for (int64_t i = 0; i < bc; i++)
                        ys[i] = xs[i] / fac;
                } else {
                    for (int64_t i = 0; i < bc; i++)
                        ys[i] = xs[i] * fac;
                }
            }
            err |= (int)seg32_at(c, &c->k32, c->o->rounding,
                                 (const uint32_t *)y, codes + u * bc,
                                 ug * bc, u * bc);
        }
        return err;
    }
    for (int64_t u = u0; u < u1; u++) {
        const int64_t p = u / nrb, r0 = (u % nrb) * br;
        const int64_t rn = R - r0 < br ? R - r0 : br;
        for (int64_t j = 0; j < ncb; j++) {
            const int64_t c0 = j * bc, cn = C - c0 < bc ? C - c0 : bc;
            const int64_t idx0 = (p * R + r0) * C + c0;
            double amax;
            int nonfinite;
            const uint32_t *src32 = b32;
            /* 1. gather, 2. amax */
            if (in_type == LP_F64) {
                uint64_t mx = 0;
                for (int64_t r = 0; r < rn; r++) {
                    const uint64_t *src = (const uint64_t *)in + idx0 + r * C;
                    uint64_t *d = b64 + r * cn;
                    memcpy(d, src, (size_t)cn * 8);
                    for (int64_t i = 0; i < cn; i++) {
                        uint64_t a = d[i] & 0x7FFFFFFFFFFFFFFFull;
                        mx = a > mx ? a : mx;
                    }
                }
                nonfinite = mx >= 0x7FF0000000000000ull;
                amax = lp_bits_f64(mx);
            } else {
                uint32_t mx = 0;
                if (in_type == LP_F32 && rn == 1) {
                    /* one contiguous row: read it in place */
                    src32 = (const uint32_t *)in + idx0;
                    for (int64_t i = 0; i < cn; i++) {
                        uint32_t a = src32[i] & 0x7FFFFFFFu;
                        mx = a > mx ? a : mx;
                    }
                } else for (int64_t r = 0; r < rn; r++) {
                    uint32_t *d = b32 + r * cn;
                    const int64_t at = idx0 + r * C;
                    if (in_type == LP_F32)
                        memcpy(d, (const uint32_t *)in + at, (size_t)cn * 4);
                    else if (in_type == LP_BF16)
                        for (int64_t i = 0; i < cn; i++)
                            d[i] = (uint32_t)((const uint16_t *)in)[at + i]
                                   << 16;
                    else
                        for (int64_t i = 0; i < cn; i++)
                            d[i] = lp_f16_to_f32(((const uint16_t *)in)[at + i]);
                    for (int64_t i = 0; i < cn; i++) {
                        uint32_t a = d[i] & 0x7FFFFFFFu;
                        mx = a > mx ? a : mx;
                    }
                }
                nonfinite = mx >= 0x7F800000u;
                amax = (double)lp_bits_f32(mx);
            }
            /* 3. scale, 4. elements */
            uint8_t *dst = bc == cn && rn == 1 ? codes + idx0 : cb;
            err |= block_elements(c, in_type == LP_F64 ? NULL : src32,
                                  in_type == LP_F64 ? b64 : NULL, v, rn, cn,
                                  C, idx0, amax, nonfinite, dst, scales,
                                  u * ncb + j);
            /* 5. scatter */
            if (dst == cb)
                for (int64_t r = 0; r < rn; r++)
                    memcpy(codes + idx0 + r * C, cb + r * cn, (size_t)cn);
        }
    }
    return err;
}

int lp_quantize_blocks(const lp_format *elem, const lp_format *sf,
                       const lp_block_spec *spec, const lp_opts *o,
                       int in_type, const void *in, int64_t u0, int64_t u1,
                       void *codes, void *scales)
{
    return lp_quantize_blocks_map(elem, sf, spec, o, in_type, in, u0, u1, 0,
                                  NULL, codes, scales);
}

int lp_quantize_blocks_map(const lp_format *elem, const lp_format *sf,
                           const lp_block_spec *spec, const lp_opts *o,
                           int in_type, const void *in, int64_t u0,
                           int64_t u1, int64_t run, const int64_t *starts,
                           void *codes, void *scales)
{
    bctx c;
    memset(&c, 0, sizeof c);
    c.run = run;
    c.starts = starts;
    c.elem = elem;
    c.sf = sf;
    c.o = o;
    c.rule = spec->rule;
    c.int_shift = elem->kind == LP_INT ? spec->int_shift : 0;
    c.key = lp_mix64(o->seed);
    /* (the caller's random words take the general core, as in encode.c) */
    c.has_k32 = elem->kind == LP_FLOAT
                && !(o->rounding == LP_SR && o->random)
                && lp_k32_init(&c.k32, elem, o);
    if (elem->kind == LP_INT) {
        c.maxv = ldexp((double)elem->int_max, -c.int_shift);
        c.emax = b_ilog2(c.maxv);
        c.mb = c.int_shift;
    } else {
        c.maxv = lp_decode_one(elem, elem->max_code);
        c.emax = elem->emax;
        c.mb = elem->mbits;
    }
    if (c.rule == LP_BLOCK_NVFP4) {
        double smax = lp_decode_one(sf, sf->max_code);
        if (spec->tensor_amax >= 0) {
            c.S = lp_nvfp4_tensor(smax, c.maxv, spec->tensor_amax, &c.ts);
        } else {
            c.S = 1.0;
            c.ts = 1.0f;
        }
        c.g = r32_mul(c.S, (double)r32_div(1.0, c.maxv));
        for (int i = 0; i < 256; i++)
            c.sval[i] = lp_decode_one(sf, i);
        lp_opts_default(&c.so);
        c.so.saturate = LP_SAT_FINITE;
    }
    const int64_t n = spec->br * spec->bc;
    const int64_t nv = n * BATCH;
    uint32_t *b32 = malloc((size_t)n * 4);
    uint64_t *b64 = malloc((size_t)n * 8);
    uint32_t *v = malloc((size_t)nv * 4);
    uint8_t *cb = malloc((size_t)n);
    int err;
    if (!b32 || !b64 || !v || !cb)
        err = -1;
    else
        err = run_blocks(&c, spec, in_type, in, u0, u1, (uint8_t *)codes,
                         scales, b32, b64, v, cb);
    free(b32);
    free(b64);
    free(v);
    free(cb);
    return err;
}

LP_CLONES
double lp_amax(int in_type, const void *in, int64_t n)
{
    if (in_type == LP_F64) {
        uint64_t mx = 0;
        for (int64_t i = 0; i < n; i++) {
            uint64_t a = ((const uint64_t *)in)[i] & 0x7FFFFFFFFFFFFFFFull;
            mx = a > mx ? a : mx;
        }
        return mx > 0x7FF0000000000000ull ? NAN : lp_bits_f64(mx);
    }
    uint32_t mx = 0;
    if (in_type == LP_F32) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t a = ((const uint32_t *)in)[i] & 0x7FFFFFFFu;
            mx = a > mx ? a : mx;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            uint32_t h = ((const uint16_t *)in)[i];
            uint32_t a = in_type == LP_BF16 ? (h << 16) & 0x7FFFFFFFu
                                            : lp_f16_to_f32(h) & 0x7FFFFFFFu;
            mx = a > mx ? a : mx;
        }
    }
    return mx > 0x7F800000u ? NAN : (double)lp_bits_f32(mx);
}
