"""lowprec: bit-exact emulation of low-precision number formats.

FP16, BF16, TF32, the FP8 family, FP6, FP4, E8M0 and INT8/INT4, with every
IEEE rounding mode, round-to-odd and stochastic rounding, saturation,
subnormals, NaN and infinity as each format's specification says.  The
kernels are C (csrc/, built with cffi) and Numba (lowprec.jit).
"""
import os as _os
import typing as _t

from .formats import (Format, FloatFormat, IntFormat, formats, get_format,
                      p3109)
from .convert import encode, decode, quantize, pack, unpack
from .matmul import (scaled_matmul, Accumulator, FusedAccumulator,
                     int_matmul, requantize)
from .blocks import BlockFormat, BlockTensor, quantize_blocks, block_scales
from . import hardware
from .arith import (add, sub, mul, div, fma, sqrt, convert, FLAG_INEXACT,
                    FLAG_UNDERFLOW, FLAG_OVERFLOW, FLAG_INFINITE,
                    FLAG_INVALID)

__version__ = "0.1.0"

_HERE = _os.path.dirname(_os.path.abspath(__file__))


def get_include() -> str:
    """Directory holding the public C header lowprec.h.

    The installed package's ``include`` directory, or csrc/ in a source
    checkout.

    Examples
    --------
    >>> import os, lowprec as lp
    >>> os.path.exists(os.path.join(lp.get_include(), "lowprec.h"))
    True
    """
    installed = _os.path.join(_HERE, "include")
    if _os.path.exists(_os.path.join(installed, "lowprec.h")):
        return installed
    return _os.path.join(_os.path.dirname(_HERE), "csrc")


def get_library() -> str:
    """Path of liblowprec.so, the shared library of the C kernels.

    Link a C program against it (``-L$(dirname PATH) -llowprec``) to call
    the same kernels; docs/c_api.md shows how.

    Examples
    --------
    >>> import lowprec as lp
    >>> lp.get_library().endswith("liblowprec.so")
    True
    """
    return _os.path.join(_HERE, "liblowprec.so")


if _t.TYPE_CHECKING:
    from . import jit as jit
else:
    # Hidden from type checkers, which see lowprec.jit above and report
    # any other unknown attribute.
    def __getattr__(name):
        # lowprec.jit needs Numba; import it on first use, not with lowprec.
        if name == "jit":
            import importlib
            return importlib.import_module(".jit", __name__)
        raise AttributeError(f"module 'lowprec' has no attribute {name!r}")


__all__ = ["Format", "FloatFormat", "IntFormat", "formats", "get_format",
           "p3109",
           "encode", "decode", "quantize", "pack", "unpack", "scaled_matmul",
           "Accumulator", "FusedAccumulator", "int_matmul", "requantize",
           "jit", "get_include", "get_library", "BlockFormat", "BlockTensor",
           "quantize_blocks", "block_scales", "hardware", "add", "sub", "mul",
           "div", "fma", "sqrt", "convert", "FLAG_INEXACT", "FLAG_UNDERFLOW",
           "FLAG_OVERFLOW", "FLAG_INFINITE", "FLAG_INVALID"]
