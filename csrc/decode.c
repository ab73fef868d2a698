/* decode.c -- codes to float32 / float64.
 *
 * Each code's exact value (lp_decode_one, exact in binary64) is rounded
 * once to the output type; with a scale, the exact product value * scale
 * is rounded once (scale taken in float32 for float32 output: the product
 * of two float32-exact numbers is exact in binary64, so computing it there
 * and converting is one rounding).  Formats of at most 8 bits, and 16-bit
 * formats on long arrays, go through a table of the exact values.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "round.h"


/* Code i as an index into a table of 2^nbits entries (integer formats:
 * value - int_min for signed ones). */
static inline int64_t load_code(const void *codes, int64_t i, int size,
                                int signed_int)
{
    if (size == 1)
        return signed_int ? (int64_t)((const int8_t *)codes)[i]
                          : (int64_t)((const uint8_t *)codes)[i];
    if (size == 2)
        return signed_int ? (int64_t)((const int16_t *)codes)[i]
                          : (int64_t)((const uint16_t *)codes)[i];
    return (int64_t)((const uint32_t *)codes)[i];
}

LP_CLONES
static void gather8_f32(const float *lut, const uint8_t *c, int64_t n,
                        float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = lut[c[i]];
}

LP_CLONES
static void gather8_f64(const double *lut, const uint8_t *c, int64_t n,
                        double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = lut[c[i]];
}

LP_CLONES
static void gather16_f32(const float *lut, const uint16_t *c, int64_t n,
                         float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = lut[c[i]];
}

LP_CLONES
static void gather16_f64(const double *lut, const uint16_t *c, int64_t n,
                         double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = lut[c[i]];
}

/* bfloat16 codes are the top half of float32 (NaNs made canonical, as
 * everywhere in decode). */
LP_CLONES
static void bf16_f32(const uint16_t *c, int64_t n, float *out)
{
    uint32_t *o = (uint32_t *)out;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)c[i] << 16;
        o[i] = (u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : u;  /* NaN */
    }
}

/* ---- float32 output by arithmetic ---------------------------------------
 * For formats whose every value is a float32 (subnormals, emin >= -126,
 * emax <= 127) each code's float32 bits are assembled directly, without
 * a table, in a loop without branches that vectorises:
 *   normal:    ((field - bias + 127) << 23) | (mantissa << (23 - mbits))
 *   subnormal: mantissa * 2^(emin - mbits), exact in float32
 * e4m3fn 0x7E: field 15, mantissa 6 -> (15 - 7 + 127) << 23 | 6 << 20
 * = 0x43E00000 = 448.0f. */
typedef struct {
    uint32_t mb, magmask, mmask, sign_bit, top, ieee, nan_mag, nan_full;
    uint32_t inf_mag, exp_adj;
    float sub_scale;
} lp_d32;

static int d32_init(lp_d32 *d, const lp_format *f)
{
    if (!f->f32_range || f->layout == LP_LAYOUT_NOZERO)
        return 0;
    d->mb = (uint32_t)f->mbits;
    d->magmask = (uint32_t)((1u << (f->ebits + f->mbits)) - 1);
    d->mmask = (1u << f->mbits) - 1;
    d->sign_bit = (uint32_t)f->sign_bit;
    d->top = (1u << f->ebits) - 1;
    d->ieee = f->nans == LP_NANS_IEEE;
    /* codes that cannot occur stand for "no such code" */
    d->nan_mag = f->nans == LP_NANS_TOP ? (uint32_t)f->nan_code : 0xFFFFFFFFu;
    d->nan_full = f->nans == LP_NANS_NEGZERO ? (uint32_t)f->nan_code
                                             : 0xFFFFFFFFu;
    d->inf_mag = f->inf_code != LP_NO_CODE ? (uint32_t)f->inf_code
                                           : 0xFFFFFFFFu;
    d->exp_adj = (uint32_t)(127 - f->bias);
    d->sub_scale = (float)ldexp(1.0, f->emin - f->mbits);
    return 1;
}

