/* exact.c -- exact sums for the "exact" mode of scaled_matmul (API.md
 * section 3), beyond what one float64 sum holds:
 *
 *   int64 planes     each sub-block's exact float64 sum, scaled to an
 *                    integer, split and added exactly into two int64 planes
 *                    (the epilogue of lp_gemm_f64_exact, gemm.c), the
 *                    total rounded once to float32
 *   lp_line_ranges, lp_slice   the binade ranges and the slices of wide-range
 *                    operands whose slice products are exact in float64
 *   lp_exact_dot     exact dot products on a long fixed-point accumulator,
 *                    any operand range (the slow general fallback)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gemm.h"
#include "round.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define LP_X86 1
#include <immintrin.h>
#else
#define LP_X86 0
#endif

/* ---- exact combination of float64 partial products ---------------------- */

typedef unsigned __int128 lp_u128;
typedef __int128 lp_i128;

/* The float32 format and round-to-nearest-even, for the core. */
void lp_f32_format(lp_format *f, lp_opts *o)
{
    lp_format_ieee(f, 8, 23);
    lp_opts_default(o);
}

/* R32(sign * mag * 2^e) through the rounding core.  A magnitude wider than
 * 64 bits keeps its top 64 bits with the rest OR-ed into bit 0 (sticky):
 * float32 keeps 24 bits, so bit 0 lies far below the rounding position. */
