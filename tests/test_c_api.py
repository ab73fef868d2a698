"""The public C API: a C program compiled against get_include() and
get_library() gets the same bits as the Python API."""
import os
import shutil
import subprocess

import numpy as np
import pytest

import lowprec as lp

PROGRAM = r"""
#include <stdio.h>
#include "lowprec.h"

int main(void)
{
    lp_format f = {0};
    f.kind = LP_FLOAT; f.ebits = 4; f.mbits = 3; f.bias = 7;
    f.infs = 0; f.nans = LP_NANS_TOP; f.negzero = 1; f.subnormals = 1;
    f.is_signed = 1;
    if (lp_format_init(&f) != 0)
        return 2;
    float x[6] = {0.3f, 448.0f, 500.0f, -1e-3f, 1.0625f, 1e30f};
    unsigned char out[6];
    lp_opts o = {0};
    o.rounding = LP_RNE; o.keep_subnormals = 1; o.rbits = 64;
    int err = lp_encode(&f, &o, LP_F32, x, 6, NULL, 0, out);
    for (int i = 0; i < 6; i++)
        printf("%d\n", out[i]);
    printf("err %d max_code %lld\n", err, (long long)f.max_code);
    printf("%.17g\n", lp_decode_one(&f, 0x7e));
    float back[6];
    lp_decode(&f, out, 6, LP_F32, NULL, 0, back);
    for (int i = 0; i < 6; i++)
        printf("%.9g\n", back[i]);
    return 0;
}
"""


def test_c_program_matches_python(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    assert os.path.exists(os.path.join(lp.get_include(), "lowprec.h"))
    lib = lp.get_library()
    assert os.path.exists(lib)
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "prog"
    libdir = os.path.dirname(lib)
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", str(src),
                    "-I", lp.get_include(), "-L", libdir, "-l:liblowprec.so",
                    f"-Wl,-rpath,{libdir}", "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True,
                           text=True).stdout.split("\n")
    x = np.array([0.3, 448.0, 500.0, -1e-3, 1.0625, 1e30], np.float32)
    want = lp.encode(x, "e4m3")
    assert [int(v) for v in lines[:6]] == want.tolist()
    assert lines[6] == "err 0 max_code 126"
    assert float(lines[7]) == 448.0
    np.testing.assert_array_equal(
        np.array([float(v) for v in lines[8:14]], np.float32),
        lp.decode(want, "e4m3"))


# -- the GEMM micro-kernels of every instruction set -------------------------

def _r32(q):
    """q (a Fraction in float32's normal range, or 0) rounded once to
    float32, nearest even."""
    from fractions import Fraction
    if q == 0:
        return 0.0
    s, q = (-1, -q) if q < 0 else (1, q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1                              # 2^e <= q < 2^(e+1)
    m = q * Fraction(2) ** (23 - e)
    fl = m.numerator // m.denominator
    rem = m - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2):
        fl += 1
    return s * float(fl) * 2.0 ** (e - 23)


@pytest.mark.parametrize("isa", [0, 1, 2])
def test_gemm_f32_fused_chain_every_isa(isa):
    """lp_gemm_f32 on float32 operands (24-bit products, which a separate
    multiply would round): p = fmaf(a, b, p) step by step in k order, on
    every ISA's micro-kernel, across K chunks and column panels."""
    from fractions import Fraction
    from lowprec._clib import ffi, lib
    if isa > lib.lp_matmul_isa(-1):
        pytest.skip("instruction set not available")
    rng = np.random.default_rng(7)
    M, K, N = 3, 1100, 50
    a = rng.uniform(0.5, 1, (M, K)).astype(np.float32)
    b = (rng.uniform(0.5, 1, (K, N))
         * rng.choice([-1, 1], (K, N))).astype(np.float32)
    npan = lib.lp_gemm_panels(4, isa, N)
    bp = np.empty(lib.lp_gemm_pack_size(4, isa, K, N), np.float32)
    ptr = lambda x, t: ffi.cast(t, x.ctypes.data)     # noqa: E731
    lib.lp_gemm_pack_b(4, isa, ptr(b, "void *"), ffi.NULL, K, N, 0,
                       ptr(bp, "void *"), 0, npan)
    ones_a, ones_b = np.ones((M, 1), np.float32), np.ones((1, N), np.float32)
    c = np.empty((M, N), np.float32)
    assert lib.lp_gemm_f32(ptr(a, "void *"), ffi.NULL, ptr(bp, "float *"),
                           M, N, K, 0, ptr(ones_a, "float *"),
                           ptr(ones_b, "float *"), ptr(c, "float *"), 0, M,
                           isa) == 0
    fa = [[Fraction(float(v)) for v in row] for row in a]
    fb = [[Fraction(float(v)) for v in row] for row in b]
    fused_differs = False
    for i in range(M):
        for j in range(N):
            p = unfused = np.float32(0)
            for k in range(K):
                p = np.float32(_r32(Fraction(float(p)) + fa[i][k] * fb[k][j]))
                unfused = unfused + a[i, k] * b[k, j]
            assert c[i, j] == p, (i, j)
            fused_differs |= bool(unfused != p)
    assert fused_differs    # the data tell a fused chain from two roundings
