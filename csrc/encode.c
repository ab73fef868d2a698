/* encode.c -- array encode and fake-quantize kernels.
 *
 * Three paths, all giving the bits of the rounding core (round.h):
 *  - general: unpack each element (any input type) and call lp_round_any;
 *  - float32: float32, float16 and bfloat16 inputs through lp_round_f32,
 *             the core's steps specialised to a 32-bit significand and
 *             written without branches, one vectorised loop per mode;
 *             stochastic rounding with the caller's random words
 *             (lp_opts.random) has a loop of its own (run32_rw);
 *  - F16C:    float32 into float16, nearest-even, with the hardware
 *             conversion and the format's policies applied after it.
 * Tests compare every path with the general one and with exact references.
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
        *bits = lp_f64_bits(x);
        return LP_F64;
    }
    case LP_F32: {
        float x = ((const float *)in)[i];
        if (scale)
            x = x / scale32;
        *bits = lp_f32_bits(x);
        return LP_F32;
    }
    case LP_F16: {
        uint32_t u = lp_f16_to_f32(((const uint16_t *)in)[i]);
        if (scale)
            u = lp_f32_bits(lp_bits_f32(u) / scale32);
        *bits = u;
        return LP_F32;
    }
    case LP_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)in)[i] << 16;
        if (scale)
            u = lp_f32_bits(lp_bits_f32(u) / scale32);
        *bits = u;
        return LP_F32;
    }
    case LP_I64: {
        int64_t v = ((const int64_t *)in)[i];
        if (scale) {
            *bits = lp_f64_bits((double)v / *scale);
            return LP_F64;
        }
        *bits = (uint64_t)v;
        return LP_I64;
    }
    default: {
        uint64_t v = ((const uint64_t *)in)[i];
        if (scale) {
            *bits = lp_f64_bits((double)v / *scale);
            return LP_F64;
        }
        *bits = v;
        return LP_U64;
    }
    }
}

/* 1. unpack any loaded element, then the core. */
/* The rounding core's (sign, exp, sig) of a loaded value; returns its
 * class. */
LP_INLINE int unpack_loaded(int kind, uint64_t bits, int *sign, int32_t *exp,
                            uint64_t *sig)
{
    switch (kind) {
    case LP_F64:
        return lp_unpack_bits(bits, 11, 52, sign, exp, sig);
    case LP_F32:
        return lp_unpack_bits(bits, 8, 23, sign, exp, sig);
    case LP_I64:
        *sign = (int64_t)bits < 0;
        *sig = *sign ? (uint64_t)0 - bits : bits;
        return 0;
    default:
        *sig = bits;
        return 0;
    }
}

LP_INLINE int64_t round_loaded(const lp_format *f, const lp_opts *o,
                               int kind, uint64_t bits, uint64_t rnd,
                               int *err)
{
    int sign = 0;
    int32_t exp = 0;
    uint64_t sig = 0;
    int cls = unpack_loaded(kind, bits, &sign, &exp, &sig);
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
        uint64_t rnd = sr ? lp_random_at(o, key, index0 + i) : 0;
        store_code(out, i, size, round_loaded(f, o, kind, bits, rnd, &err));
    }
    return err;
}

/* ---- float32 path: float32, float16 and bfloat16 inputs -------------- */

/* The float32 path works in blocks that stay in L1: widen (and divide by
 * the scale), round, narrow; each step a loop without control flow. */
enum { BLOCK32 = 1024 };

LP_INLINE void widen32(int in_type, const void *in, int64_t n,
                       const double *scale, uint32_t *u)
{
    if (in_type == LP_F32)
        memcpy(u, in, (size_t)n * 4);
    else if (in_type == LP_BF16)
        for (int64_t i = 0; i < n; i++)
            u[i] = (uint32_t)((const uint16_t *)in)[i] << 16;
    else
        for (int64_t i = 0; i < n; i++)
            u[i] = lp_f16_to_f32(((const uint16_t *)in)[i]);
    if (scale) {
        float s = (float)*scale;
        float *x = (float *)u;
        for (int64_t i = 0; i < n; i++)
            x[i] = x[i] / s;
    }
}

