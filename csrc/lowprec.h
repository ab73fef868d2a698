/*
 * lowprec.h -- public C99 interface of lowprec.
 *
 * Bit-exact emulation of low-precision number formats.  A format is data
 * (struct lp_format); every kernel takes it as an argument.  Rounding
 * policy travels with each call (struct lp_opts); there is no global state,
 * and every function here is reentrant and thread-safe.
 *
 * Lengths and indices are int64_t: arrays of more than 2^31 elements work.
 * Arrays are contiguous, in native byte order.
 *
 * The text between the LP_CDEF markers is also the cffi cdef of the Python
 * package, so it holds plain declarations only (no macros, no includes).
 */
#ifndef LOWPREC_H
#define LOWPREC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* LP_CDEF_BEGIN */

/* ---- formats (format.c) ------------------------------------------------ */

enum lp_kind { LP_FLOAT = 0, LP_INT = 1 };

/* NaN encodings (see API.md section 1). */
enum lp_nans {
    LP_NANS_IEEE = 0,    /* top exponent field, non-zero mantissa          */
    LP_NANS_TOP = 1,     /* only the all-ones magnitude code (OCP E4M3)    */
    LP_NANS_NEGZERO = 2, /* the single code 100...0 (FNUZ, IEEE P3109)     */
    LP_NANS_NONE = 3     /* no NaN at all (FP6, FP4)                       */
};

/* Sentinel for "this format has no such code". */
enum { LP_NO_CODE = -1 };

typedef struct lp_format {
    /* Primary fields: set these, then call lp_format_init. */
    int32_t kind;        /* LP_FLOAT or LP_INT                               */
    int32_t ebits;       /* float: exponent field width, 1..8               */
    int32_t mbits;       /* float: mantissa field width, 0..23              */
    int32_t bias;        /* float: exponent bias                            */
    int32_t infs;        /* float: 1 if the format has infinities           */
    int32_t nans;        /* float: enum lp_nans                             */
    int32_t negzero;     /* float: 1 if -0 has its own code                 */
    int32_t subnormals;  /* float: 1 if exponent field 0 holds subnormals;
                            0: field 0 holds normals and there is no zero
                            (OCP MX E8M0)                                   */
    int32_t is_signed;   /* 1 if there is a sign bit / negative integers    */
    int32_t bits;        /* int: width, 2..16                               */
    int32_t narrow;      /* int: 1 drops the most negative code             */

    /* Derived fields, written by lp_format_init. */
    int32_t nbits;       /* bits per code                                   */
    int32_t emin;        /* float: unbiased exponent of the lowest normal
                            binade: 1-bias, or -bias without subnormals     */
    int32_t emax;        /* float: unbiased exponent of max_code            */
    int32_t has_zero;    /* float: 0 for formats without a zero (E8M0)      */
    int64_t sign_bit;    /* float: mask of the sign bit, 0 when unsigned    */
    int64_t max_code;    /* float: largest finite magnitude code            */
    int64_t inf_code;    /* float: magnitude code of +inf, or LP_NO_CODE    */
    int64_t nan_code;    /* float: canonical NaN code, or LP_NO_CODE        */
    int64_t int_min;     /* int: smallest value                             */
    int64_t int_max;     /* int: largest value                              */
} lp_format;

/* Validates the primary fields and computes the derived ones.
 * Returns 0, or a negative number naming the first bad field:
 * -1 kind, -2 ebits, -3 mbits, -4 bias, -5 nans/infs/negzero combination,
 * -6 bits, -7 total width over 32. */
int lp_format_init(lp_format *f);

/* Exact value of a code as a double (every format of at most 32 bits with
 * ebits <= 8 is exact in binary64).  NaN codes give NaN, inf codes inf.
 * Integer formats: the code is the integer itself. */
double lp_decode_one(const lp_format *f, int64_t code);

/* ---- rounding policy ---------------------------------------------------- */

