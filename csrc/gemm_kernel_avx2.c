/* gemm_kernel_avx2.c -- the micro-kernels (gemm_tile.h) on 32-byte
 * vectors with AVX2 and FMA: tiles of 6 rows x 2 vectors (12 of the 16
 * ymm registers accumulate). */
#if defined(__GNUC__) && defined(__x86_64__)
#include <stdint.h>
#include <immintrin.h>

#pragma GCC target("avx2,fma")

typedef float vec_f32 __attribute__((vector_size(32)));
typedef double vec_f64 __attribute__((vector_size(32)));
typedef uint32_t vec_u32 __attribute__((vector_size(32)));
typedef int16_t vec_i16 __attribute__((vector_size(32)));

enum { MR = 6, NV_F32 = 2, NV_F64 = 2, NV_I16 = 2 };

static inline vec_f32 fma_f32(vec_f32 a, vec_f32 b, vec_f32 c)
{
    return (vec_f32)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}

static inline vec_f64 fma_f64(vec_f64 a, vec_f64 b, vec_f64 c)
{
    return (vec_f64)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
}

static inline vec_u32 madd_i16(vec_i16 a, vec_i16 b)
{
    return (vec_u32)_mm256_madd_epi16((__m256i)a, (__m256i)b);
}

#include "gemm_tile.h"

const lp_gemm_isa_kernels *const lp_gemm_kernels_avx2 = &TILE_KERNELS;
#endif
