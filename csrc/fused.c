/* fused.c -- the fused (tensor-core) accumulation rule of API.md section 7.
 *
 * One step takes `group` consecutive exact products a_k * b_k and the
 * running accumulator as its terms.  Each non-zero term has an alignment
 * exponent (a product's is ea + eb, each max(floor(log2|x|), emin) of its
 * operand, given by the caller; the accumulator's is floor(log2|acc|) or
 * the accumulator format's emin when subnormal); E is the largest.  Every
 * term is truncated toward zero to a multiple of 2^(E - F), the truncated
 * terms are summed exactly, and the sum is rounded once to out_bits
 * significant bits in the accumulator's exponent range (subnormals kept,
 * overflow to inf).  Steps chain in k order; with promote_every the chain
 * restarts from +0 every that many k and each partial is added into a
 * total with round-to-nearest-even in the total's format.  NaN operands,
 * inf * 0 and inf - inf give NaN; an exactly zero sum is +0.
 *
 * Two paths give the same bits: a scalar one (every case: __int128 sums,
 * inf and NaN) and a vector one over 8 output columns at a time for finite
 * operands whose truncated sums fit 53 bits, compiled for AVX-512, AVX2
 * and plain x86-64; outputs the vector path cannot settle (non-finite
 * operands or results) are recomputed by the scalar one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lowprec.h"
#include "gemm.h"

typedef __int128 i128;

/* Exponents of zero terms: far below any real term, so they never set E. */
#define NO_TERM (-4000)

static double pow2(int e)
{
    return ldexp(1.0, e);
}

static int ilogb_pos(double x)
{
    int e;
    frexp(x, &e);
    return e - 1;
}

/* Round |v| = mag * 2^q (mag > 0) to `bits` significant bits with lsb at
 * least 2^qmin, in mode; sign s.  Returns the value (inf on overflow past
 * 2^(emax+1)). */
static double round_mag(unsigned __int128 mag, int q, int s, int bits,
                        int emin, int emax, int mode)
{
    int n = 128 - (mag >> 64 ? __builtin_clzll((uint64_t)(mag >> 64))
                             : 64 + __builtin_clzll((uint64_t)mag));
    int top = q + n - 1;
    int qmin = emin - bits + 1;
    int L = top - bits + 1;
    if (L < qmin)
        L = qmin;
    unsigned __int128 y = mag;
    if (L > q) {
        int sh = L - q;
        unsigned __int128 rem = 0, half = 0;
        if (sh >= 128) {
            y = 0;
            rem = mag;
            half = sh == 128 ? (unsigned __int128)1 << 127 : 0;
            /* sh > 128: |v| < 2^(L-128) < half an lsb: rem below half */
            if (sh > 128)
                half = ~(unsigned __int128)0;
        } else {
            y = mag >> sh;
            rem = mag & ((((unsigned __int128)1) << sh) - 1);
            half = ((unsigned __int128)1) << (sh - 1);
        }
        int up = 0;
        switch (mode) {
        case LP_RNE: up = rem > half || (rem == half && (y & 1)); break;
        case LP_RNA: up = rem >= half && rem; break;
        case LP_RU: up = rem && !s; break;
        case LP_RD: up = rem && s; break;
        case LP_RO: if (rem) y |= 1; break;
        default: break;                                 /* LP_RZ */
        }
        y += up;
        q = L;
    }
    /* y < 2^(bits+1) <= 2^54: exact in double */
    double r = ldexp((double)(uint64_t)y, q);
    if (r >= pow2(emax + 1))
        r = INFINITY;
    /* a sum that rounds to zero is +0, as an exactly zero one */
    return s && r != 0 ? -r : r;
}

/* Round a double v exactly representable (the sum of two format values)
 * to nearest even in (bits, emin, emax). */
static double round_double(double v, int bits, int emin, int emax, int mode)
{
    if (v == 0 || isnan(v) || isinf(v))
        return v;
    int s = v < 0;
    double a = fabs(v);
    int e = ilogb_pos(a);
    /* a = m * 2^(e-52), m a 53-bit integer */
    uint64_t m = (uint64_t)ldexp(a, 52 - e);
    return round_mag(m, e - 52, s, bits, emin, emax, mode);
}

