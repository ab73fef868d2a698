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

The kernels are in csrc/ (see gemm.h).  Python decodes the codes (exactly, to
float32 or float64), checks shapes and scales, chooses a plan, and splits
output rows over the thread pool of lowprec.convert.
"""
from __future__ import annotations

import secrets

import ml_dtypes
import numpy as np

from ._clib import ffi, lib
from .convert import (_pool, as_codes, check_rounding, decode, encode,
                      make_opts, num_threads)
from .formats import FloatFormat, IntFormat, get_format

__all__ = ["scaled_matmul", "Accumulator", "int_matmul", "requantize"]

ACCUMULATE_MODES = ("exact", "fp32", "fast")

# Instruction set of the C kernels: lib.LP_ISA_AUTO, or a lower level
# (lib.LP_ISA_GENERIC, LP_ISA_AVX2, LP_ISA_AVX512) to test every kernel.
_ISA = lib.LP_ISA_AUTO

# Multiply-adds below which a product runs on one thread.
_MIN_PARALLEL_WORK = 1 << 21

_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


class _DTypeError(TypeError, ValueError):
    """A wrong dtype: a TypeError, and a ValueError for callers that catch
    the argument errors of this module together."""


# -- threads ---------------------------------------------------------------

def _split_rows(kernel, m, work, align=8):
    """Runs kernel(row0, row1) over [0, m) in per-thread row ranges (aligned
    to the micro-tile heights) and ORs the returned flags; a negative return
    means the kernel ran out of memory."""
    threads = 1
    if work >= _MIN_PARALLEL_WORK:
        threads = max(1, min(num_threads(), m // align))
    if threads <= 1:
        results = [kernel(0, m)]
    else:
        bounds = [m * t // threads // align * align for t in range(threads)]
        bounds.append(m)
        futures = [_pool().submit(kernel, bounds[t], bounds[t + 1])
                   for t in range(threads)]
        results = [f.result() for f in futures]
    flags = 0
    for r in results:
        r = 0 if r is None else int(r)
        if r < 0:
            raise MemoryError("lowprec matmul kernel: out of memory")
        flags |= r
    return flags


def _ptr(a, ctype):
    return ffi.cast(ctype, a.ctypes.data)


# -- operands --------------------------------------------------------------

def _operand(x, fmt, name):
    """(codes, format) of a matmul operand: a code array with its format, or
    an ml_dtypes / float16 / float32 array whose dtype names the format."""
    arr = np.asarray(x)
    if fmt is not None:
        fmt = get_format(fmt)
    dt = arr.dtype
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension for a "
                         f"matrix product, got a scalar")
    if dt.kind in "iu":
        if fmt is None:
            raise ValueError(f"{name} holds codes of dtype {dt}: give "
                             f"{name}_format= (or pass an ml_dtypes array)")
        return as_codes(arr, fmt), fmt
    try:
        dfmt = get_format(dt)
    except (TypeError, ValueError):
        raise _DTypeError(
            f"{name} has dtype {dt}: pass integer codes with {name}_format=, "
            "or an ml_dtypes / float16 / bfloat16 array (encode float32/64 "
            "values first with lp.encode)") from None
    if fmt is not None and fmt != dfmt:
        raise ValueError(f"{name} has dtype {dt.name} but {name}_format is "
                         f"{fmt.name or fmt!r}")
    if isinstance(dfmt, IntFormat):
        return np.ascontiguousarray(arr.astype(dfmt.code_dtype)), dfmt
    if not dt.isnative:
        arr = arr.astype(dt.newbyteorder("="))
    return np.ascontiguousarray(arr).view(dfmt.code_dtype), dfmt


def _matmul_shapes(a, b, an="a", bn="b"):
    """np.matmul shape rules: (a as >= 2-D, b as >= 2-D, batch shape, which
    of the result's last two axes to drop for 1-D operands)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: {an} has shape {a.shape} and {bn} has "
                         f"shape {b.shape}; the inner dimensions "
                         f"{a2.shape[-1]} and {b2.shape[-2]} differ")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {an} has shape {a.shape} and {bn} has "
                         f"shape {b.shape}; the batch dimensions "
                         f"{a2.shape[:-2]} and {b2.shape[:-2]} do not "
                         "broadcast") from None
    drop = []
    if a.ndim == 1:
        drop.append(-2)
    if b.ndim == 1:
        drop.append(-1)
    return a2, b2, tuple(batch), drop


def _squeeze(res, drop):
    return np.squeeze(res, axis=tuple(drop)) if drop else res


