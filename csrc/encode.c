/* encode.c -- array encode and fake-quantize kernels.
 *
 * Three paths, all giving the bits of the rounding core (round.h):
 *  - general: unpack each element and call the core;
 *  - table:   float inputs into formats of at most 8 bits, deterministic
 *             modes.  The result of rounding depends only on the sign, the
 *             exponent (clamped to the window where it matters), the top
 *             mbits+1 mantissa bits and whether any bit below them is set;
 *             a table indexed by those, filled by calling the core on one
 *             representative input per entry, replaces the core;
 *   - shift:  float32 into formats with float32's exponent range
 *             (bfloat16, tfloat32): rounding is a fixed shift.
 *  - F16C:    float32 into float16, nearest-even, with the hardware
 *             conversion and the format's policies applied after it.
 * Tests compare every path against the core and an exact reference.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "round.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LP_HAVE_F16C 1
#endif

/* ---- element access ----------------------------------------------------- */

LP_INLINE uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

LP_INLINE float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

LP_INLINE uint64_t f64_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}

/* float16 bits -> float32 bits, exact (every float16 is a float32). */
LP_INLINE uint32_t f16_to_f32_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t field = (h >> 10) & 0x1F, frac = h & 0x3FF;
    if (field == 0x1F)
        return sign | 0x7F800000 | (frac << 13);
    if (field != 0)
        return sign | ((field + 112) << 23) | (frac << 13);
    if (frac == 0)
        return sign;
    /* subnormal: 0.frac x 2^-14, exact in float32 */
    float v = (float)frac * (1.0f / 16777216.0f);
    return sign | f32_bits(v);
}

LP_INLINE void store_code(void *out, int64_t i, int size, int64_t code)
{
    switch (size) {
    case 1: ((uint8_t *)out)[i] = (uint8_t)code; break;
    case 2: ((uint16_t *)out)[i] = (uint16_t)code; break;
    default: ((uint32_t *)out)[i] = (uint32_t)code; break;
    }
}

/* Bytes per output code: integer formats int8/int16, floats by nbits. */
static int code_size(const lp_format *f)
{
    if (f->kind == LP_INT)
        return f->bits <= 8 ? 1 : 2;
    return f->nbits <= 8 ? 1 : f->nbits <= 16 ? 2 : 4;
}

/* Element i of the input as IEEE bits of the type the core unpacks, after
 * division by the scale in the input's precision.  Returns the input kind
 * the bits are in: LP_F64 or LP_F32 (LP_I64/LP_U64 unscaled stay). */
LP_INLINE int load_bits(int in_type, const void *in, int64_t i,
                        const double *scale, float scale32, uint64_t *bits)
{
    switch (in_type) {
    case LP_F64: {
        double x = ((const double *)in)[i];
        if (scale)
            x = x / *scale;
        *bits = f64_bits(x);
        return LP_F64;
    }
    case LP_F32: {
        float x = ((const float *)in)[i];
        if (scale)
            x = x / scale32;
        *bits = f32_bits(x);
        return LP_F32;
    }
    case LP_F16: {
        uint32_t u = f16_to_f32_bits(((const uint16_t *)in)[i]);
        if (scale)
            u = f32_bits(bits_f32(u) / scale32);
        *bits = u;
        return LP_F32;
    }
    case LP_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)in)[i] << 16;
        if (scale)
            u = f32_bits(bits_f32(u) / scale32);
        *bits = u;
        return LP_F32;
    }
    case LP_I64: {
        int64_t v = ((const int64_t *)in)[i];
        if (scale) {
            *bits = f64_bits((double)v / *scale);
            return LP_F64;
        }
        *bits = (uint64_t)v;
        return LP_I64;
    }
    default: {
        uint64_t v = ((const uint64_t *)in)[i];
        if (scale) {
            *bits = f64_bits((double)v / *scale);
            return LP_F64;
        }
        *bits = v;
        return LP_U64;
    }
    }
}