enum lp_rounding {
    LP_RNE = 0,  /* nearest, ties to even significand                       */
    LP_RNA = 1,  /* nearest, ties away from zero                            */
    LP_RZ = 2,   /* toward zero                                             */
    LP_RU = 3,   /* toward +infinity                                        */
    LP_RD = 4,   /* toward -infinity                                        */
    LP_RO = 5,   /* to odd: an inexact result takes the neighbour whose
                    last code bit is 1                                      */
    LP_SR = 6    /* stochastic: away from zero with probability equal to
                    the distance to the lower neighbour in units of the gap */
};

typedef struct lp_opts {
    int32_t rounding;    /* enum lp_rounding                                */
    int32_t saturate;    /* 1: overflow gives +-max                         */
    int32_t subnormals;  /* 0: results subnormal after rounding flush to 0  */
    int32_t rbits;       /* stochastic: random bits compared, 1..64         */
    uint64_t seed;       /* stochastic: generator key                       */
    int64_t zero_point;  /* integer formats: added after rounding           */
} lp_opts;

/* Error flags returned (OR-ed) by the array kernels. */
enum lp_error {
    LP_ERR_NAN = 1,       /* a NaN input and the format has no NaN          */
    LP_ERR_NEGATIVE = 2,  /* a negative input into an unsigned float format */
    LP_ERR_ZERO = 4       /* a zero input and the format has neither zero
                             nor NaN                                       */
};

/* The counter-based generator of stochastic rounding: 64 random bits that
 * depend only on (seed, flat element index). */
uint64_t lp_random(uint64_t seed, int64_t index);

/* Rounds sign * sig * 2^exp (sig any 64-bit integer) once to the format:
 * the rounding core every entry point uses.  index is the flat element
 * index (stochastic rounding).  Returns the code; *err is OR-ed with
 * enum lp_error flags.  Integer formats return the integer value. */
int64_t lp_round(const lp_format *f, const lp_opts *o, int sign, int32_t exp,
                 uint64_t sig, int64_t index, int *err);

/* ---- array conversion (encode.c, decode.c) ------------------------------ */

/* Input element types of the encode kernels. */
enum lp_dtype {
    LP_F64 = 0, LP_F32 = 1, LP_F16 = 2, LP_BF16 = 3, LP_I64 = 4, LP_U64 = 5
};

/* Encodes n contiguous elements of type in_type into codes of the format.
 * out is uint8/uint16/uint32 by f->nbits for float formats, int8/uint8 or
 * int16/uint16 for integer formats (by bits and sign).  scale: NULL, or one
 * dequantization scale (> 0, finite) by which each input is divided in the
 * input's precision (float32 for LP_F16/LP_BF16, float64 for integers)
 * before rounding.  index0 is the flat index of element 0.
 * Returns the OR of enum lp_error flags over the elements. */
int lp_encode(const lp_format *f, const lp_opts *o, int in_type,
              const void *in, int64_t n, const double *scale, int64_t index0,
              void *out);

/* As lp_encode, but element by element through the rounding core only,
 * without the table / shift / F16C fast paths: the path the fast ones are
 * tested against. */
int lp_encode_core(const lp_format *f, const lp_opts *o, int in_type,
                   const void *in, int64_t n, const double *scale,
                   int64_t index0, void *out);

/* Fake quantization of float32 / float64 arrays in one pass: each element
 * becomes decode(encode(x / scale)) * scale, the product rounded once to
 * the element type.  Same arguments and errors as lp_encode; in_type is
 * LP_F32 or LP_F64 and out has that type. */
int lp_quantize(const lp_format *f, const lp_opts *o, int in_type,
                const void *in, int64_t n, const double *scale,
                int64_t index0, void *out);

/* Decodes n codes (code_size 1, 2 or 4 bytes; integer formats signed or
 * unsigned as the format) into float32 (out_type LP_F32) or float64
 * (LP_F64): the exact value rounded once to the output type, times scale
 * when scale is not NULL (exact product rounded once; scale is taken in
 * float32 for LP_F32 output).  zero_point: integer formats, subtracted
 * before scaling. */
void lp_decode(const lp_format *f, const void *codes, int64_t n,
               int out_type, const double *scale, int64_t zero_point,
               void *out);

/* LP_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* LOWPREC_H */