LP_INLINE uint32_t round32_block(const lp_k32 *k, int mode,
                                 const uint32_t *src, uint32_t *dst,
                                 int64_t n, uint64_t key, int64_t index0)
{
    const lp_k32 kk = *k;     /* a local copy: dst cannot alias it */
    uint32_t err = 0;
    /* the element index in two words (n <= BLOCK32), so that the
     * generator stays in 32-bit lanes */
    const uint32_t lo0 = (uint32_t)index0;
    const uint32_t hi0 = (uint32_t)((uint64_t)index0 >> 32);
    const uint32_t key_hi = (uint32_t)(key >> 32), key_lo = (uint32_t)key;
    const uint32_t m = (uint32_t)n;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t lo = lo0 + i, hi = hi0 + (uint32_t)(lo < lo0);
        uint32_t r_hi = mode == LP_SR ? lp_hash32(key_hi, lo, hi) : 0;
        uint32_t r_lo = mode == LP_SR ? lp_hash32(key_lo, lo, hi) : 0;
        dst[i] = lp_round_f32(&kk, src[i], mode, r_hi, r_lo, &err);
    }
    return err;
}

/* The shift path, for LP_LAYOUT_TRUNC32 formats (bfloat16, tfloat32):
 * the core's steps specialised to a target whose codes are the top bits
 * of float32's.  1. unpack is a mask (the sign apart), 2. align a fixed
 * shift by sh = 23 - mbits (no binade to choose, float32 subnormals are
 * the target's), 3. lp_round_addend for the sh dropped bits, added below
 * the kept bits (its addend form: no compare), 4. pack is the shift,
 * which keeps the carry: it ripples into the exponent (max + 1 = the inf
 * code), 5. saturation and flush clamp.  bfloat16, nearest-even:
 * 0x3F808000 (1 + 2^-8, a tie), c = 0x3F80 even: (0x3F808000 + 0x7FFF)
 * >> 16 = 0x3F80; 0x3F818000 (odd): (0x3F818000 + 0x8000) >> 16 = 0x3F82. */
LP_INLINE void shift32_block(const lp_k32 *k, int mode, const uint32_t *src,
                             uint32_t *dst, int64_t n, uint64_t key,
                             int64_t index0)
{
    const uint32_t sh = 23 - k->mb, low = (1u << sh) - 1;
    const uint32_t maxc = k->max_code, nanc = k->nan_res;
    const uint32_t minn = k->sub_ok ? 0 : k->min_norm;
    const uint32_t sat = k->saturate, mask_hi = k->sr_mask_hi;
    const uint32_t lo0 = (uint32_t)index0;
    const uint32_t hi0 = (uint32_t)((uint64_t)index0 >> 32);
    const uint32_t key_hi = (uint32_t)(key >> 32);
    const uint32_t m = (uint32_t)n;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t u = src[i], s = u >> 31, a = u & 0x7FFFFFFFu;
        uint32_t odd = (a >> sh) & 1u;
        uint32_t sr_up = 0;
        if (mode == LP_SR) {
            /* the dropped bits fill d's high word (d_lo = 0), so r's low
             * word never decides: lp_sr_less on the high words */
            uint32_t lo = lo0 + i, hi = hi0 + (uint32_t)(lo < lo0);
            sr_up = lp_sr_less(lp_hash32(key_hi, lo, hi), 0, a << (32 - sh),
                               0, mask_hi, 0);
        }
        /* a + addend <= 0x7FFFFFFF + low: no carry into the sign */
        uint32_t c = (a + lp_round_addend(mode, s, odd, odd, sr_up, low)) >> sh;
        /* saturate: overflow -> max; an infinite input (a = 0x7F800000)
         * too under LP_SAT_FINITE, kept under LP_SAT_PROPAGATE */
        c = sat && c > maxc && (sat == LP_SAT_FINITE || a != 0x7F800000u)
            ? maxc : c;
        c = c < minn ? 0 : c;
        c |= s << k->sign_shift;
        dst[i] = a > 0x7F800000u ? nanc : c;
    }
}

