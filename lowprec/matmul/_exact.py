"""The "exact" rule: each block's exact sum rounded once to float32.

Plans (all give the same bits; _choose_plan picks the cheapest unless the
caller names one with ``plan=``):
  "int"     every value is an integer multiple of its format's quantum
            below 2^21 of it (e4m3, e3m4, fp6, fp4, int8): the integer
            product, exact in int64 (AMX-INT8 tiles where the CPU has
            them, lp_gemm_exact_i32), each sum rounded once to float32;
            chosen by default only on AMX machines, for unblocked products
  "f32"     every partial sum is exact in float32 (narrow formats: fp4,
            fp6 e2m3): the float32 kernel, order irrelevant
  "f64"     every partial sum is exact in float64 (e4m3, e3m4, fp6, int8,
            and wider formats whose data span few binades): one float64
            product, each block rounded once in its epilogue
  "sliced"  the operands cut into slices of few bits below each row's /
            column's top binade; every slice product is exact in float64
            and the kernel adds them exactly into int64 pairs (``subblocks=``
            fixes the number of sub-blocks per block)
  "dot"     a long fixed-point accumulator per element (any range)
NaN and inf operands: the finite products go through a plan, block by
block, and the IEEE results of the non-finite ones are patched in before
the block epilogue (lp_scale_acc).
"""
from __future__ import annotations

import numpy as np

from .._clib import ffi, lib
from ..formats import IntFormat
from ._geometry import _clog2, _exact_in_f32, _fmt_range, _fmt_width
from ._kernels import (_gemm_exact_int, _gemm_f32, _gemm_f64, _pack_b, _ptr,
                       _scale_acc, _split_rows)
from ._values import _decode, _has_specials, _source


def _run_exact(job, *, plan=None, subblocks=None):
    """The exact rule over a job; plan / subblocks None: the cheapest."""
    fa, fb, bk = job.fa, job.fb, job.bk
    L = _clog2(bk)
    wa, wb = _fmt_width(fa), _fmt_width(fb)
    f32ok = _exact_in_f32(fa) and _exact_in_f32(fb)
    if _int_plan_applies(job, plan, wa, wb, L):
        if _exact_int(job, amx=job.isa == lib.LP_ISA_AUTO and _amx()):
            return
    if plan in (None, "f32") and f32ok and wa + wb + L <= 24:
        if _exact_fused(job, np.float32):
            return
    if plan in (None, "f64") and wa + wb + L <= 53:
        if _exact_fused(job, np.float64):
            return
    a64 = _decode(job.a, fa, np.float64)
    b64 = _decode(job.b, fb, np.float64)
    for idx, _, A, B, as_, bs in job.items(a64, b64):
        job.out[idx] = _exact_2d(A, B, fa, fb, as_, bs, bk, job.nb,
                                 plan=plan, subblocks=subblocks, isa=job.isa)


# Widest operand grid (bits from the quantum to the top binade) that the
# integer kernel takes; its int64 sums are exact for any K it accepts.
_INT_PLAN_BITS = 21
_AMX = None


def _amx():
    global _AMX
    if _AMX is None:
        _AMX = bool(lib.lp_amx_available())
    return _AMX


def _int_plan_applies(job, plan, wa, wb, L):
    """The integer plan runs when named (on AMX tiles with isa AUTO, else
    on the portable loop), or by default on AMX machines
    (where it beats the float64 kernel) for unblocked products of 8-bit
    codes; the sums must also be exact in float64 (wa + wb + L <= 53) so
    that int64 -> float64 -> float32 rounds once."""
    if plan not in (None, "int"):
        return False
    if max(wa, wb) > _INT_PLAN_BITS or wa + wb + L > 53:
        return False
    if plan == "int":
        return True
    return (job.nb == 1 and job.isa == lib.LP_ISA_AUTO
            and job.a.dtype.itemsize == 1 and job.b.dtype.itemsize == 1
            and _amx())


def _int_values(codes, fmt):
    """Codes as int32 multiples of the format's quantum 2^q (q of
    _fmt_range), and q; None when a code is NaN or infinite."""
    X, lut = _source(codes, fmt, np.float64)
    if _has_specials(X, lut, fmt):
        return None
    _, q = _fmt_range(fmt)
    if lut is None:
        return np.ldexp(X, -q).astype(np.int32), q
    ints = np.ldexp(np.where(np.isfinite(lut), lut, 0.0), -q)
    return ints.astype(np.int32)[X], q          # (the NaN codes unused)


