"""The H100 (sm_90) tensor-core and cuBLASLt models (API.md section 7):
FusedAccumulators with the instruction's group, kept bits, output rounding
and structure, as measured on an H100 (docs/hardware.md has the table and
how each fact was established from the recorded outputs).  Public through
lowprec.hardware.h100."""
from __future__ import annotations

from .. import _validate as v
from ..formats import get_format
from .fused import FusedAccumulator

__all__ = ["wgmma", "mma_sync", "scaled_mm", "matmul"]

_FP8 = ("float8_e4m3fn", "float8_e5m2")
_FP8_PAIRS = tuple((x, y) for x in _FP8 for y in _FP8)
_ACCS = ("float32", "float16")


def _name(fmt, what):
    try:
        return get_format(fmt).name
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{what}: {exc}") from None


def _operands(a_format, b_format, instruction, pairs):
    a, b = _name(a_format, "a_format"), _name(b_format, "b_format")
    if (a, b) not in pairs:
        takes = ", ".join(f"{x} x {y}" for x, y in pairs)
        raise ValueError(f"a_format {a} x b_format {b}: {instruction} takes "
                         f"{takes}")
    return a, b


def _accumulator(accumulator, a, instruction):
    acc = v.check_choice(accumulator, "accumulator", _ACCS)
    if acc == "float16" and a == "bfloat16":
        raise ValueError(f"accumulator 'float16': {instruction} on bfloat16 "
                         "operands accumulates in float32 only")
    return acc


def wgmma(a_format, b_format, accumulator="float32"):
    """The ``wgmma.mma_async`` (HGMMA / QGMMA) instruction of sm_90a.

    FP8 (e4m3 / e5m2, k32): one fused step of 32 products and c, 13 bits
    kept, the result rounded toward zero to 14 bits (an E8M13 value in
    float32), or to nearest even float16 with a float16 accumulator.
    float16 / bfloat16 (k16): one step of 16 products and c, 25 bits kept,
    24 bits toward zero (float32) or float16 nearest even.  Longer K chains
    the instructions in k order (each output is the next one's c).

    Raises ValueError for operand formats or an accumulator the instruction
    does not take.

    Example: ``lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
    accumulate=lp.hardware.h100.wgmma("e4m3", "e4m3"), c=c)``.
    """
    pairs = _FP8_PAIRS + (("float16", "float16"), ("bfloat16", "bfloat16"))
    a, b = _operands(a_format, b_format, "wgmma", pairs)
    acc = _accumulator(accumulator, a, "wgmma")
    name = f"h100.wgmma({a!r}, {b!r}, accumulator={acc!r})"
    if a in _FP8:
        if acc == "float32":
            m = FusedAccumulator(32, 13, out_bits=14)
        else:
            m = FusedAccumulator(32, 13, out_bits=11,
                                 out_rounding="nearest_even",
                                 accumulator="float16")
    elif acc == "float32":
        m = FusedAccumulator(16, 25, out_bits=24)
    else:
        m = FusedAccumulator(16, 25, out_bits=11, out_rounding="nearest_even",
                             accumulator="float16")
    return m._with(name=name, formats=((a, b),))


def mma_sync(a_format, b_format, accumulator="float32"):
    """The ``mma.sync.aligned`` instruction (sm_80+ HMMA).

    float16 / bfloat16 (m16n8k16): one fused step of 16 products and c,
    25 bits kept, 24 bits toward zero (float32) or float16 nearest even.
    FP8 (m16n8k32) is not a native instruction on sm_90: the operands are
    unpacked exactly to float16 (alignment at float16's emin), one float16
    HMMA step runs over the k with k mod 4 in {0, 1} from +0, a second over
    k mod 4 in {2, 3} on top of it, and c is added by an ordinary float32
    (or float16) round-to-nearest-even addition.  Longer K chains the
    instructions (K is padded with zeros to a multiple of 32).

    Raises ValueError for operand formats or an accumulator the instruction
    does not take.
    """
    pairs = _FP8_PAIRS + (("float16", "float16"), ("bfloat16", "bfloat16"))
    a, b = _operands(a_format, b_format, "mma_sync", pairs)
    acc = _accumulator(accumulator, a, "mma_sync")
    name = f"h100.mma_sync({a!r}, {b!r}, accumulator={acc!r})"
    if acc == "float32":
        m = FusedAccumulator(16, 25, out_bits=24,
                             promote_every=32 if a in _FP8 else None)
    else:
        m = FusedAccumulator(16, 25, out_bits=11, out_rounding="nearest_even",
                             accumulator="float16",
                             promote_every=32 if a in _FP8 else None)
    if a in _FP8:
        m = m._with(operand_emin=-14, k_order="mma_sync_fp8", total=acc)
    return m._with(name=name, formats=((a, b),))


def scaled_mm(use_fast_accum=False):
    """cuBLASLt's FP8 GEMM as ``torch._scaled_mm`` runs it on sm_90.

    QGMMA k32 steps (13 bits kept, 14 bits toward zero) chained in k order;
    ``use_fast_accum=False`` restarts the chain from +0 every 128 k and adds
    each 128-k partial into a float32 total (nearest even); True keeps one
    chain over all of K.  Epilogue: per-tensor scales acc * R32(sa * sb)
    (section 3), row-wise scales (a_scale (M, 1), b_scale (1, N))
    R32(acc * sb[j]) * sa[i].  For a bfloat16 output pass
    ``out_format="bfloat16"`` (the float32 result rounded to nearest even).
    """
    fast = v.check_bool(use_fast_accum, "use_fast_accum")
    m = FusedAccumulator(32, 13, out_bits=14,
                         promote_every=None if fast else 128)
    return m._with(name=f"h100.scaled_mm(use_fast_accum={fast})",
                   epilogue="cublaslt", formats=_FP8_PAIRS)


def matmul(split_k=1):
    """cuBLASLt's float16 GEMM (``torch.matmul`` on float16, float32
    accumulation) on sm_90: HGMMA k16 steps (25 bits kept, 24 bits toward
    zero) chained within K-slices of length roundup(K / split_k, 128), the
    slices added in k order in float32 (nearest even), the result rounded
    to float16 (nearest even): a float16 array.  split_k is cuBLASLt's
    choice (1 for (64, 1024, 64), 3 for (128, 4096, 128) in the records).
    """
    split_k = v.check_int(split_k, "split_k", 1, None)
    return FusedAccumulator(16, 25, out_bits=24)._with(
        name=f"h100.matmul(split_k={split_k})", out_dtype="float16",
        split_k=split_k, formats=(("float16", "float16"),))