# -- scales ----------------------------------------------------------------

def _scale_values(s, name):
    """(float32 array, is_e8m0) of a scale argument, checked finite > 0."""
    arr = np.asarray(s)
    e8m0 = arr.dtype == _E8M0
    if e8m0:
        v = decode(arr.view(np.uint8), "float8_e8m0fnu", dtype=np.float32)
    elif arr.dtype.kind in "fiu" or arr.dtype.type.__module__ == "ml_dtypes":
        v = np.asarray(arr.astype(np.float32))
    else:
        raise _DTypeError(f"{name} must be real numbers (float32 values) or "
                          f"an ml_dtypes.float8_e8m0fnu array, got dtype "
                          f"{arr.dtype}")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        first = arr.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise ValueError(f"{name} must be finite and > 0 in float32; got "
                         f"{first!r} ({int(bad.sum())} bad value(s))")
    return v, e8m0


def _scale_layout(a_scale, b_scale, block, batch, M, K, N):
    """Checks block and scales; returns (bk, nb, As, Bs) with As float32 of
    shape batch + (M, nb) and Bs batch + (nb, N) (broadcast views)."""
    sa, ea = _scale_values(a_scale, "a_scale")
    sb, eb = _scale_values(b_scale, "b_scale")
    if block is None:
        ka = sa.shape[-1] if sa.ndim >= 2 else 1
        kb = sb.shape[-2] if sb.ndim >= 2 else 1
        if max(ka, kb) > 1:
            if ea or eb:
                block = (32,)          # MX: e8m0 scales of 32-blocks
            else:
                raise ValueError(
                    f"a_scale of shape {sa.shape} and b_scale of shape "
                    f"{sb.shape} vary along K: give block=(bk,) for "
                    "blockwise scales")
    bn = 1
    if block is None:
        bk = max(K, 1)
    else:
        if isinstance(block, (int, np.integer)):
            block = (block,)
        try:
            block = tuple(int(v) for v in block)
        except (TypeError, ValueError):
            raise ValueError(f"block must be (bk,) or (bk, bn), got "
                             f"{block!r}") from None
        if len(block) not in (1, 2) or min(block) < 1:
            raise ValueError(f"block must be (bk,) or (bk, bn) of positive "
                             f"integers, got {block!r}")
        bk = block[0]
        if K % bk:
            raise ValueError(f"block size {bk} does not divide K = {K}")
        if len(block) == 2:
            bn = block[1]
            if N % bn:
                raise ValueError(f"block size bn = {bn} does not divide "
                                 f"N = {N}")
    nb = K // bk if K else 0
    nbs = max(nb, 1)
    want_a = tuple(batch) + (M, nbs)
    want_b = tuple(batch) + (nbs, N // bn)
    As = _broadcast_scale(sa, want_a, "a_scale", "(M, K/bk)" if block
                          else "(M, 1)")
    Bs = _broadcast_scale(sb, want_b, "b_scale",
                          "(K/bk, N/bn)" if bn > 1 else
                          "(K/bk, N)" if block else "(1, N)")
    if bn > 1:
        Bs = np.repeat(Bs, bn, axis=-1)
    return bk, nb, As, Bs


def _broadcast_scale(s, want, name, layout):
    if s.ndim not in (0,) and s.size != 1 and s.ndim < 2:
        raise ValueError(f"{name} of shape {s.shape} is ambiguous: use a "
                         f"scalar or an array of shape {layout} = "
                         f"{want[-2:]}")
    try:
        if np.broadcast_shapes(s.shape, want) != want:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {s.shape} does not fit the "
                         f"layout {layout} = {want[-2:]} (with batch "
                         f"{want[:-2]})") from None
    return np.broadcast_to(s, want)


# -- accumulators ------------------------------------------------------------

