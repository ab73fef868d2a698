"""Models of real hardware: how a given chip's instructions convert and
accumulate, bit for bit (API.md section 7).

``lowprec.hardware.h100``: the NVIDIA H100 (sm_90) ``cvt`` instruction
and its tensor-core accumulation.
"""
from . import h100

__all__ = ["h100"]