/* 1. unpack any loaded element, then the core. */
LP_INLINE int64_t round_loaded(const lp_format *f, const lp_opts *o,
                               int kind, uint64_t bits, uint64_t rnd,
                               int *err)
{
    int sign = 0, cls = 0;
    int32_t exp = 0;
    uint64_t sig = 0;
    switch (kind) {
    case LP_F64:
        cls = lp_unpack_bits(bits, 11, 52, &sign, &exp, &sig);
        break;
    case LP_F32:
        cls = lp_unpack_bits(bits, 8, 23, &sign, &exp, &sig);
        break;
    case LP_I64:
        sign = (int64_t)bits < 0;
        sig = sign ? (uint64_t)0 - bits : bits;
        break;
    default:
        sig = bits;
        break;
    }
    return lp_round_any(f, o, cls, sign, exp, sig, rnd, err);
}

/* ---- general path --------------------------------------------------- */

static int encode_general(const lp_format *f, const lp_opts *o, int in_type,
                          const void *in, int64_t n, const double *scale,
                          int64_t index0, void *out, int size)
{
    int err = 0;
    float scale32 = scale ? (float)*scale : 1.0f;
    uint64_t key = lp_mix64(o->seed);
    int sr = o->rounding == LP_SR;
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits;
        int kind = load_bits(in_type, in, i, scale, scale32, &bits);
        uint64_t rnd = sr ? lp_random_keyed(key, index0 + i) : 0;
        store_code(out, i, size, round_loaded(f, o, kind, bits, rnd, &err));
    }
    return err;
}

/* ---- table path --------------------------------------------------------- */

/* Input layout IB exponent bits, MB mantissa bits (float32: 8, 23;
 * float64: 11, 52).  Entry index: sign, exponent slot, top mbits+1
 * mantissa bits, sticky.  Slots: 0 = exponent field 0 (zero, subnormal
 * inputs), 1..hi-lo+1 = fields clamped to [lo, hi], last = all-ones
 * field (inf, NaN).  Fields at or below lo are all below half the
 * smallest subnormal gap; fields at or above hi all overflow, so clamping
 * does not change the result. */
typedef struct {
    int ib, mb_in, mb, lo, hi, slots, tbits;
    uint16_t *entry;   /* code | error flags << 8 */
} lp_table;

LP_INLINE uint32_t table_index(const lp_table *t, uint64_t u)
{
    const int top_shift = t->mb_in - t->mb - 1;
    uint32_t s = (uint32_t)(u >> (t->ib + t->mb_in));
    int ef = (int)((u >> t->mb_in) & (uint64_t)((1 << t->ib) - 1));
    int c = ef < t->lo ? t->lo : ef > t->hi ? t->hi : ef;
    int slot = ef == 0 ? 0 : ef == (1 << t->ib) - 1 ? t->slots - 1
                                                     : c - t->lo + 1;
    uint32_t top = (uint32_t)(u >> top_shift) & ((1u << (t->mb + 1)) - 1);
    uint32_t st = (u & (((uint64_t)1 << top_shift) - 1)) != 0;
    return ((s * (uint32_t)t->slots + (uint32_t)slot) << t->tbits)
           | (top << 1) | st;
}

/* Can the table path round inputs of this layout into f under o? */
static int table_fits(const lp_format *f, const lp_opts *o, int ib)
{
    if (f->kind != LP_FLOAT || f->nbits > 8 || o->rounding == LP_SR)
        return 0;
    /* Input subnormals must all lie below the target's normal range, so
     * that slot 0 rounds at a fixed position (float32: emin >= -126). */
    return f->emin >= 2 - (1 << (ib - 1));
}

