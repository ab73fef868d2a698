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

/* How a format is laid out, derived once by lp_format_init: the kernels
 * choose their fast paths by it, never by comparing fields. */
enum lp_layout {
    LP_LAYOUT_INT = 0,      /* integer format                              */
    LP_LAYOUT_FLOAT = 1,    /* any other float format with a zero          */
    LP_LAYOUT_NOZERO = 2,   /* float without subnormals and without zero:
                               exponent field 0 holds normals (E8M0)       */
    LP_LAYOUT_BINARY16 = 3, /* IEEE 754 binary16                           */
    LP_LAYOUT_BINARY32 = 4, /* IEEE 754 binary32                           */
    LP_LAYOUT_TRUNC32 = 5   /* binary32 truncated: 8 exponent bits, bias 127,
                               IEEE inf/NaN/-0/subnormals, signed, fewer
                               mantissa bits (bfloat16, tfloat32): codes are
                               the top bits of binary32's                  */
};

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
    int32_t layout;      /* enum lp_layout                                  */
    int32_t f32_range;   /* float: 1 if emin >= -126 and emax <= 127: every
                            value is a float32 and float32's subnormals lie
                            below the normal range                          */
} lp_format;

/* Validates the primary fields and computes the derived ones.
 * Returns 0, or a negative number naming the first bad field:
 * -1 kind, -2 ebits, -3 mbits, -4 bias, -5 nans/infs/negzero combination,
 * -6 bits, -7 total width over 32. */
int lp_format_init(lp_format *f);

/* Fills f with the IEEE 754 binary format of ebits exponent and mbits
 * mantissa bits (bias 2^(ebits-1) - 1, inf, IEEE NaNs, -0, subnormals,
 * signed; lp_format_ieee(f, 8, 23) is binary32, (f, 5, 10) binary16) and
 * initialises it.  Returns lp_format_init's result. */
int lp_format_ieee(lp_format *f, int32_t ebits, int32_t mbits);

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

/* Overflow policies (API.md section 9; integer formats always saturate). */
enum lp_saturate {
    LP_SAT_OVFINF = 0,    /* section 2's rule: overflow by rounding mode to
                             inf or max (NaN without inf, max without
                             both); infinite inputs stay inf (or NaN)       */
    LP_SAT_FINITE = 1,    /* overflow and infinite inputs give +-max        */
    LP_SAT_PROPAGATE = 2  /* finite overflow gives +-max; infinite inputs
                             stay inf (NaN without inf, as OVFINF)          */
};

typedef struct lp_opts {
    int32_t rounding;    /* enum lp_rounding                                */
    int32_t saturate;    /* enum lp_saturate                                */
    int32_t keep_subnormals; /* 1: keep subnormal results; 0: results
                            subnormal after rounding flush to 0 (the
                            format's own lp_format.subnormals says whether
                            it has subnormals at all)                       */
    int32_t rbits;       /* stochastic: random bits compared, 1..64         */
    uint64_t seed;       /* stochastic: generator key                       */
    int64_t zero_point;  /* integer formats: added after rounding           */
    int32_t tininess_before; /* flags only (lp_round_flags): 1 detects
                            tininess before rounding, 0 (default) after    */
    const uint64_t *random; /* stochastic: NULL (the generator keyed by
                            seed), or the caller's random words, one per
                            flat element index (random[index], each below
                            2^rbits): the result rounds away from zero iff
                            floor(d * 2^rbits) + random[index] >= 2^rbits,
                            d the dropped fraction (add and truncate) */
} lp_opts;

/* Round-to-nearest-even, no saturation, subnormals kept, rbits 64, seed 0,
 * zero point 0, tininess after rounding, no random words. */
void lp_opts_default(lp_opts *o);

/* Error flags returned (OR-ed) by the array kernels. */
enum lp_error {
    LP_ERR_NAN = 1,       /* a NaN input and the format has no NaN          */
    LP_ERR_NEGATIVE = 2,  /* a negative input into an unsigned float format */
    LP_ERR_ZERO = 4       /* a zero input and the format has neither zero
                             nor NaN                                       */
};

