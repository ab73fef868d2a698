/* gemm_isa.c -- which instruction set the GEMM kernels run (API.md
 * section 3): the best the CPU and OS offer, or a lower one on request
 * (the tests force each); and the micro-kernel for it. */
#include "gemm.h"

static int isa_available(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
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

lp_gemm_kernel lp_gemm_kernel_for(int elem, int isa)
{
    const lp_gemm_isa_kernels *t = lp_gemm_kernels_base;
#if defined(__GNUC__) && defined(__x86_64__)
    isa = lp_matmul_isa(isa);
    if (isa == LP_ISA_AVX512)
        t = lp_gemm_kernels_avx512;
    else if (isa == LP_ISA_AVX2)
        t = lp_gemm_kernels_avx2;
#endif
    lp_gemm_kernel g;
    g.mr = t->mr;
    g.nr = t->nr[elem];
    g.uk = t->uk[elem];
    g.kg = elem == LP_EL_I16 ? 2 : 1;
    g.ps = elem == LP_EL_F32 ? 4 : elem == LP_EL_F64 ? 8 : 2;
    g.cs = elem == LP_EL_F64 ? 8 : 4;
    return g;
}
