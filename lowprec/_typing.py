"""Type aliases of the public signatures (PEP 484; the package ships
``py.typed``).

They name what each kind of argument accepts, so the hints read like the
contract in the docs: a format is a Format object, a name or a dtype; a
rounding mode is one of the names or aliases; integers and bools may be
NumPy scalars.  Internal module: import the aliases from here in hints
only (``from __future__ import annotations`` keeps them unevaluated).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Tuple, Type, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

if TYPE_CHECKING:
    from .formats import BlockFormat, Format
    from .matmul.accumulator import Accumulator
    from .matmul.fused import FusedAccumulator

__all__ = ["ArrayLike", "DTypeLike", "NDArray", "FormatLike",
           "BlockFormatLike", "AnyFormatLike", "RecipeName", "Rounding",
           "Backend", "AccumulateRule", "IntLike", "RealLike", "BoolLike",
           "Seed", "BlockShape", "CodeArray", "FloatArray", "Saturate",
           "Tininess"]

#: A Python or NumPy integer (a bool is an int too, but every check in
#: lowprec refuses it).
IntLike = Union[int, np.integer[Any]]

#: A real scalar (Python or NumPy).
RealLike = Union[float, np.floating[Any], np.integer[Any]]

#: ``True`` / ``False`` or a NumPy bool.
BoolLike = Union[bool, np.bool_]

#: A stochastic-rounding seed: None (a fresh one) or an integer in
#: [0, 2^64).
Seed = Optional[IntLike]

#: An element format: a Format, a name or alias ("e4m3"), or a NumPy /
#: ml_dtypes dtype or scalar type (``np.float16``,
#: ``ml_dtypes.float8_e4m3fn``).
FormatLike = Union["Format", str, np.dtype[Any], Type[Any]]

#: A block-scaled format: a BlockFormat or a recipe name ("mxfp4").
BlockFormatLike = Union["BlockFormat", str]

#: Where an element format or a block format is taken (lp.quantize).
AnyFormatLike = Union["Format", "BlockFormat", str, np.dtype[Any],
                      Type[Any]]

#: The names of the block recipes (lp.get_format gives a BlockFormat).
RecipeName = Literal["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3",
                     "mxfp4", "mxint8", "nvfp4", "fp8_1x128", "fp8_128x128"]

#: Rounding mode names and their aliases (API.md section 2).
Rounding = Literal["nearest_even", "rne", "nearest_away", "rna",
                   "toward_zero", "rz", "toward_positive", "ru",
                   "toward_negative", "rd", "to_odd", "ro", "stochastic",
                   "sr"]

#: Overflow policies of section 9's operations (where they take names).
Saturate = Union[BoolLike, Literal["ovfinf", "satfinite", "satpropagate"]]

#: When underflow is detected (section 9's flags).
Tininess = Literal["after", "before"]

#: Kernel selection of encode / decode / quantize.
Backend = Literal["auto", "c", "numba"]

#: scaled_matmul's accumulation rule.
AccumulateRule = Union[Literal["exact", "fp32", "fast"], "Accumulator",
                       "FusedAccumulator"]

#: A block: an int (along one axis) or a tuple of ints over the last axes.
BlockShape = Union[IntLike, Tuple[IntLike, ...]]

#: An array of codes (uint8 / uint16 / uint32, int8 / int16 for integer
#: formats).
CodeArray = NDArray[np.integer[Any]]

#: An array of values (float16 / float32 / float64, or an ml_dtypes
#: bfloat16 array, which NumPy's types cannot name).
FloatArray = NDArray[Any]