static float round_u128_f32(const lp_format *f, const lp_opts *o, int sign,
                            lp_u128 mag, int32_t e)
{
    if (mag == 0)
        return 0.0f;
    uint64_t sig;
    uint64_t hi = (uint64_t)(mag >> 64);
    if (hi) {
        int shift = 64 - __builtin_clzll(hi);
        sig = (uint64_t)(mag >> shift);
        sig |= (mag & (((lp_u128)1 << shift) - 1)) != 0;
        e += shift;
    } else {
        sig = (uint64_t)mag;
    }
    /* Fast path: a normal float32 result (2^(63+e) >= 2^-126, sig >= 2^63
     * after normalising).  The hardware conversion of the 64-bit integer
     * rounds once (nearest even), and scaling by 2^e is then exact (or
     * overflows to inf, which is also IEEE's rounding). */
    int lz = __builtin_clzll(sig);
    if (e - lz + 63 >= -126 && e <= 900) {
        float r = (float)((double)(float)sig * lp_pow2(e));
        return sign ? -r : r;
    }
    int err = 0;
    uint32_t bits = (uint32_t)lp_round_any(f, o, 0, sign, e, sig, 0, &err);
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* R32((hi * 2^52 + lo) * 2^u), the value of the two int64 planes.
 * 1. Carry lo's bits above 2^52 into hi: lo in [0, 2^52).
 * 2. While |hi| < 2^53 both halves are exact doubles, a = hi * 2^52 and
 *    lo sum exactly to s + e (Fast2Sum: |a| >= 2^52 > lo or a = 0), and
 *    s made odd toward e is the value rounded to odd in float64; float64
 *    keeps 29 bits more than float32, so rounding that once to float32
 *    (after the exact scaling by 2^u) is the correct R32 of the sum.
 *    hi = 3, lo = 2^52 + 1: carry 1, a = 2^54, s = 2^54 (even), e = 1:
 *    s becomes 2^54 + 4, R32 of which is 2^54 = R32(2^54 + 1).
 * 3. Else the int128 path. */
float lp_planes_to_f32(const lp_format *f, const lp_opts *o, int64_t hi,
                       int64_t lo, int32_t u)
{
    const double two52 = 4503599627370496.0;
    int64_t h2 = hi + (lo >> 52);
    uint64_t l2 = (uint64_t)lo & (((uint64_t)1 << 52) - 1);
    if (h2 > -((int64_t)1 << 53) && h2 < ((int64_t)1 << 53) && u <= 900
        && u >= -900) {
        double a = (double)h2 * two52, dl = (double)l2;
        double sum = a + dl;
        double e = dl - (sum - a);
        /* branch-free: b += fix * (+1 away from zero, -1 toward it) */
        uint64_t b;
        memcpy(&b, &sum, sizeof b);
        uint64_t fix = (uint64_t)(e != 0) & (~b & 1);
        uint64_t away = (uint64_t)((e > 0) == (sum > 0));
        b += fix * 2 * away - fix;
        memcpy(&sum, &b, sizeof sum);
        return (float)(sum * lp_pow2(u));
    }
    lp_i128 z = (lp_i128)hi * ((lp_i128)1 << 52) + lo;
    int sign = z < 0;
    lp_u128 mag = sign ? -(lp_u128)z : (lp_u128)z;
    return round_u128_f32(f, o, sign, mag, u);
}

/* Each partial product p (a sub-block's exact float64 sum), scaled to
 * units of 2^(ua + ub), is an integer z, |z| < 2^114, held exactly in a
 * double; it is split as z = h * 2^52 + l with h = trunc(z / 2^52) and
 * |l| < 2^52, both exact, and h, l are added to two int64 planes, which
 * cannot overflow: at most 2^11 values of |l| < 2^52, and the h of
 * values totalling below 2^114 sum below 2^62 in magnitude.
 * p = 5 * 2^-3 with units 2^-60 (ua + ub = -60): z = 5 * 2^57,
 * h = 5 * 2^5 = 160, l = 0. */
static void exact_add_row(const double *restrict p, double ra,
                          const int32_t *restrict ub, int64_t n,
                          int64_t *restrict lo, int64_t *restrict hi)
{
    const double two52 = 4503599627370496.0, inv52 = 1.0 / 4503599627370496.0;
    for (int64_t j = 0; j < n; j++) {
        double z = (p[j] * ra) * lp_pow2(-ub[j]);
        double h = trunc(z * inv52);
        double l = z - h * two52;
        hi[j] += (int64_t)h;
        lo[j] += (int64_t)l;
    }
}

#if LP_X86
/* The same steps, eight at a time with AVX-512 (DQ converts to int64). */
__attribute__((target("avx512f,avx512dq")))
static void exact_add_row_avx512(const double *restrict p, double ra,
                                 const int32_t *restrict ub, int64_t n,
                                 int64_t *restrict lo, int64_t *restrict hi)
{
    const __m512d vra = _mm512_set1_pd(ra);
    const __m512d inv52 = _mm512_set1_pd(1.0 / 4503599627370496.0);
    const __m512d two52 = _mm512_set1_pd(4503599627370496.0);
    const __m256i bias = _mm256_set1_epi32(1023);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(ub + j));
        __m512i e = _mm512_cvtepi32_epi64(_mm256_sub_epi32(bias, u));
        __m512d scale = _mm512_castsi512_pd(_mm512_slli_epi64(e, 52));
        __m512d z = _mm512_mul_pd(_mm512_mul_pd(_mm512_loadu_pd(p + j), vra),
                                  scale);
        __m512d h = _mm512_roundscale_pd(_mm512_mul_pd(z, inv52),
                                         _MM_FROUND_TO_ZERO
                                         | _MM_FROUND_NO_EXC);
        __m512d l = _mm512_sub_pd(z, _mm512_mul_pd(h, two52));
        _mm512_storeu_si512(hi + j, _mm512_add_epi64(
            _mm512_loadu_si512(hi + j), _mm512_cvttpd_epi64(h)));
        _mm512_storeu_si512(lo + j, _mm512_add_epi64(
            _mm512_loadu_si512(lo + j), _mm512_cvttpd_epi64(l)));
    }
    exact_add_row(p + j, ra, ub + j, n - j, lo + j, hi + j);
}
#endif

lp_exact_row_fn lp_exact_row_for(int isa)
{
#if LP_X86
    if (lp_matmul_isa(isa) == LP_ISA_AVX512)
        return exact_add_row_avx512;
#endif
    (void)isa;
    return exact_add_row;
}

/* ---- ranges and slices of wide-range operands --------------------------- */

/* Binade of a finite non-zero double: floor(log2 |v|) (operands are normal
 * doubles: every format's values are). */
static int32_t binade(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (int32_t)((bits >> 52) & 0x7FF) - 1023;
}

