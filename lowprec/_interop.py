"""Arrays from other libraries: ml_dtypes' types by name, and as_array,
which reads PyTorch / JAX CPU tensors (DLPack) in place.

Internal module: it depends on NumPy and ml_dtypes only (PyTorch only
through a tensor it is given), so every module of lowprec can use it.
"""
from __future__ import annotations

import sys

import ml_dtypes
import numpy as np

__all__ = ["as_array", "ML_FLOATS", "ML_FLOAT_DTYPES", "ML_INTS"]

# The float types of ml_dtypes (those of the installed version), by name:
# lowprec has a format of each name.  Their values widen exactly to
# float32 (at most 8 exponent bits and 7 mantissa bits).
ML_FLOATS = {name: np.dtype(getattr(ml_dtypes, name)) for name in (
    "bfloat16", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
    "float8_e5m3fnu", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn",
    "float4_e2m1fn") if hasattr(ml_dtypes, name)}
ML_FLOAT_DTYPES = frozenset(ML_FLOATS.values())
ML_INTS = frozenset(np.dtype(getattr(ml_dtypes, name)) for name in (
    "int1", "uint1", "int2", "uint2", "int4", "uint4")
    if hasattr(ml_dtypes, name))


# -- inputs from other libraries ---------------------------------------------

_DLPACK_CPU = 1          # DLDeviceType kDLCPU


def as_array(x, name="x") -> np.ndarray:
    """x as a NumPy array, without a copy where the source allows it.

    NumPy arrays are returned as they are.  Objects with ``__dlpack__``
    (PyTorch and JAX CPU tensors) are read through ``np.from_dlpack``
    (zero-copy).  DLPack has no bfloat16 / float8 types that NumPy reads,
    so a PyTorch tensor of such a type is read through its bits (a view as
    int16 / uint8) viewed as the ml_dtypes type of the same name, still
    without a copy; JAX arrays of these types are read through
    ``__array__`` (they are ml_dtypes arrays already).  Everything else
    goes through ``np.asarray``.

    Where DLPack cannot export x, ``__array__`` is tried.  Raises
    TypeError for a DLPack array that lives on another device than the
    CPU (CUDA arrays with ``__cuda_array_interface__`` are taken by the
    CUDA backend before they get here), and for a PyTorch float8 / float4
    dtype that ml_dtypes does not have (torch.float4_e2m1fn_x2: two codes
    a byte).

    Example: ``as_array(torch.ones(3, dtype=torch.bfloat16))`` is an
    ml_dtypes bfloat16 array over the tensor's memory."""
    if isinstance(x, np.ndarray):
        return x
    if not (hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")):
        return np.asarray(x)
    device = x.__dlpack_device__()
    if int(device[0]) != _DLPACK_CPU:
        raise TypeError(f"{name} is on DLPack device {tuple(device)}, not "
                        "the CPU: copy it to host memory first (e.g. "
                        "tensor.cpu(), jax.device_get)")
    dt = getattr(x, "dtype", None)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        tname = str(dt).removeprefix("torch.")
        if tname in ML_FLOATS:
            bits = torch.int16 if x.element_size() == 2 else torch.uint8
            return np.from_dlpack(x.view(bits)).view(ML_FLOATS[tname])
        if tname.startswith(("float8", "float6", "float4")):
            raise TypeError(f"{name} has dtype {dt}, which lowprec does "
                            "not read (packed or unknown to ml_dtypes): "
                            "pass its bits, e.g. x.view(torch.uint8), with "
                            "lp.unpack / decode")
        return _from_dlpack(x)
    if isinstance(dt, np.dtype) and dt.type.__module__.split(".")[0] == \
            "ml_dtypes":
        return np.asarray(x)       # JAX: DLPack lacks the type, NumPy has it
    return _from_dlpack(x)


def _from_dlpack(x):
    """np.from_dlpack(x); where the producer cannot export x (a dtype
    DLPack lacks, a tensor that requires grad), its __array__ if it has
    one, whose error then says why."""
    try:
        return np.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError):
        if not hasattr(x, "__array__"):
            raise
    return np.asarray(x)
