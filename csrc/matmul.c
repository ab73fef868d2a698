/* matmul.c -- matrix products of low-precision operands (API.md section 3).
 *
 * The Python layer (lowprec/matmul.py) decodes codes to float32 / float64
 * (exactly), checks shapes and scales, and calls these kernels on ranges of
 * output rows from a thread pool; every call is independent, so any split
 * gives the same bits.
 *
 *   lp_gemm_f32        sequential fused multiply-add in float32 with the
 *                      scale epilogue of each K-block: the "fp32" mode, and
 *                      "exact" when every partial sum is exact in float32
 *   lp_gemm_f64        float64 products: each K-block's sum rounded once to
 *                      float32 and scaled ("exact" when the caller bounded
 *                      the operands so that every partial sum is exact)
 *   lp_gemm_f64_exact  the same over sub-blocks of sliced operands, each
 *                      sub-block's exact float64 sum added exactly into a
 *                      pair of int64 ("exact" for wide formats)
 *   lp_line_ranges, lp_slice   the binade ranges and slices for it
 *   lp_exact_dot       exact dot products on a long fixed-point accumulator,
 *                      any operand range (the slow general fallback)
 *   lp_accumulate      sequential accumulation rounded to a format each step
 *   lp_gemm_i32        int32 wrap-around integer product (int_matmul)
 *   lp_scale_acc       the block epilogue on its own
 *
 * The float GEMM kernels share one blocked driver (Goto's loop order): B is
 * packed once (lp_gemm_pack_b, shared by the threads) in panels of NR
 * columns, chunk by chunk of K; each call packs blocks of its rows of A in
 * panels of MR rows, and a register-tiled micro-kernel runs the k loop of
 * an MR x NR tile.  Each output element sees its k in increasing order, so
 * the sequential float32 chain of "fp32" is the same whatever the tiling,
 * ISA or thread split.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lowprec.h"
#include "round.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define LP_X86 1
#include <immintrin.h>
#else
#define LP_X86 0
#endif

/* ---- instruction set ---------------------------------------------------- */