void lp_line_ranges(const double *x, int64_t rows, int64_t cols, int axis,
                    int32_t emin, int32_t mbits, int32_t *top, int32_t *q,
                    int64_t l0, int64_t l1)
{
    const int32_t none_top = INT32_MIN, none_q = INT32_MAX;
    if (axis == 1) {
        for (int64_t i = l0; i < l1; i++) {
            int32_t t = none_top, qq = none_q;
            for (int64_t j = 0; j < cols; j++) {
                double v = x[i * cols + j];
                if (v == 0)
                    continue;
                int32_t e = binade(v);
                int32_t qe = (e > emin ? e : emin) - mbits;
                t = e > t ? e : t;
                qq = qe < qq ? qe : qq;
            }
            top[i] = t;
            q[i] = qq;
        }
    } else {
        for (int64_t j = l0; j < l1; j++) {
            top[j] = none_top;
            q[j] = none_q;
        }
        for (int64_t i = 0; i < rows; i++) {
            for (int64_t j = l0; j < l1; j++) {
                double v = x[i * cols + j];
                if (v == 0)
                    continue;
                int32_t e = binade(v);
                int32_t qe = (e > emin ? e : emin) - mbits;
                top[j] = e > top[j] ? e : top[j];
                q[j] = qe < q[j] ? qe : q[j];
            }
        }
    }
}

void lp_slice(const double *x, int64_t rows, int64_t cols, int axis,
              const int32_t *top, int32_t w, int32_t nslices, double *out,
              int64_t r0, int64_t r1)
{
    const int64_t plane = rows * cols;
    for (int64_t i = r0; i < r1; i++) {
        for (int64_t j = 0; j < cols; j++) {
            int32_t t = top[axis == 1 ? i : j];
            double rem = x[i * cols + j];
            for (int32_t s = 0; s < nslices; s++) {
                /* The bits in [2^P, 2^(P+w)), P = t + 1 - (s+1) w:
                 * trunc(rem / 2^P) * 2^P, exact: the scalings are by
                 * powers of two and |rem / 2^P| < 2^w <= 2^52, so the
                 * conversion through int64 truncates exactly. */
                int32_t P = t + 1 - (s + 1) * w;
                double hi = (double)(int64_t)(rem * lp_pow2(-P)) * lp_pow2(P);
                out[s * plane + i * cols + j] = hi;
                rem -= hi;
            }
        }
    }
}

/* ---- exact dot products on a long accumulator ------------------------------
 * Each product (exact in float64: both factors have at most 24 significant
 * bits) is split as mant * 2^pos with pos >= 0 counted from 2^lo, and added
 * into 32-bit digits held in int64 limbs: limb w has weight 2^(lo + 32 w).
 * A product touches three limbs by at most 2^32 each, so 2^30 products
 * leave every limb far from overflow.  At the end carries are propagated
 * and the top 64 bits (with a sticky bit) go to the rounding core. */

static float limbs_to_f32(const lp_format *f, const lp_opts *o, int64_t *l,
                          int nl, int32_t lo)
{
    for (int t = 0; t < nl - 1; t++) {
        int64_t carry = l[t] >> 32;          /* floor division by 2^32 */
        l[t] -= carry * ((int64_t)1 << 32);
        l[t + 1] += carry;
    }
    int sign = l[nl - 1] < 0;
    if (sign) {
        for (int t = 0; t < nl; t++)
            l[t] = -l[t];
        for (int t = 0; t < nl - 1; t++) {
            int64_t carry = l[t] >> 32;
            l[t] -= carry * ((int64_t)1 << 32);
            l[t + 1] += carry;
        }
    }
    int h = nl - 1;
    while (h >= 0 && l[h] == 0)
        h--;
    if (h < 0)
        return 0.0f;
    /* Digits h, h-1, h-2 (up to 96 bits) and a sticky bit below. */
    lp_u128 top = (lp_u128)(uint64_t)l[h] << 64;
    if (h >= 1)
        top |= (lp_u128)(uint64_t)l[h - 1] << 32;
    if (h >= 2)
        top |= (uint64_t)l[h - 2];
    int sticky = 0;
    for (int t = h - 3; t >= 0; t--)
        sticky |= l[t] != 0;
    int32_t e = lo + 32 * (h - 2);
    return round_u128_f32(f, o, sign, top | (lp_u128)sticky, e);
}

/* Adds x (finite, a multiple of 2^lo) into the limbs; 1 when it does not
 * fit (or is not finite). */