class Accumulator:
    """Sequential accumulation rounded to ``format`` after every step.

    ``scaled_matmul(..., accumulate=Accumulator("bfloat16"))`` computes each
    K-block's sum as acc = +0, then for k in order
    ``acc = round(acc + a[i, k] * b[k, j])``: the product exact, the exact
    sum rounded once to ``format`` with ``rounding`` (any of lowprec's
    modes), ``saturate`` and ``subnormals`` as in :func:`lowprec.encode`.
    An exactly zero sum gets IEEE 754's sign (+0, or -0 when both terms
    are -0; under toward_negative -0 unless both are +0).  NaN and infinity
    follow IEEE 754 (NaN operands or inf * 0 give NaN, inf + -inf gives
    NaN) and are then stored as encode stores them (a format without NaN
    raises ValueError).  Stochastic rounding draws for output element e
    (flat C-order index over the batched output) and step k the bits of
    element index e * K + k, from ``seed`` (fixed when the Accumulator is
    made: the same Accumulator gives the same bits every call).

    ``format`` must be a signed float format with a zero.
    """

    __slots__ = ("format", "rounding", "saturate", "subnormals", "seed",
                 "rbits")

    def __init__(self, format, rounding="nearest_even", *, saturate=False,
                 subnormals=True, seed=None, rbits=None):
        fmt = get_format(format)
        if not isinstance(fmt, FloatFormat) or not fmt.signed \
                or not fmt.has_zero:
            raise ValueError(f"Accumulator format must be a signed float "
                             f"format with a zero, not {fmt.name or fmt!r}")
        mode = check_rounding(rounding)
        if seed is None:
            seed = secrets.randbits(64) if mode == lib.LP_SR else 0
        if rbits is None:
            rbits = 64
        if not isinstance(rbits, (int, np.integer)) or not 1 <= rbits <= 64:
            raise ValueError(f"rbits must be an integer in 1..64, got "
                             f"{rbits!r}")
        object.__setattr__(self, "format", fmt)
        object.__setattr__(self, "rounding", rounding)
        object.__setattr__(self, "saturate", bool(saturate))
        object.__setattr__(self, "subnormals", bool(subnormals))
        object.__setattr__(self, "seed", int(seed) % (1 << 64))
        object.__setattr__(self, "rbits", int(rbits))

    def __setattr__(self, key, value):
        raise AttributeError("Accumulator is immutable")

    def __reduce__(self):
        return (_accumulator, (self.format, self.rounding, self.saturate,
                               self.subnormals, self.seed, self.rbits))

    def _key(self):
        return (self.format, check_rounding(self.rounding), self.saturate,
                self.subnormals, self.seed, self.rbits)

    def __eq__(self, other):
        return isinstance(other, Accumulator) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        extra = ""
        if self.saturate:
            extra += ", saturate=True"
        if not self.subnormals:
            extra += ", subnormals=False"
        if check_rounding(self.rounding) == lib.LP_SR:
            extra += f", seed={self.seed}, rbits={self.rbits}"
        return (f"Accumulator({self.format.name or self.format!r}, "
                f"{self.rounding!r}{extra})")

    def _opts(self):
        return make_opts(self.format, self.rounding, self.saturate,
                         self.subnormals, self.seed, self.rbits, None)

    def _is_fp32_fma(self):
        """Exactly the "fp32" rule: float32, nearest even, IEEE overflow."""
        return (self.format == get_format("float32")
                and check_rounding(self.rounding) == lib.LP_RNE
                and not self.saturate and self.subnormals)


def _accumulator(fmt, rounding, saturate, subnormals, seed, rbits):
    return Accumulator(fmt, rounding, saturate=saturate,
                       subnormals=subnormals, seed=seed, rbits=rbits)


def _check_accumulate(accumulate):
    if isinstance(accumulate, Accumulator):
        return accumulate
    if isinstance(accumulate, str) and accumulate in ACCUMULATE_MODES:
        return accumulate
    raise ValueError(f"accumulate must be one of {', '.join(ACCUMULATE_MODES)}"
                     f" or an lp.Accumulator, got {accumulate!r}")


# -- format geometry -------------------------------------------------------

def _fmt_range(f):
    """(top, q): every finite non-zero value v has |v| < 2^(top+1) and is a
    multiple of 2^q."""
    if isinstance(f, IntFormat):
        return max(abs(f.min), f.max).bit_length() - 1, 0
    return f.emax, f.emin - f.mbits


def _fmt_width(f):
    top, q = _fmt_range(f)
    return top - q + 1


def _exact_in_f32(f):
    """Every finite value of f is a float32."""
    if isinstance(f, IntFormat):
        return True
    return f.mbits <= 23 and f.emax <= 127 and f.emin - f.mbits >= -149


def _clog2(n):
    return max(0, int(n - 1).bit_length())


# -- the public product ------------------------------------------------------

