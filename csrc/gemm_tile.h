/* gemm_tile.h -- the one body of each micro-kernel (contract of lp_ukernel
 * in gemm.h), included by one file per instruction set:
 *
 *   gemm_kernel_avx512.c   64-byte vectors (zmm), tile 8 x 3 vectors
 *   gemm_kernel_avx2.c     32-byte vectors (ymm), tile 6 x 2 vectors
 *   gemm_kernel_base.c     16-byte vectors (xmm, baseline x86-64 or any
 *                          target GCC compiles for), tile 4 x 4 elements
 *
 * Why an included body rather than one file: the body is plain C on GCC
 * vector extensions, and a vector lives in registers only when its type is
 * as wide as the target's registers (a 64-byte vector on AVX2 is spilled to
 * the stack at every operation), so each instruction set needs its own
 * vector types, hence its own translation unit.  No macro templating: the
 * includer defines, before including this file,
 *
 *   typedefs  vec_f32, vec_f64, vec_u32, vec_i16 (the register's width)
 *   constants MR (rows of A in a tile), NV_F32, NV_F64, NV_I16 (vectors a
 *             row of the tile)
 *   steps     fma_f32(a, b, c), fma_f64(a, b, c): a * b + c, lane by lane
 *             (float32: fused, one rounding; float64: any, every caller's
 *             partial sums are exact); madd_i16(a, b): the int32 lanes
 *             a[2l] b[2l] + a[2l+1] b[2l+1] (vpmaddwd)
 *
 * and gets the static micro-kernels uk_f32, uk_f64, uk_i16 and their table
 * TILE_KERNELS.  With the shape constant, the tile loops unroll fully and
 * every accumulator stays in a register (checked in the objects: no stack
 * access in the k loop); each sees its k in increasing order, one step at
 * a time, whatever the tile: the "fp32" chain is the same on every ISA. */
#include <stdint.h>
#include <string.h>
#include "gemm.h"

enum {
    PF_STEPS = 8,    /* B is prefetched this many steps ahead (L2 to L1) */
    LANES_F32 = sizeof(vec_f32) / sizeof(float),
    LANES_F64 = sizeof(vec_f64) / sizeof(double),
    LANES_U32 = sizeof(vec_u32) / sizeof(uint32_t),
    NR_F32 = NV_F32 * LANES_F32,
    NR_F64 = NV_F64 * LANES_F64,
    NR_I16 = NV_I16 * LANES_U32
};

/* ct: MR x NR_F32 floats, row-major; ap: kc x MR; bp: kc x NR_F32.  Each
 * step c = fma_f32(a, b, c): fmaf, one rounding. */
static void uk_f32(int64_t kc, const void *ap_, const void *bp_, void *ct_,
                   int zero)
{
    const float *restrict ap = ap_, *restrict bp = bp_;
    float *restrict ct = ct_;
    vec_f32 c[MR][NV_F32];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_F32; v++) {
            if (zero)
                c[r][v] = (vec_f32){0};
            else
                memcpy(&c[r][v], ct + r * NR_F32 + v * LANES_F32,
                       sizeof c[r][v]);
        }
    for (int64_t k = 0; k < kc; k++) {
        vec_f32 b[NV_F32];
#pragma GCC unroll 4
        for (int v = 0; v < NV_F32; v++) {
            memcpy(&b[v], bp + k * NR_F32 + v * LANES_F32, sizeof b[v]);
            __builtin_prefetch(bp + (k + PF_STEPS) * NR_F32 + v * LANES_F32);
        }
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            /* a in every lane (a - 0 = a, also for a = -0) */
            vec_f32 x = ap[k * MR + r] - (vec_f32){0};
#pragma GCC unroll 4
            for (int v = 0; v < NV_F32; v++)
                c[r][v] = fma_f32(x, b[v], c[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_F32; v++)
            memcpy(ct + r * NR_F32 + v * LANES_F32, &c[r][v], sizeof c[r][v]);
}

/* The same in float64. */
static void uk_f64(int64_t kc, const void *ap_, const void *bp_, void *ct_,
                   int zero)
{
    const double *restrict ap = ap_, *restrict bp = bp_;
    double *restrict ct = ct_;
    vec_f64 c[MR][NV_F64];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_F64; v++) {
            if (zero)
                c[r][v] = (vec_f64){0};
            else
                memcpy(&c[r][v], ct + r * NR_F64 + v * LANES_F64,
                       sizeof c[r][v]);
        }
    for (int64_t k = 0; k < kc; k++) {
        vec_f64 b[NV_F64];
#pragma GCC unroll 4
        for (int v = 0; v < NV_F64; v++) {
            memcpy(&b[v], bp + k * NR_F64 + v * LANES_F64, sizeof b[v]);
            __builtin_prefetch(bp + (k + PF_STEPS) * NR_F64 + v * LANES_F64);
        }
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            /* a in every lane (a - 0 = a, also for a = -0) */
            vec_f64 x = ap[k * MR + r] - (vec_f64){0};
#pragma GCC unroll 4
            for (int v = 0; v < NV_F64; v++)
                c[r][v] = fma_f64(x, b[v], c[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_F64; v++)
            memcpy(ct + r * NR_F64 + v * LANES_F64, &c[r][v], sizeof c[r][v]);
}

/* int16 pairs along k (element (k, r) at ((k/2) MR + r) 2 + k%2): kc steps
 * are (kc + 1) / 2 pair steps, a pair of A (two int16) broadcast as one
 * 32-bit lane.  Sums wrap modulo 2^32 (unsigned lanes: no signed overflow
 * in C). */
static void uk_i16(int64_t kc, const void *ap_, const void *bp_, void *ct_,
                   int zero)
{
    const int16_t *restrict ap = ap_, *restrict bp = bp_;
    int32_t *restrict ct = ct_;
    const int64_t kp = (kc + 1) / 2;
    vec_u32 c[MR][NV_I16];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_I16; v++) {
            if (zero)
                c[r][v] = (vec_u32){0};
            else
                memcpy(&c[r][v], ct + r * NR_I16 + v * LANES_U32,
                       sizeof c[r][v]);
        }
    for (int64_t k = 0; k < kp; k++) {
        vec_i16 b[NV_I16];
#pragma GCC unroll 4
        for (int v = 0; v < NV_I16; v++)
            memcpy(&b[v], bp + (k * NR_I16 + v * LANES_U32) * 2, sizeof b[v]);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            uint32_t pair;
            memcpy(&pair, ap + (k * MR + r) * 2, sizeof pair);
            vec_u32 x = pair + (vec_u32){0};
#pragma GCC unroll 4
            for (int v = 0; v < NV_I16; v++)
                c[r][v] += madd_i16((vec_i16)x, b[v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV_I16; v++)
            memcpy(ct + r * NR_I16 + v * LANES_U32, &c[r][v], sizeof c[r][v]);
}

/* The includer's table (gemm.h): it exports its address under its ISA's
 * name. */
static const lp_gemm_isa_kernels TILE_KERNELS = {
    MR, {NR_F32, NR_F64, NR_I16}, {uk_f32, uk_f64, uk_i16}};