/* ---- the scalar path: any finite or non-finite operands --------------- */

/* One step over products p[0..g) (exact doubles) with alignment exponents
 * pe[], on accumulator acc.  Returns the new accumulator value. */
static double step_scalar(const lp_fused *m, const double *av, const int32_t *ae,
                          const double *bv, const int32_t *be, int64_t g,
                          double acc)
{
    /* specials first */
    int nan = isnan(acc), pinf = isinf(acc) && acc > 0,
        ninf = isinf(acc) && acc < 0;
    for (int64_t t = 0; t < g; t++) {
        double x = av[t], y = bv[t];
        if (isnan(x) || isnan(y)) { nan = 1; continue; }
        if (isinf(x) || isinf(y)) {
            if (x == 0 || y == 0) { nan = 1; continue; }
            if ((x < 0) != (y < 0)) ninf = 1; else pinf = 1;
        }
    }
    if (nan || (pinf && ninf))
        return NAN;
    if (pinf)
        return INFINITY;
    if (ninf)
        return -INFINITY;
    int E = NO_TERM;
    int eacc = NO_TERM;
    if (acc != 0) {
        eacc = ilogb_pos(fabs(acc));
        if (eacc < m->acc_emin)
            eacc = m->acc_emin;
        E = eacc;
    }
    for (int64_t t = 0; t < g; t++)
        if (av[t] != 0 && bv[t] != 0 && ae[t] + be[t] > E)
            E = ae[t] + be[t];
    if (E == NO_TERM)
        return 0.0;
    int q = E - m->align_bits;
    i128 S = 0;
    if (acc != 0)
        S += (i128)trunc(ldexp(acc, -q));
    for (int64_t t = 0; t < g; t++) {
        double p = av[t] * bv[t];          /* exact (checked by the caller) */
        if (p != 0)
            S += (i128)trunc(ldexp(p, -q));
    }
    if (S == 0)
        return 0.0;
    int s = S < 0;
    unsigned __int128 mag = s ? (unsigned __int128)(-S) : (unsigned __int128)S;
    return round_mag(mag, q, s, m->out_bits, m->acc_emin, m->acc_emax,
                     m->out_rounding);
}

static double add_total(const lp_fused *m, double total, double part)
{
    if (m->total_bits == 24) {
        float r = (float)total + (float)part;  /* float32 RNE addition */
        return r;
    }
    /* the sum of two values of a format of <= 24 bits and a small range
     * is exact in double, so one rounding */
    return round_double(total + part, m->total_bits, m->total_emin,
                        m->total_emax, LP_RNE);
}

/* One output: the whole chain over k in [k0, k1). */
static double dot_scalar(const lp_fused *m, const double *av,
                         const int32_t *ae, const double *bv,
                         const int32_t *be, int64_t bstride, int64_t k0,
                         int64_t k1, double c, int has_c, double *pb,
                         int32_t *peb)
{
    int64_t g = m->group, P = m->promote_every;
    double acc = 0.0, total = 0.0;
    int promote = P > 0;
    if (has_c) {
        if (promote)
            total = c;
        else
            acc = c;
    }
    for (int64_t kk = k0; kk < k1; kk += g) {
        int64_t n = k1 - kk < g ? k1 - kk : g;
        for (int64_t t = 0; t < n; t++) {
            pb[t] = bv[(kk + t) * bstride];
            peb[t] = be[(kk + t) * bstride];
        }
        acc = step_scalar(m, av + kk, ae + kk, pb, peb, n, acc);
        if (promote && ((kk + n - k0) % P == 0 || kk + n >= k1)) {
            total = add_total(m, total, acc);
            acc = 0.0;
        }
    }
    return promote ? total : acc;
}

/* ---- the vector path --------------------------------------------------- */

