"""The kernels compiled for one instruction set at a time (baseline x86-64,
AVX2, AVX-512) give the bits of the installed library, which picks the
best copy for this CPU at load time."""
import os
import platform
import shutil
import subprocess

import numpy as np
import pytest

import lowprec as lp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "lowprec.h"

/* argv: ebits mbits bias infs nans negzero subnormals signed rounding
 *       saturate flush n in_file out_file */
int main(int argc, char **argv)
{
    if (argc != 15) return 2;
    lp_format f = {0};
    f.kind = LP_FLOAT; f.ebits = atoi(argv[1]); f.mbits = atoi(argv[2]);
    f.bias = atoi(argv[3]); f.infs = atoi(argv[4]); f.nans = atoi(argv[5]);
    f.negzero = atoi(argv[6]); f.subnormals = atoi(argv[7]);
    f.is_signed = atoi(argv[8]);
    if (lp_format_init(&f)) return 3;
    lp_opts o = {0};
    o.rounding = atoi(argv[9]); o.saturate = atoi(argv[10]);
    o.keep_subnormals = !atoi(argv[11]); o.rbits = 64; o.seed = 5;
    long n = atol(argv[12]);
    float *x = malloc(n * 4); float *v = malloc(n * 4);
    unsigned int *c = malloc(n * 4);
    FILE *fi = fopen(argv[13], "rb");
    if (fread(x, 4, n, fi) != (size_t)n) return 4;
    fclose(fi);
    int size = f.nbits <= 8 ? 1 : f.nbits <= 16 ? 2 : 4;
    lp_encode(&f, &o, LP_F32, x, n, NULL, 0, c);
    lp_decode(&f, c, n, LP_F32, NULL, 0, v);
    FILE *fo = fopen(argv[14], "wb");
    fwrite(c, size, n, fo);
    fwrite(v, 4, n, fo);
    fclose(fo);
    return 0;
}
"""

NANS = {"ieee": 0, "top": 1, "negzero": 2, "none": 3}


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":")[1].split())
    except OSError:
        pass
    return set()


ARCHES = {"x86-64": set(), "x86-64-v3": {"avx2", "fma", "f16c", "bmi2"},
          "x86-64-v4": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or platform.machine() != "x86_64":
        pytest.skip("needs a C compiler on x86-64")
    d = tmp_path_factory.mktemp("isa")
    (d / "driver.c").write_text(DRIVER)
    flags = _cpu_flags()
    out = {}
    for arch, need in ARCHES.items():
        if not need <= flags:
            continue
        exe = d / f"drv-{arch}"
        srcs = [os.path.join(CSRC, f) for f in ("format.c", "round.c",
                                                  "encode.c", "decode.c")]
        subprocess.run([cc, "-O3", "-std=gnu99", "-ffp-contract=off",
                        f"-march={arch}", "-DLP_CLONES=", "-I", CSRC,
                        str(d / "driver.c")] + srcs + ["-lm", "-o", str(exe)],
                       check=True)
        out[arch] = exe
    return d, out


@pytest.mark.parametrize("mode", range(7))
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2",
                                  "float4_e2m1fn", "bfloat16", "float16",
                                  "float8_e8m0fnu"])
def test_each_instruction_set_matches(builds, name, mode):
    d, exes = builds
    f = lp.get_format(name)
    rng = np.random.default_rng(mode)
    bits = rng.integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[~np.isnan(x)] if f.nan_code is None else x
    x = np.abs(x) if not f.signed else x
    x = np.ascontiguousarray(x)
    inp = d / f"in-{name}-{mode}.bin"
    x.tofile(inp)
    rounding = ["nearest_even", "nearest_away", "toward_zero",
                "toward_positive", "toward_negative", "to_odd",
                "stochastic"][mode]
    for sat, flush in ((0, 0), (1, 1)):
        want = lp.encode(x, f, rounding=rounding, saturate=bool(sat),
                         subnormals=not flush, seed=5)
        want_v = lp.decode(want, f)
        for arch, exe in exes.items():
            outp = d / f"out-{arch}.bin"
            subprocess.run([str(exe), str(f.ebits), str(f.mbits), str(f.bias),
                            str(int(f.infs)), str(NANS[f.nans]),
                            str(int(f.negzero)), str(int(f.subnormals)),
                            str(int(f.signed)), str(mode), str(sat),
                            str(flush), str(x.size), str(inp), str(outp)],
                           check=True)
            raw = np.fromfile(outp, np.uint8)
            k = x.size * f.code_dtype.itemsize
            got = raw[:k].view(f.code_dtype)
            got_v = raw[k:].view(np.float32)
            np.testing.assert_array_equal(got, want, err_msg=arch)
            np.testing.assert_array_equal(got_v.view(np.uint32),
                                          want_v.view(np.uint32),
                                          err_msg=arch)
