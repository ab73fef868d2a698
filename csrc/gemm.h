/* gemm.h -- the pieces of the GEMM shared between its files (internal).
 *
 *   gemm_isa.c      which instruction set a kernel runs, and its kernel
 *   gemm_tile.h     the register-tiled micro-kernels: one body per element
 *                   type, compiled once per instruction set by
 *                   gemm_kernel_base.c, gemm_kernel_avx2.c,
 *                   gemm_kernel_avx512.c
 *   gemm.c          packing, the one blocked driver of every GEMM (float32,
 *                   float64, exact float64, int32) and the block epilogue
 *   exact.c         the exact sums: int64 planes, slices, long accumulator
 *   accumulate.c    sequential accumulation rounded to a format each step
 */
#ifndef LOWPREC_GEMM_H
#define LOWPREC_GEMM_H

#include <stdint.h>
#include <string.h>
#include "lowprec.h"

/* Element types of the packed operands. */
enum lp_gemm_elem {
    LP_EL_F32 = 0,   /* float, fused multiply-add per step                  */
    LP_EL_F64 = 1,   /* double                                              */
    LP_EL_I16 = 2    /* int16 in pairs along k, int32 sums modulo 2^32      */
};

/* uk(kc, ap, bp, ct, zero): the MR x NR tile ct (row-major, ld NR, elements
 * of cs bytes) is loaded (or zeroed), and for k = 0..kc-1 in order,
 * ct[r][q] += ap[k][r] * bp[k][q] (ap: kc x MR, bp: kc x NR, packed in
 * groups of kg steps: element (k, r) at ((k / kg) * MR + r) * kg + k % kg,
 * a short last group padded with zeros).  float: each step one fused
 * multiply-add, fmaf(a, b, c) = R32(c + a*b). */
typedef void (*lp_ukernel)(int64_t kc, const void *ap, const void *bp,
                           void *ct, int zero);

typedef struct lp_gemm_kernel {
    int mr, nr;     /* tile: rows of A, columns of B                       */
    int kg;         /* k steps per packed group: 1, or 2 (int16 pairs)     */
    int ps;         /* bytes of a packed element                           */
    int cs;         /* bytes of an accumulator (of C)                      */
    lp_ukernel uk;
} lp_gemm_kernel;

/* The tile height and widths and the micro-kernels of one instruction set,
 * indexed by enum lp_gemm_elem (gemm_tile.h, gemm_kernel_*.c). */
typedef struct lp_gemm_isa_kernels {
    int mr;
    int nr[3];
    lp_ukernel uk[3];
} lp_gemm_isa_kernels;

extern const lp_gemm_isa_kernels *const lp_gemm_kernels_base;
#if defined(__GNUC__) && defined(__x86_64__)
extern const lp_gemm_isa_kernels *const lp_gemm_kernels_avx2;
extern const lp_gemm_isa_kernels *const lp_gemm_kernels_avx512;
#endif

/* The micro-kernel of element type elem for ISA isa (lp_matmul_isa). */
lp_gemm_kernel lp_gemm_kernel_for(int elem, int isa);

/* ---- exact.c: what the driver's exact epilogue needs ---- */

/* Adds the exact float64 sums p[0..n) times 2^-ua (ra = 2^-ua) and 2^-ub[j]
 * into the int64 planes lo, hi (see exact.c). */
typedef void (*lp_exact_row_fn)(const double *p, double ra,
                                const int32_t *ub, int64_t n, int64_t *lo,
                                int64_t *hi);
lp_exact_row_fn lp_exact_row_for(int isa);

/* float32 and round-to-nearest-even, for the rounding core. */
void lp_f32_format(lp_format *f, lp_opts *o);

/* R32((hi * 2^52 + lo) * 2^u), the value of the two int64 planes. */
float lp_planes_to_f32(const lp_format *f, const lp_opts *o, int64_t hi,
                       int64_t lo, int32_t u);

/* 2^e as a double, -1022 <= e <= 1023. */
static inline double lp_pow2(int32_t e)
{
    uint64_t bits = (uint64_t)(e + 1023) << 52;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

#endif /* LOWPREC_GEMM_H */