def scaled_matmul(a, b, *, a_format=None, b_format=None, a_scale=1.0,
                  b_scale=1.0, block=None, accumulate="fp32", out_format=None,
                  out_scale=None, out_rounding="nearest_even", saturate=True):
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

    accumulate: "exact", "fp32" (default), "fast" or an Accumulator; see
    the module docstring and docs/matmul.md for each rule.

    Returns float32 (..., M, N), or codes of out_format:
    encode(acc, out_format, scale=out_scale, rounding=out_rounding,
    saturate=saturate).
    """
    A, fa = _operand(a, a_format, "a")
    B, fb = _operand(b, b_format, "b")
    a2, b2, batch, drop = _matmul_shapes(A, B)
    M, K = a2.shape[-2:]
    N = b2.shape[-1]
    mode = _check_accumulate(accumulate)
    bk, nb, As, Bs = _scale_layout(a_scale, b_scale, block, batch, M, K, N)
    if out_format is not None:
        out_fmt = get_format(out_format)
        check_rounding(out_rounding)
    out = np.zeros(batch + (M, N), np.float32)
    if out.size and K:
        job = _Job(a2, b2, fa, fb, As, Bs, bk, nb, batch, out)
        if isinstance(mode, Accumulator):
            if mode._is_fp32_fma() and _exact_in_f32(fa) \
                    and _exact_in_f32(fb):
                _run_fp32(job)
            else:
                _run_accumulator(job, mode)
        elif mode == "fast":
            _run_fast(job)
        elif mode == "fp32":
            if _exact_in_f32(fa) and _exact_in_f32(fb):
                _run_fp32(job)
            else:
                _run_accumulator(job, Accumulator("float32"))
        else:
            _run_exact(job)
    res = out
    if out_format is not None:
        res = encode(out, out_fmt, scale=out_scale, rounding=out_rounding,
                     saturate=saturate)
    return _squeeze(res, drop)


class _Job:
    """One product: operands (>= 2-D codes), scales, output."""

    def __init__(self, a, b, fa, fb, As, Bs, bk, nb, batch, out):
        self.a, self.b, self.fa, self.fb = a, b, fa, fb
        self.As, self.Bs = As, Bs
        self.bk, self.nb, self.batch, self.out = bk, nb, batch, out
        self.M, self.K = a.shape[-2:]
        self.N = b.shape[-1]

    def items(self, A, B):
        """(batch index, flat batch number, A slice, B slice, as, bs) with
        A, B arrays (values or codes) of the operands' unbroadcast shapes."""
        Ab = np.broadcast_to(A, self.batch + A.shape[-2:])
        Bb = np.broadcast_to(B, self.batch + B.shape[-2:])
        for flat, idx in enumerate(np.ndindex(*self.batch)):
            yield (idx, flat, np.ascontiguousarray(Ab[idx]),
                   np.ascontiguousarray(Bb[idx]),
                   np.ascontiguousarray(self.As[idx], dtype=np.float32),
                   np.ascontiguousarray(self.Bs[idx], dtype=np.float32))


_VIEW_DTYPES = {"bfloat16": np.dtype(ml_dtypes.bfloat16),
                "float16": np.dtype(np.float16),
                "float32": np.dtype(np.float32)}


def _decode(codes, fmt, dtype):
    """Exact values of codes as float32 / float64 (decode), through the
    NumPy / ml_dtypes casts where the codes are a native float type's bits
    (several times faster than the generic decode for 16-bit codes)."""
    view = _VIEW_DTYPES.get(fmt.name) if isinstance(fmt, FloatFormat) \
        else None
    if view is not None and fmt == get_format(fmt.name):
        with np.errstate(invalid="ignore"):      # signalling NaN codes
            return codes.view(view).astype(dtype)
    return decode(codes, fmt, dtype=dtype)


def _all_ones(s):
    return bool(np.all(s == 1))


# -- "fast" ------------------------------------------------------------------

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


# -- "fp32" ------------------------------------------------------------------

def _pack_b(b, bk, lut=None):
    """b (k x n: float32 / float64 values, or uint8 codes decoded through
    lut) packed once for lp_gemm_f32/f64, the panels split over threads."""
    k, n = b.shape
    dtype = (lut if lut is not None else b).dtype
    es = dtype.itemsize
    bp = np.empty(max(1, lib.lp_gemm_pack_size(es, _ISA, k, n)), dtype)
    npan = lib.lp_gemm_panels(es, _ISA, n)
    pb, pbp = _ptr(b, "void *"), _ptr(bp, "void *")
    pl = ffi.NULL if lut is None else _ptr(lut, "void *")

    def kernel(j0, j1):
        lib.lp_gemm_pack_b(es, _ISA, pb, pl, k, n, bk, pbp, j0, j1)
        return 0
    _split_rows(kernel, npan, k * n * 64, align=1)
    return bp