LP_INLINE void narrow32(const uint32_t *c, int64_t n, void *out, int size)
{
    if (size == 1)
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)out)[i] = (uint8_t)c[i];
    else if (size == 2)
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)out)[i] = (uint16_t)c[i];
    else
        memcpy(out, c, (size_t)n * 4);
}

/* All blocks; mode is a constant where it is inlined. */
LP_INLINE uint32_t run32_mode(const lp_k32 *k, int shift, int mode,
                              int in_type, const void *in, int64_t n,
                              const double *scale, void *out, int size,
                              uint64_t key, int64_t index0)
{
    uint32_t buf[BLOCK32];
    uint32_t err = 0;
    const int isize = in_type == LP_F32 ? 4 : 2;
    const int direct = in_type == LP_F32 && !scale;
    for (int64_t start = 0; start < n; start += BLOCK32) {
        int64_t m = n - start < BLOCK32 ? n - start : BLOCK32;
        const uint32_t *src = buf;
        if (direct)
            src = (const uint32_t *)in + start;
        else
            widen32(in_type, (const char *)in + start * isize, m, scale,
                    buf);
        if (shift)
            shift32_block(k, mode, src, buf, m, key, index0 + start);
        else
            err |= round32_block(k, mode, src, buf, m, key, index0 + start);
        narrow32(buf, m, (char *)out + start * size, size);
    }
    return err;
}


/* The float32 core over an array: a loop per mode. */
LP_CLONES
static int run32(const lp_k32 *k, int shift, const lp_opts *o,
                 int in_type, const void *in, int64_t n, const double *scale,
                 void *out, int size, int64_t index0)
{
    const uint64_t key = lp_mix64(o->seed);
    switch (o->rounding) {
    case LP_RNE:
        return (int)run32_mode(k, shift, LP_RNE, in_type, in, n, scale, out, size,
                               key, index0);
    case LP_RNA:
        return (int)run32_mode(k, shift, LP_RNA, in_type, in, n, scale, out, size,
                               key, index0);
    case LP_RZ:
        return (int)run32_mode(k, shift, LP_RZ, in_type, in, n, scale, out, size,
                               key, index0);
    case LP_RU:
        return (int)run32_mode(k, shift, LP_RU, in_type, in, n, scale, out, size,
                               key, index0);
    case LP_RD:
        return (int)run32_mode(k, shift, LP_RD, in_type, in, n, scale, out, size,
                               key, index0);
    case LP_RO:
        return (int)run32_mode(k, shift, LP_RO, in_type, in, n, scale, out, size,
                               key, index0);
    default:
        return (int)run32_mode(k, shift, LP_SR, in_type, in, n, scale, out, size,
                               key, index0);
    }
}

/* The float32 path for stochastic rounding with the caller's random words
 * (lp_opts.random): round32_block with each element's word in place of
 * the hash. */
LP_INLINE uint32_t round32_block_rw(const lp_k32 *k, const uint32_t *src,
                                    uint32_t *dst, int64_t n,
                                    const uint64_t *rw, int rbits)
{
    const lp_k32 kk = *k;
    uint32_t err = 0;
    const uint32_t m = (uint32_t)n;
    for (uint32_t i = 0; i < m; i++) {
        uint64_t r = lp_random_given(rw[i], rbits);
        dst[i] = lp_round_f32(&kk, src[i], LP_SR, (uint32_t)(r >> 32),
                              (uint32_t)r, &err);
    }
    return err;
}

LP_CLONES
static int run32_rw(const lp_k32 *k, const lp_opts *o, int in_type,
                    const void *in, int64_t n, const double *scale,
                    void *out, int size, int64_t index0)
{
    uint32_t buf[BLOCK32];
    uint32_t err = 0;
    const int isize = in_type == LP_F32 ? 4 : 2;
    const int direct = in_type == LP_F32 && !scale;
    for (int64_t start = 0; start < n; start += BLOCK32) {
        int64_t m = n - start < BLOCK32 ? n - start : BLOCK32;
        const uint32_t *src = buf;
        if (direct)
            src = (const uint32_t *)in + start;
        else
            widen32(in_type, (const char *)in + start * isize, m, scale,
                    buf);
        err |= round32_block_rw(k, src, buf, m, o->random + index0 + start,
                                o->rbits);
        narrow32(buf, m, (char *)out + start * size, size);
    }
    return (int)err;
}