/* Lanes: JW output columns per tile.  The "wide" tile keeps products and
 * sums in double / int64 lanes; the "narrow" one (products exact in
 * float32, truncated sums below 2^24) in float / int32 lanes, two to a
 * double lane's width.  Both end each step in the same double rounding
 * stage. */
enum { JW = 16 };

typedef double v8d __attribute__((vector_size(64)));
typedef int64_t v8l __attribute__((vector_size(64)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

typedef struct {
    int64_t F, qmin, emin, mode, bits, P;
    double big;
} tile_par;

#define SEL(m, a, b) (((a) & (m)) | ((b) & ~(m)))

#define FUSED_KERNELS(SFX)                                                    \
/* One step's rounding: r = S * 2^(E - F) exact (double lanes); returns the  \
 * result rounded to bits in the range, ORs overflow into *bad. */           \
static inline __attribute__((always_inline)) v8d round8_##SFX(              \
    const tile_par *t, v8d r, v8l *bad)                                       \
{                                                                             \
    v8l rb = (v8l)r;                                                          \
    v8l re = ((rb >> 52) & 0x7ff) - 1023;                                     \
    v8l L = re - (t->bits - 1);                                               \
    v8l qm = (v8l){0} + t->qmin;                                              \
    L = SEL(L < qm, qm, L);                                                   \
    v8d sc = (v8d)((1023 - L) << 52);                                         \
    v8d scb = (v8d)((1023 + L) << 52);                                        \
    v8d y = r * sc;                                                           \
    v8l ti = __builtin_convertvector(y, v8l);                                 \
    v8d fr = y - __builtin_convertvector(ti, v8d);                            \
    v8l neg = y < 0;                                                          \
    v8l sgn = SEL(neg, (v8l){0} - 1, (v8l){0} + 1);                           \
    v8d half = (v8d){0} + 0.5;                                                \
    v8d afr = (v8d)((v8l)fr & 0x7fffffffffffffffLL);                          \
    v8l inc;                                                                  \
    switch (t->mode) {                                                        \
    case LP_RNE:                                                              \
        inc = (afr > half) | ((afr == half) & ((ti & 1) != 0));               \
        break;                                                                \
    case LP_RNA: inc = afr >= half; break;                                    \
    case LP_RU: inc = fr > 0; break;                                          \
    case LP_RD: inc = fr < 0; break;                                          \
    case LP_RO: inc = (afr > 0) & ((ti & 1) == 0); break;                     \
    default: inc = (v8l){0}; break;                                           \
    }                                                                         \
    ti += sgn & inc;                                                          \
    r = __builtin_convertvector(ti, v8d) * scb;                               \
    v8d ar = (v8d)((v8l)r & 0x7fffffffffffffffLL);                            \
    *bad |= ar >= ((v8d){0} + t->big);                                        \
    return r + 0.0;     /* +0 for an exactly zero sum */                      \
}                                                                             \
                                                                              \
/* The accumulator term of 8 lanes: its exponent (NO_TERM for 0) */          \
static inline __attribute__((always_inline)) v8l accexp_##SFX(              \
    const tile_par *t, v8d acc)                                               \
{                                                                             \
    v8l ab = (v8l)acc;                                                        \
    v8l ae = ((ab >> 52) & 0x7ff) - 1023;                                     \
    v8l em = (v8l){0} + t->emin;                                              \
    ae = SEL(ae < em, em, ae);                                                \
    v8l zero = (ab & 0x7fffffffffffffffLL) == 0;                              \
    return SEL(zero, (v8l){0} + NO_TERM, ae);                                 \
}                                                                             \
                                                                              \