def _source(codes, fmt, dtype):
    """An operand for the kernels: (uint8 codes, table of the values of
    the 256 bytes) for formats of at most 8 bits, so that the kernels
    decode while they pack; else (decoded values, None)."""
    if codes.dtype.itemsize != 1:
        return _decode(codes, fmt, dtype), None
    if isinstance(fmt, IntFormat):
        valid = np.arange(fmt.min, fmt.max + 1).astype(fmt.code_dtype)
    else:
        valid = np.arange(1 << fmt.nbits).astype(fmt.code_dtype)
    lut = np.zeros(256, dtype)
    lut[valid.view(np.uint8)] = _decode(valid, fmt, dtype)
    return codes.view(np.uint8), lut


def _has_specials(x, lut, fmt):
    """Does the operand hold a NaN or an infinity?  From the codes when
    they come with a table: the special codes of a float format are the
    top magnitudes (IEEE inf/NaN, OCP E4M3's NaN) or the one code 100...0
    (fnuz NaN), each a cheap vectorised test."""
    if lut is None:
        return not np.isfinite(x).all()
    bad = np.flatnonzero(~np.isfinite(lut))
    if bad.size == 0:
        return False
    if isinstance(fmt, FloatFormat):
        mask = (1 << (fmt.ebits + fmt.mbits)) - 1
        mags = np.unique(bad & mask)
        if fmt.signed and bad.size == 2 * mags.size \
                and mags[-1] == mask and mags.size == mask - mags[0] + 1:
            return bool(((x & np.uint8(mask)) >= mags[0]).any())
        if bad.size == 1:
            return bool((x == np.uint8(bad[0])).any())
    return bool(np.isin(x, bad.astype(np.uint8)).any())


def _gemm_f32(a, b, as_, bs, bk, out, alut=None, blut=None):
    """lp_gemm_f32 over row ranges: the sequential fmaf chain per block and
    the scale epilogue."""
    M, K = a.shape
    N = b.shape[1]
    bp = _pack_b(b, bk, blut)
    pa, pb = _ptr(a, "void *"), _ptr(bp, "float *")
    pal = ffi.NULL if alut is None else _ptr(alut, "float *")
    psa, psb = _ptr(as_, "float *"), _ptr(bs, "float *")
    po = _ptr(out, "float *")

    def kernel(r0, r1):
        return lib.lp_gemm_f32(pa, pal, pb, M, N, K, bk, psa, psb, po, r0,
                               r1, _ISA)
    _split_rows(kernel, M, M * N * K, align=24)


def _run_fp32(job):
    A, alut = _source(job.a, job.fa, np.float32)
    B, blut = _source(job.b, job.fb, np.float32)
    for idx, _, Ai, Bi, as_, bs in job.items(A, B):
        out = np.empty((job.M, job.N), np.float32)
        _gemm_f32(Ai, Bi, as_, bs, job.bk, out, alut, blut)
        job.out[idx] = out


# -- Accumulator -------------------------------------------------------------

def _run_accumulator(job, acc):
    fmt = acc.format
    opts = acc._opts()
    a64 = _decode(job.a, job.fa, np.float64)
    b64 = _decode(job.b, job.fb, np.float64)
    M, N, K, bk = job.M, job.N, job.K, job.bk
    for idx, flat, A, B, as_, bs in job.items(a64, b64):
        Bt = np.ascontiguousarray(B.T)
        pa, pbt = _ptr(A, "double *"), _ptr(Bt, "double *")
        index0 = flat * M * N * K
        res = None
        for blk in range(job.nb):
            p = np.empty((M, N), np.float64)
            pp = _ptr(p, "double *")
            k0, k1 = blk * bk, (blk + 1) * bk

            def kernel(r0, r1, k0=k0, k1=k1, pp=pp):
                return lib.lp_accumulate(fmt.struct, opts, pa, pbt, M, N, K,
                                         k0, k1, index0, pp, r0, r1)
            err = _split_rows(kernel, M, M * N * (k1 - k0) * 16, align=1)
            if err & lib.LP_ERR_NAN:
                raise ValueError(f"accumulator format {fmt.name or fmt!r} "
                                 "has no NaN encoding: the accumulation "
                                 "produced NaN (NaN operands, inf * 0 or "
                                 "inf - inf)")
            s = (as_[:, blk:blk + 1] * bs[blk:blk + 1, :]).astype(np.float64)
            t = (p * s).astype(np.float32)
            res = t if res is None else res + t
        job.out[idx] = res


# -- "exact" -----------------------------------------------------------------