/* ---- F16C path: float32 into float16, nearest-even ---------------------- */

#ifdef LP_HAVE_F16C
__attribute__((target("avx2,f16c")))
static void f16c_run(const lp_k32 *k, const lp_opts *o, const float *in,
                     int64_t n, const double *scale, uint16_t *out)
{
    const __m256 s = _mm256_set1_ps(scale ? (float)*scale : 1.0f);
    const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i f32inf = _mm256_set1_epi32(0x7F800000);
    const __m128i nan16 = _mm_set1_epi16(0x7E00);
    /* 5. the policies of lp_k32_init: an inf out of the hardware (from
     * overflow or an inf input) becomes k->over[0] (max under saturate);
     * subnormal results flush unless kept */
    const __m128i over16 = _mm_set1_epi16((short)k->over[0]);
    const __m128i inf16 = _mm_set1_epi16(0x7C00);
    const __m128i minnorm16 = _mm_set1_epi16(0x0400);
    const __m128i mag16 = _mm_set1_epi16(0x7FFF);
    const __m128i sign16 = _mm_set1_epi16((short)0x8000);
    const int sat = k->over[0] != 0x7C00u, flush = !k->sub_ok;
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
            hm = _mm_blendv_epi8(hm, over16, isinf);
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
        lp_format f16;
        lp_format_ieee(&f16, 5, 10);
        encode_general(&f16, o, LP_F32, in + i, n - i, scale, 0, out + i, 2);
    }
}

/* (LP_SAT_PROPAGATE keeps infinite inputs but not overflows, which the
 * hardware does not tell apart: the float32 path serves it.) */
static int f16c_fits(const lp_format *f, const lp_opts *o, int in_type)
{
    return in_type == LP_F32 && f->layout == LP_LAYOUT_BINARY16
           && o->rounding == LP_RNE && o->saturate != LP_SAT_PROPAGATE
           && __builtin_cpu_supports("f16c")
           && __builtin_cpu_supports("avx2");
}
#endif

/* ---- entry points ------------------------------------------------------- */

enum { PATH_GENERAL, PATH_F32, PATH_SHIFT, PATH_F16C, PATH_F32_RW };

/* The path for a call, chosen once. */
typedef struct {
    int path, size;
    lp_k32 k;
} lp_encoder;

static void encoder_init(lp_encoder *e, const lp_format *f, const lp_opts *o,
                         int in_type)
{
    e->size = code_size(f);
    e->path = PATH_GENERAL;
    if (o->rounding == LP_SR && o->random) {
        /* the caller's random words: the float32 core (not the shift
         * path, which hashes its bits inline), else the general path */
        if ((in_type == LP_F32 || in_type == LP_F16 || in_type == LP_BF16)
            && f->layout != LP_LAYOUT_TRUNC32 && lp_k32_init(&e->k, f, o))
            e->path = PATH_F32_RW;
        return;
    }
#ifdef LP_HAVE_F16C
    if (f16c_fits(f, o, in_type) && lp_k32_init(&e->k, f, o)) {
        e->path = PATH_F16C;
        return;
    }
#endif
    if ((in_type == LP_F32 || in_type == LP_F16 || in_type == LP_BF16)
        && lp_k32_init(&e->k, f, o))
        e->path = f->layout == LP_LAYOUT_TRUNC32 ? PATH_SHIFT : PATH_F32;
}