static void tile_wide_##SFX(const lp_fused *m, const tile_par *t,            \
                            const double *av, const int32_t *ae,              \
                            const double *bp, const int32_t *bep,             \
                            int64_t k0, int64_t k1, const double *cin,        \
                            double *res, int64_t *bad)                        \
{                                                                             \
    const int64_t g = m->group, P = t->P, F = t->F;                           \
    for (int h = 0; h < JW / 8; h++) {                                        \
        v8d acc = (v8d){0}, total = (v8d){0};                                 \
        v8l badm = (v8l){0};                                                  \
        if (cin) {                                                            \
            v8d c;                                                            \
            memcpy(&c, cin + 8 * h, sizeof c);                                \
            if (P > 0) total = c; else acc = c;                               \
        }                                                                     \
        for (int64_t kk = k0; kk < k1; kk += g) {                             \
            int64_t kend = kk + g < k1 ? kk + g : k1;                         \
            v8l E = accexp_##SFX(t, acc);                                     \
            for (int64_t u = kk; u < kend; u++) {                             \
                v8l pe;                                                       \
                int32_t tmp[8];                                               \
                memcpy(tmp, bep + (u - k0) * JW + 8 * h, sizeof tmp);         \
                for (int l = 0; l < 8; l++)                                   \
                    pe[l] = (int64_t)tmp[l] + ae[u];                          \
                E = SEL(pe > E, pe, E);                                       \
            }                                                                 \
            v8l lo = (v8l){0} - 900;                                          \
            E = SEL(E < lo, lo, E);                                           \
            v8d s = (v8d)((1023 + F - E) << 52);                              \
            v8d sinv = (v8d)((1023 - F + E) << 52);                           \
            v8l S = __builtin_convertvector(acc * s, v8l);                    \
            for (int64_t u = kk; u < kend; u++) {                             \
                v8d bv;                                                       \
                memcpy(&bv, bp + (u - k0) * JW + 8 * h, sizeof bv);           \
                S += __builtin_convertvector(bv * av[u] * s, v8l);            \
            }                                                                 \
            acc = round8_##SFX(t, __builtin_convertvector(S, v8d) * sinv,     \
                               &badm);                                        \
            if (P > 0 && ((kend - k0) % P == 0 || kend >= k1)) {              \
                for (int l = 0; l < 8; l++)                                   \
                    total[l] = add_total(m, total[l], acc[l]);                \
                acc = (v8d){0};                                               \
            }                                                                 \
        }                                                                     \
        for (int l = 0; l < 8; l++) {                                         \
            res[8 * h + l] = P > 0 ? total[l] : acc[l];                       \
            bad[8 * h + l] = badm[l] != 0;                                    \
        }                                                                     \
    }                                                                         \
}                                                                             \
                                                                              \