def _exact_int(job, *, amx):
    """Plan "int" over the whole job; False when an operand holds NaN or
    inf (the caller's other plans patch them in).  The int64 sum times
    2^(qa+qb) is exact in float64 (wa + wb + L <= 53), so its cast to
    float32 is the one rounding; the block epilogue then applies the
    scales, block by block."""
    ia, ib = _int_values(job.a, job.fa), _int_values(job.b, job.fb)
    if ia is None or ib is None:
        return False
    (A, qa), (B, qb) = ia, ib
    bits = max(_fmt_width(job.fa), _fmt_width(job.fb))
    bk, nb = job.bk, job.nb
    for idx, _, Ai, Bi, as_, bs in job.items(A, B):
        M, N = Ai.shape[0], Bi.shape[1]
        out = np.empty((M, N), np.float32)
        for blk in range(nb):
            k0, k1 = blk * bk, (blk + 1) * bk
            Ab = Ai if nb == 1 else np.ascontiguousarray(Ai[:, k0:k1])
            c = _gemm_exact_int(Ab, Bi[k0:k1], bits, amx=amx)
            with np.errstate(over="ignore"):     # sums beyond float32: inf
                p = np.ldexp(c.astype(np.float64), qa + qb).astype(np.float32)
            _scale_acc(p, as_, bs, nb, blk, out)
        job.out[idx] = out
    return True


def _exact_fused(job, dtype):
    """Plans "f32" / "f64" over the whole job (the formats guarantee that
    every partial sum is exact in dtype); False when an operand holds NaN
    or inf (then the caller patches them in block by block)."""
    A, alut = _source(job.a, job.fa, dtype)
    B, blut = _source(job.b, job.fb, dtype)
    if _has_specials(A, alut, job.fa) or _has_specials(B, blut, job.fb):
        return False
    for idx, _, Ai, Bi, as_, bs in job.items(A, B):
        job.out[idx] = _exact_narrow(Ai, Bi, as_, bs, job.bk, alut, blut,
                                     isa=job.isa)
    return True


def _exact_narrow(A, B, as_, bs, bk, alut=None, blut=None, *, isa):
    """The float32 ("f32" plan) or float64 ("f64") product of operands
    whose every partial sum is exact in that type, so that any order gives
    the exact sum; lowprec's kernels apply the block epilogue in cache."""
    dtype = (alut if alut is not None else A).dtype
    if dtype == np.float32:
        out = np.empty((A.shape[0], B.shape[1]), np.float32)
        _gemm_f32(A, B, as_, bs, bk, out, alut, blut, isa=isa)
        return out
    return _gemm_f64(A, B, as_, bs, bk, alut=alut, blut=blut, isa=isa)


def _exact_2d(A, B, fa, fb, as_, bs, bk, nb, *, plan, subblocks, isa):
    """One 2-D exact product.  Without NaN / inf the plan runs once over
    every block with the scales; with them, block by block with unit
    scales, the IEEE results of the non-finite products patched into each
    p_b before the scale epilogue."""
    M, K = A.shape
    N = B.shape[1]
    finite_a, finite_b = np.isfinite(A), np.isfinite(B)
    special = not (finite_a.all() and finite_b.all())
    A0 = np.where(finite_a, A, 0.0) if special else A
    B0 = np.where(finite_b, B, 0.0) if special else B
    run = _choose_plan(A0, B0, fa, fb, bk, plan=plan, subblocks=subblocks,
                       isa=isa)
    if not special:
        return run(0, K, as_, bs, nb)
    out = np.empty((M, N), np.float32)
    ones_a, ones_b = np.ones((M, 1), np.float32), np.ones((1, N), np.float32)
    for blk in range(nb):
        k0, k1 = blk * bk, (blk + 1) * bk
        p = run(k0, k1, ones_a, ones_b, 1)
        _patch_specials(p, A[:, k0:k1], B[k0:k1])
        _scale_acc(p, as_, bs, nb, blk, out)
    return out


