"""Downstream use of lowprec with precise types.

mypy checks this file (tests/test_typing.py, .ci/run): every annotation
below must agree with the package's hints, so a hint that drifts from what
a function returns fails the check.  It also runs as a plain script (the
test executes it), so the calls themselves are valid.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple, Union

import ml_dtypes
import numpy as np
from numpy.typing import NDArray

import lowprec as lp
import lowprec.testing
from lowprec.reference import ref_decode, ref_encode


def formats() -> List[str]:
    e4m3: lp.Format = lp.get_format("e4m3")
    custom: lp.FloatFormat = lp.get_format(lp.FloatFormat(3, 2, infs=False,
                                                          nans="none"))
    int4: lp.IntFormat = lp.get_format(lp.IntFormat(4, narrow=True))
    from_dtype: lp.Format = lp.get_format(ml_dtypes.float8_e5m2)
    half: lp.Format = lp.get_format(np.dtype(np.float16))
    mx: lp.BlockFormat = lp.get_format("mxfp4")
    every: Dict[str, Union[lp.FloatFormat, lp.IntFormat]] = lp.formats()
    top: float = e4m3.max
    grid: NDArray[np.float64] = custom.values()
    text: str = e4m3.describe(0x7E)
    dtype: np.dtype[Any] = int4.code_dtype
    assert top == 448.0 and grid.size and half.nbits == 16
    assert from_dtype.name == "float8_e5m2" and mx.block == 32
    assert dtype == np.int8 and "float4_e2m1fn" in every
    return [text]


def conversion() -> NDArray[Any]:
    x = np.linspace(-4.0, 4.0, 17)
    codes: NDArray[np.integer[Any]] = lp.encode(
        x, "e4m3", rounding="toward_zero", saturate=True, seed=None)
    sr: NDArray[np.integer[Any]] = lp.encode(
        x, "fp4", rounding="stochastic", seed=np.uint64(7), rbits=8)
    values: NDArray[Any] = lp.decode(codes, "e4m3", dtype=np.float64)
    fake: NDArray[Any] = lp.quantize(x.astype(np.float32), "bf16",
                                     rounding="rne", backend="c")
    blocked: NDArray[Any] = lp.quantize(x, "mxfp4", axis=0)
    packed: NDArray[np.uint8] = lp.pack(sr, "fp4")
    back: NDArray[np.integer[Any]] = lp.unpack(packed, "fp4", x.size)
    assert (back == sr).all() and blocked.shape == fake.shape
    return values


def blocks() -> Tuple[NDArray[Any], NDArray[np.uint8]]:
    x = np.arange(64, dtype=np.float32).reshape(2, 32)
    bt: lp.BlockTensor = lp.quantize_blocks(x, "mxfp8_e4m3")
    scales: NDArray[Any] = lp.block_scales(x, "nvfp4", tensor_amax=63.0)
    fmt: lp.BlockFormat = lp.BlockFormat("e2m1", 16, "e4m3", "nvfp4",
                                         two_level=True)
    dq: NDArray[Any] = bt.dequantize(np.float64)
    assert bt.format.element.name == "float8_e4m3fn" and fmt.two_level
    assert scales.shape == (2, 2)
    return dq, bt.pack()


def matmul() -> NDArray[Any]:
    a = lp.encode(np.ones((4, 8)), "e4m3")
    b = lp.encode(np.ones((8, 3)), "e5m2")
    acc = lp.Accumulator("bfloat16", "toward_zero", saturate=True, seed=1)
    out: NDArray[Any] = lp.scaled_matmul(
        a, b, a_format="e4m3", b_format="e5m2", a_scale=0.5,
        accumulate="exact", out_format="e4m3")
    seq: NDArray[Any] = lp.scaled_matmul(a, b, a_format="e4m3",
                                         b_format="e5m2", accumulate=acc)
    i8 = np.arange(-8, 8, dtype=np.int8).reshape(4, 4)
    i32: NDArray[np.int32] = lp.int_matmul(i8, i8)
    q: NDArray[np.integer[Any]] = lp.requantize(i32, 1 << 30, 3,
                                                zero_point=-1)
    model: lp.FusedAccumulator = lp.hardware.h100.wgmma("e4m3", "e5m2")
    fused: NDArray[Any] = lp.scaled_matmul(
        a, b, a_format="e4m3", b_format="e5m2", accumulate=model,
        c=np.zeros((4, 3), np.float32))
    fmt: lp.FloatFormat = acc.format
    assert fmt.name == "bfloat16" and q.dtype == np.int8
    assert seq.shape == (4, 3) and (fused == seq).all()
    return out


def numba_and_testing() -> Callable[..., Any]:
    enc: Callable[..., Any] = lp.jit.encoder("e4m3", saturate=True)
    dec: Callable[..., Any] = lp.jit.decoder("e4m3", np.float64)
    assert dec(enc(1.0)) == 1.0
    lowprec.testing.assert_codes_equal(np.array([0x7F], np.uint8),
                                       np.array([0xFF], np.uint8),
                                       "e4m3")
    strategy = lowprec.testing.boundary_floats("bf16", np.float32)
    assert strategy is not None
    code: int = ref_encode(lp.get_format("e4m3"), 1.0)
    assert ref_decode(lp.get_format("e4m3"), code) == 1
    inc: str = lp.get_include()
    return enc if inc else dec


if __name__ == "__main__":
    formats()
    conversion()
    blocks()
    matmul()
    numba_and_testing()
    print("typing example ran")
