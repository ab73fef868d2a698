"""The NVIDIA H100 (sm_90): its conversion instruction and tensor cores.

Every function here reproduces recorded H100 behaviour bit for bit (the
records and what they show: ``../shared/h100/README.md``; docs/hardware.md
tells which records decide each fact).

``cvt(x, fmt, ...)``
    The codes the PTX ``cvt`` instruction writes: float32 -> e4m3 / e5m2
    (always ``.satfinite``), float16 -> e4m3 / e5m2, float32 -> float16 /
    bfloat16 in the four IEEE directions, fp8 -> float16, with the
    ``.relu`` and ``.satfinite`` forms where the instruction has them and
    the hardware's NaN codes (e4m3 / e5m2 0x7f, float16 / bfloat16 0x7fff,
    the sign of a NaN dropped).

Tensor cores accumulate by fused steps: a group of exact products and
the incoming accumulator are aligned to the largest exponent, truncated
to a fixed number of bits, summed exactly and rounded once (API.md
section 7, ``lowprec.FusedAccumulator``): ``wgmma``, ``mma_sync``,
``scaled_mm`` (cuBLASLt's FP8 GEMM) and ``matmul`` (its float16 GEMM)
return the models of each instruction and GEMM.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from .. import _validate as val
from ..convert import decode, encode
from ..formats import get_format
from ..matmul._h100 import matmul, mma_sync, scaled_mm, wgmma

__all__ = ["cvt", "wgmma", "mma_sync", "scaled_mm", "matmul"]

_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)
_BF16 = np.dtype(ml_dtypes.bfloat16)
_E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
_E5M2 = np.dtype(ml_dtypes.float8_e5m2)

# The rounding spelled by each PTX modifier, by lowprec's names and aliases.
_PTX_ROUNDING = {
    "nearest_even": "rn", "rne": "rn",
    "toward_zero": "rz", "rz": "rz",
    "toward_negative": "rm", "rd": "rm",
    "toward_positive": "rp", "ru": "rp",
}
_ALL_ROUNDINGS = ("nearest_even", "nearest_away", "toward_zero",
                  "toward_positive", "toward_negative", "to_odd",
                  "stochastic", "rne", "rna", "rz", "ru", "rd", "ro", "sr")
_FULL_NAME = {"rn": "nearest_even", "rz": "toward_zero",
              "rm": "toward_negative", "rp": "toward_positive"}

# The cvt forms of sm_90: (source dtype, target format name) ->
# (PTX roundings, roundings that take .relu / .satfinite, instruction).
_FORMS = {
    (_F32, "float8_e4m3fn"): (("rn",), ("rn",),
                              "cvt.rn.satfinite{.relu}.e4m3x2.f32"),
    (_F32, "float8_e5m2"): (("rn",), ("rn",),
                            "cvt.rn.satfinite{.relu}.e5m2x2.f32"),
    (_F16, "float8_e4m3fn"): (("rn",), ("rn",),
                              "cvt.rn.satfinite{.relu}.e4m3x2.f16x2"),
    (_F16, "float8_e5m2"): (("rn",), ("rn",),
                            "cvt.rn.satfinite{.relu}.e5m2x2.f16x2"),
    (_F32, "float16"): (("rn", "rz", "rm", "rp"), ("rn", "rz"),
                        "cvt.{rn,rz,rm,rp}{.relu}{.satfinite}.f16.f32"),
    (_F32, "bfloat16"): (("rn", "rz", "rm", "rp"), ("rn", "rz"),
                         "cvt.{rn,rz,rm,rp}{.relu}{.satfinite}.bf16.f32"),
    (_E4M3, "float16"): (("rn",), ("rn",), "cvt.rn{.relu}.f16x2.e4m3x2"),
    (_E5M2, "float16"): (("rn",), ("rn",), "cvt.rn{.relu}.f16x2.e5m2x2"),
}
_NAN_CODE = {"float8_e4m3fn": 0x7f, "float8_e5m2": 0x7f,
             "float16": 0x7fff, "bfloat16": 0x7fff}


def _forms_text():
    return "; ".join(f"{dt.name} -> {name}" for dt, name in _FORMS)


def cvt(x, fmt, *, rounding="nearest_even", saturate=False, relu=False):
    """Codes of the H100 ``cvt`` instruction converting x to fmt.

    Parameters
    ----------
    x : ndarray of float32, float16, or ml_dtypes float8_e4m3fn /
        float8_e5m2 (any shape).  The instruction's source type is x's
        dtype: convert float64 data to float32 first (the instruction has
        no float64 source).
    fmt : the target format (name, Format or dtype): ``float8_e4m3fn`` or
        ``float8_e5m2`` from float32 / float16, ``float16`` or
        ``bfloat16`` from float32, ``float16`` from fp8.
    rounding : "nearest_even" (``.rn``), and from float32 to float16 /
        bfloat16 also "toward_zero" (``.rz``), "toward_negative"
        (``.rm``), "toward_positive" (``.rp``); aliases as in encode.
    saturate : ``.satfinite``: finite overflow and +-inf give +-max.
        fp8 targets always saturate (sm_90 has no other float -> fp8
        cvt), whatever saturate says.  float16 / bfloat16 targets take
        it with "nearest_even" / "toward_zero"; fp8 -> float16 (exact)
        has no such form.
    relu : ``.relu``: every negative value and -0 give +0, NaN stays NaN
        (with "nearest_even" / "toward_zero" only).

    Returns
    -------
    ndarray of fmt's codes (uint8 / uint16), x's shape.  Values are
    correctly rounded in the chosen direction (finite overflow follows
    IEEE 754 per direction unless saturating); every NaN gives the
    hardware's code: 0x7f for e4m3 and e5m2, 0x7fff for float16 and
    bfloat16, whatever its sign or payload.

    Raises
    ------
    TypeError
        x of a dtype the instruction does not take; saturate or relu not a
        bool; rounding not a string.
    ValueError
        a (source, fmt) pair, rounding, relu or saturate form that the
        sm_90 instruction lacks (the message names it and lists the
        forms), an unknown rounding name.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> x = np.array([1.0, 500.0, -np.inf, np.nan], np.float32)
    >>> lp.hardware.h100.cvt(x, "e4m3")          # satfinite: 448 = 0x7e
    array([ 56, 126, 254, 127], dtype=uint8)
    >>> lp.hardware.h100.cvt(x, "float16", rounding="toward_zero").tolist()
    [15360, 24528, 64512, 32767]
    >>> lp.hardware.h100.cvt(np.float32([-2.0, 3.0]), "e5m2", relu=True)
    array([ 0, 66], dtype=uint8)
    """
    saturate = val.check_bool(saturate, "saturate")
    relu = val.check_bool(relu, "relu")
    val.check_choice(rounding, "rounding", _ALL_ROUNDINGS)
    fmt = get_format(fmt)
    a = np.asarray(x)
    src = a.dtype.newbyteorder("=") if not a.dtype.isnative else a.dtype
    if src not in (_F32, _F16, _E4M3, _E5M2):
        raise TypeError(f"cvt takes x of dtype float32, float16, "
                        f"float8_e4m3fn or float8_e5m2, got {a.dtype}: "
                        "convert to one of these first")
    form = _FORMS.get((src, fmt.name))
    if form is None:
        raise ValueError(f"the sm_90 cvt instruction has no {src.name} -> "
                         f"{fmt.name} form (fmt={fmt.name!r}); its forms "
                         f"are: {_forms_text()}")
    modes, relu_sat_modes, instr = form
    mode = _PTX_ROUNDING.get(rounding)
    if mode not in modes:
        raise ValueError(f"rounding={rounding!r}: {instr} takes "
                         + ", ".join(_FULL_NAME[m] for m in modes))
    fp8_target = fmt.name in ("float8_e4m3fn", "float8_e5m2")
    fp8_source = src in (_E4M3, _E5M2)
    if relu and mode not in relu_sat_modes:
        raise ValueError(f"relu=True: {instr} has .relu only with "
                         + ", ".join(_FULL_NAME[m] for m in relu_sat_modes))
    if saturate and fp8_source:
        raise ValueError(f"saturate=True: {instr} is exact and has no "
                         ".satfinite form")
    if saturate and mode not in relu_sat_modes:
        raise ValueError(f"saturate=True: {instr} has .satfinite only with "
                         + ", ".join(_FULL_NAME[m] for m in relu_sat_modes))
    if a.dtype != src:
        a = a.astype(src)
    cdt = np.dtype(fmt.code_dtype)
    nan_code = cdt.type(_NAN_CODE[fmt.name])
    if fp8_source:
        # fp8 -> f16 is exact: decode, then the hardware's NaN code.
        codes = a.view(np.uint8)
        out = decode(codes, src, dtype=np.float16)
        neg = np.signbit(out)
        bits = out.view(np.uint16)
        nan = np.isnan(out)
    else:
        nan = np.isnan(a)
        neg = np.signbit(a) & ~nan
        bits = encode(a, fmt, rounding=_FULL_NAME[mode],
                      saturate=saturate or fp8_target)
    bits = np.array(bits, cdt, copy=fp8_source)     # writeable, our own
    if relu:
        bits[neg] = 0
    if nan.any():
        bits[nan] = nan_code
    return bits