static int table_build(lp_table *t, const lp_format *f, const lp_opts *o,
                       int ib, int mb_in)
{
    const int bias_in = (1 << (ib - 1)) - 1;
    t->ib = ib;
    t->mb_in = mb_in;
    t->mb = f->mbits;
    /* lo: fields whose values are below a quarter of the smallest gap. */
    t->lo = f->emin - f->mbits - 2 + bias_in;
    if (t->lo < 1)
        t->lo = 1;
    /* hi: fields of values >= 2^(emax+1), beyond max in every mode. */
    t->hi = f->emax + 1 + bias_in;
    if (t->hi > (1 << ib) - 2)
        t->hi = (1 << ib) - 2;
    t->slots = t->hi - t->lo + 3;
    t->tbits = f->mbits + 2;
    int64_t n = (int64_t)2 * t->slots << t->tbits;
    t->entry = (uint16_t *)malloc((size_t)n * sizeof(uint16_t));
    if (!t->entry)
        return -1;
    for (int64_t k = 0; k < n; k++) {
        int st = (int)(k & 1);
        uint64_t top = (uint64_t)(k >> 1) & ((1u << (t->mb + 1)) - 1);
        int64_t slot = (k >> t->tbits) % t->slots;
        uint64_t s = (uint64_t)((k >> t->tbits) / t->slots);
        uint64_t ef = slot == 0 ? 0
                    : slot == t->slots - 1 ? (uint64_t)((1 << ib) - 1)
                    : (uint64_t)(t->lo + slot - 1);
        uint64_t u = (s << (ib + mb_in)) | (ef << mb_in)
                     | (top << (mb_in - t->mb - 1)) | (uint64_t)st;
        int err = 0;
        int64_t code = round_loaded(f, o, ib == 8 ? LP_F32 : LP_F64, u, 0,
                                    &err);
        t->entry[k] = (uint16_t)((code & 0xFF) | (err << 8));
    }
    return 0;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define LP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LP_CLONES
#endif

LP_CLONES
static int table_run_f32(const lp_table *t, const float *in, int64_t n,
                         const double *scale, uint8_t *out)
{
    uint32_t acc = 0;
    if (scale) {
        float s = (float)*scale;
        for (int64_t i = 0; i < n; i++) {
            uint16_t e = t->entry[table_index(t, f32_bits(in[i] / s))];
            out[i] = (uint8_t)e;
            acc |= e;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            uint16_t e = t->entry[table_index(t, f32_bits(in[i]))];
            out[i] = (uint8_t)e;
            acc |= e;
        }
    }
    return (int)(acc >> 8);
}

static int table_encode(const lp_table *t, int in_type, const void *in,
                        int64_t n, const double *scale, uint8_t *out)
{
    if (in_type == LP_F32)
        return table_run_f32(t, (const float *)in, n, scale, out);
    uint32_t acc = 0;
    float scale32 = scale ? (float)*scale : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits;
        load_bits(in_type, in, i, scale, scale32, &bits);
        uint16_t e = t->entry[table_index(t, bits)];
        out[i] = (uint8_t)e;
        acc |= e;
    }
    return (int)(acc >> 8);
}

/* Minimum elements for which building a table pays off. */
static int64_t table_min_n(const lp_format *f, int ib)
{
    (void)ib;
    return (int64_t)64 << f->mbits;
}

/* ---- shift path: float32 into bfloat16 / tfloat32 / float32 ----------- */

static int shift_fits(const lp_format *f, const lp_opts *o, int in_type)
{
    return f->kind == LP_FLOAT && (in_type == LP_F32 || in_type == LP_BF16)
           && f->ebits == 8 && f->bias == 127 && f->subnormals && f->infs
           && f->nans == LP_NANS_IEEE && f->negzero && f->is_signed
           && o->rounding != LP_SR;
}

/* The core's steps with a constant alignment: exponent range and field
 * widths agree, so 2. align is a shift by k = 23 - mbits, 3. the per-mode
 * increment is added below the kept bits, 4. the carry ripples into the
 * exponent (max + carry = inf code), 5. saturation and flush clamp.
 * bfloat16, RNE: 0x3F808000 (1 + 2^-8, a tie) -> (0x3F808000 + 0x7FFF) >> 16
 * = 0x3F80 (even kept). */
