/* format.c -- a format is data: validation, derived fields, exact decode.
 *
 * Every derived property of a format (largest finite code, NaN and inf
 * codes, exponent range) is computed here and nowhere else; the Python
 * package reads them from this struct.
 */
#include <math.h>
#include <string.h>
#include "lowprec.h"

/* Magnitude code with every exponent and mantissa bit set. */
static int64_t all_ones(const lp_format *f)
{
    return ((int64_t)1 << (f->ebits + f->mbits)) - 1;
}

static int init_int(lp_format *f)
{
    if (f->bits < 2 || f->bits > 16)
        return -6;
    f->nbits = f->bits;
    if (f->is_signed) {
        f->int_max = ((int64_t)1 << (f->bits - 1)) - 1;
        f->int_min = -f->int_max - (f->narrow ? 0 : 1);
    } else {
        if (f->narrow)           /* narrow drops the most negative code */
            return -6;
        f->int_max = ((int64_t)1 << f->bits) - 1;
        f->int_min = 0;
    }
    f->ebits = f->mbits = f->bias = 0;
    f->infs = 0;
    f->nans = LP_NANS_NONE;
    f->has_zero = 1;
    f->sign_bit = 0;
    f->max_code = f->int_max;
    f->inf_code = f->nan_code = LP_NO_CODE;
    f->emin = f->emax = 0;
    f->layout = LP_LAYOUT_INT;
    f->f32_range = 0;
    return 0;
}

/* Is f (valid, float) IEEE 754's layout with ebits and mbits at most: the
 * binary bias, inf, IEEE NaNs, -0, subnormals and a sign bit? */
static int ieee_like(const lp_format *f, int32_t ebits)
{
    return f->ebits == ebits && f->bias == (1 << (ebits - 1)) - 1
           && f->infs && f->nans == LP_NANS_IEEE && f->negzero
           && f->subnormals && f->is_signed;
}

/* The layout of a valid float format: the one place that recognises a
 * format by its fields. */
static int32_t float_layout(const lp_format *f)
{
    if (!f->subnormals)
        return LP_LAYOUT_NOZERO;
    if (ieee_like(f, 5) && f->mbits == 10)
        return LP_LAYOUT_BINARY16;
    if (ieee_like(f, 8))
        return f->mbits == 23 ? LP_LAYOUT_BINARY32 : LP_LAYOUT_TRUNC32;
    return LP_LAYOUT_FLOAT;
}

int lp_format_ieee(lp_format *f, int32_t ebits, int32_t mbits)
{
    memset(f, 0, sizeof *f);
    f->kind = LP_FLOAT;
    f->ebits = ebits;
    f->mbits = mbits;
    f->bias = ebits >= 1 && ebits <= 8 ? (1 << (ebits - 1)) - 1 : 0;
    f->infs = 1;
    f->nans = LP_NANS_IEEE;
    f->negzero = 1;
    f->subnormals = 1;
    f->is_signed = 1;
    return lp_format_init(f);
}

