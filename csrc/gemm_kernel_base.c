/* gemm_kernel_base.c -- the micro-kernels (gemm_tile.h) on 16-byte
 * vectors, for any target: baseline x86-64 (SSE2) and other CPUs.
 * Tiles of 4 x 4 elements. */
#include <math.h>
#include <stdint.h>

typedef float vec_f32 __attribute__((vector_size(16)));
typedef double vec_f64 __attribute__((vector_size(16)));
typedef uint32_t vec_u32 __attribute__((vector_size(16)));
typedef int16_t vec_i16 __attribute__((vector_size(16)));
typedef int32_t vec_s32 __attribute__((vector_size(16)));

enum { MR = 4, NV_F32 = 1, NV_F64 = 2, NV_I16 = 1 };

/* fmaf lane by lane: libm's, the FMA instruction where the CPU has one,
 * else exact in software. */
static inline vec_f32 fma_f32(vec_f32 a, vec_f32 b, vec_f32 c)
{
    for (int l = 0; l < 4; l++)
        c[l] = fmaf(a[l], b[l], c[l]);
    return c;
}

/* A product and a sum, two roundings (-ffp-contract=off), as this path
 * always did: the float64 kernels' partial sums are exact. */
static inline vec_f64 fma_f64(vec_f64 a, vec_f64 b, vec_f64 c)
{
    return a * b + c;
}

/* The low int16 of each 32-bit lane (little-endian: the even step),
 * sign-extended by the shifts, times the other's, plus the high ones'. */
static inline vec_u32 madd_i16(vec_i16 a, vec_i16 b)
{
    vec_s32 ai = (vec_s32)a, bi = (vec_s32)b;
    vec_s32 al = (vec_s32)((vec_u32)ai << 16) >> 16, ah = ai >> 16;
    vec_s32 bl = (vec_s32)((vec_u32)bi << 16) >> 16, bh = bi >> 16;
    return (vec_u32)(al * bl) + (vec_u32)(ah * bh);
}

#include "gemm_tile.h"

const lp_gemm_isa_kernels *const lp_gemm_kernels_base = &TILE_KERNELS;