/* IEEE 754 exception flags of one rounding (lp_round_flags), with Berkeley
 * SoftFloat's bit values; they are kept apart from enum lp_error (errors
 * of the API).  A rounding of sign * sig * 2^exp raises:
 *   INEXACT    the result's value differs from the input's (rounding,
 *              overflow, flush to zero, substitution of the smallest value)
 *   UNDERFLOW  tiny and inexact (IEEE 754 7.5): tiny after rounding, the
 *              non-zero input rounded with an unbounded exponent range
 *              below 2^emin in magnitude; or before rounding (opts
 *              tininess_before) |input| < 2^emin
 *   OVERFLOW   the input rounded with an unbounded exponent range above
 *              the largest finite value (IEEE 754 7.4), whatever the
 *              result (inf, NaN or max); always with INEXACT
 *   INFINITE   SoftFloat's divide-by-zero: an exact infinity from finite
 *              operands.  No rounding raises it (reserved for operations)
 *   INVALID    the input has no encoding of its class: NaN into a format
 *              without NaN, an infinity into a format without infinities
 *              (or replaced by max under LP_SAT_FINITE), a zero into one
 *              without zero, a negative non-zero value into an unsigned
 *              format; integer formats: NaN, infinity or out of range.
 *              INVALID comes alone. */