# Tests force each plan of the exact rule with _FORCE_PLAN, and the number
# of sub-blocks of the sliced plan with _FORCE_SUBBLOCKS.
_FORCE_PLAN = None
_FORCE_SUBBLOCKS = None


def _run_exact(job):
    """The exact sum of each block rounded once to float32.

    Plans (all give the same bits; _choose_plan picks the cheapest):
      "f32"     every partial sum is exact in float32 (narrow formats:
                fp4, fp6 e2m3): the float32 kernel, order irrelevant
      "f64"     every partial sum is exact in float64 (e4m3, e3m4, fp6,
                int8, and wider formats whose data span few binades): one
                float64 product, each block rounded once in its epilogue
      "sliced"  the operands cut into slices of few bits below each row's /
                column's top binade; every slice product is exact in
                float64 and the kernel adds them exactly into int64 pairs
      "dot"     a long fixed-point accumulator per element (any range)
    NaN and inf operands: the finite products go through a plan, block by
    block, and the IEEE results of the non-finite ones are patched in.
    """
    fa, fb, bk = job.fa, job.fb, job.bk
    L = _clog2(bk)
    wa, wb = _fmt_width(fa), _fmt_width(fb)
    f32ok = _exact_in_f32(fa) and _exact_in_f32(fb)
    force = _FORCE_PLAN
    if force in (None, "f32") and f32ok and wa + wb + L <= 24:
        if _exact_fused(job, np.float32):
            return
    if force in (None, "f64") and wa + wb + L <= 53:
        if _exact_fused(job, np.float64):
            return
    a64 = _decode(job.a, fa, np.float64)
    b64 = _decode(job.b, fb, np.float64)
    for idx, _, A, B, as_, bs in job.items(a64, b64):
        job.out[idx] = _exact_2d(A, B, fa, fb, as_, bs, bk, job.nb, force)


def _exact_fused(job, dtype):
    """Plans "f32" / "f64" over the whole job (the formats guarantee that
    every partial sum is exact in dtype); False when an operand holds NaN
    or inf (then the caller patches them in block by block)."""
    A, alut = _source(job.a, job.fa, dtype)
    B, blut = _source(job.b, job.fb, dtype)
    if _has_specials(A, alut, job.fa) or _has_specials(B, blut, job.fb):
        return False
    for idx, _, Ai, Bi, as_, bs in job.items(A, B):
        job.out[idx] = _exact_narrow(Ai, Bi, as_, bs, job.bk, alut, blut)
    return True


def _exact_narrow(A, B, as_, bs, bk, alut=None, blut=None):
    """The float32 ("f32" plan) or float64 ("f64") product of operands
    whose every partial sum is exact in that type, so that any order gives
    the exact sum; lowprec's kernels apply the block epilogue in cache."""
    dtype = (alut if alut is not None else A).dtype
    if dtype == np.float32:
        out = np.empty((A.shape[0], B.shape[1]), np.float32)
        _gemm_f32(A, B, as_, bs, bk, out, alut, blut)
        return out
    return _gemm_f64(A, B, as_, bs, bk, alut=alut, blut=blut)


def _gemm_f64(a, b, as_, bs, bk, raw=False, alut=None, blut=None):
    """lp_gemm_f64: with scales, the float32 result of the block epilogue;
    raw (as_ None), the float64 product."""
    M, K = a.shape
    N = b.shape[1]
    out = np.empty((M, N), np.float64 if raw else np.float32)
    bp = _pack_b(b, 0 if raw else bk, blut)
    pa, pb = _ptr(a, "void *"), _ptr(bp, "double *")
    pal = ffi.NULL if alut is None else _ptr(alut, "double *")
    psa = ffi.NULL if raw else _ptr(as_, "float *")
    psb = ffi.NULL if raw else _ptr(bs, "float *")
    po = _ptr(out, "void *")

    def kernel(r0, r1):
        return lib.lp_gemm_f64(pa, pal, pb, M, N, K, bk, psa, psb, po, r0,
                               r1, _ISA)
    _split_rows(kernel, M, M * N * K, align=24)
    return out


def _exact_2d(A, B, fa, fb, as_, bs, bk, nb, force):
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
    plan = _choose_plan(A0, B0, fa, fb, bk, force)
    if not special:
        return plan(0, K, as_, bs, nb)
    out = np.empty((M, N), np.float32)
    ones_a, ones_b = np.ones((M, 1), np.float32), np.ones((1, N), np.float32)
    for blk in range(nb):
        k0, k1 = blk * bk, (blk + 1) * bk
        p = plan(k0, k1, ones_a, ones_b, 1)
        _patch_specials(p, A[:, k0:k1], B[k0:k1])
        _scale_acc(p, as_, bs, nb, blk, out)
    return out