static int limbs_add(int64_t *l, int32_t nlimbs, int32_t lo, double x)
{
    if (x == 0)
        return 0;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int field = (int)((bits >> 52) & 0x7FF);
    if (field == 0x7FF)
        return 1;
    uint64_t mant = bits & (((uint64_t)1 << 52) - 1);
    if (field)
        mant |= (uint64_t)1 << 52;
    else
        field = 1;
    int32_t pos = field - 1075 - lo;
    if (pos < 0) {                 /* trailing zeros of mant */
        mant = -pos < 64 ? mant >> -pos : 0;
        pos = 0;
    }
    int w = pos >> 5;
    lp_u128 v = (lp_u128)mant << (pos & 31);
    int64_t c0 = (int64_t)(uint32_t)v;
    int64_t c1 = (int64_t)(uint32_t)(v >> 32);
    int64_t c2 = (int64_t)(uint64_t)(v >> 64);
    if (w + 2 >= nlimbs)
        return 1;
    if (bits >> 63) {
        l[w] -= c0;
        l[w + 1] -= c1;
        l[w + 2] -= c2;
    } else {
        l[w] += c0;
        l[w + 1] += c1;
        l[w + 2] += c2;
    }
    return 0;
}

int lp_exact_dot_c(const double *a, const double *bt, int64_t m, int64_t n,
                   int64_t k, int64_t k0, int64_t k1, int32_t lo,
                   int32_t nlimbs, const double *c, float *out, int64_t row0,
                   int64_t row1)
{
    lp_format f;
    lp_opts o;
    lp_f32_format(&f, &o);
    int64_t *l = malloc((size_t)nlimbs * sizeof *l);
    if (!l)
        return -1;
    int bad = 0;
    for (int64_t i = row0; i < row1; i++) {
        const double *ar = a + i * k;
        for (int64_t j = 0; j < n; j++) {
            const double *br = bt + j * k;
            memset(l, 0, (size_t)nlimbs * sizeof *l);
            if (c)
                bad |= limbs_add(l, nlimbs, lo, c[i * n + j]);
            for (int64_t kk = k0; kk < k1; kk++)
                bad |= limbs_add(l, nlimbs, lo, ar[kk] * br[kk]);
            out[i * n + j] = limbs_to_f32(&f, &o, l, nlimbs, lo);
        }
    }
    free(l);
    return bad;
}

int lp_exact_dot(const double *a, const double *bt, int64_t m, int64_t n,
                 int64_t k, int64_t k0, int64_t k1, int32_t lo, int32_t nlimbs,
                 float *out, int64_t row0, int64_t row1)
{
    return lp_exact_dot_c(a, bt, m, n, k, k0, k1, lo, nlimbs, NULL, out,
                          row0, row1);
}

int lp_exact_dot_limbs(const double *a, const double *bt, int64_t m,
                       int64_t n, int64_t k, int64_t k0, int64_t k1,
                       int32_t lo, int32_t nlimbs, int64_t *limbs,
                       int64_t row0, int64_t row1)
{
    int bad = 0;
    for (int64_t i = row0; i < row1; i++) {
        const double *ar = a + i * k;
        for (int64_t j = 0; j < n; j++) {
            const double *br = bt + j * k;
            int64_t *l = limbs + (i * n + j) * nlimbs;
            memset(l, 0, (size_t)nlimbs * sizeof *l);
            for (int64_t kk = k0; kk < k1; kk++)
                bad |= limbs_add(l, nlimbs, lo, ar[kk] * br[kk]);
            /* carries up: digits 0 .. nlimbs-2 in [0, 2^32), so that sums
             * of 2^30 such limb vectors stay far from int64 overflow */
            for (int t = 0; t < nlimbs - 1; t++) {
                int64_t carry = l[t] >> 32;
                l[t] -= carry * ((int64_t)1 << 32);
                l[t + 1] += carry;
            }
        }
    }
    return bad;
}

void lp_limbs_to_f32(const int64_t *limbs, int64_t count, int32_t nlimbs,
                     int32_t lo, float *out)
{
    lp_format f;
    lp_opts o;
    lp_f32_format(&f, &o);
    int64_t buf[64];
    for (int64_t e = 0; e < count; e++) {
        memcpy(buf, limbs + e * nlimbs, (size_t)nlimbs * sizeof *buf);
        out[e] = limbs_to_f32(&f, &o, buf, nlimbs, lo);
    }
}