def _patch_specials(p, A, B):
    """IEEE 754 products and sums of non-finite operands, order-free: NaN
    when a NaN meets the row/column, inf * 0, or both +inf and -inf
    products; else +-inf when some product is infinite."""
    f = np.float32
    an, bn_ = np.isnan(A), np.isnan(B)
    api, ami = A == np.inf, A == -np.inf
    bpi, bmi = B == np.inf, B == -np.inf
    apos, aneg, azero = (A > 0).astype(f), (A < 0).astype(f), (A == 0)
    bpos, bneg, bzero = (B > 0).astype(f), (B < 0).astype(f), (B == 0)
    ainf, binf = (api | ami).astype(f), (bpi | bmi).astype(f)
    api, ami, bpi, bmi = (api.astype(f), ami.astype(f), bpi.astype(f),
                          bmi.astype(f))
    nan = an.any(axis=1)[:, None] | bn_.any(axis=0)[None, :]
    nan |= (ainf @ bzero.astype(f) + azero.astype(f) @ binf) > 0
    pinf = (api @ bpos + ami @ bneg + apos @ bpi + aneg @ bmi) > 0
    ninf = (api @ bneg + ami @ bpos + apos @ bmi + aneg @ bpi) > 0
    nan |= pinf & ninf
    p[pinf] = np.inf
    p[ninf] = -np.inf
    p[nan] = np.nan


def _row_ranges(X, f, axis):
    """Per row (axis=1) or column (axis=0) of finite X: (top, q, width)
    with every non-zero |x| < 2^(top+1) a multiple of 2^q, and width =
    top - q + 1; (0, 0, 0) for lines of zeros."""
    rows, cols = X.shape
    n = rows if axis == 1 else cols
    T = np.empty(n, np.int32)
    Q = np.empty(n, np.int32)
    if isinstance(f, IntFormat):
        emin = mbits = 1 << 20
    else:
        emin, mbits = f.emin, f.mbits
    px, pt, pq = _ptr(X, "double *"), _ptr(T, "int32_t *"), \
        _ptr(Q, "int32_t *")

    def kernel(l0, l1):
        lib.lp_line_ranges(px, rows, cols, axis, emin, mbits, pt, pq, l0, l1)
        return 0
    _split_rows(kernel, n, rows * cols * 4, align=16)
    zero = T == np.iinfo(np.int32).min
    T[zero] = 0
    Q[zero] = 0
    W = np.where(zero, 0, T.astype(np.int64) - Q + 1)
    return T, Q, W


def _choose_plan(A, B, fa, fb, bk, *, plan=None, subblocks=None, isa):
    """run(k0, k1, as_, bs, nblocks) -> float32 (M, N): the scaled result
    of the whole blocks in [k0, k1) of the finite operands A, B, by the
    named plan where it applies (None: the cheapest), else the next
    that does ("dot" always does)."""
    M, K = A.shape
    N = B.shape[1]
    L = _clog2(bk)
    f32ok = _exact_in_f32(fa) and _exact_in_f32(fb)
    if plan != "dot":
        Ta, _, Wa = _row_ranges(A, fa, axis=1)
        Tb, _, Wb = _row_ranges(B, fb, axis=0)
        RA, RB = int(Wa.max(initial=0)), int(Wb.max(initial=0))
        if RA == 0 or RB == 0:
            def plan_zero(k0, k1, as_, bs, nblk):
                out = np.zeros((M, N), np.float32)
                for blk in range(nblk):
                    _scale_acc(out, as_, bs, nblk, blk, out)
                return out
            return plan_zero
        if plan in ("f32", None) and f32ok and RA + RB + L <= 24:
            A32, B32 = A.astype(np.float32), B.astype(np.float32)

            def plan_f32(k0, k1, as_, bs, nblk):
                return _exact_narrow(np.ascontiguousarray(A32[:, k0:k1]),
                                     np.ascontiguousarray(B32[k0:k1]), as_,
                                     bs, bk, isa=isa)
            return plan_f32
        if plan in ("f64", None) and RA + RB + L <= 53:
            def plan_f64(k0, k1, as_, bs, nblk):
                return _exact_narrow(np.ascontiguousarray(A[:, k0:k1]),
                                     np.ascontiguousarray(B[k0:k1]), as_,
                                     bs, bk, isa=isa)
            return plan_f64
        if plan in ("sliced", None):
            sl = _slice_plan(RA, RB, bk, subblocks=subblocks)
            if sl is not None:
                return _sliced(A, B, Ta, Tb, sl, bk, isa=isa)
    return _dot_plan(A, B, fa, fb, bk)


