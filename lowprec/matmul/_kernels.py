"""Calls into the C GEMM driver (csrc/gemm.c) over the thread pool.

Output rows are split over the pool of lowprec._threads in ranges aligned to the
micro-tile heights; B is packed once and shared by the threads.  Every
function that runs a blocked kernel takes ``isa`` (lib.LP_ISA_AUTO or a
lower level) as a keyword argument, passed down from the entry point.
_scale_acc is the one Python caller of the block epilogue lp_scale_acc:

    t = R32(p * R32(as[i, b] * bs[b, j])),  c = t for b = 0, else R32(c + t)
"""
from __future__ import annotations

import numpy as np

from .._clib import ffi, lib
from .._threads import split_rows as _split_rows

def _ptr(a, ctype):
    return ffi.cast(ctype, a.ctypes.data)


def _pack_b(b, bk, lut=None, *, isa):
    """b (k x n: float32 / float64 values, or uint8 codes decoded through
    lut) packed once for lp_gemm_f32/f64, the panels split over threads."""
    k, n = b.shape
    dtype = (lut if lut is not None else b).dtype
    es = dtype.itemsize
    bp = np.empty(max(1, lib.lp_gemm_pack_size(es, isa, k, n)), dtype)
    npan = lib.lp_gemm_panels(es, isa, n)
    pb, pbp = _ptr(b, "void *"), _ptr(bp, "void *")
    pl = ffi.NULL if lut is None else _ptr(lut, "void *")

    def kernel(j0, j1):
        lib.lp_gemm_pack_b(es, isa, pb, pl, k, n, bk, pbp, j0, j1)
        return 0
    _split_rows(kernel, npan, k * n * 64, align=1)
    return bp


def _gemm_f32(a, b, as_, bs, bk, out, alut=None, blut=None, *, isa):
    """lp_gemm_f32 over row ranges: the sequential fmaf chain per block and
    the scale epilogue."""
    M, K = a.shape
    N = b.shape[1]
    bp = _pack_b(b, bk, blut, isa=isa)
    pa, pb = _ptr(a, "void *"), _ptr(bp, "float *")
    pal = ffi.NULL if alut is None else _ptr(alut, "float *")
    psa, psb = _ptr(as_, "float *"), _ptr(bs, "float *")
    po = _ptr(out, "float *")

    def kernel(r0, r1):
        return lib.lp_gemm_f32(pa, pal, pb, M, N, K, bk, psa, psb, po, r0,
                               r1, isa)
    _split_rows(kernel, M, M * N * K, align=24)


def _gemm_f64(a, b, as_, bs, bk, raw=False, alut=None, blut=None, *, isa):
    """lp_gemm_f64: with scales, the float32 result of the block epilogue;
    raw (as_ None), the float64 product."""
    M, K = a.shape
    N = b.shape[1]
    out = np.empty((M, N), np.float64 if raw else np.float32)
    bp = _pack_b(b, 0 if raw else bk, blut, isa=isa)
    pa, pb = _ptr(a, "void *"), _ptr(bp, "double *")
    pal = ffi.NULL if alut is None else _ptr(alut, "double *")
    psa = ffi.NULL if raw else _ptr(as_, "float *")
    psb = ffi.NULL if raw else _ptr(bs, "float *")
    po = _ptr(out, "void *")

    def kernel(r0, r1):
        return lib.lp_gemm_f64(pa, pal, pb, M, N, K, bk, psa, psb, po, r0,
                               r1, isa)
    _split_rows(kernel, M, M * N * K, align=24)
    return out


def _gemm_exact_int(a, b, bits, *, amx=True):
    """The exact int64 product of int32 matrices with |x| < 2^bits
    (lp_gemm_exact_i32: AMX-INT8 where the CPU has it; amx=False, the
    portable loop).  Each call packs all of b, so the rows are split into
    one range per thread."""
    M, K = a.shape
    N = b.shape[1]
    c = np.empty((M, N), np.int64)
    pa, pb = _ptr(a, "int32_t *"), _ptr(b, "int32_t *")
    pc = _ptr(c, "int64_t *")
    fn = lib.lp_gemm_exact_i32 if amx else lib.lp_gemm_exact_i32_ref

    def kernel(r0, r1):
        r = fn(pa, pb, M, N, K, bits, pc, r0, r1)
        if r < -2:          # the planner proved every operand in range
            raise AssertionError(f"lp_gemm_exact_i32 returned {r}")
        return r
    _split_rows(kernel, M, M * N * K, align=16)
    return c


def _scale_acc(p, as_, bs, nb, blk, out):
    """The block epilogue of block blk (of nb) for float32 (M, N) block
    sums p: out = t for blk == 0, else R32(out + t), with
    t = R32(p * R32(as_[i, blk] * bs[blk, j])); as_ (M, nb) and
    bs (nb, N) float32, C-contiguous.  p may be out (in place)."""
    M, N = p.shape
    pp, psa, psb = (_ptr(p, "float *"), _ptr(as_, "float *"),
                    _ptr(bs, "float *"))
    po = _ptr(out, "float *")

    def kernel(r0, r1):
        lib.lp_scale_acc(pp, psa, psb, N, nb, blk, po, r0, r1)
        return 0
    _split_rows(kernel, M, M * N * 8)
