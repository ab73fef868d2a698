"""Scaled matrix products of low-precision operands (API.md section 3).

``scaled_matmul`` multiplies code arrays of any float format with per-tensor,
per-row/column, blockwise or MX (e8m0) scales and one of four accumulation
rules; ``int_matmul`` and ``requantize`` are the integer GEMM and the
gemmlowp / TFLite fixed-point output stage.  docs/matmul.md has the full
semantics, worked examples and performance notes.

Per output element, with R32 = round to float32 (nearest even), for each
K-block b:

    p_b = accumulate(a[i, k] * b[k, j] for k in block b)
    s_b = R32(a_scale[i, b] * b_scale[b, j])
    acc = R32(p_0 * s_0), then acc = R32(acc + R32(p_b * s_b))

and the result is acc (float32) or ``encode(acc, out_format, ...)``.

The kernels are in csrc/ (gemm.c and gemm.h: packing, the blocked driver
and the epilogue; exact.c, accumulate.c, gemm_amx.c).  Python decodes the
codes (exactly, to float32 or float64), checks shapes and scales, chooses a
plan, and splits output rows over the thread pool of lowprec._threads.  The package:

  __init__.py     scaled_matmul and _scaled_matmul (the entry point that
                  takes the internal choices isa=, plan=, subblocks=)
  _args.py        every argument check, and _Job (one checked product)
  accumulator.py  Accumulator, the sequential rule's value object
  _rules.py       the "fast", "fp32" and Accumulator rules
  _exact.py       the "exact" rule: its planner and its four plans
  integer.py      int_matmul and requantize
  _kernels.py     calls into the C driver over threads (packing, GEMM
                  kernels, the block epilogue lp_scale_acc)
  _values.py      operand values for the kernels (decode, byte tables,
                  NaN / inf detection)
  _geometry.py    format geometry (binades, quantum, fits float32)
"""
from __future__ import annotations

import numpy as np

from .._clib import lib
from ..blocks import BlockTensor, block_matmul_args
from ..convert import encode
from ._args import (_check_accumulate, _check_isa, _check_output,
                    _check_plan, _Job, _matmul_shapes, _operand,
                    _scale_layout, _squeeze)
from ._exact import _run_exact, _run_exact_c
from .fused import (FusedAccumulator, _check_c, _check_formats, _finish,
                    _run_fused)
from ._geometry import _exact_in_f32
from ._rules import _run_accumulator, _run_fast, _run_fp32
from .accumulator import Accumulator
from .integer import int_matmul, requantize
# still importable from here as from the single-module lowprec.matmul: the
# accumulate names and Accumulator's unpickling hook (older pickles)
from ._args import ACCUMULATE_MODES  # noqa: F401,E402
from .accumulator import _accumulator  # noqa: F401,E402

__all__ = ["scaled_matmul", "Accumulator", "FusedAccumulator", "int_matmul",
           "requantize"]


def scaled_matmul(a, b, *, a_format=None, b_format=None, a_scale=1.0,
                  b_scale=1.0, block=None, accumulate="fp32", out_format=None,
                  out_scale=None, out_rounding="nearest_even", saturate=True,
                  c=None):
    """Scaled matrix product of low-precision code arrays.

    a (..., M, K) and b (..., K, N) are codes of a_format / b_format
    (uint8/uint16 code arrays, or ml_dtypes / float16 arrays whose dtype
    names the format); batch dimensions broadcast as in np.matmul, 1-D
    operands as np.matmul treats them.

    Scales (float32 values, or e8m0 codes as an ml_dtypes.float8_e8m0fnu
    array): scalars; a_scale (M, 1) per row and b_scale (1, N) per column;
    with block=(bk,) a_scale (M, K/bk) and b_scale (K/bk, N); with
    block=(bk, bn) b_scale (K/bk, N/bn).  e8m0 scales that vary along K
    without block= mean MX blocks of 32.

    accumulate: "exact", "fp32" (default), "fast", an Accumulator, or a
    FusedAccumulator (a tensor-core model, e.g. from lowprec.hardware.h100);
    see the module docstring, docs/matmul.md and docs/hardware.md.

    c: D = A*B + C's accumulator input (None: none), float32 values
    (float16 for a float16 model) broadcastable to the (..., M, N) output,
    taken where the rule takes it: "exact" rounds the exact A*B + c once,
    "fp32" and Accumulators start their first block's chain from c, a
    FusedAccumulator takes c as the first step's accumulator (or, with
    promote_every, as the start of the total), "fast" adds c after the
    BLAS product.  c with scales other than 1 raises ValueError.

    A FusedAccumulator with accumulator="float16" (or a model with a
    float16 output) returns a float16 array; NaN results of fused models
    are 0x7fffffff / 0x7fff.

    Returns float32 (..., M, N), or codes of out_format:
    encode(acc, out_format, scale=out_scale, rounding=out_rounding,
    saturate=saturate).

    Arguments are checked strictly (docs/matmul.md, "Errors"): block is
    an integer or a tuple of one or two positive integers (not floats or
    strings); scales are checked as lp.encode checks scale= (finite and
    > 0 in float32); out_scale needs out_format; saturate is a bool and
    out_rounding a rounding name, checked even without out_format.  The
    wrong kind of value raises TypeError, a value out of range ValueError.

    BlockTensor operands (lp.quantize_blocks): a blocked along K, b along
    axis 0 (or 2-D blocks) carry their codes, scales and block; the tensor
    scales apply last, out = R32(acc * R32(ta * tb)) (API.md section 8).
    """
    if isinstance(a, BlockTensor) or isinstance(b, BlockTensor):
        if c is not None:
            raise ValueError("c needs unit scales: BlockTensor operands "
                             "carry block scales, so c is not taken")
        return _block_matmul(a, b, accumulate, out_format, out_scale,
                             out_rounding, saturate)
    return _scaled_matmul(
        a, b, a_format=a_format, b_format=b_format, a_scale=a_scale,
        b_scale=b_scale, block=block, accumulate=accumulate,
        out_format=out_format, out_scale=out_scale,
        out_rounding=out_rounding, saturate=saturate, c=c)