def _slice_plan(RA, RB, bk, *, subblocks=None):
    """(WA, nA, WB, nB, nch) minimising the work of the sliced plan: slices
    of WA and WB bits, each block cut into nch sub-blocks of L = bk / nch
    steps, with WA + WB + log2(L) <= 53 so that every slice product is
    exact in float64, and the exact total within 2^114 (lp_exact_add).
    subblocks: only nch = subblocks (None: any)."""
    best = None
    for nch in (1, 2, 4, 8, 16, 32):
        if bk % nch or (nch > 1 and bk // nch < 64):
            continue
        if subblocks is not None and nch != subblocks:
            continue
        S = 53 - _clog2(bk // nch)
        for WA in range(1, S):
            WB = S - WA
            nA, nB = -(-RA // WA), -(-RB // WB)
            pairs = nA * nB
            if nA * WA + nB * WB + _clog2(bk) + 2 > 114 \
                    or nch * pairs > 2048 or pairs > 64:
                continue
            cost = pairs * (bk + nch * 100)
            if best is None or cost < best[0]:
                best = (cost, WA, nA, WB, nB, nch)
    return None if best is None else best[1:]


def _slices(X, T, W, n, axis):
    """(n, rows, cols): slice s holds the bits of each value in
    [2^(T+1-(s+1)W), 2^(T+1-sW)) of its row's (axis=1) / column's top T."""
    rows, cols = X.shape
    out = np.empty((n, rows, cols), np.float64)
    px, pt, po = _ptr(X, "double *"), _ptr(T, "int32_t *"), \
        _ptr(out, "double *")

    def kernel(r0, r1):
        lib.lp_slice(px, rows, cols, axis, pt, W, n, po, r0, r1)
        return 0
    _split_rows(kernel, rows, rows * cols * 8 * n, align=8)
    return out


def _sliced(A, B, Ta, Tb, sl, bk, *, isa):
    """The sliced plan: A' and B' list, block by block, the sub-blocks
    (chunk c, slice pair (s, t)) of A_s[:, chunk] and B_t[chunk, :]; one
    lp_gemm_f64_exact pass sums each sub-block in float64 (exact) and adds
    it exactly in units of 2^(ua[i] + ub[j])."""
    WA, nA, WB, nB, nch = sl
    M, K = A.shape
    N = B.shape[1]
    As = _slices(A, Ta, WA, nA, axis=1)
    Bs = _slices(B, Tb, WB, nB, axis=0)
    ua = (Ta + 1 - nA * WA).astype(np.int32)
    ub = (Tb + 1 - nB * WB).astype(np.int32)
    ps = [s for s in range(nA) for _ in range(nB)]
    ts = [t for _ in range(nA) for t in range(nB)]
    L = bk // nch

    def plan(k0, k1, as_, bs, nblk):
        A4 = As[:, :, k0:k1].reshape(nA, M, nblk, nch, L)[ps]
        A2 = np.ascontiguousarray(A4.transpose(1, 2, 3, 0, 4)).reshape(M, -1)
        B4 = Bs[:, k0:k1].reshape(nB, nblk, nch, L, N)[ts]
        B2 = np.ascontiguousarray(B4.transpose(1, 2, 0, 3, 4)).reshape(-1, N)
        K2 = A2.shape[1]
        bp = _pack_b(B2, L, isa=isa)
        out = np.empty((M, N), np.float32)
        pa, pb = _ptr(A2, "double *"), _ptr(bp, "double *")
        pua, pub = _ptr(ua, "int32_t *"), _ptr(ub, "int32_t *")
        psa, psb = _ptr(as_, "float *"), _ptr(bs, "float *")
        po = _ptr(out, "float *")

        def kernel(r0, r1):
            return lib.lp_gemm_f64_exact(pa, pb, M, N, K2, L, nch * len(ps),
                                         pua, pub, psa, psb, po, r0, r1,
                                         isa)
        _split_rows(kernel, M, M * N * K2, align=24)
        return out
    return plan


def _dot_plan(A, B, fa, fb, bk):
    """The "dot" plan: a long fixed-point accumulator per element
    (lp_exact_dot), for data of any range."""
    M, K = A.shape
    N = B.shape[1]
    ta, qa = _fmt_range(fa)
    tb, qb = _fmt_range(fb)
    lo = qa + qb
    nbits = (ta + 1) + (tb + 1) - lo + _clog2(K + 1) + 2
    nlimbs = nbits // 32 + 4
    if K >= 1 << 30:
        raise ValueError(f"K = {K} is too long for the exact accumulator "
                         "(at most 2^30)")
    Bt = np.ascontiguousarray(B.T)

    def plan(k0, k1, as_, bs, nblk):
        # the pointers are taken here, while A and Bt are alive
        pa, pbt = _ptr(A, "double *"), _ptr(Bt, "double *")
        out = np.empty((M, N), np.float32)
        p = np.empty((M, N), np.float32)
        po = _ptr(p, "float *")
        for blk in range(nblk):
            b0 = k0 + blk * bk

            def kernel(r0, r1, b0=b0):
                return lib.lp_exact_dot(pa, pbt, M, N, K, b0, b0 + bk, lo,
                                        nlimbs, po, r0, r1)
            if _split_rows(kernel, M, M * N * bk * 8, align=1):
                raise AssertionError("exact accumulator: a product did not "
                                     "fit")
            _scale_acc(p, as_, bs, nblk, blk, out)
        return out
    return plan


def _run_exact_c(job, c):
    """The exact rule with an accumulator input: each output is the exact
    A*B + c rounded once to float32 (c, float64 values of float32 numbers
    broadcast to job.out, goes into the first block; scales are 1).  The
    finite part runs on the long accumulator (lp_exact_dot_c, c added as a
    term); an output whose row or column holds NaN / inf, or whose c is
    not finite, is the IEEE sum of the exact product's (non-finite or
    exactly rounded) result and c."""
    fa, fb, bk, nb = job.fa, job.fb, job.bk, job.nb
    a64 = _decode(job.a, fa, np.float64)
    b64 = _decode(job.b, fb, np.float64)
    ta, qa = _fmt_range(fa)
    tb, qb = _fmt_range(fb)
    lo = min(qa + qb, -149)
    M, N, K = job.M, job.N, job.K
    nbits = max((ta + 1) + (tb + 1) + _clog2(K + 1), 129) - lo + 4
    nlimbs = nbits // 32 + 4
    if K >= 1 << 30:
        raise ValueError(f"K = {K} is too long for the exact accumulator "
                         "(at most 2^30)")
    plain = None
    for idx, _, A, B, as_, bs in job.items(a64, b64):
        ci = np.ascontiguousarray(c[idx], dtype=np.float64)
        fin_a, fin_b, fin_c = np.isfinite(A), np.isfinite(B), np.isfinite(ci)
        A0 = np.where(fin_a, A, 0.0)
        B0t = np.ascontiguousarray(np.where(fin_b, B, 0.0).T)
        c0 = np.where(fin_c, ci, 0.0)
        out = np.empty((M, N), np.float32)
        p = np.empty((M, N), np.float32)
        pa, pbt = _ptr(A0, "double *"), _ptr(B0t, "double *")
        po = _ptr(p, "float *")
        for blk in range(nb):
            b0 = blk * bk
            pc = _ptr(c0, "double *") if blk == 0 else ffi.NULL

            def kernel(r0, r1, b0=b0, pc=pc):
                return lib.lp_exact_dot_c(pa, pbt, M, N, K, b0, b0 + bk, lo,
                                          nlimbs, pc, po, r0, r1)
            if _split_rows(kernel, M, M * N * bk * 8, align=1):
                raise AssertionError("exact accumulator: a term did not fit")
            _scale_acc(p, as_, bs, nb, blk, out)
        bad = ~fin_c | ~fin_a.all(axis=1)[:, None] | ~fin_b.all(axis=0)[None]
        if bad.any():
            if plain is None:
                plain = np.zeros_like(job.out)
                _run_exact(_with_out(job, plain))
            with np.errstate(invalid="ignore", over="ignore"):
                fix = plain[idx] + ci.astype(np.float32)
            out[bad] = fix[bad]
        job.out[idx] = out


def _with_out(job, out):
    """A copy of job writing into out."""
    import copy
    j = copy.copy(job)
    j.out = out
    return j