static void tile_narrow_##SFX(const lp_fused *m, const tile_par *t,          \
                              const double *av, const int32_t *ae,            \
                              const float *bp, const int32_t *bep,            \
                              int64_t k0, int64_t k1, const double *cin,      \
                              double *res, int64_t *bad)                      \
{                                                                             \
    const int64_t g = m->group, P = t->P, F = t->F;                           \
    v8d acc[2] = {{0}, {0}}, total[2] = {{0}, {0}};                           \
    v8l badm[2] = {{0}, {0}};                                                 \
    if (cin) {                                                                \
        for (int h = 0; h < 2; h++) {                                         \
            v8d c;                                                            \
            memcpy(&c, cin + 8 * h, sizeof c);                                \
            if (P > 0) total[h] = c; else acc[h] = c;                         \
        }                                                                     \
    }                                                                         \
    const v16i lo = (v16i){0} + (int32_t)(F - 127);                           \
    for (int64_t kk = k0; kk < k1; kk += g) {                                 \
        int64_t kend = kk + g < k1 ? kk + g : k1;                             \
        v16i E = (v16i){0} + NO_TERM;                                         \
        for (int64_t u = kk; u < kend; u++) {                                 \
            v16i pe;                                                          \
            memcpy(&pe, bep + (u - k0) * JW, sizeof pe);                      \
            pe += ae[u];                                                      \
            E = SEL(pe > E, pe, E);                                           \
        }                                                                     \
        /* the accumulator terms join E in double lanes */                   \
        v8l E2[2];                                                            \
        for (int h = 0; h < 2; h++) {                                         \
            v8l ea = accexp_##SFX(t, acc[h]);                                 \
            v8l ep;                                                           \
            for (int l = 0; l < 8; l++)                                       \
                ep[l] = E[8 * h + l];                                         \
            E2[h] = SEL(ea > ep, ea, ep);                                     \
            v8l l9 = (v8l){0} - 900;                                          \
            E2[h] = SEL(E2[h] < l9, l9, E2[h]);                               \
            for (int l = 0; l < 8; l++)                                       \
                E[8 * h + l] = (int32_t)E2[h][l];                             \
        }                                                                     \
        /* products: float lanes, the scale 2^(F - E) kept in float range    \
         * (a lane below F - 127 has no non-zero product) */                 \
        v16i Ef = SEL(E < lo, lo, E);                                         \
        v16f s = (v16f)((127 + (int32_t)F - Ef) << 23);                       \
        v16i S = (v16i){0};                                                   \
        for (int64_t u = kk; u < kend; u++) {                                 \
            v16f bv;                                                          \
            memcpy(&bv, bp + (u - k0) * JW, sizeof bv);                       \
            S += __builtin_convertvector(bv * (float)av[u] * s, v16i);        \
        }                                                                     \
        for (int h = 0; h < 2; h++) {                                         \
            v8d sd = (v8d)((1023 + F - E2[h]) << 52);                         \
            v8d sinv = (v8d)((1023 - F + E2[h]) << 52);                       \
            v8l S0 = __builtin_convertvector(acc[h] * sd, v8l);               \
            v8d Sd;                                                           \
            for (int l = 0; l < 8; l++)                                       \
                Sd[l] = (double)S[8 * h + l];                                 \
            Sd += __builtin_convertvector(S0, v8d);                           \
            acc[h] = round8_##SFX(t, Sd * sinv, &badm[h]);                    \
        }                                                                     \
        if (P > 0 && ((kend - k0) % P == 0 || kend >= k1)) {                  \
            for (int h = 0; h < 2; h++) {                                     \
                for (int l = 0; l < 8; l++)                                   \
                    total[h][l] = add_total(m, total[h][l], acc[h][l]);       \
                acc[h] = (v8d){0};                                            \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    for (int h = 0; h < 2; h++)                                               \
        for (int l = 0; l < 8; l++) {                                         \
            res[8 * h + l] = P > 0 ? total[h][l] : acc[h][l];                 \
            bad[8 * h + l] = badm[h][l] != 0;                                 \
        }                                                                     \
}

/* The helpers take and return 64-byte vectors; they are always inlined,
 * so no call crosses the ABI the warning is about. */
#pragma GCC diagnostic ignored "-Wpsabi"
#if defined(__GNUC__) && defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl")
FUSED_KERNELS(avx512)
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
FUSED_KERNELS(avx2)
#pragma GCC pop_options
#endif
FUSED_KERNELS(base)

typedef void (*wide_fn)(const lp_fused *, const tile_par *, const double *,
                        const int32_t *, const double *, const int32_t *,
                        int64_t, int64_t, const double *, double *,
                        int64_t *);
typedef void (*narrow_fn)(const lp_fused *, const tile_par *, const double *,
                          const int32_t *, const float *, const int32_t *,
                          int64_t, int64_t, const double *, double *,
                          int64_t *);

static void tiles_for(int isa, wide_fn *w, narrow_fn *n)
{
    *w = tile_wide_base;
    *n = tile_narrow_base;
#if defined(__GNUC__) && defined(__x86_64__)
    isa = lp_matmul_isa(isa);
    if (isa == LP_ISA_AVX512) {
        *w = tile_wide_avx512;
        *n = tile_narrow_avx512;
    } else if (isa == LP_ISA_AVX2) {
        *w = tile_wide_avx2;
        *n = tile_narrow_avx2;
    }
#endif
}

static int bits_for(int64_t n)
{
    int b = 0;
    while (((int64_t)1 << b) < n)
        b++;
    return b;
}

int lp_fused_gemm(const lp_fused *m, const double *a, const int32_t *ae,
                  const double *bt, const int32_t *bte, int64_t n, int64_t k,
                  int64_t k0, int64_t k1, const double *c,
                  const uint8_t *rowbad, const uint8_t *colbad, double *out,
                  int64_t row0, int64_t row1, int isa, int path)
{
    if (m->group < 1 || k0 < 0 || k1 > k || k0 > k1)
        return -1;
    int64_t kn = k1 - k0;
    /* truncated terms lie below 2^(F+2); group + 1 of them */
    int sumbits = m->align_bits + 2 + bits_for((int64_t)m->group + 1);
    int use_vec = path != LP_FUSED_SCALAR && sumbits <= 53 && kn > 0;
    int narrow = use_vec && path == LP_FUSED_NARROW && sumbits <= 24;
    int64_t g = m->group > 0 ? m->group : 1;
    double *pb = malloc((size_t)g * sizeof *pb);
    int32_t *peb = malloc((size_t)g * sizeof *peb);
    double *bp = NULL;
    float *bpf = NULL;
    int32_t *bep = NULL;
    if (use_vec) {
        if (narrow)
            bpf = malloc((size_t)(kn * JW) * sizeof *bpf);
        else
            bp = malloc((size_t)(kn * JW) * sizeof *bp);
        bep = malloc((size_t)(kn * JW) * sizeof *bep);
    }
    if (!pb || !peb || (use_vec && (!(bp || bpf) || !bep))) {
        free(pb); free(peb); free(bp); free(bpf); free(bep);
        return -2;
    }
    tile_par t;
    t.F = m->align_bits;
    t.bits = m->out_bits;
    t.mode = m->out_rounding;
    t.emin = m->acc_emin;
    t.qmin = m->acc_emin - m->out_bits + 1;
    t.P = m->promote_every;
    t.big = pow2(m->acc_emax + 1);
    wide_fn wide;
    narrow_fn nar;
    tiles_for(isa, &wide, &nar);
    int64_t j = 0;
    if (use_vec) {
        for (; j + JW <= n; j += JW) {
            /* B's panel, k-major, JW columns */
            for (int64_t u = 0; u < kn; u++)
                for (int l = 0; l < JW; l++) {
                    double x = bt[(j + l) * k + k0 + u];
                    if (narrow)
                        bpf[u * JW + l] = (float)x;
                    else
                        bp[u * JW + l] = x;
                    bep[u * JW + l] = bte[(j + l) * k + k0 + u];
                }
            int anybad = 0;
            for (int l = 0; l < JW; l++)
                anybad |= colbad[j + l];
            for (int64_t i = row0; i < row1; i++) {
                double res[JW];
                int64_t bad[JW];
                const double *ci = c ? c + i * n + j : NULL;
                if (rowbad[i] || anybad) {
                    for (int l = 0; l < JW; l++)
                        bad[l] = 1;
                } else if (narrow) {
                    nar(m, &t, a + i * k, ae + i * k, bpf, bep, k0, k1, ci,
                        res, bad);
                } else {
                    wide(m, &t, a + i * k, ae + i * k, bp, bep, k0, k1, ci,
                         res, bad);
                }
                for (int l = 0; l < JW; l++) {
                    if (bad[l] || colbad[j + l] || rowbad[i])
                        res[l] = dot_scalar(m, a + i * k, ae + i * k,
                                            bt + (j + l) * k,
                                            bte + (j + l) * k, 1, k0, k1,
                                            ci ? ci[l] : 0.0, ci != NULL, pb,
                                            peb);
                    out[i * n + j + l] = res[l];
                }
            }
        }
    }
    for (; j < n; j++)
        for (int64_t i = row0; i < row1; i++)
            out[i * n + j] = dot_scalar(m, a + i * k, ae + i * k, bt + j * k,
                                        bte + j * k, 1, k0, k1,
                                        c ? c[i * n + j] : 0.0, c != NULL, pb,
                                        peb);
    free(pb); free(peb); free(bp); free(bpf); free(bep);
    return 0;
}