LP_CLONES
static void shift_run(const lp_format *f, const lp_opts *o, const float *in,
                      int64_t n, const double *scale, void *out, int size)
{
    const int k = 23 - f->mbits;
    const uint32_t low = k ? (1u << k) - 1 : 0;
    const uint32_t half = k ? 1u << (k - 1) : 0;
    const uint32_t maxc = (uint32_t)f->max_code;
    const uint32_t nanc = (uint32_t)f->nan_code;
    const uint32_t minnorm = 1u << f->mbits;
    const uint32_t signshift = (uint32_t)(f->nbits - 1);
    const int mode = o->rounding, sat = o->saturate, flush = !o->subnormals;
    const float s = scale ? (float)*scale : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        if (scale)
            x = x / s;
        uint32_t u = f32_bits(x);
        uint32_t sg = u >> 31, a = u & 0x7FFFFFFFu;
        uint32_t rem = a & low, lsb = (a >> k) & 1u, inc;
        switch (mode) {
        case LP_RNE: inc = k ? half - 1 + lsb : 0; break;
        case LP_RNA: inc = half; break;
        case LP_RU: inc = sg ? 0 : low; break;
        case LP_RD: inc = sg ? low : 0; break;
        default: inc = 0; break;   /* RZ, RO */
        }
        uint32_t c = (a + inc) >> k;
        if (mode == LP_RO)
            c |= rem != 0;
        if (sat && c > maxc)
            c = maxc;
        if (flush && c < minnorm)
            c = 0;
        c |= sg << signshift;
        if (a > 0x7F800000u)
            c = nanc;
        if (size == 2)
            ((uint16_t *)out)[i] = (uint16_t)c;
        else
            ((uint32_t *)out)[i] = c;
    }
}

/* ---- F16C path: float32 into float16, nearest-even ---------------------- */

#ifdef LP_HAVE_F16C
__attribute__((target("avx2,f16c")))
static void f16c_run(const lp_opts *o, const float *in, int64_t n,
                     const double *scale, uint16_t *out)
{
    const __m256 s = _mm256_set1_ps(scale ? (float)*scale : 1.0f);
    const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i f32inf = _mm256_set1_epi32(0x7F800000);
    const __m128i nan16 = _mm_set1_epi16(0x7E00);
    const __m128i max16 = _mm_set1_epi16(0x7BFF);
    const __m128i inf16 = _mm_set1_epi16(0x7C00);
    const __m128i minnorm16 = _mm_set1_epi16(0x0400);
    const __m128i mag16 = _mm_set1_epi16(0x7FFF);
    const __m128i sign16 = _mm_set1_epi16((short)0x8000);
    const int sat = o->saturate, flush = !o->subnormals;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(in + i);
        if (scale)
            x = _mm256_div_ps(x, s);
        __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT
                                           | _MM_FROUND_NO_EXC);
        /* NaN inputs: canonical NaN (the hardware keeps payload bits). */
        __m256i a = _mm256_and_si256(_mm256_castps_si256(x), absmask);
        __m256i isnan32 = _mm256_cmpgt_epi32(a, f32inf);
        __m128i isnan = _mm_packs_epi32(_mm256_castsi256_si128(isnan32),
                                        _mm256_extracti128_si256(isnan32, 1));
        __m128i hm = _mm_and_si128(h, mag16);
        __m128i hs = _mm_and_si128(h, sign16);
        if (sat) {
            /* inf (from overflow or an inf input) -> max, sign kept */
            __m128i isinf = _mm_cmpeq_epi16(hm, inf16);
            hm = _mm_blendv_epi8(hm, max16, isinf);
        }
        if (flush) {
            /* unsigned hm < 0x0400: subnormal -> zero of the same sign */
            __m128i sub = _mm_cmpgt_epi16(minnorm16, hm);
            hm = _mm_andnot_si128(sub, hm);
        }
        h = _mm_or_si128(hm, hs);
        h = _mm_blendv_epi8(h, nan16, isnan);
        _mm_storeu_si128((__m128i *)(out + i), h);
    }
    /* tail through the core */
    if (i < n) {
        lp_format f16 = {0};
        f16.kind = LP_FLOAT; f16.ebits = 5; f16.mbits = 10; f16.bias = 15;
        f16.infs = 1; f16.nans = LP_NANS_IEEE; f16.negzero = 1;
        f16.subnormals = 1; f16.is_signed = 1;
        lp_format_init(&f16);
        encode_general(&f16, o, LP_F32, in + i, n - i, scale, 0, out + i, 2);
    }
}