static int isa_available(void)
{
#if LP_X86
    /* libgcc's cpu model checks XCR0, so the OS saves the registers. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
        return LP_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return LP_ISA_AVX2;
#endif
    return LP_ISA_GENERIC;
}

int lp_matmul_isa(int requested)
{
    int have = isa_available();
    if (requested < 0 || requested > have)
        return have;
    return requested;
}

/* ---- micro-kernels ---------------------------------------------------------
 * uk(kc, ap, bp, ct, zero): the MR x NR tile ct (row-major, ld NR) is loaded
 * (or zeroed), and for k = 0..kc-1 in order, ct[r][q] += ap[k][r] * bp[k][q]
 * (ap: kc x MR, bp: kc x NR, both packed).  The float32 kernels do each step
 * as one fused multiply-add, fmaf(a, b, c) = R32(c + a*b). */

typedef void (*ukernel_fn)(int64_t kc, const void *ap, const void *bp,
                           void *ct, int zero);

static void uk_f32_generic(int64_t kc, const void *ap_, const void *bp_,
                           void *ct_, int zero)
{
    const float *ap = ap_, *bp = bp_;
    float *ct = ct_;
    float c[4][4];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            c[r][q] = zero ? 0.0f : ct[r * 4 + q];
    for (int64_t k = 0; k < kc; k++)
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                c[r][q] = fmaf(ap[k * 4 + r], bp[k * 4 + q], c[r][q]);
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            ct[r * 4 + q] = c[r][q];
}

static void uk_f64_generic(int64_t kc, const void *ap_, const void *bp_,
                           void *ct_, int zero)
{
    const double *ap = ap_, *bp = bp_;
    double *ct = ct_;
    double c[4][4];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            c[r][q] = zero ? 0.0 : ct[r * 4 + q];
    for (int64_t k = 0; k < kc; k++)
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                c[r][q] += ap[k * 4 + r] * bp[k * 4 + q];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            ct[r * 4 + q] = c[r][q];
}

#if LP_X86
/* The SIMD micro-kernels name every accumulator: GCC keeps named vectors in
 * registers, where an array of them was stored to the stack at every step.
 * AVX2: 6 rows x 2 vectors, 12 accumulators. */
__attribute__((target("avx2,fma")))
static void uk_f32_avx2(int64_t kc, const void *ap_, const void *bp_,
                        void *ct_, int zero)
{
    const float *ap = ap_, *bp = bp_;
    float *ct = ct_;
    __m256 c00, c01;
    __m256 c10, c11;
    __m256 c20, c21;
    __m256 c30, c31;
    __m256 c40, c41;
    __m256 c50, c51;
    if (zero) {
        c00 = _mm256_setzero_ps(); c01 = _mm256_setzero_ps();
        c10 = _mm256_setzero_ps(); c11 = _mm256_setzero_ps();
        c20 = _mm256_setzero_ps(); c21 = _mm256_setzero_ps();
        c30 = _mm256_setzero_ps(); c31 = _mm256_setzero_ps();
        c40 = _mm256_setzero_ps(); c41 = _mm256_setzero_ps();
        c50 = _mm256_setzero_ps(); c51 = _mm256_setzero_ps();
    } else {
        c00 = _mm256_loadu_ps(ct + 0);
        c01 = _mm256_loadu_ps(ct + 8);
        c10 = _mm256_loadu_ps(ct + 16);
        c11 = _mm256_loadu_ps(ct + 24);
        c20 = _mm256_loadu_ps(ct + 32);
        c21 = _mm256_loadu_ps(ct + 40);
        c30 = _mm256_loadu_ps(ct + 48);
        c31 = _mm256_loadu_ps(ct + 56);
        c40 = _mm256_loadu_ps(ct + 64);
        c41 = _mm256_loadu_ps(ct + 72);
        c50 = _mm256_loadu_ps(ct + 80);
        c51 = _mm256_loadu_ps(ct + 88);
    }
    for (int64_t k = 0; k < kc; k++) {
        const float *b = bp + k * 16;
        const float *a = ap + k * 6;
        __m256 b0 = _mm256_loadu_ps(b + 0), b1 = _mm256_loadu_ps(b + 8);
        __m256 x;
        x = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    _mm256_storeu_ps(ct + 0, c00);
    _mm256_storeu_ps(ct + 8, c01);
    _mm256_storeu_ps(ct + 16, c10);
    _mm256_storeu_ps(ct + 24, c11);
    _mm256_storeu_ps(ct + 32, c20);
    _mm256_storeu_ps(ct + 40, c21);
    _mm256_storeu_ps(ct + 48, c30);
    _mm256_storeu_ps(ct + 56, c31);
    _mm256_storeu_ps(ct + 64, c40);
    _mm256_storeu_ps(ct + 72, c41);
    _mm256_storeu_ps(ct + 80, c50);
    _mm256_storeu_ps(ct + 88, c51);
}

__attribute__((target("avx2,fma")))
static void uk_f64_avx2(int64_t kc, const void *ap_, const void *bp_,
                        void *ct_, int zero)
{
    const double *ap = ap_, *bp = bp_;
    double *ct = ct_;
    __m256d c00, c01;
    __m256d c10, c11;
    __m256d c20, c21;
    __m256d c30, c31;
    __m256d c40, c41;
    __m256d c50, c51;
    if (zero) {
        c00 = _mm256_setzero_pd(); c01 = _mm256_setzero_pd();
        c10 = _mm256_setzero_pd(); c11 = _mm256_setzero_pd();
        c20 = _mm256_setzero_pd(); c21 = _mm256_setzero_pd();
        c30 = _mm256_setzero_pd(); c31 = _mm256_setzero_pd();
        c40 = _mm256_setzero_pd(); c41 = _mm256_setzero_pd();
        c50 = _mm256_setzero_pd(); c51 = _mm256_setzero_pd();
    } else {
        c00 = _mm256_loadu_pd(ct + 0);
        c01 = _mm256_loadu_pd(ct + 4);
        c10 = _mm256_loadu_pd(ct + 8);
        c11 = _mm256_loadu_pd(ct + 12);
        c20 = _mm256_loadu_pd(ct + 16);
        c21 = _mm256_loadu_pd(ct + 20);
        c30 = _mm256_loadu_pd(ct + 24);
        c31 = _mm256_loadu_pd(ct + 28);
        c40 = _mm256_loadu_pd(ct + 32);
        c41 = _mm256_loadu_pd(ct + 36);
        c50 = _mm256_loadu_pd(ct + 40);
        c51 = _mm256_loadu_pd(ct + 44);
    }
    for (int64_t k = 0; k < kc; k++) {
        const double *b = bp + k * 8;
        const double *a = ap + k * 6;
        __m256d b0 = _mm256_loadu_pd(b + 0), b1 = _mm256_loadu_pd(b + 4);
        __m256d x;
        x = _mm256_broadcast_sd(a + 0);
        c00 = _mm256_fmadd_pd(x, b0, c00);
        c01 = _mm256_fmadd_pd(x, b1, c01);
        x = _mm256_broadcast_sd(a + 1);
        c10 = _mm256_fmadd_pd(x, b0, c10);
        c11 = _mm256_fmadd_pd(x, b1, c11);
        x = _mm256_broadcast_sd(a + 2);
        c20 = _mm256_fmadd_pd(x, b0, c20);
        c21 = _mm256_fmadd_pd(x, b1, c21);
        x = _mm256_broadcast_sd(a + 3);
        c30 = _mm256_fmadd_pd(x, b0, c30);
        c31 = _mm256_fmadd_pd(x, b1, c31);
        x = _mm256_broadcast_sd(a + 4);
        c40 = _mm256_fmadd_pd(x, b0, c40);
        c41 = _mm256_fmadd_pd(x, b1, c41);
        x = _mm256_broadcast_sd(a + 5);
        c50 = _mm256_fmadd_pd(x, b0, c50);
        c51 = _mm256_fmadd_pd(x, b1, c51);
    }
    _mm256_storeu_pd(ct + 0, c00);
    _mm256_storeu_pd(ct + 4, c01);
    _mm256_storeu_pd(ct + 8, c10);
    _mm256_storeu_pd(ct + 12, c11);
    _mm256_storeu_pd(ct + 16, c20);
    _mm256_storeu_pd(ct + 20, c21);
    _mm256_storeu_pd(ct + 24, c30);
    _mm256_storeu_pd(ct + 28, c31);
    _mm256_storeu_pd(ct + 32, c40);
    _mm256_storeu_pd(ct + 36, c41);
    _mm256_storeu_pd(ct + 40, c50);
    _mm256_storeu_pd(ct + 44, c51);
}

/* AVX-512: 8 rows x 3 vectors, 24 accumulators. */
__attribute__((target("avx512f,fma")))
static void uk_f32_avx512(int64_t kc, const void *ap_, const void *bp_,
                          void *ct_, int zero)
{
    const float *ap = ap_, *bp = bp_;
    float *ct = ct_;
    __m512 c00, c01, c02;
    __m512 c10, c11, c12;
    __m512 c20, c21, c22;
    __m512 c30, c31, c32;
    __m512 c40, c41, c42;
    __m512 c50, c51, c52;
    __m512 c60, c61, c62;
    __m512 c70, c71, c72;
    if (zero) {
        c00 = _mm512_setzero_ps();
        c01 = _mm512_setzero_ps();
        c02 = _mm512_setzero_ps();
        c10 = _mm512_setzero_ps();
        c11 = _mm512_setzero_ps();
        c12 = _mm512_setzero_ps();
        c20 = _mm512_setzero_ps();
        c21 = _mm512_setzero_ps();
        c22 = _mm512_setzero_ps();
        c30 = _mm512_setzero_ps();
        c31 = _mm512_setzero_ps();
        c32 = _mm512_setzero_ps();
        c40 = _mm512_setzero_ps();
        c41 = _mm512_setzero_ps();
        c42 = _mm512_setzero_ps();
        c50 = _mm512_setzero_ps();
        c51 = _mm512_setzero_ps();
        c52 = _mm512_setzero_ps();
        c60 = _mm512_setzero_ps();
        c61 = _mm512_setzero_ps();
        c62 = _mm512_setzero_ps();
        c70 = _mm512_setzero_ps();
        c71 = _mm512_setzero_ps();
        c72 = _mm512_setzero_ps();
    } else {
        c00 = _mm512_loadu_ps(ct + 0);
        c01 = _mm512_loadu_ps(ct + 16);
        c02 = _mm512_loadu_ps(ct + 32);
        c10 = _mm512_loadu_ps(ct + 48);
        c11 = _mm512_loadu_ps(ct + 64);
        c12 = _mm512_loadu_ps(ct + 80);
        c20 = _mm512_loadu_ps(ct + 96);
        c21 = _mm512_loadu_ps(ct + 112);
        c22 = _mm512_loadu_ps(ct + 128);
        c30 = _mm512_loadu_ps(ct + 144);
        c31 = _mm512_loadu_ps(ct + 160);
        c32 = _mm512_loadu_ps(ct + 176);
        c40 = _mm512_loadu_ps(ct + 192);
        c41 = _mm512_loadu_ps(ct + 208);
        c42 = _mm512_loadu_ps(ct + 224);
        c50 = _mm512_loadu_ps(ct + 240);
        c51 = _mm512_loadu_ps(ct + 256);
        c52 = _mm512_loadu_ps(ct + 272);
        c60 = _mm512_loadu_ps(ct + 288);
        c61 = _mm512_loadu_ps(ct + 304);
        c62 = _mm512_loadu_ps(ct + 320);
        c70 = _mm512_loadu_ps(ct + 336);
        c71 = _mm512_loadu_ps(ct + 352);
        c72 = _mm512_loadu_ps(ct + 368);
    }
    for (int64_t k = 0; k < kc; k++) {
        const float *b = bp + k * 48;
        const float *a = ap + k * 8;
        __m512 b0 = _mm512_loadu_ps(b + 0);
        __m512 b1 = _mm512_loadu_ps(b + 16);
        __m512 b2 = _mm512_loadu_ps(b + 32);
        __m512 x;
        x = _mm512_set1_ps(a[0]);
        c00 = _mm512_fmadd_ps(x, b0, c00);
        c01 = _mm512_fmadd_ps(x, b1, c01);
        c02 = _mm512_fmadd_ps(x, b2, c02);
        x = _mm512_set1_ps(a[1]);
        c10 = _mm512_fmadd_ps(x, b0, c10);
        c11 = _mm512_fmadd_ps(x, b1, c11);
        c12 = _mm512_fmadd_ps(x, b2, c12);
        x = _mm512_set1_ps(a[2]);
        c20 = _mm512_fmadd_ps(x, b0, c20);
        c21 = _mm512_fmadd_ps(x, b1, c21);
        c22 = _mm512_fmadd_ps(x, b2, c22);
        x = _mm512_set1_ps(a[3]);
        c30 = _mm512_fmadd_ps(x, b0, c30);
        c31 = _mm512_fmadd_ps(x, b1, c31);
        c32 = _mm512_fmadd_ps(x, b2, c32);
        x = _mm512_set1_ps(a[4]);
        c40 = _mm512_fmadd_ps(x, b0, c40);
        c41 = _mm512_fmadd_ps(x, b1, c41);
        c42 = _mm512_fmadd_ps(x, b2, c42);
        x = _mm512_set1_ps(a[5]);
        c50 = _mm512_fmadd_ps(x, b0, c50);
        c51 = _mm512_fmadd_ps(x, b1, c51);
        c52 = _mm512_fmadd_ps(x, b2, c52);
        x = _mm512_set1_ps(a[6]);
        c60 = _mm512_fmadd_ps(x, b0, c60);
        c61 = _mm512_fmadd_ps(x, b1, c61);
        c62 = _mm512_fmadd_ps(x, b2, c62);
        x = _mm512_set1_ps(a[7]);
        c70 = _mm512_fmadd_ps(x, b0, c70);
        c71 = _mm512_fmadd_ps(x, b1, c71);
        c72 = _mm512_fmadd_ps(x, b2, c72);
    }
    _mm512_storeu_ps(ct + 0, c00);
    _mm512_storeu_ps(ct + 16, c01);
    _mm512_storeu_ps(ct + 32, c02);
    _mm512_storeu_ps(ct + 48, c10);
    _mm512_storeu_ps(ct + 64, c11);
    _mm512_storeu_ps(ct + 80, c12);
    _mm512_storeu_ps(ct + 96, c20);
    _mm512_storeu_ps(ct + 112, c21);
    _mm512_storeu_ps(ct + 128, c22);
    _mm512_storeu_ps(ct + 144, c30);
    _mm512_storeu_ps(ct + 160, c31);
    _mm512_storeu_ps(ct + 176, c32);
    _mm512_storeu_ps(ct + 192, c40);
    _mm512_storeu_ps(ct + 208, c41);
    _mm512_storeu_ps(ct + 224, c42);
    _mm512_storeu_ps(ct + 240, c50);
    _mm512_storeu_ps(ct + 256, c51);
    _mm512_storeu_ps(ct + 272, c52);
    _mm512_storeu_ps(ct + 288, c60);
    _mm512_storeu_ps(ct + 304, c61);
    _mm512_storeu_ps(ct + 320, c62);
    _mm512_storeu_ps(ct + 336, c70);
    _mm512_storeu_ps(ct + 352, c71);
    _mm512_storeu_ps(ct + 368, c72);
}

__attribute__((target("avx512f,fma")))
static void uk_f64_avx512(int64_t kc, const void *ap_, const void *bp_,
                          void *ct_, int zero)
{
    const double *ap = ap_, *bp = bp_;
    double *ct = ct_;
    __m512d c00, c01, c02;
    __m512d c10, c11, c12;
    __m512d c20, c21, c22;
    __m512d c30, c31, c32;
    __m512d c40, c41, c42;
    __m512d c50, c51, c52;
    __m512d c60, c61, c62;
    __m512d c70, c71, c72;
    if (zero) {
        c00 = _mm512_setzero_pd();
        c01 = _mm512_setzero_pd();
        c02 = _mm512_setzero_pd();
        c10 = _mm512_setzero_pd();
        c11 = _mm512_setzero_pd();
        c12 = _mm512_setzero_pd();
        c20 = _mm512_setzero_pd();
        c21 = _mm512_setzero_pd();
        c22 = _mm512_setzero_pd();
        c30 = _mm512_setzero_pd();
        c31 = _mm512_setzero_pd();
        c32 = _mm512_setzero_pd();
        c40 = _mm512_setzero_pd();
        c41 = _mm512_setzero_pd();
        c42 = _mm512_setzero_pd();
        c50 = _mm512_setzero_pd();
        c51 = _mm512_setzero_pd();
        c52 = _mm512_setzero_pd();
        c60 = _mm512_setzero_pd();
        c61 = _mm512_setzero_pd();
        c62 = _mm512_setzero_pd();
        c70 = _mm512_setzero_pd();
        c71 = _mm512_setzero_pd();
        c72 = _mm512_setzero_pd();
    } else {
        c00 = _mm512_loadu_pd(ct + 0);
        c01 = _mm512_loadu_pd(ct + 8);
        c02 = _mm512_loadu_pd(ct + 16);
        c10 = _mm512_loadu_pd(ct + 24);
        c11 = _mm512_loadu_pd(ct + 32);
        c12 = _mm512_loadu_pd(ct + 40);
        c20 = _mm512_loadu_pd(ct + 48);
        c21 = _mm512_loadu_pd(ct + 56);
        c22 = _mm512_loadu_pd(ct + 64);
        c30 = _mm512_loadu_pd(ct + 72);
        c31 = _mm512_loadu_pd(ct + 80);
        c32 = _mm512_loadu_pd(ct + 88);
        c40 = _mm512_loadu_pd(ct + 96);
        c41 = _mm512_loadu_pd(ct + 104);
        c42 = _mm512_loadu_pd(ct + 112);
        c50 = _mm512_loadu_pd(ct + 120);
        c51 = _mm512_loadu_pd(ct + 128);
        c52 = _mm512_loadu_pd(ct + 136);
        c60 = _mm512_loadu_pd(ct + 144);
        c61 = _mm512_loadu_pd(ct + 152);
        c62 = _mm512_loadu_pd(ct + 160);
        c70 = _mm512_loadu_pd(ct + 168);
        c71 = _mm512_loadu_pd(ct + 176);
        c72 = _mm512_loadu_pd(ct + 184);
    }
    for (int64_t k = 0; k < kc; k++) {
        const double *b = bp + k * 24;
        const double *a = ap + k * 8;
        __m512d b0 = _mm512_loadu_pd(b + 0);
        __m512d b1 = _mm512_loadu_pd(b + 8);
        __m512d b2 = _mm512_loadu_pd(b + 16);
        __m512d x;
        x = _mm512_set1_pd(a[0]);
        c00 = _mm512_fmadd_pd(x, b0, c00);
        c01 = _mm512_fmadd_pd(x, b1, c01);
        c02 = _mm512_fmadd_pd(x, b2, c02);
        x = _mm512_set1_pd(a[1]);
        c10 = _mm512_fmadd_pd(x, b0, c10);
        c11 = _mm512_fmadd_pd(x, b1, c11);
        c12 = _mm512_fmadd_pd(x, b2, c12);
        x = _mm512_set1_pd(a[2]);
        c20 = _mm512_fmadd_pd(x, b0, c20);
        c21 = _mm512_fmadd_pd(x, b1, c21);
        c22 = _mm512_fmadd_pd(x, b2, c22);
        x = _mm512_set1_pd(a[3]);
        c30 = _mm512_fmadd_pd(x, b0, c30);
        c31 = _mm512_fmadd_pd(x, b1, c31);
        c32 = _mm512_fmadd_pd(x, b2, c32);
        x = _mm512_set1_pd(a[4]);
        c40 = _mm512_fmadd_pd(x, b0, c40);
        c41 = _mm512_fmadd_pd(x, b1, c41);
        c42 = _mm512_fmadd_pd(x, b2, c42);
        x = _mm512_set1_pd(a[5]);
        c50 = _mm512_fmadd_pd(x, b0, c50);
        c51 = _mm512_fmadd_pd(x, b1, c51);
        c52 = _mm512_fmadd_pd(x, b2, c52);
        x = _mm512_set1_pd(a[6]);
        c60 = _mm512_fmadd_pd(x, b0, c60);
        c61 = _mm512_fmadd_pd(x, b1, c61);
        c62 = _mm512_fmadd_pd(x, b2, c62);
        x = _mm512_set1_pd(a[7]);
        c70 = _mm512_fmadd_pd(x, b0, c70);
        c71 = _mm512_fmadd_pd(x, b1, c71);
        c72 = _mm512_fmadd_pd(x, b2, c72);
    }
    _mm512_storeu_pd(ct + 0, c00);
    _mm512_storeu_pd(ct + 8, c01);
    _mm512_storeu_pd(ct + 16, c02);
    _mm512_storeu_pd(ct + 24, c10);
    _mm512_storeu_pd(ct + 32, c11);
    _mm512_storeu_pd(ct + 40, c12);
    _mm512_storeu_pd(ct + 48, c20);
    _mm512_storeu_pd(ct + 56, c21);
    _mm512_storeu_pd(ct + 64, c22);
    _mm512_storeu_pd(ct + 72, c30);
    _mm512_storeu_pd(ct + 80, c31);
    _mm512_storeu_pd(ct + 88, c32);
    _mm512_storeu_pd(ct + 96, c40);
    _mm512_storeu_pd(ct + 104, c41);
    _mm512_storeu_pd(ct + 112, c42);
    _mm512_storeu_pd(ct + 120, c50);
    _mm512_storeu_pd(ct + 128, c51);
    _mm512_storeu_pd(ct + 136, c52);
    _mm512_storeu_pd(ct + 144, c60);
    _mm512_storeu_pd(ct + 152, c61);
    _mm512_storeu_pd(ct + 160, c62);
    _mm512_storeu_pd(ct + 168, c70);
    _mm512_storeu_pd(ct + 176, c71);
    _mm512_storeu_pd(ct + 184, c72);
}
#endif

typedef struct gemm_kernel {
    int mr, nr;        /* tile: rows of A, columns of B                    */
    int es;            /* element size: 4 (float) or 8 (double)            */
    ukernel_fn uk;
} gemm_kernel;

static gemm_kernel pick_kernel(int es, int isa)
{
    gemm_kernel g;
    g.es = es;
    isa = lp_matmul_isa(isa);
#if LP_X86
    if (isa == LP_ISA_AVX512) {
        g.mr = 8;
        g.nr = es == 4 ? 48 : 24;
        g.uk = es == 4 ? uk_f32_avx512 : uk_f64_avx512;
        return g;
    }
    if (isa == LP_ISA_AVX2) {
        g.mr = 6;
        g.nr = es == 4 ? 16 : 8;
        g.uk = es == 4 ? uk_f32_avx2 : uk_f64_avx2;
        return g;
    }
#endif
    (void)isa;
    g.mr = 4;
    g.nr = 4;
    g.uk = es == 4 ? uk_f32_generic : uk_f64_generic;
    return g;
}

/* ---- packing ------------------------------------------------------------ */

/* Rows [i0, i0+mc) x columns [k0, k0+kc) of a (ld lda) into panels of mr
 * rows: dst[(p*kc + k)*mr + r]; rows past mc are zero.  With a table lut
 * (es-typed values of the 256 byte codes), a holds uint8 codes and each
 * element is decoded as it is packed. */
static void pack_a(const void *a, const void *lut, int es, int64_t lda,
                   int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr,
                   void *dst)
{
    int64_t np = (mc + mr - 1) / mr;
    for (int64_t p = 0; p < np; p++) {
        for (int r = 0; r < mr; r++) {
            int64_t i = p * mr + r, off = (i0 + i) * lda + k0;
            if (es == 4) {
                float *d = (float *)dst + p * kc * mr + r;
                if (i >= mc) {
                    for (int64_t k = 0; k < kc; k++)
                        d[k * mr] = 0.0f;
                } else if (lut) {
                    const uint8_t *s = (const uint8_t *)a + off;
                    for (int64_t k = 0; k < kc; k++)
                        d[k * mr] = ((const float *)lut)[s[k]];
                } else {
                    const float *s = (const float *)a + off;
                    for (int64_t k = 0; k < kc; k++)
                        d[k * mr] = s[k];
                }
            } else {
                double *d = (double *)dst + p * kc * mr + r;
                if (i >= mc) {
                    for (int64_t k = 0; k < kc; k++)
                        d[k * mr] = 0.0;
                } else if (lut) {
                    const uint8_t *s = (const uint8_t *)a + off;
                    for (int64_t k = 0; k < kc; k++)
                        d[k * mr] = ((const double *)lut)[s[k]];
                } else {
                    const double *s = (const double *)a + off;
                    for (int64_t k = 0; k < kc; k++)
                        d[k * mr] = s[k];
                }
            }
        }
    }
}

/* Rows [k0, k0+kc) of b (k x n, ld n) into panels of nr columns, panels
 * [jp0, jp1): dst[(jp*kc + k)*nr + q]; columns past n are zero.  lut as
 * for pack_a. */
static void pack_b(const void *b, const void *lut, int es, int64_t n,
                   int64_t k0, int64_t kc, int nr, void *dst, int64_t jp0,
                   int64_t jp1)
{
    for (int64_t jp = jp0; jp < jp1; jp++) {
        int64_t j0 = jp * nr;
        int64_t cols = n - j0 < nr ? n - j0 : nr;
        for (int64_t k = 0; k < kc; k++) {
            int64_t off = (k0 + k) * n + j0;
            const uint8_t *c = (const uint8_t *)b + off;
            if (es == 4) {
                float *d = (float *)dst + (jp * kc + k) * nr;
                const float *s = (const float *)b + off;
                const float *t = lut;
                for (int q = 0; q < nr; q++)
                    d[q] = q >= cols ? 0.0f : lut ? t[c[q]] : s[q];
            } else {
                double *d = (double *)dst + (jp * kc + k) * nr;
                const double *s = (const double *)b + off;
                const double *t = lut;
                for (int q = 0; q < nr; q++)
                    d[q] = q >= cols ? 0.0 : lut ? t[c[q]] : s[q];
            }
        }
    }
}

/* ---- exact combination of float64 partial products ---------------------- */

typedef unsigned __int128 lp_u128;
typedef __int128 lp_i128;

/* 2^e as a double, -1022 <= e <= 1023. */
static double pow2(int32_t e)
{
    uint64_t bits = (uint64_t)(e + 1023) << 52;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* The float32 format and round-to-nearest-even, for the core. */
static void f32_format(lp_format *f, lp_opts *o)
{
    memset(f, 0, sizeof *f);
    f->kind = LP_FLOAT;
    f->ebits = 8;
    f->mbits = 23;
    f->bias = 127;
    f->infs = 1;
    f->nans = LP_NANS_IEEE;
    f->negzero = 1;
    f->subnormals = 1;
    f->is_signed = 1;
    lp_format_init(f);
    memset(o, 0, sizeof *o);
    o->rounding = LP_RNE;
    o->keep_subnormals = 1;
    o->rbits = 64;
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
        float r = (float)((double)(float)sig * pow2(e));
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
static float planes_to_f32(const lp_format *f, const lp_opts *o, int64_t hi,
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
        return (float)(sum * pow2(u));
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
        double z = (p[j] * ra) * pow2(-ub[j]);
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

typedef void (*exact_row_fn)(const double *p, double ra, const int32_t *ub,
                             int64_t n, int64_t *lo, int64_t *hi);

static exact_row_fn exact_row_for(int isa)
{
#if LP_X86
    if (lp_matmul_isa(isa) == LP_ISA_AVX512)
        return exact_add_row_avx512;
#endif
    (void)isa;
    return exact_add_row;
}

/* ---- the blocked driver ------------------------------------------------- */

/* What happens at the end of each block of bk steps. */
enum { EPI_SCALE = 0,   /* p (rounded to float32) into the scale epilogue  */
       EPI_RAW = 1,     /* p stored as it is (no blocks)                   */
       EPI_EXACT = 2 }; /* p added exactly into int64 planes; after the sub
                           blocks of a block, rounded once and scaled      */

typedef struct gemm_job {
    const gemm_kernel *g;
    int64_t m, n, k, bk, nb;
    int mode;
    const float *as, *bs;   /* scales: m x nb and nb x n                   */
    void *c;                /* float32 m x n, or raw: element type m x n   */
    void *pbuf;             /* partial sums of blocks spanning chunks      */
    int64_t row0, row1;     /* the rows of this call (pbuf, xbuf)          */
    /* EPI_EXACT: bk is a sub-block; sub of them make a block */
    int64_t sub;
    const int32_t *ua, *ub; /* units 2^(ua[i] + ub[j]) of the sub-blocks   */
    int64_t *xbuf;          /* low and high planes, rows [row0, row1)      */
    const void *alut;       /* NULL, or a holds byte codes of these values */
    exact_row_fn exact_row;
    lp_format f32;
    lp_opts o32;
} gemm_job;

/* End of the K chunk that starts at k0: whole blocks when they fit in kcmax,
 * else near-equal pieces of one block, so no block straddles a chunk edge
 * unless it is longer than kcmax. */
static int64_t chunk_end(int64_t k0, int64_t k, int64_t bk, int64_t kcmax)
{
    int64_t end;
    if (bk <= kcmax) {
        end = k0 + (kcmax / bk) * bk;
    } else {
        int64_t bstart = (k0 / bk) * bk;
        int64_t pieces = (bk + kcmax - 1) / kcmax;
        int64_t plen = (bk + pieces - 1) / pieces;
        int64_t idx = (k0 - bstart) / plen;
        end = bstart + (idx + 1) * plen;
        if (end > bstart + bk)
            end = bstart + bk;
    }
    return end < k ? end : k;
}

/* The end of block blk of an MR x NR tile whose sums are in ct:
 *   EPI_SCALE  t = R32(R32(p) * R32(as[i,b] * bs[b,j])); c = t for b = 0,
 *              else R32(c + t)
 *   EPI_EXACT  the exact float64 sum of the sub-block is added into the
 *              int64 planes; after the last sub-block of block b, their
 *              value is rounded once to float32 and goes to the same
 *              epilogue. */
static void block_end(const gemm_job *J, const void *ct, int64_t i, int rows,
                      int64_t j0, int cols, int64_t blk)
{
    const int nr = J->g->nr, es = J->g->es;
    float p[64];
    int64_t ob = blk;
    int last = 1;
    if (J->mode == EPI_EXACT) {
        ob = blk / J->sub;
        last = blk % J->sub == J->sub - 1;
    }
    for (int r = 0; r < rows; r++) {
        if (J->mode == EPI_EXACT) {
            int64_t plane = (J->row1 - J->row0) * J->n;
            int64_t *lo = J->xbuf + (i + r - J->row0) * J->n + j0;
            int64_t *hi = lo + plane;
            if (blk % J->sub == 0) {
                memset(lo, 0, (size_t)cols * sizeof *lo);
                memset(hi, 0, (size_t)cols * sizeof *hi);
            }
            J->exact_row((const double *)ct + r * nr, pow2(-J->ua[i + r]),
                         J->ub + j0, cols, lo, hi);
            if (!last)
                continue;
            for (int q = 0; q < cols; q++)
                p[q] = planes_to_f32(&J->f32, &J->o32, hi[q], lo[q],
                                     J->ua[i + r] + J->ub[j0 + q]);
        } else if (es == 4) {
            memcpy(p, (const float *)ct + r * nr, (size_t)cols * sizeof *p);
        } else {
            for (int q = 0; q < cols; q++)
                p[q] = (float)((const double *)ct)[r * nr + q];
        }
        float sa = J->as[(i + r) * J->nb + ob];
        const float *sb = J->bs + ob * J->n + j0;
        float *cr = (float *)J->c + (i + r) * J->n + j0;
        if (ob == 0)
            for (int q = 0; q < cols; q++)
                cr[q] = p[q] * (sa * sb[q]);
        else
            for (int q = 0; q < cols; q++)
                cr[q] = cr[q] + p[q] * (sa * sb[q]);
    }
}

/* One MR x NR tile over the chunk [k0, k1): runs each block piece through
 * the micro-kernel and either applies the block epilogue
 *     t = R32(R32(p) * R32(as[i,b] * bs[b,j])),  c = (b == 0) ? t : R32(c + t)
 * or saves the partial sum for the next chunk. */
static void run_tile(const gemm_job *J, const char *app, const char *bpp,
                     int64_t k0, int64_t k1, int64_t i, int rows, int64_t j0,
                     int cols, void *ct)
{
    const gemm_kernel *g = J->g;
    const int mr = g->mr, nr = g->nr, es = g->es;
    const int edge = rows < mr || cols < nr;
    int64_t s1;
    for (int64_t s0 = k0; s0 < k1; s0 = s1) {
        int64_t blk = s0 / J->bk, bstart = blk * J->bk, bend = bstart + J->bk;
        s1 = k1 < bend ? k1 : bend;
        int start = s0 == bstart, end = s1 == bend;
        char *store;
        int64_t srow;
        if (J->mode == EPI_RAW) {
            store = J->c;
            srow = i;
        } else {
            store = J->pbuf;
            srow = i - J->row0;
        }
        if (!start) {
            if (edge)
                memset(ct, 0, (size_t)mr * nr * es);
            for (int r = 0; r < rows; r++)
                memcpy((char *)ct + (size_t)r * nr * es,
                       store + ((srow + r) * J->n + j0) * es,
                       (size_t)cols * es);
        }
        g->uk(s1 - s0, app + (s0 - k0) * mr * es, bpp + (s0 - k0) * nr * es,
              ct, start);
        if (end && J->mode != EPI_RAW) {
            block_end(J, ct, i, rows, j0, cols, blk);
        } else {
            for (int r = 0; r < rows; r++)
                memcpy(store + ((srow + r) * J->n + j0) * es,
                       (char *)ct + (size_t)r * nr * es, (size_t)cols * es);
        }
    }
}

/* kc: a B micro-panel (kc x nr) of about 192 KiB stays in L2 (long chunks
 * spare the round trips of C tiles through memory; measured faster than
 * L1-sized panels). */
static int64_t kc_max(const gemm_kernel *g)
{
    int64_t kcmax = 196608 / (g->nr * g->es);
    if (kcmax < 64)
        kcmax = 64;
    if (kcmax > 1024)
        kcmax = 1024;
    return kcmax;
}

static int64_t norm_bk(int64_t bk, int64_t k)
{
    if (bk <= 0 || bk > k)
        bk = k;
    return bk > 0 ? bk : 1;
}

int64_t lp_gemm_panels(int es, int isa, int64_t n)
{
    gemm_kernel g = pick_kernel(es, isa);
    return (n + g.nr - 1) / g.nr;
}

int64_t lp_gemm_pack_size(int es, int isa, int64_t k, int64_t n)
{
    gemm_kernel g = pick_kernel(es, isa);
    return k * ((n + g.nr - 1) / g.nr) * g.nr;
}

void lp_gemm_pack_b(int es, int isa, const void *b, const void *lut,
                    int64_t k, int64_t n, int64_t bk, void *bp, int64_t jp0,
                    int64_t jp1)
{
    gemm_kernel g = pick_kernel(es, isa);
    int64_t kcmax = kc_max(&g), npan = (n + g.nr - 1) / g.nr, k1;
    bk = norm_bk(bk, k);
    /* chunk by chunk: the chunk starting at k0 sits at k0 * npan * nr */
    for (int64_t k0 = 0; k0 < k; k0 = k1) {
        k1 = chunk_end(k0, k, bk, kcmax);
        pack_b(b, lut, es, n, k0, k1 - k0, g.nr,
               (char *)bp + k0 * npan * g.nr * es, jp0, jp1);
    }
}

static int gemm_drive(gemm_job *J, const void *a, const void *bp,
                      int64_t row0, int64_t row1)
{
    const gemm_kernel *g = J->g;
    const int mr = g->mr, nr = g->nr, es = g->es;
    const int64_t n = J->n, k = J->k;
    if (row1 <= row0 || n <= 0)
        return 0;
    if (k == 0) {
        /* No block: the sum is empty, +0. */
        int64_t osize = J->mode == EPI_RAW ? es : (int64_t)sizeof(float);
        memset((char *)J->c + row0 * n * osize, 0,
               (size_t)((row1 - row0) * n * osize));
        return 0;
    }
    /* mc: an A block (mc x kc) of about 384 KiB. */
    int64_t kcmax = kc_max(g);
    int64_t mcmax = (393216 / (kcmax * es)) / mr * mr;
    if (mcmax < mr)
        mcmax = mr;
    int64_t npan = (n + nr - 1) / nr;
    int64_t kcbuf = k < kcmax ? k : kcmax;   /* every chunk is <= kcmax */
    char *ap = malloc((size_t)mcmax * kcbuf * es);
    void *ct = NULL;
    J->pbuf = NULL;
    J->row0 = row0;
    J->xbuf = NULL;
    J->row1 = row1;
    int fail = !ap || posix_memalign(&ct, 64, (size_t)mr * nr * es);
    if (!fail && J->mode != EPI_RAW && J->bk > kcmax) {
        J->pbuf = malloc((size_t)(row1 - row0) * n * es);
        fail = J->pbuf == NULL;
    }
    if (!fail && J->mode == EPI_EXACT) {
        J->xbuf = malloc((size_t)(row1 - row0) * n * 2 * sizeof(int64_t));
        fail = J->xbuf == NULL;
    }
    if (fail) {
        free(ap);
        free(ct);
        free(J->pbuf);
        free(J->xbuf);
        return -1;
    }
    int64_t k1;
    for (int64_t k0 = 0; k0 < k; k0 = k1) {
        k1 = chunk_end(k0, k, J->bk, kcmax);
        int64_t kc = k1 - k0;
        const char *bpk = (const char *)bp + k0 * npan * nr * es;
        for (int64_t i0 = row0; i0 < row1; i0 += mcmax) {
            int64_t mc = row1 - i0 < mcmax ? row1 - i0 : mcmax;
            pack_a(a, J->alut, es, k, i0, mc, k0, kc, mr, ap);
            for (int64_t jp = 0; jp < npan; jp++) {
                int64_t j0 = jp * nr;
                int cols = (int)(n - j0 < nr ? n - j0 : nr);
                const char *bpp = bpk + jp * kc * nr * es;
                for (int64_t ip = 0; ip * mr < mc; ip++) {
                    int64_t i = i0 + ip * mr;
                    int rows = (int)(i0 + mc - i < mr ? i0 + mc - i : mr);
                    run_tile(J, ap + ip * kc * mr * es, bpp, k0, k1, i, rows,
                             j0, cols, ct);
                }
            }
        }
    }
    free(ap);
    free(ct);
    free(J->pbuf);
    free(J->xbuf);
    return 0;
}

int lp_gemm_f32(const void *a, const float *alut, const float *bp,
                int64_t m, int64_t n, int64_t k, int64_t bk, const float *as,
                const float *bs, float *c, int64_t row0, int64_t row1,
                int isa)
{
    gemm_kernel g = pick_kernel(4, isa);
    gemm_job J;
    memset(&J, 0, sizeof J);
    J.g = &g;
    J.m = m;
    J.n = n;
    J.k = k;
    J.bk = norm_bk(bk, k);
    J.nb = k > 0 ? k / J.bk : 0;
    J.as = as;
    J.bs = bs;
    J.c = c;
    J.mode = EPI_SCALE;
    J.alut = alut;
    return gemm_drive(&J, a, bp, row0, row1);
}

int lp_gemm_f64(const void *a, const double *alut, const double *bp,
                int64_t m, int64_t n, int64_t k, int64_t bk, const float *as,
                const float *bs, void *c, int64_t row0, int64_t row1,
                int isa)
{
    gemm_kernel g = pick_kernel(8, isa);
    gemm_job J;
    memset(&J, 0, sizeof J);
    J.g = &g;
    J.m = m;
    J.n = n;
    J.k = k;
    J.mode = as == NULL ? EPI_RAW : EPI_SCALE;
    J.alut = alut;
    J.bk = norm_bk(J.mode == EPI_RAW ? 0 : bk, k);
    J.nb = k > 0 ? k / J.bk : 0;
    J.as = as;
    J.bs = bs;
    J.c = c;
    return gemm_drive(&J, a, bp, row0, row1);
}

int lp_gemm_f64_exact(const double *a, const double *bp, int64_t m,
                      int64_t n, int64_t k, int64_t bk, int64_t sub,
                      const int32_t *ua, const int32_t *ub, const float *as,
                      const float *bs, float *c, int64_t row0, int64_t row1,
                      int isa)
{
    gemm_kernel g = pick_kernel(8, isa);
    gemm_job J;
    memset(&J, 0, sizeof J);
    J.g = &g;
    J.m = m;
    J.n = n;
    J.k = k;
    J.mode = EPI_EXACT;
    J.bk = norm_bk(bk, k);
    J.sub = sub > 0 ? sub : 1;
    J.nb = k > 0 ? k / (J.bk * J.sub) : 0;
    J.as = as;
    J.bs = bs;
    J.c = c;
    J.ua = ua;
    J.ub = ub;
    J.exact_row = exact_row_for(lp_matmul_isa(isa));
    f32_format(&J.f32, &J.o32);
    return gemm_drive(&J, a, bp, row0, row1);
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
                double hi = (double)(int64_t)(rem * pow2(-P)) * pow2(P);
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

int lp_exact_dot(const double *a, const double *bt, int64_t m, int64_t n,
                 int64_t k, int64_t k0, int64_t k1, int32_t lo, int32_t nlimbs,
                 float *out, int64_t row0, int64_t row1)
{
    lp_format f;
    lp_opts o;
    f32_format(&f, &o);
    int64_t *l = malloc((size_t)nlimbs * sizeof *l);
    if (!l)
        return -1;
    int bad = 0;
    for (int64_t i = row0; i < row1; i++) {
        const double *ar = a + i * k;
        for (int64_t j = 0; j < n; j++) {
            const double *br = bt + j * k;
            memset(l, 0, (size_t)nlimbs * sizeof *l);
            for (int64_t kk = k0; kk < k1; kk++) {
                double x = ar[kk] * br[kk];
                if (x == 0)
                    continue;
                uint64_t bits;
                memcpy(&bits, &x, sizeof bits);
                int field = (int)((bits >> 52) & 0x7FF);
                if (field == 0x7FF) {
                    bad = 1;
                    continue;
                }
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
                if (w + 2 >= nlimbs) {
                    bad = 1;
                    continue;
                }
                if (bits >> 63) {
                    l[w] -= c0;
                    l[w + 1] -= c1;
                    l[w + 2] -= c2;
                } else {
                    l[w] += c0;
                    l[w + 1] += c1;
                    l[w + 2] += c2;
                }
            }
            out[i * n + j] = limbs_to_f32(&f, &o, l, nlimbs, lo);
        }
    }
    free(l);
    return bad;
}

/* ---- sequential accumulation in any float format ------------------------ */

/* Exact zero sum: IEEE 754 6.3, the sign of x + y when the exact sum is 0. */
static int zero_sum_sign(double x, double y, int mode)
{
    int sx = signbit(x) != 0, sy = signbit(y) != 0;
    if (x == 0 && y == 0)
        return mode == LP_RD ? (sx | sy) : (sx & sy);
    return mode == LP_RD;
}

/* Value of a code: table for formats up to 16 bits. */
static double code_value(const lp_format *f, const double *lut, int64_t code)
{
    return lut ? lut[code] : lp_decode_one(f, code);
}

/* One step acc <- round_f(acc + x) with x = a*b exact.  Returns the code. */
static int64_t accumulate_step(const lp_format *f, const lp_opts *o,
                               const lp_opts *o_rz, const lp_opts *o_up,
                               const lp_opts *o_dn, const lp_opts *o_free,
                               double acc, double x, uint64_t key,
                               int64_t index, const double *lut, int *err)
{
    uint64_t rnd = o->rounding == LP_SR ? lp_random_keyed(key, index) : 0;
    if (isnan(acc) || isnan(x))
        return lp_round_any(f, o, 2, 0, 0, 0, rnd, err);
    if (isinf(acc) || isinf(x)) {
        if (isinf(acc) && isinf(x) && signbit(acc) != signbit(x))
            return lp_round_any(f, o, 2, 0, 0, 0, rnd, err);
        int sign = isinf(acc) ? signbit(acc) != 0 : signbit(x) != 0;
        return lp_round_any(f, o, 1, sign, 0, 0, rnd, err);
    }
    /* 1. s = RN64(acc + x) and the exact error e (TwoSum): acc + x = s + e. */
    double s = acc + x;
    double bb = s - acc;
    double e = (acc - (s - bb)) + (x - bb);
    if (s == 0 && e == 0)
        return lp_round_any(f, o, 0, zero_sum_sign(acc, x, o->rounding), 0, 0,
                            rnd, err);
    uint64_t bits;
    memcpy(&bits, &s, sizeof bits);
    int sign = 0;
    int32_t exp = 0;
    uint64_t sig = 0;
    lp_unpack_bits(bits, 11, 52, &sign, &exp, &sig);
    if (e == 0)
        return lp_round_any(f, o, 0, sign, exp, sig, rnd, err);
    /* 2. Inexact in float64: s with one more bit 2^-11 ulp below, +1 when e
     *    pushes away from zero, -1 toward it.  No rounding boundary of a
     *    format of <= 24 bits lies strictly between x and this value, so
     *    every mode but stochastic rounds both alike.
     *    fp16 acc 2048 + 2^-30: s = 2048, sig = 2^63 + 1 at exp -74. */
    int away_from_zero = (e > 0) == !sign;
    uint64_t sigj = (sig << 11) + (away_from_zero ? 1 : (uint64_t)-1);
    int32_t expj = exp - 11;
    if (o->rounding != LP_SR)
        return lp_round_any(f, o, 0, sign, expj, sigj, 0, err);
    /* 3. Stochastic: the lower neighbour (toward zero) and the fraction
     *    d = (|acc + x| - |lower|) / gap, floor(d * 2^64) computed from s and
     *    e exactly; round away iff r < floor(d * 2^rbits). */
    int e2 = 0;
    int64_t lower = lp_round_any(f, o_free, 0, sign, expj, sigj, 0, &e2);
    double lv = fabs(code_value(f, lut, lower));
    int32_t top = expj + 63 - __builtin_clzll(sigj);
    int32_t q = (top > f->emin ? top : f->emin) - f->mbits;
    double gap = ldexp(1.0, q);
    double as = fabs(s), ea = sign ? -e : e;    /* e toward |x| */
    const lp_opts *up = sign ? o_dn : o_up;
    if (as > lv + gap || (as == lv + gap && ea > 0))
        return lp_round_any(f, up, 0, sign, expj, sigj, 0, err);
    double D = ldexp(as - lv, 64 - q);           /* exact */
    double fD = floor(D);
    lp_i128 r = (lp_i128)fD;
    if (D == fD) {
        /* floor(e * 2^(64-q)); a tiny negative e that underflows is -1. */
        if (ea > 0) {
            r += (lp_i128)floor(ldexp(ea, 64 - q));
        } else {
            double up_ = ceil(ldexp(-ea, 64 - q));
            r -= up_ > 0 ? (lp_i128)up_ : 1;
        }
    }
    uint64_t d = r < 0 ? 0
               : r > (lp_i128)UINT64_MAX ? UINT64_MAX : (uint64_t)r;
    int rb = o->rbits;
    int away = (rnd >> (64 - rb)) < (d >> (64 - rb));
    (void)o_rz;
    if (away)
        return lp_round_any(f, up, 0, sign, expj, sigj, 0, err);
    return lp_round_any(f, o_rz, 0, sign, expj, sigj, 0, err);
}

int lp_accumulate(const lp_format *f, const lp_opts *o, const double *a,
                  const double *bt, int64_t m, int64_t n, int64_t k,
                  int64_t k0, int64_t k1, int64_t index0, double *out,
                  int64_t row0, int64_t row1)
{
    double *lut = NULL;
    if (f->nbits <= 16) {
        int64_t entries = (int64_t)1 << f->nbits;
        lut = malloc((size_t)entries * sizeof *lut);
        if (!lut)
            return -1;
        for (int64_t c = 0; c < entries; c++)
            lut[c] = lp_decode_one(f, c);
    }
    lp_opts o_rz = *o, o_up = *o, o_dn = *o, o_free = *o;
    o_rz.rounding = LP_RZ;
    o_up.rounding = LP_RU;
    o_dn.rounding = LP_RD;
    o_free.rounding = LP_RZ;
    o_free.keep_subnormals = 1;
    o_free.saturate = 1;
    uint64_t key = lp_mix64(o->seed);
    int err = 0;
    for (int64_t i = row0; i < row1; i++) {
        const double *ar = a + i * k;
        for (int64_t j = 0; j < n; j++) {
            const double *br = bt + j * k;
            int64_t base = index0 + (i * n + j) * k;
            double acc = 0.0;
            for (int64_t kk = k0; kk < k1; kk++) {
                int64_t code = accumulate_step(f, o, &o_rz, &o_up, &o_dn,
                                               &o_free, acc, ar[kk] * br[kk],
                                               key, base + kk, lut, &err);
                acc = code_value(f, lut, code);
            }
            out[i * n + j] = acc;
        }
    }
    free(lut);
    (void)m;
    return err;
}

/* ---- integer GEMM ----------------------------------------------------------
 * Operands widened to int16 and packed in pairs along k, so that one
 * multiply-add of pairs (vpmaddwd: a0*b0 + a1*b1, exact in 32 bits for
 * 8-bit operands) does two steps; sums wrap modulo 2^32 as int32. */

typedef void (*ikernel_fn)(int64_t kp, const int16_t *ap, const int16_t *bp,
                           int32_t *ct, int zero);

static void uk_i32_generic(int64_t kp, const int16_t *ap, const int16_t *bp,
                           int32_t *ct, int zero)
{
    uint32_t c[4][4];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            c[r][q] = zero ? 0 : (uint32_t)ct[r * 4 + q];
    for (int64_t k = 0; k < kp; k++)
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                c[r][q] += (uint32_t)((int32_t)ap[(k * 4 + r) * 2]
                                      * bp[(k * 4 + q) * 2]
                                      + (int32_t)ap[(k * 4 + r) * 2 + 1]
                                      * bp[(k * 4 + q) * 2 + 1]);
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            ct[r * 4 + q] = (int32_t)c[r][q];
}

#if LP_X86
__attribute__((target("avx2")))
static void uk_i32_avx2(int64_t kp, const int16_t *ap, const int16_t *bp,
                        int32_t *ct, int zero)
{
    __m256i c00, c01;
    __m256i c10, c11;
    __m256i c20, c21;
    __m256i c30, c31;
    __m256i c40, c41;
    __m256i c50, c51;
    if (zero) {
        c00 = _mm256_setzero_si256(); c01 = _mm256_setzero_si256();
        c10 = _mm256_setzero_si256(); c11 = _mm256_setzero_si256();
        c20 = _mm256_setzero_si256(); c21 = _mm256_setzero_si256();
        c30 = _mm256_setzero_si256(); c31 = _mm256_setzero_si256();
        c40 = _mm256_setzero_si256(); c41 = _mm256_setzero_si256();
        c50 = _mm256_setzero_si256(); c51 = _mm256_setzero_si256();
    } else {
        c00 = _mm256_loadu_si256((const __m256i *)(ct + 0));
        c01 = _mm256_loadu_si256((const __m256i *)(ct + 8));
        c10 = _mm256_loadu_si256((const __m256i *)(ct + 16));
        c11 = _mm256_loadu_si256((const __m256i *)(ct + 24));
        c20 = _mm256_loadu_si256((const __m256i *)(ct + 32));
        c21 = _mm256_loadu_si256((const __m256i *)(ct + 40));
        c30 = _mm256_loadu_si256((const __m256i *)(ct + 48));
        c31 = _mm256_loadu_si256((const __m256i *)(ct + 56));
        c40 = _mm256_loadu_si256((const __m256i *)(ct + 64));
        c41 = _mm256_loadu_si256((const __m256i *)(ct + 72));
        c50 = _mm256_loadu_si256((const __m256i *)(ct + 80));
        c51 = _mm256_loadu_si256((const __m256i *)(ct + 88));
    }
    for (int64_t k = 0; k < kp; k++) {
        const int16_t *b = bp + k * 32;
        const int16_t *a = ap + k * 12;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + 0));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        int32_t pair;
        __m256i x;
        memcpy(&pair, a + 0, sizeof pair);
        x = _mm256_set1_epi32(pair);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, b0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a + 2, sizeof pair);
        x = _mm256_set1_epi32(pair);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, b0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a + 4, sizeof pair);
        x = _mm256_set1_epi32(pair);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, b0));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a + 6, sizeof pair);
        x = _mm256_set1_epi32(pair);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, b0));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a + 8, sizeof pair);
        x = _mm256_set1_epi32(pair);
        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(x, b0));
        c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(x, b1));
        memcpy(&pair, a + 10, sizeof pair);
        x = _mm256_set1_epi32(pair);
        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(x, b0));
        c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(x, b1));
    }
    _mm256_storeu_si256((__m256i *)(ct + 0), c00);
    _mm256_storeu_si256((__m256i *)(ct + 8), c01);
    _mm256_storeu_si256((__m256i *)(ct + 16), c10);
    _mm256_storeu_si256((__m256i *)(ct + 24), c11);
    _mm256_storeu_si256((__m256i *)(ct + 32), c20);
    _mm256_storeu_si256((__m256i *)(ct + 40), c21);
    _mm256_storeu_si256((__m256i *)(ct + 48), c30);
    _mm256_storeu_si256((__m256i *)(ct + 56), c31);
    _mm256_storeu_si256((__m256i *)(ct + 64), c40);
    _mm256_storeu_si256((__m256i *)(ct + 72), c41);
    _mm256_storeu_si256((__m256i *)(ct + 80), c50);
    _mm256_storeu_si256((__m256i *)(ct + 88), c51);
}

