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
