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
#include "lowprec.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define LP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LP_CLONES
#endif

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

/* bfloat16 codes are the top half of float32. */
LP_CLONES
static void bf16_f32(const uint16_t *c, int64_t n, float *out)
{
    uint32_t *o = (uint32_t *)out;
    for (int64_t i = 0; i < n; i++)
        o[i] = (uint32_t)c[i] << 16;
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
    if (!is_int && size == 2 && f->ebits == 8 && f->mbits == 7
        && f->bias == 127 && f->nans == LP_NANS_IEEE && f->infs
        && f->subnormals && f->is_signed && !scale && out_type == LP_F32) {
        bf16_f32((const uint16_t *)codes, n, (float *)out);
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