def _scale_acc(p, as_, bs, nb, blk, out):
    M, N = p.shape
    pp, psa, psb = (_ptr(p, "float *"), _ptr(as_, "float *"),
                    _ptr(bs, "float *"))
    po = _ptr(out, "float *")

    def kernel(r0, r1):
        lib.lp_scale_acc(pp, psa, psb, N, nb, blk, po, r0, r1)
        return 0
    _split_rows(kernel, M, M * N * 8)


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


def _choose_plan(A, B, fa, fb, bk, force):
    """plan(k0, k1, as_, bs, nblocks) -> float32 (M, N): the scaled result
    of the whole blocks in [k0, k1) of the finite operands A, B."""
    M, K = A.shape
    N = B.shape[1]
    L = _clog2(bk)
    f32ok = _exact_in_f32(fa) and _exact_in_f32(fb)
    if force != "dot":
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
        if force in ("f32", None) and f32ok and RA + RB + L <= 24:
            A32, B32 = A.astype(np.float32), B.astype(np.float32)

            def plan_f32(k0, k1, as_, bs, nblk):
                return _exact_narrow(np.ascontiguousarray(A32[:, k0:k1]),
                                     np.ascontiguousarray(B32[k0:k1]), as_,
                                     bs, bk)
            return plan_f32
        if force in ("f64", None) and RA + RB + L <= 53:
            def plan_f64(k0, k1, as_, bs, nblk):
                return _exact_narrow(np.ascontiguousarray(A[:, k0:k1]),
                                     np.ascontiguousarray(B[k0:k1]), as_,
                                     bs, bk)
            return plan_f64
        if force in ("sliced", None):
            sl = _slice_plan(RA, RB, bk)
            if sl is not None:
                return _sliced(A, B, Ta, Tb, sl, bk)
    return _dot_plan(A, B, fa, fb, bk)


def _slice_plan(RA, RB, bk):
    """(WA, nA, WB, nB, nch) minimising the work of the sliced plan: slices
    of WA and WB bits, each block cut into nch sub-blocks of L = bk / nch
    steps, with WA + WB + log2(L) <= 53 so that every slice product is
    exact in float64, and the exact total within 2^114 (lp_exact_add)."""
    best = None
    for nch in (1, 2, 4, 8, 16, 32):
        if bk % nch or (nch > 1 and bk // nch < 64):
            continue
        if _FORCE_SUBBLOCKS is not None and nch != _FORCE_SUBBLOCKS:
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


def _sliced(A, B, Ta, Tb, sl, bk):
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
        bp = _pack_b(B2, L)
        out = np.empty((M, N), np.float32)
        pa, pb = _ptr(A2, "double *"), _ptr(bp, "double *")
        pua, pub = _ptr(ua, "int32_t *"), _ptr(ub, "int32_t *")
        psa, psb = _ptr(as_, "float *"), _ptr(bs, "float *")
        po = _ptr(out, "float *")

        def kernel(r0, r1):
            return lib.lp_gemm_f64_exact(pa, pb, M, N, K2, L, nch * len(ps),
                                         pua, pub, psa, psb, po, r0, r1,
                                         _ISA)
        _split_rows(kernel, M, M * N * K2, align=24)
        return out
    return plan


def _dot_plan(A, B, fa, fb, bk):
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


# -- integer GEMM ----------------------------------------------------------

_INT_OPERAND_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))


def _int_operand(x, name):
    arr = np.asarray(x)
    dt = arr.dtype
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension for a "
                         "matrix product, got a scalar")
    if dt in _INT_OPERAND_DTYPES:
        return np.ascontiguousarray(arr)
    if dt.type.__module__ == "ml_dtypes" and dt.name in (
            "int4", "uint4", "int2", "uint2"):
        target = np.int8 if dt.name.startswith("int") else np.uint8
        return np.ascontiguousarray(arr.astype(target))
    raise _DTypeError(f"int_matmul takes int8 or uint8 arrays (int4 codes "
                      f"as int8, or ml_dtypes int4/uint4/int2/uint2), not "
                      f"{name} of dtype {dt}")


