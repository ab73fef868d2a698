/* gemm_kernel_avx512.c -- the micro-kernels (gemm_tile.h) on 64-byte
 * vectors with AVX-512: tiles of 8 rows x 3 vectors (24 of the 32 zmm
 * registers accumulate, 3 hold B and one the broadcast of A). */
#if defined(__GNUC__) && defined(__x86_64__)
#include <stdint.h>
#include <immintrin.h>

#pragma GCC target("avx512f,avx512bw,fma")

typedef float vec_f32 __attribute__((vector_size(64)));
typedef double vec_f64 __attribute__((vector_size(64)));
typedef uint32_t vec_u32 __attribute__((vector_size(64)));
typedef int16_t vec_i16 __attribute__((vector_size(64)));

enum { MR = 8, NV_F32 = 3, NV_F64 = 3, NV_I16 = 3 };

static inline vec_f32 fma_f32(vec_f32 a, vec_f32 b, vec_f32 c)
{
    return (vec_f32)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}

static inline vec_f64 fma_f64(vec_f64 a, vec_f64 b, vec_f64 c)
{
    return (vec_f64)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
}

static inline vec_u32 madd_i16(vec_i16 a, vec_i16 b)
{
    return (vec_u32)_mm512_madd_epi16((__m512i)a, (__m512i)b);
}

#include "gemm_tile.h"

const lp_gemm_isa_kernels *const lp_gemm_kernels_avx512 = &TILE_KERNELS;
#endif
