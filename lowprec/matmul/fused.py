"""FusedAccumulator: the tensor-core accumulation rule (API.md section 7).

A real tensor core does not add products one at a time.  One fused step
takes ``group`` consecutive products of K (each exact) and the running
accumulator as its terms, aligns every non-zero term to the largest
alignment exponent E, truncates each toward zero to a multiple of
2^(E - align_bits), sums them exactly and rounds the sum once.  The rule is
one C kernel (csrc/fused.c, lp_fused_gemm) run over row ranges on the
thread pool; the block epilogue of section 3 (lp_scale_acc) follows.

The hardware models of lowprec.hardware are FusedAccumulators with a few
private parts that real instructions need: the operands' alignment emin
(the FP8 mma.sync unpacks to float16), a k order within each instruction,
the format of the promoted total, the epilogue of cuBLASLt's row-wise
scaling, a float16 output, the operand formats the instruction takes, and
a chaining length that depends on K.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Tuple

import numpy as np

from .. import _validate as v
from .._clib import ffi, lib
from .._options import check_rounding, mode_name
from ..formats import FloatFormat
from ._kernels import _ptr, _scale_acc, _split_rows
from ._values import _decode

if TYPE_CHECKING:
    from .._typing import IntLike, Rounding

__all__ = ["FusedAccumulator"]

_ACCUMULATORS = {"float32": (24, -126, 127), "float16": (11, -14, 15)}
_NO_TERM = -4000            # csrc/fused.c: the exponent of a zero operand
_MAX_ALIGN_BITS = 64
_MAX_GROUP = 1 << 20
F16_NAN = np.uint16(0x7FFF)
F32_NAN = np.uint32(0x7FFFFFFF)


class FusedAccumulator:
    """The fused accumulation rule of a tensor core (API.md section 7).

    ``scaled_matmul(a, b, ..., accumulate=FusedAccumulator(32, 13,
    out_bits=14))`` computes each K-block's sum in steps: a step takes the
    next ``group`` products a[i, k] * b[k, j] (each exact) and the running
    accumulator as its terms; every non-zero term has an alignment
    exponent (floor(log2|x|), or the format's emin for a subnormal; a
    product's is the sum of its operands'); E is the largest; each term is
    truncated toward zero to a multiple of 2^(E - align_bits); the
    truncated terms are summed exactly and the sum is rounded once to
    ``out_bits`` significant bits with ``out_rounding``, in the exponent
    range of ``accumulator`` ("float32" or "float16"), subnormals kept and
    overflow to inf.  Steps chain in k order.  With ``promote_every`` (a
    multiple of ``group``) the chain restarts from +0 every that many k
    and each partial is added into a float32 total with round-to-nearest-
    even (for a float16 accumulator the float32 total is then rounded to
    float16, nearest even).  NaN operands,
    inf * 0 and inf - inf give NaN; an exactly zero sum is +0.

    Parameters
    ----------
    group : int
        Products per step, 1 to 2^20.
    align_bits : int
        Bits kept below the largest term's exponent (F), 1 to 64.
    out_bits : int
        Significant bits of each step's result: 1 to 24 for a float32
        accumulator, 1 to 11 for float16.
    out_rounding : str
        Any rounding name but "stochastic" (default "toward_zero").
    accumulator : str
        "float32" (results float32) or "float16" (results float16).
    promote_every : int or None
        None (one chain) or a positive multiple of ``group``.

    Raises
    ------
    TypeError
        A parameter of the wrong kind (a float group, a non-string
        rounding).
    ValueError
        A parameter out of range, naming it.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> qgmma = lp.FusedAccumulator(32, 13, out_bits=14)
    >>> a = lp.encode(np.ones((2, 64), np.float32), "e4m3")
    >>> b = lp.encode(np.ones((64, 3), np.float32), "e4m3")
    >>> lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
    ...                  accumulate=qgmma)[0, 0]
    np.float32(64.0)

    Operands must be float formats whose products are exact in float64
    (every built-in format up to float32).  The model is immutable,
    hashable and picklable.
    """

    __slots__ = ("group", "align_bits", "out_bits", "out_rounding",
                 "accumulator", "promote_every", "_private")
    group: int
    align_bits: int
    out_bits: int
    out_rounding: str
    accumulator: str
    promote_every: Optional[int]
    _private: Tuple[Tuple[str, Any], ...]

    def __init__(self, group: IntLike, align_bits: IntLike, *,
                 out_bits: IntLike = 24,
                 out_rounding: Rounding = "toward_zero",
                 accumulator: Literal["float32", "float16"] = "float32",
                 promote_every: Optional[IntLike] = None) -> None:
        group = v.check_int(group, "group", 1, _MAX_GROUP)
        align_bits = v.check_int(align_bits, "align_bits", 1,
                                 _MAX_ALIGN_BITS)
        acc = v.check_choice(accumulator, "accumulator", _ACCUMULATORS)
        out_bits = v.check_int(out_bits, "out_bits", 1,
                               _ACCUMULATORS[acc][0])
        mode = check_rounding(out_rounding, "out_rounding")
        if mode == lib.LP_SR:
            raise ValueError("out_rounding must be a deterministic rounding "
                             "(a fused step rounds once, in the hardware's "
                             "fixed mode), not 'stochastic'")
        if promote_every is not None:
            promote_every = v.check_int(promote_every, "promote_every", 1,
                                        None)
            if promote_every % group:
                raise ValueError(f"promote_every must be a multiple of group "
                                 f"{group}, got {promote_every}")
        for name, val in (("group", group), ("align_bits", align_bits),
                          ("out_bits", out_bits),
                          ("out_rounding", mode_name(mode)),
                          ("accumulator", acc),
                          ("promote_every", promote_every),
                          ("_private", ())):
            object.__setattr__(self, name, val)

    # -- value object ------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("FusedAccumulator is immutable")

    def _key(self):
        return (self.group, self.align_bits, self.out_bits,
                self.out_rounding, self.accumulator, self.promote_every,
                self._private)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, FusedAccumulator)
                and self._key() == other._key())

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self):
        return (_fused, self._key())

    def __repr__(self) -> str:
        name = dict(self._private).get("name")
        if name:
            return name
        extra = ""
        if self.promote_every is not None:
            extra = f", promote_every={self.promote_every}"
        return (f"FusedAccumulator({self.group}, {self.align_bits}, "
                f"out_bits={self.out_bits}, "
                f"out_rounding={self.out_rounding!r}, "
                f"accumulator={self.accumulator!r}{extra})")

    # -- private parts of hardware models ---------------------------------
    def _with(self, **private):
        """A copy with private parts set (lowprec.hardware's models):
        name (repr), operand_emin (alignment emin of both operands instead
        of each format's), k_order ("mma_sync_fp8"), total ("float32" /
        "float16": the promoted total's format), epilogue ("cublaslt":
        R32(acc * sb[j]) * sa[i] for row-wise scales),
        out_dtype ("float16": the float32 result rounded to float16 RNE),
        formats (the (a, b) format-name pairs taken), split_k (chaining
        within K-slices of roundup(K / split_k, 128))."""
        new = object.__new__(FusedAccumulator)
        for name in self.__slots__:
            object.__setattr__(new, name, getattr(self, name))
        merged = dict(self._private)
        merged.update(private)
        object.__setattr__(new, "_private", tuple(sorted(merged.items())))
        return new

    def _get(self, key, default=None):
        return dict(self._private).get(key, default)

    @property
    def _out_dtype(self):
        if self._get("out_dtype") == "float16" or \
                self.accumulator == "float16":
            return np.dtype(np.float16)
        return np.dtype(np.float32)

    def _struct(self):
        s = ffi.new("lp_fused *")
        s.group, s.align_bits, s.out_bits = (self.group, self.align_bits,
                                             self.out_bits)
        s.out_rounding = check_rounding(self.out_rounding)
        _, s.acc_emin, s.acc_emax = _ACCUMULATORS[self.accumulator]
        s.promote_every = self.promote_every or 0
        total = self._get("total", "float32")
        s.total_bits, s.total_emin, s.total_emax = _ACCUMULATORS[total]
        return s


def _fused(group, align_bits, out_bits, out_rounding, accumulator,
           promote_every, private):
    """Unpickles a FusedAccumulator (module level, so pickle finds it)."""
    m = FusedAccumulator(group, align_bits, out_bits=out_bits,
                         out_rounding=out_rounding, accumulator=accumulator,
                         promote_every=promote_every)
    return m._with(**dict(private)) if private else m


# -- operands ---------------------------------------------------------------

def _check_formats(model, fa, fb):
    """The operand formats a fused model takes: float formats whose
    products are exact in float64; a hardware model's instruction pairs."""
    for fmt, name in ((fa, "a_format"), (fb, "b_format")):
        if not isinstance(fmt, FloatFormat):
            raise ValueError(f"{name} {fmt.name or fmt!r}: a FusedAccumulator"
                             " takes float formats (integer tensor-core "
                             "products are exact: use lp.int_matmul)")
        if fmt.emin - fmt.mbits < -450:
            raise ValueError(f"{name} {fmt.name or fmt!r} has values below "
                             "2^-450, outside the fused kernel's range")
    if (fa.mbits + 1) + (fb.mbits + 1) > 53:
        raise ValueError(f"a_format {fa.name or fa!r} and b_format "
                         f"{fb.name or fb!r}: their products are not exact in "
                         "float64 (a fused model takes formats of at most "
                         "53 significant bits together)")
    allowed = model._get("formats")
    if allowed is not None and (fa.name, fb.name) not in allowed:
        takes = ", ".join(f"{x} x {y}" for x, y in allowed)
        raise ValueError(f"a_format {fa.name or fa!r} x b_format "
                         f"{fb.name or fb!r}: {model!r} takes {takes}")


def _values_and_exps(codes, fmt, emin):
    """Exact float64 values of codes and their alignment exponents
    max(floor(log2|x|), emin), _NO_TERM for zeros (tables for formats up
    to 16 bits)."""
    def exps(x):
        with np.errstate(invalid="ignore", over="ignore"):
            _, e = np.frexp(np.where(np.isfinite(x), x, 1.0))
        e = np.maximum(e.astype(np.int32) - 1, np.int32(emin))
        return np.where(x == 0, np.int32(_NO_TERM), e).astype(np.int32)

    if fmt.nbits <= 16 and codes.dtype.itemsize <= 2:
        table = _decode(np.arange(1 << fmt.nbits).astype(fmt.code_dtype), fmt,
                        np.float64)
        etab = exps(table)
        idx = codes.view(np.uint8 if codes.dtype.itemsize == 1 else
                         np.uint16)
        return np.take(table, idx), np.take(etab, idx)
    x = _decode(codes, fmt, np.float64)
    return x, exps(x)


_MMA_SYNC_FP8_ORDER = np.array([k for k in range(32) if k % 4 < 2]
                               + [k for k in range(32) if k % 4 >= 2])


def _reorder(x, order, axis):
    """x with its K axis padded with zeros to a multiple of 32 and each
    run of 32 permuted (the FP8 mma.sync order)."""
    K = x.shape[axis]
    Kp = -(-K // 32) * 32
    if Kp != K:
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, Kp - K)
        x = np.pad(x, pad)
    idx = (np.arange(Kp).reshape(-1, 32)[:, order]).ravel()
    return np.take(x, idx, axis=axis)


# -- the rule over a job ------------------------------------------------------

def _resolved(model, K):
    """The model for a K: a split_k model chains within K-slices of
    roundup(K / split_k, 128) (cuBLASLt's split-K)."""
    split_k = model._get("split_k")
    if split_k is None:
        return model
    per = -(-K // split_k)
    slice_k = max(128, -(-per // 128) * 128)
    new = FusedAccumulator(model.group, model.align_bits,
                           out_bits=model.out_bits,
                           out_rounding=model.out_rounding,
                           accumulator=model.accumulator,
                           promote_every=slice_k)
    private = dict(model._private)
    del private["split_k"]
    return new._with(**private)


def _narrow(fa, fb, emin_a, emin_b, F):
    """Whether the float lanes of lp_fused_gemm hold: every product exact
    in float32 (bits and range) and 2^(F - E) a float32 for every E a
    non-zero product can set."""
    prec = (fa.mbits + 1) + (fb.mbits + 1)
    lo = (fa.emin - fa.mbits) + (fb.emin - fb.mbits)
    hi = fa.emax + fb.emax + 2
    return prec <= 24 and lo >= -149 and hi <= 127 \
        and emin_a + emin_b >= F - 126


def _run_fused(job, model, c=None, *, per_tensor=True, path=None):
    """The fused rule over a checked _Job, writing job.out (float32 values;
    the caller makes the float16 result of float16 models).  c: None or
    the float64 accumulator input broadcast to job.out's shape (checked:
    unit scales).  per_tensor: the scales were scalars (cuBLASLt's
    epilogue differs for row-wise scales).  path: lp_fused_gemm's path
    (None: the fastest that holds; a narrow request that does not hold
    runs wide)."""
    model = _resolved(model, job.K)
    _check_formats(model, job.fa, job.fb)
    st = model._struct()
    emin_a = model._get("operand_emin", job.fa.emin)
    emin_b = model._get("operand_emin", job.fb.emin)
    av, ae = _values_and_exps(job.a, job.fa, emin_a)
    bv, be = _values_and_exps(job.b, job.fb, emin_b)
    order = model._get("k_order")
    M, N, bk, nb = job.M, job.N, job.bk, job.nb
    auto = lib.LP_FUSED_NARROW if _narrow(
        job.fa, job.fb, emin_a, emin_b, model.align_bits) \
        else lib.LP_FUSED_WIDE
    if path is None or (path == lib.LP_FUSED_NARROW and
                        auto == lib.LP_FUSED_WIDE):
        path = auto
    rowwise = model._get("epilogue") == "cublaslt" and not per_tensor
    ab = list(job.items(av, bv))
    eab = list(job.items(ae, be))
    for (idx, flat, A, B, as_, bs), (_, _, EA, EB, _, _) in zip(ab, eab):
        Bt = np.ascontiguousarray(B.T)
        EBt = np.ascontiguousarray(EB.T)
        K = A.shape[1]
        blocks = [(blk * bk, (blk + 1) * bk) for blk in range(nb)]
        if order == "mma_sync_fp8":
            if nb != 1:
                raise ValueError(f"{model!r} runs whole instructions: "
                                 "block= scales are not taken")
            A, EA = _reorder(A, _MMA_SYNC_FP8_ORDER, 1), \
                _reorder(EA, _MMA_SYNC_FP8_ORDER, 1)
            Bt, EBt = _reorder(Bt, _MMA_SYNC_FP8_ORDER, 1), \
                _reorder(EBt, _MMA_SYNC_FP8_ORDER, 1)
            K = A.shape[1]
            blocks = [(0, K)]
            EA = np.where(A == 0, np.int32(_NO_TERM), EA).astype(np.int32)
            EBt = np.where(Bt == 0, np.int32(_NO_TERM), EBt).astype(np.int32)
        A = np.ascontiguousarray(A)
        EA = np.ascontiguousarray(EA, dtype=np.int32)
        Bt = np.ascontiguousarray(Bt)
        EBt = np.ascontiguousarray(EBt, dtype=np.int32)
        rowbad = np.ascontiguousarray((~np.isfinite(A)).any(axis=1),
                                      dtype=np.uint8)
        colbad = np.ascontiguousarray((~np.isfinite(Bt)).any(axis=1),
                                      dtype=np.uint8)
        ci = None
        if c is not None:
            ci = np.ascontiguousarray(c[idx], dtype=np.float64)
        out = np.empty((M, N), np.float32)
        p = np.empty((M, N), np.float64)
        ptrs = (_ptr(A, "double *"), _ptr(EA, "int32_t *"),
                _ptr(Bt, "double *"), _ptr(EBt, "int32_t *"))
        prb, pcb = _ptr(rowbad, "uint8_t *"), _ptr(colbad, "uint8_t *")
        pp = _ptr(p, "double *")
        for blk, (k0, k1) in enumerate(blocks):
            pc = _ptr(ci, "double *") if ci is not None and blk == 0 \
                else ffi.NULL

            def kernel(r0, r1, k0=k0, k1=k1, pc=pc):
                return lib.lp_fused_gemm(st, *ptrs, N, K, k0, k1, pc, prb,
                                         pcb, pp, r0, r1, job.isa, path)
            err = _split_rows(kernel, M, M * N * (k1 - k0) * 4, align=1)
            if err == -2:
                raise MemoryError("lp_fused_gemm: out of memory")
            if err == -1:
                raise AssertionError("lp_fused_gemm: bad arguments")
            p32 = p.astype(np.float32)      # exact: float32/16 values
            if rowwise:
                with np.errstate(over="ignore", invalid="ignore"):
                    out[...] = (p32 * bs[blk:blk + 1, :]) * as_[:, blk:blk + 1]
            else:
                _scale_acc(p32, as_, bs, nb, blk, out)
        job.out[idx] = out


def _finish(out, model):
    """The result array of a fused model: float32 with NaN 0x7fffffff, or
    float16 (exact from the float32 values of a float16 accumulator; the
    float32 result rounded to nearest even for a float16 output) with NaN
    0x7fff."""
    if model._out_dtype == np.float16:
        with np.errstate(over="ignore", invalid="ignore"):
            res = out.astype(np.float16)
        bits = res.view(np.uint16)
        bits[np.isnan(out)] = F16_NAN
        return res
    out.view(np.uint32)[np.isnan(out)] = F32_NAN
    return out


def _check_c(c, shape, model, As, Bs):
    """c as float64 values broadcast to the output shape: float32 values
    (float16 for a float16 model) given exactly, with unit scales."""
    arr = np.asarray(c)
    if arr.dtype.kind not in "fiu" and arr.dtype.name != "bfloat16":
        raise TypeError(f"c must be a float32 array (the accumulator input), "
                        f"got dtype {arr.dtype}")
    want = np.float16 if (model is not None and model.accumulator ==
                          "float16") else np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        x64 = arr.astype(np.float64)
        narrowed = x64.astype(want).astype(np.float64)
    same = (narrowed == x64) | (np.isnan(narrowed) & np.isnan(x64))
    if not same.all():
        raise ValueError(f"c holds values that are not {np.dtype(want).name} "
                         f"numbers (e.g. {x64[~same].ravel()[0]!r}): give c "
                         f"as {np.dtype(want).name}, rounded as you intend")
    try:
        cb = np.broadcast_to(narrowed, shape)
    except ValueError:
        raise ValueError(f"c of shape {arr.shape} does not broadcast to the "
                         f"output shape {tuple(shape)}") from None
    if not (np.all(As == 1) and np.all(Bs == 1)):
        raise ValueError("c needs unit scales: D = A*B + C adds c to the "
                         "unscaled accumulator, so a_scale and b_scale must "
                         "be 1 when c is given")
    return cb