def _block_matmul(a, b, accumulate, out_format, out_scale, out_rounding,
                  saturate):
    """scaled_matmul on BlockTensors: their codes, scales and block through
    section 3, the tensor scales last (out = R32(acc * R32(ta * tb))).  A
    NaN block scale (a block that held NaN or inf) makes p_b * s_b NaN, so
    every output element whose sum takes that block is NaN: such scales go
    in as 1 (the block's codes are zeros) and the NaN is set afterwards."""
    (a, a_format), (b, b_format), a_scale, b_scale, block, ts, nan_rows, \
        nan_cols = block_matmul_args(a, b)
    M, N = a.shape[0], b.shape[1]
    _check_output(out_format, out_scale, out_rounding, saturate, (M, N))
    acc = _scaled_matmul(a, b, a_format=a_format, b_format=b_format,
                         a_scale=a_scale, b_scale=b_scale, block=block,
                         accumulate=accumulate)
    if ts is not None:
        acc = acc * np.float32(ts)
    acc[nan_rows, :] = np.nan
    acc[:, nan_cols] = np.nan
    if out_format is None:
        return acc
    return encode(acc, out_format, scale=out_scale, rounding=out_rounding,
                  saturate=saturate)


def _scaled_matmul(a, b, *, a_format=None, b_format=None, a_scale=1.0,
                   b_scale=1.0, block=None, accumulate="fp32",
                   out_format=None, out_scale=None,
                   out_rounding="nearest_even", saturate=True, c=None,
                   isa=lib.LP_ISA_AUTO, plan=None, subblocks=None,
                   fused_path=None):
    """scaled_matmul with its internal choices as arguments (tests and
    benchmarks use them; every choice gives the same bits):

    isa: the kernels' instruction set, lib.LP_ISA_AUTO (-1, the best the
    CPU has) or LP_ISA_GENERIC / LP_ISA_AVX2 / LP_ISA_AVX512 (0 / 1 / 2;
    a level above the CPU's runs the CPU's).
    plan: the "exact" rule's plan, "f32", "f64", "sliced" or "dot" where
    it applies (else the next one that does), None: the cheapest.
    subblocks: the sliced plan's sub-blocks per block (1, 2, 4, ..., 32),
    None: the cheapest.
    fused_path: FusedAccumulator models on one path of lp_fused_gemm,
    lib.LP_FUSED_NARROW / LP_FUSED_WIDE / LP_FUSED_SCALAR (where it
    applies, else the next), None: the fastest.
    """
    isa = _check_isa(isa)
    plan, subblocks = _check_plan(plan, subblocks)
    A, fa = _operand(a, a_format, "a")
    B, fb = _operand(b, b_format, "b")
    a2, b2, batch, drop = _matmul_shapes(A, B)
    M, K = a2.shape[-2:]
    N = b2.shape[-1]
    mode = _check_accumulate(accumulate)
    bk, nb, As, Bs = _scale_layout(a_scale, b_scale, block, batch, M, K, N)
    out_fmt = _check_output(out_format, out_scale, out_rounding, saturate,
                            batch + (M, N))
    fused = mode if isinstance(mode, FusedAccumulator) else None
    cb = None if c is None else _check_c(c, batch + (M, N), fused, As, Bs)
    out = np.zeros(batch + (M, N), np.float32)
    if cb is not None:
        out[...] = cb
    if out.size and K:
        job = _Job(a2, b2, fa, fb, As, Bs, bk, nb, batch, out, isa)
        f32ok = _exact_in_f32(fa) and _exact_in_f32(fb)
        if fused is not None:
            _run_fused(job, fused, cb, path=fused_path,
                       per_tensor=np.ndim(a_scale) == 0
                       and np.ndim(b_scale) == 0)
        elif isinstance(mode, Accumulator):
            if mode._is_fp32_fma() and f32ok and cb is None:
                _run_fp32(job)
            else:
                _run_accumulator(job, mode, cb)
        elif mode == "fast":
            _run_fast(job)
            if cb is not None:
                job.out += cb.astype(np.float32)
        elif mode == "fp32":
            if f32ok and cb is None:
                _run_fp32(job)
            else:
                _run_accumulator(job, Accumulator("float32"), cb)
        elif cb is not None:
            _run_exact_c(job, cb)
        else:
            _run_exact(job, plan=plan, subblocks=subblocks)
    elif fused is not None and K == 0 and out.size:
        _check_formats(fused, fa, fb)
    res = out if fused is None else _finish(out, fused)
    if out_fmt is not None:
        res = encode(out, out_fmt, scale=out_scale, rounding=out_rounding,
                     saturate=saturate)
    return _squeeze(res, drop)