int lp_format_init(lp_format *f)
{
    if (f->kind == LP_INT)
        return init_int(f);
    if (f->kind != LP_FLOAT)
        return -1;
    if (f->ebits < 1 || f->ebits > 8)
        return -2;
    if (f->mbits < 0 || f->mbits > 23)
        return -3;
    f->is_signed = f->is_signed ? 1 : 0;
    f->nbits = f->is_signed + f->ebits + f->mbits;
    if (f->nbits > 32)
        return -7;
    if (f->nbits < 2)
        return -7;
    /* Every value must be exact in binary64 and its exponent range must not
     * reach below float32's subnormals by more than binary64 can hold. */
    if (f->bias < -126 || f->bias > 254)
        return -4;
    if (!f->is_signed)
        f->negzero = 0;
    f->infs = f->infs ? 1 : 0;
    f->negzero = f->negzero ? 1 : 0;
    f->subnormals = f->subnormals ? 1 : 0;
    f->sign_bit = f->is_signed ? (int64_t)1 << (f->nbits - 1) : 0;
    f->has_zero = f->subnormals;
    f->emin = f->subnormals ? 1 - f->bias : -f->bias;
    f->int_min = f->int_max = 0;

    int64_t ones = all_ones(f);
    switch (f->nans) {
    case LP_NANS_IEEE:
        /* 1. NaN: top exponent field, mantissa != 0; needs a mantissa bit.
         *    Canonical: mantissa MSB set (fp16: 0b0_11111_1000000000). */
        if (f->mbits < 1)
            return -5;
        f->nan_code = ((int64_t)((1 << f->ebits) - 1) << f->mbits)
                      | ((int64_t)1 << (f->mbits - 1));
        if (f->infs) {
            f->inf_code = (int64_t)((1 << f->ebits) - 1) << f->mbits;
            f->max_code = f->inf_code - 1;
        } else {
            f->inf_code = LP_NO_CODE;
            f->max_code = (int64_t)((1 << f->ebits) - 1) << f->mbits;
        }
        break;
    case LP_NANS_TOP:
        /* 2. NaN: the all-ones magnitude (e4m3fn: 0b0_1111_111). */
        f->nan_code = ones;
        f->inf_code = f->infs ? ones - 1 : LP_NO_CODE;
        f->max_code = ones - 1 - (f->infs ? 1 : 0);
        break;
    case LP_NANS_NEGZERO:
        /* 3. NaN: the code that would be -0 (fnuz: 0b1_0000_000). */
        if (f->negzero || !f->is_signed)
            return -5;
        f->nan_code = f->sign_bit;
        f->inf_code = f->infs ? ones : LP_NO_CODE;
        f->max_code = ones - (f->infs ? 1 : 0);
        break;
    case LP_NANS_NONE:
        f->nan_code = LP_NO_CODE;
        f->inf_code = f->infs ? ones : LP_NO_CODE;
        f->max_code = ones - (f->infs ? 1 : 0);
        break;
    default:
        return -5;
    }
    if (f->max_code < 1)
        return -5;
    /* Exponent of the largest finite value: its field (0 counts as emin). */
    {
        int32_t field = (int32_t)(f->max_code >> f->mbits);
        f->emax = (field == 0 && f->subnormals) ? f->emin : field - f->bias;
    }
    f->layout = float_layout(f);
    f->f32_range = f->emin >= -126 && f->emax <= 127;
    return 0;
}

double lp_decode_one(const lp_format *f, int64_t code)
{
    if (f->kind == LP_INT)
        return (double)code;
    int64_t mag = code & ~f->sign_bit & (((int64_t)1 << f->nbits) - 1);
    int neg = (code & f->sign_bit) != 0;
    if (f->nan_code != LP_NO_CODE) {
        if (f->nans == LP_NANS_IEEE) {
            if ((mag >> f->mbits) == (1 << f->ebits) - 1
                && (mag & (((int64_t)1 << f->mbits) - 1)) != 0)
                return NAN;
        } else if (f->nans == LP_NANS_TOP) {
            if (mag == f->nan_code)
                return NAN;
        } else if ((code & (((int64_t)1 << f->nbits) - 1)) == f->nan_code) {
            return NAN;
        }
    }
    if (f->inf_code != LP_NO_CODE && mag == f->inf_code)
        return neg ? -INFINITY : INFINITY;
    int32_t field = (int32_t)(mag >> f->mbits);
    int64_t m = mag & (((int64_t)1 << f->mbits) - 1);
    int32_t e;
    if (field == 0 && f->subnormals) {
        e = f->emin;             /* 0.m x 2^emin */
    } else {
        m |= (int64_t)1 << f->mbits;
        e = field - f->bias;     /* 1.m x 2^(field-bias) */
    }
    double v = ldexp((double)m, e - f->mbits);
    return neg ? -v : v;
}
