"""The accumulation rules other than "exact" (that one is _exact.py).

  "fast"        float32 BLAS (NumPy's matmul) on the decoded values
  "fp32"        lp_gemm_f32: a sequential fmaf chain per block in k order,
                the block epilogue in the kernel
  Accumulator   lp_accumulate: every step rounded to the Accumulator's
                format, then the block epilogue lp_scale_acc

Each takes a checked _Job (_args.py) and writes job.out.
"""
from __future__ import annotations

import numpy as np

from .._clib import ffi, lib
from ._geometry import _exact_in_f32
from ._kernels import _gemm_f32, _ptr, _scale_acc, _split_rows
from ._values import _decode, _source


def _all_ones(s):
    return bool(np.all(s == 1))


def _run_fast(job):
    """float32 BLAS on decoded values.  One block: R32(BLAS(a, b) * s);
    blocked scales are folded into the operands (each decoded value times
    its scale, in float32) and the product is one BLAS call."""
    a32 = _decode(job.a, job.fa, np.float32)
    b32 = _decode(job.b, job.fb, np.float32)
    if job.nb == 1:
        np.matmul(a32, b32, out=job.out)
        if not (_all_ones(job.As) and _all_ones(job.Bs)):
            job.out *= job.As * job.Bs
        return
    a32 = a32 * np.repeat(job.As, job.bk, axis=-1)
    b32 = b32 * np.repeat(job.Bs, job.bk, axis=-2)
    np.matmul(a32, b32, out=job.out)


def _run_fp32(job):
    """The "fp32" rule for operands whose values are float32 numbers."""
    A, alut = _source(job.a, job.fa, np.float32)
    B, blut = _source(job.b, job.fb, np.float32)
    for idx, _, Ai, Bi, as_, bs in job.items(A, B):
        out = np.empty((job.M, job.N), np.float32)
        _gemm_f32(Ai, Bi, as_, bs, job.bk, out, alut, blut, isa=job.isa)
        job.out[idx] = out


def _run_accumulator(job, acc, c=None):
    """Sequential accumulation rounded to acc.format (lp_accumulate gives
    each block's sum p as float64, exactly), then the block epilogue.

    When every value of acc.format is a float32 (all built-in formats), p
    converts to float32 exactly and lp_scale_acc applies the whole
    epilogue.  A wider custom format's p is not a float32: rounding it to
    float32 before the scale multiply would round twice, so
    t = R32(p * R32(sa * sb)) is formed here from float64 and
    lp_scale_acc adds it with unit scales (t * R32(1 * 1) = t).

    c: None, or float64 values broadcast to job.out that start the first
    block's accumulator (D = A*B + C)."""
    fmt = acc.format
    opts = acc._opts()
    narrow = _exact_in_f32(fmt)
    a64 = _decode(job.a, job.fa, np.float64)
    b64 = _decode(job.b, job.fb, np.float64)
    M, N, K, bk, nb = job.M, job.N, job.K, job.bk, job.nb
    if not narrow:
        ones_a = np.ones((M, nb), np.float32)
        ones_b = np.ones((nb, N), np.float32)
    for idx, flat, A, B, as_, bs in job.items(a64, b64):
        Bt = np.ascontiguousarray(B.T)
        pa, pbt = _ptr(A, "double *"), _ptr(Bt, "double *")
        index0 = flat * M * N * K
        out = np.empty((M, N), np.float32)
        p = np.empty((M, N), np.float64)
        pp = _ptr(p, "double *")
        ci = None if c is None else np.ascontiguousarray(c[idx], np.float64)
        for blk in range(nb):
            k0, k1 = blk * bk, (blk + 1) * bk
            pc = _ptr(ci, "double *") if ci is not None and blk == 0 \
                else ffi.NULL

            def kernel(r0, r1, k0=k0, k1=k1, pc=pc):
                return lib.lp_accumulate_from(fmt.struct, opts, pa, pbt, M, N,
                                              K, k0, k1, index0, pc, pp, r0,
                                              r1)
            err = _split_rows(kernel, M, M * N * (k1 - k0) * 16, align=1)
            if err & lib.LP_ERR_NAN:
                raise ValueError(f"accumulator format {fmt.name or fmt!r} "
                                 "has no NaN encoding: the accumulation "
                                 "produced NaN (NaN operands, inf * 0 or "
                                 "inf - inf)")
            if narrow:
                _scale_acc(p.astype(np.float32), as_, bs, nb, blk, out)
            else:
                s = (as_[:, blk:blk + 1] * bs[blk:blk + 1, :]).astype(
                    np.float64)
                t = (p * s).astype(np.float32)
                _scale_acc(t, ones_a, ones_b, nb, blk, out)
        job.out[idx] = out