def int_matmul(a, b) -> np.ndarray:
    """Exact integer matrix product as int32, wrapping modulo 2^32.

    a (..., M, K) and b (..., K, N): int8 or uint8 arrays (int4 / int2
    codes as lowprec stores them, in int8; ml_dtypes int4/uint4/int2/uint2
    arrays too).  Batch dimensions broadcast as in np.matmul.  Every sum is
    exact in int32 while K * max|a| * max|b| < 2^31 (K < 2^17 for int8 x
    int8); longer sums wrap around modulo 2^32 like int32 arithmetic on
    two's-complement hardware (and np.matmul on int32).
    """
    A = _int_operand(a, "a")
    B = _int_operand(b, "b")
    a2, b2, batch, drop = _matmul_shapes(A, B)
    M, K = a2.shape[-2:]
    N = b2.shape[-1]
    out = np.zeros(batch + (M, N), np.int32)
    ua, ub = int(A.dtype == np.uint8), int(B.dtype == np.uint8)
    if out.size and K:
        Ab = np.broadcast_to(a2, batch + (M, K))
        Bb = np.broadcast_to(b2, batch + (K, N))
        for idx in np.ndindex(*batch):
            Ai = np.ascontiguousarray(Ab[idx])
            Bi = np.ascontiguousarray(Bb[idx])
            C = np.empty((M, N), np.int32)
            pa, pb = _ptr(Ai, "void *"), _ptr(Bi, "void *")
            pc = _ptr(C, "int32_t *")

            def kernel(r0, r1, pa=pa, pb=pb, pc=pc):
                return lib.lp_gemm_i32(pa, ua, pb, ub, M, N, K, pc, r0, r1,
                                       _ISA)
            _split_rows(kernel, M, M * N * K)
            out[idx] = C
    return _squeeze(out, drop)


# -- requantization --------------------------------------------------------

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def _int_array(x, name, lo=_INT32_MIN, hi=_INT32_MAX):
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise _DTypeError(f"{name} must be integers, got dtype {arr.dtype}")
    v = arr.astype(np.int64)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in "
                         f"[{v.min()}, {v.max()}]")
    return v


def _wrap32(v):
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int64 arrays of int32
    values: round(a * b / 2^31) with ties away from zero, saturating the
    one overflow (a = b = -2^31) to 2^31 - 1."""
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    t = ab + nudge
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))   # C division truncates
    return np.where((a == b) & (a == _INT32_MIN), _INT32_MAX, q)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent (0 <= exponent <= 31)
    rounded to nearest, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(acc, multiplier, shift, *, zero_point=0, out_format="int8"):
    """gemmlowp / TFLite fixed-point requantization of int32 accumulators.

    out = clamp(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
                    acc, multiplier), shift) + zero_point, out_format)

    multiplier: int32 fixed-point multiplier (Q0.31, usually in
    [2^30, 2^31)); shift: right shift in [0, 31] (gemmlowp's result_shift).
    A negative shift is TFLite's left shift: acc * 2^-shift (wrapped to
    int32, as TFLite's int32 multiply) before the high multiply, no right
    shift.  multiplier, shift and zero_point are scalars (per tensor) or
    arrays broadcasting against acc (per channel: shape (N,) for the last
    axis).  The zero point is added exactly and the sum saturates to
    out_format (an integer format; None keeps int32, saturating).
    Returns codes of out_format (int8 / uint8 / int16 ...) or int32.
    """
    x = _int_array(acc, "acc")
    m = _int_array(multiplier, "multiplier")
    s = _int_array(shift, "shift", -31, 31)
    zp = _int_array(zero_point, "zero_point", -(1 << 40), 1 << 40)
    if out_format is None:
        lo, hi, dtype = _INT32_MIN, _INT32_MAX, np.dtype(np.int32)
    else:
        fmt = get_format(out_format)
        if not isinstance(fmt, IntFormat):
            raise ValueError(f"requantize produces an integer format, not "
                             f"{fmt.name or fmt!r}")
        lo, hi, dtype = fmt.min, fmt.max, fmt.code_dtype
    try:
        shape = np.broadcast_shapes(x.shape, m.shape, s.shape, zp.shape)
    except ValueError:
        raise ValueError(f"requantize: multiplier of shape {m.shape}, shift "
                         f"of shape {s.shape} and zero_point of shape "
                         f"{zp.shape} do not broadcast against acc of shape "
                         f"{x.shape}") from None
    if shape != x.shape:
        raise ValueError(f"requantize: multiplier {m.shape}, shift "
                         f"{s.shape}, zero_point {zp.shape} would broadcast "
                         f"acc of shape {x.shape} to {shape}")
    left = np.maximum(-s, 0)
    right = np.maximum(s, 0)
    x = _wrap32(x << left)
    y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m),
                               right)
    return np.clip(y + zp, lo, hi).astype(dtype)