enum lp_flag {
    LP_FLAG_INEXACT = 1,
    LP_FLAG_UNDERFLOW = 2,
    LP_FLAG_OVERFLOW = 4,
    LP_FLAG_INFINITE = 8,
    LP_FLAG_INVALID = 16
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

/* As lp_round, for any input class (cls: 0 finite, 1 infinite, 2 NaN;
 * exp and sig are ignored for cls != 0), and *flags is OR-ed with the
 * enum lp_flag exceptions of this rounding.  Same code and errors as
 * lp_round and every array kernel. */
int64_t lp_round_flags(const lp_format *f, const lp_opts *o, int cls,
                       int sign, int32_t exp, uint64_t sig, int64_t index,
                       int *err, int *flags);

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

/* As lp_encode_core, and flags[i] (n bytes) receives element i's enum
 * lp_flag exceptions (lp_round_flags; o->tininess_before is read). */
int lp_encode_flags(const lp_format *f, const lp_opts *o, int in_type,
                    const void *in, int64_t n, const double *scale,
                    int64_t index0, void *out, uint8_t *flags);

/* Fake quantization of float32 / float64 arrays in one pass: each element
 * becomes decode(encode(x / scale)) * scale, the product rounded once to
 * the element type.  Same arguments and errors as lp_encode; in_type is
 * LP_F32 or LP_F64 and out has that type. */
int lp_quantize(const lp_format *f, const lp_opts *o, int in_type,
                const void *in, int64_t n, const double *scale,
                int64_t index0, void *out);

/* Index maps, for a chunk of a larger array (lowprec.dask): the chunk's
 * elements are contiguous in memory, but their flat indices in the whole
 * array are runs.  Local element l (C order in the chunk) has flat index
 * starts[l / run] + l % run; starts == NULL means the identity (index0 +
 * i, as the kernels without a map).  index0 is the local index of element
 * 0 of the call.  Only stochastic rounding reads the index.
 * lp_encode_map / lp_quantize_map: lp_encode / lp_quantize under a map. */
int lp_encode_map(const lp_format *f, const lp_opts *o, int in_type,
                  const void *in, int64_t n, const double *scale,
                  int64_t index0, int64_t run, const int64_t *starts,
                  void *out);
int lp_quantize_map(const lp_format *f, const lp_opts *o, int in_type,
                    const void *in, int64_t n, const double *scale,
                    int64_t index0, int64_t run, const int64_t *starts,
                    void *out);

/* Decodes n codes (code_size 1, 2 or 4 bytes; integer formats signed or
 * unsigned as the format) into float32 (out_type LP_F32) or float64
 * (LP_F64): the exact value rounded once to the output type, times scale
 * when scale is not NULL (exact product rounded once; scale is taken in
 * float32 for LP_F32 output).  zero_point: integer formats, subtracted
 * before scaling. */
void lp_decode(const lp_format *f, const void *codes, int64_t n,
               int out_type, const double *scale, int64_t zero_point,
               void *out);

/* ---- operations on codes (arith.c) ------------------------------------ */

/* Operations of lp_arith. */
enum lp_op {
    LP_OP_ADD = 0, LP_OP_SUB = 1, LP_OP_MUL = 2, LP_OP_DIV = 3,
    LP_OP_FMA = 4,      /* a * b + c, rounded once                          */
    LP_OP_SQRT = 5,
    LP_OP_CONVERT = 6   /* a's value rounded to f                           */
};

/* One operation on codes: a of format fa, b of fb, c of fc (b, c ignored
 * by the operations that do not take them), the exact result rounded once
 * to f with o (stochastic rounding keyed on (o->seed, index)).  IEEE 754
 * rules: NaN operands give f's canonical NaN (INVALID for signalling NaNs
 * of IEEE NaN encodings); inf - inf, 0 * inf, 0 / 0, inf / inf, sqrt of a
 * negative, fma(0, inf, c) (c a quiet NaN too) give NaN with INVALID;
 * x / 0 gives inf with INFINITE; an exact zero sum is +0, -0 in LP_RD;
 * sqrt(-0) = -0.  A NaN, infinity or zero result in a format without one
 * follows lp_round_flags (NaN into a NaN-less format: code 0, LP_ERR_NAN,
 * INVALID).  Returns the code; *err and *flags are OR-ed (enum lp_error,
 * enum lp_flag).  Float formats, and integer ones for LP_OP_CONVERT. */
int64_t lp_arith_one(int op, const lp_format *f, const lp_opts *o,
                     const lp_format *fa, int64_t a, const lp_format *fb,
                     int64_t b, const lp_format *fc, int64_t c,
                     int64_t index, int *err, int *flags);

/* lp_arith_one with o's seed replaced by seed, everything in the return
 * value: code | flags << 32 | err << 40 (for callers that cannot pass
 * pointers to results, such as foreign-function calls from JIT code). */
int64_t lp_arith_packed(int op, const lp_format *f, const lp_opts *o,
                        const lp_format *fa, int64_t a, const lp_format *fb,
                        int64_t b, const lp_format *fc, int64_t c,
                        uint64_t seed, int64_t index);

/* lp_arith_one over n contiguous elements: a, b, c arrays of the operand
 * formats' code types (as lp_encode's out), element i with flat index
 * index0 + i.  flags: NULL, or n bytes of each element's enum lp_flag.
 * Returns the OR of enum lp_error over the elements. */
int lp_arith(int op, const lp_format *f, const lp_opts *o,
             const lp_format *fa, const void *a, const lp_format *fb,
             const void *b, const lp_format *fc, const void *c, int64_t n,
             int64_t index0, void *out, uint8_t *flags);

/* The results of a binary operation on every pair of codes of formats of
 * at most 8 bits into a format of at most 8 bits (not stochastic), by
 * lp_arith_one: codes[a * 256 + b], and flags[a * 256 + b] = enum lp_flag
 * | enum lp_error << 5.  Returns 0, or -1 when the formats or mode do not
 * qualify. */
int lp_arith_table(int op, const lp_format *f, const lp_opts *o,
                   const lp_format *fa, const lp_format *fb, uint8_t *codes,
                   uint8_t *flags);

/* out[i] = codes[a[i] * 256 + b[i]] for a table of lp_arith_table, flags
 * (NULL for none) from its flags.  Returns the OR of enum lp_error. */
int lp_arith_lookup(const uint8_t *codes, const uint8_t *tflags,
                    const uint8_t *a, const uint8_t *b, int64_t n,
                    uint8_t *out, uint8_t *flags);

/* ---- block-scaled quantization (blocks.c) ---- */

/* Scale rules of lp_quantize_blocks (API.md section 8). */
enum lp_block_rule {
    LP_BLOCK_FLOOR = 0,  /* e8m0: 2^(floor(log2 amax) - emax) (OCP MX)      */
    LP_BLOCK_CEIL = 1,   /* e8m0: 2^ceil(log2(amax / max))                  */
    LP_BLOCK_RCEIL = 2,  /* e8m0: R32(amax / max) rounded up to a power of 2 */
    LP_BLOCK_EVEN = 3,   /* e8m0: floor of amax rounded to the element width */
    LP_BLOCK_NVFP4 = 4,  /* float scale format (e4m3, ue5m3) under S        */
    LP_BLOCK_DECODE = 5, /* float32: s = R32(amax / max), x / s             */
    LP_BLOCK_ENCODE = 6, /* float32: e = R32(max / amax), x * e, s = 1/e    */
    LP_BLOCK_POW2 = 7    /* float32: e = 2^floor(log2(max / amax))          */
};

/* Everything of one call but the arrays.  The input is viewed as
 * (P, R, C), contiguous, cut into blocks of br x bc over (R, C); block
 * (p, i, j) has scale number (p * nrb + i) * ncb + j with nrb = ceil(R /
 * br), ncb = ceil(C / bc) (the last blocks may be partial). */
typedef struct lp_block_spec {
    int32_t rule;        /* enum lp_block_rule                              */
    int32_t int_shift;   /* integer elements: read as q / 2^int_shift       */
    double tensor_amax;  /* LP_BLOCK_NVFP4 with two levels: T (else < 0)    */
    int64_t P, R, C, br, bc;
} lp_block_spec;

/* Quantizes the blocks of rows of blocks [u0, u1) (u = p * nrb + i) of the
 * input (in_type as lp_encode; LP_I64/LP_U64 not accepted) in one pass per
 * block: amax = max |x| exactly, the scale by spec->rule, then every
 * element rounded once by the core of round.h with o's mode (o->saturate
 * LP_SAT_FINITE), stochastic rounding keyed on the flat index p*R*C + r*C + c.
 * e8m0 rules (sf the e8m0 format): the element is the exact x / 2^k rounded
 * once.  codes: one per element (uint8, int8 for integer elements); scales:
 * uint8 codes of sf, or float32 (sf NULL) for the float32 rules.  A block
 * holding NaN or inf gets sf's NaN code (float32 NaN) and zero codes.
 * Returns enum lp_error flags, or -1 when memory ran out. */
int lp_quantize_blocks(const lp_format *elem, const lp_format *sf,
                       const lp_block_spec *spec, const lp_opts *o,
                       int in_type, const void *in, int64_t u0, int64_t u1,
                       void *codes, void *scales);

/* lp_quantize_blocks with the flat indices of stochastic rounding taken
 * through an index map (see lp_encode_map; local index p*R*C + r*C + c). */
int lp_quantize_blocks_map(const lp_format *elem, const lp_format *sf,
                           const lp_block_spec *spec, const lp_opts *o,
                           int in_type, const void *in, int64_t u0,
                           int64_t u1, int64_t run, const int64_t *starts,
                           void *codes, void *scales);

/* The tensor factor of the nvfp4 rule: S = R32(smax * emax / T), 1 when T
 * is 0 or not finite or S is 0 or inf; *ts = R32(1 / S). */
double lp_nvfp4_tensor(double smax, double emax, double T, float *ts);

/* max |x| over n elements (in_type LP_F64, LP_F32, LP_F16, LP_BF16);
 * NaN when one is NaN. */
double lp_amax(int in_type, const void *in, int64_t n);

/* ---- matrix multiply (gemm_isa.c, gemm.c, exact.c, accumulate.c) ---- */

/* Matrices are row-major and contiguous.  Each kernel computes the output
 * rows [row0, row1) only, so callers split rows over threads; the bits do
 * not depend on the split, the ISA or the blocking.  isa: enum lp_isa
 * (LP_ISA_AUTO picks the best available).  Kernels returning int give 0,
 * or -1 when memory ran out. */
enum lp_isa { LP_ISA_AUTO = -1, LP_ISA_GENERIC = 0, LP_ISA_AVX2 = 1,
              LP_ISA_AVX512 = 2 };

/* The ISA a kernel will use for a request (the best available for
 * LP_ISA_AUTO or a request above it). */
int lp_matmul_isa(int requested);

/* B (k x n; element size es: 4 float, 8 double) packed for the kernels
 * of ISA isa and K-blocks of bk (0: one block), in column panels of the
 * micro-tile width: lp_gemm_panels(es, isa, n) panels, and
 * lp_gemm_pack_size(es, isa, k, n) elements in all.  lp_gemm_pack_b packs
 * panels [jp0, jp1) (threads split panels).  With lut (es-typed values of
 * the 256 byte codes; NULL for none), b holds uint8 codes decoded through
 * it as they are packed; the same for a and alut in the products below. */
int64_t lp_gemm_panels(int es, int isa, int64_t n);
int64_t lp_gemm_pack_size(int es, int isa, int64_t k, int64_t n);
void lp_gemm_pack_b(int es, int isa, const void *b, const void *lut,
                    int64_t k, int64_t n, int64_t bk, void *bp, int64_t jp0,
                    int64_t jp1);

/* Scaled float32 product with K-blocks of bk (bk divides k; nb = k / bk;
 * 0: one block), B packed by lp_gemm_pack_b(4, isa, ..., bk, ...):
 * for every block b, p = the fused multiply-add chain
 * p = fmaf(a[i,k], b[k,j], p) from p = +0 over the block's k in order;
 * t = R32(p * R32(as[i*nb + b] * bs[b*n + j])); c = t for b = 0, else
 * R32(c + t).  IEEE 754 float32 arithmetic throughout (NaN, inf). */
int lp_gemm_f32(const void *a, const float *alut, const float *bp,
                int64_t m, int64_t n, int64_t k, int64_t bk, const float *as,
                const float *bs, float *c, int64_t row0, int64_t row1,
                int isa);

/* The same in float64 (B packed by lp_gemm_pack_b(8, ...)): p is the
 * float64 sum of the block's products in an unspecified order, rounded to
 * float32 before the epilogue.  Exact when the caller guarantees that every
 * partial sum is representable.  With as == NULL: raw, c is float64 m x n
 * = a * b (one block: pack with bk = 0). */
int lp_gemm_f64(const void *a, const double *alut, const double *bp,
                int64_t m, int64_t n, int64_t k, int64_t bk, const float *as,
                const float *bs, void *c, int64_t row0, int64_t row1,
                int isa);

/* Exact products of sliced operands in one pass: a (m x k) and b (k x n,
 * packed by lp_gemm_pack_b(8, isa, ..., bk, ...)) hold, for every block,
 * sub sub-blocks of bk steps whose float64 sums are exact multiples of
 * 2^(ua[i] + ub[j]) below 2^(ua[i] + ub[j] + 114); each is added exactly
 * into a pair of int64 (at most 2^11 sub-blocks a block), and after the
 * block's last one the total is rounded once to float32 and scaled as
 * lp_gemm_f64 does (nb = k / (bk * sub) blocks; as m x nb, bs nb x n). */
int lp_gemm_f64_exact(const double *a, const double *bp, int64_t m,
                      int64_t n, int64_t k, int64_t bk, int64_t sub,
                      const int32_t *ua, const int32_t *ub, const float *as,
                      const float *bs, float *c, int64_t row0, int64_t row1,
                      int isa);

/* Ranges of the lines (axis 1: rows, axis 0: columns) [l0, l1) of x
 * (rows x cols, finite): top = the largest binade floor(log2|v|) and q the
 * smallest quantum exponent max(binade, emin) - mbits over the non-zero
 * entries (integer formats: emin = mbits = 2^20 gives q = 0); INT32_MIN and
 * INT32_MAX for lines without one.  lp_slice splits x (rows [r0, r1)) into
 * nslices slices of w bits below each line's top t: slice s, at
 * out + s*rows*cols, holds the bits of weight [2^(t+1-(s+1)w),
 * 2^(t+1-sw)); the slices sum to x exactly when nslices*w covers t - q. */
void lp_line_ranges(const double *x, int64_t rows, int64_t cols, int axis,
                    int32_t emin, int32_t mbits, int32_t *top, int32_t *q,
                    int64_t l0, int64_t l1);
void lp_slice(const double *x, int64_t rows, int64_t cols, int axis,
              const int32_t *top, int32_t w, int32_t nslices, double *out,
              int64_t r0, int64_t r1);

/* out[i*n+j] = R32(exact sum over kk in [k0, k1) of a[i*k+kk] * bt[j*k+kk])
 * (bt is b transposed, n x k), exact zero as +0.  Finite operands whose
 * products are multiples of 2^lo; nlimbs 32-bit digits hold the sum.
 * Returns 1 when a product was not finite or did not fit (then skipped). */
int lp_exact_dot(const double *a, const double *bt, int64_t m, int64_t n,
                 int64_t k, int64_t k0, int64_t k1, int32_t lo, int32_t nlimbs,
                 float *out, int64_t row0, int64_t row1);

/* The exact sums of lp_exact_dot, unrounded, as limbs (lowprec.dask adds
 * the sums of K chunks): element (i, j) at limbs + (i*n + j) * nlimbs,
 * nlimbs <= 64 digits of weight 2^(lo + 32 w), digits 0 .. nlimbs-2 in
 * [0, 2^32), the top one signed; the value is sum_w limbs[w] 2^(lo+32w).
 * Limb vectors of up to 2^30 calls may be added as int64.  Returns as
 * lp_exact_dot.  lp_limbs_to_f32 rounds count such (summed) vectors once
 * to float32 (nearest even, exact zero as +0). */
int lp_exact_dot_limbs(const double *a, const double *bt, int64_t m,
                       int64_t n, int64_t k, int64_t k0, int64_t k1,
                       int32_t lo, int32_t nlimbs, int64_t *limbs,
                       int64_t row0, int64_t row1);
void lp_limbs_to_f32(const int64_t *limbs, int64_t count, int32_t nlimbs,
                     int32_t lo, float *out);

/* lp_exact_dot with c (NULL, or finite values, n-strided, multiples of
 * 2^lo) added exactly into each sum before the one rounding. */
int lp_exact_dot_c(const double *a, const double *bt, int64_t m, int64_t n,
                   int64_t k, int64_t k0, int64_t k1, int32_t lo,
                   int32_t nlimbs, const double *c, float *out, int64_t row0,
                   int64_t row1);

/* Sequential accumulation in float format f: acc = +0, then for kk in
 * [k0, k1): acc = round_f(acc + a[i*k+kk] * bt[j*k+kk]), the product exact
 * and the exact sum rounded once with policy o (IEEE 754 signs of exact
 * zero sums; NaN and inf as lp_round).  Stochastic rounding uses element
 * index index0 + (i*n + j)*k + kk.  out: the final acc values (exact in
 * float64).  Returns enum lp_error flags, or -1. */
int lp_accumulate(const lp_format *f, const lp_opts *o, const double *a,
                  const double *bt, int64_t m, int64_t n, int64_t k,
                  int64_t k0, int64_t k1, int64_t index0, double *out,
                  int64_t row0, int64_t row1);

/* lp_accumulate starting each element's acc from init[i*n+j] (a value of
 * f, or NULL for +0) instead of +0. */
int lp_accumulate_from(const lp_format *f, const lp_opts *o, const double *a,
                       const double *bt, int64_t m, int64_t n, int64_t k,
                       int64_t k0, int64_t k1, int64_t index0,
                       const double *init, double *out, int64_t row0,
                       int64_t row1);

/* ---- fused (tensor-core) accumulation (fused.c, API.md section 7) ---- */

/* A fused accumulation model: steps of `group` products aligned to the
 * largest term exponent E, truncated toward zero to multiples of
 * 2^(E - align_bits), summed exactly and rounded once to out_bits bits with
 * out_rounding (an lp_rounding, not LP_SR) in the accumulator's exponent
 * range [acc_emin, acc_emax] (subnormals kept, overflow to inf).  With
 * promote_every > 0 (a multiple of group) the chain restarts from +0 every
 * promote_every k and each partial is added with round-to-nearest-even
 * into a total of total_bits bits in [total_emin, total_emax] (24, -126,
 * 127: a float32 addition). */
typedef struct lp_fused {
    int32_t group, align_bits, out_bits, out_rounding;
    int32_t acc_emin, acc_emax;
    int32_t promote_every;
    int32_t total_bits, total_emin, total_emax;
} lp_fused;

/* out[i*n+j] (rows [row0, row1)) = the model's chain over k in [k0, k1) of
 * a[i*k+kk] * bt[j*k+kk] (bt is b transposed, n x k; values whose pairwise
 * products are exact in double), ae / bte the operands' alignment
 * exponents (max(floor(log2|x|), emin); -4000 for zeros).  c (n-strided,
 * or NULL): the accumulator input (the first step's accumulator, or the
 * promoted total's start).  rowbad[i] / colbad[j]: 1 where the row of a /
 * column of b holds inf or NaN (those outputs take the scalar path).
 * isa: as lp_gemm_f32.  path: LP_FUSED_NARROW when every product is
 * exact in float32 and scaled by 2^(F - E) stays in float32's normal range
 * (the float lanes; taken where half a group's truncated products sum
 * below 2^31), LP_FUSED_WIDE
 * (double lanes), LP_FUSED_SCALAR (the scalar path only: tests); all give
 * the same results.  Results are float32 / float16 values (NaN as any
 * NaN).  Returns 0, -1 for bad arguments, -2 when memory ran out. */
enum lp_fused_path { LP_FUSED_NARROW = 0, LP_FUSED_WIDE = 1,
                     LP_FUSED_SCALAR = 2 };
int lp_fused_gemm(const lp_fused *m, const double *a, const int32_t *ae,
                  const double *bt, const int32_t *bte, int64_t n, int64_t k,
                  int64_t k0, int64_t k1, const double *c,
                  const uint8_t *rowbad, const uint8_t *colbad, double *out,
                  int64_t row0, int64_t row1, int isa, int path);

/* int32 c = a * b, wrapping modulo 2^32: a (m x k) and b (k x n) are int8,
 * or uint8 when *_unsigned. */
int lp_gemm_i32(const void *a, int a_unsigned, const void *b, int b_unsigned,
                int64_t m, int64_t n, int64_t k, int32_t *c, int64_t row0,
                int64_t row1, int isa);

/* Block epilogue: c = t for blk == 0 else R32(c + t), with
 * t = R32(p * R32(as[i*nb + blk] * bs[blk*n + j])). */
void lp_scale_acc(const float *p, const float *as, const float *bs,
                  int64_t n, int64_t nb, int64_t blk, float *c, int64_t row0,
                  int64_t row1);

/* ---- exact integer GEMM on AMX (gemm_amx.c) ---- */

/* 1 when this CPU and OS run AMX-TILE and AMX-INT8 tile instructions and the
 * process holds the tile-data permission (requested once, by the first
 * caller); 0 otherwise.  Thread-safe. */
int lp_amx_available(void);

/* c[i*n + j] = sum over kk of a[i*k + kk] * b[kk*n + j], exactly, for the
 * rows i in [r0, r1) of c only: a is m x k, b is k x n, c is m x n, all
 * row-major.  Every operand must satisfy |x| <= 2^bits - 1 with
 * 0 <= bits <= 21, and k * (2^bits - 1)^2 must fit int64, so the result is
 * exact.  Uses AMX-INT8 where lp_amx_available(), else a portable int64
 * loop; both give the same values.  Calls on disjoint row ranges may run
 * concurrently; each call packs all of b (k*n bytes per limb: 3 limbs for
 * bits > 14, 2 for bits > 7), so give each thread one large range.
 * Returns 0, or (c untouched) -1 for a bad argument (sizes,
 * row range, bits, the int64 bound), -2 when memory ran out, -3 when an
 * element of a (rows [r0, r1)) is out of range, -4 when one of b is. */
int lp_gemm_exact_i32(const int32_t *a, const int32_t *b, int64_t m,
                      int64_t n, int64_t k, int bits, int64_t *c, int64_t r0,
                      int64_t r1);

/* lp_gemm_exact_i32 on the portable path only (the check of the AMX path;
 * same contract and return values). */
int lp_gemm_exact_i32_ref(const int32_t *a, const int32_t *b, int64_t m,
                          int64_t n, int64_t k, int bits, int64_t *c,
                          int64_t r0, int64_t r1);

/* LP_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* LOWPREC_H */