static inline uint32_t d32_one(const lp_d32 *d, uint32_t c)
{
    uint32_t mag = c & d->magmask;
    uint32_t field = mag >> d->mb, mant = mag & d->mmask;
    uint32_t sgn = (uint32_t)((c & d->sign_bit) != 0) << 31;
    uint32_t normal = ((field + d->exp_adj) << 23) | (mant << (23 - d->mb));
    float sub = (float)mant * d->sub_scale;
    uint32_t sub_bits;
    memcpy(&sub_bits, &sub, 4);
    /* selects as masks: the loop stays free of branches */
    uint32_t is_sub = 0u - (uint32_t)(field == 0);
    uint32_t bits = (sub_bits & is_sub) | (normal & ~is_sub);
    uint32_t is_nan = 0u - ((d->ieee & (uint32_t)(field == d->top)
                             & (uint32_t)(mant != 0))
                            | (uint32_t)(mag == d->nan_mag)
                            | (uint32_t)(c == d->nan_full));
    uint32_t is_inf = 0u - (uint32_t)(mag == d->inf_mag);
    bits = (0x7F800000u & is_inf) | (bits & ~is_inf);
    bits |= sgn;
    return (0x7FC00000u & is_nan) | (bits & ~is_nan);
}

LP_CLONES
static void d32_run(const lp_d32 *dp, const void *codes, int size,
                    int64_t n, const double *scale, float *out)
{
    const lp_d32 d = *dp;
    uint32_t *o = (uint32_t *)out;
    if (size == 1) {
        const uint8_t *c = (const uint8_t *)codes;
        for (int64_t i = 0; i < n; i++)
            o[i] = d32_one(&d, c[i]);
    } else if (size == 2) {
        const uint16_t *c = (const uint16_t *)codes;
        for (int64_t i = 0; i < n; i++)
            o[i] = d32_one(&d, c[i]);
    } else {
        const uint32_t *c = (const uint32_t *)codes;
        for (int64_t i = 0; i < n; i++)
            o[i] = d32_one(&d, c[i]);
    }
    if (scale) {
        /* value and scale are float32: the float32 product is the exact
         * product rounded once */
        const float s = (float)*scale;
        for (int64_t i = 0; i < n; i++)
            out[i] = out[i] * s;
    }
}

void lp_decode(const lp_format *f, const void *codes, int64_t n,
               int out_type, const double *scale, int64_t zero_point,
               void *out)
{
    const int is_int = f->kind == LP_INT;
    const int size = is_int ? (f->bits <= 8 ? 1 : 2)
                            : f->nbits <= 8 ? 1 : f->nbits <= 16 ? 2 : 4;
    const int signed_int = is_int && f->is_signed;
    const double s = scale ? (out_type == LP_F32 ? (double)(float)*scale
                                                 : *scale)
                           : 1.0;
    if (n <= 0)
        return;

    /* bfloat16 into float32, unscaled: a shift. */
    if (f->layout == LP_LAYOUT_TRUNC32 && f->nbits == 16 && !scale
        && out_type == LP_F32) {
        bf16_f32((const uint16_t *)codes, n, (float *)out);
        return;
    }

    lp_d32 d;
    if (out_type == LP_F32 && d32_init(&d, f)) {
        d32_run(&d, codes, size, n, scale, (float *)out);
        return;
    }

    /* Table of exact values (times scale, minus zero point), indexed by
     * the code's bits. */
    if (size == 1 || (size == 2 && n >= 65536)) {
        int64_t entries = (int64_t)1 << (size * 8);
        double *lut = (double *)malloc((size_t)entries * sizeof(double));
        if (lut) {
            for (int64_t k = 0; k < entries; k++) {
                int64_t c = k;
                if (signed_int && k >= entries / 2)
                    c = k - entries;         /* two's complement byte */
                double v = lp_decode_one(f, c);
                if (is_int)
                    v = (double)(c - zero_point);
                lut[k] = scale ? v * s : v;
            }
            if (out_type == LP_F64) {
                if (size == 1)
                    gather8_f64(lut, (const uint8_t *)codes, n,
                                (double *)out);
                else
                    gather16_f64(lut, (const uint16_t *)codes, n,
                                 (double *)out);
            } else {
                float *lut32 = (float *)lut;  /* narrowed in place */
                for (int64_t k = 0; k < entries; k++)
                    lut32[k] = (float)lut[k];
                if (size == 1)
                    gather8_f32(lut32, (const uint8_t *)codes, n,
                                (float *)out);
                else
                    gather16_f32(lut32, (const uint16_t *)codes, n,
                                 (float *)out);
            }
            free(lut);
            return;
        }
    }

    /* Element by element. */
    for (int64_t i = 0; i < n; i++) {
        int64_t c = load_code(codes, i, size, signed_int);
        double v = is_int ? (double)(c - zero_point) : lp_decode_one(f, c);
        if (scale)
            v = v * s;
        if (out_type == LP_F64)
            ((double *)out)[i] = v;
        else
            ((float *)out)[i] = (float)v;
    }
}