__attribute__((target("avx512f,avx512bw")))
static void uk_i32_avx512(int64_t kp, const int16_t *ap, const int16_t *bp,
                          int32_t *ct, int zero)
{
    __m512i c00, c01, c02;
    __m512i c10, c11, c12;
    __m512i c20, c21, c22;
    __m512i c30, c31, c32;
    __m512i c40, c41, c42;
    __m512i c50, c51, c52;
    __m512i c60, c61, c62;
    __m512i c70, c71, c72;
    if (zero) {
        c00 = _mm512_setzero_si512();
        c01 = _mm512_setzero_si512();
        c02 = _mm512_setzero_si512();
        c10 = _mm512_setzero_si512();
        c11 = _mm512_setzero_si512();
        c12 = _mm512_setzero_si512();
        c20 = _mm512_setzero_si512();
        c21 = _mm512_setzero_si512();
        c22 = _mm512_setzero_si512();
        c30 = _mm512_setzero_si512();
        c31 = _mm512_setzero_si512();
        c32 = _mm512_setzero_si512();
        c40 = _mm512_setzero_si512();
        c41 = _mm512_setzero_si512();
        c42 = _mm512_setzero_si512();
        c50 = _mm512_setzero_si512();
        c51 = _mm512_setzero_si512();
        c52 = _mm512_setzero_si512();
        c60 = _mm512_setzero_si512();
        c61 = _mm512_setzero_si512();
        c62 = _mm512_setzero_si512();
        c70 = _mm512_setzero_si512();
        c71 = _mm512_setzero_si512();
        c72 = _mm512_setzero_si512();
    } else {
        c00 = _mm512_loadu_si512((const void *)(ct + 0));
        c01 = _mm512_loadu_si512((const void *)(ct + 16));
        c02 = _mm512_loadu_si512((const void *)(ct + 32));
        c10 = _mm512_loadu_si512((const void *)(ct + 48));
        c11 = _mm512_loadu_si512((const void *)(ct + 64));
        c12 = _mm512_loadu_si512((const void *)(ct + 80));
        c20 = _mm512_loadu_si512((const void *)(ct + 96));
        c21 = _mm512_loadu_si512((const void *)(ct + 112));
        c22 = _mm512_loadu_si512((const void *)(ct + 128));
        c30 = _mm512_loadu_si512((const void *)(ct + 144));
        c31 = _mm512_loadu_si512((const void *)(ct + 160));
        c32 = _mm512_loadu_si512((const void *)(ct + 176));
        c40 = _mm512_loadu_si512((const void *)(ct + 192));
        c41 = _mm512_loadu_si512((const void *)(ct + 208));
        c42 = _mm512_loadu_si512((const void *)(ct + 224));
        c50 = _mm512_loadu_si512((const void *)(ct + 240));
        c51 = _mm512_loadu_si512((const void *)(ct + 256));
        c52 = _mm512_loadu_si512((const void *)(ct + 272));
        c60 = _mm512_loadu_si512((const void *)(ct + 288));
        c61 = _mm512_loadu_si512((const void *)(ct + 304));
        c62 = _mm512_loadu_si512((const void *)(ct + 320));
        c70 = _mm512_loadu_si512((const void *)(ct + 336));
        c71 = _mm512_loadu_si512((const void *)(ct + 352));
        c72 = _mm512_loadu_si512((const void *)(ct + 368));
    }
    for (int64_t k = 0; k < kp; k++) {
        const int16_t *b = bp + k * 96;
        const int16_t *a = ap + k * 16;
        __m512i b0 = _mm512_loadu_si512((const void *)(b + 0));
        __m512i b1 = _mm512_loadu_si512((const void *)(b + 32));
        __m512i b2 = _mm512_loadu_si512((const void *)(b + 64));
        int32_t pair;
        __m512i x;
        memcpy(&pair, a + 0, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c00 = _mm512_add_epi32(c00, _mm512_madd_epi16(x, b0));
        c01 = _mm512_add_epi32(c01, _mm512_madd_epi16(x, b1));
        c02 = _mm512_add_epi32(c02, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 2, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c10 = _mm512_add_epi32(c10, _mm512_madd_epi16(x, b0));
        c11 = _mm512_add_epi32(c11, _mm512_madd_epi16(x, b1));
        c12 = _mm512_add_epi32(c12, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 4, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c20 = _mm512_add_epi32(c20, _mm512_madd_epi16(x, b0));
        c21 = _mm512_add_epi32(c21, _mm512_madd_epi16(x, b1));
        c22 = _mm512_add_epi32(c22, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 6, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c30 = _mm512_add_epi32(c30, _mm512_madd_epi16(x, b0));
        c31 = _mm512_add_epi32(c31, _mm512_madd_epi16(x, b1));
        c32 = _mm512_add_epi32(c32, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 8, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c40 = _mm512_add_epi32(c40, _mm512_madd_epi16(x, b0));
        c41 = _mm512_add_epi32(c41, _mm512_madd_epi16(x, b1));
        c42 = _mm512_add_epi32(c42, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 10, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c50 = _mm512_add_epi32(c50, _mm512_madd_epi16(x, b0));
        c51 = _mm512_add_epi32(c51, _mm512_madd_epi16(x, b1));
        c52 = _mm512_add_epi32(c52, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 12, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c60 = _mm512_add_epi32(c60, _mm512_madd_epi16(x, b0));
        c61 = _mm512_add_epi32(c61, _mm512_madd_epi16(x, b1));
        c62 = _mm512_add_epi32(c62, _mm512_madd_epi16(x, b2));
        memcpy(&pair, a + 14, sizeof pair);
        x = _mm512_set1_epi32(pair);
        c70 = _mm512_add_epi32(c70, _mm512_madd_epi16(x, b0));
        c71 = _mm512_add_epi32(c71, _mm512_madd_epi16(x, b1));
        c72 = _mm512_add_epi32(c72, _mm512_madd_epi16(x, b2));
    }
    _mm512_storeu_si512((void *)(ct + 0), c00);
    _mm512_storeu_si512((void *)(ct + 16), c01);
    _mm512_storeu_si512((void *)(ct + 32), c02);
    _mm512_storeu_si512((void *)(ct + 48), c10);
    _mm512_storeu_si512((void *)(ct + 64), c11);
    _mm512_storeu_si512((void *)(ct + 80), c12);
    _mm512_storeu_si512((void *)(ct + 96), c20);
    _mm512_storeu_si512((void *)(ct + 112), c21);
    _mm512_storeu_si512((void *)(ct + 128), c22);
    _mm512_storeu_si512((void *)(ct + 144), c30);
    _mm512_storeu_si512((void *)(ct + 160), c31);
    _mm512_storeu_si512((void *)(ct + 176), c32);
    _mm512_storeu_si512((void *)(ct + 192), c40);
    _mm512_storeu_si512((void *)(ct + 208), c41);
    _mm512_storeu_si512((void *)(ct + 224), c42);
    _mm512_storeu_si512((void *)(ct + 240), c50);
    _mm512_storeu_si512((void *)(ct + 256), c51);
    _mm512_storeu_si512((void *)(ct + 272), c52);
    _mm512_storeu_si512((void *)(ct + 288), c60);
    _mm512_storeu_si512((void *)(ct + 304), c61);
    _mm512_storeu_si512((void *)(ct + 320), c62);
    _mm512_storeu_si512((void *)(ct + 336), c70);
    _mm512_storeu_si512((void *)(ct + 352), c71);
    _mm512_storeu_si512((void *)(ct + 368), c72);
}
#endif

static int16_t load_i8(const void *p, int is_unsigned, int64_t idx)
{
    return is_unsigned ? (int16_t)((const uint8_t *)p)[idx]
                       : (int16_t)((const int8_t *)p)[idx];
}

int lp_gemm_i32(const void *a, int a_unsigned, const void *b, int b_unsigned,
                int64_t m, int64_t n, int64_t k, int32_t *c, int64_t row0,
                int64_t row1, int isa)
{
    int mr = 4, nr = 4;
    ikernel_fn uk = uk_i32_generic;
    isa = lp_matmul_isa(isa);
#if LP_X86
    if (isa == LP_ISA_AVX512) {
        mr = 8;
        nr = 48;
        uk = uk_i32_avx512;
    } else if (isa == LP_ISA_AVX2) {
        mr = 6;
        nr = 16;
        uk = uk_i32_avx2;
    }
#endif
    (void)m;
    if (row1 <= row0 || n <= 0)
        return 0;
    if (k == 0) {
        memset(c + row0 * n, 0, (size_t)(row1 - row0) * n * sizeof *c);
        return 0;
    }
    /* Chunks of kc (even) steps: a B micro-panel of about 24 KiB. */
    int64_t kcmax = (24576 / (nr * 2)) & ~(int64_t)1;
    if (kcmax > 1024)
        kcmax = 1024;
    int64_t mcmax = (393216 / (kcmax * 2)) / mr * mr;
    int64_t npan = (n + nr - 1) / nr;
    int64_t kcb = k < kcmax ? k + (k & 1) : kcmax;
    int16_t *bp = malloc((size_t)(npan * nr) * kcb * sizeof *bp);
    int16_t *ap = malloc((size_t)mcmax * kcb * sizeof *ap);
    int32_t *ct = malloc((size_t)mr * nr * sizeof *ct);
    if (!bp || !ap || !ct) {
        free(bp);
        free(ap);
        free(ct);
        return -1;
    }
    for (int64_t k0 = 0; k0 < k; k0 += kcmax) {
        int64_t kc = k - k0 < kcmax ? k - k0 : kcmax;
        int64_t kp = (kc + 1) / 2;
        /* B: bp[((jp*kp + t)*nr + q)*2 + h] = b[k0 + 2t + h][jp*nr + q] */
        for (int64_t jp = 0; jp < npan; jp++) {
            for (int64_t t = 0; t < kp; t++) {
                int16_t *d = bp + (jp * kp + t) * nr * 2;
                for (int q = 0; q < nr; q++) {
                    int64_t j = jp * nr + q;
                    for (int h = 0; h < 2; h++) {
                        int64_t kk = k0 + 2 * t + h;
                        d[q * 2 + h] = (j < n && kk < k0 + kc)
                                       ? load_i8(b, b_unsigned, kk * n + j)
                                       : 0;
                    }
                }
            }
        }
        for (int64_t i0 = row0; i0 < row1; i0 += mcmax) {
            int64_t mc = row1 - i0 < mcmax ? row1 - i0 : mcmax;
            int64_t np = (mc + mr - 1) / mr;
            /* A: ap[((p*kp + t)*mr + r)*2 + h]
             *      = a[i0 + p*mr + r][k0 + 2t + h] */
            for (int64_t p = 0; p < np; p++) {
                for (int r = 0; r < mr; r++) {
                    int64_t i = p * mr + r;
                    for (int64_t t = 0; t < kp; t++) {
                        for (int h = 0; h < 2; h++) {
                            int64_t kk = k0 + 2 * t + h;
                            ap[((p * kp + t) * mr + r) * 2 + h] =
                                (i < mc && kk < k0 + kc)
                                ? load_i8(a, a_unsigned, (i0 + i) * k + kk)
                                : 0;
                        }
                    }
                }
            }
            for (int64_t jp = 0; jp < npan; jp++) {
                int64_t j0 = jp * nr;
                int cols = (int)(n - j0 < nr ? n - j0 : nr);
                for (int64_t p = 0; p < np; p++) {
                    int64_t i = i0 + p * mr;
                    int rows = (int)(i0 + mc - i < mr ? i0 + mc - i : mr);
                    if (k0 > 0) {
                        memset(ct, 0, (size_t)mr * nr * sizeof *ct);
                        for (int r = 0; r < rows; r++)
                            memcpy(ct + r * nr, c + (i + r) * n + j0,
                                   (size_t)cols * sizeof *ct);
                    }
                    uk(kp, ap + p * kp * mr * 2, bp + jp * kp * nr * 2, ct,
                       k0 == 0);
                    for (int r = 0; r < rows; r++)
                        memcpy(c + (i + r) * n + j0, ct + r * nr,
                               (size_t)cols * sizeof *ct);
                }
            }
        }
    }
    free(bp);
    free(ap);
    free(ct);
    return 0;
}

/* ---- block epilogue ----------------------------------------------------- */

void lp_scale_acc(const float *p, const float *as, const float *bs,
                  int64_t n, int64_t nb, int64_t blk, float *c, int64_t row0,
                  int64_t row1)
{
    for (int64_t i = row0; i < row1; i++) {
        float sa = as[i * nb + blk];
        const float *sb = bs + blk * n;
        const float *pr = p + i * n;
        float *cr = c + i * n;
        if (blk == 0)
            for (int64_t j = 0; j < n; j++)
                cr[j] = pr[j] * (sa * sb[j]);
        else
            for (int64_t j = 0; j < n; j++)
                cr[j] = cr[j] + pr[j] * (sa * sb[j]);
    }
}