static int f16c_fits(const lp_format *f, const lp_opts *o, int in_type)
{
    return in_type == LP_F32 && f->kind == LP_FLOAT && f->ebits == 5
           && f->mbits == 10 && f->bias == 15 && f->infs && f->is_signed
           && f->nans == LP_NANS_IEEE && f->negzero && f->subnormals
           && o->rounding == LP_RNE && __builtin_cpu_supports("f16c")
           && __builtin_cpu_supports("avx2");
}
#endif

/* ---- entry points ------------------------------------------------------- */

enum { PATH_GENERAL, PATH_TABLE, PATH_SHIFT, PATH_F16C };

/* A path chosen, and its table built, once per call. */
typedef struct {
    int path, size;
    lp_table table;
} lp_encoder;

static void encoder_init(lp_encoder *e, const lp_format *f, const lp_opts *o,
                         int in_type, int64_t n)
{
    int ib = in_type == LP_F64 ? 11 : 8;
    e->size = code_size(f);
    e->path = PATH_GENERAL;
    e->table.entry = NULL;
    if (in_type <= LP_BF16 && table_fits(f, o, ib)
        && n >= table_min_n(f, ib)
        && table_build(&e->table, f, o, ib, ib == 8 ? 23 : 52) == 0)
        e->path = PATH_TABLE;
    else if (shift_fits(f, o, in_type) && in_type == LP_F32)
        e->path = PATH_SHIFT;
#ifdef LP_HAVE_F16C
    else if (f16c_fits(f, o, in_type))
        e->path = PATH_F16C;
#endif
}

static int encoder_run(const lp_encoder *e, const lp_format *f,
                       const lp_opts *o, int in_type, const void *in,
                       int64_t n, const double *scale, int64_t index0,
                       void *out)
{
    switch (e->path) {
    case PATH_TABLE:
        return table_encode(&e->table, in_type, in, n, scale, (uint8_t *)out);
    case PATH_SHIFT:
        shift_run(f, o, (const float *)in, n, scale, out, e->size);
        return 0;
#ifdef LP_HAVE_F16C
    case PATH_F16C:
        f16c_run(o, (const float *)in, n, scale, (uint16_t *)out);
        return 0;
#endif
    default:
        return encode_general(f, o, in_type, in, n, scale, index0, out,
                              e->size);
    }
}

int lp_encode(const lp_format *f, const lp_opts *o, int in_type,
              const void *in, int64_t n, const double *scale, int64_t index0,
              void *out)
{
    if (n <= 0)
        return 0;
    lp_encoder e;
    encoder_init(&e, f, o, in_type, n);
    int err = encoder_run(&e, f, o, in_type, in, n, scale, index0, out);
    free(e.table.entry);
    return err;
}

int lp_encode_core(const lp_format *f, const lp_opts *o, int in_type,
                   const void *in, int64_t n, const double *scale,
                   int64_t index0, void *out)
{
    int size = code_size(f);
    return n > 0 ? encode_general(f, o, in_type, in, n, scale, index0, out,
                                  size)
                 : 0;
}

/* ---- fake quantization ---------------------------------------------- */

int lp_quantize(const lp_format *f, const lp_opts *o, int in_type,
                const void *in, int64_t n, const double *scale,
                int64_t index0, void *out)
{
    /* Encode a block into a small code buffer (in cache), then decode it
     * with the product rounded once to the element type. */
    enum { BLOCK = 4096 };
    uint32_t codes[BLOCK];
    int esize = in_type == LP_F64 ? 8 : 4;
    int out_type = in_type == LP_F64 ? LP_F64 : LP_F32;
    int64_t zp = f->kind == LP_INT ? o->zero_point : 0;
    int err = 0;
    if (n <= 0)
        return 0;
    lp_encoder e;
    encoder_init(&e, f, o, in_type, n);
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t m = n - start < BLOCK ? n - start : BLOCK;
        err |= encoder_run(&e, f, o, in_type,
                           (const char *)in + start * esize, m, scale,
                           index0 + start, codes);
        lp_decode(f, codes, m, out_type, scale, zp,
                  (char *)out + start * esize);
    }
    free(e.table.entry);
    return err;
}
