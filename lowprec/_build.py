"""cffi build script: compiles csrc/*.c into the extension lowprec._clib.

The cdef is the part of the public header csrc/lowprec.h between its
LP_CDEF markers, so the header is the single source of the interface.
"""
import glob
import os

from cffi import FFI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")

# Plain C99 with IEEE semantics: no contraction of a*b+c into an FMA, no
# fast-math; -O3 lets GCC vectorise the table and shift loops.
CFLAGS = ["-O3", "-std=gnu99", "-ffp-contract=off", "-fno-math-errno",
          "-Wall", "-Wextra", "-Wno-unused-parameter"]


def cdef_text(path=os.path.join(CSRC, "lowprec.h")):
    with open(path) as fh:
        text = fh.read()
    begin = text.index("/* LP_CDEF_BEGIN */")
    end = text.index("/* LP_CDEF_END */")
    return text[begin:end]


def c_sources():
    """Relative paths (setup.py runs from ROOT) of every C source."""
    return sorted(os.path.relpath(p, ROOT)
                  for p in glob.glob(os.path.join(CSRC, "*.c")))


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "lowprec._clib",
    '#include "lowprec.h"',
    sources=c_sources(),
    include_dirs=["csrc"],
    extra_compile_args=CFLAGS,
    libraries=["m"],
)
