"""NVIDIA H100 (sm_90): tensor-core and cuBLASLt accumulation models that
reproduce recorded H100 outputs bit for bit (docs/hardware.md)."""
from ..matmul._h100 import matmul, mma_sync, scaled_mm, wgmma

__all__ = ["wgmma", "mma_sync", "scaled_mm", "matmul"]