static int encoder_run(const lp_encoder *e, const lp_format *f,
                       const lp_opts *o, int in_type, const void *in,
                       int64_t n, const double *scale, int64_t index0,
                       void *out)
{
    switch (e->path) {
    case PATH_F32_RW:
        return run32_rw(&e->k, o, in_type, in, n, scale, out, e->size,
                        index0);
    case PATH_F32:
    case PATH_SHIFT:
        return run32(&e->k, e->path == PATH_SHIFT, o, in_type, in, n, scale,
                     out, e->size, index0);
#ifdef LP_HAVE_F16C
    case PATH_F16C:
        f16c_run(&e->k, o, (const float *)in, n, scale, (uint16_t *)out);
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
    encoder_init(&e, f, o, in_type);
    return encoder_run(&e, f, o, in_type, in, n, scale, index0, out);
}

/* Bytes per input element of an encode kernel. */
static int in_size(int in_type)
{
    return in_type == LP_F16 || in_type == LP_BF16 ? 2
         : in_type == LP_F32 ? 4 : 8;
}

/* The run of elements [i, i + *m) of an index map that starts at local
 * index l (at most n elements): element l has flat index starts[l / run]
 * + l % run, the run ends at the next multiple of run.  Chunk (2, 3) at
 * (0, 1) of a 4 x 5 array: run 3, starts {1, 6}; local 4 is flat 6 + 1. */
LP_INLINE int64_t map_run(int64_t l, int64_t n, int64_t run,
                          const int64_t *starts, int64_t *m)
{
    int64_t q = l / run, r = l % run;
    *m = run - r < n ? run - r : n;
    return starts[q] + r;
}

int lp_encode_map(const lp_format *f, const lp_opts *o, int in_type,
                  const void *in, int64_t n, const double *scale,
                  int64_t index0, int64_t run, const int64_t *starts,
                  void *out)
{
    if (n <= 0)
        return 0;
    if (!starts)
        return lp_encode(f, o, in_type, in, n, scale, index0, out);
    lp_encoder e;
    encoder_init(&e, f, o, in_type);
    const int isz = in_size(in_type);
    int err = 0;
    for (int64_t i = 0, m; i < n; i += m) {
        int64_t g = map_run(index0 + i, n - i, run, starts, &m);
        err |= encoder_run(&e, f, o, in_type, (const char *)in + i * isz, m,
                           scale, g, (char *)out + i * e.size);
    }
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

int lp_encode_flags(const lp_format *f, const lp_opts *o, int in_type,
                    const void *in, int64_t n, const double *scale,
                    int64_t index0, void *out, uint8_t *flags)
{
    int err = 0, size = code_size(f);
    float scale32 = scale ? (float)*scale : 1.0f;
    uint64_t key = lp_mix64(o->seed);
    int sr = o->rounding == LP_SR;
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits;
        int kind = load_bits(in_type, in, i, scale, scale32, &bits);
        uint64_t rnd = sr ? lp_random_keyed(key, index0 + i) : 0;
        int sign = 0, fl = 0;
        int32_t exp = 0;
        uint64_t sig = 0;
        int cls = unpack_loaded(kind, bits, &sign, &exp, &sig);
        store_code(out, i, size, lp_round_any_flags(f, o, cls, sign, exp,
                                                    sig, rnd, &err, &fl));
        flags[i] = (uint8_t)fl;
    }
    return err;
}

/* ---- fake quantization ---------------------------------------------- */

int lp_quantize(const lp_format *f, const lp_opts *o, int in_type,
                const void *in, int64_t n, const double *scale,
                int64_t index0, void *out)
{
    return lp_quantize_map(f, o, in_type, in, n, scale, index0, 0, NULL,
                           out);
}

int lp_quantize_map(const lp_format *f, const lp_opts *o, int in_type,
                    const void *in, int64_t n, const double *scale,
                    int64_t index0, int64_t run, const int64_t *starts,
                    void *out)
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
    encoder_init(&e, f, o, in_type);
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t m = n - start < BLOCK ? n - start : BLOCK;
        const char *src = (const char *)in + start * esize;
        if (!starts) {
            err |= encoder_run(&e, f, o, in_type, src, m, scale,
                               index0 + start, codes);
        } else {
            const int csz = e.size;
            for (int64_t i = 0, r; i < m; i += r) {
                int64_t g = map_run(index0 + start + i, m - i, run, starts,
                                    &r);
                err |= encoder_run(&e, f, o, in_type, src + i * esize, r,
                                   scale, g, (char *)codes + i * csz);
            }
        }
        lp_decode(f, codes, m, out_type, scale, zp,
                  (char *)out + start * esize);
    }
    return err;
}
